/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * test_symbolize.c - string decoding and frame labels, against fake CPython
 * objects built in this process's own memory (read back through
 * process_vm_readv on our own pid, exactly as from a target).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "stacks.h"
#include "symbolize.h"

/* A PEP 393 string in the 3.12 layout (ASCII data at 40, compact at 56). */
static uint8_t *make_str312(const void *data, size_t nchars, uint32_t kind, bool ascii)
{
	size_t hdr = ascii ? 40 : 56;
	uint8_t *o = calloc(1, hdr + (nchars + 1) * kind);
	int64_t len = (int64_t)nchars;
	uint32_t state = (kind << 2) | 0x20 | (ascii ? 0x40 : 0);

	o[0] = 1; /* ob_refcnt: a live object */
	memcpy(o + 16, &len, 8);
	memcpy(o + 32, &state, 4);
	memcpy(o + hdr, data, nchars * kind);
	return o;
}

static void test_strings(void)
{
	const struct py_offsets *o312 = pyoffsets_table(3, 12), *o27 = pyoffsets_table(2, 7);
	const uint16_t ucs2[] = { 'n', 'a', 0xef, 'v', 0x20ac };	/* naïv€ */
	const uint32_t ucs4[] = { 'f', 0x1f600, '.', 'p', 'y' };	/* f😀.py */
	const uint8_t latin1[] = { 'n', 'a', 0xef, 'v', 'e' };	/* naïve */
	uint8_t *s1 = make_str312("hello_world", 11, 1, true);
	uint8_t *s2 = make_str312(ucs2, 5, 2, false);
	uint8_t *s4 = make_str312(ucs4, 5, 4, false);
	uint8_t *sl = make_str312(latin1, 5, 1, false);
	uint8_t legacy[64], py2[64];
	char out[64];
	uint64_t ptr;
	int64_t len = 3;
	uint32_t state = (1u << 2) | 0x40; /* kind 1, ascii, not compact */
	pid_t self = getpid();

	T_CHECK_EQ_INT(symbolize_read_str(self, o312, (uintptr_t)s1, 0, out, sizeof(out)), 0);
	T_CHECK_EQ_STR(out, "hello_world");
	T_CHECK_EQ_INT(symbolize_read_str(self, o312, (uintptr_t)s2, 0, out, sizeof(out)), 0);
	T_CHECK_EQ_STR(out, "na\xc3\xafv\xe2\x82\xac");
	T_CHECK_EQ_INT(symbolize_read_str(self, o312, (uintptr_t)s4, 0, out, sizeof(out)), 0);
	T_CHECK_EQ_STR(out, "f\xf0\x9f\x98\x80.py");
	T_CHECK_EQ_INT(symbolize_read_str(self, o312, (uintptr_t)sl, 0, out, sizeof(out)), 0);
	T_CHECK_EQ_STR(out, "na\xc3\xafve");
	/* Truncation keeps whole UTF-8 sequences. */
	T_CHECK_EQ_INT(symbolize_read_str(self, o312, (uintptr_t)s4, 0, out, 4), 0);
	T_CHECK_EQ_STR(out, "f");

	/* Legacy (non-compact) string: data pointer at PyUnicodeObject.data. */
	memset(legacy, 0, sizeof(legacy));
	legacy[0] = 1;
	ptr = (uintptr_t)"abc";
	memcpy(legacy + 16, &len, 8);
	memcpy(legacy + 32, &state, 4);
	memcpy(legacy + 56, &ptr, 8);
	T_CHECK_EQ_INT(symbolize_read_str(self, o312, (uintptr_t)legacy, 0, out, sizeof(out)), 0);
	T_CHECK_EQ_STR(out, "abc");

	/* Python 2 str: ob_size at 16, ob_sval at 36; non-ASCII becomes '?'. */
	memset(py2, 0, sizeof(py2));
	py2[0] = 1;
	len = 4;
	memcpy(py2 + 16, &len, 8);
	memcpy(py2 + 36, "ab\x01z", 4);
	T_CHECK_EQ_INT(symbolize_read_str(self, o27, (uintptr_t)py2, 0, out, sizeof(out)), 0);
	T_CHECK_EQ_STR(out, "ab?z");

	/* Hostile: negative length, bad kind, NULL, unmapped. */
	len = -5;
	memcpy(py2 + 16, &len, 8);
	T_CHECK_EQ_INT(symbolize_read_str(self, o27, (uintptr_t)py2, 0, out, sizeof(out)), -EINVAL);
	state = 3u << 2 | 0x20;
	memcpy(s1 + 32, &state, 4);
	T_CHECK_EQ_INT(symbolize_read_str(self, o312, (uintptr_t)s1, 0, out, sizeof(out)), -EINVAL);
	T_CHECK_EQ_INT(symbolize_read_str(self, o312, 0, 0, out, sizeof(out)), -EFAULT);

	/* Freed memory and objects of another type are refused. */
	{
		uint64_t freelist = (uintptr_t)s2, type = 0x1234, rc = 1;

		memcpy(s4, &freelist, 8); /* allocator's free-list link over ob_refcnt */
		T_CHECK_EQ_INT(symbolize_read_str(self, o312, (uintptr_t)s4, 0, out, sizeof(out)),
			       -ESTALE);
		memcpy(s4, &rc, 8);
		memcpy(s4 + 8, &type, 8);
		T_CHECK_EQ_INT(symbolize_read_str(self, o312, (uintptr_t)s4, 0x999, out,
						  sizeof(out)), -ESTALE);
		T_CHECK_EQ_INT(symbolize_read_str(self, o312, (uintptr_t)s4, 0x1234, out,
						  sizeof(out)), 0);
		T_CHECK(symbolize_object_live(1, 0, 0));
		T_CHECK(symbolize_object_live(0x3fffffff, 7, 7));	/* 3.12 immortal */
		T_CHECK(symbolize_object_live((1ULL << 59) | 0xc0000000ULL, 7, 7)); /* 3.14 flags */
		T_CHECK(!symbolize_object_live(0, 7, 7));		/* NULL free-list end */
		T_CHECK(!symbolize_object_live(0x55d0c0a01230ULL, 7, 7));	/* heap pointer */
		T_CHECK(!symbolize_object_live(0x7f12a0001230ULL, 7, 7));
	}
	T_CHECK(symbolize_read_str(self, o312, 8, 0, out, sizeof(out)) < 0);
	free(s1);
	free(s2);
	free(s4);
	free(sl);
}

