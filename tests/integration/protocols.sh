#!/usr/bin/env bash
# protocols.sh: the protocols existing clients speak, each tested with a
# request taken from its own documentation (adapted to the iris model):
# KServe Open Inference Protocol v2, the MLflow scoring server, and
# TensorFlow Serving's REST API. Drives `mlfcgi --listen` with cgi-fcgi.
# TAP output.
set -u
here=$(cd "$(dirname "$0")" && pwd)
SRCDIR=${SRCDIR:-$(cd "$here/../.." && pwd)}
MLFCGI_BIN=${MLFCGI_BIN:-$SRCDIR/mlfcgi}
tmp=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT

n=0 failed=0
ok() {
	n=$((n + 1))
	if [ "$1" -eq 0 ]; then echo "ok $n - $2"
	else echo "not ok $n - $2"; failed=$((failed + 1)); fi
}
sock=$tmp/p.sock
# fcgi METHOD PATH [BODY [CONTENT_TYPE]]: prints the body; status in $tmp/status
fcgi() {
	local out body=${3:-}
	out=$(printf '%s' "$body" | env -i REQUEST_METHOD="$1" SCRIPT_NAME="" \
	    PATH_INFO="$2" CONTENT_TYPE="${4:-application/json}" \
	    CONTENT_LENGTH="${#body}" cgi-fcgi -bind -connect "$sock" 2>/dev/null)
	sed -n 's/^Status: \([0-9]*\).*/\1/p' <<<"$out" | head -1 > "$tmp/status"
	sed '1,/^\r\{0,1\}$/d' <<<"$out"
}
status() { cat "$tmp/status"; }

echo "1..25"
"$MLFCGI_BIN" --model "$SRCDIR/models/iris.json" --listen "$sock" \
    --audit-db "$tmp/audit.db" 2>"$tmp/err" &
pid=$!
for _ in $(seq 600); do [ -n "$(fcgi GET /health)" ] && break; sleep 0.05; done	# <= 30 s: slow under valgrind

# What /predict says for the rows used below, to compare with.
ref=$(fcgi POST /predict '{"instances":[[6.8,2.8,4.8,1.4],[6.0,3.4,4.5,1.6],[5.1,3.5,1.4,0.2]]}')
labels=$(jq -c '[.predictions[].prediction]' <<<"$ref")
probs=$(jq -c '[.predictions[].probabilities | to_entries[] | .value]' <<<"$ref")

# --- KServe v2 (kserve.github.io, "Deploy sklearn with the V2 protocol")
out=$(fcgi GET /v2/health/live)
[ "$(status)" = 200 ] && [ "$(jq -r .live <<<"$out")" = true ]; ok $? "v2: /v2/health/live"
out=$(fcgi GET /v2/health/ready)
[ "$(status)" = 200 ] && [ "$(jq -r .ready <<<"$out")" = true ]; ok $? "v2: /v2/health/ready"
out=$(fcgi GET /v2)
[ "$(jq -r .name <<<"$out")" = mlfcgi ]; ok $? "v2: server metadata"
out=$(fcgi GET /v2/models/iris)
[ "$(jq -c '[.name, .inputs[0].shape, [.outputs[].name]]' <<<"$out")" = '["iris",[-1,4],["predict","probabilities"]]' ]
ok $? "v2: model metadata ($(jq -c . <<<"$out" | head -c 200))"
out=$(fcgi GET /v2/models/iris/versions/1.0.0/ready)
[ "$(status)" = 200 ] && [ "$(jq -r .ready <<<"$out")" = true ]; ok $? "v2: model version ready"
infer='{"inputs":[{"name":"input-0","shape":[2,4],"datatype":"FP32","data":[[6.8,2.8,4.8,1.4],[6.0,3.4,4.5,1.6]]}]}'
out=$(fcgi POST /v2/models/iris/infer "$infer")
got=$(jq -c '.outputs[] | select(.name == "predict") | [.datatype, .shape, .data]' <<<"$out")
[ "$(status)" = 200 ] && [ "$got" = "[\"INT64\",[2],$(jq -c '.[0:2]' <<<"$labels")]" ]
ok $? "v2: infer, the documented request ($got)"
out=$(fcgi POST /v2/models/iris/versions/1.0.0/infer \
    '{"id":"req-7","inputs":[{"name":"input-0","shape":[3,4],"datatype":"FP64","data":[6.8,2.8,4.8,1.4,6.0,3.4,4.5,1.6,5.1,3.5,1.4,0.2]}]}')
