"""The daemon as an operator sees it: start, configuration, health, version, the OpenAPI
document, signals (SIGTERM finishes requests in flight; SIGHUP reloads limits), and the
command line's help and exit codes."""

import json
import os
import select
import signal
import socket
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
import hub  # noqa: E402
from hub import Hub, check, run  # noqa: E402


def test_health_and_version_answer_json():
    h = Hub()
    try:
        _, body = h.json("GET", "/api/v1/health", expect=200)
        check(body["status"] == "ok", body)
        status, headers, data = h.request("GET", "/api/v1/version")
        check(status == 200 and headers["content-type"].startswith("application/json"), headers)
        v = json.loads(data)
        check(v["name"] == "cctvhub" and v["version"], v)
        code, out, _ = run(["version"])
        check(code == 0 and v["version"] in out, out)
        h.stop()
    finally:
        h.cleanup()


def test_openapi_document_is_served_as_built():
    h = Hub()
    try:
        status, headers, data = h.request("GET", "/api/v1/openapi.yaml")
        check(status == 200, status)
        with open(os.path.join(hub.SOURCE_DIR, "docs", "openapi.yaml"), "rb") as f:
            check(data == f.read(), "served document differs from docs/openapi.yaml")
        check(data.startswith(b"openapi: 3"), data[:40])
        h.stop()
    finally:
        h.cleanup()


def test_unknown_route_is_json_404_and_process_keeps_serving():
    h = Hub()
    try:
        status, body = h.json("GET", "/api/v1/nothing-here")
        check(status == 404 and body["error"]["code"] == "not_found", body)
        h.json("GET", "/api/v1/health", expect=200)
        h.stop()
    finally:
        h.cleanup()


def test_bad_config_value_stops_start_naming_the_key():
    tmp = Hub.__new__(Hub)
    import tempfile
    d = tempfile.mkdtemp()
    ini = os.path.join(d, "hub.ini")
    with open(ini, "w") as f:
        f.write("[http]\nlisten = 127.0.0.1:0\nmax_body = a-lot\n")
    code, _, err = run(["serve", "--config", ini, "--data-dir", d], timeout=30)
    check(code == 3, "exit %d: %s" % (code, err))
    check("http.max_body" in err and ini in err, err)
    code, _, err = run(["serve", "--data-dir", d], env={"CCTVHUB_HTTP_LISTEN": "nowhere"},
                       timeout=30)
    check(code == 3 and "CCTVHUB_HTTP_LISTEN" in err, err)
    with open(ini, "w") as f:
        f.write("[http]\nlisten_on = 1\n")
    code, _, err = run(["serve", "--config", ini, "--data-dir", d], timeout=30)
    check(code == 3 and "http.listen_on" in err and "unknown key" in err, err)


def test_busy_port_exits_4_with_message():
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", 0))
    s.listen(1)
    port = s.getsockname()[1]
    import tempfile
    d = tempfile.mkdtemp()
    try:
        code, _, err = run(["serve", "--data-dir", d, "--http", "127.0.0.1:%d" % port],
                           timeout=30)
        check(code == 4 and "http.listen" in err, "exit %d: %s" % (code, err))
    finally:
        s.close()


def test_every_command_has_help_and_usage_errors_exit_2():
    for args in (["help"], ["serve", "--help"], ["import", "--help"]):
        code, out, _ = run(args)
        check(code == 0 and "usage:" in out, (args, out))
    for args in (["frobnicate"], ["serve", "--no-such-flag"], ["import"], []):
        code, _, err = run(args)
        check(code == 2 and "usage" in err, (args, code, err))


def test_environment_sets_listen_and_flag_beats_it():
    port = hub.free_port()
    h = Hub(env={"CCTVHUB_HTTP_LISTEN": "127.0.0.1:%d" % port})
    try:
        # Hub passes --http 127.0.0.1:0, which must win over the environment.
        check(h.port != port, "flag did not beat environment")
        h.stop()
    finally:
        h.cleanup()


