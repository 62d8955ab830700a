#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause
"""Collector benchmark for pysamp-collector (issue 4).

    python3 bench/collector.py [--series 100] [--stacks 300] [--population 5000] [--procs 4]
                               [--hours 24] [--window 10] [--clients 4] [--queries 5]
                               [--json FILE] [--check]

Starts ./pysamp-collector on a fresh data directory (loopback, no rate limit)
and plays a fleet: SERIES series of one application (labels host=h0..hN),
each sending one profile per WINDOW seconds (10: what agents send) for HOURS
hours of Unix time ending now. The application has POPULATION distinct stacks
(depth 8-32, frames from a pool of 400 `qualname (pkg/module.py:LINE)`
names); each profile holds STACKS of them: the hot ones every host shares and
a long tail, with skewed counts adding up to WINDOW x 100 Hz x PROCS.
The default day is 259 million folded lines: it takes a quarter of an hour. CLIENTS processes post them
concurrently (keep-alive HTTP/1.1, as agents do), each its own share of the
series, oldest first. Figures, all measured in this run:

  * ingest: folded lines per second stored (acknowledged 200) over the whole
    day, against the same clients posting the same bodies to a path that
    reads them and refuses them unparsed (format=pprof, 415): the share of
    the transport's own ceiling that parsing and storing leaves;
  * query: wall time of the merged profile of the whole day over all series
    (GET /render, folded and svg), median of QUERIES runs, against the last
    hour's; and of the day's timeline (GET /api/timeline). The collector
    builds hour rollups as it compacts (every second, in bounded steps) and
    the queries run once the queue of hours is empty;
  * disk: bytes of the database (after a WAL checkpoint: the collector is
    stopped) per sample stored, against the bytes of the folded text
    ingested per sample.

Goals (issue 4): >= 200,000 lines/s; 24-hour query < 300 ms; < 2 bytes per
sample. Exit 0 when measured (--check: 1 when a goal is missed), 2 when
something broke. Stdlib only.
"""
import argparse
import http.client
import json
import multiprocessing
import os
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COLLECTOR = os.path.join(ROOT, "pysamp-collector")
APP = "benchapp"


def make_frames(rng):
    pkgs = ["app", "app/api", "app/db", "lib/python3.11", "site-packages/requests",
            "site-packages/sqlalchemy/orm", "site-packages/numpy/core", "app/jobs"]
    frames = []
    for i in range(400):
        mod = "%s/mod%d.py" % (rng.choice(pkgs), i % 37)
        frames.append("%s.fn_%d (/srv/%s:%d)" % ("Cls%d" % (i % 11) if i % 3 else "mod",
                                                 i, mod, rng.randint(1, 900)))
    return frames


