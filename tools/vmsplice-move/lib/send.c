// SPDX-License-Identifier: GPL-2.0
/* vsm_send(): the giving side of a hand-off. */
#define _GNU_SOURCE
#include "pipesize.h"
#include "wire.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

struct sender {
	int sock;
	int pipe_wr[VSM_WIRE_MAX_PIPES];
	unsigned int nr_pipes;
	uint64_t turn;		/* chunks given: the next goes to turn % nr_pipes */
	int timeout;
	unsigned int flags;	/* vmsplice flags for the data */
	const struct vsm_send_opts *o;
	struct vsm_report *rep;
	sigset_t pipe_set;
	bool sigpipe_was_pending;
};

/* Tell the receiver why we stop (best effort: it may be gone). */
static void tell_abort(struct sender *s)
{
	wire_send_msg(s->sock, VSM_MSG_ABORT, s->rep->error, s->rep->bytes,
		      s->rep->reason, s->timeout);
}

/* A SIGPIPE this thread caused is ours to consume: the caller never sees it. */
static void eat_sigpipe(struct sender *s)
{
	struct timespec zero = { 0 };

	if (!s->sigpipe_was_pending)
		sigtimedwait(&s->pipe_set, NULL, &zero);
}

/* The receiver spoke during the data phase: an abort, or a protocol error. */
static void peer_spoke(struct sender *s, const char *when)
{
	struct vsm_wire_msg m;
	char why[160];
	enum wire_status st;

	st = wire_recv_msg(s->sock, &m, why, sizeof(why), s->timeout);
	if (st == WIRE_OK && m.type == VSM_MSG_ABORT) {
		s->rep->acked = m.bytes;
		rep_fail(s->rep, m.error == VSM_EVERIFY ? VSM_EVERIFY : VSM_EPEER, 0,
			 "receiver aborted %s: %s", when, m.reason);
	} else if (st == WIRE_OK) {
		rep_fail(s->rep, VSM_EPROTO, 0,
			 "receiver sent message type %u %s", m.type, when);
	} else if (st == WIRE_EOF) {
		rep_fail(s->rep, VSM_ECLOSED, 0, "receiver went away %s", when);
	} else {
		rep_fail(s->rep, st == WIRE_TIMEOUT ? VSM_ETIMEDOUT : VSM_EPROTO,
			 errno, "%s", why);
	}
}

/*
 * Give bytes [@off, @off + @len) of @r, one chunk of the schedule, into
 * the pipe whose turn it is, never blocking without a timeout.
 */
static int give_chunk(struct sender *s, const struct vsm_region *r,
		      size_t off, size_t len, uint64_t total)
{
	int wr = s->pipe_wr[s->turn % s->nr_pipes];
	size_t end = off + len;

	while (off < end) {
		struct iovec iov = { (char *)r->addr + off, end - off };
		ssize_t n = vmsplice(wr, &iov, 1, s->flags | SPLICE_F_NONBLOCK);

		if (n > 0) {
			/* These bytes left us now, whatever happens next. */
			off += n;
			s->rep->bytes += n;
			if (s->o->progress &&
			    s->o->progress(s->o->progress_arg, s->rep->bytes, total)) {
				rep_fail(s->rep, VSM_ECANCEL, 0, "cancelled by the sender");
				return -1;
			}
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN) {
			int r2 = wire_poll2(wr, POLLOUT, s->sock, s->timeout);

			if (r2 < 0) {
				rep_fail(s->rep, VSM_ESYS, errno, "poll: %s", strerror(errno));
				return -1;
			}
			if (r2 == 0) {
				rep_fail(s->rep, VSM_ETIMEDOUT, ETIMEDOUT,
					 "receiver took nothing for %d ms (%llu of %llu bytes sent)",
					 s->timeout, (unsigned long long)s->rep->bytes,
					 (unsigned long long)total);
				return -1;
			}
			if (r2 & 2) {
				peer_spoke(s, "during the transfer");
				return -1;
			}
			continue;
		}
		if (n < 0 && errno == EPIPE) {
			eat_sigpipe(s);
			/* Its reason, if it left one, says more than EPIPE. */
			if (wire_poll2(s->sock, POLLIN, -1, s->timeout) > 0)
				peer_spoke(s, "and closed the pipe");
			rep_fail(s->rep, VSM_ECLOSED, EPIPE,
				 "receiver closed the pipe after %llu of %llu bytes",
				 (unsigned long long)s->rep->bytes, (unsigned long long)total);
			return -1;
		}
		/* EFAULT, ENOMEM...: our own memory; 0 would loop forever. */
		rep_fail(s->rep, VSM_ESYS, n < 0 ? errno : EIO,
			 "vmsplice at region byte %zu: %s", off,
			 n < 0 ? strerror(errno) : "no progress");
		return -1;
	}
	s->turn++;
	return 0;
}

