/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * flamesvg.c - interactive flame graph SVG writer (see flamesvg.h).
 *
 * Three steps: merge the stacks into a tree (a hash on (parent, label) finds a child in O(1), so
 * a root with 100,000 children costs no more than a chain); measure the drawn part (maximum depth
 * for the height, largest share change for differential colours); write it depth first, pre-order.
 * Only frames at least min_width_px wide are visited, so the work after the merge is bounded by
 * what fits in the picture. Children are drawn packed from the parent's left edge in label order;
 * the width of the undrawn ones is left blank at the right end, like the parent's self time. The
 * script relies on that: it re-lays a zoomed subtree out from the counts alone.
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flamesvg.h"
#include "framelabel.h"

#define DEF_WIDTH      1200
#define MIN_WIDTH      100
#define MAX_WIDTH      100000
#define DEF_MIN_PX     0.5
#define XPAD	       10   /* left and right margin; the script has the same constant */
#define ROW_H	       16   /* the script derives depths from it */
#define RECT_H_S       "15" /* rect height, one pixel less than a row */
#define TEXT_DY	       11   /* text baseline below the top of its rect; the script has it too */
#define CHAR_W	       (12 * 0.59) /* estimated width of a 12 px Verdana character */
#define BOTTOM_PAD     30
#define NONE	       UINT32_MAX
#define ROOT_LABEL     "all"
#define REPLACEMENT    "\xef\xbf\xbd" /* U+FFFD */
#define COUNT_NAME_MAX 64

/* ---- output staging ---- */

/* Small writes gather here and reach the strbuf in large pieces; err is sticky. */
struct out {
	struct strbuf *sb;
	int err;
	size_t n;
	char buf[16384];
};

static void flush(struct out *w)
{
	if (!w->err && w->n)
		w->err = strbuf_add(w->sb, w->buf, w->n);
	w->n = 0;
}

static void put(struct out *w, const void *p, size_t len)
{
	if (w->err || !len)
		return;
	if (len > sizeof(w->buf) - w->n) {
		flush(w);
		if (len > sizeof(w->buf)) {
			if (!w->err)
				w->err = strbuf_add(w->sb, p, len);
			return;
		}
	}
	memcpy(w->buf + w->n, p, len);
	w->n += len;
}

/* Append a string literal. */
#define PUTL(w, lit) put((w), (lit), sizeof(lit) - 1)

static void put_str(struct out *w, const char *s)
{
	put(w, s, strlen(s));
}

/* Formatted output for fixed markup and numbers only; never for labels or titles. */
__attribute__((format(printf, 2, 3))) static void putf(struct out *w, const char *fmt, ...)
{
	char tmp[512];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(tmp)) {
		if (!w->err)
			w->err = -EINVAL;
		return;
	}
	put(w, tmp, (size_t)n);
}

