"""RTSPS (issue 17): the relay's viewers over TLS, against peers we did not write. A test CA and
the hub's server certificate are made with the openssl CLI; the hub serves RTSP on rtsp.listen
and RTSPS on rtsps.listen, and the grants' rtsp_url is the rtsps:// one. Viewers: ffprobe
(Debian's ffmpeg 5.1 checks no certificate for rtsps://), GStreamer's rtspsrc checking the
certificate against the CA (and refusing it without), Python's ssl module for a raw viewer and
for what no player does (plaintext and random bytes to the TLS port, truncated records,
handshakes left half open, more connections from one address than the door lets wait, a client
certificate of another CA), and openssl s_client reading the certificate served before and
after a SIGHUP reload.

Everything is started here on free ports of 127.0.0.1 and stopped at the end. Environment:
CH_RELAY_ONLY=name,name runs those cases only; CH_RELAY_VERBOSE=1 prints a failing case's
traceback and the end of the hub's log."""

import hashlib
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
import hub  # noqa: E402
from cameras import camsim, gi_python  # noqa: E402
from events import P, Site, playing, stop_everything, with_site  # noqa: E402
from hub import check, wait_for  # noqa: E402
from viewers import Rtsp, is_key, kill_spawned  # noqa: E402
from wsclient import Ws, ws_path  # noqa: E402

SUPPORT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support")
CLIENT_HELLO_HEAD = b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"  # a ClientHello begun


# ---- certificates (openssl CLI) -----------------------------------------------------------------

def openssl(*args):
    p = subprocess.run(["openssl"] + list(args), capture_output=True, text=True, timeout=60)
    check(p.returncode == 0, "openssl %s: %s" % (" ".join(args), p.stderr[-500:]))
    return p.stdout


class Pki:
    """A CA in a temporary directory and the certificates it signs (EC P-256)."""

    def __init__(self, name):
        self.dir = tempfile.mkdtemp(prefix="cctvhub-pki-")
        self.ca = os.path.join(self.dir, "ca.pem")
        self.ca_key = os.path.join(self.dir, "ca.key")
        openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                "-keyout", self.ca_key, "-out", self.ca, "-days", "2", "-subj", "/CN=" + name,
                "-addext", "basicConstraints=critical,CA:TRUE",
                "-addext", "keyUsage=critical,keyCertSign,cRLSign")

    def issue(self, name, serial, server=True):
        """A certificate for name (a server's for localhost and 127.0.0.1, or a client's) with
        that serial; returns (cert path, key path)."""
        key = os.path.join(self.dir, "%s-%x.key" % (name, serial))
        csr = os.path.join(self.dir, "%s-%x.csr" % (name, serial))
        cert = os.path.join(self.dir, "%s-%x.pem" % (name, serial))
        ext = os.path.join(self.dir, "%s-%x.ext" % (name, serial))
        with open(ext, "w") as f:
            if server:
                f.write("subjectAltName=DNS:localhost,IP:127.0.0.1\n"
                        "extendedKeyUsage=serverAuth\n")
            else:
                f.write("extendedKeyUsage=clientAuth\n")
            f.write("basicConstraints=CA:FALSE\n")
        openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                "-keyout", key, "-out", csr, "-subj", "/CN=" + name)
        openssl("x509", "-req", "-in", csr, "-CA", self.ca, "-CAkey", self.ca_key,
                "-set_serial", str(serial), "-days", "2", "-out", cert, "-extfile", ext)
        return cert, key

    def cleanup(self):
        shutil.rmtree(self.dir, ignore_errors=True)


def spki(cert):
    """"sha256:" and the hex SHA-256 of cert's DER SubjectPublicKeyInfo, computed here with
    openssl and hashlib (as the hub's `cctvhub tls fingerprint` should print it)."""
    pub = openssl("x509", "-in", cert, "-pubkey", "-noout")
    der = subprocess.run(["openssl", "pkey", "-pubin", "-outform", "der"], input=pub.encode(),
                         capture_output=True, check=True, timeout=30).stdout
    return "sha256:" + hashlib.sha256(der).hexdigest()