/* Give one region, chunk by chunk of the schedule (wire_chunk()). */
static int give_region(struct sender *s, const struct vsm_region *r,
		       uint64_t total)
{
	size_t cap = wire_chunk(s->rep->pipe_size, sysconf(_SC_PAGESIZE),
				r->flags & VSM_REGION_HUGE ? vsm_thp_size() : 0);

	for (size_t off = 0; off < r->len; off += cap)
		if (give_chunk(s, r, off, r->len - off < cap ? r->len - off : cap, total))
			return -1;
	return 0;
}

static int check_args(const struct vsm_region *regs, unsigned int nr,
		      struct vsm_report *rep, uint64_t *total)
{
	*total = 0;
	if (!regs || !nr || nr > UINT32_MAX / sizeof(struct vsm_wire_region)) {
		rep_fail(rep, VSM_ESYS, EINVAL, "need 1 to %zu regions, got %u",
			 UINT32_MAX / sizeof(struct vsm_wire_region), nr);
		return -1;
	}
	for (unsigned int i = 0; i < nr; i++) {
		if (!regs[i].len || !regs[i].addr ||
		    regs[i].len > UINT64_MAX - *total ||
		    (regs[i].flags & ~VSM_REGION_HUGE)) {
			rep_fail(rep, VSM_ESYS, EINVAL,
				 "region %u: empty, NULL, unknown flags or too large", i);
			return -1;
		}
		*total += regs[i].len;
	}
	return 0;
}

static int send_hello(struct sender *s, const struct vsm_region *regs,
		      unsigned int nr, uint64_t total, const int *pipe_rd)
{
	struct vsm_wire_hello *h;
	struct vsm_wire_region *t;
	size_t len = sizeof(*h) + nr * sizeof(*t);
	enum wire_status st;
	char *buf = calloc(1, len);

	if (!buf) {
		rep_fail(s->rep, VSM_ESYS, errno, "out of memory");
		return -1;
	}
	h = (void *)buf;
	t = (void *)(buf + sizeof(*h));
	for (unsigned int i = 0; i < nr; i++) {
		t[i].len = regs[i].len;
		t[i].flags = regs[i].flags;
		if (s->o->checksum)
			t[i].sum = vsm_checksum(regs[i].addr, regs[i].len);
	}
	h->magic = VSM_MAGIC_HELLO;
	h->version = VSM_PROTO_VERSION;
	h->hello_size = sizeof(*h);
	h->flags = (s->o->checksum ? VSM_WIRE_F_CHECKSUM : 0) |
		   (s->flags & SPLICE_F_UNMAP ? VSM_WIRE_F_UNMAP : 0) |
		   (s->nr_pipes == 2 ? VSM_WIRE_F_PIPES2 : 0);
	h->page_size = sysconf(_SC_PAGESIZE);
	h->nr_regions = nr;
	h->region_size = sizeof(*t);
	h->total_bytes = total;
	h->pipe_size = s->rep->pipe_size;
	h->thp_size = vsm_thp_size();
	h->table_sum = vsm_checksum(t, nr * sizeof(*t));
	h->hello_sum = vsm_checksum(h, sizeof(*h));
	st = wire_send(s->sock, buf, len, pipe_rd, s->nr_pipes, s->timeout);
	free(buf);
	if (st == WIRE_OK)
		return 0;
	if (st == WIRE_EOF)
		rep_fail(s->rep, VSM_ECLOSED, EPIPE, "receiver closed the connection before the header");
	else if (st == WIRE_TIMEOUT)
		rep_fail(s->rep, VSM_ETIMEDOUT, ETIMEDOUT, "receiver does not read the header (%d ms)",
			 s->timeout);
	else
		rep_fail(s->rep, VSM_ESYS, errno, "sending the header: %s", strerror(errno));
	return -1;
}

