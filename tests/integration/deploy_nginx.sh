#!/bin/bash
# tests/integration/deploy_nginx.sh: mlfcgi --listen behind a real nginx
# (fastcgi_pass), through fcgi/nginx.conf rendered with envsubst:
#   U. a Unix socket, mount "/ml": mlfcgi runs as www-data, like nginx's
#      workers, so they can connect to the socket it creates.
#   T. TCP on 127.0.0.1, mount "/": mlfcgi runs as root.
# Each: the probes, predictions (JSON, form) checked against the model, the
# errors (422, 404, 405), 100 predictions 8 at a time, nginx and mlfcgi
# stopped with SIGTERM (exit 0), then audit rows = the 200s of /predict.
#
# Env: MLFCGI_BIN, SRCDIR, BUILDDIR (defaults: from this file's location).
# Needs: nginx (nginx-light), gettext-base (envsubst), curl, jq, sqlite3; root.

. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

require_cmd nginx nginx-light
require_cmd envsubst gettext-base
require_cmd setpriv util-linux
require_cmd curl curl
require_cmd jq jq
require_cmd sqlite3 sqlite3
id www-data >/dev/null 2>&1 || bail_out "no www-data user"
[ "$(id -u)" = 0 ] || bail_out "deploy_nginx.sh must run as root (nginx's workers run as www-data)"
[ -x "$MLFCGI_BIN" ] || bail_out "mlfcgi binary not found or not executable: $MLFCGI_BIN"
CONF=$SRCDIR/fcgi/nginx.conf
[ -r "$CONF" ] || bail_out "missing $CONF"

make_tmp
# The binary and model where www-data can reach them.
mkdir -p "$TEST_TMP/bin" "$TEST_TMP/models" "$TEST_TMP/www"
cp "$MLFCGI_BIN" "$TEST_TMP/bin/mlfcgi"
cp "$SRCDIR/models/iris.json" "$TEST_TMP/models/iris.json"
printf '<!doctype html><title>form</title><p>mlfcgi-static-marker</p>\n' >"$TEST_TMP/www/index.html"
chmod -R a+rX "$TEST_TMP/bin" "$TEST_TMP/models" "$TEST_TMP/www"
MLFCGI_BIN=$TEST_TMP/bin/mlfcgi
MODEL=$TEST_TMP/models/iris.json

# run_case NAME PREFIX BACKEND: the whole sequence for one deployment.
# LISTENER_USER and the mlfcgi address (ADDR) are set by the caller.
run_case() {
    local d=$1 prefix=$2 backend=$3 state=$TEST_TMP/$1 port
    local db=$TEST_TMP/$1/audit.db
    mkdir -p "$state"
    [ -n "$LISTENER_USER" ] && chown "$LISTENER_USER" "$state"
    port=$(free_port) || bail_out "no free port"
    [ "$port" = "${BPORT:-}" ] && { port=$(free_port) || bail_out "no free port"; }
    PRED_OK=0
    MOUNT=$prefix
    export MLFCGI_PORT=$port MLFCGI_STATE_DIR=$state MLFCGI_WWW=$TEST_TMP/www \
           MLFCGI_PREFIX=$prefix MLFCGI_BACKEND=$backend MLFCGI_NGINX_USER=www-data
    render_conf "$CONF" "$state/nginx.conf" MLFCGI_PORT MLFCGI_STATE_DIR MLFCGI_WWW \
        MLFCGI_PREFIX MLFCGI_BACKEND MLFCGI_NGINX_USER
    nginx -t -c "$state/nginx.conf" >"$state/nginx-t.log" 2>&1
    ok "$d: nginx -t accepts the rendered fcgi/nginx.conf" test $? -eq 0

    start_listener "$ADDR" "$state/mlfcgi.out" --model "$MODEL" --audit-db "$db" ||
        bail_out "$d: mlfcgi --listen $ADDR did not start: $(tail -3 "$state/mlfcgi.out")"
    local mlfcgi_pid=$LISTENER_PID
    [ -S "$ADDR" ] && diag "$d: socket $(stat -c '%A %U:%G' "$ADDR") $ADDR"
    start_nginx "$state/nginx.conf" "$state/nginx.out" "$port" ||
        bail_out "$d: nginx did not start: $(tail -5 "$state/nginx.out" "$state/nginx-error.log" 2>/dev/null)"
    track_log "$state/nginx-error.log"
    BASE_URL=http://127.0.0.1:$port
    wait_http "$BASE_URL$MOUNT/health" 10 || diag "$d: $MOUNT/health did not answer within 10 s"

    check_probes_and_errors "$d"
    check_predictions "$d" "$MODEL"
    http GET /
    like "$HTTP_STATUS $HTTP_BODY" '^200 .*mlfcgi-static-marker' "$d: GET / is the static form"
    http GET /mlx/health
    status_is 404 "$d: GET /mlx/health is not mlfcgi's"
    check_parallel "$d" 100 8
    is "$(ps -o user= -p "$(child_pids "$SERVER_PID" | head -1)" 2>/dev/null)" www-data \
        "$d: nginx's workers run as www-data"
    is "$(ps -o user= -p "$mlfcgi_pid" 2>/dev/null)" "${LISTENER_USER:-root}" \
        "$d: mlfcgi runs as ${LISTENER_USER:-root}"

    stop_pid "$SERVER_PID" 15
    is "$STOP_STATUS" 0 "$d: nginx exits 0 on SIGTERM"
    stop_pid "$mlfcgi_pid" 15
    is "$STOP_STATUS" 0 "$d: mlfcgi --listen exits 0 on SIGTERM"
    [ "${ADDR#/}" != "$ADDR" ] && ok "$d: mlfcgi removed its socket" test ! -e "$ADDR"
    check_audit "$d" "$db" "$PRED_OK"
    is "$(sqlite_q "$db" "SELECT count(*) FROM predictions WHERE request_id LIKE '$d-load-%';")" 100 \
        "$d: 100 audit rows from the parallel load"
    MOUNT=""
}

# U. Unix socket, mount /ml, mlfcgi as www-data.
ADDR=$TEST_TMP/U/mlfcgi.sock     # in U's state dir, owned by www-data
LISTENER_USER=www-data
run_case U /ml "unix:$ADDR"

# T. TCP, mount /, mlfcgi as root.
BPORT=$(free_port) || bail_out "no free port"
ADDR=127.0.0.1:$BPORT
LISTENER_USER=""
run_case T "" "$ADDR"

done_testing
