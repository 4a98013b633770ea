#!/usr/bin/env bash
# cli.sh: the mlfcgi program itself, without a web server: options and
# environment, --check, model load errors, CGI mode, and --listen with a
# clean SIGTERM that writes every queued audit row. TAP output.
set -u
here=$(cd "$(dirname "$0")" && pwd)
SRCDIR=${SRCDIR:-$(cd "$here/../.." && pwd)}
MLFCGI_BIN=${MLFCGI_BIN:-$SRCDIR/mlfcgi}
MODEL=$SRCDIR/models/iris.json
tmp=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT

n=0 failed=0
ok() {  # ok CONDITION-STATUS DESCRIPTION
	n=$((n + 1))
	if [ "$1" -eq 0 ]; then echo "ok $n - $2"
	else echo "not ok $n - $2"; failed=$((failed + 1)); fi
}
check() { local d=$1; shift; "$@" >/dev/null 2>&1; ok $? "$d"; }

# serving ADDR PID: until mlfcgi (PID) answers GET /health on ADDR
# (host:port or a socket path), at most 30 s: a process under valgrind on
# a loaded machine takes seconds to start. False if PID died or on timeout.
serving() {
	local deadline=$((SECONDS + 30))
	while [ $SECONDS -lt $deadline ]; do
		kill -0 "$2" 2>/dev/null || return 1
		env -i REQUEST_METHOD=GET SCRIPT_NAME=/health cgi-fcgi -bind \
		    -connect "$1" 2>/dev/null | grep -q '"status":"healthy"' && return 0
		sleep 0.1
	done
	return 1
}

# run_cgi METHOD PATH BODY [CONTENT_TYPE]: the CGI response on stdout
run_cgi() {
	printf '%s' "$3" | env -i REQUEST_METHOD="$1" PATH_INFO="$2" \
	    CONTENT_TYPE="${4:-application/json}" CONTENT_LENGTH="${#3}" \
	    GATEWAY_INTERFACE=CGI/1.1 MLFCGI_MODEL="$MODEL" \
	    ${MLFCGI_AUDIT_DB:+MLFCGI_AUDIT_DB="$MLFCGI_AUDIT_DB"} \
	    ${MLFCGI_MAX_BATCH:+MLFCGI_MAX_BATCH="$MLFCGI_MAX_BATCH"} "$MLFCGI_BIN"
}

echo "1..45"

out=$("$MLFCGI_BIN" --help); ok $? "--help exits 0"
grep -q -- '--audit-db' <<<"$out"; ok $? "--help lists --audit-db"
grep -q 'MLFCGI_MAX_BODY' <<<"$out"; ok $? "--help names the environment variables"
out=$("$MLFCGI_BIN" --version); [[ $out =~ ^mlfcgi\ [0-9]+\.[0-9]+\.[0-9]+$ ]]; ok $? "--version prints the version"

out=$("$MLFCGI_BIN" --model "$MODEL" --check); ok $? "--check on the iris model exits 0"
grep -q 'iris 1.0.0' <<<"$out" && grep -q '4 features, 3 classes' <<<"$out"
ok $? "--check summarises the model"
out=$(MLFCGI_AUDIT_QUEUE_MB=64 "$MLFCGI_BIN" --model "$MODEL" --check 2>&1)
grep -q 'audit queue: 65536 rows, 64 MB' <<<"$out"; ok $? "MLFCGI_AUDIT_QUEUE_MB sets the audit queue's memory ($(grep queue <<<"$out"))"
out=$("$MLFCGI_BIN" --model "$MODEL" --audit-queue-mb 0 --check 2>&1); [ $? -eq 2 ] &&
    grep -q -- '--audit-queue-mb' <<<"$out"; ok $? "--audit-queue-mb 0 is a usage error naming the option"

out=$("$MLFCGI_BIN" --check 2>&1); [ $? -eq 2 ] && grep -q 'MLFCGI_MODEL' <<<"$out"
ok $? "no model is a usage error naming MLFCGI_MODEL"

out=$(MLFCGI_THREADS=0 "$MLFCGI_BIN" --model "$MODEL" --check 2>&1)
[ $? -eq 2 ] && grep -q 'MLFCGI_THREADS' <<<"$out"
ok $? "MLFCGI_THREADS=0 is rejected, naming the variable"
out=$("$MLFCGI_BIN" --model "$MODEL" --max-body 12x --check 2>&1)
[ $? -eq 2 ] && grep -q -- '--max-body' <<<"$out"
ok $? "--max-body 12x is rejected, naming the option"
out=$("$MLFCGI_BIN" --model "$MODEL" --bogus --check 2>&1); [ $? -eq 2 ]
ok $? "an unknown option is a usage error"
out=$(MLFCGI_THREADS=7 MLFCGI_MODEL="$MODEL" "$MLFCGI_BIN" --check)
grep -q 'threads: 7' <<<"$out"; ok $? "options come from the environment"
out=$(MLFCGI_THREADS=7 MLFCGI_MODEL="$MODEL" "$MLFCGI_BIN" --threads 3 --check)
grep -q 'threads: 3' <<<"$out"; ok $? "the command line overrides the environment"

