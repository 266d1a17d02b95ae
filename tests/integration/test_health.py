#!/usr/bin/env python3
"""Camera health against the real daemon and real cameras: camsim (our simulator, with its
faults: refuse, auth, basic) and GStreamer's RTSP server (a camera we did not write). Probes
drive cameras online, auth-failed and offline and back online; the transitions are in the API
and survive a restart; geo and event answers carry each camera's state; a live pull's figures
and a low frame rate (degraded); the monthly availability report as JSON and CSV; bad input."""

import datetime
import sqlite3
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
import hub  # noqa: E402
from hub import Hub, check, free_port, wait_for  # noqa: E402

# Clips of our own: make_clips.sh writes in place, and test_relay makes its set at the same
# time under ctest -j.
os.environ.setdefault("CH_CAMSIM_CLIPS", os.path.join(
    os.path.dirname(os.path.abspath(hub.BIN)), "camsim-clips-health"))
from cameras import (BasicCamera, Camsim, Redirector, camsim,  # noqa: E402  (after the clips)
                     gstcam)
from events import P, Site, stop_everything  # noqa: E402
from metrics import scrape  # noqa: E402  (/usr/bin/python3: Prometheus' parser)

FAST = {"CCTVHUB_HEALTH_PROBE_INTERVAL": "1", "CCTVHUB_HEALTH_PROBE_TIMEOUT_S": "2",
        "CCTVHUB_HEALTH_FAIL_THRESHOLD": "3", "CCTVHUB_HEALTH_RESCAN_S": "1"}


def new_agency(h, name="종로구 관제센터"):
    _, a = h.json("POST", "/api/v1/agencies", {"name": name, "kind": "provider",
                                               "level": "district", "type": "district-center"},
                  expect=201)
    return a["id"]


