/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * stacks.c - stack aggregation.
 *
 * Layout: labels and stacks live in dense arrays indexed by id. Each array has an open-addressing
 * table (linear probing, power-of-two size, load <= 3/4) that holds index + 1, 0 meaning empty.
 * Every record starts with its 64-bit hash, so a table is rebuilt from its array alone.
 * Label bytes go to an arena of chunks that never move (stacks__label hands out pointers into
 * it); the label ids of all stacks go end to end in one uint32_t array.
 */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "stacks.h"

#define TABLE_MIN_CAP	  64
#define ARRAY_MIN_CAP	  64
#define ARENA_CHUNK_BYTES (64 * 1024)
/* Labels bigger than this get their own chunk, so the current chunk keeps its free space. */
#define ARENA_BIG_LABEL (ARENA_CHUNK_BYTES / 4)
/* Table slots hold index + 1 in a uint32_t. */
#define MAX_RECORDS (UINT32_MAX - 1)

struct label {
	uint64_t hash;
	const char *str; /* NUL-terminated copy in the arena */
	uint32_t len;
};

struct stack_rec {
	uint64_t hash;
	uint64_t count;
	size_t off; /* first id in st->frames */
	uint32_t n;
};

_Static_assert(offsetof(struct label, hash) == 0, "table_rebuild reads the hash first");
_Static_assert(offsetof(struct stack_rec, hash) == 0, "table_rebuild reads the hash first");

struct arena_chunk {
	struct arena_chunk *next;
	size_t used;
	size_t cap;
	char data[];
};

struct stacks {
	struct label *labels;
	size_t nlabels;
	size_t labels_cap;
	uint32_t *label_tab;
	size_t label_tab_cap;

	struct arena_chunk *chunks; /* head is the chunk being filled */
	size_t arena_bytes;

	struct stack_rec *recs;
	size_t nrecs;
	size_t recs_cap;
	uint32_t *stack_tab;
	size_t stack_tab_cap;

	uint32_t *frames;
	size_t nframes;
	size_t frames_cap;

	uint64_t total;
};

/* Final avalanche of MurmurHash3 (fmix64): spreads every input bit over the low bits we mask. */
static uint64_t mix64(uint64_t h)
{
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ULL;
	h ^= h >> 33;
	return h;
}

/* FNV-1a over the bytes, then mixed. */
static uint64_t hash_bytes(const char *s, size_t len)
{
	uint64_t h = 0xcbf29ce484222325ULL;
	size_t i;

	for (i = 0; i < len; i++) {
		h ^= (unsigned char)s[i];
		h *= 0x100000001b3ULL;
	}
	return mix64(h ^ len);
}

static uint64_t hash_ids(const uint32_t *ids, size_t n)
{
	uint64_t h = 0x9e3779b97f4a7c15ULL ^ n;
	size_t i;

	for (i = 0; i < n; i++) {
		h = (h ^ ids[i]) * 0x9e3779b97f4a7c15ULL;
		h ^= h >> 29;
	}
	return mix64(h);
}

/*
 * Return arr grown to hold at least need elements of elem bytes (capacity doubles), or NULL when
 * the size overflows or realloc fails; arr is then untouched.
 */
static void *array_grow(void *arr, size_t *cap, size_t need, size_t elem)
{
	size_t new_cap = *cap ? *cap : ARRAY_MIN_CAP;
	void *p;

	if (need <= *cap)
		return arr;
	while (new_cap < need) {
		if (new_cap > SIZE_MAX / 2)
			return NULL;
		new_cap *= 2;
	}
	if (new_cap > SIZE_MAX / elem)
		return NULL;
	p = realloc(arr, new_cap * elem);
	if (!p)
		return NULL;
	*cap = new_cap;
	return p;
}

/*
 * Make sure the table can take one more record while staying at most 3/4 full, rebuilding it from
 * the nrecs records (each rec_size bytes, hash first) when it has to grow.
 */
