# tests/integration/lib.sh: helpers shared by the integration tests (bash).
#
#   . "$(dirname "$0")/lib.sh"
#
# Environment (each has a default derived from this file's location):
#   SRCDIR      repository root (absolute)
#   BUILDDIR    build tree root (absolute), default SRCDIR
#   MLFCGI_BIN  the mlfcgi binary, default $BUILDDIR/mlfcgi
#   MLFCGI_KEEP_TMP=1  keep the temporary directory (its path is printed)
#
# Output is TAP (Test Anything Protocol), read by automake's tap-driver.sh
# or by `prove`. The script's exit status is 1 when any test failed.

set -u
set -o pipefail

_lib_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
: "${SRCDIR:=$(cd "$_lib_dir/../.." && pwd)}"
: "${BUILDDIR:=$SRCDIR}"
: "${MLFCGI_BIN:=$BUILDDIR/mlfcgi}"
export SRCDIR BUILDDIR MLFCGI_BIN
# mlfcgi reads MLFCGI_* settings from its environment: start from none.
for _v in $(compgen -e MLFCGI_); do
    case $_v in MLFCGI_BIN|MLFCGI_KEEP_TMP) ;; *) unset "$_v" ;; esac
done
# No proxy for loopback requests, whatever the environment says.
export NO_PROXY='*' no_proxy='*'
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY ALL_PROXY all_proxy

# ---------------------------------------------------------------------------
# TAP

_T_N=0          # tests run
_T_FAIL=0       # tests failed
_T_PLAN=""      # planned count, if plan was called

# plan N: announce N tests up front (or call done_testing at the end instead).
plan() { _T_PLAN=$1; echo "1..$1"; }

# diag MSG...: a comment line (shown by the driver, ignored by the parser).
diag() {
    local a l
    for a in "$@"; do
        while IFS= read -r l; do echo "# $l"; done <<<"$a"
    done
}

pass() { _T_N=$((_T_N + 1)); echo "ok $_T_N - $1"; }

# fail DESC [DIAG...]: a failed test, with optional diagnostics.
fail() {
    _T_N=$((_T_N + 1)); _T_FAIL=$((_T_FAIL + 1))
    echo "not ok $_T_N - $1"
    shift
    [ $# -gt 0 ] && diag "$@"
    return 0
}

# skip DESC REASON
skip() { _T_N=$((_T_N + 1)); echo "ok $_T_N - $1 # SKIP $2"; }

# ok DESC CMD [ARGS...]: passes when CMD exits 0 (CMD runs in this shell).
ok() {
    local desc=$1; shift
    if "$@"; then pass "$desc"; else fail "$desc" "command failed: $*"; fi
}

# is GOT WANT DESC: string equality.
is() {
    if [ "$1" == "$2" ]; then pass "$3"
    else fail "$3" "     got: '$1'" "expected: '$2'" "$(_last_response_diag)"; fi
}

# isnt GOT UNWANTED DESC
isnt() {
    if [ "$1" != "$2" ]; then pass "$3"
    else fail "$3" "got '$1', expected anything else"; fi
}

# like GOT ERE DESC: bash regular expression match.
like() {
    if [[ $1 =~ $2 ]]; then pass "$3"
    else fail "$3" "     got: '$1'" "expected to match: $2" "$(_last_response_diag)"; fi
}

# num_ok A OP B DESC: numeric comparison (floats allowed); OP is one of
# < <= > >= == != or ~ (|A-B| <= 1e-6).
num_ok() {
    if awk -v a="$1" -v b="$3" -v op="$2" 'BEGIN {
        if (a !~ /^-?[0-9.]+([eE][-+]?[0-9]+)?$/) exit 1
        if (op == "<")  exit !(a + 0 <  b + 0)
        if (op == "<=") exit !(a + 0 <= b + 0)
        if (op == ">")  exit !(a + 0 >  b + 0)
        if (op == ">=") exit !(a + 0 >= b + 0)
        if (op == "==") exit !(a + 0 == b + 0)
        if (op == "!=") exit !(a + 0 != b + 0)
        if (op == "~")  { d = a - b; if (d < 0) d = -d; exit !(d <= 1e-6) }
        exit 2 }'; then
        pass "$4"
    else
        fail "$4" "expected: '$1' $2 '$3'" "$(_last_response_diag)"
    fi
}

