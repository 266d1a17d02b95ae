"""A test PKI made with the openssl command line (an independent peer of the hub's own
`cctvhub tls`): a CA run with `openssl ca` (so that it can revoke, issue expired certificates
and publish a CRL), a server certificate for 127.0.0.1 and localhost, and client certificates
for agencies; a second, unknown CA; and the SPKI fingerprint the hub binds API keys to."""

import hashlib
import os
import subprocess
import tempfile

EC = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]


def sh(args, cwd):
    p = subprocess.run(args, cwd=cwd, capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError("%s: %s" % (" ".join(args), p.stderr))
    return p.stdout


class Pki:
    def __init__(self, root=None, name="test-ca"):
        self.dir = root or tempfile.mkdtemp(prefix="cctvhub-pki-")
        d = self.dir
        os.makedirs(os.path.join(d, "new"), exist_ok=True)
        open(os.path.join(d, "index.txt"), "w").close()
        with open(os.path.join(d, "ca.cnf"), "w") as f:
            f.write("""[ca]
default_ca = test
[test]
dir = %s
database = $dir/index.txt
new_certs_dir = $dir/new
certificate = $dir/ca.crt
private_key = $dir/ca.key
serial = $dir/serial
crlnumber = $dir/crlnumber
default_md = sha256
default_days = 30
default_crl_days = 30
policy = any
unique_subject = no
copy_extensions = copy
[any]
commonName = supplied
[server]
subjectAltName = IP:127.0.0.1,IP:::1,DNS:localhost
extendedKeyUsage = serverAuth
basicConstraints = CA:false
[client]
extendedKeyUsage = clientAuth
basicConstraints = CA:false
""" % d)
        with open(os.path.join(d, "serial"), "w") as f:
            f.write("1000\n")
        with open(os.path.join(d, "crlnumber"), "w") as f:
            f.write("1000\n")
        sh(["openssl", "req", "-x509"] + EC + ["-keyout", "ca.key", "-out", "ca.crt", "-days", "30",
                                               "-subj", "/CN=" + name], d)
        self.ca = os.path.join(d, "ca.crt")
        self.crl()

    def path(self, name):
        return os.path.join(self.dir, name)

    def issue(self, name, kind="client", start=None, end=None):
        """A certificate for name ("server" gets the server's names): (cert, key) paths."""
        d = self.dir
        sh(["openssl", "req"] + EC + ["-keyout", name + ".key", "-out", name + ".csr", "-subj",
                                      "/CN=" + name], d)
        args = ["openssl", "ca", "-batch", "-config", "ca.cnf", "-extensions", kind, "-in",
                name + ".csr", "-out", name + ".crt", "-notext"]
        if start:
            args += ["-startdate", start, "-enddate", end]
        sh(args, d)
        return self.path(name + ".crt"), self.path(name + ".key")

    def chain(self, name):
        """The certificate followed by the CA's (what a server sends)."""
        out = self.path(name + ".chain.crt")
        with open(out, "w") as f:
            f.write(open(self.path(name + ".crt")).read() + open(self.ca).read())
        return out

    def revoke(self, name):
        sh(["openssl", "ca", "-batch", "-config", "ca.cnf", "-revoke", name + ".crt"], self.dir)
        self.crl()

    def crl(self):
        sh(["openssl", "ca", "-batch", "-config", "ca.cnf", "-gencrl", "-out", "ca.crl"], self.dir)
        return self.path("ca.crl")

    def spki(self, name):
        """"sha256:" and the hex SHA-256 of the certificate's DER SubjectPublicKeyInfo."""
        pub = subprocess.run(["openssl", "x509", "-in", self.path(name + ".crt"), "-pubkey",
                              "-noout"], capture_output=True, check=True).stdout
        der = subprocess.run(["openssl", "pkey", "-pubin", "-outform", "der"], input=pub,
                             capture_output=True, check=True).stdout
        return "sha256:" + hashlib.sha256(der).hexdigest()

    def serial(self, name):
        out = sh(["openssl", "x509", "-in", self.path(name + ".crt"), "-noout", "-serial"],
                 self.dir)
        return out.strip().split("=", 1)[1]
