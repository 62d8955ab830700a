/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * httpd.c - GET/HEAD (and opt-in POST) server on libmicrohttpd in external polling mode (epoll),
 * single-threaded.
 *
 * Flow of one request through libmicrohttpd 0.9.75 callbacks:
 *   on_connection(STARTED)  takes a struct conn slot (socket context) for the connection
 *   on_uri                  request line read: keeps a copy of the raw target; the slot becomes
 *                           the request context
 *   on_access (1st call)    headers read: a request with a body is refused at once, which makes
 *                           libmicrohttpd close the connection without reading the body; with
 *                           max_body_bytes set, a POST body within the limit is accepted
 *   on_access (body calls)  POST only: body bytes appended to conn.body
 *   on_access (last call)   request complete: checks, then the handler, then the response
 *   on_completed            response sent or request aborted: the slot is reset for the next
 *                           request on the connection
 *   on_connection(CLOSED)   the slot is freed
 * Responses are only queued on the last call when the request is accepted: queueing on the first
 * call makes libmicrohttpd 0.9.75 close the connection afterwards (no keep-alive). While a body
 * is read libmicrohttpd 0.9.75 refuses to queue a response at all, so a chunked body growing past
 * the limit gets a short 413 written straight to the socket, and the connection is then closed
 * by returning MHD_NO.
 *
 * The target is parsed here rather than through libmicrohttpd's GET arguments: that keeps the
 * raw bytes for strict checks and exact limits, and it spares per-argument pool allocations whose
 * failure libmicrohttpd 0.9.75 handles poorly while parsing the request line.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

#include "httpd.h"
#include "log.h"

#define DEFAULT_LISTEN		"127.0.0.1:0"
#define DEFAULT_MAX_CONNECTIONS 64
#define DEFAULT_PER_IP		16
#define DEFAULT_TIMEOUT_S	10
#define DEFAULT_MAX_REQUEST	(16 * 1024)
#define MAX_MAX_REQUEST		(1024 * 1024)
#define DEFAULT_MAX_RESPONSE	((size_t)256 * 1024 * 1024)
#define DEFAULT_MAX_ARGS	16
#define MAX_MAX_ARGS		4096
#define MAX_TIMEOUT_S		(24 * 3600)
/*
 * libmicrohttpd keeps the request line, the headers, its header records (about 56 bytes each)
 * and the response header in one per-connection pool; leave room beyond max_request_bytes so
 * that every ordinary request up to the limit reaches our own exact check.
 */
#define POOL_SLACK 8192

#define TEXT_PLAIN "text/plain; charset=utf-8"

/* Per-connection state, also the request context between on_uri and on_completed. */
struct conn {
	bool used;
	bool head_done; /* headers of the current request received */
	bool answered;	/* we queued the response for the current request */
	bool body_seen; /* upload data arrived that the headers did not announce */
	bool cut;	/* shut down by us (slow request head or body, or client gone) */
	bool in_body;	/* reading an accepted POST body into body */
	int fd;
	uint64_t since_ms;  /* start of the wait for the current request head, or body */
	char *target;	    /* raw request target of the current request, owned */
	struct strbuf body; /* POST body of the current request, capped at max_body */
	size_t held;	    /* body bytes of the queued response, in httpd.inflight */
	char peer[HTTPD_ADDRSTRLEN];
};

struct httpd {
	struct MHD_Daemon *d;
	httpd_handler_fn handler;
	void *ctx;
	size_t max_request;
	size_t max_response;
	size_t max_inflight;
	size_t inflight; /* sum of conn.held */
	size_t max_body; /* 0: no POST, no bodies */
	uint32_t max_args;
	uint64_t deadline_ms;
	uint16_t port;
	struct conn *conns; /* max_connections slots */
	size_t nconns;
	struct httpd_stats stats;
	char last_log[256]; /* last libmicrohttpd message, for httpd__new errors */
};

/* ---- listen addresses ---- */

int httpd_parse_listen(const char *spec, struct sockaddr_storage *ss, socklen_t *len)
{
	char host[INET6_ADDRSTRLEN + 1];
	const char *port_s, *colon;
	struct sockaddr_storage tmp;
	size_t hlen;
	uint32_t port;
	bool v6 = false;

	if (!spec || !ss || !len || !*spec)
		return -EINVAL;
	if (spec[0] == '[') {
		const char *close = strchr(spec, ']');

		if (!close || close[1] != ':')
			return -EINVAL;
		hlen = (size_t)(close - spec - 1);
		if (hlen == 0 || hlen >= sizeof(host))
			return -EINVAL;
		memcpy(host, spec + 1, hlen);
		host[hlen] = '\0';
		port_s = close + 2;
		v6 = true;
	} else {
		colon = strchr(spec, ':');
		if (!colon) {
			strcpy(host, "127.0.0.1");
			port_s = spec;
		} else {
			if (strchr(colon + 1, ':'))
				return -EINVAL; /* bare IPv6 needs brackets */
			hlen = (size_t)(colon - spec);
			if (hlen >= sizeof(host))
				return -EINVAL;
			memcpy(host, spec, hlen);
			host[hlen] = '\0';
			if (hlen == 0 || strcmp(host, "localhost") == 0)
				strcpy(host, "127.0.0.1");
			port_s = colon + 1;
		}
	}
	if (parse_u32(port_s, 0, 65535, &port))
		return -EINVAL;

	memset(&tmp, 0, sizeof(tmp));
	if (v6) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&tmp;

		if (inet_pton(AF_INET6, host, &s6->sin6_addr) != 1)
			return -EINVAL;
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)port);
		*len = sizeof(*s6);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&tmp;

		if (inet_pton(AF_INET, host, &s4->sin_addr) != 1)
			return -EINVAL;
		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)port);
		*len = sizeof(*s4);
	}
	*ss = tmp;
	return 0;
}

