/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * test_httpd.c - httpd parsers, and the server over real loopback sockets.
 *
 * The server is single-threaded, so the test drives it from its own thread: client sockets are
 * non-blocking, and every wait loop calls httpd__poll() between attempts, with a deadline so that
 * a bug fails a check instead of hanging.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "httpd.h"
#include "log.h"
#include "util.h"

#define WAIT_MS 5000 /* upper bound for any single wait */

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void nap(void)
{
	struct timespec ts = { 0, 1000000 };

	nanosleep(&ts, NULL);
}

/* Poll the server for about ms milliseconds. */
static void pump(struct httpd *h, unsigned int ms)
{
	uint64_t end = mono_ms() + ms;

	do {
		T_CHECK_EQ_INT(httpd__poll(h), 0);
		nap();
	} while (mono_ms() < end);
}

/* ---- a tiny non-blocking HTTP client ---- */

struct client {
	int fd;
	struct strbuf in; /* bytes received and not yet consumed */
	bool eof;	  /* peer closed or reset */
};

struct reply {
	int status;	 /* 0 when the connection closed before a full reply */
	char head[8192]; /* status line and headers, NUL-terminated */
	struct strbuf body;
};

static void client_close(struct client *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	strbuf_release(&c->in);
}

/*
 * Connect to addr:port (numeric, "127.0.0.1" or "::1"), polling h until done. rcvbuf > 0 sets
 * SO_RCVBUF first, so that a client that does not read stalls the server's send quickly.
 */
static bool client_open_rcvbuf(struct httpd *h, struct client *c, const char *addr, uint16_t port,
			       int rcvbuf)
{
	struct sockaddr_storage ss;
	socklen_t len;
	uint64_t end = mono_ms() + WAIT_MS;
	int err = 0;

	memset(c, 0, sizeof(*c));
	strbuf_init(&c->in, 0);
	memset(&ss, 0, sizeof(ss));
	if (strchr(addr, ':')) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(port);
		inet_pton(AF_INET6, addr, &s6->sin6_addr);
		len = sizeof(*s6);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;

		s4->sin_family = AF_INET;
		s4->sin_port = htons(port);
		inet_pton(AF_INET, addr, &s4->sin_addr);
		len = sizeof(*s4);
	}
	c->fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd < 0)
		return false;
	if (rcvbuf > 0 && setsockopt(c->fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf)))
		goto fail;
	if (connect(c->fd, (struct sockaddr *)&ss, len) == 0)
		return true;
	if (errno != EINPROGRESS)
		goto fail;
	while (mono_ms() < end) {
		struct pollfd pfd = { .fd = c->fd, .events = POLLOUT };
		socklen_t elen = sizeof(err);

		T_CHECK_EQ_INT(httpd__poll(h), 0);
		if (poll(&pfd, 1, 1) == 1) {
			if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &elen) || err)
				goto fail;
			return true;
		}
	}
fail:
	client_close(c);
	return false;
}

static bool client_open(struct httpd *h, struct client *c, const char *addr, uint16_t port)
{
	return client_open_rcvbuf(h, c, addr, port, 0);
}

/* Read what is available into c->in: 1 got bytes, 0 nothing yet, -1 closed or reset. */
static int client_fill(struct client *c)
{
	char buf[65536];
	ssize_t n;

	if (c->eof)
		return -1;
	n = recv(c->fd, buf, sizeof(buf), 0);
	if (n > 0) {
		T_CHECK_EQ_INT(strbuf_add(&c->in, buf, (size_t)n), 0);
		return 1;
	}
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return 0;
	c->eof = true;
	return -1;
}

/* Send all of data, polling h. False when the server closed or reset the connection. */
static bool client_send(struct httpd *h, struct client *c, const void *data, size_t len)
{
	const char *p = data;
	uint64_t end = mono_ms() + WAIT_MS;

	while (len && mono_ms() < end) {
		ssize_t n = send(c->fd, p, len, MSG_NOSIGNAL);

		if (n > 0) {
			p += n;
			len -= (size_t)n;
			continue;
		}
		if (n < 0 && errno != EAGAIN && errno != EINTR)
			return false;
		T_CHECK_EQ_INT(httpd__poll(h), 0);
		client_fill(c); /* keep our receive side drained, as a real client would */
		nap();
	}
	return len == 0;
}

static bool client_sends(struct httpd *h, struct client *c, const char *s)
{
	return client_send(h, c, s, strlen(s));
}

/* Value of header name in r (case-insensitive), copied into out; NULL when absent. */
static const char *reply_header(const struct reply *r, const char *name, char *out, size_t outlen)
{
	const char *p = strstr(r->head, "\r\n");
	size_t nlen = strlen(name);

	while (p && p[2]) {
		const char *line = p + 2, *eol = strstr(line, "\r\n");

		if (!eol)
			eol = line + strlen(line);
		if ((size_t)(eol - line) > nlen && strncasecmp(line, name, nlen) == 0 &&
		    line[nlen] == ':') {
			const char *v = line + nlen + 1;
			size_t vlen;

			while (*v == ' ')
				v++;
			vlen = (size_t)(eol - v);
			if (vlen >= outlen)
				vlen = outlen - 1;
			memcpy(out, v, vlen);
			out[vlen] = '\0';
			return out;
		}
		p = *eol ? eol : NULL;
	}
	return NULL;
}

/*
 * Read one reply (the body skipped for HEAD) into r, polling h. Consumes exactly its bytes from
 * c->in, so pipelined replies can be read one after another. Returns r->status (0 when the
 * connection closed first or the wait timed out).
 */
static int client_reply(struct httpd *h, struct client *c, bool head, struct reply *r)
{
	uint64_t end = mono_ms() + WAIT_MS;
	const char *hdr_end = NULL;
	size_t hlen = 0, blen = 0;
	bool have_len = false;
	char cl[32];

	memset(r, 0, sizeof(*r));
	strbuf_init(&r->body, 0);
	for (;;) {
		hdr_end = c->in.buf ? strstr(c->in.buf, "\r\n\r\n") : NULL;
		if (hdr_end) {
			hlen = (size_t)(hdr_end - c->in.buf) + 4;
			if (hlen < sizeof(r->head)) {
				memcpy(r->head, c->in.buf, hlen);
				r->head[hlen] = '\0';
			}
			have_len = reply_header(r, "Content-Length", cl, sizeof(cl)) != NULL;
			blen = have_len && !head ? strtoul(cl, NULL, 10) : 0;
			if (have_len && c->in.len >= hlen + blen)
				break;
		}
		if (c->eof) {
			if (hdr_end && !have_len) {
				blen = c->in.len - hlen; /* body delimited by close */
				break;
			}
			return 0;
		}
		if (mono_ms() > end)
			return 0;
		T_CHECK_EQ_INT(httpd__poll(h), 0);
		if (client_fill(c) == 0)
			nap();
	}
	if (sscanf(r->head, "HTTP/1.%*d %d", &r->status) != 1)
		r->status = -1;
	T_CHECK_EQ_INT(strbuf_add(&r->body, c->in.buf + hlen, blen), 0);
	memmove(c->in.buf, c->in.buf + hlen + blen, c->in.len - hlen - blen);
	strbuf_setlen(&c->in, c->in.len - hlen - blen);
	return r->status;
}

/* Wait until the server closes c (true) or ms pass (false), polling h if non-NULL. */
static bool client_wait_close(struct httpd *h, struct client *c, unsigned int ms)
{
	uint64_t end = mono_ms() + ms;

	while (mono_ms() < end) {
		if (h)
			T_CHECK_EQ_INT(httpd__poll(h), 0);
		while (client_fill(c) > 0)
			strbuf_reset(&c->in);
		if (c->eof)
			return true;
		nap();
	}
	return false;
}

/* One request on a fresh connection; returns the status (0: closed without reply). */
static int exchange(struct httpd *h, const char *req, bool head, struct reply *r)
{
	struct client c;
	int st;

	if (!client_open(h, &c, "127.0.0.1", httpd__port(h))) {
		memset(r, 0, sizeof(*r));
		strbuf_init(&r->body, 0);
		return -1;
	}
	client_sends(h, &c, req);
	st = client_reply(h, &c, head, r);
	client_close(&c);
	return st;
}

static void reply_release(struct reply *r)
{
	strbuf_release(&r->body);
}

/* ---- the test handler ---- */

struct tctx {
	unsigned int calls;
	unsigned int bad_body; /* requests whose body fields broke the contract */
};

static void handler(void *ctx, const struct httpd_request *req, struct httpd_response *resp)
{
	struct tctx *t = ctx;
	const char *v;

	t->calls++;
	if (strcmp(req->method, "POST") == 0 ? !req->body || req->body[req->body_len] != '\0'
					     : req->body || req->body_len)
		t->bad_body++;
	if (strcmp(req->path, "/body") == 0) {
		/* echo the body as is, NULs included */
		snprintf(resp->extra_headers, sizeof(resp->extra_headers), "X-Method: %s\r\n",
			 req->method);
		httpd_response_add(resp, req->body, req->body_len);
		return;
	}
	if (strcmp(req->path, "/reqhdr") == 0) {
		const char *a = httpd_header(req, "authorization");
		const char *ct = httpd_header(req, "CONTENT-TYPE");
		const char *none = httpd_header(req, "X-None");

		httpd_response_addf(resp, "auth=%s\nctype=%s\nnone=%s\nlen=%zu\n", a ? a : "-",
				    ct ? ct : "-", none ? none : "-", req->body_len);
		return;
	}
	if (strcmp(req->path, "/big") == 0) {
		uint64_t n = 0, i;
		char chunk[4096];

		v = httpd_arg(req, "n");
		if (!v || parse_u64(v, 0, UINT64_MAX, &n)) {
			resp->status = 400;
			httpd_response_addf(resp, "bad n\n");
			return;
		}
		for (i = 0; i < sizeof(chunk); i++)
			chunk[i] = (char)('a' + i % 26);
		for (i = 0; i < n; i += sizeof(chunk)) {
			size_t k = n - i < sizeof(chunk) ? (size_t)(n - i) : sizeof(chunk);

			if (httpd_response_add(resp, chunk, k))
				return; /* err is sticky: httpd turns it into a 500 */
		}
		return;
	}
	if (strcmp(req->path, "/status") == 0) {
		uint32_t code = 0;

		v = httpd_arg(req, "code");
		if (v && parse_u32(v, 0, 999, &code) == 0)
			resp->status = (int)code;
		httpd_response_addf(resp, "status %u\n", code);
		return;
	}
	if (strcmp(req->path, "/hdr") == 0) {
		snprintf(resp->extra_headers, sizeof(resp->extra_headers),
			 "X-Pysamp-From: test-host\r\nX-Two:  2 ");
		resp->content_type = "application/json";
		httpd_response_addf(resp, "{}\n");
		return;
	}
	if (strcmp(req->path, "/badhdr") == 0) {
		v = httpd_arg(req, "h");
		snprintf(resp->extra_headers, sizeof(resp->extra_headers), "%s", v ? v : "");
		httpd_response_addf(resp, "never sent\n");
		return;
	}
	if (strcmp(req->path, "/fail") == 0) {
		httpd_response_addf(resp, "partial");
		resp->err = -EIO;
		return;
	}
	httpd_response_addf(resp, "method=%s\npath=%s\n", req->method, req->path);
	for (size_t i = 0; i < req->nargs; i++)
		httpd_response_addf(resp, "arg=%s=%s\n", req->args[i].key, req->args[i].value);
	httpd_response_addf(resp, "peer=%s\n", req->peer);
}

