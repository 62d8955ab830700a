# SPDX-License-Identifier: BSD-2-Clause
"""pysamp-bpf dump: every thread's Python stack, read from the process's memory.

Against tests/targets/sleeper.py (threads parked in time.sleep, a lock, an event, a
generator, a C -> Python call, a non-ASCII function and file, and one busy loop) under
every interpreter: the text dump and the --json dump give each thread exactly the stack
the interpreter reports for itself (names, files, lines, outermost first), its kernel
thread id and name, the main thread, idle/active, and the GIL holder. Errors: a process
that is not Python, a PID that does not exist, bad arguments; a process that exits while
it is being dumped gets a clean failure or a good dump, never a crash.

PYSAMP_DUMP="CMD ARGS" replaces "./pysamp-bpf dump" (e.g. a driver calling dump_main).
"""
import json
import os
import re
import shlex
import signal
import subprocess
import threading
import time

from itest import PROFILER, ProfRun, per_interpreter, single

BOGUS_PID = 999999999
UNREADABLE = "<unreadable frame>"

PROCESS_RE = re.compile(r'^Process (\d+) "(.*)": Python (\S+) \((.*)\)$')
HEADER_RE = re.compile(r'^Thread (\d+|0x[0-9a-f]+)(?: \((idle|active)\))?(?: "(.*?)")?'
                       r'((?: \[[^\]]+\])*)$')
FILE_RE = re.compile(r'^  File "(.*)", line (-?\d+), in (.*)$')


def dump_argv():
    env = os.environ.get("PYSAMP_DUMP")
    return shlex.split(env) if env else [PROFILER, "dump"]


def run_dump(ctx, args, timeout=60, record=True):
    """Run the dump command; a ProfRun (stdout decoded leniently, raw bytes in .raw)."""
    argv = dump_argv() + [str(a) for a in args]
    t0 = time.time()
    timed_out = False
    try:
        p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           stdin=subprocess.DEVNULL, timeout=timeout)
        rc, out, err = p.returncode, p.stdout, p.stderr
    except subprocess.TimeoutExpired as e:
        rc, out, err, timed_out = None, e.stdout or b"", e.stderr or b"", True
    run = ProfRun(argv, rc, out.decode("utf-8", "replace"), err.decode("utf-8", "replace"),
                  t0, time.time(), timed_out, out.decode("utf-8", "replace"), None)
    run.raw = out
    if record:
        ctx.runs.append(run)
    return run


def sane(ctx, run):
    """No hang, no signal, no sanitizer report. False (recorded) otherwise."""
    ok = ctx.check(not run.timed_out, "dump hung (killed after timeout): %s", " ".join(run.argv))
    ok = ok and ctx.check(run.rc is None or run.rc >= 0, "dump killed by signal %s",
                          -(run.rc or 0))
    for bad in ("AddressSanitizer", "UndefinedBehaviorSanitizer", "runtime error:",
                "Segmentation fault", "LeakSanitizer"):
        ok = ctx.check(bad not in run.stderr, "dump stderr reports %r", bad) and ok
    return ok


def expect_ok(ctx, run):
    if not sane(ctx, run):
        ctx.fail("dump did not run cleanly")
    if run.rc != 0:
        ctx.fail("dump exit status %s (expected 0):\n%s" % (run.rc, run.stderr[-2000:]))
    try:
        return run.raw.decode("utf-8")
    except UnicodeDecodeError as e:
        ctx.fail("dump output is not valid UTF-8: %s" % e)


def expect_error(ctx, run, names):
    if not sane(ctx, run):
        return
    ctx.check(run.rc == 1, "exit status %s, expected 1", run.rc)
    ctx.check(run.stderr.strip() != "", "no message on stderr")
    ctx.check(len(run.stderr.strip().splitlines()) <= 30, "too much on stderr: %r",
              run.stderr[:500])
    for n in names:
        ctx.check(str(n).lower() in run.stderr.lower(), "stderr does not name %r: %r",
                  str(n), run.stderr[:300])


