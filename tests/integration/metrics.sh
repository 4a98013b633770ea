#!/usr/bin/env bash
# metrics.sh: GET /metrics (checked with the Prometheus client library's
# own text-format parser), the prediction cache (X-Cache, the audit log's
# cached column, emptied on reload) and request ids. Drives
# `mlfcgi --listen` with cgi-fcgi. TAP output.
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

sock=$tmp/m.sock
# fcgi METHOD PATH [BODY [REQUEST_ID]]: the whole CGI response.
fcgi() {
	local body=${3:-}
	printf '%s' "$body" | env -i REQUEST_METHOD="$1" SCRIPT_NAME="" \
	    PATH_INFO="$2" CONTENT_TYPE=application/json \
	    CONTENT_LENGTH="${#body}" ${4:+HTTP_X_REQUEST_ID="$4"} \
	    cgi-fcgi -bind -connect "$sock" 2>/dev/null
}
header() { sed -n "s/^$1: \\(.*\\)\\r\$/\\1/p" | head -1; }
body() { sed '1,/^\r\{0,1\}$/d'; }

echo "1..19"

"$MLFCGI_BIN" --model "$SRCDIR/models/iris.json" --listen "$sock" \
    --cache-size 8 --audit-db "$tmp/audit.db" 2>"$tmp/err" &
pid=$!
for _ in $(seq 600); do [ -n "$(fcgi GET /health)" ] && break; sleep 0.05; done	# <= 30 s: slow under valgrind

row='{"features":[5.1,3.5,1.4,0.2]}'
r1=$(fcgi POST /predict "$row" "client-id.1")
r2=$(fcgi POST /predict "$row")
[ "$(header X-Cache <<<"$r1")" = miss ]; ok $? "first prediction: X-Cache: miss"
[ "$(header X-Cache <<<"$r2")" = hit ]; ok $? "the same input again: X-Cache: hit"
[ "$(body <<<"$r1" | jq -c 'del(.request_id)')" = "$(body <<<"$r2" | jq -c 'del(.request_id)')" ]
ok $? "a cached answer is the same answer"
[ "$(header X-Request-Id <<<"$r1")" = client-id.1 ] && [ "$(body <<<"$r1" | jq -r .request_id)" = client-id.1 ]
ok $? "a well-formed X-Request-Id is kept, in the header and the body"
rid=$(header X-Request-Id <<<"$(fcgi POST /predict "$row" 'bad id with spaces')")
[[ $rid =~ ^[0-9a-f]{32}$ ]]; ok $? "a malformed X-Request-Id is replaced ($rid)"
fcgi POST /predict '{"features":[5.1,3.5,1.4,-1]}' >/dev/null
fcgi POST /predict '{"sepal_length":"x"}' >/dev/null
fcgi GET /nowhere >/dev/null
batch='{"instances":[[5.1,3.5,1.4,0.2],[6.3,3.3,6.0,2.5]]}'
[ "$(header X-Cache <<<"$(fcgi POST /predict "$batch")")" = partial ]
ok $? "a batch with one cached instance: X-Cache: partial"

m=$(fcgi GET /metrics)
[ "$(header Content-Type <<<"$m")" = "text/plain; version=0.0.4; charset=utf-8" ]
ok $? "/metrics has the text format's content type"
body <<<"$m" > "$tmp/metrics.txt"
cat > "$tmp/check.py" <<'PY'
import sys
from prometheus_client.parser import text_string_to_metric_families
fams = {f.name: f for f in text_string_to_metric_families(open(sys.argv[1]).read())}
def value(fam, sample, **labels):
    for s in fams[fam].samples:
        if s.name == sample and all(s.labels.get(k) == v for k, v in labels.items()):
            return s.value
    return None
checks = [
    ("requests", value("mlfcgi_requests", "mlfcgi_requests_total", route="/predict", status="200", model="iris"), 4),
    ("422s", value("mlfcgi_requests", "mlfcgi_requests_total", route="/predict", status="422"), 2),
    ("404s", value("mlfcgi_requests", "mlfcgi_requests_total", route="unmatched", status="404"), 1),
    ("predictions", value("mlfcgi_predictions", "mlfcgi_predictions_total", model="iris", version="1.0.0"), 5),
    ("float_type", value("mlfcgi_validation_errors", "mlfcgi_validation_errors_total", type="float_type"), 1),
    ("greater_than_equal", value("mlfcgi_validation_errors", "mlfcgi_validation_errors_total", type="greater_than_equal"), 1),
    ("cache hits", value("mlfcgi_cache_hits", "mlfcgi_cache_hits_total", model="iris"), 3),
    ("histogram count", value("mlfcgi_request_duration_seconds", "mlfcgi_request_duration_seconds_count", route="/predict"), 6),
    ("audit rows written+queued", (value("mlfcgi_audit_rows_written", "mlfcgi_audit_rows_written_total") or 0) + (value("mlfcgi_audit_queue_depth", "mlfcgi_audit_queue_depth") or 0), 5),
]
ok = True
for name, got, want in checks:
    if got != want:
        print(f"{name}: got {got}, want {want}")
        ok = False