static struct httpd *start(const struct httpd_opts *base, struct tctx *t)
{
	struct httpd_opts o = *base;
	char err[256];
	struct httpd *h;

	o.handler = handler;
	o.ctx = t;
	if (!o.listen)
		o.listen = "127.0.0.1:0";
	h = httpd__new(&o, err, sizeof(err));
	if (!h)
		fprintf(stderr, "httpd__new(%s): %s\n", o.listen, err);
	return h;
}

/* ---- parsers ---- */

static void check_listen_ok(const char *spec, int family, const char *addr, uint16_t port)
{
	struct sockaddr_storage ss;
	socklen_t len = 0;
	char buf[HTTPD_ADDRSTRLEN], want[HTTPD_ADDRSTRLEN];

	T_CHECK_EQ_INT(httpd_parse_listen(spec, &ss, &len), 0);
	T_CHECK_EQ_INT(ss.ss_family, family);
	T_CHECK_EQ_INT(len, family == AF_INET ? sizeof(struct sockaddr_in)
					      : sizeof(struct sockaddr_in6));
	T_CHECK_EQ_INT(httpd_format_addr((struct sockaddr *)&ss, buf, sizeof(buf)), 0);
	snprintf(want, sizeof(want), family == AF_INET ? "%s:%u" : "[%s]:%u", addr, port);
	T_CHECK_EQ_STR(buf, want);
}

static void test_parse_listen(void)
{
	static const char *const bad[] = {
		"1.2.3.4:99999",
		"abc:1",
		":",
		"",
		"[::1",
		"[::1]",
		"[::1]:",
		"[]:80",
		"::1:80",
		"1.2.3.4",
		"1.2.3.4:",
		"1.2.3:80",
		"-1",
		"+80",
		" 80",
		"80 ",
		"1.2.3.4:8a",
		"1.2.3.4:-1",
		"[fe80::1%lo]:80",
		"localhost",
		"[1.2.3.4]:80",
		"host.example:80",
		"1.2.3.4:80:90",
		"[::1]x:80",
		"65536",
		"0x50",
		"256.1.1.1:80",
		"[::1]:80]",
		"1.2.3.4 :80",
	};
	struct sockaddr_storage ss;
	socklen_t len = 77;

	check_listen_ok("127.0.0.1:8080", AF_INET, "127.0.0.1", 8080);
	check_listen_ok("0.0.0.0:0", AF_INET, "0.0.0.0", 0);
	check_listen_ok("10.1.2.3:65535", AF_INET, "10.1.2.3", 65535);
	check_listen_ok("[::1]:9", AF_INET6, "::1", 9);
	check_listen_ok("[::]:80", AF_INET6, "::", 80);
	check_listen_ok("[2001:db8::7]:443", AF_INET6, "2001:db8::7", 443);
	check_listen_ok(":9090", AF_INET, "127.0.0.1", 9090);
	check_listen_ok("9090", AF_INET, "127.0.0.1", 9090);
	check_listen_ok("007", AF_INET, "127.0.0.1", 7);
	check_listen_ok("localhost:1", AF_INET, "127.0.0.1", 1);

	memset(&ss, 0xa5, sizeof(ss));
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int err = httpd_parse_listen(bad[i], &ss, &len);

		if (err != -EINVAL)
			fprintf(stderr, "parse_listen(\"%s\") = %d\n", bad[i], err);
		T_CHECK_EQ_INT(err, -EINVAL);
	}
	T_CHECK_EQ_INT(httpd_parse_listen(NULL, &ss, &len), -EINVAL);
	/* outputs untouched on failure */
	T_CHECK_EQ_INT(len, 77);
	T_CHECK_EQ_INT(((unsigned char *)&ss)[0], 0xa5);
}

static void test_format_addr(void)
{
	struct sockaddr_storage ss;
	struct sockaddr_un un = { .sun_family = AF_UNIX, .sun_path = "x" };
	socklen_t len;
	char buf[HTTPD_ADDRSTRLEN];

	T_CHECK_EQ_INT(
		httpd_parse_listen("[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535", &ss, &len),
		0);
	T_CHECK_EQ_INT(httpd_format_addr((struct sockaddr *)&ss, buf, sizeof(buf)), 0);
	T_CHECK_EQ_STR(buf, "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535");
	/* too small: -ENOSPC and an empty string */
	T_CHECK_EQ_INT(httpd_format_addr((struct sockaddr *)&ss, buf, 10), -ENOSPC);
	T_CHECK_EQ_STR(buf, "");
	T_CHECK_EQ_INT(httpd_parse_listen("1.2.3.4:5", &ss, &len), 0);
	T_CHECK_EQ_INT(httpd_format_addr((struct sockaddr *)&ss, buf, 9), -ENOSPC);
	T_CHECK_EQ_INT(httpd_format_addr((struct sockaddr *)&ss, buf, 10), 0);
	T_CHECK_EQ_STR(buf, "1.2.3.4:5");
	T_CHECK_EQ_INT(httpd_format_addr((struct sockaddr *)&un, buf, sizeof(buf)), -EAFNOSUPPORT);
}

/* Parse target and render "path|k=v|k=v" into out (or "E<errno>"). */
static void target_str(const char *target, size_t maxargs, char *out, size_t outlen)
{
	struct httpd_arg args[8];
	char buf[512];
	const char *path = NULL;
	size_t n = 99, o;
	int err;

	err = httpd_parse_target(target, buf, sizeof(buf), &path, args, maxargs, &n);
	if (err) {
		snprintf(out, outlen, "E%d", -err);
		return;
	}
	o = (size_t)snprintf(out, outlen, "%s", path);
	for (size_t i = 0; i < n && o < outlen; i++)
		o += (size_t)snprintf(out + o, outlen - o, "|%s=%s", args[i].key, args[i].value);
}

static void check_target(const char *target, const char *want)
{
	char got[512];

	target_str(target, 8, got, sizeof(got));
	if (strcmp(got, want) != 0)
		fprintf(stderr, "parse_target(\"%s\")\n", target);
	T_CHECK_EQ_STR(got, want);
}

static void test_parse_target(void)
{
	char e_inval[16], e_2big[16], got[64], small[4];
	struct httpd_arg args[2];
	const char *path;
	size_t n;

	snprintf(e_inval, sizeof(e_inval), "E%d", EINVAL);
	snprintf(e_2big, sizeof(e_2big), "E%d", E2BIG);

	check_target("/", "/");
	check_target("/metrics", "/metrics");
	check_target("/a%20b/c+d", "/a b/c+d"); /* '+' stays in the path */
	check_target("/%2F%2f", "///");
	check_target("/?", "/");
	check_target("/?a=1&b=x+y&c=%26%3D&a=2&flag&empty=&&=v&&",
		     "/|a=1|b=x y|c=&=|a=2|flag=|empty=|=v");
	check_target("/p?k=v=w", "/p|k=v=w");
	check_target("/p?%41%62=%7e", "/p|Ab=~");
	check_target("/p?a#frag", "/p|a#frag=");
	check_target("/\xc3\xa9?\xc3\xa9=1", "/\xc3\xa9|\xc3\xa9=1");
	check_target("http://example.com/abs?x=1", "/abs|x=1");
	check_target("HTTPS://h:8080", "/");
	check_target("http://h?q=1", "/|q=1");
	check_target("", e_inval);
	check_target("*", e_inval);
	check_target("metrics", e_inval);
	check_target("http://", e_inval);
	check_target("http:///x", e_inval);
	check_target("/a b", e_inval);
	check_target("/a\tb", e_inval);
	check_target("/a\x7f", e_inval);
	check_target("/?a=\x01", e_inval);
	check_target("/%", e_inval);
	check_target("/%4", e_inval);
	check_target("/%zz", e_inval);
	check_target("/?a=%g0", e_inval);
	check_target("/%00", e_inval);
	check_target("/?a=%00", e_inval);
	check_target("http://h\x01/x", e_inval);

	/* maxargs: exactly enough, one short, zero */
	target_str("/?a&b", 2, got, sizeof(got));
	T_CHECK_EQ_STR(got, "/|a=|b=");
	target_str("/?a&b&c", 2, got, sizeof(got));
	T_CHECK_EQ_STR(got, e_2big);
	target_str("/?a", 0, got, sizeof(got));
	T_CHECK_EQ_STR(got, e_2big);
	target_str("/?&&", 0, got, sizeof(got));
	T_CHECK_EQ_STR(got, "/");

	/* buf must hold strlen(target) + 1 */
	T_CHECK_EQ_INT(httpd_parse_target("/abcd", small, sizeof(small), &path, args, 2, &n),
		       -ENOSPC);
	T_CHECK_EQ_INT(httpd_parse_target("/abc", small, sizeof(small), &path, args, 2, &n),
		       -ENOSPC);
	{
		char fit[5];

		T_CHECK_EQ_INT(httpd_parse_target("/?ab", fit, sizeof(fit), &path, args, 2, &n), 0);
		T_CHECK_EQ_STR(path, "/");
		T_CHECK_EQ_INT(n, 1);
		T_CHECK_EQ_STR(args[0].key, "ab");
		T_CHECK_EQ_INT(httpd_parse_target("/?a=b", fit, sizeof(fit), &path, args, 2, &n),
			       -ENOSPC);
	}
	T_CHECK_EQ_INT(httpd_parse_target(NULL, small, sizeof(small), &path, args, 2, &n), -EINVAL);
}

