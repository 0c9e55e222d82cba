// SPDX-License-Identifier: GPL-2.0
/*
 * A hostile or broken peer against libvmsplice-move.
 *
 * recv: a fake sender, written here byte by byte, against the receiver of
 * the vmsplice-move command built with ASan/UBSan (LeakSanitizer on at
 * exit).  Every case must end with exit status 3 and a reason naming what
 * was wrong, within a bound, with no sanitizer report, and with nothing
 * written to the output file: nothing that was not announced and checked
 * is delivered.
 * killed: a real sender killed at seeded random points of the transfer.
 * send: a fake receiver against vsm_send(): each failure is reported with
 * exactly the bytes that left the sender.
 * leaks: descriptors after failed hand-offs in this process.
 */
#define _GNU_SOURCE
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>

#include "kselftest_harness.h"
#include "tool_util.h"
#include "wire.h"

#define PS	4096UL
#define BOUND_MS	20000

enum attack {
	A_TRUNCATED, A_GARBLED, A_MAGIC, A_OVERSIZED, A_VERSION, A_SIZE_MISMATCH,
	A_COUNT_OVERFLOW, A_LEN_OVERFLOW, A_ZERO_REGION, A_NO_FD, A_NOT_PIPE,
	A_WRITE_END, A_TWO_FDS, A_OVER_LIMIT, A_SOCKET_CLOSED, A_PIPE_CLOSED,
	A_EXTRA_DATA, A_STALL, A_ABORT, A_GARBAGE_MSG, A_PIPES2_ONE_FD,
	A_PIPES2_NOT_PIPE, A_PIPES2_THREE_FDS, A_PIPES2_WRONG_TURN,
	A_PIPES2_EXTRA_DATA,
};

/* A hello + region table, with correct sums unless the case breaks them. */
struct fake_hello {
	struct vsm_wire_hello h;
	struct vsm_wire_region t[2];
	int nr;
};

static void fake_build(struct fake_hello *f, int nr, uint64_t len0, uint64_t len1)
{
	memset(f, 0, sizeof(*f));
	f->nr = nr;
	f->t[0].len = len0;
	f->t[1].len = len1;
	f->h = (struct vsm_wire_hello){
		.magic = VSM_MAGIC_HELLO, .version = VSM_PROTO_VERSION,
		.hello_size = sizeof(f->h), .page_size = PS, .nr_regions = nr,
		.region_size = sizeof(struct vsm_wire_region),
		.total_bytes = len0 + (nr > 1 ? len1 : 0), .pipe_size = 65536,
	};
}

static void fake_seal(struct fake_hello *f)
{
	f->h.table_sum = vsm_checksum(f->t, f->nr * sizeof(f->t[0]));
	f->h.hello_sum = 0;
	f->h.hello_sum = vsm_checksum(&f->h, sizeof(f->h));
}

/* sendmsg @len bytes of @buf with @nfds descriptors attached. */
static int send_fds(int sock, const void *buf, size_t len, const int *fds, int nfds)
{
	union {
		char b[CMSG_SPACE(sizeof(int) * 3)];
		struct cmsghdr a;
	} ctl;
	struct iovec iov = { (void *)buf, len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };

	if (nfds) {
		struct cmsghdr *c;

		memset(&ctl, 0, sizeof(ctl));
		mh.msg_control = ctl.b;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
	}
	return sendmsg(sock, &mh, MSG_NOSIGNAL) == (ssize_t)len ? 0 : -1;
}

/* Read one control message (bounded); 0 when it is of @type. */
static int expect_msg(int sock, int type, struct vsm_wire_msg *m)
{
	char why[160];

	if (wire_recv_msg(sock, m, why, sizeof(why), 5000) != WIRE_OK)
		return -1;
	return m->type == type ? 0 : -1;
}

static int write_bytes(int fd, size_t len)
{
	static char buf[65536];

	memset(buf, 0xab, sizeof(buf));
	while (len) {
		ssize_t n = write(fd, buf, len < sizeof(buf) ? len : sizeof(buf));

		if (n <= 0)
			return -1;
		len -= n;
	}
	return 0;
}

FIXTURE(recv)
{
	int sock;		/* our end */
	int p[2];		/* the pipe we (would) hand over */
	char out[64];		/* the receiver's output file */
	pid_t pid;
	int out_fd, err_fd;
};

FIXTURE_VARIANT(recv)
{
	enum attack a;
	const char *expect;	/* in the receiver's error message */
};

