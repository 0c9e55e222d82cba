// SPDX-License-Identifier: GPL-2.0
/*
 * vmsplice page moving: one table of hand-overs between two processes,
 * each run three times:
 *
 *  - "bytes": the reader gets exactly the bytes the writer sent, the bytes
 *    just outside the range are untouched on both sides, a bad destination
 *    loses nothing, and a writer that should keep its pages does.  Must
 *    pass on every kernel, patched or not (without the change the writer
 *    gives with SPLICE_F_GIFT only, the old copy path).
 *  - "counters": what the patched kernel did, from its own counters: each
 *    page moved or copied is counted under its reason, and no other
 *    counter moves (THP splits included).
 *  - "frames": page frame numbers (/proc/self/pagemap, root only): moved
 *    pages keep their frame, copies do not, pages copied into keep the
 *    destination's; RSS and AnonHugePages move from writer to reader.
 * The last two SKIP on kernels without the change and FAIL inside the
 * test VM (VMSPLICE_REQUIRE_MOVE=1), where the feature must be there.
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
	bool mthp;
};

FIXTURE_VARIANT(xfer)
{
	struct xfer_case c;
	/* Expected counter deltas, in pages: at most two reasons. */
	const char *reason;
	int nr;
	const char *reason2;
	int nr2;
	int unmapped;
	/* Folio counters, and the kernel's THP split counters. */
	int gift_large, folio_thp, folio_large, folio_split;
	int split_pmd, split_page;
	bool same_frames;	/* reader's frames are the writer's */
	bool first_kept;	/* ... except the first, which keeps its own */
	bool first_copied;	/* ... except the first, which is a copy */
	bool second_moved;	/* copied, except the second, which moved */
	bool kept_frames;	/* copied into: the reader's frames stay */
	bool dst_absent;	/* nothing allocated at the destination */
	bool keeps;		/* the writer keeps its pages and data */
	bool efault;		/* the read fails, the data stays in the pipe */
	bool thp_moves;		/* AnonHugePages moves writer -> reader */
	const char *needs;	/* a set-up only the test VM provides */
};

/* A page given and moved: same frame, the writer reads zeros, RSS moves. */
FIXTURE_VARIANT_ADD(xfer, anon_1page) {
	.c = { MEM_ANON, MOD_NONE, DST_FRESH, GM, SPLICE_F_MOVE, 0, PS },
	.reason = "moved", .nr = 1, .unmapped = 1, .same_frames = true,
};

/* Many pages in one call: all moved, one zap. */
FIXTURE_VARIANT_ADD(xfer, anon_64pages) {
	.c = { MEM_ANON, MOD_NONE, DST_FRESH, GM, SPLICE_F_MOVE, 0, 64 * PS },
	.reason = "moved", .nr = 64, .unmapped = 64, .same_frames = true,
};

/* More than a page table's worth: batches end at page-table boundaries. */
FIXTURE_VARIANT_ADD(xfer, anon_two_tables) {
	.c = { MEM_ANON, MOD_NONE, DST_FRESH, GM, SPLICE_F_MOVE, 0, 600 * PS },
	.reason = "moved", .nr = 600, .unmapped = 600, .same_frames = true,
};

/* The reader's own pages are replaced (and freed) atomically, not written into. */
FIXTURE_VARIANT_ADD(xfer, populated_dst) {
	.c = { MEM_ANON, MOD_NONE, DST_POPULATED, GM, SPLICE_F_MOVE, 0, 16 * PS },
	.reason = "moved", .nr = 16, .unmapped = 16, .same_frames = true,
};

/* A mapped zero page at the destination is replaced too. */
FIXTURE_VARIANT_ADD(xfer, zeropage_dst) {
	.c = { MEM_ANON, MOD_NONE, DST_ZEROPAGE, GM, SPLICE_F_MOVE, 0, 4 * PS },
	.reason = "moved", .nr = 4, .unmapped = 4, .same_frames = true,
};

/* Never-touched pages arrive as zeros without allocating anything. */
FIXTURE_VARIANT_ADD(xfer, untouched_src) {
	.c = { MEM_UNTOUCHED, MOD_NONE, DST_FRESH, GM, SPLICE_F_MOVE, 0, 4 * PS },
	.reason = "moved_zero", .nr = 4, .unmapped = 4, .dst_absent = true,
};

/* Zeros onto populated pages: they are cleared, not written. */
FIXTURE_VARIANT_ADD(xfer, untouched_to_populated) {
	.c = { MEM_UNTOUCHED, MOD_NONE, DST_POPULATED, GM, SPLICE_F_MOVE, 0, 4 * PS },
	.reason = "moved_zero", .nr = 4, .unmapped = 4, .dst_absent = true,
};

/* Unaligned destination: copied; a move would shift the data. */
FIXTURE_VARIANT_ADD(xfer, unaligned_dst) {
	.c = { MEM_ANON, MOD_NONE, DST_UNALIGNED, GM, SPLICE_F_MOVE, 0, 4 * PS },
	.reason = "partial", .nr = 4, .unmapped = 4,
};

