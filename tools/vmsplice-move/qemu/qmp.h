/* SPDX-License-Identifier: GPL-2.0 */
/*
 * A small QMP client (QEMU Machine Protocol over a UNIX socket), JSON via
 * json-c.  Synchronous: one command at a time, every wait bounded by a
 * timeout; asynchronous events are counted and the last one kept.
 */
#ifndef VSM_QEMU_QMP_H
#define VSM_QEMU_QMP_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <json-c/json.h>

struct vsm_qmp;

/*
 * vsm_qmp_open - connect to the QMP socket at @path, read the greeting and
 * negotiate capabilities, all within @timeout_ms.  NULL on failure with
 * the reason in @err.
 */
struct vsm_qmp *vsm_qmp_open(const char *path, int timeout_ms, char *err,
			     size_t errlen);

void vsm_qmp_close(struct vsm_qmp *q);

/*
 * vsm_qmp_exec - run @cmd with @args (consumed; may be NULL).  Returns the
 * "return" value (release it with json_object_put()), or NULL when QEMU
 * answered with an error, the connection broke or the timeout expired;
 * vsm_qmp_error() says which.
 */
struct json_object *vsm_qmp_exec(struct vsm_qmp *q, const char *cmd,
				 struct json_object *args, int timeout_ms);

/* vsm_qmp_exec() for commands whose answer is not needed: 0 or -1. */
int vsm_qmp_run(struct vsm_qmp *q, const char *cmd, struct json_object *args,
		int timeout_ms);

/* A human monitor command through QMP; its output (free() it) or NULL. */
char *vsm_qmp_hmp(struct vsm_qmp *q, const char *cmdline, int timeout_ms);

/* The current run state ("running", "paused", "inmigrate"...) or NULL. */
char *vsm_qmp_status(struct vsm_qmp *q, int timeout_ms);

/* The "status" of query-migrate ("none", "active", "completed"...) or NULL. */
char *vsm_qmp_migrate_status(struct vsm_qmp *q, int timeout_ms);

/* Read guest-physical memory with pmemsave through the file @tmpfile. */
int vsm_qmp_pmem_read(struct vsm_qmp *q, unsigned long long gpa, void *buf,
		      size_t len, const char *tmpfile, int timeout_ms);

/* The peer process of the socket (SO_PEERCRED), or -1. */
pid_t vsm_qmp_peer_pid(const struct vsm_qmp *q);

const char *vsm_qmp_error(const struct vsm_qmp *q);

/* Whether the connection is gone (EOF or I/O error seen). */
bool vsm_qmp_broken(const struct vsm_qmp *q);

#endif
