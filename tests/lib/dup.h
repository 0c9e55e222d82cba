/* SPDX-License-Identifier: GPL-2.0 */
/* mremap(MREMAP_DUP) for the tests: the call, detection, per-range smaps. */
#ifndef VMSPLICE_TESTS_DUP_H
#define VMSPLICE_TESTS_DUP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "feature.h"

#ifndef MREMAP_DUP
#define MREMAP_DUP	8
#endif

#define DUP_NO_KERNEL_MSG	"kernel without MREMAP_DUP"

/* The mremap() system call (not glibc's wrapper): address or MAP_FAILED. */
void *dup_mremap(void *addr, size_t old_len, size_t new_len,
		 unsigned long flags, void *to);

/* mremap(@addr, @len, @len, MREMAP_MAYMOVE | MREMAP_DUP): address or MAP_FAILED. */
void *dup_range(void *addr, size_t len);

/* The same with MREMAP_FIXED at @to. */
void *dup_range_fixed(void *addr, size_t len, void *to);

/*
 * Whether the running kernel has MREMAP_DUP: kernels without it reject the
 * unknown flag with EINVAL.  Probes one page of its own.
 */
bool dup_supported(void);

/*
 * In a kselftest TEST: SKIP where the kernel has no MREMAP_DUP, FAIL where
 * the run requires the change (VMSPLICE_REQUIRE_MOVE=1: inside the test
 * VM on the patched kernel), as REQUIRE_MOVE() does for page moves.
 */
#define REQUIRE_DUP()	REQUIRE_FEATURE(dup_supported(), DUP_NO_KERNEL_MSG)

/*
 * Field @name (kB) of the /proc/self/smaps entry of the VMA holding
 * @start, or -1.
 */
long long smaps_vma_kb(const void *start, const char *name);

/* Page flags from /proc/self/pagemap bits 55 (soft-dirty), 57 (uffd-wp), 62 (swap). */
#define PM_SOFT_DIRTY	(1ULL << 55)
#define PM_UFFD_WP	(1ULL << 57)
#define PM_SWAP		(1ULL << 62)

/* Write @s into the sysfs/proc file @path, saving the old first word in @old. */
int sysfs_swap(const char *path, const char *s, char *old, size_t old_len);

/* Pin @len bytes at @addr as an io_uring fixed buffer: the ring fd, or -1. */
int dup_pin_io_uring(void *addr, size_t len, char *why, size_t why_len);

#endif
