/* SPDX-License-Identifier: BSD-2-Clause */
/* test_flamesvg.c - flame graph SVG: tree merge, tooltips, escaping, colours, limits, scale. */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "flamesvg.h"
#include "harness.h"
#include "stacks.h"
#include "util.h"

/* Add the stack of NUL-terminated labels labels[0..n). */
static void add_stack(struct stacks *st, const char *const *labels, size_t n, uint64_t count)
{
	uint32_t ids[16];
	size_t i;

	for (i = 0; i < n && i < 16; i++)
		T_CHECK_EQ_INT(stacks__intern(st, labels[i], strlen(labels[i]), &ids[i]), 0);
	T_CHECK_EQ_INT(stacks__add(st, ids, n, count), 0);
}

/* Occurrences of needle in s. */
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

/* An entity at s (just past '&'): lt gt amp quot apos #DIGITS #xHEX followed by ';'. */
static int entity_ok(const char *s, const char *end)
{
	static const char *const names[] = { "lt;", "gt;", "amp;", "quot;", "apos;" };
	size_t i;

	for (i = 0; i < sizeof(names) / sizeof(*names); i++)
		if ((size_t)(end - s) >= strlen(names[i]) && !memcmp(s, names[i], strlen(names[i])))
			return 1;
	if (s < end && *s == '#') {
		s++;
		if (s < end && *s == 'x')
			s++;
		if (s >= end || !strchr("0123456789abcdefABCDEF", *s))
			return 0;
		while (s < end && *s && strchr("0123456789abcdefABCDEF", *s))
			s++;
		return s < end && *s == ';';
	}
	return 0;
}

static const char *const known_tags[] = { "svg",  "style", "script", "defs", "linearGradient",
					  "stop", "rect",  "text",   "g",    "title" };

/*
 * A small well-formedness check of the writer's output: one root, balanced tags out of the set the
 * writer uses, quoted attributes without '<', text without raw '<' or '>', known entities only.
 * Returns NULL when fine, else what is wrong.
 */
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
			while (s < end && strchr(" \t\n", *s))
				s++;
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
				if (s + 1 >= end || *s != '=' || (s[1] != '"' && s[1] != '\''))
					return "bad attribute";
				q = memchr(s + 2, s[1], (size_t)(end - s - 2));
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
			if (!depth) {
				if (roots++)
					return "two roots";
			}
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

static int have_python = -1;

/* Parse with Python's XML parser (expat: UTF-8 and XML 1.0 characters checked too). */
static int python_parses(const struct strbuf *sb)
{
	char path[] = "/tmp/test_flamesvg_XXXXXX", cmd[256];
	int fd, rc;

	if (have_python < 0)
		have_python =
			system("python3 -c 'import xml.etree.ElementTree' >/dev/null 2>&1") == 0;
	if (!have_python)
		return 1;
	fd = mkstemp(path);
	if (fd < 0)
		return 0;
	if (write(fd, sb->buf, sb->len) != (ssize_t)sb->len) {
		close(fd);
		unlink(path);
		return 0;
	}
	close(fd);
	snprintf(cmd, sizeof(cmd),
		 "python3 -c 'import xml.etree.ElementTree as E,sys; E.parse(sys.argv[1])' %s",
		 path);
	rc = system(cmd);
	unlink(path);
	return rc == 0;
}

/* Both checkers, plus the fixed parts every document has. */
static void check_document(const struct strbuf *sb)
{
	const char *msg = xml_check(sb->buf, sb->len);
	const char *cdata, *cend;

	if (msg)
		fprintf(stderr, "xml_check: %s\n", msg);
	T_CHECK(msg == NULL);
	T_CHECK(python_parses(sb));
	T_CHECK(strlen(sb->buf) == sb->len);
	T_CHECK_EQ_INT(count_str(sb->buf, "<script"), 1);
	T_CHECK_EQ_INT(count_str(sb->buf, "</script>"), 1);
	T_CHECK_EQ_INT(count_str(sb->buf, "<![CDATA["), 1);
	T_CHECK_EQ_INT(count_str(sb->buf, "]]>"), 1);
	cdata = strstr(sb->buf, "<![CDATA[");
	cend = strstr(sb->buf, "]]></script>");
	T_CHECK(cdata && cend && cdata < cend);
	T_CHECK(strncmp(sb->buf, "<?xml ", 6) == 0);
	T_CHECK(sb->len > 7 && strcmp(sb->buf + sb->len - 7, "</svg>\n") == 0);
}