int httpd_format_addr(const struct sockaddr *sa, char *buf, size_t len)
{
	char host[INET6_ADDRSTRLEN];
	unsigned int port;
	int n;

	if (len)
		buf[0] = '\0';
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;

		if (!inet_ntop(AF_INET, &s4->sin_addr, host, sizeof(host)))
			return -EAFNOSUPPORT;
		port = ntohs(s4->sin_port);
		n = snprintf(buf, len, "%s:%u", host, port);
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;

		if (!inet_ntop(AF_INET6, &s6->sin6_addr, host, sizeof(host)))
			return -EAFNOSUPPORT;
		port = ntohs(s6->sin6_port);
		n = snprintf(buf, len, "[%s]:%u", host, port);
	} else {
		return -EAFNOSUPPORT;
	}
	if (n < 0 || (size_t)n >= len) {
		if (len)
			buf[0] = '\0';
		return -ENOSPC;
	}
	return 0;
}

/* ---- request targets ---- */

static int hexval(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/*
 * Decode src[0..n) into dst (room for n bytes plus a NUL), '+' as ' ' when plus is set.
 * Returns the decoded length, or -EINVAL for a bad or NUL escape or a forbidden raw byte.
 */
static long decode(const char *src, size_t n, char *dst, bool plus)
{
	size_t i = 0, o = 0;

	while (i < n) {
		unsigned char c = (unsigned char)src[i];

		if (c == '%') {
			int hi, lo;

			if (n - i < 3)
				return -EINVAL;
			hi = hexval((unsigned char)src[i + 1]);
			lo = hexval((unsigned char)src[i + 2]);
			if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
				return -EINVAL;
			dst[o++] = (char)(hi << 4 | lo);
			i += 3;
			continue;
		}
		if (c <= 0x20 || c == 0x7f)
			return -EINVAL;
		dst[o++] = plus && c == '+' ? ' ' : (char)c;
		i++;
	}
	dst[o] = '\0';
	return (long)o;
}

int httpd_parse_target(const char *target, char *buf, size_t buflen, const char **path,
		       struct httpd_arg *args, size_t maxargs, size_t *nargs)
{
	const char *p = target, *q, *end;
	size_t tlen, n = 0;
	char *out = buf;
	long dlen;

	if (!target || !buf || !path || !nargs || (maxargs && !args))
		return -EINVAL;
	tlen = strlen(target);
	if (buflen <= tlen)
		return -ENOSPC;
	end = target + tlen;

	/* absolute-form: skip "scheme://authority" (RFC 9112 3.2.2) */
	if (strncasecmp(p, "http://", 7) == 0 || strncasecmp(p, "https://", 8) == 0) {
		p = strstr(p, "://") + 3;
		if (*p == '\0' || *p == '/' || *p == '?')
			return -EINVAL; /* no authority */
		p += strcspn(p, "/?");
		for (const char *a = target; a < p; a++)
			if ((unsigned char)*a <= 0x20 || *a == 0x7f)
				return -EINVAL;
		if (*p == '?' || *p == '\0') {
			/* "http://h" or "http://h?q": the path is "/", written where the at least
			 * 8 bytes of "http://h" would go, so out stays within buf below too. */
			out[0] = '/';
			out[1] = '\0';
			*path = out;
			out += 2;
			goto query;
		}
	} else if (*p != '/') {
		return -EINVAL;
	}

	q = p + strcspn(p, "?");
	dlen = decode(p, (size_t)(q - p), out, false);
	if (dlen < 0)
		return (int)dlen;
	*path = out;
	out += dlen + 1;
	p = q;

query:
	if (*p == '?')
		p++;
	while (p < end) {
		const char *seg_end = p + strcspn(p, "&"), *eq;

		if (seg_end == p) {
			p++;
			continue;
		}
		if (n == maxargs)
			return -E2BIG;
		eq = memchr(p, '=', (size_t)(seg_end - p));
		dlen = decode(p, (size_t)((eq ? eq : seg_end) - p), out, true);
		if (dlen < 0)
			return (int)dlen;
		args[n].key = out;
		out += dlen + 1;
		if (eq) {
			dlen = decode(eq + 1, (size_t)(seg_end - eq - 1), out, true);
			if (dlen < 0)
				return (int)dlen;
			args[n].value = out;
			out += dlen + 1;
		} else {
			args[n].value = "";
		}
		n++;
		p = *seg_end ? seg_end + 1 : seg_end;
	}
	*nargs = n;
	return 0;
}

const char *httpd_arg(const struct httpd_request *req, const char *key)
{
	for (size_t i = 0; i < req->nargs; i++)
		if (strcmp(req->args[i].key, key) == 0)
			return req->args[i].value;
	return NULL;
}

const char *httpd_header(const struct httpd_request *req, const char *name)
{
	if (!req || !req->priv || !name)
		return NULL;
	return MHD_lookup_connection_value(req->priv, MHD_HEADER_KIND, name);
}

int httpd_response_add(struct httpd_response *resp, const void *data, size_t len)
{
	if (!resp->err)
		resp->err = strbuf_add(&resp->body, data, len);
	return resp->err;
}

int httpd_response_addf(struct httpd_response *resp, const char *fmt, ...)
{
	va_list ap;
	char *s = NULL;
	int n;

	if (resp->err)
		return resp->err;
	va_start(ap, fmt);
	n = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (n < 0) {
		resp->err = -ENOMEM;
		return resp->err;
	}
	resp->err = strbuf_add(&resp->body, s, (size_t)n);
	free(s);
	return resp->err;
}

/* ---- responses ---- */

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void count_response(struct httpd *h, unsigned int status)
{
	switch (status / 100) {
	case 2:
		h->stats.responses_2xx++;
		break;
	case 3:
		h->stats.responses_3xx++;
		break;
	case 4:
		h->stats.responses_4xx++;
		break;
	case 5:
		h->stats.responses_5xx++;
		break;
	}
}

static bool is_tchar(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       (c && strchr("!#$%&'*+-.^_`|~", c));
}

/* Add the handler's "Name: value\r\n" lines to r. 0 or -EINVAL (bad line) / -ENOMEM. */
static int add_extra_headers(struct MHD_Response *r, const char *lines, size_t size)
{
	static const char *const reserved[] = { "Content-Type", "Content-Length",
						"Transfer-Encoding", "Connection", "Date" };
	char name[128], value[512];
	const char *p = lines, *end = memchr(lines, '\0', size);

	if (!end)
		return -EINVAL; /* not NUL-terminated */
	while (p < end) {
		const char *eol = strstr(p, "\r\n"), *colon, *v, *ve;
		size_t nlen, vlen;

		if (!eol)
			eol = end;
		colon = memchr(p, ':', (size_t)(eol - p));
		if (!colon || colon == p)
			return -EINVAL;
		nlen = (size_t)(colon - p);
		if (nlen >= sizeof(name))
			return -EINVAL;
		for (size_t i = 0; i < nlen; i++)
			if (!is_tchar((unsigned char)p[i]))
				return -EINVAL;
		for (v = colon + 1; v < eol && (*v == ' ' || *v == '\t'); v++)
			;
		for (ve = eol; ve > v && (ve[-1] == ' ' || ve[-1] == '\t'); ve--)
			;
		vlen = (size_t)(ve - v);
		if (vlen == 0 || vlen >= sizeof(value))
			return -EINVAL;
		for (size_t i = 0; i < vlen; i++) {
			unsigned char c = (unsigned char)v[i];

			if ((c < 0x20 && c != '\t') || c == 0x7f)
				return -EINVAL;
		}
		memcpy(name, p, nlen);
		name[nlen] = '\0';
		memcpy(value, v, vlen);
		value[vlen] = '\0';
		for (size_t i = 0; i < sizeof(reserved) / sizeof(reserved[0]); i++)
			if (strcasecmp(name, reserved[i]) == 0)
				return -EINVAL;
		if (MHD_add_response_header(r, name, value) != MHD_YES)
			return -ENOMEM;
		p = eol == end ? end : eol + 2;
	}
	return 0;
}

/*
 * Queue body[0..len) (heap, ownership moves in, freed also on failure) with status and headers.
 * extra is NULL or "Name: value\r\n" lines from a handler; allow NULL or the Allow value.
 */
static enum MHD_Result queue_take(struct httpd *h, struct MHD_Connection *c, struct conn *cn,
				  unsigned int status, const char *ctype, char *body, size_t len,
				  const char *extra, size_t extra_size, const char *allow)
{
	struct MHD_Response *r;
	enum MHD_Result ret;

	r = MHD_create_response_from_buffer_with_free_callback(len, body, free);
	if (!r) {
		free(body);
		return MHD_NO; /* libmicrohttpd closes the connection */
	}
	if (MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, ctype) != MHD_YES ||
	    (allow && MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, allow) != MHD_YES)) {
		MHD_destroy_response(r);
		return MHD_NO;
	}
	if (extra && add_extra_headers(r, extra, extra_size)) {
		static const char msg[] = "internal error: bad response header from handler\n";

		log_warn("httpd: handler for \"%s\" gave malformed extra headers", cn->target);
		MHD_destroy_response(r);
		body = strdup(msg);
		if (!body)
			return MHD_NO;
		return queue_take(h, c, cn, MHD_HTTP_INTERNAL_SERVER_ERROR, TEXT_PLAIN, body,
				  sizeof(msg) - 1, NULL, 0, NULL);
	}
	ret = MHD_queue_response(c, status, r);
	MHD_destroy_response(r); /* dropped our reference; the connection holds its own */
	if (ret == MHD_YES) {
		cn->answered = true;
		cn->held = len;
		h->inflight += len;
		count_response(h, status);
	}
	return ret;
}

