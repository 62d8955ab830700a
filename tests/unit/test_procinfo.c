/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * test_procinfo.c - application names, NSpid, cgroup/container parsing, --app-name rules, and
 * procinfo_read on this process and on the fake tree in tests/fixtures/procinfo/proc.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "procinfo.h"

#define FIXTURE_PROC "tests/fixtures/procinfo/proc"

/* A byte-string literal with its length, NULs included (the terminator not). */
#define B(lit) lit, sizeof(lit) - 1

#define ID  "3f4e8a1b2c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f7"
#define ID2 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

static bool app_name_ok(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_./-",
			    *s))
			return false;
	return true;
}

static void test_sanitize(void)
{
	static const struct {
		const char *in, *want;
	} cases[] = {
		{ "gunicorn: worker [myapp]", "gunicorn-worker-myapp" },
		{ "celery worker", "celery-worker" },
		{ "uwsgi master", "uwsgi-master" },
		{ "my app!.py", "my-app-.py" },
		{ "http.server", "http.server" },
		{ "ok_name/with.dots-1", "ok_name/with.dots-1" },
		{ "..hidden..", "hidden" },
		{ "--x--", "x" },
		{ "-bash", "bash" },
		{ "a - b", "a-b" }, /* the replacement merges with the '-' next to it */
		{ "a- b", "a-b" },
		{ "a--b", "a--b" }, /* dashes of the input are kept */
		{ "a\tb\nc", "a-b-c" },
		{ "caf\xc3\xa9 \xff\xfe bar", "caf-bar" },
		{ "\x1b[31mred\x1b[0m", "31mred-0m" },
		{ "\x01\x02\x03", "" },
		{ "...", "" },
		{ "", "" },
	};
	char out[PROCINFO_APP_MAX], big[300], small[6];

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		procinfo_sanitize_app(cases[i].in, out, sizeof(out));
		T_CHECK_EQ_STR(out, cases[i].want);
	}
	/* Capped to PROCINFO_APP_MAX - 1 even with a larger buffer. */
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	{
		char out2[512];

		procinfo_sanitize_app(big, out2, sizeof(out2));
		T_CHECK_EQ_INT(strlen(out2), PROCINFO_APP_MAX - 1);
	}
	/* Capped to outlen - 1, and trimmed again after the cut. */
	procinfo_sanitize_app("abcd efgh", small, sizeof(small));
	T_CHECK_EQ_STR(small, "abcd");
	procinfo_sanitize_app("abcdefgh", small, sizeof(small));
	T_CHECK_EQ_STR(small, "abcde");
	procinfo_sanitize_app("abc.defgh", small, 5);
	T_CHECK_EQ_STR(small, "abc");
	procinfo_sanitize_app("abc", small, 1);
	T_CHECK_EQ_STR(small, "");
	procinfo_sanitize_app(NULL, small, sizeof(small));
	T_CHECK_EQ_STR(small, "");
	/* outlen 0 writes nothing. */
	small[0] = 'Q';
	procinfo_sanitize_app("abc", small, 0);
	T_CHECK(small[0] == 'Q');
}

struct app_case {
	const char *cmdline;
	size_t len;
	const char *comm;
	const char *want;
};

