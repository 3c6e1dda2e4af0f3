#!/usr/bin/env bash
# Proof that the loom models bite: plants each bug in loom-tests/mutants/*.patch into a scratch
# copy of the crate, runs the loom models that should catch it (listed on the patch's `models:`
# line; MUTANTS_ALL_MODELS=1 runs every model instead), and fails unless every mutant is caught
# by at least one model. Prints which model caught which mutant, at which iteration, and why.
#
#   loom-tests/mutants.sh                          # every mutant, its listed models
#   loom-tests/mutants.sh 03-coalescing-notify     # only the mutants whose names match
#   MUTANTS_ALL_MODELS=1 loom-tests/mutants.sh     # the full model x mutant matrix (slow)
#
# Each model runs in its own process: loom aborts the whole process on a deadlock.
# LOOM_MAX_DURATION is never set: when it is hit, loom silently stops and the model passes.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
scratch="${MUTANTS_SCRATCH:-${TMPDIR:-/tmp}/shadowcat-loom-mutants}"
# The loom models' own target dir by default: the dependencies built by loom-tests/run.sh (same
# RUSTFLAGS) are reused, and only the mutated crate and its test binaries are rebuilt.
export CARGO_TARGET_DIR="${MUTANTS_TARGET_DIR:-$root/target/loom}"
export RUSTFLAGS="--cfg shadowcat_loom"
export LOOM_MAX_PREEMPTIONS=3
export CARGO_INCREMENTAL=1 # between mutants only the mutated crate changes
export CARGO_TERM_COLOR=never
unset LOOM_MAX_DURATION
all_models="${MUTANTS_ALL_MODELS:-0}"
model_timeout="${MUTANTS_MODEL_TIMEOUT:-300}"
filter="${1:-}"

now_ms() { date +%s%3N; }
start_all=$(now_ms)
logs="$CARGO_TARGET_DIR/mutant-logs"
mkdir -p "$logs"
results=()
failed=0

