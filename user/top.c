/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * top.c - `pysamp-bpf top`: the agent with one-second windows, and a table of the busiest
 * functions redrawn after each. Owns the terminal state it changes and restores it.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "agent.h"
#include "analyze.h"
#include "framelabel.h"
#include "log.h"
#include "top.h"
#include "util.h"

#define TOP_DEFAULT_HZ 99
#define TOP_MAX_HZ     10000
#define TOP_MAX_PROCS  256 /* processes the p key cycles through */

static volatile sig_atomic_t top_exiting;
static volatile sig_atomic_t top_resized;

struct top_proc {
	pid_t pid;
	char comm[17];
};

struct top {
	struct agent agent;
	bool tty;		/* stdout is a terminal: redraw in place */
	bool raw;		/* stdin switched to raw mode (restore it) */
	struct termios saved;
	bool by_total;		/* sort by total instead of self */
	bool lines;		/* one row per line instead of per function */
	bool cumulative;	/* since start instead of the last window */
	pid_t only;		/* 0: every process */
	struct top_proc procs[TOP_MAX_PROCS];
	size_t nprocs;
	struct stacks *acc;	/* the samples shown (last window or cumulative) */
	uint64_t windows;
	uint32_t hz;
	unsigned rows, cols;
};

static struct top *the_top; /* for the exit handler */

static void on_signal(int sig)
{
	if (sig == SIGWINCH)
		top_resized = 1;
	else
		top_exiting = 1;
}

static void term_size(struct top *t)
{
	struct winsize ws;

	t->rows = 24;
	t->cols = 80;
	if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_row && ws.ws_col) {
		t->rows = ws.ws_row;
		t->cols = ws.ws_col;
	}
	if (t->cols < 40)
		t->cols = 40;
	if (t->rows < 6)
		t->rows = 6;
}

static void term_restore(void)
{
	struct top *t = the_top;

	if (!t)
		return;
	if (t->raw) {
		tcsetattr(STDIN_FILENO, TCSANOW, &t->saved);
		t->raw = false;
	}
	if (t->tty) {
		fputs("\033[?25h\033[?1049l", stdout); /* cursor on, main screen back */
		fflush(stdout);
		t->tty = false;
	}
}

static void term_setup(struct top *t)
{
	struct termios raw;

	t->tty = isatty(STDOUT_FILENO);
	if (isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &t->saved) == 0) {
		raw = t->saved;
		raw.c_lflag &= ~(tcflag_t)(ICANON | ECHO);
		raw.c_cc[VMIN] = 0;
		raw.c_cc[VTIME] = 0;
		if (tcsetattr(STDIN_FILENO, TCSANOW, &raw) == 0)
			t->raw = true;
	}
	if (t->tty) {
		fputs("\033[?1049h\033[?25l", stdout); /* alternate screen, cursor off */
		fflush(stdout);
	}
	term_size(t);
	atexit(term_restore);
}

/* The function key of a label: "name (file)" without the line, or the label itself. */
static int fold_label(struct stacks *out, const char *l, size_t len, bool lines, uint32_t *id)
{
	struct frame_parts p;
	char buf[1024];
	int n;

	if (lines || !frame_label_split(l, len, &p))
		return stacks__intern(out, l, len, id);
	n = snprintf(buf, sizeof(buf), "%.*s (%.*s)", (int)p.name_len, p.name, (int)p.file_len,
		     p.file);
	if (n < 0 || (size_t)n >= sizeof(buf))
		return stacks__intern(out, l, len, id);
	return stacks__intern(out, buf, (size_t)n, id);
}

struct fold_ctx {
	const struct stacks *in;
	struct stacks *out;
	bool lines;
	uint32_t ids[1100];
};

static int fold_visit(const uint32_t *ids, size_t n, uint64_t count, void *arg)
{
	struct fold_ctx *f = arg;
	int err;

	if (n > sizeof(f->ids) / sizeof(f->ids[0]))
		n = sizeof(f->ids) / sizeof(f->ids[0]);
	for (size_t i = 0; i < n; i++) {
		size_t len;
		const char *l = stacks__label_bytes(f->in, ids[i], &len);

		err = fold_label(f->out, l, len, f->lines, &f->ids[i]);
		if (err)
			return err;
	}
	return stacks__add(f->out, f->ids, n, count);
}

/*
 * A row's text: "name (file...)" keys and labels shown with the file's base name. Sets *out to
 * buf (or leaves l) and returns the length.
 */
