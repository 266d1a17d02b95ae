#!/bin/sh
# bench/tls: the TLS benchmark of issue 17, all on 127.0.0.1 with free ports, in one run;
# everything started here is stopped here, everything written goes to a temporary folder.
#
# 1. floor: the TLS floor against the plaintext floor (tls_floor.c): the relay floor's frames
#    (the camsim 1080p clip as interleaved RTP, 25 fps in real time) to N loopback readers by
#    one sender thread, one writev (plain) or one SSL_write (TLS 1.3) per frame per viewer, no
#    protocol work; every mode on fresh connections, ROUNDS rounds in a rotated order, medians.
#    The sender's CPU (utime + stime of its thread) per second of video, per viewer, and each
#    TLS mode against plain in the same round.
# 2. perf: where the floor's sender spends its time (perf record -g of its thread alone, while
#    it streams to PERF_VIEWERS readers), bucketed by perf_breakdown.py.
# 3. zlm: ZLMediaKit (its MediaServer binary from $ZLM_BIN; skipped with a message when unset)
#    pulling camsim's camera over RTSP/TCP with its GOP cache (rtsp.directProxy=0), config.ini
#    written here; N viewers (bench/relay/viewers.c) joining at once on the warm stream over
#    RTSP and over RTSPS (--tls): streaming, Mbit/s, time to first keyframe p50 / p95 (from the
#    connect, the TLS handshake included), TLS handshake p50 / p95, its CPU (utime + stime from
#    /proc: over the second half of the run, when every viewer streams, and over the whole run)
#    and peak RSS. One viewer holds the stream from before the first run to after the last.
# 4. hub: cctvhub's relay over RTSPS and RTSP beside the floors of the same count (hub_relay).
# 5. https: cctvhub's HTTPS against nginx's (https.sh).
# 6. join: where a mass join's time goes on the hub (hub_join).
#
# Certificates: a throwaway P-256 CA and a server certificate for localhost and 127.0.0.1,
# made by `cctvhub tls init --dir` when `cctvhub tls --help` works, else by the openssl CLI.
#
# usage: BUILD=build/release [ZLM_BIN=/path/to/MediaServer] bench/tls/run.sh
#   PARTS="floor perf zlm hub"        which parts to run
#   FLOOR_VIEWERS="200 1000"          floor: reader counts;  FLOOR_SECONDS=10 per mode
#   FLOOR_MODES="plain aes128 aes256 chacha20 aes128/16k aes128+release aes128+gather
#                aes128/16k+release+gather"    (tls_floor.c's comment says what each is)
#   ROUNDS=3                          floor rounds per count
#   PERF_VIEWERS=1000 PERF_SECONDS=6 PERF_MODES="plain aes128 aes128/16k+release+gather chacha20"
#   RTSP_VIEWERS="200 1000"           zlm and hub parts: viewer counts;  RTSP_SECONDS=20 per run
#   HUB_ROUNDS=3                      hub part: rounds (and the join part's runs)
#   HUB_BIN=$BUILD/cctvhub            the hub measured (another build's binary, for a before/after)
#   JOIN_VIEWERS=1000 PERF_JOIN_SECONDS=4   join part
set -eu
top=$(cd "$(dirname "$0")/../.." && pwd)
here=$top/bench/tls
. "$top/bench/relay/common.sh"
build=${BUILD:-$top/build/release}
case $build in /*) ;; *) build=$top/$build ;; esac
parts=${PARTS:-floor perf zlm hub https join}
floor_viewers=${FLOOR_VIEWERS:-200 1000}
floor_seconds=${FLOOR_SECONDS:-10}
floor_modes=${FLOOR_MODES:-plain aes128 aes256 chacha20 aes128/16k aes128+release aes128+gather aes128/16k+release+gather}
rounds=${ROUNDS:-3}
perf_viewers=${PERF_VIEWERS:-1000}
perf_seconds=${PERF_SECONDS:-6}
perf_modes=${PERF_MODES:-plain aes128 aes128/16k+release+gather chacha20}
rtsp_viewers=${RTSP_VIEWERS:-200 1000}
rtsp_seconds=${RTSP_SECONDS:-20}
hub_rounds=${HUB_ROUNDS:-3}
join_viewers=${JOIN_VIEWERS:-1000}
join_perf_seconds=${PERF_JOIN_SECONDS:-4}
join_perf=0
if command -v perf >/dev/null && perf record -q -o /dev/null -- true 2>/dev/null; then
    join_perf=1
fi

cmake -S "$top" -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build" -j2 --target ch_proto ch_core >/dev/null
clips=$build/camsim-clips
"$top/tools/camsim/make_clips.sh" "$clips" >/dev/null
work=$(mktemp -d /tmp/cctvhub-bench-tls.XXXXXX)
pids=""
cleanup() {
    for p in $pids; do
        kill "$p" 2>/dev/null || true
    done
    for p in $pids; do
        wait "$p" 2>/dev/null || true
    done
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
ulimit -n 65536 2>/dev/null || true

stop_pid() {
    kill "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
    rest=""
    for p in $pids; do
        [ "$p" = "$1" ] || rest="$rest $p"
    done
    pids=$rest
}

has_part() {
    case " $parts " in *" $1 "*) return 0 ;; esac
    return 1
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Waits up to 30 s for a line matching $2 in file $1; fails with the file otherwise.
wait_line() {
    i=0
    while ! grep -q "$2" "$1" 2>/dev/null; do
        i=$((i + 1))
        if [ $i -gt 300 ]; then
            echo "run.sh: no \"$2\" after 30 s:" >&2
            cat "$1" >&2
            exit 1
        fi
        sleep 0.1
    done
}

hwm_mib() { awk '/^VmHWM/ {printf "%.0f", $2 / 1024}' "/proc/$1/status"; }

echo "== $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores ($(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)), $(uname -r), $(openssl version), load $(cut -d' ' -f1-3 /proc/loadavg)"

# ---- certificates -------------------------------------------------------------------------------

certs=$work/tls
hub_bin=${HUB_BIN:-$build/cctvhub}
if [ -z "${HUB_BIN:-}" ] && { has_part hub || has_part https || has_part join; }; then
    cmake --build "$build" -j2 --target cctvhub >"$work/hub-build.log" 2>&1 || true
fi
if [ -x "$hub_bin" ] && "$hub_bin" tls --help >/dev/null 2>&1; then
    "$hub_bin" tls init --dir "$certs" >"$work/tls-init.log" 2>&1 ||
        { cat "$work/tls-init.log" >&2; exit 1; }
    echo "certificates: cctvhub tls init --dir (P-256 CA and server certificate)"
else
    mkdir -p "$certs"
    (
        cd "$certs"
        openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key \
            -out ca.crt -days 2 -subj "/CN=cctvhub bench CA" \
            -addext "basicConstraints=critical,CA:true" \
            -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
        openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout server.key \
            -out server.csr -subj "/CN=localhost" 2>/dev/null
        printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:false\nkeyUsage=critical,digitalSignature\n' >server.ext
        openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 \
            -extfile server.ext -out leaf.crt 2>/dev/null
        cat leaf.crt ca.crt >server.crt
    )
    echo "certificates: openssl CLI (P-256 CA and server certificate; \`cctvhub tls\` not there yet)"
fi
openssl verify -CAfile "$certs/ca.crt" "$certs/server.crt" >/dev/null

# ---- 1. the TLS floor against the plaintext floor -----------------------------------------------

floor=$work/tls_floor
cc -O2 -g -Wall -Wextra -Werror "$here/tls_floor.c" -lssl -lcrypto -lpthread -o "$floor"
floor_args="--cert $certs/server.crt --key $certs/server.key --ca $certs/ca.crt $clips/1080p.h264"

# The modes $1 rotated left by $2 places, so that each round starts with another mode.
rotate() {
    echo "$1" | awk -v k="$2" '{n = NF; for (i = 0; i < n; i++) printf "%s%s", $((i + k) % n + 1), (i < n - 1 ? " " : "\n")}'
}

if has_part floor; then
    echo
    echo "== TLS floor against the plaintext floor: one sender thread, $floor_seconds s per mode, $rounds rounds (medians; ratio: the mode's CPU over plain's in the same round)"
    for n in $floor_viewers; do
        r=1
        while [ $r -le "$rounds" ]; do
            # shellcheck disable=SC2046,SC2086 # the arguments and the modes are words
            "$floor" $floor_args "$n" "$floor_seconds" $(rotate "$floor_modes" $((r - 1))) |
                grep -v '^streaming' | sed "s/^/round=$r /" >>"$work/floor-$n.txt"
            r=$((r + 1))
        done
    done
    echo "| readers | mode | sender CPU (% of a core) | us per viewer per second of video | **/ plain** | records per frame per viewer | write calls per frame per viewer | Mbit/s, slowest reader | short writes | OpenSSL KiB per viewer (both ends) |"
    echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
    for n in $floor_viewers; do
        python3 - "$work/floor-$n.txt" "$floor_modes" <<'PY'
