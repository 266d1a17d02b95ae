#!/bin/sh
# bench/ws: browser viewers (fMP4 over WebSocket) against RTSP viewers of the same camera, same
# run, same hub: the hub's CPU per viewer for each, and their ratio (issue 7's target: a
# WebSocket viewer costs at most 1.5x an RTSP viewer). One 1080p H.264 camsim camera at about
# 4.4 Mbit/s, 25 fps, GOP 2 s; the hub pre-warms it through a grant; N viewers join at once and
# are measured over the middle of the run (CPU from /proc/PID/stat, the idle pull subtracted).
# usage: BUILD=build/release bench/ws/run.sh   (VIEWERS="200 1000", SECONDS_EACH=12)
set -eu
# Every client of a benchmark connects from 127.0.0.1: lift the per-address caps that stop
# floods (http.max_connections_per_addr, relay.max_unauthorized*; README, Operations).
export CCTVHUB_HTTP_MAX_CONNECTIONS_PER_ADDR=0 CCTVHUB_RELAY_MAX_UNAUTHORIZED=4096 \
    CCTVHUB_RELAY_MAX_UNAUTHORIZED_PER_ADDR=4096
top=$(cd "$(dirname "$0")/../.." && pwd)
build=${BUILD:-$top/build/release}
cmake -S "$top" -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build" -j2 --target cctvhub ch_codec ch_proto ch_core >/dev/null
clips=$build/camsim-clips
"$top/tools/camsim/make_clips.sh" "$clips" >/dev/null
work=$(mktemp -d)
pids=""
cleanup() { for p in $pids; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT INT TERM
cc -O2 -Wall -Wextra -Werror "$top/bench/ws/ws_viewers.c" -o "$work/ws_viewers"
cc -O2 -Wall -Wextra -Werror -I"$top/src" "$top/bench/relay/viewers.c" "$build/libch_codec.a" \
    "$build/libch_proto.a" "$build/libch_core.a" -luv -linih -lm -lssl -lcrypto -o "$work/viewers"
ulimit -n 65536 2>/dev/null || true
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
cam_port=$(free_port)
http_port=$(free_port)
rtsp_port=$(free_port)
python3 "$top/tools/camsim/camsim.py" --listen "127.0.0.1:$cam_port" --clips "$clips" --quiet \
    >"$work/camsim.out" 2>&1 &
pids="$pids $!"
python3 "$top/bench/relay/hubsetup.py" admin --bin "$build/cctvhub" --data-dir "$work/var" >/dev/null
CCTVHUB_SERVICES_FILE="$top/etc/services.json" CCTVHUB_LOG_LEVEL=warn "$build/cctvhub" serve \
    --data-dir "$work/var" --http "127.0.0.1:$http_port" --rtsp "127.0.0.1:$rtsp_port" \
    2>"$work/hub.log" &
hub=$!
pids="$pids $hub"
sleep 1
rtsp_url=$(python3 "$top/bench/relay/hubsetup.py" grant --http "127.0.0.1:$http_port" \
    --data-dir "$work/var" --camera-url "rtsp://127.0.0.1:$cam_port/cam1")
ws_url=$(echo "$rtsp_url" | sed "s#^rtsp://127.0.0.1:$rtsp_port/cameras/\([0-9]*\)?#ws://127.0.0.1:$http_port/api/v1/cameras/\1/live?#")
sleep 3 # warm: a whole GOP cached
hz=$(getconf CLK_TCK)
ticks() { awk '{print $14 + $15}' "/proc/$hub/stat"; }
secs=${SECONDS_EACH:-12}
# CPU rate (cores) of the hub over [secs/3, 2*secs/3] of a run of the command given.
measure() {
    "$@" >"$work/out.csv" &
    vp=$!
    sleep "$(awk -v s="$secs" 'BEGIN {print s / 3}')"
    c1=$(ticks)
    t1=$(date +%s.%N)
    sleep "$(awk -v s="$secs" 'BEGIN {print s / 3}')"
    c2=$(ticks)
    t2=$(date +%s.%N)
    wait "$vp"
    awk -v c1="$c1" -v c2="$c2" -v t1="$t1" -v t2="$t2" -v hz="$hz" \
        'BEGIN {printf "%.5f", (c2 - c1) / hz / (t2 - t1)}'
}
c1=$(ticks)
t1=$(date +%s.%N)
sleep 4
c2=$(ticks)
t2=$(date +%s.%N)
idle=$(awk -v c1="$c1" -v c2="$c2" -v t1="$t1" -v t2="$t2" -v hz="$hz" \
    'BEGIN {printf "%.5f", (c2 - c1) / hz / (t2 - t1)}')
echo "hub with the pull alone (no viewer): $(awk -v r="$idle" 'BEGIN {printf "%.2f%%", r * 100}') of a core"
echo
echo "| viewers | RTSP: streaming / failed | RTSP Mbit/s median | hub CPU, RTSP | WS: streaming / failed | WS Mbit/s median | WS first message p50 / p95 (ms) | hub CPU, WS | WS / RTSP per viewer |"
echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"
for n in ${VIEWERS:-200 1000}; do
    r=$(measure "$work/viewers" -n "$n" --seconds "$secs" --csv "$rtsp_url")
    rline=$(tail -1 "$work/out.csv")
    sleep 2
    w=$(measure "$work/ws_viewers" -n "$n" --seconds "$secs" "$ws_url")
    wline=$(tail -1 "$work/out.csv")
    sleep 2
    echo "$rline|$wline" | awk -F'|' -v n="$n" -v r="$r" -v w="$w" -v idle="$idle" '{
        split($1, a, ","); split($2, b, ",")
        ratio = (r - idle) > 0 ? sprintf("%.2f", (w - idle) / (r - idle)) : "n/a"
        printf "| %d | %s / %s | %s | %.1f%% | %s / %s | %s | %s / %s | %.1f%% | **%s** |\n",
            n, a[5], a[7], a[10], r * 100, b[3], b[4], b[6], b[7], b[8], w * 100, ratio
    }'
done
