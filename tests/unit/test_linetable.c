/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * test_linetable.c - unit tests for user/linetable.c.
 *
 *   test_linetable                    hand-built tables for every format
 *   test_linetable --check FILE...    also every offset of lt_dump.py dumps
 *
 * The expected values of the hand-built tables were checked against
 * PyCode_Addr2Line() of the matching CPython (code.replace() with the same
 * bytes) where CPython stays inside the table.
 */
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "linetable.h"

#define A2L(fmt, tab, first, off) linetable_addr2line(fmt, tab, sizeof(tab), first, off)

static void test_lnotab_u8(void)
{
	const enum linetable_format f = LINETABLE_LNOTAB_U8;
	/* 6 bytes at the first line, 3 bytes one line on, the rest two more on */
	static const uint8_t simple[] = { 6, 1, 3, 2 };
	/* line increments are unsigned: 200 is +200, not -56 */
	static const uint8_t big[] = { 2, 200, 2, 255 };
	/* a 300-byte line then a 300-line gap, split into pairs as 2.7 does */
	static const uint8_t split[] = { 255, 0, 45, 0, 0, 255, 0, 45 };
	/* trailing odd byte is ignored */
	static const uint8_t odd[] = { 2, 1, 9 };
	static const uint8_t wrap[] = { 0, 1, 4, 255 };

	T_CHECK_EQ_INT(linetable_addr2line(f, NULL, 0, 10, 0), 10);
	T_CHECK_EQ_INT(linetable_addr2line(f, NULL, 7, 10, 99), 10);
	T_CHECK_EQ_INT(linetable_addr2line(f, simple, 0, 10, 50), 10);

	T_CHECK_EQ_INT(A2L(f, simple, 5, 0), 5);
	T_CHECK_EQ_INT(A2L(f, simple, 5, 5), 5);
	T_CHECK_EQ_INT(A2L(f, simple, 5, 6), 6);
	T_CHECK_EQ_INT(A2L(f, simple, 5, 8), 6);
	T_CHECK_EQ_INT(A2L(f, simple, 5, 9), 8);
	/* no end in an lnotab: past the last entry is still the last line */
	T_CHECK_EQ_INT(A2L(f, simple, 5, 100000), 8);
	T_CHECK_EQ_INT(A2L(f, simple, 5, UINT32_MAX), 8);

	T_CHECK_EQ_INT(A2L(f, big, 1, 1), 1);
	T_CHECK_EQ_INT(A2L(f, big, 1, 2), 201);
	T_CHECK_EQ_INT(A2L(f, big, 1, 4), 456);

	T_CHECK_EQ_INT(A2L(f, split, 1, 299), 1);
	T_CHECK_EQ_INT(A2L(f, split, 1, 300), 301);

	T_CHECK_EQ_INT(A2L(f, odd, 1, 1), 1);
	T_CHECK_EQ_INT(A2L(f, odd, 1, 100), 2);

	/* CPython's int wraps; ours must too, without signed overflow */
	T_CHECK_EQ_INT(A2L(f, wrap, INT_MAX, 0), INT_MIN);
	T_CHECK_EQ_INT(A2L(f, wrap, INT_MAX, 4), INT_MIN + 255);
}

