#!/usr/bin/env bash
# Inspection benchmark (not a test: the machine is shared and noisy; medians and ratios).
# 1. ClientHello inspections per second per core: parse, JA3, JA4 and policy checks on real
#    hellos (cargo bench -p dataplane --bench inspect).
# 2. Offline throughput: `portcullisd --read` against nDPI's `ndpiReader` (Debian's libndpi-bin)
#    on the same capture in the same invocation, one thread each, alternating runs: real TLS,
#    QUIC, SSH, HTTP, OpenVPN... traffic of the corpus and the lab capture, repeated as new flows
#    (perf/gen-tls-pcap.py). portcullisd runs with its built-in defaults (detection, TLS/QUIC
#    metadata, fingerprints and every check on; no event file, as ndpiReader -q writes none).
#    Goal: at least 3x ndpiReader's packets per second.
#   perf/bench-inspect.sh [COPIES] [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
COPIES=${1:-300}
RUNS=${2:-7}
command -v ndpiReader >/dev/null || { echo "ndpiReader missing: apt-get install libndpi-bin" >&2; exit 2; }
cargo build -q --release -p control
echo "== ClientHello inspection, one core"
cargo bench -q -p dataplane --bench inspect 2>/dev/null

OUT=$(mktemp -d /tmp/portcullis-bench.XXXXXX)
trap 'rm -rf "$OUT"' EXIT
python3 perf/gen-tls-pcap.py "$OUT/bench.pcap" "$COPIES"
packets=$(python3 -c "
import struct,sys
d=open('$OUT/bench.pcap','rb').read(); o=24; n=0
while o+16<=len(d):
    n+=1; o+=16+struct.unpack('<I',d[o+8:o+12])[0]
print(n)")
cat "$OUT/bench.pcap" > /dev/null  # page cache
secs() { local t0 t1; t0=$(date +%s%N); "$@" >/dev/null 2>&1; t1=$(date +%s%N); echo $(( (t1 - t0) / 1000 )); }
pcd=(); ndpi=()
for _ in $(seq 1 "$RUNS"); do
  pcd+=("$(secs target/release/portcullisd --read "$OUT/bench.pcap" --workers 1)")
  ndpi+=("$(secs ndpiReader -i "$OUT/bench.pcap" -q -n 1)")
done
target/release/portcullisd --read "$OUT/bench.pcap" --workers 1 2>&1 | grep -E "^inspection" || true
python3 - "$packets" "${pcd[*]}" "${ndpi[*]}" <<'PY'
import statistics, sys
n = int(sys.argv[1])
p = [int(x) for x in sys.argv[2].split()]
q = [int(x) for x in sys.argv[3].split()]
mp, mq = statistics.median(p), statistics.median(q)
print(f"== offline, one thread, {n} packets, {len(p)} runs each (wall clock incl. start-up)")
print(f"portcullisd --read : median {mp/1e3:.0f} ms  {n/(mp/1e6)/1e6:.2f} Mpps  (runs {min(p)/1e3:.0f}..{max(p)/1e3:.0f} ms)")
print(f"ndpiReader -q      : median {mq/1e3:.0f} ms  {n/(mq/1e6)/1e6:.2f} Mpps  (runs {min(q)/1e3:.0f}..{max(q)/1e3:.0f} ms)")
print(f"ratio (packets/s, portcullisd / ndpiReader): {mq/mp:.2f}x")
PY
