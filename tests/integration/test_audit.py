"""The audit log from the command line, checked from outside: `cctvhub keys init`, `audit
append`, `show`, `prove` and `verify` against an independent RFC 9162 implementation written
here (Python standard library), the on-disk format read byte by byte, every kind of tampering
the issue names detected by `audit verify` with the right message, and kill -9 of a writer at
random moments losing no acknowledged record.

Ed25519 has no implementation in the standard library, so signatures are left to `audit
verify` (given the right or the wrong key); everything else (framing, leaf hashes, canonical
JSON, sequence numbers, Merkle roots, proofs, checkpoint notes) is checked here
independently."""

import base64
import hashlib
import json
import os
import random
import re
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
import hub  # noqa: E402
from hub import SERVICES, check, run  # noqa: E402

from rfc9162 import (leaf_hash, node_hash, split, mth, inclusion_path, consistency_proof, verify_inclusion, verify_consistency, VECTOR_LEAVES, VECTOR_ROOTS, VECTOR_INCLUSION, VECTOR_CONSISTENCY)  # noqa: E402

# ---- the on-disk format, read independently ------------------------------------------------

SEG_MAGIC = b"CHAUDSG1"
EM_DASH = "\u2014"


def log_dir(data_dir):
    return os.path.join(data_dir, "audit")


def segment_files(logdir):
    return sorted(os.path.join(logdir, n) for n in os.listdir(logdir) if n.endswith(".seg"))


def read_frames(logdir):
    """Every frame of every segment: a list of dicts (path, offset, end, record, hash), with the
    format checked on the way (magic, first seq in header and name, lengths)."""
    frames = []
    for path in segment_files(logdir):
        with open(path, "rb") as f:
            data = f.read()
        check(data[:8] == SEG_MAGIC, "%s: magic %r" % (path, data[:8]))
        first = struct.unpack(">Q", data[8:16])[0]
        check(first == len(frames), "%s: first seq %d, wanted %d" % (path, first, len(frames)))
        check(os.path.basename(path) == "%020d.seg" % first, "segment name %s" % path)
        off = 16
        while off < len(data):
            (n,) = struct.unpack(">I", data[off:off + 4])
            end = off + 4 + n + 32
            check(0 < n and end <= len(data), "%s: bad frame at %d" % (path, off))
            frames.append({"path": path, "offset": off, "end": end,
                           "record": data[off + 4:off + 4 + n], "hash": data[off + 4 + n:end]})
            off = end
    return frames


