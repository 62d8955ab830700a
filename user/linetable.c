/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * linetable.c - CPython line tables (co_lnotab, PEP 626, 3.11+ locations).
 *
 * Each decoder is one forward pass over the table, as PyCode_Addr2Line()
 * does it (Objects/codeobject.c of the version named). Lines are kept in a
 * uint32_t so that hostile deltas wrap the way CPython's int does in
 * practice, without the signed overflow that UBSan reports; addresses are
 * kept in a uint64_t, which no table of size_t length can overflow after the
 * early exit (each step adds at most 255 or 16).
 */
#include <stdbool.h>

#include "linetable.h"

/* 3.11+ location entry kinds, bits 3-6 of an entry's first byte. */
enum {
	LOC_ONE_LINE0 = 10,
	LOC_ONE_LINE1 = 11,
	LOC_ONE_LINE2 = 12,
	LOC_NO_COLUMNS = 13,
	LOC_LONG = 14,
	LOC_NONE = 15,
};

/* Chunks that start below bit 32 (shifts 0, 6, ..., 30); later ones are dropped. */
#define VARINT_MAX_CHUNKS 6

/* The int that CPython's two's-complement int holds after wrapping to v. */
static int line_from_u32(uint32_t v)
{
	if (v <= INT32_MAX)
		return (int)v;
	return -(int)(UINT32_MAX - v) - 1;
}

/* Sign-extend a byte (CPython casts to signed char). */
static uint32_t s8_to_u32(uint8_t b)
{
	return b < 0x80 ? (uint32_t)b : (uint32_t)b - 0x100u;
}

/*
 * 2.7 and 3.6-3.9: pairs (addr_incr, line_incr). The line increments that
 * belong to addresses at or before offset apply. line_incr is unsigned in
 * 2.7 and signed from 3.6 (bpo-26107).
 */
static int lnotab_addr2line(const uint8_t *tab, size_t len, int firstlineno, uint32_t offset,
			    bool signed_incr)
{
	uint32_t line = (uint32_t)firstlineno;
	uint64_t addr = 0;
	size_t i;

	for (i = 0; len - i >= 2; i += 2) {
		addr += tab[i];
		if (addr > offset)
			break;
		line += signed_incr ? s8_to_u32(tab[i + 1]) : tab[i + 1];
	}
	return line_from_u32(line);
}

/*
 * 3.10 (PEP 626): pairs (start_delta, line_delta) describe consecutive ranges
 * [start, start + start_delta). line_delta -128 means "no line" and leaves
 * the running line alone. Empty ranges are never returned but their deltas
 * still count, as in PyLineTable_NextAddressRange().
 */
static int pep626_addr2line(const uint8_t *tab, size_t len, int firstlineno, uint32_t offset)
{
	uint32_t line = (uint32_t)firstlineno;
	uint64_t end = 0;
	size_t i;

	for (i = 0; len - i >= 2; i += 2) {
		bool no_line = tab[i + 1] == 0x80;

		end += tab[i];
		if (!no_line)
			line += s8_to_u32(tab[i + 1]);
		/* Ranges are contiguous from 0: the first one ending after offset holds it. */
		if (offset < end)
			return no_line ? -1 : line_from_u32(line);
	}
	return -1;
}

/*
 * Unsigned varint of the 3.11+ location table: 6-bit little-endian chunks,
 * 0x40 set when another chunk follows. Like CPython's scan_varint() it does
 * not stop at the start of the next entry, but it stops at the end of the
 * table and after VARINT_MAX_CHUNKS chunks, so one entry costs O(1) reads.
 */
static uint32_t read_varint(const uint8_t *p, const uint8_t *end)
{
	uint32_t val = 0;
	unsigned int shift;

	for (shift = 0; p < end && shift < 6 * VARINT_MAX_CHUNKS; shift += 6) {
		uint8_t b = *p++;

		val |= (uint32_t)(b & 0x3f) << shift;
		if (!(b & 0x40))
			break;
	}
	return val;
}

/* Line delta of the entry whose first byte is p[0] (CPython get_line_delta()). */
static uint32_t location_line_delta(const uint8_t *p, const uint8_t *end)
{
	uint32_t u;

	switch ((p[0] >> 3) & 15) {
	case LOC_ONE_LINE1:
		return 1;
	case LOC_ONE_LINE2:
		return 2;
	case LOC_NO_COLUMNS:
	case LOC_LONG:
		/* Signed varint: zigzag-like, the low bit is the sign. */
		u = read_varint(p + 1, end);
		return (u & 1) ? 0u - (u >> 1) : u >> 1;
	case LOC_ONE_LINE0:
	case LOC_NONE:
	default: /* short forms 0-9: same line */
		return 0;
	}
}

/*
 * 3.11+: each entry starts with a byte with bit 7 set; it covers
 * (b & 7) + 1 code units (2 bytes each) and carries the kind in bits 3-6.
 * The entry's other bytes run up to the next byte with bit 7 set. As in
 * CPython's advance(), the byte at the current position is taken as an
 * entry start even when bit 7 is clear (only possible for the first byte).
 */
static int locations_addr2line(const uint8_t *tab, size_t len, int firstlineno, uint32_t offset)
{
	const uint8_t *p, *end;
	uint32_t line = (uint32_t)firstlineno;
	uint64_t addr_end = 0;

	if (len == 0)
		return -1;
	p = tab;
	end = tab + len;
	while (p < end) {
		uint8_t b = *p;

		line += location_line_delta(p, end);
		addr_end += ((uint32_t)(b & 7) + 1) * 2;
		if (offset < addr_end)
			return (b >> 3) == 0x1f ? -1 : line_from_u32(line);
		do {
			p++;
		} while (p < end && !(*p & 0x80));
	}
	return -1;
}

int linetable_addr2line(enum linetable_format fmt, const uint8_t *tab, size_t len, int firstlineno,
			uint32_t offset)
{
	if (!tab)
		len = 0; /* and never form NULL + len */

	switch (fmt) {
	case LINETABLE_LNOTAB_U8:
		return lnotab_addr2line(tab, len, firstlineno, offset, false);
	case LINETABLE_LNOTAB_S8:
		return lnotab_addr2line(tab, len, firstlineno, offset, true);
	case LINETABLE_PEP626:
		return pep626_addr2line(tab, len, firstlineno, offset);
	case LINETABLE_LOCATIONS:
		return locations_addr2line(tab, len, firstlineno, offset);
	}
	return -1;
}
