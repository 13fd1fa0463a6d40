#!/usr/bin/env bash
# The event log survives what an operator's disk and log rotation do to it:
# - portcullisd writes drop events steadily (a replay of unsolicited inbound SYNs, looped, into
#   the outside port) to an events file on a 2 MiB tmpfs; the tmpfs is filled up while it
#   runs: `stats` counts the events lost as disk_full and says the log is failing; the filler
#   is removed: events are written again by themselves, the loss stays counted, and every line
#   of the file is whole JSON (a cut write is taken back);
# - the file is moved away and `portcullisctl reopen-logs` (and then SIGUSR2) makes the daemon
#   write to a new file at the path, created 0640; the moved file stops growing;
# - an events path that is a symbolic link is refused and its target left intact;
# - offline, a full disk (/dev/full) still prints the summary and exits 4;
# - `portcullisctl stats` into a pipe closed at once exits quietly.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BIN="$ROOT/target/release"
WORK=$(mktemp -d /tmp/portcullis-evlog.XXXXXX)
PID=
cleanup() {
  [ -n "$PID" ] && kill -TERM "$PID" 2>/dev/null && wait "$PID" 2>/dev/null
  umount "$WORK/ev" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; [ -f "$WORK/d.err" ] && tail -20 "$WORK/d.err" >&2; exit 1; }
ctl() { "$BIN/portcullisctl" --socket "$WORK/ctl.sock" "$@"; }
stat_of() { ctl stats --json | python3 -c "import json,sys; s=json.load(sys.stdin)['event_log']; print($1)"; }
lines() { if [ -f "$1" ]; then wc -l < "$1"; else echo 0; fi; }
wait_lines() {  # wait_lines FILE MORE_THAN SECONDS
  for _ in $(seq 1 $(( $3 * 10 ))); do [ "$(lines "$1")" -gt "$2" ] && return 0; sleep 0.1; done
  return 1
}

/usr/bin/python3 - "$WORK/syn.pcap" <<'PY'
import sys
from scapy.all import Ether, IP, TCP, wrpcap
frames = [Ether(src="02:00:00:00:00:02", dst="02:00:00:00:00:01") /
          IP(src="198.18.0.%d" % (1 + i % 200), dst="10.0.0.1") /
          TCP(sport=40000 + i, dport=22, flags="S", seq=i) for i in range(256)]
wrpcap(sys.argv[1], frames)
PY
mkdir -p "$WORK/ev"
mount -t tmpfs -o size=2m tmpfs "$WORK/ev" || fail "cannot mount a tmpfs"
EV="$WORK/ev/eve.json"
cat > "$WORK/evlog.toml" <<TOML
[eal]
args = ["--no-huge", "-m", "256", "--no-pci", "--no-telemetry", "--file-prefix", "pc-e2e-evlog", "--log-level", "4"]
[dataplane]
worker_cores = [1]
idle = "adaptive"
[[ports]]
name = "inside"
device = "net_null0"
vdev_args = "no-rx=1"
[[ports]]
name = "outside"
device = "net_pcap0"
vdev_args = "rx_pcap=$WORK/syn.pcap,infinite_rx=1"
[[pairs]]
inside = "inside"
outside = "outside"
[events]
path = "$EV"
drop_events_per_sec = 100
[control]
socket = "$WORK/ctl.sock"
TOML