/*
 * Two half-page segments: a whole page moved to the first would overwrite
 * the half page after it, which the reader did not hand over.
 */
FIXTURE_VARIANT_ADD(xfer, segments_dst) {
	.c = { MEM_ANON, MOD_NONE, DST_SEGMENTS, GM, SPLICE_F_MOVE, 0, PS },
	.reason = "partial", .nr = 1, .unmapped = 1,
};

/* Partial pages at both ends: only the whole page is unmapped. */
FIXTURE_VARIANT_ADD(xfer, partial_src) {
	.c = { MEM_ANON, MOD_NONE, DST_FRESH, GM, SPLICE_F_MOVE, 100, 2 * PS },
	.reason = "partial", .nr = 3, .unmapped = 1,
};

/* GIFT alone keeps the writer's mapping: moving would share the page. */
FIXTURE_VARIANT_ADD(xfer, gift_without_unmap) {
	.c = { MEM_ANON, MOD_NONE, DST_FRESH, SPLICE_F_GIFT, SPLICE_F_MOVE, 0, 4 * PS },
	.reason = "not_gift", .nr = 4, .keeps = true,
};

/*
 * What existing programs pass (the 2013 RFC's interface): on every kernel
 * the pages stay mapped and the writer keeps its data.
 */
FIXTURE_VARIANT_ADD(xfer, gift_move_abi) {
	.c = { MEM_ANON, MOD_NONE, DST_FRESH, SPLICE_F_GIFT | SPLICE_F_MOVE, SPLICE_F_MOVE, 0, 4 * PS },
	.reason = "not_gift", .nr = 4, .keeps = true,
};

/* MOVE without GIFT: the pages were never given away. */
FIXTURE_VARIANT_ADD(xfer, move_without_gift) {
	.c = { MEM_ANON, MOD_NONE, DST_FRESH, SPLICE_F_MOVE, SPLICE_F_MOVE, 0, 4 * PS },
	.reason = "not_gift", .nr = 4, .keeps = true,
};

/* A reader without MOVE copies, and counts nothing. */
FIXTURE_VARIANT_ADD(xfer, reader_without_move) {
	.c = { MEM_ANON, MOD_NONE, DST_FRESH, GM, 0, 0, 4 * PS },
	.unmapped = 4,
};

/* A forked child still maps the pages: it would see the reader's writes. */
FIXTURE_VARIANT_ADD(xfer, fork_shared_src) {
	.c = { MEM_ANON, MOD_FORK_SHARED, DST_FRESH, GM, SPLICE_F_MOVE, 0, 4 * PS },
	.reason = "mapped", .nr = 4, .unmapped = 4,
};

/* io_uring holds a pin: the device could write into the reader's page. */
FIXTURE_VARIANT_ADD(xfer, pinned_src) {
	.c = { MEM_ANON, MOD_PINNED, DST_FRESH, GM, SPLICE_F_MOVE, 0, 4 * PS },
	.reason = "pinned", .nr = 4, .unmapped = 4,
};

/* An O_DIRECT read (Linux AIO, io_submit) in flight pins the pages. */
FIXTURE_VARIANT_ADD(xfer, aio_pinned_src) {
	.c = { MEM_ANON, MOD_AIO_PINNED, DST_FRESH, GM, SPLICE_F_MOVE, 0, 4 * PS },
	.reason = "pinned", .nr = 4, .unmapped = 4, .needs = "aio",
};

/* Pages of a THP given without the rest of it: copied. */
FIXTURE_VARIANT_ADD(xfer, thp_part_src) {
	.c = { MEM_THP, MOD_NONE, DST_FRESH, GM, SPLICE_F_MOVE, 0, 4 * PS },
	.reason = "large", .nr = 4, .unmapped = 4, .split_pmd = 1,
};

/*
 * The same page named twice: while the second buffer holds it the first
 * must be copied (else the second would deliver the reader's later
 * writes); once the first is gone the second is the only user and moves.
 * Unmapped, and counted, once.
 */
FIXTURE_VARIANT_ADD(xfer, same_page_twice) {
	.c = { MEM_ANON, MOD_DUP, DST_FRESH, GM, SPLICE_F_MOVE, 0, 2 * PS },
	.reason = "refs", .nr = 1, .reason2 = "moved", .nr2 = 1, .unmapped = 1,
};

/* tee(): the original is shared with the copy, the copy is no gift. */
FIXTURE_VARIANT_ADD(xfer, tee_buffer) {
	.c = { MEM_ANON, MOD_NONE, DST_FRESH, GM, SPLICE_F_MOVE, 0, 4 * PS, .tee = true },
	.reason = "refs", .nr = 4, .reason2 = "not_gift", .nr2 = 4,
	.unmapped = 4,
};

/* Page-cache pages spliced from a file belong to the file. */
FIXTURE_VARIANT_ADD(xfer, file_splice_src) {
	.c = { MEM_FILE, MOD_NONE, DST_FRESH, 0, SPLICE_F_MOVE, 0, 4 * PS },
	.reason = "not_gift", .nr = 4, .keeps = true,
};

