#!/usr/bin/python3
"""gstcam: a camera we did not write, for the relay's tests. GStreamer's own RTSP server
(gst-rtsp-server through python3-gi) serves a live test pattern, as a real IP camera does:
one encoder per path shared by every client (a shared media factory), fed by a live source,
so a client that connects later joins the running stream instead of restarting it.

Paths:
  /h264   640x360 at 25 fps, x264 (zero latency, a keyframe every 2 s), RFC 6184
  /h265   the same through x265, RFC 7798 (only when gstreamer1.0-plugins-bad has x265enc)

usage: gstcam.py --listen 127.0.0.1:PORT [--width W] [--height H] [--fps F] [--bitrate KBITS]
                 [--tls-cert PEM]
(the port must be given and free)
With --tls-cert (a PEM file holding the certificate, its chain and its key) every connection
speaks TLS: an RTSPS camera (gst_rtsp_auth_set_tls_certificate), open to anonymous clients.
It prints "ready 127.0.0.1:PORT /h264 /h265" (the paths it serves) on stdout once listening.
SIGTERM or SIGINT stops it.

Runs under a Python that has the gi module (Debian's /usr/bin/python3 with python3-gi,
gir1.2-gst-rtsp-server-1.0 and python3-gst-1.0)."""

import argparse
import signal
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import Gio, GLib, Gst, GstRtspServer  # noqa: E402

SOURCE = ("videotestsrc is-live=true pattern=ball ! "
          "video/x-raw,width=%d,height=%d,framerate=%d/1 ! videoconvert ! ")
ENCODERS = {
    # config-interval=-1: the parameter sets go in band before every keyframe, so a client
    # joining the shared stream can decode from the next keyframe on.
    "h264": ("x264enc", "x264enc tune=zerolatency key-int-max=%d speed-preset=ultrafast "
                        "bitrate=%d ! video/x-h264,profile=constrained-baseline ! "
                        "rtph264pay name=pay0 pt=96 config-interval=-1"),
    "h265": ("x265enc", "x265enc tune=zerolatency key-int-max=%d speed-preset=ultrafast "
                        "bitrate=%d ! video/x-h265,profile=main ! "
                        "rtph265pay name=pay0 pt=96 config-interval=-1"),
}


def main():
    ap = argparse.ArgumentParser(description="GStreamer RTSP server camera for tests")
    ap.add_argument("--listen", required=True, help="ADDR:PORT (a free port)")
    ap.add_argument("--width", type=int, default=640)
    ap.add_argument("--height", type=int, default=360)
    ap.add_argument("--fps", type=int, default=25)
    ap.add_argument("--bitrate", type=int, default=800, help="kbit/s, at most")
    ap.add_argument("--tls-cert", default=None, help="PEM: certificate, chain and key (RTSPS)")
    a = ap.parse_args()
    host, port = a.listen.rsplit(":", 1)
    if int(port) <= 0:
        sys.exit("gstcam: give a port (the RTSP server cannot report one it picked)")

    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address(host)
    server.set_service(port)
    if a.tls_cert:
        # An auth object with a certificate makes every connection TLS; anonymous clients get
        # a token whose role the factories below let in, as a camera without passwords would.
        auth = GstRtspServer.RTSPAuth()
        auth.set_tls_certificate(Gio.TlsCertificate.new_from_file(a.tls_cert))
        token = GstRtspServer.RTSPToken()
        token.set_string("media.factory.role", "anonymous")
        auth.set_default_token(token)
        server.set_auth(auth)
    mounts = server.get_mount_points()
    paths = []
    for name, (element, chain) in ENCODERS.items():
        if Gst.ElementFactory.find(element) is None:
            print("gstcam: no %s here, /%s not served" % (element, name), file=sys.stderr)
            continue
        factory = GstRtspServer.RTSPMediaFactory()
        launch = SOURCE % (a.width, a.height, a.fps) + chain % (2 * a.fps, a.bitrate)
        factory.set_launch("( " + launch + " )")
        factory.set_shared(True)
        if a.tls_cert:
            factory.add_role_from_structure(Gst.Structure.new_from_string(
                "anonymous, media.factory.access=(boolean)true, "
                "media.factory.construct=(boolean)true"))
        mounts.add_factory("/" + name, factory)
        paths.append("/" + name)

    if server.attach(None) == 0:
        sys.exit("gstcam: cannot listen on %s" % a.listen)
    loop = GLib.MainLoop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, sig, loop.quit)
    print("ready %s:%s %s" % (host, port, " ".join(paths)), flush=True)
    loop.run()


if __name__ == "__main__":
    main()
