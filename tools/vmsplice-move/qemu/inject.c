// SPDX-License-Identifier: GPL-2.0
/*
 * Syscall injection with ptrace, x86-64.  See inject.h for the design.
 */
#define _GNU_SOURCE
#include "inject.h"

#include <cpuid.h>
#include <dirent.h>
#include <elf.h>
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef PTRACE_GET_SYSCALL_INFO
#define PTRACE_GET_SYSCALL_INFO 0x420e
#define PTRACE_SYSCALL_INFO_ENTRY 1
#define PTRACE_SYSCALL_INFO_EXIT 2
#endif

/* The kernel's restart codes (include/linux/errno.h, not exported). */
#define K_ERESTARTSYS		512
#define K_ERESTARTNOINTR	513
#define K_ERESTARTNOHAND	514
#define K_ERESTART_RESTARTBLOCK	516

/* The x86-64 kernel's signal frame (arch/x86/include/asm/sigframe.h). */
struct k_sigcontext {
	uint64_t r8, r9, r10, r11, r12, r13, r14, r15;
	uint64_t rdi, rsi, rbp, rbx, rdx, rax, rcx, rsp, rip, eflags;
	uint16_t cs, gs, fs, ss;
	uint64_t err, trapno, oldmask, cr2, fpstate;
	uint64_t reserved1[8];
};

struct k_stack {
	uint64_t ss_sp;
	int32_t ss_flags;
	int32_t pad;
	uint64_t ss_size;
};

struct k_ucontext {
	uint64_t uc_flags;
	uint64_t uc_link;
	struct k_stack uc_stack;
	struct k_sigcontext uc_mcontext;
	uint64_t uc_sigmask;
};

struct k_rt_sigframe {
	uint64_t pretcode;
	struct k_ucontext uc;
	uint8_t info[128];
};

_Static_assert(sizeof(struct k_sigcontext) == 256, "sigcontext layout");
_Static_assert(sizeof(struct k_ucontext) == 304, "ucontext layout");

#define UC_FP_XSTATE		0x1
#define UC_SIGCONTEXT_SS	0x2
#define UC_STRICT_RESTORE_SS	0x4
#define FP_XSTATE_MAGIC1	0x46505853U
#define FP_XSTATE_MAGIC2	0x46505845U
#define XSTATE_SW_OFFSET	464	/* fxsave sw_reserved[] */
#define XSTATE_HDR_OFFSET	512
#define XFEATURE_XTILEDATA	(1ULL << 18)	/* dynamic: needs permission */
#define XSTATE_BUF_MAX		(64 * 1024)

#define RED_ZONE	128
#define SCRATCH_LEN	(32 * 1024)
#define WAIT_MS		5000
/*
 * An injected syscall's own run time: a vmsplice() copying hundreds of MiB
 * (the copy path, or pages copied back from backup references) under a
 * debug kernel in nested TCG took over 5 s.  The injected vmsplice calls
 * are SPLICE_F_NONBLOCK, so this bounds only a thread stuck in the kernel.
 */
#define SYSCALL_MS	120000

struct vsm_thread {
	pid_t tid;
	bool stopped;		/* in a ptrace-stop we caused */
};

struct vsm_victim {
	pid_t pid;
	int nthreads;
	struct vsm_thread *threads;
	pid_t worker;
	struct user_regs_struct armed;	/* worker regs: "ret" into the frame */
	uint64_t frame;			/* remote struct k_rt_sigframe */
	uint64_t scratch;		/* remote scratch area */
	uint64_t gadget_syscall;	/* remote "syscall; ret" */
	uint64_t gadget_restore;	/* remote "mov $15,%rax; syscall" */
	char err[256];
};

static void set_err(struct vsm_victim *v, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(v->err, sizeof(v->err), fmt, ap);
	va_end(ap);
}

static long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * Wait for a state change of @tid, at most @ms: a thread that never
 * stops (stuck in uninterruptible sleep) is an error, not a hang.  Sleeps
 * in sigtimedwait() for the SIGCHLD a tracee's stop sends its tracer;
 * SIGCHLD is blocked only while waiting, and checked for with waitpid()
 * after blocking, so no stop is missed.  Returns 1 with *status, 0 on
 * timeout, -1 on error.
 */
