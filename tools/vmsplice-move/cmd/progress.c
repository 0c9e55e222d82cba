// SPDX-License-Identifier: GPL-2.0
/* A progress bar on a terminal: bytes, rate, ETA.  Quiet otherwise. */
#define _GNU_SOURCE
#include "cmd.h"

#include <stdio.h>
#include <unistd.h>

void progress_init(struct progress *p, const char *verb, bool quiet)
{
	p->on = !quiet && isatty(STDERR_FILENO);
	p->verb = verb;
	p->t0 = now_s();
	p->last = p->t0;	/* first draw after 0.1 s: a rate by then */
}

int progress_cb(void *arg, uint64_t done, uint64_t total)
{
	struct progress *p = arg;
	char a[32], b[32], r[32];
	double t = now_s(), secs = t - p->t0, rate;
	int width = 24, fill;

	if (!p->on || (t - p->last < 0.1 && done < total))
		return 0;
	p->last = t;
	rate = secs > 0 ? done / secs : 0;
	fill = total ? (int)(width * (double)done / total) : width;
	fprintf(stderr, "\r%s %s / %s [", p->verb, fmt_bytes(a, sizeof(a), done),
		fmt_bytes(b, sizeof(b), total));
	for (int i = 0; i < width; i++)
		fputc(i < fill ? '#' : '.', stderr);
	fprintf(stderr, "] %3.0f%% %s/s", total ? 100.0 * done / total : 100.0,
		fmt_bytes(r, sizeof(r), rate));
	if (rate > 0 && done < total) {
		double eta = (total - done) / rate;

		fprintf(stderr, " ETA %d:%02d", (int)eta / 60, (int)eta % 60);
	} else {
		fprintf(stderr, "         ");
	}
	fflush(stderr);
	return 0;
}

void progress_end(struct progress *p)
{
	if (p->on && p->last > p->t0)
		fputc('\n', stderr);
}
