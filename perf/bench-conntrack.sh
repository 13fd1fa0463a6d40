#!/usr/bin/env bash
# Stateful fast-path benchmark (no I/O): the engine on established TCP connections (64-byte
# frames, pure ACKs both ways in scrambled order) at 1k, 100k, 1M and 10M concurrent connections,
# the connection-setup rate per core (SYN, SYN-ACK, ACK), and the connection table alone, with
# bytes per connection. Cycles by TSC; medians of repeated runs. Not a test: the machine is
# shared and noisy. Goal: <= 120 cycles/packet at 1M connections.
#   perf/bench-conntrack.sh [CONNECTIONS...]
set -euo pipefail
cd "$(dirname "$0")/.."
echo "== engine: established fast path and connection setup"
cargo bench -q -p dataplane --bench engine -- "$@" 2>/dev/null
echo "== connection table alone"
cargo bench -q -p dataplane --bench conntrack -- "$@" 2>/dev/null
