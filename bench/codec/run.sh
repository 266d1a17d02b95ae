#!/bin/sh
# bench/codec: a real 1080p H.264 stream (x264, 4 Mbit/s, GOP 50) through codec/: inspection
# and access-unit assembly per RTP packet against a plain memcpy of the same packets, fMP4
# muxing per access unit against a memcpy of the same units, and the browser path whole
# (packets in, fragments out). usage: BUILD=build/release bench/codec/run.sh
set -eu
top=$(cd "$(dirname "$0")/../.." && pwd)
build=${BUILD:-$top/build/release}
cmake -S "$top" -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build" -j2 --target ch_codec ch_core >/dev/null
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
ffmpeg -nostdin -v error -f lavfi -i testsrc2=size=1920x1080:rate=25 -frames:v 250 \
    -pix_fmt yuv420p -c:v libx264 -preset veryfast -b:v 4M -g 50 -f h264 -y "$work/in.h264"
cc -O2 -D_GNU_SOURCE -I"$top/src" "$top/bench/codec/codec_bench.c" \
    "$build/libch_codec.a" "$build/libch_core.a" -luv -linih -lpthread -lm -o "$work/bench"
"$work/bench" "$work/in.h264" 200
