/* SPDX-License-Identifier: BSD-2-Clause */
/* window.c - one interval's stacks by series: pruning, merging, querying. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "window.h"

#define NO_ID	     UINT32_MAX
#define PRUNED_LABEL "[pruned]"

/* Copies labels of one table into another, each label once. */
struct xlate {
	const struct stacks *in;
	struct stacks *out;
	uint32_t *map; /* in id -> out id, NO_ID when not yet copied */
	uint32_t *buf; /* one translated stack */
	size_t cap_buf;
};

static int xlate_init(struct xlate *x, const struct stacks *in, struct stacks *out)
{
	size_t n = stacks__nlabels(in);

	memset(x, 0, sizeof(*x));
	x->in = in;
	x->out = out;
	x->map = malloc((n ? n : 1) * sizeof(*x->map));
	if (!x->map)
		return -ENOMEM;
	memset(x->map, 0xff, (n ? n : 1) * sizeof(*x->map));
	return 0;
}

static void xlate_release(struct xlate *x)
{
	free(x->map);
	free(x->buf);
	memset(x, 0, sizeof(*x));
}

static int xlate_id(struct xlate *x, uint32_t id, uint32_t *out)
{
	const char *s;
	size_t len;
	int err;

	if (x->map[id] != NO_ID) {
		*out = x->map[id];
		return 0;
	}
	s = stacks__label_bytes(x->in, id, &len);
	if (!s)
		return -EINVAL;
	err = stacks__intern(x->out, s, len, &x->map[id]);
	if (err) {
		x->map[id] = NO_ID;
		return err;
	}
	*out = x->map[id];
	return 0;
}

static int xlate_reserve(struct xlate *x, size_t n)
{
	uint32_t *nb;

	if (n <= x->cap_buf)
		return 0;
	nb = realloc(x->buf, n * sizeof(*nb));
	if (!nb)
		return -ENOMEM;
	x->buf = nb;
	x->cap_buf = n;
	return 0;
}

struct window *window__new(int64_t from_ms)
{
	struct window *w = calloc(1, sizeof(*w));

	if (!w)
		return NULL;
	w->st = stacks__new();
	if (!w->st) {
		free(w);
		errno = ENOMEM;
		return NULL;
	}
	w->from_ms = from_ms;
	return w;
}

void window__free(struct window *w)
{
	if (!w)
		return;
	stacks__free(w->st);
	free(w->series);
	free(w);
}

static int root_label(struct stacks *st, uint64_t serial, uint32_t *id)
{
	char label[32];
	int n = snprintf(label, sizeof(label), "\x01series %" PRIu64, serial);

	return stacks__intern(st, label, (size_t)n, id);
}

static struct window_series *find_series(const struct window *w, uint64_t serial)
{
	/* Newest first: a process sampled now was most likely added recently. */
	for (size_t i = w->nseries; i-- > 0;)
		if (w->series[i].m.serial == serial)
			return &w->series[i];
	return NULL;
}

static int add_series(struct window *w, const struct series_meta *m, struct window_series **out)
{
	struct window_series *s;
	uint32_t root;
	int err;

	if (w->nseries == w->cap_series) {
		size_t ncap = w->cap_series ? w->cap_series * 2 : 16;

		s = realloc(w->series, ncap * sizeof(*s));
		if (!s)
			return -ENOMEM;
		w->series = s;
		w->cap_series = ncap;
	}
	err = root_label(w->st, m->serial, &root);
	if (err)
		return err;
	s = &w->series[w->nseries++];
	s->m = *m;
	s->root = root;
	*out = s;
	return 0;
}

int window__series(struct window *w, const struct series_meta *m, uint32_t *root)
{
	struct window_series *s = find_series(w, m->serial);
	int err;

	if (!s) {
		err = add_series(w, m, &s);
		if (err)
			return err;
	}
	*root = s->root;
	return 0;
}

