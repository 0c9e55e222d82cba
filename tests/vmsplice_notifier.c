// SPDX-License-Identifier: GPL-2.0
/*
 * What the giver's unmap tells a secondary MMU: the mmu-notifier ranges of
 * vmsplice(SPLICE_F_GIFT | SPLICE_F_UNMAP), seen through lib/test_hmm's
 * mirror (/dev/hmm_dmirror0, CONFIG_TEST_HMM in the debug VM).  The mirror
 * keeps a copy of every page table entry it faulted in and drops those an
 * invalidation covers; HMM_DMIRROR_READ counts the faults it needed, so
 * re-reading a range says whether anything invalidated it since.
 *
 * Every given page must be invalidated (else the mirror, like KVM's
 * stage-2 tables, keeps reading a page that is the reader's now), and
 * nothing else: the giver invalidates each range it was given (in each
 * VMA) once, THPs and small pages alike, so that a page between two given
 * ones, which nobody unmaps, is left alone.
 *
 * The mirror drops one page too many: dmirror_do_update() erases the
 * pages [start, end] of a range [start, end), xa_for_each_range() taking
 * its last index inclusive.  So the first page after each given range is
 * not looked at; the rest of what follows, and all that precedes, is.
 * SKIPs on kernels without the change and where there is no test_hmm.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdint.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <unistd.h>

#include "kselftest_harness.h"
/* lib/test_hmm's uapi, from the extracted tree (-iquote, see Makefile). */
#include "test_hmm_uapi.h"

#include "lib/feature.h"
#include "lib/pagemap.h"
#include "lib/thp.h"
#include "lib/words.h"

#define PS	4096UL
#define NR	5		/* THPs: 1 and 3 given, 0, 2 and 4 not */
#define SEED	0x41e7

FIXTURE(mirror)
{
	int dev;		/* /dev/hmm_dmirror0: mirrors this mm */
	int pm;
	char *bounce;		/* where HMM_DMIRROR_READ copies to */
	int p[2];
};

FIXTURE_SETUP(mirror)
{
	self->dev = self->pm = self->p[0] = self->p[1] = -1;
	self->bounce = NULL;
	REQUIRE_MOVE();
	self->dev = open("/dev/hmm_dmirror0", O_RDWR | O_CLOEXEC);
	if (self->dev < 0) {
		/* The debug VM's kernel has it: there, not having it fails. */
		ASSERT_FALSE(move_required()) TH_LOG("/dev/hmm_dmirror0: %m");
		SKIP(return, "no /dev/hmm_dmirror0 (CONFIG_TEST_HMM)");
	}
	self->pm = pagemap_open();
	ASSERT_LE(0, self->pm);
	if (!pagemap_pfns_visible(self->pm))
		SKIP(return, "page frame numbers need CAP_SYS_ADMIN");
	self->bounce = malloc(NR * THP_SIZE);
	ASSERT_NE(NULL, self->bounce);
	ASSERT_EQ(0, pipe2(self->p, O_CLOEXEC));
}

FIXTURE_TEARDOWN(mirror)
{
	int fds[] = { self->dev, self->pm, self->p[0], self->p[1] };

	for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++)
		if (fds[i] >= 0)
			close(fds[i]);
	free(self->bounce);
}

/* Mirror-read [@addr, @addr + @len): the faults it took, -1 on error. */
static long long mirror_read(int dev, char *bounce, void *addr, size_t len)
{
	struct hmm_dmirror_cmd cmd = {
		.addr = (uintptr_t)addr,
		.ptr = (uintptr_t)bounce,
		.npages = len / PS,
	};

	if (ioctl(dev, HMM_DMIRROR_READ, &cmd))
		return -1;
	return cmd.faults;
}

static bool all_zero(const char *p, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (p[i])
			return false;
	return true;
}

/*
 * THPs 1 and 3 of 5, given in one call, in address order or not: only
 * they are invalidated, and both are.  (The giver sorts its THPs as it
 * sorts its ranges so that each range unmaps its own from the PMD; left
 * unsorted, one of them would go to the ordinary zap instead, still
 * invalidated and still right, only without the taker's shortcut: that
 * is a cost, which the mirror cannot see.  tests/MUTATION.md.)
 */
