#!/usr/bin/env bash
# Forwarding benchmark: dpdk-testpmd (io forwarding) and portcullisd (one worker, the full engine
# path: parse, flow hash, flow accounting) on the same net_pcap(infinite_rx) -> net_null pair of
# virtual devices, in the same invocation, one after the other, each pinned to the same core.
# Prints the median of the per-second rates (Mpps), cycles per packet, and the ratio.
#   perf/bench-forward.sh [SECONDS=10] [FLOWS=1024]
# Not a test: the machine is shared and noisy; quote medians and the ratio.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SECS=${1:-10}
FLOWS=${2:-1024}
WORK=$(mktemp -d /tmp/portcullis-bench.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
PCAP=$WORK/tcp64.pcap
python3 "$ROOT/perf/gen-pcap.py" "$PCAP" "$FLOWS" 8192
EAL=(--no-huge -m 1024 --no-pci --log-level lib.eal:warning)
VDEV_RX="net_pcap0,rx_pcap=$PCAP,infinite_rx=1"
VDEV_TX="net_null0,no-rx=1"
median() { sort -n | awk '{a[NR]=$1} END {if (NR==0) {print 0} else if (NR%2) {print a[(NR+1)/2]} else {print (a[NR/2]+a[NR/2+1])/2}}'; }
TSC_HZ=$(awk '/^cpu MHz/ {print int($4*1e6); exit}' /proc/cpuinfo)

echo "== dpdk-testpmd io forwarding, ${SECS}s, 64-byte frames, $FLOWS flows"
timeout -s INT "$((SECS + 3))" dpdk-testpmd -l 0,1 "${EAL[@]}" --file-prefix pcbench-tp \
  --vdev "$VDEV_RX" --vdev "$VDEV_TX" -- --forward-mode=io --stats-period 1 --total-num-mbufs=16384 \
  > "$WORK/testpmd.log" 2>&1 || true
# Per-second "Rx-pps" of port 0 (the pcap port), skipping the warm-up second.
grep -A4 "statistics for port 0" "$WORK/testpmd.log" | awk '/Rx-pps:/ {print $2}' | tail -n +3 | head -n -1 > "$WORK/tp.rates"
TP=$(median < "$WORK/tp.rates")

echo "== portcullisd, 1 worker (busy poll), same devices, ${SECS}s"
cat > "$WORK/bench.toml" <<TOML
[eal]
args = [$(printf '"%s", ' "${EAL[@]}")"--file-prefix", "pcbench-pc"]
[dataplane]
control_core = 0
worker_cores = [1]
idle = "busy"
[[ports]]
name = "in"
device = "net_pcap0"
vdev_args = "${VDEV_RX#net_pcap0,}"
[[ports]]
name = "out"
device = "net_null0"
vdev_args = "no-rx=1"
[[pairs]]
inside = "in"
outside = "out"
[control]
socket = "$WORK/ctl.sock"
[run]
max_duration_secs = $((SECS + 2))
TOML
"$ROOT/target/release/portcullisd" --config "$WORK/bench.toml" > "$WORK/pc.log" 2>&1 &
PC=$!
for _ in $(seq 1 100); do "$ROOT/target/release/portcullisctl" -s "$WORK/ctl.sock" status >/dev/null 2>&1 && break; sleep 0.1; done
prev=""; prev_t=""
: > "$WORK/pc.rates"
for _ in $(seq 1 "$SECS"); do
  sleep 1
  line=$("$ROOT/target/release/portcullisctl" -s "$WORK/ctl.sock" stats --json 2>/dev/null \
    | python3 -c "import json,sys; s=json.load(sys.stdin); print(s['ports'][1]['tx_packets'], s['uptime_secs'])") || break
  set -- $line
  if [ -n "$prev" ]; then python3 -c "print(int(($1-$prev)/($2-$prev_t)))" >> "$WORK/pc.rates"; fi
  prev=$1; prev_t=$2
done
wait "$PC" || true
tail -n +2 "$WORK/pc.rates" > "$WORK/pc.rates2" || true
PCR=$(median < "$WORK/pc.rates2")
grep -E "^(drops|flows)" "$WORK/pc.log" || true

python3 - "$TP" "$PCR" "$TSC_HZ" <<'PY'
import sys
tp, pc, hz = float(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])
print(f"testpmd     : {tp/1e6:6.2f} Mpps  ({hz/tp if tp else 0:6.1f} cycles/packet at {hz/1e9:.2f} GHz)")
print(f"portcullisd : {pc/1e6:6.2f} Mpps  ({hz/pc if pc else 0:6.1f} cycles/packet)")
print(f"ratio portcullisd/testpmd: {pc/tp if tp else 0:.3f}   (goal >= 0.8)")
PY
