// SPDX-License-Identifier: GPL-2.0
/*
 * The hand-off journal (JSON via json-c); see journal.h.
 */
#define _GNU_SOURCE
#include "journal.h"

#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *const phase_names[] = {
	[VSM_PH_PREFLIGHT] = "preflight",
	[VSM_PH_STOPPED] = "stopped",
	[VSM_PH_GIVE] = "give",
	[VSM_PH_MIGRATE] = "migrate",
	[VSM_PH_TAKE] = "take",
	[VSM_PH_TAKEN] = "taken",
	[VSM_PH_LOADING] = "loading",
	[VSM_PH_COMMITTED] = "committed",
	[VSM_PH_DONE] = "done",
	[VSM_PH_RETURN] = "return",
	[VSM_PH_ROLLED_BACK] = "rolled-back",
};

const char *vsm_phase_name(enum vsm_phase p)
{
	return p <= VSM_PH_ROLLED_BACK ? phase_names[p] : "?";
}

unsigned long long vsm_proc_starttime(pid_t pid)
{
	char path[64], buf[1024], *p;
	unsigned long long st = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	f = fopen(path, "r");
	if (!f)
		return 0;
	if (fgets(buf, sizeof(buf), f) && (p = strrchr(buf, ')'))) {
		/* Fields after the command: state is 3, starttime 22. */
		if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d %*d %*d %*d %llu",
			   &st) != 1)
			st = 0;
	}
	fclose(f);
	return st;
}

#define JADD(o, k, v) json_object_object_add(o, k, v)
#define JI(v) json_object_new_int64((int64_t)(v))
#define JS(v) json_object_new_string(v)

int vsm_journal_write(const struct vsm_journal *j, const struct vsm_xfer *x)
{
	struct json_object *o = json_object_new_object(), *bl, *pl;
	char tmp[600];
	const char *s;
	int fd, ret = -1;

	if (!j->path[0])
		return 0;
	JADD(o, "version", JI(1));
	JADD(o, "phase", JS(vsm_phase_name(j->phase)));
	JADD(o, "src_pid", JI(j->src_pid));
	JADD(o, "src_start", JI(j->src_start));
	JADD(o, "dst_pid", JI(j->dst_pid));
	JADD(o, "dst_start", JI(j->dst_start));
	JADD(o, "src_qmp", JS(j->src_qmp));
	JADD(o, "dst_qmp", JS(j->dst_qmp));
	JADD(o, "src_was_running", json_object_new_boolean(j->src_was_running));
	JADD(o, "old_bandwidth", JI(j->old_bandwidth));
	JADD(o, "unmap", json_object_new_boolean(x->unmap));
	JADD(o, "src_pidfd", JI(x->src_pidfd));
	JADD(o, "backed_up", json_object_new_boolean(x->backed_up));
	bl = json_object_new_array();
	for (int i = 0; i < x->nblocks; i++) {
		struct json_object *b = json_object_new_object();

		JADD(b, "name", JS(x->blocks[i].name));
		JADD(b, "src", JI(x->blocks[i].src));
		JADD(b, "dst", JI(x->blocks[i].dst));
		JADD(b, "len", JI(x->blocks[i].len));
		json_object_array_add(bl, b);
	}
	JADD(o, "blocks", bl);
	pl = json_object_new_array();
	for (int i = 0; i < x->npipes; i++) {
		const struct vsm_xpipe *p = &x->pipes[i];
		struct json_object *po = json_object_new_object(), *sg;

		JADD(po, "src_r", JI(p->src_r));
		JADD(po, "src_w", JI(p->src_w));
		JADD(po, "given", JI(p->given));
		JADD(po, "taken", JI(p->taken));
		JADD(po, "a_start", JI(p->a_start));
		JADD(po, "back", JI(p->back));
		JADD(po, "backup", json_object_new_boolean(p->backup));
		JADD(po, "next_block", JI(p->next_block));
		JADD(po, "next_off", JI(p->next_off));
		sg = json_object_new_array();
		for (int k = 0; k < p->nseg; k++) {
			struct json_object *t = json_object_new_array();

			json_object_array_add(t, JI(p->seg[k].block));
			json_object_array_add(t, JI(p->seg[k].off));
			json_object_array_add(t, JI(p->seg[k].len));
			json_object_array_add(sg, t);
		}
		JADD(po, "segs", sg);
		json_object_array_add(pl, po);
	}
	JADD(o, "pipes", pl);
	s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY);
	snprintf(tmp, sizeof(tmp), "%s.tmp", j->path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd >= 0) {
		size_t n = strlen(s);

		if (write(fd, s, n) == (ssize_t)n && !close(fd))
			ret = rename(tmp, j->path);
		else
			close(fd);
	}
	json_object_put(o);
	return ret;
}

