// SPDX-License-Identifier: GPL-2.0
/* The kernel's vmsplice move counters, read generically from /proc/vmstat. */
#define _GNU_SOURCE
#include "vmsplice_move.h"

#include <stdio.h>
#include <string.h>

#define FALLBACK	"vmsplice_move_fallback_"

static void add_reason(struct vsm_stats *s, const char *name, long long v)
{
	for (int i = 0; i < s->nr_reasons; i++)
		if (!strcmp(s->reason[i].name, name)) {
			s->reason[i].pages += v;
			return;
		}
	if (s->nr_reasons == VSM_MAX_REASONS)
		return;
	snprintf(s->reason[s->nr_reasons].name, VSM_REASON_LEN, "%s", name);
	s->reason[s->nr_reasons++].pages = v;
}

int vsm_stats_read(struct vsm_stats *s)
{
	char name[96];
	long long val;
	FILE *f;

	memset(s, 0, sizeof(*s));
	f = fopen("/proc/vmstat", "re");
	if (!f)
		return -1;
	while (fscanf(f, "%95s %lld", name, &val) == 2) {
		if (strncmp(name, "vmsplice_", 9))
			continue;
		s->supported = true;
		if (!strcmp(name, "vmsplice_gift_unmapped"))
			s->unmapped = val;
		else if (!strcmp(name, "vmsplice_move_pages"))
			s->moved = val;
		else if (!strcmp(name, "vmsplice_move_zero_pages"))
			s->moved_zero = val;
		else if (!strcmp(name, "vmsplice_move_thp"))
			s->thp = val;
		else if (!strcmp(name, "vmsplice_move_large"))
			s->large = val;
		else if (!strncmp(name, FALLBACK, strlen(FALLBACK))) {
			add_reason(s, name + strlen(FALLBACK), val);
			s->copied += val;
		}
	}
	fclose(f);
	return 0;
}

static long long reason_of(const struct vsm_stats *s, const char *name)
{
	for (int i = 0; i < s->nr_reasons; i++)
		if (!strcmp(s->reason[i].name, name))
			return s->reason[i].pages;
	return 0;
}

void vsm_stats_delta(const struct vsm_stats *b, const struct vsm_stats *a,
		     struct vsm_stats *d)
{
	struct vsm_stats out = { 0 };

	out.supported = a->supported;
	out.unmapped = a->unmapped - b->unmapped;
	out.moved = a->moved - b->moved;
	out.moved_zero = a->moved_zero - b->moved_zero;
	out.thp = a->thp - b->thp;
	out.large = a->large - b->large;
	out.copied = a->copied - b->copied;
	for (int i = 0; i < a->nr_reasons; i++) {
		long long v = a->reason[i].pages - reason_of(b, a->reason[i].name);

		if (v)
			add_reason(&out, a->reason[i].name, v);
	}
	*d = out;
}