def test_sigterm_lets_request_in_flight_finish():
    h = Hub()
    try:
        body = json.dumps({"name": "Slow Agency", "kind": "user", "level": "city",
                           "type": "fire-119"}).encode()
        s = socket.create_connection(("127.0.0.1", h.port), timeout=10)
        head = ("POST /api/v1/agencies HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                "Cookie: %s\r\nX-CSRF-Token: %s\r\n"
                "Content-Length: %d\r\n\r\n" % (h.cookie, h.csrf, len(body))).encode()
        s.sendall(head + body[:10])
        time.sleep(0.3)
        h.proc.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        check(h.proc.poll() is None, "daemon exited with a request in flight")
        s.sendall(body[10:])
        data = b""
        while True:
            b = s.recv(65536)
            if not b:
                break
            data += b
        s.close()
        check(data.startswith(b"HTTP/1.1 201"), data[:200])
        log = h.stop()
        check("msg=stopping" in log and "msg=stopped" in log, log[-1000:])
    finally:
        h.cleanup()


def test_sighup_reloads_body_limit():
    import tempfile
    d = tempfile.mkdtemp()
    ini = os.path.join(d, "hub.ini")
    with open(ini, "w") as f:
        f.write("[http]\nmax_body = 100\n")
    h = Hub(args=["--config", ini])
    try:
        agency = {"name": "X" * 200, "kind": "user", "level": "city", "type": "police-112"}
        status, body = h.json("POST", "/api/v1/agencies", agency)
        check(status == 413 and body["error"]["code"], (status, body))
        with open(ini, "w") as f:
            f.write("[http]\nmax_body = 100000\n")
        h.proc.send_signal(signal.SIGHUP)
        deadline = time.time() + 10
        while "msg=reloaded" not in h.stderr() and time.time() < deadline:
            time.sleep(0.05)
        status, body = h.json("POST", "/api/v1/agencies", agency)
        check(status == 201, (status, body))
        # A broken file on SIGHUP keeps the running configuration.
        with open(ini, "w") as f:
            f.write("[http]\nmax_body = -1\n")
        h.proc.send_signal(signal.SIGHUP)
        deadline = time.time() + 10
        while "reload failed" not in h.stderr() and time.time() < deadline:
            time.sleep(0.05)
        check("reload failed" in h.stderr(), h.stderr()[-500:])
        h.json("GET", "/api/v1/health", expect=200)
        h.stop()
    finally:
        h.cleanup()


def test_data_survives_restart():
    h = Hub()
    try:
        h.json("POST", "/api/v1/agencies", {"name": "서울특별시 마포구", "kind": "provider",
                                            "level": "district", "type": "district-center"},
               expect=201)
        h.stop()
        h2 = Hub(data_dir=h.data_dir)
        try:
            _, body = h2.json("GET", "/api/v1/agencies", expect=200)
            check(body["total"] == 1 and body["items"][0]["name"] == "서울특별시 마포구", body)
            h2.stop()
        finally:
            h2.cleanup()
    finally:
        h.cleanup()


