# SPDX-License-Identifier: BSD-2-Clause
"""The collector's web UI, end to end, in headless Chromium: an agent (--all
--push) profiles a program that runs phase_alpha for a while, then
phase_beta; the UI (driven by tests/web/ui_check.mjs through playwright-core)
must show both functions in the flame graph of the whole run with widths
that match the program's own CPU clock, zoom on click, find a function by
search, select an interval by dragging on the timeline, link the top table
to the graph, restore a shared URL, and colour the diff of the two phases
(the function that grew red, the one that shrank blue). Screenshots go to
.output/test-artifacts/webui/. Static files: only the embedded paths exist."""
import json
import os
import re
import signal
import subprocess
import time

from itest import HZ, ROOT, http_get, single
from test_collector import Collector

ARTIFACTS = os.path.join(ROOT, ".output", "test-artifacts", "webui")
CHROMIUM = "/usr/bin/chromium"
PHASE_S = 25


def _rgb_kind(rgb):
    if not rgb:
        return None
    r, _, b = rgb
    return "red" if r > b + 30 else "blue" if b > r + 30 else "neutral"


@single
def webui_end_to_end(ctx, interp):
    ctx.check(os.access(CHROMIUM, os.X_OK), "%s is missing (Debian package chromium)", CHROMIUM)
    ctx.check(os.path.isdir(os.path.join(ROOT, "web", "node_modules", "playwright-core")),
              "web/node_modules/playwright-core is missing (make builds it with npm ci)")
    ctx.require()
    col = Collector(ctx, os.path.join(ctx.tmp, "data"))
    # Static files: the embedded ones, nothing else (no file system behind them).
    st, hdr, body = http_get(col.port, "/")
    ctx.check(st == 200 and "text/html" in hdr.get("content-type", "") and "app.js" in body,
              "GET / -> %s %r", st, body[:200])
    st, hdr, _ = http_get(col.port, "/assets/uPlot.iife.min.js")
    ctx.check(st == 200 and "javascript" in hdr.get("content-type", ""), "uPlot -> %s", st)
    for bad in ("/assets/../collector.c", "/assets/%2e%2e/%2e%2e/etc/passwd", "/../../etc/passwd",
                "/assets/", "/assets/app.js/", "/etc/passwd", "/assets/APP.JS"):
        st, _, body = http_get(col.port, bad)
        ctx.check(st in (400, 404) and "root:" not in body, "GET %s -> %s %r", bad, st, body[:100])
    st, _, _ = http_get(col.port, "/", method="POST", body="x")
    ctx.check(st in (405, 413), "POST / -> %s", st)

    h = ctx.start_agent(["--all", "--include", "app:phases", "-F", str(HZ),
                         "--push", "http://127.0.0.1:%d" % col.port])
    t = ctx.target("phases.py", ["--phase-seconds", PHASE_S], name="phases")
    t.wait_ready()
    truth = t.wait_exit(PHASE_S * 2 + 60)
    time.sleep(1)
    run = ctx.profile_async_stop(h, signal.SIGTERM)
    ctx.check(run.rc == 0, "agent exit status %s:\n%s", run.rc, run.stderr[-600:])
    pa, pb = truth["phases"]
    # Whole 10 s buckets inside each phase (the store's resolution), a second of margin.
    def inner(p):
        a = (int(p["start"]) + 1 + 9) // 10 * 10
        b = (int(p["end"]) - 1) // 10 * 10
        return [a, b]
    a, b = inner(pa), inner(pb)
    ctx.check(a[1] > a[0] and b[1] > b[0], "phases too short for whole buckets: %s %s", a, b)
    ctx.require()

    cfg = {"base": "http://127.0.0.1:%d" % col.port, "app": "phases", "a": a, "b": b,
           "fa": pa["label"], "fb": pb["label"], "out": ARTIFACTS, "chromium": CHROMIUM}
    cfg_path = os.path.join(ctx.tmp, "ui.json")
    with open(cfg_path, "w") as f:
        json.dump(cfg, f)
    p = subprocess.run(["node", os.path.join(ROOT, "tests", "web", "ui_check.mjs"), cfg_path],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=300)
    ctx.check(p.returncode == 0, "ui_check.mjs exit %s: %s", p.returncode,
              p.stderr.decode("utf-8", "replace")[-1500:])
    ctx.require()
    res = json.loads(p.stdout.decode())
    for k, v in res.items():
        if isinstance(v, dict) and "error" in v:
            ctx.check(False, "UI step %s failed: %s", k, v["error"][:800])
    ctx.check(not res.get("consoleErrors"), "browser console errors: %s", res.get("consoleErrors"))
    ctx.require()

    # The flame graph of both phases: both functions drawn, sample counts in their tooltips
    # in the proportion of the CPU time the program measured (whole run selected: buckets from
    # the first phase's to the second's).
    fl = res["flame"]
    ctx.check(fl["app"] == "phases", "application picked: %r", fl["app"])
    ctx.check(fl["timeline"] >= 1, "no timeline canvas")

    def count(titles, label):
        # every frame of the function (one per line and caller; they do not nest here)
        n = 0
        for tt in titles:
            m = re.match(re.escape(label) + r" \(.*?\(([\d,]+) samples", tt)
            if m:
                n += int(m.group(1).replace(",", ""))
        return n
    ca, cb = count(fl["frames"], pa["label"]), count(fl["frames"], pb["label"])
    ctx.check(ca and cb, "hot functions not drawn: %s", fl["frames"][:30])
    ctx.require()
    # The selection runs from a's first whole bucket to b's last: the program's own phase
    # times inside it (each phase is CPU-bound, and its CPU clock says how much).
    in_a = (pa["end"] - a[0]) * pa["cpu"] / (pa["end"] - pa["start"])
    in_b = (b[1] - pb["start"]) * pb["cpu"] / (pb["end"] - pb["start"])
    ratio, truth_ratio = ca / cb, in_a / in_b
    ctx.note("samples %s/%s (ratio %.2f), program CPU in the interval %.1f/%.1f s (ratio %.2f)",
             ca, cb, ratio, in_a, in_b, truth_ratio)
    ctx.check(abs(ratio / truth_ratio - 1) < 0.25, "alpha/beta samples %.2f vs program %.2f",
              ratio, truth_ratio)
    ctx.check(abs((ca + cb) / HZ / (in_a + in_b) - 1) < 0.25,
              "samples %d at %d Hz vs %.1f CPU seconds", ca + cb, HZ, in_a + in_b)
    names = [r[0] for r in fl["top"]]
    ctx.check(any(n.startswith(pa["label"]) for n in names[:3]) and
              any(n.startswith(pb["label"]) for n in names[:3]),
              "top table does not lead with the hot functions: %s", names)

    # Zoom on phase_alpha: it fills the width, phase_beta is hidden.
    z = res["zoom"]
    ctx.check(z["alpha"] and z["alpha"]["width"] > 0.9 * z["svgWidth"] * 0.95,
              "zoomed frame width %s of %s", z["alpha"] and z["alpha"]["width"], z["svgWidth"])
    ctx.check(not z["beta"] or not z["beta"]["visible"], "phase_beta still shown after zoom: %s",
              z["beta"])
    ctx.check("x=" in z["url"], "zoom not kept in the URL: %s", z["url"])
    ctx.check(res["reset"]["beta"] and res["reset"]["beta"]["visible"], "reset zoom: %s", res["reset"])

    # Search: a percentage, and the matching frame recoloured (only frames of that function).
    s = res["search"]
    m = re.search(r"([\d.]+)%", s["matched"])
    ctx.check(m and 10 < float(m.group(1)) < 90, "search matched: %r", s["matched"])
    ctx.check(s["changed"] and all(c.startswith(pb["label"]) for c in s["changed"]),
              "highlighted frames: %s", s["changed"][:10])
    ctx.check("s=" in s["url"], "search not in the URL: %s", s["url"])
    tc = res["topClick"]
    ctx.check(tc["search"] and tc["selected"] == 1 and "%" in tc["matched"],
              "top table row click: %s", tc)

    # Exports: a gzip'ed pprof file and the folded text of the interval.
    ex = res["export"]
    ctx.check(ex["pprof"]["head"] == [0x1f, 0x8b] and ex["pprof"]["name"].endswith(".pb.gz"),
              "pprof export: %s", ex["pprof"])
    ctx.check(pb["label"] in (ex["folded"]["text"] or ""), "folded export: %s", ex["folded"])

    # Drag on the timeline: a narrower interval inside the first one.
    d = res["drag"]
    ctx.check(d["from"] and d["until"] and d["from"].isdigit() and d["until"].isdigit() and
              a[0] <= int(d["from"]) < int(d["until"]) <= b[1] + 10,
              "drag selected %s..%s in %s..%s", d["from"], d["until"], a[0], b[1])

    # Diff: compared with the alpha-only baseline, beta grew (red) and alpha shrank (blue).
    df = res["diff"]
    ctx.check(df["beta"] and _rgb_kind(df["beta"]["rgb"]) == "red", "diff colour of beta: %s",
              df["beta"])
    ctx.check(df["alpha"] and _rgb_kind(df["alpha"]["rgb"]) == "blue", "diff colour of alpha: %s",
              df["alpha"])
    ctx.check(any("Change" in x for x in df["topHead"]), "diff table header: %s", df["topHead"])

    sh = res["shared"]
    ctx.check(sh["search"] == pa["label"] and "%" in sh["matched"] and sh["alphaWidth"] and
              sh["alphaWidth"] > 0.85 * sh["svgWidth"], "shared URL view: %s", sh)
    for shot in ("flame.png", "zoom.png", "search.png", "diff.png"):
        path = os.path.join(ARTIFACTS, shot)
        ctx.check(os.path.exists(path) and os.path.getsize(path) > 10000, "screenshot %s", path)
    col.stop()