/* The attribute attr="..." of the first element named tag after the <title>title</title>. */
static int frame_attr(const char *doc, const char *title, const char *attr, char *val, size_t n)
{
	char needle[4096];
	const char *p, *q, *e;
	size_t l;

	snprintf(needle, sizeof(needle), "<title>%s</title>", title);
	p = strstr(doc, needle);
	if (!p)
		return 0;
	e = strstr(p, "</g>");
	snprintf(needle, sizeof(needle), " %s=\"", attr);
	q = strstr(p, needle);
	if (!q || (e && q > e))
		return 0;
	q += strlen(needle);
	l = strcspn(q, "\"");
	if (l >= n)
		return 0;
	memcpy(val, q, l);
	val[l] = '\0';
	return 1;
}

static double frame_num(const char *doc, const char *title, const char *attr)
{
	char v[64];

	return frame_attr(doc, title, attr, v, sizeof(v)) ? atof(v) : NAN;
}

static void rgb_of(const char *doc, const char *title, int rgb[3])
{
	char v[16] = "";
	unsigned long x;

	rgb[0] = rgb[1] = rgb[2] = -1;
	if (!frame_attr(doc, title, "fill", v, sizeof(v)) || v[0] != '#' || strlen(v) != 7)
		return;
	x = strtoul(v + 1, NULL, 16);
	rgb[0] = (int)(x >> 16);
	rgb[1] = (int)(x >> 8 & 255);
	rgb[2] = (int)(x & 255);
}

static void test_basic(void)
{
	static const char *const s1[] = { "python", "main (app.py:10)", "work (app.py:20)" };
	static const char *const s2[] = { "python", "main (app.py:10)", "idle (app.py:30)" };
	static const char *const s3[] = { "python", "main (app.py:10)" };
	static const char *const s4[] = { "python", "other (app.py:40)" };
	struct stacks *st = stacks__new();
	struct strbuf sb, sb2;
	const char *pw, *pi;

	if (!st)
		return;
	strbuf_init(&sb, 0);
	strbuf_init(&sb2, 0);
	/* Inserted in an order unlike the drawing order, work split over two adds. */
	add_stack(st, s1, 3, 5);
	add_stack(st, s4, 2, 3);
	add_stack(st, s2, 3, 7);
	add_stack(st, s3, 2, 2);
	add_stack(st, s1, 3, 3);
	T_CHECK_EQ_INT(flamesvg_write(st, NULL, &sb), 0);
	check_document(&sb);

	T_CHECK(strstr(sb.buf, "<title>all (20 samples, 100.00%)</title>"));
	T_CHECK(strstr(sb.buf, "<title>python (20 samples, 100.00%)</title>"));
	T_CHECK(strstr(sb.buf, "<title>main (app.py:10) (17 samples, 85.00%)</title>"));
	T_CHECK(strstr(sb.buf, "<title>work (app.py:20) (8 samples, 40.00%)</title>"));
	T_CHECK(strstr(sb.buf, "<title>idle (app.py:30) (7 samples, 35.00%)</title>"));
	T_CHECK(strstr(sb.buf, "<title>other (app.py:40) (3 samples, 15.00%)</title>"));
	/* Children merged by label: one frame per label and depth. */
	T_CHECK_EQ_INT(count_str(sb.buf, "<title>work (app.py:20)"), 1);
	T_CHECK_EQ_INT(count_str(sb.buf, "<title>main (app.py:10)"), 1);
	T_CHECK_EQ_INT(count_str(sb.buf, "<g><title>"), 6);
	T_CHECK(strstr(sb.buf, "Flame Graph</text>"));
	T_CHECK(strstr(sb.buf, "<text x=\"13\" y=\"") != NULL);

	/* Label order, packed from the parent's left edge: 1180 px / 20 samples = 59 px each. */
	pw = strstr(sb.buf, "<title>work");
	pi = strstr(sb.buf, "<title>idle");
	T_CHECK(pw && pi && pi < pw);
	T_CHECK(fabs(frame_num(sb.buf, "all (20 samples, 100.00%)", "width") - 1180) < 0.01);
	T_CHECK(fabs(frame_num(sb.buf, "main (app.py:10) (17 samples, 85.00%)", "x") - 10) < 0.01);
	T_CHECK(fabs(frame_num(sb.buf, "main (app.py:10) (17 samples, 85.00%)", "width") - 1003) <
		0.01);
	T_CHECK(fabs(frame_num(sb.buf, "idle (app.py:30) (7 samples, 35.00%)", "x") - 10) < 0.01);
	T_CHECK(fabs(frame_num(sb.buf, "work (app.py:20) (8 samples, 40.00%)", "x") - 423) < 0.01);
	T_CHECK(fabs(frame_num(sb.buf, "other (app.py:40) (3 samples, 15.00%)", "x") - 1013) <
		0.01);
	/* Root at the bottom; 4 rows of 16 px: 56 (top) + 64 + 30 = 150. */
	T_CHECK(frame_num(sb.buf, "all (20 samples, 100.00%)", "y") >
		frame_num(sb.buf, "python (20 samples, 100.00%)", "y"));
	T_CHECK(strstr(sb.buf, "height=\"150\""));
	T_CHECK(fabs(frame_num(sb.buf, "work (app.py:20) (8 samples, 40.00%)", "y") - 56) < 0.01);

	/* The script and its API, no label inside it. */
	T_CHECK(strstr(sb.buf, "window.pysamp={search:search,resetSearch:resetSearch,\n"
			       "  zoomTo:zoomTo,resetZoom:resetZoom,\n"
			       "  zoomed:function(){return cur?F[cur].l:\"\"}}"));
	T_CHECK(strstr(sb.buf, "URLSearchParams"));
	T_CHECK(strstr(sb.buf, "id=\"unzoom\""));
	T_CHECK(strstr(sb.buf, "id=\"search\""));
	T_CHECK(strstr(sb.buf, "id=\"details\""));
	T_CHECK(strstr(sb.buf, "id=\"matched\""));
	T_CHECK(strstr(strstr(sb.buf, "]]>"), "app.py") != NULL);
	T_CHECK(strstr(sb.buf, "app.py") > strstr(sb.buf, "]]>"));

	/* Deterministic, and appends. */
	T_CHECK_EQ_INT(strbuf_add(&sb2, "x", 1), 0);
	T_CHECK_EQ_INT(flamesvg_write(st, NULL, &sb2), 0);
	T_CHECK(sb2.len == sb.len + 1 && memcmp(sb2.buf + 1, sb.buf, sb.len) == 0);

	/* Options: title, subtitle, count name (sanitised), width. */
	{
		struct flamesvg_opts o = { .title = "CPU <prod>",
					   .subtitle = "10:00 & 11:00",
					   .count_name = "ms (wall)",
					   .width = 600 };

		strbuf_reset(&sb);
		T_CHECK_EQ_INT(flamesvg_write(st, &o, &sb), 0);
		check_document(&sb);
		T_CHECK(strstr(sb.buf, ">CPU &lt;prod&gt;</text>"));
		T_CHECK(strstr(sb.buf, ">10:00 &amp; 11:00</text>"));
		T_CHECK(strstr(sb.buf, "<title>work (app.py:20) (8 ms _wall_, 40.00%)</title>"));
		T_CHECK(strstr(sb.buf, "width=\"600\""));
		T_CHECK(fabs(frame_num(sb.buf, "all (20 ms _wall_, 100.00%)", "width") - 580) <
			0.01);
	}

	strbuf_release(&sb);
	strbuf_release(&sb2);
	stacks__free(st);
}