/* Header cut short, then the connection closed. */
FIXTURE_VARIANT_ADD(recv, truncated_header) { A_TRUNCATED, "truncated" };
/* One bit flipped after the checksum was computed. */
FIXTURE_VARIANT_ADD(recv, garbled_header) { A_GARBLED, "garbled" };
/* Something else entirely talking on the socket. */
FIXTURE_VARIANT_ADD(recv, bad_magic) { A_MAGIC, "not a vmsplice-move sender" };
/* A header claiming to be 4 KiB long. */
FIXTURE_VARIANT_ADD(recv, oversized_header) { A_OVERSIZED, "header or region size" };
/* A future protocol version. */
FIXTURE_VARIANT_ADD(recv, wrong_version) { A_VERSION, "protocol version 1" };
/* Regions that do not add up to the announced total. */
FIXTURE_VARIANT_ADD(recv, size_mismatch) { A_SIZE_MISMATCH, "add up to" };
/* 2^32-1 regions: a table read that would never end or overflow. */
FIXTURE_VARIANT_ADD(recv, region_count_overflow) { A_COUNT_OVERFLOW, "regions announced, the limit" };
/* Region lengths whose sum wraps around 2^64. */
FIXTURE_VARIANT_ADD(recv, region_len_overflow) { A_LEN_OVERFLOW, "exceed the announced total" };
/* An empty region. */
FIXTURE_VARIANT_ADD(recv, zero_length_region) { A_ZERO_REGION, "region 0: length 0" };
/* No pipe passed. */
FIXTURE_VARIANT_ADD(recv, no_descriptor) { A_NO_FD, "no pipe descriptor" };
/* A descriptor that is not a pipe. */
FIXTURE_VARIANT_ADD(recv, not_a_pipe) { A_NOT_PIPE, "not the read end of a pipe" };
/* The pipe's write end instead of its read end. */
FIXTURE_VARIANT_ADD(recv, write_end) { A_WRITE_END, "not the read end of a pipe" };
/* A second, unexpected descriptor. */
FIXTURE_VARIANT_ADD(recv, two_descriptors) { A_TWO_FDS, "expected one pipe" };
/* More than the receiver's --max-size. */
FIXTURE_VARIANT_ADD(recv, over_limit) { A_OVER_LIMIT, "the limit is" };
/* The socket closes mid-transfer (pipe still open). */
FIXTURE_VARIANT_ADD(recv, socket_closed_mid_transfer) { A_SOCKET_CLOSED, "went away" };
/* The pipe closes mid-transfer, the sender says nothing. */
FIXTURE_VARIANT_ADD(recv, pipe_closed_mid_transfer) { A_PIPE_CLOSED, "the pipe was closed" };
/* More bytes in the pipe than announced. */
FIXTURE_VARIANT_ADD(recv, more_than_announced) { A_EXTRA_DATA, "more into the pipe than announced" };
/* Accepted, then nothing ever comes. */
FIXTURE_VARIANT_ADD(recv, stalled_sender) { A_STALL, "no data for" };
/* The sender aborts with a reason mid-transfer. */
FIXTURE_VARIANT_ADD(recv, sender_aborts) { A_ABORT, "disk on fire" };
/* Garbage on the socket mid-transfer. */
FIXTURE_VARIANT_ADD(recv, garbage_message) { A_GARBAGE_MSG, "garbled message" };
FIXTURE_VARIANT_ADD(recv, two_pipes_one_descriptor) { A_PIPES2_ONE_FD, "expected two pipes" };
FIXTURE_VARIANT_ADD(recv, two_pipes_second_not_a_pipe) {
	A_PIPES2_NOT_PIPE, "descriptor 1 is not the read end of a pipe" };
FIXTURE_VARIANT_ADD(recv, two_pipes_three_descriptors) { A_PIPES2_THREE_FDS, "expected two pipes" };
/* The first turn's bytes in the second pipe: bounded, and none delivered. */
FIXTURE_VARIANT_ADD(recv, two_pipes_wrong_turn) {
	A_PIPES2_WRONG_TURN, "no data for 2000 ms (0 of 131072 bytes)" };
FIXTURE_VARIANT_ADD(recv, two_pipes_more_than_announced) {
	A_PIPES2_EXTRA_DATA, "more into the pipe than announced" };

FIXTURE_SETUP(recv)
{
	int sv[2];
	char *argv[] = { VSM_ASAN_CMD, "recv", "--fd", "3", "-t", "2", "-q", "-m", "64M",
			 "-o", self->out, NULL };
	int fd;

	if (variant->a == A_OVER_LIMIT)
		argv[8] = "1M";
	if (variant->a == A_LEN_OVERFLOW)
		argv[8] = "0";	/* no limit: the overflow check itself must catch it */
	snprintf(self->out, sizeof(self->out), "/tmp/vsm-hostile.XXXXXX");
	fd = mkstemp(self->out);
	ASSERT_GE(fd, 0);
	close(fd);
	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv));
	ASSERT_EQ(0, pipe2(self->p, O_CLOEXEC));
	self->sock = sv[0];
	self->pid = cmd_start(argv, sv[1], NULL, &self->out_fd, &self->err_fd);
	ASSERT_GT(self->pid, 0);
	close(sv[1]);
}

FIXTURE_TEARDOWN(recv)
{
	unlink(self->out);
}

