"""GET /metrics against the real daemon, read by an independent parser: Debian's
python3-prometheus-client (text_string_to_metric_families), which refuses anything that
breaks the text format. Checks who may scrape (roles admin and auditor, or metrics.token as a
Bearer credential; everyone else 401 or 403, a refused credential audited), and that the figures move as the hub
works: requests counted by route template and status (never the raw path), their duration
histogram, events by service and outcome, grants active 1 then 0, audit appends and fsync
latency, a camsim camera's pull, RTSP and WebSocket viewers, bytes in and out."""

import os
import socket
import sys
import time

# Clips of this test's own: test_relay and test_live_ws make theirs at the same time under
# ctest -j, and make_clips.sh writes its files in place.
os.environ.setdefault("CH_CAMSIM_CLIPS", os.path.join(
    os.path.dirname(os.path.abspath(os.environ.get("CCTVHUB_BIN", "build/check/cctvhub"))),
    "camsim-clips-metrics"))

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
import hub  # noqa: E402
from hub import Hub, check, wait_for  # noqa: E402
from metrics import scrape  # noqa: E402  (/usr/bin/python3: Prometheus' parser)
from cameras import camsim  # noqa: E402
from events import P, stop_everything, with_site  # noqa: E402
from viewers import ffmpeg_frames  # noqa: E402
from wsclient import Ws, collect, ws_path  # noqa: E402

TOKEN = "scrape-0123456789abcdef-ABCDEF_~.+/="


def requests(s, method, route, code):
    return s.get("cctvhub_http_requests_total", method=method, route=route, code=str(code))


def test_who_may_scrape_and_refused_credentials_are_audited():
    # Refusals of one address are summed up per interval; a short one, and the refusals
    # below spaced by more, puts each on the record by itself.
    h = Hub(env={"CCTVHUB_METRICS_TOKEN": TOKEN, "CCTVHUB_AUDIT_REFUSAL_INTERVAL_MS": "100"})
    try:
        for role in ("auditor", "operator"):
            code, _, err = hub.add_user(h.data_dir, role + "1", role, "password-of-" + role)
            check(code == 0, "user add %s: %s" % (role, err))
        # The administrator's and an auditor's sessions, and the token: no account needed.
        scrape(h)
        cookie, _ = h.login("auditor1", "password-of-auditor")
        scrape(h, headers={"Cookie": cookie})
        scrape(h, headers={"Authorization": "Bearer " + TOKEN}, auth=False)
        scrape(h, headers={"Authorization": "bearer " + TOKEN}, auth=False)
        # No credential, a wrong token (taken for an API key, as on every route), an operator.
        for headers, want in (({}, 401), ({"Authorization": "Bearer " + TOKEN[:-1]}, 401),
                              ({"Authorization": "Bearer " + TOKEN + "x"}, 401),
                              ({"Authorization": "Basic " + TOKEN}, 401)):
            time.sleep(0.15)
            status, hdrs, data = h.request("GET", "/metrics", headers=headers, auth=False)
            check(status == want and b'"unauthenticated"' in data,
                  "%r: %d %s" % (headers, status, data[:200]))
            check(TOKEN.encode() not in data, "the token in an answer")
        cookie, _ = h.login("operator1", "password-of-operator")
        status, _, data = h.request("GET", "/metrics", headers={"Cookie": cookie})
        check(status == 403 and b'"forbidden"' in data, "operator: %d %s" % (status, data))
        status, _, data = h.request("GET", "/metrics?format=json")
        check(status == 400 and b'"query"' in data, "a query: %d %s" % (status, data))
        status, hdrs, _ = h.request("POST", "/metrics", body=b"")
        check(status == 405 and hdrs.get("allow") == "GET", "POST: %d %r" % (status, hdrs))
        # Each refused credential is on the audit record (a request with none is not, as on
        # every route); the token never is, nor in the log.
        time.sleep(0.3)
        _, page = h.json("GET", "/api/v1/audit?limit=100&action=auth.denied", expect=200)
        denied = [r for r in page["items"] if r.get("details", {}).get("path") == "/metrics"]
        check(len(denied) == 3, "auth.denied records of /metrics: %r" % denied)
        check(not any(TOKEN[:12] in str(r) for r in page["items"]), "the token on the record")
        _, page = h.json("GET", "/api/v1/audit?limit=100&action=auth.forbidden", expect=200)
        check(any(r.get("details", {}).get("path") == "/metrics" for r in page["items"]),
              "no auth.forbidden record of the operator's scrape")
        text = h.stop()
        check(TOKEN not in text and TOKEN[:-1] not in text, "the token in the log")
    finally:
        h.cleanup()


