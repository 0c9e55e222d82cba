// SPDX-License-Identifier: GPL-2.0
/*
 * `vmsplice-move qemu-handoff`: the flow.
 *
 *   preflight  QMP to both QEMUs, versions, machine types, RAM block
 *              layouts, each block's host address confirmed in both
 *              processes, ptrace permission, kernel support, fd budget.
 *              Nothing has been touched; any failure is a plain error.
 *   stop       the source VM stops (downtime starts); its blocks are
 *              checked once more against guest memory.
 *   give       the source vmsplices its RAM into pipes it holds itself
 *              (SPLICE_F_GIFT | SPLICE_F_UNMAP): its RAM reads zeros.
 *   migrate    QEMU's own migration over a UNIX socket moves the device
 *              state; RAM pages are all zero now, so the destination
 *              leaves its (untouched) RAM alone and the stream is small.
 *              The destination, started with -S, stays paused.
 *   take       the destination vmsplices the pipes into its RAM
 *              (SPLICE_F_MOVE).
 *   cont       the destination runs (downtime ends): the point of no
 *              return.  The source is told to quit.
 *
 * Any failure before cont puts every page back into the source (from the
 * pipes, and from the destination for what it had taken), cancels the
 * migration and resumes the source.  If this tool dies, the pages are in
 * the source's pipes or in the destination; `--recover --journal FILE`
 * finishes the job from the journal.
 */
#define _GNU_SOURCE
#include "cmd.h"
#include "handoff.h"
#include "inject.h"
#include "journal.h"
#include "qmp.h"
#include "ramblocks.h"
#include "stream.h"
#include "xfer.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <json-c/json.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MIB		(1024.0 * 1024.0)
#define QMP_MS		10000
#define MIGRATE_MS	600000
#define MBUF		(1 << 20)	/* one read of the migration stream */
#define MIG_AHEAD	(512 << 10)	/* what QEMU may write before it blocks */
#define TARGET_PAGE	4096
#define PASS_LEFT_MAX	1024	/* pages of the first pass left at the stop */
#define PASS_LEFT_GOAL	256

struct opts {
	const char *src_qmp, *dst_qmp, *dst_exec, *journal, *tmpdir;
	uint64_t min_block;
	bool json, quiet, progress, recover, force_copy;
	bool sparse, backup, precopy;
	int timeout_s;
};

struct counters {
	bool have;
	long long moved, zero, fallback, unmapped;
};

