// SPDX-License-Identifier: GPL-2.0
/*
 * The writer's opt-in, SPLICE_F_UNMAP: where it is accepted, where it is
 * refused, and that nothing changes for programs that do not pass it.
 * Every test here holds on every kernel: a kernel without the change
 * refuses the flag everywhere, a kernel with it refuses it everywhere but
 * on the writing side of vmsplice() together with SPLICE_F_GIFT.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <unistd.h>

#include "kselftest_harness.h"

#include "lib/feature.h"
#include "lib/mem.h"
#include "lib/pattern.h"
#include "lib/vmstat.h"

#define PS	4096

static int queued(int fd)
{
	int n = -1;

	ioctl(fd, FIONREAD, &n);
	return n;
}

FIXTURE(pipe)
{
	int rd, wr;
	char *buf;
};

FIXTURE_SETUP(pipe)
{
	int p[2];

	ASSERT_EQ(0, pipe(p));
	self->rd = p[0];
	self->wr = p[1];
	self->buf = map_anon(4 * PS);
	ASSERT_NE(NULL, self->buf);
	pattern_fill(self->buf, 4 * PS, 21, 0);
}

FIXTURE_TEARDOWN(pipe)
{
	close(self->rd);
	close(self->wr);
}

/*
 * The probe user space uses: vmsplice() of zero segments with the flags.
 * It must agree with the kernel's counters (both there or both absent),
 * and inside the test VM the kernel must have it.
 */
TEST_F(pipe, probe_matches_kernel)
{
	ssize_t r = vmsplice(self->wr, NULL, 0, GIVE);

	if (r == 0) {
		ASSERT_LE(0, vmstat_get("vmsplice_move_pages"));
		ASSERT_LE(0, vmstat_get("vmsplice_gift_unmapped"));
	} else {
		ASSERT_EQ(-1, r);
		ASSERT_EQ(EINVAL, errno);
		ASSERT_EQ(-1, vmstat_get("vmsplice_move_pages"));
		ASSERT_FALSE(move_required())
			TH_LOG("the test VM's kernel must accept SPLICE_F_UNMAP");
	}
}

/* SPLICE_F_UNMAP needs SPLICE_F_GIFT: alone it is refused, nothing sent. */
TEST_F(pipe, unmap_needs_gift)
{
	struct iovec iov = { self->buf, PS };

	ASSERT_EQ(-1, vmsplice(self->wr, &iov, 1, SPLICE_F_UNMAP));
	ASSERT_EQ(EINVAL, errno);
	ASSERT_EQ(-1, vmsplice(self->wr, &iov, 1, SPLICE_F_UNMAP | SPLICE_F_MOVE));
	ASSERT_EQ(EINVAL, errno);
	ASSERT_EQ(0, queued(self->rd));
	ASSERT_EQ((size_t)-1, pattern_check(self->buf, PS, 21, 0));
}

/* A reader has nothing to unmap: refused, the data stays in the pipe. */
TEST_F(pipe, unmap_on_read_side)
{
	struct iovec iov = { self->buf, PS };
	char *dst = map_anon(PS);

	ASSERT_NE(NULL, dst);
	ASSERT_EQ(PS, write(self->wr, self->buf, PS));
	iov.iov_base = dst;
	ASSERT_EQ(-1, vmsplice(self->rd, &iov, 1, GIVE));
	ASSERT_EQ(EINVAL, errno);
	ASSERT_EQ(-1, vmsplice(self->rd, &iov, 1, SPLICE_F_UNMAP | SPLICE_F_MOVE));
	ASSERT_EQ(EINVAL, errno);
	ASSERT_EQ(PS, queued(self->rd));
}

/* splice() and tee() keep refusing the bit: it is outside SPLICE_F_ALL. */
TEST_F(pipe, splice_and_tee_refuse_unmap)
{
	char path[] = "/tmp/vmsplice-flags-XXXXXX";
	int fd = mkstemp(path), q[2];
	loff_t off = 0;

	ASSERT_LE(0, fd);
	unlink(path);
	ASSERT_EQ(PS, write(fd, self->buf, PS));
	ASSERT_EQ(0, pipe(q));
	ASSERT_EQ(-1, splice(fd, &off, self->wr, NULL, PS, SPLICE_F_UNMAP));
	ASSERT_EQ(EINVAL, errno);
	ASSERT_EQ(-1, splice(fd, &off, self->wr, NULL, PS, GIVE));
	ASSERT_EQ(EINVAL, errno);
	ASSERT_EQ(PS, write(self->wr, self->buf, PS));
	ASSERT_EQ(-1, tee(self->rd, q[1], PS, SPLICE_F_UNMAP));
	ASSERT_EQ(EINVAL, errno);
	ASSERT_EQ(0, queued(q[0]));
	close(q[0]);
	close(q[1]);
	close(fd);
}

/* No other new bit: the next one up is refused as before. */
TEST_F(pipe, other_bits_refused)
{
	struct iovec iov = { self->buf, PS };

	ASSERT_EQ(-1, vmsplice(self->wr, &iov, 1, SPLICE_F_GIFT | 0x20));
	ASSERT_EQ(EINVAL, errno);
	ASSERT_EQ(0, queued(self->rd));
}

/*
 * What programs pass today, SPLICE_F_GIFT | SPLICE_F_MOVE (documented as
 * unused for vmsplice()), keeps its meaning on every kernel: the pages
 * stay mapped, the writer keeps its data and its own frames, and a reader
 * using SPLICE_F_MOVE gets a copy it may write without the writer seeing.
 */
TEST_F(pipe, gift_move_keeps_pages)
{
	struct iovec iov = { self->buf, 4 * PS };
	char *dst = map_anon(4 * PS);

	ASSERT_NE(NULL, dst);
	ASSERT_EQ(4 * PS, vmsplice(self->wr, &iov, 1, SPLICE_F_GIFT | SPLICE_F_MOVE));
	ASSERT_EQ((size_t)-1, pattern_check(self->buf, 4 * PS, 21, 0));
	iov.iov_base = dst;
	ASSERT_EQ(4 * PS, vmsplice(self->rd, &iov, 1, SPLICE_F_MOVE));
	ASSERT_EQ((size_t)-1, pattern_check(dst, 4 * PS, 21, 0));
	memset(dst, 0, 4 * PS);
	ASSERT_EQ((size_t)-1, pattern_check(self->buf, 4 * PS, 21, 0));
}

TEST_HARNESS_MAIN