static size_t short_label(const char *l, size_t len, char *buf, size_t buflen, const char **out)
{
	const char *open = memmem(l, len, " (", 2), *file, *slash;
	size_t flen;
	int n;

	*out = l;
	if (!open || len < 4 || l[len - 1] != ')')
		return len;
	file = open + 2;
	flen = (size_t)(l + len - 1 - file);
	slash = memrchr(file, '/', flen);
	if (!slash)
		return len;
	n = snprintf(buf, buflen, "%.*s (%.*s)", (int)(open - l), l,
		     (int)(flen - (size_t)(slash + 1 - file)), slash + 1);
	if (n < 0 || (size_t)n >= buflen)
		return len;
	*out = buf;
	return (size_t)n;
}

static int cmp_total(const void *x, const void *y)
{
	const struct fn_stat *a = x, *b = y;

	if (a->total != b->total)
		return a->total < b->total ? 1 : -1;
	return a->self < b->self ? 1 : a->self > b->self ? -1 : 0;
}

static void draw(struct top *t)
{
	struct fold_ctx *f = calloc(1, sizeof(*f));
	struct fn_stat *fs = NULL;
	uint64_t total = stacks__total(t->acc);
	size_t nfs = 0, shown = 0, width;
	char when[16], scope[64];
	time_t now = time(NULL);
	struct tm tm;

	if (!f)
		return;
	f->in = t->acc;
	f->out = stacks__new();
	f->lines = t->lines;
	if (!f->out || stacks__foreach(t->acc, fold_visit, f) || analyze_top(f->out, &fs, &nfs)) {
		stacks__free(f->out);
		free(f);
		return;
	}
	if (t->by_total)
		qsort(fs, nfs, sizeof(*fs), cmp_total);
	localtime_r(&now, &tm);
	strftime(when, sizeof(when), "%H:%M:%S", &tm);
	if (t->only)
		snprintf(scope, sizeof(scope), "pid %d", (int)t->only);
	else
		snprintf(scope, sizeof(scope), "%zu processes", t->nprocs);
	if (t->tty)
		fputs("\033[H\033[2J", stdout);
	printf("pysamp-bpf top  %s  %s, %u Hz, %" PRIu64 " samples %s\n", when, scope, t->hz,
	       total, t->cumulative ? "since start" : "in the last second");
	printf("%7s %7s %7s %7s  %s\n", "SELF%", "TOTAL%", "SELF", "TOTAL",
	       t->lines ? "LINE" : "FUNCTION");
	width = t->cols > 34 ? t->cols - 34 : 6;
	for (size_t i = 0; i < nfs && shown + 4 < t->rows; i++) {
		size_t len;
		const char *l = stacks__label_bytes(f->out, fs[i].id, &len);
		char name[512], shortl[1100];
		size_t k = 0;

		len = short_label(l, len, shortl, sizeof(shortl), &l);
		/* the printable part of the label, cut to the width */
		for (size_t j = 0; j < len && k < width && k + 1 < sizeof(name); j++)
			name[k++] = (l[j] >= 0x20 && l[j] != 0x7f) ? l[j] : '?';
		if (k == width && len > width && k >= 2)
			name[k - 1] = name[k - 2] = '.';
		name[k] = '\0';
		printf("%6.1f%% %6.1f%% %7" PRIu64 " %7" PRIu64 "  %s\n",
		       total ? 100.0 * (double)fs[i].self / (double)total : 0.0,
		       total ? 100.0 * (double)fs[i].total / (double)total : 0.0, fs[i].self,
		       fs[i].total, name);
		shown++;
	}
	if (!nfs)
		printf("  (no Python samples%s)\n", t->windows ? "" : " yet");
	if (t->tty) {
		printf("\033[%u;1H", t->rows);
		printf("q quit  s/t sort self/total  p next process  a all  l %s  c %s",
		       t->lines ? "functions" : "lines", t->cumulative ? "last second" : "cumulative");
	} else {
		printf("\n");
	}
	fflush(stdout);
	free(fs);
	stacks__free(f->out);
	free(f);
}

static bool match_pid(const struct series_meta *m, void *arg)
{
	return m->pid == *(pid_t *)arg;
}

static void on_window(void *ctx, const struct window *w)
{
	struct top *t = ctx;
	struct window_query q = { .group = WINDOW_GROUP_NONE };

	/* the processes seen, for the p key */
	for (size_t i = 0; i < w->nseries; i++) {
		size_t k;

		for (k = 0; k < t->nprocs && t->procs[k].pid != w->series[i].m.pid; k++)
			;
		if (k == t->nprocs && t->nprocs < TOP_MAX_PROCS) {
			t->procs[k].pid = w->series[i].m.pid;
			snprintf(t->procs[k].comm, sizeof(t->procs[k].comm), "%s",
				 w->series[i].m.comm);
			t->nprocs++;
		}
	}
	if (t->only) {
		q.match = match_pid;
		q.arg = &t->only;
	}
	if (!t->cumulative)
		stacks__clear(t->acc);
	if (window__query(w, &q, t->acc))
		log_warn("top: out of memory");
	t->windows++;
	draw(t);
}

