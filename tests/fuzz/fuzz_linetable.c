/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * fuzz_linetable.c - libFuzzer target for linetable_addr2line().
 *
 * Input: byte 0 selects the format (low 3 bits, modulo 5 so that an unknown
 * format is tried too) and, with bit 7 set, folds the offset into the range
 * the table can cover; bytes 1-4 are firstlineno and bytes 5-8 the offset
 * (little-endian); the rest is the line table. libFuzzer hands over an
 * exactly sized heap copy, so ASan sees any read past the table.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "linetable.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	enum linetable_format fmt;
	uint32_t first_u, offset;
	int first, line;
	const uint8_t *tab;
	size_t len;

	if (size < 9)
		return 0;
	fmt = (enum linetable_format)((data[0] & 7) % 5);
	first_u = le32(data + 1);
	/* uint32 to int without implementation-defined conversion */
	first = first_u <= INT32_MAX ? (int)first_u : -(int)(UINT32_MAX - first_u) - 1;
	offset = le32(data + 5);
	tab = size > 9 ? data + 9 : NULL;
	len = size - 9;
	if (data[0] & 0x80)
		offset %= (uint32_t)(len * 16 + 16);

	line = linetable_addr2line(fmt, tab, len, first, offset);
	/* pure: the same question gets the same answer */
	if (linetable_addr2line(fmt, tab, len, first, offset) != line)
		abort();
	/* no table: lnotab gives co_firstlineno, the others no line */
	if (len == 0 && line != ((unsigned int)fmt <= LINETABLE_LNOTAB_S8 ? first : -1))
		abort();
	return 0;
}
