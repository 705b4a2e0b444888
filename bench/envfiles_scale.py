"""Env-file reading time against value size: linear (issue 13 measured 0.3 s at 100 KB and
2.6 s at 400 KB before the partial evaluator). Run: .venv/bin/python -m bench.envfiles_scale"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from prebuild.sources.envfiles.reader import read_env


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "env.sh"
        for size in (100_000, 400_000, 1_000_000, 10_000_000):
            half = "x" * (size // 2)
            path.write_text(f'A="{half}"\nB={"y" * (size // 2)}\nC=${{A:+set}}\n')
            start = time.perf_counter()
            read_env([path])
            print(f"{size / 1e6:6.1f} MB  {time.perf_counter() - start:.3f} s")


if __name__ == "__main__":
    main()
