// SPDX-License-Identifier: GPL-2.0
/* vsm_recv(): the receiving side of a hand-off. */
#define _GNU_SOURCE
#include "wire.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

struct receiver {
	int sock;
	int pipe_rd[VSM_WIRE_MAX_PIPES];
	unsigned int nr_pipes;	/* announced: 1, or 2 with VSM_WIRE_F_PIPES2 */
	int nr_fds;		/* descriptors passed, in pipe_rd[] */
	uint64_t turn;		/* chunks taken: the next from turn % nr_pipes */
	int timeout;
	unsigned int flags;	/* vmsplice flags for the data */
	const struct vsm_recv_opts *o;
	struct vsm_report *rep;
	struct vsm_wire_hello h;
	struct vsm_wire_region *t;
	struct vsm_received *out;
};

static void fail_wire(struct receiver *r, enum wire_status st, size_t got,
		      size_t want, const char *what)
{
	if (st == WIRE_EOF)
		rep_fail(r->rep, VSM_ECLOSED, 0,
			 "sender closed the connection inside the %s (%zu of %zu bytes): truncated",
			 what, got, want);
	else if (st == WIRE_TIMEOUT)
		rep_fail(r->rep, VSM_ETIMEDOUT, ETIMEDOUT,
			 "no %s from the sender for %d ms (%zu of %zu bytes)", what,
			 r->timeout, got, want);
	else
		rep_fail(r->rep, VSM_ESYS, errno, "reading the %s: %s", what,
			 strerror(errno));
}

static int read_header(struct receiver *r)
{
	size_t got = 0, table;
	enum wire_status st;
	int extra = 0;

	st = wire_recv(r->sock, &r->h, sizeof(r->h), &got, r->pipe_rd,
		       VSM_WIRE_MAX_PIPES, &r->nr_fds, &extra, r->timeout);
	if (st != WIRE_OK) {
		fail_wire(r, st, got, sizeof(r->h), "header");
		return -1;
	}
	/*
	 * Checks before anything else is read or allocated: each one keeps a
	 * garbled, foreign or hostile header from making us read, allocate or
	 * accept what was not announced.
	 */
	if (r->h.magic != VSM_MAGIC_HELLO) {	/* not our protocol at all */
		rep_fail(r->rep, VSM_EPROTO, EPROTO,
			 "not a vmsplice-move sender (magic 0x%08x)", r->h.magic);
		return -1;
	}
	if (r->h.version != VSM_PROTO_VERSION) {	/* a layout we cannot read */
		rep_fail(r->rep, VSM_EPROTO, EPROTO,
			 "sender speaks protocol version %u, this library version %u",
			 r->h.version, VSM_PROTO_VERSION);
		return -1;
	}
	if (r->h.hello_size != sizeof(r->h) ||	/* same version, other layout */
	    r->h.region_size != sizeof(struct vsm_wire_region)) {
		rep_fail(r->rep, VSM_EPROTO, EPROTO,
			 "header or region size %u/%u, expected %zu/%zu",
			 r->h.hello_size, r->h.region_size, sizeof(r->h),
			 sizeof(struct vsm_wire_region));
		return -1;
	}
	{
		uint64_t sum = r->h.hello_sum;	/* bit flips in transit or a forger */

		r->h.hello_sum = 0;
		if (vsm_checksum(&r->h, sizeof(r->h)) != sum) {
			rep_fail(r->rep, VSM_EPROTO, EPROTO, "header checksum mismatch: garbled header");
			return -1;
		}
		r->h.hello_sum = sum;
	}
	if (r->h.flags & ~VSM_WIRE_F_KNOWN) {	/* a feature we do not have */
		rep_fail(r->rep, VSM_EPROTO, EPROTO, "unknown header flags 0x%x",
			 r->h.flags & ~VSM_WIRE_F_KNOWN);
		return -1;
	}
	if (r->h.page_size != (uint32_t)sysconf(_SC_PAGESIZE)) {
		rep_fail(r->rep, VSM_EPROTO, EPROTO, "sender's page size %u, ours %ld",
			 r->h.page_size, sysconf(_SC_PAGESIZE));
		return -1;
	}
	/* The count bounds the table we read next: no huge or overflowing read. */
	if (r->h.nr_regions == 0 || r->h.nr_regions > r->o->max_regions) {
		rep_fail(r->rep, VSM_EREJECT, E2BIG, "%u regions announced, the limit is %u",
			 r->h.nr_regions, r->o->max_regions);
		return -1;
	}
	if (r->o->max_bytes && r->h.total_bytes > r->o->max_bytes) {
		rep_fail(r->rep, VSM_EREJECT, E2BIG,
			 "%llu bytes announced, the limit is %llu",
			 (unsigned long long)r->h.total_bytes,
			 (unsigned long long)r->o->max_bytes);
		return -1;
	}
	table = (size_t)r->h.nr_regions * sizeof(*r->t);
	r->t = calloc(r->h.nr_regions, sizeof(*r->t));
	if (!r->t) {
		rep_fail(r->rep, VSM_ESYS, errno, "out of memory for %u regions", r->h.nr_regions);
		return -1;
	}
	got = 0;
	st = wire_recv(r->sock, r->t, table, &got, NULL, 0, NULL, &extra, r->timeout);
	if (st != WIRE_OK) {
		fail_wire(r, st, got, table, "region table");
		return -1;
	}
	if (vsm_checksum(r->t, table) != r->h.table_sum) {
		rep_fail(r->rep, VSM_EPROTO, EPROTO, "region table checksum mismatch: garbled table");
		return -1;
	}
	/* The pipes announced and nothing else: more is not ours to keep. */
	r->nr_pipes = r->h.flags & VSM_WIRE_F_PIPES2 ? 2 : 1;
	if (!r->nr_fds) {
		rep_fail(r->rep, VSM_EPROTO, EPROTO, "sender passed no pipe descriptor");
		return -1;
	}
	if (extra || r->nr_fds != (int)r->nr_pipes) {
		rep_fail(r->rep, VSM_EPROTO, EPROTO,
			 "sender passed %d descriptor%s, expected %s", r->nr_fds + extra,
			 r->nr_fds + extra == 1 ? "" : "s",
			 r->nr_pipes == 2 ? "two pipes" : "one pipe");
		return -1;
	}
	return 0;
}

