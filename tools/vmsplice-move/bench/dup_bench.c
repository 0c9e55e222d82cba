// SPDX-License-Identifier: GPL-2.0
/*
 * dup_bench: what a copy-on-write duplicate of a populated range costs.
 *
 *   dup_bench [--sizes MIB,MIB,...] [--repeat N] [--kinds 4k,thp]
 *
 * For each size and page kind (4 KiB pages, or THP), one process holding
 * a populated range gets a snapshot of it four ways:
 *
 *   dup       mremap(MREMAP_DUP) in the same process
 *   fork      fork() of the process holding the range (the child is the
 *             snapshot; the time is fork() in the parent)
 *   memcpy    memcpy() into freshly mapped memory (faults included)
 *   memfd     the range lives in a memfd from the start; the snapshot is
 *             mmap(MAP_PRIVATE) of it (lazy: pages are copied from the
 *             file at first write, and unwritten pages are not a snapshot)
 *
 * and then the first write to every 4 KiB page of the original (the
 * copy-on-write cost a snapshot leaves behind; for memcpy the pages are
 * already private) is timed, for dup, fork and memcpy, and the first write
 * to every page of the snapshot for memfd.  Times are medians of --repeat
 * runs after one untimed run.  The program refuses to print numbers when the clock is coarse
 * (a jiffies clocksource, or reads that advance in steps above 1 us).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../lib/snapshot.h"

#define PS	4096UL
#define PMD_SZ	(2UL << 20)
#define MAX_REPEAT	9

struct opts {
	size_t sizes_mib[16];
	int nsizes;
	int repeat;
	bool kind_4k, kind_thp;
};

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/*
 * Refuse coarse clocks: 0 when the clock can be trusted, else why not.
 * The clocksource must not be jiffies, and reading CLOCK_MONOTONIC must
 * advance in steps of at most 1 us.  clock_getres() is printed too, but
 * is not the test on its own: without high-resolution timers it reports
 * the timer tick (4 ms) even when reads come from the TSC in nanoseconds.
 */
static int check_clock(char *why, size_t len, char *info, size_t info_len)
{
	struct timespec res, a, b;
	long step = -1;
	char cs[64] = "?";
	FILE *f;

	if (clock_getres(CLOCK_MONOTONIC, &res)) {
		snprintf(why, len, "clock_getres: %s", strerror(errno));
		return -1;
	}
	f = fopen("/sys/devices/system/clocksource/clocksource0/current_clocksource", "re");
	if (f) {
		if (!fgets(cs, sizeof(cs), f))
			snprintf(cs, sizeof(cs), "?");
		fclose(f);
		cs[strcspn(cs, "\n")] = 0;
	}
	/* The smallest step seen between two reads that differ. */
	for (int i = 0; i < 1000; i++) {
		long d;

		clock_gettime(CLOCK_MONOTONIC, &a);
		do
			clock_gettime(CLOCK_MONOTONIC, &b);
		while (b.tv_sec == a.tv_sec && b.tv_nsec == a.tv_nsec);
		d = (b.tv_sec - a.tv_sec) * 1000000000L + b.tv_nsec - a.tv_nsec;
		if (step < 0 || d < step)
			step = d;
	}
	snprintf(info, info_len, "clocksource %s, clock_getres %ld ns, read step %ld ns",
		 cs, res.tv_sec * 1000000000L + res.tv_nsec, step);
	if (strstr(cs, "jiffies")) {
		snprintf(why, len, "clocksource is %s", cs);
		return -1;
	}
	if (step > 1000) {
		snprintf(why, len, "CLOCK_MONOTONIC advances in steps of %ld ns", step);
		return -1;
	}
	return 0;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
	qsort(v, n, sizeof(*v), cmp_double);
	return v[n / 2];
}

