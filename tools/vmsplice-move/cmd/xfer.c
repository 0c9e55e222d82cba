// SPDX-License-Identifier: GPL-2.0
/*
 * vmsplice-move send / recv: hand a pattern or a file's contents from one
 * process to another through a UNIX socket, verified on arrival.
 */
#define _GNU_SOURCE
#include "cmd.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_SEED		0x76d5e3c1a2b4f607ULL
#define DEFAULT_TIMEOUT_MS	30000

struct xfer_args {
	const char *sub;
	const char *path;	/* socket path */
	int fd;			/* or an inherited connected socket */
	int timeout_ms;
	bool json, quiet, copy, huge, checksum;
	uint64_t size, max_size;
	unsigned long long regions;
	unsigned long long pipes;	/* send: 1 or 2 */
	uint64_t seed;
	const char *file;	/* send: input; recv: output */
};

/* Exit status for a failed hand-off (see vmsplice-move(1)). */
static int exit_for(enum vsm_error e)
{
	switch (e) {
	case VSM_OK:
		return EXIT_OK;
	case VSM_ESYS:
		return EXIT_FAIL;
	case VSM_EVERIFY:
		return EXIT_VERIFY;
	default:
		return EXIT_HANDOFF;
	}
}

static const char *hint_for(enum vsm_error e)
{
	switch (e) {
	case VSM_ETIMEDOUT:
		return " (is the other side running? raise --timeout)";
	case VSM_EREJECT:
		return " (see the receiver's limits: --max-size)";
	case VSM_EPROTO:
		return " (is the other side vmsplice-move of the same protocol version?)";
	default:
		return "";
	}
}

static int sock_addr(const char *sub, const char *path, struct sockaddr_un *a)
{
	memset(a, 0, sizeof(*a));
	a->sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(a->sun_path)) {
		errorf(sub, "socket path too long (%zu bytes, at most %zu): %s",
		       strlen(path), sizeof(a->sun_path) - 1, path);
		return -1;
	}
	strcpy(a->sun_path, path);
	return 0;
}

/* Connect, retrying while the receiver has not started listening yet. */
static int connect_to(const struct xfer_args *x)
{
	struct sockaddr_un a;
	double end = now_s() + x->timeout_ms / 1e3;
	int s;

	if (sock_addr(x->sub, x->path, &a))
		return -1;
	for (;;) {
		s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (s < 0) {
			errorf(x->sub, "socket: %m");
			return -1;
		}
		if (!connect(s, (struct sockaddr *)&a, sizeof(a)))
			return s;
		close(s);
		if ((errno != ENOENT && errno != ECONNREFUSED) || now_s() > end) {
			errorf(x->sub, "cannot connect to %s: %m%s", x->path,
			       errno == ENOENT || errno == ECONNREFUSED ?
			       " (start 'vmsplice-move recv' there first)" : "");
			return -1;
		}
		/* Poll for the listener with a bound; 10 ms steps. */
		poll(NULL, 0, 10);
	}
}

/* Listen on the path, accept one sender, remove the path. */
static int accept_one(const struct xfer_args *x)
{
	struct sockaddr_un a;
	struct stat st;
	int l, s = -1, r;

	if (sock_addr(x->sub, x->path, &a))
		return -1;
	if (!lstat(x->path, &st)) {
		if (!S_ISSOCK(st.st_mode)) {
			errorf(x->sub, "%s exists and is not a socket: not replacing it", x->path);
			return -1;
		}
		unlink(x->path);	/* a stale socket of an earlier run */
	}
	l = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof(a)) || listen(l, 1)) {
		errorf(x->sub, "cannot listen on %s: %m", x->path);
		if (l >= 0)
			close(l);
		return -1;
	}
	struct pollfd p = { .fd = l, .events = POLLIN };

	do
		r = poll(&p, 1, x->timeout_ms);
	while (r < 0 && errno == EINTR);
	if (r > 0)
		s = accept4(l, NULL, NULL, SOCK_CLOEXEC);
	if (r == 0)
		errorf(x->sub, "no sender connected to %s within %d ms (raise --timeout)",
		       x->path, x->timeout_ms);
	else if (s < 0)
		errorf(x->sub, "accept: %m");
	close(l);
	unlink(x->path);
	return s;
}

