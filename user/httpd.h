/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * httpd.h - a small GET/HEAD (and opt-in POST) HTTP server on libmicrohttpd, driven from the
 * caller's loop.
 *
 * There is no thread: libmicrohttpd runs in "external polling" mode (epoll inside, so sockets
 * above FD_SETSIZE are fine) and all network work, including calls to the handler, happens inside
 * httpd__poll(), which never blocks. The handler may therefore read the caller's data without
 * locks. Call httpd__poll() often (every 20 ms or so): nothing is accepted, read, answered or
 * timed out in between.
 *
 * Untrusted input is bounded: connections (in total and per client address), request line plus
 * headers, query arguments, request bodies, time, and response bytes (per response and held in
 * total). By default (max_body_bytes 0) a request with a body is refused without reading the
 * body, and only GET and HEAD are served. With max_body_bytes set, POST is served too: its body
 * is read into memory (at most max_body_bytes, so up to max_connections x max_body_bytes in
 * total) and the handler runs once the whole body is there. Keep-alive and pipelining work; a
 * connection is closed after HTTP/1.0 requests without keep-alive and after refused bodies.
 *
 * Replies httpd sends itself are short text/plain bodies ending in "\n". libmicrohttpd answers
 * some protocol errors on its own, before httpd sees the request, with its small HTML bodies:
 * 400 (malformed request line or header, HTTP/1.1 without Host), 414/431 (request larger than
 * its per-connection buffer), 505 (HTTP version), 400 or 413 for a malformed or absurd chunk
 * size in a chunked body. It also sends an interim "100 Continue" to a request that carries
 * "Expect: 100-continue", unless httpd refuses it at once (413 for a body over the limit, 405,
 * ...). Not thread-safe: one thread uses a given struct httpd.
 */
#ifndef PYSAMP_HTTPD_H
#define PYSAMP_HTTPD_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "util.h"

/* Room for "[v6-address]:port" and its NUL, as written by httpd_format_addr(). */
#define HTTPD_ADDRSTRLEN 64

/* One decoded query argument. value is "" for a bare "?flag" (and for "?flag="). */
struct httpd_arg {
	const char *key;
	const char *value;
};

/*
 * A request as the handler sees it. Every pointer is borrowed and valid only during the handler
 * call. Strings are decoded (%XX, and '+' as ' ' in the query) and never contain a NUL byte;
 * the body is raw bytes.
 */
struct httpd_request {
	const char *method;	      /* "GET", "HEAD", or "POST" when max_body_bytes > 0
					 * (others never reach the handler) */
	const char *path;	      /* decoded path, always starting with '/', e.g. "/metrics";
					 * not normalised ("/a/../b" stays as is) */
	const struct httpd_arg *args; /* query arguments in order; duplicates kept */
	size_t nargs;
	const char *peer; /* client address, "127.0.0.1:54321" or "[::1]:54321" */
	/*
	 * POST: the complete body as received (Content-Length or chunked, de-chunked but not
	 * decoded otherwise: see httpd_header(req, "Content-Encoding")), body_len bytes that may
	 * include NULs, followed by a '\0' not counted in body_len; "" with body_len 0 for an
	 * empty body. GET and HEAD: NULL and 0. Owned by httpd, freed after the handler returns.
	 */
	const char *body;
	size_t body_len;
	void *priv; /* httpd's own, for httpd_header(); callers leave it alone */
};

/*
 * A response, filled by the handler. httpd initialises it before the call:
 *   status        200. Must end up in [200, 599], otherwise the client gets a 500.
 *   content_type  NULL, meaning "text/plain; charset=utf-8". Any other value must stay valid
 *                 until the handler returns (a string literal is the usual choice).
 *   body          empty, with a cap (body.max) of max_response_bytes. The handler appends to it;
 *                 httpd owns it, sends it without copying and frees it. For HEAD the body may be
 *                 filled as for GET: only its length is sent.
 *   extra_headers "" - optional "Name: value\r\n" lines (the last "\r\n" may be left out), for
 *                 example "X-Pysamp-From: host1\r\n". Names must be HTTP tokens, values non-empty
 *                 without control characters. Content-Type, Content-Length, Transfer-Encoding,
 *                 Connection and Date are refused (httpd or libmicrohttpd sets them). A malformed
 *                 line turns the response into a 500, so mistakes show up in tests.
 *   err           0. Sticky error of httpd_response_add/_addf: the first failure is kept there and
 *                 later appends do nothing. A handler appending with strbuf_add() directly sets
 *                 err itself on failure. Non-zero err replaces the response by a 500:
 *                 "response too large" for -E2BIG, else "internal error".
 */
