#!/usr/bin/env bash
# record-demo-capture.sh - record a small capture of REAL traffic for Portcullis.
#
# Builds a two-namespace lab joined by one veth pair (no bridge, no host
# traffic), runs real servers (nginx/TLS, sshd, UDP echo) in the server
# namespace, drives real clients from the client namespace while tcpdump
# records on the client's veth, then writes:
#
#   configs/captures/lab-mixed.pcap    both directions (classic pcap, DLT_EN10MB)
#   configs/captures/lab-inside.pcap   frames sent by the client (ether src CLIENT_MAC)
#   configs/captures/lab-outside.pcap  frames sent by the server (ether src SERVER_MAC)
#   configs/captures/lab-mixed.txt     manifest: how, counts, conversations, sizes
#
# inside/outside are meant to be replayed into the two ports of the
# bump-in-the-wire appliance (inside port <- client side, outside <- server).
#
# Needs root. Idempotent: leftovers of a previous run (namespaces, the
# processes inside them, the work dir) are removed first, and a trap removes
# everything this run created, on success and on failure. Outputs are only
# replaced when the new capture passes its checks.
#
# Environment knobs:
#   DOWNLOAD_KB=100     size of the random file fetched over HTTPS (twice)
#   MAX_TOTAL_KB=600    fail if the three pcaps together exceed this
#   OUT_DIR=...         default: <repo>/configs/captures
#   WORK_DIR=...        default: /tmp/pcrec-lab (wiped at start and at exit)
#   KEEP_WORK_DIR=1     keep WORK_DIR at exit (debugging)
#   SKIP_APT=1          do not try to install missing packages
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(cd "$SCRIPT_DIR/.." && pwd)
OUT_DIR=${OUT_DIR:-$REPO_DIR/configs/captures}
WORK_DIR=${WORK_DIR:-/tmp/pcrec-lab}
DOWNLOAD_KB=${DOWNLOAD_KB:-100}
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
TLS_NAME=demo.portcullis.test
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

# ---------------------------------------------------------- server side --
log "preparing TLS cert, web root, ssh keys"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 30 \
    -subj "/CN=$TLS_NAME" -addext "subjectAltName=DNS:$TLS_NAME" \
    -keyout "$W/tls-key.pem" -out "$W/tls-cert.pem" 2>/dev/null
mkdir -p "$W/www" "$W/nginx-tmp"
head -c "$((DOWNLOAD_KB * 1024))" /dev/urandom >"$W/www/$BLOB"
cat >"$W/www/index.html" <<EOF
<!doctype html>
<html><head><title>Portcullis demo</title></head>
<body><p>Portcullis lab server. Try <a href="/$BLOB">$BLOB</a>.</p></body></html>
EOF

cat >"$W/nginx.conf" <<EOF
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
        listen 443 ssl;
        listen [::]:443 ssl;
        server_name $TLS_NAME;
        ssl_certificate $W/tls-cert.pem;
        ssl_certificate_key $W/tls-key.pem;
        ssl_protocols TLSv1.2 TLSv1.3;
        root $W/www;
        index index.html;
    }
}
EOF

ssh-keygen -q -t ed25519 -N '' -C pcrec-host -f "$W/ssh_host_ed25519_key"
ssh-keygen -q -t ed25519 -N '' -C pcrec-client -f "$W/client_key"
cp "$W/client_key.pub" "$W/authorized_keys"
cat >"$W/sshd_config" <<EOF
Port 22
ListenAddress 0.0.0.0
ListenAddress ::
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
EOF
if [[ ! -d /run/sshd ]]; then mkdir -p /run/sshd; chmod 755 /run/sshd; : >"$RUN_SSHD_MARK"; fi
/usr/sbin/sshd -t -f "$W/sshd_config"
nginx -t -q -e "$W/nginx-error.log" -c "$W/nginx.conf"

