# Sourced by run.sh and compare.sh (POSIX sh): what both do with the RTSP viewers.

# Waits up to 30 s until 127.0.0.1:$1 accepts connections.
wait_port() {
    python3 -c '
import socket, sys, time
end = time.time() + 30
while time.time() < end:
    try:
        socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=1).close()
        sys.exit(0)
    except OSError:
        time.sleep(0.1)
sys.exit(1)' "$1" || { echo "$0: nothing listens on port $1 after 30 s" >&2; exit 1; }
}

# Builds the viewers client (viewers.c of source tree $1 against the libraries of its build
# $2) into $3, and the names of its --csv fields into $csv_header, for field.
build_viewers() {
    cc -O2 -Wall -Wextra -Werror -I"$1/src" "$1/bench/relay/viewers.c" "$2/libch_proto.a" \
        "$2/libch_core.a" -luv -linih -lm -lssl -lcrypto -o "$3"
    "$3" --csv-header >"$csv_header"
}

# Field $2 (by name, as in `viewers --csv-header`) of the CSV line in file $1.
field() {
    awk -F, -v name="$2" 'NR == 1 {for (i = 1; i <= NF; i++) col[$i] = i; next}
        {print $col[name]}' "$csv_header" "$1"
}

# CPU ticks (utime + stime) of process $1.
cpu_ticks() { awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"; }

# Runs the viewers client $viewers: $3 viewers of URL $4 for $5 s, its CSV line into file $1
# (label $2), while sampling the CPU time of process $6. Sets steady (that process's CPU, in
# seconds per second, over the second half of the run, when every viewer streams) and whole
# (its CPU seconds over the whole run, the joins included).
viewers_cpu() {
    "$viewers" -n "$3" --seconds "$5" --csv --label "$2" "$4" >"$1" &
    _vp=$!
    _w=$(awk -v s="$5" 'BEGIN {print s / 2}')
    _c0=$(cpu_ticks "$6")
    sleep "$_w"
    _c1=$(cpu_ticks "$6")
    _t1=$(date +%s.%N)
    sleep "$(awk -v w="$_w" 'BEGIN {print w - 0.5}')"
    _c2=$(cpu_ticks "$6")
    _t2=$(date +%s.%N)
    wait "$_vp"
    _c3=$(cpu_ticks "$6")
    _hz=$(getconf CLK_TCK)
    steady=$(awk -v a="$_c1" -v b="$_c2" -v t1="$_t1" -v t2="$_t2" -v hz="$_hz" \
        'BEGIN {printf "%.4f", (b - a) / hz / (t2 - t1)}')
    whole=$(awk -v a="$_c0" -v b="$_c3" -v hz="$_hz" 'BEGIN {printf "%.2f", (b - a) / hz}')
}