static void test_lnotab_s8(void)
{
	const enum linetable_format f = LINETABLE_LNOTAB_S8;
	/* a for loop: line 11, body 12, back to 11 (delta -1 = 0xff) */
	static const uint8_t loop[] = { 2, 1, 4, 1, 6, 0xff };
	/* 0x80 is a real -128 here, not "no line" */
	static const uint8_t m128[] = { 0, 0x80 };
	/* +256 in one spot: 3.6 splits a line jump into 127-steps */
	static const uint8_t jump[] = { 0, 0x7f, 0, 0x7f, 0, 2, 10, 0 };
	static const uint8_t wrap[] = { 0, 0xff };

	T_CHECK_EQ_INT(linetable_addr2line(f, NULL, 0, 3, 4), 3);

	T_CHECK_EQ_INT(A2L(f, loop, 10, 0), 10);
	T_CHECK_EQ_INT(A2L(f, loop, 10, 1), 10);
	T_CHECK_EQ_INT(A2L(f, loop, 10, 2), 11);
	T_CHECK_EQ_INT(A2L(f, loop, 10, 6), 12);
	T_CHECK_EQ_INT(A2L(f, loop, 10, 11), 12);
	T_CHECK_EQ_INT(A2L(f, loop, 10, 12), 11);
	T_CHECK_EQ_INT(A2L(f, loop, 10, 4000), 11);

	T_CHECK_EQ_INT(A2L(f, m128, 200, 0), 72);

	T_CHECK_EQ_INT(A2L(f, jump, 1, 0), 257);
	T_CHECK_EQ_INT(A2L(f, jump, 1, 10), 257);

	/* the same bytes are +255 in 2.7 */
	T_CHECK_EQ_INT(A2L(f, wrap, 5, 0), 4);
	T_CHECK_EQ_INT(A2L(LINETABLE_LNOTAB_U8, wrap, 5, 0), 260);
	T_CHECK_EQ_INT(A2L(f, wrap, INT_MIN, 0), INT_MAX);
}

static void test_pep626(void)
{
	const enum linetable_format f = LINETABLE_PEP626;
	/*
	 * [0,6) line 11; an empty entry still moves the line (+5, to 16);
	 * [6,10) no line; [10,12) line 14; nothing after 12.
	 */
	static const uint8_t tab[] = { 6, 1, 0, 5, 4, 0x80, 2, 0xfe };
	/* leading empty no-line entry; odd trailing byte ignored */
	static const uint8_t lead[] = { 0, 0x80, 0, 3, 4, 0, 8 };
	/* 508 bytes on one line, split 254 + 254 as the 3.10 compiler does */
	static const uint8_t wide[] = { 254, 1, 254, 0 };
	static const uint8_t wrap[] = { 2, 0xff };

	T_CHECK_EQ_INT(linetable_addr2line(f, NULL, 0, 10, 0), -1);
	T_CHECK_EQ_INT(linetable_addr2line(f, tab, 1, 10, 0), -1);

	T_CHECK_EQ_INT(A2L(f, tab, 10, 0), 11);
	T_CHECK_EQ_INT(A2L(f, tab, 10, 5), 11);
	T_CHECK_EQ_INT(A2L(f, tab, 10, 6), -1);
	T_CHECK_EQ_INT(A2L(f, tab, 10, 9), -1);
	T_CHECK_EQ_INT(A2L(f, tab, 10, 10), 14);
	T_CHECK_EQ_INT(A2L(f, tab, 10, 11), 14);
	T_CHECK_EQ_INT(A2L(f, tab, 10, 12), -1);
	T_CHECK_EQ_INT(A2L(f, tab, 10, UINT32_MAX), -1);

	T_CHECK_EQ_INT(A2L(f, lead, 7, 0), 10);
	T_CHECK_EQ_INT(A2L(f, lead, 7, 3), 10);
	T_CHECK_EQ_INT(A2L(f, lead, 7, 4), -1);

	T_CHECK_EQ_INT(A2L(f, wide, 1, 253), 2);
	T_CHECK_EQ_INT(A2L(f, wide, 1, 254), 2);
	T_CHECK_EQ_INT(A2L(f, wide, 1, 507), 2);
	T_CHECK_EQ_INT(A2L(f, wide, 1, 508), -1);

	T_CHECK_EQ_INT(A2L(f, wrap, INT_MIN, 0), INT_MAX);
}

