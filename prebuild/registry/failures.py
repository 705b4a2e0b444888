"""Why a registry request failed, in words a user can act on and that never quote a secret."""

from __future__ import annotations

import socket
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from prebuild.registry.transport import Response, TimedOut, causes


def describe(exc: BaseException) -> str:
    """A short, secret-free reason for a network failure, from anywhere in its cause chain."""
    if isinstance(exc, TimedOut | TimeoutError):  # ours, or a socket's: whatever caused it
        return "timed out"
    seen = causes(exc)
    for kind, text in (
        (ConnectionRefusedError, "connection refused"),
        (ConnectionResetError, "connection reset"),
        (socket.gaierror, "cannot resolve host"),
        (TimeoutError, "timed out"),
    ):
        if any(isinstance(e, kind) for e in seen):
            return text
    return "connection failed"


def retry_after_seconds(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, (parsedate_to_datetime(value) - datetime.now(UTC)).total_seconds())
    except (TypeError, ValueError):
        return None


def error_text(resp: Response) -> str:
    """`CODE: message` from an OCI error body, truncated; empty if there is none."""
    try:
        errors = resp.json().get("errors") or []
        first = errors[0]
        text = f"{first.get('code', '')}: {first.get('message', '')}".strip(": ")
    except (ValueError, AttributeError, IndexError, TypeError):
        return ""
    return text[:200]
