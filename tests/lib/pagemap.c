// SPDX-License-Identifier: GPL-2.0
#include "pagemap.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#define PM_PFN_MASK	((1ULL << 55) - 1)
#define PM_PRESENT	(1ULL << 63)

int pagemap_open(void)
{
	return open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
}

uint64_t pagemap_entry(int fd, const void *addr)
{
	uint64_t ent;
	off_t off = (uintptr_t)addr / (uintptr_t)getpagesize() * sizeof(ent);

	if (pread(fd, &ent, sizeof(ent), off) != sizeof(ent))
		return 0;
	return ent;
}

bool pagemap_present(int fd, const void *addr)
{
	return pagemap_entry(fd, addr) & PM_PRESENT;
}

uint64_t pagemap_pfn(int fd, const void *addr)
{
	uint64_t ent = pagemap_entry(fd, addr);

	return (ent & PM_PRESENT) ? ent & PM_PFN_MASK : 0;
}

bool pagemap_pfns_visible(int fd)
{
	size_t ps = getpagesize();
	volatile char *p;
	bool visible;

	p = mmap(NULL, ps, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return false;
	p[0] = 1;
	visible = pagemap_pfn(fd, (const void *)p) != 0;
	munmap((void *)p, ps);
	return visible;
}