import statistics, sys
rows, modes = {}, sys.argv[2].split()
for line in open(sys.argv[1]):
    kv = dict(f.split("=", 1) for f in line.split() if "=" in f)
    if "mode" in kv and "cpu_s" in kv:
        rows.setdefault(kv["round"], {})[kv["mode"]] = kv
for m in modes:
    got = [r[m] for r in rows.values() if m in r]
    if not got:
        continue
    med = lambda k: statistics.median(float(g[k]) for g in got)
    ratios = [float(r[m]["cpu_s"]) / float(r["plain"]["cpu_s"]) for r in rows.values()
              if m in r and "plain" in r and float(r["plain"]["cpu_s"]) > 0]
    ratio = "%.2f" % statistics.median(ratios) if ratios and m != "plain" else "1"
    print("| %s | %s | %.1f%% | %.0f | **%s** | %.2f | %.2f | %.2f | %d | %.0f |" % (
        got[0]["viewers"], m, med("core_pct"), med("us_per_viewer_s"), ratio,
        med("records_per_frame_viewer"), med("writes_per_frame_viewer"),
        min(float(g["recv_mbit_s_min"]) for g in got),
        sum(int(g["short_writes"]) for g in got), med("openssl_kib_per_viewer")))
PY
    done
    echo "(the clip: $(head -1 "$work/floor-$(echo $floor_viewers | cut -d' ' -f1).txt" | sed 's/^round=1 clip //; s/ viewers=.* readers=/; readers=/'))"
