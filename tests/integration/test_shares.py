# SPDX-License-Identifier: BSD-2-Clause
"""CPU shares, hot line, labels and caller lines against cpu_shares.py's own truth."""
import collections

from itest import HZ, SHARES_SECONDS, SHARE_TOLERANCE, fmt_share, per_interpreter


@per_interpreter
def shares(ctx, interp):
    tgt = ctx.target("cpu_shares.py", name="cpu_shares").wait_ready()
    run = ctx.profile([tgt.pid], duration=SHARES_SECONDS, hz=HZ)
    truth = tgt.stop()
    prof = ctx.expect_success(run)

    stacks = prof.for_pid(tgt.pid)
    total = prof.total(stacks)
    ctx.check(len(stacks) == len(prof.stacks), "output has stacks of other PIDs: %s", prof.pids())
    expected_root = "%s [%d]" % (tgt.comm, tgt.pid)
    bad_roots = sorted(set(s.root for s in prof.stacks if s.root != expected_root))
    ctx.check(not bad_roots, "root frame %s, expected %r", bad_roots[:3], expected_root)

    # Enough samples for a 5-point check, and not more than the CPU time allows.
    cpu = truth["total_cpu"]
    window = truth.get("window_wall") or cpu
    expect = HZ * cpu * min(1.0, run.elapsed / window) if window else 0
    if not ctx.check(total >= 300, "only %d samples in %ds (target used %.1f CPU s in %.1f s)",
                     total, SHARES_SECONDS, cpu, window):
        ctx.require()
    ctx.check(total <= HZ * cpu * 1.15 + 20,
              "%d samples but the target used only %.2f CPU s (%.0f samples at most)", total, cpu, HZ * cpu)
    ctx.check(total >= 0.5 * expect, "%d samples, expected about %.0f (%.2f CPU s)", total, expect, cpu)

    path = truth["file"]
    ver = tuple(truth["version"])
    funcs = truth["functions"]
    # Labels: co_qualname on 3.11+, co_name before; checked against the version, not only the truth.
    want = {"heavy": "Worker.heavy", "medium": "Worker.medium", "light": "make_light.<locals>.light"} \
        if ver >= (3, 11) else {"heavy": "heavy", "medium": "medium", "light": "light"}
    for key, label in want.items():
        ctx.check(funcs[key]["label"] == label, "target reports label %r for %s, expected %r on %s",
                  funcs[key]["label"], key, label, truth["python"])
    all_labels = collections.Counter()
    for s in stacks:
        for f in s.frames:
            all_labels[f.label] += s.count
    for key, label in want.items():
        ctx.check(all_labels[label] > 0, "no frame labelled %r (labels seen: %s)", label,
                  sorted(l for l in all_labels if l)[:12])
        other = funcs[key]["name"] if ver >= (3, 11) else "Worker." + funcs[key]["name"]
        if key == "light" and ver < (3, 11):
            other = "make_light.<locals>.light"
        ctx.check(all_labels[other] == 0, "frame labelled %r on %s", other, truth["python"])

    # Shares: stacks that contain the function, against its measured CPU share.
    lines = []
    for key in ("heavy", "medium", "light"):
        f = funcs[key]
        got = sum(s.count for s in stacks if s.has_label(f["label"], path)) / float(total)
        lines.append("%s: profile %s, truth %s" % (f["label"], fmt_share(got), fmt_share(f["share"])))
        ctx.check(abs(got - f["share"]) <= SHARE_TOLERANCE,
                  "%s share %s, target measured %s (tolerance %s)", f["label"], fmt_share(got),
                  fmt_share(f["share"]), fmt_share(SHARE_TOLERANCE))
    ctx.note("; ".join(lines) + "; %d samples" % total)

    # Hot line: the most sampled line of the hot function's leaf frames.
    hot = funcs[truth["hot_function"]]
    by_line = collections.Counter()
    for s in stacks:
        if s.leaf is not None and s.leaf.label == hot["label"]:
            by_line[s.leaf.line] += s.count
    if ctx.check(by_line, "no sample with %s as the leaf", hot["label"]):
        line, n = by_line.most_common(1)[0]
        ctx.check(line == truth["hot_line"], "hottest line of %s is %s (%d samples), expected %d; lines %s",
                  hot["label"], line, n, truth["hot_line"], dict(by_line.most_common(6)))
        ctx.check(by_line[truth["hot_line"]] >= 0.5 * sum(by_line.values()),
                  "hot line %d has only %d of %d leaf samples of %s", truth["hot_line"],
                  by_line[truth["hot_line"]], sum(by_line.values()), hot["label"])
        lo, hi = hot["firstlineno"], truth["hot_line"] + 2
        odd = sorted(l for l in by_line if l is None or not lo <= l <= hi)
        ctx.check(not odd, "leaf lines of %s outside its body %d-%d: %s", hot["label"], lo, hi, odd)

    # Callers: everything inside the three functions sits under <module>/main/run at the call lines.
    caller = [tuple(c) for c in truth["caller_stack"]]
    labels = set(f["label"] for f in funcs.values())
    wrong = collections.Counter()
    inside = 0
    for s in stacks:
        if not s.frames or s.frames[-1].label not in labels:
            continue
        inside += s.count
        got = [(f.label, f.path, f.line) for f in s.frames[:-1]]
        if got != caller:
            wrong[" ; ".join("%s@%s" % (l, ln) for l, _, ln in got)] += s.count
    ctx.check(inside >= 0.9 * total, "only %d of %d samples have one of %s as the leaf", inside, total,
              sorted(labels))
    if wrong:
        ctx.check(False, "%d samples with wrong caller frames, expected %s; got e.g. %s",
                  sum(wrong.values()), " ; ".join("%s@%s" % (l, ln) for l, _, ln in caller),
                  wrong.most_common(3))

    # Paths are co_filename as the interpreter has it (the caller check covers the callers).
    for f in funcs.values():
        paths = set(fr.path for s in stacks for fr in s.frames if fr.label == f["label"])
        ctx.check(paths <= {path}, "%s frames with paths %s, expected %r", f["label"], sorted(paths), path)

    unknown = sum(s.count for s in stacks if any(f.text == "[unknown]" for f in s.frames))
    ctx.check(unknown <= 0.02 * total, "%d of %d samples have [unknown] frames", unknown, total)
    trunc = sum(s.count for s in stacks if s.truncated)
    ctx.check(trunc == 0, "%d samples marked [truncated] in a shallow program", trunc)
