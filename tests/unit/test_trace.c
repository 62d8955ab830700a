/* SPDX-License-Identifier: BSD-2-Clause */
/* test_trace.c - samples to Chrome trace spans: merging, gaps, depth changes, threads, caps. */
#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "trace.h"

#define MS 1000000ull /* ns */

static struct stacks *src;

/* Add a sample whose stack is the ';'-separated labels of text (root first). */
static void add(struct trace *t, uint64_t ts, uint32_t pid, uint32_t tid, const char *text)
{
	uint32_t ids[64];
	size_t n = 0;
	char buf[1024], *save = NULL;

	snprintf(buf, sizeof(buf), "%s", text);
	for (char *tok = strtok_r(buf, ";", &save); tok; tok = strtok_r(NULL, ";", &save))
		T_CHECK_EQ_INT(stacks__intern(src, tok, strlen(tok), &ids[n++]), 0);
	T_CHECK_EQ_INT(trace__add(t, ts, pid, tid, src, ids[0], ids + 1, n - 1), 0);
}

struct span {
	char name[64];
	unsigned pid, tid;
	double ts, dur;
	long line;
};

static size_t spans(const char *json, struct span *out, size_t max, int *meta)
{
	json_object *root = json_tokener_parse(json), *ev;
	size_t n = 0;

	*meta = 0;
	T_CHECK(root != NULL);
	if (!root)
		return 0;
	T_CHECK(json_object_object_get_ex(root, "traceEvents", &ev));
	for (size_t i = 0; i < json_object_array_length(ev); i++) {
		json_object *e = json_object_array_get_idx(ev, i), *v, *args;
		const char *ph;

		json_object_object_get_ex(e, "ph", &v);
		ph = json_object_get_string(v);
		if (!strcmp(ph, "M")) {
			(*meta)++;
			continue;
		}
		T_CHECK(!strcmp(ph, "X"));
		if (n == max)
			continue;
		json_object_object_get_ex(e, "name", &v);
		snprintf(out[n].name, sizeof(out[n].name), "%s", json_object_get_string(v));
		json_object_object_get_ex(e, "pid", &v);
		out[n].pid = (unsigned)json_object_get_int(v);
		json_object_object_get_ex(e, "tid", &v);
		out[n].tid = (unsigned)json_object_get_int(v);
		json_object_object_get_ex(e, "ts", &v);
		out[n].ts = json_object_get_double(v);
		json_object_object_get_ex(e, "dur", &v);
		out[n].dur = json_object_get_double(v);
		out[n].line = -2;
		if (json_object_object_get_ex(e, "args", &args) &&
		    json_object_object_get_ex(args, "line", &v))
			out[n].line = json_object_get_int(v);
		n++;
	}
	json_object_put(root);
	return n;
}

static const struct span *find(const struct span *s, size_t n, const char *name, double ts)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(s[i].name, name) && s[i].ts == ts)
			return &s[i];
	return NULL;
}

static void test_spans(void)
{
	struct trace *t = trace__new(1000);
	struct trace_opts o = { .hz = 100, .realtime_offset_ns = 0 };
	struct span s[64];
	struct strbuf sb;
	const struct span *x;
	int meta;
	size_t n;

	src = stacks__new();
	/* thread 10: main 0-40 ms; a() 0-20 ms whatever its line; b() 20-40 ms (added out of order) */
	add(t, 20 * MS, 10, 10, "app;main (m.py:5);b (m.py:20)");
	add(t, 0 * MS, 10, 10, "app;main (m.py:5);a (m.py:10)");
	add(t, 10 * MS, 10, 10, "app;main (m.py:5);a (m.py:11)");
	add(t, 30 * MS, 10, 10, "app;main (m.py:6);b (m.py:21)");
	/* a 100 ms gap (off CPU): main closes at 40 and opens again at 140 */
	add(t, 140 * MS, 10, 10, "app;main (m.py:7)");
	/* thread 11 of the same process */
	add(t, 5 * MS, 10, 11, "app;worker (w.py:3)");
	strbuf_init(&sb, 0);
	T_CHECK_EQ_INT(trace_write_chrome(t, &o, &sb), 0);
	n = spans(sb.buf, s, 64, &meta);
	T_CHECK_EQ_INT(meta, 3); /* process_name, 2 x thread_name */
	T_CHECK_EQ_INT(n, 5);
	x = find(s, n, "main", 0);
	T_CHECK(x && x->dur == 40000 && x->tid == 10 && x->line == 5);
	x = find(s, n, "a", 0);
	T_CHECK(x && x->dur == 20000 && x->line == 10);
	x = find(s, n, "b", 20000);
	T_CHECK(x && x->dur == 20000);
	x = find(s, n, "main", 140000);
	T_CHECK(x && x->dur == 10000 && x->line == 7);
	x = find(s, n, "worker", 5000);
	T_CHECK(x && x->tid == 11 && x->dur == 10000);
	T_CHECK(strstr(sb.buf, "\"process_name\"") && strstr(sb.buf, "\"app\""));
	T_CHECK(strstr(sb.buf, "\"thread 10 (main)\""));
	strbuf_release(&sb);

	/* Wall-clock offset; a small cap restores the buffer. */
	o.realtime_offset_ns = 1000 * MS;
	strbuf_init(&sb, 0);
	T_CHECK_EQ_INT(trace_write_chrome(t, &o, &sb), 0);
	n = spans(sb.buf, s, 64, &meta);
	T_CHECK(find(s, n, "main", 1000000) != NULL);
	strbuf_release(&sb);
	strbuf_init(&sb, 32);
	T_CHECK_EQ_INT(trace_write_chrome(t, &o, &sb), -E2BIG);
	T_CHECK_EQ_INT(sb.len, 0);
	strbuf_release(&sb);
	trace__free(t);
	stacks__free(src);
}

static void test_limits(void)
{
	struct trace *t = trace__new(3);
	struct strbuf sb;
	struct span s[8];
	int meta;

	src = stacks__new();
	for (int i = 0; i < 5; i++)
		add(t, (uint64_t)i * 10 * MS, 1, 1, "p;f (x.py:1)");
	T_CHECK_EQ_INT(trace__samples(t), 3);
	T_CHECK_EQ_INT(trace__dropped(t), 2);
	/* hostile names stay valid JSON */
	trace__free(t);
	t = trace__new(10);
	add(t, 0, 1, 1, "p\"<x>;f\"\\ (a\x01\xff.py:1)");
	add(t, 10 * MS, 1, 1, "p\"<x>;[pruned]");
	strbuf_init(&sb, 0);
	T_CHECK_EQ_INT(trace_write_chrome(t, NULL, &sb), 0);
	T_CHECK_EQ_INT(spans(sb.buf, s, 8, &meta), 2);
	strbuf_release(&sb);
	trace__free(t);
	/* empty */
	t = trace__new(1);
	strbuf_init(&sb, 0);
	T_CHECK_EQ_INT(trace_write_chrome(t, NULL, &sb), 0);
	T_CHECK_EQ_INT(spans(sb.buf, s, 8, &meta), 0);
	strbuf_release(&sb);
	trace__free(t);
	T_CHECK(trace__new(0) == NULL);
	stacks__free(src);
}

int main(void)
{
	test_spans();
	test_limits();
	return T_DONE();
}
