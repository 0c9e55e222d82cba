// SPDX-License-Identifier: GPL-2.0
/*
 * vmsplice-bench: hand a region of 4 KiB pages from one process to another
 * in five ways, in one boot, and print a table (and CSV with --csv):
 *
 *   move      giver vmsplice(GIFT|MOVE), taker vmsplice(MOVE)
 *   vmsplice  giver vmsplice(GIFT), taker vmsplice() (copies)
 *   read      giver vmsplice(GIFT), taker read() (copies)
 *   pvreadv   taker process_vm_readv() from the giver (copies, no pipe)
 *   uffd      UFFDIO_MOVE within one process (moves, the in-tree anchor)
 *
 * The taker's destination is fresh anonymous memory each time, as for a
 * process that receives memory it did not have: copies pay the page faults,
 * moves do not.  Times are the taker's, from "go" to the last byte; the
 * giver runs on the other CPU.  Every run checks the data.
 *
 *   vmsplice-bench [--csv] [--sizes 1,4,16,64,256] [--reps N]
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../lib/prog_util.h"

#define PAGE	4096UL

enum method { M_MOVE, M_VMSPLICE, M_READ, M_PVREADV, M_UFFD, NR_METHODS };

static const char *const method_name[NR_METHODS] = {
	"move", "vmsplice", "read", "pvreadv", "uffd",
};

struct result {
	double secs;		/* best of the repetitions */
	long long moved;	/* pages the kernel moved (vmsplice counters) */
	bool ok;		/* data intact every time */
	bool skipped;
	char why[96];
};

/* One word per page is enough to catch a wrong or missing page. */
static void fill(char *p, size_t len, uint64_t seed)
{
	for (size_t off = 0; off < len; off += PAGE) {
		memset(p + off, (int)(seed + off / PAGE), PAGE);
		*(uint64_t *)(p + off) = seed ^ off;
	}
}

static bool check(const char *p, size_t len, uint64_t seed)
{
	for (size_t off = 0; off < len; off += PAGE)
		if (*(const uint64_t *)(p + off) != (seed ^ off) ||
		    (unsigned char)p[off + PAGE - 1] != (unsigned char)(seed + off / PAGE))
			return false;
	return true;
}

static int full_io(int fd, void *buf, size_t len, bool wr)
{
	char *p = buf;

	while (len) {
		ssize_t n = wr ? write(fd, p, len) : read(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= n;
	}
	return 0;
}

/* Two processes: the child gives, the parent takes; returns seconds or -1. */
static double two_process(enum method m, size_t len, uint64_t seed)
{
	int p[2], ctl[2], go[2];
	char *src, *dst, c;
	double t = -1;
	pid_t pid;
	ssize_t got = -1;

	if (pipe(p) || pipe(ctl) || pipe(go))
		return -1;
	fcntl(p[1], F_SETPIPE_SZ, 1 << 20);
	src = region(len);	/* mapped before fork: same address in both */
	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		ssize_t n = 0;

		close(p[0]);
		fill(src, len, seed);
		if (write(ctl[1], "r", 1) != 1 || read(go[0], &c, 1) != 1)
			_exit(1);
		if (m == M_MOVE)
			n = vsm_give(p[1], src, len, NULL);
		else if (m != M_PVREADV) {
			size_t done = 0;
			struct iovec iov;

			while (done < len) {
				iov.iov_base = src + done;
				iov.iov_len = len - done;
				n = vmsplice(p[1], &iov, 1, SPLICE_F_GIFT);
				if (n <= 0)
					break;
				done += n;
			}
			n = done;
		}
		close(p[1]);
		if (m != M_PVREADV && n != (ssize_t)len)
			_exit(1);
		/* Keep the memory alive until the taker is done with it. */
		if (read(go[0], &c, 1) < 0)
			_exit(1);
		_exit(0);
	}
	close(p[1]);
	munmap(src, len);
	dst = region(len);
	if (read(ctl[0], &c, 1) != 1)
		goto out;

	t = now();
	if (write(go[1], "g", 1) != 1)
		goto out;
	switch (m) {
	case M_MOVE:
		got = vsm_take(p[0], dst, len, NULL);
		break;
	case M_VMSPLICE:
		got = vsm_take_copy(p[0], dst, len, NULL);
		break;
	case M_READ:
		got = full_io(p[0], dst, len, false) ? -1 : (ssize_t)len;
		break;
	case M_PVREADV: {
		struct iovec liov = { dst, len }, riov = { src, len };

		got = process_vm_readv(pid, &liov, 1, &riov, 1, 0);
		break;
	}
	default:
		break;
	}
	t = now() - t;
	if (got != (ssize_t)len || !check(dst, len, seed))
		t = -1;
out:
	if (write(go[1], "g", 1) != 1)
		t = -1;
	waitpid(pid, NULL, 0);
	munmap(dst, len);
	close(p[0]);
	close(ctl[0]);
	close(ctl[1]);
	close(go[0]);
	close(go[1]);
	return t;
}

