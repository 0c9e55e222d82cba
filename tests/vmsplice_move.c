// SPDX-License-Identifier: GPL-2.0
/*
 * vmsplice(SPLICE_F_MOVE): one table of hand-overs between two processes,
 * each run twice:
 *
 * *  - "bytes": the reader gets exactly the bytes the writer sent, and a bad
 *    destination loses nothing.  Must pass on every kernel, patched or not.
 *  - "proof": what the patched kernel did, from its own counters and from
 *    page frame numbers (/proc/self/pagemap, root only): moved pages keep
 *    their frame, copied ones do not, each fallback is counted under its
 *    reason and nothing else is counted.  SKIPs on kernels without the
 *    change.
 *
 * A row's comment says what a kernel bug would let a process observe.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "kselftest_harness.h"

#include "lib/pagemap.h"
#include "lib/xfer.h"

#define PS	4096
#define GM	GIVE

FIXTURE(xfer)
{
	struct xfer_result res;
	bool kernel_moves;
	bool pfns;
};

FIXTURE_VARIANT(xfer)
{
	struct xfer_case c;
	/* Expected counter deltas: at most two reasons, plus "unmapped". */
	const char *reason;
	int nr;
	const char *reason2;
	int nr2;
	int unmapped;
	bool same_frames;	/* reader's frames are the writer's */
	bool dst_absent;	/* nothing allocated at the destination */
};

/* A page gifted and moved: same frame, writer sees zeros, RSS moves. */
FIXTURE_VARIANT_ADD(xfer, anon_1page) {
	.c = { SRC_ANON, DST_FRESH, GM, SPLICE_F_MOVE, 0, PS },
	.reason = "moved", .nr = 1, .unmapped = 1, .same_frames = true,
};

/* Many pages in one call: all moved, one zap. */
FIXTURE_VARIANT_ADD(xfer, anon_64pages) {
	.c = { SRC_ANON, DST_FRESH, GM, SPLICE_F_MOVE, 0, 64 * PS },
	.reason = "moved", .nr = 64, .unmapped = 64, .same_frames = true,
};

/* The reader's old pages are replaced (and freed), not written into. */
FIXTURE_VARIANT_ADD(xfer, populated_dst) {
	.c = { SRC_ANON, DST_POPULATED, GM, SPLICE_F_MOVE, 0, 16 * PS },
	.reason = "moved", .nr = 16, .unmapped = 16, .same_frames = true,
};

/* A mapped zero page at the destination is replaced too. */
FIXTURE_VARIANT_ADD(xfer, zeropage_dst) {
	.c = { SRC_ANON, DST_ZEROPAGE, GM, SPLICE_F_MOVE, 0, 4 * PS },
	.reason = "moved", .nr = 4, .unmapped = 4, .same_frames = true,
};

/* Never-touched pages arrive as zeros without allocating anything. */
FIXTURE_VARIANT_ADD(xfer, untouched_src) {
	.c = { SRC_UNTOUCHED, DST_FRESH, GM, SPLICE_F_MOVE, 0, 4 * PS },
	.reason = "moved_zero", .nr = 4, .unmapped = 4, .dst_absent = true,
};

/* Unaligned destination: copied; a move would shift the data. */
FIXTURE_VARIANT_ADD(xfer, unaligned_dst) {
	.c = { SRC_ANON, DST_UNALIGNED, GM, SPLICE_F_MOVE, 0, 4 * PS },
	.reason = "partial", .nr = 4, .unmapped = 4,
};

/* Partial pages at both ends: only the whole page is unmapped. */
FIXTURE_VARIANT_ADD(xfer, partial_src) {
	.c = { SRC_ANON, DST_FRESH, GM, SPLICE_F_MOVE, 100, 2 * PS },
	.reason = "partial", .nr = 3, .unmapped = 1,
};

