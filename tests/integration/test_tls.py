"""HTTPS on the hub's HTTP listener, against independent peers: openssl s_client (protocol
versions, refused ciphers, the chain, ALPN), curl (HSTS, Secure cookies, client
certificates), Python's ssl; API keys bound to an agency's client certificate (both needed,
either alone refused and audited); wrong, expired, revoked and unknown client certificates
refused at the handshake with the reason audited; half-open handshakes, random bytes and
truncated records closing only their connection; the certificate reloaded on SIGHUP without
dropping an open connection; the plaintext rule."""

import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
import hub  # noqa: E402
from hub import Hub, check  # noqa: E402
from pki import Pki  # noqa: E402


def make_pki():
    p = Pki()
    p.issue("server", "server")
    p.issue("police-112")
    p.issue("fire-119")
    p.issue("expired", start="20200101000000Z", end="20200102000000Z")
    p.issue("revoked")
    p.revoke("revoked")
    other = Pki(name="unknown-ca")
    other.issue("stranger")
    return p, other


def tls_env(p, client_ca=True, extra=None):
    e = {"CCTVHUB_TLS_CERT": p.chain("server"), "CCTVHUB_TLS_KEY": p.path("server.key"),
         "CCTVHUB_RTSPS_LISTEN": "none", "CCTVHUB_TLS_HANDSHAKE_TIMEOUT_MS": "700",
         "CCTVHUB_AUDIT_REFUSAL_INTERVAL_MS": "200"}
    if client_ca:
        e["CCTVHUB_TLS_CLIENT_CA"] = p.ca
        e["CCTVHUB_TLS_CLIENT_CRL"] = p.path("ca.crl")
    e.update(extra or {})
    return e


# A request the hub answers and then closes: s_client reads the session ticket (TLS 1.3 sends
# it after the handshake) and the answer, then ends.
GET_CLOSE = b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"


def s_client(port, *args, stdin=b"Q\n"):
    r = subprocess.run(["openssl", "s_client", "-connect", "127.0.0.1:%d" % port] + list(args),
                       input=stdin, capture_output=True, timeout=20)
    return r.returncode, (r.stdout + r.stderr).decode("utf-8", "replace")


def curl(port, path, *args):
    r = subprocess.run(["curl", "-sS", "-i", "--max-time", "10"] + list(args)
                       + ["https://127.0.0.1:%d%s" % (port, path)], capture_output=True,
                       timeout=30)
    return r.returncode, r.stdout.decode("utf-8", "replace"), r.stderr.decode()


def audit(h, action):
    _, page = h.json("GET", "/api/v1/audit?action=%s&limit=1000" % action, expect=200)
    return page["items"]


def reasons_within(h, action, want, wait_s=10):
    """Whether every reason in want is on the record for action within wait_s: as a record's
    reason, or counted in a summary's reasons (which keep their first 40-odd bytes)."""
    deadline = time.time() + wait_s
    while True:
        seen = set()
        for r in audit(h, action):
            d = r["details"]
            if "reason" in d:
                seen.add(d["reason"])
            seen.update(d.get("reasons", {}).keys())
        found = all(any(w.startswith(x) and len(x) >= 32 or w == x for x in seen) for w in want)
        if found or time.time() > deadline:
            return found
        time.sleep(0.3)


