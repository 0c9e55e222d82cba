// SPDX-License-Identifier: GPL-2.0
/*
 * vmsplice(SPLICE_F_MOVE) over the life of the pages: a writer that exits
 * before its gift is read, a reader that never reads, many iterations of
 * 4 KiB pages and of whole THPs and mTHP folios, errors in the middle of a
 * move, KSM pages, and the trace event.
 *
 * Data tests run on every kernel.  Tests that prove a move, and the leak
 * checks, start with REQUIRE_MOVE(): they SKIP on kernels without the
 * change and FAIL in the test VM, where the change is required; nothing
 * is skipped after a check.
 *
 * Leak checks (lib/leak.h) count what nr_anon_pages cannot see: pages no
 * page table maps that are still anonymous (a pipe's, or a leaked
 * reference's) — exact — and MemFree, within LEAK_FREE_SLACK_KB of noise
 * (KASAN's quarantine).  Every leak test prints its deltas.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "kselftest_harness.h"

#include "lib/kpage.h"
#include "lib/leak.h"
#include "lib/mem.h"
#include "lib/pagemap.h"
#include "lib/pattern.h"
#include "lib/setting.h"
#include "lib/thp.h"
#include "lib/vmstat.h"
#include "lib/words.h"
#include "lib/xfer.h"

#define PS		4096UL
#define GM		give_flags()
#define KSM_DIR		"/sys/kernel/mm/ksm"

static ssize_t vms(int fd, void *base, size_t len, unsigned int flags)
{
	struct iovec iov = { .iov_base = base, .iov_len = len };

	return vmsplice(fd, &iov, 1, flags);
}

/* Fork a writer that gifts @n pages of pattern @seed and exits. */
static pid_t gift_and_exit(int wr, size_t n, uint32_t seed)
{
	pid_t pid = fork();

	if (pid == 0) {
		char *src = map_anon(n * PS);

		if (!src)
			_exit(2);
		pattern_fill(src, n * PS, seed, 0);
		_exit(vms(wr, src, n * PS, GM) == (ssize_t)(n * PS) ? 0 : 1);
	}
	return pid;
}

/*
 * The leak checks' measurements: REQUIRE_MOVE() has run, so this is the
 * patched kernel; without root's /proc/kpageflags the check cannot see a
 * leak, which in the VM is a failure.
 */
#define SNAPSHOT(s)							\
	do {								\
		if (mem_snapshot(s) && !move_required())		\
			SKIP(return, "/proc/kpageflags unreadable (not root)"); \
		ASSERT_EQ(0, mem_snapshot(s))				\
			TH_LOG("/proc/kpageflags: %s", strerror(errno)); \
	} while (0)

/* Nothing leaked between @b and @a: the orphans and MemFree are back. */
static void assert_no_leak(struct __test_metadata *_metadata,
			   const struct mem_snapshot *b,
			   const struct mem_snapshot *a, const char *what)
{
	ksft_print_msg("%s: MemFree %+lld kB (Slab %+lld kB), orphaned anon pages %+ld (large folios %+ld, THP %+ld), nr_anon_pages %+lld\n",
		       what, a->free_kb - b->free_kb, a->slab_kb - b->slab_kb,
		       a->orphans.pages - b->orphans.pages,
		       a->orphans.large - b->orphans.large,
		       a->orphans.thp - b->orphans.thp, a->anon - b->anon);
	/* One leaked 2 MiB folio, or one mTHP, fails these two. */
	EXPECT_LE(a->orphans.thp, b->orphans.thp);
	EXPECT_LE(a->orphans.large, b->orphans.large);
	EXPECT_LE(a->orphans.pages - b->orphans.pages, LEAK_ORPHAN_SLACK);
	EXPECT_LT(b->free_kb - a->free_kb, LEAK_FREE_SLACK_KB);
}

/*
 * The writer is gone (its mm, anon_vma and memcg may be freed) before the
 * reader looks: the pages must still arrive whole.
 */
static void writer_exits(struct __test_metadata *_metadata, bool proof)
{
	struct xfer_counters b, a;
	int p[2], status;
	char *dst = map_anon(16 * PS);
	pid_t pid;

	ASSERT_NE(NULL, dst);
	ASSERT_EQ(0, pipe(p));
	ASSERT_LE(0, fcntl(p[1], F_SETPIPE_SZ, 1 << 20));
	xfer_counters_read(&b);
	pid = gift_and_exit(p[1], 16, 7);
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_EQ(0, WEXITSTATUS(status));
	close(p[1]);
	ASSERT_EQ((ssize_t)(16 * PS), vms(p[0], dst, 16 * PS, SPLICE_F_MOVE));
	ASSERT_EQ((size_t)-1, pattern_check(dst, 16 * PS, 7, 0));
	xfer_counters_read(&a);
	close(p[0]);
	if (proof)	/* ... and they still moved: nothing held on to them */
		ASSERT_EQ(16, xfer_counter_delta(&b, &a, "moved"));
}

TEST(writer_exits_before_read)
{
	writer_exits(_metadata, false);
}

TEST(writer_exits_before_read_moves)
{
	REQUIRE_MOVE();
	writer_exits(_metadata, true);
}

FIXTURE(life)
{
	struct setting mthp;
	struct setting ksm_run, ksm_sleep, ksm_scan;
};

FIXTURE_SETUP(life)
{
}

/* In the parent: settings come back even when the test is killed. */
FIXTURE_TEARDOWN_PARENT(life)
{
	setting_restore(&self->mthp);
	if (self->ksm_run.saved)
		proc_write(KSM_DIR "/run", "2");	/* unmerge all first */
	setting_restore(&self->ksm_run);
	setting_restore(&self->ksm_sleep);
	setting_restore(&self->ksm_scan);
}

/*
 * Pages gifted and never read are freed with the pipe.  One writer fills
 * 64 pipes of 1 MiB (the default pipe-max-size) from fresh memory, closing
 * each, and exits: a pipe that kept its pages, or a release that forgot
 * one reference per buffer, leaves 16384 orphaned pages (64 MiB).
 */
