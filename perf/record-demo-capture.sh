#!/usr/bin/env bash
# record-demo-capture.sh - record the demo capture: REAL traffic, allowed and not.
#
# Builds a two-namespace lab joined by one veth pair (no bridge, no host
# traffic), runs real servers in the server namespace (nginx over TLS, sshd,
# a UDP echo, an aioquic QUIC server, plain HTTP servers) and drives real
# clients from the client namespace while tcpdump records on the client's veth.
# Next to the traffic an appliance must pass (ping over IPv4 and IPv6, HTTPS
# over TLS 1.3 and, over IPv6, 1.2, SSH, UDP, QUIC) it holds what an operator
# wants stopped (configs/demo.toml stops each): TLS to a blocked name, TLS on
# an unexpected port, plain HTTP and SSH on 443, HTTP to the SIP port 5060
# (the NAT Slipstreaming pattern), a connection to a blocklisted address, and
# a connection opened from outside. It writes:
#
#   configs/captures/demo.pcap          every frame but the outside-opened connection's
#                                       outside frames: replayed into the inside port
#   configs/captures/demo-outside.pcap  the frames the outside host sent for the
#                                       connection it opened: replayed into the outside port
#   configs/captures/demo-flows.json    the flows, each with what the demo must decide
#   configs/captures/demo.txt           manifest: how, counts, conversations, sizes
#
# The flows file is what tests/e2e/test_demo.sh holds the demo to, so a change
# of policy or engine that changes a decision fails there.
#
# Needs root, and network access once to install aioquic from PyPI into the
# work dir (Debian 12 has no QUIC client or server). Idempotent: leftovers of a
# previous run (namespaces, the processes inside them, the work dir) are
# removed first, and a trap removes everything this run created, on success
# and on failure. Outputs are only replaced when the new capture passes its
# checks. (configs/captures/lab-mixed.pcap was recorded by an earlier version
# of this script, from before the demo held blocked traffic; see its .txt.)
#
# Environment knobs:
#   DOWNLOAD_KB=100     size of the random file fetched over HTTPS
#   MAX_TOTAL_KB=600    fail if the two pcaps together exceed this
#   OUT_DIR=...         default: <repo>/configs/captures
#   WORK_DIR=...        default: /tmp/pcrec-lab (wiped at start and at exit)
#   KEEP_WORK_DIR=1     keep WORK_DIR at exit (debugging)
#   SKIP_APT=1          do not try to install missing packages
#   AIOQUIC=SPEC        what pip installs for the QUIC peers (default: aioquic==1.7.2)
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(cd "$SCRIPT_DIR/.." && pwd)
OUT_DIR=${OUT_DIR:-$REPO_DIR/configs/captures}
WORK_DIR=${WORK_DIR:-/tmp/pcrec-lab}
DOWNLOAD_KB=${DOWNLOAD_KB:-100}
AIOQUIC=${AIOQUIC:-aioquic==1.7.2}
MAX_TOTAL_KB=${MAX_TOTAL_KB:-600}

NS_C=pcrec-client
NS_S=pcrec-server
IF_C=cl0
IF_S=sv0
# Fixed, locally administered MACs so the capture is reproducible and the
# inside/outside split is stable from run to run.
MAC_C=02:00:0a:63:00:01
MAC_S=02:00:0a:63:00:02
IP4_C=10.99.0.1
IP4_S=10.99.0.2
IP6_C=fd99::1
IP6_S=fd99::2
# More server addresses on the server's veth: plain HTTP on 443, SSH on 443, and
# the address configs/blocklists/demo-drop.txt lists.
IP4_HTTP443=10.99.0.3
IP4_SSH443=10.99.0.4
IP4_BLOCKED=10.99.0.66
TLS_NAME=demo.portcullis.test
BLOCKED_NAME=evil.example
UNEXPECTED_TLS_PORT=4433
CLIENT_HTTP_PORT=8080
UDP_PORT=7
BLOB=blob-${DOWNLOAD_KB}k.bin

log() { printf '[pcrec] %s\n' "$*" >&2; }
die() { printf '[pcrec] ERROR: %s\n' "$*" >&2; exit 1; }

[[ $(id -u) -eq 0 ]] || die "must run as root (namespaces, veth, sshd)"

