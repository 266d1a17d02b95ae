#!/usr/bin/env bash
# Events through HTTP: POST /api/v1/events (112-dispatch: policy check, camera selection among
# the cameras near the point, up to 10 grants each with a signed view token, one durable audit
# record, one store transaction) by an agency's system with its API key, driven by wrk from
# random points near real camera positions, at 100 and 1,000 connections. In the same run and
# with the same points, the reference: GET /api/v1/geo/near (the camera selection alone, no
# decision, no write, no fsync), so the ratio says what deciding and recording cost.
#
# Two ways to load it: wrk (closed loop: C connections each wait for their answer, so the
# latency is C / throughput by Little's law, and the rate is the most the hub sustains) and
# bench/events/load.c (open loop: events arrive at RATES per second whatever the hub does,
# over C connections; latency counted from when each event was due).
#
# usage: bench/events/run.sh   (ROWS=N sites of bench/import/gen.py, default 20,000 = about
#                               130,000 cameras; BUILD=DIR; CONNS="100 1000"; RATES="2000";
#                               DURATION=10; KEEP=1 keeps the work folder)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
. "$ROOT/bench/events/setup.sh" # and bench/lib/http.sh: the per-address caps lifted
BUILD=${BUILD:-$ROOT/build/release}
ROWS=${ROWS:-20000}
CONNS=${CONNS:-"100 1000"}
RATES=${RATES:-"2000"}
DURATION=${DURATION:-10}
bench_need events/run.sh wrk sqlite3 python3 curl cmake
bench_run_tmp events
bench_build_hub
hub="$BUILD/cctvhub"
cc -O2 -Wall -Wextra -Werror -o "$TMP/load" "$ROOT/bench/events/load.c"

echo "== $ROWS generated sites imported; a police agency and its API key"
python3 "$ROOT/bench/import/gen.py" --rows "$ROWS" "$TMP/sites.csv"
key=$(events_store "$hub" "$TMP/sites.csv" "$TMP/data")
cams=$(sqlite3 "$TMP/data/cctvhub.db" "select count(*) from cameras where located = 1")
echo "   $cams located cameras"
events_points "$TMP/data" "$TMP/points.txt"
events_lua "$key" "$TMP/points.txt" "$TMP"

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
CCTVHUB_SERVICES_FILE="$ROOT/etc/services.json" "$hub" serve --log-level warn \
    --data-dir "$TMP/data" --http "127.0.0.1:$port" 2>"$TMP/serve.log" &
pid=$!
if [ -n "${PERF:-}" ]; then
    perf record -g -p "$pid" -o "$TMP/perf.data" >/dev/null 2>&1 &
    perf_pid=$!
fi
until curl -fsS "http://127.0.0.1:$port/api/v1/health" >/dev/null 2>&1; do
    kill -0 "$pid" 2>/dev/null || { cat "$TMP/serve.log"; exit 1; }
    sleep 0.1
done
read -r lat lon <"$TMP/points.txt"
curl -fsS -H "Authorization: Bearer $key" -H 'Content-Type: application/json' \
    -d "{\"service\":\"112-dispatch\",\"location\":{\"lat\":$lat,\"lon\":$lon},\"incident\":\"X\",\"reason\":\"check\"}" \
    "http://127.0.0.1:$port/api/v1/events" | python3 -c '
import json, sys
e = json.load(sys.stdin)
print("   one event: status %s, %d grants, first token %s..." % (
    e["status"], len(e["grants"]), e["grants"][0]["token"][:24] if e["grants"] else "-"))'

ulimit -n 65536 2>/dev/null || true
run() { # name script connections
    out="$TMP/wrk-$(basename "$2" .lua)-$3.txt"
    wrk -t2 -c"$3" -d"${DURATION}s" --latency -s "$2" "http://127.0.0.1:$port" >"$out" 2>&1
    rps=$(awk '/Requests\/sec/ {print $2}' "$out")
    p50=$(awk '$1 == "50%" {print $2}' "$out")
    p99=$(awk '$1 == "99%" {print $2}' "$out")
    err=$(awk '/Socket errors|Non-2xx/ {print}' "$out" | tr '\n' ' ')
    printf '%-26s %6s %12s %10s %10s   %s\n' "$1" "$3" "$rps" "$p50" "$p99" "${err:-none}"
}
if [ "${WRK:-1}" = 1 ]; then
    printf '\n%-26s %6s %12s %10s %10s   %s\n' what conns req/s p50 p99 errors
    for c in $CONNS; do
        run "POST /events" "$TMP/events.lua" "$c"
        run "GET /geo/near (reference)" "$TMP/near.lua" "$c"
    done
fi
if [ -n "${PERF:-}" ]; then
    kill -INT "$perf_pid"; wait "$perf_pid" || true
    perf report -i "$TMP/perf.data" ${PERF_ARGS:---no-children} --sort symbol -g none \
        2>/dev/null | grep -v '^#' | grep '%' | head -60 >"$ROOT/build/perf-events.txt"
fi
echo
echo "open loop (bench/events/load.c): events due at a fixed rate"
for r in $RATES; do
    for c in $CONNS; do
        printf '%s/s over %s connections: ' "$r" "$c"
        "$TMP/load" 127.0.0.1 "$port" "$c" "$r" "$DURATION" "$TMP/points.txt" "$key" |
            tr '\n' ' '
        echo
    done
done
events=$(sqlite3 "$TMP/data/cctvhub.db" "select count(*) from events")
grants=$(sqlite3 "$TMP/data/cctvhub.db" "select count(*) from grants")
rss=$(awk '/VmHWM/ {print $2, $3}' "/proc/$pid/status")
kill -TERM "$pid"; wait "$pid" || true; pid=
echo
echo "events stored: $events, grants: $grants; hub peak RSS: $rss"
"$hub" audit verify --data-dir "$TMP/data" | tail -1
