"""prebuild's benchmarks: `bench/run` (see bench/README.md). Not part of the test suite."""

from __future__ import annotations
