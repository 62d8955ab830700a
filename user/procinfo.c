/* SPDX-License-Identifier: BSD-2-Clause */
/* procinfo.c - application name, container, cgroup and PID namespace of a process. */
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "procinfo.h"

#define PROCINFO_FILE_MAX   (64u << 10) /* bytes read of status and cgroup */
#define PROCINFO_COMM_MAX   16		/* bytes read of comm (15 + newline on Linux) */
#define PROCINFO_NSLINK_MAX 64		/* "pid:[4026531836]" */

_Static_assert(PROCINFO_CMDLINE_MAX <= PROCINFO_FILE_MAX, "one scratch buffer serves all reads");

/* A borrowed run of bytes: not NUL-terminated. */
struct span {
	const char *p;
	size_t len;
};

static bool span_eq(struct span s, const char *lit)
{
	size_t n = strlen(lit);

	return s.len == n && memcmp(s.p, lit, n) == 0;
}

static bool span_has_suffix(struct span s, const char *lit)
{
	size_t n = strlen(lit);

	return s.len >= n && memcmp(s.p + s.len - n, lit, n) == 0;
}

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static bool is_hex(char c)
{
	return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static bool is_app_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || is_digit(c) || c == '_' ||
	       c == '.' || c == '/' || c == '-';
}

/* ---- application names ---- */

/* procinfo_sanitize_app on len bytes at in (stops early at a NUL); returns the length. */
static size_t sanitize_span(const char *in, size_t len, char *out, size_t outlen)
{
	size_t cap, n = 0;
	bool gap = false; /* a run of unusable bytes lies between out[n - 1] and in[i] */

	if (!outlen)
		return 0;
	cap = (outlen < PROCINFO_APP_MAX ? outlen : PROCINFO_APP_MAX) - 1;
	for (size_t i = 0; i < len && in[i] && n < cap; i++) {
		char c = in[i];

		if (!is_app_char(c)) {
			gap = true;
			continue;
		}
		if (n == 0 && (c == '-' || c == '.'))
			continue; /* leading trim */
		/* The run becomes one '-', unless a '-' already stands on either side of it. */
		if (gap && n > 0 && c != '-' && out[n - 1] != '-') {
			out[n++] = '-';
			if (n == cap)
				break;
		}
		gap = false;
		out[n++] = c;
	}
	while (n > 0 && (out[n - 1] == '-' || out[n - 1] == '.'))
		n--;
	out[n] = '\0';
	return n;
}

void procinfo_sanitize_app(const char *in, char *out, size_t outlen)
{
	if (!outlen)
		return;
	if (!in) {
		out[0] = '\0';
		return;
	}
	sanitize_span(in, SIZE_MAX, out, outlen);
}

/* Arguments of a cmdline buffer, in order. */
struct argv_iter {
	const char *p, *end;
};

/* The bytes that hold arguments: trailing NULs (padding, the final terminator) dropped. */
static void argv_init(struct argv_iter *it, const char *cmdline, size_t len)
{
	if (!cmdline) {
		cmdline = "";
		len = 0;
	}
	while (len > 0 && cmdline[len - 1] == '\0')
		len--;
	it->p = cmdline;
	it->end = cmdline + len;
}

static bool argv_next(struct argv_iter *it, struct span *arg)
{
	const char *nul;

	if (it->p >= it->end)
		return false;
	nul = memchr(it->p, '\0', (size_t)(it->end - it->p));
	arg->p = it->p;
	arg->len = (size_t)((nul ? nul : it->end) - it->p);
	it->p = nul ? nul + 1 : it->end;
	return true;
}

/* s without trailing '/'. */
static struct span strip_slashes(struct span s)
{
	while (s.len > 0 && s.p[s.len - 1] == '/')
		s.len--;
	return s;
}

/* The last path component of s (trailing slashes ignored); may be empty. */
static struct span basename_of(struct span s)
{
	const char *slash;

	s = strip_slashes(s);
	slash = memrchr(s.p, '/', s.len);
	if (slash) {
		s.len -= (size_t)(slash + 1 - s.p);
		s.p = slash + 1;
	}
	return s;
}

