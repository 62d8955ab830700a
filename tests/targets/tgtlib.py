# SPDX-License-Identifier: BSD-2-Clause
"""Shared helpers for the profiling targets in tests/targets/.

Runs unchanged on CPython 2.7 and 3.6+. Every target:
  * takes --out PATH (JSON ground truth written when it finishes),
    --duration SECONDS (0: run until SIGTERM/SIGINT) and --ready PATH;
  * prints "READY pid=N" to stdout (flushed) and writes the --ready file
    once it is in its steady state, so a test knows when to start profiling;
  * measures its own ground truth with thread CPU time.
"""
from __future__ import print_function, division

import json
import os
import signal
import sys
import threading
import time

PY2 = sys.version_info[0] == 2
if PY2:
    RANGE = xrange  # noqa: F821 (Python 2 only)
else:
    RANGE = range

# A target never outlives this, even if the test that started it died.
SAFETY_LIFETIME = 900.0


def _make_thread_cpu():
    """Pick the best per-thread CPU clock: returns (function, description)."""
    f = getattr(time, "thread_time", None)  # 3.7+
    if f is not None:
        return f, "time.thread_time"
    cg = getattr(time, "clock_gettime", None)  # 3.3+
    cid = getattr(time, "CLOCK_THREAD_CPUTIME_ID", None)
    if cg is not None and cid is not None:
        def thread_cpu_cg():
            return cg(cid)
        return thread_cpu_cg, "time.clock_gettime(CLOCK_THREAD_CPUTIME_ID)"
    try:
        import ctypes

        class Timespec(ctypes.Structure):
            _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]

        libc = ctypes.CDLL(None, use_errno=True)
        cgt = libc.clock_gettime
        cgt.argtypes = [ctypes.c_int, ctypes.POINTER(Timespec)]
        cgt.restype = ctypes.c_int

        def thread_cpu_ctypes():
            ts = Timespec()  # per call: threads must not share it
            if cgt(3, ctypes.byref(ts)) != 0:  # CLOCK_THREAD_CPUTIME_ID
                raise OSError(ctypes.get_errno(), "clock_gettime")
            return ts.tv_sec + ts.tv_nsec * 1e-9

        thread_cpu_ctypes()
        return thread_cpu_ctypes, "ctypes clock_gettime(CLOCK_THREAD_CPUTIME_ID)"
    except Exception:
        pass
    import resource

    def thread_cpu_rusage():
        ru = resource.getrusage(1)  # RUSAGE_THREAD
        return ru.ru_utime + ru.ru_stime
    return thread_cpu_rusage, "getrusage(RUSAGE_THREAD)"


thread_cpu, THREAD_CPU_SOURCE = _make_thread_cpu()


def process_cpu():
    t = os.times()
    return t[0] + t[1]


def _make_native_tid():
    f = getattr(threading, "get_native_id", None)  # 3.8+
    if f is not None:
        return f
    try:
        import ctypes
        import platform
        nr = {"x86_64": 186, "amd64": 186, "aarch64": 178, "arm64": 178,
              "i386": 224, "i686": 224}.get(platform.machine().lower())
        if nr is None:
            raise OSError("unknown SYS_gettid")
        libc = ctypes.CDLL(None, use_errno=True)
        sysc = libc.syscall
        sysc.restype = ctypes.c_long

        def native_tid_ctypes():
            return int(sysc(nr))
        if native_tid_ctypes() <= 0:
            raise OSError("syscall(SYS_gettid) failed")
        return native_tid_ctypes
    except Exception:
        pass

    def native_tid_proc():
        # "/proc/thread-self" -> "PID/task/TID"
        return int(os.readlink("/proc/thread-self").split("/")[-1])
    return native_tid_proc


native_tid = _make_native_tid()


def code_label(func_or_code):
    """The frame label the profiler must print: co_qualname (3.11+) or co_name."""
    code = getattr(func_or_code, "__code__", func_or_code)
    return getattr(code, "co_qualname", code.co_name)


def marker_line(func, marker):
    """Absolute line number of the line of func's source ending with marker."""
    import inspect
    lines, first = inspect.getsourcelines(func)
    hits = [first + i for i, text in enumerate(lines) if text.rstrip().endswith(marker)]
    if len(hits) != 1:
        raise RuntimeError("marker %r found %d times in %s" % (marker, len(hits), func))
    return hits[0]


def write_json(path, obj):
    tmp = "%s.tmp.%d" % (path, os.getpid())
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=1, sort_keys=True)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())
    os.rename(tmp, path)


def base_truth():
    return {
        "pid": os.getpid(),
        "python": sys.version.split()[0],
        "version": list(sys.version_info[:2]),
        "executable": sys.executable,
        "argv0": sys.argv[0],
        "cpu_clock": THREAD_CPU_SOURCE,
    }


class Target(object):
    """Argument parsing, ready signalling and stop handling."""

    def __init__(self, description, positional=None):
        import argparse
        p = argparse.ArgumentParser(description=description)
        for name, kind, helptext in positional or []:
            p.add_argument(name, type=kind, help=helptext)
        p.add_argument("--out", required=True, help="JSON ground truth written here at the end")
        p.add_argument("--duration", type=float, default=0.0,
                       help="seconds to run after ready (0: until SIGTERM/SIGINT)")
        p.add_argument("--ready", default=None, help="file created when profiling may start")
        self.parser = p
        self.extra = []

    def add_argument(self, *a, **kw):
        self.parser.add_argument(*a, **kw)

    def parse(self):
        self.args = self.parser.parse_args()
        self.stop_requested = False
        self.stop_reason = None
        self.start_wall = time.time()
        self.ready_wall = None
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        return self.args

    def _on_signal(self, signum, frame):
        self.stop_requested = True
        if self.stop_reason is None:
            self.stop_reason = "signal %d" % signum

    def ready(self):
        self.ready_wall = time.time()
        if self.args.ready:
            write_json(self.args.ready, {"pid": os.getpid(), "time": self.ready_wall})
        sys.stdout.write("READY pid=%d\n" % os.getpid())
        sys.stdout.flush()

    def should_stop(self):
        """Cheap enough to call every few milliseconds from the main thread."""
        if self.stop_requested:
            return True
        now = time.time()
        if self.ready_wall is not None and self.args.duration > 0 \
                and now - self.ready_wall >= self.args.duration:
            self.stop_requested = True
            self.stop_reason = "duration"
        elif now - self.start_wall > SAFETY_LIFETIME:
            self.stop_requested = True
            self.stop_reason = "safety lifetime"
        return self.stop_requested

    def wait_for_stop(self, poll=0.05):
        """Sleep in the main thread until stopped (signals still run)."""
        while not self.should_stop():
            time.sleep(poll)

    def finish(self, truth):
        truth.setdefault("stop_reason", self.stop_reason)
        if self.ready_wall is not None:
            truth.setdefault("window_wall", time.time() - self.ready_wall)
        write_json(self.args.out, truth)
