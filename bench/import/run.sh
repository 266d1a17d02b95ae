#!/usr/bin/env bash
# Import benchmark: a national-scale CCTV standard data file (about 250,000 sites, 1.6 million
# cameras, CP949, with the blemishes of real files) imported by `cctvhub import`, against
# sqlite3's own CSV loader (`.import`) putting the same rows, converted to UTF-8, into a plain
# table. See README.md in this folder.
#
# usage: bench/import/run.sh            (ROWS=N to change the size, BUILD=DIR for the build dir,
#                                         KEEP=1 to keep the temporary folder)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${BUILD:-$ROOT/build/bench-import}
ROWS=${ROWS:-250000}

if [ ! -x /usr/bin/time ]; then
    echo "run.sh: /usr/bin/time is missing (Debian package \"time\")" >&2
    exit 2
fi
for tool in sqlite3 iconv python3 cmake; do
    command -v "$tool" >/dev/null || { echo "run.sh: $tool is missing" >&2; exit 2; }
done

TMP=$(mktemp -d /tmp/cctvhub-bench-import.XXXXXX)
if [ "${KEEP:-0}" != 1 ]; then
    trap 'rm -rf "$TMP"' EXIT
fi

echo "== build (Release) in $BUILD"
cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF >/dev/null
cmake --build "$BUILD" -j"$(nproc)" --target cctvhub >/dev/null

echo "== generate $ROWS rows"
python3 "$ROOT/bench/import/gen.py" --rows "$ROWS" "$TMP/national.csv"
iconv -f cp949 -t utf-8 "$TMP/national.csv" >"$TMP/national_utf8.csv"
cat "$TMP/national.csv" "$TMP/national_utf8.csv" >/dev/null # both in the page cache
ls -l "$TMP/national.csv" "$TMP/national_utf8.csv" | awk '{print "   " $5 " bytes  " $9}'

now() { date +%s.%N; }
# Peak RSS in kB from a /usr/bin/time -v report.
rss() { awk -F': ' '/Maximum resident set size/ {print $2}' "$1"; }

echo "== (1) cctvhub import (new store: everything created)"
t0=$(now)
/usr/bin/time -v -o "$TMP/ours.time" "$BUILD/cctvhub" import --data-dir "$TMP/data" --json \
    "$TMP/national.csv" >"$TMP/report.json"
t1=$(now)
ours=$(python3 -c "print($t1 - $t0)")
ours_rss=$(rss "$TMP/ours.time")

echo "== (1b) cctvhub import again (same file: everything unchanged)"
t0=$(now)
/usr/bin/time -v -o "$TMP/again.time" "$BUILD/cctvhub" import --data-dir "$TMP/data" --json \
    "$TMP/national.csv" >"$TMP/report2.json"
t1=$(now)
again=$(python3 -c "print($t1 - $t0)")
again_rss=$(rss "$TMP/again.time")

echo "== (1c) cctvhub import --dry-run (read, decode, check, build every record; no store)"
t0=$(now)
/usr/bin/time -v -o "$TMP/dry.time" "$BUILD/cctvhub" import --dry-run --json \
    "$TMP/national.csv" >"$TMP/report3.json"
t1=$(now)
dry=$(python3 -c "print($t1 - $t0)")
dry_rss=$(rss "$TMP/dry.time")

echo "== (2) sqlite3 .import of the UTF-8 copy into a plain table"
t0=$(now)
/usr/bin/time -v -o "$TMP/sqlite.time" sqlite3 "$TMP/plain.db" ".mode csv" \
    ".import $TMP/national_utf8.csv t"
t1=$(now)
sq=$(python3 -c "print($t1 - $t0)")
sq_rss=$(rss "$TMP/sqlite.time")
sq_rows=$(sqlite3 "$TMP/plain.db" "select count(*) from t")

# (3) SQLite's floor: the camera rows our store holds, copied by SQLite itself into a new
# database (INSERT ... SELECT, computed so that SQLite cannot copy the records raw), in one
# transaction, with the store's settings (WAL, synchronous NORMAL, page cache 512 MiB): no file
# to read, no decoding, no checking. Three index sets: none, the unique key only (the least an
# idempotent import needs), and the store's seven. Nothing our code does can be faster than
# the row that matches what it keeps.
echo "== (3) SQLite alone writing the rows the store keeps (floor)"
STORE="$TMP/data/cctvhub.db"
schema=$(sqlite3 "$STORE" "SELECT sql FROM sqlite_schema WHERE name = 'cameras'" |
    sed 's/REFERENCES agencies(id)//; s/AUTOINCREMENT//')