fi

# ---- 2. where the floor's time goes ------------------------------------------------------------

if has_part perf; then
    echo
    if ! command -v perf >/dev/null || ! perf record -q -o "$work/perf-probe.data" -- true 2>/dev/null; then
        echo "== perf part skipped: perf is missing or not allowed here (perf_event_paranoid)"
    else
        echo "== where the sender's time goes, $perf_viewers readers: perf record -g of the sender thread alone, $perf_seconds s while it streams"
        for m in $perf_modes; do
            out=$work/perf-$(echo "$m" | tr '/+' '__').txt
            # shellcheck disable=SC2086
            "$floor" $floor_args "$perf_viewers" $((perf_seconds + 3)) "$m" >"$out" &
            fp=$!
            pids="$pids $fp"
            wait_line "$out" '^streaming'
            sleep 1
            perf record -q -g -t "$fp" -o "$work/perf.data" -- sleep "$perf_seconds" \
                >/dev/null 2>&1
            wait "$fp"
            stop_pid "$fp"
            echo
            echo "$m: $(grep '^mode=' "$out" | sed 's/.*core_pct=\([^ ]*\).*records_per_frame_viewer=\([^ ]*\) writes_per_frame_viewer=\([^ ]*\).*/sender \1% of a core, \2 records and \3 write calls per frame per viewer/')"
            python3 "$here/perf_breakdown.py" --detail "$work/perf.data" "$m" | tail -n +2
        done
    fi