static json_object *report_json(const char *role, const struct vsm_report *r, int rc)
{
	json_object *o = json_object_new_object(), *pages = json_object_new_object();

	json_object_object_add(o, "role", json_object_new_string(role));
	json_object_object_add(o, "ok", json_object_new_boolean(r->error == VSM_OK && rc == 0));
	json_object_object_add(o, "exit_code", json_object_new_int(rc));
	json_object_object_add(o, "error", json_object_new_string(vsm_error_name(r->error)));
	json_object_object_add(o, "reason", json_object_new_string(r->reason));
	json_object_object_add(o, "local_abort", json_object_new_boolean(r->local_abort));
	json_object_object_add(o, "path", json_object_new_string(
		r->path == VSM_PATH_MOVE ? "move" : "copy"));
	json_object_object_add(o, "path_why", json_object_new_string(r->path_why));
	json_object_object_add(o, "regions", json_object_new_int64(r->nr_regions));
	json_object_object_add(o, "total_bytes", json_object_new_int64(r->total_bytes));
	json_object_object_add(o, "bytes", json_object_new_int64(r->bytes));
	if (!strcmp(role, "send"))
		json_object_object_add(o, "acked_bytes", json_object_new_int64(r->acked));
	json_object_object_add(o, "pipe_size", json_object_new_int64(r->pipe_size));
	json_object_object_add(o, "pipes", json_object_new_int64(r->nr_pipes));
	json_object_object_add(o, "seconds", json_object_new_double(r->seconds));
	json_object_object_add(o, "mib_per_s", json_object_new_double(
		r->seconds > 0 ? r->bytes / r->seconds / (1 << 20) : 0));
	if (!strcmp(role, "recv")) {
		json_object_object_add(o, "verified", json_object_new_boolean(r->verified));
		json_object_object_add(pages, "total", json_object_new_int64(r->pages));
		json_object_object_add(pages, "moved", json_object_new_int64(r->pages_moved));
		json_object_object_add(pages, "zero", json_object_new_int64(r->pages_zero));
		json_object_object_add(pages, "copied", json_object_new_int64(r->pages_copied));
		json_object_object_add(o, "pages", pages);
	} else {
		json_object_put(pages);
	}
	json_object_object_add(o, "counters", json_stats(&r->stats));
	json_object_object_add(o, "counters_exclusive",
			       json_object_new_boolean(r->counters_exclusive));
	return o;
}

static void summary(const char *role, const struct vsm_report *r)
{
	char a[32], b[32], c[32], d[32];

	printf("%s %s of %s in %u region%s, %.3f s (%s/s), %s%s\n",
	       !strcmp(role, "send") ? "sent" : "received",
	       fmt_bytes(a, sizeof(a), r->bytes), fmt_bytes(b, sizeof(b), r->total_bytes),
	       r->nr_regions, r->nr_regions == 1 ? "" : "s", r->seconds,
	       fmt_bytes(c, sizeof(c), r->seconds > 0 ? r->bytes / r->seconds : 0),
	       r->nr_pipes == 2 ? "2 pipes of " : "pipe ",
	       fmt_bytes(d, sizeof(d), r->pipe_size));
	if (r->path == VSM_PATH_MOVE)
		printf("path: move (SPLICE_F_GIFT|SPLICE_F_UNMAP -> SPLICE_F_MOVE)\n");
	else
		printf("path: copy (%s)\n", r->path_why);
	if (!strcmp(role, "send")) {
		printf("left this process: %llu bytes%s; the receiver confirmed %llu\n",
		       (unsigned long long)r->bytes,
		       r->path == VSM_PATH_MOVE ? " (their pages read zeros here now)" :
		       " (copied: still here too)", (unsigned long long)r->acked);
		if (r->stats.supported)
			printf("unmapped: %lld pages (system-wide counter%s)\n", r->stats.unmapped,
			       r->counters_exclusive ? "" : ", other processes too");
		return;
	}
	printf("pages: %llu moved, %llu zero-filled, %llu copied (of %llu)%s\n",
	       (unsigned long long)r->pages_moved, (unsigned long long)r->pages_zero,
	       (unsigned long long)r->pages_copied, (unsigned long long)r->pages,
	       !r->stats.supported ? " - no move counters: this kernel copies every page" :
	       r->counters_exclusive ? "" : " - counters include other processes' moves");
	if (r->stats.thp > 0 || r->stats.large > 0)
		printf("whole folios moved: %lld THPs (one PMD each), %lld large folios by PTEs\n",
		       r->stats.thp, r->stats.large);
	if (r->stats.nr_reasons) {
		printf("copy reasons:");
		for (int i = 0; i < r->stats.nr_reasons; i++)
			printf(" %s=%lld", r->stats.reason[i].name, r->stats.reason[i].pages);
		printf("\n");
	}
}