static void give_thps_apart(struct __test_metadata *_metadata,
			    FIXTURE_DATA(mirror) *self, bool high_first)
{
	struct iovec iov[2];
	char *x, *y;

	x = map_aligned(NR * THP_SIZE, THP_SIZE, MADV_HUGEPAGE);
	y = map_aligned(2 * THP_SIZE, THP_SIZE, MADV_HUGEPAGE);
	ASSERT_NE(NULL, x);
	ASSERT_NE(NULL, y);
	words_fill(x, NR * THP_SIZE, SEED, 0);
	for (int i = 0; i < NR; i++) {
		if (!backed_by_folio(self->pm, x + i * THP_SIZE, THP_SIZE)) {
			ASSERT_FALSE(move_required()) TH_LOG("THP %d not allocated", i);
			SKIP(return, "no transparent huge page was allocated");
		}
	}
	/* Mirrored; a second read needs no fault: nothing else invalidates. */
	ASSERT_LT(0, mirror_read(self->dev, self->bounce, x, NR * THP_SIZE));
	ASSERT_EQ(0, mirror_read(self->dev, self->bounce, x, NR * THP_SIZE));
	ASSERT_EQ((size_t)-1, words_check(self->bounce, NR * THP_SIZE, SEED, 0));

	/* THPs 1 and 3, one call: two ranges, THP 2 between them no one's. */
	iov[high_first] = (struct iovec){ x + 1 * THP_SIZE, THP_SIZE };
	iov[!high_first] = (struct iovec){ x + 3 * THP_SIZE, THP_SIZE };
	ASSERT_EQ((ssize_t)(2 * THP_SIZE), vmsplice(self->p[1], iov, 2, GIVE));

	for (int i = 0; i < NR; i++) {
		bool given = i == 1 || i == 3;
		/* Past the mirror's extra page after a given THP (see above). */
		size_t skip = i == 2 || i == 4 ? PS : 0;
		char *t = x + i * THP_SIZE + skip;
		long long f;

		if (given) {
			/*
			 * Invalidated.  A read re-faults from its first missing
			 * page on, so each page of the THP is asked alone, first:
			 * every one must need a fault.  Then it reads zeros.
			 */
			for (size_t off = 0; off < THP_SIZE; off += PS) {
				f = mirror_read(self->dev, self->bounce, t + off, PS);
				if (f <= 0) {
					EXPECT_LT(0, f) TH_LOG("THP %d page %zu still mirrored",
							       i, off / PS);
					break;
				}
			}
			EXPECT_LE(0, mirror_read(self->dev, self->bounce, t, THP_SIZE));
			EXPECT_TRUE(all_zero(self->bounce, THP_SIZE)) TH_LOG("THP %d", i);
		} else {
			/* Left alone: still mirrored, still the data. */
			f = mirror_read(self->dev, self->bounce, t, THP_SIZE - skip);
			EXPECT_EQ(0, f) TH_LOG("THP %d invalidated, not given", i);
			EXPECT_EQ((size_t)-1, words_check(self->bounce, THP_SIZE - skip, SEED,
							  i * THP_SIZE + skip));
			/* The extra page: not its fault count, but its data. */
			if (skip) {
				EXPECT_LE(0, mirror_read(self->dev, self->bounce,
							 x + i * THP_SIZE, PS));
				EXPECT_EQ((size_t)-1, words_check(self->bounce, PS, SEED,
								  i * THP_SIZE));
			}
		}
	}

	ASSERT_EQ((ssize_t)(2 * THP_SIZE),
		  vmsplice(self->p[0], &(struct iovec){ y, 2 * THP_SIZE }, 1,
			   SPLICE_F_MOVE));
	EXPECT_EQ((size_t)-1, words_check(y, THP_SIZE, SEED,
					  (high_first ? 3 : 1) * THP_SIZE));
	EXPECT_EQ((size_t)-1, words_check(y + THP_SIZE, THP_SIZE, SEED,
					  (high_first ? 1 : 3) * THP_SIZE));
	munmap(x, NR * THP_SIZE);
	munmap(y, 2 * THP_SIZE);
}

TEST_F(mirror, thps_given_apart)
{
	give_thps_apart(_metadata, self, false);
}

TEST_F(mirror, thps_given_apart_high_first)
{
	give_thps_apart(_metadata, self, true);
}

/*
 * A THP and the small pages after it in one range, one VMA: the giver
 * unmaps the THP from its PMD and zaps the pages, and the invalidation
 * must cover both (a notifier range of the THP alone, or a PMD pass with
 * no zap after it, leaves the pages' mirror entries, or the pages, in
 * place).  The mirror sees which pages are invalidated, not how many
 * times.  The VMA is 2 MiB-aligned but 2 MiB + 16 pages long, so the
 * pages past the THP can only be small ones.
 */
