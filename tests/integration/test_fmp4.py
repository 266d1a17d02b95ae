"""codec/'s access-unit assembler and fMP4 muxer against readers we did not write.

camsim's real clips (tools/camsim/make_clips.sh: 1080p and 720p H.264 from x264, 720p H.265
from x265, 8 s at 25 fps, a keyframe every 2 s) are packetized into RTP, put back together
into access units and muxed into fragmented MP4 by the test program
tests/unit/codec/test_fmp4.c in its tool mode (`test_fmp4 mux ...`, built beside the other
unit tests). Then:
  - ffprobe -count_frames reads every file without a word on stderr, with the right codec,
    sample entry, size, profile, level and frame count, and packet times 3600 ticks apart
    from 0 (across the RTP timestamp's 32-bit wrap, which the tool puts 2 s in);
  - ffmpeg decodes every frame without an error;
  - the avcC and hvcC boxes equal those ffmpeg's own mp4 muxer writes for the same clip (for
    hvcC, but for the fields ffmpeg reads from the VUI and PPS that we leave "unknown");
  - with packets lost, the broken access units and those after them up to the next keyframe
    are left out, and what remains still decodes without an error;
  - where Debian's chromium is installed (the browser tests install it; without it this part
    says so and passes), headless Chromium takes the H.264 init segment and fragments one by
    one through Media Source Extensions, buffers exactly 0 to 8 s, and plays them in real
    time without an error (requestVideoFrameCallback counts the frames shown).
"""

import functools
import http.server
import json
import os
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
import hub  # noqa: E402
from hub import check  # noqa: E402

BUILD = os.path.dirname(os.path.abspath(hub.BIN))
TOOL = os.path.join(BUILD, "tests", "unit_codec_test_fmp4")
# Its own copy of the clips: make_clips.sh skips a clip that exists, so a test reading a clip
# another test is still writing (CTest runs them side by side) would read half of it.
CLIPS = os.environ.get("CH_FMP4_CLIPS", os.path.join(BUILD, "fmp4-clips"))
CLIP_LIST = [("1080p.h264", "h264", 1920, 1080), ("720p.h264", "h264", 1280, 720),
             ("720p.h265", "h265", 1280, 720)]


def make_clips():
    subprocess.run([os.path.join(hub.SOURCE_DIR, "tools", "camsim", "make_clips.sh"), CLIPS],
                   check=True, capture_output=True, timeout=600)
    check(os.access(TOOL, os.X_OK), "no muxing tool at %s (build the unit tests)" % TOOL)


def mux(clip, kind, out, *opts):
    """Runs the tool; returns its key=value report as a dict."""
    p = subprocess.run([TOOL, "mux", kind, os.path.join(CLIPS, clip), out] + list(opts),
                       capture_output=True, text=True, timeout=300)
    check(p.returncode == 0, "mux %s %s: %s" % (clip, opts, p.stderr[-2000:]))
    check("AddressSanitizer" not in p.stderr and "runtime error" not in p.stderr, p.stderr)
    return dict(kv.split("=", 1) for kv in p.stdout.split())


def probe(path, *args):
    p = subprocess.run(["ffprobe", "-v", "error"] + list(args) + ["-of", "json", path],
                       capture_output=True, text=True, timeout=300)
    check(p.returncode == 0 and p.stderr.strip() == "",
          "ffprobe %s: %d %s" % (path, p.returncode, p.stderr[-2000:]))
    return json.loads(p.stdout)


def decode_errors(path):
    p = subprocess.run(["ffmpeg", "-hide_banner", "-nostdin", "-v", "error", "-i", path, "-f",
                        "null", "-"], capture_output=True, text=True, timeout=300)
    return p.returncode, p.stderr.strip()


