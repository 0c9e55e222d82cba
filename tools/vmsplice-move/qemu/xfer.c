// SPDX-License-Identifier: GPL-2.0
/*
 * Moving guest RAM between two QEMU processes through pipes; see xfer.h.
 */
#define _GNU_SOURCE
#include "xfer.h"
#include "inject.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#define PAGE		4096ULL
#define MAX_IOV		1024
#define PM_PRESENT	(1ULL << 63)
#define PM_SWAP		(1ULL << 62)

static int xerr(struct vsm_xfer *x, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static int xerr(struct vsm_xfer *x, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(x->err, sizeof(x->err), fmt, ap);
	va_end(ap);
	return -1;
}

bool vsm_kernel_has_unmap(void)
{
	int p[2];
	long r;

	if (pipe(p))
		return false;
	/* Kernels without the change reject the unknown flag: EINVAL. */
	r = syscall(SYS_vmsplice, p[1], NULL, 0,
		    SPLICE_F_GIFT | SPLICE_F_UNMAP);
	close(p[0]);
	close(p[1]);
	return r == 0;
}

void vsm_xfer_init(struct vsm_xfer *x)
{
	memset(x, 0, sizeof(*x));
	x->src_pidfd = x->dst_pidfd = -1;
	x->src_sock = x->dst_sock = -1;
	x->src_sock_tool = x->dst_sock_tool = -1;
	x->pipe_size = 1 << 20;
	x->pipes_per_batch = 64;
	x->sparse = true;
}

void vsm_xfer_free(struct vsm_xfer *x)
{
	for (int i = 0; i < x->npipes; i++) {
		if (x->pipes[i].rfd >= 0)
			close(x->pipes[i].rfd);
		if (x->pipes[i].wfd >= 0)
			close(x->pipes[i].wfd);
		free(x->pipes[i].seg);
	}
	if (x->src_sock_tool >= 0)
		close(x->src_sock_tool);
	if (x->dst_sock_tool >= 0)
		close(x->dst_sock_tool);
	x->src_sock_tool = x->dst_sock_tool = -1;
	free(x->pipes);
	free(x->blocks);
	x->pipes = NULL;
	x->blocks = NULL;
	x->npipes = x->nblocks = 0;
}

static bool dst_present(int fd, uint64_t addr)
{
	uint64_t e = 0;

	return pread(fd, &e, 8, addr / PAGE * 8) == 8 && (e & (PM_PRESENT | PM_SWAP));
}

void vsm_xfer_skip_returned(struct vsm_xfer *x, pid_t dst_pid)
{
	char path[64];
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/pagemap", dst_pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	for (int i = 0; i < x->npipes; i++) {
		struct vsm_xpipe *p = &x->pipes[i];

		if (p->backup || !p->taken || p->b_inpipe || p->a_start < p->given)
			continue;
		/* Pages given back are unmapped there; the rest are mapped. */
		while (p->back < p->taken) {
			uint64_t at = 0, addr = 0;

			for (int k = 0; k < p->nseg; k++) {
				if (p->back < at + p->seg[k].len) {
					addr = x->blocks[p->seg[k].block].dst +
					       p->seg[k].off + (p->back - at);
					break;
				}
				at += p->seg[k].len;
			}
			if (!addr || dst_present(fd, addr))
				break;
			p->back += PAGE;
		}
	}
	close(fd);
}

long long vsm_xfer_pipe_bytes(const struct vsm_xpipe *p)
{
	int n;

	if (p->rfd < 0 || ioctl(p->rfd, FIONREAD, &n))
		return -1;
	return n;
}

static int hook(struct vsm_xfer *x, enum vsm_xfer_hook what)
{
	if (x->hook && x->hook(x, what, x->hook_arg))
		return xerr(x, "aborted (hook)");
	return 0;
}

/*
 * Runs of pages of [@addr, @addr + @len) in @pid that hold data: present
 * or swapped out.  Pages never touched read as zeros on both sides and
 * need not travel.  Calls @fn for each run.
 */
