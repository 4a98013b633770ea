#!/bin/bash
# tests/integration/lighttpd.sh: mlfcgi behind a real lighttpd, over HTTP.
#
# Uses fcgi/lighttpd.conf (lighttpd spawns mlfcgi) and
# fcgi/lighttpd-external.conf (mlfcgi --listen run by this script):
#   A. mount "/", max-procs 2 sharing one audit DB, MLFCGI_MAX_BODY=4096:
#      every endpoint, every error, 200 concurrent requests, then SIGTERM and
#      the audit DB (row count = 200 responses of /predict, integrity, ts).
#   B. mount "/ml" (MLFCGI_PREFIX), a model with an exclusive maximum
#      (for less_than).
#   C. lighttpd-external.conf in front of `mlfcgi --listen 127.0.0.1:PORT`,
#      which then gets SIGTERM under load: exit 0, every 200 audited.
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
CONF=$SRCDIR/fcgi/lighttpd.conf
CONF_EXT=$SRCDIR/fcgi/lighttpd-external.conf
for f in "$MODEL" "$CONF" "$CONF_EXT"; do [ -r "$f" ] || bail_out "missing $f"; done

make_tmp
MAX_BODY=4096

# Static files: a stand-in form page, so "/" can be told from mlfcgi.
mkdir -p "$TEST_TMP/www"
printf '<!doctype html><title>form</title><p>mlfcgi-static-marker</p>\n' >"$TEST_TMP/www/index.html"

# Expected probabilities, computed from the model file itself.
EXP_SETOSA=$(expected_probs "$MODEL" "$IRIS_SETOSA")
EXP_VERSICOLOR=$(expected_probs "$MODEL" "$IRIS_VERSICOLOR")
EXP_VIRGINICA=$(expected_probs "$MODEL" "$IRIS_VIRGINICA")
[ -n "$EXP_SETOSA" ] || bail_out "cannot compute expected probabilities from $MODEL"

# ===========================================================================
# A. mount "/", two processes, small max-body
# ===========================================================================
PORT_A=$(free_port) || bail_out "no free port"
STATE_A=$TEST_TMP/a
DB_A=$STATE_A/audit.db
export MLFCGI_PORT=$PORT_A MLFCGI_BINARY=$MLFCGI_BIN MLFCGI_MODEL=$MODEL \
       MLFCGI_STATE_DIR=$STATE_A MLFCGI_AUDIT_DB=$DB_A MLFCGI_WWW=$TEST_TMP/www \
       MLFCGI_MAX_PROCS=2 MLFCGI_MAX_BODY=$MAX_BODY MLFCGI_THREADS=4
lighttpd -tt -f "$CONF" >"$TEST_TMP/conftest.log" 2>&1
ok "A: lighttpd -tt accepts fcgi/lighttpd.conf" test $? -eq 0
start_lighttpd "$CONF" "$TEST_TMP/lighttpd-a.out" "$PORT_A" ||
    bail_out "A: lighttpd did not start: $(tail -5 "$TEST_TMP/lighttpd-a.out" "$STATE_A/lighttpd-error.log" 2>/dev/null)"
track_log "$STATE_A/lighttpd-error.log"
BASE_URL=http://127.0.0.1:$PORT_A
wait_http "$BASE_URL/health" 10 || diag "A: /health did not answer within 10 s"

# --- static form and routing ---------------------------------------------
http GET /
status_is 200 "A: GET / (static form) 200"
like "$HTTP_BODY" mlfcgi-static-marker "A: GET / is served from the www directory"
http GET /index.html
like "$HTTP_STATUS $HTTP_BODY" '^200 .*mlfcgi-static-marker' "A: GET /index.html is the static form"
http GET /ml/predict
check_plain_error "A: GET /ml/predict on a root mount is mlfcgi's 404 (fix-root-scriptname)" 404

