# SPDX-License-Identifier: BSD-2-Clause
"""pprof output (user/pprof.c) read by its real consumer, `go tool pprof` (Debian golang-go):

- pprof_cpu_shares: `pysamp-bpf --format pprof -o FILE` on cpu_shares.py; the hot function
  leads `-top` with about its measured share, `-top -lines` and `-raw` give its file:line, and
  `-traces` shows its callers in order (samples are leaf first).
- pprof_hostile_labels: the profile of hostile labels written by the unit test
  (.output/san/test_pprof with PYSAMP_TEST_PPROF_OUT=FILE) loads, totals right, keeps the
  labels and prints valid UTF-8.

go runs offline and out of the way: HOME, GOCACHE, GOPATH and PPROF_TMPDIR are under the
test's scratch directory, GOPROXY=off, GOTOOLCHAIN=local, GOFLAGS=-mod=mod.
"""
import os
import re
import shutil
import subprocess

from itest import HZ, ROOT, fmt_share, indent, single, tail

UNIT_BIN = os.path.join(ROOT, ".output", "san", "test_pprof")
SHARE_TOLERANCE_PPROF = 0.15  # 3 s at 99 Hz: about 300 samples
# "      flat  flat%   sum%        cum   cum%" rows: flat, flat%, sum%, cum, cum%, name.
TOP_ROW_RE = re.compile(r"^\s*(\S+)\s+([\d.]+)%\s+([\d.]+)%\s+(\S+)\s+([\d.]+)%\s+(.*)$")
TRACE_SEP = "-----------+-------------------------------------------------------"


def _go(ctx):
    go = shutil.which("go") or "/usr/lib/go/bin/go"
    if not os.access(go, os.X_OK):
        ctx.fail("go is not installed (make deps installs golang-go)")
    return go


def _pprof(ctx, args, path):
    """`go tool pprof ARGS PATH`: (exit status, stdout bytes, stderr text)."""
    home = os.path.join(ctx.tmp, "gohome")
    env = dict(os.environ)
    env.update({
        "HOME": home,
        "GOCACHE": os.path.join(home, "cache"),
        "GOPATH": os.path.join(home, "gopath"),
        "PPROF_TMPDIR": os.path.join(home, "pprof"),
        "PPROF_BINARY_PATH": os.path.join(home, "binaries"),
        "GOFLAGS": "-mod=mod",
        "GOTOOLCHAIN": "local",
        "GOPROXY": "off",
        "GOSUMDB": "off",
        "GOTELEMETRY": "off",
    })
    for d in ("cache", "gopath", "pprof", "binaries"):
        os.makedirs(os.path.join(home, d), exist_ok=True)
    argv = [_go(ctx), "tool", "pprof"] + list(args) + [path]
    try:
        p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           stdin=subprocess.DEVNULL, env=env, cwd=ctx.tmp, timeout=180)
    except subprocess.TimeoutExpired:
        ctx.fail("%s timed out" % " ".join(argv))
    err = p.stderr.decode("utf-8", "replace")
    ctx.check(p.returncode == 0, "%s: exit status %s\n%s", " ".join(argv), p.returncode,
              indent(tail(err, 20)))
    return p.returncode, p.stdout, err


