# SPDX-License-Identifier: BSD-2-Clause
"""Threads parked at known places, for `pysamp-bpf dump`.

    sleeper.py --out TRUTH.json [--ready FILE] [--no-busy]

Every thread stops inside nested functions with known names and stays there:

  main    main -> main_outer -> main_inner: time.sleep              (the main thread)
  sleep   sleep_outer -> sleep_middle -> sleep_inner: time.sleep
  lock    lock_outer -> Holder.wait_for_it (a method): Lock.acquire of a lock main holds
  event   event_outer -> Event.wait, into threading.py
  gen     gen_outer -> gen_sleeper (a generator being iterated): time.sleep
  sorted  sorted_outer -> sorted(key=) -> sorted_key: time.sleep   (a C -> Python call)
  busy    busy_outer -> busy_spin: a one-line loop, holding the GIL
  unicode naive_sleep with a non-ASCII name in a file named with an emoji (Python 3 only)

Each worker names its kernel thread "sl-<kind>" (prctl) when it can.

The truth JSON is written before READY, since nothing moves afterwards: "threads", one
per thread, with "kind", "tid" (kernel thread id), "ident" (threading ident, which is
PyThreadState.thread_id), "os_name" (kernel thread name, null if it could not be set),
"main", "busy", and "stack": [[label, file, line], ...] outermost first, innermost last,
as the interpreter itself reports it (sys._current_frames(); co_qualname on 3.11+),
after checking that each thread's own frames stand at the marked lines. SIGTERM or
SIGINT ends the process at once (os._exit(0)).
"""
from __future__ import print_function, division

import os
import signal
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tgtlib  # noqa: E402

PY2 = sys.version_info[0] == 2
FOREVER = 3600.0
BLOCKED = {}  # kind -> (tid, ident, os_name), set just before a thread blocks
BLOCKED_LOCK = threading.Lock()
HELD = threading.Lock()  # main holds it: the lock thread blocks on it
EVENT = threading.Event()  # never set


def set_os_name(name):
    """Name the calling kernel thread (prctl PR_SET_NAME); the name, or None."""
    try:
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(15, ctypes.c_char_p(name.encode("ascii")), 0, 0, 0) != 0:
            return None
        return name
    except Exception:
        return None


def about_to_block(kind):
    os_name = set_os_name("sl-" + kind)
    with BLOCKED_LOCK:
        BLOCKED[kind] = (tgtlib.native_tid(), threading.current_thread().ident, os_name)


# ---- the threads ------------------------------------------------------------------


def sleep_inner():
    about_to_block("sleep")
    while True:
        time.sleep(FOREVER)  # SLEEP_INNER


def sleep_middle():
    sleep_inner()  # SLEEP_MIDDLE


def sleep_outer():
    sleep_middle()  # SLEEP_OUTER


class Holder(object):
    def wait_for_it(self):
        about_to_block("lock")
        HELD.acquire()  # LOCK_WAIT


def lock_outer():
    Holder().wait_for_it()  # LOCK_OUTER


def event_outer():
    about_to_block("event")
    EVENT.wait()  # EVENT_WAIT


def gen_sleeper():
    about_to_block("gen")
    while True:
        time.sleep(FOREVER)  # GEN_SLEEP
        yield 1


def gen_outer():
    for _ in gen_sleeper():  # GEN_OUTER
        pass


def sorted_key(x):
    if x == 2:
        about_to_block("sorted")
        while True:
            time.sleep(FOREVER)  # SORTED_KEY
    return x


def sorted_outer():
    return sorted([1, 2, 3], key=sorted_key)  # SORTED_OUTER


STOP_SPIN = [False]


def busy_spin():
    about_to_block("busy")
    while not STOP_SPIN[0]: pass  # BUSY_SPIN


def busy_outer():
    busy_spin()  # BUSY_OUTER


# A function named with a non-ASCII letter, compiled from a file named with an emoji: its
# name is a 1-byte-kind string and its file a 4-byte-kind one. Python 3 only (the source
# of this file stays ASCII for Python 2).
UNICODE_FILE = "/nonexistent/f\u00fcnky_\U0001F600.py"
UNICODE_SRC = """
def na\u00efve_sleep(block):
    block("unicode")
    while True:
        sleep(3600.0)
"""


def make_unicode_func():
    ns = {"sleep": time.sleep}
    exec(compile(UNICODE_SRC, UNICODE_FILE, "exec"), ns)
    return ns["na\u00efve_sleep"]


def unicode_outer(func):
    func(about_to_block)  # UNICODE_OUTER