/* Queue a short text/plain error reply; the message should end in "\n". */
static enum MHD_Result queue_error(struct httpd *h, struct MHD_Connection *c, struct conn *cn,
				   unsigned int status, const char *msg)
{
	const char *allow = NULL;
	char *body = strdup(msg);

	if (!body)
		return MHD_NO;
	if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
		allow = h->max_body ? "GET, HEAD, POST" : "GET, HEAD";
	return queue_take(h, c, cn, status, TEXT_PLAIN, body, strlen(body), NULL, 0, allow);
}

/*
 * Write a complete short reply straight to the socket, for the one case libmicrohttpd 0.9.75
 * cannot queue one: in the middle of reading a body. The caller then returns MHD_NO, which
 * makes libmicrohttpd close the connection (after a FIN behind these bytes). Nothing else is
 * sent on the connection by then: libmicrohttpd wrote at most a complete "100 Continue".
 */
static void send_raw_final(struct httpd *h, struct conn *cn, unsigned int status,
			   const char *reason, const char *msg)
{
	char buf[256];
	ssize_t w = -1;
	int n;

	n = snprintf(buf, sizeof(buf),
		     "HTTP/1.1 %u %s\r\nConnection: close\r\nContent-Type: %s\r\n"
		     "Content-Length: %zu\r\n\r\n%s",
		     status, reason, TEXT_PLAIN, strlen(msg), msg);
	if (n > 0 && (size_t)n < sizeof(buf) && cn->fd >= 0)
		w = send(cn->fd, buf, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT);
	if (w != n)
		log_debug("httpd: %u reply to %s not fully sent", status, cn->peer);
	cn->answered = true;
	count_response(h, status);
}

