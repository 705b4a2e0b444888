"""S3 requests bounded end to end by the command's deadline, like registry requests.

botocore's connect/read timeouts bound each socket operation; an S3 endpoint trickling its
answer one byte at a time beats both. This gives the client's connection pools connections
that record themselves for the thread using them (as prebuild.registry.transport does), arms
the deadline watchdog before each attempt and disarms it after: a request still running when
the deadline passes has its socket shut down, fails, and is not retried (sync refuses late
attempts). It reaches into botocore's HTTP session; if that ever moves, S3 calls keep their
per-operation timeouts only.
"""

from __future__ import annotations

import threading
from typing import Any

from botocore.awsrequest import (
    AWSHTTPConnection,
    AWSHTTPConnectionPool,
    AWSHTTPSConnection,
    AWSHTTPSConnectionPool,
)

from prebuild import deadline as deadlines

_local = threading.local()


class _Box:
    __slots__ = ("conn",)

    def __init__(self) -> None:
        self.conn: Any = None


def _claim(conn: Any) -> None:
    box = getattr(_local, "box", None)
    if box is not None:
        box.conn = conn


class _HTTPConnection(AWSHTTPConnection):
    def request(self, *args: Any, **kwargs: Any) -> Any:
        _claim(self)
        return super().request(*args, **kwargs)


class _HTTPSConnection(AWSHTTPSConnection):
    def request(self, *args: Any, **kwargs: Any) -> Any:
        _claim(self)
        return super().request(*args, **kwargs)


class _HTTPPool(AWSHTTPConnectionPool):
    ConnectionCls = _HTTPConnection


class _HTTPSPool(AWSHTTPSConnectionPool):
    ConnectionCls = _HTTPSConnection


def guard(client: Any) -> None:
    """Watch every request `client` sends (see module doc)."""
    session = getattr(getattr(client, "_endpoint", None), "http_session", None)
    pools = getattr(session, "_pool_classes_by_scheme", None)
    if not isinstance(pools, dict):
        return
    pools.update(http=_HTTPPool, https=_HTTPSPool)  # the pool managers share this dict
    client.meta.events.register("before-send.s3", _arm)
    client.meta.events.register("needs-retry.s3", _disarm)


def _arm(**_: Any) -> None:
    _disarm()
    end = deadlines.current().end
    box = _Box()
    _local.box = box
    _local.token = deadlines.WATCH.arm(end, lambda: getattr(box.conn, "sock", None))


def _disarm(**_: Any) -> None:
    token = getattr(_local, "token", None)
    if token is not None:
        deadlines.WATCH.disarm(token)
        _local.token = None
        _local.box = None
