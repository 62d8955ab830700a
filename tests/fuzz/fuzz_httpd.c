/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * fuzz_httpd.c - libFuzzer target for user/httpd.c.
 *
 * The first input byte picks a mode, the rest is the payload:
 *   0  httpd_parse_listen: only 0 or -EINVAL, outputs untouched on failure, and an accepted
 *      address prints (httpd_format_addr) to a spec that parses back to the same address.
 *   1  httpd_parse_target, with buf exactly strlen + 1 bytes on the heap so ASan sees any
 *      overrun: documented errors only, a path starting with '/', at most maxargs arguments,
 *      and a re-encoded target that parses back to the same path and arguments.
 *   2  the payload as raw bytes on a TCP connection to an in-process server (small limits),
 *      after which the client half-closes: the server must answer or close, never crash or
 *      hang, and keep serving (a known-good request is checked now and then). Bit 0 of
 *      first byte / 3 picks the server: GET/HEAD only, or with POST bodies of up to
 *      BODY_MAX bytes (whose handler checks the body and header contract).
 *
 *   make .output/fuzz/fuzz_httpd && .output/fuzz/fuzz_httpd -max_total_time=60
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "httpd.h"
#include "log.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "fuzz_httpd: %s:%d: %s\n", __FILE__, __LINE__, #cond);     \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

#define MAXARGS	 8
#define BODY_MAX 300

static void check_listen(const char *s)
{
	struct sockaddr_storage ss, ss2;
	socklen_t len = 12345, len2 = 0;
	char buf[HTTPD_ADDRSTRLEN];
	int err;

	memset(&ss, 0x5a, sizeof(ss));
	err = httpd_parse_listen(s, &ss, &len);
	CHECK(err == 0 || err == -EINVAL);
	if (err) {
		CHECK(len == 12345);
		CHECK(((unsigned char *)&ss)[0] == 0x5a);
		return;
	}
	CHECK(ss.ss_family == AF_INET || ss.ss_family == AF_INET6);
	CHECK(len ==
	      (ss.ss_family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6)));
	CHECK(httpd_format_addr((struct sockaddr *)&ss, buf, sizeof(buf)) == 0);
	CHECK(httpd_parse_listen(buf, &ss2, &len2) == 0);
	CHECK(len2 == len && memcmp(&ss, &ss2, len) == 0);
}

/* Append s percent-encoded (all but unreserved bytes; '/' kept when keep_slash). */
static void encode(struct strbuf *sb, const char *s, bool keep_slash)
{
	static const char hex[] = "0123456789ABCDEF";

	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		char e[3] = { '%', hex[c >> 4], hex[c & 15] };

		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		    strchr("-._~", c) || (keep_slash && c == '/'))
			CHECK(strbuf_add(sb, s, 1) == 0);
		else
			CHECK(strbuf_add(sb, e, 3) == 0);
	}
}

static void check_target(const char *s)
{
	struct httpd_arg args[MAXARGS], args2[MAXARGS];
	size_t n = 0, n2 = 0, len = strlen(s);
	const char *path = NULL, *path2 = NULL;
	char *buf, *buf2, *small;
	struct strbuf re;
	int err;

	buf = malloc(len + 1);
	CHECK(buf);
	err = httpd_parse_target(s, buf, len + 1, &path, args, MAXARGS, &n);
	CHECK(err == 0 || err == -EINVAL || err == -E2BIG);

	/* one byte short is always refused up front */
	small = malloc(len ? len : 1);
	CHECK(small);
	CHECK(httpd_parse_target(s, small, len, &path2, args2, MAXARGS, &n2) == -ENOSPC);
	free(small);

	if (err) {
		free(buf);
		return;
	}
	CHECK(n <= MAXARGS);
	CHECK(path && path[0] == '/');
	CHECK(strlen(path) <= len);
	for (size_t i = 0; i < n; i++)
		CHECK(args[i].key && args[i].value);

	/* re-encode and parse again: same result */
	strbuf_init(&re, 0);
	encode(&re, path, true);
	for (size_t i = 0; i < n; i++) {
		CHECK(strbuf_add(&re, i ? "&" : "?", 1) == 0);
		encode(&re, args[i].key, false);
		CHECK(strbuf_add(&re, "=", 1) == 0);
		encode(&re, args[i].value, false);
	}
	buf2 = malloc(re.len + 1);
	CHECK(buf2);
	CHECK(httpd_parse_target(re.buf, buf2, re.len + 1, &path2, args2, MAXARGS, &n2) == 0);
	CHECK(strcmp(path, path2) == 0);
	CHECK(n == n2);
	for (size_t i = 0; i < n; i++)
		CHECK(strcmp(args[i].key, args2[i].key) == 0 &&
		      strcmp(args[i].value, args2[i].value) == 0);
	/* fewer slots than arguments: -E2BIG */
	if (n)
		CHECK(httpd_parse_target(re.buf, buf2, re.len + 1, &path2, args2, n - 1, &n2) ==
		      -E2BIG);
	free(buf2);
	strbuf_release(&re);
	free(buf);
}

