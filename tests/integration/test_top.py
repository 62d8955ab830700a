# SPDX-License-Identifier: BSD-2-Clause
"""pysamp-bpf top in a real terminal (tmux, 80x24): the target's hot function
leads the table within a few seconds, the per-process key and the sort keys
work, nothing is wider than the terminal, and q quits cleanly (exit status
0, the terminal's main screen back)."""
import os
import shutil
import subprocess
import time

from itest import ROOT, single

PROFILER = os.path.join(ROOT, "pysamp-bpf")


def _tmux(*args):
    return subprocess.run(["tmux"] + list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          timeout=30)


def _screen(session):
    return _tmux("capture-pane", "-p", "-t", session).stdout.decode("utf-8", "replace")


@single
def top_in_tmux(ctx, interp):
    if not shutil.which("tmux"):
        ctx.fail("tmux is not installed (make deps installs it)")
    t = ctx.target("cpu_shares.py", [], name="shares").wait_ready()
    other = ctx.target("cpu_shares.py", [], name="shares2").wait_ready()
    session = "pysamp-top-%d" % os.getpid()
    status = os.path.join(ctx.tmp, "status")
    cmd = "%s top -p %d,%d; echo $? > %s" % (PROFILER, t.pid, other.pid, status)
    r = _tmux("new-session", "-d", "-s", session, "-x", "80", "-y", "24", cmd)
    ctx.check(r.returncode == 0, "tmux: %s", r.stderr)
    ctx.require()
    try:
        deadline = time.time() + 20
        screen = ""
        while time.time() < deadline:
            time.sleep(0.5)
            screen = _screen(session)
            if "Worker.heavy" in screen and "samples in the last second" in screen:
                break
        lines = screen.splitlines()
        ctx.note("screen:\n%s", screen)
        rows = [l for l in lines if "%" in l and "SELF%" not in l]
        ctx.check(rows and "Worker.heavy" in rows[0], "hot function not on top:\n%s", screen)
        ctx.check(all(len(l) <= 80 for l in lines), "a line wider than 80 columns")
        ctx.check(len(lines) <= 24, "more rows than the terminal")
        ctx.check("2 processes" in lines[0], "header: %r", lines[0])
        # one process only, then sort by total (the callers, 100%, lead)
        _tmux("send-keys", "-t", session, "p")
        time.sleep(1.5)
        screen = _screen(session)
        ctx.check("pid %d" % t.pid in screen.splitlines()[0] or
                  "pid %d" % other.pid in screen.splitlines()[0], "p key: %r",
                  screen.splitlines()[0])
        _tmux("send-keys", "-t", session, "t")
        time.sleep(1.5)
        rows = [l for l in _screen(session).splitlines() if "%" in l and "SELF%" not in l]
        ctx.check(rows and rows[0].split()[1] in ("100.0%",) and
                  any(x in rows[0] for x in ("<module>", "main", "run")),
                  "sort by total: %s", rows[:3])
        _tmux("send-keys", "-t", session, "q")
        deadline = time.time() + 10
        while time.time() < deadline and not os.path.exists(status):
            time.sleep(0.2)
        ctx.check(os.path.exists(status), "top did not quit on q")
        if os.path.exists(status):
            with open(status) as f:
                ctx.check(f.read().strip() == "0", "exit status after q")
            # the main screen is back: the table is gone from the pane
            ctx.check("SELF%" not in _screen(session), "alternate screen not left")
    finally:
        _tmux("kill-session", "-t", session)
    t.stop()
    other.stop()


@single
def progress_on_a_terminal(ctx, interp):
    """A --duration run shows elapsed time, samples and processes on stderr when it is a
    terminal (and nothing of the kind when it is not: see every other test's stderr)."""
    t = ctx.target("cpu_shares.py", [], name="shares").wait_ready()
    session = "pysamp-progress-%d" % os.getpid()
    out = os.path.join(ctx.tmp, "p.folded")
    status = os.path.join(ctx.tmp, "status")
    cmd = "%s -p %d -d 4 -o %s; echo $? > %s; sleep 30" % (PROFILER, t.pid, out, status)
    r = _tmux("new-session", "-d", "-s", session, "-x", "80", "-y", "24", cmd)
    ctx.check(r.returncode == 0, "tmux: %s", r.stderr)
    ctx.require()
    seen = []
    try:
        deadline = time.time() + 20
        while time.time() < deadline and not os.path.exists(status):
            seen.append(_screen(session))
            time.sleep(0.4)
        final = _screen(session)
    finally:
        _tmux("kill-session", "-t", session)
    t.stop()
    import re
    mid = [m for s in seen for m in re.findall(r"pysamp-bpf: (\d+)/4 s, (\d+) samples, (\d+) processes", s)]
    ctx.check(any(int(e) >= 1 and int(n) > 0 and p == "1" for e, n, p in mid),
              "no progress line while running: %s", seen[-1:] if seen else None)
    ctx.check(re.search(r"pysamp-bpf: 4/4 s, \d+ samples, 1 processes", final),
              "final progress line: %s", final)
    ctx.check(os.path.exists(out) and os.path.getsize(out) > 0, "no output written")
