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

int main(void)
{
	test_top();
	test_diff();
	return T_DONE();
}
