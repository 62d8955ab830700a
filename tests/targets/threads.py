# SPDX-License-Identifier: BSD-2-Clause
"""CPU-busy threads with distinct functions, plus threads that only sleep.

    threads.py --out TRUTH.json [--busy N] [--duration S] [--ready FILE]

Busy threads (N of busy_alpha, busy_beta, busy_gamma, busy_delta) burn CPU
in chunks and sleep between chunks with different duty cycles, so their CPU
shares are uneven by design (alpha never sleeps). Each measures its own
thread CPU time over the window between the ready line and the stop.

Sleeping threads block for the whole run and must never show up in a CPU
profile: sleeper_sleep (time.sleep), sleeper_event (threading.Event.wait),
sleeper_lock (Lock.acquire on a held lock), sleeper_cond
(Condition.wait) and sleeper_select (select on a silent pipe).

The truth JSON lists every thread with its kernel thread id ("tid"), its
kind (busy, sleeper, main), the label of its thread function and, for
busy threads and main, the CPU seconds spent in the window. Busy threads
also carry "series": [wall clock time, CPU seconds since the window start]
points at least SERIES_STEP apart, so that a test can compute the truth
over the exact span it profiled.
"""
from __future__ import print_function, division

import os
import random
import select
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tgtlib  # noqa: E402
from tgtlib import RANGE, thread_cpu  # noqa: E402

STOP = [False]
WINDOW = [False]
SERIES_STEP = 0.05


class BusyState(object):
    """Chunk bookkeeping for one busy thread."""

    def __init__(self, name, work, sleep, seed):
        self.name = name
        self.work = work
        self.sleep = sleep
        self.rng = random.Random(seed)
        self.n = 2000
        self.tid = None
        self.base = None
        self.cpu = 0.0
        self.chunks = 0
        self.chunk_end = None
        self.series = []  # [wall time, CPU since base], at most every SERIES_STEP s

    def running(self):
        if self.tid is None:
            self.tid = tgtlib.native_tid()
            self.chunk_end = thread_cpu() + self.work
        return not STOP[0]

    def chunk_done(self):
        now = thread_cpu()
        if now < self.chunk_end:
            return
        self.chunks += 1
        if WINDOW[0]:
            if self.base is None:
                self.base = now
            wall = time.time()
            if not self.series or wall - self.series[-1][0] >= SERIES_STEP:
                self.series.append([wall, now - self.base])
        if self.sleep > 0:
            time.sleep(self.sleep * self.rng.uniform(0.5, 1.5))
        self.chunk_end = thread_cpu() + self.work * self.rng.uniform(0.5, 1.5)

    def finish(self):
        end = thread_cpu()
        if self.base is not None:
            self.cpu = end - self.base
            self.series.append([time.time(), self.cpu])


def busy_alpha(st):
    x = 1
    while st.running():
        for i in RANGE(st.n):
            x = (x * 33 + i) & 0xfffff
        st.chunk_done()
    st.finish()


def busy_beta(st):
    x = 2
    while st.running():
        for i in RANGE(st.n):
            x = (x * 37 + i) ^ 0x5a5a5 & 0xfffff
        st.chunk_done()
    st.finish()


def busy_gamma(st):
    x = 3
    while st.running():
        for i in RANGE(st.n):
            x = (x + i * 41) % 999983
        st.chunk_done()
    st.finish()


def busy_delta(st):
    x = 4
    while st.running():
        for i in RANGE(st.n):
            x = (x * 43 - i) & 0xffff
        st.chunk_done()
    st.finish()


# name, function, CPU seconds per chunk, sleep seconds after a chunk
BUSY = (
    ("alpha", busy_alpha, 0.008, 0.0),
    ("beta", busy_beta, 0.004, 0.004),
    ("gamma", busy_gamma, 0.002, 0.006),
    ("delta", busy_delta, 0.001, 0.009),
)

EVENT = threading.Event()
HELD_LOCK = threading.Lock()
COND = threading.Condition()
PIPE = os.pipe()
SLEEPER_INFO = {}
SLEEPER_LOCK = threading.Lock()


def _about_to_block(name):
    with SLEEPER_LOCK:
        SLEEPER_INFO[name] = tgtlib.native_tid()


def sleeper_sleep():
    _about_to_block("sleep")
    while True:
        time.sleep(3600)


def sleeper_event():
    _about_to_block("event")
    EVENT.wait()


def sleeper_lock():
    _about_to_block("lock")
    HELD_LOCK.acquire()


def sleeper_cond():
    with COND:
        _about_to_block("cond")
        COND.wait()


def sleeper_select():
    _about_to_block("select")
    select.select([PIPE[0]], [], [])


SLEEPERS = (
    ("sleep", sleeper_sleep),
    ("event", sleeper_event),
    ("lock", sleeper_lock),
    ("cond", sleeper_cond),
    ("select", sleeper_select),
)


def start_thread(func, args, name):
    t = threading.Thread(target=func, args=args, name=name)
    t.daemon = True
    t.start()
    return t


def main():
    target = tgtlib.Target(__doc__)
    target.add_argument("--busy", type=int, default=3, help="busy threads (1-4)")
    args = target.parse()
    if not 1 <= args.busy <= len(BUSY):
        sys.exit("--busy must be 1..%d" % len(BUSY))

    HELD_LOCK.acquire()  # held by main forever: sleeper_lock blocks on it
    busy = []
    for i, (name, func, work, sleep) in enumerate(BUSY[:args.busy]):
        st = BusyState(name, work, sleep, 1000 + i)
        busy.append((st, func, start_thread(func, (st,), "busy-" + name)))
    for name, func in SLEEPERS:
        start_thread(func, (), "sleeper-" + name)

    # Steady state: every sleeper is blocking, every busy thread has run.
    deadline = time.time() + 60
    while len(SLEEPER_INFO) < len(SLEEPERS) or any(st.chunks < 2 for st, _, _ in busy):
        if time.time() > deadline:
            sys.exit("threads did not start")
        time.sleep(0.01)
    time.sleep(0.3)

    WINDOW[0] = True
    main_cpu0 = thread_cpu()
    proc_cpu0 = tgtlib.process_cpu()
    target.ready()
    target.wait_for_stop()
    STOP[0] = True
    main_cpu = thread_cpu() - main_cpu0
    for st, _, t in busy:
        t.join(10)
    proc_cpu = tgtlib.process_cpu() - proc_cpu0

    threads = [{
        "name": "main", "kind": "main", "tid": tgtlib.native_tid(),
        "label": tgtlib.code_label(main), "cpu": main_cpu,
    }]
    for st, func, _ in busy:
        threads.append({
            "name": st.name, "kind": "busy", "tid": st.tid, "label": tgtlib.code_label(func),
            "cpu": st.cpu, "chunks": st.chunks, "work": st.work, "sleep": st.sleep,
            "series": st.series,
        })
    for name, func in SLEEPERS:
        threads.append({
            "name": name, "kind": "sleeper", "tid": SLEEPER_INFO[name],
            "label": tgtlib.code_label(func), "cpu": 0.0,
        })
    total = sum(t["cpu"] for t in threads)
    for t in threads:
        t["share"] = t["cpu"] / total if total > 0 else 0.0

    truth = tgtlib.base_truth()
    truth.update({
        "target": "threads",
        "file": main.__code__.co_filename,
        "threads": threads,
        "total_cpu": total,
        "process_cpu": proc_cpu,
    })
    target.finish(truth)
    sys.stdout.flush()
    os._exit(0)  # blocked daemon threads: skip interpreter teardown


if __name__ == "__main__":
    main()