echo "--- events on a tmpfs that fills up and empties"
umask 000
"$BIN/portcullisd" --config "$WORK/evlog.toml" > "$WORK/d.out" 2> "$WORK/d.err" &
PID=$!
umask 022
wait_lines "$EV" 100 20 || fail "no events written"
[ "$(stat -c %a "$EV")" = 640 ] || fail "events file mode $(stat -c %a "$EV") under umask 000, expected 640"
dd if=/dev/zero of="$WORK/ev/filler" bs=4k 2>/dev/null || true
sleep 1.5
full_lines=$(lines "$EV")
lost=$(stat_of "s['lost']['disk_full']")
[ "$lost" -gt 0 ] || fail "a full disk lost no events? lost=$lost"
[ "$(stat_of "s['failing']")" = True ] || fail "stats does not say the log is failing"
ctl status | grep -q "failing now" || fail "status does not show the failing log: $(ctl status)"
sleep 1
[ "$(lines "$EV")" = "$full_lines" ] || fail "the file grew on a full disk"
rm -f "$WORK/ev/filler"
wait_lines "$EV" "$full_lines" 5 || fail "events did not resume after space returned"
sleep 0.5
lost2=$(stat_of "s['lost']['disk_full']")
[ "$lost2" -ge "$lost" ] || fail "the loss count went back: $lost -> $lost2"
[ "$(stat_of "s['failing']")" = False ] || fail "stats still says failing after space returned"
python3 - "$EV" <<'PY' || fail "the events file has a line that is not whole JSON"
import json, sys
n = 0
for line in open(sys.argv[1]):
    json.loads(line); n += 1
print(f"{n} lines, every one whole JSON")
PY
echo "full disk: $lost2 events counted lost (disk_full), $(lines "$EV") lines written, writing resumed"

echo "--- rotation: reopen-logs, then SIGUSR2"
mv "$EV" "$EV.1"
ctl reopen-logs | grep -q reopened || fail "reopen-logs did not answer reopened"
wait_lines "$EV" 10 5 || fail "no events in the new file after reopen-logs"
[ "$(stat -c %a "$EV")" = 640 ] || fail "the reopened file is mode $(stat -c %a "$EV")"
old=$(stat -c %s "$EV.1"); sleep 0.5
[ "$(stat -c %s "$EV.1")" = "$old" ] || fail "the moved file still grows after reopen-logs"
mv "$EV" "$EV.2"
kill -USR2 "$PID"
wait_lines "$EV" 10 5 || fail "no events in the new file after SIGUSR2"
echo "reopen-logs and SIGUSR2 each moved writing to a new file"

echo "--- portcullisctl into a closed pipe"
set +o pipefail
ctl stats 2> "$WORK/ctl.err" | true
rc=${PIPESTATUS[0]}
set -o pipefail
[ "$rc" = 0 ] || fail "portcullisctl exited $rc on a closed pipe: $(cat "$WORK/ctl.err")"
[ ! -s "$WORK/ctl.err" ] || fail "portcullisctl wrote to stderr on a closed pipe: $(cat "$WORK/ctl.err")"

kill -TERM "$PID"; wait "$PID" || fail "portcullisd exited non-zero"; PID=
grep -q "event log $EV: written [0-9]* *lost $lost2 (disk full $lost2" "$WORK/d.out" \
  || grep -q "lost [1-9][0-9]* (disk full" "$WORK/d.out" || fail "the final summary does not count the loss: $(grep 'event log' "$WORK/d.out")"
grep "event log" "$WORK/d.out"

echo "--- events through a symbolic link are refused"
echo "precious" > "$WORK/target.txt"
ln -s "$WORK/target.txt" "$WORK/link.json"
rc=0
"$BIN/portcullisd" --read "$ROOT/configs/captures/demo.pcap" --events "$WORK/link.json" > /dev/null 2> "$WORK/link.err" || rc=$?
[ "$rc" != 0 ] || fail "an events path through a symlink was accepted"
grep -q "symbolic link" "$WORK/link.err" || fail "the refusal does not say why: $(cat "$WORK/link.err")"
[ "$(cat "$WORK/target.txt")" = precious ] || fail "the link's target was written"
cat "$WORK/link.err"

echo "--- offline on a full disk: the summary, then exit 4"
rc=0
"$BIN/portcullisd" --read "$ROOT/configs/captures/demo.pcap" --events /dev/full > "$WORK/full.out" 2> "$WORK/full.err" || rc=$?
[ "$rc" = 4 ] || fail "offline with a full events disk exited $rc, expected 4: $(cat "$WORK/full.err")"
grep -q "^total " "$WORK/full.out" || fail "no summary on a full disk"
grep -q "could not be written" "$WORK/full.err" || fail "no word of the lost events: $(cat "$WORK/full.err")"
cat "$WORK/full.err"
echo "PASS event log"
