/* SPDX-License-Identifier: BSD-2-Clause */
/* test_speedscope.c - speedscope's file format: profiles per root, shared frames, weights. */
#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <string.h>

#include "harness.h"
#include "ingest.h"
#include "speedscope.h"

static struct stacks *parse(const char *text)
{
	struct stacks *st = stacks__new();
	char err[128];

	T_CHECK_EQ_INT(ingest_parse_folded(text, strlen(text), st, 0, err, sizeof(err)), 0);
	return st;
}

static json_object *get(json_object *o, const char *k)
{
	json_object *v = NULL;

	T_CHECK(json_object_object_get_ex(o, k, &v));
	return v;
}

int main(void)
{
	struct stacks *st = parse("p2 [2];main (a.py:3);f (a.py:9) 5\n"
				  "p1 [1];main (a.py:3);f (a.py:9) 2\n"
				  "p1 [1];main (a.py:3) 1\n"
				  "p1 [1] 4\n"
				  "p1 [1];native \"x\"\\ 3\n");
	json_object *root, *frames, *profiles, *p, *samples, *weights;
	struct strbuf sb;
	long total = 0;

	strbuf_init(&sb, 0);
	T_CHECK_EQ_INT(speedscope_write(st, "t<1>", &sb), 0);
	root = json_tokener_parse(sb.buf);
	T_CHECK(root != NULL);
	T_CHECK_EQ_STR(json_object_get_string(get(root, "$schema")),
		       "https://www.speedscope.app/file-format-schema.json");
	T_CHECK_EQ_STR(json_object_get_string(get(root, "name")), "t<1>");
	frames = get(get(root, "shared"), "frames");
	T_CHECK_EQ_INT(json_object_array_length(frames), 3); /* main, f, native */
	profiles = get(root, "profiles");
	T_CHECK_EQ_INT(json_object_array_length(profiles), 2);
	p = json_object_array_get_idx(profiles, 0);
	T_CHECK_EQ_STR(json_object_get_string(get(p, "name")), "p1 [1]");
	T_CHECK_EQ_STR(json_object_get_string(get(p, "type")), "sampled");
	T_CHECK_EQ_INT(json_object_get_int(get(p, "endValue")), 10);
	samples = get(p, "samples");
	weights = get(p, "weights");
	T_CHECK_EQ_INT(json_object_array_length(samples), 4);
	for (size_t i = 0; i < json_object_array_length(weights); i++) {
		json_object *s = json_object_array_get_idx(samples, i);
		long w = json_object_get_int(json_object_array_get_idx(weights, i));

		total += w;
		/* resolve the sample's frames: check the one with weight 2 is main;f with lines */
		if (w == 2) {
			json_object *f0 = json_object_array_get_idx(
				frames, (size_t)json_object_get_int(json_object_array_get_idx(s, 0)));
			json_object *f1 = json_object_array_get_idx(
				frames, (size_t)json_object_get_int(json_object_array_get_idx(s, 1)));

			T_CHECK_EQ_INT(json_object_array_length(s), 2);
			T_CHECK_EQ_STR(json_object_get_string(get(f0, "name")), "main");
			T_CHECK_EQ_STR(json_object_get_string(get(f1, "name")), "f");
			T_CHECK_EQ_STR(json_object_get_string(get(f1, "file")), "a.py");
			T_CHECK_EQ_INT(json_object_get_int(get(f1, "line")), 9);
		}
		if (w == 4)
			T_CHECK_EQ_INT(json_object_array_length(s), 0); /* the root alone */
		if (w == 3) {
			json_object *f = json_object_array_get_idx(
				frames, (size_t)json_object_get_int(json_object_array_get_idx(s, 0)));

			T_CHECK_EQ_STR(json_object_get_string(get(f, "name")), "native \"x\"\\");
		}
	}
	T_CHECK_EQ_INT(total, 10);
	json_object_put(root);
	strbuf_release(&sb);
	/* the cap restores the buffer; an empty profile is a valid file */
	strbuf_init(&sb, 40);
	T_CHECK_EQ_INT(speedscope_write(st, NULL, &sb), -E2BIG);
	T_CHECK_EQ_INT(sb.len, 0);
	strbuf_release(&sb);
	stacks__free(st);
	st = stacks__new();
	strbuf_init(&sb, 0);
	T_CHECK_EQ_INT(speedscope_write(st, NULL, &sb), 0);
	root = json_tokener_parse(sb.buf);
	T_CHECK(root && json_object_array_length(get(root, "profiles")) == 0);
	json_object_put(root);
	strbuf_release(&sb);
	stacks__free(st);

	/* --threads: one profile per thread, the thread frame not among the frames */
	st = parse("p [1];thread 1;main (a.py:1);f (a.py:2) 3\n"
		   "p [1];thread 2;main (a.py:1) 2\n"
		   "p [1];thread 1;main (a.py:1) 1\n"
		   "p [1];threadx 3 1\n");
	strbuf_init(&sb, 0);
	T_CHECK_EQ_INT(speedscope_write(st, NULL, &sb), 0);
	root = json_tokener_parse(sb.buf);
	profiles = get(root, "profiles");
	T_CHECK_EQ_INT(json_object_array_length(profiles), 3);
	T_CHECK_EQ_STR(json_object_get_string(get(json_object_array_get_idx(profiles, 0), "name")),
		       "p [1]");
	p = json_object_array_get_idx(profiles, 1);
	T_CHECK_EQ_STR(json_object_get_string(get(p, "name")), "p [1] / thread 1");
	T_CHECK_EQ_INT(json_object_get_int(get(p, "endValue")), 4);
	T_CHECK_EQ_INT(json_object_array_length(json_object_array_get_idx(get(p, "samples"), 0)), 2);
	T_CHECK_EQ_STR(json_object_get_string(get(json_object_array_get_idx(profiles, 2), "name")),
		       "p [1] / thread 2");
	frames = get(get(root, "shared"), "frames");
	T_CHECK_EQ_INT(json_object_array_length(frames), 3); /* main, f, threadx 3 */
	json_object_put(root);
	strbuf_release(&sb);
	stacks__free(st);
	return T_DONE();
}
