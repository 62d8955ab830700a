/* SPDX-License-Identifier: BSD-2-Clause */
/* symbolize.c - frames to "qualname (file:line)" labels, with caches. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "linetable.h"
#include "remote.h"
#include "symbolize.h"

#define SYM_NAME_MAX 512	/* bytes of UTF-8 kept for a name */
#define SYM_FILE_MAX 1024	/* bytes of UTF-8 kept for a file name */
#define SYM_LINETABLE_MAX (1u << 20)
#define SYM_CACHE_MAX (1u << 20)	/* entries per table before it is dropped */

/* What is known about one code object (address + fingerprint). */
struct code_info {
	uint64_t code;
	uint64_t fp;
	char *name;		/* qualname or name */
	char *file;
	uint8_t *linetable;
	size_t linetable_len;
	int32_t firstlineno;
};

struct frame_slot {
	uint64_t code, fp, ip;
	uint32_t id;
	uint32_t used;
};

struct code_slot {
	uint64_t code, fp;
	struct code_info *info;
};

struct symbolizer {
	const struct pyproc *pp;
	struct stacks *st;
	struct frame_slot *frames;
	size_t frames_cap, frames_n;
	struct code_slot *codes;
	size_t codes_cap, codes_n;
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

static void code_info_free(struct code_info *ci)
{
	if (!ci)
		return;
	free(ci->name);
	free(ci->file);
	free(ci->linetable);
	free(ci);
}

static void frames_clear(struct symbolizer *sy)
{
	free(sy->frames);
	sy->frames = NULL;
	sy->frames_cap = sy->frames_n = 0;
}

static void codes_clear(struct symbolizer *sy)
{
	for (size_t i = 0; i < sy->codes_cap; i++)
		code_info_free(sy->codes[i].info);
	free(sy->codes);
	sy->codes = NULL;
	sy->codes_cap = sy->codes_n = 0;
}

struct symbolizer *symbolizer__new(const struct pyproc *pp, struct stacks *st)
{
	struct symbolizer *sy = calloc(1, sizeof(*sy));

	if (!sy)
		return NULL;
	sy->pp = pp;
	sy->st = st;
	return sy;
}

void symbolizer__free(struct symbolizer *sy)
{
	if (!sy)
		return;
	frames_clear(sy);
	codes_clear(sy);
	free(sy);
}

void symbolizer__reset_ids(struct symbolizer *sy)
{
	frames_clear(sy);
}

const struct symbolizer_stats *symbolizer__stats(const struct symbolizer *sy)
{
	return &sy->stats;
}

/* ---- open-addressing tables ---- */

static struct frame_slot *frame_find(struct symbolizer *sy, uint64_t code, uint64_t fp,
				     uint64_t ip, bool *found)
{
	size_t mask, i;

	*found = false;
	if (!sy->frames_cap)
		return NULL;
	mask = sy->frames_cap - 1;
	for (i = mix(code, fp, ip) & mask;; i = (i + 1) & mask) {
		struct frame_slot *s = &sy->frames[i];

		if (!s->used)
			return s;
		if (s->code == code && s->fp == fp && s->ip == ip) {
			*found = true;
			return s;
		}
	}
}

static int frame_grow(struct symbolizer *sy)
{
	size_t ncap = sy->frames_cap ? sy->frames_cap * 2 : 1024;
	struct frame_slot *old = sy->frames, *nv;
	size_t ocap = sy->frames_cap;

	if (sy->frames_n >= SYM_CACHE_MAX) {
		frames_clear(sy); /* bounded memory: start over */
		ncap = 1024;
		old = NULL;
		ocap = 0;
	}
	nv = calloc(ncap, sizeof(*nv));
	if (!nv)
		return -ENOMEM;
	sy->frames = nv;
	sy->frames_cap = ncap;
	sy->frames_n = 0;
	for (size_t i = 0; i < ocap; i++) {
		bool found;
		struct frame_slot *s;

		if (!old[i].used)
			continue;
		s = frame_find(sy, old[i].code, old[i].fp, old[i].ip, &found);
		*s = old[i];
		sy->frames_n++;
	}
	free(old);
	return 0;
}

static struct code_slot *code_find(struct symbolizer *sy, uint64_t code, uint64_t fp, bool *found)
{
	size_t mask, i;

