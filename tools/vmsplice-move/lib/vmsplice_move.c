// SPDX-License-Identifier: GPL-2.0
#define _GNU_SOURCE
#include "vmsplice_move.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/uio.h>

const char *const vsm_reason_names[VSM_NR_REASONS] = {
	"not_gift", "partial", "dst_vma", "not_anon", "ksm", "large",
	"mapped", "pinned", "refs", "swapcache", "memcg", "busy",
};

static ssize_t loop(int fd, void *addr, size_t len, unsigned int flags,
		    size_t *done_out)
{
	size_t done = 0;
	ssize_t n = 0;

	while (done < len) {
		struct iovec iov = {
			.iov_base = (char *)addr + done,
			.iov_len = len - done,
		};

		n = vmsplice(fd, &iov, 1, flags);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		done += n;
	}
	if (done_out)
		*done_out = done;
	if (n < 0)
		return -1;
	return done;
}

ssize_t vsm_give(int pipe_wr, void *addr, size_t len, size_t *given)
{
	return loop(pipe_wr, addr, len, SPLICE_F_GIFT | SPLICE_F_MOVE, given);
}

ssize_t vsm_take(int pipe_rd, void *addr, size_t len, size_t *taken)
{
	return loop(pipe_rd, addr, len, SPLICE_F_MOVE, taken);
}

void *vsm_alloc(size_t len, bool huge)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		return NULL;
	madvise(p, len, huge ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);
	return p;
}

ssize_t vsm_take_copy(int pipe_rd, void *addr, size_t len, size_t *taken)
{
	return loop(pipe_rd, addr, len, 0, taken);
}

int vsm_stats_read(struct vsm_stats *s)
{
	char name[64];
	long long val;
	FILE *f;

	memset(s, 0, sizeof(*s));
	f = fopen("/proc/vmstat", "re");
	if (!f)
		return -1;
	while (fscanf(f, "%63s %lld", name, &val) == 2) {
		if (strncmp(name, "vmsplice_", 9))
			continue;
		s->supported = true;
		if (!strcmp(name, "vmsplice_gift_unmapped"))
			s->unmapped = val;
		else if (!strcmp(name, "vmsplice_move_pages"))
			s->moved = val;
		else if (!strcmp(name, "vmsplice_move_zero_pages"))
			s->moved_zero = val;
		for (int i = 0; i < VSM_NR_REASONS; i++) {
			char want[64];

			snprintf(want, sizeof(want), "vmsplice_move_fallback_%s",
				 vsm_reason_names[i]);
			if (!strcmp(name, want)) {
				s->fallback[i] = val;
				s->copied += val;
			}
		}
	}
	fclose(f);
	return 0;
}

void vsm_stats_delta(const struct vsm_stats *b, const struct vsm_stats *a,
		     struct vsm_stats *d)
{
	d->supported = a->supported;
	d->unmapped = a->unmapped - b->unmapped;
	d->moved = a->moved - b->moved;
	d->moved_zero = a->moved_zero - b->moved_zero;
	d->copied = a->copied - b->copied;
	for (int i = 0; i < VSM_NR_REASONS; i++)
		d->fallback[i] = a->fallback[i] - b->fallback[i];
}
