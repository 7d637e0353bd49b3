#!/usr/bin/env bash
# Times callmeter builds on the formats benchmark's log, alternating, so
# that a slow minute of a shared machine falls on all of them: `import
# --dry-run` DRY times each (default 4), `import --data` into a fresh folder
# DATA times each (default 3). Prints each run, sorted; compare the medians.
#
#   benches/alternate_imports.sh BINARY BINARY [BINARY…]
#
# LOG defaults to target/bench-formats/combined-1024mb.log (made by
# `cargo bench --bench formats`).
set -euo pipefail
(($# >= 2)) || { echo "usage: $0 BINARY BINARY [BINARY…]" >&2; exit 2; }
log=${LOG:-target/bench-formats/combined-1024mb.log}
data=$(mktemp -d)
trap 'rm -rf "$data"' EXIT
run() { # label binary args…
    local label=$1 bin=$2
    shift 2
    /usr/bin/time -f "$label $bin %e s" "$bin" "$@" 2>&1 >/dev/null | grep "^$label "
}
{
    for _ in $(seq "${DRY:-4}"); do
        for b in "$@"; do
            run dry-run "$b" import --dry-run --format combined --account acme "$log"
        done
    done
    for _ in $(seq "${DATA:-3}"); do
        for b in "$@"; do
            rm -rf "$data/store"
            run data "$b" import --format combined --account acme --batch 10000 --data "$data/store" "$log"
        done
    done
} | sort
