/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * push.c - Pyroscope ingest client: ordered queue, disk spool, retries, on the curl multi API.
 *
 * The queue is three parts, in send order: the item in flight (if any), then the disk queue
 * (items that only exist as spool files), then the memory queue. Memory overflow moves the head
 * of the memory queue to the tail of the disk queue, so the order "disk before memory" always
 * holds, and every item keeps the sequence number it got at enqueue, which names its spool
 * file: lexical file order is enqueue order, across restarts too.
 *
 * An item in flight is out of both queues; a failed attempt puts it back at the front of the
 * queue it came from (a memory item goes to the disk front instead when newer items were
 * spooled meanwhile).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "log.h"
#include "push.h"
#include "util.h"

#define DEFAULT_MEM_BYTES  ((size_t)64 << 20)
#define DEFAULT_DISK_BYTES ((size_t)1 << 30)
#define DEFAULT_TIMEOUT_MS 10000
#define CONNECT_TIMEOUT_MS 5000
#define DEFAULT_BACKOFF_MS 1000
#define BACKOFF_CAP_FACTOR 60	 /* the backoff stops doubling at 60 x the first delay */
#define RESPONSE_MAX	   4096	 /* response bytes kept for error messages */
#define MESSAGE_MAX	   200	 /* of which this many are logged */
#define LOG_INTERVAL_MS	   10000 /* rate limit of repeated warnings */
#define TOKEN_MAX	   4096	 /* first line of the token file */
#define RETRY_LATER_MS	   100	 /* after an internal failure (ENOMEM) */

/*
 * Spool file: a 64-byte little-endian header, then the name, then the body.
 *   0 magic "PYSPUSH\0"   8 u32 version       12 u32 header size
 *  16 u64 seq            24 u64 from_s       32 u64 until_s
 *  40 u32 sample_rate    44 u32 name length  48 u64 body length
 *  56 u64 FNV-1a 64 of header bytes 0..55, name and body
 */
#define SPOOL_MAGIC	 "PYSPUSH"
#define SPOOL_VERSION	 1
#define SPOOL_HDR	 64
#define SPOOL_DIGITS	 20
#define SPOOL_SUFFIX	 ".push"
#define SPOOL_TMP_PREFIX ".tmp-"
#define SPOOL_LOCK	 ".lock"
#define SPOOL_BODY_MAX	 ((uint64_t)256 << 20) /* Pyroscope's own body limit */

struct entry {
	struct entry *next;
	uint64_t seq;
	uint64_t from_s, until_s;
	uint32_t rate;
	uint32_t attempts; /* failed attempts so far */
	size_t name_len;
	size_t body_len;
	char *data;	    /* name '\0' body '\0'; NULL while the item is only a spool file */
	uint64_t file_size; /* > 0: the item has a spool file (accounted on disk, not in memory) */
};

struct queue {
	struct entry *head, *tail;
};

struct ratelimit {
	int64_t last_ms;
	uint64_t suppressed;
};

struct push {
	char *url_prefix;  /* ".../ingest?" or ".../ingest?user-query&" */
	char *display_url; /* scheme://host[:port]/path, no credentials, for messages */
	char *token_file;
	char *token;
	char *user_agent;
	char *spool_dir;
	int dir_fd;
	int lock_fd;
	size_t mem_cap, disk_cap;
	uint32_t timeout_ms;
	uint32_t backoff_min_ms, backoff_max_ms, backoff_ms;

	bool curl_global;
	CURLM *multi;
	CURL *easy;
	struct curl_slist *headers; /* of the request in flight */
	struct strbuf resp;	    /* response body, capped at RESPONSE_MAX */
	char errbuf[CURL_ERROR_SIZE];

	struct queue mem, disk;
	struct entry *inflight;
	uint64_t mem_items, mem_bytes;	 /* memory-only items, in flight included */
	uint64_t disk_items, disk_bytes; /* items with a spool file, in flight included */
	uint64_t next_seq;
	int64_t next_due_ms;
	uint64_t rng;

	bool outage;
	struct ratelimit rl_reject, rl_disk, rl_corrupt;
	struct push_stats st;
};

/* ---- small helpers ---- */


static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* xorshift64*: per-object jitter, no global rand() state. */
static uint64_t rng_next(struct push *p)
{
	p->rng ^= p->rng >> 12;
	p->rng ^= p->rng << 25;
	p->rng ^= p->rng >> 27;
	return p->rng * 0x2545f4914f6cdd1dULL;
}

/* True when a rate-limited message may be printed now; *suppressed gets the skipped count. */
static bool ratelimit_ok(struct ratelimit *rl, uint64_t *suppressed)
{
	int64_t now = now_ms();

	if (rl->last_ms && now - rl->last_ms < LOG_INTERVAL_MS) {
		rl->suppressed++;
		return false;
	}
	*suppressed = rl->suppressed;
	rl->suppressed = 0;
	rl->last_ms = now;
	return true;
}

/* " (N similar messages suppressed)", or "" for none; buf needs 64 bytes. */
static const char *suppressed_note(char *buf, size_t len, uint64_t n)
{
	if (!n)
		return "";
	snprintf(buf, len, " (%" PRIu64 " similar messages suppressed)", n);
	return buf;
}

static void put_le32(unsigned char *b, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		b[i] = (unsigned char)(v >> (8 * i));
}

static void put_le64(unsigned char *b, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		b[i] = (unsigned char)(v >> (8 * i));
}

static uint32_t get_le32(const unsigned char *b)
{
	uint32_t v = 0;

	for (int i = 3; i >= 0; i--)
		v = v << 8 | b[i];
	return v;
}

static uint64_t get_le64(const unsigned char *b)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = v << 8 | b[i];
	return v;
}

#define FNV_OFFSET 0xcbf29ce484222325ULL
#define FNV_PRIME  0x100000001b3ULL

static uint64_t fnv1a(uint64_t h, const void *data, size_t len)
{
	const unsigned char *s = data;

	for (size_t i = 0; i < len; i++)
		h = (h ^ s[i]) * FNV_PRIME;
	return h;
}

