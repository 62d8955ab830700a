/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * pyoffsets.c - CPython layouts per minor version and _Py_DebugOffsets.
 *
 * Every number below was measured with offsetof() against the version's own
 * headers (pyenv 2.7.18, 3.6.15, 3.7.16, 3.8.18, 3.9.18, 3.10.13, 3.11.7,
 * 3.12.1, 3.13.0; Debian 3.11.2 is identical to 3.11.7), see
 * shared/reference/cpython-frames.md section 9. Field comments name the
 * CPython member.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "pyoffsets.h"

#define NONE PYSAMP_OFF_NONE

/* clang-format off: hand-aligned tables */

/* Common string layouts. */
#define STR_PY2	 .str = PY_STR_BYTES, .bytes_size = 16, .bytes_data = 36 /* PyStringObject */
#define STR_PY36 /* PEP 393 with wstr (3.6-3.11) */                                                \
	.str = PY_STR_UNICODE, .bytes_size = 16, .bytes_data = 32, .unicode_length = 16,           \
	.unicode_state = 32, .unicode_ascii_data = 48, .unicode_compact_data = 72
#define STR_PY312 /* 3.12 dropped wstr */                                                          \
	.str = PY_STR_UNICODE, .bytes_size = 16, .bytes_data = 32, .unicode_length = 16,           \
	.unicode_state = 32, .unicode_ascii_data = 40, .unicode_compact_data = 56

static const struct py_offsets py27 = {
	.major = 2,
	.minor = 7,
	.runtime_interp_head = NONE, /* static interp_head */
	.interp_next = 0,	     /* PyInterpreterState.next */
	.interp_tstate_head = 8,     /* PyInterpreterState.tstate_head */
	.tstate_next = 0,	     /* PyThreadState.next */
	.tstate_thread_id = 144,     /* PyThreadState.thread_id */
	.tstate_frame = 16,	     /* PyThreadState.frame */
	.cframe_current = NONE,
	.frame_back = 24, /* PyFrameObject.f_back */
	.frame_code = 32, /* PyFrameObject.f_code */
	.frame_ip = 120,  /* PyFrameObject.f_lasti */
	.frame_owner = NONE,
	.frame_size = 128,
	.code_filename = 80, /* PyCodeObject.co_filename */
	.code_name = 88,     /* PyCodeObject.co_name */
	.code_qualname = NONE,
	.code_firstlineno = 96, /* PyCodeObject.co_firstlineno */
	.code_linetable = 104,	/* PyCodeObject.co_lnotab */
	.code_adaptive = NONE,
	.code_size = 112,
	.lasti = PY_LASTI_BYTES,
	.linetable = LINETABLE_LNOTAB_U8,
	STR_PY2,
};

static const struct py_offsets py36 = {
	.major = 3,
	.minor = 6,
	.runtime_interp_head = NONE, /* static interp_head */
	.interp_next = 0,
	.interp_tstate_head = 8,
	.tstate_next = 8,
	.tstate_thread_id = 152,
	.tstate_frame = 24,
	.cframe_current = NONE,
	.frame_back = 24,
	.frame_code = 32,
	.frame_ip = 120, /* f_lasti */
	.frame_owner = NONE,
	.frame_size = 128,
	.code_filename = 96,
	.code_name = 104,
	.code_qualname = NONE,
	.code_firstlineno = 36,
	.code_linetable = 112, /* co_lnotab */
	.code_adaptive = NONE,
	.code_size = 120,
	.lasti = PY_LASTI_BYTES,
	.linetable = LINETABLE_LNOTAB_S8,
	STR_PY36,
};

static const struct py_offsets py37 = {
	.major = 3,
	.minor = 7,
	.runtime_interp_head = 24, /* _PyRuntimeState.interpreters.head */
	.interp_next = 0,
	.interp_tstate_head = 8,
	.tstate_next = 8,
	.tstate_thread_id = 176,
	.tstate_frame = 24,
	.cframe_current = NONE,
	.frame_back = 24,
	.frame_code = 32,
	.frame_ip = 104, /* f_lasti */
	.frame_owner = NONE,
	.frame_size = 112,
	.code_filename = 96,
	.code_name = 104,
	.code_qualname = NONE,
	.code_firstlineno = 36,
	.code_linetable = 112,
	.code_adaptive = NONE,
	.code_size = 120,
	.lasti = PY_LASTI_BYTES,
	.linetable = LINETABLE_LNOTAB_S8,
	STR_PY36,
};