/* The JavaScript is syntactically valid (when node is installed). */
static void test_script_syntax(void)
{
	static const char *const s1[] = { "python", "main (app.py:10)" };
	char path[] = "/tmp/test_flamesvg_js_XXXXXX", cmd[256];
	struct stacks *st = stacks__new();
	const char *a, *b;
	struct strbuf sb;
	int fd;

	if (!st)
		return;
	strbuf_init(&sb, 0);
	add_stack(st, s1, 2, 1);
	T_CHECK_EQ_INT(flamesvg_write(st, NULL, &sb), 0);
	a = strstr(sb.buf, "<![CDATA[");
	b = strstr(sb.buf, "]]>");
	T_CHECK(a && b && a < b);
	if (a && b && system("node --version >/dev/null 2>&1") == 0) {
		a += 9;
		fd = mkstemp(path);
		T_CHECK(fd >= 0);
		if (fd >= 0) {
			T_CHECK(write(fd, a, (size_t)(b - a)) == b - a);
			close(fd);
			snprintf(cmd, sizeof(cmd),
				 "cp %s %s.js && node --check %s.js; r=$?; rm -f %s.js; exit $r",
				 path, path, path, path);
			T_CHECK_EQ_INT(system(cmd), 0);
			unlink(path);
		}
	}
	strbuf_release(&sb);
	stacks__free(st);
}

