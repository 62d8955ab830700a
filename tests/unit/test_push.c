/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * test_push.c - the push module against tests/tools/ingest_server.py, over real HTTP with real
 * libcurl. Run from the repository root (the server is started as a child process).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "log.h"
#include "push.h"
#include "util.h"

#define PYTHON	  "/usr/bin/python3"
#define SERVER	  "tests/tools/ingest_server.py"
#define BACKOFF	  50   /* ms: test-only first retry delay (the cap is 60x: 3 s) */
#define TIMEOUT	  2000 /* ms per request */
#define MAX_LINES 64

static char tmp_root[64];   /* mkdtemp, removed at exit */
static int64_t max_poll_us; /* the longest push__poll() call seen */

static int64_t mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* ---- the test server ---- */

struct server {
	pid_t pid;
	int port;
	char out[PATH_MAX];
};

/* Start ingest_server.py on port (0: any) with extra arguments (NULL-terminated). */
static int server_start(struct server *s, int port, const char *name, const char *const *extra)
{
	const char *argv[16] = { PYTHON, SERVER, "--port", NULL, "--out", NULL };
	char portbuf[16], line[64] = "";
	size_t argc = 6, len = 0;
	int fds[2];
	int64_t deadline;

	snprintf(s->out, sizeof(s->out), "%s/%s.jsonl", tmp_root, name);
	unlink(s->out);
	snprintf(portbuf, sizeof(portbuf), "%d", port);
	argv[3] = portbuf;
	argv[5] = s->out;
	for (; extra && *extra && argc < 15; extra++)
		argv[argc++] = *extra;
	argv[argc] = NULL;
	if (pipe2(fds, O_CLOEXEC))
		return -errno;
	s->pid = fork();
	if (s->pid < 0)
		return -errno;
	if (s->pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		dup2(fds[1], 1);
		execv(PYTHON, (char *const *)argv);
		_exit(127);
	}
	close(fds[1]);
	deadline = mono_us() + 10 * 1000000;
	while (!memchr(line, '\n', len) && len < sizeof(line) - 1) {
		struct pollfd pfd = { .fd = fds[0], .events = POLLIN };
		int64_t left = (deadline - mono_us()) / 1000;
		ssize_t n;

		if (left <= 0 || poll(&pfd, 1, (int)left) <= 0)
			break;
		n = read(fds[0], line + len, sizeof(line) - 1 - len);
		if (n <= 0)
			break;
		len += (size_t)n;
		line[len] = '\0';
	}
	close(fds[0]);
	if (sscanf(line, "listening %d", &s->port) != 1) {
		fprintf(stderr, "test server did not start: '%s'\n", line);
		kill(s->pid, SIGKILL);
		waitpid(s->pid, NULL, 0);
		return -EIO;
	}
	return 0;
}

/* Stop the server; returns its exit status (0 when it stopped cleanly on SIGTERM). */
static int server_stop(struct server *s)
{
	int status = 0;

	if (s->pid <= 0)
		return -1;
	kill(s->pid, SIGTERM);
	if (waitpid(s->pid, &status, 0) < 0)
		return -1;
	s->pid = 0;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* A port on 127.0.0.1 with nothing listening (bound, then released). */
static int free_port(void)
{
	struct sockaddr_in sin = { .sin_family = AF_INET,
				   .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t slen = sizeof(sin);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), port = -1;

	if (fd < 0)
		return -1;
	if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&sin, &slen) == 0)
		port = ntohs(sin.sin_port);
	close(fd);
	return port;
}

/* ---- the server's output ---- */

struct lines {
	char *buf;
	char *v[MAX_LINES];
	size_t n;
};

static void lines_read(struct lines *l, const char *path)
{
	FILE *f = fopen(path, "r");
	size_t cap = 0;
	ssize_t len;
	char *s;

	memset(l, 0, sizeof(*l));
	if (!f)
		return;
	len = getdelim(&l->buf, &cap, '\0', f);
	fclose(f);
	if (len <= 0)
		return;
	for (s = l->buf; *s && l->n < MAX_LINES;) {
		char *nl = strchr(s, '\n');

		l->v[l->n++] = s;
		if (!nl)
			break;
		*nl = '\0';
		s = nl + 1;
	}
}

static void lines_release(struct lines *l)
{
	free(l->buf);
	memset(l, 0, sizeof(*l));
}

/* Append s as a JSON string the way Python's json.dumps writes ASCII text. */
static void json_str(struct strbuf *sb, const char *s, size_t len)
{
	int err = strbuf_add(sb, "\"", 1);

	for (size_t i = 0; i < len && !err; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '"' || c == '\\')
			err = strbuf_addf(sb, "\\%c", c);
		else if (c == '\n')
			err = strbuf_add(sb, "\\n", 2);
		else if (c == '\r')
			err = strbuf_add(sb, "\\r", 2);
		else if (c == '\t')
			err = strbuf_add(sb, "\\t", 2);
		else if (c < 0x20)
			err = strbuf_addf(sb, "\\u%04x", c);
		else
			err = strbuf_add(sb, &s[i], 1);
	}
	if (!err)
		err = strbuf_add(sb, "\"", 1);
	if (err)
		abort();
}