static int wait_tid_ms(pid_t tid, int *status, long ms)
{
	long deadline = now_ms() + ms;
	sigset_t chld, old;
	int ret;

	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	sigprocmask(SIG_BLOCK, &chld, &old);
	for (;;) {
		pid_t r = waitpid(tid, status, __WALL | WNOHANG);
		long left = deadline - now_ms();
		struct timespec ts;

		if (r == tid) {
			ret = 1;
			break;
		}
		if (r < 0 && errno != EINTR) {
			ret = -1;
			break;
		}
		if (left <= 0) {
			ret = 0;
			break;
		}
		/* Wake up now and then anyway: another thread may reap. */
		if (left > 50)
			left = 50;
		ts.tv_sec = 0;
		ts.tv_nsec = left * 1000000;
		sigtimedwait(&chld, NULL, &ts);
	}
	sigprocmask(SIG_SETMASK, &old, NULL);
	return ret;
}

static int wait_tid(pid_t tid, int *status)
{
	return wait_tid_ms(tid, status, WAIT_MS);
}

static struct vsm_thread *find_thread(struct vsm_victim *v, pid_t tid)
{
	for (int i = 0; i < v->nthreads; i++)
		if (v->threads[i].tid == tid)
			return &v->threads[i];
	return NULL;
}

/* Seize and interrupt @tid; 1 when stopped, 0 when it vanished, -1 error. */
static int seize_one(struct vsm_victim *v, pid_t tid)
{
	int st, r;

	if (ptrace(PTRACE_SEIZE, tid, 0, PTRACE_O_TRACESYSGOOD)) {
		if (errno == ESRCH)
			return 0;
		set_err(v, "ptrace(PTRACE_SEIZE, %d) refused: %s%s", tid,
			strerror(errno), errno == EPERM ?
			" (traced by another process, Yama ptrace_scope, or no CAP_SYS_PTRACE)" : "");
		return -1;
	}
	if (ptrace(PTRACE_INTERRUPT, tid, 0, 0)) {
		set_err(v, "PTRACE_INTERRUPT %d: %s", tid, strerror(errno));
		return errno == ESRCH ? 0 : -1;
	}
	for (;;) {
		r = wait_tid(tid, &st);
		if (r <= 0) {
			set_err(v, "thread %d did not stop within %d ms", tid,
				WAIT_MS);
			ptrace(PTRACE_DETACH, tid, 0, 0);
			return -1;
		}
		if (WIFEXITED(st) || WIFSIGNALED(st))
			return 0;
		if (!WIFSTOPPED(st))
			continue;
		if (st >> 16 == PTRACE_EVENT_STOP)
			return 1;
		/*
		 * A signal arrived first (signal-delivery-stop): let it be
		 * delivered as it would have been; the interrupt stays
		 * pending and comes next.
		 */
		ptrace(PTRACE_CONT, tid, 0, WSTOPSIG(st));
	}
}

/*
 * Seize every thread.  Threads can appear while we go (one not yet
 * stopped can clone), so list /proc/PID/task until a pass finds none new.
 */
static int seize_all(struct vsm_victim *v)
{
	char path[64];
	bool found_new = true;
	int cap = 0;

	snprintf(path, sizeof(path), "/proc/%d/task", v->pid);
	while (found_new) {
		DIR *d = opendir(path);
		struct dirent *de;

		if (!d) {
			set_err(v, "%s: %s", path, strerror(errno));
			return -1;
		}
		found_new = false;
		while ((de = readdir(d))) {
			pid_t tid = atoi(de->d_name);
			int r;

			if (tid <= 0 || find_thread(v, tid))
				continue;
			r = seize_one(v, tid);
			if (r < 0) {
				closedir(d);
				return -1;
			}
			if (r == 0)
				continue;
			if (v->nthreads == cap) {
				struct vsm_thread *t;

				cap = cap ? 2 * cap : 16;
				t = realloc(v->threads, cap * sizeof(*t));
				if (!t) {
					ptrace(PTRACE_DETACH, tid, 0, 0);
					closedir(d);
					set_err(v, "out of memory");
					return -1;
				}
				v->threads = t;
			}
			v->threads[v->nthreads++] = (struct vsm_thread){
				.tid = tid, .stopped = true };
			found_new = true;
		}
		closedir(d);
	}
	if (!v->nthreads) {
		set_err(v, "process %d has no threads (gone?)", v->pid);
		errno = ESRCH;
		return -1;
	}
	return 0;
}

