"""RegistryClient against an in-process fake registry: request counts, retries, auth, secrets."""

from __future__ import annotations

import base64
import hashlib
import json
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from prebuild.errors import RegistryError
from prebuild.registry.auth import Credentials, load_credentials
from prebuild.registry.client import RegistryClient
from prebuild.registry.manifests import parse_created
from prebuild.registry.media_types import DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST
from prebuild.registry.refs import ImageRef

USER, PASSWORD = "alice", "s3cret-pa55word"
IDENTITY_TOKEN = "refresh-identity-t0ken"


def digest_of(raw: bytes) -> str:
    return "sha256:" + hashlib.sha256(raw).hexdigest()


def dumps(obj: object) -> bytes:
    return json.dumps(obj, sort_keys=True).encode()


class FakeRegistry:
    """A scriptable /v2 API: canned content, optional Bearer/Basic auth, injected faults."""

    def __init__(self) -> None:
        self.manifests: dict[tuple[str, str], tuple[str, bytes]] = {}
        self.blobs: dict[str, bytes] = {}
        self.tags: dict[str, list[str]] = {}
        # path prefix -> queue of (status, headers); status 0 hangs, -1 drops the connection
        self.faults: dict[str, list[tuple[int, dict[str, str]]]] = {}
        self.auth: str | None = None  # None | "bearer" | "basic"
        self.denied_repos: set[str] = set()  # token granted, registry still refuses
        self.delete_status = 202
        self.omit_digest_header = False
        self.link_host: str | None = None  # absolute tag-page Links point here if set
        self.issued: list[str] = []
        self.log: list[tuple[str, str, dict[str, str]]] = []
        self.release = threading.Event()  # hanging handlers block on this until teardown
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.host = f"127.0.0.1:{self.port}"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    def ref(self, text: str) -> ImageRef:
        return ImageRef.parse(f"{self.host}/{text}")

    def put_manifest(self, repo: str, tag: str | None, body: dict, media_type: str) -> str:
        raw = dumps({"mediaType": media_type, **body})
        digest = digest_of(raw)
        self.manifests[(repo, digest)] = (media_type, raw)
        if tag:
            self.manifests[(repo, tag)] = (media_type, raw)
        return digest

    def put_blob(self, raw: bytes) -> str:
        self.blobs[digest_of(raw)] = raw
        return digest_of(raw)

    def fail(self, path_prefix: str, *statuses: int, **headers: str) -> None:
        hdrs = {k.replace("_", "-"): v for k, v in headers.items()}
        self.faults.setdefault(path_prefix, []).extend((s, hdrs) for s in statuses)

    def paths(self) -> list[str]:
        return [f"{m} {urlsplit(u).path}" for m, u, _ in self.log]

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_HEAD(self) -> None:
                self._route(head=True)

            def do_GET(self) -> None:
                self._route()

            def do_DELETE(self) -> None:
                self._route()

            def do_POST(self) -> None:
                self._route()

            def _send(self, status: int, body: bytes = b"", headers: dict | None = None) -> None:
                self.send_response(status)
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            def _error(self, status: int, code: str, headers: dict | None = None) -> None:
                body = dumps({"errors": [{"code": code, "message": code.lower()}]})
                self._send(status, body, {"Content-Type": "application/json", **(headers or {})})

            def _route(self, head: bool = False) -> None:
                url = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                form = parse_qs(self.rfile.read(length).decode()) if length else {}
                with fake.lock:
                    fake.log.append((self.command, self.path, dict(self.headers)))
                    fault = next(
                        (q.pop(0) for p, q in fake.faults.items() if url.path.startswith(p) and q),
                        None,
                    )
                if fault and fault[0] > 0:
                    return self._send(fault[0], b"", fault[1])
                if fault:
                    if fault[0] == 0:
                        fake.release.wait(10)
                    self.close_connection = True
                    return self.connection.shutdown(socket.SHUT_RDWR)
                if url.path == "/token":
                    return self._token(url, form)
                if url.path.startswith("/storage/"):
                    raw = fake.blobs.get(url.path.rsplit("/", 1)[1])
                    return self._send(200, raw) if raw else self._error(404, "BLOB_UNKNOWN")
                parts = url.path.split("/")
                if parts[:2] != ["", "v2"] or len(parts) < 5:
                    return self._error(404, "NOT_FOUND")
                name, kind, ref = "/".join(parts[2:-2]), parts[-2], parts[-1]
                if not self._authorized(name):
                    return None
                if kind == "manifests":
                    return self._manifest(name, ref)
                if kind == "blobs":
                    if ref not in fake.blobs:
                        return self._error(404, "BLOB_UNKNOWN")
                    # Like S3-backed registries: off to another origin with a signed URL.
                    to = f"http://localhost:{fake.port}/storage/{ref}?X-Amz-Signature=sig"
                    return self._send(307, b"", {"Location": to})
                if kind == "tags":
                    return self._tags(name, parse_qs(url.query))
                return self._error(404, "NOT_FOUND")

            def _authorized(self, name: str) -> bool:
                given = self.headers.get("Authorization", "")
                action = "delete" if self.command == "DELETE" else "pull"
                scope = f"repository:{name}:{action}"
                if fake.auth == "basic":
                    expected = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
                    if given == f"Basic {expected}":
                        return True
                    self._error(401, "UNAUTHORIZED", {"WWW-Authenticate": 'Basic realm="fake"'})
                    return False
                if fake.auth == "bearer":
                    token = given.removeprefix("Bearer ")
                    granted = token in fake.issued and f"{token}|{scope}" in fake.issued
                    if granted and name not in fake.denied_repos:
                        return True
                    realm = f"http://{fake.host}/token"
                    challenge = f'Bearer realm="{realm}",service="fake",scope="{scope}"'
                    self._error(401, "UNAUTHORIZED", {"WWW-Authenticate": challenge})
                    return False
                return True

            def _token(self, url, form) -> None:
                query = parse_qs(url.query)
                if self.command == "POST":
                    ok = form.get("refresh_token") == [IDENTITY_TOKEN]
                    scopes = " ".join(form.get("scope", [])).split()
                else:
                    basic = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
                    ok = self.headers.get("Authorization") == f"Basic {basic}"
                    scopes = query.get("scope", [])
                if not ok:
                    return self._error(401, "UNAUTHORIZED")
                with fake.lock:
                    token = f"issued-token-{len(fake.issued)}"
                    fake.issued += [token, *(f"{token}|{s}" for s in scopes)]
                self._send(200, dumps({"token": token, "expires_in": 300}))

            def _manifest(self, name: str, ref: str) -> None:
                if self.command == "DELETE":
                    if fake.delete_status == 202:
                        found = fake.manifests.pop((name, ref), None)
                        return self._send(202) if found else self._error(404, "MANIFEST_UNKNOWN")
                    return self._error(fake.delete_status, "UNSUPPORTED")
                found = fake.manifests.get((name, ref))
                if found is None:
                    return self._error(404, "MANIFEST_UNKNOWN")
                media_type, raw = found
                headers = {"Content-Type": media_type}
                if not fake.omit_digest_header:
                    headers["Docker-Content-Digest"] = digest_of(raw)
                self._send(200, raw, headers)

            def _tags(self, name: str, query: dict[str, list[str]]) -> None:
                if name not in fake.tags:
                    return self._error(404, "NAME_UNKNOWN")
                tags = sorted(fake.tags[name])
                n = int(query.get("n", ["2"])[0])
                last = query.get("last", [""])[0]
                page = [t for t in tags if t > last][:n]
                headers = {"Content-Type": "application/json"}
                if page and page[-1] != tags[-1]:
                    # Relative and absolute Link targets both occur in the wild.
                    nxt = f"/v2/{name}/tags/list?n={n}&last={page[-1]}"
                    if len(page) % 2 or fake.link_host:
                        nxt = f"http://{fake.link_host or fake.host}{nxt}"
                    headers["Link"] = f'<{nxt}>; rel="next"'
                self._send(200, dumps({"name": name, "tags": page}), headers)

        return Handler


