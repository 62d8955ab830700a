/* SPDX-License-Identifier: BSD-2-Clause */
/* test_filter.c - --include / --exclude rules: every kind, their combination, bad specs. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "filter.h"
#include "harness.h"

#define ID "3f4e8a1b2c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f7"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

static struct procinfo proc(pid_t pid, const char *comm, const char *app, const char *cgroup,
			    const char *container)
{
	struct procinfo pi;

	memset(&pi, 0, sizeof(pi));
	pi.pid = pid;
	pi.nspid = pid;
	snprintf(pi.comm, sizeof(pi.comm), "%s", comm);
	snprintf(pi.app, sizeof(pi.app), "%s", app);
	snprintf(pi.cgroup, sizeof(pi.cgroup), "%s", cgroup);
	snprintf(pi.container, sizeof(pi.container), "%s", container);
	return pi;
}

/* A filter from rules "+spec" (include) and "-spec" (exclude); NULL on any failure. */
static struct filter *build(const char *const *rules, size_t n)
{
	struct filter *f = filter__new();
	char err[256];

	if (!f)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		if (filter__add(f, rules[i][0] == '+', rules[i] + 1, err, sizeof(err))) {
			fprintf(stderr, "unexpected: %s\n", err);
			filter__free(f);
			return NULL;
		}
	}
	return f;
}

static void test_empty(void)
{
	struct filter *f = filter__new();
	struct procinfo pi = proc(1, "init", "init", "/", "");

	T_CHECK(f != NULL);
	T_CHECK(filter__empty(f));
	T_CHECK(filter__allows(f, &pi));
	T_CHECK(filter__empty(NULL));
	T_CHECK(filter__allows(NULL, &pi));
	filter__free(f);
	filter__free(NULL);
}

static void test_kinds(void)
{
	struct procinfo web = proc(100, "gunicorn", "gunicorn-worker-shop",
				   "/system.slice/docker-" ID ".scope", ID);
	struct procinfo worker = proc(200, "celery", "celery",
				      "/user.slice/user-1000.slice/user@1000.service/app.slice/"
				      "celery.service",
				      "");
	struct procinfo kthread = proc(2, "kworker/0:1", "kworker/0-1", "", "");
	static const struct {
		const char *spec;
		bool web, worker, kthread; /* matches */
	} cases[] = {
		{ "comm:gunicorn", true, false, false },
		{ "comm:*", true, true, true },
		{ "comm:kworker/*", false, false, true },
		{ "comm:[cg]*", true, true, false },
		{ "app:celery", false, true, false },
		{ "app:gunicorn-*", true, false, false },
		{ "app:*-shop", true, false, false },
		{ "app:kworker/0-1", false, false, true },
		/* cgroup: relative globs match after any '/', absolute ones the whole path */
		{ "cgroup:docker-*.scope", true, false, false },
		{ "cgroup:/system.slice/*", true, false, false },
		{ "cgroup:/docker-*.scope", false, false, false },
		{ "cgroup:system.slice", false, false, false },
		{ "cgroup:system.slice/*", true, false, false },
		{ "cgroup:*.service", false, true, false },
		{ "cgroup:app.slice/*", false, true, false },
		{ "cgroup:user@*.service/*", false, true, false },
		{ "cgroup:*", true, true, false }, /* unknown cgroup never matches */
		/* pid: the host PID only */
		{ "pid:100", true, false, false },
		{ "pid:2,200", false, true, true },
		{ "pid:1,3,4", false, false, false },
		/* container: a prefix, case-insensitive */
		{ "container:3f4e", true, false, false },
		{ "container:3F4E8A1B", true, false, false },
		{ "container:" ID, true, false, false },
		{ "container:3f4f", false, false, false },
	};

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		char incl[80], excl[80];
		const char *r1[] = { incl }, *r2[] = { excl };
		struct filter *fi, *fe;

		snprintf(incl, sizeof(incl), "+%s", cases[i].spec);
		snprintf(excl, sizeof(excl), "-%s", cases[i].spec);
		fi = build(r1, 1);
		fe = build(r2, 1);
		T_CHECK(fi != NULL && fe != NULL);
		if (fi && fe) {
			T_CHECK(!filter__empty(fi));
			T_CHECK_EQ_INT(filter__allows(fi, &web), cases[i].web);
			T_CHECK_EQ_INT(filter__allows(fi, &worker), cases[i].worker);
			T_CHECK_EQ_INT(filter__allows(fi, &kthread), cases[i].kthread);
			T_CHECK_EQ_INT(filter__allows(fe, &web), !cases[i].web);
			T_CHECK_EQ_INT(filter__allows(fe, &worker), !cases[i].worker);
			T_CHECK_EQ_INT(filter__allows(fe, &kthread), !cases[i].kthread);
		}
		filter__free(fi);
		filter__free(fe);
	}
}