/* ---- the server ---- */

static void handler(void *ctx, const struct httpd_request *req, struct httpd_response *resp)
{
	const char *v = httpd_arg(req, "n");

	bool bodies = ctx != NULL;

	if (strcmp(req->method, "POST") == 0) {
		const char *cl = httpd_header(req, "content-length");

		CHECK(bodies);
		CHECK(req->body && req->body[req->body_len] == '\0' && req->body_len <= BODY_MAX);
		/* a Content-Length body arrives whole (there is no other header then) */
		if (cl && !httpd_header(req, "Transfer-Encoding"))
			CHECK(strtoull(cl, NULL, 10) == req->body_len);
		for (size_t i = 0; i < req->body_len; i++)
			httpd_response_addf(resp, "%02x", (unsigned char)req->body[i]);
	} else {
		CHECK(strcmp(req->method, "GET") == 0 || strcmp(req->method, "HEAD") == 0);
		CHECK(!req->body && !req->body_len);
	}
	CHECK(httpd_header(req, "Host") == httpd_header(req, "hOST"));
	CHECK(req->path[0] == '/' && req->nargs <= 4);
	if (v)
		for (unsigned long i = strtoul(v, NULL, 10); i && !resp->err && i < 1 << 20; i--)
			httpd_response_add(resp, "x", 1); /* may pass max_response_bytes */
	if (httpd_arg(req, "h"))
		snprintf(resp->extra_headers, sizeof(resp->extra_headers), "%s",
			 httpd_arg(req, "h"));
	if (httpd_arg(req, "s"))
		resp->status = atoi(httpd_arg(req, "s"));
	httpd_response_addf(resp, "%s\n", req->path);
}

/* The server without (0) or with (1) request bodies. */
static struct httpd *server(bool bodies)
{
	static struct httpd *hs[2];
	static int yes = 1;
	struct httpd_opts o = {
		.listen = "127.0.0.1:0",
		.handler = handler,
		.ctx = bodies ? &yes : NULL,
		.max_request_bytes = 1024,
		.max_response_bytes = 4096,
		.max_args = 4,
		.timeout_s = 2,
		.max_body_bytes = bodies ? BODY_MAX : 0,
	};
	char err[128];

	if (!hs[bodies]) {
		log_set_level(LOG_ERROR);
		hs[bodies] = httpd__new(&o, err, sizeof(err));
		if (!hs[bodies])
			fprintf(stderr, "fuzz_httpd: %s\n", err);
		CHECK(hs[bodies]);
	}
	return hs[bodies];
}

static int connect_to(uint16_t port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port) };
	struct linger lg = { 1, 0 }; /* close with RST: no TIME_WAIT pile-up over millions */
	int fd;

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	CHECK(fd >= 0);
	CHECK(setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)) == 0);
	CHECK(connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 || errno == EINPROGRESS);
	return fd;
}