TEST_F(mirror, thp_and_pages_one_range)
{
	const size_t n = 16, len = THP_SIZE + n * PS;
	const size_t given = THP_SIZE + 8 * PS;	/* the THP, small pages 0-7 */
	char *x, *y;

	x = map_aligned(len, THP_SIZE, MADV_HUGEPAGE);
	y = map_aligned(given, THP_SIZE, MADV_HUGEPAGE);
	ASSERT_NE(NULL, x);
	ASSERT_NE(NULL, y);
	words_fill(x, len, SEED, 0);
	if (!backed_by_folio(self->pm, x, THP_SIZE)) {
		ASSERT_FALSE(move_required()) TH_LOG("no THP allocated");
		SKIP(return, "no transparent huge page was allocated");
	}
	ASSERT_LT(0, mirror_read(self->dev, self->bounce, x, len));
	ASSERT_EQ(0, mirror_read(self->dev, self->bounce, x, len));

	ASSERT_EQ((ssize_t)given,
		  vmsplice(self->p[1], &(struct iovec){ x, given }, 1, GIVE));
	for (size_t off = 0; off < given; off += PS) {
		long long f = mirror_read(self->dev, self->bounce, x + off, PS);

		if (f <= 0) {
			EXPECT_LT(0, f) TH_LOG("page %zu still mirrored after it was given",
					       off / PS);
			break;
		}
	}
	EXPECT_LE(0, mirror_read(self->dev, self->bounce, x, given));
	EXPECT_TRUE(all_zero(self->bounce, given));
	/* Small page 8 is the mirror's extra page: its data only. */
	EXPECT_LE(0, mirror_read(self->dev, self->bounce, x + given, PS));
	EXPECT_EQ((size_t)-1, words_check(self->bounce, PS, SEED, given));
	EXPECT_EQ(0, mirror_read(self->dev, self->bounce, x + THP_SIZE + 9 * PS, 7 * PS))
		TH_LOG("small pages 9-15 invalidated, not given");
	EXPECT_EQ((size_t)-1, words_check(self->bounce, 7 * PS, SEED, THP_SIZE + 9 * PS));

	ASSERT_EQ((ssize_t)given,
		  vmsplice(self->p[0], &(struct iovec){ y, given }, 1,
			   SPLICE_F_MOVE));
	EXPECT_EQ((size_t)-1, words_check(y, given, SEED, 0));
	munmap(x, len);
	munmap(y, given);
}

/* 4 KiB pages: pages 4-7 of 16 given, half a page on either side too. */
TEST_F(mirror, pages_given_amid_others)
{
	const size_t n = 16;
	char *x, *y;

	x = map_aligned(n * PS, PS, MADV_NOHUGEPAGE);
	y = map_aligned(8 * PS, PS, MADV_NOHUGEPAGE);
	ASSERT_NE(NULL, x);
	ASSERT_NE(NULL, y);
	words_fill(x, n * PS, SEED, 0);
	ASSERT_LT(0, mirror_read(self->dev, self->bounce, x, n * PS));
	ASSERT_EQ(0, mirror_read(self->dev, self->bounce, x, n * PS));

	/* Pages 3 and 8, partly covered, stay mapped (their halves copied). */
	ASSERT_EQ((ssize_t)(5 * PS),
		  vmsplice(self->p[1], &(struct iovec){ x + 3 * PS + PS / 2, 5 * PS }, 1,
			   GIVE));
	for (size_t i = 0; i < n; i++) {
		long long f;

		f = mirror_read(self->dev, self->bounce, x + i * PS, PS);
		if (i == 8) {	/* the mirror's extra page: its data only */
			EXPECT_LE(0, f);
			EXPECT_EQ((size_t)-1, words_check(self->bounce, PS, SEED, i * PS));
			continue;
		}
		if (i >= 4 && i < 8) {
			EXPECT_LT(0, f) TH_LOG("page %zu still mirrored after it was given", i);
			EXPECT_TRUE(all_zero(self->bounce, PS)) TH_LOG("page %zu", i);
		} else {
			EXPECT_EQ(0, f) TH_LOG("page %zu invalidated, not given", i);
			EXPECT_EQ((size_t)-1, words_check(self->bounce, PS, SEED, i * PS));
		}
	}
	/* The half pages went into the pipe too: drain it. */
	ASSERT_EQ((ssize_t)(5 * PS),
		  vmsplice(self->p[0], &(struct iovec){ y, 5 * PS }, 1, SPLICE_F_MOVE));
	munmap(x, n * PS);
	munmap(y, 8 * PS);
}

TEST_HARNESS_MAIN
