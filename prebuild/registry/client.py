"""A small OCI distribution API client: the few calls prebuild needs, each cheap and bounded.

"Does this key tag exist?" is asked for every image on every CI run, so `head_manifest`
costs exactly one HTTP request once auth is warm; every public call retries transient
faults with backoff but never runs longer than `deadline` seconds.
"""

from __future__ import annotations

import hashlib
import json
import random
import time
from collections.abc import Callable, Iterable
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import urllib3

from prebuild import __version__
from prebuild import deadline as deadlines
from prebuild.errors import RegistryError
from prebuild.registry import transport
from prebuild.registry.auth import Authenticator, login_hint
from prebuild.registry.budget import Call as _Call
from prebuild.registry.failures import describe, error_text, retry_after_seconds
from prebuild.registry.manifests import (
    Manifest,
    ManifestHead,
    Resolved,
    created_annotation,
    parse_created,
)
from prebuild.registry.media_types import (
    IMAGE_MANIFEST_TYPES,
    INDEX_TYPES,
    MANIFEST_ACCEPT,
    OCI_INDEX,
    OCI_MANIFEST,
)
from prebuild.registry.refs import ImageRef, is_loopback, match_platform, validate_digest

_ACTIONS = {"DELETE": "delete", "PUT": "pull,push", "POST": "pull,push", "PATCH": "pull,push"}
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_MAX_REDIRECTS = 5


