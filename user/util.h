/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * util.h - a capped growable byte buffer (git strbuf style) and strict number parsing.
 *
 * Nothing here keeps global state. A struct strbuf is not thread-safe: one thread uses a given
 * buffer at a time. The parse_* functions are reentrant and thread-safe.
 */
#ifndef PYSAMP_UTIL_H
#define PYSAMP_UTIL_H

#include <stddef.h>
#include <stdint.h>

/*
 * A growable buffer of bytes, always NUL-terminated once buf is non-NULL.
 *
 * buf:  the bytes; NULL until the first allocation. buf[len] is '\0' when buf is non-NULL, so
 *       text can be read as a C string (binary data may hold further NULs before len).
 * len:  bytes in use, not counting the terminating NUL.
 * cap:  bytes allocated for buf, the terminating NUL included.
 * max:  hard cap on len (the terminating NUL is not counted); 0 means unlimited. An addition
 *       that would make len exceed max fails with -E2BIG and changes nothing (curl dynbuf's
 *       "toobig").
 *
 * Fields may be read directly; change them only through the functions below.
 */
struct strbuf {
	char *buf;
	size_t len;
	size_t cap;
	size_t max;
};

/*
 * Initialise sb as empty, with a hard cap of max bytes (0 = unlimited). Allocates nothing and
 * cannot fail. Any previous contents of *sb are overwritten, not freed.
 */
void strbuf_init(struct strbuf *sb, size_t max);

/*
 * Free the buffer and re-initialise sb as empty, keeping its max. Accepts a NULL sb and a buffer
 * that never allocated.
 */
void strbuf_release(struct strbuf *sb);

/*
 * Append len bytes from data (any bytes, NULs included; data may be NULL when len is 0).
 * Returns 0, -E2BIG when the result would exceed sb->max (or cannot be sized), or -ENOMEM.
 * On failure sb is unchanged.
 */
int strbuf_add(struct strbuf *sb, const void *data, size_t len) __attribute__((warn_unused_result));

/*
 * Append printf-formatted text. Returns 0, -E2BIG past the cap, -ENOMEM, or -EOVERFLOW/-EINVAL
 * when vsnprintf itself fails. On failure sb is unchanged.
 */
/* strbuf_add of a string literal (its length known at compile time). */
#define strbuf_addlit(sb, lit) strbuf_add((sb), "" lit, sizeof(lit) - 1)

int strbuf_addf(struct strbuf *sb, const char *fmt, ...)
	__attribute__((format(printf, 2, 3), warn_unused_result));

/* Truncate to len bytes (len <= sb->len, else nothing happens). Keeps the allocation. */
void strbuf_setlen(struct strbuf *sb, size_t len);

/* Empty the buffer, keeping the allocation and the cap. */
void strbuf_reset(struct strbuf *sb);

/*
 * Take ownership of the contents: returns a NUL-terminated heap string the caller frees with
 * free(), and stores its length (without the NUL) in *len when len is non-NULL. An empty buffer
 * gives a freshly allocated "". sb is left empty and initialised with the same max.
 * Returns NULL with errno = ENOMEM when "" cannot be allocated; sb is then unchanged.
 */
char *strbuf_detach(struct strbuf *sb, size_t *len) __attribute__((warn_unused_result));

/*
 * Parse s as an unsigned decimal integer in [min, max] and store it in *out.
 *
 * The whole string must be ASCII digits: no sign, no spaces, no "0x" prefix, not empty.
 * Leading zeros are accepted ("007" is 7). Returns 0; -EINVAL for NULL, empty or malformed
 * input; -ERANGE when the value does not fit the type or lies outside [min, max].
 * *out is written only on success.
 */
int parse_u32(const char *s, uint32_t min, uint32_t max, uint32_t *out)
	__attribute__((warn_unused_result));
int parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
	__attribute__((warn_unused_result));

/*
 * Parse a duration into milliseconds: a decimal number with an optional fraction and an optional
 * unit out of "ms", "s", "m", "h" (case-sensitive, nothing else allowed, no spaces). A bare number
 * means seconds: "10" and "10s" are 10000, "1.5" is 1500, "500ms" is 500, "2m" is 120000,
 * "1h" is 3600000. Both sides of a '.' need a digit ("1." and ".5" are rejected). Zero is
 * accepted; callers check their own bounds.
 *
 * Returns 0; -EINVAL for NULL, empty or malformed input, an unknown unit, or a fraction that is
 * not a whole number of milliseconds ("1.5ms", "0.0001"); -ERANGE when the result overflows
 * uint64_t. *ms is written only on success.
 */
int parse_duration_ms(const char *s, uint64_t *ms) __attribute__((warn_unused_result));

/*
 * Parse a comma-separated list of process ids ("123,456") and append them to the heap array
 * *pids of *n entries (*pids may be NULL when *n is 0), so that repeated options such as
 * "-p 1 -p 2,3" accumulate.
 *
 * Each item is a decimal in [1, INT_MAX] as parse_u32 reads it; empty items ("", "1,", "1,,2")
 * and 0 are rejected. Duplicates, within s and against the existing entries, are dropped and
 * the first occurrence keeps its place.
 *
 * Returns 0, replacing *pids by a new heap array (the old one is freed) and updating *n;
 * -EINVAL / -ERANGE for bad input; -ENOMEM. On failure *pids and *n are unchanged.
 * The caller owns *pids and frees it with free().
 */
int parse_pid_list(const char *s, int **pids, size_t *n) __attribute__((warn_unused_result));

/*
 * Format a one-line error message into err (errlen bytes, always NUL-terminated, truncated to
 * fit). Does nothing when err is NULL or errlen is 0, so callers may pass (NULL, 0).
 */
void set_errf(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/*
 * Read a secret token: the first line of the file at path, blanks around it trimmed. The line
 * must be at most max bytes (max 1..1 MiB) and hold no control character or space (it goes into
 * an HTTP header). *out is malloc'ed (free it); the read buffer is wiped.
 * Returns 0; -errno from open/read; -E2BIG for a longer first line; -EINVAL for an empty or
 * invalid token or a bad max; -ENOMEM.
 */
int token_read_file(const char *path, size_t max, char **out) __attribute__((warn_unused_result));

/*
 * Append len bytes of s as a JSON string, quotes included: '"' and '\\' escaped, control
 * characters and DEL as \u00XX, invalid UTF-8 (bad sequences, overlongs, surrogates, past
 * U+10FFFF) replaced by U+FFFD, one per bad byte. 0 or strbuf_add's error.
 */
int strbuf_add_json(struct strbuf *sb, const char *s, size_t len) __attribute__((warn_unused_result));

#endif /* PYSAMP_UTIL_H */
