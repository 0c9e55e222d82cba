// SPDX-License-Identifier: GPL-2.0
/*
 * The vmsplice-move command: exit codes, --help, --version, --json
 * (parsed with json-c), send/recv end to end, bench's refusals and output.
 * Every expectation about moving comes from the running kernel (the flag
 * check and the counters), never from a hard-coded answer.
 */
#define _GNU_SOURCE
#include <json-c/json.h>
#include <time.h>

#include "kselftest_harness.h"
#include "lib/feature.h"
#include "tool_util.h"

#define CMD	VSM_CMD
#define BOUND	60000

static json_object *get(json_object *o, const char *path)
{
	char buf[128], *save, *tok;

	snprintf(buf, sizeof(buf), "%s", path);
	for (tok = strtok_r(buf, ".", &save); tok && o; tok = strtok_r(NULL, ".", &save))
		if (!json_object_object_get_ex(o, tok, &o))
			return NULL;
	return o;
}

static void sock_path(char *buf, size_t len, const char *tag)
{
	snprintf(buf, len, "/tmp/vsm-cmd-%s.%d.sock", tag, getpid());
	unlink(buf);
}

/* Whether bench will measure here: a fine clock (its own rule, checked here). */
static const char *coarse_clock(void)
{
	static char why[96];
	struct timespec res;
	char src[32] = "";
	FILE *f = fopen("/sys/devices/system/clocksource/clocksource0/current_clocksource", "re");

	if (f) {
		if (!fgets(src, sizeof(src), f))
			src[0] = '\0';
		fclose(f);
	}
	if (!strncmp(src, "jiffies", 7))
		return "clocksource is jiffies: bench refuses to measure";
	if (clock_getres(CLOCK_MONOTONIC, &res) || res.tv_sec || res.tv_nsec > 1000) {
		snprintf(why, sizeof(why), "CLOCK_MONOTONIC resolution %ld ns: bench refuses to measure",
			 res.tv_nsec);
		return why;
	}
	return NULL;
}

TEST(version)
{
	char *argv[] = { CMD, "--version", NULL };
	struct cmd_run r;

	cmd_run(&r, argv, -1, NULL, BOUND);
	ASSERT_EQ(0, r.status);
	ASSERT_EQ(0, strncmp(r.out, "vmsplice-move 1.0 ", 18)) TH_LOG("%s", r.out);
}

/* On a coarse clock, bench refuses by itself (exit 5, no numbers). */
TEST(bench_refuses_on_this_clock)
{
	char *argv[] = { CMD, "bench", "-q", "--no-sysfs", "-s", "1M", "-k", "4k", "-m", "read",
			 "-d", "fresh", "-r", "1", NULL };
	struct cmd_run r;

	if (!coarse_clock())
		SKIP(return, "the clock here is fine (bench_json measures)");
	cmd_run(&r, argv, -1, NULL, BOUND);
	ASSERT_EQ(5, r.status);
	ASSERT_NE(NULL, strstr(r.err, "refusing to measure"));
	ASSERT_EQ('\0', r.out[0]);
}

FIXTURE(help) {};
FIXTURE_SETUP(help) {}
FIXTURE_TEARDOWN(help) {}
FIXTURE_VARIANT(help) { const char *sub; };
FIXTURE_VARIANT_ADD(help, probe) { "probe" };
FIXTURE_VARIANT_ADD(help, send) { "send" };
FIXTURE_VARIANT_ADD(help, recv) { "recv" };
FIXTURE_VARIANT_ADD(help, bench) { "bench" };

/* Every subcommand explains itself and exits 0. */
TEST_F(help, subcommand)
{
	char *argv[] = { CMD, (char *)variant->sub, "--help", NULL };
	char want[64];
	struct cmd_run r;

	cmd_run(&r, argv, -1, NULL, BOUND);
	ASSERT_EQ(0, r.status);
	snprintf(want, sizeof(want), "Usage: vmsplice-move %s", variant->sub);
	ASSERT_NE(NULL, strstr(r.out, want)) TH_LOG("%s", r.out);
}

