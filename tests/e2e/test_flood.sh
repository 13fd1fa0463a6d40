#!/usr/bin/env bash
# A SYN flood far larger than the connection table, from inside (spoofed sources, scapy at L2),
# towards a host that never answers, while a rate-limited download runs: the flood fills the
# half-open room and is refused (half_open_limit / table_full); the established download
# completes intact.
source "$(dirname "$0")/lib.sh"


lab_up
export EXTRA_TOML='
[engine]
flow_capacity = 512
[conntrack]
tcp_syn_sent = 3'
start_portcullisd
CAP=512

serve_blob 12000000
# 12 MB at 1 Mbit/s would take 96 s: the download is still running when the flood ends (it takes
# 10-15 s), then the pace is lifted and the rest arrives at once.
pace_server 1mbit
ip netns exec $NS_CL curl -sS --fail --max-time 120 http://10.99.0.2:8000/blob.bin -o "$WORK/got.bin" &
CURL=$!
sleep 1

N=20000
log "flooding: $N SYNs from spoofed inside sources to 10.99.0.77:80 (table: $CAP connections)"
mac=$(ip netns exec $NS_CL cat /sys/class/net/cl0/address)
ip netns exec $NS_CL /usr/bin/python3 - "$N" "$mac" <<'PY'
import random, sys
from scapy.all import Ether, IP, TCP, conf, sendp
conf.verb = 0
n, mac = int(sys.argv[1]), sys.argv[2]
pkts = [Ether(src=mac, dst="ff:ff:ff:ff:ff:ff") / IP(src=f"10.99.{random.randint(1, 250)}.{random.randint(1, 250)}", dst="10.99.0.77")
        / TCP(sport=random.randint(1024, 65535), dport=80, flags="S", seq=random.getrandbits(32)) for _ in range(n)]
sendp(pkts, iface="cl0")
PY
log "flood sent"
if ! kill -0 $CURL 2>/dev/null; then
  rc=0; wait $CURL || rc=$?
  [ "$rc" = 0 ] || fail "the download broke during the flood (curl exit $rc)"
  fail "the download ended before the flood did: the test proves nothing"
fi
pace_server off
wait $CURL || fail "the download broke during the flood"
cmp -s "$WORK/www/blob.bin" "$WORK/got.bin" || fail "download corrupted"
ctl stats
refused=$(counter "s['drops']['half_open_limit'] + s['drops']['table_full']")
active=$(counter "s['flows_active']")
echo "flood SYNs refused: $refused; connections in the table: $active (capacity $CAP)"
[ "$refused" -ge $((N - CAP)) ] || fail "expected at least $((N - CAP)) flood SYNs refused, got $refused"
[ "$(counter "s['drops']['half_open_limit']")" -gt 0 ] || fail "the half-open limit never acted"
[ "$(counter "s['half_open']")" -le $((CAP / 4)) ] || fail "more half-open connections than the limit"
# Half-open entries expire fast (tcp_syn_sent = 3 s here) and the room is free again.
sleep 5
[ "$(counter "s['half_open']")" = 0 ] || fail "half-open count did not return to 0: $(counter "s['half_open']")"
ip netns exec $NS_CL curl -sS --fail --max-time 10 -o /dev/null http://10.99.0.2:8000/ || fail "no new connection after the flood"
log "PASS flood"
