// SPDX-License-Identifier: GPL-2.0
#define _GNU_SOURCE
#include "mem.h"

#include <sys/mman.h>
#include <sys/uio.h>
#include <unistd.h>

static void *map(size_t len, int flags)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
		       flags | MAP_ANONYMOUS, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

void *map_anon(size_t len)
{
	return map(len, MAP_PRIVATE);
}

void *map_anon_shared(size_t len)
{
	return map(len, MAP_SHARED);
}

bool copy_out(void *to, const void *from, size_t len)
{
	struct iovec local = { to, len }, remote = { (void *)from, len };

	return process_vm_readv(getpid(), &local, 1, &remote, 1, 0) ==
	       (ssize_t)len;
}
