#!/usr/bin/env python3
"""Coverage benchmark: how long the largest coverage request takes, and how long the hub's
control loop stalls meanwhile.

Starts the hub (CCTVHUB_BIN, default build/release/cctvhub) over the real Busan and Daejeon
files, then sends POST /api/v1/geo/coverage?cell_m=5 over Busan's old town with a polygon of
9,999 positions: a circle (a district boundary's typical work) and a saw-tooth comb whose every
edge spans the whole height (the most work per grid row). While each runs, one client asks
GET /api/v1/health back to back; the worst answer time is the loop's worst stall.

usage: CCTVHUB_BIN=build/release/cctvhub bench/geo/coverage.py   (ROUNDS=N, default 3)
"""

import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
sys.path.insert(0, os.path.join(ROOT, "tests", "support"))
os.environ.setdefault("CCTVHUB_BIN", os.path.join(ROOT, "build", "release", "cctvhub"))

import hub  # noqa: E402
from hub import Hub, check, run  # noqa: E402

SOUTH, WEST, HEIGHT, WIDTH = 35.085, 129.01, 0.0448, 0.0548  # ~995 x ~1,000 cells of 5 m


def circle(n):
    ring = [[WEST + WIDTH / 2 * (1 + math.cos(2 * math.pi * i / (n - 1))),
             SOUTH + HEIGHT / 2 * (1 + math.sin(2 * math.pi * i / (n - 1)))] for i in range(n - 1)]
    return {"type": "Polygon", "coordinates": [ring + [ring[0]]]}


def comb(n):
    teeth = (n - 3) // 2
    ring = []
    for i in range(teeth):
        x = WEST + WIDTH * i / teeth
        ring += [[x, SOUTH], [x + WIDTH / teeth / 2, SOUTH + HEIGHT]]
    ring += [[WEST + WIDTH, SOUTH - 0.00001], [WEST, SOUTH - 0.00001]]
    return {"type": "Polygon", "coordinates": [ring + [ring[0]]]}


def measure(h, poly):
    """(request seconds, worst /api/v1/health seconds meanwhile, stats). The request goes
    through curl, a process of its own, so that reading and parsing its megabytes cannot hold
    this interpreter's lock while the probe waits."""
    with tempfile.NamedTemporaryFile(suffix=".json") as f, \
            tempfile.NamedTemporaryFile(suffix=".json") as answer:
        f.write(json.dumps(poly).encode())
        f.flush()
        t0 = time.monotonic()
        p = subprocess.Popen(
            ["curl", "-sS", "-o", answer.name, "-w", "%{http_code}", "--max-time", "600",
             "-H", "Cookie: " + h.cookie, "-H", "X-CSRF-Token: " + h.csrf,
             "-H", "Content-Type: application/json", "--data-binary", "@" + f.name,
             "http://127.0.0.1:%d/api/v1/geo/coverage?cell_m=5" % h.port],
            stdout=subprocess.PIPE)
        worst = 0.0
        while p.poll() is None:
            t1 = time.monotonic()
            c = h.conn(timeout=600)
            c.request("GET", "/api/v1/health")
            status = c.getresponse().status
            c.close()
            worst = max(worst, time.monotonic() - t1)
            check(status == 200, status)
        took = time.monotonic() - t0
        code = p.stdout.read().decode()
        data = open(answer.name, "rb").read()
    check(code == "200", (code, data[:300]))
    return took, worst, json.loads(data)["stats"]


def main():
    rounds = int(os.environ.get("ROUNDS", "3"))
    d = tempfile.mkdtemp(prefix="cctvhub-cov-")
    code, _, err = run(["import", "--data-dir", d, "--json",
                        os.path.join(hub.DATA_DIR, "busan_cctv_std_20241206_utf8_crlf.csv"),
                        os.path.join(hub.DATA_DIR, "daejeon_5gu_cctv_std_20260520_cp949.csv")],
                       env={"CCTVHUB_LOG_LEVEL": "warn"})
    check(code == 0, err[-1000:])
    h = Hub(data_dir=d)
    try:
        print("%-8s %10s %14s %s" % ("polygon", "request s", "worst stall s", "grid"))
        for name, poly in (("circle", circle(9999)), ("comb", comb(9999))):
            for _ in range(rounds):
                took, worst, s = measure(h, poly)
                print("%-8s %10.3f %14.3f %dx%d, %d inside, %d seen" % (
                    name, took, worst, s["rows"], s["cols"], s["cells_inside"], s["cells_seen"]),
                    flush=True)
        h.stop()
    finally:
        h.cleanup()
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