# bail_out MSG: abort the whole script (the driver reports an error).
bail_out() { echo "Bail out! $*"; exit 1; }

# done_testing: print the plan if none was given; exit status 1 on any failure.
done_testing() {
    [ -z "$_T_PLAN" ] && echo "1..$_T_N"
    if [ -n "$_T_PLAN" ] && [ "$_T_PLAN" -ne "$_T_N" ]; then
        diag "planned $_T_PLAN tests but ran $_T_N"
        exit 1
    fi
    if [ "$_T_FAIL" -gt 0 ]; then
        diag "$_T_FAIL of $_T_N tests failed"
        exit 1
    fi
    exit 0
}

# require_cmd CMD PACKAGE: bail out when a tool is missing.
require_cmd() {
    command -v "$1" >/dev/null 2>&1 ||
        bail_out "$1 not found (Debian package: $2)"
}

# ---------------------------------------------------------------------------
# Temporary directory and cleanup

TEST_TMP=""
_CLEANUP_PIDS=()     # processes this script started, stopped on exit
_CLEANUP_LOGS=()     # logs shown when a test failed

# make_tmp: create $TEST_TMP (mode 755, so www-data can traverse it).
make_tmp() {
    TEST_TMP=$(mktemp -d "${TMPDIR:-/tmp}/mlfcgi-it.XXXXXX") ||
        bail_out "mktemp failed"
    chmod 755 "$TEST_TMP"
}

# track_pid PID: stop PID (SIGTERM, then SIGKILL) if still running at exit.
track_pid() { _CLEANUP_PIDS+=("$1"); }

# track_log FILE: print the tail of FILE as diagnostics if a test failed.
track_log() { _CLEANUP_LOGS+=("$1"); }

_cleanup() {
    local rc=$? pid f
    for pid in "${_CLEANUP_PIDS[@]}"; do
        if pid_alive "$pid"; then
            kill -TERM "$pid" 2>/dev/null
            wait_gone 5 "$pid" || kill -KILL "$pid" 2>/dev/null
        fi
    done
    if [ "$_T_FAIL" -gt 0 ] || [ "$rc" -ne 0 ]; then
        for f in "${_CLEANUP_LOGS[@]}"; do
            [ -s "$f" ] || continue
            diag "---- last lines of $f"
            diag "$(tail -n 25 "$f")"
        done
    fi
    if [ -n "$TEST_TMP" ] && [ -d "$TEST_TMP" ]; then
        if [ "${MLFCGI_KEEP_TMP:-0}" = 1 ]; then
            diag "kept $TEST_TMP"
        else
            rm -rf "$TEST_TMP"
        fi
    fi
    return "$rc"
}
trap _cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------------------
# Processes (all by PID)

# pid_alive PID: true while PID exists and is not a zombie.
pid_alive() {
    local st
    [ -r "/proc/$1/stat" ] || return 1
    st=$(sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1) || return 1
    [ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ]
}

# wait_gone SECONDS PID...: wait until none of the PIDs runs; false on timeout.
wait_gone() {
    local t=$1 p left deadline=$((SECONDS + $1)); shift
    while :; do
        left=0
        for p in "$@"; do pid_alive "$p" && left=1; done
        [ $left = 0 ] && return 0
        [ $SECONDS -ge $deadline ] && return 1
        sleep 0.1
    done
}

# child_pids PID: direct children of PID, one per line.
child_pids() {
    # /proc/PID/stat: "PID (comm) STATE PPID ..."; comm may hold spaces.
    cat /proc/[0-9]*/stat 2>/dev/null |
        awk -v p="$1" '{ pid = $1; s = $0; sub(/^.*\) /, "", s); split(s, f, " ");
                         if (f[2] == p) print pid }'
}

# descendant_pids PID: all descendants of PID (children, grandchildren, ...).
descendant_pids() {
    local c
    for c in $(child_pids "$1"); do
        echo "$c"
        descendant_pids "$c"
    done
}