@pytest.fixture(autouse=True)
def docker_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Never read the real ~/.docker: every test gets its own (empty) config dir."""
    directory = tmp_path / "docker-config"
    directory.mkdir()
    monkeypatch.setenv("DOCKER_CONFIG", str(directory))
    return directory


@pytest.fixture
def requests_sent() -> list[tuple[str, str]]:
    return []


@pytest.fixture
def client(requests_sent: list[tuple[str, str]]) -> RegistryClient:
    c = RegistryClient(deadline=5.0, on_request=lambda m, u: requests_sent.append((m, u)))
    c.backoff_base = 0.01
    return c


def write_config(directory: Path, config: dict) -> None:
    (directory / "config.json").write_text(json.dumps(config))


def basic_auths(host: str) -> dict:
    encoded = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    return {"auths": {host: {"auth": encoded}}}


def image(fake: FakeRegistry, repo: str, tag: str, created: str | None = None) -> str:
    config = fake.put_blob(dumps({"created": "2024-05-06T07:08:09.123456789Z"}))
    body: dict = {"schemaVersion": 2, "config": {"digest": config}, "layers": []}
    if created:
        body["annotations"] = {"org.opencontainers.image.created": created}
    return fake.put_manifest(repo, tag, body, OCI_MANIFEST)


def multiarch(fake: FakeRegistry, repo: str, tag: str) -> tuple[str, dict[str, str]]:
    """An index of three platforms plus a buildx attestation manifest (unknown/unknown)."""
    digests, entries = {}, []
    for name, arch, variant in [
        ("linux/amd64", "amd64", None),
        ("linux/arm64", "arm64", "v8"),
        ("linux/arm/v7", "arm", "v7"),
    ]:
        p = {"os": "linux", "architecture": arch, **({"variant": variant} if variant else {})}
        digests[name] = fake.put_manifest(repo, None, {"config": {}, "for": p}, OCI_MANIFEST)
        entries.append({"mediaType": OCI_MANIFEST, "digest": digests[name], "platform": p})
    attestation = {"os": "unknown", "architecture": "unknown"}
    entries.append({"digest": "sha256:" + "0" * 64, "platform": attestation})
    index = fake.put_manifest(repo, tag, {"schemaVersion": 2, "manifests": entries}, OCI_INDEX)
    return index, digests


# -- one request per question ----------------------------------------------------------------


def test_head_manifest_is_one_request(fake, client, requests_sent):
    digest = image(fake, "ci/app", "key-1")
    head = client.head_manifest(fake.ref("ci/app:key-1"))
    assert head is not None
    assert (head.digest, head.media_type) == (digest, OCI_MANIFEST)
    assert head.size == len(fake.manifests[("ci/app", "key-1")][1])
    assert requests_sent == [("HEAD", f"http://{fake.host}/v2/ci/app/manifests/key-1")]
    assert client.head_manifest(fake.ref("ci/app:missing")) is None
    assert len(requests_sent) == len(fake.log) == 2


def test_head_without_digest_header_falls_back_to_get(fake, client):
    digest = image(fake, "ci/app", "key-1")
    fake.omit_digest_header = True
    assert client.head_manifest(fake.ref("ci/app:key-1")).digest == digest
    assert fake.paths() == ["HEAD /v2/ci/app/manifests/key-1", "GET /v2/ci/app/manifests/key-1"]


def test_get_manifest_verifies_digest(fake, client):
    digest = fake.put_manifest("ci/app", "t", {"schemaVersion": 2}, DOCKER_MANIFEST)
    manifest = client.get_manifest(fake.ref("ci/app:t"))
    assert manifest.digest == digest
    assert manifest.media_type == DOCKER_MANIFEST
    assert manifest.json["schemaVersion"] == 2
    assert client.get_manifest(fake.ref(f"ci/app@{digest}")).raw == manifest.raw
    accept = fake.log[0][2]["Accept"]
    assert OCI_INDEX in accept and DOCKER_MANIFEST in accept
    fake.manifests[("ci/app", digest)] = (DOCKER_MANIFEST, b'{"tampered": true}')
    with pytest.raises(RegistryError, match="does not match"):
        client.get_manifest(fake.ref(f"ci/app:t@{digest}"))
    assert client.get_manifest(fake.ref("ci/app:nope")) is None


def test_resolve_picks_platform_from_index_in_one_get(fake, client, requests_sent):
    index, digests = multiarch(fake, "seed/busybox", "stable")
    for platform in ("linux/amd64", "linux/arm64", "linux/arm64/v8", "linux/arm/v7"):
        requests_sent.clear()
        resolved = client.resolve(fake.ref("seed/busybox:stable"), platform)
        assert len(requests_sent) == 1
        assert resolved.digest == index and resolved.is_index
        expected = digests["linux/arm64" if platform.startswith("linux/arm64") else platform]
        assert resolved.platform_digest == expected
        assert resolved.pinned.digest == index
    with pytest.raises(RegistryError) as info:
        client.resolve(fake.ref("seed/busybox:stable"), "linux/s390x")
    assert "linux/s390x" in str(info.value)
    assert "linux/amd64, linux/arm64, linux/arm/v7" in str(info.value)
    assert "unknown" not in str(info.value)


def test_resolve_single_manifest_and_missing(fake, client):
    digest = image(fake, "ci/app", "one")
    resolved = client.resolve(fake.ref("ci/app:one"), "linux/amd64")
    assert resolved.digest == resolved.platform_digest == digest
    assert not resolved.is_index
    with pytest.raises(RegistryError, match="not found"):
        client.resolve(fake.ref("ci/app:none"), "linux/amd64")


def test_list_tags_follows_link_pagination(fake, client):
    fake.tags["ci/app"] = ["k1", "k2", "k3", "k4", "k5", "latest"]
    assert client.list_tags(fake.ref("ci/app").repository_ref) == sorted(fake.tags["ci/app"])
    assert len(fake.log) == 3
    assert client.list_tags(fake.ref("ci/nothing")) == []


def test_delete_manifest(fake, client):
    digest = image(fake, "ci/app", "k1")
    assert client.delete_manifest(fake.ref("ci/app"), digest) is True
    assert client.delete_manifest(fake.ref("ci/app"), digest) is True  # already gone
    fake.delete_status = 405
    assert client.delete_manifest(fake.ref("ci/app"), digest) is False
    fake.delete_status = 400  # distribution with deletes disabled: 400/405 + UNSUPPORTED
    assert client.delete_manifest(fake.ref("ci/app"), digest) is False
    fake.delete_status = 202
    fake.fail("/v2/ci/app/manifests/", 409)
    with pytest.raises(RegistryError, match="409") as info:
        client.delete_manifest(fake.ref("ci/app"), digest)
    assert not info.value.transient
    with pytest.raises(ValueError):
        client.delete_manifest(fake.ref("ci/app"), "k1")


def test_blob_redirect_drops_credentials_and_signed_query(
    fake, client, requests_sent, docker_config
):
    write_config(docker_config, basic_auths(fake.host))
    fake.auth = "bearer"
    # the image config (where `created` lives when there is no annotation) is a blob
    digest = fake.put_blob(b'{"created": "2020-01-01T00:00:00Z"}')
    body = {"schemaVersion": 2, "config": {"digest": digest}, "layers": []}
    fake.put_manifest("ci/app", "plain", body, OCI_MANIFEST)
    created = client.image_created(fake.ref("ci/app:plain"))
    assert created == datetime(2020, 1, 1, tzinfo=UTC)
    storage = [h for m, u, h in fake.log if u.startswith("/storage/")]
    assert len(storage) == 1 and "Authorization" not in storage[0]
    assert requests_sent[-1] == ("GET", f"http://localhost:{fake.port}/storage/{digest}")
    assert client.get_blob(fake.ref("ci/app"), digest) == b'{"created": "2020-01-01T00:00:00Z"}'


def test_image_created(fake, client):
    image(fake, "ci/app", "annotated", created="2025-01-02T03:04:05Z")
    image(fake, "ci/app", "plain")
    created = client.image_created(fake.ref("ci/app:annotated"))
    assert created == datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
    fake.log.clear()
    created = client.image_created(fake.ref("ci/app:plain"))
    assert created == datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)
    assert len(fake.log) == 3  # manifest, blob redirect, storage
    assert client.image_created(fake.ref("ci/app:missing")) is None


def test_image_created_of_index_uses_platform_image(fake, client):
    config = fake.put_blob(dumps({"created": "2023-03-03T03:03:03Z"}))
    p = {"os": "linux", "architecture": "arm64"}
    child = fake.put_manifest("ci/app", None, {"config": {"digest": config}}, OCI_MANIFEST)
    entries = [{"digest": child, "platform": p}]
    fake.put_manifest("ci/app", "multi", {"manifests": entries}, OCI_INDEX)
    assert client.image_created(fake.ref("ci/app:multi"), "linux/arm64").year == 2023
    assert client.image_created(fake.ref("ci/app:multi")).year == 2023


# -- transient faults and the deadline ------------------------------------------------------


def test_retries_5xx_then_succeeds(fake, client, requests_sent):
    image(fake, "ci/app", "k1")
    fake.fail("/v2/ci/app/manifests/", 503, -1, 502)
    assert client.head_manifest(fake.ref("ci/app:k1")) is not None
    assert len(requests_sent) == 4


def test_429_honours_retry_after(fake, client):
    image(fake, "ci/app", "k1")
    fake.fail("/v2/ci/app/manifests/", 429, Retry_After="0")
    assert client.head_manifest(fake.ref("ci/app:k1")) is not None
    assert len(fake.log) == 2


def test_retry_after_beyond_deadline_gives_up_at_once(fake, client):
    fake.fail("/v2/ci/app/manifests/", 429, Retry_After="3600")
    started = time.monotonic()
    with pytest.raises(RegistryError, match="HTTP 429 after 1 attempts") as info:
        client.head_manifest(fake.ref("ci/app:k1"))
    assert info.value.transient
    assert time.monotonic() - started < 2


def test_persistent_5xx_gives_up_within_deadline(fake):
    client = RegistryClient(deadline=0.5)
    client.backoff_base = 0.02
    fake.fail("/v2/ci/app/manifests/", *[503] * 1000)
    started = time.monotonic()
    with pytest.raises(RegistryError) as info:
        client.head_manifest(fake.ref("ci/app:k1"))
    elapsed = time.monotonic() - started
    assert info.value.transient
    assert elapsed < 2.5
    assert f"{fake.host}: HTTP 503 after" in str(info.value)
    assert len(fake.log) >= 2


def test_connection_refused_is_transient_and_bounded():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    client = RegistryClient(deadline=0.5)
    client.backoff_base = 0.02
    started = time.monotonic()
    with pytest.raises(RegistryError) as info:
        client.head_manifest(ImageRef.parse(f"127.0.0.1:{port}/ci/app:k1"))
    assert info.value.transient
    assert f"127.0.0.1:{port}: connection refused after" in str(info.value)
    assert time.monotonic() - started < 2.5


def test_read_timeout_is_retried(fake, client):
    image(fake, "ci/app", "k1")
    client.timeout = 0.2
    fake.fail("/v2/ci/app/manifests/", 0, -1)
    assert client.head_manifest(fake.ref("ci/app:k1")) is not None
    assert len(fake.log) == 3


def test_hanging_registry_is_bounded_by_deadline(fake):
    client = RegistryClient(timeout=0.2, deadline=0.6)
    fake.fail("/v2/ci/app/manifests/", *[0] * 100)
    started = time.monotonic()
    with pytest.raises(RegistryError, match="timed out after") as info:
        client.head_manifest(fake.ref("ci/app:k1"))
    assert info.value.transient
    assert time.monotonic() - started < 2.5


# -- auth ------------------------------------------------------------------------------------


def test_anonymous_bearer_token_flow_and_cache(fake, client, requests_sent, docker_config):
    write_config(docker_config, basic_auths(fake.host))
    fake.auth = "bearer"
    image(fake, "ci/app", "k1")
    image(fake, "ci/other", "k1")
    assert client.head_manifest(fake.ref("ci/app:k1")) is not None
    assert fake.paths() == [
        "HEAD /v2/ci/app/manifests/k1",
        "GET /token",
        "HEAD /v2/ci/app/manifests/k1",
    ]
    token_request = fake.log[1]
    assert "scope=repository%3Aci%2Fapp%3Apull" in token_request[1]
    assert token_request[2]["Authorization"].startswith("Basic ")
    fake.log.clear()
    assert client.head_manifest(fake.ref("ci/app:k2")) is None  # cached token: 1 request
    assert fake.paths() == ["HEAD /v2/ci/app/manifests/k2"]
    fake.log.clear()
    assert client.head_manifest(fake.ref("ci/other:k1")) is not None  # known realm: 2
    assert fake.paths() == ["GET /token", "HEAD /v2/ci/other/manifests/k1"]
    assert len(requests_sent) == 6


def test_bearer_without_credentials_is_refused_with_hint(fake, client):
    fake.auth = "bearer"
    with pytest.raises(RegistryError) as info:
        client.head_manifest(fake.ref("ci/app:k1"))
    assert not info.value.transient
    assert info.value.hint == f"docker login {fake.host}"
    assert "anonymous" in str(info.value)


def test_basic_auth(fake, client, docker_config):
    write_config(docker_config, basic_auths(fake.host))
    fake.auth = "basic"
    image(fake, "ci/app", "k1")
    assert client.head_manifest(fake.ref("ci/app:k1")) is not None
    fake.log.clear()
    assert client.head_manifest(fake.ref("ci/app:k1")) is not None
    assert len(fake.log) == 1  # Basic is sent up front once the host asked for it


def test_identity_token_uses_oauth_refresh_grant(fake, client, docker_config):
    write_config(docker_config, {"auths": {fake.host: {"identitytoken": IDENTITY_TOKEN}}})
    fake.auth = "bearer"
    image(fake, "ci/app", "k1")
    assert client.head_manifest(fake.ref("ci/app:k1")) is not None
    assert "POST /token" in fake.paths()


def _helper(tmp_path: Path, monkeypatch, secret: str, fail: bool = False) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "helper-calls"
    script = bin_dir / "docker-credential-test"
    reply = json.dumps({"ServerURL": "x", "Username": USER, "Secret": secret})
    script.write_text(
        "#!/bin/sh\n"
        f'[ "$1" = get ] || exit 1\nread server\necho "$server" >> {calls}\n'
        + (f"echo 'oops {secret}'\nexit 1\n" if fail else f"echo '{reply}'\n")
    )
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{Path('/usr/bin')}:{Path('/bin')}")
    return calls


@pytest.mark.parametrize("key", ["credHelpers", "credsStore"])
def test_credential_helper(fake, client, docker_config, tmp_path, monkeypatch, key):
    calls = _helper(tmp_path, monkeypatch, PASSWORD)
    value = {fake.host: "test"} if key == "credHelpers" else "test"
    write_config(docker_config, {key: value})
    fake.auth = "bearer"
    image(fake, "ci/app", "k1")
    with ThreadPoolExecutor(8) as pool:
        heads = list(pool.map(client.head_manifest, [fake.ref("ci/app:k1")] * 16))
    assert all(h is not None for h in heads)
    assert calls.read_text().split() == [fake.host]  # asked once, server URL on stdin


def test_missing_helper_is_reported(fake, client, docker_config):
    write_config(docker_config, {"credHelpers": {fake.host: "absent"}})
    fake.auth = "bearer"
    with pytest.raises(RegistryError, match="docker-credential-absent is not installed"):
        client.head_manifest(fake.ref("ci/app:k1"))


def test_secrets_never_appear_in_errors(fake, client, docker_config, tmp_path, monkeypatch):
    def assert_clean(err: RegistryError, *secrets: str) -> None:
        texts = (str(err), repr(err), err.message, err.hint or "", repr(err.args))
        for secret in secrets:
            assert not any(secret in t for t in texts), (secret, texts)

    basic = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    # 1. Token granted, registry still says no.
    write_config(docker_config, basic_auths(fake.host))
    fake.auth = "bearer"
    fake.denied_repos.add("ci/private")
    with pytest.raises(RegistryError) as info:
        client.head_manifest(fake.ref("ci/private:k1"))
    assert fake.issued
    assert_clean(info.value, PASSWORD, basic, *fake.issued)
    assert info.value.hint == f"docker login {fake.host}"
    # 2. Wrong password at the token endpoint.
    wrong = "wr0ng-" + PASSWORD
    encoded = base64.b64encode(f"{USER}:{wrong}".encode()).decode()
    write_config(docker_config, {"auths": {fake.host: {"auth": encoded}}})
    with pytest.raises(RegistryError) as info:
        RegistryClient().head_manifest(fake.ref("ci/app:k1"))
    assert_clean(info.value, wrong, encoded)
    # 3. A helper that prints the secret while failing.
    _helper(tmp_path, monkeypatch, PASSWORD, fail=True)
    write_config(docker_config, {"credsStore": "test"})
    with pytest.raises(RegistryError) as info:
        RegistryClient().head_manifest(fake.ref("ci/app:k1"))
    assert_clean(info.value, PASSWORD)
    # 4. Anything that would quote a known secret (e.g. a registry echoing a header back).
    write_config(docker_config, basic_auths(fake.host))
    fake.auth = "basic"
    client = RegistryClient()
    client.head_manifest(fake.ref("ci/app:k1"))
    err = client._error(fake.ref("ci/app"), f"echoed {basic} and {PASSWORD}")
    assert_clean(err, PASSWORD, basic)
    assert "***" in str(err)
    creds = Credentials(USER, PASSWORD, IDENTITY_TOKEN)
    assert PASSWORD not in repr(creds) and IDENTITY_TOKEN not in repr(creds)


def test_scheme_selection():
    client = RegistryClient(insecure=["myreg:5000", "http://plain.example"])
    assert client._url(ImageRef.parse("myreg:5000/a"), "x").startswith("http://myreg:5000/")
    assert client._url(ImageRef.parse("plain.example/a"), "x").startswith("http://")
    assert client._url(ImageRef.parse("localhost/a"), "x").startswith("http://localhost/")
    assert client._url(ImageRef.parse("[::1]:5000/a"), "x").startswith("http://[::1]:5000/")
    assert client._url(ImageRef.parse("ghcr.io/o/a"), "x").startswith("https://ghcr.io/")
    hub = client._url(ImageRef.parse("busybox"), "tags/list")
    assert hub == "https://registry-1.docker.io/v2/library/busybox/tags/list"


def test_docker_hub_credentials_use_the_index_url_key(docker_config):
    write_config(docker_config, basic_auths("https://index.docker.io/v1/"))
    creds = load_credentials(ImageRef.parse("busybox").registry, docker_config)
    assert creds is not None and (creds.username, creds.password) == (USER, PASSWORD)
    assert load_credentials("ghcr.io", docker_config) is None
    assert load_credentials("ghcr.io", docker_config / "missing") is None
    (docker_config / "config.json").write_text("{ not json")
    with pytest.raises(RegistryError, match="cannot read docker config"):
        load_credentials("ghcr.io", docker_config)


def test_tag_links_to_another_host_are_refused(fake, client):
    fake.tags["ci/app"] = ["a", "b", "c"]
    fake.link_host = "evil.example"
    with pytest.raises(RegistryError, match="another host"):
        client.list_tags(fake.ref("ci/app"))
    assert len(fake.log) == 1


def test_parse_created():
    assert parse_created("2024-01-02T03:04:05.123456789+02:00").hour == 3
    assert parse_created("2024-01-02T03:04:05").tzinfo is UTC
    assert parse_created("1970-01-01T00:00:00Z") is None  # SOURCE_DATE_EPOCH=0
    assert parse_created("0001-01-01T00:00:00Z") is None  # docker's zero time
    assert parse_created("yesterday") is None
    assert parse_created(None) is None


def test_proxy_environment_read_once_per_origin(monkeypatch: pytest.MonkeyPatch) -> None:
    """HTTP(S)_PROXY / NO_PROXY are read once per scheme, host and port, with requests' own
    answers (NO_PROXY honoured), and not at all when no proxy variable is set."""
    from prebuild.registry import transport

    calls: list[str] = []
    real = transport.proxy_for

    def counting(url: str) -> str | None:
        calls.append(url)
        return real(url)

    monkeypatch.setattr(transport, "proxy_for", counting)
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.example:3128")
    monkeypatch.setenv("NO_PROXY", "direct.example")
    pools = transport.Transport()
    via = [pools.manager("http", "reg.example") for _ in range(3)]
    direct = pools.manager("http", "direct.example")
    assert calls == ["http://reg.example/", "http://direct.example/"]
    assert via[0] is via[2] and getattr(via[0], "proxy", None) is not None
    assert via[0].proxy.host == "proxy.example" and via[0].proxy.port == 3128
    assert getattr(direct, "proxy", None) is None
    for name in ("HTTP_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    assert real("http://reg.example/") is None


def test_registry_behind_http_proxy_is_asked_through_it(
    fake: FakeRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With HTTP_PROXY set, the request goes to the proxy with the registry's absolute URL
    (corporate runners, the bench's counting proxy); NO_PROXY sends a host direct."""
    digest = image(fake, "ci/app", "k1")
    monkeypatch.setenv("HTTP_PROXY", f"http://{fake.host}")  # the fake serves proxied URLs too
    monkeypatch.setenv("NO_PROXY", "")
    remote = "registry.invalid:5000"
    client = RegistryClient(insecure=[remote], deadline=5.0)
    head = client.head_manifest(ImageRef.parse(f"{remote}/ci/app:k1"))
    assert head is not None and head.digest == digest
    assert [(m, u) for m, u, _ in fake.log] == [("HEAD", f"http://{remote}/v2/ci/app/manifests/k1")]
    monkeypatch.setenv("NO_PROXY", "registry.invalid")
    with pytest.raises(RegistryError, match="cannot resolve host|connection failed"):
        RegistryClient(insecure=[remote], deadline=2.0).head_manifest(
            ImageRef.parse(f"{remote}/ci/app:k1")
        )
    assert len(fake.log) == 1