struct ctx {
	struct opts o;
	struct vsm_qmp *src, *dst;
	pid_t src_pid, dst_pid, dst_child;
	char src_version[64], dst_version[64], machine[128];
	struct vsm_ramlist srl, drl;
	struct vsm_xfer x;
	struct vsm_journal j;
	char tmpdir[256], migsock[300], srcsock[300];
	uint8_t *stream;
	size_t stream_len;
	struct vsm_stream_stats sst;
	/* the source's migration into this tool */
	int mlfd, mfd;
	struct vsm_stream *fs;
	uint8_t *mbuf;
	double mdeadline;
	const char *precopy;	/* "off", "used", or "fallback" (race lost) */
	uint64_t precopy_streamed, precopy_dropped;
	uint64_t pass_goal;	/* read the stream to this byte, then look again */
	double per_recent;	/* bytes per record of the pass, lately */
	double fallback_pause;	/* ms the guest stood still in a lost race */
	long long pass_left;	/* pages of the pass left when it stopped */
	bool own_tmpdir;
	/* times (ms, CLOCK_MONOTONIC) */
	double t0, t_precopy, t_stop, t_paused, t_verified, t_given, t_migrated, t_moved, t_taken, t_loaded, t_cont, t_end;
	uint64_t guest_ram, copied_blocks_bytes, stream_bytes;
	uint64_t peak_mem, overhead;
	struct counters c0, c1;
	struct failpt {
		const char *name, *action;
		int count, hits;
	} fail[4];
	int nfail;
	char err[1024];
	bool env;		/* the refusal is this system's (exit 5) */
	bool dst_quit, dst_died; /* we told it to quit; it had exited before */
	bool progress_shown;
};

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int cerr(struct ctx *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static int cerr(struct ctx *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(c->err, sizeof(c->err), fmt, ap);
	va_end(ap);
	return -1;
}

/* A refusal that no retry fixes: this system (policy, limits) cannot. */
#define cerr_env(c, ...)	((c)->env = true, cerr((c), __VA_ARGS__))

static void note(struct ctx *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void note(struct ctx *c, const char *fmt, ...)
{
	va_list ap;

	if (c->o.quiet)
		return;
	if (c->progress_shown) {
		fputc('\n', stderr);
		c->progress_shown = false;
	}
	va_start(ap, fmt);
	fputs("qemu-handoff: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

static bool proc_alive(pid_t pid, unsigned long long start);

/*
 * ---- failure injection for the tests:
 * VSM_QEMU_FAILPOINT=name[:n]=action[,name[:n]=action...]
 */

#define MAX_FAILPOINTS	4

static void failpoint_init(struct ctx *c)
{
	static char buf[256];
	const char *e = getenv("VSM_QEMU_FAILPOINT");
	char *save = NULL, *tok;

	if (!e)
		return;
	snprintf(buf, sizeof(buf), "%s", e);
	for (tok = strtok_r(buf, ",", &save); tok && c->nfail < MAX_FAILPOINTS;
	     tok = strtok_r(NULL, ",", &save)) {
		struct failpt *f = &c->fail[c->nfail];
		char *eq = strchr(tok, '='), *colon;

		if (!eq)
			continue;
		*eq = 0;
		f->action = eq + 1;
		colon = strchr(tok, ':');
		f->count = 1;
		if (colon) {
			*colon = 0;
			f->count = atoi(colon + 1);
		}
		f->name = tok;
		c->nfail++;
	}
}

static int failpoint(struct ctx *c, const char *name)
{
	struct failpt *f = NULL;

	for (int i = 0; i < c->nfail; i++)
		if (!strcmp(c->fail[i].name, name) && ++c->fail[i].hits == c->fail[i].count)
			f = &c->fail[i];
	if (!f)
		return 0;
	if (!strcmp(f->action, "kill-self")) {
		raise(SIGKILL);
	} else if (!strcmp(f->action, "kill-dest")) {
		if (c->dst_pid > 0) {
			kill(c->dst_pid, SIGKILL);
			/* Wait until it is really gone. */
			for (int i = 0; i < 5000 && proc_alive(c->dst_pid, c->j.dst_start); i++) {
				if (c->dst_child > 0 &&
				    waitpid(c->dst_child, NULL, WNOHANG) == c->dst_child)
					break;
				usleep(1000);
			}
		}
		return 0;
	} else if (!strcmp(f->action, "delay")) {
		/* Widen a window: whatever runs meanwhile must be safe. */
		usleep(1000 * 1000);
		return 0;
	} else if (!strcmp(f->action, "fail")) {
		return cerr(c, "injected failure at %s", name);
	}
	return 0;
}

/* ---- memory accounting */

static uint64_t rss_of(pid_t pid)
{
	char path[64], line[256];
	unsigned long long kb = 0;
	FILE *f;

	if (pid <= 0)
		return 0;
	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	f = fopen(path, "r");
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %llu", &kb) == 1)
			break;
	fclose(f);
	return kb * 1024;
}

/*
 * Source + destination + this tool, plus the pages held only by pipes
 * (given, unmapped from the source and not yet taken; backup pipes only
 * reference pages the destination maps).  At most every 2 ms.
 */
static void sample_mem(struct ctx *c)
{
	static double last;
	double t = now_ms();
	uint64_t m;

	if (t - last < 2 && c->peak_mem)
		return;
	last = t;
	m = rss_of(c->src_pid) + rss_of(c->dst_pid) + rss_of(getpid());
	if (c->x.unmapped_total > c->x.taken_total)
		m += c->x.unmapped_total - c->x.taken_total;
	if (m > c->peak_mem)
		c->peak_mem = m;
}

static void read_counters(struct counters *k)
{
	char line[256];
	FILE *f = fopen("/proc/vmstat", "r");

	memset(k, 0, sizeof(*k));
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		char name[128];
		long long v;

		if (sscanf(line, "%127s %lld", name, &v) != 2 ||
		    strncmp(name, "vmsplice_", 9))
			continue;
		k->have = true;
		if (!strcmp(name, "vmsplice_move_pages"))
			k->moved = v;
		else if (!strcmp(name, "vmsplice_move_zero_pages"))
			k->zero = v;
		else if (!strcmp(name, "vmsplice_gift_unmapped"))
			k->unmapped = v;
		else if (!strncmp(name, "vmsplice_move_fallback_", 23))
			k->fallback += v;
	}
	fclose(f);
}

/* ---- progress and journal, called after every injected vmsplice */

static int xfer_hook(struct vsm_xfer *x, enum vsm_xfer_hook what, void *arg)
{
	struct ctx *c = arg;
	static const char *const names[] = { "give", "take", "return" };
	uint64_t done = what == VSM_HOOK_GIVE ? x->given_total :
			what == VSM_HOOK_TAKE ? x->taken_total : x->returned_total;

	char pre[16];

	sample_mem(c);
	/* Tests: die with the journal one step behind the pipes. */
	snprintf(pre, sizeof(pre), "pre-%s", names[what]);
	if (failpoint(c, pre))
		return -1;
	if (vsm_journal_write(&c->j, x))
		return cerr(c, "cannot write the journal %s: %s", c->j.path,
			    strerror(errno));
	if (c->o.progress && !c->o.quiet && x->total) {
		fprintf(stderr, "\r  %-6s %8.1f / %8.1f MiB  %3.0f%%", names[what],
			done / MIB, x->total / MIB, 100.0 * done / x->total);
		c->progress_shown = true;
	}
	return failpoint(c, names[what]);
}

static int set_phase(struct ctx *c, enum vsm_phase p)
{
	c->j.phase = p;
	if (vsm_journal_write(&c->j, &c->x))
		return cerr(c, "cannot write the journal %s: %s", c->j.path,
			    strerror(errno));
	return 0;
}

/* ---- QMP helpers */

static bool status_is(struct vsm_qmp *q, const char *want)
{
	char *s = vsm_qmp_status(q, QMP_MS);
	bool r = s && !strcmp(s, want);

	free(s);
	return r;
}

static int qversion(struct vsm_qmp *q, char *buf, size_t len, int *major,
		    int *minor)
{
	struct json_object *r = vsm_qmp_exec(q, "query-version", NULL, QMP_MS), *v, *f;

	if (!r)
		return -1;
	if (!json_object_object_get_ex(r, "qemu", &v)) {
		json_object_put(r);
		return -1;
	}
	*major = json_object_object_get_ex(v, "major", &f) ? json_object_get_int(f) : 0;
	*minor = json_object_object_get_ex(v, "minor", &f) ? json_object_get_int(f) : 0;
	snprintf(buf, len, "%d.%d.%d", *major, *minor,
		 json_object_object_get_ex(v, "micro", &f) ? json_object_get_int(f) : 0);
	json_object_put(r);
	return 0;
}

static int machine_type(struct vsm_qmp *q, char *buf, size_t len)
{
	struct json_object *a = json_object_new_object(), *r;

	json_object_object_add(a, "path", json_object_new_string("/machine"));
	json_object_object_add(a, "property", json_object_new_string("type"));
	r = vsm_qmp_exec(q, "qom-get", a, QMP_MS);
	if (!r)
		return -1;
	snprintf(buf, len, "%s", json_object_get_string(r));
	json_object_put(r);
	return 0;
}

static pid_t qemu_pid(struct vsm_qmp *q, const char *what, char *err, size_t len)
{
	pid_t pid = vsm_qmp_peer_pid(q);
	char exe[256], path[64];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%d/exe", pid);
	n = pid > 0 ? readlink(path, exe, sizeof(exe) - 1) : -1;
	if (n <= 0) {
		snprintf(err, len, "%s: cannot tell which process serves the QMP socket", what);
		return -1;
	}
	exe[n] = 0;
	if (!strstr(exe, "qemu-system")) {
		snprintf(err, len, "%s: the QMP socket is served by %s (pid %d), not a QEMU system emulator",
			 what, exe, pid);
		return -1;
	}
	return pid;
}

/* ---- preflight */

static int same_layout(struct ctx *c)
{
	if (c->srl.n != c->drl.n)
		return cerr(c, "the source has %d RAM blocks, the destination %d: the two QEMUs are not configured alike",
			    c->srl.n, c->drl.n);
	for (int i = 0; i < c->srl.n; i++) {
		struct vsm_ramblock *s = &c->srl.b[i];
		struct vsm_ramblock *d = vsm_ram_find(&c->drl, s->name);

		if (!d)
			return cerr(c, "RAM block %s is missing in the destination", s->name);
		if (d->used != s->used || d->max != s->max)
			return cerr(c, "RAM block %s has size %#llx/%#llx in the source and %#llx/%#llx in the destination",
				    s->name, (unsigned long long)s->used,
				    (unsigned long long)s->max,
				    (unsigned long long)d->used,
				    (unsigned long long)d->max);
	}
	return 0;
}

static int locate_blocks(struct ctx *c)
{
	char err[512];
	int nmoved = 0;

	c->x.blocks = calloc(c->srl.n, sizeof(*c->x.blocks));
	if (!c->x.blocks)
		return cerr(c, "out of memory");
	for (int i = 0; i < c->srl.n; i++) {
		struct vsm_ramblock *s = &c->srl.b[i];
		struct vsm_ramblock *d = vsm_ram_find(&c->drl, s->name);
		int rs, rd;

		c->guest_ram += s->used;
		if (s->used < c->o.min_block) {
			c->copied_blocks_bytes += s->used;
			continue;
		}
		rs = vsm_ram_locate_by_content(c->src, c->src_pid, s, 4,
					       c->tmpdir, err, sizeof(err));
		if (rs < 0)
			return cerr(c, "source: %s", err);
		rd = vsm_ram_locate_by_marker(c->dst, c->dst_pid, d, c->tmpdir,
					      err, sizeof(err));
		if (rd < 0)
			return cerr(c, "destination: %s", err);
		if (rs != 1 || rd != 1) {
			note(c, "block %s (%.1f MiB) not located in the %s: QEMU's migration copies it",
			     s->name, s->used / MIB, rs != 1 ? "source" : "destination");
			c->copied_blocks_bytes += s->used;
			continue;
		}
		struct vsm_mblock *m = &c->x.blocks[c->x.nblocks++];

		snprintf(m->name, sizeof(m->name), "%s", s->name);
		m->src = s->host;
		m->dst = d->host;
		m->len = s->used;
		nmoved++;
	}
	if (!nmoved)
		return cerr(c, "no RAM block could be located in both processes; nothing to hand over without copying");
	return 0;
}

/* Why ptrace may be refused here, and what to do: for the error message. */
static const char *ptrace_hint(void)
{
	static char hint[256];
	int scope = -1;
	FILE *f = fopen("/proc/sys/kernel/yama/ptrace_scope", "r");

	if (f) {
		if (fscanf(f, "%d", &scope) != 1)
			scope = -1;
		fclose(f);
	}
	if (scope >= 3)
		snprintf(hint, sizeof(hint), "; kernel.yama.ptrace_scope is %d: no process may be traced until reboot", scope);
	else if (scope >= 1 && geteuid())
		snprintf(hint, sizeof(hint), "; kernel.yama.ptrace_scope is %d: run as root (CAP_SYS_PTRACE)%s", scope,
			 scope == 1 ? " or set it to 0" : "");
	else
		snprintf(hint, sizeof(hint), "; is another debugger attached (TracerPid in /proc/PID/status)?");
	return hint;
}

/*
 * Enough memory for what the hand-off holds on top of the guest's pages:
 * on the copy path the destination allocates each page before the pipe
 * lets go of the source's, one batch of pipes at a time.
 */
static int memory_check(struct ctx *c)
{
	char line[128];
	unsigned long long kb = 0, avail = 0;
	uint64_t batch = (uint64_t)c->x.pipe_size * c->x.pipes_per_batch, need;
	FILE *f = fopen("/proc/meminfo", "r");

	if (!f)
		return cerr(c, "/proc/meminfo: %s", strerror(errno));
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "MemAvailable: %llu kB", &kb) == 1)
			avail = kb << 10;
	fclose(f);
	need = (16ULL << 20) + (c->x.unmap ? 0 : (batch < c->x.total ? batch : c->x.total));
	if (avail < need)
		return cerr_env(c, "not enough memory: the %s path needs %.0f MiB free beside the guest's RAM, MemAvailable is %.0f MiB (free some memory%s)",
				c->x.unmap ? "move" : "copy", need / MIB, avail / MIB,
				c->x.unmap ? "" : ", or hand over on a kernel with SPLICE_F_UNMAP, which moves pages");
	return 0;
}

/* Seize and release a process once: is ptrace allowed, can we inject? */
static int ptrace_check(struct ctx *c, pid_t pid, const char *what)
{
	char err[512];
	struct vsm_victim *v = vsm_inject_seize(pid, err, sizeof(err));
	long r;

	if (!v)
		return cerr_env(c, "%s (pid %d): %s%s", what, pid, err, ptrace_hint());
	r = vsm_inject(v, SYS_getpid, 0, 0, 0, 0, 0, 0);
	vsm_inject_release(v);
	if (r != pid)
		return cerr(c, "%s (pid %d): an injected getpid() returned %ld", what, pid, r);
	return 0;
}

static int count_fds(pid_t pid)
{
	char path[64];
	struct dirent *e;
	int n = 0;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%d/fd", pid);
	d = opendir(path);
	if (!d)
		return -1;
	while ((e = readdir(d)))
		n += e->d_name[0] != '.';
	closedir(d);
	return n;
}

/* Enough fds in both QEMUs and here for the pipes (worst case: 4 KiB slots). */
static int fd_budget(struct ctx *c)
{
	uint64_t slots = c->x.total / 4096 + 1, per;
	long pipes;
	int fds[2];
	struct rlimit rl;

	if (pipe(fds))
		return cerr(c, "pipe: %s", strerror(errno));
	for (size_t sz = c->x.pipe_size; sz >= 65536; sz /= 2) {
		int got = fcntl(fds[1], F_SETPIPE_SZ, (int)sz);

		if (got > 0) {
			c->x.pipe_size = got;
			break;
		}
	}
	close(fds[0]);
	close(fds[1]);
	per = c->x.pipe_size / 4096;
	pipes = (slots + per - 1) / per + c->x.pipes_per_batch;
	getrlimit(RLIMIT_NOFILE, &rl);
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	if ((long)rl.rlim_cur < 2 * pipes + 64)
		return cerr_env(c, "this tool may open %llu files, the pipes need %ld (raise ulimit -n, or fs.pipe-max-size for larger pipes)",
			    (unsigned long long)rl.rlim_cur, 2 * pipes + 64);
	for (int i = 0; i < 2; i++) {
		pid_t pid = i ? c->dst_pid : c->src_pid;
		long need = (i ? 2 : 2) * pipes + 16;
		int open_fds = count_fds(pid);

		if (open_fds < 0)
			return cerr(c, "cannot list /proc/%d/fd: %s", pid, strerror(errno));
		if (prlimit(pid, RLIMIT_NOFILE, NULL, &rl))
			return cerr(c, "prlimit %d: %s", pid, strerror(errno));
		if ((long)rl.rlim_cur < open_fds + need) {
			struct rlimit nr = rl;

			nr.rlim_cur = open_fds + need;
			if ((long)nr.rlim_max < (long)nr.rlim_cur ||
			    prlimit(pid, RLIMIT_NOFILE, &nr, NULL))
				return cerr_env(c, "%s (pid %d) may open %llu files, has %d and needs %ld more for the pipes (start it with a higher ulimit -n, or run this as root)",
					    i ? "the destination" : "the source", pid,
					    (unsigned long long)rl.rlim_cur, open_fds, need);
			note(c, "raised the open-file limit of pid %d to %llu",
			     pid, (unsigned long long)nr.rlim_cur);
		}
	}
	return 0;
}

static int check_migration_caps(struct ctx *c)
{
	/*
	 * Refused because they change the stream or how it ends: RAM left
	 * out (x-ignore-shared) or sent elsewhere (multifd channels, which
	 * this tool does not accept), records this filter does not know
	 * (compress, xbzrle, block), a return path that waits for the
	 * destination's answer (return-path: the completion would hang with
	 * the RAM given), a pause this tool sets itself and does not expect
	 * stop-first (pause-before-switchover; left on after a failed
	 * restore, --recover turns it off), other iterative sections
	 * (dirty-bitmaps).
	 */
	static const char *const refused[] = { "postcopy-ram", "x-colo",
		"background-snapshot", "release-ram", "x-ignore-shared",
		"multifd", "compress", "xbzrle", "block", "return-path",
		"pause-before-switchover", "dirty-bitmaps", NULL };
	struct json_object *r = vsm_qmp_exec(c->src, "query-migrate-capabilities",
					     NULL, QMP_MS);

	if (!r)
		return cerr(c, "source: %s", vsm_qmp_error(c->src));
	for (size_t i = 0; i < json_object_array_length(r); i++) {
		struct json_object *e = json_object_array_get_idx(r, i), *n, *s;

		if (!json_object_object_get_ex(e, "capability", &n) ||
		    !json_object_object_get_ex(e, "state", &s) ||
		    !json_object_get_boolean(s))
			continue;
		for (int k = 0; refused[k]; k++)
			if (!strcmp(json_object_get_string(n), refused[k])) {
				json_object_put(r);
				return cerr(c, "the source has migration capability %s enabled; turn it off first",
					    refused[k]);
			}
	}
	json_object_put(r);
	return 0;
}

static int start_dest(struct ctx *c)
{
	char err[512];
	pid_t pid = fork();

	if (pid < 0)
		return cerr(c, "fork: %s", strerror(errno));
	if (pid == 0) {
		setsid();
		execl("/bin/sh", "sh", "-c", c->o.dst_exec, (char *)NULL);
		_exit(127);
	}
	c->dst_child = pid;
	for (int i = 0; i < 3000; i++) {
		c->dst = vsm_qmp_open(c->o.dst_qmp, QMP_MS, err, sizeof(err));
		if (c->dst)
			return 0;
		if (waitpid(pid, NULL, WNOHANG) == pid)
			return cerr(c, "the destination command exited: %s", c->o.dst_exec);
		usleep(10000);
	}
	return cerr(c, "the destination's QMP socket did not come up: %s", err);
}

static int preflight(struct ctx *c)
{
	char err[512], status[64] = "";
	int maj, min, dmaj, dmin;
	char *s;

	c->src = vsm_qmp_open(c->o.src_qmp, QMP_MS, err, sizeof(err));
	if (!c->src)
		return cerr(c, "source: %s", err);
	if (c->o.dst_exec) {
		if (start_dest(c))
			return -1;
	} else {
		c->dst = vsm_qmp_open(c->o.dst_qmp, QMP_MS, err, sizeof(err));
		if (!c->dst)
			return cerr(c, "destination: %s", err);
	}
	c->src_pid = qemu_pid(c->src, "source", err, sizeof(err));
	if (c->src_pid < 0)
		return cerr(c, "%s", err);
	c->dst_pid = qemu_pid(c->dst, "destination", err, sizeof(err));
	if (c->dst_pid < 0)
		return cerr(c, "%s", err);
	if (c->src_pid == c->dst_pid)
		return cerr(c, "the source and destination QMP sockets belong to the same process %d",
			    c->src_pid);
	if (qversion(c->src, c->src_version, sizeof(c->src_version), &maj, &min) ||
	    qversion(c->dst, c->dst_version, sizeof(c->dst_version), &dmaj, &dmin))
		return cerr(c, "query-version failed");
	/* What this tool knows of QEMU's migration and memory layout. */
	if (maj != 7 || min != 2 || dmaj != 7 || dmin != 2)
		return cerr_env(c, "QEMU %s -> %s: only QEMU 7.2 is understood by this tool (its migration stream and RAM layout are checked against 7.2)",
			    c->src_version, c->dst_version);
	s = vsm_qmp_status(c->src, QMP_MS);
	if (!s)
		return cerr(c, "source: %s", vsm_qmp_error(c->src));
	snprintf(status, sizeof(status), "%s", s);
	free(s);
	if (strcmp(status, "running") && strcmp(status, "paused"))
		return cerr(c, "the source VM is %s (needs running or paused)", status);
	c->j.src_was_running = !strcmp(status, "running");
	if (!status_is(c->dst, "inmigrate"))
		return cerr(c, "the destination is not waiting for a migration (start it with -incoming defer -S)");
	s = vsm_qmp_migrate_status(c->src, QMP_MS);
	if (s && strcmp(s, "none") && strcmp(s, "completed") &&
	    strcmp(s, "failed") && strcmp(s, "cancelled")) {
		cerr(c, "the source has a migration in state %s", s);
		free(s);
		return -1;
	}
	free(s);
	if (check_migration_caps(c))
		return -1;
	{
		char dm[128];

		if (machine_type(c->src, c->machine, sizeof(c->machine)) ||
		    machine_type(c->dst, dm, sizeof(dm)))
			return cerr(c, "qom-get /machine type failed");
		if (strcmp(dm, c->machine))
			return cerr(c, "machine types differ: source %s, destination %s",
				    c->machine, dm);
	}
	if (vsm_ram_query(c->src, &c->srl, err, sizeof(err)))
		return cerr(c, "source: %s", err);
	if (vsm_ram_query(c->dst, &c->drl, err, sizeof(err)))
		return cerr(c, "destination: %s", err);
	if (same_layout(c) || locate_blocks(c))
		return -1;
	if (ptrace_check(c, c->src_pid, "source") ||
	    ptrace_check(c, c->dst_pid, "destination"))
		return -1;
	c->x.unmap = !c->o.force_copy && vsm_kernel_has_unmap();
	c->x.sparse = c->o.sparse;
	if (vsm_xfer_plan(&c->x, c->src_pid))
		return cerr(c, "%s", c->x.err);
	if (fd_budget(c) || memory_check(c))
		return -1;
	/* What the two QEMUs and this tool hold besides the guest's pages. */
	{
		uint64_t all = rss_of(c->src_pid) + rss_of(c->dst_pid) + rss_of(getpid());

		c->overhead = all > c->x.total ? all - c->x.total : 0;
	}
	return failpoint(c, "preflight");
}

/* ---- the hand-off */

static int seize(struct ctx *c, pid_t pid, const char *what,
		 struct vsm_victim **v)
{
	char err[512];

	*v = vsm_inject_seize(pid, err, sizeof(err));
	if (!*v)
		return cerr(c, "%s: %s", what, err);
	return 0;
}

static int set_bandwidth(struct vsm_qmp *q, long long bw)
{
	struct json_object *a = json_object_new_object();

	json_object_object_add(a, "max-bandwidth", json_object_new_int64(bw));
	return vsm_qmp_run(q, "migrate-set-parameters", a, QMP_MS);
}

static long long get_bandwidth(struct vsm_qmp *q)
{
	struct json_object *r = vsm_qmp_exec(q, "query-migrate-parameters", NULL,
					     QMP_MS), *v;
	long long bw = -1;

	if (r && json_object_object_get_ex(r, "max-bandwidth", &v))
		bw = json_object_get_int64(v);
	json_object_put(r);
	return bw;
}

static bool proc_alive(pid_t pid, unsigned long long start)
{
	unsigned long long st = vsm_proc_starttime(pid);
	char path[64], s[512];
	FILE *f;
	bool zombie = false;

	if (!st || st != start)
		return false;
	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	f = fopen(path, "r");
	if (f) {
		if (fgets(s, sizeof(s), f)) {
			char *p = strrchr(s, ')');

			zombie = p && (p[2] == 'Z' || p[2] == 'X');
		}
		fclose(f);
	}
	return !zombie;
}

/* @pid exists and is not a zombie. */
static bool pid_running(pid_t pid)
{
	char path[64], s[512];
	bool run = false;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	f = fopen(path, "r");
	if (f) {
		if (fgets(s, sizeof(s), f)) {
			char *p = strrchr(s, ')');

			run = p && p[1] && p[2] != 'Z' && p[2] != 'X';
		}
		fclose(f);
	}
	return run;
}

static int listen_unix(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0 || strlen(path) >= sizeof(sa.sun_path))
		return -1;
	strcpy(sa.sun_path, path);
	unlink(path);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) || listen(fd, 1)) {
		close(fd);
		return -1;
	}
	return fd;
}