static const char *const send_help =
	"Usage: %s send [OPTIONS] SOCKET\n\n"
	"Connect to the receiver listening on the UNIX socket SOCKET and hand it a\n"
	"region of memory: a generated pattern, or a file's contents loaded into\n"
	"anonymous memory.  Pages move where the kernel supports it and are\n"
	"copied otherwise; the summary says which.\n\n"
	"  -s, --size SIZE      pattern size (K, M, G suffixes; default 64M)\n"
	"  -f, --file FILE      send FILE's contents instead of a pattern\n"
	"  -n, --regions N      split into N regions (default 1)\n"
	"  -H, --huge           THP-backed regions (2 MiB aligned, MADV_HUGEPAGE)\n"
	"      --seed N         pattern seed (must match the receiver's)\n"
	"      --copy           copy even where pages could move\n"
	"      --pipes N        1 or 2 pipes taking turns (default 2: one fills\n"
	"                       while the receiver empties the other)\n"
	"      --no-checksum    do not send checksums\n"
	"  -t, --timeout SECS   bound on every wait, connecting included (default 30)\n"
	"      --fd N           use the connected socket on descriptor N, no SOCKET\n"
	"  -j, --json           summary as JSON on stdout\n"
	"  -q, --quiet          no progress bar\n"
	"  -h, --help           this help\n\n"
	"Exit status: 0 ok, 1 failure, 2 usage, 3 hand-off failed, 4 data wrong.\n";

static const char *const recv_help =
	"Usage: %s recv [OPTIONS] SOCKET\n\n"
	"Listen on the UNIX socket SOCKET, take one hand-off from a sender, verify\n"
	"it (checksums; the pattern, unless --output), and report moved vs copied.\n\n"
	"  -o, --output FILE    write what arrives to FILE (no pattern check)\n"
	"      --seed N         pattern seed to check against\n"
	"  -m, --max-size SIZE  refuse hand-offs larger than SIZE\n"
	"      --copy           take by copying, never by moving\n"
	"  -t, --timeout SECS   bound on every wait, accepting included (default 30)\n"
	"      --fd N           use the connected socket on descriptor N, no SOCKET\n"
	"  -j, --json           summary as JSON on stdout\n"
	"  -q, --quiet          no progress bar\n"
	"  -h, --help           this help\n\n"
	"Exit status: 0 ok, 1 failure, 2 usage, 3 hand-off failed, 4 data wrong.\n";

enum { O_SEED = 256, O_COPY, O_NOSUM, O_FD, O_PIPES };

