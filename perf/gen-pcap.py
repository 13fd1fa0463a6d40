#!/usr/bin/env python3
"""Writes a pcap of minimum-size (64-byte on the wire, 60 captured) Ethernet/IPv4/TCP frames of N
real connections: each opens with SYN, SYN-ACK, ACK, then carries pure ACKs both ways with
consistent sequence numbers (so a stateful firewall passes every frame, also when the file is
replayed in a loop: a repeated SYN is a retransmission). Valid IPv4 and TCP checksums.
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


def frame(src: bytes, dst: bytes, sport: int, dport: int, seq: int, ack: int, flags: int) -> bytes:
    tcp = struct.pack("!HHIIBBHHH", sport, dport, seq, ack, 5 << 4, flags, 65535, 0, 0)
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
    SYN, ACK = 0x02, 0x10
    cisn, sisn = 1000, 5000
    frames = []
    for n in range(flows):
        a = bytes([10, 0, (n >> 8) & 0xFF, n & 0xFF])
        b = bytes([192, 0, 2, 1])
        cp, sp = 1024 + (n % 60000), 443
        frames.append(frame(a, b, cp, sp, cisn, 0, SYN))
        frames.append(frame(b, a, sp, cp, sisn, cisn + 1, SYN | ACK))
        frames.append(frame(a, b, cp, sp, cisn + 1, sisn + 1, ACK))
    n = 0
    while len(frames) < packets:
        f = n % flows
        a = bytes([10, 0, (f >> 8) & 0xFF, f & 0xFF])
        b = bytes([192, 0, 2, 1])
        cp, sp = 1024 + (f % 60000), 443
        if (n // flows) % 2 == 0:
            frames.append(frame(a, b, cp, sp, cisn + 1, sisn + 1, ACK))
        else:
            frames.append(frame(b, a, sp, cp, sisn + 1, cisn + 1, ACK))
        n += 1
    with open(out, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        for i, fr in enumerate(frames):
            f.write(struct.pack("<IIII", i // 1000000, i % 1000000, len(fr), len(fr)))
            f.write(fr)


if __name__ == "__main__":
    main()
