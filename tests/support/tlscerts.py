"""Certificates for the tests of the hub's outgoing TLS, made with the openssl command in a
temporary directory: a test CA and a second CA the hub does not trust, servers signed by each,
a server whose certificate names another host, and a camera's self-signed certificate. Each
server's PEM holds its certificate and then its key (what gstcam.py --tls-cert takes), and
spki() gives a certificate's pin as the hub writes it ("sha256:" and the hex of SHA-256 over
the DER SubjectPublicKeyInfo)."""

import os
import shutil
import subprocess
import tempfile

EC = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]


def _run(args, cwd, stdin=None):
    p = subprocess.run(args, cwd=cwd, input=stdin, capture_output=True, timeout=60)
    if p.returncode != 0:
        raise RuntimeError("%s: %s" % (" ".join(args), p.stderr.decode(errors="replace")))
    return p.stdout


class Certs:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="cctvhub-tls-")
        for ca in ("ca", "other-ca"):
            _run(["openssl", "req", "-x509"] + EC + ["-keyout", ca + ".key", "-out", ca + ".pem",
                                                     "-days", "2", "-subj", "/CN=" + ca],
                 self.dir)
        # Signed by the test CA for 127.0.0.1 only: "localhost" does not match it.
        self.server = self._signed("server", "ca", "IP:127.0.0.1")
        # Signed by the CA the hub does not trust.
        self.stranger = self._signed("stranger", "other-ca", "IP:127.0.0.1")
        # A camera's own: self-signed, as most cameras ship.
        _run(["openssl", "req", "-x509"] + EC +
             ["-keyout", "selfsigned.key", "-out", "selfsigned.crt", "-days", "2", "-subj",
              "/CN=camera", "-addext", "subjectAltName=IP:127.0.0.1"], self.dir)
        self.selfsigned = self._bundle("selfsigned")
        # Another self-signed key: a pin of the wrong camera.
        _run(["openssl", "req", "-x509"] + EC +
             ["-keyout", "other.key", "-out", "other.crt", "-days", "2", "-subj", "/CN=other"],
             self.dir)
        self.ca = self.path("ca.pem")
        self.other_ca = self.path("other-ca.pem")

    def path(self, name):
        return os.path.join(self.dir, name)

    def _signed(self, name, ca, san):
        with open(self.path(name + ".ext"), "w") as f:
            f.write("subjectAltName=%s\nextendedKeyUsage=serverAuth\n" % san)
        _run(["openssl", "req"] + EC + ["-keyout", name + ".key", "-out", name + ".csr", "-subj",
                                        "/CN=" + name], self.dir)
        _run(["openssl", "x509", "-req", "-in", name + ".csr", "-CA", ca + ".pem", "-CAkey",
              ca + ".key", "-CAcreateserial", "-days", "2", "-extfile", name + ".ext", "-out",
              name + ".crt"], self.dir)
        return self._bundle(name)

    def _bundle(self, name):
        pem = self.path(name + ".pem")
        with open(pem, "wb") as out:
            for part in (name + ".crt", name + ".key"):
                with open(self.path(part), "rb") as f:
                    out.write(f.read())
        return pem

    def cert(self, name):
        return self.path(name + ".crt")

    def key(self, name):
        return self.path(name + ".key")

    def spki(self, name):
        """The pin of certificate name.crt: "sha256:" and 64 lowercase hex digits."""
        pub = _run(["openssl", "x509", "-in", name + ".crt", "-pubkey", "-noout"], self.dir)
        der = _run(["openssl", "pkey", "-pubin", "-outform", "DER"], self.dir, stdin=pub)
        out = _run(["openssl", "dgst", "-sha256", "-hex"], self.dir, stdin=der).decode()
        return "sha256:" + out.strip().split()[-1].lower()

    def cleanup(self):
        shutil.rmtree(self.dir, ignore_errors=True)
