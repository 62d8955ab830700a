/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * fuzz_procinfo.c - libFuzzer target for the /proc/PID/{status,cgroup,cmdline} parsers, the
 * app-name sanitizer, --app-name rules and --include/--exclude filters.
 *
 * The same bytes go to every parser. Besides crashes and sanitizer reports it checks the
 * contracts: only the documented error codes, outputs NUL-terminated inside their buffers,
 * app names non-empty and only [A-Za-z0-9_./-] without a leading or trailing '-'/'.', a
 * container id either "" or 64 lower-case hex digits, a cut name a prefix of the uncut one,
 * sanitizing idempotent.
 *
 * Globs are trusted input (they come from the command line) and fnmatch(3) backtracks, so
 * patterns made from the fuzz input are short and hold few '*'.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "filter.h"
#include "procinfo.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "fuzz_procinfo: %s:%d: %s\n", __FILE__, __LINE__, #cond);  \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

#define SPEC_MAX  40 /* bytes of fuzz input made into a glob */
#define STARS_MAX 3

/* s is NUL-terminated within len bytes. */
static bool terminated(const char *s, size_t len)
{
	return memchr(s, '\0', len) != NULL;
}

static bool app_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n >= PROCINFO_APP_MAX)
		return false;
	if (s[0] == '-' || s[0] == '.' || s[n - 1] == '-' || s[n - 1] == '.')
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '.' || c == '/' || c == '-'))
			return false;
	}
	return true;
}

static bool container_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0)
		return true;
	if (n != PROCINFO_CONTAINER_LEN)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return true;
}

static void fuzz_nspid(const char *buf, size_t size)
{
	pid_t v = -77;
	int err = procinfo_parse_nspid(buf, size, &v);

	CHECK(err == 0 || err == -ENOENT || err == -EINVAL);
	CHECK(err ? v == -77 : v >= 1);
}

static void fuzz_cgroup(const char *buf, size_t size, struct procinfo *pi)
{
	char path[256], container[PROCINFO_CONTAINER_LEN + 1];
	char small[4], container2[PROCINFO_CONTAINER_LEN + 1];
	int err, err2;

	memset(path, 'Z', sizeof(path));
	memset(container, 'Z', sizeof(container));
	err = procinfo_parse_cgroup(buf, size, path, sizeof(path), container, sizeof(container));
	CHECK(err == 0 || err == -ENOENT || err == -ENAMETOOLONG);
	CHECK(terminated(path, sizeof(path)) && terminated(container, sizeof(container)));
	CHECK(container_ok(container));
	if (err == -ENOENT)
		CHECK(!path[0] && !container[0]);
	if (err == 0)
		CHECK(path[0] == '/');
	for (const char *p = path; *p; p++)
		CHECK((unsigned char)*p >= 0x20 && *p != 0x7f);

	/* The container does not depend on the path buffer. */
	err2 = procinfo_parse_cgroup(buf, size, small, sizeof(small), container2,
				     sizeof(container2));
	CHECK(err2 == 0 || err2 == -ENOENT || err2 == -ENAMETOOLONG);
	CHECK(strcmp(container, container2) == 0);
	if (err2 == 0)
		CHECK(strcmp(small, path) == 0);

	memcpy(pi->cgroup, path, sizeof(pi->cgroup));
	memcpy(pi->container, container, sizeof(pi->container));
}

static void fuzz_app(const char *buf, size_t size, const char *comm, struct procinfo *pi)
{
	static const size_t lens[] = { 1, 2, 5, 17, PROCINFO_APP_MAX, 512 };
	char full[512], out[512];
	int err_full, err;

	err_full = procinfo_app_from_cmdline(buf, size, comm, full, sizeof(full));
	CHECK(err_full == 0 || err_full == -ENOENT);
	CHECK(err_full ? !full[0] : app_ok(full));
	if (!err_full)
		memcpy(pi->app, full, strlen(full) + 1);

	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		memset(out, 'Z', sizeof(out));
		err = procinfo_app_from_cmdline(buf, size, comm, out, lens[i]);
		CHECK(err == 0 || err == -ENOENT);
		CHECK(terminated(out, lens[i]));
		CHECK(strlen(out) < lens[i]);
		CHECK(lens[i] == sizeof(out) || out[lens[i]] == 'Z'); /* nothing written past */
		if (err == 0) {
			CHECK(app_ok(out));
			CHECK(strncmp(out, full, strlen(out)) == 0); /* a cut of the same name */
		}
	}
	CHECK(procinfo_app_from_cmdline(buf, size, comm, out, 0) == -EINVAL);
}