static void test_helpers(void)
{
	struct httpd_arg a[] = { { "x", "1" }, { "flag", "" }, { "x", "2" } };
	struct httpd_request req = { .args = a, .nargs = 3 };
	struct httpd_response resp = { .status = 200 };

	T_CHECK_EQ_STR(httpd_arg(&req, "x"), "1");
	T_CHECK_EQ_STR(httpd_arg(&req, "flag"), "");
	T_CHECK(httpd_arg(&req, "y") == NULL);
	T_CHECK(httpd_arg(&req, "X") == NULL);
	req.nargs = 0;
	T_CHECK(httpd_arg(&req, "x") == NULL);
	/* not made by httpd: no headers */
	T_CHECK(httpd_header(&req, "Host") == NULL);
	T_CHECK(httpd_header(NULL, "Host") == NULL);

	strbuf_init(&resp.body, 5);
	T_CHECK_EQ_INT(httpd_response_add(&resp, "abc", 3), 0);
	T_CHECK_EQ_INT(httpd_response_addf(&resp, "%s", "def"), -E2BIG);
	T_CHECK_EQ_INT(resp.err, -E2BIG);
	/* sticky: even an append that would fit is refused now */
	T_CHECK_EQ_INT(httpd_response_add(&resp, "x", 1), -E2BIG);
	T_CHECK_EQ_INT(resp.body.len, 3);
	T_CHECK_EQ_STR(resp.body.buf, "abc");
	strbuf_release(&resp.body);
}

/* ---- server ---- */

static void test_new_errors(void)
{
	struct httpd_opts o = { 0 };
	struct tctx t = { 0 };
	struct httpd *h, *h2;
	char err[256], want[128];

	errno = 0;
	T_CHECK(httpd__new(&o, err, sizeof(err)) == NULL); /* no handler */
	T_CHECK_EQ_INT(errno, EINVAL);
	T_CHECK_EQ_STR(err, "no request handler");

	o.handler = handler;
	o.listen = "abc";
	T_CHECK(httpd__new(&o, err, sizeof(err)) == NULL);
	T_CHECK_EQ_INT(errno, EINVAL);
	T_CHECK(strstr(err, "invalid listen address \"abc\"") == err);

	o.listen = "127.0.0.1:0";
	o.max_args = 5000;
	T_CHECK(httpd__new(&o, err, sizeof(err)) == NULL);
	T_CHECK_EQ_INT(errno, EINVAL);
	o.max_args = 0;
	o.max_request_bytes = 2 * 1024 * 1024;
	T_CHECK(httpd__new(&o, NULL, 0) == NULL);
	T_CHECK_EQ_INT(errno, EINVAL);
	o.max_request_bytes = 0;

	/* a port already in use */
	h = start(&o, &t);
	T_CHECK(h != NULL);
	if (!h)
		return;
	T_CHECK(httpd__port(h) != 0);
	snprintf(want, sizeof(want), "127.0.0.1:%u", httpd__port(h));
	o.listen = want;
	o.handler = handler;
	errno = 0;
	h2 = httpd__new(&o, err, sizeof(err));
	T_CHECK(h2 == NULL);
	T_CHECK_EQ_INT(errno, EADDRINUSE);
	snprintf(want, sizeof(want), "cannot listen on 127.0.0.1:%u: Address already in use",
		 httpd__port(h));
	T_CHECK_EQ_STR(err, want);
	httpd__free(h2);
	httpd__free(h);
	httpd__free(NULL);
	T_CHECK_EQ_INT(httpd__poll(NULL), -EINVAL);
}

/* Expected echo body for a request from client c. */
static void echo_want(const struct client *c, const char *method, const char *path,
		      const char *args, char *out, size_t outlen)
{
	struct sockaddr_in me;
	socklen_t len = sizeof(me);
	char peer[HTTPD_ADDRSTRLEN] = "";

	if (getsockname(c->fd, (struct sockaddr *)&me, &len) == 0)
		T_CHECK_EQ_INT(httpd_format_addr((struct sockaddr *)&me, peer, sizeof(peer)), 0);
	snprintf(out, outlen, "method=%s\npath=%s\n%speer=%s\n", method, path, args, peer);
}

static struct httpd_stats stats_of(const struct httpd *h)
{
	return *httpd__stats(h);
}

static void test_get_head(struct httpd *h)
{
	struct httpd_stats s0 = stats_of(h), s1;
	struct client c;
	struct reply r, r2;
	char want[1024], v[128], len_head[32];

	T_CHECK(client_open(h, &c, "127.0.0.1", httpd__port(h)));
	T_CHECK(client_sends(h, &c,
			     "GET /echo%20path?a=1&b=x+y&c=%26%3D&a=2&flag&empty=&&=v HTTP/1.1\r\n"
			     "Host: t\r\n\r\n"));
	T_CHECK_EQ_INT(client_reply(h, &c, false, &r), 200);
	echo_want(&c, "GET", "/echo path",
		  "arg=a=1\narg=b=x y\narg=c=&=\narg=a=2\narg=flag=\narg=empty=\narg==v\n", want,
		  sizeof(want));
	T_CHECK_EQ_STR(r.body.buf, want);
	T_CHECK_EQ_STR(reply_header(&r, "Content-Type", v, sizeof(v)), "text/plain; charset=utf-8");
	snprintf(want, sizeof(want), "%zu", r.body.len);
	T_CHECK_EQ_STR(reply_header(&r, "Content-Length", v, sizeof(v)), want);
	T_CHECK(reply_header(&r, "Connection", v, sizeof(v)) == NULL); /* keep-alive */
	reply_release(&r);

	/* HEAD then GET pipelined on the same connection: the GET reply must start right after
	 * the HEAD headers, so the HEAD reply had no body; lengths agree. */
	T_CHECK(client_sends(h, &c,
			     "HEAD /x?k=v HTTP/1.1\r\nHost: t\r\n\r\n"
			     "GET /x?k=v HTTP/1.1\r\nHost: t\r\n\r\n"));
	T_CHECK_EQ_INT(client_reply(h, &c, true, &r), 200);
	T_CHECK_EQ_INT(r.body.len, 0);
	T_CHECK(reply_header(&r, "Content-Length", len_head, sizeof(len_head)) != NULL);
	T_CHECK_EQ_INT(client_reply(h, &c, false, &r2), 200);
	echo_want(&c, "GET", "/x", "arg=k=v\n", want, sizeof(want));
	T_CHECK_EQ_STR(r2.body.buf, want);
	/* the handler saw "HEAD", which is one byte longer than "GET" */
	T_CHECK_EQ_INT(strtoul(len_head, NULL, 10), r2.body.len + 1);
	reply_release(&r);
	reply_release(&r2);
	T_CHECK(c.in.len == 0);
	client_close(&c);

	pump(h, 20);
	s1 = stats_of(h);
	T_CHECK_EQ_INT(s1.connections - s0.connections, 1);
	T_CHECK_EQ_INT(s1.requests - s0.requests, 3);
	T_CHECK_EQ_INT(s1.responses_2xx - s0.responses_2xx, 3);
	T_CHECK_EQ_INT(s1.responses_4xx - s0.responses_4xx, 0);
}

static void test_keepalive_and_http10(struct httpd *h)
{
	struct httpd_stats s0 = stats_of(h), s1;
	struct client c;
	struct reply r;
	char v[64];

	T_CHECK(client_open(h, &c, "127.0.0.1", httpd__port(h)));
	for (int i = 0; i < 3; i++) {
		T_CHECK(client_sends(h, &c, "GET /status?code=200 HTTP/1.1\r\nHost: t\r\n\r\n"));
		T_CHECK_EQ_INT(client_reply(h, &c, false, &r), 200);
		T_CHECK_EQ_STR(r.body.buf, "status 200\n");
		T_CHECK(reply_header(&r, "Connection", v, sizeof(v)) == NULL);
		reply_release(&r);
	}
	/* the connection is still open */
	pump(h, 30);
	client_fill(&c);
	T_CHECK(!c.eof);
	client_close(&c);

	/* HTTP/1.0 without keep-alive: served, then closed */
	T_CHECK(client_open(h, &c, "127.0.0.1", httpd__port(h)));
	T_CHECK(client_sends(h, &c, "GET /status?code=201 HTTP/1.0\r\n\r\n"));
	T_CHECK_EQ_INT(client_reply(h, &c, false, &r), 201);
	T_CHECK_EQ_STR(r.body.buf, "status 201\n");
	T_CHECK(client_wait_close(h, &c, WAIT_MS));
	reply_release(&r);
	client_close(&c);

	pump(h, 20);
	s1 = stats_of(h);
	T_CHECK_EQ_INT(s1.connections - s0.connections, 2);
	T_CHECK_EQ_INT(s1.requests - s0.requests, 4);
	T_CHECK_EQ_INT(s1.responses_2xx - s0.responses_2xx, 4);
}