static int table_reserve(uint32_t **tab, size_t *cap, const void *recs, size_t rec_size,
			 size_t nrecs)
{
	size_t new_cap = *cap ? *cap : TABLE_MIN_CAP;
	size_t i, j, mask;
	uint32_t *t;
	uint64_t h;

	if (*cap && (nrecs + 1) <= *cap / 4 * 3)
		return 0;
	while ((nrecs + 1) > new_cap / 4 * 3) {
		if (new_cap > SIZE_MAX / 2 / sizeof(*t))
			return -ENOMEM;
		new_cap *= 2;
	}
	t = calloc(new_cap, sizeof(*t));
	if (!t)
		return -ENOMEM;
	mask = new_cap - 1;
	for (i = 0; i < nrecs; i++) {
		memcpy(&h, (const char *)recs + i * rec_size, sizeof(h));
		for (j = h & mask; t[j]; j = (j + 1) & mask)
			;
		t[j] = (uint32_t)(i + 1);
	}
	free(*tab);
	*tab = t;
	*cap = new_cap;
	return 0;
}

/* The slot holding label[0..len), or the empty slot where it would go. Table must be non-empty. */
static uint32_t *label_slot(const struct stacks *st, uint64_t h, const char *s, size_t len)
{
	size_t mask = st->label_tab_cap - 1, j;
	const struct label *l;

	for (j = h & mask;; j = (j + 1) & mask) {
		if (!st->label_tab[j])
			return &st->label_tab[j];
		l = &st->labels[st->label_tab[j] - 1];
		if (l->hash == h && l->len == len && memcmp(l->str, s, len) == 0)
			return &st->label_tab[j];
	}
}

static uint32_t *stack_slot(const struct stacks *st, uint64_t h, const uint32_t *ids, size_t n)
{
	size_t mask = st->stack_tab_cap - 1, j;
	const struct stack_rec *r;

	for (j = h & mask;; j = (j + 1) & mask) {
		if (!st->stack_tab[j])
			return &st->stack_tab[j];
		r = &st->recs[st->stack_tab[j] - 1];
		if (r->hash == h && r->n == n &&
		    memcmp(st->frames + r->off, ids, n * sizeof(*ids)) == 0)
			return &st->stack_tab[j];
	}
}

/* size bytes from the arena; they stay put until stacks__clear. NULL when out of memory. */
static char *arena_alloc(struct stacks *st, size_t size)
{
	struct arena_chunk *c = st->chunks;
	size_t cap;

	if (c && c->cap - c->used >= size) {
		c->used += size;
		return c->data + c->used - size;
	}
	cap = size > ARENA_BIG_LABEL ? size : ARENA_CHUNK_BYTES - sizeof(*c);
	if (cap > SIZE_MAX - sizeof(*c))
		return NULL;
	c = malloc(sizeof(*c) + cap);
	if (!c)
		return NULL;
	c->cap = cap;
	c->used = size;
	if (size > ARENA_BIG_LABEL && st->chunks) {
		/* A dedicated chunk goes behind the head, which keeps filling. */
		c->next = st->chunks->next;
		st->chunks->next = c;
	} else {
		c->next = st->chunks;
		st->chunks = c;
	}
	st->arena_bytes += sizeof(*c) + cap;
	return c->data;
}

struct stacks *stacks__new(void)
{
	struct stacks *st = calloc(1, sizeof(*st));

	if (!st) {
		errno = ENOMEM;
		return NULL;
	}
	return st;
}

void stacks__clear(struct stacks *st)
{
	struct arena_chunk *c, *next;

	if (!st)
		return;
	for (c = st->chunks; c; c = next) {
		next = c->next;
		free(c);
	}
	free(st->labels);
	free(st->label_tab);
	free(st->recs);
	free(st->stack_tab);
	free(st->frames);
	memset(st, 0, sizeof(*st));
}

void stacks__free(struct stacks *st)
{
	if (!st)
		return;
	stacks__clear(st);
	free(st);
}

