#!/bin/bash
# tests/integration/deploy_apache_cgi.sh: mlfcgi as a plain CGI program under
# a real Apache 2.4 (fcgi/apache-cgi.conf): one process per request, which
# finds no listening socket on fd 0 and answers the request in its
# environment.
#   D. mod_cgid (event MPM; fd 0 is a connected Unix socket), mount "/".
#   P. mod_cgi (-DMLFCGI_MOD_CGI, prefork MPM; fd 0 is a pipe), mount "/ml".
# Each: the probes, predictions (JSON, form) checked against the model, the
# errors (422, 404, 405), parallel predictions (each its own process, all
# writing one audit DB), Apache stopped, then audit rows = the 200s of
# /predict, each from its own process.
#
# Env: MLFCGI_BIN, SRCDIR, BUILDDIR (defaults: from this file's location).
# Needs: apache2, curl, jq, sqlite3 (Debian packages); root.

. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

require_cmd apache2 apache2
require_cmd setsid util-linux
require_cmd curl curl
require_cmd jq jq
require_cmd sqlite3 sqlite3
for m in cgid cgi mpm_prefork; do
    [ -r "/usr/lib/apache2/modules/mod_$m.so" ] || bail_out "mod_$m not found (Debian package: apache2)"
done
id www-data >/dev/null 2>&1 || bail_out "no www-data user"
[ "$(id -u)" = 0 ] || bail_out "deploy_apache_cgi.sh must run as root (Apache switches to www-data)"
[ -x "$MLFCGI_BIN" ] || bail_out "mlfcgi binary not found or not executable: $MLFCGI_BIN"
CONF=$SRCDIR/fcgi/apache-cgi.conf
[ -r "$CONF" ] || bail_out "missing $CONF"

make_tmp
mkdir -p "$TEST_TMP/bin" "$TEST_TMP/models" "$TEST_TMP/www"
# A private copy: every process running it was started for this test.
cp "$MLFCGI_BIN" "$TEST_TMP/bin/mlfcgi"
cp "$SRCDIR/models/iris.json" "$TEST_TMP/models/iris.json"
printf '<!doctype html><title>form</title><p>mlfcgi-static-marker</p>\n' >"$TEST_TMP/www/index.html"
chmod -R a+rX "$TEST_TMP/bin" "$TEST_TMP/models" "$TEST_TMP/www"
BIN=$TEST_TMP/bin/mlfcgi
MODEL=$TEST_TMP/models/iris.json

# bin_pids: the processes running BIN (CGI requests still finishing).
bin_pids() { local all=(/proc/[0-9]*); pids_running_exe "$BIN" "${all[@]#/proc/}"; }

# run_case NAME MOUNT MODULES START_FN [APACHE ARGS...]: MODULES, an ERE,
# must match the modules `apache2 -M` lists for the config.
run_case() {
    local d=$1 mount=$2 mods=$3 start=$4 state=$TEST_TMP/$1 port n; shift 4
    local db=$TEST_TMP/$d/audit.db
    mkdir -p "$state"
    chown www-data:www-data "$state"
    port=$(free_port) || bail_out "no free port"
    PRED_OK=0
    MOUNT=$mount
    export MLFCGI_PORT=$port MLFCGI_BINARY=$BIN MLFCGI_MODEL=$MODEL \
           MLFCGI_AUDIT_DB=$db MLFCGI_STATE_DIR=$state MLFCGI_WWW=$TEST_TMP/www
    apache2 -t -f "$CONF" "$@" >"$state/apache-t.log" 2>&1
    ok "$d: apache2 -t accepts fcgi/apache-cgi.conf $*" test $? -eq 0
    like "$(apache2 -M -f "$CONF" "$@" 2>/dev/null | tr -d '\n')" "$mods" \
        "$d: the config loads $mods"
    "$start" "$CONF" "$state/apache.out" "$port" "$@" ||
        bail_out "$d: Apache did not start: $(tail -5 "$state/apache.out" "$state/apache-error.log" 2>/dev/null)"
    track_log "$state/apache-error.log"
    BASE_URL=http://127.0.0.1:$port
    wait_http "$BASE_URL$MOUNT/health" 15 || diag "$d: $MOUNT/health did not answer within 15 s"

    check_probes_and_errors "$d"
    check_predictions "$d" "$MODEL"
    http GET /
    like "$HTTP_STATUS $HTTP_BODY" '^200 .*mlfcgi-static-marker' "$d: GET / is the static form"
    check_parallel "$d" 40 4

    stop_pid "$SERVER_PID" 20
    is "$STOP_STATUS" 0 "$d: Apache exits 0 on SIGTERM"
    # A CGI process commits its row before it exits; none may be left.
    ok "$d: no mlfcgi process is left" wait_gone 10 $(bin_pids)
    check_audit "$d" "$db" "$PRED_OK"
    n=$(sqlite_q "$db" "SELECT count(DISTINCT pid) FROM predictions;")
    is "$n" "$PRED_OK" "$d: each prediction came from its own process (CGI)"
    is "$(stat -c %U "$db" 2>/dev/null)" www-data "$d: the audit DB was created by www-data"
    MOUNT=""
}

run_case D "" 'mpm_event_module.*cgid_module' start_apache
run_case P /ml 'mpm_prefork_module.* cgi_module' start_apache_setsid -DMLFCGI_MOD_CGI -DMLFCGI_UNDER_ML

done_testing
