#!/bin/bash
# tests/integration/browser.sh: a real browser (Debian's chromium, headless,
# driven by playwright-core from tests/browser/) against a real lighttpd
# (fcgi/lighttpd.conf, the repository's www/) spawning mlfcgi with iris:
#   - /docs: Swagger UI loads /openapi.json; "Try it out" -> "Execute" on
#     POST /predict with the iris example shows a prediction; an example
#     picked from the list; an invalid body shows the 422; under the prefix
#     /ml, /ml/docs/ sends its requests to /ml/predict;
#   - the www/ form: filled in and submitted, it shows the label; an invalid
#     value shows mlfcgi's error; ?api=/ml posts under the prefix;
#   - nothing is fetched from anywhere but 127.0.0.1, no JavaScript error;
#   - every prediction the pages showed is in the audit log, by request id.
# Screenshots: docs.png and form.png, in $BROWSER_SHOTS if set (else in the
# temporary directory, kept with MLFCGI_KEEP_TMP=1).
#
# Skips (TAP "1..0 # SKIP") without chromium, node or the Node packages
# (tools/setup-debian installs all three). Env: MLFCGI_BIN, SRCDIR, BUILDDIR,
# CHROMIUM (default /usr/bin/chromium). Needs: lighttpd, curl, sqlite3.

. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
. "$SRCDIR/tests/browser/node-env.sh"

skip_all() { echo "1..0 # SKIP $*"; exit 0; }
CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
[ -x "$CHROMIUM" ] || skip_all "chromium not found at $CHROMIUM (Debian package: chromium)"
node_env || skip_all "$NODE_WHY"
require_cmd lighttpd lighttpd
require_cmd curl curl
require_cmd sqlite3 sqlite3
[ -x "$MLFCGI_BIN" ] || bail_out "mlfcgi binary not found or not executable: $MLFCGI_BIN"
export CHROMIUM

make_tmp
SHOTS=${BROWSER_SHOTS:-$TEST_TMP/shots}
mkdir -p "$SHOTS"

# start_server NAME PREFIX: lighttpd with mlfcgi at PREFIX ("" or "/ml");
# sets PORT, and DB_<NAME> to its audit log.
start_server() {
    PORT=$(free_port) || bail_out "no free port"
    export MLFCGI_PORT=$PORT MLFCGI_BINARY=$MLFCGI_BIN MLFCGI_MODEL=$SRCDIR/models/iris.json \
           MLFCGI_STATE_DIR=$TEST_TMP/$1 MLFCGI_AUDIT_DB=$TEST_TMP/$1/audit.db \
           MLFCGI_WWW=$SRCDIR/www MLFCGI_PREFIX=$2
    start_lighttpd "$SRCDIR/fcgi/lighttpd.conf" "$TEST_TMP/$1.out" "$PORT" ||
        bail_out "lighttpd ($1) did not start: $(tail -5 "$TEST_TMP/$1.out")"
    track_log "$TEST_TMP/$1/lighttpd-error.log"
    wait_http "http://127.0.0.1:$PORT$2/health" 10 || bail_out "mlfcgi ($1) did not answer"
}
start_server root ""
ROOT_PID=$SERVER_PID ROOT_URL=http://127.0.0.1:$PORT
start_server prefix /ml
PREFIX_PID=$SERVER_PID PREFIX_URL=http://127.0.0.1:$PORT/ml

t0=$SECONDS
RIDS=()
while IFS=$'\t' read -r res desc why; do
    case $res in
        ok) pass "$desc" ;;
        rid) RIDS+=("$desc") ;;
        *) fail "$desc" "$why" ;;
    esac
done < <(cd "$TEST_TMP" && timeout 600 node "$SRCDIR/tests/browser/browser.js" \
             "$ROOT_URL" "$PREFIX_URL" "$SHOTS" 2>&1 |
         awk '/^(ok|not ok|rid)\t/ { print; next } { print "not ok\tnode says: " $0 }')
diag "the browser took $((SECONDS - t0)) s; screenshots in $SHOTS"

# The audit log has what the pages showed, once the mlfcgi processes have
# written their queues and exited after lighttpd.
kids=$(pids_running_exe "$MLFCGI_BIN" $(descendant_pids "$ROOT_PID") $(descendant_pids "$PREFIX_PID"))
stop_pid "$ROOT_PID" 20
stop_pid "$PREFIX_PID" 20
[ -z "$kids" ] || wait_gone 15 $kids || diag "mlfcgi processes still running: $kids"
is "${#RIDS[@]}" 5 "the pages showed 5 predictions with their request ids"
missing=""
for rid in "${RIDS[@]}"; do
    n=0
    if [[ $rid =~ ^[A-Za-z0-9._-]{1,128}$ ]]; then
        for db in "$TEST_TMP/root/audit.db" "$TEST_TMP/prefix/audit.db"; do
            c=$(sqlite_q "$db" "SELECT count(*) FROM predictions WHERE request_id = '$rid';")
            [[ $c =~ ^[0-9]+$ ]] && n=$((n + c))
        done
    fi
    [ "$n" = 1 ] || missing="$missing $rid($n)"
done
is "${missing:-none}" none "each of them is one audit row"

done_testing
