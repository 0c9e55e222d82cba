// SPDX-License-Identifier: GPL-2.0
/*
 * What vmsplice(), splice() and tee() do with pipes today, without
 * SPLICE_F_MOVE on the reading side.  The move change must leave all of
 * this as it is, so every test here passes on the stock host kernel and on
 * the patched kernel alike.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <unistd.h>

#include "kselftest_harness.h"

#include "lib/pagemap.h"
#include "lib/pattern.h"

FIXTURE(pipe)
{
	int rd, wr;
	size_t ps;
	char *src, *dst;	/* 4 pages each, private anonymous */
	int pagemap;
};

FIXTURE_SETUP(pipe)
{
	int fds[2];

	ASSERT_EQ(0, pipe2(fds, O_CLOEXEC));
	self->rd = fds[0];
	self->wr = fds[1];
	self->ps = getpagesize();
	self->src = mmap(NULL, 4 * self->ps, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, self->src);
	self->dst = mmap(NULL, 4 * self->ps, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, self->dst);
	pattern_fill(self->src, 4 * self->ps, 1, 0);
	memset(self->dst, 0xaa, 4 * self->ps);
	self->pagemap = pagemap_open();
	ASSERT_LE(0, self->pagemap);
}

FIXTURE_TEARDOWN(pipe)
{
	close(self->rd);
	close(self->wr);
	munmap(self->src, 4 * self->ps);
	munmap(self->dst, 4 * self->ps);
	close(self->pagemap);
}

static ssize_t vms(int fd, void *base, size_t len, unsigned int flags)
{
	struct iovec iov = { .iov_base = base, .iov_len = len };

	return vmsplice(fd, &iov, 1, flags);
}

/* Plain vmsplice into the pipe, read() out: same bytes. */
TEST_F(pipe, vmsplice_then_read)
{
	ASSERT_EQ((ssize_t)(3 * self->ps), vms(self->wr, self->src, 3 * self->ps, 0));
	ASSERT_EQ((ssize_t)(3 * self->ps), read(self->rd, self->dst, 3 * self->ps));
	ASSERT_EQ((size_t)-1, pattern_check(self->dst, 3 * self->ps, 1, 0));
}

/*
 * Without a gift the pipe references the writer's pages, it does not copy
 * them: a write after vmsplice is what the reader sees.  (This is why a
 * writer must not touch vmspliced memory until it is consumed, and why the
 * move path must never hand out a page its owner can still write.)
 */
TEST_F(pipe, no_gift_references_writer_pages)
{
	ASSERT_EQ((ssize_t)self->ps, vms(self->wr, self->src, self->ps, 0));
	memset(self->src, 0x5c, self->ps);
	ASSERT_EQ((ssize_t)self->ps, read(self->rd, self->dst, self->ps));
	ASSERT_TRUE(all_bytes_are(self->dst, self->ps, 0x5c));
}

/* GIFT alone changes nothing for the writer: its pages stay mapped. */
TEST_F(pipe, gift_keeps_writer_mapping)
{
	uint64_t pfn = pagemap_pfn(self->pagemap, self->src);

	ASSERT_EQ((ssize_t)(2 * self->ps),
		  vms(self->wr, self->src, 2 * self->ps, SPLICE_F_GIFT));
	ASSERT_TRUE(pagemap_present(self->pagemap, self->src));
	ASSERT_EQ(pfn, pagemap_pfn(self->pagemap, self->src));
	ASSERT_EQ((size_t)-1, pattern_check(self->src, 2 * self->ps, 1, 0));
	ASSERT_EQ((ssize_t)(2 * self->ps), read(self->rd, self->dst, 2 * self->ps));
	ASSERT_EQ((size_t)-1, pattern_check(self->dst, 2 * self->ps, 1, 0));
}

/* vmsplice from the pipe to memory without MOVE copies: the PFN stays. */
TEST_F(pipe, vmsplice_to_user_copies)
{
	uint64_t before, after;

	before = pagemap_pfn(self->pagemap, self->dst);
	ASSERT_EQ((ssize_t)(2 * self->ps),
		  vms(self->wr, self->src, 2 * self->ps, SPLICE_F_GIFT));
	ASSERT_EQ((ssize_t)(2 * self->ps), vms(self->rd, self->dst, 2 * self->ps, 0));
	after = pagemap_pfn(self->pagemap, self->dst);
	ASSERT_EQ((size_t)-1, pattern_check(self->dst, 2 * self->ps, 1, 0));
	if (!before)
		SKIP(return, "PFNs hidden: run as root to compare frames");
	ASSERT_EQ(before, after);
	ASSERT_NE(pagemap_pfn(self->pagemap, self->src), after);
}

