"""The audit record as the daemon keeps it and answers it over HTTP: every registry change is
on it, searchable by agency, camera, actor, action and time; proofs check out against an
independent RFC 9162 verifier written here; the store's index is rebuilt from the log when
lost; and the served checkpoint verifies offline with `cctvhub audit verify`."""

import base64
import json
import os
import sqlite3
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
import hub  # noqa: E402
import rfc9162  # noqa: E402
from hub import Hub, check, run  # noqa: E402


def agency(name):
    return {"name": name, "kind": "provider", "level": "district", "type": "district-center"}


def camera(agency_id, name):
    return {"agency_id": agency_id, "name": name, "lat": 37.5665, "lon": 126.978,
            "kind": "fixed", "rtsp_url": "rtsp://10.0.0.9/secret-stream",
            "rtsp_password": "pw-never-logged"}


def make_changes(h):
    _, a = h.json("POST", "/api/v1/agencies", agency("서울특별시 마포구"), expect=201)
    _, c = h.json("POST", "/api/v1/cameras", camera(a["id"], "망원동 1"), expect=201)
    h.json("PATCH", "/api/v1/cameras/%d" % c["id"], {"name": "망원동 1-1"}, expect=200)
    _, c2 = h.json("POST", "/api/v1/cameras", camera(a["id"], "망원동 2"), expect=201)
    status, _, _ = h.request("DELETE", "/api/v1/cameras/%d" % c2["id"])
    check(status == 204, status)
    # A failed change is not a change: nothing recorded for it.
    h.json("POST", "/api/v1/cameras", camera(999, "nowhere"), expect=400)
    with open(os.path.join(hub.DATA_DIR, "seoul_ansimi_cctv_jongno_20221201_cp949.csv"),
              "rb") as f:
        status, _, _ = h.request("POST", "/api/v1/imports?name=jongno.csv", f.read())
    check(status == 201, status)
    return a, c, c2


def test_every_change_is_recorded_and_searchable():
    h = Hub()
    try:
        a, c, c2 = make_changes(h)
        _, page = h.json("GET", "/api/v1/audit?limit=1000", expect=200)
        actions = [r["action"] for r in page["items"]]
        # The administrator made by the harness (a local command) and its login come first.
        check(actions == ["user.create", "auth.login", "agency.create", "camera.create",
                          "camera.update", "camera.create", "camera.delete", "import.start",
                          "import"], actions)
        check(page["total"] == 9 and page["next"] is None, page["total"])
        for i, r in enumerate(page["items"]):
            check(r["seq"] == i and r["actor"].startswith("user:"), r)
            check(i < 1 or r["actor"] == "user:admin", r)
            check(r["outcome"] == "ok" and isinstance(r["time"], int), r)
        text = json.dumps(page, ensure_ascii=False)
        check("pw-never-logged" not in text and "secret-stream" not in text,
              "a credential reached the audit record")
        imp = page["items"][8]["details"]
        check(imp["cameras_created"] == 1930 and imp["rows"] == 1930, imp)
        # Filters.
        _, bycam = h.json("GET", "/api/v1/audit?camera=%d" % c["id"], expect=200)
        check([r["action"] for r in bycam["items"]] == ["camera.create", "camera.update"], bycam)
        # About the agency: the agency itself and its cameras (details.agency_id).
        _, byag = h.json("GET", "/api/v1/audit?agency=%d" % a["id"], expect=200)
        check([r["action"] for r in byag["items"]] == ["agency.create", "camera.create",
                                                       "camera.update", "camera.create",
                                                       "camera.delete"],
              [r["action"] for r in byag["items"]])
        _, byact = h.json("GET", "/api/v1/audit?action=camera.delete", expect=200)
        check(byact["total"] == 1 and byact["items"][0]["object"] == "camera:%d" % c2["id"],
              byact)
        check(byact["items"][0]["details"]["name"] == "망원동 2", "delete record lacks what")
        _, future = h.json("GET", "/api/v1/audit?since=2100-01-01T00:00:00Z", expect=200)
        check(future["total"] == 0, future)
        _, past = h.json("GET", "/api/v1/audit?until=2000-01-01T00:00:00Z", expect=200)
        check(past["total"] == 0, past)
        # Pages of two walk all nine exactly once.
        seen, cursor = [], None
        while True:
            q = "/api/v1/audit?limit=2" + ("&cursor=" + cursor if cursor else "")
            _, p = h.json("GET", q, expect=200)
            seen += [r["seq"] for r in p["items"]]
            cursor = p["next"]
            if cursor is None:
                break
        check(seen == list(range(9)), seen)
        status, body = h.json("GET", "/api/v1/audit?camera=abc")
        check(status == 400 and body["error"]["field"] == "camera", body)
        status, body = h.json("GET", "/api/v1/audit?since=yesterday")
        check(status == 400 and body["error"]["field"] == "since", body)
        status, body = h.json("GET", "/api/v1/audit?color=red")
        check(status == 400 and body["error"]["field"] == "color", body)
        h.expect_invalid("/api/v1/audit?limit=0", "limit", "limit must be an integer 1..1000")
        h.expect_invalid("/api/v1/audit?limit=1001", "limit", "limit must be an integer 1..1000")
        h.expect_invalid("/api/v1/audit?cursor=abc", "cursor")
        h.expect_invalid("/api/v1/audit/checkpoint?x=1", "x",
                         "this endpoint takes no query parameters")
        h.expect_invalid("/api/v1/audit/proof?size=1", "index", "index is required")
        h.expect_invalid("/api/v1/audit/proof?index=-1", "index", "index must be an integer >= 0")
        h.expect_invalid("/api/v1/audit/consistency?from=0", "from",
                         "from must be an integer >= 1")
        # The registry's lists answer the same mistakes the same way.
        h.expect_invalid("/api/v1/cameras?limit=0", "limit", "limit must be an integer 1..1000")
        h.expect_invalid("/api/v1/cameras?kind=dome", "kind",
                         "kind must be one of fixed, ptz, unknown")
        h.expect_invalid("/api/v1/devices?status=broken", "status",
                         "status must be one of active, inactive, unlocated, fault")
        h.expect_invalid("/api/v1/agencies?limit=ten", "limit")
        h.expect_invalid("/api/v1/agencies?level=planet", "level",
                         "level must be one of district, city, national")
        h.expect_invalid("/api/v1/cameras?limt=5", "limt")
        h.stop()
    finally:
        h.cleanup()


