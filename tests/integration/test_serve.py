# SPDX-License-Identifier: BSD-2-Clause
"""--listen: GET / serves the folded stacks of recent windows (flamegraph.pl
input) selected by seconds, pid, app and grouped; /metrics is valid
Prometheus text with the agent's counters; /healthz answers; hostile requests
(unknown parameters, garbage bytes, oversized requests, bodies, a stalled
client) get clear 4xx answers or a closed connection, are counted, and the
agent keeps serving."""
import signal
import socket
import time

from itest import HZ, Profile, http_get, parse_prometheus, single
from svc import Service


def _raw(port, data, timeout=5):
    """Send raw bytes; the reply (maybe empty when the server just closes)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        try:
            s.sendall(data)
        except OSError:
            pass
        chunks = []
        try:
            while True:
                b = s.recv(65536)
                if not b:
                    break
                chunks.append(b)
        except (socket.timeout, OSError):
            pass
        return b"".join(chunks)
    finally:
        s.close()


@single
def serve_http(ctx, interp):
    alpha = Service(ctx, "alpha_service", interp)
    beta = Service(ctx, "beta_service", interp)
    h = ctx.start_agent(["--all", "--include", "app:*_service", "-F", str(HZ), "--window", "2"])
    port = h["port"]
    time.sleep(5)

    st, hdr, body = http_get(port, "/?seconds=4")
    ctx.check(st == 200, "GET /?seconds=4: status %s: %s", st, body[:200])
    ctx.check(hdr.get("content-type", "").startswith("text/plain"), "content type %r",
              hdr.get("content-type"))
    prof = Profile(body)
    ctx.check(not prof.errors, "GET / output malformed: %s", prof.errors[:5])
    for svc in (alpha, beta):
        n = sum(s.count for s in prof.for_pid(svc.pid) if s.has_label(svc.hot))
        ctx.check(n > 0, "%s (pid %d) missing from GET /", svc.hot, svc.pid)
    ctx.check(set(prof.pids()) == {alpha.pid, beta.pid}, "pids %s: --include app:*_service let "
              "others in (expected %s)", prof.pids(), [alpha.pid, beta.pid])
    try:
        t0, t1 = float(hdr["x-pysamp-from"]), float(hdr["x-pysamp-until"])
        ctx.check(0 < t1 - t0 <= 4 + 2 + 1, "interval %.3f-%.3f for seconds=4", t0, t1)
        ctx.check(abs(t1 - time.time()) < 5, "interval ends at %.3f, now %.3f", t1, time.time())
    except (KeyError, ValueError):
        ctx.fail("no X-Pysamp-From/Until headers: %s" % hdr)
    # Selection and grouping.
    st, _, body = http_get(port, "/?seconds=4&pid=%d" % beta.pid)
    p = Profile(body)
    ctx.check(st == 200 and p.pids() == [beta.pid], "pid= selects %s", p.pids())
    st, _, body = http_get(port, "/?seconds=4&app=alpha_service&group=app")
    roots = set(line.split(";")[0] for line in body.splitlines())
    ctx.check(st == 200 and roots == {"alpha_service"}, "app=&group=app roots %s", roots)
    st, _, body = http_get(port, "/?seconds=4&app=alpha_*&group=none")
    firsts = set(line.split(";")[0] for line in body.splitlines())
    ctx.check(st == 200 and firsts and all(f.startswith("<module> (") for f in firsts),
              "group=none: first frames %s", sorted(firsts)[:5])
    st, _, body = http_get(port, "/?seconds=4&group=comm")
    ctx.check(st == 200 and body and all("[" not in l.split(";")[0] for l in body.splitlines()),
              "group=comm roots carry pids: %s", body[:200])
    # Health and metrics.
    st, _, body = http_get(port, "/healthz")
    ctx.check(st == 200 and body.strip() == "ok", "/healthz: %s %r", st, body)
    st, hdr, body = http_get(port, "/metrics")
    ctx.check(st == 200, "/metrics status %s", st)
    try:
        m = parse_prometheus(body)
    except ValueError as e:
        ctx.fail("/metrics is not Prometheus text: %s" % e)
    ctx.check(m.get(("pysamp_samples_total", ""), 0) > 0, "pysamp_samples_total %s",
              m.get(("pysamp_samples_total", "")))
    ctx.check(m.get(("pysamp_processes_tracked", "")) == 2, "processes_tracked %s",
              m.get(("pysamp_processes_tracked", "")))
    ctx.check(m.get(("pysamp_processes_filtered_total", ""), 0) >= 1,
              "the test runner itself should be filtered out: %s",
              m.get(("pysamp_processes_filtered_total", "")))
    for name in ("process_cpu_seconds_total", "process_resident_memory_bytes",
                 "pysamp_samples_lost_total", "pysamp_windows_total", "pysamp_stacks_pruned_total"):
        ctx.check((name, "") in m, "/metrics lacks %s", name)
    ctx.check(m.get(("process_resident_memory_bytes", ""), 0) > 1 << 20, "RSS %s",
              m.get(("process_resident_memory_bytes", "")))

    # Hostile and wrong requests.
    bad = 0
    for path, want, text in (("/?bogus=1", 400, "unknown parameter 'bogus'"),
                             ("/?seconds=abc", 400, "seconds="),
                             ("/?seconds=0", 400, "seconds="),
                             ("/?group=tree", 400, "group="),
                             ("/?pid=-4", 400, "pid="),
                             ("/?seconds=1&seconds=2", 400, "twice"),
                             ("/?seconds=2&from=1", 400, "either"),
                             ("/nope", 404, "not found"),
                             ("/metrics?x=1", 400, "no parameters")):
        st, _, body = http_get(port, path)
        bad += 1
        ctx.check(st == want and text in body, "GET %s: %s %r (want %d with %r)", path, st,
                  body[:120], want, text)
    st, hdr, body = http_get(port, "/", method="POST", body="x" * 1000)
    bad += 1
    ctx.check(st in (405, 413), "POST /: status %s", st)
    stall = socket.create_connection(("127.0.0.1", port), timeout=5)
    stall.sendall(b"GET /?seconds=2 HTTP/1.1\r\nHost: x\r\n")  # and never finishes
    for junk in (b"\x00\xff\r\n\r\n", b"GET\r\n\r\n", bytes(range(256)) * 8,
                 b"GET /" + b"a" * 100000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
                 b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * 200000 + b"\r\n\r\n",
                 b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999\r\n\r\nabc"):
        reply = _raw(port, junk)
        ctx.check(reply == b"" or reply.startswith(b"HTTP/1.1 4") or reply.startswith(b"HTTP/1.0 4"),
                  "junk %r... answered %r", junk[:20], reply[:60])
    st, _, body = http_get(port, "/?seconds=2")
    ctx.check(st == 200 and Profile(body).pids(), "GET / after hostile requests: %s", st)
    st, _, body = http_get(port, "/metrics")
    m = parse_prometheus(body)
    ctx.check(m.get(("pysamp_http_requests_total", 'code="4xx"'), 0) >= bad,
              "4xx counter %s after %d bad requests",
              m.get(("pysamp_http_requests_total", 'code="4xx"')), bad)
    stall.close()
    run = ctx.profile_async_stop(h, signal.SIGTERM)
    ctx.check(run.rc == 0, "agent exit status %s after SIGTERM:\n%s", run.rc, run.stderr[-800:])
    for bad_word in ("AddressSanitizer", "Segmentation fault", "runtime error:"):
        ctx.check(bad_word not in run.stderr, "agent stderr reports %r", bad_word)