/* Shared memfd pages given: not unmapped, not anonymous, copied. */
FIXTURE_VARIANT_ADD(xfer, memfd_shared_src) {
	.c = { MEM_MEMFD_SHARED, MOD_NONE, DST_FRESH, GM, SPLICE_F_MOVE, 0, 4 * PS },
	.reason = "not_anon", .nr = 4, .keeps = true,
};

/* A shared destination would expose the page to every mapper. */
FIXTURE_VARIANT_ADD(xfer, shared_dst) {
	.c = { MEM_ANON, MOD_NONE, DST_SHARED, GM, SPLICE_F_MOVE, 0, 4 * PS },
	.reason = "dst_vma", .nr = 4, .unmapped = 4,
};

/* A private file mapping: its pages would need the file's COW state. */
FIXTURE_VARIANT_ADD(xfer, private_file_dst) {
	.c = { MEM_ANON, MOD_NONE, DST_PRIVATE_FILE, GM, SPLICE_F_MOVE, 0, 4 * PS },
	.reason = "dst_vma", .nr = 4, .unmapped = 4,
};

/* MAP_DROPPABLE: a moved page would not be droppable. */
FIXTURE_VARIANT_ADD(xfer, droppable_dst) {
	.c = { MEM_ANON, MOD_NONE, DST_DROPPABLE, GM, SPLICE_F_MOVE, 0, 4 * PS },
	.reason = "dst_vma", .nr = 4, .unmapped = 4,
};

/* mlock()ed destination: copied into, stays locked. */
FIXTURE_VARIANT_ADD(xfer, mlocked_dst) {
	.c = { MEM_ANON, MOD_NONE, DST_MLOCKED, GM, SPLICE_F_MOVE, 0, 4 * PS },
	.reason = "dst_vma", .nr = 4, .unmapped = 4,
};

/* userfaultfd-registered destination: the monitor keeps its faults. */
FIXTURE_VARIANT_ADD(xfer, uffd_dst) {
	.c = { MEM_ANON, MOD_NONE, DST_UFFD, GM, SPLICE_F_MOVE, 0, 4 * PS },
	.reason = "dst_vma", .nr = 4, .unmapped = 4,
};

/*
 * The reader's pages swapped out (swap entries, no page mapped): nothing
 * to replace; copied into (swapped back in first), as read(2) would.
 */
FIXTURE_VARIANT_ADD(xfer, swapped_out_dst) {
	.c = { MEM_ANON, MOD_NONE, DST_SWAPPED, GM, SPLICE_F_MOVE, 0, 4 * PS },
	.reason = "dst_busy", .nr = 4, .unmapped = 4, .needs = "swap",
};

/*
 * A pinned destination page: a device writing into it expects the data
 * there, so it is copied into and keeps its frame.
 */
FIXTURE_VARIANT_ADD(xfer, pinned_dst) {
	.c = { MEM_ANON, MOD_NONE, DST_PINNED, GM, SPLICE_F_MOVE, 0, 4 * PS },
	.reason = "dst_busy", .nr = 4, .unmapped = 4, .kept_frames = true,
};

/*
 * A destination page that a later pipe buffer references: the copy writes
 * into it (and that buffer then delivers the new bytes); replacing it would
 * leave the old bytes there.
 */
FIXTURE_VARIANT_ADD(xfer, referenced_dst) {
	.c = { MEM_ANON, MOD_NONE, DST_REFERENCED, GM, SPLICE_F_MOVE, 0, 4 * PS },
	.reason = "dst_busy", .nr = 1, .reason2 = "moved", .nr2 = 3,
	.unmapped = 4, .first_kept = true,
};

/* Another memcg's pages would escape that memcg's limit. */
FIXTURE_VARIANT_ADD(xfer, other_memcg_src) {
	.c = { MEM_ANON, MOD_OTHER_MEMCG, DST_FRESH, GM, SPLICE_F_MOVE, 0, 4 * PS },
	.reason = "memcg", .nr = 4, .unmapped = 4, .needs = "memcg",
};

/* MADV_FREE pages not written since: reclaim may drop them; copied. */
FIXTURE_VARIANT_ADD(xfer, lazyfree_src) {
	.c = { MEM_ANON, MOD_LAZYFREE, DST_FRESH, GM, SPLICE_F_MOVE, 0, 4 * PS },
	.reason = "busy", .nr = 4, .unmapped = 4,
};

/* Still in the swap cache, which a child's swap entry refers to. */
FIXTURE_VARIANT_ADD(xfer, swapcache_src) {
	.c = { MEM_ANON, MOD_SWAPCACHE, DST_FRESH, GM, SPLICE_F_MOVE, 0, 4 * PS },
	.reason = "swapcache", .nr = 4, .unmapped = 4, .needs = "swap",
};

