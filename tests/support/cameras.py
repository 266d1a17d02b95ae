"""The cameras of the relay's tests, each a process of its own on a free port of 127.0.0.1:
our camera simulator (camsim, H.264 and H.265, with every fault) and GStreamer's RTSP server
(gstcam.py). camsim(), gstcam() and gstcam_small() start one of each kind the first time they
are asked and hand it out after; stop_cameras() stops them at the end of a script. And two
cameras of a few lines for the health probe: one that redirects every request, one that asks
for Basic credentials and never takes any."""

import base64
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time

import hub
from hub import free_port

HERE = os.path.dirname(os.path.abspath(__file__))
TOOLS = os.path.join(hub.SOURCE_DIR, "tools", "camsim")
# Clips of our own beside the binary: test_camsim makes its set in camsim-clips at the same
# time under ctest -j, and make_clips.sh writes its files in place.
CLIPS = os.environ.get("CH_CAMSIM_CLIPS",
                       os.path.join(os.path.dirname(os.path.abspath(hub.BIN)),
                                    "camsim-clips-relay"))


class Peer:
    """A process of a test (a camera); its stdout and stderr go to a file, its first stdout
    line that matches ready_re says it is ready."""

    def __init__(self, args, ready_re, what):
        self.what = what
        self.out = tempfile.NamedTemporaryFile(prefix="cctvhub-peer-", delete=False)
        self.proc = subprocess.Popen(args, stdout=self.out, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)
        deadline = time.time() + 60
        while True:
            text = self.text()
            m = re.search(ready_re, text)
            if m:
                self.match = m
                return
            if self.proc.poll() is not None or time.time() > deadline:
                self.stop()
                raise hub.Failure("%s did not start: %s" % (what, text[-2000:]))
            time.sleep(0.05)

    def text(self):
        with open(self.out.name, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        try:
            os.unlink(self.out.name)
        except OSError:
            pass


def gi_python():
    """A Python that can import GStreamer's RTSP server (the pyenv one of a developer's shell
    may not see Debian's python3-gi)."""
    for exe in (sys.executable, "/usr/bin/python3"):
        p = subprocess.run([exe, "-c", "import gi; gi.require_version('GstRtspServer', '1.0');"
                            "from gi.repository import GstRtspServer"], capture_output=True)
        if p.returncode == 0:
            return exe
    raise hub.Failure("no Python with python3-gi and gir1.2-gst-rtsp-server-1.0")


class Camsim(Peer):
    def __init__(self, port=0):
        subprocess.run([os.path.join(TOOLS, "make_clips.sh"), CLIPS], check=True,
                       capture_output=True, timeout=600)
        super().__init__([sys.executable, os.path.join(TOOLS, "camsim.py"), "--listen",
                          "127.0.0.1:%d" % port, "--clips", CLIPS],
                         r"camsim listening on 127\.0\.0\.1:(\d+)", "camsim")
        self.port = int(self.match.group(1))

    def url(self, path, creds=None):
        return "rtsp://%s127.0.0.1:%d/%s" % (creds + "@" if creds else "", self.port, path)


class Gstcam(Peer):
    def __init__(self, *args):
        self.port = free_port()
        gstcam_py = os.path.join(HERE, "gstcam.py")
        super().__init__([gi_python(), gstcam_py, "--listen",
                          "127.0.0.1:%d" % self.port] + list(args), r"ready \S+ (.*)\n",
                         "gstcam")
        self.paths = self.match.group(1).split()

    def url(self, path):
        return "rtsp://127.0.0.1:%d%s" % (self.port, path)


PEERS = {}


def camsim():
    if "camsim" not in PEERS:
        PEERS["camsim"] = Camsim()
    return PEERS["camsim"]


def gstcam():
    if "gstcam" not in PEERS:
        PEERS["gstcam"] = Gstcam()
    return PEERS["gstcam"]


def gstcam_small():
    """A light camera for the thousand viewers: 320x180, at most 100 kbit/s."""
    if "gstcam_small" not in PEERS:
        PEERS["gstcam_small"] = Gstcam("--width", "320", "--height", "180", "--bitrate", "100")
    return PEERS["gstcam_small"]


def stop_cameras():
    """Stops every camera camsim(), gstcam() and gstcam_small() started."""
    for peer in PEERS.values():
        peer.stop()


class FakeRtsp:
    """An RTSP server on a free port of 127.0.0.1, a thread per connection: each request's
    head (its lines) goes to answer(lines), whose bytes go back."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.lock = threading.Lock()
        self.stopped = False
        threading.Thread(target=self.serve, daemon=True).start()

    def url(self, path):
        return "rtsp://127.0.0.1:%d/%s" % (self.port, path)

    def serve(self):
        while not self.stopped:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self.client, args=(c,), daemon=True).start()

    def client(self, c):
        buf = b""
        c.settimeout(5)
        try:
            while True:
                buf = hub.read_head(c, buf, size=4096)
                if b"\r\n\r\n" not in buf:
                    return
                head, buf = buf.split(b"\r\n\r\n", 1)
                c.sendall(self.answer(head.decode("latin-1").split("\r\n")))
        except (OSError, IndexError):
            pass
        finally:
            c.close()

    def stop(self):
        self.stopped = True
        self.sock.close()


class Redirector(FakeRtsp):
    """An RTSP server that answers every request with a redirect: to target (a URL, or a
    function of the request's URL), or with no Location at all when target is None."""

    def __init__(self, target, status=302):
        self.target, self.status = target, status
        self.asked = []
        super().__init__()

    def answer(self, lines):
        url = lines[0].split(" ")[1]
        self.asked.append(lines[0])
        cseq = [ln.split(":", 1)[1].strip() for ln in lines
                if ln.lower().startswith("cseq:")][0]
        target = self.target(url) if callable(self.target) else self.target
        extra = "Location: %s\r\n" % target if target is not None else ""
        return ("RTSP/1.0 %d Moved\r\nCSeq: %s\r\n%s\r\n" % (self.status, cseq, extra)).encode()


class BasicCamera(FakeRtsp):
    """A camera that asks for Basic credentials and never accepts any: it answers every RTSP
    request 401 with a Basic challenge and keeps what each request asked for and the
    credentials it carried (decoded), as a host set up to harvest them would."""

    def __init__(self):
        self.seen = []  # (request line, decoded credentials or None)
        super().__init__()

    def answer(self, lines):
        cseq, creds = "0", None
        for line in lines[1:]:
            k, _, v = line.partition(":")
            if k.strip().lower() == "cseq":
                cseq = v.strip()
            if k.strip().lower() == "authorization":
                scheme, _, value = v.strip().partition(" ")
                creds = (base64.b64decode(value).decode("latin-1")
                         if scheme.lower() == "basic" else v.strip())
        with self.lock:
            self.seen.append((lines[0], creds))
        return ("RTSP/1.0 401 Unauthorized\r\nCSeq: %s\r\n"
                "WWW-Authenticate: Basic realm=\"camera\"\r\n"
                "Content-Length: 0\r\n\r\n" % cseq).encode()

    def requests(self):
        with self.lock:
            return list(self.seen)