static bool is_get_or_head(const char *method)
{
	return strcmp(method, MHD_HTTP_METHOD_GET) == 0 ||
	       strcmp(method, MHD_HTTP_METHOD_HEAD) == 0;
}

static bool is_post(const char *method)
{
	return strcmp(method, MHD_HTTP_METHOD_POST) == 0;
}

static bool method_allowed(const struct httpd *h, const char *method)
{
	return is_get_or_head(method) || (h->max_body && is_post(method));
}

/* True when the headers announce a request body (libmicrohttpd validated Content-Length). */
static bool has_body(struct MHD_Connection *c)
{
	const char *cl, *te;

	te = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_TRANSFER_ENCODING);
	if (te)
		return true;
	cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
	return cl && cl[strspn(cl, "0 \t")] != '\0';
}

static enum MHD_Result reject_method(struct httpd *h, struct MHD_Connection *c, struct conn *cn)
{
	h->stats.rejected_method++;
	return queue_error(h, c, cn, MHD_HTTP_METHOD_NOT_ALLOWED,
			   h->max_body ? "method not allowed: use GET, HEAD or POST\n"
				       : "method not allowed: use GET or HEAD\n");
}

static enum MHD_Result reject_body(struct httpd *h, struct MHD_Connection *c, struct conn *cn)
{
	h->stats.rejected_size++;
	return queue_error(h, c, cn, MHD_HTTP_CONTENT_TOO_LARGE,
			   "request body not accepted: send GET or HEAD without a body\n");
}

static enum MHD_Result reject_large_body(struct httpd *h, struct MHD_Connection *c, struct conn *cn)
{
	char msg[64];

	h->stats.rejected_size++;
	snprintf(msg, sizeof(msg), "request body too large (max %zu bytes)\n", h->max_body);
	return queue_error(h, c, cn, MHD_HTTP_CONTENT_TOO_LARGE, msg);
}

/*
 * First call for a POST with bodies enabled: refuse a body we will not take, before any
 * "100 Continue" and without reading it, or start collecting it.
 */
static enum MHD_Result begin_body(struct httpd *h, struct MHD_Connection *c, struct conn *cn)
{
	const char *te, *cl;

	te = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_TRANSFER_ENCODING);
	cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
	if (te) {
		if (cl) {
			h->stats.rejected_malformed++;
			return queue_error(h, c, cn, MHD_HTTP_BAD_REQUEST,
					   "both Content-Length and Transfer-Encoding\n");
		}
		/* the only coding libmicrohttpd 0.9.75 decodes, and as the whole value */
		if (strcasecmp(te, "chunked") != 0) {
			h->stats.rejected_malformed++;
			return queue_error(h, c, cn, MHD_HTTP_NOT_IMPLEMENTED,
					   "unsupported Transfer-Encoding: use chunked alone\n");
		}
	} else if (cl) {
		/* libmicrohttpd accepted it as digits only; an overflow reads as ULLONG_MAX */
		unsigned long long n = strtoull(cl, NULL, 10);

		if (n > (unsigned long long)h->max_body)
			return reject_large_body(h, c, cn);
		if (n == 0)
			return MHD_YES;
	} else {
		return MHD_YES; /* no body: an empty one at the last call */
	}
	cn->in_body = true;
	cn->since_ms = now_ms(); /* the body deadline starts now */
	strbuf_init(&cn->body, h->max_body);
	return MHD_YES;
}

