#!/usr/bin/env bash
# HA state-sync benchmark (issue 5): flow events per second from an active's worker, through
# both HA threads (batching, HMAC-SHA256, UDP over loopback, ordering, sharding), applied by a
# standby's worker; and sync lag (push to apply, p50/p99) at fixed offered rates, while the
# active opens new TCP connections. Medians of 3 runs per figure. Not a test: the machine is
# shared and noisy, and four threads share its cores. Goal: >= 1 million events/s, p99 <= 10 ms.
#   perf/bench-sync.sh [OFFERED_EVENTS_PER_SEC...]
set -euo pipefail
cd "$(dirname "$0")/.."
cargo bench -q -p control --bench ha_sync -- "$@" 2>/dev/null | grep -v '^portcullisd'
