# SPDX-License-Identifier: BSD-2-Clause
"""Bad input and targets that go away: clear errors, no crash, the rest still profiled."""
import os
import shutil
import subprocess
import time

from itest import HZ, PROFILER, single

BOGUS_PID = 999999999


def _sleep_process(ctx):
    p = subprocess.Popen(["sleep", "600"], stdin=subprocess.DEVNULL)

    class _Killer(object):
        def kill(self):
            p.kill()
            p.wait()
    ctx._procs.append(_Killer())
    time.sleep(0.2)
    return p.pid


def _samples_of(ctx, prof, tgt, label=None):
    stacks = prof.for_pid(tgt.pid)
    if label is not None:
        stacks = [s for s in stacks if s.has_label(label)]
    return prof.total(stacks)


@single
def error_not_python(ctx, interp):
    pid = _sleep_process(ctx)
    run = ctx.profile([pid], duration=3)
    ctx.expect_error(run, [pid])
    ctx.check(run.elapsed < 30, "took %.1fs to give up", run.elapsed)


@single
def error_kernel_thread(ctx, interp):
    """kthreadd (PID 2): no mm, no exe, no maps."""
    run = ctx.profile([2], duration=3)
    ctx.expect_error(run, [2])


@single
def error_zombie(ctx, interp):
    p = subprocess.Popen(["true"])
    deadline = time.time() + 10
    while time.time() < deadline:  # exited but not reaped: a zombie
        stat = open("/proc/%d/stat" % p.pid).read()
        if stat.rpartition(")")[2].split()[0] == "Z":
            break
        time.sleep(0.05)
    try:
        run = ctx.profile([p.pid], duration=3)
        ctx.expect_error(run, [p.pid])
    finally:
        p.wait()


@single
def error_bogus_pid(ctx, interp):
    run = ctx.profile([BOGUS_PID], duration=3)
    ctx.expect_error(run, [BOGUS_PID])


@single
def error_non_numeric_pid(ctx, interp):
    for arg in ("abc", "12x"):
        run = ctx.profile(arg, duration=3)
        ctx.expect_error(run, [arg])


@single
def error_no_pid(ctx, interp):
    run = ctx.profile("", duration=1)
    ctx.expect_error(run, [])


@single
def error_not_root(ctx, interp):
    """As an unprivileged user: refuses with a message, before touching the target."""
    if not shutil.which("setpriv"):
        ctx.skip("setpriv not installed")
    tgt = ctx.target("idle.py", ["--mode", "sleep"], name="idle").wait_ready()
    bindir = os.path.join(ctx.tmp, "nobody")
    os.mkdir(bindir)
    os.chmod(ctx.tmp, 0o755)
    os.chmod(bindir, 0o777)
    copy = os.path.join(bindir, "pysamp-bpf")
    shutil.copy2(PROFILER, copy)
    os.chmod(copy, 0o755)
    run = ctx.profile([tgt.pid], duration=2, to_file=False,
                      argv_prefix=["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                                   "--inh-caps=-all", "--bounding-set=-all", copy])
    ctx.expect_error(run, [])
    low = run.stderr.lower()
    ctx.check(any(w in low for w in ("root", "privilege", "permission", "cap_", "capabilit")),
              "stderr does not say that root / privileges are needed: %r", run.stderr[:300])


@single
def error_some_pids_bad(ctx, interp):
    """Good PID next to a bogus and a non-Python one: warnings, exit 0, the good one profiled."""
    tgt = ctx.target("idle.py", ["--mode", "spin"], name="spin").wait_ready()
    sleeper = _sleep_process(ctx)
    run = ctx.profile([tgt.pid, BOGUS_PID, sleeper], duration=3)
    truth = tgt.stop()
    prof = ctx.expect_success(run)
    ctx.check(str(BOGUS_PID) in run.stderr, "no warning naming %d on stderr", BOGUS_PID)
    ctx.check(str(sleeper) in run.stderr, "no warning naming the non-Python PID %d on stderr", sleeper)
    ctx.check(prof.pids() == [tgt.pid], "profiled PIDs %s, expected [%d]", prof.pids(), tgt.pid)
    n = _samples_of(ctx, prof, tgt, truth["label"])
    ctx.check(n >= 30, "only %d samples of the good target", n)


@single
def exit_mid_profile(ctx, interp):
    """The only target exits after 3 s: exit 0 soon after, with what was collected."""
    tgt = ctx.target("idle.py", ["--mode", "spin", "--duration", 3], name="short").wait_ready()
    run = ctx.profile([tgt.pid], duration=30)
    truth = tgt.wait_exit(30)
    prof = ctx.expect_success(run)
    ctx.check(run.elapsed < 15, "profiler ran %.1fs after its only target exited at ~3s (-d 30)", run.elapsed)
    n = _samples_of(ctx, prof, tgt, truth["label"])
    ctx.check(n >= 30, "only %d samples from the target's %.1f CPU s", n, truth["total_cpu"])


@single
def exit_mid_profile_others_continue(ctx, interp):
    """One of two targets exits after 2 s; the other is profiled to the end."""
    short = ctx.target("idle.py", ["--mode", "spin", "--duration", 2], name="short").wait_ready()
    long_ = ctx.target("idle.py", ["--mode", "spin"], name="long").wait_ready()
    seconds = 8
    run = ctx.profile([short.pid, long_.pid], duration=seconds)
    st = short.wait_exit(30)
    lt = long_.stop()
    prof = ctx.expect_success(run)
    ctx.check(run.elapsed >= seconds - 0.5, "profiler stopped after %.1fs of -d %d although one target lived",
              run.elapsed, seconds)
    ns = _samples_of(ctx, prof, short, st["label"])
    nl = _samples_of(ctx, prof, long_, lt["label"])
    ctx.check(ns >= 10, "only %d samples of the target that exited", ns)
    # The long target ran the whole profile: samples ~ its CPU time during it.
    frac = min(1.0, run.elapsed / lt["window_wall"]) if lt.get("window_wall") else 1.0
    expect = HZ * lt["total_cpu"] * frac
    ctx.check(nl >= 0.5 * expect, "%d samples of the surviving target, expected about %.0f", nl, expect)
    ctx.note("short: %d samples, long: %d (expected ~%.0f)", ns, nl, expect)


@single
def idle_target(ctx, interp):
    """A Python process that only sleeps: exit 0, (nearly) empty, well-formed output."""
    tgt = ctx.target("idle.py", ["--mode", "sleep"], name="idle").wait_ready()
    run = ctx.profile([tgt.pid], duration=3)
    truth = tgt.stop()
    prof = ctx.expect_success(run)
    n = prof.total()
    ctx.check(n <= HZ * truth["total_cpu"] + 5, "%d samples from a process that used %.3f CPU s",
              n, truth["total_cpu"])