# pids_running_exe EXE PID...: those PIDs whose executable is EXE, or that
# EXE started as a wrapper exporting MLFCGI_WRAPPER=EXE (tools/test-valgrind).
# Tests by bash alone (-ef: the same file), as it may look at every process
# on the machine: three processes per PID cost seconds on a slow host.
pids_running_exe() {
    local exe=$1 p real v; shift
    real=$(readlink -f "$exe")
    for p in "$@"; do
        if [ "/proc/$p/exe" -ef "$real" ]; then
            echo "$p"
            continue
        fi
        while IFS= read -r -d '' v; do
            if [ "$v" = "MLFCGI_WRAPPER=$real" ]; then echo "$p"; break; fi
        done 2>/dev/null <"/proc/$p/environ"
    done
    return 0
}

# stop_pid PID [SECONDS]: SIGTERM a child of this shell, wait for it (bounded),
# SIGKILL on timeout. Sets STOP_STATUS to its exit status (or "timeout").
STOP_STATUS=""
stop_pid() {
    local pid=$1 t=${2:-15}
    STOP_STATUS=""
    kill -TERM "$pid" 2>/dev/null
    if wait_gone "$t" "$pid"; then
        wait "$pid" 2>/dev/null
        STOP_STATUS=$?
        return 0
    fi
    kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    STOP_STATUS=timeout
    return 1
}

# ---------------------------------------------------------------------------
# Ports

# port_in_use PORT: any TCP socket (IPv4 or IPv6, any state) on that local port.
port_in_use() {
    local hex
    hex=$(printf '%04X' "$1")
    awk -v h=":$hex" 'NR > 1 { split($2, a, ":"); if (":" a[2] == h) { f = 1; exit } }
                     END { exit !f }' /proc/net/tcp /proc/net/tcp6 2>/dev/null
}

# free_port: print a TCP port that is free on 127.0.0.1 right now.
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

# wait_listening PORT PID SECONDS: until something accepts on 127.0.0.1:PORT;
# false when PID died first or on timeout.
wait_listening() {
    local port=$1 pid=$2 deadline=$((SECONDS + $3))
    while [ $SECONDS -lt $deadline ]; do
        pid_alive "$pid" || return 1
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
        sleep 0.1
    done
    return 1
}

# wait_http URL SECONDS: until URL answers with any HTTP status < 500.
wait_http() {
    local deadline=$((SECONDS + $2)) code
    while [ $SECONDS -lt $deadline ]; do
        code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$1" 2>/dev/null)
        [ -n "$code" ] && [ "$code" != 000 ] && [ "$code" -lt 500 ] && return 0
        sleep 0.2
    done
    return 1
}

# ---------------------------------------------------------------------------
# Web servers. Each start_* sets SERVER_PID (the server's main process, a
# child of this shell) and registers it for cleanup.

SERVER_PID=""

# start_lighttpd CONF LOG PORT: lighttpd in the foreground (-D) with the
# environment of the caller; waits until it listens (10 s).
start_lighttpd() {
    local conf=$1 log=$2 port=$3
    lighttpd -D -f "$conf" >>"$log" 2>&1 </dev/null &
    SERVER_PID=$!
    track_pid "$SERVER_PID"
    track_log "$log"
    wait_listening "$port" "$SERVER_PID" 10
}

# start_apache CONF LOG PORT [ARGS...]: apache2 -DFOREGROUND; waits (15 s).
start_apache() {
    local conf=$1 log=$2 port=$3; shift 3
    apache2 -f "$conf" -DFOREGROUND "$@" >>"$log" 2>&1 </dev/null &
    SERVER_PID=$!
    track_pid "$SERVER_PID"
    track_log "$log"
    wait_listening "$port" "$SERVER_PID" 15
}

# ---------------------------------------------------------------------------
# HTTP

BASE_URL=""          # prefix for paths given to http
HTTP_STATUS=""       # "200", or "000" when the request failed
HTTP_HEADERS=""      # the final response's header block (CR removed)
HTTP_BODY=""         # the response body
HTTP_CURL_RC=0
_HTTP_DESC=""