fi

# ---- the camera ----------------------------------------------------------------------------------

cam_port=$(free_port)
python3 "$top/tools/camsim/camsim.py" --listen "127.0.0.1:$cam_port" --clips "$clips" \
    --quiet >"$work/camsim.out" 2>&1 &
pids="$pids $!"
wait_line "$work/camsim.out" "camsim listening"
cam=rtsp://127.0.0.1:$cam_port
csv_header=$work/csv-header
viewers=$work/viewers
build_viewers "$top" "$build" "$viewers"

window=$(awk -v s="$rtsp_seconds" 'BEGIN {print s / 2}')
table_head() {
    echo "| server | viewers | over | streaming | dead / failed | Mbit/s min / median | TTFK p50 / p95 / max (ms) | TLS handshake p50 / p95 (ms) | PLAY answer p50 / p95 (ms) | server CPU, steady (% of a core) | server CPU, whole run | peak RSS | client CPU | first failure |"
    echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
}

# One run of N viewers against URL over TRANSPORT (rtsp or rtsps), served by process PID.
measure() {
    name=$1 url=$2 n=$3 pid=$4 over=$5
    out=$work/run-$name-$over-$n.csv
    if [ "$over" = rtsps ]; then
        viewers_tls "$out" "$name" "$n" "$url" "$rtsp_seconds" "$pid"
    else
        viewers_cpu "$out" "$name" "$n" "$url" "$rtsp_seconds" "$pid"
    fi
    awk -v rate="$steady" -v whole="$whole" -v name="$name" -v n="$n" -v over="$over" \
        -v rss="$(hwm_mib "$pid")" \
        -v st="$(field "$out" streaming)" -v dead="$(field "$out" dead)" \
        -v failed="$(field "$out" failed)" -v mmin="$(field "$out" mbps_min)" \
        -v mmed="$(field "$out" mbps_median)" -v p50="$(field "$out" ttfk_p50_ms)" \
        -v p95="$(field "$out" ttfk_p95_ms)" -v pmax="$(field "$out" ttfk_max_ms)" \
        -v t50="$(field "$out" tls_p50_ms)" -v t95="$(field "$out" tls_p95_ms)" \
        -v cipher="$(field "$out" tls_cipher)" \
        -v pl50="$(field "$out" play_p50_ms)" -v pl95="$(field "$out" play_p95_ms)" \
        -v ccpu="$(field "$out" client_cpu_s)" -v why="$(field "$out" top_failure)" 'BEGIN {
        tls = over == "rtsps" ? sprintf("%.0f / %.0f (%s)", t50, t95, cipher) : "-"
        printf "| %s | %d | %s | %d | %d / %d | %.2f / %.2f | %.0f / **%.0f** / %.0f | %s | %.0f / %.0f | %.1f%% | %.2f s | %d MiB | %.2f s | %s |\n",
            name, n, over, st, dead, failed, mmin, mmed, p50, p95, pmax, tls, pl50, pl95,
            rate * 100, whole, rss, ccpu, why
    }'
}

# viewers_cpu (common.sh) with --tls: the viewers client runs with the CA of this run.
viewers_tls() {
    _saved=$viewers
    viewers="$work/viewers-tls"
    printf '#!/bin/sh\nexec "%s" --tls "%s" "$@"\n' "$_saved" "$certs/ca.crt" >"$viewers"
    chmod +x "$viewers"
    viewers_cpu "$@"
    viewers=$_saved
}

# ---- 3. ZLMediaKit -------------------------------------------------------------------------------

