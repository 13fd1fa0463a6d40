#!/usr/bin/env bash
# Offline mode and configuration checks, end to end with the release binaries:
# - every capture of ../shared/corpus (and the bundled lab capture) through `portcullisd --read`
#   reports exactly the packet count tcpdump reads from it; a damaged file is processed up to the
#   damage and exits 3;
# - `--write` output holds exactly the frames read (the foundation drops nothing valid), byte for
#   byte, and two offline workers see the same flows as one;
# - `--check-config` accepts the shipped configs and names the file and key of a misspelling;
# - frames larger than an mbuf are dropped as oversize. (The demo has test_demo.sh.)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BIN="$ROOT/target/release"
WORK=$(mktemp -d /tmp/portcullis-offline.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
# tcpdump exits non-zero on a damaged file after printing what it read: count that.
count() { (set +o pipefail; tcpdump -nn -q -r "$1" 2>/dev/null | wc -l); }
json() { python3 -c "import json; s=json.load(open('$1')); print($2)"; }

echo "--- --read: packet counts against tcpdump"
CAPS=("$ROOT"/configs/captures/lab-mixed.pcap)
CORPUS="$ROOT/../shared/corpus/pcaps"
if [ -d "$CORPUS" ]; then CAPS+=("$CORPUS"/*); else echo "(no ../shared/corpus here: bundled capture only)"; fi
n=0
for f in "${CAPS[@]}"; do
  want=$(count "$f")
  rc=0
  "$BIN/portcullisd" --read "$f" --stats-json "$WORK/s.json" > "$WORK/out.txt" 2> "$WORK/err.txt" || rc=$?
  got=$(awk '/packets in file/ {print $(NF-3)}' "$WORK/out.txt")
  rx=$(json "$WORK/s.json" "s['ports'][0]['rx_packets']")
  if grep -q "damaged after packet" "$WORK/err.txt"; then
    [ "$rc" = 3 ] || fail "$f: damaged file should exit 3, got $rc"
  else
    [ "$rc" = 0 ] || fail "$f: exit $rc: $(cat "$WORK/err.txt")"
  fi
  [ "$got" = "$want" ] || fail "$f: portcullisd read $got packets, tcpdump reads $want"
  [ "$rx" = "$want" ] || fail "$f: engine saw $rx packets of $want"
  n=$((n + 1))
done
echo "$n captures: every packet count matches"

echo "--- --write: what is forwarded, byte for byte"
IN="$ROOT/configs/captures/lab-mixed.pcap"
"$BIN/portcullisd" --read "$IN" --write "$WORK/fwd.pcap" --stats-json "$WORK/w.json" >/dev/null
[ "$(count "$WORK/fwd.pcap")" = "$(count "$IN")" ] || fail "--write holds $(count "$WORK/fwd.pcap") of $(count "$IN") frames"
diff <(tcpdump -nn -t -x -r "$IN" 2>/dev/null) <(tcpdump -nn -t -x -r "$WORK/fwd.pcap" 2>/dev/null) >/dev/null \
  || fail "--write output differs from the input"
[ "$(json "$WORK/w.json" "sum(s['drops'].values())")" = 0 ] || fail "drops on a clean capture"
flows1=$(json "$WORK/w.json" "s['flows_created']")
"$BIN/portcullisd" --read "$IN" --workers 2 --stats-json "$WORK/w2.json" >/dev/null
flows2=$(json "$WORK/w2.json" "s['flows_created']")
[ "$flows1" = "$flows2" ] || fail "2 workers saw $flows2 flows, 1 worker $flows1: sharding split a flow"
[ "$flows1" = 7 ] || fail "expected the lab capture's 7 connections (4 TCP, 1 UDP, 2 ICMP echo), got $flows1"
echo "forwarded capture identical; $flows1 flows with 1 and 2 workers"
# Protocol detection on every flow of the lab capture, reported in the EVE flow records.
"$BIN/portcullisd" --read "$IN" --events "$WORK/eve.json" >/dev/null
python3 - "$WORK/eve.json" <<'PY' || fail "app_proto in flow events"
import json, sys
events = [json.loads(l) for l in open(sys.argv[1])]
flows = [e for e in events if e["event_type"] == "flow"]
got = sorted((f["proto"], f["dest_port"], f.get("app_proto")) for f in flows if f["proto"] in ("TCP", "UDP"))
want = sorted([("TCP", 443, "tls")] * 3 + [("TCP", 22, "ssh"), ("UDP", 7, "unknown")])
assert got == want, got
print("app_proto:", got)
# Each TLS connection has its handshake in a tls event with the same flow_id.
tls = [e for e in events if e["event_type"] == "tls"]
assert len(tls) == 3 and all(len(t["tls"]["ja4"]) == 36 for t in tls), tls
ids = {f["flow_id"] for f in flows}
assert all(t["flow_id"] in ids for t in tls), "tls events' flow_id must name a flow"
print("tls:", [(t["tls"].get("sni"), t["tls"]["ja4"]) for t in tls])
PY

echo "--- --check-config"
for c in "$ROOT"/configs/*.toml; do "$BIN/portcullisd" --check-config "$c" >/dev/null || fail "$c rejected"; done
sed 's/^worker_cores = \[1\]/wokers = [1]/' "$ROOT/configs/portcullis.toml" > "$WORK/typo.toml"
rc=0; "$BIN/portcullisd" --check-config "$WORK/typo.toml" 2> "$WORK/err.txt" || rc=$?
[ "$rc" != 0 ] || fail "--check-config accepted a misspelled key"
grep -q "typo.toml" "$WORK/err.txt" && grep -q "dataplane.wokers" "$WORK/err.txt" \
  || fail "error does not name file and key: $(cat "$WORK/err.txt")"
cat "$WORK/err.txt"

echo "--- --check-config refuses what a start would refuse, naming file, key and reason"
base() {  # a runnable config; $1 is appended
  cat <<TOML
[[ports]]
name = "inside"
device = "net_null0"
[[ports]]
name = "outside"
device = "net_null1"
[[pairs]]
inside = "inside"
outside = "outside"
$1
TOML
}
ha() {  # an HA section with key file $1
  printf '[ha]\nenabled = true\nnode_id = 1\nkey_file = "%s"\n[[ha.paths]]\nlocal = "127.0.0.1:7001"\npeer = "127.0.0.1:7002"\n' "$1"
}
head -c 32 /dev/urandom > "$WORK/good.key"; chmod 600 "$WORK/good.key"
cp "$WORK/good.key" "$WORK/open.key"; chmod 644 "$WORK/open.key"
printf abc > "$WORK/short.key"; chmod 600 "$WORK/short.key"
head -c 32 /dev/zero > "$WORK/zero.key"; chmod 600 "$WORK/zero.key"
mkdir -p "$WORK/ro"; mount -t tmpfs -o ro,size=64k tmpfs "$WORK/ro"
trap 'umount "$WORK/ro" 2>/dev/null; rm -rf "$WORK"' EXIT
base "$(ha "$WORK/good.key")" > "$WORK/ok.toml"
"$BIN/portcullisd" --check-config "$WORK/ok.toml" > /dev/null || fail "a good HA config is refused"
reject() {  # reject NAME KEY REASON-REGEX TOML-TAIL
  base "$4" > "$WORK/$1.toml"
  rc=0; "$BIN/portcullisd" --check-config "$WORK/$1.toml" > /dev/null 2> "$WORK/$1.err" || rc=$?
  [ "$rc" = 2 ] || fail "$1: --check-config exited $rc: $(cat "$WORK/$1.err")"
  grep -q "$1.toml: key \`$2\`" "$WORK/$1.err" || fail "$1: file and key not named: $(cat "$WORK/$1.err")"
  grep -qE "$3" "$WORK/$1.err" || fail "$1: reason missing: $(cat "$WORK/$1.err")"
  echo "  $1: $(cat "$WORK/$1.err")"
}
reject key-mode ha.key_file "readable by group or others" "$(ha "$WORK/open.key")"
reject key-short ha.key_file "3 bytes; at least 16" "$(ha "$WORK/short.key")"
reject key-missing ha.key_file "No such file" "$(ha "$WORK/none.key")"
reject key-zero ha.key_file "repeated: not a secret" "$(ha "$WORK/zero.key")"
reject events-ro events.path "Read-only file system" "$(printf '[events]\npath = "%s/ro/eve.json"' "$WORK")"
reject mbufs dataplane.mbufs "between 1024 and 2147483647" "$(printf '[dataplane]\nmbufs = 4294967295')"
reject desc dataplane.rx_desc "multiple of 32 between 64 and 32768" "$(printf '[dataplane]\nrx_desc = 65535')"
reject sni-empty "inspect.sni_block\[0\]" "an empty name" "$(printf '[inspect]\nsni_block = ["", "*"]')"
reject sni-star "inspect.sni_block\[0\]" "bare wildcard" "$(printf '[inspect]\nsni_block = ["*"]')"
reject group control.group "group 'no-such-group-pc' does not exist" "$(printf '[control]\ngroup = "no-such-group-pc"')"
cd "$WORK"
echo "--- frames larger than an mbuf (net_pcap chains them): dropped as oversize, not malformed"
JUMBO="$CORPUS/zeek__tls13-kyber-ch-single-jumbo-seg.pcap"
if [ -f "$JUMBO" ]; then
  big=$( (set +o pipefail; tcpdump -nn -e -r "$JUMBO" 2>/dev/null | awk '{for (i=1;i<=NF;i++) if ($i=="length") {sub(":","",$(i+1)); print $(i+1); break}}' | awk '$1 > 2048' | wc -l) )
  cat > jumbo.toml <<TOML
[eal]
args = ["--no-huge", "-m", "256", "--no-pci", "--file-prefix", "pc-e2e-jumbo", "--log-level", "lib.eal:warning"]
[dataplane]
worker_cores = [1]
idle = "adaptive"
[[ports]]
name = "in"
device = "net_pcap0"
vdev_args = "rx_pcap=$JUMBO"
[[ports]]
name = "out"
device = "net_null0"
vdev_args = "no-rx=1"
[[pairs]]
inside = "in"
outside = "out"
[control]
socket = "$WORK/jumbo.sock"
[run]
stop_when_idle_ms = 500
TOML
  "$BIN/portcullisd" --config jumbo.toml --stats-json jumbo.json > jumbo.log 2>&1 || { cat jumbo.log; fail "jumbo run failed"; }
  [ "$big" -gt 0 ] || fail "expected frames above 2048 bytes in $JUMBO"
  [ "$(json jumbo.json "s['drops']['oversize']")" = "$big" ] || fail "oversize drops $(json jumbo.json "s['drops']['oversize']") != $big big frames"
  [ "$(json jumbo.json "s['drops']['malformed']")" = 0 ] || fail "big frames counted as malformed"
  [ "$(json jumbo.json "s['ports'][0]['rx_packets']")" = "$(count "$JUMBO")" ] || fail "rx count differs from the capture"
  echo "$big frames above 2048 bytes dropped as oversize; the rest forwarded"
else
  echo "(no corpus: skipped)"
fi
echo "PASS offline and config"
