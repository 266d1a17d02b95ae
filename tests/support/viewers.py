"""Viewers of the relay we did not write (ffprobe, ffmpeg and GStreamer's rtspsrc, in the
foreground or in the background), and a raw RTSP viewer on a socket for what those cannot do
(DESCRIBE, SETUP and PLAY by hand, RTP counted as it arrives, NAL types looked into).
Background viewers are killed by kill_spawned() at the end of each test."""

import re
import socket
import struct
import subprocess
import tempfile
import threading
import time

from hub import check

# What ffmpeg says when a viewer starts without a keyframe or its parameter sets, or the
# stream is damaged: a relay that starts every viewer at the cached keyframe never causes it.
DECODE_ERRORS = re.compile(r"error while decoding|corrupt decoded frame|non-existing PPS|"
                           r"no frame!|decode_slice_header error|Invalid NAL unit|"
                           r"missing picture|Could not find ref", re.I)



PROCS = []  # viewers started in the background, killed at the end of each test


def spawn(args, **kw):
    p = subprocess.Popen(args, **kw)
    PROCS.append(p)
    return p


def kill_spawned():
    while PROCS:
        p = PROCS.pop()
        if p.poll() is None:
            p.kill()
        p.wait()


def ffprobe(url, timeout=60):
    """ffprobe over TCP; returns (exit code, "codec|width|height", stderr)."""
    p = subprocess.run(["ffprobe", "-v", "error", "-rtsp_transport", "tcp", "-show_entries",
                        "stream=codec_name,width,height", "-of", "compact=p=0:nk=1", url],
                       capture_output=True, text=True, timeout=timeout)
    return p.returncode, p.stdout.strip(), p.stderr


def ffmpeg_frames(url, frames, timeout=90, extra=()):
    """Decodes `frames` video frames of url to null; returns (exit code, stderr, decoded)."""
    p = subprocess.run(["ffmpeg", "-hide_banner", "-nostdin", "-v", "error", "-rtsp_transport",
                        "tcp", "-i", url, "-frames:v", str(frames)] + list(extra) +
                       ["-f", "null", "-", "-progress", "pipe:1"],
                       capture_output=True, text=True, timeout=timeout)
    got = [int(x) for x in re.findall(r"^frame=(\d+)$", p.stdout, re.M)]
    return p.returncode, p.stderr, (got[-1] if got else 0)


def gst_play(url, buffers, timeout=90):
    """GStreamer's rtspsrc over TCP, decodebin and a fakesink taking `buffers` decoded frames;
    returns (exit code, stderr)."""
    p = subprocess.run(["gst-launch-1.0", "-q", "rtspsrc", "location=" + url, "protocols=tcp",
                        "!", "decodebin", "!", "fakesink", "num-buffers=%d" % buffers],
                       capture_output=True, text=True, timeout=timeout)
    return p.returncode, p.stdout + p.stderr


class Watch:
    """An ffmpeg viewer decoding url in the background; samples (time, frames decoded) of its
    progress reports, four a second."""

    def __init__(self, url, seconds=None, extra=()):
        args = ["ffmpeg", "-hide_banner", "-nostdin", "-v", "error", "-rtsp_transport", "tcp",
                "-i", url]
        if seconds:
            args += ["-t", str(seconds)]
        args += list(extra) + ["-f", "null", "-", "-progress", "pipe:1", "-stats_period",
                               "0.25"]
        self.err = tempfile.TemporaryFile()
        self.started = time.time()
        self.samples = [(self.started, 0)]
        self.ended = None
        self.p = spawn(args, stdout=subprocess.PIPE, stderr=self.err, stdin=subprocess.DEVNULL,
                       text=True)
        self.t = threading.Thread(target=self._read, daemon=True)
        self.t.start()

    def _read(self):
        for line in self.p.stdout:
            m = re.match(r"frame=(\d+)$", line.strip())
            if m:
                self.samples.append((time.time(), int(m.group(1))))
        self.p.wait()
        self.ended = time.time()

    def frames(self):
        return self.samples[-1][1]

    def frames_at(self, t):
        n = 0
        for when, f in list(self.samples):
            if when <= t:
                n = f
        return n

    def running(self):
        return self.p.poll() is None

    def wait(self, timeout):
        try:
            self.p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pass
        self.t.join(timeout=5)
        return self.p.poll()

    def stop(self):
        if self.p.poll() is None:
            self.p.terminate()
        return self.wait(10)

    def stderr(self):
        self.err.seek(0)
        return self.err.read().decode("utf-8", "replace")


# ---- a raw RTSP viewer ----------------------------------------------------------------------

def parse_one(buf):
    """The first message of buf: ("data", channel, payload, rest), ("rtsp", status, headers,
    body, rest), or None when more bytes are needed."""
    if buf[:1] == b"$":
        if len(buf) < 4:
            return None
        n = struct.unpack("!H", buf[2:4])[0]
        if len(buf) < 4 + n:
            return None
        return ("data", buf[1], buf[4:4 + n], buf[4 + n:])
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        return None
    lines = buf[:end].decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    check(len(parts) >= 2 and parts[0] == "RTSP/1.0", "not an RTSP answer: %r" % buf[:200])
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            headers[k.strip().lower()] = v.strip()
    n = int(headers.get("content-length", "0"))
    if len(buf) < end + 4 + n:
        return None
    return ("rtsp", int(parts[1]), headers, buf[end + 4:end + 4 + n], buf[end + 4 + n:])


def track_url(base, sdp):
    """The URL of the SDP's video track: its control, absolute or against the base."""
    video = sdp.split("m=video", 1)[1] if "m=video" in sdp else sdp
    m = re.search(r"^a=control:(\S+)", video, re.M)
    control = m.group(1) if m else ""
    if control.startswith("rtsp://"):
        return control
    return base.rstrip("/") + "/" + control.lstrip("/")


