// SPDX-License-Identifier: GPL-2.0
/*
 * vmsplice-move bench --kernel-cost: what the kernel spends per page, without the hand-over
 * around it.  `vmsplice-move bench` times a whole hand-over between two
 * processes through a 1 MiB pipe (the giver's call, the taker's call, and
 * the two taking turns); this times, in one process with a pipe that
 * holds the whole region, the giver's vmsplice(SPLICE_F_GIFT |
 * SPLICE_F_UNMAP) and the taker's vmsplice(SPLICE_F_MOVE) separately, and
 * UFFDIO_MOVE of the same region, each on fresh memory, best of --repeat;
 * and, still in one process, the region given and taken in turns through a
 * 1 MiB pipe, a pipe-full at a time: the calls a pipe-full cost with
 * nobody to wake.
 * Then what a call costs apart from its pages: 64 MiB given in calls of
 * 64 KiB to 64 MiB, against the same calls of MADV_DONTNEED (the zap that a
 * gift's unmap is) and of UFFDIO_MOVE.
 * The data is checked every time; a move row whose pages did not all move
 * (vmsplice_move_pages in /proc/vmstat) is refused.
 *
 * Needs root: a pipe holding 64 MiB of 4 KiB pages needs
 * /proc/sys/fs/pipe-max-size raised (restored afterwards).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "cmd.h"
#include "vmsplice_move.h"

#ifndef SPLICE_F_UNMAP
#define SPLICE_F_UNMAP	0x10
#endif

#define PS		4096UL
#define THP		(2UL << 20)
#define PIPE_MAX	"/proc/sys/fs/pipe-max-size"

#define TURN_PIPE	(1 << 20)

struct row {
	double give, take, uffd, turns;	/* seconds, best of the repeats */
	const char *error;
};

static double now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec * 1e-9;
}