/* In the swap cache with no swap entry left: taken out of it and moved. */
FIXTURE_VARIANT_ADD(xfer, swapin_src) {
	.c = { MEM_ANON, MOD_SWAPIN, DST_FRESH, GM, SPLICE_F_MOVE, 0, 4 * PS },
	.reason = "moved", .nr = 4, .unmapped = 4, .same_frames = true,
	.needs = "swap",
};

/*
 * A KSM page that only the writer mapped: shared by content and rmap'd by
 * the stable tree; only the KSM check can refuse it.
 */
FIXTURE_VARIANT_ADD(xfer, ksm_src) {
	.c = { MEM_ANON, MOD_KSM, DST_FRESH, GM, SPLICE_F_MOVE, 0, PS },
	.reason = "ksm", .nr = 1, .unmapped = 1, .needs = "ksm",
};

/* mlock()ed memory stays mapped in the writer (and is copied). */
FIXTURE_VARIANT_ADD(xfer, mlocked_src) {
	.c = { MEM_ANON, MOD_MLOCKED, DST_FRESH, GM, SPLICE_F_MOVE, 0, 4 * PS },
	.reason = "mapped", .nr = 4, .keeps = true,
};

/* mseal()ed read-only memory may not be discarded: it stays mapped. */
FIXTURE_VARIANT_ADD(xfer, sealed_src) {
	.c = { MEM_ANON, MOD_SEALED, DST_FRESH, GM, SPLICE_F_MOVE, 0, 4 * PS },
	.reason = "mapped", .nr = 4, .keeps = true,
};

/*
 * MAP_DROPPABLE memory stays mapped: its pages are not swap-backed and may
 * be dropped under pressure, which a reader's ordinary anonymous page
 * must never be.
 */
FIXTURE_VARIANT_ADD(xfer, droppable_src) {
	.c = { MEM_DROPPABLE, MOD_NONE, DST_FRESH, GM, SPLICE_F_MOVE, 0, 4 * PS },
	.reason = "mapped", .nr = 4, .keeps = true,
};

/*
 * userfaultfd-registered memory stays mapped: no event would tell the
 * monitor, and write-protect tracking expects the pages to stay.
 */
FIXTURE_VARIANT_ADD(xfer, uffd_src) {
	.c = { MEM_ANON, MOD_UFFD, DST_FRESH, GM, SPLICE_F_MOVE, 0, 4 * PS },
	.reason = "mapped", .nr = 4, .keeps = true,
};

/*
 * Pages on node 0, the reader bound to node 1: a move would leave them
 * where the reader's policy forbids.
 */
FIXTURE_VARIANT_ADD(xfer, numa_src) {
	.c = { MEM_ANON, MOD_NUMA, DST_FRESH, GM, SPLICE_F_MOVE, 0, 4 * PS },
	.reason = "numa", .nr = 4, .unmapped = 4, .needs = "numa",
};

/* The same forbidden by the reader's cpuset (cpuset.mems 1), not a policy. */
FIXTURE_VARIANT_ADD(xfer, numa_cpuset_src) {
	.c = { MEM_ANON, MOD_NUMA_CPUSET, DST_FRESH, GM, SPLICE_F_MOVE, 0, 4 * PS },
	.reason = "numa", .nr = 4, .unmapped = 4, .needs = "numa",
};

/* A page poisoned while in the pipe is never mapped again. */
FIXTURE_VARIANT_ADD(xfer, hwpoison_src) {
	.c = { MEM_ANON, MOD_HWPOISON, DST_FRESH, GM, SPLICE_F_MOVE, 0, 4 * PS },
	.reason = "hwpoison", .nr = 1, .reason2 = "moved", .nr2 = 3,
	.first_copied = true,
	.unmapped = 4, .needs = "hwpoison",
};

/*
 * Protection key denies the reader writes: a move would write where the
 * copy faults.  EFAULT, nothing moved, the data still in the pipe.
 */
FIXTURE_VARIANT_ADD(xfer, pkey_readonly_dst) {
	.c = { MEM_ANON, MOD_NONE, DST_PKEY_RO, GM, SPLICE_F_MOVE, 0, 4 * PS },
	.unmapped = 4, .efault = true,
};

/*
 * A populated THP destination: its PMD is split (the data stays mapped)
 * and its pages replaced.
 */
FIXTURE_VARIANT_ADD(xfer, thp_dst) {
	.c = { MEM_ANON, MOD_NONE, DST_THP, GM, SPLICE_F_MOVE, 0, 4 * PS },
	.reason = "moved", .nr = 4, .unmapped = 4, .split_pmd = 1,
	.same_frames = true,
};

/* A pinned THP destination: copied into, not even split. */
FIXTURE_VARIANT_ADD(xfer, thp_pinned_dst) {
	.c = { MEM_ANON, MOD_NONE, DST_THP_PINNED, GM, SPLICE_F_MOVE, 0, 4 * PS },
	.reason = "dst_busy", .nr = 4, .unmapped = 4, .kept_frames = true,
};