def _text(ctx, data, what):
    """data as text; pprof prints our strings as they are, so they must be valid UTF-8."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        ctx.check(False, "%s output is not valid UTF-8: %s", what, e)
        return data.decode("utf-8", "replace")


def _top_rows(text):
    """[(flat fraction, cum fraction, name)] of a -top listing, in its order."""
    rows = []
    started = False
    for line in text.splitlines():
        if not started:
            started = line.split() == ["flat", "flat%", "sum%", "cum", "cum%"]
            continue
        m = TOP_ROW_RE.match(line)
        if m:
            rows.append((float(m.group(2)) / 100.0, float(m.group(5)) / 100.0, m.group(6)))
    return rows


def _traces(text):
    """The -traces listing as [(value text, [frame, ...] leaf first)]."""
    blocks = text.split(TRACE_SEP)
    out = []
    for b in blocks[1:]:
        lines = [l for l in b.splitlines() if l.strip()]
        if not lines:
            continue
        first = lines[0].split(None, 1)
        if len(first) != 2:
            continue
        frames = [first[1].strip()] + [l.strip() for l in lines[1:]]
        out.append((first[0], frames))
    return out


def _check_agent_run(ctx, run, path):
    if run.timed_out:
        ctx.fail("profiler hung (killed after timeout)")
    for bad in ("AddressSanitizer", "UndefinedBehaviorSanitizer", "runtime error:", "Segmentation fault"):
        ctx.check(bad not in run.stderr, "profiler stderr reports %r", bad)
    if run.rc != 0:
        ctx.fail("profiler exit status %s (expected 0)" % run.rc)
    if not os.path.isfile(path):
        ctx.fail("profiler wrote no %s" % path)
    with open(path, "rb") as f:
        head = f.read(4)
    if head[:2] != b"\x1f\x8b":
        ctx.fail("%s is not gzip (starts %r)" % (path, head))


@single
def pprof_cpu_shares(ctx, interp):
    _go(ctx)
    tgt = ctx.target("cpu_shares.py", name="cpu_shares").wait_ready()
    path = os.path.join(ctx.tmp, "cpu_shares.pb.gz")
    run = ctx.profile([tgt.pid], duration=3, hz=HZ, to_file=False,
                      extra=["--format", "pprof", "-o", path])
    truth = tgt.stop()
    _check_agent_run(ctx, run, path)

    hot = truth["functions"]["heavy"]
    label, share = hot["label"], hot["share"]
    pyfile, hot_line = truth["file"], truth["hot_line"]

    # -top: by function; the hot function has the largest flat share, about its measured one.
    _, out, _ = _pprof(ctx, ["-top", "-nodefraction=0", "-nodecount=1000"], path)
    text = _text(ctx, out, "-top")
    ctx.check("Type: cpu" in text, "-top does not say 'Type: cpu':\n%s", indent(tail(text, 10)))
    rows = _top_rows(text)
    if not ctx.check(rows, "no rows in -top:\n%s", indent(tail(text, 20))):
        ctx.require()
    flat = dict((name, f) for f, _, name in rows)
    best = max(rows, key=lambda r: r[0])
    ctx.check(best[2] == label, "largest flat share is %r (%s), expected %r (%s); top rows:\n%s",
              best[2], fmt_share(best[0]), label, fmt_share(flat.get(label, 0.0)),
              indent("\n".join(text.splitlines()[:12])))
    got = flat.get(label, 0.0)
    ctx.check(abs(got - share) <= SHARE_TOLERANCE_PPROF, "%s flat share %s, target measured %s "
              "(tolerance %s)", label, fmt_share(got), fmt_share(share), fmt_share(SHARE_TOLERANCE_PPROF))
    ctx.note("%s: pprof flat %s, truth %s", label, fmt_share(got), fmt_share(share))
    root = "%s [%d]" % (tgt.comm, tgt.pid)
    cum = dict((name, c) for _, c, name in rows)
    ctx.check(cum.get(root, 0.0) > 0.99, "root %r has cum %s, expected 100%%", root,
              fmt_share(cum.get(root, 0.0)))

    # -top -lines: by line; the hot line of the hot function comes first.
    want_line = "%s %s:%d" % (label, pyfile, hot_line)
    _, out, _ = _pprof(ctx, ["-top", "-lines", "-nodefraction=0", "-nodecount=1000"], path)
    rows = _top_rows(_text(ctx, out, "-top -lines"))
    if ctx.check(rows, "no rows in -top -lines"):
        best = max(rows, key=lambda r: r[0])
        ctx.check(best[2] == want_line, "hottest line %r (%s), expected %r; rows:\n%s", best[2],
                  fmt_share(best[0]), want_line, indent("\n".join(r[2] for r in rows[:8])))

    # -raw: the location of the hot line carries function, file and line.
    _, out, _ = _pprof(ctx, ["-raw"], path)
    raw = _text(ctx, out, "-raw")
    ctx.check(re.search(r"^\s*\d+: 0x0 M=\d+ %s\b" % re.escape(want_line), raw, re.M),
              "-raw has no location %r:\n%s", want_line, indent(tail(raw, 30)))

    # -traces -lines: the hot line with its callers, leaf first, the process frame last.
    _, out, _ = _pprof(ctx, ["-traces", "-lines"], path)
    traces = _traces(_text(ctx, out, "-traces"))
    callers = ["%s %s:%d" % (name, f, line) for name, f, line in reversed(truth["caller_stack"])]
    want = [want_line] + callers + [root]
    ctx.check(any(frames == want for _, frames in traces),
              "no trace %s in -traces (%d traces), e.g.:\n%s", want, len(traces),
              indent("\n".join(" <- ".join(fr) for _, fr in traces[:3])))


@single
def pprof_hostile_labels(ctx, interp):
    _go(ctx)
    if not os.access(UNIT_BIN, os.X_OK):
        ctx.fail("%s is not built (make unit)" % UNIT_BIN)
    path = os.path.join(ctx.tmp, "hostile.pb.gz")
    env = dict(os.environ, PYSAMP_TEST_PPROF_OUT=path)
    p = subprocess.run([UNIT_BIN], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       stdin=subprocess.DEVNULL, env=env, cwd=ROOT, timeout=300)
    ctx.check(p.returncode == 0, "%s: exit status %s\n%s", UNIT_BIN, p.returncode,
              indent(tail(p.stderr.decode("utf-8", "replace"), 20)))
    if not os.path.isfile(path):
        ctx.fail("%s wrote no %s" % (UNIT_BIN, path))

    # 26 hostile stacks counting 1..26 plus the long label's 1000, at 100 Hz: 13.51 s.
    _, out, err = _pprof(ctx, ["-top", "-nodefraction=0", "-nodecount=1000"], path)
    text = _text(ctx, out, "-top")
    ctx.check("of 13.51s total" in text, "-top total is not 13.51s:\n%s",
              indent("\n".join(text.splitlines()[:6])))
    names = [name for _, _, name in _top_rows(text)]
    fffd = u"\ufffd"
    for want in ("a;b;c", "say \"hi\" 'x' \\ %s %n", "f", "x (y.py:notanumber)",
                 "g (x.py:007)", "h", "C:\\dir", "python3 [1]", "q (r.py:5) ", u"\u03c0",
                 "bad" + fffd * 2 + " name", "nul" + fffd + "byte", "a" + fffd,
                 "overlong " + fffd * 2 + " " + fffd * 3, "surrogate " + fffd * 3):
        ctx.check(want in names, "-top has no function %r", want)
    longest = max(names, key=len) if names else ""
    ctx.check(len(longest) >= 200000 and longest.startswith("ABCDEFG"),
              "the 200 kB label is missing or cut (longest name %d characters)", len(longest))

    _, out, _ = _pprof(ctx, ["-raw"], path)
    raw = _text(ctx, out, "-raw")
    for want in ("f a:b (c.py:12", "h x.py:-3", "C:\\dir x) (C:\\a:b.py:5", u"\u03c0 \u00fc.py:1",
                 "<script>alert(1)</script>", "/p" + fffd + "(.py:7"):
        ctx.check(want in raw, "-raw does not show %r", want)
    samples = re.findall(r"^\s+\d+\s+\d+: [\d ]+$", raw, re.M)
    ctx.check(len(samples) == 27, "-raw lists %d samples, expected 27", len(samples))
