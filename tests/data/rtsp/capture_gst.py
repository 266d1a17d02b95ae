#!/usr/bin/python3
"""Captures real RTSP answers of GStreamer's RTSP server, as fixtures for tests/unit/proto.

Serves ( videotestsrc ! x264enc ! rtph264pay name=pay0 pt=96 ) on 127.0.0.1 at a free port,
sends OPTIONS, DESCRIBE and SETUP (TCP interleaved) over a plain socket, and writes each raw
answer to tests/data/rtsp/gst_<method>.txt, unchanged (CRLF line ends, the SDP body included).
Then it sends PLAY and keeps the first 16 KiB of what comes back, the PLAY answer followed by
'$'-interleaved RTP and RTCP frames, as gst_play_stream.bin (cut wherever the 16 KiB end).
The port in the fixtures is whatever was free at capture time; the tests do not depend on it.
Run with the system python3 (it needs python3-gi and gir1.2-gst-rtsp-server-1.0):
    /usr/bin/python3 tests/data/rtsp/capture_gst.py
"""
import os
import socket
import threading

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def read_answer(sock):
    """Reads one RTSP answer: the head, then Content-Length bytes of body."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            raise RuntimeError("connection closed")
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(rest) < length:
        rest += sock.recv(4096)
    return head + b"\r\n\r\n" + rest[:length]


def main():
    Gst.init(None)
    port = free_port()
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(port))
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch("( videotestsrc is-live=true ! x264enc tune=zerolatency "
                       "! rtph264pay name=pay0 pt=96 config-interval=1 )")
    factory.set_shared(True)
    server.get_mount_points().add_factory("/test", factory)
    server.attach(None)
    loop = GLib.MainLoop()
    threading.Thread(target=loop.run, daemon=True).start()

    url = "rtsp://127.0.0.1:%d/test" % port
    sock = socket.create_connection(("127.0.0.1", port), timeout=20)
    requests = [
        ("options", "OPTIONS %s RTSP/1.0\r\nCSeq: 1\r\nUser-Agent: cctvhub-capture\r\n\r\n" % url),
        ("describe", "DESCRIBE %s RTSP/1.0\r\nCSeq: 2\r\nAccept: application/sdp\r\n"
                     "User-Agent: cctvhub-capture\r\n\r\n" % url),
        ("setup", "SETUP %s/stream=0 RTSP/1.0\r\nCSeq: 3\r\n"
                  "Transport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n"
                  "User-Agent: cctvhub-capture\r\n\r\n" % url),
    ]
    for name, req in requests:
        sock.sendall(req.encode())
        answer = read_answer(sock)
        with open(os.path.join(HERE, "gst_%s.txt" % name), "wb") as f:
            f.write(answer)
        print("%s: %d bytes" % (name, len(answer)))
        if name == "setup":
            for line in answer.split(b"\r\n"):
                if line.lower().startswith(b"session:"):
                    session = line.split(b":", 1)[1].strip().split(b";")[0].decode()
    sock.sendall(("PLAY %s/ RTSP/1.0\r\nCSeq: 4\r\nSession: %s\r\nRange: npt=0.000-\r\n"
                  "User-Agent: cctvhub-capture\r\n\r\n" % (url, session)).encode())
    stream = b""
    while len(stream) < 16384:
        chunk = sock.recv(16384 - len(stream))
        if not chunk:
            break
        stream += chunk
    with open(os.path.join(HERE, "gst_play_stream.bin"), "wb") as f:
        f.write(stream)
    print("play: %d bytes" % len(stream))
    sock.close()
    loop.quit()


if __name__ == "__main__":
    main()
