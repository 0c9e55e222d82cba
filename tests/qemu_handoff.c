// SPDX-License-Identifier: GPL-2.0
/*
 * End to end: `vmsplice-move qemu-handoff` replaces the QEMU process of a
 * running VM (Debian's qemu-system-x86_64, TCG) whose guest -- the
 * freestanding tests/qemu/guest.c -- keeps checking an address-dependent
 * pattern in all its RAM and prints "ok N" per round on its serial port.
 *
 * - the hand-off: the destination goes on counting rounds with the pattern
 *   intact, the source process is gone, the tool reports the path (move on
 *   a kernel with SPLICE_F_UNMAP: no page copied; copy elsewhere);
 * - failures at every step (injected with VSM_QEMU_FAILPOINT, by killing
 *   the destination, by killing the tool and running --recover, by a
 *   tracer that makes ptrace refuse): afterwards exactly one QEMU runs the
 *   VM, with its pattern intact, and it is the source unless the
 *   destination had fully taken over.
 *
 * In make check's VM only a move-path subset runs (see in_vm_subset()).
 *
 * VSM_QEMU_TOOL, VSM_QEMU_GUEST override where the vmsplice-move command
 * and the guest are (default: the command the Makefile built, VSM_CMD,
 * and the guest beside this program).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "kselftest_harness.h"
#include "lib/feature.h"

#define GUEST_MIB	24

static char tool[PATH_MAX], guest[PATH_MAX];

static long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void find_programs(void)
{
	char self[PATH_MAX], *slash;
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);

	self[n > 0 ? n : 0] = 0;
	slash = strrchr(self, '/');
	if (slash)
		*slash = 0;
	snprintf(tool, sizeof(tool), "%s", getenv("VSM_QEMU_TOOL") ?: VSM_CMD);
	snprintf(guest, sizeof(guest), "%s", getenv("VSM_QEMU_GUEST") ?:
		 strcat(strcpy((char[PATH_MAX]){0}, self), "/qemu/guest.elf"));
}

/* What the guest printed: the last round, and whether it saw a bad word. */
struct guest_log {
	int last;
	bool bad;
	int boots;	/* "vsm-guest fill" lines: the guest (re)started */
};

static struct guest_log read_log(const char *path)
{
	struct guest_log g = { -1, false, 0 };
	char line[256];
	FILE *f = fopen(path, "r");

	if (!f)
		return g;
	while (fgets(line, sizeof(line), f)) {
		int r;

		if (!strncmp(line, "BAD", 3))
			g.bad = true;
		else if (!strncmp(line, "vsm-guest fill ", 15))
			g.boots++;
		else if (sscanf(line, "ok %d", &r) == 1)
			g.last = r;
	}
	fclose(f);
	return g;
}

/* Wait until @log shows round > @after (or BAD): the round seen, or -1. */
static int wait_round(const char *log, int after, int ms)
{
	long end = now_ms() + ms;

	for (;;) {
		struct guest_log g = read_log(log);

		if (g.bad)
			return -2;
		if (g.last > after)
			return g.last;
		if (now_ms() > end)
			return -1;
		usleep(20000);
	}
}

static bool exited(pid_t pid, int ms)
{
	long end = now_ms() + ms;

	while (now_ms() < end) {
		pid_t r = waitpid(pid, NULL, WNOHANG);

		if (r == pid || (r < 0 && errno == ECHILD))
			return true;
		usleep(10000);
	}
	return false;
}

FIXTURE(vm) {
	char dir[64], sqmp[128], dqmp[128], slog[128], dlog[128], journal[128];
	pid_t src, dst;
	int start_round;
	/* The source's migration settings before the tool ran. */
	int pause0;
	long long downtime0, bandwidth0;
	const char *append;	/* the guest's command line, if any */
	int mib;		/* its RAM, if not GUEST_MIB */
	int filled;		/* MiB it wrote, if not all of it */
};

/*
 * Run @cmd (one JSON line) over @f: QEMU's answer (json_object_put() it)
 * with *@ret its "return" member, or NULL for an error answer or the end
 * of the connection.  Events on the way are skipped.
 */
static struct json_object *qmp_call(FILE *f, const char *cmd, struct json_object **ret)
{
	struct json_object *o = NULL;
	char *line = NULL;
	size_t cap = 0;

	fprintf(f, "%s\n", cmd);
	fflush(f);
	while (getline(&line, &cap, f) > 0) {
		o = json_tokener_parse(line);
		if (o && json_object_object_get_ex(o, "return", ret))
			break;
		if (o && json_object_object_get_ex(o, "error", NULL)) {
			json_object_put(o);
			o = NULL;
			break;
		}
		json_object_put(o);
		o = NULL;
	}
	free(line);
	return o;
}

