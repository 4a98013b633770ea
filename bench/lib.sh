# bench/lib.sh: helpers for bench/run (sourced): processes by PID, ports,
# readiness, one wrk run, small number formatting.
#
# Uses from the caller: WORK (work folder), BENCH (this folder), BODY (the
# POST body), WRK_THREADS. Every process started through these helpers is
# registered with track() and stopped by cleanup_pids().

PIDS=()             # processes started or found, stopped on exit
track() { PIDS+=("$@"); }

# pid_alive PID: true while PID exists and is not a zombie.
pid_alive() {
    local st
    [ -r "/proc/$1/stat" ] || return 1
    st=$(sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1) || return 1
    [ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ]
}

# wait_gone SECONDS PID...: until none of the PIDs runs; false on timeout.
wait_gone() {
    local deadline=$((SECONDS + $1)) p left; shift
    while :; do
        left=0
        for p in "$@"; do pid_alive "$p" && left=1; done
        [ $left = 0 ] && return 0
        [ $SECONDS -ge $deadline ] && return 1
        sleep 0.1
    done
}

# stop_pids PID...: SIGTERM, SIGKILL after 10 s; reaps those that are our
# children.
stop_pids() {
    local p live=()
    for p in "$@"; do pid_alive "$p" && live+=("$p"); done
    [ ${#live[@]} -gt 0 ] || return 0
    kill -TERM "${live[@]}" 2>/dev/null
    wait_gone 10 "${live[@]}" || kill -KILL "${live[@]}" 2>/dev/null
    for p in "${live[@]}"; do wait "$p" 2>/dev/null; done
    return 0
}

# marked_pids: the processes whose environment holds BENCH_WORK=$WORK (set
# for everything bench/run starts, and passed by lighttpd to what it
# spawns): finds what a web server started behind our back, e.g. a FastCGI
# process it restarted while stopping.
marked_pids() {
    grep -lzxF "BENCH_WORK=$WORK" /proc/[0-9]*/environ 2>/dev/null |
        awk -F/ -v me=$$ '$3 != me { print $3 }'
    return 0
}

# cleanup_pids: stops every tracked process, all at once (10 s at most),
# then any process still marked as ours.
cleanup_pids() {
    [ ${#PIDS[@]} -gt 0 ] && stop_pids "${PIDS[@]}"
    stop_pids $(marked_pids)
}

# descendants PID: every descendant of PID, one per line.
descendants() {
    local c
    for c in $(awk -v p="$1" '{ s = $0; sub(/^.*\) /, "", s); split(s, f, " ");
                               if (f[2] == p) print $1 }' /proc/[0-9]*/stat 2>/dev/null); do
        echo "$c"
        descendants "$c"
    done
}

# spawned PID EXE SECONDS: the descendants of PID running EXE, waiting up to
# SECONDS for one to appear (a spawned child runs its parent's program
# between fork and exec; a rebuilt EXE shows as "EXE (deleted)").
spawned() {
    local deadline=$((SECONDS + $3)) want p exe found
    want=$(readlink -f "$2")
    while :; do
        found=""
        for p in $(descendants "$1"); do
            exe=$(readlink "/proc/$p/exe" 2>/dev/null)
            [ "${exe% (deleted)}" = "$want" ] && found="$found $p"
        done
        if [ -n "$found" ] || [ $SECONDS -ge $deadline ]; then
            echo $found
            return 0
        fi
        sleep 0.1
    done
}

# hwm_kb PID: peak resident set (VmHWM) in kB, or nothing.
hwm_kb() { awk '/^VmHWM:/ { print $2 }' "/proc/$1/status" 2>/dev/null; }

# peak_rss PID...: "KB N": the largest VmHWM among the PIDs still running,
# and how many run.
peak_rss() {
    local p k max=0 n=0
    for p in "$@"; do
        k=$(hwm_kb "$p"); [ -n "$k" ] || continue
        n=$((n + 1)); [ "$k" -gt "$max" ] && max=$k
    done
    echo "$max $n"
}

# port_in_use PORT: any TCP socket on that local port (IPv4 or IPv6).
port_in_use() {
    local hex
    hex=$(printf '%04X' "$1")
    awk -v h="$hex" 'NR > 1 { split($2, a, ":"); if (a[2] == h) { f = 1; exit } }
                     END { exit !f }' /proc/net/tcp /proc/net/tcp6 2>/dev/null
}

# free_port: a TCP port free on 127.0.0.1 right now.
free_port() {
    local i p
    for i in $(seq 1 200); do
        # Below the kernel's ephemeral range (32768-60999 here), so that
        # no client connection can hold the port between check and bind.
        p=$((20000 + (RANDOM * 32768 + RANDOM) % 12000))
        port_in_use "$p" || { echo "$p"; return 0; }
    done
    return 1
}

# wait_ready URL PID SECONDS: until URL answers (any HTTP status); false
# when PID died first or on timeout.
wait_ready() {
    local deadline=$((SECONDS + $3)) code
    while [ $SECONDS -lt $deadline ]; do
        pid_alive "$2" || return 1
        code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$1" 2>/dev/null)
        [ -n "$code" ] && [ "$code" != 000 ] && return 0
        sleep 0.2
    done
    return 1
}

# check_answer OUT URL METHOD WANT: one request with curl, the body in OUT;
# true when it is a 200 whose body contains WANT.
check_answer() {
    local code
    if [ "$3" = POST ]; then
        code=$(curl -s --max-time 10 -o "$1" -w '%{http_code}' \
            -H 'Content-Type: application/json' --data-binary "$BODY" "$2")
    else
        code=$(curl -s --max-time 10 -o "$1" -w '%{http_code}' "$2")
    fi
    [ "$code" = 200 ] && grep -q -- "$4" "$1"
}

# run_wrk URL METHOD SECONDS CONNS OUT: one bounded wrk run, its output in
# OUT (read it with wrk_line). Runs in this shell, so that Ctrl-C or SIGTERM
# of wrk stops bench/run too.
run_wrk() {
    local pid st
    BENCH_METHOD=$2 BENCH_BODY=$BODY \
        timeout -k 5 $(($3 + 30)) wrk -t "$WRK_THREADS" -c "$4" -d "${3}s" \
        --timeout 10s --latency -s "$BENCH/post.lua" "$1" >"$5" 2>&1 </dev/null &
    pid=$!
    track "$pid"
    wait "$pid"
    st=$?
    case $st in 130|143) exit "$st" ;; esac
    return 0
}

# wrk_line OUT: the BENCH line post.lua printed in OUT (nothing if wrk failed).
wrk_line() { sed -n 's/^BENCH //p' "$1" 2>/dev/null | tail -1; }

kv() { sed -n "s/.*[ ]$2=\([^ ]*\).*/\1/p" <<<" $1"; }   # kv LINE KEY
ms() { awk -v u="$1" 'BEGIN { printf "%.2f", u / 1000 }'; }  # microseconds -> ms
mb() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }  # kB -> MB
