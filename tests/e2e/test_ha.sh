#!/bin/bash
# Active-passive failover (issue 5): two appliances in parallel between a client-side and a
# server-side Linux bridge, with a two-path HA link between them.
#
#   client 10.99.0.1 -- [br c] --+-- in0 [A, node 1, priority 200] out0 --+-- [br s] -- server 10.99.0.2
#                                +-- in0 [B, node 2, priority 100] out0 --+
#                                     A ha0 10.98.0.1 <-> 10.98.0.2 ha0 B  (path 0)
#                                     A ha1 10.98.1.1 <-> 10.98.1.2 ha1 B  (path 1)
#
# The bridges age their MAC tables at once (ageing_time 0): they flood every frame to both
# appliances like a hub, and the standby drops what it gets, so frames reach whichever is active.
# (On real switches the new active must make them relearn: see README, "HA and switches".)
# Pickup of unsynced mid-stream connections is off: only state sync can carry a connection over.
source "$(dirname "$0")/lib.sh"
NS_CL=pc-ha-client
NS_SV=pc-ha-server
NS_A=pc-ha-a
NS_B=pc-ha-b
BR_C=pcha-brc
BR_S=pcha-brs
INTERVAL=${HA_INTERVAL_MS:-50}
DEAD_AFTER=3

