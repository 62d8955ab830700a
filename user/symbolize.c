/* SPDX-License-Identifier: BSD-2-Clause */
/* symbolize.c - frames to "qualname (file:line)" labels, with caches. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "linetable.h"
#include "remote.h"
#include "symbolize.h"

#define SYM_NAME_MAX	  512  /* bytes of UTF-8 kept for a name */
#define SYM_FILE_MAX	  1024 /* bytes of UTF-8 kept for a file name */
#define SYM_LINETABLE_MAX (1u << 20)
#define SYM_CACHE_MAX	  (1u << 20) /* entries per table before it is dropped */

/* What is known about one code object (address + fingerprint). */
struct code_info {
	uint64_t code;
	uint64_t fp;
	char *name; /* qualname or name */
	char *file;
	uint8_t *linetable;
	size_t linetable_len;
	int32_t firstlineno;
};

/*
 * One open-addressing table keyed by three u64s, used twice: frames
 * (code, fp, ip) -> label id, and code objects (code, fp, 0) -> code_info.
 * Values are u64; the table owns nothing unless given a free callback.
 */
struct kslot {
	uint64_t k[3];
	uint64_t val;
	bool used;
};

struct ktable {
	struct kslot *v;
	size_t cap, n;
	void (*free_val)(uint64_t val);
};

struct symbolizer {
	const struct pyproc *pp;
	struct stacks *st;
	struct ktable frames;
	struct ktable codes;
	struct symbolizer_stats stats;
};

static uint64_t mix(uint64_t a, uint64_t b, uint64_t c)
{
	uint64_t h = a * 0x9e3779b97f4a7c15ULL;

	h ^= b + 0x7f4a7c159e3779b9ULL + (h << 6) + (h >> 2);
	h ^= c + 0x94d049bb133111ebULL + (h << 6) + (h >> 2);
	h ^= h >> 31;
	h *= 0xbf58476d1ce4e5b9ULL;
	h ^= h >> 29;
	return h;
}

static void ktable_clear(struct ktable *t)
{
	if (t->free_val)
		for (size_t i = 0; i < t->cap; i++)
			if (t->v[i].used)
				t->free_val(t->v[i].val);
	free(t->v);
	t->v = NULL;
	t->cap = t->n = 0;
}

/* The slot holding key, or the empty slot where it would go (cap > 0). */
static struct kslot *ktable_slot(const struct ktable *t, uint64_t a, uint64_t b, uint64_t c)
{
	size_t mask = t->cap - 1;

	for (size_t i = mix(a, b, c) & mask;; i = (i + 1) & mask) {
		struct kslot *s = &t->v[i];

		if (!s->used || (s->k[0] == a && s->k[1] == b && s->k[2] == c))
			return s;
	}
}

static bool ktable_get(const struct ktable *t, uint64_t a, uint64_t b, uint64_t c, uint64_t *val)
{
	const struct kslot *s;

	if (!t->cap)
		return false;
	s = ktable_slot(t, a, b, c);
	if (!s->used)
		return false;
	*val = s->val;
	return true;
}

/*
 * Insert a key known to be absent. Past SYM_CACHE_MAX entries the table
 * starts over (bounded memory). Returns 0 or -ENOMEM (val not taken).
 */
static int ktable_put(struct ktable *t, uint64_t a, uint64_t b, uint64_t c, uint64_t val)
{
	struct kslot *s;

	if (t->n >= SYM_CACHE_MAX)
		ktable_clear(t);
	if ((t->n + 1) * 2 > t->cap) {
		struct ktable grown = { .cap = t->cap ? t->cap * 2 : 256, .free_val = t->free_val };

		grown.v = calloc(grown.cap, sizeof(*grown.v));
		if (!grown.v)
			return -ENOMEM;
		for (size_t i = 0; i < t->cap; i++) {
			if (!t->v[i].used)
				continue;
			*ktable_slot(&grown, t->v[i].k[0], t->v[i].k[1], t->v[i].k[2]) = t->v[i];
			grown.n++;
		}
		free(t->v);
		*t = grown;
	}
	s = ktable_slot(t, a, b, c);
	s->k[0] = a;
	s->k[1] = b;
	s->k[2] = c;
	s->val = val;
	s->used = true;
	t->n++;
	return 0;
}

static void code_info_free(struct code_info *ci)
{
	if (!ci)
		return;
	free(ci->name);
	free(ci->file);
	free(ci->linetable);
	free(ci);
}