for fam in ("process_start_time_seconds", "process_resident_memory_bytes", "mlfcgi_cache_hit_ratio", "mlfcgi_audit_batch_commit_seconds"):
    if fam not in fams or not fams[fam].samples:
        print(f"missing {fam}"); ok = False
pids = {s.labels.get("pid") for f in fams.values() for s in f.samples}
if len(pids) != 1 or None in pids:
    print(f"pid labels: {pids}"); ok = False
sys.exit(0 if ok else 1)
PY
why=$(/usr/bin/python3 "$tmp/check.py" "$tmp/metrics.txt" 2>&1)
ok $? "/metrics parses with prometheus_client and counts right ${why:+($why)}"
ratio=$(grep '^mlfcgi_cache_hit_ratio' "$tmp/metrics.txt" | awk '{print $2}')
[ "$ratio" = 0.600000 ]; ok $? "cache hit ratio: 3 hits of 5 lookups ($ratio)"
grep -q '^# TYPE mlfcgi_request_duration_seconds histogram' "$tmp/metrics.txt"
ok $? "latency is a histogram"
[ "$(grep -c 'le="+Inf"' "$tmp/metrics.txt")" -ge 1 ]; ok $? "the histogram has its +Inf bucket"

kill -HUP "$pid"; sleep 0.3
[ "$(header X-Cache <<<"$(fcgi POST /predict "$row")")" = miss ]
ok $? "a reload empties the cache"
kill -TERM "$pid"; wait "$pid"; pid=
c=$(sqlite3 "$tmp/audit.db" 'SELECT sum(cached), count(*) FROM predictions')
[ "$c" = "3|6" ]; ok $? "cached answers are logged, marked cached ($c)"
c=$(sqlite3 "$tmp/audit.db" "SELECT count(*) FROM predictions WHERE request_id = 'client-id.1'")
[ "$c" = 1 ]; ok $? "the client's request id is in its audit row"

# Without --cache-size there is no cache and no X-Cache header.
"$MLFCGI_BIN" --model "$SRCDIR/models/iris.json" --listen "$sock" 2>>"$tmp/err" &
pid=$!
for _ in $(seq 600); do [ -n "$(fcgi GET /health)" ] && break; sleep 0.05; done	# <= 30 s: slow under valgrind
r=$(fcgi POST /predict "$row"; fcgi POST /predict "$row")
! grep -q '^X-Cache' <<<"$r"; ok $? "no cache by default: no X-Cache header"
! grep -q 'mlfcgi_cache' <<<"$(fcgi GET /metrics)"; ok $? "no cache series by default"
kill -TERM "$pid"; wait "$pid"; pid=
# One request thread, two versions of one model, answers 200 and 422 mixed:
# each thread remembers the series it counted last (metrics.c), and must
# not count a request in the series of the one before it.
jq '.version = "2.0.0"' "$SRCDIR/models/iris.json" > "$tmp/iris2.json"
"$MLFCGI_BIN" --model "$SRCDIR/models/iris.json" --model "$tmp/iris2.json" \
    --listen "$sock" --threads 1 2>>"$tmp/err" &
pid=$!
for _ in $(seq 600); do [ -n "$(fcgi GET /health)" ] && break; sleep 0.05; done	# <= 30 s: slow under valgrind
bad='{"features":[5.1,3.5,1.4,-1]}'
for v in 1:"$row" 1:"$bad" 1:"$row" 2:"$row" 1:"$bad" 2:"$row" 1:"$row"; do
	fcgi POST "/models/iris/versions/${v%%:*}.0.0/predict" "${v#*:}" >/dev/null
done
fcgi GET /metrics | body > "$tmp/metrics2.txt"
r='route="/models/{}/versions/{}/predict"'
got=$(for q in 'version="1.0.0",'"$r"',status="200"' 'version="1.0.0",'"$r"',status="422"' \
    'version="2.0.0",'"$r"',status="200"'; do
	grep -F "mlfcgi_requests_total{" "$tmp/metrics2.txt" | grep -F "$q" | awk '{printf "%s ", $2}'
done)
[ "$got" = "3 2 2 " ]; ok $? "requests counted by version and status, one thread, mixed (200 v1, 422 v1, 200 v2: $got)"
got=$(for v in 1 2; do
	grep -F 'mlfcgi_predictions_total{' "$tmp/metrics2.txt" | grep -F "version=\"$v.0.0\"" | awk '{printf "%s ", $2}'
done)
[ "$got" = "3 2 " ]; ok $? "predictions counted by version, one thread ($got)"
kill -TERM "$pid"; wait "$pid"; pid=
grep -q . "$tmp/err" && ! grep -qv 'reloaded' "$tmp/err"; ok $? "nothing but the reload on stderr"

[ "$failed" -eq 0 ]
