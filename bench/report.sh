# bench/report.sh: bench/run's figures (sourced): the medians of the runs,
# one line per figure on stdout, and the results file.
#
# Reads bench/run's state: ORDER, C_STATUS, C_REASON, C_DESC, the files
# RUNS (name, conns, round, rps, p50 us, p99 us, errors, requests) and
# PROCS (name, peak kB, processes, lighttpd peak kB, remark), AUDIT_LINE,
# AUDIT_ROWS_DB, NOTES_RUN, LOAD_START and the settings.

# median NAME CONNS COLUMN: the median of that column of RUNS over rounds.
median() {
    awk -F'\t' -v n="$1" -v c="$2" -v f="$3" '$1 == n && $2 == c { print $f }' "$RUNS" |
        sort -g | awk '{ v[NR] = $1 } END { if (NR) print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# summarize: SUMMARY = name, conns, median rps, median p50, median p99,
# errors (sum), runs, lowest rps, highest rps; one row per measured
# contender and connection count.
summarize() {
    local n c runs
    : >"$SUMMARY"
    for n in "${ORDER[@]}"; do
        [ "${C_STATUS[$n]:-}" = measured ] || continue
        for c in $CONNS; do
            runs=$(awk -F'\t' -v n="$n" -v c="$c" '$1 == n && $2 == c' "$RUNS" | wc -l)
            [ "$runs" -gt 0 ] || continue
            printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$n" "$c" "$(median "$n" "$c" 4)" \
                "$(median "$n" "$c" 5)" "$(median "$n" "$c" 6)" \
                "$(awk -F'\t' -v n="$n" -v c="$c" '$1 == n && $2 == c { s += $7 } END { print s + 0 }' "$RUNS")" \
                "$runs" "$(awk -F'\t' -v n="$n" -v c="$c" '$1 == n && $2 == c { print $4 }' "$RUNS" |
                           sort -g | awk 'NR == 1 { lo = $1 } { hi = $1 } END { printf "%.0f\t%.0f", lo, hi }')" \
                >>"$SUMMARY"
        done
    done
}

sum_field() { awk -F'\t' -v n="$1" -v c="$2" -v f="$3" '$1 == n && $2 == c { print $f }' "$SUMMARY"; }
proc_field() { awk -F'\t' -v n="$1" -v f="$2" '$1 == n { print $f }' "$PROCS"; }

# ratio_stats A B CONNS: A's requests/s over B's in the same round; prints
# the median of those per-round ratios, then (with two rounds or more) their
# lowest and highest, "0.94 0.89-0.99"; or "n/a". Pairing within a round
# keeps a change in the machine's load between rounds out of the ratio.
ratio_stats() {
    awk -F'\t' -v a="$1" -v b="$2" -v c="$3" '
        $2 == c && $1 == a { ra[$3] = $4 }
        $2 == c && $1 == b { rb[$3] = $4 }
        END {
            n = 0
            for (r in ra) if ((r in rb) && rb[r] > 0) v[++n] = ra[r] / rb[r]
            if (n == 0) { print "n/a"; exit }
            for (i = 2; i <= n; i++)     # insertion sort: a handful of rounds
                for (j = i; j > 1 && v[j - 1] > v[j]; j--) { t = v[j]; v[j] = v[j - 1]; v[j - 1] = t }
            printf "%.2f", (n % 2) ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
            if (n >= 2) printf " %.2f-%.2f", v[1], v[n]
            print ""
        }' "$RUNS"
}

# spec_parts SPEC: splits a ratio's spec "A/B:T" (T, the target, may be
# empty) into a, b and t, the caller's variables (bash's dynamic scope:
# the caller declares them local).
spec_parts() { a=${1%%/*}; b=${1#*/}; b=${b%%:*}; t=${1##*:}; }

# ratio A B CONNS: the median, two decimals, or "n/a".
ratio() { local s; s=$(ratio_stats "$@"); echo "${s%% *}"; }

# ratio_range A B CONNS: the per-round range, "0.89-0.99", or empty. How
# far one round's ratio moves on this machine: a verdict within that of its
# target is the machine's, not the code's.
ratio_range() { local s; s=$(ratio_stats "$@"); [ "${s#* }" != "$s" ] && echo "${s#* }"; return 0; }

# pair_stats A B CONNS: the close pairs of A over B (PAIRS_TSV): prints
# "n median lo hi min max errors", lo-hi the distribution-free 95 %
# confidence interval of the median (order statistics k and n + 1 - k, k the
# largest with P(Binomial(n, 1/2) < k) <= 0.025; "- -" under 6 pairs);
# or "n/a".
pair_stats() {
    awk -F'\t' -v a="$1" -v b="$2" -v c="$3" '
        $1 == a && $2 == b && $3 == c && $6 > 0 { v[++n] = $5 / $6; e += $7 }
        END {
            if (n == 0) { print "n/a"; exit }
            for (i = 2; i <= n; i++)
                for (j = i; j > 1 && v[j - 1] > v[j]; j--) { t = v[j]; v[j] = v[j - 1]; v[j - 1] = t }
            med = (n % 2) ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
            # P(X <= k - 1) for X ~ Binomial(n, 1/2), k = 1, 2, ...
            k = 0; p = 0; term = 0.5 ^ n
            for (i = 0; i < n; i++) {
                p += term
                if (p > 0.025) break
                k = i + 1
                term = term * (n - i) / (i + 1)
            }
            lo = k ? sprintf("%.3f", v[k]) : "-"; hi = k ? sprintf("%.3f", v[n + 1 - k]) : "-"
            printf "%d %.3f %s %s %.3f %.3f %d\n", n, med, lo, hi, v[1], v[n], e
        }' "$PAIRS_TSV"
}

# pair_ci LO HI: "0.94-0.98", or "n/a" (under 6 pairs).
pair_ci() { if [ "$1" = - ]; then echo n/a; else echo "$1-$2"; fi; }

# pair_verdict STATS TARGET: "met" or "NOT met" by the median, with ",
# within noise" when the confidence interval holds the target.
pair_verdict() {
    local -a f=($1)
    awk -v m="${f[1]}" -v lo="${f[2]}" -v hi="${f[3]}" -v t="$2" 'BEGIN {
        printf "%s", (m >= t) ? "met" : "NOT met"
        if (lo != "-" && lo < t && hi >= t) printf ", within noise"
        print "" }'
}

# verdict VALUE OP LIMIT: "met", "NOT met" or "n/a" (OP: >=, <, <=).
verdict() {
    if [ "$1" = n/a ] || [ -z "$1" ]; then echo n/a; return; fi
    awk -v v="$1" -v l="$3" -v op="$2" 'BEGIN {
        ok = (op == ">=") ? (v >= l) : (op == "<") ? (v < l) : (v <= l)
        print ok ? "met" : "NOT met" }'
}

# The ratios reported, "A/B:target" (target empty when the issue sets none).
RATIOS=(
    "mlfcgi-iris/fcgi-ceiling:0.90"
    "mlfcgi-iris-audit/fcgi-ceiling:"
    "mlfcgi-iris-audit-sync/fcgi-ceiling:"
    "mlfcgi-rf100/fcgi-ceiling:0.85"
    "mlfcgi-iris-audit/mlfcgi-iris:0.95"
    "mlfcgi-iris-audit-sync/mlfcgi-iris:"
    "mlfcgi-rf100-audit/mlfcgi-rf100:0.95"
    "fcgi-ceiling/static:"
    "mlfcgi-iris/fastapi-iris-1w:"
    "mlfcgi-iris/fastapi-iris-2w:"
    "mlfcgi-rf100/fastapi-rf100-1w:"
    "mlfcgi-rf100/fastapi-rf100-2w:"
)

# print_figures: one line per figure on stdout.
print_figures() {
    local n c spec a b t v r rss lk extra
    for n in "${ORDER[@]}"; do
        case ${C_STATUS[$n]:-} in
            skipped) say "$n skipped: ${C_REASON[$n]:-}"; continue ;;
            failed) say "$n FAILED: ${C_REASON[$n]:-}"; continue ;;
        esac
        [ "$n" = audit-writer ] && continue
        while IFS=$'\t' read -r _ c rps p50 p99 err runs _; do
            say "$n c=$c runs=$runs rps=$(printf '%.0f' "$rps") p50=$(ms "$p50")ms p99=$(ms "$p99")ms errors=$err"
        done < <(awk -F'\t' -v n="$n" '$1 == n' "$SUMMARY")
        rss=$(proc_field "$n" 2); lk=$(proc_field "$n" 4); extra=$(proc_field "$n" 5)
        say "$n peak_rss=$(mb "${rss:-0}")MB procs=$(proc_field "$n" 3)${lk:+ lighttpd_rss=$(mb "$lk")MB}${extra:+ $extra}"
    done
    if [ "${C_STATUS[audit-writer]:-}" = measured ]; then
        say "audit-writer rows=$(kv "$AUDIT_LINE" rows) rows_per_s=$(kv "$AUDIT_LINE" rows_per_s) enqueue_rows_per_s=$(kv "$AUDIT_LINE" enqueue_rows_per_s) in_db=$AUDIT_ROWS_DB"
    fi
    for spec in "${RATIOS[@]}"; do
        spec_parts "$spec"
        for c in $CONNS; do
            v=$(ratio "$a" "$b" "$c")
            [ "$v" = n/a ] && continue
            r=$(ratio_range "$a" "$b" "$c")
            say "ratio $a/$b c=$c $v${r:+ rounds=$r}${t:+ (target >= $t: $(verdict "$v" '>=' "$t"))}"
        done
    done
    for spec in "${CLOSE_PAIRS[@]}"; do
        spec_parts "$spec"
        for c in $CONNS; do
            v=$(pair_stats "$a" "$b" "$c")
            [ "$v" = n/a ] && continue
            set -- $v
            say "pairs $a/$b c=$c n=$1 median=$2 ci95=$(pair_ci "$3" "$4") range=$5-$6 errors=$7 (target >= $t: $(pair_verdict "$v" "$t"))"
        done
    done
}

