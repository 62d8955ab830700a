/* SPDX-License-Identifier: BSD-2-Clause */
/* test_util.c - strbuf and strict parsers. */
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "util.h"

static void test_strbuf_basic(void)
{
	struct strbuf sb;
	char *s;
	size_t len = 99;
	int i;

	strbuf_init(&sb, 0);
	T_CHECK(sb.buf == NULL);
	T_CHECK_EQ_INT(sb.len, 0);
	T_CHECK_EQ_INT(strbuf_add(&sb, NULL, 0), 0);
	T_CHECK(sb.buf == NULL);

	T_CHECK_EQ_INT(strbuf_add(&sb, "abc", 3), 0);
	T_CHECK_EQ_INT(sb.len, 3);
	T_CHECK_EQ_STR(sb.buf, "abc");
	/* Not NUL-terminated input, and embedded NULs. */
	T_CHECK_EQ_INT(strbuf_add(&sb, "d\0exyz", 3), 0);
	T_CHECK_EQ_INT(sb.len, 6);
	T_CHECK(memcmp(sb.buf, "abcd\0e", 7) == 0);

	strbuf_reset(&sb);
	T_CHECK_EQ_INT(sb.len, 0);
	T_CHECK_EQ_STR(sb.buf, "");

	/* Growth across many doublings, and addf needing a second pass. */
	for (i = 0; i < 10000; i++)
		T_CHECK_EQ_INT(strbuf_addf(&sb, "%d,", i % 10), 0);
	T_CHECK_EQ_INT(sb.len, 20000);
	T_CHECK(sb.cap > sb.len);
	T_CHECK_EQ_INT(sb.buf[sb.len], '\0');
	T_CHECK_EQ_INT(strbuf_addf(&sb, "%0500d", 7), 0);
	T_CHECK_EQ_INT(sb.len, 20500);
	T_CHECK_EQ_INT(sb.buf[sb.len - 1], '7');
	T_CHECK_EQ_INT(sb.buf[sb.len], '\0');

	strbuf_setlen(&sb, 2);
	T_CHECK_EQ_STR(sb.buf, "0,");
	strbuf_setlen(&sb, 5); /* longer than len: ignored */
	T_CHECK_EQ_INT(sb.len, 2);

	s = strbuf_detach(&sb, &len);
	T_CHECK_EQ_STR(s, "0,");
	T_CHECK_EQ_INT(len, 2);
	T_CHECK(sb.buf == NULL && sb.len == 0 && sb.cap == 0);
	free(s);

	/* Detaching an empty (never allocated) buffer gives an allocated "". */
	s = strbuf_detach(&sb, &len);
	T_CHECK(s != NULL);
	T_CHECK_EQ_STR(s, "");
	T_CHECK_EQ_INT(len, 0);
	free(s);

	strbuf_release(&sb);
	strbuf_release(&sb); /* twice is fine */
	strbuf_release(NULL);
}

