/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * procinfo.h - who a process is, for labelling its profiles: application name, container id,
 * cgroup path and PID namespace, read from /proc/PID/{cmdline,comm,status,cgroup,ns/pid}.
 *
 * Everything under /proc/PID is chosen by the (untrusted) target: any bytes, any length. Every
 * read is capped and every parser takes a (buffer, length) pair that needs no NUL terminator and
 * may hold garbage or embedded NULs. The parsers are pure functions, reentrant and thread-safe;
 * a struct appname_rules is read-only after it is built and may then be shared between threads.
 */
#ifndef PYSAMP_PROCINFO_H
#define PYSAMP_PROCINFO_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#define PROCINFO_APP_MAX       128   /* application name, NUL included */
#define PROCINFO_CONTAINER_LEN 64    /* hex digits in a container id */
#define PROCINFO_MATCH_MAX     4096  /* bytes of joined command line that rules match against */
#define PROCINFO_CMDLINE_MAX   16384 /* bytes of /proc/PID/cmdline read; the rest is ignored */

struct procinfo {
	pid_t pid;	  /* host PID */
	pid_t nspid;	  /* PID in its own (innermost) PID namespace; == pid in the same ns */
	bool other_pidns; /* its PID namespace differs from the agent's */
	char comm[17];	  /* /proc/PID/comm, newline stripped */
	/* Application name, sanitized (procinfo_sanitize_app), never empty. */
	char app[PROCINFO_APP_MAX];
	/* Container id (64 lower-case hex digits) or "". */
	char container[PROCINFO_CONTAINER_LEN + 1];
	/* The cgroup v2 "0::" line's path, else the first line's; "" unknown or too long. */
	char cgroup[256];
};

/*
 * The last number on the "NSpid:" line of /proc/PID/status (len bytes at status): the PID in
 * the innermost namespace. Numbers are separated by tabs or spaces and must lie in
 * [1, INT_MAX]. Returns 0 and sets *nspid; -ENOENT when there is no NSpid line (kernels before
 * 4.1); -EINVAL when the line holds no number or anything but digits, tabs and spaces.
 * *nspid is written only on success.
 */
int procinfo_parse_nspid(const char *status, size_t len, pid_t *nspid)
	__attribute__((warn_unused_result));

/*
 * Parse /proc/PID/cgroup (len bytes at buf), lines "hier:controllers:path" where hier is
 * decimal; other lines, and lines holding a NUL or a control character, are skipped.
 *
 * path (pathlen bytes, >= 1) gets the path of the cgroup v2 "0::" line if there is one, else of
 * the first line. container (containerlen bytes, >= PROCINFO_CONTAINER_LEN + 1) gets a container
 * id: a run of exactly 64 lower-case hex digits, delimited by non-hex bytes (or the ends of the
 * path), that is not preceded in its path component by "conmon-" (the monitor processes of
 * cri-o and podman: "crio-conmon-<id>.scope", "libpod-conmon-<id>.scope"). This covers
 * "/docker/<id>", "docker-<id>.scope", "cri-containerd-<id>.scope", "/kubepods/.../<id>",
 * "crio-<id>.scope" and "libpod-<id>.scope". The chosen path is searched first, then the other
 * lines in order; within a path the last (innermost) id wins. Both outputs are always
 * NUL-terminated and "" when not found.
 *
 * Returns 0; -ENOENT when buf holds no well-formed line; -ENAMETOOLONG when the chosen path does
 * not fit pathlen (path is then "", container is still filled); -EINVAL when an output is too
 * small.
 */
int procinfo_parse_cgroup(const char *buf, size_t len, char *path, size_t pathlen, char *container,
			  size_t containerlen) __attribute__((warn_unused_result));