def test_services_file_is_served_and_reloaded_and_a_broken_one_refused():
    import tempfile
    shipped = os.path.join(hub.SOURCE_DIR, "etc", "services.json")
    d = tempfile.mkdtemp()
    services = os.path.join(d, "services.json")
    with open(shipped, "rb") as f:
        original = f.read()
    with open(services, "wb") as f:
        f.write(original)
    h = Hub(env={"CCTVHUB_SERVICES_FILE": services})
    try:
        _, body = h.json("GET", "/api/v1/services", expect=200)
        ids = [s["id"] for s in body["items"]]
        check(body["loaded"] and ids == ["112-center", "112-dispatch", "119-dispatch",
                                         "vulnerable-persons", "disaster-response",
                                         "anklet-violation", "wanted-vehicle",
                                         "women-safe-return", "military-training",
                                         "ansimi-sos", "city-dashboard"], ids)
        for s in body["items"]:
            check(s["legal_basis"]["code"] and s["agency_types"] and s["duration_max_s"] > 0, s)
        # A broken file on SIGHUP keeps the services in force.
        with open(services, "w") as f:
            f.write('{"services": [{"id": "x"}]}')
        h.proc.send_signal(signal.SIGHUP)
        deadline = time.time() + 10
        while "services file not reloaded" not in h.stderr() and time.time() < deadline:
            time.sleep(0.05)
        check("services file not reloaded" in h.stderr(), h.stderr()[-800:])
        _, body = h.json("GET", "/api/v1/services", expect=200)
        check(body["total"] == 11, body["total"])
        # A good smaller file replaces them.
        data = json.loads(original)
        data["services"] = data["services"][:2]
        with open(services, "w") as f:
            json.dump(data, f)
        h.proc.send_signal(signal.SIGHUP)
        deadline = time.time() + 10
        while time.time() < deadline:
            _, body = h.json("GET", "/api/v1/services", expect=200)
            if body["total"] == 2:
                break
            time.sleep(0.05)
        check(body["total"] == 2, body["total"])
        h.stop()
    finally:
        h.cleanup()
    # "none": none loaded. With a broken one: the start stops, naming the key.
    h = Hub(env={"CCTVHUB_SERVICES_FILE": "none"})
    try:
        _, body = h.json("GET", "/api/v1/services", expect=200)
        check(body == {"items": [], "total": 0, "loaded": False}, body)
        h.stop()
    finally:
        h.cleanup()
    with open(services, "w") as f:
        f.write('{"services": [{"id": "x"}]}')
    code, _, err = run(["serve", "--data-dir", d, "--http", "127.0.0.1:0"],
                       env={"CCTVHUB_SERVICES_FILE": services}, timeout=30)
    check(code == 3 and "policy.services_file" in err and services in err, (code, err))
    check("schema migrated" not in err, "the store was touched before the configuration held")


class EventOpener:
    """A police-112 agency with an API key, a district provider with a camera at Jongno: open()
    opens a 112-center event there and returns the status (201 when services are in force,
    503 "no services file is loaded" when not)."""

    def __init__(self, h):
        self.h = h
        _, police = h.json("POST", "/api/v1/agencies", {"name": "112 상황실", "kind": "user",
                                                        "level": "city", "type": "police-112"},
                           expect=201)
        _, prov = h.json("POST", "/api/v1/agencies", {"name": "종로구 관제센터",
                                                      "kind": "provider", "level": "district",
                                                      "type": "district-center"}, expect=201)
        h.json("POST", "/api/v1/cameras", {"agency_id": prov["id"], "name": "P 방범",
                                           "lat": 37.5702, "lon": 126.98, "purpose": "생활방범",
                                           "kind": "ptz", "status": "active"}, expect=201)
        _, k = h.json("POST", "/api/v1/apikeys", {"agency_id": police["id"], "role": "agency"},
                      expect=201)
        self.key = k["key"]

    def open(self):
        status, body = self.h.json("POST", "/api/v1/events",
                                   {"service": "112-center",
                                    "location": {"lat": 37.57, "lon": 126.98},
                                    "incident": "INC-1", "reason": "a report"},
                                   headers={"Authorization": "Bearer " + self.key}, auth=False)
        return status, body


def wait_log(h, text, start=0, timeout=10):
    deadline = time.time() + timeout
    while text not in h.stderr()[start:] and time.time() < deadline:
        time.sleep(0.05)
    check(text in h.stderr()[start:], "no %r in the log:\n%s" % (text, h.stderr()[-1500:]))


def reload_records(h):
    _, page = h.json("GET", "/api/v1/audit?limit=100&action=config.reload", expect=200)
    return page["items"]


def test_config_path_that_is_a_directory_stops_the_start():
    import tempfile
    d = tempfile.mkdtemp()
    conf_dir = os.path.join(d, "conf.d")
    os.mkdir(conf_dir)
    code, _, err = run(["serve", "--config", conf_dir, "--data-dir", d, "--http", "127.0.0.1:0",
                        "--rtsp", "127.0.0.1:0"], timeout=15)
    check(code == 3 and conf_dir in err and "not a regular file" in err, (code, err))