/* hugetlb source: never unmapped, never moved. */
FIXTURE_VARIANT_ADD(xfer, hugetlb_src) {
	.c = { MEM_HUGETLB, MOD_NONE, DST_FRESH, GM, SPLICE_F_MOVE, 0, 4 * PS },
	.reason = "large", .nr = 4, .keeps = true, .needs = "hugetlb",
};

/*
 * A whole 2 MiB hugetlb page: given page by page as before (a hugetlb
 * folio is never one buffer), kept by the giver, copied.
 */
FIXTURE_VARIANT_ADD(xfer, hugetlb_whole_src) {
	.c = { MEM_HUGETLB, MOD_NONE, DST_FRESH, GM, SPLICE_F_MOVE, 0, XFER_THP },
	.reason = "large", .nr = 512, .keeps = true, .needs = "hugetlb",
};

/* hugetlb destination: no anonymous rmap to install into; copied. */
FIXTURE_VARIANT_ADD(xfer, hugetlb_dst) {
	.c = { MEM_ANON, MOD_NONE, DST_HUGETLB, GM, SPLICE_F_MOVE, 0, 4 * PS },
	.reason = "dst_vma", .nr = 4, .unmapped = 4, .needs = "hugetlb",
};

/* Read-only destination: EFAULT, and the data is still in the pipe. */
FIXTURE_VARIANT_ADD(xfer, readonly_dst) {
	.c = { MEM_ANON, MOD_NONE, DST_READONLY, GM, SPLICE_F_MOVE, 0, 4 * PS },
	.unmapped = 4, .efault = true,
};

/*
 * A whole THP onto an aligned THP-enabled destination: one PMD, no split,
 * the same frames; AnonHugePages moves from the writer to the reader.
 */
FIXTURE_VARIANT_ADD(xfer, thp_to_thp) {
	.c = { MEM_THP, MOD_NONE, DST_THP_FRESH, GM, SPLICE_F_MOVE, 0, XFER_THP },
	.reason = "moved", .nr = 512, .unmapped = 512, .gift_large = 1,
	.folio_thp = 1, .same_frames = true, .thp_moves = true,
};

/* Not 2 MiB aligned: mapped by PTEs (two page tables), still whole. */
FIXTURE_VARIANT_ADD(xfer, thp_misaligned_dst) {
	.c = { MEM_THP, MOD_NONE, DST_THP_MISALIGNED, GM, SPLICE_F_MOVE, 0, XFER_THP },
	.reason = "moved", .nr = 512, .unmapped = 512, .gift_large = 1,
	.folio_large = 1, .same_frames = true,
};

/* No MADV_HUGEPAGE at the destination: mapped by PTEs, not split. */
FIXTURE_VARIANT_ADD(xfer, thp_to_4k_dst) {
	.c = { MEM_THP, MOD_NONE, DST_FRESH, GM, SPLICE_F_MOVE, 0, XFER_THP },
	.reason = "moved", .nr = 512, .unmapped = 512, .gift_large = 1,
	.folio_large = 1, .same_frames = true,
};

/* MADV_NOHUGEPAGE: mapped by PTEs, then split, as the reader asked. */
FIXTURE_VARIANT_ADD(xfer, thp_nohugepage_dst) {
	.c = { MEM_THP, MOD_NONE, DST_NOHUGEPAGE, GM, SPLICE_F_MOVE, 0, XFER_THP },
	.reason = "moved", .nr = 512, .unmapped = 512, .gift_large = 1,
	.folio_large = 1, .folio_split = 1, .split_page = 1,
	.same_frames = true,
};

/* An exclusive THP at the destination is replaced with one PMD, atomically. */
FIXTURE_VARIANT_ADD(xfer, thp_populated_thp_dst) {
	.c = { MEM_THP, MOD_NONE, DST_THP, GM, SPLICE_F_MOVE, 0, XFER_THP },
	.reason = "moved", .nr = 512, .unmapped = 512, .gift_large = 1,
	.folio_thp = 1, .same_frames = true,
};

/* The huge zero page at the destination is replaced the same way. */
FIXTURE_VARIANT_ADD(xfer, thp_huge_zero_dst) {
	.c = { MEM_THP, MOD_NONE, DST_THP_ZERO, GM, SPLICE_F_MOVE, 0, XFER_THP },
	.reason = "moved", .nr = 512, .unmapped = 512, .gift_large = 1,
	.folio_thp = 1, .same_frames = true,
};

/* An empty page table at the destination: mapped into it by PTEs. */
FIXTURE_VARIANT_ADD(xfer, thp_pte_table_dst) {
	.c = { MEM_THP, MOD_NONE, DST_PTE_TABLE, GM, SPLICE_F_MOVE, 0, XFER_THP },
	.reason = "moved", .nr = 512, .unmapped = 512, .gift_large = 1,
	.folio_large = 1, .same_frames = true,
};