# --- health / ready ----------------------------------------------------------
http GET /health
status_is 200 "A: GET /health 200"
like "$(hdr Content-Type)" '^application/json' "A: /health Content-Type JSON"
check_json "A: /health body" '. == {"status":"healthy","model_loaded":true}'
http HEAD /health
status_is 200 "A: HEAD /health 200"
http GET /ready
status_is 200 "A: GET /ready 200"
check_json "A: /ready body {\"ready\":true}" '.ready == true'
http HEAD /ready
status_is 200 "A: HEAD /ready 200"

# --- predictions ---------------------------------------------------------------
predict_json "{\"features\":$IRIS_SETOSA}"
check_prediction "A: positional JSON setosa" 0 setosa "$EXP_SETOSA"
POS_PROBS=$(jb -c .probabilities)
predict_json "{\"features\":$IRIS_VERSICOLOR}"
check_prediction "A: positional JSON versicolor" 1 versicolor "$EXP_VERSICOLOR"
predict_json "{\"features\":$IRIS_VIRGINICA}"
check_prediction "A: positional JSON virginica" 2 virginica "$EXP_VIRGINICA"

predict_json "$(named_json "$IRIS_SETOSA")"
check_prediction "A: named JSON setosa" 0 setosa "$EXP_SETOSA"
is "$(jb -c .probabilities)" "$POS_PROBS" "A: named and positional JSON give identical probabilities"
predict_json '{"petal_width":2.3,"petal_length":5.2,"sepal_width":3.0,"sepal_length":6.7}'
check_json "A: named JSON in another key order -> virginica" '.label == "virginica"'

predict_form "$(form_of "$IRIS_SETOSA")"
check_prediction "A: form-urlencoded setosa" 0 setosa "$EXP_SETOSA"
predict_form "$(form_of "$IRIS_VIRGINICA")"
check_prediction "A: form-urlencoded virginica" 2 virginica "$EXP_VIRGINICA"
predict_form 'petal_width=0.2&petal_length=1%2E4&sepal_width=3.5&sepal_length=5.1'
check_json "A: form with percent-encoding and another field order -> setosa" '.label == "setosa"'

predict --data-binary "{\"features\":$IRIS_SETOSA}" -H 'Content-Type: application/json; charset=utf-8'
status_is 200 "A: Content-Type application/json; charset=utf-8 -> 200"
predict --data-binary "{\"features\":$IRIS_SETOSA}" -H 'Content-Type: application/json;charset=UTF-8'
status_is 200 "A: Content-Type application/json;charset=UTF-8 -> 200"
predict --data-binary "{\"features\":$IRIS_SETOSA}" -H 'Content-Type:'
status_is 200 "A: no Content-Type is taken as JSON -> 200"
check_json "A: no Content-Type -> setosa" '.label == "setosa"'
predict_json "{\"features\":$IRIS_SETOSA}" -H 'Transfer-Encoding: chunked'
status_is 200 "A: chunked request body -> 200"
predict_json '{"features":[5,3,1,0]}'
status_is 200 "A: integers and a 0 lower bound (petal_width >= 0) accepted"
predict_json '{"features":[10,10,7,3]}'
status_is 200 "A: every inclusive maximum accepted (10,10,7,3)"
predict_json '{"features":[5.1e0,35e-1,0.14E1,2E-1]}'
check_json "A: exponent notation accepted -> setosa" '.label == "setosa"'
predict_json "  {\"features\" : $IRIS_SETOSA }  "
status_is 200 "A: JSON with surrounding whitespace -> 200"