def new_camera(h, agency, name, url=None, i=0, **extra):
    body = {"agency_id": agency, "name": name, "lat": P[0] + 0.0001 * (i % 3 - 1),
            "lon": P[1] + 0.0001 * (i // 3 - 1), "purpose": "생활방범", "kind": "fixed",
            "status": "active", "heading_deg": 0, "fov_deg": 360, "range_m": 100}
    if url is not None:
        body["rtsp_url"] = url
    body.update(extra)
    _, c = h.json("POST", "/api/v1/cameras", body, expect=201)
    return c["id"]


def health(h, cid):
    return h.json("GET", "/api/v1/cameras/%d/health" % cid, expect=200)[1]


def wait_state(h, cid, state, timeout=30):
    return wait_for(lambda: (lambda x: x if x["state"] == state else None)(health(h, cid)),
                    timeout, "camera %d never %s" % (cid, state), interval=0.25)


def test_probes_drive_online_auth_failed_offline_and_back():
    cs = camsim()
    gst = gstcam()
    back_port = free_port()
    h = Hub(env=FAST)
    back = None
    try:
        prov = new_agency(h)
        cams = {
            "h264": new_camera(h, prov, "camsim H.264", cs.url("health-264"), 0),
            "h265": new_camera(h, prov, "camsim H.265", cs.url("health-265"), 1),
            "digest": new_camera(h, prov, "digest, right password",
                                 cs.url("d?fault=auth", "camsim:camsim"), 2),
            "basic": new_camera(h, prov, "basic, credentials apart", cs.url("b?fault=basic"), 3,
                                rtsp_username="camsim", rtsp_password="camsim"),
            "wrong": new_camera(h, prov, "digest, wrong password",
                                cs.url("w?fault=auth", "camsim:nope"), 4),
            "nocreds": new_camera(h, prov, "asks, none set", cs.url("n?fault=auth"), 5),
            "refuse": new_camera(h, prov, "answers 503", cs.url("r?fault=refuse"), 6),
            "gst": new_camera(h, prov, "GStreamer", gst.url(gst.paths[0]), 7),
            "back": new_camera(h, prov, "comes back", "rtsp://127.0.0.1:%d/back" % back_port, 8),
            "named": new_camera(h, prov, "by host name",
                                "rtsp://localhost:%d/named" % cs.port, 10),
            "nohost": new_camera(h, prov, "no such host", "rtsp://no-such-camera.invalid/x", 11),
        }
        plain = new_camera(h, prov, "no stream URL", None, 9)

        for k in ("h264", "digest", "basic", "gst", "named"):
            x = wait_state(h, cams[k], "online")
            check(x["codec"] == "H264" and x["latency_ms"] is not None and x["watched"], (k, x))
        check(wait_state(h, cams["h265"], "online")["codec"] == "H265", "h265 codec")
        x = wait_state(h, cams["wrong"], "auth-failed")
        check("refused the credentials" in x["reason"], x)
        x = wait_state(h, cams["nocreds"], "auth-failed")
        check("none are configured" in x["reason"], x)
        x = wait_state(h, cams["refuse"], "offline")
        check("3 probes in a row failed" in x["reason"] and "503" in x["reason"], x)
        x = wait_state(h, cams["back"], "offline")
        check("connection refused" in x["reason"], x)
        x = wait_state(h, cams["nohost"], "offline")
        check("cannot resolve" in x["reason"] or "(connect)" in x["reason"], x)
        check(x["transitions"][0]["from"] == "unknown" and x["transitions"][0]["to"] == "offline",
              x["transitions"])
        x = health(h, plain)
        check(x["state"] == "unknown" and x["watched"] is False and x["transitions"] == [], x)
        # No camera password anywhere in the answers or the log.
        check("nope" not in str(x) and "nope" not in h.stderr(), "a password leaked")

        # The list, with counts per state, filtered and paged.
        _, page = h.json("GET", "/api/v1/camera-health", expect=200)
        check(page["total"] == 11 and page["counts"]["online"] == 6
              and page["counts"]["auth-failed"] == 2 and page["counts"]["offline"] == 3, page)
        _, page = h.json("GET", "/api/v1/camera-health?state=auth-failed&limit=1", expect=200)
        check(page["total"] == 2 and len(page["items"]) == 1 and page["next"], page)
        _, page2 = h.json("GET", "/api/v1/camera-health?state=auth-failed&limit=1&cursor="
                          + page["next"], expect=200)
        check(len(page2["items"]) == 1 and page2["next"] is None
              and page2["items"][0]["camera_id"] != page["items"][0]["camera_id"], page2)
        status, err = h.json("GET", "/api/v1/camera-health?state=sleeping")
        check(status == 400 and err["error"]["field"] == "state", err)
        h.expect_invalid("/api/v1/camera-health?state=onlin", "state",
                         "state must be one of unknown, online, degraded, offline, auth-failed")
        h.expect_invalid("/api/v1/camera-health?limit=0", "limit",
                         "limit must be an integer 1..1000")
        h.expect_invalid("/api/v1/camera-health?agency_id=x", "agency_id")
        h.expect_invalid("/api/v1/camera-health?status=online", "status")

        # Geo answers mark each camera's state.
        _, near = h.json("GET", "/api/v1/geo/near?lat=%f&lon=%f&radius_m=200" % P, expect=200)
        marks = {c["id"]: c["health"] for c in near["cameras"]}
        check(marks.get(cams["refuse"]) == "offline" and marks.get(cams["h264"]) == "online"
              and marks.get(cams["wrong"]) == "auth-failed" and marks.get(plain) == "unknown",
              marks)

        # The camera comes back: offline -> online, and its outage is closed.
        back = Camsim(port=back_port)
        x = wait_state(h, cams["back"], "online")
        check([t["to"] for t in x["transitions"]][:2] == ["online", "offline"], x["transitions"])
        _, out = h.json("GET", "/api/v1/cameras/%d/outages" % cams["back"], expect=200)
        check(out["total"] == 1 and out["items"][0]["end"] is not None
              and out["items"][0]["state"] == "offline" and out["outage_s"] > 0, out)
        _, out = h.json("GET", "/api/v1/cameras/%d/outages" % cams["refuse"], expect=200)
        check(out["total"] == 1 and out["items"][0]["end"] is None, out)
        h.expect_invalid("/api/v1/cameras/%d/outages?from=yesterday" % cams["refuse"], "from")
        h.expect_invalid("/api/v1/cameras/%d/outages?limit=5" % cams["refuse"], "limit",
                         "unknown query parameter; takes from, to")

        # A camera whose URL changes is picked up: point "wrong" at the right password.
        h.json("PATCH", "/api/v1/cameras/%d" % cams["wrong"],
               {"rtsp_url": cs.url("w?fault=auth", "camsim:camsim")}, expect=200)
        wait_state(h, cams["wrong"], "online")
        # One deleted leaves the set (its history stays for reports).
        h.json("DELETE", "/api/v1/cameras/%d" % cams["gst"], expect=204)
        wait_for(lambda: h.json("GET", "/api/v1/camera-health")[1]["total"] == 10, 10,
                 "a deleted camera stays watched")
        # One in maintenance is not watched; its outage ends there (not counted on).
        h.json("PATCH", "/api/v1/cameras/%d" % cams["refuse"], {"status": "maintenance"},
               expect=200)
        x = wait_for(lambda: (lambda y: y if not y["watched"] else None)(
            health(h, cams["refuse"])), 10, "a camera in maintenance is still watched")
        check(x["state"] == "unknown" and x["transitions"][0]["to"] == "unknown"
              and "no longer watched" in x["transitions"][0]["reason"], x)
        _, out = h.json("GET", "/api/v1/cameras/%d/outages" % cams["refuse"], expect=200)
        check(out["total"] == 1 and out["items"][0]["end"] is not None, out)
        h.stop()
    finally:
        if back is not None:
            back.stop()
        h.cleanup()


def test_probes_follow_redirects_as_the_relay_does():
    """A camera whose address redirects (302, 301) to the real stream is online, as its video
    plays through the relay's pull; a loop of redirects and a redirect without a Location are
    offline, saying why."""
    cs = camsim()
    to_cam = Redirector(lambda url: cs.url("redirected"))
    moved = Redirector(lambda url: to_cam.url("again"), status=301)
    looping = Redirector(lambda url: url + "x")
    nowhere = Redirector(None)
    h = Hub(env=FAST)
    try:
        prov = new_agency(h)
        one = new_camera(h, prov, "one redirect", to_cam.url("cam"), 0)
        two = new_camera(h, prov, "two redirects", moved.url("cam"), 1)
        loop = new_camera(h, prov, "redirect loop", looping.url("l"), 2)
        none = new_camera(h, prov, "302 without Location", nowhere.url("n"), 3)
        for cid in (one, two):
            x = wait_state(h, cid, "online")
            check(x["codec"] == "H264", x)
        x = wait_state(h, loop, "offline")
        check("more than 3 redirects" in x["reason"], x)
        check(len([a for a in looping.asked if a.startswith("DESCRIBE")]) >= 4, looping.asked)
        x = wait_state(h, none, "offline")
        check("without an rtsp:// Location" in x["reason"], x)
        h.stop()
    finally:
        h.cleanup()
        for r in (to_cam, moved, looping, nowhere):
            r.stop()


def test_the_hubs_down_time_is_not_observed():
    """The time the hub was down is in no camera's observed time: the report's unwatched
    minutes grow by the down time, and a camera online before and after is observed for the
    time the hub ran only."""
    cs = camsim()
    h = Hub(env=FAST)
    data_dir = h.data_dir
    kst = datetime.timezone(datetime.timedelta(hours=9))
    month = datetime.datetime.now(kst).strftime("%Y-%m")
    try:
        prov = new_agency(h)
        on = new_camera(h, prov, "up", cs.url("down-time"), 0)
        off = new_camera(h, prov, "gone", "rtsp://127.0.0.1:%d/x" % free_port(), 1)
        wait_state(h, on, "online")
        wait_state(h, off, "offline")
        _, before = h.json("GET", "/api/v1/reports/availability?month=" + month, expect=200)
        h.stop()
        stopped = time.time()
    except Exception:
        h.cleanup()
        raise
    time.sleep(9)
    h2 = Hub(env=FAST, data_dir=data_dir, admin=True)
    try:
        restarted = time.time()
        _, after = h2.json("GET", "/api/v1/reports/availability?month=" + month, expect=200)
        grew = round(after["unwatched_minutes"] - before["unwatched_minutes"], 1)
        gap = (restarted - stopped) / 60
        # Minutes to a tenth: the growth is the gap (9 s and the restart), give or take that.
        check(0.1 <= grew <= gap + 0.15, "unwatched %r -> %r, gap %.2f min"
              % (before["unwatched_minutes"], after["unwatched_minutes"], gap))
        row = [x for x in after["items"] if x["agency_id"] == prov][0]
        check(0 < row["availability_pct"] < 100 and row["outages"] == 1, row)
        # The offline camera's outage runs across the restart: one outage, its down time
        # given apart (nobody watched it then).
        _, out = h2.json("GET", "/api/v1/cameras/%d/outages" % off, expect=200)
        check(out["total"] == 1, out)
        o = out["items"][0]
        check(o["end"] is None and 8.5 <= o["unwatched_s"] <= (restarted - stopped) + 1.0
              and o["duration_s"] > o["unwatched_s"], (o, restarted - stopped))
        # The CLI reads the same windows.
        code, out, _ = hub.run(["report", "availability", "--month", month, "--format", "json",
                                "--data-dir", data_dir])
        check(code == 0 and hub.json.loads(out)["unwatched_minutes"] >=
              after["unwatched_minutes"] - 0.3, out[:300])
        h2.stop()
    finally:
        h2.cleanup()
        hub.shutil.rmtree(h.tmp, ignore_errors=True)


def test_states_and_outages_survive_a_restart():
    cs = camsim()
    dead = "rtsp://127.0.0.1:%d/x" % free_port()
    h = Hub(env=FAST)
    data_dir = h.data_dir
    try:
        prov = new_agency(h)
        off = new_camera(h, prov, "gone", dead)
        on = new_camera(h, prov, "up", cs.url("up"), 1)
        later = new_camera(h, prov, "into maintenance while the hub is down", dead, 2)
        since = wait_state(h, off, "offline")["since"]
        wait_state(h, later, "offline")
        wait_state(h, on, "online")
        h.stop()
    except Exception:
        h.cleanup()
        raise
    # While the hub is down, a camera goes into maintenance (as an import would set it).
    db = sqlite3.connect(os.path.join(data_dir, "cctvhub.db"))
    db.execute("UPDATE cameras SET status = 'maintenance' WHERE id = ?", (later,))
    db.commit()
    db.close()
    # A second run on the same data, probes off: the states and their times come back.
    env = dict(FAST, CCTVHUB_HEALTH_PROBE_INTERVAL="0")
    h2 = Hub(env=env, data_dir=data_dir, admin=True)
    try:
        x = health(h2, off)
        check(x["state"] == "offline" and x["since"] == since and x["next_probe"] is None, x)
        check(health(h2, on)["state"] == "online", "online not restored")
        _, out = h2.json("GET", "/api/v1/cameras/%d/outages" % off, expect=200)
        check(out["total"] == 1 and out["items"][0]["start"] == since, out)
        # Its outage ended at the start: not counted on through the maintenance.
        x = health(h2, later)
        check(not x["watched"] and x["transitions"][0]["to"] == "unknown", x)
        _, out = h2.json("GET", "/api/v1/cameras/%d/outages" % later, expect=200)
        check(out["total"] == 1 and out["items"][0]["end"] is not None, out)
        h2.stop()
    finally:
        h2.cleanup()
        hub.shutil.rmtree(h.tmp, ignore_errors=True)


def test_live_pull_figures_and_low_fps_degraded():
    """A grant pre-warms its camera's pull: the relay's figures show in the camera's health,
    and with health.min_fps above the camera's 25 fps it is degraded, with the reason."""
    cs = camsim()
    rig = Site(env=dict(FAST, CCTVHUB_HEALTH_MIN_FPS="60"))
    try:
        cid = rig.camera("pulled", cs.url("live-health"))
        ev, grants = rig.open()
        check(grants[cid]["health"] in ("unknown", "online", "degraded"), grants[cid])
        x = wait_for(lambda: (lambda y: y if y["live"] and y["live"]["playing"] else None)(
            health(rig.h, cid)), 30, "no live figures")
        x = wait_state(rig.h, cid, "degraded", timeout=30)
        live = x["live"]
        check(live["width"] == 1920 and live["height"] == 1080 and 20 <= live["fps"] <= 30
              and live["bitrate_bps"] > 0 and live["codec"].startswith("avc1")
              and live["last_frame"] and live["keyframe_interval_s"], live)
        check("under health.min_fps 60" in x["reason"], x)
        _, ev2 = rig.h.json("GET", "/api/v1/events/%d" % ev["id"], expect=200)
        check(all(g["health"] == "degraded" for g in ev2["grants"]), ev2["grants"])
        rig.h.stop()
    finally:
        rig.h.cleanup()


def test_monthly_availability_report():
    cs = camsim()
    dead = "rtsp://127.0.0.1:%d/x" % free_port()
    h = Hub(env=FAST)
    try:
        a1 = new_agency(h, "마포구 관제센터")
        a2 = new_agency(h, "서울시설공단, \"east\"")
        new_camera(h, a1, "up", cs.url("report-up"), 0)
        off = new_camera(h, a2, "down", dead, 1)
        new_camera(h, a2, "no URL", None, 2)
        wait_state(h, off, "offline")
        time.sleep(1.5)  # some time observed in each state
        kst = datetime.timezone(datetime.timedelta(hours=9))
        month = datetime.datetime.now(kst).strftime("%Y-%m")
        _, r = h.json("GET", "/api/v1/reports/availability?month=" + month, expect=200)
        rows = {x["agency_id"]: x for x in r["items"]}
        check(r["period"] == month and rows[a1]["cameras"] == 1
              and rows[a1]["probed_cameras"] == 1 and rows[a1]["availability_pct"] == 100
              and rows[a1]["outages"] == 0, r)
        check(rows[a2]["cameras"] == 2 and rows[a2]["probed_cameras"] == 1
              and rows[a2]["availability_pct"] == 0 and rows[a2]["outages"] == 1
              and rows[a2]["outage_minutes"] >= 0 and rows[a2]["agency_name"].startswith("서울"),
              r)
        check(r["total"]["cameras"] == 3 and r["total"]["outages"] == 1, r["total"])
        status, headers, body = h.request(
            "GET", "/api/v1/reports/availability?month=%s&format=csv" % month)
        check(status == 200 and headers["content-type"].startswith("text/csv")
              and body.startswith(b"\xef\xbb\xbf"), (status, headers, body[:100]))
        text = body.decode("utf-8-sig")
        lines = text.split("\r\n")
        check(lines[0].startswith("period,%s,unwatched_minutes," % month)
              and lines[1].startswith("agency_id,agency_name,"), lines)
        check(any(ln.startswith("%d,\"서울시설공단, \"\"east\"\"\",2,1,0.000,1," % a2)
                  for ln in lines), lines)
        check(any(ln.startswith("total,,3,2,") for ln in lines), lines)
        # The same from the command line, beside the running hub.
        code, out, err = hub.run(["report", "availability", "--month", month, "--data-dir",
                                  h.data_dir])
        check(code == 0 and out.startswith("\ufeffperiod," + month), (code, err, out[:200]))
        cols = lambda t: sorted(",".join(ln.split(",")[:4]) for ln in t.split("\n")[2:] if ln)
        check(cols(out.replace("\r", "")) == cols(text.replace("\r", "")), (out, text))
        code, out, _ = hub.run(["report", "availability", "--month", month, "--format", "json",
                                "--data-dir", h.data_dir])
        check(code == 0 and hub.json.loads(out)["total"]["outages"] == 1, out)
        code, _, err = hub.run(["report", "availability", "--month", "11-2026"])
        check(code == 2 and "--month" in err, (code, err))
        # A month without data is all zeros; bad input names the field.
        _, r = h.json("GET", "/api/v1/reports/availability?month=2020-01", expect=200)
        check(all(x["probed_cameras"] == 0 and x["availability_pct"] is None
                  for x in r["items"]), r)
        for q, field in (("month=2026-13", "month"), ("", "month"), ("month=2026-1", "month"),
                         ("month=2026-01&format=xml", "format"),
                         ("month=2026-01&utc_offset=9", "utc_offset"),
                         ("month=2026-01&x=1", "x"), ("month=9999-01", "month"),
                         ("month=2026-01&format=csv&format=json", "format")):
            status, err = h.json("GET", "/api/v1/reports/availability?" + q)
            check(status == 400 and err["error"]["field"] == field, (q, status, err))
        h.expect_invalid("/api/v1/reports/availability?month=2026-01&format=xml", "format",
                         "format must be one of json, csv")
        h.expect_invalid("/api/v1/reports/availability", "month", "month is required")
        # Roles: an agency's system may not read it.
        _, k = h.json("POST", "/api/v1/apikeys", {"agency_id": a1, "role": "agency"}, expect=201)
        status, _ = h.json("GET", "/api/v1/reports/availability?month=" + month,
                           headers={"Authorization": "Bearer " + k["key"]}, auth=False)
        check(status == 403, "an agency read the report: %d" % status)
        # A provider sees its own cameras only.
        _, k = h.json("POST", "/api/v1/apikeys", {"agency_id": a1, "role": "provider"},
                      expect=201)
        pk = {"Authorization": "Bearer " + k["key"]}
        _, page = h.json("GET", "/api/v1/camera-health", headers=pk, auth=False, expect=200)
        check(page["total"] == 1, page)
        status, _ = h.json("GET", "/api/v1/cameras/%d/health" % off, headers=pk, auth=False)
        check(status == 403, "a provider read another agency's camera: %d" % status)
        status, err = h.json("GET", "/api/v1/cameras/%d/outages" % off, headers=pk, auth=False)
        check(status == 403 and err["error"]["code"] == "forbidden",
              "a provider read another agency's outages: %d %r" % (status, err))
        # A camera that is not there: 404 for both, whoever asks.
        for path in ("/api/v1/cameras/999999/health", "/api/v1/cameras/999999/outages",
                     "/api/v1/cameras/x/health"):
            status, err = h.json("GET", path)
            check(status == 404 and err["error"]["code"] == "not_found", (path, status, err))
        h.stop()
    finally:
        h.cleanup()


def test_probe_interval_zero_and_bad_configuration():
    cs = camsim()
    h = Hub(env={"CCTVHUB_HEALTH_PROBE_INTERVAL": "0", "CCTVHUB_HEALTH_RESCAN_S": "1"})
    try:
        prov = new_agency(h)
        cid = new_camera(h, prov, "never probed", cs.url("zero"))
        time.sleep(2.5)
        x = health(h, cid)
        check(x["state"] == "unknown" and x["last_probe"] is None and x["watched"], x)
        check(h.json("GET", "/api/v1/health", expect=200)[1] is not None, "liveness")
        h.stop()
    finally:
        h.cleanup()
    code, _, err = hub.run(["serve", "--data-dir", os.path.join(h.tmp, "v2"), "--http",
                            "127.0.0.1:0"], env={"CCTVHUB_HEALTH_PROBE_INTERVAL": "often"})
    check(code == 3 and "health.probe_interval" in err, (code, err))
    code, _, err = hub.run(["serve", "--data-dir", os.path.join(h.tmp, "v2"), "--http",
                            "127.0.0.1:0"], env={"CCTVHUB_HEALTH_PROBE_CONCURRENCY": "0"})
    check(code == 3 and "health.probe_concurrency" in err, (code, err))


def test_many_cameras_are_probed_with_a_small_cap():
    """300 cameras on one camsim, at most 5 probes at once, a 3 s interval: all go online,
    their first probes spread over the interval (the unit tests check the cap and the spread
    exactly)."""
    cs = camsim()
    h = Hub(env={"CCTVHUB_HEALTH_PROBE_INTERVAL": "3", "CCTVHUB_HEALTH_PROBE_CONCURRENCY": "5",
                 "CCTVHUB_HEALTH_RESCAN_S": "1"})
    try:
        prov = new_agency(h)
        for i in range(300):
            new_camera(h, prov, "cam %d" % i, cs.url("many-%d" % (i % 7)), i)
        wait_for(lambda: h.json("GET", "/api/v1/camera-health?state=online")[1]["total"]
                 == 300, 90, "not all 300 online")
        # Spread: the first probes of the 300 took most of an interval, not one instant.
        _, page = h.json("GET", "/api/v1/camera-health?limit=1000", expect=200)
        check(len(page["items"]) == 300 and all(x["last_probe"] for x in page["items"]),
              "all probed")
        # The same figures on /metrics, read by Prometheus' own parser.
        m = scrape(h)
        check(m.get("cctvhub_cameras", state="online") == 300,
              m.get("cctvhub_cameras", state="online"))
        check(m.get("cctvhub_cameras", state="offline") == 0, "none offline")
        check(m.get("cctvhub_probes_total", outcome="ok") >= 300, "probes counted")
        check(m.get("cctvhub_probe_duration_seconds_count") >= 300, "probe latency counted")
        check(m.type_of("cctvhub_probe_duration_seconds") == "histogram", "a histogram")
        h.stop()
    finally:
        h.cleanup()


def test_camera_states_raise_and_resolve_alerts():
    """Camera health feeds the alert rules (serve.c): cameras down past alert.offline_after_s
    raise camera-offline alerts, two of one provider down at once raise provider-down, and a
    camera that comes back resolves its own alert and the provider's, on the record."""
    cs = camsim()
    back_port = free_port()
    env = dict(FAST, CCTVHUB_HEALTH_FAIL_THRESHOLD="1", CCTVHUB_ALERT_OFFLINE_AFTER_S="2",
               CCTVHUB_ALERT_PROVIDER_DOWN_COUNT="2")
    h = Hub(env=env)
    back = None

    def alerts(query):
        return h.json("GET", "/api/v1/alerts" + query, expect=200)[1]["items"]

    def open_alerts(kind, n):
        return wait_for(lambda: (lambda a: a if len(a) == n else None)(
            alerts("?state=open&kind=" + kind)), 30, "%d open %s alerts" % (n, kind))

    try:
        prov = new_agency(h)
        fine = new_camera(h, prov, "fine", cs.url("alerts-fine"), 0)
        gone = new_camera(h, prov, "nothing listens", "rtsp://127.0.0.1:%d/a" % back_port, 1)
        refuses = new_camera(h, prov, "answers 503", cs.url("alerts?fault=refuse"), 2)
        wait_state(h, fine, "online")
        wait_state(h, gone, "offline")
        wait_state(h, refuses, "offline")
        cams = open_alerts("camera-offline", 2)
        check(sorted(a["subject"]["id"] for a in cams) == sorted([gone, refuses])
              and all(a["subject"]["type"] == "camera" and a["agency_id"] == prov
                      for a in cams), cams)
        prov_alert = open_alerts("provider-down", 1)[0]
        check(prov_alert["subject"] == {"type": "agency", "id": prov}, prov_alert)

        # A camera listens again: online, its alert resolves, and the provider's (one down
        # is under the count); the other camera's stays open.
        back = Camsim(port=back_port)
        wait_state(h, gone, "online")
        mine = [a for a in cams if a["subject"]["id"] == gone][0]
        a = wait_for(lambda: (lambda x: x if x["state"] == "resolved" else None)(
            h.json("GET", "/api/v1/alerts/%d" % mine["id"], expect=200)[1]), 20,
            "the camera's alert never resolved")
        check(a["resolved_at"] and "online" in a["resolved_reason"], a)
        wait_for(lambda: h.json("GET", "/api/v1/alerts/%d" % prov_alert["id"],
                                expect=200)[1]["state"] == "resolved", 20,
                       "the provider's alert never resolved")
        still = alerts("?state=open&kind=camera-offline")
        check([x["subject"]["id"] for x in still] == [refuses], still)
        h.stop()
    finally:
        if back is not None:
            back.stop()
        h.cleanup()


def test_credentials_do_not_follow_the_url_to_another_host():
    """PATCHing only rtsp_url to another host or port drops the stored credentials: the probe
    must not send them there. Sent again with the URL, or with only the path changed, they are
    kept."""
    first, harvester, third = BasicCamera(), BasicCamera(), BasicCamera()
    h = Hub(env=FAST)
    try:
        prov = new_agency(h)
        cid = new_camera(h, prov, "moved", first.url("a"), rtsp_username="admin",
                         rtsp_password="secret-1")
        wait_for(lambda: ("OPTIONS", "admin:secret-1") in
                 [(r.split(" ")[0], c) for r, c in first.requests()], 20,
                 "the probe never answered the first camera's challenge")
        # Only the URL: another port of the same address (another place to connect to).
        h.json("PATCH", "/api/v1/cameras/%d" % cid, {"rtsp_url": harvester.url("b")},
               expect=200)
        x = wait_for(lambda: (lambda x: x if x["state"] == "auth-failed" and
                              len(harvester.requests()) >= 2 else None)(health(h, cid)),
                           20, "the moved camera was never probed")
        check(all(c is None for _, c in harvester.requests()), harvester.requests())
        # The URL and the credentials together: the new ones go to the new host.
        h.json("PATCH", "/api/v1/cameras/%d" % cid,
               {"rtsp_url": third.url("c"), "rtsp_username": "op", "rtsp_password": "secret-2"},
               expect=200)
        wait_for(lambda: "op:secret-2" in [c for _, c in third.requests()], 20,
                 "the credentials sent with the URL were not used")
        # Only the path (and the scheme's case, the default port written out): kept.
        h.json("PATCH", "/api/v1/cameras/%d" % cid,
               {"rtsp_url": "RTSP://127.0.0.1:%d/d" % third.port}, expect=200)
        wait_for(lambda: any("/d " in r and c == "op:secret-2"
                             for r, c in third.requests()), 20,
                       "a path change lost the credentials")
        check(not any(c is not None and "secret-1" in c for _, c in
                      harvester.requests() + third.requests()), "the old password went out")
        check("secret" not in h.stderr(), "a password in the log")
        h.stop()
    finally:
        for cam in (first, harvester, third):
            cam.stop()
        h.cleanup()


if __name__ == "__main__":
    try:
        hub.main([test_probes_drive_online_auth_failed_offline_and_back,
                  test_states_and_outages_survive_a_restart,
                  test_live_pull_figures_and_low_fps_degraded,
                  test_monthly_availability_report,
                  test_the_hubs_down_time_is_not_observed,
                  test_probes_follow_redirects_as_the_relay_does,
                  test_probe_interval_zero_and_bad_configuration,
                  test_many_cameras_are_probed_with_a_small_cap,
                  test_camera_states_raise_and_resolve_alerts,
                  test_credentials_do_not_follow_the_url_to_another_host])
    finally:
        stop_everything()