/* UFFDIO_MOVE of the whole region within this process. */
static double uffd_move(size_t len, uint64_t seed, char *why)
{
	struct uffdio_api api = { .api = UFFD_API };
	struct uffdio_register reg = { 0 };
	struct uffdio_move mv = { 0 };
	char *src = region(len), *dst = region(len);
	double t = -1;
	int uffd;

	fill(src, len, seed);
	uffd = syscall(__NR_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (uffd < 0 || ioctl(uffd, UFFDIO_API, &api)) {
		snprintf(why, 96, "userfaultfd: %s", strerror(errno));
		goto out;
	}
	reg.range.start = (uintptr_t)dst;
	reg.range.len = len;
	reg.mode = UFFDIO_REGISTER_MODE_MISSING;
	if (ioctl(uffd, UFFDIO_REGISTER, &reg)) {
		snprintf(why, 96, "UFFDIO_REGISTER: %s", strerror(errno));
		goto out;
	}
	mv.dst = (uintptr_t)dst;
	mv.src = (uintptr_t)src;
	mv.len = len;
	t = now();
	if (ioctl(uffd, UFFDIO_MOVE, &mv) || mv.move != (int64_t)len) {
		snprintf(why, 96, "UFFDIO_MOVE: %s", strerror(errno));
		t = -1;
		goto out;
	}
	t = now() - t;
	if (!check(dst, len, seed))
		t = -1;
out:
	if (uffd >= 0)
		close(uffd);
	munmap(src, len);
	munmap(dst, len);
	return t;
}

static void run(enum method m, size_t len, int reps, struct result *r)
{
	struct vsm_stats b, a, d;

	memset(r, 0, sizeof(*r));
	r->ok = true;
	r->secs = 1e9;
	vsm_stats_read(&b);
	for (int i = 0; i < reps; i++) {
		double t = m == M_UFFD ? uffd_move(len, 0x1234 + i, r->why) :
					 two_process(m, len, 0x1234 + i);

		if (t < 0) {
			r->ok = false;
			if (m == M_UFFD && r->why[0])
				r->skipped = true;
			return;
		}
		if (t < r->secs)
			r->secs = t;
	}
	vsm_stats_read(&a);
	vsm_stats_delta(&b, &a, &d);
	r->moved = d.moved / reps;
}

int main(int argc, char **argv)
{
	size_t sizes[16] = { 1, 4, 16, 64, 256 };
	int nsizes = 5, reps = 3;
	bool csv = false, all_ok = true;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--csv")) {
			csv = true;
		} else if (!strcmp(argv[i], "--reps") && i + 1 < argc) {
			reps = atoi(argv[++i]);
		} else if (!strcmp(argv[i], "--sizes") && i + 1 < argc) {
			char *s = argv[++i];

			for (nsizes = 0; s && *s && nsizes < 16; nsizes++) {
				sizes[nsizes] = strtoul(s, &s, 10);
				if (*s == ',')
					s++;
			}
		} else {
			fprintf(stderr, "usage: %s [--csv] [--sizes 1,4,...] [--reps N]\n",
				argv[0]);
			return 2;
		}
	}
	if (reps < 1)
		reps = 1;

	printf("vmsplice-bench: 4 KiB pages, fresh destination, best of %d\n", reps);
	printf("%8s %-9s %10s %10s %9s %9s %9s %12s\n", "MiB", "method", "ms",
	       "MiB/s", "us/page", "x move", "x uffd", "moved pages");
	for (int s = 0; s < nsizes; s++) {
		size_t len = sizes[s] << 20, pages = len / PAGE;
		struct result r[NR_METHODS];

		for (int m = 0; m < NR_METHODS; m++)
			run(m, len, reps, &r[m]);
		for (int m = 0; m < NR_METHODS; m++) {
			if (r[m].skipped) {
				printf("%8zu %-9s skipped: %s\n", sizes[s], method_name[m], r[m].why);
				continue;
			}
			if (!r[m].ok) {
				printf("%8zu %-9s FAILED (data or syscall)\n", sizes[s], method_name[m]);
				all_ok = false;
				continue;
			}
			printf("%8zu %-9s %10.2f %10.0f %9.3f %9.2f %9.2f %12lld\n",
			       sizes[s], method_name[m], r[m].secs * 1e3,
			       sizes[s] / r[m].secs, r[m].secs * 1e6 / pages,
			       r[m].secs / r[M_MOVE].secs,
			       r[M_UFFD].ok ? r[m].secs / r[M_UFFD].secs : 0.0,
			       m == M_MOVE ? r[m].moved : 0);
		}
		if (csv)
			for (int m = 0; m < NR_METHODS; m++)
				if (r[m].ok)
					fprintf(stderr, "csv,%zu,%s,%.4f,%.1f,%.4f\n", sizes[s],
						method_name[m], r[m].secs * 1e3,
						sizes[s] / r[m].secs,
						r[m].secs * 1e6 / pages);
	}
	if (csv)
		fprintf(stderr, "csv columns: size_mib,method,ms,mib_per_s,us_per_page\n");
	return all_ok ? 0 : 1;
}
