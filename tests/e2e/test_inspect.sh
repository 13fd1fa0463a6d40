#!/usr/bin/env bash
# Inspection on every port, with real clients and servers through the appliance:
# - TLS to 443 passes and is logged (a tls event with SNI, JA3, JA4);
# - TLS to odd ports (9001, 8080) raises tls_unexpected_port, and with action drop the client fails;
# - plain HTTP and SSH to port 443 are stopped as non_tls_on_tls_port (reject: reset at once);
# - HTTP to the SIP port 5060 is stopped (protocol_port_mismatch);
# - a blocklisted SNI is rejected: curl fails at once with a reset, and so does the server's end;
# - a TLS 1.0 client is stopped when the minimum is 1.2 (a TLS 1.2 client passes);
# - a ClientHello spread over several segments (MTU 576, a long ALPN list) is reassembled and
#   its SNI enforced both ways: a blocked name is stopped at the segment that carries it, and
#   its tls and alert events name it.
source "$(dirname "$0")/lib.sh"

lab_up
ip -n $NS_SV addr add 10.99.0.3/24 dev sv0
cat > "$WORK/sni-block.txt" <<'LIST'
# names nobody inside may reach
blocked.portcullis.test
*.evil.portcullis.test
LIST
EXTRA_TOML='
[inspect]
min_tls_version = "1.2"
sni_block_files = ["sni-block.txt"]
reserved_ports = { sip = [5060] }
[inspect.actions]
tls_unexpected_port = "drop"
non_tls_on_tls_port = "reject"
protocol_port_mismatch = "drop"
sni_blocked = "reject"
tls_version = "drop"
cert_self_signed = "alert"'
start_portcullisd

log "servers: nginx TLS on 10.99.0.2:443, :9001 and :8080 (TLS 1.0-1.3), HTTP on 10.99.0.3:443 and 10.99.0.2:5060"
mkdir -p "$WORK/www"
head -c 1000000 /dev/urandom > "$WORK/www/blob.bin"
CERT_NAMES="blocked.portcullis.test x.evil.portcullis.test" start_nginx '
    listen 10.99.0.2:9001 ssl;
    listen 10.99.0.2:8080 ssl;
    ssl_protocols TLSv1 TLSv1.1 TLSv1.2 TLSv1.3;
    ssl_ciphers DEFAULT:@SECLEVEL=0;'
( cd "$WORK/www" && exec ip netns exec $NS_SV python3 -m http.server 443 --bind 10.99.0.3 >/dev/null 2>&1 ) &
PIDS+=($!)
( cd "$WORK/www" && exec ip netns exec $NS_SV python3 -m http.server 5060 --bind 10.99.0.2 >/dev/null 2>&1 ) &
PIDS+=($!)
wait_listen 10.99.0.2/9001 10.99.0.2/8080 10.99.0.3/443 10.99.0.2/5060

# Runs a client command in the client namespace; sets RC and MS (its exit code and duration).
run_client() {
  local t0; t0=$(date +%s%N)
  RC=0; ip netns exec $NS_CL "$@" >"$WORK/client.out" 2>&1 </dev/null || RC=$?
  MS=$(( ($(date +%s%N) - t0) / 1000000 ))
}

# Waits until the event log has a line for which the python expression over `e` is true.
wait_event() {
  for _ in $(seq 1 40); do
    python3 - "$WORK/eve.json" "$1" <<'PY' && return 0
import json, sys
for line in open(sys.argv[1]):
    e = json.loads(line)
    if eval(sys.argv[2]):
        sys.exit(0)
sys.exit(1)
PY
    sleep 0.1
  done
  fail "no event with $1"
}
alert() { echo "e['event_type']=='alert' and e['alert']['signature']=='$1' and e['dest_port']==$2"; }

