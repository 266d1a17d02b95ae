#!/usr/bin/env bash
# Before/after on the relay: two cctvhub trees built side by side (bench/lib/trees.sh) and
# measured in one run, in alternating rounds (the side that goes first swaps every round),
# medians over the rounds and the ratios after / before.
#
# 1. fanout: each tree's bench/relay/fanout_bench.c against its own ch_media (the fan-out
#    store to FAN_VIEWERS loopback readers, and the floor in the same process): the sender
#    thread's CPU and fanout / floor.
# 2. rtsp: both hubs running at once, each with a camera on the same camsim clip granted by a
#    112-center event (hubsetup.py), the stream pre-warmed; per round and side, VIEWERS RTSP
#    viewers (viewers.c, built once from HEAD) join at once and read for RTSP_SECONDS: the
#    hub's CPU over the second half (every viewer streaming) and over the whole run (joins
#    included), viewers streaming, Mbit/s median, time to first keyframe and to the PLAY
#    answer (p50, p95).
#
#   bench/relay/compare.sh [BASE [HEAD]]   # BASE default fd6bf6a; HEAD default the working tree
#
# Environment: ROUNDS (3), PARTS ("fanout rtsp"), FAN_VIEWERS (1000), FAN_SECONDS (4),
# VIEWERS ("200 1000"), RTSP_SECONDS (10). About 4 minutes on 2 cores with the defaults, once
# both trees are built. Everything runs on 127.0.0.1 with free ports; what starts here stops
# here.
set -euo pipefail
# Every client of a benchmark connects from 127.0.0.1: lift the per-address caps that stop
# floods (http.max_connections_per_addr, relay.max_unauthorized*; README, Operations).
export CCTVHUB_HTTP_MAX_CONNECTIONS_PER_ADDR=0 CCTVHUB_RELAY_MAX_UNAUTHORIZED=4096 \
    CCTVHUB_RELAY_MAX_UNAUTHORIZED_PER_ADDR=4096
top=$(cd "$(dirname "$0")/../.." && pwd)
here=$top/bench/relay
. "$top/bench/lib/trees.sh"
. "$here/common.sh"

[ $# -le 2 ] || { echo "usage: $0 [BASE [HEAD]]" >&2; exit 2; }
rounds=${ROUNDS:-3}
parts=${PARTS:-fanout rtsp}
fan_viewers=${FAN_VIEWERS:-1000}
fan_seconds=${FAN_SECONDS:-4}
rtsp_viewers=${VIEWERS:-200 1000}
rtsp_seconds=${RTSP_SECONDS:-10}
started=$(date +%s)

bench_trees "${1:-fd6bf6a}" "${2:-WORKTREE}" cctvhub ch_media ch_proto ch_core

bench_tmp relay-compare
ulimit -n 65536 2>/dev/null || true

clips=$head_build/camsim-clips
"$top/tools/camsim/make_clips.sh" "$clips" >/dev/null
csv_header=$tmp/csv-header
viewers=$tmp/viewers
build_viewers "$head_src" "$head_build" "$viewers"
for side in before after; do
    src=$(side_src $side)
    build=$(side_build $side)
    cc -O2 -Wall -Wextra -Werror -I"$src/src" "$src/bench/relay/fanout_bench.c" \
        "$build/libch_media.a" "$build/libch_core.a" -luv -linih -lpthread -lm \
        -o "$tmp/fanout-$side"
done


echo "before: $base_label ($base_build)"
echo "after:  $head_label ($head_build)"
echo "$rounds rounds, alternating; cores: $(nproc); load: $(cut -d' ' -f1-3 /proc/loadavg)"

case " $parts " in *" fanout "*)
    echo "== fan-out store and floor, $fan_viewers readers, $fan_seconds s each mode"
    for r in $(seq "$rounds"); do
        for side in $(sides "$r"); do
            out=$("$tmp/fanout-$side" "$clips/1080p.h264" "$fan_viewers" "$fan_seconds")
            fan=$(echo "$out" | awk '/^fanout:/ { print $4 }')
            flo=$(echo "$out" | awk '/^floor:/ { print $4 }')
            rat=$(echo "$out" | awk '/^ratio/ { print $NF }')
            echo "round $r $side: fanout CPU $fan s, floor $flo s, fanout / floor $rat"
            bench_keep $side "fan-out CPU (s, $fan_viewers readers)" "$fan"
            bench_keep $side "fan-out / floor" "$rat"
        done
    done
    ;;