static int check_regions(struct receiver *r)
{
	uint64_t sum = 0;
	struct stat st;
	int fl;

	for (unsigned int i = 0; i < r->h.nr_regions; i++) {
		const struct vsm_wire_region *w = &r->t[i];

		/* Empty regions and unknown flags are not something we announce. */
		if (!w->len || (w->flags & ~VSM_REGION_HUGE) || w->reserved) {
			rep_fail(r->rep, VSM_EPROTO, EPROTO,
				 "region %u: length %llu, flags 0x%x, reserved 0x%x", i,
				 (unsigned long long)w->len, w->flags, w->reserved);
			return -1;
		}
		/* Sizes must add up without wrapping, to exactly the total. */
		if (w->len > r->h.total_bytes - sum || w->len > SIZE_MAX / 2) {
			rep_fail(r->rep, VSM_EPROTO, EPROTO,
				 "region sizes exceed the announced total %llu at region %u",
				 (unsigned long long)r->h.total_bytes, i);
			return -1;
		}
		sum += w->len;
	}
	if (sum != r->h.total_bytes) {
		rep_fail(r->rep, VSM_EPROTO, EPROTO,
			 "regions add up to %llu bytes, the header says %llu",
			 (unsigned long long)sum, (unsigned long long)r->h.total_bytes);
		return -1;
	}
	if (r->o->require_checksum && !(r->h.flags & VSM_WIRE_F_CHECKSUM)) {
		rep_fail(r->rep, VSM_EREJECT, EPROTO, "sender sends no checksums; required");
		return -1;
	}
	/* Reading from anything but a pipe's read end would not be vmsplice. */
	for (unsigned int i = 0; i < r->nr_pipes; i++) {
		fl = fcntl(r->pipe_rd[i], F_GETFL);
		if (fstat(r->pipe_rd[i], &st) || !S_ISFIFO(st.st_mode) || fl < 0 ||
		    (fl & O_ACCMODE) != O_RDONLY) {
			rep_fail(r->rep, VSM_EPROTO, EPROTO,
				 "passed descriptor %u is not the read end of a pipe", i);
			return -1;
		}
	}
	return 0;
}

