"""`prebuild plan`, `explain` and `build` through click: exact output, JSON and exit codes."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from prebuild.cli import cli
from prebuild.cli.build import build
from prebuild.cli.commands import ALL
from prebuild.cli.explain import explain
from prebuild.cli.plan import plan
from prebuild.plan.planner import Plan, make_plan
from tests.unit.build.test_scheduler import Recorder
from tests.unit.plan.test_planner import UNREACHABLE, planned, publish, write_repo
from tests.unit.registry.test_client import multiarch

OFFLINE = "offline: registry not asked; key is provisional"
NAMES = ("base", "app", "tool", "other")


def invoke(*args: str) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of `prebuild ARGS` through the click group."""
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def offline_repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Plan:
    """The four-image repo on an unreachable registry, as the cwd; its offline plan."""
    project = write_repo(tmp_path, UNREACHABLE)
    monkeypatch.chdir(tmp_path)
    return make_plan(project, offline=True)


@pytest.fixture
def recorder(monkeypatch: pytest.MonkeyPatch) -> Recorder:
    found = Recorder()
    monkeypatch.setattr("prebuild.engine.buildx.build", found)
    monkeypatch.setattr("prebuild.build.revision.revision", lambda repo: None)
    monkeypatch.setattr("prebuild.build.revision.source_url", lambda repo: None)
    monkeypatch.setattr("prebuild.build.run.builder_driver", lambda builder: "docker")
    monkeypatch.setattr(
        "prebuild.engine.capability.builder_platforms", lambda builder: ("linux/amd64",)
    )
    return found


def test_registered() -> None:
    assert {plan, explain, build} <= set(ALL)


def test_plan_offline_json(offline_repo: Plan) -> None:
    code, out, err = invoke("plan", "--offline", "--json")
    assert (code, err) == (0, "")
    doc = json.loads(out)
    assert list(doc) == ["images"]
    keys = ["name", "key", "ref", "platforms", "status", "reason", "inputs", "bases"]
    for entry in doc["images"]:
        assert list(entry) == [*keys, "depends_on", "provisional"]
        assert (entry["status"], entry["reason"], entry["provisional"]) == (
            "unknown",
            OFFLINE,
            True,
        )
    assert [e["name"] for e in doc["images"]] == list(NAMES)
    assert doc == offline_repo.as_json()
    app = doc["images"][1]
    assert app["ref"] == f"{UNREACHABLE}/ci/app:{app['key'][:24]}"
    assert (app["inputs"], app["bases"], app["depends_on"]) == (
        ["ci/app/app.sh"],
        ["base"],
        ["base"],
    )


def test_plan_offline_table(offline_repo: Plan) -> None:
    code, out, _ = invoke("plan", "--offline")
    assert code == 0
    assert out.splitlines() == [
        "image  status   tag                       reason",
        *(f"{p.name:<5}  unknown  {p.tag}  {OFFLINE}" for p in offline_repo.images),
    ]


def test_plan_matrix_offline_lists_every_image_in_waves(offline_repo: Plan) -> None:
    code, out, _ = invoke("plan", "--offline", "--matrix")
    assert code == 0
    assert json.loads(out) == {
        "include": [
            {"image": "base", "wave": 0},
            {"image": "other", "wave": 0},
            {"image": "app", "wave": 1},
            {"image": "tool", "wave": 1},
        ]
    }
    _, out, _ = invoke("plan", "--offline", "--matrix", "app")
    assert json.loads(out) == {
        "include": [{"image": "base", "wave": 0}, {"image": "app", "wave": 1}]
    }


def test_plan_matrix_skips_present_images(fake, tmp_path, monkeypatch) -> None:
    multiarch(fake, "seed/busybox", "stable")
    project = write_repo(tmp_path, fake.host)
    publish(fake, planned(project)[0], "base", "other")
    monkeypatch.chdir(tmp_path)
    code, out, _ = invoke("plan", "--matrix")
    assert code == 0
    assert json.loads(out) == {"include": [{"image": n, "wave": 0} for n in ("app", "tool")]}
    _, out, _ = invoke("plan", "--matrix", "--force")
    assert [e["image"] for e in json.loads(out)["include"]] == ["base", "other", "app", "tool"]


