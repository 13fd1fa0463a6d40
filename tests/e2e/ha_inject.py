#!/usr/bin/python3
"""Attacks on the HA link, for test_ha.sh.

  ha_inject.py replay PCAP SRC DST PORT N   resend the first N sync datagrams SRC sent to DST:PORT
                                            (captured with tcpdump), byte for byte
  ha_inject.py forge DST PORT NODE_ID       send a sync datagram in the right format from node
                                            NODE_ID that would install a flow, under a wrong key

Prints how many datagrams were sent.
"""
import os
import socket
import struct
import sys
import time

KIND_SYNC = 2


def replay(pcap, src, dst, port, n):
    from scapy.all import IP, UDP, rdpcap  # noqa: E402 (scapy is slow to import)

    sent = 0
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((src, 0))
    for p in rdpcap(pcap):
        if IP not in p or UDP not in p:
            continue
        if p[IP].src != src or p[IP].dst != dst or p[UDP].dport != port:
            continue
        d = bytes(p[UDP].payload)
        if len(d) > 6 and d[:4] == b"PCHA" and d[5] == KIND_SYNC:
            s.sendto(d, (dst, port))
            sent += 1
            if sent >= n:
                break
    print(sent)


def forge(dst, port, node_id):
    # A sync body with one update: an established TCP flow 10.99.0.2:22 <-> 10.99.0.1:4444, which
    # would let the server open that connection from outside if it were applied.
    lo = bytes([10, 99, 0, 1]) + bytes(12)
    hi = bytes([10, 99, 0, 2]) + bytes(12)
    rec = bytes([1]) + lo + hi + struct.pack("!HH", 4444, 22) + bytes([6, 0b10, 0, 0])
    tcp = bytearray(25)
    tcp[11] = 2  # established
    rec += bytes(tcp) + struct.pack("!II", 1, 0) + bytes(32)
    body = struct.pack("!IQH", 1, 1, 1) + bytes([1]) + rec
    epoch = int(time.time() * 1e6) + 10**9  # newer than the real node's
    hdr = b"PCHA" + bytes([1, KIND_SYNC, 0, 0]) + struct.pack("!QQQ", node_id, epoch, 1)
    d = hdr + body + os.urandom(32)  # no key: the tag cannot be right
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for _ in range(3):
        s.sendto(d, (dst, port))
    print(3)


if __name__ == "__main__":
    if sys.argv[1] == "replay":
        replay(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]), int(sys.argv[6]))
    elif sys.argv[1] == "forge":
        forge(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    else:
        sys.exit(__doc__)
