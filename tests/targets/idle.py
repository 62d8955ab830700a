# SPDX-License-Identifier: BSD-2-Clause
"""A simple Python process: idle (sleeping) or spinning, for lifetime tests.

    idle.py --mode sleep|spin --out TRUTH.json [--duration S] [--ready FILE]

--mode sleep: the main thread sleeps in idle_wait() until stopped; a CPU
profile of it should be (nearly) empty.
--mode spin: the main thread burns CPU in spin_loop() until stopped. With
--duration it exits on its own, which is how a test gets a target that exits
in the middle of a profile.
The truth JSON has the thread CPU time of the window and the labels.
"""
from __future__ import print_function, division

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tgtlib  # noqa: E402
from tgtlib import RANGE, thread_cpu  # noqa: E402


def idle_wait(target):
    while not target.should_stop():
        time.sleep(0.05)


def spin_loop(target):
    x = 0
    while not target.should_stop():
        for i in RANGE(20000):
            x = (x * 17 + i) & 0xffff  # SPIN
    return x


def main():
    target = tgtlib.Target(__doc__)
    target.add_argument("--mode", choices=("sleep", "spin"), default="sleep")
    args = target.parse()
    func = spin_loop if args.mode == "spin" else idle_wait
    target.ready()
    t0 = thread_cpu()
    func(target)
    truth = tgtlib.base_truth()
    truth.update({
        "target": "idle",
        "mode": args.mode,
        "file": func.__code__.co_filename,
        "label": tgtlib.code_label(func),
        "spin_line": tgtlib.marker_line(spin_loop, "# SPIN"),
        "total_cpu": thread_cpu() - t0,
    })
    target.finish(truth)


if __name__ == "__main__":
    main()
