#!/usr/bin/env bash
# HTTPS benchmark: cctvhub's HTTPS against nginx's (one worker, the same certificate, the same
# TLS rules) on GET /api/v1/health, with wrk, in one run: keep-alive requests per second, and
# new connections (a full handshake per request: "Connection: close") as handshakes per
# second. Both servers' CPU (utime+stime from /proc) per request is printed too.
#
#   bench/tls/https.sh [path/to/cctvhub]          (default: build/release/cctvhub)
#
# Environment: CONNS (100), DURATION (8s), WARMUP (2s), THREADS (2), ROUNDS (3: the sides
# alternate which goes first; medians reported). Everything runs on 127.0.0.1 on free ports
# and is removed on exit.
set -euo pipefail
export CCTVHUB_HTTP_MAX_CONNECTIONS_PER_ADDR=0 CCTVHUB_RELAY_MAX_UNAUTHORIZED=4096 \
    CCTVHUB_RELAY_MAX_UNAUTHORIZED_PER_ADDR=4096

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
bin="${1:-$root/build/release/cctvhub}"
conns="${CONNS:-100}"
duration="${DURATION:-8s}"
warmup="${WARMUP:-2s}"
threads="${THREADS:-2}"
rounds="${ROUNDS:-3}"
path="/api/v1/health"

die() {
    echo "https.sh: $*" >&2
    exit 1
}
[ -x "$bin" ] || die "no cctvhub binary at $bin (build it, or pass its path)"
for tool in wrk nginx curl python3; do
    command -v "$tool" >/dev/null || die "$tool is not installed"
done
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

