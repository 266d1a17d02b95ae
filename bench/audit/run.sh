#!/usr/bin/env bash
# Audit benchmark: durable appends per second with 1, 8 and 64 concurrent appenders (threads in
# one process), side by side in the same run with SQLite inserting the same records (WAL,
# synchronous=FULL, one INSERT and COMMIT per record), a bare write+fdatasync loop on the same
# disk (the floor), and the time `cctvhub audit verify` takes over 1 million records. See
# README.md in this folder.
#
# usage: bench/audit/run.sh     (SECONDS_PER_RUN=N per timed run, default 3; ROUNDS=N rounds
#                                of every run, default 3 (medians reported); RECORDS=N for
#                                the verify run, default 1000000; BUILD=DIR for the build dir;
#                                WORK=DIR for the folder the logs go to, default a fresh one
#                                under build/, on the disk the hub would use; KEEP=1 keeps it)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${BUILD:-$ROOT/build/bench-audit}
SECS=${SECONDS_PER_RUN:-3}
ROUNDS=${ROUNDS:-3}
RECORDS=${RECORDS:-1000000}

for tool in cmake cc pkg-config python3; do
    command -v "$tool" >/dev/null || { echo "run.sh: $tool is missing" >&2; exit 2; }
done

echo "== build (Release) in $BUILD"
cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF >/dev/null
cmake --build "$BUILD" -j"$(nproc)" --target cctvhub >/dev/null
for lib in libch_audit.a libch_core.a; do
    [ -f "$BUILD/$lib" ] || { echo "run.sh: $BUILD/$lib was not built" >&2; exit 2; }
done
# shellcheck disable=SC2046
cc -O2 -std=gnu11 -D_GNU_SOURCE -I"$ROOT/src" $(pkg-config --cflags jansson libsodium) \
    -o "$BUILD/audit-appender" "$ROOT/bench/audit/appender.c" \
    "$BUILD/libch_audit.a" "$BUILD/libch_core.a" \
    $(pkg-config --libs libsodium jansson sqlite3 libuv inih) -lpthread -lm

mkdir -p "$ROOT/build"
WORK=${WORK:-$(mktemp -d "$ROOT/build/bench-audit-work.XXXXXX")}
if [ "${KEEP:-0}" != 1 ]; then
    trap 'rm -rf "$WORK"' EXIT
fi
echo "   work folder $WORK ($(df -hT "$WORK" | awk 'NR == 2 {print $1 ", " $2}'))"

RESULTS="$WORK/results.txt"
: >"$RESULTS"
run() { # run NAME MODE THREADS
    local dir="$WORK/$1"
    rm -rf "$dir"
    "$BUILD/audit-appender" "$2" "$dir" "$3" "$SECS" | tee -a "$RESULTS" | sed 's/^/   /'
    rm -rf "$dir"
}

# The disk is shared with whatever else runs: every configuration runs once per round, the
# rounds interleaved, and the summary takes the median of the rounds.
echo "== appends per second, $ROUNDS rounds of $SECS s per run (mode threads records seconds rate)"
for r in $(seq "$ROUNDS"); do
    echo "   -- round $r"
    run floor fsync 1
    run floor overwrite 1
    for t in 1 8 64; do
        run audit-$t audit "$t"
        run sqlite-$t sqlite "$t"
    done
done

echo "== verify $RECORDS records"
"$BUILD/audit-appender" fill "$WORK/big" "$RECORDS" | sed 's/^/   filled: /'
du -sh "$WORK/big/audit" | sed 's/^/   log size: /'
sync
t0=$(date +%s.%N)
"$BUILD/cctvhub" audit verify --data-dir "$WORK/big" >"$WORK/verify.out"
t1=$(date +%s.%N)
sed 's/^/   /' "$WORK/verify.out"
echo "verify 1 $RECORDS $(python3 -c "print(f'{$t1 - $t0:.3f}')") 0" >>"$RESULTS"

python3 - "$RESULTS" <<'PY'
import statistics
import sys
runs, verify = {}, None
for line in open(sys.argv[1]):
    mode, threads, n, secs, rate = line.split()
    if mode == "verify":
        verify = (int(n), float(secs))
    else:
        runs.setdefault((mode, int(threads)), []).append(float(rate))
med = {k: statistics.median(v) for k, v in runs.items()}
spread = {k: ", ".join(f"{x:,.0f}" for x in v) for k, v in runs.items()}
fl, ov = med[("fsync", 1)], med[("overwrite", 1)]
print("== results (durable appends per second, median of the rounds)")
print("   bare append+fdatasync loop (the floor): %8s /s   (rounds: %s)"
      % (f"{fl:,.0f}", spread[("fsync", 1)]))
print("   overwrite+fdatasync loop (no growth):   %8s /s   (rounds: %s)"
      % (f"{ov:,.0f}", spread[("overwrite", 1)]))
print("   %-9s %14s %14s %13s %12s" % ("appenders", "cctvhub audit", "SQLite", "audit/SQLite",
                                      "audit/floor"))
for t in (1, 8, 64):
    a, s = med[("audit", t)], med[("sqlite", t)]
    print("   %-9d %14s %14s %13.2f %12.2f" % (t, f"{a:,.0f}", f"{s:,.0f}", a / s, a / fl))
for t in (1, 8, 64):
    print("   rounds, %2d appenders: audit %s; SQLite %s" % (t, spread[("audit", t)],
                                                         spread[("sqlite", t)]))
if verify:
    n, secs = verify
    print("   audit verify of %s records: %.2f s (%s records/s)" % (f"{n:,}", secs,
                                                                 f"{n / secs:,.0f}"))
PY
if [ "${KEEP:-0}" = 1 ]; then
    echo "   kept $WORK"
fi
