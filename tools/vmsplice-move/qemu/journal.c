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
	[VSM_PH_PRECOPY] = "precopy",
	[VSM_PH_STOPPED] = "stopped",
	[VSM_PH_GIVE] = "give",
	[VSM_PH_MIGRATE] = "migrate",
	[VSM_PH_TAKE] = "take",
	[VSM_PH_TAKEN] = "taken",
	[VSM_PH_LOADING] = "loading",
	[VSM_PH_COMMITTED] = "committed",
	[VSM_PH_DONE] = "done",
	[VSM_PH_RETURN] = "return",
	[VSM_PH_RETURNED] = "returned",
	[VSM_PH_ROLLED_BACK] = "rolled-back",
};

const char *vsm_phase_name(enum vsm_phase p)
{
	return p <= VSM_PH_ROLLED_BACK ? phase_names[p] : "?";
}

#define JADD(o, k, v) json_object_object_add(o, k, v)
#define JI(v) json_object_new_int64((int64_t)(v))
#define JS(v) json_object_new_string(v)

static int header(struct vsm_journal *j, const struct vsm_xfer *x)
{
	struct json_object *o = json_object_new_object(), *bl;
	const char *s;
	int ret = 0;

	JADD(o, "version", JI(2));
	JADD(o, "src_pid", JI(j->src_pid));
	JADD(o, "src_start", JI(j->src_start));
	JADD(o, "dst_pid", JI(j->dst_pid));
	JADD(o, "dst_start", JI(j->dst_start));
	JADD(o, "src_qmp", JS(j->src_qmp));
	JADD(o, "dst_qmp", JS(j->dst_qmp));
	JADD(o, "src_was_running", json_object_new_boolean(j->src_was_running));
	JADD(o, "unmap", json_object_new_boolean(x->unmap));
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
	s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
	j->fd = open(j->path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600);
	if (j->fd < 0 || dprintf(j->fd, "H %s\n", s) < 0)
		ret = -1;
	json_object_put(o);
	j->started = true;
	j->w_phase = (enum vsm_phase)-1;
	j->w_bandwidth = j->w_downtime = -1;
	j->w_pause = -1;
	j->w_pidfd = -1;
	return ret;
}

#define EMIT(...) do { n += snprintf(buf + n, sizeof(buf) - n, __VA_ARGS__); \
		if (n > (int)sizeof(buf) - 128 && flush(j, buf, &n)) return -1; } while (0)

static int flush(struct vsm_journal *j, char *buf, int *n)
{
	int r = *n ? (write(j->fd, buf, *n) == *n ? 0 : -1) : 0;

	*n = 0;
	return r;
}

