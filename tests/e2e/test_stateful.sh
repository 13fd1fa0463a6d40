#!/usr/bin/env bash
# Stateful inspection end to end, with real clients and servers in the namespace lab
# (client = inside, server = outside):
# - connections opened from outside (ping, TCP) are refused and counted as inbound_default;
# - a UDP request/response from inside passes; unsolicited inbound UDP is dropped;
# - an ICMP port unreachable for an inside UDP flow passes as related;
# - a blind RST injected (scapy, raw socket) into a running download is dropped as out_of_window
#   and the download completes with the right checksum.
source "$(dirname "$0")/lib.sh"


lab_up
start_portcullisd
ip netns exec $NS_CL ping -c 1 -W 2 -q 10.99.0.2 >/dev/null || fail "inside -> outside ping"

log "outside -> inside is refused"
before=$(counter "s['drops']['inbound_default']")
ip netns exec $NS_CL socat -T 5 TCP-LISTEN:8080,reuseaddr,fork SYSTEM:'echo hi' &
PIDS+=($!)
sleep 0.3
if ip netns exec $NS_SV ping -c 2 -W 1 -q 10.99.0.1 >/dev/null 2>&1; then fail "ping from outside crossed"; fi
if ip netns exec $NS_SV socat -T 2 - TCP:10.99.0.1:8080,connect-timeout=2 </dev/null >/dev/null 2>&1; then
  fail "TCP from outside crossed"
fi
after=$(counter "s['drops']['inbound_default']")
echo "inbound_default drops: $before -> $after"
[ "$after" -ge $((before + 3)) ] || fail "expected at least 2 echo requests and 1 SYN refused"

log "UDP from inside passes both ways; unsolicited inbound UDP does not"
ip netns exec $NS_SV socat UDP-RECVFROM:5300,fork EXEC:cat &
PIDS+=($!)
sleep 0.3
# A few tries: the echo server may still be starting.
got=""
for _ in 1 2 3; do
  got=$(echo question | ip netns exec $NS_CL socat -T 2 - UDP:10.99.0.2:5300,sourceport=40053 || true)
  [ "$got" = question ] && break
  sleep 0.5
done
[ "$got" = question ] || fail "UDP echo through the appliance: got '$got'"
before=$(counter "s['drops']['inbound_default']")
echo unsolicited | ip netns exec $NS_SV socat -T 1 - UDP:10.99.0.1:40999,sourceport=53 || true
sleep 0.3
after=$(counter "s['drops']['inbound_default']")
[ "$after" -gt "$before" ] || fail "unsolicited inbound UDP was not dropped"

log "ICMP error for an inside UDP flow passes as related"
before=$(counter "s['related']")
# A few tries, a second apart: the kernel rate-limits the ICMP errors it sends.
for _ in 1 2 3; do
  echo probe | ip netns exec $NS_CL socat -T 1 - UDP:10.99.0.2:5999 >/dev/null 2>&1 || true
  sleep 0.5
  [ "$(counter "s['related']")" -gt "$before" ] && break
  sleep 0.6
done
after=$(counter "s['related']")
echo "related: $before -> $after"
[ "$after" -gt "$before" ] || fail "the server's port unreachable did not pass as related"

log "blind RST into a running download"
serve_blob 12000000
# 12 MB at 8 Mbit/s would take 12 s: the download runs until the RSTs are in, then the pace is lifted.
pace_server 8mbit
ip netns exec $NS_CL curl -sS --fail --max-time 60 http://10.99.0.2:8000/blob.bin -o "$WORK/got.bin" &
CURL=$!
# The client's port of the established download, from /proc/net/tcp (state 01, remote port 8000
# = 0x1F40): ss needs sock_diag, which minimal kernels lack.
hexport=""
for _ in $(seq 1 50); do
  hexport=$(ip netns exec $NS_CL cat /proc/net/tcp | awk '$4 == "01" && $3 ~ /:1F40$/ {split($2, a, ":"); print a[2]; exit}')
  [ -n "$hexport" ] && break
  sleep 0.1
done
[ -n "$hexport" ] || { ip netns exec $NS_CL cat /proc/net/tcp; fail "no running download to attack"; }
cport=$((16#$hexport))
before=$(counter "s['drops']['out_of_window']")
# Debian's scapy (python3-scapy) belongs to the system interpreter, whatever python3 is on PATH.
ip netns exec $NS_SV /usr/bin/python3 - "$cport" <<'PY'
# Learn the server's current sequence number from the client's ACKs (they keep coming while the
# paced server sends), then inject RSTs half the sequence space away: what a blind attacker
# sends, and certainly outside any window (a uniformly random guess would land in a
# multi-megabyte scaled window now and then).
import sys
from scapy.all import IP, TCP, conf, send, sniff
conf.verb = 0
cport = int(sys.argv[1])
seg = sniff(iface="sv0", count=1, timeout=10, filter=f"tcp src port {cport} and tcp dst port 8000 and tcp[tcpflags] & tcp-ack != 0")
if not seg:
    sys.exit("no ACK of the download seen")
seq = seg[0][TCP].ack
for k in range(20):
    bad = (seq + (1 << 31) + k * 1_000_003) & 0xFFFFFFFF
    send(IP(src="10.99.0.2", dst="10.99.0.1") / TCP(sport=8000, dport=cport, flags="R", seq=bad))
PY
pace_server off
wait $CURL || fail "the download broke under injected RSTs"
after=$(counter "s['drops']['out_of_window']")
echo "out_of_window drops: $before -> $after (20 injected)"
[ "$after" -ge $((before + 19)) ] || fail "injected RSTs were not dropped as out_of_window"
cmp -s "$WORK/www/blob.bin" "$WORK/got.bin" || fail "download corrupted"
# Drop events name the reason and the tuple (rate-limited, so at most 100 a second).
python3 - "$WORK/eve.json" <<'PY' || fail "drop events"
import json, sys
ev = [json.loads(l) for l in open(sys.argv[1])]
drops = [e for e in ev if e["event_type"] == "drop"]
inbound = [d for d in drops if d["drop"]["reason"] == "inbound_default" and d.get("src_ip") == "10.99.0.2"]
rsts = [d for d in drops if d["drop"]["reason"] == "out_of_window" and d.get("dest_ip") == "10.99.0.1"]
assert inbound, "no inbound_default drop event from the server"
assert len(rsts) == 20, f"{len(rsts)} out_of_window events for 20 injected RSTs"
print(f"{len(drops)} drop events: {len(inbound)} inbound_default, {len(rsts)} out_of_window")
PY
# The RSTs were dropped from a known connection: their events carry that connection's flow id,
# the one its flow event (written at the stop) has.
kill -TERM "$PCD_PID"; wait "$PCD_PID" 2>/dev/null || true
python3 - "$WORK/eve.json" <<'PY' || fail "drop events of a connection do not carry its flow id"
import json, sys
ev = [json.loads(l) for l in open(sys.argv[1])]
rsts = [d for d in ev if d["event_type"] == "drop" and d["drop"]["reason"] == "out_of_window"
        and d.get("dest_ip") == "10.99.0.1"]
port = rsts[0]["dest_port"]
flows = [e for e in ev if e["event_type"] == "flow" and e.get("src_port") == port
         and e.get("dest_ip") == "10.99.0.2"]
assert flows, f"no flow event for the download from port {port}"
ids = {d["flow_id"] for d in rsts}
assert ids == {flows[0]["flow_id"]}, f"drop flow ids {ids}, the download's {flows[0]['flow_id']}"
print(f"the 20 out_of_window drops carry the download's flow id {flows[0]['flow_id']}")
PY
log "PASS stateful inspection"