static void test_locations(void)
{
	const enum linetable_format f = LINETABLE_LOCATIONS;
	/*
	 * 0x80 | kind << 3 | (code units - 1), then the entry's other bytes:
	 *   80 05           short form, 1 unit:  [0,2)   line 10
	 *   d9 02 07        one-line1, 2 units:  [2,6)   line 11
	 *   e8 07           no columns, -3:      [6,8)   line 8
	 *   f2 50 1f 00 ..  long form, +1000:    [8,14)  line 1008
	 *   f9              no location, 2:      [14,18) none
	 *   e0 01 02        one-line2, 1 unit:   [18,20) line 1010
	 *   ef 01           no columns, -0, 8:   [20,36) line 1010
	 */
	static const uint8_t tab[] = {
		0x80, 0x05,
		0xd9, 0x02, 0x07,
		0xe8, 0x07,
		0xf2, 0x50, 0x1f, 0x00, 0x05, 0x07,
		0xf9,
		0xe0, 0x01, 0x02,
		0xef, 0x01,
	};
	/* the first byte is an entry even without bit 7 (kind 13, +2) */
	static const uint8_t nobit7[] = { 0x68, 0x04, 0x80 };
	/* a leading 0x78 is kind 15 but not the no-line marker */
	static const uint8_t fake_none[] = { 0x78, 0x80 };
	/* the varint runs into the next entry's first byte, as CPython reads it */
	static const uint8_t cross[] = { 0xe8, 0x40, 0x81 };
	/* a varint cut short by the end of the table */
	static const uint8_t trunc[] = { 0xe8, 0x42 };
	/* a varint much longer than 32 bits: only 6 chunks count */
	static const uint8_t overlong[] = { 0xe8, 0x7f, 0x7f, 0x7f, 0x7f, 0x7f, 0x7f,
					    0x7f, 0x7f, 0x7f, 0x7f, 0x00 };
	/* a table that is only the no-line marker */
	static const uint8_t none[] = { 0xff };

	T_CHECK_EQ_INT(linetable_addr2line(f, NULL, 0, 10, 0), -1);
	T_CHECK_EQ_INT(linetable_addr2line(f, NULL, 3, 10, 0), -1);

	T_CHECK_EQ_INT(A2L(f, tab, 10, 0), 10);
	T_CHECK_EQ_INT(A2L(f, tab, 10, 1), 10);
	T_CHECK_EQ_INT(A2L(f, tab, 10, 2), 11);
	T_CHECK_EQ_INT(A2L(f, tab, 10, 5), 11);
	T_CHECK_EQ_INT(A2L(f, tab, 10, 6), 8);
	T_CHECK_EQ_INT(A2L(f, tab, 10, 8), 1008);
	T_CHECK_EQ_INT(A2L(f, tab, 10, 13), 1008);
	T_CHECK_EQ_INT(A2L(f, tab, 10, 14), -1);
	T_CHECK_EQ_INT(A2L(f, tab, 10, 17), -1);
	T_CHECK_EQ_INT(A2L(f, tab, 10, 18), 1010);
	T_CHECK_EQ_INT(A2L(f, tab, 10, 20), 1010);
	T_CHECK_EQ_INT(A2L(f, tab, 10, 35), 1010);
	T_CHECK_EQ_INT(A2L(f, tab, 10, 36), -1);
	T_CHECK_EQ_INT(A2L(f, tab, 10, UINT32_MAX), -1);
	/* line 0 is a real line (3.11 module RESUME) */
	T_CHECK_EQ_INT(A2L(f, tab, -998, 8), 0);

	T_CHECK_EQ_INT(A2L(f, nobit7, 1, 0), 3);
	T_CHECK_EQ_INT(A2L(f, nobit7, 1, 2), 3);
	T_CHECK_EQ_INT(A2L(f, nobit7, 1, 4), -1);

	T_CHECK_EQ_INT(A2L(f, fake_none, 4, 0), 4);
	T_CHECK_EQ_INT(A2L(f, fake_none, 4, 2), 4);
	T_CHECK_EQ_INT(A2L(f, fake_none, 4, 4), -1);

	T_CHECK_EQ_INT(A2L(f, cross, 1, 0), 33);
	T_CHECK_EQ_INT(A2L(f, cross, 1, 2), 33);
	T_CHECK_EQ_INT(A2L(f, cross, 1, 6), -1);

	T_CHECK_EQ_INT(A2L(f, trunc, 1, 0), 2);
	T_CHECK_EQ_INT(A2L(f, trunc, 1, 2), -1);

	/* 6 chunks of 63 = 0xffffffff after truncation to 32 bits: -(2^31 - 1) */
	T_CHECK_EQ_INT(A2L(f, overlong, 10, 0), 10 - INT_MAX);
	T_CHECK_EQ_INT(A2L(f, overlong, 10, 1), 10 - INT_MAX);
	T_CHECK_EQ_INT(A2L(f, overlong, 10, 2), -1);

	T_CHECK_EQ_INT(A2L(f, none, 1, 0), -1);
	T_CHECK_EQ_INT(A2L(f, none, 1, 15), -1);
	T_CHECK_EQ_INT(A2L(f, none, 1, 16), -1);
}