/* A QMP connection to the socket at @path, capabilities negotiated, or NULL. */
static FILE *qmp_open(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct json_object *o = NULL, *r;
	char *line = NULL;
	size_t cap = 0;
	FILE *f;

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		if (fd >= 0)
			close(fd);
		return NULL;
	}
	f = fdopen(fd, "r+");
	if (getline(&line, &cap, f) > 0)	/* the greeting */
		o = qmp_call(f, "{\"execute\":\"qmp_capabilities\"}", &r);
	free(line);
	if (!o) {
		fclose(f);
		return NULL;
	}
	json_object_put(o);
	return f;
}

/*
 * The migration settings the tool changes on the source for precopy
 * (pause-before-switchover, downtime-limit, max-bandwidth), read over the
 * source's QMP socket (free: the tool has exited).  0, or -1.
 */
static int source_settings(const char *qmp, int *pause, long long *downtime,
			   long long *bandwidth, bool set)
{
	FILE *f = qmp_open(qmp);
	struct json_object *o = NULL, *r, *v;

	*pause = -1;
	*downtime = *bandwidth = -1;
	if (!f)
		return -1;
	/*
	 * @set: first give them values other than QEMU's defaults, so that
	 * a tool that "restores" the defaults is caught.
	 */
	if (set && !(o = qmp_call(f, "{\"execute\":\"migrate-set-parameters\",\"arguments\":"
				  "{\"downtime-limit\":250,\"max-bandwidth\":67108864}}", &r)))
		goto out;
	json_object_put(o);
	o = qmp_call(f, "{\"execute\":\"query-migrate-capabilities\"}", &r);
	for (size_t k = 0; o && k < json_object_array_length(r); k++) {
		struct json_object *e = json_object_array_get_idx(r, k), *n;

		if (json_object_object_get_ex(e, "capability", &n) &&
		    !strcmp(json_object_get_string(n), "pause-before-switchover") &&
		    json_object_object_get_ex(e, "state", &v))
			*pause = json_object_get_boolean(v);
	}
	json_object_put(o);
	o = qmp_call(f, "{\"execute\":\"query-migrate-parameters\"}", &r);
	if (o && json_object_object_get_ex(r, "downtime-limit", &v))
		*downtime = json_object_get_int64(v);
	if (o && json_object_object_get_ex(r, "max-bandwidth", &v))
		*bandwidth = json_object_get_int64(v);
	json_object_put(o);
out:
	fclose(f);
	return *pause >= 0 && *downtime >= 0 && *bandwidth >= 0 ? 0 : -1;
}

static pid_t start_qemu(FIXTURE_DATA(vm) *self, bool dest)
{
	char qmp[160], serial[160], mem[16], err[160];
	pid_t pid;

	snprintf(qmp, sizeof(qmp), "unix:%s,server=on,wait=off",
		 dest ? self->dqmp : self->sqmp);
	snprintf(serial, sizeof(serial), "file:%s", dest ? self->dlog : self->slog);
	snprintf(mem, sizeof(mem), "%d", (self->mib ?: GUEST_MIB) + 3);
	snprintf(err, sizeof(err), "%s/%s.err", self->dir, dest ? "dst" : "src");
	pid = fork();
	if (pid == 0) {
		int fd = open(err, O_WRONLY | O_CREAT | O_TRUNC, 0644);

		/*
		 * Die with the test process: the harness skips the teardown
		 * when a test is killed on timeout (and 6.12's may lose it
		 * after a failed ASSERT), and a QEMU left behind would spin.
		 */
		prctl(PR_SET_PDEATHSIG, SIGKILL);

		dup2(fd, 2);
		dup2(open("/dev/null", O_RDONLY), 0);
		{
			const char *argv[32] = { "qemu-system-x86_64", "-machine", "pc",
				"-accel", "tcg", "-m", mem, "-display", "none", "-vga", "none",
				"-nic", "none", "-monitor", "none", "-kernel", guest,
				"-qmp", qmp, "-serial", serial };
			int n = 21;

			if (self->append) {
				argv[n++] = "-append";
				argv[n++] = self->append;
			}
			if (dest) {
				argv[n++] = "-incoming";
				argv[n++] = "defer";
				argv[n++] = "-S";
			}
			execvp(argv[0], (char **)argv);
		}
		_exit(127);
	}
	return pid;
}

/* Wait for a QMP socket to exist. */
static bool wait_file(const char *path, int ms)
{
	long end = now_ms() + ms;

	while (access(path, F_OK)) {
		if (now_ms() > end)
			return false;
		usleep(10000);
	}
	return true;
}