/* 3.8 and 3.9 share every offset used here (measured on 3.8.18 and 3.9.18). */
static const struct py_offsets py38 = {
	.major = 3,
	.minor = 8,
	.minor_last = 9,
	.runtime_interp_head = 32,
	.interp_next = 0,
	.interp_tstate_head = 8,
	.tstate_next = 8,
	.tstate_thread_id = 176,
	.tstate_frame = 24,
	.cframe_current = NONE,
	.frame_back = 24,
	.frame_code = 32,
	.frame_ip = 104,
	.frame_owner = NONE,
	.frame_size = 112,
	.code_filename = 104, /* co_posonlyargcount (3.8) moved the tail by 8 */
	.code_name = 112,
	.code_qualname = NONE,
	.code_firstlineno = 40,
	.code_linetable = 120,
	.code_adaptive = NONE,
	.code_size = 128,
	.lasti = PY_LASTI_BYTES,
	.linetable = LINETABLE_LNOTAB_S8,
	STR_PY36,
};

static const struct py_offsets py310 = {
	.major = 3,
	.minor = 10,
	.runtime_interp_head = 32,
	.interp_next = 0,
	.interp_tstate_head = 8,
	.tstate_next = 8,
	.tstate_thread_id = 176,
	.tstate_frame = 24,
	.cframe_current = NONE,
	.frame_back = 24,
	.frame_code = 32,
	.frame_ip = 96, /* f_lasti, in code units since 3.10 (bpo-27129) */
	.frame_owner = NONE,
	.frame_size = 104,
	.code_filename = 104,
	.code_name = 112,
	.code_qualname = NONE,
	.code_firstlineno = 40,
	.code_linetable = 120, /* co_linetable (PEP 626) */
	.code_adaptive = NONE,
	.code_size = 128,
	.lasti = PY_LASTI_UNITS,
	.linetable = LINETABLE_PEP626,
	STR_PY36,
};

static const struct py_offsets py311 = {
	.major = 3,
	.minor = 11,
	.runtime_interp_head = 40,
	.interp_next = 0,
	.interp_tstate_head = 16, /* PyInterpreterState.threads.head */
	.tstate_next = 8,
	.tstate_thread_id = 152,
	.tstate_frame = 56,  /* PyThreadState.cframe */
	.cframe_current = 8, /* _PyCFrame.current_frame */
	.frame_back = 48,    /* _PyInterpreterFrame.previous */
	.frame_code = 32,    /* _PyInterpreterFrame.f_code */
	.frame_ip = 56,	     /* _PyInterpreterFrame.prev_instr */
	.frame_owner = 69,   /* _PyInterpreterFrame.owner */
	.frame_size = 80,
	.owner_skip = 3, /* 3.11 has owners 0-2 only: nothing is skipped */
	.code_filename = 112,
	.code_name = 120,
	.code_qualname = 128,
	.code_firstlineno = 72,
	.code_linetable = 136,
	.code_adaptive = 184, /* co_code_adaptive */
	.code_size = 192,
	.lasti = PY_LASTI_PTR,
	.linetable = LINETABLE_LOCATIONS,
	STR_PY36,
};

static const struct py_offsets py312 = {
	.major = 3,
	.minor = 12,
	.runtime_interp_head = 40,
	.interp_next = 0,
	.interp_tstate_head = 72,
	.tstate_next = 8,
	.tstate_thread_id = 136,
	.tstate_frame = 56,  /* cframe */
	.cframe_current = 0, /* use_tracing gone (gh-93516) */
	.frame_back = 8,
	.frame_code = 0, /* f_code first since 3.12 */
	.frame_ip = 56,	 /* prev_instr */
	.frame_owner = 70,
	.frame_size = 80,
	.owner_skip = 3, /* FRAME_OWNED_BY_CSTACK entry shims */
	.code_filename = 112,
	.code_name = 120,
	.code_qualname = 128,
	.code_firstlineno = 68,
	.code_linetable = 136,
	.code_adaptive = 192,
	.code_size = 200,
	.lasti = PY_LASTI_PTR,
	.linetable = LINETABLE_LOCATIONS,
	STR_PY312,
};

