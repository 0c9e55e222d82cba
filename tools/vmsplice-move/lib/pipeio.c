// SPDX-License-Identifier: GPL-2.0
/* vsm_give()/vsm_take() and friends: vmsplice(2) loops, memory for moves. */
#define _GNU_SOURCE
#include "vmsplice_move.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <unistd.h>

int vsm_unmap_supported(int pipe_wr)
{
	/* An empty vmsplice: the flag check is all that runs (contract). */
	if (vmsplice(pipe_wr, NULL, 0, SPLICE_F_GIFT | SPLICE_F_UNMAP) == 0)
		return 1;
	if (errno == EINVAL)
		return 0;
	return -1;
}

/*
 * vmsplice until @len bytes went, blocking.  A short return means the
 * kernel took that many bytes (they left us when giving): continue after
 * them, never re-give them.
 */
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
	return loop(pipe_wr, addr, len, SPLICE_F_GIFT | SPLICE_F_UNMAP, given);
}

ssize_t vsm_give_copy(int pipe_wr, void *addr, size_t len, size_t *given)
{
	return loop(pipe_wr, addr, len, SPLICE_F_GIFT, given);
}

ssize_t vsm_take(int pipe_rd, void *addr, size_t len, size_t *taken)
{
	return loop(pipe_rd, addr, len, SPLICE_F_MOVE, taken);
}

ssize_t vsm_take_copy(int pipe_rd, void *addr, size_t len, size_t *taken)
{
	return loop(pipe_rd, addr, len, 0, taken);
}

/*
 * Byte @off of the range goes through pipe (@off / @chunk) % @nr: each side
 * walks the chunks in the same order, so the giver fills one pipe while
 * the taker empties another (on two CPUs neither waits for the other).
 */
static ssize_t loop_pipes(const int *fds, unsigned int nr, size_t chunk,
			  void *addr, size_t len, unsigned int flags,
			  size_t *done_out)
{
	size_t done = 0;
	ssize_t n = 0;

	if (!nr || !chunk) {
		errno = EINVAL;
		n = -1;
	}
	while (n >= 0 && done < len) {
		size_t k = done / chunk, end = (k + 1) * chunk, want, got = 0;

		want = (end < len ? end : len) - done;
		n = loop(fds[k % nr], (char *)addr + done, want, flags, &got);
		done += got;
		if (n >= 0 && got < want)
			break;	/* the writer closed that pipe early */
	}
	if (done_out)
		*done_out = done;
	if (n < 0)
		return -1;
	return done;
}

ssize_t vsm_give_pipes(const int *pipe_wr, unsigned int nr, size_t chunk,
		       void *addr, size_t len, size_t *given)
{
	return loop_pipes(pipe_wr, nr, chunk, addr, len,
			  SPLICE_F_GIFT | SPLICE_F_UNMAP, given);
}

ssize_t vsm_take_pipes(const int *pipe_rd, unsigned int nr, size_t chunk,
		       void *addr, size_t len, size_t *taken)
{
	return loop_pipes(pipe_rd, nr, chunk, addr, len, SPLICE_F_MOVE, taken);
}

size_t vsm_thp_size(void)
{
	unsigned long sz = 0;
	FILE *f = fopen("/sys/kernel/mm/transparent_hugepage/hpage_pmd_size", "re");

	if (f) {
		if (fscanf(f, "%lu", &sz) != 1)
			sz = 0;
		fclose(f);
	}
	return sz ? sz : 2UL << 20;
}

void *vsm_alloc(size_t len, bool huge)
{
	size_t align = huge ? vsm_thp_size() : 0;
	size_t map_len;
	char *p, *start;

	if (!len || len > SIZE_MAX - align) {
		errno = EINVAL;
		return NULL;
	}
	/* Over-allocate by one huge page and trim to get the alignment. */
	map_len = len + align;
	p = mmap(NULL, map_len, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	start = p;
	if (align) {
		start = (char *)(((uintptr_t)p + align - 1) & ~(uintptr_t)(align - 1));
		if (start > p)
			munmap(p, start - p);
		if (p + map_len > start + len)
			munmap(start + len, p + map_len - (start + len));
	}
	/* Advice is best effort: a kernel without THP still gets its data. */
	madvise(start, len, huge ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);
	return start;
}

void vsm_free(void *addr, size_t len)
{
	if (addr)
		munmap(addr, len);
}