int vsm_journal_write(struct vsm_journal *j, const struct vsm_xfer *x)
{
	char buf[8192];
	int n = 0;

	if (!j->path[0])
		return 0;
	if (!j->started && header(j, x))
		return -1;
	if (j->w_phase != j->phase) {
		EMIT("P %s\n", vsm_phase_name(j->phase));
		j->w_phase = j->phase;
	}
	if (j->w_bandwidth != j->old_bandwidth) {
		EMIT("W %lld\n", j->old_bandwidth);
		j->w_bandwidth = j->old_bandwidth;
	}
	if (j->w_downtime != j->old_downtime || j->w_pause != j->old_pause) {
		EMIT("C %lld %d\n", j->old_downtime, j->old_pause);
		j->w_downtime = j->old_downtime;
		j->w_pause = j->old_pause;
	}
	if (j->w_pidfd != x->src_pidfd) {
		EMIT("F %ld\n", x->src_pidfd);
		j->w_pidfd = x->src_pidfd;
	}
	if (x->npipes > j->w_cap) {
		struct vsm_jpipe *w = realloc(j->w, x->cappipes * sizeof(*w));

		if (!w)
			return -1;
		memset(w + j->w_cap, 0, (x->cappipes - j->w_cap) * sizeof(*w));
		j->w = w;
		j->w_cap = x->cappipes;
	}
	for (int i = 0; i < x->npipes; i++) {
		const struct vsm_xpipe *p = &x->pipes[i];
		struct vsm_jpipe *w = &j->w[i];

		if (i >= j->w_npipes) {
			EMIT("N %d %d %d %d\n", i, p->src_r, p->src_w, p->backup);
			w->next_block = -1;
			j->w_npipes = i + 1;
		}
		if (p->nseg < w->nseg)
			w->nseg = 0;	/* the ledger was emptied: rewrite */
		for (int k = w->nseg ? w->nseg - 1 : 0; k < p->nseg; k++) {
			if (k == w->nseg - 1 && p->seg[k].len == w->last_len)
				continue;
			EMIT("S %d %d %d %llu %llu\n", i, k, p->seg[k].block,
			     (unsigned long long)p->seg[k].off,
			     (unsigned long long)p->seg[k].len);
		}
		if (p->nseg != w->nseg || (p->nseg && p->seg[p->nseg - 1].len != w->last_len))
			EMIT("L %d %d\n", i, p->nseg);
		w->nseg = p->nseg;
		w->last_len = p->nseg ? p->seg[p->nseg - 1].len : 0;
#define FIELD(tag, f) if (w->f != p->f) { EMIT(tag " %d %llu\n", i, (unsigned long long)p->f); w->f = p->f; }
		FIELD("G", given)
		FIELD("T", taken)
		FIELD("A", a_start)
		FIELD("B", back)
#undef FIELD
		if (w->next_block != p->next_block || w->next_off != p->next_off) {
			EMIT("I %d %d %llu\n", i, p->next_block,
			     (unsigned long long)p->next_off);
			w->next_block = p->next_block;
			w->next_off = p->next_off;
		}
	}
	if (j->w_backed_up != x->backed_up) {
		EMIT("K %d\n", x->backed_up);
		j->w_backed_up = x->backed_up;
	}
	return flush(j, buf, &n);
}