/* The receiver's verdict on the header, or its final word after the data. */
static int wait_reply(struct sender *s, int want, const char *when)
{
	struct vsm_wire_msg m;
	char why[160];
	enum wire_status st = wire_recv_msg(s->sock, &m, why, sizeof(why), s->timeout);

	if (st != WIRE_OK) {
		rep_fail(s->rep, st == WIRE_TIMEOUT ? VSM_ETIMEDOUT :
			 st == WIRE_EOF ? VSM_ECLOSED : VSM_EPROTO, errno,
			 "%s %s", why, when);
		return -1;
	}
	if (m.type == VSM_MSG_ABORT) {
		s->rep->acked = m.bytes;
		rep_fail(s->rep, want == VSM_MSG_ACCEPT ? VSM_EREJECT :
			 m.error == VSM_EVERIFY ? VSM_EVERIFY : VSM_EPEER, 0,
			 "receiver %s: %s", want == VSM_MSG_ACCEPT ? "refused" : "aborted",
			 m.reason);
		return -1;
	}
	if (m.type != want) {
		rep_fail(s->rep, VSM_EPROTO, EPROTO, "receiver sent message type %u %s",
			 m.type, when);
		return -1;
	}
	if (want == VSM_MSG_DONE)
		s->rep->acked = m.bytes;
	return 0;
}

/* Close what is open of @fd[0..@nr). */
static void close_fds(int *fd, unsigned int nr)
{
	for (unsigned int i = 0; i < nr; i++) {
		if (fd[i] >= 0)
			close(fd[i]);
		fd[i] = -1;
	}
}

/*
 * The pipes, each as large as asked, and which way the pages will go.
 * One size for both, announced as the schedule's chunk: near the user's
 * pipe-user-pages limit the second may grow less than the first, and a
 * turn larger than its pipe would make the two sides take turns again.
 */
static int make_pipes(struct sender *s, int *rd)
{
	struct vsm_report *rep = s->rep;

	for (unsigned int i = 0; i < s->nr_pipes; i++) {
		int p[2];
		size_t sz;

		if (pipe2(p, O_CLOEXEC)) {
			rep_fail(rep, VSM_ESYS, errno, "pipe: %s", strerror(errno));
			return -1;
		}
		rd[i] = p[0];
		s->pipe_wr[i] = p[1];
		sz = vsmi_pipe_grow(p[1], i ? rep->pipe_size : s->o->pipe_size);
		if (i == 0 || sz < rep->pipe_size)
			rep->pipe_size = sz;
	}
	/* Shrinking an empty pipe to a size it had room for cannot fail. */
	if (s->nr_pipes > 1 &&
	    fcntl(s->pipe_wr[0], F_SETPIPE_SZ, (int)rep->pipe_size) < 0) {
		rep_fail(rep, VSM_ESYS, errno, "F_SETPIPE_SZ: %s", strerror(errno));
		return -1;
	}

	s->flags = SPLICE_F_GIFT;
	rep->path = VSM_PATH_COPY;
	if (s->o->copy) {
		snprintf(rep->path_why, sizeof(rep->path_why), "copy requested");
	} else if (vsm_unmap_supported(s->pipe_wr[0]) == 1) {
		s->flags |= SPLICE_F_UNMAP;
		rep->path = VSM_PATH_MOVE;
	} else {
		snprintf(rep->path_why, sizeof(rep->path_why),
			 "kernel rejects SPLICE_F_UNMAP: no vmsplice move support");
	}
	return 0;
}

