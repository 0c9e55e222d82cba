// SPDX-License-Identifier: GPL-2.0
#define _GNU_SOURCE
#include "dup.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/io_uring.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

/*
 * The system call itself: glibc's mremap() (2.36) fails every flag above
 * MREMAP_DONTUNMAP with EINVAL before asking the kernel.
 */
void *dup_mremap(void *addr, size_t old_len, size_t new_len,
		 unsigned long flags, void *to)
{
	return (void *)syscall(SYS_mremap, addr, old_len, new_len, flags, to);
}

void *dup_range(void *addr, size_t len)
{
	return dup_mremap(addr, len, len, MREMAP_MAYMOVE | MREMAP_DUP, NULL);
}

void *dup_range_fixed(void *addr, size_t len, void *to)
{
	return dup_mremap(addr, len, len,
			  MREMAP_MAYMOVE | MREMAP_DUP | MREMAP_FIXED, to);
}

bool dup_supported(void)
{
	size_t ps = getpagesize();
	char *p = mmap(NULL, ps, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	void *d;

	if (p == MAP_FAILED)
		return false;
	p[0] = 1;
	d = dup_range(p, ps);
	if (d != MAP_FAILED)
		munmap(d, ps);
	munmap(p, ps);
	return d != MAP_FAILED;
}

long long smaps_vma_kb(const void *start, const char *name)
{
	size_t n = strlen(name);
	unsigned long lo, hi;
	long long val = -1;
	char line[512];
	bool in = false;
	FILE *f = fopen("/proc/self/smaps", "re");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		/* A VMA's header: "lo-hi perms ..." */
		if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2) {
			if (in)
				break;
			in = lo <= (unsigned long)start && (unsigned long)start < hi;
			continue;
		}
		if (in && strncmp(line, name, n) == 0 && line[n] == ':') {
			sscanf(line + n + 1, "%lld", &val);
			break;
		}
	}
	fclose(f);
	return val;
}

int sysfs_swap(const char *path, const char *s, char *old, size_t old_len)
{
	char buf[256];
	ssize_t n;
	int fd = open(path, O_RDWR | O_CLOEXEC);

	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	if (n < 0) {
		close(fd);
		return -1;
	}
	buf[n] = 0;
	/* "always [madvise] never": keep the bracketed choice, else the word */
	if (old && old_len) {
		char *b = strchr(buf, '['), *e = b ? strchr(b, ']') : NULL;

		if (b && e) {
			*e = 0;
			snprintf(old, old_len, "%s", b + 1);
		} else {
			buf[strcspn(buf, " \n")] = 0;
			snprintf(old, old_len, "%s", buf);
		}
	}
	n = pwrite(fd, s, strlen(s), 0);
	close(fd);
	return n == (ssize_t)strlen(s) ? 0 : -1;
}

int dup_pin_io_uring(void *addr, size_t len, char *why, size_t why_len)
{
	struct io_uring_params params = { 0 };
	struct iovec iov = { .iov_base = addr, .iov_len = len };
	int fd = syscall(__NR_io_uring_setup, 1, &params);

	if (fd < 0) {
		snprintf(why, why_len, "io_uring_setup: %s", strerror(errno));
		return -1;
	}
	if (syscall(__NR_io_uring_register, fd, IORING_REGISTER_BUFFERS, &iov, 1)) {
		snprintf(why, why_len, "IORING_REGISTER_BUFFERS: %s", strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}
