#!/usr/bin/env bash
# The demo, as a new user runs it: `make demo` replays configs/captures/demo.pcap (and the
# outside host's frames, demo-outside.pcap) through DPDK net_pcap ports under configs/demo.toml.
# Its decisions are held to the flows the recording script wrote down
# (configs/captures/demo-flows.json): every allowed flow forwarded whole, every stopped one
# stopped by the named check or policy with no payload byte forwarded, the blocked name nowhere
# in the forwarded frames; and its summary names every decision, an example each, the names seen
# with their JA4, and where the events are, without DPDK's start-up notes.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
WORK=$(mktemp -d /tmp/portcullis-demo.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
C="$ROOT/configs/captures"

echo "--- make demo"
start=$(date +%s%N)
make -s -C "$ROOT" demo > "$WORK/demo.out" 2> "$WORK/demo.err" || { cat "$WORK/demo.out" "$WORK/demo.err"; fail "make demo failed"; }
ms=$(( ($(date +%s%N) - start) / 1000000 ))
cat "$WORK/demo.out"
echo "(make demo took $ms ms, the build already done)"

echo "--- the summary"
out="$WORK/demo.out"
grep -q "checks, flows fired/blocked:" "$out" || fail "the fired/blocked counters have no header"
for want in "stopped  sni_blocked .* drop .* 1/1  e.g. tls 10.99.0.1:[0-9]* -> 10.99.0.2:443 sni evil.example" \
            "stopped  tls_unexpected_port .* drop .*:4433" \
            "stopped  non_tls_on_tls_port .* reject .* 2/2" \
            "stopped  protocol_port_mismatch .* drop .*:5060" \
            "stopped  blocklist .* drop .* -> 10.99.0.66:443" \
            "stopped  inbound_default .* drop .* 10.99.0.2:[0-9]* -> 10.99.0.1:8080 (in on outside)" \
            "allowed  7 flows (icmp 2, quic 1, ssh 1, tls 2, udp 1)" \
            "demo.portcullis.test .* q13d" \
            "evil.example .* t13d" \
            "events: out/demo-eve.json" \
            "forwarded frames: out/demo-outside-tx.pcap"; do
  grep -q -- "$want" "$out" || fail "the summary lacks: $want"
done
# DPDK's own log lines start with their log type (EAL:, TELEMETRY:, ...) or, from drivers,
# their function's name (open_single_tx_pcap(): ...).
noise='^([A-Z0-9_]+: |[a-z0-9_]+\(\): )'
if grep -qE "$noise" "$WORK/demo.out" "$WORK/demo.err"; then
  fail "DPDK's log lines are in the demo's output: $(grep -hE "$noise" "$WORK/demo.out" "$WORK/demo.err")"
fi
# It ended because the replay was over, not at its 60-second cap.
grep -q "no traffic for 1000 ms: stopping" "$WORK/demo.err" || fail "the demo did not end with its replay: $(cat "$WORK/demo.err")"

echo "--- the decisions against the capture's known flows"
/usr/bin/python3 "$ROOT/tests/e2e/check_demo.py" "$C/demo-flows.json" "$C/demo.pcap" \
  "$C/demo-outside.pcap" "$ROOT/out/demo-inside-tx.pcap" "$ROOT/out/demo-outside-tx.pcap" \
  "$ROOT/out/demo-eve.json" || fail "the demo's decisions drifted from the capture's flows"
echo "PASS demo"
