/* SPDX-License-Identifier: GPL-2.0 */
/*
 * One vmsplice hand-over between two processes, described by a table row:
 * a forked writer gets memory one way (enum xfer_mem), prepares it another
 * way (enum xfer_mod) and vmsplices it into a pipe; the parent prepares its
 * destination (enum xfer_dst) and vmsplices it out.  Every observation a
 * test may assert on is collected in struct xfer_result.
 */
#ifndef VMSPLICE_TESTS_XFER_H
#define VMSPLICE_TESTS_XFER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "feature.h"

#define XFER_MAX_PAGES	2048		/* 8 MiB: room for a THP and more */
#define XFER_THP	(2UL << 20)

/* How the writer gets the memory it gives. */
enum xfer_mem {
	MEM_ANON,		/* private anonymous 4 KiB pages, written */
	MEM_UNTOUCHED,		/* private anonymous, never touched: zero page */
	MEM_THP,		/* 2 MiB aligned, MADV_HUGEPAGE, written */
	MEM_MTHP,		/* 64 KiB mTHP folios (hugepages-64kB enabled) */
	MEM_HUGE_ZERO,		/* MADV_HUGEPAGE, only read: the huge zero page */
	MEM_MIXED,		/* 4 KiB pages, a THP, 4 KiB pages: 3 segments */
	MEM_MEMFD_SHARED,	/* a MAP_SHARED memfd, written */
	MEM_HUGETLB,		/* a private hugetlb page, written */
	MEM_FILE,		/* splice() from a tmpfs file, not vmsplice */
	MEM_DROPPABLE,		/* MAP_DROPPABLE anonymous, written */
};

/* What else is done to that memory before it is given. */
enum xfer_mod {
	MOD_NONE,
	MOD_FORK_SHARED,	/* a child shares it copy-on-write */
	MOD_FORK_SPLIT,		/* ... and splits its own PMD of it (a THP) */
	MOD_PINNED,		/* pinned as an io_uring fixed buffer */
	MOD_AIO_PINNED,		/* an O_DIRECT read into it is in flight */
	MOD_OTHER_MEMCG,	/* written by a writer in another memcg */
	MOD_LAZYFREE,		/* MADV_FREE, not written since */
	MOD_SWAPCACHE,		/* paged out, swap entry shared with a child */
	MOD_SWAPIN,		/* paged out, read back into the swap cache */
	MOD_KSM,		/* merged by KSM with a page since unmapped */
	MOD_MLOCKED,		/* mlock()ed */
	MOD_SEALED,		/* read-only and mseal()ed */
	MOD_UFFD,		/* registered with userfaultfd */
	MOD_NUMA,		/* on node 0; the reader binds node 1 */
	MOD_NUMA_CPUSET,	/* on node 0; the reader's cpuset has node 1 */
	MOD_HWPOISON,		/* the first page poisoned while in the pipe */
	MOD_DUP,		/* one page, named twice in one call */
	MOD_STRADDLE,		/* mremap()ed across a page-table boundary */
	MOD_OUT_OF_ORDER,	/* pages 1 and 2 swapped (mremap), refilled */
	MOD_HOLE_REFILLED,	/* page 1 scribbled, zapped, refilled: a new page */
};

