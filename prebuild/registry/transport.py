"""HTTP for the registry client: urllib3 pools and a wall-clock limit on each request.

Why urllib3 and not a requests.Session: a Session spends about 1 ms of CPU on each request
(preparing it, cookies, hooks, re-reading the proxy environment), as much as everything else
a HEAD costs, and the no-op nightly of 500 images is 500 HEADs (bench P3-scale). What requests
gave us is kept: proxies from HTTP(S)_PROXY/ALL_PROXY/NO_PROXY by requests' own rules (read
once per origin, and only when such a variable is set), the CA bundle from REQUESTS_CA_BUNDLE
or CURL_CA_BUNDLE (certifi's otherwise), and no ~/.netrc.

Why a watchdog: a per-read timeout never trips on a registry sending one header byte every
two seconds (slow-loris) or trickling a body. Every connection records itself for the thread
using it, and the deadline watchdog shuts that socket down when the request's time is up; the
blocked read then ends, and the request fails as a timeout.
"""

from __future__ import annotations

import json
import os
import threading
from http.client import IncompleteRead  # urllib3's own subclasses it
from typing import Any
from urllib.parse import urlencode, urlsplit

import urllib3
from urllib3 import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.exceptions import (
    HTTPError,
    InvalidChunkLength,
    LocationValueError,
    NewConnectionError,
    SSLError,
)
from urllib3.exceptions import TimeoutError as Urllib3Timeout

from prebuild.deadline import WATCH


class TransportError(Exception):
    """A request that got no usable answer."""


class ConnectionFailed(TransportError):
    """Refused, reset, unresolvable, dropped by a proxy: the cause chain says which."""


class BodyCut(ConnectionFailed):
    """The answer's body ended before its announced length."""


class TLSFailed(ConnectionFailed):
    """The TLS handshake failed (often: the registry speaks plain HTTP)."""


class TimedOut(TransportError, TimeoutError):
    """No complete answer in time (a socket timeout or the request's deadline)."""


class BadURL(TransportError):
    """Not an http(s) URL with a host (for example a token realm that is a bare word)."""


class Response:
    """What the client reads of an answer: status, headers (case-insensitive), whole body."""

    __slots__ = ("status_code", "headers", "content", "url", "method")

    def __init__(self, status_code: int, headers: Any, content: bytes, url: str, method: str):
        self.status_code = status_code
        self.headers = headers
        self.content = content
        self.url = url
        self.method = method

    def json(self) -> Any:
        """The body as JSON; ValueError if it is not."""
        return json.loads(self.content)

    @property
    def links(self) -> dict[str, dict[str, str]]:
        """The Link header by `rel` (tag pagination), as requests parses it."""
        header = self.headers.get("Link")
        if not header:
            return {}
        from requests.utils import parse_header_links  # rare: only paged tag lists

        return {link.get("rel") or link["url"]: link for link in parse_header_links(header)}


_local = threading.local()


class _Box:
    """The connection one request is using, readable from the watchdog thread."""

    __slots__ = ("conn",)

    def __init__(self) -> None:
        self.conn: HTTPConnection | None = None


def _claim(conn: HTTPConnection) -> None:
    box = getattr(_local, "box", None)
    if box is not None:
        box.conn = conn


class _WatchedHTTPConnection(HTTPConnection):
    def request(self, *args: Any, **kwargs: Any) -> None:
        _claim(self)
        super().request(*args, **kwargs)


class _WatchedHTTPSConnection(HTTPSConnection):
    def request(self, *args: Any, **kwargs: Any) -> None:
        _claim(self)
        super().request(*args, **kwargs)


class _WatchedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection


class _WatchedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


_POOLS = {"http": _WatchedHTTPPool, "https": _WatchedHTTPSPool}
_PROXY_VARIABLES = frozenset({"http_proxy", "https_proxy", "all_proxy"})


def proxy_for(url: str) -> str | None:
    """The proxy requests would use for `url` (None: direct). requests' NO_PROXY rules (hosts,
    domains, CIDRs, ports) are imported only when a proxy variable is set at all."""
    if not any(name.lower() in _PROXY_VARIABLES for name in os.environ):
        return None
    from requests.utils import get_environ_proxies, select_proxy

    return select_proxy(url, get_environ_proxies(url)) or None


