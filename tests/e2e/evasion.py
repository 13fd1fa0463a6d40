#!/usr/bin/python3
"""evasion.py - a client that crafts its own TCP segments, to try a TLS hello past inspection.

    evasion.py TECHNIQUE PORT SNI DECOY_SNI OUT_HELLO

Runs in the client namespace. It opens a TCP connection to 10.99.0.2:PORT by hand (scapy, from
10.99.0.50, an address the client's kernel does not own, so the kernel never answers the
server's segments with a RST), then delivers a real OpenSSL ClientHello naming SNI by one of
the techniques below, and writes the hello it meant the server to read to OUT_HELLO:
- plain:    the hello in one segment (the control);
- split:    the hello in two segments, the first ending just after the name (a reader that
            waits for the whole hello lets the name through first);
- badsum:   first a decoy hello naming DECOY_SNI, same length and sequence number, with a
            wrong TCP checksum (the server's kernel discards it), then the real one;
- urgent:   the hello with one extra byte inside its name, sent as urgent data (URG, the
            pointer just past it): Linux takes that byte out of the stream the application
            reads, so the server reads the real name, while a reader that keeps it reads
            another (or a malformed hello);
- overlap:  the hello up to the first four letters of its name, then a hello naming DECOY_SNI
            over the whole range: Linux keeps the bytes it already has and appends the rest of
            the second copy, so it reads the first name's start and the decoy's remainder
            (with evil.example and good.example: evil.example), where a reader that lets the
            later copy win reads good.example.
"""

import random
import ssl
import sys
import time

from scapy.all import IP, TCP, AsyncSniffer, conf, send

CLIENT, SERVER = "10.99.0.50", "10.99.0.2"
conf.verb = 0


def client_hello(sni):
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inc, out, server_hostname=sni)
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return out.read()


def handshake(port):
    sport = random.randint(20000, 60000)
    isn = random.randint(0, 2**31)
    sniffer = AsyncSniffer(iface="cl0", filter=f"tcp and src host {SERVER} and dst port {sport}",
                           count=1, timeout=5)
    sniffer.start()
    time.sleep(0.2)
    send(IP(src=CLIENT, dst=SERVER) / TCP(sport=sport, dport=port, flags="S", seq=isn,
                                          window=64240, options=[("MSS", 1460)]))
    sniffer.join()
    got = sniffer.results
    if not got or got[0][TCP].flags != "SA":
        sys.exit(f"no SYN-ACK from {SERVER}:{port}")
    ack = got[0][TCP].seq + 1
    send(IP(src=CLIENT, dst=SERVER) / TCP(sport=sport, dport=port, flags="A", seq=isn + 1,
                                          ack=ack, window=64240))
    return sport, isn + 1, ack


def segment(sport, port, seq, ack, data, flags="PA", **kw):
    return IP(src=CLIENT, dst=SERVER) / TCP(sport=sport, dport=port, flags=flags, seq=seq,
                                           ack=ack, window=64240, **kw) / data


def main():
    technique, port, sni, decoy_sni, out = sys.argv[1], int(sys.argv[2]), *sys.argv[3:6]
    hello = client_hello(sni)
    sport, seq, ack = handshake(port)
    time.sleep(0.1)
    if technique == "plain":
        send(segment(sport, port, seq, ack, hello))
    elif technique == "split":
        k = hello.index(sni.encode()) + len(sni) + 2
        send(segment(sport, port, seq, ack, hello[:k]))
        time.sleep(0.1)
        send(segment(sport, port, seq + k, ack, hello[k:]))
    elif technique == "badsum":
        decoy = client_hello(decoy_sni)
        if len(decoy) != len(hello):
            sys.exit("the decoy and the real hello must have the same length")
        send(segment(sport, port, seq, ack, decoy, chksum=0xdead))
        time.sleep(0.1)
        send(segment(sport, port, seq, ack, hello))
    elif technique == "overlap":
        # The same name: an identical retransmission (a new hello would differ in its random).
        decoy = hello if decoy_sni == sni else client_hello(decoy_sni)
        if len(decoy) != len(hello):
            sys.exit("the decoy and the real hello must have the same length")
        k = hello.index(sni.encode()) + 4
        send(segment(sport, port, seq, ack, hello[:k]))
        time.sleep(0.1)
        send(segment(sport, port, seq, ack, decoy))
        hello = hello[:k] + decoy[k:]
    elif technique == "urgent":
        i = hello.index(sni.encode()) + 4
        sent = hello[:i] + b"X" + hello[i:]
        send(segment(sport, port, seq, ack, sent, flags="PAU", urgptr=i + 1))
        time.sleep(0.5)
        send(segment(sport, port, seq + len(sent), ack, b"", flags="FA"))
        with open(out, "wb") as f:
            f.write(hello)
        return
    else:
        sys.exit(f"unknown technique {technique}")
    with open(out, "wb") as f:
        f.write(hello)
    time.sleep(0.5)
    # Close politely so the server's reader returns.
    send(segment(sport, port, seq + len(hello), ack, b"", flags="FA"))


if __name__ == "__main__":
    main()