/* Hello accepted; the receiver waits for data on the pipe. */
static int valid_start(struct fake_hello *f, int sock, int rd)
{
	struct vsm_wire_msg m;

	fake_build(f, 2, 256 << 10, 256 << 10);
	fake_seal(f);
	if (send_fds(sock, f, sizeof(f->h) + 2 * sizeof(f->t[0]), &rd, 1))
		return -1;
	return expect_msg(sock, VSM_MSG_ACCEPT, &m);
}

TEST_F_TIMEOUT(recv, attack, 60)
{
	struct fake_hello f;
	size_t hl = sizeof(f.h) + sizeof(f.t[0]);
	int rd = self->p[0], wr = self->p[1], devnull = open("/dev/null", O_RDONLY);
	int two[2] = { rd, devnull };
	int q[2] = { -1, -1 }, fds3[3];	/* the second pipe */
	char big[4096] = { 0 };
	struct cmd_run r;
	struct stat st;

	fake_build(&f, 1, 64 << 10, 0);
	ASSERT_EQ(0, pipe2(q, O_CLOEXEC));
	fds3[0] = rd;
	fds3[1] = q[0];
	fds3[2] = devnull;
	switch (variant->a) {
	case A_TRUNCATED:
		fake_seal(&f);
		ASSERT_EQ(0, send_fds(self->sock, &f, 20, &rd, 1));
		close(self->sock);
		break;
	case A_GARBLED:
		fake_seal(&f);
		f.h.total_bytes ^= 1ULL << 40;
		ASSERT_EQ(0, send_fds(self->sock, &f, hl, &rd, 1));
		break;
	case A_MAGIC:
		f.h.magic = 0x50545448;	/* "HTTP" */
		fake_seal(&f);
		ASSERT_EQ(0, send_fds(self->sock, &f, hl, &rd, 1));
		break;
	case A_OVERSIZED:
		f.h.hello_size = sizeof(big);
		fake_seal(&f);
		memcpy(big, &f.h, sizeof(f.h));
		ASSERT_EQ(0, send_fds(self->sock, big, sizeof(big), &rd, 1));
		break;
	case A_VERSION:
		f.h.version = 1;	/* one pipe, no THP size: not ours any more */
		fake_seal(&f);
		ASSERT_EQ(0, send_fds(self->sock, &f, hl, &rd, 1));
		break;
	case A_SIZE_MISMATCH:
		fake_build(&f, 2, 4096, 4096);
		f.h.total_bytes = 3 * 4096;
		fake_seal(&f);
		ASSERT_EQ(0, send_fds(self->sock, &f, hl + sizeof(f.t[0]), &rd, 1));
		break;
	case A_COUNT_OVERFLOW:
		f.h.nr_regions = 0xffffffffu;
		fake_seal(&f);
		ASSERT_EQ(0, send_fds(self->sock, &f, hl, &rd, 1));
		break;
	case A_LEN_OVERFLOW:
		fake_build(&f, 2, 1ULL << 63, 1ULL << 63);	/* total wraps to 0... */
		f.h.total_bytes = 1ULL << 63;			/* ...so claim 2^63 */
		fake_seal(&f);
		ASSERT_EQ(0, send_fds(self->sock, &f, hl + sizeof(f.t[0]), &rd, 1));
		break;
	case A_ZERO_REGION:
		fake_build(&f, 1, 0, 0);
		f.h.total_bytes = 0;
		fake_seal(&f);
		ASSERT_EQ(0, send_fds(self->sock, &f, hl, &rd, 1));
		break;
	case A_NO_FD:
		fake_seal(&f);
		ASSERT_EQ(0, send_fds(self->sock, &f, hl, NULL, 0));
		break;
	case A_NOT_PIPE:
		fake_seal(&f);
		ASSERT_EQ(0, send_fds(self->sock, &f, hl, &devnull, 1));
		break;
	case A_WRITE_END:
		fake_seal(&f);
		ASSERT_EQ(0, send_fds(self->sock, &f, hl, &wr, 1));
		break;
	case A_TWO_FDS:
		fake_seal(&f);
		ASSERT_EQ(0, send_fds(self->sock, &f, hl, two, 2));
		break;
	case A_OVER_LIMIT:
		fake_build(&f, 1, 2 << 20, 0);
		fake_seal(&f);
		ASSERT_EQ(0, send_fds(self->sock, &f, hl, &rd, 1));
		break;
	case A_SOCKET_CLOSED:
		ASSERT_EQ(0, valid_start(&f, self->sock, rd));
		ASSERT_EQ(0, write_bytes(wr, 100 << 10));
		close(self->sock);
		break;
	case A_PIPE_CLOSED:
		ASSERT_EQ(0, valid_start(&f, self->sock, rd));
		ASSERT_EQ(0, write_bytes(wr, 100 << 10));
		close(wr);
		wr = -1;
		break;
	case A_EXTRA_DATA:
		ASSERT_EQ(0, valid_start(&f, self->sock, rd));
		close(rd);	/* so that the receiver's read end is the only one */
		rd = -1;
		ASSERT_EQ(0, write_bytes(wr, (512 << 10) + 100));
		close(wr);
		wr = -1;
		break;
	case A_STALL:
		ASSERT_EQ(0, valid_start(&f, self->sock, rd));
		break;
	case A_ABORT:
		ASSERT_EQ(0, valid_start(&f, self->sock, rd));
		ASSERT_EQ(0, write_bytes(wr, 100 << 10));
		ASSERT_EQ(WIRE_OK, wire_send_msg(self->sock, VSM_MSG_ABORT, VSM_ESYS, 100 << 10,
						 "disk on fire", 1000));
		break;
	case A_GARBAGE_MSG:
		ASSERT_EQ(0, valid_start(&f, self->sock, rd));
		ASSERT_EQ(0, write_bytes(wr, 100 << 10));
		memset(big, 0x41, sizeof(struct vsm_wire_msg));
		ASSERT_EQ(0, send_fds(self->sock, big, sizeof(struct vsm_wire_msg), NULL, 0));
		break;
	case A_PIPES2_ONE_FD:
		f.h.flags |= VSM_WIRE_F_PIPES2;
		fake_seal(&f);
		ASSERT_EQ(0, send_fds(self->sock, &f, hl, &rd, 1));
		break;
	case A_PIPES2_NOT_PIPE:
		f.h.flags |= VSM_WIRE_F_PIPES2;
		fake_seal(&f);
		ASSERT_EQ(0, send_fds(self->sock, &f, hl, two, 2));
		break;
	case A_PIPES2_THREE_FDS:
		f.h.flags |= VSM_WIRE_F_PIPES2;
		fake_seal(&f);
		ASSERT_EQ(0, send_fds(self->sock, &f, hl, fds3, 3));
		break;
	case A_PIPES2_WRONG_TURN:
	case A_PIPES2_EXTRA_DATA: {
		struct vsm_wire_msg m;

		/* 128 KiB: two turns of the announced 64 KiB pipe, one each. */
		fake_build(&f, 1, 128 << 10, 0);
		f.h.flags |= VSM_WIRE_F_PIPES2;
		fake_seal(&f);
		ASSERT_EQ(0, send_fds(self->sock, &f, hl, fds3, 2));
		ASSERT_EQ(0, expect_msg(self->sock, VSM_MSG_ACCEPT, &m));
		if (variant->a == A_PIPES2_WRONG_TURN) {
			ASSERT_EQ(0, write_bytes(q[1], 64 << 10));
			break;
		}
		close(rd);	/* the receiver's read ends are the only ones */
		rd = -1;
		close(q[0]);
		q[0] = -1;
		/* Room for all of it: no write here waits on the receiver. */
		ASSERT_LE(128 << 10, fcntl(q[1], F_SETPIPE_SZ, 128 << 10));
		ASSERT_EQ(0, write_bytes(wr, 64 << 10));
		ASSERT_EQ(0, write_bytes(q[1], (64 << 10) + 100));
		close(wr);
		wr = -1;
		close(q[1]);
		q[1] = -1;
		break;
	}
	}
	/* Our copies go now: only the receiver's may keep the pipes open. */
	if (rd >= 0)
		close(rd);
	if (q[0] >= 0)
		close(q[0]);
	cmd_finish(&r, self->pid, BOUND_MS, self->out_fd, self->err_fd);
	if (wr >= 0)
		close(wr);
	if (q[1] >= 0)
		close(q[1]);
	close(devnull);
	close(self->sock);
	ASSERT_FALSE(r.timed_out) TH_LOG("receiver hung");
	ASSERT_FALSE(sanitizer_report(r.err)) TH_LOG("%s", r.err);
	ASSERT_EQ(3, r.status) TH_LOG("stderr: %s", r.err);
	ASSERT_NE(NULL, strstr(r.err, variant->expect)) TH_LOG("stderr: %s", r.err);
	ASSERT_EQ(0, stat(self->out, &st));
	ASSERT_EQ(0, st.st_size) TH_LOG("delivered %lld bytes", (long long)st.st_size);
}