/*
 * Inside make check's VM (VMSPLICE_REQUIRE_MOVE=1), QEMU runs under TCG
 * inside a TCG guest: about 30 s per test.  There the move-path hand-off
 * runs, with the failures whose recovery differs on the move path (pages
 * given back with SPLICE_F_UNMAP, copied back from backup references,
 * recovered from the journal mid-take); every case runs on the host on
 * each make check, and all of them in the VM with VMSPLICE_HANDOFF_ALL=1
 * (make check-handoff-vm).
 */
static bool in_vm_subset(const char *test)
{
	static const char *const subset[] = {
		"handoff", "handoff_no_precopy", "fail_take", "fail_loaded_dest_dies",
		"killed_take",
	};
	const char *all = getenv("VMSPLICE_HANDOFF_ALL");

	if (!move_required() || (all && !strcmp(all, "1")))
		return true;
	for (size_t i = 0; i < sizeof(subset) / sizeof(subset[0]); i++)
		if (!strcmp(test, subset[i]))
			return true;
	return false;
}

FIXTURE_SETUP(vm)
{
	if (!in_vm_subset(_metadata->name))
		SKIP(return, "nested TCG: make check's VM runs the move-path subset; this case ran on the host (all in the VM: make check-handoff-vm)");
	find_programs();
	if (access(tool, X_OK) || access(guest, R_OK))
		SKIP(return, "the hand-off tool or the guest is not built (make tools tests)");
	if (system("command -v qemu-system-x86_64 >/dev/null"))
		SKIP(return, "qemu-system-x86_64 is not installed");
	strcpy(self->dir, "/tmp/vsmq.XXXXXX");
	ASSERT_NE(NULL, mkdtemp(self->dir));
	snprintf(self->sqmp, sizeof(self->sqmp), "%s/src.qmp", self->dir);
	snprintf(self->dqmp, sizeof(self->dqmp), "%s/dst.qmp", self->dir);
	snprintf(self->slog, sizeof(self->slog), "%s/src.log", self->dir);
	snprintf(self->dlog, sizeof(self->dlog), "%s/dst.log", self->dir);
	snprintf(self->journal, sizeof(self->journal), "%s/journal.json", self->dir);
	self->src = start_qemu(self, false);
	self->dst = start_qemu(self, true);
	ASSERT_GT(self->src, 0);
	ASSERT_GT(self->dst, 0);
	/* Nested under TCG, QEMU takes a while to start. */
	ASSERT_TRUE(wait_file(self->sqmp, 180000));
	ASSERT_TRUE(wait_file(self->dqmp, 180000));
	/* The guest filled its RAM and checked it once. */
	self->start_round = wait_round(self->slog, 0, 240000);
	ASSERT_GT(self->start_round, 0) TH_LOG("guest never reported (log %s)", self->slog);
	ASSERT_EQ(0, source_settings(self->sqmp, &self->pause0, &self->downtime0,
				     &self->bandwidth0, true));
	ASSERT_EQ(250, self->downtime0);
}

FIXTURE_TEARDOWN(vm)
{
	char cmd[128];

	if (self->src > 0)
		kill(self->src, SIGKILL);
	if (self->dst > 0)
		kill(self->dst, SIGKILL);
	while (waitpid(-1, NULL, WNOHANG) > 0)
		;
	snprintf(cmd, sizeof(cmd), "rm -rf %s", self->dir);
	if (self->dir[0] && system(cmd))
		TH_LOG("cannot remove %s", self->dir);
}

/* What the tool's last run said on stderr (its notes): for failure logs. */
static const char *tool_err(FIXTURE_DATA(vm) *self)
{
	static char buf[8192];
	char path[200];
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "%s/tool.out.err", self->dir);
	f = fopen(path, "r");
	n = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;
	buf[n] = 0;
	if (f)
		fclose(f);
	return buf;
}

/*
 * Run the tool (@failpoint in its environment, "" for none), with @extra
 * arguments; its exit status.  Its stdout goes to @out when not NULL.
 */
static int run_tool(FIXTURE_DATA(vm) *self, const char *failpoint, bool recover,
		    const char *extra, char *out, size_t outlen, pid_t *async)
{
	char cmd[3 * PATH_MAX], ofile[160];
	int st;
	pid_t pid;

	snprintf(ofile, sizeof(ofile), "%s/tool.out", self->dir);
	if (recover)
		snprintf(cmd, sizeof(cmd), "exec %s qemu-handoff --recover --json -j %s > %s 2> %s.err",
			 tool, self->journal, ofile, ofile);
	else
		snprintf(cmd, sizeof(cmd), "exec %s qemu-handoff --json -s %s -d %s -j %s %s > %s 2> %s.err",
			 tool, self->sqmp, self->dqmp, self->journal, extra ?: "", ofile, ofile);
	pid = fork();
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);	/* as for the QEMUs */
		if (failpoint && failpoint[0])
			setenv("VSM_QEMU_FAILPOINT", failpoint, 1);
		else
			unsetenv("VSM_QEMU_FAILPOINT");
		execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
		_exit(127);
	}
	if (async) {
		*async = pid;
		return 0;
	}
	if (waitpid(pid, &st, 0) != pid)
		return -1;
	if (out) {
		FILE *f = fopen(ofile, "r");
		size_t n = f ? fread(out, 1, outlen - 1, f) : 0;

		out[n] = 0;
		if (f)
			fclose(f);
	}
	if (WIFSIGNALED(st))
		return 128 + WTERMSIG(st);
	return WEXITSTATUS(st);
}

