#!/usr/bin/env bash
# Inspection judges the bytes the server reads, against a client that crafts its own segments
# (tests/e2e/evasion.py, scapy, its own handshake) and a real Linux server that records what
# its sockets read, with the defaults plus `sni_block = ["evil.example"]`, `sni_blocked =
# "drop"`, on 443 and on 9443 (outside tls_ports):
# - plain: the blocked hello never reaches the server; the allowed one arrives intact;
# - split: the hello in two segments, the first ending just after the name: the SNI checks
#   decide from the partial hello, so not even the segment carrying the name gets through;
# - badsum: a decoy hello with a wrong TCP checksum at the same sequence number, then the real
#   one: the decoy is dropped as bad_checksum (the server's kernel discards it too), the real
#   one is judged: blocked if it names evil.example, delivered intact if not;
# - urgent: the hello with an extra byte inside its name sent as urgent data (Linux takes it out,
#   so the server would read the real name): dropped (urgent_data) while the stream is judged;
# - overlap: the hello up to the first letters of its name, then a second copy naming another
#   host over the same bytes (Linux keeps what it has, so it reads the first name): a copy that
#   differs from bytes inspection holds is dropped and alerted (tcp_overlap_mismatch); an
#   identical copy passes.
# (IPv4 only: the lab's hosts run without IPv6; IP fragments, segment order and overlaps are
# further techniques still open in issue 14.)
source "$(dirname "$0")/lib.sh"


lab_up
export EXTRA_TOML='
[inspect]
sni_block = ["evil.example"]
[inspect.actions]
sni_blocked = "drop"'
start_portcullisd
# The crafted client sends from 10.99.0.50, which its kernel does not own: the server reaches
# it at the client's MAC, and the client's kernel ignores what it receives (no RST).
mac=$(ip netns exec $NS_CL cat /sys/class/net/cl0/address)
ip -n $NS_SV neigh replace 10.99.0.50 lladdr "$mac" dev sv0 nud permanent
ip -n $NS_CL route add 10.99.0.50/32 dev cl0 2>/dev/null || true

# A server that writes what each connection's socket read to recv-PORT-N.bin.
mkdir -p "$WORK/recv"
ip netns exec $NS_SV /usr/bin/python3 - "$WORK/recv" <<'PY' &
import socket, sys, threading
out = sys.argv[1]
def serve(port):
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("10.99.0.2", port)); s.listen(16); n = 0
    while True:
        c, _ = s.accept(); n += 1
        def read(c=c, n=n):
            c.settimeout(3); data = b""
            try:
                while chunk := c.recv(65536):
                    data += chunk
            except OSError:
                pass
            open(f"{out}/recv-{port}-{n}.bin", "wb").write(data)
            c.close()
        threading.Thread(target=read, daemon=True).start()
for p in (443, 9443):
    threading.Thread(target=serve, args=(p,), daemon=True).start()
threading.Event().wait()
PY
PIDS+=($!)
for _ in $(seq 1 50); do
  [ "$(ip netns exec $NS_SV ss -Hltn 'sport = :443 or sport = :9443' | wc -l)" = 2 ] && break
  sleep 0.1
done

run() {  # run TECHNIQUE PORT SNI DECOY -> prints the file the server wrote for it
  local before after
  before=$(ls "$WORK/recv" | wc -l)
  ip netns exec $NS_CL /usr/bin/python3 "$ROOT/tests/e2e/evasion.py" "$1" "$2" "$3" "$4" "$WORK/sent.bin" \
    || fail "$1 on $2: the crafted client failed"
  for _ in $(seq 1 50); do
    after=$(ls "$WORK/recv" | wc -l)
    [ "$after" -gt "$before" ] && break
    sleep 0.1
  done
  [ "$after" -gt "$before" ] || fail "$1 on $2: the server recorded no connection"
  ls -t "$WORK/recv"/recv-"$2"-*.bin | head -1
}
blocked() {  # blocked TECHNIQUE PORT DECOY
  local f; f=$(run "$1" "$2" evil.example "$3")
  if grep -q "evil.example" "$f"; then fail "$1 on $2: the server read the blocked hello"; fi
  log "$1 on $2: blocked hello never reached the server ($(stat -c %s "$f") bytes read)"
}
allowed() {  # allowed TECHNIQUE PORT DECOY
  local f; f=$(run "$1" "$2" good.example "$3")
  cmp -s "$f" "$WORK/sent.bin" || fail "$1 on $2: the server read $(stat -c %s "$f") bytes, not the allowed hello ($(stat -c %s "$WORK/sent.bin"))"
  log "$1 on $2: allowed hello reached the server intact ($(stat -c %s "$f") bytes)"
}

for port in 443 9443; do
  blocked plain $port -
  allowed plain $port -
  blocked split $port -
  allowed split $port -
  blocked badsum $port good.example
  allowed badsum $port evil.example
  blocked urgent $port -
  blocked overlap $port good.example
  allowed overlap $port good.example   # the same bytes again: an identical copy
done
bad=$(counter "s['drops']['bad_checksum']"); urg=$(counter "s['drops']['urgent_data']")
log "drops: bad_checksum $bad, urgent_data $urg"
[ "$bad" -ge 4 ] || fail "expected the 4 decoys dropped as bad_checksum, got $bad"
[ "$urg" -ge 2 ] || fail "expected the 2 urgent hellos dropped as urgent_data, got $urg"
ovl=$(counter "s['inspection']['checks'].get('tcp_overlap_mismatch', {}).get('blocked', 0)")
log "tcp_overlap_mismatch blocked $ovl flows"
[ "$ovl" -ge 2 ] || fail "expected the 2 overlapping decoys stopped by tcp_overlap_mismatch, got $ovl"
log "PASS evasion"
