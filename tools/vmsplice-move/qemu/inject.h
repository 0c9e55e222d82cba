/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Syscall injection into another process with ptrace (x86-64), in the
 * manner of CRIU's compel: seize every thread, run system calls in one of
 * them, restore it, release them all.
 *
 * Crash safety: the worker thread is never left in a state it cannot
 * leave by itself.  At seize time a signal frame holding its original
 * registers, signal mask and FPU state is written below its stack pointer
 * and the thread is pointed at a "ret" whose return address is the C
 * library's rt_sigreturn trampoline.  Every injected syscall runs at a
 * "syscall; ret" found in the victim's own code, with the stack pointer on
 * that frame.  So if the injecting process dies at any instant, the
 * kernel detaches it, the thread finishes the syscall in flight (if any),
 * returns through rt_sigreturn and carries on exactly where it was
 * interrupted.  The normal release takes the same path (it only detaches),
 * so every run exercises the crash path.  No code in the victim is
 * modified.
 */
#ifndef VSM_QEMU_INJECT_H
#define VSM_QEMU_INJECT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct vsm_victim;

/*
 * vsm_inject_seize - PTRACE_SEIZE and PTRACE_INTERRUPT every thread of
 * @pid, choose a worker thread and arm it (see above).  On failure returns
 * NULL, with the reason in @err (never NULL-terminated beyond @errlen) and
 * errno set (EPERM: ptrace refused); nothing stays attached.
 */
struct vsm_victim *vsm_inject_seize(pid_t pid, char *err, size_t errlen);

/*
 * vsm_inject_syscall - run syscall @nr with @args in the worker thread,
 * with every signal blocked.  Returns 0 and the kernel's raw return value
 * in *@ret (-errno on error), or -1 when the injection itself failed (the
 * victim died, ptrace failed); vsm_inject_error() says why.
 */
int vsm_inject_syscall(struct vsm_victim *v, long nr, const long args[6],
		       long *ret);

/* Convenience wrapper: the raw result, or a large negative value
 * (-VSM_INJECT_FAILED) when the injection failed. */
#define VSM_INJECT_FAILED 100000L
long vsm_inject(struct vsm_victim *v, long nr, long a0, long a1, long a2,
		long a3, long a4, long a5);

/*
 * Scratch memory in the victim for syscall arguments (iovecs, buffers):
 * @len bytes at the returned remote address, below the restore frame on
 * the worker's stack.  Valid until vsm_inject_release().
 */
uint64_t vsm_inject_scratch(struct vsm_victim *v, size_t *len);

/* process_vm_writev/readv of the victim; 0 or -1 with errno. */
int vsm_inject_write(struct vsm_victim *v, uint64_t raddr, const void *buf,
		     size_t len);
int vsm_inject_read(struct vsm_victim *v, uint64_t raddr, void *buf,
		    size_t len);

/* The victim's pid, the worker's tid, the number of threads seized. */
pid_t vsm_inject_pid(const struct vsm_victim *v);
pid_t vsm_inject_worker(const struct vsm_victim *v);
int vsm_inject_nthreads(const struct vsm_victim *v);

/* The last error message. */
const char *vsm_inject_error(const struct vsm_victim *v);

/*
 * vsm_inject_release - detach every thread; the worker returns through its
 * restore frame to the state it was seized in.  Frees @v.  Returns 0, or -1
 * when some thread could not be detached (it died meanwhile).
 */
int vsm_inject_release(struct vsm_victim *v);

/*
 * vsm_inject_abandon - for tests: free @v without detaching, as a killed
 * injector would (the kernel detaches when this process exits).
 */
void vsm_inject_abandon(struct vsm_victim *v);

/*
 * The start time of @pid (field 22 of /proc/PID/stat), 0 if gone: with the
 * pid it names one process across pid reuse (the journal records it too).
 */
unsigned long long vsm_proc_starttime(pid_t pid);

#endif
