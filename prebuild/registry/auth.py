"""Registry credentials and the WWW-Authenticate dance, kept apart from the HTTP plumbing.

Credentials come only from the docker config, looked up with docker-py's `docker.auth`
(auths / identitytoken / credHelpers / credsStore, with its vendored copy of docker-pycreds
for the credential-helper protocol) so we behave like `docker login` left things.
Secrets never reach a log line or an exception message: `Authenticator.redact` scrubs any
text that might quote one, and `Credentials` hides them from repr.
"""

from __future__ import annotations

import base64
import json
import re
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

from prebuild.engine import locations
from prebuild.errors import RegistryError
from prebuild.registry.transport import Response

CLIENT_ID = "prebuild"
DEFAULT_TOKEN_LIFETIME = 60  # seconds; what the token spec says to assume
_PARAM = re.compile(r'([A-Za-z][\w-]*)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))')

# fetch(method, url, headers, form) -> response: sends one logical request with the
# caller's retries and deadline; used for token endpoints.
Fetch = Callable[[str, str, dict[str, str], dict[str, str] | None], Response]


def login_hint(registry: str) -> str:
    return f"docker login {registry}"


@dataclass(frozen=True)
class Credentials:
    """What the docker config holds for one registry; secrets are left out of repr."""

    username: str | None = None
    password: str | None = field(default=None, repr=False)
    identity_token: str | None = field(default=None, repr=False)

    @property
    def basic_header(self) -> str | None:
        encoded = self._encoded_pair
        return f"Basic {encoded}" if encoded else None

    @property
    def _encoded_pair(self) -> str | None:
        if self.username is None or self.password is None:
            return None
        return base64.b64encode(f"{self.username}:{self.password}".encode()).decode("ascii")

    @property
    def secrets(self) -> tuple[str, ...]:
        """Strings that must never be shown (the Basic header's base64 is the password too)."""
        values = (self.password, self.identity_token, self._encoded_pair)
        return tuple(v for v in values if v)


@dataclass(frozen=True)
class Challenge:
    """One parsed WWW-Authenticate header: scheme ("bearer"/"basic") and its parameters."""

    scheme: str
    params: dict[str, str]

    @classmethod
    def parse(cls, header: str | None) -> Challenge | None:
        if not header or not header.strip():
            return None
        scheme, _, rest = header.strip().partition(" ")
        params = {
            m.group(1).lower(): (m.group(2) if m.group(2) is not None else m.group(3))
            for m in _PARAM.finditer(rest)
        }
        params = {k: v.replace('\\"', '"') for k, v in params.items()}
        return cls(scheme.lower(), params)


def load_credentials(registry: str, directory: Path) -> Credentials | None:
    """Credentials for `registry` (as users write it, e.g. "docker.io"), or None (anonymous)."""
    return load_file(registry, directory / "config.json")


