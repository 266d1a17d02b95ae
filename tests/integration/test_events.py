"""Events and grants against the real daemon: all 11 linked services end to end through the
HTTP API as the agencies' systems (API keys) and an operator, tokens checked independently
with OpenSSL against the node's public key, denials and bad input audited with nothing
half-created, extension limits, close and revocation, a moving subject, expiry, a restart in
the middle of live grants, and concurrent events on the same cameras. Issue 15: a close on the
record survives a kill -9 before its commit (a test-only crash point), an operator's own
request waits for another person, and only a subject that may move moves, at a plausible
speed."""

import base64
import http.client
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
import hub  # noqa: E402
from hub import SERVICES, Hub, add_user, check  # noqa: E402
from grant_token import b64url, token_claims  # noqa: E402

P = (37.5700, 126.9800)  # the place of most events (Jongno)
Q = (37.5790, 126.9800)  # about 1 km north
PASSWORD = "operator-password-1"


def start(env=None, data_dir=None):
    e = {"CCTVHUB_SERVICES_FILE": SERVICES}
    e.update(env or {})
    return Hub(env=e, data_dir=data_dir)


def agency(h, name, kind, type_, level="city"):
    _, a = h.json("POST", "/api/v1/agencies", {"name": name, "kind": kind, "level": level,
                                               "type": type_}, expect=201)
    return a["id"]


def camera(h, agency_id, name, lat, lon, purpose, kind="ptz", status="active"):
    _, c = h.json("POST", "/api/v1/cameras", {"agency_id": agency_id, "name": name, "lat": lat,
                                              "lon": lon, "purpose": purpose, "kind": kind,
                                              "status": status}, expect=201)
    return c["id"]


class World:
    """Agencies of every type, two providers with cameras at P and Q, a key per agency."""

    def __init__(self, h):
        self.h = h
        self.ag = {}
        for type_ in ["police-112", "police-station", "fire-119", "disaster-room",
                      "mayor-office", "moj-tracking", "military", "ansimi"]:
            self.ag[type_] = agency(h, "agency " + type_, "user", type_)
        self.district = agency(h, "종로구 관제센터", "provider", "district-center", "district")
        self.city = agency(h, "서울시설공단", "provider", "city-agency")
        self.ag["district-center"] = self.district
        self.ag["city-agency"] = self.city
        self.other = agency(h, "민간 주차장", "provider", "other")
        d = 0.0002  # ~20 m
        self.cams = {
            "crime": camera(h, self.district, "P 방범 1", P[0] + d, P[1], "생활방범"),
            "crime2": camera(h, self.district, "P 방범 2", P[0] - d, P[1], "생활방범"),
            "vehicle": camera(h, self.district, "P 차량", P[0], P[1] + d, "차량방범"),
            "traffic": camera(h, self.city, "P 교통", P[0], P[1] - d, "교통정보수집"),
            "private": camera(h, self.other, "P 민간", P[0] + d, P[1] + d, "생활방범"),
            "down": camera(h, self.district, "P 고장", P[0] - d, P[1] - d, "생활방범",
                           status="maintenance"),
            "q": camera(h, self.district, "Q 방범", Q[0] + d, Q[1], "생활방범"),
        }
        self.key = {}
        for type_, aid in self.ag.items():
            _, k = h.json("POST", "/api/v1/apikeys", {"agency_id": aid, "role": "agency"},
                          expect=201)
            self.key[type_] = k["key"]
        code, _, err = add_user(h.data_dir, "op", "operator", PASSWORD)
        check(code == 0, err)
        self.op = h.login("op", PASSWORD)

    def as_agency(self, type_):
        return {"Authorization": "Bearer " + self.key[type_]}

    def as_operator(self):
        return {"Cookie": self.op[0], "X-CSRF-Token": self.op[1]}

    def call(self, method, path, body=None, who=None, expect=None):
        headers = self.as_operator() if who == "operator" else self.as_agency(who)
        return self.h.json(method, path, body, headers=headers, auth=False, expect=expect)

    def open(self, service, type_, expect=201, **fields):
        body = {"service": service, "location": {"lat": P[0], "lon": P[1]},
                "incident": "INC-1", "reason": "a report"}
        body.update(fields)
        for k in [k for k, v in body.items() if v is None]:
            del body[k]
        return self.call("POST", "/api/v1/events", body, who=type_, expect=expect)


def openssl_verifies(pub_line, token):
    """Checks a view token's Ed25519 signature with OpenSSL (not our code): the public key
    from keys/node.pub (signed-note form: name+id+base64(0x01 || key))."""
    raw = base64.b64decode(pub_line.strip().split("+", 2)[2])[1:]
    der = bytes.fromhex("302a300506032b6570032100") + raw
    _, payload, sig = token.split(".")
    with tempfile.TemporaryDirectory() as d:
        pem = os.path.join(d, "pub.pem")
        with open(pem, "w") as f:
            f.write("-----BEGIN PUBLIC KEY-----\n%s\n-----END PUBLIC KEY-----\n"
                    % base64.b64encode(der).decode())
        msg, sigf = os.path.join(d, "msg"), os.path.join(d, "sig")
        with open(msg, "wb") as f:
            f.write(b"cctvhub-view-token-v1." + payload.encode())
        with open(sigf, "wb") as f:
            f.write(b64url(sig))
        p = subprocess.run(["openssl", "pkeyutl", "-verify", "-pubin", "-inkey", pem, "-rawin",
                            "-in", msg, "-sigfile", sigf], capture_output=True)
        return p.returncode == 0


