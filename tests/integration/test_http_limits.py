"""Every HTTP limit and error of the daemon, over real sockets: each bad request gets its
status and a JSON error body, closes only its own connection, and the daemon keeps serving."""

import json
import os
import re
import socket
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
import hub  # noqa: E402
from hub import Hub, check  # noqa: E402

LIMITS = {
    "CCTVHUB_HTTP_MAX_HEAD": "4096",
    "CCTVHUB_HTTP_MAX_TARGET": "1024",
    "CCTVHUB_HTTP_MAX_HEADERS": "20",
    "CCTVHUB_HTTP_MAX_BODY": "2048",
    "CCTVHUB_HTTP_REQUEST_TIMEOUT_MS": "500",
    "CCTVHUB_HTTP_IDLE_TIMEOUT_MS": "700",
}


def status_of(resp):
    check(resp.startswith(b"HTTP/1."), "no HTTP answer: %r" % resp[:200])
    return int(resp.split(b" ", 2)[1])


def error_body(resp):
    head, _, body = resp.partition(b"\r\n\r\n")
    check(b"application/json" in head.lower(), head)
    e = json.loads(body)["error"]
    check(e["code"] and e["message"], e)
    return e


def expect(h, raw, want, **kw):
    resp = h.raw(raw, **kw)
    got = status_of(resp)
    check(got == want, "wanted %d, got %d: %r" % (want, got, resp[:300]))
    error_body(resp)
    head = resp.partition(b"\r\n\r\n")[0].lower()
    check(b"connection: close" in head, "error answer must close: %r" % head)
    # The daemon is still there for everyone else.
    h.json("GET", "/api/v1/health", expect=200)


def with_hub(fn):
    def run():
        h = Hub(env=LIMITS)
        try:
            fn(h)
            h.stop()
        finally:
            h.cleanup()
    run.__name__ = fn.__name__
    return run


@with_hub
def test_malformed_request_line_is_400(h):
    expect(h, b"GARBAGE\r\n\r\n", 400)
    expect(h, b"GET /api/v1/health HTTP/1.1\r\nBad Header\r\n\r\n", 400)
    expect(h, b"GET /api/v1/health HTTP/1.1\r\nContent-Length: 12x\r\n\r\n", 400)
    expect(h, b"GET /x HTTP/1.1\r\nHost: a\x01b\r\n\r\n", 400)