/* GIFT alone keeps the writer's mapping: moving would share the page. */
FIXTURE_VARIANT_ADD(xfer, gift_without_unmap) {
	.c = { SRC_ANON, DST_FRESH, SPLICE_F_GIFT, SPLICE_F_MOVE, 0, 4 * PS },
	.reason = "not_gift", .nr = 4,
};

/* MOVE without GIFT: the pages were never given away. */
FIXTURE_VARIANT_ADD(xfer, move_without_gift) {
	.c = { SRC_ANON, DST_FRESH, SPLICE_F_MOVE, SPLICE_F_MOVE, 0, 4 * PS },
	.reason = "not_gift", .nr = 4,
};

/* A reader without MOVE copies, and counts nothing. */
FIXTURE_VARIANT_ADD(xfer, reader_without_move) {
	.c = { SRC_ANON, DST_FRESH, GM, 0, 0, 4 * PS },
	.unmapped = 4,
};

/* A forked child still maps the pages: it would see the reader's writes. */
FIXTURE_VARIANT_ADD(xfer, fork_shared_src) {
	.c = { SRC_FORK_SHARED, DST_FRESH, GM, SPLICE_F_MOVE, 0, 4 * PS },
	.reason = "mapped", .nr = 4, .unmapped = 4,
};

/* io_uring holds a pin: the device could write into the reader's page. */
FIXTURE_VARIANT_ADD(xfer, pinned_src) {
	.c = { SRC_PINNED, DST_FRESH, GM, SPLICE_F_MOVE, 0, 4 * PS },
	.reason = "pinned", .nr = 4, .unmapped = 4,
};

/* Pages of a THP given without the rest of it: copied. */
FIXTURE_VARIANT_ADD(xfer, thp_src) {
	.c = { SRC_THP, DST_FRESH, GM, SPLICE_F_MOVE, 0, 4 * PS },
	.reason = "large", .nr = 4, .unmapped = 4,
};

/*
 * The same page vmspliced twice: while the second buffer holds it the
 * first must be copied (else the second would deliver the reader's later
 * writes); once the first is gone the second is the only user and moves.
 */
FIXTURE_VARIANT_ADD(xfer, same_page_twice) {
	.c = { SRC_DUP, DST_FRESH, GM, SPLICE_F_MOVE, 0, 2 * PS },
	.reason = "refs", .nr = 1, .reason2 = "moved", .nr2 = 1, .unmapped = 1,
};

/* tee(): the original is shared with the copy, the copy is no gift. */
FIXTURE_VARIANT_ADD(xfer, tee_buffer) {
	.c = { SRC_ANON, DST_FRESH, GM, SPLICE_F_MOVE, 0, 4 * PS, .tee = true },
	.reason = "refs", .nr = 4, .reason2 = "not_gift", .nr2 = 4, .unmapped = 4,
};

/* Page-cache pages spliced from a file belong to the file. */
FIXTURE_VARIANT_ADD(xfer, file_splice_src) {
	.c = { SRC_FILE, DST_FRESH, 0, SPLICE_F_MOVE, 0, 4 * PS },
	.reason = "not_gift", .nr = 4,
};

/* Shared memfd pages gifted: not unmapped, not anonymous, copied. */
FIXTURE_VARIANT_ADD(xfer, memfd_shared_src) {
	.c = { SRC_MEMFD_SHARED, DST_FRESH, GM, SPLICE_F_MOVE, 0, 4 * PS },
	.reason = "not_anon", .nr = 4,
};

/* A shared destination would expose the page to every mapper. */
FIXTURE_VARIANT_ADD(xfer, shared_dst) {
	.c = { SRC_ANON, DST_SHARED, GM, SPLICE_F_MOVE, 0, 4 * PS },
	.reason = "dst_vma", .nr = 4, .unmapped = 4,
};

/* mlock()ed destination: copied into, stays locked. */
FIXTURE_VARIANT_ADD(xfer, mlocked_dst) {
	.c = { SRC_ANON, DST_MLOCKED, GM, SPLICE_F_MOVE, 0, 4 * PS },
	.reason = "dst_vma", .nr = 4, .unmapped = 4,
};