/* The JSON line ingest_server.py writes for one request of push. */
static char *expected_line(const char *path, const struct push_item *it, const char *auth,
			   int status)
{
	struct strbuf sb;
	char *s;

	strbuf_init(&sb, 0);
	if (strbuf_addf(&sb, "{\"path\": \"%s\", \"name\": ", path))
		abort();
	json_str(&sb, it->name, strlen(it->name));
	if (strbuf_addf(&sb,
			", \"from\": \"%" PRIu64 "\", \"until\": \"%" PRIu64
			"\", \"format\": \"folded\", \"sampleRate\": \"%" PRIu32
			"\", \"spyName\": \"pysamp-bpf\", \"units\": \"samples\", "
			"\"aggregationType\": \"sum\", \"authorization\": ",
			it->from_s, it->until_s, it->sample_rate))
		abort();
	if (auth)
		json_str(&sb, auth, strlen(auth));
	else if (strbuf_add(&sb, "null", 4))
		abort();
	if (strbuf_add(&sb, ", \"body\": ", 10))
		abort();
	json_str(&sb, it->body ? it->body : "", it->len);
	if (strbuf_addf(&sb, ", \"status\": %d}", status))
		abort();
	s = strbuf_detach(&sb, NULL);
	if (!s)
		abort();
	return s;
}

/* Does JSON line contain "key": "value" (value given already JSON-escaped)? */
static bool line_has(const char *line, const char *key, const char *value)
{
	char pat[512];

	snprintf(pat, sizeof(pat), "\"%s\": %s", key, value);
	return line && strstr(line, pat) != NULL;
}

/* ---- helpers ---- */

static char tmp_path_buf[8][PATH_MAX];

/* A path under tmp_root (eight rotating buffers). */
static const char *tmp_path(const char *name)
{
	static unsigned int i;
	char *b = tmp_path_buf[i++ % 8];

	snprintf(b, PATH_MAX, "%s/%s", tmp_root, name);
	return b;
}

static void write_file(const char *path, const char *data)
{
	size_t len = strlen(data);
	FILE *f = fopen(path, "w");

	if (!f || fwrite(data, 1, len, f) != len)
		abort();
	fclose(f);
}

/* Poll p until its queue is empty (stop_when_empty) or ms passed. Returns true when empty. */
static bool pump(struct push *p, int ms, bool stop_when_empty)
{
	int64_t deadline = mono_us() + (int64_t)ms * 1000;

	for (;;) {
		int64_t t0 = mono_us(), dt;
		int err = push__poll(p);

		dt = mono_us() - t0;
		if (dt > max_poll_us)
			max_poll_us = dt;
		T_CHECK_EQ_INT(err, 0);
		if (stop_when_empty && push__stats(p)->queued_items == 0)
			return true;
		if (mono_us() >= deadline)
			return push__stats(p)->queued_items == 0;
		usleep(5000);
	}
}

/* An item of exactly total = name + body bytes (total >= name + 16). */
struct titem {
	char name[64];
	char body[4096];
	struct push_item it;
};

static void titem_make(struct titem *t, const char *app, int i, size_t total)
{
	size_t nlen, blen, plen;

	snprintf(t->name, sizeof(t->name), "%s.cpu{n=%02d}", app, i);
	nlen = strlen(t->name);
	blen = total - nlen;
	if (blen < 16 || blen >= sizeof(t->body))
		abort();
	plen = (size_t)snprintf(t->body, sizeof(t->body), "root;f%02d;", i);
	memset(t->body + plen, 'x', blen - plen - 3);
	memcpy(t->body + blen - 3, " 1\n", 4);
	t->it = (struct push_item){ .name = t->name,
				    .from_s = 1700000000 + (uint64_t)i * 10,
				    .until_s = 1700000010 + (uint64_t)i * 10,
				    .sample_rate = 100,
				    .body = t->body,
				    .len = blen };
}

