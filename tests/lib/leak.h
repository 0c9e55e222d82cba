/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Leak checks that can see a leak.  A page held only by a pipe buffer, or
 * by a reference a bug forgot to drop, is mapped by nobody: nr_anon_pages
 * (mapped pages) does not count it.  Two measures do:
 *
 *  - orphans: anonymous pages no page table maps (kpage.h), exact; in the
 *    quiet test VM 0 between tests, so a single leaked page or THP shows;
 *  - MemFree: anything not given back to the page allocator, but with
 *    noise: on the debug kernel KASAN's quarantine keeps freed slab
 *    objects (up to 1/32 of memory, 64 MiB in the 2 GiB VM) before their
 *    slabs can be freed, and the per-CPU page lists hold some pages.
 *    LEAK_FREE_SLACK_KB is the tolerance, measured in the VM (see the
 *    lifecycle tests, which print every delta) with margin.
 */
#ifndef VMSPLICE_TESTS_LEAK_H
#define VMSPLICE_TESTS_LEAK_H

#include "kpage.h"

/* MemFree may drop this much across a leak-free test (debug kernel). */
#define LEAK_FREE_SLACK_KB	(16 * 1024)

/* Orphaned pages another process may hold for a moment. */
#define LEAK_ORPHAN_SLACK	8

struct mem_snapshot {
	long long free_kb;	/* MemFree */
	long long slab_kb;	/* Slab: where KASAN's quarantine shows */
	long long anon;		/* nr_anon_pages (mapped anonymous pages) */
	struct orphans orphans;
};

/*
 * Settle (drop caches, drain the LRU batches, fold per-CPU counters) and
 * measure.  0, or -1 when /proc/kpageflags cannot be read (not root).
 */
int mem_snapshot(struct mem_snapshot *s);

#endif