static int present_runs(struct vsm_xfer *x, pid_t pid, uint64_t addr,
			uint64_t len,
			int (*fn)(struct vsm_xfer *, uint64_t off, uint64_t len,
				  void *), void *arg)
{
	enum { CHUNK = 8192 };
	uint64_t *pm, run_start = 0, npages = len / PAGE;
	bool in_run = false;
	char path[64];
	int fd, ret = 0;

	if (!x->sparse)
		return fn(x, 0, len, arg);
	snprintf(path, sizeof(path), "/proc/%d/pagemap", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	pm = malloc(CHUNK * sizeof(*pm));
	if (fd < 0 || !pm) {
		if (fd >= 0)
			close(fd);
		free(pm);
		return xerr(x, "cannot read %s: %s", path, strerror(errno));
	}
	for (uint64_t i = 0; i < npages && !ret; i += CHUNK) {
		uint64_t n = npages - i < CHUNK ? npages - i : CHUNK;
		ssize_t r = pread(fd, pm, n * 8, (addr / PAGE + i) * 8);

		if (r != (ssize_t)(n * 8)) {
			ret = xerr(x, "short read of %s", path);
			break;
		}
		for (uint64_t j = 0; j < n && !ret; j++) {
			bool data = pm[j] & (PM_PRESENT | PM_SWAP);

			if (data && !in_run) {
				run_start = i + j;
				in_run = true;
			} else if (!data && in_run) {
				in_run = false;
				ret = fn(x, run_start * PAGE,
					 (i + j - run_start) * PAGE, arg);
			}
		}
	}
	if (!ret && in_run)
		ret = fn(x, run_start * PAGE, (npages - run_start) * PAGE, arg);
	close(fd);
	free(pm);
	return ret;
}

static int count_run(struct vsm_xfer *x, uint64_t off, uint64_t len, void *arg)
{
	(void)off;
	(void)arg;
	x->total += len;
	return 0;
}

int vsm_xfer_plan(struct vsm_xfer *x, pid_t src_pid)
{
	x->total = 0;
	for (int b = 0; b < x->nblocks; b++)
		if (present_runs(x, src_pid, x->blocks[b].src, x->blocks[b].len,
				 count_run, NULL))
			return -1;
	return 0;
}

/* This tool's pidfd inside @v (opened there once). */
static long remote_pidfd(struct vsm_xfer *x, struct vsm_victim *v, long *slot)
{
	if (*slot >= 0)
		return *slot;
	*slot = vsm_inject(v, SYS_pidfd_open, getpid(), 0, 0, 0, 0, 0);
	if (*slot < 0) {
		long e = *slot;

		*slot = -1;
		return xerr(x, "pidfd_open in process %d: %s", vsm_inject_pid(v),
			    e == -VSM_INJECT_FAILED ? vsm_inject_error(v) :
			    strerror(-e));
	}
	return *slot;
}

/* Install our fd @fd into @v; the fd number there, or -1. */
static int install_fd(struct vsm_xfer *x, struct vsm_victim *v, long *slot,
		      int fd)
{
	long pfd = remote_pidfd(x, v, slot), r;

	if (pfd < 0)
		return -1;
	r = vsm_inject(v, SYS_pidfd_getfd, pfd, fd, 0, 0, 0, 0);
	if (r < 0)
		return xerr(x, "pidfd_getfd in process %d: %s", vsm_inject_pid(v),
			    r == -VSM_INJECT_FAILED ? vsm_inject_error(v) :
			    strerror(-r));
	return (int)r;
}

#define FDS_PER_MSG 250

/*
 * Install our fds @fds[0..@n) into @v, in as few injected calls as the
 * kernel allows: a socket pair whose one end goes over once with
 * pidfd_getfd, then SCM_RIGHTS messages that @v receives with an injected
 * recvmsg().  The fd numbers there go to @out.
 */
static int install_fds(struct vsm_xfer *x, struct vsm_victim *v, bool dst,
		       const int *fds, int n, int *out)
{
	int *vsock = dst ? &x->dst_sock : &x->src_sock;
	int *tsock = dst ? &x->dst_sock_tool : &x->src_sock_tool;
	long *pidfd = dst ? &x->dst_pidfd : &x->src_pidfd;
	size_t slen;
	uint64_t sc = vsm_inject_scratch(v, &slen);

	if (*vsock < 0) {
		int sp[2];

		if (socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, sp))
			return xerr(x, "socketpair: %s", strerror(errno));
		*vsock = install_fd(x, v, pidfd, sp[1]);
		close(sp[1]);
		if (*vsock < 0) {
			close(sp[0]);
			return -1;
		}
		*tsock = sp[0];
	}
	for (int done = 0; done < n;) {
		int k = n - done < FDS_PER_MSG ? n - done : FDS_PER_MSG;
		union {
			char buf[CMSG_SPACE(FDS_PER_MSG * sizeof(int))];
			struct cmsghdr align;
		} cb;
		char byte = 'F';
		struct iovec iov = { &byte, 1 };
		struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1,
				    .msg_control = cb.buf,
				    .msg_controllen = CMSG_SPACE(k * sizeof(int)) };
		struct cmsghdr *cm = CMSG_FIRSTHDR(&m);
		/* The same message, as the victim will see it, in its scratch. */
		struct {
			struct msghdr m;
			struct iovec iov;
			char byte[8];
		} rm;
		uint64_t r_hdr = sc, r_ctl = sc + ((sizeof(rm) + 63) & ~63UL);
		long r;

		if (r_ctl + sizeof(cb) > sc + slen)
			return xerr(x, "scratch too small for SCM_RIGHTS");
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(k * sizeof(int));
		memcpy(CMSG_DATA(cm), fds + done, k * sizeof(int));
		if (sendmsg(*tsock, &m, MSG_NOSIGNAL) != 1)
			return xerr(x, "sendmsg SCM_RIGHTS: %s", strerror(errno));
		memset(&rm, 0, sizeof(rm));
		rm.iov.iov_base = (void *)(uintptr_t)(r_hdr + offsetof(typeof(rm), byte));
		rm.iov.iov_len = 1;
		rm.m.msg_iov = (void *)(uintptr_t)(r_hdr + offsetof(typeof(rm), iov));
		rm.m.msg_iovlen = 1;
		rm.m.msg_control = (void *)(uintptr_t)r_ctl;
		rm.m.msg_controllen = CMSG_SPACE(k * sizeof(int));
		if (vsm_inject_write(v, r_hdr, &rm, sizeof(rm)))
			return xerr(x, "writing into process %d: %s", vsm_inject_pid(v),
				    strerror(errno));
		r = vsm_inject(v, SYS_recvmsg, *vsock, r_hdr,
			       MSG_DONTWAIT | MSG_CMSG_CLOEXEC, 0, 0, 0);
		if (r != 1)
			return xerr(x, "recvmsg in process %d: %s", vsm_inject_pid(v),
				    r == -VSM_INJECT_FAILED ? vsm_inject_error(v) :
				    strerror(-r));
		if (vsm_inject_read(v, r_hdr, &rm, sizeof(rm)) ||
		    vsm_inject_read(v, r_ctl, cb.buf, CMSG_SPACE(k * sizeof(int))))
			return xerr(x, "reading from process %d: %s", vsm_inject_pid(v),
				    strerror(errno));
		cm = (struct cmsghdr *)cb.buf;
		/* A victim out of fds gets a truncated message (MSG_CTRUNC). */
		if ((rm.m.msg_flags & MSG_CTRUNC) || cm->cmsg_type != SCM_RIGHTS ||
		    cm->cmsg_len != CMSG_LEN(k * sizeof(int)))
			return xerr(x, "process %d did not receive %d fds (out of file descriptors?)",
				    vsm_inject_pid(v), k);
		memcpy(out + done, CMSG_DATA(cm), k * sizeof(int));
		done += k;
	}
	return 0;
}

