/* SPDX-License-Identifier: BSD-2-Clause */
/* folded.c - folded-stack writer. */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>

#include "folded.h"

#define TRUNCATED_LABEL "[truncated]"
#define COUNT_ROOM	21 /* " " + up to 20 digits of a count */

struct line_ctx {
	const struct stacks *st;
	struct strbuf *sb;
	FILE *out;	 /* NULL: lines stay in sb */
	size_t max_line; /* 0: unlimited */
};

/* Bytes that would break a folded line or the frame separator. */
static bool needs_sanitise(unsigned char c)
{
	return c < 0x20 || c == 0x7f || c == ';';
}

/* Append label[0..len) to sb, copying clean runs whole and replacing unsafe bytes. */
static int add_label(struct strbuf *sb, const char *label, size_t len)
{
	size_t start = 0, i;
	char repl;
	int err;

	for (i = 0; i < len; i++) {
		if (!needs_sanitise((unsigned char)label[i]))
			continue;
		err = strbuf_add(sb, label + start, i - start);
		if (err)
			return err;
		repl = label[i] == ';' ? ':' : ' ';
		err = strbuf_add(sb, &repl, 1);
		if (err)
			return err;
		start = i + 1;
	}
	return strbuf_add(sb, label + start, len - start);
}

/*
 * First label to print so the line fits in max_line bytes (0 when it fits whole); labels
 * before it are replaced by one "[truncated]". Sanitising keeps lengths, so raw lengths count.
 */
static size_t first_fitting(const struct line_ctx *ctx, const uint32_t *ids, size_t n)
{
	size_t room, total = 0, used = 0, len;

	if (ctx->max_line < 64)
		return 0;
	room = ctx->max_line - COUNT_ROOM - 1;
	for (size_t i = 0; i < n; i++) {
		if (!stacks__label_bytes(ctx->st, ids[i], &len))
			return 0;
		total += len + (i > 0);
	}
	if (total <= room)
		return 0;
	/* From the leaf: the smallest first label whose suffix fits after "[truncated];". */
	for (size_t i = n; i-- > 1;) {
		stacks__label_bytes(ctx->st, ids[i], &len);
		used += len + 1;
		if (used + sizeof(TRUNCATED_LABEL) - 1 > room)
			return i + 1 < n ? i + 1 : n - 1;
	}
	return 1;
}

static int add_line(struct line_ctx *ctx, const uint32_t *ids, size_t n, uint64_t count)
{
	size_t i, len, first = first_fitting(ctx, ids, n), room = 0;
	const char *label;
	int err;

	if (ctx->max_line >= 64)
		room = ctx->sb->len + ctx->max_line - COUNT_ROOM - 1;
	if (first) {
		err = strbuf_add(ctx->sb, TRUNCATED_LABEL, sizeof(TRUNCATED_LABEL) - 1);
		if (err)
			return err;
	}
	for (i = first; i < n; i++) {
		if (i || first) {
			err = strbuf_add(ctx->sb, ";", 1);
			if (err)
				return err;
		}
		label = stacks__label_bytes(ctx->st, ids[i], &len);
		if (!label)
			return -EINVAL;
		if (room && ctx->sb->len + len > room) /* one giant leaf label */
			len = room > ctx->sb->len ? room - ctx->sb->len : 0;
		err = add_label(ctx->sb, label, len);
		if (err)
			return err;
	}
	return strbuf_addf(ctx->sb, " %" PRIu64 "\n", count);
}

static int visit_line(const uint32_t *ids, size_t n, uint64_t count, void *arg)
{
	struct line_ctx *ctx = arg;
	int err;

	if (ctx->out)
		strbuf_reset(ctx->sb);
	err = add_line(ctx, ids, n, count);
	if (err || !ctx->out)
		return err;
	errno = 0;
	if (fwrite(ctx->sb->buf, 1, ctx->sb->len, ctx->out) != ctx->sb->len)
		return errno ? -errno : -EIO;
	return 0;
}

int folded_write(const struct stacks *st, FILE *out)
{
	struct strbuf line;
	struct line_ctx ctx = { .st = st, .sb = &line, .out = out };
	int err;

	strbuf_init(&line, 0);
	if (ferror(out)) {
		err = -EIO;
		goto cleanup;
	}
	err = stacks__foreach_sorted(st, visit_line, &ctx);
	if (err)
		goto cleanup;
	/* Buffered data meets the device only here: this is where a full disk shows up. */
	errno = 0;
	if (fflush(out) != 0 || ferror(out))
		err = errno ? -errno : -EIO;
cleanup:
	strbuf_release(&line);
	return err;
}

int folded_write_buf(const struct stacks *st, struct strbuf *sb)
{
	return folded_write_buf_capped(st, sb, 0);
}

int folded_write_buf_capped(const struct stacks *st, struct strbuf *sb, size_t max_line)
{
	struct line_ctx ctx = { .st = st, .sb = sb, .out = NULL, .max_line = max_line };
	size_t orig = sb->len;
	int err;

	err = stacks__foreach_sorted(st, visit_line, &ctx);
	if (err)
		strbuf_setlen(sb, orig);
	return err;
}