/* userfaultfd-registered destination: the monitor keeps its faults. */
FIXTURE_VARIANT_ADD(xfer, uffd_dst) {
	.c = { SRC_ANON, DST_UFFD, GM, SPLICE_F_MOVE, 0, 4 * PS },
	.reason = "dst_vma", .nr = 4, .unmapped = 4,
};

/* Another memcg's pages would escape that memcg's limit. */
FIXTURE_VARIANT_ADD(xfer, other_memcg_src) {
	.c = { SRC_OTHER_MEMCG, DST_FRESH, GM, SPLICE_F_MOVE, 0, 4 * PS },
	.reason = "memcg", .nr = 4, .unmapped = 4,
};

/* MADV_FREE pages not written since: reclaim may drop them; copied. */
FIXTURE_VARIANT_ADD(xfer, lazyfree_src) {
	.c = { SRC_LAZYFREE, DST_FRESH, GM, SPLICE_F_MOVE, 0, 4 * PS },
	.reason = "busy", .nr = 4, .unmapped = 4,
};

/* Still in the swap cache, which a child's swap entry refers to. */
FIXTURE_VARIANT_ADD(xfer, swapcache_src) {
	.c = { SRC_SWAPCACHE, DST_FRESH, GM, SPLICE_F_MOVE, 0, 4 * PS },
	.reason = "swapcache", .nr = 4, .unmapped = 4,
};

/*
 * Protection key denies the reader writes: a move would write where the
 * copy faults.  EFAULT, nothing moved, the data still in the pipe.
 */
FIXTURE_VARIANT_ADD(xfer, pkey_readonly_dst) {
	.c = { SRC_ANON, DST_PKEY_RO, GM, SPLICE_F_MOVE, 0, 4 * PS },
	.unmapped = 4,
};

/* A THP destination: its PMD is split and the pages moved in. */
FIXTURE_VARIANT_ADD(xfer, thp_dst) {
	.c = { SRC_ANON, DST_THP, GM, SPLICE_F_MOVE, 0, 4 * PS },
	.reason = "moved", .nr = 4, .unmapped = 4, .same_frames = true,
};

/* hugetlb source: never unmapped, never moved (a large folio). */
FIXTURE_VARIANT_ADD(xfer, hugetlb_src) {
	.c = { SRC_HUGETLB, DST_FRESH, GM, SPLICE_F_MOVE, 0, 4 * PS },
	.reason = "large", .nr = 4,
};

/* hugetlb destination: no anonymous rmap to install into; copied. */
FIXTURE_VARIANT_ADD(xfer, hugetlb_dst) {
	.c = { SRC_ANON, DST_HUGETLB, GM, SPLICE_F_MOVE, 0, 4 * PS },
	.reason = "dst_vma", .nr = 4, .unmapped = 4,
};

/* Read-only destination: EFAULT, and the data is still in the pipe. */
FIXTURE_VARIANT_ADD(xfer, readonly_dst) {
	.c = { SRC_ANON, DST_READONLY, GM, SPLICE_F_MOVE, 0, 4 * PS },
	.unmapped = 4,
};

FIXTURE_SETUP(xfer)
{
	int pm;

	ASSERT_EQ(PS, getpagesize());
	self->kernel_moves = xfer_kernel_moves();
	pm = pagemap_open();
	ASSERT_LE(0, pm);
	self->pfns = pagemap_pfns_visible(pm);
	close(pm);
	if (variant->c.src == SRC_OTHER_MEMCG && !self->kernel_moves)
		SKIP(return, "memcg setup only inside the test VM (kernel with the change)");
	if (variant->c.src == SRC_HUGETLB || variant->c.dst == DST_HUGETLB) {
		char why[128];

		if (!self->kernel_moves)
			SKIP(return, "hugetlb reservation only inside the test VM (kernel with the change)");
		if (xfer_hugetlb_on(why, sizeof(why)))
			SKIP(return, "%s", why);
	}
	if (variant->c.src == SRC_SWAPCACHE) {
		char why[128];

		if (!self->kernel_moves)
			SKIP(return, "swap set-up only inside the test VM (kernel with the change)");
		if (xfer_swap_on(why, sizeof(why)))
			SKIP(return, "%s", why);
	}
	ASSERT_EQ(0, xfer_run(&variant->c, &self->res));
	if (self->res.skipped)
		SKIP(return, "%s", self->res.skip_reason);
}