# kind, thread function, its args, and this file's functions on the thread's stack (outermost
# first), each with the marker of the line it stands at
def worker_specs():
    specs = [
        ("sleep", sleep_outer, (), [(sleep_outer, "# SLEEP_OUTER"), (sleep_middle, "# SLEEP_MIDDLE"),
                                    (sleep_inner, "# SLEEP_INNER")]),
        ("lock", lock_outer, (), [(lock_outer, "# LOCK_OUTER"), (Holder.wait_for_it, "# LOCK_WAIT")]),
        ("event", event_outer, (), [(event_outer, "# EVENT_WAIT")]),
        ("gen", gen_outer, (), [(gen_outer, "# GEN_OUTER"), (gen_sleeper, "# GEN_SLEEP")]),
        ("sorted", sorted_outer, (), [(sorted_outer, "# SORTED_OUTER"), (sorted_key, "# SORTED_KEY")]),
        ("busy", busy_outer, (), [(busy_outer, "# BUSY_OUTER"), (busy_spin, "# BUSY_SPIN")]),
    ]
    if not PY2:
        specs.append(("unicode", unicode_outer, (make_unicode_func(),),
                      [(unicode_outer, "# UNICODE_OUTER")]))
    return specs


# ---- the truth ----------------------------------------------------------------------


def stack_of(frame):
    """[[label, file, line], ...] outermost first, as the interpreter reports it."""
    out = []
    while frame is not None:
        code = frame.f_code
        out.append([tgtlib.code_label(code), code.co_filename, frame.f_lineno])
        frame = frame.f_back
    out.reverse()
    return out


def func_of(f):
    return getattr(f, "__func__", getattr(f, "im_func", f))


def marked(stack, markers):
    """Do this file's frames in stack stand at the marked lines (in that order)?"""
    want = [(tgtlib.code_label(func_of(f)), tgtlib.marker_line(func_of(f), m)) for f, m in markers]
    mine = [(label, line) for label, path, line in stack if path == THIS_FILE]
    # Only the marked functions of this file are on a worker's stack (threading's own frames
    # and naive_sleep's are in other files).
    return mine == want


THIS_FILE = sleep_outer.__code__.co_filename


def worker_truth(specs):
    """The stacks of the workers, once every one of them is parked at its marker."""
    deadline = time.time() + 60
    while True:
        frames = sys._current_frames()
        truth, pending = [], []
        for kind, _, _, markers in specs:
            tid, ident, os_name = BLOCKED[kind]
            stack = stack_of(frames.get(ident))
            if not marked(stack, markers):
                pending.append((kind, stack))
            truth.append({"kind": kind, "tid": tid, "ident": ident, "os_name": os_name,
                          "main": False, "busy": kind == "busy", "stack": stack})
        if not pending:
            return truth
        if time.time() > deadline:
            sys.exit("threads not parked at their markers: %r" % (pending,))
        time.sleep(0.05)


def main_inner(target, specs):
    truth_threads = worker_truth(specs)
    stack = stack_of(sys._getframe())
    stack[-1][2] = tgtlib.marker_line(main_inner, "# MAIN_SLEEP")
    comm = open("/proc/self/comm").read().rstrip("\n")
    truth_threads.insert(0, {"kind": "main", "tid": tgtlib.native_tid(),
                             "ident": threading.current_thread().ident, "os_name": comm,
                             "main": True, "busy": False, "stack": stack})
    truth = tgtlib.base_truth()
    truth.update({"target": "sleeper", "file": THIS_FILE, "threads": truth_threads})
    tgtlib.write_json(target.args.out, truth)
    target.ready()
    while True:
        time.sleep(FOREVER)  # MAIN_SLEEP


def main_outer(target, specs):
    main_inner(target, specs)  # MAIN_OUTER


def on_signal(signum, frame):
    sys.stdout.flush()
    os._exit(0)


def main():
    target = tgtlib.Target(__doc__)
    target.add_argument("--no-busy", action="store_true", help="leave out the busy thread")
    args = target.parse()
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    HELD.acquire()
    specs = [s for s in worker_specs() if not (args.no_busy and s[0] == "busy")]
    for kind, func, fargs, _ in specs:
        t = threading.Thread(target=func, args=fargs, name="sleeper-" + kind)
        t.daemon = True
        t.start()
    deadline = time.time() + 60
    while len(BLOCKED) < len(specs):
        if time.time() > deadline:
            sys.exit("threads did not start: %s" % sorted(BLOCKED))
        time.sleep(0.01)
    time.sleep(0.3)  # into their blocking calls
    main_outer(target, specs)  # MAIN_CALL


if __name__ == "__main__":
    main()
