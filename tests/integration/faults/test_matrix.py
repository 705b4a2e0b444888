"""The fault matrix: {plan, pull, build, gc, s3-sync export/import} x injected faults.

Every cell writes down what a user must see: the fallback used and reported, `unknown` with a
reason and a failing exit code, a transient fault retried then succeeded, nothing deleted
from a partial listing, no cache manifest naming a missing blob; and always within the
command's deadline (generous bounds: the machine is shared).
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from prebuild import deadline as deadlines
from prebuild.cache.s3 import sync
from prebuild.cache.s3.client import make_client
from prebuild.cache.s3.layout import S3CacheError
from prebuild.model import S3Settings
from tests.integration.cachecheck import check_s3_cache, objects, s3_client
from tests.integration.faults.conftest import World, gc_project, seed_gc

SLACK = 3.0  # seconds over a deadline a cell may take (process start, a loaded machine)

# fault -> (proxy settings, does the command still succeed?)
PERSISTENT = {
    "stall": {},
    "trickle": {"pace": 0.2},
    "reset": {},
    "http:500": {},
    "truncate": {},
}
TRANSIENT = {  # the first requests fail, then the registry recovers
    "http:503": {"times": 2},
    "http:429": {"times": 1, "retry_after": 1},
    "delay": {"delay": 0.5},
}
REASON = {  # what the reason says for a persistent fault
    "stall": "timed out",
    "trickle": "timed out",
    "reset": "",  # reset or failed, depending on where the connection dies
    "http:500": "HTTP 500",
    "truncate": "",
}


# -- plan --------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", sorted(PERSISTENT))
def test_plan_under_a_persistent_fault_is_unknown_with_reason_and_exits_1(fault: World, kind):
    fault.registry.set(kind, **PERSISTENT[kind])
    done = fault.run("plan", "app", "--json", "--deadline", "3")
    assert done.seconds < 3 + SLACK
    assert done.code == 1, done.stderr
    (image,) = done.json()["images"]
    assert image["status"] == "unknown"
    assert REASON[kind] in image["reason"] and image["reason"]
    assert "status unknown for 1 image(s): app" in done.stderr


@pytest.mark.parametrize("kind", sorted(TRANSIENT))
def test_plan_retries_a_transient_fault_then_succeeds(fault: World, kind):
    fault.registry.set(kind, **TRANSIENT[kind])
    done = fault.run("plan", "app", "--json", "--deadline", "20")
    assert done.code == 0, done.stderr
    assert [i["status"] for i in done.json()["images"]] == ["present"]
    assert fault.registry.faulted >= 1  # the fault really happened


# -- pull (the runner hook) --------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["stall", "trickle", "reset", "http:500"])
def test_pull_falls_back_within_timeout_plus_2s(fault: World, kind):
    fault.registry.set(kind, **PERSISTENT[kind])
    done = fault.run("pull", "app", "--fallback", "cache-args", "--timeout", "3",
                     "--format", "json")  # fmt: skip
    assert done.seconds < 3 + 2, f"hook took {done.seconds:.1f}s"
    assert done.code == 0, done.stderr  # never fail a job that can still build
    result = done.json()  # one JSON object per image
    assert result["outcome"] == "cache-args" and result["reason"]
    assert any(a.startswith("--cache-from=") for a in result["cache_args"])


def test_pull_retries_then_pulls(fault: World):
    fault.registry.set("http:503", times=2)
    done = fault.run("pull", "app", "--fallback", "fail", "--timeout", "20", "--format", "json")
    assert done.code == 0, done.stderr
    assert done.json()["outcome"] == "pulled"


# -- build -------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["stall", "reset"])
def test_build_never_reports_success_for_what_it_could_not_check(fault: World, kind, tmp_path):
    before = fault.tags("app")
    fault.registry.set(kind)
    report = tmp_path / "r.json"
    done = fault.run("build", "app", "--plain", "--deadline", "5", "--report", str(report))
    assert done.seconds < 5 + SLACK + 2
    assert done.code == 1
    assert "\tbuilt\t" not in done.stdout and "\tskipped\t" not in done.stdout
    fault.registry.set("pass")
    assert fault.tags("app") == before  # nothing new pushed


def test_build_retries_then_finds_the_image_present(fault: World):
    fault.registry.set("http:503", times=2)
    done = fault.run("build", "app", "--plain", "--deadline", "30")
    assert done.code == 0, done.stderr
    assert "app\tskipped\t" in done.stdout


# -- gc ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["stall", "truncate", "reset"])
def test_gc_deletes_nothing_from_a_partial_listing(fault: World, kind, tmp_path: Path):
    name = f"gc-{kind.replace(':', '')}"
    tags = seed_gc(fault, name)
    project = gc_project(fault, tmp_path, name)
    fault.registry.set(kind)
    done = fault.run("gc", "--apply", "--keep", "1", "--deadline", "3", cwd=project)
    assert done.seconds < 3 + SLACK
    assert done.code == 1 and "gc failed" in done.stderr
    assert fault.tags(name) == sorted(tags)


def test_gc_retries_then_applies_the_policy(fault: World, tmp_path: Path):
    tags = seed_gc(fault, "gc-transient")
    project = gc_project(fault, tmp_path, "gc-transient")
    fault.registry.set("http:503", times=2)
    done = fault.run("gc", "--apply", "--keep", "1", "--deadline", "30", cwd=project)
    assert done.code == 0, done.stderr
    assert fault.tags("gc-transient") == [tags[-1]]  # the newest kept, the others deleted


# -- s3-sync export and import -----------------------------------------------------------------


@pytest.fixture(scope="module")
def layout(world: World, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real BuildKit `type=local` cache export of the world's app image."""
    dest = tmp_path_factory.mktemp("layout") / "cache"
    world.stack.docker.buildx.build(
        world.repo / "app", cache_to=f"type=local,dest={dest},mode=max", progress=False
    )
    return dest


