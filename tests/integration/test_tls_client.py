#!/usr/bin/env python3
"""The hub's outgoing TLS against real peers: GStreamer's RTSP server speaking RTSPS (a camera
we did not write) pulled through the relay and probed by health, with a certificate of the
test CA (tls.ca_bundle), a self-signed one pinned by its key (the camera's tls_pin), and the
refusals that must never turn into "accept anything": a wrong pin, an unknown CA, a name the
certificate does not carry, each shown with its reason in the camera's health and stream.
Webhooks over https:// to a Python server (the ssl module) with a certificate of the test CA,
and refused for a CA the hub does not trust. The camera's tls_pin through the API."""

import http.server
import json
import os
import ssl
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from cameras import Gstcam  # noqa: E402
from events import Site, playing, stop_everything  # noqa: E402
from hub import Hub, check, free_port, wait_for  # noqa: E402
from tlscerts import Certs  # noqa: E402
from viewers import ffprobe, kill_spawned  # noqa: E402

FAST = {"CCTVHUB_HEALTH_PROBE_INTERVAL": "1", "CCTVHUB_HEALTH_PROBE_TIMEOUT_S": "3",
        "CCTVHUB_HEALTH_FAIL_THRESHOLD": "2", "CCTVHUB_HEALTH_RESCAN_S": "1",
        "CCTVHUB_RELAY_BACKOFF_MAX_S": "2"}
SMALL = ["--width", "320", "--height", "180", "--bitrate", "100"]


class HttpsHook:
    """An HTTPS server (Python's ssl module) that records the JSON bodies POSTed to it and
    answers 200."""

    def __init__(self, cert, key):
        self.calls = []
        self.lock = threading.Lock()
        outer = self

        class H(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with outer.lock:
                    outer.calls.append((self.path, json.loads(body)))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *a):
                pass

        class S(http.server.ThreadingHTTPServer):
            def handle_error(self, request, client_address):
                pass  # a refused handshake is the hub's to report

        self.srv = S(("127.0.0.1", 0), H)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        self.srv.socket = ctx.wrap_socket(self.srv.socket, server_side=True)
        self.port = self.srv.server_address[1]
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()

    def url(self):
        return "https://127.0.0.1:%d/hooks/cctv" % self.port

    def posts(self):
        with self.lock:
            return list(self.calls)

    def stop(self):
        self.srv.shutdown()


def health(h, cid):
    return h.json("GET", "/api/v1/cameras/%d/health" % cid, expect=200)[1]


def reason_of(s, cid, want):
    """The camera's health once offline with want in its reason, else None."""
    x = health(s.h, cid)
    return x if x["state"] == "offline" and want in (x.get("reason") or "") else None