log "starting nginx, sshd, socat echo in $NS_S"
# 'ip netns exec' execs the command, so $! is the server's own pid; all of
# them are also found (and killed) via 'ip netns pids' in teardown.
ip netns exec "$NS_S" nginx -e "$W/nginx-error.log" -c "$W/nginx.conf" \
    >"$W/nginx.out" 2>&1 &
ip netns exec "$NS_S" /usr/sbin/sshd -D -f "$W/sshd_config" -E "$W/sshd.log" \
    >"$W/sshd.out" 2>&1 &
ip netns exec "$NS_S" socat -T 2 "UDP4-RECVFROM:$UDP_PORT,reuseaddr,fork" PIPE \
    >"$W/socat-server.out" 2>&1 &

wait_listen() {   # wait_listen tcp|udp PORT  (checked inside the server ns,
    local proto=$1 port=$2 i   # so no packet crosses the veth yet)
    local opt=-Hltn; [[ $proto == udp ]] && opt=-Hlun
    for i in $(seq 1 50); do
        if ip netns exec "$NS_S" ss $opt "sport = :$port" | grep -q .; then return 0; fi
        sleep 0.2
    done
    die "nothing listening on $proto/$port in $NS_S (see $W/*.log, *.out; KEEP_WORK_DIR=1)"
}
wait_listen tcp 443
wait_listen tcp 22
wait_listen udp "$UDP_PORT"

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

inc() { ip netns exec "$NS_C" "$@"; }

log "client: ping -c 3 $IP4_S (ARP first)"
inc ping -n -c 3 "$IP4_S" >"$W/ping4.out"
log "client: ping -c 2 $IP6_S (NDP first)"
inc ping -n -c 2 "$IP6_S" >"$W/ping6.out"

log "client: curl TLS 1.3 GET /$BLOB"
c13=$(inc curl -sk --resolve "$TLS_NAME:443:$IP4_S" "https://$TLS_NAME/$BLOB" -o /dev/null \
    -w '%{http_code} %{size_download} %{local_port} %{ssl_verify_result}')
log "client: curl TLS 1.2 GET /$BLOB"
c12=$(inc curl -sk --tlsv1.2 --tls-max 1.2 --resolve "$TLS_NAME:443:$IP4_S" \
    "https://$TLS_NAME/$BLOB" -o /dev/null -w '%{http_code} %{size_download} %{local_port}')
read -r c13_code c13_size c13_port _ <<<"$c13"
read -r c12_code c12_size c12_port <<<"$c12"
[[ $c13_code == 200 && $c13_size -eq $((DOWNLOAD_KB * 1024)) ]] || die "curl TLS1.3 got: $c13"
[[ $c12_code == 200 && $c12_size -eq $((DOWNLOAD_KB * 1024)) ]] || die "curl TLS1.2 got: $c12"

log "client: openssl s_client"
inc openssl s_client -connect "$IP4_S:443" -servername "$TLS_NAME" </dev/null \
    >"$W/s_client.out" 2>&1 || die "openssl s_client failed: $(tail -5 "$W/s_client.out")"
grep -q "CN *= *$TLS_NAME" "$W/s_client.out" || die "s_client did not see our certificate"

log "client: ssh root@$IP4_S 'echo hello'"
ssh_out=$(inc ssh -F /dev/null -i "$W/client_key" -o IdentitiesOnly=yes -o BatchMode=yes \
    -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR \
    -o ConnectTimeout=10 "root@$IP4_S" 'echo hello' </dev/null)
[[ $(printf '%s\n' "$ssh_out" | tail -1) == hello ]] || die "ssh returned: $ssh_out"

log "client: UDP echo request/response to $IP4_S:$UDP_PORT"
udp_probe="portcullis udp probe"
udp_out=$(printf '%s\n' "$udp_probe" | inc socat -t 1 -T 3 - "UDP4:$IP4_S:$UDP_PORT")
[[ $udp_out == "$udp_probe" ]] || die "UDP echo returned: '$udp_out'"