static void test_methods(struct httpd *h)
{
	static const char *const methods[] = { "POST", "PUT", "DELETE", "OPTIONS", "get", "BREW" };
	struct httpd_stats s0 = stats_of(h), s1;
	struct client c;
	struct reply r;
	char req[128], v[64];
	uint64_t t0;

	/* Without a body: 405 with Allow, and the connection stays usable. */
	T_CHECK(client_open(h, &c, "127.0.0.1", httpd__port(h)));
	for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
		snprintf(req, sizeof(req), "%s /x HTTP/1.1\r\nHost: t\r\n\r\n", methods[i]);
		T_CHECK(client_sends(h, &c, req));
		T_CHECK_EQ_INT(client_reply(h, &c, false, &r), 405);
		T_CHECK_EQ_STR(reply_header(&r, "Allow", v, sizeof(v)), "GET, HEAD");
		T_CHECK_EQ_STR(r.body.buf, "method not allowed: use GET or HEAD\n");
		T_CHECK(reply_header(&r, "Connection", v, sizeof(v)) == NULL);
		reply_release(&r);
	}
	client_close(&c);

	/* POST announcing 10 GB that it never sends, even with Expect: the 405 comes at once,
	 * without a 100 Continue and without reading a body, and the connection is closed. */
	T_CHECK(client_open(h, &c, "127.0.0.1", httpd__port(h)));
	t0 = mono_ms();
	T_CHECK(client_sends(h, &c,
			     "POST /x HTTP/1.1\r\nHost: t\r\nContent-Length: 10000000000\r\n"
			     "Expect: 100-continue\r\n\r\n"));
	T_CHECK_EQ_INT(client_reply(h, &c, false, &r), 405);
	T_CHECK(mono_ms() - t0 < 1000);
	T_CHECK(strncmp(r.head, "HTTP/1.1 405", 12) == 0); /* not "100 Continue" */
	T_CHECK_EQ_STR(reply_header(&r, "Allow", v, sizeof(v)), "GET, HEAD");
	T_CHECK_EQ_STR(reply_header(&r, "Connection", v, sizeof(v)), "close");
	T_CHECK(client_wait_close(h, &c, WAIT_MS));
	reply_release(&r);
	client_close(&c);

	/* PUT with a small body sent along */
	T_CHECK_EQ_INT(exchange(h, "PUT /x HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello",
				false, &r),
		       405);
	reply_release(&r);

	/* GET with a body, by length and chunked: 413, connection closed */
	T_CHECK(client_open(h, &c, "127.0.0.1", httpd__port(h)));
	T_CHECK(client_sends(h, &c, "GET / HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabc"));
	T_CHECK_EQ_INT(client_reply(h, &c, false, &r), 413);
	T_CHECK_EQ_STR(r.body.buf, "request body not accepted: send GET or HEAD without a body\n");
	T_CHECK_EQ_STR(reply_header(&r, "Connection", v, sizeof(v)), "close");
	T_CHECK(client_wait_close(h, &c, WAIT_MS));
	reply_release(&r);
	client_close(&c);
	T_CHECK_EQ_INT(exchange(h,
				"GET / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
				"5\r\nhello\r\n0\r\n\r\n",
				false, &r),
		       413);
	reply_release(&r);
	/* Content-Length: 0 is no body */
	T_CHECK_EQ_INT(
		exchange(h, "GET /status?code=200 HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n",
			 false, &r),
		200);
	reply_release(&r);

	pump(h, 20);
	s1 = stats_of(h);
	T_CHECK_EQ_INT(s1.rejected_method - s0.rejected_method, 8);
	T_CHECK_EQ_INT(s1.rejected_size - s0.rejected_size, 2);
	T_CHECK_EQ_INT(s1.responses_4xx - s0.responses_4xx, 10);
	T_CHECK_EQ_INT(s1.responses_2xx - s0.responses_2xx, 1);
	T_CHECK_EQ_INT(s1.requests - s0.requests, 11);
}

static void test_limits(struct httpd *h, struct tctx *t)
{
	struct httpd_stats s0 = stats_of(h), s1;
	struct strbuf req;
	struct client c;
	struct reply r;
	unsigned int calls0 = t->calls;
	bool sent;
	int st;

	strbuf_init(&req, 0);

	/* 20 KiB target: over max_request_bytes (16 KiB) but within the pool -> our exact 414 */
	T_CHECK_EQ_INT(strbuf_add(&req, "GET /", 5), 0);
	for (int i = 0; i < 20 * 1024; i++)
		T_CHECK_EQ_INT(strbuf_add(&req, "a", 1), 0);
	T_CHECK_EQ_INT(strbuf_addf(&req, " HTTP/1.1\r\nHost: t\r\n\r\n"), 0);
	T_CHECK_EQ_INT(exchange(h, req.buf, false, &r), 414);
	T_CHECK_EQ_STR(r.body.buf, "request target too long\n");
	reply_release(&r);

	/* 20 KiB of headers -> our 431 */
	strbuf_reset(&req);
	T_CHECK_EQ_INT(strbuf_addf(&req, "GET / HTTP/1.1\r\nHost: t\r\n"), 0);
	for (int i = 0; i < 20; i++) {
		T_CHECK_EQ_INT(strbuf_addf(&req, "X-Pad-%d: ", i), 0);
		for (int j = 0; j < 1000; j++)
			T_CHECK_EQ_INT(strbuf_add(&req, "b", 1), 0);
		T_CHECK_EQ_INT(strbuf_add(&req, "\r\n", 2), 0);
	}
	T_CHECK_EQ_INT(strbuf_add(&req, "\r\n", 2), 0);
	T_CHECK_EQ_INT(exchange(h, req.buf, false, &r), 431);
	T_CHECK_EQ_STR(r.body.buf, "request headers too large\n");
	reply_release(&r);

	/* 100 KiB target: libmicrohttpd's own 414, or a closed connection */
	strbuf_reset(&req);
	T_CHECK_EQ_INT(strbuf_add(&req, "GET /?", 6), 0);
	for (int i = 0; i < 100 * 1024 / 2; i++)
		T_CHECK_EQ_INT(strbuf_add(&req, "a&", 2), 0);
	T_CHECK_EQ_INT(strbuf_addf(&req, " HTTP/1.1\r\nHost: t\r\n\r\n"), 0);
	T_CHECK(client_open(h, &c, "127.0.0.1", httpd__port(h)));
	sent = client_send(h, &c, req.buf, req.len);
	st = client_reply(h, &c, false, &r);
	if (st)
		T_CHECK(st == 414 || st == 431 || st == 400);
	else
		T_CHECK(c.eof);
	T_CHECK(client_wait_close(h, &c, WAIT_MS));
	printf("test_httpd: 100 KiB target: status %d (0: closed), request fully sent: %d\n", st,
	       sent);
	reply_release(&r);
	client_close(&c);

	/* 200 KiB of header lines: same */
	strbuf_reset(&req);
	T_CHECK_EQ_INT(strbuf_addf(&req, "GET / HTTP/1.1\r\nHost: t\r\n"), 0);
	for (int i = 0; i < 20000; i++)
		T_CHECK_EQ_INT(strbuf_addf(&req, "A%d: b\r\n", i), 0);
	T_CHECK_EQ_INT(strbuf_add(&req, "\r\n", 2), 0);
	T_CHECK(client_open(h, &c, "127.0.0.1", httpd__port(h)));
	client_send(h, &c, req.buf, req.len);
	st = client_reply(h, &c, false, &r);
	if (st)
		T_CHECK(st == 431 || st == 400);
	else
		T_CHECK(c.eof);
	T_CHECK(client_wait_close(h, &c, WAIT_MS));
	reply_release(&r);
	client_close(&c);

	/* max_args (16): 16 pass, 17 -> 400 */
	strbuf_reset(&req);
	T_CHECK_EQ_INT(strbuf_addf(&req, "GET /?"), 0);
	for (int i = 0; i < 16; i++)
		T_CHECK_EQ_INT(strbuf_addf(&req, "k%d=%d&", i, i), 0);
	T_CHECK_EQ_INT(strbuf_addf(&req, " HTTP/1.1\r\nHost: t\r\n\r\n"), 0);
	T_CHECK_EQ_INT(exchange(h, req.buf, false, &r), 200);
	T_CHECK(strstr(r.body.buf, "arg=k15=15\n") != NULL);
	reply_release(&r);
	strbuf_reset(&req);
	T_CHECK_EQ_INT(strbuf_addf(&req, "GET /?"), 0);
	for (int i = 0; i < 17; i++)
		T_CHECK_EQ_INT(strbuf_addf(&req, "k%d&", i), 0);
	T_CHECK_EQ_INT(strbuf_addf(&req, " HTTP/1.1\r\nHost: t\r\n\r\n"), 0);
	T_CHECK_EQ_INT(exchange(h, req.buf, false, &r), 400);
	T_CHECK_EQ_STR(r.body.buf, "too many query arguments (max 16)\n");
	reply_release(&r);

	/* the server still works */
	T_CHECK_EQ_INT(exchange(h, "GET /after HTTP/1.1\r\nHost: t\r\n\r\n", false, &r), 200);
	T_CHECK(strncmp(r.body.buf, "method=GET\npath=/after\n", 23) == 0);
	reply_release(&r);
	strbuf_release(&req);

	pump(h, 20);
	s1 = stats_of(h);
	/* 414 + 431 ours, 17 args; the two huge ones counted if a request line was read */
	T_CHECK(s1.rejected_size - s0.rejected_size >= 3);
	T_CHECK(s1.rejected_size - s0.rejected_size <= 5);
	T_CHECK_EQ_INT(s1.responses_2xx - s0.responses_2xx, 2);
	T_CHECK_EQ_INT(t->calls - calls0, 2); /* the handler saw only the two good ones */
	T_CHECK_EQ_INT(s1.connections - s0.connections, 7);
}

#define J(s)                                                                                       \
	{                                                                                          \
		s, sizeof(s) - 1                                                                   \
	}

