/* SPDX-License-Identifier: BSD-2-Clause */
/* test_export.c - windows to Pyroscope ingest items: grouping, names, labels, limits. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "export.h"
#include "harness.h"

struct rec {
	char name[1024];
	uint64_t from, until;
	uint32_t rate;
	char *body;
	size_t len;
};

static struct rec recs[16];
static size_t nrecs;
static int fail_enqueue;

static int record(void *ctx, const struct push_item *it)
{
	struct rec *r;

	(void)ctx;
	if (fail_enqueue || nrecs == sizeof(recs) / sizeof(recs[0]))
		return -ENOSPC;
	r = &recs[nrecs++];
	snprintf(r->name, sizeof(r->name), "%s", it->name);
	r->from = it->from_s;
	r->until = it->until_s;
	r->rate = it->sample_rate;
	r->body = malloc(it->len + 1);
	memcpy(r->body, it->body, it->len);
	r->body[it->len] = '\0';
	r->len = it->len;
	return 0;
}

static void reset(void)
{
	for (size_t i = 0; i < nrecs; i++)
		free(recs[i].body);
	nrecs = 0;
}

static struct series_meta meta(uint64_t serial, pid_t pid, const char *app, const char *py,
			       const char *container)
{
	struct series_meta m;

	memset(&m, 0, sizeof(m));
	m.serial = serial;
	m.pid = m.nspid = pid;
	snprintf(m.comm, sizeof(m.comm), "python3");
	snprintf(m.app, sizeof(m.app), "%s", app);
	snprintf(m.python, sizeof(m.python), "%s", py);
	snprintf(m.container, sizeof(m.container), "%s", container);
	return m;
}

static void add(struct window *w, const struct series_meta *m, const char *leaf, uint64_t n)
{
	uint32_t ids[3];

	T_CHECK_EQ_INT(window__series(w, m, &ids[0]), 0);
	T_CHECK_EQ_INT(stacks__intern(w->st, "main (a.py:1)", 13, &ids[1]), 0);
	T_CHECK_EQ_INT(stacks__intern(w->st, leaf, strlen(leaf), &ids[2]), 0);
	T_CHECK_EQ_INT(stacks__add(w->st, ids, 3, n), 0);
}

static size_t count_lines(const char *s)
{
	size_t n = 0;

	for (; *s; s++)
		n += *s == '\n';
	return n;
}

static void test_groups(void)
{
	const char *labels[] = { "env=prod", "region=eu-west-1" };
	struct export_opts o = { .enqueue = record, .sample_rate = 99, .host = "web 1;x",
				 .labels = labels, .nlabels = 2 };
	struct window *w = window__new(1000500);
	struct series_meta a1 = meta(1, 10, "web", "3.11", "");
	struct series_meta a2 = meta(2, 11, "web", "3.11", ""); /* same series as a1 */
	struct series_meta b = meta(3, 12, "web", "3.12", "");	/* other Python version */
	struct series_meta c = meta(4, 13, "worker", "3.11",
				    "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef");
	struct export e;

	w->until_ms = 1010000;
	add(w, &a1, "f (a.py:2)", 3);
	add(w, &a2, "f (a.py:2)", 4);
	add(w, &b, "g (a.py:3)", 5);
	add(w, &c, "h (a.py:4)", 6);
	export_init(&e, &o);
	export_window(&e, w);
	T_CHECK_EQ_INT(nrecs, 3);
	T_CHECK_EQ_INT(e.items, 3);
	T_CHECK_EQ_STR(recs[0].name, "web.cpu{host=web_1_x,py_version=3.11,env=prod,"
				     "region=eu-west-1}");
	T_CHECK_EQ_STR(recs[0].body, "main (a.py:1);f (a.py:2) 7\n");
	T_CHECK_EQ_INT(recs[0].from, 1000);
	T_CHECK_EQ_INT(recs[0].until, 1010);
	T_CHECK_EQ_INT(recs[0].rate, 99);
	T_CHECK_EQ_STR(recs[1].name, "web.cpu{host=web_1_x,py_version=3.12,env=prod,"
				     "region=eu-west-1}");
	T_CHECK_EQ_STR(recs[2].name, "worker.cpu{host=web_1_x,py_version=3.11,"
				     "container=0123456789ab,env=prod,region=eu-west-1}");
	T_CHECK_EQ_STR(recs[2].body, "main (a.py:1);h (a.py:4) 6\n");
	reset();
	/* A queue that refuses: counted, nothing crashes. */
	fail_enqueue = 1;
	export_window(&e, w);
	T_CHECK_EQ_INT(e.enqueue_failures, 3);
	fail_enqueue = 0;
	window__free(w);
}

