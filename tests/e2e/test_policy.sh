#!/usr/bin/env bash
# Rules, blocklists and live reload, end to end (client inside, server outside):
# - an alert rule lets traffic through and counts it;
# - a reject rule answers at once: curl fails with "connection refused" instead of timing out;
# - an address on a blocklist is unreachable (ping, TCP) and counted;
# - a reload that blocklists the server blocks new connections while a running download to it
#   completes intact; a broken list is refused and the running policy stays;
# - events say why: the alert rule writes an `alert` naming it, the reject rule a `drop` naming
#   it with its action and flow id, a blocklisted ping a `drop` with its ICMP type and code;
#   rule hit counters survive the reload.
source "$(dirname "$0")/lib.sh"

# event 'PYTHON-CONDITION ON e': the first event of the log that satisfies it, or fail.
event() {
  python3 - "$WORK/eve.json" "$1" <<'PY' || fail "no event where $1 (events: $(tail -5 "$WORK/eve.json"))"
import json, sys
for e in map(json.loads, open(sys.argv[1])):
    if eval(sys.argv[2]):
        print(json.dumps(e)); sys.exit(0)
sys.exit(1)
PY
}
rule_hits() { counter "[r['hits'] for r in s['rules'] if r['name'] == '$1'][0]"; }

lab_up
ip -n $NS_SV addr add 10.99.0.3/24 dev sv0
echo "10.99.0.3/32 ; second server address, listed" > "$WORK/block.txt"
export EXTRA_TOML='
[[rules]]
name = "no-2222"
action = "reject"
direction = "outbound"
proto = "tcp"
dst_ports = ["2222"]

[[rules]]
name = "watch-8000"
action = "alert"
direction = "outbound"
proto = "tcp"
dst_ports = ["8000-8000"]

[blocklist]
files = ["block.txt"]'
start_portcullisd

# Bound to every address: the listed one (10.99.0.3) would answer if the blocklist let it through.
serve_blob 6000000 0.0.0.0
ip netns exec $NS_SV socat TCP-LISTEN:2222,reuseaddr,fork SYSTEM:'echo hi' &
PIDS+=($!)

log "alert rule: allowed and counted"
ip netns exec $NS_CL curl -sS --fail --max-time 10 -o /dev/null http://10.99.0.2:8000/ || fail "port 8000 should pass"
[ "$(counter "s['alerts']")" -ge 1 ] && [ "$(rule_hits watch-8000)" -ge 1 ] || fail "alert not counted"
sleep 0.3
event "e['event_type'] == 'alert' and e['alert']['signature'] == 'watch-8000' and e['alert']['rule_action'] == 'alert' and e['alert']['category'] == 'Portcullis rule' and e['dest_port'] == 8000"

log "reject rule: the client is refused at once"
start=$(date +%s%N)
rc=0; ip netns exec $NS_CL curl -sS --max-time 10 http://10.99.0.2:2222/ -o /dev/null 2>"$WORK/curl.err" || rc=$?
ms=$(( ($(date +%s%N) - start) / 1000000 ))
echo "curl exit $rc after ${ms} ms: $(cat "$WORK/curl.err")"
[ "$rc" = 7 ] || fail "expected curl's 'couldn't connect' (7) from a RST, got $rc"
[ "$ms" -lt 2000 ] || fail "the refusal took ${ms} ms: no RST reached the client"
[ "$(counter "s['rejects_sent']")" -ge 1 ] && [ "$(rule_hits no-2222)" -ge 1 ] || fail "reject not counted"
sleep 0.3
event "e['event_type'] == 'drop' and e['drop'].get('rule') == 'no-2222' and e['drop']['rule_action'] == 'reject' and e['dest_port'] == 2222 and e['flow_id'] > 0 and not e['timestamp'].endswith('.000000+0000')"

log "blocklist: the listed address is unreachable"
before=$(counter "s['drops']['blocklist']")
if ip netns exec $NS_CL ping -c 2 -W 1 -q 10.99.0.3 >/dev/null 2>&1; then fail "ping to a listed address crossed"; fi
if ip netns exec $NS_CL curl -sS --max-time 2 -o /dev/null http://10.99.0.3:8000/ 2>/dev/null; then fail "TCP to a listed address crossed"; fi
after=$(counter "s['drops']['blocklist']")
echo "blocklist drops: $before -> $after"
[ "$after" -ge $((before + 3)) ] || fail "listed traffic not counted as blocklist"
sleep 0.3
event "e['event_type'] == 'drop' and e['drop']['reason'] == 'blocklist' and e['proto'] == 'ICMP' and e['icmp_type'] == 8 and e['icmp_code'] == 0 and 'src_port' not in e"

log "reload: new connections blocked, the running download continues"
# 6 MB at 1 Mbit/s would take 48 s: the download runs across the reload, then the pace is lifted.
pace_server 1mbit
ip netns exec $NS_CL curl -sS --fail --max-time 90 http://10.99.0.2:8000/blob.bin -o "$WORK/got.bin" &
CURL=$!
sleep 1.5
echo "10.99.0.2/32" >> "$WORK/block.txt"
hits_before="$(rule_hits watch-8000) $(rule_hits no-2222)"
ctl reload | tee "$WORK/reload.json"
grep -q '"reloaded": true' "$WORK/reload.json" || fail "reload failed"
hits_after="$(rule_hits watch-8000) $(rule_hits no-2222)"
[ "$hits_after" = "$hits_before" ] || fail "rule hits changed at the reload: $hits_before -> $hits_after"
for h in $hits_after; do [ "$h" -ge 1 ] || fail "rule hits were reset: $hits_after"; done
echo "rule hits (watch-8000, no-2222) kept across the reload: $hits_after"
if ! kill -0 $CURL 2>/dev/null; then
  rc=0; wait $CURL || rc=$?
  fail "the download ended before the reload (curl exit $rc, $(stat -c %s "$WORK/got.bin" 2>/dev/null || echo 0) bytes): the test proves nothing"
fi
if ip netns exec $NS_CL curl -sS --max-time 2 -o /dev/null http://10.99.0.2:8000/ 2>/dev/null; then fail "a new connection passed after the reload"; fi
pace_server off
wait $CURL || fail "the established download broke at the reload"
cmp -s "$WORK/www/blob.bin" "$WORK/got.bin" || fail "download corrupted"

log "a broken list is refused; the running policy stays"
echo "not-an-address" >> "$WORK/block.txt"
ctl reload > "$WORK/bad.json" 2>&1 || true
cat "$WORK/bad.json"
grep -q "refused" "$WORK/bad.json" || fail "a broken list was accepted"
if ip netns exec $NS_CL curl -sS --max-time 2 -o /dev/null http://10.99.0.2:8000/ 2>/dev/null; then fail "the policy was lost"; fi
log "PASS policy"
