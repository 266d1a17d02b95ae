"""The relay's test site: a hub with its relay on a free port, a district control center
owning the cameras, and a police 112 center whose API key opens events on them (an event at P
is granted every camera). with_site runs a test on a new site and stops it cleanly;
stop_everything ends what a script started (viewers and cameras)."""

import os
import socket
import traceback

from cameras import stop_cameras
from hub import SERVICES, Hub, check, free_port, wait_for
from viewers import kill_spawned

P = (37.5700, 126.9800)  # where the cameras are and the events happen


class Site:
    """A hub with its relay on a free port (by --rtsp, or CCTVHUB_RTSP_LISTEN with
    flag=False), a district control center owning the cameras, and a police 112 center with
    an API key that opens events on them. All cameras stand within 30 m of P, so an event at P
    is granted every one of them."""

    def __init__(self, env=None, flag=True, nofile=None, ca=None):
        self.rtsp_port = free_port()
        # Refusals of one address are summed up per interval (ch_audit_refusal); these tests
        # space theirs by more than a short interval to see each on the record.
        e = {"CCTVHUB_SERVICES_FILE": SERVICES, "CCTVHUB_AUDIT_REFUSAL_INTERVAL_MS": "100"}
        e.update(env or {})
        args = []
        if flag:
            args = ["--rtsp", "127.0.0.1:%d" % self.rtsp_port]
        else:
            e["CCTVHUB_RTSP_LISTEN"] = "127.0.0.1:%d" % self.rtsp_port
        self.h = Hub(args=args, env=e, nofile=nofile, ca=ca)
        try:
            wait_for(self._listening, 15, "the relay does not listen on %d" % self.rtsp_port)
            _, a = self.h.json("POST", "/api/v1/agencies", {
                "name": "종로구 관제센터", "kind": "provider", "level": "district",
                "type": "district-center"}, expect=201)
            self.provider = a["id"]
            _, a = self.h.json("POST", "/api/v1/agencies", {
                "name": "서울경찰청 112치안종합상황실", "kind": "user", "level": "city",
                "type": "police-112"}, expect=201)
            self.police = a["id"]
            _, k = self.h.json("POST", "/api/v1/apikeys", {"agency_id": self.police,
                                                           "role": "agency"}, expect=201)
            self.key = k["key"]
            self.cams = []
        except Exception:
            self.h.cleanup()
            raise

    def _listening(self):
        try:
            socket.create_connection(("127.0.0.1", self.rtsp_port), timeout=1).close()
            return True
        except OSError:
            return False

    def camera(self, name, rtsp_url, **extra):
        i = len(self.cams)
        body = {"agency_id": self.provider, "name": name, "lat": P[0] + 0.0001 * (i % 3 - 1),
                "lon": P[1] + 0.0001 * (i // 3 - 1), "purpose": "생활방범", "kind": "ptz",
                "status": "active", "rtsp_url": rtsp_url}
        body.update(extra)
        _, c = self.h.json("POST", "/api/v1/cameras", body, expect=201)
        check(c.get("rtsp_configured") is True and "rtsp_url" not in c, c)
        self.cams.append(c["id"])
        return c["id"]

    def camera_playing(self, name, rtsp_url):
        """One camera, an event granting it, and its pull pre-warmed; returns (camera id,
        {camera id: grant}, the grant's rtsp_url)."""
        cid = self.camera(name, rtsp_url)
        _, grants = self.open()
        url = grants[cid]["rtsp_url"]
        wait_for(lambda: playing(self, cid), 20, "camera pre-warmed")
        return cid, grants, url

    def agency_call(self, method, path, body=None, expect=None):
        return self.h.json(method, path, body, headers={"Authorization": "Bearer " + self.key},
                           auth=False, expect=expect)

    def open(self, duration_s=600):
        """An event at P; returns (event, {camera id: grant})."""
        _, ev = self.agency_call("POST", "/api/v1/events", {
            "service": "112-center", "location": {"lat": P[0], "lon": P[1]},
            "incident": "112-2026-77", "reason": "relay test", "duration_s": duration_s},
            expect=201)
        grants = {g["camera_id"]: g for g in ev["grants"]}
        check(set(grants) == set(self.cams), "the event drew on %s, wanted %s"
              % (sorted(grants), sorted(self.cams)))
        for cid, g in grants.items():
            want = "rtsp://127.0.0.1:%d/cameras/%d?token=" % (self.rtsp_port, cid)
            check(g["rtsp_url"] == want + g["token"], "grant rtsp_url %s" % g["rtsp_url"])
        return ev, grants

    def streams(self):
        _, page = self.h.json("GET", "/api/v1/streams", expect=200)
        return {s["camera_id"]: s for s in page["items"]}

    def stream(self, cid):
        return self.streams().get(cid)

    def audit(self, action):
        _, page = self.h.json("GET", "/api/v1/audit?limit=1000&action=" + action, expect=200)
        return page["items"]

    def audit_total(self, action):
        _, page = self.h.json("GET", "/api/v1/audit?limit=1&action=" + action, expect=200)
        return page["total"]

    def ends(self, reason):
        return [r for r in self.audit("view.end") if r.get("details", {}).get("reason") ==
                reason]

    def healthy(self):
        status, _, _ = self.h.request("GET", "/api/v1/health")
        return status == 200


def with_site(fn, env=None, flag=True, after_stop=None, nofile=None):
    """Runs fn(site) on a new hub, then stops it cleanly, then after_stop(site) if given (the
    data directory is still there). With CH_RELAY_VERBOSE=1 a failure prints its traceback
    and the end of the hub's log."""
    s = Site(env=env, flag=flag, nofile=nofile)
    try:
        fn(s)
        s.h.stop()
        if after_stop:
            after_stop(s)
    except Exception:
        if os.environ.get("CH_RELAY_VERBOSE"):
            traceback.print_exc()
            print("---- hub log (end) ----\n%s" % s.h.stderr()[-6000:], flush=True)
        raise
    finally:
        kill_spawned()
        s.h.cleanup()


def playing(s, cid):
    st = s.stream(cid)
    return st if st and st["state"] == "playing" else None


def stop_everything():
    """At the end of a script: kills the viewers still running and stops the cameras."""
    kill_spawned()
    stop_cameras()
