// SPDX-License-Identifier: GPL-2.0
/*
 * vmsplice-move bench: the benchmark matrix (sizes x page kinds x
 * destinations x methods), as a table, CSV, JSON and a plot.  Refuses to
 * run on a clock it cannot trust.
 */
#define _GNU_SOURCE
#include "bench.h"
#include "cmd.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define CLOCKSOURCE "/sys/devices/system/clocksource/clocksource0/current_clocksource"
#define THP_DIR "/sys/kernel/mm/transparent_hugepage"
#define MAX_SIZES 16

struct bench_opts {
	uint64_t sizes[MAX_SIZES];
	int nr_sizes;
	bool kinds[NR_KINDS], dests[NR_DESTS], methods[NR_METHODS];
	int reps;
	bool csv, json, quiet, sysfs;
	const char *plot;
	uint64_t mthp_size;
	uint64_t pipe_size;
};

/* The mTHP knob we may have changed, to put back. */
struct mthp_knob {
	char path[128];
	char old[16];
	bool changed;
};

static void help(void)
{
	printf("Usage: %s bench [OPTIONS]\n\n"
	       "Hand regions from one process to another in five ways and time the taker:\n"
	       "move (GIFT|UNMAP -> MOVE), vmsplice (GIFT -> copy), read() from the pipe,\n"
	       "process_vm_readv, and UFFDIO_MOVE within one process; for 4 KiB pages,\n"
	       "THP and mTHP; into fresh and into already-populated destinations.\n"
	       "Move rows are checked against the kernel's counters and flagged when\n"
	       "they did not move.  Best of --reps; the data is checked every time;\n"
	       "a row whose repetitions are more than 2x apart is flagged NOISY.\n"
	       "\"sleeps\": how often the two processes slept (voluntary context\n"
	       "switches of both) during a hand-over, a MiB, mean of the repetitions.\n\n"
	       "  -s, --sizes LIST     sizes, comma-separated (default 1M,16M,256M)\n"
	       "  -k, --kinds LIST     4k,thp,mthp (default all)\n"
	       "  -d, --dest LIST      fresh,populated (default both)\n"
	       "  -m, --methods LIST   move,move2p,vmsplice,read,pvreadv,uffd (default all)\n"
	       "  -r, --reps N         repetitions, best kept (default 3)\n"
	       "      --mthp-size SIZE mTHP folio size (default 64K); as root the bench\n"
	       "                       sets its knob to \"always\" and restores it after\n"
	       "      --pipe-size SIZE the pipe between the two processes (default 1M,\n"
	       "                       pipe-max-size's default; more needs root)\n"
	       "      --no-sysfs       never change THP settings (mthp rows may skip)\n"
	       "      --csv            CSV on stdout instead of the table\n"
	       "  -j, --json           JSON on stdout instead of the table\n"
	       "      --plot FILE.png  also plot cost per MiB against size (gnuplot)\n"
	       "  -q, --quiet          no progress lines on stderr\n"
	       "      --dup ...        the MREMAP_DUP row group instead (bench --dup --help)\n"
	       "      --kernel-cost [N] the kernel's per-page cost, one process, against\n"
	       "                       UFFDIO_MOVE, best of N (root; bench --kernel-cost --help)\n"
		"  -h, --help           this help\n\n"
	       "Refuses (exit 5) when the clock is coarse: clocksource jiffies, or\n"
	       "clock_getres(CLOCK_MONOTONIC) above 1 us.  Exit 1 when a row failed.\n",
	       VSM_CMD_NAME);
}

/* Whether timings can be trusted; @why says what is wrong. */
bool bench_clock_ok(char *why, size_t len)
{
	const char *path = getenv("VMSPLICE_MOVE_CLOCKSOURCE");
	struct timespec res;
	char src[64] = "";
	FILE *f;

	f = fopen(path ? path : CLOCKSOURCE, "re");
	if (f) {
		if (!fgets(src, sizeof(src), f))
			src[0] = '\0';
		fclose(f);
		src[strcspn(src, "\n")] = '\0';
	}
	if (!strcmp(src, "jiffies")) {
		snprintf(why, len, "the clocksource is jiffies (steps of 1/HZ s): timings would "
			 "be meaningless; boot with a working TSC (tsc=reliable in a VM)");
		return false;
	}
	if (clock_getres(CLOCK_MONOTONIC, &res) || res.tv_sec || res.tv_nsec > 1000) {
		snprintf(why, len, "CLOCK_MONOTONIC resolution is %ld ns (> 1 us): timings "
			 "would be meaningless", res.tv_sec * 1000000000L + res.tv_nsec);
		return false;
	}
	return true;
}

