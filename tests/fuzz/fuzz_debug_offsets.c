/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * fuzz_debug_offsets.c - libFuzzer target for the _Py_DebugOffsets decoder:
 * whatever a target process puts at _PyRuntime, an accepted description must
 * yield a walk configuration that fits the BPF copy buffers.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "pyoffsets.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t buf[PYOFFSETS_DEBUG_BYTES];
	struct py_offsets o;
	struct pysamp_proc p;
	char why[64];

	/* Keep the cookie valid most of the time so the fuzzer reaches the values. */
	memset(buf, 0, sizeof(buf));
	memcpy(buf, "xdebugpy", 8);
	if (size > sizeof(buf) - 8)
		size = sizeof(buf) - 8;
	memcpy(buf + 8, data, size);
	if (pyoffsets_from_debug(buf, sizeof(buf), &o, why, sizeof(why)) == 0) {
		if (pyoffsets_to_bpf(&o, 0x1000, &p) == 0 &&
		    (p.frame_read_size > PYSAMP_OBJ_BUF || p.code_read_size > PYSAMP_OBJ_BUF))
			__builtin_trap();
	}
	return 0;
}
