// SPDX-License-Identifier: GPL-2.0
#define _GNU_SOURCE
#include "snapshot.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

/*
 * The system call, not glibc's mremap(): glibc 2.36 fails every flag above
 * MREMAP_DONTUNMAP with EINVAL before the kernel sees it.
 */
static void *sys_mremap_dup(void *addr, size_t len)
{
	return (void *)syscall(SYS_mremap, addr, len, len,
			       MREMAP_MAYMOVE | MREMAP_DUP, NULL);
}

bool vsm_snapshot_cow_supported(void)
{
	size_t ps = sysconf(_SC_PAGESIZE);
	char *p = mmap(NULL, ps, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	void *d;

	if (p == MAP_FAILED)
		return false;
	p[0] = 1;
	/* Kernels without MREMAP_DUP reject the unknown flag: EINVAL. */
	d = sys_mremap_dup(p, ps);
	if (d != MAP_FAILED)
		munmap(d, ps);
	munmap(p, ps);
	return d != MAP_FAILED;
}

static int snapshot_copy(void *addr, size_t len, struct vsm_snapshot *snap)
{
	void *c = mmap(NULL, len, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (c == MAP_FAILED)
		return -1;
	memcpy(c, addr, len);
	snap->addr = c;
	snap->how = VSM_SNAP_COPY;
	return 0;
}

int vsm_snapshot(void *addr, size_t len, unsigned int flags,
		 struct vsm_snapshot *snap)
{
	size_t ps = sysconf(_SC_PAGESIZE);
	int err;
	void *d;

	memset(snap, 0, sizeof(*snap));
	if (!len || (uintptr_t)addr % ps || len > SIZE_MAX - ps ||
	    flags & ~(VSM_SNAP_NO_COPY | VSM_SNAP_VERBOSE)) {
		errno = EINVAL;
		return -1;
	}
	len = (len + ps - 1) / ps * ps;
	snap->len = len;
	d = sys_mremap_dup(addr, len);
	if (d != MAP_FAILED) {
		snap->addr = d;
		snap->how = VSM_SNAP_COW;
		return 0;
	}
	err = errno;
	/* Only a refusal of the flag or of the mapping is worth a copy. */
	if (err != EINVAL)
		return -1;
	snprintf(snap->reason, sizeof(snap->reason), "%s",
		 vsm_snapshot_cow_supported() ?
		 "the kernel refuses MREMAP_DUP for this mapping" :
		 "kernel without mremap(MREMAP_DUP)");
	if (flags & VSM_SNAP_NO_COPY) {
		errno = EOPNOTSUPP;
		return -1;
	}
	if (snapshot_copy(addr, len, snap))
		return -1;
	if (flags & VSM_SNAP_VERBOSE)
		fprintf(stderr, "vsm_snapshot: copied %zu bytes: %s\n", len,
			snap->reason);
	return 0;
}

int vsm_snapshot_free(struct vsm_snapshot *snap)
{
	if (!snap->addr)
		return 0;
	if (munmap(snap->addr, snap->len))
		return -1;
	snap->addr = NULL;
	return 0;
}
