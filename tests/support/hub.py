"""Test harness: starts the real cctvhub daemon on 127.0.0.1 with a free port and a fresh
data directory, talks HTTP to it over real sockets, and stops it with SIGTERM, checking that
it exits cleanly and that no sanitizer reported anything."""

import http.client
import json
import os
import re
import resource
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time

BIN = os.environ.get("CCTVHUB_BIN", "build/check/cctvhub")
SOURCE_DIR = os.environ.get("CH_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
DATA_DIR = os.environ.get("CH_DATA_DIR", os.path.join(SOURCE_DIR, "tests", "data", "cctv"))
SERVICES = os.path.join(SOURCE_DIR, "etc", "services.json")  # the services the hub ships


class Failure(Exception):
    pass


def check(cond, what):
    if not cond:
        raise Failure(what)


def limit_nofile(nofile):
    """A preexec_fn giving the child a descriptor limit of nofile (soft and hard), or None."""
    if nofile is None:
        return None
    return lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))


def run(args, env=None, timeout=600, stdin=None, stdin_text=None, nofile=None):
    """Runs the cctvhub command; returns (exit code, stdout, stderr) as text. With nofile, the
    command runs with that descriptor limit."""
    e = dict(os.environ)
    if env:
        e.update(env)
    pre = limit_nofile(nofile)
    if stdin_text is not None:
        p = subprocess.run([BIN] + args, capture_output=True, timeout=timeout, env=e,
                           input=stdin_text.encode(), preexec_fn=pre)
    else:
        p = subprocess.run([BIN] + args, capture_output=True, timeout=timeout, env=e,
                           stdin=stdin, preexec_fn=pre)
    out, err = p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")
    check("ERROR: AddressSanitizer" not in err and "runtime error:" not in err
          and "ThreadSanitizer" not in err,
          "sanitizer report:\n" + err[-4000:])
    return p.returncode, out, err


ADMIN_PASSWORD = "admin-password-for-tests"


def add_user(data_dir, name, role, password, agency=None, env=None):
    """cctvhub user add; returns (exit code, stdout, stderr)."""
    args = ["user", "add", name, "--role", role, "--password-stdin", "--data-dir", data_dir]
    if agency is not None:
        args += ["--agency", str(agency)]
    e = dict(env or {})
    e.setdefault("CCTVHUB_LOG_LEVEL", "warn")
    return run(args, env=e, stdin_text=password + "\n")