static void test_app_from_cmdline(void)
{
	static const struct app_case cases[] = {
		/* 1. process titles (setproctitle), with and without NUL padding */
		{ B("gunicorn: worker [myapp]\0"), "gunicorn", "gunicorn-worker-myapp" },
		{ B("gunicorn: master [myapp]\0\0\0\0\0\0\0\0\0\0\0\0"), "gunicorn",
		  "gunicorn-master-myapp" },
		{ B("uwsgi master\0"), "uwsgi", "uwsgi-master" },
		{ B("celery worker"), "celery", "celery-worker" },
		{ B("uwsgi master   \0\0\0"), "uwsgi", "uwsgi-master" },
		{ B("[celeryd: celery@host:MainProcess] -active- (worker -A proj)\0"), "celery",
		  "celeryd-celery-host-MainProcess-active-worker-A-proj" },
		{ B("app:v2\0"), "x", "app-v2" },
		/* 2. CPython interpreters */
		{ B("python3\0-u\0-X\0dev\0-m\0celery\0-A\0proj\0worker\0"), "python3", "celery" },
		{ B("/usr/bin/python3\0/usr/local/bin/gunicorn\0app:app\0"), "gunicorn",
		  "gunicorn" },
		{ B("python3\0-c\0import time; time.sleep(100)\0"), "python3", "python-c" },
		{ B("python\0-W\0ignore\0script.py\0"), "python", "script" },
		{ B("python\0--\0x.py\0"), "python", "x" },
		{ B("python\0--\0"), "python", "python" },
		{ B("python3\0pkg/__main__.py\0"), "python3", "pkg" },
		{ B("python3\0/srv/app/pkg/__main__.py\0"), "python3", "pkg" },
		{ B("python3\0__main__.py\0"), "python3", "__main__" },
		{ B("python3\0myapp/\0"), "python3", "myapp" },
		{ B("python3.11\0-m\0http.server"), "python3.11",
		  "http.server" }, /* no final NUL */
		{ B("python3\0-mcelery\0worker\0"), "python3", "celery" },
		{ B("python3\0-uBm\0mod\0"), "python3", "mod" },
		{ B("python3\0-uBmmod\0"), "python3", "mod" },
		{ B("python3\0-Xdev\0-Wignore\0app.py\0"), "python3", "app" },
		{ B("python3\0-X\0importtime\0-W\0error::DeprecationWarning\0app.py\0"), "python3",
		  "app" },
		{ B("python3\0-OO\0-E\0-s\0-S\0-I\0-bb\0-q\0-v\0-d\0-R\0-i\0/srv/app/run.pyw\0"),
		  "python3", "run" },
		{ B("python3\0--check-hash-based-pycs\0always\0s.py\0"), "python3", "s" },
		{ B("python3\0--version\0"), "python3", "python" },
		{ B("pythonw\0tool.py\0"), "pythonw", "tool" },
		{ B("python3.12d\0x.py"), "python3.12d", "x" },
		{ B("python3-dbg\0x.py\0"), "python3-dbg", "x" },
		{ B("/usr/bin/python3.11-dbg\0-m\0pytest\0"), "python3.11-dbg", "pytest" },
		{ B("python3.13t\0x.py\0"), "python3.13t", "x" },
		{ B("python2.7\0-m\0SimpleHTTPServer\0"), "python2.7", "SimpleHTTPServer" },
		{ B("/usr/bin/python3.11\0-I\0-q\0"), "python3.11", "python" },
		{ B("python3\0"), "python3", "python" },
		{ B("python3\0-\0"), "python3", "python" },
		{ B("python3\0-m\0"), "python3", "python" },
		{ B("python3\0-c\0"), "python3", "python" },
		{ B("python3\0my app!.py\0"), "python3", "my-app" },
		{ B("python3\0script.py\0--port\0:8000\0"), "python3", "script" },
		{ B("python3\0\0x.py\0"), "python3", "python3" }, /* "" script: fall back to comm */
		/* 3. not an interpreter: argv[0]'s basename */
		{ B("./embed\0--config\0x.toml\0"), "embed", "embed" },
		{ B("/usr/local/bin/gunicorn\0app:app\0"), "gunicorn", "gunicorn" },
		{ B("/usr/bin/python3-config\0--libs\0"), "python3-conf", "python3-config" },
		{ B("/usr/bin/python-tool\0x.py\0"), "python-tool", "python-tool" },
		{ B("/usr/bin/pypy3\0x.py\0"), "pypy3", "pypy3" },
		{ B("-bash\0"), "bash", "bash" },
		{ B("/opt/app/\0"), "app", "app" },
		/* 4. nothing usable: comm */
		{ B(""), "kworker/0:1", "kworker/0-1" },
		{ B("\0\0\0"), "zombie", "zombie" },
		{ B("/\0"), "slash", "slash" },
		{ B("\xff\xfe\0--x\0"), "myproc", "myproc" },
		/* hostile bytes */
		{ B("\x01\x02python3\0x.py\0"), "c", "python3" },
		{ B("/opt/\xff\xfe"
		    "app\0"),
		  "c", "app" },
		{ B("/opt/\x01weird\x1b[0m app\xc3\x28"
		    "bin\0--flag\0"),
		  "c", "weird-0m-app-bin" },
		{ B("x\0a\nb c\0"), "c", "x" },
	};
	char out[PROCINFO_APP_MAX];

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		int err;

		memset(out, 'Z', sizeof(out));
		err = procinfo_app_from_cmdline(cases[i].cmdline, cases[i].len, cases[i].comm, out,
						sizeof(out));
		T_CHECK_EQ_INT(err, 0);
		T_CHECK_EQ_STR(out, cases[i].want);
		if (strcmp(out, cases[i].want))
			fprintf(stderr, "  case %zu\n", i);
		T_CHECK(app_name_ok(out));
	}
}

