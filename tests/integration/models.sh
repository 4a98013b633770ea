#!/usr/bin/env bash
# models.sh: the model repository. --model-dir with several names and
# versions, the /models routes, --default-model, names looked up and never
# used as paths, SIGHUP reload (new version, broken file keeps the old one
# serving, no request fails while reloading under load) and --reload-check.
# Drives `mlfcgi --listen` with cgi-fcgi as the FastCGI client. TAP output.
set -u
here=$(cd "$(dirname "$0")" && pwd)
SRCDIR=${SRCDIR:-$(cd "$here/../.." && pwd)}
MLFCGI_BIN=${MLFCGI_BIN:-$SRCDIR/mlfcgi}
IRIS=$SRCDIR/models/iris.json
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
# fcgi METHOD PATH [BODY]: prints the body; the status is in $tmp/status.
# Parsed by bash itself: the reload test below sends 300 requests, and a
# process per step costs milliseconds each on a slow host.
fcgi() {
	local out body=${3:-} st=
	out=$(printf '%s' "$body" | env -i REQUEST_METHOD="$1" SCRIPT_NAME="" \
	    PATH_INFO="$2" CONTENT_TYPE=application/json \
	    CONTENT_LENGTH="${#body}" cgi-fcgi -bind -connect "$sock" 2>/dev/null)
	[[ $out =~ (^|$'\n')Status:\ ([0-9]+) ]] && st=${BASH_REMATCH[2]}
	echo "$st" > "$tmp/status"
	# The body: what follows the first empty line (CRLF or LF).
	if [[ $out == *$'\r\n\r\n'* ]]; then printf '%s\n' "${out#*$'\r\n\r\n'}"
	elif [[ $out == *$'\n\n'* ]]; then printf '%s\n' "${out#*$'\n\n'}"
	fi
}
status() { echo "$(<"$tmp/status")"; }
# version FILE VERSION [SCALE]: a copy of iris with another version (and
# its coefficients scaled, so that answers differ).
version() {
	mkdir -p "$(dirname "$1")"
	jq --arg v "$2" --argjson k "${3:-1}" \
	    '.version = $v | .estimator.coef |= map(map(. * $k))' "$IRIS" > "$1"
}
start() {
	"$MLFCGI_BIN" --listen "$sock" "$@" 2>>"$tmp/err" &
	pid=$!
	# The socket file appears at bind(), just before listen(): ask.
	for _ in $(seq 600); do	# 30 s: slow under valgrind
		[ -S "$sock" ] && [ -n "$(fcgi GET /health)" ] && return
		sleep 0.05
	done
}
stop() { kill -TERM "$pid"; wait "$pid"; pid=; }

echo "1..22"

dir=$tmp/models
version "$dir/iris/1.0.0/model.json" 1.0.0
version "$dir/iris/2.0.0/model.json" 2.0.0 0.5
version "$dir/flower.json" 7 2
jq '.name = "flower"' "$dir/flower.json" > "$tmp/f" && mv "$tmp/f" "$dir/flower.json"
echo '{"format": "not a model"}' > "$tmp/outside.json"
ln -s "$tmp/outside.json" "$dir/escape.json"	# points outside the dir

start --model-dir "$dir" --default-model iris:1.0.0
out=$(fcgi GET /models)
[ "$(status)" = 200 ]; ok $? "GET /models is 200"
names=$(jq -r '[.models[] | .name // .file] | join(",")' <<<"$out")
[ "$names" = "flower,iris" ]; ok $? "both names listed; the symlink leaving the directory is not loaded ($names)"
vers=$(jq -r '.models[] | select(.name == "iris") | [.versions[].version] | join(",")' <<<"$out")
[ "$vers" = "1.0.0,2.0.0" ]; ok $? "iris has versions 1.0.0 and 2.0.0 ($vers)"
d=$(jq -r '"\(.default.name):\(.default.version)"' <<<"$out")
[ "$d" = "iris:1.0.0" ]; ok $? "--default-model picks the default ($d)"

row='{"features":[5.9,3.0,4.2,1.5]}'
p1=$(fcgi POST /predict "$row" | jq -r '"\(.version) \(.confidence)"')
p_latest=$(fcgi POST /models/iris/predict "$row" | jq -r '"\(.version) \(.confidence)"')
p_v1=$(fcgi POST /models/iris/versions/1.0.0/predict "$row" | jq -r '"\(.version) \(.confidence)"')
[ "${p1%% *}" = 1.0.0 ]; ok $? "/predict serves the default model ($p1)"
[ "${p_latest%% *}" = 2.0.0 ]; ok $? "/models/iris/predict serves the latest version ($p_latest)"
[ "$p_v1" = "$p1" ]; ok $? "/models/iris/versions/1.0.0/predict serves that version"
[ "${p_latest#* }" != "${p1#* }" ]; ok $? "the two versions answer differently"
out=$(fcgi POST /models/flower/predict "$row")
[ "$(jq -r .model <<<"$out")" = flower ]; ok $? "a model from DIR/NAME.json is served by its name"