def boxes(data, path):
    """The payload of the first box at path (a list of four-character types), walking into
    the containers and the sample entry on the way."""
    containers = {"moov", "trak", "mdia", "minf", "stbl"}
    off, end = 0, len(data)
    for depth, want in enumerate(path):
        found = None
        while off + 8 <= end:
            size, typ = struct.unpack(">I4s", data[off:off + 8])
            typ = typ.decode("latin-1")
            check(size >= 8 and off + size <= end, "bad box %s at %d" % (typ, off))
            if typ == want:
                found = (off + 8, off + size)
                break
            off += size
        check(found is not None, "no %s box" % "/".join(path[:depth + 1]))
        off, end = found
        if want == "stsd":
            off += 8  # version, flags, entry_count
        elif want in ("avc1", "hvc1"):
            off += 78  # the VisualSampleEntry fields
        elif want not in containers and depth + 1 < len(path):
            check(False, "%s is not a container" % want)
    return data[off:end]


def test_ffprobe_and_ffmpeg_read_our_fmp4_of_every_camsim_clip():
    make_clips()
    with tempfile.TemporaryDirectory() as tmp:
        for clip, kind, width, height in CLIP_LIST:
            raw = probe(os.path.join(CLIPS, clip), "-count_frames", "-show_streams")["streams"][0]
            variants = [[], ["--mtu", "600", "--no-aggregate", "--no-markers"]]
            if kind == "h265":
                variants.append(["--donl", "--mtu", "1000"])
            for opts in variants:
                out = os.path.join(tmp, "out.mp4")
                rep = mux(clip, kind, out, *opts)
                what = "%s %s" % (clip, " ".join(opts))
                check(rep["broken"] == "0" and rep["dropped"] == "0" and rep["inits"] == "1",
                      (what, rep))
                check(rep["access_units"] == rep["reference_units"] == raw["nb_read_frames"],
                      (what, rep, raw["nb_read_frames"]))
                st = probe(out, "-count_frames", "-show_streams")["streams"]
                check(len(st) == 1, st)
                s = st[0]
                want_codec = "h264" if kind == "h264" else "hevc"
                want_tag = "avc1" if kind == "h264" else "hvc1"
                got = (s["codec_name"], s["codec_tag_string"], s["width"], s["height"],
                       s["profile"], s["level"], s["nb_read_frames"])
                want = (want_codec, want_tag, width, height, raw["profile"], raw["level"],
                        raw["nb_read_frames"])
                check(got == want, (what, got, want))
                check(rep["width"] == str(width) and rep["height"] == str(height), rep)
                check(rep["codec"].startswith(want_tag + "."), rep)
                # Times: 0, 3600, 7200, ... in the track's 90 kHz, keyframes every 50.
                pk = probe(out, "-show_entries", "packet=pts,dts,flags")["packets"]
                check(len(pk) == int(raw["nb_read_frames"]), (what, len(pk)))
                for i, p in enumerate(pk):
                    check(p["dts"] == i * 3600 and p["pts"] == i * 3600, (what, i, p))
                    check(("K" in p["flags"]) == (i % 50 == 0), (what, i, p))
                code, err = decode_errors(out)
                check(code == 0 and err == "", (what, code, err[-2000:]))


