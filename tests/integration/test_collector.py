# SPDX-License-Identifier: BSD-2-Clause
"""pysamp-collector: agents push with --push, the collector stores in SQLite
and renders the merged profile of an interval: for each application it equals
what the agent itself collected. Bad requests (garbage bodies, missing or bad
names, unsupported formats, oversized bodies, a wrong token) get clear 4xx
and store nothing; a collector killed with SIGKILL during a stream of ingests
keeps every ingest it acknowledged."""
import json
import os
import random
import re
import signal
import subprocess
import time
import urllib.parse
from collections import Counter, defaultdict

from itest import HZ, ROOT, http_get, single
from svc import Service

COLLECTOR = os.path.join(ROOT, "pysamp-collector")
# Profiles the tests make up are about an hour old: inside every retention tier's keep, so
# compaction leaves them in their 10 s buckets.
T0 = int(time.time()) // 3600 * 3600 - 3600


class Collector(object):
    def __init__(self, ctx, data_dir, extra=()):
        self.err = os.path.join(ctx.tmp, "collector%d.stderr" % random.randint(0, 1 << 30))
        self.errf = open(self.err, "wb")
        self.proc = subprocess.Popen([COLLECTOR, "--listen", "127.0.0.1:0", "--data-dir", data_dir]
                                     + list(extra), stdout=subprocess.DEVNULL, stderr=self.errf)
        ctx._procs.append(self)
        self.port = None
        for _ in range(100):
            with open(self.err, "rb") as f:
                m = re.search(rb"listening on port (\d+)", f.read())
            if m:
                self.port = int(m.group(1))
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        with open(self.err, "rb") as f:
            ctx.fail("collector did not start: %r" % f.read()[-500:])

    def stop(self, sig=signal.SIGTERM):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        self.proc.wait(30)
        self.errf.close()
        return self.proc.returncode

    kill = stop


def _lines(text):
    c = Counter()
    for line in text.splitlines():
        if line.strip():
            stack, _, n = line.rpartition(" ")
            c[stack] += int(n)
    return c


def _post(port, query, body, headers=None):
    return http_get(port, "/ingest?" + urllib.parse.urlencode(query), method="POST",
                    body=body, headers=headers)


@single
def collector_roundtrip(ctx, interp):
    col = Collector(ctx, os.path.join(ctx.tmp, "data"))
    a = Service(ctx, "coll_alpha", interp)
    b = Service(ctx, "coll_beta", interp, sleep=0.005)
    out = os.path.join(ctx.tmp, "agent.folded")
    h = ctx.start_agent(["--all", "--include", "app:coll_*", "-F", str(HZ), "--window", "2",
                         "--push", "http://127.0.0.1:%d" % col.port, "--group", "app", "-o", out])
    time.sleep(8)
    run = ctx.profile_async_stop(h, signal.SIGTERM)
    ctx.check(run.rc == 0, "agent exit status %s:\n%s", run.rc, run.stderr[-600:])
    with open(out) as f:
        local = f.read()
    per_app = defaultdict(Counter)
    for stack, n in _lines(local).items():
        app, _, rest = stack.partition(";")
        per_app[app][rest] += n
    st, _, body = http_get(col.port, "/api/series")
    ctx.check(st == 200, "/api/series status %s", st)
    series = json.loads(body)
    apps = {s["app"] for s in series}
    ctx.check({"coll_alpha", "coll_beta"} <= apps, "series apps %s", apps)
    for s in series:
        ctx.check("host=" in s["labels"] and "py_version=" in s["labels"], "labels %r", s["labels"])
    for svc in (a, b):
        st, _, body = http_get(col.port, "/render?query=%s&from=0&until=now" % svc.name)
        ctx.check(st == 200, "/render status %s: %s", st, body[:200])
        got = _lines(body)
        ctx.check(sum(got.values()) > 0 and any(svc.hot in k for k in got),
                  "%s not in the collector's profile", svc.hot)
        ctx.check(got == per_app[svc.name], "%s: collector profile differs from the agent's own "
                  "(%d vs %d samples)", svc.name, sum(got.values()), sum(per_app[svc.name].values()))
    st, _, body = http_get(col.port, "/api/timeline?query=coll_alpha&from=0&until=now&step=10")
    pts = json.loads(body) if st == 200 else []
    ctx.check(st == 200 and len(pts) >= 1 and sum(p[1] for p in pts) == sum(per_app["coll_alpha"].values()),
              "timeline (10 s buckets) %s", pts[:5])
    # Top functions: the service's hot function leads by self samples.
    st, _, body = http_get(col.port, "/api/top?query=coll_alpha&from=0&until=now&limit=5")
    top = json.loads(body) if st == 200 else []
    ctx.check(top and top[0]["name"].startswith(a.hot + " ("), "top functions %s", top[:3])
    ctx.check(all(t["self"] <= t["total"] for t in top), "self > total in %s", top)
    # Diff of the first bucket against the rest: every sample is in one column or the other.
    if pts:
        t1 = pts[0][0] + 10
        st, _, body = http_get(col.port, "/api/diff?query=coll_alpha&from=0&until=%d&from2=%d"
                               "&until2=now" % (t1, t1))
        c1 = c2 = 0
        for line in body.splitlines():
            _, x, y = line.rsplit(" ", 2)
            c1, c2 = c1 + int(x), c2 + int(y)
        ctx.check(st == 200 and c1 == pts[0][1] and c1 + c2 == sum(p[1] for p in pts),
                  "diff columns %d + %d for buckets %s", c1, c2, pts)
    ctx.check(col.stop() == 0, "collector exit status")


