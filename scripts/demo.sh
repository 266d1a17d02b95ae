#!/bin/sh
# The demo: cctvhub on the embedded default (SQLite in ./var), the real published CCTV
# inventories imported through the API, camsim (our camera simulator) playing three live
# cameras registered with the control center of the demo's event place, and a few requests to
# try, down to live video through the relay. Ctrl-C stops it all cleanly.
# usage: scripts/demo.sh [PATH-TO-cctvhub]
# environment: CCTVHUB_HTTP_LISTEN (127.0.0.1:8080, HTTPS), CCTVHUB_RTSP_LISTEN (the relay,
# 127.0.0.1:8554), CCTVHUB_RTSPS_LISTEN (the relay over TLS, 127.0.0.1:8322), CCTVHUB_DATA_DIR
# (./var), CCTVHUB_DEMO_CAMSIM_LISTEN (127.0.0.1:8555)
# The hub serves HTTPS and RTSPS with a private CA made once by `cctvhub tls init` in
# <data>/tls; every curl here trusts that CA through CURL_CA_BUNDLE.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
bin=${1:-$top/build/release/cctvhub}
listen=${CCTVHUB_HTTP_LISTEN:-127.0.0.1:8080}
data_dir=${CCTVHUB_DATA_DIR:-$top/var}
camsim_listen=${CCTVHUB_DEMO_CAMSIM_LISTEN:-127.0.0.1:8555}
clips=$(cd "$(dirname "$bin")" && pwd)/camsim-clips
files_dir=$top/../shared/data/cctv
[ -d "$files_dir" ] || files_dir=$top/tests/data/cctv
base="https://$listen"
tls=$data_dir/tls
# The event place of the examples below (Busan, Jung-gu), where the camsim cameras stand.
lat=35.1035
lon=129.034

pid=
camsim_pid=
stop_all() {
    if [ -n "$pid" ]; then
        kill -TERM "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    fi
    if [ -n "$camsim_pid" ]; then
        kill -TERM "$camsim_pid" 2>/dev/null || true
        wait "$camsim_pid" 2>/dev/null || true
    fi
    pid=
    camsim_pid=
}
trap 'stop_all; exit 0' INT TERM
trap stop_all EXIT

mkdir -p "$data_dir"
# The hub's certificate, from a private CA made once (the CA's key stays in $tls, mode 0600).
if [ ! -s "$tls/server.crt" ]; then
    CCTVHUB_LOG_LEVEL=warn "$bin" tls init --dir "$tls" --data-dir "$data_dir" >/dev/null
fi
export CURL_CA_BUNDLE="$tls/ca.crt"
export CCTVHUB_TLS_CERT="$tls/server.crt" CCTVHUB_TLS_KEY="$tls/server.key"
export CCTVHUB_TLS_CLIENT_CA="$tls/ca.crt"
[ -s "$tls/ca.crl" ] && export CCTVHUB_TLS_CLIENT_CRL="$tls/ca.crl"
export CCTVHUB_RTSPS_LISTEN=${CCTVHUB_RTSPS_LISTEN:-127.0.0.1:8322}
# The demo's administrator: made once, its password kept (mode 0600) beside the data.
pwfile=$data_dir/demo-admin-password
jar=$data_dir/demo-cookies
if [ ! -s "$pwfile" ]; then
    (umask 077 && head -c 18 /dev/urandom | base64 | tr '+/' '-_' >"$pwfile")
    CCTVHUB_LOG_LEVEL=warn "$bin" user add admin --role admin --password-stdin \
        --data-dir "$data_dir" <"$pwfile" >/dev/null
fi
password=$(cat "$pwfile")
# camsim: H.264 and H.265 clips made once with ffmpeg, played as live RTSP cameras.
if [ ! -s "$clips/720p.h265" ]; then
    echo "making camsim's clips in $clips (once, a few seconds)"
fi
"$top/tools/camsim/make_clips.sh" "$clips" >/dev/null
python3 "$top/tools/camsim/camsim.py" --listen "$camsim_listen" --clips "$clips" \
    >"$data_dir/camsim.log" 2>&1 &
camsim_pid=$!

export CCTVHUB_SERVICES_FILE=${CCTVHUB_SERVICES_FILE:-$top/etc/services.json}
"$bin" serve --data-dir "$data_dir" --http "$listen" 2>>"$data_dir/cctvhub.log" &
pid=$!

i=0
until grep -q "camsim listening" "$data_dir/camsim.log" 2>/dev/null; do
    i=$((i + 1))
    if [ $i -gt 100 ] || ! kill -0 "$camsim_pid" 2>/dev/null; then
        echo "demo: camsim did not start on $camsim_listen; its log:" >&2
        tail -n 20 "$data_dir/camsim.log" >&2
        exit 1
    fi
    sleep 0.1
done

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

echo "cctvhub is serving $base over TLS (data in $data_dir, log in $data_dir/cctvhub.log)"
echo "its certificate comes from the private CA $tls/ca.crt: trust it with"
echo "  export CURL_CA_BUNDLE=$tls/ca.crt     (curl), or curl --cacert $tls/ca.crt"
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

