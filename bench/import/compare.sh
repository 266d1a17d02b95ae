#!/usr/bin/env bash
# Before/after on the import: two cctvhub trees built side by side (bench/lib/trees.sh) import
# the same generated file (gen.py, as run.sh) in alternating rounds (the side that goes first
# swaps every round); medians over the rounds and the ratios after / before. Per round and
# side: `cctvhub import` into a new store, the same file again (everything unchanged), and
# `--dry-run` (decode, parse, check, build every record; no store): wall time, CPU time (user
# + system) and peak RSS of each, from /usr/bin/time.
#
#   bench/import/compare.sh [BASE [HEAD]]   # BASE default fd6bf6a; HEAD default the working tree
#
# Environment: ROUNDS (5), ROWS (250000 sites, about 1.66 million cameras). About 4.5
# minutes on 2 cores shared with other jobs (load 12-20) with the defaults, once both trees
# are built.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
. "$ROOT/bench/lib/trees.sh"

[ $# -le 2 ] || { echo "usage: $0 [BASE [HEAD]]" >&2; exit 2; }
rounds=${ROUNDS:-5}
rows=${ROWS:-250000}
[ -x /usr/bin/time ] || { echo "import/compare.sh: /usr/bin/time is missing (Debian package \"time\")" >&2; exit 2; }
started=$(date +%s)

bench_trees "${1:-fd6bf6a}" "${2:-WORKTREE}" cctvhub

bench_tmp import-compare

echo "== generate $rows rows"
python3 "$ROOT/bench/import/gen.py" --rows "$rows" "$tmp/national.csv"
cat "$tmp/national.csv" >/dev/null # in the page cache

# Runs cctvhub of side $1 with arguments $3... under /usr/bin/time, keeping measure $2:
# wall time (s), CPU time (s), peak RSS (MiB).
timed() {
    local side=$1 what=$2 bin
    shift 2
    bin=$(side_build "$side")/cctvhub
    /usr/bin/time -f '%e %U %S %M' -o "$tmp/time" "$bin" import --log-level warn "$@" >/dev/null
    read -r wall user sys rss <"$tmp/time"
    bench_keep "$side" "$what: wall (s)" "$wall"
    bench_keep "$side" "$what: CPU (s)" "$(awk -v u="$user" -v s="$sys" 'BEGIN { print u + s }')"
    bench_keep "$side" "$what: peak RSS (MiB)" "$(awk -v k="$rss" 'BEGIN { printf "%.0f", k / 1024 }')"
    printf ' %s %ss' "$what" "$wall"
}


echo "before: $base_label ($base_build)"
echo "after:  $head_label ($head_build)"
echo "$rounds rounds, alternating; cores: $(nproc); load: $(cut -d' ' -f1-3 /proc/loadavg)"
for r in $(seq "$rounds"); do
    for side in $(sides "$r"); do
        printf 'round %s %s:' "$r" "$side"
        rm -rf "$tmp/data"
        timed $side "new store" --data-dir "$tmp/data" "$tmp/national.csv"
        timed $side "again" --data-dir "$tmp/data" "$tmp/national.csv"
        timed $side "dry run" --dry-run "$tmp/national.csv"
        echo
    done
done
rm -rf "$tmp/data"

echo "== medians over $rounds rounds (lower is better)"
bench_report
echo "($(($(date +%s) - started)) s in all, builds included)"
