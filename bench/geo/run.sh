#!/usr/bin/env bash
# geo benchmark: 1.6 million cameras scaled up from the real Busan and Daejeon files, 10,000
# point queries (top 20 within 300 m) through the geo module and, in the same run, through
# SQLite's R*Tree with the visibility model in SQL. See README.md in this folder.
#
# usage: bench/geo/run.sh     (CAMERAS=N, default 1600000; QUERIES=N, default 10000;
#                              BUILD=DIR for the Release build dir, default build/geo-rel)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${BUILD:-$ROOT/build/geo-rel}
CAMERAS=${CAMERAS:-1600000}
QUERIES=${QUERIES:-10000}

for tool in cmake cc pkg-config; do
    command -v "$tool" >/dev/null || { echo "run.sh: $tool is missing" >&2; exit 2; }
done

echo "== build (Release) in $BUILD"
cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$BUILD" -j"$(nproc)" --target ch_geo ch_store ch_core >/dev/null
for lib in libch_geo.a libch_store.a libch_core.a; do
    [ -f "$BUILD/$lib" ] || { echo "run.sh: $BUILD/$lib was not built" >&2; exit 2; }
done
# shellcheck disable=SC2046
cc -O2 -std=gnu11 -D_GNU_SOURCE -I"$ROOT/src" $(pkg-config --cflags jansson sqlite3) \
    -o "$BUILD/geo-bench" "$ROOT/bench/geo/geo_bench.c" \
    "$BUILD/libch_geo.a" "$BUILD/libch_store.a" "$BUILD/libch_core.a" \
    $(pkg-config --libs jansson sqlite3) -lm

echo "== $CAMERAS cameras, $QUERIES queries ($(nproc) cores, $(uname -m))"
"$BUILD/geo-bench" "$ROOT/tests/data/cctv" "$CAMERAS" "$QUERIES"