/* Where the reader wants the data. */
enum xfer_dst {
	DST_FRESH,		/* new private anonymous mapping */
	DST_POPULATED,		/* private anonymous, already written */
	DST_ZEROPAGE,		/* private anonymous, read (zero page mapped) */
	DST_UNALIGNED,		/* fresh, at an address not page aligned */
	DST_SEGMENTS,		/* two half-page segments, apart */
	DST_SHARED,		/* MAP_SHARED memfd */
	DST_PRIVATE_FILE,	/* MAP_PRIVATE of a tmpfs file */
	DST_DROPPABLE,		/* MAP_DROPPABLE */
	DST_MLOCKED,		/* mlock()ed private anonymous */
	DST_UFFD,		/* registered with userfaultfd (populated) */
	DST_READONLY,		/* PROT_READ: the read must fail, nothing lost */
	DST_PKEY_RO,		/* writable VMA, protection key denies writes */
	DST_HUGETLB,		/* a private hugetlb mapping */
	DST_PINNED,		/* populated, pinned as an io_uring buffer */
	DST_REFERENCED,		/* populated, its first page also in the pipe */
	DST_THP,		/* populated, PMD-mapped THP */
	DST_THP_PINNED,		/* the same, pinned */
	DST_THP_FRESH,		/* 2 MiB aligned, MADV_HUGEPAGE, untouched */
	DST_THP_MISALIGNED,	/* MADV_HUGEPAGE, 4 KiB past a 2 MiB boundary */
	DST_THP_ZERO,		/* 2 MiB aligned, huge zero page mapped */
	DST_PTE_TABLE,		/* 2 MiB aligned, MADV_HUGEPAGE, empty page table */
	DST_NOHUGEPAGE,		/* 2 MiB aligned, MADV_NOHUGEPAGE */
	DST_THP_CUT,		/* two 1 MiB segments, apart */
	DST_TWO_VMAS,		/* fresh, its second half a VMA of its own */
	DST_SWAPPED,		/* populated, then paged out (swap entries) */
};

/* Counters vmsplice moves report, read before and after xfer_run(). */
struct xfer_counters {
	long long moved, moved_zero, unmapped;
	long long gift_large, thp, large, split;	/* folios */
	long long split_pmd, split_page;		/* thp_split_* */
	long long fallback[16];
};

struct xfer_case {
	enum xfer_mem mem;
	enum xfer_mod mod;
	enum xfer_dst dst;
	unsigned int wflags;	/* writer's vmsplice flags */
	unsigned int rflags;	/* reader's vmsplice flags */
	size_t src_off;		/* offset of the data in the writer's memory */
	size_t len;		/* bytes handed over */
	bool tee;		/* tee() the pipe into a second one first */
};

struct xfer_result {
	bool skipped;		/* the setup is not possible here */
	char skip_reason[160];
	ssize_t wret;		/* writer's vmsplice return */
	int werrno;
	ssize_t rret;		/* reader's vmsplice return */
	int rerrno;
	bool data_ok;		/* reader got exactly the bytes sent */
	char data_msg[160];
	bool guards_ok;		/* bytes just outside the range untouched */
	char guards_msg[160];
	bool writer_zero;	/* writer reads zeros after the gift */
	bool writer_intact;	/* writer still reads its own data */
	bool dst_soft_dirty;	/* every destination page soft-dirty after */
	size_t npages;
	uint64_t src_pfn[XFER_MAX_PAGES];	/* writer's frames before */
	uint64_t dst_pfn[XFER_MAX_PAGES];	/* reader's frames after */
	uint64_t dst_pfn_before[XFER_MAX_PAGES];
	long long writer_rss_drop_kb;	/* anon kB mapped before - after gift */
	long long reader_rss_rise_kb;	/* anon kB mapped after - before read */
	long long writer_thp_drop_kb;	/* AnonHugePages before - after */
	long long reader_thp_rise_kb;	/* AnonHugePages after - before */
	struct xfer_counters before, after;	/* around the whole run */
};

/*
 * Set-ups the VM provides and a host may not: swap (a zram device, set up
 * once), hugetlb pages, 64 KiB mTHP.  0, or -1 with the reason in @why.
 */
int xfer_swap_on(char *why, size_t why_len);
int xfer_hugetlb_on(char *why, size_t why_len);
int xfer_mthp_on(char *why, size_t why_len);
void xfer_mthp_off(void);

/* Run one hand-over; 0 on success (see res->skipped), -1 on setup error. */
int xfer_run(const struct xfer_case *c, struct xfer_result *res);

/* Names of the fallback reasons, in /proc/vmstat order. */
extern const char *const xfer_fallback_names[];
#define XFER_NR_FALLBACKS	15

/* Whether this kernel moves pages (see feature.h). */
bool xfer_kernel_moves(void);
void xfer_counters_read(struct xfer_counters *c);
/*
 * @after - @before of the counter named @name: "moved", "moved_zero",
 * "unmapped", a fallback reason, "gift_large", "folio_thp", "folio_large",
 * "folio_split" (those four count folios), "split_pmd", "split_page".
 */
long long xfer_counter_delta(const struct xfer_counters *before,
			     const struct xfer_counters *after,
			     const char *name);

#endif
