#!/usr/bin/env python3
"""camsim: cctvhub's camera simulator, an RTSP/1.0 server that plays H.264 and H.265 clips as
live cameras, on any number of paths, with faults on demand.

Each clip (Annex B, made by tools/camsim/make_clips.sh with Debian's ffmpeg, x264 and x265)
plays in a loop on one clock per path, as a live camera: a session starts at the live
stream's next keyframe (as most IP cameras do), not at the start of the clip. RTP over TCP (interleaved) or UDP, RFC 6184 (single NAL
units and FU-A) for H.264 and RFC 7798 (single NAL units and FU) for H.265; parameter sets in
the SDP (sprop-parameter-sets, sprop-vps/sps/pps) and in band before each keyframe.

Paths: rtsp://HOST:PORT/<name>[?fault=F] where <name> is any text; a name containing "265"
plays the H.265 clip, anything else the H.264 clip. Faults (query or --fault for every path):
  refuse     answer 503 to every request
  auth       require Digest authentication (user camsim, password camsim)
  basic      require Basic authentication (same credentials)
  stall      stop sending media 3 s after PLAY, keeping the connection open
  drop       close the connection 3 s after PLAY
  garbage    send random bytes instead of RTP after 1 s of media
  slow       answer each request after 2 s
  resize     switch to the other resolution (the 720p H.264 clip) 3 s after PLAY

usage: camsim.py [--listen 127.0.0.1:8554] [--clips DIR] [--fault F] [--quiet]
It prints "camsim listening on HOST:PORT" on stdout once ready. SIGTERM stops it.
"""

import argparse
import base64
import hashlib
import os
import random
import selectors
import signal
import socket
import struct
import sys
import threading
import time
import urllib.parse

FPS = 25.0
REALM = "camsim"
USER, PASSWORD = "camsim", "camsim"


# ---- clips ---------------------------------------------------------------------------------

def split_annexb(data):
    """NAL units of an Annex B stream, start codes removed."""
    out, i, n = [], 0, len(data)
    starts = []
    while True:
        j = data.find(b"\x00\x00\x01", i)
        if j < 0:
            break
        starts.append(j + 3)
        i = j + 3
    for k, s in enumerate(starts):
        e = starts[k + 1] - 3 if k + 1 < len(starts) else n
        nal = data[s:e]
        while nal.endswith(b"\x00"):  # the zero byte of a 4-byte start code
            nal = nal[:-1]
        if nal:
            out.append(nal)
    return out


class Clip:
    """A clip as access units: each a list of NAL units, with its keyframe flag."""

    def __init__(self, path):
        self.h265 = path.endswith(".h265") or path.endswith(".hevc")
        nals = split_annexb(open(path, "rb").read())
        self.params = {}
        self.frames = []
        cur = []
        for nal in nals:
            t = self.nal_type(nal)
            if self.is_param(t):
                self.params.setdefault(t, nal)
            if self.is_param(t) or self.starts_picture(nal):
                if cur and any(self.is_vcl(self.nal_type(x)) for x in cur) and (
                        self.is_param(t) or self.first_slice(nal)):
                    self.frames.append(cur)
                    cur = []
            cur.append(nal)
        if cur:
            self.frames.append(cur)
        self.key = [any(self.is_key(self.nal_type(x)) for x in f) for f in self.frames]
        self.codec = "H265" if self.h265 else "H264"

    def nal_type(self, nal):
        return (nal[0] >> 1) & 0x3F if self.h265 else nal[0] & 0x1F

    def is_param(self, t):
        return t in (32, 33, 34) if self.h265 else t in (7, 8)

    def is_vcl(self, t):
        return t < 32 if self.h265 else 1 <= t <= 5

    def is_key(self, t):
        return 16 <= t <= 21 if self.h265 else t == 5

    def starts_picture(self, nal):
        return self.is_vcl(self.nal_type(nal))

    def first_slice(self, nal):
        # first_mb_in_slice == 0 (H.264: ue(v) 0 is a single 1 bit) or
        # first_slice_segment_in_pic_flag (H.265: first bit after the 2-byte header).
        if self.h265:
            return len(nal) > 2 and (nal[2] & 0x80) != 0
        return len(nal) > 1 and (nal[1] & 0x80) != 0

    def sdp_fmtp(self, pt):
        b64 = lambda b: base64.b64encode(b).decode()
        if self.h265:
            return "a=fmtp:%d sprop-vps=%s;sprop-sps=%s;sprop-pps=%s" % (
                pt, b64(self.params[32]), b64(self.params[33]), b64(self.params[34]))
        sps = self.params[7]
        return "a=fmtp:%d packetization-mode=1;profile-level-id=%s;sprop-parameter-sets=%s,%s" % (
            pt, sps[1:4].hex(), b64(sps), b64(self.params[8]))


