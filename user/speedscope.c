/* SPDX-License-Identifier: BSD-2-Clause */
/* speedscope.c - speedscope's JSON file format from a struct stacks. */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "framelabel.h"
#include "speedscope.h"

struct sample_ref {
	uint32_t root;	 /* root label id */
	uint32_t thread; /* the "thread N" label under the root (--threads), or NO_THREAD */
	uint32_t first;	 /* index of the first frame in ids (1, or 2 after a thread label) */
	uint32_t order;	 /* position in stacks__foreach_sorted */
	const uint32_t *ids; /* borrowed from st (stable while st is unchanged) */
	size_t n;
	uint64_t count;
};

#define NO_THREAD UINT32_MAX

/* "thread " followed by digits: the agent's --threads frame. */
static bool is_thread_label(const char *l, size_t len)
{
	if (len < 8 || memcmp(l, "thread ", 7))
		return false;
	for (size_t i = 7; i < len; i++)
		if (l[i] < '0' || l[i] > '9')
			return false;
	return true;
}

struct ctx {
	const struct stacks *st;
	struct sample_ref *v;
	size_t n, cap;
	int32_t *frame; /* label id -> index in shared.frames, -1 = not yet */
	size_t nframes;
};

static int collect(const uint32_t *ids, size_t n, uint64_t count, void *arg)
{
	struct ctx *c = arg;

	if (c->n == c->cap) {
		size_t nc = c->cap ? 2 * c->cap : 256;
		struct sample_ref *v = realloc(c->v, nc * sizeof(*v));

		if (!v)
			return -ENOMEM;
		c->v = v;
		c->cap = nc;
	}
	c->v[c->n] = (struct sample_ref){ .root = ids[0], .thread = NO_THREAD, .first = 1,
					  .order = (uint32_t)c->n, .ids = ids, .n = n,
					  .count = count };
	if (n > 1) {
		size_t len;
		const char *l = stacks__label_bytes(c->st, ids[1], &len);

		if (is_thread_label(l, len)) {
			c->v[c->n].thread = ids[1];
			c->v[c->n].first = 2;
		}
	}
	c->n++;
	return 0;
}

static int cmp_label(const struct stacks *st, uint32_t x, uint32_t y)
{
	size_t na, nb;
	const char *la, *lb;
	int c;

	if (x == y)
		return 0;
	if (x == NO_THREAD || y == NO_THREAD)
		return x == NO_THREAD ? -1 : 1;
	la = stacks__label_bytes(st, x, &na);
	lb = stacks__label_bytes(st, y, &nb);
	c = memcmp(la, lb, na < nb ? na : nb);
	return c ? c : (na < nb ? -1 : na > nb);
}

/* By root, then thread (labels' bytes), then the sorted order (count descending). */
static int cmp_root(const void *x, const void *y, void *arg)
{
	const struct sample_ref *a = x, *b = y;
	int c = cmp_label(arg, a->root, b->root);

	if (!c)
		c = cmp_label(arg, a->thread, b->thread);
	return c ? c : a->order < b->order ? -1 : a->order > b->order;
}

static int put_frame(struct strbuf *out, const struct stacks *st, uint32_t id, bool first)
{
	struct frame_parts p;
	size_t len;
	const char *l = stacks__label_bytes(st, id, &len);
	int e = first ? 0 : strbuf_addlit(out, ",");

	if (!e)
		e = strbuf_addlit(out, "{\"name\":");
	if (!e && frame_label_split(l, len, &p)) {
		e = strbuf_add_json(out, p.name, p.name_len);
		if (!e)
			e = strbuf_addlit(out, ",\"file\":");
		if (!e)
			e = strbuf_add_json(out, p.file, p.file_len);
		if (!e && p.line >= 0)
			e = strbuf_addf(out, ",\"line\":%ld", p.line);
	} else if (!e) {
		e = strbuf_add_json(out, l, len);
	}
	return e ? e : strbuf_addlit(out, "}");
}

