/* SPDX-License-Identifier: BSD-2-Clause */
/* test_pyoffsets.c - version tables and _Py_DebugOffsets decoding. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "pyoffsets.h"

static void test_tables(void)
{
	static const uint32_t versions[][2] = {
		{ 2, 7 }, { 3, 6 }, { 3, 7 }, { 3, 8 }, { 3, 9 },
		{ 3, 10 }, { 3, 11 }, { 3, 12 }, { 3, 13 },
	};

	for (size_t i = 0; i < sizeof(versions) / sizeof(versions[0]); i++) {
		const struct py_offsets *o = pyoffsets_table(versions[i][0], versions[i][1]);
		struct pysamp_proc p;

		T_CHECK(o != NULL);
		if (!o)
			continue;
		T_CHECK_EQ_INT(pyoffsets_to_bpf(o, 0x1000, &p), 0);
		T_CHECK_EQ_INT(p.interp_head_addr, 0x1000);
		T_CHECK(p.frame_read_size <= PYSAMP_OBJ_BUF);
		T_CHECK(p.code_read_size <= PYSAMP_OBJ_BUF);
		/* The copied window holds every fingerprint field, inside the object. */
		T_CHECK(p.code_read_off <= p.code_name && p.code_read_off <= p.code_filename &&
			p.code_read_off <= p.code_linetable && p.code_read_off <= p.code_firstlineno);
		T_CHECK(p.code_read_off + p.code_read_size >= p.code_linetable + 8);
		T_CHECK(p.code_read_off + p.code_read_size >= p.code_name + 8);
		T_CHECK(p.code_read_off + p.code_read_size >= p.code_filename + 8);
		T_CHECK(o->code_size >= p.code_read_off + p.code_read_size);
		/* 3.11 and 3.12 reach the frame through _PyCFrame; others directly. */
		T_CHECK_EQ_INT(!!(p.flags & PYSAMP_PF_CFRAME),
			       versions[i][0] == 3 && (versions[i][1] == 11 || versions[i][1] == 12));
		T_CHECK_EQ_INT(!!(p.flags & PYSAMP_PF_OWNER),
			       versions[i][0] == 3 && versions[i][1] >= 11);
	}
	T_CHECK(pyoffsets_table(3, 5) == NULL);
	T_CHECK(pyoffsets_table(2, 6) == NULL);
	T_CHECK(pyoffsets_table(3, 14) == NULL);
}

static uint8_t *load_blob(size_t *len)
{
	FILE *f = fopen("tests/fixtures/debug_offsets_3.13.0.bin", "rb");
	uint8_t *buf = malloc(PYOFFSETS_DEBUG_BYTES);

	*len = 0;
	if (f && buf)
		*len = fread(buf, 1, PYOFFSETS_DEBUG_BYTES, f);
	if (f)
		fclose(f);
	return buf;
}