static void detach_all(struct vsm_victim *v)
{
	for (int i = 0; i < v->nthreads; i++)
		if (v->threads[i].stopped)
			ptrace(PTRACE_DETACH, v->threads[i].tid, 0, 0);
}

/* One line of /proc/PID/maps. */
struct map_ent {
	uint64_t start, end;
	char perms[5];
	char path[256];
};

static FILE *open_maps(pid_t pid)
{
	char path[64];

	snprintf(path, sizeof(path), "/proc/%d/maps", pid);
	return fopen(path, "r");
}

static bool next_map(FILE *f, struct map_ent *m)
{
	char line[512];

	while (fgets(line, sizeof(line), f)) {
		unsigned long long s, e, off;
		int n = 0;

		m->path[0] = 0;
		if (sscanf(line, "%llx-%llx %4s %llx %*s %*s %n", &s, &e,
			   m->perms, &off, &n) < 4)
			continue;
		m->start = s;
		m->end = e;
		if (n > 0) {
			snprintf(m->path, sizeof(m->path), "%s", line + n);
			m->path[strcspn(m->path, "\n")] = 0;
		}
		return true;
	}
	return false;
}

unsigned long long vsm_proc_starttime(pid_t pid)
{
	char path[64], buf[1024], *p;
	unsigned long long st = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	f = fopen(path, "r");
	if (!f)
		return 0;
	/* Fields after the command: state is 3, starttime 22. */
	if (fgets(buf, sizeof(buf), f) && (p = strrchr(buf, ')')) &&
	    sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d %*d %*d %*d %llu",
		   &st) != 1)
		st = 0;
	fclose(f);
	return st;
}

static uint64_t find_bytes(pid_t pid, const struct map_ent *m,
			   const uint8_t *pat, size_t plen)
{
	size_t len = m->end - m->start;
	uint8_t *buf = malloc(len);
	struct iovec l = { buf, len }, r = { (void *)(uintptr_t)m->start, len };
	uint64_t found = 0;

	if (!buf)
		return 0;
	if (process_vm_readv(pid, &l, 1, &r, 1, 0) == (ssize_t)len) {
		void *p = memmem(buf, len, pat, plen);

		if (p)
			found = m->start + ((uint8_t *)p - buf);
	}
	free(buf);
	return found;
}

/*
 * The two instruction sequences we run the worker through, taken from the
 * victim's own executable memory (the C library first): "syscall; ret" and
 * glibc's __restore_rt "mov $15,%rax; syscall".
 */
static int find_gadgets(struct vsm_victim *v)
{
	/* One search per process: its code does not move. */
	static struct { pid_t pid; unsigned long long start; uint64_t sys, rest; } cache;
	unsigned long long start = vsm_proc_starttime(v->pid);
	static const uint8_t sys_ret[] = { 0x0f, 0x05, 0xc3 };
	static const uint8_t restore[] = { 0x48, 0xc7, 0xc0, 0x0f, 0x00, 0x00,
					   0x00, 0x0f, 0x05 };
	struct map_ent m;

	if (start && cache.pid == v->pid && cache.start == start) {
		v->gadget_syscall = cache.sys;
		v->gadget_restore = cache.rest;
		return 0;
	}
	for (int pass = 0; pass < 2; pass++) {
		FILE *f = open_maps(v->pid);

		if (!f) {
			set_err(v, "cannot read /proc/%d/maps", v->pid);
			return -1;
		}
		while (next_map(f, &m)) {
			bool libc = strstr(m.path, "/libc.so") ||
				    strstr(m.path, "/libc-");

			if (strcmp(m.perms, "r-xp") || (pass == 0 && !libc))
				continue;
			if (!v->gadget_syscall)
				v->gadget_syscall = find_bytes(v->pid, &m, sys_ret,
							       sizeof(sys_ret));
			if (!v->gadget_restore)
				v->gadget_restore = find_bytes(v->pid, &m, restore,
							       sizeof(restore));
		}
		fclose(f);
		if (v->gadget_syscall && v->gadget_restore) {
			cache.pid = v->pid;
			cache.start = start;
			cache.sys = v->gadget_syscall;
			cache.rest = v->gadget_restore;
			return 0;
		}
	}
	set_err(v, "no \"syscall; ret\" or rt_sigreturn trampoline in the executable memory of %d (not an x86-64 glibc process?)",
		v->pid);
	return -1;
}

