// SPDX-License-Identifier: GPL-2.0
/*
 * A whole THP given with SPLICE_F_UNMAP is one pipe buffer of 2 MiB: one
 * pipe slot.  Everything else that reads a pipe must still see the same
 * bytes and the same sizes: FIONREAD counts bytes, F_GETPIPE_SZ slots;
 * read() in pieces, splice() to a file, to a socket and to another pipe
 * (in part), tee(), a copying vmsplice(), shrinking the pipe.  And an
 * unprivileged process fills a default 16-slot pipe with 32 MiB of THPs.
 * On kernels without the change (no such buffers) these SKIP.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kselftest_harness.h"

#include "lib/feature.h"
#include "lib/mem.h"
#include "lib/pattern.h"
#include "lib/vmstat.h"

#define THP	(2UL << 20)
#define SEED	0x7e9

/* @n THPs, 2 MiB aligned and filled; NULL if none could be allocated. */
static char *thp_region(size_t n)
{
	char *p = map_anon((n + 1) * THP);
	long long before = self_smaps_kb("AnonHugePages");

	if (!p)
		return NULL;
	p = (char *)(((uintptr_t)p + THP - 1) & ~(THP - 1));
	if (madvise(p, n * THP, MADV_HUGEPAGE))
		return NULL;
	pattern_fill(p, n * THP, SEED, 0);
	if (self_smaps_kb("AnonHugePages") - before < (long long)(n * 2048))
		return NULL;
	return p;
}

static int queued(int fd)
{
	int n = -1;

	ioctl(fd, FIONREAD, &n);
	return n;
}

FIXTURE(thp_pipe)
{
	int rd, wr;
	char *src;
	struct iovec iov;
};

FIXTURE_SETUP(thp_pipe)
{
	int p[2];

	REQUIRE_MOVE();
	ASSERT_EQ(0, pipe(p));
	self->rd = p[0];
	self->wr = p[1];
	self->src = thp_region(1);
	if (!self->src) {
		ASSERT_FALSE(move_required()) TH_LOG("no THP was allocated");
		SKIP(return, "no transparent huge page was allocated");
	}
	self->iov = (struct iovec){ self->src, THP };
	/* A default pipe (16 slots) takes the THP whole, in one slot. */
	ASSERT_EQ(65536, fcntl(self->wr, F_GETPIPE_SZ));
	ASSERT_EQ((ssize_t)THP, vmsplice(self->wr, &self->iov, 1,
					  GIVE | SPLICE_F_NONBLOCK));
}

FIXTURE_TEARDOWN(thp_pipe)
{
	close(self->rd);
	close(self->wr);
}

/* FIONREAD counts bytes, F_GETPIPE_SZ is still the slot count's size. */
TEST_F(thp_pipe, sizes)
{
	ASSERT_EQ((int)THP, queued(self->rd));
	ASSERT_EQ(65536, fcntl(self->wr, F_GETPIPE_SZ));
	/* The writer gave the THP away: zeros there now. */
	ASSERT_TRUE(all_bytes_are(self->src, THP, 0));
}

/* read() in odd pieces: every byte right, FIONREAD going down. */
TEST_F(thp_pipe, read_in_pieces)
{
	char *dst = map_anon(THP);
	size_t got = 0;

	ASSERT_NE(NULL, dst);
	while (got < THP) {
		size_t want = THP - got < 100000 ? THP - got : 100000;

		ASSERT_EQ((ssize_t)want, read(self->rd, dst + got, want));
		got += want;
		ASSERT_EQ((int)(THP - got), queued(self->rd));
	}
	ASSERT_EQ((size_t)-1, pattern_check(dst, THP, SEED, 0));
}

/* splice() to a file: the file holds the bytes. */
TEST_F(thp_pipe, splice_to_file)
{
	char path[] = "/tmp/vmsplice-thp-XXXXXX";
	char *back = map_anon(THP);
	int fd = mkstemp(path);
	size_t done = 0;

	ASSERT_LE(0, fd);
	ASSERT_NE(NULL, back);
	unlink(path);
	while (done < THP) {
		ssize_t n = splice(self->rd, NULL, fd, NULL, THP - done, 0);

		ASSERT_LT(0, n);
		done += n;
	}
	ASSERT_EQ((ssize_t)THP, pread(fd, back, THP, 0));
	ASSERT_EQ((size_t)-1, pattern_check(back, THP, SEED, 0));
	close(fd);
}

/* splice() to a socket, read back from its other end. */
TEST_F(thp_pipe, splice_to_socket)
{
	char *back = map_anon(THP);
	size_t sent = 0, got = 0;
	int sv[2];
	pid_t pid;

	ASSERT_NE(NULL, back);
	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		close(sv[0]);
		while (sent < THP) {
			ssize_t n = splice(self->rd, NULL, sv[1], NULL, THP - sent, 0);

			if (n <= 0)
				_exit(1);
			sent += n;
		}
		_exit(0);
	}
	close(sv[1]);
	while (got < THP) {
		ssize_t n = read(sv[0], back + got, THP - got);

		ASSERT_LT(0, n);
		got += n;
	}
	ASSERT_EQ((size_t)-1, pattern_check(back, THP, SEED, 0));
	ASSERT_EQ(pid, waitpid(pid, NULL, 0));
	close(sv[0]);
}

