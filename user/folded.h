/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * folded.h - folded-stack output (flamegraph.pl / bcc "profile -f" format).
 *
 * One line per unique stack: labels root first joined by ';', one space, the count, '\n', in
 * stacks__foreach_sorted order (count descending, then line bytes), so equal aggregates always
 * give byte-identical output. Labels are sanitised on the way out so every line parses: ';'
 * becomes ':', and '\n', '\r' and every other control byte (0x00-0x1f, 0x7f) becomes ' '.
 * Other bytes, UTF-8 included, pass through unchanged. Because sanitising happens after sorting,
 * lines whose labels needed it may sit slightly out of byte order.
 *
 * Thread-safety: the functions only read st; the caller keeps st unmodified meanwhile and owns
 * the output stream or buffer.
 */
#ifndef PYSAMP_FOLDED_H
#define PYSAMP_FOLDED_H

#include <stdio.h>

#include "stacks.h"
#include "util.h"

/*
 * Write every stack of st to out and flush it. Returns 0 or -errno: write errors such as -ENOSPC
 * or -EPIPE (-EIO when the stream failed without errno), -ENOMEM, and a stream already in error
 * state also fails. Output may be partial on failure. out stays open and owned by the caller.
 */
int folded_write(const struct stacks *st, FILE *out) __attribute__((warn_unused_result));

/*
 * Append the same text to sb. Returns 0, -E2BIG when sb's cap would be passed, or -ENOMEM;
 * on failure sb is restored to its previous length.
 */
int folded_write_buf(const struct stacks *st, struct strbuf *sb)
	__attribute__((warn_unused_result));

/*
 * As folded_write_buf, with every line (count and newline included) at most max_line bytes
 * (0: unlimited; values below 64 are treated as unlimited): a longer stack keeps its leaf-side
 * frames and starts with "[truncated]"; a single label too long on its own is cut. For readers
 * with a line limit, such as Pyroscope's 64 KiB.
 */
int folded_write_buf_capped(const struct stacks *st, struct strbuf *sb, size_t max_line)
	__attribute__((warn_unused_result));

#endif /* PYSAMP_FOLDED_H */