/* The VM lives on in the source: more rounds, pattern intact, dest gone. */
static void source_runs_on(struct __test_metadata *_metadata,
			   FIXTURE_DATA(vm) *self, bool dest_gone)
{
	struct guest_log before = read_log(self->slog);
	int r = wait_round(self->slog, before.last + 1, 240000);

	EXPECT_NE(-2, r) TH_LOG("the source guest saw its RAM change");
	EXPECT_GT(r, before.last + 1) TH_LOG("the source guest stopped counting");
	if (dest_gone)
		EXPECT_TRUE(exited(self->dst, 20000)) TH_LOG("the destination is still there");
	EXPECT_EQ(0, kill(self->src, 0));
	EXPECT_FALSE(read_log(self->slog).bad);
	/*
	 * Not a guest that crashed and started again: run with its RAM out
	 * (its code is in that RAM too), it would rather reset than print BAD.
	 */
	EXPECT_EQ(1, read_log(self->slog).boots) TH_LOG("the source guest restarted");
	/* What the tool changed for its migration is as it was. */
	{
		long long downtime, bandwidth;
		int pause;

		ASSERT_EQ(0, source_settings(self->sqmp, &pause, &downtime, &bandwidth, false));
		EXPECT_EQ(self->pause0, pause);
		EXPECT_EQ(self->downtime0, downtime);
		EXPECT_EQ(self->bandwidth0, bandwidth);
	}
}

/* The VM lives on in the destination: rounds go on, source gone. */
static void dest_runs_on(struct __test_metadata *_metadata,
			 FIXTURE_DATA(vm) *self)
{
	int r = wait_round(self->dlog, read_log(self->slog).last + 1, 240000);

	EXPECT_NE(-2, r) TH_LOG("the destination guest saw its RAM change");
	EXPECT_GT(r, 0) TH_LOG("the destination guest does not count on");
	EXPECT_TRUE(exited(self->src, 20000)) TH_LOG("the source is still there");
	EXPECT_FALSE(read_log(self->dlog).bad);
	EXPECT_FALSE(read_log(self->slog).bad);
	/* The guest came over running: it did not start again. */
	EXPECT_EQ(1, read_log(self->slog).boots);
	EXPECT_EQ(0, read_log(self->dlog).boots) TH_LOG("the destination guest started afresh");
}

static long long jget(struct json_object *o, const char *k)
{
	struct json_object *v;

	return json_object_object_get_ex(o, k, &v) ? json_object_get_int64(v) : -1;
}

static long long thp_bytes(pid_t pid)
{
	char path[64], line[256];
	long long kb, sum = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/smaps_rollup", pid);
	f = fopen(path, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "AnonHugePages: %lld", &kb) == 1)
			sum += kb * 1024;
	fclose(f);
	return sum;
}

/* Start both QEMUs again, the guest with command line @append and @mib. */
static void restart_guest(struct __test_metadata *_metadata, FIXTURE_DATA(vm) *self,
			  const char *append, int mib)
{
	kill(self->src, SIGKILL);
	kill(self->dst, SIGKILL);
	ASSERT_TRUE(exited(self->src, 20000));
	ASSERT_TRUE(exited(self->dst, 20000));
	unlink(self->sqmp);
	unlink(self->dqmp);
	unlink(self->slog);
	self->append = append;
	self->mib = mib;
	self->src = start_qemu(self, false);
	self->dst = start_qemu(self, true);
	ASSERT_TRUE(wait_file(self->sqmp, 180000));
	ASSERT_TRUE(wait_file(self->dqmp, 180000));
	ASSERT_GT(wait_round(self->slog, 0, 240000), 0);
	ASSERT_EQ(0, source_settings(self->sqmp, &self->pause0, &self->downtime0,
				     &self->bandwidth0, true));
}

/*
 * A hand-off (@failpoint, @extra as for run_tool()) that succeeds, with
 * precopy @precopy ("used", "fallback" or "off").
 */