/* Populated 4 KiB pages under a whole THP: copied into. */
FIXTURE_VARIANT_ADD(xfer, thp_populated_4k_dst) {
	.c = { MEM_THP, MOD_NONE, DST_POPULATED, GM, SPLICE_F_MOVE, 0, XFER_THP },
	.reason = "dst_busy", .nr = 512, .unmapped = 512, .gift_large = 1,
	.kept_frames = true,
};

/* A reader iovec that cuts the THP in two segments: copied, data right. */
FIXTURE_VARIANT_ADD(xfer, thp_cut_dst) {
	.c = { MEM_THP, MOD_NONE, DST_THP_CUT, GM, SPLICE_F_MOVE, 0, XFER_THP },
	.reason = "partial", .nr = 512, .unmapped = 512, .gift_large = 1,
};

/* A THP still mapped by a forked child: copied. */
FIXTURE_VARIANT_ADD(xfer, thp_fork_shared) {
	.c = { MEM_THP, MOD_FORK_SHARED, DST_THP_FRESH, GM, SPLICE_F_MOVE, 0, XFER_THP },
	.reason = "mapped", .nr = 512, .unmapped = 512, .gift_large = 1,
};

/*
 * A THP shared with a forked child that maps it by PTEs (it split its own
 * PMD): the giver's PMD still maps it whole, so it is given as one
 * buffer, but the child maps it, so it is copied; what the reader then
 * writes does not reach the child.
 */
FIXTURE_VARIANT_ADD(xfer, thp_fork_split_shared) {
	.c = { MEM_THP, MOD_FORK_SPLIT, DST_THP_FRESH, GM, SPLICE_F_MOVE, 0, XFER_THP },
	.reason = "mapped", .nr = 512, .unmapped = 512, .gift_large = 1,
	.split_pmd = 1,
};

/* A pinned THP: copied. */
FIXTURE_VARIANT_ADD(xfer, thp_pinned) {
	.c = { MEM_THP, MOD_PINNED, DST_THP_FRESH, GM, SPLICE_F_MOVE, 0, XFER_THP },
	.reason = "pinned", .nr = 512, .unmapped = 512, .gift_large = 1,
};

/* A THP charged to another memcg: copied. */
FIXTURE_VARIANT_ADD(xfer, thp_other_memcg) {
	.c = { MEM_THP, MOD_OTHER_MEMCG, DST_THP_FRESH, GM, SPLICE_F_MOVE, 0, XFER_THP },
	.reason = "memcg", .nr = 512, .unmapped = 512, .gift_large = 1,
	.needs = "memcg",
};

/*
 * An mlock()ed THP: given (one buffer) but not unmapped, so copied; the
 * giver keeps it mapped, PMD and all.
 */
FIXTURE_VARIANT_ADD(xfer, thp_mlocked_src) {
	.c = { MEM_THP, MOD_MLOCKED, DST_THP_FRESH, GM, SPLICE_F_MOVE, 0, XFER_THP },
	.reason = "mapped", .nr = 512, .keeps = true, .gift_large = 1,
};

/*
 * A THP whose pages 1 and 2 are mapped the other way round (its PMD split
 * for that): its head is still at the 2 MiB boundary, but the range does
 * not map the folio in order, so it is given page by page and copied.
 */
FIXTURE_VARIANT_ADD(xfer, thp_out_of_order_src) {
	.c = { MEM_THP, MOD_OUT_OF_ORDER, DST_THP_FRESH, GM, SPLICE_F_MOVE, 0, XFER_THP },
	.reason = "large", .nr = 512, .unmapped = 512, .split_pmd = 1,
};

/*
 * A THP whose page 1 was zapped and written again (a new small page, in
 * the same VMA; the folio's own page 1 still holds older data): its head
 * is at the 2 MiB boundary, but it is not mapped whole any more, so it is
 * given page by page; the new page moves, the folio's pages are copied
 * (the first copy faults in a THP at the destination, whose PMD the move
 * of page 1 splits: two PMD splits).
 */
FIXTURE_VARIANT_ADD(xfer, thp_hole_refilled_src) {
	.c = { MEM_THP, MOD_HOLE_REFILLED, DST_THP_FRESH, GM, SPLICE_F_MOVE, 0, XFER_THP },
	.reason = "large", .nr = 511, .reason2 = "moved", .nr2 = 1,
	.unmapped = 512, .split_pmd = 2, .second_moved = true,
};

/*
 * One THP named twice in one call: two buffers hold the one folio, and the
 * giver's PMD is cleared once.  The first is copied (the second still
 * holds the folio), the second then moves whole; the reader never maps
 * the one folio twice (frames checks the two halves differ).
 */
FIXTURE_VARIANT_ADD(xfer, thp_twice) {
	.c = { MEM_THP, MOD_DUP, DST_THP_FRESH, GM, SPLICE_F_MOVE, 0, 2 * XFER_THP },
	.reason = "refs", .nr = 512, .reason2 = "moved", .nr2 = 512,
	.unmapped = 512, .gift_large = 2, .folio_thp = 1,
};