static void test_app_edges(void)
{
	char out[PROCINFO_APP_MAX], tiny[4], *big;
	size_t n = 10 * 1024;

	/* Nothing usable anywhere. */
	T_CHECK_EQ_INT(procinfo_app_from_cmdline(B("\xff\0"), NULL, out, sizeof(out)), -ENOENT);
	T_CHECK_EQ_STR(out, "");
	T_CHECK_EQ_INT(procinfo_app_from_cmdline(B(""), "\x01\x02", out, sizeof(out)), -ENOENT);
	T_CHECK_EQ_STR(out, "");
	T_CHECK_EQ_INT(procinfo_app_from_cmdline(NULL, 0, "comm", out, sizeof(out)), 0);
	T_CHECK_EQ_STR(out, "comm");
	/* outlen 0 is refused, small buffers cut. */
	T_CHECK_EQ_INT(procinfo_app_from_cmdline(B("x\0"), "c", out, 0), -EINVAL);
	T_CHECK_EQ_INT(
		procinfo_app_from_cmdline(B("python3\0-m\0celery\0"), "c", tiny, sizeof(tiny)), 0);
	T_CHECK_EQ_STR(tiny, "cel");

	/* A 10 KB argv[0], without a final NUL, then with arguments. */
	big = malloc(n + 16);
	T_CHECK(big != NULL);
	if (!big)
		return;
	big[0] = '/';
	memset(big + 1, 'a', n - 1);
	T_CHECK_EQ_INT(procinfo_app_from_cmdline(big, n, "c", out, sizeof(out)), 0);
	T_CHECK_EQ_INT(strlen(out), PROCINFO_APP_MAX - 1);
	T_CHECK(out[0] == 'a' && out[PROCINFO_APP_MAX - 2] == 'a');
	memcpy(big + n, "\0-x\0y\0", 6);
	T_CHECK_EQ_INT(procinfo_app_from_cmdline(big, n + 6, "c", out, sizeof(out)), 0);
	T_CHECK_EQ_INT(strlen(out), PROCINFO_APP_MAX - 1);
	/* A 10 KB title of spaces and bytes that all go. */
	memset(big, ' ', n);
	big[n] = '\0';
	T_CHECK_EQ_INT(procinfo_app_from_cmdline(big, n + 1, "fallback", out, sizeof(out)), 0);
	T_CHECK_EQ_STR(out, "fallback");
	free(big);
}

static void test_nspid(void)
{
	static const struct {
		const char *buf;
		size_t len;
		int err;
		pid_t want;
	} cases[] = {
		{ B("Name:\tpython3\nPid:\t1234\nNSpid:\t1234\nNSpgid:\t1234\n"), 0, 1234 },
		{ B("Name:\tgunicorn\nNStgid:\t4242\t7\nNSpid:\t4242\t7\nNSpgid:\t4242\t1\n"), 0,
		  7 },
		{ B("NSpid:\t100\t50\t3"), 0, 3 }, /* three levels, no final newline */
		{ B("NSpid: 5  \n"), 0, 5 },
		{ B("NSpid:\t2147483647\n"), 0, 2147483647 },
		{ B("Name:\tx\nPid:\t1\nPPid:\t0\n"), -ENOENT, 0 }, /* kernels before 4.1 */
		{ B(""), -ENOENT, 0 },
		{ B("XNSpid:\t5\n"), -ENOENT, 0 },
		{ B("NSpi"), -ENOENT, 0 },
		{ B("NSpid:\n"), -EINVAL, 0 },
		{ B("NSpid:\t \t"), -EINVAL, 0 },
		{ B("NSpid:\t12x\n"), -EINVAL, 0 },
		{ B("NSpid:\t-5\n"), -EINVAL, 0 },
		{ B("NSpid:\t0\n"), -EINVAL, 0 },
		{ B("NSpid:\t2147483648\n"), -EINVAL, 0 },
		{ B("NSpid:\t99999999999999999999999\n"), -EINVAL, 0 },
		{ B("NSpid:\t5\0 6\n"), -EINVAL, 0 },
		{ B("NSpid:\t5\r\n"), -EINVAL, 0 },
	};

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		pid_t v = -77;

		T_CHECK_EQ_INT(procinfo_parse_nspid(cases[i].buf, cases[i].len, &v), cases[i].err);
		T_CHECK_EQ_INT(v, cases[i].err ? -77 : cases[i].want);
	}
}