def test_reload_of_a_directory_or_without_the_services_keeps_the_config():
    """On SIGHUP: the path replaced by a directory, then a file no longer naming the services:
    both keep the configuration in force (events keep opening), both are logged and audited."""
    import tempfile
    d = tempfile.mkdtemp()
    services = os.path.join(d, "services.json")
    with open(os.path.join(hub.SOURCE_DIR, "etc", "services.json"), "rb") as f:
        shipped = f.read()
    with open(services, "wb") as f:
        f.write(shipped)
    ini = os.path.join(d, "hub.ini")
    with open(ini, "w") as f:
        f.write("[policy]\nservices_file = %s\n" % services)
    h = Hub(args=["--config", ini])
    try:
        ev = EventOpener(h)
        status, body = ev.open()
        check(status == 201, (status, body))
        os.remove(ini)
        os.mkdir(ini)
        mark = len(h.stderr())
        h.proc.send_signal(signal.SIGHUP)
        wait_log(h, "reload failed", mark)
        check("not a regular file" in h.stderr()[mark:], h.stderr()[mark:])
        check("msg=reloaded" not in h.stderr()[mark:], h.stderr()[mark:])
        status, body = ev.open()
        check(status == 201, ("after a directory", status, body))
        os.rmdir(ini)
        with open(ini, "w") as f:
            f.write("[http]\nmax_body = 200000\n")
        mark = len(h.stderr())
        h.proc.send_signal(signal.SIGHUP)
        wait_log(h, "reload refused", mark)
        check("policy.services_file" in h.stderr()[mark:], h.stderr()[mark:])
        status, body = ev.open()
        check(status == 201, ("after a reload without services", status, body))
        _, body = h.json("GET", "/api/v1/services", expect=200)
        check(body["total"] == 11, body["total"])
        records = reload_records(h)
        errors = [r for r in records if r["outcome"] == "error"]
        check(len(errors) == 2 and "not a regular file" in json.dumps(errors)
              and "policy.services_file" in json.dumps(errors), records)
        # A good file naming the services again reloads.
        with open(ini, "w") as f:
            f.write("[policy]\nservices_file = %s\n[http]\nmax_body = 200000\n" % services)
        mark = len(h.stderr())
        h.proc.send_signal(signal.SIGHUP)
        wait_log(h, "msg=reloaded", mark)
        h.stop()
    finally:
        h.cleanup()


def test_hub_without_services_setting_loads_the_shipped_file():
    import shutil
    import tempfile
    # From a build directory: the source tree's etc/services.json, named in the log.
    h = Hub()
    try:
        status, body = EventOpener(h).open()
        check(status == 201, (status, body))
        wait_log(h, "services loaded")
        line = [x for x in h.stderr().splitlines() if "services loaded" in x][0]
        check("etc/services.json" in line and "services=11" in line and "shipped=1" in line,
              line)
        h.stop()
    finally:
        h.cleanup()
    # Installed: <prefix>/bin/cctvhub finds <prefix>/etc/cctvhub/services.json first.
    prefix = tempfile.mkdtemp()
    os.makedirs(os.path.join(prefix, "bin"))
    os.makedirs(os.path.join(prefix, "etc", "cctvhub"))
    binary = os.path.join(prefix, "bin", "cctvhub")
    shutil.copy2(hub.BIN, binary)
    with open(os.path.join(hub.SOURCE_DIR, "etc", "services.json")) as f:
        data = json.load(f)
    data["services"] = data["services"][:2]
    installed = os.path.join(prefix, "etc", "cctvhub", "services.json")
    with open(installed, "w") as f:
        json.dump(data, f)
    saved = hub.BIN
    hub.BIN = binary
    try:
        h = Hub()
    finally:
        hub.BIN = saved
    try:
        wait_log(h, "services loaded")
        check(installed.replace(prefix, "") in h.stderr(), h.stderr()[-1500:])
        _, body = h.json("GET", "/api/v1/services", expect=200)
        check(body["total"] == 2, body)
        h.stop()
    finally:
        h.cleanup()
        shutil.rmtree(prefix, ignore_errors=True)