/* Unaligned, partial-page ranges go through intact both ways. */
TEST_F(pipe, unaligned_partial_pages)
{
	size_t off = 100, len = self->ps + 1000;

	ASSERT_EQ((ssize_t)len, vms(self->wr, self->src + off, len, SPLICE_F_GIFT));
	ASSERT_EQ((ssize_t)len, vms(self->rd, self->dst + 7, len, SPLICE_F_MOVE));
	ASSERT_EQ((size_t)-1, pattern_check(self->dst + 7, len, 1, off));
	ASSERT_EQ(0xaa, (unsigned char)self->dst[6]);
	ASSERT_EQ(0xaa, (unsigned char)self->dst[7 + len]);
}

/* Many segments in one call, in order. */
TEST_F(pipe, multi_segment_iov)
{
	struct iovec in[3] = {
		{ self->src + 2 * self->ps, self->ps },
		{ self->src, 10 },
		{ self->src + self->ps + 5, 300 },
	};
	size_t total = self->ps + 310;

	ASSERT_EQ((ssize_t)total, vmsplice(self->wr, in, 3, SPLICE_F_GIFT));
	ASSERT_EQ((ssize_t)total, read(self->rd, self->dst, total));
	ASSERT_EQ((size_t)-1, pattern_check(self->dst, self->ps, 1, 2 * self->ps));
	ASSERT_EQ((size_t)-1, pattern_check(self->dst + self->ps, 10, 1, 0));
	ASSERT_EQ((size_t)-1, pattern_check(self->dst + self->ps + 10, 300, 1, self->ps + 5));
}

/* tee() duplicates buffers: both pipes deliver the full data. */
TEST_F(pipe, tee_duplicates)
{
	int p2[2];

	ASSERT_EQ(0, pipe(p2));
	ASSERT_EQ((ssize_t)(2 * self->ps),
		  vms(self->wr, self->src, 2 * self->ps, SPLICE_F_GIFT));
	ASSERT_EQ((ssize_t)(2 * self->ps), tee(self->rd, p2[1], 2 * self->ps, 0));
	ASSERT_EQ((ssize_t)(2 * self->ps),
		  vms(p2[0], self->dst, 2 * self->ps, SPLICE_F_MOVE));
	ASSERT_EQ((size_t)-1, pattern_check(self->dst, 2 * self->ps, 1, 0));
	memset(self->dst, 0, 2 * self->ps);
	ASSERT_EQ((ssize_t)(2 * self->ps),
		  vms(self->rd, self->dst, 2 * self->ps, SPLICE_F_MOVE));
	ASSERT_EQ((size_t)-1, pattern_check(self->dst, 2 * self->ps, 1, 0));
	close(p2[0]);
	close(p2[1]);
}

/* Page-cache pages spliced from a file reach user memory intact. */
TEST_F(pipe, splice_file_to_user)
{
	char path[] = "/tmp/vmsplice-semantics-XXXXXX";
	int fd = mkstemp(path);
	loff_t off = 0;

	ASSERT_LE(0, fd);
	unlink(path);
	ASSERT_EQ((ssize_t)(2 * self->ps), write(fd, self->src, 2 * self->ps));
	ASSERT_EQ((ssize_t)(2 * self->ps),
		  splice(fd, &off, self->wr, NULL, 2 * self->ps, SPLICE_F_MOVE));
	ASSERT_EQ((ssize_t)(2 * self->ps),
		  vms(self->rd, self->dst, 2 * self->ps, SPLICE_F_MOVE));
	ASSERT_EQ((size_t)-1, pattern_check(self->dst, 2 * self->ps, 1, 0));
	close(fd);
}

/*
 * A bad address in the middle of the reader's iov: the bytes before it are
 * delivered and counted, the rest stays in the pipe for a later read.
 */
