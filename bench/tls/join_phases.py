#!/usr/bin/env python3
"""bench/tls/join_phases.py: where a mass join's time goes, from `viewers --phases FILE` (one line
per viewer: the times, in ms from the run's start, of connect(), connection up, the OPTIONS,
DESCRIBE, SETUP and PLAY answers and the first keyframe; 0 where not reached).

  join_phases.py [--log HUB_LOG] [--metrics BEFORE AFTER] PHASES.csv

Prints a Markdown table: for each step, when the viewers got there (p50 / p95 / max, from the
run's start) and how long the step itself took (from the previous step's end; p50 / p95 / max),
so that a step the viewers queue for (all answered late, each quickly) shows apart from a step
that is slow for each viewer. With --log, the hub's "viewer playing" lines (written when the
view.start record is durable, just before the PLAY answer is queued; ms resolution) are matched
to the viewers by their port and placed on the same time line (the file's t0_wall): the PLAY
step splits into SETUP answered -> the hub has the record (the audit's write and fdatasync, and
the wait for the control loop), and the hub's line -> PLAY answer read (the media loop's way
to the socket: the writes queued before it, GOP bursts of the viewers before). With --metrics,
two scrapes of the hub's /metrics around the join give the audit's group commits: records
made durable, commits (one write and one fdatasync each), records per commit, fdatasync time.
"""

import argparse
import datetime
import re
import statistics

STEPS = ["connect", "up", "options", "describe", "setup", "play", "keyframe"]
WHAT = {
    "up": "connection up (accepted)",
    "options": "OPTIONS answered",
    "describe": "DESCRIBE answered (token checked, SDP)",
    "setup": "SETUP answered",
    "play": "PLAY answered (view.start durable)",
    "keyframe": "first keyframe began (GOP burst)",
}


def q(xs, p):
    if not xs:
        return 0.0
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p * (len(xs) - 1) + 0.5))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("phases")
    ap.add_argument("--log")
    ap.add_argument("--metrics", nargs=2)
    a = ap.parse_args()
    rows = []
    with open(a.phases) as f:
        wall0 = float(f.readline().split("t0_wall=")[1].split()[0])
        next(f)
        for line in f:
            v = [float(x) for x in line.strip().split(",")[1:]]
            r = dict(zip(STEPS, v[1:]))
            r["port"] = int(v[0])
            rows.append(r)
    n = len(rows)
    print("| step (%d viewers) | reached | at p50 / p95 / max (ms from the start) | the step took p50 / p95 / max (ms) |" % n)
    print("| --- | --- | --- | --- |")
    for i, s in enumerate(STEPS[1:], 1):
        prev = STEPS[i - 1]
        at = [r[s] for r in rows if r[s] > 0]
        took = [r[s] - r[prev] for r in rows if r[s] > 0 and r[prev] > 0]
        print("| %s | %d | %.0f / %.0f / %.0f | %.1f / %.1f / %.1f |" % (
            WHAT[s], len(at), q(at, 0.5), q(at, 0.95), max(at, default=0), q(took, 0.5),
            q(took, 0.95), max(took, default=0)))
    if a.log:
        ts, by_port = [], {}
        pat = re.compile(r'^ts=(\S+) .*msg="viewer playing".* peer=\S*:(\d+)')
        with open(a.log, errors="replace") as f:
            for line in f:
                m = pat.match(line)
                if m:
                    t = datetime.datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S.%fZ")
                    t = t.replace(tzinfo=datetime.timezone.utc).timestamp()
                    ts.append((t - wall0) * 1e3)
                    by_port[int(m.group(2))] = ts[-1]
        if ts:
            ts.sort()
            print()
            print("the hub's \"viewer playing\" lines: %d, the first at %.0f ms, p50 %.0f, p95 %.0f, "
                  "the last at %.0f ms (%.0f PLAY answers a second between the first and the last)"
                  % (len(ts), ts[0], q(ts, 0.5), q(ts, 0.95), ts[-1],
                     (len(ts) - 1) / max((ts[-1] - ts[0]) / 1e3, 1e-3)))
            buckets = {}
            for t in ts:
                buckets[int(t // 100)] = buckets.get(int(t // 100), 0) + 1
            print("per 100 ms: " + ", ".join("%d-%d ms: %d" % (b * 100, b * 100 + 100, c)
                                             for b, c in sorted(buckets.items())))
            rec = [by_port[r["port"]] - r["setup"] for r in rows
                   if r["port"] in by_port and r["setup"] > 0]
            out = [r["play"] - by_port[r["port"]] for r in rows
                   if r["port"] in by_port and r["play"] > 0]
            print()
            print("the PLAY step split at the hub's line (%d viewers matched by port; +-1 ms): "
                  "SETUP answered -> view.start durable p50 %.0f / p95 %.0f / max %.0f ms; "
                  "durable -> PLAY answer read p50 %.0f / p95 %.0f / max %.0f ms"
                  % (len(rec), q(rec, 0.5), q(rec, 0.95), max(rec, default=0), q(out, 0.5),
                     q(out, 0.95), max(out, default=0)))
    if a.metrics:
        m0, m1 = (metrics(p) for p in a.metrics)
        d = lambda k: m1.get(k, 0) - m0.get(k, 0)
        recs, commits = d("cctvhub_audit_appends_total"), d("cctvhub_audit_commits_total")
        fs, fc = d("cctvhub_audit_fsync_duration_seconds_sum"), d(
            "cctvhub_audit_fsync_duration_seconds_count")
        print()
        print("the audit during the join (/metrics before and after): %d records made durable in "
              "%d group commits (%.1f records a commit); fdatasync %.0f ms in all, %.2f ms each "
              "on average" % (recs, commits, recs / max(commits, 1), fs * 1e3,
                              fs * 1e3 / max(fc, 1)))


def metrics(path):
    """The unlabelled samples of a Prometheus text page, by name."""
    out = {}
    with open(path) as f:
        for line in f:
            if line.startswith("#") or "{" in line:
                continue
            parts = line.split()
            if len(parts) == 2:
                try:
                    out[parts[0]] = float(parts[1])
                except ValueError:
                    pass
    return out


if __name__ == "__main__":
    main()