def packetize(clip, nal, mtu=1400):
    """RTP payloads of one NAL unit: the unit itself, or FU fragments."""
    if len(nal) <= mtu:
        return [nal]
    out = []
    if clip.h265:
        t = (nal[0] >> 1) & 0x3F
        hdr = bytes([(nal[0] & 0x81) | (49 << 1), nal[1]])
        body = nal[2:]
        for k in range(0, len(body), mtu):
            fu = t | (0x80 if k == 0 else 0) | (0x40 if k + mtu >= len(body) else 0)
            out.append(hdr + bytes([fu]) + body[k:k + mtu])
    else:
        ind = (nal[0] & 0xE0) | 28
        body = nal[1:]
        for k in range(0, len(body), mtu):
            fu = (nal[0] & 0x1F) | (0x80 if k == 0 else 0) | (0x40 if k + mtu >= len(body) else 0)
            out.append(bytes([ind, fu]) + body[k:k + mtu])
    return out


# ---- live streams ---------------------------------------------------------------------------

class Live:
    """One path's live camera: a frame clock shared by its viewers."""

    def __init__(self, clip):
        self.clip = clip
        self.t0 = time.monotonic()
        self.ssrc = random.getrandbits(32)

    def frame_at(self, t):
        return int((t - self.t0) * FPS)

    def next_key(self, frame):
        """The first keyframe at or after frame: like most IP cameras, a new session starts
        with one (joining mid-GOP is the relay's business, not the camera's)."""
        n = len(self.clip.frames)
        for k in range(n):
            if self.clip.key[(frame + k) % n]:
                return frame + k
        return frame


class Viewer:
    def __init__(self, conn, live, tcp, channel, udp_addr):
        self.conn, self.live, self.tcp, self.channel, self.udp_addr = conn, live, tcp, channel, udp_addr
        self.seq = random.getrandbits(16)
        self.next_frame = live.frame_at(time.monotonic())
        self.started = time.monotonic()
        self.dead = False

    def rtp(self, payload, marker, ts):
        hdr = struct.pack("!BBHII", 0x80, (0x80 if marker else 0) | 96, self.seq, ts,
                          self.live.ssrc)
        self.seq = (self.seq + 1) & 0xFFFF
        return hdr + payload


# ---- the RTSP server ------------------------------------------------------------------------