def parse_text(ctx, text):
    """{"pid", "comm", "python", "path", "threads": [{"id", "state", "name", "tags",
    "frames": [[name, file, line], ...]}]}; format problems are failures."""
    lines = text.split("\n")
    m = PROCESS_RE.match(lines[0]) if lines else None
    if not m:
        ctx.fail("first line is not 'Process PID \"COMM\": Python X (PATH)': %r" % lines[:1])
    out = {"pid": int(m.group(1)), "comm": m.group(2), "python": m.group(3),
           "path": m.group(4), "threads": []}
    cur = None
    for n, line in enumerate(lines[1:], 2):
        if line == "":
            cur = None
            continue
        h = HEADER_RE.match(line)
        if h and cur is None:
            ident = h.group(1)
            cur = {"id": int(ident, 16) if ident.startswith("0x") else int(ident),
                   "hex": ident.startswith("0x"), "state": h.group(2), "name": h.group(3),
                   "tags": re.findall(r"\[([^\]]+)\]", h.group(4) or ""), "frames": [],
                   "notes": []}
            out["threads"].append(cur)
            continue
        if cur is None:
            ctx.check(False, "line %d outside a thread block: %r", n, line)
            continue
        f = FILE_RE.match(line)
        if f:
            cur["frames"].append([f.group(3), f.group(1), int(f.group(2))])
        elif line == "  " + UNREADABLE:
            cur["frames"].append([UNREADABLE, None, None])
        elif line.startswith("  ") and line.strip().startswith(("(", "...")):
            cur["notes"].append(line.strip())
        else:
            ctx.check(False, "line %d is not a frame: %r", n, line)
    for ch in text:
        if ord(ch) < 0x20 and ch != "\n":
            ctx.check(False, "unescaped control character %r in the text dump", ch)
            break
    return out


def python_matches(truth_version, dumped):
    """The dump's version is the interpreter's, or its major.minor when no more is known."""
    return dumped == truth_version or truth_version.startswith(dumped + ".")


def fmt_stack(stack):
    return "\n".join("      %s (%s:%s)" % tuple(f) for f in stack)


def compare(ctx, what, truth, threads, gil_known):
    """threads: [{"tid", "name", "state", "main", "gil", "frames"}] from one dump."""
    by_tid = {}
    for t in threads:
        ctx.check(t["tid"] not in by_tid, "%s: thread %s listed twice", what, t["tid"])
        by_tid[t["tid"]] = t
    want = dict((t["tid"], t) for t in truth["threads"])
    ctx.check(sorted(by_tid) == sorted(want), "%s: threads %s, expected %s", what,
              sorted(by_tid), sorted(want))
    holders = [t["tid"] for t in threads if t["gil"]]
    for tid, tt in sorted(want.items()):
        t = by_tid.get(tid)
        if t is None:
            continue
        kind = tt["kind"]
        if not ctx.check(t["frames"] == tt["stack"],
                         "%s: thread %s (%s) stack differs:\n    dumped:\n%s\n    expected:\n%s",
                         what, tid, kind, fmt_stack(t["frames"]), fmt_stack(tt["stack"])):
            continue
        ctx.check(t["main"] == tt["main"], "%s: thread %s (%s) main=%s, expected %s", what,
                  tid, kind, t["main"], tt["main"])
        state = "active" if tt["busy"] else "idle"
        ctx.check(t["state"] == state, "%s: thread %s (%s) is %r, expected %r", what, tid,
                  kind, t["state"], state)
        if tt["os_name"] is not None:
            ctx.check(t["name"] == tt["os_name"], "%s: thread %s (%s) named %r, expected %r",
                      what, tid, kind, t["name"], tt["os_name"])
    busy = [t["tid"] for t in truth["threads"] if t["busy"]]
    # The busy thread keeps the GIL: nobody else wants it. (2.7 drops and retakes it every
    # 100 bytecodes, so there it may be seen free.)
    ctx.check(holders in ([], busy) if not gil_known else holders == busy,
              "%s: GIL holder %s, expected %s", what, holders, busy)


