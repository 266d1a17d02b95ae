#!/bin/sh
# Replays every fuzz target's seed corpus, then fuzzes each for a few seconds.
# usage: scripts/fuzz.sh BUILD_DIR SECONDS
set -eu
build=${1:-build/check}
secs=${2:-15}
top=$(cd "$(dirname "$0")/.." && pwd)
found=0
for bin in "$build"/tests/fuzz_*; do
    [ -x "$bin" ] || continue
    found=1
    name=$(basename "$bin")
    seeds="$top/tests/fuzz/corpus/$name"
    work=$(mktemp -d)
    trap 'rm -rf "$work"' EXIT
    if [ -d "$seeds" ]; then
        echo "fuzz: $name: replaying $(ls "$seeds" | wc -l) seeds"
        "$bin" -runs=0 "$seeds" >"$work/replay.log" 2>&1 || { cat "$work/replay.log"; exit 1; }
        cp "$seeds"/* "$work/" 2>/dev/null || true
        rm -f "$work/replay.log"
    fi
    echo "fuzz: $name: fuzzing for ${secs}s"
    mkdir -p "$work/corpus"
    [ -d "$seeds" ] && cp "$seeds"/* "$work/corpus/" 2>/dev/null || true
    if ! "$bin" -max_total_time="$secs" -max_len=8192 -timeout=10 -rss_limit_mb=2048 \
        -artifact_prefix="$work/" "$work/corpus" >"$work/fuzz.log" 2>&1; then
        tail -n 40 "$work/fuzz.log"
        echo "fuzz: $name: FAILED (crash input kept in $build/)"
        cp "$work"/crash-* "$work"/leak-* "$work"/timeout-* "$work"/oom-* "$build/" 2>/dev/null || true
        exit 1
    fi
    grep -E '^(Done|#[0-9]+ *DONE)' "$work/fuzz.log" | tail -n 1 || true
    rm -rf "$work"
done
[ "$found" = 1 ] || { echo "fuzz: no fuzz targets in $build/tests"; exit 1; }
echo "fuzz: ok"
