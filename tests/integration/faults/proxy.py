"""A loopback TCP proxy that misbehaves on purpose, between prebuild (or the engine) and a
registry or S3 server of the real stack.

Each accepted connection is handled by the fault in force when it arrives:
  pass      forward both ways untouched
  delay     wait `delay` seconds, then forward
  stall     read the request, never answer
  trickle   forward the answer one byte every `pace` seconds (slow-loris)
  reset     read the request, then close with a TCP reset
  http:N    answer the request itself with HTTP status N (and Retry-After for 429)
  truncate  forward the answer's headers and half of its body, then close
`times` limits a fault to the first N requests/connections (then: pass), which is how a cell
shows "retried, then succeeded". Request lines are recorded, so a test can wait for the
moment a given request is on the wire instead of sleeping.
"""

from __future__ import annotations

import re
import socket
import struct
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field

_LENGTH = re.compile(rb"\r\ncontent-length:\s*(\d+)", re.I)
_EXPECT = re.compile(rb"\r\nexpect:\s*100-continue\r\n", re.I)


@dataclass
class Fault:
    kind: str = "pass"
    times: int | None = None  # None: every request
    delay: float = 2.0
    pace: float = 0.5
    retry_after: int = 1


@dataclass
class FaultProxy:
    upstream: tuple[str, int]
    fault: Fault = field(default_factory=Fault)
    requests: list[str] = field(default_factory=list)  # "METHOD PATH" as seen, in order
    faulted: int = 0  # requests/connections the fault was applied to

    def __post_init__(self) -> None:
        self._server = socket.create_server(("127.0.0.1", 0))
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._seen = threading.Condition(self._lock)
        self._conns: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True, name="fault-proxy").start()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self._server.getsockname()[1]}"

    def set(self, kind: str, **options: object) -> None:
        with self._lock:
            self.fault = Fault(kind, **options)  # type: ignore[arg-type]
            self.faulted = 0
            self.requests.clear()

    def wait_for(self, pattern: str, timeout: float = 60.0) -> str:
        """The first recorded request line matching `pattern` (regex), waiting up to `timeout`."""
        regex = re.compile(pattern)
        with self._seen:
            found = self._seen.wait_for(
                lambda: next((r for r in self.requests if regex.search(r)), None), timeout
            )
        if not found:
            raise AssertionError(f"no request matching {pattern!r} within {timeout}s")
        return found

    def close(self) -> None:
        self._stop.set()
        self._server.close()
        with self._lock:
            for conn in self._conns:
                _close(conn)

    # -- internals ------------------------------------------------------------------------

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            with self._lock:
                self._conns.append(client)
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _take(self) -> Fault:
        """The fault for the next request: the current one while `times` lasts, then pass."""
        with self._lock:
            fault = self.fault
            if fault.kind == "pass" or (fault.times is not None and self.faulted >= fault.times):
                return Fault("pass")
            self.faulted += 1
            return fault

    def _record(self, head: bytes) -> None:
        line = head.split(b"\r\n", 1)[0].decode(errors="replace")
        method, _, rest = line.partition(" ")
        with self._seen:
            self.requests.append(f"{method} {rest.rsplit(' ', 1)[0]}")
            self._seen.notify_all()

    def _serve(self, client: socket.socket) -> None:
        upstream: socket.socket | None = None
        try:
            while not self._stop.is_set():
                head, body = _read_request(client)
                if head is None:
                    return
                self._record(head)
                fault = self._take()
                if fault.kind == "stall":
                    self._stop.wait()
                    return
                if fault.kind == "reset":
                    client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    return
                if fault.kind.startswith("http:"):
                    client.sendall(_status(int(fault.kind[5:]), fault.retry_after))
                    return
                if fault.kind == "delay" and self._stop.wait(fault.delay):
                    return
                if upstream is None:
                    upstream = socket.create_connection(self.upstream)
                upstream.sendall(head + body)
                if not self._relay(upstream, client, fault, head):
                    return
        except OSError:
            return
        finally:
            _close(client)
            if upstream is not None:
                _close(upstream)

    def _relay(self, upstream: socket.socket, client: socket.socket, fault: Fault,
               request: bytes) -> bool:  # fmt: skip
        """Forward one response; False when the connection must end (faulted or unframed)."""
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = upstream.recv(65536)
            if not chunk:
                return False
            head += chunk
        head, _, rest = head.partition(b"\r\n\r\n")
        head += b"\r\n\r\n"
        match = _LENGTH.search(head)
        bodyless = request.startswith(b"HEAD ") or b" 204 " in head.split(b"\r\n", 1)[0]
        length = 0 if bodyless else int(match.group(1)) if match else None
        if length is None:  # chunked or close-delimited: forward until upstream closes
            self._send(client, head + rest, fault)
            while chunk := upstream.recv(65536):
                self._send(client, chunk, fault)
            return False
        while len(rest) < length:
            chunk = upstream.recv(65536)
            if not chunk:
                return False
            rest += chunk
        if fault.kind == "truncate" and length:
            client.sendall(head + rest[: length // 2])
            return False
        self._send(client, head + rest[:length], fault)
        return fault.kind != "trickle"

    def _send(self, client: socket.socket, data: bytes, fault: Fault) -> None:
        if fault.kind != "trickle":
            client.sendall(data)
            return
        for index in range(len(data)):
            if self._stop.wait(fault.pace):
                return
            client.sendall(data[index : index + 1])


def _read_request(conn: socket.socket) -> tuple[bytes | None, bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return None, b""
        data += chunk
        if data[:1] == b"\x16":  # a TLS hello: answer plain HTTP, as a plain-HTTP registry
            conn.sendall(b"HTTP/1.0 400 Bad Request\r\n\r\n")  # does (clients fall back)
            return None, b""
    head, _, body = data.partition(b"\r\n\r\n")
    head += b"\r\n\r\n"
    if _EXPECT.search(head):  # answer 100-continue here; upstream gets the whole request
        head = _EXPECT.sub(b"\r\n", head)
        conn.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
    match = _LENGTH.search(head)
    length = int(match.group(1)) if match else 0
    if b"transfer-encoding: chunked" in head.lower():
        while not body.endswith(b"0\r\n\r\n"):
            chunk = conn.recv(65536)
            if not chunk:
                break
            body += chunk
        return head, body
    while len(body) < length:
        chunk = conn.recv(65536)
        if not chunk:
            break
        body += chunk
    return head, body


def _status(code: int, retry_after: int) -> bytes:
    body = b'{"errors":[{"code":"UNAVAILABLE","message":"injected fault"}]}'
    extra = f"Retry-After: {retry_after}\r\n" if code == 429 else ""
    return (
        f"HTTP/1.1 {code} Injected\r\nContent-Type: application/json\r\n{extra}"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode() + body


def _close(sock: socket.socket) -> None:
    with suppress(OSError):
        sock.close()


@contextmanager
def fault_proxy(upstream: str) -> Iterator[FaultProxy]:
    host, _, port = upstream.rpartition(":")
    proxy = FaultProxy((host or "127.0.0.1", int(port)))
    try:
        yield proxy
    finally:
        proxy.close()