static void handoff(struct __test_metadata *_metadata, FIXTURE_DATA(vm) *self,
		    const char *failpoint, const char *extra, const char *precopy)
{
	static char out[16384];
	struct json_object *o, *v, *pc;
	bool moves = kernel_unmaps();
	/* What the guest wrote: all of its RAM, or what mib= said. */
	long long filled = (long long)(self->filled ?: GUEST_MIB) << 20;
	int rc;

	/* In the patched VM the move path is the point: no silent copy. */
	if (move_required())
		ASSERT_TRUE(moves) TH_LOG("this run requires the feature: %s", NO_MOVE_MSG);
	rc = run_tool(self, failpoint, false, extra, out, sizeof(out), NULL);

	ASSERT_EQ(0, rc) TH_LOG("tool output: %s\nstderr: %s", out, tool_err(self));
	o = json_tokener_parse(out);
	ASSERT_NE(NULL, o) TH_LOG("not JSON: %s", out);
	ASSERT_TRUE(json_object_object_get_ex(o, "path", &v));
	EXPECT_STREQ(moves ? "move" : "copy", json_object_get_string(v));
	ASSERT_TRUE(json_object_object_get_ex(o, "precopy", &pc));
	EXPECT_STREQ(precopy, json_object_get_string(pc));
	/*
	 * Precopy: QEMU streamed the guest's pages while it ran, and the tool
	 * dropped every one (the guest wrote all of them: data, not zero).
	 */
	if (!strcmp(precopy, "used")) {
		EXPECT_GE(jget(o, "precopy_dropped_bytes"), filled - (1 << 20));
		/* Stopped near the end of QEMU's pass, not anywhere. */
		EXPECT_LE(jget(o, "precopy_left_pages"), 1024);
		EXPECT_GE(jget(o, "precopy_left_pages"), 0);
	}
	/* No guest page reached the destination through QEMU's stream. */
	EXPECT_GT(jget(o, "dest_stream_bytes"), 0);
	EXPECT_LT(jget(o, "dest_stream_bytes"), 4LL << 20);
	/* The whole guest RAM block went through the pipes. */
	EXPECT_GE(jget(o, "given_bytes"), filled - (1 << 20));
	if (moves) {
		/* The kernel's counters: nothing copied, all moved. */
		EXPECT_EQ(0, jget(o, "copied_bytes"));
		EXPECT_GE(jget(o, "moved_bytes") + jget(o, "zero_bytes"),
			  jget(o, "given_bytes"));
	} else {
		EXPECT_EQ(jget(o, "given_bytes"), jget(o, "copied_bytes"));
	}
	EXPECT_GT(jget(o, "peak_memory_bytes"), 0);
	/* For the log: what a person deciding on an upgrade would read. */
	{
		struct json_object *d, *t;

		json_object_object_get_ex(o, "downtime_ms", &d);
		json_object_object_get_ex(o, "total_ms", &t);
		TH_LOG("path %s, precopy %s: downtime %.1f ms, total %.1f ms, given %lld, moved %lld, zero %lld, copied %lld bytes, peak %lld bytes (QEMUs' own %lld)",
		       json_object_get_string(v), json_object_get_string(pc),
		       d ? json_object_get_double(d) : -1.0,
		       t ? json_object_get_double(t) : -1.0, jget(o, "given_bytes"),
		       jget(o, "moved_bytes"), jget(o, "zero_bytes"), jget(o, "copied_bytes"),
		       jget(o, "peak_memory_bytes"), jget(o, "qemu_overhead_bytes"));
	}
	dest_runs_on(_metadata, self);
	/* Moved whole: the destination's guest RAM is THP-backed. */
	if (moves)
		EXPECT_GT(thp_bytes(self->dst), 0);
	json_object_put(o);
	self->src = 0;
}

TEST_F_TIMEOUT(vm, handoff, 600) { handoff(_metadata, self, "", "", "used"); }
/* The stop-first flow: QEMU reads the given (zero) RAM in the downtime. */
TEST_F_TIMEOUT(vm, handoff_no_precopy, 600) { handoff(_metadata, self, "", "--no-precopy", "off"); }
/*
 * QEMU reaches its switch-over (and stops the guest itself, so that a
 * failed migration would resume it) before the tool stops the guest: the
 * tool must notice, give nothing, cancel and hand over stop-first.
 */
TEST_F_TIMEOUT(vm, precopy_race_lost_falls_back, 600)
{
	handoff(_metadata, self, "lose-race=fail", "", "fallback");
}

/*
 * A guest that rewrites all of its RAM all the time ("churn"): most pages
 * QEMU sent during precopy are stale by the switch-over.  The moved pages
 * must be what the destination runs on, not those early records (the
 * guest would print BAD), and the pages dirtied since, resent in QEMU's
 * completion section, read zero there and must be dropped too.
 */
TEST_F_TIMEOUT(vm, handoff_churn, 600)
{
	restart_guest(_metadata, self, "churn", GUEST_MIB);
	handoff(_metadata, self, "", "", "used");
}