# pairs_table: the close pairs' section's table.
pairs_table() {
    local spec a b t c v
    echo "| ratio | conns | pairs | median | 95 % interval of the median | lowest-highest | errors | target | verdict |"
    echo "|---|---:|---:|---:|---:|---:|---:|---|---|"
    for spec in "${CLOSE_PAIRS[@]}"; do
        spec_parts "$spec"
        for c in $CONNS; do
            v=$(pair_stats "$a" "$b" "$c")
            if [ "$v" = n/a ]; then
                echo "| $a / $b | $c | 0 | | | | | >= $t | n/a |"
                continue
            fi
            set -- $v
            echo "| $a / $b | $c | $1 | $2 | $(pair_ci "$3" "$4") | $5-$6 | $7 | >= $t | $(pair_verdict "$v" "$t") |"
        done
    done
}

# pairs_row A B CONNS TARGET: the targets table's row of A / B's close
# pairs, if any.
pairs_row() {
    local v t=$4
    v=$(pair_stats "$1" "$2" "$3")
    [ "$v" = n/a ] && return 0
    set -- $v
    echo "| the same from $1 close pairs of ${PAIR_SECS} s runs (median; 95 % interval) | $2 | $(pair_ci "$3" "$4") | $(pair_verdict "$v" "$t") |"
}

