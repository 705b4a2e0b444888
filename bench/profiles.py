"""Where prebuild's own time goes: pyinstrument call trees and `python -X importtime`.

Written to bench/out/profiles/ for the commands whose fixed cost the targets are about (the
hook, the no-op nightly, the offline plan), so a missed target comes with its explanation.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from bench.harness import OUT, REPO_ROOT, log, run

PYTHON = str(REPO_ROOT / ".venv" / "bin" / "python")
PROFILES = OUT / "profiles"
ENABLED = True  # `bench/run --no-profiles` turns them off


def profile(name: str, args: list[str], *, cwd: Path, env: Mapping[str, str]) -> None:
    """Both profiles of `prebuild ARGS`, when enabled; never fails the scenario."""
    if not ENABLED:
        return
    try:
        pyinstrument(name, args, cwd=cwd, env=env)
        importtime(name, args, cwd=cwd, env=env)
    except Exception as error:  # a profile explains numbers; it never loses them
        log(f"profile {name} failed: {error}")


def pyinstrument(name: str, args: list[str], *, cwd: Path, env: Mapping[str, str]) -> Path:
    """`prebuild ARGS` under pyinstrument (sampling; imports shown as the modules' <module>)."""
    PROFILES.mkdir(parents=True, exist_ok=True)
    out = PROFILES / f"{name}.pyinstrument.txt"
    argv = [PYTHON, "-m", "pyinstrument", "--renderer", "text", "--outfile", str(out)]
    proc = run([*argv, "-m", "prebuild", *args], cwd=cwd, env=env, check=False)
    if not out.exists():
        log(f"pyinstrument {name} failed: {proc.stderr[-400:]}")
    return out


def importtime(name: str, args: list[str], *, cwd: Path, env: Mapping[str, str]) -> list[str]:
    """Top-level and second-level imports by cumulative microseconds, biggest first."""
    PROFILES.mkdir(parents=True, exist_ok=True)
    proc = run([PYTHON, "-X", "importtime", "-m", "prebuild", *args], cwd=cwd, env=env,
               check=False)  # fmt: skip
    rows: list[tuple[int, str]] = []
    for line in proc.stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        _, cumulative, module = line.split("|", 2)
        depth = (len(module) - len(module.lstrip(" "))) // 2
        if depth <= 2:
            rows.append((int(cumulative), module.rstrip()))
    rows.sort(reverse=True)
    total = sum(c for c, m in rows if not m.startswith("   "))
    lines = [f"total of top-level imports: {total / 1000:.1f} ms"]
    lines += [f"{c / 1000:8.1f} ms  {m}" for c, m in rows[:40]]
    (PROFILES / f"{name}.importtime.txt").write_text("\n".join(lines) + "\n")
    return lines


def top_of(path: Path, depth: int = 12, limit: int = 45) -> list[str]:
    """The first levels of a pyinstrument text tree, for the console and RESULTS.md."""
    if not path.exists():
        return []
    keep = []
    for line in path.read_text().splitlines():
        stripped = line.lstrip(" │├└─")
        indent = len(line) - len(stripped)
        if stripped and indent <= depth * 3 and any(ch.isdigit() for ch in stripped[:6]):
            keep.append(line.rstrip())
    return keep[:limit]
