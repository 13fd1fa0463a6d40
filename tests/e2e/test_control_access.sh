#!/usr/bin/env bash
# Who may talk to the control socket, and the trail of what they changed:
# - the socket path over a regular file is refused, the file left intact; a stale socket (left
#   by a kill -9) is replaced;
# - under umask 000 the socket is still mode 0660, in `[control] group`; the events file 0640,
#   in `[events] group`;
# - as an unprivileged member of that group, status and stats work, while reload and
#   reopen-logs are refused and change nothing; a user outside the group cannot connect; a
#   member of `[control] admin_group` may reload, and so may root;
# - every changing command asked is a `control` event: command, uid, pid, result.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BIN="$ROOT/target/release"
WORK=$(mktemp -d /tmp/portcullis-ctl.XXXXXX)
chmod 755 "$WORK"
PID=
USERS=(pcreader pcadmin1 pcstranger)
cleanup() {
  [ -n "$PID" ] && kill -TERM "$PID" 2>/dev/null && wait "$PID" 2>/dev/null
  for u in "${USERS[@]}"; do userdel "$u" 2>/dev/null || true; done
  groupdel pcops 2>/dev/null || true
  groupdel pcadmin 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; [ -f "$WORK/d.err" ] && tail -20 "$WORK/d.err" >&2; exit 1; }
SOCK="$WORK/ctl.sock"
EV="$WORK/eve.json"
as() { local u=$1; shift; runuser -u "$u" -- "$BIN/portcullisctl" --socket "$SOCK" "$@"; }

for u in "${USERS[@]}"; do userdel "$u" 2>/dev/null || true; done
groupdel pcops 2>/dev/null || true; groupdel pcadmin 2>/dev/null || true
groupadd pcops; groupadd pcadmin
useradd -M -N -s /usr/sbin/nologin -G pcops pcreader
useradd -M -N -s /usr/sbin/nologin -G pcops,pcadmin pcadmin1
useradd -M -N -s /usr/sbin/nologin pcstranger

cat > "$WORK/ctl.toml" <<TOML
[eal]
args = ["--no-huge", "-m", "256", "--no-pci", "--no-telemetry", "--file-prefix", "pc-e2e-ctl", "--log-level", "4"]
[dataplane]
worker_cores = [1]
idle = "adaptive"
[[ports]]
name = "inside"
device = "net_null0"
vdev_args = "no-rx=1"
[[ports]]
name = "outside"
device = "net_null1"
vdev_args = "no-rx=1"
[[pairs]]
inside = "inside"
outside = "outside"
[events]
path = "$EV"
group = "pcops"
[control]
socket = "$SOCK"
group = "pcops"
admin_group = "pcadmin"
TOML
start() {
  umask 000
  "$BIN/portcullisd" --config "$WORK/ctl.toml" > "$WORK/d.out" 2> "$WORK/d.err" &
  PID=$!
  umask 022
  for _ in $(seq 1 100); do
    "$BIN/portcullisctl" --socket "$SOCK" status > /dev/null 2>&1 && return 0
    kill -0 "$PID" 2>/dev/null || break
    sleep 0.1
  done
  fail "the daemon did not come up"
}

echo "--- a regular file where the socket goes is refused and kept"
echo precious > "$SOCK"
rc=0
timeout 30 "$BIN/portcullisd" --config "$WORK/ctl.toml" > /dev/null 2> "$WORK/refused.err" || rc=$?
[ "$rc" != 0 ] || fail "the daemon started over a regular file"
grep -q "exists and is not a socket" "$WORK/refused.err" || fail "no clear refusal: $(cat "$WORK/refused.err")"
[ "$(cat "$SOCK")" = precious ] || fail "the file at the socket path was changed"
grep "not a socket" "$WORK/refused.err"
rm -f "$SOCK"

echo "--- the socket under umask 000"
start
[ "$(stat -c '%a %G' "$SOCK")" = "660 pcops" ] || fail "socket is $(stat -c '%a %G' "$SOCK"), expected 660 pcops"
echo "socket $(stat -c '%a %U:%G' "$SOCK")"
[ "$(stat -c '%a %G' "$EV")" = "640 pcops" ] || fail "events file is $(stat -c '%a %G' "$EV"), expected 640 pcops"

echo "--- a group member reads, and may not change"
as pcreader status > "$WORK/st.txt" || fail "status refused to a group member"
grep -q "^state running" "$WORK/st.txt" || fail "status: $(cat "$WORK/st.txt")"
as pcreader stats --json > /dev/null || fail "stats refused to a group member"
reloads=$(grep -c "policy reloaded" "$WORK/d.err" || true)
rc=0; as pcreader reload > "$WORK/r.txt" 2>&1 || rc=$?
[ "$rc" != 0 ] || fail "reload was served to a reader"
grep -q "not permitted" "$WORK/r.txt" || fail "reload refusal unclear: $(cat "$WORK/r.txt")"
rc=0; as pcreader reopen-logs > /dev/null 2>&1 || rc=$?
[ "$rc" != 0 ] || fail "reopen-logs was served to a reader"
sleep 0.2
[ "$(grep -c "policy reloaded" "$WORK/d.err" || true)" = "$reloads" ] || fail "a refused reload reloaded"
reopened=$("$BIN/portcullisctl" --socket "$SOCK" stats --json | python3 -c "import json,sys; print(json.load(sys.stdin)['event_log']['reopened'])")
[ "$reopened" = 0 ] || fail "a refused reopen-logs reopened the log ($reopened)"
echo "reader: status and stats served; reload and reopen-logs refused, nothing changed"

echo "--- outside the group: no connection"
rc=0; as pcstranger status > "$WORK/s.txt" 2>&1 || rc=$?
[ "$rc" != 0 ] || fail "a user outside the group was served"
grep -qi "permission denied" "$WORK/s.txt" || fail "stranger: $(cat "$WORK/s.txt")"

echo "--- the admin group and root may change"
as pcadmin1 reload > /dev/null || fail "reload refused to a member of the admin group"
"$BIN/portcullisctl" --socket "$SOCK" reload > /dev/null || fail "reload refused to root"
sleep 0.3

echo "--- the audit trail"
uid_r=$(id -u pcreader); uid_a=$(id -u pcadmin1)
python3 - "$EV" "$uid_r" "$uid_a" <<'PY' || fail "control events do not record what was asked"
import json, sys
ev, reader, admin = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
ctl = [e["control"] for e in map(json.loads, open(ev)) if e["event_type"] == "control"]
want = [("reload", reader, "refused"), ("reopen-logs", reader, "refused"),
        ("reload", admin, "ok"), ("reload", 0, "ok")]
got = [(c["command"], c["uid"], c["result"]) for c in ctl]
assert got == want, f"control events {got}, expected {want}"
assert all(c["pid"] > 0 for c in ctl), ctl
print("control events:", got)
PY

echo "--- a stale socket (kill -9) is replaced"
kill -9 "$PID"; wait "$PID" 2>/dev/null || true; PID=
[ -S "$SOCK" ] || fail "expected the killed daemon's socket to be left behind"
start
"$BIN/portcullisctl" --socket "$SOCK" status > /dev/null || fail "the restarted daemon does not answer"
echo "PASS control access"