def rtsp_describe(h, rtsp_url):
    """The relay's answer (status, reason header) to a DESCRIBE of a grant's rtsp_url, sent to
    the port the relay listens on."""
    path = rtsp_url.split("/", 3)[3]
    url = "rtsp://127.0.0.1:%d/%s" % (h.rtsp_port, path)
    s = socket.create_connection(("127.0.0.1", h.rtsp_port), timeout=15)
    try:
        s.sendall(("DESCRIBE %s RTSP/1.0\r\nCSeq: 1\r\nAccept: application/sdp\r\n\r\n"
                   % url).encode())
        data = hub.read_head(s, size=4096)
        head = data.split(b"\r\n\r\n")[0].decode("utf-8", "replace")
        return int(head.split(" ", 2)[1]), head
    finally:
        s.close()


def grants_active(h):
    """cctvhub_grants_active from GET /metrics (as the administrator): the live grants, which
    are exactly the grants the relay admits."""
    status, _, data = h.request("GET", "/metrics")
    check(status == 200, data[:300])
    for line in data.decode().splitlines():
        if line.startswith("cctvhub_grants_active "):
            return int(float(line.split()[1]))
    raise hub.Failure("no cctvhub_grants_active in /metrics")


def killed_by_its_crash_point(h, what):
    """The daemon must have killed itself (SIGKILL) at its test crash point."""
    try:
        h.proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        raise hub.Failure("the hub did not stop at its crash point (%s)" % what)
    check(h.proc.returncode == -9, "exit %s at %s:\n%s" % (h.proc.returncode, what,
                                                          h.stderr()[-2000:]))
    check("test crash point" in h.stderr(), h.stderr()[-2000:])


def audit(h, **filters):
    q = "&".join("%s=%s" % kv for kv in filters.items())
    _, page = h.json("GET", "/api/v1/audit?limit=1000&" + q, expect=200)
    return page["items"]


# The services, who asks, and which cameras at P each may draw on (etc/services.json).
ALL_PUBLIC = {"crime", "crime2", "vehicle", "traffic"}
CASES = [
    ("112-center", "police-112", {}, ALL_PUBLIC),
    ("112-dispatch", "police-station", {}, ALL_PUBLIC),
    ("119-dispatch", "fire-119", {"reason": None}, ALL_PUBLIC),
    ("vulnerable-persons", "police-112", {}, ALL_PUBLIC),
    ("disaster-response", "disaster-room", {}, ALL_PUBLIC),
    ("anklet-violation", "moj-tracking", {"case": "curfew-breach"}, ALL_PUBLIC),
    ("wanted-vehicle", "police-112", {}, {"vehicle"}),
    ("women-safe-return", "police-station", {"incident": None}, ALL_PUBLIC),
    ("military-training", "military", {"incident": None}, ALL_PUBLIC),
    ("ansimi-sos", "ansimi", {"reason": None}, ALL_PUBLIC),
    ("city-dashboard", "mayor-office", {"incident": None}, {"traffic"}),
]


def test_all_eleven_services_end_to_end():
    h = start()
    try:
        w = World(h)
        with open(os.path.join(h.data_dir, "keys", "node.pub")) as f:
            pub = f.read()
        names = {v: k for k, v in w.cams.items()}
        for service, type_, extra, expected in CASES:
            _, ev = w.open(service, type_, **extra)
            if ev["status"] == "pending":
                # Services that need an operator first: no token before approval.
                check(all(g["status"] == "pending" and "token" not in g for g in ev["grants"]),
                      ev)
                # The agency cannot approve its own event.
                status, b = w.call("POST", "/api/v1/events/%d/approve" % ev["id"], {},
                                   who=type_)
                check(status == 403, b)
                _, ev = w.call("POST", "/api/v1/events/%d/approve" % ev["id"],
                               {"note": "checked with the caller"}, who="operator", expect=200)
                check(ev["decided_by"] == "user:op", ev)
                # The agency sees its tokens once approved.
                _, ev = w.call("GET", "/api/v1/events/%d" % ev["id"], who=type_, expect=200)
            check(ev["status"] == "active" and ev["service"] == service, ev)
            got = {names[g["camera_id"]] for g in ev["grants"]}
            check(got == expected, "%s drew on %s, wanted %s" % (service, got, expected))
            check(ev["legal_basis"]["code"], ev)
            for g in ev["grants"]:
                check(g["status"] == "active" and g["reason"]["visibility"], g)
                c = token_claims(g["token"])
                check(c == {"grant": g["id"], "event": ev["id"], "camera": g["camera_id"],
                            "agency": w.ag[type_], "exp": c["exp"]}, (c, g))
                check(abs(c["exp"] - time.time() - ev["duration_s"]) < 120, c)
                check(openssl_verifies(pub, g["token"]), "OpenSSL rejects a token")
                check(g["rtsp_url"].endswith("/cameras/%d?token=%s" % (g["camera_id"],
                                                                       g["token"])), g)
                check(g["ws_url"].startswith("ws://127.0.0.1:%d/api/v1/cameras/" % h.port), g)
            # A forged token (another camera in the payload, the same signature) is refused.
            g = ev["grants"][0]
            head, payload, sig = g["token"].split(".")
            forged = b64url(payload).decode().split(".")
            forged[2] = str(int(forged[2]) + 1)
            fp = base64.urlsafe_b64encode(".".join(forged).encode()).decode().rstrip("=")
            check(not openssl_verifies(pub, "%s.%s.%s" % (head, fp, sig)), "forged token")
            # Someone else's agency does not see it.
            other = "fire-119" if type_ != "fire-119" else "police-112"
            status, _ = w.call("GET", "/api/v1/events/%d" % ev["id"], who=other)
            check(status == 404, status)
            # Closed by its agency: every grant ends, the record says so.
            _, closed = w.call("POST", "/api/v1/events/%d/close" % ev["id"], {"reason": "done"},
                               who=type_, expect=200)
            check(closed["status"] == "closed" and closed["closed_by"].startswith("apikey:"),
                  closed)
            check(all(g["status"] == "closed" and "token" not in g for g in closed["grants"]),
                  closed)
        recs = audit(h, action="event.open") + audit(h, action="event.request")
        check(len(recs) == 11, [(r["action"], r["outcome"], r["object"]) for r in recs])
        check(all(r["purpose"] and r["legal_basis"] for r in recs), recs[0])
        check(len(audit(h, action="event.close")) == 11, "closes not recorded")
        # The record finds everything about one camera (the audit index reads "cameras").
        by_cam = audit(h, camera=w.cams["vehicle"])
        opened = [r for r in by_cam if r["action"] in ("event.open", "event.request")]
        check(len(opened) == 10, [r["action"] for r in by_cam])
        h.stop()
    finally:
        h.cleanup()


