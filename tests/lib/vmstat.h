/* SPDX-License-Identifier: GPL-2.0 */
/* Kernel counters: /proc/vmstat and /proc/meminfo. */
#ifndef VMSPLICE_TESTS_VMSTAT_H
#define VMSPLICE_TESTS_VMSTAT_H

#include <sys/uio.h>

/* Value of /proc/vmstat field @name, or -1 when the kernel has no such field. */
long long vmstat_get(const char *name);

/* Value of /proc/meminfo field @name in kB, or -1 when absent. */
long long meminfo_kb(const char *name);

/* Value of /proc/self/status field @name in kB (e.g. "RssAnon"), or -1. */
long long self_status_kb(const char *name);

/* Value of /proc/self/smaps_rollup field @name in kB, or -1. */
long long self_smaps_kb(const char *name);

/*
 * Sum of /proc/self/smaps field @name in kB over the VMAs that overlap one
 * of the @n ranges @r (each VMA once), or -1.  Unlike smaps_rollup, blind
 * to the rest of the process: a stack page first touched between two
 * readings is not counted.
 */
long long smaps_ranges_kb(const struct iovec *r, int n, const char *name);

/* Write @s to the /proc or /sys file @path: 0, or -1 with errno set. */
int proc_write(const char *path, const char *s);

/* Fold per-CPU counters so that global ones can be compared. */
void counters_settle(void);

#endif