struct httpd_response {
	int status;
	const char *content_type;
	struct strbuf body;
	char extra_headers[512];
	int err;
};

/*
 * Called for each GET or HEAD request (and POST with its whole body, when enabled) that passed
 * every check. Runs inside httpd__poll(); it must not call httpd__free() or httpd__poll() on the
 * same server.
 */
typedef void (*httpd_handler_fn)(void *ctx, const struct httpd_request *req,
				 struct httpd_response *resp);

/* Settings for httpd__new(). Zero fields take the default in brackets. */
struct httpd_opts {
	const char *listen;	  /* see httpd_parse_listen() ["127.0.0.1:0" if NULL] */
	httpd_handler_fn handler; /* required */
	void *ctx;		  /* passed to handler, borrowed */
	/* open connections in total [64]; more wait in the listen backlog */
	uint32_t max_connections;
	/* open connections per client address [16]; more are closed right after accept */
	uint32_t per_ip_connections;
	/*
	 * [10] a connection idle this long is closed; so is one whose request line plus headers
	 * is still incomplete after twice this (counted from accept or from the end of the
	 * previous response), and one whose request body is still incomplete twice this after
	 * its headers were complete, so a client trickling bytes cannot hold a slot
	 */
	uint32_t timeout_s;
	/*
	 * request line + headers [16 KiB], at most 1 MiB. Larger: 414 or 431 from httpd, or from
	 * libmicrohttpd (or a closed connection) when far larger
	 */
	size_t max_request_bytes;
	/* body cap [256 MiB]; a handler going over it makes the reply a 500 */
	size_t max_response_bytes;
	/*
	 * bodies held for all connections together until sent [2 x max_response_bytes]; a reply
	 * that would go over it becomes a 503 with Retry-After (one always fits when none is held)
	 */
	size_t max_inflight_bytes;
	/* query arguments [16], at most 4096; more get a 400 */
	uint32_t max_args;
	/*
	 * [0] request body cap. 0: only GET and HEAD, and every request with a body is refused
	 * without reading it (405 for other methods, 413 for GET and HEAD). > 0: POST is served
	 * too, with a body of at most this many bytes (Content-Length, or Transfer-Encoding:
	 * chunked alone). A Content-Length over it gets a 413 at once, before any
	 * "100 Continue" and without reading the body; a chunked body that grows past it gets a
	 * 413 as soon as it does. Both close the connection. Other transfer codings get a 501,
	 * Content-Length together with Transfer-Encoding a 400. GET and HEAD with a body are
	 * still refused (413), and other methods (405) list POST in Allow.
	 */
	size_t max_body_bytes;
};

/*
 * Counters since httpd__new(). Responses are counted by class when queued, including the error
 * replies libmicrohttpd sends itself once a request line was read. A request line too long to be
 * read at all gets libmicrohttpd's 414 and shows up only in connections.
 */
struct httpd_stats {
	uint64_t requests; /* request lines read (every method, before any check) */
	uint64_t responses_2xx;
	uint64_t responses_3xx;
	uint64_t responses_4xx;
	uint64_t responses_5xx;
	uint64_t rejected_method; /* 405: method other than GET and HEAD (and POST if enabled) */
	/*
	 * 413 request body (refused, or over max_body_bytes), 414/431 request too large, 400 too
	 * many query arguments
	 */
	uint64_t rejected_size;
	/*
	 * other 400s: bad target or escape, bad headers, no Host, bad chunked body,
	 * Content-Length with Transfer-Encoding; 501 for a transfer coding other than chunked
	 */
	uint64_t rejected_malformed;
	uint64_t rejected_busy; /* 503: max_inflight_bytes reached */
	/* connections cut for a request head, or a body, slower than 2 x timeout_s */
	uint64_t closed_slow;
	uint64_t connections; /* connections accepted */
	uint64_t bodies;      /* POST requests handed to the handler (empty bodies included) */
	uint64_t body_bytes;  /* the sum of their body_len */
};

struct httpd;

/*
 * Parse a listen address into *ss and *len (for bind()). Accepted forms:
 *   "ADDR:PORT"    ADDR a numeric IPv4 address or "localhost" (127.0.0.1)
 *   "[V6]:PORT"    a numeric IPv6 address without zone ("[::]" listens on IPv4 too)
 *   ":PORT", "PORT" 127.0.0.1
 * PORT is decimal in [0, 65535] as parse_u32() reads it; 0 means any free port. No host name
 * lookups. Returns 0, or -EINVAL for NULL or malformed input (then *ss and *len are unchanged).
 */
