# Sourced by the benchmarks that load the hub through HTTP with wrk (bash): bench/events/run.sh
# (and setup.sh, its store and scripts) and bench/geo/http.sh.
#
#   . "$ROOT/bench/lib/http.sh"
#   bench_need geo/http.sh wrk sqlite3 python3 curl cmake
#   bench_run_tmp geo            # $TMP, and $pid (the hub, once started) stopped on exit
#   bench_build_hub              # cctvhub in Release in $BUILD

# Every client of a benchmark connects from 127.0.0.1: lift the per-address caps that stop
# floods (http.max_connections_per_addr, relay.max_unauthorized*; README, Operations).
export CCTVHUB_HTTP_MAX_CONNECTIONS_PER_ADDR=0 CCTVHUB_RELAY_MAX_UNAUTHORIZED=4096 \
    CCTVHUB_RELAY_MAX_UNAUTHORIZED_PER_ADDR=4096

# Stops the script (exit 2) naming the first of the tools $2... that is not installed; $1 is
# the script's name for the message.
bench_need() {
    local name=$1 tool
    shift
    for tool in "$@"; do
        command -v "$tool" >/dev/null || { echo "$name: $tool is missing" >&2; exit 2; }
    done
}

# Makes the work folder TMP (/tmp/cctvhub-bench-$1.XXXXXX). On exit the hub whose process id
# the script put in pid is stopped and the folder removed (kept with KEEP=1).
bench_run_tmp() {
    TMP=$(mktemp -d "/tmp/cctvhub-bench-$1.XXXXXX")
    pid=
    trap bench_run_cleanup EXIT
}

bench_run_cleanup() {
    [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    [ "${KEEP:-0}" = 1 ] || rm -rf "$TMP"
}

# Builds cctvhub in Release in BUILD (no tests).
bench_build_hub() {
    echo "== build (Release) in $BUILD"
    cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF >/dev/null
    cmake --build "$BUILD" -j"$(nproc)" --target cctvhub >/dev/null
}

# Writes the head of a wrk script: requests with API key $1, the points of file $2 ("lat lon"
# lines) loaded, and point(), a random one of them moved by up to $3 / 2 degrees in latitude
# and in longitude (0.001: about 50 m). The same seed every run.
bench_points_lua() {
    cat <<LUA
wrk.headers["Authorization"] = "Bearer $1"
local points = {}
for line in io.lines("$2") do
  local lat, lon = line:match("([^ ]+) ([^ ]+)")
  points[#points + 1] = {tonumber(lat), tonumber(lon)}
end
math.randomseed(20261125)
local function point()
  local p = points[math.random(#points)]
  return p[1] + (math.random() - 0.5) * $3, p[2] + (math.random() - 0.5) * $3
end
LUA
}

# Writes the wrk script of GET /api/v1/geo/near (within 300 m, at most $4 cameras) at the
# points of bench_points_lua $1 $2 $3.
bench_near_lua() {
    bench_points_lua "$1" "$2" "$3"
    cat <<LUA
request = function()
  local lat, lon = point()
  return wrk.format("GET", string.format(
    "/api/v1/geo/near?lat=%.6f&lon=%.6f&radius_m=300&limit=$4", lat, lon))
end
LUA
}
