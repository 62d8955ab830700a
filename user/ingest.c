/* SPDX-License-Identifier: BSD-2-Clause */
/* ingest.c - Pyroscope ingest name, times and folded bodies. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ingest.h"
#include "util.h"

#define MAX_COUNT (1ULL << 53)

static const char *const cpu_types[] = {
	"cpu", "itimer", "wall", "seconds", "milliseconds", "microseconds", "nanoseconds",
};

static bool app_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '_' || c == '.' || c == '/' || c == '-';
}

static bool key_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '_' || c == '.';
}

static bool value_char(unsigned char c)
{
	return c >= 0x20 && c != 0x7f && c != ',' && c != '{' && c != '}' && c != '=' &&
	       c != '"' && c != '\'';
}

struct label {
	const char *k, *v;
	size_t klen, vlen;
};

static int label_cmp(const void *a, const void *b)
{
	const struct label *x = a, *y = b;
	size_t n = x->klen < y->klen ? x->klen : y->klen;
	int c = memcmp(x->k, y->k, n);

	return c ? c : (x->klen > y->klen) - (x->klen < y->klen);
}

static void trim(const char **s, size_t *len)
{
	while (*len && (**s == ' ' || **s == '\t')) {
		(*s)++;
		(*len)--;
	}
	while (*len && ((*s)[*len - 1] == ' ' || (*s)[*len - 1] == '\t'))
		(*len)--;
}

static int parse_labels(const char *p, size_t len, struct ingest_name *out, char *err,
			size_t errlen)
{
	struct label lv[INGEST_MAX_LABELS];
	size_t n = 0, used = 0;

	while (len) {
		const char *comma = memchr(p, ',', len), *eq;
		size_t plen = comma ? (size_t)(comma - p) : len;
		struct label l;

		eq = memchr(p, '=', plen);
		if (!eq) {
			set_errf(err, errlen, "label '%.*s': expected KEY=VALUE", (int)(plen > 64 ? 64 : plen), p);
			return -EINVAL;
		}
		l.k = p;
		l.klen = (size_t)(eq - p);
		l.v = eq + 1;
		l.vlen = plen - l.klen - 1;
		trim(&l.k, &l.klen);
		trim(&l.v, &l.vlen);
		if (!l.klen || l.klen > 1024 || (l.klen >= 2 && l.k[0] == '_' && l.k[1] == '_')) {
			set_errf(err, errlen, "label key '%.*s': empty, reserved (__) or too long",
				 (int)(l.klen > 64 ? 64 : l.klen), l.k);
			return -EINVAL;
		}
		for (size_t i = 0; i < l.klen; i++) {
			if (!key_char(l.k[i])) {
				set_errf(err, errlen, "label key '%.*s': only [A-Za-z0-9_.]",
					 (int)(l.klen > 64 ? 64 : l.klen), l.k);
				return -EINVAL;
			}
		}
		if (!l.vlen || l.vlen > 2048) {
			set_errf(err, errlen, "label '%.*s': value empty or longer than 2048 bytes",
				 (int)(l.klen > 64 ? 64 : l.klen), l.k);
			return -EINVAL;
		}
		for (size_t i = 0; i < l.vlen; i++) {
			if (!value_char((unsigned char)l.v[i])) {
				set_errf(err, errlen, "label '%.*s': value has a forbidden byte",
					 (int)(l.klen > 64 ? 64 : l.klen), l.k);
				return -EINVAL;
			}
		}
		if (n == INGEST_MAX_LABELS) {
			set_errf(err, errlen, "more than %d labels", INGEST_MAX_LABELS);
			return -EINVAL;
		}
		lv[n++] = l;
		if (!comma)
			break;
		p = comma + 1;
		len -= plen + 1;
		if (!len) {
			set_errf(err, errlen, "%s", "a label list may not end with ','");
			return -EINVAL;
		}
	}
	qsort(lv, n, sizeof(lv[0]), label_cmp);
	for (size_t i = 0; i < n; i++) {
		int w;

		if (i && label_cmp(&lv[i - 1], &lv[i]) == 0) {
			set_errf(err, errlen, "label '%.*s' given twice",
				 (int)(lv[i].klen > 64 ? 64 : lv[i].klen), lv[i].k);
			return -EINVAL;
		}
		w = snprintf(out->labels + used, sizeof(out->labels) - used, "%s%.*s=%.*s",
			     i ? "," : "", (int)lv[i].klen, lv[i].k, (int)lv[i].vlen, lv[i].v);
		if (w < 0 || (size_t)w >= sizeof(out->labels) - used) {
			set_errf(err, errlen, "labels longer than %d bytes", INGEST_LABELS_MAX - 1);
			return -EINVAL;
		}
		used += (size_t)w;
	}
	return 0;
}

int ingest_parse_name(const char *name, struct ingest_name *out, char *err, size_t errlen)
{
	const char *brace, *app = name, *dot;
	size_t alen;

	memset(out, 0, sizeof(*out));
	if (!name || !*name) {
		set_errf(err, errlen, "%s", "name is required");
		return -EINVAL;
	}
	brace = strchr(name, '{');
	alen = brace ? (size_t)(brace - name) : strlen(name);
	trim(&app, &alen);
	if (!alen || alen >= sizeof(out->app)) {
		set_errf(err, errlen, "%s", "name: the application is empty or too long");
		return -EINVAL;
	}
	for (size_t i = 0; i < alen; i++) {
		if (!app_char(app[i])) {
			set_errf(err, errlen, "name '%.*s': the application must match [A-Za-z0-9_./-]+",
				 (int)(alen > 64 ? 64 : alen), app);
			return -EINVAL;
		}
	}
	dot = memrchr(app, '.', alen);
	snprintf(out->type, sizeof(out->type), "cpu");
	if (dot) {
		size_t tlen = alen - (size_t)(dot - app) - 1;
		bool known = false;

		for (size_t i = 0; i < sizeof(cpu_types) / sizeof(cpu_types[0]); i++)
			known |= tlen == strlen(cpu_types[i]) && !memcmp(dot + 1, cpu_types[i], tlen);
		if (!known || dot == app) {
			set_errf(err, errlen, "name '%.*s': unknown profile type '%.*s' (send APP.cpu)",
				 (int)(alen > 64 ? 64 : alen), app, (int)(tlen > 32 ? 32 : tlen), dot + 1);
			return -EINVAL;
		}
		snprintf(out->type, sizeof(out->type), "%.*s", (int)tlen, dot + 1);
		alen = (size_t)(dot - app);
	}
	memcpy(out->app, app, alen);
	out->app[alen] = '\0';
	if (!brace)
		return 0;
	{
		const char *close = strchr(brace, '}');

		if (!close || close[1] != '\0') {
			set_errf(err, errlen, "%s", "name: labels must be one {...} at the end");
			return -EINVAL;
		}
		return parse_labels(brace + 1, (size_t)(close - brace - 1), out, err, errlen);
	}
}

int ingest_parse_time(const char *s, int64_t now_s, int64_t *out)
{
	size_t n;
	uint64_t v;

	if (!s || !*s)
		return -EINVAL;
	if (!strncmp(s, "now", 3)) {
		const char *p = s + 3, *unit;
		uint64_t mult;

		if (!*p) {
			*out = now_s;
			return 0;
		}
		if (*p != '-' || !(p[1] >= '0' && p[1] <= '9'))
			return -EINVAL;
		v = strtoull(p + 1, (char **)&unit, 10);
		if (!strcmp(unit, "s"))
			mult = 1;
		else if (!strcmp(unit, "m") || !strcmp(unit, "min"))
			mult = 60;
		else if (!strcmp(unit, "h"))
			mult = 3600;
		else if (!strcmp(unit, "d"))
			mult = 86400;
		else if (!strcmp(unit, "w"))
			mult = 7 * 86400;
		else
			return -EINVAL;
		if (v > (uint64_t)now_s / mult)
			return -EINVAL;
		*out = now_s - (int64_t)(v * mult);
		return 0;
	}
	n = strlen(s);
	if (n > 19 || strspn(s, "0123456789") != n)
		return -EINVAL;
	v = strtoull(s, NULL, 10);
	if (n == 13)
		v /= 1000;
	else if (n == 16)
		v /= 1000000;
	else if (n == 19)
		v /= 1000000000;
	else if (n > 12)
		return -EINVAL;
	*out = (int64_t)v;
	return 0;
}

/* One line (without its newline). 0, or -errno with the reason in err. */
static int parse_line(const char *p, size_t len, struct stacks *st, uint32_t *ids, char *err,
		      size_t errlen)
{
	const char *sp = memrchr(p, ' ', len), *f;
	uint64_t count = 0;
	size_t n = 0, slen;

	if (!sp) {
		set_errf(err, errlen, "%s", "no ' COUNT' at the end");
		return -EINVAL;
	}
	if ((size_t)(p + len - sp - 1) == 0 || (size_t)(p + len - sp - 1) > 16) {
		set_errf(err, errlen, "%s", "the count is not an integer");
		return -EINVAL;
	}
	for (const char *c = sp + 1; c < p + len; c++) {
		if (*c < '0' || *c > '9') {
			set_errf(err, errlen, "%s", "the count is not an integer");
			return -EINVAL;
		}
		count = count * 10 + (uint64_t)(*c - '0');
	}
	if (count > MAX_COUNT) {
		set_errf(err, errlen, "%s", "the count is too large");
		return -EINVAL;
	}
	slen = (size_t)(sp - p);
	for (size_t i = 0; i < slen; i++) {
		unsigned char c = (unsigned char)p[i];

		if (c < 0x20 || c == 0x7f) {
			set_errf(err, errlen, "%s", "control byte in a frame");
			return -EINVAL;
		}
	}
	if (!slen) {
		set_errf(err, errlen, "%s", "empty stack");
		return -EINVAL;
	}
	for (f = p; f <= sp;) {
		const char *semi = memchr(f, ';', (size_t)(sp - f));
		size_t flen = semi ? (size_t)(semi - f) : (size_t)(sp - f);
		int e;

		if (!flen) {
			set_errf(err, errlen, "%s", "empty frame");
			return -EINVAL;
		}
		if (n == INGEST_MAX_FRAMES) {
			set_errf(err, errlen, "more than %d frames", INGEST_MAX_FRAMES);
			return -EINVAL;
		}
		e = stacks__intern(st, f, flen, &ids[n++]);
		if (e)
			return e;
		if (!semi)
			break;
		f = semi + 1;
	}
	return count ? stacks__add(st, ids, n, count) : 0;
}

int ingest_parse_folded(const char *body, size_t len, struct stacks *st, size_t max_stacks,
			char *err, size_t errlen)
{
	uint32_t *ids = malloc(INGEST_MAX_FRAMES * sizeof(*ids));
	size_t lineno = 0;
	char why[160] = "";
	int ret = 0;

	if (!ids)
		return -ENOMEM;
	while (len) {
		const char *nl = memchr(body, '\n', len);
		size_t ll = nl ? (size_t)(nl - body) : len;
		size_t adv = nl ? ll + 1 : ll;

		lineno++;
		if (ll && body[ll - 1] == '\r')
			ll--;
		if (ll) {
			ret = parse_line(body, ll, st, ids, why, sizeof(why));
			if (ret) {
				set_errf(err, errlen, "line %zu: %s", lineno,
					 ret == -ENOMEM ? "out of memory" : why);
				break;
			}
			if (max_stacks && stacks__nstacks(st) > max_stacks) {
				set_errf(err, errlen, "more than %zu distinct stacks", max_stacks);
				ret = -E2BIG;
				break;
			}
		}
		body += adv;
		len -= adv;
	}
	free(ids);
	return ret;
}