/* Body bytes of an accepted POST. MHD_NO (after a direct 413 or 503) closes the connection. */
static enum MHD_Result take_body(struct httpd *h, struct conn *cn, const char *data, size_t *size)
{
	int err = strbuf_add(&cn->body, data, *size);

	if (!err) {
		*size = 0;
		return MHD_YES;
	}
	cn->in_body = false;
	strbuf_release(&cn->body);
	if (err == -E2BIG) {
		char msg[64];

		h->stats.rejected_size++;
		log_debug("httpd: body from %s over %zu bytes", cn->peer, h->max_body);
		snprintf(msg, sizeof(msg), "request body too large (max %zu bytes)\n", h->max_body);
		send_raw_final(h, cn, MHD_HTTP_CONTENT_TOO_LARGE, "Content Too Large", msg);
	} else {
		send_raw_final(h, cn, MHD_HTTP_SERVICE_UNAVAILABLE, "Service Unavailable",
			       "out of memory\n");
	}
	return MHD_NO;
}

/* 503 with Retry-After, for max_inflight_bytes. */
static enum MHD_Result queue_busy(struct httpd *h, struct MHD_Connection *c, struct conn *cn)
{
	static const char msg[] = "server busy: too many large responses in flight, retry\n";
	static const char retry[] = "Retry-After: 1\r\n";
	char *body = strdup(msg);

	if (!body)
		return MHD_NO;
	return queue_take(h, c, cn, MHD_HTTP_SERVICE_UNAVAILABLE, TEXT_PLAIN, body, sizeof(msg) - 1,
			  retry, sizeof(retry), NULL);
}

/* Run the handler and queue its response (or a 500 in its place). */
static enum MHD_Result run_handler(struct httpd *h, struct MHD_Connection *c, struct conn *cn,
				   struct httpd_request *req)
{
	struct httpd_response resp = { .status = MHD_HTTP_OK };
	const char *ctype;
	char *body;
	size_t len;

	strbuf_init(&resp.body, h->max_response);
	h->handler(h->ctx, req, &resp);

	if (resp.err || resp.status < 200 || resp.status > 599) {
		strbuf_release(&resp.body);
		if (resp.err == -E2BIG) {
			log_warn("httpd: response to \"%s\" over %zu bytes", cn->target,
				 h->max_response);
			return queue_error(h, c, cn, MHD_HTTP_INTERNAL_SERVER_ERROR,
					   "response too large\n");
		}
		if (resp.err)
			log_warn("httpd: handler for \"%s\" failed: %s", cn->target,
				 strerror(resp.err < 0 ? -resp.err : resp.err));
		else
			log_warn("httpd: handler for \"%s\" gave status %d", cn->target,
				 resp.status);
		return queue_error(h, c, cn, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal error\n");
	}
	if (h->inflight &&
	    (h->inflight >= h->max_inflight || resp.body.len > h->max_inflight - h->inflight)) {
		strbuf_release(&resp.body);
		h->stats.rejected_busy++;
		log_debug("httpd: %zu response bytes held, refusing %zu more for \"%s\"",
			  h->inflight, resp.body.len, cn->target);
		return queue_busy(h, c, cn);
	}
	ctype = resp.content_type ? resp.content_type : TEXT_PLAIN;
	body = strbuf_detach(&resp.body, &len);
	if (!body) {
		strbuf_release(&resp.body);
		return MHD_NO;
	}
	return queue_take(h, c, cn, (unsigned int)resp.status, ctype, body, len, resp.extra_headers,
			  sizeof(resp.extra_headers), NULL);
}

/* The request is complete (with its whole body for POST): check it and answer. */
static enum MHD_Result dispatch(struct httpd *h, struct MHD_Connection *c, struct conn *cn,
				const char *method)
{
	const union MHD_ConnectionInfo *info;
	struct httpd_request req = { .method = method, .peer = cn->peer, .priv = c };
	struct httpd_arg *args = NULL;
	size_t tlen, maxargs;
	char *buf = NULL;
	enum MHD_Result ret;
	int err;

	if (cn->body_seen)
		return reject_body(h, c, cn);
	if (!method_allowed(h, method))
		return reject_method(h, c, cn);
	if (!cn->target)
		return queue_error(h, c, cn, MHD_HTTP_SERVICE_UNAVAILABLE, "out of memory\n");
	tlen = strlen(cn->target);
	if (tlen > h->max_request) {
		h->stats.rejected_size++;
		return queue_error(h, c, cn, MHD_HTTP_URI_TOO_LONG, "request target too long\n");
	}
	info = MHD_get_connection_info(c, MHD_CONNECTION_INFO_REQUEST_HEADER_SIZE);
	if (info && info->header_size > h->max_request) {
		h->stats.rejected_size++;
		return queue_error(h, c, cn, MHD_HTTP_REQUEST_HEADER_FIELDS_TOO_LARGE,
				   "request headers too large\n");
	}

	/* Every argument takes at least one byte of the target. */
	maxargs = tlen < h->max_args ? tlen : h->max_args;
	buf = malloc(tlen + 1);
	args = calloc(maxargs + 1, sizeof(*args));
	if (!buf || !args) {
		ret = queue_error(h, c, cn, MHD_HTTP_SERVICE_UNAVAILABLE, "out of memory\n");
		goto cleanup;
	}
	err = httpd_parse_target(cn->target, buf, tlen + 1, &req.path, args, maxargs, &req.nargs);
	if (err == -E2BIG) {
		char msg[64];

		h->stats.rejected_size++;
		snprintf(msg, sizeof(msg), "too many query arguments (max %u)\n", h->max_args);
		ret = queue_error(h, c, cn, MHD_HTTP_BAD_REQUEST, msg);
		goto cleanup;
	}
	if (err) {
		h->stats.rejected_malformed++;
		ret = queue_error(h, c, cn, MHD_HTTP_BAD_REQUEST,
				  "malformed request target (bad %-escape or character)\n");
		goto cleanup;
	}
	req.args = args;
	if (is_post(method)) {
		req.body = cn->body.buf ? cn->body.buf : "";
		req.body_len = cn->body.len;
		h->stats.bodies++;
		h->stats.body_bytes += req.body_len;
	}
	ret = run_handler(h, c, cn, &req);
cleanup:
	free(args);
	free(buf);
	strbuf_release(&cn->body); /* the early returns above leave it to on_completed */
	return ret;
}

/* ---- libmicrohttpd callbacks ---- */

static struct conn *conn_of(struct MHD_Connection *c)
{
	const union MHD_ConnectionInfo *info;