log "TLS to 443 passes and is logged"
run_client curl -sS --fail --max-time 20 --cacert "$WORK/cert.pem" \
  --resolve e2e.portcullis.test:443:10.99.0.2 https://e2e.portcullis.test/blob.bin -o "$WORK/got.bin"
[ "$RC" = 0 ] || fail "TLS download on 443 failed ($RC): $(cat "$WORK/client.out")"
cmp -s "$WORK/www/blob.bin" "$WORK/got.bin" || fail "TLS download corrupted"
wait_event "e['event_type']=='tls' and e['tls'].get('sni')=='e2e.portcullis.test' and len(e['tls']['ja3']['hash'])==32 and e['tls']['ja4'].startswith('t13d') and e['tls']['version']=='TLS 1.3'"

log "TLS to port 9001: tls_unexpected_port, dropped"
run_client curl -sS --max-time 4 --cacert "$WORK/cert.pem" \
  --resolve e2e.portcullis.test:9001:10.99.0.2 https://e2e.portcullis.test:9001/ -o /dev/null
echo "curl exit $RC after $MS ms"
[ "$RC" != 0 ] || fail "TLS on 9001 went through"
wait_event "$(alert tls_unexpected_port 9001) and e['alert']['rule_action']=='drop'"

log "TLS to port 8080: tls_unexpected_port, dropped"
run_client curl -sS --max-time 4 --cacert "$WORK/cert.pem" \
  --resolve e2e.portcullis.test:8080:10.99.0.2 https://e2e.portcullis.test:8080/ -o /dev/null
echo "curl exit $RC after $MS ms"
[ "$RC" != 0 ] || fail "TLS on 8080 went through"
wait_event "$(alert tls_unexpected_port 8080)"

log "plain HTTP to 443: non_tls_on_tls_port, reset at once"
run_client curl -sS --max-time 10 http://10.99.0.3:443/ -o /dev/null
echo "curl exit $RC after $MS ms: $(head -c 200 "$WORK/client.out")"
[ "$RC" = 56 ] || fail "expected curl's 'connection reset' (56), got $RC"
[ "$MS" -lt 3000 ] || fail "the reset took $MS ms"
wait_event "$(alert non_tls_on_tls_port 443) and e['app_proto']=='http' and e['alert']['action']=='blocked'"

log "SSH to 443: non_tls_on_tls_port, reset"
run_client ssh -p 443 -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
  -o ConnectTimeout=10 e2e@10.99.0.3 true
echo "ssh exit $RC after $MS ms: $(head -c 200 "$WORK/client.out")"
[ "$RC" != 0 ] || fail "ssh to 443 went through"
[ "$MS" -lt 5000 ] || fail "ssh took $MS ms to fail: not reset"
# (The plain server would end the session anyway: the blocked alert is what says we stopped it.)
wait_event "$(alert non_tls_on_tls_port 443) and e['app_proto']=='ssh' and e['alert']['action']=='blocked'"

log "HTTP to the SIP port 5060: protocol_port_mismatch, dropped"
run_client curl -sS --max-time 4 http://10.99.0.2:5060/ -o /dev/null
echo "curl exit $RC after $MS ms"
[ "$RC" != 0 ] || fail "HTTP to 5060 went through"
wait_event "$(alert protocol_port_mismatch 5060) and e['app_proto']=='http'"

log "blocklisted SNI: rejected, curl fails at once"
b_rejects=$(ctl stats --json | json_get /dev/stdin "s['rejects_sent']")
run_client curl -sS --max-time 10 --cacert "$WORK/cert.pem" \
  --resolve blocked.portcullis.test:443:10.99.0.2 https://blocked.portcullis.test/ -o /dev/null