static int64_t jint(struct json_object *o, const char *k, int64_t dflt)
{
	struct json_object *v;

	return json_object_object_get_ex(o, k, &v) ? json_object_get_int64(v) : dflt;
}

static const char *jstr(struct json_object *o, const char *k)
{
	struct json_object *v;

	return json_object_object_get_ex(o, k, &v) ? json_object_get_string(v) : "";
}

int vsm_journal_read(const char *path, struct vsm_journal *j,
		     struct vsm_xfer *x, char *err, size_t errlen)
{
	struct json_object *o = json_object_from_file(path), *bl, *pl, *v;
	const char *ph;

	memset(j, 0, sizeof(*j));
	if (!o) {
		snprintf(err, errlen, "cannot read journal %s", path);
		return -1;
	}
	if (jint(o, "version", 0) != 1 ||
	    !json_object_object_get_ex(o, "blocks", &bl) ||
	    !json_object_object_get_ex(o, "pipes", &pl)) {
		snprintf(err, errlen, "journal %s: not understood", path);
		json_object_put(o);
		return -1;
	}
	snprintf(j->path, sizeof(j->path), "%s", path);
	ph = jstr(o, "phase");
	j->phase = VSM_PH_PREFLIGHT;
	for (int i = 0; i <= VSM_PH_ROLLED_BACK; i++)
		if (!strcmp(ph, phase_names[i]))
			j->phase = i;
	j->src_pid = jint(o, "src_pid", 0);
	j->dst_pid = jint(o, "dst_pid", 0);
	j->src_start = jint(o, "src_start", 0);
	j->dst_start = jint(o, "dst_start", 0);
	snprintf(j->src_qmp, sizeof(j->src_qmp), "%s", jstr(o, "src_qmp"));
	snprintf(j->dst_qmp, sizeof(j->dst_qmp), "%s", jstr(o, "dst_qmp"));
	j->src_was_running = json_object_object_get_ex(o, "src_was_running", &v) &&
			     json_object_get_boolean(v);
	j->old_bandwidth = jint(o, "old_bandwidth", -1);
	x->unmap = json_object_object_get_ex(o, "unmap", &v) &&
		   json_object_get_boolean(v);
	x->src_pidfd = jint(o, "src_pidfd", -1);
	x->backed_up = json_object_object_get_ex(o, "backed_up", &v) &&
		       json_object_get_boolean(v);
	x->nblocks = json_object_array_length(bl);
	x->blocks = calloc(x->nblocks ? x->nblocks : 1, sizeof(*x->blocks));
	for (int i = 0; i < x->nblocks; i++) {
		struct json_object *b = json_object_array_get_idx(bl, i);

		snprintf(x->blocks[i].name, sizeof(x->blocks[i].name), "%s",
			 jstr(b, "name"));
		x->blocks[i].src = jint(b, "src", 0);
		x->blocks[i].dst = jint(b, "dst", 0);
		x->blocks[i].len = jint(b, "len", 0);
	}
	x->npipes = x->cappipes = json_object_array_length(pl);
	x->pipes = calloc(x->npipes ? x->npipes : 1, sizeof(*x->pipes));
	for (int i = 0; i < x->npipes; i++) {
		struct json_object *po = json_object_array_get_idx(pl, i), *sg;
		struct vsm_xpipe *p = &x->pipes[i];

		p->rfd = p->wfd = -1;
		p->dst_r = p->dst_w = -1;
		p->src_r = jint(po, "src_r", -1);
		p->src_w = jint(po, "src_w", -1);
		p->given = jint(po, "given", 0);
		p->taken = jint(po, "taken", 0);
		p->a_start = jint(po, "a_start", 0);
		p->back = jint(po, "back", 0);
		p->backup = json_object_object_get_ex(po, "backup", &v) &&
			    json_object_get_boolean(v);
		p->next_block = jint(po, "next_block", -1);
		p->next_off = jint(po, "next_off", 0);
		if (json_object_object_get_ex(po, "segs", &sg)) {
			p->nseg = p->capseg = json_object_array_length(sg);
			p->seg = calloc(p->nseg ? p->nseg : 1, sizeof(*p->seg));
			for (int k = 0; k < p->nseg; k++) {
				struct json_object *t = json_object_array_get_idx(sg, k);

				p->seg[k].block = json_object_get_int64(json_object_array_get_idx(t, 0));
				p->seg[k].off = json_object_get_int64(json_object_array_get_idx(t, 1));
				p->seg[k].len = json_object_get_int64(json_object_array_get_idx(t, 2));
				if (p->seg[k].block < 0 || p->seg[k].block >= x->nblocks) {
					snprintf(err, errlen, "journal %s: bad segment", path);
					json_object_put(o);
					return -1;
				}
			}
		}
	}
	json_object_put(o);
	return 0;
}
