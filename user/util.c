/* SPDX-License-Identifier: BSD-2-Clause */
/* util.c - capped growable buffer and strict number parsing. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util.h"

_Static_assert(ULLONG_MAX == UINT64_MAX, "strtoull must cover uint64_t exactly");

#define STRBUF_MIN_CAP 64

void strbuf_init(struct strbuf *sb, size_t max)
{
	sb->buf = NULL;
	sb->len = 0;
	sb->cap = 0;
	sb->max = max;
}

void strbuf_release(struct strbuf *sb)
{
	if (!sb)
		return;
	free(sb->buf);
	strbuf_init(sb, sb->max);
}

/* Make room for extra more bytes plus the NUL. Changes nothing on failure. */
static int strbuf_grow(struct strbuf *sb, size_t extra)
{
	size_t need, new_cap;
	char *p;

	if (extra > SIZE_MAX - 1 - sb->len)
		return -E2BIG;
	need = sb->len + extra;
	if (sb->max && need > sb->max)
		return -E2BIG;
	if (sb->buf && need < sb->cap)
		return 0;

	new_cap = sb->cap ? sb->cap : STRBUF_MIN_CAP;
	while (new_cap < need + 1) {
		if (new_cap > SIZE_MAX / 2) {
			new_cap = need + 1;
			break;
		}
		new_cap *= 2;
	}
	/* Never allocate past the cap; need <= max here, so max + 1 still fits. */
	if (sb->max && sb->max < SIZE_MAX && new_cap > sb->max + 1)
		new_cap = sb->max + 1;

	p = realloc(sb->buf, new_cap);
	if (!p)
		return -ENOMEM;
	if (!sb->buf)
		p[0] = '\0';
	sb->buf = p;
	sb->cap = new_cap;
	return 0;
}

int strbuf_add(struct strbuf *sb, const void *data, size_t len)
{
	int err;

	if (len == 0)
		return 0;
	err = strbuf_grow(sb, len);
	if (err)
		return err;
	memcpy(sb->buf + sb->len, data, len);
	sb->len += len;
	sb->buf[sb->len] = '\0';
	return 0;
}

int strbuf_addf(struct strbuf *sb, const char *fmt, ...)
{
	size_t avail = sb->buf ? sb->cap - sb->len : 0;
	va_list ap, ap2;
	int n, err = 0;

	va_start(ap, fmt);
	va_copy(ap2, ap);
	n = vsnprintf(sb->buf ? sb->buf + sb->len : NULL, avail, fmt, ap);
	if (n < 0) {
		err = errno ? -errno : -EINVAL;
		goto out;
	}
	if ((size_t)n >= avail) {
		err = strbuf_grow(sb, (size_t)n);
		if (err)
			goto out;
		n = vsnprintf(sb->buf + sb->len, (size_t)n + 1, fmt, ap2);
		if (n < 0) {
			err = errno ? -errno : -EINVAL;
			goto out;
		}
	} else if (sb->max && sb->len + (size_t)n > sb->max) {
		/* Unreachable while cap <= max + 1, but cheap to keep the contract local. */
		err = -E2BIG;
		goto out;
	}
	sb->len += (size_t)n;
out:
	/* A failed attempt may have written past len: put the terminator back. */
	if (sb->buf)
		sb->buf[sb->len] = '\0';
	va_end(ap2);
	va_end(ap);
	return err;
}

void strbuf_setlen(struct strbuf *sb, size_t len)
{
	if (!sb->buf || len > sb->len)
		return;
	sb->len = len;
	sb->buf[len] = '\0';
}

void strbuf_reset(struct strbuf *sb)
{
	strbuf_setlen(sb, 0);
}

char *strbuf_detach(struct strbuf *sb, size_t *len)
{
	char *p = sb->buf;

	if (!p) {
		p = malloc(1);
		if (!p) {
			errno = ENOMEM;
			return NULL;
		}
		p[0] = '\0';
	}
	if (len)
		*len = sb->len;
	strbuf_init(sb, sb->max);
	return p;
}

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/*
 * Read the run of decimal digits at s into *out and point *end just past it. s must start with a
 * digit (else -EINVAL and *end = s). Returns -ERANGE when the run does not fit in 64 bits; *end
 * is still set so that callers can report junk before range errors.
 */
static int scan_u64(const char *s, const char **end, uint64_t *out)
{
	unsigned long long v;
	char *e;

	*end = s;
	if (!is_digit(*s))
		return -EINVAL;
	/* strtoull also takes spaces and a sign (wrapping "-1"); the digit check rules them out. */
	errno = 0;
	v = strtoull(s, &e, 10);
	*end = e;
	if (errno == ERANGE)
		return -ERANGE;
	*out = v;
	return 0;
}

int parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	const char *end;
	uint64_t v = 0;
	int err;

	if (!s)
		return -EINVAL;
	err = scan_u64(s, &end, &v);
	if (err == -EINVAL || *end != '\0')
		return -EINVAL;
	if (err)
		return err;
	if (v < min || v > max)
		return -ERANGE;
	*out = v;
	return 0;
}

int parse_u32(const char *s, uint32_t min, uint32_t max, uint32_t *out)
{
	uint64_t v;
	int err;

	err = parse_u64(s, min, max, &v);
	if (err)
		return err;
	*out = (uint32_t)v;
	return 0;
}

/* Fraction digits beyond this many (after trailing zeros) can never give whole milliseconds. */
#define DURATION_MAX_FRAC_DIGITS 9

int parse_duration_ms(const char *s, uint64_t *ms)
{
	uint64_t whole = 0, frac = 0, pow10 = 1, unit, frac_ms;
	const char *p, *end, *digits, *last;
	size_t nfrac;
	int range_err;

	if (!s)
		return -EINVAL;
	range_err = scan_u64(s, &end, &whole);
	if (range_err == -EINVAL)
		return -EINVAL;
	p = end;

	nfrac = 0;
	if (*p == '.') {
		digits = ++p;
		if (!is_digit(*p))
			return -EINVAL;
		while (is_digit(*p))
			p++;
		/* "1.500" is "1.5": trailing zeros carry no precision. */
		last = p;
		while (last > digits && last[-1] == '0')
			last--;
		nfrac = (size_t)(last - digits);
		if (nfrac <= DURATION_MAX_FRAC_DIGITS) {
			for (; digits < last; digits++) {
				frac = frac * 10 + (uint64_t)(*digits - '0');
				pow10 *= 10;
			}
		}
	}

	if (*p == '\0' || strcmp(p, "s") == 0)
		unit = 1000;
	else if (strcmp(p, "ms") == 0)
		unit = 1;
	else if (strcmp(p, "m") == 0)
		unit = 60 * 1000;
	else if (strcmp(p, "h") == 0)
		unit = 60 * 60 * 1000;
	else
		return -EINVAL;

	if (nfrac > DURATION_MAX_FRAC_DIGITS)
		return -EINVAL;
	if (range_err)
		return range_err;
	/* frac < 10^9 and unit <= 3.6e6, so the product stays below 2^52. */
	if ((frac * unit) % pow10 != 0)
		return -EINVAL;
	frac_ms = frac * unit / pow10;
	if (whole > (UINT64_MAX - frac_ms) / unit)
		return -ERANGE;
	*ms = whole * unit + frac_ms;
	return 0;
}

struct pid_slot {
	int pid;
	size_t pos;
};

static int pid_slot_cmp(const void *a, const void *b)
{
	const struct pid_slot *x = a, *y = b;

	if (x->pid != y->pid)
		return x->pid < y->pid ? -1 : 1;
	return x->pos < y->pos ? -1 : (x->pos > y->pos);
}

/* Drop repeated values from arr[0..*cnt), keeping first occurrences in order. O(n log n). */
static int pids_dedup(int *arr, size_t *cnt)
{
	struct pid_slot *slots = NULL;
	bool *drop = NULL;
	size_t i, out;
	int err = 0;

	if (*cnt < 2)
		return 0;
	slots = calloc(*cnt, sizeof(*slots));
	drop = calloc(*cnt, sizeof(*drop));
	if (!slots || !drop) {
		err = -ENOMEM;
		goto cleanup;
	}
	for (i = 0; i < *cnt; i++) {
		slots[i].pid = arr[i];
		slots[i].pos = i;
	}
	qsort(slots, *cnt, sizeof(*slots), pid_slot_cmp);
	for (i = 1; i < *cnt; i++) {
		if (slots[i].pid == slots[i - 1].pid)
			drop[slots[i].pos] = true;
	}
	for (i = 0, out = 0; i < *cnt; i++) {
		if (!drop[i])
			arr[out++] = arr[i];
	}
	*cnt = out;
cleanup:
	free(drop);
	free(slots);
	return err;
}

