#!/usr/bin/python3
"""bench/relay/gst_relay.py: the reference relay of the relay benchmark, GStreamer's RTSP server
(gst-rtsp-server through python3-gi) relaying one upstream RTSP camera to any number of viewers.

One shared media factory: the first viewer's DESCRIBE starts the pipeline

    rtspsrc location=UPSTREAM protocols=tcp latency=0 ! rtph264depay ! h264parse
        ! rtph264pay name=pay0 pt=96 config-interval=-1

and every later viewer of the path shares it (one pull of the camera, as a relay does). The
jitter buffer's latency is 0 so that the reference adds no delay of its own (rtspsrc's default
is 2 s); parameter sets go before every keyframe (config-interval=-1), so a viewer can start at
any keyframe. The listen backlog is raised from GStreamer's default of 5 so that hundreds of
viewers connecting at once are not turned away by the kernel before the server sees them.

usage: gst_relay.py --upstream rtsp://127.0.0.1:8554/cam1 [--listen 127.0.0.1:8555]
                    [--path /cam] [--codec h264|h265]
Prints "ready rtsp://HOST:PORT/PATH" on stdout once listening. SIGTERM or SIGINT stops it.
"""

import argparse
import signal
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtsp", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtsp, GstRtspServer  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description="GStreamer RTSP relay of one camera (reference)")
    ap.add_argument("--upstream", required=True, help="the camera's rtsp:// URL")
    ap.add_argument("--listen", default="127.0.0.1:8555")
    ap.add_argument("--path", default="/cam")
    ap.add_argument("--codec", choices=("h264", "h265"), default="h264")
    ap.add_argument("--backlog", type=int, default=4096)
    a = ap.parse_args()
    Gst.init(None)
    host, port = a.listen.rsplit(":", 1)
    n = "4" if a.codec == "h264" else "5"
    launch = ("( rtspsrc location=%s protocols=tcp latency=0 ! rtph26%sdepay ! h26%sparse "
              "! rtph26%spay name=pay0 pt=96 config-interval=-1 )" % (a.upstream, n, n, n))
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(launch)
    factory.set_shared(True)
    factory.set_protocols(GstRtsp.RTSPLowerTrans.TCP)
    server = GstRtspServer.RTSPServer()
    server.set_address(host)
    server.set_service(port)
    server.set_backlog(a.backlog)
    server.get_mount_points().add_factory(a.path, factory)
    if server.attach(None) == 0:
        sys.exit("gst_relay: cannot listen on %s" % a.listen)
    loop = GLib.MainLoop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, sig, loop.quit)
    print("ready rtsp://%s:%d%s" % (host, server.get_bound_port(), a.path), flush=True)
    loop.run()


if __name__ == "__main__":
    main()