/* Used only when _Py_DebugOffsets cannot be read. */
static const struct py_offsets py313 = {
	.major = 3,
	.minor = 13,
	.runtime_interp_head = 632,
	.interp_next = 7264, /* ceval moved to the front of PyInterpreterState */
	.interp_tstate_head = 7344,
	.tstate_next = 8,
	.tstate_thread_id = 152,
	.tstate_frame = 72, /* current_frame (_PyCFrame removed) */
	.cframe_current = NONE,
	.frame_back = 8,
	.frame_code = 0, /* f_executable */
	.frame_ip = 56,	 /* instr_ptr */
	.frame_owner = 70,
	.frame_size = 80,
	.owner_skip = 3,
	.code_filename = 112,
	.code_name = 120,
	.code_qualname = 128,
	.code_firstlineno = 68,
	.code_linetable = 136,
	.code_adaptive = 200,
	.code_size = 208,
	.lasti = PY_LASTI_PTR,
	.linetable = LINETABLE_LOCATIONS,
	STR_PY312,
};

static const struct py_offsets *const tables[] = {
	&py27, &py36, &py37, &py38, &py310, &py311, &py312, &py313,
};

/* clang-format on */

const struct py_offsets *pyoffsets_table(uint32_t major, uint32_t minor)
{
	for (size_t i = 0; i < sizeof(tables) / sizeof(tables[0]); i++) {
		const struct py_offsets *t = tables[i];
		uint32_t last = t->minor_last ? t->minor_last : t->minor;

		if (t->major == major && minor >= t->minor && minor <= last)
			return t;
	}
	return NULL;
}

/* clang-format off */
/* The fields we use from _Py_DebugOffsets. */
enum dbg_field {
	DBG_RUNTIME_INTERP_HEAD,
	DBG_INTERP_NEXT,
	DBG_INTERP_THREADS_HEAD,
	DBG_TS_NEXT,
	DBG_TS_CURRENT_FRAME,
	DBG_TS_THREAD_ID,
	DBG_FR_SIZE,
	DBG_FR_PREVIOUS,
	DBG_FR_EXECUTABLE,
	DBG_FR_INSTR_PTR,
	DBG_FR_OWNER,
	DBG_CO_SIZE,
	DBG_CO_FILENAME,
	DBG_CO_NAME,
	DBG_CO_QUALNAME,
	DBG_CO_LINETABLE,
	DBG_CO_FIRSTLINENO,
	DBG_CO_ADAPTIVE,
	DBG_UNI_STATE,
	DBG_UNI_LENGTH,
	DBG_UNI_ASCII_SIZE,
	DBG_NFIELDS,
};

/* Where each field sits inside _Py_DebugOffsets, and the struct's size. */
struct debug_layout {
	uint32_t pos[DBG_NFIELDS];
	uint32_t total;
};

/* 3.13: Include/internal/pycore_runtime.h, struct _Py_DebugOffsets (gh-107851). */
static const struct debug_layout layout313 = {
	.pos = {
		[DBG_RUNTIME_INTERP_HEAD] = 40, [DBG_INTERP_NEXT] = 64,
		[DBG_INTERP_THREADS_HEAD] = 72, [DBG_TS_NEXT] = 168,
		[DBG_TS_CURRENT_FRAME] = 184, [DBG_TS_THREAD_ID] = 192,
		[DBG_FR_SIZE] = 224, [DBG_FR_PREVIOUS] = 232, [DBG_FR_EXECUTABLE] = 240,
		[DBG_FR_INSTR_PTR] = 248, [DBG_FR_OWNER] = 264,
		[DBG_CO_SIZE] = 272, [DBG_CO_FILENAME] = 280, [DBG_CO_NAME] = 288,
		[DBG_CO_QUALNAME] = 296, [DBG_CO_LINETABLE] = 304, [DBG_CO_FIRSTLINENO] = 312,
		[DBG_CO_ADAPTIVE] = 344,
		[DBG_UNI_STATE] = 544, [DBG_UNI_LENGTH] = 552, [DBG_UNI_ASCII_SIZE] = 560,
	},
	.total = 584,
};

/*
 * 3.14: pycore_debug_offsets.h gained threads_main, code_object_generation
 * and tlbc_generation (interpreter_state), stackpointer and tlbc_index
 * (interpreter_frame), co_tlbc, and set/gen/llist/debugger groups.
 */