TEST_F_TIMEOUT(life, reader_closes_without_reading, 300)
{
	const size_t n = 256, rounds = 64;
	struct mem_snapshot b, a;
	int status;
	pid_t pid;

	REQUIRE_MOVE();
	SNAPSHOT(&b);
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		for (size_t r = 0; r < rounds; r++) {
			char *src = map_anon(n * PS);
			int p[2];

			if (!src || pipe(p) || fcntl(p[1], F_SETPIPE_SZ, (int)(n * PS)) < 0)
				_exit(2);
			pattern_fill(src, n * PS, 9, 0);
			if (vms(p[1], src, n * PS, GIVE) != (ssize_t)(n * PS))
				_exit(3);
			close(p[0]);
			close(p[1]);
			munmap(src, n * PS);
		}
		_exit(0);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_EQ(0, WEXITSTATUS(status));
	SNAPSHOT(&a);
	assert_no_leak(_metadata, &b, &a, "64 MiB given, never read");
}

/*
 * The leak checks' own instrument: a THP held by a pipe, and nothing else,
 * is seen as exactly one orphaned 2 MiB folio (512 pages), and is gone once
 * the pipe is.  This is what lets the THP loops below fail on a single
 * leaked folio, where MemFree's noise is 8 times larger.
 */
TEST_F_TIMEOUT(life, leak_check_sees_one_thp, 120)
{
	struct mem_snapshot m0, m1, m2;
	int p[2], pm = pagemap_open();
	char *x;

	REQUIRE_MOVE();
	ASSERT_LE(0, pm);
	SNAPSHOT(&m0);
	x = thp_map(THP_SIZE);
	ASSERT_NE(NULL, x);
	words_fill(x, THP_SIZE, 5, 0);
	if (!backed_by_folio(pm, x, THP_SIZE))
		SKIP(return, "no THP was allocated");
	ASSERT_EQ(0, pipe(p));
	ASSERT_EQ((ssize_t)THP_SIZE, vms(p[1], x, THP_SIZE, GIVE));
	SNAPSHOT(&m1);
	ksft_print_msg("a THP in a pipe: orphans %+ld pages, %+ld THP\n",
		       m1.orphans.pages - m0.orphans.pages,
		       m1.orphans.thp - m0.orphans.thp);
	ASSERT_EQ(m0.orphans.thp + 1, m1.orphans.thp);
	ASSERT_EQ(m0.orphans.large + 1, m1.orphans.large);
	ASSERT_EQ(m0.orphans.pages + 512, m1.orphans.pages);
	close(p[0]);
	close(p[1]);
	SNAPSHOT(&m2);
	ASSERT_EQ(m0.orphans.thp, m2.orphans.thp);
	ASSERT_EQ(m0.orphans.pages, m2.orphans.pages);
	close(pm);
}

/* 1,000 hand-overs within one process: the data, on every kernel. */
TEST(thousand_iterations_data)
{
	const int iters = 1000, n = 4;
	char *src = map_anon(n * PS), *dst = map_anon(n * PS);
	int p[2];

	ASSERT_NE(NULL, src);
	ASSERT_NE(NULL, dst);
	ASSERT_EQ(0, pipe(p));
	for (int i = 0; i < iters; i++) {
		pattern_fill(src, n * PS, i, 0);
		ASSERT_EQ((ssize_t)(n * PS), vms(p[1], src, n * PS, GM));
		ASSERT_EQ((ssize_t)(n * PS), vms(p[0], dst, n * PS, SPLICE_F_MOVE));
		ASSERT_EQ((size_t)-1, pattern_check(dst, n * PS, i, 0))
			TH_LOG("iteration %d", i);
	}
	close(p[0]);
	close(p[1]);
}

/*
 * 10,000 hand-overs within one process, each replacing the previous
 * destination pages: every page is moved and nothing leaks.  A leaked
 * reference per move leaves 40,000 pages (156 MiB).
 */
TEST_F_TIMEOUT(life, ten_thousand_iterations, 600)
{
	const int iters = 10000, n = 4;
	struct xfer_counters b, a;
	struct mem_snapshot m0, m1;
	char *src, *dst;
	int p[2];

	REQUIRE_MOVE();
	ASSERT_EQ(0, pipe(p));
	SNAPSHOT(&m0);
	xfer_counters_read(&b);
	src = map_anon(n * PS);
	dst = map_anon(n * PS);
	ASSERT_NE(NULL, src);
	ASSERT_NE(NULL, dst);
	for (int i = 0; i < iters; i++) {
		/* A word per page is enough to tell the iterations apart. */
		for (int k = 0; k < n; k++)
			*(uint64_t *)(src + k * PS) = (uint64_t)i << 8 | k;
		ASSERT_EQ((ssize_t)(n * PS), vms(p[1], src, n * PS, GM));
		ASSERT_EQ((ssize_t)(n * PS), vms(p[0], dst, n * PS, SPLICE_F_MOVE));
		for (int k = 0; k < n; k++) {
			ASSERT_EQ((uint64_t)i << 8 | k, *(uint64_t *)(dst + k * PS))
				TH_LOG("iteration %d page %d", i, k);
		}
	}
	xfer_counters_read(&a);
	munmap(src, n * PS);
	munmap(dst, n * PS);
	close(p[0]);
	close(p[1]);
	ASSERT_EQ((long long)iters * n, xfer_counter_delta(&b, &a, "moved"));
	SNAPSHOT(&m1);
	assert_no_leak(_metadata, &m0, &m1, "10,000 x 4 pages moved");
}

/* Every counter that moved between @b and @a. */
static void print_counters(const struct xfer_counters *b,
			   const struct xfer_counters *a)
{
	static const char *const names[] = { "moved", "moved_zero", "unmapped",
		"gift_large", "folio_thp", "folio_large", "folio_split" };

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		ksft_print_msg("  %-12s %+lld\n", names[i],
			       xfer_counter_delta(b, a, names[i]));
	for (int i = 0; i < XFER_NR_FALLBACKS; i++)
		if (xfer_counter_delta(b, a, xfer_fallback_names[i]))
			ksft_print_msg("  fallback %-10s %+lld\n", xfer_fallback_names[i],
				       xfer_counter_delta(b, a, xfer_fallback_names[i]));
}

/* Tell the other side to stop: a tag no round uses. */
#define TAG_END		(~0ULL)