static int place_regions(struct receiver *r)
{
	struct vsm_received *out = r->out;

	out->regs = calloc(r->h.nr_regions, sizeof(*out->regs));
	out->owned = calloc(r->h.nr_regions, sizeof(*out->owned));
	if (!out->regs || !out->owned) {
		rep_fail(r->rep, VSM_EREJECT, ENOMEM, "out of memory for %u regions",
			 r->h.nr_regions);
		return -1;
	}
	for (unsigned int i = 0; i < r->h.nr_regions; i++) {
		struct vsm_region_desc d = {
			.index = i, .len = r->t[i].len, .flags = r->t[i].flags,
		};
		bool huge = d.flags & VSM_REGION_HUGE;
		void *p;

		if (r->o->place) {
			p = r->o->place(r->o->place_arg, &d);
		} else {
			p = vsm_alloc(d.len, huge);
			out->owned[i] = p != NULL;
		}
		if (!p) {
			rep_fail(r->rep, VSM_EREJECT, errno ? errno : ENOMEM,
				 "no room for region %u (%llu bytes): %s", i,
				 (unsigned long long)d.len, strerror(errno ? errno : ENOMEM));
			return -1;
		}
		out->regs[i] = (struct vsm_region){ p, d.len, d.flags };
		out->nr = i + 1;
	}
	return 0;
}

/* The sender stopped feeding the pipe: learn why from the socket. */
static void sender_stopped(struct receiver *r, const char *what)
{
	struct vsm_wire_msg m;
	char why[160];
	enum wire_status st = wire_recv_msg(r->sock, &m, why, sizeof(why), r->timeout);

	if (st == WIRE_OK && m.type == VSM_MSG_ABORT)
		rep_fail(r->rep, VSM_EPEER, 0, "sender aborted after %llu of %llu bytes: %s",
			 (unsigned long long)r->rep->bytes,
			 (unsigned long long)r->h.total_bytes, m.reason);
	else if (st == WIRE_EOF)
		rep_fail(r->rep, VSM_ECLOSED, 0, "sender went away (%s) after %llu of %llu bytes",
			 what, (unsigned long long)r->rep->bytes,
			 (unsigned long long)r->h.total_bytes);
	else if (st == WIRE_OK)
		rep_fail(r->rep, VSM_EPROTO, EPROTO, "sender sent message type %u mid-transfer",
			 m.type);
	else
		rep_fail(r->rep, st == WIRE_TIMEOUT ? VSM_ETIMEDOUT : VSM_EPROTO, errno,
			 "%s after %llu of %llu bytes; then %s", what,
			 (unsigned long long)r->rep->bytes,
			 (unsigned long long)r->h.total_bytes, why);
}

/*
 * Take bytes [@off, @off + @len) of region @i, one chunk of the schedule,
 * from the pipe whose turn it is.
 */
