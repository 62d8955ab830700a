/* SPDX-License-Identifier: BSD-2-Clause */
/* test_folded.c - folded output: format, sanitising, order, write errors. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "folded.h"
#include "harness.h"
#include "stacks.h"
#include "util.h"

/* Add the stack of NUL-terminated labels labels[0..n). */
static void add_stack(struct stacks *st, const char *const *labels, size_t n, uint64_t count)
{
	uint32_t ids[16];
	size_t i;

	for (i = 0; i < n; i++)
		T_CHECK_EQ_INT(stacks__intern(st, labels[i], strlen(labels[i]), &ids[i]), 0);
	T_CHECK_EQ_INT(stacks__add(st, ids, n, count), 0);
}

/* Read all of f from the start; caller frees. */
static char *slurp(FILE *f, size_t *len)
{
	struct strbuf sb;
	char buf[4096];
	size_t got;
	char *s;

	strbuf_init(&sb, 0);
	rewind(f);
	while ((got = fread(buf, 1, sizeof(buf), f)) > 0) {
		if (strbuf_add(&sb, buf, got)) {
			strbuf_release(&sb);
			return NULL;
		}
	}
	s = strbuf_detach(&sb, len);
	return s;
}

static void test_basic(void)
{
	static const char *const s1[] = { "python", "main (app.py:10)", "work (app.py:20)" };
	static const char *const s2[] = { "python", "main (app.py:10)" };
	static const char *const s3[] = { "python", "main (app.py:10)", "idle (app.py:30)" };
	struct stacks *st = stacks__new();
	struct strbuf sb;
	char *file_out;
	size_t file_len = 0;
	FILE *f;

	if (!st)
		return;
	strbuf_init(&sb, 0);

	/* Nothing recorded: no output at all. */
	T_CHECK_EQ_INT(folded_write_buf(st, &sb), 0);
	T_CHECK_EQ_INT(sb.len, 0);

	add_stack(st, s1, 3, 7);
	add_stack(st, s2, 2, 2);
	add_stack(st, s3, 3, 7);
	add_stack(st, s1, 3, 1);
	T_CHECK_EQ_INT(folded_write_buf(st, &sb), 0);
	T_CHECK_EQ_STR(sb.buf, "python;main (app.py:10);work (app.py:20) 8\n"
			       "python;main (app.py:10);idle (app.py:30) 7\n"
			       "python;main (app.py:10) 2\n");

	/* Appends to what is already there. */
	strbuf_reset(&sb);
	T_CHECK_EQ_INT(strbuf_add(&sb, "# hdr\n", 6), 0);
	T_CHECK_EQ_INT(folded_write_buf(st, &sb), 0);
	T_CHECK(strncmp(sb.buf, "# hdr\npython;", 13) == 0);

	/* The FILE writer produces the same bytes. */
	f = tmpfile();
	T_CHECK(f != NULL);
	if (f) {
		T_CHECK_EQ_INT(folded_write(st, f), 0);
		file_out = slurp(f, &file_len);
		T_CHECK(file_out != NULL);
		T_CHECK_EQ_INT(file_len, sb.len - 6);
		T_CHECK_EQ_STR(file_out, sb.buf + 6);
		free(file_out);
		fclose(f);
	}

	strbuf_release(&sb);
	stacks__free(st);
}

static void test_sanitise(void)
{
	static const char raw[] = "a;b\nc\rd\te\x01"
				  "f\x7fg\x1fh\0i \xc3\xa9";
	struct stacks *st = stacks__new();
	uint32_t ids[3];
	struct strbuf sb;
	const char *line, *sp;
	size_t i;

	if (!st)
		return;
	strbuf_init(&sb, 0);
	T_CHECK_EQ_INT(stacks__intern(st, "comm;x", 6, &ids[0]), 0);
	T_CHECK_EQ_INT(stacks__intern(st, raw, sizeof(raw) - 1, &ids[1]), 0);
	T_CHECK_EQ_INT(stacks__intern(st, "leaf\n", 5, &ids[2]), 0);
	T_CHECK_EQ_INT(stacks__add(st, ids, 3, 3), 0);
	T_CHECK_EQ_INT(stacks__add(st, ids + 2, 1, 1), 0);

	T_CHECK_EQ_INT(folded_write_buf(st, &sb), 0);
	/* Spaces and UTF-8 are kept; ';' becomes ':'; controls, NUL included, become ' '. */
	T_CHECK_EQ_STR(sb.buf, "comm:x;a:b c d e f g h i \xc3\xa9;leaf  3\n"
			       "leaf  1\n");
	/* Every line is "<frames> <count>" with no control bytes and exactly 3 or 1 frames. */
	T_CHECK_EQ_INT(sb.len, strlen(sb.buf));
	for (line = sb.buf; *line; line = strchr(line, '\n') + 1) {
		size_t semis = 0, ctl = 0;

		for (i = 0; line[i] != '\n'; i++) {
			semis += line[i] == ';';
			ctl += (unsigned char)line[i] < 0x20 || line[i] == 0x7f;
		}
		T_CHECK_EQ_INT(ctl, 0);
		T_CHECK(semis == 2 || semis == 0);
		sp = memrchr(line, ' ', i);
		T_CHECK(sp != NULL && sp[1] >= '1' && sp[1] <= '9');
	}

	strbuf_release(&sb);
	stacks__free(st);
}