/* Send data, half-close, read until EOF; returns the bytes received (capped) in out. */
static size_t talk(struct httpd *h, const void *data, size_t len, char *out, size_t outlen)
{
	const char *p = data;
	size_t got = 0;
	bool shut = false;
	int fd = connect_to(httpd__port(h));

	/* The server runs in this thread, so every step is a poll away; 20000 rounds is many
	 * seconds of slack for a server that must answer within microseconds. */
	for (int round = 0; round < 20000; round++) {
		char tmp[4096];
		ssize_t n;

		CHECK(httpd__poll(h) == 0);
		if (len) {
			n = send(fd, p, len, MSG_NOSIGNAL);
			if (n > 0) {
				p += n;
				len -= (size_t)n;
			} else if (n < 0 && errno != EAGAIN && errno != ENOTCONN) {
				len = 0; /* reset by the server */
			}
		}
		if (!len && !shut) {
			shut = true;
			shutdown(fd, SHUT_WR);
		}
		n = recv(fd, tmp, sizeof(tmp), 0);
		if (n == 0 || (n < 0 && errno != EAGAIN && errno != ENOTCONN)) {
			close(fd);
			return got;
		}
		if (n > 0) {
			size_t k = (size_t)n < outlen - got ? (size_t)n : outlen - got;

			memcpy(out + got, tmp, k);
			got += k;
		}
		if (round > 100)
			usleep(100);
	}
	CHECK(!"server neither answered nor closed");
	return 0;
}

static void check_server(const uint8_t *data, size_t size, bool bodies)
{
	static const char good[] = "GET /ok?n=3 HTTP/1.1\r\nHost: f\r\n\r\n";
	static const char good_post[] = "POST /ok?n=3 HTTP/1.1\r\nHost: f\r\n"
					"Transfer-Encoding: chunked\r\n\r\n"
					"2\r\nA\0\r\n1\r\nz\r\n0\r\n\r\n";
	static unsigned int runs;
	struct httpd *h = server(bodies);
	char out[65536];
	size_t got;
	int status;

	got = talk(h, data, size, out, sizeof(out) - 1);
	out[got] = '\0';
	if (got) {
		const char *p = out;

		/* whatever came back starts with a status line; libmicrohttpd sends an interim
		 * "100 Continue" for "Expect: 100-continue" even without a body */
		CHECK(got >= 12 && strncmp(p, "HTTP/1.", 7) == 0);
		status = atoi(p + 9);
		if (status == 100) {
			p = strstr(p, "\r\n\r\n");
			CHECK(p);
			p += 4;
			if (*p) {
				CHECK(strncmp(p, "HTTP/1.", 7) == 0 && strlen(p) >= 12);
				status = atoi(p + 9);
			} else {
				status = 200; /* closed after the 100: nothing more to check */
			}
		}
		CHECK(status >= 200 && status <= 599);
	}
	if (++runs % 64 == 0) {
		got = talk(h, good, sizeof(good) - 1, out, sizeof(out) - 1);
		out[got] = '\0';
		CHECK(strncmp(out, "HTTP/1.1 200 ", 13) == 0);
		CHECK(strstr(out, "\r\n\r\nxxx/ok\n") != NULL);
		if (bodies) {
			got = talk(h, good_post, sizeof(good_post) - 1, out, sizeof(out) - 1);
			out[got] = '\0';
			CHECK(strncmp(out, "HTTP/1.1 200 ", 13) == 0);
			CHECK(strstr(out, "\r\n\r\n41007axxx/ok\n") != NULL);
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s;

	if (size < 1)
		return 0;
	if (data[0] % 3 == 2) {
		check_server(data + 1, size - 1, (data[0] / 3) & 1);
		return 0;
	}
	/* The parsers take C strings: cut at the first NUL. */
	s = malloc(size);
	CHECK(s);
	memcpy(s, data + 1, size - 1);
	s[size - 1] = '\0';
	if (data[0] % 3 == 0)
		check_listen(s);
	else
		check_target(s);
	free(s);
	return 0;
}
