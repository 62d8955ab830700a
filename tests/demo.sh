#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# `make run`: start the collector (SQLite under .output/pysamp-data), the agent
# on every Python process of this host (--all) with its HTTP endpoint
# (--listen) pushing to the collector (--push), and a demo Python program so
# there is something to see; print where to look and a first profile, then
# keep profiling until Ctrl-C (or DEMO_SECONDS, when set).
set -eu
cd "$(dirname "$0")/.."
py=${PYTHON:-python3}
port=${PORT:-4041}
cport=${COLLECTOR_PORT:-4040}
data=${DATA_DIR:-.output/pysamp-data}
secs=${DEMO_SECONDS:-0}
"$py" tests/demo.py 100000000 &
demo=$!
agent=
collector=
cleanup() {
	kill "$demo" 2>/dev/null || true
	[ -n "$agent" ] && kill -INT "$agent" 2>/dev/null && wait "$agent" 2>/dev/null || true
	[ -n "$collector" ] && kill -TERM "$collector" 2>/dev/null && wait "$collector" 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 0' INT TERM
echo "make run: ./pysamp-collector --listen 127.0.0.1:$cport --data-dir $data" >&2
./pysamp-collector --listen "127.0.0.1:$cport" --data-dir "$data" &
collector=$!
echo "make run: ./pysamp-bpf --all --listen 127.0.0.1:$port --push http://127.0.0.1:$cport" >&2
./pysamp-bpf --all --listen "127.0.0.1:$port" --push "http://127.0.0.1:$cport" &
agent=$!
i=0
until curl -sf "http://127.0.0.1:$port/healthz" >/dev/null 2>&1; do
	i=$((i + 1))
	if [ $i -gt 100 ] || ! kill -0 "$agent" 2>/dev/null; then
		echo "make run: the agent did not start" >&2
		exit 1
	fi
	sleep 0.1
done
cat >&2 <<MSG

pysamp-bpf is profiling every Python process on this host (demo: pid $demo).
Where to look:
  curl -s 'http://127.0.0.1:$port/?seconds=60' | flamegraph.pl > profile.svg
  curl -s 'http://127.0.0.1:$port/?group=app'          last 10 s, by application
  curl -s 'http://127.0.0.1:$port/?pid=$demo'           one process
  curl -s http://127.0.0.1:$port/metrics               the agent's counters (Prometheus)
The collector keeps every 10 s window the agent pushes. Its web UI (timeline,
flame graph, top functions, diff of two intervals):
  http://127.0.0.1:$cport/?app=demo&from=now-15m
  curl -s http://127.0.0.1:$cport/api/series                  applications and labels
  curl -sg 'http://127.0.0.1:$cport/render?query=demo&from=now-1h&until=now&format=svg' > demo.svg
First profile in 10 s; Ctrl-C stops.

MSG
sleep 10
echo "--- curl -s 'http://127.0.0.1:$port/?seconds=10' | head" >&2
curl -s "http://127.0.0.1:$port/?seconds=10" | head -n 8
sleep 2
echo "--- curl -s http://127.0.0.1:$cport/api/series" >&2
curl -s "http://127.0.0.1:$cport/api/series"
if [ "$secs" -gt 0 ]; then
	sleep "$secs"
else
	wait "$agent"
fi
