#!/usr/bin/env bash
# Runs the webhooks benchmark of two or more builds in turn, RUNS times
# (default 3), so that a slow minute of a shared machine falls on all of
# them, and prints each run's table and per-delivery CPU.
#
#   benches/alternate_webhooks.sh BENCH BENCH [BENCH…]
#
# BENCH is a build's benchmark binary, made by `cargo bench --bench webhooks
# --no-run` in its own checkout (it starts the callmeter built beside it):
# `target/release/deps/webhooks-*`.
set -euo pipefail
(($# >= 2)) || { echo "usage: $0 BENCH BENCH [BENCH…]" >&2; exit 2; }
for ((i = 1; i <= ${RUNS:-3}; i++)); do
    for bench in "$@"; do
        echo "== $bench, run $i"
        "$bench" --bench 2>&1 | grep -E "top rate|webhooks (off|on):|deliveries:|per delivery|^\| "
    done
done