size_t window__bytes(const struct window *w)
{
	return sizeof(*w) + stacks__bytes(w->st) + w->cap_series * sizeof(*w->series);
}

uint64_t window__samples(const struct window *w)
{
	return stacks__total(w->st);
}

/* ------------------------------------------------------------------ top-k */

struct topk {
	struct xlate x;
	size_t keep, root_depth, seen;
	uint32_t pruned_id;
	uint64_t pruned_stacks, pruned_samples;
};

static int topk_visit(const uint32_t *ids, size_t n, uint64_t count, void *arg)
{
	struct topk *t = arg;
	size_t m = n;
	int err;

	if (t->seen++ >= t->keep) {
		m = t->root_depth < n ? t->root_depth : n;
		t->pruned_stacks++;
		t->pruned_samples += count;
	}
	err = xlate_reserve(&t->x, m + 1);
	for (size_t i = 0; !err && i < m; i++)
		err = xlate_id(&t->x, ids[i], &t->x.buf[i]);
	if (err)
		return err;
	if (m < n)
		t->x.buf[m++] = t->pruned_id;
	return stacks__add(t->x.out, t->x.buf, m, count);
}

int window_stacks_topk(const struct stacks *in, size_t keep, size_t root_depth,
		       struct stacks *out, uint64_t *pruned_stacks, uint64_t *pruned_samples)
{
	struct topk t = { .keep = keep, .root_depth = root_depth };
	int err;

	err = xlate_init(&t.x, in, out);
	if (err)
		return err;
	err = stacks__intern(out, PRUNED_LABEL, strlen(PRUNED_LABEL), &t.pruned_id);
	if (!err)
		err = stacks__foreach_sorted(in, topk_visit, &t);
	xlate_release(&t.x);
	if (err)
		return err;
	if (pruned_stacks)
		*pruned_stacks += t.pruned_stacks;
	if (pruned_samples)
		*pruned_samples += t.pruned_samples;
	return 0;
}

int window__prune(struct window *w, size_t keep)
{
	struct stacks *ns;
	uint64_t ps = 0, pn = 0;
	uint32_t *roots;
	int err = 0;

	if (stacks__nstacks(w->st) <= keep)
		return 0;
	ns = stacks__new();
	roots = calloc(w->nseries ? w->nseries : 1, sizeof(*roots));
	if (!ns || !roots) {
		err = -ENOMEM;
		goto out;
	}
	/* Roots first, so every series keeps one even when none of its stacks survive. */
	for (size_t i = 0; !err && i < w->nseries; i++)
		err = root_label(ns, w->series[i].m.serial, &roots[i]);
	if (!err)
		err = window_stacks_topk(w->st, keep, 1, ns, &ps, &pn);
	if (err)
		goto out;
	for (size_t i = 0; i < w->nseries; i++)
		w->series[i].root = roots[i];
	stacks__free(w->st);
	w->st = ns;
	ns = NULL;
	w->pruned_stacks += ps;
	w->pruned_samples += pn;
out:
	stacks__free(ns);
	free(roots);
	return err;
}

/* ------------------------------------------------------------------ absorb */

static int absorb_visit(const uint32_t *ids, size_t n, uint64_t count, void *arg)
{
	struct xlate *x = arg;
	int err = xlate_reserve(x, n);

	for (size_t i = 0; !err && i < n; i++)
		err = xlate_id(x, ids[i], &x->buf[i]);
	return err ? err : stacks__add(x->out, x->buf, n, count);
}

int window__absorb(struct window *dst, const struct window *src)
{
	struct xlate x;
	int err;

	/* Series first: a root label means the same process in both windows. */
	for (size_t i = 0; i < src->nseries; i++) {
		uint32_t root;

		err = window__series(dst, &src->series[i].m, &root);
		if (err)
			return err;
	}
	err = xlate_init(&x, src->st, dst->st);
	if (err)
		return err;
	err = stacks__foreach(src->st, absorb_visit, &x);
	xlate_release(&x);
	if (err)
		return err;
	if (src->from_ms < dst->from_ms)
		dst->from_ms = src->from_ms;
	if (src->until_ms > dst->until_ms)
		dst->until_ms = src->until_ms;
	dst->pruned_stacks += src->pruned_stacks;
	dst->pruned_samples += src->pruned_samples;
	return 0;
}

