"""The nightly a maintainer reads: why each image rebuilt, the history, HTML and metrics.

Every night runs on a "wiped runner": a fresh checkout in a new directory and an engine
without images or build cache, so whatever the next night knows came from the registry.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import requests
from prometheus_client.parser import text_string_to_metric_families

from prebuild.engine import buildx as docker
from prebuild.engine.buildx import BuildRequest
from prebuild.engine.platforms import host_platform
from tests.conftest import REPO_ROOT
from tests.integration.conftest import Stack, wipe_engine, write
from tests.integration.example_repo import Repo, make_example_repo
from tests.unit.report.test_html import dots

CHECK = "examples/images/base/scripts/check.sh"
RULE = "examples/images/docs-lint/rules/{n}.txt"
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip


def night(tmp_path: Path, stack: Stack, unique: str, n: int, edits: dict[str, str]) -> Repo:
    """A fresh checkout of the example set with the edits so far, on an empty engine."""
    wipe_engine(stack.docker)
    repo = make_example_repo(tmp_path / f"night{n}", stack, unique)
    repo.set_config("keep = 3", "keep = 5")
    for path, text in edits.items():
        repo.edit(path, text)
    return repo


def nightly(repo: Repo, tmp_path: Path, *, metrics: Path | None = None) -> dict:
    """infra/nightly as a schedule runs it: build, report, summary, metrics, then gc."""
    report, summary = tmp_path / "report.json", tmp_path / "summary.md"
    env = repo.env(
        PREBUILD=f"{sys.executable} -m prebuild",
        PREBUILD_REPORT=str(report),
        GITHUB_STEP_SUMMARY=str(summary),
        PREBUILD_METRICS=str(metrics or ""),
    )
    proc = subprocess.run(
        [str(REPO_ROOT / "infra" / "nightly")],
        cwd=repo.root, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "warning: " not in proc.stderr, proc.stderr[-3000:]
    return dict(json.loads(report.read_text()))


def why(report: dict) -> dict[str, list[str]]:
    return {i["name"]: i["why"] for i in report["images"]}


def chromium(page: Path, out: Path, *flags: str) -> str:
    proc = subprocess.run(
        ["chromium", *CHROMIUM_FLAGS, f"--user-data-dir={out / 'profile'}", *flags, page.as_uri()],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


def test_five_wiped_nightlies_say_why_and_keep_their_history(
    stack: Stack, tmp_path: Path, unique: str
) -> None:
    edits: dict[str, str] = {}
    first = nightly(night(tmp_path, stack, unique, 1, edits), tmp_path)
    assert {i["name"]: i["status"] for i in first["images"]} == dict.fromkeys(
        ("base", "toolchain", "app", "docs-lint"), "built"
    )

    # night 2: one input of base edited; base and the image FROM it rebuild, and say why
    edits[CHECK] = "#!/bin/sh\necho checks v2\n"
    repo = night(tmp_path, stack, unique, 2, edits)
    second = nightly(repo, tmp_path)
    assert why(second) == {
        "base": [f"{CHECK} changed"],
        "toolchain": ["base image base rebuilt"],
        "app": [],
        "docs-lint": [],
    }
    assert {i["name"]: i["status"] for i in second["images"]} == {
        "base": "built", "toolchain": "built", "app": "skipped", "docs-lint": "skipped",
    }  # fmt: skip
    assert f"rebuilt: {CHECK} changed" in (tmp_path / "summary.md").read_text()

    # nights 3-5: a lint rule added each night
    for n in (3, 4, 5):
        edits[RULE.format(n=n)] = f"rule {n}\n"
        repo = night(tmp_path, stack, unique, n, edits)
        metrics = tmp_path / "textfile" / "prebuild.prom"
        report = nightly(repo, tmp_path, metrics=metrics)
        assert why(report)["docs-lint"] == [f"{RULE.format(n=n)} added"]
        assert {name for name, w in why(report).items() if w} == {"docs-lint"}

    # the last night's metrics, read by Prometheus's own parser
    families = {f.name: f for f in text_string_to_metric_families(metrics.read_text())}
    built = [s for s in families["prebuild_images"].samples if s.labels["status"] == "built"]
    assert built[0].value == 1
    storage = {s.labels["backend"]: s.value for s in families["prebuild_storage_bytes"].samples}
    assert storage["registry"] > 0
    assert storage["s3"] > 0  # app's s3-sync cache, measured in its own prefix
    assert families["prebuild_last_success_timestamp_seconds"].samples[0].value > 0

    # a sixth wiped runner renders the history: five nights, five points per trend
    repo = night(tmp_path, stack, unique, 6, edits)
    page = tmp_path / "report.html"
    repo.run("report", "--html", str(page))
    dom = chromium(page, tmp_path, "--dump-dom")
    shot = tmp_path / "shot.png"
    chromium(page, tmp_path, f"--screenshot={shot}", "--window-size=1200,1500")
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000
    rows = re.findall(r'<tr data-image="([^"]+)"', dom)
    assert rows == ["base", "toolchain", "app", "docs-lint"]
    assert re.search(r'id="plot-storage"[^>]*>\s*<svg', dom)
    assert re.search(r'id="plot-duration"[^>]*>\s*<svg', dom)
    assert dots(dom, "duration") == [5, 5]
    assert dots(dom, "rebuilt") == [5, 5]
    assert dots(dom, "storage") == [5, 5]  # registry, and app's S3 cache
    assert dots(dom, "cache") == [5]
    assert f"rebuilt: {RULE.format(n=5)} added" in dom


def _platform_digest(ref: str) -> str:
    """What the tag's image for this machine's platform is, asked of the registry directly."""
    host, _, rest = ref.partition("/")
    name, _, tag = rest.rpartition(":")
    accept = (
        "application/vnd.oci.image.index.v1+json,application/vnd.oci.image.manifest.v1+json,"
        "application/vnd.docker.distribution.manifest.v2+json,"
        "application/vnd.docker.distribution.manifest.list.v2+json"
    )
    resp = requests.get(
        f"http://{host}/v2/{name}/manifests/{tag}", headers={"Accept": accept}, timeout=10
    )
    body = resp.json()
    if "manifests" not in body:
        return resp.headers["Docker-Content-Digest"]
    os_name, arch = host_platform().split("/")[:2]
    for entry in body["manifests"]:
        platform = entry.get("platform") or {}
        if platform.get("os") == os_name and platform.get("architecture") == arch:
            return str(entry["digest"])
    raise AssertionError(f"{ref} has no {os_name}/{arch} image")


def test_explain_since_names_the_base_that_moved_and_both_digests(
    stack: Stack, tmp_path: Path, unique: str
) -> None:
    base_ref = f"{stack.registry}/{unique}-seed/busybox:stable"

    def push_base(marker: str) -> str:
        context = tmp_path / f"base-{marker}"
        write(context / "Dockerfile", f"FROM {stack.base_image}\nRUN echo {marker} > /marker\n")
        docker.build(
            BuildRequest(
                context=context, dockerfile=context / "Dockerfile", tags=(base_ref,), push=True
            )
        )
        return _platform_digest(base_ref)

    old = push_base("one")
    repo = make_example_repo(tmp_path, stack, unique, base=base_ref)
    repo.build()
    new = push_base("two")
    assert new != old

    out = repo.run("explain", "base", "--since", "latest").stdout
    assert f"base {base_ref} moved to {new} (was {old})" in out
    assert "changes    1\n" in out

    _, report = repo.build()  # the nightly says it too; base's dependents say why as well
    assert why(report)["base"] == [f"base {base_ref} moved to {new} (was {old})"]
    assert why(report)["toolchain"] == ["base image base rebuilt"]
    for name in ("app", "docs-lint"):  # FROM the same base
        assert why(report)[name] == [f"base {base_ref} moved to {new} (was {old})"]
