// SPDX-License-Identifier: GPL-2.0
/*
 * The ptrace syscall injector of the QEMU hand-off (tools/vmsplice-move/
 * qemu/inject.c): injected syscalls run in the victim and return their
 * results; the victim carries on afterwards with its registers (vector
 * registers included), its signal mask and its interrupted system calls
 * intact -- also when the injecting process is killed in the middle.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "kselftest_harness.h"
#include "../tools/vmsplice-move/qemu/inject.h"

/* Shared between the test and its victim. */
struct shared {
	atomic_long beats;	/* the victim's loop count */
	atomic_int bad;		/* the victim saw a register change */
	atomic_long got;	/* what the blocked victim read */
	atomic_int done;
};

static long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Poll @cond for up to @ms milliseconds. */
#define WAIT_FOR(cond, ms) ({						\
	long __end = now_ms() + (ms);					\
	while (!(cond) && now_ms() < __end)				\
		usleep(1000);						\
	(cond); })

/*
 * Victim: spin with known values in xmm8/xmm9 (and ymm8's upper half when
 * the CPU has AVX), checking them on every round.  An injector that lost
 * the FPU state would leave them zeroed.
 */
static void spin_victim(struct shared *sh)
{
	static const uint64_t a[4] __attribute__((aligned(32))) = {
		0x0123456789abcdefULL, 0xfedcba9876543210ULL,
		0x1111222233334444ULL, 0x5555666677778888ULL };
	bool avx = __builtin_cpu_supports("avx2");

	asm volatile("movdqa %0, %%xmm8\n\tmovdqa %0, %%xmm9" :: "m"(a[0])
		     : "xmm8", "xmm9");
	if (avx)
		asm volatile("vmovdqa %0, %%ymm10" :: "m"(a[0]) : "xmm10");
	for (;;) {
		int m1, m2, m3 = -1;

		asm volatile("movdqa %%xmm8, %%xmm0\n\t"
			     "pcmpeqb %2, %%xmm0\n\t"
			     "pmovmskb %%xmm0, %0\n\t"
			     "movdqa %%xmm9, %%xmm1\n\t"
			     "pcmpeqb %2, %%xmm1\n\t"
			     "pmovmskb %%xmm1, %1"
			     : "=r"(m1), "=r"(m2) : "m"(a[0]) : "xmm0", "xmm1");
		if (avx)
			asm volatile("vpcmpeqb %1, %%ymm10, %%ymm2\n\t"
				     "vpmovmskb %%ymm2, %0"
				     : "=r"(m3) : "m"(a[0]) : "xmm2");
		if (m1 != 0xffff || m2 != 0xffff || m3 != -1)
			atomic_store(&sh->bad, 1);
		atomic_fetch_add(&sh->beats, 1);
	}
}

/* Victim: block in read() and report what arrives. */
static void read_victim(struct shared *sh, int rfd)
{
	long v = 0;
	ssize_t n = read(rfd, &v, sizeof(v));

	atomic_store(&sh->got, n == sizeof(v) ? v : -errno);
	atomic_store(&sh->done, 1);
	for (;;)
		pause();
}

FIXTURE(inject) {
	struct shared *sh;
	pid_t victim;
	int pfd[2];
};

FIXTURE_SETUP(inject)
{
	self->sh = mmap(NULL, sizeof(*self->sh), PROT_READ | PROT_WRITE,
			MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, self->sh);
	memset(self->sh, 0, sizeof(*self->sh));
	ASSERT_EQ(0, pipe(self->pfd));
	self->victim = 0;
}

FIXTURE_TEARDOWN(inject)
{
	if (self->victim > 0) {
		kill(self->victim, SIGKILL);
		waitpid(self->victim, NULL, 0);
	}
}

static pid_t start_spinner(struct shared *sh)
{
	pid_t pid = fork();

	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		spin_victim(sh);
	}
	return pid;
}

/* The victim advances by @n beats within a second. */
static bool beating(struct shared *sh, long n)
{
	long b0 = atomic_load(&sh->beats);

	return WAIT_FOR(atomic_load(&sh->beats) > b0 + n, 2000);
}

/* Whether @pid sleeps in syscall @nr (/proc/PID/syscall: "running" else). */
static bool in_syscall(pid_t pid, long nr)
{
	char path[64], line[64] = "";
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/syscall", pid);
	f = fopen(path, "r");
	if (!f)
		return false;
	if (!fgets(line, sizeof(line), f))
		line[0] = 0;
	fclose(f);
	return line[0] >= '0' && line[0] <= '9' && atol(line) == nr;
}

static uint64_t sigblk(pid_t pid)
{
	char path[64], line[256];
	unsigned long long m = ~0ULL;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	f = fopen(path, "r");
	if (!f)
		return m;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "SigBlk: %llx", &m) == 1)
			break;
	fclose(f);
	return m;
}