struct cg_case {
	const char *buf;
	size_t len;
	int err;
	const char *path, *container;
};

static void test_cgroup(void)
{
	static const struct cg_case cases[] = {
		/* docker, cgroup v1 (cgroupfs driver) */
		{ B("12:pids:/docker/" ID "\n"
		    "11:memory:/docker/" ID "\n"
		    "4:cpu,cpuacct:/docker/" ID "\n"
		    "1:name=systemd:/docker/" ID "\n"),
		  0, "/docker/" ID, ID },
		/* docker, cgroup v2 (systemd driver) */
		{ B("0::/system.slice/docker-" ID ".scope\n"), 0,
		  "/system.slice/docker-" ID ".scope", ID },
		/* containerd under Kubernetes, systemd driver */
		{ B("0::/kubepods.slice/kubepods-burstable.slice/"
		    "kubepods-burstable-pod1d3b7f9c_5a1e_"
		    "4c5e_9f3b_2d1e0f9a8b7c.slice/cri-containerd-" ID ".scope\n"),
		  0,
		  "/kubepods.slice/kubepods-burstable.slice/"
		  "kubepods-burstable-pod1d3b7f9c_5a1e_4c5e_"
		  "9f3b_2d1e0f9a8b7c.slice/cri-containerd-" ID ".scope",
		  ID },
		/* containerd under Kubernetes, cgroupfs driver, v1 */
		{ B("11:memory:/kubepods/besteffort/pod1d3b7f9c-5a1e-4c5e-9f3b-2d1e0f9a8b7c/" ID
		    "\n"
		    "1:name=systemd:/kubepods/besteffort/"
		    "pod1d3b7f9c-5a1e-4c5e-9f3b-2d1e0f9a8b7c/" ID "\n"),
		  0, "/kubepods/besteffort/pod1d3b7f9c-5a1e-4c5e-9f3b-2d1e0f9a8b7c/" ID, ID },
		/* cri-o, and its conmon (not the container) */
		{ B("0::/kubepods.slice/kubepods-pod12.slice/crio-" ID ".scope\n"), 0,
		  "/kubepods.slice/kubepods-pod12.slice/crio-" ID ".scope", ID },
		{ B("0::/kubepods.slice/kubepods-pod12.slice/crio-conmon-" ID ".scope\n"), 0,
		  "/kubepods.slice/kubepods-pod12.slice/crio-conmon-" ID ".scope", "" },
		/* podman (rootless, nested "container" cgroup), and its conmon */
		{ B("0::/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-" ID
		    ".scope/container\n"),
		  0,
		  "/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-" ID
		  ".scope/container",
		  ID },
		{ B("0::/machine.slice/libpod-conmon-" ID ".scope\n"), 0,
		  "/machine.slice/libpod-conmon-" ID ".scope", "" },
		/* podman, cgroupfs v1 */
		{ B("3:cpu:/libpod_parent/libpod-" ID "\n"), 0, "/libpod_parent/libpod-" ID, ID },
		/* systemd user slice: no container */
		{ B("0::/user.slice/user-1000.slice/user@1000.service/app.slice/"
		    "app-gnome-org.gnome.Terminal-4242.scope\n"),
		  0,
		  "/user.slice/user-1000.slice/user@1000.service/app.slice/"
		  "app-gnome-org.gnome.Terminal-4242.scope",
		  "" },
		/* hybrid: the v2 line's path wins, the container comes from a v1 line */
		{ B("12:pids:/docker/" ID "\n"
		    "1:name=systemd:/docker/" ID "\n"
		    "0::/\n"),
		  0, "/", ID },
		/* nested containers: the innermost id */
		{ B("0::/docker/" ID2 "/docker/" ID "\n"), 0, "/docker/" ID2 "/docker/" ID, ID },
		/* the chosen path is searched before the others */
		{ B("5:cpu:/docker/" ID2 "\n0::/system.slice/docker-" ID ".scope\n"), 0,
		  "/system.slice/docker-" ID ".scope", ID },
		/* 63 and 65 hex digits, upper case: no id */
		{ B("0::/docker/"
		    "3f4e8a1b2c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f\n"),
		  0, "/docker/3f4e8a1b2c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f",
		  "" },
		{ B("0::/docker/a" ID "\n"), 0, "/docker/a" ID, "" },
		{ B("0::/docker/" ID "0.scope\n"), 0, "/docker/" ID "0.scope", "" },
		{ B("0::/docker/"
		    "3F4E8A1B2C5D6E7F8091A2B3C4D5E6F708192A3B4C5D6E7F8091A2B3C4D5E6F7\n"),
		  0, "/docker/3F4E8A1B2C5D6E7F8091A2B3C4D5E6F708192A3B4C5D6E7F8091A2B3C4D5E6F7",
		  "" },
		/* an id at the very end, no final newline */
		{ B("0::/" ID), 0, "/" ID, ID },
		/* bad lines are skipped */
		{ B("garbage\nx:y:/notnumeric\n0::/a\0b\n1:cpu:/ok\n"), 0, "/ok", "" },
		{ B("1:cpu:relative\n2:cpu:/abs\x1b\n3:cpu:/fine\n"), 0, "/fine", "" },
		{ B(""), -ENOENT, "", "" },
		{ B("\n\n\n"), -ENOENT, "", "" },
		{ B("no colons at all"), -ENOENT, "", "" },
		{ B("0::\n"), -ENOENT, "", "" },
	};
	char path[256], container[PROCINFO_CONTAINER_LEN + 1];

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		memset(path, 'Z', sizeof(path));
		memset(container, 'Z', sizeof(container));
		T_CHECK_EQ_INT(procinfo_parse_cgroup(cases[i].buf, cases[i].len, path, sizeof(path),
						     container, sizeof(container)),
			       cases[i].err);
		T_CHECK_EQ_STR(path, cases[i].path);
		T_CHECK_EQ_STR(container, cases[i].container);
	}

	/* A path that does not fit: "" with -ENAMETOOLONG, the container still found. */
	T_CHECK_EQ_INT(procinfo_parse_cgroup(B("0::/system.slice/docker-" ID ".scope\n"), path, 8,
					     container, sizeof(container)),
		       -ENAMETOOLONG);
	T_CHECK_EQ_STR(path, "");
	T_CHECK_EQ_STR(container, ID);
	/* Outputs too small. */
	T_CHECK_EQ_INT(procinfo_parse_cgroup(B("0::/\n"), path, 0, container, sizeof(container)),
		       -EINVAL);
	T_CHECK_EQ_INT(procinfo_parse_cgroup(B("0::/\n"), path, sizeof(path), container, 64),
		       -EINVAL);
	/* No buffer at all. */
	T_CHECK_EQ_INT(
		procinfo_parse_cgroup(NULL, 0, path, sizeof(path), container, sizeof(container)),
		-ENOENT);
}