FIXTURE(usage) {};
FIXTURE_SETUP(usage) {}
FIXTURE_TEARDOWN(usage) {}
FIXTURE_VARIANT(usage) { const char *args[6]; const char *expect; };
FIXTURE_VARIANT_ADD(usage, no_command) { { NULL }, "Usage:" };
FIXTURE_VARIANT_ADD(usage, unknown_command) { { "frobnicate" }, "unknown command" };
FIXTURE_VARIANT_ADD(usage, unknown_option) { { "probe", "--bogus" }, "Try 'vmsplice-move probe --help'" };
FIXTURE_VARIANT_ADD(usage, missing_socket) { { "send" }, "missing SOCKET" };
FIXTURE_VARIANT_ADD(usage, zero_size) { { "send", "-s", "0", "x" }, "--size" };
FIXTURE_VARIANT_ADD(usage, bad_size_suffix) { { "send", "-s", "12Q", "x" }, "--size" };
FIXTURE_VARIANT_ADD(usage, fd_and_path) { { "recv", "--fd", "3", "x" }, "exclude" };
FIXTURE_VARIANT_ADD(usage, bench_unaligned) { { "bench", "--sizes", "3K" }, "multiple of 4 KiB" };
FIXTURE_VARIANT_ADD(usage, bench_kind) { { "bench", "--kinds", "5k" }, "unknown kind" };
FIXTURE_VARIANT_ADD(usage, require_kind) { { "probe", "--require", "pmd" }, "unknown kind" };

/* Bad command lines: exit 2 and a message that says what to do. */
TEST_F(usage, exit_2)
{
	char *argv[8] = { CMD };
	struct cmd_run r;

	for (int i = 0; i < 6 && variant->args[i]; i++)
		argv[i + 1] = (char *)variant->args[i];
	cmd_run(&r, argv, -1, NULL, BOUND);
	ASSERT_EQ(2, r.status);
	ASSERT_NE(NULL, strstr(r.err, variant->expect)) TH_LOG("%s", r.err);
}

/* probe --json agrees with what this test finds out itself. */
TEST(probe_json)
{
	char *argv[] = { CMD, "probe", "--json", NULL };
	json_object *o, *res;
	struct cmd_run r;
	const char *base;

	cmd_run(&r, argv, -1, NULL, BOUND);
	ASSERT_EQ(0, r.status) TH_LOG("%s", r.err);
	o = json_tokener_parse(r.out);
	ASSERT_NE(NULL, o) TH_LOG("not JSON: %s", r.out);
	ASSERT_TRUE(json_object_is_type(get(o, "unmap_flag"), json_type_boolean));
	ASSERT_EQ(kernel_moves(), json_object_get_boolean(get(o, "unmap_flag")));
	ASSERT_EQ(kernel_counters(), json_object_get_boolean(get(o, "counters")));
	ASSERT_EQ(getpagesize(), json_object_get_int(get(o, "page_size")));
	res = get(o, "cases.4k.result");
	ASSERT_NE(NULL, res);
	base = json_object_get_string(res);
	if (!kernel_moves()) {
		ASSERT_STREQ("copied", base);
		ASSERT_FALSE(json_object_get_boolean(get(o, "moves.4k")));
	} else {
		ASSERT_STREQ("moved", base) TH_LOG("%s", json_object_get_string(get(o, "cases.4k.why")));
		ASSERT_TRUE(json_object_get_boolean(get(o, "cases.4k.giver_reads_zero")));
	}
	ASSERT_NE(NULL, get(o, "cases.thp.result"));
	ASSERT_NE(NULL, get(o, "cases.mthp.why"));
	json_object_put(o);
}

