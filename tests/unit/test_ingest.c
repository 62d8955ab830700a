/* SPDX-License-Identifier: BSD-2-Clause */
/* test_ingest.c - Pyroscope ingest names, times and folded bodies. */
#include <errno.h>
#include <string.h>

#include "folded.h"
#include "harness.h"
#include "ingest.h"

static void test_names(void)
{
	struct ingest_name n;
	char err[256];

	T_CHECK_EQ_INT(ingest_parse_name("web.cpu{py_version=3.11,host=h1}", &n, err, sizeof(err)), 0);
	T_CHECK_EQ_STR(n.app, "web");
	T_CHECK_EQ_STR(n.type, "cpu");
	T_CHECK_EQ_STR(n.labels, "host=h1,py_version=3.11"); /* sorted */
	T_CHECK_EQ_INT(ingest_parse_name(" my-app/x ", &n, err, sizeof(err)), 0);
	T_CHECK_EQ_STR(n.app, "my-app/x");
	T_CHECK_EQ_STR(n.labels, "");
	T_CHECK_EQ_INT(ingest_parse_name("a.b.wall{ k = v }", &n, err, sizeof(err)), 0);
	T_CHECK_EQ_STR(n.app, "a.b");
	T_CHECK_EQ_STR(n.type, "wall");
	T_CHECK_EQ_STR(n.labels, "k=v");
	T_CHECK_EQ_INT(ingest_parse_name("my.app", &n, err, sizeof(err)), -EINVAL);
	T_CHECK(strstr(err, "unknown profile type") != NULL);
	static const char *const bad[] = {
		"", "{a=b}", "app{", "app{a}", "app{=b}", "app{a=}", "app{__name__=x}", "app{a=1,a=2}",
		"app{a=b,}", "app{a=b}x", "ap p", "app;x", "app{a=b'c}", "app{a b=c}", "x'; DROP TABLE",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		T_CHECK_EQ_INT(ingest_parse_name(bad[i], &n, err, sizeof(err)), -EINVAL);
		T_CHECK(err[0] != '\0');
	}
}

static void test_times(void)
{
	int64_t t = 0;

	T_CHECK_EQ_INT(ingest_parse_time("1700000000", 5, &t), 0);
	T_CHECK_EQ_INT(t, 1700000000);
	T_CHECK_EQ_INT(ingest_parse_time("1700000000123", 5, &t), 0);
	T_CHECK_EQ_INT(t, 1700000000);
	T_CHECK_EQ_INT(ingest_parse_time("1700000000123456789", 5, &t), 0);
	T_CHECK_EQ_INT(t, 1700000000);
	T_CHECK_EQ_INT(ingest_parse_time("now", 1000000, &t), 0);
	T_CHECK_EQ_INT(t, 1000000);
	T_CHECK_EQ_INT(ingest_parse_time("now-1h", 1000000, &t), 0);
	T_CHECK_EQ_INT(t, 1000000 - 3600);
	T_CHECK_EQ_INT(ingest_parse_time("now-90min", 1000000, &t), 0);
	T_CHECK_EQ_INT(t, 1000000 - 5400);
	T_CHECK_EQ_INT(ingest_parse_time("now-2x", 1000000, &t), -EINVAL);
	T_CHECK_EQ_INT(ingest_parse_time("-5", 1000000, &t), -EINVAL);
	T_CHECK_EQ_INT(ingest_parse_time("12345678901234", 1000000, &t), -EINVAL);
	T_CHECK_EQ_INT(ingest_parse_time("now-999999w", 1000000, &t), -EINVAL);
	T_CHECK_EQ_INT(ingest_parse_time("", 1000000, &t), -EINVAL);
}

static void test_folded(void)
{
	const char body[] = "main (a.py:1);f (a.py:2) 5\r\n\nmain (a.py:1);f (a.py:2) 2\n"
			    "main (a.py:1);g x y (b.py:3) 1\nzero 0\n";
	struct stacks *st = stacks__new();
	struct strbuf sb;
	char err[256];

	T_CHECK_EQ_INT(ingest_parse_folded(body, sizeof(body) - 1, st, 0, err, sizeof(err)), 0);
	strbuf_init(&sb, 0);
	T_CHECK_EQ_INT(folded_write_buf(st, &sb), 0);
	T_CHECK_EQ_STR(sb.buf, "main (a.py:1);f (a.py:2) 7\nmain (a.py:1);g x y (b.py:3) 1\n");
	strbuf_release(&sb);
	stacks__free(st);
	static const char *const bad[] = {
		"a;b\n", "a;b x\n", "a;b -3\n", "a;;b 1\n", "a; 1\n", " 1\n", "a;b 1.5\n",
		"a\x01;b 1\n", "a;b 99999999999999999\n",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		st = stacks__new();
		err[0] = '\0';
		T_CHECK_EQ_INT(ingest_parse_folded(bad[i], strlen(bad[i]), st, 0, err, sizeof(err)),
			       -EINVAL);
		T_CHECK(strncmp(err, "line 1: ", 8) == 0);
		stacks__free(st);
	}
	st = stacks__new();
	T_CHECK_EQ_INT(ingest_parse_folded("a 1\nb 1\nc 1\n", 12, st, 2, err, sizeof(err)), -E2BIG);
	stacks__free(st);
	/* A NUL inside the body is a control byte, not an end. */
	st = stacks__new();
	T_CHECK_EQ_INT(ingest_parse_folded("a\0b 1\n", 6, st, 0, err, sizeof(err)), -EINVAL);
	stacks__free(st);
}

int main(void)
{
	test_names();
	test_times();
	test_folded();
	return T_DONE();
}
