#!/usr/bin/env bash
# Alternated A/B of two or more builds of the comparison (examples/compare.rs).
#
# The host moves its vCPUs between a near and a far placement and carries other load, which moves
# the oversubscribed scenarios by more than most changes do. So a change is measured by
# alternating builds in one sitting, and by comparing each build's ratio to the mutex baseline
# measured in the same run, never raw throughput across runs.
#
#   benches/ab.sh [-r ROUNDS] [-s SCENARIOS] [-o DIR] BIN_A BIN_B [BIN ...]
#
# Each round runs every binary once, in the order given, with only shadowcat-pool and the mutex
# baseline (`-p shadowcat-pool,mutex-baseline`; S8 runs KeyedPool and the keyed mutex baseline).
# It prints shadowcat-pool's throughput over the baseline's in each scenario, per round and
# binary, then each binary's medians over the rounds. Defaults: 4 rounds of S3,S4,S5,S7, reports
# under target/ab. Make a binary with
#
#   cargo build --release --example compare && cp target/release/examples/compare /tmp/compare-a
#
# Needs jq.
set -euo pipefail
cd "$(dirname "$0")/.."

rounds=4
scenarios=S3,S4,S5,S7
out=target/ab
while getopts "r:s:o:h" opt; do
    case "$opt" in
        r) rounds=$OPTARG ;;
        s) scenarios=$OPTARG ;;
        o) out=$OPTARG ;;
        *)
            sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'
            exit 2
            ;;
    esac
done
shift $((OPTIND - 1))
if [ "$#" -lt 2 ]; then
    echo "ab: give at least two compare binaries (try -h)" >&2
    exit 2
fi
if ! command -v jq >/dev/null 2>&1; then
    echo "ab: jq is not installed (apt-get install jq)" >&2
    exit 2
fi

# "S3 0.87 S4 0.85 ...": the pool's throughput over the baseline's, per scenario, in one report.
ratios() {
    jq -r '
        def us: .pool == "shadowcat-pool" or .pool == "KeyedPool";
        def base: .pool == "mutex-baseline" or .pool == "keyed-mutex-baseline";
        group_by(.scenario)
        | map(select(any(.[]; us) and any(.[]; base))
              | "\(.[0].scenario[:2]) \((map(select(us))[0].ops_per_sec
                                        / map(select(base))[0].ops_per_sec * 100 | round) / 100)")
        | join(" ")' "$1"
}

mkdir -p "$out"
names=()
for bin in "$@"; do
    name=$(basename "$bin")
    if [[ " ${names[*]-} " == *" $name "* ]]; then
        echo "ab: two binaries named $name: give them distinct file names" >&2
        exit 2
    fi
    names+=("$name")
    rm -f "$out/$name.ratios"
done
for round in $(seq 1 "$rounds"); do
    for bin in "$@"; do
        name=$(basename "$bin")
        dir="$out/$name.$round"
        "$bin" -p shadowcat-pool,mutex-baseline -s "$scenarios" --no-progress --out "$dir" >/dev/null
        line=$(ratios "$dir/report.json")
        echo "round $round  $name  $line"
        echo "$line" >>"$out/$name.ratios"
    done
done

echo "medians over $rounds rounds:"
for bin in "$@"; do
    name=$(basename "$bin")
    # One "scenario ratio" pair per line, grouped by scenario, then the middle value of each.
    medians=$(tr ' ' '\n' <"$out/$name.ratios" | paste - - | sort -k1,1 -k2,2n |
        awk '{v[$1] = v[$1] " " $2; n[$1]++}
             END {for (s in v) {split(substr(v[s], 2), a, " "); m = n[s];
                  med = (m % 2) ? a[(m + 1) / 2] : (a[m / 2] + a[m / 2 + 1]) / 2;
                  printf "%s %.2f\n", s, med}}' | sort | tr '\n' ' ')
    echo "  $name  $medians"
    rm -f "$out/$name.ratios"
done