def wait_parked(ctx, tgt, truth, timeout=10):
    """The workers are parked before the target says it is ready, but its main thread
    only parks after that: dump until the main thread is seen in its sleep."""
    leaf = [t for t in truth["threads"] if t["main"]][0]["stack"][-1]
    deadline = time.time() + timeout
    while True:
        run = run_dump(ctx, ["-p", tgt.pid], record=False)
        if run.rc == 0:
            for line in reversed(run.stdout.split("\n\n")[1].splitlines()
                                 if "\n\n" in run.stdout else []):
                f = FILE_RE.match(line)
                if f and [f.group(3), f.group(1), int(f.group(2))] == leaf:
                    return
                break
        if time.time() > deadline:
            return  # the comparisons that follow say what is wrong
        time.sleep(0.05)


@per_interpreter
def dump_threads(ctx, interp):
    tgt = ctx.target("sleeper.py", name="sleeper").wait_ready()
    truth = tgt.load_truth()
    ctx.check(truth["pid"] == tgt.pid, "truth pid %s != %s", truth["pid"], tgt.pid)
    py3 = tuple(truth["version"]) >= (3, 0)
    wait_parked(ctx, tgt, truth)

    # Text, twice: the process is neither stopped nor changed by a dump.
    for attempt in range(2):
        text = expect_ok(ctx, run_dump(ctx, ["-p", tgt.pid]))
        d = parse_text(ctx, text)
        ctx.check(d["pid"] == tgt.pid, "text: Process %s, expected %s", d["pid"], tgt.pid)
        ctx.check(python_matches(truth["python"], d["python"]), "text: Python %r, expected %r",
                  d["python"], truth["python"])
        threads = []
        for t in d["threads"]:
            ctx.check(not t["hex"], "text: thread %s without a kernel thread id", t["id"])
            ctx.check(not t["notes"], "text: thread %s notes %s", t["id"], t["notes"])
            threads.append({"tid": t["id"], "name": t["name"], "state": t["state"],
                            "main": "main" in t["tags"], "gil": "holds GIL" in t["tags"],
                            "frames": t["frames"]})
        ctx.check(d["threads"] and "main" in d["threads"][0]["tags"],
                  "text: the main thread does not come first")
        compare(ctx, "text", truth, threads, py3)
    ctx.require()

    out = expect_ok(ctx, run_dump(ctx, ["-p", tgt.pid, "--json"]))
    try:
        j = json.loads(out)
    except ValueError as e:
        ctx.fail("--json output does not parse: %s\n%s" % (e, out[:500]))
    ctx.check(j.get("pid") == tgt.pid, "json: pid %r", j.get("pid"))
    ctx.check(python_matches(truth["python"], j.get("python", "")), "json: python %r, expected %r",
              j.get("python"), truth["python"])
    idents = dict((t["tid"], t["ident"]) for t in truth["threads"])
    threads = []
    for t in j.get("threads", []):
        ctx.check(set(t) >= {"tid", "thread_id", "main", "frames"}, "json: thread keys %s",
                  sorted(t))
        ctx.check(idents.get(t.get("tid")) == t.get("thread_id"),
                  "json: thread %s has thread_id %s, expected the threading ident %s",
                  t.get("tid"), t.get("thread_id"), idents.get(t.get("tid")))
        ctx.check(t.get("truncated") is False, "json: thread %s truncated", t.get("tid"))
        if py3:
            ctx.check(t.get("gil") in (True, False), "json: thread %s gil %r", t.get("tid"),
                      t.get("gil"))
        threads.append({"tid": t.get("tid"), "name": t.get("name"), "state": t.get("state"),
                        "main": t.get("main"), "gil": t.get("gil") is True,
                        "frames": [[f.get("name"), f.get("file"), f.get("line")]
                                   for f in t.get("frames", [])]})
    compare(ctx, "json", truth, threads, py3)
    tgt.kill()