/*
 * One large folio of @size bytes goes back and forth between this process
 * and a child, @rounds times each way, over two pipes: given with
 * SPLICE_F_UNMAP, moved with SPLICE_F_MOVE into the other's (2 MiB- or
 * @size-aligned, MADV_HUGEPAGE) region.  Every time the same folio (head
 * PFN), the previous side's tag in its first word, the giver left with
 * zeros; afterwards all its words intact.  @counter: "folio_thp" (mapped
 * with one PMD) or "folio_large" (whole, by PTEs), one per move.
 */
static void pingpong(struct __test_metadata *_metadata, size_t size,
		     int rounds, const char *counter)
{
	int ab[2], ba[2], pm = pagemap_open(), status;
	struct xfer_counters b, a;
	struct mem_snapshot m0, m1;
	uint64_t head;
	char *mine;
	pid_t pid;

	ASSERT_LE(0, pm);
	SNAPSHOT(&m0);
	ASSERT_EQ(0, pipe2(ab, O_CLOEXEC));
	ASSERT_EQ(0, pipe2(ba, O_CLOEXEC));

	/* The child first: a fork would share the folio copy-on-write. */
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		char *theirs = map_aligned(size, size, MADV_HUGEPAGE);
		uint64_t *w = (uint64_t *)theirs, first = 0;

		close(ab[1]);
		close(ba[0]);
		close(pm);
		pm = pagemap_open();	/* this process's own page tables */
		if (!theirs || pm < 0)
			_exit(10);
		for (int r = 0;; r++) {
			if (vms(ab[0], theirs, size, SPLICE_F_MOVE) != (ssize_t)size)
				_exit(11);
			if (*w == TAG_END)
				_exit(0);
			if (*w != 2ULL * r)
				_exit(12);
			if (!first)
				first = pagemap_pfn(pm, theirs);
			if (pagemap_pfn(pm, theirs) != first)
				_exit(13);	/* copied, not moved */
			*w = 2ULL * r + 1;
			if (vms(ba[1], theirs, size, GIVE) != (ssize_t)size)
				_exit(14);
			/* Gone (not read: a zero page there would stay). */
			if (pagemap_present(pm, theirs))
				_exit(15);
		}
	}
	/* If the child fails, reads of ba see end of file instead of hanging. */
	close(ab[0]);
	close(ba[1]);
	mine = map_aligned(size, size, MADV_HUGEPAGE);
	if (mine)
		words_fill(mine, size, 0x7711, 0);
	if (!mine || !backed_by_folio(pm, mine, size)) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		SKIP(return, "no %zu kB folio was allocated", size >> 10);
	}
	head = pagemap_pfn(pm, mine);
	xfer_counters_read(&b);
	for (int r = 0; r < rounds; r++) {
		uint64_t *w = (uint64_t *)mine;

		*w = 2ULL * r;
		ASSERT_EQ((ssize_t)size, vms(ab[1], mine, size, GIVE))
			TH_LOG("round %d", r);
		ASSERT_FALSE(pagemap_present(pm, mine))
			TH_LOG("round %d: the giver still maps its folio", r);
		ASSERT_EQ((ssize_t)size, vms(ba[0], mine, size, SPLICE_F_MOVE))
			TH_LOG("round %d", r);
		ASSERT_EQ(2ULL * r + 1, *w) TH_LOG("round %d", r);
		if (pagemap_pfn(pm, mine) != head) {
			xfer_counters_read(&a);
			print_counters(&b, &a);
		}
		ASSERT_EQ(head, pagemap_pfn(pm, mine)) TH_LOG("round %d", r);
	}
	xfer_counters_read(&a);
	/* Back and forth @rounds times: every word but the tag intact. */
	ASSERT_EQ((size_t)-1, words_check(mine + 8, size - 8, 0x7711, 8));
	/* Stop the child: one more hand-over, tagged as the end. */
	*(uint64_t *)mine = TAG_END;
	ASSERT_EQ((ssize_t)size, vms(ab[1], mine, size, GIVE));
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
		TH_LOG("child status %#x (10+: which check failed)", status);
	ksft_print_msg("%d round trips of a %zu kB folio: %lld moved pages, %lld %s, fallbacks: refs %lld busy %lld large %lld\n",
		       rounds, size >> 10, xfer_counter_delta(&b, &a, "moved"),
		       xfer_counter_delta(&b, &a, counter), counter,
		       xfer_counter_delta(&b, &a, "refs"),
		       xfer_counter_delta(&b, &a, "busy"),
		       xfer_counter_delta(&b, &a, "large"));
	ASSERT_EQ(2LL * rounds, xfer_counter_delta(&b, &a, counter));
	ASSERT_EQ(2LL * rounds * (long long)(size / PS),
		  xfer_counter_delta(&b, &a, "moved"));
	munmap(mine, size);
	close(ab[1]);
	close(ba[0]);
	close(pm);
	SNAPSHOT(&m1);
	assert_no_leak(_metadata, &m0, &m1, "folio ping-pong");
}

/*
 * One folio of @size bytes (2 MiB: a THP) moved @iters times within this
 * process, between two 2 MiB-aligned MADV_HUGEPAGE regions: each time the
 * same folio (head PFN), mapped by @counter ("folio_thp": one PMD), the
 * tag of the iteration in its first word, the giver empty afterwards.
 */
