#!/usr/bin/python3
"""gst_tls_view: GStreamer's rtspsrc as an RTSPS viewer of the relay, for the tests. The
server's certificate is checked against a CA file (a GTlsDatabase, every validation flag on),
which gst-launch cannot set: rtspsrc (TCP interleaved) ! decodebin ! fakesink takes
`buffers` decoded frames, then the script exits 0; an error (a certificate refused, the
stream cut) exits 1 with GStreamer's message on stderr, and so does the time running out.

usage: gst_tls_view.py URL BUFFERS [--ca CA.pem] [--timeout S]
Without --ca the system's CAs are used (a test CA is then refused, as it should be).
Runs under a Python that has the gi module (Debian's /usr/bin/python3 with python3-gi)."""

import argparse
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("Gio", "2.0")
from gi.repository import Gio, GLib, Gst  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("url")
    ap.add_argument("buffers", type=int)
    ap.add_argument("--ca")
    ap.add_argument("--timeout", type=float, default=60)
    a = ap.parse_args()
    Gst.init(None)
    pipe = Gst.parse_launch("rtspsrc name=src protocols=tcp ! decodebin ! "
                            "fakesink name=sink num-buffers=%d" % a.buffers)
    src = pipe.get_by_name("src")
    src.set_property("location", a.url)
    if a.ca:
        src.set_property("tls-database", Gio.TlsFileDatabase.new(a.ca))
    src.set_property("tls-validation-flags", Gio.TlsCertificateFlags.VALIDATE_ALL)
    loop = GLib.MainLoop()
    result = {"code": 1, "why": "timed out"}

    def on_message(_bus, msg):
        if msg.type == Gst.MessageType.EOS:
            result.update(code=0, why="")
            loop.quit()
        elif msg.type == Gst.MessageType.ERROR:
            err, dbg = msg.parse_error()
            result.update(code=1, why="%s (%s)" % (err.message, dbg))
            loop.quit()

    bus = pipe.get_bus()
    bus.add_signal_watch()
    bus.connect("message", on_message)
    GLib.timeout_add(int(a.timeout * 1000), loop.quit)
    pipe.set_state(Gst.State.PLAYING)
    loop.run()
    pipe.set_state(Gst.State.NULL)
    if result["code"] != 0:
        sys.stderr.write("gst_tls_view: %s\n" % result["why"])
    sys.exit(result["code"])


if __name__ == "__main__":
    main()
