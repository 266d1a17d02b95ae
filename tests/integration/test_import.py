"""Import of the real published CCTV files, end to end: the command line and the HTTP API
against an independent count made here with Python's own csv module, idempotence, updates in
place from a newer file, all-or-nothing rejection of unreadable files, and the cameras served
afterwards by the REST API."""

import csv
import io
import json
import os
import shutil
import tempfile

import hub
from hub import Hub, check, run

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


if __name__ == "__main__":
    hub.main([
        test_cli_imports_every_shared_file_idempotently_and_api_serves_them,
        test_http_import_matches_independent_count,
        test_unreadable_files_are_rejected_and_change_nothing,
        test_newer_file_from_same_publisher_updates_in_place,
        test_dry_run_reports_without_touching_a_store,
        test_progress_bar_on_a_terminal,
    ])
