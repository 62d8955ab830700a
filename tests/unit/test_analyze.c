/* SPDX-License-Identifier: BSD-2-Clause */
/* test_analyze.c - top functions and differential folded output. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "analyze.h"
#include "harness.h"
#include "ingest.h"

static struct stacks *parse(const char *text)
{
	struct stacks *st = stacks__new();
	char err[128];

	if (ingest_parse_folded(text, strlen(text), st, 0, err, sizeof(err))) {
		fprintf(stderr, "parse: %s\n", err);
		abort();
	}
	return st;
}

static void test_top(void)
{
	/* f recurses: counted once per stack in total. */
	struct stacks *st = parse("main;f;f;g 5\nmain;f 3\nmain;h 2\nmain 1\n");
	struct fn_stat *v = NULL;
	size_t n = 0;

	T_CHECK_EQ_INT(analyze_top(st, &v, &n), 0);
	T_CHECK_EQ_INT(n, 4);
	T_CHECK_EQ_STR(stacks__label(st, v[0].id), "g");
	T_CHECK_EQ_INT(v[0].self, 5);
	T_CHECK_EQ_INT(v[0].total, 5);
	T_CHECK_EQ_STR(stacks__label(st, v[1].id), "f");
	T_CHECK_EQ_INT(v[1].self, 3);
	T_CHECK_EQ_INT(v[1].total, 8);
	T_CHECK_EQ_STR(stacks__label(st, v[2].id), "h");
	T_CHECK_EQ_STR(stacks__label(st, v[3].id), "main");
	T_CHECK_EQ_INT(v[3].self, 1);
	T_CHECK_EQ_INT(v[3].total, 11);
	free(v);
	stacks__free(st);
}

static void test_diff(void)
{
	struct stacks *a = parse("main;f 5\nmain;g 2\n");
	struct stacks *b = parse("main;g 7\nmain;k;x 1\n");
	struct strbuf sb;

	strbuf_init(&sb, 0);
	T_CHECK_EQ_INT(analyze_diff_write(a, b, &sb), 0);
	T_CHECK_EQ_STR(sb.buf, "main;f 5 0\nmain;g 2 7\nmain;k;x 0 1\n");
	strbuf_release(&sb);
	/* Against an empty profile. */
	stacks__free(b);
	b = stacks__new();
	strbuf_init(&sb, 0);
	T_CHECK_EQ_INT(analyze_diff_write(b, a, &sb), 0);
	T_CHECK_EQ_STR(sb.buf, "main;f 0 5\nmain;g 0 2\n");
	strbuf_release(&sb);
	/* A cap too small restores the buffer. */
	strbuf_init(&sb, 8);
	T_CHECK_EQ_INT(analyze_diff_write(a, a, &sb), -E2BIG);
	T_CHECK_EQ_INT(sb.len, 0);
	strbuf_release(&sb);
	stacks__free(a);
	stacks__free(b);
}

static void test_tree(void)
{
	struct stacks *st = parse("main;f;g 5\nmain;f 3\nmain;h 2\nother 1\n");
	struct strbuf sb;
	uint32_t ids[3];

	strbuf_init(&sb, 0);
	T_CHECK_EQ_INT(analyze_tree_write(st, &sb), 0);
	T_CHECK_EQ_STR(sb.buf,
		       "{\"name\":\"all\",\"value\":11,\"self\":0,\"children\":["
		       "{\"name\":\"main\",\"value\":10,\"self\":0,\"children\":["
		       "{\"name\":\"f\",\"value\":8,\"self\":3,\"children\":["
		       "{\"name\":\"g\",\"value\":5,\"self\":5}]},"
		       "{\"name\":\"h\",\"value\":2,\"self\":2}]},"
		       "{\"name\":\"other\",\"value\":1,\"self\":1}]}\n");
	strbuf_release(&sb);
	stacks__free(st);

	/* Hostile names: quotes, backslashes, controls, invalid UTF-8; valid UTF-8 kept. */
	st = stacks__new();
	T_CHECK_EQ_INT(stacks__intern(st, "a\"b\\c", 5, &ids[0]), 0);
	T_CHECK_EQ_INT(stacks__intern(st, "\x01\xff\xc3\xa9\xed\xa0\x80", 7, &ids[1]), 0);
	T_CHECK_EQ_INT(stacks__add(st, ids, 2, 1), 0);
	strbuf_init(&sb, 0);
	T_CHECK_EQ_INT(analyze_tree_write(st, &sb), 0);
	T_CHECK(strstr(sb.buf, "\"name\":\"a\\\"b\\\\c\"") != NULL);
	T_CHECK(strstr(sb.buf, "\"name\":\"\\u0001\xef\xbf\xbd\xc3\xa9\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\"") != NULL);
	strbuf_release(&sb);
	/* Empty profile; a cap too small restores the buffer. */
	stacks__clear(st);
	strbuf_init(&sb, 0);
	T_CHECK_EQ_INT(analyze_tree_write(st, &sb), 0);
	T_CHECK_EQ_STR(sb.buf, "{\"name\":\"all\",\"value\":0,\"self\":0}\n");
	strbuf_release(&sb);
	stacks__free(st);
	st = parse("main;f;g 5\nmain;f 3\n");
	strbuf_init(&sb, 16);
	T_CHECK_EQ_INT(analyze_tree_write(st, &sb), -E2BIG);
	T_CHECK_EQ_INT(sb.len, 0);
	strbuf_release(&sb);
	stacks__free(st);

	/* Deep and wide: 20000 frames deep (no recursion), 50000 siblings (hash growth). */
	st = stacks__new();
	{
		static uint32_t deep[20000];
		char name[32];
		uint64_t sum = 0;

		for (int i = 0; i < 20000; i++) {
			snprintf(name, sizeof(name), "d%d", i % 7);
			T_CHECK_EQ_INT(stacks__intern(st, name, strlen(name), &deep[i]), 0);
		}
		T_CHECK_EQ_INT(stacks__add(st, deep, 20000, 3), 0);
		for (int i = 0; i < 50000; i++) {
			uint32_t two[2];

			snprintf(name, sizeof(name), "w%d", i);
			T_CHECK_EQ_INT(stacks__intern(st, "root", 4, &two[0]), 0);
			T_CHECK_EQ_INT(stacks__intern(st, name, strlen(name), &two[1]), 0);
			T_CHECK_EQ_INT(stacks__add(st, two, 2, 1), 0);
			sum++;
		}
		strbuf_init(&sb, 0);
		T_CHECK_EQ_INT(analyze_tree_write(st, &sb), 0);
		T_CHECK(strncmp(sb.buf, "{\"name\":\"all\",\"value\":50003,",
				strlen("{\"name\":\"all\",\"value\":50003,")) == 0);
		T_CHECK(strstr(sb.buf, "{\"name\":\"root\",\"value\":50000,") != NULL);
		T_CHECK_EQ_INT(sum, 50000);
		strbuf_release(&sb);
	}
	stacks__free(st);
}

int main(void)
{
	test_top();
	test_diff();
	test_tree();
	return T_DONE();
}
