/* SPDX-License-Identifier: BSD-2-Clause */
/* procmaps.c - /proc/PID/maps parser. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "procmaps.h"

#define PROCMAPS_MAX_BYTES (64u << 20) /* a maps file larger than this is refused */
#define PROCMAPS_MAX_PATH  4096

void procmaps_init(struct procmaps *m)
{
	m->v = NULL;
	m->n = 0;
	m->cap = 0;
}

void procmaps_release(struct procmaps *m)
{
	if (!m)
		return;
	for (size_t i = 0; i < m->n; i++)
		free(m->v[i].path);
	free(m->v);
	procmaps_init(m);
}

/* Hex number at *p (up to end); advances *p. */
static int take_hex(const char **p, const char *end, uint64_t *out)
{
	uint64_t v = 0;
	const char *s = *p;
	int digits = 0;

	while (s < end && digits < 17) {
		char c = *s;
		int d;

		if (c >= '0' && c <= '9')
			d = c - '0';
		else if (c >= 'a' && c <= 'f')
			d = c - 'a' + 10;
		else if (c >= 'A' && c <= 'F')
			d = c - 'A' + 10;
		else
			break;
		if (digits == 16)
			return -EINVAL; /* more than 64 bits */
		v = (v << 4) | (uint64_t)d;
		s++;
		digits++;
	}
	if (!digits)
		return -EINVAL;
	*p = s;
	*out = v;
	return 0;
}

static int take_dec(const char **p, const char *end, uint64_t *out)
{
	uint64_t v = 0;
	const char *s = *p;

	if (s >= end || *s < '0' || *s > '9')
		return -EINVAL;
	while (s < end && *s >= '0' && *s <= '9') {
		uint64_t d = (uint64_t)(*s - '0');

		if (v > (UINT64_MAX - d) / 10)
			return -EINVAL;
		v = v * 10 + d;
		s++;
	}
	*p = s;
	*out = v;
	return 0;
}

static int take_char(const char **p, const char *end, char c)
{
	if (*p >= end || **p != c)
		return -EINVAL;
	(*p)++;
	return 0;
}

static void skip_spaces(const char **p, const char *end)
{
	while (*p < end && **p == ' ')
		(*p)++;
}

static int parse_line(struct procmap *e, const char *s, const char *end)
{
	uint64_t major, minor;
	size_t plen;

	memset(e, 0, sizeof(*e));
	if (take_hex(&s, end, &e->start) || take_char(&s, end, '-') || take_hex(&s, end, &e->end) ||
	    take_char(&s, end, ' '))
		return -EINVAL;
	if (end - s < 5 || s[4] != ' ')
		return -EINVAL;
	memcpy(e->perms, s, 4);
	e->perms[4] = '\0';
	s += 5;
	if (take_hex(&s, end, &e->offset) || take_char(&s, end, ' ') || take_hex(&s, end, &major) ||
	    take_char(&s, end, ':') || take_hex(&s, end, &minor) || take_char(&s, end, ' ') ||
	    take_dec(&s, end, &e->inode))
		return -EINVAL;
	if (e->end < e->start || major > UINT32_MAX || minor > UINT32_MAX)
		return -EINVAL;
	e->dev_major = (uint32_t)major;
	e->dev_minor = (uint32_t)minor;
	skip_spaces(&s, end);
	plen = (size_t)(end - s);
	if (plen > PROCMAPS_MAX_PATH)
		return -EINVAL;
	e->path = strndup(s, plen);
	if (!e->path)
		return -ENOMEM;
	if (strlen(e->path) != plen) { /* embedded NUL */
		free(e->path);
		e->path = NULL;
		return -EINVAL;
	}
	return 0;
}

int procmaps_parse(struct procmaps *m, const char *text, size_t len)
{
	const char *p = text, *end = text + len;

	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *line_end = nl ? nl : end;
		int err;

		if (line_end == p) { /* empty line */
			p = line_end + 1;
			continue;
		}
		if (m->n == m->cap) {
			size_t cap = m->cap ? m->cap * 2 : 64;
			struct procmap *v = realloc(m->v, cap * sizeof(*v));

			if (!v)
				return -ENOMEM;
			m->v = v;
			m->cap = cap;
		}
		err = parse_line(&m->v[m->n], p, line_end);
		if (err)
			return err;
		m->n++;
		p = nl ? nl + 1 : end;
	}
	return 0;
}

int procmaps_read(struct procmaps *m, pid_t pid)
{
	char path[64], *buf = NULL;
	size_t len = 0, cap = 0;
	int fd, err = 0;

	snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? -ESRCH : -errno;
	for (;;) {
		ssize_t n;

		if (cap - len < 4096) {
			size_t ncap = cap ? cap * 2 : 16384;
			char *nb;

			if (ncap > PROCMAPS_MAX_BYTES) {
				err = -EFBIG;
				goto out;
			}
			nb = realloc(buf, ncap);
			if (!nb) {
				err = -ENOMEM;
				goto out;
			}
			buf = nb;
			cap = ncap;
		}
		n = read(fd, buf + len, cap - len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			err = errno == ENOENT ? -ESRCH : -errno;
			goto out;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	err = procmaps_parse(m, buf ? buf : "", len);
out:
	free(buf);
	close(fd);
	return err;
}
