"""Import of the real published CCTV files, end to end: the command line and the HTTP API
against an independent count made here with Python's own csv module, idempotence, updates in
place from a newer file, all-or-nothing rejection of unreadable files, and the cameras served
afterwards by the REST API."""

import csv
import io
import json
import os
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
import hub  # noqa: E402
from hub import Hub, add_user, check, run  # noqa: E402

FILES = {
    "busan_cctv_std_20241206_utf8_crlf.csv": "utf-8-sig",
    "daejeon_5gu_cctv_std_20260520_cp949.csv": "cp949",
    "daejeon_5gu_safety_bell_std_20260530_cp949.csv": "cp949",
    "seoul_ansimi_cctv_jongno_20221201_cp949.csv": "cp949",
}
MAX_CAMERAS_PER_SITE = 64  # the importer's documented rule (registry.h)


def clean(cell):
    return cell.strip(" \t\r\n\u3000")


def camera_count(cell):
    """The documented rule: blank, 0, text or more than 64 make one camera (flagged)."""
    c = clean(cell).replace(",", "")
    if not c.isdigit() or int(c) == 0 or int(c) > MAX_CAMERAS_PER_SITE:
        return 1
    return int(c)


def expected(name):
    """An independent count: rows, duplicates, cameras and devices of one file."""
    with open(os.path.join(hub.DATA_DIR, name), "rb") as f:
        text = f.read().decode(FILES[name])
    records = list(csv.reader(io.StringIO(text, newline="")))
    header = [clean(h) for h in records[0]]
    rows, seen, dups, cameras, devices = 0, set(), 0, 0, 0
    for r in records[1:]:
        cells = tuple(clean(c) for c in r)
        if not any(cells):
            continue
        rows += 1
        if cells in seen:
            dups += 1
            continue
        seen.add(cells)
        if "카메라대수" in header:
            cameras += camera_count(cells[header.index("카메라대수")])
        elif "CCTV 수량" in header:
            cameras += camera_count(cells[header.index("CCTV 수량")])
        else:
            devices += 1
    return {"rows": rows, "duplicates": dups, "cameras": cameras, "devices": devices}


def import_cli(data_dir, paths, extra=()):
    code, out, err = run(["import", "--data-dir", data_dir, "--json"] + list(extra) + paths)
    reports = [json.loads(line) for line in out.splitlines() if line.strip()]
    return code, reports, err


def check_report(r, exp, first_time):
    name = r["file"]
    for key in ("file", "encoding", "rows", "cameras_created", "cameras_updated",
                "cameras_unchanged", "devices_created", "flagged", "skipped"):
        check(key in r, "%s: report lacks %s" % (name, key))
    check(r["rows"] == exp["rows"], "%s: rows %d, counted %d" % (name, r["rows"], exp["rows"]))
    dups = [s for s in r["skipped"] if s["reason"].startswith("duplicate")]
    check(len(dups) == exp["duplicates"], "%s: %d duplicates reported, counted %d"
          % (name, len(dups), exp["duplicates"]))
    for item in r["skipped"] + r["flagged"]:
        check(isinstance(item["line"], int) and item["line"] > 1 and item["reason"], item)
    cams = r["cameras_created"] + r["cameras_updated"] + r["cameras_unchanged"]
    check(cams == exp["cameras"], "%s: %d cameras, counted %d" % (name, cams, exp["cameras"]))
    devs = r["devices_created"] + r.get("devices_updated", 0) + r.get("devices_unchanged", 0)
    check(devs == exp["devices"], "%s: %d devices, counted %d" % (name, devs, exp["devices"]))
    if first_time:
        check(r["cameras_created"] == exp["cameras"] and r["devices_created"] == exp["devices"],
              "%s: first import should create everything: %s" % (name, r))
    else:
        check(r["cameras_created"] == 0 and r["devices_created"] == 0
              and r["cameras_updated"] == 0 and r.get("devices_updated", 0) == 0,
              "%s: re-import changed something: %s" % (name, {k: v for k, v in r.items()
                                                                if not isinstance(v, list)}))


def total(h, what, query=""):
    _, body = h.json("GET", "/api/v1/%s?limit=1%s" % (what, query), expect=200)
    return body["total"]


