/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * fuzz_parse.c - libFuzzer target for the strict parsers in user/util.c.
 *
 * Besides crashes and sanitizer reports it checks the contracts: outputs untouched on failure,
 * only the documented error codes, accepted numbers print back to the same digits, pid lists
 * free of zeros and duplicates and appended to what was there.
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined <flags> tests/fuzz/fuzz_parse.c user/util.c
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                           \
	do {                                                                                  \
		if (!(cond)) {                                                                \
			fprintf(stderr, "fuzz_parse: %s:%d: %s\n", __FILE__, __LINE__, #cond); \
			abort();                                                              \
		}                                                                             \
	} while (0)

/* Digits of s with leading zeros dropped ("" for all zeros). */
static const char *skip_zeros(const char *s)
{
	while (*s == '0')
		s++;
	return s;
}

static void check_u64(const char *s, uint64_t min, uint64_t max)
{
	uint64_t v = 0xdeadbeef;
	char back[32];
	int err;

	err = parse_u64(s, min, max, &v);
	CHECK(err == 0 || err == -EINVAL || err == -ERANGE);
	if (err) {
		CHECK(v == 0xdeadbeef);
		return;
	}
	CHECK(v >= min && v <= max);
	snprintf(back, sizeof(back), "%" PRIu64, v);
	CHECK(strcmp(skip_zeros(back), skip_zeros(s)) == 0);
}

static void check_u32(const char *s, uint32_t min, uint32_t max)
{
	uint32_t v = 0xdeadbeef;
	uint64_t v64 = 0;
	int err, err64;

	err = parse_u32(s, min, max, &v);
	CHECK(err == 0 || err == -EINVAL || err == -ERANGE);
	/* Must agree with the 64-bit parser over the same range. */
	err64 = parse_u64(s, min, max, &v64);
	CHECK(err == err64);
	if (err) {
		CHECK(v == 0xdeadbeef);
		return;
	}
	CHECK(v >= min && v <= max && v == v64);
}

static void check_duration(const char *s)
{
	uint64_t ms = 0xdeadbeef, whole;
	size_t len = strlen(s);
	int err;

	err = parse_duration_ms(s, &ms);
	CHECK(err == 0 || err == -EINVAL || err == -ERANGE);
	if (err) {
		CHECK(ms == 0xdeadbeef);
		return;
	}
	/* An integer with an "ms" suffix is exactly that many milliseconds. */
	if (len > 2 && strcmp(s + len - 2, "ms") == 0 && !strchr(s, '.')) {
		char digits[64];

		if (len - 2 < sizeof(digits)) {
			memcpy(digits, s, len - 2);
			digits[len - 2] = '\0';
			CHECK(parse_u64(digits, 0, UINT64_MAX, &whole) == 0 && whole == ms);
		}
	}
}

static void check_pids(const char *s)
{
	int *pids = NULL, *before;
	size_t n = 0, old_n, i, j;
	int err;

	/* Start from a non-empty list so appending and cross-list duplicates are exercised. */
	err = parse_pid_list("1,42", &pids, &n);
	CHECK(err == 0 && n == 2);
	before = pids;
	old_n = n;

	err = parse_pid_list(s, &pids, &n);
	CHECK(err == 0 || err == -EINVAL || err == -ERANGE || err == -ENOMEM);
	if (err) {
		CHECK(pids == before && n == old_n && pids[0] == 1 && pids[1] == 42);
	} else {
		CHECK(n >= old_n && pids[0] == 1 && pids[1] == 42);
		for (i = 0; i < n; i++) {
			CHECK(pids[i] > 0);
			for (j = 0; j < i; j++)
				CHECK(pids[i] != pids[j]);
		}
	}
	free(pids);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s;

	/* The parsers take C strings: cut at the first NUL like a real argv would. */
	s = malloc(size + 1);
	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';

	check_u64(s, 0, UINT64_MAX);
	check_u64(s, 10, 1000);
	check_u32(s, 0, UINT32_MAX);
	check_u32(s, 1, 65535);
	check_duration(s);
	check_pids(s);

	free(s);
	return 0;
}
