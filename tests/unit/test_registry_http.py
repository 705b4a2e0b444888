"""The registry client's transport (registry_http): what it must do like requests did.

Retries, auth, redirects and timeouts are covered through RegistryClient in test_registry.py;
these are the transport's own duties: proxies from the environment, TLS verification with a
configured CA bundle, keep-alive reuse, header and Link parsing.
"""

from __future__ import annotations

import shutil
import ssl
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from prebuild import registry_http as transport


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    seen: list[tuple[str, str | None, str | None]] = []

    def do_GET(self) -> None:
        self.seen.append(
            (self.path, self.headers.get("Proxy-Authorization"), self.headers.get("Host"))
        )
        body = b'{"ok": true}'
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Link", '</v2/r/tags/list?n=1&last=a>; rel="next"')
        self.send_header("X-Twice", "a")
        self.send_header("x-twice", "b")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[ThreadingHTTPServer]:
    _Handler.seen = []
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield srv
    srv.shutdown()
    srv.server_close()


def test_response_headers_links_json_and_keep_alive(server) -> None:
    session = transport.Session()
    url = f"http://127.0.0.1:{server.server_address[1]}/v2/"
    first = session.request("GET", url, timeout=5)
    assert first.status_code == 200 and first.json() == {"ok": True}
    assert first.headers["content-length"] == "12" and first.headers.get("X-TWICE") == "a, b"
    assert first.links["next"]["url"] == "/v2/r/tags/list?n=1&last=a"
    assert first.request.method == "GET" and first.url == url
    session.request("GET", url, timeout=5)
    assert sum(len(idle) for idle in session._idle.values()) == 1  # one connection, reused


def test_http_proxy_from_the_environment_with_credentials(server, monkeypatch) -> None:
    monkeypatch.setenv("HTTP_PROXY", f"http://u:p%40ss@127.0.0.1:{server.server_address[1]}")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    resp = transport.Session().request("GET", "http://registry.example:5000/v2/x", timeout=5)
    assert resp.status_code == 200
    assert _Handler.seen == [
        ("http://registry.example:5000/v2/x", "Basic dTpwQHNz", "registry.example:5000")
    ]


@pytest.mark.parametrize(
    ("host", "no_proxy", "bypassed"),
    [
        ("a.internal.example", "internal.example", True),
        ("internal.example", ".internal.example", True),
        ("notinternal.example", "internal.example", False),
        ("10.1.2.3", "10.0.0.0/8", True),
        ("11.1.2.3", "10.0.0.0/8", False),
        ("anything", "*", True),
        ("reg.example", "reg.example:5000", True),
        ("reg.example", "reg.example:6000", False),
    ],
)
def test_no_proxy(monkeypatch, host: str, no_proxy: str, bypassed: bool) -> None:
    monkeypatch.setenv("https_proxy", "http://proxy.example:3128")
    monkeypatch.setenv("no_proxy", no_proxy)
    found = transport.proxy_for("https", host, 5000)
    assert (found is None) is bypassed


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl CLI")
def test_tls_is_verified_against_the_configured_bundle(tmp_path: Path, monkeypatch) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key),
         "-out", str(cert), "-days", "1", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost"],
        check=True, capture_output=True,
    )  # fmt: skip
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    srv.socket = context.wrap_socket(srv.socket, server_side=True)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    url = f"https://localhost:{srv.server_address[1]}/v2/"
    try:
        monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
        monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
        with pytest.raises(transport.SSLError):
            transport.Session().request("GET", url, timeout=5)
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(cert))
        assert transport.Session().request("GET", url, timeout=5).status_code == 200
    finally:
        srv.shutdown()
        srv.server_close()


def test_connection_refused_is_a_connection_error_chained_to_the_cause() -> None:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(transport.ConnectionError) as caught:
        transport.Session().request("GET", f"http://127.0.0.1:{port}/v2/", timeout=2)
    assert isinstance(caught.value.__cause__, ConnectionRefusedError)