def _tls_options() -> dict[str, Any]:
    """Verify against REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE, else certifi's bundle, like requests."""
    path = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
    if not path:
        import certifi

        path = certifi.where()
    where = "ca_cert_dir" if os.path.isdir(path) else "ca_certs"
    return {"cert_reqs": "CERT_REQUIRED", where: path}


class Transport:
    """Connection pools shared by one client's threads: one manager for direct requests and
    one per proxy, each origin's proxy looked up once."""

    def __init__(self, pool_connections: int = 16, pool_maxsize: int = 32) -> None:
        self._options = {"num_pools": pool_connections, "maxsize": pool_maxsize}
        self._managers: dict[str | None, urllib3.PoolManager] = {}
        self._proxies: dict[tuple[str, str], str | None] = {}
        self._lock = threading.Lock()

    def manager(self, scheme: str, netloc: str) -> urllib3.PoolManager:
        origin = (scheme, netloc)
        if origin not in self._proxies:
            self._proxies[origin] = proxy_for(f"{scheme}://{netloc}/")
        proxy = self._proxies[origin]
        manager = self._managers.get(proxy)
        if manager is None:
            with self._lock:
                manager = self._managers.get(proxy)
                if manager is None:
                    manager = self._managers[proxy] = self._make(proxy)
        return manager

    def _make(self, proxy: str | None) -> urllib3.PoolManager:
        options = {**self._options, **_tls_options()}
        made = urllib3.ProxyManager(proxy, **options) if proxy else urllib3.PoolManager(**options)
        made.pool_classes_by_scheme = _POOLS  # type: ignore[assignment]
        return made

    def request(
        self,
        method: str,
        url: str,
        *,
        headers: dict[str, str],
        data: bytes | dict[str, str] | None = None,
        timeout: float,
        end: float,
    ) -> Response:
        """One exchange, never redirected or retried here, its connect, headers and body over
        by `end` (monotonic clock); past it, TimedOut."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise BadURL(url)
        if isinstance(data, dict):  # a token endpoint's form
            data = urlencode(data).encode()
            headers = {**headers, "Content-Type": "application/x-www-form-urlencoded"}
        manager = self.manager(parts.scheme, parts.netloc)
        box = _Box()
        _local.box = box
        token = WATCH.arm(end, lambda: getattr(box.conn, "sock", None))
        failure: BaseException | None = None
        try:
            answer = manager.urlopen(
                method, url, headers=headers, body=data, redirect=False, retries=False,
                timeout=urllib3.Timeout(connect=timeout, read=timeout), preload_content=True,
            )  # fmt: skip
        except (HTTPError, OSError) as exc:
            failure = exc
        finally:
            fired = WATCH.disarm(token)
            _local.box = None
        if fired:  # EOF mid-headers can parse as a complete, empty answer: never trust it
            raise TimedOut("no complete answer before the deadline") from None
        if failure is not None:
            raise _translate(failure) from failure
        return Response(answer.status, answer.headers, answer.data, url, method)


def _translate(exc: BaseException) -> TransportError:
    if isinstance(exc, SSLError):
        return TLSFailed(str(exc))
    if isinstance(exc, NewConnectionError):  # a ConnectTimeoutError subclass, but refused
        return ConnectionFailed(str(exc))
    if isinstance(exc, Urllib3Timeout | TimeoutError):
        return TimedOut(str(exc))
    if isinstance(exc, LocationValueError):
        return BadURL(str(exc))
    if any(isinstance(e, IncompleteRead | InvalidChunkLength) for e in causes(exc)):
        return BodyCut(str(exc))
    return ConnectionFailed(str(exc))


def causes(exc: BaseException) -> list[BaseException]:
    """`exc` and everything that led to it: causes, contexts, urllib3's `reason`, and
    exceptions carried in args (urllib3 wraps the socket error in its own)."""
    seen: list[BaseException] = []
    todo: list[object] = [exc]
    while todo:
        e = todo.pop()
        if isinstance(e, BaseException) and not any(e is s for s in seen):
            seen.append(e)
            todo += [e.__cause__, e.__context__, getattr(e, "reason", None), *e.args]
    return seen
