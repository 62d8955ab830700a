/* SPDX-License-Identifier: BSD-2-Clause */
/* filter.c - --include / --exclude rules over struct procinfo. */
#include <errno.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "filter.h"
#include "util.h"

enum filter_kind {
	FILTER_COMM,
	FILTER_APP,
	FILTER_CGROUP,
	FILTER_PID,
	FILTER_CONTAINER,
};

#define FILTER_QUOTE_MAX 64 /* bytes of a spec quoted in a message */

struct filter_rule {
	enum filter_kind kind;
	bool include;
	char *pat; /* owned: glob, or lower-case container prefix */
	int *pids; /* owned: FILTER_PID */
	size_t npids;
};

struct filter {
	struct filter_rule *v;
	size_t n, cap;
	size_t nincl; /* include rules among v */
};

static const struct {
	const char *prefix;
	enum filter_kind kind;
} kinds[] = {
	{ "comm:", FILTER_COMM },	    { "app:", FILTER_APP },
	{ "cgroup:", FILTER_CGROUP },	    { "pid:", FILTER_PID },
	{ "container:", FILTER_CONTAINER },
};

struct filter *filter__new(void)
{
	return calloc(1, sizeof(struct filter));
}

static void rule_release(struct filter_rule *r)
{
	free(r->pat);
	free(r->pids);
}

void filter__free(struct filter *f)
{
	if (!f)
		return;
	for (size_t i = 0; i < f->n; i++)
		rule_release(&f->v[i]);
	free(f->v);
	free(f);
}

/* The rule spec stands for into *r (value: the part after "KIND:"). 0 or -errno, *why set. */
static int rule_build(struct filter_rule *r, const char *value, const char **why)
{
	size_t len = strlen(value);
	int err;

	switch (r->kind) {
	case FILTER_COMM:
	case FILTER_APP:
	case FILTER_CGROUP:
		if (!len) {
			*why = "empty pattern";
			return -EINVAL;
		}
		if (len > FILTER_GLOB_MAX) {
			*why = "pattern too long";
			return -EINVAL;
		}
		break;
	case FILTER_PID:
		err = parse_pid_list(value, &r->pids, &r->npids);
		if (err == -ENOMEM) {
			*why = "out of memory";
			return err;
		}
		if (err) {
			*why = "expected process ids in 1..2147483647 separated by ','";
			return -EINVAL;
		}
		return 0;
	case FILTER_CONTAINER:
		if (len < 4 || len > PROCINFO_CONTAINER_LEN ||
		    strspn(value, "0123456789abcdefABCDEF") != len) {
			*why = "expected a container id prefix of 4 to 64 hex digits";
			return -EINVAL;
		}
		break;
	}
	r->pat = strdup(value);
	if (!r->pat) {
		*why = "out of memory";
		return -ENOMEM;
	}
	if (r->kind == FILTER_CONTAINER)
		for (char *p = r->pat; *p; p++)
			if (*p >= 'A' && *p <= 'F')
				*p = (char)(*p - 'A' + 'a');
	return 0;
}

/* "OPT 'SPEC': WHY" into err, the spec cut so that the reason always shows. */
static void report(char *err, size_t errlen, const char *opt, const char *spec, const char *why)
{
	int n = (int)strnlen(spec, FILTER_QUOTE_MAX + 1);

	if (!errlen)
		return;
	if (n > FILTER_QUOTE_MAX)
		snprintf(err, errlen, "%s '%.*s...': %s", opt, FILTER_QUOTE_MAX, spec, why);
	else
		snprintf(err, errlen, "%s '%s': %s", opt, spec, why);
}

int filter__add(struct filter *f, bool include, const char *spec, char *err, size_t errlen)
{
	const char *opt = include ? "--include" : "--exclude", *why = NULL;
	struct filter_rule r = { .include = include };
	const char *value = NULL;
	int ret;

	if (!f || !spec) {
		if (errlen)
			snprintf(err, errlen, "%s: missing filter spec", opt);
		return -EINVAL;
	}
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		size_t n = strlen(kinds[i].prefix);

		if (strncmp(spec, kinds[i].prefix, n) == 0) {
			r.kind = kinds[i].kind;
			value = spec + n;
			break;
		}
	}
	if (!value) {
		report(err, errlen, opt, spec,
		       "unknown filter kind (expected comm:, app:, cgroup:, pid: or container:)");
		return -EINVAL;
	}
	ret = rule_build(&r, value, &why);
	if (!ret && f->n == f->cap) {
		size_t cap = f->cap ? f->cap * 2 : 8;
		struct filter_rule *v = realloc(f->v, cap * sizeof(*v));

		if (v) {
			f->v = v;
			f->cap = cap;
		} else {
			why = "out of memory";
			ret = -ENOMEM;
		}
	}
	if (ret) {
		rule_release(&r);
		report(err, errlen, opt, spec, why);
		return ret;
	}
	f->v[f->n++] = r;
	f->nincl += include;
	return 0;
}

/* cgroup:GLOB - the whole path, or for a relative GLOB any part after a '/'. */
static bool cgroup_matches(const char *glob, const char *path)
{
	if (!path[0])
		return false;
	if (fnmatch(glob, path, 0) == 0)
		return true;
	if (glob[0] == '/')
		return false;
	for (const char *s = strchr(path, '/'); s; s = strchr(s + 1, '/'))
		if (fnmatch(glob, s + 1, 0) == 0)
			return true;
	return false;
}

static bool rule_matches(const struct filter_rule *r, const struct procinfo *pi)
{
	switch (r->kind) {
	case FILTER_COMM:
		return fnmatch(r->pat, pi->comm, 0) == 0;
	case FILTER_APP:
		return fnmatch(r->pat, pi->app, 0) == 0;
	case FILTER_CGROUP:
		return cgroup_matches(r->pat, pi->cgroup);
	case FILTER_PID:
		for (size_t i = 0; i < r->npids; i++)
			if (r->pids[i] == pi->pid)
				return true;
		return false;
	case FILTER_CONTAINER:
		return pi->container[0] && strncmp(pi->container, r->pat, strlen(r->pat)) == 0;
	}
	return false;
}

bool filter__allows(const struct filter *f, const struct procinfo *pi)
{
	bool included;

	if (!f)
		return true;
	included = f->nincl == 0;
	for (size_t i = 0; i < f->n; i++) {
		const struct filter_rule *r = &f->v[i];

		if (r->include && included)
			continue; /* already in; only an exclude can change that */
		if (!rule_matches(r, pi))
			continue;
		if (!r->include)
			return false;
		included = true;
	}
	return included;
}

bool filter__empty(const struct filter *f)
{
	return !f || f->n == 0;
}
