# SPDX-License-Identifier: BSD-2-Clause
"""A whole agent run under valgrind: no invalid access, no definite leak."""
import os
import shutil

from itest import HZ, ROOT, single

SUPP = os.path.join(ROOT, "tests", "valgrind.supp")


@single
def valgrind_agent_run(ctx, interp):
    if not shutil.which("valgrind"):
        ctx.fail("valgrind is not installed (make deps installs it)")
    tgt = ctx.target("idle.py", ["--mode", "spin"], name="vg").wait_ready()
    vg = ["valgrind", "-q", "--suppressions=" + SUPP, "--error-exitcode=9", "--leak-check=full",
          "--errors-for-leak-kinds=definite"]
    run = ctx.profile([tgt.pid], duration=4, hz=HZ, verbose=True, argv_prefix=vg, timeout=180)
    truth = tgt.stop()
    ctx.check(run.rc != 9, "valgrind reported errors:\n%s", run.stderr[-4000:])
    prof = ctx.expect_success(run)
    total = prof.total(prof.for_pid(tgt.pid))
    ctx.check(total >= 20, "only %d samples under valgrind", total)
    ctx.check(any(s.leaf is not None and s.leaf.label == truth["label"] for s in prof.stacks),
              "no stack ends in %s", truth["label"])


@single
def valgrind_fleet_run(ctx, interp):
    """--all with --listen and --push under valgrind: windows, queries, metrics, pushes and the
    final flush run with no invalid access and no definite leak."""
    import signal
    import time
    from itest import http_get
    from svc import Service
    from test_push import Ingest
    if not shutil.which("valgrind"):
        ctx.fail("valgrind is not installed (make deps installs it)")
    srv = Ingest(ctx)
    svc = Service(ctx, "vg_service", interp)
    vg = ["valgrind", "-q", "--suppressions=" + SUPP, "--error-exitcode=9", "--leak-check=full",
          "--errors-for-leak-kinds=definite"]
    h = ctx.start_agent(["--all", "--include", "app:vg_*", "--window", "1", "--max-stacks", "100",
                         "--push", "http://127.0.0.1:%d" % srv.port], timeout=120, prefix=vg)
    time.sleep(6)
    for path in ("/?seconds=5", "/?seconds=5&group=app", "/metrics", "/healthz", "/?bogus=1"):
        st, _, _ = http_get(h["port"], path, timeout=60)
        ctx.check(st in (200, 400), "GET %s under valgrind: %s", path, st)
    run = ctx.profile_async_stop(h, signal.SIGTERM, timeout=120)
    ctx.check(run.rc == 0, "exit status %s under valgrind:\n%s", run.rc, run.stderr[-4000:])
    ctx.check(srv.items(), "nothing pushed under valgrind")
    svc.stop()