# Starts ZLMediaKit with $zdir/config.ini, has it pull camsim's camera, and starts the viewer
# that holds the stream; sets zlm and holder. A fresh server for each run: its peak RSS is the
# run's own, and no run inherits another's connections.
zlm_start() {
    "$ZLM_BIN" -c "$zdir/config.ini" -s "$zdir/server.pem" -l 3 --log-dir "$zdir/log/" \
        --affinity 0 >>"$zdir/out.log" 2>&1 &
    zlm=$!
    pids="$pids $zlm"
    wait_port "$zhttp"
    wait_port "$zrtsp"
    wait_port "$zrtsps"
    curl -fsS "http://127.0.0.1:$zhttp/index/api/addStreamProxy?secret=$secret&vhost=__defaultVhost__&app=live&stream=cam&url=$cam/cam1&rtp_type=0&enable_rtsp=1&enable_rtmp=0&enable_hls=0&enable_mp4=0&enable_ts=0&enable_fmp4=0&enable_audio=0" \
        >"$zdir/proxy.json"
    grep -q '"code" *: *0' "$zdir/proxy.json" ||
        { echo "run.sh: ZLMediaKit refused the pull:" >&2; cat "$zdir/proxy.json" >&2; exit 1; }
    "$viewers" -n 1 --seconds $((rtsp_seconds + 8)) --csv --label holder "$zurl" \
        >"$work/zlm-holder.csv" &
    holder=$!
    pids="$pids $holder"
    sleep 4
}

zlm_stop() {
    stop_pid "$holder"
    holds="$holds $(field "$work/zlm-holder.csv" streaming)"
    stop_pid "$zlm"
    sleep 2
}

if has_part zlm; then
    echo
    if [ -z "${ZLM_BIN:-}" ]; then
        echo "== ZLMediaKit part skipped: ZLM_BIN is not set (the path of a MediaServer built from github.com/ZLMediaKit/ZLMediaKit with OpenSSL)"
    elif [ ! -x "$ZLM_BIN" ]; then
        echo "== ZLMediaKit part skipped: $ZLM_BIN is not an executable"
    else
        zdir=$work/zlm
        mkdir -p "$zdir/www" "$zdir/log"
        zrtsp=$(free_port)
        zrtsps=$(free_port)
        zhttp=$(free_port)
        secret=$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')
        # ZLMediaKit's certificate is one PEM file with the key and the chain.
        cat "$certs/server.key" "$certs/server.crt" >"$zdir/server.pem"
        # Every listener but RTSP, RTSPS and the API off; the pulled stream muxed for RTSP only
        # (no HLS, RTMP, TS, fMP4, MP4), parsed so that the GOP cache starts at a keyframe
        # (directProxy=0); no hooks; writes not merged (the default, as cctvhub's).
        cat >"$zdir/config.ini" <<EOF
[api]
apiDebug=0
secret=$secret
snapRoot=$zdir/www/snap/
defaultSnap=$zdir/www/logo.png
downloadRoot=$zdir/www
[general]
mediaServerId=bench
listen_ip=127.0.0.1
mergeWriteMS=0
streamNoneReaderDelayMS=600000
enable_ffmpeg=0
[protocol]
enable_audio=0
enable_hls=0
enable_hls_fmp4=0
enable_mp4=0
enable_rtsp=1
enable_rtmp=0
enable_ts=0
enable_fmp4=0
mp4_save_path=$zdir/www
hls_save_path=$zdir/www
[hook]
enable=0
[http]
port=$zhttp
sslport=0
rootPath=$zdir/www
[rtsp]
port=$zrtsp
sslport=$zrtsps
directProxy=0
lowLatency=0
[rtmp]
port=0
sslport=0
[rtp_proxy]
port=0
[rtc]
port=0
tcpPort=0
[srt]
port=0
[shell]
port=0
[onvif]
port=0
[multicast]
[record]
appName=record
EOF
        zurl=rtsp://127.0.0.1:$zrtsp/live/cam
        zurls=rtsps://127.0.0.1:$zrtsps/live/cam
        zver=$("$ZLM_BIN" -v 2>&1 | sed -n 's/.*hash[^:]*: *\([0-9a-f]\{7,\}\).*/\1/p' | head -1)
        echo "== ZLMediaKit (git ${zver:-unknown}) relaying camsim over RTSP and RTSPS: viewers joining at once, warm stream (a fresh server pulling for 4 s before each run, one viewer holding the stream), $rtsp_seconds s each"
        table_head
        holds=""
        for n in $rtsp_viewers; do
            for over in rtsp rtsps; do
                zlm_start
                if [ $over = rtsps ]; then
                    measure zlmediakit "$zurls" "$n" "$zlm" rtsps
                else
                    measure zlmediakit "$zurl" "$n" "$zlm" rtsp
                fi
                zlm_stop
            done
        done
        echo "(the viewer holding the stream, streaming at the end of each run: $holds)"
    fi