/*
 * Enough pipes for @bytes more of 4 KiB pages (the worst case: a THP
 * takes one slot only on the move path), at most pipes_per_batch.
 */
static int batch_for(const struct vsm_xfer *x, uint64_t bytes)
{
	uint64_t per = x->pipe_size ? x->pipe_size : PAGE;
	uint64_t n = (bytes + per - 1) / per;

	if (n < 1)
		n = 1;
	return n < (uint64_t)x->pipes_per_batch ? (int)n : x->pipes_per_batch;
}

static int new_pipes(struct vsm_xfer *x, struct vsm_victim *src,
		     struct vsm_victim *dst, uint64_t bytes)
{
	int first = x->npipes, n = batch_for(x, bytes);
	int *fds = malloc(2 * n * sizeof(int)), *got = malloc(2 * n * sizeof(int));
	int ret = -1;

	if (!fds || !got) {
		xerr(x, "out of memory");
		goto out;
	}
	if (x->npipes + n > x->cappipes) {
		int cap = x->cappipes * 2 > x->npipes + n ? x->cappipes * 2 : x->npipes + n;
		struct vsm_xpipe *np = realloc(x->pipes, cap * sizeof(*np));

		if (!np) {
			xerr(x, "out of memory");
			goto out;
		}
		x->pipes = np;
		x->cappipes = cap;
	}
	for (int i = 0; i < n; i++) {
		struct vsm_xpipe *p = &x->pipes[x->npipes];
		int pf[2];

		if (pipe2(pf, O_CLOEXEC)) {
			xerr(x, "pipe: %s", strerror(errno));
			goto out;
		}
		memset(p, 0, sizeof(*p));
		p->rfd = pf[0];
		p->wfd = pf[1];
		p->src_r = p->src_w = p->dst_r = p->dst_w = -1;
		p->next_block = -1;
		p->backup = dst != NULL;
		x->npipes++;
		/* As large as we may (root: past pipe-max-size). */
		for (size_t sz = x->pipe_size; sz >= 16 * PAGE; sz /= 2) {
			int r = fcntl(p->wfd, F_SETPIPE_SZ, (int)sz);

			if (r > 0) {
				x->pipe_size = r;
				break;
			}
		}
		fds[i] = p->rfd;
		fds[n + i] = p->wfd;
	}
	/*
	 * The source always holds the read ends: it owns the pages.  The
	 * write ends go to whoever gives: the source, or for backup pipes
	 * the destination.
	 */
	if (install_fds(x, src, false, fds, dst ? n : 2 * n, got))
		goto out;
	if (dst && install_fds(x, dst, true, fds + n, n, got + n))
		goto out;
	for (int i = 0; i < n; i++) {
		struct vsm_xpipe *p = &x->pipes[first + i];

		p->src_r = got[i];
		if (dst)
			p->dst_w = got[n + i];
		else
			p->src_w = got[n + i];
	}
	ret = hook(x, dst ? VSM_HOOK_TAKE : VSM_HOOK_GIVE);
out:
	free(fds);
	free(got);
	return ret;
}