/* Injected getpid/mmap/munmap return the victim's results. */
TEST_F(inject, syscalls_run_in_victim)
{
	char err[256];
	struct vsm_victim *v;
	long addr, r;
	char buf[16] = "hello victim";

	self->victim = start_spinner(self->sh);
	ASSERT_TRUE(beating(self->sh, 1000));
	v = vsm_inject_seize(self->victim, err, sizeof(err));
	ASSERT_NE(NULL, v) TH_LOG("%s", err);
	EXPECT_EQ(self->victim, vsm_inject(v, SYS_getpid, 0, 0, 0, 0, 0, 0));
	addr = vsm_inject(v, SYS_mmap, 0, 4096, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_GT(addr, 0);
	ASSERT_EQ(0, vsm_inject_write(v, addr, buf, sizeof(buf)));
	memset(buf, 0, sizeof(buf));
	ASSERT_EQ(0, vsm_inject_read(v, addr, buf, sizeof(buf)));
	EXPECT_STREQ("hello victim", buf);
	r = vsm_inject(v, SYS_close, 987654, 0, 0, 0, 0, 0);
	EXPECT_EQ(-EBADF, r);
	EXPECT_EQ(0, vsm_inject(v, SYS_munmap, addr, 4096, 0, 0, 0, 0));
	/* While seized, the victim does not run. */
	long b = atomic_load(&self->sh->beats);

	usleep(20000);
	EXPECT_EQ(b, atomic_load(&self->sh->beats));
	ASSERT_EQ(0, vsm_inject_release(v));
	EXPECT_TRUE(beating(self->sh, 1000));
	EXPECT_EQ(0, atomic_load(&self->sh->bad));
}

/* A thread seized in userspace gets its vector registers back. */
TEST_F(inject, vector_registers_survive)
{
	char err[256];

	self->victim = start_spinner(self->sh);
	ASSERT_TRUE(beating(self->sh, 1000));
	for (int i = 0; i < 20; i++) {
		struct vsm_victim *v = vsm_inject_seize(self->victim, err,
							sizeof(err));

		ASSERT_NE(NULL, v) TH_LOG("%s", err);
		/* Clobber the vector registers inside the victim's kernel
		 * entry as little as we can: a syscall does not touch them,
		 * so what matters is the restore path. */
		EXPECT_EQ(self->victim, vsm_inject(v, SYS_getpid, 0, 0, 0, 0, 0, 0));
		ASSERT_EQ(0, vsm_inject_release(v));
		ASSERT_TRUE(beating(self->sh, 100));
	}
	EXPECT_EQ(0, atomic_load(&self->sh->bad));
}

/* A victim seized inside a blocking read() gets its read restarted. */
TEST_F(inject, interrupted_syscall_restarts)
{
	char err[256];
	struct vsm_victim *v;
	long val = 0x5eed;
	uint64_t mask;

	self->victim = fork();
	ASSERT_GE(self->victim, 0);
	if (self->victim == 0) {
		sigset_t s;

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		sigemptyset(&s);
		sigaddset(&s, SIGUSR2);
		sigprocmask(SIG_BLOCK, &s, NULL);
		read_victim(self->sh, self->pfd[0]);
	}
	/* Wait until it sleeps in read(). */
	ASSERT_TRUE(WAIT_FOR(in_syscall(self->victim, SYS_read), 2000));
	mask = sigblk(self->victim);
	v = vsm_inject_seize(self->victim, err, sizeof(err));
	ASSERT_NE(NULL, v) TH_LOG("%s", err);
	EXPECT_EQ(self->victim, vsm_inject(v, SYS_getpid, 0, 0, 0, 0, 0, 0));
	ASSERT_EQ(0, vsm_inject_release(v));
	/* Not EINTR: the read is still waiting, and then gets the data. */
	usleep(20000);
	EXPECT_EQ(0, atomic_load(&self->sh->done));
	ASSERT_EQ(sizeof(val), write(self->pfd[1], &val, sizeof(val)));
	ASSERT_TRUE(WAIT_FOR(atomic_load(&self->sh->done), 2000));
	EXPECT_EQ(val, atomic_load(&self->sh->got));
	EXPECT_EQ(mask, sigblk(self->victim));
}

/*
 * The injector dies while an injected syscall runs in the victim: the
 * syscall finishes and the victim returns through its restore frame.
 */
static void killed_injector(struct __test_metadata *_metadata,
			    FIXTURE_DATA(inject) *self, bool during_syscall)
{
	uint64_t mask;
	pid_t inj;
	int st;

	self->victim = start_spinner(self->sh);
	ASSERT_TRUE(beating(self->sh, 1000));
	mask = sigblk(self->victim);
	inj = fork();
	ASSERT_GE(inj, 0);
	if (inj == 0) {
		char err[256];
		struct vsm_victim *v;

		/* A failed ASSERT below must not leave it pausing forever. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		v = vsm_inject_seize(self->victim, err, sizeof(err));

		if (!v)
			_exit(2);
		atomic_store(&self->sh->done, 1);
		if (during_syscall) {
			/*
			 * read(2) of the fixture's pipe inside the victim (it
			 * has the fd from fork), into its scratch: it blocks
			 * until the test writes, after this injector is gone.
			 */
			size_t len;
			uint64_t buf = vsm_inject_scratch(v, &len);

			vsm_inject(v, SYS_read, self->pfd[0], buf, 8, 0, 0, 0);
		}
		for (;;)
			pause();
	}
	ASSERT_TRUE(WAIT_FOR(atomic_load(&self->sh->done), 5000));
	if (during_syscall) {
		ASSERT_TRUE(WAIT_FOR(in_syscall(self->victim, SYS_read), 10000));
	}
	long b = atomic_load(&self->sh->beats);

	ASSERT_EQ(0, kill(inj, SIGKILL));
	ASSERT_EQ(inj, waitpid(inj, &st, 0));
	if (during_syscall) {
		uint64_t val = 0x5eed, left;

		/* The injected read is still waiting: give it its data. */
		ASSERT_EQ(sizeof(val), write(self->pfd[1], &val, sizeof(val)));
		/* It finishes the syscall and then spins on, intact. */
		ASSERT_TRUE(WAIT_FOR(atomic_load(&self->sh->beats) > b + 1000, 10000));
		/* ... and the read took the 8 bytes: nothing left in the pipe. */
		fcntl(self->pfd[0], F_SETFL, O_NONBLOCK);
		EXPECT_EQ(-1, read(self->pfd[0], &left, sizeof(left)));
		EXPECT_EQ(EAGAIN, errno);
	}
	/* It spins on, intact. */
	ASSERT_TRUE(WAIT_FOR(atomic_load(&self->sh->beats) > b + 1000, 10000));
	EXPECT_EQ(0, atomic_load(&self->sh->bad));
	EXPECT_EQ(mask, sigblk(self->victim));
}