fi

# ---- 4. cctvhub ----------------------------------------------------------------------------------

# The hub with tls.cert and tls.key (HTTPS on --http), plaintext RTSP on rtsp.listen and RTSPS
# on rtsps.listen, log level $1; sets hub, hub_http, hub_rtsp. Every viewer of a benchmark
# connects from 127.0.0.1: the per-address caps that stop floods are lifted (README, Operations).
hub_start() {
    hdir=$work/hub
    mkdir -p "$hdir"
    "$top/bench/relay/hubsetup.py" admin --bin "$hub_bin" --data-dir "$hdir"
    hp=$(free_port)
    rp=$(free_port)
    sp=$(free_port)
    hub_http=127.0.0.1:$hp
    hub_rtsp=127.0.0.1:$rp
    env CCTVHUB_SERVICES_FILE="$top/etc/services.json" CCTVHUB_LOG_LEVEL="$1" \
        CCTVHUB_METRICS_TOKEN="$metrics_token" \
        CCTVHUB_HTTP_MAX_CONNECTIONS_PER_ADDR=0 CCTVHUB_RELAY_MAX_UNAUTHORIZED=4096 \
        CCTVHUB_RELAY_MAX_UNAUTHORIZED_PER_ADDR=4096 \
        CCTVHUB_TLS_CERT="$certs/server.crt" CCTVHUB_TLS_KEY="$certs/server.key" \
        CCTVHUB_RTSPS_LISTEN="127.0.0.1:$sp" \
        "$hub_bin" serve --data-dir "$hdir" --http "$hub_http" --rtsp "$hub_rtsp" \
        >>"$hdir.log" 2>&1 &
    hub=$!
    pids="$pids $hub"
    wait_port "$hp"
    wait_port "$rp"
    wait_port "$sp"
}

# The hub's /metrics into file $1 (the audit's group commits, for the join part).
metrics_token=$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')
scrape() {
    curl -fsS --cacert "$certs/ca.crt" -H "Authorization: Bearer $metrics_token" \
        "https://$hub_http/metrics" >"$1"
}

# One camera on camsim's path $1, registered and granted (the grant pre-warms its pull); sets
# hub_urls (the grant's rtsps:// URL) and hub_url (the same path and token on rtsp.listen).
hub_camera() {
    hub_urls=$("$top/bench/relay/hubsetup.py" grant --http "$hub_http" --ca "$certs/ca.crt" \
        --data-dir "$work/hub" --camera-url "$cam/$1")
    case $hub_urls in rtsps://*) ;; *)
        echo "run.sh: the grant's rtsp_url is not rtsps://: $hub_urls" >&2
        exit 1
        ;;
    esac
    hub_url=$(echo "$hub_urls" | sed "s#^rtsps://[^/]*#rtsp://$hub_rtsp#")
}

# The TLS floor (aes128, one SSL_write a frame) and the plaintext floor for $1 readers, as long
# as the steady window, just before the hub's run beside it: sets floor_tls and floor_plain
# (% of a core).
floor_now() {
    # shellcheck disable=SC2086
    "$floor" $floor_args "$1" "$window" plain aes128 >"$work/floor-now.txt"
    floor_plain=$(sed -n 's/^mode=plain .*core_pct=\([^ ]*\).*/\1/p' "$work/floor-now.txt")
    floor_tls=$(sed -n 's/^mode=aes128 .*core_pct=\([^ ]*\).*/\1/p' "$work/floor-now.txt")
}