static const struct debug_layout layout314 = {
	.pos = {
		[DBG_RUNTIME_INTERP_HEAD] = 40, [DBG_INTERP_NEXT] = 64,
		[DBG_INTERP_THREADS_HEAD] = 72, [DBG_TS_NEXT] = 192,
		[DBG_TS_CURRENT_FRAME] = 208, [DBG_TS_THREAD_ID] = 216,
		[DBG_FR_SIZE] = 248, [DBG_FR_PREVIOUS] = 256, [DBG_FR_EXECUTABLE] = 264,
		[DBG_FR_INSTR_PTR] = 272, [DBG_FR_OWNER] = 288,
		[DBG_CO_SIZE] = 312, [DBG_CO_FILENAME] = 320, [DBG_CO_NAME] = 328,
		[DBG_CO_QUALNAME] = 336, [DBG_CO_LINETABLE] = 344, [DBG_CO_FIRSTLINENO] = 352,
		[DBG_CO_ADAPTIVE] = 384,
		[DBG_UNI_STATE] = 624, [DBG_UNI_LENGTH] = 632, [DBG_UNI_ASCII_SIZE] = 640,
	},
	.total = 760,
};

/* clang-format on */

static uint64_t get64(const uint8_t *buf, uint32_t pos)
{
	uint64_t v;

	memcpy(&v, buf + pos, sizeof(v));
	return v;
}

static int fail(char *why, size_t whylen, int err, const char *msg)
{
	if (why && whylen)
		snprintf(why, whylen, "%s", msg);
	return err;
}

int pyoffsets_from_debug(const uint8_t *buf, size_t len, struct py_offsets *out, char *why,
			 size_t whylen)
{
	const struct debug_layout *l;
	uint64_t version, v[DBG_NFIELDS];
	uint32_t major, minor;

	if (len < 24 || memcmp(buf, "xdebugpy", 8) != 0)
		return fail(why, whylen, -EINVAL, "no _Py_DebugOffsets cookie");
	version = get64(buf, 8);
	major = (uint32_t)(version >> 24) & 0xff;
	minor = (uint32_t)(version >> 16) & 0xff;
	if (major != 3 || minor < 13)
		return fail(why, whylen, -ENOTSUP, "_Py_DebugOffsets version before 3.13");
	if (get64(buf, 16) != 0)
		return fail(why, whylen, -ENOTSUP, "free-threaded build (not supported)");
	l = minor == 13 ? &layout313 : &layout314;
	if (len < l->total)
		return fail(why, whylen, -EINVAL, "_Py_DebugOffsets copy too short");

	for (size_t i = 0; i < DBG_NFIELDS; i++) {
		v[i] = get64(buf, l->pos[i]);
		/* Offsets into structs that are at most a few hundred KiB. */
		if (v[i] > (1u << 20))
			return fail(why, whylen, -EINVAL, "_Py_DebugOffsets value out of range");
	}

	memset(out, 0, sizeof(*out));
	out->major = major;
	out->minor = minor;
	out->runtime_interp_head = (uint32_t)v[DBG_RUNTIME_INTERP_HEAD];
	out->interp_next = (uint32_t)v[DBG_INTERP_NEXT];
	out->interp_tstate_head = (uint32_t)v[DBG_INTERP_THREADS_HEAD];
	out->tstate_next = (uint32_t)v[DBG_TS_NEXT];
	out->tstate_thread_id = (uint32_t)v[DBG_TS_THREAD_ID];
	out->tstate_frame = (uint32_t)v[DBG_TS_CURRENT_FRAME];
	out->cframe_current = NONE;
	out->frame_back = (uint32_t)v[DBG_FR_PREVIOUS];
	out->frame_code = (uint32_t)v[DBG_FR_EXECUTABLE];
	out->frame_ip = (uint32_t)v[DBG_FR_INSTR_PTR];
	out->frame_owner = (uint32_t)v[DBG_FR_OWNER];
	out->frame_size = (uint32_t)v[DBG_FR_SIZE];
	/* Not described by the struct: owners >= 3 are shims in 3.12-3.15
	 * (CSTACK, INTERPRETER); 3.14 tags f_executable as a _PyStackRef. */
	out->owner_skip = 3;
	out->code_tag_mask = minor >= 14 ? 3 : 0;
	out->code_filename = (uint32_t)v[DBG_CO_FILENAME];
	out->code_name = (uint32_t)v[DBG_CO_NAME];
	out->code_qualname = (uint32_t)v[DBG_CO_QUALNAME];
	out->code_linetable = (uint32_t)v[DBG_CO_LINETABLE];
	out->code_firstlineno = (uint32_t)v[DBG_CO_FIRSTLINENO];
	out->code_adaptive = (uint32_t)v[DBG_CO_ADAPTIVE];
	out->code_size = (uint32_t)v[DBG_CO_SIZE];
	out->lasti = PY_LASTI_PTR;
	out->linetable = LINETABLE_LOCATIONS;
	out->str = PY_STR_UNICODE;
	out->bytes_size = 16;
	out->bytes_data = 32;
	out->unicode_length = (uint32_t)v[DBG_UNI_LENGTH];
	out->unicode_state = (uint32_t)v[DBG_UNI_STATE];
	out->unicode_ascii_data = (uint32_t)v[DBG_UNI_ASCII_SIZE];
	out->unicode_compact_data = out->unicode_ascii_data + 16; /* + utf8_length, utf8 */

	/* Sanity: fields lie inside their structs, sizes are plausible. */
	if (out->frame_size < 48 || out->frame_size > PYSAMP_OBJ_BUF ||
	    out->frame_back + 8 > out->frame_size || out->frame_code + 8 > out->frame_size ||
	    out->frame_ip + 8 > out->frame_size || out->frame_owner >= out->frame_size ||
	    out->code_size < 64 || out->code_size > 1024 || out->code_adaptive > out->code_size ||
	    out->code_filename + 8 > out->code_size || out->code_name + 8 > out->code_size ||
	    out->code_qualname + 8 > out->code_size || out->code_linetable + 8 > out->code_size ||
	    out->code_firstlineno + 4 > out->code_size || out->unicode_ascii_data < 32 ||
	    out->unicode_ascii_data > 64)
		return fail(why, whylen, -EINVAL, "_Py_DebugOffsets values fail sanity checks");
	return 0;
}