/*
 * On a kernel that moves, as root: an mTHP folio moves whole.  Sets the
 * 64 KiB knob to "always" for the probe and puts it back; never touches
 * the knob on a kernel that cannot move (the host).
 */
TEST(probe_mthp_moves)
{
	const char *knob = "/sys/kernel/mm/transparent_hugepage/hugepages-64kB/enabled";
	char *argv[] = { CMD, "probe", "--json", NULL };
	char old[128] = "", *a, *b;
	struct cmd_run r;
	json_object *o;
	FILE *f;

	REQUIRE_MOVE();	/* skips on a stock kernel, fails in the test VM */
	f = fopen(knob, "re");
	if (!f)
		SKIP(return, "no 64 KiB mTHP size on this kernel");
	if (!fgets(old, sizeof(old), f))
		old[0] = '\0';
	fclose(f);
	a = strchr(old, '[');
	b = a ? strchr(a, ']') : NULL;
	ASSERT_NE(NULL, b);
	*b = '\0';
	f = fopen(knob, "we");
	if (!f || fputs("always", f) < 0 || fclose(f))
		SKIP(return, "cannot enable 64 KiB mTHP (not root)");
	cmd_run(&r, argv, -1, NULL, BOUND);
	f = fopen(knob, "we");
	ASSERT_NE(NULL, f);
	fputs(a + 1, f);
	ASSERT_EQ(0, fclose(f));
	ASSERT_EQ(0, r.status) TH_LOG("%s", r.err);
	o = json_tokener_parse(r.out);
	ASSERT_NE(NULL, o);
	ASSERT_EQ(65536, json_object_get_int64(get(o, "mthp_size")));
	ASSERT_STREQ("moved", json_object_get_string(get(o, "cases.mthp.result")))
		TH_LOG("%s", json_object_get_string(get(o, "cases.mthp.why")));
	ASSERT_TRUE(json_object_get_boolean(get(o, "cases.mthp.giver_reads_zero")));
	if (kernel_counters())
		ASSERT_EQ(1, json_object_get_int64(get(o, "cases.mthp.large")));
	json_object_put(o);
}

/* probe --require 4k: 0 where pages move, 5 where they do not. */
TEST(probe_require)
{
	char *argv[] = { CMD, "probe", "--require", "4k", NULL };
	struct cmd_run r;

	cmd_run(&r, argv, -1, NULL, BOUND);
	ASSERT_EQ(kernel_moves() ? 0 : 5, r.status) TH_LOG("%s", r.err);
	if (!kernel_moves())
		ASSERT_NE(NULL, strstr(r.err, "do not move here"));
}

/* recv in the background, send in the foreground; both summaries as JSON. */
static void pair(struct __test_metadata *_metadata, char **recv_args, char **send_args,
		 struct cmd_run *rr, struct cmd_run *sr)
{
	int o, e;
	pid_t pid = cmd_start(recv_args, -1, NULL, &o, &e);

	ASSERT_GT(pid, 0);
	cmd_run(sr, send_args, -1, NULL, BOUND);
	cmd_finish(rr, pid, BOUND, o, e);
	ASSERT_FALSE(rr->timed_out);
	ASSERT_FALSE(sr->timed_out);
}

