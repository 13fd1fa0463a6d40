#!/usr/bin/env bash
# Two namespaces joined only through portcullisd on net_af_packet ports: ping and a real TLS
# download (curl against nginx) cross the appliance, the bytes match by checksum, and the
# appliance's counters agree exactly with the kernel's counters of the interfaces on either side.
source "$(dirname "$0")/lib.sh"

lab_up
log "lab up; starting portcullisd"
start_portcullisd

# Frames the namespaces sent at link-up, before the appliance opened its ports, never reached it:
# compare counters from a quiet moment after start on.
wait_quiet() {
  # Quiet means: the hosts sent nothing new and the appliance received nothing new.
  local prev="" now
  for _ in $(seq 1 50); do
    now="$(if_counter $NS_CL cl0 tx packets) $(if_counter $NS_SV sv0 tx packets) \
$(ctl stats --json | python3 -c "import json,sys; print(sum(p['rx_packets'] for p in json.load(sys.stdin)['ports']))")"
    [ "$now" = "$prev" ] && return 0
    prev=$now; sleep 0.3
  done
}
wait_quiet
ctl stats --json > "$WORK/stats0.json"
b_cl_tx=$(if_counter $NS_CL cl0 tx packets); b_cl_rx=$(if_counter $NS_CL cl0 rx packets)
b_sv_tx=$(if_counter $NS_SV sv0 tx packets); b_sv_rx=$(if_counter $NS_SV sv0 rx packets)
b_in_rx=$(json_get "$WORK/stats0.json" "s['ports'][0]['rx_packets']"); b_in_tx=$(json_get "$WORK/stats0.json" "s['ports'][0]['tx_packets']")
b_out_rx=$(json_get "$WORK/stats0.json" "s['ports'][1]['rx_packets']"); b_out_tx=$(json_get "$WORK/stats0.json" "s['ports'][1]['tx_packets']")
# Where a frame can be lost outside the appliance, with a counter that says so: the packet socket's
# ring (reported by the PMD as the port's imissed) and the veths (tx_dropped/rx_dropped).
lost_counters() {
  local f=$1
  echo "$(json_get "$f" "s['ports'][0]['device_stats']['imissed']") $(json_get "$f" "s['ports'][1]['device_stats']['imissed']") \
$(( $(if_counter "" pce-in tx dropped) + $(if_counter $NS_CL cl0 rx dropped) )) \
$(( $(if_counter "" pce-out tx dropped) + $(if_counter $NS_SV sv0 rx dropped) ))"
}
read -r b_miss_in b_miss_out b_lost_to_cl b_lost_to_sv <<< "$(lost_counters "$WORK/stats0.json")"

# Nothing may cross without the appliance: with it stopped (SIGSTOP) ping must fail.
kill -STOP "$PCD_PID"
if ip netns exec $NS_CL ping -c 2 -W 1 -q 10.99.0.2 >/dev/null 2>&1; then
  kill -CONT "$PCD_PID"; fail "ping crossed while portcullisd was stopped: the lab leaks"
fi
kill -CONT "$PCD_PID"

log "ping through the appliance"
ip netns exec $NS_CL ping -c 5 -i 0.2 -W 2 -q 10.99.0.2 | tee "$WORK/ping.txt"
grep -q " 0% packet loss" "$WORK/ping.txt" || fail "ping lost packets"

log "TLS download: nginx in the server namespace, curl in the client namespace"
mkdir -p "$WORK/www"
head -c 8000000 /dev/urandom > "$WORK/www/blob.bin"
start_nginx
ip netns exec $NS_CL curl -sS --fail --max-time 60 --cacert "$WORK/cert.pem" \
  --resolve e2e.portcullis.test:443:10.99.0.2 https://e2e.portcullis.test/blob.bin -o "$WORK/got.bin"
want=$(sha256sum < "$WORK/www/blob.bin" | cut -d' ' -f1)
got=$(sha256sum < "$WORK/got.bin" | cut -d' ' -f1)
[ "$want" = "$got" ] || fail "checksum mismatch: sent $want, received $got"
log "download ok: sha256 $got ($(stat -c %s "$WORK/got.bin") bytes)"