/* A fake 3.12 code object: name/qualname/filename strings, a bytes line table. */
struct fake_code {
	uint8_t obj[256];
	uint8_t *name, *qual, *file, *lt;
};

static void fake_code_init(struct fake_code *c, const char *name, const char *qual, int first)
{
	/* Location table: two 1-code-unit entries, code 13 (no columns) with line
	 * deltas +0 and +2: lines first, first+2. */
	static const uint8_t table[] = { 0x80 | (13 << 3) | 0, 0x00, 0x80 | (13 << 3) | 0, 0x04 };
	uint64_t p;
	int64_t n = sizeof(table);

	memset(c, 0, sizeof(*c));
	c->name = make_str312(name, strlen(name), 1, true);
	c->qual = make_str312(qual, strlen(qual), 1, true);
	c->file = make_str312("/srv/app.py", 11, 1, true);
	c->lt = calloc(1, 32 + sizeof(table));
	c->lt[0] = 1;
	c->obj[0] = 1;
	memcpy(c->lt + 16, &n, 8);
	memcpy(c->lt + 32, table, sizeof(table));
	p = (uintptr_t)c->file;
	memcpy(c->obj + 112, &p, 8);
	p = (uintptr_t)c->name;
	memcpy(c->obj + 120, &p, 8);
	p = (uintptr_t)c->qual;
	memcpy(c->obj + 128, &p, 8);
	p = (uintptr_t)c->lt;
	memcpy(c->obj + 136, &p, 8);
	memcpy(c->obj + 68, &first, 4);
}

static void fake_code_release(struct fake_code *c)
{
	free(c->name);
	free(c->qual);
	free(c->file);
	free(c->lt);
}

static uint64_t fake_fp(const struct fake_code *c)
{
	uint64_t name, file, lt;
	uint32_t first;

	memcpy(&file, c->obj + 112, 8);
	memcpy(&name, c->obj + 120, 8);
	memcpy(&lt, c->obj + 136, 8);
	memcpy(&first, c->obj + 68, 4);
	return pysamp_code_fp(name, file, lt, first);
}