int httpd_parse_listen(const char *spec, struct sockaddr_storage *ss, socklen_t *len)
	__attribute__((warn_unused_result));

/*
 * Write an AF_INET or AF_INET6 address as "1.2.3.4:80" or "[::1]:80" into buf, NUL-terminated
 * (HTTPD_ADDRSTRLEN bytes always suffice). Returns 0, -EAFNOSUPPORT for other families, or
 * -ENOSPC when buf is too small (then buf holds "" if len > 0).
 */
int httpd_format_addr(const struct sockaddr *sa, char *buf, size_t len)
	__attribute__((warn_unused_result));

/*
 * Split a request target into a decoded path and query arguments (used by the server; exposed
 * for tests and fuzzing). target is origin-form ("/path?query") or absolute-form
 * ("http://host:port/path?query", scheme case-insensitive; the path defaults to "/").
 *
 * The target may not contain bytes below 0x21 or 0x7f. '%' must be followed by two hex digits,
 * and no escape may decode to NUL. In the query, '+' decodes to ' ', arguments are separated by
 * '&', empty ones ("a&&b") are skipped, and the first '=' splits key from value. A '#' is an
 * ordinary byte.
 *
 * Decoded strings are written into buf, which needs strlen(target) + 1 bytes; *path, args[i].key
 * and args[i].value point into buf (or to a static ""). At most maxargs arguments are stored.
 *
 * Returns 0 with *path, args[0..*nargs) set; -EINVAL for a malformed target; -E2BIG when there
 * are more than maxargs arguments; -ENOSPC when buf is too small. On failure the outputs and buf
 * hold nothing useful.
 */
int httpd_parse_target(const char *target, char *buf, size_t buflen, const char **path,
		       struct httpd_arg *args, size_t maxargs, size_t *nargs)
	__attribute__((warn_unused_result));

/*
 * Bind, listen and start serving with o->handler. Returns the server (free with httpd__free()),
 * or NULL with errno set (EINVAL for bad options, else the socket error) and a message in err
 * (errlen bytes, may be 0), e.g. "cannot listen on 127.0.0.1:9999: Address already in use".
 * o is copied; o->listen may be freed after the call.
 */
struct httpd *httpd__new(const struct httpd_opts *o, char *err, size_t errlen)
	__attribute__((warn_unused_result));

/* Close every connection and the listening socket, and free h. Accepts NULL. */
void httpd__free(struct httpd *h);

/*
 * Do all pending network work without blocking: accept, read, call the handler, write, and
 * close timed-out connections. Returns 0, or -EINVAL for a NULL h. Errors on single
 * connections close them and are not reported here.
 */
int httpd__poll(struct httpd *h) __attribute__((warn_unused_result));

/*
 * For a caller that sleeps in poll(2) between httpd__poll calls: a descriptor (libmicrohttpd's
 * epoll set) that turns readable when there is network work, or -1; and how long it may sleep,
 * at most max_ms, before libmicrohttpd's timers need a call. httpd's own slow-request deadlines
 * are checked on each httpd__poll, so keep max_ms well below timeout_s.
 */
int httpd__wait_fd(const struct httpd *h);
int httpd__timeout_ms(const struct httpd *h, int max_ms);

/* The bound port (the actual one when listening on port 0). */
uint16_t httpd__port(const struct httpd *h);

/* Counters, borrowed and updated in place until httpd__free(). */
const struct httpd_stats *httpd__stats(const struct httpd *h);

/* The value of the first argument named key, or NULL when there is none. Borrowed from req. */
const char *httpd_arg(const struct httpd_request *req, const char *key);

/*
 * The value of the first request header called name (case-insensitive, e.g. "authorization"
 * finds "Authorization"), or NULL when there is none (or req was not made by httpd). Valid only
 * during the handler call, like req. The value is as libmicrohttpd stores it: leading blanks
 * removed, trailing ones kept. Trailers of a chunked body are not searched.
 */
const char *httpd_header(const struct httpd_request *req, const char *name);

/*
 * Append to resp->body. Once an append fails, resp->err keeps the first error and later calls
 * return it without appending, so a handler may append unchecked and look at resp->err (or the
 * return value) only where stopping early saves work. Return 0 or the sticky -errno (-E2BIG past
 * max_response_bytes, -ENOMEM).
 */
int httpd_response_add(struct httpd_response *resp, const void *data, size_t len);
int httpd_response_addf(struct httpd_response *resp, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#endif /* PYSAMP_HTTPD_H */