def test_avcc_and_hvcc_match_ffmpegs_own_mp4_muxer():
    make_clips()
    with tempfile.TemporaryDirectory() as tmp:
        for clip, kind, _, _ in CLIP_LIST:
            ours_path = os.path.join(tmp, "ours.mp4")
            ref_path = os.path.join(tmp, "ref.mp4")
            mux(clip, kind, ours_path)
            p = subprocess.run(["ffmpeg", "-hide_banner", "-nostdin", "-v", "error", "-y",
                                "-i", os.path.join(CLIPS, clip), "-c", "copy", "-tag:v",
                                "avc1" if kind == "h264" else "hvc1", "-movflags",
                                "frag_keyframe+empty_moov+default_base_moof", ref_path],
                               capture_output=True, text=True, timeout=300)
            check(p.returncode == 0, p.stderr[-2000:])
            entry = "avc1" if kind == "h264" else "hvc1"
            conf = "avcC" if kind == "h264" else "hvcC"
            path = ["moov", "trak", "mdia", "minf", "stbl", "stsd", entry, conf]
            with open(ours_path, "rb") as f:
                ours = boxes(f.read(), path)
            with open(ref_path, "rb") as f:
                ref = boxes(f.read(), path)
            if kind == "h265":
                # Bytes 13-15: min_spatial_segmentation_idc (from the VUI) and parallelismType
                # (from the PPS), which ffmpeg reads and we leave 0, "unknown"; both keep
                # their reserved 1 bits.
                check(ours[13:16] == b"\xf0\x00\xfc", ours[13:16].hex())
                check(ref[13] & 0xf0 == 0xf0 and ref[15] & 0xfc == 0xfc, ref[13:16].hex())
                ours, ref = ours[:13] + ours[16:], ref[:13] + ref[16:]
            check(ours == ref, "%s %s differs:\nours %s\nffmpeg %s" % (clip, conf, ours.hex(),
                                                                        ref.hex()))


def test_lost_packets_drop_to_the_next_keyframe_and_the_rest_decodes_cleanly():
    make_clips()
    with tempfile.TemporaryDirectory() as tmp:
        for clip, kind, _, _ in CLIP_LIST:
            for every in ("97", "401"):
                out = os.path.join(tmp, "lossy.mp4")
                rep = mux(clip, kind, out, "--lose-every", every)
                what = "%s lose every %s" % (clip, every)
                muxed = int(rep["muxed"])
                check(int(rep["lost"]) > 0 and int(rep["broken"]) > 0, (what, rep))
                check(0 < muxed < int(rep["reference_units"]), (what, rep))
                check(muxed + int(rep["dropped"]) == int(rep["access_units"]), (what, rep))
                s = probe(out, "-count_frames", "-show_streams")["streams"][0]
                check(int(s["nb_read_frames"]) == muxed, (what, s["nb_read_frames"], rep))
                code, err = decode_errors(out)
                check(code == 0 and err == "", (what, code, err[-2000:]))