static void test_frames(void)
{
	struct pyproc pp;
	struct stacks *st = stacks__new();
	struct symbolizer *sy;
	struct fake_code a, b;
	struct pysamp_frame f;
	uint32_t id, id2;
	uint64_t code;

	memset(&pp, 0, sizeof(pp));
	pp.pid = getpid();
	pp.off = *pyoffsets_table(3, 12);
	sy = symbolizer__new(&pp, st);
	T_CHECK(sy != NULL);

	fake_code_init(&a, "run", "Worker.run", 10);
	code = (uintptr_t)a.obj;
	/* Instruction 1 (second code unit) -> line 12. */
	f.code = code;
	f.ip = code + 192 + 2;
	f.code_fp = fake_fp(&a);
	T_CHECK_EQ_INT(symbolizer__frame(sy, &f, &id), 0);
	T_CHECK_EQ_STR(stacks__label(st, id), "Worker.run (/srv/app.py:12)");
	/* prev_instr before the first instruction -> co_firstlineno. */
	f.ip = code + 190;
	T_CHECK_EQ_INT(symbolizer__frame(sy, &f, &id), 0);
	T_CHECK_EQ_STR(stacks__label(st, id), "Worker.run (/srv/app.py:10)");
	/* Same frame again: a cache hit with the same id. */
	f.ip = code + 192 + 2;
	T_CHECK_EQ_INT(symbolizer__frame(sy, &f, &id2), 0);
	T_CHECK_EQ_INT(symbolizer__stats(sy)->hits, 1);

	/*
	 * The code object is freed and another function takes its address: a
	 * sample taken before (old fingerprint) keeps the old, cached name; a
	 * sample of the new function gets the new name.
	 */
	fake_code_init(&b, "other", "other", 30);
	memcpy(a.obj, b.obj, sizeof(a.obj));
	T_CHECK_EQ_INT(symbolizer__frame(sy, &f, &id2), 0);
	T_CHECK_EQ_STR(stacks__label(st, id2), "Worker.run (/srv/app.py:12)");
	f.code_fp = fake_fp(&b);
	T_CHECK_EQ_INT(symbolizer__frame(sy, &f, &id), 0);
	T_CHECK_EQ_STR(stacks__label(st, id), "other (/srv/app.py:32)");

	/* A fingerprint never seen and not matching memory: [unknown], counted stale. */
	f.code_fp = 12345;
	T_CHECK_EQ_INT(symbolizer__frame(sy, &f, &id), 0);
	T_CHECK_EQ_STR(stacks__label(st, id), "[unknown]");
	T_CHECK_EQ_INT(symbolizer__stats(sy)->stale, 1);

	/*
	 * A sampled code object that was freed before we read it: its memory
	 * still holds the old fields (the fingerprint matches) but the allocator
	 * overwrote ob_refcnt. Never labelled from that memory.
	 */
	{
		struct fake_code c;
		uint64_t link = (uintptr_t)&c;
		uint32_t idc;

		fake_code_init(&c, "gone", "gone", 50);
		memcpy(c.obj, &link, 8);
		f.code = (uintptr_t)c.obj;
		f.ip = f.code + 192;
		f.code_fp = fake_fp(&c);
		T_CHECK_EQ_INT(symbolizer__frame(sy, &f, &idc), 0);
		T_CHECK_EQ_STR(stacks__label(st, idc), "[unknown]");
		T_CHECK_EQ_INT(symbolizer__stats(sy)->stale, 2);
		fake_code_release(&c);
	}

	/* Unreadable code object. */
	f.code = 16;
	f.code_fp = 1;
	T_CHECK_EQ_INT(symbolizer__frame(sy, &f, &id), 0);
	T_CHECK_EQ_STR(stacks__label(st, id), "[unknown]");
	T_CHECK_EQ_INT(symbolizer__stats(sy)->read_fail, 1);

	/* Many distinct instructions: the caches grow and stay consistent. */
	f.code = code;
	f.code_fp = fake_fp(&b);
	{
		int fails = 0;

		for (uint64_t i = 0; i < 5000; i++) {
			f.ip = code + 192 + 2 * (i % 2) + (i << 12);
			fails += symbolizer__frame(sy, &f, &id) != 0;
		}
		T_CHECK_EQ_INT(fails, 0);
		f.ip = code + 192 + 2;
		T_CHECK_EQ_INT(symbolizer__frame(sy, &f, &id), 0);
		T_CHECK_EQ_STR(stacks__label(st, id), "other (/srv/app.py:32)");
	}
	symbolizer__free(sy);
	stacks__free(st);
	fake_code_release(&a);
	fake_code_release(&b);
}

int main(void)
{
	test_strings();
	test_frames();
	return T_DONE();
}