tmp="$(mktemp -d /tmp/cctvhub-bench-tls.XXXXXX)"
hub_pid=""
nginx_pid=""
cleanup() {
    for pid in $hub_pid $nginx_pid; do kill "$pid" 2>/dev/null || true; done
    for pid in $hub_pid $nginx_pid; do wait "$pid" 2>/dev/null || true; done
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
wait_up() {
    local url=$1 name=$2 pid=$3
    for _ in $(seq 100); do
        curl -fsS --cacert "$tmp/tls/ca.crt" -o /dev/null "$url" 2>/dev/null && return 0
        kill -0 "$pid" 2>/dev/null || die "$name exited; its log: $(cat "$tmp/$name.log")"
        sleep 0.1
    done
    die "$name did not answer $url within 10 s"
}
# utime+stime of a process, in clock ticks.
cpu_ticks() {
    awk '{print $14 + $15}' "/proc/$1/stat"
}
# The nginx worker (the child of the master): its CPU is nginx's work.
nginx_worker() {
    pgrep -P "$nginx_pid" | head -n 1
}

# One certificate for both, made by the hub's own PKI.
CCTVHUB_LOG_LEVEL=warn "$bin" tls init --dir "$tmp/tls" --data-dir "$tmp/data" >/dev/null

hub_port="$(free_port)"
CCTVHUB_TLS_CERT="$tmp/tls/server.crt" CCTVHUB_TLS_KEY="$tmp/tls/server.key" \
    CCTVHUB_RTSPS_LISTEN=none \
    "$bin" serve --http "127.0.0.1:$hub_port" --rtsp 127.0.0.1:0 --data-dir "$tmp/data" \
    >"$tmp/cctvhub.log" 2>&1 &
hub_pid=$!
hub_url="https://127.0.0.1:$hub_port$path"
wait_up "$hub_url" cctvhub "$hub_pid"
curl -fsS --cacert "$tmp/tls/ca.crt" -o "$tmp/body" "$hub_url"

nginx_port="$(free_port)"
mkdir -p "$tmp/nginx"
python3 - "$here/nginx_tls.conf.in" "$tmp/nginx/nginx.conf" "$tmp/nginx" "$nginx_port" \
    "$tmp/body" "$tmp/tls/server.crt" "$tmp/tls/server.key" <<'PY'
import sys
src, dst, prefix, port, body_file, cert, key = sys.argv[1:]
body = open(body_file, "rb").read().decode("utf-8")
if "$" in body or "\n" in body:
    sys.exit("the body holds '$' or a newline")
body = body.replace("\\", "\\\\").replace("'", "\\'")
conf = open(src).read()
for k, v in {"@PREFIX@": prefix, "@PORT@": port, "@BODY@": body,
             "@CONTENT_TYPE@": "application/json", "@CERT@": cert, "@KEY@": key}.items():
    conf = conf.replace(k, v)
open(dst, "w").write(conf)
PY
nginx -p "$tmp/nginx" -e "$tmp/nginx/error.log" -c "$tmp/nginx/nginx.conf" >"$tmp/nginx.log" 2>&1 &
nginx_pid=$!
nginx_url="https://127.0.0.1:$nginx_port$path"
wait_up "$nginx_url" nginx "$nginx_pid"
curl -fsS --cacert "$tmp/tls/ca.crt" "$nginx_url" | cmp -s - "$tmp/body" ||
    die "nginx does not answer the same body"
tls_of() {
    echo | openssl s_client -connect "127.0.0.1:$1" -CAfile "$tmp/tls/ca.crt" 2>/dev/null |
        sed -n 's/^New, \(TLSv[0-9.]*\), Cipher is \(.*\)$/\1 \2/p' | head -n 1
}
echo "cctvhub: $bin (port $hub_port): $(tls_of "$hub_port")"
echo "nginx:   $(nginx -v 2>&1 | sed 's/^nginx version: //'), 1 worker (port $nginx_port): $(tls_of "$nginx_port")"
echo "wrk:     -t$threads -c$conns -d$duration, $rounds rounds (alternating); cores: $(nproc)"
echo

# Runs wrk on url once; prints "req_per_s cpu_ms_per_1000_requests".
measure() {
    local url=$1 pid=$2 mode=$3 out t0 t1 rps hdr=()
    [ "$mode" = new ] && hdr=(-H "Connection: close")
    if [ "$warmup" != "0" ]; then
        wrk -t"$threads" -c"$conns" -d"$warmup" "${hdr[@]}" "$url" >/dev/null 2>&1 || true
    fi
    t0=$(cpu_ticks "$pid")
    out=$(wrk -t"$threads" -c"$conns" -d"$duration" "${hdr[@]}" "$url" 2>&1)
    t1=$(cpu_ticks "$pid")
    rps=$(echo "$out" | awk '/^Requests\/sec:/ {print $2}')
    local total
    total=$(echo "$out" | awk '/requests in/ {print $1}')
    python3 -c "import sys; r,t,c=float(sys.argv[1]),float(sys.argv[2]),float(sys.argv[3]); print('%.0f %.3f' % (r, c*10.0/max(t,1)*1000))" \
        "$rps" "$total" "$((t1 - t0))"
}

median() {
    python3 -c 'import statistics, sys; print("%.3f" % statistics.median(float(x) for x in sys.argv[1:]))' "$@"
}

for mode in keepalive new; do
    h_rps=() n_rps=() h_cpu=() n_cpu=()
    for r in $(seq "$rounds"); do
        order="hub nginx"
        [ $((r % 2)) -eq 0 ] && order="nginx hub"
        for side in $order; do
            if [ "$side" = hub ]; then
                read -r rps cpu < <(measure "$hub_url" "$hub_pid" "$mode")
                h_rps+=("$rps"); h_cpu+=("$cpu")
            else
                read -r rps cpu < <(measure "$nginx_url" "$(nginx_worker)" "$mode")
                n_rps+=("$rps"); n_cpu+=("$cpu")
            fi
        done
    done
    hr=$(median "${h_rps[@]}"); nr=$(median "${n_rps[@]}")
    hc=$(median "${h_cpu[@]}"); nc=$(median "${n_cpu[@]}")
    what="requests/s (keep-alive)"
    [ "$mode" = new ] && what="handshakes/s (a new connection per request)"
    printf '%-46s cctvhub %9.0f  nginx %9.0f  ratio %.2f\n' "$what" "$hr" "$nr" \
        "$(python3 -c "print($hr/$nr)")"
    printf '%-46s cctvhub %9.3f  nginx %9.3f  ratio %.2f\n' "  server CPU ms per 1,000 requests" \
        "$hc" "$nc" "$(python3 -c "print($hc/max($nc,1e-9))")"
done
