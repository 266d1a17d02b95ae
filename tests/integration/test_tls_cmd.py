"""`cctvhub tls` checked from outside, with independent TLS peers: the certificates it makes
serve `openssl s_server`, which `openssl s_client` and curl trust with the CA's certificate and
refuse without it (or with another CA, or under a name the certificate does not carry); a
client certificate opens a server that demands one, and once revoked (the CRL) no longer does,
while another agency's still does; the fingerprints printed are the openssl pipeline's; a CA
is never replaced without --force; the exit codes are the documented ones."""

import hashlib
import os
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
import hub  # noqa: E402
from hub import check, free_port, run  # noqa: E402


def tls(*args):
    """cctvhub tls ARGS: (exit code, stdout, stderr)."""
    return run(["tls"] + list(args))


def init(d, *args):
    code, out, err = tls("init", "--dir", d, *args)
    check(code == 0, "tls init: exit %d: %s %s" % (code, out, err))
    return out


def client(d, name):
    code, out, err = tls("client", name, "--dir", d)
    check(code == 0, "tls client %s: exit %d: %s" % (name, code, err))
    return out.strip()


def openssl_fingerprint(path):
    """The SPKI fingerprint as an administrator computes it with the openssl command."""
    pub = subprocess.run(["openssl", "x509", "-in", path, "-pubkey", "-noout"],
                         capture_output=True, check=True).stdout
    der = subprocess.run(["openssl", "pkey", "-pubin", "-outform", "der"], input=pub,
                         capture_output=True, check=True).stdout
    return "sha256:" + hashlib.sha256(der).hexdigest()


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


class SServer:
    """openssl s_server -www on a free port of 127.0.0.1 with the given certificate, key and
    further options; stopped with stop()."""

    def __init__(self, d, *extra):
        self.port = free_port()
        self.log = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(
            ["openssl", "s_server", "-accept", "127.0.0.1:%d" % self.port,
             "-cert", os.path.join(d, "server.crt"), "-key", os.path.join(d, "server.key"),
             "-www", "-quiet"] + list(extra),
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=self.log)
        deadline = time.time() + 10
        while True:
            if self.proc.poll() is not None:
                self.log.seek(0)
                text = self.log.read().decode("utf-8", "replace")
                raise hub.Failure("s_server exited: %s" % text)
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                check(time.time() < deadline, "s_server does not listen on %d" % self.port)
                time.sleep(0.05)

    def stop(self):
        self.proc.kill()
        self.proc.wait()
        self.proc.stdin.close()
        self.log.close()


def s_client(port, *args):
    """openssl s_client -verify_return_error to 127.0.0.1:port: (exit code, output)."""
    p = subprocess.run(["openssl", "s_client", "-connect", "127.0.0.1:%d" % port,
                        "-verify_return_error", "-brief"] + list(args),
                       input=b"", capture_output=True, timeout=30)
    return p.returncode, (p.stdout + p.stderr).decode("utf-8", "replace")


def curl(url, *args):
    """curl of url: (exit code, body, stderr)."""
    p = subprocess.run(["curl", "-sS", "--max-time", "20"] + list(args) + [url],
                       capture_output=True, timeout=30)
    return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")


