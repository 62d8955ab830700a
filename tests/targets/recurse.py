# SPDX-License-Identifier: BSD-2-Clause
"""Recurse to DEPTH frames of dive(), then spin at the bottom.

    recurse.py DEPTH --out TRUTH.json [--duration S] [--ready FILE]

While spinning, the Python stack is, root first:
    <module>, main, dive x DEPTH, spin
Every dive frame but the deepest is suspended on the line marked RECURSE;
the deepest one on the line marked BOTTOM. The truth JSON carries the whole
stack as the interpreter itself reports it (label, file, line per frame,
root first), taken from inside spin().
"""
from __future__ import print_function, division

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tgtlib  # noqa: E402
from tgtlib import RANGE  # noqa: E402

STATE = {}


def snapshot_stack(frame):
    out = []
    while frame is not None:
        code = frame.f_code
        out.append([tgtlib.code_label(code), code.co_filename, frame.f_lineno])
        frame = frame.f_back
    out.reverse()
    return out


def spin(target):
    STATE["stack"] = snapshot_stack(sys._getframe())
    STATE["cpu0"] = tgtlib.thread_cpu()
    target.ready()
    x = 1
    while True:
        for i in RANGE(20000):
            x = (x * 31 + i) & 0xffff  # SPIN
        if target.should_stop():
            break
    STATE["cpu"] = tgtlib.thread_cpu() - STATE["cpu0"]
    return x


def dive(n, target):
    if n > 1:
        return dive(n - 1, target) + 1  # RECURSE
    return spin(target)  # BOTTOM


def main():
    target = tgtlib.Target(__doc__, positional=[("depth", int, "frames of dive()")])
    args = target.parse()
    if args.depth < 1:
        sys.exit("depth must be >= 1")
    sys.setrecursionlimit(max(sys.getrecursionlimit(), args.depth + 200))
    dive(args.depth, target)

    truth = tgtlib.base_truth()
    truth.update({
        "target": "recurse",
        "depth": args.depth,
        "file": dive.__code__.co_filename,
        "recursive": tgtlib.code_label(dive),
        "leaf": tgtlib.code_label(spin),
        "recurse_line": tgtlib.marker_line(dive, "# RECURSE"),
        "bottom_line": tgtlib.marker_line(dive, "# BOTTOM"),
        "spin_line": tgtlib.marker_line(spin, "# SPIN"),
        "stack": STATE["stack"],
        "total_cpu": STATE["cpu"],
    })
    target.finish(truth)


if __name__ == "__main__":
    main()
