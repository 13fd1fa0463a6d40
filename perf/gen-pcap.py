#!/usr/bin/env python3
"""Writes a pcap of minimum-size (64-byte on the wire, 60 captured) Ethernet/IPv4/TCP frames over
N distinct flows, both directions, with valid IPv4 and TCP checksums. For benchmarks.
Usage: gen-pcap.py OUT.pcap [FLOWS=1024] [PACKETS=8192]"""
import struct
import sys


def csum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def frame(src: bytes, dst: bytes, sport: int, dport: int, seq: int) -> bytes:
    tcp = struct.pack("!HHIIBBHHH", sport, dport, seq, 1, 5 << 4, 0x10, 65535, 0, 0)
    pseudo = src + dst + struct.pack("!BBH", 0, 6, len(tcp))
    tcp = tcp[:16] + struct.pack("!H", csum(pseudo + tcp)) + tcp[18:]
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), 0, 0x4000, 64, 6, 0, src, dst)
    ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
    eth = bytes.fromhex("020000000002" "020000000001" "0800")
    f = eth + ip + tcp
    return f + b"\0" * (60 - len(f))  # pad to 60 bytes (+4 FCS on the wire = 64)


def main() -> None:
    out = sys.argv[1]
    flows = int(sys.argv[2]) if len(sys.argv) > 2 else 1024
    packets = int(sys.argv[3]) if len(sys.argv) > 3 else 8192
    with open(out, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        for i in range(packets):
            n = i % flows
            a = bytes([10, 0, (n >> 8) & 0xFF, n & 0xFF])
            b = bytes([192, 0, 2, 1])
            sport, dport = 1024 + (n % 60000), 443
            fr = frame(a, b, sport, dport, i) if (i // flows) % 2 == 0 else frame(b, a, dport, sport, i)
            f.write(struct.pack("<IIII", i // 1000000, i % 1000000, len(fr), len(fr)))
            f.write(fr)


if __name__ == "__main__":
    main()