/* @len bytes at an address aligned to @align; huge: MADV_HUGEPAGE. */
static char *region(size_t len, size_t align, bool huge)
{
	char *p = mmap(NULL, len + align, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	char *a;

	if (p == MAP_FAILED)
		return NULL;
	a = (char *)(((uintptr_t)p + align - 1) & ~(uintptr_t)(align - 1));
	if (huge && madvise(a, len, MADV_HUGEPAGE))
		return NULL;
	return a;
}

static void fill(char *p, size_t len)
{
	for (size_t off = 0; off < len; off += PS)
		*(uint64_t *)(p + off) = off / PS * 2654435761u + 1;
}

static bool intact(const char *p, size_t len)
{
	for (size_t off = 0; off < len; off += PS)
		if (*(const uint64_t *)(p + off) != off / PS * 2654435761u + 1)
			return false;
	return true;
}

/*
 * A pipe of @size bytes for a gift of @src's @len bytes, which are filled,
 * and the move counters before it in *@before.
 */
static const char *gift_pipe(int p[2], size_t size, char *src, size_t len,
			     struct vsm_stats *before)
{
	if (pipe(p)) {
		p[0] = p[1] = -1;
		return "out of memory";
	}
	if (fcntl(p[1], F_SETPIPE_SZ, (int)size) < 0)
		return "F_SETPIPE_SZ failed (pipe-max-size)";
	fill(src, len);
	if (vsm_stats_read(before) || !before->supported)
		return "no vmsplice move counters (kernel without the change)";
	return NULL;
}

/* Whether @dst holds the @len bytes moved there since *@before, every page moved. */
static const char *all_moved(const char *dst, size_t len,
			     const struct vsm_stats *before)
{
	struct vsm_stats after;

	if (!intact(dst, len))
		return "data wrong after the move";
	if (vsm_stats_read(&after) ||
	    after.moved - before->moved != (long long)(len / PS))
		return "NOT MOVED: the counters show copies";
	return NULL;
}

/*
 * Give @len bytes to a pipe and take them back: with @turn 0 through a pipe
 * that holds them all, one call each; else through a pipe of @turn bytes,
 * a pipe-full at a time, as the two processes of a hand-over take turns,
 * but in one process (nobody to wake).  The time of the gifts in *@give,
 * of the takes in *@take.
 */
static const char *one_move(size_t len, bool huge, size_t turn, double *give,
			    double *take)
{
	size_t align = huge ? THP : PS, off = 0;
	char *src = region(len, align, huge), *dst = region(len, align, huge);
	size_t pipe_size = turn ? turn : huge ? len / THP * PS : len;
	struct vsm_stats before;
	const char *err;
	int p[2];
	double t;

	if (!src || !dst)
		return "out of memory";
	err = gift_pipe(p, pipe_size, src, len, &before);
	if (err)
		goto out;
	*give = *take = 0;
	while (off < len) {
		struct iovec v = { src + off, len - off };
		size_t got = 0;
		ssize_t n;

		t = now();
		n = vmsplice(p[1], &v, 1, SPLICE_F_GIFT | SPLICE_F_UNMAP);
		*give += now() - t;
		if (n <= 0 || (!turn && n != (ssize_t)len)) {
			err = n < 0 && errno == EINVAL ?
			      "no SPLICE_F_UNMAP (kernel without the change)" :
			      "the gift was short";
			goto out;
		}
		t = now();
		while (got < (size_t)n) {
			struct iovec w = { dst + off + got, n - got };
			ssize_t m = vmsplice(p[0], &w, 1, SPLICE_F_MOVE);

			if (m <= 0 || (!turn && m != n)) {
				err = "the take was short";
				goto out;
			}
			got += m;
		}
		*take += now() - t;
		off += got;
	}
	err = all_moved(dst, len, &before);
out:
	close(p[0]);
	close(p[1]);
	munmap(src, len);
	munmap(dst, len);
	return err;
}

/* UFFDIO_MOVE of @len bytes in calls of @call bytes (0: one call). */
static const char *one_uffd(size_t len, bool huge, size_t call, double *secs)
{
	size_t align = huge ? THP : PS;
	char *src = region(len, align, huge), *dst = region(len, align, huge);
	struct uffdio_api api = { .api = UFFD_API };
	struct uffdio_register reg = { .mode = UFFDIO_REGISTER_MODE_MISSING };
	struct uffdio_move mv = { 0 };
	const char *err = NULL;
	int u;
	double t;

	if (!src || !dst)
		return "out of memory";
	fill(src, len);
	u = syscall(__NR_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	reg.range.start = (uintptr_t)dst;
	reg.range.len = len;
	if (u < 0 || ioctl(u, UFFDIO_API, &api) || ioctl(u, UFFDIO_REGISTER, &reg)) {
		err = "userfaultfd unavailable";
		goto out;
	}
	if (!call)
		call = len;
	*secs = 0;
	for (size_t off = 0; off < len; off += call) {
		mv.dst = (uintptr_t)dst + off;
		mv.src = (uintptr_t)src + off;
		mv.len = call;
		mv.move = 0;
		t = now();
		if (ioctl(u, UFFDIO_MOVE, &mv) || mv.move != (int64_t)call) {
			err = "UFFDIO_MOVE failed";
			goto out;
		}
		*secs += now() - t;
	}
	if (!intact(dst, len))
		err = "data wrong after UFFDIO_MOVE";
out:
	if (u >= 0)
		close(u);
	munmap(src, len);
	munmap(dst, len);
	return err;
}

static void measure(size_t len, bool huge, int repeat, struct row *r)
{
	r->give = r->take = r->uffd = r->turns = 1e30;
	r->error = NULL;
	for (int i = 0; i < repeat; i++) {
		double g, t, u, turn_give, turn_take;

		r->error = one_move(len, huge, 0, &g, &t);
		if (!r->error)
			r->error = one_uffd(len, huge, 0, &u);
		if (!r->error)
			r->error = one_move(len, huge, TURN_PIPE, &turn_give, &turn_take);
		if (r->error)
			break;
		if (turn_give + turn_take < r->turns)
			r->turns = turn_give + turn_take;
		r->give = g < r->give ? g : r->give;
		r->take = t < r->take ? t : r->take;
		r->uffd = u < r->uffd ? u : r->uffd;
	}
}

/*
 * The fixed cost of a call: @len bytes of 4 KiB pages given (GIFT|UNMAP,
 * into a pipe holding them all) in calls of @call bytes, the gifts timed,
 * then taken in one untimed call and checked; and, for the unmap alone,
 * MADV_DONTNEED of populated memory in calls of @call bytes, the stock
 * kernel's zap that a gift's unmap is.
 */
static const char *one_calls(size_t len, size_t call, double *give,
			     double *dontneed)
{
	char *src = region(len, PS, false), *dst = region(len, PS, false);
	struct iovec w = { dst, len };
	struct vsm_stats before;
	const char *err;
	int p[2];
	double t;

	if (!src || !dst)
		return "out of memory";
	err = gift_pipe(p, len, src, len, &before);
	if (err)
		goto out;
	*give = 0;
	for (size_t off = 0; off < len; off += call) {
		struct iovec v = { src + off, call };
		ssize_t n;

		t = now();
		n = vmsplice(p[1], &v, 1, SPLICE_F_GIFT | SPLICE_F_UNMAP);
		*give += now() - t;
		if (n != (ssize_t)call) {
			err = "the gift was short";
			goto out;
		}
	}
	if (vmsplice(p[0], &w, 1, SPLICE_F_MOVE) != (ssize_t)len) {
		err = "the take was short";
		goto out;
	}
	err = all_moved(dst, len, &before);
	if (err)
		goto out;
	fill(dst, len);
	*dontneed = 0;
	for (size_t off = 0; off < len; off += call) {
		t = now();
		if (madvise(dst + off, call, MADV_DONTNEED)) {
			err = "MADV_DONTNEED failed";
			goto out;
		}
		*dontneed += now() - t;
	}
out:
	close(p[0]);
	close(p[1]);
	munmap(src, len);
	munmap(dst, len);
	return err;
}

/*
 * What a call costs apart from its pages: CALLS_LEN of 4 KiB pages given,
 * unmapped by MADV_DONTNEED and moved by UFFDIO_MOVE in calls of each size
 * of @calls, best of @repeat.  A hand-over through one 1 MiB pipe gives in
 * calls of 1 MiB.
 */
#define CALLS_LEN	(64UL << 20)

static int print_calls(int repeat)
{
	static const size_t calls[] = { 64 << 10, 1 << 20, 4 << 20, CALLS_LEN };
	int rc = 0;

	printf("\nPer call: %lu MiB of 4 KiB pages in calls of CALL bytes\n"
	       "%9s %11s %15s %11s %14s %10s\n", CALLS_LEN >> 20, "call",
	       "give us/pg", "dontneed us/pg", "uffd us/pg", "give/dontneed",
	       "give/uffd");
	for (size_t c = 0; c < sizeof(calls) / sizeof(calls[0]); c++) {
		double give = 1e30, dontneed = 1e30, uffd = 1e30;
		size_t pages = CALLS_LEN / PS;
		const char *err = NULL;

		for (int i = 0; i < repeat; i++) {
			double g, d, u;

			err = one_calls(CALLS_LEN, calls[c], &g, &d);
			if (!err)
				err = one_uffd(CALLS_LEN, false, calls[c], &u);
			if (err)
				break;
			give = g < give ? g : give;
			dontneed = d < dontneed ? d : dontneed;
			uffd = u < uffd ? u : uffd;
		}
		if (err) {
			printf("%5zu KiB %s\n", calls[c] >> 10, err);
			rc = 1;
			continue;
		}
		printf("%5zu KiB %11.3f %15.3f %11.3f %14.2f %10.2f\n",
		       calls[c] >> 10, give * 1e6 / pages, dontneed * 1e6 / pages,
		       uffd * 1e6 / pages, give / dontneed, give / uffd);
	}
	printf("give = vmsplice(GIFT|UNMAP) into a pipe holding it all, "
	       "dontneed = MADV_DONTNEED of populated memory (the same zap), "
	       "uffd = UFFDIO_MOVE, each in calls of CALL bytes; best of %d\n",
	       repeat);
	return rc;
}

int vsm_cmd_move_bench(int argc, char **argv)
{
	static const size_t small[] = { 1 << 20, 16 << 20, 64 << 20 };
	static const size_t large[] = { 64 << 20, 256 << 20, 1 << 30 };
	char old[32] = "";
	int repeat = 3, rc = 0;
	char why[192];
	FILE *f;

	if (argc > 1 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
		printf("Usage: vmsplice-move bench --kernel-cost [REPEAT]\n\nPer-page cost of the giver's and "
		       "the taker's vmsplice() and of UFFDIO_MOVE,\none process, fresh "
		       "memory, best of REPEAT (default 3); then the same per call size\n"
		       "(64 KiB to 64 MiB), with MADV_DONTNEED.  Root.\n");
		return 0;
	}
	if (argc > 1)
		repeat = atoi(argv[1]);
	if (repeat < 1 || repeat > 50) {
		fprintf(stderr, "move-bench: REPEAT is 1..50\n");
		return 2;
	}
	if (!bench_clock_ok(why, sizeof(why))) {
		fprintf(stderr, "move-bench: refusing to measure: %s\n", why);
		return 5;
	}
	f = fopen(PIPE_MAX, "r+");
	if (!f || !fgets(old, sizeof(old), f) || fseek(f, 0, SEEK_SET) ||
	    fprintf(f, "%d", 64 << 20) < 0 || fflush(f)) {
		fprintf(stderr, "move-bench: cannot raise %s (run as root)\n", PIPE_MAX);
		return 5;
	}
	fclose(f);

	printf("%9s %-4s %11s %11s %11s %11s %10s %10s %11s %11s\n", "size", "kind",
	       "give us/pg", "take us/pg", "both us/pg", "uffd us/pg",
	       "take/uffd", "both/uffd", "turns us/pg", "turns/uffd");
	for (int k = 0; k < 2; k++) {
		const size_t *sizes = k ? large : small;

		for (int s = 0; s < 3; s++) {
			size_t len = sizes[s], pages = len / PS;
			struct row r;

			measure(len, k, repeat, &r);
			if (r.error) {
				printf("%6zu MiB %-4s %s\n", len >> 20, k ? "thp" : "4k", r.error);
				rc = 1;
				continue;
			}
			printf("%6zu MiB %-4s %11.3f %11.3f %11.3f %11.3f %10.2f %10.2f %11.3f %11.2f\n",
			       len >> 20, k ? "thp" : "4k", r.give * 1e6 / pages,
			       r.take * 1e6 / pages, (r.give + r.take) * 1e6 / pages,
			       r.uffd * 1e6 / pages, r.take / r.uffd,
			       (r.give + r.take) / r.uffd, r.turns * 1e6 / pages,
			       r.turns / r.uffd);
		}
	}
	printf("us/pg: microseconds per 4 KiB of the region; give = vmsplice(GIFT|UNMAP) "
	       "into a pipe holding it all, take = vmsplice(MOVE) into fresh memory, "
	       "uffd = UFFDIO_MOVE in the same process, turns = give and take in turns "
	       "through a 1 MiB pipe, a pipe-full at a time, in the same process; "
	       "best of %d\n", repeat);
	if (print_calls(repeat))
		rc = 1;
	f = fopen(PIPE_MAX, "w");
	if (f) {
		fputs(old, f);
		fclose(f);
	}
	return rc;
}