# The page: fetches an fMP4 file, appends the init segment and then each moof+mdat to a
# SourceBuffer, one append at a time as the relay will send them, plays, and reports on the
# console (which chromium prints on stderr with --enable-logging).
MSE_PAGE = """<!doctype html><html><body><video id=v muted playsinline></video><script>
const q = new URLSearchParams(location.search), v = document.getElementById('v'), log = [];
function report(s) { log.push(s); console.log('MSE ' + log.join(' | ')); }
function parts(buf) {
  const d = new DataView(buf), out = []; let off = 0, start = 0;
  while (off + 8 <= buf.byteLength) {
    const size = d.getUint32(off), t = String.fromCharCode(...new Uint8Array(buf, off + 4, 4));
    off += size;
    if (t === 'moov' || t === 'mdat') { out.push(buf.slice(start, off)); start = off; }
  }
  return out;
}
(async () => {
  const mime = 'video/mp4; codecs="' + q.get('c') + '"';
  if (!MediaSource.isTypeSupported(mime)) return report('unsupported ' + mime);
  const ms = new MediaSource();
  v.src = URL.createObjectURL(ms);
  await new Promise(r => ms.addEventListener('sourceopen', r, {once: true}));
  const sb = ms.addSourceBuffer(mime);
  const ps = parts(await (await fetch(q.get('f'))).arrayBuffer());
  for (const p of ps) {
    sb.appendBuffer(p);
    await new Promise(r => sb.addEventListener('updateend', r, {once: true}));
    if (v.error) return report('error ' + v.error.message);
  }
  ms.endOfStream();
  const b = sb.buffered, ranges = [];
  for (let i = 0; i < b.length; i++) ranges.push(b.start(i).toFixed(3) + '-' + b.end(i).toFixed(3));
  report('appended=' + ps.length + ' buffered=' + ranges.join(',') + ' size=' + v.videoWidth +
         'x' + v.videoHeight);
  let frames = 0;
  const cb = () => { frames++; v.requestVideoFrameCallback(cb); };
  v.requestVideoFrameCallback(cb);
  v.play().catch(e => report('play ' + e));
  await new Promise(r => setTimeout(r, 4000));
  report('played t=' + v.currentTime.toFixed(2) + ' frames=' + frames + ' error=' +
         (v.error ? v.error.message : 'none'));
})().catch(e => report('exception ' + e));
</script></body></html>
"""


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def chromium_mse(directory, name, codec):
    """Serves directory, opens the page on name in headless chromium, returns the last report
    (a dict of its key=value fields, with 'raw' the whole line)."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                             functools.partial(QuietHandler, directory=directory))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = "http://127.0.0.1:%d/mse.html?f=%s&c=%s" % (server.server_address[1], name, codec)
    profile = tempfile.mkdtemp()
    proc = subprocess.Popen([shutil.which("chromium"), "--headless", "--no-sandbox",
                             "--disable-gpu", "--autoplay-policy=no-user-gesture-required",
                             "--enable-logging=stderr", "--v=0", "--user-data-dir=" + profile,
                             url], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    last = ""
    try:
        deadline = time.time() + 60
        for line in proc.stderr:
            if "MSE " in line:
                last = line[line.index("MSE ") + 4:].split('"')[0].strip()
                if "played" in last or "unsupported" in last or "error" in last.split("|")[-1]:
                    break
            if time.time() > deadline:
                break
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # the browser and the children it started
        except ProcessLookupError:
            pass
        proc.wait()
        server.shutdown()
        server.server_close()
        shutil.rmtree(profile, ignore_errors=True)
    fields = {"raw": last}
    for part in last.split("|"):
        for kv in part.split():
            if "=" in kv:
                k, v = kv.split("=", 1)
                fields[k] = v
    return fields


def test_chromium_plays_our_fragments_through_media_source_extensions():
    if shutil.which("chromium") is None:
        print("skip: no chromium (apt-get install chromium) for the MSE check", flush=True)
        return
    make_clips()
    with tempfile.TemporaryDirectory() as tmp:
        with open(os.path.join(tmp, "mse.html"), "w") as f:
            f.write(MSE_PAGE)
        rep = mux("720p.h264", "h264", os.path.join(tmp, "whole.mp4"))
        got = chromium_mse(tmp, "whole.mp4", rep["codec"])
        check(got.get("appended") == "201" and got.get("buffered") == "0.000-8.000"
              and got.get("size") == "1280x720", got["raw"])
        # 4 s of playback: 100 frames on a quiet machine; far fewer still proves decoding
        # when CTest runs other tests beside it.
        check(got.get("error") == "none" and float(got.get("t", 0)) >= 1.0
              and int(got.get("frames", 0)) >= 10, got["raw"])
        # With losses: a discontinuous timeline from keyframe to keyframe, still no error.
        lossy = mux("720p.h264", "h264", os.path.join(tmp, "lossy.mp4"), "--lose-every", "401")
        got = chromium_mse(tmp, "lossy.mp4", lossy["codec"])
        check(got.get("appended") == str(1 + int(lossy["muxed"])), (got["raw"], lossy))
        check(got.get("error") == "none" and int(got.get("frames", 0)) >= 1, got["raw"])


if __name__ == "__main__":
    hub.main([
        test_ffprobe_and_ffmpeg_read_our_fmp4_of_every_camsim_clip,
        test_avcc_and_hvcc_match_ffmpegs_own_mp4_muxer,
        test_lost_packets_drop_to_the_next_keyframe_and_the_rest_decodes_cleanly,
        test_chromium_plays_our_fragments_through_media_source_extensions,
    ])
