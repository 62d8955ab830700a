# SPDX-License-Identifier: BSD-2-Clause
"""--push: every window goes to a Pyroscope-compatible ingest endpoint (a test
server here) as one profile per application; the bodies equal the agent's own
folded output for the same window (GET /?from=&until=&app=&group=none). With
the collector down for 30 s nothing is lost: the windows queue up and arrive,
in order, once it is back. A refused URL or a bad one gives clear errors."""
import json
import os
import re
import signal
import socket
import subprocess
import time
from collections import Counter

from itest import HZ, PROFILER, TESTS, http_get, parse_prometheus, single
from svc import Service

SERVER = os.path.join(TESTS, "tools", "ingest_server.py")
NAME_RE = re.compile(r"^([A-Za-z0-9_./-]+)\.cpu\{host=[A-Za-z0-9_.:/-]+,py_version=(\d+\.\d+)\}$")


class Ingest(object):
    """tests/tools/ingest_server.py on port (0: any), recording to a JSON-lines file."""

    def __init__(self, ctx, port=0, extra=()):
        self.out = os.path.join(ctx.tmp, "ingest%d.jsonl" % port)
        self.proc = subprocess.Popen(["/usr/bin/python3", SERVER, "--port", str(port),
                                      "--out", self.out] + list(extra),
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        ctx._procs.append(self)
        line = self.proc.stdout.readline().decode()
        m = re.match(r"listening (\d+)", line)
        if not m:
            ctx.fail("ingest server did not start: %r" % line)
        self.port = int(m.group(1))

    def items(self):
        try:
            with open(self.out) as f:
                return [json.loads(l) for l in f if l.strip()]
        except OSError:
            return []

    def kill(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def _lines(body):
    c = Counter()
    for line in body.splitlines():
        if line.strip():
            stack, _, n = line.rpartition(" ")
            c[stack] += int(n)
    return c


def _free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def _metrics(ctx, port):
    st, _, body = http_get(port, "/metrics")
    ctx.check(st == 200, "/metrics status %s", st)
    return parse_prometheus(body)


def _check_items_match_local(ctx, items, port, apps):
    """Each pushed body equals the agent's folded output for that window and app."""
    seen_apps = set()
    for it in items:
        m = NAME_RE.match(it["name"])
        ctx.check(m is not None, "pushed name %r is not APP.cpu{host=...,py_version=...}", it["name"])
        if not m:
            continue
        app = m.group(1)
        seen_apps.add(app)
        ctx.check(it["format"] == "folded" and it["spyName"] == "pysamp-bpf" and
                  it["sampleRate"] == str(HZ) and it["units"] == "samples" and
                  it["aggregationType"] == "sum", "pushed parameters %s", {
                      k: it.get(k) for k in ("format", "spyName", "sampleRate", "units",
                                             "aggregationType")})
        st, _, local = http_get(port, "/?from=%s&until=%s&app=%s&group=none" % (
            it["from"], it["until"], app))
        ctx.check(st == 200, "local query status %s", st)
        ctx.check(_lines(it["body"]) == _lines(local),
                  "window %s-%s of %s: pushed body differs from local output:\npushed %r\nlocal  %r",
                  it["from"], it["until"], app, it["body"][:300], local[:300])
    ctx.check(seen_apps >= set(apps), "apps pushed %s, expected %s", seen_apps, apps)


@single
def push_matches_local(ctx, interp):
    srv = Ingest(ctx)
    a = Service(ctx, "push_alpha", interp)
    b = Service(ctx, "push_beta", interp, sleep=0.01)
    h = ctx.start_agent(["--all", "--include", "app:push_*", "-F", str(HZ), "--window", "2",
                         "--push", "http://127.0.0.1:%d" % srv.port])
    time.sleep(9)
    items = srv.items()
    ctx.check(len(items) >= 6, "only %d items pushed in 9 s of 2 s windows", len(items))
    _check_items_match_local(ctx, items, h["port"], ["push_alpha", "push_beta"])
    for svc in (a, b):
        got = sum(c for it in items if it["name"].startswith(svc.name + ".")
                  for s, c in _lines(it["body"]).items() if svc.hot in s)
        ctx.check(got > 0, "%s never pushed", svc.hot)
    # Windows of one app are consecutive and do not overlap.
    for app in ("push_alpha", "push_beta"):
        spans = sorted((int(i["from"]), int(i["until"])) for i in items
                       if i["name"].startswith(app + "."))
        for (f0, u0), (f1, u1) in zip(spans, spans[1:]):
            ctx.check(u0 <= f1, "%s windows overlap: %s-%s and %s-%s", app, f0, u0, f1, u1)
    # SIGTERM pushes the last, partial window before exit.
    n_before = len(srv.items())
    t_stop = time.time()
    run = ctx.profile_async_stop(h, signal.SIGTERM)
    ctx.check(run.rc == 0, "agent exit status %s:\n%s", run.rc, run.stderr[-600:])
    last = srv.items()[n_before:]
    ctx.check(any(int(i["until"]) >= int(t_stop) for i in last),
              "no final window pushed at SIGTERM (got %s)", [(i["from"], i["until"]) for i in last])


@single
def push_collector_down_30s(ctx, interp):
    port = _free_port()
    a = Service(ctx, "down_alpha", interp)
    h = ctx.start_agent(["--all", "--include", "app:down_*", "-F", str(HZ), "--window", "2",
                         "--push", "http://127.0.0.1:%d/ingest" % port])
    t0 = time.time()
    time.sleep(30)
    m = _metrics(ctx, h["port"])
    ctx.check(m.get(("pysamp_push_failed_attempts_total", ""), 0) >= 1,
              "no failed attempts counted while the collector was down")
    ctx.check(m.get(("pysamp_push_queue_items", ""), 0) >= 10,
              "queue holds %s items after 30 s down", m.get(("pysamp_push_queue_items", "")))
    srv = Ingest(ctx, port)
    deadline = time.time() + 100  # the backoff reaches 32-64 s after 30 s down
    while time.time() < deadline:
        m = _metrics(ctx, h["port"])
        if m.get(("pysamp_push_queue_items", ""), 1) == 0:
            break
        time.sleep(1)
    ctx.check(m.get(("pysamp_push_queue_items", "")) == 0, "queue not empty %.0f s after the "
              "collector came back: %s", time.time() - t0 - 30, m.get(("pysamp_push_queue_items", "")))
    for reason in ("rejected", "spool_full", "spool_error", "spool_corrupt", "unsent_at_exit"):
        ctx.check(m.get(("pysamp_push_dropped_total", 'reason="%s"' % reason)) == 0,
                  "dropped (%s): %s", reason, m.get(("pysamp_push_dropped_total", 'reason="%s"' % reason)))
    items = srv.items()
    spans = sorted((int(i["from"]), int(i["until"])) for i in items)
    ctx.check(len(spans) >= 15, "only %d windows arrived", len(spans))
    gaps = [(u0, f1) for (f0, u0), (f1, u1) in zip(spans, spans[1:]) if f1 != u0]
    ctx.check(not gaps, "windows missing between %s", gaps[:5])
    ctx.check(spans and spans[0][0] <= int(t0) + 1, "first window starts %s, agent started %d",
              spans[0] if spans else None, int(t0))
    # In order: the server saw them oldest first.
    order = [int(i["from"]) for i in items]
    ctx.check(order == sorted(order), "windows arrived out of order: %s", order[:20])
    _check_items_match_local(ctx, items, h["port"], ["down_alpha"])
    run = ctx.profile_async_stop(h, signal.SIGTERM)
    ctx.check(run.rc == 0, "agent exit status %s", run.rc)
    a.stop()


@single
def push_errors(ctx, interp):
    a = Service(ctx, "refused_alpha", interp)
    # Nothing listens: the agent runs, counts, says so at exit, and exits 0.
    port = _free_port()
    run = ctx.profile([a.pid], duration=4, to_file=False,
                      extra=["--push", "http://127.0.0.1:%d" % port, "--window", "1"])
    ctx.check(run.rc == 0, "exit status %s with a refused push URL:\n%s", run.rc, run.stderr[-600:])
    ctx.check("not delivered" in run.stderr, "no 'not delivered' warning at exit:\n%s",
              run.stderr[-600:])
    # Bad arguments fail before profiling, naming the problem.
    for extra, words in ((["--push", "ftp://127.0.0.1/"], ["ftp"]),
                         (["--push", "http://127.0.0.1:1", "--push-token-file", "/nonexistent/t"],
                          ["/nonexistent/t"]),
                         (["--push-token-file", "/etc/hostname"], ["--push"]),
                         (["--label", "Bad-Key=1", "--push", "http://127.0.0.1:1"], ["Bad-Key"]),
                         (["--listen", "127.0.0.1:99999"], ["99999"]),
                         (["--window", "0"], ["--window"]),
                         (["--include", "nokind"], ["nokind"])):
        run = ctx.profile([a.pid], duration=1, to_file=False, extra=extra)
        ctx.expect_error(run, words)
    # A rejecting collector (HTTP 400): dropped, counted, not retried forever.
    srv = Ingest(ctx, extra=["--status", "400"])
    h = ctx.start_agent(["-p", str(a.pid), "--window", "1", "--push", "http://127.0.0.1:%d" % srv.port])
    time.sleep(4)
    m = _metrics(ctx, h["port"])
    ctx.check(m.get(("pysamp_push_dropped_total", 'reason="rejected"'), 0) >= 2,
              "rejected items not counted: %s", m.get(("pysamp_push_dropped_total", 'reason="rejected"')))
    ctx.check(m.get(("pysamp_push_queue_items", ""), 99) <= 1, "rejected items kept queued: %s",
              m.get(("pysamp_push_queue_items", "")))
    run = ctx.profile_async_stop(h, signal.SIGTERM)
    ctx.check(run.rc == 0, "agent exit status %s", run.rc)
    ctx.check("400" in run.stderr, "the server's 400 is not reported:\n%s", run.stderr[-600:])