	info = MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	return info ? info->socket_context : NULL;
}

static enum MHD_Result on_access(void *cls, struct MHD_Connection *c, const char *url,
				 const char *method, const char *version, const char *upload_data,
				 size_t *upload_data_size, void **req_cls)
{
	struct httpd *h = cls;
	struct conn *cn = *req_cls;

	(void)url;
	(void)version;
	if (!cn)
		return MHD_NO; /* untracked connection (no slot): close it */
	if (!cn->head_done) {
		cn->head_done = true;
		if (h->max_body && is_post(method))
			return begin_body(h, c, cn);
		/* Answering now makes libmicrohttpd skip the body and close afterwards. */
		if (has_body(c))
			return is_get_or_head(method) ? reject_body(h, c, cn)
						      : reject_method(h, c, cn);
		return MHD_YES;
	}
	if (*upload_data_size) {
		if (cn->in_body)
			return take_body(h, cn, upload_data, upload_data_size);
		/* Unannounced body (cannot happen after has_body()): drop it, refuse at the end. */
		cn->body_seen = true;
		*upload_data_size = 0;
		return MHD_YES;
	}
	cn->in_body = false;
	if (cn->answered)
		return MHD_YES;
	return dispatch(h, c, cn, method);
}

static void *on_uri(void *cls, const char *uri, struct MHD_Connection *c)
{
	struct httpd *h = cls;
	struct conn *cn = conn_of(c);

	h->stats.requests++;
	if (!cn)
		return NULL;
	free(cn->target);
	cn->target = strdup(uri ? uri : ""); /* NULL is answered with a 503 */
	return cn;
}

static void on_completed(void *cls, struct MHD_Connection *c, void **req_cls,
			 enum MHD_RequestTerminationCode toe)
{
	struct httpd *h = cls;
	struct conn *cn = *req_cls;
	const union MHD_ConnectionInfo *info;

	(void)toe;
	if (!cn)
		return;
	if (!cn->answered) {
		/* libmicrohttpd's own error replies (missing Host, bad or oversized headers) */
		info = MHD_get_connection_info(c, MHD_CONNECTION_INFO_HTTP_STATUS);
		if (info) {
			count_response(h, info->http_status);
			if (info->http_status == MHD_HTTP_BAD_REQUEST)
				h->stats.rejected_malformed++;
			else if (info->http_status == MHD_HTTP_URI_TOO_LONG ||
				 info->http_status == MHD_HTTP_REQUEST_HEADER_FIELDS_TOO_LARGE ||
				 info->http_status == MHD_HTTP_CONTENT_TOO_LARGE)
				h->stats.rejected_size++;
		}
	}
	/* libmicrohttpd destroys the response right after this call */
	h->inflight -= cn->held;
	cn->held = 0;
	free(cn->target);
	cn->target = NULL;
	strbuf_release(&cn->body);
	cn->head_done = false;
	cn->answered = false;
	cn->body_seen = false;
	cn->in_body = false;
	cn->since_ms = now_ms();
	*req_cls = NULL;
}

static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
			  enum MHD_ConnectionNotificationCode toe)
{
	struct httpd *h = cls;
	const union MHD_ConnectionInfo *info;
	struct conn *cn = NULL;

