/* SPDX-License-Identifier: GPL-2.0 */
#undef TRACE_SYSTEM
#define TRACE_SYSTEM vmsplice

#if !defined(_TRACE_VMSPLICE_H) || defined(TRACE_HEADER_MULTI_READ)
#define _TRACE_VMSPLICE_H

#include <linux/tracepoint.h>
#include <linux/vmsplice_move.h>

TRACE_DEFINE_ENUM(VMSPLICE_MOVED);
TRACE_DEFINE_ENUM(VMSPLICE_MOVED_ZERO);
TRACE_DEFINE_ENUM(VMSPLICE_FB_NOT_GIFT);
TRACE_DEFINE_ENUM(VMSPLICE_FB_PARTIAL);
TRACE_DEFINE_ENUM(VMSPLICE_FB_DST_VMA);
TRACE_DEFINE_ENUM(VMSPLICE_FB_DST_BUSY);
TRACE_DEFINE_ENUM(VMSPLICE_FB_NOT_ANON);
TRACE_DEFINE_ENUM(VMSPLICE_FB_KSM);
TRACE_DEFINE_ENUM(VMSPLICE_FB_LARGE);
TRACE_DEFINE_ENUM(VMSPLICE_FB_MAPPED);
TRACE_DEFINE_ENUM(VMSPLICE_FB_PINNED);
TRACE_DEFINE_ENUM(VMSPLICE_FB_REFS);
TRACE_DEFINE_ENUM(VMSPLICE_FB_SWAPCACHE);
TRACE_DEFINE_ENUM(VMSPLICE_FB_MEMCG);
TRACE_DEFINE_ENUM(VMSPLICE_FB_NUMA);
TRACE_DEFINE_ENUM(VMSPLICE_FB_HWPOISON);
TRACE_DEFINE_ENUM(VMSPLICE_FB_BUSY);

#define show_vmsplice_move_result(result)				\
	__print_symbolic(result,					\
			 { VMSPLICE_MOVED, "moved" },			\
			 { VMSPLICE_MOVED_ZERO, "moved_zero" },		\
			 { VMSPLICE_FB_NOT_GIFT, "not_gift" },		\
			 { VMSPLICE_FB_PARTIAL, "partial" },		\
			 { VMSPLICE_FB_DST_VMA, "dst_vma" },		\
			 { VMSPLICE_FB_DST_BUSY, "dst_busy" },		\
			 { VMSPLICE_FB_NOT_ANON, "not_anon" },		\
			 { VMSPLICE_FB_KSM, "ksm" },			\
			 { VMSPLICE_FB_LARGE, "large" },		\
			 { VMSPLICE_FB_MAPPED, "mapped" },		\
			 { VMSPLICE_FB_PINNED, "pinned" },		\
			 { VMSPLICE_FB_REFS, "refs" },			\
			 { VMSPLICE_FB_SWAPCACHE, "swapcache" },	\
			 { VMSPLICE_FB_MEMCG, "memcg" },		\
			 { VMSPLICE_FB_NUMA, "numa" },			\
			 { VMSPLICE_FB_HWPOISON, "hwpoison" },		\
			 { VMSPLICE_FB_BUSY, "busy" })

/*
 * Part of a pipe buffer read by vmsplice(SPLICE_F_MOVE): @nr pages moved
 * (or, for a zero page, cleared) at @addr, or copied there for the reason
 * given.  @pfn is the buffer's first page frame.
 */
TRACE_EVENT(vmsplice_move,
	    TP_PROTO(unsigned long addr, unsigned long pfn, unsigned long nr,
		     int result),
	    TP_ARGS(addr, pfn, nr, result),
	    TP_STRUCT__entry(__field(unsigned long, addr)
			     __field(unsigned long, pfn)
			     __field(unsigned long, nr)
			     __field(int, result)),
	    TP_fast_assign(__entry->addr = addr;
			   __entry->pfn = pfn;
			   __entry->nr = nr;
			   __entry->result = result;),
	    TP_printk("addr=0x%lx pfn=0x%lx nr=%lu result=%s",
		      __entry->addr, __entry->pfn, __entry->nr,
		      show_vmsplice_move_result(__entry->result))
);

#endif /* _TRACE_VMSPLICE_H */

/* This part must be outside protection */
#include <trace/define_trace.h>
