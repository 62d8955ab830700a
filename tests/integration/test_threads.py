# SPDX-License-Identifier: BSD-2-Clause
"""--threads: per-thread CPU shares, per-thread stacks, sleeping threads absent."""
import collections

from itest import HZ, SHARES_SECONDS, SHARE_TOLERANCE, fmt_share, per_interpreter, series_at


@per_interpreter
def threads(ctx, interp):
    tgt = ctx.target("threads.py", ["--busy", 3], name="threads").wait_ready()
    run = ctx.profile([tgt.pid], duration=SHARES_SECONDS, hz=HZ, threads=True, verbose=True)
    truth = tgt.stop()
    prof = ctx.expect_success(run, threads=True)

    stacks = prof.for_pid(tgt.pid)
    total = prof.total(stacks)
    expected_root = "%s [%d]" % (tgt.comm, tgt.pid)
    bad_roots = sorted(set(s.root for s in prof.stacks if s.root != expected_root))
    ctx.check(not bad_roots, "root frame %s, expected %r", bad_roots[:3], expected_root)
    if not ctx.check(total >= 300, "only %d samples in %ds", total, SHARES_SECONDS):
        ctx.require()

    by_tid = dict((t["tid"], t) for t in truth["threads"])
    samples = collections.Counter()
    for s in stacks:
        samples[s.tid] += s.count
    unknown_tids = sorted(t for t in samples if t not in by_tid)
    ctx.check(not unknown_tids, "samples for thread ids %s that are not threads of the target (%s)",
              unknown_tids, sorted(by_tid))

    # Sleeping threads never run: neither their ids nor their functions may show up.
    for t in truth["threads"]:
        if t["kind"] != "sleeper":
            continue
        ctx.check(samples[t["tid"]] == 0, "sleeping thread %s (tid %d, %s) has %d samples",
                  t["name"], t["tid"], t["label"], samples[t["tid"]])
        n = sum(s.count for s in stacks if s.has_label(t["label"]))
        ctx.check(n == 0, "%d samples contain the sleeping thread function %s", n, t["label"])

    # Truth over the span actually profiled, from each busy thread's CPU time series.
    t0 = run.sampling_start or run.t_start
    t1 = min(run.t_end, t0 + SHARES_SECONDS)
    cpu = {}
    for t in truth["threads"]:
        if t["kind"] == "busy":
            cpu[t["tid"]] = series_at(t["series"], t1) - series_at(t["series"], t0)
        elif t["kind"] == "main":
            frac = (t1 - t0) / truth["window_wall"] if truth.get("window_wall") else 1.0
            cpu[t["tid"]] = t["cpu"] * min(1.0, frac)
    cpu_total = sum(cpu.values())
    if not ctx.check(cpu_total > 0.5, "target threads used only %.2f CPU s while profiled", cpu_total):
        ctx.require()

    report = []
    busy_labels = dict((t["tid"], t["label"]) for t in truth["threads"] if t["kind"] == "busy")
    for t in truth["threads"]:
        if t["kind"] != "busy":
            continue
        got = samples[t["tid"]] / float(total)
        want = cpu[t["tid"]] / cpu_total
        whole = t["share"]
        report.append("%s: profile %s, truth %s (whole run %s)" % (t["label"], fmt_share(got), fmt_share(want),
                                                                  fmt_share(whole)))
        ctx.check(abs(got - want) <= SHARE_TOLERANCE, "thread %s (tid %d) share %s, target measured %s",
                  t["label"], t["tid"], fmt_share(got), fmt_share(want))
        # Its stacks hold its own function and no other busy thread's.
        mine = [s for s in stacks if s.tid == t["tid"]]
        own = sum(s.count for s in mine if s.has_label(t["label"]))
        ctx.check(own >= 0.9 * max(1, samples[t["tid"]]),
                  "only %d of %d samples of thread %d contain %s", own, samples[t["tid"]], t["tid"], t["label"])
        for other_tid, other in busy_labels.items():
            if other_tid == t["tid"]:
                continue
            n = sum(s.count for s in mine if s.has_label(other))
            ctx.check(n == 0, "%d samples of thread %d (%s) contain %s of thread %d", n, t["tid"],
                      t["label"], other, other_tid)
    ctx.note("; ".join(report) + "; %d samples" % total)
