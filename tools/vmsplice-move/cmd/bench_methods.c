// SPDX-License-Identifier: GPL-2.0
/*
 * One benchmark measurement: a region of one kind handed from a child
 * process (the giver) to this one (the taker) in one of six ways, timed
 * from the giver's first call (the taker's, for pvreadv and uffd, where
 * the giver does nothing) to the taker's last byte, the data checked
 * every time.  Not from the taker's "go": waking the giver for it is the
 * benchmark's own cost, which UFFDIO_MOVE, in one process, does not pay
 * either (a halted vCPU takes a tenth of a millisecond or more to wake
 * under TCG); waking the taker when the data is there is the hand-over's
 * cost and is timed.
 *
 *   move      giver vmsplice(GIFT|UNMAP), taker vmsplice(MOVE)
 *   move2p    the same through two pipes in turn, a pipe-full a turn
 *             (vsm_give_pipes()): the giver fills one while the taker
 *             empties the other
 *   vmsplice  giver vmsplice(GIFT), taker vmsplice() (copies)
 *   read      giver vmsplice(GIFT), taker read() (copies)
 *   pvreadv   taker process_vm_readv() from the giver (copies, no pipe)
 *   uffd      UFFDIO_MOVE within one process (moves; the in-tree anchor)
 */
#define _GNU_SOURCE
#include "bench.h"
#include "cmd.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

const char *const bench_kind_name[NR_KINDS] = { "4k", "thp", "mthp" };
const char *const bench_dest_name[NR_DESTS] = { "fresh", "populated" };
const char *const bench_method_name[NR_METHODS] = {
	"move", "move2p", "vmsplice", "read", "pvreadv", "uffd",
};

/* Memory of one kind: 4k no THP, thp 2 MiB aligned + MADV_HUGEPAGE, mthp
 * aligned to the folio size with no advice (the size's knob is "always",
 * the PMD size follows the top-level "madvise"). */