/* A real sender that SIGKILLs itself once @at bytes have left it. */
struct killer {
	uint64_t at;
};

static int kill_at(void *arg, uint64_t done, uint64_t total)
{
	struct killer *k = arg;

	(void)total;
	if (done >= k->at)
		kill(getpid(), SIGKILL);
	return 0;
}

static void doomed_sender(int sock, uint64_t at, size_t len)
{
	struct killer k = { .at = at };
	struct vsm_send_opts o = { .timeout_ms = 5000, .checksum = true,
				   .pipe_size = 64 << 10,
				   .progress = kill_at, .progress_arg = &k };
	struct vsm_region r = { vsm_alloc(len, false), len, 0 };
	struct vsm_report rep;

	if (!r.addr)
		_exit(10);
	fill_pattern(r.addr, len, 0, 1);
	if (at == 0)	/* killed before saying anything */
		kill(getpid(), SIGKILL);
	vsm_send(sock, &r, 1, &o, &rep);
	_exit(0);	/* not reached unless @at > len */
}

FIXTURE(killed) {};
FIXTURE_SETUP(killed) {}
FIXTURE_TEARDOWN(killed) {}

/* Killed at seeded random points: the receiver fails cleanly every time. */
TEST_F_TIMEOUT(killed, sender_at_random_points, 240)
{
	const size_t len = 4 << 20;
	unsigned int seed = getenv("VMSPLICE_TEST_SEED") ? atoi(getenv("VMSPLICE_TEST_SEED")) : 20261201;
	char out[] = "/tmp/vsm-killed.XXXXXX";

	TH_LOG("seed %u (VMSPLICE_TEST_SEED to replay)", seed);
	srandom(seed);
	for (int i = 0; i < 8; i++) {
		/* Point 0: before the header; others: anywhere in the data. */
		uint64_t at = i == 0 ? 0 : 1 + random() % (len - 1);
		char *argv[] = { VSM_ASAN_CMD, "recv", "--fd", "3", "-t", "5", "-q",
				 "-o", out, NULL };
		struct cmd_run r;
		struct stat st;
		int sv[2], fd, o, e;
		pid_t rpid, spid;
		bool to;

		fd = mkstemp(out);
		ASSERT_GE(fd, 0);
		close(fd);
		ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv));
		rpid = cmd_start(argv, sv[1], NULL, &o, &e);
		close(sv[1]);
		spid = fork();
		ASSERT_GE(spid, 0);
		if (spid == 0)
			doomed_sender(sv[0], at, len);
		close(sv[0]);
		ASSERT_EQ(128 + SIGKILL, decode_status(wait_bounded(spid, BOUND_MS, &to)));
		cmd_finish(&r, rpid, BOUND_MS, o, e);
		ASSERT_FALSE(r.timed_out) TH_LOG("receiver hung (kill at %llu)",
						 (unsigned long long)at);
		ASSERT_FALSE(sanitizer_report(r.err)) TH_LOG("%s", r.err);
		ASSERT_EQ(3, r.status) TH_LOG("kill at %llu: %s", (unsigned long long)at, r.err);
		ASSERT_TRUE(strstr(r.err, "went away") || strstr(r.err, "truncated") ||
			    strstr(r.err, "closed"))
			TH_LOG("kill at %llu: %s", (unsigned long long)at, r.err);
		ASSERT_EQ(0, stat(out, &st));
		ASSERT_EQ(0, st.st_size);
		unlink(out);
		strcpy(out, "/tmp/vsm-killed.XXXXXX");
	}
}