pkg_version() { dpkg-query -W -f='${Version}' "$1" 2>/dev/null || echo "not installed"; }

# results_table: the Results section's table.
results_table() {
    local n c first a b
    echo "| contender | conns | req/s | req/s range | p50 ms | p99 ms | errors | peak RSS MB (procs) | lighttpd RSS MB |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
    for n in "${ORDER[@]}"; do
        [ "$n" = audit-writer ] && continue
        if [ "${C_STATUS[$n]:-}" != measured ]; then
            a=${C_REASON[$n]:-}
            echo "| $n | | | | | | | | ${C_STATUS[$n]:-not run}: ${a//|//} |"
            continue
        fi
        first=1
        while IFS=$'\t' read -r _ c rps p50 p99 err _ lo hi; do
            if [ $first = 1 ]; then
                a="$(mb "$(proc_field "$n" 2)") ($(proc_field "$n" 3))"
                b=$(proc_field "$n" 4); [ -n "$b" ] && b=$(mb "$b") || b="-"
            else a=""; b=""; fi
            printf '| %s | %s | %.0f | %s-%s | %s | %s | %s | %s | %s |\n' "$([ $first = 1 ] && echo "$n")" \
                "$c" "$rps" "$lo" "$hi" "$(ms "$p50")" "$(ms "$p99")" "$err" "$a" "$b"
            first=0
        done < <(awk -F'\t' -v n="$n" '$1 == n' "$SUMMARY")
    done
}