@single
def collector_bad_input(ctx, interp):
    tok = os.path.join(ctx.tmp, "token")
    with open(tok, "w") as f:
        f.write("s3cret\n")
    col = Collector(ctx, os.path.join(ctx.tmp, "data"), ["--token-file", tok, "--max-body", "1"])
    auth = {"Authorization": "Bearer s3cret"}
    good = {"name": "app.cpu{env=prod}", "from": str(T0), "until": str(T0 + 10),
            "format": "folded"}
    cases = [
        (good, "a;b 1\n", {"Authorization": "Bearer wrong"}, 401),
        (good, "a;b 1\n", {}, 401),
        ({k: v for k, v in good.items() if k != "name"}, "a;b 1\n", auth, 400),
        (dict(good, name="x'; DROP TABLE series;--"), "a;b 1\n", auth, 400),
        (dict(good, name="my.app"), "a;b 1\n", auth, 400),
        (dict(good, format="pprof"), "a;b 1\n", auth, 415),
        (good, "garbage without counts\n", auth, 400),
        (good, "a;;b 3\n", auth, 400),
        (good, "a;b 1\x00\n", auth, 400),
        (dict(good, frm="1"), "a;b 1\n", auth, 200),
    ]
    for q, body, hdr, want in cases:
        st, _, text = _post(col.port, q, body.encode(), hdr)
        ctx.check(st == want, "POST %s -> %s %r (want %d)", q.get("name"), st, text[:100], want)
    # Over --max-body: refused from the headers, before the body is read.
    import socket
    sk = socket.create_connection(("127.0.0.1", col.port), timeout=10)
    sk.sendall(("POST /ingest?name=app HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer s3cret\r\n"
                "Content-Length: %d\r\n\r\n" % (2 << 20)).encode())
    reply = sk.recv(4096)
    sk.close()
    ctx.check(reply.startswith(b"HTTP/1.1 413"), "oversized body: %r", reply[:60])
    st, _, _ = http_get(col.port, "/render?query=app")
    ctx.check(st == 401, "render without a token: %s", st)
    st, _, text = http_get(col.port, "/render?query=app&from=%d&until=%d" % (T0 - 10, T0 + 20),
                           headers=auth)
    ctx.check(st == 200 and _lines(text) == Counter({"a;b": 1}),
              "only the one good ingest is stored: %r", text[:200])
    # Hostile text that is allowed is stored verbatim.
    weird = "f'; DROP TABLE frames;-- (x.py:1);<script>alert(1)</script> 2\n"
    st, _, _ = _post(col.port, dict(good, name="app.cpu{env=DROP TABLE x;--}"), weird.encode(), auth)
    ctx.check(st == 200, "hostile but valid ingest: %s", st)
    st, _, text = http_get(col.port, "/render?" + urllib.parse.urlencode(
        {"query": "app{env=DROP TABLE x;--}", "from": "0", "until": "now"}), headers=auth)
    ctx.check(_lines(text) == _lines(weird), "hostile frames not stored verbatim: %r", text[:200])
    st, _, _ = http_get(col.port, "/../../etc/passwd", headers=auth)
    ctx.check(st in (400, 404), "path traversal: %s", st)
    ctx.check(col.stop() == 0, "collector exit status")
    # Pulling from an agent that is not there: counted, the collector keeps serving.
    dead = Collector(ctx, os.path.join(ctx.tmp, "data2"),
                     ["--poll", "http://127.0.0.1:1", "--poll-interval", "1"])
    time.sleep(2.5)
    st, _, _ = http_get(dead.port, "/healthz")
    ctx.check(st == 200, "healthz while polling a dead agent: %s", st)
    ctx.check(dead.stop() == 0, "collector exit status")
    with open(dead.err, "rb") as f:
        text = f.read().decode()
    m = re.search(r"(\d+) failed polls", text)
    ctx.check(m and int(m.group(1)) >= 2, "failed polls not counted: %r", text[-300:])
    r = subprocess.run([COLLECTOR, "--poll", "ftp://x", "--data-dir", os.path.join(ctx.tmp, "d3")],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    ctx.check(r.returncode != 0 and b"ftp://x" in r.stderr, "--poll ftp://x: %s %r", r.returncode,
              r.stderr[-200:])


@single
def collector_kill9(ctx, interp):
    data = os.path.join(ctx.tmp, "data")
    col = Collector(ctx, data)
    acked = []
    deadline = time.time() + 4 + random.random() * 2
    i = 0
    killed = False
    while True:
        q = {"name": "k9.cpu{run=a}", "from": str(T0 + 10 * (i % 50)),
             "until": str(T0 + 10 + 10 * (i % 50))}
        body = "".join("main;f%d;g%d %d\n" % (i, k, k + 1) for k in range(20))
        if time.time() > deadline and not killed:
            col.proc.send_signal(signal.SIGKILL)
            killed = True
        try:
            st, _, _ = _post(col.port, q, body.encode())
        except OSError:
            break
        if st == 200:
            acked.append(i)
        i += 1
    col.stop()
    ctx.check(len(acked) >= 20, "only %d ingests acknowledged before the kill", len(acked))
    col2 = Collector(ctx, data)
    st, _, text = http_get(col2.port, "/render?query=k9&from=0&until=now")
    got = _lines(text)
    missing = [i for i in acked if got.get("main;f%d;g19" % i) != 20]
    ctx.check(st == 200 and not missing, "%d of %d acknowledged ingests lost after kill -9: %s",
              len(missing), len(acked), missing[:10])
    ok = subprocess.run(["sqlite3", os.path.join(data, "profiles.db"), "PRAGMA integrity_check;"],
                        stdout=subprocess.PIPE).stdout.decode().strip()
    ctx.check(ok == "ok", "integrity_check: %r", ok)
    col2.stop()


@single
def collector_valgrind(ctx, interp):
    """Every endpoint of the collector under valgrind: no invalid access, no definite leak."""
    import shutil
    if not shutil.which("valgrind"):
        ctx.fail("valgrind is not installed (make deps installs it)")
    vg = ["valgrind", "-q", "--error-exitcode=9", "--leak-check=full",
          "--errors-for-leak-kinds=definite"]
    err = os.path.join(ctx.tmp, "vg.stderr")
    with open(err, "wb") as ef:
        p = subprocess.Popen(vg + [COLLECTOR, "--listen", "127.0.0.1:0", "--data-dir",
                                   os.path.join(ctx.tmp, "data")], stderr=ef)
    ctx._procs.append(p)
    port = None
    for _ in range(300):
        with open(err, "rb") as f:
            m = re.search(rb"listening on port (\d+)", f.read())
        if m:
            port = int(m.group(1))
            break
        time.sleep(0.1)
    ctx.check(port is not None, "collector under valgrind did not start")
    if port:
        for i in range(5):
            q = {"name": "vg.cpu{k=v}", "from": str(T0 + 10 * i),
                 "until": str(T0 + 10 + 10 * i)}
            st, _, _ = _post(port, q, b"main;f 3\nmain;g;h 2\n", None)
            ctx.check(st == 200, "ingest %d: %s", i, st)
        st, _, _ = _post(port, {"name": "bad name"}, b"x 1\n", None)
        ctx.check(st == 400, "bad ingest: %s", st)
        for path in ("/render?query=vg&from=0&until=now", "/api/series",
                     "/api/timeline?query=vg{k=v}&from=0&until=now",
                     "/api/top?query=vg&from=0&until=now",
                     "/api/diff?query=vg&from=0&until=%d&from2=%d&until2=now" % (T0 + 20, T0 + 20),
                     "/render?query=vg&from=0&until=now&format=svg&reverse=1",
                     "/render?query=vg&from=0&until=now&format=json",
                     "/api/diff?query=vg&from=0&until=%d&from2=%d&until2=now&format=svg"
                     % (T0 + 20, T0 + 20), "/", "/assets/app.js", "/nope"):
            st, _, _ = http_get(port, path, timeout=60)
            ctx.check(st in (200, 404), "GET %s: %s", path, st)
    p.send_signal(signal.SIGTERM)
    p.wait(60)
    with open(err, "rb") as f:
        text = f.read().decode("utf-8", "replace")
    ctx.check(p.returncode == 0, "collector exit status %s under valgrind:\n%s", p.returncode,
              text[-3000:])


@single
def collector_pull_equals_push(ctx, interp):
    """--poll: a collector pulling an agent's GET /export stores exactly what another collector
    receives by --push from the same agent."""
    push_col = Collector(ctx, os.path.join(ctx.tmp, "push"))
    svc = Service(ctx, "pull_alpha", interp)
    h = ctx.start_agent(["--all", "--include", "app:pull_*", "-F", str(HZ), "--window", "2",
                         "--push", "http://127.0.0.1:%d" % push_col.port])
    pull_col = Collector(ctx, os.path.join(ctx.tmp, "pull"),
                         ["--poll", "http://127.0.0.1:%d" % h["port"], "--poll-interval", "1"])
    time.sleep(16)
    series = {}
    for name, col in (("push", push_col), ("pull", pull_col)):
        st, _, body = http_get(col.port, "/api/series")
        series[name] = sorted((s["app"], s["labels"]) for s in json.loads(body)) if st == 200 else None
    ctx.check(series["pull"] and series["pull"] == series["push"], "series differ: %s", series)
    st, _, body = http_get(pull_col.port, "/api/timeline?query=pull_alpha&from=0&until=now&step=10")
    pulled = json.loads(body) if st == 200 else []
    st, _, body = http_get(push_col.port, "/api/timeline?query=pull_alpha&from=0&until=now&step=10")
    pushed = dict((t, n) for t, n, _ in json.loads(body)) if st == 200 else {}
    ctx.check(len(pulled) >= 2, "pulled buckets %s", pulled)
    done = pulled[:-1]  # the last bucket may still be filling on either side
    ctx.check(all(pushed.get(t) == n for t, n, _ in done), "pulled %s, pushed %s", done, pushed)
    if done:
        end = done[-1][0] + 10
        a = http_get(pull_col.port, "/render?query=pull_alpha&from=0&until=%d" % end)[2]
        b = http_get(push_col.port, "/render?query=pull_alpha&from=0&until=%d" % end)[2]
        ctx.check(_lines(a) == _lines(b) and _lines(a), "pulled and pushed profiles differ")
    run = ctx.profile_async_stop(h, signal.SIGTERM)
    ctx.check(run.rc == 0, "agent exit status %s", run.rc)
    ctx.check(pull_col.stop() == 0 and push_col.stop() == 0, "collector exit status")
    svc.stop()


@single
def collector_formats(ctx, interp):
    """/render as folded, JSON tree and SVG flame graph: the same profile in each; bad formats
    and widths refused; the differential SVG parses."""
    import xml.etree.ElementTree as ET
    col = Collector(ctx, os.path.join(ctx.tmp, "data"))
    body = ("main;f;g 5\nmain;f 3\nmain;h 2\nother;<b>&\"x\" 1\n"
            "main;f;g\xc3\xa9 4\n").encode("utf-8") + b"main;bad\xff 1\n"
    for i, b in enumerate((body, b"main;f 10\nmain;h 1\n")):
        st, _, msg = _post(col.port, {"name": "fmt.cpu{k=v}", "from": str(T0 + 10 * i),
                                      "until": str(T0 + 10 + 10 * i)}, b)
        ctx.check(st == 200, "ingest: %s %s", st, msg)
    q = "/render?query=fmt&from=%d&until=%d" % (T0, T0 + 10)
    st, _, folded = http_get(col.port, q)
    want = _lines(folded)
    ctx.check(st == 200 and sum(want.values()) == 16, "folded: %s %r", st, folded)
    st, hdr, text = http_get(col.port, q + "&format=json")
    ctx.check(st == 200 and hdr.get("content-type") == "application/json", "json: %s %s", st, hdr)
    tree = json.loads(text)
    got = Counter()

    def walk(node, path):
        kids = node.get("children", [])
        ctx.check(node["value"] == node["self"] + sum(k["value"] for k in kids),
                  "node %s: value %s != self + children", node["name"], node["value"])
        if node["self"]:
            got[";".join(path)] += node["self"]
        for k in kids:
            walk(k, path + [k["name"]])
    walk(tree, [])
    # The folded text and the JSON tree agree (the invalid byte is U+FFFD in JSON, and the
    # folded writer's replacement of it is not the same character: compare the valid ones).
    ctx.check({k: v for k, v in got.items() if "\ufffd" not in k} ==
              {k: v for k, v in want.items() if "bad" not in k},
              "json tree %s != folded %s", dict(got), dict(want))
    ctx.check(tree["value"] == 16, "tree total %s", tree["value"])
    for extra in ("", "&reverse=1", "&width=300"):
        st, hdr, svg = http_get(col.port, q + "&format=svg" + extra)
        ctx.check(st == 200 and hdr.get("content-type") == "image/svg+xml", "svg: %s", st)
        try:
            root = ET.fromstring(svg.encode("utf-8"))
        except ET.ParseError as e:
            ctx.fail("svg%s does not parse: %s", extra, e)
        titles = [t.text or "" for t in root.iter("{http://www.w3.org/2000/svg}title")]
        ctx.check(any(t.startswith("main (15 samples") for t in titles) and
                  any(t.startswith("<b>&\"x\" (1 samples") or t.startswith("<b>&\"x\" (1 sample")
                      for t in titles), "svg%s tooltips: %s", extra, titles[:12])
        ctx.check("<b>" not in svg, "unescaped label in the SVG")
    st, _, svg = http_get(col.port, "/api/diff?query=fmt&from=%d&until=%d&from2=%d&until2=%d"
                          "&format=svg" % (T0, T0 + 10, T0 + 10, T0 + 20))
    ctx.check(st == 200 and ET.fromstring(svg.encode("utf-8")) is not None, "diff svg %s", st)
    # speedscope and pprof of the same profile
    st, _, text = http_get(col.port, q + "&format=speedscope")
    doc = json.loads(text)
    ctx.check(st == 200 and sum(sum(p["weights"]) for p in doc["profiles"]) == 16,
              "speedscope: %s %r", st, text[:200])
    import gzip
    import http.client
    conn = http.client.HTTPConnection("127.0.0.1", col.port, timeout=30)
    conn.request("GET", q + "&format=pprof")
    resp = conn.getresponse()
    raw = resp.read()
    conn.close()
    ctx.check(resp.status == 200 and gzip.decompress(raw) and b"main" in gzip.decompress(raw),
              "pprof: %s %r", resp.status, raw[:40])
    for bad in (q + "&format=xml", q + "&format=svg&width=5", q + "&format=svg&width=x",
                q + "&format=chrome",
                "/api/diff?query=fmt&from=0&until=1&from2=1&until2=2&format=json"):
        st, _, msg = http_get(col.port, bad)
        ctx.check(st == 400 and msg.strip(), "GET %s: %s %r", bad, st, msg)
    ctx.check(col.stop() == 0, "collector exit status")


@single
def collector_rate_limit(ctx, interp):
    """--rate-limit N: a client past N requests/s (bursts of 2N) gets 429 with Retry-After;
    /healthz and the UI's files are not limited; the bucket refills."""
    col = Collector(ctx, os.path.join(ctx.tmp, "data"), ["--rate-limit", "5"])
    codes = Counter()
    retry = None
    for _ in range(30):
        st, hdr, _ = http_get(col.port, "/api/series")
        codes[st] += 1
        if st == 429:
            retry = hdr.get("retry-after")
    ctx.check(10 <= codes[200] <= 13 and codes[429] >= 17, "30 quick requests: %s", dict(codes))
    ctx.check(retry and retry.isdigit() and int(retry) >= 1, "Retry-After: %r", retry)
    for path in ("/healthz", "/", "/assets/app.css"):
        st, _, _ = http_get(col.port, path)
        ctx.check(st == 200, "GET %s while limited: %s", path, st)
    time.sleep(1.2)
    st, _, _ = http_get(col.port, "/api/series")
    ctx.check(st == 200, "after a second: %s", st)
    ctx.check(col.stop() == 0, "collector exit status")
    with open(col.err, "rb") as f:
        text = f.read().decode()
    ctx.check(re.search(r"[1-9]\d* over the rate limit", text), "exit report: %s", text[-300:])
    st = subprocess.run([COLLECTOR, "--rate-limit", "x"], stderr=subprocess.PIPE)
    ctx.check(st.returncode != 0 and b"--rate-limit" in st.stderr, "bad --rate-limit accepted")


@single
def collector_retention(ctx, interp):
    """--retention and --max-disk on a live collector: buckets older than a tier's keep are
    merged into the next tier's (totals and stacks kept, the timeline shows the coarser width),
    those past the last tier's keep are deleted and counted; past --max-disk the oldest buckets
    go first and every sample dropped is counted."""
    col = Collector(ctx, os.path.join(ctx.tmp, "data"), ["--retention", "10s:1h,1m:3h"])
    now = int(time.time()) // 60 * 60
    sent = Counter()
    for age in (100, 110, 120, 7200, 7210, 7250, 4 * 3600):
        t = now - age
        body = "main;f;g %d\nmain;h %d\n" % (age % 7 + 1, age % 5 + 1)
        st, _, msg = _post(col.port, {"name": "ret.cpu{k=v}", "from": str(t),
                                      "until": str(t + 10)}, body.encode())
        ctx.check(st == 200, "ingest: %s %s", st, msg)
        if age < 3 * 3600:
            sent += _lines(body)
    deadline = time.time() + 10
    while time.time() < deadline:
        st, _, text = http_get(col.port, "/api/stats")
        stats = json.loads(text)
        if stats["downsampled_rows_total"] >= 4 and stats["expired_rows_total"] >= 1:
            break
        time.sleep(0.2)
    # three 2 h old buckets moved, and the 4 h old one moved, then expired
    ctx.check(stats["downsampled_rows_total"] == 4 and stats["expired_rows_total"] == 1,
              "compaction did not run: %s", stats)
    st, _, text = http_get(col.port, "/render?query=ret&from=%d&until=now" % (now - 5 * 3600))
    ctx.check(_lines(text) == sent, "totals after downsampling %s != ingested %s",
              dict(_lines(text)), dict(sent))
    st, _, text = http_get(col.port, "/api/timeline?query=ret&from=%d&until=now&step=10" % (now - 5 * 3600))
    widths = sorted(set(p[2] for p in json.loads(text)))
    ctx.check(widths == [10, 60], "bucket widths in the timeline: %s", text[:300])
    old = [p for p in json.loads(text) if p[2] == 60]
    ctx.check(old and all(p[0] % 60 == 0 for p in old) and sum(p[1] for p in old) == 15,
              "the 2 h old buckets, in whole minutes: %s", old)
    ctx.check([t["width"] for t in stats["tiers"]] == [10, 60], "tiers: %s", stats["tiers"])
    st, _, prom = http_get(col.port, "/metrics")
    ctx.check(st == 200 and re.search(r"^pysamp_collector_expired_rows_total 1$", prom, re.M) and
              'pysamp_collector_tier_samples{width="60"}' in prom, "metrics: %s", prom[:400])
    ctx.check(col.stop() == 0, "collector exit status")

    # The disk bound: 1 MB, and more than that of steady profiles (the same 300 stacks in
    # every 10 s bucket, counts varying) over a few hours.
    col = Collector(ctx, os.path.join(ctx.tmp, "bounded"), ["--max-disk", "1", "--rate-limit", "0"])
    rnd = random.Random(7)
    total, n = 0, 1500
    t0 = (now - 10 * n) // 10 * 10
    for i in range(n):
        counts = [rnd.randint(1, 5000) for _ in range(300)]
        body = "".join("main;mod%d.f;g%d;h %d\n" % (j % 17, j, c) for j, c in enumerate(counts))
        total += sum(counts)
        st, _, msg = _post(col.port, {"name": "disk.cpu", "from": str(t0 + 10 * i),
                                      "until": str(t0 + 10 * i + 10)}, body.encode())
        if not ctx.check(st == 200, "ingest %d under the bound: %s %s", i, st, msg):
            break
    deadline = time.time() + 20
    while time.time() < deadline:
        stats = json.loads(http_get(col.port, "/api/stats")[2])
        if stats["dropped_samples_total"] and stats["db_live_bytes"] <= 1 << 20:
            break
        time.sleep(0.3)
    ctx.check(0 < stats["dropped_samples_total"] < total / 2 and
              stats["db_live_bytes"] <= 1 << 20, "disk bound: %s", stats)
    # what is kept and what was dropped, read between two equal counts of drops (compaction
    # may still be trimming while we read)
    for _ in range(50):
        before = json.loads(http_get(col.port, "/api/stats")[2])["dropped_samples_total"]
        st, _, text = http_get(col.port, "/render?query=disk&from=%d&until=now" % t0)
        stats = json.loads(http_get(col.port, "/api/stats")[2])
        if stats["dropped_samples_total"] == before:
            break
        time.sleep(0.2)
    kept = sum(_lines(text).values())
    ctx.check(kept + stats["dropped_samples_total"] == total,
              "kept %d + dropped %d != stored %d", kept, stats["dropped_samples_total"], total)
    tl = json.loads(http_get(col.port, "/api/timeline?query=disk&from=%d&until=now&step=10" % t0)[2])
    # The oldest went first: what is left is the newest buckets, without a gap.
    ctx.check(tl and tl[-1][0] == t0 + 10 * (n - 1) and
              [p[0] for p in tl] == list(range(tl[0][0], tl[-1][0] + 10, 10)),
              "the newest buckets must stay: %s ... %s", tl[:2], tl[-2:])
    ctx.check(col.stop() == 0, "collector exit status")
    with open(col.err, "rb") as f:
        err = f.read().decode()
    ctx.check("max-disk" in err or "dropped" in err or "delet" in err,
              "no warning about the data dropped: %s", err[-500:])
    for bad in (["--retention", "10s"], ["--retention", "1m:1d,10s:2d"], ["--max-disk", "-1"]):
        p = subprocess.run([COLLECTOR] + bad, stderr=subprocess.PIPE)
        ctx.check(p.returncode != 0 and p.stderr.strip(), "%s accepted: %r", bad, p.stderr)