/* A real receiver that SIGKILLs itself once @at bytes arrived. */
static void doomed_receiver(int sock, uint64_t at)
{
	struct killer k = { .at = at };
	struct vsm_recv_opts o = { .timeout_ms = 5000, .progress = kill_at, .progress_arg = &k };
	struct vsm_received got;
	struct vsm_report rep;

	if (at == 0)	/* killed before reading anything */
		kill(getpid(), SIGKILL);
	vsm_recv(sock, &o, &got, &rep);
	_exit(0);
}

/* The receiver killed at seeded random points: the sender reports it, exactly. */
TEST_F_TIMEOUT(killed, receiver_at_random_points, 240)
{
	const size_t len = 4 << 20;
	unsigned int seed = getenv("VMSPLICE_TEST_SEED") ? atoi(getenv("VMSPLICE_TEST_SEED")) : 20261201;
	struct vsm_region r = { vsm_alloc(len, false), len, 0 };

	ASSERT_NE(NULL, r.addr);
	TH_LOG("seed %u (VMSPLICE_TEST_SEED to replay)", seed);
	srandom(seed + 1);
	for (int i = 0; i < 8; i++) {
		uint64_t at = i == 0 ? 0 : 1 + random() % (len - 1);
		struct vsm_send_opts o = { .timeout_ms = 5000, .pipe_size = 64 << 10 };
		struct vsm_report rep;
		int sv[2], before = count_fds(), ret;
		double t0 = wire_now();
		pid_t pid;
		bool to;

		fill_pattern(r.addr, len, 0, i);
		ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv));
		pid = fork();
		ASSERT_GE(pid, 0);
		if (pid == 0) {
			close(sv[0]);
			doomed_receiver(sv[1], at);
		}
		close(sv[1]);
		ret = vsm_send(sv[0], &r, 1, &o, &rep);
		ASSERT_EQ(128 + SIGKILL, decode_status(wait_bounded(pid, BOUND_MS, &to)));
		close(sv[0]);
		ASSERT_EQ(-1, ret) TH_LOG("kill at %llu", (unsigned long long)at);
		ASSERT_EQ(VSM_ECLOSED, rep.error)
			TH_LOG("kill at %llu: %s", (unsigned long long)at, rep.reason);
		/* Never more than was there; at least what the receiver saw. */
		ASSERT_LE(rep.bytes, len);
		if (at) {
			ASSERT_GE(rep.bytes, at);
		} else {
			ASSERT_EQ(0, rep.bytes);
		}
		/* Noticed at once, not after a timeout. */
		ASSERT_LT(wire_now() - t0, 4.0);
		ASSERT_EQ(before, count_fds());
	}
	vsm_free(r.addr, len);
}