/* Sorted "*.push" names in dir; returns the count (names freed by the caller). */
static size_t spool_files(const char *dir, char **names, size_t max, uint64_t *bytes)
{
	struct dirent *de;
	size_t n = 0;
	DIR *d = opendir(dir);

	if (bytes)
		*bytes = 0;
	if (!d)
		return 0;
	while ((de = readdir(d))) {
		size_t len = strlen(de->d_name);
		struct stat sb;
		char path[PATH_MAX];

		if (len < 5 || strcmp(de->d_name + len - 5, ".push") != 0 || de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if (bytes && stat(path, &sb) == 0)
			*bytes += (uint64_t)sb.st_size;
		if (n < max && names)
			names[n] = strdup(de->d_name);
		n++;
	}
	closedir(d);
	if (names) {
		for (size_t i = 1; i < n && i < max; i++)
			for (size_t j = i; j > 0 && strcmp(names[j - 1], names[j]) > 0; j--) {
				char *t = names[j];

				names[j] = names[j - 1];
				names[j - 1] = t;
			}
	}
	return n;
}

static void names_free(char **names, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(names[i]);
}

static struct push *push_at(int port, const char *spool, size_t mem, size_t disk)
{
	char url[128], err[256] = "";
	struct push_opts o = { .url = url,
			       .spool_dir = spool,
			       .spool_mem_bytes = mem,
			       .spool_disk_bytes = disk,
			       .timeout_ms = TIMEOUT,
			       .user_agent = "pysamp-bpf-test/1",
			       .backoff_min_ms = BACKOFF };
	struct push *p;

	snprintf(url, sizeof(url), "http://127.0.0.1:%d", port);
	p = push__new(&o, err, sizeof(err));
	if (!p)
		fprintf(stderr, "push__new(%s): %s\n", url, err);
	return p;
}

/* Body of JSON line l equals t's body? */
static bool line_body_is(const char *l, const struct titem *t)
{
	struct strbuf sb;
	bool ok;

	strbuf_init(&sb, 0);
	if (strbuf_add(&sb, "\"body\": ", 8))
		abort();
	json_str(&sb, t->body, t->it.len);
	ok = l && strstr(l, sb.buf) != NULL;
	strbuf_release(&sb);
	return ok;
}

/* ---- tests ---- */

static void test_new_errors(void)
{
	char err[256], tok[PATH_MAX];
	struct push_opts o = { .url = "ftp://127.0.0.1/" };
	struct push *p, *p2;
	struct push_item it = { .name = "a.cpu", .body = "a 1\n", .len = 4 };
	char big[PUSH_NAME_MAX + 2];

	push__free(NULL);

	err[0] = '\0';
	errno = 0;
	T_CHECK(push__new(&o, err, sizeof(err)) == NULL);
	T_CHECK_EQ_INT(errno, EPROTONOSUPPORT);
	T_CHECK(strstr(err, "ftp") != NULL);

	o.url = "not a url";
	errno = 0;
	T_CHECK(push__new(&o, err, sizeof(err)) == NULL);
	T_CHECK_EQ_INT(errno, EINVAL);
	T_CHECK(err[0] != '\0');

	o.url = "http://";
	errno = 0;
	T_CHECK(push__new(&o, err, sizeof(err)) == NULL);
	T_CHECK_EQ_INT(errno, EINVAL);

	o.url = "http://127.0.0.1:1";
	snprintf(tok, sizeof(tok), "%s/no-such-token", tmp_root);
	o.token_file = tok;
	errno = 0;
	T_CHECK(push__new(&o, err, sizeof(err)) == NULL);
	T_CHECK_EQ_INT(errno, ENOENT);
	T_CHECK(strstr(err, "no-such-token") != NULL);

	snprintf(tok, sizeof(tok), "%s/empty-token", tmp_root);
	write_file(tok, " \t\r\n\nsecond-line\n");
	errno = 0;
	T_CHECK(push__new(&o, err, sizeof(err)) == NULL);
	T_CHECK_EQ_INT(errno, EINVAL);
	write_file(tok, "two words\n");
	errno = 0;
	T_CHECK(push__new(&o, err, sizeof(err)) == NULL);
	T_CHECK_EQ_INT(errno, EINVAL);
	o.token_file = NULL;

	/* A spool directory that cannot be created (a file is in the way). */
	write_file(tmp_path("afile"), "x");
	o.spool_dir = tmp_path("afile/spool");
	errno = 0;
	T_CHECK(push__new(&o, err, sizeof(err)) == NULL);
	T_CHECK_EQ_INT(errno, ENOTDIR);
	T_CHECK(strstr(err, "afile/spool") != NULL);

	/* Created with 0700, and locked against a second user. */
	o.spool_dir = tmp_path("locked/a/b");
	p = push__new(&o, err, sizeof(err));
	T_CHECK(p != NULL);
	{
		struct stat sb;

		T_CHECK(stat(o.spool_dir, &sb) == 0 && S_ISDIR(sb.st_mode) &&
			(sb.st_mode & 0777) == 0700);
	}
	errno = 0;
	p2 = push__new(&o, err, sizeof(err));
	T_CHECK(p2 == NULL);
	T_CHECK_EQ_INT(errno, EBUSY);
	push__free(p2);

	/* Enqueue argument checks. */
	T_CHECK_EQ_INT(push__enqueue(p, &it), 0);
	it.name = "";
	T_CHECK_EQ_INT(push__enqueue(p, &it), -EINVAL);
	it.name = NULL;
	T_CHECK_EQ_INT(push__enqueue(p, &it), -EINVAL);
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	it.name = big;
	T_CHECK_EQ_INT(push__enqueue(p, &it), -ENAMETOOLONG);
	T_CHECK_EQ_INT(push__stats(p)->enqueued, 1);
	T_CHECK_EQ_INT(push__stats(p)->queued_items, 1);
	push__free(p);

	/* The lock goes with the object. */
	p = push__new(&o, err, sizeof(err));
	T_CHECK(p != NULL);
	/* An item bigger than the memory cap on its own. */
	push__free(p);
	o.spool_mem_bytes = 100;
	p = push__new(&o, err, sizeof(err));
	T_CHECK(p != NULL);
	{
		static char body[200];
		struct push_item bi = { .name = "a.cpu", .body = body, .len = 95 };

		memset(body, 'x', sizeof(body));
		T_CHECK_EQ_INT(push__enqueue(p, &bi), 0); /* 5 + 95 = 100: fits exactly */
		bi.len = 96;
		T_CHECK_EQ_INT(push__enqueue(p, &bi), -E2BIG);
		T_CHECK_EQ_INT(push__stats(p)->enqueued, 1);
	}
	push__free(p);
}

/* (1) Items arrive in order with the right query and identical bodies, for three URL forms. */
static void test_order(void)
{
	static const struct {
		const char *name, *body;
		uint64_t from, until;
		uint32_t rate;
	} items[] = {
		{ "app.cpu{host=h1,python=3.11}",
		  "main;work (app.py:12);leaf (app.py:3) 12\nmain 1\n", 1700000000, 1700000010,
		  100 },
		{ "my-app_2/x.cpu{path=/a b&c=d+e%20f?g#h,k.k=v}", "a;b 3\n", 1700000010,
		  1700000020, 99 },
		{ "plain", "", 1, 2, 0 },
		{ "app.wall{q=\"quo ted\\\\back\"}", "x\"y;z\\w 7\r\nno-count-line\n\ta 1\n", 5, 6,
		  4294967295u },
		{ "app.cpu", "only 1", 1700000020, 1700000030, 19 },
	};
	static const struct {
		const char *suffix, *path;
	} urls[] = {
		{ "", "/ingest" },
		{ "/pyroscope/", "/pyroscope/ingest" },
		{ "/pyroscope/ingest/?tenant=a%20b", "/pyroscope/ingest" },
	};
	const size_t n = sizeof(items) / sizeof(items[0]);
	struct server srv = { 0 };
	struct lines l;
	char url[256], err[256];
	uint64_t body_bytes = 0;

	T_CHECK_EQ_INT(server_start(&srv, 0, "order", NULL), 0);
	for (size_t u = 0; u < sizeof(urls) / sizeof(urls[0]); u++) {
		struct push_opts o = { .url = url, .timeout_ms = TIMEOUT, .user_agent = "t/1" };
		const struct push_stats *st;
		struct push *p;

		snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", srv.port, urls[u].suffix);
		p = push__new(&o, err, sizeof(err));
		T_CHECK(p != NULL);
		if (!p)
			continue;
		st = push__stats(p);
		T_CHECK_EQ_INT(st->last_http_status, 0);
		T_CHECK_EQ_INT(st->last_success_unix, 0);
		for (size_t i = 0; i < n; i++) {
			struct push_item it = { .name = items[i].name,
						.from_s = items[i].from,
						.until_s = items[i].until,
						.sample_rate = items[i].rate,
						.body = items[i].body,
						.len = strlen(items[i].body) };

			T_CHECK_EQ_INT(push__enqueue(p, &it), 0);
			if (u == 0)
				body_bytes += it.len;
		}
		T_CHECK_EQ_INT(st->queued_items, n);
		T_CHECK(pump(p, 10000, true));
		T_CHECK_EQ_INT(st->enqueued, n);
		T_CHECK_EQ_INT(st->sent, n);
		T_CHECK_EQ_INT(st->bytes_sent, body_bytes);
		T_CHECK_EQ_INT(st->failed_attempts, 0);
		T_CHECK_EQ_INT(st->retries, 0);
		T_CHECK_EQ_INT(st->rejected, 0);
		T_CHECK_EQ_INT(st->queued_items, 0);
		T_CHECK_EQ_INT(st->queued_bytes, 0);
		T_CHECK_EQ_INT(st->last_http_status, 200);
		T_CHECK(st->last_success_unix >= (int64_t)time(NULL) - 60);
		push__free(p);
	}
	T_CHECK_EQ_INT(server_stop(&srv), 0);

	lines_read(&l, srv.out);
	T_CHECK_EQ_INT(l.n, n * 3);
	for (size_t u = 0; u < 3; u++) {
		for (size_t i = 0; i < n && u * n + i < l.n; i++) {
			struct push_item it = { .name = items[i].name,
						.from_s = items[i].from,
						.until_s = items[i].until,
						.sample_rate = items[i].rate,
						.body = items[i].body,
						.len = strlen(items[i].body) };
			char *want = expected_line(urls[u].path, &it, NULL, 200);

			T_CHECK_EQ_STR(l.v[u * n + i], want);
			free(want);
		}
	}
	lines_release(&l);
}

/* (2) The bearer token is sent, and push__reload() picks up a new one (or keeps the old). */
static void test_token(void)
{
	const char *const args[] = { "--token", "secret-1", NULL };
	const char *tok = tmp_path("token");
	struct push_opts o = { .token_file = tok, .timeout_ms = TIMEOUT };
	struct push_item it = { .name = "tok.cpu", .body = "a;b 1\n", .len = 6 };
	struct server srv = { 0 };
	const struct push_stats *st;
	char url[128], err[256];
	struct lines l;
	struct push *p;

	T_CHECK_EQ_INT(server_start(&srv, 0, "token", args), 0);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/", srv.port);
	o.url = url;
	write_file(tok, "  secret-1 \r\nsecond line\n");
	p = push__new(&o, err, sizeof(err));
	T_CHECK(p != NULL);
	if (!p) {
		server_stop(&srv);
		return;
	}
	st = push__stats(p);
	T_CHECK_EQ_INT(push__enqueue(p, &it), 0);
	T_CHECK(pump(p, 5000, true));
	T_CHECK_EQ_INT(st->sent, 1);

	/* New token: the server (still expecting secret-1) answers 401, a permanent error. */
	write_file(tok, "secret-2");
	T_CHECK_EQ_INT(push__reload(p), 0);
	T_CHECK_EQ_INT(push__enqueue(p, &it), 0);
	T_CHECK(pump(p, 5000, true));
	T_CHECK_EQ_INT(st->sent, 1);
	T_CHECK_EQ_INT(st->rejected, 1);
	T_CHECK_EQ_INT(st->last_http_status, 401);

	/* An empty or missing file at reload: a warning, and the old token stays. */
	write_file(tok, "\n");
	T_CHECK_EQ_INT(push__reload(p), -EINVAL);
	unlink(tok);
	T_CHECK_EQ_INT(push__reload(p), -ENOENT);
	T_CHECK_EQ_INT(push__enqueue(p, &it), 0);
	T_CHECK(pump(p, 5000, true));
	T_CHECK_EQ_INT(st->rejected, 2);
	push__free(p);
	T_CHECK_EQ_INT(server_stop(&srv), 0);

	lines_read(&l, srv.out);
	T_CHECK_EQ_INT(l.n, 3);
	T_CHECK(line_has(l.v[0], "authorization", "\"Bearer secret-1\""));
	T_CHECK(line_has(l.v[0], "status", "200"));
	T_CHECK(line_has(l.v[1], "authorization", "\"Bearer secret-2\""));
	T_CHECK(line_has(l.v[1], "status", "401"));
	T_CHECK(line_has(l.v[2], "authorization", "\"Bearer secret-2\""));
	lines_release(&l);

	/* user:password@ in the URL is HTTP basic auth (what Grafana Cloud uses). */
	T_CHECK_EQ_INT(server_start(&srv, 0, "basic", NULL), 0);
	snprintf(url, sizeof(url), "http://user:pa%%3Ass@127.0.0.1:%d/", srv.port);
	o.token_file = NULL;
	p = push__new(&o, err, sizeof(err));
	T_CHECK(p != NULL);
	if (p) {
		T_CHECK_EQ_INT(push__enqueue(p, &it), 0);
		T_CHECK(pump(p, 5000, true));
		T_CHECK_EQ_INT(push__stats(p)->sent, 1);
		push__free(p);
	}
	T_CHECK_EQ_INT(server_stop(&srv), 0);
	lines_read(&l, srv.out);
	T_CHECK_EQ_INT(l.n, 1);
	/* base64("user:pa:ss") */
	T_CHECK(line_has(l.v[0], "authorization", "\"Basic dXNlcjpwYTpzcw==\""));
	lines_release(&l);
}

/* (3) Nothing listening: items stay queued and are retried, then all arrive in order. */
static void test_refused_then_up(void)
{
	struct titem t[3];
	struct server srv = { 0 };
	const struct push_stats *st;
	int port = free_port();
	struct lines l;
	struct push *p;

	T_CHECK(port > 0);
	p = push_at(port, NULL, 0, 0);
	T_CHECK(p != NULL);
	if (!p)
		return;
	st = push__stats(p);
	for (int i = 0; i < 3; i++) {
		titem_make(&t[i], "refused", i, 100);
		T_CHECK_EQ_INT(push__enqueue(p, &t[i].it), 0);
	}
	pump(p, 500, false);
	T_CHECK(st->failed_attempts >= 2);
	T_CHECK(st->retries >= 1);
	/* Backoff: 50, 100, 200 ms (+-20%) fit at most 5 attempts into 500 ms. */
	T_CHECK(st->failed_attempts <= 6);
	T_CHECK_EQ_INT(st->queued_items, 3);
	T_CHECK_EQ_INT(st->queued_bytes, 300);
	T_CHECK_EQ_INT(st->sent, 0);
	T_CHECK_EQ_INT(st->rejected + st->dropped_overflow + st->dropped_disk_error, 0);
	T_CHECK_EQ_INT(st->last_http_status, 0);

	T_CHECK_EQ_INT(server_start(&srv, port, "refused", NULL), 0);
	T_CHECK_EQ_INT(srv.port, port);
	T_CHECK(pump(p, 10000, true));
	T_CHECK_EQ_INT(st->sent, 3);
	T_CHECK_EQ_INT(st->last_http_status, 200);
	push__free(p);
	T_CHECK_EQ_INT(server_stop(&srv), 0);

	lines_read(&l, srv.out);
	T_CHECK_EQ_INT(l.n, 3);
	for (size_t i = 0; i < 3 && i < l.n; i++) {
		char *want = expected_line("/ingest", &t[i].it, NULL, 200);

		T_CHECK_EQ_STR(l.v[i], want);
		free(want);
	}
	lines_release(&l);
}

/* (4) 400: rejected and dropped, never retried. 503 and 429: kept and retried. */
static void test_status(void)
{
	static const char *const codes[] = { "400", "503", "429" };
	struct titem t[2];

	for (size_t c = 0; c < 3; c++) {
		const char *const args[] = { "--status", codes[c], NULL };
		struct server srv = { 0 };
		const struct push_stats *st;
		struct lines l;
		struct push *p;
		bool permanent = c == 0;

		T_CHECK_EQ_INT(server_start(&srv, 0, "status", args), 0);
		p = push_at(srv.port, NULL, 0, 0);
		T_CHECK(p != NULL);
		if (!p) {
			server_stop(&srv);
			continue;
		}
		st = push__stats(p);
		for (int i = 0; i < 2; i++) {
			titem_make(&t[i], "status", i, 64);
			T_CHECK_EQ_INT(push__enqueue(p, &t[i].it), 0);
		}
		pump(p, permanent ? 5000 : 600, permanent);
		if (permanent) {
			pump(p, 200, false); /* nothing more may be sent */
			T_CHECK_EQ_INT(st->rejected, 2);
			T_CHECK_EQ_INT(st->failed_attempts, 0);
			T_CHECK_EQ_INT(st->retries, 0);
			T_CHECK_EQ_INT(st->queued_items, 0);
		} else {
			T_CHECK_EQ_INT(st->rejected, 0);
			T_CHECK(st->failed_attempts >= 2);
			T_CHECK(st->retries >= 1);
			T_CHECK_EQ_INT(st->queued_items, 2);
		}
		T_CHECK_EQ_INT(st->sent, 0);
		T_CHECK_EQ_INT(st->last_http_status, atoi(codes[c]));
		push__free(p);
		T_CHECK_EQ_INT(server_stop(&srv), 0);

		lines_read(&l, srv.out);
		if (permanent) {
			T_CHECK_EQ_INT(l.n, 2);
			T_CHECK(line_body_is(l.v[0], &t[0]));
			T_CHECK(line_body_is(l.v[1], &t[1]));
		} else {
			/* Retries of the head item only: the second one never went out. */
			T_CHECK(l.n >= 2);
			for (size_t i = 0; i < l.n; i++)
				T_CHECK(line_body_is(l.v[i], &t[0]));
		}
		lines_release(&l);
	}
}

/* A collector slower than the request timeout: a failed attempt, and poll never blocks. */
static void test_timeout(void)
{
	const char *const args[] = { "--delay", "1.5", NULL };
	struct push_opts o = { .timeout_ms = 300, .backoff_min_ms = BACKOFF };
	struct server srv = { 0 };
	struct titem t;
	char url[128], err[256];
	struct push *p;

	T_CHECK_EQ_INT(server_start(&srv, 0, "slow", args), 0);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d", srv.port);
	o.url = url;
	p = push__new(&o, err, sizeof(err));
	T_CHECK(p != NULL);
	if (p) {
		titem_make(&t, "slow", 0, 64);
		T_CHECK_EQ_INT(push__enqueue(p, &t.it), 0);
		pump(p, 800, false);
		T_CHECK(push__stats(p)->failed_attempts >= 1);
		T_CHECK_EQ_INT(push__stats(p)->sent, 0);
		T_CHECK_EQ_INT(push__stats(p)->last_http_status, 0);
		T_CHECK_EQ_INT(push__stats(p)->queued_items, 1);
		push__free(p);
	}
	T_CHECK_EQ_INT(server_stop(&srv), 0);
}

/* (5) Memory overflow goes to the spool; flush spools the rest; a new push sends it all. */
static void test_spool_roundtrip(void)
{
	const char *dir = tmp_path("spool1/deeper");
	struct server srv = { 0 };
	const struct push_stats *st;
	struct titem t[7];
	char *names[16];
	uint64_t fbytes;
	size_t nf;
	struct lines l;
	struct push *p;
	int port = free_port();

	p = push_at(port, dir, 250, 0);
	T_CHECK(p != NULL);
	if (!p)
		return;
	st = push__stats(p);
	for (int i = 0; i < 7; i++)
		titem_make(&t[i], "spool", i, 100);
	for (int i = 0; i < 6; i++)
		T_CHECK_EQ_INT(push__enqueue(p, &t[i].it), 0);
	/* 250 bytes hold two items: 0-3 went to disk, in order. */
	T_CHECK_EQ_INT(st->spooled_to_disk, 4);
	T_CHECK_EQ_INT(st->queued_items, 6);
	nf = spool_files(dir, names, 16, &fbytes);
	T_CHECK_EQ_INT(nf, 4);
	T_CHECK_EQ_INT(st->queued_bytes, 200 + fbytes);
	for (size_t i = 1; i < nf && i < 16; i++)
		T_CHECK(strcmp(names[i - 1], names[i]) < 0);
	names_free(names, nf < 16 ? nf : 16);

	/* Nothing listens: flush gives up and spools the two in memory. */
	T_CHECK_EQ_INT(push__flush(p, 200), 6);
	T_CHECK_EQ_INT(st->spooled_to_disk, 6);
	T_CHECK_EQ_INT(st->sent, 0);
	T_CHECK(st->failed_attempts >= 1);
	T_CHECK_EQ_INT(st->dropped_overflow + st->dropped_disk_error + st->dropped_unsent, 0);
	T_CHECK_EQ_INT(spool_files(dir, NULL, 0, NULL), 6);
	push__free(p);

	/* Next start: the spool goes first, then the new item. */
	T_CHECK_EQ_INT(server_start(&srv, 0, "spool1", NULL), 0);
	p = push_at(srv.port, dir, 250, 0);
	T_CHECK(p != NULL);
	if (p) {
		st = push__stats(p);
		T_CHECK_EQ_INT(st->loaded_from_disk, 6);
		T_CHECK_EQ_INT(st->queued_items, 6);
		T_CHECK_EQ_INT(push__enqueue(p, &t[6].it), 0);
		T_CHECK(pump(p, 10000, true));
		T_CHECK_EQ_INT(st->sent, 7);
		T_CHECK_EQ_INT(st->dropped_corrupt, 0);
		T_CHECK_EQ_INT(spool_files(dir, NULL, 0, NULL), 0);
		push__free(p);
	}
	T_CHECK_EQ_INT(server_stop(&srv), 0);
	lines_read(&l, srv.out);
	T_CHECK_EQ_INT(l.n, 7);
	for (size_t i = 0; i < 7 && i < l.n; i++) {
		char *want = expected_line("/ingest", &t[i].it, NULL, 200);

		T_CHECK_EQ_STR(l.v[i], want);
		free(want);
	}
	lines_release(&l);
}

/* Without a spool, memory overflow drops the oldest items. */
static void test_memory_overflow(void)
{
	struct server srv = { 0 };
	const struct push_stats *st;
	struct titem t[6];
	struct lines l;
	struct push *p;

	T_CHECK_EQ_INT(server_start(&srv, 0, "memonly", NULL), 0);
	p = push_at(srv.port, NULL, 250, 0);
	T_CHECK(p != NULL);
	if (p) {
		st = push__stats(p);
		for (int i = 0; i < 6; i++) {
			titem_make(&t[i], "mem", i, 100);
			T_CHECK_EQ_INT(push__enqueue(p, &t[i].it), 0);
		}
		T_CHECK_EQ_INT(st->dropped_overflow, 4);
		T_CHECK_EQ_INT(st->queued_items, 2);
		T_CHECK_EQ_INT(st->queued_bytes, 200);
		T_CHECK(pump(p, 5000, true));
		T_CHECK_EQ_INT(st->sent, 2);
		push__free(p);
	}
	T_CHECK_EQ_INT(server_stop(&srv), 0);
	lines_read(&l, srv.out);
	T_CHECK_EQ_INT(l.n, 2);
	T_CHECK(line_body_is(l.v[0], &t[4]));
	T_CHECK(line_body_is(l.v[1], &t[5]));
	lines_release(&l);
}

/* (6) A tiny disk cap: the oldest files are deleted and counted. */
static void test_spool_disk_cap(void)
{
	const char *dir = tmp_path("spool2");
	struct server srv = { 0 };
	const struct push_stats *st;
	struct titem t[6];
	struct lines l;
	struct push *p;

	/* 1016-byte items: memory holds one, the disk two files (a header is < 250 bytes). */
	p = push_at(free_port(), dir, 1500, 2500);
	T_CHECK(p != NULL);
	if (!p)
		return;
	st = push__stats(p);
	for (int i = 0; i < 6; i++) {
		titem_make(&t[i], "cap", i, 1016);
		T_CHECK_EQ_INT(push__enqueue(p, &t[i].it), 0);
	}
	/* 0-4 were spooled in turn; 0, 1 and 2 were then deleted to make room. */
	T_CHECK_EQ_INT(st->spooled_to_disk, 5);
	T_CHECK_EQ_INT(st->dropped_overflow, 3);
	T_CHECK_EQ_INT(st->queued_items, 3);
	T_CHECK_EQ_INT(spool_files(dir, NULL, 0, NULL), 2);
	push__free(p); /* item 5, in memory, is lost: no flush */

	T_CHECK_EQ_INT(server_start(&srv, 0, "spool2", NULL), 0);
	p = push_at(srv.port, dir, 1500, 2500);
	T_CHECK(p != NULL);
	if (p) {
		T_CHECK_EQ_INT(push__stats(p)->loaded_from_disk, 2);
		T_CHECK(pump(p, 5000, true));
		T_CHECK_EQ_INT(push__stats(p)->sent, 2);
		push__free(p);
	}
	T_CHECK_EQ_INT(server_stop(&srv), 0);
	lines_read(&l, srv.out);
	T_CHECK_EQ_INT(l.n, 2);
	T_CHECK(line_body_is(l.v[0], &t[3]));
	T_CHECK(line_body_is(l.v[1], &t[4]));
	lines_release(&l);
}

/* (7) Corrupt, truncated and foreign files in the spool: deleted and counted, or ignored. */
static void test_spool_corrupt(void)
{
	const char *dir = tmp_path("spool3");
	struct server srv = { 0 };
	const struct push_stats *st;
	struct titem t[5];
	char *names[8], path[PATH_MAX];
	struct stat sb;
	struct lines l;
	struct push *p;
	size_t nf;

	p = push_at(free_port(), dir, 150, 0);
	T_CHECK(p != NULL);
	if (!p)
		return;
	for (int i = 0; i < 5; i++)
		titem_make(&t[i], "bad", i, 100);
	for (int i = 0; i < 4; i++)
		T_CHECK_EQ_INT(push__enqueue(p, &t[i].it), 0);
	T_CHECK_EQ_INT(push__flush(p, 0), 4);
	push__free(p);
	nf = spool_files(dir, names, 8, NULL);
	T_CHECK_EQ_INT(nf, 4);
	if (nf != 4) {
		names_free(names, nf < 8 ? nf : 8);
		return;
	}
	/* Item 1: truncated. Item 2: one body byte flipped (only the checksum can tell). */
	snprintf(path, sizeof(path), "%s/%s", dir, names[1]);
	T_CHECK(stat(path, &sb) == 0 && truncate(path, sb.st_size / 2) == 0);
	snprintf(path, sizeof(path), "%s/%s", dir, names[2]);
	{
		int fd = open(path, O_RDWR);
		char c = 0;

		T_CHECK(fd >= 0 && fstat(fd, &sb) == 0);
		T_CHECK(pread(fd, &c, 1, sb.st_size - 5) == 1);
		c ^= 0x20;
		T_CHECK(pwrite(fd, &c, 1, sb.st_size - 5) == 1);
		close(fd);
	}
	names_free(names, nf);
	/* Garbage under a valid name, a stale temporary file, and a foreign file. */
	snprintf(path, sizeof(path), "%s/00000000000000000099.push", dir);
	write_file(path, "hello");
	snprintf(path, sizeof(path), "%s/.tmp-00000000000000000050.push", dir);
	write_file(path, "half-written");
	snprintf(path, sizeof(path), "%s/notes.txt", dir);
	write_file(path, "keep me");

	T_CHECK_EQ_INT(server_start(&srv, 0, "spool3", NULL), 0);
	p = push_at(srv.port, dir, 150, 0);
	T_CHECK(p != NULL);
	if (p) {
		st = push__stats(p);
		T_CHECK_EQ_INT(st->dropped_corrupt, 2); /* truncated + garbage, at start */
		T_CHECK_EQ_INT(st->loaded_from_disk,
			       3); /* the flipped byte passes the header check */
		T_CHECK_EQ_INT(push__enqueue(p, &t[4].it), 0);
		T_CHECK(pump(p, 5000, true));
		T_CHECK_EQ_INT(st->dropped_corrupt, 3); /* + the flipped byte, when loaded */
		T_CHECK_EQ_INT(st->sent, 3);		/* items 0, 3 and 4 */
		/* Sequence numbers continue after the highest file name seen (99): item 4 got 100,
		 * this one 101. The server is gone, so flush(0) spools it. */
		T_CHECK_EQ_INT(server_stop(&srv), 0);
		T_CHECK_EQ_INT(push__enqueue(p, &t[4].it), 0);
		T_CHECK_EQ_INT(push__flush(p, 0), 1);
		nf = spool_files(dir, names, 8, NULL);
		T_CHECK_EQ_INT(nf, 1);
		if (nf == 1)
			T_CHECK_EQ_STR(names[0], "00000000000000000101.push");
		names_free(names, nf < 8 ? nf : 8);
		push__free(p);
	}
	server_stop(&srv);		  /* when push__new failed */
	T_CHECK(access(path, F_OK) == 0); /* notes.txt */
	snprintf(path, sizeof(path), "%s/.tmp-00000000000000000050.push", dir);
	T_CHECK(access(path, F_OK) != 0);

	lines_read(&l, srv.out);
	T_CHECK_EQ_INT(l.n, 3);
	T_CHECK(line_body_is(l.v[0], &t[0]));
	T_CHECK(line_body_is(l.v[1], &t[3]));
	T_CHECK(line_body_is(l.v[2], &t[4]));
	lines_release(&l);
}

/* A spool write that fails (here EFBIG from RLIMIT_FSIZE): the item is dropped and counted. */
static void test_spool_write_error(void)
{
	const char *dir = tmp_path("spool4");
	struct rlimit old, lim;
	struct titem t[3];
	struct push *p;

	p = push_at(free_port(), dir, 1500, 0);
	T_CHECK(p != NULL);
	if (!p)
		return;
	T_CHECK(getrlimit(RLIMIT_FSIZE, &old) == 0);
	lim = old;
	lim.rlim_cur = 100;
	signal(SIGXFSZ, SIG_IGN);
	T_CHECK(setrlimit(RLIMIT_FSIZE, &lim) == 0);
	for (int i = 0; i < 3; i++) {
		titem_make(&t[i], "eio", i, 1016);
		T_CHECK_EQ_INT(push__enqueue(p, &t[i].it), 0);
	}
	T_CHECK(setrlimit(RLIMIT_FSIZE, &old) == 0);
	signal(SIGXFSZ, SIG_DFL);
	T_CHECK_EQ_INT(push__stats(p)->dropped_disk_error, 2);
	T_CHECK_EQ_INT(push__stats(p)->spooled_to_disk, 0);
	T_CHECK_EQ_INT(push__stats(p)->queued_items, 1);
	push__free(p);
	/* No .push file and no leftover temporary. */
	{
		DIR *d = opendir(dir);
		struct dirent *de;
		int others = 0;

		T_CHECK(d != NULL);
		while (d && (de = readdir(d)))
			if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..") &&
			    strcmp(de->d_name, ".lock"))
				others++;
		if (d)
			closedir(d);
		T_CHECK_EQ_INT(others, 0);
	}
}

