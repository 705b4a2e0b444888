"""Two `prebuild build --force` at once, on one engine and on two: both succeed, nothing they
say is false.

Each round changes inputs of `base` and `app` first, so both runs build new keys (and with them
`toolchain`, FROM base) at the same moment: the case where the containerd image store's
naming race and the registry's tag rewrite race fail a build.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.integration.conftest import SecondEngine, Stack, wipe_engine
from tests.integration.example_repo import Repo, make_example_repo

ROUNDS = 5
ALL = {"base", "toolchain", "app", "docs-lint"}


Run = tuple[tuple[str, ...], dict[str, str]]  # extra CLI arguments, extra environment
ON_ENGINE_ONE: Run = ((), {})


def _start(repo: Repo, report: Path, run: Run) -> subprocess.Popen[str]:
    args, env = run
    return subprocess.Popen(
        [sys.executable, "-m", "prebuild", "build", "--force", "--plain", "--report", str(report)]
        + list(args),
        cwd=repo.root,
        env=repo.env(**env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def race_rounds(repo: Repo, tmp_path: Path, runs: tuple[Run, Run]) -> set[str]:
    """ROUNDS rounds of two concurrent forced builds; returns every key ref they reported."""
    refs, retried = set(), 0
    for round_no in range(ROUNDS):
        repo.edit("examples/images/base/scripts/check.sh", f"#!/bin/sh\necho round {round_no}\n")
        repo.edit("examples/images/app/src/main.txt", f"main, round {round_no}\n")
        keys = repo.keys()
        procs = [_start(repo, tmp_path / f"r{round_no}-{i}.json", runs[i]) for i in (0, 1)]
        outputs = [proc.communicate(timeout=600) for proc in procs]
        for i, (proc, (_, stderr)) in enumerate(zip(procs, outputs, strict=True)):
            report = json.loads((tmp_path / f"r{round_no}-{i}.json").read_text())
            failed = [(x["name"], x["reason"]) for x in report["images"] if x["status"] != "built"]
            assert proc.returncode == 0, f"round {round_no} run {i}: {failed}\n{stderr[-1500:]}"
            images = {image["name"]: image for image in report["images"]}
            assert set(images) == ALL
            for name, image in images.items():
                assert image["status"] == "built", (round_no, i, image)
                assert image["key"] == keys[name]  # the report names the key it built
                assert image["ref"] in image["pushed"]
                refs.add(image["ref"])
                retried += image["reason"].startswith("export retried")
    print(f"{retried} of {ROUNDS * 2 * len(ALL)} image builds lost a race and were run again")
    return refs


def check_pull_and_cache(stack: Stack, repo: Repo, refs: set[str]) -> None:
    """Every key tag pulls into a wiped engine; a forced build there imports the cache."""
    wipe_engine(stack.docker)
    for ref in sorted(refs):
        stack.docker.image.pull(ref, quiet=True)
    wipe_engine(stack.docker)
    _, report = repo.build("--force")
    for image in report["images"]:
        assert image["status"] == "built"
        assert image["cache_steps"] and image["cache_hits"] == image["cache_steps"], image


def test_two_forced_builds_at_once_on_one_engine(stack: Stack, tmp_path: Path, unique) -> None:
    repo = make_example_repo(tmp_path, stack, unique)
    refs = race_rounds(repo, tmp_path, (ON_ENGINE_ONE, ON_ENGINE_ONE))
    assert len(refs) == 3 * ROUNDS + 1  # base, toolchain and app are new each round
    check_pull_and_cache(stack, repo, refs)


def test_two_forced_builds_at_once_on_two_engines(
    stack: Stack, second_engine: SecondEngine, tmp_path: Path, unique
) -> None:
    repo = make_example_repo(tmp_path, stack, unique)
    on_two: Run = (
        ("--context", second_engine.context),
        {"DOCKER_CONFIG": str(second_engine.config)},
    )
    refs = race_rounds(repo, tmp_path, (ON_ENGINE_ONE, on_two))
    assert len(refs) == 3 * ROUNDS + 1
    check_pull_and_cache(stack, repo, refs)