echo "curl exit $RC after $MS ms: $(head -c 200 "$WORK/client.out")"
[ "$RC" = 35 ] || [ "$RC" = 56 ] || fail "expected a reset during the handshake (35 or 56), got $RC"
[ "$MS" -lt 3000 ] || fail "the reset took $MS ms"
wait_event "$(alert sni_blocked 443) and e['tls']['sni']=='blocked.portcullis.test' and e['alert']['rule_action']=='reject'"
rejects=$(( $(ctl stats --json | json_get /dev/stdin "s['rejects_sent']") - b_rejects ))
[ "$rejects" -ge 2 ] || fail "a reject must reset both ends: $rejects RSTs sent"
log "wildcard: x.evil.portcullis.test is blocked too"
run_client curl -sS --max-time 10 --cacert "$WORK/cert.pem" \
  --resolve x.evil.portcullis.test:443:10.99.0.2 https://x.evil.portcullis.test/ -o /dev/null
[ "$RC" = 35 ] || [ "$RC" = 56 ] || fail "wildcard SNI not rejected ($RC)"

log "TLS 1.0 client: tls_version, dropped; a TLS 1.2 client passes"
run_client timeout 10 openssl s_client -connect 10.99.0.2:443 -servername e2e.portcullis.test -tls1_2
grep -q "Protocol  *: TLSv1.2" "$WORK/client.out" || fail "TLS 1.2 client failed: $(tail -5 "$WORK/client.out")"
run_client timeout 10 openssl s_client -connect 10.99.0.2:443 -servername e2e.portcullis.test \
  -tls1 -cipher DEFAULT:@SECLEVEL=0
grep -q "Protocol  *: TLSv1$" "$WORK/client.out" && fail "a TLS 1.0 handshake completed"
wait_event "$(alert tls_version 443)"

log "MTU 576: a ClientHello over several segments is reassembled and its SNI enforced"
ip -n $NS_CL link set cl0 mtu 576
ip -n $NS_SV link set sv0 mtu 576
# nginx refuses a hello whose ALPN list has nothing it speaks: http/1.1 comes last.
alpn=$(python3 -c "print(','.join(['proto-%02d-padding-to-make-the-hello-large' % i for i in range(24)] + ['http/1.1']))")
run_client timeout 10 openssl s_client -connect 10.99.0.2:443 -servername e2e.portcullis.test -alpn "$alpn"
grep -q "^New, TLSv1.3" "$WORK/client.out" || fail "multi-segment hello to an allowed name failed: $(tail -20 "$WORK/client.out")"
wait_event "e['event_type']=='tls' and len(e['tls'].get('client_alpns', []))==25"
seen=$(wc -l < "$WORK/eve.json")
run_client timeout 10 openssl s_client -connect 10.99.0.2:443 -servername blocked.portcullis.test -alpn "$alpn"
grep -q "^New, TLSv1.3" "$WORK/client.out" && fail "multi-segment hello to a blocked name completed"
wait_event "$(alert sni_blocked 443) and e['src_port']!=0"
# Stopped at the segment that carries the name, before the hello was whole: its events name it.
sleep 0.3
python3 - "$WORK/eve.json" "$seen" <<'PY' || fail "the blocked multi-segment hello's events do not name it"
import json, sys
new = [json.loads(l) for l in open(sys.argv[1]).readlines()[int(sys.argv[2]):]]
kinds = {e['event_type'] for e in new if e.get('dest_port') == 443
         and e.get('tls', {}).get('sni') == 'blocked.portcullis.test'}
print("events of the blocked multi-segment hello naming it:", sorted(kinds))
sys.exit(0 if {'tls', 'alert'} <= kinds else 1)
PY

ctl stats --json > "$WORK/stats.json"
ctl stats | grep -E "inspection|drops"
json_get "$WORK/stats.json" "s['inspection']['checks']"
[ "$(json_get "$WORK/stats.json" "s['drops']['inspection']")" -gt 0 ] || fail "no drop counted as inspection"
[ "$(json_get "$WORK/stats.json" "s['inspection']['checks']['sni_blocked']['blocked']")" -ge 3 ] || fail "sni_blocked not counted"
log "inspection: all checks behaved"