/* splice() of part of the buffer to another pipe, then the rest. */
TEST_F(thp_pipe, splice_to_pipe_in_part)
{
	char *a = map_anon(THP), *b = map_anon(THP);
	struct iovec iov = { b, THP };
	int q[2];

	ASSERT_NE(NULL, a);
	ASSERT_NE(NULL, b);
	ASSERT_EQ(0, pipe(q));
	ASSERT_EQ((ssize_t)(THP / 4), splice(self->rd, NULL, q[1], NULL, THP / 4, 0));
	ASSERT_EQ((int)(THP / 4), queued(q[0]));
	ASSERT_EQ((int)(THP - THP / 4), queued(self->rd));
	ASSERT_EQ((ssize_t)(THP / 4), read(q[0], a, THP / 4));
	ASSERT_EQ((size_t)-1, pattern_check(a, THP / 4, SEED, 0));
	/* The rest, with MOVE: not a whole buffer any more, copied. */
	ASSERT_EQ((ssize_t)(THP - THP / 4),
		  vmsplice(self->rd, &iov, 1, SPLICE_F_MOVE));
	ASSERT_EQ((size_t)-1, pattern_check(b, THP - THP / 4, SEED, THP / 4));
	close(q[0]);
	close(q[1]);
}

/* tee(): both pipes deliver the bytes, the copy is no gift. */
TEST_F(thp_pipe, tee_both_deliver)
{
	char *a = map_anon(THP), *b = map_anon(THP);
	struct iovec ia = { a, THP }, ib = { b, THP };
	int q[2];

	ASSERT_NE(NULL, a);
	ASSERT_NE(NULL, b);
	ASSERT_EQ(0, pipe(q));
	ASSERT_EQ((ssize_t)THP, tee(self->rd, q[1], THP, 0));
	ASSERT_EQ((int)THP, queued(q[0]));
	ASSERT_EQ((ssize_t)THP, vmsplice(q[0], &ia, 1, SPLICE_F_MOVE));
	ASSERT_EQ((ssize_t)THP, vmsplice(self->rd, &ib, 1, SPLICE_F_MOVE));
	ASSERT_EQ((size_t)-1, pattern_check(a, THP, SEED, 0));
	ASSERT_EQ((size_t)-1, pattern_check(b, THP, SEED, 0));
	close(q[0]);
	close(q[1]);
}

/* vmsplice() without MOVE copies the 2 MiB buffer as any other. */
TEST_F(thp_pipe, copying_vmsplice)
{
	char *dst = map_anon(THP);
	struct iovec iov = { dst, THP };

	ASSERT_NE(NULL, dst);
	ASSERT_EQ((ssize_t)THP, vmsplice(self->rd, &iov, 1, 0));
	ASSERT_EQ((size_t)-1, pattern_check(dst, THP, SEED, 0));
}

/* A reader wanting less than the buffer: copied in parts, all there. */
TEST_F(thp_pipe, reader_wants_less)
{
	char *dst = map_anon(2 * THP);
	struct iovec iov = { dst, THP / 2 };

	ASSERT_NE(NULL, dst);
	ASSERT_EQ((ssize_t)(THP / 2), vmsplice(self->rd, &iov, 1, SPLICE_F_MOVE));
	iov = (struct iovec){ dst + THP / 2, THP };
	ASSERT_EQ((ssize_t)(THP / 2), vmsplice(self->rd, &iov, 1,
						SPLICE_F_MOVE | SPLICE_F_NONBLOCK));
	ASSERT_EQ((size_t)-1, pattern_check(dst, THP, SEED, 0));
}

/* Two buffers (the THP and a byte): two slots, however many bytes. */
TEST_F(thp_pipe, shrink)
{
	ASSERT_EQ(1, write(self->wr, "x", 1));
	ASSERT_EQ(-1, fcntl(self->wr, F_SETPIPE_SZ, 4096));
	ASSERT_EQ(EBUSY, errno);
	ASSERT_EQ(8192, fcntl(self->wr, F_SETPIPE_SZ, 8192));
	ASSERT_EQ((int)THP + 1, queued(self->rd));
}

/*
 * Unprivileged, default pipe size and pipe-max-size: 16 THPs (32 MiB) in
 * one call, one slot each, without blocking.
 */
TEST(unprivileged_default_pipe)
{
	int p[2], status;
	pid_t pid;

	REQUIRE_MOVE();
	ASSERT_EQ(0, pipe(p));
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		struct iovec iov;
		char *src;

		if (setgid(65534) || setuid(65534))
			_exit(3);
		src = thp_region(16);
		if (!src)
			_exit(4);
		iov = (struct iovec){ src, 16 * THP };
		_exit(vmsplice(p[1], &iov, 1, GIVE | SPLICE_F_NONBLOCK) ==
		      (ssize_t)(16 * THP) ? 0 : 1);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_TRUE(WIFEXITED(status));
	ASSERT_EQ(0, WEXITSTATUS(status))
		TH_LOG("3: setuid, 4: no THP, 1: the vmsplice fell short");
	ASSERT_EQ((int)(16 * THP), queued(p[0]));
	close(p[0]);
	close(p[1]);
}

TEST_HARNESS_MAIN