def test_rtsps_cameras_pulled_and_probed_with_the_ca_or_a_pin_and_refusals_shown():
    certs = Certs()
    signed = Gstcam("--tls-cert", certs.server, *SMALL)
    own = Gstcam("--tls-cert", certs.selfsigned, *SMALL)
    stranger = Gstcam("--tls-cert", certs.stranger, *SMALL)
    hook = HttpsHook(certs.cert("server"), certs.key("server"))
    env = dict(FAST)
    env.update({"CCTVHUB_TLS_CA_BUNDLE": certs.ca, "CCTVHUB_ALERT_WEBHOOK_URL": hook.url(),
                "CCTVHUB_ALERT_OFFLINE_AFTER_S": "0"})
    s = Site(env=env)
    try:
        def rtsps(cam, host="127.0.0.1"):
            return "rtsps://%s:%d/h264" % (host, cam.port)

        pin = certs.spki("selfsigned")
        cams = {
            "ca": s.camera("RTSPS, the test CA", rtsps(signed)),
            "pinned": s.camera("RTSPS, self-signed, pinned", rtsps(own), tls_pin=pin.upper()
                               .replace("SHA256:", "sha256:")),
            "wrong_pin": s.camera("RTSPS, another key's pin", rtsps(own),
                                  tls_pin=certs.spki("other")),
            "self_unpinned": s.camera("RTSPS, self-signed, no pin", rtsps(own)),
            "unknown_ca": s.camera("RTSPS, a CA the hub does not trust", rtsps(stranger)),
            "wrong_name": s.camera("RTSPS, a name the certificate lacks",
                                   rtsps(signed, "localhost")),
        }
        # The pin is answered as stored: lowercased, the one form the check compares.
        _, c = s.h.json("GET", "/api/v1/cameras/%d" % cams["pinned"], expect=200)
        check(c["tls_pin"] == pin and "rtsp_url" not in c, c)
        _, c = s.h.json("GET", "/api/v1/cameras/%d" % cams["ca"], expect=200)
        check(c["tls_pin"] is None, c)

        _, grants = s.open()
        for name in ("ca", "pinned"):
            cid = cams[name]
            wait_for(lambda: playing(s, cid), 30, "%s: the pull over TLS never played" % name)
            code, out, err = ffprobe(grants[cid]["rtsp_url"])
            check(code == 0 and out.startswith("h264|320|180"), (name, code, out, err))
            wait_for(lambda: health(s.h, cid)["state"] == "online", 20, name + " never online")

        # Each refusal with its reason, in the pull's error and in the probe's health.
        refused = {"wrong_pin": "TLS: certificate rejected",
                   "self_unpinned": "TLS: self-signed certificate",
                   "unknown_ca": "TLS: unable to get local issuer certificate",
                   "wrong_name": "TLS: hostname mismatch"}
        for name, why in refused.items():
            cid = cams[name]
            x = wait_for(lambda: reason_of(s, cid, why), 30,
                         "%s: never offline with \"%s\": %s" % (name, why, health(s.h, cid)))
            check(x["reason"].endswith(why), x)  # "2 probes in a row failed: TLS: ..."
            st = wait_for(lambda: (lambda t: t if t and why in (t.get("last_error") or "")
                                   else None)(s.stream(cid)), 20,
                          "%s: the pull's error is not \"%s\": %s" % (name, why, s.stream(cid)))
            check(st["state"] != "playing", st)
            code, _, _ = ffprobe(grants[cid]["rtsp_url"], timeout=40)
            check(code != 0, "%s: a viewer got video past a refused certificate" % name)

        # The webhook over https, checked against the same CA: the cameras' offline alerts.
        posts = wait_for(lambda: (lambda p: p if len(p) >= len(refused) else None)(
            hook.posts()), 30, "the offline alerts over https")
        check(all(p[0] == "/hooks/cctv" and p[1]["kind"] == "camera-offline" for p in posts),
              posts)
        check({p[1]["subject"]["id"] for p in posts} >= {cams[n] for n in refused}, posts)

        # A pin set afterwards lets the self-signed camera in; cleared, it is refused again.
        cid = cams["self_unpinned"]
        s.h.json("PATCH", "/api/v1/cameras/%d" % cid, {"tls_pin": pin}, expect=200)
        wait_for(lambda: playing(s, cid), 30, "the newly pinned camera never played")
        wait_for(lambda: health(s.h, cid)["state"] == "online", 20, "pinned: never online")
        text = s.h.stop()
        check("msg=\"webhook on\"" in text and "tls=yes" in text, text[-3000:])
        check("webhook over plain http" not in text, text[-3000:])
    finally:
        kill_spawned()
        s.h.cleanup()
        hook.stop()
        for cam in (signed, own, stranger):
            cam.stop()
        certs.cleanup()