def test_https_speaks_tls12_and_13_only_with_modern_suites():
    p, _ = make_pki()
    h = Hub(env=tls_env(p, client_ca=False), ca=p.ca)
    try:
        port = h.port
        rc, out = s_client(port, "-CAfile", p.ca, "-verify_return_error", "-alpn", "http/1.1")
        check(rc == 0 and "Verify return code: 0 (ok)" in out, out[-1500:])
        check("TLSv1.3" in out and "ALPN protocol: http/1.1" in out, out[-1500:])
        check("CN = test-ca" in out, "the chain ends at the test CA: " + out[:1500])
        rc, out = s_client(port, "-CAfile", p.ca, "-tls1_2")
        check(rc == 0 and "Protocol  : TLSv1.2" in out and "ECDHE" in out, out[-1500:])
        for old in ("-tls1_1", "-tls1"):
            rc, out = s_client(port, "-CAfile", p.ca, old, "-cipher", "DEFAULT@SECLEVEL=0")
            check(rc != 0 and "Cipher is (NONE)" in out, "%s accepted: %s" % (old, out[-800:]))
        # Suites without forward secrecy or without AEAD are refused on TLS 1.2.
        for weak in ("AES128-SHA", "ECDHE-ECDSA-AES128-SHA", "AES256-GCM-SHA384"):
            rc, out = s_client(port, "-CAfile", p.ca, "-tls1_2", "-cipher", weak)
            check(rc != 0, "%s accepted: %s" % (weak, out[-800:]))
        # Resumption by ticket: a second connection with the first's session is resumed.
        sess = os.path.join(p.dir, "session.pem")
        rc, out = s_client(port, "-CAfile", p.ca, "-sess_out", sess, "-ign_eof", stdin=GET_CLOSE)
        check(rc == 0 and os.path.getsize(sess) > 0, out[-800:])
        rc, out = s_client(port, "-CAfile", p.ca, "-sess_in", sess, "-ign_eof", stdin=GET_CLOSE)
        check(rc == 0 and "Reused, TLSv1.3" in out, "not resumed: " + out[-1500:])
        # Without the CA the chain does not verify.
        rc, out = s_client(port, "-verify_return_error", "-CAfile", "/dev/null")
        check(rc != 0, out[-800:])

        # curl: the answer over TLS carries HSTS; the session cookie is Secure.
        rc, out, err = curl(port, "/api/v1/health", "--cacert", p.ca)
        check(rc == 0 and out.startswith("HTTP/1.1 200"), (rc, out, err))
        check("Strict-Transport-Security: max-age=31536000" in out, out)
        rc, out, err = curl(port, "/api/v1/session", "--cacert", p.ca, "-H",
                            "Content-Type: application/json", "--data",
                            json.dumps({"username": "admin", "password": hub.ADMIN_PASSWORD}))
        cookie = [ln for ln in out.splitlines() if ln.lower().startswith("set-cookie:")]
        check(cookie and "; Secure" in cookie[0] and "HttpOnly" in cookie[0], out)
        rc, out, err = curl(port, "/api/v1/health")
        check(rc == 60, "an unknown CA must fail: %d %s" % (rc, err))
        _, _, body = h.request("GET", "/metrics")
        check(re.search(r'cctvhub_listener_tls\{listener="http",address="[^"]+"\} 1',
                        body.decode()), body.decode()[-1500:])
        # Plain HTTP to the HTTPS port gets no answer, and the hub goes on.
        raw = socket.create_connection(("127.0.0.1", port), timeout=5)
        raw.sendall(b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\n\r\n")
        try:
            answer = raw.recv(100)
        except ConnectionResetError:
            answer = b""
        check(not answer.startswith(b"HTTP"), "plaintext answered: %r" % answer)
        raw.close()
        h.json("GET", "/api/v1/health", expect=200)
        h.stop()
    finally:
        h.cleanup()


def test_api_key_bound_to_a_client_certificate_needs_both():
    p, other = make_pki()
    h = Hub(env=tls_env(p), ca=p.ca)
    try:
        port = h.port
        _, a = h.json("POST", "/api/v1/agencies", {"name": "서울경찰청 112", "kind": "user",
                                                   "level": "city", "type": "police-112"},
                      expect=201)
        bad = h.json("POST", "/api/v1/apikeys", {"agency_id": a["id"], "tls_key": "sha256:xyz"})
        check(bad[0] == 400 and bad[1]["error"]["field"] == "tls_key", bad)
        _, k = h.json("POST", "/api/v1/apikeys", {"agency_id": a["id"],
                                                  "tls_key": p.spki("police-112")}, expect=201)
        check(k["tls_key"] == p.spki("police-112"), k)
        auth = ["-H", "Authorization: Bearer " + k["key"]]
        mine = ["--cert", p.path("police-112.crt"), "--key", p.path("police-112.key")]
        ca = ["--cacert", p.ca]
        rc, out, _ = curl(port, "/api/v1/session", *(ca + auth + mine))
        check(out.startswith("HTTP/1.1 200") and "apikey:%d" % k["id"] in out, out)
        # The key alone: refused, saying why.
        rc, out, _ = curl(port, "/api/v1/session", *(ca + auth))
        check(out.startswith("HTTP/1.1 401") and "needs its agency's client certificate" in out,
              out)
        # Another agency's valid certificate with this key: refused.
        fire = ["--cert", p.path("fire-119.crt"), "--key", p.path("fire-119.key")]
        rc, out, _ = curl(port, "/api/v1/session", *(ca + auth + fire))
        check(out.startswith("HTTP/1.1 401") and "not the one this API key is bound to" in out,
              out)
        # The certificate alone: no credential.
        rc, out, _ = curl(port, "/api/v1/session", *(ca + mine))
        check(out.startswith("HTTP/1.1 401"), out)
        # Refusals of one address: the first at once, the rest summed up after the interval.
        want = ["this API key needs its agency's client certificate",
                "the client certificate is not the one this API key is bound to"]
        check(reasons_within(h, "auth.denied", want), audit(h, "auth.denied"))

        # Certificates the handshake refuses: expired, revoked, of an unknown CA.
        for name, pk, why in (("expired", p, "certificate has expired"),
                              ("revoked", p, "certificate revoked"),
                              ("stranger", other, "unable to get local issuer certificate")):
            rc, out, err = curl(port, "/api/v1/health", "--cacert", p.ca, "--cert",
                                pk.path(name + ".crt"), "--key", pk.path(name + ".key"))
            check(rc != 0 and not out, "%s: %d %s %s" % (name, rc, out, err))
            check("alert" in err.lower(), "%s: curl says %s" % (name, err))
        want = ["certificate has expired", "certificate revoked",
                "unable to get local issuer certificate"]
        check(reasons_within(h, "tls.refuse", want), audit(h, "tls.refuse"))
        status, _, body = h.request("GET", "/metrics")
        text = body.decode()
        got = re.search(r'cctvhub_http_tls_handshake_failures_total\{reason="failed"\} (\d+)', text)
        check(got and int(got.group(1)) >= 3, text[-2000:])
        h.stop()
    finally:
        h.cleanup()


def test_half_open_handshakes_and_garbage_close_only_their_connection():
    p, _ = make_pki()
    # One address may hold them all here: the handshake deadline is what is tested (the
    # per-address cap, 64 by default, would close most of them at once).
    h = Hub(env=tls_env(p, client_ca=False, extra={"CCTVHUB_HTTP_MAX_CONNECTIONS_PER_ADDR": "0"}),
            ca=p.ca)
    try:
        port = h.port
        # 200 connections that start a handshake and never finish it (a record header that
        # promises more than comes).
        half = []
        for _ in range(200):
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            s.sendall(b"\x16\x03\x01\x02\x00\x01")
            half.append(s)
        # Meanwhile a whole client is served.
        h.json("GET", "/api/v1/health", expect=200)
        rc, out, err = curl(port, "/api/v1/health", "--cacert", p.ca)
        check(out.startswith("HTTP/1.1 200"), (rc, out, err))
        # The handshake deadline (700 ms here) closes the half-open ones.
        time.sleep(2.0)
        closed = 0
        for s in half:
            s.settimeout(2)
            try:
                closed += s.recv(10) == b""
            except (ConnectionResetError, socket.timeout):
                closed += 1
            s.close()
        check(closed == 200, "%d of 200 half-open connections closed" % closed)
        # Random bytes, and a truncated record, close only their connection.
        for junk in (os.urandom(4096), b"\x17\x03\x03\x40\x00" + os.urandom(100),
                     b"\x16\x03\x03\x00\x05\x01"):
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            s.sendall(junk)
            s.shutdown(socket.SHUT_WR)
            s.settimeout(5)
            data = b""
            try:
                while True:
                    b = s.recv(4096)
                    if not b:
                        break
                    data += b
            except ConnectionResetError:
                pass
            s.close()
            check(not data.startswith(b"HTTP"), data[:100])
            h.json("GET", "/api/v1/health", expect=200)
        status, _, body = h.request("GET", "/metrics")
        got = re.search(r'cctvhub_http_tls_handshake_failures_total\{reason="timeout"\} (\d+)',
                        body.decode())
        check(got and int(got.group(1)) >= 200, body.decode()[-1500:])
        h.stop()
    finally:
        h.cleanup()


def test_certificate_reload_keeps_open_connections():
    p, _ = make_pki()
    live = os.path.join(p.dir, "live")
    os.makedirs(live)
    shutil.copy(p.chain("server"), os.path.join(live, "hub.crt"))
    shutil.copy(p.path("server.key"), os.path.join(live, "hub.key"))
    env = tls_env(p, client_ca=False, extra={"CCTVHUB_TLS_CERT": os.path.join(live, "hub.crt"),
                                             "CCTVHUB_TLS_KEY": os.path.join(live, "hub.key")})
    h = Hub(env=env, ca=p.ca)
    try:
        first = p.serial("server")
        # A keep-alive connection open across the reload.
        c = h.conn()
        c.request("GET", "/api/v1/health")
        r = c.getresponse()
        check(r.status == 200 and r.read(), "first answer")
        p.issue("server2", "server")
        check(p.serial("server2") != first, "a new serial")
        # A session ticket from before the reload.
        sess = os.path.join(p.dir, "session.pem")
        rc, out = s_client(h.port, "-CAfile", p.ca, "-sess_out", sess, "-ign_eof", stdin=GET_CLOSE)
        check(rc == 0, out[-800:])
        # A broken file first: the reload is refused and the old certificate stays.
        with open(os.path.join(live, "hub.crt"), "w") as f:
            f.write("not a certificate\n")
        h.proc.send_signal(signal.SIGHUP)
        time.sleep(1.0)
        check("reload refused" in h.stderr(), h.stderr()[-2000:])
        shutil.copy(p.chain("server2"), os.path.join(live, "hub.crt"))
        shutil.copy(p.path("server2.key"), os.path.join(live, "hub.key"))
        h.proc.send_signal(signal.SIGHUP)
        deadline = time.time() + 10
        while "TLS certificates reloaded" not in h.stderr() and time.time() < deadline:
            time.sleep(0.1)
        check("TLS certificates reloaded" in h.stderr(), h.stderr()[-2000:])
        # The open connection goes on with its session.
        c.request("GET", "/api/v1/health")
        r = c.getresponse()
        check(r.status == 200 and r.read(), "the open connection was dropped")
        c.close()
        # The ticket keys are the process's: a session from before the reload resumes.
        rc, out = s_client(h.port, "-CAfile", p.ca, "-sess_in", sess, "-ign_eof", stdin=GET_CLOSE)
        check(rc == 0 and "Reused, TLSv1.3" in out, "not resumed after the reload: " + out[-1500:])
        # A new one sees the new certificate.
        rc, out = s_client(h.port, "-CAfile", p.ca, "-showcerts")
        cert = re.search(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----", out, re.S)
        got = subprocess.run(["openssl", "x509", "-noout", "-serial"], input=cert.group(0).encode(),
                             capture_output=True).stdout.decode().strip().split("=")[1]
        check(got == p.serial("server2"), "served serial %s, wanted %s" % (got, p.serial("server2")))
        h.stop()
    finally:
        h.cleanup()


def test_plaintext_beyond_loopback_needs_allow_plaintext():
    code, _, err = hub.run(["serve", "--data-dir", "/tmp/cctvhub-plain-none", "--http",
                            "0.0.0.0:0"], timeout=30)
    check(code == 3 and "would serve plaintext beyond this machine" in err, (code, err))
    token = "metrics-token-for-the-plaintext-test-0123456789"
    env = dict(os.environ, CCTVHUB_HTTP_ALLOW_PLAINTEXT="1", CCTVHUB_METRICS_TOKEN=token)
    proc = subprocess.Popen([hub.BIN, "serve", "--data-dir", "/tmp/cctvhub-plain-allowed",
                             "--http", "0.0.0.0:0", "--rtsp", "127.0.0.1:0"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    try:
        text = b""
        deadline = time.time() + 30
        while b"msg=listening" not in text and time.time() < deadline:
            line = proc.stderr.readline()
            if not line:
                break
            text += line
        check(b"msg=listening" in text, text.decode())
        check(b"plaintext beyond this machine" in text and b"listener=http" in text,
              text.decode())
        # ... and /metrics says so, for an alert.
        port = int(re.search(rb"msg=listening addr=0\.0\.0\.0:(\d+)", text).group(1))
        r = subprocess.run(["curl", "-sS", "-H", "Authorization: Bearer " + token,
                            "http://127.0.0.1:%d/metrics" % port], capture_output=True, text=True)
        check('cctvhub_listener_plaintext_exposed{listener="http",address="0.0.0.0:0"} 1'
              in r.stdout, r.stdout[-2000:])
        check('cctvhub_listener_tls{listener="http",address="0.0.0.0:0"} 0' in r.stdout,
              r.stdout[-2000:])
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
        shutil.rmtree("/tmp/cctvhub-plain-allowed", ignore_errors=True)


if __name__ == "__main__":
    hub.main([
        test_https_speaks_tls12_and_13_only_with_modern_suites,
        test_api_key_bound_to_a_client_certificate_needs_both,
        test_half_open_handshakes_and_garbage_close_only_their_connection,
        test_certificate_reload_keeps_open_connections,
        test_plaintext_beyond_loopback_needs_allow_plaintext,
    ])