static void test_malformed(struct httpd *h)
{
	static const struct {
		const char *data;
		size_t len;
	} junk[] = {
		J("\x00\xff\r\n\r\n"),
		J("GET\r\n\r\n"),
		J("GET / HTTP/1.1\r\n\r\n"), /* no Host */
		J("GET / HTTP/9.9\r\nHost: t\r\n\r\n"),
		J("GET / HTTP/1.1\r\nHost: t\r\nno colon\r\n\r\n"),
		J("GET / HTTP/1.1\r\nHost: t\r\nContent-Length: x\r\n\r\n"),
		J("GET / HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"),
		J("\r\n\r\n\r\n"),
		J(" / HTTP/1.1\r\n\r\n"),
		J("GET /a b c HTTP/1.1\r\nHost: t\r\n\r\n"),
		J("GET /%zz HTTP/1.1\r\nHost: t\r\n\r\n"),
		J("GET /?a=%00 HTTP/1.1\r\nHost: t\r\n\r\n"),
		J("GET * HTTP/1.1\r\nHost: t\r\n\r\n"),
	};
	struct httpd_stats s0 = stats_of(h), s1;
	unsigned int seed = 12345;
	struct client c;
	struct reply r;
	char bin[4096];
	int st;

	for (size_t i = 0; i < sizeof(junk) / sizeof(junk[0]); i++) {
		T_CHECK(client_open(h, &c, "127.0.0.1", httpd__port(h)));
		client_send(h, &c, junk[i].data, junk[i].len);
		shutdown(c.fd, SHUT_WR); /* no more bytes: the server must answer or close */
		st = client_reply(h, &c, false, &r);
		if (st != 0 && !(st >= 400 && st <= 505))
			fprintf(stderr, "junk %zu: status %d\n", i, st);
		T_CHECK(st == 0 || (st >= 400 && st <= 505));
		/* promptly, even where libmicrohttpd alone would miss the FIN (see reap_idle) */
		if (!client_wait_close(h, &c, 1000)) {
			fprintf(stderr, "junk %zu: still open\n", i);
			T_CHECK(0);
		}
		reply_release(&r);
		client_close(&c);
	}
	/* ours are short text: the bad escape */
	T_CHECK_EQ_INT(exchange(h, "GET /%zz HTTP/1.1\r\nHost: t\r\n\r\n", false, &r), 400);
	T_CHECK_EQ_STR(r.body.buf, "malformed request target (bad %-escape or character)\n");
	reply_release(&r);

	for (int round = 0; round < 20; round++) {
		for (size_t i = 0; i < sizeof(bin); i++) {
			seed = seed * 1103515245 + 12345;
			bin[i] = (char)(seed >> 16);
		}
		if (round % 2)
			memcpy(bin, "GET /", 5); /* junk after a plausible start */
		T_CHECK(client_open(h, &c, "127.0.0.1", httpd__port(h)));
		client_send(h, &c, bin, sizeof(bin));
		shutdown(c.fd, SHUT_WR);
		st = client_reply(h, &c, false, &r);
		T_CHECK(st == 0 || (st >= 400 && st <= 505));
		T_CHECK(client_wait_close(h, &c, 1000));
		reply_release(&r);
		client_close(&c);
	}

	T_CHECK_EQ_INT(exchange(h, "GET /still-alive HTTP/1.1\r\nHost: t\r\n\r\n", false, &r), 200);
	T_CHECK(strncmp(r.body.buf, "method=GET\npath=/still-alive\n", 29) == 0);
	reply_release(&r);

	pump(h, 20);
	s1 = stats_of(h);
	/* no Host, and our %zz twice and %00 at least */
	T_CHECK(s1.rejected_malformed - s0.rejected_malformed >= 4);
	T_CHECK_EQ_INT(s1.responses_2xx - s0.responses_2xx, 1);
	T_CHECK_EQ_INT(s1.responses_5xx - s0.responses_5xx, 0);
}

static void test_handler_responses(struct httpd *h)
{
	struct httpd_stats s0 = stats_of(h), s1;
	struct reply r;
	char v[128];

	T_CHECK_EQ_INT(exchange(h, "GET /hdr HTTP/1.1\r\nHost: t\r\n\r\n", false, &r), 200);
	T_CHECK_EQ_STR(reply_header(&r, "X-Pysamp-From", v, sizeof(v)), "test-host");
	T_CHECK_EQ_STR(reply_header(&r, "X-Two", v, sizeof(v)), "2");
	T_CHECK_EQ_STR(reply_header(&r, "Content-Type", v, sizeof(v)), "application/json");
	T_CHECK_EQ_STR(r.body.buf, "{}\n");
	reply_release(&r);

	/* malformed extra headers: 500 */
	T_CHECK_EQ_INT(
		exchange(h, "GET /badhdr?h=Bad+Name:+x HTTP/1.1\r\nHost: t\r\n\r\n", false, &r),
		500);
	T_CHECK_EQ_STR(r.body.buf, "internal error: bad response header from handler\n");
	reply_release(&r);
	T_CHECK_EQ_INT(exchange(h,
				"GET /badhdr?h=X-A:+1%0D%0AContent-Length:+3 HTTP/1.1\r\n"
				"Host: t\r\n\r\n",
				false, &r),
		       500);
	reply_release(&r);
	T_CHECK_EQ_INT(
		exchange(h, "GET /badhdr?h=X-A:+1%0AX-B:+2 HTTP/1.1\r\nHost: t\r\n\r\n", false, &r),
		500);
	reply_release(&r);
	T_CHECK_EQ_INT(exchange(h, "GET /badhdr?h=X-Empty: HTTP/1.1\r\nHost: t\r\n\r\n", false, &r),
		       500);
	reply_release(&r);

	T_CHECK_EQ_INT(exchange(h, "GET /status?code=404 HTTP/1.1\r\nHost: t\r\n\r\n", false, &r),
		       404);
	T_CHECK_EQ_STR(r.body.buf, "status 404\n");
	reply_release(&r);
	T_CHECK_EQ_INT(exchange(h, "GET /status?code=302 HTTP/1.1\r\nHost: t\r\n\r\n", false, &r),
		       302);
	reply_release(&r);
	T_CHECK_EQ_INT(exchange(h, "GET /status?code=99 HTTP/1.1\r\nHost: t\r\n\r\n", false, &r),
		       500);
	T_CHECK_EQ_STR(r.body.buf, "internal error\n");
	reply_release(&r);
	T_CHECK_EQ_INT(exchange(h, "GET /fail HTTP/1.1\r\nHost: t\r\n\r\n", false, &r), 500);
	T_CHECK_EQ_STR(r.body.buf, "internal error\n");
	reply_release(&r);

	/* absolute-form target */
	T_CHECK_EQ_INT(exchange(h, "GET http://example.com/abs?x=1 HTTP/1.1\r\nHost: t\r\n\r\n",
				false, &r),
		       200);
	T_CHECK(strncmp(r.body.buf, "method=GET\npath=/abs\narg=x=1\n", 29) == 0);
	reply_release(&r);

	/* 8 MiB body, sent without blocking the loop */
	T_CHECK_EQ_INT(exchange(h, "GET /big?n=8388608 HTTP/1.1\r\nHost: t\r\n\r\n", false, &r),
		       200);
	T_CHECK_EQ_INT(r.body.len, 8388608);
	if (r.body.len == 8388608) {
		bool ok = true;

		for (size_t i = 0; i < r.body.len && ok; i++)
			ok = r.body.buf[i] == (char)('a' + (i % 4096) % 26);
		T_CHECK(ok);
	}
	reply_release(&r);

	pump(h, 20);
	s1 = stats_of(h);
	T_CHECK_EQ_INT(s1.responses_2xx - s0.responses_2xx, 3);
	T_CHECK_EQ_INT(s1.responses_3xx - s0.responses_3xx, 1);
	T_CHECK_EQ_INT(s1.responses_4xx - s0.responses_4xx, 1);
	T_CHECK_EQ_INT(s1.responses_5xx - s0.responses_5xx, 6);
}

/* A client that hangs up in the middle of a large body: no SIGPIPE, server keeps serving. */
static void test_client_abort(struct httpd *h)
{
	struct client c;
	struct reply r;
	uint64_t end;

	T_CHECK(client_open(h, &c, "127.0.0.1", httpd__port(h)));
	T_CHECK(client_sends(h, &c, "GET /big?n=33554432 HTTP/1.1\r\nHost: t\r\n\r\n"));
	end = mono_ms() + WAIT_MS;
	while (c.in.len < 256 * 1024 && !c.eof && mono_ms() < end) {
		T_CHECK_EQ_INT(httpd__poll(h), 0);
		if (client_fill(&c) == 0)
			nap();
	}
	T_CHECK(c.in.len >= 256 * 1024);
	T_CHECK(c.in.len < 33554432);
	/* close with unread data: the kernel answers the server's next send with RST */
	client_close(&c);
	pump(h, 100);
	T_CHECK_EQ_INT(exchange(h, "GET /after-abort HTTP/1.1\r\nHost: t\r\n\r\n", false, &r), 200);
	reply_release(&r);
}

static void test_response_cap(void)
{
	struct httpd_opts o = { .max_response_bytes = 10000 };
	struct tctx t = { 0 };
	struct httpd *h = start(&o, &t);
	struct reply r;

	T_CHECK(h != NULL);
	if (!h)
		return;
	T_CHECK_EQ_INT(exchange(h, "GET /big?n=10000 HTTP/1.1\r\nHost: t\r\n\r\n", false, &r), 200);
	T_CHECK_EQ_INT(r.body.len, 10000);
	reply_release(&r);
	T_CHECK_EQ_INT(exchange(h, "GET /big?n=10001 HTTP/1.1\r\nHost: t\r\n\r\n", false, &r), 500);
	T_CHECK_EQ_STR(r.body.buf, "response too large\n");
	reply_release(&r);
	T_CHECK_EQ_INT(exchange(h, "HEAD /big?n=10001 HTTP/1.1\r\nHost: t\r\n\r\n", true, &r), 500);
	T_CHECK_EQ_INT(r.body.len, 0);
	reply_release(&r);
	pump(h, 20);
	T_CHECK_EQ_INT(httpd__stats(h)->responses_5xx, 2);
	T_CHECK_EQ_INT(httpd__stats(h)->responses_2xx, 1);
	httpd__free(h);
}