static void key(struct top *t, char c)
{
	switch (c) {
	case 'q':
	case 'Q':
		top_exiting = 1;
		return;
	case 's':
		t->by_total = false;
		break;
	case 't':
		t->by_total = true;
		break;
	case 'l':
		t->lines = !t->lines;
		break;
	case 'c':
		t->cumulative = !t->cumulative;
		stacks__clear(t->acc);
		break;
	case 'a':
		t->only = 0;
		stacks__clear(t->acc);
		break;
	case 'p': {
		size_t i;

		for (i = 0; i < t->nprocs && t->procs[i].pid != t->only; i++)
			;
		t->only = t->nprocs ? t->procs[t->only ? (i + 1) % t->nprocs : 0].pid : 0;
		stacks__clear(t->acc);
		break;
	}
	default:
		return;
	}
	draw(t);
}

static void on_tick(void *ctx)
{
	struct top *t = ctx;
	struct pollfd pfd = { .fd = STDIN_FILENO, .events = POLLIN };
	char buf[16];
	ssize_t n;

	if (top_resized) {
		top_resized = 0;
		term_size(t);
		draw(t);
	}
	if (!t->raw || poll(&pfd, 1, 0) <= 0)
		return;
	n = read(STDIN_FILENO, buf, sizeof(buf));
	for (ssize_t i = 0; i < n; i++)
		key(t, buf[i]);
}

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: pysamp-bpf top {-p PID[,PID...] | --all} [-F HZ]\n"
		"\n"
		"A live view of the Python functions using the CPU, refreshed every second.\n"
		"\n"
		"  -p, --pid PID[,PID...]  processes to watch (their forks too)\n"
		"      --all               every Python process on the host\n"
		"  -F, --frequency HZ      samples per second per CPU (default %d)\n"
		"  -h, --help              this help\n"
		"\n"
		"Keys: q quit, s/t sort by self/total, p next process, a all processes,\n"
		"l functions/lines, c last second/cumulative.\n",
		TOP_DEFAULT_HZ);
}

int top_main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "pid", required_argument, NULL, 'p' },
		{ "all", no_argument, NULL, 'A' },
		{ "frequency", required_argument, NULL, 'F' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct agent_opts ao = { 0 };
	struct sigaction sa;
	struct top *t;
	int *pids = NULL, c, err;
	size_t npids = 0;
	uint32_t hz = TOP_DEFAULT_HZ;

	optind = 1;
	while ((c = getopt_long(argc, argv, "p:F:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'p':
			if (parse_pid_list(optarg, &pids, &npids)) {
				log_error("invalid PID list '%s'", optarg);
				free(pids);
				return 1;
			}
			break;
		case 'A':
			ao.all = true;
			break;
		case 'F':
			if (parse_u32(optarg, 1, TOP_MAX_HZ, &hz)) {
				log_error("invalid frequency '%s': expected 1-%d Hz", optarg,
					  TOP_MAX_HZ);
				free(pids);
				return 1;
			}
			break;
		case 'h':
			usage(stdout);
			free(pids);
			return 0;
		default:
			usage(stderr);
			free(pids);
			return 1;
		}
	}
	if (optind < argc || (!npids && !ao.all)) {
		log_error(optind < argc ? "unexpected argument" : "no process given: -p PID or --all");
		usage(stderr);
		free(pids);
		return 1;
	}
	t = calloc(1, sizeof(*t));
	if (!t || !(t->acc = stacks__new())) {
		log_error("out of memory");
		free(t);
		free(pids);
		return 1;
	}
	t->hz = hz;
	ao.pids = pids;
	ao.npids = npids;
	ao.hz = hz;
	ao.window_ms = 1000;
	ao.on_window = on_window;
	ao.on_tick = on_tick;
	ao.hook_ctx = t;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGWINCH, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	the_top = t;
	err = agent_start(&t->agent, &ao);
	if (!err) {
		term_setup(t);
		draw(t);
		err = agent_run(&t->agent, &top_exiting);
	}
	term_restore();
	the_top = NULL;
	agent_release(&t->agent);
	stacks__free(t->acc);
	free(t);
	free(pids);
	return err ? 1 : 0;
}