static void test_rules(void)
{
	struct appname_rules *r = appname_rules__new(), *empty = appname_rules__new();
	static const char gunicorn[] =
		"/usr/bin/python3\0/usr/local/bin/gunicorn\0--bind=0.0.0.0:80\0"
		"app:app\0";
	static const char celery[] = "python3\0-m\0celery\0-A\0proj\0worker\0";
	static const char title[] = "uwsgi master [shop]\0\0\0\0";
	char *glob, *long_cmd;

	T_CHECK(r != NULL && empty != NULL);
	if (!r || !empty)
		return;
	T_CHECK_EQ_INT(appname_rules__add(r, "*gunicorn --bind=*=api"), 0); /* '=' in the glob */
	T_CHECK_EQ_INT(appname_rules__add(r, "*gunicorn*=web"), 0);
	T_CHECK_EQ_INT(appname_rules__add(r, "python3 -m celery *=my worker!"), 0);
	T_CHECK_EQ_INT(appname_rules__add(r, "*master ?shop?=shop-master"), 0);

	/* First match wins; NAME was sanitized; argv joined by single spaces. */
	T_CHECK_EQ_STR(appname_rules__match(r, gunicorn, sizeof(gunicorn) - 1), "api");
	T_CHECK_EQ_STR(appname_rules__match(r, B("gunicorn\0app:app\0")), "web");
	T_CHECK_EQ_STR(appname_rules__match(r, celery, sizeof(celery) - 1), "my-worker");
	/* NUL padding after a title is not matched as spaces. */
	T_CHECK_EQ_STR(appname_rules__match(r, title, sizeof(title) - 1), "shop-master");
	/* No rule matches, no catch-all. */
	T_CHECK(appname_rules__match(r, B("/usr/sbin/sshd\0-D\0")) == NULL);
	T_CHECK(appname_rules__match(r, B("")) == NULL);
	T_CHECK(appname_rules__match(empty, B("x\0")) == NULL);
	T_CHECK(appname_rules__match(NULL, B("x\0")) == NULL);

	/* A bare NAME catches everything after the earlier rules. */
	T_CHECK_EQ_INT(appname_rules__add(r, "batch"), 0);
	T_CHECK_EQ_STR(appname_rules__match(r, B("/usr/sbin/sshd\0-D\0")), "batch");
	T_CHECK_EQ_STR(appname_rules__match(r, B("")), "batch");
	T_CHECK_EQ_STR(appname_rules__match(r, B("gunicorn\0")), "web");

	/* Invalid specs change nothing. */
	T_CHECK_EQ_INT(appname_rules__add(r, "=name"), -EINVAL);
	T_CHECK_EQ_INT(appname_rules__add(r, "*x*="), -EINVAL);
	T_CHECK_EQ_INT(appname_rules__add(r, "*x*=!!!"), -EINVAL);
	T_CHECK_EQ_INT(appname_rules__add(r, ""), -EINVAL);
	T_CHECK_EQ_INT(appname_rules__add(r, "..."), -EINVAL);
	T_CHECK_EQ_INT(appname_rules__add(r, NULL), -EINVAL);
	T_CHECK_EQ_INT(appname_rules__add(NULL, "x"), -EINVAL);
	glob = malloc(PROCINFO_MATCH_MAX + 8);
	T_CHECK(glob != NULL);
	if (glob) {
		memset(glob, '*', PROCINFO_MATCH_MAX + 1);
		strcpy(glob + PROCINFO_MATCH_MAX + 1, "=x");
		T_CHECK_EQ_INT(appname_rules__add(empty, glob), -EINVAL);
		free(glob);
	}
	T_CHECK(appname_rules__match(empty, B("x\0")) == NULL);

	/* The joined command line is cut to PROCINFO_MATCH_MAX bytes. */
	long_cmd = malloc(5000 + 6);
	T_CHECK(long_cmd != NULL);
	if (long_cmd) {
		T_CHECK_EQ_INT(appname_rules__add(empty, "*tail=seen-tail"), 0);
		T_CHECK_EQ_INT(appname_rules__add(empty, "aaa*=cut"), 0);
		memset(long_cmd, 'a', 5000);
		memcpy(long_cmd + 5000, "\0tail", 6);
		T_CHECK_EQ_STR(appname_rules__match(empty, long_cmd, 5005), "cut");
		T_CHECK_EQ_STR(appname_rules__match(empty, B("aaa\0tail\0")), "seen-tail");
		free(long_cmd);
	}
	appname_rules__free(r);
	appname_rules__free(empty);
	appname_rules__free(NULL);
}

