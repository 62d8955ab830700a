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

/* ------------------------------------------------------------------ tree */

struct tnode {
	uint32_t label;
	uint32_t parent;
	uint32_t first_child; /* 0 = none (node 0 is the root, never a child) */
	uint32_t next;	      /* next sibling, 0 = none */
	uint64_t total, self;
};

struct tree {
	struct tnode *v;
	size_t n, cap;
	uint32_t *slots; /* hash (parent, label) -> node index, 0 = empty */
	size_t nslots;
};

static uint64_t tkey_hash(uint32_t parent, uint32_t label)
{
	uint64_t h = ((uint64_t)parent << 32 | label) * 0x9e3779b97f4a7c15ull;

	return h ^ (h >> 29);
}

static int tree_grow_slots(struct tree *t)
{
	size_t ns = t->nslots ? t->nslots * 2 : 1024;
	uint32_t *s = calloc(ns, sizeof(*s));

	if (!s)
		return -ENOMEM;
	for (size_t i = 1; i < t->n; i++) {
		size_t j = tkey_hash(t->v[i].parent, t->v[i].label) & (ns - 1);

		while (s[j])
			j = (j + 1) & (ns - 1);
		s[j] = (uint32_t)i;
	}
	free(t->slots);
	t->slots = s;
	t->nslots = ns;
	return 0;
}

/* The child of parent labelled label, created when missing. 0 on -ENOMEM / -E2BIG. */
static uint32_t tree_child(struct tree *t, uint32_t parent, uint32_t label)
{
	size_t j;
	uint32_t i;

	if (2 * (t->n + 1) > t->nslots && tree_grow_slots(t))
		return 0;
	for (j = tkey_hash(parent, label) & (t->nslots - 1); (i = t->slots[j]);
	     j = (j + 1) & (t->nslots - 1))
		if (t->v[i].parent == parent && t->v[i].label == label)
			return i;
	if (t->n == t->cap) {
		size_t nc = t->cap * 2;
		struct tnode *v;

		if (nc > 0x7fffffffu) /* the top bit marks closes in analyze_tree_write */
			return 0;
		v = realloc(t->v, nc * sizeof(*v));
		if (!v)
			return 0;
		t->v = v;
		t->cap = nc;
	}
	i = (uint32_t)t->n++;
	t->v[i] = (struct tnode){ .label = label, .parent = parent, .next = t->v[parent].first_child };
	t->v[parent].first_child = i;
	t->slots[j] = i;
	return i;
}

static int tree_visit(const uint32_t *ids, size_t n, uint64_t count, void *arg)
{
	struct tree *t = arg;
	uint32_t at = 0;

	t->v[0].total += count;
	for (size_t i = 0; i < n; i++) {
		at = tree_child(t, at, ids[i]);
		if (!at)
			return -ENOMEM;
		t->v[at].total += count;
	}
	t->v[at].self += count;
	return 0;
}

struct child_cmp_ctx {
	const struct tree *t;
	const struct stacks *st;
};

/* Children by total descending, then label bytes: the widest first, deterministic. */
static int child_cmp(const void *x, const void *y, void *arg)
{
	const struct child_cmp_ctx *c = arg;
	const struct tnode *a = &c->t->v[*(const uint32_t *)x], *b = &c->t->v[*(const uint32_t *)y];
	const char *la, *lb;
	size_t na, nb;
	int r;

	if (a->total != b->total)
		return a->total < b->total ? 1 : -1;
	la = stacks__label_bytes(c->st, a->label, &na);
	lb = stacks__label_bytes(c->st, b->label, &nb);
	r = memcmp(la, lb, na < nb ? na : nb);
	return r ? r : (na > nb) - (na < nb);
}

int analyze_tree_write(const struct stacks *st, struct strbuf *sb)
{
	struct child_cmp_ctx cc;
	struct tree t = { 0 };
	uint32_t *todo = NULL, *kids = NULL; /* DFS stack; children of one node */
	size_t ntodo = 0, start = sb->len;
	int e = -ENOMEM;

	t.cap = 1024;
	t.n = 1;
	t.v = calloc(t.cap, sizeof(*t.v));
	if (!t.v || tree_grow_slots(&t))
		goto out;
	e = stacks__foreach(st, tree_visit, &t);
	if (e)
		goto out;
	e = -ENOMEM;
	/* each node is pushed once, plus one close marker per node with children */
	todo = malloc(2 * t.n * sizeof(*todo));
	kids = malloc(t.n * sizeof(*kids));
	if (!todo || !kids)
		goto out;
	cc.t = &t;
	cc.st = st;
	todo[ntodo++] = 0;
	e = 0;
	while (!e && ntodo) {
		uint32_t i = todo[--ntodo];
		const struct tnode *nd;
		size_t nk = 0;

		if (i & 0x80000000u) { /* close marker */
			e = strbuf_add(sb, "]}", 2);
			if (!e && ntodo && !(todo[ntodo - 1] & 0x80000000u))
				e = strbuf_add(sb, ",", 1);
			continue;
		}
		nd = &t.v[i];
		e = strbuf_add(sb, "{\"name\":", 8);
		if (!e && i) {
			size_t len;
			const char *name = stacks__label_bytes(st, nd->label, &len);

			e = strbuf_add_json(sb, name, len);
		} else if (!e) {
			e = strbuf_add(sb, "\"all\"", 5);
		}
		if (!e)
			e = strbuf_addf(sb, ",\"value\":%" PRIu64 ",\"self\":%" PRIu64, nd->total,
					nd->self);
		if (e)
			break;
		for (uint32_t k = nd->first_child; k; k = t.v[k].next)
			kids[nk++] = k;
		if (!nk) {
			e = strbuf_add(sb, "}", 1);
			if (!e && ntodo && !(todo[ntodo - 1] & 0x80000000u))
				e = strbuf_add(sb, ",", 1);
			continue;
		}
		e = strbuf_add(sb, ",\"children\":[", 13);
		qsort_r(kids, nk, sizeof(*kids), child_cmp, &cc);
		todo[ntodo++] = i | 0x80000000u;
		while (nk)
			todo[ntodo++] = kids[--nk];
	}
	if (!e)
		e = strbuf_add(sb, "\n", 1);
out:
	if (e)
		strbuf_setlen(sb, start);
	free(todo);
	free(kids);
	free(t.slots);
	free(t.v);
	return e;
}
