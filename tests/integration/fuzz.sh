#!/bin/bash
# tests/integration/fuzz.sh: the libFuzzer harnesses (tests/fuzz/), each run
# for a short bounded time: JSON bodies, form bodies, model files.
#
# One test for the build, then one per harness: it passes when the seed
# corpus and every kept crash replay cleanly and FUZZ_SECONDS of fuzzing
# find nothing. A failure names the crashing input and shows the report.
# Skips when clang is missing.
#
# Env: SRCDIR, BUILDDIR (defaults: from this file's location);
#      FUZZ_SECONDS (default here 15), FUZZ_OUT (default BUILDDIR/tests/fuzz/out).
# Needs: clang, libclang-rt-14-dev (Debian packages).

. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

RUN=$SRCDIR/tests/fuzz/run
HARNESSES=(json form model)
export FUZZ_SECONDS=${FUZZ_SECONDS:-15}
export FUZZ_OUT=${FUZZ_OUT:-$BUILDDIR/tests/fuzz/out}

if ! command -v "${CLANG:-clang}" >/dev/null 2>&1; then
    echo "1..0 # SKIP clang not found (Debian packages: clang libclang-rt-14-dev)"
    exit 0
fi
[ -x "$RUN" ] || bail_out "missing $RUN"

plan $((1 + ${#HARNESSES[@]}))

make_tmp
"$RUN" "${HARNESSES[@]}" >"$TEST_TMP/run.out" 2>&1 </dev/null
rc=$?
if [ $rc = 2 ]; then
    fail "the harnesses build with clang -fsanitize=fuzzer,address,undefined" \
        "$(tail -40 "$TEST_TMP/run.out")"
    for h in "${HARNESSES[@]}"; do skip "fuzz_$h" "the build failed"; done
    done_testing
fi
pass "the harnesses build with clang -fsanitize=fuzzer,address,undefined"
# One result line per harness, then (on failure) the report.
for h in "${HARNESSES[@]}"; do
    line=$(grep "^fuzz $h: " "$TEST_TMP/run.out" | tail -1)
    if [[ $line == "fuzz $h: ok"* ]]; then
        pass "fuzz_$h: ${line#"fuzz $h: "}"
    else
        fail "fuzz_$h: ${line#"fuzz $h: "}" \
            "$(awk -v h="fuzz $h: " 'index($0, h) == 1 { on = 1 }
                on && /^fuzz [a-z]+: / && index($0, h) != 1 { on = 0 } on' \
                "$TEST_TMP/run.out" | head -100)"
    fi
done
done_testing
