/* SPDX-License-Identifier: BSD-2-Clause */
/* test_stacks.c - label/stack interning, counting and deterministic order. */
#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "stacks.h"
#include "util.h"

/* xorshift64*: fixed seeds make every run identical. */
static uint64_t rng_next(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 0x2545f4914f6cdd1dULL;
}

static uint32_t intern_str(struct stacks *st, const char *s)
{
	uint32_t id = UINT32_MAX;

	T_CHECK_EQ_INT(stacks__intern(st, s, strlen(s), &id), 0);
	return id;
}

/* Visitor that renders raw lines ("a;b 3\n") into a strbuf, labels unsanitised. */
struct render {
	const struct stacks *st;
	struct strbuf sb;
	size_t visits;
	size_t stop_after;
};

static int render_visit(const uint32_t *ids, size_t n, uint64_t count, void *arg)
{
	struct render *r = arg;
	const char *l;
	size_t i, len;

	for (i = 0; i < n; i++) {
		l = stacks__label_bytes(r->st, ids[i], &len);
		if (!l)
			return -EINVAL;
		if ((i && strbuf_add(&r->sb, ";", 1)) || strbuf_add(&r->sb, l, len))
			return -ENOMEM;
	}
	if (strbuf_addf(&r->sb, " %" PRIu64 "\n", count))
		return -ENOMEM;
	r->visits++;
	if (r->stop_after && r->visits == r->stop_after)
		return 42;
	return 0;
}

/* Render st; caller frees the result. */
static char *render(const struct stacks *st)
{
	struct render r = { .st = st };
	char *s;

	strbuf_init(&r.sb, 0);
	T_CHECK_EQ_INT(stacks__foreach_sorted(st, render_visit, &r), 0);
	s = strbuf_detach(&r.sb, NULL);
	T_CHECK(s != NULL);
	return s;
}

static void test_intern(void)
{
	struct stacks *st = stacks__new();
	uint32_t a, b, c, d, e, f, g;
	const char *l;
	size_t len = 0;

	T_CHECK(st != NULL);
	if (!st)
		return;
	a = intern_str(st, "main (app.py:1)");
	b = intern_str(st, "work (app.py:7)");
	c = intern_str(st, "main (app.py:1)");
	T_CHECK_EQ_INT(a, 0);
	T_CHECK_EQ_INT(b, 1);
	T_CHECK_EQ_INT(c, a);

	/* Input need not be NUL-terminated: only len bytes count. */
	T_CHECK_EQ_INT(stacks__intern(st, "main (app.py:1)XYZ", 15, &d), 0);
	T_CHECK_EQ_INT(d, a);
	T_CHECK_EQ_INT(stacks__intern(st, "main", 4, &d), 0);
	T_CHECK(d != a);

	/* Any bytes: embedded NUL gives a distinct label of the full length. */
	T_CHECK_EQ_INT(stacks__intern(st, "x\0y", 3, &e), 0);
	T_CHECK_EQ_INT(stacks__intern(st, "x", 1, &f), 0);
	T_CHECK(e != f);
	l = stacks__label_bytes(st, e, &len);
	T_CHECK(l && len == 3 && memcmp(l, "x\0y", 4) == 0);
	T_CHECK_EQ_STR(stacks__label(st, e), "x");

	/* Empty label, NULL allowed with len 0. */
	T_CHECK_EQ_INT(stacks__intern(st, NULL, 0, &g), 0);
	T_CHECK_EQ_INT(stacks__intern(st, "", 0, &c), 0);
	T_CHECK_EQ_INT(c, g);
	T_CHECK_EQ_STR(stacks__label(st, g), "");
	T_CHECK_EQ_INT(stacks__intern(st, NULL, 1, &c), -EINVAL);

	T_CHECK_EQ_STR(stacks__label(st, a), "main (app.py:1)");
	T_CHECK_EQ_STR(stacks__label(st, b), "work (app.py:7)");
	T_CHECK(stacks__label(st, g + 1) == NULL);
	T_CHECK(stacks__label(st, UINT32_MAX) == NULL);

	stacks__free(st);
	stacks__free(NULL);
}