/*
 * A 256 MiB guest that wrote only its first 4 MiB: its RAM block ends in
 * 63,000 zero pages, 9-byte records, some 25,000 of which fit in the
 * socket ahead of the tool's reading (the pass then has the ROMs' few
 * hundred data pages).  The tool must still stop the guest near the end
 * of QEMU's pass and before its switch-over (it holds the pass and lets
 * QEMU on by the bytes that many zero records would take).
 */
TEST_F_TIMEOUT(vm, handoff_zero_tail, 600)
{
	restart_guest(_metadata, self, "mib=4", 256);
	self->filled = 4;
	handoff(_metadata, self, "", "", "used");
}

/* A failure injected in the tool at a step: it rolls back (status 3). */
static void fail_at(struct __test_metadata *_metadata, FIXTURE_DATA(vm) *self,
		    const char *fp, int want)
{
	static char out[16384];
	int rc = run_tool(self, fp, false, "", out, sizeof(out), NULL);

	EXPECT_EQ(want, rc) TH_LOG("%s: tool output %s\nstderr: %s", fp, out, tool_err(self));
	/* Refused before anything was touched: the destination is left be. */
	source_runs_on(_metadata, self, want != 1);
}

TEST_F_TIMEOUT(vm, fail_preflight, 600) { fail_at(_metadata, self, "preflight=fail", 1); }
TEST_F_TIMEOUT(vm, fail_precopy, 600) { fail_at(_metadata, self, "precopy=fail", 3); }
TEST_F_TIMEOUT(vm, fail_stopped, 600) { fail_at(_metadata, self, "stopped=fail", 3); }
TEST_F_TIMEOUT(vm, fail_paused, 600) { fail_at(_metadata, self, "paused=fail", 3); }
/*
 * The race lost, then a failure after the gift, and a second before the
 * pages go back: the guest, stopped by QEMU and not by the tool, must not
 * be resumed by the cancelled migration while its RAM is out (so nothing
 * may be given in that migration).
 */
TEST_F_TIMEOUT(vm, precopy_race_lost_then_fail_given, 600)
{
	fail_at(_metadata, self, "lose-race=fail,given=fail,return=delay", 3);
}
/*
 * The RAM is back but the source's migration settings cannot be put
 * back (twice): the journal must then leave --recover only that and the
 * resume to do, not the pipes the rollback already closed in QEMU.
 */
TEST_F_TIMEOUT(vm, fail_given_restore_fails_then_recover, 600)
{
	static char out[16384];
	int rc = run_tool(self, "given=fail,restore:1=fail,restore:2=fail", false, "",
			  out, sizeof(out), NULL);

	EXPECT_EQ(3, rc) TH_LOG("tool output %s\nstderr: %s", out, tool_err(self));
	rc = run_tool(self, "", true, NULL, out, sizeof(out), NULL);
	EXPECT_EQ(3, rc) TH_LOG("recover: %s\nstderr: %s", out, tool_err(self));
	source_runs_on(_metadata, self, true);
}

/* The same window, the race won: the guest stays stopped. */
TEST_F_TIMEOUT(vm, fail_given_slow_return, 600)
{
	fail_at(_metadata, self, "given=fail,return=delay", 3);
}
TEST_F_TIMEOUT(vm, fail_give, 600) { fail_at(_metadata, self, "give:3=fail", 3); }
TEST_F_TIMEOUT(vm, fail_migrate_dest_dies, 600) { fail_at(_metadata, self, "migrating=kill-dest", 3); }
TEST_F_TIMEOUT(vm, fail_migrated_dest_dies, 600) { fail_at(_metadata, self, "migrated=kill-dest", 3); }
TEST_F_TIMEOUT(vm, fail_take, 600) { fail_at(_metadata, self, "take:2=fail", 3); }
TEST_F_TIMEOUT(vm, fail_taken_dest_dies, 600) { fail_at(_metadata, self, "taken=kill-dest", 3); }
TEST_F_TIMEOUT(vm, fail_loaded, 600) { fail_at(_metadata, self, "loaded=fail", 3); }
TEST_F_TIMEOUT(vm, fail_loaded_dest_dies, 600) { fail_at(_metadata, self, "loaded=kill-dest", 3); }

/* Without backup references a destination killed after taking loses the
 * RAM: the tool must say so (status 4), not pretend. */
TEST_F_TIMEOUT(vm, no_backup_dest_dies_is_reported, 600)
{
	static char out[16384];
	int rc;

	rc = run_tool(self, "taken=kill-dest", false, "--no-backup", out,
		      sizeof(out), NULL);
	EXPECT_EQ(4, rc) TH_LOG("tool output %s\nstderr: %s", out, tool_err(self));
	/* The source stays stopped: it must not run with holes in its RAM. */
	EXPECT_EQ(0, kill(self->src, 0));
}