/* The writable mapping holding @addr, or false. */
static bool writable_vma_of(pid_t pid, uint64_t addr, struct map_ent *out)
{
	FILE *f = open_maps(pid);
	struct map_ent m;
	bool ok = false;

	if (!f)
		return false;
	while (next_map(f, &m)) {
		if (addr >= m.start && addr < m.end) {
			ok = m.perms[0] == 'r' && m.perms[1] == 'w';
			*out = m;
			break;
		}
	}
	fclose(f);
	return ok;
}

/*
 * Syscalls that install a temporary signal mask which the kernel puts back
 * after the call (TIF_RESTORE_SIGMASK).  PTRACE_SETSIGMASK would drop the
 * saved mask, so a thread stopped in one of these must not be the worker.
 */
static bool temp_sigmask_syscall(const struct user_regs_struct *r)
{
	switch ((long)r->orig_rax) {
	case SYS_rt_sigsuspend:
		return true;
	case SYS_ppoll:
		return r->r10 != 0;
	case SYS_pselect6:
		return r->r9 != 0;
	case SYS_epoll_pwait:
	case SYS_epoll_pwait2:
		return r->r8 != 0;
	case SYS_io_pgetevents:
		return r->r9 != 0;
	default:
		return false;
	}
}

/* Size of the standard-format XSAVE area for the user features @mask. */
static unsigned int xsave_size(uint64_t mask)
{
	unsigned int size = XSTATE_HDR_OFFSET + 64;

	for (int i = 2; i < 63; i++) {
		unsigned int a, b, c, d;

		if (!(mask & (1ULL << i)))
			continue;
		__cpuid_count(0xd, i, a, b, c, d);
		(void)c;
		(void)d;
		if (b + a > size)
			size = b + a;
	}
	return size;
}

/*
 * Build the worker's FPU image for the signal frame: the thread's XSAVE
 * state from ptrace, with the software-reserved bytes a signal frame has
 * (magic, sizes, features) and the trailing second magic.  Returns its
 * length (including magic2) or 0 when only the legacy area is known (the
 * kernel then restores FP/SSE only).
 */
static size_t build_fpstate(struct vsm_victim *v, uint8_t *img, size_t cap)
{
	struct iovec iov = { img, cap };
	uint64_t xcr0, features, bv;
	uint32_t sw[12] = { 0 };
	unsigned int size;

	memset(img, 0, cap);
	if (ptrace(PTRACE_GETREGSET, v->worker, NT_X86_XSTATE, &iov) == 0 &&
	    iov.iov_len >= XSTATE_HDR_OFFSET + 64) {
		memcpy(&xcr0, img + XSTATE_SW_OFFSET, sizeof(xcr0));
		features = xcr0 & ~XFEATURE_XTILEDATA;
		size = xsave_size(features);
		if (size > iov.iov_len)
			size = iov.iov_len;
		memcpy(&bv, img + XSTATE_HDR_OFFSET, sizeof(bv));
		bv &= features;
		memcpy(img + XSTATE_HDR_OFFSET, &bv, sizeof(bv));
		sw[0] = FP_XSTATE_MAGIC1;
		sw[1] = size + 4;		/* extended_size */
		memcpy(&sw[2], &features, 8);	/* xfeatures */
		sw[4] = size;			/* xstate_size */
		memcpy(img + XSTATE_SW_OFFSET, sw, sizeof(sw));
		sw[0] = FP_XSTATE_MAGIC2;
		memcpy(img + size, &sw[0], 4);
		return size + 4;
	}
	/* No XSAVE regset: the legacy FXSAVE area only. */
	iov.iov_len = 512;
	if (ptrace(PTRACE_GETFPREGS, v->worker, 0, img)) {
		set_err(v, "PTRACE_GETFPREGS %d: %s", v->worker, strerror(errno));
		return (size_t)-1;
	}
	memset(img + XSTATE_SW_OFFSET, 0, 48);
	return 512;
}