static void test_read_self(void)
{
	struct appname_rules *r = appname_rules__new();
	char want[PROCINFO_APP_MAX];
	struct procinfo pi;

	T_CHECK_EQ_INT(procinfo_read(getpid(), NULL, &pi), 0);
	T_CHECK_EQ_INT(pi.pid, getpid());
	T_CHECK_EQ_INT(pi.nspid, getpid());
	T_CHECK(!pi.other_pidns);
	/* The test binary's name ("test_procinfo" when run by make), comm its first 15 bytes. */
	procinfo_sanitize_app(program_invocation_short_name, want, sizeof(want));
	T_CHECK_EQ_STR(pi.app, want);
	snprintf(want, 16, "%s", program_invocation_short_name);
	T_CHECK_EQ_STR(pi.comm, want);
	T_CHECK(pi.container[0] == '\0' || strlen(pi.container) == PROCINFO_CONTAINER_LEN);

	/* A rule replaces the derived name. */
	T_CHECK(r != NULL);
	if (r) {
		T_CHECK_EQ_INT(appname_rules__add(r, "*procinfo*=unit-self"), 0);
		T_CHECK_EQ_INT(procinfo_read(getpid(), r, &pi), 0);
		T_CHECK_EQ_STR(pi.app, "unit-self");
		appname_rules__free(r);
	}

	memset(&pi, 0x55, sizeof(pi));
	T_CHECK_EQ_INT(procinfo_read(999999999, NULL, &pi), -ESRCH);
	T_CHECK_EQ_INT(pi.pid, 0);
	T_CHECK_EQ_STR(pi.app, "");
	T_CHECK_EQ_INT(procinfo_read(0, NULL, &pi), -EINVAL);
	T_CHECK_EQ_INT(procinfo_read(-1, NULL, &pi), -EINVAL);
}

