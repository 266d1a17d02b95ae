#!/bin/sh
# The demo: cctvhub on the embedded default (SQLite in ./var), the real published CCTV
# inventories imported through the API, and a few requests to try. Ctrl-C stops it cleanly.
# usage: scripts/demo.sh [PATH-TO-cctvhub]
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
bin=${1:-$top/build/release/cctvhub}
listen=${CCTVHUB_HTTP_LISTEN:-127.0.0.1:8080}
data_dir=${CCTVHUB_DATA_DIR:-$top/var}
files_dir=$top/../shared/data/cctv
[ -d "$files_dir" ] || files_dir=$top/tests/data/cctv
base="http://$listen"

mkdir -p "$data_dir"
# The demo's administrator: made once, its password kept (mode 0600) beside the data.
pwfile=$data_dir/demo-admin-password
jar=$data_dir/demo-cookies
if [ ! -s "$pwfile" ]; then
    (umask 077 && head -c 18 /dev/urandom | base64 | tr '+/' '-_' >"$pwfile")
    CCTVHUB_LOG_LEVEL=warn "$bin" user add admin --role admin --password-stdin \
        --data-dir "$data_dir" <"$pwfile" >/dev/null
fi
password=$(cat "$pwfile")
export CCTVHUB_SERVICES_FILE=${CCTVHUB_SERVICES_FILE:-$top/etc/services.json}
"$bin" serve --data-dir "$data_dir" --http "$listen" 2>>"$data_dir/cctvhub.log" &
pid=$!
trap 'kill -TERM $pid 2>/dev/null; wait $pid 2>/dev/null; exit 0' INT TERM

i=0
until curl -fsS "$base/api/v1/health" >/dev/null 2>&1; do
    i=$((i + 1))
    if [ $i -gt 100 ] || ! kill -0 $pid 2>/dev/null; then
        echo "demo: the hub did not start; its log:" >&2
        tail -n 20 "$data_dir/cctvhub.log" >&2
        exit 1
    fi
    sleep 0.1
done

echo "cctvhub is serving $base (data in $data_dir, log in $data_dir/cctvhub.log)"
(umask 077 && : >"$jar")
csrf=$(curl -sS -c "$jar" -H 'Content-Type: application/json' \
    -d "{\"username\":\"admin\",\"password\":\"$password\"}" "$base/api/v1/session" |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["csrf"])')
echo "logged in as admin (password in $pwfile; session cookie in $jar)"
echo "importing the published CCTV inventories from $files_dir:"
for f in "$files_dir"/*.csv; do
    name=$(basename "$f")
    curl -sS -b "$jar" -H "X-CSRF-Token: $csrf" -X POST --data-binary "@$f" \
        -H 'Content-Type: text/csv' \
        "$base/api/v1/imports?name=$name" | python3 -c '
import json, sys
r = json.load(sys.stdin)
if "error" in r:
    print("  %s: rejected: %s" % (sys.argv[1], r["error"]["message"]))
else:
    print("  %s: %s rows, %s, cameras +%d (=%d), devices +%d, %d flagged, %d skipped" % (
        r["file"], r["rows"], r["encoding"], r["cameras_created"], r["cameras_unchanged"],
        r["devices_created"], len(r["flagged"]), len(r["skipped"])))
' "$name"
done

# A police 112 center and its system's API key, to open events with.
keyfile=$data_dir/demo-112-key
if [ ! -s "$keyfile" ]; then
    police=$(curl -sS -b "$jar" -H "X-CSRF-Token: $csrf" -H 'Content-Type: application/json' \
        -d '{"name":"부산경찰청 112치안종합상황실","kind":"user","level":"city","type":"police-112"}' \
        "$base/api/v1/agencies" | python3 -c 'import json, sys; print(json.load(sys.stdin).get("id", ""))')
    if [ -n "$police" ]; then
        (umask 077 && CCTVHUB_LOG_LEVEL=warn "$bin" apikey create --agency "$police" \
            --label demo --data-dir "$data_dir" 2>/dev/null >"$keyfile")
    fi
fi
key=$(cat "$keyfile" 2>/dev/null || true)

cat <<TXT

Try (the session cookie of admin is in $jar; requests that change state also need
-H 'X-CSRF-Token: $csrf'):
  curl -s '$base/api/v1/health'
  curl -s '$base/api/v1/version'
  curl -s -b $jar '$base/api/v1/session'          # who am I
  curl -s -b $jar '$base/api/v1/agencies?limit=5'
  curl -s -b $jar '$base/api/v1/cameras?limit=3&purpose=%EC%96%B4%EB%A6%B0%EC%9D%B4%EB%B3%B4%ED%98%B8'
  curl -s -b $jar '$base/api/v1/cameras?bbox=129.02,35.09,129.05,35.12&limit=5'
  curl -s -b $jar '$base/api/v1/cameras?kind=ptz&q=%ED%95%B4%EC%9A%B4%EB%8C%80&limit=2'
  curl -s -b $jar '$base/api/v1/devices?limit=2'
  curl -s -b $jar '$base/api/v1/geo/near?lat=35.1035&lon=129.034&radius_m=300&limit=5'
  curl -s -b $jar '$base/api/v1/services'         # the 11 linked services and their rules

An event, as the Busan 112 center's system (its API key is in $keyfile):
  curl -s -H 'Authorization: Bearer $key' -H 'Content-Type: application/json' \\
       -d '{"service":"112-center","location":{"lat":35.1035,"lon":129.034},
            "incident":"112-2026-0001","reason":"robbery reported","duration_s":600}' \\
       '$base/api/v1/events'                      # grants with signed view tokens
  curl -s -b $jar '$base/api/v1/ledger?format=csv'  # the provision ledger (PIPA Decree Art. 15)
  curl -s '$base/api/v1/openapi.yaml' | head
  curl -s -b $jar '$base/api/v1/audit?limit=3'    # every change, on the signed record
  curl -s '$base/api/v1/audit/checkpoint'          # keep one; verify later, offline:
  $bin audit verify --data-dir $data_dir --checkpoint FILE

Ctrl-C stops the hub.
TXT
wait $pid
