# SPDX-License-Identifier: BSD-2-Clause
"""--all: a fleet of Python processes of every interpreter, some started
before the agent, some after it (exec events), some forked from a profiled
process (fork events), renamed ones among them: every one is profiled under
its own pid with its own function, and under its own application name
(fleet_member, or gunicorn for the renamed ones), read back over --listen."""
import os
import signal
import time

from itest import HZ, INTERPRETERS, exclusive, http_get

PER_INTERP = 3  # 10 interpreters -> 30 processes, plus forked children


def _start(ctx, it, i, late):
    tag = "%s-%d%s" % (it.label, i, "-late" if late else "")
    args = [tag]
    prefix = None
    if i == 1:
        args.append("--fork")
    if i == 2:
        prefix = ["bash", "-c", 'exec -a gunicorn "$@"', "bash", it.path]
    t = ctx.target("fleet_member.py", args, name="m_" + tag.replace(".", "_"), interp=it,
                   argv_prefix=prefix)
    t.want_app = "gunicorn" if prefix else "fleet_member"
    return t


@exclusive
def all_fleet(ctx, interp):
    interps = [it for it in INTERPRETERS if it.available]
    if len(interps) < len(INTERPRETERS):
        ctx.note("only %d interpreters available" % len(interps))
    early = [_start(ctx, it, i, False) for it in interps for i in range(PER_INTERP) if i != 1]
    for t in early:
        t.wait_ready()
    out = os.path.join(ctx.tmp, "all.folded")
    run_proc = ctx.start_agent(["--all", "-F", str(HZ), "-o", out])
    late = [_start(ctx, it, i, True) for it in interps for i in range(PER_INTERP)]
    late += [_start(ctx, it, 1, False) for it in interps]  # forking ones start late too
    for t in late:
        t.wait_ready()
    time.sleep(6)
    wrong = []
    for t in early + late:
        want = t.want_app
        st, _, body = http_get(run_proc["port"], "/?seconds=30&group=app&pid=%d" % t.pid)
        apps = sorted(set(l.split(";")[0] for l in body.splitlines() if l.strip()))
        # A late member starts as a fork of this test runner (app "run", the runner's
        # script) and then execs: samples of that moment carry the runner's name, rightly.
        if st != 200 or want not in apps or any(a not in (want, "run") for a in apps):
            wrong.append("%s (pid %d): %s, want %s" % (t.name, t.pid, apps, want))
    ctx.check(not wrong, "%d fleet processes under the wrong application name: %s",
              len(wrong), "; ".join(wrong[:8]))
    run = ctx.profile_async_stop(run_proc, signal.SIGINT)
    truths = [t.stop() for t in early + late]
    prof = ctx.expect_success(run)
    members = early + late
    missing = []
    for t, truth in zip(members, truths):
        stacks = prof.for_pid(t.pid)
        n = sum(s.count for s in stacks if s.has_label(truth["label"]))
        if n == 0:
            missing.append("%s (pid %d, %s)" % (t.name, t.pid, truth["label"]))
        if truth.get("child"):
            cstacks = prof.for_pid(truth["child"])
            cn = sum(s.count for s in cstacks if s.has_label(truth["child_label"]))
            if cn == 0:
                missing.append("fork of %s (pid %d, %s)" % (t.name, truth["child"],
                                                            truth["child_label"]))
    ctx.check(not missing, "%d of %d fleet processes missing from the --all profile: %s",
              len(missing), len(members) + len(interps), ", ".join(missing[:10]))
    ctx.check("processes_added" in run.stderr, "-v reports no process counters")
