// SPDX-License-Identifier: GPL-2.0
/* Socket plumbing of the hand-off: bounded waits, descriptor passing. */
#define _GNU_SOURCE
#include "wire.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#define DEFAULT_TIMEOUT_MS	10000
#define MAX_PASSED_FDS		16

double wire_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

int wire_timeout(int timeout_ms)
{
	if (timeout_ms == 0)
		return DEFAULT_TIMEOUT_MS;
	return timeout_ms < 0 ? -1 : timeout_ms;
}

int wire_ms_left(double end, int timeout_ms)
{
	double left;

	if (timeout_ms < 0)
		return -1;
	left = (end - wire_now()) * 1e3;
	return left > 0 ? (int)(left + 0.999) : 0;
}

int wire_poll2(int fd, short events, int fd2, int timeout_ms)
{
	struct pollfd p[2] = {
		{ .fd = fd, .events = events },
		{ .fd = fd2, .events = POLLIN },
	};
	double end = wire_now() + timeout_ms / 1e3;

	for (;;) {
		int n = poll(p, fd2 >= 0 ? 2 : 1, wire_ms_left(end, timeout_ms));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		if (n == 0)
			return 0;
		/* Errors and hang-ups count as ready: the next call reports them. */
		return (p[0].revents ? 1 : 0) | (fd2 >= 0 && p[1].revents ? 2 : 0);
	}
}

enum wire_status wire_send(int sock, const void *buf, size_t len,
			   const int *fds, int nr_fds, int timeout_ms)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * VSM_WIRE_MAX_PIPES)];
		struct cmsghdr align;
	} ctl;
	const char *p = buf;

	if (nr_fds < 0 || nr_fds > VSM_WIRE_MAX_PIPES) {
		errno = EINVAL;
		return WIRE_ERR;
	}
	while (len) {
		struct iovec iov = { .iov_base = (void *)p, .iov_len = len };
		struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
		ssize_t n;

		if (nr_fds) {
			struct cmsghdr *c;

			memset(&ctl, 0, sizeof(ctl));
			mh.msg_control = ctl.buf;
			mh.msg_controllen = CMSG_SPACE(sizeof(int) * nr_fds);
			c = CMSG_FIRSTHDR(&mh);
			c->cmsg_level = SOL_SOCKET;
			c->cmsg_type = SCM_RIGHTS;
			c->cmsg_len = CMSG_LEN(sizeof(int) * nr_fds);
			memcpy(CMSG_DATA(c), fds, sizeof(int) * nr_fds);
		}
		n = sendmsg(sock, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			int r = wire_poll2(sock, POLLOUT, -1, timeout_ms);

			if (r < 0)
				return WIRE_ERR;
			if (r == 0)
				return WIRE_TIMEOUT;
			continue;
		}
		if (n < 0)
			return errno == EPIPE || errno == ECONNRESET ? WIRE_EOF : WIRE_ERR;
		nr_fds = 0;	/* they went with the first byte */
		p += n;
		len -= n;
	}
	return WIRE_OK;
}

size_t wire_chunk(uint64_t pipe_size, uint32_t page_size, uint64_t thp_size)
{
	uint64_t slots = page_size ? pipe_size / page_size : 0;
	uint64_t chunk = pipe_size;

	if (thp_size) {		/* a whole THP takes one slot */
		if (slots > UINT64_MAX / thp_size)
			return SIZE_MAX;
		chunk = slots * thp_size;
	}
	if (chunk != (size_t)chunk)	/* 32-bit */
		return SIZE_MAX;
	return chunk ? chunk : (page_size ? page_size : 4096);
}

/*
 * Descriptors that come along go to @fds while the caller wants more
 * (*nr_fds below @max); every other one is closed and counted in *extra,
 * so that a peer cannot make us hold descriptors we did not ask for.
 */
static void take_fds(struct msghdr *mh, int *fds, int max, int *nr_fds,
		     int *extra)
{
	if (mh->msg_flags & MSG_CTRUNC)
		(*extra)++;	/* some were dropped by the kernel already */
	for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR(mh, c)) {
		int n;

		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (int i = 0; i < n; i++) {
			int fd;

			memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
			if (fds && nr_fds && *nr_fds < max) {
				fds[(*nr_fds)++] = fd;
			} else {
				close(fd);
				(*extra)++;
			}
		}
	}
}