class RegistryClient:
    """OCI distribution API client; safe to share between threads."""

    backoff_base = 0.2  # seconds before the first retry; doubles each time, with jitter
    backoff_cap = 5.0

    def __init__(
        self,
        *,
        insecure: Iterable[str] = (),
        docker_config_dir: Path | None = None,
        timeout: float = 10.0,
        deadline: float = 60.0,
        http: transport.Transport | None = None,
        on_request: Callable[[str, str], None] | None = None,
        budget: deadlines.Deadline | None = None,
    ) -> None:
        self.insecure = frozenset(h.split("://", 1)[-1].rstrip("/") for h in insecure)
        self.timeout = timeout
        self.deadline = deadline  # per public call, retries included
        self.budget = budget  # the command's deadline (default: the current one at each call)
        self.on_request = on_request
        self.auth = Authenticator(docker_config_dir)
        self.http = http or transport.Transport()
        self._headers = {
            "User-Agent": f"prebuild/{__version__} python-urllib3/{urllib3.__version__}"
        }

    # -- public API -------------------------------------------------------------------------

    def head_manifest(self, ref: ImageRef) -> ManifestHead | None:
        """Does the tag/digest exist? One HEAD request when auth is warm or not needed."""
        call = _Call(self.deadline, self.budget)
        resp = self._request(call, "HEAD", ref, f"manifests/{ref.reference}", MANIFEST_ACCEPT)
        if resp.status_code == 404:
            return None
        self._expect(resp, ref, 200)
        media_type = resp.headers.get("Content-Type", "").split(";")[0].strip()
        size = resp.headers.get("Content-Length")
        digest = resp.headers.get("Docker-Content-Digest") or ref.digest
        if not digest:  # registry omits the header on HEAD: pay for a GET instead
            manifest = self._get_manifest(call, ref)
            if manifest is None:
                return None
            return ManifestHead(manifest.digest, manifest.media_type, len(manifest.raw))
        return ManifestHead(digest, media_type, int(size) if size and size.isdigit() else None)

    def get_manifest(self, ref: ImageRef) -> Manifest | None:
        """The manifest or index a ref points at (None on 404), its digest verified."""
        return self._get_manifest(_Call(self.deadline, self.budget), ref)

    def resolve(self, ref: ImageRef, platform: str) -> Resolved:
        """Pin a ref with one GET: the tag's digest, and the platform's manifest in an index.

        `platform` is "os/arch[/variant]"; plain "linux" means this machine's architecture.
        A single-platform manifest is taken as is (checking its platform would cost a GET).
        """
        manifest = self.get_manifest(ref)
        if manifest is None:
            raise RegistryError(f"{ref}: not found in the registry")
        platform_digest = manifest.digest
        if manifest.is_index:
            platform_digest = self._pick(ref, manifest, platform)["digest"]
        return Resolved(
            ref, platform, manifest.digest, manifest.media_type, platform_digest, manifest.is_index
        )

    def list_tags(self, repo: ImageRef) -> list[str]:
        """Every tag of the repository (empty if it does not exist), across Link pages."""
        call = _Call(self.deadline, self.budget)
        url: str | None = self._url(repo, "tags/list")
        tags: dict[str, None] = {}
        seen: set[str] = set()
        while url and url not in seen:
            seen.add(url)
            resp = self._request(call, "GET", repo, url, "application/json")
            if resp.status_code == 404:
                return []
            self._expect(resp, repo, 200)
            try:
                tags.update(dict.fromkeys(resp.json().get("tags") or []))
            except (ValueError, AttributeError, TypeError):
                raise self._error(repo, "tags/list answered with invalid JSON") from None
            link = resp.links.get("next", {}).get("url")
            url = urljoin(resp.url or url, link) if link else None
            if url and urlsplit(url)[:2] != urlsplit(resp.url)[:2]:  # would leak our token
                raise self._error(repo, "tags/list Link points to another host")
        return list(tags)

    def delete_manifest(self, repo: ImageRef, digest: str) -> bool:
        """Delete by digest. False if the registry refuses deletes (405 / UNSUPPORTED).

        A manifest that is already gone (404) counts as deleted: gc may meet the same
        digest under several tags.
        """
        validate_digest(digest)
        call = _Call(self.deadline, self.budget)
        resp = self._request(call, "DELETE", repo, f"manifests/{digest}", None)
        if resp.status_code in (200, 202, 204, 404):
            return True
        if resp.status_code == 405 or "UNSUPPORTED" in error_text(resp):
            return False
        raise self._error(repo, f"DELETE manifest {digest}", resp)

    def get_blob(self, repo: ImageRef, digest: str) -> bytes:
        """A (small) blob such as an image config, following storage redirects, verified."""
        return self._get_blob(_Call(self.deadline, self.budget), repo, digest)

    def image_created(self, ref: ImageRef, platform: str | None = None) -> datetime | None:
        """When the image was built: the created annotation, else the config's "created".

        For an index, `platform` picks the image (default: its first real platform).
        None if the ref does not exist or records no time.
        """
        call = _Call(self.deadline, self.budget)
        manifest = self._get_manifest(call, ref)
        if manifest is None:
            return None
        created = created_annotation(manifest.json)
        if manifest.is_index:
            entry = self._pick(ref, manifest, platform)
            created = created or created_annotation(entry)
            if created:
                return created
            manifest = self._get_manifest(call, ref.with_digest(entry["digest"]))
            if manifest is None:
                return None
            created = created_annotation(manifest.json)
        if created:
            return created
        config_digest = (manifest.json.get("config") or {}).get("digest")
        if not isinstance(config_digest, str):
            return None
        try:
            config = json.loads(self._get_blob(call, ref, config_digest))
        except ValueError:
            return None
        return parse_created(config.get("created")) if isinstance(config, dict) else None

    # -- helpers ----------------------------------------------------------------------------

    def _pick(self, ref: ImageRef, index: Manifest, platform: str | None) -> dict[str, Any]:
        entries = [e for e in index.json.get("manifests") or [] if isinstance(e, dict)]
        entry, available = match_platform(entries, platform)
        if entry is None:
            raise RegistryError(
                f"{ref}: no image for platform {platform} "
                f"(the index has: {', '.join(available) or 'no platforms'})"
            )
        return entry

    def _get_manifest(self, call: _Call, ref: ImageRef) -> Manifest | None:
        resp = self._request(call, "GET", ref, f"manifests/{ref.reference}", MANIFEST_ACCEPT)
        if resp.status_code == 404:
            return None
        self._expect(resp, ref, 200)
        raw = resp.content
        try:
            body = json.loads(raw)
        except ValueError:
            raise self._error(ref, "manifest is not valid JSON") from None
        if not isinstance(body, dict):
            raise self._error(ref, "manifest is not a JSON object")
        expected = ref.digest or resp.headers.get("Docker-Content-Digest")
        digest = self._verify(ref, raw, expected)
        media_type = resp.headers.get("Content-Type", "").split(";")[0].strip()
        if media_type not in INDEX_TYPES and media_type not in IMAGE_MANIFEST_TYPES:
            media_type = body.get("mediaType") or (
                OCI_INDEX if "manifests" in body else OCI_MANIFEST
            )
        return Manifest(digest, media_type, raw, body)

    def _get_blob(self, call: _Call, repo: ImageRef, digest: str) -> bytes:
        validate_digest(digest)
        resp = self._request(call, "GET", repo, f"blobs/{digest}", None)
        self._expect(resp, repo, 200)
        self._verify(repo, resp.content, digest)
        return resp.content

    def _verify(self, ref: ImageRef, raw: bytes, expected: str | None) -> str:
        """Digest of `raw`; a mismatch with what we asked for means corrupt or forged data."""
        algorithm = (expected or "sha256:").split(":", 1)[0]
        if algorithm not in hashlib.algorithms_available:
            return expected or ""
        actual = f"{algorithm}:{hashlib.new(algorithm, raw).hexdigest()}"
        if expected and actual != expected:
            raise self._error(ref, f"content digest {actual} does not match {expected}")
        return actual

    def _url(self, ref: ImageRef, path: str) -> str:
        host = ref.api_host
        plain = host in self.insecure or urlsplit(f"//{host}").hostname in self.insecure
        scheme = "http" if plain or is_loopback(host) else "https"
        return f"{scheme}://{host}/v2/{ref.repository}/{path}"

    def _expect(self, resp: transport.Response, ref: ImageRef, status: int) -> None:
        if resp.status_code != status:
            raise self._error(ref, f"{resp.method} {urlsplit(resp.url).path}", resp)

    def _error(
        self, ref: ImageRef, what: str, resp: transport.Response | None = None
    ) -> RegistryError:
        if resp is not None:
            detail = error_text(resp)
            what += f" -> HTTP {resp.status_code}" + (f" {detail}" if detail else "")
        return RegistryError(self.auth.redact(f"{ref.registry}: {what}"))

    def _request(
        self,
        call: _Call,
        method: str,
        ref: ImageRef,
        path: str,
        accept: str | None,
        body: bytes | None = None,
        content_type: str | None = None,
    ) -> transport.Response:
        """One API request with auth: answers at most one challenge, then gives up."""
        url = path if "://" in path else self._url(ref, path)
        host = ref.api_host
        scope = f"repository:{ref.repository}:{_ACTIONS.get(method, 'pull')}"
        headers = dict(self._headers)
        if accept:
            headers["Accept"] = accept
        if content_type:
            headers["Content-Type"] = content_type

        def fetch(
            m: str, u: str, h: dict[str, str], form: dict[str, str] | None
        ) -> transport.Response:
            return self._send(call, m, u, {**self._headers, **h}, form)

        auth = self.auth.cached_header(ref.registry, host, scope)
        if auth is None and self.auth.knows_bearer(host):
            auth = self.auth.authorize(ref.registry, host, scope, None, fetch)
        challenged = False
        while True:
            resp = self._send(
                call, method, url, {**headers, **({"Authorization": auth} if auth else {})}, body
            )
            if resp.status_code == 401 and not challenged:
                challenged = True
                challenge = resp.headers.get("WWW-Authenticate")
                auth = self.auth.authorize(ref.registry, host, scope, challenge, fetch)
                if auth is not None:
                    continue
            if resp.status_code in (401, 403):
                creds = self.auth.credentials(ref.registry)
                who = "with the docker config's credentials" if creds else "anonymously"
                raise RegistryError(
                    self.auth.redact(
                        f"{ref.registry}: access denied {who} to {ref.repository} "
                        f"(HTTP {resp.status_code} on {method})"
                    ),
                    hint=login_hint(ref.registry),
                )
            return resp

    def _send(
        self,
        call: _Call,
        method: str,
        url: str,
        headers: dict[str, str],
        form: dict[str, str] | bytes | None = None,
    ) -> transport.Response:
        """Send, retrying transient faults within the call's deadline.

        Redirects are followed by hand so each hop is reported to `on_request` and the
        Authorization header never leaves the registry's origin (blob storage redirects).
        """
        origin = urlsplit(url)[:2]
        attempt = redirects = 0
        reason = ""  # why the previous attempt failed, if one did
        while True:
            attempt += 1
            timeout = min(self.timeout, call.remaining())
            if timeout <= 0:
                why = f"{reason} after {attempt - 1} attempts" if reason else "out of time"
                raise RegistryError(
                    f"{urlsplit(url).netloc}: {why} in {call.elapsed():.1f}s "
                    f"({self._budget(call)})",
                    transient=True,
                )
            same_origin = urlsplit(url)[:2] == origin
            if self.on_request:  # query strings off-origin may carry presigned signatures
                self.on_request(method, url if same_origin else url.split("?", 1)[0])
            retry_after = None
            try:
                resp = self.http.request(
                    method, url, headers=headers, data=form, timeout=timeout,
                    end=time.monotonic() + timeout,
                )  # fmt: skip
            except transport.TLSFailed:
                raise RegistryError(
                    f"{urlsplit(url).netloc}: TLS handshake failed",
                    hint="if it serves plain HTTP, list it in insecure_registries",
                ) from None
            except transport.BodyCut:
                reason = "connection reset"
            except (transport.ConnectionFailed, transport.TimedOut) as exc:
                reason = describe(exc)
            except transport.BadURL:
                raise RegistryError(f"{url.split('?', 1)[0][:200]}: not a usable URL") from None
            else:
                location = resp.headers.get("Location")
                if resp.status_code in _REDIRECTS and location and redirects < _MAX_REDIRECTS:
                    redirects += 1
                    attempt = 0
                    url = urljoin(url, location)
                    if urlsplit(url)[:2] != origin:
                        headers = {k: v for k, v in headers.items() if k != "Authorization"}
                    method = "GET" if resp.status_code == 303 else method
                    continue
                if resp.status_code < 500 and resp.status_code != 429:
                    return resp
                reason = f"HTTP {resp.status_code}"
                retry_after = retry_after_seconds(resp.headers.get("Retry-After"))
            delay = retry_after
            if delay is None:
                delay = min(self.backoff_cap, self.backoff_base * 2 ** (attempt - 1))
                delay *= 0.5 + random.random() / 2
            if call.remaining() - delay <= 0:
                raise RegistryError(
                    f"{urlsplit(url).netloc}: {reason} after {attempt} attempts "
                    f"in {call.elapsed():.1f}s ({self._budget(call)})",
                    transient=True,
                )
            time.sleep(delay)

    def _budget(self, call: _Call) -> str:
        """Which limit ran out: the call's own retry budget or the command's deadline."""
        if call.end < call.start + self.deadline:
            return call.command.describe()
        return f"{self.deadline:g}s per call"
