/* SPDX-License-Identifier: BSD-2-Clause */
/* pyproc.c - find and describe the CPython interpreter inside a process. */
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include "elfsym.h"
#include "log.h"
#include "procmaps.h"
#include "pyproc.h"
#include "remote.h"

#define PYPROC_MAX_CANDIDATES 256

struct candidate {
	const struct procmap *first; /* lowest mapping of the file */
	const struct procmap *zero;  /* mapping of file offset 0, if any */
	bool libpython;
};

static void set_why(char *why, size_t whylen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void set_why(char *why, size_t whylen, const char *fmt, ...)
{
	va_list ap;

	if (!why || !whylen)
		return;
	va_start(ap, fmt);
	vsnprintf(why, whylen, fmt, ap);
	va_end(ap);
}

static const char *base_name(const char *path)
{
	const char *s = strrchr(path, '/');

	return s ? s + 1 : path;
}

static void read_comm(pid_t pid, char *out, size_t len)
{
	char path[64];
	ssize_t n;
	int fd;

	snprintf(out, len, "?");
	snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	n = read(fd, out, len - 1);
	close(fd);
	if (n <= 0) {
		snprintf(out, len, "?");
		return;
	}
	out[n] = '\0';
	out[strcspn(out, "\n")] = '\0';
}

bool pyproc__alive(const struct pyproc *pp)
{
	char path[64], buf[512], *p;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pp->pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = '\0';
	/* "pid (comm) S ..." - comm may hold anything, so find the last ')'. */
	p = strrchr(buf, ')');
	if (!p || p[1] != ' ')
		return false;
	return p[2] != 'Z' && p[2] != 'X' && p[2] != 'x';
}

static int exe_identity(pid_t pid, uint64_t *dev, uint64_t *ino)
{
	char path[64];
	struct stat st;

	snprintf(path, sizeof(path), "/proc/%d/exe", (int)pid);
	if (stat(path, &st))
		return -errno;
	*dev = st.st_dev;
	*ino = st.st_ino;
	return 0;
}

bool pyproc__execed(const struct pyproc *pp)
{
	uint64_t dev, ino;

	if (exe_identity(pp->pid, &dev, &ino))
		return false; /* gone or unreadable: pyproc__alive() decides */
	return dev != pp->exe_dev || ino != pp->exe_ino;
}

/* Open the mapped file as the target sees it, across mount namespaces. */
static struct elf_file *open_mapped(pid_t pid, const struct procmap *m)
{
	char path[4200];
	struct elf_file *ef;

	snprintf(path, sizeof(path), "/proc/%d/map_files/%llx-%llx", (int)pid,
		 (unsigned long long)m->start, (unsigned long long)m->end);
	ef = elf_file__open(path);
	if (ef || errno == ENOEXEC)
		return ef;
	snprintf(path, sizeof(path), "/proc/%d/root%s", (int)pid, m->path);
	return elf_file__open(path);
}

static bool is_libpython(const char *path)
{
	return strncmp(base_name(path), "libpython", 9) == 0;
}

static bool same_file(const struct procmap *a, const struct procmap *b)
{
	return a->inode == b->inode && a->dev_major == b->dev_major &&
	       a->dev_minor == b->dev_minor && strcmp(a->path, b->path) == 0;
}

/* Unique file-backed objects, libpython first, then in maps order. */
static size_t collect_candidates(const struct procmaps *maps, struct candidate *out, size_t max)
{
	size_t n = 0;

	for (int pass = 0; pass < 2; pass++) {
		for (size_t i = 0; i < maps->n && n < max; i++) {
			const struct procmap *m = &maps->v[i];
			bool lib, seen = false;

			if (m->path[0] != '/' || m->inode == 0)
				continue;
			lib = is_libpython(m->path);
			if ((pass == 0) != lib)
				continue;
			for (size_t k = 0; k < n; k++) {
				if (same_file(out[k].first, m)) {
					if (m->offset == 0 && !out[k].zero)
						out[k].zero = m;
					seen = true;
					break;
				}
			}
			if (seen)
				continue;
			out[n].first = m;
			out[n].zero = m->offset == 0 ? m : NULL;
			out[n].libpython = lib;
			n++;
		}
	}
	return n;
}

static bool defines_interpreter(const struct elf_file *ef)
{
	return elf_file__has_symbol(ef, "PyCode_Type") &&
	       (elf_file__has_symbol(ef, "Py_Initialize") ||
		elf_file__has_symbol(ef, "Py_InitializeEx"));
}

/* Major/minor from "libpython3.7m.so.1.0", "libpython2.7.so". */
static bool version_from_name(const char *path, uint32_t *major, uint32_t *minor)
{
	const char *s = base_name(path) + strlen("libpython");
	unsigned long maj, min;
	char *end;

	if (strncmp(base_name(path), "libpython", 9) != 0 || *s < '0' || *s > '9')
		return false;
	maj = strtoul(s, &end, 10);
	if (*end != '.' || end[1] < '0' || end[1] > '9')
		return false;
	min = strtoul(end + 1, &end, 10);
	if (maj < 2 || maj > 3 || min > 99)
		return false;
	*major = (uint32_t)maj;
	*minor = (uint32_t)min;
	return true;
}

/* Oldest version whose C API the object exports (fallback 4). */
static bool version_from_symbols(const struct elf_file *ef, uint32_t *major, uint32_t *minor)
{
	static const struct {
		const char *sym;
		uint32_t major, minor;
	} probes[] = {
		{ "Py_IsNone", 3, 10 },		       /* new function in 3.10 */
		{ "PyFrame_GetCode", 3, 9 },	       /* new in 3.9 */
		{ "PyConfig_InitPythonConfig", 3, 8 }, /* PEP 587, 3.8 */
		{ "_PyRuntime", 3, 7 },		       /* runtime state struct, 3.7 */
		{ "PyOS_FSPath", 3, 6 },	       /* PEP 519, 3.6 */
		{ "PyString_FromString", 2, 7 },       /* Python 2 str API */
	};

	for (size_t i = 0; i < sizeof(probes) / sizeof(probes[0]); i++) {
		if (!elf_file__has_symbol(ef, probes[i].sym))
			continue;
		/* Python 2 before 2.7 lacks PyCapsule; 3.5 lacks PyOS_FSPath. */
		if (probes[i].major == 2 && !elf_file__has_symbol(ef, "PyCapsule_New"))
			return false;
		*major = probes[i].major;
		*minor = probes[i].minor;
		return true;
	}
	return false;
}

/* 2.7/3.6 without .symtab: PyInterpreterState_Head is "mov interp_head(%rip),%rax; ret". */
static int interp_head_from_code(const struct elf_file *ef, uint64_t *vaddr)
{
	uint64_t fn;
	uint8_t code[8];
	int32_t disp;

	if (elf_file__symbol(ef, "PyInterpreterState_Head", &fn, NULL))
		return -ENOENT;
	if (elf_file__read(ef, fn, code, sizeof(code)))
		return -ENOENT;
	if (code[0] != 0x48 || code[1] != 0x8b || code[2] != 0x05 || code[7] != 0xc3)
		return -ENOENT;
	memcpy(&disp, code + 3, sizeof(disp));
	*vaddr = fn + 7 + (uint64_t)(int64_t)disp;
	return 0;
}

static int describe(struct pyproc *pp, const struct elf_file *ef, const struct candidate *c,
		    char *why, size_t whylen)
{
	uint64_t base, runtime = 0, sym;
	uint32_t major = 0, minor = 0, vhex = 0;
	bool have_runtime, have_debug = false;
	uint8_t dbg[PYOFFSETS_DEBUG_BYTES];
	const struct py_offsets *table;
	char dwhy[128] = "";
	int err;

	snprintf(pp->path, sizeof(pp->path), "%s", c->first->path);
	if (!c->zero || elf_file__base_vaddr(ef, &base)) {
		set_why(why, whylen, "cannot find the load address of '%s'", pp->path);
		return -ENOEXEC;
	}
	pp->bias = c->zero->start - base;

	/* Py_TRACE_REFS builds put two pointers before every object header. */
	if (elf_file__has_symbol(ef, "_Py_PrintReferences")) {
		set_why(why, whylen,
			"'%s' is a Py_TRACE_REFS (debug) build, whose object layout is not "
			"supported", pp->path);
		return -ENOTSUP;
	}

	have_runtime = elf_file__symbol(ef, "_PyRuntime", &runtime, NULL) == 0;
	if (have_runtime)
		runtime += pp->bias;

	/* 1. _Py_DebugOffsets at the start of _PyRuntime (3.13+). */
	if (have_runtime && remote_read(pp->pid, runtime, dbg, sizeof(dbg)) == 0 &&
	    memcmp(dbg, "xdebugpy", 8) == 0) {
		uint64_t v;

		memcpy(&v, dbg + 8, sizeof(v));
		vhex = (uint32_t)v;
		major = (vhex >> 24) & 0xff;
		minor = (vhex >> 16) & 0xff;
		pp->version_source = "_Py_DebugOffsets";
		err = pyoffsets_from_debug(dbg, sizeof(dbg), &pp->off, dwhy, sizeof(dwhy));
		if (err) {
			set_why(why, whylen, "Python %u.%u in '%s': %s", major, minor, pp->path,
				dwhy);
			return err == -ENOTSUP ? -ENOTSUP : -ENOTSUP;
		}
		have_debug = true;
	}
	/* 2. Py_Version (3.11+). */
	if (!vhex && elf_file__symbol(ef, "Py_Version", &sym, NULL) == 0) {
		uint32_t v = 0;

		if (remote_read_u32(pp->pid, sym + pp->bias, &v) && elf_file__read(ef, sym, &v, 4))
			v = 0;
		if (v) {
			vhex = v;
			major = (v >> 24) & 0xff;
			minor = (v >> 16) & 0xff;
			pp->version_source = "Py_Version";
		}
	}
	/* 3. The library's name. */
	if (!major && version_from_name(pp->path, &major, &minor))
		pp->version_source = "library name";
	/* 4. Exported API. */
	if (!major && version_from_symbols(ef, &major, &minor))
		pp->version_source = "exported symbols";
	if (!major) {
		set_why(why, whylen, "'%s' holds a Python interpreter of unknown version",
			pp->path);
		return -ENOTSUP;
	}
	pp->version_hex = vhex ? vhex : (major << 24 | minor << 16);

	if (!have_debug) {
		table = pyoffsets_table(major, minor);
		if (!table) {
			set_why(why, whylen,
				"Python %u.%u in '%s' is not supported (2.7, 3.6-3.12 by table, "
				"3.13+ through _Py_DebugOffsets)",
				major, minor, pp->path);
			return -ENOTSUP;
		}
		pp->off = *table;
	}

	/* Where the interpreter list starts. */
	if (pp->off.runtime_interp_head != PYSAMP_OFF_NONE) {
		if (!have_runtime) {
			set_why(why, whylen, "Python %u.%u in '%s' has no _PyRuntime symbol", major,
				minor, pp->path);
			return -ENOTSUP;
		}
		pp->interp_head_addr = runtime + pp->off.runtime_interp_head;
	} else {
		if (elf_file__symbol(ef, "interp_head", &sym, NULL) &&
		    interp_head_from_code(ef, &sym)) {
			set_why(why, whylen,
				"Python %u.%u in '%s': cannot locate interp_head (stripped, and "
				"PyInterpreterState_Head has an unexpected shape)",
				major, minor, pp->path);
			return -ENOTSUP;
		}
		pp->interp_head_addr = sym + pp->bias;
	}

	if (elf_file__symbol(ef, "PyCode_Type", &sym, NULL) == 0)
		pp->type_code = sym + pp->bias;
	if (elf_file__symbol(ef, major == 2 ? "PyString_Type" : "PyUnicode_Type", &sym, NULL) == 0)
		pp->type_str = sym + pp->bias;
	if (elf_file__symbol(ef, major == 2 ? "PyString_Type" : "PyBytes_Type", &sym, NULL) == 0)
		pp->type_bytes = sym + pp->bias;

	err = pyoffsets_to_bpf(&pp->off, pp->interp_head_addr, &pp->bpf);
	if (err) {
		set_why(why, whylen, "Python %u.%u in '%s': layout does not fit the sampler", major,
			minor, pp->path);
		return -ENOTSUP;
	}
	return 0;
}

static size_t verdict_slot(const struct pyproc_verdicts *v, const struct procmap *m)
{
	uint64_t h = (m->inode ^ ((uint64_t)m->dev_major << 40) ^ ((uint64_t)m->dev_minor << 20)) *
		     0x9e3779b97f4a7c15ULL;
	size_t i = (size_t)(h >> 32) & (v->cap - 1);

	while (v->v[i].inode && (v->v[i].inode != m->inode || v->v[i].dev_major != m->dev_major ||
				 v->v[i].dev_minor != m->dev_minor))
		i = (i + 1) & (v->cap - 1);
	return i;
}

static bool verdict_known(struct pyproc_verdicts *v, const struct procmap *m)
{
	bool hit;

	if (!v || !v->cap)
		return false;
	hit = v->v[verdict_slot(v, m)].inode != 0;
	if (hit)
		v->hits++;
	return hit;
}

static void verdict_add(struct pyproc_verdicts *v, const struct procmap *m)
{
	size_t i;

	if (!v)
		return;
	v->misses++;
	if (!v->cap || v->n >= PYPROC_VERDICTS_MAX) {
		/* Allocate, or start over: the table never grows past its bound. */
		free(v->v);
		v->cap = 2 * PYPROC_VERDICTS_MAX;
		v->n = 0;
		v->v = calloc(v->cap, sizeof(*v->v));
		if (!v->v) {
			v->cap = 0;
			return;
		}
	}
	i = verdict_slot(v, m);
	if (v->v[i].inode)
		return;
	v->v[i].inode = m->inode;
	v->v[i].dev_major = m->dev_major;
	v->v[i].dev_minor = m->dev_minor;
	v->n++;
}

void pyproc_verdicts_release(struct pyproc_verdicts *v)
{
	free(v->v);
	memset(v, 0, sizeof(*v));
}

struct pyproc *pyproc__new(pid_t pid, char *why, size_t whylen)
{
	return pyproc__new_cached(pid, NULL, why, whylen);
}

struct pyproc *pyproc__new_cached(pid_t pid, struct pyproc_verdicts *verdicts, char *why,
				  size_t whylen)
{
	struct candidate *cands = NULL;
	struct procmaps maps;
	struct pyproc *pp;
	size_t ncand;
	int err = -ENOEXEC;

	procmaps_init(&maps);
	pp = calloc(1, sizeof(*pp));
	if (!pp) {
		set_why(why, whylen, "out of memory");
		return NULL;
	}
	pp->pid = pid;
	err = procmaps_read(&maps, pid);
	if (err) {
		set_why(why, whylen, err == -ESRCH ? "no such process" : "cannot read its maps: %s",
			strerror(-err));
		goto fail;
	}
	read_comm(pid, pp->comm, sizeof(pp->comm));
	(void)exe_identity(pid, &pp->exe_dev, &pp->exe_ino);
	cands = calloc(PYPROC_MAX_CANDIDATES, sizeof(*cands));
	if (!cands) {
		err = -ENOMEM;
		set_why(why, whylen, "out of memory");
		goto fail;
	}
	ncand = collect_candidates(&maps, cands, PYPROC_MAX_CANDIDATES);
	err = -ENOEXEC;
	set_why(why, whylen,
		"no CPython interpreter found in its %zu mapped files "
		"(no object defines PyCode_Type and Py_Initialize)",
		ncand);
	for (size_t i = 0; i < ncand; i++) {
		struct elf_file *ef;

		if (verdict_known(verdicts, cands[i].first))
			continue;
		ef = open_mapped(pid, cands[i].first);
		if (!ef) {
			if (errno == ENOEXEC)
				verdict_add(verdicts, cands[i].first); /* not ELF */
			else
				log_debug("pid %d: cannot open '%s': %s", (int)pid,
					  cands[i].first->path, strerror(errno));
			continue;
		}
		if (!defines_interpreter(ef)) {
			verdict_add(verdicts, cands[i].first);
			elf_file__free(ef);
			continue;
		}
		err = describe(pp, ef, &cands[i], why, whylen);
		elf_file__free(ef);
		break;
	}
	if (err)
		goto fail;
	log_info("pid %d (%s): Python %u.%u (version from %s) in '%s', bias 0x%llx", (int)pid,
		 pp->comm, (pp->version_hex >> 24) & 0xff, (pp->version_hex >> 16) & 0xff,
		 pp->version_source, pp->path, (unsigned long long)pp->bias);
	free(cands);
	procmaps_release(&maps);
	return pp;
fail:
	free(cands);
	procmaps_release(&maps);
	pyproc__free(pp);
	errno = -err;
	return NULL;
}

struct pyproc *pyproc__fork(const struct pyproc *parent, pid_t child)
{
	struct pyproc *pp = malloc(sizeof(*pp));

	if (!pp)
		return NULL;
	*pp = *parent;
	pp->pid = child;
	read_comm(child, pp->comm, sizeof(pp->comm));
	return pp;
}

void pyproc__free(struct pyproc *pp)
{
	free(pp);
}