static int take_chunk(struct receiver *r, unsigned int i, size_t off, size_t len)
{
	struct vsm_region *reg = &r->out->regs[i];
	int rd = r->pipe_rd[r->turn % r->nr_pipes];
	size_t end = off + len;

	while (off < end) {
		struct iovec iov = { (char *)reg->addr + off, end - off };
		ssize_t n = vmsplice(rd, &iov, 1, r->flags | SPLICE_F_NONBLOCK);
		int ready;

		if (n > 0) {
			off += n;
			r->rep->bytes += n;
			if (r->o->progress &&
			    r->o->progress(r->o->progress_arg, r->rep->bytes,
					   r->h.total_bytes)) {
				rep_fail(r->rep, VSM_ECANCEL, 0, "cancelled by the receiver");
				return -1;
			}
			continue;
		}
		if (n == 0) {	/* every writer is gone before the end */
			sender_stopped(r, "the pipe was closed");
			return -1;
		}
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN) {
			rep_fail(r->rep, VSM_ESYS, errno, "vmsplice into region %u: %s", i,
				 strerror(errno));
			return -1;
		}
		ready = wire_poll2(rd, POLLIN, r->sock, r->timeout);
		if (ready < 0) {
			rep_fail(r->rep, VSM_ESYS, errno, "poll: %s", strerror(errno));
			return -1;
		}
		if (ready == 0) {
			rep_fail(r->rep, VSM_ETIMEDOUT, ETIMEDOUT,
				 "no data for %d ms (%llu of %llu bytes)", r->timeout,
				 (unsigned long long)r->rep->bytes,
				 (unsigned long long)r->h.total_bytes);
			return -1;
		}
		if (ready & 2) {	/* the sender never speaks mid-transfer unless aborting */
			sender_stopped(r, "the sender spoke");
			return -1;
		}
	}
	r->turn++;
	return 0;
}

/* Take region @i, chunk by chunk of the sender's schedule (wire_chunk()). */
static int take_region(struct receiver *r, unsigned int i)
{
	size_t len = r->out->regs[i].len;
	size_t cap = wire_chunk(r->h.pipe_size, r->h.page_size,
				r->out->regs[i].flags & VSM_REGION_HUGE ?
				r->h.thp_size : 0);

	for (size_t off = 0; off < len; off += cap)
		if (take_chunk(r, i, off, len - off < cap ? len - off : cap))
			return -1;
	return 0;
}

/*
 * Nothing may follow the announced bytes: wait for the sender's EOF on
 * each pipe, within one timeout for all of them.
 */
static int check_tail(struct receiver *r)
{
	double end = wire_now() + r->timeout / 1e3;

	for (unsigned int i = 0; i < r->nr_pipes; i++) {
		int ready = wire_poll2(r->pipe_rd[i], POLLIN, -1,
				       wire_ms_left(end, r->timeout));
		int left = 0;

		if (ready < 0) {
			rep_fail(r->rep, VSM_ESYS, errno, "poll: %s", strerror(errno));
			return -1;
		}
		if (ready == 0) {
			rep_fail(r->rep, VSM_ETIMEDOUT, ETIMEDOUT,
				 "sender did not close the pipe after the data (%d ms)",
				 r->timeout);
			return -1;
		}
		if (ioctl(r->pipe_rd[i], FIONREAD, &left) == 0 && left > 0) {
			rep_fail(r->rep, VSM_EPROTO, EPROTO,
				 "sender put more into the pipe than announced (%d bytes more)",
				 left);
			return -1;
		}
	}
	return 0;
}

static int verify(struct receiver *r)
{
	if (!(r->h.flags & VSM_WIRE_F_CHECKSUM))
		return 0;
	for (unsigned int i = 0; i < r->out->nr; i++)
		if (vsm_checksum(r->out->regs[i].addr, r->out->regs[i].len) != r->t[i].sum) {
			rep_fail(r->rep, VSM_EVERIFY, 0, "region %u: checksum mismatch", i);
			return -1;
		}
	r->rep->verified = true;
	return 0;
}

/* What happened to our pages, from the system-wide counter deltas. */
static void account(struct receiver *r)
{
	struct vsm_report *rep = r->rep;
	const struct vsm_stats *d = &rep->stats;
	uint64_t page = r->h.page_size, pages = 0;

	for (unsigned int i = 0; i < r->out->nr; i++)
		pages += (r->out->regs[i].len + page - 1) / page;
	rep->pages = pages;
	if (!d->supported || r->flags != SPLICE_F_MOVE) {
		/* Nothing can move without the change, or without MOVE. */
		rep->pages_copied = pages;
		rep->counters_exclusive = !d->supported;
		return;
	}
	rep->counters_exclusive = d->moved + d->moved_zero + d->copied <= (long long)pages;
	rep->pages_moved = d->moved < 0 ? 0 : (uint64_t)d->moved;
	if (rep->pages_moved > pages)
		rep->pages_moved = pages;
	rep->pages_zero = d->moved_zero < 0 ? 0 : (uint64_t)d->moved_zero;
	if (rep->pages_zero > pages - rep->pages_moved)
		rep->pages_zero = pages - rep->pages_moved;
	rep->pages_copied = pages - rep->pages_moved - rep->pages_zero;
}

