/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Helpers for the tests of tools/vmsplice-move (tests/tool_*.c): running
 * the command with a bound on time, counting descriptors, the pattern.
 * Static functions: each test program is one file.
 */
#ifndef VMSPLICE_TESTS_TOOL_UTIL_H
#define VMSPLICE_TESTS_TOOL_UTIL_H

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "vmsplice_move.h"

/* What a finished (or killed) command left behind. */
struct cmd_run {
	int status;		/* exit status, or 128 + signal */
	bool timed_out;		/* killed after the bound */
	char out[65536];	/* stdout (truncated) */
	char err[65536];	/* stderr (truncated) */
};

static inline void slurp(int fd, char *buf, size_t len)
{
	ssize_t n;
	size_t got = 0;

	lseek(fd, 0, SEEK_SET);
	while (got + 1 < len && (n = read(fd, buf + got, len - 1 - got)) > 0)
		got += n;
	buf[got] = '\0';
}

/*
 * Wait up to @ms for @pid, then SIGKILL it.  A pidfd in poll(): no sleeps.
 * Returns the wait status; *@timed_out when it had to be killed.
 */
static inline int wait_bounded(pid_t pid, int ms, bool *timed_out)
{
	int pfd = syscall(SYS_pidfd_open, pid, 0), st = 0;
	struct pollfd p = { .fd = pfd, .events = POLLIN };

	*timed_out = false;
	if (pfd >= 0) {
		int r;

		do
			r = poll(&p, 1, ms);
		while (r < 0 && errno == EINTR);
		if (r == 0) {
			*timed_out = true;
			kill(pid, SIGKILL);
		}
		close(pfd);
	}
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	return st;
}

static inline int decode_status(int st)
{
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/*
 * Start @argv (NULL-terminated) with stdout/stderr into temporary files;
 * @keep_fd (>= 0) becomes descriptor 3 in the child; @env_kv "K=V" or NULL.
 */
static inline pid_t cmd_start(char *const argv[], int keep_fd, const char *env_kv,
			      int *out_fd, int *err_fd)
{
	char o[] = "/tmp/vsm-test-out.XXXXXX", e[] = "/tmp/vsm-test-err.XXXXXX";
	pid_t pid;

	*out_fd = mkstemp(o);
	*err_fd = mkstemp(e);
	unlink(o);
	unlink(e);
	fflush(NULL);
	pid = fork();
	if (pid == 0) {
		int null = open("/dev/null", O_RDONLY);

		dup2(null, 0);
		dup2(*out_fd, 1);
		dup2(*err_fd, 2);
		if (keep_fd >= 0 && keep_fd != 3) {
			dup2(keep_fd, 3);
			close(keep_fd);
		}
		if (keep_fd >= 0)
			fcntl(3, F_SETFD, 0);
		if (env_kv)
			putenv((char *)env_kv);
		/* Sanitizers: fail loudly with distinct codes, check leaks. */
		setenv("ASAN_OPTIONS", "exitcode=97:detect_leaks=1:abort_on_error=0", 1);
		setenv("UBSAN_OPTIONS", "halt_on_error=1:exitcode=98:print_stacktrace=1", 1);
		execv(argv[0], argv);
		_exit(127);
	}
	return pid;
}

static inline void cmd_finish(struct cmd_run *r, pid_t pid, int ms, int out_fd, int err_fd)
{
	r->status = decode_status(wait_bounded(pid, ms, &r->timed_out));
	slurp(out_fd, r->out, sizeof(r->out));
	slurp(err_fd, r->err, sizeof(r->err));
	close(out_fd);
	close(err_fd);
}

/* Run to completion (bounded by @ms). */
static inline void cmd_run(struct cmd_run *r, char *const argv[], int keep_fd,
			   const char *env_kv, int ms)
{
	int o, e;
	pid_t pid = cmd_start(argv, keep_fd, env_kv, &o, &e);

	cmd_finish(r, pid, ms, o, e);
}

/* A sanitizer complained in @err. */
static inline bool sanitizer_report(const char *err)
{
	return strstr(err, "AddressSanitizer") || strstr(err, "LeakSanitizer") ||
	       strstr(err, "runtime error:") || strstr(err, "UndefinedBehaviorSanitizer");
}

/* Open descriptors of this process. */
static inline int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	if (!d)
		return -1;
	while ((e = readdir(d)))
		n += e->d_name[0] != '.';
	closedir(d);
	return n - 1;	/* the directory's own */
}

/* Does the running kernel move pages (the writer flag is accepted)? */
static inline bool kernel_moves(void)
{
	int p[2];
	bool yes;

	if (pipe(p))
		return false;
	yes = vsm_unmap_supported(p[1]) == 1;
	close(p[0]);
	close(p[1]);
	return yes;
}

/* The kernel has the move counters. */
static inline bool kernel_counters(void)
{
	struct vsm_stats s;

	return !vsm_stats_read(&s) && s.supported;
}

/* Deterministic bytes for a region: @seed and the offset in the stream. */
static inline void fill_pattern(void *buf, size_t len, uint64_t off, uint64_t seed)
{
	unsigned char *p = buf;

	for (size_t i = 0; i < len; i++) {
		uint64_t x = (off + i) / 8 * 0x9e3779b97f4a7c15ULL + seed;

		p[i] = (unsigned char)((x ^ (x >> 29)) >> ((off + i) % 8 * 8));
	}
}

static inline long long diff_pattern(const void *buf, size_t len, uint64_t off, uint64_t seed)
{
	unsigned char tmp[4096];

	for (size_t i = 0; i < len; i += sizeof(tmp)) {
		size_t n = len - i < sizeof(tmp) ? len - i : sizeof(tmp);

		fill_pattern(tmp, n, off + i, seed);
		if (memcmp(tmp, (const char *)buf + i, n)) {
			for (size_t j = 0; j < n; j++)
				if (tmp[j] != ((const unsigned char *)buf)[i + j])
					return i + j;
		}
	}
	return -1;
}

#endif