TEST(send_recv_json)
{
	char path[108];
	struct cmd_run rr, sr;
	json_object *ro, *so;
	uint64_t pages = (8 << 20) / getpagesize();

	sock_path(path, sizeof(path), "json");
	char *recv_args[] = { CMD, "recv", "--json", "-q", "-t", "20", path, NULL };
	char *send_args[] = { CMD, "send", "--json", "-q", "-t", "20", "-s", "8M", "-n", "2",
			      path, NULL };

	pair(_metadata, recv_args, send_args, &rr, &sr);
	ASSERT_EQ(0, rr.status) TH_LOG("%s", rr.err);
	ASSERT_EQ(0, sr.status) TH_LOG("%s", sr.err);
	ro = json_tokener_parse(rr.out);
	so = json_tokener_parse(sr.out);
	ASSERT_NE(NULL, ro);
	ASSERT_NE(NULL, so);
	ASSERT_TRUE(json_object_get_boolean(get(ro, "ok")));
	ASSERT_TRUE(json_object_get_boolean(get(ro, "verified")));
	ASSERT_EQ(8 << 20, json_object_get_int64(get(ro, "bytes")));
	ASSERT_EQ(8 << 20, json_object_get_int64(get(so, "acked_bytes")));
	ASSERT_EQ(2, json_object_get_int(get(ro, "regions")));
	ASSERT_EQ((int64_t)pages, json_object_get_int64(get(ro, "pages.total")));
	if (!kernel_moves()) {
		ASSERT_STREQ("copy", json_object_get_string(get(ro, "path")));
		ASSERT_STREQ("copy", json_object_get_string(get(so, "path")));
		ASSERT_EQ((int64_t)pages, json_object_get_int64(get(ro, "pages.copied")));
		ASSERT_EQ(0, json_object_get_int64(get(ro, "pages.moved")));
	} else {
		ASSERT_STREQ("move", json_object_get_string(get(ro, "path")));
		if (kernel_counters())
			ASSERT_EQ((int64_t)pages, json_object_get_int64(get(ro, "pages.moved")));
	}
	json_object_put(ro);
	json_object_put(so);
}

/* A file's contents, odd-sized, arrive byte for byte in the output file. */
TEST(file_round_trip)
{
	char path[108], in[] = "/tmp/vsm-in.XXXXXX", out[] = "/tmp/vsm-out.XXXXXX";
	size_t len = 300007;
	char *a = malloc(len), *b = malloc(len + 1);
	struct cmd_run rr, sr;
	int fi, fo;

	ASSERT_NE(NULL, a);
	ASSERT_NE(NULL, b);
	fill_pattern(a, len, 0, 77);
	fi = mkstemp(in);
	fo = mkstemp(out);
	ASSERT_EQ((ssize_t)len, write(fi, a, len));
	close(fi);
	sock_path(path, sizeof(path), "file");
	char *recv_args[] = { CMD, "recv", "-q", "-t", "20", "-o", out, path, NULL };
	char *send_args[] = { CMD, "send", "-q", "-t", "20", "-f", in, "-n", "3", path, NULL };

	pair(_metadata, recv_args, send_args, &rr, &sr);
	ASSERT_EQ(0, rr.status) TH_LOG("%s", rr.err);
	ASSERT_EQ(0, sr.status) TH_LOG("%s", sr.err);
	ASSERT_EQ((ssize_t)len, read(fo, b, len + 1));
	ASSERT_EQ(0, memcmp(a, b, len));
	ASSERT_NE(NULL, strstr(rr.out, kernel_moves() ? "path: move" : "path: copy"));
	close(fo);
	unlink(in);
	unlink(out);
	free(a);
	free(b);
}

/* The receiver checks the pattern: another seed is wrong data, exit 4. */
TEST(wrong_seed_exit_4)
{
	char path[108];
	struct cmd_run rr, sr;

	sock_path(path, sizeof(path), "seed");
	char *recv_args[] = { CMD, "recv", "-q", "-t", "20", "--seed", "1", path, NULL };
	char *send_args[] = { CMD, "send", "-q", "-t", "20", "-s", "1M", "--seed", "2", path, NULL };

	pair(_metadata, recv_args, send_args, &rr, &sr);
	ASSERT_EQ(4, rr.status) TH_LOG("%s", rr.err);
	ASSERT_NE(NULL, strstr(rr.err, "differs from the pattern"));
	ASSERT_EQ(0, sr.status) TH_LOG("%s", sr.err);
}