class Conn:
    def __init__(self, server, sock, addr):
        self.server, self.sock, self.addr = server, sock, addr
        self.buf = b""
        self.session = "%016x" % random.getrandbits(64)
        self.viewer = None
        self.fault = server.fault
        self.path = None
        self.nonce = "%032x" % random.getrandbits(128)
        self.lock = threading.Lock()
        self.closed = False

    def send(self, data):
        with self.lock:
            if self.closed:
                return False
            try:
                self.sock.sendall(data)
                return True
            except OSError:
                self.closed = True
                return False

    def close(self):
        with self.lock:
            if not self.closed:
                self.closed = True
                try:
                    self.sock.close()
                except OSError:
                    pass

    def reply(self, cseq, status, headers=(), body=b""):
        reason = {200: "OK", 401: "Unauthorized", 404: "Not Found", 454: "Session Not Found",
                  455: "Method Not Valid in This State", 461: "Unsupported Transport",
                  501: "Not Implemented", 503: "Service Unavailable"}.get(status, "Error")
        lines = ["RTSP/1.0 %d %s" % (status, reason), "CSeq: %s" % cseq, "Server: camsim"]
        lines += list(headers)
        if body:
            lines.append("Content-Length: %d" % len(body))
        self.send(("\r\n".join(lines) + "\r\n\r\n").encode() + body)

    def authorized(self, method, uri, headers):
        if self.fault not in ("auth", "basic"):
            return True
        a = headers.get("authorization", "")
        if self.fault == "basic":
            return a == "Basic " + base64.b64encode(("%s:%s" % (USER, PASSWORD)).encode()).decode()
        if not a.startswith("Digest "):
            return False
        p = {}
        for part in a[7:].split(","):
            if "=" in part:
                k, v = part.strip().split("=", 1)
                p[k.strip()] = v.strip().strip('"')
        md5 = lambda s: hashlib.md5(s.encode()).hexdigest()
        ha1 = md5("%s:%s:%s" % (USER, REALM, PASSWORD))
        ha2 = md5("%s:%s" % (method, p.get("uri", uri)))
        if p.get("qop"):
            want = md5("%s:%s:%s:%s:%s:%s" % (ha1, p.get("nonce"), p.get("nc"), p.get("cnonce"),
                                              p["qop"], ha2))
        else:
            want = md5("%s:%s:%s" % (ha1, p.get("nonce"), ha2))
        return p.get("username") == USER and p.get("nonce") == self.nonce and \
            p.get("response") == want

    def challenge(self):
        if self.fault == "basic":
            return ['WWW-Authenticate: Basic realm="%s"' % REALM]
        return ['WWW-Authenticate: Digest realm="%s", nonce="%s"' % (REALM, self.nonce)]

    def handle(self, head):
        lines = head.decode("latin-1").split("\r\n")
        try:
            method, uri, version = lines[0].split(" ")
        except ValueError:
            self.close()
            return
        headers = {}
        for l in lines[1:]:
            if ":" in l:
                k, v = l.split(":", 1)
                headers[k.strip().lower()] = v.strip()
        cseq = headers.get("cseq", "0")
        u = urllib.parse.urlsplit(uri)
        q = urllib.parse.parse_qs(u.query)
        if self.path is None and method != "OPTIONS" or method == "DESCRIBE":
            self.path = u.path.split("/trackID")[0] or "/"
            if "fault" in q:
                self.fault = q["fault"][0]
        if "fault" in q and self.fault is None:
            self.fault = q["fault"][0]
        if self.fault == "slow":
            time.sleep(2)
        if self.fault == "refuse":
            self.reply(cseq, 503)
            return
        if method == "OPTIONS":
            self.reply(cseq, 200, ["Public: OPTIONS, DESCRIBE, SETUP, PLAY, TEARDOWN, "
                                   "GET_PARAMETER"])
            return
        if not self.authorized(method, uri, headers):
            self.reply(cseq, 401, self.challenge())
            return
        live = self.server.live_for(self.path)
        base = "rtsp://%s%s" % (u.netloc.split("@")[-1], self.path)
        if method == "DESCRIBE":
            sdp = "\r\n".join([
                "v=0", "o=- %d 1 IN IP4 127.0.0.1" % live.ssrc, "s=camsim", "t=0 0",
                "a=control:*", "m=video 0 RTP/AVP 96", "c=IN IP4 0.0.0.0",
                "a=rtpmap:96 %s/90000" % live.clip.codec, live.clip.sdp_fmtp(96),
                "a=control:trackID=0", ""]).encode()
            self.reply(cseq, 200, ["Content-Type: application/sdp",
                                   "Content-Base: %s/" % base], sdp)
        elif method == "SETUP":
            t = headers.get("transport", "")
            if "interleaved" in t or "TCP" in t:
                ch = 0
                if "interleaved=" in t:
                    ch = int(t.split("interleaved=")[1].split("-")[0].split(";")[0])
                self.viewer = Viewer(self, live, True, ch, None)
                tr = "RTP/AVP/TCP;unicast;interleaved=%d-%d" % (ch, ch + 1)
            elif "client_port=" in t:
                port = int(t.split("client_port=")[1].split("-")[0].split(";")[0])
                self.viewer = Viewer(self, live, False, 0, (self.addr[0], port))
                tr = "RTP/AVP;unicast;client_port=%d-%d;server_port=%d-%d" % (
                    port, port + 1, self.server.udp_port, self.server.udp_port + 1)
            else:
                self.reply(cseq, 461)
                return
            self.reply(cseq, 200, ["Transport: " + tr, "Session: %s;timeout=60" % self.session])
        elif method == "PLAY":
            if self.viewer is None:
                self.reply(cseq, 455)
                return
            self.reply(cseq, 200, ["Session: " + self.session, "Range: npt=now-"])
            self.viewer.started = time.monotonic()
            self.viewer.next_frame = live.next_key(live.frame_at(time.monotonic()))
            self.server.add_viewer(self.viewer)
        elif method == "GET_PARAMETER":
            self.reply(cseq, 200, ["Session: " + self.session])
        elif method == "TEARDOWN":
            self.reply(cseq, 200, ["Session: " + self.session])
            self.server.drop_viewer(self.viewer)
            self.close()
        else:
            self.reply(cseq, 501)

    def on_data(self, data):
        self.buf += data
        while True:
            if self.buf.startswith(b"$"):  # RTCP from the client over TCP: skip it
                if len(self.buf) < 4:
                    return
                n = struct.unpack("!H", self.buf[2:4])[0]
                if len(self.buf) < 4 + n:
                    return
                self.buf = self.buf[4 + n:]
                continue
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                if len(self.buf) > 65536:
                    self.close()
                return
            head, self.buf = self.buf[:end], self.buf[end + 4:]
            self.handle(head)