static int wait_migration(struct ctx *c, double deadline)
{
	for (;;) {
		char *s = vsm_qmp_migrate_status(c->src, QMP_MS);

		if (!s)
			return cerr(c, "source: %s", vsm_qmp_error(c->src));
		if (!strcmp(s, "completed")) {
			free(s);
			return 0;
		}
		if (!strcmp(s, "failed") || !strcmp(s, "cancelled")) {
			cerr(c, "the source's migration %s", s);
			free(s);
			return -1;
		}
		free(s);
		if (now_ms() > deadline)
			return cerr(c, "the migration did not complete within %d s",
				    MIGRATE_MS / 1000);
		usleep(500);
	}
}

/* ---- the source's migration into this tool */

static const char *mig_status_name(struct ctx *c, char *buf, size_t len)
{
	char *s = vsm_qmp_migrate_status(c->src, QMP_MS);

	snprintf(buf, len, "%s", s ? s : "?");
	free(s);
	return s ? buf : NULL;
}

/*
 * Start the source's migration into this tool (a UNIX socket it connects
 * to); the stream is filtered as it arrives (vsm_stream_feed()).
 * @precopy: the guest still runs, its RAM is still in place.
 */
static int mig_start(struct ctx *c, bool precopy)
{
	const char **moved = calloc(c->x.nblocks + 1, sizeof(*moved));
	struct json_object *a;
	char uri[320];
	struct pollfd p;

	if (!moved)
		return cerr(c, "out of memory");
	for (int i = 0; i < c->x.nblocks; i++)
		moved[i] = c->x.blocks[i].name;
	c->fs = vsm_stream_new(moved, precopy);
	free(moved);
	if (!c->mbuf)
		c->mbuf = malloc(MBUF);
	if (!c->fs || !c->mbuf)
		return cerr(c, "out of memory");
	c->mlfd = listen_unix(c->srcsock);
	if (c->mlfd < 0)
		return cerr(c, "cannot listen on %s: %s", c->srcsock, strerror(errno));
	if (c->j.old_bandwidth < 0)
		c->j.old_bandwidth = get_bandwidth(c->src);
	/*
	 * Full speed: the stream ends here, not on a network.  Stop-first:
	 * RAM reads zero now and the stream is small.  Precopy: the guest's
	 * pages are dropped as they arrive (none is kept), so the cap would
	 * only make the guest wait longer for its switch-over.
	 */
	if (set_phase(c, c->j.phase))	/* journals the old bandwidth first */
		return -1;
	if (set_bandwidth(c->src, 1LL << 40))
		return cerr(c, "source: %s", vsm_qmp_error(c->src));
	snprintf(uri, sizeof(uri), "unix:%s", c->srcsock);
	a = json_object_new_object();
	json_object_object_add(a, "uri", json_object_new_string(uri));
	if (vsm_qmp_run(c->src, "migrate", a, QMP_MS))
		return cerr(c, "source: %s", vsm_qmp_error(c->src));
	if (failpoint(c, "migrating"))
		return -1;
	p = (struct pollfd){ c->mlfd, POLLIN, 0 };
	if (poll(&p, 1, QMP_MS) <= 0 ||
	    (c->mfd = accept4(c->mlfd, NULL, NULL, SOCK_CLOEXEC)) < 0)
		return cerr(c, "the source did not connect its migration");
	c->mdeadline = now_ms() + MIGRATE_MS;
	return 0;
}

/* Close this tool's end of the stream (the source's migration is over). */
static void mig_close(struct ctx *c)
{
	if (c->mfd >= 0)
		close(c->mfd);
	if (c->mlfd >= 0)
		close(c->mlfd);
	c->mfd = c->mlfd = -1;
	unlink(c->srcsock);
	vsm_stream_free(c->fs);
	c->fs = NULL;
}

/*
 * Whether to look at where the source's first pass is (pass_hold()): once
 * this tool has read to within what QEMU may have written ahead of it
 * (MIG_AHEAD bytes of records of the size seen lately) of its end, or to
 * the byte the last look set.
 */