int pyoffsets_to_bpf(const struct py_offsets *o, uint64_t interp_head_addr, struct pysamp_proc *out)
{
	const uint32_t ptrs[] = { o->code_filename, o->code_name, o->code_linetable };
	uint32_t lo = o->code_firstlineno, hi = o->code_firstlineno + 4;

	/* BPF copies only the window of the code object that holds the fields. */
	memset(out, 0, sizeof(*out));
	for (size_t i = 0; i < sizeof(ptrs) / sizeof(ptrs[0]); i++) {
		if (ptrs[i] < lo)
			lo = ptrs[i];
		if (ptrs[i] + 8 > hi)
			hi = ptrs[i] + 8;
	}
	lo &= ~7u;
	hi = (hi + 7) & ~7u;
	if (hi - lo > PYSAMP_OBJ_BUF || o->frame_size > PYSAMP_OBJ_BUF ||
	    o->frame_back + 8 > o->frame_size || o->frame_code + 8 > o->frame_size ||
	    o->frame_ip + 8 > o->frame_size ||
	    (o->frame_owner != NONE && o->frame_owner >= o->frame_size))
		return -EINVAL;

	out->interp_head_addr = interp_head_addr;
	out->code_tag_mask = o->code_tag_mask;
	out->flags = (o->cframe_current != NONE ? PYSAMP_PF_CFRAME : 0) |
		     (o->frame_owner != NONE ? PYSAMP_PF_OWNER : 0);
	out->interp_next = o->interp_next;
	out->interp_tstate_head = o->interp_tstate_head;
	out->tstate_next = o->tstate_next;
	out->tstate_thread_id = o->tstate_thread_id;
	out->tstate_frame = o->tstate_frame;
	out->cframe_current = o->cframe_current != NONE ? o->cframe_current : 0;
	out->frame_back = o->frame_back;
	out->frame_code = o->frame_code;
	out->frame_ip = o->frame_ip;
	out->frame_owner = o->frame_owner != NONE ? o->frame_owner : 0;
	out->frame_read_size = o->frame_size;
	out->owner_skip = o->owner_skip;
	out->code_filename = o->code_filename;
	out->code_name = o->code_name;
	out->code_firstlineno = o->code_firstlineno;
	out->code_linetable = o->code_linetable;
	out->code_read_off = lo;
	out->code_read_size = hi - lo;
	return 0;
}