# The hub's relay to N viewers over RTSP and RTSPS, HUB_ROUNDS rounds (the order of the two
# alternating), each beside the floors measured just before it; a row per run, then medians.
hub_relay() {
    echo "== cctvhub's relay over RTSP and RTSPS (tls.cert, rtsps.listen): viewers joining at once on a pre-warmed stream (one camsim camera, its grant's URLs), $rtsp_seconds s each, $hub_rounds rounds; the floors (tls_floor: plain, aes128) for the same count measured for $window s just before each run"
    hub_start warn
    hub_camera cam1
    sleep 4
    table_head | sed 's/| first failure |/| floor (% of a core) | **hub \/ floor** | first failure |/; s/| --- |$/| --- | --- | --- |/'
    : >"$work/hub-rows.txt"
    r=1
    while [ $r -le "$hub_rounds" ]; do
        for n in $rtsp_viewers; do
            order="rtsp rtsps"
            [ $((r % 2)) -eq 0 ] && order="rtsps rtsp"
            for over in $order; do
                floor_now "$n"
                # measure sets steady: not in a subshell.
                if [ $over = rtsps ]; then
                    f=$floor_tls
                    measure cctvhub "$hub_urls" "$n" "$hub" rtsps >"$work/row.txt"
                else
                    f=$floor_plain
                    measure cctvhub "$hub_url" "$n" "$hub" rtsp >"$work/row.txt"
                fi
                row=$(cat "$work/row.txt")
                ratio=$(awk -v h="$steady" -v f="$f" 'BEGIN {printf "%.2f", (f > 0 ? h * 100 / f : 0)}')
                echo "$row" | sed "s#| \([^|]*\) |\$#| $f% | **$ratio** | \1 |#"
                echo "round=$r n=$n over=$over hub=$steady floor=$f ratio=$ratio p50=$(field "$work/run-cctvhub-$over-$n.csv" ttfk_p50_ms) p95=$(field "$work/run-cctvhub-$over-$n.csv" ttfk_p95_ms) play50=$(field "$work/run-cctvhub-$over-$n.csv" play_p50_ms) play95=$(field "$work/run-cctvhub-$over-$n.csv" play_p95_ms) mbps=$(field "$work/run-cctvhub-$over-$n.csv" mbps_median) streaming=$(field "$work/run-cctvhub-$over-$n.csv" streaming)" \
                    >>"$work/hub-rows.txt"
                sleep 3
            done
        done
        r=$((r + 1))
    done
    stop_pid "$hub"
    echo
    echo "medians over the rounds (hub CPU steady, the floor beside it, their ratio; TTFK and PLAY answer in ms):"
    echo "| viewers | over | hub CPU | floor | **hub / floor** | RTSPS / RTSP (hub CPU) | TTFK p50 / **p95** | PLAY answer p50 / p95 | Mbit/s median | streaming (min) |"
    echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
    python3 - "$work/hub-rows.txt" <<'PY'
import statistics, sys
runs = {}
for line in open(sys.argv[1]):
    kv = dict(f.split("=", 1) for f in line.split())
    runs.setdefault((int(kv["n"]), kv["over"]), []).append(kv)
med = lambda rs, k: statistics.median(float(r[k]) for r in rs)
for (n, over), rs in sorted(runs.items()):
    other = runs.get((n, "rtsp"))
    vs = "%.2f" % (med(rs, "hub") / med(other, "hub")) if over == "rtsps" and other else "-"
    print("| %d | %s | %.1f%% | %.1f%% | **%.2f** | %s | %.0f / **%.0f** | %.0f / %.0f | %.2f | %d |" % (
        n, over, med(rs, "hub") * 100, med(rs, "floor"), med(rs, "ratio"), vs, med(rs, "p50"),
        med(rs, "p95"), med(rs, "play50"), med(rs, "play95"), med(rs, "mbps"),
        min(int(r["streaming"]) for r in rs)))
PY
}

