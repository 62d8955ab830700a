# SPDX-License-Identifier: BSD-2-Clause
"""Freed and reused code objects: no frame may carry a wrong name/file/line combination.

A frame of generated code must match one generated code object in label,
file and line; fn_K_work must sit right under fn_K of the same K, and both
under the call_slot() line round K used (checked across [unknown] frames
too, so that a name read from a later occupant of a reused address shows)."""
import collections
import re

from itest import HZ, per_interpreter

SECONDS = 10
GEN_NAME = re.compile(r"^fn_(\d+)(_work)?$")


@per_interpreter
def code_reuse(ctx, interp):
    tgt = ctx.target("code_reuse.py", name="code_reuse").wait_ready()
    run = ctx.profile([tgt.pid], duration=SECONDS, hz=HZ)
    truth = tgt.stop()
    prof = ctx.expect_success(run)
    stacks = prof.for_pid(tgt.pid)
    total = prof.total(stacks)
    if not ctx.check(total >= 100, "only %d samples in %ds", total, SECONDS):
        ctx.require()
    ctx.check(truth["reused_code_addresses"] > 0,
              "target never reused a code object address (%d distinct): the test proves nothing",
              truth["distinct_code_addresses"])
    judge(ctx, truth, stacks, total)


def judge(ctx, truth, stacks, total):
    """The checks, on the target's truth and its stacks (usable on saved runs)."""
    by_label = collections.defaultdict(list)
    call_line = {}  # K -> line of call_slot() that called fn_K
    for r in truth["records"]:
        by_label[r["label"]].append(r)
        if r["kind"] == "outer":
            call_line[r["k"]] = r["call_line"]
    gen_files = set(truth["gen_files"])
    driver = (truth["driver_label"], truth["file"])

    def record_for(f):
        """The record matching frame f exactly, or None."""
        for r in by_label.get(f.label, ()):
            # A frame without a line (already a format failure) is judged on name and file.
            if r["file"] == f.path and (f.line is None or f.line in r["lines"]):
                return r
        return None

    problems = collections.Counter()
    examples = {}
    symbolized_leaf = 0
    unknown = 0
    gen_samples = 0

    def bad(reason, s):
        problems[reason] += s.count
        examples.setdefault(reason, s.line[-300:])

    for s in stacks:
        if any(f.text == "[unknown]" for f in s.frames):
            unknown += s.count
        in_gen = False
        slot_line = None  # line of the nearest call_slot() frame above
        for i, f in enumerate(s.frames):
            if not f.python:
                continue
            if (f.label, f.path) == driver:
                slot_line = f.line
            m = GEN_NAME.match(f.label)
            if f.path not in gen_files and not m:
                continue
            in_gen = True
            if f.path not in gen_files:
                bad("generated function %s labelled with file %r" % (f.label, f.path), s)
                continue
            if not m and f.label != "<module>":
                bad("frame %r in a generated file" % f.text, s)
                continue
            r = record_for(f)
            if r is None:
                known = by_label.get(f.label)
                if not known:
                    bad("no code object named %s was ever created" % f.label, s)
                elif not any(k["file"] == f.path for k in known):
                    bad("%s labelled with the wrong file" % f.label, s)
                else:
                    bad("%s labelled with a line outside its code (%s:%s; its lines: %s)" % (
                        f.label, f.path, f.line, known[0]["lines"]), s)
                continue
            # Whatever lies between ([unknown] frames included), fn_K and fn_K_work run
            # under the call site that round K used.
            if r["kind"] != "module" and slot_line is not None and slot_line != call_line[r["k"]]:
                bad("%s under call_slot line %s, but round %d called from line %d" % (
                    f.label, slot_line, r["k"], call_line[r["k"]]), s)
            parent = s.frames[i - 1] if i > 0 else None
            if r["kind"] == "work":
                if parent is not None and parent.python and parent.label != r["parent"]:
                    bad("%s called from %s, not from %s" % (f.label, parent.label, r["parent"]), s)
            elif r["kind"] == "outer":
                if parent is not None and parent.python and (
                        (parent.label, parent.path) != driver or parent.line != r["call_line"]):
                    bad("%s called from %s:%s, not from %s:%d (its call site)" % (
                        f.label, parent.label, parent.line, driver[0], r["call_line"]), s)
            if i == len(s.frames) - 1:
                symbolized_leaf += s.count
        if in_gen:
            gen_samples += s.count

    for reason, n in problems.most_common(10):
        ctx.check(False, "%d samples: %s\n      e.g. %s", n, reason, examples[reason])
    ctx.check(symbolized_leaf >= 30,
              "only %d samples with a symbolized generated function as the leaf (of %d, %d with [unknown]):"
              " too few to judge", symbolized_leaf, total, unknown)
    ctx.note("%d samples, %d in generated code, %d with a generated leaf, %d with [unknown]; %d rounds,"
             " %d distinct code addresses" % (total, gen_samples, symbolized_leaf, unknown,
                                              truth["rounds_in_window"], truth["distinct_code_addresses"]))