static void test_strbuf_cap(void)
{
	struct strbuf sb;
	char *s;

	strbuf_init(&sb, 8);
	T_CHECK_EQ_INT(strbuf_add(&sb, "12345", 5), 0);
	T_CHECK_EQ_INT(strbuf_add(&sb, "6789", 4), -E2BIG);
	T_CHECK_EQ_INT(sb.len, 5);
	T_CHECK_EQ_STR(sb.buf, "12345");
	T_CHECK_EQ_INT(strbuf_add(&sb, "678", 3), 0); /* exactly max */
	T_CHECK_EQ_STR(sb.buf, "12345678");
	T_CHECK(sb.cap <= 9); /* never allocates past max + NUL */
	T_CHECK_EQ_INT(strbuf_add(&sb, "9", 1), -E2BIG);
	T_CHECK_EQ_INT(strbuf_add(&sb, "", 0), 0);
	T_CHECK_EQ_STR(sb.buf, "12345678");

	/* addf: a failed format leaves contents and terminator intact. */
	strbuf_reset(&sb);
	T_CHECK_EQ_INT(strbuf_addf(&sb, "%s", "abc"), 0);
	T_CHECK_EQ_INT(strbuf_addf(&sb, "%s", "defghi"), -E2BIG);
	T_CHECK_EQ_INT(sb.len, 3);
	T_CHECK_EQ_STR(sb.buf, "abc");
	T_CHECK_EQ_INT(strbuf_addf(&sb, "%d", 12345), 0);
	T_CHECK_EQ_STR(sb.buf, "abc12345");
	T_CHECK_EQ_INT(strbuf_addf(&sb, "%s", ""), 0);
	T_CHECK_EQ_INT(strbuf_addf(&sb, "x"), -E2BIG);
	T_CHECK_EQ_STR(sb.buf, "abc12345");

	/* Huge sizes are refused before any arithmetic wraps. */
	T_CHECK_EQ_INT(strbuf_add(&sb, "x", SIZE_MAX), -E2BIG);
	T_CHECK_EQ_INT(sb.len, 8);

	/* The cap survives detach and release. */
	s = strbuf_detach(&sb, NULL);
	T_CHECK_EQ_STR(s, "abc12345");
	free(s);
	T_CHECK_EQ_INT(sb.max, 8);
	T_CHECK_EQ_INT(strbuf_add(&sb, "123456789", 9), -E2BIG);
	T_CHECK(sb.buf == NULL);
	strbuf_release(&sb);

	/* Cap of 1 byte. */
	strbuf_init(&sb, 1);
	T_CHECK_EQ_INT(strbuf_addf(&sb, "%s", "ab"), -E2BIG);
	T_CHECK_EQ_INT(strbuf_addf(&sb, "%c", 'a'), 0);
	T_CHECK_EQ_STR(sb.buf, "a");
	strbuf_release(&sb);

	/* Unlimited buffer: huge request fails cleanly. */
	strbuf_init(&sb, 0);
	T_CHECK_EQ_INT(strbuf_add(&sb, "a", 1), 0);
	T_CHECK(strbuf_add(&sb, "x", SIZE_MAX - 1) < 0);
	T_CHECK_EQ_STR(sb.buf, "a");
	strbuf_release(&sb);
}

static void test_parse_u32(void)
{
	uint32_t v = 42;

	T_CHECK_EQ_INT(parse_u32("0", 0, UINT32_MAX, &v), 0);
	T_CHECK_EQ_INT(v, 0);
	T_CHECK_EQ_INT(parse_u32("4294967295", 0, UINT32_MAX, &v), 0);
	T_CHECK_EQ_INT(v, UINT32_MAX);
	T_CHECK_EQ_INT(parse_u32("007", 0, UINT32_MAX, &v), 0);
	T_CHECK_EQ_INT(v, 7);

	v = 42;
	T_CHECK_EQ_INT(parse_u32("4294967296", 0, UINT32_MAX, &v), -ERANGE);
	T_CHECK_EQ_INT(parse_u32("18446744073709551615", 0, UINT32_MAX, &v), -ERANGE);
	T_CHECK_EQ_INT(parse_u32("99999999999999999999999", 0, UINT32_MAX, &v), -ERANGE);
	T_CHECK_EQ_INT(parse_u32("5", 10, 20, &v), -ERANGE);
	T_CHECK_EQ_INT(parse_u32("21", 10, 20, &v), -ERANGE);
	T_CHECK_EQ_INT(parse_u32("", 0, UINT32_MAX, &v), -EINVAL);
	T_CHECK_EQ_INT(parse_u32(NULL, 0, UINT32_MAX, &v), -EINVAL);
	T_CHECK_EQ_INT(parse_u32("-1", 0, UINT32_MAX, &v), -EINVAL);
	T_CHECK_EQ_INT(parse_u32("+1", 0, UINT32_MAX, &v), -EINVAL);
	T_CHECK_EQ_INT(parse_u32(" 1", 0, UINT32_MAX, &v), -EINVAL);
	T_CHECK_EQ_INT(parse_u32("1 ", 0, UINT32_MAX, &v), -EINVAL);
	T_CHECK_EQ_INT(parse_u32("1\n", 0, UINT32_MAX, &v), -EINVAL);
	T_CHECK_EQ_INT(parse_u32("0x10", 0, UINT32_MAX, &v), -EINVAL);
	T_CHECK_EQ_INT(parse_u32("12a", 0, UINT32_MAX, &v), -EINVAL);
	T_CHECK_EQ_INT(parse_u32("1.0", 0, UINT32_MAX, &v), -EINVAL);
	T_CHECK_EQ_INT(parse_u32("1e3", 0, UINT32_MAX, &v), -EINVAL);
	/* Junk wins over overflow: the input is malformed whatever its size. */
	T_CHECK_EQ_INT(parse_u32("99999999999999999999999x", 0, UINT32_MAX, &v), -EINVAL);
	T_CHECK_EQ_INT(v, 42); /* untouched by every failure */

	T_CHECK_EQ_INT(parse_u32("10", 10, 10, &v), 0);
	T_CHECK_EQ_INT(v, 10);
}

