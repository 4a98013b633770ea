#!/bin/bash
# tests/integration/apache.sh: mlfcgi behind a real Apache 2.4 + mod_fcgid.
#
# Uses fcgi/apache-fcgid.conf, started as root (workers and mlfcgi run as
# www-data):
#   R. mount "/": health, ready, predictions (JSON, form), errors, 40
#      concurrent requests (mod_fcgid starts several processes), SIGTERM, and
#      the audit DB.
#   M. -DMLFCGI_UNDER_ML: mount "/ml".
#
# The binary and model are copied into a fresh 0755 temp dir so www-data can
# run and read them wherever the build tree is.
#
# Env: MLFCGI_BIN, SRCDIR, BUILDDIR (defaults: from this file's location).
# Needs: apache2, libapache2-mod-fcgid, curl, jq, sqlite3 (Debian packages).

. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

require_cmd apache2 apache2
require_cmd curl curl
require_cmd jq jq
require_cmd sqlite3 sqlite3
[ -r /usr/lib/apache2/modules/mod_fcgid.so ] ||
    bail_out "mod_fcgid not found (Debian package: libapache2-mod-fcgid)"
id www-data >/dev/null 2>&1 || bail_out "no www-data user"
[ "$(id -u)" = 0 ] || bail_out "apache.sh must run as root (Apache switches to www-data)"
[ -x "$MLFCGI_BIN" ] || bail_out "mlfcgi binary not found or not executable: $MLFCGI_BIN"

CONF=$SRCDIR/fcgi/apache-fcgid.conf
[ -r "$CONF" ] || bail_out "missing $CONF"
[ -r "$SRCDIR/models/iris.json" ] || bail_out "missing $SRCDIR/models/iris.json"

make_tmp
mkdir -p "$TEST_TMP/bin" "$TEST_TMP/models" "$TEST_TMP/www"
cp "$MLFCGI_BIN" "$TEST_TMP/bin/mlfcgi"
cp "$SRCDIR/models/iris.json" "$TEST_TMP/models/iris.json"
printf '<!doctype html><title>form</title><p>mlfcgi-static-marker</p>\n' >"$TEST_TMP/www/index.html"
chmod -R a+rX "$TEST_TMP/bin" "$TEST_TMP/models" "$TEST_TMP/www"
BIN=$TEST_TMP/bin/mlfcgi
MODEL=$TEST_TMP/models/iris.json

EXP_SETOSA=$(expected_probs "$MODEL" "$IRIS_SETOSA")
EXP_VIRGINICA=$(expected_probs "$MODEL" "$IRIS_VIRGINICA")

# setup_state NAME: a state dir writable by www-data; sets STATE and DB.
setup_state() {
    STATE=$TEST_TMP/$1
    DB=$STATE/audit.db
    mkdir -p "$STATE"
    chown www-data:www-data "$STATE"
}

apache_env() {   # apache_env PORT: the environment fcgi/apache-fcgid.conf reads
    export MLFCGI_PORT=$1 MLFCGI_BINARY=$BIN MLFCGI_MODEL=$MODEL \
           MLFCGI_AUDIT_DB=$DB MLFCGI_STATE_DIR=$STATE MLFCGI_WWW=$TEST_TMP/www
}

# ===========================================================================
# R. mount "/"
# ===========================================================================
PORT=$(free_port) || bail_out "no free port"
setup_state root
apache_env "$PORT"
apache2 -t -f "$CONF" >"$TEST_TMP/configtest.log" 2>&1
ok "R: apache2 -t accepts fcgi/apache-fcgid.conf" test $? -eq 0
start_apache "$CONF" "$TEST_TMP/apache-root.out" "$PORT" ||
    bail_out "R: Apache did not start: $(tail -5 "$TEST_TMP/apache-root.out" "$STATE/apache-error.log" 2>/dev/null)"
track_log "$STATE/apache-error.log"
BASE_URL=http://127.0.0.1:$PORT
wait_http "$BASE_URL/health" 15 || diag "R: /health did not answer within 15 s"

http GET /
like "$HTTP_STATUS $HTTP_BODY" '^200 .*mlfcgi-static-marker' "R: GET / is the static form"
http GET /health
status_is 200 "R: GET /health 200"
like "$(hdr Content-Type)" '^application/json' "R: /health Content-Type JSON"
check_json "R: /health body" '. == {"status":"healthy","model_loaded":true}'
http HEAD /health
status_is 200 "R: HEAD /health 200"
http GET /ready
status_is 200 "R: GET /ready 200"
check_json "R: /ready body" '.ready == true'

predict_json "{\"features\":$IRIS_SETOSA}" -H 'X-Request-Id: apache-json-1'
check_prediction "R: JSON POST /predict" 0 setosa "$EXP_SETOSA"
is "$(jb .request_id)" apache-json-1 "R: X-Request-Id honoured"
predict_form "$(form_of "$IRIS_VIRGINICA")"
check_prediction "R: form POST /predict" 2 virginica "$EXP_VIRGINICA"
predict_json "$(named_json "$IRIS_VIRGINICA")"
check_json "R: named JSON -> virginica" '.label == "virginica"'
predict --data-binary "{\"features\":$IRIS_SETOSA}" -H 'Content-Type:'
check_json "R: no Content-Type -> JSON -> setosa" '.label == "setosa"'