/* Install the read (@write false) or write ends of the pipes the
 * destination needs for @what into it, all at once. */
static int dst_ends(struct vsm_xfer *x, struct vsm_victim *dst, bool write)
{
	int *fds = malloc(x->npipes * sizeof(int)), *got = malloc(x->npipes * sizeof(int));
	int *idx = malloc(x->npipes * sizeof(int)), n = 0, ret = -1;

	if (!fds || !got || !idx) {
		xerr(x, "out of memory");
		goto out;
	}
	for (int i = 0; i < x->npipes; i++) {
		struct vsm_xpipe *p = &x->pipes[i];

		if (p->backup || !p->given || (write ? p->dst_w : p->dst_r) >= 0)
			continue;
		if ((write ? p->wfd : p->rfd) < 0) {
			xerr(x, "pipe %d: no %s end here", i, write ? "write" : "read");
			goto out;
		}
		idx[n] = i;
		fds[n++] = write ? p->wfd : p->rfd;
	}
	if (n && install_fds(x, dst, true, fds, n, got))
		goto out;
	for (int k = 0; k < n; k++) {
		if (write)
			x->pipes[idx[k]].dst_w = got[k];
		else
			x->pipes[idx[k]].dst_r = got[k];
	}
	ret = 0;
out:
	free(fds);
	free(got);
	free(idx);
	return ret;
}

static int append_seg(struct vsm_xfer *x, struct vsm_xpipe *p, int block,
		      uint64_t off, uint64_t len)
{
	struct vsm_seg *last = p->nseg ? &p->seg[p->nseg - 1] : NULL;

	if (last && last->block == block && last->off + last->len == off) {
		last->len += len;
		return 0;
	}
	if (p->nseg == p->capseg) {
		int cap = p->capseg ? 2 * p->capseg : 8;
		struct vsm_seg *ns = realloc(p->seg, cap * sizeof(*ns));

		if (!ns)
			return xerr(x, "out of memory");
		p->seg = ns;
		p->capseg = cap;
	}
	p->seg[p->nseg++] = (struct vsm_seg){ block, off, len };
	return 0;
}

struct give_ctx {
	struct vsm_victim *src;
	int block;
	int cur;		/* pipe being filled */
};