/* (8) push__flush: all sent when the collector is up; counted as dropped when nothing listens. */
static void test_flush(void)
{
	struct server srv = { 0 };
	struct titem t[3];
	struct push *p;
	int64_t t0, ms;

	p = push_at(free_port(), NULL, 0, 0);
	T_CHECK(p != NULL);
	if (p) {
		for (int i = 0; i < 3; i++) {
			titem_make(&t[i], "flush", i, 80);
			T_CHECK_EQ_INT(push__enqueue(p, &t[i].it), 0);
		}
		t0 = mono_us();
		T_CHECK_EQ_INT(push__flush(p, 300), 3);
		ms = (mono_us() - t0) / 1000;
		T_CHECK(ms >= 250 && ms < 2000);
		T_CHECK_EQ_INT(push__stats(p)->dropped_unsent, 3);
		T_CHECK_EQ_INT(push__stats(p)->queued_items, 0);
		T_CHECK(push__stats(p)->failed_attempts >= 1);
		T_CHECK_EQ_INT(push__flush(p, 100), 0); /* nothing left: returns at once */
		push__free(p);
	}

	T_CHECK_EQ_INT(server_start(&srv, 0, "flush", NULL), 0);
	p = push_at(srv.port, NULL, 0, 0);
	T_CHECK(p != NULL);
	if (p) {
		for (int i = 0; i < 3; i++)
			T_CHECK_EQ_INT(push__enqueue(p, &t[i].it), 0);
		t0 = mono_us();
		T_CHECK_EQ_INT(push__flush(p, 5000), 0);
		T_CHECK((mono_us() - t0) / 1000 < 4000);
		T_CHECK_EQ_INT(push__stats(p)->sent, 3);
		T_CHECK_EQ_INT(push__stats(p)->dropped_unsent, 0);
		push__free(p);
	}
	T_CHECK_EQ_INT(server_stop(&srv), 0);
}

