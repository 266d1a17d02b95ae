# Sourced by run.sh and compare.sh (bash): the events benchmark's store, query points and wrk
# scripts.

. "$(dirname "${BASH_SOURCE[0]}")/../lib/http.sh"

# Imports the generated sites $2 into a new store $3 with the cctvhub binary $1, adds the
# event's agency (a police-112 center: the generated providers are district centers) and
# prints its new API key.
events_store() {
    local hub=$1 sites=$2 data=$3 police
    "$hub" import --log-level warn --data-dir "$data" "$sites" >/dev/null || return 1
    sqlite3 "$data/cctvhub.db" "insert into agencies(name, kind, level, type, created_at,
        updated_at) values ('서울경찰청 112치안종합상황실', 'user', 'city', 'police-112', 0, 0)" || return 1
    police=$(sqlite3 "$data/cctvhub.db" "select id from agencies where type = 'police-112'")
    "$hub" apikey create --log-level warn --data-dir "$data" --agency "$police" 2>/dev/null
}

# Writes 10,000 positions of active located cameras of store $1 ("lat lon" lines) to $2.
events_points() {
    sqlite3 -separator ' ' "$1/cctvhub.db" \
        "select lat, lon from cameras where located = 1 and status = 'active'
         order by random() limit 10000" >"$2"
}

# Writes the wrk scripts $3/events.lua (POST /api/v1/events, 112-dispatch) and $3/near.lua
# (GET /api/v1/geo/near, the reference) for API key $1, at random points within about 50 m of
# the positions in file $2.
events_lua() {
    local key=$1 points=$2 dir=$3
    {
        bench_points_lua "$key" "$points" 0.001
        cat <<'LUA'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local n = 0
request = function()
  local lat, lon = point()
  n = n + 1
  return wrk.format(nil, "/api/v1/events", nil, string.format(
    '{"service":"112-dispatch","location":{"lat":%.6f,"lon":%.6f},' ..
    '"incident":"BENCH-%d","reason":"load test","duration_s":1800}', lat, lon, n))
end
LUA
    } >"$dir/events.lua"
    bench_near_lua "$key" "$points" 0.001 10 >"$dir/near.lua"
}