static void test_combined(void)
{
	struct procinfo web = proc(100, "gunicorn", "gunicorn-worker-shop",
				   "/system.slice/docker-" ID ".scope", ID);
	struct procinfo worker = proc(200, "celery", "celery", "/user.slice/celery.service", "");
	struct procinfo other = proc(300, "python3", "script", "/user.slice/x.scope", "");
	struct filter *f;

	/* Several includes: any of them. */
	{
		static const char *const rules[] = { "+app:celery", "+container:3f4e" };

		f = build(rules, ARRAY_SIZE(rules));
		T_CHECK(f != NULL);
		T_CHECK(filter__allows(f, &web));
		T_CHECK(filter__allows(f, &worker));
		T_CHECK(!filter__allows(f, &other));
		filter__free(f);
	}
	/* An exclude beats an include, in either order. */
	{
		static const char *const rules[] = { "-pid:200", "+comm:*", "-cgroup:docker-*" };

		f = build(rules, ARRAY_SIZE(rules));
		T_CHECK(f != NULL);
		T_CHECK(!filter__allows(f, &web));
		T_CHECK(!filter__allows(f, &worker));
		T_CHECK(filter__allows(f, &other));
		filter__free(f);
	}
	/* Only excludes: everything else passes. */
	{
		static const char *const rules[] = { "-comm:celery", "-app:gunicorn*" };

		f = build(rules, ARRAY_SIZE(rules));
		T_CHECK(f != NULL);
		T_CHECK(!filter__allows(f, &web));
		T_CHECK(!filter__allows(f, &worker));
		T_CHECK(filter__allows(f, &other));
		filter__free(f);
	}
	/* An include that matches nothing shuts everything out. */
	{
		static const char *const rules[] = { "+app:nothing-like-this", "-pid:1" };

		f = build(rules, ARRAY_SIZE(rules));
		T_CHECK(f != NULL);
		T_CHECK(!filter__allows(f, &web));
		T_CHECK(!filter__allows(f, &worker));
		T_CHECK(!filter__allows(f, &other));
		filter__free(f);
	}
	/* Repeated pid rules accumulate as separate rules. */
	{
		static const char *const rules[] = { "+pid:100", "+pid:300,300" };

		f = build(rules, ARRAY_SIZE(rules));
		T_CHECK(f != NULL);
		T_CHECK(filter__allows(f, &web));
		T_CHECK(!filter__allows(f, &worker));
		T_CHECK(filter__allows(f, &other));
		filter__free(f);
	}
}

static void test_invalid(void)
{
	static const struct {
		const char *spec, *why; /* why: a substring of the message */
	} cases[] = {
		{ "gunicorn", "unknown filter kind" },
		{ "", "unknown filter kind" },
		{ "bogus:x", "unknown filter kind" },
		{ "Comm:x", "unknown filter kind" },
		{ "pid", "unknown filter kind" },
		{ "comm:", "empty pattern" },
		{ "app:", "empty pattern" },
		{ "cgroup:", "empty pattern" },
		{ "pid:", "process ids" },
		{ "pid:abc", "process ids" },
		{ "pid:0", "process ids" },
		{ "pid:-1", "process ids" },
		{ "pid:1,,2", "process ids" },
		{ "pid:1,", "process ids" },
		{ "pid:99999999999", "process ids" },
		{ "container:", "4 to 64 hex" },
		{ "container:abc", "4 to 64 hex" },
		{ "container:xyz123", "4 to 64 hex" },
		{ "container:3f4e-", "4 to 64 hex" },
		{ "container:" ID "0", "4 to 64 hex" },
	};
	struct filter *f = filter__new();
	struct procinfo pi = proc(1, "x", "x", "/", "");
	char err[256], tiny[12], *glob;

	T_CHECK(f != NULL);
	if (!f)
		return;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		strcpy(err, "untouched");
		T_CHECK_EQ_INT(filter__add(f, i % 2 == 0, cases[i].spec, err, sizeof(err)),
			       -EINVAL);
		T_CHECK(strstr(err, cases[i].why) != NULL);
		T_CHECK(strstr(err, i % 2 == 0 ? "--include" : "--exclude") != NULL);
		if (strlen(cases[i].spec) <= 64)
			T_CHECK(strstr(err, cases[i].spec) != NULL);
		else /* long specs are quoted cut, so that the reason still shows */
			T_CHECK(strstr(err, "...'") != NULL);
		if (!strstr(err, cases[i].why))
			fprintf(stderr, "  spec '%s': %s\n", cases[i].spec, err);
	}
	/* Nothing was added by the failures. */
	T_CHECK(filter__empty(f));
	T_CHECK(filter__allows(f, &pi));

	/* Message format: option, quoted spec, reason; no final period. */
	T_CHECK_EQ_INT(filter__add(f, true, "container:abc", err, sizeof(err)), -EINVAL);
	T_CHECK_EQ_STR(err, "--include 'container:abc': expected a container id prefix of 4 to 64 "
			    "hex digits");
	/* NULL spec, a too long glob, a short or absent message buffer. */
	T_CHECK_EQ_INT(filter__add(f, false, NULL, err, sizeof(err)), -EINVAL);
	T_CHECK(strstr(err, "--exclude") != NULL);
	glob = malloc(FILTER_GLOB_MAX + 16);
	T_CHECK(glob != NULL);
	if (glob) {
		strcpy(glob, "comm:");
		memset(glob + 5, '*', FILTER_GLOB_MAX + 1);
		glob[5 + FILTER_GLOB_MAX + 1] = '\0';
		T_CHECK_EQ_INT(filter__add(f, true, glob, err, sizeof(err)), -EINVAL);
		T_CHECK(strstr(err, "pattern too long") != NULL);
		glob[5 + FILTER_GLOB_MAX] = '\0'; /* exactly the maximum is fine */
		T_CHECK_EQ_INT(filter__add(f, true, glob, err, sizeof(err)), 0);
		free(glob);
	}
	T_CHECK_EQ_INT(filter__add(f, true, "nope", tiny, sizeof(tiny)), -EINVAL);
	T_CHECK_EQ_INT(strlen(tiny), sizeof(tiny) - 1);
	T_CHECK_EQ_INT(filter__add(f, true, "nope", NULL, 0), -EINVAL);
	T_CHECK(!filter__empty(f)); /* the maximal glob went in */
	filter__free(f);
}

int main(void)
{
	test_empty();
	test_kinds();
	test_combined();
	test_invalid();
	return T_DONE();
}
