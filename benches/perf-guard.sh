#!/usr/bin/env bash
# Instruction-count guard for the hot paths.
#
# Runs benches/instructions.rs under `valgrind --tool=callgrind` at two cycle counts per scenario
# and takes (total instructions at N2 - total at N1) / (N2 - N1): the instructions of one cycle,
# with the warm-up and entering the runtime cancelled out. Callgrind counts only inside the
# bench's `measured` function, so process start and pool setup (whose cost varies: the first
# pool calibrates the time-stamp counter) are not counted at all. Instruction counts do not
# depend on machine load, so the check is stable on a shared machine, unlike wall time.
#
#   benches/perf-guard.sh            compare with benches/perf-baseline.json; exit 1 on a
#                                    regression beyond the baseline's threshold_pct
#   benches/perf-guard.sh --update   measure and rewrite benches/perf-baseline.json
#
# PERF_GUARD_THRESHOLD=PCT overrides the threshold. The counts depend on the compiler: the
# baseline records the rustc it was made with, and a different one is reported (the comparison
# still runs). Needs valgrind and jq. Writes target/perf-guard/current.json.
set -euo pipefail
cd "$(dirname "$0")/.."

baseline=benches/perf-baseline.json
scenarios=(acquire try-acquire wait keyed)
n1=1000
n2=21000

update=0
case "${1:-}" in
    --update) update=1 ;;
    "") ;;
    -h | --help)
        sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'
        exit 0
        ;;
    *)
        echo "perf-guard: unknown argument: $1 (try --help)" >&2
        exit 2
        ;;
esac

for tool in valgrind jq; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "perf-guard: $tool is not installed (apt-get install $tool)" >&2
        exit 2
    fi
done

echo "perf-guard: building benches/instructions.rs (bench profile)"
bin=$(cargo bench --locked --bench instructions --no-run --message-format=json 2>/dev/null |
    jq -r 'select(.reason == "compiler-artifact" and .target.name == "instructions") | .executable' |
    tail -n 1)
if [ -z "$bin" ] || [ ! -x "$bin" ]; then
    echo "perf-guard: could not build the instructions bench (run: cargo bench --bench instructions --no-run)" >&2
    exit 2
fi

out=target/perf-guard
mkdir -p "$out"

# Total instructions (callgrind's Ir) of one run of scenario $1 with $2 measured cycles.
total() {
    local file="$out/callgrind.$1.$2"
    # Count only inside `measured` (the cycles): setup whose cost varies between runs, such as
    # calibrating the time-stamp counter when the first pool is built, stays out.
    valgrind --tool=callgrind --toggle-collect='instructions::measured*' \
        --callgrind-out-file="$file" "$bin" "$1" "$2" >"$file.log" 2>&1 || {
        echo "perf-guard: valgrind failed on $1 $2; see $file.log" >&2
        exit 2
    }
    awk '/^totals:/ { print $2; found = 1 } END { if (!found) exit 1 }' "$file"
}

rustc_version=$(rustc --version)
current="{}"
for sc in "${scenarios[@]}"; do
    t1=$(total "$sc" "$n1")
    t2=$(total "$sc" "$n2")
    per=$(awk -v a="$t1" -v b="$t2" -v n1="$n1" -v n2="$n2" 'BEGIN { printf "%.1f", (b - a) / (n2 - n1) }')
    current=$(jq --arg k "$sc" --argjson v "$per" '. + {($k): $v}' <<<"$current")
done
jq -n --argjson per "$current" --arg rustc "$rustc_version" --argjson n1 "$n1" --argjson n2 "$n2" \
    '{rustc: $rustc, cycles: [$n1, $n2], instructions_per_cycle: $per}' >"$out/current.json"

if [ "$update" = 1 ]; then
    threshold=$(jq -r '.threshold_pct // 5' "$baseline" 2>/dev/null || echo 5)
    src_commit=$(git log -1 --format=%h -- src 2>/dev/null || echo unknown)
    jq -n --argjson per "$current" --arg rustc "$rustc_version" --arg commit "$src_commit" \
        --argjson threshold "$threshold" \
        '{
          about: "Instructions per cycle (callgrind Ir) of benches/instructions.rs; written by benches/perf-guard.sh --update",
          threshold_pct: $threshold,
          src_commit: $commit,
          rustc: $rustc,
          instructions_per_cycle: $per
        }' >"$baseline"
    echo "perf-guard: wrote $baseline"
    jq . "$baseline"
    exit 0
fi

if [ ! -f "$baseline" ]; then
    echo "perf-guard: no $baseline; create it with --update" >&2
    exit 2
fi
threshold=${PERF_GUARD_THRESHOLD:-$(jq -r '.threshold_pct' "$baseline")}
base_rustc=$(jq -r '.rustc' "$baseline")
if [ "$base_rustc" != "$rustc_version" ]; then
    echo "perf-guard: note: baseline made with '$base_rustc', this is '$rustc_version'; counts may differ"
fi

failed=0
printf '%-12s %12s %12s %8s  %s\n' scenario baseline current change verdict
for sc in "${scenarios[@]}"; do
    base=$(jq -r --arg k "$sc" '.instructions_per_cycle[$k] // empty' "$baseline")
    cur=$(jq -r --arg k "$sc" '.[$k]' <<<"$current")
    if [ -z "$base" ]; then
        printf '%-12s %12s %12s %8s  %s\n' "$sc" - "$cur" - "no baseline"
        continue
    fi
    read -r change verdict < <(awk -v b="$base" -v c="$cur" -v t="$threshold" 'BEGIN {
        ch = (c - b) / b * 100
        printf "%+.1f%% %s\n", ch, (ch > t ? "REGRESSION" : (ch < -t ? "improved" : "ok"))
    }')
    printf '%-12s %12s %12s %8s  %s\n' "$sc" "$base" "$cur" "$change" "$verdict"
    if [ "$verdict" = REGRESSION ]; then
        failed=1
    fi
done
if [ "$failed" = 1 ]; then
    echo "perf-guard: FAILED: instructions per cycle rose more than ${threshold}% over $baseline"
    exit 1
fi
echo "perf-guard: passed (threshold ${threshold}%)"
