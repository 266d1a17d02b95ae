#!/usr/bin/env bash
# Before/after on events: two cctvhub trees built side by side (bench/lib/trees.sh), each
# with a store of the same generated sites (setup.sh, as run.sh), both hubs running at once,
# measured in alternating rounds (the side that goes first swaps every round); medians over
# the rounds and the ratios after / before. Per round and side:
#  - wrk (closed loop) POST /api/v1/events at CONNS connections for DURATION s: events/s,
#    latency p50 and p99, and the hub's CPU time per event (utime + stime from /proc/PID/stat
#    over the run, divided by wrk's request count);
#  - load.c (open loop) at RATE events/s over CONNS connections for DURATION s: latency p50,
#    p90 and p99 counted from when each event was due.
#
#   bench/events/compare.sh [BASE [HEAD]]   # BASE default fd6bf6a; HEAD default the working tree
#
# Environment: ROUNDS (5), ROWS (20000 sites, about 130,000 cameras), CONNS (100), RATE (1000;
# keep it under what both hubs sustain, or the open loop measures its own queue),
# DURATION (5). About 3 minutes on 2 cores with the defaults, once both trees are built.
set -euo pipefail
# Every client of a benchmark connects from 127.0.0.1: lift the per-address caps that stop
# floods (http.max_connections_per_addr, relay.max_unauthorized*; README, Operations).
export CCTVHUB_HTTP_MAX_CONNECTIONS_PER_ADDR=0 CCTVHUB_RELAY_MAX_UNAUTHORIZED=4096 \
    CCTVHUB_RELAY_MAX_UNAUTHORIZED_PER_ADDR=4096
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
. "$ROOT/bench/lib/trees.sh"
. "$ROOT/bench/events/setup.sh"

[ $# -le 2 ] || { echo "usage: $0 [BASE [HEAD]]" >&2; exit 2; }
rounds=${ROUNDS:-5}
rows=${ROWS:-20000}
conns=${CONNS:-100}
rate=${RATE:-1000}
duration=${DURATION:-5}
for tool in wrk sqlite3 python3 curl cmake; do
    command -v "$tool" >/dev/null || { echo "events/compare.sh: $tool is missing" >&2; exit 2; }
done
hz=$(getconf CLK_TCK)
started=$(date +%s)

bench_trees "${1:-fd6bf6a}" "${2:-WORKTREE}" cctvhub

bench_tmp events-compare
ulimit -n 65536 2>/dev/null || true

cc -O2 -Wall -Wextra -Werror -o "$tmp/load" "$ROOT/bench/events/load.c"
echo "== $rows generated sites imported into each store; a police agency and its API key"
python3 "$ROOT/bench/import/gen.py" --rows "$rows" "$tmp/sites.csv"
declare -A pid port key
for side in before after; do
    build=$(side_build $side)
    src=$(side_src $side)
    mkdir -p "$tmp/$side"
    key[$side]=$(events_store "$build/cctvhub" "$tmp/sites.csv" "$tmp/$side/data")
    if [ $side = before ]; then
        events_points "$tmp/$side/data" "$tmp/points.txt"
    fi
    events_lua "${key[$side]}" "$tmp/points.txt" "$tmp/$side"
    port[$side]=$(free_port)
    CCTVHUB_SERVICES_FILE="$src/etc/services.json" "$build/cctvhub" serve --log-level warn \
        --data-dir "$tmp/$side/data" --http "127.0.0.1:${port[$side]}" --rtsp 127.0.0.1:0 \
        2>"$tmp/$side/serve.log" &
    pids+=($!)
    pid[$side]=$!
    until curl -fsS "http://127.0.0.1:${port[$side]}/api/v1/health" >/dev/null 2>&1; do
        kill -0 "${pid[$side]}" 2>/dev/null || { cat "$tmp/$side/serve.log"; exit 1; }
        sleep 0.1
    done
done

# wrk's latency ("812.00us", "20.90ms", "1.02s") in ms.
ms() {
    awk -v v="$1" 'BEGIN {
        n = v + 0; u = v; sub(/^[0-9.]+/, "", u)
        printf "%.3f", u == "us" ? n / 1000 : u == "s" ? n * 1000 : u == "m" ? n * 60000 : n }'
}


echo "before: $base_label ($base_build)"
echo "after:  $head_label ($head_build)"
echo "$rounds rounds, alternating; wrk -t2 -c$conns -d${duration}s, open loop $rate/s over $conns connections for $duration s"
echo "cores: $(nproc); load: $(cut -d' ' -f1-3 /proc/loadavg)"
for r in $(seq "$rounds"); do
    for side in $(sides "$r"); do
        url="http://127.0.0.1:${port[$side]}"
        t0=$(ticks "${pid[$side]}")
        out=$(wrk -t2 -c"$conns" -d"${duration}s" --latency -s "$tmp/$side/events.lua" "$url" 2>&1)
        t1=$(ticks "${pid[$side]}")
        reqs=$(echo "$out" | awk '/requests in/ { print $1 }')
        rps=$(echo "$out" | awk '/^Requests\/sec:/ { printf "%.0f", $2 }')
        p50=$(ms "$(echo "$out" | awk '$1 == "50%" { print $2 }')")
        p99=$(ms "$(echo "$out" | awk '$1 == "99%" { print $2 }')")
        cpu=$(awk -v d=$((t1 - t0)) -v hz="$hz" -v n="$reqs" 'BEGIN { printf "%.1f", d / hz * 1e6 / n }')
        errs=$(echo "$out" | awk '/Socket errors|Non-2xx/' | tr '\n' ' ')
        open=$("$tmp/load" 127.0.0.1 "${port[$side]}" "$conns" "$rate" "$duration" \
            "$tmp/points.txt" "${key[$side]}" | tr '\n' ' ') || true
        o50=$(echo "$open" | sed -n 's/.*p50 \([0-9.]*\).*/\1/p')
        o90=$(echo "$open" | sed -n 's/.*p90 \([0-9.]*\).*/\1/p')
        o99=$(echo "$open" | sed -n 's/.*p99 \([0-9.]*\).*/\1/p')
        echo "round $r $side: wrk $rps events/s, p50 $p50 ms, p99 $p99 ms, $cpu us CPU/event${errs:+, $errs}; open loop: $open"
        bench_keep $side "wrk events/s (c$conns)" "$rps"
        bench_keep $side "wrk CPU per event (us)" "$cpu"
        bench_keep $side "wrk p50 (ms)" "$p50"
        bench_keep $side "wrk p99 (ms)" "$p99"
        bench_keep $side "open loop $rate/s p50 (ms)" "$o50"
        bench_keep $side "open loop $rate/s p90 (ms)" "$o90"
        bench_keep $side "open loop $rate/s p99 (ms)" "$o99"
    done
done

echo "== medians over $rounds rounds (lower is better but for events/s)"
bench_report
echo "($(($(date +%s) - started)) s in all, builds included)"