# ---------------------------------------------------------------- cleanup --
# sshd needs its privilege-separation dir; if we have to create it we leave a
# marker in it, so this run or a later one can remove it again.
RUN_SSHD_MARK=/run/sshd/.created-by-pcrec

kill_ns_procs() {
    # Every process living in our namespaces was started by this script (or a
    # previous run of it): terminate them, politely first.
    local ns=$1 pids i
    ip netns list 2>/dev/null | awk '{print $1}' | grep -qx "$ns" || return 0
    pids=$(ip netns pids "$ns" 2>/dev/null || true)
    [[ -n $pids ]] || return 0
    # shellcheck disable=SC2086
    kill -TERM $pids 2>/dev/null || true
    for i in 1 2 3 4 5 6 7 8 9 10; do
        pids=$(ip netns pids "$ns" 2>/dev/null || true)
        [[ -n $pids ]] || return 0
        sleep 0.2
    done
    # shellcheck disable=SC2086
    kill -KILL $pids 2>/dev/null || true
    sleep 0.2
}

teardown() {
    local ns
    for ns in "$NS_C" "$NS_S"; do kill_ns_procs "$ns"; done
    # reap our own background children so bash does not report them later
    wait 2>/dev/null || true
    for ns in "$NS_C" "$NS_S"; do
        if ip netns list 2>/dev/null | awk '{print $1}' | grep -qx "$ns"; then
            ip netns del "$ns" 2>/dev/null || true   # also destroys the veth inside
        fi
    done
    # a veth end left in the root namespace by an interrupted older run
    for ifc in "$IF_C" "$IF_S"; do
        if ip link show "$ifc" type veth >/dev/null 2>&1; then
            ip link del "$ifc" 2>/dev/null || true
        fi
    done
    if [[ -e $RUN_SSHD_MARK ]]; then rm -f "$RUN_SSHD_MARK"; rmdir /run/sshd 2>/dev/null || true; fi
}

on_exit() {
    local rc=$?
    set +e
    trap - EXIT INT TERM ERR
    teardown
    if [[ ${KEEP_WORK_DIR:-0} != 1 ]]; then rm -rf "$WORK_DIR"; else log "kept $WORK_DIR"; fi
    if [[ $rc -ne 0 ]]; then log "failed (exit $rc); lab torn down"; fi
    exit "$rc"
}
trap on_exit EXIT
trap 'log "command failed (exit $?) at line $LINENO: $BASH_COMMAND"' ERR
trap 'exit 130' INT
trap 'exit 143' TERM