/* Big hostile tables: each call must finish in one linear pass, with no UB. */
static void test_hostile(void)
{
	static const uint8_t fill[] = { 0x00, 0x40, 0x7f, 0x80, 0xc0, 0xf0, 0xf7, 0xff };
	const size_t len = 4u << 20;
	uint8_t *tab = malloc(len);
	size_t i, k;

	T_CHECK(tab != NULL);
	if (!tab)
		return;
	for (k = 0; k < sizeof(fill); k++) {
		int fmt;

		memset(tab, fill[k], len);
		for (fmt = 0; fmt <= 3; fmt++) {
			/* just must not crash, hang or trip a sanitizer */
			(void)linetable_addr2line(fmt, tab, len, INT_MAX, UINT32_MAX);
			(void)linetable_addr2line(fmt, tab, len, INT_MIN, 1u << 20);
		}
	}
	/* 0xf0: every byte starts a long-form entry whose varint runs on */
	memset(tab, 0xf0, len);
	T_CHECK_EQ_INT(linetable_addr2line(LINETABLE_LOCATIONS, tab, len, 1, UINT32_MAX), -1);
	/* 0xff: every entry is "no location" */
	memset(tab, 0xff, len);
	T_CHECK_EQ_INT(linetable_addr2line(LINETABLE_LOCATIONS, tab, len, 1, 12345), -1);
	/* 3.10 deltas: -1 each, 2 bytes per range */
	for (i = 0; i + 1 < len; i += 2) {
		tab[i] = 2;
		tab[i + 1] = 0xff;
	}
	T_CHECK_EQ_INT(linetable_addr2line(LINETABLE_PEP626, tab, len, 0, 2 * 1000), -1001);
	T_CHECK_EQ_INT(linetable_addr2line(LINETABLE_PEP626, tab, len, 0, (uint32_t)len), -1);
	T_CHECK_EQ_INT(linetable_addr2line(LINETABLE_LNOTAB_S8, tab, len, 0, UINT32_MAX),
		       -(int)(len / 2));
	free(tab);

	/* an unknown format */
	T_CHECK_EQ_INT(linetable_addr2line((enum linetable_format)7, fill, sizeof(fill), 1, 0),
		       -1);
	T_CHECK_EQ_INT(linetable_addr2line((enum linetable_format)-1, fill, sizeof(fill), 1, 0),
		       -1);
}

/* ---- --check: lt_dump.py ground truth ------------------------------------ */

struct dump_stats {
	unsigned long ncode;
	unsigned long noffsets;
	unsigned long mismatches;
	unsigned long end_ncode;	/* from the E line */
	unsigned long end_noffsets;
	int has_end;
};

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Decode the hex token at *s into *buf (grown as needed). Returns 0 or -errno. */
static int parse_hex(char **s, uint8_t **buf, size_t *cap, size_t *len)
{
	char *p = *s, *tok_end;
	size_t n, i;

	tok_end = p + strcspn(p, " \n");
	n = (size_t)(tok_end - p);
	*len = 0;
	*s = tok_end;
	if (n == 1 && p[0] == '-')
		return 0;
	if (n % 2)
		return -EINVAL;
	if (n / 2 > *cap) {
		uint8_t *nb = realloc(*buf, n / 2);

		if (!nb)
			return -ENOMEM;
		*buf = nb;
		*cap = n / 2;
	}
	for (i = 0; i < n / 2; i++) {
		int hi = hexval(p[2 * i]), lo = hexval(p[2 * i + 1]);

		if (hi < 0 || lo < 0)
			return -EINVAL;
		(*buf)[i] = (uint8_t)(hi << 4 | lo);
	}
	*len = n / 2;
	return 0;
}

static int parse_long(char **s, long *out)
{
	char *end;

	errno = 0;
	*out = strtol(*s, &end, 10);
	if (errno || end == *s || (*end != ' ' && *end != '\n' && *end != '\0'))
		return -EINVAL;
	*s = end;
	return 0;
}

