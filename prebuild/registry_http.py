"""The registry client's HTTP transport: http.client with keep-alive pools, nothing more.

`requests` costs ~50 ms to import, about a fifth of the runner hook's whole budget, and the
registry client uses a sliver of it. This module does that sliver the way requests does it:
connections kept alive and pooled per origin (thread-safe), one timeout for connect and each
read, HTTP(S)_PROXY / ALL_PROXY / NO_PROXY from the environment (CONNECT tunnels for HTTPS),
certificates verified against REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE, else certifi's bundle,
else the system store; no redirects followed (the caller follows them), no netrc, no
content decoding (it asks for identity). Failures raise the exceptions below, chained to
the socket error that caused them.
"""

from __future__ import annotations

import http.client
import ipaddress
import json
import os
import re
import select
import threading
from base64 import b64encode
from typing import Any
from urllib.parse import unquote, urlencode, urlsplit

POOL_SIZE = 32  # idle connections kept per origin, like requests' pool_maxsize in registry.py


class HTTPError(Exception):
    """Any transport failure (never an HTTP status: those are responses)."""


class ConnectionError(HTTPError):  # noqa: A001  (the name requests uses)
    """The connection could not be made, or broke before a response arrived."""


class SSLError(ConnectionError):
    """The TLS handshake or certificate verification failed."""


class Timeout(HTTPError):
    """Connecting or reading took longer than the timeout."""


class ChunkedEncodingError(HTTPError):
    """The connection broke while the body was being read."""


class Headers(dict[str, str]):
    """Response headers, case-insensitive; repeated ones joined with ", " (as requests does)."""

    def __init__(self, items: list[tuple[str, str]]) -> None:
        super().__init__()
        for name, value in items:
            key = name.lower()
            super().__setitem__(key, f"{self[key]}, {value}" if key in self else value)

    def __getitem__(self, name: str) -> str:
        return super().__getitem__(name.lower())

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and super().__contains__(name.lower())

    def get(self, name: str, default: Any = None) -> Any:  # type: ignore[override]
        return super().get(name.lower(), default)


class Request:
    def __init__(self, method: str, url: str) -> None:
        self.method = method
        self.url = url


class Response:
    def __init__(
        self, method: str, url: str, status: int, headers: Headers, content: bytes
    ) -> None:
        self.request = Request(method, url)
        self.url = url
        self.status_code = status
        self.headers = headers
        self.content = content

    def json(self) -> Any:
        return json.loads(self.content)

    @property
    def links(self) -> dict[str, dict[str, str]]:
        """The Link header parsed like requests.Response.links (keyed by rel, else url)."""
        found = {}
        for link in parse_header_links(self.headers.get("Link", "")):
            found[link.get("rel") or link.get("url", "")] = link
        return found


def parse_header_links(value: str) -> list[dict[str, str]]:
    """requests.utils.parse_header_links."""
    links: list[dict[str, str]] = []
    strip = " '\""
    value = value.strip(strip)
    if not value:
        return links
    for item in re.split(", *<", value):
        url, _, params = item.partition(";")
        link = {"url": url.strip("<> '\"")}
        for param in params.split(";"):
            key, sep, val = param.partition("=")
            if not sep:
                break
            link[key.strip(strip)] = val.strip(strip)
        links.append(link)
    return links


# -- proxies and TLS ---------------------------------------------------------------------------


def _env(name: str) -> str:
    return os.environ.get(name.lower()) or os.environ.get(name.upper()) or ""


def proxy_for(scheme: str, host: str, port: int) -> str | None:
    """The proxy URL for a request (None: direct), from the environment like requests."""
    if _bypassed(host, port, _env("no_proxy")):
        return None
    return _env(f"{scheme}_proxy") or _env("all_proxy") or None


def _bypassed(host: str, port: int, no_proxy: str) -> bool:
    entries = [e.strip() for e in no_proxy.replace(" ", ",").split(",") if e.strip()]
    if "*" in entries:
        return True
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        address = None
    for entry in entries:
        if address is not None:
            try:
                if address in ipaddress.ip_network(entry, strict=False):
                    return True
            except ValueError:
                pass
            continue
        name, _, entry_port = entry.partition(":") if entry.count(":") == 1 else (entry, "", "")
        if entry_port and entry_port != str(port):
            continue
        name = name.lstrip(".").lower()
        if host.lower() == name or host.lower().endswith("." + name):
            return True
    return False


_context_lock = threading.Lock()
_contexts: dict[str | None, Any] = {}


def tls_context() -> Any:
    """One verifying SSLContext per CA bundle (loading a bundle is slow; contexts are shared)."""
    import ssl

    bundle = _env("requests_ca_bundle") or _env("curl_ca_bundle") or None
    if bundle is None:
        try:
            import certifi

            bundle = certifi.where()
        except ImportError:
            bundle = None
    with _context_lock:
        if bundle not in _contexts:
            if bundle and os.path.isdir(bundle):
                context = ssl.create_default_context(capath=bundle)
            else:
                context = ssl.create_default_context(cafile=bundle)
            _contexts[bundle] = context
        return _contexts[bundle]


