#!/bin/sh
# Writes the SDP that FFmpeg's RTP muxer produces for an H.264 and an H.265 stream (FFmpeg's
# RTSP muxer and server mode write the same text, plus a=control:streamid=N), as fixtures for
# tests/unit/proto/test_sdp.c. The RTP packets go to a closed local port and are dropped.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
ffmpeg -hide_banner -loglevel error -f lavfi -i testsrc=size=320x240:rate=25 -t 0.2 \
    -c:v libx264 -pix_fmt yuv420p -flags:v +global_header -f rtp \
    -sdp_file "$here/ffmpeg_h264.sdp" rtp://127.0.0.1:5004
ffmpeg -hide_banner -loglevel error -f lavfi -i testsrc=size=320x240:rate=25 -t 0.2 \
    -c:v libx265 -x265-params log-level=none -pix_fmt yuv420p -flags:v +global_header -f rtp \
    -sdp_file "$here/ffmpeg_h265.sdp" rtp://127.0.0.1:5006