[ "$(jq -r .id <<<"$out")" = req-7 ] && [ "$(jq -c '.outputs[] | select(.name == "probabilities") | .shape' <<<"$out")" = "[3,3]" ]
ok $? "v2: flat data, FP64, id echoed, probabilities [3,3]"
[ "$(jq -c '.outputs[] | select(.name == "probabilities") | .data' <<<"$out")" = "$probs" ]
ok $? "v2: FP64 probabilities are /predict's"
out=$(fcgi POST /v2/models/iris/infer '{"inputs":[{"name":"sepal_length","shape":[1],"datatype":"FP64","data":[5.1]},{"name":"sepal_width","shape":[1],"datatype":"FP64","data":[3.5]},{"name":"petal_length","shape":[1],"datatype":"FP64","data":[1.4]},{"name":"petal_width","shape":[1],"datatype":"FP64","data":[0.2]}],"outputs":[{"name":"predict"}]}')
[ "$(jq -c '[.outputs[].name, .outputs[0].data[0]]' <<<"$out")" = '["predict",0]' ]
ok $? "v2: one tensor per feature, outputs filtered to predict"
out=$(fcgi POST /v2/models/iris/infer '{"inputs":[{"name":"input-0","shape":[1,4],"datatype":"FP32","data":[5.1,3.5,1.4,-1]}]}')
[ "$(status)" = 400 ] && jq -e '.error | test("inputs.0.3: Input should be greater than or equal to 0")' <<<"$out" >/dev/null
ok $? "v2: an out-of-bounds value is 400 {\"error\"} naming the place ($(jq -r .error <<<"$out"))"
out=$(fcgi POST /v2/models/iris/infer '{"inputs":[{"name":"input-0","shape":[2,4],"datatype":"FP32","data":[1,2,3]}]}')
[ "$(status)" = 400 ] && jq -e '.error | test("shape")' <<<"$out" >/dev/null; ok $? "v2: data not matching the shape is 400"
out=$(fcgi POST /v2/models/nope/infer "$infer")
[ "$(status)" = 404 ] && jq -e .error <<<"$out" >/dev/null; ok $? "v2: unknown model is 404 {\"error\"}"

# --- MLflow scoring server (mlflow.org, "Deploy MLflow models", REST API)
out=$(fcgi GET /ping); [ "$(status)" = 200 ]; ok $? "mlflow: /ping"
out=$(fcgi GET /version); [ "$(status)" = 200 ] && [ -n "$out" ]; ok $? "mlflow: /version ($out)"
out=$(fcgi POST /invocations '{"dataframe_split": {"columns": ["sepal_length", "sepal_width", "petal_length", "petal_width"], "data": [[6.8, 2.8, 4.8, 1.4], [6.0, 3.4, 4.5, 1.6], [5.1, 3.5, 1.4, 0.2]]}}')
[ "$(jq -c .predictions <<<"$out")" = "$labels" ]; ok $? "mlflow: dataframe_split ($out)"
out=$(fcgi POST /invocations '{"dataframe_records": [{"sepal_length": 6.8, "sepal_width": 2.8, "petal_length": 4.8, "petal_width": 1.4}, {"sepal_length": 6.0, "sepal_width": 3.4, "petal_length": 4.5, "petal_width": 1.6}, {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}]}')
[ "$(jq -c .predictions <<<"$out")" = "$labels" ]; ok $? "mlflow: dataframe_records"
out=$(fcgi POST /invocations '{"inputs": {"sepal_length": [6.8, 6.0, 5.1], "sepal_width": [2.8, 3.4, 3.5], "petal_length": [4.8, 4.5, 1.4], "petal_width": [1.4, 1.6, 0.2]}}')
[ "$(jq -c .predictions <<<"$out")" = "$labels" ]; ok $? "mlflow: inputs as columns"
out=$(fcgi POST /invocations '{"instances": [[6.8, 2.8, 4.8, 1.4], [6.0, 3.4, 4.5, 1.6], [5.1, 3.5, 1.4, 0.2]]}')
[ "$(jq -c .predictions <<<"$out")" = "$labels" ]; ok $? "mlflow: instances"
csv=$'sepal_length,sepal_width,petal_length,petal_width\r\n6.8,2.8,4.8,1.4\r\n6.0,3.4,4.5,1.6\r\n"5.1",3.5,1.4,0.2\r\n'
out=$(fcgi POST /invocations "$csv" text/csv)
[ "$(jq -c .predictions <<<"$out")" = "$labels" ]; ok $? "mlflow: text/csv ($out)"
out=$(fcgi POST /invocations '{"instances": [[1,2,3,4]], "inputs": [[1,2,3,4]]}')
[ "$(status)" = 400 ] && [ "$(jq -r .error_code <<<"$out")" = BAD_REQUEST ]; ok $? "mlflow: two input keys is 400 BAD_REQUEST"

# --- TensorFlow Serving REST (tensorflow.org/tfx/serving/api_rest)
out=$(fcgi GET /v1/models/iris)
[ "$(jq -c '.model_version_status[0] | [.version, .state, .status.error_code]' <<<"$out")" = '["1.0.0","AVAILABLE","OK"]' ]
ok $? "tfs: model status"
out=$(fcgi POST /v1/models/iris:predict '{"signature_name": "serving_default", "instances": [[6.8, 2.8, 4.8, 1.4], [6.0, 3.4, 4.5, 1.6], [5.1, 3.5, 1.4, 0.2]]}')
[ "$(jq -c '[.predictions[][]]' <<<"$out")" = "$probs" ]; ok $? "tfs: :predict, row format"
out=$(fcgi POST /v1/models/iris/versions/1.0.0:predict '{"inputs": {"sepal_length": [5.1], "sepal_width": [3.5], "petal_length": [1.4], "petal_width": [0.2]}}')
[ "$(jq -c '.predictions | length' <<<"$out")" = 1 ]; ok $? "tfs: versioned :predict, columnar inputs"
out=$(fcgi POST /v1/models/iris:predict '{"instances": [[5.1, 3.5, 1.4]]}')
[ "$(status)" = 400 ] && jq -e .error <<<"$out" >/dev/null; ok $? "tfs: a short row is 400 {\"error\"}"

kill -TERM "$pid"; wait "$pid"; pid=
rows=$(sqlite3 "$tmp/audit.db" 'SELECT count(*) FROM predictions')
[ "$rows" = 28 ]; ok $? "every protocol's predictions are audited ($rows rows)"
[ "$failed" -eq 0 ]