/* Apply the kernel's syscall-restart rules to registers we will restore. */
static void fix_restart(struct user_regs_struct *r)
{
	if ((long)r->orig_rax < 0)
		return;
	switch (-(long)r->rax) {
	case K_ERESTARTSYS:
	case K_ERESTARTNOINTR:
	case K_ERESTARTNOHAND:
		r->rax = r->orig_rax;	/* run the syscall again */
		r->rip -= 2;
		break;
	case K_ERESTART_RESTARTBLOCK:
		/* rt_sigreturn clears the restart block: report EINTR. */
		r->rax = -EINTR;
		break;
	}
}

/* Arm @tid as the worker: write its restore frame, point it at "ret". */
static int arm_worker(struct vsm_victim *v, const struct user_regs_struct *orig)
{
	struct user_regs_struct r = *orig;
	struct k_rt_sigframe fr;
	uint64_t mask = 0, all = ~0ULL, top, fp, need;
	uint8_t *img;
	size_t fplen;
	struct map_ent vma;
	int ret = -1;

	if (ptrace(PTRACE_GETSIGMASK, v->worker, sizeof(mask), &mask)) {
		set_err(v, "PTRACE_GETSIGMASK %d: %s", v->worker, strerror(errno));
		return -1;
	}
	img = aligned_alloc(64, XSTATE_BUF_MAX);
	if (!img) {
		set_err(v, "out of memory");
		return -1;
	}
	fplen = build_fpstate(v, img, XSTATE_BUF_MAX - 8);
	if (fplen == (size_t)-1)
		goto out;

	top = orig->rsp - RED_ZONE - 64;
	fp = (top - fplen) & ~63ULL;
	v->frame = ((fp - sizeof(fr)) & ~15ULL) - 8;
	v->scratch = (v->frame - SCRATCH_LEN) & ~63ULL;
	need = orig->rsp - v->scratch;
	if (!writable_vma_of(v->pid, v->scratch, &vma) ||
	    vma.end < orig->rsp) {
		set_err(v, "thread %d: no %llu bytes of stack below its stack pointer",
			v->worker, (unsigned long long)need);
		goto out;
	}

	fix_restart(&r);
	memset(&fr, 0, sizeof(fr));
	fr.pretcode = v->gadget_restore;
	fr.uc.uc_flags = UC_SIGCONTEXT_SS | UC_STRICT_RESTORE_SS |
			 (fplen > 512 ? UC_FP_XSTATE : 0);
	/*
	 * An invalid ss_flags makes rt_sigreturn's sigaltstack() fail, and
	 * it ignores the failure: the thread's alternate stack is left as it
	 * is, which ptrace cannot read.
	 */
	fr.uc.uc_stack.ss_flags = 3;
	fr.uc.uc_mcontext = (struct k_sigcontext){
		.r8 = r.r8, .r9 = r.r9, .r10 = r.r10, .r11 = r.r11,
		.r12 = r.r12, .r13 = r.r13, .r14 = r.r14, .r15 = r.r15,
		.rdi = r.rdi, .rsi = r.rsi, .rbp = r.rbp, .rbx = r.rbx,
		.rdx = r.rdx, .rax = r.rax, .rcx = r.rcx, .rsp = r.rsp,
		.rip = r.rip, .eflags = r.eflags, .cs = r.cs, .ss = r.ss,
		.fpstate = fp,
	};
	fr.uc.uc_sigmask = mask;

	if (vsm_inject_write(v, fp, img, fplen) ||
	    vsm_inject_write(v, v->frame, &fr, sizeof(fr))) {
		set_err(v, "writing the restore frame into %d: %s", v->pid,
			strerror(errno));
		goto out;
	}
	/* From here on the thread can leave by itself: ret -> rt_sigreturn. */
	v->armed = *orig;
	v->armed.rip = v->gadget_syscall + 2;
	v->armed.rsp = v->frame;
	v->armed.orig_rax = -1;		/* no restart handling on resume */
	if (ptrace(PTRACE_SETREGS, v->worker, 0, &v->armed)) {
		set_err(v, "PTRACE_SETREGS %d: %s", v->worker, strerror(errno));
		goto out;
	}
	/* Signals wait while we inject; the frame's mask is restored after. */
	if (ptrace(PTRACE_SETSIGMASK, v->worker, sizeof(all), &all)) {
		set_err(v, "PTRACE_SETSIGMASK %d: %s", v->worker, strerror(errno));
		goto out;
	}
	ret = 0;
out:
	free(img);
	return ret;
}

