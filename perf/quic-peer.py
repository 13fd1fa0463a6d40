#!/usr/bin/env python3
"""quic-peer.py - a minimal real QUIC client and server (aioquic) for the demo capture.

    quic-peer.py server ADDR PORT CERT KEY     answer each stream with its bytes reversed
    quic-peer.py client ADDR PORT SNI LPORT    from UDP port LPORT: open one stream, send a
                                               line, print the answer

The client speaks QUIC v1 with ALPN "portcullis-demo" and the given SNI, and does not verify
the server's certificate (the lab's is self-signed). Used by perf/record-demo-capture.sh, which
installs aioquic from PyPI into its work directory (Debian 12 does not package it).
"""

import asyncio
import ssl
import sys

from aioquic.asyncio import connect, serve
from aioquic.asyncio.protocol import QuicConnectionProtocol
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.events import StreamDataReceived

ALPN = ["portcullis-demo"]


class Reverser(QuicConnectionProtocol):
    def quic_event_received(self, event):
        if isinstance(event, StreamDataReceived) and event.end_stream:
            self._quic.send_stream_data(event.stream_id, event.data[::-1], end_stream=True)
            self.transmit()


async def server(addr, port, cert, key):
    cfg = QuicConfiguration(is_client=False, alpn_protocols=ALPN)
    cfg.load_cert_chain(cert, key)
    await serve(addr, port, configuration=cfg, create_protocol=Reverser)
    await asyncio.Future()


async def client(addr, port, sni, lport):
    cfg = QuicConfiguration(is_client=True, alpn_protocols=ALPN, server_name=sni)
    cfg.verify_mode = ssl.CERT_NONE
    async with connect(
        addr, port, configuration=cfg, wait_connected=True, local_port=lport
    ) as conn:
        reader, writer = await conn.create_stream()
        writer.write(b"portcullis quic probe\n")
        writer.write_eof()
        answer = await asyncio.wait_for(reader.read(), timeout=5)
        print(answer[::-1].decode().strip())
        conn.close()
        await conn.wait_closed()


def main():
    if len(sys.argv) == 6 and sys.argv[1] == "server":
        asyncio.run(server(sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5]))
    elif len(sys.argv) == 6 and sys.argv[1] == "client":
        asyncio.run(client(sys.argv[2], int(sys.argv[3]), sys.argv[4], int(sys.argv[5])))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
