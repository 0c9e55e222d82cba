// SPDX-License-Identifier: GPL-2.0
/*
 * QMP client: newline-delimited JSON over a UNIX stream socket.
 */
#define _GNU_SOURCE
#include "qmp.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

struct vsm_qmp {
	int fd;
	pid_t peer;
	bool broken;
	char *buf;
	size_t len, cap;
	long next_id;
	char err[512];
};

static void set_err(struct vsm_qmp *q, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(q->err, sizeof(q->err), fmt, ap);
	va_end(ap);
}

static long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Send all of @s before @deadline. */
static int send_all(struct vsm_qmp *q, const char *s, size_t n, long deadline)
{
	while (n) {
		struct pollfd p = { q->fd, POLLOUT, 0 };
		long left = deadline - now_ms();
		ssize_t w;

		if (left <= 0 || poll(&p, 1, left) <= 0) {
			set_err(q, "QMP: timed out sending");
			return -1;
		}
		w = send(q->fd, s, n, MSG_NOSIGNAL);
		if (w < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			q->broken = true;
			set_err(q, "QMP: send: %s", strerror(errno));
			return -1;
		}
		s += w;
		n -= w;
	}
	return 0;
}

/* The next JSON message, or NULL (timeout, EOF, garbage). */
static struct json_object *read_msg(struct vsm_qmp *q, long deadline)
{
	for (;;) {
		char *nl = q->len ? memchr(q->buf, '\n', q->len) : NULL;

		if (nl) {
			size_t l = nl - q->buf + 1;
			struct json_object *o;

			*nl = 0;
			o = json_tokener_parse(q->buf);
			memmove(q->buf, q->buf + l, q->len - l);
			q->len -= l;
			if (!o) {
				set_err(q, "QMP: unparsable message");
				continue;
			}
			return o;
		}
		if (q->cap - q->len < 65536) {
			char *b = realloc(q->buf, q->cap + 262144);

			if (!b) {
				set_err(q, "QMP: out of memory");
				return NULL;
			}
			q->buf = b;
			q->cap += 262144;
		}
		struct pollfd p = { q->fd, POLLIN, 0 };
		long left = deadline - now_ms();
		ssize_t r;

		if (left <= 0 || poll(&p, 1, left) <= 0) {
			set_err(q, "QMP: no answer within the timeout");
			return NULL;
		}
		r = recv(q->fd, q->buf + q->len, q->cap - q->len - 1, 0);
		if (r <= 0) {
			if (r < 0 && (errno == EINTR || errno == EAGAIN))
				continue;
			q->broken = true;
			set_err(q, "QMP: connection closed by QEMU%s%s",
				r < 0 ? ": " : "", r < 0 ? strerror(errno) : "");
			return NULL;
		}
		q->len += r;
	}
}

struct vsm_qmp *vsm_qmp_open(const char *path, int timeout_ms, char *err,
			     size_t errlen)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct vsm_qmp *q = calloc(1, sizeof(*q));
	struct ucred cred;
	socklen_t cl = sizeof(cred);
	struct json_object *greet;

	if (!q) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	q->peer = -1;
	if (strlen(path) >= sizeof(sa.sun_path)) {
		snprintf(err, errlen, "QMP socket path too long: %s", path);
		free(q);
		return NULL;
	}
	strcpy(sa.sun_path, path);
	q->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (q->fd < 0 || connect(q->fd, (struct sockaddr *)&sa, sizeof(sa))) {
		snprintf(err, errlen, "cannot connect to QMP socket %s: %s", path,
			 strerror(errno));
		goto fail;
	}
	if (!getsockopt(q->fd, SOL_SOCKET, SO_PEERCRED, &cred, &cl))
		q->peer = cred.pid;
	greet = read_msg(q, now_ms() + timeout_ms);
	if (!greet || !json_object_object_get_ex(greet, "QMP", NULL)) {
		snprintf(err, errlen, "%s: no QMP greeting (%s)", path,
			 greet ? "not QMP" : q->err);
		json_object_put(greet);
		goto fail;
	}
	json_object_put(greet);
	if (vsm_qmp_run(q, "qmp_capabilities", NULL, timeout_ms)) {
		snprintf(err, errlen, "%s: %s", path, q->err);
		goto fail;
	}
	return q;
fail:
	if (q->fd >= 0)
		close(q->fd);
	free(q->buf);
	free(q);
	return NULL;
}

void vsm_qmp_close(struct vsm_qmp *q)
{
	if (!q)
		return;
	close(q->fd);
	free(q->buf);
	free(q);
}

struct json_object *vsm_qmp_exec(struct vsm_qmp *q, const char *cmd,
				 struct json_object *args, int timeout_ms)
{
	struct json_object *req = json_object_new_object(), *msg, *v;
	long deadline = now_ms() + timeout_ms, id = ++q->next_id;
	const char *s;