static int pick_worker(struct vsm_victim *v)
{
	int best = -1, best_score = -1;
	struct user_regs_struct best_regs;

	for (int i = 0; i < v->nthreads; i++) {
		struct user_regs_struct r;
		struct map_ent vma;
		int score;

		if (ptrace(PTRACE_GETREGS, v->threads[i].tid, 0, &r))
			continue;
		if (temp_sigmask_syscall(&r))
			continue;
		if (!writable_vma_of(v->pid, r.rsp - RED_ZONE - SCRATCH_LEN - 16384, &vma))
			continue;
		/* Prefer threads whose restart we can reproduce exactly. */
		score = (long)r.orig_rax >= 0 &&
			-(long)r.rax == K_ERESTART_RESTARTBLOCK ? 1 : 2;
		if (score > best_score) {
			best = i;
			best_score = score;
			best_regs = r;
		}
	}
	if (best < 0) {
		set_err(v, "no thread of %d can run injected syscalls (stack or signal mask)",
			v->pid);
		return -1;
	}
	v->worker = v->threads[best].tid;
	return arm_worker(v, &best_regs);
}

struct vsm_victim *vsm_inject_seize(pid_t pid, char *err, size_t errlen)
{
	struct vsm_victim *v = calloc(1, sizeof(*v));
	int saved;

	if (!v) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	v->pid = pid;
	if (find_gadgets(v) || seize_all(v) || pick_worker(v)) {
		saved = errno;
		snprintf(err, errlen, "%s", v->err);
		/*
		 * The worker may already be armed: detaching lets it return
		 * through its frame.
		 */
		detach_all(v);
		free(v->threads);
		free(v);
		errno = saved;
		return NULL;
	}
	return v;
}

static int wait_syscall_stop(struct vsm_victim *v, int op, long *val)
{
	struct {
		uint8_t op;
		uint8_t pad[3];
		uint32_t arch;
		uint64_t ip, sp;
		union {
			struct { uint64_t nr, args[6]; } entry;
			struct { int64_t rval; uint8_t is_error; } exit;
		};
	} info;
	int st, r;

	for (;;) {
		r = wait_tid_ms(v->worker, &st, SYSCALL_MS);
		if (r <= 0) {
			set_err(v, "worker %d: no syscall stop within %d ms",
				v->worker, SYSCALL_MS);
			return -1;
		}
		if (WIFEXITED(st) || WIFSIGNALED(st)) {
			find_thread(v, v->worker)->stopped = false;
			set_err(v, "process %d died during an injected syscall",
				v->pid);
			return -1;
		}
		if (WIFSTOPPED(st) && WSTOPSIG(st) == (SIGTRAP | 0x80))
			break;
		if (WIFSTOPPED(st) && st >> 16 == PTRACE_EVENT_STOP) {
			/* A group stop (SIGSTOP from outside): go on. */
			ptrace(PTRACE_SYSCALL, v->worker, 0, 0);
			continue;
		}
		if (WIFSTOPPED(st)) {
			/* Signals are blocked: only a fault can come here. */
			set_err(v, "worker %d got signal %d during an injected syscall",
				v->worker, WSTOPSIG(st));
			return -1;
		}
	}
	if (ptrace(PTRACE_GET_SYSCALL_INFO, v->worker, sizeof(info), &info) <= 0) {
		set_err(v, "PTRACE_GET_SYSCALL_INFO: %s", strerror(errno));
		return -1;
	}
	if (info.op != op) {
		set_err(v, "worker %d: unexpected syscall stop %d", v->worker,
			info.op);
		return -1;
	}
	*val = op == PTRACE_SYSCALL_INFO_ENTRY ? (long)info.entry.nr :
						 (long)info.exit.rval;
	return 0;
}