static int rm_one(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
	(void)sb;
	(void)type;
	(void)ftw;
	return remove(path);
}

int main(void)
{
	int64_t t0 = mono_us();

	/* Talk to 127.0.0.1 directly whatever the environment says. */
	setenv("NO_PROXY", "*", 1);
	setenv("no_proxy", "*", 1);
	log_set_level(LOG_WARN);
	snprintf(tmp_root, sizeof(tmp_root), "/tmp/test_push.XXXXXX");
	if (!mkdtemp(tmp_root)) {
		perror("mkdtemp");
		return 1;
	}
	if (access(SERVER, R_OK) != 0) {
		fprintf(stderr, "run from the repository root (%s not found)\n", SERVER);
		return 1;
	}

	test_new_errors();
	test_order();
	test_token();
	test_refused_then_up();
	test_status();
	test_timeout();
	test_spool_roundtrip();
	test_memory_overflow();
	test_spool_disk_cap();
	test_spool_corrupt();
	test_spool_write_error();
	test_flush();

	/* No push__poll() may block the agent's loop. */
	/* (A blocked call would take a request timeout, 300 ms or more; valgrind needs ~50 ms.) */
	T_CHECK(max_poll_us < 200 * 1000);
	fprintf(stderr, "test_push: %.1f s, longest push__poll %.1f ms\n",
		(double)(mono_us() - t0) / 1e6, (double)max_poll_us / 1e3);
	nftw(tmp_root, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	return T_DONE();
}