/* Bodies held for slow readers are capped in total: a 503 until the slow reader catches up. */
static void test_inflight(void)
{
	struct httpd_opts o = { .max_response_bytes = 8 << 20, .max_inflight_bytes = 12 << 20 };
	static const char big[] = "GET /big?n=8388608 HTTP/1.1\r\nHost: t\r\n\r\n";
	struct tctx t = { 0 };
	struct httpd *h = start(&o, &t);
	struct client a;
	struct reply r;
	char v[64];

	T_CHECK(h != NULL);
	if (!h)
		return;
	/* a asks for 8 MiB and reads nothing: the kernel buffers take only part of it */
	T_CHECK(client_open_rcvbuf(h, &a, "127.0.0.1", httpd__port(h), 4096));
	T_CHECK(client_sends(h, &a, big));
	pump(h, 200);

	/* another 8 MiB would pass 12 MiB: 503; a small one still fits */
	T_CHECK_EQ_INT(exchange(h, big, false, &r), 503);
	T_CHECK_EQ_STR(r.body.buf, "server busy: too many large responses in flight, retry\n");
	T_CHECK_EQ_STR(reply_header(&r, "Retry-After", v, sizeof(v)), "1");
	reply_release(&r);
	T_CHECK_EQ_INT(exchange(h, "GET /big?n=1000 HTTP/1.1\r\nHost: t\r\n\r\n", false, &r), 200);
	T_CHECK_EQ_INT(r.body.len, 1000);
	reply_release(&r);
	T_CHECK_EQ_INT(httpd__stats(h)->rejected_busy, 1);

	/* a reads its reply (with a normal window now); once complete the 8 MiB are released */
	T_CHECK_EQ_INT(setsockopt(a.fd, SOL_SOCKET, SO_RCVBUF, &(int){ 1 << 20 }, sizeof(int)), 0);
	T_CHECK_EQ_INT(client_reply(h, &a, false, &r), 200);
	T_CHECK_EQ_INT(r.body.len, 8 << 20);
	reply_release(&r);
	pump(h, 20);
	for (int i = 0; i < 2; i++) {
		T_CHECK_EQ_INT(exchange(h, big, false, &r), 200);
		T_CHECK_EQ_INT(r.body.len, 8 << 20);
		reply_release(&r);
	}
	/* while a keeps its connection open */
	T_CHECK(client_sends(h, &a, big));
	T_CHECK_EQ_INT(client_reply(h, &a, false, &r), 200);
	reply_release(&r);
	client_close(&a);
	T_CHECK_EQ_INT(httpd__stats(h)->rejected_busy, 1);
	T_CHECK_EQ_INT(httpd__stats(h)->responses_5xx, 1);
	httpd__free(h);
}

static void test_slow_clients(void)
{
	struct httpd_opts o = { .timeout_s = 1 };
	static const char req[] = "GET /drip HTTP/1.1\r\nHost: t\r\nX-Pad: "
				  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n";
	struct tctx t = { 0 };
	struct httpd *h = start(&o, &t);
	struct client a, b, c;
	struct reply r;
	uint64_t t0, t1;
	size_t sent = 0;

	T_CHECK(h != NULL);
	if (!h)
		return;

	/* a: half a request, then silence */
	T_CHECK(client_open(h, &a, "127.0.0.1", httpd__port(h)));
	T_CHECK(client_sends(h, &a, "GET / HTTP/1.1\r\nHo"));
	t0 = mono_ms();
	pump(h, 100);

	/* b is served at once meanwhile */
	T_CHECK(client_open(h, &b, "127.0.0.1", httpd__port(h)));
	t1 = mono_ms();
	T_CHECK(client_sends(h, &b, "GET /fast HTTP/1.1\r\nHost: t\r\n\r\n"));
	T_CHECK_EQ_INT(client_reply(h, &b, false, &r), 200);
	T_CHECK(mono_ms() - t1 < 300);
	reply_release(&r);
	client_close(&b);

	/* a is closed after about timeout_s */
	T_CHECK(client_wait_close(h, &a, 3000));
	T_CHECK(mono_ms() - t0 >= 900);
	T_CHECK(mono_ms() - t0 < 2500);
	client_close(&a);

	/* c drips one byte every 100 ms: never idle for 1 s, cut by the request-head deadline
	 * (2 x timeout_s) */
	T_CHECK(client_open(h, &c, "127.0.0.1", httpd__port(h)));
	t0 = mono_ms();
	while (sent < sizeof(req) - 1 && !c.eof && mono_ms() - t0 < 5000) {
		if (!client_send(h, &c, req + sent, 1))
			break;
		sent++;
		pump(h, 100);
		client_fill(&c);
	}
	T_CHECK(sent < sizeof(req) - 1); /* cut before the head was complete */
	T_CHECK(client_wait_close(h, &c, 1000));
	T_CHECK(mono_ms() - t0 >= 1900);
	T_CHECK(mono_ms() - t0 < 3000);
	client_close(&c);

	pump(h, 20);
	/* a was left to libmicrohttpd's idle timeout, c was ours */
	T_CHECK_EQ_INT(httpd__stats(h)->closed_slow, 1);
	T_CHECK_EQ_INT(httpd__stats(h)->responses_2xx, 1);
	T_CHECK_EQ_INT(t.calls, 1);
	/* still serving */
	T_CHECK_EQ_INT(exchange(h, "GET / HTTP/1.1\r\nHost: t\r\n\r\n", false, &r), 200);
	reply_release(&r);
	httpd__free(h);
}

static void test_connection_limits(void)
{
	struct httpd_opts o = { .per_ip_connections = 2 };
	struct httpd_opts o2 = { .max_connections = 2 };
	struct tctx t = { 0 };
	struct httpd *h = start(&o, &t);
	struct client a, b, c;
	struct reply r;

	T_CHECK(h != NULL);
	if (!h)
		return;
	/* per address: the third connection is closed right after accept */
	T_CHECK(client_open(h, &a, "127.0.0.1", httpd__port(h)));
	T_CHECK(client_open(h, &b, "127.0.0.1", httpd__port(h)));
	pump(h, 30);
	T_CHECK(client_open(h, &c, "127.0.0.1", httpd__port(h)));
	T_CHECK(client_wait_close(h, &c, 1000));
	client_close(&c);
	T_CHECK(client_sends(h, &a, "GET /a HTTP/1.1\r\nHost: t\r\n\r\n"));
	T_CHECK_EQ_INT(client_reply(h, &a, false, &r), 200);
	reply_release(&r);
	T_CHECK(client_sends(h, &b, "GET /b HTTP/1.1\r\nHost: t\r\n\r\n"));
	T_CHECK_EQ_INT(client_reply(h, &b, false, &r), 200);
	reply_release(&r);
	client_close(&a);
	pump(h, 30);
	/* a slot is free again */
	T_CHECK(client_open(h, &c, "127.0.0.1", httpd__port(h)));
	T_CHECK(client_sends(h, &c, "GET /c HTTP/1.1\r\nHost: t\r\n\r\n"));
	T_CHECK_EQ_INT(client_reply(h, &c, false, &r), 200);
	reply_release(&r);
	client_close(&c);
	client_close(&b);
	pump(h, 20);
	T_CHECK_EQ_INT(httpd__stats(h)->connections, 3); /* the refused one never started */
	httpd__free(h);

	/* in total: the third waits in the backlog until a slot frees */
	h = start(&o2, &t);
	T_CHECK(h != NULL);
	if (!h)
		return;
	T_CHECK(client_open(h, &a, "127.0.0.1", httpd__port(h)));
	T_CHECK(client_open(h, &b, "127.0.0.1", httpd__port(h)));
	pump(h, 30);
	T_CHECK(client_open(h, &c, "127.0.0.1", httpd__port(h))); /* the kernel completes it */
	T_CHECK(client_sends(h, &c, "GET /c HTTP/1.1\r\nHost: t\r\n\r\n"));
	pump(h, 200);
	client_fill(&c);
	T_CHECK_EQ_INT(c.in.len, 0);
	T_CHECK(!c.eof);
	client_close(&a);
	T_CHECK_EQ_INT(client_reply(h, &c, false, &r), 200);
	reply_release(&r);
	client_close(&b);
	client_close(&c);
	httpd__free(h);
}

static void test_ipv6(void)
{
	struct httpd_opts o = { .listen = "[::1]:0" };
	struct tctx t = { 0 };
	struct httpd *h;
	struct client c;
	struct reply r;
	char want[128];
	struct sockaddr_in6 me;
	socklen_t len = sizeof(me);

	h = start(&o, &t);
	if (!h) {
		printf("test_httpd: no IPv6 loopback, skipping IPv6 checks\n");
		return;
	}
	T_CHECK(client_open(h, &c, "::1", httpd__port(h)));
	T_CHECK(client_sends(h, &c, "GET /v6 HTTP/1.1\r\nHost: t\r\n\r\n"));
	T_CHECK_EQ_INT(client_reply(h, &c, false, &r), 200);
	T_CHECK_EQ_INT(getsockname(c.fd, (struct sockaddr *)&me, &len), 0);
	snprintf(want, sizeof(want), "method=GET\npath=/v6\npeer=[::1]:%u\n", ntohs(me.sin6_port));
	T_CHECK_EQ_STR(r.body.buf, want);
	reply_release(&r);
	client_close(&c);
	httpd__free(h);

	/* "[::]" is dual stack: IPv4 clients get in too */
	o.listen = "[::]:0";
	h = start(&o, &t);
	T_CHECK(h != NULL);
	if (!h)
		return;
	T_CHECK_EQ_INT(exchange(h, "GET /v4 HTTP/1.1\r\nHost: t\r\n\r\n", false, &r), 200);
	T_CHECK(strstr(r.body.buf, "peer=[::ffff:127.0.0.1]:") != NULL);
	reply_release(&r);
	httpd__free(h);
}

/* Freeing with open and half-served connections releases everything (ASan checks leaks). */
static void test_free_busy(void)
{
	struct httpd_opts o = { 0 };
	struct tctx t = { 0 };
	struct httpd *h = start(&o, &t);
	struct client a, b;

	T_CHECK(h != NULL);
	if (!h)
		return;
	T_CHECK(client_open(h, &a, "127.0.0.1", httpd__port(h)));
	T_CHECK(client_open(h, &b, "127.0.0.1", httpd__port(h)));
	T_CHECK(client_sends(h, &a, "GET /big?n=50000000 HTTP/1.1\r\nHost: t\r\n\r\n"));
	T_CHECK(client_sends(h, &b, "GET /half"));
	pump(h, 50);
	T_CHECK_EQ_INT(t.calls, 1);
	T_CHECK_EQ_INT(httpd__stats(h)->responses_2xx, 1);
	httpd__free(h);
	/* both connections were closed by the server */
	T_CHECK(client_wait_close(NULL, &a, WAIT_MS));
	T_CHECK(client_wait_close(NULL, &b, WAIT_MS));
	client_close(&a);
	client_close(&b);
}

/* ---- request bodies (max_body_bytes) ---- */

#define BODY_MAX 1000