def test_tls_pin_is_validated_and_needs_an_rtsps_url():
    h = Hub()
    try:
        _, a = h.json("POST", "/api/v1/agencies", {"name": "종로구 관제센터", "kind": "provider",
                                                   "level": "district",
                                                   "type": "district-center"}, expect=201)
        body = {"agency_id": a["id"], "name": "cam", "lat": 37.57, "lon": 126.98,
                "kind": "fixed", "status": "active", "rtsp_url": "rtsps://10.0.0.7/live"}
        good = "sha256:" + "ab" * 32
        for bad in ("sha256:" + "ab" * 31, "sha1:" + "ab" * 20, "ab" * 32, "sha256:" + "zz" * 32,
                    "", 7):
            b = dict(body, tls_pin=bad)
            _, e = h.json("POST", "/api/v1/cameras", b, expect=400)
            check(e["error"]["field"] == "tls_pin", e)
        _, e = h.json("POST", "/api/v1/cameras",
                      dict(body, rtsp_url="rtsp://10.0.0.7/live", tls_pin=good), expect=400)
        check(e["error"]["field"] == "tls_pin" and "rtsps://" in e["error"]["message"], e)
        _, c = h.json("POST", "/api/v1/cameras", dict(body, tls_pin=good.upper()
                                                       .replace("SHA256", "sha256")), expect=201)
        check(c["tls_pin"] == good, c)
        # PATCH keeps what it does not name; null clears; the audit record holds the change.
        _, c = h.json("PATCH", "/api/v1/cameras/%d" % c["id"], {"note": "n"}, expect=200)
        check(c["tls_pin"] == good, c)
        _, c = h.json("PATCH", "/api/v1/cameras/%d" % c["id"], {"tls_pin": None}, expect=200)
        check(c["tls_pin"] is None, c)
        # rtsps:// with no pin checks the chain: an rtsp:// URL goes on without one.
        _, c = h.json("PATCH", "/api/v1/cameras/%d" % c["id"],
                      {"rtsp_url": "rtsp://10.0.0.7/live"}, expect=200)
        check(c["rtsp_configured"] is True and c["tls_pin"] is None, c)
        h.stop()
    finally:
        h.cleanup()


def test_a_webhook_with_a_certificate_of_an_unknown_ca_is_refused():
    certs = Certs()
    hook = HttpsHook(certs.cert("stranger"), certs.key("stranger"))
    dead = free_port()  # a camera nobody answers for: offline at once, an alert to post
    env = dict(FAST)
    env.update({"CCTVHUB_TLS_CA_BUNDLE": certs.ca, "CCTVHUB_ALERT_WEBHOOK_URL": hook.url(),
                "CCTVHUB_ALERT_OFFLINE_AFTER_S": "0", "CCTVHUB_ALERT_WEBHOOK_MAX_TRIES": "1"})
    h = Hub(env=env)
    try:
        _, a = h.json("POST", "/api/v1/agencies", {"name": "종로구 관제센터", "kind": "provider",
                                                   "level": "district",
                                                   "type": "district-center"}, expect=201)
        h.json("POST", "/api/v1/cameras", {
            "agency_id": a["id"], "name": "gone", "lat": 37.57, "lon": 126.98, "kind": "fixed",
            "status": "active", "rtsp_url": "rtsp://127.0.0.1:%d/x" % dead}, expect=201)
        wait_for(lambda: "webhook gave up" in h.stderr(), 30, "the webhook's refusal")
        time.sleep(0.5)
        check(hook.posts() == [], hook.posts())
        text = h.stop()
        check("why=\"TLS: unable to get local issuer certificate\"" in text, text[-3000:])
    finally:
        h.cleanup()
        hook.stop()
        certs.cleanup()


def test_a_plain_http_webhook_beyond_this_machine_is_warned_about():
    h = Hub(env={"CCTVHUB_ALERT_WEBHOOK_URL": "http://192.0.2.10:9/hook"})
    try:
        text = h.stop()
        check("webhook over plain http beyond this machine" in text, text[-3000:])
    finally:
        h.cleanup()
    h = Hub(env={"CCTVHUB_ALERT_WEBHOOK_URL": "http://127.0.0.1:9/hook"})
    try:
        text = h.stop()
        check("webhook over plain http" not in text, text[-3000:])
    finally:
        h.cleanup()


if __name__ == "__main__":
    try:
        for t in (test_tls_pin_is_validated_and_needs_an_rtsps_url,
                  test_a_plain_http_webhook_beyond_this_machine_is_warned_about,
                  test_a_webhook_with_a_certificate_of_an_unknown_ca_is_refused,
                  test_rtsps_cameras_pulled_and_probed_with_the_ca_or_a_pin_and_refusals_shown):
            t()
            print("ok", t.__name__, flush=True)
    finally:
        stop_everything()