	if (toe == MHD_CONNECTION_NOTIFY_CLOSED) {
		cn = *socket_context;
		if (cn) {
			h->inflight -= cn->held; /* 0 unless on_completed was skipped */
			free(cn->target);
			strbuf_release(&cn->body);
			memset(cn, 0, sizeof(*cn));
		}
		*socket_context = NULL;
		return;
	}
	h->stats.connections++;
	for (size_t i = 0; i < h->nconns; i++) {
		if (!h->conns[i].used) {
			cn = &h->conns[i];
			break;
		}
	}
	*socket_context = cn;
	if (!cn) {
		log_debug("httpd: no slot for a new connection");
		return; /* its requests are refused in on_access */
	}
	memset(cn, 0, sizeof(*cn));
	cn->used = true;
	cn->fd = -1;
	cn->since_ms = now_ms();
	info = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
	if (info)
		cn->fd = info->connect_fd;
	info = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	if (!info || !info->client_addr ||
	    httpd_format_addr(info->client_addr, cn->peer, sizeof(cn->peer)))
		strcpy(cn->peer, "?");
}

static __attribute__((format(printf, 2, 0))) void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
	struct httpd *h = cls;
	size_t n;

	vsnprintf(h->last_log, sizeof(h->last_log), fmt, ap);
	n = strlen(h->last_log);
	while (n && (h->last_log[n - 1] == '\n' || h->last_log[n - 1] == '\r'))
		h->last_log[--n] = '\0';
	log_debug("httpd: libmicrohttpd: %s", h->last_log);
}

/* ---- lifecycle ---- */

struct httpd *httpd__new(const struct httpd_opts *o, char *err, size_t errlen)
{
	const char *listen_spec = o && o->listen ? o->listen : DEFAULT_LISTEN;
	struct sockaddr_storage ss;
	char addr[HTTPD_ADDRSTRLEN];
	const union MHD_DaemonInfo *info;
	struct httpd *h = NULL;
	unsigned int flags = MHD_USE_EPOLL | MHD_USE_ERROR_LOG;
	uint32_t max_conn, per_ip, timeout_s;
	size_t pool;
	socklen_t sslen;
	int e;

	set_errf(err, errlen, "%s", "");
	if (!o || !o->handler) {
		set_errf(err, errlen, "no request handler");
		errno = EINVAL;
		return NULL;
	}
	if (httpd_parse_listen(listen_spec, &ss, &sslen)) {
		set_errf(err, errlen,
			 "invalid listen address \"%s\" (want ADDR:PORT, [V6]:PORT or PORT)",
			 listen_spec);
		errno = EINVAL;
		return NULL;
	}
	if (httpd_format_addr((struct sockaddr *)&ss, addr, sizeof(addr)))
		strcpy(addr, "?");
	max_conn = o->max_connections ? o->max_connections : DEFAULT_MAX_CONNECTIONS;
	per_ip = o->per_ip_connections ? o->per_ip_connections : DEFAULT_PER_IP;
	timeout_s = o->timeout_s ? o->timeout_s : DEFAULT_TIMEOUT_S;
	if (o->max_request_bytes > MAX_MAX_REQUEST || o->max_args > MAX_MAX_ARGS ||
	    timeout_s > MAX_TIMEOUT_S || max_conn > 65536) {
		set_errf(err, errlen, "httpd limits out of range");
		errno = EINVAL;
		return NULL;
	}

	h = calloc(1, sizeof(*h));
	if (!h)
		goto enomem;
	h->handler = o->handler;
	h->ctx = o->ctx;
	h->max_request = o->max_request_bytes ? o->max_request_bytes : DEFAULT_MAX_REQUEST;
	h->max_response = o->max_response_bytes ? o->max_response_bytes : DEFAULT_MAX_RESPONSE;
	h->max_inflight = o->max_inflight_bytes;
	if (!h->max_inflight)
		h->max_inflight = h->max_response > SIZE_MAX / 2 ? SIZE_MAX : 2 * h->max_response;
	h->max_args = o->max_args ? o->max_args : DEFAULT_MAX_ARGS;
	h->max_body = o->max_body_bytes;
	/* Past libmicrohttpd's idle timeout, so silent connections are its to close. */
	h->deadline_ms = (uint64_t)timeout_s * 2000;
	h->nconns = max_conn;
	h->conns = calloc(max_conn, sizeof(*h->conns));
	if (!h->conns)
		goto enomem;
	pool = 2 * h->max_request + POOL_SLACK;

	if (ss.ss_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)&ss;