int speedscope_write(const struct stacks *st, const char *name, struct strbuf *out)
{
	struct ctx c = { .st = st };
	size_t start = out->len, nl = stacks__nlabels(st), i, j;
	int e;

	c.frame = malloc((nl ? nl : 1) * sizeof(*c.frame));
	if (!c.frame)
		return -ENOMEM;
	for (i = 0; i < nl; i++)
		c.frame[i] = -1;
	e = stacks__foreach_sorted(st, collect, &c);
	if (!e && c.n)
		qsort_r(c.v, c.n, sizeof(*c.v), cmp_root, (void *)st);
	if (!e)
		e = strbuf_addlit(out, "{\"$schema\":\"https://www.speedscope.app/file-format-schema.json\","
				       "\"exporter\":\"pysamp-bpf\",\"name\":");
	if (!e)
		e = strbuf_add_json(out, name ? name : "pysamp-bpf profile",
				    strlen(name ? name : "pysamp-bpf profile"));
	if (!e)
		e = strbuf_addlit(out, ",\"activeProfileIndex\":0,\"shared\":{\"frames\":[");
	/* frames: every label below a root, numbered in first-use order */
	for (i = 0; !e && i < c.n; i++) {
		for (j = c.v[i].first; !e && j < c.v[i].n; j++) {
			uint32_t id = c.v[i].ids[j];

			if (c.frame[id] >= 0)
				continue;
			c.frame[id] = (int32_t)c.nframes;
			e = put_frame(out, st, id, c.nframes++ == 0);
		}
	}
	if (!e)
		e = strbuf_addlit(out, "]},\"profiles\":[");
	for (i = 0; !e && i < c.n; i = j) {
		uint64_t total = 0;
		size_t len;
		const char *root = stacks__label_bytes(st, c.v[i].root, &len);

		for (j = i; j < c.n && c.v[j].root == c.v[i].root && c.v[j].thread == c.v[i].thread;
		     j++)
			total += c.v[j].count;
		e = i ? strbuf_addlit(out, ",") : 0;
		if (!e)
			e = strbuf_addlit(out, "{\"type\":\"sampled\",\"name\":");
		if (!e && c.v[i].thread != NO_THREAD) {
			size_t tl;
			const char *th = stacks__label_bytes(st, c.v[i].thread, &tl);
			char pname[1024];
			int nn = snprintf(pname, sizeof(pname), "%.*s / %.*s", (int)(len > 900 ? 900 : len),
					  root, (int)tl, th);

			size_t pl = nn < 0 ? 0 : (size_t)nn < sizeof(pname) ? (size_t)nn
									  : sizeof(pname) - 1;

			e = strbuf_add_json(out, pname, pl);
		} else if (!e) {
			e = strbuf_add_json(out, root, len);
		}
		if (!e)
			e = strbuf_addf(out, ",\"unit\":\"none\",\"startValue\":0,\"endValue\":%" PRIu64
					",\"samples\":[",
					total);
		for (size_t k = i; !e && k < j; k++) {
			e = k > i ? strbuf_addlit(out, ",[") : strbuf_addlit(out, "[");
			for (size_t d = c.v[k].first; !e && d < c.v[k].n; d++)
				e = strbuf_addf(out, d > c.v[k].first ? ",%d" : "%d",
						c.frame[c.v[k].ids[d]]);
			if (!e)
				e = strbuf_addlit(out, "]");
		}
		if (!e)
			e = strbuf_addlit(out, "],\"weights\":[");
		for (size_t k = i; !e && k < j; k++)
			e = strbuf_addf(out, k > i ? ",%" PRIu64 : "%" PRIu64, c.v[k].count);
		if (!e)
			e = strbuf_addlit(out, "]}");
	}
	if (!e)
		e = strbuf_addlit(out, "]}\n");
	if (e)
		strbuf_setlen(out, start);
	free(c.v);
	free(c.frame);
	return e;
}