# The camsim cameras, with the control center whose cameras see the event place (a new one
# when no imported camera does), registered once and pointed at camsim on every run.
api() { # METHOD PATH [JSON]
    if [ $# -gt 2 ]; then
        curl -sS -b "$jar" -H "X-CSRF-Token: $csrf" -H 'Content-Type: application/json' \
            -X "$1" -d "$3" "$base$2"
    else
        curl -sS -b "$jar" -X "$1" "$base$2"
    fi
}
json_get() { # KEY... : prints the value at that path of the JSON on stdin, or nothing
    python3 -c 'import json, sys
d = json.load(sys.stdin)
try:
    for k in sys.argv[1:]:
        d = d[int(k)] if isinstance(d, list) else d[k]
    print(d)
except (KeyError, IndexError, TypeError, ValueError):
    print("")' "$@"
}
provider=$(api GET "/api/v1/geo/near?lat=$lat&lon=$lon&radius_m=100&limit=1" |
    json_get cameras 0 agency_id)
if [ -z "$provider" ]; then
    provider=$(api POST /api/v1/agencies \
        '{"name":"데모 관제센터","kind":"provider","level":"district","type":"district-center"}' |
        json_get id)
fi
demo_ids=
for cam in "camsim-1 H.264 1080p:demo-gate1" "camsim-2 H.265 720p:demo-gate-265" \
    "camsim-3 H.264 1080p:demo-gate3"; do
    name=${cam%%:*}
    url="rtsp://$camsim_listen/${cam#*:}"
    id=$(api GET "/api/v1/cameras?agency_id=$provider&q=${name%% *}&limit=1" |
        json_get items 0 id)
    if [ -n "$id" ]; then
        api PATCH "/api/v1/cameras/$id" "{\"rtsp_url\":\"$url\"}" >/dev/null
    else
        id=$(api POST /api/v1/cameras "{\"agency_id\":$provider,\"name\":\"$name\",
            \"lat\":$lat,\"lon\":$lon,\"kind\":\"ptz\",\"status\":\"active\",
            \"purpose\":\"생활방범\",\"rtsp_url\":\"$url\"}" | json_get id)
    fi
    [ -n "$id" ] || { echo "demo: could not register $name" >&2; exit 1; }
    demo_ids="$demo_ids${demo_ids:+,}$id"
    echo "camera $id: $name, live from camsim at $url"
done

# The console's operator, working for the Busan 112 center: the video of the events it opens
# for that center plays on the console's wall. Made once, its password kept beside the admin's.
oppw=$data_dir/demo-operator-password
if [ ! -s "$oppw" ]; then
    police_id=$(api GET "/api/v1/agencies?type=police-112&q=112&limit=1" | json_get items 0 id)
    if [ -n "$police_id" ]; then
        (umask 077 && head -c 18 /dev/urandom | base64 | tr '+/' '-_' >"$oppw")
        CCTVHUB_LOG_LEVEL=warn "$bin" user add operator --role operator --agency "$police_id" \
            --password-stdin --data-dir "$data_dir" <"$oppw" >/dev/null || rm -f "$oppw"
    fi
fi

cat <<TXT

The operator console: open $base/ in a browser and log in as operator (password in
$oppw); click the map near the camsim cameras ($lat, $lon) to open a
112-center event there, then Play its cameras on the video wall.

The hub speaks only TLS: first trust its CA (a browser: import $tls/ca.crt as an authority):
  export CURL_CA_BUNDLE=$tls/ca.crt

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
  curl -s -b $jar '$base/api/v1/camera-health'    # the camsim cameras' health (probed)
  curl -s -b $jar '$base/api/v1/alerts?state=open'
  curl -s -b $jar '$base/api/v1/reports/availability?month=$(date +%Y-%m)&format=csv'
  curl -s -b $jar '$base/metrics' | grep '^cctvhub_cameras'   # for Prometheus

An event, as the Busan 112 center's system (its API key is in $keyfile):
  curl -s -H 'Authorization: Bearer $key' -H 'Content-Type: application/json' \\
       -d '{"service":"112-center","location":{"lat":35.1035,"lon":129.034},
            "incident":"112-2026-0001","reason":"robbery reported","duration_s":600}' \\
       '$base/api/v1/events'                      # grants with signed view tokens

Live video: the same event, keeping the rtsp_url of the camsim cameras' grants (the view token
is in the URL), then watch one with ffplay or VLC through the relay:
  curl -s -H 'Authorization: Bearer $key' -H 'Content-Type: application/json' \\
       -d '{"service":"112-center","location":{"lat":$lat,"lon":$lon},
            "incident":"112-2026-0002","reason":"robbery reported","duration_s":600}' \\
       '$base/api/v1/events' | python3 -c 'import json, sys
for g in json.load(sys.stdin)["grants"]:
    if g["camera_id"] in {$demo_ids}: print(g["rtsp_url"])'
  ffplay 'RTSP_URL'        # rtsps://: the video encrypted (Debian's ffmpeg 5.1 does not check
                           # the certificate; GStreamer's rtspsrc does, with the CA)
  curl -s -b $jar '$base/api/v1/streams'          # the relay's pulls and viewers
  curl -s -b $jar '$base/api/v1/audit?action=view.start'   # who watched what, when

  curl -s -b $jar '$base/api/v1/ledger?format=csv'  # the provision ledger (PIPA Decree Art. 15)
  curl -s '$base/api/v1/openapi.yaml' | head
  curl -s -b $jar '$base/api/v1/audit?limit=3'    # every change, on the signed record
  curl -s '$base/api/v1/audit/checkpoint'          # keep one; verify later, offline:
  $bin audit verify --data-dir $data_dir --checkpoint FILE

Ctrl-C stops the hub and camsim.
TXT
wait $pid