static void test_debug_313(void)
{
	const struct py_offsets *t = pyoffsets_table(3, 13);
	struct py_offsets o;
	char why[128];
	size_t len;
	uint8_t *blob = load_blob(&len);

	T_CHECK_EQ_INT(len, PYOFFSETS_DEBUG_BYTES);
	T_CHECK_EQ_INT(pyoffsets_from_debug(blob, len, &o, why, sizeof(why)), 0);
	/* The live description agrees with the measured 3.13 table. */
	T_CHECK_EQ_INT(o.major, 3);
	T_CHECK_EQ_INT(o.minor, 13);
	T_CHECK_EQ_INT(o.runtime_interp_head, t->runtime_interp_head);
	T_CHECK_EQ_INT(o.interp_next, t->interp_next);
	T_CHECK_EQ_INT(o.interp_tstate_head, t->interp_tstate_head);
	T_CHECK_EQ_INT(o.tstate_next, t->tstate_next);
	T_CHECK_EQ_INT(o.tstate_thread_id, t->tstate_thread_id);
	T_CHECK_EQ_INT(o.tstate_frame, t->tstate_frame);
	T_CHECK_EQ_INT(o.frame_back, t->frame_back);
	T_CHECK_EQ_INT(o.frame_code, t->frame_code);
	T_CHECK_EQ_INT(o.frame_ip, t->frame_ip);
	T_CHECK_EQ_INT(o.frame_owner, t->frame_owner);
	T_CHECK_EQ_INT(o.frame_size, t->frame_size);
	T_CHECK_EQ_INT(o.code_filename, t->code_filename);
	T_CHECK_EQ_INT(o.code_name, t->code_name);
	T_CHECK_EQ_INT(o.code_qualname, t->code_qualname);
	T_CHECK_EQ_INT(o.code_firstlineno, t->code_firstlineno);
	T_CHECK_EQ_INT(o.code_linetable, t->code_linetable);
	T_CHECK_EQ_INT(o.code_adaptive, t->code_adaptive);
	T_CHECK_EQ_INT(o.code_size, t->code_size);
	T_CHECK_EQ_INT(o.unicode_ascii_data, t->unicode_ascii_data);
	T_CHECK_EQ_INT(o.unicode_compact_data, t->unicode_compact_data);
	T_CHECK_EQ_INT(o.code_tag_mask, 0);

	/* A "3.15" with the same struct layout is accepted through the 3.14 decoder only
	 * if its values pass the checks; here the 3.13 values sit at 3.13 positions, so
	 * decoding them as the newer layout must fail the sanity checks, not misread. */
	{
		uint8_t copy[PYOFFSETS_DEBUG_BYTES];
		uint64_t v = 0x030f00a0;

		memcpy(copy, blob, sizeof(copy));
		memcpy(copy + 8, &v, 8);
		T_CHECK_EQ_INT(pyoffsets_from_debug(copy, sizeof(copy), &o, why, sizeof(why)),
			       -EINVAL);
	}
	/* Free-threaded builds are refused. */
	{
		uint8_t copy[PYOFFSETS_DEBUG_BYTES];
		uint64_t one = 1;

		memcpy(copy, blob, sizeof(copy));
		memcpy(copy + 16, &one, 8);
		T_CHECK_EQ_INT(pyoffsets_from_debug(copy, sizeof(copy), &o, why, sizeof(why)),
			       -ENOTSUP);
		T_CHECK(strstr(why, "free-threaded") != NULL);
	}
	/* Bad cookie, short buffer, absurd values. */
	{
		uint8_t copy[PYOFFSETS_DEBUG_BYTES];
		uint64_t huge = 1ULL << 40;

		memcpy(copy, blob, sizeof(copy));
		copy[0] = 'y';
		T_CHECK_EQ_INT(pyoffsets_from_debug(copy, sizeof(copy), &o, NULL, 0), -EINVAL);
		T_CHECK_EQ_INT(pyoffsets_from_debug(blob, 100, &o, NULL, 0), -EINVAL);
		memcpy(copy, blob, sizeof(copy));
		memcpy(copy + 232, &huge, 8); /* interpreter_frame.previous */
		T_CHECK_EQ_INT(pyoffsets_from_debug(copy, sizeof(copy), &o, NULL, 0), -EINVAL);
	}
	free(blob);
}

/* A 3.14 description built from the 3.14.0 header values (not measured: no 3.14 here). */
static void test_debug_314_synthetic(void)
{
	uint8_t b[PYOFFSETS_DEBUG_BYTES];
	struct py_offsets o;
	char why[128];
	struct {
		uint32_t pos;
		uint64_t val;
	} f[] = {
		{ 8, 0x030e00f0 }, { 16, 0 },
		{ 40, 808 },				/* runtime_state.interpreters_head */
		{ 64, 7272 }, { 72, 7344 },		/* interpreter_state.next, threads_head */
		{ 192, 8 }, { 208, 72 }, { 216, 152 },	/* thread_state next, current_frame, id */
		{ 248, 88 }, { 256, 8 }, { 264, 0 }, { 272, 56 }, { 288, 74 }, /* frame */
		{ 312, 216 }, { 320, 112 }, { 328, 120 }, { 336, 128 }, { 344, 136 },
		{ 352, 68 }, { 384, 208 },		/* code object */
		{ 624, 32 }, { 632, 16 }, { 640, 40 },	/* unicode */
	};

	memset(b, 0, sizeof(b));
	memcpy(b, "xdebugpy", 8);
	for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++)
		memcpy(b + f[i].pos, &f[i].val, 8);
	T_CHECK_EQ_INT(pyoffsets_from_debug(b, sizeof(b), &o, why, sizeof(why)), 0);
	T_CHECK_EQ_INT(o.minor, 14);
	T_CHECK_EQ_INT(o.tstate_frame, 72);
	T_CHECK_EQ_INT(o.frame_owner, 74);
	T_CHECK_EQ_INT(o.frame_size, 88);
	T_CHECK_EQ_INT(o.code_adaptive, 208);
	T_CHECK_EQ_INT(o.code_tag_mask, 3);
	T_CHECK_EQ_INT(o.unicode_compact_data, 56);
}

int main(void)
{
	test_tables();
	test_debug_313();
	test_debug_314_synthetic();
	return T_DONE();
}