/* ---- a fake receiver against vsm_send() ---- */

enum refusal {
	S_REFUSE,		/* reads the header, says no */
	S_CLOSE,		/* reads the header, hangs up */
	S_STALL,		/* accepts, never reads the pipe */
	S_PARTIAL_ABORT,	/* takes some, then aborts with its count */
	S_GARBLED_REPLY,	/* answers garbage */
	S_NO_DONE,		/* takes everything, never confirms */
};

struct send_out {
	int ret;
	struct vsm_report rep;
	int fds_before, fds_after;
};

FIXTURE(send)
{
	int sock;
	int res;		/* the sender child's report */
	pid_t pid;
	struct send_out s;
	int pipe_rd[2];		/* the pipes we got */
	int nr_pipes;
	struct vsm_wire_hello h;
};

FIXTURE_VARIANT(send)
{
	enum refusal how;
	enum vsm_error error;
	const char *expect;
	unsigned int pipes;	/* vsm_send_opts.pipes */
};

FIXTURE_VARIANT_ADD(send, refused) { S_REFUSE, VSM_EREJECT, "no thanks", 0 };
FIXTURE_VARIANT_ADD(send, hung_up) { S_CLOSE, VSM_ECLOSED, "closed", 0 };
FIXTURE_VARIANT_ADD(send, stalled) { S_STALL, VSM_ETIMEDOUT, "took nothing", 0 };
FIXTURE_VARIANT_ADD(send, partial_abort) { S_PARTIAL_ABORT, VSM_EPEER, "enough", 0 };
FIXTURE_VARIANT_ADD(send, garbled_reply) { S_GARBLED_REPLY, VSM_EPROTO, "garbled", 0 };
FIXTURE_VARIANT_ADD(send, no_confirmation) { S_NO_DONE, VSM_ECLOSED, "closed the connection", 0 };
FIXTURE_VARIANT_ADD(send, stalled_one_pipe) { S_STALL, VSM_ETIMEDOUT, "took nothing", 1 };
FIXTURE_VARIANT_ADD(send, no_confirmation_one_pipe) {
	S_NO_DONE, VSM_ECLOSED, "closed the connection", 1 };

#define SEND_LEN	(2UL << 20)

FIXTURE_SETUP(send)
{
	int sv[2], res[2];

	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv));
	ASSERT_EQ(0, pipe2(res, O_CLOEXEC));
	self->pid = fork();
	ASSERT_GE(self->pid, 0);
	if (self->pid == 0) {
		struct vsm_send_opts o = { .timeout_ms = 1000, .pipe_size = 64 << 10,
					   .pipes = variant->pipes };
		struct vsm_region r = { vsm_alloc(SEND_LEN, false), SEND_LEN, 0 };
		struct send_out out;

		close(sv[0]);
		close(res[0]);
		fill_pattern(r.addr, SEND_LEN, 0, 2);
		out.fds_before = count_fds();
		out.ret = vsm_send(sv[1], &r, 1, &o, &out.rep);
		out.fds_after = count_fds();
		_exit(write(res[1], &out, sizeof(out)) == sizeof(out) ? 0 : 1);
	}
	close(sv[1]);
	close(res[1]);
	self->sock = sv[0];
	self->res = res[0];
	self->pipe_rd[0] = self->pipe_rd[1] = -1;
}

FIXTURE_TEARDOWN(send)
{
	for (int i = 0; i < self->nr_pipes; i++)
		if (self->pipe_rd[i] >= 0)
			close(self->pipe_rd[i]);
	close(self->sock);
	close(self->res);
}

/* The hello, with as many pipes as its flags announce and no other. */
static int read_hello(int sock, struct vsm_wire_hello *h, int *fds, int *nr)
{
	struct vsm_wire_region t;
	int extra = 0;

	*nr = 0;
	if (wire_recv(sock, h, sizeof(*h), NULL, fds, 2, nr, &extra, 5000) != WIRE_OK ||
	    extra || *nr != (h->flags & VSM_WIRE_F_PIPES2 ? 2 : 1))
		return -1;
	return wire_recv(sock, &t, sizeof(t), NULL, NULL, 0, NULL, &extra, 5000) == WIRE_OK ? 0 : -1;
}

/* Read @len bytes of the sender's schedule: 64 KiB turns, pipe by pipe. */
static ssize_t read_turns(int *fds, int nr, char *buf, size_t len)
{
	size_t taken = 0;

	while (taken < len) {
		int fd = fds[(taken / (64 << 10)) % nr];
		size_t turn_end = (taken / (64 << 10) + 1) * (64 << 10);
		ssize_t n = read(fd, buf + taken, (turn_end < len ? turn_end : len) - taken);

		if (n <= 0)
			return -1;
		taken += n;
	}
	return taken;
}