# http METHOD PATH|URL [CURL ARGS...]: one request; fills HTTP_STATUS,
# HTTP_HEADERS, HTTP_BODY. Bodies are sent with --data-binary etc. in ARGS.
http() {
    local method=$1 url=$2; shift 2
    [[ $url == http://* ]] || url="$BASE_URL$url"
    local hf bf mflag=(-X "$method")
    hf=$(mktemp "${TEST_TMP:-/tmp}/h.XXXXXX"); bf=$(mktemp "${TEST_TMP:-/tmp}/b.XXXXXX")
    [ "$method" = HEAD ] && mflag=(--head)
    HTTP_STATUS=$(curl -sS --max-time 20 -H 'Expect:' "${mflag[@]}" \
                       -D "$hf" -o "$bf" -w '%{http_code}' "$@" "$url" 2>"$bf.err")
    HTTP_CURL_RC=$?
    # Keep only the last header block (after any 100 Continue).
    HTTP_HEADERS=$(tr -d '\r' <"$hf" | awk '/^HTTP\//{b=""} {b = b $0 "\n"} END {printf "%s", b}')
    if [ "$method" = HEAD ]; then HTTP_BODY=""; else HTTP_BODY=$(cat "$bf"; echo x); HTTP_BODY=${HTTP_BODY%x}; fi
    [ $HTTP_CURL_RC -ne 0 ] && HTTP_BODY="curl error $HTTP_CURL_RC: $(cat "$bf.err")"
    _HTTP_DESC="$method $url"
    rm -f "$hf" "$bf" "$bf.err"
}

# hdr NAME: the value of response header NAME (case-insensitive; last one).
hdr() {
    awk -v n="$1" 'BEGIN { n = tolower(n) }
        { i = index($0, ":"); if (i > 0 && tolower(substr($0, 1, i - 1)) == n) {
              v = substr($0, i + 1); sub(/^[ \t]+/, "", v); sub(/[ \t]+$/, "", v); r = v } }
        END { printf "%s", r }' <<<"$HTTP_HEADERS"
}

# jb FILTER [JQ ARGS...]: run jq -r FILTER on HTTP_BODY ("" if not JSON).
jb() {
    local f=$1; shift
    jq -r "$@" "$f" <<<"$HTTP_BODY" 2>/dev/null
}

# jb_ok FILTER [JQ ARGS...]: true when FILTER yields true on HTTP_BODY.
jb_ok() {
    local f=$1; shift
    jq -e "$@" "$f" >/dev/null 2>&1 <<<"$HTTP_BODY"
}

# check_json DESC FILTER [JQ ARGS...]: a test that FILTER is true on the body.
check_json() {
    local d=$1 f=$2; shift 2
    if jb_ok "$f" "$@"; then pass "$d"; else fail "$d" "jq filter false: $f" "$(_last_response_diag)"; fi
}

# status_is WANT DESC: a test on HTTP_STATUS.
status_is() { is "$HTTP_STATUS" "$1" "$2"; }

_last_response_diag() {
    [ -n "$_HTTP_DESC" ] || return 0
    printf 'last request: %s -> %s\n%s\nbody: %.600s' "$_HTTP_DESC" "$HTTP_STATUS" \
        "$(grep -i -E '^(content-type|allow|x-request-id):' <<<"$HTTP_HEADERS")" "$HTTP_BODY"
}

# ---------------------------------------------------------------------------
# mlfcgi specifics

IRIS_SETOSA='[5.1,3.5,1.4,0.2]'      # row 1 of the iris data set
IRIS_VERSICOLOR='[6.4,3.2,4.5,1.5]'  # row 52
IRIS_VIRGINICA='[6.7,3.0,5.2,2.3]'   # row 146

# expected_probs MODEL ROW: the class probabilities a multinomial logistic
# regression model gives ROW, as a JSON array (computed by jq from the file).
expected_probs() {
    jq -c --argjson x "$2" '
      .estimator as $e
      | [range($e.coef | length) as $k
         | ([range($x | length) as $i | $e.coef[$k][$i] * $x[$i]] | add) + $e.intercept[$k]]
      | (max) as $m | map(. - $m | exp) | (add) as $t | map(. / $t)' "$1"
}

# sqlite_q DB SQL: query an existing DB (never creates one); prints the result.
sqlite_q() { sqlite3 -batch -noheader "file:$1?mode=rw" "$2" 2>&1; }

# iso_now [DATE-SPEC]: UTC time like the audit DB's ts (ms set to .000).
iso_now() { date -u -d "${1:-now}" +%Y-%m-%dT%H:%M:%S.000Z; }
T_START=$(iso_now '-2 seconds')

# PRED_OK counts /predict answers with status 200: the audit DB must end up
# with exactly that many rows. MOUNT is the mount point ("" or "/ml").
PRED_OK=0
MOUNT=""

predict() {     # predict [CURL ARGS...]: POST $MOUNT/predict
    http POST "$MOUNT/predict" "$@"
    [ "$HTTP_STATUS" = 200 ] && PRED_OK=$((PRED_OK + 1))
    return 0
}
predict_json() { local b=$1; shift; predict -H 'Content-Type: application/json' --data-binary "$b" "$@"; }
predict_form() { local b=$1; shift; predict -H 'Content-Type: application/x-www-form-urlencoded' --data-binary "$b" "$@"; }

named_json() {  # named_json ROW_JSON_ARRAY: {"sepal_length":..,...}
    jq -c '{sepal_length: .[0], sepal_width: .[1], petal_length: .[2], petal_width: .[3]}' <<<"$1"
}
form_of() {     # form_of ROW_JSON_ARRAY: sepal_length=..&...
    jq -r '"sepal_length=\(.[0])&sepal_width=\(.[1])&petal_length=\(.[2])&petal_width=\(.[3])"' <<<"$1"
}

# check_prediction DESC CLASS LABEL EXPECTED_PROBS: the last response is a
# correct 200 prediction.
check_prediction() {
    local d=$1 cls=$2 label=$3 exp=$4
    status_is 200 "$d: status 200"
    like "$(hdr Content-Type)" '^application/json' "$d: Content-Type JSON"
    check_json "$d: prediction $cls, label $label, model iris 1.0.0" \
        '.prediction == $c and .label == $l and .model == "iris" and .version == "1.0.0"' \
        --argjson c "$cls" --arg l "$label"
    check_json "$d: probabilities match the model (1e-6)" \
        '(.probabilities | keys_unsorted) == ["setosa","versicolor","virginica"]
         and ([.probabilities.setosa, .probabilities.versicolor, .probabilities.virginica] as $p
              | [range(3) | ($p[.] - $e[.]) | fabs] | max) <= 1e-6
         and (.confidence - ([.probabilities[]] | max) | fabs) <= 1e-9' \
        --argjson e "$exp"
    check_json "$d: request_id in body = X-Request-Id header" \
        '(.request_id | type) == "string" and (.request_id | test("^[A-Za-z0-9._-]{1,128}$"))
         and .request_id == $h' --arg h "$(hdr X-Request-Id)"
}

# check_422 DESC TYPE LOC_JSON [COUNT]: the last response is a 422 whose
# detail has an entry of TYPE at LOC (and COUNT entries in all, if given).
check_422() {
    local d=$1 type=$2 loc=$3 n=${4:-}
    status_is 422 "$d: status 422"
    if [ -n "$n" ]; then
        check_json "$d: detail has $n entr$([ "$n" = 1 ] && echo y || echo ies), one $type at $loc" \
            '(.detail | type) == "array" and (.detail | length) == $n
             and any(.detail[]; .type == $t and .loc == $loc and (.msg | type) == "string")' \
            --arg t "$type" --argjson loc "$loc" --argjson n "$n"
    else
        check_json "$d: detail has $type at $loc" \
            '(.detail | type) == "array"
             and any(.detail[]; .type == $t and .loc == $loc and (.msg | type) == "string")' \
            --arg t "$type" --argjson loc "$loc"
    fi
}

# check_plain_error DESC STATUS: {"detail": "<string>"} with STATUS.
check_plain_error() {
    status_is "$2" "$1: status $2"
    check_json "$1: {\"detail\": string}" '(.detail | type) == "string" and (.detail | length) > 0'
}

# pad_json JSON SIZE: JSON followed by spaces up to exactly SIZE bytes.
pad_json() { printf '%s%*s' "$1" $(($2 - ${#1})) ''; }

# stop_server_and_children DESC NAME EXE: SIGTERM the web server
# (SERVER_PID), wait for it and for the processes running EXE it had started.
stop_server_and_children() {
    local d=$1 name=$2 exe=$3 kids
    kids=$(pids_running_exe "$exe" $(descendant_pids "$SERVER_PID"))
    stop_pid "$SERVER_PID" 20
    is "$STOP_STATUS" 0 "$d: $name exits 0 on SIGTERM"
    if [ -n "$kids" ]; then
        ok "$d: the mlfcgi processes ($(echo $kids)) exit after $name" wait_gone 15 $kids
    else
        fail "$d: $name had started mlfcgi processes"
    fi
}

# check_audit DESC DB WANT_ROWS: the audit DB after all writers exited.
check_audit() {
    local d=$1 db=$2 want=$3 t_end
    t_end=$(iso_now '+2 seconds')
    ok "$d: audit DB exists" test -s "$db"
    is "$(sqlite_q "$db" 'PRAGMA integrity_check;')" ok "$d: PRAGMA integrity_check = ok"
    is "$(sqlite_q "$db" 'PRAGMA journal_mode;')" wal "$d: journal_mode = wal"
    is "$(sqlite_q "$db" 'SELECT count(*) FROM predictions;')" "$want" \
        "$d: one audit row per 200 from /predict ($want)"
    is "$(sqlite_q "$db" "SELECT count(*) FROM predictions WHERE ts NOT GLOB
          '[0-9][0-9][0-9][0-9]-[0-1][0-9]-[0-3][0-9]T[0-2][0-9]:[0-5][0-9]:[0-6][0-9].[0-9][0-9][0-9]Z';")" 0 \
        "$d: every ts is UTC ISO-8601 with milliseconds (YYYY-MM-DDTHH:MM:SS.mmmZ)"
    is "$(sqlite_q "$db" "SELECT count(*) FROM predictions WHERE ts < '$T_START' OR ts > '$t_end';")" 0 \
        "$d: every ts lies within this test run"
    is "$(sqlite_q "$db" "SELECT count(*) FROM predictions WHERE model IS NOT 'iris' OR version IS NOT '1.0.0';")" 0 \
        "$d: model and version columns are iris / 1.0.0"
    is "$(sqlite_q "$db" "SELECT count(*) FROM predictions WHERE NOT json_valid(input) OR NOT json_valid(output);")" 0 \
        "$d: input and output columns are valid JSON"
    is "$(sqlite_q "$db" "SELECT count(*) FROM predictions WHERE typeof(latency_us) <> 'integer' OR latency_us < 0;")" 0 \
        "$d: latency_us is a non-negative integer"
    is "$(sqlite_q "$db" "SELECT count(DISTINCT request_id) = count(*) FROM predictions WHERE request_id IS NOT NULL AND request_id <> '';")" 1 \
        "$d: request_ids are distinct"
}

# ---------------------------------------------------------------------------
# Deployments (tests/integration/deploy_*.sh)

# start_apache_setsid CONF LOG PORT [ARGS...]: start_apache, but Apache gets
# its own session. Needed for the prefork MPM, which on stop sends SIGTERM to
# its whole process group (that is, to this script when not detached).
start_apache_setsid() {
    local conf=$1 log=$2 port=$3; shift 3
    # Not a process-group leader here, so setsid execs apache2: $! is Apache.
    setsid apache2 -f "$conf" -DFOREGROUND "$@" >>"$log" 2>&1 </dev/null &
    SERVER_PID=$!
    track_pid "$SERVER_PID"
    track_log "$log"
    wait_listening "$port" "$SERVER_PID" 15
}

# start_nginx CONF LOG PORT: nginx -c CONF in the foreground; waits (10 s).
start_nginx() {
    local conf=$1 log=$2 port=$3
    nginx -c "$conf" -g 'daemon off;' >>"$log" 2>&1 </dev/null &
    SERVER_PID=$!
    track_pid "$SERVER_PID"
    track_log "$log"
    wait_listening "$port" "$SERVER_PID" 10
}

# render_conf TEMPLATE OUT VAR...: TEMPLATE with ${VAR} replaced by the
# value of each named variable (only those: nginx's own $vars stay).
render_conf() {
    local in=$1 out=$2 v list=""; shift 2
    for v in "$@"; do list="$list \$$v"; done
    envsubst "$list" <"$in" >"$out"
}

# start_listener ADDR LOG [MLFCGI ARGS...]: `mlfcgi --listen ADDR` in the
# background, as LISTENER_USER when set (else as this script's user); sets
# LISTENER_PID (tracked) and waits until it listens (30 s: a process under
# valgrind on a loaded machine takes seconds): a TCP port accepts, or a
# Unix socket file exists.
LISTENER_PID=""
LISTENER_USER=""
start_listener() {
    local addr=$1 log=$2 deadline; shift 2
    local pre=()
    [ -n "$LISTENER_USER" ] &&
        pre=(setpriv --reuid="$LISTENER_USER" --regid="$LISTENER_USER" --clear-groups)
    "${pre[@]}" "$MLFCGI_BIN" --listen "$addr" "$@" >>"$log" 2>&1 </dev/null &
    LISTENER_PID=$!
    track_pid "$LISTENER_PID"
    track_log "$log"
    case $addr in
    */*)
        deadline=$((SECONDS + 30))
        while [ $SECONDS -lt $deadline ]; do
            pid_alive "$LISTENER_PID" || return 1
            [ -S "$addr" ] && return 0
            sleep 0.05
        done
        return 1 ;;
    *)  wait_listening "${addr##*:}" "$LISTENER_PID" 30 ;;
    esac
}

# load_config FILE URL N PREFIX [BODY [OUTDIR [FORM]]]: a curl config of N
# JSON POSTs of BODY (default, or empty: the setosa features) to URL, the
# i-th with X-Request-Id PREFIX-i. With OUTDIR, the i-th answer's body goes
# to OUTDIR/i.json (created when its first byte arrives), else it is
# dropped; with FORM, the even-numbered requests post FORM as
# application/x-www-form-urlencoded instead. Each transfer writes the line
# "STATUS PREFIX-i CURL_EXIT_CODE" (STATUS 000: no answer; then the exit
# code says why: 7 refused, 52 empty reply, ...). One curl runs them all:
# a process per request costs 30-40 ms of CPU on a slow host.
load_config() {
    local file=$1 url=$2 n=$3 prefix=$4 body=${5:-"{\"features\":$IRIS_SETOSA}"}
    awk -v url="$url" -v n="$n" -v p="$prefix" -v body="$body" -v dir="${6:-}" \
        -v form="${7:-}" 'BEGIN {
        gsub(/\\/, "\\\\", body); gsub(/"/, "\\\"", body)
        gsub(/\\/, "\\\\", form); gsub(/"/, "\\\"", form)
        for (i = 1; i <= n; i++) {
            ctype = "application/json"; b = body
            if (form != "" && i % 2 == 0) {
                ctype = "application/x-www-form-urlencoded"; b = form
            }
            printf "url = \"%s\"\nheader = \"Content-Type: %s\"\n" \
                   "header = \"X-Request-Id: %s-%d\"\ndata-binary = \"%s\"\n" \
                   "output = \"%s\"\nmax-time = 30\n" \
                   "write-out = \"%%{http_code} %s-%d %%{exitcode}\\n\"\n%s", \
                   url, ctype, p, i, b, (dir == "" ? "/dev/null" : dir "/" i ".json"),
                   p, i, (i < n ? "next\n" : "")
        }
    }' >"$file"
}

# count_answers PREFIX LABEL FILE...: how many of the answer files FILE
# (DIR/i.json: the answer to request i of a load_config with OUTDIR) hold
# the label LABEL, a jq expression of $n (the number i), and the
# request_id PREFIX-i. Prints nothing if a file is not JSON.
count_answers() {
    local prefix=$1 label=$2; shift 2
    [ $# -gt 0 ] || { echo 0; return; }
    jq -n --arg p "$prefix" '[inputs
        | (input_filename | capture("(?<i>[0-9]+)[.]json$").i) as $i
        | ($i | tonumber) as $n
        | select(.label == ('"$label"') and .request_id == "\($p)-\($i)")]
        | length' "$@" 2>/dev/null
}

# start_load CONFIG OUT PARALLEL: run CONFIG with curl, PARALLEL transfers at
# a time (keep-alive connections), in the background; sets LOAD_PID.
LOAD_PID=""
start_load() {
    curl -s --parallel --parallel-max "$3" -K "$1" >"$2" 2>"$2.err" </dev/null &
    LOAD_PID=$!
    track_pid "$LOAD_PID"
}

# wait_load SECONDS: wait for the load started last; kill it on timeout
# (false then).
wait_load() {
    if wait_gone "$1" "$LOAD_PID"; then wait "$LOAD_PID" 2>/dev/null; return 0; fi
    kill -TERM "$LOAD_PID" 2>/dev/null
    wait "$LOAD_PID" 2>/dev/null
    return 1
}

# run_load CONFIG OUT PARALLEL SECONDS: start_load and wait_load.
run_load() { start_load "$1" "$2" "$3"; wait_load "$4"; }

# load_count OUT [STATUS]: how many requests of OUT got STATUS (default 200).
load_count() { awk -v s="${2:-200}" '$1 == s { n++ } END { print n + 0 }' "$1"; }

# load_statuses OUT: "STATUS xCOUNT ..." over all lines of OUT (a diagnostic).
load_statuses() {
    awk '{ c[$1]++ } END { for (s in c) { printf "%s%s x%d", sep, s, c[s]; sep = ", " } }' "$1"
}

# check_probes_and_errors DESC: the probes and the errors, through the web
# server at BASE_URL, with mlfcgi mounted at MOUNT.
check_probes_and_errors() {
    local d=$1
    http GET "$MOUNT/health"
    status_is 200 "$d: GET $MOUNT/health 200"
    check_json "$d: /health body" '. == {"status":"healthy","model_loaded":true}'
    http HEAD "$MOUNT/health"
    status_is 200 "$d: HEAD $MOUNT/health 200"
    http GET "$MOUNT/ready"
    status_is 200 "$d: GET $MOUNT/ready 200"
    check_json "$d: /ready body" '.ready == true'
    predict_json '{"sepal_length":5.1,"sepal_width":3.5,"petal_length":1.4}'
    check_422 "$d: a missing field" missing '["body","petal_width"]' 1
    predict_form 'sepal_length=5.1&sepal_width=-1&petal_length=1.4&petal_width=0.2'
    check_422 "$d: form sepal_width -1" greater_than '["body","sepal_width"]' 1
    http GET "$MOUNT/nope"
    check_plain_error "$d: GET $MOUNT/nope (mlfcgi's 404)" 404
    http GET "$MOUNT/predict"
    check_plain_error "$d: GET $MOUNT/predict" 405
    is "$(hdr Allow)" POST "$d: GET $MOUNT/predict -> Allow: POST"
}

# check_predictions DESC MODEL: a JSON and a form prediction, both checked
# against MODEL's numbers (adds to PRED_OK).
check_predictions() {
    local d=$1 model=$2
    predict_json "{\"features\":$IRIS_SETOSA}" -H "X-Request-Id: $d-json-1"
    check_prediction "$d: JSON POST $MOUNT/predict" 0 setosa "$(expected_probs "$model" "$IRIS_SETOSA")"
    is "$(jb .request_id)" "$d-json-1" "$d: X-Request-Id honoured"
    predict_form "$(form_of "$IRIS_VIRGINICA")"
    check_prediction "$d: form POST $MOUNT/predict" 2 virginica "$(expected_probs "$model" "$IRIS_VIRGINICA")"
}

# check_parallel DESC N PARALLEL: N predictions, PARALLEL at a time, all 200
# (adds them to PRED_OK); request ids DESC-load-1..N.
check_parallel() {
    local d=$1 n=$2 par=$3 out=$TEST_TMP/$1-load.out n200
    load_config "$TEST_TMP/$d-load.cfg" "$BASE_URL$MOUNT/predict" "$n" "$d-load"
    ok "$d: $n predictions, $par at a time, finish within 60 s" \
        run_load "$TEST_TMP/$d-load.cfg" "$out" "$par" 60
    n200=$(load_count "$out")
    PRED_OK=$((PRED_OK + n200))
    is "$n200" "$n" "$d: all $n answered 200 ($(load_statuses "$out"))"
}