int parse_pid_list(const char *s, int **pids, size_t *n)
{
	size_t items = 1, cnt, ilen;
	const char *p, *comma, *end;
	int *arr = NULL;
	uint64_t v = 0;
	int err;

	if (!s || !pids || !n || (*n && !*pids))
		return -EINVAL;
	if (*s == '\0')
		return -EINVAL;
	for (p = s; *p; p++)
		items += *p == ',';
	/* items <= strlen(s) + 1, so only the sum with *n can overflow. */
	if (*n > SIZE_MAX / sizeof(int) - items)
		return -ENOMEM;
	arr = malloc((*n + items) * sizeof(int));
	if (!arr)
		return -ENOMEM;
	if (*n)
		memcpy(arr, *pids, *n * sizeof(int));
	cnt = *n;

	for (p = s;; p = comma + 1) {
		comma = strchr(p, ',');
		ilen = comma ? (size_t)(comma - p) : strlen(p);
		if (ilen == 0) {
			err = -EINVAL;
			goto err_out;
		}
		err = scan_u64(p, &end, &v);
		if (err == -EINVAL || end != p + ilen) {
			err = -EINVAL;
			goto err_out;
		}
		if (err)
			goto err_out;
		if (v < 1 || v > INT_MAX) {
			err = -ERANGE;
			goto err_out;
		}
		arr[cnt++] = (int)v;
		if (!comma)
			break;
	}

	err = pids_dedup(arr, &cnt);
	if (err)
		goto err_out;
	free(*pids);
	*pids = arr;
	*n = cnt;
	return 0;

err_out:
	free(arr);
	return err;
}

void set_errf(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!err || !errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

int token_read_file(const char *path, size_t max, char **out)
{
	size_t len = 0, start, end;
	char *buf;
	char *nl, *tok;
	int fd, err = 0;

	if (!max || max > (1u << 20))
		return -EINVAL;
	buf = malloc(max + 1);
	if (!buf)
		return -ENOMEM;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		err = -errno;
		free(buf);
		return err;
	}
	while (len < max) {
		ssize_t n = read(fd, buf + len, max - len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			err = -errno;
			break;
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (memchr(buf, '\n', len))
			break;
	}
	close(fd);
	if (err)
		goto out;
	buf[len] = '\0';
	nl = memchr(buf, '\n', len);
	if (nl) {
		len = (size_t)(nl - buf);
	} else if (len == max) {
		err = -E2BIG;
		goto out;
	}
	for (start = 0; start < len && (buf[start] == ' ' || buf[start] == '\t'); start++)
		;
	for (end = len;
	     end > start && (buf[end - 1] == ' ' || buf[end - 1] == '\t' || buf[end - 1] == '\r');
	     end--)
		;
	if (end == start) {
		err = -EINVAL;
		goto out;
	}
	for (size_t i = start; i < end; i++) {
		unsigned char c = (unsigned char)buf[i];

		/* A header value: no control characters (CR/LF injection), no spaces. */
		if (c <= 0x20 || c == 0x7f) {
			err = -EINVAL;
			goto out;
		}
	}
	tok = strndup(buf + start, end - start);
	if (!tok) {
		err = -ENOMEM;
		goto out;
	}
	*out = tok;
out:
	explicit_bzero(buf, max + 1);
	free(buf);
	return err;
}

/* ---- JSON ---- */

int strbuf_add_json(struct strbuf *sb, const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s, *end = p + len;
	int e = strbuf_add(sb, "\"", 1);

	while (!e && p < end) {
		unsigned char c = *p;
		size_t n = 0;

		if (c == '"' || c == '\\') {
			e = strbuf_addf(sb, "\\%c", c);
			p++;
			continue;
		}
		if (c < 0x20 || c == 0x7f) {
			e = strbuf_addf(sb, "\\u%04x", c);
			p++;
			continue;
		}
		if (c < 0x80)
			n = 1;
		else if (c >= 0xc2 && c <= 0xdf)
			n = 2;
		else if (c >= 0xe0 && c <= 0xef)
			n = 3;
		else if (c >= 0xf0 && c <= 0xf4)
			n = 4;
		if (n > 1 && (size_t)(end - p) >= n) {
			/* continuation bytes, no overlongs, no surrogates, nothing past U+10FFFF */
			bool ok = true;

			for (size_t k = 1; k < n; k++)
				ok = ok && (p[k] & 0xc0) == 0x80;
			if (ok && n == 3)
				ok = !(c == 0xe0 && p[1] < 0xa0) && !(c == 0xed && p[1] > 0x9f);
			if (ok && n == 4)
				ok = !(c == 0xf0 && p[1] < 0x90) && !(c == 0xf4 && p[1] > 0x8f);
			if (!ok)
				n = 0;
		} else if (n > 1) {
			n = 0;
		}
		if (n) {
			e = strbuf_add(sb, p, n);
			p += n;
		} else {
			e = strbuf_add(sb, "\xef\xbf\xbd", 3);
			p++;
		}
	}
	return e ? e : strbuf_add(sb, "\"", 1);
}
