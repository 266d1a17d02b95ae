"""Live video for browsers: GET /api/v1/cameras/{id}/live?token= upgraded to a WebSocket
carrying fMP4, against the real daemon and camsim. What a browser would get is written to a
file that ffprobe and ffmpeg must read and decode without an error; tokens are refused at the
door as for RTSP; a grant's end closes the socket saying why; RTSP and WebSocket viewers of one
camera are served side by side from one pull."""

import json
import os
import struct
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
import hub  # noqa: E402
from hub import check, wait_for  # noqa: E402
from cameras import camsim  # noqa: E402
from events import playing, stop_everything, with_site  # noqa: E402
from viewers import Rtsp  # noqa: E402
from wsclient import Ws, collect, ws_path  # noqa: E402


def probe(path):
    r = subprocess.run(["ffprobe", "-v", "error", "-count_frames", "-show_entries",
                        "stream=codec_name,width,height,nb_read_frames", "-of", "json", path],
                       capture_output=True, text=True, timeout=60)
    check(r.returncode == 0 and r.stderr.strip() == "", "ffprobe: %s" % r.stderr[-600:])
    return json.loads(r.stdout)["streams"][0]


def test_a_browser_gets_the_codec_the_init_segment_and_frames_that_decode():
    c = camsim()

    def run(s):
        cases = [("sim h264", "ws-h264", "h264", "avc1.", 1920, 1080),
                 ("sim h265", "ws-265", "hevc", "hvc1.", 1280, 720)]
        cams = {s.camera(name, c.url(path)): (codec, prefix, w, h)
                for name, path, codec, prefix, w, h in cases}
        _, grants = s.open()
        for cid in cams:
            wait_for(lambda: playing(s, cid), 20, "camera pre-warmed")
        time.sleep(2.5)  # a whole GOP cached: a browser starts at once, as with RTSP
        for cid, (codec, prefix, w, h) in cams.items():
            ws = Ws(s.h.port, ws_path(grants[cid]))
            check(ws.status == 101, ws.head)
            try:
                texts, n, path = collect(ws, 5)
            finally:
                ws.close()
            # The first message says what to give MediaSource.addSourceBuffer.
            check(texts and texts[0]["type"] == "init" and texts[0]["codec"].startswith(prefix)
                  and texts[0]["width"] == w and texts[0]["height"] == h, texts[:2])
            st = probe(path)
            os.unlink(path)
            check(st["codec_name"] == codec and st["width"] == w and st["height"] == h, st)
            # 5 s of a 25 fps camera (the first up to 2 s came from the GOP cache at once).
            check(int(st["nb_read_frames"]) >= 5 * 25 - 10 and n >= int(st["nb_read_frames"]),
                  "%s: %s frames read, %d messages" % (codec, st["nb_read_frames"], n))
        def ended():
            got = [r for r in s.audit("view.end") if r["details"].get("transport") == "ws"]
            return got if len(got) >= 2 else None
        recs = wait_for(ended, 10, "view.end of both")
        check(len(recs) == 2 and all(r["details"]["bytes"] > 100000 for r in recs), recs)
        starts = [r for r in s.audit("view.start") if r["details"].get("transport") == "ws"]
        check(len(starts) == 2, starts)

    with_site(run)


def test_tokens_are_checked_before_any_upgrade_and_refusals_recorded():
    c = camsim()

    def run(s):
        a = s.camera("a", c.url("ws-tok-a"))
        b = s.camera("b", c.url("ws-tok-b"))
        _, grants = s.open()
        ta, tb = grants[a]["token"], grants[b]["token"]
        cases = [
            ("/api/v1/cameras/%d/live" % a, 401, "no_credential"),
            ("/api/v1/cameras/%d/live?token=v1.AAAA.BBBB" % a, 401, "bad_token"),
            ("/api/v1/cameras/%d/live?token=%s" % (a, tb), 403, "other_camera"),
        ]
        for path, status, reason in cases:
            time.sleep(0.15)  # past the refusal interval: each refusal its own record
            ws = Ws(s.h.port, path)
            ws.close()
            check(ws.status == status, "%s: %s" % (path, ws.head))
            check(json.loads(ws.body)["error"]["message"] == reason, ws.body)
        # Not an upgrade: the API says how to ask (and never sends video).
        plain = Ws(s.h.port, "/api/v1/cameras/%d/live?token=%s" % (a, ta), upgrade=False)
        plain.close()
        check(plain.status == 426, plain.head)
        def refusals():
            got = [r for r in s.audit("view.refuse") if r["details"].get("transport") == "ws"]
            return got if len(got) >= 3 else None  # recorded on the pool, in any order
        refused = wait_for(refusals, 10, "the three refusals recorded")
        check(sorted(r["details"]["reason"] for r in refused)
              == ["bad_token", "no_credential", "other_camera"], refused)
        # A revoked grant's token is refused from then on.
        gid = grants[a]["id"]
        s.h.json("POST", "/api/v1/grants/%d/revoke" % gid, {"reason": "test"}, expect=200)
        ws = Ws(s.h.port, ws_path(grants[a]))
        ws.close()
        check(ws.status == 403 and b"grant_ended" in ws.body, ws.head)

    with_site(run)


