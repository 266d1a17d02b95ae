"""A WebSocket client on a raw socket, as a browser speaks it, for the live alerts and the
live video; ws_path and collect read a grant's live video through it."""

import base64
import json
import os
import socket
import struct
import tempfile
import time

from hub import check, read_head


class Ws:
    """A WebSocket client on a raw socket, as a browser speaks it (masked frames)."""

    def __init__(self, port, path, headers=(), upgrade=True):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=15)
        key = base64.b64encode(os.urandom(16)).decode()
        lines = ["GET %s HTTP/1.1" % path, "Host: 127.0.0.1:%d" % port]
        if upgrade:
            lines += ["Upgrade: websocket", "Connection: Upgrade",
                      "Sec-WebSocket-Key: " + key, "Sec-WebSocket-Version: 13"]
        lines += list(headers)
        self.s.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        buf = read_head(self.s)
        head, _, self.buf = buf.partition(b"\r\n\r\n")
        self.head = head.decode("latin-1")
        self.status = int(self.head.split(" ")[1]) if self.head.startswith("HTTP/1.1 ") else 0
        self.body = self.buf if self.status != 101 else b""

    def _fill(self):
        d = self.s.recv(65536)
        if not d:
            raise EOFError("closed")
        self.buf += d

    def frame(self):
        """(opcode, payload) of the next frame from the hub."""
        while True:
            b = self.buf
            if len(b) >= 2:
                check(b[1] & 0x80 == 0, "the hub masked a frame")
                n, hl = b[1] & 0x7F, 2
                if n == 126 and len(b) >= 4:
                    n, hl = struct.unpack("!H", b[2:4])[0], 4
                elif n == 127 and len(b) >= 10:
                    n, hl = struct.unpack("!Q", b[2:10])[0], 10
                if (b[1] & 0x7F) < 126 or hl > 2:
                    if len(b) >= hl + n:
                        self.buf = b[hl + n:]
                        check(b[0] & 0x80, "a fragmented message")
                        return b[0] & 0x0F, b[hl:hl + n]
            self._fill()

    def send(self, opcode, payload):
        mask = os.urandom(4)
        data = bytes(x ^ mask[i % 4] for i, x in enumerate(payload))
        self.s.sendall(bytes([0x80 | opcode, 0x80 | len(payload)]) + mask + data)

    def close(self):
        self.s.close()


def ws_path(grant):
    return "/" + grant["ws_url"].split("/", 3)[3]


def collect(ws, seconds):
    """Reads for that long: the text messages, and the binary ones written to a file."""
    f = tempfile.NamedTemporaryFile(prefix="cctvhub-ws-", suffix=".mp4", delete=False)
    texts, n = [], 0
    end = time.time() + seconds
    while time.time() < end:
        op, payload = ws.frame()
        if op == 1:
            texts.append(json.loads(payload))
        elif op == 2:
            f.write(payload)
            n += 1
        elif op == 8:
            break
    f.close()
    return texts, n, f.name
