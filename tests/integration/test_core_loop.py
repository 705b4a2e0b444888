"""The nightly job on the real stack: keys, plan, build with registry (and S3) cache, push."""

from __future__ import annotations

import requests

from prebuild.engine import buildx as docker
from prebuild.engine.buildx import BuildRequest
from prebuild.engine.platforms import host_platform
from tests.integration.cachecheck import s3_client
from tests.integration.conftest import Stack, write
from tests.integration.example_repo import DEMO_BUCKET, Repo, make_example_repo

ALL = {"base", "toolchain", "app", "docs-lint"}


def _tag_exists(registry_repo: str, tag: str) -> bool:
    host, _, repo = registry_repo.partition("/")
    response = requests.head(
        f"http://{host}/v2/{repo}/manifests/{tag}",
        headers={
            "Accept": "application/vnd.oci.image.index.v1+json,"
            "application/vnd.oci.image.manifest.v1+json,"
            "application/vnd.docker.distribution.manifest.v2+json"
        },
        timeout=10,
    )
    return response.status_code == 200


def test_first_build_pushes_all_then_nothing_to_do(stack: Stack, tmp_path, unique) -> None:
    repo = make_example_repo(tmp_path, stack, unique)
    assert {n: i["status"] for n, i in repo.plan().items()} == dict.fromkeys(ALL, "missing")

    _, report = repo.build()
    assert {i["name"]: i["status"] for i in report["images"]} == dict.fromkeys(ALL, "built")
    for image in report["images"]:
        name, tag = image["ref"].rsplit(":", 1)
        assert _tag_exists(name, tag) and _tag_exists(name, "latest")
        assert _tag_exists(name, "buildcache") == (image["name"] != "app")
    # app's cache went to S3 (s3-sync): BuildKit's cache manifest, in this test's prefix
    head = s3_client(stack).head_object(Bucket=DEMO_BUCKET, Key=f"{unique}/buildkit/manifests/app")
    assert head["ContentLength"] > 0

    proc, again = repo.build()
    assert {i["name"]: i["status"] for i in again["images"]} == dict.fromkeys(ALL, "skipped")
    assert "$> docker buildx build" not in proc.stderr
    assert {n: i["status"] for n, i in repo.plan().items()} == dict.fromkeys(ALL, "present")


def test_pushed_image_carries_key_and_oci_labels(stack: Stack, tmp_path, unique) -> None:
    repo = make_example_repo(tmp_path, stack, unique)
    _, report = repo.build("app")
    ref = report["images"][0]["ref"]
    stack.docker.image.pull(ref, quiet=True)
    labels = stack.docker.image.inspect(ref).config.labels
    assert labels["dev.prebuild.key"] == report["images"][0]["key"]
    assert labels["org.opencontainers.image.revision"]
    assert labels["org.opencontainers.image.created"].endswith("Z")


def test_keys_change_exactly_when_the_image_could(stack: Stack, tmp_path, unique) -> None:
    repo = make_example_repo(tmp_path, stack, unique)
    before = repo.keys()

    # files no COPY of a built stage matches: ignored by .dockerignore, unused stage, later stage
    repo.edit("examples/images/base/scripts/NOTES.md", "edited notes\n")
    repo.edit("examples/images/base/scripts/draft-wip.sh", "#!/bin/sh\necho edited\n")
    repo.edit("examples/images/app/debug-only.txt", "edited\n")
    repo.edit("examples/images/app/config/debug.conf", "mode=debug-edited\n")
    repo.edit("examples/images/docs-lint/CHANGELOG.txt", "edited\n")
    repo.edit("README.txt", "a file outside every context\n")
    assert repo.keys() == before

    # a COPY'd file: that image and the image FROM it, nothing else
    repo.edit("examples/images/base/scripts/check.sh", "#!/bin/sh\necho checks v2\n")
    after_copy = repo.keys()
    changed = {n for n in ALL if after_copy[n] != before[n]}
    assert changed == {"base", "toolchain"}

    # a re-included file (.dockerignore negation) counts too
    repo.edit("examples/images/base/scripts/keep-wip.sh", "#!/bin/sh\necho kept v2\n")
    assert {n for n in ALL if repo.keys()[n] != after_copy[n]} == {"base", "toolchain"}

    # a build arg used in a COPY path: that image only
    snapshot = repo.keys()
    repo.set_config('build_args = { VARIANT = "release" }', 'build_args = { VARIANT = "debug" }')
    assert {n for n in ALL if repo.keys()[n] != snapshot[n]} == {"app"}