def test_denials_and_bad_input_are_clear_audited_and_create_nothing():
    h = start()
    try:
        w = World(h)
        cases = [
            # (who, body changes, status, code, rule or field)
            ("fire-119", {"service": "112-center"}, 403, "denied", "agency_type_not_allowed"),
            ("police-112", {"incident": None}, 403, "denied", "incident_required"),
            ("police-112", {"duration_s": 3601}, 403, "denied", "duration_over_limit"),
            ("moj-tracking", {"service": "anklet-violation", "case": "picnic"}, 403, "denied",
             "case_not_allowed"),
            ("police-112", {"service": "no-such-service"}, 400, "invalid", "service"),
            ("police-112", {"location": {"lat": 35.0, "lon": 140.0}}, 400, "outside", "location"),
            ("police-112", {"location": {"lat": "x", "lon": 1}}, 400, "invalid", "location"),
            ("police-112", {"colour": "red"}, 400, "invalid", "colour"),
            ("police-112", {"agency_id": 999}, 400, "invalid", "agency_id"),
        ]
        for who, changes, status, code, detail in cases:
            body = {"service": "112-center", "location": {"lat": P[0], "lon": P[1]},
                    "incident": "INC-9", "reason": "r"}
            body.update(changes)
            body = {k: v for k, v in body.items() if v is not None}
            got, b = w.call("POST", "/api/v1/events", body, who=who)
            check(got == status and b["error"]["code"] == code, (changes, got, b))
            check(b["error"].get("rule") == detail or b["error"].get("field") == detail,
                  (changes, b))
        _, page = h.json("GET", "/api/v1/events", expect=200)
        check(page["total"] == 0, "something was half-created: %s" % page)
        denied = [r for r in audit(h) if r["outcome"] == "denied" and
                  r["action"] in ("event.deny", "event.open")]
        check(len(denied) == len(cases), (len(denied), denied[-1:]))
        h.stop()
    finally:
        h.cleanup()


