#!/bin/sh
# bench/relay (first part): the fan-out store against the floor (one writev per frame per
# viewer of bytes prepared once), same run, one 1080p H.264 camera at about 4 Mbit/s (the
# camsim clip), 25 fps in real time, to N loopback TCP readers. The full relay benchmark (RTSP
# viewers, time to first keyframe, GStreamer's server as a reference) comes with the relay.
# usage: BUILD=build/release bench/relay/run.sh   (VIEWERS="200 1000 3000", SECONDS_EACH=10)
set -eu
top=$(cd "$(dirname "$0")/../.." && pwd)
build=${BUILD:-$top/build/release}
cmake -S "$top" -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build" -j2 --target ch_media ch_core >/dev/null
clips=$build/camsim-clips
"$top/tools/camsim/make_clips.sh" "$clips" >/dev/null
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cc -O2 -Wall -Wextra -Werror -I"$top/src" "$top/bench/relay/fanout_bench.c" \
    "$build/libch_media.a" "$build/libch_core.a" -luv -linih -lpthread -lm -o "$work/bench"
ulimit -n 65536 2>/dev/null || true
for n in ${VIEWERS:-200 1000 3000}; do
    "$work/bench" "$clips/1080p.h264" "$n" "${SECONDS_EACH:-10}"
    echo
done