TEST_F_TIMEOUT(inject, injector_killed_in_syscall, 30)
{
	killed_injector(_metadata, self, true);
}

TEST_F(inject, injector_killed_while_armed)
{
	killed_injector(_metadata, self, false);
}

/* A process already traced by someone else cannot be seized: EPERM. */
TEST_F(inject, refused_when_traced)
{
	char err[256];
	struct vsm_victim *v;
	pid_t tracer;
	int st;

	self->victim = start_spinner(self->sh);
	ASSERT_TRUE(beating(self->sh, 100));
	tracer = fork();
	ASSERT_GE(tracer, 0);
	if (tracer == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (ptrace(PTRACE_SEIZE, self->victim, 0, 0))
			_exit(1);
		atomic_store(&self->sh->done, 1);
		for (;;)
			pause();
	}
	ASSERT_TRUE(WAIT_FOR(atomic_load(&self->sh->done), 2000));
	errno = 0;
	v = vsm_inject_seize(self->victim, err, sizeof(err));
	EXPECT_EQ(NULL, v);
	EXPECT_EQ(EPERM, errno);
	EXPECT_NE(NULL, strstr(err, "refused")) TH_LOG("%s", err);
	kill(tracer, SIGKILL);
	waitpid(tracer, &st, 0);
	EXPECT_TRUE(beating(self->sh, 100));
}

static void *spin_thread(void *arg)
{
	struct shared *sh = arg;

	for (;;)
		atomic_fetch_add(&sh->got, 1);
	return NULL;
}

/* Every thread stops while seized and runs again after. */
TEST_F(inject, all_threads_stop)
{
	char err[256];
	struct vsm_victim *v;
	long g;

	self->victim = fork();
	ASSERT_GE(self->victim, 0);
	if (self->victim == 0) {
		pthread_t t[3];

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		for (int i = 0; i < 3; i++)
			pthread_create(&t[i], NULL, spin_thread, self->sh);
		spin_victim(self->sh);
	}
	ASSERT_TRUE(WAIT_FOR(atomic_load(&self->sh->got) > 1000, 2000));
	ASSERT_TRUE(beating(self->sh, 100));
	v = vsm_inject_seize(self->victim, err, sizeof(err));
	ASSERT_NE(NULL, v) TH_LOG("%s", err);
	EXPECT_EQ(4, vsm_inject_nthreads(v));
	g = atomic_load(&self->sh->got);
	usleep(20000);
	EXPECT_EQ(g, atomic_load(&self->sh->got));
	EXPECT_EQ(self->victim, vsm_inject(v, SYS_getpid, 0, 0, 0, 0, 0, 0));
	ASSERT_EQ(0, vsm_inject_release(v));
	EXPECT_TRUE(WAIT_FOR(atomic_load(&self->sh->got) > g + 1000, 2000));
	EXPECT_TRUE(beating(self->sh, 100));
	EXPECT_EQ(0, atomic_load(&self->sh->bad));
}

TEST_HARNESS_MAIN