static void folio_loop(struct __test_metadata *_metadata, size_t size,
		       int iters, const char *counter)
{
	int p[2], pm = pagemap_open();
	struct xfer_counters b, a;
	struct mem_snapshot m0, m1;
	char *x, *y;
	uint64_t head;

	ASSERT_LE(0, pm);
	SNAPSHOT(&m0);
	x = map_aligned(size, size, MADV_HUGEPAGE);
	y = map_aligned(size, size, MADV_HUGEPAGE);
	ASSERT_NE(NULL, x);
	ASSERT_NE(NULL, y);
	words_fill(x, size, 0x7712, 0);
	if (!backed_by_folio(pm, x, size))
		SKIP(return, "no %zu kB folio was allocated", size >> 10);
	head = pagemap_pfn(pm, x);
	ASSERT_EQ(0, pipe2(p, O_CLOEXEC));
	xfer_counters_read(&b);
	for (int i = 0; i < iters; i++) {
		char *t;

		*(uint64_t *)x = i;
		ASSERT_EQ((ssize_t)size, vms(p[1], x, size, GIVE)) TH_LOG("iteration %d", i);
		ASSERT_FALSE(pagemap_present(pm, x)) TH_LOG("iteration %d", i);
		ASSERT_EQ((ssize_t)size, vms(p[0], y, size, SPLICE_F_MOVE))
			TH_LOG("iteration %d", i);
		ASSERT_EQ((uint64_t)i, *(uint64_t *)y) TH_LOG("iteration %d", i);
		if (pagemap_pfn(pm, y) != head) {
			xfer_counters_read(&a);
			print_counters(&b, &a);
		}
		ASSERT_EQ(head, pagemap_pfn(pm, y)) TH_LOG("iteration %d: copied", i);
		t = x;
		x = y;
		y = t;
	}
	xfer_counters_read(&a);
	ASSERT_EQ((size_t)-1, words_check(x + 8, size - 8, 0x7712, 8));
	ksft_print_msg("%d moves of one %zu kB folio: %lld moved pages, %lld %s\n",
		       iters, size >> 10, xfer_counter_delta(&b, &a, "moved"),
		       xfer_counter_delta(&b, &a, counter), counter);
	ASSERT_EQ(iters, xfer_counter_delta(&b, &a, counter));
	ASSERT_EQ((long long)iters * (long long)(size / PS),
		  xfer_counter_delta(&b, &a, "moved"));
	munmap(x, size);
	munmap(y, size);
	close(p[0]);
	close(p[1]);
	close(pm);
	SNAPSHOT(&m1);
	assert_no_leak(_metadata, &m0, &m1, "10,000 THP moves");
}

/*
 * 10,000 moves of one 2 MiB THP, each with one PMD: the folio is never
 * split, copied or duplicated, and at the end nothing is left: a single
 * folio leaked on the way (a reference not dropped) shows as an orphaned
 * THP, which assert_no_leak() allows none of.
 */
TEST_F_TIMEOUT(life, thp_ten_thousand_iterations, 900)
{
	REQUIRE_MOVE();
	folio_loop(_metadata, THP_SIZE, 10000, "folio_thp");
}

/* Between two processes (two mms, two anon_vmas): 500 round trips. */
TEST_F_TIMEOUT(life, thp_ping_pong, 600)
{
	REQUIRE_MOVE();
	pingpong(_metadata, THP_SIZE, 500, "folio_thp");
}

/* The same with a 64 kB mTHP folio, mapped whole by PTEs each time. */
TEST_F_TIMEOUT(life, mthp_ping_pong, 600)
{
	char why[256];

	REQUIRE_MOVE();
	if (access(MTHP_64K, W_OK))
		SKIP(return, "no 64 kB mTHP size on this kernel");
	ASSERT_EQ(0, setting_set(&self->mthp, MTHP_64K, "madvise", why, sizeof(why)))
		TH_LOG("%s", why);
	pingpong(_metadata, 64 << 10, 500, "folio_large");
}

/*
 * A bad address after a good one: the first page is delivered, the call
 * returns its size, and the second stays in the pipe.
 */
static void efault_mid_iov(struct __test_metadata *_metadata, bool proof)
{
	char *src = map_anon(2 * PS), *dst = map_anon(2 * PS);
	struct iovec out[2] = { { dst, PS }, { (void *)PS, PS } };
	struct xfer_counters b, a;
	int p[2];

	ASSERT_NE(NULL, src);
	ASSERT_NE(NULL, dst);
	ASSERT_EQ(0, pipe(p));
	pattern_fill(src, 2 * PS, 3, 0);
	ASSERT_EQ((ssize_t)(2 * PS), vms(p[1], src, 2 * PS, GM));
	xfer_counters_read(&b);
	ASSERT_EQ((ssize_t)PS, vmsplice(p[0], out, 2, SPLICE_F_MOVE));
	xfer_counters_read(&a);
	ASSERT_EQ((size_t)-1, pattern_check(dst, PS, 3, 0));
	ASSERT_EQ((ssize_t)PS, read(p[0], dst + PS, PS));
	ASSERT_EQ((size_t)-1, pattern_check(dst + PS, PS, 3, PS));
	if (!proof)
		return;
	/* One page moved; the copy that failed is not counted. */
	ASSERT_EQ(1, xfer_counter_delta(&b, &a, "moved"));
	ASSERT_EQ(0, xfer_counter_delta(&b, &a, "dst_vma"));
}

TEST(efault_mid_iov_after_move)
{
	efault_mid_iov(_metadata, false);
}

TEST(efault_mid_iov_after_move_proof)
{
	REQUIRE_MOVE();
	efault_mid_iov(_metadata, true);
}

/*
 * A populated destination shared with a forked child (copy-on-write: its
 * pages are not PageAnonExclusive) is not replaced by moved pages: the
 * reader copies into it (reason dst_busy), which breaks the sharing, and
 * the child still reads its own bytes.  Guards the PageAnonExclusive test
 * of vmsplice_check_dst_pte() (scripts/mutate: dst_pte_exclusive), which
 * no other test reaches: the reference and map counts of a page mapped by
 * parent and child agree.
 */
static void shared_dst(struct __test_metadata *_metadata, bool proof)
{
	const size_t n = 16;
	struct xfer_counters b, a;
	char *dst = map_anon(n * PS);
	int p[2], go[2], status;
	pid_t child, writer;

	ASSERT_NE(NULL, dst);
	pattern_fill(dst, n * PS, 7, 0);
	ASSERT_EQ(0, pipe(p));
	ASSERT_EQ(0, pipe(go));
	child = fork();
	ASSERT_LE(0, child);
	if (child == 0) {
		char c;

		/* Keep the pages shared until told, then check them. */
		close(go[1]);
		if (read(go[0], &c, 1) != 1)
			_exit(2);
		_exit(pattern_check(dst, n * PS, 7, 0) == (size_t)-1 ? 0 : 1);
	}
	close(go[0]);
	writer = gift_and_exit(p[1], n, 8);
	ASSERT_LT(0, writer);
	ASSERT_EQ(writer, waitpid(writer, &status, 0));
	ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);

	xfer_counters_read(&b);
	ASSERT_EQ((ssize_t)(n * PS), vms(p[0], dst, n * PS, SPLICE_F_MOVE));
	xfer_counters_read(&a);
	ASSERT_EQ((size_t)-1, pattern_check(dst, n * PS, 8, 0));
	ASSERT_EQ(1, write(go[1], "x", 1));
	ASSERT_EQ(child, waitpid(child, &status, 0));
	ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
		TH_LOG("the child's pages changed (status %#x)", status);
	if (!proof)
		return;
	EXPECT_EQ((long long)n, xfer_counter_delta(&b, &a, "dst_busy"));
	EXPECT_EQ(0, xfer_counter_delta(&b, &a, "moved"));
}