static void test_add_counts(void)
{
	struct stacks *st = stacks__new();
	uint32_t a, b, s1[2], s2[1], bad[2];
	char *out;

	if (!st)
		return;
	a = intern_str(st, "a");
	b = intern_str(st, "b");
	s1[0] = a;
	s1[1] = b;
	s2[0] = a;

	T_CHECK_EQ_INT(stacks__nstacks(st), 0);
	T_CHECK_EQ_INT(stacks__add(st, s1, 2, 3), 0);
	T_CHECK_EQ_INT(stacks__add(st, s1, 2, 2), 0);
	T_CHECK_EQ_INT(stacks__add(st, s2, 1, 1), 0);
	T_CHECK_EQ_INT(stacks__nstacks(st), 2);
	T_CHECK(stacks__total(st) == 6);

	/* [b, a] is a different stack from [a, b]. */
	bad[0] = b;
	bad[1] = a;
	T_CHECK_EQ_INT(stacks__add(st, bad, 2, 1), 0);
	T_CHECK_EQ_INT(stacks__nstacks(st), 3);

	/* Invalid input changes nothing. */
	T_CHECK_EQ_INT(stacks__add(st, s1, 0, 1), -EINVAL);
	T_CHECK_EQ_INT(stacks__add(st, NULL, 1, 1), -EINVAL);
	bad[0] = a;
	bad[1] = 99;
	T_CHECK_EQ_INT(stacks__add(st, bad, 2, 1), -EINVAL);
	T_CHECK_EQ_INT(stacks__add(st, s1, 2, 0), 0);
	bad[1] = b + 1;
	T_CHECK_EQ_INT(stacks__add(st, bad, 2, 0), -EINVAL);
	T_CHECK_EQ_INT(stacks__nstacks(st), 3);
	T_CHECK(stacks__total(st) == 7);

	/* Overflow of the total is refused atomically. */
	T_CHECK_EQ_INT(stacks__add(st, s2, 1, UINT64_MAX - 7), 0);
	T_CHECK(stacks__total(st) == UINT64_MAX);
	T_CHECK_EQ_INT(stacks__add(st, s1, 2, 1), -EOVERFLOW);
	T_CHECK_EQ_INT(stacks__add(st, &b, 1, 1), -EOVERFLOW);
	T_CHECK_EQ_INT(stacks__nstacks(st), 3);
	T_CHECK(stacks__total(st) == UINT64_MAX);

	out = render(st);
	T_CHECK_EQ_STR(out, "a 18446744073709551609\na;b 5\nb;a 1\n");
	free(out);

	stacks__free(st);
}

struct spec {
	const char *line; /* labels separated by '|' so that ';' can appear inside a label */
	uint64_t count;
};

/* Add a stack described by "x|y|z" (labels interned on the way). */
static void add_spec(struct stacks *st, const struct spec *sp)
{
	uint32_t ids[16];
	const char *p = sp->line, *bar;
	size_t n = 0, len;

	for (;;) {
		bar = strchr(p, '|');
		len = bar ? (size_t)(bar - p) : strlen(p);
		T_CHECK_EQ_INT(stacks__intern(st, p, len, &ids[n]), 0);
		n++;
		if (!bar)
			break;
		p = bar + 1;
	}
	T_CHECK_EQ_INT(stacks__add(st, ids, n, sp->count), 0);
}

static void test_order(void)
{
	static const struct spec specs[] = {
		{ "a|b", 5 }, { "a|c", 5 }, { "b", 7 }, { "a", 5 }, { "a|b|c", 1 },
		{ "x;y", 2 }, { "x|y", 2 }, { "a:", 3 }, { "a|b", 0 }, { "a<", 3 },
		{ "ab", 3 }, { "a|b", 0 }, { "|", 4 }, { ";", 4 }, { "", 4 },
		{ "a||b", 9 }, { "a|;b", 9 }, { "a;|b", 9 }, { "\xff", 1 }, { "\x01", 1 },
	};
	struct stacks *st = stacks__new();
	struct render r;
	char *out;
	size_t i;

	if (!st)
		return;
	for (i = 0; i < sizeof(specs) / sizeof(specs[0]); i++)
		add_spec(st, &specs[i]);

	/*
	 * Count 9, all "a;;b": ["a", ";b"] and ["a;", "b"] have 2 labels, ["a", "", "b"] 3;
	 * among the 2-label ones the shorter first label ("a") wins.
	 * Count 4: "" < ";" (prefix), then [";"] (1 label) before ["", ""] (2 labels).
	 * Count 3: "a:" (':' 0x3a) < "a<" (0x3c) < "ab"; no "a;b" with count 3 exists.
	 * Count 2: ["x;y"] (1 label) before ["x", "y"].
	 * Count 1: "\x01" < "a;b;c" < "\xff" (bytes compare unsigned).
	 */
	out = render(st);
	T_CHECK_EQ_STR(out, "a;;b 9\na;;b 9\na;;b 9\n"
			    "b 7\n"
			    "a 5\na;b 5\na;c 5\n"
			    " 4\n; 4\n; 4\n"
			    "a: 3\na< 3\nab 3\n"
			    "x;y 2\nx;y 2\n"
			    "\x01 1\na;b;c 1\n\xff 1\n");
	free(out);

	/* A visitor's non-zero return stops the walk and is passed back. */
	memset(&r, 0, sizeof(r));
	r.st = st;
	r.stop_after = 2;
	strbuf_init(&r.sb, 0);
	T_CHECK_EQ_INT(stacks__foreach_sorted(st, render_visit, &r), 42);
	T_CHECK_EQ_INT(r.visits, 2);
	strbuf_release(&r.sb);

	stacks__free(st);
}