/* Over the receiver's limit: refused before any byte moves, exit 3 both. */
TEST(over_limit_exit_3)
{
	char path[108];
	struct cmd_run rr, sr;
	json_object *so;

	sock_path(path, sizeof(path), "limit");
	char *recv_args[] = { CMD, "recv", "-q", "-t", "20", "-m", "1M", path, NULL };
	char *send_args[] = { CMD, "send", "-q", "--json", "-t", "20", "-s", "4M", path, NULL };

	pair(_metadata, recv_args, send_args, &rr, &sr);
	ASSERT_EQ(3, rr.status) TH_LOG("%s", rr.err);
	ASSERT_NE(NULL, strstr(rr.err, "the limit is 1048576"));
	ASSERT_EQ(3, sr.status);
	ASSERT_NE(NULL, strstr(sr.err, "receiver refused"));
	so = json_tokener_parse(sr.out);
	ASSERT_NE(NULL, so);
	ASSERT_STREQ("rejected", json_object_get_string(get(so, "error")));
	ASSERT_EQ(0, json_object_get_int64(get(so, "bytes")));
	ASSERT_EQ(3, json_object_get_int(get(so, "exit_code")));
	json_object_put(so);
}

/* Nobody listening: exit 1 after the timeout, with what to do. */
TEST(no_listener_exit_1)
{
	char path[108];
	struct cmd_run r;

	sock_path(path, sizeof(path), "none");
	char *argv[] = { CMD, "send", "-q", "-t", "0.3", "-s", "4K", path, NULL };

	cmd_run(&r, argv, -1, NULL, BOUND);
	ASSERT_EQ(1, r.status);
	ASSERT_NE(NULL, strstr(r.err, "start 'vmsplice-move recv' there first")) TH_LOG("%s", r.err);
}

/* recv never replaces a file that is not a socket. */
TEST(recv_keeps_other_files)
{
	char path[] = "/tmp/vsm-notsock.XXXXXX";
	struct cmd_run r;
	struct stat st;
	int fd = mkstemp(path);

	ASSERT_EQ(5, write(fd, "keep\n", 5));
	close(fd);
	char *argv[] = { CMD, "recv", "-q", "-t", "1", path, NULL };

	cmd_run(&r, argv, -1, NULL, BOUND);
	ASSERT_EQ(1, r.status);
	ASSERT_NE(NULL, strstr(r.err, "not a socket"));
	ASSERT_EQ(0, stat(path, &st));
	ASSERT_EQ(5, st.st_size);
	unlink(path);
}

/* bench refuses a jiffies clock with exit 5 and says why. */
TEST(bench_refuses_coarse_clock)
{
	char src[] = "/tmp/vsm-clock.XXXXXX", env[64];
	char *argv[] = { CMD, "bench", "-q", "-s", "1M", "-r", "1", NULL };
	struct cmd_run r;
	int fd = mkstemp(src);

	ASSERT_EQ(8, write(fd, "jiffies\n", 8));
	close(fd);
	snprintf(env, sizeof(env), "VMSPLICE_MOVE_CLOCKSOURCE=%s", src);
	cmd_run(&r, argv, -1, env, BOUND);
	ASSERT_EQ(5, r.status);
	ASSERT_NE(NULL, strstr(r.err, "refusing to measure: the clocksource is jiffies"));
	ASSERT_EQ('\0', r.out[0]);	/* no numbers printed */
	unlink(src);
}

/*
 * Run "bench --json -q --no-sysfs -k 4k -d fresh -r 1" with @size and
 * @methods into @obj, parsed (put it), after checking the exit status.
 */
#define BENCH_JSON(size, methods, obj) do {					\
	char *argv_[] = { CMD, "bench", "--json", "-q", "--no-sysfs", "-s", size,	\
			  "-k", "4k", "-d", "fresh", "-m", methods, "-r", "1", NULL };	\
	struct cmd_run r_;							\
										\
	cmd_run(&r_, argv_, -1, NULL, BOUND);					\
	ASSERT_EQ(0, r_.status) TH_LOG("%s", r_.err);				\
	(obj) = json_tokener_parse(r_.out);					\
	ASSERT_NE(NULL, (obj));							\
} while (0)