def settings(world: World, prefix: str, via_proxy: bool = True) -> S3Settings:
    endpoint = f"http://{world.s3.address}" if via_proxy else world.stack.s3_endpoint
    return S3Settings(bucket=world.bucket, endpoint_url=endpoint, use_path_style=True,
                      prefix=prefix)  # fmt: skip


def complete_or_absent(world: World, prefix: str) -> bool:
    """True when the manifest exists (then every blob it names is there, verified);
    False when there is none. Never a manifest naming a missing blob."""
    client = s3_client(world.stack)
    if f"{prefix}manifests/app" not in objects(client, world.bucket):
        return False
    check_s3_cache(client, world.bucket, prefix, "app")
    return True


@pytest.mark.parametrize("kind", ["stall", "reset", "trickle"])
def test_s3_export_under_a_fault_fails_in_time_and_writes_no_manifest(fault, layout, kind):
    prefix = f"export-{kind}/"
    fault.s3.set(kind, **PERSISTENT.get(kind, {}))
    started = time.monotonic()
    with deadlines.scope(deadlines.Deadline(3, "build")), pytest.raises(S3CacheError):
        s3 = settings(fault, prefix)
        sync.export_to_s3(layout, s3, "app", client=make_client(s3))
    assert time.monotonic() - started < 3 + SLACK
    fault.s3.set("pass")
    assert complete_or_absent(fault, prefix) is False


def test_s3_export_retries_5xx_then_writes_a_complete_cache(fault, layout):
    prefix = "export-retried/"
    fault.s3.set("http:500", times=2)
    with deadlines.scope(deadlines.Deadline(30, "build")):
        s3 = settings(fault, prefix)
        sync.export_to_s3(layout, s3, "app", client=make_client(s3))
    assert fault.s3.faulted == 2
    assert complete_or_absent(fault, prefix) is True


@pytest.fixture(scope="module")
def exported(world: World, layout: Path) -> str:
    prefix = "import/"
    s3 = settings(world, prefix, via_proxy=False)
    sync.export_to_s3(layout, s3, "app", client=make_client(s3))
    return prefix


@pytest.mark.parametrize("kind", ["stall", "truncate"])
def test_s3_import_under_a_fault_hands_buildkit_nothing(fault, exported, kind, tmp_path):
    dest = tmp_path / "import"
    fault.s3.set(kind)
    started = time.monotonic()
    with deadlines.scope(deadlines.Deadline(3, "build")):
        s3 = settings(fault, exported)
        try:
            imported = sync.import_from_s3(s3, "app", dest, client=make_client(s3))
        except S3CacheError:
            imported = False  # the build goes on cold (backends says so): tested below
    assert time.monotonic() - started < 3 + SLACK
    assert imported is False and not any(dest.iterdir())


def test_s3_import_retries_then_imports(fault, exported, tmp_path):
    fault.s3.set("http:503", times=2)
    with deadlines.scope(deadlines.Deadline(30, "build")):
        s3 = settings(fault, exported)
        assert sync.import_from_s3(s3, "app", tmp_path / "in", client=make_client(s3))


def test_s3_down_means_a_cold_build_not_a_failed_one(fault, tmp_path):
    """backends: an S3 cache that cannot be read is reported, and the image still builds."""
    from prebuild.cache import backends
    from prebuild.model import CacheSettings

    fault.s3.set("stall")
    cache = CacheSettings(backend="s3-sync", s3=settings(fault, "import/"))
    with (
        deadlines.scope(deadlines.Deadline(3, "build")),
        backends.session(
            cache, registry=fault.registry.address, name="app", write=False
        ) as session,
    ):
        assert session.cache_from == []
        assert any("S3 cache unavailable, building without it" in n for n in session.notes)
