/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * ingest.h - the parts of a Pyroscope ingest request (POST /ingest) the collector reads: the
 * name parameter ("APP[.TYPE]{k=v,...}"), times ("1700000000", milliseconds, "now-1h"), and a
 * folded body ("a;b;c 12" lines). Everything here comes from the network: every length is
 * capped, and a request the parser does not understand is refused with a message, never
 * guessed at. Pure functions, thread-safe.
 */
#ifndef PYSAMP_INGEST_H
#define PYSAMP_INGEST_H

#include <stddef.h>
#include <stdint.h>

#include "stacks.h"

#define INGEST_APP_MAX	  256
#define INGEST_LABELS_MAX 4096
#define INGEST_MAX_LABELS 30	/* Pyroscope's default per series */
#define INGEST_MAX_FRAMES 4096	/* frames per stack */

struct ingest_name {
	char app[INGEST_APP_MAX];	  /* [A-Za-z0-9_./-]+ */
	char type[32];			  /* profile type: "cpu" when none was given */
	char labels[INGEST_LABELS_MAX];	  /* canonical "k=v,k2=v2", keys sorted; "" for none */
};

/*
 * Parse a name= value as Pyroscope does: the text before '{' (trimmed) is the application,
 * [A-Za-z0-9_./-]+; with a '.', the part after the last one is the profile type and must be a
 * CPU type Pyroscope knows (cpu, itimer, wall, seconds...nanoseconds), else the request is
 * refused ("my.app" fails in Pyroscope too). Labels: "{k=v,...}" with keys [A-Za-z0-9_.]
 * (trimmed; not starting with "__"; no duplicates), values of 1-2048 bytes without ',', '{',
 * '}', '=', quotes or control bytes; at most INGEST_MAX_LABELS. Returns 0 with *out filled, or
 * -EINVAL with a one-line reason in err.
 */
int ingest_parse_name(const char *name, struct ingest_name *out, char *err, size_t errlen)
	__attribute__((warn_unused_result));

/*
 * A time as Pyroscope accepts it: digits are Unix seconds (13, 16 or 19 digits: ms, us, ns);
 * "now", or "now-N<unit>" with unit s, m/min, h, d, w. now_s is the current time. Returns 0 with
 * *out in Unix seconds, or -EINVAL.
 */
int ingest_parse_time(const char *s, int64_t now_s, int64_t *out)
	__attribute__((warn_unused_result));

/*
 * Add a folded body (len bytes, any bytes; need not be NUL-terminated) to st: one stack per
 * line, frames root first separated by ';', a space, then a non-negative decimal count (the
 * last space on the line separates it; frames may contain spaces). "\r\n" endings and empty
 * lines are accepted; lines without a space are refused, as are empty frames ("a;;b"), NUL or
 * other control bytes, counts that are not integers or pass 2^53, more than INGEST_MAX_FRAMES
 * frames, and more than max_stacks distinct stacks (0: no limit). Returns 0, -EINVAL with the
 * line number and reason in err, -E2BIG (too many stacks), or -ENOMEM. On failure st may hold
 * part of the body: callers parse into a fresh table and drop it.
 */
int ingest_parse_folded(const char *body, size_t len, struct stacks *st, size_t max_stacks,
			char *err, size_t errlen) __attribute__((warn_unused_result));

#endif /* PYSAMP_INGEST_H */
