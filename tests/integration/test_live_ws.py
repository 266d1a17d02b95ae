"""Live video for browsers: GET /api/v1/cameras/{id}/live?token= upgraded to a WebSocket
carrying fMP4, against the real daemon and camsim. What a browser would get is written to a
file that ffprobe and ffmpeg must read and decode without an error; tokens are refused at the
door as for RTSP; a grant's end closes the socket saying why; RTSP and WebSocket viewers of one
camera are served side by side from one pull."""

import base64
import json
import os
import socket
import struct
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
import hub  # noqa: E402
import test_relay as tr  # noqa: E402
from hub import check  # noqa: E402


class Ws:
    """A WebSocket client on a raw socket, as a browser speaks it (masked frames)."""

    def __init__(self, port, path, headers=(), upgrade=True):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=15)
        key = base64.b64encode(os.urandom(16)).decode()
        lines = ["GET %s HTTP/1.1" % path, "Host: 127.0.0.1:%d" % port]
        if upgrade:
            lines += ["Upgrade: websocket", "Connection: Upgrade",
                      "Sec-WebSocket-Key: " + key, "Sec-WebSocket-Version: 13"]
        lines += list(headers)
        self.s.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        buf = b""
        while b"\r\n\r\n" not in buf:
            d = self.s.recv(65536)
            if not d:
                break
            buf += d
        head, _, self.buf = buf.partition(b"\r\n\r\n")
        self.head = head.decode("latin-1")
        self.status = int(self.head.split(" ")[1]) if self.head.startswith("HTTP/1.1 ") else 0
        self.body = self.buf if self.status != 101 else b""

    def _fill(self):
        d = self.s.recv(65536)
        if not d:
            raise EOFError("closed")
        self.buf += d

    def frame(self):
        """(opcode, payload) of the next frame from the hub."""
        while True:
            b = self.buf
            if len(b) >= 2:
                check(b[1] & 0x80 == 0, "the hub masked a frame")
                n, hl = b[1] & 0x7F, 2
                if n == 126 and len(b) >= 4:
                    n, hl = struct.unpack("!H", b[2:4])[0], 4
                elif n == 127 and len(b) >= 10:
                    n, hl = struct.unpack("!Q", b[2:10])[0], 10
                if (b[1] & 0x7F) < 126 or hl > 2:
                    if len(b) >= hl + n:
                        self.buf = b[hl + n:]
                        check(b[0] & 0x80, "a fragmented message")
                        return b[0] & 0x0F, b[hl:hl + n]
            self._fill()

    def send(self, opcode, payload):
        mask = os.urandom(4)
        data = bytes(x ^ mask[i % 4] for i, x in enumerate(payload))
        self.s.sendall(bytes([0x80 | opcode, 0x80 | len(payload)]) + mask + data)

    def close(self):
        self.s.close()


def ws_path(grant):
    return "/" + grant["ws_url"].split("/", 3)[3]


def collect(ws, seconds):
    """Reads for that long: the text messages, and the binary ones written to a file."""
    f = tempfile.NamedTemporaryFile(prefix="cctvhub-ws-", suffix=".mp4", delete=False)
    texts, n = [], 0
    end = time.time() + seconds
    while time.time() < end:
        op, payload = ws.frame()
        if op == 1:
            texts.append(json.loads(payload))
        elif op == 2:
            f.write(payload)
            n += 1
        elif op == 8:
            break
    f.close()
    return texts, n, f.name


def probe(path):
    r = subprocess.run(["ffprobe", "-v", "error", "-count_frames", "-show_entries",
                        "stream=codec_name,width,height,nb_read_frames", "-of", "json", path],
                       capture_output=True, text=True, timeout=60)
    check(r.returncode == 0 and r.stderr.strip() == "", "ffprobe: %s" % r.stderr[-600:])
    return json.loads(r.stdout)["streams"][0]


def test_a_browser_gets_the_codec_the_init_segment_and_frames_that_decode():
    c = tr.camsim()

    def run(s):
        cases = [("sim h264", "ws-h264", "h264", "avc1.", 1920, 1080),
                 ("sim h265", "ws-265", "hevc", "hvc1.", 1280, 720)]
        cams = {s.camera(name, c.url(path)): (codec, prefix, w, h)
                for name, path, codec, prefix, w, h in cases}
        _, grants = s.open()
        for cid in cams:
            tr.wait_for(lambda: tr.playing(s, cid), 20, "camera pre-warmed")
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
        recs = tr.wait_for(ended, 10, "view.end of both")
        check(len(recs) == 2 and all(r["details"]["bytes"] > 100000 for r in recs), recs)
        starts = [r for r in s.audit("view.start") if r["details"].get("transport") == "ws"]
        check(len(starts) == 2, starts)

    tr.with_site(run)


def test_tokens_are_checked_before_any_upgrade_and_refusals_recorded():
    c = tr.camsim()

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
        refused = tr.wait_for(refusals, 10, "the three refusals recorded")
        check(sorted(r["details"]["reason"] for r in refused)
              == ["bad_token", "no_credential", "other_camera"], refused)
        # A revoked grant's token is refused from then on.
        gid = grants[a]["id"]
        s.h.json("POST", "/api/v1/grants/%d/revoke" % gid, {"reason": "test"}, expect=200)
        ws = Ws(s.h.port, ws_path(grants[a]))
        ws.close()
        check(ws.status == 403 and b"grant_ended" in ws.body, ws.head)

    tr.with_site(run)


def test_a_grants_end_closes_the_browser_saying_why_and_rtsp_beside_it_plays_on():
    c = tr.camsim()

    def run(s):
        cid = s.camera("sim", c.url("ws-end"))
        _, grants = s.open()
        g = grants[cid]
        rtsp = tr.Rtsp(s.rtsp_port)
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
        ends = tr.wait_for(ended, 10, "view.end grant_ended of both viewers")
        check(sorted(r["details"]["transport"] for r in ends) == ["rtsp", "ws"], ends)

    tr.with_site(run)


def test_a_browser_closing_gets_one_close_back_and_the_view_ends():
    c = tr.camsim()

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
        recs = tr.wait_for(lambda: [r for r in s.audit("view.end")
                                    if r["details"].get("transport") == "ws"], 10, "view.end")
        check(recs[0]["details"]["reason"] == "teardown", recs)

    tr.with_site(run)


if __name__ == "__main__":
    try:
        hub.main([test_a_browser_gets_the_codec_the_init_segment_and_frames_that_decode,
                  test_tokens_are_checked_before_any_upgrade_and_refusals_recorded,
                  test_a_grants_end_closes_the_browser_saying_why_and_rtsp_beside_it_plays_on,
                  test_a_browser_closing_gets_one_close_back_and_the_view_ends])
    finally:
        tr.kill_spawned()
        for peer in tr.PEERS.values():
            peer.stop()
