/* SPDX-License-Identifier: GPL-2.0 */
/* Physical page frame numbers of user addresses, from /proc/self/pagemap. */
#ifndef VMSPLICE_TESTS_PAGEMAP_H
#define VMSPLICE_TESTS_PAGEMAP_H

#include <stdbool.h>
#include <stdint.h>

/* Open /proc/self/pagemap; -1 with errno set on failure. */
int pagemap_open(void);

/* The raw 64-bit pagemap entry of the page holding @addr (0 on error). */
uint64_t pagemap_entry(int fd, const void *addr);

/* Whether @addr is backed by a present page. */
bool pagemap_present(int fd, const void *addr);

/*
 * The PFN of the page holding @addr, or 0 when the page is not present or
 * the PFN is hidden (the kernel shows PFNs to CAP_SYS_ADMIN only).
 */
uint64_t pagemap_pfn(int fd, const void *addr);

/* Whether PFNs are visible to this process (root): probes a fresh page. */
bool pagemap_pfns_visible(int fd);

#endif
