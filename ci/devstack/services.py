"""The stack's network services: a filesystem registry, a moto S3 server and a registry on S3.

Each is a plain process on a loopback port with a pidfile; readiness is an HTTP probe.
"""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

from devstack import procs
from devstack.layout import ACCESS_KEY, REGION, REPO_ROOT, S3_REGISTRY_BUCKET, SECRET_KEY, Layout

S3_REGISTRY_CONFIG = REPO_ROOT / "infra" / "registry" / "config-s3.yml"


def http_ok(url: str, method: str = "GET") -> bool:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method=method), timeout=2) as r:
            return 200 <= r.status < 300
    except (urllib.error.URLError, OSError):
        return False


def _registry_binary() -> str:
    return "/usr/bin/docker-registry"


def fs_registry_config(lay: Layout) -> Path:
    storage = lay.state / "registry"
    storage.mkdir(parents=True, exist_ok=True)
    config = lay.state / "registry.yml"
    config.write_text(
        "version: 0.1\n"
        "log:\n  level: warn\n"
        f"storage:\n  filesystem:\n    rootdirectory: {storage}\n  delete:\n    enabled: true\n"
        "  cache:\n    blobdescriptor: inmemory\n"
        f"http:\n  addr: {lay.registry_addr}\n"
    )
    return config


def start_registry(lay: Layout) -> None:
    log = lay.logs / "registry.log"
    procs.spawn(
        [_registry_binary(), "serve", str(fs_registry_config(lay))],
        pidfile=lay.pids / "registry.pid",
        log=log,
        env=_clean_env(),
    )
    url = f"http://{lay.registry_addr}/v2/"
    procs.wait_until(lambda: http_ok(url), what="registry", timeout=30, log=log)


def registry_gc(lay: Layout) -> str:
    """distribution's own garbage collection on the filesystem registry; returns its summary.

    `prebuild gc` only deletes manifests; their blobs stay on disk until this runs. The registry
    must not serve while it runs (a push in between could lose blobs), so it is stopped,
    collected and started again on the same pidfile, config and port, even when the collection
    fails. Never with --delete-untagged: distribution 2.8 then deletes the untagged children of
    every multi-platform index (distribution#3178); prebuild deletes the manifests it
    superseded (old cache manifests, deleted indexes' children) itself.
    """
    config = fs_registry_config(lay)
    procs.stop(lay.pids / "registry.pid")
    try:
        proc = subprocess.run(
            [_registry_binary(), "garbage-collect", str(config)],
            capture_output=True,
            text=True,
            env=_clean_env(),
        )
    finally:
        start_registry(lay)
    if proc.returncode != 0:
        raise procs.StackError(f"registry garbage-collect failed:\n{proc.stderr[-800:]}")
    # "N blobs marked, M blobs and K manifests eligible for deletion" (then one line per item)
    summary = [line for line in proc.stdout.splitlines() if "blobs marked" in line]
    return summary[-1].strip() if summary else "nothing to collect"


# The tools virtualenv's packages: moto's S3 server; the token service (ci/devstack/tokens.py)
# signs JWTs with PyJWT, makes its key and certificate with cryptography, hashes with bcrypt.
TOOLS = ("moto[server]>=5.0", "pyjwt>=2.8", "cryptography>=42", "bcrypt>=4.1")


def ensure_tools_venv(lay: Layout, say) -> Path:
    """The stack's own servers live in a private virtualenv: it needs no project install."""
    moto = lay.tools_venv / "bin" / "moto_server"
    marker = lay.tools_venv / ".tools"
    if moto.exists() and marker.exists() and marker.read_text().split("\n") == list(TOOLS):
        return moto
    say(f"installing {' '.join(TOOLS)} into a private virtualenv")
    if not (lay.tools_venv / "bin" / "pip").exists():
        subprocess.run([sys.executable, "-m", "venv", str(lay.tools_venv)], check=True)
    pip = [str(lay.tools_venv / "bin" / "pip"), "install", "-q", "--disable-pip-version-check"]
    proc = subprocess.run([*pip, *TOOLS], capture_output=True, text=True)
    if proc.returncode != 0:
        raise procs.StackError(f"pip install {' '.join(TOOLS)} failed:\n{proc.stderr[-800:]}")
    marker.write_text("\n".join(TOOLS))
    return moto


def start_s3(lay: Layout, moto_server: Path) -> None:
    log = lay.logs / "moto.log"
    procs.spawn(
        [str(moto_server), "-H", "127.0.0.1", "-p", str(lay.s3_port)],
        pidfile=lay.pids / "moto.pid",
        log=log,
        env=_clean_env(),
    )
    procs.wait_until(lambda: http_ok(f"{lay.s3_endpoint}/"), what="moto S3", timeout=60, log=log)


def ensure_bucket(lay: Layout, bucket: str) -> None:
    """Create a bucket on moto (it accepts unsigned requests; 409 = already there)."""
    try:
        urllib.request.urlopen(
            urllib.request.Request(f"{lay.s3_endpoint}/{bucket}", method="PUT"), timeout=5
        )
    except urllib.error.HTTPError as error:
        if error.code != 409:
            raise procs.StackError(f"creating bucket {bucket}: HTTP {error.code}") from error


def start_s3_registry(lay: Layout) -> None:
    ensure_bucket(lay, S3_REGISTRY_BUCKET)
    env = {
        **_clean_env(),
        "AWS_ACCESS_KEY_ID": ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
        "REGISTRY_HTTP_ADDR": lay.s3_registry_addr,
        "REGISTRY_LOG_LEVEL": "warn",
        "REGISTRY_STORAGE_S3_REGION": REGION,
        "REGISTRY_STORAGE_S3_BUCKET": S3_REGISTRY_BUCKET,
        "REGISTRY_STORAGE_S3_REGIONENDPOINT": lay.s3_endpoint,
        "REGISTRY_STORAGE_S3_SECURE": "false",
        "REGISTRY_HEALTH_STORAGEDRIVER_ENABLED": "false",
    }
    log = lay.logs / "s3-registry.log"
    procs.spawn(
        [_registry_binary(), "serve", str(S3_REGISTRY_CONFIG)],
        pidfile=lay.pids / "s3-registry.pid",
        log=log,
        env=env,
    )
    url = f"http://{lay.s3_registry_addr}/v2/"
    procs.wait_until(lambda: http_ok(url), what="registry on S3", timeout=30, log=log)


def _clean_env() -> dict[str, str]:
    """The registry panics on AWS_CA_BUNDLE; no service should see the user's credentials."""
    drop = ("AWS_", "DOCKER_", "REGISTRY_")
    return {k: v for k, v in os.environ.items() if not k.startswith(drop)}