/*
 * One QMP command on the source (the tool not connected); 0 if QEMU
 * answered "return".
 */
static int source_qmp(const char *qmp, const char *cmd)
{
	FILE *f = qmp_open(qmp);
	struct json_object *o, *r;

	if (!f)
		return -1;
	o = qmp_call(f, cmd, &r);
	json_object_put(o);
	fclose(f);
	return o ? 0 : -1;
}

/*
 * A migration capability that would make the hand-off hang or fail late
 * (return-path: QEMU's completion waits for the destination's answer,
 * with the RAM given): refused before anything is touched.
 */
TEST_F_TIMEOUT(vm, refused_capability, 600)
{
	static char out[16384];

	ASSERT_EQ(0, source_qmp(self->sqmp, "{\"execute\":\"migrate-set-capabilities\","
				"\"arguments\":{\"capabilities\":[{\"capability\":"
				"\"return-path\",\"state\":true}]}}"));
	EXPECT_EQ(1, run_tool(self, "", false, "", out, sizeof(out), NULL));
	EXPECT_NE(NULL, strstr(tool_err(self), "return-path")) TH_LOG("%s", tool_err(self));
	EXPECT_NE(NULL, strstr(tool_err(self), "nothing was changed")) TH_LOG("%s", tool_err(self));
	ASSERT_EQ(0, source_qmp(self->sqmp, "{\"execute\":\"migrate-set-capabilities\","
				"\"arguments\":{\"capabilities\":[{\"capability\":"
				"\"return-path\",\"state\":false}]}}"));
	source_runs_on(_metadata, self, false);
}

/* The destination is gone before we start: a plain error, nothing touched. */
TEST_F_TIMEOUT(vm, dest_gone_before, 600)
{
	kill(self->dst, SIGKILL);
	ASSERT_TRUE(exited(self->dst, 20000));
	EXPECT_EQ(1, run_tool(self, "", false, "", NULL, 0, NULL));
	source_runs_on(_metadata, self, true);
}

/* Another tracer holds the source: ptrace refuses, nothing touched. */
TEST_F_TIMEOUT(vm, ptrace_refused, 600)
{
	pid_t tracer = fork();
	int st;

	ASSERT_GE(tracer, 0);
	if (tracer == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);	/* whatever the test does */
		if (ptrace(PTRACE_SEIZE, self->src, 0, 0))
			_exit(1);
		pause();
		_exit(0);
	}
	/* Until the tracer is attached, the source reads "TracerPid: 0". */
	for (long end = now_ms() + 5000; now_ms() < end;) {
		char path[64], line[128];
		int tp = 0;
		FILE *f;

		snprintf(path, sizeof(path), "/proc/%d/status", self->src);
		f = fopen(path, "r");
		while (f && fgets(line, sizeof(line), f))
			if (sscanf(line, "TracerPid: %d", &tp) == 1)
				break;
		if (f)
			fclose(f);
		if (tp == tracer)
			break;
		usleep(10000);
	}
	/* 5: refused by this system (ptrace), nothing touched. */
	EXPECT_EQ(5, run_tool(self, "", false, "", NULL, 0, NULL));
	kill(tracer, SIGKILL);
	waitpid(tracer, &st, 0);
	source_runs_on(_metadata, self, false);
}

/*
 * The tool is SIGKILLed at a step; --recover puts the VM back together:
 * in the source, or, once the destination had loaded everything, in the
 * destination.
 */
static void killed_at(struct __test_metadata *_metadata, FIXTURE_DATA(vm) *self,
		      const char *fp, bool forward)
{
	static char out[16384];
	int rc = run_tool(self, fp, false, "", out, sizeof(out), NULL);

	EXPECT_EQ(128 + SIGKILL, rc) TH_LOG("%s: %s", fp, out);
	rc = run_tool(self, "", true, NULL, out, sizeof(out), NULL);
	EXPECT_EQ(forward ? 0 : 3, rc) TH_LOG("recover after %s: %s\nstderr: %s", fp, out, tool_err(self));
	if (forward) {
		dest_runs_on(_metadata, self);
		self->src = 0;
	} else {
		source_runs_on(_metadata, self, true);
	}
}