def slow_get(h, path):
    """Sends GET path with the administrator's session on a new connection; returns the socket,
    whose answer the caller reads."""
    s = socket.create_connection(("127.0.0.1", h.port), timeout=60)
    s.sendall(("GET %s HTTP/1.1\r\nHost: x\r\nCookie: %s\r\nConnection: close\r\n\r\n"
               % (path, h.cookie)).encode())
    return s


def read_all(s):
    data = b""
    while True:
        b = s.recv(65536)
        if not b:
            break
        data += b
    s.close()
    return data


def test_slow_store_read_leaves_the_loop_answering():
    """Issue 16, item 5: the heavy reads (the audit list, the ledger, the registry's lists, the
    availability report) run on the store worker. With every worker request made slow (a
    test-only delay, debug builds), /health is answered while a read waits; a read whose client
    went away does no harm; and SIGTERM lets a read in flight finish and be answered."""
    h = Hub(env={"CCTVHUB_TEST_STORE_DELAY_MS": "3000"})
    try:
        for path in ("/api/v1/audit?limit=1", "/api/v1/cameras?limit=5", "/api/v1/ledger",
                     "/api/v1/reports/availability?month=2020-01"):
            s = slow_get(h, path)
            status, _, body = h.request("GET", "/api/v1/health")
            check(status == 200 and json.loads(body)["status"] == "ok", body)
            ready, _, _ = select.select([s], [], [], 0)
            check(not ready, "%s was answered before the health check: the loop waited for it" % path)
            data = read_all(s)
            check(data.startswith(b"HTTP/1.1 200"), (path, data[:300]))
        # A client that leaves before its read is done.
        s = slow_get(h, "/api/v1/agencies")
        s.close()
        status, _, _ = h.request("GET", "/api/v1/health")
        check(status == 200, "the hub stopped answering after a client left")
        time.sleep(3.5)  # its read ends and its answer goes nowhere
        check(h.proc.poll() is None, "the hub exited after a client left a read")
        # SIGTERM with a read in flight: it is answered, then the hub stops.
        s = slow_get(h, "/api/v1/audit")
        time.sleep(0.3)
        h.proc.send_signal(signal.SIGTERM)
        data = read_all(s)
        check(data.startswith(b"HTTP/1.1 200"), data[:300])
        log = h.stop()
        check("msg=stopped" in log, log[-1000:])
    finally:
        h.cleanup()


def post_agency(h, name):
    """Sends POST /api/v1/agencies for name on a new connection; returns the socket."""
    body = json.dumps({"name": name, "kind": "user", "level": "city",
                       "type": "fire-119"}).encode()
    s = socket.create_connection(("127.0.0.1", h.port), timeout=60)
    s.sendall(("POST /api/v1/agencies HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
               "Cookie: %s\r\nX-CSRF-Token: %s\r\nConnection: close\r\n"
               "Content-Length: %d\r\n\r\n" % (h.cookie, h.csrf, len(body))).encode() + body)
    return s


