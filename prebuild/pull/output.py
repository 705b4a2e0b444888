"""How `prebuild pull` reports to the CI: text, shell exports, GitHub env files, JSON."""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Mapping, Sequence

from prebuild.errors import UsageError
from prebuild.outfiles import Target
from prebuild.pull.hook import PullResult


def _suffix(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9]", "_", name).upper()


def variables(results: Sequence[PullResult]) -> dict[str, str]:
    """Per image PREBUILD_<NAME>_{IMAGE,REF,KEY,OUTCOME}; with one image also the unsuffixed
    names and DOCKER_BUILD_CACHE_ARG, for CI build lines like
    `docker buildx build --tag=$CONTAINER_NAME $DOCKER_BUILD_CACHE_ARG .`"""
    values: dict[str, str] = {}
    for r in results:
        s = _suffix(r.name)
        values[f"PREBUILD_{s}_IMAGE"] = r.local_name
        values[f"PREBUILD_{s}_REF"] = r.ref or ""
        values[f"PREBUILD_{s}_KEY"] = r.key or ""
        values[f"PREBUILD_{s}_OUTCOME"] = r.outcome
    if len(results) == 1:
        r = results[0]
        values.update(
            PREBUILD_IMAGE=r.local_name,
            PREBUILD_REF=r.ref or "",
            PREBUILD_KEY=r.key or "",
            PREBUILD_OUTCOME=r.outcome,
            DOCKER_BUILD_CACHE_ARG=" ".join(r.cache_args),
        )
    return values


def text(results: Sequence[PullResult]) -> list[str]:
    lines = []
    for r in results:
        line = f"{r.name}: {r.outcome} as {r.local_name} in {r.seconds:.1f}s"
        if r.ref:
            line += f" ({r.ref})"
        if r.reason:
            line += f" — {r.reason}"
        lines.append(line)
        if r.outcome == "cache-args":
            lines.append("  " + " ".join(r.cache_args))
    return lines


def shell(results: Sequence[PullResult]) -> list[str]:
    return [f"export {k}={shlex.quote(v)}" for k, v in variables(results).items()]


def _github_files(env: Mapping[str, str]) -> tuple[Target, Target | None]:
    env_file, summary = env.get("GITHUB_ENV"), env.get("GITHUB_STEP_SUMMARY")
    if not env_file:
        raise UsageError("--format github needs GITHUB_ENV (set by GitHub Actions)")
    env_target = Target(env_file, "env GITHUB_ENV", append=True)
    summary_target = Target(summary, "env GITHUB_STEP_SUMMARY", append=True) if summary else None
    return env_target, summary_target


def check(fmt: str, env: Mapping[str, str]) -> None:
    """Before pulling: a `--format github` run must be able to write its files (exit 2)."""
    if fmt == "github":
        for target in _github_files(env):
            if target is not None:
                target.check()


def github(results: Sequence[PullResult], env: Mapping[str, str]) -> None:
    """Append NAME=VALUE lines to $GITHUB_ENV and a table to $GITHUB_STEP_SUMMARY, each file in
    one append (a concurrent step's lines never land in the middle of ours)."""
    env_target, summary_target = _github_files(env)
    lines = []
    for name, value in variables(results).items():
        if "\n" in value or "\r" in value:  # would forge further NAME=VALUE lines
            value = value.replace("\r", " ").replace("\n", " ")
        lines.append(f"{name}={value}\n")
    env_target.write("".join(lines))
    if summary_target is not None:
        table = ["| image | outcome | local name | time | ref |\n|---|---|---|---|---|\n"]
        for r in results:
            row = [f"`{r.name}`", r.outcome, f"`{r.local_name}`", f"{r.seconds:.1f}s", r.ref or ""]
            table.append("| " + " | ".join(row) + " |\n")
            if r.reason:
                table.append(f"\n{r.name}: {r.reason}\n\n")
        summary_target.write("".join(table))


def json_lines(results: Sequence[PullResult]) -> list[str]:
    return [json.dumps(r.as_json(), sort_keys=True) for r in results]


def emit(results: Sequence[PullResult], fmt: str, env: Mapping[str, str]) -> list[str]:
    """Lines for stdout (github also writes its files, and echoes text)."""
    if fmt == "shell":
        return shell(results)
    if fmt == "json":
        return json_lines(results)
    if fmt == "github":
        github(results, env)
    return text(results)
