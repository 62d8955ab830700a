/* SPDX-License-Identifier: BSD-2-Clause */
/* outfmt.c - output formats by name. */
#include <errno.h>
#include <string.h>

#include "analyze.h"
#include "flamesvg.h"
#include "folded.h"
#include "outfmt.h"
#include "pprof.h"
#include "speedscope.h"

static const struct {
	const char *name;
	const char *content_type;
} formats[] = {
	[OUTFMT_FOLDED] = { "folded", "text/plain; charset=utf-8" },
	[OUTFMT_SVG] = { "svg", "image/svg+xml" },
	[OUTFMT_SPEEDSCOPE] = { "speedscope", "application/json" },
	[OUTFMT_CHROME] = { "chrome", "application/json" },
	[OUTFMT_PPROF] = { "pprof", "application/octet-stream" },
	[OUTFMT_JSON] = { "json", "application/json" },
};

int outfmt_parse(const char *name, enum outfmt *f)
{
	for (size_t i = 0; name && i < sizeof(formats) / sizeof(formats[0]); i++) {
		if (!strcmp(name, formats[i].name)) {
			*f = (enum outfmt)i;
			return 0;
		}
	}
	return -EINVAL;
}

const char *outfmt_names(void)
{
	return "folded, svg, speedscope, chrome, pprof, json";
}

const char *outfmt_content_type(enum outfmt f)
{
	return (size_t)f < sizeof(formats) / sizeof(formats[0]) ? formats[f].content_type
								 : "application/octet-stream";
}

int outfmt_write(enum outfmt f, const struct stacks *st, const struct outfmt_ctx *c,
		 struct strbuf *out)
{
	static const struct outfmt_ctx none;

	if (!c)
		c = &none;
	switch (f) {
	case OUTFMT_FOLDED:
		return folded_write_buf(st, out);
	case OUTFMT_SVG: {
		struct flamesvg_opts o = { .title = c->title, .subtitle = c->subtitle,
					   .reverse = c->reverse, .width = c->width,
					   .base = c->base };

		return flamesvg_write(st, &o, out);
	}
	case OUTFMT_SPEEDSCOPE:
		return speedscope_write(st, c->title, out);
	case OUTFMT_CHROME: {
		struct trace_opts o = { .hz = c->hz, .realtime_offset_ns = c->realtime_offset_ns };

		return c->trace ? trace_write_chrome(c->trace, &o, out) : -EINVAL;
	}
	case OUTFMT_PPROF: {
		struct pprof_opts o = { .hz = c->hz, .time_ns = c->time_ns,
					.duration_ns = c->duration_ns };

		return pprof_write(st, &o, out);
	}
	case OUTFMT_JSON:
		return analyze_tree_write(st, out);
	}
	return -EINVAL;
}