int stacks__intern(struct stacks *st, const char *label, size_t len, uint32_t *id)
{
	uint64_t h;
	uint32_t *slot;
	struct label *l;
	char *copy;
	int err;

	if (!label) {
		if (len)
			return -EINVAL;
		label = ""; /* memcmp/memcpy want non-NULL even for 0 bytes */
	}
	if (len >= UINT32_MAX)
		return -E2BIG;
	h = hash_bytes(label, len);
	if (st->label_tab_cap) {
		slot = label_slot(st, h, label, len);
		if (*slot) {
			*id = *slot - 1;
			return 0;
		}
	}
	if (st->nlabels >= MAX_RECORDS)
		return -E2BIG;

	/* Grow everything first: a failure below leaves only spare capacity behind. */
	l = array_grow(st->labels, &st->labels_cap, st->nlabels + 1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	st->labels = l;
	err = table_reserve(&st->label_tab, &st->label_tab_cap, st->labels, sizeof(*st->labels),
			    st->nlabels);
	if (err)
		return err;
	copy = arena_alloc(st, len + 1);
	if (!copy)
		return -ENOMEM;
	if (len)
		memcpy(copy, label, len);
	copy[len] = '\0';

	l = &st->labels[st->nlabels];
	l->hash = h;
	l->str = copy;
	l->len = (uint32_t)len;
	slot = label_slot(st, h, label, len);
	*slot = (uint32_t)(st->nlabels + 1);
	*id = (uint32_t)st->nlabels;
	st->nlabels++;
	return 0;
}

const char *stacks__label_bytes(const struct stacks *st, uint32_t id, size_t *len)
{
	if (id >= st->nlabels)
		return NULL;
	if (len)
		*len = st->labels[id].len;
	return st->labels[id].str;
}

const char *stacks__label(const struct stacks *st, uint32_t id)
{
	return stacks__label_bytes(st, id, NULL);
}

int stacks__add(struct stacks *st, const uint32_t *ids, size_t n, uint64_t count)
{
	return stacks__add_ref(st, ids, n, count, NULL);
}

int stacks__add_ref(struct stacks *st, const uint32_t *ids, size_t n, uint64_t count,
		    uint32_t *ref)
{
	struct stack_rec *r;
	uint32_t *slot, *f;
	size_t i;
	uint64_t h;
	int err;

	if (!ids || n == 0 || n > UINT32_MAX)
		return -EINVAL;
	for (i = 0; i < n; i++) {
		if (ids[i] >= st->nlabels)
			return -EINVAL;
	}
	if (count == 0 && !ref)
		return 0;
	/* Every stack's count is part of the total, so this check covers both. */
	if (st->total > UINT64_MAX - count)
		return -EOVERFLOW;

	h = hash_ids(ids, n);
	if (st->stack_tab_cap) {
		slot = stack_slot(st, h, ids, n);
		if (*slot) {
			st->recs[*slot - 1].count += count;
			st->total += count;
			if (ref)
				*ref = *slot - 1;
			return 0;
		}
	}
	if (st->nrecs >= MAX_RECORDS)
		return -E2BIG;
	if (st->nframes > SIZE_MAX - n)
		return -ENOMEM;

	r = array_grow(st->recs, &st->recs_cap, st->nrecs + 1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	st->recs = r;
	f = array_grow(st->frames, &st->frames_cap, st->nframes + n, sizeof(*f));
	if (!f)
		return -ENOMEM;
	st->frames = f;
	err = table_reserve(&st->stack_tab, &st->stack_tab_cap, st->recs, sizeof(*st->recs),
			    st->nrecs);
	if (err)
		return err;

	memcpy(st->frames + st->nframes, ids, n * sizeof(*ids));
	r = &st->recs[st->nrecs];
	r->hash = h;
	r->count = count;
	r->off = st->nframes;
	r->n = (uint32_t)n;
	slot = stack_slot(st, h, ids, n);
	*slot = (uint32_t)(st->nrecs + 1);
	if (ref)
		*ref = (uint32_t)st->nrecs;
	st->nframes += n;
	st->nrecs++;
	st->total += count;
	return 0;
}

const uint32_t *stacks__stack(const struct stacks *st, uint32_t ref, size_t *n, uint64_t *count)
{
	if (ref >= st->nrecs)
		return NULL;
	if (n)
		*n = st->recs[ref].n;
	if (count)
		*count = st->recs[ref].count;
	return st->frames + st->recs[ref].off;
}

bool stacks__find_label(const struct stacks *st, const char *label, size_t len, uint32_t *id)
{
	uint32_t *slot;

	if (!st->label_tab_cap)
		return false;
	slot = label_slot(st, hash_bytes(label, len), label, len);
	if (!*slot)
		return false;
	*id = *slot - 1;
	return true;
}

uint64_t stacks__count(const struct stacks *st, const uint32_t *ids, size_t n)
{
	uint32_t *slot;

	if (!st->stack_tab_cap || !n)
		return 0;
	slot = stack_slot(st, hash_ids(ids, n), ids, n);
	return *slot ? st->recs[*slot - 1].count : 0;
}

size_t stacks__nlabels(const struct stacks *st)
{
	return st->nlabels;
}

size_t stacks__nstacks(const struct stacks *st)
{
	return st->nrecs;
}

uint64_t stacks__total(const struct stacks *st)
{
	return st->total;
}

size_t stacks__bytes(const struct stacks *st)
{
	return sizeof(*st) + st->labels_cap * sizeof(*st->labels) +
	       st->label_tab_cap * sizeof(*st->label_tab) + st->arena_bytes +
	       st->recs_cap * sizeof(*st->recs) + st->stack_tab_cap * sizeof(*st->stack_tab) +
	       st->frames_cap * sizeof(*st->frames);
}

int stacks__foreach(const struct stacks *st, stacks_visit_fn fn, void *arg)
{
	for (size_t i = 0; i < st->nrecs; i++) {
		const struct stack_rec *r = &st->recs[i];
		int ret = fn(st->frames + r->off, r->n, r->count, arg);

		if (ret)
			return ret;
	}
	return 0;
}

static void label_at(const struct stacks *st, uint32_t id, const char **p, size_t *len)
{
	*p = st->labels[id].str;
	*len = st->labels[id].len;
}

/*
 * Compare the folded lines of two stacks (labels joined by ';') byte by byte without building
 * them: walk both label sequences, comparing runs with memcmp and treating each label boundary as
 * a ';' byte. Equal lines from different stacks are ordered by label count, then by the length of
 * the first label that differs in length, so the order is total.
 */
static int line_cmp(const struct stacks *st, const struct stack_rec *a, const struct stack_rec *b)
{
	const uint32_t *ida = st->frames + a->off, *idb = st->frames + b->off;
	size_t ia = 0, ib = 0, la, lb, m, i;
	const char *pa, *pb;
	bool enda, endb;
	int c;

	label_at(st, ida[0], &pa, &la);
	label_at(st, idb[0], &pb, &lb);
	for (;;) {
		m = la < lb ? la : lb;
		/* The same label at the same offset compares equal without reading it. */
		if (m && pa != pb) {
			c = memcmp(pa, pb, m);
			if (c)
				return c;
		}
		pa += m;
		la -= m;
		pb += m;
		lb -= m;

		/* One side or both is at a label boundary: next comes ';' or the end. */
		enda = la == 0 && ia + 1 == a->n;
		endb = lb == 0 && ib + 1 == b->n;
		if (la == 0 && lb == 0) {
			if (enda && endb)
				break;
			if (enda || endb)
				return enda ? -1 : 1;
			label_at(st, ida[++ia], &pa, &la);
			label_at(st, idb[++ib], &pb, &lb);
		} else if (la == 0) {
			if (enda)
				return -1;
			if (*pb != ';')
				return (unsigned char)';' < (unsigned char)*pb ? -1 : 1;
			label_at(st, ida[++ia], &pa, &la);
			pb++;
			lb--;
		} else {
			if (endb)
				return 1;
			if (*pa != ';')
				return (unsigned char)*pa < (unsigned char)';' ? -1 : 1;
			label_at(st, idb[++ib], &pb, &lb);
			pa++;
			la--;
		}
	}

	if (a->n != b->n)
		return a->n < b->n ? -1 : 1;
	for (i = 0; i < a->n; i++) {
		la = st->labels[ida[i]].len;
		lb = st->labels[idb[i]].len;
		if (la != lb)
			return la < lb ? -1 : 1;
	}
	return 0;
}

static int stack_order(const void *x, const void *y, void *arg)
{
	const struct stacks *st = arg;
	const struct stack_rec *a = &st->recs[*(const uint32_t *)x];
	const struct stack_rec *b = &st->recs[*(const uint32_t *)y];

	if (a->count != b->count)
		return a->count > b->count ? -1 : 1;
	return line_cmp(st, a, b);
}

int stacks__foreach_sorted(const struct stacks *st, stacks_visit_fn fn, void *arg)
{
	uint32_t *order;
	size_t i;
	int ret = 0;

	if (!st->nrecs)
		return 0;
	order = calloc(st->nrecs, sizeof(*order));
	if (!order)
		return -ENOMEM;
	for (i = 0; i < st->nrecs; i++)
		order[i] = (uint32_t)i;
	/* qsort_r is glibc's (and musl >= 1.2.3) argument order; st is only read. */
	qsort_r(order, st->nrecs, sizeof(*order), stack_order, (void *)st);
	for (i = 0; i < st->nrecs; i++) {
		const struct stack_rec *r = &st->recs[order[i]];

		ret = fn(st->frames + r->off, r->n, r->count, arg);
		if (ret)
			break;
	}
	free(order);
	return ret;
}