FIXTURE_TEARDOWN(xfer)
{
}

TEST_F(xfer, bytes)
{
	const struct xfer_result *r = &self->res;
	ssize_t len = variant->c.len;

	ASSERT_EQ(len, r->wret) TH_LOG("writer: %s", strerror(r->werrno));
	if (variant->c.dst == DST_READONLY || variant->c.dst == DST_PKEY_RO) {
		ASSERT_EQ(-1, r->rret);
		ASSERT_EQ(EFAULT, r->rerrno);
	} else {
		ASSERT_EQ(len, r->rret) TH_LOG("reader: %s", strerror(r->rerrno));
	}
	ASSERT_TRUE(r->data_ok) TH_LOG("%s", r->data_msg);
}

TEST_F(xfer, proof)
{
	const struct xfer_result *r = &self->res;
	const struct xfer_counters *b = &r->before, *a = &r->after;
	const char *all[XFER_NR_FALLBACKS + 2] = { "moved", "moved_zero" };

	if (!self->kernel_moves)
		SKIP(return, "kernel without vmsplice SPLICE_F_MOVE (no vmsplice_move_pages in /proc/vmstat)");
	ASSERT_TRUE(r->data_ok) TH_LOG("%s", r->data_msg);

	/* Exactly the expected counters moved, and no other. */
	for (int i = 0; i < XFER_NR_FALLBACKS; i++)
		all[i + 2] = xfer_fallback_names[i];
	for (int i = 0; i < XFER_NR_FALLBACKS + 2; i++) {
		long long want = 0;

		if (variant->reason && !strcmp(all[i], variant->reason))
			want += variant->nr;
		if (variant->reason2 && !strcmp(all[i], variant->reason2))
			want += variant->nr2;
		EXPECT_EQ(want, xfer_counter_delta(b, a, all[i]))
			TH_LOG("counter %s", all[i]);
	}
	ASSERT_EQ(variant->unmapped, xfer_counter_delta(b, a, "unmapped"));

	/* Moved-in pages are new to the reader: soft-dirty, as if written. */
	if (variant->same_frames)
		ASSERT_TRUE(r->dst_soft_dirty);

	/* What the writer sees after the gift. */
	if (variant->unmapped && variant->c.src != SRC_UNTOUCHED)
		ASSERT_TRUE(r->writer_zero);
	if (!variant->unmapped)
		ASSERT_TRUE(r->writer_intact);

	if (!self->pfns)
		SKIP(return, "page frame numbers are visible to root only");
	for (size_t i = 0; i < r->npages && i * PS < variant->c.len; i++) {
		if (variant->dst_absent) {
			ASSERT_EQ(0, r->dst_pfn[i]) TH_LOG("page %zu allocated", i);
		} else if (variant->same_frames) {
			ASSERT_NE(0, r->src_pfn[i]);
			ASSERT_EQ(r->src_pfn[i], r->dst_pfn[i]) TH_LOG("page %zu", i);
		} else if (r->dst_pfn[i] && variant->c.src != SRC_DUP) {
			ASSERT_NE(r->src_pfn[i], r->dst_pfn[i]) TH_LOG("page %zu", i);
		}
	}
	if (variant->same_frames && variant->c.dst == DST_FRESH) {
		long long kb = variant->c.len / 1024;

		/* RssAnon moves from the writer to the reader. */
		ASSERT_GE(r->writer_rss_drop_kb, kb);
		ASSERT_GE(r->reader_rss_rise_kb, kb);
	}
}

TEST_HARNESS_MAIN