def test_extension_limits_revocation_and_a_moving_subject():
    h = start(env={"CCTVHUB_EVENT_GRACE_S": "1"})
    try:
        w = World(h)
        # 112-dispatch: extended twice at most, by the agency or an operator.
        _, ev = w.open("112-dispatch", "police-112", duration_s=600)
        first = ev["expires_at"]
        _, ev = w.call("POST", "/api/v1/events/%d/extend" % ev["id"], {"duration_s": 300},
                       who="police-112", expect=200)
        check(ev["extensions"] == 1 and ev["expires_at"] > first, ev)
        check(all(g["expires_at"] == ev["expires_at"] for g in ev["grants"]), ev)
        w.call("POST", "/api/v1/events/%d/extend" % ev["id"], {}, who="operator", expect=200)
        status, b = w.call("POST", "/api/v1/events/%d/extend" % ev["id"], {}, who="police-112")
        check(status == 403 and b["error"]["rule"] == "extension_limit", b)
        # ansimi-sos: only an operator extends.
        _, ev2 = w.open("ansimi-sos", "ansimi", reason=None)
        status, b = w.call("POST", "/api/v1/events/%d/extend" % ev2["id"], {}, who="ansimi")
        check(status == 403 and b["error"]["rule"] == "extension_role_not_allowed", b)
        # The provider revokes one grant on its camera; the operator revokes a whole event.
        district_key = w.key["district-center"]
        gid = [g["id"] for g in ev["grants"] if g["camera_id"] == w.cams["crime"]][0]
        _, _, _ = h.request("GET", "/api/v1/session", auth=False)
        code, _, err = add_user(h.data_dir, "jongno", "provider", PASSWORD, agency=w.district)
        check(code == 0, err)
        cookie, csrf = h.login("jongno", PASSWORD)
        prov = {"Cookie": cookie, "X-CSRF-Token": csrf}
        _, g = h.json("POST", "/api/v1/grants/%d/revoke" % gid, {"reason": "maintenance"},
                      headers=prov, auth=False, expect=200)
        check(g["status"] == "revoked" and g["ended_by"] == "user:jongno", g)
        tgid = [x["id"] for x in ev["grants"] if x["camera_id"] == w.cams["traffic"]][0]
        status, _ = h.json("POST", "/api/v1/grants/%d/revoke" % tgid, {}, headers=prov,
                           auth=False)
        check(status == 404, "a provider revoked another provider's camera")
        del district_key
        _, ev2 = w.call("POST", "/api/v1/events/%d/revoke" % ev2["id"], {"reason": "misuse"},
                        who="operator", expect=200)
        check(ev2["status"] == "closed" and all(x["status"] == "revoked" for x in ev2["grants"]),
              ev2)
        # A moving subject (a patrol car): from P to Q; P's cameras stay for the grace, then
        # are released. 1 km at once is beyond a car for the agency's feed; an operator places
        # it there (a correction, recorded as an override).
        _, mv = w.open("112-dispatch", "police-112", duration_s=600)
        status, b = w.call("POST", "/api/v1/events/%d/positions" % mv["id"],
                           {"lat": Q[0], "lon": Q[1]}, who="police-112")
        check(status == 422 and b["error"]["rule"] == "implausible_speed", b)
        _, mv = w.call("POST", "/api/v1/events/%d/positions" % mv["id"],
                       {"lat": Q[0], "lon": Q[1]}, who="operator", expect=200)
        by_cam = {x["camera_id"]: x for x in mv["grants"]}
        check(by_cam[w.cams["q"]]["status"] == "active", mv)
        check(by_cam[w.cams["crime"]]["expires_at"] < mv["expires_at"], mv)
        deadline = time.time() + 15
        while time.time() < deadline:
            _, mv = w.call("GET", "/api/v1/events/%d" % mv["id"], who="police-112", expect=200)
            by_cam = {x["camera_id"]: x for x in mv["grants"]}
            if by_cam[w.cams["crime"]]["status"] == "released":
                break
            time.sleep(0.2)
        check(by_cam[w.cams["crime"]]["status"] == "released", mv)
        check(by_cam[w.cams["q"]]["status"] == "active" and mv["status"] == "active", mv)
        moves = [r for r in audit(h, action="event.move") if r["outcome"] == "ok"]
        check(len(moves) == 1 and moves[0]["details"]["override"] == "implausible_speed" and
              audit(h, action="grant.release"), "the move is not on the record")
        h.stop()
    finally:
        h.cleanup()


def test_expiry_and_a_restart_in_the_middle_of_live_grants():
    h = start()
    try:
        w = World(h)
        _, short = w.open("112-center", "police-112", duration_s=2)
        _, long_ = w.open("119-dispatch", "fire-119", duration_s=3600, reason=None)
        h.stop()
        time.sleep(2.5)  # the short event's time runs out while the hub is down
        h2 = start(data_dir=h.data_dir)
        try:
            w.h = h2
            w.op = h2.login("op", PASSWORD)
            _, s = w.call("GET", "/api/v1/events/%d" % short["id"], who="police-112", expect=200)
            check(s["status"] == "expired" and s["closed_by"] == "system", s)
            check(all(g["status"] == "expired" for g in s["grants"]), s)
            rec = [r for r in audit(h2, action="event.expire")
                   if r["object"] == "event:%d" % short["id"]]
            check(len(rec) == 1 and rec[0]["details"]["late_ms"] > 0, rec)
            _, l = w.call("GET", "/api/v1/events/%d" % long_["id"], who="fire-119", expect=200)
            check(l["status"] == "active" and all(g["status"] == "active" for g in l["grants"]),
                  l)
            check(l["grants"][0]["token"] == long_["grants"][0]["token"], "token changed")
            # And expiry on the running hub's own timer.
            _, e = w.open("112-dispatch", "police-112", duration_s=1)
            deadline = time.time() + 10
            while time.time() < deadline:
                _, e = w.call("GET", "/api/v1/events/%d" % e["id"], who="police-112",
                              expect=200)
                if e["status"] == "expired":
                    break
                time.sleep(0.1)
            check(e["status"] == "expired", e)
            h2.stop()
            code, out, err = hub.run(["audit", "verify", "--data-dir", h.data_dir])
            check(code == 0, out + err)
        finally:
            h2.cleanup()
    finally:
        h.cleanup()


