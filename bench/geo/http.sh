#!/usr/bin/env bash
# Geo through HTTP: GET /api/v1/geo/near (top 20 within 300 m) against the hub holding a
# national-scale inventory (bench/import/gen.py: 250,000 sites, about 1.6 million cameras),
# driven by wrk from 10,000 points near real camera positions. Prints requests per second,
# latency, errors and the hub's peak memory. The in-process figures are bench/geo/run.sh's.
#
# usage: bench/geo/http.sh     (ROWS=N sites, BUILD=DIR build dir, CONNS="10 50", DURATION=10,
#                               KEEP=1 keeps the work folder)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
. "$ROOT/bench/lib/http.sh" # lifts the per-address caps (every client is 127.0.0.1)
BUILD=${BUILD:-$ROOT/build/release}
ROWS=${ROWS:-250000}
CONNS=${CONNS:-"10 50 200"}
DURATION=${DURATION:-10}
bench_need http.sh wrk sqlite3 python3 curl cmake
bench_run_tmp geo
bench_build_hub

echo "== generate $ROWS sites and import them"
python3 "$ROOT/bench/import/gen.py" --rows "$ROWS" "$TMP/national.csv"
"$BUILD/cctvhub" import --log-level warn --data-dir "$TMP/data" --json "$TMP/national.csv" \
    >"$TMP/report.json"
cams=$(sqlite3 "$TMP/data/cctvhub.db" "select count(*) from cameras where located = 1")
echo "   $cams located cameras"

# 10,000 query points: real camera positions, moved up to ~100 m.
sqlite3 -separator ' ' "$TMP/data/cctvhub.db" \
    "select lat, lon from cameras where located = 1 order by random() limit 10000" \
    >"$TMP/points.txt"
# The queries come from an agency's system with its API key (the route needs a role).
agency=$(sqlite3 "$TMP/data/cctvhub.db" "select min(id) from agencies")
key=$("$BUILD/cctvhub" apikey create --log-level warn --data-dir "$TMP/data" --agency "$agency" \
    --role agency 2>/dev/null)
bench_near_lua "$key" "$TMP/points.txt" 0.002 20 >"$TMP/near.lua"

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$BUILD/cctvhub" serve --log-level warn --data-dir "$TMP/data" --http "127.0.0.1:$port" \
    2>"$TMP/serve.log" &
pid=$!
t0=$(date +%s.%N)
until curl -fsS "http://127.0.0.1:$port/api/v1/health" >/dev/null 2>&1; do
    kill -0 "$pid" 2>/dev/null || { cat "$TMP/serve.log"; exit 1; }
    sleep 0.1
done
t1=$(date +%s.%N)
echo "   hub up with its index in $(python3 -c "print(round($t1 - $t0, 1))") s"
curl -fsS -H "Authorization: Bearer $key" "http://127.0.0.1:$port/api/v1/geo/near?lat=$(head -1 "$TMP/points.txt" | tr ' ' '&' | sed 's/&/\&lon=/')&radius_m=300&limit=3" \
    | head -c 300; echo

ulimit -n 65536 2>/dev/null || true
printf '\n%-12s %12s %10s %10s %10s\n' connections req/s p50 p99 errors
for c in $CONNS; do
    wrk -t2 -c"$c" -d"${DURATION}s" --latency -s "$TMP/near.lua" "http://127.0.0.1:$port" \
        >"$TMP/wrk-$c.txt" 2>&1
    rps=$(awk '/Requests\/sec/ {print $2}' "$TMP/wrk-$c.txt")
    p50=$(awk '$1 == "50%" {print $2}' "$TMP/wrk-$c.txt")
    p99=$(awk '$1 == "99%" {print $2}' "$TMP/wrk-$c.txt")
    err=$(awk '/Socket errors|Non-2xx/ {print}' "$TMP/wrk-$c.txt" | tr '\n' ' ')
    printf '%-12s %12s %10s %10s %10s\n' "$c" "$rps" "$p50" "$p99" "${err:-none}"
done
rss=$(awk '/VmHWM/ {print $2, $3}' "/proc/$pid/status")
echo
echo "hub peak RSS: $rss (store cache, HTTP buffers and the geo index of $cams cameras)"