static void test_parse_u64(void)
{
	uint64_t v = 42;

	T_CHECK_EQ_INT(parse_u64("18446744073709551615", 0, UINT64_MAX, &v), 0);
	T_CHECK(v == UINT64_MAX);
	T_CHECK_EQ_INT(parse_u64("4294967296", 0, UINT64_MAX, &v), 0);
	T_CHECK(v == 4294967296ULL);
	v = 42;
	T_CHECK_EQ_INT(parse_u64("18446744073709551616", 0, UINT64_MAX, &v), -ERANGE);
	T_CHECK_EQ_INT(parse_u64("100000000000000000000", 0, UINT64_MAX, &v), -ERANGE);
	T_CHECK_EQ_INT(parse_u64("-0", 0, UINT64_MAX, &v), -EINVAL);
	T_CHECK_EQ_INT(parse_u64("", 0, UINT64_MAX, &v), -EINVAL);
	T_CHECK_EQ_INT(parse_u64("\t5", 0, UINT64_MAX, &v), -EINVAL);
	T_CHECK_EQ_INT(parse_u64("1000", 0, 999, &v), -ERANGE);
	T_CHECK_EQ_INT(v, 42);
}

struct dur_case {
	const char *in;
	int err;
	uint64_t ms;
};

static void test_parse_duration(void)
{
	static const struct dur_case cases[] = {
		{ "10", 0, 10000 },
		{ "10s", 0, 10000 },
		{ "1.5", 0, 1500 },
		{ "1.5s", 0, 1500 },
		{ "500ms", 0, 500 },
		{ "2m", 0, 120000 },
		{ "1h", 0, 3600000 },
		{ "0", 0, 0 },
		{ "0ms", 0, 0 },
		{ "0.001", 0, 1 },
		{ "0.0010000", 0, 1 },
		{ "1.000ms", 0, 1 },
		{ "0.5m", 0, 30000 },
		{ "1.25h", 0, 4500000 },
		{ "0.0000001h", -EINVAL, 0 }, /* 0.36 ms */
		{ "0.0001", -EINVAL, 0 },
		{ "1.5ms", -EINVAL, 0 },
		{ "0.1234567891", -EINVAL, 0 },
		{ "18446744073709551615ms", 0, UINT64_MAX },
		{ "18446744073709551616ms", -ERANGE, 0 },
		{ "18446744073709551s", 0, 18446744073709551000ULL },
		{ "18446744073709552s", -ERANGE, 0 },
		{ "307445734561825m", 0, 18446744073709500000ULL },
		{ "307445734561826m", -ERANGE, 0 },
		{ "18446744073709551.615", 0, UINT64_MAX },
		{ "18446744073709551.616", -ERANGE, 0 },
		{ "99999999999999999999999h", -ERANGE, 0 },
		{ "99999999999999999999999x", -EINVAL, 0 },
		{ "", -EINVAL, 0 },
		{ "s", -EINVAL, 0 },
		{ "ms", -EINVAL, 0 },
		{ ".5", -EINVAL, 0 },
		{ "1.", -EINVAL, 0 },
		{ "1.s", -EINVAL, 0 },
		{ "1..5", -EINVAL, 0 },
		{ "1.5.", -EINVAL, 0 },
		{ "-1", -EINVAL, 0 },
		{ "+1", -EINVAL, 0 },
		{ " 1", -EINVAL, 0 },
		{ "1 s", -EINVAL, 0 },
		{ "1s ", -EINVAL, 0 },
		{ "1S", -EINVAL, 0 },
		{ "1sec", -EINVAL, 0 },
		{ "1d", -EINVAL, 0 },
		{ "1mss", -EINVAL, 0 },
		{ "1hm", -EINVAL, 0 },
		{ "1e3", -EINVAL, 0 },
		{ "0x10", -EINVAL, 0 },
	};
	size_t i;
	uint64_t ms;
	int err;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		ms = 777;
		err = parse_duration_ms(cases[i].in, &ms);
		if (err != cases[i].err || ms != (cases[i].err ? 777 : cases[i].ms))
			fprintf(stderr, "duration case \"%s\": err %d ms %llu\n", cases[i].in, err,
				(unsigned long long)ms);
		T_CHECK_EQ_INT(err, cases[i].err);
		T_CHECK(ms == (cases[i].err ? 777 : cases[i].ms));
	}
	T_CHECK_EQ_INT(parse_duration_ms(NULL, &ms), -EINVAL);
}

