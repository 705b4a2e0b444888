"""One user-facing error type; the CLI's top-level handler maps it to an exit code and a hint."""

from __future__ import annotations

EXIT_FAILED = 1
EXIT_USAGE = 2


class PrebuildError(Exception):
    """An error the user can act on: printed without a traceback."""

    exit_code = EXIT_FAILED

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message}\nhint: {self.hint}"


class ConfigError(PrebuildError):
    """Bad configuration or input files: located (file, line, key path), exit 2."""

    exit_code = EXIT_USAGE

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        key: str | None = None,
        hint: str | None = None,
    ) -> None:
        where = ":".join(p for p in (file, str(line) if line else None) if p)
        parts = [p for p in (where, f"at key '{key}'" if key else None) if p]
        located = f"{' '.join(parts)}: {message}" if parts else message
        super().__init__(located, hint=hint)
        self.file, self.line, self.key = file, line, key


class UsageError(PrebuildError):
    """Wrong command-line usage: exit 2."""

    exit_code = EXIT_USAGE


class RegistryError(PrebuildError):
    """A registry could not be reached or answered unexpectedly."""

    def __init__(self, message: str, *, transient: bool = False, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.transient = transient


class DockerError(PrebuildError):
    """docker / buildx failed; carries the tail of its output."""
