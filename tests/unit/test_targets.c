/* SPDX-License-Identifier: BSD-2-Clause */
/* test_targets.c - the pid-keyed target set: add, find, remove under churn. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "targets.h"

static struct pyproc *fake(pid_t pid)
{
	struct pyproc *pp = calloc(1, sizeof(*pp));

	pp->pid = pid;
	strcpy(pp->comm, "py");
	return pp;
}

int main(void)
{
	struct stacks *st = stacks__new();
	struct targets *ts = targets__new(st);
	struct target *t = NULL;
	static bool present[20000];
	int bad = 0;

	T_CHECK(ts != NULL);
	T_CHECK_EQ_INT(targets__add_take(ts, fake(42), &t), 0);
	T_CHECK(targets__get(ts, 42) == t);
	T_CHECK_EQ_INT(t->meta.pid, 42);
	T_CHECK_EQ_STR(t->meta.comm, "py");
	T_CHECK_EQ_INT(t->win_gen, 0);
	T_CHECK_EQ_INT(targets__add_take(ts, fake(42), &t), -EEXIST);
	T_CHECK(targets__get(ts, 43) == NULL);
	targets__remove(ts, 43);
	targets__remove(ts, 42);
	T_CHECK(targets__get(ts, 42) == NULL);
	T_CHECK_EQ_INT(targets__count(ts), 0);

	/* Churn: pseudo-random adds and removes, checked against a bitmap. */
	srand(7);
	for (int i = 0; i < 200000; i++) {
		pid_t pid = 1 + rand() % 19999;

		if (present[pid]) {
			targets__remove(ts, pid);
			present[pid] = false;
		} else {
			bad += targets__add_take(ts, fake(pid), &t) != 0;
			present[pid] = true;
		}
	}
	T_CHECK_EQ_INT(bad, 0);
	{
		size_t n = 0;

		for (pid_t pid = 1; pid < 20000; pid++) {
			bool got = targets__get(ts, pid) != NULL;

			bad += got != present[pid];
			n += present[pid];
		}
		T_CHECK_EQ_INT(bad, 0);
		T_CHECK_EQ_INT(targets__count(ts), n);
	}
	{
		struct stacks *st2 = stacks__new();
		struct target *t1 = targets__get(ts, 1) ? targets__get(ts, 1) : NULL;

		if (t1)
			t1->win_gen = 5;
		targets__set_stacks(ts, st2);
		T_CHECK(!t1 || t1->win_gen == 0);
		targets__set_stacks(ts, st);
		stacks__free(st2);
	}
	targets__free(ts);
	stacks__free(st);
	return T_DONE();
}