def test_explain_offline_lines(offline_repo: Plan, tmp_path: Path) -> None:
    code, out, _ = invoke("explain", "--offline", "app")
    assert code == 0
    app, base = offline_repo.by_name()["app"], offline_repo.by_name()["base"]
    dockerfile = hashlib.sha256((tmp_path / "ci/app/Dockerfile").read_bytes()).hexdigest()
    script = hashlib.sha256((tmp_path / "ci/app/app.sh").read_bytes()).hexdigest()
    assert out.splitlines() == [
        "image      app",
        f"ref        {UNREACHABLE}/ci/app:{app.tag}",
        f"key        {app.key}  (provisional: bases not resolved)",
        f"dockerfile ci/app/Dockerfile  sha256:{dockerfile}",
        "target     (last stage)",
        "platforms  linux/amd64",
        f"base       base  -> image 'base' key {base.key}",
        "context    sources: 1 file(s)",
        f"  input    ci/app/app.sh  x  sha256:{script}",
    ]


def test_explain_unknown_name_is_a_usage_error(offline_repo, tmp_path, run_main) -> None:
    code, out, err = run_main(["explain", "--offline", "ap"])
    assert (code, out) == (2, "")
    assert err == (
        f"error: no image named 'ap' in {tmp_path / 'prebuild.toml'}\nhint: did you mean 'app'?\n"
    )


def test_build_refuses_in_a_pull_request(offline_repo, recorder, monkeypatch, run_main) -> None:
    monkeypatch.setenv("GITHUB_EVENT_NAME", "pull_request")
    code, out, err = run_main(["build"])
    assert (code, out) == (2, "")
    assert err == (
        "error: refusing to push images or export cache from an untrusted run "
        "(GitHub Actions event 'pull_request')\n"
        "hint: runners should use `prebuild pull` (read-only); pass --allow-untrusted only "
        "if this pipeline cannot run code from outside contributors\n"
    )
    assert recorder.requests == []


def test_build_dry_run_is_allowed_in_a_pull_request(
    fake, tmp_path, recorder, monkeypatch, run_main
):
    multiarch(fake, "seed/busybox", "stable")
    project = write_repo(tmp_path, fake.host)
    first, _ = planned(project)
    publish(fake, first, "other")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GITHUB_EVENT_NAME", "pull_request")
    code, out, _ = run_main(["build", "--dry-run", "--plain"])
    assert code == 0
    assert out.splitlines() == [
        f"{p.name}\t{'skipped' if p.name == 'other' else 'planned'}\t{p.ref}" for p in first.images
    ]
    assert recorder.requests == []


def test_build_reports_failures_and_exits_1(
    fake, tmp_path, recorder, monkeypatch, run_main
) -> None:
    multiarch(fake, "seed/busybox", "stable")
    project = write_repo(tmp_path, fake.host)
    refs = {p.name: p.ref for p in planned(project)[0].images}
    monkeypatch.chdir(tmp_path)
    recorder.fail.add("base")
    code, out, _ = run_main(["build", "--jobs", "1", "--plain", "--report", "r.json"])
    assert code == 1
    assert out.splitlines() == [
        "base\tfailed\tdocker buildx build failed: base broke",
        "app\tblocked\tblocked: base failed",
        "tool\tblocked\tblocked: base failed",
        f"other\tbuilt\t{refs['other']}",
    ]
    summary = json.loads((tmp_path / "r.json").read_text())["summary"]
    assert summary == {"built": 1, "skipped": 0, "failed": 1, "blocked": 2}


def test_build_s3_cache_on_the_docker_driver_is_refused(
    fake, tmp_path, recorder, monkeypatch, run_main
):
    s3 = '[cache]\nbackend = "s3"\n[cache.s3]\nbucket = "acme-ci-cache"\n'
    write_repo(tmp_path, fake.host, settings=s3)
    monkeypatch.chdir(tmp_path)
    code, out, err = run_main(["build"])
    assert (code, out) == (2, "")
    assert err.startswith("error: at key 'cache.backend': cache backend 's3' needs a BuildKit")
    assert "--driver docker-container" in err and 'backend = "s3-sync"' in err
    assert recorder.requests == [] and fake.log == []  # nothing planned, nothing built
