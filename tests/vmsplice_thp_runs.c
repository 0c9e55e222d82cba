// SPDX-License-Identifier: GPL-2.0
/*
 * THPs of several VMAs given in one vmsplice(GIFT|UNMAP) call.  The giver
 * unmaps the THPs it put into the pipe from their PMDs inside the zap of
 * the given range they lie in, one VMA's part of it at a time, and
 * whether they may be unmapped is decided by their own VMA: of four THPs,
 * the first two one VMA's, the third mlock()ed, the fourth another
 * VMA's, the mlock()ed one stays mapped and is copied while the other
 * three move.  And 64 KiB mTHP folios given into a pipe with fewer free
 * slots than a folio has pages still go in whole, a slot each.  On kernels
 * without the change these SKIP (they prove moves).
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <unistd.h>

#include "kselftest_harness.h"

#include "lib/feature.h"
#include "lib/pagemap.h"
#include "lib/thp.h"
#include "lib/vmstat.h"
#include "lib/words.h"
#include "lib/xfer.h"

#define PS	4096UL
#define NR	4		/* THPs: 0, 1 in VMA a; 2 mlock()ed (b); 3 in c */
#define LOCKED	2
#define SEED	0x5e9a

static ssize_t vms(int fd, void *base, size_t len, unsigned int flags)
{
	struct iovec iov = { .iov_base = base, .iov_len = len };

	return vmsplice(fd, &iov, 1, flags);
}

/* Whether no page of [@p, @p + @len) is mapped. */
static bool none_present(int pm, const char *p, size_t len)
{
	for (size_t off = 0; off < len; off += PS)
		if (pagemap_present(pm, p + off))
			return false;
	return true;
}

TEST(mlocked_thp_between_runs)
{
	struct xfer_counters b, a;
	uint64_t head[NR];
	int p[2], pm;
	char *x, *y;

	REQUIRE_MOVE();
	pm = pagemap_open();
	ASSERT_LE(0, pm);
	if (!pagemap_pfns_visible(pm))
		SKIP(return, "page frame numbers need CAP_SYS_ADMIN");
	x = map_aligned(NR * THP_SIZE, THP_SIZE, MADV_HUGEPAGE);
	y = map_aligned(NR * THP_SIZE, THP_SIZE, MADV_HUGEPAGE);
	ASSERT_NE(NULL, x);
	ASSERT_NE(NULL, y);
	words_fill(x, NR * THP_SIZE, SEED, 0);
	for (int i = 0; i < NR; i++) {
		if (!backed_by_folio(pm, x + i * THP_SIZE, THP_SIZE)) {
			ASSERT_FALSE(move_required()) TH_LOG("THP %d not allocated", i);
			SKIP(return, "no transparent huge page was allocated");
		}
		head[i] = pagemap_pfn(pm, x + i * THP_SIZE);
	}
	/* Three VMAs now; the mlock()ed THP's PMD stays (an aligned mlock). */
	ASSERT_EQ(0, mlock(x + LOCKED * THP_SIZE, THP_SIZE));
	ASSERT_TRUE(backed_by_folio(pm, x + LOCKED * THP_SIZE, THP_SIZE));
	ASSERT_EQ(0, pipe2(p, O_CLOEXEC));

	xfer_counters_read(&b);
	ASSERT_EQ((ssize_t)(NR * THP_SIZE), vms(p[1], x, NR * THP_SIZE, GIVE));
	/* The others left the giver; the mlock()ed one did not. */
	for (int i = 0; i < NR; i++) {
		char *t = x + i * THP_SIZE;

		if (i == LOCKED) {
			EXPECT_EQ(head[i], pagemap_pfn(pm, t));
			EXPECT_EQ((size_t)-1, words_check(t, THP_SIZE, SEED, i * THP_SIZE));
		} else {
			EXPECT_TRUE(none_present(pm, t, THP_SIZE)) TH_LOG("THP %d", i);
		}
	}

	ASSERT_EQ((ssize_t)(NR * THP_SIZE), vms(p[0], y, NR * THP_SIZE, SPLICE_F_MOVE));
	xfer_counters_read(&a);
	EXPECT_EQ((size_t)-1, words_check(y, NR * THP_SIZE, SEED, 0));
	/* The others moved whole (same head frame), the mlock()ed was copied. */
	for (int i = 0; i < NR; i++) {
		if (i == LOCKED) {
			EXPECT_NE(head[i], pagemap_pfn(pm, y + i * THP_SIZE));
		} else {
			EXPECT_EQ(head[i], pagemap_pfn(pm, y + i * THP_SIZE))
				TH_LOG("THP %d copied", i);
		}
	}
	EXPECT_EQ(NR, xfer_counter_delta(&b, &a, "gift_large"));
	EXPECT_EQ((NR - 1) * (long long)(THP_SIZE / PS),
		  xfer_counter_delta(&b, &a, "unmapped"));
	EXPECT_EQ(NR - 1, xfer_counter_delta(&b, &a, "folio_thp"));
	EXPECT_EQ((NR - 1) * (long long)(THP_SIZE / PS),
		  xfer_counter_delta(&b, &a, "moved"));
	EXPECT_EQ((long long)(THP_SIZE / PS), xfer_counter_delta(&b, &a, "mapped"));

	close(p[0]);
	close(p[1]);
	munmap(x, NR * THP_SIZE);
	munmap(y, NR * THP_SIZE);
	close(pm);
}

