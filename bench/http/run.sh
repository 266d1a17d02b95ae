#!/usr/bin/env bash
# HTTP benchmark: cctvhub against nginx (one worker) on GET /api/v1/health, with wrk.
#
#   bench/http/run.sh [path/to/cctvhub]          (default: build/release/cctvhub)
#
# Environment: CONNS ("10 100 1000"), DURATION (8s), WARMUP (2s, 0 to skip), THREADS (2),
# MIN_RATIO (0.8, the target), STRICT (1: exit 3 when a ratio is under MIN_RATIO).
# Both servers run on 127.0.0.1 on free ports; everything they write goes to a temporary
# directory that is removed on exit, with both servers killed.
set -euo pipefail
# Every client of a benchmark connects from 127.0.0.1: lift the per-address caps that stop
# floods (http.max_connections_per_addr, relay.max_unauthorized*; README, Operations).
export CCTVHUB_HTTP_MAX_CONNECTIONS_PER_ADDR=0 CCTVHUB_RELAY_MAX_UNAUTHORIZED=4096 \
    CCTVHUB_RELAY_MAX_UNAUTHORIZED_PER_ADDR=4096

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
bin="${1:-$root/build/release/cctvhub}"
conns="${CONNS:-10 100 1000}"
duration="${DURATION:-8s}"
warmup="${WARMUP:-2s}"
threads="${THREADS:-2}"
min_ratio="${MIN_RATIO:-0.8}"
path="/api/v1/health"

die() {
    echo "run.sh: $*" >&2
    exit 1
}

[ -x "$bin" ] || die "no cctvhub binary at $bin (build it, or pass its path)"
for tool in wrk nginx curl python3; do
    command -v "$tool" >/dev/null || die "$tool is not installed"
done

# wrk needs one descriptor per connection, and so does each server.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
max_conn=0
for n in $conns; do [ "$n" -gt "$max_conn" ] && max_conn=$n; done
[ "$(ulimit -n)" -gt $((max_conn + 64)) ] || die "ulimit -n is $(ulimit -n): too low for $max_conn connections"

tmp="$(mktemp -d /tmp/cctvhub-bench-http.XXXXXX)"
hub_pid=""
nginx_pid=""
cleanup() {
    for pid in $hub_pid $nginx_pid; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in $hub_pid $nginx_pid; do
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# Waits until url answers 200, for up to 10 s.
wait_up() {
    local url=$1 name=$2 pid=$3
    for _ in $(seq 100); do
        if curl -fsS -o /dev/null "$url" 2>/dev/null; then
            return 0
        fi
        kill -0 "$pid" 2>/dev/null || die "$name exited; its log: $(cat "$tmp/$name.log")"
        sleep 0.1
    done
    die "$name did not answer $url within 10 s"
}

# ---- cctvhub
hub_port="$(free_port)"
mkdir -p "$tmp/data"
"$bin" serve --http "127.0.0.1:$hub_port" --data-dir "$tmp/data" >"$tmp/cctvhub.log" 2>&1 &
hub_pid=$!
hub_url="http://127.0.0.1:$hub_port$path"
wait_up "$hub_url" cctvhub "$hub_pid"

curl -fsS -o "$tmp/body" "$hub_url"
content_type="$(curl -fsS -o /dev/null -w '%{content_type}' "$hub_url")"
[ -n "$content_type" ] || content_type="application/json"

# ---- nginx, answering the same bytes with the same type
nginx_port="$(free_port)"
mkdir -p "$tmp/nginx"
python3 - "$here/nginx.conf.in" "$tmp/nginx/nginx.conf" "$tmp/nginx" "$nginx_port" \
    "$tmp/body" "$content_type" <<'PY'
import sys
src, dst, prefix, port, body_file, ctype = sys.argv[1:]
body = open(body_file, "rb").read().decode("utf-8")
if "$" in body or "\n" in body:
    sys.exit("the body holds '$' or a newline, which nginx's return cannot carry as is")
body = body.replace("\\", "\\\\").replace("'", "\\'")
conf = open(src).read()
for k, v in {"@PREFIX@": prefix, "@PORT@": port, "@BODY@": body, "@CONTENT_TYPE@": ctype}.items():
    conf = conf.replace(k, v)
open(dst, "w").write(conf)
PY
nginx -p "$tmp/nginx" -e "$tmp/nginx/error.log" -c "$tmp/nginx/nginx.conf" >"$tmp/nginx.log" 2>&1 &
nginx_pid=$!
nginx_url="http://127.0.0.1:$nginx_port$path"
wait_up "$nginx_url" nginx "$nginx_pid"
curl -fsS "$nginx_url" | cmp -s - "$tmp/body" || die "nginx does not answer the same body"

echo "cctvhub: $bin (pid $hub_pid, port $hub_port)"
echo "nginx:   $(nginx -v 2>&1 | sed 's/^nginx version: //') (pid $nginx_pid, port $nginx_port), 1 worker"
echo "body:    $(wc -c <"$tmp/body") bytes of $content_type"
echo "wrk:     -t$threads -d$duration per run, connections: $conns; cores: $(nproc)"
echo

# Runs wrk once; prints "req_per_s socket_errors non_2xx".
measure() {
    local url=$1 n=$2 out
    local t=$threads
    [ "$n" -lt "$t" ] && t=$n
    if [ "$warmup" != "0" ] && [ "$warmup" != "0s" ]; then
        wrk -t"$t" -c"$n" -d"$warmup" "$url" >/dev/null 2>&1 || true
    fi
    out="$(wrk -t"$t" -c"$n" -d"$duration" "$url" 2>&1)" || die "wrk failed: $out"
    echo "$out" >>"$tmp/wrk.log"
    echo "$out" | awk '
        /^Requests\/sec:/ { rps = $2 }
        /Socket errors:/ {
            gsub(",", "");
            sock = $4 + $6 + $8 + $10
        }
        /Non-2xx or 3xx responses:/ { non2xx = $5 }
        END { printf "%.0f %d %d\n", rps, sock, non2xx }'
}

printf '%-12s %14s %14s %8s %16s %16s\n' connections "cctvhub req/s" "nginx req/s" ratio \
    "cctvhub errors" "nginx errors"
below=0
i=0
for n in $conns; do
    # Alternate who goes first, so that drift (heat, other load) does not favour one side.
    if [ $((i % 2)) -eq 0 ]; then
        read -r hub_rps hub_sock hub_bad < <(measure "$hub_url" "$n")
        read -r ngx_rps ngx_sock ngx_bad < <(measure "$nginx_url" "$n")
    else
        read -r ngx_rps ngx_sock ngx_bad < <(measure "$nginx_url" "$n")
        read -r hub_rps hub_sock hub_bad < <(measure "$hub_url" "$n")
    fi
    i=$((i + 1))
    ratio="$(awk -v a="$hub_rps" -v b="$ngx_rps" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }')"
    if awk -v r="$ratio" -v m="$min_ratio" 'BEGIN { exit !(r == "n/a" || r + 0 < m + 0) }'; then
        below=1
    fi
    printf '%-12s %14s %14s %8s %16s %16s\n' "$n" "$hub_rps" "$ngx_rps" "$ratio" \
        "$hub_sock sock, $hub_bad non-2xx" "$ngx_sock sock, $ngx_bad non-2xx"
done
echo
if [ "$below" -eq 0 ]; then
    echo "target met: cctvhub >= ${min_ratio}x nginx at every connection count"
else
    echo "target missed: cctvhub < ${min_ratio}x nginx at some connection count"
    [ "${STRICT:-0}" = "1" ] && exit 3
fi
exit 0