# --- X-Request-Id ----------------------------------------------------------------
RID=Client.req-ID_0001
predict_json "{\"features\":$IRIS_SETOSA}" -H "X-Request-Id: $RID"
is "$(hdr X-Request-Id)" "$RID" "A: well-formed X-Request-Id echoed in the header"
is "$(jb .request_id)" "$RID" "A: well-formed X-Request-Id echoed as request_id"
RID128=$(printf 'r%.0s' $(seq 128))
predict_json "{\"features\":$IRIS_SETOSA}" -H "X-Request-Id: $RID128"
is "$(jb .request_id)" "$RID128" "A: 128-character X-Request-Id honoured"
predict_json "{\"features\":$IRIS_SETOSA}" -H "X-Request-Id: ${RID128}x"
GEN1=$(jb .request_id)
isnt "$GEN1" "${RID128}x" "A: 129-character X-Request-Id replaced"
like "$GEN1" '^[A-Za-z0-9._-]{1,128}$' "A: replacement request_id is well-formed"
is "$(hdr X-Request-Id)" "$GEN1" "A: replacement id is in the header too"
predict_json "{\"features\":$IRIS_SETOSA}" -H 'X-Request-Id: bad id/1'
GEN2=$(jb .request_id)
isnt "$GEN2" 'bad id/1' "A: X-Request-Id with bad characters replaced"
like "$GEN2" '^[A-Za-z0-9._-]{1,128}$' "A: replacement request_id well-formed"
isnt "$GEN1" "$GEN2" "A: generated request ids differ"

# --- 422: validation ----------------------------------------------------------
S='"sepal_length":5.1,"sepal_width":3.5,"petal_length":1.4'
predict_json "{$S}"
check_422 "A: missing petal_width" missing '["body","petal_width"]' 1
predict_json '{}'
check_422 "A: {} -> missing" missing '["body","sepal_length"]' 4
check_json "A: {} lists all four missing fields" \
    '[.detail[] | select(.type == "missing") | .loc[1]] | sort == ["petal_length","petal_width","sepal_length","sepal_width"]'
predict_json "{$S,\"petal_width\":\"0.2\"}"
check_422 "A: number as a JSON string" float_type '["body","petal_width"]' 1
check_json "A: float_type echoes the input" '.detail[0].input == "0.2"'
for v in null true '[0.2]' '{"v":0.2}'; do
    predict_json "{$S,\"petal_width\":$v}"
    check_422 "A: petal_width $v" float_type '["body","petal_width"]' 1
done
predict_json '{"features":[5.1,"3.5",1.4,0.2]}'
status_is 422 "A: string inside features -> 422"
check_json "A: string inside features -> float_type" 'any(.detail[]; .type == "float_type")'
predict_json '{"sepal_length":0,"sepal_width":3.5,"petal_length":1.4,"petal_width":0.2}'
check_422 "A: sepal_length 0 (exclusive minimum)" greater_than '["body","sepal_length"]' 1
predict_json '{"sepal_length":5.1,"sepal_width":-1,"petal_length":1.4,"petal_width":0.2}'
check_422 "A: sepal_width -1" greater_than '["body","sepal_width"]' 1
predict_json "{$S,\"petal_width\":-0.01}"
check_422 "A: petal_width -0.01 (inclusive minimum)" greater_than_equal '["body","petal_width"]' 1
predict_json '{"sepal_length":5.1,"sepal_width":10.5,"petal_length":1.4,"petal_width":0.2}'
check_422 "A: sepal_width 10.5" less_than_equal '["body","sepal_width"]' 1
predict_json "{$S,\"petal_width\":3.01}"
check_422 "A: petal_width 3.01" less_than_equal '["body","petal_width"]' 1
predict_json "{$S,\"petal_width\":1e999}"
check_422 "A: 1e999" finite_number '["body","petal_width"]' 1
predict_json "{$S,\"petal_width\":-1e999}"
check_422 "A: -1e999" finite_number '["body","petal_width"]' 1
predict_json '{"features":[5.1,3.5,1.4]}'
check_422 "A: three features" too_short '["body","features"]' 1
predict_json '{"features":[]}'
check_422 "A: no features" too_short '["body","features"]' 1
predict_json '{"features":[5.1,3.5,1.4,0.2,9]}'
check_422 "A: five features" too_long '["body","features"]' 1
BAD='{"features":[5.1,3.5,'
predict_json "$BAD"
status_is 422 "A: truncated JSON -> 422"
check_json "A: truncated JSON -> json_invalid at [\"body\", byte offset]" \
    '(.detail | length) == 1 and .detail[0].type == "json_invalid" and .detail[0].loc[0] == "body"
     and (.detail[0].loc[1] | type) == "number" and .detail[0].loc[1] >= 0 and .detail[0].loc[1] <= $n' \
    --argjson n "${#BAD}"