static void code_info_free_val(uint64_t val)
{
	code_info_free((struct code_info *)(uintptr_t)val);
}

struct symbolizer *symbolizer__new(const struct pyproc *pp, struct stacks *st)
{
	struct symbolizer *sy = calloc(1, sizeof(*sy));

	if (!sy)
		return NULL;
	sy->pp = pp;
	sy->st = st;
	sy->codes.free_val = code_info_free_val;
	return sy;
}

void symbolizer__free(struct symbolizer *sy)
{
	if (!sy)
		return;
	ktable_clear(&sy->frames);
	ktable_clear(&sy->codes);
	free(sy);
}

void symbolizer__reset_ids(struct symbolizer *sy)
{
	ktable_clear(&sy->frames);
}

void symbolizer__set_stacks(struct symbolizer *sy, struct stacks *st)
{
	sy->st = st;
	ktable_clear(&sy->frames);
}

const struct symbolizer_stats *symbolizer__stats(const struct symbolizer *sy)
{
	return &sy->stats;
}

/* ---- reading CPython objects ---- */

static uint64_t field64(const uint8_t *obj, uint32_t off)
{
	uint64_t v;

	memcpy(&v, obj + off, sizeof(v));
	return v;
}

static size_t put_utf8(char *out, size_t room, uint32_t cp)
{
	char tmp[4];
	size_t n;

	if (cp >= 0xd800 && cp <= 0xdfff)
		cp = '?'; /* lone surrogate (surrogateescape file names) */
	if (cp < 0x80) {
		tmp[0] = (char)cp;
		n = 1;
	} else if (cp < 0x800) {
		tmp[0] = (char)(0xc0 | (cp >> 6));
		tmp[1] = (char)(0x80 | (cp & 0x3f));
		n = 2;
	} else if (cp < 0x10000) {
		tmp[0] = (char)(0xe0 | (cp >> 12));
		tmp[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		tmp[2] = (char)(0x80 | (cp & 0x3f));
		n = 3;
	} else if (cp <= 0x10ffff) {
		tmp[0] = (char)(0xf0 | (cp >> 18));
		tmp[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
		tmp[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
		tmp[3] = (char)(0x80 | (cp & 0x3f));
		n = 4;
	} else {
		tmp[0] = '?';
		n = 1;
	}
	if (n > room)
		return 0;
	memcpy(out, tmp, n);
	return n;
}

bool symbolize_object_live(uint64_t refcnt, uint64_t type, uint64_t want_type)
{
	/*
	 * A live reference count is non-zero in its low 32 bits; bits 32-47 are
	 * zero (3.12+ immortal counts stay below 2^32; 3.14 keeps flags in bits
	 * 48-63). A user-space pointer left by an allocator has bits 32-47 set.
	 */
	if ((refcnt & 0xffffffffULL) == 0 || (refcnt & 0x0000ffff00000000ULL) != 0)
		return false;
	return !want_type || type == want_type;
}

int symbolize_read_str(pid_t pid, const struct py_offsets *off, uint64_t addr, uint64_t want_type,
		       char *out, size_t outlen)
{
	uint8_t hdr[96], raw[SYM_FILE_MAX * 4];
	uint64_t data;
	int64_t len;
	uint32_t state, kind;
	size_t nchars, o = 0;
	int err;

	if (!outlen)
		return -EINVAL;
	out[0] = '\0';
	if (!addr)
		return -EFAULT;
	if (off->str == PY_STR_BYTES) {
		err = remote_read(pid, addr, hdr, off->bytes_data);
		if (err)
			return err;
		if (!symbolize_object_live(field64(hdr, 0), field64(hdr, 8), want_type))
			return -ESTALE;
		memcpy(&len, hdr + off->bytes_size, sizeof(len));
		if (len < 0)
			return -EINVAL;
		nchars = (size_t)len < outlen - 1 ? (size_t)len : outlen - 1;
		err = remote_read(pid, addr + off->bytes_data, out, nchars);
		if (err)
			return err;
		out[nchars] = '\0';
		/* Keep printable ASCII; other bytes become '?' (encoding unknown). */
		for (size_t i = 0; i < nchars; i++)
			if ((unsigned char)out[i] < 0x20 || (unsigned char)out[i] >= 0x7f)
				out[i] = '?';
		return 0;
	}

	if (off->unicode_compact_data + 8 > sizeof(hdr))
		return -EINVAL;
	err = remote_read(pid, addr, hdr, off->unicode_compact_data + 8);
	if (err)
		return err;
	if (!symbolize_object_live(field64(hdr, 0), field64(hdr, 8), want_type))
		return -ESTALE;
	memcpy(&len, hdr + off->unicode_length, sizeof(len));
	memcpy(&state, hdr + off->unicode_state, sizeof(state));
	kind = (state >> 2) & 7;
	if (len < 0 || (kind != 1 && kind != 2 && kind != 4))
		return -EINVAL;
	if (state & 0x20) { /* compact */
		data = addr +
		       ((state & 0x40) ? off->unicode_ascii_data : off->unicode_compact_data);
	} else { /* legacy: PyUnicodeObject.data.any */
		memcpy(&data, hdr + off->unicode_compact_data, sizeof(data));
	}
	nchars = (size_t)len;
	if (nchars > sizeof(raw) / kind)
		nchars = sizeof(raw) / kind;
	err = remote_read(pid, data, raw, nchars * kind);
	if (err)
		return err;
	for (size_t i = 0; i < nchars; i++) {
		uint32_t cp;
		size_t w;

		if (kind == 1) {
			cp = raw[i];
		} else if (kind == 2) {
			uint16_t c2;

			memcpy(&c2, raw + 2 * i, 2);
			cp = c2;
		} else {
			memcpy(&cp, raw + 4 * i, 4);
		}
		w = put_utf8(out + o, outlen - 1 - o, cp);
		if (!w)
			break;
		o += w;
	}
	out[o] = '\0';
	return 0;
}

static int read_bytes_obj(pid_t pid, const struct py_offsets *off, uint64_t addr,
			  uint64_t want_type, uint8_t **out, size_t *outlen)
{
	uint8_t hdr[40];
	int64_t len;
	uint8_t *buf;
	int err;

	*out = NULL;
	*outlen = 0;
	if (!addr || off->bytes_data > sizeof(hdr))
		return -EFAULT;
	err = remote_read(pid, addr, hdr, off->bytes_data);
	if (err)
		return err;
	if (!symbolize_object_live(field64(hdr, 0), field64(hdr, 8), want_type))
		return -ESTALE;
	memcpy(&len, hdr + off->bytes_size, sizeof(len));
	if (len < 0 || (uint64_t)len > SYM_LINETABLE_MAX)
		return -EINVAL;
	buf = malloc(len ? (size_t)len : 1);
	if (!buf)
		return -ENOMEM;
	err = remote_read(pid, addr + off->bytes_data, buf, (size_t)len);
	if (err) {
		free(buf);
		return err;
	}
	*out = buf;
	*outlen = (size_t)len;
	return 0;
}

/*
 * Read the code object now; NULL when unreadable, freed, or no longer the
 * sampled one. The target keeps running while we read, so the object is
 * checked live before and after its strings and line table are copied: if
 * it was alive (and unchanged) at both ends, so were the objects it holds
 * references to.
 */
static struct code_info *read_code(struct symbolizer *sy, uint64_t code, uint64_t fp)
{
	const struct pyproc *pp = sy->pp;
	const struct py_offsets *off = &pp->off;
	pid_t pid = pp->pid;
	uint8_t obj[PYSAMP_OBJ_BUF * 4], again[PYSAMP_OBJ_BUF * 4];
	char name[SYM_NAME_MAX], file[SYM_FILE_MAX];
	struct code_info *ci;
	uint64_t name_ptr, file_ptr, lt_ptr, live_fp;
	int32_t first;
	bool have_name = false;

	if (off->code_size > sizeof(obj) || remote_read(pid, code, obj, off->code_size)) {
		sy->stats.read_fail++;
		return NULL;
	}
	sy->stats.code_reads++;
	name_ptr = field64(obj, off->code_name);
	file_ptr = field64(obj, off->code_filename);
	lt_ptr = field64(obj, off->code_linetable);
	memcpy(&first, obj + off->code_firstlineno, sizeof(first));
	live_fp = pysamp_code_fp(name_ptr, file_ptr, lt_ptr, (uint32_t)first);
	if ((fp && live_fp != fp) ||
	    !symbolize_object_live(field64(obj, 0), field64(obj, 8), pp->type_code)) {
		sy->stats.stale++;
		return NULL;
	}
	if (off->code_qualname != PYSAMP_OFF_NONE) {
		uint64_t q = field64(obj, off->code_qualname);

		have_name =
			q &&
			symbolize_read_str(pid, off, q, pp->type_str, name, sizeof(name)) == 0 &&
			name[0];
	}
	if (!have_name &&
	    symbolize_read_str(pid, off, name_ptr, pp->type_str, name, sizeof(name))) {
		sy->stats.stale++;
		return NULL;
	}
	if (symbolize_read_str(pid, off, file_ptr, pp->type_str, file, sizeof(file))) {
		sy->stats.stale++;
		return NULL;
	}

	ci = calloc(1, sizeof(*ci));
	if (!ci)
		return NULL;
	ci->code = code;
	ci->fp = fp;
	ci->firstlineno = first;
	ci->name = strdup(name[0] ? name : "?");
	ci->file = strdup(file);
	if (!ci->name || !ci->file ||
	    read_bytes_obj(pid, off, lt_ptr, pp->type_bytes, &ci->linetable, &ci->linetable_len))
		goto stale;
	/* Still the same live object after all the reads? */
	if (remote_read(pid, code, again, off->code_size) ||
	    memcmp(again + 8, obj + 8, off->code_size - 8) != 0 ||
	    !symbolize_object_live(field64(again, 0), field64(again, 8), pp->type_code))
		goto stale;
	return ci;
stale:
	sy->stats.stale++;
	code_info_free(ci);
	return NULL;
}

static int line_of(const struct symbolizer *sy, const struct code_info *ci, uint64_t code,
		   uint64_t ip)
{
	const struct py_offsets *off = &sy->pp->off;
	uint64_t offset;
	int32_t lasti;
	int line;

	switch (off->lasti) {
	case PY_LASTI_BYTES:
	case PY_LASTI_UNITS:
		lasti = (int32_t)(uint32_t)ip;
		if (lasti < 0)
			return ci->firstlineno;
		offset = (uint64_t)lasti * (off->lasti == PY_LASTI_UNITS ? 2 : 1);
		break;
	case PY_LASTI_PTR:
	default:
		if (ip < code + off->code_adaptive)
			return ci->firstlineno;
		offset = ip - (code + off->code_adaptive);
		if (offset > UINT32_MAX)
			return ci->firstlineno;
		break;
	}
	if (!ci->linetable)
		return ci->firstlineno;
	line = linetable_addr2line(off->linetable, ci->linetable, ci->linetable_len,
				   ci->firstlineno, (uint32_t)offset);
	/*
	 * Instructions without a line (3.10 GEN_START, 3.12+ COPY_FREE_VARS and
	 * other prologue code) belong to the function's header line.
	 */
	return line >= 0 ? line : ci->firstlineno;
}

static int intern_unknown(struct symbolizer *sy, uint32_t *id)
{
	return stacks__intern(sy->st, "[unknown]", 9, id);
}

static int format_label(struct symbolizer *sy, const struct code_info *ci, uint64_t code,
			uint64_t ip, uint32_t *id)
{
	char label[SYM_NAME_MAX + SYM_FILE_MAX + 32];
	int n;

	n = snprintf(label, sizeof(label), "%s (%s:%d)", ci->name, ci->file,
		     line_of(sy, ci, code, ip));
	if (n < 0)
		return intern_unknown(sy, id);
	if ((size_t)n >= sizeof(label))
		n = sizeof(label) - 1;
	return stacks__intern(sy->st, label, (size_t)n, id);
}

int symbolizer__frame(struct symbolizer *sy, const struct pysamp_frame *f, uint32_t *id)
{
	struct code_info *ci;
	uint64_t val;
	int err;

	sy->stats.frames++;
	if (ktable_get(&sy->frames, f->code, f->code_fp, f->ip, &val)) {
		sy->stats.hits++;
		*id = (uint32_t)val;
		return 0;
	}
	if (ktable_get(&sy->codes, f->code, f->code_fp, 0, &val)) {
		ci = (struct code_info *)(uintptr_t)val;
	} else {
		ci = read_code(sy, f->code, f->code_fp);
		if (!ci)
			return intern_unknown(sy, id);
		if (!f->code_fp) {
			/* Unverifiable (BPF could not read the object): never cached. */
			err = format_label(sy, ci, f->code, f->ip, id);
			code_info_free(ci);
			return err;
		}
		if (ktable_put(&sy->codes, f->code, f->code_fp, 0, (uintptr_t)ci)) {
			code_info_free(ci);
			return intern_unknown(sy, id);
		}
	}
	err = format_label(sy, ci, f->code, f->ip, id);
	if (err)
		return err;
	/* Without room for the cache entry the label is still right. */
	(void)ktable_put(&sy->frames, f->code, f->code_fp, f->ip, *id);
	return 0;
}