TEST(dst_shared_with_child)
{
	shared_dst(_metadata, false);
}

TEST(dst_shared_with_child_proof)
{
	REQUIRE_MOVE();
	shared_dst(_metadata, true);
}

/*
 * A partial page between two whole ones, its writer gone: the partial
 * page's buffer is gifted, no longer mapped anywhere and holds the pipe's
 * reference only, like the whole pages around it, but only its first 100
 * bytes were given.  The reader's batch of whole pages must stop at it
 * (it carries no anon_vma, and it is not PAGE_SIZE long): mapping it whole
 * would show the writer's other bytes and shift everything after it.
 * Removing both of those checks of vmsplice_small_run() turns this red;
 * either one alone suffices (tests/MUTATION.md, run_partial).  The
 * counters pin the reason the partial buffer is copied for (buf_len).
 */
TEST(writer_exits_partial_page_between_whole_ones)
{
	const size_t want = 2 * PS + 100;
	struct xfer_counters b, a;
	int p[2], status;
	char *dst = map_anon(3 * PS);
	pid_t pid;

	ASSERT_NE(NULL, dst);
	ASSERT_EQ(0, pipe(p));
	xfer_counters_read(&b);
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		char *src = map_anon(2 * PS), *src2 = map_anon(PS);
		struct iovec iov[2];

		if (!src || !src2)
			_exit(2);
		pattern_fill(src, 2 * PS, 21, 0);
		pattern_fill(src2, PS, 22, 0);
		iov[0] = (struct iovec){ src, PS + 100 };
		iov[1] = (struct iovec){ src2, PS };
		_exit(vmsplice(p[1], iov, 2, GM) == (ssize_t)want ? 0 : 1);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_EQ(0, WEXITSTATUS(status));
	close(p[1]);
	/* One call, room for three pages: the batch could reach all three. */
	ASSERT_EQ((ssize_t)want, vms(p[0], dst, 3 * PS, SPLICE_F_MOVE));
	ASSERT_EQ((size_t)-1, pattern_check(dst, PS + 100, 21, 0));
	ASSERT_EQ((size_t)-1, pattern_check(dst + PS + 100, PS, 22, 0));
	ASSERT_TRUE(all_bytes_are(dst + want, 3 * PS - want, 0));
	xfer_counters_read(&a);
	close(p[0]);
	/*
	 * Where pages move: the first did; the partial one was copied for
	 * being partial, and so was the last, which then lands unaligned.
	 * Not "busy": the partial buffer must be refused for what it is,
	 * before its missing anon_vma would refuse it anyway.
	 */
	if (xfer_kernel_moves()) {
		EXPECT_EQ(1, xfer_counter_delta(&b, &a, "moved"));
		EXPECT_EQ(2, xfer_counter_delta(&b, &a, "partial"));
		EXPECT_EQ(0, xfer_counter_delta(&b, &a, "busy"));
	}
}

/*
 * Empty iovecs before and between the given ranges: the kernel skips them
 * when it fetches pages, so must the address it unmaps.  Every byte
 * arrives in one read; where pages move, the giver reads zeros in both
 * ranges (and only there: its guard page keeps its data).
 */
TEST(empty_segments_between_gifts)
{
	char *src = map_anon(5 * PS), *dst = map_anon(4 * PS), *guard;
	struct xfer_counters b, a;
	struct iovec iov[4];
	int p[2];

	ASSERT_NE(NULL, src);
	ASSERT_NE(NULL, dst);
	pattern_fill(src, 5 * PS, 41, 0);
	guard = src + 2 * PS;	/* between the two ranges, never given */
	iov[0] = (struct iovec){ guard, 0 };
	iov[1] = (struct iovec){ src, 2 * PS };
	iov[2] = (struct iovec){ guard, 0 };
	iov[3] = (struct iovec){ src + 3 * PS, 2 * PS };
	ASSERT_EQ(0, pipe(p));
	xfer_counters_read(&b);
	ASSERT_EQ((ssize_t)(4 * PS), vmsplice(p[1], iov, 4, GM));
	close(p[1]);
	ASSERT_EQ((ssize_t)(4 * PS), vms(p[0], dst, 4 * PS, SPLICE_F_MOVE));
	close(p[0]);
	xfer_counters_read(&a);
	ASSERT_EQ((size_t)-1, pattern_check(dst, 2 * PS, 41, 0));
	ASSERT_EQ((size_t)-1, pattern_check(dst + 2 * PS, 2 * PS, 41, 3 * PS));
	ASSERT_EQ((size_t)-1, pattern_check(guard, PS, 41, 2 * PS));
	if (xfer_kernel_moves()) {
		ASSERT_TRUE(all_bytes_are(src, 2 * PS, 0));
		ASSERT_TRUE(all_bytes_are(src + 3 * PS, 2 * PS, 0));
		ASSERT_EQ(4, xfer_counter_delta(&b, &a, "moved"));
	}
}

/*
 * Two givers (two processes, two anon_vmas) into one pipe, read in one
 * call: a batch holds one giver's anon_vma locked, so it must end where
 * the other giver's pages start; all eight move, none is refused as busy.
 */
TEST(two_givers_in_one_read)
{
	char *dst = map_anon(8 * PS);
	struct xfer_counters b, a;
	int p[2];

	ASSERT_NE(NULL, dst);
	ASSERT_EQ(0, pipe(p));
	xfer_counters_read(&b);
	for (uint32_t seed = 51; seed <= 52; seed++) {
		int status;
		pid_t pid = gift_and_exit(p[1], 4, seed);

		ASSERT_LE(0, pid);
		ASSERT_EQ(pid, waitpid(pid, &status, 0));
		ASSERT_EQ(0, WEXITSTATUS(status));
	}
	close(p[1]);
	ASSERT_EQ((ssize_t)(8 * PS), vms(p[0], dst, 8 * PS, SPLICE_F_MOVE));
	close(p[0]);
	xfer_counters_read(&a);
	ASSERT_EQ((size_t)-1, pattern_check(dst, 4 * PS, 51, 0));
	ASSERT_EQ((size_t)-1, pattern_check(dst + 4 * PS, 4 * PS, 52, 0));
	if (xfer_kernel_moves()) {
		EXPECT_EQ(8, xfer_counter_delta(&b, &a, "moved"));
		EXPECT_EQ(0, xfer_counter_delta(&b, &a, "busy"));
	}
}

