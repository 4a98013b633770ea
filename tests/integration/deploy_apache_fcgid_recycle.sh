#!/bin/bash
# tests/integration/deploy_apache_fcgid_recycle.sh: Apache mod_fcgid with a
# pool of mlfcgi processes that it recycles: fcgi/apache-fcgid.conf (4
# processes at most) with FcgidMaxRequestsPerProcess 50 given on the command
# line (-c). The probes, predictions and errors; then 400 predictions, 8 at a
# time, so that processes are retired after 50 requests and new ones started
# while requests keep coming. Every request must be a 200; each retired
# process must exit 0 having written its rows: the audit log ends with one
# row per 200, from more processes than the pool holds at once, none with
# more than 50 rows.
#
# Env: MLFCGI_BIN, SRCDIR, BUILDDIR (defaults: from this file's location).
# Needs: apache2, libapache2-mod-fcgid, curl, jq, sqlite3; root.

. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

require_cmd apache2 apache2
require_cmd curl curl
require_cmd jq jq
require_cmd sqlite3 sqlite3
[ -r /usr/lib/apache2/modules/mod_fcgid.so ] ||
    bail_out "mod_fcgid not found (Debian package: libapache2-mod-fcgid)"
id www-data >/dev/null 2>&1 || bail_out "no www-data user"
[ "$(id -u)" = 0 ] || bail_out "deploy_apache_fcgid_recycle.sh must run as root (Apache switches to www-data)"
[ -x "$MLFCGI_BIN" ] || bail_out "mlfcgi binary not found or not executable: $MLFCGI_BIN"
CONF=$SRCDIR/fcgi/apache-fcgid.conf
[ -r "$CONF" ] || bail_out "missing $CONF"

MAX_REQ=50       # FcgidMaxRequestsPerProcess
MAX_PROCS=$(awk '$1 == "FcgidMaxProcessesPerClass" { print $2 }' "$CONF")
N=400
PAR=8

make_tmp
mkdir -p "$TEST_TMP/bin" "$TEST_TMP/models" "$TEST_TMP/www" "$TEST_TMP/state"
cp "$MLFCGI_BIN" "$TEST_TMP/bin/mlfcgi"
cp "$SRCDIR/models/iris.json" "$TEST_TMP/models/iris.json"
printf '<!doctype html><title>form</title><p>mlfcgi-static-marker</p>\n' >"$TEST_TMP/www/index.html"
chmod -R a+rX "$TEST_TMP/bin" "$TEST_TMP/models" "$TEST_TMP/www"
chown www-data:www-data "$TEST_TMP/state"
BIN=$TEST_TMP/bin/mlfcgi
MODEL=$TEST_TMP/models/iris.json
STATE=$TEST_TMP/state
DB=$STATE/audit.db

PORT=$(free_port) || bail_out "no free port"
export MLFCGI_PORT=$PORT MLFCGI_BINARY=$BIN MLFCGI_MODEL=$MODEL \
       MLFCGI_AUDIT_DB=$DB MLFCGI_STATE_DIR=$STATE MLFCGI_WWW=$TEST_TMP/www
ok "fcgi/apache-fcgid.conf sets FcgidMaxProcessesPerClass ($MAX_PROCS)" test -n "$MAX_PROCS"
# mod_fcgid retires a process that reached its count at its next scans (3 s
# apart by default) and keeps its slot till then: scan every second. And each
# retirement would add to the spawn score that throttles new processes
# (seconds of stall with every process retired at once): not counted here.
start_apache "$CONF" "$TEST_TMP/apache.out" "$PORT" -c "FcgidMaxRequestsPerProcess $MAX_REQ" \
        -c "FcgidErrorScanInterval 1" -c "FcgidZombieScanInterval 1" -c "FcgidTerminationScore -1" ||
    bail_out "Apache did not start: $(tail -5 "$TEST_TMP/apache.out" "$STATE/apache-error.log" 2>/dev/null)"
track_log "$STATE/apache-error.log"
BASE_URL=http://127.0.0.1:$PORT
wait_http "$BASE_URL/health" 15 || diag "/health did not answer within 15 s"

check_probes_and_errors F
check_predictions F "$MODEL"

# The load: every answer must be a 200 while processes come and go.
check_parallel F "$N" "$PAR"

KIDS=$(pids_running_exe "$BIN" $(descendant_pids "$SERVER_PID"))
stop_server_and_children F Apache "$BIN"
check_audit F "$DB" "$PRED_OK"
PIDS=$(sqlite_q "$DB" "SELECT count(DISTINCT pid) FROM predictions;")
diag "audit rows from $PIDS processes; rows per process: $(sqlite_q "$DB" \
      "SELECT group_concat(n, ' ') FROM (SELECT count(*) AS n FROM predictions GROUP BY pid);")"
num_ok "$PIDS" ">" "$MAX_PROCS" \
    "processes were recycled: rows from more processes ($PIDS) than FcgidMaxProcessesPerClass ($MAX_PROCS)"
num_ok "$(sqlite_q "$DB" "SELECT max(n) FROM (SELECT count(*) AS n FROM predictions GROUP BY pid);")" \
    "<=" "$MAX_REQ" "no process served more than FcgidMaxRequestsPerProcess ($MAX_REQ) predictions"
is "$(sqlite_q "$DB" "SELECT count(*) FROM predictions WHERE request_id LIKE 'F-load-%';")" "$N" \
    "$N audit rows from the load"
# mod_fcgid logs how each process ended (LogLevel fcgid:info).
EXITS=$(grep -c 'exit(.*return code: 0' "$STATE/apache-error.log")
BAD_EXITS=$(grep 'mod_fcgid: process .* exit(' "$STATE/apache-error.log" | grep -vc 'return code: 0')
diag "mod_fcgid logged $EXITS clean exits"
is "$BAD_EXITS" 0 "every mlfcgi process mod_fcgid retired exited with status 0"

done_testing
