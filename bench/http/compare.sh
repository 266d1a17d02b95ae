#!/usr/bin/env bash
# Before/after on the HTTP hot path: two cctvhub binaries side by side under wrk on
# GET /api/v1/health, in alternating rounds, reporting for each its requests per second and
# the CPU time its process spent per request (utime + stime from /proc/PID/stat over the
# round, divided by wrk's request count). On a busy machine req/s swings with the
# neighbours; CPU per request does much less, and is what a change on the hot path moves.
#
#   bench/http/compare.sh OLD_BINARY NEW_BINARY
#
# Environment: ROUNDS (5), CONNS (100), DURATION (5s), THREADS (2). Both hubs run on free
# ports of 127.0.0.1 with temporary data directories, removed on exit with the hubs killed.
set -euo pipefail
# Every client of a benchmark connects from 127.0.0.1: lift the per-address caps that stop
# floods (http.max_connections_per_addr, relay.max_unauthorized*; README, Operations).
export CCTVHUB_HTTP_MAX_CONNECTIONS_PER_ADDR=0 CCTVHUB_RELAY_MAX_UNAUTHORIZED=4096 \
    CCTVHUB_RELAY_MAX_UNAUTHORIZED_PER_ADDR=4096

[ $# -eq 2 ] || { echo "usage: $0 OLD_BINARY NEW_BINARY" >&2; exit 2; }
rounds="${ROUNDS:-5}"
conns="${CONNS:-100}"
duration="${DURATION:-5s}"
threads="${THREADS:-2}"
for tool in wrk curl python3; do
    command -v "$tool" >/dev/null || { echo "compare.sh: $tool is not installed" >&2; exit 1; }
done
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

tmp="$(mktemp -d /tmp/cctvhub-bench-compare.XXXXXX)"
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# CPU ticks (utime + stime) of a process.
ticks() {
    awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"
}

ports=()
for i in 0 1; do
    bin=$([ "$i" -eq 0 ] && echo "$1" || echo "$2")
    [ -x "$bin" ] || { echo "compare.sh: no binary at $bin" >&2; exit 1; }
    port="$(free_port)"
    mkdir -p "$tmp/data$i"
    "$bin" serve --http "127.0.0.1:$port" --rtsp 127.0.0.1:0 --data-dir "$tmp/data$i" \
        --log-level warn >"$tmp/hub$i.log" 2>&1 &
    pids+=($!)
    ports+=("$port")
    for _ in $(seq 100); do
        curl -fsS -o /dev/null "http://127.0.0.1:$port/api/v1/health" 2>/dev/null && break
        sleep 0.1
    done
done
hz="$(getconf CLK_TCK)"
echo "old: $1 (port ${ports[0]})"
echo "new: $2 (port ${ports[1]})"
echo "wrk -t$threads -c$conns -d$duration, $rounds rounds, alternating; cores: $(nproc); load: $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-6s %12s %14s %12s %14s\n' round "old req/s" "old cpu us/req" "new req/s" "new cpu us/req"
declare -a rps0 rps1 cpu0 cpu1
for r in $(seq "$rounds"); do
    line=()
    for i in 0 1; do
        url="http://127.0.0.1:${ports[$i]}/api/v1/health"
        wrk -t"$threads" -c"$conns" -d1s "$url" >/dev/null 2>&1 || true
        t0="$(ticks "${pids[$i]}")"
        out="$(wrk -t"$threads" -c"$conns" -d"$duration" "$url" 2>&1)"
        t1="$(ticks "${pids[$i]}")"
        reqs="$(echo "$out" | awk '/requests in/ { print $1 }')"
        rps="$(echo "$out" | awk '/^Requests\/sec:/ { printf "%.0f", $2 }')"
        cpu="$(awk -v d=$((t1 - t0)) -v hz="$hz" -v n="$reqs" 'BEGIN { printf "%.2f", d / hz * 1e6 / n }')"
        line+=("$rps" "$cpu")
        if [ "$i" -eq 0 ]; then rps0+=("$rps"); cpu0+=("$cpu"); else rps1+=("$rps"); cpu1+=("$cpu"); fi
    done
    printf '%-6s %12s %14s %12s %14s\n' "$r" "${line[@]}"
done
median() { printf '%s\n' "$@" | sort -g | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
printf '%-6s %12s %14s %12s %14s\n' median "$(median "${rps0[@]}")" "$(median "${cpu0[@]}")" \
    "$(median "${rps1[@]}")" "$(median "${cpu1[@]}")"
