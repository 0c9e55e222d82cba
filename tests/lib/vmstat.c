// SPDX-License-Identifier: GPL-2.0
#include "vmstat.h"

#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* Whether @line is "@name<sep>value"; the value in *@val (-1 if none). */
static bool line_field(const char *line, const char *name, char sep,
		       long long *val)
{
	size_t n = strlen(name);

	if (strncmp(line, name, n) || line[n] != sep)
		return false;
	if (sscanf(line + n + 1, "%lld", val) != 1)
		*val = -1;
	return true;
}

/* Find "@name<sep>value" in @path; -1 when absent. */
static long long field_of(const char *path, const char *name, char sep)
{
	long long val = -1;
	char line[256];
	FILE *f;

	f = fopen(path, "re");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		if (line_field(line, name, sep, &val))
			break;
	}
	fclose(f);
	return val;
}

long long vmstat_get(const char *name)
{
	return field_of("/proc/vmstat", name, ' ');
}

long long meminfo_kb(const char *name)
{
	return field_of("/proc/meminfo", name, ':');
}

long long self_status_kb(const char *name)
{
	return field_of("/proc/self/status", name, ':');
}

long long self_smaps_kb(const char *name)
{
	return field_of("/proc/self/smaps_rollup", name, ':');
}

/* Whether the VMA [@start, @end) overlaps one of @r[0..@n). */
static bool vma_overlaps(unsigned long start, unsigned long end,
			 const struct iovec *r, int n)
{
	for (int i = 0; i < n; i++) {
		unsigned long lo = (unsigned long)r[i].iov_base;

		if (r[i].iov_len && start < lo + r[i].iov_len && lo < end)
			return true;
	}
	return false;
}

long long smaps_ranges_kb(const struct iovec *r, int n, const char *name)
{
	bool counting = false;
	long long sum = 0, val;
	unsigned long start, end;
	char line[512];
	FILE *f;

	f = fopen("/proc/self/smaps", "re");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		/* A VMA's first line: "start-end perms offset ...". */
		if (sscanf(line, "%lx-%lx ", &start, &end) == 2) {
			counting = vma_overlaps(start, end, r, n);
			continue;
		}
		if (counting && line_field(line, name, ':', &val) && val >= 0)
			sum += val;
	}
	fclose(f);
	return sum;
}

int proc_write(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = write(fd, s, strlen(s));
	close(fd);
	return n == (ssize_t)strlen(s) ? 0 : -1;
}

void counters_settle(void)
{
	proc_write("/proc/sys/vm/stat_refresh", "1");	/* best effort */
}
