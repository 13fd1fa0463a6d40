#!/usr/bin/python3
"""Seeds for the inspection fuzz targets from the real captures in ../shared/corpus: each TCP
flow direction's first 8 KB of payload (tls_hello, detect) and each UDP payload (quic_initial,
detect). Writes fuzz/corpus/<target>/; the fuzzer mutates from there."""
import hashlib, os, sys
from scapy.all import rdpcap, IP, IPv6, TCP, UDP  # Debian's python3-scapy

root = os.path.dirname(os.path.abspath(__file__))
pcaps = os.path.join(root, "..", "..", "shared", "corpus", "pcaps")
if not os.path.isdir(pcaps):
    sys.exit(f"no corpus at {pcaps}")

def put(target, data):
    d = os.path.join(root, "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, hashlib.sha1(data).hexdigest()), "wb") as f:
        f.write(data)

n = 0
for name in sorted(os.listdir(pcaps)):
    try:
        pkts = rdpcap(os.path.join(pcaps, name))
    except Exception as e:
        print(f"skip {name}: {e}")
        continue
    streams = {}
    for p in pkts:
        ip = p.getlayer(IP) or p.getlayer(IPv6)
        if ip is None:
            continue
        if p.haslayer(TCP):
            t = p[TCP]
            data = bytes(t.payload)
            if data:
                k = (ip.src, t.sport, ip.dst, t.dport)
                streams[k] = (streams.get(k, b"") + data)[:8192]
        elif p.haslayer(UDP):
            data = bytes(p[UDP].payload)
            if data:
                put("quic_initial", data)
                put("detect", data[:256])
                n += 1
    for data in streams.values():
        put("tls_hello", b"\x00" + data)
        put("detect", data[:256])
        n += 1
print(f"{n} seeds")
