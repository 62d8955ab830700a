/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * fuzz_flamesvg.c - libFuzzer target for the flame graph SVG writer (user/flamesvg.c).
 *
 * Input: one option byte (reverse, differential, output cap, width, minimum frame width), then
 * stacks separated by '\n', frames by ';', any other bytes being label bytes; the first byte of
 * a line also gives its count. In differential mode some lines go to the base, some to both.
 * Checks: only 0 (or -E2BIG under a cap, output restored); one root, balanced tags of the known
 * elements only, quoted attributes without '<', no raw '<' or '>' in text, known entities, so no
 * label can open an element; exactly one <script>, one CDATA section; valid UTF-8 with no control
 * bytes but '\n'.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flamesvg.h"
#include "stacks.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_FRAMES 256

#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "fuzz_flamesvg: %s:%d: %s\n", __FILE__, __LINE__, #cond);  \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

static size_t count_str(const char *s, const char *needle)
{
	size_t n = 0, nl = strlen(needle);
	const char *end = s + strlen(s);

	/* memchr, not strstr: the sanitizers' strstr takes strlen of the rest on every call. */
	while ((s = memchr(s, needle[0], (size_t)(end - s))) != NULL) {
		if ((size_t)(end - s) >= nl && !memcmp(s, needle, nl)) {
			n++;
			s += nl;
		} else {
			s++;
		}
	}
	return n;
}

static int entity_ok(const char *s, const char *end)
{
	static const char *const names[] = { "lt;", "gt;", "amp;", "quot;", "#39;" };
	size_t i;

	for (i = 0; i < sizeof(names) / sizeof(*names); i++)
		if ((size_t)(end - s) >= strlen(names[i]) && !memcmp(s, names[i], strlen(names[i])))
			return 1;
	return 0;
}

static const char *const known_tags[] = { "svg",  "style", "script", "defs", "linearGradient",
					  "stop", "rect",  "text",   "g",    "title" };

/* Well-formedness of the writer's output (see test_flamesvg.c); NULL when fine. */
static const char *xml_check(const char *s, size_t len)
{
	const char *end = s + len, *stack[16], *q;
	size_t depth = 0, slen[16], nl, i;
	int roots = 0;

	while (s < end) {
		if (*s != '<') {
			for (; s < end && *s != '<'; s++) {
				if (*s == '>')
					return "raw > in text";
				if (*s == '&' && !entity_ok(s + 1, end))
					return "bad entity in text";
				if (!depth && !strchr(" \t\r\n", *s))
					return "text outside the root";
			}
			continue;
		}
		if (end - s >= 2 && s[1] == '?') {
			q = memmem(s, (size_t)(end - s), "?>", 2);
			if (!q || roots)
				return "bad processing instruction";
			s = q + 2;
		} else if (end - s >= 4 && !memcmp(s, "<!--", 4)) {
			q = memmem(s + 4, (size_t)(end - s - 4), "-->", 3);
			if (!q)
				return "unterminated comment";
			s = q + 3;
		} else if (end - s >= 9 && !memcmp(s, "<![CDATA[", 9)) {
			q = memmem(s + 9, (size_t)(end - s - 9), "]]>", 3);
			if (!q || !depth)
				return "bad CDATA";
			s = q + 3;
		} else if (end - s >= 2 && s[1] == '/') {
			s += 2;
			for (nl = 0; s + nl < end && !strchr(" \t\n>", s[nl]); nl++)
				;
			if (!depth || nl != slen[depth - 1] || memcmp(s, stack[depth - 1], nl))
				return "mismatched end tag";
			depth--;
			s += nl;
			if (s >= end || *s != '>')
				return "bad end tag";
			s++;
		} else {
			const char *name = ++s;
			int known = 0;

			for (nl = 0; s + nl < end && !strchr(" \t\n/>", s[nl]); nl++)
				;
			for (i = 0; i < sizeof(known_tags) / sizeof(*known_tags); i++)
				if (nl == strlen(known_tags[i]) && !memcmp(name, known_tags[i], nl))
					known = 1;
			if (!known)
				return "unknown element";
			s += nl;
			for (;;) {
				while (s < end && strchr(" \t\n", *s))
					s++;
				if (s >= end)
					return "unterminated tag";
				if (*s == '>' || (*s == '/' && s + 1 < end && s[1] == '>'))
					break;
				while (s < end && *s != '=' && !strchr(" \t\n/>", *s))
					s++;
				if (s + 1 >= end || *s != '=' || s[1] != '"')
					return "bad attribute";
				q = memchr(s + 2, '"', (size_t)(end - s - 2));
				if (!q)
					return "unterminated attribute";
				for (s += 2; s < q; s++) {
					if (*s == '<')
						return "< in attribute";
					if (*s == '&' && !entity_ok(s + 1, end))
						return "bad entity in attribute";
				}
				s = q + 1;
			}
			if (!depth && roots++)
				return "two roots";
			if (*s == '/') {
				s += 2;
				if (!depth)
					return "empty root";
				continue;
			}
			if (depth == 16)
				return "too deep";
			stack[depth] = name;
			slen[depth++] = nl;
			s++;
		}
	}
	if (depth || roots != 1)
		return "unbalanced";
	return NULL;
}