static bool pass_near_end(const struct ctx *c, const struct vsm_stream_stats *st)
{
	/*
	 * Data pages until enough records were seen: low guest RAM is often
	 * zero (below the guest's kernel), and a first look there would
	 * send the whole pass through the slow rounds below.
	 */
	uint64_t per = st->pass_records < 1024 ? 4104 :
		       c->per_recent > 9 ? (uint64_t)c->per_recent : 9;

	if (c->pass_goal)
		return st->in_bytes >= c->pass_goal;
	return st->pass_pages && st->pass_records + 256 + MIG_AHEAD / per >= st->pass_pages;
}

/*
 * Hold the source's first pass and say how much of it is left: this tool
 * stops reading, so QEMU blocks once the socket is full (up to 300 ms for
 * that: its queue stops growing), and query-migrate's "remaining" (its
 * dirty bitmap: nothing syncs it during the pass) gives the pages it has
 * not processed yet (a processed one may still sit in its 32 KiB buffer).
 * While blocked, QEMU cannot reach its switch-over: each iteration ends
 * with a blocking flush.  A stable queue does not prove it is blocked,
 * and a woken writer may write some 200 KB more than was read: this
 * makes losing the race rare, the "paused" check decides.
 */
static int pass_hold(struct ctx *c, long long *left)
{
	struct json_object *r, *ram, *v, *st;
	int q, last = -1, same = 0;

	for (int i = 0; i < 300 && same < 3; i++) {
		if (ioctl(c->mfd, FIONREAD, &q))
			return cerr(c, "FIONREAD on the migration stream: %s", strerror(errno));
		same = q == last ? same + 1 : 0;
		last = q;
		usleep(1000);
	}
	r = vsm_qmp_exec(c->src, "query-migrate", NULL, QMP_MS);
	if (!r)
		return cerr(c, "source: %s", vsm_qmp_error(c->src));
	*left = 0;
	if (json_object_object_get_ex(r, "status", &st) &&
	    !strcmp(json_object_get_string(st), "active") &&
	    json_object_object_get_ex(r, "ram", &ram) &&
	    json_object_object_get_ex(ram, "remaining", &v))
		*left = json_object_get_int64(v) / TARGET_PAGE;
	json_object_put(r);
	return 0;
}

enum pump {
	PUMP_EOF,	/* until the source closes the stream */
	PUMP_PASS,	/* until its first pass is nearly done */
	PUMP_PAUSED,	/* until it waits before the switch-over */
};

/* Read and filter the stream; 0 when @until is reached. */
static int mig_pump(struct ctx *c, enum pump until)
{
	const struct vsm_stream_stats *st = vsm_stream_stats(c->fs);
	uint64_t bytes = st->in_bytes, recs = st->pass_records;
	char err[512], sbuf[64];

	for (;;) {
		struct pollfd p = { c->mfd, POLLIN, 0 };
		int wait = (int)(c->mdeadline - now_ms());
		size_t want;
		ssize_t r;
		int n;

		if (until == PUMP_PASS && (st->in_end || st->done || pass_near_end(c, st)))
			return 0;
		if (wait <= 0)
			return cerr(c, "the migration did not complete within %d s",
				    MIGRATE_MS / 1000);
		/*
		 * Pausing, QEMU goes quiet: ask when nothing comes.  Waiting for
		 * the end of the pass, ask now and then too: if QEMU paused
		 * before this tool counted the pass done, the stop comes late
		 * and precopy() notices.
		 */
		n = poll(&p, 1, until == PUMP_PAUSED ? 2 : until == PUMP_PASS ? 100 : wait);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return cerr(c, "poll: %s", strerror(errno));
		if (!n && until != PUMP_EOF) {
			if (!mig_status_name(c, sbuf, sizeof(sbuf)))
				return cerr(c, "source: %s", vsm_qmp_error(c->src));
			if (!strcmp(sbuf, "pre-switchover"))
				return 0;
			if (strcmp(sbuf, "active") && strcmp(sbuf, "setup"))
				return cerr(c, "the source's migration is %s, not waiting before the switch-over",
					    sbuf);
			continue;
		}
		if (!n)
			continue;
		/*
		 * In the pass, read in small pieces and not past the goal:
		 * what is read here is what QEMU may write next.
		 */
		want = MBUF;
		if (until == PUMP_PASS)
			want = c->pass_goal ? c->pass_goal - st->in_bytes : 64 << 10;
		r = read(c->mfd, c->mbuf, want < MBUF ? want : MBUF);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return cerr(c, "reading the migration stream: %s", strerror(errno));
		if (!r) {
			if (until == PUMP_EOF)
				return 0;
			return cerr(c, "the source's migration stream ended early (%s)",
				    mig_status_name(c, sbuf, sizeof(sbuf)) ?: "?");
		}
		if (vsm_stream_feed(c->fs, c->mbuf, r, err, sizeof(err)))
			return cerr(c, "%s", err);
		if (until == PUMP_PASS && st->pass_records > recs) {
			/* The size of the records lately, for pass_near_end(). */
			double per = (double)(st->in_bytes - bytes) / (st->pass_records - recs);

			/*
			 * Smoothed, but at once when a read was nearly all zero
			 * records: QEMU is then far ahead of this tool.
			 */
			c->per_recent = c->per_recent ? (3 * c->per_recent + per) / 4 : per;
			if (per < 64)
				c->per_recent = per;
		}
		bytes = st->in_bytes;
		recs = st->pass_records;
	}
}

/* The stream has ended: the source's migration completed; keep its output. */
static int mig_finish(struct ctx *c)
{
	char err[512];

	if (wait_migration(c, c->mdeadline))
		return -1;
	{
		struct json_object *r = vsm_qmp_exec(c->src, "query-migrate", NULL, QMP_MS), *ram, *t;

		if (r && json_object_object_get_ex(r, "ram", &ram) &&
		    json_object_object_get_ex(ram, "transferred", &t))
			c->stream_bytes = json_object_get_int64(t);
		json_object_put(r);
	}
	c->sst = *vsm_stream_stats(c->fs);
	if (vsm_stream_end(c->fs, &c->stream, &c->stream_len, err, sizeof(err)))
		return cerr(c, "%s", err);
	mig_close(c);
	return 0;
}

/*
 * Stop-first: the source migrates into this tool after it gave its RAM;
 * the whole stream (device state, small blocks, zero-page records) is
 * read and filtered, not yet sent on.
 */
static int migrate_in(struct ctx *c)
{
	if (mig_start(c, false) || mig_pump(c, PUMP_EOF))
		return -1;
	return mig_finish(c);
}

/* ---- precopy: QEMU reads the guest's RAM while the guest still runs */

static int set_pause_cap(struct vsm_qmp *q, bool on)
{
	struct json_object *a = json_object_new_object(),
			   *l = json_object_new_array(), *e = json_object_new_object();

	json_object_object_add(e, "capability", json_object_new_string("pause-before-switchover"));
	json_object_object_add(e, "state", json_object_new_boolean(on));
	json_object_array_add(l, e);
	json_object_object_add(a, "capabilities", l);
	return vsm_qmp_run(q, "migrate-set-capabilities", a, QMP_MS);
}

static int set_downtime_limit(struct vsm_qmp *q, long long ms)
{
	struct json_object *a = json_object_new_object();

	json_object_object_add(a, "downtime-limit", json_object_new_int64(ms));
	return vsm_qmp_run(q, "migrate-set-parameters", a, QMP_MS);
}

/* The source's settings as they were before precopy, or -1. */
static int get_precopy_settings(struct ctx *c)
{
	struct json_object *r = vsm_qmp_exec(c->src, "query-migrate-parameters", NULL,
					     QMP_MS), *v;

	if (!r)
		return cerr(c, "source: %s", vsm_qmp_error(c->src));
	if (json_object_object_get_ex(r, "downtime-limit", &v))
		c->j.old_downtime = json_object_get_int64(v);
	json_object_put(r);
	r = vsm_qmp_exec(c->src, "query-migrate-capabilities", NULL, QMP_MS);
	if (!r)
		return cerr(c, "source: %s", vsm_qmp_error(c->src));
	for (size_t i = 0; i < json_object_array_length(r); i++) {
		struct json_object *e = json_object_array_get_idx(r, i), *n, *st;

		if (json_object_object_get_ex(e, "capability", &n) &&
		    json_object_object_get_ex(e, "state", &st) &&
		    !strcmp(json_object_get_string(n), "pause-before-switchover"))
			c->j.old_pause = json_object_get_boolean(st);
	}
	json_object_put(r);
	if (c->j.old_downtime < 0 || c->j.old_pause < 0)
		return cerr(c, "source: no downtime-limit or pause-before-switchover (not QEMU 7.2?)");
	return 0;
}

static bool mig_running(const char *st)
{
	static const char *const live[] = { "setup", "active", "device",
		"pre-switchover", "cancelling", "wait-unplug", NULL };

	for (int i = 0; live[i]; i++)
		if (!strcmp(st, live[i]))
			return true;
	return false;
}

/*
 * End the source's migration into this tool, if one runs, and put back
 * what this tool changed in its settings; 0, or -1 with a note (then
 * --recover does it again: the journal keeps the old values).
 *
 * The stream is closed first, before any QMP: while QEMU writes its
 * completion section and device state it holds its global lock, and
 * blocked on a full socket it would answer no command.  Closing is safe
 * in every state: a running guest runs on when the migration fails; one
 * stopped by this tool stays stopped (a failed or cancelled migration
 * resumes the guest only if it ran when QEMU's completion began,
 * migration_iteration_finish()); QEMU waiting before its switch-over is
 * not woken by it, and the cancel that follows ends that wait.
 */
static int restore_source(struct ctx *c)
{
	char sbuf[64];
	bool live;

	mig_close(c);
	if (!c->src || vsm_qmp_broken(c->src)) {
		note(c, "no QMP connection to the source: its migration settings were not restored");
		return -1;
	}
	if (!mig_status_name(c, sbuf, sizeof(sbuf)))
		return note(c, "source: %s", vsm_qmp_error(c->src)), -1;
	if (mig_running(sbuf)) {
		vsm_qmp_run(c->src, "migrate_cancel", NULL, QMP_MS);
		for (int i = 0; i < 10000 && mig_running(sbuf); i++) {
			usleep(1000);
			if (!mig_status_name(c, sbuf, sizeof(sbuf)))
				return note(c, "source: %s", vsm_qmp_error(c->src)), -1;
		}
		live = mig_running(sbuf);
		if (live)
			return note(c, "the source's migration is still %s after migrate_cancel", sbuf), -1;
	}
	{
		char why[sizeof(c->err)];

		/* For the tests; the error being rolled back stays the error. */
		snprintf(why, sizeof(why), "%s", c->err);
		if (failpoint(c, "restore")) {
			note(c, "%s", c->err);
			snprintf(c->err, sizeof(c->err), "%s", why);
			return -1;
		}
	}
	if ((c->j.old_bandwidth >= 0 && set_bandwidth(c->src, c->j.old_bandwidth)) ||
	    (c->j.old_downtime >= 0 && set_downtime_limit(c->src, c->j.old_downtime)) ||
	    (c->j.old_pause >= 0 && set_pause_cap(c->src, c->j.old_pause)))
		return note(c, "source: restoring its migration settings: %s",
			    vsm_qmp_error(c->src)), -1;
	return 0;
}

