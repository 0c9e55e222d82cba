// SPDX-License-Identifier: GPL-2.0
/*
 * vmsplice-handoff: one process hands a memory region to another through a
 * pipe, first with vmsplice(SPLICE_F_MOVE) on both sides, then by copying,
 * and prints what the kernel did (its counters), how long each took, how
 * much memory the two processes held together afterwards, and whether
 * every byte arrived.
 *
 *   vmsplice-handoff [SIZE_MIB]      (default 256)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../lib/prog_util.h"

#define SEED	0x76d5e3c1a2b4f607ULL

struct run {
	const char *name;
	bool move;		/* both sides use SPLICE_F_MOVE */
	double secs;
	struct vsm_stats delta;
	long long held_kb;	/* RssAnon of both processes at the end */
	bool intact;
	bool giver_zero;	/* the giver reads zeros afterwards */
};

static uint64_t word(size_t i)
{
	return (i * 0x9e3779b97f4a7c15ULL) ^ SEED;
}

/* This process's anonymous resident memory, in kB. */
static long long rss_anon_kb(void)
{
	const char *key = "RssAnon";
	char line[128];
	long long v = -1;
	size_t n = strlen(key);
	FILE *f = fopen("/proc/self/status", "re");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, key, n) && line[n] == ':') {
			sscanf(line + n + 1, "%lld", &v);
			break;
		}
	fclose(f);
	return v;
}

static void giver(size_t len, bool move, int pipe_wr, int ctl_wr, int go_rd)
{
	uint64_t *p = region(len);
	size_t n = len / sizeof(*p);
	char c = 0;
	ssize_t ret;
	bool zero = true;

	for (size_t i = 0; i < n; i++)
		p[i] = word(i);
	if (write(ctl_wr, "r", 1) != 1 || read(go_rd, &c, 1) != 1)
		exit(1);
	if (move) {
		ret = vsm_give(pipe_wr, p, len, NULL);
	} else {
		struct iovec iov;
		size_t done = 0;

		/* The classic gift: pages stay mapped, the reader copies. */
		ret = 0;
		while (done < len) {
			iov.iov_base = (char *)p + done;
			iov.iov_len = len - done;
			ret = vmsplice(pipe_wr, &iov, 1, SPLICE_F_GIFT);
			if (ret <= 0)
				break;
			done += ret;
		}
		ret = ret < 0 ? -1 : (ssize_t)done;
	}
	if (ret != (ssize_t)len) {
		perror("giver: vmsplice");
		exit(1);
	}
	struct { char zero; long long rss_kb; } rep;

	for (size_t i = 0; i < n; i += 4096 / sizeof(*p))
		zero &= p[i] == 0;
	rep.zero = zero ? 'z' : 'k';
	rep.rss_kb = rss_anon_kb();
	if (write(ctl_wr, &rep, sizeof(rep)) != sizeof(rep))
		exit(1);
	/* Stay alive, holding whatever it still has, until told to go. */
	if (read(go_rd, &c, 1) < 0)
		exit(1);
	exit(0);
}

static int handoff(size_t len, struct run *r)
{
	int p[2], ctl[2], go[2];
	struct vsm_stats before, after;
	struct { char zero; long long rss_kb; } rep;
	uint64_t *dst;
	size_t n = len / sizeof(*dst);
	ssize_t got;
	pid_t pid;
	char c;

	if (pipe(p) || pipe(ctl) || pipe(go))
		return -1;
	fcntl(p[1], F_SETPIPE_SZ, 1 << 20);

	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		close(p[0]);
		giver(len, r->move, p[1], ctl[1], go[0]);
	}
	close(p[1]);
	dst = region(len);
	if (read(ctl[0], &c, 1) != 1)
		return -1;

	vsm_stats_read(&before);
	r->secs = now();
	if (write(go[1], "g", 1) != 1)
		return -1;
	got = r->move ? vsm_take(p[0], dst, len, NULL) :
			vsm_take_copy(p[0], dst, len, NULL);
	r->secs = now() - r->secs;
	vsm_stats_read(&after);
	vsm_stats_delta(&before, &after, &r->delta);
	if (got != (ssize_t)len) {
		fprintf(stderr, "taker: got %zd of %zu bytes: %s\n", got, len,
			strerror(errno));
		return -1;
	}
	if (read(ctl[0], &rep, sizeof(rep)) != sizeof(rep))
		return -1;
	r->giver_zero = rep.zero == 'z';

	/* Both processes are alive: what do they hold together? */
	r->held_kb = rep.rss_kb + rss_anon_kb();

	r->intact = true;
	for (size_t i = 0; i < n; i++)
		if (dst[i] != word(i)) {
			r->intact = false;
			break;
		}
	if (write(go[1], "g", 1) != 1)
		return -1;
	waitpid(pid, NULL, 0);
	munmap(dst, len);
	close(p[0]);
	close(ctl[0]);
	close(ctl[1]);
	close(go[0]);
	close(go[1]);
	return 0;
}

int main(int argc, char **argv)
{
	size_t mib = argc > 1 ? strtoul(argv[1], NULL, 0) : 256;
	size_t len = mib << 20;
	struct run runs[2] = {
		{ .name = "move: GIFT|MOVE -> MOVE", .move = true },
		{ .name = "copy: GIFT -> vmsplice", .move = false },
	};
	bool ok = true;

	setvbuf(stdout, NULL, _IOLBF, 0);

	if (!mib) {
		fprintf(stderr, "usage: %s [SIZE_MIB]\n", argv[0]);
		return 2;
	}
	printf("vmsplice-move demo: %zu MiB (%zu pages of 4 KiB) from one process to another\n\n",
	       mib, len / 4096);
	/* Two rounds, alternating; the first warms caches up and is not shown. */
	for (int round = 0; round < 2; round++)
		for (int i = 0; i < 2; i++)
			if (handoff(len, &runs[i]))
				return 1;

	printf("%-26s %9s %9s %8s %8s %8s %10s %10s %6s\n", "hand-over", "time ms",
	       "MiB/s", "moved", "copied", "zero", "unmapped", "held MiB", "data");
	for (int i = 0; i < 2; i++) {
		struct run *r = &runs[i];

		printf("%-26s %9.1f %9.0f %8lld %8lld %8lld %10lld %10lld %6s\n",
		       r->name, r->secs * 1e3, mib / r->secs, r->delta.moved,
		       r->delta.copied, r->delta.moved_zero, r->delta.unmapped,
		       r->held_kb / 1024, r->intact ? "intact" : "WRONG");
		ok &= r->intact;
	}
	printf("\nmove vs copy: %.1fx faster; giver after the move reads %s\n",
	       runs[1].secs / runs[0].secs,
	       runs[0].giver_zero ? "zeros (its pages left it)" : "its old data (nothing moved)");
	if (!runs[0].delta.supported)
		printf("this kernel has no vmsplice move counters: it copied (boot the patched kernel)\n");
	else if (runs[0].delta.copied) {
		printf("copied by reason:");
		for (int i = 0; i < VSM_NR_REASONS; i++)
			if (runs[0].delta.fallback[i])
				printf(" %s=%lld", vsm_reason_names[i], runs[0].delta.fallback[i]);
		printf("\n");
	}
	return ok ? 0 : 1;
}