/* A populated range of @len bytes, THP-backed when @thp. */
static char *populated(size_t len, bool thp)
{
	char *map = mmap(NULL, len + PMD_SZ, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	char *p;

	if (map == MAP_FAILED)
		return NULL;
	p = (char *)(((uintptr_t)map + PMD_SZ - 1) & ~(PMD_SZ - 1));
	if (p != map)
		munmap(map, p - map);
	munmap(p + len, map + len + PMD_SZ - (p + len));
	madvise(p, len, thp ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);
	for (size_t off = 0; off < len; off += PS)
		p[off] = (char)(off >> 12);
	return p;
}

/* Write one byte in every 4 KiB page: seconds. */
static double write_each_page(char *p, size_t len)
{
	double t0 = now();

	for (size_t off = 0; off < len; off += PS)
		p[off] ^= 1;
	return now() - t0;
}

static void *sys_dup(void *p, size_t len)
{
	return (void *)syscall(SYS_mremap, p, len, len,
			       MREMAP_MAYMOVE | MREMAP_DUP, NULL);
}

struct result {
	double snap, first_write;	/* seconds */
	bool ok;
	char note[64];
};

static void run_dup(size_t len, bool thp, struct result *r)
{
	char *p = populated(len, thp);
	void *d;
	double t0;

	if (!p) {
		snprintf(r->note, sizeof(r->note), "mmap failed");
		return;
	}
	t0 = now();
	d = sys_dup(p, len);
	r->snap = now() - t0;
	if (d == MAP_FAILED) {
		snprintf(r->note, sizeof(r->note), "MREMAP_DUP: %s", strerror(errno));
		munmap(p, len);
		return;
	}
	r->first_write = write_each_page(p, len);
	r->ok = true;
	munmap(d, len);
	munmap(p, len);
}

static void run_fork(size_t len, bool thp, struct result *r)
{
	char *p = populated(len, thp);
	int ready[2], go[2];
	double t0;
	pid_t pid;
	char c;

	if (!p || pipe(ready) || pipe(go)) {
		snprintf(r->note, sizeof(r->note), "set-up failed");
		return;
	}
	t0 = now();
	pid = fork();
	if (pid == 0) {
		/* The snapshot: hold the range until the parent is done. */
		if (read(go[0], &c, 1) < 0)
			_exit(1);
		_exit(p[PS] == 1 ? 0 : 1);
	}
	r->snap = now() - t0;
	if (pid < 0) {
		snprintf(r->note, sizeof(r->note), "fork: %s", strerror(errno));
		munmap(p, len);
		return;
	}
	r->first_write = write_each_page(p, len);
	if (write(go[1], "x", 1) != 1)
		kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	close(ready[0]);
	close(ready[1]);
	close(go[0]);
	close(go[1]);
	r->ok = true;
	munmap(p, len);
}

static void run_memcpy(size_t len, bool thp, struct result *r)
{
	char *p = populated(len, thp);
	char *c;
	double t0;

	if (!p) {
		snprintf(r->note, sizeof(r->note), "mmap failed");
		return;
	}
	t0 = now();
	c = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (c != MAP_FAILED) {
		madvise(c, len, thp ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);
		memcpy(c, p, len);
	}
	r->snap = now() - t0;
	if (c == MAP_FAILED) {
		snprintf(r->note, sizeof(r->note), "no memory for the copy");
		munmap(p, len);
		return;
	}
	r->first_write = write_each_page(p, len);
	r->ok = true;
	munmap(c, len);
	munmap(p, len);
}

static void run_memfd(size_t len, bool thp, struct result *r)
{
	int fd = memfd_create("dup_bench", MFD_CLOEXEC);
	char *shared, *snap;
	double t0;

	(void)thp;	/* tmpfs huge pages are a mount option: 4 KiB here */
	if (fd < 0 || ftruncate(fd, len)) {
		snprintf(r->note, sizeof(r->note), "memfd: %s", strerror(errno));
		return;
	}
	shared = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (shared == MAP_FAILED) {
		close(fd);
		return;
	}
	for (size_t off = 0; off < len; off += PS)
		shared[off] = (char)(off >> 12);
	t0 = now();
	snap = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	r->snap = now() - t0;
	if (snap != MAP_FAILED) {
		r->first_write = write_each_page(snap, len);
		r->ok = true;
		munmap(snap, len);
	}
	munmap(shared, len);
	close(fd);
}

static const struct method {
	const char *name;
	void (*run)(size_t len, bool thp, struct result *r);
} methods[] = {
	{ "dup", run_dup },
	{ "fork", run_fork },
	{ "memcpy", run_memcpy },
	{ "memfd", run_memfd },
};

#define NMETHODS	(sizeof(methods) / sizeof(methods[0]))

/*
 * Touch, once, as much memory as the largest size needs (the range, its
 * copies, slack): in a VM the first touch of guest memory costs the host
 * a page fault, which would be charged to whichever method runs first.
 */
static void warm_up(const struct opts *o)
{
	size_t max = 0, len;
	char *p;

	for (int i = 0; i < o->nsizes; i++)
		if (o->sizes_mib[i] > max)
			max = o->sizes_mib[i];
	len = (max << 20) * 9 / 4;
	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return;
	for (size_t off = 0; off < len; off += PS)
		p[off] = 1;
	munmap(p, len);
}

static int parse(int argc, char **argv, struct opts *o)
{
	memset(o, 0, sizeof(*o));
	o->repeat = 3;
	o->kind_4k = o->kind_thp = true;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--sizes") && i + 1 < argc) {
			char *s = argv[++i], *tok;

			o->nsizes = 0;
			for (tok = strtok(s, ","); tok && o->nsizes < 16; tok = strtok(NULL, ","))
				o->sizes_mib[o->nsizes++] = strtoul(tok, NULL, 10);
		} else if (!strcmp(argv[i], "--repeat") && i + 1 < argc) {
			o->repeat = atoi(argv[++i]);
		} else if (!strcmp(argv[i], "--kinds") && i + 1 < argc) {
			o->kind_4k = strstr(argv[i + 1], "4k") != NULL;
			o->kind_thp = strstr(argv[i + 1], "thp") != NULL;
			i++;
		} else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			printf("Usage: vmsplice-move bench --dup [--sizes MIB,...] [--repeat N] [--kinds 4k,thp]\n\n"
			       "Duplicate a range of private anonymous memory (4 KiB pages or THP) by\n"
			       "mremap(MREMAP_DUP), by fork() of a process holding it, by mmap+memcpy\n"
			       "and by memfd + MAP_PRIVATE; time the call and the first write to each\n"
			       "page afterwards.  Sizes in MiB, a multiple of 2 (default 64,256,1024);\n"
			       "median of --repeat runs (default 3).  Refuses (exit 5) on a coarse clock.\n");
			return 1;
		} else {
			fprintf(stderr, "usage: vmsplice-move bench --dup [--sizes MIB,...] [--repeat N] [--kinds 4k,thp]\n");
			return -1;
		}
	}
	if (!o->nsizes) {
		o->sizes_mib[0] = 64;
		o->sizes_mib[1] = 256;
		o->sizes_mib[2] = 1024;
		o->nsizes = 3;
	}
	if (o->repeat < 1 || o->repeat > MAX_REPEAT) {
		fprintf(stderr, "--repeat: 1..%d\n", MAX_REPEAT);
		return -1;
	}
	for (int i = 0; i < o->nsizes; i++) {
		if (!o->sizes_mib[i] || o->sizes_mib[i] % 2) {
			fprintf(stderr, "sizes: whole MiB, a multiple of 2\n");
			return -1;
		}
	}
	return 0;
}