predict_json "{\"features\":$IRIS_SETOSA} x"
check_json "A: trailing garbage -> json_invalid" '.detail[0].type == "json_invalid"'
predict_json '{"features":[5.1,3.5,1.4,0.2],}'
check_json "A: trailing comma -> json_invalid" '.detail[0].type == "json_invalid"'
predict_json "{\"features\":$IRIS_SETOSA,\"foo\":1}"
check_422 "A: unknown field beside features" extra_forbidden '["body","foo"]' 1
predict_json "{$S,\"petal_width\":0.2,\"petal_colour\":\"blue\"}"
check_422 "A: unknown named field" extra_forbidden '["body","petal_colour"]' 1
for v in "$IRIS_SETOSA" '"x"' 42 null; do
    predict_json "$v"
    status_is 422 "A: body $v is not an object -> 422"
    check_json "A: body $v -> model_attributes_type" '.detail[0].type == "model_attributes_type"'
done
predict_json "{$S,\"petal_width\":0.2,\"sepal_length\":5.2}"
check_422 "A: duplicate JSON key" duplicate_field '["body","sepal_length"]'
predict_json '{"sepal_length":0,"sepal_width":11,"petal_length":-1,"petal_width":"x"}'
status_is 422 "A: four bad fields -> 422"
check_json "A: four bad fields -> all four listed with their own types" \
    '[.detail[] | [.loc[1], .type]] | sort == [["petal_length","greater_than_equal"],["petal_width","float_type"],["sepal_length","greater_than"],["sepal_width","less_than_equal"]]'
predict_json "{$S,\"colour\":\"x\"}"
status_is 422 "A: missing + unknown -> 422"
check_json "A: missing + unknown are both listed" \
    'any(.detail[]; .type == "missing" and .loc == ["body","petal_width"]) and any(.detail[]; .type == "extra_forbidden" and .loc == ["body","colour"])'

F='sepal_length=5.1&sepal_width=3.5&petal_length=1.4'
predict_form "$F&petal_width=abc"
check_422 "A: form value abc" float_parsing '["body","petal_width"]' 1
check_json "A: float_parsing echoes the input" '.detail[0].input == "abc"'
for v in nan NaN inf -inf Infinity 1e999; do
    predict_form "$F&petal_width=$v"
    check_422 "A: form value $v" finite_number '["body","petal_width"]' 1
done
predict_form "$F"
check_422 "A: form missing petal_width" missing '["body","petal_width"]' 1
predict_form "$F&petal_width=0.2&colour=red"
check_422 "A: form unknown field" extra_forbidden '["body","colour"]' 1
predict_form "$F&petal_width=0.2&petal_width=0.3"
check_422 "A: form duplicate field" duplicate_field '["body","petal_width"]'
predict_form "$F&petal_width=4"
check_422 "A: form petal_width 4" less_than_equal '["body","petal_width"]' 1

# --- 404 / 405 ---------------------------------------------------------------------
http GET /nope
check_plain_error "A: GET /nope" 404
http POST /nope -H 'Content-Type: application/json' --data-binary '{}'
check_plain_error "A: POST /nope" 404
http GET /predict/x
check_plain_error "A: GET /predict/x" 404
http GET /predict
check_plain_error "A: GET /predict" 405
is "$(hdr Allow)" "POST" "A: GET /predict -> Allow: POST"
http HEAD /predict
status_is 405 "A: HEAD /predict 405"
is "$(hdr Allow)" "POST" "A: HEAD /predict -> Allow: POST"
http PUT /predict -H 'Content-Type: application/json' --data-binary "{\"features\":$IRIS_SETOSA}"
status_is 405 "A: PUT /predict 405"
for p in /health /ready; do
    http POST "$p" -H 'Content-Type: application/json' --data-binary '{}'
    check_plain_error "A: POST $p" 405
    is "$(hdr Allow)" "GET, HEAD" "A: POST $p -> Allow: GET, HEAD"