int vsm_recv(int sock, const struct vsm_recv_opts *opts,
	     struct vsm_received *out, struct vsm_report *rep)
{
	static const struct vsm_recv_opts defaults;
	struct vsm_recv_opts o = opts ? *opts : defaults;
	struct receiver r = { .sock = sock, .pipe_rd = { -1, -1 }, .o = &o,
			      .rep = rep, .out = out };
	struct vsm_stats before, after;
	double t0 = 0;
	int ret = -1;

	memset(rep, 0, sizeof(*rep));
	memset(out, 0, sizeof(*out));
	if (!o.max_regions)
		o.max_regions = VSM_MAX_REGIONS;
	r.timeout = wire_timeout(o.timeout_ms);

	if (read_header(&r) || check_regions(&r))
		goto out;
	rep->nr_regions = r.h.nr_regions;
	rep->total_bytes = r.h.total_bytes;
	rep->pipe_size = r.h.pipe_size;
	rep->nr_pipes = r.nr_pipes;
	r.flags = o.copy ? 0 : SPLICE_F_MOVE;
	rep->path = VSM_PATH_COPY;
	if (o.copy)
		snprintf(rep->path_why, sizeof(rep->path_why), "copy requested");
	else if (!(r.h.flags & VSM_WIRE_F_UNMAP))
		snprintf(rep->path_why, sizeof(rep->path_why),
			 "sender gives without SPLICE_F_UNMAP (its kernel lacks it, or copy forced)");
	else
		rep->path = VSM_PATH_MOVE;
	if (place_regions(&r))
		goto out;
	if (wire_send_msg(sock, VSM_MSG_ACCEPT, 0, 0, NULL, r.timeout) != WIRE_OK) {
		rep_fail(rep, VSM_ECLOSED, errno, "sender went away before the data");
		goto out;
	}

	vsm_stats_read(&before);
	t0 = wire_now();
	/* What the first pipe holds, as the sender made it, is reported. */
	{
		int psz = fcntl(r.pipe_rd[0], F_GETPIPE_SZ);

		if (psz > 0)
			rep->pipe_size = psz;
	}
	for (unsigned int i = 0; i < out->nr; i++)
		if (take_region(&r, i))
			goto data_out;
	rep->seconds = wire_now() - t0;
	if (check_tail(&r))
		goto data_out;
	vsm_stats_read(&after);
	vsm_stats_delta(&before, &after, &rep->stats);
	account(&r);
	if (verify(&r))
		goto out;
	if (wire_send_msg(sock, VSM_MSG_DONE, 0, rep->bytes, NULL, r.timeout) != WIRE_OK) {
		rep_fail(rep, VSM_ECLOSED, errno, "sender went away before our confirmation");
		goto out;
	}
	ret = 0;
	goto out;
data_out:
	rep->seconds = wire_now() - t0;
	vsm_stats_read(&after);
	vsm_stats_delta(&before, &after, &rep->stats);
	account(&r);
out:
	/* First: a sender blocked on a pipe wakes with EPIPE. */
	for (int i = 0; i < r.nr_fds; i++)
		close(r.pipe_rd[i]);
	if (ret) {
		rep->local_abort = rep->error != VSM_EPEER && rep->error != VSM_ECLOSED;
		if (rep->local_abort)
			wire_send_msg(sock, VSM_MSG_ABORT, rep->error, rep->bytes,
				      rep->reason, r.timeout);
	}
	free(r.t);
	return ret;
}

void vsm_recv_free(struct vsm_received *out)
{
	for (unsigned int i = 0; out->regs && i < out->nr; i++)
		if (out->owned && out->owned[i])
			vsm_free(out->regs[i].addr, out->regs[i].len);
	free(out->regs);
	free(out->owned);
	memset(out, 0, sizeof(*out));
}