def test_concurrent_events_on_the_same_cameras():
    h = start()
    try:
        w = World(h)
        results = []

        def one(type_, service, n):
            for _ in range(n):
                extra = {"reason": None} if service == "119-dispatch" else {}
                body = {"service": service, "location": {"lat": P[0], "lon": P[1]},
                        "incident": "INC", "reason": "r"}
                body.update(extra)
                body = {k: v for k, v in body.items() if v is not None}
                results.append(w.call("POST", "/api/v1/events", body, who=type_))

        threads = [threading.Thread(target=one, args=a) for a in
                   [("police-112", "112-center", 10), ("fire-119", "119-dispatch", 10),
                    ("police-station", "112-dispatch", 10)]]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        check(len(results) == 30 and all(s == 201 for s, _ in results),
              [s for s, _ in results])
        for _, ev in results:
            check({g["camera_id"] for g in ev["grants"]} ==
                  {w.cams[k] for k in ALL_PUBLIC}, ev)
        # Closing one leaves the others' grants on the same cameras alone.
        first = results[0][1]
        w.call("POST", "/api/v1/events/%d/close" % first["id"], {}, who="operator", expect=200)
        _, page = h.json("GET", "/api/v1/events?status=active&limit=100", expect=200)
        check(page["total"] == 29, page["total"])
        h.expect_invalid("/api/v1/events?status=opne", "status",
                         "status must be one of pending, active, denied, closed, expired")
        h.expect_invalid("/api/v1/events?limit=0", "limit", "limit must be an integer 1..1000")
        h.expect_invalid("/api/v1/events?cursor=x", "cursor")
        h.expect_invalid("/api/v1/events?state=active", "state")
        h.stop()
    finally:
        h.cleanup()


def test_provision_ledger_from_the_audit_record():
    h = start()
    try:
        w = World(h)
        _, a = w.open("112-center", "police-112", duration_s=600)
        _, b = w.open("119-dispatch", "fire-119", reason=None)
        w.call("POST", "/api/v1/events/%d/extend" % a["id"], {}, who="police-112", expect=200)
        w.call("POST", "/api/v1/events/%d/close" % a["id"], {"reason": "arrested"},
               who="police-112", expect=200)
        _, pend = w.open("wanted-vehicle", "police-112")
        check(pend["status"] == "pending", pend)
        # The auditor reads the ledger; an agency may not.
        code, _, err = add_user(h.data_dir, "privacy", "auditor", PASSWORD)
        check(code == 0, err)
        aud = h.login("privacy", PASSWORD)
        hdr = {"Cookie": aud[0]}
        _, led = h.json("GET", "/api/v1/ledger", headers=hdr, auth=False, expect=200)
        check(led["total"] == 2, led)  # the pending event provided nothing yet
        rows = {r["event_id"]: r for r in led["items"]}
        ra, rb = rows[a["id"]], rows[b["id"]]
        check(ra["recipient"] == "agency police-112" and ra["service"] == "112-center", ra)
        check(ra["legal_basis"] == a["legal_basis"]["code"] and ra["legal_basis_text"], ra)
        check(sorted(ra["cameras"]) == sorted(g["camera_id"] for g in a["grants"]), ra)
        check(ra["period_to"] is not None and ra["ended_by"] == "event.close", ra)
        check(ra["extensions"] == 1 and ra["form"] == "live view", ra)  # no export was asked
        check(rb["period_to"] is None and rb["recipient_agency_id"] == w.ag["fire-119"], rb)
        # Filters: who had access to one camera; one recipient; a time window.
        _, one = h.json("GET", "/api/v1/ledger?camera_id=%d" % w.cams["crime"], headers=hdr,
                        auth=False, expect=200)
        check(one["total"] == 2, one)
        _, fire = h.json("GET", "/api/v1/ledger?agency_id=%d" % w.ag["fire-119"], headers=hdr,
                         auth=False, expect=200)
        check([r["event_id"] for r in fire["items"]] == [b["id"]], fire)
        _, later = h.json("GET", "/api/v1/ledger?from=2100-01-01T00:00:00Z", headers=hdr,
                          auth=False, expect=200)
        check(later["total"] == 0, later)
        # A window after the first provision ended holds only the one still running.
        time.sleep(0.01)
        since = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + ".%03dZ" % (
            int(time.time() * 1000) % 1000)
        _, running = h.json("GET", "/api/v1/ledger?from=" + since, headers=hdr, auth=False,
                            expect=200)
        check([r["event_id"] for r in running["items"]] == [b["id"]], running)
        status, _ = w.call("GET", "/api/v1/ledger", who="police-112")
        check(status == 403, status)
        status, b2 = h.json("GET", "/api/v1/ledger?from=yesterday", headers=hdr, auth=False)
        check(status == 400 and b2["error"]["field"] == "from", b2)
        h.expect_invalid("/api/v1/ledger?format=xlsx", "format", "format must be one of json, csv",
                         headers=hdr, auth=False)
        h.expect_invalid("/api/v1/ledger?camera_id=0", "camera_id", headers=hdr, auth=False)
        h.expect_invalid("/api/v1/ledger?limit=10", "limit", headers=hdr, auth=False)
        # CSV for Excel: BOM, CRLF, a header row, one line per provision.
        status, headers, data = h.request("GET", "/api/v1/ledger?format=csv", headers=hdr,
                                          auth=False)
        check(status == 200 and headers["content-type"].startswith("text/csv"), headers)
        check(data.startswith(b"\xef\xbb\xbf"), data[:10])
        lines = data[3:].decode().split("\r\n")
        check(lines[0].startswith("제공일") and len([x for x in lines if x]) == 3, lines)
        # The command reads the same ledger from the log, beside the running hub.
        code, out, err = hub.run(["ledger", "--format", "json", "--data-dir", h.data_dir],
                                 env={"CCTVHUB_SERVICES_FILE": SERVICES})
        check(code == 0 and json.loads(out) == led, (code, err))
        code, out, err = hub.run(["ledger", "--data-dir", h.data_dir],
                                 env={"CCTVHUB_SERVICES_FILE": SERVICES})
        check(code == 0 and out.startswith("\ufeff제공일") and
              len([x for x in out.split("\r\n") if x]) == 3, out[:100])
        h.stop()
    finally:
        h.cleanup()