# -- the session -------------------------------------------------------------------------------


class Session:
    """Pooled keep-alive connections; `request` is safe to call from many threads."""

    def __init__(self, pool_size: int = POOL_SIZE) -> None:
        self.pool_size = pool_size
        self._idle: dict[tuple[str, str, int, str | None], list[http.client.HTTPConnection]] = {}
        self._lock = threading.Lock()

    def request(
        self,
        method: str,
        url: str,
        *,
        headers: dict[str, str] | None = None,
        data: dict[str, str] | None = None,
        timeout: float = 10.0,
    ) -> Response:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in ("http", "https") or not parts.hostname:
            raise ConnectionError(f"unsupported URL {url!r}")
        host, port = parts.hostname, parts.port or (443 if scheme == "https" else 80)
        proxy = proxy_for(scheme, host, port)
        send = dict(headers or {})
        body = None
        if data is not None:
            body = urlencode(data).encode()
            send.setdefault("Content-Type", "application/x-www-form-urlencoded")
        target = parts.path or "/"
        if parts.query:
            target += "?" + parts.query
        if proxy and scheme == "http":
            target = url  # absolute-form through a forward proxy
            send.update(_proxy_auth(proxy))
        key = (scheme, host, port, proxy)
        conn = self._connection(key, timeout)
        try:
            conn.request(method, target, body=body, headers=send)
            response = conn.getresponse()
            try:
                content = response.read()
            except (http.client.IncompleteRead, OSError) as exc:
                raise ChunkedEncodingError("connection broke while reading the body") from exc
        except HTTPError:
            conn.close()
            raise
        except (OSError, http.client.HTTPException) as exc:
            conn.close()
            raise _transport_error(exc) from exc
        except BaseException:
            conn.close()
            raise
        result = Response(method, url, response.status, Headers(response.getheaders()), content)
        if response.will_close:
            conn.close()
        else:
            self._release(key, conn)
        return result

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, {}
        for conns in idle.values():
            for conn in conns:
                conn.close()

    def _connection(
        self, key: tuple[str, str, int, str | None], timeout: float
    ) -> http.client.HTTPConnection:
        with self._lock:
            idle = self._idle.get(key) or []
            while idle:
                conn = idle.pop()
                if _alive(conn):
                    conn.timeout = timeout
                    if conn.sock is not None:
                        conn.sock.settimeout(timeout)
                    return conn
                conn.close()
        scheme, host, port, proxy = key
        if proxy:
            proxy_parts = urlsplit(proxy if "://" in proxy else f"http://{proxy}")
            via_host = proxy_parts.hostname or ""
            via_port = proxy_parts.port or (443 if proxy_parts.scheme == "https" else 80)
            if scheme == "https":
                conn = http.client.HTTPSConnection(
                    via_host, via_port, timeout=timeout, context=tls_context()
                )
                conn.set_tunnel(host, port, headers=_proxy_auth(proxy))
                return conn
            return http.client.HTTPConnection(via_host, via_port, timeout=timeout)
        if scheme == "https":
            return http.client.HTTPSConnection(host, port, timeout=timeout, context=tls_context())
        return http.client.HTTPConnection(host, port, timeout=timeout)

    def _release(
        self, key: tuple[str, str, int, str | None], conn: http.client.HTTPConnection
    ) -> None:
        with self._lock:
            idle = self._idle.setdefault(key, [])
            if len(idle) < self.pool_size:
                idle.append(conn)
                return
        conn.close()


def _alive(conn: http.client.HTTPConnection) -> bool:
    """A pooled connection is reusable if the server has not closed it meanwhile (its socket
    would be readable: EOF) — the check urllib3 makes before reusing one."""
    sock = conn.sock
    if sock is None:
        return False
    try:
        readable, _, _ = select.select([sock], [], [], 0)
    except (OSError, ValueError):
        return False
    return not readable


def _proxy_auth(proxy: str) -> dict[str, str]:
    parts = urlsplit(proxy if "://" in proxy else f"http://{proxy}")
    if parts.username is None:
        return {}
    pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
    return {"Proxy-Authorization": "Basic " + b64encode(pair.encode()).decode("ascii")}


def _transport_error(exc: OSError | http.client.HTTPException) -> HTTPError:
    """Our exception for a low-level failure (the original stays chained as __cause__)."""
    import ssl  # already loaded by http.client

    if isinstance(exc, TimeoutError):
        return Timeout(str(exc) or "timed out")
    if isinstance(exc, ssl.SSLError):
        return SSLError(str(exc))
    return ConnectionError(str(exc) or type(exc).__name__)