/*
 * vmsplice-move bench --dup (argv[0] is "--dup"); also the standalone
 * build/tools/dup-bench.  Exit 0, 2 on usage errors, 5 on a coarse clock.
 */
int vsm_cmd_dup_bench(int argc, char **argv)
{
	struct opts o;
	char why[128], info[160];
	int ret = parse(argc, argv, &o);

	if (ret)
		return ret > 0 ? 0 : 2;
	if (check_clock(why, sizeof(why), info, sizeof(info))) {
		fprintf(stderr, "dup_bench: refusing to time with this clock: %s (%s)\n",
			why, info);
		return 5;
	}
	printf("clock: %s\n", info);
	if (!vsm_snapshot_cow_supported())
		printf("note: kernel without MREMAP_DUP: the dup rows fail\n");
	warm_up(&o);
	printf("%-9s %-5s %-7s %12s %12s %14s %12s\n", "size", "pages", "method",
	       "snapshot ms", "vs memcpy", "1st write ms", "us/page");
	for (int k = 0; k < 2; k++) {
		bool thp = k == 1;

		if ((thp && !o.kind_thp) || (!thp && !o.kind_4k))
			continue;
		for (int s = 0; s < o.nsizes; s++) {
			size_t len = o.sizes_mib[s] << 20;
			double sv[NMETHODS][MAX_REPEAT], wv[NMETHODS][MAX_REPEAT];
			double snap[NMETHODS], wr[NMETHODS];
			struct result r[NMETHODS];
			bool ok[NMETHODS];

			/*
			 * Each method once untimed, then --repeat timed runs in
			 * a row: the work one method leaves behind (freed page
			 * tables, an exiting child) lands on itself, not on the
			 * next method.
			 */
			memset(ok, 1, sizeof(ok));
			for (size_t m = 0; m < NMETHODS; m++) {
				for (int i = -1; i < o.repeat && ok[m]; i++) {
					memset(&r[m], 0, sizeof(r[m]));
					methods[m].run(len, thp, &r[m]);
					ok[m] = r[m].ok;
					if (i < 0)
						continue;
					sv[m][i] = r[m].snap;
					wv[m][i] = r[m].first_write;
				}
			}
			for (size_t m = 0; m < NMETHODS; m++) {
				if (!ok[m]) {
					printf("%-9zu %-5s %-7s %s\n", o.sizes_mib[s],
					       thp ? "thp" : "4k", methods[m].name, r[m].note);
					continue;
				}
				snap[m] = median(sv[m], o.repeat);
				wr[m] = median(wv[m], o.repeat);
			}
			for (size_t m = 0; m < NMETHODS; m++) {
				char ratio[16] = "-";

				if (!ok[m])
					continue;
				if (ok[2] && snap[m] > 0)
					snprintf(ratio, sizeof(ratio), "%.1fx", snap[2] / snap[m]);
				printf("%-9zu %-5s %-7s %12.3f %12s %14.1f %12.3f\n",
				       o.sizes_mib[s], thp ? "thp" : "4k", methods[m].name,
				       snap[m] * 1e3, ratio, wr[m] * 1e3,
				       wr[m] * 1e6 / (len / PS));
			}
		}
	}
	printf("size in MiB; snapshot = the call (dup, fork, mmap) or mmap+memcpy; "
	       "vs memcpy = memcpy time / this time; 1st write = one byte into every "
	       "4 KiB page of the original afterwards (memfd: of the snapshot); "
	       "median of %d\n", o.repeat);
	return 0;
}

#ifdef VSM_DUP_BENCH_STANDALONE
int main(int argc, char **argv)
{
	return vsm_cmd_dup_bench(argc, argv);
}
#endif
