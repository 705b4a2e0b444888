"""The registry client's wall-clock limit: a slow-loris or trickling registry is a timeout.

A raw loopback socket server plays the hostile registry: it answers each request slowly, one
byte at a time, well inside any per-read timeout, so only a limit on the whole exchange ends it.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest

from prebuild import deadline as deadlines
from prebuild.errors import RegistryError
from prebuild.registry import transport
from prebuild.registry.client import RegistryClient
from prebuild.registry.refs import ImageRef

# mode -> (sent at once, then trickled a byte every 50 ms); None: never answer at all
BEHAVIOURS: dict[str, tuple[bytes, bytes] | None] = {
    "slow-headers": (b"", b"HTTP/1.1 200 OK\r\nX-Filler: " + b"a" * 10_000),
    "trickled-body": (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n",
        b" " * 100_000,
    ),
    "stall": None,
}
# the whole answer at once, but 90 bytes short of its Content-Length, then the connection closes
SHORT_BODY = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789"
ANSWERS = {**BEHAVIOURS, "short-body": (SHORT_BODY, b"")}


@pytest.fixture
def hostile() -> Iterator[tuple[str, dict[str, str]]]:
    """(host:port, {"mode": ...}): every connection gets the current mode's slow answer."""
    server = socket.create_server(("127.0.0.1", 0))
    state = {"mode": "stall"}
    stop = threading.Event()

    def answer(conn: socket.socket) -> None:
        with conn:
            try:
                conn.recv(65536)
                behaviour = ANSWERS[state["mode"]]
                if behaviour is None:
                    stop.wait()
                    return
                at_once, trickled = behaviour
                conn.sendall(at_once)
                for byte in trickled:
                    if stop.wait(0.05):
                        return
                    conn.send(bytes([byte]))
            except OSError:
                return

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                return
            threading.Thread(target=answer, args=(conn,), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    yield f"127.0.0.1:{server.getsockname()[1]}", state
    stop.set()
    server.close()


@pytest.mark.parametrize("mode", sorted(BEHAVIOURS))
def test_slow_registry_costs_at_most_the_deadline(hostile, mode: str) -> None:
    host, state = hostile
    state["mode"] = mode
    client = RegistryClient(timeout=10, deadline=60)  # per-read 10s: each byte beats that
    started = time.monotonic()
    with (
        deadlines.scope(deadlines.Deadline(1.5, "pull")),
        pytest.raises(RegistryError, match=r"timed out .*\(1.5s pull deadline\)") as raised,
    ):
        client.get_manifest(ImageRef.parse(f"{host}/x:y"))
    assert time.monotonic() - started < 3
    assert raised.value.transient


def test_per_attempt_limit_then_retry(hostile) -> None:
    """Each attempt gets at most `timeout` seconds in all; a second one follows in the budget."""
    host, state = hostile
    state["mode"] = "slow-headers"
    client = RegistryClient(timeout=0.5, deadline=60)
    started = time.monotonic()
    with deadlines.scope(deadlines.Deadline(2.0)), pytest.raises(RegistryError) as raised:
        client.head_manifest(ImageRef.parse(f"{host}/x:y"))
    assert "timed out after" in raised.value.message
    assert int(raised.value.message.split("after ")[1].split()[0]) >= 2  # attempts
    assert time.monotonic() - started < 3.5


def test_cut_body_is_retried_then_reported_as_reset(hostile) -> None:
    """A body shorter than its Content-Length is never taken as the answer."""
    host, state = hostile
    state["mode"] = "short-body"
    client = RegistryClient(timeout=2, deadline=1.0)
    client.backoff_base = 0.05
    with pytest.raises(RegistryError, match="connection reset after") as raised:
        client.get_manifest(ImageRef.parse(f"{host}/x:y"))
    assert raised.value.transient
    assert int(raised.value.message.split("after ")[1].split()[0]) >= 2  # attempts


def test_tls_to_a_plain_server_and_a_url_without_scheme_are_told_apart(hostile) -> None:
    """The client turns these into "TLS handshake failed" (with the insecure_registries hint)
    and "not a usable URL"; neither is a retried connection failure."""
    host, state = hostile
    state["mode"] = "short-body"
    http = transport.Transport()
    never = float("inf")
    with pytest.raises(transport.TLSFailed):
        http.request("GET", f"https://{host}/v2/", headers={}, timeout=2, end=never)
    with pytest.raises(transport.BadURL):
        http.request("GET", "realm-without-scheme/token", headers={}, timeout=2, end=never)