/* Everything before the last path component of s; empty when there is no '/'. */
static struct span dirname_of(struct span s)
{
	const char *slash;

	s = strip_slashes(s);
	slash = memrchr(s.p, '/', s.len);
	s.len = slash ? (size_t)(slash - s.p) : 0;
	return s;
}

/* "python", "python3", "python3.11", "pythonw", "python3.12d", "python3-dbg"... */
static bool is_python_name(struct span base)
{
	static const char *const suffixes[] = { "", "d", "m", "dm", "t", "td", "u", "w", "-dbg" };
	struct span rest;

	if (base.len < 6 || memcmp(base.p, "python", 6) != 0)
		return false;
	rest.p = base.p + 6;
	rest.len = base.len - 6;
	if (rest.len > 0 && is_digit(rest.p[0])) {
		while (rest.len > 0 && (is_digit(rest.p[0]) || rest.p[0] == '.')) {
			rest.p++;
			rest.len--;
		}
	}
	for (size_t i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++)
		if (span_eq(rest, suffixes[i]))
			return true;
	return false;
}

/* The name a script path stands for (see procinfo_app_from_cmdline). */
static struct span script_name(struct span path)
{
	struct span base = basename_of(path), parent;

	if (span_has_suffix(base, ".py") && base.len > 3)
		base.len -= 3;
	else if (span_has_suffix(base, ".pyw") && base.len > 4)
		base.len -= 4;
	if (!span_eq(base, "__main__"))
		return base;
	parent = basename_of(dirname_of(path));
	return parent.len ? parent : base;
}

static const struct span span_python = { "python", 6 };
static const struct span span_python_c = { "python-c", 8 };

/* A script argument: its name, or "python" for "-" (the program comes from stdin). */
static struct span script_or_stdin(struct span a)
{
	return span_eq(a, "-") ? span_python : script_name(a);
}

/* Rule 2: what a CPython command line runs; it->p is just past argv[0]. */
static struct span python_target(struct argv_iter *it)
{
	struct span a, val;

	while (argv_next(it, &a)) {
		if (a.len < 2 || a.p[0] != '-')
			return script_or_stdin(a); /* a script, "" or "-" */
		if (span_eq(a, "--"))
			return argv_next(it, &a) ? script_or_stdin(a) : span_python;
		if (a.p[1] == '-') {
			/* Long options; only this one takes a separate argument. */
			if (span_eq(a, "--check-hash-based-pycs") && !argv_next(it, &val))
				return span_python;
			continue;
		}
		for (size_t j = 1; j < a.len; j++) {
			char c = a.p[j];

			if (c != 'm' && c != 'c' && c != 'X' && c != 'W')
				continue; /* a flag: -u, -B, -O, -E, -I, -s, -S, -q, -v, -d, -R, -i... */
			if (j + 1 < a.len) {
				val.p = a.p + j + 1;
				val.len = a.len - j - 1;
			} else if (!argv_next(it, &val)) {
				return span_python; /* option without its argument */
			}
			if (c == 'm')
				return val;
			if (c == 'c')
				return span_python_c;
			break; /* -X / -W: the rest of the cluster was their argument */
		}
	}
	return span_python; /* interactive */
}

int procinfo_app_from_cmdline(const char *cmdline, size_t len, const char *comm, char *out,
			      size_t outlen)
{
	struct argv_iter it, count;
	struct span arg0, a, name = { "", 0 };
	size_t nargs = 0;

	if (!outlen)
		return -EINVAL;
	argv_init(&it, cmdline, len);
	count = it;
	while (nargs < 2 && argv_next(&count, &a))
		nargs++;

	if (argv_next(&it, &arg0)) {
		if (nargs == 1 && (memchr(arg0.p, ' ', arg0.len) || memchr(arg0.p, ':', arg0.len)))
			name = arg0;
		else if (is_python_name(basename_of(arg0)))
			name = python_target(&it);
		else
			name = basename_of(arg0);
	}
	if (name.len && sanitize_span(name.p, name.len, out, outlen))
		return 0;
	if (comm)
		procinfo_sanitize_app(comm, out, outlen);
	else
		out[0] = '\0';
	return out[0] ? 0 : -ENOENT;
}

