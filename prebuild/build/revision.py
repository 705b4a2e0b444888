"""What the checkout says about itself, for OCI labels. Never fails a build."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path


def _git(repo: Path, *args: str) -> str | None:
    try:
        proc = subprocess.run(
            ["git", "-C", str(repo), *args], capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return proc.stdout.strip() if proc.returncode == 0 and proc.stdout.strip() else None


def revision(repo: Path) -> str | None:
    return _git(repo, "rev-parse", "HEAD")


def source_url(repo: Path) -> str | None:
    """The origin URL with any embedded credentials removed (CI checkouts often carry a token)."""
    url = _git(repo, "config", "--get", "remote.origin.url")
    if url is None:
        return None
    return re.sub(r"^(\w+://)[^@/]+@", r"\1", url)