def test_cli_imports_every_shared_file_idempotently_and_api_serves_them():
    d = tempfile.mkdtemp(prefix="cctvhub-import-")
    try:
        paths = [os.path.join(hub.DATA_DIR, n) for n in FILES]
        exp = {n: expected(n) for n in FILES}
        code, reports, err = import_cli(d, paths)
        check(code == 0, "exit %d: %s" % (code, err[-2000:]))
        check(len(reports) == len(FILES), reports)
        for r in reports:
            check_report(r, exp[r["file"]], True)
        enc = {r["file"]: r["encoding"].lower() for r in reports}
        check(enc["busan_cctv_std_20241206_utf8_crlf.csv"].startswith("utf-8"), enc)
        check(enc["daejeon_5gu_cctv_std_20260520_cp949.csv"] in ("cp949", "euc-kr"), enc)

        code, reports, err = import_cli(d, paths)
        check(code == 0, err)
        for r in reports:
            check_report(r, exp[r["file"]], False)

        h = Hub(data_dir=d)
        try:
            want_cams = sum(e["cameras"] for e in exp.values())
            want_devs = sum(e["devices"] for e in exp.values())
            check(total(h, "cameras") == want_cams, "cameras served")
            check(total(h, "devices") == want_devs, "devices served")
            # Every camera of Busan's agencies is in Busan's box, unless flagged unlocated.
            busan_box = "&bbox=128.7,34.8,129.4,35.5"
            located_busan = total(h, "cameras", busan_box)
            check(located_busan > 15000, located_busan)
            # A text query in Korean finds the Ansimi list by its landmark.
            check(total(h, "cameras", "&q=%EC%99%80%EB%A3%A1%EA%B3%B5%EC%9B%90") >= 4, "q=와룡공원")
            _, page = h.json("GET", "/api/v1/cameras?limit=1000", expect=200)
            for cam in page["items"]:
                check("rtsp_password" not in cam and "rtsp_url" not in cam, cam)
            h.stop()
        finally:
            h.cleanup()
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_http_import_matches_independent_count():
    h = Hub()
    try:
        for name in FILES:
            with open(os.path.join(hub.DATA_DIR, name), "rb") as f:
                data = f.read()
            status, _, body = h.request("POST", "/api/v1/imports?name=" + name, data,
                                        {"Content-Type": "text/csv"})
            check(status == 201, "%s: %d %s" % (name, status, body[:300]))
            r = json.loads(body)
            check(r["file"] == name, r["file"])
            check_report(r, expected(name), True)
        h.stop()
    finally:
        h.cleanup()