/*
 * The source's run state, waiting up to @ms while it is one of those a
 * migration passes through (finish-migrate: its migration is ending).
 */
static char *settled_status(struct ctx *c, int ms)
{
	char *rs = NULL;

	for (int i = 0; i <= ms; i++) {
		free(rs);
		rs = vsm_qmp_status(c->src, QMP_MS);
		if (!rs || strcmp(rs, "finish-migrate"))
			break;
		usleep(1000);
	}
	return rs;
}

/*
 * Resume the source if it ran before the hand-off, and check that it
 * does: 0, or -1 with a note.
 */
static int resume_source(struct ctx *c)
{
	char *rs;
	bool ok;

	if (!c->j.src_was_running)
		return 0;
	if (!c->src || vsm_qmp_broken(c->src))
		return note(c, "no QMP connection to the source to resume it"), -1;
	rs = settled_status(c, 5000);
	if (rs && strcmp(rs, "running") && vsm_qmp_run(c->src, "cont", NULL, QMP_MS))
		note(c, "cont on the source failed: %s", vsm_qmp_error(c->src));
	free(rs);
	rs = vsm_qmp_status(c->src, QMP_MS);
	ok = rs && !strcmp(rs, "running");
	if (!ok)
		note(c, "the source does not run (%s)", rs ? rs : vsm_qmp_error(c->src));
	free(rs);
	return ok ? 0 : -1;
}

/*
 * Precopy, and the guest stopped by this tool before QEMU's switch-over.
 *
 * QEMU 7.2 reads every page of guest RAM in any migration; stop-first, it
 * does so in the downtime (zero pages, after the gift).  Here it does so
 * while the guest runs: the source migrates into this tool, which drops
 * every record of the moved blocks (vsm_stream_new(precopy)), with
 * downtime-limit 0 so that QEMU switches over exactly at the end of its
 * first pass (ram_save_pending() syncs the dirty log only below the
 * threshold) and pause-before-switchover so that it then waits for the
 * gift.  Pages the guest dirtied meanwhile are resent after the gift, in
 * the completion section, and read zero there.
 *
 * Shortly before the end of the pass this tool stops the guest itself and
 * checks that the source reads "paused": QEMU's completion stops a running
 * guest as "finish-migrate", under the same lock in which it notes whether
 * the guest ran, and a cancelled or failed migration resumes it only then.
 * A guest stopped by us stays stopped whatever happens to the migration
 * after the gift -- the same guarantee as stop-first.  If QEMU got there
 * first (the race is lost), the migration is cancelled before anything is
 * given, the guest resumes, and the hand-off goes on stop-first.
 *
 * Returns 0 with the source stopped and waiting before its switch-over,
 * 1 when the race was lost and the source runs again (nothing touched),
 * -1 on error.
 */
static int precopy(struct ctx *c)
{
	const struct vsm_stream_stats *st;
	long long left = 0;
	int looks = 0;
	char sbuf[64];
	char *rs;
	bool won;

	if (get_precopy_settings(c) || set_phase(c, VSM_PH_PRECOPY))
		return -1;
	if (set_pause_cap(c->src, true) || set_downtime_limit(c->src, 0))
		return cerr(c, "source: %s", vsm_qmp_error(c->src));
	c->t_precopy = now_ms();
	if (mig_start(c, true) || failpoint(c, "precopy"))
		return -1;
	st = vsm_stream_stats(c->fs);
	/*
	 * Read on to near the end of the pass, hold it, look how much is
	 * left, and read on again until QEMU is held within PASS_LEFT_MAX
	 * pages of the end (a few rounds: what QEMU writes ahead of this
	 * tool's reading differs with the size of its records).
	 */
	c->pass_goal = 0;
	for (int round = 0; ; round++) {
		if (mig_pump(c, PUMP_PASS))
			return -1;
		if (st->in_end || st->done)
			break;
		if (pass_hold(c, &left))
			return -1;
		looks = round + 1;
		if (left <= PASS_LEFT_MAX || round == 64)
			break;
		/*
		 * QEMU writes about as many bytes as this tool reads (a woken
		 * writer may write a socket buffer more): allow it no more than
		 * the pages left, less PASS_LEFT_GOAL, would take as zero
		 * records (9 bytes, its smallest), so that it stays short of
		 * its switch-over whatever the pages ahead hold, as far as the
		 * socket lets this tool decide.  Data pages ahead make this
		 * slow (many rounds, with the guest running; 64 at most).
		 */
		c->pass_goal = st->in_bytes + (uint64_t)(left - PASS_LEFT_GOAL) * 9;
	}
	/* For the tests: let QEMU reach its switch-over first. */
	if (failpoint(c, "lose-race")) {
		c->err[0] = 0;
		if (mig_pump(c, PUMP_PAUSED))
			return -1;
	}
	/*
	 * QEMU is held (this tool does not read) with pages left: it cannot
	 * begin its completion under the stop.  The check below decides.
	 */
	if (set_phase(c, VSM_PH_STOPPED))
		return -1;
	c->t_stop = now_ms();
	if (vsm_qmp_run(c->src, "stop", NULL, QMP_MS))
		return cerr(c, "source: %s", vsm_qmp_error(c->src));
	rs = vsm_qmp_status(c->src, QMP_MS);
	if (!rs)
		return cerr(c, "source: %s", vsm_qmp_error(c->src));
	won = !strcmp(rs, "paused");
	free(rs);
	c->pass_left = left;
	if (!c->o.quiet)
		note(c, "precopy: guest stopped with %lld of %llu pages of QEMU's first pass left, after %d look(s) (%s)",
		     left, (unsigned long long)st->pass_pages, looks,
		     won ? "before its switch-over" : "too late: QEMU had stopped it");
	if (failpoint(c, "stopped") || mig_pump(c, PUMP_PAUSED))
		return -1;
	c->t_paused = now_ms();
	c->precopy_streamed = st->in_bytes;
	c->precopy_dropped = st->precopy_dropped;
	if (won) {
		c->precopy = "used";
		return failpoint(c, "paused");
	}
	/* QEMU stopped the guest first: nothing given yet, start again. */
	note(c, "precopy: QEMU reached its switch-over before the guest was stopped; handing over stop-first");
	c->precopy = "fallback";
	if (restore_source(c))
		return cerr(c, "source: its precopy migration could not be ended");
	/*
	 * QEMU resumes the guest it stopped itself.  If the check only read
	 * too late (the stop was first, the completion began before the
	 * check), the guest is in postmigrate: resume it, nothing is given.
	 */
	if (resume_source(c))
		return cerr(c, "the source did not resume after its migration was cancelled (%s)",
			    mig_status_name(c, sbuf, sizeof(sbuf)) ?: "?");
	/* The guest stood still from about our stop until now: say so. */
	c->fallback_pause = now_ms() - c->t_stop;
	return set_phase(c, VSM_PH_PREFLIGHT) ? -1 : 1;
}

/* After the gift: let the paused source complete into this tool. */
static int precopy_finish(struct ctx *c)
{
	struct json_object *a = json_object_new_object();

	json_object_object_add(a, "state", json_object_new_string("pre-switchover"));
	if (vsm_qmp_run(c->src, "migrate-continue", a, QMP_MS))
		return cerr(c, "source: %s", vsm_qmp_error(c->src));
	/* The completion gets its own time: the pass had the first. */
	c->mdeadline = now_ms() + MIGRATE_MS;
	if (mig_pump(c, PUMP_EOF) || mig_finish(c))
		return -1;
	/* The last records of the pass may have been read after the pause. */
	c->precopy_dropped = c->sst.precopy_dropped;
	/* Completed: its settings can go back (the migration is not active). */
	if (set_pause_cap(c->src, c->j.old_pause) ||
	    set_downtime_limit(c->src, c->j.old_downtime))
		note(c, "source: could not restore its migration settings: %s",
		     vsm_qmp_error(c->src));
	return 0;
}

/* Send the filtered stream to the destination and wait until it loaded. */
static int migrate_out(struct ctx *c)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	double deadline = now_ms() + MIGRATE_MS;
	struct json_object *a;
	char uri[320];
	size_t off = 0;
	int fd;

	snprintf(uri, sizeof(uri), "unix:%s", c->migsock);
	a = json_object_new_object();
	json_object_object_add(a, "uri", json_object_new_string(uri));
	if (vsm_qmp_run(c->dst, "migrate-incoming", a, QMP_MS))
		return cerr(c, "destination: %s", vsm_qmp_error(c->dst));
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	strcpy(sa.sun_path, c->migsock);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		if (fd >= 0)
			close(fd);
		return cerr(c, "cannot connect to the destination's migration socket: %s",
			    strerror(errno));
	}
	while (off < c->stream_len) {
		ssize_t w = send(fd, c->stream + off, c->stream_len - off, MSG_NOSIGNAL);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0) {
			close(fd);
			return cerr(c, "sending the device state to the destination: %s",
				    strerror(errno));
		}
		off += w;
	}
	shutdown(fd, SHUT_WR);
	/* The destination loads it and, started with -S, stays paused. */
	for (;;) {
		char *s = vsm_qmp_status(c->dst, QMP_MS);

		if (!s) {
			close(fd);
			return cerr(c, "destination: %s", vsm_qmp_error(c->dst));
		}
		if (!strcmp(s, "paused")) {
			free(s);
			break;
		}
		if (strcmp(s, "inmigrate")) {
			cerr(c, "the destination is %s after loading, not paused", s);
			free(s);
			close(fd);
			return -1;
		}
		free(s);
		if (now_ms() > deadline) {
			close(fd);
			return cerr(c, "the destination did not finish loading");
		}
		usleep(500);
	}
	close(fd);
	return 0;
}

static void close_remote_fds(struct ctx *c, struct vsm_victim *src)
{
	for (int i = 0; i < c->x.npipes; i++) {
		if (c->x.pipes[i].src_r >= 0)
			vsm_inject(src, SYS_close, c->x.pipes[i].src_r, 0, 0, 0, 0, 0);
		if (c->x.pipes[i].src_w >= 0)
			vsm_inject(src, SYS_close, c->x.pipes[i].src_w, 0, 0, 0, 0, 0);
		c->x.pipes[i].src_r = c->x.pipes[i].src_w = -1;
	}
	if (c->x.src_pidfd >= 0)
		vsm_inject(src, SYS_close, c->x.src_pidfd, 0, 0, 0, 0, 0);
	c->x.src_pidfd = -1;
}

static void quit_dest(struct ctx *c)
{
	/* Gone before we asked: what the error message should point at. */
	if (c->dst_pid > 0 && !pid_running(c->dst_pid))
		c->dst_died = true;
	c->dst_quit = true;
	if (c->dst && !vsm_qmp_broken(c->dst))
		vsm_qmp_run(c->dst, "quit", NULL, 2000);
	if (c->dst_pid > 0 && proc_alive(c->dst_pid, c->j.dst_start)) {
		for (int i = 0; i < 200 && proc_alive(c->dst_pid, c->j.dst_start); i++)
			usleep(10000);
		if (proc_alive(c->dst_pid, c->j.dst_start))
			kill(c->dst_pid, SIGKILL);
	}
	if (c->dst_child > 0)
		waitpid(c->dst_child, NULL, 0);
}

