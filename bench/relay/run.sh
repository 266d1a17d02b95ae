#!/bin/sh
# bench/relay: the relay benchmark of issue 6, in three parts, all on 127.0.0.1 with free ports,
# everything started here stopped here.
#
# 1. fanout: the fan-out store (media) against the floor (one writev per frame per viewer of
#    bytes prepared once, no protocol work at all), same run, one 1080p H.264 camera at about
#    4 Mbit/s (the camsim clip), 25 fps in real time, to N loopback TCP readers
#    (fanout_bench.c). The floor is also the yardstick of parts 2 and 3: it runs again, for
#    the same count and as long as the steady window, just before each RTSP run.
# 2. gst: the reference relay, GStreamer's RTSP server with a shared media factory
#    (gst_relay.py), relaying camsim's camera to N RTSP viewers (viewers.c) joining at once on a
#    warm stream (one viewer holds the stream from before the first run to after the last):
#    how many it holds, Mbit/s per viewer, time to first keyframe, its CPU (utime+stime from
#    /proc, over the second half of the run where every viewer is streaming, and over the whole
#    run with the joins) against the floor, its peak RSS (VmHWM); then a cold first viewer
#    (a fresh server) started at the same moment as a viewer straight at the camera, three
#    times, so that both wait for the same keyframe and the difference is the relay's own.
# 3. hub: the same for cctvhub's relay (cctvhub serve --rtsp), skipped with a message while
#    `cctvhub serve --help` does not mention --rtsp. An administrator, a district-center
#    provider, a police-112 agency with an API key, a camera on camsim and a 112-center event
#    are created through the API (hubsetup.py); the viewers use the grant's rtsp_url. Warm runs
#    rely on the relay's pre-warm (the grant starts the pull; 3 s later the viewers come); the
#    cold runs use a hub with CCTVHUB_RELAY_PREWARM=0 and a fresh camera each time.
#
# usage: BUILD=build/release bench/relay/run.sh
#   PARTS="fanout gst hub"     which parts to run
#   VIEWERS="200 1000 3000"    fan-out part: viewer counts;  SECONDS_EACH=10 per mode
#   RTSP_VIEWERS="1 200 1000 3000"  parts 2 and 3: viewer counts;  RTSP_SECONDS=20 per count
#   COLD_TRIALS=3              cold first-viewer trials per relay
set -eu
# Every client of a benchmark connects from 127.0.0.1: lift the per-address caps that stop
# floods (http.max_connections_per_addr, relay.max_unauthorized*; README, Operations).
export CCTVHUB_HTTP_MAX_CONNECTIONS_PER_ADDR=0 CCTVHUB_RELAY_MAX_UNAUTHORIZED=4096 \
    CCTVHUB_RELAY_MAX_UNAUTHORIZED_PER_ADDR=4096
