#!/usr/bin/env bash
# Runs every loom model: a release build with `--cfg shadowcat_loom`, in its own target dir (so
# the flag change does not evict the normal build cache), with loom's preemption bound at 3.
#
#   loom-tests/run.sh                 # all models
#   loom-tests/run.sh --nocapture     # also print each model's iteration count and time
#   loom-tests/run.sh keyed           # only the keyed pool's models (loom-tests/keyed.rs)
#
# Extra arguments go to the test harness. LOOM_MAX_DURATION is never set: when it is hit, loom
# silently stops exploring and the model passes.
set -euo pipefail
cd "$(dirname "$0")/.."
unset LOOM_MAX_DURATION
set -x
RUSTFLAGS="--cfg shadowcat_loom" CARGO_TARGET_DIR=target/loom LOOM_MAX_PREEMPTIONS=3 \
  cargo test --release --test 'loom_*' -- --test-threads=2 "$@"