def request_text(method, url, cseq, headers=(), session=None):
    lines = ["%s %s RTSP/1.0" % (method, url), "CSeq: %d" % cseq, "User-Agent: cctvhub-test"]
    if session:
        lines.append("Session: " + session)
    lines += list(headers)
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def nal_types(payload, h265):
    """NAL unit types an RTP payload carries (aggregates and fragment starts looked into)."""
    if not payload:
        return []
    if h265:
        t = (payload[0] >> 1) & 0x3F
        if t == 48:  # AP
            out, i = [], 2
            while i + 2 <= len(payload):
                n = struct.unpack("!H", payload[i:i + 2])[0]
                if i + 2 < len(payload):
                    out.append((payload[i + 2] >> 1) & 0x3F)
                i += 2 + n
            return out
        if t == 49:  # FU
            return [payload[2] & 0x3F] if len(payload) > 2 and payload[2] & 0x80 else []
        return [t]
    t = payload[0] & 0x1F
    if t == 24:  # STAP-A
        out, i = [], 1
        while i + 2 <= len(payload):
            n = struct.unpack("!H", payload[i:i + 2])[0]
            if i + 2 < len(payload):
                out.append(payload[i + 2] & 0x1F)
            i += 2 + n
        return out
    if t == 28:  # FU-A
        return [payload[1] & 0x1F] if len(payload) > 1 and payload[1] & 0x80 else []
    return [t]


def is_key(types, h265):
    return any(16 <= t <= 21 for t in types) if h265 else 5 in types


class Rtsp:
    """One viewer on a blocking socket: DESCRIBE, SETUP over TCP interleaved and PLAY as
    ffmpeg sends them, then RTP counted as it arrives."""

    def __init__(self, port, timeout=15.0, rcvbuf=None, source=None):
        self.s = socket.socket()
        if rcvbuf:
            self.s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        if source:
            self.s.bind((source, 0))  # another loopback address (127.0.0.N)
        self.s.settimeout(timeout)
        self.s.connect(("127.0.0.1", port))
        self.buf = b""
        self.cseq = 0
        self.session = None
        self.sdp = ""
        self.base = None
        self.h265 = False
        self.rtp_bytes = 0
        self.packets = []  # (time, payload type, marker, NAL types) of the first ones
        self.frames = 0
        self.aus = []  # (time of the first packet, RTP timestamp, keyframe) of the first ones
        self._au_types = None

    def _fill(self):
        b = self.s.recv(65536)
        if not b:
            raise EOFError("the relay closed the connection")
        self.buf += b

    def _data(self, channel, payload):
        if channel != 0 or len(payload) < 12:
            return
        self.rtp_bytes += len(payload)
        marker = bool(payload[1] & 0x80)
        if marker:
            self.frames += 1
        if len(self.aus) < 5000:
            cc = payload[0] & 0x0F
            body = payload[12 + 4 * cc:]
            if payload[0] & 0x10 and len(body) >= 4:  # a header extension
                body = body[4 + 4 * struct.unpack("!H", body[2:4])[0]:]
            types = nal_types(body, self.h265)
            now = time.time()
            if len(self.packets) < 2000:
                self.packets.append((now, payload[1] & 0x7F, marker, types))
            if self._au_types is None:
                self._au_types = []
                self.aus.append([now, struct.unpack("!I", payload[4:8])[0], False])
            self._au_types += types
            if marker:
                self.aus[-1][2] = is_key(self._au_types, self.h265)
                self._au_types = None

    def response(self):
        while True:
            m = parse_one(self.buf)
            if m is None:
                self._fill()
                continue
            if m[0] == "data":
                self._data(m[1], m[2])
                self.buf = m[3]
                continue
            self.buf = m[4]
            return m[1], m[2], m[3]

    def request(self, method, url, headers=()):
        self.cseq += 1
        self.s.sendall(request_text(method, url, self.cseq, headers,
                                    self.session if method not in ("DESCRIBE", "OPTIONS")
                                    else None))
        return self.response()

    def describe(self, url, headers=()):
        status, h, body = self.request("DESCRIBE", url, ["Accept: application/sdp"] +
                                       list(headers))
        if status == 200:
            self.sdp = body.decode("utf-8", "replace")
            self.base = h.get("content-base", url)
            self.h265 = "H265/90000" in self.sdp
        return status, h

    def play(self, url, headers=()):
        """DESCRIBE, SETUP, PLAY; returns (status, headers) of the first that is not 200, or of
        PLAY."""
        status, h = self.describe(url, headers)
        if status != 200:
            return status, h
        status, h, _ = self.request("SETUP", track_url(self.base, self.sdp),
                                    ["Transport: RTP/AVP/TCP;unicast;interleaved=0-1"] +
                                    list(headers))
        if status != 200:
            return status, h
        self.session = h.get("session", "").split(";")[0]
        status, h, _ = self.request("PLAY", self.base, ["Range: npt=0.000-"] + list(headers))
        return status, h

    def read_media(self, frames=None, rtp_bytes=None, timeout=15.0):
        """Reads until that many frames (RTP markers) or bytes came, or the time is up."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            if frames is not None and self.frames >= frames:
                return True
            if rtp_bytes is not None and self.rtp_bytes >= rtp_bytes:
                return True
            m = parse_one(self.buf)
            if m is None:
                try:
                    self._fill()
                except socket.timeout:
                    break
                continue
            if m[0] == "data":
                self._data(m[1], m[2])
                self.buf = m[3]
            else:
                self.buf = m[4]
        return False

    def close(self):
        try:
            self.s.close()
        except OSError:
            pass