def test_unreadable_files_are_rejected_and_change_nothing():
    d = tempfile.mkdtemp(prefix="cctvhub-reject-")
    try:
        good = os.path.join(hub.DATA_DIR, "seoul_ansimi_cctv_jongno_20221201_cp949.csv")
        code, reports, _ = import_cli(d, [good])
        check(code == 0, reports)
        bad = {
            "binary.csv": bytes(range(256)) * 40,
            "spreadsheet.csv": b"PK\x03\x04\x14\x00\x06\x00" + b"\x00" * 200 + b"xl/workbook.xml",
            "old-excel.csv": b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 500,
            "no-header.csv": "이름,나이\n홍길동,30\n김철수,40\n".encode("utf-8"),
            "empty.csv": b"",
        }
        for name, data in bad.items():
            p = os.path.join(d, name)
            with open(p, "wb") as f:
                f.write(data)
            code, reports, err = import_cli(d, [p])
            check(code == 1, "%s: exit %d" % (name, code))
            check("rejected" in err and name in err, "%s: %s" % (name, err))
            check(reports and "error" in reports[0], reports)
        # A rejected file next to a good one: the good one still imports (unchanged here).
        code, reports, _ = import_cli(d, [os.path.join(d, "binary.csv"), good])
        check(code == 1 and reports[1]["cameras_unchanged"] == 1930, reports)
        h = Hub(data_dir=d)
        try:
            check(total(h, "cameras") == 1930, "rejected files changed the store")
            status, _, body = h.request("POST", "/api/v1/imports?name=x.csv", bad["binary.csv"])
            check(status == 422, (status, body[:200]))
            check(json.loads(body)["error"]["message"], body)
            check(total(h, "cameras") == 1930, "rejected upload changed the store")
            h.stop()
        finally:
            h.cleanup()
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_newer_file_from_same_publisher_updates_in_place():
    d = tempfile.mkdtemp(prefix="cctvhub-update-")
    try:
        src = os.path.join(hub.DATA_DIR, "daejeon_5gu_cctv_std_20260520_cp949.csv")
        with open(src, "rb") as f:
            lines = f.read().decode("cp949").split("\n")
        code, reports, _ = import_cli(d, [src])
        check(code == 0, reports)
        before = reports[0]
        # The publisher moves one site (same 관리번호) and changes its retention.
        cells = next(csv.reader([lines[1]]))
        cells[12] = "36.3290"
        cells[9] = "45"
        out = io.StringIO()
        csv.writer(out, lineterminator="").writerow(cells)
        lines[1] = out.getvalue()
        newer = os.path.join(d, "daejeon_newer.csv")
        with open(newer, "wb") as f:
            f.write("\n".join(lines).encode("cp949"))
        code, reports, _ = import_cli(d, [newer])
        check(code == 0, reports)
        r = reports[0]
        n_cams = camera_count(cells[6])
        check(r["cameras_created"] == 0, r["cameras_created"])
        check(r["cameras_updated"] == n_cams, "updated %d, wanted %d" % (r["cameras_updated"],
                                                                     n_cams))
        check(r["cameras_unchanged"] == before["cameras_created"] - n_cams, r)
        h = Hub(data_dir=d)
        try:
            _, body = h.json("GET", "/api/v1/cameras?limit=1", expect=200)
            cam = body["items"][0]
            check(abs(cam["lat"] - 36.329) < 1e-9 and cam["retention_days"] == 45, cam)
            h.stop()
        finally:
            h.cleanup()
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_dry_run_reports_without_touching_a_store():
    d = tempfile.mkdtemp(prefix="cctvhub-dry-")
    try:
        data_dir = os.path.join(d, "var")
        name = "busan_cctv_std_20241206_utf8_crlf.csv"
        code, reports, err = import_cli(data_dir, [os.path.join(hub.DATA_DIR, name),
                                                   "--dry-run"])
        check(code == 0, err)
        exp = expected(name)
        check(reports[0]["rows"] == exp["rows"] and reports[0]["cameras"] == exp["cameras"],
              reports[0])
        check(reports[0]["cameras_created"] == 0, reports[0])
        check(not os.path.exists(data_dir), "a dry run created the data directory")
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_progress_bar_on_a_terminal():
    """On a terminal (a pseudo-terminal here) the import draws a progress bar to 100%."""
    import pty
    import subprocess
    d = tempfile.mkdtemp(prefix="cctvhub-tty-")
    master, slave = pty.openpty()
    try:
        p = subprocess.Popen([hub.BIN, "import", "--data-dir", d,
                              os.path.join(hub.DATA_DIR, "daejeon_5gu_cctv_std_20260520_cp949.csv")],
                             stdout=subprocess.DEVNULL, stderr=slave)
        os.close(slave)
        out = b""
        while True:
            try:
                b = os.read(master, 65536)
            except OSError:
                break
            if not b:
                break
            out += b
        check(p.wait(timeout=300) == 0, out[-500:])
        text = out.decode("utf-8", "replace")
        check("100%" in text and "[####" in text and "\r" in text, text[-500:])
    finally:
        os.close(master)
        shutil.rmtree(d, ignore_errors=True)


# A small file in the national standard's layout, with the publisher's 관리번호.
STD_HEADER = ("관리번호,관리기관명,소재지도로명주소,소재지지번주소,설치목적구분,카메라대수,카메라화소수,"
              "촬영방면정보,보관일수,설치연월,관리기관전화번호,WGS84위도,WGS84경도,데이터기준일자")


def std_file(rows, date="2026-05-20"):
    """rows: (관리번호, 관리기관명, 도로명주소, 카메라대수, 보관일수, lat, lon)."""
    lines = [STD_HEADER]
    for no, agency, road, count, keep, lat, lon in rows:
        lines.append("%s,%s,%s,,생활방범,%d,200,고정,%d,2019-03,02-000-0000,%s,%s,%s"
                     % (no, agency, road, count, keep, lat, lon, date))
    return ("\n".join(lines) + "\n").encode("utf-8")