# ----------------------------------------------------------- dependencies --
need_pkgs=()
chk() { command -v "$1" >/dev/null 2>&1 || [[ -x $1 ]] || need_pkgs+=("$2"); }
chk nginx nginx-light
chk /usr/sbin/sshd openssh-server
chk ssh openssh-client
chk ssh-keygen openssh-client
chk socat socat
chk tcpdump tcpdump
chk ethtool ethtool
chk ip iproute2
chk ss iproute2
chk ping iputils-ping
chk openssl openssl
chk curl curl
chk /usr/bin/python3 python3
/usr/bin/python3 -c "import ensurepip" 2>/dev/null || need_pkgs+=(python3-venv)
if ((${#need_pkgs[@]})); then
    mapfile -t need_pkgs < <(printf '%s\n' "${need_pkgs[@]}" | sort -u)
    [[ ${SKIP_APT:-0} != 1 ]] || die "missing packages: ${need_pkgs[*]}"
    log "installing: ${need_pkgs[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # policy-rc.d (if present) keeps the packages' own services from starting;
    # we only ever run private instances inside the lab namespace.
    apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" >/dev/null
fi

# ---------------------------------------------------- leftovers, work dir --
log "removing leftovers of a previous run (if any)"
teardown
rm -rf "$WORK_DIR"
mkdir -p "$WORK_DIR"
chmod 700 "$WORK_DIR"
W=$WORK_DIR

# ------------------------------------------------------------------- lab --
log "building lab: $NS_C($IF_C $MAC_C) <-> $NS_S($IF_S $MAC_S)"
ip netns add "$NS_C"
ip netns add "$NS_S"
for ns in "$NS_C" "$NS_S"; do
    # Keep link-up chatter out of the capture: no router solicitations, no DAD
    # delay, and the unsolicited MLD reports sent at 10 ms intervals instead of
    # 1 s, so they are all over before tcpdump starts. Set on 'default' before
    # the veth exists, so the new interfaces inherit them.
    for k in router_solicitations=0 dad_transmits=0 accept_dad=0 \
             mldv1_unsolicited_report_interval=10 mldv2_unsolicited_report_interval=10; do
        ip netns exec "$ns" sysctl -qw "net.ipv6.conf.default.$k" "net.ipv6.conf.all.$k"
    done
    ip -n "$ns" link set lo up
done
ip link add "$IF_C" address "$MAC_C" mtu 1500 netns "$NS_C" type veth \
    peer name "$IF_S" address "$MAC_S" mtu 1500 netns "$NS_S"

setup_if() {
    local ns=$1 ifc=$2 ip4=$3 ip6=$4
    ip netns exec "$ns" ethtool -K "$ifc" tso off gso off gro off tx off rx off >/dev/null 2>&1 ||
        ip netns exec "$ns" ethtool -K "$ifc" tso off gso off gro off tx off rx off
    ip -n "$ns" addr add "$ip4/24" dev "$ifc"
    ip -n "$ns" -6 addr add "$ip6/64" dev "$ifc" nodad
    ip -n "$ns" link set "$ifc" up
}
setup_if "$NS_C" "$IF_C" "$IP4_C" "$IP6_C"
setup_if "$NS_S" "$IF_S" "$IP4_S" "$IP6_S"
for a in "$IP4_HTTP443" "$IP4_SSH443" "$IP4_BLOCKED"; do ip -n "$NS_S" addr add "$a/24" dev "$IF_S"; done

# ---------------------------------------------------------- server side --
log "preparing TLS cert, web root, ssh keys, the QUIC peers"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 30 \
    -subj "/CN=$TLS_NAME" -addext "subjectAltName=DNS:$TLS_NAME" \
    -keyout "$W/tls-key.pem" -out "$W/tls-cert.pem" 2>/dev/null
mkdir -p "$W/www" "$W/nginx-tmp" "$W/www-client"
head -c "$((DOWNLOAD_KB * 1024))" /dev/urandom >"$W/www/$BLOB"
cat >"$W/www/index.html" <<HTML
<!doctype html>
<html><head><title>Portcullis demo</title></head>
<body><p>Portcullis lab server. Try <a href="/$BLOB">$BLOB</a>.</p></body></html>
HTML
echo "a host inside" >"$W/www-client/index.html"
/usr/bin/python3 -m venv "$W/venv"
"$W/venv/bin/pip" install -q "$AIOQUIC" || die "pip could not install $AIOQUIC (the QUIC peers need it)"

# nginx answers every name (the blocked one too: the appliance, not the server, must refuse it).
cat >"$W/nginx.conf" <<CONF
user root;
worker_processes 1;
daemon off;
master_process on;
pid $W/nginx.pid;
error_log $W/nginx-error.log notice;
events { worker_connections 64; }
http {
    access_log $W/nginx-access.log;
    client_body_temp_path $W/nginx-tmp/body;
    proxy_temp_path $W/nginx-tmp/proxy;
    fastcgi_temp_path $W/nginx-tmp/fastcgi;
    uwsgi_temp_path $W/nginx-tmp/uwsgi;
    scgi_temp_path $W/nginx-tmp/scgi;
    types { text/html html; application/octet-stream bin; }
    default_type application/octet-stream;
    keepalive_timeout 5s;
    server {
        listen $IP4_S:443 ssl;
        listen [$IP6_S]:443 ssl;
        listen $IP4_S:$UNEXPECTED_TLS_PORT ssl;
        listen $IP4_BLOCKED:443 ssl;
        server_name _;
        ssl_certificate $W/tls-cert.pem;
        ssl_certificate_key $W/tls-key.pem;
        ssl_protocols TLSv1.2 TLSv1.3;
        root $W/www;
        index index.html;
    }
}
CONF

ssh-keygen -q -t ed25519 -N '' -C pcrec-host -f "$W/ssh_host_ed25519_key"
ssh-keygen -q -t ed25519 -N '' -C pcrec-client -f "$W/client_key"
cp "$W/client_key.pub" "$W/authorized_keys"
cat >"$W/sshd_config" <<CONF
ListenAddress $IP4_S:22
ListenAddress $IP4_SSH443:443
HostKey $W/ssh_host_ed25519_key
PidFile $W/sshd.pid
AuthorizedKeysFile $W/authorized_keys
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
UseDNS no
PrintMotd no
PrintLastLog no
X11Forwarding no
AllowTcpForwarding no
AllowAgentForwarding no
CONF
if [[ ! -d /run/sshd ]]; then mkdir -p /run/sshd; chmod 755 /run/sshd; : >"$RUN_SSHD_MARK"; fi
/usr/sbin/sshd -t -f "$W/sshd_config"
ip netns exec "$NS_S" nginx -t -q -e "$W/nginx-error.log" -c "$W/nginx.conf"

log "starting nginx, sshd, socat echo, QUIC and plain HTTP servers in $NS_S"
# 'ip netns exec' execs the command, so $! is the server's own pid; all of
# them are also found (and killed) via 'ip netns pids' in teardown.
ins() { ip netns exec "$NS_S" "$@"; }
ins nginx -e "$W/nginx-error.log" -c "$W/nginx.conf" >"$W/nginx.out" 2>&1 &
ins /usr/sbin/sshd -D -f "$W/sshd_config" -E "$W/sshd.log" >"$W/sshd.out" 2>&1 &
ins socat -T 2 "UDP4-RECVFROM:$UDP_PORT,reuseaddr,fork" PIPE >"$W/socat-server.out" 2>&1 &
ins "$W/venv/bin/python" "$SCRIPT_DIR/quic-peer.py" server "$IP4_S" 443 \
    "$W/tls-cert.pem" "$W/tls-key.pem" >"$W/quic-server.out" 2>&1 &
ins /usr/bin/python3 -m http.server -b "$IP4_HTTP443" -d "$W/www" 443 >"$W/http443.out" 2>&1 &
ins /usr/bin/python3 -m http.server -b "$IP4_S" -d "$W/www" 5060 >"$W/http5060.out" 2>&1 &
ip netns exec "$NS_C" /usr/bin/python3 -m http.server -b "$IP4_C" -d "$W/www-client" \
    "$CLIENT_HTTP_PORT" >"$W/http-client.out" 2>&1 &

wait_listen() {   # wait_listen NS tcp|udp [ADDR]:PORT  (checked inside the namespace,
    local ns=$1 proto=$2 ep=$3 i   # so no packet crosses the veth yet)
    local opt=-Hltn; [[ $proto == udp ]] && opt=-Hlun
    local port=${ep##*:} addr=${ep%:*}
    for i in $(seq 1 50); do
        if ip netns exec "$ns" ss $opt "sport = :$port" | awk '{print $4}' |
            grep -q "^${addr:-.*}:$port\$"; then return 0; fi
        sleep 0.2
    done
    die "nothing listening on $proto/$ep in $ns (see $W/*.log, *.out; KEEP_WORK_DIR=1)"
}
for ep in "$IP4_S:443" "[$IP6_S]:443" "$IP4_BLOCKED:443" "$IP4_S:$UNEXPECTED_TLS_PORT" \
          "$IP4_S:22" "$IP4_SSH443:443" "$IP4_HTTP443:443" "$IP4_S:5060"; do
    wait_listen "$NS_S" tcp "$ep"
done
wait_listen "$NS_S" udp "$IP4_S:$UDP_PORT"
wait_listen "$NS_S" udp "$IP4_S:443"
wait_listen "$NS_C" tcp "$IP4_C:$CLIENT_HTTP_PORT"

# Let link-up chatter (MLD reports for the solicited-node groups) die out so
# the capture starts quiet; neighbour caches are still empty, since no packet
# that needed them has crossed the veth.
for i in $(seq 1 50); do
    [[ -z $(ip -n "$NS_C" -6 addr show dev "$IF_C" tentative) &&
       -z $(ip -n "$NS_S" -6 addr show dev "$IF_S" tentative) ]] && break
    sleep 0.1
done
sleep 2
ip -n "$NS_C" neigh flush dev "$IF_C" 2>/dev/null || true
ip -n "$NS_S" neigh flush dev "$IF_S" 2>/dev/null || true

# --------------------------------------------------------------- capture --
RAW=$W/raw.pcap
log "starting tcpdump on $IF_C"
# -Z root: Debian's tcpdump otherwise drops to user 'tcpdump' before writing.
ip netns exec "$NS_C" tcpdump -i "$IF_C" -s 0 -w "$RAW" -U -Z root -n \
    >"$W/tcpdump.out" 2>"$W/tcpdump.err" &
TCPDUMP_PID=$!
for i in $(seq 1 50); do
    grep -q 'listening on' "$W/tcpdump.err" 2>/dev/null && break
    kill -0 "$TCPDUMP_PID" 2>/dev/null || die "tcpdump died: $(cat "$W/tcpdump.err")"
    sleep 0.1
done
grep -q 'listening on' "$W/tcpdump.err" || die "tcpdump did not start"
sleep 0.5

# The flows file: one JSON object a flow, with what the demo must decide
# ("allowed", or the check or drop reason that stops it).
FLOWS=$W/demo-flows.json
echo '[' >"$FLOWS"
nflows=0
flow() {   # flow WHAT PROTO CLIENT SERVER EXPECT [SNI]
    local sni=${6:-}
    ((nflows++)) && echo ',' >>"$FLOWS"
    printf '  {"what": "%s", "proto": "%s", "client": "%s", "server": "%s", "expect": "%s"%s}' \
        "$1" "$2" "$3" "$4" "$5" "${sni:+, \"sni\": \"$sni\"}" >>"$FLOWS"
}
inc() { ip netns exec "$NS_C" "$@"; }
curl_port() {   # curl_port CURL-ARGS... : runs curl in the client ns, prints its local port
    local out code port
    out=$(inc curl -s -k --max-time 10 -o /dev/null -w '%{http_code} %{local_port}' "$@") ||
        die "curl $* failed: $out"
    read -r code port <<<"$out"
    [[ $code == 200 ]] || die "curl $* answered $code"
    echo "$port"
}
ssh_port() {   # ssh_port HOST PORT : ssh in, echo the client port the server saw
    local out
    out=$(inc ssh -F /dev/null -i "$W/client_key" -o IdentitiesOnly=yes -o BatchMode=yes \
        -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR \
        -o ConnectTimeout=10 -p "$2" "root@$1" 'echo "$SSH_CLIENT"' </dev/null) ||
        die "ssh to $1:$2 failed: $out"
    awk '{print $2}' <<<"$out"
}

log "allowed: ping -c 3 $IP4_S (ARP first), ping -c 2 $IP6_S (NDP first)"
inc ping -n -c 3 "$IP4_S" >"$W/ping4.out"
flow "ping" icmp "$IP4_C" "$IP4_S" allowed
inc ping -n -c 2 "$IP6_S" >"$W/ping6.out"
flow "ping over IPv6" icmp "$IP6_C" "$IP6_S" allowed

log "allowed: curl over TLS 1.3 GET /$BLOB"
p=$(curl_port --resolve "$TLS_NAME:443:$IP4_S" "https://$TLS_NAME/$BLOB")
flow "HTTPS download, curl, TLS 1.3" tcp "$IP4_C:$p" "$IP4_S:443" allowed "$TLS_NAME"
log "allowed: curl over TLS 1.2 and IPv6 GET /"
p=$(curl_port --tlsv1.2 --tls-max 1.2 --resolve "$TLS_NAME:443:[$IP6_S]" "https://$TLS_NAME/")
flow "HTTPS over IPv6, curl, TLS 1.2" tcp "[$IP6_C]:$p" "[$IP6_S]:443" allowed "$TLS_NAME"

log "allowed: ssh root@$IP4_S"
p=$(ssh_port "$IP4_S" 22)
flow "SSH on 22" tcp "$IP4_C:$p" "$IP4_S:22" allowed

log "allowed: UDP echo to $IP4_S:$UDP_PORT"
udp_probe="portcullis udp probe"
udp_out=$(printf '%s\n' "$udp_probe" | inc socat -t 1 -T 3 - "UDP4:$IP4_S:$UDP_PORT,sourceport=40007")
[[ $udp_out == "$udp_probe" ]] || die "UDP echo returned: '$udp_out'"
flow "UDP echo" udp "$IP4_C:40007" "$IP4_S:$UDP_PORT" allowed

log "allowed: QUIC to $IP4_S:443"
qport=40443
quic_out=$(inc "$W/venv/bin/python" "$SCRIPT_DIR/quic-peer.py" client "$IP4_S" 443 "$TLS_NAME" "$qport" 2>"$W/quic-client.err") ||
    die "QUIC client failed: $quic_out $(cat "$W/quic-client.err")"
[[ $quic_out == "portcullis quic probe" ]] || die "QUIC client got: $quic_out"
flow "QUIC" udp "$IP4_C:$qport" "$IP4_S:443" allowed "$TLS_NAME"

log "stopped: TLS to $BLOCKED_NAME"
p=$(curl_port --resolve "$BLOCKED_NAME:443:$IP4_S" "https://$BLOCKED_NAME/")
flow "TLS to a blocked name" tcp "$IP4_C:$p" "$IP4_S:443" sni_blocked "$BLOCKED_NAME"
log "stopped: TLS on port $UNEXPECTED_TLS_PORT"
p=$(curl_port --resolve "$TLS_NAME:$UNEXPECTED_TLS_PORT:$IP4_S" "https://$TLS_NAME:$UNEXPECTED_TLS_PORT/")
flow "TLS on an unexpected port" tcp "$IP4_C:$p" "$IP4_S:$UNEXPECTED_TLS_PORT" tls_unexpected_port "$TLS_NAME"
log "stopped: plain HTTP to $IP4_HTTP443:443"
p=$(curl_port "http://$IP4_HTTP443:443/")
flow "plain HTTP on 443" tcp "$IP4_C:$p" "$IP4_HTTP443:443" non_tls_on_tls_port
log "stopped: SSH to $IP4_SSH443:443"
p=$(ssh_port "$IP4_SSH443" 443)
flow "SSH on 443" tcp "$IP4_C:$p" "$IP4_SSH443:443" non_tls_on_tls_port
log "stopped: HTTP to the SIP port $IP4_S:5060"
p=$(curl_port "http://$IP4_S:5060/")
flow "HTTP to the SIP port (NAT Slipstreaming)" tcp "$IP4_C:$p" "$IP4_S:5060" protocol_port_mismatch
log "stopped: HTTPS to the blocklisted $IP4_BLOCKED"
p=$(curl_port --resolve "$TLS_NAME:443:$IP4_BLOCKED" "https://$TLS_NAME/")
flow "HTTPS to a blocklisted address" tcp "$IP4_C:$p" "$IP4_BLOCKED:443" blocklist
log "stopped: a connection opened from outside ($IP4_S -> $IP4_C:$CLIENT_HTTP_PORT)"
out=$(ip netns exec "$NS_S" curl -s --max-time 10 -o /dev/null -w '%{http_code} %{local_port}' \
    "http://$IP4_C:$CLIENT_HTTP_PORT/") || die "curl from outside failed: $out"
read -r code p <<<"$out"
[[ $code == 200 ]] || die "curl from outside answered $code"
flow "HTTP opened from outside" tcp "$IP4_S:$p" "$IP4_C:$CLIENT_HTTP_PORT" inbound_default
printf '\n]\n' >>"$FLOWS"

log "waiting for teardown packets, stopping tcpdump"
sleep 2
kill -INT "$TCPDUMP_PID"
wait "$TCPDUMP_PID" || true
tcpdump_stats=$(grep -E 'packets (captured|received|dropped)' "$W/tcpdump.err" | tr '\n' ';' || true)
/usr/bin/python3 -m json.tool "$FLOWS" >/dev/null || die "the flows file is not JSON"

# ---------------------------------------------------------------- split --
# The outside host's frames of the connection it opened come in on the
# outside port; every other frame (both directions, as on one wire) on the
# inside port, in capture order.
DEMO=$W/demo.pcap
DEMO_OUT=$W/demo-outside.pcap
FROM_OUTSIDE="ether src $MAC_S and tcp port $CLIENT_HTTP_PORT"
tcpdump -r "$RAW" -w "$DEMO" "not ($FROM_OUTSIDE)" 2>/dev/null
tcpdump -r "$RAW" -w "$DEMO_OUT" "$FROM_OUTSIDE" 2>/dev/null

count() { tcpdump -nn -r "$1" 2>/dev/null | wc -l; }
n_raw=$(count "$RAW"); n_demo=$(count "$DEMO"); n_out=$(count "$DEMO_OUT")
fsize() { stat -c %s "$1"; }
s_demo=$(fsize "$DEMO"); s_out=$(fsize "$DEMO_OUT")
s_total=$((s_demo + s_out))

# ---------------------------------------------------------------- checks --
log "checking the capture"
fails=()
check() { local what=$1; shift; if ! "$@"; then fails+=("$what"); fi; }
magic=$(od -An -tx1 -N4 "$DEMO" | tr -d ' \n')
linktype=$(tcpdump -r "$DEMO" -c 1 2>&1 >/dev/null | grep -o 'link-type [A-Z0-9_]*' | sed -n 1p || true)
check "classic pcap magic (got $magic)" test "$magic" = d4c3b2a1 -o "$magic" = 4d3cb2a1
check "Ethernet link type (got $linktype)" test "$linktype" = "link-type EN10MB"
check "demo + outside ($n_demo+$n_out) == recorded ($n_raw)" test $((n_demo + n_out)) -eq "$n_raw"
check "the outside host's frames were split off (got $n_out)" test "$n_out" -ge 3
check "total size $s_total <= ${MAX_TOTAL_KB} KB" test "$s_total" -le $((MAX_TOTAL_KB * 1024))
bad_ck=$(tcpdump -nn -vv -r "$RAW" 2>/dev/null | grep -ciE 'incorrect|bad (tcp |udp )?cksum' || true)
check "no bad checksums (got $bad_ck)" test "$bad_ck" -eq 0
max_len=$(tcpdump -nn -e -r "$RAW" 2>/dev/null | grep -oE 'length [0-9]+:' | tr -dc '0-9\n' | sort -n | tail -1)
check "all frames wire-sized <= 1514 (max $max_len)" test "$max_len" -le 1514
others=$(tcpdump -nn -e -r "$RAW" "not ether src $MAC_C and not ether src $MAC_S" 2>/dev/null | wc -l)
check "no frames from other MACs (got $others)" test "$others" -eq 0
# Every TCP flow of the flows file completed in the lab: SYN both ways, FIN both ways, no RST.
while read -r client server; do
    c=${client%:*}; cp=${client##*:}; s=${server%:*}; sp=${server##*:}
    c=${c#[}; c=${c%]}; s=${s#[}; s=${s%]}
    f="tcp and host $c and port $cp and host $s and port $sp"
    # BPF reads TCP header bytes of IPv4 only: over IPv6 (no extension headers
    # here) the flags are byte 40 + 13.
    flags='tcp[13]'; [[ $c == *:* ]] && flags='ip6[53]'
    n() { tcpdump -nn -r "$RAW" "$f and $flags & $1 != 0" 2>/dev/null | wc -l; }
    check "TCP $client -> $server: SYN both ways" test "$(n 2)" -eq 2
    check "TCP $client -> $server: FIN both ways" test "$(n 1)" -ge 2
    check "TCP $client -> $server: no RST" test "$(n 4)" -eq 0
done < <(/usr/bin/python3 -c '
import json, sys
for f in json.load(open(sys.argv[1])):
    if f["proto"] == "tcp": print(f["client"], f["server"])' "$FLOWS")
# Nothing but the flows listed, ARP and IPv6 neighbour discovery.
listed=$(/usr/bin/python3 -c '
import json, sys
parts = []
for f in json.load(open(sys.argv[1])):
    c, s = (x.rsplit(":", 1)[0].strip("[]") if f["proto"] != "icmp" else x for x in (f["client"], f["server"]))
    if f["proto"] == "icmp":
        parts.append("(icmp or icmp6) and host %s and host %s" % (c, s))
    else:
        cp, sp = f["client"].rsplit(":", 1)[1], f["server"].rsplit(":", 1)[1]
        parts.append("%s and host %s and port %s and host %s and port %s" % (f["proto"], c, cp, s, sp))
print(" or ".join("(%s)" % p for p in parts))' "$FLOWS")
stray=$(tcpdump -nn -r "$RAW" "not arp and not (icmp6 and ip6[40] >= 133 and ip6[40] <= 136) and not ($listed)" 2>/dev/null | wc -l)
check "no traffic outside the flows file (got $stray frames)" test "$stray" -eq 0

if ((${#fails[@]})); then
    printf '[pcrec] check failed: %s\n' "${fails[@]}" >&2
    tcpdump -nn -r "$RAW" 2>/dev/null | head -60 >&2
    die "capture did not pass its checks; outputs in $OUT_DIR left untouched"
fi

# -------------------------------------------------------------- manifest --
first_ts=$(TZ=UTC tcpdump -nn -tttt -c 1 -r "$RAW" 2>/dev/null | awk '{print $1" "$2}')
last_ts=$(TZ=UTC tcpdump -nn -tttt -r "$RAW" 2>/dev/null | tail -1 | awk '{print $1" "$2}')
MAN=$W/demo.txt
{
    echo "# Portcullis demo capture: demo.pcap + demo-outside.pcap, flows in demo-flows.json"
    echo
    echo "Recorded by perf/record-demo-capture.sh (re-run it as root to regenerate; the"
    echo "two pcaps, the flows file and this file are rewritten together)."
    echo "Recorded:  $first_ts .. $last_ts UTC (recording host clock)"
    echo "Host:      $(uname -sr); $(tcpdump --version 2>&1 | sed -n 1p); $(nginx -v 2>&1 | sed 's/^nginx version: //'); $(ssh -V 2>&1 | cut -d, -f1); $(openssl version | cut -d' ' -f1-2); $(curl --version | sed -n 1p | cut -d' ' -f1-2); $AIOQUIC"
    echo
    echo "## Lab"
    echo "Two network namespaces joined by one veth pair, MTU 1500, offloads off, so"
    echo "every frame is wire-sized (max $max_len bytes) with a software-computed checksum."
    echo "Captured with: tcpdump -i $IF_C -s 0 -w FILE -U   (in $NS_C)"
    echo
    echo "  client  $NS_C/$IF_C  MAC $MAC_C  $IP4_C/24  $IP6_C/64   (inside)"
    echo "  server  $NS_S/$IF_S  MAC $MAC_S  $IP4_S $IP4_HTTP443 $IP4_SSH443 $IP4_BLOCKED /24  $IP6_S/64   (outside)"
    echo
    echo "Servers: nginx TLS on $IP4_S:443, [$IP6_S]:443, $IP4_S:$UNEXPECTED_TLS_PORT and $IP4_BLOCKED:443"
    echo "(self-signed, CN=$TLS_NAME, any name served); sshd on $IP4_S:22 and $IP4_SSH443:443;"
    echo "socat UDP echo :$UDP_PORT; perf/quic-peer.py (aioquic) on UDP $IP4_S:443; python3"
    echo "http.server on $IP4_HTTP443:443 and $IP4_S:5060, and in the client namespace on"
    echo "$IP4_C:$CLIENT_HTTP_PORT (for the connection opened from outside)."
    echo "$BLOB is ${DOWNLOAD_KB} KiB of random bytes."
    echo
    echo "## Files"
    printf '  %-20s %6s packets  %8s bytes  sha256 %s\n' \
        demo.pcap "$n_demo" "$s_demo" "$(sha256sum "$DEMO" | cut -c1-16)" \
        demo-outside.pcap "$n_out" "$s_out" "$(sha256sum "$DEMO_OUT" | cut -c1-16)"
    echo "  demo-outside.pcap = tcpdump -r RECORDED -w demo-outside.pcap '$FROM_OUTSIDE'"
    echo "  demo.pcap         = the rest, in capture order (classic pcap, EN10MB)"
    echo
    echo "## Flows, in order, and what the demo must decide"
    /usr/bin/python3 -c '
import json, sys
for f in json.load(open(sys.argv[1])):
    print("  %-4s %-22s -> %-18s %-22s %s" % (f["proto"], f["client"], f["server"], f["expect"], f["what"]))' "$FLOWS"
    echo
    echo "Checks passed: every TCP flow above completed in the lab (SYN and FIN both"
    echo "ways, no RST); nothing else but ARP and neighbour discovery on the wire; no bad"
    echo "checksums; no frame above 1514 bytes."
} >"$MAN"

mkdir -p "$OUT_DIR"
cp "$DEMO" "$DEMO_OUT" "$FLOWS" "$MAN" "$OUT_DIR/"
log "tcpdump: $tcpdump_stats"
log "wrote $OUT_DIR/{demo.pcap,demo-outside.pcap,demo-flows.json,demo.txt}"
cat "$MAN"