int vsm_send(int sock, const struct vsm_region *regs, unsigned int nr,
	     const struct vsm_send_opts *opts, struct vsm_report *rep)
{
	static const struct vsm_send_opts defaults;
	struct sender s = { .sock = sock, .pipe_wr = { -1, -1 }, .rep = rep };
	struct vsm_stats before, after;
	int rd[VSM_WIRE_MAX_PIPES] = { -1, -1 };
	sigset_t old, pending;
	uint64_t total;
	size_t page = sysconf(_SC_PAGESIZE);
	double t0;
	int ret = -1;

	memset(rep, 0, sizeof(*rep));
	s.o = opts ? opts : &defaults;
	s.timeout = wire_timeout(s.o->timeout_ms);
	if (s.o->pipes > VSM_WIRE_MAX_PIPES) {
		rep_fail(rep, VSM_ESYS, EINVAL, "%u pipes: one or two", s.o->pipes);
		return -1;
	}
	s.nr_pipes = s.o->pipes ? s.o->pipes : VSM_WIRE_MAX_PIPES;
	if (check_args(regs, nr, rep, &total))
		return -1;
	rep->nr_regions = nr;
	rep->total_bytes = total;
	rep->nr_pipes = s.nr_pipes;

	/* EPIPE must come back as an error, not kill the caller. */
	sigemptyset(&s.pipe_set);
	sigaddset(&s.pipe_set, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &s.pipe_set, &old);
	sigpending(&pending);
	s.sigpipe_was_pending = sigismember(&pending, SIGPIPE);

	if (make_pipes(&s, rd))
		goto out;
	if (send_hello(&s, regs, nr, total, rd))
		goto out;
	/* The receiver's now; we must not read our gift back. */
	close_fds(rd, s.nr_pipes);
	if (wait_reply(&s, VSM_MSG_ACCEPT, "after the header"))
		goto out;

	vsm_stats_read(&before);
	t0 = wire_now();
	for (unsigned int i = 0; i < nr; i++)
		if (give_region(&s, &regs[i], total))
			goto abort;
	/* EOF after the last byte: the receiver checks nothing else follows. */
	close_fds(s.pipe_wr, s.nr_pipes);
	rep->seconds = wire_now() - t0;
	vsm_stats_read(&after);
	vsm_stats_delta(&before, &after, &rep->stats);
	rep->counters_exclusive = rep->stats.unmapped <=
		(long long)((total + page - 1) / page + nr);
	if (wait_reply(&s, VSM_MSG_DONE, "after the data"))
		goto out;
	if (rep->acked != total) {
		rep_fail(rep, VSM_EPROTO, EPROTO, "receiver confirmed %llu of %llu bytes",
			 (unsigned long long)rep->acked, (unsigned long long)total);
		goto out;
	}
	ret = 0;
	goto out;
abort:
	rep->seconds = wire_now() - t0;
out:
	/* Our own decision (not the peer's word): tell it why we stop. */
	rep->local_abort = ret && (rep->error == VSM_ESYS ||
				   rep->error == VSM_ETIMEDOUT ||
				   rep->error == VSM_EPROTO ||
				   rep->error == VSM_ECANCEL);
	if (rep->local_abort)
		tell_abort(&s);
	close_fds(rd, VSM_WIRE_MAX_PIPES);
	close_fds(s.pipe_wr, VSM_WIRE_MAX_PIPES);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return ret;
}