/*
 * Put the source back together: cancel the migration, return every page,
 * resume.  Returns VSM_EXIT_ROLLED_BACK or VSM_EXIT_LOST.
 */
static int rollback(struct ctx *c)
{
	struct vsm_victim *src = NULL, *dst = NULL;
	int ret = VSM_EXIT_ROLLED_BACK;
	bool restored;

	note(c, "rolling back: %s", c->err);
	/* The guest was stopped by this tool: ending its migration keeps it so. */
	restored = !restore_source(c);
	if (c->x.given_total) {
		char err[512];

		src = vsm_inject_seize(c->src_pid, err, sizeof(err));
		if (!src) {
			note(c, "cannot seize the source to return its RAM: %s", err);
			note(c, "its RAM is in its pipes; retry with --recover --journal %s",
			     c->j.path);
			return VSM_EXIT_LOST;
		}
		if (c->x.taken_total && !c->x.backed_up && c->dst_pid > 0 &&
		    proc_alive(c->dst_pid, c->j.dst_start)) {
			dst = vsm_inject_seize(c->dst_pid, err, sizeof(err));
			if (!dst)
				note(c, "cannot seize the destination: %s", err);
		}
		set_phase(c, VSM_PH_RETURN);	/* pages flow back */
		failpoint(c, "return");
		if (vsm_xfer_return(&c->x, src, dst)) {
			note(c, "%s", c->x.err);
			ret = VSM_EXIT_LOST;
		}
		vsm_inject_release(dst);
		if (!c->x.given_total)
			close_remote_fds(c, src);
		vsm_inject_release(src);
	}
	quit_dest(c);
	if (ret == VSM_EXIT_ROLLED_BACK) {
		/*
		 * All RAM is the source's again (the pipes it held are
		 * closed): what is left for --recover is its settings and
		 * resuming it, never the ledger.
		 */
		set_phase(c, VSM_PH_RETURNED);
		if (!restored)	/* its migration is over by now */
			restored = !restore_source(c);
		if (resume_source(c)) {
			note(c, "the source has all its RAM but does not run: run %s qemu-handoff --recover --journal %s",
			     VSM_CMD_NAME, c->j.path);
			return VSM_EXIT_LOST;
		}
		if (restored)
			set_phase(c, VSM_PH_ROLLED_BACK);
		note(c, "the source VM %s with all its RAM%s",
		     c->j.src_was_running ? "runs again" : "is back (paused, as it was)",
		     restored ? "" : "; its migration settings were not restored: run --recover");
	} else if (c->x.lost) {
		note(c, "GUEST RAM NOT RETURNED: %llu bytes lost; the source stays stopped",
		     (unsigned long long)c->x.lost);
	} else {
		/* Nothing lost: the pages wait in the source's own pipes. */
		note(c, "guest RAM not yet returned (it is in the source's pipes); the source stays stopped: run %s qemu-handoff --recover --journal %s",
		     VSM_CMD_NAME, c->j.path);
	}
	return ret;
}

static int handoff(struct ctx *c)
{
	struct vsm_victim *v = NULL;
	char err[512];

	c->j.src_pid = c->src_pid;
	c->j.dst_pid = c->dst_pid;
	c->j.src_start = vsm_proc_starttime(c->src_pid);
	c->j.dst_start = vsm_proc_starttime(c->dst_pid);
	snprintf(c->j.src_qmp, sizeof(c->j.src_qmp), "%s", c->o.src_qmp);
	snprintf(c->j.dst_qmp, sizeof(c->j.dst_qmp), "%s", c->o.dst_qmp);
	c->j.old_bandwidth = -1;
	c->x.hook = xfer_hook;
	c->x.hook_arg = c;
	read_counters(&c->c0);
	sample_mem(c);

	/* precopy: QEMU reads the RAM while the guest runs, then waits */
	c->precopy = "off";
	if (c->o.precopy && c->j.src_was_running && precopy(c) < 0)
		goto undo;
	if (strcmp(c->precopy, "used")) {
		/* stop (journaled first: a recovery must know to resume it) */
		if (set_phase(c, VSM_PH_STOPPED))
			goto undo;
		c->t_stop = now_ms();
		if (c->j.src_was_running && vsm_qmp_run(c->src, "stop", NULL, QMP_MS)) {
			cerr(c, "source: %s", vsm_qmp_error(c->src));
			goto undo;
		}
		c->t_paused = now_ms();
		if (failpoint(c, "stopped"))
			goto undo;
	}
	for (int i = 0; i < c->srl.n; i++) {
		struct vsm_ramblock *b = &c->srl.b[i];

		for (int k = 0; k < c->x.nblocks; k++)
			if (!strcmp(c->x.blocks[k].name, b->name) &&
			    vsm_ram_verify(c->src, c->src_pid, b, 4, c->tmpdir, err,
					   sizeof(err))) {
				cerr(c, "source: %s", err);
				goto undo;
			}
	}

	c->t_verified = now_ms();

	/* give */
	if (set_phase(c, VSM_PH_GIVE) || seize(c, c->src_pid, "source", &v))
		goto undo;
	if (vsm_xfer_plan(&c->x, c->src_pid) || vsm_xfer_give(&c->x, v)) {
		if (!c->err[0])
			cerr(c, "%s", c->x.err);
		vsm_inject_release(v);
		goto undo;
	}
	vsm_inject_release(v);
	v = NULL;
	c->t_given = now_ms();
	if (set_phase(c, VSM_PH_MIGRATE) || failpoint(c, "given"))
		goto undo;

	/* migrate the device state (and, precopy, the rest) into this tool */
	if (strcmp(c->precopy, "used") ? migrate_in(c) : precopy_finish(c))
		goto undo;
	c->t_migrated = now_ms();
	sample_mem(c);
	if (failpoint(c, "migrated"))
		goto undo;

	/* take, and back the taken pages up in pipes the source holds */
	if (set_phase(c, VSM_PH_TAKE) || seize(c, c->dst_pid, "destination", &v))
		goto undo;
	if (vsm_xfer_take(&c->x, v)) {
		if (!c->err[0])
			cerr(c, "%s", c->x.err);
		vsm_inject_release(v);
		goto undo;
	}
	c->t_moved = now_ms();
	if (c->o.backup) {
		struct vsm_victim *sv = NULL;

		if (seize(c, c->src_pid, "source", &sv)) {
			vsm_inject_release(v);
			goto undo;
		}
		if (vsm_xfer_backup(&c->x, sv, v)) {
			if (!c->err[0])
				cerr(c, "%s", c->x.err);
			vsm_inject_release(sv);
			vsm_inject_release(v);
			goto undo;
		}
		vsm_inject_release(sv);
	}
	vsm_inject_release(v);
	v = NULL;
	c->t_taken = now_ms();
	if (set_phase(c, VSM_PH_TAKEN) || failpoint(c, "taken"))
		goto undo;

	/* the device state loads with the RAM in place */
	if (set_phase(c, VSM_PH_LOADING) || migrate_out(c))
		goto undo;
	c->t_loaded = now_ms();
	if (failpoint(c, "loaded"))
		goto undo;

	/* cont: the point of no return */
	if (failpoint(c, "cont"))
		goto undo;
	if (c->j.src_was_running && vsm_qmp_run(c->dst, "cont", NULL, QMP_MS)) {
		cerr(c, "destination: %s", vsm_qmp_error(c->dst));
		goto undo;
	}
	c->t_cont = now_ms();
	set_phase(c, VSM_PH_COMMITTED);
	read_counters(&c->c1);
	sample_mem(c);

	/* The source holds nothing any more: let it go. */
	vsm_qmp_run(c->src, "quit", NULL, QMP_MS);
	for (int i = 0; i < 500 && proc_alive(c->src_pid, c->j.src_start); i++)
		usleep(10000);
	if (proc_alive(c->src_pid, c->j.src_start)) {
		note(c, "the source did not quit; killing it");
		kill(c->src_pid, SIGKILL);
	}
	set_phase(c, VSM_PH_DONE);
	c->t_end = now_ms();
	return VSM_EXIT_OK;
undo:
	if (!c->err[0])
		cerr(c, "failed");
	return rollback(c);
}

/* ---- recovery from a journal */