esac

case " $parts " in *" rtsp "*)
    cam_port=$(free_port)
    python3 "$top/tools/camsim/camsim.py" --listen "127.0.0.1:$cam_port" --clips "$clips" \
        --quiet >"$tmp/camsim.out" 2>&1 &
    pids+=($!)
    wait_port "$cam_port"
    declare -A hub url
    for side in before after; do
        bin=$(side_build $side)/cctvhub
        src=$(side_src $side)
        data=$tmp/hub-$side
        mkdir -p "$data"
        "$here/hubsetup.py" admin --bin "$bin" --data-dir "$data"
        http_port=$(free_port)
        rtsp_port=$(free_port)
        CCTVHUB_SERVICES_FILE="$src/etc/services.json" CCTVHUB_LOG_LEVEL=warn \
            "$bin" serve --data-dir "$data" --http "127.0.0.1:$http_port" \
            --rtsp "127.0.0.1:$rtsp_port" >"$data.log" 2>&1 &
        pids+=($!)
        hub[$side]=$!
        wait_port "$http_port"
        wait_port "$rtsp_port"
        url[$side]=$("$here/hubsetup.py" grant --http "127.0.0.1:$http_port" --data-dir "$data" \
            --camera-url "rtsp://127.0.0.1:$cam_port/cam1")
    done
    sleep 3 # the pre-warm: both relays hold the stream and a GOP
    echo "== RTSP viewers joining at once through each relay, $rtsp_seconds s each (CPU: % of a core)"
    for r in $(seq "$rounds"); do
        for n in $rtsp_viewers; do
            for side in $(sides "$r"); do
                pid=${hub[$side]}
                out=$tmp/run-$side-$n-$r.csv
                viewers_cpu "$out" "$side" "$n" "${url[$side]}" "$rtsp_seconds" "$pid" || true
                steady=$(awk -v r="$steady" 'BEGIN { printf "%.2f", r * 100 }')
                st=$(field "$out" streaming)
                echo "round $r $side, $n viewers: streaming $st, CPU $steady% steady, $whole s whole run, Mbit/s median $(field "$out" mbps_median), TTFK p50/p95 $(field "$out" ttfk_p50_ms)/$(field "$out" ttfk_p95_ms) ms, PLAY p50/p95 $(field "$out" play_p50_ms)/$(field "$out" play_p95_ms) ms"
                bench_keep $side "$n viewers: streaming" "$st"
                bench_keep $side "$n viewers: hub CPU steady (%)" "$steady"
                bench_keep $side "$n viewers: hub CPU whole run (s)" "$whole"
                bench_keep $side "$n viewers: Mbit/s median" "$(field "$out" mbps_median)"
                bench_keep $side "$n viewers: TTFK p50 (ms)" "$(field "$out" ttfk_p50_ms)"
                bench_keep $side "$n viewers: TTFK p95 (ms)" "$(field "$out" ttfk_p95_ms)"
                bench_keep $side "$n viewers: PLAY p50 (ms)" "$(field "$out" play_p50_ms)"
                bench_keep $side "$n viewers: PLAY p95 (ms)" "$(field "$out" play_p95_ms)"
                sleep 2
            done
        done
    done
    ;;
esac

echo "== medians over $rounds rounds (lower is better but for streaming and Mbit/s)"
bench_report
echo "($(($(date +%s) - started)) s in all, builds included)"