TEST_F_TIMEOUT(send, refusal, 60)
{
	struct vsm_wire_msg m;
	char garbage[sizeof(struct vsm_wire_msg)];
	size_t taken = 0;
	int inpipe = -1;
	bool to;

	ASSERT_EQ(0, read_hello(self->sock, &self->h, self->pipe_rd, &self->nr_pipes));
	ASSERT_EQ(variant->pipes ? variant->pipes : 2, self->nr_pipes);
	ASSERT_EQ(64 << 10, self->h.pipe_size);
	ASSERT_EQ(SEND_LEN, self->h.total_bytes);
	switch (variant->how) {
	case S_REFUSE:
		ASSERT_EQ(WIRE_OK, wire_send_msg(self->sock, VSM_MSG_ABORT, VSM_EREJECT, 0,
						 "no thanks", 1000));
		break;
	case S_CLOSE:
		close(self->sock);
		self->sock = open("/dev/null", O_RDONLY);
		break;
	case S_STALL:
		ASSERT_EQ(WIRE_OK, wire_send_msg(self->sock, VSM_MSG_ACCEPT, 0, 0, NULL, 1000));
		/* The sender gives up and says how much it gave: all in the pipes. */
		ASSERT_EQ(0, expect_msg(self->sock, VSM_MSG_ABORT, &m));
		inpipe = 0;
		for (int i = 0; i < self->nr_pipes; i++) {
			int n = 0;

			ASSERT_EQ(0, ioctl(self->pipe_rd[i], FIONREAD, &n));
			ASSERT_EQ(64 << 10, n);	/* each pipe full, a turn each */
			inpipe += n;
		}
		ASSERT_EQ((uint64_t)inpipe, m.bytes);
		break;
	case S_PARTIAL_ABORT: {
		static char buf[64 << 10];

		ASSERT_EQ(WIRE_OK, wire_send_msg(self->sock, VSM_MSG_ACCEPT, 0, 0, NULL, 1000));
		ASSERT_EQ(sizeof(buf), read_turns(self->pipe_rd, self->nr_pipes, buf,
						  sizeof(buf)));
		taken = sizeof(buf);
		ASSERT_EQ(WIRE_OK, wire_send_msg(self->sock, VSM_MSG_ABORT, VSM_ESYS, taken,
						 "enough", 1000));
		for (int i = 0; i < self->nr_pipes; i++) {
			close(self->pipe_rd[i]);
			self->pipe_rd[i] = -1;
		}
		break;
	}
	case S_GARBLED_REPLY:
		memset(garbage, 0x5a, sizeof(garbage));
		ASSERT_EQ(WIRE_OK, wire_send(self->sock, garbage, sizeof(garbage), NULL, 0, 1000));
		break;
	case S_NO_DONE: {
		char *buf = malloc(SEND_LEN);

		ASSERT_NE(NULL, buf);
		ASSERT_EQ(WIRE_OK, wire_send_msg(self->sock, VSM_MSG_ACCEPT, 0, 0, NULL, 1000));
		/* In the order given, turn by turn: the pattern proves the schedule. */
		ASSERT_EQ(SEND_LEN, read_turns(self->pipe_rd, self->nr_pipes, buf, SEND_LEN));
		taken = SEND_LEN;
		ASSERT_EQ(-1, diff_pattern(buf, SEND_LEN, 0, 2));
		free(buf);
		close(self->sock);
		self->sock = open("/dev/null", O_RDONLY);
		break;
	}
	}
	ASSERT_EQ(0, decode_status(wait_bounded(self->pid, BOUND_MS, &to)));
	ASSERT_FALSE(to);
	ASSERT_EQ(sizeof(self->s), read(self->res, &self->s, sizeof(self->s)));
	ASSERT_EQ(-1, self->s.ret);
	ASSERT_EQ(variant->error, self->s.rep.error) TH_LOG("%s", self->s.rep.reason);
	ASSERT_NE(NULL, strstr(self->s.rep.reason, variant->expect))
		TH_LOG("%s", self->s.rep.reason);
	/* Exactly which bytes left the sender. */
	switch (variant->how) {
	case S_REFUSE:
	case S_CLOSE:
	case S_GARBLED_REPLY:
		ASSERT_EQ(0, self->s.rep.bytes);
		break;
	case S_STALL:
		ASSERT_EQ((uint64_t)inpipe, self->s.rep.bytes);
		ASSERT_TRUE(self->s.rep.local_abort);
		break;
	case S_PARTIAL_ABORT:
		ASSERT_EQ(taken, self->s.rep.acked);
		ASSERT_GE(self->s.rep.bytes, taken);
		break;
	case S_NO_DONE:
		ASSERT_EQ(SEND_LEN, self->s.rep.bytes);
		break;
	}
	/* No descriptor left behind by the failed hand-off. */
	ASSERT_EQ(self->s.fds_before, self->s.fds_after);
}