static void test_parse_pids(void)
{
	int *pids = NULL, *before;
	size_t n = 0;

	T_CHECK_EQ_INT(parse_pid_list("123,456", &pids, &n), 0);
	T_CHECK_EQ_INT(n, 2);
	T_CHECK(pids && pids[0] == 123 && pids[1] == 456);

	/* Appends, as "-p 123,456 -p 7,123,8,7" would, keeping first occurrences in order. */
	T_CHECK_EQ_INT(parse_pid_list("7,123,8,7", &pids, &n), 0);
	T_CHECK_EQ_INT(n, 4);
	T_CHECK(pids[0] == 123 && pids[1] == 456 && pids[2] == 7 && pids[3] == 8);

	/* Failures leave the array alone (same pointer, same contents). */
	before = pids;
	T_CHECK_EQ_INT(parse_pid_list("", &pids, &n), -EINVAL);
	T_CHECK_EQ_INT(parse_pid_list(",", &pids, &n), -EINVAL);
	T_CHECK_EQ_INT(parse_pid_list("1,", &pids, &n), -EINVAL);
	T_CHECK_EQ_INT(parse_pid_list(",1", &pids, &n), -EINVAL);
	T_CHECK_EQ_INT(parse_pid_list("1,,2", &pids, &n), -EINVAL);
	T_CHECK_EQ_INT(parse_pid_list("0", &pids, &n), -ERANGE);
	T_CHECK_EQ_INT(parse_pid_list("9,0", &pids, &n), -ERANGE);
	T_CHECK_EQ_INT(parse_pid_list("2147483648", &pids, &n), -ERANGE);
	T_CHECK_EQ_INT(parse_pid_list("99999999999999999999999", &pids, &n), -ERANGE);
	T_CHECK_EQ_INT(parse_pid_list("-1", &pids, &n), -EINVAL);
	T_CHECK_EQ_INT(parse_pid_list("1, 2", &pids, &n), -EINVAL);
	T_CHECK_EQ_INT(parse_pid_list("1;2", &pids, &n), -EINVAL);
	T_CHECK_EQ_INT(parse_pid_list("1 ", &pids, &n), -EINVAL);
	T_CHECK_EQ_INT(parse_pid_list("abc", &pids, &n), -EINVAL);
	T_CHECK_EQ_INT(parse_pid_list(NULL, &pids, &n), -EINVAL);
	T_CHECK(pids == before);
	T_CHECK_EQ_INT(n, 4);
	T_CHECK(pids[0] == 123 && pids[1] == 456 && pids[2] == 7 && pids[3] == 8);

	T_CHECK_EQ_INT(parse_pid_list("2147483647,123", &pids, &n), 0);
	T_CHECK_EQ_INT(n, 5);
	T_CHECK_EQ_INT(pids[4], INT_MAX);
	free(pids);

	/* Only duplicates: one entry. */
	pids = NULL;
	n = 0;
	T_CHECK_EQ_INT(parse_pid_list("5,5,5,05", &pids, &n), 0);
	T_CHECK_EQ_INT(n, 1);
	T_CHECK_EQ_INT(pids[0], 5);
	free(pids);

	/* A NULL array with a non-zero count is a caller bug. */
	pids = NULL;
	n = 3;
	T_CHECK_EQ_INT(parse_pid_list("1", &pids, &n), -EINVAL);
	T_CHECK(pids == NULL);
}

int main(void)
{
	test_strbuf_basic();
	test_strbuf_cap();
	test_parse_u32();
	test_parse_u64();
	test_parse_duration();
	test_parse_pids();
	return T_DONE();
}