# targets_table: issue 6's targets, each with its figure and verdict.
targets_table() {
    local c v n
    echo "| target | figure | per-round range, or 95 % interval | verdict |"
    echo "|---|---|---|---|"
    for c in $CONNS; do
        v=$(ratio mlfcgi-iris fcgi-ceiling "$c")
        echo "| iris >= 0.90 x FastCGI ceiling, $c conns | $v | $(ratio_range mlfcgi-iris fcgi-ceiling "$c") | $(verdict "$v" '>=' 0.90) |"
        pairs_row mlfcgi-iris fcgi-ceiling "$c" 0.90
    done
    v=$(sum_field mlfcgi-iris 16 5); [ -n "$v" ] && v=$(ms "$v") || v=n/a
    echo "| iris p99 < 2 ms at 16 conns | $v ms | | $(verdict "$v" '<' 2) |"
    v=$(sum_field fcgi-ceiling 16 5); [ -n "$v" ] && v=$(ms "$v") || v=n/a
    echo "| (for reference: the FastCGI ceiling's own p99 at 16 conns) | $v ms | | $(verdict "$v" '<' 2 | sed 's/NOT met/not under 2 ms/; s/^met$/under 2 ms/') |"
    for c in $CONNS; do
        v=$(ratio mlfcgi-rf100 fcgi-ceiling "$c")
        echo "| RF-100 >= 0.85 x FastCGI ceiling, $c conns | $v | $(ratio_range mlfcgi-rf100 fcgi-ceiling "$c") | $(verdict "$v" '>=' 0.85) |"
        pairs_row mlfcgi-rf100 fcgi-ceiling "$c" 0.85
    done
    for c in $CONNS; do
        v=$(ratio mlfcgi-iris-audit mlfcgi-iris "$c")
        echo "| audit on >= 0.95 x audit off (iris), $c conns | $v | $(ratio_range mlfcgi-iris-audit mlfcgi-iris "$c") | $(verdict "$v" '>=' 0.95) |"
        pairs_row mlfcgi-iris-audit mlfcgi-iris "$c" 0.95
    done
    for n in mlfcgi-iris mlfcgi-iris-audit; do
        v=$(proc_field "$n" 2); [ -n "$v" ] && v=$(mb "$v") || v=n/a
        echo "| <= 8 MB RSS per process, $n | $v MB | | $(verdict "$v" '<=' 8) |"
    done
}

