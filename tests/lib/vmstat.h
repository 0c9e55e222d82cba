/* SPDX-License-Identifier: GPL-2.0 */
/* Kernel counters: /proc/vmstat and /proc/meminfo. */
#ifndef VMSPLICE_TESTS_VMSTAT_H
#define VMSPLICE_TESTS_VMSTAT_H

/* Value of /proc/vmstat field @name, or -1 when the kernel has no such field. */
long long vmstat_get(const char *name);

/* Value of /proc/meminfo field @name in kB, or -1 when absent. */
long long meminfo_kb(const char *name);

/* Value of /proc/self/status field @name in kB (e.g. "RssAnon"), or -1. */
long long self_status_kb(const char *name);

/* Value of /proc/self/smaps_rollup field @name in kB, or -1. */
long long self_smaps_kb(const char *name);

/* Write @s to the /proc or /sys file @path: 0, or -1 with errno set. */
int proc_write(const char *path, const char *s);

/* Fold per-CPU counters so that global ones can be compared. */
void counters_settle(void);

#endif
