// SPDX-License-Identifier: GPL-2.0
/* Raising a pipe's capacity as far as this system lets us. */
#define _GNU_SOURCE
#include "pipesize.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

long vsmi_pipe_max_size(void)
{
	long v = -1;
	FILE *f = fopen("/proc/sys/fs/pipe-max-size", "re");

	if (f) {
		if (fscanf(f, "%ld", &v) != 1)
			v = -1;
		fclose(f);
	}
	return v;
}

size_t vsmi_pipe_grow(int fd, size_t want)
{
	long page = sysconf(_SC_PAGESIZE);
	long max = vsmi_pipe_max_size();
	int got;

	if (!want)
		want = max > 0 ? (size_t)max : 1 << 20;
	/*
	 * Above pipe-max-size, and past the per-user soft limit
	 * (pipe-user-pages-soft), an unprivileged F_SETPIPE_SZ fails with
	 * EPERM: halve until the kernel agrees, keeping what it had.
	 */
	for (size_t sz = want; sz >= (size_t)page; sz /= 2)
		if (fcntl(fd, F_SETPIPE_SZ, (int)(sz > (1U << 30) ? 1U << 30 : sz)) >= 0)
			break;
	got = fcntl(fd, F_GETPIPE_SZ);
	return got > 0 ? (size_t)got : (size_t)page;
}
