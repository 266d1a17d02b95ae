"""The camera simulator (tools/camsim) against viewers we did not write: ffprobe and ffmpeg
decode its H.264 and H.265 streams over TCP and UDP, GStreamer's rtspsrc plays it, and each
fault does what it says (refuse, Digest and Basic authentication, stall, drop, garbage, slow
answers, a resolution change)."""

import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
import hub  # noqa: E402
from hub import check  # noqa: E402

# Clips of our own: make_clips.sh writes in place, and the relay's tests make theirs at the
# same time under ctest -j.
os.environ.setdefault("CH_CAMSIM_CLIPS", os.path.join(
    os.path.dirname(os.path.abspath(hub.BIN)), "camsim-clips"))
from cameras import Camsim  # noqa: E402  (after the clips)
from viewers import ffprobe  # noqa: E402


# What ffmpeg says when RTP datagrams were lost, and what the decoder says about the frames it
# then had to conceal.
UDP_LOSS = re.compile(r"RTP: missed \d+ packets|max delay reached|error while decoding MB|"
                      r"concealing \d+ DC, \d+ AC, \d+ MV errors|corrupted macroblock|"
                      r"left block unavailable|Invalid NAL unit size|cabac decode|"
                      r"out of range intra chroma pred mode|negative number of zero coeffs|"
                      r"mb_type \d+ in [IPB] slice too large|Frame num gap|"
                      r"number of reference frames .* exceeds max|"
                      r"co located POCs unavailable|reference picture missing")


def ffmpeg(url, seconds, *extra, transport="tcp", timeout=40):
    """Decodes url for `seconds` of media; returns (exit code, stderr, frames decoded)."""
    args = ["ffmpeg", "-hide_banner", "-nostdin", "-v", "error", "-stats_period", "0.5",
            "-progress", "pipe:1", "-timeout", "3000000"]
    if transport:
        args += ["-rtsp_transport", transport]
    args += ["-i", url, "-t", str(seconds)] + list(extra) + ["-f", "null", "-"]
    p = subprocess.run(args, capture_output=True, text=True, timeout=timeout)
    frames = [int(x) for x in re.findall(r"^frame=(\d+)$", p.stdout, re.M)]
    return p.returncode, p.stderr, (frames[-1] if frames else 0)


def test_independent_viewers_decode_h264_and_h265_over_tcp_and_udp():
    c = Camsim()
    try:
        check(ffprobe(c.url("gate1"))[1] == "h264|1920|1080", ffprobe(c.url("gate1")))
        check(ffprobe(c.url("gate-265"))[1] == "hevc|1280|720", ffprobe(c.url("gate-265")))
        for path, transport in (("gate1", "tcp"), ("gate-265", "tcp"), ("gate2", "udp")):
            code, err, frames = ffmpeg(c.url(path), 5, transport=transport)
            if transport == "udp":
                # UDP on a loaded machine drops datagrams when the viewer falls behind (its
                # socket buffer overflows): ffmpeg then reports the loss and conceals it. That
                # is the network, not camsim; anything else is still a failure.
                err = "\n".join(ln for ln in err.splitlines() if not UDP_LOSS.search(ln))
            check(code == 0 and err.strip() == "", "%s over %s: %d %s" % (path, transport,
                                                                        code, err[-500:]))
            # 5 s of 25 fps live video starting at the next keyframe (at most 2 s away):
            # at least 3 s of frames decode cleanly.
            check(frames >= 75, "%s over %s: %d frames" % (path, transport, frames))
        # GStreamer's rtspsrc, depayloader, parser and decoder: 75 frames.
        p = subprocess.run(["gst-launch-1.0", "-q", "rtspsrc", "location=" + c.url("gate3"),
                            "protocols=tcp", "!", "rtph264depay", "!", "h264parse", "!",
                            "avdec_h264", "!", "fakesink", "num-buffers=75"],
                           capture_output=True, text=True, timeout=60)
        check(p.returncode == 0, "gstreamer: %s" % p.stderr[-800:])
    finally:
        c.stop()


def test_faults():
    c = Camsim()
    try:
        # refuse: every request is 503.
        code, err, _ = ffmpeg(c.url("x?fault=refuse"), 1)
        check(code != 0 and "503" in err, err[-300:])
        # Digest: refused without credentials, played with them.
        code, err, _ = ffmpeg(c.url("x?fault=auth"), 1)
        check(code != 0 and "401" in err, err[-300:])
        code, err, frames = ffmpeg(c.url("x?fault=auth", "camsim:camsim"), 4)
        check(code == 0 and frames >= 25, (code, frames, err[-300:]))
        code, err, _ = ffmpeg(c.url("x?fault=auth", "camsim:wrong"), 1)
        check(code != 0 and "401" in err, err[-300:])
        code, err, frames = ffmpeg(c.url("x?fault=basic", "camsim:camsim"), 4)
        check(code == 0 and frames >= 25, (code, frames, err[-300:]))
        # slow: each answer takes 2 s.
        t0 = time.time()
        check(ffprobe(c.url("x?fault=slow"))[0] == 0, "slow camera not readable")
        check(time.time() - t0 >= 4, "answers were not slow")
        # drop: the connection closes after 3 s, so 8 s are not reached.
        code, err, frames = ffmpeg(c.url("x?fault=drop"), 8)
        check(frames < 150 and frames >= 25, (code, frames, err[-300:]))
        # stall: media stops after 3 s; the viewer's 3 s socket timeout ends it.
        t0 = time.time()
        code, err, frames = ffmpeg(c.url("x?fault=stall"), 10)
        check(frames < 150 and time.time() - t0 < 30, (code, frames, err[-300:]))
        # garbage: bytes that are not RTP after 1 s; the decoder complains or gives up.
        code, err, frames = ffmpeg(c.url("x?fault=garbage"), 3)
        check(frames < 75 or err.strip() != "", (code, frames, err[-300:]))
        # resize: 1080p, then 720p after 3 s.
        p = subprocess.run(["ffmpeg", "-hide_banner", "-nostdin", "-rtsp_transport", "tcp", "-i",
                            c.url("x?fault=resize"), "-t", "6", "-vf", "showinfo", "-f", "null",
                            "-"], capture_output=True, text=True, timeout=60)
        sizes = set(re.findall(r" s:(\d+x\d+) ", p.stderr))
        check({"1920x1080", "1280x720"} <= sizes, sizes)
    finally:
        c.stop()


if __name__ == "__main__":
    hub.main([
        test_independent_viewers_decode_h264_and_h265_over_tcp_and_udp,
        test_faults,
    ])
