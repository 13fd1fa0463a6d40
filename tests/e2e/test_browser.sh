#!/usr/bin/env bash
# A real browser through the appliance: headless Chromium (Debian's), whose ClientHello carries a
# post-quantum key share (X25519MLKEM768, about 1.8 KB) and so spans several TCP segments; at MTU
# 576 it takes four. Portcullis must reassemble it to read the SNI:
# - at MTU 576 the page loads, and the tls event names the SNI and a JA4 starting t13d;
# - a blocked SNI is rejected: the navigation fails at once;
# - with quic_blocked = drop, Chromium's QUIC Initials (it is told the origin speaks HTTP/3) are
#   dropped and read (quic alert with the SNI), and the page still loads, over TCP.
source "$(dirname "$0")/lib.sh"
command -v chromium >/dev/null || fail "chromium missing (make deps installs it)"

lab_up
EXTRA_TOML='
[inspect]
sni_block = ["blocked.portcullis.test"]
[inspect.actions]
sni_blocked = "reject"
quic_blocked = "drop"
cert_self_signed = "allow"'
start_portcullisd

mkdir -p "$WORK/www"
echo "<html><body><p id=marker>portcullis-page-ok</p></body></html>" > "$WORK/www/index.html"
CERT_NAMES=blocked.portcullis.test start_nginx "add_header Alt-Svc 'h3=\":443\"; ma=86400' always;"
ip -n $NS_CL link set cl0 mtu 576
ip -n $NS_SV link set sv0 mtu 576

# Runs headless Chromium in the client namespace on URL with extra flags; the DOM goes to
# $WORK/dom.html, and MS is how long it took.
browse() {
  local url=$1; shift
  local t0; t0=$(date +%s%N)
  ip netns exec $NS_CL timeout 60 chromium --headless=new --no-sandbox --disable-gpu \
    --no-first-run --user-data-dir="$WORK/profile-${PROFILE:-$RANDOM}" --ignore-certificate-errors \
    --host-resolver-rules="MAP *.portcullis.test 10.99.0.2" "$@" \
    --dump-dom "$url" >"$WORK/dom.html" 2>"$WORK/chromium.err" || true
  MS=$(( ($(date +%s%N) - t0) / 1000000 ))
}

has_event() {
  python3 - "$WORK/eve.json" "$1" <<'PY'
import json, sys
for line in open(sys.argv[1]):
    e = json.loads(line)
    if eval(sys.argv[2]):
        print(line.strip()[:400])
        sys.exit(0)
sys.exit(1)
PY
}

log "MTU 576: Chromium loads the page; its multi-segment hello is read"
ip netns exec $NS_CL tcpdump -Z root --immediate-mode -i cl0 -w "$WORK/cl0.pcap" -U 'tcp port 443' >"$WORK/tcpdump.log" 2>&1 &
TCPDUMP=$!; PIDS+=($TCPDUMP); sleep 1
browse https://e2e.portcullis.test/
kill $TCPDUMP 2>/dev/null || true; sleep 0.5
grep -q portcullis-page-ok "$WORK/dom.html" || fail "the page did not load: $(tail -3 "$WORK/chromium.err")"
sleep 0.5
has_event "e['event_type']=='tls' and e['tls'].get('sni')=='e2e.portcullis.test' and e['tls']['ja4'].startswith('t13d')" \
  || fail "no tls event with Chromium's SNI"
ls -la "$WORK/cl0.pcap"; cat "$WORK/tcpdump.log"
/usr/bin/python3 - "$WORK/cl0.pcap" <<'PY' || fail "the hello did not span several segments"
import sys
from scapy.all import rdpcap, TCP, Raw
segs = {}
pk = rdpcap(sys.argv[1])
print(len(pk), "packets captured")
for p in pk:
    if p.haslayer(TCP) and p.haslayer(Raw) and p[TCP].dport == 443:
        segs.setdefault(p[TCP].sport, []).append(len(p[Raw].load))
# The client's data segments before the server's first answer, per connection.
most = max((len(v) for v in segs.values()), default=0)
first = max(segs.values(), key=len)[:4] if segs else []
print(f"client segments to 443 per connection, most: {most}; first sizes {first}")
sys.exit(0 if most >= 3 else 1)
PY

log "blocked SNI: Chromium's navigation fails at once"
browse https://blocked.portcullis.test/
echo "navigation took $MS ms"
grep -q portcullis-page-ok "$WORK/dom.html" && fail "a blocked name loaded"
[ "$MS" -lt 15000 ] || fail "the blocked navigation took $MS ms: not reset"
sleep 0.5
has_event "e['event_type']=='alert' and e['alert']['signature']=='sni_blocked' and e['tls']['sni']=='blocked.portcullis.test'" \
  || fail "no sni_blocked alert"

log "QUIC blocked: Chromium's Initials are dropped and read; without QUIC the page loads over TCP"
# QUIC needs a path MTU of 1200 (RFC 9000 §14): back to 1500. Chromium races QUIC only for
# origins whose certificate chains to a public root (a lab has none), so QUIC is forced for the
# origin: Chromium then sends real Initials, and, by design of that switch, does not fall back.
ip -n $NS_CL link set cl0 mtu 1500
ip -n $NS_SV link set sv0 mtu 1500
browse https://e2e.portcullis.test/ --enable-quic --origin-to-force-quic-on=e2e.portcullis.test:443
echo "forced-QUIC navigation took $MS ms: $(grep -o 'net::ERR_[A-Z_]*' "$WORK/chromium.err" | head -1)"
grep -q portcullis-page-ok "$WORK/dom.html" && fail "a QUIC page loaded although QUIC is blocked"
sleep 0.5
has_event "e['event_type']=='alert' and e['alert']['signature']=='quic_blocked' and e['proto']=='UDP'" \
  || fail "no QUIC Initial was seen and blocked"
has_event "e['event_type']=='quic' and e['quic'].get('sni')=='e2e.portcullis.test' and e['quic']['ja4'].startswith('q13d')" \
  || fail "the blocked Initials' hello was not read"
browse https://e2e.portcullis.test/ --enable-quic
grep -q portcullis-page-ok "$WORK/dom.html" || fail "over TCP the page did not load"
log "PASS browser"