# Counters: wait until the links are quiet (no frame for a moment), then compare.
log "comparing counters"
wait_quiet
ctl stats --json > "$WORK/stats.json"
ctl stats
ctl status
cl_tx=$(( $(if_counter $NS_CL cl0 tx packets) - b_cl_tx )); cl_rx=$(( $(if_counter $NS_CL cl0 rx packets) - b_cl_rx ))
sv_tx=$(( $(if_counter $NS_SV sv0 tx packets) - b_sv_tx )); sv_rx=$(( $(if_counter $NS_SV sv0 rx packets) - b_sv_rx ))
in_rx=$(( $(json_get "$WORK/stats.json" "s['ports'][0]['rx_packets']") - b_in_rx ))
in_tx=$(( $(json_get "$WORK/stats.json" "s['ports'][0]['tx_packets']") - b_in_tx ))
out_rx=$(( $(json_get "$WORK/stats.json" "s['ports'][1]['rx_packets']") - b_out_rx ))
out_tx=$(( $(json_get "$WORK/stats.json" "s['ports'][1]['tx_packets']") - b_out_tx ))
read -r miss_in miss_out lost_to_cl lost_to_sv <<< "$(lost_counters "$WORK/stats.json")"
miss_in=$((miss_in - b_miss_in)); miss_out=$((miss_out - b_miss_out))
lost_to_cl=$((lost_to_cl - b_lost_to_cl)); lost_to_sv=$((lost_to_sv - b_lost_to_sv))
drops=$(json_get "$WORK/stats.json" "sum(s['drops'].values())")
flows=$(json_get "$WORK/stats.json" "s['flows_created']")
echo "since the quiet baseline:"
echo "client sent $cl_tx, appliance inside rx $in_rx (+ $miss_in missed by the port)"
echo "appliance outside tx $out_tx, server received $sv_rx (+ $lost_to_sv dropped by the kernel)"
echo "server sent $sv_tx, appliance outside rx $out_rx (+ $miss_out missed by the port)"
echo "appliance inside tx $in_tx, client received $cl_rx (+ $lost_to_cl dropped by the kernel)"
[ "$cl_tx" = "$((in_rx + miss_in))" ] || fail "client sent $cl_tx frames but the appliance received $in_rx (+$miss_in missed) on inside"
[ "$sv_tx" = "$((out_rx + miss_out))" ] || fail "server sent $sv_tx frames but the appliance received $out_rx (+$miss_out missed) on outside"
[ "$out_tx" = "$((sv_rx + lost_to_sv))" ] || fail "appliance sent $out_tx frames on outside but the server received $sv_rx (+$lost_to_sv dropped)"
[ "$in_tx" = "$((cl_rx + lost_to_cl))" ] || fail "appliance sent $in_tx frames on inside but the client received $cl_rx (+$lost_to_cl dropped)"
[ "$drops" = 0 ] || fail "appliance dropped $drops frames"
[ "$out_rx" -gt 5000 ] || fail "too few frames counted ($out_rx) from the server for an 8 MB download"
# Exactly three flows crossed: the ping sent while the appliance was stopped, the ping, the
# download (a flow split between workers would be counted twice).
[ "$flows" = 3 ] || fail "expected 3 flows (2 pings, 1 TCP), got $flows"

if [ "${CHECK_STEERING:-0}" = 1 ]; then
  # Two workers, ports without RSS: each frame's poller hashed it and handed it, through a ring,
  # to the worker owning its flow. Every steered frame was received, and flows were not split
  # (a split flow would be created in both workers' tables).
  nw=$(json_get "$WORK/stats.json" "len(s['workers'])")
  out=$(json_get "$WORK/stats.json" "sum(w['steered_out'] for w in s['workers'])")
  inn=$(json_get "$WORK/stats.json" "sum(w['steered_in'] for w in s['workers'])")
  busy=$(json_get "$WORK/stats.json" "sum(1 for w in s['workers'] if w['rx_packets'] > 0)")
  echo "workers $nw, steered out $out, steered in $inn, workers that processed frames: $busy"
  [ "$nw" = 2 ] || fail "expected 2 workers, got $nw"
  [ "$out" -gt 0 ] || fail "no frame was steered between workers"
  [ "$out" = "$inn" ] || fail "steered out $out but in $inn"
  [ "$busy" = 2 ] || fail "only $busy worker(s) processed frames"
fi

log "SIGTERM: clean stop with final counters"
kill -TERM "$PCD_PID"
for _ in $(seq 1 50); do kill -0 "$PCD_PID" 2>/dev/null || break; sleep 0.1; done
kill -0 "$PCD_PID" 2>/dev/null && fail "portcullisd did not stop on SIGTERM"
wait "$PCD_PID" || fail "portcullisd exited non-zero after SIGTERM"
grep -q "^drops:" "$WORK/portcullisd.log" || fail "no final counters printed at stop"
[ "$(json_get "$WORK/final.json" "s['ports'][0]['rx_packets']")" -ge "$in_rx" ] || fail "final counters went backwards"
# The event log: one flow record per connection at stop, the download's with its bytes.
python3 - "$WORK/eve.json" "$flows" <<'PY' || fail "flow events"
import json, sys
ev = [json.loads(l) for l in open(sys.argv[1])]
flows = [e for e in ev if e["event_type"] == "flow"]
assert len(flows) == int(sys.argv[2]), f"{len(flows)} flow events for {sys.argv[2]} connections"
tls = [f for f in flows if f["proto"] == "TCP" and f["dest_port"] == 443]
assert len(tls) == 1 and tls[0]["src_ip"] == "10.99.0.1" and tls[0]["dest_ip"] == "10.99.0.2", tls
assert tls[0]["flow"]["bytes_toclient"] > 8_000_000, tls[0]["flow"]
assert tls[0].get("app_proto") == "tls", tls[0]
print(f"{len(flows)} flow events; the download: {tls[0]['flow']['bytes_toclient']} bytes to the client, state {tls[0]['flow']['state']}")
PY
log "PASS inline forwarding"