def test_store_writes_on_the_worker_are_bounded_and_lose_nothing():
    """Issue 16, item 5: the registry's changes run on the store worker, whose queue is bounded
    (a test-only bound of 3 and a slow store, debug builds). A flood of creates is answered 201
    or 503 "busy" with Retry-After, never queued without bound; every 201 is stored and on the
    audit record, no 503 is; /health is answered while the writes wait; a client that leaves
    while its write is on the worker (an agency created, an API key revoked) gets nothing, and
    the write is made and recorded all the same."""
    h = Hub(env={"CCTVHUB_TEST_STORE_DELAY_MS": "400", "CCTVHUB_TEST_STORE_MAX_WAITING": "3"})
    try:
        names = ["flood %d" % i for i in range(10)]
        socks = [post_agency(h, n) for n in names]
        status, _, body = h.request("GET", "/api/v1/health")
        check(status == 200 and json.loads(body)["status"] == "ok", body)
        ready, _, _ = select.select([socks[0]], [], [], 0)
        check(not ready, "the first write was answered before the health check: the loop waited")
        created, busy = [], []
        for n, s in zip(names, socks):
            data = read_all(s)
            head, _, payload = data.partition(b"\r\n\r\n")
            if head.startswith(b"HTTP/1.1 201"):
                created.append((n, json.loads(payload)["id"]))
            else:
                check(head.startswith(b"HTTP/1.1 503") and b"Retry-After: 1" in head, data[:300])
                check(json.loads(payload)["error"]["code"] == "busy", payload)
                busy.append(n)
        check(len(created) >= 1 and len(busy) >= 1, (created, busy))
        # A client that leaves while its write waits on the worker.
        s = post_agency(h, "left early")
        time.sleep(0.1)
        s.close()
        time.sleep(1.0)
        check(h.proc.poll() is None, "the hub exited after a client left a write")
        _, page = h.json("GET", "/api/v1/agencies?q=flood&limit=100", expect=200)
        stored = sorted(a["name"] for a in page["items"])
        check(stored == sorted(n for n, _ in created), (stored, created))
        _, page = h.json("GET", "/api/v1/agencies?q=left%20early", expect=200)
        check(len(page["items"]) == 1, page)
        left = page["items"][0]["id"]
        _, audit = h.json("GET", "/api/v1/audit?action=agency.create&limit=100", expect=200)
        objects = sorted(r["object"] for r in audit["items"])
        check(objects == sorted("agency:%d" % i for _, i in created + [("", left)]), objects)
        # The account use cases too: a key made on the worker, revoked by a client that leaves.
        _, key = h.json("POST", "/api/v1/apikeys", {"agency_id": left}, expect=201)
        status, _, _ = h.request("GET", "/api/v1/session", auth=False,
                                 headers={"Authorization": "Bearer " + key["key"]})
        check(status == 200, status)
        s = socket.create_connection(("127.0.0.1", h.port), timeout=60)
        s.sendall(("DELETE /api/v1/apikeys/%d HTTP/1.1\r\nHost: x\r\nCookie: %s\r\n"
                   "X-CSRF-Token: %s\r\nConnection: close\r\n\r\n"
                   % (key["id"], h.cookie, h.csrf)).encode())
        time.sleep(0.1)
        s.close()
        time.sleep(1.0)
        status, _, _ = h.request("GET", "/api/v1/session", auth=False,
                                 headers={"Authorization": "Bearer " + key["key"]})
        check(status == 401, "a key revoked by a client that left still works: %d" % status)
        _, audit = h.json("GET", "/api/v1/audit?action=apikey.revoke", expect=200)
        check([r["object"] for r in audit["items"]] == ["apikey:%d" % key["id"]], audit)
        log = h.stop()
        check("msg=stopped" in log, log[-1000:])
    finally:
        h.cleanup()


if __name__ == "__main__":
    hub.main([
        test_health_and_version_answer_json,
        test_openapi_document_is_served_as_built,
        test_unknown_route_is_json_404_and_process_keeps_serving,
        test_bad_config_value_stops_start_naming_the_key,
        test_busy_port_exits_4_with_message,
        test_every_command_has_help_and_usage_errors_exit_2,
        test_environment_sets_listen_and_flag_beats_it,
        test_sigterm_lets_request_in_flight_finish,
        test_sighup_reloads_body_limit,
        test_data_survives_restart,
        test_services_file_is_served_and_reloaded_and_a_broken_one_refused,
        test_config_path_that_is_a_directory_stops_the_start,
        test_reload_of_a_directory_or_without_the_services_keeps_the_config,
        test_hub_without_services_setting_loads_the_shipped_file,
        test_slow_store_read_leaves_the_loop_answering,
        test_store_writes_on_the_worker_are_bounded_and_lose_nothing,
    ])