def served_serial(port):
    """The serial of the certificate the RTSPS port serves, as openssl s_client reads it."""
    p = subprocess.run(["openssl", "s_client", "-connect", "127.0.0.1:%d" % port,
                        "-servername", "localhost"], input="", capture_output=True, text=True,
                       timeout=30)
    m = re.search(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----", p.stdout, re.S)
    check(m, "s_client showed no certificate: %s" % (p.stdout + p.stderr)[-500:])
    out = subprocess.run(["openssl", "x509", "-noout", "-serial"], input=m.group(0),
                         capture_output=True, text=True, timeout=30).stdout
    return int(out.strip().split("=")[1], 16)


# ---- the site ---------------------------------------------------------------------------------

def rtsps_site(fn, cert, key, env=None):
    """with_site with the hub's certificate: HTTP stays plaintext on loopback (the harness
    speaks HTTP), the relay listens for RTSPS on a port the kernel picks."""
    e = {"CCTVHUB_TLS_CERT": cert, "CCTVHUB_TLS_KEY": key, "CCTVHUB_HTTP_TLS": "0",
         "CCTVHUB_RTSPS_LISTEN": "127.0.0.1:0", "CCTVHUB_RELAY_LOOPS": "2"}
    e.update(env or {})

    def run(s):
        m = re.search(r'msg="relay listening" rtsp=\S+ rtsps=127\.0\.0\.1:(\d+)', s.h.stderr())
        check(m, "the relay does not say where RTSPS listens:\n" + s.h.stderr()[-2000:])
        s.tls_port = int(m.group(1))
        fn(s)

    with_site(run, env=e)


def open_event(s):
    """An event at P granting every camera; each grant's rtsp_url is the rtsps:// one."""
    _, ev = s.agency_call("POST", "/api/v1/events", {
        "service": "112-center", "location": {"lat": P[0], "lon": P[1]},
        "incident": "112-2026-17", "reason": "rtsps test", "duration_s": 600}, expect=201)
    grants = {g["camera_id"]: g for g in ev["grants"]}
    for cid, g in grants.items():
        want = "rtsps://127.0.0.1:%d/cameras/%d?token=%s" % (s.tls_port, cid, g["token"])
        check(g["rtsp_url"] == want, "grant rtsp_url %s, wanted %s" % (g["rtsp_url"], want))
    return grants


def camera_playing(s, name):
    cid = s.camera(name, camsim().url("rtsps-" + name))
    grants = open_event(s)
    wait_for(lambda: playing(s, cid), 20, "camera pre-warmed")
    return cid, grants[cid]["rtsp_url"]


def client_context(ca, cert=None, key=None):
    ctx = ssl.create_default_context(cafile=ca)
    if cert:
        ctx.load_cert_chain(cert, key)
    return ctx


class RtspTls(Rtsp):
    """The raw viewer of viewers.py inside TLS (the certificate checked against ctx's CA)."""

    def __init__(self, port, ctx, timeout=15.0, source=None):
        super().__init__(port, timeout=timeout, source=source)
        self.s = ctx.wrap_socket(self.s, server_hostname="localhost")


def closed_within(sock, seconds):
    """Reads sock until the relay closes it; returns (seconds it took, bytes read), or
    (None, bytes) when it is still open after seconds."""
    t0 = time.time()
    got = b""
    sock.settimeout(0.2)
    while time.time() - t0 < seconds:
        try:
            b = sock.recv(65536)
        except socket.timeout:
            continue
        except OSError:
            return time.time() - t0, got  # a reset
        if not b:
            return time.time() - t0, got
        got += b
    return None, got


def keeps_streaming(v, frames=25, timeout=5):
    before = v.frames
    return v.read_media(frames=before + frames, timeout=timeout)


def tls_failures(s):
    _, _, data = s.h.request("GET", "/metrics")
    return {m.group(1): int(m.group(2)) for m in re.finditer(
        r'^cctvhub_rtsps_tls_handshake_failures_total\{reason="([a-z]+)"\} (\d+)$',
        data.decode(), re.M)}


def handshake_raw(port, ctx):
    """A TLS handshake driven through memory BIOs over a plain socket, so that raw bytes may
    follow it; returns (socket, SSLObject, outgoing BIO)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inc, out, server_hostname="localhost")
    while True:
        try:
            obj.do_handshake()
            break
        except ssl.SSLWantReadError:
            data = out.read()
            if data:
                sock.sendall(data)
            b = sock.recv(65536)
            check(b, "the relay closed during the handshake")
            inc.write(b)
    data = out.read()
    if data:
        sock.sendall(data)
    return sock, obj, out


# ---- the cases --------------------------------------------------------------------------------

def test_ffprobe_gstreamer_and_a_raw_viewer_decode_through_the_grants_rtsps_url():
    pki = Pki("cctvhub test CA")
    cert, key = pki.issue("localhost", 0x1001)

    def run(s):
        cid, url = camera_playing(s, "decode")
        # ffprobe decodes through the rtsps:// URL. Debian's ffmpeg (5.1) opens the TLS
        # connection of rtsps:// without the demuxer's options, so -tls_verify and -ca_file do
        # not reach it and it checks no certificate: rtspsrc, the raw viewer and s_client
        # below do.
        p = subprocess.run(["ffprobe", "-v", "error", "-rtsp_transport", "tcp", "-show_entries",
                            "stream=codec_name,width,height", "-of", "compact=p=0:nk=1", url],
                           capture_output=True, text=True, timeout=60)
        check(p.returncode == 0 and p.stdout.strip() == "h264|1920|1080",
              "ffprobe over RTSPS: exit %d, %r: %s" % (p.returncode, p.stdout, p.stderr[-400:]))
        # GStreamer's rtspsrc with a GTlsDatabase of the CA, every validation flag on.
        gst = [gi_python(), os.path.join(SUPPORT, "gst_tls_view.py"), url, "50"]
        p = subprocess.run(gst + ["--ca", pki.ca], capture_output=True, text=True, timeout=90)
        check(p.returncode == 0, "rtspsrc over RTSPS: exit %d: %s"
              % (p.returncode, (p.stdout + p.stderr)[-600:]))
        p = subprocess.run(gst + ["--timeout", "20"], capture_output=True, text=True,
                           timeout=60)
        check(p.returncode != 0 and re.search(r"certificate|TLS|handshake", p.stderr, re.I),
              "rtspsrc without the CA: exit %d: %s" % (p.returncode, p.stderr[-400:]))
        # A raw viewer: Content-Base says rtsps://, PLAY starts at the cached keyframe.
        v = RtspTls(s.tls_port, client_context(pki.ca))
        try:
            status, h = v.describe(url)
            base = "rtsps://127.0.0.1:%d/cameras/%d/" % (s.tls_port, cid)
            check(status == 200 and h.get("content-base") == base,
                  "DESCRIBE %d, Content-Base %r, wanted %r" % (status, h.get("content-base"),
                                                               base))
            check(v.s.version() in ("TLSv1.2", "TLSv1.3"), v.s.version())
            v2 = RtspTls(s.tls_port, client_context(pki.ca))
            try:
                status, _ = v2.play(url)
                check(status == 200, "PLAY %d" % status)
                check(v2.read_media(frames=25, timeout=10), "no frames over RTSPS")
                first = []
                for _, _, marker, types in v2.packets:
                    first += types
                    if marker:
                        break
                check(is_key(first, False), "the first access unit holds %s" % first)
            finally:
                v2.close()
        finally:
            v.close()
        # The plain port still serves (rtsp.allow_plaintext on loopback).
        v = Rtsp(s.rtsp_port)
        try:
            status, _ = v.play(url.replace("rtsps://127.0.0.1:%d" % s.tls_port,
                                           "rtsp://127.0.0.1:%d" % s.rtsp_port))
            check(status == 200 and v.read_media(frames=5, timeout=10), "plain RTSP: %d" % status)
        finally:
            v.close()
        # Every viewer that played went on the record, start and end.
        wait_for(lambda: s.audit_total("view.end") >= s.audit_total("view.start") >= 4, 15,
                 "view records")

    try:
        rtsps_site(run, cert, key)
    finally:
        pki.cleanup()


def test_plaintext_random_bytes_and_a_foreign_client_certificate_close_only_that_connection():
    pki, rogue = Pki("cctvhub test CA"), Pki("someone else's CA")
    cert, key = pki.issue("localhost", 0x1001)
    rogue_cert, rogue_key = rogue.issue("agency", 7, server=False)

    def run(s):
        cid, url = camera_playing(s, "garbage")
        v = RtspTls(s.tls_port, client_context(pki.ca))
        try:
            check(v.play(url)[0] == 200 and v.read_media(frames=10, timeout=10), "no viewer")
            before = tls_failures(s)
            # Plain RTSP to the TLS port: closed, never answered in clear.
            x = socket.create_connection(("127.0.0.1", s.tls_port), timeout=5)
            x.sendall(b"OPTIONS * RTSP/1.0\r\nCSeq: 1\r\n\r\n")
            took, got = closed_within(x, 3)
            x.close()
            check(took is not None and b"RTSP/1.0" not in got,
                  "plain RTSP on the RTSPS port: closed after %s s, got %r" % (took, got[:80]))
            check(keeps_streaming(v), "the viewer stopped after the plain RTSP connection")
            time.sleep(0.3)  # refusals of one address: one record per interval (100 ms here)
            # Random bytes.
            x = socket.create_connection(("127.0.0.1", s.tls_port), timeout=5)
            x.sendall(os.urandom(4096))
            took, got = closed_within(x, 3)
            x.close()
            check(took is not None, "random bytes: the connection stayed open")
            check(keeps_streaming(v), "the viewer stopped after the random bytes")
            time.sleep(0.3)
            # A client certificate of a CA the hub does not know (tls.client_ca is ours).
            refused = False
            try:
                y = RtspTls(s.tls_port, client_context(pki.ca, rogue_cert, rogue_key), timeout=5)
                try:
                    status, _, _ = y.request("OPTIONS", "*")
                except (ssl.SSLError, EOFError, OSError):
                    refused = True
                finally:
                    y.close()
            except (ssl.SSLError, OSError):
                refused = True
            check(refused, "a client certificate of an unknown CA was let in")
            check(keeps_streaming(v), "the viewer stopped after the refused certificate")
            after = wait_for(lambda: (lambda f: f if f.get("failed", 0) >= before.get(
                "failed", 0) + 3 else None)(tls_failures(s)), 5, "3 failed handshakes counted")
            check(after.get("timeout", 0) == before.get("timeout", 0), after)
            # Each failure is a refusal on the record, naming the listener and OpenSSL's reason.
            recs = wait_for(lambda: (lambda r: r if len(r) >= 3 else None)(
                [x for x in s.audit("tls.refuse")
                 if x.get("details", {}).get("listener") == "rtsps"]), 10, "tls.refuse records")
            reasons = [r["details"].get("reason", "") for r in recs]
            check(all(r["outcome"] == "denied" for r in recs), recs)
            check(any(re.search(r"certificate|unknown ca|issuer", x, re.I) for x in reasons),
                  "no refusal names the certificate: %s" % reasons)
            check(s.healthy(), "the hub is not healthy")
        finally:
            v.close()

    try:
        rtsps_site(run, cert, key, env={"CCTVHUB_TLS_CLIENT_CA": pki.ca})
    finally:
        pki.cleanup()
        rogue.cleanup()


def test_half_open_handshakes_do_not_stop_a_new_viewer_and_are_closed_at_their_deadline():
    pki = Pki("cctvhub test CA")
    cert, key = pki.issue("localhost", 0x1001)
    n = 200

    def run(s):
        cid, url = camera_playing(s, "halfopen")
        before = tls_failures(s)
        held = []
        t0 = time.time()
        for i in range(n):
            x = socket.create_connection(("127.0.0.1", s.tls_port), timeout=5)
            if i % 2:
                x.sendall(CLIENT_HELLO_HEAD)  # a ClientHello begun, never finished
            held.append(x)
        # A viewer starts meanwhile, at once.
        started = time.time()
        v = RtspTls(s.tls_port, client_context(pki.ca))
        try:
            check(v.play(url)[0] == 200, "PLAY refused with %d half-open handshakes" % n)
            check(v.read_media(frames=5, timeout=10), "no frames")
            took = time.time() - started
            check(took < 3, "the viewer took %.1f s to play beside the half-open ones" % took)
            # The handshake deadline (tls.handshake_timeout_ms = 1000 here) closes them all,
            # long before the door's auth timeout (10 s).
            open_ = 0
            for x in held:
                t, _ = closed_within(x, max(0.1, t0 + 4 - time.time()))
                open_ += t is None
            check(open_ == 0, "%d of %d half-open handshakes still open 4 s on" % (open_, n))
            f = wait_for(lambda: (lambda f: f if f.get("timeout", 0) >= before.get(
                "timeout", 0) + n else None)(tls_failures(s)), 5, "%d timeouts counted" % n)
            check(f.get("failed", 0) == before.get("failed", 0), f)
            check(keeps_streaming(v), "the viewer stopped")
        finally:
            v.close()
            for x in held:
                x.close()

    try:
        rtsps_site(run, cert, key, env={"CCTVHUB_TLS_HANDSHAKE_TIMEOUT_MS": "1000",
                                        "CCTVHUB_RELAY_MAX_UNAUTHORIZED": "1024",
                                        "CCTVHUB_RELAY_MAX_UNAUTHORIZED_PER_ADDR": "1024"})
    finally:
        pki.cleanup()


def test_grants_name_rtsps_public_url_and_never_the_plain_one():
    pki = Pki("cctvhub test CA")
    cert, key = pki.issue("localhost", 0x1001)

    def run(s):
        cid = s.camera("public", camsim().url("rtsps-public"))
        _, ev = s.agency_call("POST", "/api/v1/events", {
            "service": "112-center", "location": {"lat": P[0], "lon": P[1]},
            "incident": "112-2026-18", "reason": "rtsps test", "duration_s": 600}, expect=201)
        g = ev["grants"][0]
        want = "rtsps://cctv.example.go.kr:322/cameras/%d?token=%s" % (cid, g["token"])
        check(g["rtsp_url"] == want, "grant rtsp_url %s, wanted %s" % (g["rtsp_url"], want))

    try:
        rtsps_site(run, cert, key, env={
            "CCTVHUB_RTSP_PUBLIC_URL": "rtsp://cctv.example.go.kr:8554",
            "CCTVHUB_RTSPS_PUBLIC_URL": "rtsps://cctv.example.go.kr:322"})
    finally:
        pki.cleanup()


def test_the_door_counts_rtsps_connections_before_their_handshake():
    pki = Pki("cctvhub test CA")
    cert, key = pki.issue("localhost", 0x1001)
    per_addr = 10

    def refused(s):
        _, _, data = s.h.request("GET", "/metrics")
        m = re.search(r'^cctvhub_relay_refused_total\{reason="max_unauthorized_per_addr"\} (\d+)$',
                      data.decode(), re.M)
        return int(m.group(1)) if m else 0

    def run(s):
        cid, url = camera_playing(s, "door")
        before = refused(s)
        held = [socket.create_connection(("127.0.0.1", s.tls_port), timeout=5)
                for _ in range(per_addr + 5)]
        try:
            # The address's cap (relay.max_unauthorized_per_addr) closes the five beyond it at
            # once, before any handshake is spent on them; the first ten wait for theirs.
            closed = 0
            for x in held:
                t, _ = closed_within(x, 0.3)
                closed += t is not None
            check(closed == 5, "%d of %d closed at the door, wanted 5" % (closed, len(held)))
            wait_for(lambda: refused(s) == before + 5, 5, "5 refusals counted")
            # A viewer from another address plays meanwhile.
            v = RtspTls(s.tls_port, client_context(pki.ca), source="127.0.0.2")
            try:
                check(v.play(url)[0] == 200 and v.read_media(frames=5, timeout=10),
                      "no viewer beside the door's waiting connections")
            finally:
                v.close()
        finally:
            for x in held:
                x.close()

    try:
        rtsps_site(run, cert, key, env={
            "CCTVHUB_RELAY_MAX_UNAUTHORIZED_PER_ADDR": str(per_addr)})
    finally:
        pki.cleanup()


def test_truncated_records_close_only_that_connection():
    pki = Pki("cctvhub test CA")
    cert, key = pki.issue("localhost", 0x1001)

    def run(s):
        cid, url = camera_playing(s, "truncated")
        ctx = client_context(pki.ca)
        v = RtspTls(s.tls_port, ctx)
        try:
            check(v.play(url)[0] == 200 and v.read_media(frames=10, timeout=10), "no viewer")
            # A real ClientHello cut in half, then the end of the stream.
            inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
            obj = ctx.wrap_bio(inc, out, server_hostname="localhost")
            try:
                obj.do_handshake()
            except ssl.SSLWantReadError:
                pass
            hello = out.read()
            x = socket.create_connection(("127.0.0.1", s.tls_port), timeout=5)
            x.sendall(hello[:len(hello) // 2])
            x.shutdown(socket.SHUT_WR)
            took, _ = closed_within(x, 3)
            x.close()
            check(took is not None, "a ClientHello cut short: the connection stayed open")
            # After the handshake: an application record announcing 16 KiB, 100 bytes of it.
            x, _, _ = handshake_raw(s.tls_port, ctx)
            x.sendall(b"\x17\x03\x03\x40\x00" + os.urandom(100))
            x.shutdown(socket.SHUT_WR)
            took, _ = closed_within(x, 3)
            x.close()
            check(took is not None, "a record cut short: the connection stayed open")
            # A whole record of the right length that does not decrypt (bad MAC): closed at
            # once, without waiting for the peer's end.
            x, _, _ = handshake_raw(s.tls_port, ctx)
            x.sendall(b"\x17\x03\x03\x00\x40" + os.urandom(64))
            took, _ = closed_within(x, 3)
            x.close()
            check(took is not None, "a record that does not decrypt: the connection stayed open")
            check(keeps_streaming(v), "the viewer stopped")
            check(s.healthy(), "the hub is not healthy")
        finally:
            v.close()

    try:
        rtsps_site(run, cert, key)
    finally:
        pki.cleanup()


def test_sighup_reload_keeps_the_viewer_and_new_viewers_get_the_new_certificate():
    pki = Pki("cctvhub test CA")
    old_cert, old_key = pki.issue("localhost", 0x1001)
    new_cert, new_key = pki.issue("localhost", 0x2002)
    live_cert = os.path.join(pki.dir, "hub.pem")
    live_key = os.path.join(pki.dir, "hub.key")
    shutil.copy(old_cert, live_cert)
    shutil.copy(old_key, live_key)

    def run(s):
        cid, url = camera_playing(s, "reload")
        check(served_serial(s.tls_port) == 0x1001, "the first certificate is not served")
        v = RtspTls(s.tls_port, client_context(pki.ca))
        try:
            check(v.play(url)[0] == 200 and v.read_media(frames=10, timeout=10), "no viewer")
            check(int(v.s.getpeercert()["serialNumber"], 16) == 0x1001, v.s.getpeercert())
            # The renewed certificate and key replace the files (each by a rename), then
            # SIGHUP.
            for src, dst in ((new_cert, live_cert), (new_key, live_key)):
                shutil.copy(src, dst + ".new")
                os.replace(dst + ".new", dst)
            s.h.proc.send_signal(signal.SIGHUP)
            wait_for(lambda: "TLS certificates reloaded" in s.h.stderr(), 10, "the reload")
            check(served_serial(s.tls_port) == 0x2002, "the renewed certificate is not served")
            # The viewer that was watching keeps its session and its stream.
            check(keeps_streaming(v, frames=50, timeout=5), "the viewer stopped at the reload")
            w = RtspTls(s.tls_port, client_context(pki.ca))
            try:
                check(w.play(url)[0] == 200 and w.read_media(frames=10, timeout=10),
                      "no new viewer after the reload")
                check(int(w.s.getpeercert()["serialNumber"], 16) == 0x2002, w.s.getpeercert())
            finally:
                w.close()
            check(keeps_streaming(v), "the first viewer stopped")
        finally:
            v.close()

    try:
        rtsps_site(run, live_cert, live_key)
    finally:
        pki.cleanup()


def test_an_agency_bound_to_its_certificate_views_over_rtsps_with_it_only():
    pki = Pki("cctvhub test CA")
    cert, key = pki.issue("localhost", 0x1001)
    police_cert, police_key = pki.issue("police-112", 0x2001, server=False)
    fire_cert, fire_key = pki.issue("fire-119", 0x2002, server=False)

    def refusals(s, reason):
        return [r for r in s.audit("view.refuse")
                if r.get("details", {}).get("reason") == reason]

    def refused(s, status, reason, n_before):
        """The last refusal had status and reason, on the record as view.refuse naming the
        grant's agency."""
        check(status == 403, "wanted 403 %s, got %d" % (reason, status))
        recs = wait_for(lambda: (lambda r: r if len(r) > n_before else None)(
            refusals(s, reason)), 10, "a view.refuse record with reason " + reason)
        for r in recs:
            check(r["outcome"] == "denied" and r["details"].get("status") == 403
                  and r["details"].get("agency_id") == s.police
                  and r["actor"] == "agency:%d" % s.police, r)
        time.sleep(0.3)  # refusals of one address: one record per interval (100 ms here)

    def plays(s, url, ctx):
        v = RtspTls(s.tls_port, ctx)
        try:
            status, _ = v.play(url)
            return status == 200 and v.read_media(frames=10, timeout=10)
        finally:
            v.close()

    def rtsps_status(s, url, ctx):
        v = RtspTls(s.tls_port, ctx)
        try:
            return v.describe(url)[0]
        finally:
            v.close()

    def run(s):
        cid, url = camera_playing(s, "bound")
        # Not bound yet: any viewer with the token plays, with or without a certificate.
        check(plays(s, url, client_context(pki.ca)), "an unbound agency's viewer did not play")
        key_hex = spki(police_cert)
        _, a = s.h.json("PATCH", "/api/v1/agencies/%d" % s.police, {"tls_key": key_hex},
                        expect=200)
        check(a.get("tls_key") == key_hex, a)
        upd = [r for r in s.audit("agency.update") if r["details"].get("id") == s.police]
        check(upd and upd[0]["details"].get("tls_key") == key_hex,
              "the agency's audit record does not hold its key: %s" % upd[:1])
        # Not the hub's own fingerprint rule: an upper-case key or another form is refused.
        st, _, body = s.h.request("PATCH", "/api/v1/agencies/%d" % s.police,
                                  {"tls_key": key_hex.upper()})
        check(st == 400 and b"tls_key" in body, "an upper-case key: %d %r" % (st, body[:200]))
        # The agency's own certificate plays, over the grant's rtsps:// URL.
        wait_for(lambda: plays(s, url, client_context(pki.ca, police_cert, police_key)), 10,
                 "the agency's viewer with its certificate plays")
        # No certificate: 403 client_certificate_required, on the record.
        n = len(refusals(s, "client_certificate_required"))
        refused(s, rtsps_status(s, url, client_context(pki.ca)), "client_certificate_required", n)
        # Another agency's certificate of the same CA: 403 client_certificate_mismatch.
        n = len(refusals(s, "client_certificate_mismatch"))
        refused(s, rtsps_status(s, url, client_context(pki.ca, fire_cert, fire_key)),
                "client_certificate_mismatch", n)
        # Plain RTSP shows no certificate: refused the same way.
        v = Rtsp(s.rtsp_port)
        try:
            n = len(refusals(s, "client_certificate_required"))
            status, _ = v.describe(url.replace("rtsps://127.0.0.1:%d" % s.tls_port,
                                               "rtsp://127.0.0.1:%d" % s.rtsp_port))
        finally:
            v.close()
        refused(s, status, "client_certificate_required", n)
        # A browser's WebSocket shows none either: 403 before the upgrade, saying why.
        grant = open_event(s)[cid]
        n = len(refusals(s, "client_certificate_required"))
        ws = Ws(s.h.port, ws_path(grant))
        try:
            check(ws.status == 403 and b"client_certificate_required" in ws.body,
                  "WebSocket: %d %r" % (ws.status, ws.body[:200]))
        finally:
            ws.close()
        refused(s, 403, "client_certificate_required", n)
        # The binding lifted (null): a viewer without a certificate plays again.
        _, a = s.h.json("PATCH", "/api/v1/agencies/%d" % s.police, {"tls_key": None},
                        expect=200)
        check(a.get("tls_key") is None, a)
        wait_for(lambda: plays(s, url, client_context(pki.ca)), 10,
                 "a viewer without a certificate plays once the binding is lifted")
        check(s.healthy(), "the hub is not healthy")

    try:
        rtsps_site(run, cert, key, env={"CCTVHUB_TLS_CLIENT_CA": pki.ca})
    finally:
        pki.cleanup()


def wss_upgrade(port, path, ctx):
    """A WebSocket upgrade over TLS on the HTTP listener, as a browser's wss:// asks it;
    returns (status, the answer's bytes)."""
    sock = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=10),
                           server_hostname="localhost")
    try:
        sock.sendall(("GET %s HTTP/1.1\r\nHost: localhost:%d\r\nUpgrade: websocket\r\n"
                      "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                      "Sec-WebSocket-Version: 13\r\n\r\n" % (path, port)).encode())
        got = b""
        while b"\r\n\r\n" not in got:
            b = sock.recv(65536)
            if not b:
                break
            got += b
        if not got.startswith(b"HTTP/1.1 101"):
            sock.settimeout(2)
            try:
                while True:  # a refusal's body, until the hub closes
                    b = sock.recv(65536)
                    if not b:
                        break
                    got += b
            except (socket.timeout, ssl.SSLError, OSError):
                pass
        m = re.match(rb"HTTP/1\.1 (\d+)", got)
        return (int(m.group(1)) if m else 0), got
    finally:
        sock.close()


def test_a_bound_agencys_wss_viewer_without_its_certificate_is_refused():
    pki = Pki("cctvhub test CA")
    cert, key = pki.issue("localhost", 0x1001)
    police_cert, police_key = pki.issue("police-112", 0x2001, server=False)
    # HTTPS on the HTTP listener (the harness trusts the CA), client certificates asked for.
    s = Site(env={"CCTVHUB_TLS_CERT": cert, "CCTVHUB_TLS_KEY": key,
                  "CCTVHUB_TLS_CLIENT_CA": pki.ca, "CCTVHUB_RTSPS_LISTEN": "none"}, ca=pki.ca)
    try:
        cid = s.camera("wss", camsim().url("rtsps-wss"))
        s.h.json("PATCH", "/api/v1/agencies/%d" % s.police, {"tls_key": spki(police_cert)},
                 expect=200)
        _, grants = s.open()
        path = ws_path(grants[cid])
        check(grants[cid]["ws_url"].startswith("wss://"), grants[cid]["ws_url"])
        wait_for(lambda: playing(s, cid), 20, "camera pre-warmed")
        # A browser shows no client certificate: 403 before the upgrade, saying why.
        status, got = wss_upgrade(s.h.port, path, client_context(pki.ca))
        check(status == 403 and b"client_certificate_required" in got,
              "wss:// without a certificate: %r" % got[:300])
        recs = wait_for(lambda: [r for r in s.audit("view.refuse") if r["details"].get(
            "reason") == "client_certificate_required"], 10, "the refusal on the record")
        check(recs[0]["details"].get("transport") == "ws"
              and recs[0]["details"].get("agency_id") == s.police, recs[0])
        # A client that shows the agency's certificate at the HTTPS handshake carries it into
        # the relay with its TLS session: the upgrade goes through.
        status, got = wss_upgrade(s.h.port, path,
                                  client_context(pki.ca, police_cert, police_key))
        check(status == 101, "wss:// with the agency's certificate: %r" % got[:300])
        s.h.stop()
    finally:
        kill_spawned()
        s.h.cleanup()
        pki.cleanup()


TESTS = [
    test_ffprobe_gstreamer_and_a_raw_viewer_decode_through_the_grants_rtsps_url,
    test_plaintext_random_bytes_and_a_foreign_client_certificate_close_only_that_connection,
    test_half_open_handshakes_do_not_stop_a_new_viewer_and_are_closed_at_their_deadline,
    test_grants_name_rtsps_public_url_and_never_the_plain_one,
    test_the_door_counts_rtsps_connections_before_their_handshake,
    test_truncated_records_close_only_that_connection,
    test_sighup_reload_keeps_the_viewer_and_new_viewers_get_the_new_certificate,
    test_an_agency_bound_to_its_certificate_views_over_rtsps_with_it_only,
    test_a_bound_agencys_wss_viewer_without_its_certificate_is_refused,
]


def selected():
    """(the cases to run, the cases left out by CH_RELAY_ONLY=name,name)."""
    only = set(x for x in os.environ.get("CH_RELAY_ONLY", "").split(",") if x)
    run = [t for t in TESTS if not only or t.__name__ in only]
    return run, [t for t in TESTS if t not in run]


if __name__ == "__main__":
    try:
        hub.main(*selected())
    finally:
        stop_everything()