/* The huge zero page given: one buffer, zeros, nothing allocated. */
FIXTURE_VARIANT_ADD(xfer, huge_zero_src) {
	.c = { MEM_HUGE_ZERO, MOD_NONE, DST_THP_FRESH, GM, SPLICE_F_MOVE, 0, XFER_THP },
	.reason = "moved_zero", .nr = 512, .unmapped = 512, .gift_large = 1,
	.dst_absent = true,
};

/* 64 KiB mTHP folios: each given as one buffer and moved whole, no split. */
FIXTURE_VARIANT_ADD(xfer, mthp_src) {
	.c = { MEM_MTHP, MOD_NONE, DST_FRESH, GM, SPLICE_F_MOVE, 0, 64 * PS },
	.reason = "moved", .nr = 64, .unmapped = 64, .gift_large = 4,
	.folio_large = 4, .same_frames = true, .needs = "mthp",
};

/*
 * One 64 KiB mTHP mremap()ed across a page-table boundary: the giver's
 * unmap takes two steps and marks it partially mapped (deferred split) in
 * between.  Still given and moved whole, not copied for it.
 */
FIXTURE_VARIANT_ADD(xfer, mthp_straddling_src) {
	.c = { MEM_MTHP, MOD_STRADDLE, DST_FRESH, GM, SPLICE_F_MOVE, 0, 16 * PS },
	.reason = "moved", .nr = 16, .unmapped = 16, .gift_large = 1,
	.folio_large = 1, .same_frames = true, .needs = "mthp",
};

/*
 * A 64 KiB mTHP whose pages 1 and 2 are mapped the other way round: not a
 * whole folio in address order, so given page by page and copied (part of
 * a large folio each); the data arrives in address order.
 */
FIXTURE_VARIANT_ADD(xfer, mthp_out_of_order_src) {
	.c = { MEM_MTHP, MOD_OUT_OF_ORDER, DST_FRESH, GM, SPLICE_F_MOVE, 0, 16 * PS },
	.reason = "large", .nr = 16, .unmapped = 16, .needs = "mthp",
};

/*
 * A whole 64 KiB mTHP onto a destination made of two VMAs, 32 KiB each:
 * one folio cannot be mapped into two VMAs (each has its own anon_vma and
 * offsets), so it is copied; the data lands in both.
 */
FIXTURE_VARIANT_ADD(xfer, mthp_across_dst_vmas) {
	.c = { MEM_MTHP, MOD_NONE, DST_TWO_VMAS, GM, SPLICE_F_MOVE, 0, 16 * PS },
	.reason = "partial", .nr = 16, .unmapped = 16, .gift_large = 1,
	.needs = "mthp",
};

/*
 * The same with a whole THP: the mremap() splits its PMD (PTE-mapped, its
 * tails marked exclusive), the unmap marks it partially mapped; it lands
 * with one PMD, not copied.
 */
FIXTURE_VARIANT_ADD(xfer, thp_straddling_src) {
	.c = { MEM_THP, MOD_STRADDLE, DST_THP_FRESH, GM, SPLICE_F_MOVE, 0, XFER_THP },
	.reason = "moved", .nr = 512, .unmapped = 512, .gift_large = 1,
	.folio_thp = 1, .split_pmd = 1, .same_frames = true,
};

/*
 * 4 KiB pages, a THP and 4 KiB pages in three segments into one: all moved,
 * the THP with one PMD.
 */
FIXTURE_VARIANT_ADD(xfer, mixed_src) {
	.c = { MEM_MIXED, MOD_NONE, DST_THP_FRESH, GM, SPLICE_F_MOVE, 0, XFER_THP + 8 * PS },
	.reason = "moved", .nr = 520, .unmapped = 520, .gift_large = 1,
	.folio_thp = 1,
};

FIXTURE_SETUP(xfer)
{
	char why[160] = "";
	int rc = 0;

	ASSERT_EQ(PS, getpagesize());
	self->mthp = false;
	if (variant->needs && !xfer_kernel_moves() && !move_required())
		SKIP(return, "%s set-up only inside the test VM", variant->needs);
	if (variant->needs && !strcmp(variant->needs, "swap"))
		rc = xfer_swap_on(why, sizeof(why));
	if (variant->needs && !strcmp(variant->needs, "hugetlb"))
		rc = xfer_hugetlb_on(why, sizeof(why));
	if (variant->needs && !strcmp(variant->needs, "mthp")) {
		rc = xfer_mthp_on(why, sizeof(why));
		self->mthp = !rc;
	}
	if (rc) {
		/* The VM provides every set-up: there, not having it fails. */
		ASSERT_FALSE(move_required()) TH_LOG("%s", why);
		SKIP(return, "%s", why);
	}
	ASSERT_EQ(0, xfer_run(&variant->c, &self->res));
	if (self->res.skipped) {
		ASSERT_FALSE(move_required()) TH_LOG("%s", self->res.skip_reason);
		SKIP(return, "%s", self->res.skip_reason);
	}
}

FIXTURE_TEARDOWN(xfer)
{
	if (self->mthp)
		xfer_mthp_off();
}