# write_results FILE: the whole results document; keeps FILE's "## Notes"
# section and everything after it.
write_results() {
    local out=$1 tmp=$1.tmp.$$ n c spec a b t
    {
        echo "# mlfcgi benchmark results"
        echo
        echo "Written by \`bench/run$([ $SMOKE = 1 ] && echo ' --smoke')\` (see bench/README.md) on $(date -u '+%Y-%m-%d %H:%M UTC')."
        echo "Everything above \"## Notes\" is rewritten by each run; the Notes section is kept."
        [ $SMOKE = 1 ] && printf '\n**Smoke run: 1-second runs, the figures mean nothing.**\n'
        echo
        echo "## Machine"
        echo
        echo "- CPU: $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo), $(nproc) cores (nproc); memory $(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)"
        echo "- Linux $(uname -r); $(. /etc/os-release 2>/dev/null && echo "$PRETTY_NAME"); audit databases on $(df -T "$WORK" | awk 'NR == 2 { print $2 }')"
        echo "- Load average (1, 5, 15 min) at the start: $LOAD_START; at the end: $(cut -d' ' -f1-3 /proc/loadavg). Anything well above 0 means other work shared the cores."
        echo "- wrk and every server share these cores: read the figures as ratios within one run."
        echo
        echo "## Versions"
        echo
        echo "| package | version |"
        echo "|---|---|"
        # Uncommitted: anything but this file and its temporary copy
        # ($tmp, being written now).
        echo "| mlfcgi | $("$MLFCGI_BIN" --version 2>/dev/null | head -1)$(git -C "$TOP" rev-parse --short HEAD 2>/dev/null | sed 's/^/, commit /')$(git -C "$TOP" status --porcelain -- . ':!bench/RESULTS.md*' 2>/dev/null | grep -q . && echo ' + uncommitted changes') |"
        for p in lighttpd libfcgi0ldbl libsqlite3-0 libcjson1 wrk python3 python3-fastapi \
                 python3-starlette python3-pydantic python3-uvicorn python3-uvloop \
                 python3-httptools python3-sklearn python3-numpy; do
            echo "| $p | $(pkg_version "$p") |"
        done
        echo
        echo "## Settings"
        echo
        echo "- Every contender is started first and left idle; then $ROUNDS round(s), each running wrk once against every contender in turn at each connection count, so slow changes in the machine's load spread over all of them. Figures are the medians over the rounds (req/s range: the lowest and highest run); errors are summed (wrk counts non-2xx answers, socket errors and 10 s timeouts)."
        echo "- wrk: $WRK_THREADS thread, keep-alive, ${SECS} s per run (after one ${WARMUP} s warm-up per contender), connections: $CONNS; \`POST /predict\` with \`$BODY\` (application/json), the static file with GET; bench/post.lua."
        echo "- lighttpd: one process per contender, no access log, FastCGI over a Unix socket to one spawned process (\`max-procs\` 1) with $THREADS request threads (mlfcgi \`MLFCGI_THREADS\`, the ceiling \`CEILING_THREADS\`)."
        echo "- FastAPI: \`python3 -m uvicorn fastapi_app:app ${UVICORN_FLAGS[*]}\`, OPENBLAS_NUM_THREADS=1; \`async def\` endpoint, Pydantic validation as in the seed, one predict_proba per request (bench/fastapi_app.py)."
        echo "- Peak RSS: VmHWM of each serving process (mlfcgi / the ceiling / each uvicorn worker; not uvicorn's supervisor), read after the last round; the largest, with the number of processes."
        echo
        echo "## Results"
        echo
        results_table
        echo
        for n in "${ORDER[@]}"; do
            echo "- $n: ${C_DESC[$n]}$(t=$(proc_field "$n" 5); [ -n "$t" ] && echo "; $t")"
        done
        echo
        echo "## Ratios (requests/s of one over the other in the same round; the median over the rounds)"
        echo
        printf '| ratio |'; for c in $CONNS; do printf ' %s conns |' "$c"; done; echo ' target |'
        printf '|---|'; for c in $CONNS; do printf -- '---:|'; done; echo '---|'
        for spec in "${RATIOS[@]}"; do
            spec_parts "$spec"
            printf '| %s / %s |' "$a" "$b"
            for c in $CONNS; do printf ' %s |' "$(ratio "$a" "$b" "$c")"; done
            echo " ${t:+>= $t} |"
        done
        echo
        echo "## Close pairs (the two contenders of each target, runs back to back)"
        echo
        echo "After the rounds: for each ratio with a target, its two contenders, $PAIRS pair(s) per connection count of ${PAIR_SECS} s runs back to back (A then B, then B then A); the ratio of each pair, their median, its distribution-free 95 % confidence interval (order statistics; 6 pairs at least), and the lowest and highest pair. A verdict \"within noise\" has its target inside that interval."
        echo
        pairs_table
        echo
        echo "## Targets (issue 6)"
        echo
        targets_table
        echo
        echo "## Audit writer on its own"
        echo
        if [ "${C_STATUS[audit-writer]:-}" = measured ]; then
            echo "$(kv "$AUDIT_LINE" rows) rows enqueued by one thread, then audit_close(): **$(kv "$AUDIT_LINE" rows_per_s) rows/s** committed end to end ($(kv "$AUDIT_LINE" total_s) s); enqueueing alone $(kv "$AUDIT_LINE" enqueue_rows_per_s) rows/s. Rows in the database afterwards: $AUDIT_ROWS_DB. (bench/audit_rate.c, linked with libmlfcgi.a; WAL, synchronous=NORMAL.)"
        else
            echo "${C_STATUS[audit-writer]:-}: ${C_REASON[audit-writer]:-}"
        fi
        echo
        echo "## In-process rows/s"
        echo
        echo "In-process rows/s: see the model benchmark (the model issue's table of mlfcgi's predict against scikit-learn in one process, without HTTP)."
        echo
        echo "## Skipped, failed, remarks"
        echo
        for n in "${ORDER[@]}"; do
            case ${C_STATUS[$n]:-} in skipped|failed) echo "- $n ${C_STATUS[$n]:-}: ${C_REASON[$n]:-}" ;; esac
        done
        printf '%s' "$NOTES_RUN"
        echo
        if [ -f "$out" ] && grep -q '^## Notes' "$out"; then
            sed -n '/^## Notes/,$p' "$out"
        else
            echo "## Notes"
            echo
            echo "(Observations, and what each change bought: bench/run keeps this section.)"
        fi
    } >"$tmp" && mv "$tmp" "$out"
}
