#!/bin/bash
# tests/integration/openapi.sh: GET /openapi.json, and the docs' static files.
#
#   D. The document for a model directory holding iris in two versions (one
#      with a "+"), a regression model with integer, category, nullable and
#      exclusive-bound features, two models whose names would give the same
#      component name, and one with features called "features" and
#      "instances": the structure OpenAPI 3.1 requires, every model's paths,
#      request and response schemas taken from the model files, examples,
#      the error shapes. mlfcgi runs as a CGI program here.
#   V. With Node (tests/browser/node-env.sh): the document validates as
#      OpenAPI 3.1 with @apidevtools/swagger-parser, its schemas compile with
#      ajv, its examples pass its own schemas, and real answers of mlfcgi
#      (200, 422, 404, 415, 413) pass the schemas it gives for them.
#   S. fcgi/lighttpd.conf and (as root) fcgi/apache-fcgid.conf, each at "/"
#      and under "/ml": <mount>/docs/ is www/docs/ (Swagger UI, LICENSE),
#      <mount>/docs redirects there, <mount>/openapi.json is mlfcgi's.
#
# Env: MLFCGI_BIN, SRCDIR, BUILDDIR. Needs: jq, curl, lighttpd; optional:
# node (V), apache2 + libapache2-mod-fcgid as root (S, Apache).

. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
. "$SRCDIR/tests/browser/node-env.sh"

require_cmd jq jq
require_cmd curl curl
require_cmd lighttpd lighttpd
[ -x "$MLFCGI_BIN" ] || bail_out "mlfcgi binary not found or not executable: $MLFCGI_BIN"
IRIS=$SRCDIR/models/iris.json
[ -r "$IRIS" ] || bail_out "missing $IRIS"
make_tmp

# ---------------------------------------------------------------------------
# The models.
M=$TEST_TMP/models
mkdir -p "$M/iris/1.0.0" "$M/iris/2.0.0+exp.1" "$M/a_b/c" "$M/a/b_c"
cp "$IRIS" "$M/iris/1.0.0/model.json"
jq '.version = "2.0.0+exp.1" | .estimator.coef |= map(map(. * 0.5))' "$IRIS" \
    >"$M/iris/2.0.0+exp.1/model.json"