#define MTHP_PARTIAL \
	"/sys/kernel/mm/transparent_hugepage/hugepages-64kB/stats/nr_anon_partially_mapped"

static long long read_ll(const char *path)
{
	long long v = -1;
	FILE *f = fopen(path, "re");

	if (f && fscanf(f, "%lld", &v) != 1)
		v = -1;
	if (f)
		fclose(f);
	return v;
}

/*
 * A 64 KiB mTHP mremap()ed across a page-table boundary is marked partially
 * mapped by the giver's two-step unmap, and moved whole all the same.  Then
 * the deferred-split shrinker runs (drop_caches 2 shrinks every slab
 * shrinker): the reader's data stays right, and once it unmaps, the
 * partially-mapped count is back where it started (nothing left queued).
 *
 * The count is system-wide: 64 KiB folios only where MADV_HUGEPAGE asks
 * ("madvise", not "always"), so that no other folio of this test's own
 * processes is marked meanwhile (with "always", a stack folio the parent
 * wrote copy-on-write after the fork was marked when the child exited).
 */
TEST_F(life, partially_mapped_mthp_moves_then_splits)
{
	const size_t len = 64 << 10, thp = 2UL << 20;
	char why[256], *dst;
	struct xfer_counters b, a;
	long long base, marked;
	int p[2], status;
	pid_t pid;

	REQUIRE_MOVE();
	if (access(MTHP_64K, W_OK) || access(MTHP_PARTIAL, R_OK)) {
		ASSERT_FALSE(move_required())
			TH_LOG("no 64 kB mTHP size or its partially-mapped count");
		SKIP(return, "no 64 kB mTHP size or its partially-mapped count");
	}
	ASSERT_EQ(0, setting_set(&self->mthp, MTHP_64K, "madvise", why, sizeof(why)))
		TH_LOG("%s", why);
	base = read_ll(MTHP_PARTIAL);
	ASSERT_LE(0, base);
	dst = map_aligned(len, len, 0);
	ASSERT_NE(NULL, dst);
	ASSERT_EQ(0, pipe(p));
	xfer_counters_read(&b);
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		char *src = map_aligned(len, len, MADV_HUGEPAGE);
		char *room = map_anon(3 * thp), *to;

		if (!src || !room)
			_exit(2);
		pattern_fill(src, len, 31, 0);
		to = (char *)(((uintptr_t)room + 2 * thp - 1) & ~(thp - 1)) - len / 2;
		if (mremap(src, len, len, MREMAP_MAYMOVE | MREMAP_FIXED, to) != to)
			_exit(3);
		_exit(vms(p[1], to, len, GM) == (ssize_t)len ? 0 : 1);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_EQ(0, WEXITSTATUS(status));
	close(p[1]);
	marked = read_ll(MTHP_PARTIAL);
	ASSERT_EQ((ssize_t)len, vms(p[0], dst, len, SPLICE_F_MOVE));
	close(p[0]);
	xfer_counters_read(&a);
	ASSERT_EQ((size_t)-1, pattern_check(dst, len, 31, 0));
	/* Built as meant: the folio in the pipe was marked; it moved whole. */
	ASSERT_EQ(base + 1, marked);
	ASSERT_EQ(16, xfer_counter_delta(&b, &a, "moved"));
	ASSERT_EQ(1, xfer_counter_delta(&b, &a, "folio_large"));
	ASSERT_EQ(0, proc_write("/proc/sys/vm/drop_caches", "2"));
	ASSERT_EQ((size_t)-1, pattern_check(dst, len, 31, 0));
	ASSERT_EQ(0, munmap(dst, len));
	ASSERT_EQ(base, read_ll(MTHP_PARTIAL));
}

/*
 * A THP split in the giver (its PMD split by an mprotect() of one page
 * and back: PTE-mapped, in order, every page marked exclusive) is given
 * whole and lands with one PMD; with @hops 2 it is then given again from
 * that PMD (the giver unmaps it from the PMD itself, and the reader skips
 * clearing its tails) and lands with one PMD again.  Fork, split that PMD
 * in the parent and write a tail page there: the child must keep its
 * data.  A tail still marked exclusive from the giver's PTEs would let
 * the parent's write fault reuse the page the child shares (a fork clears
 * the bit on the head only, a split hands every page the head's).
 */
static void split_thp_hops(struct __test_metadata *_metadata, int hops)
{
	const size_t thp = THP_SIZE, tail = 5 * PS;
	char *src, *dst, byte;
	int p[2], go[2], status;
	pid_t child;

	REQUIRE_MOVE();
	src = thp_map(thp);
	ASSERT_NE(NULL, src);
	pattern_fill(src, thp, 37, 0);
	if (self_smaps_kb("AnonHugePages") < 2048) {
		ASSERT_FALSE(move_required());
		SKIP(return, "no transparent huge page was allocated");
	}
	ASSERT_EQ(0, pipe(p));
	for (int hop = 0; hop < hops; hop++) {
		struct xfer_counters b, a;

		dst = thp_map(thp);
		ASSERT_NE(NULL, dst);
		xfer_counters_read(&b);
		if (!hop) {
			ASSERT_EQ(0, mprotect(src + PS, PS, PROT_READ));
			ASSERT_EQ(0, mprotect(src + PS, PS, PROT_READ | PROT_WRITE));
		}
		ASSERT_EQ((ssize_t)thp, vms(p[1], src, thp, GM));
		ASSERT_EQ((ssize_t)thp, vms(p[0], dst, thp, SPLICE_F_MOVE));
		xfer_counters_read(&a);
		ASSERT_EQ((size_t)-1, pattern_check(dst, thp, 37, 0));
		/* Built as meant: split in the giver first, moved whole by PMD. */
		ASSERT_EQ(!hop, xfer_counter_delta(&b, &a, "split_pmd"));
		ASSERT_EQ(512, xfer_counter_delta(&b, &a, "moved"));
		ASSERT_EQ(1, xfer_counter_delta(&b, &a, "folio_thp"));
		munmap(src, thp);
		src = dst;
	}
	close(p[0]);
	close(p[1]);

	ASSERT_EQ(0, pipe(go));
	child = fork();
	ASSERT_LE(0, child);
	if (child == 0) {
		close(go[1]);
		if (read(go[0], &byte, 1) != 1)
			_exit(2);
		_exit(pattern_check(dst, thp, 37, 0) == (size_t)-1 ? 0 : 1);
	}
	close(go[0]);
	/* The parent's PMD split, then a write to a tail page. */
	ASSERT_EQ(0, mprotect(dst + PS, PS, PROT_READ));
	dst[tail] ^= 0x5a;
	ASSERT_EQ(1, write(go[1], "g", 1));
	close(go[1]);
	ASSERT_EQ(child, waitpid(child, &status, 0));
	ASSERT_TRUE(WIFEXITED(status));
	EXPECT_EQ(0, WEXITSTATUS(status)) TH_LOG("the child saw the parent's write");
	munmap(dst, thp);
}