done
http DELETE /health
status_is 405 "A: DELETE /health 405"

# --- 413 -----------------------------------------------------------------------
predict_json "$(pad_json "{\"features\":$IRIS_SETOSA}" $MAX_BODY)"
status_is 200 "A: body of exactly max-body ($MAX_BODY bytes) -> 200"
predict_json "$(pad_json "{\"features\":$IRIS_SETOSA}" $((MAX_BODY + 1)))"
check_plain_error "A: body of max-body + 1 bytes" 413
pad_json "{\"features\":$IRIS_SETOSA}" 200000 >"$TEST_TMP/big.json"
predict_json "@$TEST_TMP/big.json"
check_plain_error "A: 200 kB body (lighttpd spools it to a file)" 413
predict_form "$(pad_json "$(form_of "$IRIS_SETOSA")&x=" $((MAX_BODY + 10)) | tr ' ' a)"
check_plain_error "A: form body over max-body" 413

# --- 415 ------------------------------------------------------------------------
for ct in 'text/plain' 'application/xml' 'application/json; charset=iso-8859-1' 'application/jsonx'; do
    predict --data-binary "{\"features\":$IRIS_SETOSA}" -H "Content-Type: $ct"
    check_plain_error "A: Content-Type $ct" 415
done
predict -F sepal_length=5.1 -F sepal_width=3.5 -F petal_length=1.4 -F petal_width=0.2
check_plain_error "A: multipart/form-data" 415

# --- concurrency: 200 requests, 8 at a time --------------------------------------
BATCH=$TEST_TMP/batch
mkdir -p "$BATCH"
# Odd i: setosa as JSON; even i: virginica as a form.
load_config "$TEST_TMP/batch.cfg" "$BASE_URL/predict" 200 batch "" "$BATCH" \
    "$(form_of "$IRIS_VIRGINICA")"
run_load "$TEST_TMP/batch.cfg" "$TEST_TMP/batch.out" 8 120 ||
    diag "A: the 200 concurrent requests took over 120 s"
