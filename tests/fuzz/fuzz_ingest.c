/* SPDX-License-Identifier: BSD-2-Clause */
/* fuzz_ingest.c - ingest name, time and folded-body parsers on arbitrary bytes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ingest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1), err[128];
	struct ingest_name n;
	struct stacks *st;
	int64_t t;

	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	if (ingest_parse_name(s, &n, err, sizeof(err)) == 0) {
		if (!n.app[0] || strlen(n.app) != strspn(n.app, "abcdefghijklmnopqrstuvwxyz"
								 "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_./-"))
			abort();
	}
	(void)!ingest_parse_time(s, 1700000000, &t);
	st = stacks__new();
	if (st && ingest_parse_folded((const char *)data, size, st, 1000, err, sizeof(err)) == 0 &&
	    stacks__nstacks(st) > 1000)
		abort();
	stacks__free(st);
	free(s);
	return 0;
}
