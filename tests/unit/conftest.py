"""Fixtures several unit-test modules share: a fake registry and a base image in it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from tests.unit.registry.test_client import FakeRegistry


@pytest.fixture
def fake() -> Iterator[FakeRegistry]:
    """A fake registry serving on localhost for one test, shut down afterwards."""
    # Imported here, not at the top: only the tests that use it depend on test_registry.
    from tests.unit.registry.test_client import FakeRegistry

    registry = FakeRegistry()
    registry.thread.start()
    yield registry
    registry.release.set()
    registry.server.shutdown()
    registry.server.server_close()


@pytest.fixture
def busybox(fake: FakeRegistry) -> tuple[str, dict[str, str]]:
    """seed/busybox:stable as a multi-platform index: (index digest, platform -> digest)."""
    from tests.unit.registry.test_client import multiarch

    return multiarch(fake, "seed/busybox", "stable")