/* ---- leaks in this process after failed receptions ---- */

/*
 * Rounds: 0 refused at the header; 1 accepted, the pipe closed at once;
 * 2 closed half-way; with two pipes announced: 3 one descriptor passed,
 * 4 three passed, 5 both passed, closed half-way.
 */
TEST(recv_failures_leak_no_descriptor_or_region)
{
	for (int round = 0; round < 6; round++) {
		struct vsm_recv_opts o = { .timeout_ms = 500 };
		struct vsm_received got;
		struct vsm_report rep;
		struct fake_hello f;
		int sv[2], p[2], q[2], fds[3], nfds = 1, before;

		before = count_fds();
		ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv));
		ASSERT_EQ(0, pipe2(p, O_CLOEXEC));
		ASSERT_EQ(0, pipe2(q, O_CLOEXEC));
		fds[0] = p[0];
		fds[1] = q[0];
		fds[2] = q[0];
		fake_build(&f, 1, 64 << 10, 0);
		if (round == 0)
			f.h.version = 9;	/* refused at the header */
		if (round >= 3) {
			f.h.flags |= VSM_WIRE_F_PIPES2;
			nfds = round == 3 ? 1 : round == 4 ? 3 : 2;
		}
		fake_seal(&f);
		ASSERT_EQ(0, send_fds(sv[1], &f, sizeof(f.h) + sizeof(f.t[0]), fds, nfds));
		close(p[0]);
		close(q[0]);
		if (round == 2 || round == 5)	/* accepted, then closed half-way */
			ASSERT_EQ(0, write_bytes(p[1], 32 << 10));
		close(p[1]);
		close(q[1]);
		ASSERT_EQ(-1, vsm_recv(sv[0], &o, &got, &rep));
		ASSERT_NE(VSM_OK, rep.error);
		if (round == 3 || round == 4)
			ASSERT_NE(NULL, strstr(rep.reason, "expected two pipes")) TH_LOG("%s", rep.reason);
		if (round == 2 || round == 5) {
			/* What did arrive is there, the rest of the region zero. */
			ASSERT_EQ(32 << 10, rep.bytes);
			ASSERT_EQ(1, got.nr);
			ASSERT_EQ(0, ((char *)got.regs[0].addr)[40 << 10]);
			ASSERT_EQ((char)0xab, ((char *)got.regs[0].addr)[100]);
		}
		vsm_recv_free(&got);
		ASSERT_EQ(NULL, got.regs);
		close(sv[0]);
		close(sv[1]);
		ASSERT_EQ(before, count_fds()) TH_LOG("round %d", round);
	}
}
/*
 * The schedule is the header's: a huge region is cut by the sender's THP
 * size (64 KiB here, not this machine's), a turn a pipe.  A receiver that
 * cut it by its own THP size would read past pipe 0's two turns into EOF.
 */
TEST(recv_follows_the_header_schedule)
{
	const size_t turn = 64 << 10, len = 4 * turn;
	struct vsm_recv_opts o = { .timeout_ms = 5000 };
	struct vsm_received got;
	struct vsm_report rep;
	struct fake_hello f;
	int sv[2], p[2][2], fds[2];
	char *src = malloc(len);

	ASSERT_NE(NULL, src);
	fill_pattern(src, len, 0, 7);
	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv));
	for (int i = 0; i < 2; i++) {
		ASSERT_EQ(0, pipe2(p[i], O_CLOEXEC));
		/* Room for both of its turns: nothing here waits on the receiver. */
		ASSERT_LE((int)(2 * turn), fcntl(p[i][1], F_SETPIPE_SZ, (int)(2 * turn)));
		fds[i] = p[i][0];
	}
	fake_build(&f, 1, len, 0);
	f.t[0].flags = VSM_REGION_HUGE;
	f.h.flags |= VSM_WIRE_F_PIPES2;
	f.h.pipe_size = PS;		/* one slot: one THP a turn */
	f.h.thp_size = turn;
	fake_seal(&f);
	ASSERT_EQ(0, send_fds(sv[1], &f, sizeof(f.h) + sizeof(f.t[0]), fds, 2));
	for (size_t k = 0; k < len / turn; k++)
		ASSERT_EQ((ssize_t)turn, write(p[k % 2][1], src + k * turn, turn));
	for (int i = 0; i < 2; i++) {
		close(p[i][0]);
		close(p[i][1]);
	}
	ASSERT_EQ(0, vsm_recv(sv[0], &o, &got, &rep)) TH_LOG("%s", rep.reason);
	ASSERT_EQ(len, rep.bytes);
	ASSERT_EQ(2, rep.nr_pipes);
	ASSERT_EQ(1, got.nr);
	ASSERT_EQ(0, memcmp(src, got.regs[0].addr, len));
	vsm_recv_free(&got);
	close(sv[0]);
	close(sv[1]);
	free(src);
}

TEST_HARNESS_MAIN
