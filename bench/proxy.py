"""A counting, optionally shaped, HTTP proxy in front of the stack's registry (P2, P3).

Reverse proxy: point PREBUILD_REGISTRY at `127.0.0.1:<port>/...` and prebuild's requests for
its images arrive here (plain HTTP on loopback needs no configuration). Forward proxy: with
HTTP_PROXY=http://127.0.0.1:<port>, requests naming the registry itself (the base image, whose
reference is part of the key and so cannot be rewritten) arrive here too, in absolute form.
Both are forwarded to the one upstream registry and counted by method and kind (`HEAD
manifests`, `GET manifests`, `GET blobs`, ...). Request bodies are buffered (pushes of small
images only); response bodies of known length are streamed.

Shaped (`rtt`, `rate`): a runner behind a real network. Every request waits one round trip
(half before it is forwarded, half before the answer starts) and every new client connection
one more (its TCP handshake); response bodies share one link of `rate` bytes per second,
paced chunk by chunk. The engine pulls through it too when an image is named by the proxy's
address (loopback registries need no TLS for dockerd).
"""

from __future__ import annotations

import http.client
import re
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

_REPOSITORY = re.compile(r"^/v2/(.+?)/(?:manifests|blobs|tags|referrers)/")
_KIND = re.compile(r"^/v2/(?:.+/)?(manifests|blobs|tags|referrers)/")
_HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "te",
    "trailer",
    "upgrade",
}


def kind_of(method: str, path: str) -> str:
    match = _KIND.match(path.split("?", 1)[0])
    if match:
        what = match.group(1)
        if what == "blobs" and "/blobs/uploads" in path:
            what = "blob uploads"
        return f"{method} {what}"
    return f"{method} {path.split('?', 1)[0]}" if path.startswith("/v2/") else f"{method} other"


CHUNK = 64 * 1024


class Link:
    """One shared link of `rate` bytes/s: each chunk is sent at the time the link frees up."""

    def __init__(self, rate: float | None) -> None:
        self.rate = rate
        self._free_at = 0.0
        self._lock = threading.Lock()

    def send(self, write, data: bytes) -> None:  # type: ignore[no-untyped-def]
        if self.rate:
            with self._lock:
                start = max(time.monotonic(), self._free_at)
                self._free_at = start + len(data) / self.rate
                done = self._free_at
            delay = done - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        write(data)


def repository_of(path: str) -> str:
    """`ci/app` for /v2/ci/app/manifests/... (tags/list, blobs, uploads alike)."""
    match = _REPOSITORY.match(path.split("?", 1)[0])
    return match.group(1) if match else ""


class CountingProxy:
    """`with CountingProxy(upstream) as proxy:` ... `proxy.address`, `proxy.counts`;
    `CountingProxy(upstream, rtt=0.02, rate=50e6)` shapes the link too."""

    def __init__(
        self, upstream: str, port: int = 0, *, rtt: float = 0.0, rate: float | None = None
    ) -> None:
        self.upstream = upstream
        self.counts: Counter[str] = Counter()
        self.by_repository: Counter[str] = Counter()  # "" for /v2/ itself
        self.rtt = rtt
        self.link = Link(rate)
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, like a real registry

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                return

            def handle_one_request(self) -> None:
                # dockerd tries TLS first even for an insecure registry and falls back to
                # plain HTTP only on "server gave HTTP response to HTTPS client": answer a
                # ClientHello (first byte 0x16) with a plain status line, as a registry does.
                if self.rfile.peek(1)[:1] == b"\x16":
                    self.wfile.write(b"HTTP/1.0 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
                    self.close_connection = True
                    return
                super().handle_one_request()

            def _forward(self) -> None:
                if "://" in self.path:  # absolute form (forward proxy): keep path and query
                    self.path = "/" + self.path.split("://", 1)[1].partition("/")[2]
                with proxy._lock:
                    proxy.counts[kind_of(self.command, self.path)] += 1
                    proxy.by_repository[repository_of(self.path)] += 1
                body = self._read_body()
                if proxy.rtt:  # the handshake of a new connection, then half a round trip
                    first = not getattr(self, "_connected", False)
                    self._connected = True
                    time.sleep(proxy.rtt * (1.5 if first else 0.5))
                headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
                if body is not None:
                    headers["Content-Length"] = str(len(body))
                conn = http.client.HTTPConnection(proxy.upstream, timeout=300)
                try:
                    conn.request(self.command, self.path, body=body, headers=headers)
                    resp = conn.getresponse()
                    length = resp.getheader("Content-Length")
                    streamed = self.command != "HEAD" and length is not None
                    data = b"" if streamed or self.command == "HEAD" else resp.read()
                    if proxy.rtt:
                        time.sleep(proxy.rtt / 2)
                    self.send_response_only(resp.status, resp.reason)
                    for name, value in resp.getheaders():
                        if name.lower() in _HOP_BY_HOP or name.lower() == "content-length":
                            continue
                        self.send_header(name, value)
                    if self.command == "HEAD" or streamed:
                        if length is not None:
                            self.send_header("Content-Length", length)
                    else:
                        self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    if streamed:
                        while chunk := resp.read(CHUNK):
                            proxy.link.send(self.wfile.write, chunk)
                    elif self.command != "HEAD" and data:
                        for start in range(0, len(data), CHUNK):
                            proxy.link.send(self.wfile.write, data[start : start + CHUNK])
                finally:
                    conn.close()

            def _read_body(self) -> bytes | None:
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    chunks: list[bytes] = []
                    while True:
                        size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                        if size == 0:
                            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                                pass  # trailers
                            return b"".join(chunks)
                        chunks.append(self.rfile.read(size))
                        self.rfile.readline()
                length = self.headers.get("Content-Length")
                if length is not None:
                    return self.rfile.read(int(length))
                return None

            do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = _forward  # noqa: N815

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            request_queue_size = 128  # socketserver's 5 drops SYNs under 16 parallel HEADs

        self._server = _bind(Server, port, Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self._server.server_address[1]}"

    def reset(self) -> None:
        with self._lock:
            self.counts.clear()
            self.by_repository.clear()

    def repositories(self) -> Counter[str]:
        with self._lock:
            return Counter(self.by_repository)

    def snapshot(self) -> Counter[str]:
        with self._lock:
            return Counter(self.counts)

    def __enter__(self) -> CountingProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


def _bind(server: type[ThreadingHTTPServer], port: int, handler: type) -> ThreadingHTTPServer:
    """A fixed port (the one the engine trusts) may briefly be some outgoing connection's
    ephemeral port: retry for a few seconds instead of failing the scenario."""
    for attempt in range(40):
        try:
            return server(("127.0.0.1", port), handler)
        except OSError as error:
            if port == 0 or error.errno != 98 or attempt == 39:
                raise
            time.sleep(0.25)
    raise AssertionError("unreachable")