static void test_reverse(void)
{
	static const char *const s1[] = { "python", "main (app.py:10)", "work (app.py:20)" };
	struct flamesvg_opts o = { .reverse = true };
	struct stacks *st = stacks__new();
	struct strbuf sb;

	if (!st)
		return;
	strbuf_init(&sb, 0);
	add_stack(st, s1, 3, 4);
	T_CHECK_EQ_INT(flamesvg_write(st, &o, &sb), 0);
	check_document(&sb);
	/* Icicle: the root on top, one row per depth downwards. */
	T_CHECK(fabs(frame_num(sb.buf, "all (4 samples, 100.00%)", "y") - 56) < 0.01);
	T_CHECK(fabs(frame_num(sb.buf, "python (4 samples, 100.00%)", "y") - 72) < 0.01);
	T_CHECK(fabs(frame_num(sb.buf, "work (app.py:20) (4 samples, 100.00%)", "y") - 104) < 0.01);
	strbuf_release(&sb);
	stacks__free(st);
}

/* Frames narrower than the minimum are left out; the totals stay whole. */
static void test_min_width(void)
{
	static const char *const big[] = { "python", "hot (app.py:1)" };
	struct flamesvg_opts o = { 0 };
	struct stacks *st = stacks__new();
	char label[64];
	uint32_t ids[2];
	struct strbuf sb;
	int i;

	if (!st)
		return;
	strbuf_init(&sb, 0);
	add_stack(st, big, 2, 1000);
	T_CHECK_EQ_INT(stacks__intern(st, "python", 6, &ids[0]), 0);
	for (i = 0; i < 5000; i++) {
		snprintf(label, sizeof(label), "cold%d (app.py:%d)", i, i + 2);
		T_CHECK_EQ_INT(stacks__intern(st, label, strlen(label), &ids[1]), 0);
		T_CHECK_EQ_INT(stacks__add(st, ids, 2, 1), 0);
	}
	T_CHECK_EQ_INT(flamesvg_write(st, NULL, &sb), 0);
	check_document(&sb);
	/* 1180 px / 6000 samples: a cold frame is 0.2 px, not drawn. */
	T_CHECK_EQ_INT(count_str(sb.buf, "<g><title>"), 3);
	T_CHECK(strstr(sb.buf, "<title>all (6,000 samples, 100.00%)</title>"));
	T_CHECK(strstr(sb.buf, "<title>python (6,000 samples, 100.00%)</title>"));
	T_CHECK(strstr(sb.buf, "<title>hot (app.py:1) (1,000 samples, 16.67%)</title>"));
	T_CHECK(fabs(frame_num(sb.buf, "python (6,000 samples, 100.00%)", "width") - 1180) < 0.01);
	T_CHECK(fabs(frame_num(sb.buf, "hot (app.py:1) (1,000 samples, 16.67%)", "width") - 196.7) <
		0.01);
	T_CHECK(fabs(frame_num(sb.buf, "hot (app.py:1) (1,000 samples, 16.67%)", "x") - 10) < 0.01);

	/* A smaller minimum draws them all. */
	o.min_width_px = 0.1;
	strbuf_reset(&sb);
	T_CHECK_EQ_INT(flamesvg_write(st, &o, &sb), 0);
	check_document(&sb);
	T_CHECK_EQ_INT(count_str(sb.buf, "<g><title>"), 5003);
	T_CHECK(strstr(sb.buf, "<title>cold4999 (app.py:5001) (1 samples, 0.02%)</title>"));

	/* Bad options. */
	o.min_width_px = -1;
	T_CHECK_EQ_INT(flamesvg_write(st, &o, &sb), -EINVAL);
	o.min_width_px = NAN;
	T_CHECK_EQ_INT(flamesvg_write(st, &o, &sb), -EINVAL);
	o.min_width_px = 0;
	o.width = 50;
	T_CHECK_EQ_INT(flamesvg_write(st, &o, &sb), -EINVAL);
	o.width = 200000;
	T_CHECK_EQ_INT(flamesvg_write(st, &o, &sb), -EINVAL);
	T_CHECK_EQ_INT(flamesvg_write(NULL, NULL, &sb), -EINVAL);
	T_CHECK_EQ_INT(flamesvg_write(st, NULL, NULL), -EINVAL);

	strbuf_release(&sb);
	stacks__free(st);
}

