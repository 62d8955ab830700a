# SPDX-License-Identifier: BSD-2-Clause
"""itest - the tiny framework behind the integration tests.

Plain Python 3 (run with /usr/bin/python3), no pytest. A test is a function
registered with @per_interpreter (expanded to one test per interpreter,
named "func[label]") or @single (one test, run with the default interpreter).
It receives a Ctx: scratch directory, target/profiler helpers and
check()/fail() that collect failure details. tests/run.py discovers and
runs them; see its --help.
"""
import bisect
import ctypes
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TESTS = os.path.dirname(HERE)
ROOT = os.path.dirname(TESTS)
TARGETS = os.path.join(TESTS, "targets")
PROFILER = os.path.join(ROOT, "pysamp-bpf")

# Sampling frequency and lengths used by the tests.
HZ = 99
SHARES_SECONDS = 15  # the accuracy checks need >= 10 s at 99 Hz; 15 s keeps 5 points > 3 sigma
SHARE_TOLERANCE = 0.05  # absolute, in share units (5 percentage points)

PYENV = "/root/.pyenv/versions"

# The contract labels every Python frame 'QUALNAME (PATH:LINE)'; a frame printed
# as 'QUALNAME (PATH)' (line unknown) is a format failure unless this is True.
ALLOW_FRAMES_WITHOUT_LINE = False


class Interp(object):
    def __init__(self, label, path):
        self.label = label
        self.path = path
        self._info = None

    @property
    def available(self):
        return os.path.isfile(self.path) and os.access(self.path, os.X_OK)

    def info(self):
        """version tuple, sys.prefix, real executable; cached."""
        if self._info is None:
            out = subprocess.run(
                [self.path, "-c", "import sys, json, os; print(json.dumps({'v': list(sys.version_info[:3]),"
                 " 'prefix': sys.prefix, 'exe': os.path.realpath(sys.executable)}))"],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60, check=True)
            self._info = json.loads(out.stdout.decode())
        return self._info

    @property
    def version(self):
        return tuple(self.info()["v"][:2])

    def __repr__(self):
        return "Interp(%s, %s)" % (self.label, self.path)


def _interpreters():
    """The interpreters under test; PYSAMP_INTERPRETERS="label=path,..." replaces the list."""
    env = os.environ.get("PYSAMP_INTERPRETERS")
    if env:
        return [Interp(*item.split("=", 1)) for item in env.split(",") if "=" in item]
    return DEFAULT_INTERPRETERS


DEFAULT_INTERPRETERS = [
    Interp("2.7", PYENV + "/2.7.18/bin/python"),
    Interp("3.6", PYENV + "/3.6.15/bin/python"),
    Interp("3.7", PYENV + "/3.7.16/bin/python"),
    Interp("3.8", PYENV + "/3.8.18/bin/python"),
    Interp("3.9", PYENV + "/3.9.18/bin/python"),
    Interp("3.10", PYENV + "/3.10.13/bin/python"),
    Interp("3.11", PYENV + "/3.11.7/bin/python"),
    Interp("3.12", PYENV + "/3.12.1/bin/python"),
    Interp("3.13", PYENV + "/3.13.0/bin/python"),
    Interp("3.11-debian", "/usr/bin/python3.11"),
]
INTERPRETERS = _interpreters()


def default_interp():
    """Interpreter for the interpreter-independent tests."""
    for label in ("3.12", "3.11-debian", "3.10", "3.13"):
        for it in INTERPRETERS:
            if it.label == label and it.available:
                return it
    for it in INTERPRETERS:
        if it.available:
            return it
    return None


# ---------------------------------------------------------------- registry

class TestCase(object):
    def __init__(self, name, func, interp, group):
        self.name = name
        self.func = func
        self.interp = interp
        self.group = group  # tests of one group run one after another
        self.exclusive = False  # runs alone, after every other test


_PER_INTERP = []
_SINGLE = []


def per_interpreter(func):
    _PER_INTERP.append(func)
    return func