int vsm_inject_syscall(struct vsm_victim *v, long nr, const long args[6],
		       long *ret)
{
	struct user_regs_struct r = v->armed;
	long got;

	r.rip = v->gadget_syscall;
	r.rax = nr;
	r.rdi = args[0];
	r.rsi = args[1];
	r.rdx = args[2];
	r.r10 = args[3];
	r.r8 = args[4];
	r.r9 = args[5];
	if (ptrace(PTRACE_SETREGS, v->worker, 0, &r) ||
	    ptrace(PTRACE_SYSCALL, v->worker, 0, 0)) {
		set_err(v, "ptrace on worker %d: %s", v->worker, strerror(errno));
		return -1;
	}
	if (wait_syscall_stop(v, PTRACE_SYSCALL_INFO_ENTRY, &got))
		return -1;
	if (got != nr) {
		set_err(v, "worker %d entered syscall %ld, not %ld", v->worker,
			got, nr);
		return -1;
	}
	if (ptrace(PTRACE_SYSCALL, v->worker, 0, 0)) {
		set_err(v, "PTRACE_SYSCALL %d: %s", v->worker, strerror(errno));
		return -1;
	}
	if (wait_syscall_stop(v, PTRACE_SYSCALL_INFO_EXIT, &got))
		return -1;
	/* An interrupted call (signals are blocked, so unlikely) is EINTR. */
	if (got <= -K_ERESTARTSYS && got >= -K_ERESTART_RESTARTBLOCK)
		got = -EINTR;
	*ret = got;
	/* The worker now sits on the "ret" into its frame: armed again. */
	return 0;
}

long vsm_inject(struct vsm_victim *v, long nr, long a0, long a1, long a2,
		long a3, long a4, long a5)
{
	long args[6] = { a0, a1, a2, a3, a4, a5 }, ret;

	if (vsm_inject_syscall(v, nr, args, &ret))
		return -VSM_INJECT_FAILED;
	return ret;
}

uint64_t vsm_inject_scratch(struct vsm_victim *v, size_t *len)
{
	*len = SCRATCH_LEN;
	return v->scratch;
}

int vsm_inject_write(struct vsm_victim *v, uint64_t raddr, const void *buf,
		     size_t len)
{
	struct iovec l = { (void *)buf, len };
	struct iovec r = { (void *)(uintptr_t)raddr, len };
	ssize_t n = process_vm_writev(v->pid, &l, 1, &r, 1, 0);

	if (n == (ssize_t)len)
		return 0;
	if (n >= 0)
		errno = EFAULT;
	return -1;
}

int vsm_inject_read(struct vsm_victim *v, uint64_t raddr, void *buf,
		    size_t len)
{
	struct iovec l = { buf, len };
	struct iovec r = { (void *)(uintptr_t)raddr, len };
	ssize_t n = process_vm_readv(v->pid, &l, 1, &r, 1, 0);

	if (n == (ssize_t)len)
		return 0;
	if (n >= 0)
		errno = EFAULT;
	return -1;
}

pid_t vsm_inject_pid(const struct vsm_victim *v)
{
	return v->pid;
}

pid_t vsm_inject_worker(const struct vsm_victim *v)
{
	return v->worker;
}

int vsm_inject_nthreads(const struct vsm_victim *v)
{
	return v->nthreads;
}

const char *vsm_inject_error(const struct vsm_victim *v)
{
	return v->err;
}

int vsm_inject_release(struct vsm_victim *v)
{
	int ret = 0;

	if (!v)
		return 0;
	/*
	 * Every thread, the worker included, just resumes: the worker sits
	 * on "ret" with its stack pointer on the restore frame, so it goes
	 * through rt_sigreturn back to where it was seized.
	 */
	for (int i = 0; i < v->nthreads; i++) {
		if (!v->threads[i].stopped)
			continue;
		if (ptrace(PTRACE_DETACH, v->threads[i].tid, 0, 0) &&
		    errno != ESRCH)
			ret = -1;
	}
	free(v->threads);
	free(v);
	return ret;
}

void vsm_inject_abandon(struct vsm_victim *v)
{
	if (!v)
		return;
	free(v->threads);
	free(v);
}