ha_teardown() {
  ip netns pids $NS_A 2>/dev/null | xargs -r kill -9 2>/dev/null || true
  ip netns pids $NS_B 2>/dev/null | xargs -r kill -9 2>/dev/null || true
  ip netns del $NS_A 2>/dev/null || true
  ip netns del $NS_B 2>/dev/null || true
  for l in $BR_C $BR_S pcha-cl pcha-sv pcha-ain pcha-aout pcha-bin pcha-bout; do
    ip link del $l 2>/dev/null || true
  done
  if [ -n "${KEEP_HA_LOGS:-}" ]; then cp "$WORK"/*.log "$WORK"/*eve.json /tmp/ 2>/dev/null || true; fi
}
ha_exit() {
  local rc=$?
  if [ $rc -ne 0 ]; then
    for n in a b; do
      [ -f "$WORK/$n.log" ] && { echo "--- appliance $n log ---" >&2; tail -30 "$WORK/$n.log" >&2; }
    done
  fi
  ha_teardown
  (exit $rc)
  cleanup
}
trap ha_exit EXIT INT TERM

[ "$(id -u)" = 0 ] || fail "end-to-end tests need root (network namespaces)"
ha_teardown
for ns in $NS_CL $NS_SV $NS_A $NS_B; do
  ip netns del $ns 2>/dev/null || true
  ip netns add $ns
  ip netns exec $ns sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
  ip -n $ns link set lo up
done
for br in $BR_C $BR_S; do
  ip link add $br type bridge ageing_time 0 stp_state 0
  sysctl -qw net.ipv6.conf.$br.disable_ipv6=1
  ip link set $br up
done
# veth ROOT_END NS_END NS BRIDGE: one end on the bridge, the other in the namespace.
veth() {
  ip link add "$1" type veth peer name "$2" netns "$3"
  sysctl -qw net.ipv6.conf.$1.disable_ipv6=1
  ip link set "$1" master "$4" up
  ethtool -K "$1" tx off rx off >/dev/null
  ip netns exec "$3" ethtool -K "$2" tx off rx off >/dev/null
  ip -n "$3" link set "$2" up
}
veth pcha-cl cl0 $NS_CL $BR_C
veth pcha-sv sv0 $NS_SV $BR_S
veth pcha-ain in0 $NS_A $BR_C
veth pcha-aout out0 $NS_A $BR_S
veth pcha-bin in0 $NS_B $BR_C
veth pcha-bout out0 $NS_B $BR_S
ip -n $NS_CL addr add 10.99.0.1/24 dev cl0
ip -n $NS_SV addr add 10.99.0.2/24 dev sv0
for p in 0 1; do
  ip link add ha$p netns $NS_A type veth peer name ha$p netns $NS_B
  ip -n $NS_A addr add 10.98.$p.1/30 dev ha$p; ip -n $NS_A link set ha$p up
  ip -n $NS_B addr add 10.98.$p.2/30 dev ha$p; ip -n $NS_B link set ha$p up
done
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$WORK/ha.key"
chmod 600 "$WORK/ha.key"
printf 'blocked.portcullis.test\n' > "$WORK/sni-block.txt"

# write_config NAME NODE PRIORITY PREEMPT LOCAL_OCTET PEER_OCTET
write_config() {
  { lab_config "pc-ha-$1" in0 out0 "$WORK/$1.sock" "$WORK/$1-eve.json"; cat <<TOML; } > "$WORK/$1.toml"
[inspect]
sni_block_files = ["sni-block.txt"]
[inspect.actions]
sni_blocked = "drop"
[ha]
enabled = true
node_id = $2
priority = $3
preempt = $4
interval_ms = $INTERVAL
dead_after = $DEAD_AFTER
key_file = "$WORK/ha.key"
[[ha.paths]]
local = "10.98.0.$5:7600"
peer = "10.98.0.$6:7600"
[[ha.paths]]
local = "10.98.1.$5:7601"
peer = "10.98.1.$6:7601"
TOML
  "$BIN/portcullisd" --check-config "$WORK/$1.toml" >/dev/null
}

declare -A APID
# start_appliance NAME NS: runs portcullisd in the appliance's namespace.
start_appliance() {
  ip netns exec "$2" "$BIN/portcullisd" --config "$WORK/$1.toml" >>"$WORK/$1.log" 2>&1 &
  APID[$1]=$!
  PIDS+=("$!")
  for _ in $(seq 1 100); do
    "$BIN/portcullisctl" --socket "$WORK/$1.sock" status >/dev/null 2>&1 && return 0
    kill -0 "${APID[$1]}" 2>/dev/null || fail "appliance $1 exited at start: $(tail -5 "$WORK/$1.log")"
    sleep 0.1
  done
  fail "appliance $1 did not answer on its control socket"
}
hactl() { "$BIN/portcullisctl" --socket "$WORK/$1.sock" "${@:2}"; }
# ha_get NAME EXPR: a value of `ha status` (python expression over s).
ha_get() { hactl "$1" ha --json | python3 -c "import json,sys; s=json.load(sys.stdin); print($2)"; }
# wait_ha NAME EXPR SECONDS: until the expression holds.
wait_ha() {
  local end=$(( $(date +%s) + ${3:-10} ))
  while [ "$(date +%s)" -le $end ]; do
    [ "$(ha_get "$1" "$2" 2>/dev/null)" = True ] && return 0
    sleep 0.1
  done
  fail "appliance $1: '$2' did not hold within ${3:-10} s: $(hactl "$1" ha --json | head -c 1500)"
}
stat_get() { hactl "$1" stats --json | python3 -c "import json,sys; s=json.load(sys.stdin); print($2)"; }

write_config a 1 200 false 1 2
write_config b 2 100 false 2 1
log "starting appliance A (priority 200), then B (priority 100); heartbeats every $INTERVAL ms, dead after $DEAD_AFTER"
start_appliance a $NS_A
wait_ha a "s['role']=='active'" 10
start_appliance b $NS_B
wait_ha b "s['role']=='standby' and s['bulk']['state']=='done' and s['eligible']" 15
wait_ha a "s['peer'] is not None and s['peer']['role']=='standby'" 5

# Servers: nginx with a 20 MB file over TLS, sshd, the probe receiver.
head -c 20000000 /dev/urandom > "$WORK/blob.bin"
mkdir -p "$WORK/www"; cp "$WORK/blob.bin" "$WORK/www/blob.bin"
CERT_NAMES="blocked.portcullis.test" start_nginx
ssh-keygen -q -t ed25519 -N '' -f "$WORK/host_key"
ssh-keygen -q -t ed25519 -N '' -f "$WORK/client_key"
mkdir -p /run/sshd
cat > "$WORK/sshd_config" <<SSHD
ListenAddress 10.99.0.2:22
HostKey $WORK/host_key
AuthorizedKeysFile $WORK/client_key.pub
PermitRootLogin yes
PasswordAuthentication no
UsePAM no
StrictModes no
PidFile $WORK/sshd.pid
ClientAliveInterval 0
SSHD
ip netns exec $NS_SV /usr/sbin/sshd -D -e -f "$WORK/sshd_config" 2>"$WORK/sshd.log" &
PIDS+=($!)
wait_listen 10.99.0.2/443 10.99.0.2/22

PROBE_SECS=40
ip netns exec $NS_SV python3 "$ROOT/tests/e2e/probe.py" recv 10.99.0.2 9999 "$WORK/probe.txt" $((PROBE_SECS + 2)) &
PROBE_RX=$!; PIDS+=($!)
sleep 0.3
ip netns exec $NS_CL python3 "$ROOT/tests/e2e/probe.py" send 10.99.0.2 9999 1 $PROBE_SECS >/dev/null &
PIDS+=($!)

log "a paced TLS download (20 MB, the server's link at 4 Mbit/s until after the failover) and an SSH session through A"
pace_server 4mbit
ip netns exec $NS_CL curl -sk --max-time 60 --resolve e2e.portcullis.test:443:10.99.0.2 \
  -o "$WORK/got.bin" -w '%{http_code} %{size_download}\n' https://e2e.portcullis.test/blob.bin \
  >"$WORK/curl.out" 2>"$WORK/curl.err" &
CURL=$!; PIDS+=($!)
mkfifo "$WORK/ssh.in"
# Held open read-write: opening a FIFO for writing alone would wait for a reader.
exec 7<>"$WORK/ssh.in"
ip netns exec $NS_CL ssh -T -i "$WORK/client_key" -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
  -o ServerAliveInterval=0 -o BatchMode=yes root@10.99.0.2 sh <"$WORK/ssh.in" >"$WORK/ssh.out" 2>"$WORK/ssh.err" &
SSH=$!; PIDS+=($!)
echo "echo before-failover" >&7
for _ in $(seq 1 50); do grep -q before-failover "$WORK/ssh.out" 2>/dev/null && break; sleep 0.1; done
grep -q before-failover "$WORK/ssh.out" || fail "the SSH session did not answer before the failover: $(cat "$WORK/ssh.err")"

log "a connection to a blocked SNI: its hello is dropped and its retransmissions keep coming"
ip netns exec $NS_CL curl -sk --max-time 20 --resolve blocked.portcullis.test:443:10.99.0.2 \
  https://blocked.portcullis.test/ >/dev/null 2>&1 &
BLOCKED=$!; PIDS+=($!)

# Capture the HA link at B, to replay the active's datagrams later.
ip netns exec $NS_B tcpdump -q -i ha0 -w "$WORK/ha.pcap" udp port 7600 >/dev/null 2>&1 &
TCPDUMP=$!; PIDS+=($!)
sleep 1.5
# A short connection while the capture runs: its sync datagrams are what gets replayed later.
ip netns exec $NS_CL curl -sk --max-time 5 --resolve e2e.portcullis.test:443:10.99.0.2 \
  -o /dev/null https://e2e.portcullis.test/ || true

sleep 5
a_flows=$(ha_get a "s['flows']"); b_flows=$(ha_get b "s['flows']")
log "before the failover: A has $a_flows flows, B (standby) holds $b_flows synced"
kill -INT $TCPDUMP 2>/dev/null || true
b_insp_before=$(stat_get b "s['drops']['inspection']" 2>/dev/null || echo 0)

kill -0 $CURL 2>/dev/null || fail "the download ended before the failover: the test proves nothing ($(cat "$WORK/curl.out" "$WORK/curl.err"))"
log "kill -9 of the active (A)"
kill -9 "${APID[a]}"
wait_ha b "s['role']=='active'" 5
log "B is active: $(ha_get b "s['last_transition']")"

echo "echo after-failover" >&7
for _ in $(seq 1 100); do grep -q after-failover "$WORK/ssh.out" 2>/dev/null && break; sleep 0.1; done
grep -q after-failover "$WORK/ssh.out" || fail "the SSH session did not answer after the failover: $(cat "$WORK/ssh.err")"
log "the SSH session answers after the failover"
pace_server off

wait $CURL || fail "the download failed: $(cat "$WORK/curl.out" "$WORK/curl.err"); B's drops: $(stat_get b "s['drops']")"
[ "$(sha256sum < "$WORK/got.bin")" = "$(sha256sum < "$WORK/blob.bin")" ] || fail "the download's checksum differs"
log "the download completed with the right checksum: $(cat "$WORK/curl.out")"

if wait $BLOCKED; then fail "the connection to the blocked SNI succeeded"; fi
b_insp=$(stat_get b "s['drops']['inspection']")
[ "$b_insp" -gt "$b_insp_before" ] || fail "B did not drop the blocked connection's packets as inspection ($b_insp_before -> $b_insp)"
log "the blocked connection stayed blocked on B: $((b_insp - b_insp_before)) of its packets dropped as inspection"

wait $PROBE_RX || true
probe=$(python3 "$ROOT/tests/e2e/probe.py" gaps "$WORK/probe.txt" 1)
outage=$(echo "$probe" | python3 -c "import json,sys; print(json.load(sys.stdin)['outage_ms'])")
limit=$((3 * INTERVAL + 20))
log "probe stream (1 ms): $probe; limit 3 x $INTERVAL + 20 = $limit ms"
python3 -c "import sys; sys.exit(0 if $outage <= $limit else 1)" || fail "outage $outage ms > $limit ms"

log "forged and replayed HA datagrams to B"
before=$(ha_get b "(s['auth']['bad_tag'], s['auth']['replayed'], s['sync']['imported'], s['flows'])")
sent=$(ip netns exec $NS_A /usr/bin/python3 "$ROOT/tests/e2e/ha_inject.py" replay "$WORK/ha.pcap" 10.98.0.1 10.98.0.2 7600 5)
[ "$sent" -ge 1 ] || fail "no sync datagram of A was captured to replay"
ip netns exec $NS_A python3 "$ROOT/tests/e2e/ha_inject.py" forge 10.98.0.2 7600 1 >/dev/null
sleep 0.5
after=$(ha_get b "(s['auth']['bad_tag'], s['auth']['replayed'], s['sync']['imported'], s['flows'])")
python3 - "$before" "$after" "$sent" <<'PY' || fail "forged/replayed datagrams: before $before after $after"
import ast, sys
b, a, sent = ast.literal_eval(sys.argv[1]), ast.literal_eval(sys.argv[2]), int(sys.argv[3])
assert a[0] - b[0] == 3, "3 forged datagrams counted as bad_tag"
assert a[1] - b[1] == sent, "every replayed datagram counted as replayed"
assert a[2] == b[2], "no flow imported"
PY
log "refused: 3 forged (bad tag), $sent replayed; no flow changed ($before -> $after)"

log "A restarts (preempt off on both): it bulk-syncs and stays standby"
write_config a 1 200 false 1 2
start_appliance a $NS_A
wait_ha a "s['role']=='standby' and s['bulk']['state']=='done'" 15
python3 - <<PY || fail "A's synced table differs from B's"
import json, subprocess, time
def st(n):
    return json.loads(subprocess.check_output(["$BIN/portcullisctl", "--socket", "$WORK/%s.sock" % n, "ha", "--json"]))
for _ in range(50):
    a, b = st("a"), st("b")
    if a["flows"] == b["flows"]:
        print("A synced %d flows = B's table (%d); bulk: %s" % (a["flows"], b["flows"], a["bulk"]))
        break
    time.sleep(0.1)
else:
    raise SystemExit("A %d flows, B %d" % (a["flows"], b["flows"]))
PY
sleep $(python3 -c "print($INTERVAL * $DEAD_AFTER * 4 / 1000)")
[ "$(ha_get a "s['role']")" = standby ] && [ "$(ha_get b "s['role']")" = active ] \
  || fail "fail-back happened with preempt off"
log "no fail-back with preempt off"

log "preempt on (config reload on both): A takes its place back"
ip netns exec $NS_SV python3 "$ROOT/tests/e2e/probe.py" recv 10.99.0.2 9998 "$WORK/probe2.txt" 6 &
PROBE_RX=$!; PIDS+=($!)
sleep 0.3
ip netns exec $NS_CL python3 "$ROOT/tests/e2e/probe.py" send 10.99.0.2 9998 1 5 >/dev/null &
PIDS+=($!)
sleep 1
sed -i 's/^preempt = false/preempt = true/' "$WORK/a.toml" "$WORK/b.toml"
hactl a reload >/dev/null; hactl b reload >/dev/null
wait_ha a "s['role']=='active'" 5
wait_ha b "s['role']=='standby'" 5
wait $PROBE_RX || true
log "fail-back done; probe stream across it: $(python3 "$ROOT/tests/e2e/probe.py" gaps "$WORK/probe2.txt" 1)"
log "operator: promote B, then demote it"
hactl b ha promote >/dev/null
wait_ha b "s['role']=='active'" 5
wait_ha a "s['role']=='standby'" 5
hactl b ha demote >/dev/null
wait_ha a "s['role']=='active'" 5
wait_ha b "s['role']=='standby' and not s['eligible']" 5
log "promote and demote moved the active role and back"
grep -q '"event_type":"ha"' "$WORK/b-eve.json" || fail "no ha event in B's event log"
log "ha events: $(grep -c '"event_type":"ha"' "$WORK/a-eve.json") in A's log, $(grep -c '"event_type":"ha"' "$WORK/b-eve.json") in B's"
exec 7>&-
log "PASS"
