/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The hand-off wire format (internal; documented in vsm_send(3)).
 *
 * Sender -> receiver, with the pipes' read ends attached (SCM_RIGHTS, in
 * order: one, or two with VSM_WIRE_F_PIPES2):
 *   struct vsm_wire_hello, then nr_regions x struct vsm_wire_region.
 * Receiver -> sender: ACCEPT or ABORT.
 * Data: the regions' bytes, concatenated, through the pipes in turn: each
 * region in chunks of wire_chunk() bytes, chunk k of the whole hand-off
 * through pipe k % nr_pipes.
 * Receiver -> sender: DONE (bytes taken) or ABORT.
 * Either side may send ABORT at any time after the hello.
 * All integers are host byte order (both ends share one kernel).
 */
#ifndef VMSPLICE_MOVE_WIRE_H
#define VMSPLICE_MOVE_WIRE_H

#include <stdarg.h>
#include <stdint.h>

#include "vmsplice_move.h"

#define VSM_MAGIC_HELLO		0x48534d56u	/* "VMSH" */
#define VSM_MAGIC_MSG		0x4d534d56u	/* "VMSM" */

#define VSM_WIRE_F_CHECKSUM	0x1u	/* regions carry XXH3-64 sums */
#define VSM_WIRE_F_UNMAP	0x2u	/* the sender gives with UNMAP */
#define VSM_WIRE_F_PIPES2	0x4u	/* two pipes, taking turns */
#define VSM_WIRE_F_KNOWN	(VSM_WIRE_F_CHECKSUM | VSM_WIRE_F_UNMAP | \
				 VSM_WIRE_F_PIPES2)

#define VSM_WIRE_MAX_PIPES	2

struct vsm_wire_hello {
	uint32_t magic;
	uint16_t version;
	uint16_t hello_size;	/* sizeof(struct vsm_wire_hello) */
	uint32_t flags;		/* VSM_WIRE_F_* */
	uint32_t page_size;
	uint32_t nr_regions;
	uint32_t region_size;	/* sizeof(struct vsm_wire_region) */
	uint64_t total_bytes;	/* sum of the regions' lengths */
	uint64_t pipe_size;	/* both pipes': the schedule's chunk */
	uint64_t thp_size;	/* the sender's: a huge region's chunk unit */
	uint64_t table_sum;	/* XXH3-64 of the region table */
	uint64_t hello_sum;	/* XXH3-64 of this struct, hello_sum = 0 */
};

struct vsm_wire_region {
	uint64_t len;
	uint32_t flags;		/* VSM_REGION_* */
	uint32_t reserved;	/* 0 */
	uint64_t sum;		/* contents, when VSM_WIRE_F_CHECKSUM */
};

enum {
	VSM_MSG_ACCEPT = 1,
	VSM_MSG_DONE = 2,
	VSM_MSG_ABORT = 3,
};

#define VSM_REASON_MAX	128

struct vsm_wire_msg {
	uint32_t magic;
	uint16_t type;		/* VSM_MSG_* */
	uint16_t msg_size;	/* sizeof(struct vsm_wire_msg) */
	int32_t error;		/* enum vsm_error, ABORT */
	uint32_t reserved;
	uint64_t bytes;		/* bytes given (sender) / taken (receiver) */
	char reason[VSM_REASON_MAX];	/* NUL-terminated, ABORT */
};

/* Outcome of a socket operation. */
enum wire_status {
	WIRE_OK,
	WIRE_EOF,	/* the peer closed the connection */
	WIRE_TIMEOUT,
	WIRE_ERR,	/* errno set */
};

/* Milliseconds from @opts' timeout: 0 -> default, < 0 -> forever (-1). */
int wire_timeout(int timeout_ms);

/*
 * Milliseconds left until @end (wire_now() seconds) of a wait bounded by
 * @timeout_ms, rounded up, 0 once past; -1 (forever) for @timeout_ms < 0.
 */
int wire_ms_left(double end, int timeout_ms);

/*
 * Wait up to @timeout_ms for @events on @fd (and, when @fd2 >= 0, for
 * POLLIN on @fd2): returns bit 0 when @fd is ready, bit 1 when @fd2 is,
 * 0 on timeout, -1 on error.  Restarts after EINTR with the time left.
 */
int wire_poll2(int fd, short events, int fd2, int timeout_ms);

/*
 * Send @len bytes, each wait bounded by @timeout_ms; the @nr_fds
 * descriptors @fds (at most VSM_WIRE_MAX_PIPES) go along with the first
 * byte (SCM_RIGHTS).  Never raises SIGPIPE.
 */
enum wire_status wire_send(int sock, const void *buf, size_t len,
			   const int *fds, int nr_fds, int timeout_ms);

/*
 * Receive exactly @len bytes.  *@got (when not NULL) counts what arrived.
 * Descriptors that come along are stored in @fds while *@nr_fds is below
 * @max_fds (and counted there); any other is closed and counted in
 * *@extra_fds.
 */
enum wire_status wire_recv(int sock, void *buf, size_t len, size_t *got,
			   int *fds, int max_fds, int *nr_fds, int *extra_fds,
			   int timeout_ms);

/*
 * The size of one turn of the data schedule: what a pipe of @pipe_size
 * bytes holds, one slot a page, a whole THP of @thp_size bytes a slot in
 * a VSM_REGION_HUGE region (@thp_size 0: not one); never 0, and SIZE_MAX
 * rather than an overflow.  Both sides compute it from the header, so that
 * they cut the stream alike whatever each can read of its own system.
 */
size_t wire_chunk(uint64_t pipe_size, uint32_t page_size, uint64_t thp_size);

/* One control message each way. */
enum wire_status wire_send_msg(int sock, int type, int error, uint64_t bytes,
			       const char *reason, int timeout_ms);

/*
 * Receive and check one control message: WIRE_OK with @m valid (reason
 * NUL-terminated), or a failure with @why describing it.
 */
enum wire_status wire_recv_msg(int sock, struct vsm_wire_msg *m,
			       char *why, size_t why_len, int timeout_ms);

/* Set rep->error/sys_errno/reason unless an earlier error is recorded. */
void rep_fail(struct vsm_report *rep, enum vsm_error e, int sys_errno,
	      const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* Monotonic seconds. */
double wire_now(void);

#endif
