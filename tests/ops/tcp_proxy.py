"""A TCP proxy on loopback between the service and PostgreSQL, to cut and restore in tests.

`cut()` resets every open connection and then accepts new ones without forwarding a byte (a
store that does not answer); `restore()` forwards again. The PostgreSQL server is never touched.
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import threading
import time


class TcpProxy:
    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        self._lock = threading.Lock()
        self._pairs: list[tuple[socket.socket, socket.socket]] = []
        self._held: list[socket.socket] = []
        self._up = True
        self._stalled = False
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                if not self._up:
                    self._held.append(client)  # accepted, never answered
                    continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._pairs.append((client, upstream))
            threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()

    def _pump(self, a: socket.socket, b: socket.socket) -> None:
        sel = selectors.DefaultSelector()
        sel.register(a, selectors.EVENT_READ, b)
        sel.register(b, selectors.EVENT_READ, a)
        try:
            while True:
                for key, _ in sel.select():
                    while self._stalled and not self._closed:
                        time.sleep(0.02)  # connected, acknowledged by the kernel, unanswered
                    data = key.fileobj.recv(65536)  # type: ignore[union-attr]
                    if not data:
                        return
                    key.data.sendall(data)
        except OSError:
            return
        finally:
            sel.close()
            self._drop(a, b)

    @staticmethod
    def _reset(sock: socket.socket) -> None:
        with contextlib.suppress(OSError):
            # SO_LINGER 0: close with RST, as a failing network or server would.
            sock.setsockopt(
                socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00"
            )
        with contextlib.suppress(OSError):
            sock.close()

    def _drop(self, a: socket.socket, b: socket.socket) -> None:
        with self._lock:
            if (a, b) in self._pairs:
                self._pairs.remove((a, b))
        self._reset(a)
        self._reset(b)

    def cut(self) -> None:
        """Reset every open connection; hold new ones unanswered."""
        with self._lock:
            self._up = False
            pairs, self._pairs = self._pairs, []
        for a, b in pairs:
            self._reset(a)
            self._reset(b)

    def stall(self, stalled: bool = True) -> None:
        """Keep every connection open but forward no byte (a frozen server or network path);
        new connections are accepted and forwarded the same way. `stall(False)` resumes."""
        self._stalled = stalled

    def restore(self) -> None:
        """Forward again; connections held while cut are closed (their clients gave up)."""
        with self._lock:
            self._up = True
            held, self._held = self._held, []
        for sock in held:
            self._reset(sock)

    def close(self) -> None:
        self._closed = True
        self.cut()
        self.restore()
        with contextlib.suppress(OSError):
            self._listener.close()
