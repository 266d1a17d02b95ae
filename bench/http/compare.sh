#!/usr/bin/env bash
# Before/after on the HTTP hot path: two cctvhub binaries side by side under wrk on
# GET /api/v1/health, in alternating rounds, reporting for each its requests per second and
# the CPU time its process spent per request (utime + stime from /proc/PID/stat over the
# round, divided by wrk's request count); medians over the rounds and the ratios after /
# before. On a busy machine req/s swings with the neighbours; CPU per request does much less,
# and is what a change on the hot path moves.
#
#   bench/http/compare.sh [BASE [HEAD]]         # two trees built side by side (bench/lib/trees.sh):
#                                               # BASE default fd6bf6a, HEAD the working tree
#   bench/http/compare.sh OLD_BINARY NEW_BINARY # two binaries built already
#
# TARGET=session measures an authenticated request instead: GET /api/v1/session (who am I)
# with the session cookie of an operator made before the hub starts and logged in once, so
# each request is authentication (the principals cache, or the store before it) and a small
# answer.
#
# Environment: ROUNDS (5), CONNS (100), DURATION (5s), THREADS (2), TARGET (health). Both hubs run on free
# ports of 127.0.0.1 with temporary data directories, removed on exit with the hubs killed.
# About 1 minute with the defaults, once both trees are built.
set -euo pipefail
# Every client of a benchmark connects from 127.0.0.1: lift the per-address caps that stop
# floods (http.max_connections_per_addr, relay.max_unauthorized*; README, Operations).
export CCTVHUB_HTTP_MAX_CONNECTIONS_PER_ADDR=0 CCTVHUB_RELAY_MAX_UNAUTHORIZED=4096 \
    CCTVHUB_RELAY_MAX_UNAUTHORIZED_PER_ADDR=4096
. "$(dirname "$0")/../lib/trees.sh"

[ $# -le 2 ] || { echo "usage: $0 [BASE [HEAD]] | OLD_BINARY NEW_BINARY" >&2; exit 2; }
rounds="${ROUNDS:-5}"
conns="${CONNS:-100}"
duration="${DURATION:-5s}"
threads="${THREADS:-2}"
target="${TARGET:-health}"
case "$target" in health | session) ;; *) echo "compare.sh: TARGET is health or session" >&2; exit 2 ;; esac
password=bench-password-0123
started=$(date +%s)
if [ $# -eq 2 ] && [ -f "$1" ] && [ -x "$1" ] && [ -f "$2" ] && [ -x "$2" ]; then
    bins=("$1" "$2")
    base_label=$1 head_label=$2
else
    bench_trees "${1:-fd6bf6a}" "${2:-WORKTREE}" cctvhub
    bins=("$base_build/cctvhub" "$head_build/cctvhub")
fi
for tool in wrk curl python3; do
    command -v "$tool" >/dev/null || { echo "compare.sh: $tool is not installed" >&2; exit 1; }
done
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

bench_tmp compare

ports=()
cookies=()
for i in 0 1; do
    bin=${bins[$i]}
    port="$(free_port)"
    mkdir -p "$tmp/data$i"
    if [ "$target" = session ]; then
        printf '%s' "$password" | "$bin" user add bench --role operator --password-stdin \
            --data-dir "$tmp/data$i" >/dev/null
    fi
    "$bin" serve --http "127.0.0.1:$port" --rtsp 127.0.0.1:0 --data-dir "$tmp/data$i" \
        --log-level warn >"$tmp/hub$i.log" 2>&1 &
    pids+=($!)
    ports+=("$port")
    for _ in $(seq 100); do
        curl -fsS -o /dev/null "http://127.0.0.1:$port/api/v1/health" 2>/dev/null && break
        sleep 0.1
    done
    cookie=
    if [ "$target" = session ]; then
        cookie="$(curl -fsS -D - -o /dev/null -H 'Content-Type: application/json' \
            -d "{\"username\":\"bench\",\"password\":\"$password\"}" \
            "http://127.0.0.1:$port/api/v1/session" |
            awk -F'[ ;]' 'tolower($1) == "set-cookie:" { print $2 }')"
        [ -n "$cookie" ] || { echo "compare.sh: no session from hub $i" >&2; exit 1; }
    fi
    cookies+=("Cookie: $cookie")
done
hz="$(getconf CLK_TCK)"
echo "old: $base_label: ${bins[0]} (port ${ports[0]})"
echo "new: $head_label: ${bins[1]} (port ${ports[1]})"
echo "wrk -t$threads -c$conns -d$duration GET /api/v1/$target, $rounds rounds, alternating (old first in odd rounds, new first in even ones); cores: $(nproc); load: $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-6s %12s %14s %12s %14s\n' round "old req/s" "old cpu us/req" "new req/s" "new cpu us/req"
for r in $(seq "$rounds"); do
    line=()
    for side in $(sides "$r"); do
        i=$([ $side = before ] && echo 0 || echo 1)
        url="http://127.0.0.1:${ports[$i]}/api/v1/$target"
        hdr=()
        [ "$target" = health ] || hdr=(-H "${cookies[$i]}")
        wrk -t"$threads" -c"$conns" -d1s "${hdr[@]}" "$url" >/dev/null 2>&1 || true
        t0="$(ticks "${pids[$i]}")"
        out="$(wrk -t"$threads" -c"$conns" -d"$duration" "${hdr[@]}" "$url" 2>&1)"
        if echo "$out" | grep -q 'Non-2xx'; then
            echo "compare.sh: hub $i answered errors: $(echo "$out" | grep 'Non-2xx')" >&2
        fi
        t1="$(ticks "${pids[$i]}")"
        reqs="$(echo "$out" | awk '/requests in/ { print $1 }')"
        rps="$(echo "$out" | awk '/^Requests\/sec:/ { printf "%.0f", $2 }')"
        cpu="$(awk -v d=$((t1 - t0)) -v hz="$hz" -v n="$reqs" 'BEGIN { printf "%.2f", d / hz * 1e6 / n }')"
        line[$((2 * i))]=$rps
        line[$((2 * i + 1))]=$cpu
        bench_keep $side "req/s (c$conns)" "$rps"
        bench_keep $side "CPU per request (us)" "$cpu"
    done
    printf '%-6s %12s %14s %12s %14s\n' "$r" "${line[@]}"
done
echo "== medians over $rounds rounds"
bench_report
echo "($(($(date +%s) - started)) s in all, builds included)"
