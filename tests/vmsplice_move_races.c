// SPDX-License-Identifier: GPL-2.0
/*
 * vmsplice(SPLICE_F_MOVE) against everything that can happen at the same
 * time: a second reader on the pipe, mprotect(), munmap() and fork() in the
 * reader, signals, and a writer killed mid-stream.  Every page carries its
 * sequence number and a checksum of itself, so each test can say exactly
 * which pages arrived, whether they are right, and whether any was lost or
 * delivered twice.  All loops are bounded by page counts; nothing waits on
 * time.  The kernel's own checks (KASAN, lockdep, DEBUG_VM) run alongside
 * in the test VM.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kselftest_harness.h"

#include "lib/mem.h"
#include "lib/pattern.h"
#include "lib/xfer.h"

#define PS	4096UL
#define GM	give_flags()

/* Page @seq: its number, then a pattern that only page @seq has. */
static void tag_page(char *p, uint64_t seq)
{
	pattern_fill(p + 8, PS - 8, (uint32_t)seq + 1, 8);
	memcpy(p, &seq, 8);
}

/* The sequence number of a correctly tagged page, or -1. */
static int64_t page_seq(const char *p)
{
	uint64_t seq;

	memcpy(&seq, p, 8);
	if (pattern_check(p + 8, PS - 8, (uint32_t)seq + 1, 8) != (size_t)-1)
		return -1;
	return (int64_t)seq;
}

/*
 * Writer process: gifts pages @first..@first+@n-1, @batch at a time, from
 * fresh memory each batch, then exits (closing its end of the pipe).
 */
static pid_t start_writer(int rd, int wr, uint64_t first, size_t n, size_t batch)
{
	pid_t pid = fork();

	if (pid)
		return pid;
	close(rd);	/* a reader that dies must leave the writer EPIPE */
	for (size_t done = 0; done < n; done += batch) {
		size_t k = n - done < batch ? n - done : batch;
		char *src = map_anon(k * PS);
		struct iovec iov = { src, k * PS };

		if (!src)
			_exit(2);
		for (size_t i = 0; i < k; i++)
			tag_page(src + i * PS, first + done + i);
		while (iov.iov_len) {
			ssize_t r = vmsplice(wr, &iov, 1, GM);

			if (r < 0 && errno == EINTR)
				continue;
			if (r <= 0)
				_exit(3);
			iov.iov_base = (char *)iov.iov_base + r;
			iov.iov_len -= r;
		}
		munmap(src, k * PS);
	}
	_exit(0);
}

/*
 * Read one page with SPLICE_F_MOVE into @dst, retrying after EINTR and
 * EFAULT (the page then stays in the pipe).  Returns 1 for a page, 0 at
 * end of file, -1 on another error.  @efaults counts the retries.
 */
