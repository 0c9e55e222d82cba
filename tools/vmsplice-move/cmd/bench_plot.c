// SPDX-License-Identifier: GPL-2.0
/* vmsplice-move bench --plot: cost per MiB against size, one line per method. */
#define _GNU_SOURCE
#include "bench.h"
#include "cmd.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>

int bench_plot(const char *png, const struct bench_row *rows, int nr,
	       char *why, size_t why_len)
{
	bool panel[NR_KINDS][NR_DESTS] = { { false } };
	int nr_panels = 0, st;
	FILE *g;

	for (int i = 0; i < nr; i++)
		if (!rows[i].skipped && !rows[i].failed &&
		    !panel[rows[i].kind][rows[i].dest]) {
			panel[rows[i].kind][rows[i].dest] = true;
			nr_panels++;
		}
	if (!nr_panels) {
		snprintf(why, why_len, "no row to plot");
		return -1;
	}
	if (strpbrk(png, "\"\\\n")) {
		snprintf(why, why_len, "the file name must not contain quotes or backslashes");
		return -1;
	}
	g = popen("gnuplot >&2", "w");
	if (!g) {
		snprintf(why, why_len, "cannot run gnuplot: %s", strerror(errno));
		return -1;
	}
	fprintf(g, "set terminal pngcairo size 1200,%d noenhanced\n"
		"set output \"%s\"\n"
		"set multiplot layout %d,1 title \"vmsplice-move bench: cost per MiB "
		"(lower is better)\"\n"
		"set logscale xy\nset grid\nset key outside right\n"
		"set xlabel \"size (MiB)\"\nset ylabel \"ms per MiB\"\n",
		360 * nr_panels, png, nr_panels);
	for (unsigned int k = 0; k < NR_KINDS; k++)
		for (unsigned int d = 0; d < NR_DESTS; d++) {
			bool first = true;

			if (!panel[k][d])
				continue;
			fprintf(g, "set title \"%s pages, %s destination\"\nplot ",
				bench_kind_name[k], bench_dest_name[d]);
			for (unsigned int m = 0; m < NR_METHODS; m++) {
				bool any = false;

				for (int i = 0; i < nr; i++)
					any |= rows[i].kind == k && rows[i].dest == d &&
					       rows[i].method == m && !rows[i].skipped &&
					       !rows[i].failed;
				if (!any)
					continue;
				fprintf(g, "%s'-' using 1:2 with linespoints title \"%s\"",
					first ? "" : ", ", bench_method_name[m]);
				first = false;
			}
			fprintf(g, "\n");
			for (unsigned int m = 0; m < NR_METHODS; m++) {
				bool any = false;

				for (int i = 0; i < nr; i++) {
					const struct bench_row *r = &rows[i];

					if (r->kind != k || r->dest != d || r->method != m ||
					    r->skipped || r->failed)
						continue;
					fprintf(g, "%g %g\n", r->size / 1048576.0,
						r->secs * 1e3 / (r->size / 1048576.0));
					any = true;
				}
				if (any)
					fprintf(g, "e\n");
			}
		}
	fprintf(g, "unset multiplot\n");
	st = pclose(g);
	if (st == -1 || !WIFEXITED(st) || WEXITSTATUS(st)) {
		snprintf(why, why_len, "gnuplot failed (status %d): is gnuplot installed? "
			 "(apt-get install gnuplot-nox)", WIFEXITED(st) ? WEXITSTATUS(st) : st);
		return -1;
	}
	return 0;
}
