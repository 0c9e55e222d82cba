// SPDX-License-Identifier: GPL-2.0
#include "leak.h"

#include "vmstat.h"

int mem_snapshot(struct mem_snapshot *s)
{
	int ret;

	proc_write("/proc/sys/vm/drop_caches", "3");	/* best effort */
	/*
	 * Compaction drains the per-CPU free lists too, which otherwise
	 * hold tens of MiB that MemFree does not count.
	 */
	proc_write("/proc/sys/vm/compact_memory", "1");
	ret = kpage_orphans(&s->orphans);
	counters_settle();
	s->free_kb = meminfo_kb("MemFree");
	s->slab_kb = meminfo_kb("Slab");
	s->anon = vmstat_get("nr_anon_pages");
	return ret;
}
