// SPDX-License-Identifier: GPL-2.0
#define _GNU_SOURCE
#include "kpage.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vmstat.h"

#define CHUNK	65536		/* page frames per read */

unsigned long long kpage_flags(unsigned long long pfn)
{
	uint64_t f = 0;
	int fd = open("/proc/kpageflags", O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return 0;
	if (pread(fd, &f, sizeof(f), pfn * sizeof(f)) != sizeof(f))
		f = 0;
	close(fd);
	return f;
}

int kpage_orphans(struct orphans *o)
{
	/*
	 * Slab and page-table pages reuse folio->mapping for their own
	 * pointers, which can look anonymous: not user memory.
	 */
	const uint64_t not = KPF_MMAP_ | KPF_SWAPCACHE_ | KPF_BUDDY_ |
			     KPF_ZERO_PAGE_ | KPF_HUGE_ | KPF_SLAB_ |
			     KPF_PGTABLE_;
	uint64_t *buf = malloc(CHUNK * sizeof(*buf));
	int fd = open("/proc/kpageflags", O_RDONLY | O_CLOEXEC);
	/* VMSPLICE_KPAGE_DEBUG=N: print the first N orphans found. */
	long dump = getenv("VMSPLICE_KPAGE_DEBUG") ?
		    strtol(getenv("VMSPLICE_KPAGE_DEBUG"), NULL, 0) : 0;
	bool in_thp = false;	/* the tails of an orphan head follow it */
	long tails = 0;
	off_t off = 0;

	memset(o, 0, sizeof(*o));
	if (fd < 0 || !buf) {
		int e = fd < 0 ? errno : ENOMEM;

		if (fd >= 0)
			close(fd);
		free(buf);
		errno = e;
		return -1;
	}
	/* Drains every CPU's LRU batches (lru_add_drain_all()). */
	proc_write("/proc/sys/vm/drop_caches", "1");
	for (;;) {
		ssize_t n = pread(fd, buf, CHUNK * sizeof(*buf), off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		for (size_t i = 0; i < (size_t)n / sizeof(*buf); i++) {
			uint64_t f = buf[i];

			if (!(f & KPF_TAIL_))
				in_thp = false;
			if (!(f & KPF_ANON_) || (f & not))
				continue;
			if (o->pages++ < dump)
				fprintf(stderr, "# orphan pfn %#llx flags %#llx\n",
					(unsigned long long)(off / sizeof(*buf) + i),
					(unsigned long long)f);
			if (f & KPF_HEAD_) {
				o->large++;
				in_thp = true;
				tails = 0;
			} else if ((f & KPF_TAIL_) && in_thp && ++tails == 511) {
				o->thp++;	/* a head and 511 tails: 2 MiB */
			}
		}
		off += n;
	}
	close(fd);
	free(buf);
	return 0;
}