static void test_read_fixtures(void)
{
	struct appname_rules *r = appname_rules__new();
	struct procinfo pi;

	/* gunicorn worker in a docker container: NSpid "4242 7", another PID namespace. */
	T_CHECK_EQ_INT(procinfo_read_at(FIXTURE_PROC, 4242, NULL, &pi), 0);
	T_CHECK_EQ_INT(pi.pid, 4242);
	T_CHECK_EQ_INT(pi.nspid, 7);
	T_CHECK(pi.other_pidns);
	T_CHECK_EQ_STR(pi.comm, "gunicorn");
	T_CHECK_EQ_STR(pi.app, "gunicorn-worker-shop");
	T_CHECK_EQ_STR(pi.container, ID);
	T_CHECK_EQ_STR(pi.cgroup, "/system.slice/docker-" ID ".scope");

	/* celery on the host, hybrid cgroups in a systemd user slice. */
	T_CHECK_EQ_INT(procinfo_read_at(FIXTURE_PROC, 100, NULL, &pi), 0);
	T_CHECK_EQ_INT(pi.nspid, 100);
	T_CHECK(!pi.other_pidns);
	T_CHECK_EQ_STR(pi.comm, "celery");
	T_CHECK_EQ_STR(pi.app, "celery");
	T_CHECK_EQ_STR(pi.container, "");
	T_CHECK_EQ_STR(pi.cgroup,
		       "/user.slice/user-1000.slice/user@1000.service/app.slice/celery.service");

	/* Kernel thread, old kernel: no cmdline, no NSpid, no cgroup file, no ns link. */
	T_CHECK_EQ_INT(procinfo_read_at(FIXTURE_PROC, 200, NULL, &pi), 0);
	T_CHECK_EQ_INT(pi.nspid, 200);
	T_CHECK(!pi.other_pidns);
	T_CHECK_EQ_STR(pi.comm, "kworker/0:1");
	T_CHECK_EQ_STR(pi.app, "kworker/0-1");
	T_CHECK_EQ_STR(pi.container, "");
	T_CHECK_EQ_STR(pi.cgroup, "");

	/* Hostile bytes in every file. */
	T_CHECK_EQ_INT(procinfo_read_at(FIXTURE_PROC, 300, NULL, &pi), 0);
	T_CHECK_EQ_STR(pi.comm, "\x01\xff\xfe"
				"evil\x1b[31m");
	T_CHECK_EQ_STR(pi.app, "weird-0m-app-bin");
	T_CHECK_EQ_INT(pi.nspid, 300); /* "NSpid: 300 12x" is malformed */
	T_CHECK_EQ_STR(pi.container, "");
	T_CHECK_EQ_STR(pi.cgroup, "");

	/* Rules apply in the fake tree too. */
	T_CHECK(r != NULL);
	if (r) {
		T_CHECK_EQ_INT(appname_rules__add(r, "gunicorn: worker*=shop"), 0);
		T_CHECK_EQ_INT(procinfo_read_at(FIXTURE_PROC, 4242, r, &pi), 0);
		T_CHECK_EQ_STR(pi.app, "shop");
		T_CHECK_EQ_INT(procinfo_read_at(FIXTURE_PROC, 100, r, &pi), 0);
		T_CHECK_EQ_STR(pi.app, "celery");
		appname_rules__free(r);
	}

	/* Gone processes and a missing tree. */
	T_CHECK_EQ_INT(procinfo_read_at(FIXTURE_PROC, 999, NULL, &pi), -ESRCH);
	T_CHECK_EQ_INT(pi.nspid, 0);
	T_CHECK_EQ_INT(procinfo_read_at("tests/fixtures/procinfo/missing", 4242, NULL, &pi),
		       -ESRCH);
	T_CHECK_EQ_INT(procinfo_read_at(NULL, 4242, NULL, &pi), -EINVAL);
}

int main(void)
{
	test_sanitize();
	test_app_from_cmdline();
	test_app_edges();
	test_nspid();
	test_cgroup();
	test_rules();
	test_read_self();
	test_read_fixtures();
	return T_DONE();
}