def test_a_grants_end_closes_the_browser_saying_why_and_rtsp_beside_it_plays_on():
    c = camsim()

    def run(s):
        cid = s.camera("sim", c.url("ws-end"))
        _, grants = s.open()
        g = grants[cid]
        rtsp = Rtsp(s.rtsp_port)
        ws = Ws(s.h.port, ws_path(g))
        try:
            check(ws.status == 101, ws.head)
            check(rtsp.play(g["rtsp_url"])[0] == 200, "RTSP PLAY refused")
            texts, n, path = collect(ws, 2)
            os.unlink(path)
            check(texts and n > 10, (texts, n))
            rtsp.read_media(frames=20)
            st = s.stream(cid)
            kinds = sorted(v["transport"] for v in st["viewers"])
            check(kinds == ["rtsp", "ws"] and st["reconnects"] == 0, st)
            # A ping is answered while video flows.
            ws.send(9, b"are you there")
            t0 = time.time()
            while True:
                op, payload = ws.frame()
                if op == 10:
                    check(payload == b"are you there", payload)
                    break
                check(time.time() - t0 < 10, "no pong")
            s.h.json("POST", "/api/v1/grants/%d/revoke" % g["id"], {"reason": "done"},
                     expect=200)
            t0 = time.time()
            while True:
                try:
                    op, payload = ws.frame()
                except (EOFError, OSError):
                    check(False, "closed without a close frame")
                if op == 8:
                    break
            took = time.time() - t0
            code = struct.unpack("!H", payload[:2])[0]
            check(code == 1008 and payload[2:] == b"grant_ended", payload)
            check(took < 2.5, "the browser was closed %.1f s after the revocation" % took)
        finally:
            ws.close()
            rtsp.close()
        def ended():
            got = [r for r in s.audit("view.end") if r["details"].get("reason") == "grant_ended"]
            return got if len(got) >= 2 else None
        ends = wait_for(ended, 10, "view.end grant_ended of both viewers")
        check(sorted(r["details"]["transport"] for r in ends) == ["rtsp", "ws"], ends)

    with_site(run)


def test_a_browser_closing_gets_one_close_back_and_the_view_ends():
    c = camsim()

    def run(s):
        cid = s.camera("sim", c.url("ws-bye"))
        _, grants = s.open()
        ws = Ws(s.h.port, ws_path(grants[cid]))
        try:
            check(ws.status == 101, ws.head)
            collect(ws, 1)
            ws.send(8, struct.pack("!H", 1000))
            closes = []
            while True:
                try:
                    op, payload = ws.frame()
                except (EOFError, OSError):
                    break
                if op == 8:
                    closes.append(payload)
            check(closes == [struct.pack("!H", 1000)], "close frames back: %r" % closes)
        finally:
            ws.close()
        recs = wait_for(lambda: [r for r in s.audit("view.end")
                                 if r["details"].get("transport") == "ws"], 10, "view.end")
        check(recs[0]["details"]["reason"] == "teardown", recs)

    with_site(run)


if __name__ == "__main__":
    try:
        hub.main([test_a_browser_gets_the_codec_the_init_segment_and_frames_that_decode,
                  test_tokens_are_checked_before_any_upgrade_and_refusals_recorded,
                  test_a_grants_end_closes_the_browser_saying_why_and_rtsp_beside_it_plays_on,
                  test_a_browser_closing_gets_one_close_back_and_the_view_ends])
    finally:
        stop_everything()