/* Consume an interim "HTTP/1.1 100 Continue\r\n\r\n" from c, polling h. */
static bool client_continue(struct httpd *h, struct client *c)
{
	static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
	uint64_t end = mono_ms() + WAIT_MS;

	while (c->in.len < sizeof(cont) - 1 && !c->eof && mono_ms() < end) {
		T_CHECK_EQ_INT(httpd__poll(h), 0);
		if (client_fill(c) == 0)
			nap();
	}
	if (c->in.len < sizeof(cont) - 1 || memcmp(c->in.buf, cont, sizeof(cont) - 1) != 0)
		return false;
	memmove(c->in.buf, c->in.buf + sizeof(cont) - 1, c->in.len - (sizeof(cont) - 1));
	strbuf_setlen(&c->in, c->in.len - (sizeof(cont) - 1));
	return true;
}

/* "POST path" with a Content-Length body; headers are extra lines ending in "\r\n". */
static bool send_post(struct httpd *h, struct client *c, const char *path, const char *headers,
		      const void *body, size_t len)
{
	char head[512];

	snprintf(head, sizeof(head), "POST %s HTTP/1.1\r\nHost: t\r\n%sContent-Length: %zu\r\n\r\n",
		 path, headers, len);
	return client_sends(h, c, head) && client_send(h, c, body, len);
}

/* Body bytes i of a test pattern with NULs and every other byte value. */
static void pattern(char *buf, size_t len)
{
	for (size_t i = 0; i < len; i++)
		buf[i] = (char)(i % 7 == 3 ? 0 : (i * 37 + 11) & 0xff);
}

static void test_post_bodies(void)
{
	struct httpd_opts o = { .max_body_bytes = BODY_MAX };
	struct tctx t = { 0 };
	struct httpd *h = start(&o, &t);
	struct httpd_stats s1;
	struct client c;
	struct reply r;
	char body[BODY_MAX + 1], want[256], v[64];
	struct strbuf req;
	unsigned int calls;
	uint64_t t0;

	T_CHECK(h != NULL);
	if (!h)
		return;
	strbuf_init(&req, 0);
	pattern(body, sizeof(body));

	/* Content-Length body with NULs, echoed exactly; then GET on the same connection */
	T_CHECK(client_open(h, &c, "127.0.0.1", httpd__port(h)));
	T_CHECK(send_post(h, &c, "/body", "", "a\0b\0c", 5));
	T_CHECK_EQ_INT(client_reply(h, &c, false, &r), 200);
	T_CHECK_EQ_INT(r.body.len, 5);
	T_CHECK(r.body.len == 5 && memcmp(r.body.buf, "a\0b\0c", 5) == 0);
	T_CHECK_EQ_STR(reply_header(&r, "X-Method", v, sizeof(v)), "POST");
	T_CHECK(reply_header(&r, "Connection", v, sizeof(v)) == NULL); /* keep-alive */
	reply_release(&r);
	T_CHECK(client_sends(h, &c, "GET /after-post HTTP/1.1\r\nHost: t\r\n\r\n"));
	T_CHECK_EQ_INT(client_reply(h, &c, false, &r), 200);
	echo_want(&c, "GET", "/after-post", "", want, sizeof(want));
	T_CHECK_EQ_STR(r.body.buf, want);
	reply_release(&r);

	/* exactly at the limit, with Expect: 100-continue, on the same connection */
	T_CHECK(client_sends(h, &c,
			     "POST /body HTTP/1.1\r\nHost: t\r\nContent-Length: 1000\r\n"
			     "Expect: 100-continue\r\n\r\n"));
	T_CHECK(client_continue(h, &c));
	T_CHECK(client_send(h, &c, body, BODY_MAX));
	T_CHECK_EQ_INT(client_reply(h, &c, false, &r), 200);
	T_CHECK_EQ_INT(r.body.len, BODY_MAX);
	T_CHECK(r.body.len == BODY_MAX && memcmp(r.body.buf, body, BODY_MAX) == 0);
	reply_release(&r);

	/* chunked, split over several sends; then pipelined POST + GET in one send */
	T_CHECK(client_sends(h, &c,
			     "POST /body HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
			     "5\r\nhel"));
	pump(h, 20);
	T_CHECK(client_sends(h, &c, "lo\r\n6;ext=1\r\n world\r\n"));
	pump(h, 20);
	T_CHECK(client_sends(h, &c, "0\r\nX-Trailer: 1\r\n\r\n"));
	T_CHECK_EQ_INT(client_reply(h, &c, false, &r), 200);
	T_CHECK_EQ_STR(r.body.buf, "hello world");
	reply_release(&r);
	T_CHECK(client_sends(h, &c,
			     "POST /body HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nxyz"
			     "GET /p2 HTTP/1.1\r\nHost: t\r\n\r\n"));
	T_CHECK_EQ_INT(client_reply(h, &c, false, &r), 200);
	T_CHECK_EQ_STR(r.body.buf, "xyz");
	reply_release(&r);
	T_CHECK_EQ_INT(client_reply(h, &c, false, &r), 200);
	T_CHECK(strncmp(r.body.buf, "method=GET\npath=/p2\n", 20) == 0);
	reply_release(&r);
	client_fill(&c);
	T_CHECK(!c.eof);
	client_close(&c);

	/* chunked exactly at the limit, in chunks of 300 + 300 + 400 */
	strbuf_reset(&req);
	T_CHECK_EQ_INT(strbuf_addf(&req, "POST /body HTTP/1.1\r\nHost: t\r\n"
					 "Transfer-Encoding: chunked\r\n\r\n"),
		       0);
	for (size_t off = 0, k; off < BODY_MAX; off += k) {
		k = off < 600 ? 300 : 400;
		T_CHECK_EQ_INT(strbuf_addf(&req, "%zx\r\n", k), 0);
		T_CHECK_EQ_INT(strbuf_add(&req, body + off, k), 0);
		T_CHECK_EQ_INT(strbuf_add(&req, "\r\n", 2), 0);
	}
	T_CHECK_EQ_INT(strbuf_add(&req, "0\r\n\r\n", 5), 0);
	T_CHECK(client_open(h, &c, "127.0.0.1", httpd__port(h)));
	T_CHECK(client_send(h, &c, req.buf, req.len));
	T_CHECK_EQ_INT(client_reply(h, &c, false, &r), 200);
	T_CHECK(r.body.len == BODY_MAX && memcmp(r.body.buf, body, BODY_MAX) == 0);
	reply_release(&r);
	client_close(&c);

	/* empty bodies: Content-Length 0, and none at all */
	T_CHECK_EQ_INT(exchange(h, "POST /body HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n",
				false, &r),
		       200);
	T_CHECK_EQ_INT(r.body.len, 0);
	reply_release(&r);
	T_CHECK_EQ_INT(exchange(h, "POST /body HTTP/1.1\r\nHost: t\r\n\r\n", false, &r), 200);
	T_CHECK_EQ_INT(r.body.len, 0);
	reply_release(&r);

	/* request headers, case-insensitive, for POST and GET */
	T_CHECK(client_open(h, &c, "127.0.0.1", httpd__port(h)));
	T_CHECK(send_post(h, &c, "/reqhdr",
			  "authorization: Bearer s3cret\r\nContent-Type: application/json\r\n"
			  "Authorization: second\r\n",
			  "{}", 2));
	T_CHECK_EQ_INT(client_reply(h, &c, false, &r), 200);
	T_CHECK_EQ_STR(r.body.buf, "auth=Bearer s3cret\nctype=application/json\nnone=-\nlen=2\n");
	reply_release(&r);
	T_CHECK(client_sends(h, &c,
			     "GET /reqhdr HTTP/1.1\r\nHost: t\r\nAUTHORIZATION:  x\r\n\r\n"));
	T_CHECK_EQ_INT(client_reply(h, &c, false, &r), 200);
	T_CHECK_EQ_STR(r.body.buf, "auth=x\nctype=-\nnone=-\nlen=0\n");
	reply_release(&r);
	client_close(&c);

	calls = t.calls;
	s1 = stats_of(h);
	T_CHECK_EQ_INT(s1.bodies, 8);
	T_CHECK_EQ_INT(s1.body_bytes, 5 + BODY_MAX + 11 + 3 + BODY_MAX + 0 + 0 + 2);
	T_CHECK_EQ_INT(s1.rejected_size, 0);

	/* Content-Length over the limit, with Expect: 413 at once, no 100, no body read */
	T_CHECK(client_open(h, &c, "127.0.0.1", httpd__port(h)));
	t0 = mono_ms();
	T_CHECK(client_sends(h, &c,
			     "POST /body HTTP/1.1\r\nHost: t\r\nContent-Length: 1001\r\n"
			     "Expect: 100-continue\r\n\r\n"));
	T_CHECK_EQ_INT(client_reply(h, &c, false, &r), 413);
	T_CHECK(mono_ms() - t0 < 1000);
	T_CHECK(strncmp(r.head, "HTTP/1.1 413", 12) == 0);
	T_CHECK_EQ_STR(r.body.buf, "request body too large (max 1000 bytes)\n");
	T_CHECK_EQ_STR(reply_header(&r, "Connection", v, sizeof(v)), "close");
	T_CHECK(client_wait_close(h, &c, WAIT_MS));
	reply_release(&r);
	client_close(&c);
	/* absurd lengths too */
	T_CHECK_EQ_INT(exchange(h,
				"POST /body HTTP/1.1\r\nHost: t\r\n"
				"Content-Length: 18446744073709551615\r\n\r\n",
				false, &r),
		       413);
	reply_release(&r);

	/* chunked past the limit: 413 as soon as it is, then closed */
	T_CHECK(client_open(h, &c, "127.0.0.1", httpd__port(h)));
	strbuf_reset(&req);
	T_CHECK_EQ_INT(strbuf_addf(&req, "POST /body HTTP/1.1\r\nHost: t\r\n"
					 "Transfer-Encoding: chunked\r\n\r\n258\r\n"),
		       0);
	T_CHECK_EQ_INT(strbuf_add(&req, body, 600), 0);
	T_CHECK_EQ_INT(strbuf_addf(&req, "\r\n258\r\n"), 0);
	T_CHECK_EQ_INT(strbuf_add(&req, body, 600), 0); /* 1200 > 1000, never terminated */
	T_CHECK(client_send(h, &c, req.buf, req.len));
	T_CHECK_EQ_INT(client_reply(h, &c, false, &r), 413);
	T_CHECK_EQ_STR(r.body.buf, "request body too large (max 1000 bytes)\n");
	T_CHECK_EQ_STR(reply_header(&r, "Connection", v, sizeof(v)), "close");
	T_CHECK(client_wait_close(h, &c, WAIT_MS));
	reply_release(&r);
	client_close(&c);
	/* the same with Expect: the 100 first, then the 413 */
	T_CHECK(client_open(h, &c, "127.0.0.1", httpd__port(h)));
	T_CHECK(client_sends(h, &c,
			     "POST /body HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n"
			     "Expect: 100-continue\r\n\r\n"));
	T_CHECK(client_continue(h, &c));
	T_CHECK(client_sends(h, &c, "3e9\r\n"));
	T_CHECK(client_send(h, &c, body, 1001));
	T_CHECK_EQ_INT(client_reply(h, &c, false, &r), 413);
	T_CHECK(client_wait_close(h, &c, WAIT_MS));
	reply_release(&r);
	client_close(&c);

	/* other methods: 405 listing POST, with or without a body */
	T_CHECK(client_open(h, &c, "127.0.0.1", httpd__port(h)));
	T_CHECK(client_sends(h, &c, "PUT /body HTTP/1.1\r\nHost: t\r\n\r\n"));
	T_CHECK_EQ_INT(client_reply(h, &c, false, &r), 405);
	T_CHECK_EQ_STR(reply_header(&r, "Allow", v, sizeof(v)), "GET, HEAD, POST");
	T_CHECK_EQ_STR(r.body.buf, "method not allowed: use GET, HEAD or POST\n");
	reply_release(&r);
	client_close(&c);
	T_CHECK_EQ_INT(exchange(h,
				"DELETE /x HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello",
				false, &r),
		       405);
	T_CHECK_EQ_STR(reply_header(&r, "Allow", v, sizeof(v)), "GET, HEAD, POST");
	reply_release(&r);
	/* GET with a body: still refused */
	T_CHECK_EQ_INT(
		exchange(h, "GET / HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabc", false, &r),
		413);
	T_CHECK_EQ_STR(r.body.buf, "request body not accepted: send GET or HEAD without a body\n");
	reply_release(&r);
	/* transfer codings we do not decode, and ambiguous framing */
	T_CHECK_EQ_INT(exchange(h,
				"POST /body HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip\r\n\r\n"
				"xx",
				false, &r),
		       501);
	reply_release(&r);
	T_CHECK_EQ_INT(exchange(h,
				"POST /body HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n"
				"Content-Length: 5\r\n\r\n0\r\n\r\n",
				false, &r),
		       400);
	reply_release(&r);
	/* a malformed chunk: libmicrohttpd's 400 */
	T_CHECK_EQ_INT(
		exchange(h,
			 "POST /body HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
			 "zz\r\n",
			 false, &r),
		400);
	reply_release(&r);

	/* still serving bodies */
	T_CHECK_EQ_INT(exchange(h, "POST /body HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\nok",
				false, &r),
		       200);
	T_CHECK_EQ_STR(r.body.buf, "ok");
	reply_release(&r);

	pump(h, 20);
	s1 = stats_of(h);
	T_CHECK_EQ_INT(t.calls - calls, 1); /* only the last one reached the handler */
	T_CHECK_EQ_INT(t.bad_body, 0);
	T_CHECK_EQ_INT(s1.bodies, 9);
	T_CHECK_EQ_INT(s1.body_bytes, 5 + BODY_MAX + 11 + 3 + BODY_MAX + 0 + 0 + 2 + 2);
	T_CHECK_EQ_INT(s1.rejected_size, 5); /* 2 by length, 2 chunked, GET with a body */
	T_CHECK_EQ_INT(s1.rejected_method, 2);
	T_CHECK_EQ_INT(s1.rejected_malformed, 3);
	T_CHECK_EQ_INT(s1.responses_4xx, 9);
	T_CHECK_EQ_INT(s1.responses_5xx, 1);
	T_CHECK_EQ_INT(s1.closed_slow, 0);
	strbuf_release(&req);
	httpd__free(h);
}

