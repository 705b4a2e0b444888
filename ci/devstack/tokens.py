"""The stack's registry token service: real JWTs, scoped per account (test use only).

distribution's `auth: token` sends clients here (Docker's token protocol: GET with Basic
auth, or the OAuth2 password grant POST that containerd tries first); the registry verifies
each JWT against the certificate `init` wrote (its `x5c` header carries it). Each account may
hold `pull`, `push` and `delete` on every repository; a token grants what was asked for and
the account holds, so the registry itself refuses a push with a pull-only account. No
credentials: a token with no access at all (the registry then answers 401, as Docker Hub
does for anonymous pushes).

Runs in the stack's tools virtualenv (PyJWT signs, cryptography makes the key and its
certificate, bcrypt checks passwords), as a script, never imported by the stdlib-only stack:

    python tokens.py init DIR    < {"accounts": {NAME: {"password": P, "actions": [...]}}}
    python tokens.py serve DIR HOST:PORT SERVICE ISSUER

`init` keeps passwords off argv (stdin) and writes only bcrypt hashes: DIR/accounts.json
for this service and DIR/htpasswd for the stack's Basic-auth registry.
"""

from __future__ import annotations

import base64
import datetime
import json
import sys
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import bcrypt
import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

LIFETIME = 300  # seconds a token is valid


def init(directory: Path, accounts: dict[str, Any]) -> None:
    """Signing key and self-signed certificate (kept once made), account hashes, htpasswd."""
    directory.mkdir(parents=True, exist_ok=True)
    key_file, cert_file = directory / "key.pem", directory / "cert.pem"
    if not key_file.exists() or not cert_file.exists():
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "prebuild stack tokens")])
        now = datetime.datetime.now(datetime.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256())
        )
        key_file.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        key_file.chmod(0o600)
        cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    hashed = {
        name: {
            "hash": bcrypt.hashpw(entry["password"].encode(), bcrypt.gensalt(rounds=8)).decode(),
            "actions": sorted(entry["actions"]),
        }
        for name, entry in accounts.items()
    }
    (directory / "accounts.json").write_text(json.dumps(hashed, indent=2) + "\n")
    (directory / "htpasswd").write_text(
        "".join(f"{name}:{entry['hash']}\n" for name, entry in hashed.items())
    )


class Issuer:
    def __init__(self, directory: Path, service: str, issuer: str) -> None:
        self.accounts: dict[str, dict[str, Any]] = json.loads(
            (directory / "accounts.json").read_text()
        )
        self.key = serialization.load_pem_private_key((directory / "key.pem").read_bytes(), None)
        cert = x509.load_pem_x509_certificate((directory / "cert.pem").read_bytes())
        self.x5c = [base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()]
        self.service, self.issuer = service, issuer

    def account(self, user: str | None, password: str | None) -> dict[str, Any] | None:
        """The account these credentials open, {} for anonymous, None when they are wrong."""
        if user is None:
            return {}
        entry = self.accounts.get(user)
        if entry is None or password is None:
            return None
        return entry if bcrypt.checkpw(password.encode(), entry["hash"].encode()) else None

    def token(self, user: str | None, held: list[str], scopes: list[str]) -> dict[str, Any]:
        access = []
        for scope in scopes:
            kind, _, rest = scope.partition(":")
            name, _, wanted = rest.rpartition(":")
            if kind != "repository" or not name:
                continue
            granted = [a for a in wanted.split(",") if a in held]
            if granted:
                access.append({"type": kind, "name": name, "actions": granted})
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "sub": user or "",
            "aud": self.service,
            "iat": now,
            "nbf": now - 5,
            "exp": now + LIFETIME,
            "jti": uuid.uuid4().hex,
            "access": access,
        }
        signed = jwt.encode(claims, self.key, algorithm="ES256", headers={"x5c": self.x5c})
        issued = datetime.datetime.fromtimestamp(now, datetime.UTC).isoformat()
        return {
            "token": signed,
            "access_token": signed,
            "expires_in": LIFETIME,
            "issued_at": issued,
        }


def handler(issuer: Issuer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            url = urlsplit(self.path)
            if url.path != "/token":
                return self._send(404, {"error": "not found"})
            query = parse_qs(url.query)
            user, password = _basic(self.headers.get("Authorization"))
            self._answer(user, password, query.get("scope", []))

        def do_POST(self) -> None:  # noqa: N802
            if urlsplit(self.path).path != "/token":
                return self._send(404, {"error": "not found"})
            length = int(self.headers.get("Content-Length") or 0)
            form = parse_qs(self.rfile.read(length).decode())
            if form.get("grant_type") != ["password"]:
                return self._send(400, {"error": "unsupported_grant_type"})
            scopes = " ".join(form.get("scope", [])).split()
            self._answer(form.get("username", [None])[0], form.get("password", [None])[0], scopes)

        def _answer(self, user: str | None, password: str | None, scopes: list[str]) -> None:
            account = issuer.account(user, password)
            if account is None:
                return self._send(401, {"errors": [{"code": "UNAUTHORIZED"}]})
            self._send(200, issuer.token(user, account.get("actions", []), scopes))

        def _send(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            # the request line only: scopes, never a header or a body
            sys.stderr.write(f"{self.address_string()} {format % args}\n")

    return Handler


def _basic(header: str | None) -> tuple[str | None, str | None]:
    if not header or not header.lower().startswith("basic "):
        return None, None
    try:
        user, _, password = base64.b64decode(header[6:]).decode().partition(":")
    except ValueError:
        return "", None
    return user, password


def main(argv: list[str]) -> int:
    if len(argv) == 2 and argv[0] == "init":
        init(Path(argv[1]), json.load(sys.stdin)["accounts"])
        return 0
    if len(argv) == 5 and argv[0] == "serve":
        host, _, port = argv[2].rpartition(":")
        issuer = Issuer(Path(argv[1]), service=argv[3], issuer=argv[4])
        ThreadingHTTPServer((host, int(port)), handler(issuer)).serve_forever()
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
