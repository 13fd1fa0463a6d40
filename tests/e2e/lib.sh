# Shared helpers for the end-to-end tests: a namespace lab joined only through portcullisd.
# Every test sources this, calls lab_up, and relies on the EXIT trap to tear everything down,
# whether it passes or fails.

set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BIN="$ROOT/target/release"
NS_CL=pc-e2e-client
NS_SV=pc-e2e-server
WORK=$(mktemp -d /tmp/portcullis-e2e.XXXXXX)
PIDS=()

log() { echo "[$(date +%T)] $*"; }
fail() { echo "FAIL: $*" >&2; exit 1; }

cleanup() {
  local rc=$?
  for p in "${PIDS[@]:-}"; do
    [ -n "$p" ] && kill "$p" 2>/dev/null || true
  done
  sleep 0.3
  for p in "${PIDS[@]:-}"; do
    [ -n "$p" ] && kill -9 "$p" 2>/dev/null || true
  done
  ip netns pids $NS_SV 2>/dev/null | xargs -r kill -9 2>/dev/null || true
  ip netns pids $NS_CL 2>/dev/null | xargs -r kill -9 2>/dev/null || true
  ip netns del $NS_CL 2>/dev/null || true
  ip netns del $NS_SV 2>/dev/null || true
  ip link del pce-in 2>/dev/null || true
  ip link del pce-out 2>/dev/null || true
  if [ $rc -ne 0 ] && [ -f "$WORK/portcullisd.log" ]; then
    echo "--- portcullisd log ---" >&2; tail -50 "$WORK/portcullisd.log" >&2
  fi
  rm -rf "$WORK"
  exit $rc
}
trap cleanup EXIT INT TERM

# client (10.99.0.1) -- cl0 | pce-in [portcullisd] pce-out | sv0 -- server (10.99.0.2)
lab_up() {
  [ "$(id -u)" = 0 ] || fail "end-to-end tests need root (network namespaces)"
  ip netns del $NS_CL 2>/dev/null || true; ip netns del $NS_SV 2>/dev/null || true
  ip link del pce-in 2>/dev/null || true; ip link del pce-out 2>/dev/null || true
  ip netns add $NS_CL; ip netns add $NS_SV
  ip link add pce-in type veth peer name cl0; ip link set cl0 netns $NS_CL
  ip link add pce-out type veth peer name sv0; ip link set sv0 netns $NS_SV
  # No IPv6 on the test hosts: its link-up chatter (RS, MLD, DAD) arrives at unpredictable moments
  # and would race the counter comparisons. IPv6 parsing is covered by unit tests and the corpus.
  ip netns exec $NS_CL sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
  ip netns exec $NS_SV sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
  ip -n $NS_CL addr add 10.99.0.1/24 dev cl0; ip -n $NS_CL link set cl0 up; ip -n $NS_CL link set lo up
  ip -n $NS_SV addr add 10.99.0.2/24 dev sv0; ip -n $NS_SV link set sv0 up; ip -n $NS_SV link set lo up
  # The appliance's ends belong to DPDK, not to the kernel: a kernel stack on them would send its
  # own IPv6 chatter (MLD, router solicitations), which af_packet sees and the appliance forwards.
  sysctl -qw net.ipv6.conf.pce-in.disable_ipv6=1 net.ipv6.conf.pce-out.disable_ipv6=1
  ip link set pce-in up; ip link set pce-out up
  # af_packet sees frames before checksum offload would fill them in: make them real on the wire.
  ethtool -K pce-in tx off rx off >/dev/null; ethtool -K pce-out tx off rx off >/dev/null
  ip netns exec $NS_CL ethtool -K cl0 tx off >/dev/null; ip netns exec $NS_SV ethtool -K sv0 tx off >/dev/null
}

# Writes a config for the lab to $WORK/lab.toml and starts portcullisd on it.
# WORKERS_TOML replaces the worker lines of [dataplane]; AFP_ARGS are extra net_af_packet args.
WORKERS_TOML=${WORKERS_TOML:-'worker_cores = [1]'}
AFP_ARGS=${AFP_ARGS:-}
# Extra TOML appended to the lab config (rules, blocklists...).
EXTRA_TOML=${EXTRA_TOML:-}
# Prints the lab config of one appliance: lab_config PREFIX IN_IF OUT_IF SOCKET EVENTS
# (PREFIX: DPDK's --file-prefix; the workers from WORKERS_TOML, extra vdev args from AFP_ARGS).
lab_config() {
  cat <<TOML
[eal]
args = ["--no-huge", "-m", "512", "--no-pci", "--file-prefix", "$1", "--log-level", "lib.eal:warning"]
[dataplane]
control_core = 0
$WORKERS_TOML
mbufs = 8191
idle = "adaptive"
[[ports]]
name = "inside"
device = "net_af_packet0"
vdev_args = "iface=$2,framecnt=4096$AFP_ARGS"
[[ports]]
name = "outside"
device = "net_af_packet1"
vdev_args = "iface=$3,framecnt=4096$AFP_ARGS"
[[pairs]]
inside = "inside"
outside = "outside"
[control]
socket = "$4"
[events]
path = "$5"
TOML
}