def post_import(h, data, query="", headers=None):
    hdrs = {"Content-Type": "text/csv"}
    auth = True
    if headers:
        hdrs.update(headers)
        auth = False
    status, _, body = h.request("POST", "/api/v1/imports?name=t.csv" + query, data, hdrs,
                                auth=auth)
    return status, json.loads(body) if body else None


def cameras_of(h, agency_id):
    _, body = h.json("GET", "/api/v1/cameras?limit=1000&agency_id=%d" % agency_id, expect=200)
    return sorted(body["items"], key=lambda c: c["id"])


def test_a_providers_import_stays_inside_its_own_agency():
    """A provider (session or API key) imports into its own agency only: ?agency= naming
    another or an unknown agency is refused with 403; rows naming another agency or an unknown
    one, or reusing another agency's 관리번호, are skipped with a reason code; the other agency's
    cameras are unchanged and no agency is created. An administrator keeps every power."""
    from urllib.parse import quote
    h = Hub()
    try:
        def agency(name):
            _, a = h.json("POST", "/api/v1/agencies", {"name": name, "kind": "provider",
                                                       "level": "district",
                                                       "type": "district-center"}, expect=201)
            return a["id"]
        mine, other = agency("종로구 관제센터"), agency("중구 관제센터")
        code, _, err = add_user(h.data_dir, "jongno", "provider", "a-long-enough-password",
                                agency=mine)
        check(code == 0, err)
        cookie, csrf = h.login("jongno", "a-long-enough-password")
        session = {"Cookie": cookie, "X-CSRF-Token": csrf}
        _, key = h.json("POST", "/api/v1/apikeys", {"agency_id": mine, "role": "provider"},
                        expect=201)
        bearer = {"Authorization": "Bearer " + key["key"]}

        # The other agency's site (관리번호 JG-1, two cameras), imported by the administrator.
        status, r = post_import(h, std_file([("JG-1", "중구 관제센터", "세종대로 110", 2, 30,
                                              "37.5663", "126.9779")]))
        check(status == 201 and r["cameras_created"] == 2, r)
        theirs = cameras_of(h, other)
        check(len(theirs) == 2, theirs)
        _, agencies = h.json("GET", "/api/v1/agencies?limit=1", expect=200)
        n_agencies = agencies["total"]

        mixed = std_file([
            ("JN-1", "종로구 관제센터", "종로 1", 1, 30, "37.5700", "126.9820"),
            ("JN-2", "중구 관제센터", "명동길 2", 1, 30, "37.5636", "126.9850"),
            ("JN-3", "없는구 관제센터", "어딘가 3", 1, 30, "37.5600", "126.9900"),
            ("JG-1", "종로구 관제센터", "세종대로 110", 2, 30, "", ""),
        ])
        for who in (session, bearer):
            for name in ("중구 관제센터", "없는구 관제센터"):
                status, r = post_import(h, mixed, "&agency=" + quote(name), who)
                check(status == 403 and r["error"]["code"] == "forbidden", (status, r))
            status, r = post_import(h, mixed, "", who)
            check(status == 201, (status, r))
            codes = {s["line"]: s.get("code") for s in r["skipped"]}
            check(codes == {3: "other-agency", 4: "unknown-agency", 5: "other-agency-record"},
                  r["skipped"])
            for s in r["skipped"]:
                check(s["reason"].startswith(s["code"] + ":"), s)
            check(r["agencies_created"] == 0 and r["sites"] == 1 and r["cameras"] == 1
                  and r["cameras_created"] + r["cameras_unchanged"] == 1, r)
            check(all(f["line"] == 2 for f in r["flagged"]), r["flagged"])  # 5 was unlocated
            check(r["unlocated"] == 0, r)
        # With ?agency= naming its own agency every row is its own, but the other agency's
        # 관리번호 is still not its to take.
        status, r = post_import(h, mixed, "&agency=" + quote("종로구 관제센터"), bearer)
        check(status == 201, (status, r))
        check([(s["line"], s.get("code")) for s in r["skipped"]] == [(5, "other-agency-record")],
              r["skipped"])
        check(r["cameras_created"] == 2 and r["agencies_created"] == 0, r)

        check(cameras_of(h, other) == theirs, "the other agency's cameras changed")
        check(len(cameras_of(h, mine)) == 3, cameras_of(h, mine))
        _, agencies = h.json("GET", "/api/v1/agencies?limit=1", expect=200)
        check(agencies["total"] == n_agencies, "a provider's import created an agency")
        _, audit = h.json("GET", "/api/v1/audit?action=import&limit=100", expect=200)
        check(any(e.get("outcome") == "denied" for e in audit["items"]), audit)

        # The administrator: unknown agencies are created, and a key moves, as before.
        status, r = post_import(h, mixed)
        check(status == 201 and r["agencies_created"] == 1 and not r["skipped"], r)
        check(len(cameras_of(h, other)) == 1, "an administrator's import no longer moves a key")
        h.stop()
    finally:
        h.cleanup()


