# SPDX-License-Identifier: BSD-2-Clause
"""Run two CPU-bound phases one after the other, then exit.

    phases.py --out TRUTH.json [--phase-seconds S] [--delay S] [--ready FILE]

After --delay seconds asleep (time for a profiler to attach after the ready
line), phase A spends S seconds of wall time in phase_alpha, then phase B S seconds
in phase_beta (both pure CPU loops on the main thread). The ground truth holds
each phase's function label, wall-clock start and end (Unix seconds) and the
thread CPU time it used, so a test can check a profile of any interval, or
a timeline, against what the program itself did when.
"""
from __future__ import print_function, division

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tgtlib  # noqa: E402
from tgtlib import RANGE, thread_cpu  # noqa: E402


def phase_alpha(deadline, target):
    acc = 1
    while time.time() < deadline and not target.should_stop():
        for i in RANGE(2000):
            acc = (acc * 1103515245 + i) & 0x7fffffff  # HOT_A
    return acc


def phase_beta(deadline, target):
    acc = 1
    while time.time() < deadline and not target.should_stop():
        for i in RANGE(2000):
            acc = (acc ^ (i * 2654435761)) % 1000003  # HOT_B
    return acc


def main():
    target = tgtlib.Target(__doc__)
    target.add_argument("--phase-seconds", type=float, default=2.0)
    target.add_argument("--delay", type=float, default=0.0)
    args = target.parse()
    target.ready()
    time.sleep(args.delay)
    phases = []
    for fn in (phase_alpha, phase_beta):
        c0, w0 = thread_cpu(), time.time()
        fn(w0 + args.phase_seconds, target)
        phases.append({
            "function": fn.__name__,
            "label": tgtlib.code_label(fn),
            "start": w0,
            "end": time.time(),
            "cpu": thread_cpu() - c0,
        })
    truth = tgtlib.base_truth()
    truth.update({"target": "phases", "file": phase_alpha.__code__.co_filename,
                  "phases": phases})
    target.finish(truth)


if __name__ == "__main__":
    main()