TEST_F_TIMEOUT(vm, killed_precopy, 600) { killed_at(_metadata, self, "precopy=kill-self", false); }
TEST_F_TIMEOUT(vm, killed_stopped, 600) { killed_at(_metadata, self, "stopped=kill-self", false); }
TEST_F_TIMEOUT(vm, killed_paused, 600) { killed_at(_metadata, self, "paused=kill-self", false); }
TEST_F_TIMEOUT(vm, killed_give, 600) { killed_at(_metadata, self, "give:2=kill-self", false); }
TEST_F_TIMEOUT(vm, killed_migrated, 600) { killed_at(_metadata, self, "migrated=kill-self", false); }
TEST_F_TIMEOUT(vm, killed_take, 600) { killed_at(_metadata, self, "take:2=kill-self", false); }
TEST_F_TIMEOUT(vm, killed_taken, 600) { killed_at(_metadata, self, "taken=kill-self", false); }
/* Killed after a vmsplice and before its journal line: the pipes say more. */
TEST_F_TIMEOUT(vm, killed_give_unjournaled, 600) { killed_at(_metadata, self, "pre-give:3=kill-self", false); }
TEST_F_TIMEOUT(vm, killed_take_unjournaled, 600) { killed_at(_metadata, self, "pre-take:2=kill-self", false); }
TEST_F_TIMEOUT(vm, killed_loaded, 600) { killed_at(_metadata, self, "loaded=kill-self", true); }

/* ... and at a random instant (seeded; the seed is printed). */
TEST_F_TIMEOUT(vm, killed_at_random, 600)
{
	static char out[16384];
	unsigned int seed = getenv("VSM_QEMU_SEED") ? (unsigned int)atoi(getenv("VSM_QEMU_SEED")) :
			    (unsigned int)time(NULL);
	pid_t t;
	int rc, st, delay;

	srand(seed);
	delay = rand() % 1500;
	TH_LOG("seed %u: SIGKILL after %d ms", seed, delay);
	run_tool(self, "", false, "", NULL, 0, &t);
	usleep(delay * 1000);
	kill(t, SIGKILL);
	waitpid(t, &st, 0);
	/*
	 * No journal: killed before the hand-off started (nothing touched,
	 * the destination left alone), or after it ended.
	 */
	if (access(self->journal, F_OK)) {
		if (!exited(self->src, 3000))
			source_runs_on(_metadata, self, false);
		else
			dest_runs_on(_metadata, self), self->src = 0;
		return;
	}
	rc = run_tool(self, "", true, NULL, out, sizeof(out), NULL);
	ASSERT_TRUE(rc == 0 || rc == 3) TH_LOG("recover: status %d: %s", rc, out);
	if (exited(self->src, 3000)) {
		dest_runs_on(_metadata, self);
		self->src = 0;
	} else {
		source_runs_on(_metadata, self, true);
	}
}

/* ---- the command line: no QEMU needed */

/* Run `vmsplice-move qemu-handoff ARGS` with stdout and stderr in @out. */
static int cli(const char *args, char *out, size_t len)
{
	char cmd[PATH_MAX + 512];
	size_t n;
	FILE *f;
	int st;

	find_programs();
	snprintf(cmd, sizeof(cmd), "%s qemu-handoff %s 2>&1", tool, args);
	f = popen(cmd, "r");
	if (!f)
		return -1;
	n = fread(out, 1, len - 1, f);
	out[n] = 0;
	st = pclose(f);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

TEST(cli_help)
{
	char out[8192];

	ASSERT_EQ(0, cli("--help", out, sizeof(out))) TH_LOG("%s", out);
	EXPECT_NE(NULL, strstr(out, "--source-qmp"));
	EXPECT_NE(NULL, strstr(out, "--recover"));
	EXPECT_NE(NULL, strstr(out, "Exit status"));
}

TEST(cli_usage_errors)
{
	static const char *const bad[] = {
		"", "-s /x", "--recover", "--min-block 1Q -s /x -d /y",
		"-s /x -d /y extra", "--no-such-option",
	};
	char out[8192];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		EXPECT_EQ(2, cli(bad[i], out, sizeof(out))) TH_LOG("'%s': %s", bad[i], out);
		/* Says what to do next. */
		EXPECT_NE(NULL, strstr(out, "Try 'vmsplice-move qemu-handoff --help'"))
			TH_LOG("'%s': %s", bad[i], out);
	}
}

/* No QEMU behind the sockets: status 1, and it says nothing was touched. */
TEST(cli_no_qemu)
{
	char out[8192];

	EXPECT_EQ(1, cli("-s /nonexistent/src.qmp -d /nonexistent/dst.qmp", out, sizeof(out)))
		TH_LOG("%s", out);
	EXPECT_NE(NULL, strstr(out, "/nonexistent/src.qmp"));
	EXPECT_NE(NULL, strstr(out, "nothing was changed"));
	EXPECT_EQ(1, cli("--recover -j /nonexistent/journal.json", out, sizeof(out)))
		TH_LOG("%s", out);
	EXPECT_NE(NULL, strstr(out, "/nonexistent/journal.json")) TH_LOG("%s", out);
}

TEST_HARNESS_MAIN
