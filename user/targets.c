/* SPDX-License-Identifier: BSD-2-Clause */
/* targets.c - profiled processes by pid (open addressing, backward-shift deletion). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "targets.h"

struct targets {
	struct target **v;	/* slots: NULL or owned target */
	size_t cap, n;
	struct stacks *st;
};

static size_t slot_of(const struct targets *ts, pid_t pid)
{
	uint64_t h = (uint64_t)(uint32_t)pid * 0x9e3779b97f4a7c15ULL;

	return (size_t)(h >> 32) & (ts->cap - 1);
}

static void target_free(struct target *t)
{
	if (!t)
		return;
	symbolizer__free(t->sy);
	pyproc__free(t->pp);
	free(t);
}

struct targets *targets__new(struct stacks *st)
{
	struct targets *ts = calloc(1, sizeof(*ts));

	if (!ts)
		return NULL;
	ts->st = st;
	return ts;
}

void targets__free(struct targets *ts)
{
	if (!ts)
		return;
	for (size_t i = 0; i < ts->cap; i++)
		target_free(ts->v[i]);
	free(ts->v);
	free(ts);
}

static int grow(struct targets *ts)
{
	size_t ncap = ts->cap ? ts->cap * 2 : 64;
	struct target **nv = calloc(ncap, sizeof(*nv));
	struct targets tmp = { .v = nv, .cap = ncap };

	if (!nv)
		return -ENOMEM;
	for (size_t i = 0; i < ts->cap; i++) {
		size_t j;

		if (!ts->v[i])
			continue;
		for (j = slot_of(&tmp, ts->v[i]->pp->pid); nv[j]; j = (j + 1) & (ncap - 1))
			;
		nv[j] = ts->v[i];
	}
	free(ts->v);
	ts->v = nv;
	ts->cap = ncap;
	return 0;
}

int targets__add_take(struct targets *ts, struct pyproc *pp, struct target **out)
{
	struct target *t;
	size_t j;
	int err;

	if (targets__get(ts, pp->pid)) {
		pyproc__free(pp);
		return -EEXIST;
	}
	if ((ts->n + 1) * 2 > ts->cap && (err = grow(ts))) {
		pyproc__free(pp);
		return err;
	}
	t = calloc(1, sizeof(*t));
	if (!t) {
		pyproc__free(pp);
		return -ENOMEM;
	}
	t->pp = pp;
	t->sy = symbolizer__new(pp, ts->st);
	if (!t->sy) {
		target_free(t);
		return -ENOMEM;
	}
	t->meta.pid = pp->pid;
	t->meta.nspid = pp->pid;
	snprintf(t->meta.comm, sizeof(t->meta.comm), "%.16s", pp->comm);
	snprintf(t->meta.app, sizeof(t->meta.app), "%s", "python");
	for (j = slot_of(ts, pp->pid); ts->v[j]; j = (j + 1) & (ts->cap - 1))
		;
	ts->v[j] = t;
	ts->n++;
	*out = t;
	return 0;
}

struct target *targets__get(const struct targets *ts, pid_t pid)
{
	if (!ts->cap)
		return NULL;
	for (size_t j = slot_of(ts, pid); ts->v[j]; j = (j + 1) & (ts->cap - 1))
		if (ts->v[j]->pp->pid == pid)
			return ts->v[j];
	return NULL;
}

void targets__remove(struct targets *ts, pid_t pid)
{
	size_t mask = ts->cap - 1, i, j;

	if (!ts->cap)
		return;
	for (i = slot_of(ts, pid); ts->v[i]; i = (i + 1) & mask)
		if (ts->v[i]->pp->pid == pid)
			break;
	if (!ts->v[i])
		return;
	target_free(ts->v[i]);
	ts->v[i] = NULL;
	ts->n--;
	/* Backward-shift: move later members of the probe run into the hole. */
	for (j = (i + 1) & mask; ts->v[j]; j = (j + 1) & mask) {
		size_t home = slot_of(ts, ts->v[j]->pp->pid);

		/* Move v[j] to i unless its home lies cyclically in (i, j]. */
		if ((j > i && (home <= i || home > j)) || (j < i && (home <= i && home > j))) {
			ts->v[i] = ts->v[j];
			ts->v[j] = NULL;
			i = j;
		}
	}
}

size_t targets__count(const struct targets *ts)
{
	return ts->n;
}

void targets__foreach(const struct targets *ts, targets_visit_fn fn, void *arg)
{
	for (size_t i = 0; i < ts->cap; i++)
		if (ts->v[i])
			fn(ts->v[i], arg);
}

void targets__set_stacks(struct targets *ts, struct stacks *st)
{
	ts->st = st;
	for (size_t i = 0; i < ts->cap; i++) {
		if (!ts->v[i])
			continue;
		symbolizer__set_stacks(ts->v[i]->sy, st);
		ts->v[i]->win_gen = 0;
	}
}