@per_interpreter
def dump_while_exiting(ctx, interp):
    """Dumps back to back while targets start, run, finalise and exit (normally or killed):
    each dump succeeds or fails cleanly with a message, none crashes or hangs."""
    results = []
    for rnd in range(3):
        tgt = ctx.target("idle.py", ["--mode", "spin", "--duration", "0.3"], name="exit%d" % rnd)
        stop = []

        def loop(pid=tgt.pid):
            while not stop:
                results.append(run_dump(ctx, ["-p", pid], timeout=30, record=False))
        th = threading.Thread(target=loop)
        th.daemon = True
        th.start()
        if rnd == 2:  # killed at once instead of finishing
            tgt.wait_ready()
            tgt.proc.send_signal(signal.SIGKILL)
        try:
            tgt.proc.wait(30)
        except subprocess.TimeoutExpired:
            pass
        time.sleep(0.2)
        stop.append(True)
        th.join(60)
        tgt.kill()
    ok = failed = 0
    for run in results:
        if not sane(ctx, run):
            ctx.runs.append(run)
            break
        if run.rc == 0:
            ok += 1
            ctx.check(run.stdout.startswith("Process "), "rc 0 without a dump: %r",
                      run.stdout[:200])
        else:
            failed += 1
            if not ctx.check(run.rc == 1 and run.stderr.strip(),
                             "exit status %s, stderr %r", run.rc, run.stderr[:300]):
                ctx.runs.append(run)
                break
    ctx.check(ok > 0, "no dump succeeded in %d tries while the targets ran", len(results))
    ctx.check(failed > 0, "no dump failed in %d tries, though the targets exited", len(results))
    ctx.note("%d dumps: %d succeeded, %d failed cleanly", len(results), ok, failed)


def _sleep_process(ctx):
    p = subprocess.Popen(["sleep", "600"], stdin=subprocess.DEVNULL)

    class _Killer(object):
        def kill(self):
            p.kill()
            p.wait()
    ctx._procs.append(_Killer())
    time.sleep(0.2)
    return p.pid


@single
def dump_not_python(ctx, interp):
    pid = _sleep_process(ctx)
    expect_error(ctx, run_dump(ctx, ["-p", pid]), [pid, "python"])
    expect_error(ctx, run_dump(ctx, ["-p", pid, "--json"]), [pid])


@single
def dump_bad_pid(ctx, interp):
    expect_error(ctx, run_dump(ctx, ["-p", BOGUS_PID]), [BOGUS_PID, "no such process"])
    expect_error(ctx, run_dump(ctx, ["-p", 2]), [2])  # kthreadd: no memory, no maps


@single
def dump_arguments(ctx, interp):
    run = run_dump(ctx, ["--help"])
    if sane(ctx, run):
        ctx.check(run.rc == 0 and "Usage" in run.stdout and "--json" in run.stdout,
                  "--help: status %s, stdout %r", run.rc, run.stdout[:200])
    expect_error(ctx, run_dump(ctx, []), ["-p"])
    expect_error(ctx, run_dump(ctx, ["-p", "abc"]), ["abc"])
    expect_error(ctx, run_dump(ctx, ["-p", "12,34"]), ["12,34"])
    expect_error(ctx, run_dump(ctx, ["-p", "0"]), ["0"])
    expect_error(ctx, run_dump(ctx, ["-p"]), ["-p"])
    expect_error(ctx, run_dump(ctx, ["-p", "1", "-p", "2"]), ["-p"])
    expect_error(ctx, run_dump(ctx, ["-p", "1", "--bogus"]), ["--bogus"])
    expect_error(ctx, run_dump(ctx, ["-p", "1", "extra"]), ["extra"])