/* ------------------------------------------------------------------ query */

struct query_ctx {
	struct xlate x;
	uint32_t *series_of; /* in label id -> series index, NO_ID for other labels */
	uint32_t *out_root;  /* series index -> out root id; NO_ID: excluded; NO_ID - 1: none */
};

#define ROOT_NONE (NO_ID - 1)

static int query_visit(const uint32_t *ids, size_t n, uint64_t count, void *arg)
{
	struct query_ctx *q = arg;
	uint32_t si = q->series_of[ids[0]], root;
	size_t m = 0;
	int err;

	if (si == NO_ID)
		return -EINVAL; /* every stack starts with a series root */
	root = q->out_root[si];
	if (root == NO_ID)
		return 0;
	err = xlate_reserve(&q->x, n);
	if (err)
		return err;
	if (root != ROOT_NONE)
		q->x.buf[m++] = root;
	for (size_t i = 1; i < n; i++) {
		err = xlate_id(&q->x, ids[i], &q->x.buf[m++]);
		if (err)
			return err;
	}
	if (!m)
		return 0; /* a bare root (cannot happen from the agent) */
	return stacks__add(q->x.out, q->x.buf, m, count);
}

static int query_root(const struct window_series *s, enum window_group g, struct stacks *out,
		      uint32_t *id)
{
	char label[SERIES_APP_MAX + 64];
	int n;

	switch (g) {
	case WINDOW_GROUP_PROCESS:
		if (s->m.nspid && s->m.nspid != s->m.pid)
			n = snprintf(label, sizeof(label), "%s [%d ns:%d]", s->m.comm, (int)s->m.pid,
				     (int)s->m.nspid);
		else
			n = snprintf(label, sizeof(label), "%s [%d]", s->m.comm, (int)s->m.pid);
		break;
	case WINDOW_GROUP_COMM:
		n = snprintf(label, sizeof(label), "%s", s->m.comm);
		break;
	case WINDOW_GROUP_APP:
		n = snprintf(label, sizeof(label), "%s", s->m.app);
		break;
	case WINDOW_GROUP_NONE:
	default:
		*id = ROOT_NONE;
		return 0;
	}
	if (n < 0)
		return -EINVAL;
	if ((size_t)n >= sizeof(label))
		n = sizeof(label) - 1;
	return stacks__intern(out, label, (size_t)n, id);
}

int window__query(const struct window *w, const struct window_query *q, struct stacks *out)
{
	struct query_ctx c = { 0 };
	size_t nl = stacks__nlabels(w->st);
	bool any = false;
	int err;

	err = xlate_init(&c.x, w->st, out);
	if (err)
		return err;
	c.series_of = malloc((nl ? nl : 1) * sizeof(*c.series_of));
	c.out_root = malloc((w->nseries ? w->nseries : 1) * sizeof(*c.out_root));
	if (!c.series_of || !c.out_root) {
		err = -ENOMEM;
		goto out;
	}
	memset(c.series_of, 0xff, (nl ? nl : 1) * sizeof(*c.series_of));
	for (size_t i = 0; i < w->nseries; i++) {
		const struct window_series *s = &w->series[i];

		c.series_of[s->root] = (uint32_t)i;
		c.out_root[i] = NO_ID;
		if (q->match && !q->match(&s->m, q->arg))
			continue;
		err = query_root(s, q->group, out, &c.out_root[i]);
		if (err)
			goto out;
		any = true;
	}
	if (any)
		err = stacks__foreach(w->st, query_visit, &c);
out:
	xlate_release(&c.x);
	free(c.series_of);
	free(c.out_root);
	return err;
}
