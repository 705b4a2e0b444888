"""A second build machine, named by docker context: the build runs there, pushes, and its
registry cache serves a build on the first engine."""

from __future__ import annotations

from pathlib import Path

from tests.integration.conftest import SecondEngine, Stack, wipe_engine
from tests.integration.example_repo import make_example_repo

ALL = {"base", "toolchain", "app", "docs-lint"}


def test_build_through_a_context_runs_on_that_engine(
    stack: Stack, second_engine: SecondEngine, tmp_path: Path, unique: str
) -> None:
    wipe_engine(stack.docker)
    wipe_engine(second_engine.docker)
    repo = make_example_repo(tmp_path, stack, unique)
    on_two = {"DOCKER_CONFIG": str(second_engine.config)}

    _, report = repo.build("--context", second_engine.context, **on_two)
    refs = {image["name"]: image["ref"] for image in report["images"]}
    assert {i["name"]: i["status"] for i in report["images"]} == dict.fromkeys(ALL, "built")
    for ref in refs.values():
        assert second_engine.docker.image.exists(ref), f"{ref} not on engine 2"
        assert not stack.docker.image.exists(ref), f"{ref} built on engine 1"
    assert {n: i["status"] for n, i in repo.plan().items()} == dict.fromkeys(ALL, "present")

    # --builder with a context's own builder (buildx refuses it as --builder) works the same
    _, again = repo.build("--builder", second_engine.context, "--force", "app", **on_two)
    assert again["images"][0]["status"] == "built"
    assert not stack.docker.image.exists(refs["app"])

    # engine 1, nothing local: every step comes from the registry cache engine 2 exported
    _, first = repo.build("--force")
    for image in first["images"]:
        assert image["status"] == "built"
        assert image["cache_steps"] and image["cache_hits"] == image["cache_steps"], image
        assert stack.docker.image.exists(image["ref"])