static void test_hostile(void)
{
	static const char *const labels[] = {
		"a;b;c",
		"say \"hi\" 'there'",
		"<script>alert(1)</script>",
		"x]]>y",
		"</script><script>alert(2)</script>",
		"ctl \x01\x02\x1b\x7f\t\n\r end",
		"bad \xff\xfe\xc0\xaf\xed\xa0\x80\xf4\x90\x80\x80\xef\xbf\xbe tail \xe2\x82",
		"ok \xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80 (f.py:1)",
		"&amp; &lt; &#0; &",
		"<![CDATA[ (<frozen x>:1)",
	};
	struct flamesvg_opts o = { .title = "]]></script><script>t()</script>",
				   .subtitle = "\xff<&>\x01",
				   .count_name = "\"<x>&" };
	struct stacks *st = stacks__new();
	size_t i, longlen = 100000;
	uint32_t ids[3];
	struct strbuf sb;
	char *longl;

	if (!st)
		return;
	strbuf_init(&sb, 0);
	T_CHECK_EQ_INT(stacks__intern(st, "python3 [1]", 11, &ids[0]), 0);
	for (i = 0; i < sizeof(labels) / sizeof(*labels); i++) {
		T_CHECK_EQ_INT(stacks__intern(st, labels[i], strlen(labels[i]), &ids[1]), 0);
		T_CHECK_EQ_INT(stacks__add(st, ids, 2, 10 + i), 0);
	}
	/* A long label full of markup, and a NUL-free label of every byte value. */
	longl = malloc(longlen);
	if (longl) {
		for (i = 0; i < longlen; i++)
			longl[i] = "<&>\"]x\xff"[i % 7];
		T_CHECK_EQ_INT(stacks__intern(st, longl, longlen, &ids[1]), 0);
		T_CHECK_EQ_INT(stacks__add(st, ids, 2, 100), 0);
		for (i = 0; i < 255; i++)
			longl[i] = (char)(i + 1);
		T_CHECK_EQ_INT(stacks__intern(st, longl, 255, &ids[2]), 0);
		T_CHECK_EQ_INT(stacks__add(st, ids, 3, 50), 0);
		free(longl);
	}
	/* An empty label. */
	T_CHECK_EQ_INT(stacks__intern(st, "", 0, &ids[1]), 0);
	T_CHECK_EQ_INT(stacks__add(st, ids, 2, 5), 0);

	T_CHECK_EQ_INT(flamesvg_write(st, &o, &sb), 0);
	check_document(&sb);
	T_CHECK(strstr(sb.buf, "alert") > strstr(sb.buf, "]]>"));
	T_CHECK(strstr(sb.buf, "&lt;script&gt;alert(1)&lt;/script&gt;"));
	T_CHECK(strstr(sb.buf, "<title>a;b;c (10 __x__, ") != NULL);
	T_CHECK(strstr(sb.buf, "say &quot;hi&quot; &#39;there&#39;"));
	T_CHECK(strstr(sb.buf, "x]]&gt;y"));
	T_CHECK(strstr(sb.buf, "&amp;amp; &amp;lt; &amp;#0; &amp;"));
	T_CHECK(strstr(sb.buf, "ctl \xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"
			       "\xef\xbf\xbd\xef\xbf\xbd end"));
	T_CHECK(strstr(sb.buf, "ok \xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80 (f.py:1)"));
	/* Every invalid byte (and U+FFFE) is one U+FFFD. */
	T_CHECK(strstr(sb.buf, "bad \xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"
			       "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"
			       "\xef\xbf\xbd\xef\xbf\xbd tail \xef\xbf\xbd\xef\xbf\xbd ("));
	T_CHECK(strstr(sb.buf, "]]&gt;&lt;/script&gt;&lt;script&gt;t()&lt;/script&gt;</text>"));
	/* The long label: whole in the tooltip, clipped with ".." in the box. */
	T_CHECK(strstr(sb.buf, "&lt;&amp;&gt;&quot;]x\xef\xbf\xbd&lt;&amp;&gt;&quot;]x") != NULL);
	T_CHECK(sb.len > 100000 * 3);
	T_CHECK(strstr(sb.buf, "..</text>") != NULL);
	T_CHECK(strstr(sb.buf, "<title> (5 __x__, ") != NULL);

	/* Reverse and differential documents with the same labels are fine too. */
	o.reverse = true;
	o.base = st;
	strbuf_reset(&sb);
	T_CHECK_EQ_INT(flamesvg_write(st, &o, &sb), 0);
	check_document(&sb);

	strbuf_release(&sb);
	stacks__free(st);
}

