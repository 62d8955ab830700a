/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * speedscope.h - profiles in speedscope's file format (https://www.speedscope.app/file-format-
 * schema.json), which speedscope (web or npm) opens as is (--format speedscope).
 *
 * One "sampled" profile per root label of st (a process, an application, as the profile was
 * grouped) and, when the frame under the root is a "thread N" label (--threads), per thread
 * ("ROOT / thread N"); the stacks below as samples with their counts as weights (unit "none":
 * samples). Frames are shared between profiles: qualname, file and line of Python frames
 * ("qualname (file:LINE)"), the whole label for the rest. Pure function over st (read only).
 */
#ifndef PYSAMP_SPEEDSCOPE_H
#define PYSAMP_SPEEDSCOPE_H

#include "stacks.h"
#include "util.h"

/*
 * Append the JSON document for st to out; name (NULL: "pysamp-bpf profile") names the file.
 * Profiles come in root label order (bytes), samples in stacks__foreach_sorted order.
 * 0, -ENOMEM, -E2BIG past out's cap (out restored).
 */
int speedscope_write(const struct stacks *st, const char *name, struct strbuf *out)
	__attribute__((warn_unused_result));

#endif /* PYSAMP_SPEEDSCOPE_H */
