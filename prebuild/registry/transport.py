"""HTTP for the registry client with a wall-clock limit on each request, body included.

requests' `timeout` bounds each socket operation, not the request: a registry sending one
header byte every two seconds (slow-loris) or trickling a body never trips it. Here every
connection records itself for the thread using it, and the deadline watchdog shuts that
socket down when the request's time is up; the blocked read then ends, and the request fails
as a timeout.
"""

from __future__ import annotations

import threading
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3 import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.connection import HTTPConnection, HTTPSConnection

from prebuild.deadline import WATCH

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


class WatchedAdapter(HTTPAdapter):
    """An HTTPAdapter whose connections (direct or through a proxy) can be watched."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = _POOLS

    def proxy_manager_for(self, proxy: str, **kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **kwargs)
        manager.pool_classes_by_scheme = _POOLS
        return manager


class EnvOnceSession(requests.Session):
    """A Session that reads the proxy and CA-bundle environment once per origin: requests
    re-reads it for every request (a third of a HEAD's CPU), and the environment does not
    change during one command. Same answers as requests gives, per scheme, host and port."""

    def __init__(self) -> None:
        super().__init__()
        self._environment: dict[tuple[Any, ...], dict[str, Any]] = {}

    def merge_environment_settings(self, url, proxies, stream, verify, cert):  # type: ignore[no-untyped-def]
        key = (urlsplit(url)[:2], stream, verify, cert, tuple(sorted((proxies or {}).items())))
        found = self._environment.get(key)
        if found is None:
            found = super().merge_environment_settings(url, proxies, stream, verify, cert)
            self._environment[key] = found
        return {k: (dict(v) if isinstance(v, dict) else v) for k, v in found.items()}


def session(pool_connections: int = 16, pool_maxsize: int = 32) -> requests.Session:
    adapter = WatchedAdapter(pool_connections=pool_connections, pool_maxsize=pool_maxsize)
    result = EnvOnceSession()
    result.mount("https://", adapter)
    result.mount("http://", adapter)
    return result


def request(
    http: requests.Session, method: str, url: str, *, end: float, **kwargs: Any
) -> requests.Response:
    """`http.request(...)`, its whole exchange (connect, headers, body) over by `end`
    (monotonic clock); past it, requests.Timeout. Needs stream=False (the default)."""
    box = _Box()
    _local.box = box
    token = WATCH.arm(end, lambda: getattr(box.conn, "sock", None))
    try:
        response = http.request(method, url, **kwargs)
    except requests.RequestException:
        if WATCH.disarm(token):
            raise requests.Timeout("no complete answer before the deadline") from None
        raise
    finally:
        fired = WATCH.disarm(token)
        _local.box = None
    if fired:  # EOF mid-headers can parse as a complete, empty answer: never trust it
        raise requests.Timeout("no complete answer before the deadline")
    return response