TEST_F(xfer, bytes)
{
	const struct xfer_result *r = &self->res;
	ssize_t len = variant->c.len;

	ASSERT_EQ(len, r->wret) TH_LOG("writer: %s", strerror(r->werrno));
	if (variant->efault) {
		ASSERT_EQ(-1, r->rret);
		ASSERT_EQ(EFAULT, r->rerrno);
	} else {
		ASSERT_EQ(len, r->rret) TH_LOG("reader: %s", strerror(r->rerrno));
	}
	ASSERT_TRUE(r->data_ok) TH_LOG("%s", r->data_msg);
	ASSERT_TRUE(r->guards_ok) TH_LOG("%s", r->guards_msg);
	/* Holds on every kernel: nothing asked for it to be unmapped. */
	if (variant->keeps)
		ASSERT_TRUE(r->writer_intact);
}

TEST_F(xfer, counters)
{
	const struct xfer_result *r = &self->res;
	const struct xfer_counters *b = &r->before, *a = &r->after;
	const char *all[XFER_NR_FALLBACKS + 2] = { "moved", "moved_zero" };
	static const char *const folio[] = {
		"gift_large", "folio_thp", "folio_large", "folio_split",
		"split_pmd", "split_page",
	};
	const int want_folio[] = {
		variant->gift_large, variant->folio_thp, variant->folio_large,
		variant->folio_split, variant->split_pmd, variant->split_page,
	};

	REQUIRE_MOVE();
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
	for (size_t i = 0; i < sizeof(folio) / sizeof(folio[0]); i++) {
		EXPECT_EQ(want_folio[i], xfer_counter_delta(b, a, folio[i]))
			TH_LOG("counter %s", folio[i]);
	}
	EXPECT_EQ(variant->unmapped, xfer_counter_delta(b, a, "unmapped"));

	/* What the writer sees after the gift. */
	if (variant->unmapped && variant->c.mem != MEM_UNTOUCHED &&
	    variant->c.mem != MEM_HUGE_ZERO)
		EXPECT_TRUE(r->writer_zero);
	if (!variant->unmapped)
		EXPECT_TRUE(r->writer_intact);
	/* Moved-in pages are new to the reader: soft-dirty, as if written. */
	if (variant->same_frames)
		EXPECT_TRUE(r->dst_soft_dirty);
}

TEST_F(xfer, frames)
{
	const struct xfer_result *r = &self->res;
	size_t n = variant->c.len / PS;
	int pm;

	REQUIRE_MOVE();
	pm = pagemap_open();
	ASSERT_LE(0, pm);
	if (!pagemap_pfns_visible(pm))
		SKIP(return, "page frame numbers are visible to root only");
	close(pm);
	ASSERT_TRUE(r->data_ok) TH_LOG("%s", r->data_msg);
	if (n > r->npages)
		n = r->npages;
	for (size_t i = 0; i < n; i++) {
		if (variant->dst_absent) {
			EXPECT_EQ(0, r->dst_pfn[i]) TH_LOG("page %zu allocated", i);
		} else if (variant->kept_frames || (variant->first_kept && !i)) {
			EXPECT_EQ(r->dst_pfn_before[i], r->dst_pfn[i])
				TH_LOG("page %zu replaced", i);
		} else if (variant->second_moved && i == 1) {
			EXPECT_EQ(r->src_pfn[i], r->dst_pfn[i]) TH_LOG("page %zu", i);
		} else if (variant->first_copied && !i) {
			EXPECT_NE(r->src_pfn[i], r->dst_pfn[i]) TH_LOG("page %zu", i);
		} else if (variant->same_frames || variant->first_kept ||
			   variant->first_copied) {
			EXPECT_NE(0, r->src_pfn[i]);
			EXPECT_EQ(r->src_pfn[i], r->dst_pfn[i]) TH_LOG("page %zu", i);
		} else if (r->dst_pfn[i] && variant->c.mod != MOD_DUP) {
			EXPECT_NE(r->src_pfn[i], r->dst_pfn[i]) TH_LOG("page %zu", i);
		}
	}
	/* Named twice: one frame must never be mapped at both places. */
	for (size_t i = 0; variant->c.mod == MOD_DUP && i < n / 2; i++) {
		if (r->dst_pfn[i]) {
			EXPECT_NE(r->dst_pfn[i], r->dst_pfn[i + n / 2])
				TH_LOG("page %zu mapped twice", i);
		}
	}
	if (variant->same_frames && variant->c.dst == DST_FRESH) {
		long long kb = variant->c.len / 1024;

		/* Anonymous memory moves from the writer to the reader. */
		EXPECT_GE(r->writer_rss_drop_kb, kb);
		EXPECT_GE(r->reader_rss_rise_kb, kb);
	}
	if (variant->thp_moves) {
		EXPECT_EQ(2048, r->writer_thp_drop_kb);
		EXPECT_EQ(2048, r->reader_thp_rise_kb);
	}
}

TEST_HARNESS_MAIN