enum wire_status wire_recv(int sock, void *buf, size_t len, size_t *got,
			   int *fds, int max_fds, int *nr_fds, int *extra_fds,
			   int timeout_ms)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * MAX_PASSED_FDS)];
		struct cmsghdr align;
	} ctl;
	char *p = buf;
	size_t done = 0;
	int dummy = 0;

	if (!extra_fds)
		extra_fds = &dummy;
	while (done < len) {
		struct iovec iov = { .iov_base = p + done, .iov_len = len - done };
		struct msghdr mh = {
			.msg_iov = &iov, .msg_iovlen = 1,
			.msg_control = ctl.buf, .msg_controllen = sizeof(ctl.buf),
		};
		ssize_t n;

		n = recvmsg(sock, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			int r = wire_poll2(sock, POLLIN, -1, timeout_ms);

			if (r < 0)
				goto err;
			if (r == 0) {
				if (got)
					*got = done;
				return WIRE_TIMEOUT;
			}
			continue;
		}
		if (n < 0 && errno == ECONNRESET)
			n = 0;
		if (n < 0)
			goto err;
		take_fds(&mh, fds, max_fds, nr_fds, extra_fds);
		if (n == 0) {
			if (got)
				*got = done;
			return WIRE_EOF;
		}
		done += n;
	}
	if (got)
		*got = done;
	return WIRE_OK;
err:
	if (got)
		*got = done;
	return WIRE_ERR;
}

enum wire_status wire_send_msg(int sock, int type, int error, uint64_t bytes,
			       const char *reason, int timeout_ms)
{
	struct vsm_wire_msg m = {
		.magic = VSM_MAGIC_MSG,
		.type = type,
		.msg_size = sizeof(m),
		.error = error,
		.bytes = bytes,
	};

	if (reason)
		snprintf(m.reason, sizeof(m.reason), "%s", reason);
	return wire_send(sock, &m, sizeof(m), NULL, 0, timeout_ms);
}

enum wire_status wire_recv_msg(int sock, struct vsm_wire_msg *m,
			       char *why, size_t why_len, int timeout_ms)
{
	size_t got = 0;
	int extra = 0;
	enum wire_status st;

	st = wire_recv(sock, m, sizeof(*m), &got, NULL, 0, NULL, &extra, timeout_ms);
	if (st == WIRE_EOF && got)
		snprintf(why, why_len, "peer closed the connection inside a message (%zu of %zu bytes)",
			 got, sizeof(*m));
	else if (st == WIRE_EOF)
		snprintf(why, why_len, "peer closed the connection");
	else if (st == WIRE_TIMEOUT)
		snprintf(why, why_len, "peer sent no message for %d ms", timeout_ms);
	else if (st == WIRE_ERR)
		snprintf(why, why_len, "reading from the peer: %s", strerror(errno));
	if (st != WIRE_OK)
		return st;
	/* Each check: a garbled or foreign message must not be acted upon. */
	if (extra) {
		snprintf(why, why_len, "peer passed %d unexpected descriptor(s)", extra);
		errno = EPROTO;
		return WIRE_ERR;
	}
	if (m->magic != VSM_MAGIC_MSG || m->msg_size != sizeof(*m)) {
		snprintf(why, why_len, "peer sent a garbled message (magic 0x%08x, size %u)",
			 m->magic, m->msg_size);
		errno = EPROTO;
		return WIRE_ERR;
	}
	if (m->type < VSM_MSG_ACCEPT || m->type > VSM_MSG_ABORT) {
		snprintf(why, why_len, "peer sent an unknown message type %u", m->type);
		errno = EPROTO;
		return WIRE_ERR;
	}
	m->reason[sizeof(m->reason) - 1] = '\0';
	/* Printable only: the reason ends up on a terminal. */
	for (char *c = m->reason; *c; c++)
		if ((unsigned char)*c < 0x20 || (unsigned char)*c > 0x7e)
			*c = '?';
	return WIRE_OK;
}

void rep_fail(struct vsm_report *rep, enum vsm_error e, int sys_errno,
	      const char *fmt, ...)
{
	va_list ap;

	if (rep->error != VSM_OK)
		return;
	rep->error = e;
	rep->sys_errno = sys_errno;
	va_start(ap, fmt);
	vsnprintf(rep->reason, sizeof(rep->reason), fmt, ap);
	va_end(ap);
}

uint64_t vsm_checksum(const void *addr, size_t len)
{
	return XXH3_64bits(addr, len);
}

const char *vsm_error_name(enum vsm_error e)
{
	static const char *const names[] = {
		[VSM_OK] = "ok",
		[VSM_ESYS] = "system",
		[VSM_ETIMEDOUT] = "timeout",
		[VSM_EPROTO] = "protocol",
		[VSM_EPEER] = "peer-abort",
		[VSM_EREJECT] = "rejected",
		[VSM_ECLOSED] = "closed",
		[VSM_EVERIFY] = "verify",
		[VSM_ECANCEL] = "cancelled",
	};

	if ((unsigned int)e < sizeof(names) / sizeof(names[0]) && names[e])
		return names[e];
	return "unknown";
}