static void test_colours(void)
{
	static const char *const labels[] = {
		"loads (/usr/lib/python3.11/json/__init__.py:346)",
		"decode (/usr/lib/python3.11/json/decoder.py:337)",
		"_find_and_load (<frozen importlib._bootstrap>:1176)",
		"get (/usr/lib/python3/dist-packages/requests/api.py:73)",
		"dot (/srv/.venv/lib/python3.12/site-packages/numpy/core/multiarray.py:5)",
		"main (app.py:10)",
		"work (/srv/app/app.py:-1)",
		"[pruned]",
	};
	static const char *const titles[] = {
		"loads (/usr/lib/python3.11/json/__init__.py:346) (1 samples, 12.50%)",
		"decode (/usr/lib/python3.11/json/decoder.py:337) (1 samples, 12.50%)",
		"_find_and_load (&lt;frozen importlib._bootstrap&gt;:1176) (1 samples, 12.50%)",
		"get (/usr/lib/python3/dist-packages/requests/api.py:73) (1 samples, 12.50%)",
		"dot (/srv/.venv/lib/python3.12/site-packages/numpy/core/multiarray.py:5) "
		"(1 samples, 12.50%)",
		"main (app.py:10) (1 samples, 12.50%)",
		"work (/srv/app/app.py:-1) (1 samples, 12.50%)",
		"[pruned] (1 samples, 12.50%)",
		"python3 [1234] (8 samples, 100.00%)",
	};
	struct stacks *st = stacks__new();
	struct strbuf sb;
	int c[9][3], i;
	uint32_t ids[2];

	if (!st)
		return;
	strbuf_init(&sb, 0);
	T_CHECK_EQ_INT(stacks__intern(st, "python3 [1234]", 14, &ids[0]), 0);
	for (i = 0; i < 8; i++) {
		T_CHECK_EQ_INT(stacks__intern(st, labels[i], strlen(labels[i]), &ids[1]), 0);
		T_CHECK_EQ_INT(stacks__add(st, ids, 2, 1), 0);
	}
	T_CHECK_EQ_INT(flamesvg_write(st, NULL, &sb), 0);
	check_document(&sb);
	for (i = 0; i < 9; i++) {
		rgb_of(sb.buf, titles[i], c[i]);
		T_CHECK(c[i][0] >= 0);
	}
	/* stdlib: blue. */
	for (i = 0; i < 3; i++)
		T_CHECK(c[i][2] > c[i][0] && c[i][2] > c[i][1]);
	/* The same module, the same shade. */
	T_CHECK(!memcmp(c[0], c[1], sizeof(c[0])));
	/* third-party: green. */
	for (i = 3; i < 5; i++)
		T_CHECK(c[i][1] > c[i][0] && c[i][1] > c[i][2]);
	T_CHECK(memcmp(c[3], c[4], sizeof(c[0])) != 0);
	/* own code: warm; the same file name, the same shade. */
	for (i = 5; i < 7; i++)
		T_CHECK(c[i][0] > c[i][1] && c[i][1] >= c[i][2] && c[i][0] - c[i][2] > 100);
	T_CHECK(!memcmp(c[5], c[6], sizeof(c[0])));
	/* native/other: greyish. */
	for (i = 7; i < 9; i++)
		T_CHECK(abs(c[i][0] - c[i][1]) < 40 && abs(c[i][1] - c[i][2]) < 40);
	T_CHECK(strstr(sb.buf, ">own code</text>"));
	T_CHECK(strstr(sb.buf, ">stdlib</text>"));
	T_CHECK(strstr(sb.buf, ">third-party</text>"));
	T_CHECK(strstr(sb.buf, ">native/other</text>"));
	strbuf_release(&sb);
	stacks__free(st);
}