static int recover(struct ctx *c)
{
	char err[512];
	struct vsm_victim *src = NULL, *dst = NULL;
	int ret = VSM_EXIT_ROLLED_BACK;
	bool restored;
	long old_pidfd;

	vsm_xfer_init(&c->x);
	if (vsm_journal_read(c->o.journal, &c->j, &c->x, err, sizeof(err)))
		return cerr(c, "%s", err), VSM_EXIT_ERROR;
	c->src_pid = c->j.src_pid;
	c->dst_pid = c->j.dst_pid;
	c->o.src_qmp = c->j.src_qmp;
	c->o.dst_qmp = c->j.dst_qmp;
	c->x.hook = xfer_hook;
	c->x.hook_arg = c;
	note(c, "journal %s: phase %s", c->j.path, vsm_phase_name(c->j.phase));
	if (c->j.phase == VSM_PH_DONE || c->j.phase == VSM_PH_ROLLED_BACK ||
	    c->j.phase == VSM_PH_PREFLIGHT) {
		note(c, "nothing to recover");
		return VSM_EXIT_OK;
	}
	if (!proc_alive(c->src_pid, c->j.src_start))
		return cerr(c, "the source (pid %d) is gone", c->src_pid), VSM_EXIT_LOST;
	c->src = vsm_qmp_open(c->j.src_qmp, QMP_MS, err, sizeof(err));
	if (!c->src)
		return cerr(c, "source: %s", err), VSM_EXIT_ERROR;
	if (c->j.phase == VSM_PH_RETURNED) {
		/* The RAM is back; the pipes are gone: settings and resume. */
		if (restore_source(c))
			return cerr(c, "could not restore the source's migration settings"),
			       VSM_EXIT_LOST;
		if (resume_source(c))
			return cerr(c, "the source has all its RAM back but does not run"),
			       VSM_EXIT_LOST;
		set_phase(c, VSM_PH_ROLLED_BACK);
		note(c, "recovered: the source VM has all its RAM and its settings back");
		return VSM_EXIT_ROLLED_BACK;
	}
	if (proc_alive(c->dst_pid, c->j.dst_start))
		c->dst = vsm_qmp_open(c->j.dst_qmp, QMP_MS, err, sizeof(err));
	if (c->j.phase == VSM_PH_COMMITTED) {
		/* The destination runs the VM: finish by letting the source go. */
		note(c, "the destination runs the VM; telling the source to quit");
		vsm_qmp_run(c->src, "quit", NULL, QMP_MS);
		set_phase(c, VSM_PH_DONE);
		return VSM_EXIT_OK;
	}
	/*
	 * A destination that was told to cont may run already (the tool died
	 * before writing "committed"): then it owns the VM.
	 */
	if (c->dst && status_is(c->dst, "running")) {
		note(c, "the destination runs the VM; telling the source to quit");
		vsm_qmp_run(c->src, "quit", NULL, QMP_MS);
		set_phase(c, VSM_PH_DONE);
		return VSM_EXIT_OK;
	}
	if (c->dst && c->j.phase >= VSM_PH_LOADING && status_is(c->dst, "paused")) {
		char *ms = vsm_qmp_migrate_status(c->dst, QMP_MS);
		bool loaded = ms && !strcmp(ms, "completed");

		free(ms);
		if (loaded) {
			note(c, "the destination holds the RAM and loaded the device state: finishing the hand-off");
			if (c->j.src_was_running && vsm_qmp_run(c->dst, "cont", NULL, QMP_MS))
				return cerr(c, "destination: %s", vsm_qmp_error(c->dst)),
				       VSM_EXIT_ERROR;
			set_phase(c, VSM_PH_COMMITTED);
			vsm_qmp_run(c->src, "quit", NULL, QMP_MS);
			set_phase(c, VSM_PH_DONE);
			return VSM_EXIT_OK;
		}
	}
	/* Our ends of the pipes, fetched from the source. */
	{
		int pidfd = syscall(SYS_pidfd_open, c->src_pid, 0);

		if (pidfd < 0)
			return cerr(c, "pidfd_open %d: %s", c->src_pid, strerror(errno)),
			       VSM_EXIT_ERROR;
		for (int i = 0; i < c->x.npipes; i++) {
			struct vsm_xpipe *p = &c->x.pipes[i];
			long long in;

			p->rfd = p->src_r >= 0 ? syscall(SYS_pidfd_getfd, pidfd, p->src_r, 0) : -1;
			p->wfd = p->src_w >= 0 ? syscall(SYS_pidfd_getfd, pidfd, p->src_w, 0) : -1;
			/* A backup pipe's write end lives in the destination. */
			if (p->rfd < 0 || (p->wfd < 0 && !p->backup)) {
				close(pidfd);
				return cerr(c, "cannot fetch pipe %d from the source: %s", i,
					    strerror(errno)), VSM_EXIT_ERROR;
			}
			/* The ledger may lag the last injected call by one. */
			in = vsm_xfer_pipe_bytes(p);
			if (in < 0) {
				close(pidfd);
				return cerr(c, "FIONREAD on pipe %d failed", i), VSM_EXIT_ERROR;
			}
			if (p->backup) {
				/* Consumed from the front only while returning. */
				p->a_start = p->given - in;
			} else if (c->j.phase <= VSM_PH_MIGRATE) {
				if ((uint64_t)in > p->given) {
					uint64_t extra = in - p->given;
					struct vsm_seg *ns;

					if (p->next_block < 0 || p->next_block >= c->x.nblocks) {
						close(pidfd);
						return cerr(c, "pipe %d holds %llu bytes the journal does not account for",
							    i, (unsigned long long)extra), VSM_EXIT_ERROR;
					}
					ns = realloc(p->seg, (p->nseg + 1) * sizeof(*ns));
					if (!ns)
						return cerr(c, "out of memory"), VSM_EXIT_ERROR;
					p->seg = ns;
					p->seg[p->nseg++] = (struct vsm_seg){
						p->next_block, p->next_off, extra };
					p->given += extra;
				}
				p->taken = 0;
				p->a_start = p->given - in;
			} else if (c->j.phase < VSM_PH_RETURN) {
				p->taken = p->given - in;
				p->a_start = p->taken;
			} else if (p->back || p->a_start >= p->given) {
				/* Giving back from the destination: in flight. */
				p->b_inpipe = in;
			} else {
				p->a_start = p->given - in;
			}
			c->x.given_total += p->given;
			c->x.taken_total += p->taken;
		}
		close(pidfd);
	}
	old_pidfd = c->x.src_pidfd;
	c->x.src_pidfd = c->x.dst_pidfd = -1;
	/* A guest stopped by this tool stays stopped when its migration ends. */
	restored = !restore_source(c);
	set_phase(c, VSM_PH_RETURN);
	if (seize(c, c->src_pid, "source", &src))
		return VSM_EXIT_LOST;
	if (c->dst && !c->x.backed_up)
		seize(c, c->dst_pid, "destination", &dst);
	if (dst)
		vsm_xfer_skip_returned(&c->x, c->dst_pid);
	if (old_pidfd >= 0)
		vsm_inject(src, SYS_close, old_pidfd, 0, 0, 0, 0, 0);
	if (vsm_xfer_return(&c->x, src, dst)) {
		note(c, "%s", c->x.err);
		ret = VSM_EXIT_LOST;
	}
	vsm_inject_release(dst);
	if (ret == VSM_EXIT_ROLLED_BACK)
		close_remote_fds(c, src);
	vsm_inject_release(src);
	if (ret != VSM_EXIT_ROLLED_BACK)
		return cerr(c, "%llu bytes of guest RAM could not be returned",
			    (unsigned long long)c->x.lost), ret;
	quit_dest(c);
	set_phase(c, VSM_PH_RETURNED);
	if (!restored)
		restored = !restore_source(c);
	if (resume_source(c))
		return cerr(c, "the source has all its RAM back but does not run"),
		       VSM_EXIT_LOST;
	if (restored)
		set_phase(c, VSM_PH_ROLLED_BACK);
	note(c, "recovered: the source VM has all its RAM back (%llu bytes returned)%s",
	     (unsigned long long)c->x.returned_total,
	     restored ? "" : "; its migration settings could not be restored (run --recover again)");
	return VSM_EXIT_ROLLED_BACK;
}

/* ---- report */

static void report(struct ctx *c, int status)
{
	/* A failed hand-off: what the kernel counted up to the rollback. */
	if (c->c0.have && !c->c1.have)
		read_counters(&c->c1);
	long long moved = (c->c1.moved - c->c0.moved) * 4096LL;
	long long zero = (c->c1.zero - c->c0.zero) * 4096LL;
	long long fallback = (c->c1.fallback - c->c0.fallback) * 4096LL;
	bool counters = c->c0.have && c->c1.have;
	long long copied = counters ? fallback : (long long)c->x.given_total;
	double downtime = c->t_cont - c->t_stop, total = c->t_end - c->t0;
	const char *path = c->x.unmap ? "move" : "copy";

	if (!counters)
		moved = zero = 0;
	if (c->o.json) {
		struct json_object *o = json_object_new_object();

		json_object_object_add(o, "status", json_object_new_string(status ? "failed" : "ok"));
		json_object_object_add(o, "exit", json_object_new_int(status));
		if (status)
			json_object_object_add(o, "error", json_object_new_string(c->err));
		json_object_object_add(o, "source_pid", json_object_new_int(c->src_pid));
		json_object_object_add(o, "dest_pid", json_object_new_int(c->dst_pid));
		json_object_object_add(o, "qemu", json_object_new_string(c->src_version));
		json_object_object_add(o, "machine", json_object_new_string(c->machine));
		json_object_object_add(o, "path", json_object_new_string(path));
		json_object_object_add(o, "kernel_counters", json_object_new_boolean(counters));
		json_object_object_add(o, "guest_ram_bytes", json_object_new_int64(c->guest_ram));
		json_object_object_add(o, "blocks_moved", json_object_new_int(c->x.nblocks));
		json_object_object_add(o, "given_bytes", json_object_new_int64(c->x.given_total));
		json_object_object_add(o, "moved_bytes", json_object_new_int64(moved));
		json_object_object_add(o, "zero_bytes", json_object_new_int64(zero));
		json_object_object_add(o, "copied_bytes", json_object_new_int64(copied));
		json_object_object_add(o, "qemu_stream_bytes", json_object_new_int64(c->stream_bytes));
		json_object_object_add(o, "dest_stream_bytes", json_object_new_int64(c->stream_len));
		json_object_object_add(o, "precopy", json_object_new_string(c->precopy));
		json_object_object_add(o, "precopy_streamed_bytes", json_object_new_int64(c->precopy_streamed));
		json_object_object_add(o, "precopy_fallback_pause_ms",
				       json_object_new_double(c->fallback_pause));
		json_object_object_add(o, "precopy_left_pages", json_object_new_int64(c->pass_left));
		json_object_object_add(o, "precopy_dropped_bytes",
				       json_object_new_int64(c->precopy_dropped * 4096));
		json_object_object_add(o, "small_blocks_bytes", json_object_new_int64(c->copied_blocks_bytes));
		json_object_object_add(o, "pipes", json_object_new_int(c->x.npipes));
		json_object_object_add(o, "pipe_size", json_object_new_int64(c->x.pipe_size));
		if (!status) {
			json_object_object_add(o, "downtime_ms", json_object_new_double(downtime));
			json_object_object_add(o, "total_ms", json_object_new_double(total));
			json_object_object_add(o, "precopy_ms", json_object_new_double(
				strcmp(c->precopy, "off") ? c->t_stop - c->t_precopy : 0));
			json_object_object_add(o, "drain_ms", json_object_new_double(c->t_paused - c->t_stop));
			json_object_object_add(o, "verify_ms", json_object_new_double(c->t_verified - c->t_paused));
			json_object_object_add(o, "give_ms", json_object_new_double(c->t_given - c->t_verified));
			json_object_object_add(o, "migrate_ms", json_object_new_double(c->t_migrated - c->t_given));
			json_object_object_add(o, "take_ms", json_object_new_double(c->t_taken - c->t_migrated));
			json_object_object_add(o, "backup_ms", json_object_new_double(c->t_taken - c->t_moved));
			json_object_object_add(o, "load_ms", json_object_new_double(c->t_loaded - c->t_taken));
		}
		json_object_object_add(o, "peak_memory_bytes", json_object_new_int64(c->peak_mem));
		json_object_object_add(o, "peak_memory_ratio",
				       json_object_new_double(c->guest_ram ? (double)c->peak_mem / c->guest_ram : 0));
		json_object_object_add(o, "qemu_overhead_bytes", json_object_new_int64(c->overhead));
		json_object_object_add(o, "peak_over_overhead_ratio",
				       json_object_new_double(c->guest_ram && c->peak_mem > c->overhead ?
							      (double)(c->peak_mem - c->overhead) / c->guest_ram : 0));
		puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY));
		json_object_put(o);
		return;
	}
	if (c->o.quiet || status)
		return;
	if (c->progress_shown)
		fputc('\n', stderr);
	printf("qemu-handoff: pid %d -> pid %d (QEMU %s, %s)\n", c->src_pid,
	       c->dst_pid, c->src_version, c->machine);
	printf("path          %s%s\n", path, c->x.unmap ? " (SPLICE_F_UNMAP: pages leave the source)" :
	       " (this kernel has no SPLICE_F_UNMAP: pages were copied)");
	printf("guest RAM     %8.1f MiB in %d block(s) handed over, %.1f MiB in small blocks left to QEMU\n",
	       c->guest_ram / MIB - c->copied_blocks_bytes / MIB, c->x.nblocks,
	       c->copied_blocks_bytes / MIB);
	printf("downtime      %8.1f ms  (source stop -> destination cont)\n", downtime);
	printf("  of which    drain %.1f, check %.1f, give %.1f, migrate %.1f, take %.1f, backup %.1f, load %.1f, cont %.1f ms\n",
	       c->t_paused - c->t_stop, c->t_verified - c->t_paused, c->t_given - c->t_verified,
	       c->t_migrated - c->t_given, c->t_moved - c->t_migrated,
	       c->t_taken - c->t_moved, c->t_loaded - c->t_taken,
	       c->t_cont - c->t_loaded);
	printf("total         %8.1f ms\n", total);
	if (!strcmp(c->precopy, "off"))
		printf("precopy       off (QEMU read the given RAM while the guest was stopped)\n");
	else
		printf("precopy       %s: %.1f ms with the guest running; QEMU streamed %.1f MiB, of which %.1f MiB guest pages this tool dropped (never sent on, never copied into the destination)\n",
		       !strcmp(c->precopy, "used") ? "used" :
		       "race lost, handed over stop-first",
		       c->t_stop - c->t_precopy, c->precopy_streamed / MIB,
		       c->precopy_dropped * 4096 / MIB);
	if (c->fallback_pause > 0)
		printf("              the lost race stopped the guest for %.1f ms before the downtime above\n",
		       c->fallback_pause);
	if (counters)
		printf("pages         %8.1f MiB given: %.1f MiB moved, %.1f MiB zero, %.1f MiB copied (kernel counters, system-wide)\n",
		       c->x.given_total / MIB, moved / MIB, zero / MIB, copied / MIB);
	else
		printf("pages         %8.1f MiB given, all copied (no vmsplice move counters)\n",
		       c->x.given_total / MIB);
	printf("QEMU stream   %8.1f MiB written by the source, %.1f MiB of it sent on to the destination (device state, small blocks)\n",
	       c->stream_bytes / MIB, c->stream_len / MIB);
	printf("peak memory   %8.1f MiB (source + destination + tool RSS + pipes) = %.1f MiB of QEMU overhead + %.2f x guest RAM\n",
	       c->peak_mem / MIB, c->overhead / MIB,
	       c->guest_ram && c->peak_mem > c->overhead ?
	       (double)(c->peak_mem - c->overhead) / c->guest_ram : 0);
}