/*
 * bench --json: one row per cell, move rows checked against the counters,
 * the sleeps of a two-process row counted.
 */
TEST(bench_json)
{
	json_object *o, *rows, *mv;

	if (coarse_clock())
		SKIP(return, "%s", coarse_clock());
	BENCH_JSON("1M", "move,vmsplice", o);
	rows = get(o, "rows");
	ASSERT_EQ(2, json_object_array_length(rows));
	mv = json_object_array_get_idx(rows, 0);
	ASSERT_STREQ("move", json_object_get_string(get(mv, "method")));
	ASSERT_STREQ("ok", json_object_get_string(get(mv, "status")));
	ASSERT_GT(json_object_get_double(get(mv, "seconds")), 0);
	ASSERT_EQ(kernel_moves() && kernel_counters(),
		  json_object_get_boolean(get(mv, "move_verified")))
		TH_LOG("%s", json_object_get_string(get(mv, "note")));
	if (!kernel_moves())
		ASSERT_NE(NULL, strstr(json_object_get_string(get(mv, "note")), "NOT MOVED"));
	/* How often the two processes slept: counted, never negative. */
	ASSERT_NE(NULL, get(mv, "sleeps_per_mib"));
	ASSERT_GE(json_object_get_double(get(mv, "sleeps_per_mib")), 0);
	json_object_put(o);
}

/*
 * bench's move2p rows (two pipes in turn): every page moved where the
 * kernel moves (4 pipe-fulls, so both pipes carry chunks), skipped with the
 * reason where it cannot give with SPLICE_F_UNMAP.
 */
TEST(bench_json_two_pipes)
{
	json_object *o, *rows, *mv;

	if (coarse_clock())
		SKIP(return, "%s", coarse_clock());
	BENCH_JSON("4M", "move2p", o);
	rows = get(o, "rows");
	ASSERT_EQ(1, json_object_array_length(rows));
	mv = json_object_array_get_idx(rows, 0);
	ASSERT_STREQ("move2p", json_object_get_string(get(mv, "method")));
	if (!kernel_moves()) {
		ASSERT_FALSE(move_required()) TH_LOG("this run requires the feature");
		ASSERT_STREQ("skipped", json_object_get_string(get(mv, "status")));
		ASSERT_NE(NULL, strstr(json_object_get_string(get(mv, "note")), "SPLICE_F_UNMAP"));
	} else {
		ASSERT_STREQ("ok", json_object_get_string(get(mv, "status")));
		ASSERT_EQ(kernel_counters(), json_object_get_boolean(get(mv, "move_verified")))
			TH_LOG("%s", json_object_get_string(get(mv, "note")));
		ASSERT_EQ(0, json_object_get_int64(get(mv, "copied_pages")));
	}
	json_object_put(o);
}

/* bench --csv: a header and one line per row. */
TEST(bench_csv)
{
	char *argv[] = { CMD, "bench", "--csv", "-q", "--no-sysfs", "-s", "1M", "-k", "4k",
			 "-d", "populated", "-m", "read,pvreadv", "-r", "1", NULL };
	struct cmd_run r;
	int lines = 0;

	if (coarse_clock())
		SKIP(return, "%s", coarse_clock());
	cmd_run(&r, argv, -1, NULL, BOUND);
	ASSERT_EQ(0, r.status) TH_LOG("%s", r.err);
	ASSERT_EQ(0, strncmp(r.out, "size_bytes,kind,dest,method,status,", 35));
	for (char *p = r.out; *p; p++)
		lines += *p == '\n';
	ASSERT_EQ(3, lines);
	ASSERT_NE(NULL, strstr(r.out, "\n1048576,4k,populated,read,ok,"));
	ASSERT_NE(NULL, strstr(r.out, "\n1048576,4k,populated,pvreadv,ok,"));
}

TEST_HARNESS_MAIN