def canonical(obj):
    """jansson's JSON_COMPACT | JSON_SORT_KEYS form."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def read_checkpoints(logdir):
    """The C2SP signed notes of <logdir>/checkpoints, oldest first: dicts with text (the signed
    part), note (all of it), origin, size, root, time_ns, signatures [(name, bytes)]."""
    path = os.path.join(logdir, "checkpoints")
    if not os.path.exists(path):
        return []
    with open(path, "rb") as f:
        lines = f.read().decode("utf-8").split("\n")
    check(lines[-1] == "", "checkpoints file does not end with a newline")
    lines.pop()
    notes, i = [], 0
    while i < len(lines):
        body = []
        while lines[i] != "":
            body.append(lines[i])
            i += 1
        i += 1  # the blank line
        sigs = []
        while i < len(lines) and lines[i].startswith(EM_DASH + " "):
            name, b64 = lines[i][2:].split(" ")
            sigs.append((name, base64.b64decode(b64, validate=True)))
            i += 1
        check(len(body) >= 3 and sigs, "malformed checkpoint note: %r" % body)
        text = "\n".join(body) + "\n\n"
        note = text + "".join("%s %s %s\n" % (EM_DASH, n, base64.b64encode(s).decode())
                              for n, s in sigs)
        cp = {"text": text, "note": note, "origin": body[0], "size": int(body[1]),
              "root": base64.b64decode(body[2], validate=True), "signatures": sigs,
              "time_ns": None}
        for ext in body[3:]:
            if ext.startswith("time "):
                cp["time_ns"] = int(ext[5:])
        check(len(cp["root"]) == 32, "root of %d bytes" % len(cp["root"]))
        notes.append(cp)
    return notes


def parse_pubkey(text):
    """A C2SP verifier key "name+keyid+base64(0x01 || pk)": (name, key id, pk), key id
    checked."""
    name, keyid, b64 = text.strip().split("+", 2)
    raw = base64.b64decode(b64, validate=True)
    check(len(raw) == 33 and raw[0] == 1, "verifier key body: %r" % raw)
    want = hashlib.sha256(name.encode() + b"\n" + raw).digest()[:4]
    check(bytes.fromhex(keyid) == want, "key id %s, computed %s" % (keyid, want.hex()))
    return name, bytes.fromhex(keyid), raw[1:]


# ---- driving the command ------------------------------------------------------------------

def new_data_dir():
    return tempfile.mkdtemp(prefix="cctvhub-audit-")


def keys_init(d):
    code, out, err = run(["keys", "init", "--data-dir", d])
    check(code == 0, "keys init: exit %d: %s" % (code, err))
    return out.strip()


def append(d, count=1, actor="user:kim", action="request.paper", obj=None, details=None,
           expect=0, extra=(), env=None):
    """Appends count records with `cctvhub audit append`; returns the acknowledged seqs."""
    args = ["audit", "append", "--data-dir", d, "--actor", actor, "--action", action,
            "--count", str(count)] + list(extra)
    if obj is not None:
        args += ["--object", obj]
    if details is not None:
        args += ["--details", json.dumps(details)]
    code, out, err = run(args, env=env)
    check(code == expect, "audit append: exit %d, wanted %d: %s" % (code, expect, err[-2000:]))
    return [int(x) for x in out.split()]


def verify(*args):
    return run(["audit", "verify"] + list(args))


def verify_ok(d, *args):
    code, out, err = verify("--data-dir", d, *args)
    check(code == 0, "audit verify: exit %d:\n%s%s" % (code, out, err))
    return out


def verify_fails(d, pattern, *args):
    """audit verify must exit 1 with a message matching pattern (a regular expression)."""
    code, out, err = verify("--data-dir", d, *args)
    check(code == 1, "audit verify: exit %d, wanted 1:\n%s%s" % (code, out, err))
    check(re.search(pattern, err), "audit verify: message %r does not match %r" % (err, pattern))
    return err


def with_log(n_records, batches=3):
    """A fresh data directory with a key and n_records records appended in a few processes
    (each close writes a checkpoint)."""
    d = new_data_dir()
    key = keys_init(d)
    left, b = n_records, 0
    while left > 0:
        k = left if b == batches - 1 else max(1, n_records // batches)
        append(d, k, obj="camera:%d" % (b + 1), details={"batch": b})
        left -= k
        b += 1
    return d, key


# ---- tests --------------------------------------------------------------------------------

def test_independent_rfc9162_implementation_matches_published_vectors_and_itself():
    leaves = [leaf_hash(x) for x in VECTOR_LEAVES]
    for n in range(9):
        check(mth(leaves[:n]) == VECTOR_ROOTS[n], "root of size %d" % n)
    for index, size, path in VECTOR_INCLUSION:
        check([h.hex() for h in inclusion_path(leaves[:size], index)] == path, (index, size))
        check(verify_inclusion(index, size, leaves[index], [bytes.fromhex(h) for h in path],
                               VECTOR_ROOTS[size]), (index, size))
    for first, second, proof in VECTOR_CONSISTENCY:
        check([h.hex() for h in consistency_proof(leaves[:second], first)] == proof,
              (first, second))
        check(verify_consistency(first, second, VECTOR_ROOTS[first], VECTOR_ROOTS[second],
                                 [bytes.fromhex(h) for h in proof]), (first, second))
    rnd = random.Random(9162)
    for n in range(1, 40):
        tree = [leaf_hash(rnd.randbytes(12)) for _ in range(n)]
        root = mth(tree)
        for i in range(n):
            p = inclusion_path(tree, i)
            check(verify_inclusion(i, n, tree[i], p, root), ("inclusion", i, n))
            if n > 1:
                check(not verify_inclusion((i + 1) % n, n, tree[i], p, root), ("wrong index", i))
        for m in range(1, n + 1):
            p = consistency_proof(tree, m)
            check(verify_consistency(m, n, mth(tree[:m]), root, p), ("consistency", m, n))
            if p and m < n:
                check(not verify_consistency(m, n, mth(tree[:m]), leaf_hash(b"x"), p), m)


def test_keys_init_makes_a_private_key_prints_the_public_key_and_refuses_to_overwrite():
    d = new_data_dir()
    try:
        key = keys_init(d)
        name, keyid, pk = parse_pubkey(key)
        check(name == "cctvhub" and len(pk) == 32, key)
        with open(os.path.join(d, "keys", "node.pub")) as f:
            check(f.read().strip() == key, "node.pub differs from what keys init printed")
        secret = os.path.join(d, "keys", "node.key")
        check(os.stat(secret).st_mode & 0o777 == 0o600, oct(os.stat(secret).st_mode))
        with open(secret, "rb") as f:
            before = f.read()
        check(before.startswith(b"PRIVATE+KEY+cctvhub+" + keyid.hex().encode() + b"+"), before[:30])
        code, out, err = run(["keys", "init", "--data-dir", d])
        check(code == 1 and "refusing to overwrite" in err, "second keys init: %d %s" % (code, err))
        with open(secret, "rb") as f:
            check(f.read() == before, "the existing key was changed")
        # A second node's key is another key.
        d2 = new_data_dir()
        try:
            check(keys_init(d2) != key, "two keys init made the same key")
        finally:
            shutil.rmtree(d2, ignore_errors=True)
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_records_on_disk_are_canonical_framed_hashed_and_checkpoints_match_independent_roots():
    d = new_data_dir()
    try:
        key = keys_init(d)
        name, _, _ = parse_pubkey(key)
        rnd = random.Random(3)
        expected = []
        for b in range(6):
            k = rnd.randint(1, 23)
            det = {"batch": b, "note": "서면 요청 %d" % b, "camera": 100 + b}
            seqs = append(d, k, actor="user:kim", action="request.paper",
                          obj="camera:%d" % (100 + b), details=det,
                          extra=["--purpose", "crime.investigation", "--legal-basis",
                                 "PIPA 25(1)"])
            check(seqs == list(range(len(expected), len(expected) + k)), seqs)
            expected += [det] * k
        frames = read_frames(log_dir(d))
        check(len(frames) == len(expected), "%d frames, %d appended" % (len(frames),
                                                                        len(expected)))
        leaves = []
        for i, fr in enumerate(frames):
            lh = leaf_hash(fr["record"])
            check(fr["hash"] == lh, "record %d: stored leaf hash is not SHA-256(0x00 || record)" % i)
            leaves.append(lh)
            rec = json.loads(fr["record"])
            check(canonical(rec) == fr["record"], "record %d is not canonical JSON: %r"
                  % (i, fr["record"]))
            for field in ("seq", "time", "node", "actor", "action", "object", "purpose",
                          "legal_basis", "outcome", "details"):
                check(field in rec, "record %d lacks %s: %s" % (i, field, rec))
            check(rec["seq"] == i and rec["details"] == expected[i], rec)
            check(rec["actor"] == "user:kim" and rec["outcome"] == "ok", rec)
            check(rec["purpose"] == "crime.investigation" and rec["legal_basis"] == "PIPA 25(1)",
                  rec)
            check(isinstance(rec["time"], int) and abs(rec["time"] / 1e9 - time.time()) < 600,
                  "record %d time %r is not UTC nanoseconds of now" % (i, rec["time"]))
        cps = read_checkpoints(log_dir(d))
        check(len(cps) >= 6, "%d checkpoints after 6 closes" % len(cps))
        prev = None
        for c in cps:
            check(c["origin"] == name, "origin %r" % c["origin"])
            check(c["signatures"][0][0] == name, c["signatures"])
            check(len(c["signatures"][0][1]) == 4 + 64, "signature of %d bytes"
                  % len(c["signatures"][0][1]))
            check(0 < c["size"] <= len(leaves), c["size"])
            check(c["root"] == mth(leaves[:c["size"]]),
                  "checkpoint of size %d: root differs from the independent tree" % c["size"])
            if prev is not None:
                check(prev["size"] <= c["size"], "checkpoints out of order")
                check(verify_consistency(prev["size"], c["size"], prev["root"], c["root"],
                                         consistency_proof(leaves[:c["size"]], prev["size"])),
                      "consistency %d -> %d" % (prev["size"], c["size"]))
            prev = c
        check(cps[-1]["size"] == len(leaves), "the last close did not checkpoint everything")
        # The summary of verify names the same size and root.
        out = verify_ok(d, "--key", key)
        check(re.search(r"records\s+%d\b" % len(leaves), out), out)
        check(mth(leaves).hex() in out, "verify does not print the root:\n" + out)
        check("signatures checked" in out and "NOT" not in out, out)
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_prove_matches_the_independent_implementation_on_random_trees():
    rnd = random.Random(7)
    for trial in range(3):
        d = new_data_dir()
        try:
            keys_init(d)
            n = rnd.randint(1, 70)
            append(d, n)
            leaves = [leaf_hash(fr["record"]) for fr in read_frames(log_dir(d))]
            check(len(leaves) == n, (len(leaves), n))
            # Default size: the latest checkpoint's, which here is every record.
            code, out, err = run(["audit", "prove", "0", "--data-dir", d])
            check(code == 0, err)
            check(json.loads(out)["size"] == read_checkpoints(log_dir(d))[-1]["size"], out)
            for _ in range(8):
                size = rnd.randint(1, n)
                index = rnd.randrange(size)
                code, out, err = run(["audit", "prove", str(index), "--size", str(size),
                                      "--data-dir", d])
                check(code == 0, "prove %d %d: %s" % (index, size, err))
                p = json.loads(out)
                path = [bytes.fromhex(h) for h in p["path"]]
                check(p["index"] == index and p["size"] == size, p)
                check(bytes.fromhex(p["leaf_hash"]) == leaves[index], "leaf hash of %d" % index)
                check(bytes.fromhex(p["root"]) == mth(leaves[:size]), "root of %d" % size)
                check(path == inclusion_path(leaves[:size], index),
                      "path of %d in %d differs from RFC 9162 PATH" % (index, size))
                check(verify_inclusion(index, size, leaves[index], path, mth(leaves[:size])),
                      "proof does not verify")
                first = rnd.randint(1, size)
                code, out, err = run(["audit", "prove", "--consistency", str(first),
                                      "--size", str(size), "--data-dir", d])
                check(code == 0, "consistency %d %d: %s" % (first, size, err))
                c = json.loads(out)
                cpath = [bytes.fromhex(h) for h in c["path"]]
                check(cpath == consistency_proof(leaves[:size], first),
                      "consistency %d -> %d differs from RFC 9162 PROOF" % (first, size))
                check(verify_consistency(first, size, bytes.fromhex(c["root1"]),
                                         bytes.fromhex(c["root2"]), cpath), c)
                check(bytes.fromhex(c["root1"]) == mth(leaves[:first]), c)
            # Out of range: exit 1; not a number: exit 2.
            code, _, err = run(["audit", "prove", str(n), "--size", str(n), "--data-dir", d])
            check(code == 1 and "not in a tree" in err, (code, err))
            code, _, err = run(["audit", "prove", "0", "--size", str(n + 1), "--data-dir", d])
            check(code == 1, (code, err))
            code, _, _ = run(["audit", "prove", "x", "--data-dir", d])
            check(code == 2, code)
        finally:
            shutil.rmtree(d, ignore_errors=True)


def test_show_filters_records_and_prints_a_table_or_json_lines():
    d = new_data_dir()
    try:
        keys_init(d)
        append(d, 2, actor="user:kim", action="camera.create", obj="camera:7")
        append(d, 1, actor="agency:12", action="grant.create", obj="event:3",
               details={"camera": 7, "cameras": [7, 8]})
        time.sleep(2.2)
        t_mid = time.time()
        append(d, 1, actor="user:lee", action="grant.deny", obj="event:4",
               details={"agency": 12, "event_id": 4})
        append(d, 3, actor="system", action="camera.update", obj="camera:8")

        def show(*args):
            code, out, err = run(["audit", "show", "--data-dir", d, "--json"] + list(args))
            check(code == 0, "show %s: %d %s" % (args, code, err))
            return [json.loads(line) for line in out.splitlines()]

        everything = show()
        check([r["seq"] for r in everything] == list(range(7)), everything)
        check([r["seq"] for r in show("--camera", "7")] == [0, 1, 2], show("--camera", "7"))
        check([r["seq"] for r in show("--camera", "8")] == [2, 4, 5, 6], show("--camera", "8"))
        # The records about agency 12 (GET /api/v1/audit?agency=12's rule, ch_audit_refers_to);
        # what agency 12 did is --actor agency:12.
        check([r["seq"] for r in show("--agency", "12")] == [3], show("--agency", "12"))
        check([r["seq"] for r in show("--actor", "agency:12")] == [2], "actor agency:12")
        check([r["seq"] for r in show("--event", "4")] == [3], show("--event", "4"))
        check([r["seq"] for r in show("--actor", "system")] == [4, 5, 6], "actor")
        check([r["seq"] for r in show("--action", "grant.*")] == [2, 3], "action family")
        check([r["seq"] for r in show("--action", "grant.deny")] == [3], "action")
        check([r["seq"] for r in show("--since", "%.3f" % t_mid)] == [3, 4, 5, 6], "since")
        until = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t_mid - 0.5))
        check([r["seq"] for r in show("--until", until)] == [0, 1, 2], "until " + until)
        kst = time.strftime("%Y-%m-%dT%H:%M:%S+09:00", time.gmtime(t_mid + 9 * 3600 - 0.5))
        check([r["seq"] for r in show("--until", kst)] == [0, 1, 2], "until with offset " + kst)
        check([r["seq"] for r in show("--limit", "2", "--actor", "system")] == [4, 5], "limit")
        check(show("--actor", "nobody") == [], "no match")
        # JSON lines are the stored canonical bytes.
        frames = read_frames(log_dir(d))
        code, out, _ = run(["audit", "show", "--data-dir", d, "--json"])
        check(out.encode() == b"".join(f["record"] + b"\n" for f in frames), "json != stored")
        # The table: a header and one row each, with an RFC 3339 time.
        code, out, _ = run(["audit", "show", "--data-dir", d, "--event", "3"])
        lines = out.splitlines()
        check(code == 0 and len(lines) == 2 and lines[0].split()[:2] == ["SEQ", "TIME"], out)
        row = lines[1].split()
        check(row[0] == "2" and re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", row[1])
              and row[2:6] == ["agency:12", "grant.create", "event:3", "ok"], row)
        code, _, err = run(["audit", "show", "--data-dir", d, "--since", "yesterday"])
        check(code == 2 and "--since" in err, (code, err))
        code, _, err = run(["audit", "show", "--data-dir", d, "--camera", "seven"])
        check(code == 2 and "--camera" in err, (code, err))
    finally:
        shutil.rmtree(d, ignore_errors=True)


# ---- tampering ----------------------------------------------------------------------------

def rewrite_segment(path, data):
    with open(path, "wb") as f:
        f.write(data)


def segment_bytes(path):
    with open(path, "rb") as f:
        return f.read()


def record_named(k):
    return r"record %d\b" % k


def test_tamper_flipped_byte_in_a_record_is_detected_and_never_cut():
    d, key = with_log(30)
    try:
        verify_ok(d, "--key", key)
        fr = read_frames(log_dir(d))[17]
        data = bytearray(segment_bytes(fr["path"]))
        pos = fr["offset"] + 4 + fr["record"].index(b"user:kim") + 5
        data[pos] ^= 0x01
        rewrite_segment(fr["path"], bytes(data))
        verify_fails(d, record_named(17) + r": stored leaf hash does not match", "--key", key)
        # The hub refuses to open it for writing (and does not cut it as if it were torn).
        append(d, 1, expect=4)
        check(len(segment_bytes(fr["path"])) == len(data), "a damaged log was cut")
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_tamper_dropped_record_is_detected():
    d, key = with_log(30)
    try:
        fr = read_frames(log_dir(d))[12]
        data = segment_bytes(fr["path"])
        rewrite_segment(fr["path"], data[:fr["offset"]] + data[fr["end"]:])
        verify_fails(d, record_named(12) + r" missing", "--key", key)
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_tamper_two_records_swapped_is_detected():
    d, key = with_log(30)
    try:
        frames = read_frames(log_dir(d))
        a, b = frames[20], frames[21]
        data = segment_bytes(a["path"])
        swapped = (data[:a["offset"]] + data[b["offset"]:b["end"]] + data[a["offset"]:a["end"]]
                   + data[b["end"]:])
        check(len(swapped) == len(data), "swap changed the length")
        rewrite_segment(a["path"], swapped)
        verify_fails(d, record_named(20) + r".*swapped", "--key", key)
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_tamper_record_cut_in_the_middle_of_the_log_is_detected():
    d, key = with_log(30)
    try:
        fr = read_frames(log_dir(d))[9]
        data = segment_bytes(fr["path"])
        cut = fr["offset"] + 4 + 10
        rewrite_segment(fr["path"], data[:cut] + data[cut + 25:])
        verify_fails(d, record_named(9) + r": stored leaf hash does not match", "--key", key)
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_tamper_checkpoint_replaced_is_detected():
    d, key = with_log(30)
    other = new_data_dir()
    try:
        path = os.path.join(log_dir(d), "checkpoints")
        cps = read_checkpoints(log_dir(d))
        check(len(cps) >= 3, len(cps))
        # (a) The root of checkpoint 1 replaced, its signature kept.
        text = cps[1]["note"].replace(base64.b64encode(cps[1]["root"]).decode(),
                                      base64.b64encode(hashlib.sha256(b"x").digest()).decode())
        with open(path, "w") as f:
            f.write("".join(c["note"] if i != 1 else text for i, c in enumerate(cps)))
        verify_fails(d, r"checkpoint 1 \(size %d\): signature does not verify" % cps[1]["size"],
                     "--key", key)
        # (b) Checkpoint 1 replaced by one of the same size from another node's log, well
        # signed by that node's key (which has the same name).
        keys_init(other)
        append(other, cps[1]["size"])
        foreign = [c for c in read_checkpoints(log_dir(other)) if c["size"] == cps[1]["size"]]
        check(foreign, "the other log has no checkpoint of size %d" % cps[1]["size"])
        with open(path, "w") as f:
            f.write("".join(c["note"] if i != 1 else foreign[0]["note"]
                            for i, c in enumerate(cps)))
        verify_fails(d, r"checkpoint 1\b.*signature does not verify", "--key", key)
        # (c) Checkpoint 1 replaced by one well signed with this node's own key (an
        # administrator holds it) over another log of the same size: the signature verifies,
        # the root does not match the records.
        forged = new_data_dir()
        try:
            shutil.copytree(os.path.join(d, "keys"), os.path.join(forged, "keys"))
            append(forged, cps[1]["size"], actor="user:mallory")
            fake = [c for c in read_checkpoints(log_dir(forged)) if c["size"] == cps[1]["size"]]
            check(fake and fake[0]["root"] != cps[1]["root"], "no forged checkpoint")
        finally:
            shutil.rmtree(forged, ignore_errors=True)
        with open(path, "w") as f:
            f.write("".join(c["note"] if i != 1 else fake[0]["note"] for i, c in enumerate(cps)))
        err = verify_fails(d, r"checkpoint 1\b", "--key", key)
        check("signature" not in err and "root" in err, "forged checkpoint: " + err)
        # Put back: it verifies again.
        with open(path, "w") as f:
            f.write("".join(c["note"] for c in cps))
        verify_ok(d, "--key", key)
    finally:
        shutil.rmtree(d, ignore_errors=True)
        shutil.rmtree(other, ignore_errors=True)


def test_tamper_log_resigned_with_another_key_is_detected_with_the_original_key():
    d, key = with_log(20)
    try:
        # Whoever holds the disk makes a new key, drops the old checkpoints and lets the hub
        # sign new ones: the log is self-consistent again...
        shutil.rmtree(os.path.join(d, "keys"))
        os.unlink(os.path.join(log_dir(d), "checkpoints"))
        new_key = keys_init(d)
        check(new_key != key, "same key")
        append(d, 1)
        verify_ok(d)
        verify_ok(d, "--key", new_key)
        # ... but not under the key the auditor was given beforehand, as text or as a file.
        verify_fails(d, r"checkpoint 0\b.*signature does not verify", "--key", key)
        keyfile = os.path.join(d, "original.pub")
        with open(keyfile, "w") as f:
            f.write(key + "\n")
        verify_fails(d, r"checkpoint 0\b.*signature does not verify", "--key", keyfile)
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_tamper_log_rewritten_from_some_point_with_valid_hashes_is_caught_by_an_old_checkpoint():
    d = new_data_dir()
    try:
        key = keys_init(d)
        append(d, 20)
        kept = os.path.join(d, "kept.checkpoint")
        with open(kept, "w") as f:
            f.write(read_checkpoints(log_dir(d))[-1]["note"])
        append(d, 10)
        verify_ok(d, "--key", key, "--checkpoint", kept)
        # Rewrite from record 12 on: cut the segment there, drop the checkpoints past it, and
        # let the hub (with its own key) append other records and sign new checkpoints.
        fr = read_frames(log_dir(d))[12]
        with open(fr["path"], "r+b") as f:
            f.truncate(fr["offset"])
        cps = [c for c in read_checkpoints(log_dir(d)) if c["size"] <= 12]
        with open(os.path.join(log_dir(d), "checkpoints"), "w") as f:
            f.write("".join(c["note"] for c in cps))
        append(d, 25, actor="user:mallory", action="request.paper")
        # Every hash and signature is valid: only the kept checkpoint tells.
        verify_ok(d, "--key", key)
        verify_fails(d, r"does not extend the given checkpoint", "--key", key, "--checkpoint",
                     kept)
    finally:
        shutil.rmtree(d, ignore_errors=True)


# ---- crashes ------------------------------------------------------------------------------

def test_kill_9_during_appends_loses_no_acknowledged_record_and_the_log_verifies():
    d = new_data_dir()
    rnd = random.Random(int(os.environ.get("CH_AUDIT_CRASH_SEED", "0")) or None)
    try:
        key = keys_init(d)
        acked = {}  # seq -> round
        tears = 0
        rounds = int(os.environ.get("CH_AUDIT_CRASH_ROUNDS", "20"))
        for r in range(rounds):
            p = subprocess.Popen([hub.BIN, "audit", "append", "--data-dir", d, "--actor",
                                  "system", "--action", "crash.test", "--details",
                                  json.dumps({"round": r}), "--count", "1000000"],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            time.sleep(rnd.uniform(0.15, 0.8))
            p.send_signal(signal.SIGKILL)
            out, err = p.communicate()
            check(p.returncode == -signal.SIGKILL, "writer exit %s: %s" % (p.returncode,
                                                                         err[-2000:]))
            lines = out.decode().split("\n")
            for line in lines[:-1]:  # the last piece may be a number cut by the kill
                acked[int(line)] = r
            # kill -9 leaves whole write()s behind; a power cut can leave part of one. Every
            # third round fakes that: a frame cut short, or zeros (preallocated blocks). Only
            # after a writer that acknowledged a record, and so had opened the log and cut the
            # previous fake tail: a writer killed before its open finished (a slow start on a
            # busy machine) cut nothing, and a second fake tail after the first is a state no
            # crash leaves (zeros then a cut frame read as a zero length word followed by
            # data, a cut frame then zeros as a complete frame with a bad hash).
            tear = None
            if len(lines) < 2:
                pass
            elif r % 3 == 1:
                body = b'{"action":"torn"' + b"x" * rnd.randint(0, 300)
                tear = struct.pack(">I", len(body) + 10) + body
            elif r % 3 == 2:
                tear = b"\0" * rnd.randint(1, 8192)
            if tear is not None:
                with open(segment_files(log_dir(d))[-1], "ab") as f:
                    f.write(tear)
                tears += 1
            code, vout, verr = verify("--data-dir", d, "--key", key)
            check(code == 0, "round %d: verify after kill -9: exit %d\n%s%s"
                  % (r, code, vout, verr))
            if tear is not None:
                # At least the fake tail: a kill -9 can also stop a pwrite part way into the
                # preallocated padding, and that half-written batch (never acknowledged) is
                # torn tail too.
                m = re.search(r"torn tail\s+(\d+) bytes", vout)
                check(m and int(m.group(1)) >= len(tear),
                      "round %d: verify does not report the torn tail:\n%s" % (r, vout))
        check(len(acked) > 5 * rounds, "only %d acknowledged appends in %d rounds"
              % (len(acked), rounds))
        append(d, 1)  # a last open recovers any torn tail
        code, out, err = run(["audit", "show", "--data-dir", d, "--json"])
        check(code == 0, err)
        records = {}
        for line in out.splitlines():
            rec = json.loads(line)
            records[rec["seq"]] = rec
        for seq, r in sorted(acked.items()):
            rec = records.get(seq)
            check(rec is not None, "acknowledged record %d (round %d) is lost" % (seq, r))
            check(rec["action"] == "crash.test" and rec["details"] == {"round": r},
                  "acknowledged record %d is now %s" % (seq, rec))
        recovered = [rec for rec in records.values() if rec["action"] == "audit.recovered"]
        check(len(recovered) >= tears, "%d torn tails made, %d audit.recovered records"
              % (tears, len(recovered)))
        check(os.listdir(os.path.join(log_dir(d), "recovered")), "no cut tail kept")
        out = verify_ok(d, "--key", key)
        check("torn tail" not in out, out)
        leaves = [leaf_hash(fr["record"]) for fr in read_frames(log_dir(d))]
        check(read_checkpoints(log_dir(d))[-1]["root"] == mth(leaves), "last root")
        print("     %d acknowledged, %d records, %d torn tails cut and recorded"
              % (len(acked), len(records), len(recovered)))
    finally:
        shutil.rmtree(d, ignore_errors=True)


# ---- beside the hub and its configuration --------------------------------------------------

def test_append_takes_node_id_and_checkpoint_cadence_from_the_configuration():
    d = new_data_dir()
    try:
        keys_init(d)
        code, out, err = run(["audit", "append", "--data-dir", d, "--actor", "user:kim",
                              "--action", "request.paper", "--count", "35"],
                             env={"CCTVHUB_NODE_ID": "mapo-1",
                                  "CCTVHUB_AUDIT_CHECKPOINT_RECORDS": "10",
                                  "CCTVHUB_AUDIT_CHECKPOINT_MS": "600000"})
        check(code == 0 and out.split() == [str(i) for i in range(35)], (code, err[-500:]))
        frames = read_frames(log_dir(d))
        check(all(json.loads(f["record"])["node"] == "mapo-1" for f in frames), "node id")
        sizes = [c["size"] for c in read_checkpoints(log_dir(d))]
        check(sizes == [10, 20, 30, 35], "checkpoint sizes %s" % sizes)
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_show_prove_and_verify_read_the_log_of_a_running_hub_and_append_waits_for_it():
    h = hub.Hub()
    try:
        _, a = h.json("POST", "/api/v1/agencies", {"name": "서울특별시 마포구", "kind": "provider",
                                                   "level": "district",
                                                   "type": "district-center"}, expect=201)
        _, c = h.json("POST", "/api/v1/cameras", {"agency_id": a["id"], "name": "망원동 1",
                                                  "lat": 37.5665, "lon": 126.978,
                                                  "kind": "fixed"}, expect=201)
        _, page = h.json("GET", "/api/v1/audit?limit=1000", expect=200)
        check(len(page["items"]) >= 2, page)
        # Offline readers see what a signed checkpoint covers: wait for the hub's next one
        # (audit.checkpoint_ms, 1 s by default).
        deadline = time.time() + 10
        while time.time() < deadline:
            status, _, note = h.request("GET", "/api/v1/audit/checkpoint")
            if status == 200 and int(note.decode().split("\n")[1]) >= len(page["items"]):
                break
            time.sleep(0.1)
        # Read-only commands work while the hub holds the log...
        code, out, err = run(["audit", "show", "--data-dir", h.data_dir, "--json"])
        check(code == 0, "show beside a running hub: %d %s" % (code, err))
        shown = [json.loads(line) for line in out.splitlines()]
        check(shown == page["items"], "show and GET /api/v1/audit disagree:\n%s\n%s"
              % (shown, page["items"]))
        code, out, err = run(["audit", "show", "--data-dir", h.data_dir, "--json", "--camera",
                              str(c["id"])])
        check(code == 0 and [json.loads(x)["action"] for x in out.splitlines()]
              == ["camera.create"], out)
        code, out, err = run(["audit", "verify", "--data-dir", h.data_dir])
        check(code == 0, "verify beside a running hub: %d\n%s%s" % (code, out, err))
        # ... and the proof the command prints is the one the API serves.
        code, out, err = run(["audit", "prove", "1", "--data-dir", h.data_dir])
        check(code == 0, err)
        mine = json.loads(out)
        _, served = h.json("GET", "/api/v1/audit/proof?index=1&size=%d" % mine["size"],
                           expect=200)
        check(served == mine, "prove and /api/v1/audit/proof differ:\n%s\n%s" % (mine, served))
        status, _, note = h.request("GET", "/api/v1/audit/checkpoint")
        check(status == 200 and int(note.decode().split("\n")[1]) >= mine["size"], note)
        # A writer beside the hub is refused (the hub holds the log), with exit 4.
        code, _, err = run(["audit", "append", "--data-dir", h.data_dir, "--actor", "user:kim",
                            "--action", "request.paper"])
        check(code == 4 and "running" in err, "append beside a running hub: %d %s" % (code, err))
        h.stop()
        # Stopped, the hub's log takes manual records, and verifies.
        append(h.data_dir, 1)
        verify_ok(h.data_dir)
    finally:
        h.cleanup()


# ---- refusals: counted per address, not one durable record each ----------------------------

def audit_items(h, action):
    _, page = h.json("GET", "/api/v1/audit?limit=1000&action=" + action, expect=200)
    return page["items"]


def rtsp_refused(port, camera, n):
    """n viewers with a garbage token, each on a new connection: the relay refuses each."""
    import socket
    statuses = set()
    for i in range(n):
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        try:
            s.sendall(("DESCRIBE rtsp://127.0.0.1:%d/cameras/%d?token=v1.bm90aGluZw.c2ln "
                       "RTSP/1.0\r\nCSeq: %d\r\n\r\n" % (port, camera, i + 1)).encode())
            data = hub.read_head(s, size=4096)
            statuses.add(data.split(b"\r\n", 1)[0])
        finally:
            s.close()
    return statuses


def test_refusals_of_one_address_make_one_record_per_interval_and_rate_refusals_none():
    # The interval is long enough for the whole flood to fall into it on a loaded machine
    # under the sanitizers (2 s was not, once).
    h = hub.Hub(env={"CCTVHUB_AUDIT_REFUSAL_INTERVAL_MS": "8000",
                     "CCTVHUB_AUTH_MAX_FAILURES_PER_ADDRESS": "2"})
    try:
        flood = 300
        # A flood of bad API keys on one keep-alive connection, and of refused viewers.
        c = h.conn()
        for i in range(flood):
            c.request("GET", "/api/v1/cameras", headers={"Authorization": "Bearer bad-key-%d" % i})
            r = c.getresponse()
            r.read()
            check(r.status == 401, "bad key answered %d" % r.status)
        c.close()
        statuses = rtsp_refused(h.rtsp_port, 1, flood)
        check(statuses == {b"RTSP/1.0 401 Unauthorized"}, statuses)
        # Three wrong passwords from this address: the third try on is refused for rate (429),
        # which puts nothing on the record.
        for i in range(4):
            status, _, _ = h.request("POST", "/api/v1/session",
                                     {"username": "nobody", "password": "wrong"}, auth=False)
            check(status in (401, 429), status)
        check(status == 429, "the login throttle did not answer 429: %d" % status)
        time.sleep(0.3)
        denied = audit_items(h, "auth.denied")
        refused = audit_items(h, "view.refuse")
        check(len(denied) == 1 and not denied[0]["details"].get("aggregated"),
              "auth.denied right after the flood: %d records %s" % (len(denied), denied[:3]))
        check(len(refused) == 1, "view.refuse right after the flood: %d records" % len(refused))
        check(audit_items(h, "auth.throttled") == [], "a refusal for rate was recorded")
        # When the interval ends, one record each sums up the rest.
        deadline = time.time() + 20
        while time.time() < deadline:
            denied = audit_items(h, "auth.denied")
            refused = audit_items(h, "view.refuse")
            if len(denied) == 2 and len(refused) == 2:
                break
            time.sleep(0.1)
        for what, recs in (("auth.denied", denied), ("view.refuse", refused)):
            check(len(recs) == 2, "%s: %d records, wanted 2" % (what, len(recs)))
            d = recs[1]["details"]
            check(d.get("aggregated") is True and d["count"] == flood - 1
                  and d["peer"] == "127.0.0.1" and d["first_time"] <= d["last_time"]
                  and recs[1]["outcome"] == "denied", "%s summary: %s" % (what, recs[1]))
        check(sum(denied[1]["details"]["reasons"].values()) == flood - 1, denied[1])
        check(refused[1]["details"]["reasons"] == {"bad_token": flood - 1}, refused[1])
        # A second interval: the first recorded, the rest summed up at a clean stop.
        rtsp_refused(h.rtsp_port, 1, 20)
        text = h.stop()
        check("LeakSanitizer" not in text, text[-2000:])
        recs = [json.loads(f["record"]) for f in read_frames(log_dir(h.data_dir))]
        views = [r for r in recs if r["action"] == "view.refuse"]
        check(len(views) == 4 and views[3]["details"]["count"] == 19,
              "view.refuse after a stop: %s" % [r["details"] for r in views])
        check(len(recs) < 40, "%d records for %d refusals" % (len(recs), 2 * flood + 24))
        verify_ok(h.data_dir)
    finally:
        h.cleanup()


# ---- a full audit disk ------------------------------------------------------------------------

PLACE = (37.5700, 126.9800)


def fill_disk(path):
    """Writes zeros into path until the file system is full."""
    with open(path, "wb", buffering=0) as f:
        for size in (1 << 20, 1 << 16, 4096, 512):
            while True:
                try:
                    f.write(b"\0" * size)
                except OSError:
                    break


def test_full_audit_disk_refuses_opens_lets_access_end_says_so_and_recovers_without_restart():
    tmp = tempfile.mkdtemp(prefix="cctvhub-full-")
    data = os.path.join(tmp, "var")
    audit = os.path.join(data, "audit")
    os.makedirs(audit)
    code = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", audit]).returncode
    check(code == 0, "mount tmpfs (needs root)")
    env = {"CCTVHUB_SERVICES_FILE": SERVICES, "CCTVHUB_AUDIT_RESERVE_BYTES": "262144"}
    h = h2 = None
    try:
        h = hub.Hub(env=env, data_dir=data)
        _, a = h.json("POST", "/api/v1/agencies", {"name": "종로구 관제센터", "kind": "provider",
                                                   "level": "district",
                                                   "type": "district-center"}, expect=201)
        _, police = h.json("POST", "/api/v1/agencies", {
            "name": "서울경찰청 112치안종합상황실", "kind": "user", "level": "city",
            "type": "police-112"}, expect=201)
        _, k = h.json("POST", "/api/v1/apikeys", {"agency_id": police["id"], "role": "agency"},
                      expect=201)
        h.json("POST", "/api/v1/cameras", {"agency_id": a["id"], "name": "cam", "lat": PLACE[0],
                                           "lon": PLACE[1], "purpose": "생활방범", "kind": "ptz",
                                           "status": "active"}, expect=201)
        agency = {"Authorization": "Bearer " + k["key"]}
        event = {"service": "112-center", "location": {"lat": PLACE[0], "lon": PLACE[1]},
                 "incident": "112-2026-99", "reason": "full disk test", "duration_s": 600}

        def open_event(hh):
            return hh.json("POST", "/api/v1/events", event, headers=agency, auth=False)

        _, ev1 = open_event(h)
        _, ev2 = open_event(h)
        check(ev2.get("grants"), "no grant to revoke: %s" % ev2)
        # A person with two sessions: one ends by logout, the other when the user is disabled.
        _, op = h.json("POST", "/api/v1/users", {"name": "op", "role": "operator",
                                                 "password": "a-long-enough-password"},
                       expect=201)
        _, k2 = h.json("POST", "/api/v1/apikeys", {"agency_id": police["id"], "role": "agency"},
                       expect=201)
        sessions = []
        for _ in range(2):
            cookie, csrf = h.login("op", "a-long-enough-password")
            sessions.append({"Cookie": cookie, "X-CSRF-Token": csrf})
        st = os.stat(os.path.join(audit, "reserve"))
        check(st.st_size == 262144 and st.st_blocks * 512 >= 262144, "reserve %s" % (st,))
        h.stop()
        # The disk fills up while the hub is down; it starts on it (the admin's session
        # lives in the store, beside the audit disk).
        fill_disk(os.path.join(audit, "filler"))
        h2 = hub.Hub(env=env, data_dir=data, admin=False)
        h2.cookie, h2.csrf = h.cookie, h.csrf
        for _ in range(2):
            status, body = open_event(h2)
            check(status == 503 and body["error"]["code"] == "audit_unavailable",
                  "open on a full disk: %d %s" % (status, body))
        _, health = h2.json("GET", "/api/v1/health", expect=200)
        check(health["status"] == "degraded" and "no space left" in health.get("reason", ""),
              "/health on a full disk: %s" % health)
        check("No space left on device" in h2.stderr(), "the log does not say why:\n"
              + h2.stderr()[-2000:])
        # Ending access is always possible: the reserve takes the records.
        h2.json("POST", "/api/v1/events/%d/close" % ev1["id"], {"reason": "done"},
                headers=agency, auth=False, expect=200)
        h2.json("POST", "/api/v1/grants/%d/revoke" % ev2["grants"][0]["id"],
                {"reason": "disk test"}, expect=200)
        status, _ = open_event(h2)
        check(status == 503, "an open took the reserve: %d" % status)
        # So is shutting a key or a person out: a key revoked, a session ended, a user
        # disabled; each stops working at once.
        h2.json("DELETE", "/api/v1/apikeys/%d" % k["id"], expect=204)
        status, _ = open_event(h2)
        check(status == 401, "a revoked key on a full disk: %d" % status)
        h2.json("DELETE", "/api/v1/session", headers=sessions[0], auth=False, expect=204)
        h2.json("GET", "/api/v1/session", headers=sessions[1], auth=False, expect=200)
        h2.json("PATCH", "/api/v1/users/%d" % op["id"], {"disabled": True}, expect=200)
        for who in sessions:
            h2.json("GET", "/api/v1/session", headers=who, auth=False, expect=401)
        h2.json("PATCH", "/api/v1/users/%d" % op["id"], {"disabled": False}, expect=503)
        h2.json("POST", "/api/v1/apikeys", {"agency_id": police["id"], "role": "agency"},
                expect=503)
        # From the command line (its record goes through the store's outbox, which the hub
        # appends within a second): the record reaches the log on the full disk too.
        code, _, err = run(["apikey", "revoke", str(k2["id"]), "--data-dir", data], env=env)
        check(code == 0, err)
        deadline = time.time() + 5
        while time.time() < deadline:
            _, got = h2.json("GET", "/api/v1/audit?action=apikey.revoke", expect=200)
            if len(got["items"]) == 2:
                break
            time.sleep(0.1)
        check(len(got["items"]) == 2, "the command's apikey.revoke is not on the record: %s"
              % got["items"])
        # Space comes back: the next open goes through, without a restart.
        os.unlink(os.path.join(audit, "filler"))
        _, k = h2.json("POST", "/api/v1/apikeys", {"agency_id": police["id"], "role": "agency"},
                       expect=201)
        agency["Authorization"] = "Bearer " + k["key"]
        status, ev3 = open_event(h2)
        check(status == 201, "open after space came back: %d %s" % (status, ev3))
        deadline = time.time() + 5
        while time.time() < deadline:
            _, health = h2.json("GET", "/api/v1/health", expect=200)
            if health["status"] == "ok":
                break
            time.sleep(0.2)
        check(health["status"] == "ok", "/health after space came back: %s" % health)
        h2.stop()
        recs = [json.loads(f["record"]) for f in read_frames(audit)]
        actions = [r["action"] for r in recs]
        check("event.close" in actions and "grant.revoke" in actions
              and actions.count("event.open") == 3, actions)
        check({"apikey.revoke", "auth.logout"} <= set(actions)
              and any(r["action"] == "user.update" and r["details"].get("disabled") is True
                      for r in recs), actions)
        verify_ok(data)
    finally:
        for x in (h, h2):
            if x is not None:
                x.cleanup()
        subprocess.run(["umount", audit])
        shutil.rmtree(tmp, ignore_errors=True)


# ---- a trimmed log ---------------------------------------------------------------------------

def serve_refused(data, env):
    """Starts `cctvhub serve` on data and expects it to refuse: returns its stderr."""
    code, _, err = run(["serve", "--data-dir", data, "--http", "127.0.0.1:0", "--rtsp",
                        "127.0.0.1:0"], env=env, timeout=60)
    check(code == 4, "serve on a trimmed log: exit %d, wanted 4:\n%s" % (code, err[-2000:]))
    return err


def trim(data, n):
    """Cuts the last n records off the log and deletes its checkpoints: what someone who
    controls the disk but holds no key can do."""
    logdir = log_dir(data)
    frames = read_frames(logdir)
    cut = frames[-n]
    with open(cut["path"], "r+b") as f:
        f.truncate(cut["offset"])
    os.unlink(os.path.join(logdir, "checkpoints"))
    return len(frames) - n


def test_trimmed_log_is_refused_against_the_store_and_verify_says_what_it_cannot_prove():
    # Checkpoints an hour apart: only the store's copy can catch the cut here.
    env = {"CCTVHUB_AUDIT_CHECKPOINT_MS": "3600000"}
    h = hub.Hub(env=env)
    try:
        for i in range(5):
            h.json("POST", "/api/v1/agencies", {"name": "기관 %d" % i, "kind": "provider",
                                                "level": "district", "type": "district-center"},
                   expect=201)
        h.stop()
        data = h.data_dir
        verify_ok(data)
        pub = open(os.path.join(data, "keys", "node.pub")).read().strip()
        left = trim(data, 3)
        # verify passes what it cannot tell from the files, but says so, and which key.
        code, out, err = verify(log_dir(data))
        check(code == 0 and re.search(r"checkpoints\s+0\b", out), (code, out, err))
        check("key          %s (read from" % pub in out, "the key used is not named:\n" + out)
        for warning in ("the key came from the data directory", "the log has no checkpoint",
                        "no kept checkpoint was given"):
            check(re.search(r"^WARNING .*" + warning, out, re.M),
                  "verify does not warn that %s:\n%s" % (warning, out))
        code, out, _ = verify(log_dir(data), "--key", pub)
        check(code == 0 and "(given)" in out and "data directory" not in out, out)
        # The hub refuses to start on it, naming the kept checkpoint and the way on.
        err = serve_refused(data, env)
        check("does not extend the checkpoint kept in the store" in err
              and "records were removed from its end" in err and "audit accept" in err, err)
        check(read_checkpoints(log_dir(data)) == [], "the refusing hub signed the trimmed log")
        # An operator's explicit decision lets it start, and is on the record.
        code, out, err = run(["audit", "accept", "--data-dir", data], env=env)
        check(code == 2, "accept without a reason: %d" % code)
        code, out, err = run(["audit", "accept", "--data-dir", data, "--reason",
                              "disk restored from a backup"], env=env)
        check(code == 0 and "accepted" in out, (code, out, err))
        h2 = hub.Hub(env=env, data_dir=data, admin=False)
        try:
            h2.stop()
        finally:
            h2.cleanup()
        recs = [json.loads(f["record"]) for f in read_frames(log_dir(data))]
        acc = [r for r in recs if r["action"] == "audit.accept"]
        check(len(acc) == 1 and acc[0]["details"]["reason"] == "disk restored from a backup"
              and acc[0]["details"]["kept_size"] == left + 3
              and acc[0]["details"]["records"] == left
              and "removed" in acc[0]["details"]["mismatch"], acc)
        verify_ok(data)
    finally:
        h.cleanup()


def test_a_log_whose_records_outlast_the_checkpoint_interval_without_a_checkpoint_is_refused():
    d = new_data_dir()
    env = {"CCTVHUB_AUDIT_CHECKPOINT_MS": "100"}
    try:
        keys_init(d)
        append(d, 2, env=env)
        time.sleep(1.3)
        append(d, 2, env=env)
        os.unlink(os.path.join(log_dir(d), "checkpoints"))
        code, _, err = run(["audit", "append", "--data-dir", d, "--actor", "user:kim",
                            "--action", "request.paper"], env=env)
        check(code == 4 and "no checkpoint" in err and "audit accept" in err, (code, err))
        code, out, err = run(["audit", "accept", "--data-dir", d, "--reason", "looked into"],
                             env=env)
        check(code == 0, (code, out, err))
        append(d, 1, env=env)
        verify_ok(d)
        # A crash before the first checkpoint is not that: the next open signs one.
        d2 = new_data_dir()
        try:
            keys_init(d2)
            append(d2, 3)
            os.unlink(os.path.join(log_dir(d2), "checkpoints"))
            append(d2, 1)
            check(len(read_checkpoints(log_dir(d2))) >= 1, "no checkpoint signed at open")
        finally:
            shutil.rmtree(d2, ignore_errors=True)
    finally:
        shutil.rmtree(d, ignore_errors=True)


# ---- command line -------------------------------------------------------------------------

def test_help_usage_errors_and_missing_things_exit_with_the_documented_codes():
    for args in (["keys", "--help"], ["keys", "init", "--help"], ["audit", "--help"],
                 ["audit", "verify", "--help"], ["audit", "show", "--help"],
                 ["audit", "prove", "--help"], ["audit", "append", "--help"]):
        code, out, _ = run(args)
        check(code == 0 and "usage: cctvhub" in out, "%s: %d" % (args, code))
    for args in (["keys"], ["keys", "make"], ["audit"], ["audit", "erase"],
                 ["audit", "verify", "--bogus"], ["audit", "show", "--limit", "many"],
                 ["audit", "prove"], ["audit", "append", "--actor", "x"],
                 ["audit", "append", "--actor", "x", "--action", "y", "--details", "[1]"]):
        code, _, _ = run(args)
        check(code == 2, "%s: exit %d, wanted 2" % (args, code))
    d = new_data_dir()
    try:
        # No key yet: append exits 1 and says what to do.
        code, _, err = run(["audit", "append", "--data-dir", d, "--actor", "a", "--action", "b"])
        check(code == 1 and "keys init" in err, (code, err))
        # No log: show, prove and verify cannot open it.
        for args in (["audit", "show", "--data-dir", d], ["audit", "prove", "0", "--data-dir", d],
                     ["audit", "verify", "--data-dir", d]):
            code, _, err = run(args)
            check(code == 4, "%s: exit %d: %s" % (args, code, err))
        # A log directory given directly verifies like --data-dir.
        keys_init(d)
        append(d, 3)
        code, out, err = verify(log_dir(d))
        check(code == 0 and re.search(r"records\s+3\b", out), (code, out, err))
        code, _, err = verify(log_dir(d), "--key", "cctvhub+00000000+AAAA")
        check(code == 1, "a malformed key: exit %d %s" % (code, err))
    finally:
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    hub.main([
        test_independent_rfc9162_implementation_matches_published_vectors_and_itself,
        test_keys_init_makes_a_private_key_prints_the_public_key_and_refuses_to_overwrite,
        test_records_on_disk_are_canonical_framed_hashed_and_checkpoints_match_independent_roots,
        test_prove_matches_the_independent_implementation_on_random_trees,
        test_show_filters_records_and_prints_a_table_or_json_lines,
        test_tamper_flipped_byte_in_a_record_is_detected_and_never_cut,
        test_tamper_dropped_record_is_detected,
        test_tamper_two_records_swapped_is_detected,
        test_tamper_record_cut_in_the_middle_of_the_log_is_detected,
        test_tamper_checkpoint_replaced_is_detected,
        test_tamper_log_resigned_with_another_key_is_detected_with_the_original_key,
        test_tamper_log_rewritten_from_some_point_with_valid_hashes_is_caught_by_an_old_checkpoint,
        test_kill_9_during_appends_loses_no_acknowledged_record_and_the_log_verifies,
        test_append_takes_node_id_and_checkpoint_cadence_from_the_configuration,
        test_show_prove_and_verify_read_the_log_of_a_running_hub_and_append_waits_for_it,
        test_refusals_of_one_address_make_one_record_per_interval_and_rate_refusals_none,
        test_full_audit_disk_refuses_opens_lets_access_end_says_so_and_recovers_without_restart,
        test_trimmed_log_is_refused_against_the_store_and_verify_says_what_it_cannot_prove,
        test_a_log_whose_records_outlast_the_checkpoint_interval_without_a_checkpoint_is_refused,
        test_help_usage_errors_and_missing_things_exit_with_the_documented_codes,
    ])