jq '.name = "a_b" | .version = "c"' "$IRIS" >"$M/a_b/c/model.json"
jq '.name = "a" | .version = "b_c"' "$IRIS" >"$M/a/b_c/model.json"
cat >"$M/house.json" <<'EOF'
{
  "format": "mlfcgi-model/1",
  "name": "house",
  "version": "3",
  "task": "regression",
  "description": "A price from area, rooms, city, style and age.",
  "features": [
    {"name": "area", "type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 10000, "description": "square metres"},
    {"name": "rooms", "type": "integer", "minimum": 1, "maximum": 20},
    {"name": "city", "type": "category", "categories": ["paris", "lyon", "nantes"]},
    {"name": "style", "type": "category", "categories": ["old", "new"], "unknown": "ignore", "required": false, "default": "old"},
    {"name": "age", "type": "number", "minimum": 0, "nullable": true, "required": false, "default": null}
  ],
  "estimator": {"type": "linear_regression", "coef": [2.5, 10, 3, 1, 0.5], "intercept": 7},
  "test_input": [80, 3, "lyon", "brutalist", 12.5]
}
EOF
cat >"$M/odd.json" <<'EOF'
{
  "format": "mlfcgi-model/1",
  "name": "odd",
  "version": "1",
  "task": "classification",
  "features": [
    {"name": "features", "type": "number"},
    {"name": "instances", "type": "integer", "minimum": 0}
  ],
  "classes": ["no", "yes"],
  "class_names": ["no", "yes"],
  "estimator": {"type": "logistic_regression", "coef": [[0.5, -1]], "intercept": [0.25]}
}
EOF

# cgi METHOD PATH [CONTENT_TYPE BODY]: one request to mlfcgi as a CGI program
# serving $M with iris 1.0.0 as default; sets HTTP_STATUS, HTTP_HEADERS,
# HTTP_BODY as lib.sh's http does.
cgi() {
    local out body=${4-}
    printf '%s' "$body" >"$TEST_TMP/cgi.in"
    out=$(env -i PATH="$PATH" REQUEST_METHOD="$1" SCRIPT_NAME="" PATH_INFO="$2" \
          CONTENT_TYPE="${3-}" CONTENT_LENGTH="$(wc -c <"$TEST_TMP/cgi.in")" \
          MLFCGI_MODEL_DIR="$M" MLFCGI_DEFAULT_MODEL=iris:1.0.0 MLFCGI_MAX_BODY=4096 \
          "$MLFCGI_BIN" <"$TEST_TMP/cgi.in" 2>>"$TEST_TMP/cgi.err"; echo x)
    out=${out%x}
    HTTP_HEADERS=$(sed -n '1,/^\r\{0,1\}$/p' <<<"$out" | tr -d '\r')
    HTTP_BODY=$(sed '1,/^\r\{0,1\}$/d' <<<"$out")
    HTTP_STATUS=$(sed -n 's/^Status: \([0-9]*\).*/\1/p' <<<"$HTTP_HEADERS" | head -1)
    _HTTP_DESC="CGI $1 $2"
}
track_log "$TEST_TMP/cgi.err"

# ===========================================================================
# D. The document
# ===========================================================================
cgi GET /openapi.json
status_is 200 "D: GET /openapi.json 200"
like "$(hdr Content-Type)" '^application/json' "D: Content-Type application/json"
DOC=$TEST_TMP/openapi.json
printf '%s' "$HTTP_BODY" >"$DOC"
jq -e . "$DOC" >/dev/null 2>&1 || bail_out "the document is not JSON: $(head -c 300 "$DOC")"
pass "D: the document is JSON"

# jd DESC FILTER [JQ ARGS]: a test that FILTER is true on the document.
jd() {
    local d=$1 f=$2; shift 2
    if jq -e "$@" "$f" "$DOC" >/dev/null 2>&1; then pass "$d"
    else fail "$d" "jq filter false on the document: $f"; fi
}
VERSION=$("$MLFCGI_BIN" --version | awk '{print $2}')
jd "D: openapi 3.1.0, info.title mlfcgi, info.version $VERSION (the package's)" \
    '.openapi == "3.1.0" and .info.title == "mlfcgi" and .info.version == $v' --arg v "$VERSION"
jd "D: servers: one, relative to the document (\".\"), so a prefix mount works" \
    '.servers == [{"url": ".", "description": .servers[0].description}]'
jd "D: paths: /predict, /models, /models/{name}, /health, /ready" \
    '.paths | has("/predict") and has("/models") and has("/models/{name}") and has("/health") and has("/ready")'
# What mlfcgi says is loaded, and the paths it must have.
cgi GET /models
MODELS=$HTTP_BODY
WANT=$(jq -c '[.models[] | select(.name) | .name as $n |
               "/models/\($n)/predict", (.versions[] | "/models/\($n)/versions/\(.version)/predict")]
              | sort' <<<"$MODELS")
is "$(jq -c '[.paths | keys[] | select(startswith("/models/") and endswith("/predict"))] | sort' "$DOC")" \
    "$WANT" "D: a predict path per loaded model and per version, and no other"
is "$(jq -r '[.paths | keys[] | select(test("/versions/"))] | length' "$DOC")" 6 \
    "D: six model versions documented (iris x2, house, odd, a_b, a)"
jd "D: every predict operation: POST with JSON and form bodies and 200/408/413/415/422/500" \
    '[.paths | to_entries[] | select(.key | endswith("/predict")) | .value | keys == ["post"] and
      (.post.requestBody.content | keys == ["application/json", "application/x-www-form-urlencoded"]) and
      (.post.responses | has("200") and has("408") and has("413") and has("415") and has("422") and has("500"))] | all'
jd "D: model paths answer 404 (a reload may remove the model); /predict 503 (none loaded)" \
    '([.paths | to_entries[] | select(.key | startswith("/models/") and endswith("/predict")) | .value.post.responses | has("404")] | all)
     and (.paths["/predict"].post.responses | has("503"))'
