/* SPDX-License-Identifier: BSD-2-Clause */
/* test_window.c - windows (series, prune, absorb, query), history budget, capped folded lines. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "folded.h"
#include "harness.h"
#include "history.h"
#include "window.h"

static struct series_meta meta(uint64_t serial, pid_t pid, pid_t nspid, const char *comm,
			       const char *app)
{
	struct series_meta m;

	memset(&m, 0, sizeof(m));
	m.serial = serial;
	m.pid = pid;
	m.nspid = nspid;
	snprintf(m.comm, sizeof(m.comm), "%s", comm);
	snprintf(m.app, sizeof(m.app), "%s", app);
	snprintf(m.python, sizeof(m.python), "3.11");
	return m;
}

/* Add "root;frames..." (frames ';'-separated) count times to w for series m. */
static int add(struct window *w, const struct series_meta *m, const char *frames, uint64_t count)
{
	uint32_t ids[64], n = 0;
	char buf[512], *save = NULL, *tok;

	if (window__series(w, m, &ids[n++]))
		return -1;
	snprintf(buf, sizeof(buf), "%s", frames);
	for (tok = strtok_r(buf, ";", &save); tok; tok = strtok_r(NULL, ";", &save))
		if (stacks__intern(w->st, tok, strlen(tok), &ids[n++]))
			return -1;
	return stacks__add(w->st, ids, n, count);
}

static char *render(const struct stacks *st)
{
	struct strbuf sb;

	strbuf_init(&sb, 0);
	if (folded_write_buf(st, &sb))
		return NULL;
	if (!sb.buf)
		return strdup("");
	return sb.buf;
}

static char *query(const struct window *w, enum window_group g, window_match_fn fn, void *arg)
{
	struct window_query q = { .group = g, .match = fn, .arg = arg };
	struct stacks *out = stacks__new();
	char *s = NULL;

	if (window__query(w, &q, out) == 0)
		s = render(out);
	stacks__free(out);
	return s;
}

static bool only_app(const struct series_meta *m, void *arg)
{
	return !strcmp(m->app, arg);
}

static void test_query(void)
{
	struct window *w = window__new(1000);
	struct series_meta a = meta(1, 100, 100, "python3", "web");
	struct series_meta b = meta(2, 200, 7, "python3", "worker");
	char *s;

	T_CHECK(w != NULL);
	T_CHECK_EQ_INT(add(w, &a, "main;handle", 5), 0);
	T_CHECK_EQ_INT(add(w, &a, "main;idle", 2), 0);
	T_CHECK_EQ_INT(add(w, &b, "main;handle", 3), 0);
	T_CHECK_EQ_INT(w->nseries, 2);
	T_CHECK_EQ_INT(window__samples(w), 10);

	s = query(w, WINDOW_GROUP_PROCESS, NULL, NULL);
	T_CHECK_EQ_STR(s, "python3 [100];main;handle 5\npython3 [200 ns:7];main;handle 3\n"
			  "python3 [100];main;idle 2\n");
	free(s);
	s = query(w, WINDOW_GROUP_COMM, NULL, NULL);
	T_CHECK_EQ_STR(s, "python3;main;handle 8\npython3;main;idle 2\n");
	free(s);
	s = query(w, WINDOW_GROUP_APP, NULL, NULL);
	T_CHECK_EQ_STR(s, "web;main;handle 5\nworker;main;handle 3\nweb;main;idle 2\n");
	free(s);
	s = query(w, WINDOW_GROUP_NONE, only_app, "worker");
	T_CHECK_EQ_STR(s, "main;handle 3\n");
	free(s);
	s = query(w, WINDOW_GROUP_NONE, only_app, "nobody");
	T_CHECK_EQ_STR(s, "");
	free(s);
	window__free(w);
}

static void test_prune(void)
{
	struct window *w = window__new(0);
	struct series_meta a = meta(1, 100, 100, "py", "a");
	struct series_meta b = meta(2, 200, 200, "py", "b");
	uint64_t before;
	char frames[64], *s;

	for (int i = 0; i < 100; i++) {
		snprintf(frames, sizeof(frames), "f%d", i);
		T_CHECK_EQ_INT(add(w, i % 2 ? &a : &b, frames, (uint64_t)i + 1), 0);
	}
	before = window__samples(w);
	T_CHECK_EQ_INT(window__prune(w, 200), 0); /* under the cap: nothing to do */
	T_CHECK_EQ_INT(w->pruned_stacks, 0);
	T_CHECK_EQ_INT(window__prune(w, 10), 0);
	T_CHECK_EQ_INT(window__samples(w), before);
	T_CHECK_EQ_INT(w->pruned_stacks, 90);
	T_CHECK_EQ_INT(w->pruned_samples, 45 * 91); /* counts 1..90 */
	/* 10 survivors (counts 91..100) + one [pruned] per series. */
	T_CHECK_EQ_INT(stacks__nstacks(w->st), 12);
	s = query(w, WINDOW_GROUP_APP, NULL, NULL);
	T_CHECK(s && strstr(s, "a;f99 100\n") != NULL);
	T_CHECK(s && strstr(s, "b;f90 91\n") != NULL);
	T_CHECK(s && strstr(s, "a;[pruned] 2070\n") != NULL); /* odd i < 90: 2+4+...+90 */
	T_CHECK(s && strstr(s, "b;[pruned] 2025\n") != NULL); /* even i < 90: 1+3+...+89 */
	free(s);
	/* Root ids were renumbered: adding again goes to the same series. */
	T_CHECK_EQ_INT(add(w, &a, "f99", 1), 0);
	T_CHECK_EQ_INT(w->nseries, 2);
	s = query(w, WINDOW_GROUP_APP, only_app, "a");
	T_CHECK(s && strstr(s, "a;f99 101\n") != NULL);
	free(s);
	window__free(w);
}

