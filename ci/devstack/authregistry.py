"""Registries that require credentials, as real ones do: token auth and htpasswd Basic auth.

- `token`: the stack's token service (tokens.py, in the tools virtualenv) issues JWTs scoped
  per account; the push account holds pull, push and delete, the pull account only pull.
- `auth-registry`: distribution with `auth: token`, verifying those JWTs against the token
  service's certificate. A push with the pull-only account is refused by this registry.
- `basic-registry`: distribution with `auth: htpasswd` (bcrypt hashes; the push account).

Passwords reach the token service's `init` on stdin, never argv; on disk there are only
bcrypt hashes.
"""

from __future__ import annotations

import json
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

from devstack import procs
from devstack.layout import (
    PULL_PASSWORD,
    PULL_USER,
    PUSH_PASSWORD,
    PUSH_USER,
    TOKEN_ISSUER,
    TOKEN_SERVICE,
    Layout,
)
from devstack.services import _clean_env

TOKENS = Path(__file__).resolve().with_name("tokens.py")
ACCOUNTS = {
    PUSH_USER: {"password": PUSH_PASSWORD, "actions": ["pull", "push", "delete"]},
    PULL_USER: {"password": PULL_PASSWORD, "actions": ["pull"]},
}


def _python(lay: Layout) -> str:
    return str(lay.tools_venv / "bin" / "python")


def answers(url: str, status: int) -> bool:
    """Does `url` answer with HTTP `status` (401 is the sign of life of a locked registry)?"""
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return resp.status == status
    except urllib.error.HTTPError as error:
        return error.code == status
    except OSError:
        return False


def start_token_service(lay: Layout) -> None:
    proc = subprocess.run(
        [_python(lay), str(TOKENS), "init", str(lay.auth_dir)],
        input=json.dumps({"accounts": ACCOUNTS}),
        capture_output=True,
        text=True,
        env=_clean_env(),
    )
    if proc.returncode != 0:
        raise procs.StackError(f"token service init failed:\n{proc.stderr[-800:]}")
    log = lay.logs / "token.log"
    procs.spawn(
        [_python(lay), str(TOKENS), "serve", str(lay.auth_dir), lay.token_addr]
        + [TOKEN_SERVICE, TOKEN_ISSUER],
        pidfile=lay.pids / "token.pid",
        log=log,
        env=_clean_env(),
    )
    url = f"http://{lay.token_addr}/token?service={TOKEN_SERVICE}"
    procs.wait_until(lambda: answers(url, 200), what="token service", timeout=30, log=log)


def _config(lay: Layout, name: str, addr: str, auth: str) -> Path:
    storage = lay.state / name
    storage.mkdir(parents=True, exist_ok=True)
    config = lay.state / f"{name}.yml"
    config.write_text(
        "version: 0.1\n"
        "log:\n  level: warn\n"
        f"storage:\n  filesystem:\n    rootdirectory: {storage}\n  delete:\n    enabled: true\n"
        f"http:\n  addr: {addr}\n"
        f"auth:\n{auth}"
    )
    return config


def _serve(lay: Layout, name: str, addr: str, auth: str) -> None:
    log = lay.logs / f"{name}.log"
    procs.spawn(
        ["/usr/bin/docker-registry", "serve", str(_config(lay, name, addr, auth))],
        pidfile=lay.pids / f"{name}.pid",
        log=log,
        env=_clean_env(),
    )
    url = f"http://{addr}/v2/"
    procs.wait_until(lambda: answers(url, 401), what=name, timeout=30, log=log)


def start_auth_registry(lay: Layout) -> None:
    auth = (
        "  token:\n"
        f"    realm: http://{lay.token_addr}/token\n"
        f"    service: {TOKEN_SERVICE}\n"
        f"    issuer: {TOKEN_ISSUER}\n"
        f"    rootcertbundle: {lay.auth_dir / 'cert.pem'}\n"
    )
    _serve(lay, "auth-registry", lay.auth_registry_addr, auth)


def start_basic_registry(lay: Layout) -> None:
    auth = f"  htpasswd:\n    realm: prebuild-stack\n    path: {lay.auth_dir / 'htpasswd'}\n"
    _serve(lay, "basic-registry", lay.basic_registry_addr, auth)