		/* "[::]" also takes IPv4 clients; other IPv6 addresses are IPv6-only. */
		flags |=
			IN6_IS_ADDR_UNSPECIFIED(&s6->sin6_addr) ? MHD_USE_DUAL_STACK : MHD_USE_IPv6;
	}
	errno = 0;
	/*
	 * Variadic options: every value must have exactly the type libmicrohttpd reads.
	 * The logger goes first so that it also receives messages about later options.
	 */
	/* clang-format off */
	h->d = MHD_start_daemon(flags, 0, NULL, NULL, on_access, (void *)h,
		MHD_OPTION_EXTERNAL_LOGGER, (MHD_LogCallback)on_mhd_log, (void *)h,
		MHD_OPTION_SOCK_ADDR, (const struct sockaddr *)&ss,
		MHD_OPTION_CONNECTION_LIMIT, (unsigned int)max_conn,
		MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned int)per_ip,
		MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)timeout_s,
		MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)pool,
		MHD_OPTION_STRICT_FOR_CLIENT, (int)1,	/* 400 for HTTP/1.1 without Host */
		MHD_OPTION_URI_LOG_CALLBACK, on_uri, (void *)h,
		MHD_OPTION_NOTIFY_COMPLETED, (MHD_RequestCompletedCallback)on_completed, (void *)h,
		MHD_OPTION_NOTIFY_CONNECTION,
			(MHD_NotifyConnectionCallback)on_connection, (void *)h,
		MHD_OPTION_END);
	/* clang-format on */
	if (!h->d) {
		/* libmicrohttpd leaves the bind()/listen() errno in place; its log says more. */
		e = errno ? errno : EADDRNOTAVAIL;
		if (errno)
			set_errf(err, errlen, "cannot listen on %s: %s", addr, strerror(e));
		else
			set_errf(err, errlen, "cannot listen on %s: %s", addr,
				 h->last_log[0] ? h->last_log : "libmicrohttpd failed to start");
		httpd__free(h);
		errno = e;
		return NULL;
	}
	info = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_BIND_PORT);
	h->port = info ? info->port : 0;
	return h;

enomem:
	httpd__free(h);
	set_errf(err, errlen, "cannot start http server on %s: %s", addr, strerror(ENOMEM));
	errno = ENOMEM;
	return NULL;
}

void httpd__free(struct httpd *h)
{
	if (!h)
		return;
	if (h->d)
		MHD_stop_daemon(h->d); /* runs on_completed / on_connection for open connections */
	if (h->conns)
		for (size_t i = 0; i < h->nconns; i++) {
			free(h->conns[i].target);
			strbuf_release(&h->conns[i].body);
		}
	free(h->conns);
	free(h);
}

/* True when the client has closed its side: a FIN is queued and no data before it. */
static bool peer_closed(int fd)
{
	char b;

	return recv(fd, &b, 1, MSG_PEEK | MSG_DONTWAIT) == 0;
}

/*
 * Close connections waiting for a request head or a POST body that are overdue or whose client
 * has gone.
 *
 * Overdue: libmicrohttpd's timeout only measures idle time, so a client sending a byte every
 * few seconds would otherwise keep its slot forever. The deadline is twice that timeout, for the
 * head (from accept or the previous response) and again for the body (from the end of its
 * head): a silent connection has been closed by libmicrohttpd by then, so closed_slow counts
 * only trickles.
 * Gone: libmicrohttpd 0.9.75 with epoll misses a FIN that arrives together with data (a short
 * read clears its "read ready" flag and edge-triggered epoll sends no new event), so a client
 * that sends a request and half-closes would hold its slot until a timeout.
 *
 * shutdown() makes the socket report an error event; libmicrohttpd closes the connection in the
 * next MHD_run. Costs one non-blocking recv() per idle connection and call.
 */
static void reap_idle(struct httpd *h)
{
	uint64_t now = now_ms();

	for (size_t i = 0; i < h->nconns; i++) {
		struct conn *cn = &h->conns[i];

		if (!cn->used || (cn->head_done && !cn->in_body) || cn->cut || cn->fd < 0)
			continue;
		if (now - cn->since_ms >= h->deadline_ms) {
			h->stats.closed_slow++;
			log_debug("httpd: closing %s: request %s not complete after %llu ms",
				  cn->peer, cn->in_body ? "body" : "head",
				  (unsigned long long)(now - cn->since_ms));
		} else if (peer_closed(cn->fd)) {
			log_debug("httpd: closing %s: client closed its side", cn->peer);
		} else {
			continue;
		}
		cn->cut = true;
		shutdown(cn->fd, SHUT_RDWR);
	}
}

int httpd__poll(struct httpd *h)
{
	if (!h || !h->d)
		return -EINVAL;
	reap_idle(h);
	(void)MHD_run(h->d); /* MHD_NO only after shutdown; errors close single connections */
	return 0;
}

int httpd__wait_fd(const struct httpd *h)
{
	const union MHD_DaemonInfo *i = h && h->d ? MHD_get_daemon_info(h->d,
								      MHD_DAEMON_INFO_EPOLL_FD)
						  : NULL;

	return i ? i->epoll_fd : -1;
}

int httpd__timeout_ms(const struct httpd *h, int max_ms)
{
	MHD_UNSIGNED_LONG_LONG t;

	if (h && h->d && MHD_get_timeout(h->d, &t) == MHD_YES && t < (MHD_UNSIGNED_LONG_LONG)max_ms)
		return (int)t;
	return max_ms;
}

uint16_t httpd__port(const struct httpd *h)
{
	return h->port;
}

const struct httpd_stats *httpd__stats(const struct httpd *h)
{
	return &h->stats;
}