def single(func):
    _SINGLE.append(func)
    return func


_EXCLUSIVE = set()


def exclusive(func):
    """A @single test that loads the whole machine (dozens of processes): it runs
    alone, after the others, so that it does not starve their targets."""
    _EXCLUSIVE.add(func)
    return single(func)


def collect():
    """Every integration TestCase, grouped by interpreter."""
    cases = []
    it = default_interp()
    for f in _SINGLE:  # first: the longest group starts first
        case = TestCase(f.__name__, f, it, "single")
        case.exclusive = f in _EXCLUSIVE
        cases.append(case)
    for it in INTERPRETERS:
        for f in _PER_INTERP:
            cases.append(TestCase("%s[%s]" % (f.__name__, it.label), f, it, it.label))
    return cases


class TestFailure(Exception):
    pass


class TestSkip(Exception):
    pass


# ---------------------------------------------------------------- folded stacks

LABEL_RE = re.compile(r"^(.*) \((.*):(-?\d+)\)$")
ROOT_PID_RE = re.compile(r"^(.*) \[(\d+)(?: ns:(\d+))?\]$")
THREAD_RE = re.compile(r"^thread (\d+)$")
NOLINE_RE = re.compile(r"^(.*) \(([^()]*)\)$")


class Frame(object):
    __slots__ = ("text", "label", "path", "line")

    def __init__(self, text):
        self.text = text
        m = LABEL_RE.match(text)
        if m:
            self.label, self.path, self.line = m.group(1), m.group(2), int(m.group(3))
            return
        m = NOLINE_RE.match(text)
        if m:  # 'NAME (PATH)': not the contract, flagged by Stack, kept for the other checks
            self.label, self.path, self.line = m.group(1), m.group(2), None
        else:
            self.label, self.path, self.line = None, None, None

    @property
    def python(self):
        return self.label is not None

    def __repr__(self):
        return self.text


class Stack(object):
    """One folded line: root, optional thread, truncated flag, Python frames."""

    def __init__(self, line, threads, merge):
        self.line = line
        self.errors = []
        text, _, count = line.rpartition(" ")
        if not text or not count.isdigit() or int(count) <= 0:
            self.errors.append("malformed line (no positive count): %r" % line[:200])
            text, count = line, "0"
        self.count = int(count)
        parts = text.split(";")
        self.root = parts[0]
        self.pid = None
        self.nspid = None
        self.comm = self.root
        if not merge:
            m = ROOT_PID_RE.match(self.root)
            if not m:
                self.errors.append("root frame is not 'COMM [PID]': %r" % self.root)
            else:
                self.comm, self.pid = m.group(1), int(m.group(2))
                self.nspid = int(m.group(3)) if m.group(3) else self.pid
        elif ROOT_PID_RE.match(self.root):
            self.errors.append("--merge root frame carries a PID: %r" % self.root)
        rest = parts[1:]
        self.tid = None
        if threads:
            m = THREAD_RE.match(rest[0]) if rest else None
            if not m:
                self.errors.append("--threads: frame after root is not 'thread TID': %r" % line[:200])
            else:
                self.tid = int(m.group(1))
                rest = rest[1:]
        self.truncated = False
        if rest and rest[0] == "[truncated]":
            self.truncated = True
            rest = rest[1:]
        self.frames = [Frame(t) for t in rest]
        for i, f in enumerate(self.frames):
            if f.python and f.line is None:
                if not ALLOW_FRAMES_WITHOUT_LINE:
                    self.errors.append("frame %d has no line number: %r" % (i, f.text))
                continue
            if f.python or f.text == "[unknown]":
                continue
            if f.text == "[truncated]":
                self.errors.append("[truncated] not right after the root/thread frame (frame %d)" % i)
            elif THREAD_RE.match(f.text):
                self.errors.append("unexpected thread frame at %d: %r" % (i, f.text))
            else:
                self.errors.append("frame %d is not 'NAME (PATH:LINE)': %r" % (i, f.text))
        if not threads and any(THREAD_RE.match(t) for t in rest[:1]):
            self.errors.append("thread frame without --threads")

    @property
    def leaf(self):
        return self.frames[-1] if self.frames else None

    def labels(self):
        return [f.label for f in self.frames]

    def has_label(self, label, path=None):
        for f in self.frames:
            if f.label == label and (path is None or f.path == path):
                return True
        return False