@with_hub
def test_slow_client_gets_408(h):
    s = socket.create_connection(("127.0.0.1", h.port), timeout=5)
    s.sendall(b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\n")
    start = time.time()
    data = s.recv(65536)
    s.close()
    check(status_of(data) == 408, data[:200])
    check(time.time() - start < 4, "408 came late")
    # A body that stops short of Content-Length also times out.
    expect(h, b"POST /api/v1/agencies HTTP/1.1\r\nContent-Length: 100\r\n\r\n{", 408)


@with_hub
def test_body_over_limit_is_413(h):
    expect(h, b"POST /api/v1/agencies HTTP/1.1\r\nContent-Length: 999999\r\n\r\n", 413)


@with_hub
def test_long_target_is_414(h):
    expect(h, b"GET /" + b"a" * 2000 + b" HTTP/1.1\r\n\r\n", 414)


@with_hub
def test_big_head_or_many_headers_is_431(h):
    expect(h, b"GET / HTTP/1.1\r\nX-Big: " + b"b" * 5000 + b"\r\n\r\n", 431)
    many = b"".join(b"X-H%d: v\r\n" % i for i in range(30))
    expect(h, b"GET / HTTP/1.1\r\n" + many + b"\r\n", 431)


@with_hub
def test_chunked_upload_is_501(h):
    expect(h, b"POST /api/v1/agencies HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
              b"5\r\nhello\r\n0\r\n\r\n", 501)


@with_hub
def test_unknown_http_version_is_505(h):
    expect(h, b"GET /api/v1/health HTTP/2.0\r\n\r\n", 505)


@with_hub
def test_keep_alive_and_pipelining_answer_in_order(h):
    req = b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\n\r\n"
    ver = b"GET /api/v1/version HTTP/1.1\r\nHost: x\r\n\r\n"
    s = socket.create_connection(("127.0.0.1", h.port), timeout=5)
    s.sendall(req + ver + req)
    data = b""
    while data.count(b"HTTP/1.1 200") < 3:
        b = s.recv(65536)
        check(b, "closed early: %r" % data)
        data += b
    check(data.index(b'"status"') < data.index(b'"version"') < data.rindex(b'"status"'),
          "answers out of order")
    # The same connection serves another request later, then closes when idle.
    s.sendall(req)
    check(s.recv(65536).startswith(b"HTTP/1.1 200"), "keep-alive failed")
    start = time.time()
    check(s.recv(65536) == b"", "idle connection not closed")
    check(time.time() - start < 5, "idle close came late")
    s.close()


@with_hub
def test_http10_closes_after_answer(h):
    resp = h.raw(b"GET /api/v1/health HTTP/1.0\r\n\r\n")
    check(status_of(resp) == 200 and resp.count(b"HTTP/1.") == 1, resp[:200])


@with_hub
def test_wrong_method_is_405_with_allow(h):
    status, headers, data = h.request("DELETE", "/api/v1/health")
    check(status == 405 and "allow" in headers, (status, headers))
    check(json.loads(data)["error"]["code"] == "method_not_allowed", data)


@with_hub
def test_bad_json_body_is_400_naming_the_problem(h):
    status, headers, data = h.request("POST", "/api/v1/agencies", b"{not json",
                                      {"Content-Type": "application/json"})
    check(status == 400, (status, data))
    e = json.loads(data)["error"]
    check(e["code"] == "bad_json", e)


def keep_alive_from(h, src):
    """A connection from src (any 127.x address is this host) that got one answer and now
    waits, idle, as a keep-alive connection between requests does."""
    s = socket.create_connection(("127.0.0.1", h.port), timeout=5, source_address=(src, 0))
    check(status_of(get_on(s)) == 200, "no answer to %s" % src)
    return s


def get_on(s, path=b"/api/v1/health", headers=b""):
    """One GET on an open connection; the answer, head and body (empty when it closed)."""
    s.sendall(b"GET " + path + b" HTTP/1.1\r\nHost: x\r\n" + headers + b"\r\n")
    data = hub.read_head(s)
    if b"\r\n\r\n" not in data:
        return data
    head, _, body = data.partition(b"\r\n\r\n")
    m = re.search(rb"(?i)\r\ncontent-length: *(\d+)", head)
    while m and len(body) < int(m.group(1)):
        b = s.recv(65536)
        check(b, "closed in a body")
        body += b
    return head + b"\r\n\r\n" + body


def test_one_address_cannot_hold_every_connection():
    # Seven connections in all, four from one address; idle ones stay for the whole test.
    env = dict(LIMITS, CCTVHUB_HTTP_IDLE_TIMEOUT_MS="20000", CCTVHUB_HTTP_MAX_CONNECTIONS="7",
               CCTVHUB_HTTP_MAX_CONNECTIONS_PER_ADDR="4")
    h = Hub(env=env)
    socks = []
    try:
        third = [keep_alive_from(h, "127.0.0.3") for _ in range(2)]
        first = [keep_alive_from(h, "127.0.0.1") for _ in range(4)]
        socks += third + first
        # A fifth from the same address is refused, with a time to come back, and closed.
        s = socket.create_connection(("127.0.0.1", h.port), timeout=2)
        socks.append(s)
        resp = b""
        while True:
            try:
                b = s.recv(65536)
            except socket.timeout:
                check(False, "a fifth connection from one address was let in")
            if not b:
                break
            resp += b
        check(status_of(resp) == 503, resp[:300])
        check(error_body(resp)["code"] == "too_many_connections", resp)
        check(b"\r\nretry-after: " in resp.partition(b"\r\n\r\n")[0].lower(), resp[:300])
        # Meanwhile another address is answered, and stays (the seventh: the server is full).
        second = keep_alive_from(h, "127.0.0.2")
        socks.append(second)
        # A newcomer to the full server closes an idle connection of the address holding the
        # most (the oldest of 127.0.0.1's), not the oldest of all (127.0.0.3's).
        fourth = keep_alive_from(h, "127.0.0.4")
        socks.append(fourth)
        check(get_on(first[0]) == b"", "no idle connection of 127.0.0.1 was closed")
        for s in third + first[1:] + [second, fourth]:
            check(status_of(get_on(s)) == 200, "a connection other than the heaviest's closed")
        # The refusal is counted with HTTP's, and writes no audit record (net has none).
        metrics = get_on(second, b"/metrics", b"Cookie: " + h.cookie.encode() + b"\r\n")
        m = re.search(rb'cctvhub_http_refused_total\{code="503",reason="too_many_connections"\} (\d+)',
                      metrics)
        check(m and int(m.group(1)) == 1, metrics[-3000:])
        for s in socks:
            s.close()
        h.stop()
    finally:
        for s in socks:
            s.close()
        h.cleanup()


if __name__ == "__main__":
    hub.main([
        test_malformed_request_line_is_400,
        test_slow_client_gets_408,
        test_body_over_limit_is_413,
        test_long_target_is_414,
        test_big_head_or_many_headers_is_431,
        test_chunked_upload_is_501,
        test_unknown_http_version_is_505,
        test_keep_alive_and_pipelining_answer_in_order,
        test_http10_closes_after_answer,
        test_wrong_method_is_405_with_allow,
        test_bad_json_body_is_400_naming_the_problem,
        test_one_address_cannot_hold_every_connection,
    ])
