/* SPDX-License-Identifier: BSD-2-Clause */
/* fuzz_procmaps.c - libFuzzer target for the /proc/PID/maps parser. */
#include <stddef.h>
#include <stdint.h>

#include "procmaps.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct procmaps m;

	procmaps_init(&m);
	if (procmaps_parse(&m, (const char *)data, size) == 0) {
		for (size_t i = 0; i < m.n; i++)
			if (m.v[i].end < m.v[i].start || !m.v[i].path)
				__builtin_trap();
	}
	procmaps_release(&m);
	return 0;
}