/* Record the label sequences in visit order to check tie-breaks of equal lines. */
struct seq_rec {
	const struct stacks *st;
	struct strbuf sb;
};

static int seq_visit(const uint32_t *ids, size_t n, uint64_t count, void *arg)
{
	struct seq_rec *r = arg;
	size_t i;
	int err = 0;

	(void)count;
	for (i = 0; i < n && !err; i++)
		err = strbuf_addf(&r->sb, "[%s]", stacks__label(r->st, ids[i]));
	return err ? err : strbuf_add(&r->sb, "\n", 1);
}

static void test_equal_lines(void)
{
	static const struct spec specs[] = {
		{ "a|b;c", 1 }, { "a;b|c", 1 }, { "a|b|c", 1 }, { "a;b;c", 1 },
	};
	struct seq_rec r;
	struct stacks *st;
	size_t i, k;
	char *first = NULL;

	/* Every insertion order gives the same sequence order. */
	for (k = 0; k < 4; k++) {
		st = stacks__new();
		if (!st)
			return;
		for (i = 0; i < 4; i++)
			add_spec(st, &specs[(i + k) % 4]);
		r.st = st;
		strbuf_init(&r.sb, 0);
		T_CHECK_EQ_INT(stacks__foreach_sorted(st, seq_visit, &r), 0);
		T_CHECK_EQ_STR(r.sb.buf, "[a;b;c]\n[a][b;c]\n[a;b][c]\n[a][b][c]\n");
		if (!first)
			first = strbuf_detach(&r.sb, NULL);
		strbuf_release(&r.sb);
		stacks__free(st);
	}
	free(first);
}

/*
 * Property check of the comparator: random stacks over labels that contain ';' and empty labels,
 * visited order must match a reference sort on explicitly joined lines.
 */
struct ref_line {
	char *line;
	size_t len;
	uint64_t count;
	size_t n;
	size_t lens[8];
};

static int ref_cmp(const void *x, const void *y)
{
	const struct ref_line *a = x, *b = y;
	size_t m = a->len < b->len ? a->len : b->len, i;
	int c;

	if (a->count != b->count)
		return a->count > b->count ? -1 : 1;
	c = memcmp(a->line, b->line, m);
	if (c)
		return c;
	if (a->len != b->len)
		return a->len < b->len ? -1 : 1;
	if (a->n != b->n)
		return a->n < b->n ? -1 : 1;
	for (i = 0; i < a->n; i++) {
		if (a->lens[i] != b->lens[i])
			return a->lens[i] < b->lens[i] ? -1 : 1;
	}
	return 0;
}

struct ref_visit {
	const struct stacks *st;
	const struct ref_line *ref;
	size_t i;
	size_t mismatches;
};

static int ref_visit_fn(const uint32_t *ids, size_t n, uint64_t count, void *arg)
{
	struct ref_visit *v = arg;
	const struct ref_line *want = &v->ref[v->i++];
	size_t i, len;

	if (count != want->count || n != want->n) {
		v->mismatches++;
		return 0;
	}
	for (i = 0; i < n; i++) {
		stacks__label_bytes(v->st, ids[i], &len);
		if (len != want->lens[i])
			v->mismatches++;
	}
	return 0;
}

