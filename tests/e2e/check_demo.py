#!/usr/bin/env python3
"""check_demo.py - holds a demo run to the capture's known flows.

    check_demo.py FLOWS.json CAPTURE.pcap OUTSIDE.pcap INSIDE-TX.pcap OUTSIDE-TX.pcap EVE.json

FLOWS.json (configs/captures/demo-flows.json, written by perf/record-demo-capture.sh) says, for
every flow of the capture, what the demo must decide: "allowed", a check's name, or a policy
drop reason. For each flow this checks the events the run wrote and the frames it forwarded:
- allowed: its `flow` event says allowed, no alert blocked it, and every frame of it left on
  the outside port unchanged (the same IP packets, byte for byte, as in the replay);
- stopped by a check: an `alert` event names that check with a blocking action, its `flow` event
  says blocked, and not one payload byte of it was forwarded either way;
- stopped by the policy (blocklist, inbound_default): a `drop` event with that reason, no
  `flow` event saying allowed, and not one frame of it forwarded either way.
A blocked SNI's name must not appear in any forwarded frame. Exits 1 with every failure listed.
"""

import ipaddress
import json
import sys

from scapy.all import ICMP, IP, TCP, UDP, IPv6, rdpcap  # noqa: E402

failures = []


def fail(msg):
    failures.append(msg)


def split(ep, proto):
    """'10.0.0.1:80' / '[fd99::1]:80' / '10.0.0.1' (icmp) -> (address, port or None)."""
    if proto == "icmp":
        return str(ipaddress.ip_address(ep)), None
    host, port = ep.rsplit(":", 1)
    return str(ipaddress.ip_address(host.strip("[]"))), int(port)


def l3(pkt):
    if IP in pkt:
        return pkt[IP]
    if IPv6 in pkt:
        return pkt[IPv6]
    return None


def frames_of(pkts, flow):
    """The frames of one flow (ICMP: echo request/reply between the two addresses)."""
    proto = flow["proto"]
    c, cp = split(flow["client"], proto)
    s, sp = split(flow["server"], proto)
    out = []
    for p in pkts:
        ip = l3(p)
        if ip is None or {ip.src, ip.dst} != {c, s}:
            continue
        if proto == "icmp":
            echo = (ICMP in p and p[ICMP].type in (0, 8)) or (
                p.haslayer("ICMPv6EchoRequest") or p.haslayer("ICMPv6EchoReply"))
            if echo:
                out.append(p)
            continue
        l4 = TCP if proto == "tcp" else UDP
        if l4 not in p:
            continue
        ports = {(ip.src, p[l4].sport), (ip.dst, p[l4].dport)}
        if ports == {(c, cp), (s, sp)}:
            out.append(p)
    return out


def payload(frames, proto):
    """Transport payload bytes (ICMP: the whole message); Ethernet padding is not payload."""
    n = 0
    for p in frames:
        ip = l3(p)
        data = bytes(ip.payload)
        if IP in p:
            data = data[: max(0, ip.len - 4 * ip.ihl)]
        else:
            data = data[: ip.plen]
        if proto == "tcp":
            data = data[4 * p[TCP].dataofs:]
        elif proto == "udp":
            data = data[8:]
        n += len(data)
    return n


def packets(frames):
    """The IP packets, as bytes, in a comparable multiset."""
    return sorted(bytes(l3(p)) for p in frames)


def events_of(events, flow):
    proto = flow["proto"]
    c, cp = split(flow["client"], proto)
    s, sp = split(flow["server"], proto)
    mine = []
    for e in events:
        if "src_ip" not in e:
            continue
        ends = {(e["src_ip"], e.get("src_port")), (e["dest_ip"], e.get("dest_port"))}
        if proto == "icmp":
            if {e["src_ip"], e["dest_ip"]} == {c, s} and e.get("proto", "").endswith("ICMP"):
                mine.append(e)
        elif ends == {(c, cp), (s, sp)} and e.get("proto", "").lower() == proto:
            mine.append(e)
    return mine


def check_flow(flow, replay, to_outside, tx, events):
    name = f'{flow["what"]} ({flow["client"]} -> {flow["server"]})'
    expect = flow["expect"]
    mine = events_of(events, flow)
    sent = frames_of(replay, flow)
    fwd = frames_of(tx, flow)
    out = frames_of(to_outside, flow)
    verdicts = {e["flow"]["verdict"] for e in mine if e["event_type"] == "flow"}
    alerts = [e["alert"] for e in mine if e["event_type"] == "alert"]
    drops = {e["drop"]["reason"] for e in mine if e["event_type"] == "drop"}
    if not sent:
        fail(f"{name}: no frames of it in the replay: the flows file and capture disagree")
        return
    if expect == "allowed":
        if verdicts != {"allowed"}:
            fail(f"{name}: flow verdicts {verdicts or 'none'}, expected allowed")
        blocked = [a["signature"] for a in alerts if a["action"] == "blocked"]
        if blocked:
            fail(f"{name}: allowed flow blocked by {blocked}")
        if len(out) != len(fwd) or packets(out) != packets(sent):
            fail(f"{name}: {len(out)} of {len(sent)} frames left unchanged on the outside port "
                 f"({len(fwd)} forwarded on either port)")
        return
    if expect in ("blocklist", "inbound_default", "rule"):
        if expect not in drops:
            fail(f"{name}: no drop event with reason {expect} (got {drops or 'none'})")
        if "allowed" in verdicts:
            fail(f"{name}: a flow event says allowed")
        if fwd:
            fail(f"{name}: {len(fwd)} of its frames were forwarded")
    else:
        hits = [a for a in alerts if a["signature"] == expect]
        if not hits:
            fail(f"{name}: no alert {expect} (alerts: {[a['signature'] for a in alerts]})")
        elif not all(a["action"] == "blocked" for a in hits):
            fail(f"{name}: alert {expect} did not block: {hits}")
        if verdicts != {"blocked"}:
            fail(f"{name}: flow verdicts {verdicts or 'none'}, expected blocked")
    leaked = payload(fwd, flow["proto"])
    if leaked:
        fail(f"{name}: {leaked} payload bytes of a stopped flow were forwarded")


def main():
    flows_path, capture, outside, inside_tx, outside_tx, eve = sys.argv[1:7]
    flows = json.load(open(flows_path))
    replay = list(rdpcap(capture)) + list(rdpcap(outside))
    to_outside = list(rdpcap(outside_tx))
    tx = list(rdpcap(inside_tx)) + to_outside
    events = [json.loads(line) for line in open(eve) if line.strip()]
    for flow in flows:
        check_flow(flow, replay, to_outside, tx, events)
    for flow in flows:
        sni = flow.get("sni")
        if sni and flow["expect"] == "sni_blocked":
            hits = sum(bytes(p).count(sni.encode()) for p in tx)
            if hits:
                fail(f"the blocked name {sni} left the appliance in {hits} place(s)")
    kinds = sorted({f["expect"] for f in flows})
    if failures:
        print("\n".join("FAIL: " + f for f in failures))
        sys.exit(1)
    print(f"demo: all {len(flows)} flows decided as the capture says ({', '.join(kinds)})")


if __name__ == "__main__":
    main()