static int check_dump(const char *path, struct dump_stats *st)
{
	FILE *f = NULL;
	char *line = NULL, *label = NULL;
	size_t line_cap = 0, tab_cap = 0, tab_len = 0;
	uint8_t *tab = NULL;
	long fmt = -1, first = 0;
	int have_code = 0, have_version = 0, err = 0;
	unsigned long lineno = 0;

	f = fopen(path, "r");
	if (!f) {
		err = -errno;
		fprintf(stderr, "cannot open '%s': %s\n", path, strerror(-err));
		return err;
	}
	while (getline(&line, &line_cap, f) > 0) {
		char *p = line + 1;
		long a, b;
		int got;

		lineno++;
		switch (line[0]) {
		case '#':
		case 'P':
			break;
		case 'V':
			if (parse_long(&p, &a) || a != 1) {
				err = -EINVAL;
				goto bad;
			}
			have_version = 1;
			break;
		case 'C':
			if (!have_version || parse_long(&p, &fmt) || parse_long(&p, &first) ||
			    *p++ != ' ' || parse_hex(&p, &tab, &tab_cap, &tab_len) ||
			    fmt < 0 || fmt > 3 || first < INT_MIN || first > INT_MAX) {
				err = -EINVAL;
				goto bad;
			}
			free(label);
			label = strdup(*p == ' ' ? p + 1 : p);
			if (!label) {
				err = -ENOMEM;
				goto cleanup;
			}
			label[strcspn(label, "\n")] = '\0';
			have_code = 1;
			st->ncode++;
			break;
		case 'O':
			if (!have_code || parse_long(&p, &a) || parse_long(&p, &b) || a < 0 ||
			    a > (long)UINT32_MAX) {
				err = -EINVAL;
				goto bad;
			}
			st->noffsets++;
			got = linetable_addr2line((enum linetable_format)fmt, tab, tab_len,
						  (int)first, (uint32_t)a);
			if (got != b) {
				if (st->mismatches < 20)
					fprintf(stderr,
						"%s:%lu: %s fmt %ld offset %ld: want %ld got %d\n",
						path, lineno, label, fmt, a, b, got);
				st->mismatches++;
			}
			break;
		case 'E':
			if (parse_long(&p, &a) || parse_long(&p, &b)) {
				err = -EINVAL;
				goto bad;
			}
			st->end_ncode = (unsigned long)a;
			st->end_noffsets = (unsigned long)b;
			st->has_end = 1;
			break;
		default:
			err = -EINVAL;
			goto bad;
		}
	}
	if (ferror(f)) {
		err = -EIO;
		fprintf(stderr, "cannot read '%s'\n", path);
	}
	goto cleanup;
bad:
	fprintf(stderr, "%s:%lu: malformed line\n", path, lineno);
cleanup:
	fclose(f);
	free(line);
	free(label);
	free(tab);
	return err;
}

static void check_dumps(int n, char **paths)
{
	int i;

	for (i = 0; i < n; i++) {
		struct dump_stats st = { 0 };
		int err = check_dump(paths[i], &st);

		printf("%s: %lu code objects, %lu offsets checked, %lu mismatches\n", paths[i],
		       st.ncode, st.noffsets, st.mismatches);
		T_CHECK_EQ_INT(err, 0);
		T_CHECK(st.has_end);
		T_CHECK_EQ_INT(st.ncode, st.end_ncode);
		T_CHECK_EQ_INT(st.noffsets, st.end_noffsets);
		T_CHECK(st.noffsets > 0);
		T_CHECK_EQ_INT(st.mismatches, 0);
	}
}

int main(int argc, char **argv)
{
	if (argc > 1 && (strcmp(argv[1], "--check") != 0 || argc < 3)) {
		fprintf(stderr, "usage: %s [--check DUMP...]\n", argv[0]);
		return 2;
	}

	test_lnotab_u8();
	test_lnotab_s8();
	test_pep626();
	test_locations();
	test_hostile();
	if (argc > 1)
		check_dumps(argc - 2, argv + 2);

	return T_DONE();
}