/*
 * Two 64 KiB mTHP folios given in one call into a default 16-slot pipe that
 * already holds a page: 15 slots free, fewer than a folio's 16 pages.  A
 * giver that fetches only as many pages as there are slots must fetch a
 * cut folio again, whole: each folio goes in as one buffer (the call takes
 * both), not as 15 single pages that fill the pipe and are copied later.
 */
TEST(mthp_into_pipe_with_fewer_slots_than_pages)
{
	long long large;
	char why[160];
	int p[2], pm;
	char *one, *x, buf[PS];
	size_t off;

	REQUIRE_MOVE();
	if (xfer_mthp_on(why, sizeof(why))) {
		ASSERT_FALSE(move_required()) TH_LOG("%s", why);
		SKIP(return, "%s", why);
	}
	pm = pagemap_open();
	ASSERT_LE(0, pm);
	one = map_aligned(PS, PS, MADV_NOHUGEPAGE);
	x = map_aligned(2 * MTHP_64K_SIZE, MTHP_64K_SIZE, 0);
	ASSERT_NE(NULL, one);
	ASSERT_NE(NULL, x);
	words_fill(one, PS, SEED, 0);
	words_fill(x, 2 * MTHP_64K_SIZE, SEED, PS);
	/* Allocated (or not) now: what the test set up, it undoes first. */
	xfer_mthp_off();
	if (pagemap_pfns_visible(pm) && (!backed_by_folio(pm, x, MTHP_64K_SIZE) ||
					 !backed_by_folio(pm, x + MTHP_64K_SIZE, MTHP_64K_SIZE))) {
		ASSERT_FALSE(move_required()) TH_LOG("no 64 KiB folio allocated");
		SKIP(return, "no 64 KiB folio was allocated");
	}
	ASSERT_EQ(0, pipe2(p, O_CLOEXEC));
	ASSERT_EQ((ssize_t)PS, vms(p[1], one, PS, GIVE));

	large = vmstat_get("vmsplice_gift_large");
	ASSERT_EQ((ssize_t)(2 * MTHP_64K_SIZE), vms(p[1], x, 2 * MTHP_64K_SIZE, GIVE));
	EXPECT_EQ(2, vmstat_get("vmsplice_gift_large") - large);
	/* And the pipe holds the bytes in order. */
	for (off = 0; off < PS + 2 * MTHP_64K_SIZE; off += PS) {
		ASSERT_EQ((ssize_t)PS, read(p[0], buf, PS));
		ASSERT_EQ((size_t)-1, words_check(buf, PS, SEED, off)) TH_LOG("at %zu", off);
	}
	close(p[0]);
	close(p[1]);
	close(pm);
}

TEST_HARNESS_MAIN
