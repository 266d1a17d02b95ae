#!/bin/sh
# Makes camsim's clips with Debian's ffmpeg (x264, x265): 8 s of a test pattern each, one
# keyframe every 2 s (50 frames at 25 fps), no scene-cut keyframes, no B-frames (cameras send
# frames in display order), Annex B.
#   1080p.h264  1920x1080 H.264 High, about 4 Mbit/s (the relay benchmark's camera)
#   720p.h264   1280x720  H.264, 2 Mbit/s (the "resize" fault switches to it)
#   720p.h265   1280x720  H.265 Main, 2 Mbit/s
# usage: tools/camsim/make_clips.sh [DIR]   (default tools/camsim/clips; skips existing clips)
set -eu
dir=${1:-$(dirname "$0")/clips}
mkdir -p "$dir"
ff() { ffmpeg -hide_banner -loglevel error -nostdin -y "$@"; }
[ -s "$dir/1080p.h264" ] || ff -f lavfi -i testsrc2=size=1920x1080:rate=25 -t 8 \
    -c:v libx264 -preset veryfast -profile:v high -bf 0 -b:v 4M -maxrate 4M -bufsize 8M \
    -g 50 -keyint_min 50 -sc_threshold 0 -bsf:v h264_mp4toannexb -f h264 "$dir/1080p.h264"
[ -s "$dir/720p.h264" ] || ff -f lavfi -i testsrc2=size=1280x720:rate=25 -t 8 \
    -c:v libx264 -preset veryfast -bf 0 -b:v 2M -g 50 -keyint_min 50 -sc_threshold 0 \
    -bsf:v h264_mp4toannexb -f h264 "$dir/720p.h264"
[ -s "$dir/720p.h265" ] || ff -f lavfi -i testsrc2=size=1280x720:rate=25 -t 8 \
    -c:v libx265 -preset ultrafast -b:v 2M \
    -x265-params keyint=50:min-keyint=50:scenecut=0:bframes=0:log-level=error -f hevc "$dir/720p.h265"
echo "camsim clips in $dir"