static long vmsplice_in(struct vsm_victim *v, int fd, uint64_t addr,
			uint64_t len, unsigned int flags)
{
	struct iovec iov = { (void *)(uintptr_t)addr, len };
	size_t slen;
	uint64_t s = vsm_inject_scratch(v, &slen);

	if (vsm_inject_write(v, s, &iov, sizeof(iov)))
		return -VSM_INJECT_FAILED;
	return vsm_inject(v, SYS_vmsplice, fd, s, 1, flags, 0, 0);
}

static const char *why(struct vsm_victim *v, long r)
{
	return r == -VSM_INJECT_FAILED ? vsm_inject_error(v) : strerror(-r);
}

static int give_run(struct vsm_xfer *x, uint64_t off, uint64_t len, void *arg)
{
	struct give_ctx *g = arg;
	const struct vsm_mblock *b = &x->blocks[g->block];
	unsigned int flags = SPLICE_F_GIFT | SPLICE_F_NONBLOCK |
			     (x->unmap ? SPLICE_F_UNMAP : 0);
	uint64_t run_off = off, run_len = len;

	while (len) {
		struct vsm_xpipe *p;
		long r;

		if (g->cur >= x->npipes &&
		    new_pipes(x, g->src, NULL, x->total > x->given_total ?
			      x->total - x->given_total : len))
			return -1;
		p = &x->pipes[g->cur];
		p->next_block = g->block;
		p->next_off = off;
		if (hook(x, VSM_HOOK_GIVE))
			return -1;
		r = vmsplice_in(g->src, p->src_w, b->src + off, len, flags);
		if (r == -EAGAIN) {
			if (!p->given)
				return xerr(x, "an empty pipe takes nothing");
			g->cur++;		/* full: the next pipe */
			continue;
		}
		if (r <= 0)
			return xerr(x, "vmsplice in the source: %s", why(g->src, r));
		if (r % PAGE)
			return xerr(x, "vmsplice gave %ld bytes, not whole pages", r);
		if (append_seg(x, p, g->block, off, r))
			return -1;
		p->given += r;
		x->given_total += r;
		if (x->unmap)
			x->unmapped_total += r;
		off += r;
		len -= r;
		/* A short gift means a full pipe: no need to ask again. */
		if (len)
			g->cur++;
		if (hook(x, VSM_HOOK_GIVE))
			return -1;
	}
	if (!x->unmap) {
		/*
		 * Old kernel: drop the source's mapping of the whole run; the
		 * pipes hold the pages.  (Killed before this, the source
		 * keeps both: the return path drops its copy first.)
		 */
		long m = vsm_inject(g->src, SYS_madvise, b->src + run_off, run_len,
				    MADV_DONTNEED, 0, 0, 0);

		if (m)
			return xerr(x, "madvise in the source: %s", why(g->src, m));
		x->unmapped_total += run_len;
	}
	return 0;
}

int vsm_xfer_give(struct vsm_xfer *x, struct vsm_victim *src)
{
	struct give_ctx g = { .src = src, .cur = 0 };

	/* Continue after pipes already filled (a retry). */
	while (g.cur < x->npipes && x->pipes[g.cur].given)
		g.cur++;
	for (g.block = 0; g.block < x->nblocks; g.block++)
		if (present_runs(x, vsm_inject_pid(src), x->blocks[g.block].src,
				 x->blocks[g.block].len, give_run, &g))
			return -1;
	return 0;
}

/*
 * iovecs for bytes [@pos, @pos + @max) of pipe @p's content, at the
 * source's (@dst false) or the destination's addresses.
 */
static int seg_iov(const struct vsm_xfer *x, const struct vsm_xpipe *p,
		   uint64_t pos, uint64_t max, bool dst, struct iovec *iov,
		   int maxiov, uint64_t *bytes)
{
	uint64_t at = 0;
	int n = 0;

	*bytes = 0;
	for (int i = 0; i < p->nseg && n < maxiov && *bytes < max; i++) {
		const struct vsm_seg *s = &p->seg[i];
		const struct vsm_mblock *b = &x->blocks[s->block];
		uint64_t skip, len;

		if (at + s->len <= pos) {
			at += s->len;
			continue;
		}
		skip = pos > at ? pos - at : 0;
		len = s->len - skip;
		if (len > max - *bytes)
			len = max - *bytes;
		iov[n].iov_base = (void *)(uintptr_t)((dst ? b->dst : b->src) +
						      s->off + skip);
		iov[n].iov_len = len;
		n++;
		*bytes += len;
		at += s->len;
	}
	return n;
}