log "waiting for teardown packets, stopping tcpdump"
sleep 2
kill -INT "$TCPDUMP_PID"
wait "$TCPDUMP_PID" || true
tcpdump_stats=$(grep -E 'packets (captured|received|dropped)' "$W/tcpdump.err" | tr '\n' ';' || true)

# ---------------------------------------------------------------- split --
MIX=$W/lab-mixed.pcap
IN=$W/lab-inside.pcap
OUT=$W/lab-outside.pcap
cp "$RAW" "$MIX"
tcpdump -r "$MIX" -w "$IN" "ether src $MAC_C" 2>/dev/null
tcpdump -r "$MIX" -w "$OUT" "ether src $MAC_S" 2>/dev/null

count() { tcpdump -nn -r "$1" 2>/dev/null | wc -l; }
n_mix=$(count "$MIX"); n_in=$(count "$IN"); n_out=$(count "$OUT")
fsize() { stat -c %s "$1"; }
s_mix=$(fsize "$MIX"); s_in=$(fsize "$IN"); s_out=$(fsize "$OUT")
s_total=$((s_mix + s_in + s_out))

# ---------------------------------------------------- conversation table --
# One line per conversation, from tcpdump -e output:
#   PROTO|A|B|packets|frame-bytes|syn|fin|rst|note
conversations() {
    tcpdump -nn -t -e -r "$1" 2>/dev/null | awk '
    function hp(ep, v6,   n) {            # "addr.port" -> addr:port / [addr]:port
        n = match(ep, /\.[0-9]+$/)
        if (!n) return ep
        return (v6 ? "[" substr(ep, 1, n-1) "]" : substr(ep, 1, n-1)) ":" substr(ep, n+1)
    }
    {
        flen = 0
        if (match($0, /length [0-9]+: /)) flen = substr($0, RSTART+7, RLENGTH-9) + 0
        rest = substr($0, RSTART + RLENGTH)
        if ($0 ~ /ethertype ARP/) {
            if (match(rest, /who-has [0-9.]+/)) t = substr(rest, RSTART+8, RLENGTH-8)
            else { split(rest, r, " "); t = r[2] }
            key = "ARP|who-has " t "|"
            note = "request/reply"
        } else {
            v6 = ($0 ~ /ethertype IPv6/)
            split(rest, f, " ")
            src = f[1]; dst = f[3]; sub(/:$/, "", dst)
            l4 = f[4]
            if (l4 == "Flags") proto = "TCP"
            else if (l4 ~ /^UDP/) proto = "UDP"
            else if (l4 ~ /^ICMP6/) proto = "ICMP6"
            else if (l4 ~ /^ICMP/) proto = "ICMP"
            else proto = (v6 ? "IP6:" : "IP:") l4
            if (proto == "TCP" || proto == "UDP") { src = hp(src, v6); dst = hp(dst, v6) }
            a = src; b = dst
            if (a > b) { a = dst; b = src }
            key = proto "|" a "|" b
            if (proto ~ /ICMP/) {
                if (rest ~ /neighbor (solicitation|advertisement)/) nd[key] = 1
                else if (rest ~ /echo (request|reply)/) ec[key] = 1
            }
        }
        if (!(key in pk)) order[++nk] = key
        pk[key]++; by[key] += flen
        if (key ~ /^TCP/ && match(rest, /Flags \[[^]]*\]/)) {
            fl = substr(rest, RSTART+7, RLENGTH-8)
            if (fl ~ /S/) syn[key]++
            if (fl ~ /F/) fin[key]++
            if (fl ~ /R/) rst[key]++
        }
    }
    END {
        for (i = 1; i <= nk; i++) {
            k = order[i]; note = ""
            if (k ~ /^ARP/) note = "ARP"
            else if (k in nd && k in ec) note = "echo+ND"
            else if (k in nd) note = "neighbor discovery"
            else if (k in ec) note = "echo"
            printf "%s|%d|%d|%d|%d|%d|%s\n", k, pk[k], by[k], syn[k]+0, fin[k]+0, rst[k]+0, note
        }
    }'
}
conversations "$MIX" >"$W/conv.txt"