def make_population(rng, frames, n):
    """The stacks one application's code can produce (shared by all its hosts)."""
    stacks = set()
    while len(stacks) < n:
        depth = rng.randint(8, 32)
        # shared prefixes, as real call trees have
        base = [frames[(j * 7 + rng.randint(0, 2)) % 60] for j in range(depth // 2)]
        stacks.add(";".join(base + [rng.choice(frames) for _ in range(depth - len(base))]))
    return sorted(stacks)


def make_profile(rng, population, nstacks, total):
    """One window of one host: nstacks of the population, Zipf-like counts (a few hot stacks,
    the same ones on every host, and a long tail that differs)."""
    idx = set(range(min(nstacks // 3, len(population))))  # the hot ones
    while len(idx) < nstacks:
        idx.add(min(len(population) - 1, int(rng.paretovariate(0.6))))
    idx = sorted(idx)
    weights = [1.0 / (k + 1) for k in range(len(idx))]
    s = sum(weights)
    lines = ["%s %d" % (population[i], max(1, int(total * w / s))) for i, w in zip(idx, weights)]
    body = ("\n".join(lines) + "\n").encode()
    return body, sum(int(x.rsplit(" ", 1)[1]) for x in lines)


def client(args):
    """One client process: post its series' profiles, oldest window first."""
    (port, series, t0, windows, window, variants, fmt) = args
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    lines = samples = errors = 0
    for w in range(windows):
        frm = t0 + w * window
        for s in series:
            body, nl, ns = variants[s][w % len(variants[s])]
            q = urllib.parse.urlencode({"name": "%s.cpu{host=h%d}" % (APP, s), "from": frm,
                                        "until": frm + window, "format": fmt,
                                        "sampleRate": 100, "spyName": "bench"})
            for attempt in range(3):
                try:
                    conn.request("POST", "/ingest?" + q, body=body,
                                 headers={"Content-Type": "text/plain"})
                    r = conn.getresponse()
                    r.read()
                    break
                except (OSError, http.client.HTTPException):
                    conn.close()
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
            else:
                errors += 1
                continue
            if r.status == 200:
                lines += nl
                samples += ns
            elif not (fmt == "pprof" and r.status == 415):
                errors += 1
    conn.close()
    return lines, samples, errors


class Collector(object):
    def __init__(self, data, extra=()):
        self.errpath = os.path.join(os.path.dirname(data), "collector.stderr")
        self.errf = open(self.errpath, "wb")
        self.proc = subprocess.Popen([COLLECTOR, "--listen", "127.0.0.1:0", "--data-dir", data,
                                      "--rate-limit", "0", "--max-body", "64"] + list(extra),
                                     stderr=self.errf)
        self.port = None
        for _ in range(200):
            with open(self.errpath, "rb") as f:
                m = re.search(rb"listening on port (\d+)", f.read())
            if m:
                self.port = int(m.group(1))
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise RuntimeError("collector did not start")

    def cpu(self):
        with open("/proc/%d/stat" % self.proc.pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(120)
        self.errf.close()


def timed_get(port, path, n):
    """(median seconds, bytes, last body) of n GETs."""
    times, size, data = [], 0, b""
    for _ in range(n):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
        t = time.perf_counter()
        conn.request("GET", path)
        r = conn.getresponse()
        data = r.read()
        times.append(time.perf_counter() - t)
        conn.close()
        if r.status != 200:
            raise RuntimeError("GET %s: %s %r" % (path, r.status, data[:200]))
        size = len(data)
    return statistics.median(times), size, data


def run_phase(port, nseries, t0, windows, window, variants, clients, fmt):
    shares = [[s for s in range(nseries) if s % clients == c] for c in range(clients)]
    jobs = [(port, sh, t0, windows, window, variants, fmt) for sh in shares]
    t = time.perf_counter()
    with multiprocessing.Pool(clients) as pool:
        res = pool.map(client, jobs)
    dt = time.perf_counter() - t
    return (sum(r[0] for r in res), sum(r[1] for r in res), sum(r[2] for r in res), dt)


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--series", type=int, default=100)
    ap.add_argument("--stacks", type=int, default=300)
    ap.add_argument("--hours", type=float, default=24)
    ap.add_argument("--window", type=int, default=10)
    ap.add_argument("--population", type=int, default=5000,
                    help="distinct stacks the application has, all hosts together")
    ap.add_argument("--procs", type=int, default=4,
                    help="busy processes per series (samples = window x 100 Hz x procs)")
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--queries", type=int, default=5)
    ap.add_argument("--ceiling-windows", type=int, default=20,
                    help="windows posted to the refusing path (the transport ceiling)")
    ap.add_argument("--json")
    ap.add_argument("--check", action="store_true")
    a = ap.parse_args()
    if not os.access(COLLECTOR, os.X_OK):
        print("bench/collector.py: build first (make)", file=sys.stderr)
        return 2
    rng = random.Random(42)
    frames = make_frames(rng)
    population = make_population(rng, frames, a.population)
    per_profile = a.window * 100 * a.procs
    variants = {}
    for s in range(a.series):
        variants[s] = []
        for _ in range(3):
            body, ns = make_profile(rng, population, a.stacks, per_profile)
            variants[s].append((body, body.count(b"\n"), ns))
    windows = int(a.hours * 3600 // a.window)
    now = int(time.time()) // a.window * a.window
    t0 = now - windows * a.window
    tmp = tempfile.mkdtemp(prefix="bench-collector.")
    data = os.path.join(tmp, "data")
    res = {}
    try:
        col = Collector(data)
        print("collector on port %d, data in %s" % (col.port, data), file=sys.stderr)
        # The transport's ceiling: same clients, same bodies, refused after being read.
        nl, _, err, dt = run_phase(col.port, a.series, t0, min(windows, a.ceiling_windows),
                                   a.window, variants, a.clients, "pprof")
        lines_sent = sum(variants[s][w % 3][1] for s in range(a.series)
                         for w in range(min(windows, a.ceiling_windows)))
        res["ceiling_lines_per_s"] = lines_sent / dt
        print("transport ceiling: %.0f lines/s (%d errors)" % (res["ceiling_lines_per_s"], err),
              file=sys.stderr)
        cpu0 = col.cpu()
        print("ingesting %d windows x %d series x %d stacks ..." % (windows, a.series, a.stacks),
              file=sys.stderr)
        nl, ns, err, dt = run_phase(col.port, a.series, t0, windows, a.window, variants,
                                    a.clients, "folded")
        res.update(lines=nl, samples=ns, ingest_errors=err, ingest_s=dt,
                   lines_per_s=nl / dt, collector_cpu_s=col.cpu() - cpu0)
        ingested_bytes = sum(len(variants[s][w % 3][0]) for s in range(a.series)
                             for w in range(windows))
        # let compaction build the hour rollups (it runs in the collector's loop) until the
        # number of rollups stops growing (the newest hours wait until their series moves on)
        t_wait, last, still = time.time(), -1, 0
        while time.time() - t_wait < 600 and still < 3:
            st = json.loads(timed_get(col.port, "/api/stats", 1)[2])
            still = still + 1 if st.get("rollups", 0) == last else 0
            last = st.get("rollups", 0)
            time.sleep(1)
        res["rollups"] = last
        res["rollup_wait_s"] = time.time() - t_wait
        sel = "/render?" + urllib.parse.urlencode({"query": APP, "from": t0, "until": now})
        last = "/render?" + urllib.parse.urlencode({"query": APP, "from": now - 3600,
                                                    "until": now})
        res["query_day_s"], res["query_day_bytes"], _ = timed_get(col.port, sel, a.queries)
        res["query_day_svg_s"], _, _ = timed_get(col.port, sel + "&format=svg", a.queries)
        res["query_hour_s"], _, _ = timed_get(col.port, last, a.queries)
        tl = "/api/timeline?" + urllib.parse.urlencode({"query": APP, "from": t0, "until": now})
        res["timeline_day_s"], _, _ = timed_get(col.port, tl, a.queries)
        col.stop()
        db = sum(os.path.getsize(os.path.join(data, f)) for f in os.listdir(data))
        res.update(db_bytes=db, bytes_per_sample=db / max(1, ns),
                   folded_bytes_per_sample=ingested_bytes / max(1, ns))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    print()
    print("pysamp-collector: %d series x %d windows of %d s (%.1f h), %d stacks per profile, "
          "%d clients" % (a.series, windows, a.window, a.hours, a.stacks, a.clients))
    print("  ingest   %10.0f lines/s stored (%d lines, %d samples in %.1f s, %d errors); "
          "collector CPU %.0f%% of a core" % (res["lines_per_s"], res["lines"], res["samples"],
                                              res["ingest_s"], res["ingest_errors"],
                                              100 * res["collector_cpu_s"] / res["ingest_s"]))
    print("           %10.2f x the transport ceiling (%.0f lines/s read and refused unparsed)"
          % (res["lines_per_s"] / res["ceiling_lines_per_s"], res["ceiling_lines_per_s"]))
    print("  query    %10.0f ms for %.0f h over %d series, folded (%d bytes); svg %.0f ms; "
          "last hour %.0f ms (day/hour %.1f x)" % (
              1000 * res["query_day_s"], a.hours, a.series, res["query_day_bytes"],
              1000 * res["query_day_svg_s"], 1000 * res["query_hour_s"],
              res["query_day_s"] / max(1e-9, res["query_hour_s"])))
    print("  rollups  %10d hour rollups built in %.0f s after the ingest" % (
        res["rollups"], res["rollup_wait_s"]))
    print("  timeline %10.0f ms for %.0f h over %d series (about 1000 points)" % (
        1000 * res["timeline_day_s"], a.hours, a.series))
    print("  disk     %10.3f bytes per sample (%d bytes); folded text ingested: %.1f bytes per "
          "sample (%.0f x smaller)" % (res["bytes_per_sample"], res["db_bytes"],
                                        res["folded_bytes_per_sample"],
                                        res["folded_bytes_per_sample"] / res["bytes_per_sample"]))
    goals = [("ingest >= 200,000 lines/s", res["lines_per_s"] >= 200000),
             ("24-hour query < 300 ms", None if a.hours < 24 else res["query_day_s"] < 0.3),
             ("< 2 bytes per sample", res["bytes_per_sample"] < 2)]
    for name, ok in goals:
        print("  goal %-28s %s" % (name, "not measured (--hours < 24)" if ok is None
                                   else "met" if ok else "MISSED"))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(res, f, indent=1)
    if res["ingest_errors"]:
        return 2
    return 1 if a.check and not all(ok is not False for _, ok in goals) else 0


if __name__ == "__main__":
    sys.exit(main())