cols=$(sqlite3 "$STORE" "SELECT group_concat(name, ',') FROM pragma_table_info('cameras')")
exprs=$(echo "$cols" | sed 's/^id,/id + 0,/')
key_index=$(sqlite3 "$STORE" "SELECT sql || ';' FROM sqlite_schema WHERE name = 'cameras_source_key'")
all_indexes=$(sqlite3 "$STORE" "SELECT group_concat(sql, '; ') || ';' FROM sqlite_schema
    WHERE type = 'index' AND tbl_name = 'cameras' AND sql IS NOT NULL")
floor() { # name, index statements
    rm -f "$TMP/floor.db" "$TMP/floor.db-wal" "$TMP/floor.db-shm"
    sqlite3 "$TMP/floor.db" "PRAGMA journal_mode = WAL" "$schema" >/dev/null
    local t0 t1
    t0=$(now)
    sqlite3 "$TMP/floor.db" "ATTACH '$STORE' AS s" "PRAGMA synchronous = NORMAL" \
        "PRAGMA cache_size = -524288" "PRAGMA threads = 2" "BEGIN" \
        "INSERT INTO cameras SELECT $exprs FROM s.cameras" "$2" "COMMIT" >/dev/null
    t1=$(now)
    python3 -c "print($t1 - $t0)" >"$TMP/floor_$1"
}
floor none ""
floor key "$key_index"
floor all "$all_indexes"
floor_rows=$(sqlite3 "$STORE" "SELECT count(*) FROM cameras")
floor_mb=$(python3 -c "import os; print(round(os.path.getsize('$STORE') / 1e6))")

python3 - "$TMP/report.json" "$TMP/report2.json" <<EOF
import json, sys
r = json.loads(open(sys.argv[1]).readline())
r2 = json.loads(open(sys.argv[2]).readline())
print("== results")
print(f"   rows {r['rows']}  cameras {r['cameras']} (created {r['cameras_created']})  "
      f"agencies {r['agencies_created']}  unlocated {r['unlocated']}  "
      f"flagged {len(r['flagged'])}  skipped {len(r['skipped'])}")
print(f"   re-import: created {r2['cameras_created']} updated {r2['cameras_updated']} "
      f"unchanged {r2['cameras_unchanged']}")
ours, again, sq = float("$ours"), float("$again"), float("$sq")
dry = float("$dry")
print(f"   cctvhub import  {ours:7.2f} s   peak RSS {int('$ours_rss') / 1024:7.1f} MiB   "
      f"(library's own figure {r['duration_s']:.2f} s)")
print(f"   re-import       {again:7.2f} s   peak RSS {int('$again_rss') / 1024:7.1f} MiB")
print(f"   dry run         {dry:7.2f} s   peak RSS {int('$dry_rss') / 1024:7.1f} MiB   "
      f"(conversion and checks, no store)")
print(f"   sqlite3 .import {sq:7.2f} s   peak RSS {int('$sq_rss') / 1024:7.1f} MiB   "
      f"({int('$sq_rows')} rows into one table, no checks)")
print(f"   ratio cctvhub / sqlite3 = {ours / sq:.2f}  (re-import {again / sq:.2f}, "
      f"dry run {dry / sq:.2f})")
fl = {k: float(open(f"$TMP/floor_{k}").read()) for k in ("none", "key", "all")}
print(f"   floor: SQLite alone writing the store's {int('$floor_rows')} rows ($floor_mb MB store)")
for k, what in (("none", "no index"), ("key", "unique key only"), ("all", "the seven indexes")):
    print(f"     {what:18s} {fl[k]:7.2f} s   ratio to sqlite3 .import {fl[k] / sq:.2f}")
print(f"   cctvhub import / floor with the seven indexes = {ours / fl['all']:.2f}")
EOF
if [ "${KEEP:-0}" = 1 ]; then
    echo "   kept $TMP"
fi