service_of() {  # label a conversation for the manifest
    local proto=$1 a=$2 b=$3
    local c13="$IP4_C:$c13_port" c12="$IP4_C:$c12_port"
    case $proto in
        TCP)
            if [[ $a == "$c13" || $b == "$c13" ]]; then echo "HTTPS, curl TLS 1.3, GET /$BLOB"
            elif [[ $a == "$c12" || $b == "$c12" ]]; then echo "HTTPS, curl TLS 1.2, GET /$BLOB"
            elif [[ $a == "$IP4_S:443" || $b == "$IP4_S:443" ]]; then echo "HTTPS, openssl s_client, handshake only"
            elif [[ $a == "$IP4_S:22" || $b == "$IP4_S:22" ]]; then echo "SSH, ssh root@$IP4_S 'echo hello'"
            fi ;;
        UDP) [[ $a == "$IP4_S:$UDP_PORT" || $b == "$IP4_S:$UDP_PORT" ]] && echo "UDP echo (socat)" ;;
        ARP) echo "ARP request/reply" ;;
        ICMP) echo "ping -c 3 $IP4_S" ;;
        *) ;;
    esac
    return 0
}

# ---------------------------------------------------------------- checks --
log "checking the capture"
fails=()
check() { local what=$1; shift; if ! "$@"; then fails+=("$what"); fi; }

linktype=$(tcpdump -r "$MIX" -c 1 2>&1 >/dev/null | grep -o 'link-type [A-Z0-9_]*' | sed -n 1p || true)
magic=$(od -An -tx1 -N4 "$MIX" | tr -d ' \n')
check "classic pcap magic (got $magic)" test "$magic" = d4c3b2a1 -o "$magic" = 4d3cb2a1
check "Ethernet link type (got $linktype)" test "$linktype" = "link-type EN10MB"
check "inside+outside ($n_in+$n_out) == mixed ($n_mix)" test $((n_in + n_out)) -eq "$n_mix"
check "total size $s_total <= ${MAX_TOTAL_KB} KB" test "$s_total" -le $((MAX_TOTAL_KB * 1024))

mixtxt=$(tcpdump -nn -t -e -r "$MIX" 2>/dev/null)
has() { grep -qE "$1" <<<"$mixtxt"; }
cnt() { grep -cE "$1" <<<"$mixtxt" || true; }
check "ARP request for $IP4_S" has "ARP.*Request who-has $IP4_S tell $IP4_C"
check "ARP reply from $IP4_S" has "ARP.*Reply $IP4_S is-at $MAC_S"
check "3 ICMP echo requests" test "$(cnt "$IP4_C > $IP4_S: ICMP echo request")" -eq 3
check "3 ICMP echo replies" test "$(cnt "$IP4_S > $IP4_C: ICMP echo reply")" -eq 3
check "NDP NS for $IP6_S" has "ICMP6, neighbor solicitation, who has $IP6_S"
check "NDP NA from $IP6_S" has "$IP6_S > .*ICMP6, neighbor advertisement, tgt is $IP6_S"
check "2 ICMPv6 echo requests" test "$(cnt "$IP6_C > $IP6_S: ICMP6, echo request")" -eq 2
check "2 ICMPv6 echo replies" test "$(cnt "$IP6_S > $IP6_C: ICMP6, echo reply")" -eq 2
check "UDP echo request+reply" test "$(cnt "$IP4_C\.[0-9]+ > $IP4_S\.$UDP_PORT: UDP|$IP4_S\.$UDP_PORT > $IP4_C\.[0-9]+: UDP")" -eq 2
n443=$(grep -c "^TCP|.*$IP4_S:443|" "$W/conv.txt" || true)
n22=$(grep -c "^TCP|.*$IP4_S:22|" "$W/conv.txt" || true)
check "3 TCP/443 connections (got $n443)" test "$n443" -eq 3
check "1 TCP/22 connection (got $n22)" test "$n22" -eq 1
while IFS='|' read -r proto a b pk by syn fin rst note; do
    [[ $proto == TCP ]] || continue
    check "TCP $a <-> $b: SYN+SYN/ACK (got $syn)" test "$syn" -eq 2
    check "TCP $a <-> $b: FIN both ways (got $fin)" test "$fin" -ge 2
    check "TCP $a <-> $b: no RST (got $rst)" test "$rst" -eq 0