def test_requests_refused_before_routing_are_counted():
    """What the HTTP server answers itself (no route sees it) is counted by status and reason,
    exactly: a malformed head, a long target, a large head, a chunked upload, HTTP/2.0, a body
    over the limit, a request cut short past the request timeout, a connection over the cap."""
    h = Hub(env={"CCTVHUB_HTTP_MAX_HEAD": "2048", "CCTVHUB_HTTP_MAX_TARGET": "512",
                 "CCTVHUB_HTTP_MAX_BODY": "1024", "CCTVHUB_HTTP_REQUEST_TIMEOUT_MS": "300",
                 "CCTVHUB_HTTP_MAX_CONNECTIONS_PER_ADDR": "20"})
    try:
        before = scrape(h)
        sent = [
            (400, "bad_request", b"GET /api/v1/health HTTP/1.1\r\nNo colon here\r\n\r\n"),
            (400, "bad_request", b"GARBAGE\r\n\r\n"),
            (414, "uri_too_long", b"GET /" + b"a" * 600 + b" HTTP/1.1\r\nHost: x\r\n\r\n"),
            (431, "headers_too_large",
             b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * 3000 + b"\r\n\r\n"),
            (501, "not_implemented", b"POST /api/v1/imports HTTP/1.1\r\nHost: x\r\n"
             b"Transfer-Encoding: chunked\r\n\r\n"),
            (505, "http_version_not_supported", b"GET / HTTP/2.0\r\nHost: x\r\n\r\n"),
            (413, "payload_too_large", b"POST /api/v1/cameras HTTP/1.1\r\nHost: x\r\n"
             b"Content-Length: 5000\r\n\r\n"),
            (408, "request_timeout", b"POST /api/v1/cameras HTTP/1.1\r\nHost: x\r\n"
             b"Content-Length: 10\r\n\r\nabc"),
        ]
        for status, reason, data in sent:
            answer = h.raw(data, read_timeout=5.0)
            check(answer.startswith(b"HTTP/1.1 %d " % status) and reason.encode() in answer,
                  "%d %s: %r" % (status, reason, answer[:200]))
        # Over the cap by address: idle connections hold its places, the next is refused (a
        # full server would close an idle one for it instead).
        held = []
        try:
            while len(held) < 40:
                s = socket.create_connection(("127.0.0.1", h.port), timeout=5)
                held.append(s)
                s.settimeout(0.2)
                try:
                    first = s.recv(400)
                except socket.timeout:
                    continue
                check(first.startswith(b"HTTP/1.1 503 ") and b"too_many_connections" in first,
                      "over the cap: %r" % first[:200])
                break
            else:
                check(False, "40 connections held and none refused")
        finally:
            for s in held:
                s.close()
        time.sleep(0.3)
        after = scrape(h)
        for code, reason in ((400, "bad_request"), (408, "request_timeout"),
                             (413, "payload_too_large"), (414, "uri_too_long"),
                             (431, "headers_too_large"), (501, "not_implemented"),
                             (503, "too_many_connections"), (505, "http_version_not_supported")):
            want = 2 if code == 400 else 1
            got = after.get("cctvhub_http_refused_total", code=str(code), reason=reason) - \
                before.get("cctvhub_http_refused_total", code=str(code), reason=reason)
            check(got == want, "refused %d %s: %r, want %d" % (code, reason, got, want))
        check(after.type_of("cctvhub_http_refused") == "counter", "refused: not a counter")
        # None of them reached a route.
        for code in (400, 408, 413, 414, 431, 501, 505):
            check(requests(after, "any", "unmatched", code) == 0,
                  "a refused request counted as routed: %d" % code)
        h.stop()
    finally:
        h.cleanup()