TEST_F(pipe, efault_mid_iov_keeps_rest)
{
	struct iovec out[2] = {
		{ self->dst, self->ps },
		{ (void *)8, self->ps },	/* never mapped */
	};

	ASSERT_EQ((ssize_t)(2 * self->ps),
		  vms(self->wr, self->src, 2 * self->ps, SPLICE_F_GIFT));
	ASSERT_EQ((ssize_t)self->ps, vmsplice(self->rd, out, 2, SPLICE_F_MOVE));
	ASSERT_EQ((size_t)-1, pattern_check(self->dst, self->ps, 1, 0));
	ASSERT_EQ((ssize_t)self->ps, read(self->rd, self->dst + self->ps, self->ps));
	ASSERT_EQ((size_t)-1, pattern_check(self->dst + self->ps, self->ps, 1, self->ps));
}

/* A bad address as the only segment: EFAULT, nothing consumed. */
TEST_F(pipe, efault_first_segment)
{
	ASSERT_EQ((ssize_t)self->ps, vms(self->wr, self->src, self->ps, SPLICE_F_GIFT));
	ASSERT_EQ(-1, vms(self->rd, (void *)8, self->ps, SPLICE_F_MOVE));
	ASSERT_EQ(EFAULT, errno);
	ASSERT_EQ((ssize_t)self->ps, read(self->rd, self->dst, self->ps));
	ASSERT_EQ((size_t)-1, pattern_check(self->dst, self->ps, 1, 0));
}

/* A bad source address: EFAULT and nothing enters the pipe. */
TEST_F(pipe, efault_writer)
{
	int fl = fcntl(self->rd, F_GETFL);

	ASSERT_EQ(-1, vms(self->wr, (void *)8, self->ps, SPLICE_F_GIFT | SPLICE_F_MOVE));
	ASSERT_EQ(EFAULT, errno);
	ASSERT_EQ(0, fcntl(self->rd, F_SETFL, fl | O_NONBLOCK));
	ASSERT_EQ(-1, read(self->rd, self->dst, self->ps));
	ASSERT_EQ(EAGAIN, errno);
}

TEST_F(pipe, zero_length)
{
	ASSERT_EQ(0, vms(self->wr, self->src, 0, SPLICE_F_GIFT | SPLICE_F_MOVE));
	ASSERT_EQ(0, vms(self->rd, self->dst, 0, SPLICE_F_MOVE));
}

TEST_F(pipe, unknown_flags)
{
	ASSERT_EQ(-1, vms(self->wr, self->src, self->ps, 0x100));
	ASSERT_EQ(EINVAL, errno);
	ASSERT_EQ(-1, vms(self->rd, self->dst, self->ps, SPLICE_F_MOVE | 0x100));
	ASSERT_EQ(EINVAL, errno);
}

TEST_F(pipe, not_a_pipe)
{
	int fd = open("/dev/null", O_RDWR | O_CLOEXEC);

	ASSERT_LE(0, fd);
	ASSERT_EQ(-1, vms(fd, self->src, self->ps, SPLICE_F_GIFT | SPLICE_F_MOVE));
	ASSERT_EQ(EBADF, errno);
	close(fd);
	ASSERT_EQ(-1, vms(-1, self->src, self->ps, 0));
	ASSERT_EQ(EBADF, errno);
}

/* An O_PATH descriptor of a pipe can neither read nor write it. */
TEST_F(pipe, wrong_access_mode)
{
	char path[64];
	int fd;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", self->rd);
	fd = open(path, O_PATH | O_CLOEXEC);
	ASSERT_LE(0, fd);
	ASSERT_EQ(-1, vms(fd, self->dst, self->ps, SPLICE_F_MOVE));
	ASSERT_EQ(EBADF, errno);
	close(fd);
}

TEST_F(pipe, empty_nonblocking)
{
	ASSERT_EQ(-1, vms(self->rd, self->dst, self->ps, SPLICE_F_MOVE | SPLICE_F_NONBLOCK));
	ASSERT_EQ(EAGAIN, errno);
	ASSERT_TRUE(all_bytes_are(self->dst, self->ps, 0xaa));
}

/* Writer side closed with an empty pipe: the reader sees end of file. */
TEST_F(pipe, eof_after_writer_close)
{
	close(self->wr);
	self->wr = -1;
	ASSERT_EQ(0, vms(self->rd, self->dst, self->ps, SPLICE_F_MOVE));
}

TEST_HARNESS_MAIN