/*
 * Derive an application name from /proc/PID/cmdline (len bytes at cmdline: NUL-separated argv,
 * maybe without the final NUL, when the last argument runs to the end of the buffer; trailing
 * empty arguments, such as the NUL padding setproctitle leaves behind, are ignored).
 * Rules, first that applies:
 *   1. exactly one argument that holds a space or ':' is a process title ("gunicorn: worker
 *      [app]", "celery worker"): the title;
 *   2. argv[0]'s basename is a CPython interpreter: "python" then optional version digits and
 *      dots, then optionally one of "d", "m", "dm", "t", "td", "u", "w", "-dbg" ("python3.11",
 *      "pythonw", "python3.12d", "python3-dbg"; not "python3-config"). Interpreter options are
 *      skipped (flag clusters such as -uB, -X/-W with a separate or attached argument, long
 *      options, "--" ends them), then:
 *        -m MODULE (or -mMODULE)  -> MODULE
 *        -c CODE                  -> "python-c"
 *        SCRIPT                   -> basename without ".py"/".pyw" (for "__main__", the name of
 *                                    the parent directory)
 *        nothing, or "-" (stdin)  -> "python"
 *   3. otherwise argv[0]'s basename ("/usr/local/bin/gunicorn" -> "gunicorn");
 *   4. when that leaves nothing usable (empty cmdline of a kernel thread or zombie, or a name
 *      that sanitizes to ""): comm (may be NULL).
 * The result is passed through procinfo_sanitize_app.
 *
 * Returns 0 with a non-empty name in out; -ENOENT when neither cmdline nor comm give a usable
 * name (out is ""); -EINVAL when outlen is 0 (out untouched).
 */
int procinfo_app_from_cmdline(const char *cmdline, size_t len, const char *comm, char *out,
			      size_t outlen) __attribute__((warn_unused_result));

/*
 * Make in (a C string) a Pyroscope application name, [A-Za-z0-9_./-]+: every run of other bytes
 * becomes one '-' (merged with a '-' of the input next to it), leading and trailing '-' and '.'
 * are dropped, and the result is cut to min(outlen, PROCINFO_APP_MAX) - 1 bytes (then trimmed
 * again). out is always NUL-terminated when outlen > 0; it is "" only when nothing usable is
 * left, and callers then fall back to another name. in and out must not overlap.
 */
void procinfo_sanitize_app(const char *in, char *out, size_t outlen);

/* Ordered --app-name rules. Build with appname_rules__add, then read-only. */
struct appname_rules;

/* Empty rule list. NULL with errno on failure. Free with appname_rules__free. */
struct appname_rules *appname_rules__new(void);
/* Free; accepts NULL. */
void appname_rules__free(struct appname_rules *r);

/*
 * Append a rule. spec is "GLOB=NAME" (split at the last '=', so GLOB may hold '='): GLOB is an
 * fnmatch(3) pattern (no flags: '*' also matches '/') for the command line, that is argv joined
 * by single spaces and cut to PROCINFO_MATCH_MAX bytes; or a bare "NAME", which matches every
 * process (a catch-all, normally last). The first matching rule wins. NAME is sanitized with
 * procinfo_sanitize_app. Returns 0; -EINVAL when spec is NULL, GLOB is empty or longer than
 * PROCINFO_MATCH_MAX, or NAME sanitizes to ""; -ENOMEM.
 */
int appname_rules__add(struct appname_rules *r, const char *spec)
	__attribute__((warn_unused_result));

/*
 * The application name the first matching rule gives for cmdline (raw /proc/PID/cmdline, len
 * bytes), or NULL when no rule matches or r is NULL. Borrowed, valid until appname_rules__free.
 */
const char *appname_rules__match(const struct appname_rules *r, const char *cmdline, size_t len);

/*
 * Fill *out for pid from /proc/PID/{comm,cmdline,status,cgroup,ns/pid}. app is the name of the
 * first matching rule of rules (may be NULL), else procinfo_app_from_cmdline's, else "unknown".
 * comm and cmdline are required; the rest may be missing or unreadable, and then nspid = pid,
 * other_pidns = false, container = "", cgroup = "". other_pidns compares the targets of the
 * ns/pid links of PID and of "self"; a missing link counts as the same namespace.
 * Returns 0; -ESRCH when the process is gone; -EINVAL for pid <= 0; another -errno when comm or
 * cmdline cannot be read (-EACCES...); -ENOMEM. On failure *out is zeroed.
 */
int procinfo_read(pid_t pid, const struct appname_rules *rules, struct procinfo *out)
	__attribute__((warn_unused_result));

/*
 * procinfo_read with /proc replaced by proc_root (a fake tree in tests, e.g.
 * "tests/fixtures/procinfo/proc"; its "self" must be a directory or link of its own).
 * -ENAMETOOLONG when proc_root makes a path longer than PATH_MAX.
 */
int procinfo_read_at(const char *proc_root, pid_t pid, const struct appname_rules *rules,
		     struct procinfo *out) __attribute__((warn_unused_result));

#endif /* PYSAMP_PROCINFO_H */