static void test_diff(void)
{
	static const char *const pa[] = { "p", "a (x.py:1)" };
	static const char *const pb[] = { "p", "b (x.py:2)" };
	static const char *const pc[] = { "p", "c (x.py:3)" };
	static const char *const pd[] = { "p", "d (x.py:4)" };
	static const char *const pbz[] = { "p", "b (x.py:2)", "gone (x.py:9)" };
	struct stacks *after = stacks__new(), *base = stacks__new();
	struct flamesvg_opts o = { 0 };
	struct strbuf sb;
	int a[3], b[3], c[3], p[3], d[3];

	if (!after || !base)
		goto out;
	strbuf_init(&sb, 0);
	/* Base interned in another order, so its label ids differ. */
	add_stack(base, pbz, 3, 10);
	add_stack(base, pb, 2, 40);
	add_stack(base, pa, 2, 50);
	add_stack(base, pd, 2, 100);
	add_stack(after, pd, 2, 100);
	add_stack(after, pa, 2, 80);
	add_stack(after, pb, 2, 10);
	add_stack(after, pc, 2, 10);
	o.base = base;
	T_CHECK_EQ_INT(flamesvg_write(after, &o, &sb), 0);
	check_document(&sb);
	T_CHECK(strstr(sb.buf, "<title>all (200 samples, 100.00%; base 200 samples, 100.00%; "
			       "0.00 pp)</title>"));
	T_CHECK(strstr(sb.buf, "<title>a (x.py:1) (80 samples, 40.00%; base 50 samples, 25.00%; "
			       "+15.00 pp)</title>"));
	T_CHECK(strstr(sb.buf, "<title>b (x.py:2) (10 samples, 5.00%; base 50 samples, 25.00%; "
			       "-20.00 pp)</title>"));
	T_CHECK(strstr(sb.buf, "<title>c (x.py:3) (10 samples, 5.00%; base 0 samples, 0.00%; "
			       "+5.00 pp)</title>"));
	T_CHECK(strstr(sb.buf, "<title>d (x.py:4) (100 samples, 50.00%; base 100 samples, "
			       "50.00%; 0.00 pp)</title>"));
	T_CHECK(strstr(sb.buf, "gone") == NULL);
	rgb_of(sb.buf, "a (x.py:1) (80 samples, 40.00%; base 50 samples, 25.00%; +15.00 pp)", a);
	rgb_of(sb.buf, "b (x.py:2) (10 samples, 5.00%; base 50 samples, 25.00%; -20.00 pp)", b);
	rgb_of(sb.buf, "c (x.py:3) (10 samples, 5.00%; base 0 samples, 0.00%; +5.00 pp)", c);
	rgb_of(sb.buf, "d (x.py:4) (100 samples, 50.00%; base 100 samples, 50.00%; 0.00 pp)", d);
	rgb_of(sb.buf, "p (200 samples, 100.00%; base 200 samples, 100.00%; 0.00 pp)", p);
	/* Grown: red; shrunk (the largest change): deep blue; new: red; equal: white. */
	T_CHECK(a[0] == 255 && a[1] == a[2] && a[1] < 210 && a[1] > 20);
	T_CHECK(b[2] == 255 && b[0] == b[1] && b[0] == 20);
	T_CHECK(c[0] == 255 && c[1] == 0 && c[2] == 0);
	T_CHECK(d[0] == 255 && d[1] == 255 && d[2] == 255);
	T_CHECK(p[0] == 255 && p[1] == 255 && p[2] == 255);
	T_CHECK(strstr(sb.buf, ">share grew</text>"));

	/* An empty base: everything is new. */
	stacks__clear(base);
	strbuf_reset(&sb);
	T_CHECK_EQ_INT(flamesvg_write(after, &o, &sb), 0);
	check_document(&sb);
	rgb_of(sb.buf, "d (x.py:4) (100 samples, 50.00%; base 0 samples, 0.00%; +50.00 pp)", d);
	T_CHECK(d[0] == 255 && d[1] == 0 && d[2] == 0);
	strbuf_release(&sb);
out:
	stacks__free(after);
	stacks__free(base);
}

static void test_empty(void)
{
	struct stacks *st = stacks__new(), *base = stacks__new();
	struct flamesvg_opts o = { .base = base, .reverse = true };
	struct strbuf sb;

	if (!st || !base)
		goto out;
	strbuf_init(&sb, 0);
	T_CHECK_EQ_INT(flamesvg_write(st, NULL, &sb), 0);
	check_document(&sb);
	T_CHECK(strstr(sb.buf, ">No samples</text>"));
	T_CHECK_EQ_INT(count_str(sb.buf, "<g><title>"), 0);
	strbuf_reset(&sb);
	T_CHECK_EQ_INT(flamesvg_write(st, &o, &sb), 0);
	check_document(&sb);
	T_CHECK(strstr(sb.buf, ">No samples</text>"));
	strbuf_release(&sb);
out:
	stacks__free(st);
	stacks__free(base);
}

static void test_e2big(void)
{
	static const char *const s1[] = { "python", "main (app.py:10)", "work (app.py:20)" };
	struct stacks *st = stacks__new();
	struct strbuf sb, full;

	if (!st)
		return;
	strbuf_init(&full, 0);
	add_stack(st, s1, 3, 4);
	T_CHECK_EQ_INT(flamesvg_write(st, NULL, &full), 0);

	strbuf_init(&sb, 1000);
	T_CHECK_EQ_INT(flamesvg_write(st, NULL, &sb), -E2BIG);
	T_CHECK_EQ_INT(sb.len, 0);
	strbuf_release(&sb);

	/* One byte short fails and leaves what was there; exactly enough succeeds. */
	strbuf_init(&sb, full.len + 1);
	T_CHECK_EQ_INT(strbuf_add(&sb, "ab", 2), 0);
	T_CHECK_EQ_INT(flamesvg_write(st, NULL, &sb), -E2BIG);
	T_CHECK_EQ_INT(sb.len, 2);
	T_CHECK_EQ_STR(sb.buf, "ab");
	strbuf_release(&sb);
	strbuf_init(&sb, full.len);
	T_CHECK_EQ_INT(flamesvg_write(st, NULL, &sb), 0);
	T_CHECK(sb.len == full.len && memcmp(sb.buf, full.buf, full.len) == 0);
	strbuf_release(&sb);
	strbuf_release(&full);
	stacks__free(st);
}