/* ---- /proc/PID/status ---- */

/* The numbers after "NSpid:" up to end (see procinfo_parse_nspid). */
static int nspid_line(const char *p, const char *end, pid_t *nspid)
{
	long long last = -1;

	while (p < end) {
		long long v = 0;

		if (*p == ' ' || *p == '\t') {
			p++;
			continue;
		}
		if (!is_digit(*p))
			return -EINVAL;
		while (p < end && is_digit(*p)) {
			v = v * 10 + (*p++ - '0');
			if (v > INT_MAX)
				return -EINVAL;
		}
		if (v == 0)
			return -EINVAL;
		last = v;
	}
	if (last < 0)
		return -EINVAL;
	*nspid = (pid_t)last;
	return 0;
}

int procinfo_parse_nspid(const char *status, size_t len, pid_t *nspid)
{
	static const char key[] = "NSpid:";
	const char *p, *end;

	if (!status)
		return -ENOENT;
	p = status;
	end = status + len;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *line_end = nl ? nl : end;

		if ((size_t)(line_end - p) >= sizeof(key) - 1 &&
		    memcmp(p, key, sizeof(key) - 1) == 0)
			return nspid_line(p + sizeof(key) - 1, line_end, nspid);
		p = nl ? nl + 1 : end;
	}
	return -ENOENT;
}

/* ---- /proc/PID/cgroup ---- */

/* Split a "hier:controllers:path" line; false when it is not one. */
static bool cgroup_line(struct span line, struct span *ctrl, struct span *path, bool *v2)
{
	const char *p = line.p, *end = line.p + line.len, *c1, *c2;

	for (const char *q = p; q < end; q++)
		if ((unsigned char)*q < 0x20 || *q == 0x7f)
			return false; /* NUL, control character */
	c1 = memchr(p, ':', line.len);
	if (!c1 || c1 == p)
		return false;
	for (const char *q = p; q < c1; q++)
		if (!is_digit(*q))
			return false;
	c2 = memchr(c1 + 1, ':', (size_t)(end - c1 - 1));
	if (!c2 || c2 + 1 >= end || c2[1] != '/')
		return false;
	ctrl->p = c1 + 1;
	ctrl->len = (size_t)(c2 - c1 - 1);
	path->p = c2 + 1;
	path->len = (size_t)(end - c2 - 1);
	*v2 = c1 - p == 1 && *p == '0' && ctrl->len == 0;
	return true;
}

/* Next line of [*p, end) into *line, newline dropped; false at the end. */
static bool next_line(const char **p, const char *end, struct span *line)
{
	const char *nl;

	if (*p >= end)
		return false;
	nl = memchr(*p, '\n', (size_t)(end - *p));
	line->p = *p;
	line->len = (size_t)((nl ? nl : end) - *p);
	*p = nl ? nl + 1 : end;
	return true;
}

/* The last container id in path (see procinfo_parse_cgroup) into out; false when none. */
static bool find_container(struct span path, char *out)
{
	const char *p = path.p, *end = path.p + path.len, *found = NULL;

	while (p < end) {
		const char *start = p, *comp;
		bool lower = true;

		if (!is_hex(*p)) {
			p++;
			continue;
		}
		while (p < end && is_hex(*p)) {
			if (*p >= 'A' && *p <= 'F')
				lower = false;
			p++;
		}
		if (p - start != PROCINFO_CONTAINER_LEN || !lower)
			continue;
		comp = memrchr(path.p, '/', (size_t)(start - path.p));
		comp = comp ? comp + 1 : path.p;
		if (start - comp >= 7 && memcmp(start - 7, "conmon-", 7) == 0)
			continue; /* cri-o / podman monitor, not the container */
		found = start;
	}
	if (!found)
		return false;
	memcpy(out, found, PROCINFO_CONTAINER_LEN);
	out[PROCINFO_CONTAINER_LEN] = '\0';
	return true;
}