def test_a_close_on_the_record_survives_a_kill_before_its_commit():
    """Issue 15, item 5: the hub is killed (a test-only crash point, debug builds) right after a
    close's audit record is durable and before the store's COMMIT. The next start carries the
    close out from the record: the event closed, its grants ended, the relay refusing the old
    token, the close recorded once. And the reverse order: an open committed to the store whose
    record never became durable is aborted at the next start. And a grant revoked because its
    camera was deleted (reason camera_removed) stays revoked after a kill between its record
    and its commit."""
    h = start(env={"CCTVHUB_TEST_CRASH_AT": "event.close.after_audit"})
    h2 = h3 = h4 = None
    try:
        w = World(h)
        _, ev = w.open("112-center", "police-112", duration_s=600)
        check(len(ev["grants"]) == 4 and grants_active(h) == 4, ev)
        try:
            w.call("POST", "/api/v1/events/%d/close" % ev["id"], {"reason": "arrested"},
                   who="police-112")
            raise hub.Failure("the close was answered: the crash point did not fire")
        except (OSError, http.client.HTTPException):
            pass  # the hub died before its answer
        killed_by_its_crash_point(h, "event.close.after_audit")

        h2 = start(data_dir=h.data_dir, env={"CCTVHUB_TEST_CRASH_AT": "event.open.after_commit"})
        w.h = h2
        w.op = h2.login("op", PASSWORD)
        _, e = w.call("GET", "/api/v1/events/%d" % ev["id"], who="police-112", expect=200)
        check(e["status"] == "closed" and e["closed_by"].startswith("apikey:") and
              e["close_reason"] == "arrested", e)
        check(all(g["status"] == "closed" and "token" not in g for g in e["grants"]), e)
        _, page = h2.json("GET", "/api/v1/events?status=active", expect=200)
        check(page["total"] == 0 and grants_active(h2) == 0, page)
        for g in ev["grants"]:
            status, head = rtsp_describe(h2, g["rtsp_url"])
            check(status == 403, "the relay admits a closed event's token: " + head)
        closes = [r for r in audit(h2, action="event.close")
                  if r["object"] == "event:%d" % ev["id"]]
        check(len(closes) == 1, closes)
        check("the store now follows the record" in h2.stderr(), h2.stderr()[-2000:])

        # The reverse order: the store holds an open, the hub dies before its record.
        try:
            w.open("119-dispatch", "fire-119", reason=None)
            raise hub.Failure("the open was answered: the crash point did not fire")
        except (OSError, http.client.HTTPException):
            pass
        killed_by_its_crash_point(h2, "event.open.after_commit")
        h3 = start(data_dir=h.data_dir)
        _, page = h3.json("GET", "/api/v1/events?limit=100", expect=200)
        fire = [x for x in page["items"] if x["service"] == "119-dispatch"]
        check(len(fire) == 1 and fire[0]["status"] == "closed" and
              fire[0]["closed_by"] == "system" and
              all(g["status"] == "closed" for g in fire[0]["grants"]), fire)
        check([r for r in audit(h3, action="event.abort")
               if r["object"] == "event:%d" % fire[0]["id"]], "the abort is not on the record")
        h3.stop()
        h3.cleanup()

        # A camera deleted: its grant's revocation is on the record, the hub dies before the
        # grant's commit; the next start ends the grant as the record says.
        h3 = start(data_dir=h.data_dir, env={"CCTVHUB_TEST_CRASH_AT": "grant.revoke.after_audit"})
        w.h = h3
        _, ev = w.open("112-center", "police-112", duration_s=600)
        gone = next(g for g in ev["grants"] if g["camera_id"] == w.cams["crime2"])
        try:
            h3.request("DELETE", "/api/v1/cameras/%d" % w.cams["crime2"])
            raise hub.Failure("the delete was answered: the crash point did not fire")
        except (OSError, http.client.HTTPException):
            pass
        killed_by_its_crash_point(h3, "grant.revoke.after_audit")
        h4 = start(data_dir=h.data_dir)
        w.h = h4
        _, e = w.call("GET", "/api/v1/events/%d" % ev["id"], who="police-112", expect=200)
        by_id = {g["id"]: g for g in e["grants"]}
        check(by_id[gone["id"]]["status"] == "revoked" and
              by_id[gone["id"]]["end_reason"] == "camera_removed" and
              by_id[gone["id"]]["ended_by"] == "user:admin", by_id[gone["id"]])
        check(e["status"] == "active" and grants_active(h4) == len(ev["grants"]) - 1, e)
        status, head = rtsp_describe(h4, gone["rtsp_url"])
        check(status == 403, "the relay admits a removed camera's token: " + head)
        h4.stop()
        code, out, err = hub.run(["audit", "verify", "--data-dir", h.data_dir])
        check(code == 0, out + err)
    finally:
        for x in (h4, h3, h2):
            if x is not None:
                x.cleanup()
        h.cleanup()