def test_reimport_keeps_stream_settings_set_through_the_api():
    """Stream settings set through the API survive a re-import of a newer edition (over HTTP
    and from the command line), while the cells that changed are updated; and so does what
    the API set in fields a file's layout has no column for."""
    import sqlite3
    h = Hub()
    d = h.data_dir
    try:
        rows = [("S-1", "종로구 관제센터", "종로 1", 2, 30, "37.5700", "126.9820"),
                ("S-2", "종로구 관제센터", "종로 2", 1, 30, "37.5710", "126.9830")]
        status, r = post_import(h, std_file(rows))
        check(status == 201 and r["cameras_created"] == 3, r)
        _, page = h.json("GET", "/api/v1/cameras?limit=10", expect=200)
        cam = next(c for c in page["items"] if c["source_key"].endswith("S-1#2"))
        stream = {"rtsp_url": "rtsp://10.1.2.3:554/live", "rtsp_username": "viewer",
                  "rtsp_password": "s3cret-pw", "codec": "h264"}
        h.json("PATCH", "/api/v1/cameras/%d" % cam["id"], stream, expect=200)

        # Only 데이터기준일자 changed: nothing to update, the stream stays.
        status, r = post_import(h, std_file(rows, date="2026-11-30"))
        check(status == 201 and r["cameras_updated"] == 0 and r["cameras_unchanged"] == 3, r)
        _, got = h.json("GET", "/api/v1/cameras/%d" % cam["id"], expect=200)
        check(got["rtsp_configured"] is True, got)
        # A newer edition changes the site's 보관일수 too: updated, the stream stays.
        rows[0] = rows[0][:4] + (60,) + rows[0][5:]
        status, r = post_import(h, std_file(rows, date="2026-12-01"))
        check(status == 201 and r["cameras_updated"] == 2 and r["cameras_unchanged"] == 1, r)
        _, got = h.json("GET", "/api/v1/cameras/%d" % cam["id"], expect=200)
        check(got["rtsp_configured"] is True and got["retention_days"] == 60, got)

        # The Seoul Ansimi list has no 촬영방면정보, 화소수, 보관일수, 설치목적 or road address:
        # what an operator set there survives a newer edition (its key is its address and
        # position, so a site that moved is another site).
        ansimi = ("자치구,안심 주소,위도,경도,CCTV 수량,수정 일시\n"
                  "종로구,공원001_와룡공원_메인,%s,126.9945,1,%s\n")
        status, r = post_import(h, (ansimi % ("37.5913", "2022-12-01")).encode())
        check(status == 201 and r["cameras_created"] == 1, r)
        _, page = h.json("GET", "/api/v1/cameras?limit=10&q=%EC%99%80%EB%A3%A1", expect=200)
        park = page["items"][0]
        set_by_api = {"heading_deg": 90.0, "fov_deg": 60.0, "kind": "fixed", "pixels": 2000000,
                      "retention_days": 30, "purpose": "생활방범",
                      "road_address": "서울특별시 종로구 와룡공원길 1"}
        h.json("PATCH", "/api/v1/cameras/%d" % park["id"], set_by_api, expect=200)
        status, r = post_import(h, (ansimi % ("37.5913", "2023-06-01")).encode())
        check(status == 201 and r["cameras_unchanged"] == 1, r)
        _, got = h.json("GET", "/api/v1/cameras/%d" % park["id"], expect=200)
        check({k: got[k] for k in set_by_api} == set_by_api, got)
        h.stop()

        # The command line takes the same path: 보관일수 changes again.
        rows[0] = rows[0][:4] + (90,) + rows[0][5:]
        path = os.path.join(h.tmp, "newer.csv")
        with open(path, "wb") as f:
            f.write(std_file(rows, date="2026-12-05"))
        code, reports, err = import_cli(d, [path])
        check(code == 0 and reports[0]["cameras_updated"] == 2, (code, reports, err[-500:]))
        db = sqlite3.connect("file:%s?mode=ro" % os.path.join(d, "cctvhub.db"), uri=True)
        try:
            row = db.execute("SELECT rtsp_url, rtsp_username, rtsp_password, codec,"
                             " retention_days FROM cameras WHERE id = ?", (cam["id"],)).fetchone()
        finally:
            db.close()
        check(row == (stream["rtsp_url"], "viewer", "s3cret-pw", "h264", 90),
              "stream settings after the re-imports: %r" % (row,))
    finally:
        h.cleanup()