static void fuzz_sanitize(const char *str)
{
	char once[PROCINFO_APP_MAX], twice[PROCINFO_APP_MAX], tiny[3];

	procinfo_sanitize_app(str, once, sizeof(once));
	CHECK(!once[0] || app_ok(once));
	procinfo_sanitize_app(once, twice, sizeof(twice));
	CHECK(strcmp(once, twice) == 0);
	procinfo_sanitize_app(str, tiny, sizeof(tiny));
	CHECK(strlen(tiny) < sizeof(tiny) && strncmp(tiny, once, strlen(tiny)) == 0);
}

/* The first SPEC_MAX bytes of str, unless they hold more than STARS_MAX '*'. */
static bool short_spec(const char *str, char *spec)
{
	size_t stars = 0;

	snprintf(spec, SPEC_MAX + 1, "%s", str);
	for (const char *p = spec; *p; p++)
		stars += *p == '*';
	return stars <= STARS_MAX;
}

static void fuzz_rules(const char *buf, size_t size, const char *str)
{
	static const char *const fixed[] = { "*gunicorn*=web", "python3 -m *=py-module",
					     "*[[]*]=bracketed", "* * * *=four-words" };
	struct appname_rules *r = appname_rules__new();
	char spec[SPEC_MAX + 1];
	const char *name;
	int err;

	if (!r)
		return;
	for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
		CHECK(appname_rules__add(r, fixed[i]) == 0);
	name = appname_rules__match(r, buf, size);
	CHECK(!name || app_ok(name));

	if (short_spec(str, spec)) {
		err = appname_rules__add(r, spec);
		CHECK(err == 0 || err == -EINVAL);
		name = appname_rules__match(r, buf, size);
		CHECK(!name || app_ok(name));
		if (err == 0 && !strchr(spec, '='))
			CHECK(name != NULL); /* a catch-all */
	}
	appname_rules__free(r);
}

static void fuzz_filter(const char *str, const struct procinfo *pi)
{
	struct filter *f = filter__new();
	char spec[SPEC_MAX + 1], err[128];
	int e1, e2;

	if (!f)
		return;
	if (short_spec(str, spec)) {
		e1 = filter__add(f, true, spec, err, sizeof(err));
		CHECK(e1 == 0 || e1 == -EINVAL);
		CHECK(terminated(err, sizeof(err)) || e1 == 0);
		e2 = filter__add(f, false, spec, err, sizeof(err));
		CHECK(e2 == e1);
		CHECK(filter__empty(f) == (e1 != 0));
		/* Included and excluded by the same rule: never allowed. */
		if (e1 == 0)
			CHECK(!filter__allows(f, pi));
		else
			CHECK(filter__allows(f, pi));
	}
	filter__free(f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *buf = (const char *)data;
	struct procinfo pi;
	char comm[17], *str;

	memset(&pi, 0, sizeof(pi));
	pi.pid = 1234;
	pi.nspid = 1234;
	/* A comm from the first bytes, as hostile as the rest. */
	snprintf(comm, sizeof(comm), "%.*s", (int)(size < 16 ? size : 16), buf);
	memcpy(pi.comm, comm, sizeof(comm));
	snprintf(pi.app, sizeof(pi.app), "unknown");

	str = malloc(size + 1);
	if (!str)
		return 0;
	memcpy(str, data, size);
	str[size] = '\0';

	fuzz_nspid(buf, size);
	fuzz_cgroup(buf, size, &pi);
	fuzz_app(buf, size, comm, &pi);
	fuzz_app(buf, size, NULL, &pi);
	fuzz_sanitize(str);
	fuzz_rules(buf, size, str);
	fuzz_filter(str, &pi);
	free(str);
	return 0;
}
