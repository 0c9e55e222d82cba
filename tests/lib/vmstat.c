// SPDX-License-Identifier: GPL-2.0
#include "vmstat.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* Find "@name<sep>value" in @path; -1 when absent. */
static long long field_of(const char *path, const char *name, char sep)
{
	size_t n = strlen(name);
	long long val = -1;
	char line[256];
	FILE *f;

	f = fopen(path, "re");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, name, n) == 0 && line[n] == sep) {
			if (sscanf(line + n + 1, "%lld", &val) != 1)
				val = -1;
			break;
		}
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