static int take_page(int rd, char *dst, int *efaults)
{
	struct iovec iov = { dst, PS };

	for (;;) {
		ssize_t r = vmsplice(rd, &iov, 1, SPLICE_F_MOVE);

		if (r == (ssize_t)PS)
			return 1;
		if (r == 0)
			return 0;
		if (r < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (r < 0 && errno == EFAULT) {
			(*efaults)++;
			return 2;	/* caller makes the page writable again */
		}
		return -1;
	}
}

/*
 * Two reader processes on one pipe, one writer: every page arrives exactly
 * once, at one of the readers, intact.
 */
TEST(two_readers_one_pipe)
{
	const size_t n = 2000;
	_Atomic int *seen = (_Atomic int *)map_anon_shared(n * sizeof(int));
	_Atomic int *bad = (_Atomic int *)map_anon_shared(sizeof(int));
	pid_t readers[2], writer;
	struct xfer_counters b, a;
	int p[2], status;

	xfer_counters_read(&b);
	ASSERT_NE(NULL, seen);
	ASSERT_NE(NULL, bad);
	ASSERT_EQ(0, pipe(p));
	writer = start_writer(p[0], p[1], 0, n, 16);
	close(p[1]);
	for (int r = 0; r < 2; r++) {
		readers[r] = fork();
		if (readers[r] == 0) {
			char *dst = map_anon(PS);
			int efaults = 0, got;

			while ((got = take_page(p[0], dst, &efaults)) == 1) {
				int64_t seq = page_seq(dst);

				if (seq < 0 || seq >= (int64_t)n)
					atomic_fetch_add(bad, 1);
				else
					atomic_fetch_add(&seen[seq], 1);
			}
			_exit(got == 0 ? 0 : 1);
		}
	}
	close(p[0]);
	ASSERT_EQ(writer, waitpid(writer, &status, 0));
	ASSERT_EQ(0, WEXITSTATUS(status));
	for (int r = 0; r < 2; r++) {
		ASSERT_EQ(readers[r], waitpid(readers[r], &status, 0));
		ASSERT_EQ(0, WEXITSTATUS(status));
	}
	ASSERT_EQ(0, *bad);
	xfer_counters_read(&a);
	if (xfer_kernel_moves())
		ASSERT_EQ((long long)n, xfer_counter_delta(&b, &a, "moved"));
	for (size_t i = 0; i < n; i++) {
		ASSERT_EQ(1, seen[i]) TH_LOG("page %zu delivered %d times", i, seen[i]);
	}
}

struct racer {
	char *region;
	size_t len;
	_Atomic bool stop;
	_Atomic long rounds;
	int kind;		/* 0 mprotect, 1 munmap+mmap, 2 fork */
};

static void *race(void *arg)
{
	struct racer *r = arg;

	while (!atomic_load(&r->stop)) {
		switch (r->kind) {
		case 0:
			mprotect(r->region, r->len, PROT_READ);
			mprotect(r->region, r->len, PROT_READ | PROT_WRITE);
			break;
		case 1:
			munmap(r->region, r->len);
			mmap(r->region, r->len, PROT_READ | PROT_WRITE,
			     MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
			break;
		case 2: {
			pid_t pid = fork();

			if (pid == 0)
				_exit(0);
			if (pid > 0)
				waitpid(pid, NULL, 0);
			break;
		}
		}
		atomic_fetch_add(&r->rounds, 1);
	}
	return NULL;
}

/*
 * The reader's destination changes under it.  Each page is read into the
 * racing region, then copied out for checking; EFAULT leaves the page in
 * the pipe, and the next try gets it.  With munmap racing, a page can be
 * delivered and then unmapped before it is copied out: it is counted as
 * delivered but not checked.
 */
static void reader_vs(struct __test_metadata *_metadata, int kind)
{
	const size_t n = 1500, len = 16 * PS;
	struct racer r = { .len = len, .kind = kind };
	char *check = map_anon(PS);
	size_t delivered = 0, verified = 0;
	int p[2], status, efaults = 0;
	pthread_t th;
	pid_t writer;

	struct xfer_counters b, a;

	r.region = map_anon(len);
	ASSERT_NE(NULL, r.region);
	xfer_counters_read(&b);
	ASSERT_NE(NULL, check);
	ASSERT_EQ(0, pipe(p));
	writer = start_writer(p[0], p[1], 0, n, 8);
	close(p[1]);
	ASSERT_EQ(0, pthread_create(&th, NULL, race, &r));

	for (size_t i = 0; delivered < n; i++) {
		char *dst = r.region + (i % 16) * PS;
		int got = take_page(p[0], dst, &efaults);

		if (got == 2)
			continue;		/* EFAULT: still in the pipe */
		ASSERT_EQ(1, got) TH_LOG("after %zu pages", delivered);
		/* A racing munmap may have removed or replaced the page. */
		if (copy_out(check, dst, PS) && (kind != 1 || page_seq(check) >= 0)) {
			ASSERT_EQ((int64_t)delivered, page_seq(check))
				TH_LOG("page %zu", delivered);
			verified++;
		}
		delivered++;
	}
	atomic_store(&r.stop, true);
	pthread_join(th, NULL);
	/* Nothing left over, nothing lost. */
	ASSERT_EQ(0, take_page(p[0], check, &efaults));
	ASSERT_EQ(writer, waitpid(writer, &status, 0));
	ASSERT_EQ(0, WEXITSTATUS(status));
	xfer_counters_read(&a);
	TH_LOG("%zu pages, %zu verified, %d EFAULT retries, %ld racer rounds, %lld moved",
	       delivered, verified, efaults, atomic_load(&r.rounds),
	       xfer_counter_delta(&b, &a, "moved"));
	ASSERT_LT(0, verified);
	/* The race must have hit the move path, not only the copy. */
	if (xfer_kernel_moves())
		ASSERT_LT(0, xfer_counter_delta(&b, &a, "moved"));
	close(p[0]);
}

TEST(mprotect_races_reader)
{
	reader_vs(_metadata, 0);
}

TEST(munmap_races_reader)
{
	reader_vs(_metadata, 1);
}

TEST(fork_races_reader)
{
	reader_vs(_metadata, 2);
}

static void on_alarm(int sig)
{
	(void)sig;
}

/*
 * Signals interrupt a reader waiting for pages (no SA_RESTART): it sees
 * EINTR or a short read, never a lost or repeated page.
 */
TEST(signals_interrupt_reader)
{
	const size_t n = 1000;
	struct sigaction sa = { .sa_handler = on_alarm };
	char *dst = map_anon(8 * PS);
	struct itimerval it = { { 0, 200 }, { 0, 200 } };
	size_t got = 0, eintr = 0;
	int p[2], status;
	pid_t writer;

	ASSERT_NE(NULL, dst);
	ASSERT_EQ(0, sigaction(SIGALRM, &sa, NULL));
	ASSERT_EQ(0, pipe(p));
	writer = start_writer(p[0], p[1], 0, n, 3);
	close(p[1]);
	ASSERT_EQ(0, setitimer(ITIMER_REAL, &it, NULL));
	while (got < n) {
		struct iovec iov = { dst, 8 * PS };
		ssize_t r = vmsplice(p[0], &iov, 1, SPLICE_F_MOVE);

		if (r < 0 && errno == EINTR) {
			eintr++;
			continue;
		}
		ASSERT_LT(0, r);
		ASSERT_EQ(0, r % PS);
		for (ssize_t off = 0; off < r; off += PS, got++) {
			ASSERT_EQ((int64_t)got, page_seq(dst + off));
		}
	}
	memset(&it, 0, sizeof(it));
	setitimer(ITIMER_REAL, &it, NULL);
	ASSERT_EQ(writer, waitpid(writer, &status, 0));
	ASSERT_EQ(0, WEXITSTATUS(status));
	TH_LOG("%zu pages, %zu EINTR", got, eintr);
	close(p[0]);
}

/*
 * The writer is killed while blocked on a full pipe: what it put in the
 * pipe is read intact and in order, and nothing else arrives.
 */
TEST(writer_killed_mid_stream)
{
	char *dst = map_anon(PS);
	int p[2], efaults = 0, got;
	int64_t next = 0;
	pid_t writer;

	ASSERT_NE(NULL, dst);
	ASSERT_EQ(0, pipe(p));
	writer = start_writer(p[0], p[1], 0, 100000, 64);
	close(p[1]);
	/* Read the first page: the writer is running and the pipe filled. */
	ASSERT_EQ(1, take_page(p[0], dst, &efaults));
	ASSERT_EQ(next++, page_seq(dst));
	ASSERT_EQ(0, kill(writer, SIGKILL));
	ASSERT_EQ(writer, waitpid(writer, NULL, 0));
	while ((got = take_page(p[0], dst, &efaults)) == 1) {
		ASSERT_EQ(next++, page_seq(dst));
	}
	ASSERT_EQ(0, got);
	TH_LOG("%lld pages before the kill", (long long)next);
	close(p[0]);
}

TEST_HARNESS_MAIN