def test_a_bad_token_stops_the_start_naming_the_key():
    code, _, err = hub.run(["serve", "--data-dir", "/nonexistent-cctvhub", "--http",
                            "127.0.0.1:0"], env={"CCTVHUB_METRICS_TOKEN": "short secret"})
    check(code == 3 and "metrics.token" in err and "short secret" not in err,
          "exit %d: %s" % (code, err[-300:]))


def test_figures_move_with_requests_events_views_and_the_audit_log():
    cam = camsim()

    def run(s):
        h = s.h
        bearer = {"Authorization": "Bearer " + TOKEN}
        cid = s.camera("metrics-cam", cam.url("metrics-1"))
        first = scrape(h, headers=bearer, auth=False)
        check(first.type_of("cctvhub_http_requests") == "counter", "requests: not a counter")
        check(first.type_of("cctvhub_http_request_duration_seconds") == "histogram",
              "duration: not a histogram")
        check(first.get("cctvhub_build_info", version="0.1.0",
                        revision=first.families["cctvhub_build_info"].samples[0]
                        .labels["revision"]) == 1, "build_info")
        check(first.get("cctvhub_cameras_registered", status="active") == 1, "cameras")
        check(first.get("cctvhub_grants_active") == 0, "grants before")
        check(first.get("cctvhub_http_connections") >= 1, "connections: the scrape's own")
        check(first.get("process_open_fds") > 3 and first.get("process_resident_memory_bytes")
              > 1e6 and first.get("process_start_time_seconds") > 1.7e9, "process basics")
        # Requests: counted under the route's template, 404s of unknown paths as unmatched.
        for _ in range(3):
            h.json("GET", "/api/v1/cameras/%d" % cid, expect=200)
        h.json("GET", "/api/v1/cameras/999999", expect=404)
        h.request("GET", "/no/such/path/%d" % time.time_ns())
        h.request("DELETE", "/api/v1/health")
        # An event with one grant, opened by the police's system.
        ev, grants = s.open()
        gr = grants[cid]
        second = scrape(h, headers=bearer, auth=False)
        for route, code, n in (("/api/v1/cameras/{id}", 200, 3), ("/api/v1/cameras/{id}", 404, 1),
                               ("/api/v1/events", 201, 1)):
            method = "POST" if route == "/api/v1/events" else "GET"
            got = requests(second, method, route, code) - requests(first, method, route, code)
            check(got == n, "%s %s %d: %r more, wanted %d" % (method, route, code, got, n))
        check(requests(second, "any", "unmatched", 404) - requests(first, "any", "unmatched",
                                                                   404) == 1, "unmatched 404")
        check(requests(second, "any", "unmatched", 405) >= 1, "unmatched 405")
        check(not any("/no/such" in str(k) or "999999" in str(k) for k in second.samples),
              "a raw path became a label")
        # The duration histogram counts what the counter counts.
        per = sum(v for (n, l), v in second.samples.items()
                  if n == "cctvhub_http_requests_total" and
                  dict(l).get("route") == "/api/v1/cameras/{id}" and dict(l)["method"] == "GET")
        dur = second.get("cctvhub_http_request_duration_seconds_count", method="GET",
                         route="/api/v1/cameras/{id}")
        check(per == dur, "requests %r, durations %r" % (per, dur))
        check(second.get("cctvhub_grants_active") == 1, "grants active: %r"
              % second.get("cctvhub_grants_active"))
        check(second.get("cctvhub_events_total", service="112-center", outcome="opened") == 1,
              "events opened")
        check(second.get("cctvhub_audit_appends_total") > first.get("cctvhub_audit_appends_total"),
              "audit appends")
        check(second.get("cctvhub_audit_fsync_duration_seconds_count") >= 1, "fsync histogram")
        check(second.get("cctvhub_audit_commits_total") <= second.get(
            "cctvhub_audit_appends_total"), "more commits than records")
        # A view over RTSP (ffmpeg decodes 50 frames) and one over WebSocket.
        code, err, frames = ffmpeg_frames(gr["rtsp_url"], 50)
        check(code == 0 and frames == 50, "ffmpeg: %d %d %s" % (code, frames, err[-300:]))
        ws = Ws(h.port, ws_path(gr))
        check(ws.status == 101, "ws upgrade: %s" % ws.head)
        _, nfrag, path = collect(ws, 2)
        os.unlink(path)
        check(nfrag > 10, "ws fragments: %d" % nfrag)

        def moved():
            x = scrape(h, headers=bearer, auth=False)
            ok = (x.get("cctvhub_relay_bytes_out_total", transport="rtsp") > 100000 and
                  x.get("cctvhub_relay_bytes_out_total", transport="ws") > 10000 and
                  x.get("cctvhub_viewers", transport="ws") == 1 and
                  x.get("cctvhub_views_total", transport="rtsp") == 1 and
                  x.get("cctvhub_views_total", transport="ws") == 1)
            return x if ok else None
        third = wait_for(moved, 10, "bytes out and viewers in /metrics")
        check(third.get("cctvhub_relay_bytes_in_total") >=
              third.get("cctvhub_relay_bytes_out_total", transport="rtsp") * 0.5,
              "bytes in %r" % third.get("cctvhub_relay_bytes_in_total"))
        check(third.get("cctvhub_pulls", state="playing") == 1, "pulls playing")
        check(requests(third, "GET", "/api/v1/cameras/{id}/live", 101) == 1, "the upgrade")
        ws.close()
        # The event's end: no grant left, the relay knows, the bytes stay counted.
        s.agency_call("POST", "/api/v1/events/%d/close" % ev["id"], {"reason": "done"},
                      expect=200)

        def ended():
            x = scrape(h, headers=bearer, auth=False)
            ok = (x.get("cctvhub_grants_active") == 0 and x.get("cctvhub_relay_grants") == 0
                  and x.get("cctvhub_viewers", transport="ws") == 0)
            return x if ok else None
        last = wait_for(ended, 10, "grants back to 0")
        for t in ("rtsp", "ws"):
            check(last.get("cctvhub_relay_bytes_out_total", transport=t) >=
                  third.get("cctvhub_relay_bytes_out_total", transport=t),
                  "bytes out went down (%s)" % t)
        check(last.get("cctvhub_events_live") == 0, "events live")
        # A denied open (a service the police may not use) counts as denied.
        s.agency_call("POST", "/api/v1/events", {
            "service": "anklet-violation", "location": {"lat": P[0], "lon": P[1]},
            "incident": "x-1", "reason": "metrics test", "duration_s": 600})
        denied = scrape(h, headers=bearer, auth=False)
        check(sum(v for (n, l), v in denied.samples.items()
                  if n == "cctvhub_events_total" and dict(l)["outcome"] == "denied") == 1,
              "events denied: %r" % [(k, v) for k, v in denied.samples.items()
                                     if k[0] == "cctvhub_events_total"])

    with_site(run, env={"CCTVHUB_METRICS_TOKEN": TOKEN})


TESTS = [
    test_who_may_scrape_and_refused_credentials_are_audited,
    test_requests_refused_before_routing_are_counted,
    test_a_bad_token_stops_the_start_naming_the_key,
    test_figures_move_with_requests_events_views_and_the_audit_log,
]

if __name__ == "__main__":
    try:
        hub.main(TESTS)
    finally:
        stop_everything()