def load_file(registry: str, path: Path) -> Credentials | None:
    """Credentials for `registry` from one docker config or containers auth.json (same format)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        # The exception text may quote file content; only say where it is broken.
        where = f" (line {exc.lineno})" if isinstance(exc, json.JSONDecodeError) else ""
        raise RegistryError(f"cannot read docker config {path}{where}") from None
    if not isinstance(data, dict) or not data:
        return None
    # Imported only when there is a config to read: most runners pull anonymously, and the
    # hook's start-up time is on every CI job's critical path.
    import docker.auth
    import docker.errors

    try:
        config = docker.auth.load_config(config_dict=dict(data))
    except (docker.errors.DockerException, ValueError, TypeError, KeyError):
        raise RegistryError(f"invalid auth entry in docker config {path}") from None
    try:
        with warnings.catch_warnings():
            # docker-py warns when a helper is missing; we raise a clearer error below.
            warnings.simplefilter("ignore")
            found: dict[str, Any] | None = config.resolve_authconfig(registry)
    except docker.errors.DockerException as exc:
        # Never quote the helper's output: a misbehaving helper may print the secret.
        missing = "not installed" in str(exc.__cause__ or "")
        why = "is not installed or not on PATH" if missing else "failed"
        helper = config.get_credential_store(registry)
        raise RegistryError(
            f"{registry}: credential helper docker-credential-{helper} {why}",
            hint=login_hint(registry),
        ) from None
    if not found:
        return None
    entry = {k.lower(): v for k, v in found.items()}
    creds = Credentials(
        username=entry.get("username") or None,
        password=entry.get("password") or None,
        identity_token=entry.get("identitytoken") or None,
    )
    return creds if creds.secrets else None


class Authenticator:
    """Turns 401 challenges into Authorization headers, and remembers them.

    Bearer tokens are cached per (api host, scope) for their lifetime, and once a host
    is known to use Bearer (or Basic) later requests authenticate up front, so a warm
    client spends one HTTP request per lookup. Thread-safe.
    """

    def __init__(self, docker_config_dir: Path | None = None) -> None:
        self._dir = docker_config_dir
        self._lock = threading.Lock()
        self._creds: dict[str, Credentials | None] = {}
        self._challenges: dict[str, Challenge] = {}
        self._tokens: dict[tuple[str, str], tuple[str, float]] = {}
        self._secrets: set[str] = set()

    def credentials(self, registry: str) -> Credentials | None:
        with self._lock:  # one helper process per registry, even under a thread pool
            if registry not in self._creds:
                creds = None
                for path in locations.credential_files(self._dir):
                    creds = load_file(registry, path)
                    if creds:
                        break
                self._creds[registry] = creds
                if creds:
                    self._secrets.update(creds.secrets)
            return self._creds[registry]

    def redact(self, text: str) -> str:
        with self._lock:
            secrets = sorted(self._secrets, key=len, reverse=True)
        for secret in secrets:
            text = text.replace(secret, "***")
        return text

    def cached_header(self, registry: str, host: str, scope: str) -> str | None:
        """An Authorization header usable without a round trip, if we have one."""
        with self._lock:
            challenge = self._challenges.get(host)
            token = self._tokens.get((host, scope))
        if challenge is None:
            return None
        if challenge.scheme == "basic":
            creds = self.credentials(registry)
            return creds.basic_header if creds else None
        if token and token[1] > time.monotonic():
            return f"Bearer {token[0]}"
        return None

    def knows_bearer(self, host: str) -> bool:
        with self._lock:
            challenge = self._challenges.get(host)
        return challenge is not None and challenge.scheme == "bearer"

    def authorize(
        self, registry: str, host: str, scope: str, header: str | None, fetch: Fetch
    ) -> str | None:
        """Answer `header` (a WWW-Authenticate value), or the host's last challenge if None.

        Returns the Authorization header to retry with, or None when we cannot answer
        (no credentials for Basic, unknown scheme).
        """
        challenge = Challenge.parse(header)
        if challenge is None:
            with self._lock:
                challenge = self._challenges.get(host)
            if challenge is None:
                return None
        if challenge.scheme == "basic":
            with self._lock:
                self._challenges[host] = challenge
            creds = self.credentials(registry)
            return creds.basic_header if creds else None
        if challenge.scheme != "bearer" or "realm" not in challenge.params:
            return None
        with self._lock:
            self._challenges[host] = Challenge("bearer", {**challenge.params, "scope": ""})
        # The challenge names the scope the registry wants; a remembered one has none.
        scopes = challenge.params.get("scope", "").split() or [scope]
        token, lifetime = self._fetch_token(registry, challenge, scopes, fetch)
        expires = time.monotonic() + max(lifetime - 10, lifetime / 2)
        with self._lock:
            self._secrets.add(token)
            for key in {scope, *scopes}:
                self._tokens[(host, key)] = (token, expires)
        return f"Bearer {token}"

    def _fetch_token(
        self, registry: str, challenge: Challenge, scopes: list[str], fetch: Fetch
    ) -> tuple[str, float]:
        realm = _realm_url(registry, challenge.params["realm"])
        service = challenge.params.get("service")
        creds = self.credentials(registry)
        query: list[tuple[str, str]] = [("service", service)] if service else []
        if creds and creds.identity_token:
            # OAuth2 refresh-token grant, as the docker CLI does for identity tokens.
            form = {"grant_type": "refresh_token", "client_id": CLIENT_ID}
            form["refresh_token"] = creds.identity_token
            if service:
                form["service"] = service
            form["scope"] = " ".join(scopes)
            resp = fetch("POST", realm, {}, form)
        else:
            query += [("scope", s) for s in scopes if s]
            url = realm + ("&" if urlsplit(realm).query else "?") + urlencode(query)
            basic = creds.basic_header if creds else None
            resp = fetch("GET", url, {"Authorization": basic} if basic else {}, None)
        auth_host = urlsplit(realm).netloc
        if resp.status_code in (401, 403):
            who = "credentials for " + registry if creds else "anonymous access to " + registry
            raise RegistryError(
                f"{auth_host}: token request refused (HTTP {resp.status_code}) for {who}",
                hint=login_hint(registry),
            )
        try:
            body = resp.json()
            token = body.get("token") or body.get("access_token")
            lifetime = float(body.get("expires_in") or DEFAULT_TOKEN_LIFETIME)
        except (ValueError, AttributeError, TypeError):
            token, lifetime = None, 0.0
        if resp.status_code != 200 or not isinstance(token, str) or not token:
            raise RegistryError(
                f"{auth_host}: token endpoint answered HTTP {resp.status_code} without a token"
            )
        return token, lifetime


def _realm_url(registry: str, realm: str) -> str:
    """The token endpoint, checked: the HTTP stack would fail on a bad one with a bare traceback."""
    try:
        parts = urlsplit(realm)
        valid = parts.scheme in ("http", "https") and bool(parts.hostname)
        port_ok = parts.port is None or 0 < parts.port < 65536  # .port raises when not 0-65535
    except ValueError:
        valid = port_ok = False
    if not (valid and port_ok):
        raise RegistryError(
            f"{registry}: the registry's WWW-Authenticate challenge names token realm "
            f"{realm[:200]!r}, which is not an http(s) URL"
        )
    return realm