class Hub:
    """One running daemon. With admin=True (the default) an administrator account exists and
    the hub's requests carry its session cookie and CSRF token unless told otherwise. With
    nofile, the daemon runs with that descriptor limit (soft and hard)."""

    def __init__(self, args=(), env=None, data_dir=None, admin=True, nofile=None, ca=None):
        self.ca = ca  # HTTPS: the CA file its certificate is checked against
        self.tmp = tempfile.mkdtemp(prefix="cctvhub-it-")
        self.data_dir = data_dir or os.path.join(self.tmp, "var")
        self.log_path = os.path.join(self.tmp, "stderr.log")
        self.cookie = None
        self.csrf = None
        e = dict(os.environ)
        e.update(env or {})
        if admin:
            code, _, err = add_user(self.data_dir, "admin", "admin", ADMIN_PASSWORD, env=env)
            check(code == 0 or "exists" in err, "user add admin: %d %s" % (code, err))
        self.log = open(self.log_path, "wb")
        cmd = [BIN, "serve", "--data-dir", self.data_dir, "--http", "127.0.0.1:0"]
        if "--rtsp" not in args and "CCTVHUB_RTSP_LISTEN" not in e:
            cmd += ["--rtsp", "127.0.0.1:0"]  # the relay on a free port: rtsp_port says which
        cmd += list(args)
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=self.log, env=e,
                                     preexec_fn=limit_nofile(nofile))
        self.port = None
        deadline = time.time() + 30
        while time.time() < deadline:
            text = self.stderr()
            m = re.search(r"msg=listening addr=127\.0\.0\.1:(\d+)", text)
            if m:
                self.port = int(m.group(1))
                r = re.search(r"msg=\"relay listening\" rtsp=[^ ]*:(\d+)", text)
                self.rtsp_port = int(r.group(1)) if r else None
                break
            if self.proc.poll() is not None:
                raise Failure("daemon exited with %d before listening:\n%s"
                              % (self.proc.returncode, text))
            time.sleep(0.05)
        check(self.port, "daemon did not say where it listens:\n" + self.stderr())
        if admin:
            self.cookie, self.csrf = self.login("admin", ADMIN_PASSWORD)

    def login(self, name, password):
        """Logs in; returns (Cookie header value, CSRF token)."""
        status, headers, data = self.request("POST", "/api/v1/session",
                                             {"username": name, "password": password},
                                             auth=False)
        check(status == 200, "login %s: %d %s" % (name, status, data[:300]))
        cookie = headers["set-cookie"].split(";")[0]
        return cookie, json.loads(data)["csrf"]

    def stderr(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def tls_context(self):
        return ssl.create_default_context(cafile=self.ca)

    def conn(self, timeout=30):
        if self.ca:
            return http.client.HTTPSConnection("127.0.0.1", self.port, timeout=timeout,
                                               context=self.tls_context())
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def request(self, method, path, body=None, headers=None, auth=True):
        """One request on a new connection; returns (status, headers dict, body bytes). With
        auth, the administrator's session goes along unless headers carry credentials."""
        c = self.conn()
        try:
            headers = dict(headers or {})
            if (auth and self.cookie and "Authorization" not in headers
                    and "Cookie" not in headers):
                headers["Cookie"] = self.cookie
                headers["X-CSRF-Token"] = self.csrf
            if isinstance(body, (dict, list)):
                body = json.dumps(body).encode()
                headers["Content-Type"] = "application/json"
            c.request(method, path, body=body, headers=headers or {})
            r = c.getresponse()
            data = r.read()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, data
        finally:
            c.close()

    def json(self, method, path, body=None, expect=None, headers=None, auth=True):
        status, headers, data = self.request(method, path, body, headers=headers, auth=auth)
        if expect is not None:
            check(status == expect, "%s %s: status %d, wanted %d: %s"
                  % (method, path, status, expect, data[:500]))
        return status, (json.loads(data) if data else None)

    def expect_invalid(self, path, field, message=None, headers=None, auth=True):
        """GET path must answer 400 "invalid" naming field in the error (and saying message
        exactly, when given); returns the error object."""
        status, body = self.json("GET", path, headers=headers, auth=auth)
        check(status == 400 and body["error"]["code"] == "invalid"
              and body["error"].get("field") == field
              and (message is None or body["error"]["message"] == message),
              "GET %s: %d %s, wanted 400 invalid naming %s" % (path, status, body, field))
        return body["error"]

    def raw(self, data, read_timeout=5.0, shutdown_write=False):
        """Sends raw bytes on a fresh socket and returns everything read until close or
        timeout."""
        s = socket.create_connection(("127.0.0.1", self.port), timeout=read_timeout)
        if self.ca:
            s = self.tls_context().wrap_socket(s, server_hostname="127.0.0.1")
        try:
            s.sendall(data)
            if shutdown_write:
                s.shutdown(socket.SHUT_WR)
            chunks = []
            while True:
                try:
                    b = s.recv(65536)
                except socket.timeout:
                    break
                if not b:
                    break
                chunks.append(b)
            return b"".join(chunks)
        finally:
            s.close()

    def stop(self, expect_code=0):
        """SIGTERM, then checks a clean exit and a log free of sanitizer reports."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                raise Failure("daemon did not stop within 60 s of SIGTERM")
        self.log.close()
        text = self.stderr()
        check("ERROR: AddressSanitizer" not in text and "runtime error:" not in text
              and "LeakSanitizer" not in text and "ThreadSanitizer" not in text,
              "sanitizer report:\n" + text[-4000:])
        check(self.proc.returncode == expect_code, "daemon exit code %d, wanted %d:\n%s"
              % (self.proc.returncode, expect_code, text[-2000:]))
        return text

    def cleanup(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        shutil.rmtree(self.tmp, ignore_errors=True)


def wait_for(fn, timeout, what, interval=0.2):
    """Calls fn until it returns something true; returns that, or fails after timeout with
    what and fn's last answer."""
    deadline = time.time() + timeout
    last = None
    while True:
        last = fn()
        if last:
            return last
        if time.time() > deadline:
            raise Failure("%s (after %.0f s; last: %r)" % (what, timeout, last))
        time.sleep(interval)


def read_head(s, buf=b"", size=65536):
    """Reads socket s until a message's head has come whole (its blank line) or the peer
    closed; returns buf and all that was read."""
    while b"\r\n\r\n" not in buf:
        b = s.recv(size)
        if not b:
            break
        buf += b
    return buf


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def main(tests, skipped=()):
    """Runs each test function; prints a line each; exits non-zero when one failed. A test
    function of the calling script that is neither in tests nor in skipped is a failure: a
    test written and never run would otherwise pass unnoticed."""
    passed = failed = 0
    script = sys.modules.get("__main__")
    names = {t.__name__ for t in tests} | {t.__name__ for t in skipped}
    for name, value in sorted(vars(script).items() if script else ()):
        if name.startswith("test_") and callable(value) and name not in names:
            failed += 1
            print("FAIL %s: defined in the script but not in its list of tests" % name,
                  flush=True)
    for t in tests:
        start = time.time()
        try:
            t()
            print("ok   %s (%.1fs)" % (t.__name__, time.time() - start), flush=True)
            passed += 1
        except Exception as e:  # report and go on with the next test
            failed += 1
            print("FAIL %s: %s: %s" % (t.__name__, type(e).__name__, e), flush=True)
    print("%d passed, %d failed" % (passed, failed))
    sys.exit(1 if failed else 0)