predict_json '{"sepal_length":5.1,"sepal_width":3.5,"petal_length":1.4}'
check_422 "R: missing field" missing '["body","petal_width"]' 1
predict_form 'sepal_length=5.1&sepal_width=3.5&petal_length=1.4&petal_width=abc'
check_422 "R: form value abc" float_parsing '["body","petal_width"]' 1
predict_json '{"features":[5.1,3.5,'
check_json "R: truncated JSON -> json_invalid" '.detail[0].type == "json_invalid"'
http GET /nope
check_plain_error "R: GET /nope" 404
http GET /predict
check_plain_error "R: GET /predict" 405
is "$(hdr Allow)" POST "R: GET /predict -> Allow: POST"
http POST /health --data-binary '{}'
status_is 405 "R: POST /health 405"
is "$(hdr Allow)" "GET, HEAD" "R: POST /health -> Allow: GET, HEAD"
predict --data-binary "{\"features\":$IRIS_SETOSA}" -H 'Content-Type: text/plain'
check_plain_error "R: Content-Type text/plain" 415
pad_json "{\"features\":$IRIS_SETOSA}" 1100000 >"$TEST_TMP/big.json"
predict_json "@$TEST_TMP/big.json"
check_plain_error "R: body over the default max-body (1 MiB)" 413

# 40 requests, 8 at a time: mod_fcgid gives each process one request at a
# time, so it starts more processes (FcgidMaxProcessesPerClass 4).
BATCH=$TEST_TMP/batch
mkdir -p "$BATCH"
load_config "$TEST_TMP/batch.cfg" "$BASE_URL/predict" 40 batch "" "$BATCH"
run_load "$TEST_TMP/batch.cfg" "$TEST_TMP/batch.out" 8 120 ||
    diag "R: the 40 concurrent requests took over 120 s"
N200=$(load_count "$TEST_TMP/batch.out")
is "$N200" 40 "R: 40 concurrent requests all answered 200"
PRED_OK=$((PRED_OK + N200))
# BATCH/i.json must be the answer to request i.
GOOD_BATCH=$(count_answers batch '"setosa"' "$BATCH"/*.json)
BAD_BATCH=$((40 - ${GOOD_BATCH:-0}))
is "$BAD_BATCH" 0 "R: every concurrent answer is setosa with its own request_id"

KIDS=$(pids_running_exe "$BIN" $(descendant_pids "$SERVER_PID"))
ok "R: mlfcgi runs as www-data" test "$(ps -o user= -p "$(echo $KIDS | cut -d' ' -f1)" 2>/dev/null)" = www-data
stop_server_and_children "R" Apache "$BIN"
check_audit "R" "$DB" "$PRED_OK"
is "$(sqlite_q "$DB" "SELECT count(*) FROM predictions WHERE request_id LIKE 'batch-%';")" 40 \
    "R: 40 audit rows from the concurrent batch"
is "$(stat -c %U "$DB" 2>/dev/null)" www-data "R: the audit DB was created by www-data"

# ===========================================================================
# M. mount "/ml" (-DMLFCGI_UNDER_ML)
# ===========================================================================
PORT=$(free_port) || bail_out "no free port"
setup_state ml
apache_env "$PORT"
PRED_OK=0
start_apache "$CONF" "$TEST_TMP/apache-ml.out" "$PORT" -DMLFCGI_UNDER_ML ||
    bail_out "M: Apache did not start: $(tail -5 "$TEST_TMP/apache-ml.out" "$STATE/apache-error.log" 2>/dev/null)"
track_log "$STATE/apache-error.log"
BASE_URL=http://127.0.0.1:$PORT
MOUNT=/ml
wait_http "$BASE_URL/ml/health" 15 || diag "M: /ml/health did not answer within 15 s"

http GET /ml/health
check_json "M: GET /ml/health" '.status == "healthy"'
http GET /ml/ready
check_json "M: GET /ml/ready" '.ready == true'
predict_json "{\"features\":$IRIS_SETOSA}"
check_prediction "M: POST /ml/predict" 0 setosa "$EXP_SETOSA"
predict_form "$(form_of "$IRIS_VIRGINICA")"
check_json "M: form POST /ml/predict -> virginica" '.label == "virginica"'
http GET /ml/nope
check_plain_error "M: GET /ml/nope (mlfcgi)" 404
http GET /health
status_is 404 "M: GET /health outside the mount is not routed to mlfcgi"
http GET /mlx/health
status_is 404 "M: GET /mlx/health is not routed to mlfcgi"
http GET /
like "$HTTP_STATUS $HTTP_BODY" '^200 .*mlfcgi-static-marker' "M: GET / is the static form"

stop_server_and_children "M" Apache "$BIN"
check_audit "M" "$DB" "$PRED_OK"

done_testing