/* With max_body_bytes 0, POST is refused as always (test_methods covers the details). */
static void test_post_disabled(void)
{
	struct httpd_opts o = { 0 };
	struct tctx t = { 0 };
	struct httpd *h = start(&o, &t);
	struct reply r;
	char v[64];

	T_CHECK(h != NULL);
	if (!h)
		return;
	T_CHECK_EQ_INT(exchange(h, "POST /body HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\nok",
				false, &r),
		       405);
	T_CHECK_EQ_STR(reply_header(&r, "Allow", v, sizeof(v)), "GET, HEAD");
	T_CHECK_EQ_STR(r.body.buf, "method not allowed: use GET or HEAD\n");
	reply_release(&r);
	T_CHECK_EQ_INT(
		exchange(h,
			 "POST /body HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
			 "2\r\nok\r\n0\r\n\r\n",
			 false, &r),
		405);
	reply_release(&r);
	T_CHECK_EQ_INT(exchange(h, "POST /body HTTP/1.1\r\nHost: t\r\n\r\n", false, &r), 405);
	reply_release(&r);
	T_CHECK_EQ_INT(t.calls, 0);
	T_CHECK_EQ_INT(httpd__stats(h)->bodies, 0);
	T_CHECK_EQ_INT(httpd__stats(h)->rejected_method, 3);
	httpd__free(h);
}

/* Bodies that stall or trickle lose their slot; other clients are served meanwhile. */
static void test_post_slow(void)
{
	struct httpd_opts o = { .timeout_s = 1, .max_body_bytes = 1 << 20 };
	struct tctx t = { 0 };
	struct httpd *h = start(&o, &t);
	struct client a, b, c;
	struct reply r;
	uint64_t t0, t1;
	size_t sent = 0;

	T_CHECK(h != NULL);
	if (!h)
		return;

	/* a: half a body, then silence: libmicrohttpd's idle timeout */
	T_CHECK(client_open(h, &a, "127.0.0.1", httpd__port(h)));
	T_CHECK(client_sends(h, &a,
			     "POST /body HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n"
			     "0123456789012345678901234567890123456789012345678"));
	t0 = mono_ms();
	pump(h, 100);

	/* c: a body trickled one byte every 100 ms, never idle for 1 s */
	T_CHECK(client_open(h, &c, "127.0.0.1", httpd__port(h)));
	T_CHECK(client_sends(h, &c,
			     "POST /body HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n"));
	t1 = mono_ms();

	/* b is served at once meanwhile, with a body */
	T_CHECK(client_open(h, &b, "127.0.0.1", httpd__port(h)));
	T_CHECK(send_post(h, &b, "/body", "", "fast", 4));
	T_CHECK_EQ_INT(client_reply(h, &b, false, &r), 200);
	T_CHECK_EQ_STR(r.body.buf, "fast");
	T_CHECK(mono_ms() - t1 < 300);
	reply_release(&r);

	while (sent < 100 && !c.eof && mono_ms() - t1 < 5000) {
		if (!client_send(h, &c, "x", 1))
			break;
		sent++;
		pump(h, 100);
		client_fill(&c);
		if (!a.eof) {
			client_fill(&a);
			if (a.eof) {
				/* a went after about timeout_s */
				T_CHECK(mono_ms() - t0 >= 900);
				T_CHECK(mono_ms() - t0 < 2500);
			}
		}
		/* b keeps being served on its connection */
		if (sent % 5 == 0) {
			T_CHECK(send_post(h, &b, "/body", "", "again", 5));
			T_CHECK_EQ_INT(client_reply(h, &b, false, &r), 200);
			T_CHECK_EQ_STR(r.body.buf, "again");
			reply_release(&r);
		}
	}
	/* c cut by the body deadline (2 x timeout_s after its headers), well before 100 bytes */
	T_CHECK(sent < 100);
	T_CHECK(client_wait_close(h, &c, 1000));
	T_CHECK(mono_ms() - t1 >= 1900);
	T_CHECK(mono_ms() - t1 < 3000);
	T_CHECK(client_wait_close(h, &a, 1000));
	client_close(&a);
	client_close(&c);

	pump(h, 20);
	T_CHECK_EQ_INT(httpd__stats(h)->closed_slow, 1); /* c; a was libmicrohttpd's */
	T_CHECK_EQ_INT(t.bad_body, 0);
	/* only b's requests reached the handler */
	T_CHECK_EQ_INT(t.calls, httpd__stats(h)->bodies);
	T_CHECK_EQ_INT(httpd__stats(h)->responses_2xx, t.calls);
	T_CHECK(send_post(h, &b, "/body", "", "end", 3));
	T_CHECK_EQ_INT(client_reply(h, &b, false, &r), 200);
	reply_release(&r);
	client_close(&b);
	httpd__free(h);
}

int main(void)
{
	struct httpd_opts o = { 0 };
	struct tctx t = { 0 };
	struct httpd *h;

	log_set_level(getenv("HTTPD_DEBUG") ? LOG_DEBUG : LOG_ERROR);
	test_parse_listen();
	test_format_addr();
	test_parse_target();
	test_helpers();
	test_new_errors();

	h = start(&o, &t);
	T_CHECK(h != NULL);
	if (h) {
		test_get_head(h);
		test_keepalive_and_http10(h);
		test_methods(h);
		test_limits(h, &t);
		test_malformed(h);
		test_handler_responses(h);
		test_client_abort(h);
		printf("test_httpd: stats: requests %llu 2xx %llu 3xx %llu 4xx %llu 5xx %llu "
		       "method %llu size %llu malformed %llu slow %llu conns %llu\n",
		       (unsigned long long)httpd__stats(h)->requests,
		       (unsigned long long)httpd__stats(h)->responses_2xx,
		       (unsigned long long)httpd__stats(h)->responses_3xx,
		       (unsigned long long)httpd__stats(h)->responses_4xx,
		       (unsigned long long)httpd__stats(h)->responses_5xx,
		       (unsigned long long)httpd__stats(h)->rejected_method,
		       (unsigned long long)httpd__stats(h)->rejected_size,
		       (unsigned long long)httpd__stats(h)->rejected_malformed,
		       (unsigned long long)httpd__stats(h)->closed_slow,
		       (unsigned long long)httpd__stats(h)->connections);
		httpd__free(h);
	}
	test_response_cap();
	test_inflight();
	test_slow_clients();
	test_connection_limits();
	test_ipv6();
	test_free_busy();
	test_post_disabled();
	test_post_bodies();
	test_post_slow();
	return T_DONE();
}