for patch in "$root"/loom-tests/mutants/*.patch; do
    mutant=$(basename "$patch" .patch)
    if [ -n "$filter" ] && [[ "$mutant" != *"$filter"* ]]; then
        continue
    fi
    echo "==> mutant $mutant"
    # A fresh copy of the crate (without target/ and .git/); -m stamps every file as new, so
    # cargo never mistakes the copy for the previous mutant's build.
    rm -rf "$scratch"
    mkdir -p "$scratch"
    tar -C "$root" --exclude=./target --exclude=./.git -cf - . | tar -C "$scratch" -xmf -
    if ! patch -p1 --fuzz=0 -s -d "$scratch" <"$patch"; then
        echo "    patch does not apply (the engine changed): regenerate $patch"
        results+=("| $mutant | - | patch does not apply | - | - |")
        failed=1
        continue
    fi
    # A patch may need a cargo feature (`features: ...`), e.g. the event-listener waiter line.
    features=$(sed -n 's/^features: //p' "$patch" | head -n 1)
    feature_args=()
    if [ -n "$features" ]; then
        feature_args=(--features "$features")
    fi
    # Build only the loom test binaries that hold the listed models (a model `fn NAME` in
    # loom-tests/FILE.rs is in the test target loom_FILE): linking all of them for every mutant
    # was most of this script's time.
    read -r -a listed < <(sed -n 's/^models: //p' "$patch" | head -n 1)
    target_args=(--test 'loom_*')
    if [ "$all_models" != 1 ] && [ "${#listed[@]}" -gt 0 ]; then
        target_args=()
        for model in "${listed[@]}"; do
            file=$(grep -l -E "fn ${model}\(" "$root"/loom-tests/*.rs | head -n 1 || true)
            if [ -z "$file" ]; then
                target_args=(--test 'loom_*') # unknown model: build all, reported below
                break
            fi
            target="loom_$(basename "$file" .rs)"
            [[ " ${target_args[*]} " == *" $target "* ]] || target_args+=(--test "$target")
        done
    fi
    build_start=$(now_ms)
    if ! (cd "$scratch" && cargo test --release "${target_args[@]}" "${feature_args[@]}" --no-run --message-format=json \
        2>"$logs/$mutant.build.log" >"$logs/$mutant.build.json"); then
        echo "    does not compile; see $logs/$mutant.build.log"
        results+=("| $mutant | - | does not compile | - | - |")
        failed=1
        continue
    fi
    echo "    built in $(( ($(now_ms) - build_start) / 1000 )) s"
    # model name -> test binary
    declare -A binary_of=()
    all_names=()
    while read -r exe; do
        while read -r name; do
            binary_of[$name]=$exe
            all_names+=("$name")
        done < <("$exe" --list --format=terse | sed -n 's/: test$//p')
    done < <(jq -r 'select(.reason == "compiler-artifact" and .executable != null) | .executable' \
        "$logs/$mutant.build.json")
    if [ "$all_models" = 1 ]; then
        models=("${all_names[@]}")
    else
        read -r -a models < <(sed -n 's/^models: //p' "$patch" | head -n 1)
    fi
    caught_by=0
    for model in "${models[@]}"; do
        exe="${binary_of[$model]:-}"
        if [ -z "$exe" ]; then
            echo "    unknown model $model (listed in $patch)"
            failed=1
            continue
        fi
        log="$logs/$mutant.$model.log"
        t0=$(now_ms)
        rc=0
        # (The braces keep bash's "Aborted" job notice out of the output.)
        { timeout "$model_timeout" "$exe" --exact "$model" --test-threads=1 --nocapture >"$log" 2>&1; } 2>/dev/null || rc=$?
        ms=$(( $(now_ms) - t0 ))
        if [ "$rc" = 0 ]; then
            iters=$(sed -n 's/.*LOOM-PASS .*iterations=\([0-9]*\).*/\1/p' "$log" | head -n 1)
            echo "    $model: not caught ($iters iterations, $ms ms)"
            [ "$all_models" = 1 ] && results+=("| $mutant | $model | not caught ($iters iterations) | $ms ms | |")
            continue
        fi
        caught_by=$((caught_by + 1))
        if [ "$rc" = 124 ]; then
            iteration="-"
            reason="hung (timeout ${model_timeout}s)"
        else
            iteration=$(sed -n 's/.*LOOM-FAIL model=[^ ]* iteration=\([0-9]*\).*/\1/p' "$log" | head -n 1)
            # The first panic message: the line after the first "panicked at".
            reason=$(awk '/panicked at/ { getline; print; exit }' "$log" | cut -c1-110)
            [ -n "$reason" ] || reason="exit status $rc"
            # loom's deadlock report lists every thread; its first word says enough.
            [[ "$reason" == deadlock* ]] && reason="deadlock (loom: every thread blocked)"
        fi
        echo "    $model: CAUGHT at iteration $iteration in $ms ms: $reason"
        results+=("| $mutant | $model | iteration $iteration | $ms ms | ${reason//|/\\|} |")
    done
    if [ "$caught_by" = 0 ]; then
        echo "    NOT CAUGHT by any model"
        results+=("| $mutant | - | NOT CAUGHT | - | - |")
        failed=1
    fi
    unset binary_of
done

echo
echo "| mutant | model | caught at | time to failure | failure |"
echo "|---|---|---|---|---|"
printf '%s\n' "${results[@]}"
echo
echo "mutants.sh: $(( ($(now_ms) - start_all) / 1000 )) s in total (LOOM_MAX_PREEMPTIONS=$LOOM_MAX_PREEMPTIONS)"
if [ "$failed" != 0 ]; then
    echo "mutants.sh: FAILED (a mutant survived or could not be built)"
    exit 1
fi
echo "mutants.sh: every mutant was caught"