start_portcullisd() {
  { lab_config pc-e2e pce-in pce-out "$WORK/ctl.sock" "$WORK/eve.json"; echo "$EXTRA_TOML"; } > "$WORK/lab.toml"
  "$BIN/portcullisd" --check-config "$WORK/lab.toml" >/dev/null
  "$BIN/portcullisd" --config "$WORK/lab.toml" --stats-json "$WORK/final.json" >"$WORK/portcullisd.log" 2>&1 &
  PCD_PID=$!
  PIDS+=("$PCD_PID")
  for _ in $(seq 1 100); do
    "$BIN/portcullisctl" --socket "$WORK/ctl.sock" status >/dev/null 2>&1 && return 0
    kill -0 "$PCD_PID" 2>/dev/null || fail "portcullisd exited at start: $(cat "$WORK/portcullisd.log")"
    sleep 0.1
  done
  fail "portcullisd did not answer on its control socket"
}

ctl() { "$BIN/portcullisctl" --socket "$WORK/ctl.sock" "$@"; }
# counter 'PYTHON-EXPRESSION ON s': a figure of `portcullisctl stats --json`.
counter() { ctl stats --json | python3 -c "import json,sys; s=json.load(sys.stdin); print($1)"; }

# Serves $WORK/www/blob.bin (BYTES random bytes) over HTTP on port 8000 of the server namespace
# (bound to BIND, default 10.99.0.2), and waits until the client can connect through the appliance.
serve_blob() {
  mkdir -p "$WORK/www"; head -c "$1" /dev/urandom > "$WORK/www/blob.bin"
  local bind=${2:-10.99.0.2}
  ( cd "$WORK/www" && exec ip netns exec $NS_SV python3 -m http.server 8000 --bind "$bind" >/dev/null 2>&1 ) &
  PIDS+=($!)
  for _ in $(seq 1 50); do
    ip netns exec $NS_CL bash -c "exec 3<>/dev/tcp/10.99.0.2/8000" 2>/dev/null && return 0
    sleep 0.1
  done
  fail "the HTTP server in the server namespace did not come up"
}

# Paces what the server sends: `pace_server RATE` puts a token bucket (tc tbf; RATE in tc's units,
# e.g. 1mbit) on the server's link, `pace_server off` lifts it. A download under it keeps running
# until the test lifts it, however long the event it straddles takes on a loaded machine; curl's
# --limit-rate is an average that a CI run saw overshoot fourfold (12 MB at "300K" in 11 s).
pace_server() {
  if [ "$1" = off ]; then
    ip netns exec $NS_SV tc qdisc del dev sv0 root 2>/dev/null || true
  else
    ip netns exec $NS_SV tc qdisc replace dev sv0 root tbf rate "$1" burst 32kb latency 200ms \
      || fail "tc could not pace the server's link"
  fi
}

# Reads a counter from `ip -s -j link` of an interface in a namespace ("" = the root namespace):
#   if_counter NS IF rx|tx packets|bytes|dropped
if_counter() {
  local ns=()
  [ -n "$1" ] && ns=(-n "$1")
  ip "${ns[@]}" -s -j link show "$2" | python3 -c "import json,sys; print(json.load(sys.stdin)[0]['stats64']['$3']['$4'])"
}

# Reads a value from a stats JSON file with a python expression over `s`.
json_get() {
  python3 -c "import json,sys; s=json.load(open('$1')); print($2)"
}

# Waits until something in the server namespace accepts connections on each ADDR/PORT given.
wait_listen() {
  local a
  for a in "$@"; do
    for _ in $(seq 1 50); do
      ip netns exec $NS_SV bash -c "exec 3<>/dev/tcp/$a" 2>/dev/null && break
      sleep 0.1
    done
  done
}

# Serves $WORK/www over TLS with nginx in the server namespace on 10.99.0.2:443, with a fresh
# self-signed certificate ($WORK/cert.pem, $WORK/key.pem) for e2e.portcullis.test and the names
# in CERT_NAMES. $1: more directives for the server block (listens, protocols, headers).
# Requests are logged to $WORK/access.log.
start_nginx() {
  local san="DNS:e2e.portcullis.test" n
  for n in ${CERT_NAMES:-}; do san="$san,DNS:$n"; done
  mkdir -p "$WORK/www"
  openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=e2e.portcullis.test" \
    -addext "subjectAltName=$san" -keyout "$WORK/key.pem" -out "$WORK/cert.pem" 2>/dev/null
  cat > "$WORK/nginx.conf" <<NGINX
daemon off;
user root;
pid $WORK/nginx.pid;
error_log $WORK/nginx-error.log;
events { worker_connections 64; }
http {
  access_log $WORK/access.log;
  server {
    listen 10.99.0.2:443 ssl;
    ssl_certificate $WORK/cert.pem;
    ssl_certificate_key $WORK/key.pem;
    root $WORK/www;
    ${1:-}
  }
}
NGINX
  ip netns exec $NS_SV nginx -c "$WORK/nginx.conf" -e "$WORK/nginx-error.log" &
  PIDS+=($!)
  wait_listen 10.99.0.2/443
}