static void test_limits(void)
{
	struct export_opts o = { .enqueue = record, .sample_rate = 100, .host = "h" };
	struct window *w = window__new(0);
	struct series_meta m = meta(1, 10, "big", "3.11", "");
	uint64_t total = 0, got = 0;
	char leaf[64];
	struct export e;
	const char *p;

	w->until_ms = 10000;
	for (int i = 0; i < 20000; i++) {
		snprintf(leaf, sizeof(leaf), "f%d (a.py:%d)", i, i);
		add(w, &m, leaf, 1 + (uint64_t)(i % 7));
		total += 1 + (uint64_t)(i % 7);
	}
	/* One stack with a 100 KiB line. */
	{
		uint32_t ids[2];
		char *huge = malloc(100 << 10);

		memset(huge, 'x', 100 << 10);
		T_CHECK_EQ_INT(window__series(w, &m, &ids[0]), 0);
		T_CHECK_EQ_INT(stacks__intern(w->st, huge, 100 << 10, &ids[1]), 0);
		T_CHECK_EQ_INT(stacks__add(w->st, ids, 2, 1000), 0);
		total += 1000;
		free(huge);
	}
	export_init(&e, &o);
	export_window(&e, w);
	T_CHECK_EQ_INT(nrecs, 1);
	T_CHECK(count_lines(recs[0].body) <= 15001);
	T_CHECK(e.pruned_stacks >= 5000);
	T_CHECK(strncmp(recs[0].body, "[pruned] ", 9) == 0 || strstr(recs[0].body, "\n[pruned] "));
	T_CHECK(recs[0].len <= 4u << 20);
	for (p = recs[0].body; *p;) {
		const char *nl = strchr(p, '\n'), *sp;

		T_CHECK(nl != NULL && nl - p < 60 << 10);
		if (!nl)
			break;
		sp = nl;
		while (sp > p && sp[-1] != ' ')
			sp--;
		got += strtoull(sp, NULL, 10);
		p = nl + 1;
	}
	T_CHECK_EQ_INT(got, total); /* pruned and cut, never lost */
	reset();
	window__free(w);
}

static void test_labels(void)
{
	char err[256];

	T_CHECK_EQ_INT(export_check_label("env=prod", err, sizeof(err)), 0);
	T_CHECK_EQ_INT(export_check_label("zone_2=a/b:c.d-e", err, sizeof(err)), 0);
	T_CHECK_EQ_INT(export_check_label("Env=prod", err, sizeof(err)), -EINVAL);
	T_CHECK_EQ_INT(export_check_label("2env=prod", err, sizeof(err)), -EINVAL);
	T_CHECK_EQ_INT(export_check_label("env", err, sizeof(err)), -EINVAL);
	T_CHECK_EQ_INT(export_check_label("=x", err, sizeof(err)), -EINVAL);
	T_CHECK_EQ_INT(export_check_label("env=", err, sizeof(err)), -EINVAL);
	T_CHECK_EQ_INT(export_check_label("env=a,b", err, sizeof(err)), -EINVAL);
	T_CHECK_EQ_INT(export_check_label("env=a}b", err, sizeof(err)), -EINVAL);
	T_CHECK_EQ_INT(export_check_label("host=x", err, sizeof(err)), -EINVAL);
	T_CHECK(strstr(err, "reserved") != NULL);
	T_CHECK_EQ_INT(export_check_label("__name__=x", err, sizeof(err)), -EINVAL);
}

int main(void)
{
	test_groups();
	test_limits();
	test_labels();
	return T_DONE();
}