# Where a mass join's time goes: JOIN_VIEWERS plaintext RTSP viewers joining at once on a
# pre-warmed camera of a hub logging at info (a line per viewer playing), with perf recording
# the hub for the first PERF_JOIN_SECONDS; the viewers' steps (viewers --phases) summed up by
# join_phases.py, the hub's "viewer playing" lines placed on the same time line, and where the
# hub's samples went.
hub_join() {
    echo "== cctvhub: where the time of $join_viewers plaintext RTSP viewers joining at once goes (pre-warmed camera, hub log at info, perf record -g of the hub for ${join_perf_seconds} s from the first connect), $hub_rounds runs"
    hub_start info
    r=1
    while [ $r -le "$hub_rounds" ]; do
        hub_camera "join$r"
        sleep 4
        # One viewer alone first: each step's time without a crowd.
        "$viewers" -n 1 --seconds 3 --csv --phases "$work/alone-$r.csv" "$hub_url" >/dev/null
        echo "one viewer alone:"
        python3 "$here/join_phases.py" "$work/alone-$r.csv" | cut -d'|' -f1,2,5,6
        sleep 2
        echo
        lines_before=$(wc -l <"$work/hub.log")
        scrape "$work/join-$r.m0"
        if [ "$join_perf" = 1 ]; then
            perf record -q -g -p "$hub" -o "$work/join-$r.perf" -- sleep "$join_perf_seconds" \
                >/dev/null 2>&1 &
            pp=$!
        fi
        "$viewers" -n "$join_viewers" --seconds 8 --csv --label join --phases "$work/join-$r.csv" \
            "$hub_url" >"$work/join-$r.out"
        [ "$join_perf" = 1 ] && wait "$pp"
        scrape "$work/join-$r.m1"
        tail -n +$((lines_before + 1)) "$work/hub.log" >"$work/join-$r.log"
        python3 "$here/join_phases.py" --log "$work/join-$r.log" \
            --metrics "$work/join-$r.m0" "$work/join-$r.m1" \
            "$work/join-$r.csv"
        if [ "$join_perf" = 1 ]; then
            echo
            echo "where the hub's samples went during the join (perf report --no-children, top 25 symbols; then by thread and library):"
            echo '```'
            perf report -i "$work/join-$r.perf" --no-children --sort dso,sym -g none --stdio 2>/dev/null |
                grep -v '^#' | grep '%' | head -25
            echo
            perf report -i "$work/join-$r.perf" --no-children --sort pid,dso -g none --stdio 2>/dev/null |
                grep -v '^#' | grep '%' | head -12
            echo '```'
        fi
        echo
        r=$((r + 1))
    done
    stop_pid "$hub"
}

hub_part() {
    if ! [ -x "$hub_bin" ]; then
        echo "== cctvhub part skipped: cctvhub does not build ($work/hub-build.log)"
        return
    fi
    hub_relay
}

if has_part hub; then
    echo
    hub_part
fi

# ---- 5. HTTPS against nginx ----------------------------------------------------------------------

if has_part https; then
    echo
    echo "== cctvhub's HTTPS against nginx's (https.sh: GET /api/v1/health, wrk, keep-alive and a new connection per request)"
    if [ -x "$hub_bin" ]; then
        bash "$here/https.sh" "$hub_bin"
    else
        echo "skipped: cctvhub does not build ($work/hub-build.log)"
    fi
fi

# ---- 6. where a mass join's time goes ------------------------------------------------------------

if has_part join; then
    echo
    if [ -x "$hub_bin" ]; then
        hub_join
    else
        echo "== join part skipped: cctvhub does not build ($work/hub-build.log)"
    fi
fi
