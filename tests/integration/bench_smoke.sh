#!/bin/bash
# tests/integration/bench_smoke.sh: `bench/run --smoke` still works. A guard
# against the benchmark rotting; it asserts no timing, only that the run
# completes, that every contender was measured without errors or skipped
# with a reason, and that the results file has its sections. Also that the
# model benchmark's C side (bench/models/predict_bench.c) still builds
# against this tree's libmlfcgi.a and runs.
#
# Env: MLFCGI_BIN, SRCDIR, BUILDDIR (as for every integration test): the
# smoke measures that binary and builds nothing. Needs wrk (skips without).

. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

if ! command -v wrk >/dev/null 2>&1; then
    echo "1..0 # SKIP wrk not installed (Debian package wrk)"
    exit 0
fi
RUN=$SRCDIR/bench/run
[ -x "$RUN" ] || bail_out "missing $RUN"
[ -x "$MLFCGI_BIN" ] || bail_out "mlfcgi binary not found or not executable: $MLFCGI_BIN"

CONTENDERS="static fcgi-ceiling mlfcgi-iris mlfcgi-iris-audit mlfcgi-iris-audit-sync
    mlfcgi-rf100 mlfcgi-rf100-audit fastapi-iris-1w fastapi-iris-2w
    fastapi-rf100-1w fastapi-rf100-2w audit-writer"

plan 7
make_tmp
OUT=$TEST_TMP/out RES=$TEST_TMP/RESULTS.md
BENCH_RESULTS=$RES timeout -k 10 150 "$RUN" --smoke >"$OUT" 2>"$TEST_TMP/err" </dev/null
rc=$?
track_log "$OUT"
track_log "$TEST_TMP/err"
is "$rc" 0 "bench/run --smoke exits 0 ($(grep -o 'done in [0-9]* s' "$OUT"))"

# Each contender: a line per run with errors=0 (and its peak RSS), or one
# "skipped: <reason>" line.
bad=""
for n in $CONTENDERS; do
    if grep -Eq "^bench: $n skipped: .+" "$OUT"; then
        continue
    elif [ "$n" = audit-writer ]; then
        grep -Eq "^bench: audit-writer rows=[0-9]+ rows_per_s=[0-9]+ " "$OUT" || bad="$bad $n"
    elif ! grep -Eq "^bench: $n c=[0-9]+ runs=[0-9]+ rps=[0-9.]+ p50=[0-9.]+ms p99=[0-9.]+ms errors=0$" "$OUT" ||
         grep -Eq "^bench: $n c=.* errors=[1-9]" "$OUT" ||
         ! grep -Eq "^bench: $n peak_rss=[0-9.]+MB procs=[1-9]" "$OUT"; then
        bad="$bad $n"
    fi
done
is "${bad# }" "" "every contender measured without errors, or skipped with a reason"

# Each measured contender with an audit log: its rows, and the requests its
# writer's backpressure held, read from its /metrics.
bad=""
for n in $CONTENDERS; do
    case $n in *-audit | *-audit-sync) ;; *) continue ;; esac
    grep -Eq "^bench: $n skipped: .+" "$OUT" && continue
    grep -Eq "^bench: $n peak_rss=.* audit rows written: [1-9][0-9]*; requests held by the writer's backpressure: [0-9]+$" "$OUT" ||
        bad="$bad $n"
done
is "${bad# }" "" "each audit contender: rows written, and backpressure waits from /metrics"