class Server:
    def __init__(self, host, port, clips, fault):
        self.fault = fault
        self.clips = clips
        self.lives = {}
        self.viewers = []
        self.vlock = threading.Lock()
        self.sel = selectors.DefaultSelector()
        self.ls = socket.socket()
        self.ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.ls.bind((host, port))
        self.ls.listen(128)
        self.ls.setblocking(False)
        self.sel.register(self.ls, selectors.EVENT_READ)
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind((host, 0))
        self.udp_port = self.udp.getsockname()[1]
        self.stop = False

    def live_for(self, path):
        if path not in self.lives:
            clip = self.clips["h265"] if "265" in path else self.clips["h264"]
            self.lives[path] = Live(clip)
        return self.lives[path]

    def add_viewer(self, v):
        with self.vlock:
            if v not in self.viewers:
                self.viewers.append(v)

    def drop_viewer(self, v):
        with self.vlock:
            if v in self.viewers:
                self.viewers.remove(v)

    def pump(self):
        """The media thread: every frame due is sent to every viewer of its path."""
        while not self.stop:
            now = time.monotonic()
            with self.vlock:
                viewers = list(self.viewers)
            for v in viewers:
                fault = v.conn.fault
                since = now - v.started
                if v.conn.closed or v.dead:
                    self.drop_viewer(v)
                    continue
                if fault == "drop" and since > 3:
                    v.conn.close()
                    continue
                if fault == "stall" and since > 3:
                    continue
                if fault == "resize" and since > 3 and v.live.clip is not self.clips["h264_720"]:
                    v.live = Live(self.clips["h264_720"])
                    v.next_frame = v.live.frame_at(now)  # frame 0 of the new clip: a keyframe
                due = v.live.frame_at(now)
                while v.next_frame <= due:
                    clip = v.live.clip
                    idx = v.next_frame % len(clip.frames)
                    ts = int(v.next_frame * 90000 / FPS) & 0xFFFFFFFF
                    nals = list(clip.frames[idx])
                    if clip.key[idx] and not any(clip.is_param(clip.nal_type(n)) for n in nals):
                        ptypes = (32, 33, 34) if clip.h265 else (7, 8)
                        nals = [clip.params[t] for t in ptypes] + nals
                    pkts = []
                    for k, nal in enumerate(nals):
                        parts = packetize(clip, nal)
                        for j, p in enumerate(parts):
                            last = k == len(nals) - 1 and j == len(parts) - 1
                            pkts.append(v.rtp(p, last, ts))
                    if fault == "garbage" and since > 1:
                        pkts = [os.urandom(random.randint(1, 1500)) for _ in pkts]
                    for p in pkts:
                        if v.tcp:
                            ok = v.conn.send(struct.pack("!cBH", b"$", v.channel, len(p)) + p)
                        else:
                            try:
                                self.udp.sendto(p, v.udp_addr)
                                ok = True
                            except OSError:
                                ok = False
                        if not ok:
                            v.dead = True
                            break
                    v.next_frame += 1
            time.sleep(0.004)

    def serve(self):
        threading.Thread(target=self.pump, daemon=True).start()
        conns = {}
        while not self.stop:
            for key, _ in self.sel.select(timeout=0.2):
                if key.fileobj is self.ls:
                    try:
                        s, addr = self.ls.accept()
                    except OSError:
                        continue
                    s.setblocking(True)
                    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                    c = Conn(self, s, addr)
                    conns[s] = c
                    self.sel.register(s, selectors.EVENT_READ)
                else:
                    c = conns.get(key.fileobj)
                    try:
                        data = key.fileobj.recv(65536)
                    except OSError:
                        data = b""
                    if not data or c is None or c.closed:
                        self.sel.unregister(key.fileobj)
                        conns.pop(key.fileobj, None)
                        if c is not None:
                            self.drop_viewer(c.viewer)
                            c.close()
                        continue
                    # Slow answers must not hold the other cameras: a thread per request then.
                    if c.fault == "slow" or (b"fault=slow" in data):
                        threading.Thread(target=c.on_data, args=(data,), daemon=True).start()
                    else:
                        c.on_data(data)
            for s, c in list(conns.items()):
                if c.closed:
                    try:
                        self.sel.unregister(s)
                    except (KeyError, ValueError):
                        pass
                    conns.pop(s, None)


def main():
    ap = argparse.ArgumentParser(description="cctvhub camera simulator (RTSP)")
    ap.add_argument("--listen", default="127.0.0.1:8554")
    ap.add_argument("--clips", default=os.path.join(os.path.dirname(__file__), "clips"))
    ap.add_argument("--fault", default=None)
    ap.add_argument("--quiet", action="store_true")
    a = ap.parse_args()
    host, port = a.listen.rsplit(":", 1)
    clips = {}
    for name, file in (("h264", "1080p.h264"), ("h265", "720p.h265"), ("h264_720", "720p.h264")):
        path = os.path.join(a.clips, file)
        if not os.path.exists(path):
            sys.exit("camsim: %s is missing; run tools/camsim/make_clips.sh %s" % (path, a.clips))
        clips[name] = Clip(path)
    srv = Server(host, int(port), clips, a.fault)
    signal.signal(signal.SIGTERM, lambda *_: setattr(srv, "stop", True))
    print("camsim listening on %s:%d" % (host, srv.ls.getsockname()[1]), flush=True)
    srv.serve()


if __name__ == "__main__":
    main()
