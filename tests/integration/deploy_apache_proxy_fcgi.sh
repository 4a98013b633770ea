#!/bin/bash
# tests/integration/deploy_apache_proxy_fcgi.sh: mlfcgi --listen behind a real
# Apache 2.4 with mod_proxy_fcgi (fcgi/apache-proxy-fcgi.conf):
#   T. TCP (fcgi://127.0.0.1:PORT), mount "/ml/" (-DMLFCGI_UNDER_ML); mlfcgi
#      runs as root.
#   U. a Unix socket (unix:PATH|fcgi://localhost), mount "/"; mlfcgi runs as
#      www-data, like Apache's workers, so they can connect to its socket.
# Each: the probes, predictions (JSON, form) checked against the model, the
# errors (422, 404, 405), routing outside the mount, 100 predictions 8 at a
# time, Apache and mlfcgi stopped with SIGTERM (exit 0), then audit rows =
# the 200s of /predict.
#
# Env: MLFCGI_BIN, SRCDIR, BUILDDIR (defaults: from this file's location).
# Needs: apache2, curl, jq, sqlite3 (Debian packages); root.

. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

require_cmd apache2 apache2
require_cmd setpriv util-linux
require_cmd curl curl
require_cmd jq jq
require_cmd sqlite3 sqlite3
[ -r /usr/lib/apache2/modules/mod_proxy_fcgi.so ] ||
    bail_out "mod_proxy_fcgi not found (Debian package: apache2)"
id www-data >/dev/null 2>&1 || bail_out "no www-data user"
[ "$(id -u)" = 0 ] || bail_out "deploy_apache_proxy_fcgi.sh must run as root (Apache switches to www-data)"
[ -x "$MLFCGI_BIN" ] || bail_out "mlfcgi binary not found or not executable: $MLFCGI_BIN"
CONF=$SRCDIR/fcgi/apache-proxy-fcgi.conf
[ -r "$CONF" ] || bail_out "missing $CONF"

make_tmp
mkdir -p "$TEST_TMP/bin" "$TEST_TMP/models" "$TEST_TMP/www"
cp "$MLFCGI_BIN" "$TEST_TMP/bin/mlfcgi"
cp "$SRCDIR/models/iris.json" "$TEST_TMP/models/iris.json"
printf '<!doctype html><title>form</title><p>mlfcgi-static-marker</p>\n' >"$TEST_TMP/www/index.html"
chmod -R a+rX "$TEST_TMP/bin" "$TEST_TMP/models" "$TEST_TMP/www"
MLFCGI_BIN=$TEST_TMP/bin/mlfcgi
MODEL=$TEST_TMP/models/iris.json

# run_case NAME MOUNT BACKEND_URL [APACHE ARGS...]: the whole sequence for one
# deployment; ADDR (mlfcgi's --listen) and LISTENER_USER are set by the caller.
run_case() {
    local d=$1 mount=$2 backend=$3 state=$TEST_TMP/$1 port mlfcgi_pid; shift 3
    local db=$TEST_TMP/$d/audit.db
    mkdir -p "$state"
    [ -n "$LISTENER_USER" ] && chown "$LISTENER_USER" "$state"
    port=$(free_port) || bail_out "no free port"
    [ "$port" = "${BPORT:-}" ] && { port=$(free_port) || bail_out "no free port"; }
    PRED_OK=0
    MOUNT=$mount
    export MLFCGI_PORT=$port MLFCGI_STATE_DIR=$state MLFCGI_WWW=$TEST_TMP/www \
           MLFCGI_BACKEND_URL=$backend
    apache2 -t -f "$CONF" "$@" >"$state/apache-t.log" 2>&1
    ok "$d: apache2 -t accepts fcgi/apache-proxy-fcgi.conf $*" test $? -eq 0

    start_listener "$ADDR" "$state/mlfcgi.out" --model "$MODEL" --audit-db "$db" ||
        bail_out "$d: mlfcgi --listen $ADDR did not start: $(tail -3 "$state/mlfcgi.out")"
    mlfcgi_pid=$LISTENER_PID
    start_apache "$CONF" "$state/apache.out" "$port" "$@" ||
        bail_out "$d: Apache did not start: $(tail -5 "$state/apache.out" "$state/apache-error.log" 2>/dev/null)"
    track_log "$state/apache-error.log"
    BASE_URL=http://127.0.0.1:$port
    wait_http "$BASE_URL$MOUNT/health" 15 || diag "$d: $MOUNT/health did not answer within 15 s"

    check_probes_and_errors "$d"
    check_predictions "$d" "$MODEL"
    http GET /
    like "$HTTP_STATUS $HTTP_BODY" '^200 .*mlfcgi-static-marker' "$d: GET / is the static form"
    if [ -n "$mount" ]; then
        http GET /health
        like "$HTTP_STATUS $(hdr Content-Type)" '^404 text/html' "$d: GET /health outside $mount is Apache's 404"
        http GET /mlx/health
        like "$HTTP_STATUS $(hdr Content-Type)" '^404 text/html' "$d: GET /mlx/health is Apache's 404"
    else
        http GET /ml/health
        check_plain_error "$d: GET /ml/health at a root mount is mlfcgi's 404" 404
    fi
    check_parallel "$d" 100 8

    stop_pid "$SERVER_PID" 20
    is "$STOP_STATUS" 0 "$d: Apache exits 0 on SIGTERM"
    stop_pid "$mlfcgi_pid" 15
    is "$STOP_STATUS" 0 "$d: mlfcgi --listen exits 0 on SIGTERM"
    check_audit "$d" "$db" "$PRED_OK"
    is "$(sqlite_q "$db" "SELECT count(*) FROM predictions WHERE request_id LIKE '$d-load-%';")" 100 \
        "$d: 100 audit rows from the parallel load"
    MOUNT=""
}

# T. TCP, mount /ml, mlfcgi as root.
BPORT=$(free_port) || bail_out "no free port"
ADDR=127.0.0.1:$BPORT
LISTENER_USER=""
run_case T /ml "fcgi://$ADDR" -DMLFCGI_UNDER_ML

# U. Unix socket, mount /, mlfcgi as www-data (the socket in U's state dir).
ADDR=$TEST_TMP/U/mlfcgi.sock
LISTENER_USER=www-data
run_case U "" "unix:$ADDR|fcgi://localhost"

done_testing