# The close pairs: a line for each ratio with a target whose two
# contenders were measured.
bad=""
for spec in mlfcgi-iris/fcgi-ceiling:0.90 mlfcgi-rf100/fcgi-ceiling:0.85 \
            mlfcgi-iris-audit/mlfcgi-iris:0.95 mlfcgi-rf100-audit/mlfcgi-rf100:0.95; do
    a=${spec%%/*} b=${spec#*/}; b=${b%%:*}; t=${spec##*:}
    grep -Eq "^bench: ($a|$b) skipped: .+" "$OUT" && continue
    grep -Eq "^bench: pairs $a/$b c=16 n=1 median=[0-9.]+ ci95=n/a range=[0-9.]+-[0-9.]+ errors=0 [(]target >= $t: (met|NOT met)[)]$" "$OUT" ||
        bad="$bad $a/$b"
done
is "${bad# }" "" "a close-pairs line for each ratio with a target"

# The close pairs' statistics (bench/report.sh), on known ratios: 12
# pairs of 0.80, 0.82, ... 1.02 out of order give the median 0.91 and the
# interval of the 3rd and 10th (0.84-0.98); 5 pairs give no interval.
PT=$TEST_TMP/pairs.tsv
for i in 7 2 11 4 9 1 12 5 3 10 6 8; do
    printf 'A\tB\t16\t%s\t%s\t1000\t0\n' "$i" $((780 + 20 * i))
done >"$PT"
for i in 1 2 3 4 5; do printf 'A\tB\t64\t%s\t%s\t1000\t1\n' "$i" $((900 + 20 * i)); done >>"$PT"
got=$(PAIRS_TSV=$PT bash -c '. "$1/bench/report.sh"
    v=$(pair_stats A B 16); echo "$v / $(pair_verdict "$v" 0.95) / $(pair_verdict "$v" 0.83)"
    v=$(pair_stats A B 64); echo "$v / $(pair_ci ${v#* * })"
    pair_stats A B 32' _ "$SRCDIR")
is "$(echo $got)" "12 0.910 0.840 0.980 0.800 1.020 0 / NOT met, within noise / met 5 0.960 - - 0.920 1.000 5 / n/a n/a" \
    "close pairs: median, 95 % interval by order statistics, verdicts"

# The results file: its sections, and a row for every contender.
missing=""
for s in '## Machine' '## Versions' '## Settings' '## Results' '## Ratios' \
         '## Close pairs' '## Targets' '| target | figure | per-round range, or 95 % interval | verdict |' \
         '## Audit writer on its own' 'In-process rows/s: see the model benchmark' '## Notes'; do
    grep -qF -- "$s" "$RES" 2>/dev/null || missing="$missing [$s]"
done
for n in $CONTENDERS; do
    [ "$n" = audit-writer ] && continue
    grep -q "^| $n |" "$RES" 2>/dev/null || missing="$missing [row $n]"
done
is "${missing# }" "" "the results file has every section and a row per contender"

# bench/models/run compiles predict_bench.c the same way, then times it;
# here with the flags the tree was built with (a sanitizer build needs its
# runtime).
PB=$TEST_TMP/predict_bench
# shellcheck disable=SC2046
set -- $(sed -n 's/^CFLAGS = //p; s/^LDFLAGS = //p' "$BUILDDIR/Makefile" 2>/dev/null)
python3 -c 'import struct, sys
sys.stdout.buffer.write(struct.pack("=400d", *[5.1, 3.5, 1.4, 0.2] * 100))' >"$TEST_TMP/rows"
# shellcheck disable=SC2046
if cc "$@" -std=c11 -D_GNU_SOURCE -I "$SRCDIR/src" -I "$BUILDDIR" \
        "$SRCDIR/bench/models/predict_bench.c" "$BUILDDIR/libmlfcgi.a" \
        $(pkg-config --cflags --libs libcjson sqlite3 fcgi) -lm -pthread -o "$PB" \
        2>"$TEST_TMP/cc.err"; then
    "$PB" --threads 1,2 --batch 0,16 --repeat 2 "$SRCDIR/models/iris.json" \
        "$TEST_TMP/rows" >"$TEST_TMP/pb.out" 2>&1
    track_log "$TEST_TMP/pb.out"
    lines=$(grep -Ec '^threads=[12] batch=(0|16) best=[0-9.]+ median=[0-9.]+ cpu=[0-9.]+ rows_per_s=[0-9]+$' \
        "$TEST_TMP/pb.out")
    is "$lines" 4 "bench/models/predict_bench builds and times 4 configurations of iris"
else
    track_log "$TEST_TMP/cc.err"
    is "does not compile" "compiles" "bench/models/predict_bench builds and times 4 configurations of iris"
fi

done_testing
