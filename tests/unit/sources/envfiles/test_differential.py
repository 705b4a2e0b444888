"""Differential test: for generated env files, every variable the reader calls known has
exactly the value (and export status) bash gives it after sourcing them in an empty
environment. The files are built by a seeded generator, so failures reproduce."""

from __future__ import annotations

from pathlib import Path

import pytest

from prebuild.sources.envfiles.reader import read_env
from tests.unit.sources.envfiles.generate import BASH, NAMES, Generator, bash_oracle

CASES = 300


def check(seed: int, root: Path) -> tuple[int, int]:
    """(known, unknown) variable counts; asserts known values match bash."""
    files, initial = Generator(seed).repo(root)
    result = read_env(files, initial=initial, root=root)
    actual = bash_oracle(files, initial, root)
    known = unknown = 0
    for name in [*NAMES, "I", "FILE_ENV"]:
        value = result.lookup(name)
        if value is None:
            assert name not in actual, f"seed {seed}: {name} is set in bash: {actual.get(name)}"
            known += 1
        elif isinstance(value, str):
            assert name in actual, f"seed {seed}: {name} is unset in bash, reader says {value!r}"
            assert actual[name][0] == value, f"seed {seed}: {name}"
            if name not in result.export_unknown:
                exported = "x" in actual[name][1]
                assert exported == (name in result.exported), f"seed {seed}: {name} export"
            known += 1
        else:
            unknown += 1
    return known, unknown


@pytest.mark.skipif(BASH is None, reason="the oracle is bash")
def test_known_values_equal_what_bash_prints(tmp_path: Path) -> None:
    known = unknown = 0
    for seed in range(CASES):
        k, u = check(seed, tmp_path / str(seed))
        known, unknown = known + k, unknown + u
    # The generator must exercise both outcomes substantially, or the test proves little.
    assert known > 0.4 * (known + unknown)
    assert unknown > 0.05 * (known + unknown)