/* Strict UTF-8 (no overlongs, surrogates, U+FFFE/U+FFFF) and no control bytes but '\n'. */
static int text_ok(const unsigned char *s, size_t len)
{
	size_t i = 0, n, k;
	uint32_t c, min;

	while (i < len) {
		c = s[i];
		if (c < 0x80) {
			if ((c < 0x20 && c != '\n') || c == 0x7f)
				return 0;
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf) {
			n = 1;
			c &= 0x1f;
			min = 0x80;
		} else if (c >= 0xe0 && c <= 0xef) {
			n = 2;
			c &= 0x0f;
			min = 0x800;
		} else if (c >= 0xf0 && c <= 0xf4) {
			n = 3;
			c &= 0x07;
			min = 0x10000;
		} else {
			return 0;
		}
		if (i + n >= len)
			return 0;
		for (k = 1; k <= n; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return 0;
			c = c << 6 | (s[i + k] & 0x3f);
		}
		if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff) || c == 0xfffe ||
		    c == 0xffff)
			return 0;
		i += n + 1;
	}
	return 1;
}

/* Add the stack in line[0..len) to st. */
static int add_line(struct stacks *st, const char *line, size_t len)
{
	uint32_t ids[MAX_FRAMES];
	uint64_t count = len ? 1 + (unsigned char)line[0] % 7 : 1;
	size_t n = 0, start = 0, i;
	int err;

	for (i = 0; i <= len && n < MAX_FRAMES; i++) {
		if (i < len && line[i] != ';')
			continue;
		err = stacks__intern(st, line + start, i - start, &ids[n++]);
		if (err)
			return err;
		start = i + 1;
	}
	return stacks__add(st, ids, n, count);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const unsigned widths[] = { 0, 100, 300, 2000 };
	static const double minws[] = { 0, 0.01, 0.2, 1, 5, 50, 1000, 1e-9 };
	struct stacks *st = NULL, *base = NULL;
	struct flamesvg_opts o = { .subtitle = "fuzz <&> ]]>" };
	const char *p, *end, *nl;
	size_t line = 0, cap = 0;
	struct strbuf sb;
	const char *msg;
	uint8_t flags;
	int err;

	if (size < 1)
		return 0;
	flags = data[0];
	data++;
	size--;
	st = stacks__new();
	base = stacks__new();
	if (!st || !base)
		goto out;
	o.reverse = flags & 1;
	if (flags & 2)
		o.base = base;
	if (flags & 4)
		cap = 4096 + size * 40;
	o.width = widths[flags >> 3 & 3];
	o.min_width_px = minws[flags >> 5 & 7];
	if (flags & 0x80)
		o.count_name = "ms<\"'&>";

	for (p = (const char *)data, end = p + size; p < end; p = nl + 1, line++) {
		nl = memchr(p, '\n', (size_t)(end - p));
		if (!nl)
			nl = end;
		if (line % 3 != 2 && add_line(st, p, (size_t)(nl - p)))
			goto out;
		if (o.base && line % 3 != 0 && add_line(base, p, (size_t)(nl - p)))
			goto out;
	}

	strbuf_init(&sb, cap);
	err = flamesvg_write(st, &o, &sb);
	if (err == -ENOMEM) {
		strbuf_release(&sb);
		goto out;
	}
	if (err) {
		CHECK(cap && err == -E2BIG && sb.len == 0);
		strbuf_release(&sb);
		goto out;
	}
	CHECK(sb.buf && strlen(sb.buf) == sb.len);
	msg = xml_check(sb.buf, sb.len);
	if (msg)
		fprintf(stderr, "fuzz_flamesvg: %s\n", msg);
	CHECK(msg == NULL);
	CHECK(text_ok((const unsigned char *)sb.buf, sb.len));
	CHECK(count_str(sb.buf, "<script") == 1);
	CHECK(count_str(sb.buf, "</script>") == 1);
	CHECK(count_str(sb.buf, "<![CDATA[") == 1);
	CHECK(count_str(sb.buf, "]]>") == 1);
	CHECK(count_str(sb.buf, "<g><title>") <= stacks__nstacks(st) * MAX_FRAMES + 1);
	CHECK(stacks__total(st) == 0 || strstr(sb.buf, "<g><title>all ("));
	CHECK(stacks__total(st) != 0 || strstr(sb.buf, ">No samples</text>"));
	strbuf_release(&sb);
out:
	stacks__free(st);
	stacks__free(base);
	return 0;
}