	json_object_object_add(req, "execute", json_object_new_string(cmd));
	if (args)
		json_object_object_add(req, "arguments", args);
	json_object_object_add(req, "id", json_object_new_int64(id));
	s = json_object_to_json_string_ext(req, JSON_C_TO_STRING_PLAIN);
	if (q->broken) {
		set_err(q, "QMP: connection already closed");
		json_object_put(req);
		return NULL;
	}
	if (send_all(q, s, strlen(s), deadline) ||
	    send_all(q, "\n", 1, deadline)) {
		json_object_put(req);
		return NULL;
	}
	json_object_put(req);
	while ((msg = read_msg(q, deadline))) {
		struct json_object *mid;

		if (json_object_object_get_ex(msg, "event", NULL) ||
		    !json_object_object_get_ex(msg, "id", &mid) ||
		    json_object_get_int64(mid) != id) {
			json_object_put(msg);	/* events, stale answers */
			continue;
		}
		if (json_object_object_get_ex(msg, "return", &v)) {
			json_object_get(v);
			json_object_put(msg);
			return v;
		}
		if (json_object_object_get_ex(msg, "error", &v)) {
			struct json_object *d;

			set_err(q, "%s: %s", cmd,
				json_object_object_get_ex(v, "desc", &d) ?
				json_object_get_string(d) : "error");
		} else {
			set_err(q, "%s: unexpected answer", cmd);
		}
		json_object_put(msg);
		return NULL;
	}
	if (!q->broken)
		set_err(q, "%s: no answer within %d ms", cmd, timeout_ms);
	else
		set_err(q, "%s: connection closed by QEMU", cmd);
	return NULL;
}

int vsm_qmp_run(struct vsm_qmp *q, const char *cmd, struct json_object *args,
		int timeout_ms)
{
	struct json_object *r = vsm_qmp_exec(q, cmd, args, timeout_ms);

	if (!r)
		return -1;
	json_object_put(r);
	return 0;
}

char *vsm_qmp_hmp(struct vsm_qmp *q, const char *cmdline, int timeout_ms)
{
	struct json_object *a = json_object_new_object(), *r;
	char *out;

	json_object_object_add(a, "command-line",
			       json_object_new_string(cmdline));
	r = vsm_qmp_exec(q, "human-monitor-command", a, timeout_ms);
	if (!r)
		return NULL;
	out = strdup(json_object_get_string(r));
	json_object_put(r);
	return out;
}

static char *get_str_field(struct vsm_qmp *q, const char *cmd,
			   const char *field, int timeout_ms)
{
	struct json_object *r = vsm_qmp_exec(q, cmd, NULL, timeout_ms), *s;
	char *out = NULL;

	if (!r)
		return NULL;
	if (json_object_object_get_ex(r, field, &s))
		out = strdup(json_object_get_string(s));
	else
		set_err(q, "%s: no \"%s\" in the answer", cmd, field);
	json_object_put(r);
	return out;
}

char *vsm_qmp_status(struct vsm_qmp *q, int timeout_ms)
{
	return get_str_field(q, "query-status", "status", timeout_ms);
}

char *vsm_qmp_migrate_status(struct vsm_qmp *q, int timeout_ms)
{
	struct json_object *r = vsm_qmp_exec(q, "query-migrate", NULL,
					     timeout_ms), *s;
	char *out;

	if (!r)
		return NULL;
	/* No "status" means no migration ever ran. */
	out = strdup(json_object_object_get_ex(r, "status", &s) ?
		     json_object_get_string(s) : "none");
	json_object_put(r);
	return out;
}

int vsm_qmp_pmem_read(struct vsm_qmp *q, unsigned long long gpa, void *buf,
		      size_t len, const char *tmpfile, int timeout_ms)
{
	struct json_object *a = json_object_new_object();
	int fd, ret = -1;
	ssize_t n;

	unlink(tmpfile);
	json_object_object_add(a, "val", json_object_new_int64(gpa));
	json_object_object_add(a, "size", json_object_new_int64(len));
	json_object_object_add(a, "filename", json_object_new_string(tmpfile));
	if (vsm_qmp_run(q, "pmemsave", a, timeout_ms))
		return -1;
	fd = open(tmpfile, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		set_err(q, "pmemsave wrote no %s: %s", tmpfile, strerror(errno));
		return -1;
	}
	n = pread(fd, buf, len, 0);
	if (n == (ssize_t)len)
		ret = 0;
	else
		set_err(q, "pmemsave: %s holds %zd of %zu bytes", tmpfile, n, len);
	close(fd);
	unlink(tmpfile);
	return ret;
}

pid_t vsm_qmp_peer_pid(const struct vsm_qmp *q)
{
	return q->peer;
}

const char *vsm_qmp_error(const struct vsm_qmp *q)
{
	return q->err;
}

bool vsm_qmp_broken(const struct vsm_qmp *q)
{
	return q->broken;
}