static int parse(int argc, char **argv, struct xfer_args *x, bool sending)
{
	static const struct option opts[] = {
		{ "size", required_argument, NULL, 's' },
		{ "file", required_argument, NULL, 'f' },
		{ "output", required_argument, NULL, 'o' },
		{ "regions", required_argument, NULL, 'n' },
		{ "huge", no_argument, NULL, 'H' },
		{ "max-size", required_argument, NULL, 'm' },
		{ "seed", required_argument, NULL, O_SEED },
		{ "copy", no_argument, NULL, O_COPY },
		{ "no-checksum", no_argument, NULL, O_NOSUM },
		{ "pipes", required_argument, NULL, O_PIPES },
		{ "timeout", required_argument, NULL, 't' },
		{ "fd", required_argument, NULL, O_FD },
		{ "json", no_argument, NULL, 'j' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	unsigned long long v;
	int c;

	*x = (struct xfer_args){
		.sub = sending ? "send" : "recv", .fd = -1, .timeout_ms = DEFAULT_TIMEOUT_MS,
		.checksum = true, .size = 64 << 20, .regions = 1, .seed = DEFAULT_SEED,
		.pipes = 2,
	};
	while ((c = getopt_long(argc, argv, sending ? "s:f:n:Ht:jqh" : "o:m:t:jqh",
				opts, NULL)) != -1) {
		switch (c) {
		case 's':
			if (parse_size(optarg, &x->size) || !x->size)
				return usage_error(x->sub, "--size: '%s' is not a size > 0", optarg);
			break;
		case 'f':
		case 'o':
			if ((c == 'f') != sending)
				return usage_error(x->sub, "unknown option -%c", c);
			x->file = optarg;
			break;
		case 'n':
			if (parse_uint(optarg, VSM_MAX_REGIONS, &x->regions) || !x->regions)
				return usage_error(x->sub, "--regions: 1 to %d", VSM_MAX_REGIONS);
			break;
		case 'H':
			x->huge = true;
			break;
		case 'm':
			if (parse_size(optarg, &x->max_size))
				return usage_error(x->sub, "--max-size: '%s' is not a size", optarg);
			break;
		case O_SEED:
			if (parse_uint(optarg, ~0ULL, &v))
				return usage_error(x->sub, "--seed: '%s' is not a number", optarg);
			x->seed = v;
			break;
		case O_COPY:
			x->copy = true;
			break;
		case O_PIPES:
			if (!sending)
				return usage_error(x->sub, "unknown option --pipes");
			if (parse_uint(optarg, 2, &x->pipes) || !x->pipes)
				return usage_error(x->sub, "--pipes: 1 or 2");
			break;
		case O_NOSUM:
			if (!sending)
				return usage_error(x->sub, "unknown option --no-checksum");
			x->checksum = false;
			break;
		case 't':
			if (parse_seconds(optarg, &x->timeout_ms) || !x->timeout_ms)
				return usage_error(x->sub, "--timeout: '%s' is not seconds > 0", optarg);
			break;
		case O_FD:
			if (parse_uint(optarg, 1 << 20, &v))
				return usage_error(x->sub, "--fd: '%s' is not a descriptor", optarg);
			x->fd = v;
			break;
		case 'j':
			x->json = true;
			break;
		case 'q':
			x->quiet = true;
			break;
		case 'h':
			printf(sending ? send_help : recv_help, VSM_CMD_NAME);
			return -1;
		default:
			return usage_error(x->sub, "bad option");
		}
	}
	if (x->fd < 0 && optind != argc - 1)
		return usage_error(x->sub, optind < argc ? "one SOCKET path, please" :
				   "missing SOCKET path");
	if (x->fd >= 0 && optind != argc)
		return usage_error(x->sub, "--fd and a SOCKET path exclude each other");
	if (x->fd < 0)
		x->path = argv[optind];
	return 0;
}

/* Split @total into @n lengths, page multiples where possible. */
static int split(uint64_t total, unsigned long long n, size_t *lens)
{
	size_t page = sysconf(_SC_PAGESIZE);
	uint64_t each = total / n, left = total;

	if (each >= page)
		each -= each % page;
	for (unsigned long long i = 0; i < n; i++) {
		lens[i] = i == n - 1 ? left : each;
		if (!lens[i])
			return -1;
		left -= lens[i];
	}
	return 0;
}

static int read_full(int fd, char *p, size_t len)
{
	while (len) {
		ssize_t n = read(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= n;
	}
	return 0;
}

static int write_full(int fd, const char *p, size_t len)
{
	while (len) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= n;
	}
	return 0;
}

static void free_regions(struct vsm_region *r, unsigned long long n)
{
	for (unsigned long long i = 0; r && i < n; i++)
		vsm_free(r[i].addr, r[i].len);
	free(r);
}

/* The regions to send: a pattern, or the file's contents. */
static struct vsm_region *load(struct xfer_args *x)
{
	struct vsm_region *r = NULL;
	size_t *lens = NULL;
	uint64_t off = 0;
	int fd = -1;

	if (x->file) {
		struct stat st;

		fd = open(x->file, O_RDONLY | O_CLOEXEC);
		if (fd < 0 || fstat(fd, &st)) {
			errorf(x->sub, "cannot read %s: %m", x->file);
			goto fail;
		}
		if (!S_ISREG(st.st_mode) || !st.st_size) {
			errorf(x->sub, "%s: not a regular file with data", x->file);
			goto fail;
		}
		x->size = st.st_size;
	}
	lens = calloc(x->regions, sizeof(*lens));
	r = calloc(x->regions, sizeof(*r));
	if (!lens || !r) {
		errorf(x->sub, "out of memory");
		goto fail;
	}
	if (split(x->size, x->regions, lens)) {
		errorf(x->sub, "%llu regions do not fit in %llu bytes", x->regions,
		       (unsigned long long)x->size);
		goto fail;
	}
	for (unsigned long long i = 0; i < x->regions; i++) {
		r[i].len = lens[i];
		r[i].flags = x->huge ? VSM_REGION_HUGE : 0;
		r[i].addr = vsm_alloc(lens[i], x->huge);
		if (!r[i].addr) {
			errorf(x->sub, "cannot allocate %zu bytes: %m", lens[i]);
			goto fail;
		}
		if (fd >= 0 && read_full(fd, r[i].addr, lens[i])) {
			errorf(x->sub, "reading %s: %s", x->file, errno ? strerror(errno) :
			       "file shrank while reading");
			goto fail;
		}
		if (fd < 0)
			pattern_fill(r[i].addr, lens[i], off, x->seed);
		off += lens[i];
	}
	if (fd >= 0)
		close(fd);
	free(lens);
	return r;
fail:
	if (fd >= 0)
		close(fd);
	free(lens);
	free_regions(r, x->regions);
	return NULL;
}

static int finish(const char *role, const struct xfer_args *x,
		  const struct vsm_report *rep, int rc)
{
	if (x->json)
		json_print(report_json(role, rep, rc));
	else if (rep->error == VSM_OK || rep->bytes)
		summary(role, rep);
	return rc;
}

int cmd_send(int argc, char **argv)
{
	struct xfer_args x;
	struct vsm_send_opts o = { 0 };
	struct vsm_report rep;
	struct vsm_region *regs;
	struct progress pr;
	int s, rc, ret;

	ret = parse(argc, argv, &x, true);
	if (ret)
		return ret < 0 ? EXIT_OK : ret;
	regs = load(&x);
	if (!regs)
		return EXIT_FAIL;
	s = x.fd >= 0 ? x.fd : connect_to(&x);
	if (s < 0) {
		free_regions(regs, x.regions);
		return EXIT_FAIL;
	}
	progress_init(&pr, "sent", x.quiet);
	o = (struct vsm_send_opts){
		.timeout_ms = x.timeout_ms, .checksum = x.checksum, .copy = x.copy,
		.pipes = x.pipes,
		.progress = progress_cb, .progress_arg = &pr,
	};
	ret = vsm_send(s, regs, x.regions, &o, &rep);
	progress_end(&pr);
	close(s);
	rc = ret ? exit_for(rep.error) : EXIT_OK;
	if (ret)
		errorf("send", "%s%s", rep.reason, hint_for(rep.error));
	free_regions(regs, x.regions);
	return finish("send", &x, &rep, rc);
}

int cmd_recv(int argc, char **argv)
{
	struct xfer_args x;
	struct vsm_recv_opts o;
	struct vsm_received got;
	struct vsm_report rep;
	struct progress pr;
	int s, rc = EXIT_OK, ret, out = -1;

	ret = parse(argc, argv, &x, false);
	if (ret)
		return ret < 0 ? EXIT_OK : ret;
	if (x.file) {
		/* Before the hand-off: an unwritable output must not cost the data. */
		out = open(x.file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (out < 0) {
			errorf("recv", "cannot write %s: %m", x.file);
			return EXIT_FAIL;
		}
	}
	s = x.fd >= 0 ? x.fd : accept_one(&x);
	if (s < 0) {
		if (out >= 0)
			close(out);
		return EXIT_FAIL;
	}
	progress_init(&pr, "received", x.quiet);
	o = (struct vsm_recv_opts){
		.timeout_ms = x.timeout_ms, .max_bytes = x.max_size, .copy = x.copy,
		.progress = progress_cb, .progress_arg = &pr,
	};
	ret = vsm_recv(s, &o, &got, &rep);
	progress_end(&pr);
	close(s);
	if (ret) {
		errorf("recv", "%s%s", rep.reason, hint_for(rep.error));
		rc = exit_for(rep.error);
	} else if (out >= 0) {
		for (unsigned int i = 0; i < got.nr && rc == EXIT_OK; i++)
			if (write_full(out, got.regs[i].addr, got.regs[i].len)) {
				errorf("recv", "writing %s: %m", x.file);
				rc = EXIT_FAIL;
			}
	} else {
		uint64_t off = 0;

		for (unsigned int i = 0; i < got.nr && rc == EXIT_OK; i++) {
			long long bad = pattern_check(got.regs[i].addr, got.regs[i].len, off, x.seed);

			if (bad >= 0) {
				errorf("recv", "byte %llu differs from the pattern (seed %llu)%s",
				       (unsigned long long)(off + bad), (unsigned long long)x.seed,
				       rep.verified ? ": checksums matched, so a file or another "
				       "seed was sent (use --output FILE or --seed)" : "");
				rc = EXIT_VERIFY;
			}
			off += got.regs[i].len;
		}
	}
	if (out >= 0 && close(out) && rc == EXIT_OK) {
		errorf("recv", "writing %s: %m", x.file);
		rc = EXIT_FAIL;
	}
	vsm_recv_free(&got);
	return finish("recv", &x, &rep, rc);
}
