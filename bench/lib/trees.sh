# Sourced by the compare scripts (bash): builds two cctvhub trees in release mode, each in a
# build directory of its own, so that one run can measure both side by side.
#
#   . "$top/bench/lib/trees.sh"
#   bench_tree fd6bf6a cctvhub ch_media   # sets tree_src, tree_build, tree_label
#
# A revision (anything `git rev-parse` takes) is exported with `git archive` into
# $BENCH_TREES/<commit>/src (default /tmp/cctvhub-bench-trees) and built in .../build; a tree
# already built there is only brought up to date, so a second compare of the same revision
# starts at once. The revision WORKTREE (the default HEAD of every compare) is the working
# tree itself, built in build/bench-release. Both are built the same way: the default
# compiler, CMAKE_BUILD_TYPE=Release, BUILD_TESTING=OFF.
#
# Also here: free_port, ticks, and bench_keep and bench_report, the medians and ratios of
# every compare.

bench_top=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
bench_trees=${BENCH_TREES:-/tmp/cctvhub-bench-trees}

# Builds revision $1 (or the working tree for WORKTREE) for targets $2...; sets tree_src (its
# sources, for its own bench programs), tree_build and tree_label (short commit, or
# "worktree" with the commit it stands on and "+changes" when it has any).
bench_tree() {
    local rev=$1
    shift
    if [ "$rev" = WORKTREE ]; then
        tree_src=$bench_top
        tree_build=$bench_top/build/bench-release
        tree_label="worktree at $(git -C "$bench_top" rev-parse --short HEAD)"
        if [ -n "$(git -C "$bench_top" status --porcelain -- src CMakeLists.txt)" ]; then
            tree_label="$tree_label+changes"
        fi
    else
        local sha
        sha=$(git -C "$bench_top" rev-parse --verify "$rev^{commit}") ||
            { echo "bench_tree: no revision $rev" >&2; return 1; }
        tree_src=$bench_trees/$sha/src
        tree_build=$bench_trees/$sha/build
        tree_label=$(git -C "$bench_top" rev-parse --short "$sha")
        if [ ! -f "$tree_src/CMakeLists.txt" ]; then
            rm -rf "$tree_src"
            mkdir -p "$tree_src"
            git -C "$bench_top" archive "$sha" | tar -x -C "$tree_src"
        fi
    fi
    echo "== build $tree_label (Release) in $tree_build" >&2
    mkdir -p "$tree_build"
    cmake -S "$tree_src" -B "$tree_build" -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF \
        >"$tree_build.cmake.log" 2>&1 ||
        { cat "$tree_build.cmake.log" >&2; return 1; }
    local t
    for t in "$@"; do
        cmake --build "$tree_build" -j2 --target "$t" >"$tree_build.build.log" 2>&1 ||
            { grep -m5 -E 'error|Error' "$tree_build.build.log" >&2; return 1; }
    done
}

# Builds the two trees of a compare: sets base_* and head_* (src, build, label).
bench_trees() {
    local base=$1 head=$2
    shift 2
    bench_tree "$base" "$@" || return 1
    base_src=$tree_src base_build=$tree_build base_label=$tree_label
    bench_tree "$head" "$@" || return 1
    head_src=$tree_src head_build=$tree_build head_label=$tree_label
}

# A port free on 127.0.0.1 now (the kernel's choice).
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# CPU ticks (utime + stime) of a process.
ticks() {
    awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"
}

# The results of a compare: one line per measure, side (before or after) and round, kept in
# $bench_results (the caller sets it to a file in its temporary directory).
bench_keep() {
    printf '%s\t%s\t%s\n' "$1" "$2" "$3" >>"$bench_results"
}

# Prints one line per measure kept with bench_keep, in the order first kept: the median of
# each side over the rounds and the ratio after / before of the medians.
bench_report() {
    python3 - "$bench_results" "$base_label" "$head_label" <<'PY'
import statistics, sys
rows, order = {}, []
for line in open(sys.argv[1]):
    side, name, value = line.rstrip("\n").split("\t")
    if name not in rows:
        rows[name] = {"before": [], "after": []}
        order.append(name)
    try:
        rows[name][side].append(float(value))
    except ValueError:
        pass
w = max([len(n) for n in order] + [7])
print(f"before: {sys.argv[2]}; after: {sys.argv[3]}")
print(f"{'measure':{w}}  {'before':>10}  {'after':>10}  {'after/before':>12}  rounds")
for n in order:
    b, a = rows[n]["before"], rows[n]["after"]
    mb = statistics.median(b) if b else None
    ma = statistics.median(a) if a else None
    r = f"{ma / mb:.2f}" if mb and ma is not None else "n/a"
    f = lambda v: "n/a" if v is None else (f"{v:.0f}" if abs(v) >= 1000 else f"{v:.3g}")
    print(f"{n:{w}}  {f(mb):>10}  {f(ma):>10}  {r:>12}  {len(b)}/{len(a)}")
PY
}

# The build directory and the source tree of side $1 (before: BASE, after: HEAD).
side_build() { if [ "$1" = before ]; then echo "$base_build"; else echo "$head_build"; fi; }
side_src() { if [ "$1" = before ]; then echo "$base_src"; else echo "$head_src"; fi; }

# The sides of round $1 in the order they run: before first in odd rounds, after first in
# even ones, so that neither always has the machine as the other left it.
sides() { if [ $(($1 % 2)) -eq 1 ]; then echo "before after"; else echo "after before"; fi; }

# Makes the temporary directory $tmp (named after $1), sets bench_results in it, and on exit
# stops the processes whose ids the caller adds to pids and removes $tmp.
bench_tmp() {
    tmp=$(mktemp -d "/tmp/cctvhub-bench-$1.XXXXXX")
    bench_results=$tmp/results
    pids=()
    trap bench_cleanup EXIT
    trap 'exit 130' INT TERM
}

bench_cleanup() {
    local p
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    rm -rf "$tmp"
}