jd "D: operationIds are unique" \
    '[.paths[][] | .operationId] | length == (unique | length)'
jd "D: component names match ^[a-zA-Z0-9._-]+\$" \
    '[.components[] | keys[]] | all(test("^[a-zA-Z0-9._-]+$"))'
# Every $ref points at something (no key of the document holds "/" or "~").
is "$(jq -c '. as $d | [.. | objects | .["$ref"]? // empty] | unique
             | map(select(. as $r | (startswith("#/") and ($d | getpath($r[2:] | split("/")) != null)) | not))' \
        "$DOC" 2>&1)" "[]" \
   "D: every \$ref ($(jq '[.. | objects | .["$ref"]? // empty] | unique | length' "$DOC") distinct) resolves in the document"

# Which components describe which path.
ref_of() {  # ref_of PATH: the component key prefix of PATH's request schema
    jq -r --arg p "$1" '.paths[$p].post.requestBody.content["application/json"].schema["$ref"]
        | sub("^#/components/schemas/"; "") | sub("[.]Request$"; "")' "$DOC"
}
K_IRIS1=$(ref_of /models/iris/versions/1.0.0/predict)
K_IRIS2=$(ref_of "/models/iris/versions/2.0.0+exp.1/predict")
K_HOUSE=$(ref_of /models/house/versions/3/predict)
K_ODD=$(ref_of /models/odd/versions/1/predict)
K_AB=$(ref_of /models/a_b/versions/c/predict)
K_A=$(ref_of /models/a/versions/b_c/predict)
is "$(ref_of /predict)" "$K_IRIS1" "D: /predict documents the default model (iris 1.0.0)"
is "$(ref_of /models/iris/predict)" "$K_IRIS2" "D: /models/iris/predict documents the latest version (2.0.0+exp.1)"
isnt "$K_AB" "$K_A" "D: a_b c and a b_c get different component names ($K_AB, $K_A)"
like "$K_IRIS2" '^[A-Za-z0-9._-]+$' "D: a version with '+' gives a valid component name ($K_IRIS2)"

sch() { jq -c --arg k "$1" '.components.schemas[$k]' "$DOC"; }

# iris: each feature's schema is the model file's.
is "$(jq -cS '.components.schemas[$k] | [.properties | to_entries[] | {name: .key} + (.value | del(.description))]' \
        --arg k "$K_IRIS1.Features" "$DOC")" \
   "$(jq -cS '[.features[] | {name, type} + (with_entries(select(.key | test("imum$"))))]' "$IRIS")" \
   "D: iris features: names, types, minimum/maximum/exclusiveMinimum as in the model file"
jd "D: iris features: all required, no other field allowed" \
    '.components.schemas[$k] | .type == "object" and .required == ["sepal_length","sepal_width","petal_length","petal_width"]
     and .additionalProperties == false' --arg k "$K_IRIS1.Features"
jd "D: iris positional form: {\"features\": [4 values]} with each feature's schema" \
    '.components.schemas[$k] | .required == ["features"] and .additionalProperties == false and
     (.properties.features | .type == "array" and .minItems == 4 and .maxItems == 4 and .items == false and
      (.prefixItems | length == 4) and .prefixItems[1].exclusiveMinimum == 0)' --arg k "$K_IRIS1.FeatureList"
jd "D: iris batch form: {\"instances\": [1..1000 arrays or objects]}" \
    '.components.schemas[$k].properties.instances | .minItems == 1 and .maxItems == 1000 and (.items.oneOf | length == 2)' \
    --arg k "$K_IRIS1.Batch"
jd "D: iris request: oneOf named, positional, batch" \
    '[.components.schemas[$k].oneOf[]["$ref"]] == ["#/components/schemas/\($p).Features",
      "#/components/schemas/\($p).FeatureList", "#/components/schemas/\($p).Batch"]' \
    --arg k "$K_IRIS1.Request" --arg p "$K_IRIS1"
jd "D: iris form body: the named fields" \
    '.paths["/predict"].post.requestBody.content["application/x-www-form-urlencoded"].schema["$ref"]
     == "#/components/schemas/\($p).Features"' --arg p "$K_IRIS1"