def test_an_operator_does_not_approve_their_own_request():
    """Issue 15, item 10: an operator bound to the police opens wanted-vehicle (approval
    required): it waits like the police's own request; approving it themselves is refused with
    its rule; another operator approves it. The same for an administrator."""
    h = start()
    try:
        w = World(h)
        police = w.ag["police-112"]
        code, _, err = add_user(h.data_dir, "cop", "operator", PASSWORD, agency=police)
        check(code == 0, err)
        cookie, csrf = h.login("cop", PASSWORD)
        cop = {"Cookie": cookie, "X-CSRF-Token": csrf}
        body = {"service": "wanted-vehicle", "location": {"lat": P[0], "lon": P[1]},
                "incident": "112-2026-0099", "reason": "stolen car 12가3456"}
        _, ev = h.json("POST", "/api/v1/events", body, headers=cop, auth=False, expect=201)
        check(ev["status"] == "pending" and ev["agency_id"] == police and ev["grants"] and
              all(g["status"] == "pending" and "token" not in g for g in ev["grants"]), ev)
        status, b = h.json("POST", "/api/v1/events/%d/approve" % ev["id"], {}, headers=cop,
                           auth=False)
        check(status == 403 and b["error"]["rule"] == "approval_by_requester", (status, b))
        _, still = w.call("GET", "/api/v1/events/%d" % ev["id"], who="police-112", expect=200)
        check(still["status"] == "pending" and still["decided_by"] is None, still)
        refused = [r for r in audit(h, action="event.deny") if r["outcome"] == "denied" and
                   r["object"] == "event:%d" % ev["id"]]
        check(len(refused) == 1 and refused[0]["actor"] == "user:cop", refused)
        _, ev = w.call("POST", "/api/v1/events/%d/approve" % ev["id"], {"note": "plate checked"},
                       who="operator", expect=200)
        check(ev["status"] == "active" and ev["decided_by"] == "user:op", ev)
        _, ev = h.json("GET", "/api/v1/events/%d" % ev["id"], headers=cop, auth=False,
                       expect=200)
        check(all(g["status"] == "active" and g["token"] for g in ev["grants"]), ev)
        # An administrator's own request for the police: the same rule.
        body["agency_id"] = police
        _, ev = h.json("POST", "/api/v1/events", body, expect=201)
        check(ev["status"] == "pending", ev)
        status, b = h.json("POST", "/api/v1/events/%d/approve" % ev["id"], {})
        check(status == 403 and b["error"]["rule"] == "approval_by_requester", (status, b))
        w.call("POST", "/api/v1/events/%d/approve" % ev["id"], {}, who="operator", expect=200)
        h.stop()
    finally:
        h.cleanup()


def test_positions_only_for_a_following_subject_at_a_plausible_speed():
    """Issue 15, item 11: a 112-center event watches a place and does not move; a patrol car's
    event (112-dispatch) does not jump from Seoul to Busan (325 km) in one step and is granted
    nothing there; a plausible move is accepted."""
    h = start()
    try:
        w = World(h)
        busan = (35.1796, 129.0756)
        far = camera(h, w.district, "부산 방범", busan[0] + 0.0002, busan[1], "생활방범")
        _, place = w.open("112-center", "police-112", duration_s=600)
        status, b = w.call("POST", "/api/v1/events/%d/positions" % place["id"],
                           {"lat": Q[0], "lon": Q[1]}, who="police-112")
        check(status == 403 and b["error"]["rule"] == "not_moving_subject", (status, b))
        _, car = w.open("112-dispatch", "police-112", duration_s=600)
        status, b = w.call("POST", "/api/v1/events/%d/positions" % car["id"],
                           {"lat": busan[0], "lon": busan[1]}, who="police-112")
        check(status == 422 and b["error"]["code"] == "implausible" and
              b["error"]["rule"] == "implausible_speed" and "km/h" in b["error"]["message"],
              (status, b))
        _, now = w.call("GET", "/api/v1/events/%d" % car["id"], who="police-112", expect=200)
        check(now["location"]["lat"] == P[0] and far not in [g["camera_id"] for g in now["grants"]],
              now)
        # About 6 m a third of a second later (some 65 km/h): a car may do that.
        time.sleep(0.35)
        _, now = w.call("POST", "/api/v1/events/%d/positions" % car["id"],
                        {"lat": P[0] + 0.00005, "lon": P[1]}, who="police-112", expect=200)
        check(now["location"]["lat"] == P[0] + 0.00005, now)
        moves = audit(h, action="event.move")
        check(sorted(r["outcome"] for r in moves) == ["denied", "denied", "ok"], moves)
        h.stop()
    finally:
        h.cleanup()


# The national standard's layout with 데이터갱신구분 (U: updated, D: deleted by the publisher).
STD = ("관리번호,관리기관명,소재지도로명주소,소재지지번주소,설치목적구분,카메라대수,카메라화소수,"
       "촬영방면정보,보관일수,설치연월,관리기관전화번호,WGS84위도,WGS84경도,데이터기준일자,"
       "데이터갱신구분\n"
       "JN-77,종로구 관제센터,종로 77,,차량방범,2,200,고정,30,2019-03,02-000-0000,%s,%s,%s,%s\n"
       "JN-78,종로구 관제센터,종로 78,,생활방범,1,200,고정,30,2019-03,02-000-0000,%s,%s,%s,%s\n")


def import_site(h, date, kind, kind78="U"):
    data = (STD % (P[0], P[1], date, kind, P[0], P[1], date, kind78)).encode()
    status, _, body = h.request("POST", "/api/v1/imports?name=jongno.csv", data,
                                {"Content-Type": "text/csv"})
    check(status == 201, body[:500])
    return json.loads(body)