def test_proofs_verify_independently_and_checkpoint_verifies_offline():
    h = Hub()
    try:
        make_changes(h)
        _, page = h.json("GET", "/api/v1/audit?limit=1000", expect=200)
        n = page["total"]
        status, _, note = h.request("GET", "/api/v1/audit/checkpoint")
        check(status == 200, status)
        lines = note.decode().split("\n")
        check(int(lines[1]) == n, lines)
        root = base64.b64decode(lines[2])
        for size in range(1, n + 1):
            for index in range(size):
                _, p = h.json("GET", "/api/v1/audit/proof?index=%d&size=%d" % (index, size),
                              expect=200)
                path = [bytes.fromhex(x) for x in p["path"]]
                check(rfc9162.verify_inclusion(index, size, bytes.fromhex(p["leaf_hash"]), path,
                                               bytes.fromhex(p["root"])),
                      "inclusion %d in %d does not verify" % (index, size))
            if size == n:
                check(bytes.fromhex(p["root"]) == root, "proof root differs from checkpoint")
        # The leaf hash is the hash of the record's canonical bytes.
        rec0 = json.dumps(page["items"][0], ensure_ascii=False, sort_keys=True,
                          separators=(",", ":")).encode()
        _, p0 = h.json("GET", "/api/v1/audit/proof?index=0", expect=200)
        check(rfc9162.leaf_hash(rec0) == bytes.fromhex(p0["leaf_hash"]), "leaf hash of record 0")
        for m in range(1, n + 1):
            _, cp = h.json("GET", "/api/v1/audit/consistency?from=%d&to=%d" % (m, n),
                           expect=200)
            check(rfc9162.verify_consistency(m, n, bytes.fromhex(cp["root_from"]),
                                     bytes.fromhex(cp["root_to"]),
                                     [bytes.fromhex(x) for x in cp["path"]]),
                  "consistency %d..%d does not verify" % (m, n))
        status, body = h.json("GET", "/api/v1/audit/proof?index=%d" % n)
        check(status == 400, body)
        status, body = h.json("GET", "/api/v1/audit/consistency?from=3&to=2")
        check(status == 400, body)
        h.stop()
        # Offline, with the checkpoint an auditor kept.
        kept = os.path.join(h.tmp, "kept.checkpoint")
        with open(kept, "wb") as f:
            f.write(note)
        code, out, err = run(["audit", "verify", "--data-dir", h.data_dir, "--checkpoint", kept])
        check(code == 0, "audit verify: %d %s %s" % (code, out, err))
    finally:
        h.cleanup()


def test_lost_index_is_rebuilt_from_the_log():
    h = Hub()
    try:
        make_changes(h)
        _, before = h.json("GET", "/api/v1/audit?limit=1000", expect=200)
        h.stop()
        db = sqlite3.connect(os.path.join(h.data_dir, "cctvhub.db"))
        db.execute("DELETE FROM audit_index")
        db.commit()
        db.close()
        h2 = Hub(data_dir=h.data_dir)
        try:
            _, after = h2.json("GET", "/api/v1/audit?limit=1000", expect=200)
            n = len(before["items"])
            check(n == 9 and after["items"][:n] == before["items"],
                  "rebuilt index answers differently")
            # An index claiming records the log does not hold is rebuilt too.
            h2.stop()
            db = sqlite3.connect(os.path.join(h.data_dir, "cctvhub.db"))
            db.execute("INSERT INTO audit_index(seq, time_ns, actor, action) "
                       "VALUES(999999, 0, 'forged', 'camera.delete')")
            db.commit()
            db.close()
            h3 = Hub(data_dir=h.data_dir)
            try:
                _, forged = h3.json("GET", "/api/v1/audit?actor=forged", expect=200)
                check(forged["total"] == 0, "the index outranked the log")
                h3.stop()
            finally:
                h3.cleanup()
        finally:
            h2.cleanup()
    finally:
        h.cleanup()


if __name__ == "__main__":
    hub.main([
        test_every_change_is_recorded_and_searchable,
        test_proofs_verify_independently_and_checkpoint_verifies_offline,
        test_lost_index_is_rebuilt_from_the_log,
    ])
