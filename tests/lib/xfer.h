/* SPDX-License-Identifier: GPL-2.0 */
/*
 * One vmsplice hand-over between two processes, described by a table row:
 * a forked writer prepares its memory one way and vmsplices it into a pipe,
 * the parent prepares its destination another way and vmsplices it out.
 * Every observation a test may assert on is collected in struct xfer_result.
 */
#ifndef VMSPLICE_TESTS_XFER_H
#define VMSPLICE_TESTS_XFER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "feature.h"

#define XFER_MAX_PAGES	64

/* How the writer gets the memory it gifts. */
enum xfer_src {
	SRC_ANON,		/* private anonymous, written */
	SRC_UNTOUCHED,		/* private anonymous, never touched: zero page */
	SRC_FORK_SHARED,	/* written, then shared COW with a child */
	SRC_PINNED,		/* written, pinned as an io_uring fixed buffer */
	SRC_THP,		/* written, backed by a transparent huge page */
	SRC_DUP,		/* one written page, vmspliced twice */
	SRC_FILE,		/* splice() from a tmpfs file, not vmsplice */
	SRC_OTHER_MEMCG,	/* written by a writer in another memory cgroup */
	SRC_MEMFD_SHARED,	/* written, MAP_SHARED memfd */
	SRC_LAZYFREE,		/* written, then MADV_FREE (not written since) */
	SRC_SWAPCACHE,		/* paged out, swap entry shared with a child */
	SRC_HUGETLB,		/* written, a private hugetlb page */
};

/* Where the reader wants the data. */
enum xfer_dst {
	DST_FRESH,		/* new private anonymous mapping */
	DST_POPULATED,		/* private anonymous, already written */
	DST_ZEROPAGE,		/* private anonymous, read (zero page mapped) */
	DST_UNALIGNED,		/* fresh, but at an address not page aligned */
	DST_SHARED,		/* MAP_SHARED memfd */
	DST_MLOCKED,		/* mlock()ed private anonymous */
	DST_UFFD,		/* registered with userfaultfd (populated) */
	DST_READONLY,		/* PROT_READ: the read must fail, nothing lost */
	DST_PKEY_RO,		/* writable VMA, protection key denies writes */
	DST_HUGETLB,		/* a private hugetlb mapping */
	DST_THP,		/* populated, PMD-mapped transparent huge page */
};

/* Counters vmsplice moves report, read before and after xfer_run(). */
struct xfer_counters {
	long long moved, moved_zero, unmapped;
	long long gift_large, thp, large, split;	/* folios */
	long long fallback[16];
};

struct xfer_case {
	enum xfer_src src;
	enum xfer_dst dst;
	unsigned int wflags;	/* writer's vmsplice flags */
	unsigned int rflags;	/* reader's vmsplice flags */
	size_t src_off;		/* offset of the data in the writer's memory */
	size_t len;		/* bytes handed over */
	bool tee;		/* tee() the pipe into a second one first */
};

struct xfer_result {
	bool skipped;		/* the setup is not possible here */
	char skip_reason[128];
	ssize_t wret;		/* writer's vmsplice return */
	int werrno;
	ssize_t rret;		/* reader's vmsplice return */
	int rerrno;
	bool data_ok;		/* reader got exactly the bytes sent */
	char data_msg[128];
	bool writer_zero;	/* writer reads zeros after the gift */
	bool writer_intact;	/* writer still reads its own data */
	bool dst_soft_dirty;	/* every destination page soft-dirty after */
	size_t npages;
	uint64_t src_pfn[XFER_MAX_PAGES];	/* writer's frames before */
	uint64_t dst_pfn[XFER_MAX_PAGES];	/* reader's frames after */
	long long writer_rss_drop_kb;	/* RssAnon before - after gift */
	long long reader_rss_rise_kb;	/* RssAnon after - before read */
	struct xfer_counters before, after;	/* around the whole run */
};

/*
 * Make sure swap is on (a zram device, set up once), for SRC_SWAPCACHE.
 * Returns 0, or -1 with the reason in @why.
 */
int xfer_swap_on(char *why, size_t why_len);

/* Reserve a few 2 MiB hugetlb pages; 0, or -1 with the reason in @why. */
int xfer_hugetlb_on(char *why, size_t why_len);

/* Run one hand-over; 0 on success (see res->skipped), -1 on setup error. */
int xfer_run(const struct xfer_case *c, struct xfer_result *res);


/* Names of the fallback reasons, in /proc/vmstat order. */
extern const char *const xfer_fallback_names[];
#define XFER_NR_FALLBACKS	15

/* Whether this kernel moves pages (see feature.h). */
bool xfer_kernel_moves(void);
void xfer_counters_read(struct xfer_counters *c);
/* @after - @before of the counter named @name ("moved", "moved_zero",
 * "unmapped", "gift_large", "folio_thp", "folio_large", "folio_split" (those
 * four count folios) or a fallback reason).
 */
long long xfer_counter_delta(const struct xfer_counters *before,
			     const struct xfer_counters *after,
			     const char *name);

#endif