N200=$(load_count "$TEST_TMP/batch.out")
is "$N200" 200 "A: 200 concurrent requests all answered 200"
PRED_OK=$((PRED_OK + N200))
# BATCH/i.json must be the answer to request i.
GOOD_BATCH=$(count_answers batch 'if $n % 2 == 1 then "setosa" else "virginica" end' \
    "$BATCH"/*.json)
BAD_BATCH=$((200 - ${GOOD_BATCH:-0}))
is "$BAD_BATCH" 0 "A: every concurrent answer has the right label and its own request_id"

# --- stop, then the audit DB ---------------------------------------------------
stop_server_and_children "A" lighttpd "$MLFCGI_BIN"
check_audit "A" "$DB_A" "$PRED_OK"
is "$(sqlite_q "$DB_A" "SELECT count(*) FROM predictions WHERE request_id LIKE 'batch-%';")" 200 \
    "A: 200 audit rows from the concurrent batch"
is "$(sqlite_q "$DB_A" "SELECT count(DISTINCT pid) FROM predictions;")" 2 \
    "A: both mlfcgi processes (max-procs 2) wrote rows to the one audit DB"
ROW=$(sqlite_q "$DB_A" "SELECT output FROM predictions WHERE request_id = '$RID';")
like "$ROW" 'setosa' "A: the audit row of request $RID holds its output"
ROW=$(sqlite_q "$DB_A" "SELECT input FROM predictions WHERE request_id = '$RID';")
like "$ROW" '5\.1' "A: the audit row of request $RID holds its input"

# ===========================================================================
# B. mount "/ml", one process, a model with an exclusive maximum
# ===========================================================================
MODEL_B=$TEST_TMP/iris-exclusive.json
jq '.features[0] |= (del(.maximum) + {exclusiveMaximum: 10})' "$MODEL" >"$MODEL_B" ||
    bail_out "cannot write $MODEL_B"
PORT_B=$(free_port) || bail_out "no free port"
STATE_B=$TEST_TMP/b
DB_B=$STATE_B/audit.db
PRED_OK=0
export MLFCGI_PORT=$PORT_B MLFCGI_MODEL=$MODEL_B MLFCGI_STATE_DIR=$STATE_B \
       MLFCGI_AUDIT_DB=$DB_B MLFCGI_MAX_PROCS=1 MLFCGI_PREFIX=/ml
unset MLFCGI_MAX_BODY MLFCGI_THREADS
start_lighttpd "$CONF" "$TEST_TMP/lighttpd-b.out" "$PORT_B" ||
    bail_out "B: lighttpd did not start: $(tail -5 "$TEST_TMP/lighttpd-b.out" "$STATE_B/lighttpd-error.log" 2>/dev/null)"
track_log "$STATE_B/lighttpd-error.log"
BASE_URL=http://127.0.0.1:$PORT_B
wait_http "$BASE_URL/ml/health" 10 || diag "B: /ml/health did not answer within 10 s"

http GET /ml/health
status_is 200 "B: GET /ml/health 200"
check_json "B: /ml/health body" '.status == "healthy" and .model_loaded == true'
http GET /ml/ready
check_json "B: GET /ml/ready -> ready" '.ready == true'
MOUNT=/ml
predict_json "{\"features\":$IRIS_SETOSA}"
check_prediction "B: POST /ml/predict" 0 setosa "$EXP_SETOSA"
predict_form "$(form_of "$IRIS_VIRGINICA")"
check_json "B: form POST /ml/predict -> virginica" '.label == "virginica"'
predict_json '{"sepal_length":10,"sepal_width":3.5,"petal_length":1.4,"petal_width":0.2}'
check_422 "B: sepal_length 10 with exclusiveMaximum 10" less_than '["body","sepal_length"]' 1
predict_json '{"sepal_length":9.99,"sepal_width":3.5,"petal_length":1.4,"petal_width":0.2}'
status_is 200 "B: sepal_length 9.99 below the exclusive maximum -> 200"
http GET /ml/predict
status_is 405 "B: GET /ml/predict 405"
is "$(hdr Allow)" POST "B: GET /ml/predict -> Allow: POST"
http GET /ml/nope
check_plain_error "B: GET /ml/nope (mlfcgi)" 404
http GET /health
status_is 404 "B: GET /health outside the mount is not mlfcgi's"
like "$(hdr Content-Type)" '^text/html' "B: ... it is lighttpd's own 404 page"
http GET /mlx/health
status_is 404 "B: GET /mlx/health is not routed to mlfcgi"
http GET /
like "$HTTP_STATUS $HTTP_BODY" '^200 .*mlfcgi-static-marker' "B: GET / is still the static form"

stop_server_and_children "B" lighttpd "$MLFCGI_BIN"
check_audit "B" "$DB_B" "$PRED_OK"
MOUNT=""

# ===========================================================================
# C. lighttpd-external.conf in front of `mlfcgi --listen`
# ===========================================================================
PORT_C=$(free_port) || bail_out "no free port"
BPORT_C=$(free_port) || bail_out "no free port"
STATE_C=$TEST_TMP/c
DB_C=$STATE_C/audit.db
mkdir -p "$STATE_C"
PRED_OK=0
unset MLFCGI_PREFIX MLFCGI_MODEL MLFCGI_AUDIT_DB MLFCGI_BINARY MLFCGI_MAX_PROCS MLFCGI_PORT MLFCGI_STATE_DIR
"$MLFCGI_BIN" --listen "127.0.0.1:$BPORT_C" --model "$MODEL" --audit-db "$DB_C" \
    >"$STATE_C/mlfcgi.out" 2>&1 </dev/null &
MLFCGI_PID=$!
track_pid "$MLFCGI_PID"
track_log "$STATE_C/mlfcgi.out"
ok "C: mlfcgi --listen 127.0.0.1:$BPORT_C listens" wait_listening "$BPORT_C" "$MLFCGI_PID" 10
export MLFCGI_PORT=$PORT_C MLFCGI_STATE_DIR=$STATE_C MLFCGI_BACKEND=127.0.0.1:$BPORT_C
start_lighttpd "$CONF_EXT" "$TEST_TMP/lighttpd-c.out" "$PORT_C" ||
    bail_out "C: lighttpd did not start: $(tail -5 "$TEST_TMP/lighttpd-c.out" "$STATE_C/lighttpd-error.log" 2>/dev/null)"
track_log "$STATE_C/lighttpd-error.log"
BASE_URL=http://127.0.0.1:$PORT_C

http GET /health
check_json "C: GET /health through lighttpd-external.conf" '.status == "healthy"'
predict_json "{\"features\":$IRIS_VIRGINICA}" -H 'X-Request-Id: external-1'
check_prediction "C: POST /predict through lighttpd-external.conf" 2 virginica "$EXP_VIRGINICA"
predict_form "$(form_of "$IRIS_SETOSA")"
check_json "C: form POST /predict -> setosa" '.label == "setosa"'
http GET /nope
check_plain_error "C: GET /nope" 404
http GET /
like "$HTTP_STATUS $HTTP_BODY" '^200 .*mlfcgi-static-marker' "C: GET / is the static form"

# SIGTERM under load: 3000 requests, 8 at a time; once 20 are answered,
# mlfcgi gets SIGTERM. Requests sent after that fail (lighttpd answers 503),
# but every 200 must be a whole answer with its audit row, and mlfcgi must
# exit 0.
DRAIN=$TEST_TMP/drain
mkdir -p "$DRAIN"
load_config "$TEST_TMP/drain.cfg" "$BASE_URL/predict" 3000 drain "" "$DRAIN"
start_load "$TEST_TMP/drain.cfg" "$TEST_TMP/drain.out" 8
deadline=$((SECONDS + 20))
# An answer's file appears with its first byte (a glob: no process per poll).
answered() { local f=("$DRAIN"/*.json); [ -e "${f[0]}" ] && echo ${#f[@]} || echo 0; }
while [ "$(answered)" -lt 20 ] && [ $SECONDS -lt $deadline ]; do sleep 0.05; done
# Counted before the signal: a request answered (503) just after it must
# not count as answered before it.
SIGTERM_AT=$(answered)
kill -TERM "$MLFCGI_PID"
if wait_gone 20 "$MLFCGI_PID"; then
    wait "$MLFCGI_PID"; STOP_STATUS=$?
else
    kill -KILL "$MLFCGI_PID"; wait "$MLFCGI_PID"; STOP_STATUS=timeout
fi
wait_load 60 || diag "C: the load went on 60 s after mlfcgi stopped"
is "$STOP_STATUS" 0 "C: mlfcgi --listen exits 0 on SIGTERM under load"
N200=$(load_count "$TEST_TMP/drain.out")
diag "C: $SIGTERM_AT of 3000 answered at SIGTERM, $N200 answered 200 in all"
num_ok "$N200" ">=" "$SIGTERM_AT" "C: the requests answered before SIGTERM were 200s"
# The bodies of the 200s (lighttpd's 503 pages are not JSON).
mapfile -t OK_FILES < <(awk -v d="$DRAIN" '$1 == 200 { sub(/^drain-/, "", $2); print d "/" $2 ".json" }' \
    "$TEST_TMP/drain.out")
GOOD=$(count_answers drain '"setosa"' "${OK_FILES[@]}")
is "${GOOD:-0}" "$N200" "C: every 200 during shutdown is a whole, correct answer"
PRED_OK=$((PRED_OK + N200))

stop_pid "$SERVER_PID" 15
is "$STOP_STATUS" 0 "C: lighttpd exits 0 on SIGTERM"
check_audit "C" "$DB_C" "$PRED_OK"

done_testing
