/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * flamesvg.h - a self-contained interactive flame graph (SVG + embedded JavaScript) from a
 * struct stacks, written by our own code (no flamegraph.pl at run time).
 *
 * The stacks are merged into a tree (children merged by label at each depth, counts inclusive,
 * children ordered by label bytes), laid out left to right and written as one <g> per frame
 * (<title> tooltip, <rect>, optional clipped <text>). Frames narrower than min_width_px are not
 * drawn: their width stays with the parent as blank space at the parent's right end, after the
 * drawn children, so totals and percentages stay exact and the output stays bounded by the width
 * (at most width / min_width_px frames per row).
 *
 * Colours (normal mode), one hue range per kind, the shade picked by a hash of the module name:
 *   own code      orange/red   any other "qualname (file:LINE)" frame; module = file name
 *   stdlib        blue         file under /lib/pythonX.Y/ (not site/dist-packages), <frozen ...>
 *   third-party   green        file under /site-packages/ or /dist-packages/; module = package
 *   native/other  grey-violet  frames without a " (file:LINE)" suffix (process, thread, [pruned])
 * Differential mode (opts->base): width from the "after" profile; red for a frame whose share of
 * the total grew, blue for one that shrank (intensity relative to the largest change drawn),
 * white when the change rounds to 0.00 percentage points, full red for frames absent from base.
 * Search matches are magenta.
 *
 * The embedded script (constant text; frame labels only ever appear XML-escaped in <title> and
 * <text>) provides click-to-zoom, Reset Zoom, Search (a JavaScript regex, "Matched: P%" of the
 * total with nested matches counted once), Ctrl-F to search, Escape to reset the search, a
 * details line for the hovered frame, the URL parameters s=REGEX and x=LABEL, and for a page that
 * embeds the SVG (same origin) window.pysamp = { search(re) -> fraction 0..1 (throws on a bad
 * regex), resetSearch(), zoomTo(label) -> bool, resetZoom(), zoomed() -> the zoomed frame's label
 * or "" }. Matched percentages count the drawn
 * frames only.
 *
 * Thread-safety: none inside; flamesvg_write only reads st and base.
 */
#ifndef PYSAMP_FLAMESVG_H
#define PYSAMP_FLAMESVG_H

#include <stdbool.h>

#include "stacks.h"
#include "util.h"

/* All fields may be zero/NULL for the defaults. */
struct flamesvg_opts {
	const char *title;    /* NULL: "Flame Graph" */
	const char *subtitle; /* NULL: none (e.g. the time range) */
	/* NULL: "samples"; characters other than [A-Za-z0-9 _./-] become '_' */
	const char *count_name;
	bool reverse;	     /* icicle: root at the top */
	unsigned width;	     /* 0: 1200 px; else 100 to 100000 */
	double min_width_px; /* 0: 0.5; frames narrower are not drawn (blank space in the parent) */
	const struct stacks *base; /* non-NULL: differential graph, base = "before", st = "after" */
};

/*
 * Append the flame graph SVG of st to out (the document is UTF-8; invalid UTF-8 and control bytes
 * in labels and titles become U+FFFD). o may be NULL for all defaults. An empty st gives a valid
 * SVG saying "No samples".
 * Returns 0; -EINVAL for a NULL st or out, a width outside [100, 100000] (0 excepted) or a
 * negative or non-finite min_width_px; -E2BIG when out->max is reached; -ENOMEM. On failure
 * out->len is restored to what it was (the contents past it are unspecified).
 * The output is deterministic: the same stacks and options give the same bytes.
 */
int flamesvg_write(const struct stacks *st, const struct flamesvg_opts *o, struct strbuf *out)
	__attribute__((warn_unused_result));

#endif /* PYSAMP_FLAMESVG_H */