class Profile(object):
    def __init__(self, text, threads=False, merge=False):
        self.text = text
        self.stacks = []
        self.errors = []
        seen = set()
        for line in text.splitlines():
            if not line.strip():
                continue
            st = Stack(line, threads, merge)
            key = line.rpartition(" ")[0]
            if key in seen:
                st.errors.append("duplicate stack line: %r" % line[:200])
            seen.add(key)
            self.errors.extend(st.errors)
            self.stacks.append(st)

    def for_pid(self, pid):
        return [s for s in self.stacks if s.pid == pid]

    def total(self, stacks=None):
        return sum(s.count for s in (self.stacks if stacks is None else stacks))

    def pids(self):
        return sorted(set(s.pid for s in self.stacks if s.pid is not None))


# ---------------------------------------------------------------- processes

def read_proc(pid, what):
    try:
        with open("/proc/%d/%s" % (pid, what), "rb") as f:
            return f.read()
    except OSError:
        return None


def proc_comm(pid):
    data = read_proc(pid, "comm")
    return data.decode("utf-8", "replace").rstrip("\n") if data is not None else None


class TargetProc(object):
    """A target script under one interpreter, started by a test."""

    def __init__(self, ctx, interp, script, args, name, argv_prefix=None, env=None):
        self.ctx = ctx
        self.interp = interp
        self.name = name
        self.script = os.path.join(TARGETS, script)
        self.out = os.path.join(ctx.tmp, name + ".json")
        self.ready_path = os.path.join(ctx.tmp, name + ".ready")
        self.log = os.path.join(ctx.tmp, name + ".log")
        cmd = list(argv_prefix) if argv_prefix else [interp.path]
        cmd += [self.script] + list(args) + ["--out", self.out, "--ready", self.ready_path]
        self.cmd = cmd
        full_env = dict(os.environ)
        full_env.pop("PYTHONHOME", None)
        full_env.pop("PYTHONPATH", None)
        full_env["PYTHONDONTWRITEBYTECODE"] = "1"
        if env:
            full_env.update(env)
        self.logf = open(self.log, "wb")
        self.proc = subprocess.Popen(cmd, stdout=self.logf, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, env=full_env, close_fds=True)
        self.pid = self.proc.pid
        self.truth = None
        self.comm = None
        ctx._procs.append(self)
        with _LIVE_LOCK:
            _LIVE.add(self)

    def log_tail(self, n=30):
        try:
            with open(self.log, "rb") as f:
                lines = f.read().decode("utf-8", "replace").splitlines()
            return "\n".join(lines[-n:])
        except OSError:
            return ""

    def wait_ready(self, timeout=90):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if os.path.exists(self.ready_path):
                self.comm = proc_comm(self.pid)
                return self
            if self.proc.poll() is not None:
                self.ctx.fail("target %s exited (status %s) before ready: %s\n%s" % (
                    self.name, self.proc.returncode, " ".join(self.cmd), self.log_tail()))
            time.sleep(0.05)
        self.ctx.fail("target %s not ready after %ds: %s\n%s" % (
            self.name, timeout, " ".join(self.cmd), self.log_tail()))

    def stop(self, timeout=60):
        """SIGTERM, wait, load the truth JSON (returns it)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            self.ctx.fail("target %s did not stop on SIGTERM within %ds\n%s" % (
                self.name, timeout, self.log_tail()))
        return self.load_truth()

    def wait_exit(self, timeout=60):
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.ctx.fail("target %s still running after %ds" % (self.name, timeout))
        return self.load_truth()

    def load_truth(self):
        if self.proc.returncode not in (0, None):
            self.ctx.fail("target %s exited with status %s\n%s" % (
                self.name, self.proc.returncode, self.log_tail()))
        try:
            with open(self.out) as f:
                self.truth = json.load(f)
        except (OSError, ValueError) as e:
            self.ctx.fail("target %s wrote no usable truth (%s)\n%s" % (self.name, e, self.log_tail()))
        return self.truth

    def kill(self):
        if self.proc.poll() is None:
            try:
                self.proc.send_signal(signal.SIGTERM)
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.logf.close()
        with _LIVE_LOCK:
            _LIVE.discard(self)


_LIVE = set()
_LIVE_LOCK = threading.Lock()


def kill_all_targets():
    """Kill every target still running (the runner was interrupted)."""
    with _LIVE_LOCK:
        procs = list(_LIVE)
    for t in procs:
        try:
            t.proc.kill()
        except OSError:
            pass


class ProfRun(object):
    """A finished pysamp-bpf invocation."""

    def __init__(self, argv, rc, stdout, stderr, t_start, t_end, timed_out, output, sampling_start):
        self.argv = argv
        self.rc = rc
        self.stdout = stdout
        self.stderr = stderr
        self.t_start = t_start
        self.t_end = t_end
        self.elapsed = t_end - t_start
        self.timed_out = timed_out
        self.output = output
        self.sampling_start = sampling_start

    def describe(self):
        out = ["$ %s" % " ".join(self.argv),
               "exit status %s after %.1fs%s" % (self.rc, self.elapsed, " (TIMED OUT, killed)" if self.timed_out else "")]
        if self.stderr.strip():
            out.append("stderr:\n" + indent(tail(self.stderr, 25)))
        return "\n".join(out)


def tail(text, n):
    lines = text.splitlines()
    if len(lines) > n:
        lines = ["... (%d lines before)" % (len(lines) - n)] + lines[-n:]
    return "\n".join(lines)


def indent(text, prefix="    "):
    return "\n".join(prefix + l for l in text.splitlines())


def signal_name(rc):
    try:
        return signal.Signals(-rc).name
    except (ValueError, AttributeError):
        return "signal %d" % -rc


# ---------------------------------------------------------------- the test context

class Ctx(object):
    def __init__(self, name, tmp_root, interp):
        self.name = name
        self.interp = interp
        safe = re.sub(r"[^A-Za-z0-9_.-]", "_", name)
        self.tmp = tempfile.mkdtemp(prefix=safe + ".", dir=tmp_root)
        self.failures = []
        self.notes = []
        self._procs = []
        self.runs = []

    # checks
    def check(self, cond, msg, *args):
        if not cond:
            self.failures.append(msg % args if args else msg)
        return bool(cond)

    def fail(self, msg, *args):
        self.failures.append(msg % args if args else msg)
        raise TestFailure()

    def skip(self, msg):
        raise TestSkip(msg)

    def note(self, msg, *args):
        self.notes.append(msg % args if args else msg)

    def require(self):
        """Stop the test here if a check has failed."""
        if self.failures:
            raise TestFailure()

    # processes
    def target(self, script, args=(), name=None, interp=None, **kw):
        interp = interp or self.interp
        name = name or os.path.splitext(script)[0] + "%d" % len(self._procs)
        return TargetProc(self, interp, script, [str(a) for a in args], name, **kw)

    def cleanup(self):
        for h in getattr(self, "_async", []):
            if h["proc"].poll() is None:
                h["proc"].kill()
                h["proc"].wait()
        for p in self._procs:
            try:
                p.kill()
            except Exception:
                pass

    def profile(self, pids, duration=None, hz=HZ, threads=False, merge=False, verbose=False,
                to_file=True, extra=(), timeout=None, stop_after=None, stop_signal=signal.SIGINT,
                preexec=None, argv_prefix=()):
        """Run the profiler; returns a ProfRun. stop_after: send stop_signal then."""
        if isinstance(pids, (list, tuple)):
            pid_arg = ",".join(str(p) for p in pids)
        else:
            pid_arg = str(pids)
        argv = list(argv_prefix) + [PROFILER, "-p", pid_arg]
        if hz is not None:
            argv += ["-F", str(hz)]
        if duration is not None:
            argv += ["-d", str(duration)]
        out_path = None
        if to_file:
            out_path = os.path.join(self.tmp, "profile%d.folded" % len(self.runs))
            argv += ["-o", out_path]
        if verbose:
            argv.append("-v")
        if threads:
            argv.append("--threads")
        if merge:
            argv.append("--merge")
        argv += list(extra)
        if timeout is None:
            timeout = (duration if duration is not None else (stop_after or 0)) + 60
        stdout_path = os.path.join(self.tmp, "prof%d.stdout" % len(self.runs))
        stderr_lines = []
        sampling = [None]

        t_start = time.time()
        with open(stdout_path, "wb") as so:
            proc = subprocess.Popen(argv, stdout=so, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                                    close_fds=True, preexec_fn=preexec)

            def reader():
                for raw in iter(proc.stderr.readline, b""):
                    line = raw.decode("utf-8", "replace")
                    stderr_lines.append(line)
                    if sampling[0] is None and "sampling" in line.lower():
                        sampling[0] = time.time()
            rt = threading.Thread(target=reader)
            rt.daemon = True
            rt.start()
            timed_out = False
            try:
                if stop_after is not None:
                    try:
                        proc.wait(stop_after)
                    except subprocess.TimeoutExpired:
                        proc.send_signal(stop_signal)
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                timed_out = True
                proc.kill()
                proc.wait()
            t_end = time.time()
            rt.join(10)
        with open(stdout_path, "rb") as f:
            stdout = f.read().decode("utf-8", "replace")
        output = stdout
        if out_path is not None:
            try:
                with open(out_path, "rb") as f:
                    output = f.read().decode("utf-8", "replace")
            except OSError:
                output = None
        run = ProfRun(argv, proc.returncode, stdout, "".join(stderr_lines), t_start, t_end,
                      timed_out, output, sampling[0])
        self.runs.append(run)
        return run

    def profile_async(self, argv):
        """Start the profiler with argv (must include -o FILE) and return at once."""
        n = len(self.runs) + len(getattr(self, "_async", []))
        err_path = os.path.join(self.tmp, "async%d.stderr" % n)
        errf = open(err_path, "wb")
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=errf,
                                stdin=subprocess.DEVNULL, close_fds=True)
        handle = {"argv": argv, "proc": proc, "errf": errf, "err_path": err_path,
                  "t_start": time.time()}
        self._async = getattr(self, "_async", []) + [handle]
        return handle

    def profile_async_stop(self, handle, sig=signal.SIGINT, timeout=60):
        """Stop a profile_async() run with sig; its ProfRun."""
        proc = handle["proc"]
        timed_out = False
        if proc.poll() is None:
            proc.send_signal(sig)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            proc.kill()
            proc.wait()
        handle["errf"].close()
        with open(handle["err_path"], "rb") as f:
            stderr = f.read().decode("utf-8", "replace")
        argv = handle["argv"]
        output = None
        if "-o" in argv:
            try:
                with open(argv[argv.index("-o") + 1], "rb") as f:
                    output = f.read().decode("utf-8", "replace")
            except OSError:
                output = None
        run = ProfRun(argv, proc.returncode, "", stderr, handle["t_start"], time.time(),
                      timed_out, output, None)
        self.runs.append(run)
        return run

    def start_agent(self, args, listen=True, timeout=60, prefix=()):
        """Start pysamp-bpf with args (plus --listen 127.0.0.1:0 and -v), under prefix (e.g.
        valgrind); wait until it samples. Returns the profile_async handle with "port" (None
        without listen)."""
        argv = list(prefix) + [PROFILER] + list(args) + ["-v"]
        if listen:
            argv += ["--listen", "127.0.0.1:0"]
        h = self.profile_async(argv)
        h["port"] = None
        deadline = time.time() + timeout
        while time.time() < deadline:
            with open(h["err_path"], "rb") as f:
                text = f.read().decode("utf-8", "replace")
            m = re.search(r"serving on port (\d+)", text)
            if m:
                h["port"] = int(m.group(1))
            if "sampling" in text and (h["port"] or not listen):
                return h
            if h["proc"].poll() is not None:
                self.fail("agent exited (status %s) before sampling:\n%s" % (
                    h["proc"].returncode, indent(tail(text, 20))))
            time.sleep(0.1)
        self.fail("agent not sampling after %d s" % timeout)

    def expect_success(self, run, threads=False, merge=False):
        """The run exited 0 and wrote well-formed folded stacks: its Profile."""
        if run.timed_out:
            self.fail("profiler hung (killed after timeout)")
        if run.rc is not None and run.rc < 0:
            self.fail("profiler killed by %s" % signal_name(run.rc))
        for bad in ("AddressSanitizer", "UndefinedBehaviorSanitizer", "runtime error:", "Segmentation fault"):
            self.check(bad not in run.stderr, "profiler stderr reports %r", bad)
        if run.rc != 0:
            self.fail("profiler exit status %s (expected 0)" % run.rc)
        if run.output is None:
            self.fail("profiler wrote no output file")
        prof = Profile(run.output, threads=threads, merge=merge)
        if prof.errors:
            # Recorded, but the test goes on: its own checks say more about the content.
            self.failures.append("malformed output (%d problems):\n%s" % (
                len(prof.errors), indent("\n".join(prof.errors[:10]))))
        return prof

    def expect_error(self, run, names):
        """The run failed cleanly: non-zero status (not a signal), stderr naming names."""
        if run.timed_out:
            self.fail("profiler hung (killed after timeout)")
        if run.rc is not None and run.rc < 0:
            self.fail("profiler killed by %s" % signal_name(run.rc))
        self.check(run.rc != 0, "exit status 0, expected a failure")
        self.check(run.stderr.strip() != "", "no message on stderr")
        for n in names:
            self.check(str(n) in run.stderr, "stderr does not name %r", str(n))
        for bad in ("AddressSanitizer", "runtime error:", "Segmentation fault"):
            self.check(bad not in run.stderr, "profiler stderr reports %r", bad)


def http_get(port, path, method="GET", timeout=30, body=None, headers=None):
    """(status, {header: value} lower-cased, body text) of one request to 127.0.0.1:port."""
    import http.client
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        data = resp.read().decode("utf-8", "replace")
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data
    finally:
        conn.close()


PROM_LINE_RE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([a-zA-Z_][a-zA-Z0-9_]*="[^"\\]*"'
                          r'(,[a-zA-Z_][a-zA-Z0-9_]*="[^"\\]*")*)?\})? (-?[0-9.eE+-]+|NaN|[+-]Inf)$')


def parse_prometheus(text):
    """Prometheus text format 0.0.4: {(name, labels-string): value}; raises ValueError."""
    out = {}
    typed = set()
    for line in text.splitlines():
        if not line:
            continue
        if line.startswith("# HELP "):
            continue
        if line.startswith("# TYPE "):
            parts = line.split()
            if len(parts) != 4 or parts[3] not in ("counter", "gauge", "untyped", "summary", "histogram"):
                raise ValueError("bad TYPE line %r" % line)
            if parts[2] in typed:
                raise ValueError("TYPE given twice for %s" % parts[2])
            typed.add(parts[2])
            continue
        if line.startswith("#"):
            continue
        m = PROM_LINE_RE.match(line)
        if not m:
            raise ValueError("bad sample line %r" % line)
        if m.group(1) not in typed:
            raise ValueError("sample %s before its TYPE line" % m.group(1))
        key = (m.group(1), m.group(3) or "")
        if key in out:
            raise ValueError("duplicate sample %r" % (key,))
        out[key] = float(m.group(5))
    return out


def run_case(case, tmp_root, keep=False):
    """Run one TestCase: (status, seconds, details, tmpdir). status PASS/FAIL/SKIP."""
    ctx = None
    t0 = time.time()
    status = "PASS"
    details = []
    try:
        ctx = Ctx(case.name, tmp_root, case.interp)
        case.func(ctx, case.interp)
        if ctx.failures:
            status = "FAIL"
    except TestFailure:
        status = "FAIL"
    except TestSkip as e:
        status = "SKIP"
        details.append(str(e))
    except Exception:
        import traceback
        status = "FAIL"
        details.append("test raised:\n" + indent(traceback.format_exc().rstrip()))
    finally:
        if ctx is not None:
            ctx.cleanup()
    if ctx is not None:
        details = ctx.failures + details
        if status == "FAIL":
            for r in ctx.runs[-2:]:
                details.append(r.describe())
            details.append("scratch directory kept: %s" % ctx.tmp)
        elif not keep:
            shutil.rmtree(ctx.tmp, ignore_errors=True)
    return status, time.time() - t0, details, (ctx.notes if ctx else [])


# ---------------------------------------------------------------- environment probes

def bpf_available():
    """(ok, reason): can this process create a BPF map and a cpu-clock perf event?"""
    if os.geteuid() != 0:
        return False, "not root"
    arch = platform.machine()
    nr = {"x86_64": (321, 298), "aarch64": (280, 241)}.get(arch)
    if nr is None:
        return True, "unknown arch %s, not probed" % arch
    nr_bpf, nr_perf = nr
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    attr = ctypes.create_string_buffer(128)
    # BPF_MAP_CREATE: map_type=ARRAY(2), key_size=4, value_size=8, max_entries=1
    ctypes.memmove(attr, (ctypes.c_uint32 * 4)(2, 4, 8, 1), 16)
    fd = libc.syscall(ctypes.c_long(nr_bpf), ctypes.c_long(0), attr, ctypes.c_long(128))
    if fd < 0:
        return False, "bpf(BPF_MAP_CREATE) failed: %s" % os.strerror(ctypes.get_errno())
    os.close(fd)
    pattr = ctypes.create_string_buffer(128)
    # perf_event_attr: type=SOFTWARE(1), size=128, config=CPU_CLOCK(0), sample_period=1e6, disabled
    ctypes.memmove(pattr, (ctypes.c_uint32 * 2)(1, 128), 8)
    ctypes.memmove(ctypes.byref(pattr, 16), (ctypes.c_uint64 * 1)(1000000), 8)
    ctypes.memmove(ctypes.byref(pattr, 40), (ctypes.c_uint64 * 1)(1), 8)
    fd = libc.syscall(ctypes.c_long(nr_perf), pattr, ctypes.c_long(-1), ctypes.c_long(0),
                      ctypes.c_long(-1), ctypes.c_long(8))
    if fd < 0:
        return False, "perf_event_open(cpu-clock) failed: %s" % os.strerror(ctypes.get_errno())
    os.close(fd)
    return True, "ok"


# ---------------------------------------------------------------- truth helpers

def series_at(series, t):
    """CPU seconds at wall time t, linear between points of [wall, cpu]."""
    if not series:
        return 0.0
    walls = [p[0] for p in series]
    i = bisect.bisect_right(walls, t)
    if i == 0:
        return series[0][1] if t >= walls[0] else 0.0
    if i >= len(series):
        return series[-1][1]
    (w0, c0), (w1, c1) = series[i - 1], series[i]
    if w1 <= w0:
        return c1
    return c0 + (c1 - c0) * (t - w0) / (w1 - w0)


def fmt_share(x):
    return "%.1f%%" % (100.0 * x)
