// SPDX-License-Identifier: GPL-2.0
#define _GNU_SOURCE
#include "thp.h"

#include <stdint.h>
#include <sys/mman.h>
#include <unistd.h>

#include "kpage.h"
#include "pagemap.h"

void *map_aligned(size_t len, size_t align, int advice)
{
	char *raw = mmap(NULL, len + align, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	uintptr_t a;

	if (raw == MAP_FAILED)
		return NULL;
	a = ((uintptr_t)raw + align - 1) & ~(align - 1);
	/* Trim both ends, so the VMA is exactly the aligned range. */
	if (a > (uintptr_t)raw)
		munmap(raw, a - (uintptr_t)raw);
	munmap((void *)(a + len), (uintptr_t)raw + align - a);
	if (advice && madvise((void *)a, len, advice)) {
		munmap((void *)a, len);
		return NULL;
	}
	return (void *)a;
}

void *thp_map(size_t len)
{
	return map_aligned(len, THP_SIZE, MADV_HUGEPAGE);
}

bool backed_by_folio(int pm, const void *addr, size_t size)
{
	const char *p = addr;
	uint64_t head = pagemap_pfn(pm, p);
	size_t ps = getpagesize();

	if (!head || !(kpage_flags(head) & KPF_HEAD_) ||
	    !(kpage_flags(head) & KPF_THP_))
		return false;
	for (size_t off = ps; off < size; off += ps)
		if (pagemap_pfn(pm, p + off) != head + off / ps)
			return false;
	/* The folio ends here: the next frame is not one of its tails. */
	return !(kpage_flags(head + size / ps) & KPF_TAIL_);
}

void touch_pages(void *addr, size_t len)
{
	size_t ps = getpagesize();

	for (size_t off = 0; off < len; off += ps)
		((volatile char *)addr)[off] = 1;
}