out=$(fcgi GET /models/iris)
f=$(jq -r '[.features[].name] | join(",")' <<<"$out")
[ "$f" = "sepal_length,sepal_width,petal_length,petal_width" ]; ok $? "GET /models/iris lists the features"
b=$(jq -c '.features[0].schema' <<<"$out")
[ "$b" = '{"type":"number","exclusiveMinimum":0,"maximum":10,"description":"sepal length in cm"}' ]
ok $? "each feature carries its JSON Schema ($b)"
c=$(jq -c '[.classes, .class_names, [.versions[].version], .version]' <<<"$out")
[ "$c" = '[[0,1,2],["setosa","versicolor","virginica"],["1.0.0","2.0.0"],"2.0.0"]' ]; ok $? "classes, names and versions ($c)"

fcgi POST /models/nope/predict "$row" >/dev/null; [ "$(status)" = 404 ]; ok $? "an unknown model is 404"
fcgi POST /models/iris/versions/9/predict "$row" >/dev/null; [ "$(status)" = 404 ]; ok $? "an unknown version is 404"
fcgi POST /models/../../etc/passwd/predict "$row" >/dev/null; [ "$(status)" = 404 ]; ok $? "a path in the name is just an unknown route"
fcgi POST /models/escape/predict "$row" >/dev/null; [ "$(status)" = 404 ]; ok $? "the escaping symlink's name is not served"

# Reload under load: two client loops run while versions come and go.
load() { local bad=0; for _ in $(seq 150); do fcgi POST /models/iris/predict "$row" >/dev/null; [ "$(status)" = 200 ] || bad=$((bad + 1)); done; echo "$bad" > "$1"; }
( tmpd=$tmp/l1; mkdir -p "$tmpd"; tmp=$tmpd; load "$tmpd/bad" ) &
l1=$!
( tmpd=$tmp/l2; mkdir -p "$tmpd"; tmp=$tmpd; load "$tmpd/bad" ) &
l2=$!
for v in 3.0.0 4.0.0 5.0.0 6.0.0; do
	version "$dir/iris/$v/model.json" "$v" 0.25
	kill -HUP "$pid"; sleep 0.3
done
wait $l1 $l2
bad=$(( $(cat "$tmp/l1/bad") + $(cat "$tmp/l2/bad") ))
[ "$bad" -eq 0 ]; ok $? "no request failed while reloading 4 times under load ($bad non-200 of 300)"
v=$(fcgi POST /models/iris/predict "$row" | jq -r .version)
[ "$v" = 6.0.0 ]; ok $? "after SIGHUP the newest version serves ($v)"

# A broken file: reported, and its previous version keeps serving.
echo '{"format": "mlfcgi-model/1", "name": ' > "$dir/iris/6.0.0/model.json"
kill -HUP "$pid"; sleep 0.5
v=$(fcgi POST /models/iris/versions/6.0.0/predict "$row" | jq -r .version)
[ "$v" = 6.0.0 ]; ok $? "a file that fails to reload keeps its old model serving ($v)"
e=$(fcgi GET /models | jq -r '.models[] | select(.name == "iris") | .versions[] | select(.version == "6.0.0") | .reload_error')
[[ $e == "model.json: line"* ]] && [[ $e != *"$tmp"* ]]; ok $? "/models reports the reload error without directories ($e)"
grep -q 'reload: .*6.0.0/model.json' "$tmp/err"; ok $? "the reload error is in the log"
stop

# --reload-check: each process of a pool notices a changed file itself.
start --model "$dir/flower.json" --reload-check 1
version "$dir/flower.json" 8 2
jq '.name = "flower"' "$dir/flower.json" > "$tmp/f" && mv "$tmp/f" "$dir/flower.json"
v=
for _ in $(seq 40); do
	v=$(fcgi POST /predict "$row" | jq -r .version)
	[ "$v" = 8 ] && break; sleep 0.1
done
[ "$v" = 8 ]; ok $? "--reload-check 1 picks up a changed file without a signal ($v)"
stop

[ "$failed" -eq 0 ]