# A model with a bad field: the message names the file and the field.
sed 's/"maximum": 7/"maximum": "seven"/' "$MODEL" > "$tmp/bad.json"
out=$("$MLFCGI_BIN" --model "$tmp/bad.json" --check 2>&1)
[ $? -eq 1 ] && grep -q "$tmp/bad.json: features\[2\].maximum" <<<"$out"
ok $? "a bad model field is named with its file (got: $out)"
out=$("$MLFCGI_BIN" --model "$tmp/missing.json" --check 2>&1)
[ $? -eq 1 ] && grep -q 'missing.json: cannot open' <<<"$out"
ok $? "a missing model file is named"
head -c 300 "$MODEL" > "$tmp/cut.json"
out=$("$MLFCGI_BIN" --model "$tmp/cut.json" --check 2>&1)
[ $? -eq 1 ] && grep -q 'not valid JSON' <<<"$out"; ok $? "a truncated model is reported as bad JSON"

# CGI mode.
out=$(run_cgi POST /predict '{"features":[5.1,3.5,1.4,0.2]}')
grep -q '^Status: 200' <<<"$out" && grep -q '"label":"setosa"' <<<"$out"
ok $? "CGI: predicts setosa"
out=$(run_cgi POST /predict '{"features":[5.1,3.5]}')
grep -q '^Status: 422' <<<"$out" && grep -q '"too_short"' <<<"$out"
ok $? "CGI: a short feature list is a 422 too_short"
out=$(run_cgi GET /nowhere '')
grep -q '^Status: 404' <<<"$out"; ok $? "CGI: unknown path is 404"

# Batches: {"instances": [...]}, one audit row per instance, one request id.
batch='{"instances":[[5.1,3.5,1.4,0.2],[6.3,3.3,6.0,2.5],[5.9,3.0,4.2,1.5]]}'
out=$(MLFCGI_AUDIT_DB="$tmp/batch.db" run_cgi POST /predict "$batch" | tail -n 1)
labels=$(jq -r '[.predictions[].label] | join(",")' <<<"$out" 2>/dev/null)
[ "$labels" = "setosa,virginica,versicolor" ]; ok $? "batch of arrays: three predictions in order ($labels)"
rid=$(jq -r .request_id <<<"$out" 2>/dev/null)
rows=$(sqlite3 "$tmp/batch.db" "SELECT count(*) FROM predictions WHERE request_id = '$rid'")
[ "$rows" = 3 ]; ok $? "batch: one audit row per instance, sharing the request id ($rows)"
named='{"instances":[{"sepal_length":5.1,"sepal_width":3.5,"petal_length":1.4,"petal_width":0.2},{"sepal_length":5.1,"sepal_width":3.5,"petal_length":1.4,"petal_width":-3}]}'
out=$(run_cgi POST /predict "$named" | tail -n 1)
loc=$(jq -c '.detail[0].loc' <<<"$out" 2>/dev/null)
[ "$loc" = '["body","instances",1,"petal_width"]' ]; ok $? "batch: an error names the row ($loc)"
out=$(run_cgi POST /predict '{"instances":[[5.1,3.5,1.4,0.2],{"sepal_length":5.1}]}' | tail -n 1)
t=$(jq -r '.detail[0].type' <<<"$out" 2>/dev/null)
[ "$t" = list_type ]; ok $? "batch: arrays and objects mixed is a 422 ($t)"
out=$(MLFCGI_MAX_BATCH=2 run_cgi POST /predict "$batch")
grep -q '^Status: 422' <<<"$out" && grep -q '"too_long"' <<<"$out"
ok $? "batch: over --max-batch is a 422 too_long"
out=$(run_cgi POST /predict '{"instances":[]}')
grep -q '^Status: 422' <<<"$out" && grep -q '"too_short"' <<<"$out"
ok $? "batch: an empty batch is a 422 too_short"

# Offline scoring: --predict FILE, JSON lines in, /predict answers out.
printf '%s\n' '{"features":[5.1,3.5,1.4,0.2]}' '' \
    '{"sepal_length":6.3,"sepal_width":3.3,"petal_length":6.0,"petal_width":2.5}' \
    '{"features":[1]}' > "$tmp/lines.jsonl"