static uint64_t rng_next(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	*s = x;
	return x;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/*
 * 100,000 unique stacks shaped like a real service: a few processes and threads, a shared
 * framework prefix, then a random walk through 3000 functions in 150 files (stdlib, packages,
 * the app), depth 8 to 40, counts mostly 1-4 with a few hot stacks.
 */
static void test_scale(void)
{
	struct stacks *st = stacks__new();
	uint32_t fn[3000], roots[4], threads[8], ids[48];
	uint64_t rng = 0x9e3779b97f4a7c15ULL;
	struct flamesvg_opts o = { 0 };
	double t0, t1, t2;
	size_t frames, i, n, depth;
	char label[160];
	struct strbuf sb;

	if (!st)
		return;
	strbuf_init(&sb, 64 << 20);
	for (i = 0; i < 3000; i++) {
		unsigned file = (unsigned)(i % 150);

		if (file < 40)
			snprintf(label, sizeof(label),
				 "fn_%zu (/usr/lib/python3.11/mod%u/x.py:%zu)", i, file,
				 i * 7 % 900);
		else if (file < 100)
			snprintf(label, sizeof(label),
				 "Cls.meth_%zu "
				 "(/srv/venv/lib/python3.11/site-packages/pkg%u/y.py:%zu)",
				 i, file, i * 3 % 700);
		else
			snprintf(label, sizeof(label), "handler_%zu (app/file%u.py:%zu)", i, file,
				 i % 500);
		T_CHECK_EQ_INT(stacks__intern(st, label, strlen(label), &fn[i]), 0);
	}
	for (i = 0; i < 4; i++) {
		snprintf(label, sizeof(label), "python3 [%zu]", 1000 + i);
		T_CHECK_EQ_INT(stacks__intern(st, label, strlen(label), &roots[i]), 0);
	}
	for (i = 0; i < 8; i++) {
		snprintf(label, sizeof(label), "thread %zu", 2000 + i);
		T_CHECK_EQ_INT(stacks__intern(st, label, strlen(label), &threads[i]), 0);
	}
	while (stacks__nstacks(st) < 100000) {
		uint64_t r = rng_next(&rng), count;

		depth = 8 + r % 33;
		ids[0] = roots[r >> 8 & 3];
		ids[1] = threads[r >> 10 & 7];
		ids[2] = fn[0];
		ids[3] = fn[r >> 13 & 3];
		for (n = 4; n < depth; n++) {
			/* Mostly a few callees per caller, sometimes anywhere. */
			r = rng_next(&rng);
			if (r % 8)
				ids[n] = fn[(ids[n - 1] * 7 + r % 5) % 3000];
			else
				ids[n] = fn[r % 3000];
		}
		r = rng_next(&rng);
		count = r % 100 == 0 ? 500 + r % 1000 : 1 + r % 4;
		T_CHECK_EQ_INT(stacks__add(st, ids, depth, count), 0);
	}
	t0 = now_s();
	T_CHECK_EQ_INT(flamesvg_write(st, NULL, &sb), 0);
	t1 = now_s();
	frames = count_str(sb.buf, "<g><title>");
	printf("100,000 unique stacks (%llu samples): %.3f s (sanitizer build), %zu bytes, "
	       "%zu frames drawn\n",
	       (unsigned long long)stacks__total(st), t1 - t0, sb.len, frames);
	/* About 0.2 s in an -O2 build; the sanitizers slow it 2-3 times. */
	T_CHECK(t1 - t0 < 2.0);
	T_CHECK(sb.len < 20u << 20);
	/* At most 1180 px / 0.5 px frames per row, 41 rows. */
	T_CHECK(frames > 1000 && frames <= 2360 * 41);
	check_document(&sb);

	o.reverse = true;
	o.base = st;
	strbuf_reset(&sb);
	t1 = now_s();
	T_CHECK_EQ_INT(flamesvg_write(st, &o, &sb), 0);
	t2 = now_s();
	printf("differential, reverse: %.3f s, %zu bytes\n", t2 - t1, sb.len);
	/* Twice the tree work (both profiles); generous for a loaded sanitizer run. */
	T_CHECK(t2 - t1 < 3.0);
	strbuf_release(&sb);
	stacks__free(st);
}

int main(void)
{
	test_basic();
	test_script_syntax();
	test_reverse();
	test_min_width();
	test_hostile();
	test_colours();
	test_diff();
	test_empty();
	test_e2big();
	test_scale();
	return T_DONE();
}
