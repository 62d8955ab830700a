# SPDX-License-Identifier: BSD-2-Clause
"""Command line behaviour: stdout output, -v, -F, signals, several PIDs, --merge."""
import signal

from itest import single


def _spinner(ctx, name):
    return ctx.target("idle.py", ["--mode", "spin"], name=name).wait_ready()


@single
def cli_stdout_and_verbose(ctx, interp):
    tgt = _spinner(ctx, "spin")
    run = ctx.profile([tgt.pid], duration=2, to_file=False, verbose=True)
    truth = tgt.stop()
    prof = ctx.expect_success(run)
    ctx.check(prof.total(prof.for_pid(tgt.pid)) >= 20, "only %d samples on stdout", prof.total())
    ctx.check(any(s.has_label(truth["label"]) for s in prof.stacks), "no %s frame on stdout", truth["label"])
    ctx.check(len(run.stderr.strip().splitlines()) >= 2, "-v printed no statistics on stderr: %r",
              run.stderr[:200])
    ctx.check(run.output.endswith("\n"), "output does not end with a newline")


@single
def cli_quiet_stderr(ctx, interp):
    """Without -v a successful run says little on stderr (no statistics, no debug)."""
    tgt = _spinner(ctx, "spin")
    run = ctx.profile([tgt.pid], duration=2)
    tgt.stop()
    ctx.expect_success(run)
    lines = run.stderr.strip().splitlines()
    ctx.check(len(lines) <= 3, "%d lines on stderr without -v:\n%s", len(lines), "\n".join(lines[:10]))


@single
def cli_frequency(ctx, interp):
    """-F 199 gives about 199 samples per CPU second of the target."""
    tgt = _spinner(ctx, "spin")
    seconds = 4
    run = ctx.profile([tgt.pid], duration=seconds, hz=199)
    truth = tgt.stop()
    prof = ctx.expect_success(run)
    n = prof.total(prof.for_pid(tgt.pid))
    frac = min(1.0, seconds / truth["window_wall"])
    expect = 199 * truth["total_cpu"] * frac
    ctx.check(0.6 * expect <= n <= 1.25 * 199 * truth["total_cpu"] + 10,
              "%d samples at -F 199, expected about %.0f (%.2f CPU s over %.1f s)", n, expect,
              truth["total_cpu"], truth["window_wall"])


def _stop_by_signal(ctx, sig):
    tgt = _spinner(ctx, "spin")
    run = ctx.profile([tgt.pid], duration=None, stop_after=3, stop_signal=sig, timeout=30)
    truth = tgt.stop()
    prof = ctx.expect_success(run)
    ctx.check(run.elapsed < 15, "took %.1fs to stop after the signal at 3s", run.elapsed)
    n = prof.total(prof.for_pid(tgt.pid))
    ctx.check(n >= 30, "only %d samples written after %s", n, sig.name)
    ctx.check(any(s.has_label(truth["label"]) for s in prof.stacks), "no %s frame", truth["label"])


@single
def cli_sigint(ctx, interp):
    _stop_by_signal(ctx, signal.SIGINT)


@single
def cli_sigterm(ctx, interp):
    _stop_by_signal(ctx, signal.SIGTERM)


@single
def cli_two_pids(ctx, interp):
    a = _spinner(ctx, "a")
    b = _spinner(ctx, "b")
    run = ctx.profile([a.pid, b.pid], duration=4)
    ta = a.stop()
    b.stop()
    prof = ctx.expect_success(run)
    ctx.check(prof.pids() == sorted([a.pid, b.pid]), "PIDs in output %s, expected %s", prof.pids(),
              sorted([a.pid, b.pid]))
    for t in (a, b):
        n = prof.total(prof.for_pid(t.pid))
        ctx.check(n >= 30, "only %d samples of %d", n, t.pid)
        roots = set(s.root for s in prof.for_pid(t.pid))
        ctx.check(roots == {"%s [%d]" % (t.comm, t.pid)}, "roots %s for %d", sorted(roots), t.pid)
    for t, label in ((a, ta["label"]), (b, ta["label"])):
        n = sum(s.count for s in prof.for_pid(t.pid) if s.has_label(label))
        ctx.check(n >= 30, "only %d samples of %d in %s", n, t.pid, label)


@single
def cli_merge(ctx, interp):
    a = _spinner(ctx, "a")
    b = _spinner(ctx, "b")
    run = ctx.profile([a.pid, b.pid], duration=4, merge=True)
    truth = a.stop()
    b.stop()
    prof = ctx.expect_success(run, merge=True)
    roots = sorted(set(s.root for s in prof.stacks))
    ctx.check(roots == [a.comm], "--merge roots %s, expected [%r]", roots, a.comm)
    # Same stacks of both processes are merged into one line each.
    ctx.check(len(prof.stacks) == len(set(s.line.rpartition(" ")[0] for s in prof.stacks)),
              "duplicate merged stacks")
    n = sum(s.count for s in prof.stacks if s.has_label(truth["label"]))
    ctx.check(n >= 60, "only %d samples in %s for two spinning processes", n, truth["label"])


@single
def cli_threads_single_thread(ctx, interp):
    """--threads on a single-threaded target: the thread frame is the PID itself."""
    tgt = _spinner(ctx, "spin")
    run = ctx.profile([tgt.pid], duration=2, threads=True)
    tgt.stop()
    prof = ctx.expect_success(run, threads=True)
    tids = sorted(set(s.tid for s in prof.stacks))
    ctx.check(tids == [tgt.pid], "thread frames %s, expected [%d]", tids, tgt.pid)
