"""The relay pulling cameras over RTP/UDP (relay.pull_transport = udp): camsim answers the
UDP SETUP and sends RTP from its UDP port; ffmpeg decodes through the relay with no error; the
GStreamer camera does too; packets from another host or port than the camera's are not taken
for its video."""

import os
import socket
import struct
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
import hub  # noqa: E402
from hub import check, wait_for  # noqa: E402
from cameras import camsim, gstcam  # noqa: E402
from events import playing, stop_everything, with_site  # noqa: E402
from viewers import DECODE_ERRORS, Watch  # noqa: E402

UDP = {"CCTVHUB_RELAY_PULL_TRANSPORT": "udp"}


def test_cameras_pulled_over_udp_decode_through_the_relay():
    c, g = camsim(), gstcam()

    def run(s):
        sim = s.camera("sim udp", c.url("relay-udp"))
        gst = s.camera("gst udp", g.url("/h264"))
        _, grants = s.open()
        for cid in (sim, gst):
            wait_for(lambda: playing(s, cid), 20, "camera %d playing over UDP" % cid)
        for cid in (sim, gst):
            w = Watch(grants[cid]["rtsp_url"], seconds=4)
            w.wait(40)
            check(w.p.returncode == 0 and w.frames() >= 4 * 20 and
                  not DECODE_ERRORS.search(w.stderr()),
                  "camera %d: %d frames: %s" % (cid, w.frames(), w.stderr()[-400:]))
            st = s.stream(cid)
            check(st["transport"] == "udp" and st["reconnects"] == 0 and st["fps"] > 20, st)
        # Bytes sprayed at every UDP port the relay may have opened are not the camera's.
        before = s.stream(sim)["packets_in"]
        spray = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        junk = struct.pack("!BBHII", 0x80, 96, 1, 2, 3) + b"\x65" * 200
        for port in range(1024, 65535, 2):
            try:
                spray.sendto(junk, ("127.0.0.1", port))
            except OSError:
                pass
        spray.close()
        w = Watch(grants[sim]["rtsp_url"], seconds=3)
        w.wait(40)
        check(w.p.returncode == 0 and not DECODE_ERRORS.search(w.stderr()),
              "after the spray: %s" % w.stderr()[-400:])
        st = s.stream(sim)
        check(st["state"] == "playing" and st["reconnects"] == 0 and st["packets_in"] > before,
              st)

    with_site(run, env=UDP)


if __name__ == "__main__":
    try:
        hub.main([test_cameras_pulled_over_udp_decode_through_the_relay])
    finally:
        stop_everything()