	*found = false;
	if (!sy->codes_cap)
		return NULL;
	mask = sy->codes_cap - 1;
	for (i = mix(code, fp, 0) & mask;; i = (i + 1) & mask) {
		struct code_slot *s = &sy->codes[i];

		if (!s->info)
			return s;
		if (s->code == code && s->fp == fp) {
			*found = true;
			return s;
		}
	}
}

static int code_grow(struct symbolizer *sy)
{
	size_t ncap = sy->codes_cap ? sy->codes_cap * 2 : 256;
	struct code_slot *old = sy->codes, *nv;
	size_t ocap = sy->codes_cap;

	if (sy->codes_n >= SYM_CACHE_MAX) {
		codes_clear(sy);
		ncap = 256;
		old = NULL;
		ocap = 0;
	}
	nv = calloc(ncap, sizeof(*nv));
	if (!nv)
		return -ENOMEM;
	sy->codes = nv;
	sy->codes_cap = ncap;
	sy->codes_n = 0;
	for (size_t i = 0; i < ocap; i++) {
		bool found;
		struct code_slot *s;

		if (!old[i].info)
			continue;
		s = code_find(sy, old[i].code, old[i].fp, &found);
		*s = old[i];
		sy->codes_n++;
	}
	free(old);
	return 0;
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
		data = addr + ((state & 0x40) ? off->unicode_ascii_data : off->unicode_compact_data);
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

		have_name = q && symbolize_read_str(pid, off, q, pp->type_str, name,
						    sizeof(name)) == 0 && name[0];
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

int symbolizer__frame(struct symbolizer *sy, const struct pysamp_frame *f, uint32_t *id)
{
	struct code_info *ci;
	struct frame_slot *fs;
	struct code_slot *cs;
	char label[SYM_NAME_MAX + SYM_FILE_MAX + 32];
	bool found;
	int line, n, err;

	sy->stats.frames++;
	fs = frame_find(sy, f->code, f->code_fp, f->ip, &found);
	if (found) {
		sy->stats.hits++;
		*id = fs->id;
		return 0;
	}

	cs = code_find(sy, f->code, f->code_fp, &found);
	if (found) {
		ci = cs->info;
	} else {
		ci = read_code(sy, f->code, f->code_fp);
		if (!ci)
			return intern_unknown(sy, id);
		if (!f->code_fp) {
			/* Unverifiable (BPF could not read the object): do not cache. */
			line = line_of(sy, ci, f->code, f->ip);
			n = line >= 0 ? snprintf(label, sizeof(label), "%s (%s:%d)", ci->name,
						 ci->file, line)
				      : snprintf(label, sizeof(label), "%s (%s)", ci->name, ci->file);
			code_info_free(ci);
			return stacks__intern(sy->st, label, (size_t)n < sizeof(label) ? (size_t)n
									   : sizeof(label) - 1, id);
		}
		if (sy->codes_n + 1 > sy->codes_cap / 2) {
			err = code_grow(sy);
			if (err) {
				code_info_free(ci);
				return intern_unknown(sy, id);
			}
		}
		cs = code_find(sy, f->code, f->code_fp, &found);
		cs->code = f->code;
		cs->fp = f->code_fp;
		cs->info = ci;
		sy->codes_n++;
	}

	line = line_of(sy, ci, f->code, f->ip);
	if (line >= 0)
		n = snprintf(label, sizeof(label), "%s (%s:%d)", ci->name, ci->file, line);
	else
		n = snprintf(label, sizeof(label), "%s (%s)", ci->name, ci->file);
	if (n < 0)
		return intern_unknown(sy, id);
	if ((size_t)n >= sizeof(label))
		n = sizeof(label) - 1;
	err = stacks__intern(sy->st, label, (size_t)n, id);
	if (err)
		return err;

	if (sy->frames_n + 1 > sy->frames_cap / 2 && frame_grow(sy))
		return 0; /* no cache this time */
	fs = frame_find(sy, f->code, f->code_fp, f->ip, &found);
	fs->code = f->code;
	fs->fp = f->code_fp;
	fs->ip = f->ip;
	fs->id = *id;
	fs->used = 1;
	sy->frames_n++;
	return 0;
}