static void put_u64(struct out *w, uint64_t v)
{
	char tmp[24], *p = tmp + sizeof(tmp);

	do {
		*--p = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	put(w, p, (size_t)(tmp + sizeof(tmp) - p));
}

/* v with thousands separators: 1,234,567. */
static void put_grouped(struct out *w, uint64_t v)
{
	char tmp[32], *p = tmp + sizeof(tmp);
	int digits = 0;

	do {
		if (digits && digits % 3 == 0)
			*--p = ',';
		*--p = (char)('0' + v % 10);
		v /= 10;
		digits++;
	} while (v);
	put(w, p, (size_t)(tmp + sizeof(tmp) - p));
}

/*
 * v rounded to dec (1 or 2) decimals; trim drops trailing zeros and a bare point ("12.5", "12").
 * Non-finite values print as 0. A value that rounds to zero has no sign.
 */
static void put_fixed(struct out *w, double v, int dec, int trim)
{
	uint64_t scale = dec == 1 ? 10 : 100, m;
	char frac[3];
	int i, nf = dec;

	if (!isfinite(v) || fabs(v) > 1e15)
		v = 0;
	m = (uint64_t)llround(fabs(v) * (double)scale);
	if (v < 0 && m)
		PUTL(w, "-");
	put_u64(w, m / scale);
	m %= scale;
	for (i = dec - 1; i >= 0; i--) {
		frac[i] = (char)('0' + m % 10);
		m /= 10;
	}
	if (trim)
		while (nf > 0 && frac[nf - 1] == '0')
			nf--;
	if (nf) {
		PUTL(w, ".");
		put(w, frac, (size_t)nf);
	}
}

/* ---- UTF-8 and XML text ---- */

/*
 * Decode the code point at s[0..len) (len >= 1), strictly: no overlong forms, surrogates or
 * values past U+10FFFF. Stores its length in *n; returns -1 with *n = 1 for an invalid byte.
 */
static int32_t utf8_next(const unsigned char *s, size_t len, size_t *n)
{
	unsigned char b = s[0], lo = 0x80, hi = 0xbf;
	size_t need, i;
	int32_t c;

	*n = 1;
	if (b < 0x80)
		return b;
	if (b >= 0xc2 && b <= 0xdf) {
		need = 1;
		c = b & 0x1f;
	} else if (b >= 0xe0 && b <= 0xef) {
		need = 2;
		c = b & 0x0f;
		if (b == 0xe0)
			lo = 0xa0;
		else if (b == 0xed)
			hi = 0x9f;
	} else if (b >= 0xf0 && b <= 0xf4) {
		need = 3;
		c = b & 0x07;
		if (b == 0xf0)
			lo = 0x90;
		else if (b == 0xf4)
			hi = 0x8f;
	} else {
		return -1;
	}
	if (len <= need)
		return -1;
	for (i = 1; i <= need; i++) {
		unsigned char cb = s[i];

		if (cb < (i == 1 ? lo : 0x80) || cb > (i == 1 ? hi : 0xbf))
			return -1;
		c = c << 6 | (cb & 0x3f);
	}
	*n = need + 1;
	return c;
}

/* Printable ASCII that needs no escaping in XML text or attribute values. */
static int is_plain(unsigned char b)
{
	return b >= 0x20 && b < 0x7f && b != '<' && b != '>' && b != '&' && b != '"' && b != '\'';
}

/* Number of code points in s[0..len), an invalid byte counting as one. */
static size_t count_cp(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s, *end = p + len;
	size_t cp = 0, n;

	while (p < end) {
		if (*p < 0x80) {
			p++;
		} else {
			utf8_next(p, (size_t)(end - p), &n);
			p += n;
		}
		cp++;
	}
	return cp;
}

/*
 * Append at most max_cp code points of s[0..len) as XML character data that is also safe inside
 * a quoted attribute: markup characters become entities; invalid UTF-8 bytes, control characters
 * and the non-characters U+FFFE/U+FFFF (none of them allowed in XML 1.0) become U+FFFD.
 */
static void put_text(struct out *w, const char *s, size_t len, size_t max_cp)
{
	const unsigned char *p = (const unsigned char *)s, *end = p + len, *run = p;
	const char *rep;
	size_t cp = 0, n;
	int32_t c;

	while (p < end && cp < max_cp) {
		if (is_plain(*p)) {
			p++;
			cp++;
			continue;
		}
		put(w, run, (size_t)(p - run));
		c = utf8_next(p, (size_t)(end - p), &n);
		switch (c) {
		case '<':
			rep = "&lt;";
			break;
		case '>':
			rep = "&gt;";
			break;
		case '&':
			rep = "&amp;";
			break;
		case '"':
			rep = "&quot;";
			break;
		case '\'':
			rep = "&#39;";
			break;
		default:
			rep = c < 0x20 || c == 0x7f || c == 0xfffe || c == 0xffff ? REPLACEMENT
										  : NULL;
		}
		if (rep)
			put_str(w, rep);
		else
			put(w, p, n);
		p += n;
		cp++;
		run = p;
	}
	put(w, run, (size_t)(p - run));
}

/* ---- the merged tree ---- */

struct fnode {
	uint64_t n;	/* inclusive count in st */
	uint64_t b;	/* inclusive count in base (differential mode) */
	uint32_t label; /* st's label id; NONE for the root */
	uint32_t parent;
	uint32_t child; /* first child, NONE for none (unordered) */
	uint32_t next;	/* next sibling */
};

struct tree {
	struct fnode *v; /* v[0] is the root */
	size_t len, cap;
	uint32_t *slot; /* node indexes by (parent, label), NONE = empty */
	size_t mask;	/* slots - 1, a power of two minus one */
};

static size_t slot_of(uint32_t parent, uint32_t label, size_t mask)
{
	uint64_t k = (uint64_t)parent << 32 | label;

	k ^= k >> 33;
	k *= 0xff51afd7ed558ccdULL;
	k ^= k >> 33;
	return (size_t)k & mask;
}

static void tree_release(struct tree *t)
{
	free(t->v);
	free(t->slot);
	memset(t, 0, sizeof(*t));
}

static int tree_init(struct tree *t)
{
	memset(t, 0, sizeof(*t));
	t->cap = 1024;
	t->mask = 2047;
	t->v = malloc(t->cap * sizeof(*t->v));
	t->slot = malloc((t->mask + 1) * sizeof(*t->slot));
	if (!t->v || !t->slot) {
		tree_release(t);
		return -ENOMEM;
	}
	memset(t->slot, 0xff, (t->mask + 1) * sizeof(*t->slot));
	t->v[0] = (struct fnode){ .label = NONE, .parent = NONE, .child = NONE, .next = NONE };
	t->len = 1;
	return 0;
}

static int tree_rehash(struct tree *t)
{
	size_t mask = t->mask * 2 + 1, i, s;
	uint32_t *slot;

	if (mask + 1 > SIZE_MAX / sizeof(*slot))
		return -ENOMEM;
	slot = malloc((mask + 1) * sizeof(*slot));
	if (!slot)
		return -ENOMEM;
	memset(slot, 0xff, (mask + 1) * sizeof(*slot));
	for (i = 1; i < t->len; i++) {
		s = slot_of(t->v[i].parent, t->v[i].label, mask);
		while (slot[s] != NONE)
			s = (s + 1) & mask;
		slot[s] = (uint32_t)i;
	}
	free(t->slot);
	t->slot = slot;
	t->mask = mask;
	return 0;
}

/* The child of parent labelled label, or NONE. */
static uint32_t tree_find(const struct tree *t, uint32_t parent, uint32_t label)
{
	size_t s = slot_of(parent, label, t->mask);
	uint32_t i;

	while ((i = t->slot[s]) != NONE) {
		if (t->v[i].parent == parent && t->v[i].label == label)
			return i;
		s = (s + 1) & t->mask;
	}
	return NONE;
}

/* The child of parent labelled label, created (count 0) when missing, in *out. */
static int tree_child(struct tree *t, uint32_t parent, uint32_t label, uint32_t *out)
{
	size_t s;
	uint32_t i;
	int err;

	i = tree_find(t, parent, label);
	if (i != NONE) {
		*out = i;
		return 0;
	}
	if ((t->len + 1) * 2 > t->mask + 1) {
		err = tree_rehash(t);
		if (err)
			return err;
	}
	if (t->len == t->cap) {
		struct fnode *v;
		size_t cap = t->cap * 2;

		if (cap >= NONE || cap > SIZE_MAX / sizeof(*v))
			return -ENOMEM;
		v = realloc(t->v, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		t->v = v;
		t->cap = cap;
	}
	i = (uint32_t)t->len++;
	t->v[i] = (struct fnode){
		.label = label, .parent = parent, .child = NONE, .next = t->v[parent].child
	};
	t->v[parent].child = i;
	s = slot_of(parent, label, t->mask);
	while (t->slot[s] != NONE)
		s = (s + 1) & t->mask;
	t->slot[s] = i;
	*out = i;
	return 0;
}

static int add_after(const uint32_t *ids, size_t n, uint64_t count, void *arg)
{
	struct tree *t = arg;
	uint32_t cur = 0;
	size_t i;
	int err;

	t->v[0].n += count;
	for (i = 0; i < n; i++) {
		err = tree_child(t, cur, ids[i], &cur);
		if (err)
			return err;
		t->v[cur].n += count;
	}
	return 0;
}

struct base_ctx {
	struct tree *t;
	const uint32_t *map; /* base label id -> st label id or NONE */
};

/* A base stack adds to the nodes st has; past the first frame st lacks, nothing is drawn. */
static int add_base(const uint32_t *ids, size_t n, uint64_t count, void *arg)
{
	struct base_ctx *b = arg;
	uint32_t cur = 0;
	size_t i;

	b->t->v[0].b += count;
	for (i = 0; i < n; i++) {
		if (b->map[ids[i]] == NONE)
			break;
		cur = tree_find(b->t, cur, b->map[ids[i]]);
		if (cur == NONE)
			break;
		b->t->v[cur].b += count;
	}
	return 0;
}

static int tree_add_base(struct tree *t, const struct stacks *st, const struct stacks *base)
{
	size_t nl = stacks__nlabels(base), len, i;
	struct base_ctx b = { .t = t };
	uint32_t *map = NULL, id;
	const char *s;
	int err;

	if (nl) {
		map = malloc(nl * sizeof(*map));
		if (!map)
			return -ENOMEM;
	}
	for (i = 0; i < nl; i++) {
		s = stacks__label_bytes(base, (uint32_t)i, &len);
		map[i] = s && stacks__find_label(st, s, len, &id) ? id : NONE;
	}
	b.map = map;
	err = stacks__foreach(base, add_base, &b);
	free(map);
	return err;
}

/* ---- colours ---- */

enum kind { KIND_OWN, KIND_STDLIB, KIND_THIRD, KIND_NATIVE };

/* Hue range (degrees), saturation and lightness range (0..1) of each kind. */
static const struct {
	double h0, h1, s, l0, l1;
} palette[] = {
	[KIND_OWN] = { 8, 45, 0.85, 0.52, 0.64 },
	[KIND_STDLIB] = { 195, 235, 0.6, 0.6, 0.72 },
	[KIND_THIRD] = { 85, 145, 0.5, 0.45, 0.58 },
	[KIND_NATIVE] = { 250, 290, 0.12, 0.62, 0.76 },
};

static uint32_t hsl_rgb(double h, double s, double l)
{
	double c = (1 - fabs(2 * l - 1)) * s, hp = fmod(h, 360) / 60;
	double x = c * (1 - fabs(fmod(hp, 2) - 1)), m = l - c / 2, r = 0, g = 0, b = 0;

	if (hp < 1) {
		r = c;
		g = x;
	} else if (hp < 2) {
		r = x;
		g = c;
	} else if (hp < 3) {
		g = c;
		b = x;
	} else if (hp < 4) {
		g = x;
		b = c;
	} else if (hp < 5) {
		r = x;
		b = c;
	} else {
		r = c;
		b = x;
	}
	return (uint32_t)lround((r + m) * 255) << 16 | (uint32_t)lround((g + m) * 255) << 8 |
	       (uint32_t)lround((b + m) * 255);
}

/* FNV-1a; skip_digits makes "python3 [12]" and "python3 [34]" (or thread ids) alike. */
static uint32_t name_hash(const char *s, size_t len, int skip_digits)
{
	uint32_t h = 2166136261u;
	size_t i;

	for (i = 0; i < len; i++) {
		if (skip_digits && s[i] >= '0' && s[i] <= '9')
			continue;
		h = (h ^ (unsigned char)s[i]) * 16777619u;
	}
	return h;
}

static uint32_t kind_colour(enum kind k, uint32_t hash)
{
	double fh = (double)(hash % 1009) / 1008, fl = (double)(hash / 1009 % 997) / 996;

	return hsl_rgb(palette[k].h0 + fh * (palette[k].h1 - palette[k].h0), palette[k].s,
		       palette[k].l0 + fl * (palette[k].l1 - palette[k].l0));
}

/* Last occurrence of needle (nl bytes) in s[0..len), or NULL. */
static const char *find_last(const char *s, size_t len, const char *needle, size_t nl)
{
	const char *hit = NULL, *p = s, *q;

	while (len - (size_t)(p - s) >= nl &&
	       (q = memmem(p, len - (size_t)(p - s), needle, nl)) != NULL) {
		hit = q;
		p = q + 1;
	}
	return hit;
}

/* The path component at p (up to '/', or end), without a ".py" suffix. */
static void component(const char *p, const char *end, const char **mod, size_t *modlen)
{
	const char *slash = memchr(p, '/', (size_t)(end - p));
	size_t n = (size_t)((slash ? slash : end) - p);

	if (n > 3 && memcmp(p + n - 3, ".py", 3) == 0)
		n -= 3;
	*mod = p;
	*modlen = n;
}

/* Where the stdlib directory "lib/pythonX[.Y][abiflags]/" ends in path, or NULL. */
static const char *stdlib_dir_end(const char *path, size_t len)
{
	const char *end = path + len, *p = path, *q;

	while ((q = memmem(p, (size_t)(end - p), "lib/python", 10)) != NULL) {
		const char *r = q + 10;

		p = q + 1;
		if ((q != path && q[-1] != '/') || r >= end || *r < '0' || *r > '9')
			continue;
		while (r < end && ((*r >= '0' && *r <= '9') || *r == '.'))
			r++;
		while (r < end && *r >= 'a' && *r <= 'z')
			r++;
		if (r < end && *r == '/')
			return r + 1;
	}
	return NULL;
}

/*
 * Kind of a frame label and the name its shade comes from: the package for third-party code,
 * the top-level module for the stdlib, the file name for own code, the label for the rest.
 */
static enum kind classify(const char *s, size_t len, const char **mod, size_t *modlen)
{
	const char *colon, *path, *sp, *dp, *hit;
	struct frame_parts fp;

	*mod = s;
	*modlen = len;
	if (!frame_label_split(s, len, &fp))
		return KIND_NATIVE;
	path = fp.file;
	colon = fp.file + fp.file_len;
	sp = find_last(path, (size_t)(colon - path), "/site-packages/", 15);
	dp = find_last(path, (size_t)(colon - path), "/dist-packages/", 15);
	hit = sp && (!dp || sp > dp) ? sp : dp;
	if (hit) {
		component(hit + 15, colon, mod, modlen);
		return KIND_THIRD;
	}
	if ((size_t)(colon - path) > 8 && memcmp(path, "<frozen ", 8) == 0) {
		*mod = path + 8;
		for (*modlen = 0; *mod + *modlen < colon; (*modlen)++) {
			char c = (*mod)[*modlen];

			if (c == '.' || c == '>' || c == ' ')
				break;
		}
		return KIND_STDLIB;
	}
	hit = stdlib_dir_end(path, (size_t)(colon - path));
	if (hit) {
		component(hit, colon, mod, modlen);
		return KIND_STDLIB;
	}
	hit = path;
	for (sp = path; sp < colon; sp++)
		if (*sp == '/')
			hit = sp + 1;
	*mod = hit;
	*modlen = (size_t)(colon - hit);
	return KIND_OWN;
}

static uint32_t label_colour(const char *s, size_t len)
{
	const char *mod;
	size_t modlen;
	enum kind k = classify(s, len, &mod, &modlen);

	return kind_colour(k, name_hash(mod, modlen, k == KIND_NATIVE));
}

/* ---- layout and writing ---- */

struct ent {
	uint32_t node;
	size_t depth;
	uint64_t off; /* samples left of the frame */
};

struct ents {
	struct ent *v;
	size_t len, cap;
};

static int ents_push(struct ents *e, uint32_t node, size_t depth)
{
	if (e->len == e->cap) {
		size_t cap = e->cap ? e->cap * 2 : 256;
		struct ent *v;

		if (cap > SIZE_MAX / sizeof(*v))
			return -ENOMEM;
		v = realloc(e->v, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		e->v = v;
		e->cap = cap;
	}
	e->v[e->len++] = (struct ent){ .node = node, .depth = depth };
	return 0;
}

struct svg {
	const struct stacks *st;
	const struct tree *t;
	struct out *w;
	struct ents stack;
	uint32_t *colour; /* per st label: 0 = not yet, else 1 << 24 | rgb */
	bool reverse, diff;
	double width, scale, minw, maxd;
	uint64_t total, btotal;
	size_t maxdepth;
	unsigned top;
	unsigned long long height;
	char count_name[COUNT_NAME_MAX + 1];
};

static int is_drawn(const struct svg *g, uint32_t node)
{
	return (double)g->t->v[node].n * g->scale >= g->minw;
}

static const char *node_label(const struct svg *g, uint32_t node, size_t *len)
{
	const char *s = NULL;

	if (node)
		s = stacks__label_bytes(g->st, g->t->v[node].label, len);
	if (!s) {
		*len = strlen(ROOT_LABEL);
		s = ROOT_LABEL;
	}
	return s;
}

/* Change of the node's share of the total, after minus before (a fraction). */
static double share_delta(const struct svg *g, const struct fnode *f)
{
	double after = (double)f->n / (double)g->total;
	double before = g->btotal ? (double)f->b / (double)g->btotal : 0;

	return after - before;
}

/* Maximum drawn depth and, in differential mode, the largest share change drawn. */
static int measure(struct svg *g)
{
	struct ents *s = &g->stack;
	struct ent e;
	uint32_t c;
	int err;

	s->len = 0;
	err = ents_push(s, 0, 0);
	while (!err && s->len) {
		e = s->v[--s->len];
		if (e.depth > g->maxdepth)
			g->maxdepth = e.depth;
		if (g->diff)
			g->maxd = fmax(g->maxd, fabs(share_delta(g, &g->t->v[e.node])));
		for (c = g->t->v[e.node].child; c != NONE && !err; c = g->t->v[c].next)
			if (is_drawn(g, c))
				err = ents_push(s, c, e.depth + 1);
	}
	return err;
}

/* Descending label order, so the smallest label is popped first and drawn leftmost. */
static int cmp_label_desc(const void *a, const void *b, void *arg)
{
	const struct svg *g = arg;
	size_t la, lb;
	const char *sa = node_label(g, ((const struct ent *)a)->node, &la);
	const char *sb = node_label(g, ((const struct ent *)b)->node, &lb);
	int r = memcmp(sa, sb, la < lb ? la : lb);

	if (!r)
		r = (la > lb) - (la < lb);
	return -r;
}

static void put_colour(struct out *w, uint32_t rgb)
{
	static const char hex[] = "0123456789abcdef";
	char s[7];
	int i;

	s[0] = '#';
	for (i = 6; i >= 1; i--) {
		s[i] = hex[rgb & 15];
		rgb >>= 4;
	}
	put(w, s, sizeof(s));
}

static uint32_t frame_colour(struct svg *g, uint32_t node, const char *label, size_t len)
{
	const struct fnode *f = &g->t->v[node];
	uint32_t *slot, v;
	double d, t;

	if (g->diff) {
		if (!f->b)
			return 0xff0000;
		d = share_delta(g, f);
		if (fabs(d) * 100 < 0.005)
			return 0xffffff;
		t = g->maxd > 0 ? fabs(d) / g->maxd : 0;
		v = (uint32_t)lround(210 - 190 * t);
		return d > 0 ? 0xff0000 | v << 8 | v : v << 16 | v << 8 | 0xff;
	}
	if (!node)
		return label_colour(label, len);
	slot = &g->colour[f->label];
	if (!*slot)
		*slot = 1u << 24 | label_colour(label, len);
	return *slot & 0xffffff;
}

static uint64_t row_y(const struct svg *g, size_t depth)
{
	size_t row = g->reverse ? depth : g->maxdepth - depth;

	return g->top + (uint64_t)row * ROW_H;
}

/* " (N samples, P%)" or, in differential mode, " (N samples, P%; base M samples, Q%; +D pp)". */
static void put_counts(struct svg *g, const struct fnode *f)
{
	struct out *w = g->w;
	double d;

	PUTL(w, " (");
	put_grouped(w, f->n);
	PUTL(w, " ");
	put_str(w, g->count_name);
	PUTL(w, ", ");
	put_fixed(w, (double)f->n * 100 / (double)g->total, 2, 0);
	PUTL(w, "%");
	if (g->diff) {
		PUTL(w, "; base ");
		put_grouped(w, f->b);
		PUTL(w, " ");
		put_str(w, g->count_name);
		PUTL(w, ", ");
		put_fixed(w, g->btotal ? (double)f->b * 100 / (double)g->btotal : 0, 2, 0);
		PUTL(w, "%; ");
		d = share_delta(g, f) * 100;
		if (llround(fabs(d) * 100) > 0 && d > 0)
			PUTL(w, "+");
		put_fixed(w, d, 2, 0);
		PUTL(w, " pp");
	}
	PUTL(w, ")");
}

static void put_frame(struct svg *g, const struct ent *e)
{
	const struct fnode *f = &g->t->v[e->node];
	double x = XPAD + (double)e->off * g->scale, wd = (double)f->n * g->scale;
	double chars = floor((wd - 3) / CHAR_W);
	uint64_t y = row_y(g, e->depth);
	struct out *w = g->w;
	size_t len, cp;
	const char *s = node_label(g, e->node, &len);

	PUTL(w, "<g><title>");
	put_text(w, s, len, SIZE_MAX);
	put_counts(g, f);
	PUTL(w, "</title><rect x=\"");
	put_fixed(w, x, 1, 1);
	PUTL(w, "\" y=\"");
	put_u64(w, y);
	PUTL(w, "\" width=\"");
	put_fixed(w, wd, 1, 1);
	PUTL(w, "\" height=\"" RECT_H_S "\" fill=\"");
	put_colour(w, frame_colour(g, e->node, s, len));
	PUTL(w, "\"/>");
	if (chars >= 3) {
		PUTL(w, "<text x=\"");
		put_fixed(w, x + 3, 1, 1);
		PUTL(w, "\" y=\"");
		put_u64(w, y + TEXT_DY);
		PUTL(w, "\">");
		cp = count_cp(s, len);
		if ((double)cp <= chars) {
			put_text(w, s, len, SIZE_MAX);
		} else {
			put_text(w, s, len, (size_t)chars - 2);
			PUTL(w, "..");
		}
		PUTL(w, "</text>");
	}
	PUTL(w, "</g>\n");
}

/* All drawn frames, pre-order; children packed left to right in label order. */
static int put_frames(struct svg *g)
{
	struct ents *s = &g->stack;
	struct ent e;
	size_t first, k;
	uint64_t off;
	uint32_t c;
	int err;

	s->len = 0;
	err = ents_push(s, 0, 0);
	while (!err && !g->w->err && s->len) {
		e = s->v[--s->len];
		put_frame(g, &e);
		first = s->len;
		for (c = g->t->v[e.node].child; c != NONE && !err; c = g->t->v[c].next)
			if (is_drawn(g, c))
				err = ents_push(s, c, e.depth + 1);
		if (err || s->len - first < 1)
			continue;
		qsort_r(s->v + first, s->len - first, sizeof(*s->v), cmp_label_desc, g);
		off = e.off;
		for (k = s->len; k-- > first;) {
			s->v[k].off = off;
			off += g->t->v[s->v[k].node].n;
		}
	}
	return err;
}

/*
 * The script. Constant text: no label, title or option string is ever put in it. It must not
 * contain the CDATA terminator (the unit test checks).
 * Per frame it keeps the label (the <title> text up to its last " ("), the count (the number
 * after it), the depth (from y), the parent and the end of the subtree (pre-order).
 */
static const char script[] =
	"\"use strict\";\n"
	"var NS=\"http://www.w3.org/2000/svg\",XP=10,RH=16,DY=11,CW=7.08,HL=\"rgb(230,0,230)\";\n"
	"var W=0,F=[],cur=0,term=\"\",det,mat,unz,srch,nx;\n"
	"function $(i){return document.getElementById(i)}\n"
	"function init(){\n"
	" var svg=document.documentElement,fr=$(\"frames\"),gs=fr.children;\n"
	" var st=[],y0=0,i,g,r,t,k,f,m;\n"
	" W=+svg.getAttribute(\"viewBox\").split(\" \")[2];\n"
	" det=$(\"details\");mat=$(\"matched\");unz=$(\"unzoom\");srch=$(\"search\");\n"
	" for(i=0;i<gs.length;i++){\n"
	"  g=gs[i];r=g.children[1];t=g.firstElementChild.textContent;k=t.lastIndexOf(\" (\");\n"
	"  m=/^[0-9,]+/.exec(t.slice(k+2));\n"
	"  f={g:g,r:r,t:g.children[2]||null,l:t.slice(0,k),n:m?+m[0].replace(/,/g,\"\"):0,\n"
	"   x0:r.getAttribute(\"x\"),w0:r.getAttribute(\"width\"),y:+r.getAttribute(\"y\"),\n"
	"   c:r.getAttribute(\"fill\"),p:-1,e:i,h:false,m:false,k:false,z:false};\n"
	"  f.s0=f.t?f.t.textContent:\"\";f.tx0=f.t?f.t.getAttribute(\"x\"):\"\";\n"
	"  if(!i)y0=f.y;\n"
	"  f.d=Math.round(Math.abs(f.y-y0)/RH);st.length=f.d;\n"
	"  if(f.d)f.p=st[f.d-1];\n"
	"  st[f.d]=i;g._i=i;F.push(f);\n"
	" }\n"
	" for(i=F.length-1;i>0;i--){k=F[i].p;if(k>=0&&F[i].e>F[k].e)F[k].e=F[i].e}\n"
	" nx=new Float64Array(F.length+1);\n"
	" fr.addEventListener(\"click\",function(e){var i=idx(e);if(i>=0)zoom(i)});\n"
	" fr.addEventListener(\"mouseover\",function(e){var i=idx(e);\n"
	"  if(i>=0)det.textContent=F[i].g.firstElementChild.textContent});\n"
	" fr.addEventListener(\"mouseout\",function(){det.textContent=\" \"});\n"
	" unz.addEventListener(\"click\",function(){resetZoom()});\n"
	" srch.addEventListener(\"click\",function(){if(term)resetSearch();else ask()});\n"
	" document.addEventListener(\"keydown\",function(e){\n"
	"  if((e.ctrlKey||e.metaKey)&&(e.key===\"f\"||e.key===\"F\")){e.preventDefault();ask()}\n"
	"  else if(e.key===\"Escape\")resetSearch()});\n"
	" window.pysamp={search:search,resetSearch:resetSearch,\n"
	"  zoomTo:zoomTo,resetZoom:resetZoom,\n"
	"  zoomed:function(){return cur?F[cur].l:\"\"}};\n"
	" try{var q=new URLSearchParams(window.location.search),v=q.get(\"x\");\n"
	"  if(v!==null)zoomTo(v);v=q.get(\"s\");if(v)search(v)}catch(x){}\n"
	"}\n"
	"function idx(e){\n"
	" var n=e.target;while(n&&n._i===undefined)n=n.parentNode;return n?n._i:-1}\n"
	"function hide(f,h){if(f.h!==h){f.h=h;f.g.style.display=h?\"none\":\"\"}}\n"
	"function dim(f,d){if(f.m!==d){f.m=d;f.g.setAttribute(\"class\",d?\"d\":\"\")}}\n"
	"function fit(f,x,w){\n"
	" var s=\"\",c=Math.floor((w-3)/CW);\n"
	" if(c>=3)s=f.l.length<=c?f.l:f.l.slice(0,c-2)+\"..\";\n"
	" if(!f.t){if(!s)return;f.t=document.createElementNS(NS,\"text\");\n"
	"  f.t.setAttribute(\"y\",f.y+DY);f.g.appendChild(f.t)}\n"
	" f.t.setAttribute(\"x\",(x+3).toFixed(1));f.t.textContent=s}\n"
	"function place(f,x,w){f.z=true;f.r.setAttribute(\"x\",x.toFixed(1));\n"
	" f.r.setAttribute(\"width\",w.toFixed(1));fit(f,x,w)}\n"
	"function zoom(i){\n"
	" var f=F[i],j,a,x,sc,fw=W-2*XP;\n"
	" if(!f)return;\n"
	" if(!i||f.n<=0){resetZoom();return}\n"
	" cur=i;\n"
	" for(j=0;j<F.length;j++)if(j<i||j>f.e)hide(F[j],true);\n"
	" for(j=f.p;j>=0;j=F[j].p){a=F[j];hide(a,false);dim(a,true);place(a,XP,fw)}\n"
	" sc=fw/f.n;\n"
	" for(j=i;j<=f.e;j++){a=F[j];hide(a,false);dim(a,false);\n"
	"  x=j===i?XP:nx[a.p];place(a,x,a.n*sc);nx[a.p]=x+a.n*sc;nx[j]=x}\n"
	" unz.setAttribute(\"class\",\"b\");state()}\n"
	"function resetZoom(){\n"
	" var j,a;cur=0;\n"
	" for(j=0;j<F.length;j++){a=F[j];hide(a,false);dim(a,false);\n"
	"  if(a.z){a.z=false;a.r.setAttribute(\"x\",a.x0);a.r.setAttribute(\"width\",a.w0);\n"
	"   if(a.t){a.t.textContent=a.s0;if(a.tx0)a.t.setAttribute(\"x\",a.tx0)}}}\n"
	" unz.setAttribute(\"class\",\"b h\");state()}\n"
	"function zoomTo(l){\n"
	" var j,b=-1;l=String(l);\n"
	" for(j=0;j<F.length;j++)if(F[j].l===l&&(b<0||F[j].n>F[b].n))b=j;\n"
	" if(b<0)return false;\n"
	" if(b)zoom(b);else resetZoom();\n"
	" return true}\n"
	"function search(s){\n"
	" var re,j,a,md=-1,sum=0,tot=F.length?F[0].n:0,fr;\n"
	" if(s===undefined||s===null||s===\"\"){resetSearch();return 0}\n"
	" re=new RegExp(s);term=String(s);\n"
	" for(j=0;j<F.length;j++){a=F[j];\n"
	"  if(md>=0&&a.d<=md)md=-1;\n"
	"  if(re.test(a.l)){if(!a.k){a.k=true;a.r.setAttribute(\"fill\",HL)}\n"
	"   if(md<0){sum+=a.n;md=a.d}}\n"
	"  else if(a.k){a.k=false;a.r.setAttribute(\"fill\",a.c)}}\n"
	" fr=tot?Math.min(1,sum/tot):0;\n"
	" mat.textContent=\"Matched: \"+(100*fr).toFixed(1)+\"%\";\n"
	" srch.textContent=\"Reset Search\";state();return fr}\n"
	"function resetSearch(){\n"
	" var j,a;term=\"\";\n"
	" for(j=0;j<F.length;j++){a=F[j];if(a.k){a.k=false;a.r.setAttribute(\"fill\",a.c)}}\n"
	" mat.textContent=\" \";srch.textContent=\"Search\";state()}\n"
	"function ask(){\n"
	" var s=window.prompt(\"Search for (regular expression):\",term);\n"
	" if(s===null)return;\n"
	" try{search(s)}catch(x){mat.textContent=\"Bad regular expression\"}}\n"
	"function state(){\n"
	" try{var u=new URL(window.location.href),q=u.searchParams;\n"
	"  if(term)q.set(\"s\",term);else q.delete(\"s\");\n"
	"  if(cur)q.set(\"x\",F[cur].l);else q.delete(\"x\");\n"
	"  if(u.href!==window.location.href)\n"
	"   window.history.replaceState(null,\"\",u.href)}catch(x){}}\n";

static const char style[] =
	"text{font-family:Verdana,sans-serif;font-size:12px;fill:#000}"
	"#title{font-size:17px;text-anchor:middle}#subtitle{text-anchor:middle;fill:#555}"
	"#search,#matched{text-anchor:end}#legend text{font-size:11px;fill:#333}"
	"#frames g{cursor:pointer}#frames g:hover rect{stroke:#000;stroke-width:.5}"
	"#frames text{pointer-events:none}"
	".b{cursor:pointer;fill:#22c}.h{display:none}.d{opacity:.5}";

struct legend_item {
	uint32_t rgb;
	const char *text;
};

static void put_legend(struct svg *g, unsigned y)
{
	/* The first four in enum kind order: their colours are the middle of each range. */
	static const struct legend_item normal[] = {
		{ 0, "own code" },
		{ 0, "stdlib" },
		{ 0, "third-party" },
		{ 0, "native/other" },
		{ 0xe600e6, "search match" },
	};
	static const struct legend_item diff[] = {
		{ 0xff5050, "share grew" }, { 0x5050ff, "share shrank" }, { 0xff0000, "new" },
		{ 0xffffff, "unchanged" },  { 0xe600e6, "search match" },
	};
	const struct legend_item *it = g->diff ? diff : normal;
	size_t n = g->diff ? sizeof(diff) / sizeof(*diff) : sizeof(normal) / sizeof(*normal), i;
	double x = XPAD;
	uint32_t rgb;

	putf(g->w, "<g id=\"legend\">");
	for (i = 0; i < n; i++) {
		rgb = it[i].rgb;
		if (!g->diff && i < 4)
			rgb = hsl_rgb((palette[i].h0 + palette[i].h1) / 2, palette[i].s,
				      (palette[i].l0 + palette[i].l1) / 2);
		putf(g->w, "<rect x=\"%.0f\" y=\"%u\" width=\"10\" height=\"10\" fill=\"", x,
		     y - 9);
		put_colour(g->w, rgb);
		putf(g->w,
		     "\" stroke=\"#999\" stroke-width=\".5\"/><text x=\"%.0f\" y=\"%u\">%s</text>",
		     x + 14, y, it[i].text);
		x += 14 + (double)strlen(it[i].text) * 11 * 0.59 + 16;
	}
	if (g->diff)
		putf(g->w,
		     "<text x=\"%.0f\" y=\"%u\">(width: after; colour: change of share)</text>", x,
		     y);
	putf(g->w, "</g>\n");
}

static void put_document(struct svg *g, const char *title, const char *subtitle)
{
	unsigned wd = (unsigned)g->width, title_y = 24, legend_y;
	struct out *w = g->w;

	legend_y = subtitle ? 62 : 46;
	g->top = legend_y + 10;
	g->height =
		g->top + (unsigned long long)(g->total ? g->maxdepth + 1 : 2) * ROW_H + BOTTOM_PAD;

	putf(w,
	     "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"no\"?>\n"
	     "<svg version=\"1.1\" width=\"%u\" height=\"%llu\" viewBox=\"0 0 %u %llu\" "
	     "onload=\"init(evt)\" xmlns=\"http://www.w3.org/2000/svg\">\n",
	     wd, g->height, wd, g->height);
	putf(w, "<!-- pysamp-bpf flame graph: click a frame to zoom, Ctrl-F to search -->\n");
	putf(w, "<style type=\"text/css\">%s</style>\n", style);
	put_str(w, "<script type=\"text/ecmascript\"><![CDATA[\n");
	put(w, script, sizeof(script) - 1);
	put_str(w, "]]></script>\n");
	putf(w,
	     "<defs><linearGradient id=\"bg\" x1=\"0\" y1=\"0\" x2=\"0\" y2=\"1\">"
	     "<stop stop-color=\"#eeeeee\" offset=\"5%%\"/>"
	     "<stop stop-color=\"#eeeeb0\" offset=\"95%%\"/></linearGradient></defs>\n"
	     "<rect x=\"0\" y=\"0\" width=\"%u\" height=\"%llu\" fill=\"url(#bg)\"/>\n",
	     wd, g->height);
	putf(w, "<text id=\"title\" x=\"%u\" y=\"%u\">", wd / 2, title_y);
	put_text(w, title, strlen(title), SIZE_MAX);
	put_str(w, "</text>\n");
	if (subtitle) {
		putf(w, "<text id=\"subtitle\" x=\"%u\" y=\"%u\">", wd / 2, title_y + 18);
		put_text(w, subtitle, strlen(subtitle), SIZE_MAX);
		put_str(w, "</text>\n");
	}
	putf(w,
	     "<text id=\"unzoom\" class=\"b h\" x=\"%u\" y=\"%u\">Reset Zoom</text>\n"
	     "<text id=\"search\" class=\"b\" x=\"%u\" y=\"%u\">Search</text>\n"
	     "<text id=\"details\" x=\"%u\" y=\"%llu\"> </text>\n"
	     "<text id=\"matched\" x=\"%u\" y=\"%llu\"> </text>\n",
	     XPAD, title_y, wd - XPAD, title_y, XPAD, g->height - 10, wd - XPAD, g->height - 10);
	put_legend(g, legend_y);
	if (!g->total)
		putf(w, "<text x=\"%u\" y=\"%u\" text-anchor=\"middle\">No samples</text>\n",
		     wd / 2, g->top + ROW_H + 4);
	put_str(w, "<g id=\"frames\">\n");
}

/* Keep [A-Za-z0-9 _./-]: the script finds the label as the title up to its last " (". */
static void set_count_name(struct svg *g, const char *name)
{
	size_t i;

	for (i = 0; name[i] && i < COUNT_NAME_MAX; i++) {
		char c = name[i];
		int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			 (c >= '0' && c <= '9') || c == ' ' || c == '_' || c == '.' || c == '/' ||
			 c == '-';

		g->count_name[i] = ok ? c : '_';
	}
	g->count_name[i] = '\0';
}

int flamesvg_write(const struct stacks *st, const struct flamesvg_opts *o, struct strbuf *out)
{
	static const struct flamesvg_opts defaults;
	struct svg g = { .st = st };
	struct tree t = { 0 };
	struct out *w = NULL;
	size_t start;
	int err;

	if (!st || !out)
		return -EINVAL;
	if (!o)
		o = &defaults;
	if ((o->width && (o->width < MIN_WIDTH || o->width > MAX_WIDTH)) ||
	    !isfinite(o->min_width_px) || o->min_width_px < 0)
		return -EINVAL;
	start = out->len;
	g.reverse = o->reverse;
	g.diff = o->base != NULL;
	g.width = o->width ? o->width : DEF_WIDTH;
	g.minw = o->min_width_px > 0 ? o->min_width_px : DEF_MIN_PX;
	g.total = stacks__total(st);
	g.btotal = o->base ? stacks__total(o->base) : 0;
	g.scale = g.total ? (g.width - 2 * XPAD) / (double)g.total : 0;
	set_count_name(&g, o->count_name ? o->count_name : "samples");

	w = malloc(sizeof(*w));
	g.colour = calloc(stacks__nlabels(st) + 1, sizeof(*g.colour));
	err = tree_init(&t);
	if (!w || !g.colour || err) {
		err = -ENOMEM;
		goto cleanup;
	}
	w->sb = out;
	w->err = 0;
	w->n = 0;
	g.w = w;
	g.t = &t;
	if (g.total) {
		err = stacks__foreach(st, add_after, &t);
		if (!err && o->base)
			err = tree_add_base(&t, st, o->base);
		if (!err)
			err = measure(&g);
		if (err)
			goto cleanup;
	}
	put_document(&g, o->title ? o->title : "Flame Graph", o->subtitle);
	if (g.total)
		err = put_frames(&g);
	put_str(w, "</g>\n</svg>\n");
	flush(w);
	if (!err)
		err = w->err;
cleanup:
	if (err)
		strbuf_setlen(out, start);
	free(g.stack.v);
	free(g.colour);
	free(w);
	tree_release(&t);
	return err;
}
