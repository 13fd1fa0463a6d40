#!/usr/bin/env python3
"""A probe stream that measures forwarding outages: small UDP datagrams at a fixed interval.

  probe.py send DST PORT INTERVAL_MS SECONDS    send datagrams (sequence number, send time)
  probe.py recv BIND PORT OUT SECONDS           log the arrival time of each (monotonic ns)
  probe.py gaps OUT INTERVAL_MS                 report the longest silence and the losses (JSON)

The outage is the longest interval between two consecutive arrivals, less one sending interval
(the gap a perfect link shows).
"""
import json
import socket
import struct
import sys
import time


def send(dst, port, interval_ms, seconds):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    step = interval_ms / 1000.0
    start = time.monotonic()
    n = 0
    while True:
        due = start + n * step
        now = time.monotonic()
        if now - start >= seconds:
            break
        if due > now:
            time.sleep(due - now)
        s.sendto(struct.pack("!QQ", n, time.monotonic_ns()), (dst, port))
        n += 1
    print(n)


def recv(bind, port, out, seconds):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((bind, port))
    s.settimeout(0.5)
    end = time.monotonic() + seconds
    rows = []
    while time.monotonic() < end:
        try:
            d = s.recv(64)
        except socket.timeout:
            continue
        if len(d) >= 16:
            seq, _ = struct.unpack("!QQ", d[:16])
            rows.append((seq, time.monotonic_ns()))
    with open(out, "w") as f:
        for seq, t in rows:
            f.write(f"{seq} {t}\n")


def gaps(out, interval_ms):
    rows = [tuple(map(int, l.split())) for l in open(out) if l.strip()]
    if len(rows) < 2:
        print(json.dumps({"received": len(rows), "outage_ms": None}))
        return
    worst, at = 0, 0
    for (s0, t0), (s1, t1) in zip(rows, rows[1:]):
        if t1 - t0 > worst:
            worst, at = t1 - t0, s0
    seqs = [s for s, _ in rows]
    lost = (max(seqs) - min(seqs) + 1) - len(set(seqs))
    print(json.dumps({
        "received": len(rows),
        "lost": lost,
        "longest_gap_ms": round(worst / 1e6, 1),
        "outage_ms": round(max(0, worst / 1e6 - interval_ms), 1),
        "after_seq": at,
    }))


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "send":
        send(sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5]))
    elif cmd == "recv":
        recv(sys.argv[2], int(sys.argv[3]), sys.argv[4], float(sys.argv[5]))
    elif cmd == "gaps":
        gaps(sys.argv[2], float(sys.argv[3]))
    else:
        sys.exit(__doc__)
