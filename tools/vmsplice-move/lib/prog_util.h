/* SPDX-License-Identifier: GPL-2.0 */
/* Helpers shared by the demo and the benchmark programs (not library API). */
#ifndef VMSPLICE_MOVE_PROG_UTIL_H
#define VMSPLICE_MOVE_PROG_UTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "vmsplice_move.h"

/* Monotonic seconds. */
static inline double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* 4 KiB-page memory that can receive moved pages, or exit. */
static inline void *region(size_t len)
{
	/* Small pages: whole-THP moves are not part of this change yet. */
	void *p = vsm_alloc(len, false);

	if (!p) {
		perror("mmap");
		exit(1);
	}
	return p;
}

#endif