int procinfo_parse_cgroup(const char *buf, size_t len, char *path, size_t pathlen, char *container,
			  size_t containerlen)
{
	const char *p, *end;
	struct span line, ctrl, cpath, chosen = { NULL, 0 };
	bool v2, have = false, have_v2 = false;

	if (!path || !container || !pathlen || containerlen < PROCINFO_CONTAINER_LEN + 1)
		return -EINVAL;
	path[0] = '\0';
	container[0] = '\0';
	if (!buf)
		return -ENOENT;
	end = buf + len;

	for (p = buf; !have_v2 && next_line(&p, end, &line);) {
		if (!cgroup_line(line, &ctrl, &cpath, &v2))
			continue;
		if (!have || v2)
			chosen = cpath;
		have = true;
		have_v2 = v2;
	}
	if (!have)
		return -ENOENT;

	if (!find_container(chosen, container)) {
		for (p = buf; next_line(&p, end, &line);) {
			if (cgroup_line(line, &ctrl, &cpath, &v2) && cpath.p != chosen.p &&
			    find_container(cpath, container))
				break;
		}
	}
	if (chosen.len >= pathlen)
		return -ENAMETOOLONG;
	memcpy(path, chosen.p, chosen.len);
	path[chosen.len] = '\0';
	return 0;
}

/* ---- --app-name rules ---- */

struct appname_rule {
	char *glob; /* owned; NULL for a catch-all */
	char name[PROCINFO_APP_MAX];
};

struct appname_rules {
	struct appname_rule *v;
	size_t n, cap;
};

struct appname_rules *appname_rules__new(void)
{
	return calloc(1, sizeof(struct appname_rules));
}

void appname_rules__free(struct appname_rules *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->n; i++)
		free(r->v[i].glob);
	free(r->v);
	free(r);
}