def test_reimport_keeps_maintenance_unless_the_file_deletes_or_unlocates_the_camera():
    """A camera an operator put in maintenance stays so when a newer edition of the public
    file is re-imported with a changed cell (the file knows nothing of maintenance); a row the
    publisher marks deleted (데이터갱신구분 D) makes it inactive, one without coordinates
    unlocated."""
    h = Hub()
    try:
        def edition(rows, date, kinds=None):
            lines = std_file(rows, date).decode().splitlines()
            lines[0] += ",데이터갱신구분"
            for i in range(1, len(lines)):
                lines[i] += "," + ((kinds or {}).get(rows[i - 1][0], "U"))
            return ("\n".join(lines) + "\n").encode()

        rows = [("M-1", "종로구 관제센터", "종로 1", 2, 30, "37.5700", "126.9820"),
                ("M-2", "종로구 관제센터", "종로 2", 1, 30, "37.5710", "126.9830")]
        status, r = post_import(h, edition(rows, "2026-05-20"))
        check(status == 201 and r["cameras_created"] == 3, r)
        _, page = h.json("GET", "/api/v1/cameras?limit=10", expect=200)
        cams = {c["source_key"].split(":")[-1]: c for c in page["items"]}
        # One camera inside a run of two, and a site of one camera.
        for key in ("M-1#1", "M-2#1"):
            h.json("PATCH", "/api/v1/cameras/%d" % cams[key]["id"], {"status": "maintenance"},
                   expect=200)

        def status_of(key):
            return h.json("GET", "/api/v1/cameras/%d" % cams[key]["id"], expect=200)[1]["status"]

        # A newer edition changes 보관일수 of both sites: updated, maintenance kept.
        rows = [row[:4] + (60,) + row[5:] for row in rows]
        status, r = post_import(h, edition(rows, "2026-11-30"))
        check(status == 201 and r["cameras_updated"] == 3, r)
        check([status_of(k) for k in ("M-1#1", "M-1#2", "M-2#1")]
              == ["maintenance", "active", "maintenance"], "statuses after the new edition")
        _, got = h.json("GET", "/api/v1/cameras/%d" % cams["M-2#1"]["id"], expect=200)
        check(got["retention_days"] == 60, got)
        # The same edition again: nothing to update.
        status, r = post_import(h, edition(rows, "2026-11-30"))
        check(status == 201 and r["cameras_unchanged"] == 3, r)
        # The publisher deletes M-2 and M-1 loses its coordinates: the file wins.
        rows[0] = rows[0][:5] + ("", "")
        status, r = post_import(h, edition(rows, "2026-12-01", {"M-2": "D"}))
        check(status == 201 and r["cameras_updated"] == 3, r)
        check([status_of(k) for k in ("M-1#1", "M-1#2", "M-2#1")]
              == ["unlocated", "unlocated", "inactive"], "statuses after D and no position")
        h.stop()
    finally:
        h.cleanup()


if __name__ == "__main__":
    hub.main([
        test_cli_imports_every_shared_file_idempotently_and_api_serves_them,
        test_http_import_matches_independent_count,
        test_unreadable_files_are_rejected_and_change_nothing,
        test_newer_file_from_same_publisher_updates_in_place,
        test_dry_run_reports_without_touching_a_store,
        test_progress_bar_on_a_terminal,
        test_a_providers_import_stays_inside_its_own_agency,
        test_reimport_keeps_stream_settings_set_through_the_api,
        test_reimport_keeps_maintenance_unless_the_file_deletes_or_unlocates_the_camera,
    ])
