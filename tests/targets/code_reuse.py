# SPDX-License-Identifier: BSD-2-Clause
"""Compile, run and drop generated functions so code addresses get reused.

    code_reuse.py --out TRUTH.json [--duration S] [--ready FILE]

Round K compiles a fresh module source defining fn_K and fn_K_work (bodies
and line positions differ from round to round, the file name is one of
three shared pseudo-files), calls fn_K for 5-30 ms of CPU from one of four
call sites in call_slot(), then drops every reference so that the code
objects are freed and their memory is reused by later rounds.

The truth JSON lists every generated code object: label, file, first line,
the set of line numbers its instructions can map to, the call site line in
call_slot() (for fn_K) and the parent function (for fn_K_work). A correct
profiler labels every frame of a generated function with a (label, file,
line) combination from this list, with fn_K_work only under fn_K of the
same K, and fn_K only under the call site recorded for K.
"""
from __future__ import print_function, division

import dis
import gc
import os
import random
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tgtlib  # noqa: E402
from tgtlib import RANGE, thread_cpu  # noqa: E402

GEN_FILES = ("<gen-a>", "<gen-b>", "<gen-c>")

BODIES = (
    ["acc = (acc * 31 + i) & 0xffff"],
    ["acc = (acc ^ (i << 3)) % 65521",
     "acc += 1"],
    ["t = acc * 7",
     "t ^= i",
     "acc = t & 0xfffff"],
    ["if i & 1:",
     "    acc = (acc + i) & 0xffff",
     "else:",
     "    acc = (acc * 3) & 0xffff"],
)


def gen_source(k, rng):
    pad = (k % 13) * 16 + rng.randrange(3)
    lines = [""] * pad
    lines.append("def fn_%d(n):" % k)
    lines.append("    return fn_%d_work(n) + 1" % k)
    lines.extend([""] * (k % 3))
    lines.append("def fn_%d_work(n):" % k)
    lines.append("    acc = %d" % k)
    lines.append("    for i in RANGE(n):")
    for text in BODIES[k % len(BODIES)]:
        lines.append("        " + text)
    lines.append("    return acc")
    return "\n".join(lines) + "\n"


def call_slot(sel, fn, n):
    if sel == 0:
        return fn(n)  # SLOT0
    if sel == 1:
        return fn(n)  # SLOT1
    if sel == 2:
        return fn(n)  # SLOT2
    return fn(n)  # SLOT3


def code_lines(code):
    lines = set([code.co_firstlineno])
    for _, line in dis.findlinestarts(code):
        if line is not None:
            lines.add(line)
    return sorted(lines)


def describe(code, **extra):
    rec = {
        "label": tgtlib.code_label(code),
        "name": code.co_name,
        "file": code.co_filename,
        "first": code.co_firstlineno,
        "lines": code_lines(code),
    }
    rec.update(extra)
    return rec


def run_round(k, rng, slot_lines, records, stats, measuring):
    src = gen_source(k, rng)
    filename = GEN_FILES[k % len(GEN_FILES)]
    module_code = compile(src, filename, "exec")
    ns = {"RANGE": RANGE}
    exec(module_code, ns)
    fn = ns["fn_%d" % k]
    work = ns["fn_%d_work" % k]
    sel = rng.randrange(4)
    codes = (module_code, fn.__code__, work.__code__)
    for c in codes:
        addr = id(c)
        if addr in stats["seen_ids"]:
            stats["reused"] += 1
        stats["seen_ids"].add(addr)
    records.append(describe(module_code, kind="module", k=k))
    records.append(describe(fn.__code__, kind="outer", k=k, slot=sel,
                            call_line=slot_lines[sel]))
    records.append(describe(work.__code__, kind="work", k=k, parent=tgtlib.code_label(fn)))

    budget = rng.uniform(0.005, 0.030)
    n = stats["n"]
    t0 = thread_cpu()
    while True:
        call_slot(sel, fn, n)
        spent = thread_cpu() - t0
        if spent >= budget:
            break
    if measuring:
        stats["cpu_in_generated"] += spent
    # Drop every reference; the namespace holds the functions, which hold it.
    ns.clear()
    del fn, work, codes, module_code, ns


def main():
    target = tgtlib.Target(__doc__)
    target.parse()
    rng = random.Random(777)
    slot_lines = [tgtlib.marker_line(call_slot, "# SLOT%d" % i) for i in range(4)]
    stats = {"seen_ids": set(), "reused": 0, "n": 1000, "cpu_in_generated": 0.0}

    # Size n so that one call is about a millisecond.
    ns = {"RANGE": RANGE}
    exec(compile(gen_source(0, random.Random(1)), GEN_FILES[0], "exec"), ns)
    while True:
        t0 = thread_cpu()
        ns["fn_0"](stats["n"])
        if thread_cpu() - t0 >= 0.001 or stats["n"] > 1 << 24:
            break
        stats["n"] *= 2
    ns.clear()

    records = []
    k = 1
    # Warm up so the allocator is already recycling when profiling starts.
    for _ in range(20):
        run_round(k, rng, slot_lines, records, stats, False)
        k += 1
    gc.collect()
    target.ready()
    start = thread_cpu()
    rounds_before = k
    while not target.should_stop():
        run_round(k, rng, slot_lines, records, stats, True)
        k += 1
        if k % 50 == 0:
            gc.collect()
    total = thread_cpu() - start

    truth = tgtlib.base_truth()
    truth.update({
        "target": "code_reuse",
        "file": call_slot.__code__.co_filename,
        "driver_label": tgtlib.code_label(call_slot),
        "slot_lines": slot_lines,
        "gen_files": list(GEN_FILES),
        "records": records,
        "rounds": k - 1,
        "rounds_in_window": k - rounds_before,
        "distinct_code_addresses": len(stats["seen_ids"]),
        "reused_code_addresses": stats["reused"],
        "total_cpu": total,
        "generated_cpu": stats["cpu_in_generated"],
    })
    target.finish(truth)


if __name__ == "__main__":
    main()