static void test_buf_cap(void)
{
	static const char *const s1[] = { "alpha", "beta" };
	struct stacks *st = stacks__new();
	struct strbuf sb;

	if (!st)
		return;
	add_stack(st, s1, 2, 12345);
	/* "alpha;beta 12345\n" is 17 bytes. */
	strbuf_init(&sb, 20);
	T_CHECK_EQ_INT(strbuf_add(&sb, "pre", 3), 0);
	T_CHECK_EQ_INT(folded_write_buf(st, &sb), 0);
	T_CHECK_EQ_STR(sb.buf, "prealpha;beta 12345\n");
	T_CHECK_EQ_INT(folded_write_buf(st, &sb), -E2BIG);
	T_CHECK_EQ_STR(sb.buf, "prealpha;beta 12345\n"); /* rolled back */
	strbuf_release(&sb);

	/* Failing inside the labels and inside the count both roll back. */
	strbuf_init(&sb, 8);
	T_CHECK_EQ_INT(strbuf_add(&sb, "pre", 3), 0);
	T_CHECK_EQ_INT(folded_write_buf(st, &sb), -E2BIG);
	T_CHECK_EQ_STR(sb.buf, "pre");
	T_CHECK_EQ_INT(sb.len, 3);
	strbuf_release(&sb);
	strbuf_init(&sb, 14);
	T_CHECK_EQ_INT(folded_write_buf(st, &sb), -E2BIG);
	T_CHECK(sb.len == 0);
	strbuf_release(&sb);

	stacks__free(st);
}

static void test_write_errors(void)
{
	static const char *const s1[] = { "main", "work" };
	struct stacks *st = stacks__new();
	char label[64];
	uint32_t id;
	size_t i;
	FILE *f;

	if (!st)
		return;
	add_stack(st, s1, 2, 5);

	/* Small output: fwrite buffers it, the error comes from the flush. */
	f = fopen("/dev/full", "w");
	T_CHECK(f != NULL);
	if (f) {
		T_CHECK_EQ_INT(folded_write(st, f), -ENOSPC);
		fclose(f);
	}

	/* Large output: fwrite itself fails part way. */
	for (i = 0; i < 5000; i++) {
		snprintf(label, sizeof(label), "function_%zu (some/long/path.py:%zu)", i, i);
		T_CHECK_EQ_INT(stacks__intern(st, label, strlen(label), &id), 0);
		T_CHECK_EQ_INT(stacks__add(st, &id, 1, 1 + i % 7), 0);
	}
	f = fopen("/dev/full", "w");
	T_CHECK(f != NULL);
	if (f) {
		T_CHECK_EQ_INT(folded_write(st, f), -ENOSPC);
		fclose(f);
	}

	/* Unbuffered stream: the first fwrite fails. */
	f = fopen("/dev/full", "w");
	if (f) {
		setvbuf(f, NULL, _IONBF, 0);
		T_CHECK_EQ_INT(folded_write(st, f), -ENOSPC);
		fclose(f);
	}

	/* A stream opened read-only cannot be written. */
	f = fopen("/dev/null", "r");
	T_CHECK(f != NULL);
	if (f) {
		T_CHECK(folded_write(st, f) < 0);
		/* ...and once in error state, it stays refused. */
		T_CHECK_EQ_INT(folded_write(st, f), -EIO);
		fclose(f);
	}

	/* /dev/null accepts everything. */
	f = fopen("/dev/null", "w");
	T_CHECK(f != NULL);
	if (f) {
		T_CHECK_EQ_INT(folded_write(st, f), 0);
		fclose(f);
	}
	stacks__free(st);
}

/* Same stacks, inserted in different orders with labels interned in different orders. */
static char *build(int variant)
{
	static const char *const labels[] = {
		"root", "a;x", "b\n", "c", "d (x.py:1)", "", "\xe2\x82\xac",
	};
	struct stacks *st = stacks__new();
	const char *stack[4];
	struct strbuf sb;
	size_t i, k, n;
	char *out = NULL;

	if (!st)
		return NULL;
	for (i = 0; i < 343; i++) {
		k = variant ? 342 - i : i;
		if (variant == 2)
			k = (i * 97) % 343;
		stack[0] = labels[0];
		stack[1] = labels[k % 7];
		stack[2] = labels[(k / 7) % 7];
		stack[3] = labels[(k / 49) % 7];
		n = 1 + k % 4;
		add_stack(st, stack, n, 1 + (k % 3));
	}
	strbuf_init(&sb, 0);
	if (folded_write_buf(st, &sb) == 0)
		out = strbuf_detach(&sb, NULL);
	strbuf_release(&sb);
	stacks__free(st);
	return out;
}

static void test_determinism(void)
{
	char *a = build(0), *b = build(1), *c = build(2);

	T_CHECK(a && b && c);
	if (a && b && c) {
		T_CHECK(strlen(a) > 100);
		T_CHECK(strcmp(a, b) == 0);
		T_CHECK(strcmp(a, c) == 0);
	}
	free(a);
	free(b);
	free(c);
}

int main(void)
{
	test_basic();
	test_sanitise();
	test_buf_cap();
	test_write_errors();
	test_determinism();
	return T_DONE();
}