static void test_order_property(void)
{
	static const char *const alphabet[] = {
		"", ";", "a", "a;", ";a", "b", "ab", ":", "<", "a;b",
	};
	enum { NSTACKS = 3000 };
	struct ref_line *ref = calloc(NSTACKS, sizeof(*ref));
	struct stacks *st = stacks__new();
	struct ref_visit v = { 0 };
	uint64_t seed = 0x1234567;
	uint32_t ids[8];
	size_t i, j, nref = 0, before;
	struct strbuf sb;
	int err;

	if (!ref || !st)
		goto out;
	for (i = 0; i < NSTACKS; i++) {
		size_t n = 1 + rng_next(&seed) % 4;
		uint64_t count = 1 + rng_next(&seed) % 3;

		strbuf_init(&sb, 0);
		for (j = 0; j < n; j++) {
			const char *l = alphabet[rng_next(&seed) % 10];

			T_CHECK_EQ_INT(stacks__intern(st, l, strlen(l), &ids[j]), 0);
			ref[nref].lens[j] = strlen(l);
			err = (j ? strbuf_add(&sb, ";", 1) : 0) || strbuf_add(&sb, l, strlen(l));
			T_CHECK(!err);
		}
		before = stacks__nstacks(st);
		T_CHECK_EQ_INT(stacks__add(st, ids, n, count), 0);
		if (stacks__nstacks(st) == before) {
			/* Existing stack: find its reference entry and add the count there. */
			for (j = 0; j < nref; j++) {
				if (ref[j].n == n && ref[j].len == sb.len &&
				    (sb.len == 0 || memcmp(ref[j].line, sb.buf, sb.len) == 0) &&
				    memcmp(ref[j].lens, ref[nref].lens, n * sizeof(size_t)) == 0)
					break;
			}
			T_CHECK(j < nref);
			if (j < nref)
				ref[j].count += count;
			memset(ref[nref].lens, 0, sizeof(ref[nref].lens));
			strbuf_release(&sb);
			continue;
		}
		ref[nref].n = n;
		ref[nref].count = count;
		ref[nref].line = strbuf_detach(&sb, &ref[nref].len);
		nref++;
	}
	T_CHECK_EQ_INT(stacks__nstacks(st), nref);
	qsort(ref, nref, sizeof(*ref), ref_cmp);
	v.st = st;
	v.ref = ref;
	T_CHECK_EQ_INT(stacks__foreach_sorted(st, ref_visit_fn, &v), 0);
	T_CHECK_EQ_INT(v.i, nref);
	T_CHECK_EQ_INT(v.mismatches, 0);
out:
	for (i = 0; ref && i < nref; i++)
		free(ref[i].line);
	free(ref);
	stacks__free(st);
}

/* Build the same multiset of stacks in a shuffled order (labels interned in a different order). */
static char *build_shuffled(uint64_t seed, size_t nstacks)
{
	struct stacks *st = stacks__new();
	size_t *order = calloc(nstacks, sizeof(*order));
	char label[32], *out = NULL;
	uint32_t ids[4];
	size_t i, j, k, tmp;

	if (!st || !order)
		goto cleanup;
	for (i = 0; i < nstacks; i++)
		order[i] = i;
	for (i = nstacks; i > 1; i--) {
		j = rng_next(&seed) % i;
		tmp = order[i - 1];
		order[i - 1] = order[j];
		order[j] = tmp;
	}
	for (i = 0; i < nstacks; i++) {
		k = order[i];
		for (j = 0; j < 4; j++) {
			snprintf(label, sizeof(label), "f%zu (m.py:%zu)", (k >> (j * 3)) & 7, j);
			T_CHECK_EQ_INT(stacks__intern(st, label, strlen(label), &ids[j]), 0);
		}
		/* Few distinct counts so most ordering comes from the line bytes. */
		T_CHECK_EQ_INT(stacks__add(st, ids, 1 + k % 4, 1 + k % 3), 0);
	}
	out = render(st);
cleanup:
	free(order);
	stacks__free(st);
	return out;
}

static void test_determinism(void)
{
	char *a = build_shuffled(1, 4096);
	char *b = build_shuffled(2, 4096);
	char *c = build_shuffled(99, 4096);

	T_CHECK(a && b && c);
	if (a && b && c) {
		T_CHECK(strlen(a) > 1000);
		T_CHECK(strcmp(a, b) == 0);
		T_CHECK(strcmp(a, c) == 0);
	}
	free(a);
	free(b);
	free(c);
}

