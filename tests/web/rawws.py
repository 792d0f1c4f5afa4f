"""A bare WebSocket reader for the catch-up tests: frames straight off a socket, no JSON, so that
a test can stall a client (see ``taskcast.testing.stalled_client``) and then read megabytes."""

from __future__ import annotations

import socket
import struct
import time

from taskcast.testing import raw_client


class RawReader:
    """Reads the server's (unmasked) frames from a socket that completed its handshake."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = bytearray()
        self.closed: int | None = None

    def _fill(self, need: int, deadline: float) -> None:
        while len(self.buffer) < need:
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                chunk = self.sock.recv(1 << 20)
            except TimeoutError:
                raise AssertionError("no frame in time") from None
            if not chunk:
                raise AssertionError("the server closed the connection")
            self.buffer += chunk

    def frame(self, timeout: float = 10.0) -> str | None:
        """The next text frame; ``None`` once a close frame came (its code in ``closed``)."""
        deadline = time.monotonic() + timeout
        while True:
            self._fill(2, deadline)
            opcode, size = self.buffer[0] & 0x0F, self.buffer[1] & 0x7F
            head = 2
            if size == 126:
                self._fill(4, deadline)
                (size,) = struct.unpack(">H", self.buffer[2:4])
                head = 4
            elif size == 127:
                self._fill(10, deadline)
                (size,) = struct.unpack(">Q", self.buffer[2:10])
                head = 10
            self._fill(head + size, deadline)
            payload = bytes(self.buffer[head : head + size])
            del self.buffer[: head + size]
            if opcode == 0x8:
                self.closed = struct.unpack(">H", payload[:2])[0] if len(payload) >= 2 else 1005
                return None
            if opcode == 0x1:
                return payload.decode()
            # pings and the like: a stalled client answers nothing


def main() -> None:
    """``python rawws.py HOST PORT PATH FRAMES CLIENTS``: CLIENTS sockets (threads) each read
    FRAMES text frames; prints each one's count and how many seconds all took, as JSON."""
    import json
    import sys
    import threading

    host, port, path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    frames, clients = int(sys.argv[4]), int(sys.argv[5])
    counts = [0] * clients
    socks = [raw_client(host, port, path) for _ in range(clients)]
    started = time.monotonic()

    def read(n: int) -> None:
        reader = RawReader(socks[n])
        while counts[n] < frames and reader.frame(timeout=120) is not None:
            counts[n] += 1

    threads = [threading.Thread(target=read, args=(n,)) for n in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    print(json.dumps({"counts": counts, "seconds": round(time.monotonic() - started, 2)}))


if __name__ == "__main__":
    main()
