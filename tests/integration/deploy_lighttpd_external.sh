#!/bin/bash
# tests/integration/deploy_lighttpd_external.sh: lighttpd in front of an
# mlfcgi it did not start (fcgi/lighttpd-external.conf, `mlfcgi --listen`).
# tests/integration/lighttpd.sh (part C) already covers TCP at "/" with
# predictions, a 404 and SIGTERM under load; this adds:
#   U. a Unix socket (MLFCGI_BACKEND=/path), mount "/ml";
#   T. TCP, mount "/";
# each with the probes, predictions checked against the model, the errors
# (422, 404, 405), 100 predictions 8 at a time, a lighttpd restart that
# mlfcgi outlives (it is not lighttpd's child) and keeps serving across, then
# lighttpd and mlfcgi stopped with SIGTERM (exit 0) and audit rows = the 200s.
#
# Env: MLFCGI_BIN, SRCDIR, BUILDDIR (defaults: from this file's location).
# Needs: lighttpd, curl, jq, sqlite3 (Debian packages of the same names).

. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

require_cmd lighttpd lighttpd
require_cmd curl curl
require_cmd jq jq
require_cmd sqlite3 sqlite3
[ -x "$MLFCGI_BIN" ] || bail_out "mlfcgi binary not found or not executable: $MLFCGI_BIN"
MODEL=$SRCDIR/models/iris.json
CONF=$SRCDIR/fcgi/lighttpd-external.conf
for f in "$MODEL" "$CONF"; do [ -r "$f" ] || bail_out "missing $f"; done

make_tmp
mkdir -p "$TEST_TMP/www"
printf '<!doctype html><title>form</title><p>mlfcgi-static-marker</p>\n' >"$TEST_TMP/www/index.html"

# run_case NAME PREFIX BACKEND: BACKEND is mlfcgi's --listen address and
# lighttpd-external.conf's MLFCGI_BACKEND alike.
run_case() {
    local d=$1 prefix=$2 backend=$3 state=$TEST_TMP/$1 port mlfcgi_pid
    local db=$TEST_TMP/$1/audit.db
    mkdir -p "$state"
    port=$(free_port) || bail_out "no free port"
    [ "$port" = "${BPORT:-}" ] && { port=$(free_port) || bail_out "no free port"; }
    PRED_OK=0
    MOUNT=$prefix
    export MLFCGI_PORT=$port MLFCGI_STATE_DIR=$state MLFCGI_WWW=$TEST_TMP/www \
           MLFCGI_PREFIX=$prefix MLFCGI_BACKEND=$backend
    lighttpd -tt -f "$CONF" >"$state/lighttpd-tt.log" 2>&1
    ok "$d: lighttpd -tt accepts fcgi/lighttpd-external.conf" test $? -eq 0

    start_listener "$backend" "$state/mlfcgi.out" --model "$MODEL" --audit-db "$db" ||
        bail_out "$d: mlfcgi --listen $backend did not start: $(tail -3 "$state/mlfcgi.out")"
    mlfcgi_pid=$LISTENER_PID
    start_lighttpd "$CONF" "$state/lighttpd.out" "$port" ||
        bail_out "$d: lighttpd did not start: $(tail -5 "$state/lighttpd.out" "$state/lighttpd-error.log" 2>/dev/null)"
    track_log "$state/lighttpd-error.log"
    BASE_URL=http://127.0.0.1:$port
    wait_http "$BASE_URL$MOUNT/health" 10 || diag "$d: $MOUNT/health did not answer within 10 s"

    check_probes_and_errors "$d"
    check_predictions "$d" "$MODEL"
    http GET /
    like "$HTTP_STATUS $HTTP_BODY" '^200 .*mlfcgi-static-marker' "$d: GET / is the static form"
    if [ -n "$prefix" ]; then
        http GET /mlx/health
        like "$HTTP_STATUS $(hdr Content-Type)" '^404 text/html' "$d: GET /mlx/health is lighttpd's 404"
    fi
    check_parallel "$d" 100 8

    # lighttpd restarts; mlfcgi goes on.
    stop_pid "$SERVER_PID" 15
    is "$STOP_STATUS" 0 "$d: lighttpd exits 0 on SIGTERM"
    ok "$d: mlfcgi --listen outlives lighttpd" pid_alive "$mlfcgi_pid"
    start_lighttpd "$CONF" "$state/lighttpd.out" "$port" ||
        bail_out "$d: lighttpd did not start again: $(tail -5 "$state/lighttpd.out")"
    predict_json "{\"features\":$IRIS_VERSICOLOR}"
    check_json "$d: after the lighttpd restart, the same mlfcgi answers versicolor" \
        '.label == "versicolor"'
    http GET "$MOUNT/ready"
    check_json "$d: ... and is ready" '.ready == true'

    stop_pid "$SERVER_PID" 15
    is "$STOP_STATUS" 0 "$d: lighttpd exits 0 on SIGTERM (again)"
    stop_pid "$mlfcgi_pid" 15
    is "$STOP_STATUS" 0 "$d: mlfcgi --listen exits 0 on SIGTERM"
    [ "${backend#/}" != "$backend" ] && ok "$d: mlfcgi removed its socket" test ! -e "$backend"
    check_audit "$d" "$db" "$PRED_OK"
    is "$(sqlite_q "$db" "SELECT count(*) FROM predictions WHERE request_id LIKE '$d-load-%';")" 100 \
        "$d: 100 audit rows from the parallel load"
    is "$(sqlite_q "$db" "SELECT count(DISTINCT pid) FROM predictions;")" 1 \
        "$d: one process wrote them all, across the lighttpd restart"
    MOUNT=""
}

run_case U /ml "$TEST_TMP/U/mlfcgi.sock"
BPORT=$(free_port) || bail_out "no free port"
run_case T "" "127.0.0.1:$BPORT"

done_testing
