// SPDX-License-Identifier: GPL-2.0
#define _GNU_SOURCE
#include "fuzz_dup.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "dup.h"

void fuzz_dup_begin(struct fuzz_dup *f, uint64_t rnd, unsigned int one_in,
		    void *addr, size_t len)
{
	size_t ps = getpagesize();
	uintptr_t start = (uintptr_t)addr & ~(ps - 1);
	uintptr_t end = ((uintptr_t)addr + len + ps - 1) & ~(ps - 1);

	f->dup = NULL;
	if (!len || !one_in || rnd % one_in)
		return;
	f->len = end - start;
	f->dup = dup_range((void *)start, f->len);
	if (f->dup == MAP_FAILED) {
		f->dup = NULL;
		f->refused++;
		return;
	}
	f->copy = malloc(f->len);
	if (!f->copy) {
		munmap(f->dup, f->len);
		f->dup = NULL;
		return;
	}
	/* Nothing else writes the original meanwhile: it equals the duplicate. */
	memcpy(f->copy, (void *)start, f->len);
	f->made++;
}

int fuzz_dup_end(struct fuzz_dup *f)
{
	int ret = 0;

	if (!f->dup)
		return 0;
	for (size_t off = 0; off < f->len; off++) {
		if (f->dup[off] != f->copy[off]) {
			snprintf(f->why, sizeof(f->why),
				 "MREMAP_DUP duplicate changed at byte %zu of %zu (%#x, was %#x)",
				 off, f->len, f->dup[off] & 0xff, f->copy[off] & 0xff);
			ret = -1;
			break;
		}
	}
	munmap(f->dup, f->len);
	free(f->copy);
	f->dup = NULL;
	f->copy = NULL;
	return ret;
}