TEST(split_thp_lands_whole_then_fork_and_split)
{
	split_thp_hops(_metadata, 1);
}

/* The same THP handed on again from the PMD it landed on. */
TEST(split_thp_two_hops_then_fork_and_split)
{
	split_thp_hops(_metadata, 2);
}

/*
 * The giver's peak RSS (VmHWM, getrusage()'s ru_maxrss) still counts a THP
 * it gave away: unmapping lowers the RSS, so the peak must be recorded
 * first, as every unmap does (update_hiwater_rss()).  Found in review.
 */
TEST(giver_peak_rss_counts_a_given_thp)
{
	const size_t thp = THP_SIZE;
	char *src = thp_map(thp), *dst = thp_map(thp);
	long long rss, peak;
	int p[2];

	REQUIRE_MOVE();
	ASSERT_NE(NULL, src);
	ASSERT_NE(NULL, dst);
	pattern_fill(src, thp, 41, 0);
	if (self_smaps_kb("AnonHugePages") < 2048) {
		ASSERT_FALSE(move_required());
		SKIP(return, "no transparent huge page was allocated");
	}
	rss = self_status_kb("VmRSS");
	ASSERT_LT(0, rss);
	ASSERT_EQ(0, pipe(p));
	ASSERT_EQ((ssize_t)thp, vms(p[1], src, thp, GM));
	peak = self_status_kb("VmHWM");
	EXPECT_LE(self_status_kb("VmRSS") + 2048, rss);
	/*
	 * The recorded peak comes from the per-CPU RSS counters' approximate
	 * sum (off by up to 32 pages a CPU); a peak not recorded at all is a
	 * whole THP (2048 kB) short.
	 */
	EXPECT_GE(peak, rss - 1024)
		TH_LOG("VmHWM %lld kB, the RSS before the gift %lld kB", peak, rss);
	ASSERT_EQ((ssize_t)thp, vms(p[0], dst, thp, SPLICE_F_MOVE));
	ASSERT_EQ((size_t)-1, pattern_check(dst, thp, 41, 0));
	close(p[0]);
	close(p[1]);
	munmap(src, thp);
	munmap(dst, thp);
}

/*
 * Written pages, then a never-written one (the zero page mapped), given
 * and read in one call: the written ones move in one batch, which must
 * end at the zero page; that one arrives as zeros without a page being
 * allocated (moved_zero), not copied as "not anonymous".
 */
TEST(zero_page_after_written_pages)
{
	char *src = map_anon(4 * PS), *dst = map_anon(4 * PS);
	struct xfer_counters b, a;
	int p[2];

	ASSERT_NE(NULL, src);
	ASSERT_NE(NULL, dst);
	ASSERT_EQ(0, pipe(p));
	pattern_fill(src, 3 * PS, 31, 0);
	ASSERT_EQ(0, *(volatile char *)(src + 3 * PS));	/* the zero page */
	xfer_counters_read(&b);
	ASSERT_EQ((ssize_t)(4 * PS), vms(p[1], src, 4 * PS, GM));
	ASSERT_EQ((ssize_t)(4 * PS), vms(p[0], dst, 4 * PS, SPLICE_F_MOVE));
	xfer_counters_read(&a);
	ASSERT_EQ((size_t)-1, pattern_check(dst, 3 * PS, 31, 0));
	ASSERT_TRUE(all_bytes_are(dst + 3 * PS, PS, 0));
	close(p[0]);
	close(p[1]);
	if (xfer_kernel_moves()) {
		EXPECT_EQ(3, xfer_counter_delta(&b, &a, "moved"));
		EXPECT_EQ(1, xfer_counter_delta(&b, &a, "moved_zero"));
		EXPECT_EQ(0, xfer_counter_delta(&b, &a, "not_anon"));
	}
}

/*
 * Found by vmsplice_fuzz: a page given with SPLICE_F_UNMAP leaves the
 * writer in that call, so naming the same address again (a retry after a
 * short call) sends what is mapped there now: zeros on a kernel that
 * moves, the old data on one that does not.  Never the reader's data,
 * never a page the writer no longer owns.
 */
TEST(regift_sends_what_is_mapped_now)
{
	char *src = map_anon(PS), *dst = map_anon(2 * PS);
	int p[2];

	ASSERT_NE(NULL, src);
	ASSERT_NE(NULL, dst);
	ASSERT_EQ(0, pipe(p));
	pattern_fill(src, PS, 11, 0);
	ASSERT_EQ((ssize_t)PS, vms(p[1], src, PS, GM));
	ASSERT_EQ((ssize_t)PS, vms(p[1], src, PS, GM));
	ASSERT_EQ((ssize_t)(2 * PS), vms(p[0], dst, 2 * PS, SPLICE_F_MOVE));
	ASSERT_EQ((size_t)-1, pattern_check(dst, PS, 11, 0));
	if (xfer_kernel_moves()) {
		ASSERT_TRUE(all_bytes_are(dst + PS, PS, 0));
	} else {
		ASSERT_EQ((size_t)-1, pattern_check(dst + PS, PS, 11, 0));
	}
	close(p[0]);
	close(p[1]);
}

