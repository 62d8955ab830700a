/* SPDX-License-Identifier: BSD-2-Clause */
/* analyze.c - top functions and profile diffs. */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "analyze.h"

struct top_ctx {
	struct fn_stat *v;
	uint64_t *seen; /* label id -> 1 + index of the last stack that counted it */
	uint64_t stack;
};

static int top_visit(const uint32_t *ids, size_t n, uint64_t count, void *arg)
{
	struct top_ctx *t = arg;

	t->stack++;
	for (size_t i = 0; i < n; i++) {
		if (t->seen[ids[i]] == t->stack)
			continue;
		t->seen[ids[i]] = t->stack;
		t->v[ids[i]].total += count;
	}
	t->v[ids[n - 1]].self += count;
	return 0;
}

static int top_cmp(const void *x, const void *y, void *arg)
{
	const struct fn_stat *a = x, *b = y;
	const struct stacks *st = arg;
	const char *la, *lb;
	size_t na, nb;
	int c;

	if (a->self != b->self)
		return a->self < b->self ? 1 : -1;
	if (a->total != b->total)
		return a->total < b->total ? 1 : -1;
	la = stacks__label_bytes(st, a->id, &na);
	lb = stacks__label_bytes(st, b->id, &nb);
	c = memcmp(la, lb, na < nb ? na : nb);
	return c ? c : (na > nb) - (na < nb);
}

int analyze_top(const struct stacks *st, struct fn_stat **out, size_t *n)
{
	size_t nl = stacks__nlabels(st), k = 0;
	struct top_ctx t = { 0 };

	t.v = calloc(nl ? nl : 1, sizeof(*t.v));
	t.seen = calloc(nl ? nl : 1, sizeof(*t.seen));
	if (!t.v || !t.seen) {
		free(t.v);
		free(t.seen);
		return -ENOMEM;
	}
	(void)stacks__foreach(st, top_visit, &t);
	free(t.seen);
	for (size_t i = 0; i < nl; i++) {
		if (!t.v[i].total)
			continue;
		t.v[k] = t.v[i];
		t.v[k++].id = (uint32_t)i;
	}
	qsort_r(t.v, k, sizeof(*t.v), top_cmp, (void *)st);
	*out = t.v;
	*n = k;
	return 0;
}

/* ------------------------------------------------------------------ diff */

struct diff_ctx {
	const struct stacks *self, *other;
	struct strbuf *sb;
	uint32_t *ids; /* the stack translated into other's ids */
	size_t cap;
	bool first; /* visiting a: print both counts; visiting b: only stacks absent from a */
};

static int add_label(struct strbuf *sb, const char *s, size_t len)
{
	size_t start = 0;
	int err;

	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		char r;

		if (c >= 0x20 && c != 0x7f && c != ';')
			continue;
		err = strbuf_add(sb, s + start, i - start);
		r = c == ';' ? ':' : ' ';
		if (!err)
			err = strbuf_add(sb, &r, 1);
		if (err)
			return err;
		start = i + 1;
	}
	return strbuf_add(sb, s + start, len - start);
}

static int diff_visit(const uint32_t *ids, size_t n, uint64_t count, void *arg)
{
	struct diff_ctx *d = arg;
	uint64_t other = 0;
	bool found = true;
	int err = 0;

	if (n > d->cap) {
		uint32_t *nv = realloc(d->ids, n * sizeof(*nv));

		if (!nv)
			return -ENOMEM;
		d->ids = nv;
		d->cap = n;
	}
	for (size_t i = 0; i < n && found; i++) {
		size_t len;
		const char *l = stacks__label_bytes(d->self, ids[i], &len);

		found = stacks__find_label(d->other, l, len, &d->ids[i]);
	}
	if (found)
		other = stacks__count(d->other, d->ids, n);
	if (!d->first && other)
		return 0; /* printed with a */
	for (size_t i = 0; i < n && !err; i++) {
		size_t len;
		const char *l = stacks__label_bytes(d->self, ids[i], &len);

		if (i)
			err = strbuf_add(d->sb, ";", 1);
		if (!err)
			err = add_label(d->sb, l, len);
	}
	if (!err)
		err = strbuf_addf(d->sb, " %" PRIu64 " %" PRIu64 "\n", d->first ? count : 0,
				  d->first ? other : count);
	return err;
}

int analyze_diff_write(const struct stacks *a, const struct stacks *b, struct strbuf *sb)
{
	struct diff_ctx d = { .self = a, .other = b, .sb = sb, .first = true };
	size_t orig = sb->len;
	int err;

	err = stacks__foreach_sorted(a, diff_visit, &d);
	if (!err) {
		d.self = b;
		d.other = a;
		d.first = false;
		err = stacks__foreach_sorted(b, diff_visit, &d);
	}
	free(d.ids);
	if (err)
		strbuf_setlen(sb, orig);
	return err;
}