static void test_absorb_and_topk(void)
{
	struct window *x = window__new(1000), *y = window__new(2000);
	struct series_meta a = meta(1, 100, 100, "py", "a");
	struct series_meta c = meta(3, 300, 300, "py", "c");
	struct stacks *top = stacks__new();
	uint64_t ps = 0, pn = 0;
	char *s;

	x->until_ms = 2000;
	y->until_ms = 3000;
	T_CHECK_EQ_INT(add(x, &a, "m;f", 4), 0);
	T_CHECK_EQ_INT(add(y, &a, "m;f", 6), 0);
	T_CHECK_EQ_INT(add(y, &c, "m;g", 1), 0);
	y->pruned_stacks = 2;
	T_CHECK_EQ_INT(window__absorb(x, y), 0);
	T_CHECK_EQ_INT(x->from_ms, 1000);
	T_CHECK_EQ_INT(x->until_ms, 3000);
	T_CHECK_EQ_INT(x->nseries, 2);
	T_CHECK_EQ_INT(x->pruned_stacks, 2);
	s = query(x, WINDOW_GROUP_APP, NULL, NULL);
	T_CHECK_EQ_STR(s, "a;m;f 10\nc;m;g 1\n");
	free(s);

	/* topk with root_depth 0: the tail becomes a lone [pruned]. */
	T_CHECK_EQ_INT(window_stacks_topk(x->st, 1, 0, top, &ps, &pn), 0);
	T_CHECK_EQ_INT(ps, 1);
	T_CHECK_EQ_INT(pn, 1);
	T_CHECK_EQ_INT(stacks__total(top), 11);
	s = render(top);
	T_CHECK(s && strstr(s, "[pruned] 1\n") != NULL);
	free(s);
	stacks__free(top);
	window__free(x);
	window__free(y);
}

static void test_history(void)
{
	struct history h;
	uint64_t total = 0, got = 0;
	char frames[64];

	history_init(&h, 64 << 10, 500); /* 64 KiB: forces merges */
	for (int i = 0; i < 50; i++) {
		struct window *w = window__new(i * 1000);
		struct series_meta m = meta((uint64_t)i % 5 + 1, 100 + i % 5, 100 + i % 5, "py",
					    "app");

		for (int k = 0; k < 200; k++) {
			snprintf(frames, sizeof(frames), "main;f%d;g%d", (k * 7 + i) % 300, k);
			T_CHECK_EQ_INT(add(w, &m, frames, 1 + (uint64_t)k % 3), 0);
			total += 1 + (uint64_t)k % 3;
		}
		w->until_ms = (i + 1) * 1000;
		T_CHECK_EQ_INT(history__append(&h, w), 0);
	}
	T_CHECK(h.compactions > 0);
	T_CHECK(h.n < 50);
	for (size_t i = 0; i < h.n; i++) {
		got += window__samples(h.w[i]);
		if (i)
			T_CHECK(h.w[i]->from_ms == h.w[i - 1]->until_ms);
		T_CHECK(stacks__nstacks(h.w[i]->st) <= 500 + h.w[i]->nseries);
	}
	T_CHECK_EQ_INT(got, total); /* merged and pruned, never lost */
	T_CHECK_EQ_INT(h.w[0]->from_ms, 0);
	T_CHECK_EQ_INT(h.w[h.n - 1]->until_ms, 50000);
	history_release(&h);
}

static void test_folded_capped(void)
{
	struct stacks *st = stacks__new();
	uint32_t ids[200];
	char label[64];
	struct strbuf sb;
	const char *line, *nl;

	for (int i = 0; i < 200; i++) {
		snprintf(label, sizeof(label), "frame_number_%03d (file.py:%d)", i, i);
		T_CHECK_EQ_INT(stacks__intern(st, label, strlen(label), &ids[i]), 0);
	}
	T_CHECK_EQ_INT(stacks__add(st, ids, 200, 7), 0);
	T_CHECK_EQ_INT(stacks__add(st, ids, 3, 2), 0);
	strbuf_init(&sb, 0);
	T_CHECK_EQ_INT(folded_write_buf_capped(st, &sb, 1000), 0);
	line = sb.buf;
	nl = strchr(line, '\n');
	T_CHECK(nl && nl - line + 1 <= 1000);
	T_CHECK(strncmp(line, "[truncated];", 12) == 0);
	T_CHECK(nl && strncmp(nl - 32, "frame_number_199 (file.py:199) 7", 32) == 0);
	/* The short stack is untouched. */
	T_CHECK(nl && strcmp(nl + 1, "frame_number_000 (file.py:0);frame_number_001 (file.py:1);"
				     "frame_number_002 (file.py:2) 2\n") == 0);
	strbuf_release(&sb);
	stacks__free(st);
}

int main(void)
{
	test_query();
	test_prune();
	test_absorb_and_topk();
	test_history();
	test_folded_capped();
	return T_DONE();
}