def test_new_base_under_the_same_tag_changes_dependent_keys(stack: Stack, tmp_path, unique) -> None:
    base_ref = f"{stack.registry}/{unique}-seed/busybox:stable"

    def push_base(marker: str) -> None:
        context = tmp_path / f"base-{marker}"
        write(
            context / "Dockerfile", f"FROM {stack.base_image}\nRUN echo {marker} > /base-marker\n"
        )
        docker.build(
            BuildRequest(
                context=context, dockerfile=context / "Dockerfile", tags=(base_ref,), push=True
            )
        )

    push_base("one")
    repo = make_example_repo(tmp_path, stack, unique, base=base_ref)
    before = repo.keys()
    push_base("two")
    after = repo.keys()
    assert {n for n in ALL if after[n] != before[n]} == ALL  # toolchain through its sibling base


def test_wiped_engine_rebuild_reuses_registry_cache(stack: Stack, tmp_path, unique) -> None:
    repo = make_example_repo(tmp_path, stack, unique)
    repo.build("docs-lint")
    stack.docker.buildx.prune(all=True)
    for image in stack.docker.image.list(all=True):
        stack.docker.image.remove(image, force=True)

    repo.edit("examples/images/docs-lint/lint.sh", '#!/bin/sh\necho "lint v2 ok"\n')
    _, report = repo.build("docs-lint")
    (image,) = report["images"]
    assert image["status"] == "built"
    # rules stage (COPY rules, RUN ls) comes from the registry cache; the lint stage re-runs
    assert (image["cache_hits"], image["cache_steps"]) == (2, 4)


def _add_broken_images(repo: Repo) -> None:
    repo.edit(
        "examples/images/broken/Dockerfile",
        "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nRUN echo about to fail && exit 3\n",
    )
    repo.edit("examples/images/broken-child/Dockerfile", "FROM broken\nRUN echo never\n")
    with open(repo.root / "prebuild.toml", "a") as config:
        config.write(
            '\n[[image]]\nname = "broken"\ncontext = "examples/images/broken"\n'
            '\n[[image]]\nname = "broken-child"\ncontext = "examples/images/broken-child"\n'
        )


def test_failing_image_blocks_dependents_only(stack: Stack, tmp_path, unique) -> None:
    repo = make_example_repo(tmp_path, stack, unique)
    _add_broken_images(repo)
    proc, report = repo.build("--jobs", "2", check=False)
    assert proc.returncode == 1
    statuses = {i["name"]: i["status"] for i in report["images"]}
    assert statuses == {
        **dict.fromkeys(ALL, "built"),
        "broken": "failed",
        "broken-child": "blocked",
    }
    broken = next(i for i in report["images"] if i["name"] == "broken")
    assert "exit code: 3" in "\n".join(broken["error_tail"]) + broken["reason"]
    name, tag = broken["ref"].rsplit(":", 1)
    assert not _tag_exists(name, tag)
    assert not _tag_exists(name, "latest")
    child = next(i for i in report["images"] if i["name"] == "broken-child")
    assert "broken" in child["reason"]


def test_explain_names_every_input(stack: Stack, tmp_path, unique) -> None:
    repo = make_example_repo(tmp_path, stack, unique)
    out = repo.run("explain", "base").stdout
    assert "examples/images/base/scripts/check.sh" in out
    assert "examples/images/base/scripts/keep-wip.sh" in out
    assert "draft-wip.sh" not in out and "NOTES.md" not in out
    assert f"base       {stack.base_image}  {host_platform()}=sha256:" in out
