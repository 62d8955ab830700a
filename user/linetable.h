/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * linetable.h - bytecode offset to source line, from a code object's line table.
 *
 * The table bytes are copied out of the target process and are untrusted:
 * every read is bounded by len, each call does O(len) work, and no input
 * makes the code overflow a signed integer. Nothing is allocated and no
 * state is kept, so every function here is thread-safe.
 */
#ifndef PYSAMP_LINETABLE_H
#define PYSAMP_LINETABLE_H

#include <stddef.h>
#include <stdint.h>

enum linetable_format {
	LINETABLE_LNOTAB_U8 = 0, /* 2.7: co_lnotab pairs (addr_incr u8, line_incr u8) */
	LINETABLE_LNOTAB_S8 = 1, /* 3.6-3.9: co_lnotab pairs (addr_incr u8, line_incr i8) */
	LINETABLE_PEP626 = 2,	 /* 3.10: co_linetable pairs (start_delta u8,
					 * line_delta i8, -128 = none) */
	LINETABLE_LOCATIONS = 3, /* 3.11+: location table (InternalDocs/locations.md) */
};

/*
 * line of the instruction at byte offset `offset`; -1 when that instruction
 * has no line or the offset is past the table; firstlineno is co_firstlineno
 *
 * tab/len: the raw co_lnotab (2.7-3.9) or co_linetable (3.10+) bytes; tab may
 * be NULL when len is 0. offset is in bytes from the start of co_code, for
 * every version (3.10 keeps f_lasti in code units: multiply it by 2 first).
 *
 * Results match PyCode_Addr2Line() of the matching CPython version, with
 * these deliberate differences, all on tables CPython itself never writes:
 *  - The lnotab formats do not record where the code ends: any offset at or
 *    after the last entry gets the last line, never -1, exactly as CPython.
 *    Callers bound offset by the size of co_code.
 *  - A trailing odd byte of a pair format is ignored (CPython reads past it).
 *  - 3.11+ varints that run off the end of the table stop there, and only
 *    their first six 6-bit chunks count (CPython reads on, and shifts past
 *    32 bits).
 *  - Lines are summed in CPython's 32-bit int, wrapping modulo 2^32 instead
 *    of overflowing, so a hostile table can produce any int, -1 included.
 *
 * Any negative result means "no usable line" (line 0 is real: 3.11+ gives
 * it to a module's RESUME). An unknown fmt returns -1.
 */
int linetable_addr2line(enum linetable_format fmt, const uint8_t *tab, size_t len, int firstlineno,
			uint32_t offset);

#endif /* PYSAMP_LINETABLE_H */
