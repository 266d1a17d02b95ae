#!/usr/bin/env python3
"""bench/relay/hubsetup.py: readies a running cctvhub for the relay benchmark, through its HTTP
API (urllib only), and prints the RTSP URL a viewer of one camera uses.

  hubsetup.py admin --bin CCTVHUB --data-dir DIR
      creates the administrator (cctvhub user add; works before or beside a running hub)
  hubsetup.py grant --http 127.0.0.1:PORT --data-dir DIR --camera-url rtsp://... [--name N]
                    [--ca CAFILE]
      on the first call creates a provider (district-center), a user agency (police-112) and
      an API key for it, and keeps their ids in DIR/bench-relay.json; then, on every call,
      registers one camera with that rtsp_url at its own place in Seoul, opens a 112-center
      event there as the police-112 key, and prints the event's grant of that camera:
      its rtsp_url (rtsp://HOST:PORT/cameras/ID?token=...) on stdout. With --ca the hub
      serves HTTPS (tls.cert): the API is called over https://, its certificate verified
      against CAFILE, and the grant's URL is the RTSPS one (rtsps://HOST:PORT/...).

Exits non-zero with the hub's answer on stderr when a step fails.
"""

import argparse
import json
import os
import ssl
import subprocess
import sys
import urllib.error
import urllib.request

ADMIN, PASSWORD = "bench-admin", "bench-relay-admin-password"


def fail(what):
    sys.exit("hubsetup: " + what)


class Api:
    def __init__(self, addr, ca=None):
        # With a CA the hub speaks HTTPS; its certificate is checked as any client would.
        self.base = ("https://" if ca else "http://") + addr
        self.tls = ssl.create_default_context(cafile=ca) if ca else None
        self.cookie = None
        self.csrf = None

    def call(self, method, path, body=None, key=None, expect=(200, 201)):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base + path, data=data, method=method)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        if key is not None:
            req.add_header("Authorization", "Bearer " + key)
        elif self.cookie is not None:
            req.add_header("Cookie", self.cookie)
            req.add_header("X-CSRF-Token", self.csrf)
        try:
            with urllib.request.urlopen(req, timeout=30, context=self.tls) as r:
                status, headers, text = r.status, r.headers, r.read()
        except urllib.error.HTTPError as e:
            status, headers, text = e.code, e.headers, e.read()
        if status not in expect:
            fail("%s %s: %d %s" % (method, path, status, text[:500].decode("utf-8", "replace")))
        return headers, (json.loads(text) if text else None)

    def login(self):
        headers, body = self.call("POST", "/api/v1/session",
                                  {"username": ADMIN, "password": PASSWORD})
        self.cookie = headers["Set-Cookie"].split(";")[0]
        self.csrf = body["csrf"]


def cmd_admin(a):
    env = dict(os.environ, CCTVHUB_LOG_LEVEL="warn")
    p = subprocess.run([a.bin, "user", "add", ADMIN, "--role", "admin", "--password-stdin",
                        "--data-dir", a.data_dir], input=(PASSWORD + "\n").encode(),
                       capture_output=True, env=env)
    err = p.stderr.decode("utf-8", "replace")
    if p.returncode != 0 and "exists" not in err:
        fail("user add: %d %s" % (p.returncode, err))


def cmd_grant(a):
    api = Api(a.http, a.ca)
    api.login()
    state_path = os.path.join(a.data_dir, "bench-relay.json")
    try:
        with open(state_path) as f:
            st = json.load(f)
    except FileNotFoundError:
        st = {}
    if "key" not in st:
        _, p = api.call("POST", "/api/v1/agencies", {"name": "bench 관제센터", "kind": "provider",
                                                     "level": "district",
                                                     "type": "district-center"})
        _, u = api.call("POST", "/api/v1/agencies", {"name": "bench 112", "kind": "user",
                                                     "level": "city", "type": "police-112"})
        _, k = api.call("POST", "/api/v1/apikeys", {"agency_id": u["id"], "role": "agency"})
        st = {"provider": p["id"], "user": u["id"], "key": k["key"], "cameras": 0}
    # Each camera at its own place, 2 km apart, so that an event there grants this one alone.
    n = st["cameras"]
    lat, lon = 37.50 + 0.02 * (n % 10), 126.90 + 0.02 * (n // 10)
    _, cam = api.call("POST", "/api/v1/cameras", {
        "agency_id": st["provider"], "name": a.name or "bench camera %d" % n, "lat": lat,
        "lon": lon, "purpose": "생활방범", "kind": "ptz", "status": "active",
        "rtsp_url": a.camera_url})
    st["cameras"] = n + 1
    with open(state_path, "w") as f:
        json.dump(st, f)
    _, ev = api.call("POST", "/api/v1/events", {
        "service": "112-center", "location": {"lat": lat + 0.0002, "lon": lon},
        "incident": "BENCH-%d" % n, "reason": "relay benchmark", "duration_s": 3600},
        key=st["key"])
    for g in ev.get("grants", []):
        if g.get("camera_id") == cam["id"] and g.get("rtsp_url"):
            print(g["rtsp_url"])
            return
    fail("the event granted no rtsp_url for camera %d: %s" % (cam["id"], json.dumps(ev)[:800]))


def main():
    ap = argparse.ArgumentParser(description="cctvhub set-up for bench/relay")
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("admin")
    s.add_argument("--bin", required=True)
    s.add_argument("--data-dir", required=True)
    s = sub.add_parser("grant")
    s.add_argument("--http", required=True)
    s.add_argument("--data-dir", required=True)
    s.add_argument("--camera-url", required=True)
    s.add_argument("--name")
    s.add_argument("--ca", help="the hub serves HTTPS: verify it against this CA file")
    a = ap.parse_args()
    cmd_admin(a) if a.cmd == "admin" else cmd_grant(a)


if __name__ == "__main__":
    main()