top=$(cd "$(dirname "$0")/../.." && pwd)
here=$top/bench/relay
. "$here/common.sh"
build=${BUILD:-$top/build/release}
case $build in /*) ;; *) build=$top/$build ;; esac
parts=${PARTS:-fanout gst hub}
fan_viewers=${VIEWERS:-200 1000 3000}
fan_seconds=${SECONDS_EACH:-10}
rtsp_viewers=${RTSP_VIEWERS:-1 200 1000 3000}
rtsp_seconds=${RTSP_SECONDS:-20}
cold_trials=${COLD_TRIALS:-3}

cmake -S "$top" -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build" -j2 --target ch_proto ch_core >/dev/null
clips=$build/camsim-clips
"$top/tools/camsim/make_clips.sh" "$clips" >/dev/null
work=$(mktemp -d)
pids=""
cleanup() {
    for p in $pids; do
        kill "$p" 2>/dev/null || true
    done
    for p in $pids; do
        wait "$p" 2>/dev/null || true
    done
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
ulimit -n 65536 2>/dev/null || true

# Stops one process started here and forgets it.
stop_pid() {
    kill "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
    rest=""
    for p in $pids; do
        [ "$p" = "$1" ] || rest="$rest $p"
    done
    pids=$rest
}

has_part() {
    case " $parts " in *" $1 "*) return 0 ;; esac
    return 1
}

# A port free on 127.0.0.1 now (the kernel's choice).
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Waits up to 30 s for a line matching $2 in file $1; fails with the file otherwise.
wait_line() {
    i=0
    while ! grep -q "$2" "$1" 2>/dev/null; do
        i=$((i + 1))
        if [ $i -gt 300 ]; then
            echo "run.sh: no \"$2\" after 30 s:" >&2
            cat "$1" >&2
            exit 1
        fi
        sleep 0.1
    done
}

hwm_mib() { awk '/^VmHWM/ {printf "%.0f", $2 / 1024}' "/proc/$1/status"; }

csv_header=$work/csv-header
viewers=$work/viewers
build_viewers "$top" "$build" "$viewers"

# ---- 1. the fan-out store against the floor ----------------------------------------------------

if cmake --build "$build" -j2 --target ch_media >"$work/media-build.log" 2>&1; then
    cc -O2 -Wall -Wextra -Werror -I"$top/src" "$here/fanout_bench.c" "$build/libch_media.a" \
        "$build/libch_core.a" -luv -linih -lpthread -lm -o "$work/fanout"
else
    echo "== ch_media does not build ($work/media-build.log): no fan-out part, no floor:"
    grep -m3 error "$work/media-build.log" || true
fi
if has_part fanout && [ -x "$work/fanout" ]; then
    echo "== fan-out store against the floor ($fan_seconds s each)"
    for n in $fan_viewers; do
        "$work/fanout" "$clips/1080p.h264" "$n" "$fan_seconds"
        echo
    done
fi

# The floor's CPU (seconds per second of media) for $1 viewers, measured now for $2 seconds,
# so that it sees the machine as the RTSP run beside it does; 0 without the floor program.
floor_rate() {
    if [ -x "$work/fanout" ]; then
        "$work/fanout" "$clips/1080p.h264" "$1" "$2" floor | awk -v s="$2" '/^floor:/ {print $4 / s}'
    else
        echo 0
    fi
}

# ---- the RTSP parts ----------------------------------------------------------------------------

cam_port=$(free_port)
python3 "$top/tools/camsim/camsim.py" --listen "127.0.0.1:$cam_port" --clips "$clips" \
    --quiet >"$work/camsim.out" 2>&1 &
pids="$pids $!"
wait_line "$work/camsim.out" "camsim listening"
cam=rtsp://127.0.0.1:$cam_port

window=$(awk -v s="$rtsp_seconds" 'BEGIN {print s / 2}')
table_head() {
    echo "| relay | viewers | streaming | dead / failed | Mbit/s min / median | TTFK p50 / p95 / max (ms) | PLAY answer p50 / p95 (ms) | relay CPU, steady (% of a core) | floor (% of a core) | relay / floor | relay CPU, whole run | peak RSS | client CPU | first failure |"
    echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
}

# One run of N viewers against URL, served by process PID; prints a table row.
measure() {
    name=$1 url=$2 n=$3 pid=$4
    out=$work/run-$name-$n.csv
    f=$(floor_rate "$n" "$window")
    viewers_cpu "$out" "$name" "$n" "$url" "$rtsp_seconds" "$pid"
    awk -v rate="$steady" -v whole="$whole" -v f="$f" -v name="$name" -v n="$n" \
        -v rss="$(hwm_mib "$pid")" \
        -v st="$(field "$out" streaming)" -v dead="$(field "$out" dead)" \
        -v failed="$(field "$out" failed)" -v mmin="$(field "$out" mbps_min)" \
        -v mmed="$(field "$out" mbps_median)" -v p50="$(field "$out" ttfk_p50_ms)" \
        -v p95="$(field "$out" ttfk_p95_ms)" -v pmax="$(field "$out" ttfk_max_ms)" \
        -v pl50="$(field "$out" play_p50_ms)" -v pl95="$(field "$out" play_p95_ms)" \
        -v ccpu="$(field "$out" client_cpu_s)" -v why="$(field "$out" top_failure)" 'BEGIN {
        ratio = f > 0 ? sprintf("%.2f", rate / f) : "n/a"
        printf "| %s | %d | %d | %d / %d | %.2f / %.2f | %.0f / %.0f / %.0f | %.1f / %.1f | %.1f%% | %s | %s | %.2f s | %d MiB | %.2f s | %s |\n",
            name, n, st, dead, failed, mmin, mmed, p50, p95, pmax, pl50, pl95, rate * 100,
            (f > 0 ? sprintf("%.1f%%", f * 100) : "n/a"), ratio, whole, rss, ccpu, why
    }'
}

# The camera's own connect-to-first-keyframe and a relay's cold first viewer, started together
# on the same camsim path (one live clock, so both wait for the same keyframe).
cold_pair() {
    name=$1 relay_url=$2 cam_url=$3 k=$4
    "$work/viewers" -n 1 --seconds 6 --csv --label camera "$cam_url" >"$work/cold-cam.csv" &
    a=$!
    "$work/viewers" -n 1 --seconds 6 --csv --label "$name" "$relay_url" >"$work/cold-relay.csv" &
    b=$!
    wait "$a" "$b"
    cam_t=$(field "$work/cold-cam.csv" ttfk_p50_ms)
    rel_t=$(field "$work/cold-relay.csv" ttfk_p50_ms)
    awk -v name="$name" -v k="$k" -v c="$cam_t" -v r="$rel_t" \
        -v why="$(field "$work/cold-relay.csv" top_failure)" \
        'BEGIN {printf "| %s | %d | %.1f ms | %.1f ms | %+.1f ms | %s |\n", name, k, c, r, r - c, why}'
}
cold_head() {
    echo "| relay | trial | camera's own TTFK | relay's cold first viewer TTFK | difference | failure |"
    echo "| --- | --- | --- | --- | --- | --- |"
}

# Touches a camsim path so that its live clock runs before a cold trial uses it.
touch_path() {
    "$work/viewers" -n 1 --seconds 1 --csv "$cam/$1" >/dev/null
}

echo "== the camera itself (camsim, 1 viewer straight at it, $rtsp_seconds s)"
"$work/viewers" -n 1 --seconds 1 --csv "$cam/cam1" >/dev/null # start cam1's clock
"$work/viewers" -n 1 --seconds "$rtsp_seconds" "$cam/cam1"
echo

# ---- 2. GStreamer ------------------------------------------------------------------------------

if has_part gst; then
    if ! /usr/bin/python3 -c 'import gi; gi.require_version("GstRtspServer", "1.0")' 2>/dev/null; then
        echo "== GStreamer part skipped: python3-gi or gir1.2-gst-rtsp-server-1.0 missing"
    else
        echo "== GStreamer's RTSP server (shared factory) relaying camsim: viewers joining at once, warm stream, $rtsp_seconds s each"
        port=$(free_port)
        "$here/gst_relay.py" --upstream "$cam/cam1" --listen "127.0.0.1:$port" \
            >"$work/gst.out" 2>&1 &
        gst=$!
        pids="$pids $gst"
        wait_line "$work/gst.out" "^ready"
        url=rtsp://127.0.0.1:$port/cam
        holder_s=$(($(echo $rtsp_viewers | wc -w) * (rtsp_seconds + 3) + 10))
        "$work/viewers" -n 1 --seconds "$holder_s" --csv --label holder "$url" \
            >"$work/gst-holder.csv" &
        holder=$!
        pids="$pids $holder"
        sleep 3
        table_head
        for n in $rtsp_viewers; do
            measure gstreamer "$url" "$n" "$gst"
            sleep 3
        done
        stop_pid "$holder"
        stop_pid "$gst"
        echo "(the viewer holding the stream: $(field "$work/gst-holder.csv" keepalive_ok) keep-alives answered 200, $(field "$work/gst-holder.csv" keepalive_bad) otherwise)"
        echo
        echo "cold first viewer (a fresh GStreamer server each time) against the camera itself:"
        cold_head
        k=1
        while [ $k -le "$cold_trials" ]; do
            touch_path "gstcold$k"
            port=$(free_port)
            "$here/gst_relay.py" --upstream "$cam/gstcold$k" --listen "127.0.0.1:$port" \
                >"$work/gst-cold-$k.out" 2>&1 &
            gst=$!
            pids="$pids $gst"
            wait_line "$work/gst-cold-$k.out" "^ready"
            cold_pair gstreamer "rtsp://127.0.0.1:$port/cam" "$cam/gstcold$k" "$k"
            stop_pid "$gst"
            k=$((k + 1))
        done
        echo
    fi
fi

# ---- 3. cctvhub --------------------------------------------------------------------------------

# Starts a hub with data dir $1 and extra environment $2 (NAME=VALUE or empty); sets hub, http.
start_hub() {
    mkdir -p "$1"
    "$here/hubsetup.py" admin --bin "$bin" --data-dir "$1"
    http_port=$(free_port)
    rtsp_port=$(free_port)
    http=127.0.0.1:$http_port
    env CCTVHUB_SERVICES_FILE="$top/etc/services.json" CCTVHUB_LOG_LEVEL=warn $2 \
        "$bin" serve --data-dir "$1" --http "$http" --rtsp "127.0.0.1:$rtsp_port" \
        >"$1.log" 2>&1 &
    hub=$!
    pids="$pids $hub"
    wait_port "$http_port"
    wait_port "$rtsp_port"
}

stop_hub() {
    stop_pid "$hub"
}

if has_part hub; then
    bin=$build/cctvhub
    if ! cmake --build "$build" -j2 --target cctvhub >"$work/hub-build.log" 2>&1; then
        echo "== cctvhub part skipped: cctvhub does not build ($work/hub-build.log)"
        grep -m3 error "$work/hub-build.log" || true
    elif ! "$bin" serve --help 2>&1 | grep -q -- --rtsp; then
        echo "== cctvhub part skipped: \`cctvhub serve --help\` does not mention --rtsp (no relay yet)"
    else
        echo "== cctvhub's relay: viewers joining at once on a pre-warmed stream, $rtsp_seconds s each"
        start_hub "$work/hub-warm" ""
        url=$("$here/hubsetup.py" grant --http "$http" --data-dir "$work/hub-warm" \
            --camera-url "$cam/cam1")
        sleep 3
        table_head
        for n in $rtsp_viewers; do
            measure cctvhub "$url" "$n" "$hub"
            sleep 3
        done
        "$work/viewers" -n 1 --seconds 7 --keepalive 2 --csv --label keepalive "$url" \
            >"$work/hub-keepalive.csv"
        echo "(one viewer sending GET_PARAMETER every 2 s for 7 s: $(field "$work/hub-keepalive.csv" keepalive_ok) answered 200, $(field "$work/hub-keepalive.csv" keepalive_bad) otherwise; streaming at the end: $(field "$work/hub-keepalive.csv" streaming))"
        stop_hub
        echo
        echo "cold first viewer (relay.prewarm=0, a fresh camera each time) against the camera itself:"
        start_hub "$work/hub-cold" CCTVHUB_RELAY_PREWARM=0
        cold_head
        k=1
        while [ $k -le "$cold_trials" ]; do
            touch_path "hubcold$k"
            url=$("$here/hubsetup.py" grant --http "$http" --data-dir "$work/hub-cold" \
                --camera-url "$cam/hubcold$k")
            cold_pair cctvhub "$url" "$cam/hubcold$k" "$k"
            k=$((k + 1))
        done
        stop_hub
        echo
    fi
fi