# house: integer, category (enum; examples when unknown ones are accepted),
# nullable, exclusive maximum, defaults.
jd "D: house.area: number, exclusiveMinimum 0, exclusiveMaximum 10000, its description" \
    '.components.schemas[$k].properties.area == {"type":"number","exclusiveMinimum":0,"exclusiveMaximum":10000,"description":"square metres"}' \
    --arg k "$K_HOUSE.Features"
jd "D: house.rooms: integer 1..20" \
    '.components.schemas[$k].properties.rooms == {"type":"integer","minimum":1,"maximum":20}' --arg k "$K_HOUSE.Features"
jd "D: house.city: a string enum of its categories" \
    '.components.schemas[$k].properties.city == {"type":"string","enum":["paris","lyon","nantes"]}' --arg k "$K_HOUSE.Features"
jd "D: house.style (unknown categories ignored): string, categories as examples, default \"old\"" \
    '.components.schemas[$k].properties.style == {"type":"string","examples":["old","new"],"default":"old"}' --arg k "$K_HOUSE.Features"
jd "D: house.age: nullable number, minimum 0, default null" \
    '.components.schemas[$k].properties.age == {"type":["number","null"],"minimum":0,"default":null}' --arg k "$K_HOUSE.Features"
jd "D: house: required = the required features only" \
    '.components.schemas[$k].required == ["area","rooms","city"]' --arg k "$K_HOUSE.Features"
# odd: a feature called "features" / "instances" is that feature.
jd "D: odd (features called features, instances): no positional or batch form" \
    '(.components.schemas | has($k + ".FeatureList") or has($k + ".Batch") | not) and
     ([.components.schemas[$k + ".Request"].oneOf[]["$ref"]] == ["#/components/schemas/\($k).Features"])' --arg k "$K_ODD"

# Responses.
jd "D: iris prediction: prediction enum [0,1,2], label enum of the class names, confidence 0..1" \
    '.components.schemas[$k] | .properties.prediction.enum == [0,1,2] and
     .properties.label.enum == ["setosa","versicolor","virginica"] and
     .properties.confidence.minimum == 0 and .properties.confidence.maximum == 1' --arg k "$K_IRIS1.Prediction"
jd "D: iris prediction: probabilities has the class names as required properties" \
    '.components.schemas[$k].properties.probabilities | (.properties | keys_unsorted) == ["setosa","versicolor","virginica"]
     and .required == ["setosa","versicolor","virginica"] and .additionalProperties == false' --arg k "$K_IRIS1.Prediction"
jd "D: iris prediction: requires prediction, label, confidence, probabilities, model, version, request_id" \
    '.components.schemas[$k] | .required == ["prediction","label","confidence","probabilities","model","version","request_id"]
     and .properties.model.const == "iris" and .properties.version.const == "1.0.0"' --arg k "$K_IRIS1.Prediction"
jd "D: odd prediction: string classes" \
    '.components.schemas[$k].properties.prediction.enum == ["no","yes"]' --arg k "$K_ODD.Prediction"
jd "D: house prediction (regression): a number, no label" \
    '.components.schemas[$k] | .properties.prediction == {"type":"number"} and (.properties | has("label") | not)
     and .required == ["prediction","model","version","request_id"]' --arg k "$K_HOUSE.Prediction"
jd "D: batch answer: predictions array of the prediction's fields, plus model, version, request_id" \
    '.components.schemas[$k] | .required == ["predictions","model","version","request_id"] and
     .properties.predictions.items.required == ["prediction","label","confidence","probabilities"]' --arg k "$K_IRIS1.Predictions"
jd "D: 200 answers: oneOf the prediction and the batch answer, with the X-Request-Id header" \
    '.paths["/predict"].post.responses["200"] | (.content["application/json"].schema.oneOf | length == 2)
     and .headers["X-Request-Id"]["$ref"] == "#/components/headers/X-Request-Id"'