int appname_rules__add(struct appname_rules *r, const char *spec)
{
	struct appname_rule rule = { NULL, "" };
	const char *eq, *name;
	size_t glen = 0;

	if (!r || !spec)
		return -EINVAL;
	eq = strrchr(spec, '=');
	name = eq ? eq + 1 : spec;
	if (eq) {
		glen = (size_t)(eq - spec);
		if (glen == 0 || glen > PROCINFO_MATCH_MAX)
			return -EINVAL;
	}
	procinfo_sanitize_app(name, rule.name, sizeof(rule.name));
	if (!rule.name[0])
		return -EINVAL;
	if (r->n == r->cap) {
		size_t cap = r->cap ? r->cap * 2 : 8;
		struct appname_rule *v = realloc(r->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		r->v = v;
		r->cap = cap;
	}
	if (eq) {
		rule.glob = strndup(spec, glen);
		if (!rule.glob)
			return -ENOMEM;
	}
	r->v[r->n++] = rule;
	return 0;
}

/* argv joined by single spaces, cut to PROCINFO_MATCH_MAX bytes, into out (that + 1 bytes). */
static void cmdline_join(const char *cmdline, size_t len, char *out)
{
	struct argv_iter it;
	struct span a;
	size_t n = 0;

	argv_init(&it, cmdline, len);
	for (bool first = true; argv_next(&it, &a); first = false) {
		size_t take;

		if (!first && n < PROCINFO_MATCH_MAX)
			out[n++] = ' ';
		take = a.len < PROCINFO_MATCH_MAX - n ? a.len : PROCINFO_MATCH_MAX - n;
		memcpy(out + n, a.p, take);
		n += take;
		if (n == PROCINFO_MATCH_MAX)
			break;
	}
	out[n] = '\0';
}

const char *appname_rules__match(const struct appname_rules *r, const char *cmdline, size_t len)
{
	char joined[PROCINFO_MATCH_MAX + 1];

	if (!r || !r->n)
		return NULL;
	cmdline_join(cmdline, len, joined);
	for (size_t i = 0; i < r->n; i++)
		if (!r->v[i].glob || fnmatch(r->v[i].glob, joined, 0) == 0)
			return r->v[i].name;
	return NULL;
}

/* ---- reading /proc ---- */

/* Up to cap bytes of the file at path into buf, the count in *len. 0 or -errno. */
static int read_capped(const char *path, char *buf, size_t cap, size_t *len)
{
	int fd, err = 0;

	*len = 0;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	while (*len < cap) {
		ssize_t n = read(fd, buf + *len, cap - *len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			err = -errno;
			break;
		}
		if (n == 0)
			break;
		*len += (size_t)n;
	}
	close(fd);
	return err;
}

/* root/pid/leaf (pid < 0: root/self/leaf) into buf. 0 or -ENAMETOOLONG. */
static int proc_path(char *buf, size_t size, const char *root, pid_t pid, const char *leaf)
{
	int n;

	if (pid < 0)
		n = snprintf(buf, size, "%s/self/%s", root, leaf);
	else
		n = snprintf(buf, size, "%s/%d/%s", root, (int)pid, leaf);
	return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

/* A missing /proc/PID file means the process is gone. */
static int gone(int err)
{
	return err == -ENOENT ? -ESRCH : err;
}

/* The target of the ns/pid link of pid (-1: self) into buf; its length, 0 when unreadable. */
static size_t read_nslink(const char *root, pid_t pid, char *buf, size_t size)
{
	char path[PATH_MAX];
	ssize_t n;

	if (proc_path(path, sizeof(path), root, pid, "ns/pid"))
		return 0;
	n = readlink(path, buf, size);
	return n > 0 ? (size_t)n : 0;
}

int procinfo_read_at(const char *proc_root, pid_t pid, const struct appname_rules *rules,
		     struct procinfo *out)
{
	char path[PATH_MAX], *buf = NULL, ns[PROCINFO_NSLINK_MAX], self_ns[PROCINFO_NSLINK_MAX];
	size_t len = 0, nslen, self_nslen;
	const char *rule_name;
	int err;

	memset(out, 0, sizeof(*out));
	if (!proc_root || pid <= 0)
		return -EINVAL;
	buf = malloc(PROCINFO_FILE_MAX);
	if (!buf)
		return -ENOMEM;

	/* comm: at most 16 bytes, up to the newline. */
	err = proc_path(path, sizeof(path), proc_root, pid, "comm");
	if (!err)
		err = gone(read_capped(path, buf, PROCINFO_COMM_MAX, &len));
	if (err)
		goto cleanup;
	for (size_t i = 0; i < len && buf[i] != '\n' && buf[i] != '\0'; i++)
		out->comm[i] = buf[i];

	err = proc_path(path, sizeof(path), proc_root, pid, "cmdline");
	if (!err)
		err = gone(read_capped(path, buf, PROCINFO_CMDLINE_MAX, &len));
	if (err)
		goto cleanup;
	rule_name = appname_rules__match(rules, buf, len);
	if (rule_name)
		snprintf(out->app, sizeof(out->app), "%s", rule_name);
	else if (procinfo_app_from_cmdline(buf, len, out->comm, out->app, sizeof(out->app)))
		snprintf(out->app, sizeof(out->app), "unknown");

	out->nspid = pid;
	if (!proc_path(path, sizeof(path), proc_root, pid, "status") &&
	    !read_capped(path, buf, PROCINFO_FILE_MAX, &len) &&
	    procinfo_parse_nspid(buf, len, &out->nspid))
		out->nspid = pid;

	if (!proc_path(path, sizeof(path), proc_root, pid, "cgroup") &&
	    !read_capped(path, buf, PROCINFO_FILE_MAX, &len)) {
		/* -ENAMETOOLONG still fills the container; -ENOENT leaves both "". */
		if (procinfo_parse_cgroup(buf, len, out->cgroup, sizeof(out->cgroup),
					  out->container, sizeof(out->container)))
			out->cgroup[0] = '\0';
	}

	nslen = read_nslink(proc_root, pid, ns, sizeof(ns));
	self_nslen = read_nslink(proc_root, -1, self_ns, sizeof(self_ns));
	out->other_pidns =
		nslen && self_nslen && (nslen != self_nslen || memcmp(ns, self_ns, nslen) != 0);
	out->pid = pid;
	err = 0;
cleanup:
	free(buf);
	if (err)
		memset(out, 0, sizeof(*out));
	return err;
}

int procinfo_read(pid_t pid, const struct appname_rules *rules, struct procinfo *out)
{
	return procinfo_read_at("/proc", pid, rules, out);
}