struct mono {
	uint64_t last;
	size_t visits;
	size_t bad;
	uint64_t sum;
};

static int mono_visit(const uint32_t *ids, size_t n, uint64_t count, void *arg)
{
	struct mono *m = arg;

	(void)ids;
	(void)n;
	if (m->visits && count > m->last)
		m->bad++;
	m->last = count;
	m->sum += count;
	m->visits++;
	return 0;
}

static void test_growth(void)
{
	enum { NSTACKS = 200000, NLABELS = 1000 };
	struct stacks *st = stacks__new();
	uint32_t ids[3], *deep = NULL, lid[NLABELS];
	struct mono m = { 0 };
	uint64_t want_total = 0;
	char label[32];
	size_t i, small;
	int fails = 0;

	if (!st)
		return;
	small = stacks__bytes(st);
	for (i = 0; i < NLABELS; i++) {
		snprintf(label, sizeof(label), "func_%zu (file.py:%zu)", i, i * 3);
		fails += stacks__intern(st, label, strlen(label), &lid[i]) != 0;
	}
	for (i = 0; i < NSTACKS; i++) {
		ids[0] = lid[i % NLABELS];
		ids[1] = lid[(i / NLABELS) % NLABELS];
		ids[2] = lid[7];
		fails += stacks__add(st, ids, 3, 1 + i % 5) != 0;
		want_total += 1 + i % 5;
	}
	/* Second pass hits existing stacks only. */
	for (i = 0; i < NSTACKS; i++) {
		ids[0] = lid[i % NLABELS];
		ids[1] = lid[(i / NLABELS) % NLABELS];
		ids[2] = lid[7];
		fails += stacks__add(st, ids, 3, 1) != 0;
		want_total += 1;
	}
	T_CHECK_EQ_INT(fails, 0);
	T_CHECK_EQ_INT(stacks__nstacks(st), NSTACKS);
	T_CHECK(stacks__total(st) == want_total);
	/* Labels are still deduplicated. */
	T_CHECK_EQ_INT(stacks__intern(st, "func_5 (file.py:15)", 19, &ids[0]), 0);
	T_CHECK_EQ_INT(ids[0], lid[5]);
	T_CHECK(stacks__bytes(st) > small);
	T_CHECK(stacks__bytes(st) < (size_t)64 << 20);

	/* A deep stack. */
	deep = calloc(10000, sizeof(*deep));
	T_CHECK(deep != NULL);
	if (deep) {
		for (i = 0; i < 10000; i++)
			deep[i] = lid[i % NLABELS];
		T_CHECK_EQ_INT(stacks__add(st, deep, 10000, 1), 0);
		T_CHECK_EQ_INT(stacks__add(st, deep, 10000, 1), 0);
		T_CHECK_EQ_INT(stacks__add(st, deep, 9999, 1), 0);
		T_CHECK_EQ_INT(stacks__nstacks(st), NSTACKS + 2);
		want_total += 3;
	}
	free(deep);

	T_CHECK_EQ_INT(stacks__foreach_sorted(st, mono_visit, &m), 0);
	T_CHECK_EQ_INT(m.visits, NSTACKS + 2);
	T_CHECK_EQ_INT(m.bad, 0);
	T_CHECK(m.sum == want_total);

	/* clear forgets everything and gives the memory back; the object stays usable. */
	stacks__clear(st);
	T_CHECK_EQ_INT(stacks__nstacks(st), 0);
	T_CHECK(stacks__total(st) == 0);
	T_CHECK(stacks__label(st, 0) == NULL);
	T_CHECK_EQ_INT(stacks__bytes(st), small);
	T_CHECK_EQ_INT(stacks__add(st, ids, 1, 1), -EINVAL); /* old ids are gone */
	T_CHECK_EQ_INT(intern_str(st, "fresh"), 0);
	ids[0] = 0;
	T_CHECK_EQ_INT(stacks__add(st, ids, 1, 2), 0);
	T_CHECK_EQ_INT(stacks__nstacks(st), 1);
	stacks__clear(st);
	stacks__clear(st);
	stacks__free(st);
}

int main(void)
{
	test_intern();
	test_add_counts();
	test_order();
	test_equal_lines();
	test_order_property();
	test_determinism();
	test_growth();
	return T_DONE();
}
