// SPDX-License-Identifier: GPL-2.0
/* vmsplice-move probe: what this kernel supports, for people and scripts. */
#define _GNU_SOURCE
#include "cmd.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>

static void help(void)
{
	printf("Usage: %s probe [--json] [--require KINDS]\n\n"
	       "Find out, without privilege, whether this kernel moves pages with\n"
	       "vmsplice(SPLICE_F_GIFT|SPLICE_F_UNMAP -> SPLICE_F_MOVE): checks the flag,\n"
	       "then gives a 4 KiB page, a THP and an mTHP folio to itself and looks at\n"
	       "what happened (giver reads zeros? data intact? counters, PFNs as root).\n\n"
	       "  -j, --json           machine-readable output (JSON) on stdout\n"
	       "  -r, --require KINDS  exit 5 unless every kind in the comma-separated\n"
	       "                       list moved: 4k, thp, mthp\n"
	       "  -h, --help           this help\n\n"
	       "Exit status: 0; 5 when --require is not met; 1 on failure.\n", VSM_CMD_NAME);
}

static const struct {
	const char *name;
	size_t off;
} kinds[] = {
	{ "4k", offsetof(struct vsm_probe, base) },
	{ "thp", offsetof(struct vsm_probe, thp) },
	{ "mthp", offsetof(struct vsm_probe, mthp) },
};

static const struct vsm_probe_case *kind_case(const struct vsm_probe *p, int i)
{
	return (const void *)((const char *)p + kinds[i].off);
}

static json_object *case_json(const struct vsm_probe_case *c)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "result",
			       json_object_new_string(vsm_probe_result_name(c->result)));
	json_object_object_add(o, "bytes", json_object_new_int64(c->bytes));
	json_object_object_add(o, "giver_reads_zero", json_object_new_boolean(c->src_unmapped));
	json_object_object_add(o, "moved_pages", json_object_new_int64(c->moved));
	json_object_object_add(o, "copied_pages", json_object_new_int64(c->copied));
	json_object_object_add(o, "thp", json_object_new_int64(c->thp));
	json_object_object_add(o, "large", json_object_new_int64(c->large));
	json_object_object_add(o, "why", json_object_new_string(c->why));
	return o;
}

static void print_json(const struct vsm_probe *p)
{
	json_object *o = json_object_new_object(), *cases = json_object_new_object();
	json_object *moves = json_object_new_object();

	json_object_object_add(o, "kernel", json_object_new_string(p->kernel));
	json_object_object_add(o, "unmap_flag", json_object_new_boolean(p->unmap_flag));
	json_object_object_add(o, "counters", json_object_new_boolean(p->counters));
	json_object_object_add(o, "pfns_visible", json_object_new_boolean(p->pfns_visible));
	json_object_object_add(o, "page_size", json_object_new_int64(p->page_size));
	json_object_object_add(o, "thp_size", json_object_new_int64(p->thp_size));
	json_object_object_add(o, "thp_enabled", json_object_new_string(p->thp_enabled));
	json_object_object_add(o, "mthp_size", json_object_new_int64(p->mthp_size));
	json_object_object_add(o, "pipe_max_size", json_object_new_int64(p->pipe_max_size));
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		json_object_object_add(cases, kinds[i].name, case_json(kind_case(p, i)));
		json_object_object_add(moves, kinds[i].name, json_object_new_boolean(
			kind_case(p, i)->result == VSM_PROBE_MOVED));
	}
	json_object_object_add(o, "cases", cases);
	json_object_object_add(o, "moves", moves);
	json_print(o);
}

static void print_human(const struct vsm_probe *p)
{
	char a[32];

	printf("kernel            %s\n", p->kernel);
	printf("SPLICE_F_UNMAP    %s\n", p->unmap_flag ? "accepted: pages can move" :
	       "rejected (EINVAL): this kernel copies every page");
	printf("move counters     %s\n", p->counters ? "present (/proc/vmstat vmsplice_*)" : "absent");
	printf("page frames       %s\n", p->pfns_visible ? "visible (pagemap)" : "hidden (not root)");
	printf("pipe-max-size     %s\n", fmt_bytes(a, sizeof(a), p->pipe_max_size));
	printf("THP               %s, %s\n", p->thp_size ? fmt_bytes(a, sizeof(a), p->thp_size) : "none",
	       p->thp_enabled[0] ? p->thp_enabled : "-");
	printf("mTHP              %s\n", p->mthp_size ? fmt_bytes(a, sizeof(a), p->mthp_size) :
	       "no size enabled");
	printf("\n%-6s %-9s %s\n", "kind", "result", "why");
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		const struct vsm_probe_case *c = kind_case(p, i);

		printf("%-6s %-9s %s%s\n", kinds[i].name, vsm_probe_result_name(c->result), c->why,
		       c->result != VSM_PROBE_UNTESTED && c->src_unmapped ?
		       "; giver reads zeros" : "");
	}
}

int cmd_probe(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "require", required_argument, NULL, 'r' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	const char *require = NULL;
	struct vsm_probe p;
	bool json = false;
	int c, rc = EXIT_OK;

	while ((c = getopt_long(argc, argv, "jr:h", opts, NULL)) != -1) {
		switch (c) {
		case 'j':
			json = true;
			break;
		case 'r':
			require = optarg;
			break;
		case 'h':
			help();
			return EXIT_OK;
		default:
			return usage_error("probe", "bad option");
		}
	}
	if (optind < argc)
		return usage_error("probe", "unexpected argument '%s'", argv[optind]);
	if (require) {
		char buf[64], *save, *tok;

		snprintf(buf, sizeof(buf), "%s", require);
		for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
			size_t i;

			for (i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
				if (!strcmp(tok, kinds[i].name))
					break;
			if (i == sizeof(kinds) / sizeof(kinds[0]))
				return usage_error("probe", "--require: unknown kind '%s' (4k, thp, mthp)", tok);
		}
	}
	if (vsm_probe(&p)) {
		errorf("probe", "cannot make a pipe: %m");
		return EXIT_FAIL;
	}
	if (json)
		print_json(&p);
	else
		print_human(&p);
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
		if (kind_case(&p, i)->result == VSM_PROBE_BROKEN) {
			errorf("probe", "%s: data did not arrive intact: kernel bug", kinds[i].name);
			rc = EXIT_VERIFY;
		}
	if (require && rc == EXIT_OK) {
		char buf[64], *save, *tok;

		snprintf(buf, sizeof(buf), "%s", require);
		for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
			for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
				if (!strcmp(tok, kinds[i].name) &&
				    kind_case(&p, i)->result != VSM_PROBE_MOVED) {
					errorf("probe", "required: %s pages do not move here (%s)",
					       tok, kind_case(&p, i)->why);
					rc = EXIT_ENV;
				}
	}
	return rc;
}