def test_a_camera_taken_away_loses_its_pending_grants_and_an_import_ends_grants_too():
    """Issue 15, item 15 follow-up: a camera deleted while an event awaiting approval holds a
    pending grant on it loses that grant too (the approval then hands out no token for it);
    a re-import whose row the publisher marks deleted (D: the cameras become inactive) ends
    the live and pending grants of its cameras, recorded with reason camera_deactivated, and
    the relay refuses their tokens."""
    h = start()
    try:
        w = World(h)
        r = import_site(h, "2026-05-20", "U")
        check(r["cameras_created"] == 3, r)
        _, page = h.json("GET", "/api/v1/cameras?limit=100&q=%EC%A2%85%EB%A1%9C%2077", expect=200)
        site = sorted(c["id"] for c in page["items"])
        check(len(site) == 2, page)
        _, page = h.json("GET", "/api/v1/cameras?limit=100&q=%EC%A2%85%EB%A1%9C%2078", expect=200)
        later = page["items"][0]["id"]
        _, live = w.open("112-center", "police-112", duration_s=600)
        _, pending = w.open("wanted-vehicle", "police-112")
        live_cams = {g["camera_id"]: g for g in live["grants"]}
        check(pending["status"] == "pending" and
              sorted(g["camera_id"] for g in pending["grants"]) ==
              sorted(site + [w.cams["vehicle"]]) and (set(site) | {later}) <= set(live_cams),
              (live, pending))

        h.json("DELETE", "/api/v1/cameras/%d" % w.cams["vehicle"], expect=204)
        r = import_site(h, "2026-11-30", "D")
        check(r["cameras_updated"] == 2, r)
        for cid in site:
            _, c = h.json("GET", "/api/v1/cameras/%d" % cid, expect=200)
            check(c["status"] == "inactive", c)
        check(by_status(h, live["id"])[later] == "active", "JN-78 lost its grant")

        _, ev = w.call("GET", "/api/v1/events/%d" % live["id"], who="police-112", expect=200)
        by_cam = {g["camera_id"]: g for g in ev["grants"]}
        for cid, reason in [(w.cams["vehicle"], "camera_removed")] + \
                [(cid, "camera_deactivated") for cid in site]:
            check(by_cam[cid]["status"] == "revoked" and by_cam[cid]["end_reason"] == reason,
                  by_cam[cid])
        check(ev["status"] == "active" and by_cam[w.cams["crime"]]["status"] == "active", ev)
        for cid in site:
            status, head = rtsp_describe(h, live_cams[cid]["rtsp_url"])
            check(status == 403, "the relay admits a deactivated camera's token: " + head)
        status, _ = rtsp_describe(h, live_cams[w.cams["crime"]]["rtsp_url"])
        check(status != 403, "the relay refuses a camera still in service")

        # The approval hands out nothing for cameras taken away while it waited.
        _, ev = w.call("POST", "/api/v1/events/%d/approve" % pending["id"], {}, who="operator",
                       expect=200)
        check(ev["status"] == "active" and
              all(g["status"] == "revoked" and "token" not in g for g in ev["grants"]), ev)
        recs = audit(h, action="grant.revoke")
        reasons = sorted(r["details"]["reason"] for r in recs)
        check(reasons == ["camera_deactivated"] * 4 + ["camera_removed"] * 2, recs)
        check(all(r["actor"] == "user:admin" for r in recs), recs)
        h.stop()

        # The command line imports into a stopped hub's store: the next start ends the grants
        # of the cameras it took out of service, before any viewer comes.
        path = os.path.join(h.tmp, "jongno.csv")
        with open(path, "wb") as f:
            f.write((STD % (P[0], P[1], "2026-12-01", "D", P[0], P[1], "2026-12-01", "D"))
                    .encode())
        code, _, err = hub.run(["import", "--data-dir", h.data_dir, path])
        check(code == 0, err)
        h2 = start(data_dir=h.data_dir)
        try:
            _, ev = h2.json("GET", "/api/v1/events/%d" % live["id"], expect=200)
            g = next(x for x in ev["grants"] if x["camera_id"] == later)
            check(g["status"] == "revoked" and g["end_reason"] == "camera_deactivated" and
                  g["ended_by"] == "system", g)
            status, head = rtsp_describe(h2, live_cams[later]["rtsp_url"])
            check(status == 403, "the relay admits a deactivated camera's token: " + head)
            h2.stop()
        finally:
            h2.cleanup()
    finally:
        h.cleanup()


def by_status(h, event_id):
    _, ev = h.json("GET", "/api/v1/events/%d" % event_id, expect=200)
    return {g["camera_id"]: g["status"] for g in ev["grants"]}


if __name__ == "__main__":
    hub.main([
        test_all_eleven_services_end_to_end,
        test_denials_and_bad_input_are_clear_audited_and_create_nothing,
        test_extension_limits_revocation_and_a_moving_subject,
        test_expiry_and_a_restart_in_the_middle_of_live_grants,
        test_concurrent_events_on_the_same_cameras,
        test_provision_ledger_from_the_audit_record,
        test_a_close_on_the_record_survives_a_kill_before_its_commit,
        test_an_operator_does_not_approve_their_own_request,
        test_positions_only_for_a_following_subject_at_a_plausible_speed,
        test_a_camera_taken_away_loses_its_pending_grants_and_an_import_ends_grants_too,
    ])
