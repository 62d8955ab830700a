/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * pprof.h - a struct stacks as a pprof profile: the gzipped perftools.profiles.Profile protocol
 * buffer (user/profile.proto) that `go tool pprof`, Pyroscope, Parca and Cloud Profiler read.
 *
 * What is written:
 *   sample_type          [{"samples","count"}, {"cpu","nanoseconds"}], default_sample_type "cpu"
 *   period_type, period  {"cpu","nanoseconds"}, 1e9 / hz
 *   sample               one per stack, location ids leaf first, values [count, count * period]
 *   location             one per distinct label, ids from 1, each with one line
 *   function             ids from 1, deduplicated by (name, file)
 *   string_table         deduplicated, entry 0 is ""
 *   time_nanos, duration_nanos, comment ["pysamp-bpf"]; no mappings (nothing is native).
 *
 * A label "QUALNAME (FILE:LINE)" (a Python frame) becomes Function{name = QUALNAME, filename =
 * FILE} and a Location whose line is {function, LINE}, split by frame_label_split (framelabel.h:
 * QUALNAME ends at the first " (", LINE is canonical, so FILE may hold ':' and " (" and the label
 * is exactly "QUALNAME" " (" FILE ":" LINE ")" again). Any other label (the
 * process root "python3 [1234]", an application name, "thread 7", "[pruned]", "[unknown]")
 * becomes Function{name = label} (no file) and a Location whose line is {function, 0}.
 * system_name is left "" on purpose: pprof takes a function whose system_name equals its name
 * for a mangled symbol and rewrites the name with C++ heuristics ("<module>" becomes "").
 *
 * Labels are untrusted bytes: protobuf strings must be UTF-8, so each byte that does not start a
 * valid (strict: no overlong forms, surrogates or values past U+10FFFF) UTF-8 sequence, and each
 * NUL byte (protobuf-c strings are C strings), becomes U+FFFD. Two labels that differ only in
 * such bytes keep distinct locations but may share a function.
 *
 * The output is deterministic: samples follow stacks__foreach_sorted and ids are given in order
 * of first use along it, so the same stacks give the same bytes whatever the insertion order;
 * the gzip header carries no file name and a zero time stamp.
 *
 * Thread-safety: none inside; pprof_write only reads st.
 */
#ifndef PYSAMP_PPROF_H
#define PYSAMP_PPROF_H

#include <stdint.h>

#include "stacks.h"
#include "util.h"

/* All fields may be zero for the defaults. */
struct pprof_opts {
	uint32_t hz;	     /* sampling frequency; period = 1e9 / hz nanoseconds (0: 100) */
	int64_t time_ns;     /* profile start (Unix ns), 0: unknown */
	int64_t duration_ns; /* 0: unknown; must not be negative */
};

/*
 * Append the gzipped profile.proto of st to out. o may be NULL for all defaults. An empty st
 * gives a valid profile without samples.
 * Returns 0; -EINVAL for a NULL st or out, hz above 1e9 or a negative duration_ns; -EOVERFLOW
 * when a count or count * period does not fit an int64; -E2BIG when out->max is reached or the
 * profile would need more than UINT32_MAX - 1 strings; -ENOMEM. On failure out->len is restored
 * to what it was (the contents past it are unspecified).
 * Memory besides out: a few hundred bytes per label (plus its cleaned bytes), 4 bytes per stack
 * for the sort and one stack's scratch; the serialised protobuf is compressed as it is produced,
 * never held whole.
 */
int pprof_write(const struct stacks *st, const struct pprof_opts *o, struct strbuf *out)
	__attribute__((warn_unused_result));

#endif /* PYSAMP_PPROF_H */
