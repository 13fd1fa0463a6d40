#!/usr/bin/env python3
"""Builds a large capture of real TLS, QUIC and other traffic for the inspection benchmark: the
Ethernet/IPv4 packets of every classic pcap in ../shared/corpus (and the lab capture), repeated
COPIES times with each copy's addresses moved apart so that every copy is a new set of flows.

The lower address of a packet's pair gets +k on its last 16-bit word and the higher one -k: the
one's-complement sums of the IP header and the TCP/UDP pseudo-header stay the same, so every
checksum stays valid without being recomputed. Timestamps are rewritten 10 us apart.

usage: gen-tls-pcap.py OUT.pcap [COPIES]"""
import os, struct, sys

out_path = sys.argv[1]
copies = int(sys.argv[2]) if len(sys.argv) > 2 else 60
here = os.path.dirname(os.path.abspath(__file__))
sources = [os.path.join(here, "..", "configs", "captures", "lab-mixed.pcap")]
corpus = os.path.join(here, "..", "..", "shared", "corpus", "pcaps")
if os.path.isdir(corpus):
    sources += [os.path.join(corpus, f) for f in sorted(os.listdir(corpus)) if f.endswith(".pcap")]

frames = []
for path in sources:
    data = open(path, "rb").read()
    if len(data) < 24:
        continue
    magic = data[:4]
    if magic == b"\xd4\xc3\xb2\xa1" or magic == b"\x4d\x3c\xb2\xa1":
        endian = "<"
    elif magic == b"\xa1\xb2\xc3\xd4" or magic == b"\xa1\xb2\x3c\x4d":
        endian = ">"
    else:
        continue
    if struct.unpack(endian + "I", data[20:24])[0] != 1:  # Ethernet only
        continue
    off = 24
    while off + 16 <= len(data):
        _, _, incl, _ = struct.unpack(endian + "IIII", data[off:off + 16])
        pkt = data[off + 16:off + 16 + incl]
        off += 16 + incl
        if len(pkt) >= 34 and pkt[12:14] == b"\x08\x00" and pkt[14] >> 4 == 4:
            frames.append(pkt)

with open(out_path, "wb") as out:
    out.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
    t = 1_700_000_000 * 1_000_000
    n = 0
    for k in range(copies):
        for pkt in frames:
            f = bytearray(pkt)
            a = struct.unpack(">H", f[28:30])[0]
            b = struct.unpack(">H", f[32:34])[0]
            lo_first = f[26:30] <= f[30:34]
            da, db = (k, -k) if lo_first else (-k, k)
            if not (0 <= a + da <= 0xFFFF and 0 <= b + db <= 0xFFFF):
                continue
            f[28:30] = struct.pack(">H", a + da)
            f[32:34] = struct.pack(">H", b + db)
            out.write(struct.pack("<IIII", t // 1_000_000, t % 1_000_000, len(f), len(f)))
            out.write(f)
            t += 10
            n += 1
print(f"{out_path}: {n} packets ({len(frames)} per copy, {copies} copies, {len(sources)} sources)")