/* Poll (bounded: 20 s) until ksmd has merged the two pages at @p. */
static bool ksm_merged(int pm, const char *p)
{
	for (int i = 0; i < 4000; i++) {
		uint64_t a = pagemap_pfn(pm, p), b = pagemap_pfn(pm, p + PS);
		struct timespec ts = { 0, 5 * 1000 * 1000 };

		if (a && a == b)
			return true;
		nanosleep(&ts, NULL);	/* polling ksmd, an asynchronous thread */
	}
	return false;
}

/* How many page tables map frame @pfn (/proc/kpagecount), or -1. */
static long long kpage_count(uint64_t pfn)
{
	int fd = open("/proc/kpagecount", O_RDONLY | O_CLOEXEC);
	uint64_t n = 0;
	ssize_t r;

	if (fd < 0)
		return -1;
	r = pread(fd, &n, sizeof(n), pfn * sizeof(n));
	close(fd);
	return r == sizeof(n) ? (long long)n : -1;
}

/*
 * A KSM page is shared by content and lives in the stable tree's rmap:
 * never moved.  The page here is KSM but mapped by the giver alone (its
 * twin unmapped after the merge), so once given away nothing maps it and
 * nothing but the pipe references it: only the KSM check can refuse it,
 * and the reason must be "ksm" and nothing else.
 */
TEST_F_TIMEOUT(life, ksm_page_is_copied, 120)
{
	struct xfer_counters b, a;
	char why[256];
	char *src, *dst;
	uint64_t pfn;
	int p[2], pm;

	REQUIRE_MOVE();
	if (access(KSM_DIR "/run", W_OK))
		SKIP(return, "KSM not configured");
	pm = pagemap_open();
	if (pm < 0 || !pagemap_pfns_visible(pm))
		SKIP(return, "PFNs hidden: run as root");
	src = map_anon(2 * PS);
	dst = map_anon(2 * PS);
	ASSERT_NE(NULL, src);
	ASSERT_NE(NULL, dst);
	memset(src, 0x42, 2 * PS);
	ASSERT_EQ(0, madvise(src, 2 * PS, MADV_MERGEABLE));
	ASSERT_EQ(0, setting_set(&self->ksm_sleep, KSM_DIR "/sleep_millisecs", "0",
				 why, sizeof(why))) TH_LOG("%s", why);
	ASSERT_EQ(0, setting_set(&self->ksm_scan, KSM_DIR "/pages_to_scan", "1000",
				 why, sizeof(why))) TH_LOG("%s", why);
	ASSERT_EQ(0, setting_set(&self->ksm_run, KSM_DIR "/run", "1", why, sizeof(why)))
		TH_LOG("%s", why);
	ASSERT_TRUE(ksm_merged(pm, src)) TH_LOG("ksmd did not merge the pages in 20 s");
	pfn = pagemap_pfn(pm, src);
	/* Stop ksmd (keeping the merge) and drop the twin: one mapping left. */
	ASSERT_EQ(0, proc_write(KSM_DIR "/run", "0"));
	ASSERT_EQ(0, madvise(src + PS, PS, MADV_DONTNEED));
	ASSERT_EQ(1, kpage_count(pfn));

	ASSERT_EQ(0, pipe(p));
	xfer_counters_read(&b);
	ASSERT_EQ((ssize_t)PS, vms(p[1], src, PS, GIVE));
	ASSERT_EQ((ssize_t)PS, vms(p[0], dst, PS, SPLICE_F_MOVE));
	xfer_counters_read(&a);
	ASSERT_TRUE(all_bytes_are(dst, PS, 0x42));
	ASSERT_TRUE(all_bytes_are(src, PS, 0));		/* it did leave */
	ASSERT_EQ(1, xfer_counter_delta(&b, &a, "unmapped"));
	ASSERT_EQ(0, xfer_counter_delta(&b, &a, "moved"));
	/* "ksm", and no other check standing in for it. */
	ASSERT_EQ(1, xfer_counter_delta(&b, &a, "ksm"));
	for (int i = 0; i < XFER_NR_FALLBACKS; i++) {
		if (strcmp(xfer_fallback_names[i], "ksm"))
			EXPECT_EQ(0, xfer_counter_delta(&b, &a, xfer_fallback_names[i]))
				TH_LOG("fallback %s", xfer_fallback_names[i]);
	}
	close(p[0]);
	close(p[1]);
	close(pm);
}

/* The trace event names the destination and the result. */
TEST(trace_event)
{
	const char *ev = "/sys/kernel/tracing/events/vmsplice/vmsplice_move/enable";
	char *src = map_anon(PS), *dst = map_anon(PS);
	char want[64], buf[4096];
	ssize_t n;
	int p[2], fd;

	REQUIRE_MOVE();
	if (access(ev, W_OK) && !move_required())
		SKIP(return, "no tracefs or no vmsplice trace event");
	ASSERT_EQ(0, access(ev, W_OK)) TH_LOG("%s: %s", ev, strerror(errno));
	ASSERT_NE(NULL, src);
	ASSERT_NE(NULL, dst);
	ASSERT_EQ(0, proc_write("/sys/kernel/tracing/trace", ""));
	ASSERT_EQ(0, proc_write(ev, "1"));
	ASSERT_EQ(0, pipe(p));
	memset(src, 1, PS);
	ASSERT_EQ((ssize_t)PS, vms(p[1], src, PS, GIVE));
	ASSERT_EQ((ssize_t)PS, vms(p[0], dst, PS, SPLICE_F_MOVE));
	ASSERT_EQ(0, proc_write(ev, "0"));
	fd = open("/sys/kernel/tracing/trace", O_RDONLY | O_CLOEXEC);
	ASSERT_LE(0, fd);
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	ASSERT_LT(0, n);
	buf[n] = 0;
	snprintf(want, sizeof(want), "addr=%p", dst);
	ASSERT_NE(NULL, strstr(buf, want)) TH_LOG("trace: %s", buf);
	ASSERT_NE(NULL, strstr(buf, "result=moved")) TH_LOG("trace: %s", buf);
}

TEST_HARNESS_MAIN