void vsm_journal_close(struct vsm_journal *j)
{
	if (j->started && j->fd >= 0)
		close(j->fd);
	j->started = false;
	free(j->w);
	j->w = NULL;
	j->w_cap = j->w_npipes = 0;
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

static struct vsm_xpipe *jpipe(struct vsm_xfer *x, int i)
{
	if (i < 0 || i > 1 << 20)
		return NULL;
	if (i >= x->cappipes) {
		int cap = i + 16;
		struct vsm_xpipe *np = realloc(x->pipes, cap * sizeof(*np));

		if (!np)
			return NULL;
		memset(np + x->cappipes, 0, (cap - x->cappipes) * sizeof(*np));
		x->pipes = np;
		x->cappipes = cap;
	}
	if (i >= x->npipes) {
		for (int k = x->npipes; k <= i; k++) {
			x->pipes[k].rfd = x->pipes[k].wfd = -1;
			x->pipes[k].src_r = x->pipes[k].src_w = -1;
			x->pipes[k].dst_r = x->pipes[k].dst_w = -1;
			x->pipes[k].next_block = -1;
		}
		x->npipes = i + 1;
	}
	return &x->pipes[i];
}

int vsm_journal_read(const char *path, struct vsm_journal *j,
		     struct vsm_xfer *x, char *err, size_t errlen)
{
	FILE *f = fopen(path, "r");
	struct json_object *o, *bl, *v;
	char *line = NULL;
	size_t cap = 0;
	ssize_t len;
	int ret = -1, lineno = 0;

	memset(j, 0, sizeof(*j));
	j->fd = -1;
	if (!f) {
		snprintf(err, errlen, "cannot read journal %s: %s", path, strerror(errno));
		return -1;
	}
	snprintf(j->path, sizeof(j->path), "%s", path);
	j->old_bandwidth = j->old_downtime = j->old_pause = -1;
	x->src_pidfd = -1;
	while ((len = getline(&line, &cap, f)) > 0) {
		unsigned long long a, b, c;
		int i, k, blk;
		struct vsm_xpipe *p;

		lineno++;
		if (line[len - 1] != '\n')
			break;	/* cut short by a crash: the step did not happen */
		line[len - 1] = 0;
		if (lineno == 1) {
			if (strncmp(line, "H ", 2) || !(o = json_tokener_parse(line + 2)) ||
			    jint(o, "version", 0) != 2 ||
			    !json_object_object_get_ex(o, "blocks", &bl)) {
				snprintf(err, errlen, "journal %s: not understood", path);
				goto out;
			}
			j->src_pid = jint(o, "src_pid", 0);
			j->dst_pid = jint(o, "dst_pid", 0);
			j->src_start = jint(o, "src_start", 0);
			j->dst_start = jint(o, "dst_start", 0);
			snprintf(j->src_qmp, sizeof(j->src_qmp), "%s", jstr(o, "src_qmp"));
			snprintf(j->dst_qmp, sizeof(j->dst_qmp), "%s", jstr(o, "dst_qmp"));
			j->src_was_running = json_object_object_get_ex(o, "src_was_running", &v) &&
					     json_object_get_boolean(v);
			x->unmap = json_object_object_get_ex(o, "unmap", &v) &&
				   json_object_get_boolean(v);
			x->nblocks = json_object_array_length(bl);
			x->blocks = calloc(x->nblocks ? x->nblocks : 1, sizeof(*x->blocks));
			for (int n = 0; n < x->nblocks; n++) {
				struct json_object *bo = json_object_array_get_idx(bl, n);

				snprintf(x->blocks[n].name, sizeof(x->blocks[n].name), "%s",
					 jstr(bo, "name"));
				x->blocks[n].src = jint(bo, "src", 0);
				x->blocks[n].dst = jint(bo, "dst", 0);
				x->blocks[n].len = jint(bo, "len", 0);
			}
			json_object_put(o);
			continue;
		}
		switch (line[0]) {
		case 'P':
			for (int n = 0; n <= VSM_PH_ROLLED_BACK; n++)
				if (phase_names[n] && !strcmp(line + 2, phase_names[n]))
					j->phase = n;
			break;
		case 'W':
			j->old_bandwidth = atoll(line + 2);
			break;
		case 'C':
			if (sscanf(line + 2, "%lld %d", &j->old_downtime, &j->old_pause) != 2)
				goto bad;
			break;
		case 'F':
			x->src_pidfd = atol(line + 2);
			break;
		case 'K':
			x->backed_up = atoi(line + 2);
			break;
		case 'N':
			if (sscanf(line + 2, "%d %llu %llu %llu", &i, &a, &b, &c) != 4 ||
			    !(p = jpipe(x, i)))
				goto bad;
			p->src_r = (int)a;
			p->src_w = (int)b;
			p->backup = c;
			break;
		case 'S':
			if (sscanf(line + 2, "%d %d %d %llu %llu", &i, &k, &blk, &a, &b) != 5 ||
			    !(p = jpipe(x, i)) || k < 0 || k > p->nseg ||
			    blk < 0 || blk >= x->nblocks)
				goto bad;
			if (k == p->nseg) {
				struct vsm_seg *ns = realloc(p->seg, (k + 1) * sizeof(*ns));

				if (!ns)
					goto bad;
				p->seg = ns;
				p->nseg = p->capseg = k + 1;
			}
			p->seg[k] = (struct vsm_seg){ blk, a, b };
			break;
		case 'L':
			if (sscanf(line + 2, "%d %d", &i, &k) != 2 || !(p = jpipe(x, i)) ||
			    k < 0 || k > p->nseg)
				goto bad;
			p->nseg = k;
			break;
		case 'G': case 'T': case 'A': case 'B':
			if (sscanf(line + 2, "%d %llu", &i, &a) != 2 || !(p = jpipe(x, i)))
				goto bad;
			*(line[0] == 'G' ? &p->given : line[0] == 'T' ? &p->taken :
			  line[0] == 'A' ? &p->a_start : &p->back) = a;
			break;
		case 'I':
			if (sscanf(line + 2, "%d %d %llu", &i, &blk, &a) != 3 || !(p = jpipe(x, i)))
				goto bad;
			p->next_block = blk;
			p->next_off = a;
			break;
		default:
			goto bad;
		}
	}
	if (lineno < 1) {
		snprintf(err, errlen, "journal %s is empty", path);
		goto out;
	}
	ret = 0;
	goto out;
bad:
	snprintf(err, errlen, "journal %s: line %d not understood", path, lineno);
out:
	free(line);
	fclose(f);
	return ret;
}