/* vmsplice @fd in @v over pipe @p's bytes [@pos, @pos + @max). */
static long vmsplice_segs(struct vsm_xfer *x, struct vsm_victim *v, int fd,
			  const struct vsm_xpipe *p, uint64_t pos, uint64_t max,
			  bool dst, unsigned int flags)
{
	static struct iovec iov[MAX_IOV];
	uint64_t bytes;
	size_t slen;
	uint64_t s = vsm_inject_scratch(v, &slen);
	int n = seg_iov(x, p, pos, max, dst, iov,
			(int)(slen / sizeof(*iov) < MAX_IOV ?
			      slen / sizeof(*iov) : MAX_IOV), &bytes);

	if (!n)
		return 0;
	if (vsm_inject_write(v, s, iov, n * sizeof(*iov)))
		return -VSM_INJECT_FAILED;
	return vsm_inject(v, SYS_vmsplice, fd, s, n, flags, 0, 0);
}

/* MADV_DONTNEED over pipe @p's bytes [@pos, @pos + @len) in @v. */
static int drop_segs(struct vsm_xfer *x, struct vsm_victim *v,
		     const struct vsm_xpipe *p, uint64_t pos, uint64_t len,
		     bool dst)
{
	static struct iovec iov[MAX_IOV];

	while (len) {
		uint64_t bytes;
		int n = seg_iov(x, p, pos, len, dst, iov, MAX_IOV, &bytes);

		for (int i = 0; i < n; i++) {
			long r = vsm_inject(v, SYS_madvise,
					    (long)iov[i].iov_base,
					    iov[i].iov_len, MADV_DONTNEED, 0, 0, 0);

			if (r)
				return xerr(x, "madvise in process %d: %s",
					    vsm_inject_pid(v), why(v, r));
		}
		pos += bytes;
		len -= bytes;
	}
	return 0;
}

int vsm_xfer_take(struct vsm_xfer *x, struct vsm_victim *dst)
{
	if (dst_ends(x, dst, false) || hook(x, VSM_HOOK_TAKE))
		return -1;
	/* Land on fresh memory: nothing of value is there yet. */
	for (int b = 0; b < x->nblocks; b++) {
		long r = vsm_inject(dst, SYS_madvise, x->blocks[b].dst,
				    x->blocks[b].len, MADV_DONTNEED, 0, 0, 0);

		if (r)
			return xerr(x, "madvise in the destination: %s", why(dst, r));
	}
	for (int i = 0; i < x->npipes; i++) {
		struct vsm_xpipe *p = &x->pipes[i];

		while (!p->backup && p->taken < p->given) {
			long r = vmsplice_segs(x, dst, p->dst_r, p, p->taken,
					       p->given - p->taken, true,
					       SPLICE_F_MOVE | SPLICE_F_NONBLOCK);

			if (r <= 0)
				return xerr(x, "vmsplice in the destination: %s",
					    r ? why(dst, r) : "pipe empty");
			p->taken += r;
			x->taken_total += r;
			if (hook(x, VSM_HOOK_TAKE))
				return -1;
		}
	}
	return 0;
}

/*
 * Read pipe @p's bytes [*@pos, *@pos + @len) back into the source,
 * advancing *@pos (journaled through the hook) as they arrive.
 */
static int read_back(struct vsm_xfer *x, struct vsm_victim *src,
		     struct vsm_xpipe *p, uint64_t *pos, uint64_t len)
{
	/* Those source pages hold nothing (their data is in the pipe). */
	if (drop_segs(x, src, p, *pos, len, false))
		return -1;
	while (len) {
		long r = vmsplice_segs(x, src, p->src_r, p, *pos, len, false,
				       SPLICE_F_MOVE | SPLICE_F_NONBLOCK);

		if (r <= 0)
			return xerr(x, "vmsplice back into the source: %s",
				    r ? why(src, r) : "pipe empty");
		*pos += r;
		len -= r;
		x->returned_total += r;
		if (hook(x, VSM_HOOK_RETURN))
			return -1;
	}
	return 0;
}

int vsm_xfer_backup(struct vsm_xfer *x, struct vsm_victim *src,
		    struct vsm_victim *dst)
{
	int ntr = x->npipes, cur = x->npipes;

