#!/usr/bin/env python3
"""Where the TLS floor's sender spends its time, from a `perf record -g` of its thread.

usage: perf_breakdown.py [--detail] PERF.DATA [LABEL]

Reads `perf script` and puts each sample in one bucket by its leaf frame (and, for the C
library and the kernel, by who called it), and prints one markdown table row per bucket with
its share of the samples; with --detail, also each bucket's ten commonest leaf symbols
(bare addresses of libcrypto as "libcrypto cipher code" or "libcrypto other").

Debian's libcrypto is stripped of its local symbols, and the cipher code (the stitched
AES-NI + PCLMULQDQ AES-GCM, ChaCha20, Poly1305, GHASH) is all local assembly; perf shows
those samples as bare addresses. A bare address is counted as cipher code when the
instructions around it (objdump, 96 bytes before to 32 after) are mostly vector ones
(xmm/ymm/zmm registers), which the library's C code and its exported functions are not.
"""
import collections
import re
import subprocess
import sys

BUCKETS = [
    ("cipher", "the cipher itself (AES-GCM or ChaCha20-Poly1305 assembly, GHASH)"),
    ("openssl", "OpenSSL per record and per call: libssl's record layer, EVP and provider "
     "dispatch (OSSL_PARAM, name compares, locks, allocations), GCM IV and tag set-up"),
    ("user_copy", "copy in user space (memmove/memcpy: the plaintext into OpenSSL's record "
     "buffer in TLS; none in plain)"),
    ("kernel_copy", "copy into the kernel (copy_from_iter: the bytes into socket buffers)"),
    ("tcp", "the kernel's TCP/IP send path and the loopback delivery it runs "
     "(softirq, the reader's wake-up), system call entry and exit"),
    ("sched", "sleeping between frames (nanosleep, scheduler)"),
    ("app", "the benchmark's own code"),
    ("other", "other"),
]

CIPHER_SYMS = re.compile(r"aesni|aes_|_aes|gcm_(ghash|gmult|init|enc|dec)|CRYPTO_gcm128_(en|de)crypt"
                         r"|ChaCha20|chacha|Poly1305|poly1305|ghash|ossl_aes|ossl_gcm")
OPENSSL_LIBC = re.compile(r"strcmp|strlen|strcasecmp|malloc|free|realloc|calloc|pthread_|"
                          r"__lll|_int_|tcache|cfree")
KERNEL_COPY = re.compile(r"copy_from_iter|copy_user|_copy_from_user|rep_movs|memcpy_orig|"
                         r"__memcpy|csum_partial_copy")
SCHED = re.compile(r"schedule|finish_task_switch|nanosleep|hrtimer|pick_next|dequeue_task|"
                   r"enqueue_task|switch_to|update_curr")
VECTOR = re.compile(r"%[xyz]mm\d")


def vector_code(lib, addr, cache={}):
    """True when the instructions around addr in lib are mostly vector ones."""
    key = (lib, addr & ~0x1F)
    if key in cache:
        return cache[key]
    out = subprocess.run(["objdump", "-d", "--no-show-raw-insn",
                          "--start-address=%#x" % max(0, addr - 96),
                          "--stop-address=%#x" % (addr + 32), lib],
                         capture_output=True, text=True).stdout
    insns = [l for l in out.splitlines() if re.match(r"\s+[0-9a-f]+:\s", l)]
    vec = sum(1 for l in insns if VECTOR.search(l))
    cache[key] = len(insns) > 0 and vec * 2 >= len(insns)
    return cache[key]


def classify(frames):
    """frames: [(ip, sym, dso)], leaf first."""
    ip, sym, dso = frames[0]
    if "libcrypto" in dso:
        if sym.startswith("[unknown]") or sym == "":
            return "cipher" if vector_code(dso, int(ip, 16)) else "openssl"
        return "cipher" if CIPHER_SYMS.search(sym) else "openssl"
    if "libssl" in dso:
        return "openssl"
    if "libc.so" in dso:
        if re.search(r"mem(move|cpy)", sym):
            return "user_copy"
        if re.search(r"nanosleep|clock_nanosleep", sym):
            return "sched"
        callers = [(sy, d) for _, sy, d in frames[1:] if "libc.so" not in d]
        if callers and ("libcrypto" in callers[0][1] or "libssl" in callers[0][1] or
                        callers[0][0].startswith("mem_")):
            return "openssl"
        if OPENSSL_LIBC.search(sym) and not re.search(r"asynccancel", sym):
            return "openssl"
        return "tcp"  # the write/writev wrappers: system call entry
    if "kernel" in dso:
        if KERNEL_COPY.search(sym):
            return "kernel_copy"
        if any(SCHED.search(s) for _, s, _ in frames[:6]):
            return "sched"
        return "tcp"
    if "tls_floor" in dso:
        # tls_floor's allocation wrappers run for OpenSSL alone (its memory count).
        return "openssl" if sym.startswith("mem_") else "app"
    return "other"


def main():
    args = sys.argv[1:]
    detail = bool(args) and args[0] == "--detail"
    if detail:
        args = args[1:]
    if not args:
        sys.exit(__doc__)
    label = args[1] if len(args) > 1 else args[0]
    text = subprocess.run(["perf", "script", "-i", args[0], "-F", "comm,tid,ip,sym,dso"],
                          capture_output=True, text=True).stdout
    counts = collections.Counter()
    leaves = collections.defaultdict(collections.Counter)
    total = 0
    for block in text.split("\n\n"):
        lines = [l for l in block.strip().splitlines() if l.strip()]
        if len(lines) < 2 or not lines[0].startswith("sender"):
            continue
        frames = []
        for l in lines[1:]:
            m = re.match(r"\s*([0-9a-f]+)\s+(.*?)\s+\((.*)\)\s*$", l)
            if m:
                frames.append((m.group(1), m.group(2), m.group(3)))
        if not frames:
            continue
        bucket = classify(frames)
        counts[bucket] += 1
        total += 1
        ip, sym, dso = frames[0]
        if sym.startswith("[unknown]") or sym == "":
            sym = "libcrypto " + bucket if "libcrypto" in dso else dso
        leaves[bucket][sym] += 1
    if total == 0:
        sys.exit("perf_breakdown: no samples of the sender thread in " + args[0])
    busy = total - counts["sched"]
    print("%s: %d samples of the sender, %d of them busy" % (label, total, busy))
    print("| where | share of the sender's busy samples |")
    print("| --- | --- |")
    for key, text_ in BUCKETS:
        if key == "sched" or counts[key] == 0:
            continue
        print("| %s | %.1f%% |" % (text_, 100.0 * counts[key] / busy))
    if detail:
        for key, _ in BUCKETS:
            if key == "sched" or counts[key] == 0:
                continue
            top = ", ".join("%s %.1f%%" % (s, 100.0 * n / busy)
                            for s, n in leaves[key].most_common(10))
            print("%s: %s" % (key, top))


if __name__ == "__main__":
    main()
