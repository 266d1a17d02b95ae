"""Bad input at the relay's RTSP door: each malformed message is answered 400 or closes that
one connection, never the process, and a viewer playing beside it keeps receiving video. And
bad input from cameras: a camera whose answer head never ends, one that stalls mid-answer and
one that stalls mid-frame are each cut (the pull connection's caps and deadlines, the stall
detector) and retried after the backoff, while a good camera beside them plays on."""

import os
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
import hub  # noqa: E402
from hub import check, wait_for  # noqa: E402
from cameras import camsim  # noqa: E402
from events import P, playing, stop_everything, with_site  # noqa: E402
from viewers import Rtsp  # noqa: E402

BAD = [
    ("garbage bytes", b"\x00\x01\x02 not a request at all\r\n\r\n"),
    ("an HTTP request", b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
    ("no CSeq", b"OPTIONS * RTSP/1.0\r\n\r\n"),
    ("a bad CSeq", b"OPTIONS * RTSP/1.0\r\nCSeq: -4\r\n\r\n"),
    ("a header without a colon", b"DESCRIBE rtsp://h/cameras/1 RTSP/1.0\r\nCSeq 1\r\n\r\n"),
    ("a bad Content-Length", b"SET_PARAMETER * RTSP/1.0\r\nCSeq: 1\r\nContent-Length: x\r\n\r\n"),
    ("a body over the limit",
     b"SET_PARAMETER rtsp://h/cameras/1 RTSP/1.0\r\nCSeq: 1\r\nContent-Length: 999999\r\n\r\n"),
    ("a head larger than the relay takes",
     b"DESCRIBE rtsp://h/cameras/1 RTSP/1.0\r\nCSeq: 1\r\nX-Pad: " + b"a" * 20000 + b"\r\n\r\n"),
    ("an interleaved frame cut short, then garbage", b"$\x01\x00\x10abc" + b"\xff" * 64),
]


def exchange(port, data, wait=3.0):
    """Sends data; returns what the relay answered until it closed or went quiet."""
    s = socket.create_connection(("127.0.0.1", port), timeout=wait)
    try:
        s.sendall(data)
    except OSError:
        pass  # closed while we were still sending: also an answer
    out, closed = b"", False
    deadline = time.time() + wait
    while time.time() < deadline:
        try:
            b = s.recv(65536)
        except socket.timeout:
            break
        except OSError:
            closed = True
            break
        if not b:
            closed = True
            break
        out += b
    s.close()
    return out, closed


def test_malformed_viewer_messages_close_one_connection_and_the_viewer_beside_plays_on():
    c = camsim()

    def run(s):
        cid, grants, url = s.camera_playing("sim", c.url("relay-input"))
        viewer = Rtsp(s.rtsp_port)
        try:
            check(viewer.play(url)[0] == 200, "PLAY of the good viewer refused")
            viewer.read_media(frames=10)
            for what, data in BAD:
                out, closed = exchange(s.rtsp_port, data)
                # An HTTP request is answered in HTTP (the relay also takes browsers'
                # WebSocket upgrades), anything else in RTSP.
                four = (b"RTSP/1.0 4", b"HTTP/1.1 4")
                check(closed or out.startswith(four),
                      "%s: neither a 4xx nor a close: %r" % (what, out[:200]))
                if out:
                    check(out.startswith(four), "%s answered %r" % (what, out[:200]))
            # A valid request after a bad one on the same connection is not served: the
            # connection is closed after its 400.
            out, closed = exchange(s.rtsp_port, b"OPTIONS * RTSP/1.0\r\n\r\n"
                                   b"OPTIONS * RTSP/1.0\r\nCSeq: 2\r\n\r\n")
            check(out.startswith(b"RTSP/1.0 400") and closed and b"CSeq: 2" not in out, out)
            # A well-formed OPTIONS still works, and so does the hub.
            out, _ = exchange(s.rtsp_port, b"OPTIONS * RTSP/1.0\r\nCSeq: 7\r\n\r\n", wait=1.0)
            check(out.startswith(b"RTSP/1.0 200") and b"CSeq: 7" in out and b"DESCRIBE" in out,
                  out)
            before = viewer.frames
            viewer.read_media(frames=before + 25)
            check(viewer.frames >= before + 25, "the good viewer stopped receiving")
            check(s.healthy(), "the hub stopped answering")
            st = s.stream(cid)
            check(st["state"] == "playing" and st["reconnects"] == 0, st)
        finally:
            viewer.close()

    with_site(run)


SDP = (b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=hostile\r\nt=0 0\r\na=control:*\r\n"
       b"m=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\na=control:track1\r\n")


class HostileCamera:
    """An RTSP camera on a free port of 127.0.0.1 that misbehaves one way (mode):
    "head": answers OPTIONS with a head that never ends (sent until the hub hangs up);
    "answer": answers OPTIONS, then half a DESCRIBE answer, then nothing;
    "frame": answers up to PLAY, then an interleaved frame header for 65535 bytes and a trickle
    of bytes that never completes it. It counts the connections (the pull's retries)."""

    def __init__(self, mode):
        self.mode = mode
        self.conns = 0
        self.stopping = False
        self.ls = socket.socket()
        self.ls.bind(("127.0.0.1", 0))
        self.ls.listen(8)
        self.ls.settimeout(0.2)
        self.port = self.ls.getsockname()[1]
        self.t = threading.Thread(target=self._serve, daemon=True)
        self.t.start()

    def url(self):
        return "rtsp://127.0.0.1:%d/hostile-%s" % (self.port, self.mode)

    def stop(self):
        self.stopping = True
        self.t.join(5)
        self.ls.close()

    def _serve(self):
        while not self.stopping:
            try:
                c, _ = self.ls.accept()
            except OSError:
                continue
            self.conns += 1
            threading.Thread(target=self._conn, args=(c,), daemon=True).start()

    def _conn(self, c):
        c.settimeout(0.5)
        buf = b""
        try:
            while not self.stopping:
                while b"\r\n\r\n" not in buf:
                    try:
                        b = c.recv(4096)
                    except socket.timeout:
                        if self.stopping:
                            return
                        continue
                    if not b:
                        return
                    buf += b
                head, buf = buf.split(b"\r\n\r\n", 1)
                method = head.split(b" ", 1)[0]
                cseq = b"0"
                for line in head.split(b"\r\n")[1:]:
                    if line.lower().startswith(b"cseq:"):
                        cseq = line.split(b":", 1)[1].strip()
                ok = b"RTSP/1.0 200 OK\r\nCSeq: " + cseq + b"\r\n"
                if method == b"OPTIONS":
                    if self.mode == "head":
                        c.sendall(ok + b"X-Pad: ")
                        while not self.stopping:
                            c.sendall(b"a" * 4096)  # until the hub hangs up (an OSError)
                    c.sendall(ok + b"Public: OPTIONS, DESCRIBE, SETUP, PLAY\r\n\r\n")
                elif method == b"DESCRIBE":
                    answer = (ok + b"Content-Type: application/sdp\r\nContent-Length: %d"
                              b"\r\n\r\n" % len(SDP) + SDP)
                    if self.mode == "answer":
                        c.sendall(answer[:len(answer) // 2])
                        self._linger(c)
                        return
                    c.sendall(answer)
                elif method == b"SETUP":
                    c.sendall(ok + b"Transport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n"
                              b"Session: 4242;timeout=60\r\n\r\n")
                elif method == b"PLAY":
                    c.sendall(ok + b"Session: 4242\r\n\r\n" + b"$\x00\xff\xff")
                    while not self.stopping:
                        c.sendall(b"\x80")  # a byte a second: the frame never ends
                        time.sleep(1)
                else:
                    c.sendall(ok + b"Session: 4242\r\n\r\n")
        except OSError:
            pass  # the hub hung up
        finally:
            c.close()

    def _linger(self, c):
        while not self.stopping:
            try:
                if not c.recv(4096):
                    return
            except socket.timeout:
                continue


def test_hostile_cameras_are_cut_and_retried_and_a_good_camera_plays_on():
    sim = camsim()
    hostile = [HostileCamera(m) for m in ("head", "answer", "frame")]
    # What each one's pull says when it is cut.
    said = {"head": "head is too long", "answer": "did not answer within 15 s (DESCRIBE)",
            "frame": "no packet for 2 s"}

    def run(s):
        good = s.camera("good", sim.url("relay-hostile-neighbour"))
        ids = {h.mode: s.camera(h.mode, h.url()) for h in hostile}
        _, grants = s.open()
        wait_for(lambda: playing(s, good), 20, "the good camera plays")
        viewer = Rtsp(s.rtsp_port)
        try:
            check(viewer.play(grants[good]["rtsp_url"])[0] == 200, "PLAY of the good viewer")
            viewer.read_media(frames=10)
            for h in hostile:
                # Cut, and tried again after the backoff (a second connection).
                wait_for(lambda: h.conns >= 2, 40, "a retry of the %s camera" % h.mode)
                err = wait_for(lambda: (s.stream(ids[h.mode]) or {}).get("last_error"), 20,
                               "last_error of the %s camera" % h.mode, interval=0.1)
                check(said[h.mode] in err, "%s camera: %r" % (h.mode, err))
                check(s.stream(ids[h.mode])["state"] != "playing" or h.mode == "frame",
                      s.stream(ids[h.mode]))
            before = viewer.frames
            viewer.read_media(frames=before + 25)
            check(viewer.frames >= before + 25, "the good viewer stopped receiving")
            check(s.healthy(), "the hub stopped answering")
            st = s.stream(good)
            check(st["state"] == "playing" and st["reconnects"] == 0, st)
        finally:
            viewer.close()
            for h in hostile:
                h.stop()

    with_site(run, env={"CCTVHUB_RELAY_STALL_S": "2"})


def test_no_token_is_refused_before_anything_about_the_camera_is_said():
    def run(s):
        for target in ["rtsp://127.0.0.1:%d/cameras/1" % s.rtsp_port,
                       "rtsp://127.0.0.1:%d/cameras/999999" % s.rtsp_port]:
            time.sleep(0.15)  # past the refusal interval: each refusal its own record
            out, _ = exchange(s.rtsp_port, ("DESCRIBE %s RTSP/1.0\r\nCSeq: 3\r\n\r\n"
                                            % target).encode(), wait=1.0)
            check(out.startswith(b"RTSP/1.0 401") and b"WWW-Authenticate: Basic" in out
                  and b"application/sdp" not in out, out)
        out, _ = exchange(s.rtsp_port, b"DESCRIBE rtsp://h/elsewhere RTSP/1.0\r\nCSeq: 4\r\n\r\n",
                          wait=1.0)
        check(out.startswith(b"RTSP/1.0 404"), out)
        def refusals():
            got = [r for r in s.audit("view.refuse")
                   if r["details"].get("reason") == "no_credential"]
            return got if len(got) >= 2 else None  # recorded on the pool
        recs = wait_for(refusals, 10, "the refusals recorded")
        check(len(recs) == 2, recs)

    with_site(run)


def test_grants_name_the_public_addresses_when_configured():
    env = {"CCTVHUB_RTSP_PUBLIC_URL": "rtsp://cctv.example.go.kr:8554",
           "CCTVHUB_HTTP_PUBLIC_URL": "https://cctv.example.go.kr"}

    def run(s):
        cid = s.camera("cam", "rtsp://127.0.0.1:9/none")
        _, ev = s.agency_call("POST", "/api/v1/events", {
            "service": "112-center", "location": {"lat": P[0], "lon": P[1]},
            "incident": "112-2026-9", "reason": "public urls", "duration_s": 600}, expect=201)
        g = [g for g in ev["grants"] if g["camera_id"] == cid][0]
        check(g["rtsp_url"] == "rtsp://cctv.example.go.kr:8554/cameras/%d?token=%s"
              % (cid, g["token"]), g["rtsp_url"])
        check(g["ws_url"] == "wss://cctv.example.go.kr/api/v1/cameras/%d/live?token=%s"
              % (cid, g["token"]), g["ws_url"])

    with_site(run, env=env)
    # A path, or another scheme, stops the start naming the key.
    for key, value in [("CCTVHUB_RTSP_PUBLIC_URL", "rtsp://cctv.example.go.kr/relay"),
                       ("CCTVHUB_HTTP_PUBLIC_URL", "ftp://cctv.example.go.kr")]:
        code, _, err = hub.run(["serve", "--data-dir", "/nonexistent/never"],
                               env={key: value})
        check(code == 3 and key.lower().replace("cctvhub_", "").replace("_", ".", 1) in err,
              "%s=%s: %d %s" % (key, value, code, err))


if __name__ == "__main__":
    try:
        hub.main([test_malformed_viewer_messages_close_one_connection_and_the_viewer_beside_plays_on,
                  test_hostile_cameras_are_cut_and_retried_and_a_good_camera_plays_on,
                  test_no_token_is_refused_before_anything_about_the_camera_is_said,
                  test_grants_name_the_public_addresses_when_configured])
    finally:
        stop_everything()
