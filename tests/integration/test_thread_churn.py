# SPDX-License-Identifier: BSD-2-Clause
"""--threads with threads that come and go: new threads found, no stack under the wrong thread."""
import collections

from itest import HZ, fmt_share, per_interpreter, series_at

SECONDS = 10


@per_interpreter
def thread_churn(ctx, interp):
    tgt = ctx.target("thread_churn.py", name="churn").wait_ready()
    run = ctx.profile([tgt.pid], duration=SECONDS, hz=HZ, threads=True, verbose=True)
    truth = tgt.stop()
    prof = ctx.expect_success(run, threads=True)
    stacks = prof.for_pid(tgt.pid)
    total = prof.total(stacks)
    if not ctx.check(total >= 200, "only %d samples in %ds", total, SECONDS):
        ctx.require()

    steady = truth["threads"][0]
    churn = dict((t["tid"], t) for t in truth["threads"][1:])
    known = set(churn) | {steady["tid"], truth["main_tid"]}
    samples = collections.Counter()
    for s in stacks:
        samples[s.tid] += s.count
    stray = sorted(t for t in samples if t not in known)
    ctx.check(not stray, "samples under thread ids %s that are none of the target's threads", stray[:10])

    # Each thread's samples hold its own function, never the other kind's.
    wrong = collections.Counter()
    missing = collections.Counter()
    churn_label = next(iter(churn.values()))["label"] if churn else "churn_work"
    for s in stacks:
        if s.tid == steady["tid"]:
            own, other = steady["label"], churn_label
        elif s.tid in churn:
            own, other = churn_label, steady["label"]
        else:
            continue
        if s.has_label(other):
            wrong[(s.tid, other)] += s.count
        if not s.has_label(own):
            missing[(s.tid, own)] += s.count
    for (tid, label), n in wrong.most_common(5):
        ctx.check(False, "%d samples of thread %d contain %s, which that thread never ran", n, tid, label)
    nmiss = sum(missing.values())
    ctx.check(nmiss <= 0.1 * total, "%d of %d samples lack their thread's own function: %s", nmiss, total,
              missing.most_common(3))

    # Threads born while profiling are found.
    t0 = run.sampling_start or run.t_start
    t1 = min(run.t_end, t0 + SECONDS)
    born = [t for t in churn.values() if t["start"] and t0 + 0.5 < t["start"] < t1 - 0.5]
    seen_born = [t for t in born if samples[t["tid"]] > 0]
    ctx.check(len(born) >= 10, "test setup: only %d threads started while profiling", len(born))
    ctx.check(len(seen_born) >= 0.7 * len(born), "only %d of the %d threads started while profiling have samples",
              len(seen_born), len(born))

    # The steady thread's share against the CPU the target measured in the profiled span.
    steady_cpu = series_at(steady["series"], t1) - series_at(steady["series"], t0)
    churn_cpu = 0.0
    for t in churn.values():
        if not t["start"] or not t["end"] or t["end"] <= t["start"]:
            continue
        overlap = max(0.0, min(t1, t["end"]) - max(t0, t["start"]))
        churn_cpu += t["cpu"] * overlap / (t["end"] - t["start"])
    # Reported, not judged: the churn threads' truth is apportioned by wall-clock
    # overlap, and on 2.7 GIL thrashing under load skews thread CPU clocks.
    if steady_cpu + churn_cpu > 0.5:
        want = steady_cpu / (steady_cpu + churn_cpu)
        got = samples[steady["tid"]] / float(total)
        ctx.note("steady share: profile %s, truth %s; %d churn threads sampled of %d; %d samples",
                 fmt_share(got), fmt_share(want), len([t for t in churn if samples[t]]), len(churn), total)