/* ---- command line */

static void usage(FILE *f)
{
	fputs("usage: vmsplice-move qemu-handoff --source-qmp SOCK --dest-qmp SOCK [options]\n"
	      "       vmsplice-move qemu-handoff --recover --journal FILE\n"
	      "\n"
	      "Hand a running QEMU 7.2 VM over to a new QEMU process on this host,\n"
	      "moving its guest RAM instead of copying it.  The destination runs the\n"
	      "same configuration plus `-incoming defer -S`.\n"
	      "\n"
	      "  -s, --source-qmp SOCK   QMP socket of the running QEMU\n"
	      "  -d, --dest-qmp SOCK     QMP socket of the destination QEMU\n"
	      "  -e, --dest-exec CMD     start the destination with this shell command\n"
	      "                          (its QMP socket is --dest-qmp)\n"
	      "  -j, --journal FILE      recovery journal (default /run/vmsplice-move/SRC.json)\n"
	      "  -r, --recover           finish or undo an interrupted hand-off (journal)\n"
	      "      --min-block BYTES   leave smaller RAM blocks to QEMU (default 1 MiB)\n"
	      "      --copy              do not ask the kernel to move pages\n"
	      "      --no-sparse         give never-touched pages too\n"
	      "      --no-backup         do not keep references to the moved pages until\n"
	      "                          the destination runs (saves time; a destination\n"
	      "                          killed while loading then loses the RAM)\n"
	      "      --no-precopy        stop the guest before QEMU reads its RAM (shorter\n"
	      "                          total time, longer downtime: QEMU 7.2 then scans\n"
	      "                          the given RAM while the guest is stopped)\n"
	      "      --tmpdir DIR        for the migration socket and pmemsave files\n"
	      "      --json              print the result as JSON on stdout\n"
	      "  -p, --progress          progress on stderr during the RAM phases\n"
	      "  -q, --quiet\n"
	      "  -h, --help\n"
	      "\n"
	      "Exit status: 0 handed over; 1 failed before anything was touched (the\n"
	      "source runs on); 2 usage; 3 failed midway, the source resumed with all\n"
	      "its RAM; 4 failed and the source is left stopped: guest RAM not returned,\n"
	      "or back but not resumed (see the message);\n"
	      "5 refused by this system (ptrace policy, QEMU version, fd or memory\n"
	      "limits), nothing touched.  See vmsplice-move(1).\n", f);
}

int vsm_cmd_qemu_handoff(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "source-qmp", required_argument, NULL, 's' },
		{ "dest-qmp", required_argument, NULL, 'd' },
		{ "dest-exec", required_argument, NULL, 'e' },
		{ "journal", required_argument, NULL, 'j' },
		{ "recover", no_argument, NULL, 'r' },
		{ "min-block", required_argument, NULL, 'm' },
		{ "copy", no_argument, NULL, 'c' },
		{ "no-sparse", no_argument, NULL, 'S' },
		{ "no-backup", no_argument, NULL, 'B' },
		{ "no-precopy", no_argument, NULL, 'P' },
		{ "tmpdir", required_argument, NULL, 't' },
		{ "json", no_argument, NULL, 'J' },
		{ "progress", no_argument, NULL, 'p' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	struct ctx *c = calloc(1, sizeof(*c));
	int opt, status;

	if (!c)
		return VSM_EXIT_ERROR;
	c->o.min_block = 1 << 20;
	c->o.sparse = true;
	c->o.backup = true;
	c->o.precopy = true;
	c->o.progress = isatty(2);
	optind = 0;	/* glibc: a fresh getopt (the command parsed its own options) */
	while ((opt = getopt_long(argc, argv, "s:d:e:j:rpqh", lo, NULL)) != -1) {
		switch (opt) {
		case 's': c->o.src_qmp = optarg; break;
		case 'd': c->o.dst_qmp = optarg; break;
		case 'e': c->o.dst_exec = optarg; break;
		case 'j': c->o.journal = optarg; break;
		case 'r': c->o.recover = true; break;
		case 'm':
			if (parse_size(optarg, &c->o.min_block)) {
				free(c);
				return usage_error("qemu-handoff", "--min-block: '%s' is not a size (4096, 64K, 1M)", optarg);
			}
			break;
		case 'c': c->o.force_copy = true; break;
		case 'S': c->o.sparse = false; break;
		case 'B': c->o.backup = false; break;
		case 'P': c->o.precopy = false; break;
		case 't': c->o.tmpdir = optarg; break;
		case 'J': c->o.json = true; break;
		case 'p': c->o.progress = true; break;
		case 'q': c->o.quiet = true; break;
		case 'h': usage(stdout); free(c); return VSM_EXIT_OK;
		default: free(c); return usage_error("qemu-handoff", "unknown option");
		}
	}
	if (optind != argc) {
		free(c);
		return usage_error("qemu-handoff", "unexpected argument '%s'", argv[optind]);
	}
	if (c->o.recover ? !c->o.journal : (!c->o.src_qmp || !c->o.dst_qmp)) {
		bool recover = c->o.recover;

		free(c);
		return usage_error("qemu-handoff", recover ?
				   "--recover needs --journal FILE (the journal of the interrupted hand-off)" :
				   "--source-qmp and --dest-qmp are both needed");
	}
	signal(SIGPIPE, SIG_IGN);
	failpoint_init(c);
	c->t0 = now_ms();
	c->j.fd = -1;
	c->j.old_bandwidth = c->j.old_downtime = c->j.old_pause = -1;
	c->mfd = c->mlfd = -1;
	c->precopy = "off";
	if (c->o.recover) {
		status = recover(c);
		if (status != VSM_EXIT_OK && status != VSM_EXIT_ROLLED_BACK)
			fprintf(stderr, "qemu-handoff: %s\n", c->err);
		goto out;
	}
	vsm_xfer_init(&c->x);
	c->x.pipe_size = 256 << 20;
	if (c->o.tmpdir) {
		snprintf(c->tmpdir, sizeof(c->tmpdir), "%s", c->o.tmpdir);
	} else {
		snprintf(c->tmpdir, sizeof(c->tmpdir), "/tmp/vsm-handoff.XXXXXX");
		if (!mkdtemp(c->tmpdir)) {
			fprintf(stderr, "qemu-handoff: mkdtemp: %s\n", strerror(errno));
			free(c);
			return VSM_EXIT_ERROR;
		}
		c->own_tmpdir = true;
	}
	snprintf(c->migsock, sizeof(c->migsock), "%s/dest.sock", c->tmpdir);
	snprintf(c->srcsock, sizeof(c->srcsock), "%s/source.sock", c->tmpdir);
	if (preflight(c)) {
		fprintf(stderr, "qemu-handoff: %s\n", c->err);
		fprintf(stderr, "qemu-handoff: nothing was changed; the source VM runs on\n");
		status = c->env ? VSM_EXIT_ENV : VSM_EXIT_ERROR;
		goto out;
	}
	if (c->o.journal) {
		snprintf(c->j.path, sizeof(c->j.path), "%s", c->o.journal);
	} else {
		mkdir("/run/vmsplice-move", 0700);
		snprintf(c->j.path, sizeof(c->j.path), "/run/vmsplice-move/%d.json",
			 c->src_pid);
	}
	if (!c->o.quiet)
		note(c, "%s path; %d block(s), %.1f MiB of %.1f MiB guest RAM to hand over; journal %s",
		     c->x.unmap ? "move" : "copy (kernel without SPLICE_F_UNMAP)",
		     c->x.nblocks, c->x.total / MIB, c->guest_ram / MIB, c->j.path);
	status = handoff(c);
	if (status != VSM_EXIT_OK) {
		fprintf(stderr, "qemu-handoff: %s\n", c->err);
		/* The usual cause of a lost QMP connection or a failed injection. */
		if (c->dst_died || (c->dst_pid > 0 && !c->dst_quit && !pid_running(c->dst_pid)))
			fprintf(stderr, "qemu-handoff: the destination QEMU (pid %d) has exited: see its standard error\n",
				c->dst_pid);
	}
out:
	if (!c->o.recover || c->o.json)
		report(c, status);
	vsm_qmp_close(c->src);
	vsm_qmp_close(c->dst);
	vsm_journal_close(&c->j);
	vsm_xfer_free(&c->x);
	mig_close(c);
	free(c->mbuf);
	free(c->stream);
	vsm_ram_free(&c->srl);
	vsm_ram_free(&c->drl);
	if (c->own_tmpdir) {
		unlink(c->migsock);
		unlink(c->srcsock);
		rmdir(c->tmpdir);
	}
	if (status == VSM_EXIT_OK && c->j.path[0])
		unlink(c->j.path);
	free(c);
	return status;
}
