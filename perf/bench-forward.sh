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
awk '/statistics for port/ {port=$(NF-1)} /Rx-pps:/ && port=="0" {print $2}' "$WORK/testpmd.log" \
  | awk '$1 > 0' | tail -n +2 | head -n -1 > "$WORK/tp.rates"
TP=$(median < "$WORK/tp.rates")

# portcullisd in both engine modes: "bypass" forwards untouched (the I/O path: "forwarding only"),
# "inspect" parses every frame and tracks it in its connection (TCP windows included); the
# generated connections open with real handshakes, so nothing is dropped.
run_portcullisd() {
  local mode=$1
  echo "== portcullisd, 1 worker (busy poll), engine mode $mode, same devices, ${SECS}s"
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
[engine]
mode = "$mode"
[control]
socket = "$WORK/ctl.sock"
[run]
max_duration_secs = $((SECS + 2))
TOML
  "$ROOT/target/release/portcullisd" --config "$WORK/bench.toml" > "$WORK/pc.log" 2>&1 &
  local pc=$! prev="" prev_t=""
  for _ in $(seq 1 100); do "$ROOT/target/release/portcullisctl" -s "$WORK/ctl.sock" status >/dev/null 2>&1 && break; sleep 0.1; done
  : > "$WORK/pc.rates"
  for _ in $(seq 1 "$SECS"); do
    sleep 1
    # A sample the control socket did not answer is skipped: the next rate spans both seconds
    # (by the appliance's own uptime).
    line=$("$ROOT/target/release/portcullisctl" -s "$WORK/ctl.sock" stats --json 2>/dev/null \
      | python3 -c "import json,sys; s=json.load(sys.stdin); print(s['ports'][1]['tx_packets'], s['uptime_secs'])" 2>/dev/null) || continue
    set -- $line
    if [ -n "$prev" ]; then python3 -c "print(int(($1-$prev)/($2-$prev_t)))" >> "$WORK/pc.rates"; fi
    prev=$1; prev_t=$2
  done
  wait "$pc" || true
  grep -E "^(drops|flows)" "$WORK/pc.log" || true
  # Skip the first interval (warm-up).
  tail -n +2 "$WORK/pc.rates" | median
}
PC_BYPASS=$(run_portcullisd bypass | tee /dev/stderr | tail -1)
PC_INSPECT=$(run_portcullisd inspect | tee /dev/stderr | tail -1)

python3 - "$TP" "$PC_BYPASS" "$PC_INSPECT" "$TSC_HZ" <<'PY'
import sys
tp, byp, insp, hz = (float(x) for x in sys.argv[1:5])
def line(name, r):
    print(f"{name:<28}: {r/1e6:6.2f} Mpps  ({hz/r if r else 0:6.1f} cycles/packet at {hz/1e9:.2f} GHz)")
line("dpdk-testpmd io", tp)
line("portcullisd bypass", byp)
line("portcullisd inspect", insp)
print(f"ratio bypass/testpmd : {byp/tp if tp else 0:.3f}   (goal >= 0.8: the forwarding path)")
print(f"ratio inspect/testpmd: {insp/tp if tp else 0:.3f}   (stateful inspection of every frame)")
PY