static int parse_list(const char *sub, const char *arg, const char *const *names,
		      int n, bool *out, const char *what)
{
	char buf[128], *save, *tok;

	memset(out, 0, n * sizeof(*out));
	snprintf(buf, sizeof(buf), "%s", arg);
	for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		int i;

		for (i = 0; i < n && strcmp(tok, names[i]); i++)
			;
		if (i == n)
			return usage_error(sub, "unknown %s '%s'", what, tok);
		out[i] = true;
	}
	return 0;
}

static int parse(int argc, char **argv, struct bench_opts *o)
{
	static const struct option opts[] = {
		{ "sizes", required_argument, NULL, 's' },
		{ "kinds", required_argument, NULL, 'k' },
		{ "dest", required_argument, NULL, 'd' },
		{ "methods", required_argument, NULL, 'm' },
		{ "reps", required_argument, NULL, 'r' },
		{ "mthp-size", required_argument, NULL, 'M' },
		{ "pipe-size", required_argument, NULL, 'P' },
		{ "no-sysfs", no_argument, NULL, 'S' },
		{ "csv", no_argument, NULL, 'c' },
		{ "json", no_argument, NULL, 'j' },
		{ "plot", required_argument, NULL, 'p' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	unsigned long long v;
	int c, r;

	*o = (struct bench_opts){ .sizes = { 1 << 20, 16 << 20, 256 << 20 }, .nr_sizes = 3,
				  .reps = 3, .sysfs = true, .mthp_size = 64 << 10,
				  .pipe_size = 1 << 20 };
	for (int i = 0; i < NR_KINDS; i++)
		o->kinds[i] = true;
	for (int i = 0; i < NR_DESTS; i++)
		o->dests[i] = true;
	for (int i = 0; i < NR_METHODS; i++)
		o->methods[i] = true;
	while ((c = getopt_long(argc, argv, "s:k:d:m:r:jqh", opts, NULL)) != -1) {
		switch (c) {
		case 's': {
			char buf[256], *save, *tok;

			o->nr_sizes = 0;
			snprintf(buf, sizeof(buf), "%s", optarg);
			for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
				if (o->nr_sizes == MAX_SIZES)
					return usage_error("bench", "at most %d sizes", MAX_SIZES);
				if (parse_size(tok, &o->sizes[o->nr_sizes]) ||
				    o->sizes[o->nr_sizes] < 4096 || o->sizes[o->nr_sizes] % 4096)
					return usage_error("bench", "--sizes: '%s' is not a multiple of 4 KiB", tok);
				o->nr_sizes++;
			}
			if (!o->nr_sizes)
				return usage_error("bench", "--sizes: empty list");
			break;
		}
		case 'k':
			if ((r = parse_list("bench", optarg, bench_kind_name, NR_KINDS, o->kinds, "kind")))
				return r;
			break;
		case 'd':
			if ((r = parse_list("bench", optarg, bench_dest_name, NR_DESTS, o->dests, "destination")))
				return r;
			break;
		case 'm':
			if ((r = parse_list("bench", optarg, bench_method_name, NR_METHODS, o->methods, "method")))
				return r;
			break;
		case 'r':
			if (parse_uint(optarg, 1000, &v) || !v)
				return usage_error("bench", "--reps: 1 to 1000");
			o->reps = v;
			break;
		case 'M':
			if (parse_size(optarg, &o->mthp_size) || o->mthp_size < 8192 ||
			    (o->mthp_size & (o->mthp_size - 1)))
				return usage_error("bench", "--mthp-size: a power of two >= 8K");
			break;
		case 'P':
			if (parse_size(optarg, &o->pipe_size) || o->pipe_size < 4096 ||
			    o->pipe_size > (1U << 30))
				return usage_error("bench", "--pipe-size: 4K to 1G");
			break;
		case 'S':
			o->sysfs = false;
			break;
		case 'c':
			o->csv = true;
			break;
		case 'j':
			o->json = true;
			break;
		case 'p':
			o->plot = optarg;
			break;
		case 'q':
			o->quiet = true;
			break;
		case 'h':
			help();
			return -1;
		default:
			return usage_error("bench", "bad option");
		}
	}
	if (optind < argc)
		return usage_error("bench", "unexpected argument '%s'", argv[optind]);
	if (o->csv && o->json)
		return usage_error("bench", "--csv and --json exclude each other");
	return 0;
}

static int read_word(const char *path, char *out, size_t len)
{
	char buf[128], *a, *b;
	FILE *f = fopen(path, "re");

	if (!f)
		return -1;
	a = fgets(buf, sizeof(buf), f);
	fclose(f);
	if (!a || !(a = strchr(buf, '[')) || !(b = strchr(a, ']')))
		return -1;
	*b = '\0';
	snprintf(out, len, "%s", a + 1);
	return 0;
}

static int write_word(const char *path, const char *w)
{
	FILE *f = fopen(path, "we");
	int ret = 0;

	if (!f)
		return -1;
	if (fputs(w, f) < 0)
		ret = -1;
	if (fclose(f))
		ret = -1;
	return ret;
}

/*
 * mTHP folios for the mthp rows: the size's knob must say "always" (the
 * regions get no madvise, so the PMD size, under the top-level "madvise",
 * stays out).  As root we set it and restore it afterwards.
 */
static size_t mthp_setup(const struct bench_opts *o, struct mthp_knob *k, char *why,
			 size_t len)
{
	char top[16] = "";

	snprintf(k->path, sizeof(k->path), THP_DIR "/hugepages-%llukB/enabled",
		 (unsigned long long)(o->mthp_size >> 10));
	if (read_word(k->path, k->old, sizeof(k->old))) {
		snprintf(why, len, "no mTHP knob %s", k->path);
		return 0;
	}
	read_word(THP_DIR "/enabled", top, sizeof(top));
	if (!strcmp(top, "always")) {
		snprintf(why, len, "transparent_hugepage=always would give PMD THPs too");
		return 0;
	}
	if (!strcmp(k->old, "always"))
		return o->mthp_size;
	if (!o->sysfs || write_word(k->path, "always")) {
		snprintf(why, len, "%s is [%s]; needs \"always\"%s", k->path, k->old,
			 o->sysfs ? " (root to set it)" : "");
		return 0;
	}
	k->changed = true;
	return o->mthp_size;
}

static void mthp_restore(struct mthp_knob *k)
{
	if (k->changed && write_word(k->path, k->old))
		errorf("bench", "could not restore %s to %s: %m", k->path, k->old);
}

static double ms_per_mib(const struct bench_row *r)
{
	return r->secs * 1e3 / (r->size / 1048576.0);
}

static void print_table(const struct bench_row *rows, int nr, const struct bench_env *env)
{
	char sz[32];

	printf("%9s %-5s %-9s %-9s %10s %9s %9s %8s %7s %7s  %s\n", "size", "kind", "dest",
	       "method", "ms", "MiB/s", "us/4KiB", "x move", "moved", "sleeps", "note");
	for (int i = 0; i < nr; i++) {
		const struct bench_row *r = &rows[i];
		const struct bench_row *mv = NULL;

		for (int j = 0; j < nr; j++)
			if (rows[j].size == r->size && rows[j].kind == r->kind &&
			    rows[j].dest == r->dest && rows[j].method == M_MOVE &&
			    !rows[j].skipped && !rows[j].failed)
				mv = &rows[j];
		fmt_bytes(sz, sizeof(sz), r->size);
		printf("%9s %-5s %-9s %-9s ", sz, bench_kind_name[r->kind],
		       bench_dest_name[r->dest], bench_method_name[r->method]);
		if (r->skipped || r->failed) {
			printf("%10s %9s %9s %8s %7s %7s  %s\n", "-", "-", "-", "-", "-", "-",
			       r->note);
			continue;
		}
		printf("%10.3f %9.0f %9.3f %8.2f ", r->secs * 1e3, r->size / r->secs / 1048576,
		       r->secs * 1e6 / (r->size / 4096.0), mv ? r->secs / mv->secs : 0.0);
		if (r->method != M_PVREADV && r->method != M_UFFD) {
			if (r->counters)
				printf("%6.0f%%", 100.0 * r->moved / (r->size / env->page));
			else
				printf("%7s", "n/a");
		} else {
			printf("%7s", "-");
		}
		if (r->sleeps >= 0)
			printf(" %7.2f", r->sleeps);
		else
			printf(" %7s", "-");
		printf("  %s\n", r->note);
	}
}

static void print_csv(const struct bench_row *rows, int nr)
{
	printf("size_bytes,kind,dest,method,status,ms,mib_per_s,ms_per_mib,moved_pages,copied_pages,move_verified,sleeps_per_mib,note\n");
	for (int i = 0; i < nr; i++) {
		const struct bench_row *r = &rows[i];
		bool ok = !r->skipped && !r->failed;

		printf("%llu,%s,%s,%s,%s,", (unsigned long long)r->size, bench_kind_name[r->kind],
		       bench_dest_name[r->dest], bench_method_name[r->method],
		       r->skipped ? "skipped" : r->failed ? "failed" : "ok");
		if (ok)
			printf("%.4f,%.1f,%.5f,%lld,%lld,%s,", r->secs * 1e3,
			       r->size / r->secs / 1048576, ms_per_mib(r), r->moved, r->copied,
			       bench_moves(r->method) ? (r->move_ok ? "yes" : "no") : "");
		else
			printf(",,,,,,");
		if (ok && r->sleeps >= 0)
			printf("%.3f", r->sleeps);
		printf(",");
		/* Notes never contain commas or quotes; quote anyway. */
		printf("\"%s\"\n", r->note);
	}
}

static void print_json(const struct bench_row *rows, int nr, const struct bench_env *env,
		       int reps)
{
	json_object *o = json_object_new_object(), *a = json_object_new_array();

	json_object_object_add(o, "unmap_flag", json_object_new_boolean(env->unmap));
	json_object_object_add(o, "page_size", json_object_new_int64(env->page));
	json_object_object_add(o, "mthp_size", json_object_new_int64(env->mthp));
	json_object_object_add(o, "pipe_size", json_object_new_int64(env->pipe_size));
	json_object_object_add(o, "reps", json_object_new_int(reps));
	for (int i = 0; i < nr; i++) {
		const struct bench_row *r = &rows[i];
		json_object *j = json_object_new_object();
		bool ok = !r->skipped && !r->failed;

		json_object_object_add(j, "size_bytes", json_object_new_int64(r->size));
		json_object_object_add(j, "kind", json_object_new_string(bench_kind_name[r->kind]));
		json_object_object_add(j, "dest", json_object_new_string(bench_dest_name[r->dest]));
		json_object_object_add(j, "method", json_object_new_string(bench_method_name[r->method]));
		json_object_object_add(j, "status", json_object_new_string(
			r->skipped ? "skipped" : r->failed ? "failed" : "ok"));
		if (ok) {
			json_object_object_add(j, "seconds", json_object_new_double(r->secs));
			json_object_object_add(j, "worst_seconds", json_object_new_double(r->worst));
			json_object_object_add(j, "ms_per_mib", json_object_new_double(ms_per_mib(r)));
			json_object_object_add(j, "mib_per_s", json_object_new_double(
				r->size / r->secs / 1048576));
			json_object_object_add(j, "moved_pages", json_object_new_int64(r->moved));
			json_object_object_add(j, "copied_pages", json_object_new_int64(r->copied));
			json_object_object_add(j, "counters", json_object_new_boolean(r->counters));
			if (r->sleeps >= 0)
				json_object_object_add(j, "sleeps_per_mib",
						       json_object_new_double(r->sleeps));
		}
		if (bench_moves(r->method))
			json_object_object_add(j, "move_verified", json_object_new_boolean(r->move_ok));
		json_object_object_add(j, "note", json_object_new_string(r->note));
		json_object_array_add(a, j);
	}
	json_object_object_add(o, "rows", a);
	json_print(o);
}

int cmd_bench(int argc, char **argv)
{
	struct bench_opts o;
	struct bench_env env = { 0 };
	struct mthp_knob knob = { 0 };
	struct bench_row *rows;
	char why[192] = "";
	int nr = 0, ret, rc = EXIT_OK, p[2];

	/* The MREMAP_DUP row group has its own options: bench --dup --help. */
	if (argc > 1 && !strcmp(argv[1], "--dup"))
		return vsm_cmd_dup_bench(argc - 1, argv + 1);
	/* The kernel's per-page cost alone: bench --kernel-cost --help. */
	if (argc > 1 && !strcmp(argv[1], "--kernel-cost"))
		return vsm_cmd_move_bench(argc - 1, argv + 1);
	ret = parse(argc, argv, &o);
	if (ret)
		return ret < 0 ? EXIT_OK : ret;
	if (!bench_clock_ok(why, sizeof(why))) {
		errorf("bench", "refusing to measure: %s", why);
		return EXIT_ENV;
	}
	if (pipe(p)) {
		errorf("bench", "pipe: %m");
		return EXIT_FAIL;
	}
	env.unmap = vsm_unmap_supported(p[1]) == 1;
	if (fcntl(p[1], F_SETPIPE_SZ, (int)o.pipe_size) < 0) {
		errorf("bench", "--pipe-size %llu: %m (above pipe-max-size needs CAP_SYS_RESOURCE)",
		       (unsigned long long)o.pipe_size);
		close(p[0]);
		close(p[1]);
		return EXIT_ENV;
	}
	close(p[0]);
	close(p[1]);
	env.page = sysconf(_SC_PAGESIZE);
	env.thp = vsm_thp_size();
	env.pipe_size = o.pipe_size;
	if (o.kinds[K_MTHP]) {
		env.mthp = mthp_setup(&o, &knob, env.mthp_why, sizeof(env.mthp_why));
		if (!env.mthp && !o.quiet)
			fprintf(stderr, "bench: mthp rows skip: %s\n", env.mthp_why);
	}
	rows = calloc((size_t)o.nr_sizes * NR_KINDS * NR_DESTS * NR_METHODS, sizeof(*rows));
	if (!rows) {
		mthp_restore(&knob);
		errorf("bench", "out of memory");
		return EXIT_FAIL;
	}
	if (!env.unmap && !o.quiet)
		fprintf(stderr, "bench: this kernel rejects SPLICE_F_UNMAP: move rows copy and are flagged\n");
	for (int s = 0; s < o.nr_sizes; s++)
		for (int k = 0; k < NR_KINDS; k++)
			for (int d = 0; d < NR_DESTS; d++)
				for (int m = 0; m < NR_METHODS; m++) {
					struct bench_row *r = &rows[nr];

					if (!o.kinds[k] || !o.dests[d] || !o.methods[m])
						continue;
					/* A THP row needs whole THPs. */
					if (k == K_THP && o.sizes[s] % env.thp)
						continue;
					*r = (struct bench_row){ .size = o.sizes[s], .kind = k,
								 .dest = d, .method = m };
					if (!o.quiet)
						fprintf(stderr, "bench: %llu bytes %s %s %s\n",
							(unsigned long long)o.sizes[s],
							bench_kind_name[k], bench_dest_name[d],
							bench_method_name[m]);
					bench_run(&env, o.reps, r);
					if (r->failed)
						rc = EXIT_FAIL;
					nr++;
				}
	mthp_restore(&knob);
	if (o.csv)
		print_csv(rows, nr);
	else if (o.json)
		print_json(rows, nr, &env, o.reps);
	else {
		printf("vmsplice-move bench: best of %d, SPLICE_F_UNMAP %s, page %zu, THP %zu, mTHP %zu, pipe %zu\n",
		       o.reps, env.unmap ? "accepted" : "rejected (move rows copy)", env.page,
		       env.thp, env.mthp, env.pipe_size);
		print_table(rows, nr, &env);
	}
	if (o.plot && bench_plot(o.plot, rows, nr, why, sizeof(why))) {
		errorf("bench", "no plot: %s", why);
		if (rc == EXIT_OK)
			rc = EXIT_ENV;
	}
	free(rows);
	return rc;
}