jd "D: 422 is FastAPI's HTTPValidationError: detail = [ValidationError {type, loc, msg}]" \
    '(.components.responses.ValidationFailed.content["application/json"].schema["$ref"] == "#/components/schemas/HTTPValidationError")
     and (.components.schemas.HTTPValidationError | .required == ["detail"] and
          .properties.detail.items["$ref"] == "#/components/schemas/ValidationError")
     and (.components.schemas.ValidationError | .required == ["type","loc","msg"] and
          .properties.loc.items.anyOf == [{"type":"string"},{"type":"integer"}])'
jd "D: 404, 405, 408, 413, 415, 500, 503 are {\"detail\": string}" \
    '([.components.responses | (.NotFound, .MethodNotAllowed, .RequestTimeout, .PayloadTooLarge, .UnsupportedMediaType, .ModelFailure, .NoModel)
       | .content["application/json"].schema["$ref"] == "#/components/schemas/HTTPError"] | all)
     and .components.schemas.HTTPError.properties.detail.type == "string"'
jd "D: /models/{name}: a path parameter listing the model names" \
    '.paths["/models/{name}"].get.parameters[0] | .in == "path" and .required and
     .schema.enum == ["a","a_b","house","iris","odd"]'

# Examples: the model's test input, in each form.
ex() { jq -c --arg p "$1" --arg e "$2" '.paths[$p].post.requestBody.content["application/json"].examples[$e].value' "$DOC"; }
is "$(ex /predict by_name)" \
   "$(jq -c '[.features[].name] as $n | [range($n | length) as $i | {($n[$i]): .test_input[$i]}] | add' "$IRIS")" \
   "D: iris example by name = the model file's test_input"
is "$(ex /predict in_order)" "$(jq -c '{features: .test_input}' "$IRIS")" \
   "D: iris example in schema order = {\"features\": test_input}"
is "$(ex /predict batch | jq -c '.instances | length')" 2 "D: iris batch example: two instances"
is "$(ex /models/house/predict by_name)" '{"area":80,"rooms":3,"city":"lyon","style":"(unknown)","age":12.5}' \
   "D: house example: categories as their strings, an ignored unknown one as a string too"
is "$(jq -c '.paths["/models/odd/predict"].post.requestBody.content["application/json"].examples | keys' "$DOC")" \
   '["by_name"]' "D: odd: only the by-name example"
jd "D: form examples: the test input by name" \
    '.paths["/models/house/predict"].post.requestBody.content["application/x-www-form-urlencoded"].example.city == "lyon"'

# The route itself.
cgi HEAD /openapi.json
status_is 200 "D: HEAD /openapi.json 200"
cgi POST /openapi.json application/json '{}'
status_is 405 "D: POST /openapi.json 405"
is "$(hdr Allow)" "GET, HEAD" "D: ... with Allow: GET, HEAD"
# /models/{name} shows category features the same way.
cgi GET /models/house
check_json "D: GET /models/house: city's schema is the enum" \
    '(.features[] | select(.name == "city") | .schema) == {"type":"string","enum":["paris","lyon","nantes"]}'

# ===========================================================================
# V. Validation with tools from elsewhere, and real answers
# ===========================================================================
# case_ DESC METHOD PATH CONTENT_TYPE BODY [DOC_PATH]: send it, keep the
# answer for V, to be checked against the schema of DOC_PATH (default PATH).
CASES=$TEST_TMP/cases.jsonl
: >"$CASES"
case_() {
    local d=$1 method=$2 path=$3
    cgi "$method" "$path" "$4" "$5"
    jq -c -n --arg d "$d ($HTTP_STATUS)" --arg m "$method" --arg p "${6:-$path}" --argjson s "${HTTP_STATUS:-0}" \
        --argjson b "$(jq -c . <<<"$HTTP_BODY" 2>/dev/null || echo null)" \
        '{desc: $d, method: $m, path: $p, status: $s, body: $b}' >>"$CASES"
}
# Every JSON example and form example of every predict path, as sent by a client.
while IFS=$'\t' read -r p e body; do
    case_ "V: POST $p with its example $e passes the documented 200 schema" POST "$p" application/json "$body"
    [ "$HTTP_STATUS" = 200 ] || fail "V: POST $p example $e is answered 200" "got $HTTP_STATUS: $HTTP_BODY"