def test_init_makes_a_server_certificate_that_s_client_and_curl_trust_with_the_ca_only():
    tmp = tempfile.mkdtemp(prefix="cctvhub-tls-")
    d, other = os.path.join(tmp, "tls"), os.path.join(tmp, "other")
    server = None
    try:
        out = init(d, "--name", "hub.test", "--name", "10.9.8.7")
        for name in ("ca.crt", "ca.key", "server.crt", "server.key"):
            check(os.path.exists(os.path.join(d, name)), "no %s: %s" % (name, out))
        check(mode(os.path.join(d, "ca.key")) == 0o600, oct(mode(os.path.join(d, "ca.key"))))
        check(mode(os.path.join(d, "server.key")) == 0o600, "server.key mode")
        # It says how to trust it, and names what it covers.
        for want in ("curl --cacert %s/ca.crt https://127.0.0.1:8080/" % d,
                     "%s/ca.crt as rtspsrc's tls-database" % d,
                     "localhost 127.0.0.1 ::1", "hub.test 10.9.8.7",
                     "tls.cert = %s/server.crt" % d, "tls.key = %s/server.key" % d,
                     "tls.client_ca = %s/ca.crt" % d,
                     openssl_fingerprint(os.path.join(d, "server.crt"))):
            check(want in out, "init's output lacks %r:\n%s" % (want, out))
        init(other)  # another CA, for the refusals
        server = SServer(d)
        ca, other_ca = os.path.join(d, "ca.crt"), os.path.join(other, "ca.crt")
        code, text = s_client(server.port, "-CAfile", ca, "-verify_hostname", "localhost")
        check(code == 0 and "Verification: OK" in text,
              "s_client with the CA: %d %s" % (code, text))
        code, text = s_client(server.port, "-CAfile", ca, "-verify_ip", "127.0.0.1")
        check(code == 0, "s_client with the CA, by IP: %d %s" % (code, text))
        code, text = s_client(server.port, "-CAfile", other_ca)
        check(code != 0 and "verify error" in text,
              "s_client with another CA: %d %s" % (code, text))
        code, text = s_client(server.port)  # the system's CAs only
        check(code != 0 and "verify error" in text, "s_client without the CA: %d %s" % (code, text))
        code, text = s_client(server.port, "-CAfile", ca, "-verify_hostname", "other.test")
        check(code != 0, "s_client accepted a name the certificate lacks: %s" % text)
        # curl: by address, by name (each in the subjectAltName), and refusals.
        url = "https://127.0.0.1:%d/" % server.port
        code, body, err = curl(url, "--cacert", ca)
        check(code == 0 and "s_server" in body, "curl --cacert: %d %s" % (code, err))
        code, body, err = curl("https://hub.test:%d/" % server.port, "--cacert", ca,
                               "--resolve", "hub.test:%d:127.0.0.1" % server.port)
        check(code == 0, "curl to hub.test: %d %s" % (code, err))
        code, body, err = curl(url)
        check(code == 60, "curl without the CA: exit %d %s" % (code, err))
        code, body, err = curl(url, "--cacert", other_ca)
        check(code == 60, "curl with another CA: exit %d %s" % (code, err))
        code, body, err = curl("https://other.test:%d/" % server.port, "--cacert", ca,
                               "--resolve", "other.test:%d:127.0.0.1" % server.port)
        check(code == 60 and "other.test" in err, "curl to a name not in it: %d %s" % (code, err))
    finally:
        if server:
            server.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def test_client_certificates_open_a_mutual_tls_server_until_revoked():
    tmp = tempfile.mkdtemp(prefix="cctvhub-tls-")
    d = os.path.join(tmp, "tls")
    servers = []
    try:
        init(d)
        fp_police = client(d, "police-112")
        fp_fire = client(d, "fire-119")
        crt = {n: os.path.join(d, "clients", n + ".crt") for n in ("police-112", "fire-119")}
        key = {n: os.path.join(d, "clients", n + ".key") for n in ("police-112", "fire-119")}
        check(fp_police == openssl_fingerprint(crt["police-112"]), fp_police)
        check(fp_fire == openssl_fingerprint(crt["fire-119"]) and fp_fire != fp_police, fp_fire)
        check(mode(key["police-112"]) == 0o600, oct(mode(key["police-112"])))
        code, out, err = tls("fingerprint", crt["police-112"])
        check(code == 0 and out.strip() == fp_police,
              "tls fingerprint: %d %s %s" % (code, out, err))
        ca = os.path.join(d, "ca.crt")

        def get(port, who=None):
            args = ["--cacert", ca]
            if who:
                args += ["--cert", crt[who], "--key", key[who]]
            return curl("https://localhost:%d/" % port, *args)

        # A server that demands a client certificate from this CA.
        server = SServer(d, "-Verify", "1", "-verify_return_error", "-CAfile", ca)
        servers.append(server)
        code, body, err = get(server.port, "police-112")
        check(code == 0 and "s_server" in body, "police-112's certificate: %d %s" % (code, err))
        code, body, err = get(server.port)
        check(code != 0, "no client certificate was accepted: %s" % body[:200])
        # Revoked: listed in the CRL, refused by openssl verify and by a server that checks it.
        code, out, err = tls("revoke", crt["police-112"], "--dir", d)
        check(code == 0 and "ca.crl" in out, "tls revoke: %d %s %s" % (code, out, err))
        crl = os.path.join(d, "ca.crl")
        serial = subprocess.run(["openssl", "x509", "-in", crt["police-112"], "-noout", "-serial"],
                                capture_output=True, text=True, check=True).stdout
        text = subprocess.run(["openssl", "crl", "-in", crl, "-noout", "-text"],
                              capture_output=True, text=True, check=True).stdout
        check(serial.strip().split("=")[1] in text,
              "serial %s not in the CRL:\n%s" % (serial, text))

        def verify(who):
            return subprocess.run(["openssl", "verify", "-crl_check", "-CRLfile", crl,
                                   "-CAfile", ca, crt[who]], capture_output=True).returncode

        check(verify("police-112") != 0, "the revoked certificate still verifies")
        check(verify("fire-119") == 0, "another agency's certificate no longer verifies")
        server = SServer(d, "-Verify", "1", "-verify_return_error", "-CAfile", ca,
                         "-CRL", crl, "-crl_check")
        servers.append(server)
        code, body, err = get(server.port, "police-112")
        check(code != 0, "the revoked certificate opened the server: %s" % body[:200])
        code, body, err = get(server.port, "fire-119")
        check(code == 0 and "s_server" in body, "fire-119 after police-112's revocation: %d %s"
              % (code, err))
        # Revoking again says so and keeps one entry.
        code, out, err = tls("revoke", crt["police-112"], "--dir", d)
        check(code == 0 and "revoked already" in out, "second revoke: %d %s %s" % (code, out, err))
        text = subprocess.run(["openssl", "crl", "-in", crl, "-noout", "-text"],
                              capture_output=True, text=True, check=True).stdout
        check(text.count("Serial Number:") == 1, text)
    finally:
        for s in servers:
            s.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def test_init_never_replaces_a_ca_without_force_and_defaults_to_the_data_directory():
    tmp = tempfile.mkdtemp(prefix="cctvhub-tls-")
    try:
        data = os.path.join(tmp, "var")
        code, out, err = tls("init", "--data-dir", data)
        check(code == 0, "tls init --data-dir: %d %s" % (code, err))
        d = os.path.join(data, "tls")
        ca_key = os.path.join(d, "ca.key")
        with open(ca_key, "rb") as f:
            before = f.read()
        fp = client(d, "police-112")
        code, out, err = tls("init", "--data-dir", data)
        check(code == 1 and "refusing" in err and "--force" in err,
              "second init: %d %s" % (code, err))
        with open(ca_key, "rb") as f:
            check(f.read() == before, "the CA key was replaced without --force")
        # A client of that name exists: not replaced without --force either.
        code, out, err = tls("client", "police-112", "--dir", d)
        check(code == 1 and "exists" in err, "second client: %d %s" % (code, err))
        code, out, err = tls("client", "police-112", "--dir", d, "--force")
        check(code == 0 and out.strip() != fp, "client --force: %d %s" % (code, err))
        # --force: a new CA; what the old one signed no longer verifies against it.
        code, out, err = tls("init", "--data-dir", data, "--force")
        check(code == 0, "init --force: %d %s" % (code, err))
        with open(ca_key, "rb") as f:
            check(f.read() != before, "--force kept the old CA key")
        check(mode(ca_key) == 0o600, oct(mode(ca_key)))
        p = subprocess.run(["openssl", "verify", "-CAfile", os.path.join(d, "ca.crt"),
                            os.path.join(d, "clients", "police-112.crt")], capture_output=True)
        check(p.returncode != 0, "a certificate of the old CA verifies against the new one")
        p = subprocess.run(["openssl", "verify", "-CAfile", os.path.join(d, "ca.crt"),
                            os.path.join(d, "server.crt")], capture_output=True)
        check(p.returncode == 0, "the new server certificate: %s" % p.stdout)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def test_help_usage_errors_and_missing_things_exit_with_the_documented_codes():
    tmp = tempfile.mkdtemp(prefix="cctvhub-tls-")
    try:
        empty = os.path.join(tmp, "empty")
        os.mkdir(empty)
        code, out, _ = run(["help"])
        check(code == 0 and "tls" in out, "cctvhub help does not list tls")
        for args in (["--help"], ["init", "--help"], ["client", "--help"], ["revoke", "--help"],
                     ["fingerprint", "--help"]):
            code, out, err = tls(*args)
            check(code == 0 and "usage: cctvhub tls" in out, "%s: %d %s" % (args, code, err))
        for args in ([], ["bogus"], ["init", "--days", "0"], ["init", "--days", "x"],
                     ["init", "--name", "a b"], ["init", "--bogus"], ["init", "--name"],
                     ["client"], ["client", "../x"], ["client", "-x"], ["client", "a", "b"],
                     ["revoke"], ["fingerprint"], ["fingerprint", "a", "b"]):
            code, out, err = tls(*args)
            check(code == 2 and err, "%s: exit %d, wanted 2: %s" % (args, code, err))
        code, out, err = tls("fingerprint", os.path.join(tmp, "none.crt"))
        check(code == 1 and "none.crt" in err, "fingerprint of a missing file: %d %s" % (code, err))
        code, out, err = tls("client", "x", "--dir", empty)
        check(code == 1 and "no CA" in err, "client without a CA: %d %s" % (code, err))
        code, out, err = tls("client", "x", "--dir", os.path.join(tmp, "typo"))
        check(code == 1 and "no CA" in err and not os.path.exists(os.path.join(tmp, "typo")),
              "client with a missing --dir: %d %s" % (code, err))
        init(os.path.join(tmp, "tls"))
        code, out, err = tls("fingerprint", os.path.join(tmp, "tls", "ca.key"))
        check(code == 1 and "no certificate" in err, "fingerprint of a key: %d %s" % (code, err))
        code, out, err = tls("revoke", os.path.join(tmp, "tls", "server.crt"), "--dir", empty)
        check(code == 1 and "no CA" in err, "revoke without a CA: %d %s" % (code, err))
        code, out, err = tls("revoke", os.path.join(tmp, "tls", "ca.crt"), "--dir",
                             os.path.join(tmp, "tls"))
        check(code == 1 and "own certificate" in err, "revoke of the CA: %d %s" % (code, err))
        blocker = os.path.join(tmp, "file")
        open(blocker, "w").close()
        code, out, err = tls("init", "--dir", os.path.join(blocker, "tls"))
        check(code == 4 and "cannot create" in err,
              "init in an impossible place: %d %s" % (code, err))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    hub.main([
        test_init_makes_a_server_certificate_that_s_client_and_curl_trust_with_the_ca_only,
        test_client_certificates_open_a_mutual_tls_server_until_revoked,
        test_init_never_replaces_a_ca_without_force_and_defaults_to_the_data_directory,
        test_help_usage_errors_and_missing_things_exit_with_the_documented_codes,
    ])