	x->backed_up = false;
	x->backup_total = 0;
	for (int i = 0; i < ntr; i++) {
		for (int k = 0; !x->pipes[i].backup && k < x->pipes[i].nseg; k++) {
			struct vsm_seg sg = x->pipes[i].seg[k];

			while (sg.len) {
				struct vsm_xpipe *p;
				long r;

				if (cur >= x->npipes &&
				    new_pipes(x, src, dst, x->taken_total > x->backup_total ?
					      x->taken_total - x->backup_total : sg.len))
					return -1;
				p = &x->pipes[cur];
				r = vmsplice_in(dst, p->dst_w,
						x->blocks[sg.block].dst + sg.off,
						sg.len, SPLICE_F_NONBLOCK);
				if (r == -EAGAIN) {
					if (!p->given)
						return xerr(x, "an empty pipe takes nothing");
					cur++;
					continue;
				}
				if (r <= 0 || r % PAGE)
					return xerr(x, "backup vmsplice in the destination: %s",
						    r ? why(dst, r) : "nothing taken");
				if (append_seg(x, p, sg.block, sg.off, r))
					return -1;
				p->given += r;
				x->backup_total += r;
				sg.off += r;
				sg.len -= r;
			}
		}
	}
	x->backed_up = true;
	return hook(x, VSM_HOOK_TAKE);
}

int vsm_xfer_return(struct vsm_xfer *x, struct vsm_victim *src,
		    struct vsm_victim *dst)
{
	unsigned int gflags = SPLICE_F_GIFT | SPLICE_F_NONBLOCK |
			      (x->unmap ? SPLICE_F_UNMAP : 0);
	int ret = 0;

	x->lost = 0;
	/* What is still in the transfer pipes goes straight back. */
	for (int i = 0; i < x->npipes; i++) {
		struct vsm_xpipe *p = &x->pipes[i];

		if (p->backup)
			continue;
		if (p->a_start < p->taken)
			p->a_start = p->taken;
		if (p->given > p->a_start &&
		    read_back(x, src, p, &p->a_start, p->given - p->a_start))
			return -1;
		p->given = p->a_start = p->taken;
	}
	/*
	 * What the destination took: copied back from the backup references
	 * when there are some (they pin the pages, so they could not move
	 * anyway), else given back by the destination itself.
	 */
	if (x->backed_up) {
		for (int i = 0; i < x->npipes; i++) {
			struct vsm_xpipe *p = &x->pipes[i];

			if (p->backup && p->given > p->a_start &&
			    read_back(x, src, p, &p->a_start, p->given - p->a_start))
				return -1;
		}
		goto done;
	}
	for (int i = 0; i < x->npipes; i++) {
		struct vsm_xpipe *p = &x->pipes[i];

		if (!p->backup && p->b_inpipe) {
			uint64_t n = p->b_inpipe;

			p->b_inpipe = 0;
			if (read_back(x, src, p, &p->back, n))
				return -1;
		}
		if (p->backup || p->back >= p->taken)
			continue;
		if (!dst) {
			x->lost += p->taken - p->back;
			ret = xerr(x, "the destination is gone with %llu bytes it had taken",
				   (unsigned long long)x->lost);
			continue;
		}
		if (p->dst_w < 0 && dst_ends(x, dst, true))
			return -1;
		while (p->back < p->taken) {
			uint64_t pos = p->back;
			long r;

			if (hook(x, VSM_HOOK_RETURN))
				return -1;
			r = vmsplice_segs(x, dst, p->dst_w, p, pos,
					  p->taken - pos, true, gflags);
			if (r <= 0)
				return xerr(x, "vmsplice in the destination: %s",
					    r ? why(dst, r) : "nothing given");
			if (!x->unmap && drop_segs(x, dst, p, pos, r, true))
				return -1;
			if (read_back(x, src, p, &p->back, r))
				return -1;
		}
	}
done:
	/* Everything is back in the source: the ledger is empty. */
	if (!ret) {
		for (int i = 0; i < x->npipes; i++) {
			struct vsm_xpipe *p = &x->pipes[i];

			p->given = p->taken = p->a_start = p->back = 0;
			p->nseg = 0;
		}
		x->given_total = x->taken_total = x->unmapped_total = 0;
		x->backed_up = false;
	}
	return ret;
}
