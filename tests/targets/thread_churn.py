# SPDX-License-Identifier: BSD-2-Clause
"""Short-lived threads next to a long-lived one: thread ids and states churn.

    thread_churn.py --out TRUTH.json [--duration S] [--ready FILE]

One long-lived thread burns CPU in steady_work() for the whole run. The main
thread meanwhile starts short-lived threads one or two at a time, each
burning 30-120 ms of CPU in churn_work() and exiting, so thread ids, thread
state structs and their addresses come and go (and are reused) all the time,
as in a thread pool that recycles its workers.

The truth JSON lists every thread with its kernel thread id, the label of
its function, its CPU time and its wall-clock start and end, and a series
for the steady thread as in threads.py. A correct --threads profile puts
churn_work only under churn thread ids and steady_work only under the
steady thread's id.
"""
from __future__ import print_function, division

import os
import random
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tgtlib  # noqa: E402
from tgtlib import RANGE, thread_cpu  # noqa: E402

STOP = [False]
WINDOW = [False]
SERIES_STEP = 0.05


class Info(object):
    def __init__(self, kind, budget=0.0):
        self.kind = kind
        self.budget = budget
        self.tid = None
        self.cpu = 0.0
        self.start = None
        self.end = None
        self.series = []


def steady_work(info):
    info.tid = tgtlib.native_tid()
    x = 1
    base = None
    while not STOP[0]:
        for i in RANGE(2000):
            x = (x * 29 + i) & 0xfffff
        if WINDOW[0]:
            now = thread_cpu()
            if base is None:
                base = now
                info.start = time.time()
            wall = time.time()
            if not info.series or wall - info.series[-1][0] >= SERIES_STEP:
                info.series.append([wall, now - base])
    if base is not None:
        info.cpu = thread_cpu() - base
        info.end = time.time()
        info.series.append([info.end, info.cpu])


def churn_work(info):
    info.tid = tgtlib.native_tid()
    info.start = time.time()
    t0 = thread_cpu()
    x = 2
    while not STOP[0]:
        for i in RANGE(2000):
            x = (x * 31 + i) & 0xfffff
        if thread_cpu() - t0 >= info.budget:
            break
    info.cpu = thread_cpu() - t0
    info.end = time.time()


def main():
    target = tgtlib.Target(__doc__)
    target.parse()
    rng = random.Random(99)

    steady = Info("steady")
    st = threading.Thread(target=steady_work, args=(steady,), name="steady")
    st.daemon = True
    st.start()
    while steady.tid is None:
        time.sleep(0.01)

    churned = []
    running = []
    started_window = False
    while True:
        if not started_window:
            # A few rounds of churn first, so reuse is already going on.
            if len(churned) >= 6:
                WINDOW[0] = True
                target.ready()
                started_window = True
        elif target.should_stop():
            break
        while len(running) < rng.choice((1, 2)):
            info = Info("churn", rng.uniform(0.03, 0.12))
            t = threading.Thread(target=churn_work, args=(info,))
            t.daemon = True
            t.start()
            running.append((t, info))
        t, info = running.pop(0)
        t.join()
        churned.append(info)
    STOP[0] = True
    for t, info in running:
        t.join(10)
        churned.append(info)
    st.join(10)

    threads = [{"kind": "steady", "tid": steady.tid, "label": tgtlib.code_label(steady_work),
                "cpu": steady.cpu, "start": steady.start, "end": steady.end, "series": steady.series}]
    for info in churned:
        if info.tid is None:
            continue
        threads.append({"kind": "churn", "tid": info.tid, "label": tgtlib.code_label(churn_work),
                        "cpu": info.cpu, "start": info.start, "end": info.end})
    truth = tgtlib.base_truth()
    truth.update({
        "target": "thread_churn",
        "file": main.__code__.co_filename,
        "main_tid": tgtlib.native_tid(),
        "threads": threads,
        "churn_threads": len(threads) - 1,
        "distinct_churn_tids": len(set(t["tid"] for t in threads[1:])),
    })
    target.finish(truth)
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
