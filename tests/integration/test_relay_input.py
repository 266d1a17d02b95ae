"""Bad input at the relay's RTSP door: each malformed message is answered 400 or closes that
one connection, never the process, and a viewer playing beside it keeps receiving video."""

import os
import socket
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
import hub  # noqa: E402
from hub import check, wait_for  # noqa: E402
from cameras import camsim  # noqa: E402
from events import P, stop_everything, with_site  # noqa: E402
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
                  test_no_token_is_refused_before_anything_about_the_camera_is_said,
                  test_grants_name_the_public_addresses_when_configured])
    finally:
        stop_everything()
