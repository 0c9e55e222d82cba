/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Transparent huge pages for the tests: 2 MiB-aligned MADV_HUGEPAGE
 * regions, mTHP sizes switched on for a test and restored after it, and
 * whether a range really is backed by one large folio (page frames and
 * /proc/kpageflags, root only).
 *
 * Settings under THP_DIR are changed with setting.h.
 */
#ifndef VMSPLICE_TESTS_THP_H
#define VMSPLICE_TESTS_THP_H

#include <stdbool.h>
#include <stddef.h>

#ifndef MADV_COLLAPSE
#define MADV_COLLAPSE	25	/* Linux 6.1; glibc 2.36 lacks it */
#endif

#define THP_SIZE	(2UL << 20)
#define THP_DIR		"/sys/kernel/mm/transparent_hugepage"
#define MTHP_64K	THP_DIR "/hugepages-64kB/enabled"
#define MTHP_64K_SIZE	(64UL << 10)	/* the folios MTHP_64K switches on */

/*
 * @len bytes of private anonymous memory aligned to @align (a power of
 * two, at least the page size), madvise()d with @advice (MADV_HUGEPAGE,
 * MADV_NOHUGEPAGE, or 0 for none).  Unmap with munmap(p, len).  NULL on
 * failure.
 */
void *map_aligned(size_t len, size_t align, int advice);

/* A 2 MiB-aligned MADV_HUGEPAGE region (map_aligned(len, THP_SIZE, ...)). */
void *thp_map(size_t len);

/*
 * Whether [@addr, @addr + @size) is backed by exactly one large folio of
 * @size bytes: its first page the folio's head, frames consecutive.
 * Needs root (page frames).  @pm: an open /proc/self/pagemap.
 */
bool backed_by_folio(int pm, const void *addr, size_t size);

/* Touch every page of the range for writing (fault it in). */
void touch_pages(void *addr, size_t len);

#endif