static int write_all(int fd, const void *data, size_t len)
{
	const char *s = data;

	while (len) {
		ssize_t n = write(fd, s, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		s += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Read exactly len bytes; -EBADMSG when the file ends first. */
static int read_all(int fd, void *data, size_t len)
{
	char *s = data;

	while (len) {
		ssize_t n = read(fd, s, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return -EBADMSG;
		s += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Copy up to max bytes of s into out (outlen > max), control bytes as '?', trailing space cut. */
static void printable(char *out, size_t outlen, const char *s, size_t len, size_t max)
{
	size_t n = len < max ? len : max, i;

	if (n >= outlen)
		n = outlen - 1;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		out[i] = (c < 0x20 || c == 0x7f) ? (c == '\n' || c == '\t' ? ' ' : '?') : (char)c;
	}
	while (i > 0 && out[i - 1] == ' ')
		i--;
	out[i] = '\0';
}

/* ---- queue and accounting ---- */

static void q_push_back(struct queue *q, struct entry *e)
{
	e->next = NULL;
	if (q->tail)
		q->tail->next = e;
	else
		q->head = e;
	q->tail = e;
}

static void q_push_front(struct queue *q, struct entry *e)
{
	e->next = q->head;
	q->head = e;
	if (!q->tail)
		q->tail = e;
}

static struct entry *q_pop(struct queue *q)
{
	struct entry *e = q->head;

	if (!e)
		return NULL;
	q->head = e->next;
	if (!q->head)
		q->tail = NULL;
	e->next = NULL;
	return e;
}

static void entry_free(struct entry *e)
{
	if (!e)
		return;
	free(e->data);
	free(e);
}

static uint64_t entry_mem_size(const struct entry *e)
{
	return (uint64_t)e->name_len + e->body_len;
}

static void spool_file_name(char *buf, size_t len, uint64_t seq)
{
	snprintf(buf, len, "%0*" PRIu64 SPOOL_SUFFIX, SPOOL_DIGITS, seq);
}

/* Take e out of the accounting and free it, deleting its spool file. e is in no queue. */
static void entry_forget(struct push *p, struct entry *e)
{
	char name[64];

	if (e->file_size) {
		spool_file_name(name, sizeof(name), e->seq);
		if (unlinkat(p->dir_fd, name, 0) && errno != ENOENT)
			log_warn("push: cannot delete spool file \"%s/%s\": %s", p->spool_dir, name,
				 strerror(errno));
		p->disk_items--;
		p->disk_bytes -= e->file_size;
	} else {
		p->mem_items--;
		p->mem_bytes -= entry_mem_size(e);
	}
	entry_free(e);
}

static void stats_update(struct push *p)
{
	p->st.queued_items = p->mem_items + p->disk_items;
	p->st.queued_bytes = p->mem_bytes + p->disk_bytes;
}

/* ---- spool files ---- */

struct spool_hdr {
	uint64_t seq, from_s, until_s, body_len, sum;
	uint32_t rate, name_len;
};

static void spool_encode(unsigned char *b, const struct entry *e)
{
	memset(b, 0, SPOOL_HDR);
	memcpy(b, SPOOL_MAGIC, sizeof(SPOOL_MAGIC));
	put_le32(b + 8, SPOOL_VERSION);
	put_le32(b + 12, SPOOL_HDR);
	put_le64(b + 16, e->seq);
	put_le64(b + 24, e->from_s);
	put_le64(b + 32, e->until_s);
	put_le32(b + 40, e->rate);
	put_le32(b + 44, (uint32_t)e->name_len);
	put_le64(b + 48, e->body_len);
}

/*
 * Check a header read from the file named for seq, whose size is fsize. Returns 0 with *h, or
 * -EBADMSG with a reason in *why.
 */
static int spool_decode(const unsigned char *b, uint64_t seq, uint64_t fsize, struct spool_hdr *h,
			const char **why)
{
	if (memcmp(b, SPOOL_MAGIC, sizeof(SPOOL_MAGIC)) != 0) {
		*why = "bad magic";
		return -EBADMSG;
	}
	if (get_le32(b + 8) != SPOOL_VERSION || get_le32(b + 12) != SPOOL_HDR) {
		*why = "unknown version";
		return -EBADMSG;
	}
	h->seq = get_le64(b + 16);
	h->from_s = get_le64(b + 24);
	h->until_s = get_le64(b + 32);
	h->rate = get_le32(b + 40);
	h->name_len = get_le32(b + 44);
	h->body_len = get_le64(b + 48);
	h->sum = get_le64(b + 56);
	if (h->seq != seq) {
		*why = "sequence does not match the file name";
		return -EBADMSG;
	}
	if (h->name_len == 0 || h->name_len > PUSH_NAME_MAX || h->body_len > SPOOL_BODY_MAX) {
		*why = "bad lengths";
		return -EBADMSG;
	}
	if (fsize != SPOOL_HDR + (uint64_t)h->name_len + h->body_len) {
		*why = "size does not match the header (truncated?)";
		return -EBADMSG;
	}
	return 0;
}

/* Is name "<20 digits>.push"? Then store the number in *seq. */
static bool spool_name_parse(const char *name, uint64_t *seq)
{
	char digits[SPOOL_DIGITS + 1];

	if (strlen(name) != SPOOL_DIGITS + strlen(SPOOL_SUFFIX) ||
	    strcmp(name + SPOOL_DIGITS, SPOOL_SUFFIX) != 0)
		return false;
	memcpy(digits, name, SPOOL_DIGITS);
	digits[SPOOL_DIGITS] = '\0';
	/* UINT64_MAX - 1 keeps next_seq from wrapping. */
	return parse_u64(digits, 0, UINT64_MAX - 1, seq) == 0;
}

/*
 * Open the spool file of seq and check its header against its size. Returns the open fd with *h
 * and *fsize; -EBADMSG (reason in *why) for a bad file; else -errno of open/read.
 */
static int spool_open(struct push *p, uint64_t seq, struct spool_hdr *h, uint64_t *fsize,
		      const char **why)
{
	unsigned char b[SPOOL_HDR];
	char name[64];
	struct stat sb;
	int fd, err;

	*why = NULL;
	spool_file_name(name, sizeof(name), seq);
	fd = openat(p->dir_fd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	if (fd < 0) {
		if (errno != ELOOP)
			return -errno;
		*why = "a symbolic link";
		return -EBADMSG;
	}
	if (fstat(fd, &sb)) {
		err = -errno;
		goto fail;
	}
	if (!S_ISREG(sb.st_mode)) {
		*why = "not a regular file";
		err = -EBADMSG;
		goto fail;
	}
	err = read_all(fd, b, sizeof(b));
	if (err == -EBADMSG)
		*why = "shorter than its header";
	if (!err)
		err = spool_decode(b, seq, (uint64_t)sb.st_size, h, why);
	if (err)
		goto fail;
	*fsize = (uint64_t)sb.st_size;
	return fd;
fail:
	close(fd);
	return err;
}

/*
 * Read the name and body of disk entry e into e->data, validating the whole file again.
 * Returns 0; -EBADMSG (reason in *why); -ENOMEM; -errno of the I/O.
 */
static int spool_load(struct push *p, struct entry *e, const char **why)
{
	unsigned char b[SPOOL_HDR];
	struct spool_hdr h = { 0 };
	uint64_t fsize = 0, sum;
	char *data = NULL;
	int fd, err;

	fd = spool_open(p, e->seq, &h, &fsize, why);
	if (fd < 0)
		return fd;
	spool_encode(b, &(struct entry){ .seq = h.seq,
					 .from_s = h.from_s,
					 .until_s = h.until_s,
					 .rate = h.rate,
					 .name_len = h.name_len,
					 .body_len = (size_t)h.body_len });
	data = malloc((size_t)h.name_len + 1 + (size_t)h.body_len + 1);
	if (!data) {
		err = -ENOMEM;
		goto out;
	}
	err = read_all(fd, data, h.name_len);
	if (!err)
		err = read_all(fd, data + h.name_len + 1, (size_t)h.body_len);
	if (err) {
		if (err == -EBADMSG)
			*why = "truncated";
		goto out;
	}
	data[h.name_len] = '\0';
	data[h.name_len + 1 + h.body_len] = '\0';
	sum = fnv1a(FNV_OFFSET, b, 56);
	sum = fnv1a(sum, data, h.name_len);
	sum = fnv1a(sum, data + h.name_len + 1, (size_t)h.body_len);
	if (sum != h.sum) {
		*why = "checksum mismatch";
		err = -EBADMSG;
		goto out;
	}
	if (memchr(data, '\0', h.name_len)) {
		*why = "NUL in the name";
		err = -EBADMSG;
		goto out;
	}
	free(e->data);
	e->data = data;
	data = NULL;
	e->from_s = h.from_s;
	e->until_s = h.until_s;
	e->rate = h.rate;
	e->name_len = h.name_len;
	e->body_len = (size_t)h.body_len;
	if (fsize != e->file_size) {
		/* Replaced behind our back, but valid: keep the accounting right. */
		p->disk_bytes = p->disk_bytes - e->file_size + fsize;
		e->file_size = fsize;
	}
out:
	free(data);
	close(fd);
	return err;
}

/* Write memory entry e to its spool file (temporary name, then rename). Returns 0 or -errno. */
static int spool_write(struct push *p, const struct entry *e)
{
	unsigned char b[SPOOL_HDR];
	char name[64], tmp[80];
	uint64_t sum;
	int fd, err;

	spool_file_name(name, sizeof(name), e->seq);
	snprintf(tmp, sizeof(tmp), SPOOL_TMP_PREFIX "%s", name);
	spool_encode(b, e);
	sum = fnv1a(FNV_OFFSET, b, 56);
	sum = fnv1a(sum, e->data, e->name_len);
	sum = fnv1a(sum, e->data + e->name_len + 1, e->body_len);
	put_le64(b + 56, sum);

	fd = openat(p->dir_fd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return -errno;
	err = write_all(fd, b, sizeof(b));
	if (!err)
		err = write_all(fd, e->data, e->name_len);
	if (!err)
		err = write_all(fd, e->data + e->name_len + 1, e->body_len);
	/* close() reports delayed write errors on some file systems (NFS). */
	if (close(fd) && !err)
		err = -errno;
	if (!err && renameat(p->dir_fd, tmp, p->dir_fd, name))
		err = -errno;
	if (err)
		(void)unlinkat(p->dir_fd, tmp, 0);
	return err;
}

/* Delete the oldest spool files until bytes more fit under the disk cap. */
static void spool_make_room(struct push *p, uint64_t bytes)
{
	struct entry *old;

	while (p->disk_bytes + bytes > p->disk_cap && (old = q_pop(&p->disk))) {
		p->st.dropped_overflow++;
		entry_forget(p, old);
	}
}

/*
 * Move memory entry e (in no queue, already out of the memory accounting) to the spool: at the
 * disk queue's tail, or at its front when e is older than everything there (a failed request).
 * When it cannot be written it is dropped and counted. Never fails.
 */
static void spool_entry(struct push *p, struct entry *e, bool front)
{
	uint64_t fsize = SPOOL_HDR + entry_mem_size(e), suppressed = 0;
	char name[64], note[64];
	int err;

	if (fsize > p->disk_cap || (front && p->disk_bytes + fsize > p->disk_cap)) {
		/* Too big for the spool, or itself the oldest item when room is needed. */
		p->st.dropped_overflow++;
		entry_free(e);
		return;
	}
	spool_make_room(p, fsize);
	err = spool_write(p, e);
	if (err) {
		p->st.dropped_disk_error++;
		if (ratelimit_ok(&p->rl_disk, &suppressed)) {
			spool_file_name(name, sizeof(name), e->seq);
			log_warn("push: cannot write spool file \"%s/%s\": %s; profile dropped%s",
				 p->spool_dir, name, strerror(-err),
				 suppressed_note(note, sizeof(note), suppressed));
		}
		entry_free(e);
		return;
	}
	free(e->data);
	e->data = NULL;
	e->file_size = fsize;
	p->disk_items++;
	p->disk_bytes += fsize;
	p->st.spooled_to_disk++;
	if (front)
		q_push_front(&p->disk, e);
	else
		q_push_back(&p->disk, e);
}

static void log_corrupt(struct push *p, uint64_t seq, const char *why, int err)
{
	uint64_t suppressed = 0;
	char name[64], note[64];

	if (!ratelimit_ok(&p->rl_corrupt, &suppressed))
		return;
	spool_file_name(name, sizeof(name), seq);
	log_warn("push: deleted bad spool file \"%s/%s\": %s%s", p->spool_dir, name,
		 why ? why : strerror(-err), suppressed_note(note, sizeof(note), suppressed));
}

static int seq_cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Queue the spool files found at start, oldest first; delete invalid ones and stale temps. */
static int spool_scan(struct push *p)
{
	uint64_t *seqs = NULL, seq, fsize = 0, corrupt = 0;
	size_t n = 0, cap = 0;
	struct dirent *de;
	struct spool_hdr h = { 0 };
	const char *why;
	DIR *d = NULL;
	int fd, err = 0;

	fd = openat(p->dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	d = fdopendir(fd);
	if (!d) {
		err = -errno;
		close(fd);
		return err;
	}
	while ((errno = 0, de = readdir(d))) {
		if (strncmp(de->d_name, SPOOL_TMP_PREFIX, strlen(SPOOL_TMP_PREFIX)) == 0 &&
		    spool_name_parse(de->d_name + strlen(SPOOL_TMP_PREFIX), &seq)) {
			/* A write interrupted by a crash: never renamed, never valid. */
			(void)unlinkat(p->dir_fd, de->d_name, 0);
			continue;
		}
		if (!spool_name_parse(de->d_name, &seq))
			continue;
		if (n == cap) {
			size_t ncap = cap ? cap * 2 : 64;
			uint64_t *ns = realloc(seqs, ncap * sizeof(*ns));

			if (!ns) {
				err = -ENOMEM;
				goto out;
			}
			seqs = ns;
			cap = ncap;
		}
		seqs[n++] = seq;
	}
	if (errno) {
		err = -errno;
		goto out;
	}
	if (n)
		qsort(seqs, n, sizeof(*seqs), seq_cmp);
	for (size_t i = 0; i < n; i++) {
		struct entry *e;

		if (seqs[i] >= p->next_seq)
			p->next_seq = seqs[i] + 1;
		fd = spool_open(p, seqs[i], &h, &fsize, &why);
		if (fd == -EBADMSG) {
			char name[64];

			spool_file_name(name, sizeof(name), seqs[i]);
			(void)unlinkat(p->dir_fd, name, 0);
			p->st.dropped_corrupt++;
			corrupt++;
			log_corrupt(p, seqs[i], why, fd);
			continue;
		}
		if (fd < 0) {
			/* EACCES and the like: not ours to delete, and not sendable. */
			log_warn("push: ignoring spool file %020" PRIu64 SPOOL_SUFFIX ": %s",
				 seqs[i], strerror(-fd));
			continue;
		}
		close(fd);
		e = calloc(1, sizeof(*e));
		if (!e) {
			err = -ENOMEM;
			goto out;
		}
		e->seq = h.seq;
		e->from_s = h.from_s;
		e->until_s = h.until_s;
		e->rate = h.rate;
		e->name_len = h.name_len;
		e->body_len = (size_t)h.body_len;
		e->file_size = fsize;
		q_push_back(&p->disk, e);
		p->disk_items++;
		p->disk_bytes += fsize;
		p->st.loaded_from_disk++;
	}
	/* The cap may have shrunk since the files were written. */
	spool_make_room(p, 0);
	if (corrupt > 1)
		log_warn("push: deleted %" PRIu64 " bad files from spool directory \"%s\"", corrupt,
			 p->spool_dir);
	if (p->disk_items)
		log_info("push: %" PRIu64 " profile(s) to send from spool directory \"%s\"",
			 p->disk_items, p->spool_dir);
out:
	free(seqs);
	closedir(d);
	return err;
}

/* mkdir -p, new directories 0700. Returns 0 or -errno. */
static int mkdir_p(const char *path)
{
	char *buf = strdup(path);
	int err = 0;

	if (!buf)
		return -ENOMEM;
	for (char *s = buf + 1;; s++) {
		char c = *s;

		if (c != '/' && c != '\0')
			continue;
		*s = '\0';
		if (mkdir(buf, 0700) && errno != EEXIST) {
			err = -errno;
			break;
		}
		*s = c;
		if (c == '\0')
			break;
	}
	free(buf);
	return err;
}

static int spool_open_dir(struct push *p, char *err, size_t errlen)
{
	int ret;

	ret = mkdir_p(p->spool_dir);
	if (ret) {
		set_errf(err, errlen, "cannot create spool directory \"%s\": %s", p->spool_dir,
			strerror(-ret));
		return ret;
	}
	p->dir_fd = open(p->spool_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (p->dir_fd < 0) {
		ret = -errno;
		set_errf(err, errlen, "cannot open spool directory \"%s\": %s", p->spool_dir,
			strerror(-ret));
		return ret;
	}
	p->lock_fd = openat(p->dir_fd, SPOOL_LOCK, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (p->lock_fd < 0) {
		ret = -errno;
		set_errf(err, errlen, "cannot create \"%s/" SPOOL_LOCK "\": %s", p->spool_dir,
			strerror(-ret));
		return ret;
	}
	if (flock(p->lock_fd, LOCK_EX | LOCK_NB)) {
		ret = errno == EWOULDBLOCK ? -EBUSY : -errno;
		set_errf(err, errlen, "spool directory \"%s\" is in use by another process%s%s",
			p->spool_dir, ret == -EBUSY ? "" : ": ",
			ret == -EBUSY ? "" : strerror(-ret));
		return ret;
	}
	ret = spool_scan(p);
	if (ret)
		set_errf(err, errlen, "cannot read spool directory \"%s\": %s", p->spool_dir,
			strerror(-ret));
	return ret;
}

/* ---- token ---- */

static void token_free(char *tok)
{
	if (!tok)
		return;
	explicit_bzero(tok, strlen(tok));
	free(tok);
}

static const char *token_strerror(int err)
{
	if (err == -EINVAL)
		return "empty, or not a single word on the first line";
	if (err == -E2BIG)
		return "first line too long";
	return strerror(-err);
}

/* ---- URL ---- */

static int url_prepare(struct push *p, const char *url, char *err, size_t errlen)
{
	char *scheme = NULL, *host = NULL, *port = NULL, *path = NULL, *query = NULL, *full = NULL;
	struct strbuf sb;
	CURLUcode uc;
	CURLU *u;
	size_t plen;
	int ret = 0;

	strbuf_init(&sb, 0);
	u = curl_url();
	if (!u)
		return -ENOMEM;
	/* Parse any scheme, so that "ftp://..." gets the precise error below. */
	uc = curl_url_set(u, CURLUPART_URL, url, CURLU_NON_SUPPORT_SCHEME);
	if (uc) {
		set_errf(err, errlen, "malformed URL: %s", curl_url_strerror(uc));
		ret = uc == CURLUE_OUT_OF_MEMORY ? -ENOMEM : -EINVAL;
		goto out;
	}
	if (curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) ||
	    (strcasecmp(scheme, "http") != 0 && strcasecmp(scheme, "https") != 0)) {
		set_errf(err, errlen, "unsupported URL scheme '%s' (http or https only)",
			scheme ? scheme : "");
		ret = -EPROTONOSUPPORT;
		goto out;
	}
	if (curl_url_get(u, CURLUPART_HOST, &host, 0) || !*host) {
		set_errf(err, errlen, "the URL has no host");
		ret = -EINVAL;
		goto out;
	}
	(void)curl_url_get(u, CURLUPART_PORT, &port, 0);
	if (curl_url_get(u, CURLUPART_PATH, &path, 0)) {
		ret = -ENOMEM;
		goto out;
	}
	plen = strlen(path);
	while (plen > 0 && path[plen - 1] == '/')
		plen--;
	ret = strbuf_add(&sb, path, plen);
	if (!ret && (plen < 7 || memcmp(path + plen - 7, "/ingest", 7) != 0))
		ret = strbuf_add(&sb, "/ingest", 7);
	if (ret)
		goto out;
	if (curl_url_set(u, CURLUPART_PATH, sb.buf, 0) ||
	    curl_url_set(u, CURLUPART_FRAGMENT, NULL, 0)) {
		ret = -ENOMEM;
		goto out;
	}
	(void)curl_url_get(u, CURLUPART_QUERY, &query, 0);
	if (curl_url_set(u, CURLUPART_QUERY, NULL, 0) || curl_url_get(u, CURLUPART_URL, &full, 0)) {
		ret = -ENOMEM;
		goto out;
	}
	if (asprintf(&p->url_prefix, "%s?%s%s", full, query && *query ? query : "",
		     query && *query ? "&" : "") < 0) {
		p->url_prefix = NULL;
		ret = -ENOMEM;
		goto out;
	}
	if (asprintf(&p->display_url, "%s://%s%s%s%s", scheme, host, port ? ":" : "",
		     port ? port : "", sb.buf) < 0) {
		p->display_url = NULL;
		ret = -ENOMEM;
		goto out;
	}
out:
	if (ret == -ENOMEM)
		set_errf(err, errlen, "out of memory");
	strbuf_release(&sb);
	curl_free(scheme);
	curl_free(host);
	curl_free(port);
	curl_free(path);
	curl_free(query);
	curl_free(full);
	curl_url_cleanup(u);
	return ret;
}

/* ---- lifecycle ---- */

static size_t on_response(char *data, size_t size, size_t nmemb, void *arg)
{
	struct push *p = arg;
	size_t n = size * nmemb, room = RESPONSE_MAX - p->resp.len;

	/* Keep the start for the log; the rest is read and discarded. Out of memory only costs
	 * the message, so the error is ignored. */
	if (room && strbuf_add(&p->resp, data, n < room ? n : room))
		return n;
	return n;
}

static int curl_setup(struct push *p, char *err, size_t errlen)
{
	CURLcode rc = CURLE_OK;

	if (curl_global_init(CURL_GLOBAL_DEFAULT)) {
		set_errf(err, errlen, "cannot initialise libcurl");
		return -ENOMEM;
	}
	p->curl_global = true;
	p->multi = curl_multi_init();
	p->easy = curl_easy_init();
	if (!p->multi || !p->easy) {
		set_errf(err, errlen, "out of memory");
		return -ENOMEM;
	}
#define SETOPT(opt, val)                                                                           \
	do {                                                                                       \
		if (rc == CURLE_OK)                                                                \
			rc = curl_easy_setopt(p->easy, opt, val);                                  \
	} while (0)
	SETOPT(CURLOPT_NOSIGNAL, 1L);
	SETOPT(CURLOPT_TIMEOUT_MS, (long)p->timeout_ms);
	SETOPT(CURLOPT_CONNECTTIMEOUT_MS,
	       (long)(p->timeout_ms < CONNECT_TIMEOUT_MS ? p->timeout_ms : CONNECT_TIMEOUT_MS));
	SETOPT(CURLOPT_FOLLOWLOCATION, 0L);
	SETOPT(CURLOPT_PROTOCOLS_STR, "http,https");
	SETOPT(CURLOPT_POST, 1L);
	SETOPT(CURLOPT_TCP_KEEPALIVE, 1L);
	SETOPT(CURLOPT_WRITEFUNCTION, on_response);
	SETOPT(CURLOPT_WRITEDATA, p);
	SETOPT(CURLOPT_ERRORBUFFER, p->errbuf);
	if (p->user_agent)
		SETOPT(CURLOPT_USERAGENT, p->user_agent);
#undef SETOPT
	if (rc != CURLE_OK) {
		set_errf(err, errlen, "cannot configure libcurl: %s", curl_easy_strerror(rc));
		return rc == CURLE_OUT_OF_MEMORY ? -ENOMEM : -EINVAL;
	}
	return 0;
}

struct push *push__new(const struct push_opts *o, char *err, size_t errlen)
{
	struct push *p;
	int ret;

	set_errf(err, errlen, "%s", "");
	if (!o || !o->url || (o->spool_dir && !*o->spool_dir)) {
		set_errf(err, errlen, "%s", o && o->url ? "empty spool directory name" : "no URL");
		errno = EINVAL;
		return NULL;
	}
	p = calloc(1, sizeof(*p));
	if (!p) {
		set_errf(err, errlen, "out of memory");
		errno = ENOMEM;
		return NULL;
	}
	p->dir_fd = -1;
	p->lock_fd = -1;
	strbuf_init(&p->resp, RESPONSE_MAX);
	p->mem_cap = o->spool_mem_bytes ? o->spool_mem_bytes : DEFAULT_MEM_BYTES;
	p->disk_cap = o->spool_disk_bytes ? o->spool_disk_bytes : DEFAULT_DISK_BYTES;
	p->timeout_ms = o->timeout_ms ? o->timeout_ms : DEFAULT_TIMEOUT_MS;
	p->backoff_min_ms = o->backoff_min_ms ? o->backoff_min_ms : DEFAULT_BACKOFF_MS;
	p->backoff_max_ms = p->backoff_min_ms <= UINT32_MAX / BACKOFF_CAP_FACTOR
				    ? p->backoff_min_ms * BACKOFF_CAP_FACTOR
				    : UINT32_MAX;
	p->backoff_ms = p->backoff_min_ms;
	p->next_seq = 1;
	p->rng = ((uint64_t)time(NULL) << 20) ^ (uint64_t)getpid() ^ (uint64_t)(uintptr_t)p;
	if (!p->rng)
		p->rng = 1;

	if ((o->token_file && !(p->token_file = strdup(o->token_file))) ||
	    (o->user_agent && !(p->user_agent = strdup(o->user_agent))) ||
	    (o->spool_dir && !(p->spool_dir = strdup(o->spool_dir)))) {
		set_errf(err, errlen, "out of memory");
		ret = -ENOMEM;
		goto fail;
	}
	ret = url_prepare(p, o->url, err, errlen);
	if (ret)
		goto fail;
	if (p->token_file) {
		ret = token_read_file(p->token_file, TOKEN_MAX, &p->token);
		if (ret) {
			set_errf(err, errlen, "token file \"%s\": %s", p->token_file,
				token_strerror(ret));
			goto fail;
		}
	}
	ret = curl_setup(p, err, errlen);
	if (ret)
		goto fail;
	if (p->spool_dir) {
		ret = spool_open_dir(p, err, errlen);
		if (ret)
			goto fail;
	}
	stats_update(p);
	return p;
fail:
	push__free(p);
	errno = -ret;
	return NULL;
}

/* Stop the request in flight, if any; returns its entry (in no queue) or NULL. */
static struct entry *transfer_detach(struct push *p)
{
	struct entry *e = p->inflight;

	if (!e)
		return NULL;
	curl_multi_remove_handle(p->multi, p->easy);
	curl_slist_free_all(p->headers);
	p->headers = NULL;
	p->inflight = NULL;
	return e;
}

void push__free(struct push *p)
{
	struct entry *e;

	if (!p)
		return;
	entry_free(transfer_detach(p));
	while ((e = q_pop(&p->mem)))
		entry_free(e);
	while ((e = q_pop(&p->disk)))
		entry_free(e);
	if (p->easy)
		curl_easy_cleanup(p->easy);
	if (p->multi)
		curl_multi_cleanup(p->multi);
	if (p->curl_global)
		curl_global_cleanup();
	strbuf_release(&p->resp);
	if (p->lock_fd >= 0)
		close(p->lock_fd); /* releases the flock */
	if (p->dir_fd >= 0)
		close(p->dir_fd);
	token_free(p->token);
	free(p->token_file);
	free(p->user_agent);
	free(p->spool_dir);
	free(p->url_prefix);
	free(p->display_url);
	free(p);
}

/* ---- enqueue ---- */

int push__enqueue(struct push *p, const struct push_item *it)
{
	struct entry *e, *old;
	size_t nlen;
	uint64_t size;

	if (!p || !it || !it->name || (!it->body && it->len))
		return -EINVAL;
	nlen = strnlen(it->name, PUSH_NAME_MAX + 1);
	if (nlen == 0)
		return -EINVAL;
	if (nlen > PUSH_NAME_MAX)
		return -ENAMETOOLONG;
	if (it->len > SPOOL_BODY_MAX || nlen + (uint64_t)it->len > p->mem_cap)
		return -E2BIG;
	size = nlen + (uint64_t)it->len;

	e = calloc(1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	e->data = malloc(nlen + 1 + it->len + 1);
	if (!e->data) {
		free(e);
		return -ENOMEM;
	}
	memcpy(e->data, it->name, nlen + 1);
	if (it->len)
		memcpy(e->data + nlen + 1, it->body, it->len);
	e->data[nlen + 1 + it->len] = '\0';
	e->name_len = nlen;
	e->body_len = it->len;
	e->from_s = it->from_s;
	e->until_s = it->until_s;
	e->rate = it->sample_rate;
	e->seq = p->next_seq++;

	/* Oldest first: the memory head goes to the spool, or is dropped without one. */
	while (p->mem_bytes + size > p->mem_cap && (old = q_pop(&p->mem))) {
		p->mem_items--;
		p->mem_bytes -= entry_mem_size(old);
		if (p->dir_fd >= 0) {
			spool_entry(p, old, false);
		} else {
			p->st.dropped_overflow++;
			entry_free(old);
		}
	}
	q_push_back(&p->mem, e);
	p->mem_items++;
	p->mem_bytes += size;
	p->st.enqueued++;
	stats_update(p);
	return 0;
}

/* ---- transfers ---- */

/* Put entry e (out of a failed or aborted request) back at the head of the queue. */
static void requeue_front(struct push *p, struct entry *e)
{
	if (e->file_size) {
		/* Re-read at the next attempt rather than hold a possibly large body. */
		free(e->data);
		e->data = NULL;
		q_push_front(&p->disk, e);
	} else if (p->disk.head) {
		/* Newer items went to the spool meanwhile: e must stay ahead of them. */
		p->mem_items--;
		p->mem_bytes -= entry_mem_size(e);
		spool_entry(p, e, true);
	} else {
		q_push_front(&p->mem, e);
	}
}

static int transfer_start(struct push *p)
{
	struct strbuf url, auth;
	struct entry *e = NULL;
	struct curl_slist *h = NULL, *h2;
	CURLcode rc = CURLE_OK;
	CURLMcode mc;
	char *esc = NULL;
	const char *why;
	int err;

	strbuf_init(&url, 0);
	strbuf_init(&auth, 0);
	/* Disk items come first; a bad or unreadable file is dropped and the next one tried. */
	while (!e && (e = q_pop(&p->disk))) {
		err = spool_load(p, e, &why);
		if (!err)
			break;
		if (err == -ENOMEM) {
			q_push_front(&p->disk, e);
			p->next_due_ms = now_ms() + RETRY_LATER_MS;
			return err;
		}
		if (err == -EBADMSG) {
			p->st.dropped_corrupt++;
			log_corrupt(p, e->seq, why, err);
		} else {
			uint64_t suppressed = 0;
			char note[64];

			p->st.dropped_disk_error++;
			if (ratelimit_ok(&p->rl_disk, &suppressed))
				log_warn("push: cannot read spool file %020" PRIu64 SPOOL_SUFFIX
					 " in \"%s\": %s; profile dropped%s",
					 e->seq, p->spool_dir, strerror(-err),
					 suppressed_note(note, sizeof(note), suppressed));
		}
		entry_forget(p, e);
		e = NULL;
	}
	if (!e)
		e = q_pop(&p->mem);
	if (!e)
		return 0;

	esc = curl_easy_escape(p->easy, e->data, (int)e->name_len);
	err = esc ? strbuf_addf(&url,
				"%sname=%s&from=%" PRIu64 "&until=%" PRIu64
				"&format=folded&sampleRate=%" PRIu32
				"&spyName=pysamp-bpf&units=samples&aggregationType=sum",
				p->url_prefix, esc, e->from_s, e->until_s, e->rate)
		  : -ENOMEM;
	curl_free(esc);
	if (err)
		goto fail;
	h = curl_slist_append(NULL, "Content-Type: text/plain");
	/* No "Expect: 100-continue" round trip for large bodies. */
	if (h && (h2 = curl_slist_append(h, "Expect:")))
		h = h2;
	else
		goto nomem;
	if (p->token) {
		err = strbuf_addf(&auth, "Authorization: Bearer %s", p->token);
		if (err)
			goto fail;
		h2 = curl_slist_append(h, auth.buf);
		explicit_bzero(auth.buf, auth.len);
		if (!h2)
			goto nomem;
		h = h2;
	}
	rc = curl_easy_setopt(p->easy, CURLOPT_URL, url.buf);
	if (rc == CURLE_OK)
		rc = curl_easy_setopt(p->easy, CURLOPT_POSTFIELDSIZE_LARGE,
				      (curl_off_t)e->body_len);
	if (rc == CURLE_OK) /* not copied: e->data outlives the request */
		rc = curl_easy_setopt(p->easy, CURLOPT_POSTFIELDS, e->data + e->name_len + 1);
	if (rc == CURLE_OK)
		rc = curl_easy_setopt(p->easy, CURLOPT_HTTPHEADER, h);
	if (rc != CURLE_OK) {
		err = rc == CURLE_OUT_OF_MEMORY ? -ENOMEM : -EINVAL;
		goto fail;
	}
	strbuf_reset(&p->resp);
	p->errbuf[0] = '\0';
	mc = curl_multi_add_handle(p->multi, p->easy);
	if (mc != CURLM_OK) {
		err = mc == CURLM_OUT_OF_MEMORY ? -ENOMEM : -EIO;
		goto fail;
	}
	if (e->attempts)
		p->st.retries++;
	p->headers = h;
	p->inflight = e;
	strbuf_release(&url);
	strbuf_release(&auth);
	return 0;
nomem:
	err = -ENOMEM;
fail:
	curl_slist_free_all(h);
	strbuf_release(&url);
	strbuf_release(&auth);
	requeue_front(p, e);
	p->next_due_ms = now_ms() + RETRY_LATER_MS;
	return err;
}

/* The collector answered (or a 4xx proved it reachable): end an outage. */
static void reachable(struct push *p)
{
	p->backoff_ms = p->backoff_min_ms;
	p->next_due_ms = 0;
	if (!p->outage)
		return;
	p->outage = false;
	log_info("push: collector reachable again; %" PRIu64 " items sent, %" PRIu64 " queued",
		 p->st.sent, p->mem_items + p->disk_items);
}

static void on_rejected(struct push *p, struct entry *e, long status)
{
	uint64_t suppressed = 0;
	char msg[MESSAGE_MAX + 1], name[101], note[64];

	p->st.rejected++;
	if (ratelimit_ok(&p->rl_reject, &suppressed)) {
		printable(name, sizeof(name), e->data, e->name_len, sizeof(name) - 1);
		printable(msg, sizeof(msg), p->resp.buf ? p->resp.buf : "", p->resp.len,
			  MESSAGE_MAX);
		log_warn("push: collector %s rejected '%s' with HTTP %ld: %s; profile dropped%s",
			 p->display_url, name, status, *msg ? msg : "(no message)",
			 suppressed_note(note, sizeof(note), suppressed));
	}
	entry_forget(p, e);
	reachable(p);
}

static void on_failed(struct push *p, struct entry *e, CURLcode rc, long status)
{
	curl_off_t retry_after = 0;
	uint64_t delay;
	char msg[MESSAGE_MAX + 1];

	p->st.failed_attempts++;
	e->attempts++;
	/* Honour Retry-After (429, 503) within the backoff cap. */
	if (rc == CURLE_OK &&
	    curl_easy_getinfo(p->easy, CURLINFO_RETRY_AFTER, &retry_after) != CURLE_OK)
		retry_after = 0;
	delay = (uint64_t)p->backoff_ms * (80 + rng_next(p) % 41) / 100;
	if (retry_after > 0 && (uint64_t)retry_after * 1000 > delay)
		delay = (uint64_t)retry_after * 1000;
	if (delay > p->backoff_max_ms)
		delay = p->backoff_max_ms;
	p->next_due_ms = now_ms() + (int64_t)delay;
	p->backoff_ms =
		p->backoff_ms > p->backoff_max_ms / 2 ? p->backoff_max_ms : p->backoff_ms * 2;
	requeue_front(p, e);
	if (p->outage)
		return;
	p->outage = true;
	if (rc != CURLE_OK) {
		log_warn("push: collector %s unreachable: %s; %" PRIu64
			 " profile(s) kept queued, retrying with backoff",
			 p->display_url, p->errbuf[0] ? p->errbuf : curl_easy_strerror(rc),
			 p->mem_items + p->disk_items);
	} else {
		printable(msg, sizeof(msg), p->resp.buf ? p->resp.buf : "", p->resp.len,
			  MESSAGE_MAX);
		log_warn("push: collector %s unavailable: HTTP %ld%s%s; %" PRIu64
			 " profile(s) kept queued, retrying with backoff",
			 p->display_url, status, *msg ? ": " : "", msg,
			 p->mem_items + p->disk_items);
	}
}

static void transfer_done(struct push *p, CURLcode rc)
{
	struct entry *e = transfer_detach(p);
	long status = 0;

	if (!e)
		return;
	if (rc == CURLE_OK && curl_easy_getinfo(p->easy, CURLINFO_RESPONSE_CODE, &status))
		status = 0;
	p->st.last_http_status = (int)status;
	if (rc == CURLE_OK && status >= 200 && status < 300) {
		p->st.sent++;
		p->st.bytes_sent += e->body_len;
		p->st.last_success_unix = (int64_t)time(NULL);
		entry_forget(p, e);
		reachable(p);
	} else if (rc == CURLE_OK && status >= 400 && status < 500 && status != 408 &&
		   status != 429) {
		on_rejected(p, e, status);
	} else {
		/* Connection errors, timeouts, 408, 429, 5xx, and 1xx/3xx (redirects are not
		 * followed): the item waits for the URL or the collector to be fixed. */
		on_failed(p, e, rc, status);
	}
}

/* Run curl, and finish the request if it is done. */
static int transfer_drive(struct push *p)
{
	struct CURLMsg *msg;
	CURLMcode mc;
	int running = 0, left = 0;

	mc = curl_multi_perform(p->multi, &running);
	if (mc != CURLM_OK) {
		struct entry *e = transfer_detach(p);

		log_warn("push: libcurl failed: %s", curl_multi_strerror(mc));
		if (e)
			requeue_front(p, e);
		p->next_due_ms = now_ms() + p->backoff_ms;
		return mc == CURLM_OUT_OF_MEMORY ? -ENOMEM : -EIO;
	}
	while ((msg = curl_multi_info_read(p->multi, &left))) {
		if (msg->msg == CURLMSG_DONE && msg->easy_handle == p->easy)
			transfer_done(p, msg->data.result);
	}
	return 0;
}

int push__poll(struct push *p)
{
	int err = 0;

	if (!p)
		return -EINVAL;
	if (p->inflight)
		err = transfer_drive(p);
	if (!err && !p->inflight && (p->mem.head || p->disk.head) && now_ms() >= p->next_due_ms) {
		err = transfer_start(p);
		if (!err && p->inflight)
			err = transfer_drive(p);
	}
	stats_update(p);
	return err;
}

int push__flush(struct push *p, uint32_t timeout_ms)
{
	int64_t deadline = now_ms() + timeout_ms, now, wait;
	struct entry *e;
	uint64_t left;

	if (!p)
		return 0;
	if (!p->inflight)
		p->next_due_ms = 0;
	for (;;) {
		(void)push__poll(p);
		if (!p->inflight && !p->mem.head && !p->disk.head)
			break;
		now = now_ms();
		if (now >= deadline)
			break;
		wait = deadline - now;
		if (!p->inflight && p->next_due_ms - now < wait)
			wait = p->next_due_ms > now ? p->next_due_ms - now : 0;
		if (wait > 1000)
			wait = 1000;
		if (wait > 0)
			(void)curl_multi_poll(p->multi, NULL, 0, (int)wait, NULL);
	}
	/* Counted first: requeueing the aborted request may drop it when the spool is full. */
	left = p->mem_items + p->disk_items;
	e = transfer_detach(p);
	if (e)
		requeue_front(p, e);
	while ((e = q_pop(&p->mem))) {
		p->mem_items--;
		p->mem_bytes -= entry_mem_size(e);
		if (p->dir_fd >= 0) {
			spool_entry(p, e, false);
		} else {
			p->st.dropped_unsent++;
			entry_free(e);
		}
	}
	stats_update(p);
	return left > INT_MAX ? INT_MAX : (int)left;
}

int push__reload(struct push *p)
{
	char *tok = NULL;
	int err;

	if (!p)
		return -EINVAL;
	if (!p->token_file)
		return 0;
	err = token_read_file(p->token_file, TOKEN_MAX, &tok);
	if (err) {
		log_warn("push: cannot re-read token file \"%s\": %s; keeping the old token",
			 p->token_file, token_strerror(err));
		return err;
	}
	token_free(p->token);
	p->token = tok;
	log_info("push: token re-read from \"%s\"", p->token_file);
	return 0;
}

const struct push_stats *push__stats(const struct push *p)
{
	return &p->st;
}
