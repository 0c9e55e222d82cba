/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Pages as the kernel accounts them, from /proc/kpageflags (root only):
 * anonymous pages that no page table maps any more.
 *
 * A page given into a pipe and never read, or a reference leaked after a
 * move, is exactly that: still anonymous (folio->mapping keeps the anon
 * bit until the page is freed), not mapped, not in the swap cache.
 * nr_anon_pages counts mapped pages only and cannot see it; MemFree sees
 * it only above the noise of the allocator and KASAN's quarantine.  In
 * the quiet test VM this count is 0 between tests, so a single leaked
 * page, or one leaked 2 MiB folio, shows.
 */
#ifndef VMSPLICE_TESTS_KPAGE_H
#define VMSPLICE_TESTS_KPAGE_H

#include <stdbool.h>

struct orphans {
	long pages;		/* base pages, large folios' pages included */
	long large;		/* of which large folios (THP, mTHP): heads */
	long thp;		/* of which PMD-sized (2 MiB) folios */
};

/*
 * Count the unmapped anonymous pages of the whole system, after draining
 * the per-CPU LRU batches (whose references keep freshly unmapped pages
 * alive for a while).  0, or -1 with errno set (no /proc/kpageflags, not
 * root).
 */
int kpage_orphans(struct orphans *o);

/* The /proc/kpageflags word of page frame @pfn, or 0 on error. */
unsigned long long kpage_flags(unsigned long long pfn);

/*
 * Bits of include/uapi/linux/kernel-page-flags.h.  (KPF_KSM, 21, is not
 * used: 6.12 sets it for every anonymous page.)
 */
#define KPF_BIT(n)	(1ULL << (n))
#define KPF_SLAB_	KPF_BIT(7)
#define KPF_BUDDY_	KPF_BIT(10)
#define KPF_MMAP_	KPF_BIT(11)
#define KPF_ANON_	KPF_BIT(12)
#define KPF_SWAPCACHE_	KPF_BIT(13)
#define KPF_HEAD_	KPF_BIT(15)
#define KPF_TAIL_	KPF_BIT(16)
#define KPF_HUGE_	KPF_BIT(17)
#define KPF_THP_	KPF_BIT(22)
#define KPF_ZERO_PAGE_	KPF_BIT(24)
#define KPF_PGTABLE_	KPF_BIT(26)

#endif