static void *kind_alloc(const struct bench_env *env, enum bench_kind k, size_t len)
{
	size_t align;
	char *p, *s;

	if (k == K_4K)
		return vsm_alloc(len, false);
	if (k == K_THP)
		return vsm_alloc(len, true);
	align = env->mthp;
	p = mmap(NULL, len + align, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	s = (char *)(((uintptr_t)p + align - 1) & ~(uintptr_t)(align - 1));
	if (s > p)
		munmap(p, s - p);
	munmap(s + len, p + len + align - (s + len));
	return s;
}

/* One word per page and the last word: catches a wrong or missing page. */
static bool check(const char *p, size_t len, uint64_t seed, size_t page)
{
	for (size_t off = 0; off < len; off += page)
		if (pattern_check(p + off, len - off < 8 ? len - off : 8, off, seed) >= 0)
			return false;
	return len < 8 || pattern_check(p + len - 8, 8, len - 8, seed) < 0;
}

static int full_read(int fd, char *p, size_t len)
{
	while (len) {
		ssize_t n = read(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= n;
	}
	return 0;
}

static void populate(char *p, size_t len, size_t page)
{
	for (size_t off = 0; off < len; off += page)
		p[off] = 1;
}

/*
 * move2p's turn: what one pipe holds, one slot a page (4 KiB), a whole THP
 * a slot (thp: never cut one), a folio a slot (mthp).
 */
static size_t pipe_chunk(const struct bench_env *env, enum bench_kind k)
{
	size_t slots = env->pipe_size / env->page;

	if (k == K_THP)
		return slots * env->thp;
	if (k == K_MTHP)
		return slots * env->mthp;
	return env->pipe_size;
}

/* What the giver tells the taker, in a shared page. */
struct giver_report {
	double start;		/* its clock at its first call */
	long sleeps;		/* voluntary context switches while giving */
};

/* Voluntary context switches of this process so far: how often it slept. */
static long sleeps_now(void)
{
	struct rusage ru;

	return getrusage(RUSAGE_SELF, &ru) ? 0 : ru.ru_nvcsw;
}

/*
 * The child: fill, say ready, give on "go" (its clock then in @rep),
 * wait until told to leave.
 */
static void giver(const struct bench_env *env, const struct bench_row *row,
		  char *src, uint64_t seed, const int *pipe_wr, int ready_wr, int go_rd,
		  volatile struct giver_report *rep)
{
	enum bench_method m = row->method;
	size_t len = row->size;
	ssize_t n = 0;
	long sleeps;
	char c;

	pattern_fill(src, len, 0, seed);
	if (write(ready_wr, "r", 1) != 1 || read(go_rd, &c, 1) != 1)
		_exit(1);
	sleeps = sleeps_now();
	rep->start = now_s();
	if (m == M_MOVE2P)
		n = vsm_give_pipes(pipe_wr, 2, pipe_chunk(env, row->kind), src, len, NULL);
	else if (m == M_MOVE && env->unmap)
		n = vsm_give(pipe_wr[0], src, len, NULL);
	else if (m != M_PVREADV)
		n = vsm_give_copy(pipe_wr[0], src, len, NULL);
	rep->sleeps = sleeps_now() - sleeps;
	close(pipe_wr[0]);
	if (pipe_wr[1] >= 0)	/* move2p's second pipe */
		close(pipe_wr[1]);
	if (m != M_PVREADV && n != (ssize_t)len)
		_exit(1);
	/* Keep the memory alive until the taker is done (process_vm_readv). */
	if (read(go_rd, &c, 1) < 0)
		_exit(1);
	_exit(0);
}

/*
 * Two processes: seconds, or -1 when the data or a call went wrong; in
 * *@sleeps how often the two slept during the hand-over.
 */
static double two_process(const struct bench_env *env, const struct bench_row *row,
			  uint64_t seed, long *sleeps)
{
	int p[2], q[2] = { -1, -1 }, ready[2], go[2];
	size_t len = row->size;
	char *src, *dst = NULL, c;
	volatile struct giver_report *rep;
	long taker_sleeps = 0;
	double t = -1, end;
	ssize_t got = -1;
	pid_t pid;

	if (pipe2(p, O_CLOEXEC) || pipe2(ready, O_CLOEXEC) || pipe2(go, O_CLOEXEC))
		return -1;
	if (row->method == M_MOVE2P && pipe2(q, O_CLOEXEC))
		goto out_pipes;
	if (fcntl(p[1], F_SETPIPE_SZ, (int)env->pipe_size) < 0 ||
	    (q[1] >= 0 && fcntl(q[1], F_SETPIPE_SZ, (int)env->pipe_size) < 0)) {
		fprintf(stderr, "bench: F_SETPIPE_SZ %zu: %m\n", env->pipe_size);
		goto out_pipes;
	}
	rep = mmap(NULL, sizeof(*rep), PROT_READ | PROT_WRITE,
		   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (rep == MAP_FAILED)
		goto out_pipes;
	src = kind_alloc(env, row->kind, len);	/* same address in both */
	if (!src)
		goto out_start;
	fflush(NULL);
	pid = fork();
	if (pid < 0)
		goto out_start;
	if (pid == 0) {
		int wr[2] = { p[1], q[1] };

		close(p[0]);
		if (q[0] >= 0)
			close(q[0]);
		giver(env, row, src, seed, wr, ready[1], go[0], rep);
	}
	close(p[1]);
	p[1] = -1;
	if (q[1] >= 0)
		close(q[1]);
	q[1] = -1;
	munmap(src, len);
	dst = kind_alloc(env, row->kind, len);
	if (!dst || read(ready[0], &c, 1) != 1)
		goto out;
	if (row->dest == D_POPULATED)
		populate(dst, len, env->page);

	rep->start = 0;
	taker_sleeps = sleeps_now();
	t = now_s();
	if (write(go[1], "g", 1) != 1) {
		t = -1;
		goto out;
	}
	switch (row->method) {
	case M_MOVE:
		got = vsm_take(p[0], dst, len, NULL);
		break;
	case M_MOVE2P: {
		int rd[2] = { p[0], q[0] };

		got = vsm_take_pipes(rd, 2, pipe_chunk(env, row->kind), dst, len, NULL);
		break;
	}
	case M_VMSPLICE:
		got = vsm_take_copy(p[0], dst, len, NULL);
		break;
	case M_READ:
		got = full_read(p[0], dst, len) ? -1 : (ssize_t)len;
		break;
	case M_PVREADV: {
		struct iovec l = { dst, len }, r = { src, len };
		size_t done = 0;

		/* It may return short (at most MAX_RW_COUNT a call). */
		while (done < len) {
			l = (struct iovec){ dst + done, len - done };
			r = (struct iovec){ src + done, len - done };
			got = process_vm_readv(pid, &l, 1, &r, 1, 0);
			if (got <= 0)
				break;
			done += got;
		}
		got = done;
		break;
	}
	default:
		break;
	}
	end = now_s();
	taker_sleeps = sleeps_now() - taker_sleeps;
	/* The giver, woken by "go", reads its clock after the taker did. */
	if (row->method != M_PVREADV)
		t = rep->start >= t ? rep->start : -1;
	t = t < 0 ? -1 : end - t;
	if (got != (ssize_t)len || !check(dst, len, seed, env->page))
		t = -1;
out:
	if (write(go[1], "g", 1) != 1)
		t = -1;
	close(go[1]);
	go[1] = -1;
	{
		int st = 0;

		waitpid(pid, &st, 0);
		if (!WIFEXITED(st) || WEXITSTATUS(st))
			t = -1;
	}
	if (dst)
		munmap(dst, len);
out_start:
	if (t >= 0)	/* the giver has exited: its report is complete */
		*sleeps = taker_sleeps + rep->sleeps;
	munmap((void *)rep, sizeof(*rep));
out_pipes:
	for (int i = 0; i < 2; i++) {
		if (p[i] >= 0)
			close(p[i]);
		if (q[i] >= 0)
			close(q[i]);
	}
	close(ready[0]);
	close(ready[1]);
	close(go[0]);
	if (go[1] >= 0)
		close(go[1]);
	return t;
}

/* UFFDIO_MOVE of the whole region within this process. */
static double uffd_move(const struct bench_env *env, struct bench_row *row, uint64_t seed)
{
#ifdef UFFDIO_MOVE
	struct uffdio_api api = { .api = UFFD_API };
	struct uffdio_register reg = { 0 };
	struct uffdio_move mv = { 0 };
	size_t len = row->size;
	char *src = kind_alloc(env, row->kind, len), *dst = kind_alloc(env, row->kind, len);
	double t = -1;
	int uffd = -1;

	if (!src || !dst)
		goto out;
	pattern_fill(src, len, 0, seed);
	uffd = syscall(__NR_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (uffd < 0 || ioctl(uffd, UFFDIO_API, &api)) {
		snprintf(row->note, sizeof(row->note), "userfaultfd: %s", strerror(errno));
		row->skipped = true;
		goto out;
	}
	reg.range.start = (uintptr_t)dst;
	reg.range.len = len;
	reg.mode = UFFDIO_REGISTER_MODE_MISSING;
	if (ioctl(uffd, UFFDIO_REGISTER, &reg)) {
		snprintf(row->note, sizeof(row->note), "UFFDIO_REGISTER: %s", strerror(errno));
		row->skipped = true;
		goto out;
	}
	mv.dst = (uintptr_t)dst;
	mv.src = (uintptr_t)src;
	mv.len = len;
	t = now_s();
	if (ioctl(uffd, UFFDIO_MOVE, &mv) || mv.move != (int64_t)len) {
		snprintf(row->note, sizeof(row->note), "UFFDIO_MOVE: %s", strerror(errno));
		row->skipped = errno == EINVAL || errno == ENOTTY;
		t = -1;
		goto out;
	}
	t = now_s() - t;
	if (!check(dst, len, seed, env->page))
		t = -1;
out:
	if (uffd >= 0)
		close(uffd);
	if (src)
		munmap(src, len);
	if (dst)
		munmap(dst, len);
	return t;
#else
	(void)env;
	(void)seed;
	snprintf(row->note, sizeof(row->note), "built without UFFDIO_MOVE (6.8+ uapi headers)");
	row->skipped = true;
	return -1;
#endif
}

void bench_run(const struct bench_env *env, int reps, struct bench_row *row)
{
	struct vsm_stats b, a, d;
	long sleeps = 0;

	row->secs = 1e30;
	row->worst = 0;
	row->sleeps = -1;
	if (row->kind == K_MTHP && !env->mthp) {
		row->skipped = true;
		snprintf(row->note, sizeof(row->note), "%s", env->mthp_why);
		return;
	}
	if (row->method == M_MOVE2P && !env->unmap) {
		row->skipped = true;
		snprintf(row->note, sizeof(row->note), "kernel lacks SPLICE_F_UNMAP");
		return;
	}
	if (row->method == M_UFFD && row->dest == D_POPULATED) {
		row->skipped = true;
		snprintf(row->note, sizeof(row->note), "UFFDIO_MOVE needs an empty destination");
		return;
	}
	vsm_stats_read(&b);
	for (int i = 0; i < reps; i++) {
		long slept = 0;
		double t = row->method == M_UFFD ? uffd_move(env, row, 0x1234 + i) :
			   two_process(env, row, 0x1234 + i, &slept);

		if (t < 0) {
			row->failed = !row->skipped;
			if (row->failed && !row->note[0])
				snprintf(row->note, sizeof(row->note), "FAILED: data or a call went wrong");
			return;
		}
		if (t < row->secs)
			row->secs = t;
		if (t > row->worst)
			row->worst = t;
		sleeps += slept;
	}
	if (row->method != M_UFFD)
		row->sleeps = sleeps / (row->size / 1048576.0) / reps;
	vsm_stats_read(&a);
	vsm_stats_delta(&b, &a, &d);
	row->counters = d.supported;
	row->moved = d.moved / reps;
	row->copied = d.copied / reps;
	/*
	 * Best of the repetitions is the figure, but when they differ by more
	 * than 2x something else was running (a host busy under a TCG guest
	 * stretches every hand-over between the two processes): say so.
	 */
	if (reps > 1 && row->worst > 2 * row->secs)
		snprintf(row->note, sizeof(row->note), "NOISY: repetitions %.1fx apart",
			 row->worst / row->secs);
	if (!bench_moves(row->method))
		return;
	/* A move row that did not move is not a move measurement: say so. */
	row->move_ok = d.supported && row->moved >= (long long)(row->size / env->page);
	if (!env->unmap)
		snprintf(row->note, sizeof(row->note), "NOT MOVED: kernel lacks SPLICE_F_UNMAP (copied)");
	else if (!d.supported)
		snprintf(row->note, sizeof(row->note), "NOT PROVEN: no move counters");
	else if (!row->move_ok)
		snprintf(row->note, sizeof(row->note), "NOT MOVED: %lld of %llu pages moved",
			 row->moved, (unsigned long long)(row->size / env->page));
}