done <"$W/conv.txt"
bad_ck=$(tcpdump -nn -vv -r "$MIX" 2>/dev/null | grep -ciE 'incorrect|bad (tcp |udp )?cksum' || true)
check "no bad checksums (got $bad_ck)" test "$bad_ck" -eq 0
max_len=$(tcpdump -nn -e -r "$MIX" 2>/dev/null | grep -oE 'length [0-9]+:' | tr -dc '0-9\n' | sort -n | tail -1)
check "all frames wire-sized <= 1514 (max $max_len)" test "$max_len" -le 1514
others=$(tcpdump -nn -e -r "$MIX" "not ether src $MAC_C and not ether src $MAC_S" 2>/dev/null | wc -l)
check "no frames from other MACs (got $others)" test "$others" -eq 0
e4c=${IP4_C//./\\.}; e4s=${IP4_S//./\\.}
allowed="^(ARP\|who-has ($e4s|$e4c)\||ICMP\|$e4c\|$e4s\||ICMP6\|$IP6_C\|($IP6_S|ff02::1:ff00:2)\|"
allowed+="|TCP\|$e4c:[0-9]+\|$e4s:(443|22)\||UDP\|$e4c:[0-9]+\|$e4s:$UDP_PORT\|)"
unexpected=$(grep -vE "$allowed" "$W/conv.txt" || true)
check "no unexpected conversations (got: ${unexpected//$'\n'/; })" test -z "$unexpected"

if ((${#fails[@]})); then
    printf '[pcrec] check failed: %s\n' "${fails[@]}" >&2
    head -50 <<<"$mixtxt" >&2
    die "capture did not pass its checks; outputs in $OUT_DIR left untouched"
fi

# -------------------------------------------------------------- manifest --
first_ts=$(TZ=UTC tcpdump -nn -tttt -c 1 -r "$MIX" 2>/dev/null | awk '{print $1" "$2}')
last_ts=$(TZ=UTC tcpdump -nn -tttt -r "$MIX" 2>/dev/null | tail -1 | awk '{print $1" "$2}')
MAN=$W/lab-mixed.txt
{
    echo "# Portcullis demo capture: lab-mixed.pcap (+ lab-inside.pcap, lab-outside.pcap)"
    echo
    echo "Recorded by perf/record-demo-capture.sh (re-run it as root to regenerate; all"
    echo "three pcaps and this file are rewritten together)."
    echo "Recorded:  $first_ts .. $last_ts UTC (recording host clock)"
    echo "Host:      $(uname -sr); $(tcpdump --version 2>&1 | sed -n 1p); $(nginx -v 2>&1 | sed 's/^nginx version: //'); $(ssh -V 2>&1 | cut -d, -f1); $(openssl version | cut -d' ' -f1-2); $(curl --version | sed -n 1p | cut -d' ' -f1-2)"
    echo
    echo "## Lab"
    echo "Two network namespaces joined by one veth pair, MTU 1500, offloads off"
    echo "(ethtool -K IF tso off gso off gro off tx off rx off), so every frame is"
    echo "wire-sized (max $max_len bytes) and carries a real, software-computed checksum."
    echo "Captured with: tcpdump -i $IF_C -s 0 -w FILE -U   (in $NS_C)"
    echo
    echo "  client  $NS_C/$IF_C  MAC $MAC_C  $IP4_C/24  $IP6_C/64   (inside side)"
    echo "  server  $NS_S/$IF_S  MAC $MAC_S  $IP4_S/24  $IP6_S/64   (outside side)"
    echo
    echo "Server: nginx HTTPS :443 (self-signed EC P-256 cert, CN=$TLS_NAME),"
    echo "        sshd :22 (ed25519 keys, root pubkey login), socat UDP echo :$UDP_PORT."
    echo "Client, in order: ping -c 3 $IP4_S; ping -c 2 $IP6_S;"
    echo "        curl -sk --resolve $TLS_NAME:443:$IP4_S https://$TLS_NAME/$BLOB (TLS 1.3);"
    echo "        same with --tlsv1.2 --tls-max 1.2;"
    echo "        openssl s_client -connect $IP4_S:443 -servername $TLS_NAME </dev/null;"
    echo "        ssh root@$IP4_S 'echo hello'; one UDP datagram to $IP4_S:$UDP_PORT and its echo."
    echo "$BLOB is ${DOWNLOAD_KB} KiB of random bytes (served twice)."
    echo
    echo "## Files"
    printf '  %-18s %6s packets  %8s bytes  sha256 %s\n' \
        lab-mixed.pcap "$n_mix" "$s_mix" "$(sha256sum "$MIX" | cut -c1-16)" \
        lab-inside.pcap "$n_in" "$s_in" "$(sha256sum "$IN" | cut -c1-16)" \
        lab-outside.pcap "$n_out" "$s_out" "$(sha256sum "$OUT" | cut -c1-16)"
    echo "  total              $s_total bytes ($(( (s_total + 1023) / 1024 )) KiB) for the three pcaps"
    echo "  Format: classic pcap (magic $magic), link type EN10MB (Ethernet), snaplen 262144."
    echo "  lab-inside.pcap  = tcpdump -r lab-mixed.pcap -w lab-inside.pcap  'ether src $MAC_C'"
    echo "  lab-outside.pcap = tcpdump -r lab-mixed.pcap -w lab-outside.pcap 'ether src $MAC_S'"
    echo "  inside + outside = mixed ($n_in + $n_out = $n_mix). Packet counts: tcpdump -r F | wc -l"
    echo
    echo "## Conversations (in order of first packet)"
    printf '  %-6s %-24s %-24s %5s %8s  %s\n' proto endpoint-A endpoint-B pkts bytes "what"
    while IFS='|' read -r proto a b pk by syn fin rst note; do
        what=$(service_of "$proto" "$a" "$b")
        [[ -n $what ]] || what=$note
        extra=""
        [[ $proto == TCP ]] && extra=" [SYN $syn, FIN $fin, RST $rst]"
        [[ $proto == ICMP6 ]] && what="ICMPv6 $note"
        printf '  %-6s %-24s %-24s %5s %8s  %s%s\n' "$proto" "$a" "$b" "$pk" "$by" "$what" "$extra"
    done <"$W/conv.txt"
    echo "  (bytes = sum of Ethernet frame lengths, without FCS)"
    echo
    echo "Checks passed: ARP + NDP resolution, 3+3 ICMP echo, 2+2 ICMPv6 echo, 3 TLS and 1 SSH"
    echo "TCP connection each with SYN, SYN/ACK and FIN both ways and no RST, UDP echo"
    echo "request+reply, no bad checksums, no frame above 1514 bytes, no other traffic."
} >"$MAN"

mkdir -p "$OUT_DIR"
cp "$MIX" "$IN" "$OUT" "$MAN" "$OUT_DIR/"
log "tcpdump: $tcpdump_stats"
log "wrote $OUT_DIR/{lab-mixed,lab-inside,lab-outside}.pcap + lab-mixed.txt"
log "packets mixed=$n_mix inside=$n_in outside=$n_out; total $s_total bytes"
cat "$MAN"