done < <(jq -r '.paths | to_entries[] | select(.key | endswith("/predict")) | .key as $p
                | .value.post.requestBody.content["application/json"].examples | to_entries[]
                | [$p, .key, (.value.value | tojson)] | @tsv' "$DOC")
while IFS=$'\t' read -r p body; do
    case_ "V: POST $p as a form passes the documented 200 schema" POST "$p" \
        application/x-www-form-urlencoded "$body"
    [ "$HTTP_STATUS" = 200 ] || fail "V: POST $p form example is answered 200" "got $HTTP_STATUS: $HTTP_BODY"
done < <(jq -r '.paths | to_entries[] | select(.key | endswith("/predict")) | .key as $p
                | .value.post.requestBody.content["application/x-www-form-urlencoded"].example
                | [$p, (to_entries | map("\(.key)=\(.value // "")") | join("&"))] | @tsv' "$DOC")
pass "V: every documented example was sent ($(wc -l <"$CASES") requests)"
case_ "V: a 422 (missing, out of bounds, unknown category) passes HTTPValidationError" \
    POST /models/house/predict application/json '{"area": -1, "city": "rome"}'
case_ "V: a batch 422 passes HTTPValidationError" POST /predict application/json '{"instances": [[1, 2, 3]]}'
case_ "V: a 404 passes HTTPError" POST /models/iris/versions/9/predict application/json '{}' \
    /models/iris/versions/1.0.0/predict
case_ "V: a 415 passes HTTPError" POST /predict text/plain 'x'
case_ "V: a 413 passes HTTPError" POST /predict application/json "$(pad_json '{}' 5000)"
case_ "V: GET /models passes ModelList" GET /models "" ""
case_ "V: GET /models/house passes ModelInfo" GET /models/house "" "" "/models/{name}"
case_ "V: GET /health passes Health" GET /health "" ""
case_ "V: GET /ready passes Ready" GET /ready "" ""
jq -s . "$CASES" >"$TEST_TMP/cases.json"
is "$(jq -c '[.[].status] | .[-9:]' "$TEST_TMP/cases.json")" '[422,422,404,415,413,200,200,200,200]' \
    "V: the error cases got the statuses they test"

if node_env; then
    while IFS=$'\t' read -r res desc why; do
        case $res in
            ok) pass "$desc" ;;
            *) fail "$desc" "$why" ;;
        esac
    done < <(cd "$TEST_TMP" && node "$SRCDIR/tests/browser/openapi-check.js" "$DOC" "$TEST_TMP/cases.json" 2>&1 |
             awk '/^(ok|not ok)\t/ { sub(/\t/, "\tV: "); print; next }
                  { print "not ok\tV: node says: " $0 }')
else
    skip "V: the document validates as OpenAPI 3.1, answers pass its schemas" "$NODE_WHY"
fi

# ===========================================================================
# S. The docs behind lighttpd and Apache
# ===========================================================================
# check_docs LABEL MOUNT: /docs/, /docs, a Swagger UI file, the LICENSE and
# the document at MOUNT on BASE_URL.
check_docs() {
    local l=$1 mt=$2
    http GET "$mt/docs/"
    like "$HTTP_STATUS $(hdr Content-Type)" '^200 text/html' "$l: GET $mt/docs/ is HTML"
    like "$HTTP_BODY" 'swagger-ui-bundle[.]js' "$l: $mt/docs/ is www/docs/index.html (Swagger UI)"
    http GET "$mt/docs"
    like "$HTTP_STATUS $(hdr Location)" "^30[12] (http://[^/]*)?$mt/docs/\$" "$l: GET $mt/docs redirects to $mt/docs/"
    http GET "$mt/docs/swagger-ui-bundle.js"
    like "$HTTP_STATUS $(hdr Content-Type)" '^200 (text|application)/javascript' "$l: $mt/docs/swagger-ui-bundle.js is JavaScript"
    is "$(cmp -s <(curl -s "$BASE_URL$mt/docs/swagger-ui-bundle.js") "$SRCDIR/www/docs/swagger-ui-bundle.js" && echo same)" same \
        "$l: ... byte for byte www/docs/swagger-ui-bundle.js"
    http GET "$mt/docs/LICENSE"
    like "$HTTP_STATUS $HTTP_BODY" '^200 .*Apache License' "$l: $mt/docs/LICENSE is Swagger UI's licence"
    http GET "$mt/openapi.json"
    status_is 200 "$l: GET $mt/openapi.json 200 (mlfcgi)"
    check_json "$l: ... the OpenAPI document" '.openapi == "3.1.0" and (.paths | has("/predict"))'
    http GET "$mt/docsx"
    check_plain_error "$l: $mt/docsx is mlfcgi's (only /docs and /docs/... are static)" 404
}

for mt in "" /ml; do
    PORT=$(free_port) || bail_out "no free port"
    export MLFCGI_PORT=$PORT MLFCGI_BINARY=$MLFCGI_BIN MLFCGI_MODEL=$IRIS \
           MLFCGI_STATE_DIR=$TEST_TMP/l$mt MLFCGI_AUDIT_DB= MLFCGI_WWW=$SRCDIR/www \
           MLFCGI_PREFIX=$mt
    start_lighttpd "$SRCDIR/fcgi/lighttpd.conf" "$TEST_TMP/lighttpd.out" "$PORT" ||
        bail_out "lighttpd did not start: $(tail -5 "$TEST_TMP/lighttpd.out")"
    BASE_URL=http://127.0.0.1:$PORT
    wait_http "$BASE_URL$mt/health" 10 || diag "lighttpd$mt: /health did not answer within 10 s"
    check_docs "S: lighttpd${mt:+ $mt}" "$mt"
    http GET /
    like "$HTTP_STATUS $HTTP_BODY" '^200 .*<form' "S: lighttpd${mt:+ $mt}: / is still the form"
    stop_pid "$SERVER_PID" 20
    unset MLFCGI_PREFIX
done

if [ "$(id -u)" = 0 ] && command -v apache2 >/dev/null 2>&1 &&
   [ -r /usr/lib/apache2/modules/mod_fcgid.so ] && id www-data >/dev/null 2>&1; then
    # www-data must reach the binary, the model and www: copies in TEST_TMP.
    mkdir -p "$TEST_TMP/ap/bin" "$TEST_TMP/ap/www"
    cp "$MLFCGI_BIN" "$TEST_TMP/ap/bin/mlfcgi"
    cp -r "$SRCDIR/www/." "$TEST_TMP/ap/www/"
    cp "$IRIS" "$TEST_TMP/ap/iris.json"
    chmod -R a+rX "$TEST_TMP/ap"
    for mt in "" /ml; do
        PORT=$(free_port) || bail_out "no free port"
        st=$TEST_TMP/ap/state${mt#/}
        mkdir -p "$st" && chown www-data:www-data "$st"
        export MLFCGI_PORT=$PORT MLFCGI_BINARY=$TEST_TMP/ap/bin/mlfcgi \
               MLFCGI_MODEL=$TEST_TMP/ap/iris.json MLFCGI_AUDIT_DB= \
               MLFCGI_STATE_DIR=$st MLFCGI_WWW=$TEST_TMP/ap/www
        start_apache "$SRCDIR/fcgi/apache-fcgid.conf" "$TEST_TMP/apache.out" "$PORT" \
            ${mt:+-DMLFCGI_UNDER_ML} ||
            bail_out "Apache did not start: $(tail -5 "$TEST_TMP/apache.out" "$st/apache-error.log" 2>/dev/null)"
        track_log "$st/apache-error.log"
        BASE_URL=http://127.0.0.1:$PORT
        wait_http "$BASE_URL$mt/health" 15 || diag "apache$mt: /health did not answer within 15 s"
        check_docs "S: Apache${mt:+ $mt}" "$mt"
        stop_pid "$SERVER_PID" 20
    done
else
    skip "S: Apache serves the docs" "needs root, apache2 and libapache2-mod-fcgid"
fi

done_testing
