// SPDX-License-Identifier: GPL-2.0
/*
 * The QEMU hand-off test guest: a freestanding multiboot v1 kernel (32-bit,
 * no paging).  It fills guest RAM from 2 MiB to the top with a pattern
 * that depends on each word's address, then checks all of it again and
 * again, printing on COM1:
 *
 *   vsm-guest fill <MiB> MiB
 *   ok <round> <MiB>           every round that found the pattern intact
 *   BAD <addr> <got> <want>    a word that changed (then it stops checking)
 *
 * Kernel command line (-append): "idle" fills once and then halts in a
 * loop without checking (for benchmarks); "mib=N" limits the filled size;
 * "churn" rewrites every word after checking it, with the next round's
 * key, so that every page changes all the time (a page a migration sent
 * early is stale soon after).
 */
#include <stdint.h>

#define MB_MAGIC	0x1badb002u
#define MB_FLAGS	0x00000002u	/* give us the memory size */
#define COM1		0x3f8
#define FILL_START	(2u << 20)

__attribute__((section(".multiboot"), aligned(4), used))
static const uint32_t mb_header[3] = { MB_MAGIC, MB_FLAGS,
				       -(MB_MAGIC + MB_FLAGS) };

struct mb_info {
	uint32_t flags, mem_lower, mem_upper, boot_device, cmdline;
};

uint8_t vsm_stack[16384] __attribute__((aligned(16)));

static inline void outb(uint16_t port, uint8_t v)
{
	__asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port));
}

static inline uint8_t inb(uint16_t port)
{
	uint8_t v;

	__asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}

static void putc(char c)
{
	while (!(inb(COM1 + 5) & 0x20))
		;
	outb(COM1, c);
}

static void puts(const char *s)
{
	while (*s)
		putc(*s++);
}

static void putu(uint32_t v)
{
	char b[11];
	int i = 10;

	b[i] = 0;
	do {
		b[--i] = '0' + v % 10;
		v /= 10;
	} while (v);
	puts(b + i);
}

static void putx(uint32_t v)
{
	puts("0x");
	for (int i = 28; i >= 0; i -= 4)
		putc("0123456789abcdef"[(v >> i) & 15]);
}

/* What the word at @a holds: distinct for every address (and key). */
static inline uint32_t pattern(uint32_t a, uint32_t key)
{
	uint32_t x = a * 2654435761u;

	return (x ^ (x >> 15) ^ 0x5eed0000u) ^ key;
}

#define KEY_STEP	0x9e3779b9u

static int has_word(const char *s, const char *w)
{
	for (; *s; s++) {
		const char *p = s, *q = w;

		while (*q && *p == *q)
			p++, q++;
		if (!*q && (*p == ' ' || !*p))
			return 1;
	}
	return 0;
}

static uint32_t mib_arg(const char *s)
{
	for (; *s; s++) {
		if (s[0] == 'm' && s[1] == 'i' && s[2] == 'b' && s[3] == '=') {
			uint32_t v = 0;

			for (s += 4; *s >= '0' && *s <= '9'; s++)
				v = v * 10 + (*s - '0');
			return v;
		}
	}
	return 0;
}

void vsm_main(uint32_t magic, const struct mb_info *mb)
{
	const char *cmd = (mb->flags & 4) ? (const char *)mb->cmdline : "";
	uint32_t top = (1u << 20) + mb->mem_upper * 1024u;
	uint32_t lim = mib_arg(cmd), round = 0, key = 0;
	int churn = has_word(cmd, "churn");
	volatile uint32_t *p;

	(void)magic;
	if (lim && FILL_START + (lim << 20) < top)
		top = FILL_START + (lim << 20);
	top &= ~4095u;
	puts("vsm-guest fill ");
	putu((top - FILL_START) >> 20);
	puts(" MiB\n");
	for (p = (uint32_t *)FILL_START; (uint32_t)p < top; p++)
		*p = pattern((uint32_t)p, 0);
	puts("vsm-guest filled\n");
	if (has_word(cmd, "idle"))
		for (;;)
			__asm__ volatile("hlt");
	for (;;) {
		for (p = (uint32_t *)FILL_START; (uint32_t)p < top; p++) {
			uint32_t want = pattern((uint32_t)p, key);

			if (*p != want) {
				puts("BAD ");
				putx((uint32_t)p);
				puts(" ");
				putx(*p);
				puts(" ");
				putx(want);
				puts("\n");
				for (;;)
					__asm__ volatile("cli; hlt");
			}
			if (churn)
				*p = want ^ key ^ (key + KEY_STEP);
		}
		if (churn)
			key += KEY_STEP;
		puts("ok ");
		putu(++round);
		puts(" ");
		putu((top - FILL_START) >> 20);
		puts("\n");
	}
}

__asm__(".globl _start\n"
	"_start:\n"
	"	mov $vsm_stack + 16384, %esp\n"
	"	push %ebx\n"
	"	push %eax\n"
	"	call vsm_main\n"
	"1:	cli\n"
	"	hlt\n"
	"	jmp 1b\n");
