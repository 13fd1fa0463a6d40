#!/usr/bin/env bash
# Instructions per packet of the engine's established-flow fast path, counted exactly with
# callgrind: this VM has no hardware counters and its cycle counts are noisy, while callgrind's
# instruction count is the same on every run. Runs the engine benchmark (`benches/engine.rs`)
# under callgrind at two packet counts and divides the difference in `process_burst`'s inclusive
# instructions by the difference in packets, so the connection setup drops out. A proxy for
# computation only: it says nothing about cache misses (see perf/bench-conntrack.sh for cycles).
#   perf/count-instructions.sh [CONNECTIONS]     (default 1000; needs valgrind)
set -euo pipefail
cd "$(dirname "$0")/.."
conns=${1:-1000}
command -v valgrind >/dev/null || { echo "needs valgrind (apt-get install valgrind)" >&2; exit 1; }
cargo bench -q -p dataplane --bench engine --no-run 2>/dev/null
bin=$(find target/release/deps -maxdepth 1 -name 'engine-*' -type f -executable -printf '%T@ %p\n' |
    sort -n | tail -1 | cut -d' ' -f2)
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
count() {
    PACKETS=$1 valgrind --tool=callgrind --callgrind-out-file="$out/cg.$1" "$bin" "$conns" \
        >/dev/null 2>&1
    callgrind_annotate --inclusive=yes "$out/cg.$1" 2>/dev/null |
        awk '!found && /Engine::process_burst/ { gsub(",", "", $1); print $1; found = 1 }'
}
small=160000
large=480000
a=$(count $small)
b=$(count $large)
# Three runs per invocation, each of PACKETS packets (whole bursts of 32).
echo "$conns connections: $(( (b - a) / (3 * (large - small)) )) instructions per packet in process_burst"