out=$("$MLFCGI_BIN" --model "$MODEL" --predict "$tmp/lines.jsonl" 2>/dev/null); rc=$?
got=$(jq -r '[.line, (.label // .detail[0].type)] | join(":")' <<<"$out" | tr '\n' ' ')
[ "$got" = "1:setosa 3:virginica 4:too_short " ]; ok $? "--predict: one answer per non-blank line ($got)"
[ "$rc" -eq 1 ]; ok $? "--predict: exit status 1 when a line failed"
out=$(printf '%s\n' '{"features":[5.1,3.5,1.4,0.2]}' | "$MLFCGI_BIN" --model "$MODEL" --predict -); rc=$?
[ "$rc" -eq 0 ] && [ "$(jq -r .prediction <<<"$out")" = 0 ]; ok $? "--predict - reads standard input"

# --listen, audit, SIGTERM. cgi-fcgi (libfcgi-bin) is the FastCGI client.
port=$(( 20000 + RANDOM % 12000 ))  # below the ephemeral range
"$MLFCGI_BIN" --model "$MODEL" --listen "127.0.0.1:$port" \
    --audit-db "$tmp/audit.db" --threads 3 2>"$tmp/err" &
pid=$!
serving "127.0.0.1:$port" "$pid"; ok $? "--listen 127.0.0.1:$port accepts connections"
body='{"sepal_length":6.3,"sepal_width":3.3,"petal_length":6.0,"petal_width":2.5}'
good=0
for _ in $(seq 40); do
	out=$(printf '%s' "$body" | env -i REQUEST_METHOD=POST \
	    SCRIPT_NAME=/predict CONTENT_TYPE=application/json \
	    CONTENT_LENGTH=${#body} cgi-fcgi -bind -connect "127.0.0.1:$port")
	grep -q '"label":"virginica"' <<<"$out" && good=$((good + 1))
done
[ "$good" -eq 40 ]; ok $? "FastCGI over TCP: 40 predictions answered ($good)"
names=$(cat /proc/"$pid"/task/*/comm | grep '^mlfcgi-' | sort | uniq -c |
    awk '{print $2 " x" $1}' | paste -sd, -)
[ "$names" = "mlfcgi-audit x1,mlfcgi-ckpt x1,mlfcgi-request x3" ]
ok $? "threads named for top -H and perf: the audit writer, its checkpointer, 3 request threads ($names)"
kill -TERM "$pid"; wait "$pid"; rc=$?; pid=
ok $rc "SIGTERM: exit status 0"
rows=$(sqlite3 "$tmp/audit.db" 'SELECT count(*) FROM predictions')
[ "$rows" = 40 ]; ok $? "every answered prediction is in the audit log ($rows)"
v=$(sqlite3 "$tmp/audit.db" 'PRAGMA user_version; PRAGMA journal_mode' | tr '\n' ' ')
[ "$v" = "1 wal " ]; ok $? "audit log: schema version 1, WAL ($v)"

# A unix socket.
"$MLFCGI_BIN" --model "$MODEL" --listen "$tmp/s.sock" 2>>"$tmp/err" &
pid=$!
# The socket file appears at bind(), just before listen(): retry.
serving "$tmp/s.sock" "$pid"; ok $? "FastCGI over a unix socket: /health"
kill -TERM "$pid"; wait "$pid"; pid=

# A unix socket that another mlfcgi still serves is refused, not stolen,
# and stopping the first removes only its own socket.
"$MLFCGI_BIN" --model "$MODEL" --listen "$tmp/own.sock" --socket-mode 0660 2>>"$tmp/err" &
first=$!
serving "$tmp/own.sock" "$first"
out=$("$MLFCGI_BIN" --model "$MODEL" --listen "$tmp/own.sock" 2>&1); rc=$?
[ "$rc" -eq 1 ] && grep -q 'in use by another process' <<<"$out"; ok $? "a socket in use is refused ($out)"
m=$(stat -c %a "$tmp/own.sock"); [ "$m" = 660 ]; ok $? "--socket-mode 0660 sets the socket's mode ($m)"
kill -TERM "$first"; wait "$first"
[ ! -e "$tmp/own.sock" ]; ok $? "a clean stop removes its own socket"

# --user: started as root, serve and write the audit log as that user.
if [ "$(id -u)" -eq 0 ] && id nobody >/dev/null 2>&1; then
	mkdir -p "$tmp/u" && chmod 777 "$tmp/u" && chmod 755 "$tmp"
	"$MLFCGI_BIN" --model "$MODEL" --listen "$tmp/u/u.sock" --user nobody \
	    --audit-db "$tmp/u/audit.db" 2>>"$tmp/err" &
	upid=$!
	# Serving means the privileges are dropped and the audit log open.
	serving "$tmp/u/u.sock" "$upid"
	who=$(ps -o user= -p "$upid" | tr -d ' ')
	owner=$(stat -c %U "$tmp/u/audit.db" 2>/dev/null)
	kill -TERM "$upid"; wait "$upid"
	[ "$who" = nobody ] && [ "$owner" = nobody ]; ok $? "--user nobody: process and audit log belong to nobody ($who, $owner)"
else
	ok 0 "--user: # SKIP needs root and a nobody user"
fi

# Retention: rows older than --audit-retain-days are deleted by the writer.
sqlite3 "$tmp/keep.db" < "$SRCDIR/sql/schema.sql"
sqlite3 "$tmp/keep.db" "INSERT INTO predictions (ts, request_id, model, version, input, output, latency_us, pid) VALUES
  ('2020-01-01T00:00:00.000Z', 'old', 'iris', '1', '{}', '{}', 1, 1),
  (strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-2 days'), 'recent', 'iris', '1', '{}', '{}', 1, 1)"
out=$(printf '%s\n' '{"features":[5.1,3.5,1.4,0.2]}' | "$MLFCGI_BIN" --model "$MODEL" \
    --audit-db "$tmp/keep.db" --audit-retain-days 30 --predict - )
left=$(sqlite3 "$tmp/keep.db" "SELECT group_concat(request_id) FROM (SELECT request_id FROM predictions ORDER BY id)")
[ "$left" = "recent,line-1" ]; ok $? "--audit-retain-days 30 deletes older rows only ($left)"

# --audit-sync: the answer comes after the row is committed, so a kill -9
# right after it loses nothing.
"$MLFCGI_BIN" --model "$MODEL" --listen "127.0.0.1:$((port + 1))" \
    --audit-db "$tmp/sync.db" --audit-sync 2>>"$tmp/err" &
spid=$!
serving "127.0.0.1:$((port + 1))" "$spid"
got=0
for i in $(seq 20); do
	out=$(printf '%s' "$body" | env -i REQUEST_METHOD=POST SCRIPT_NAME=/predict \
	    CONTENT_TYPE=application/json CONTENT_LENGTH=${#body} HTTP_X_REQUEST_ID="sync-$i" \
	    cgi-fcgi -bind -connect "127.0.0.1:$((port + 1))")
	grep -q '^Status: 200' <<<"$out" && got=$((got + 1))
done
kill -9 "$spid"; wait "$spid" 2>/dev/null
rows=$(sqlite3 "$tmp/sync.db" "SELECT count(*) FROM predictions WHERE request_id LIKE 'sync-%'")
[ "$got" = 20 ] && [ "$rows" = 20 ]; ok $? "--audit-sync: 20 answered, kill -9, 20 rows ($got, $rows)"
[ "$(sqlite3 "$tmp/sync.db" 'PRAGMA integrity_check')" = ok ]; ok $? "after kill -9 the audit log passes integrity_check"
out=$("$MLFCGI_BIN" --model "$MODEL" --audit-sync --check 2>&1); [ $? -eq 2 ]
ok $? "--audit-sync without --audit-db is a usage error"

# Processes started together on a new audit log (lighttpd's max-procs, a
# mod_fcgid pool): all switch it to WAL and apply the schema at once, and
# SQLite answers some of those lock upgrades "database is locked" at once.
# Each must wait its turn and open it: 25 rounds of 8 at once, all ok.
# Under a wrapper (tools/test-valgrind: memcheck takes seconds to start
# each one, which spreads the starts out) 2 rounds: the race is met in
# make check and in the sanitizer tier, and memcheck looks at each path.
rounds=25
[ "$(head -c 2 "$MLFCGI_BIN")" = '#!' ] && rounds=2
bad=0
for r in $(seq "$rounds"); do
	pids=()
	for i in $(seq 8); do
		"$MLFCGI_BIN" --model "$MODEL" --audit-db "$tmp/race$r.db" --check \
		    >/dev/null 2>>"$tmp/race.err" &
		pids+=($!)
	done
	for p in "${pids[@]}"; do wait "$p" || bad=$((bad + 1)); done
done
[ "$bad" -eq 0 ]; ok $? "8 processes opening one new audit log at once, $rounds times: none fails ($bad failed: $(sort -u "$tmp/race.err" | head -2))"

[ "$failed" -eq 0 ]
