"""Cache backends: the exact buildx cache entries, and the builder check that runs first."""

from __future__ import annotations

from pathlib import Path

import pytest

from prebuild.cache import backends
from prebuild.engine.buildx import BuildRequest
from prebuild.errors import EXIT_USAGE, ConfigError
from prebuild.model import CacheSettings, S3Settings

# BuildKit's s3 cache attributes (cache/remotecache/s3/s3.go) plus the generic exporter ones
# buildx passes for every cache type (mode, ignore-error).
BUILDKIT_S3_OPTIONS = {
    "type",
    "bucket",
    "region",
    "prefix",
    "manifests_prefix",
    "blobs_prefix",
    "name",
    "touch_refresh",
    "endpoint_url",
    "use_path_style",
    "upload_parallelism",
    "mode",
    "ignore-error",
}
CREDENTIAL_OPTIONS = {"access_key_id", "secret_access_key", "session_token"}

FULL = CacheSettings(
    backend="s3",
    mode="max",
    ignore_error=True,
    s3=S3Settings(
        bucket="acme-ci-cache",
        region="eu-west-1",
        endpoint_url="https://minio.example:9000",
        use_path_style=True,
        prefix="buildkit/",
        name="toolchain-main",
        touch_refresh="12h",
        upload_parallelism=8,
    ),
)


def entries(settings: CacheSettings, *, write: bool = True):
    with backends.session(settings, registry="r.example/ci", name="toolchain", write=write) as s:
        return s.cache_from, s.cache_to


def test_docker_container_builder_gets_buildkits_exact_s3_options() -> None:
    backends.check_builder(FULL, "docker-container")  # accepted: no error
    cache_from, cache_to = entries(FULL)
    common = {
        "type": "s3",
        "bucket": "acme-ci-cache",
        "region": "eu-west-1",
        "name": "toolchain-main",
        "endpoint_url": "https://minio.example:9000",
        "use_path_style": "true",
        "prefix": "buildkit/",
    }
    assert cache_from == [common]
    assert cache_to == {
        **common,
        "mode": "max",
        "ignore-error": "true",
        "touch_refresh": "43200s",
        "upload_parallelism": "8",
    }
    for entry in [*cache_from, cache_to]:
        assert set(entry) <= BUILDKIT_S3_OPTIONS
        assert not set(entry) & CREDENTIAL_OPTIONS
        assert all(isinstance(value, str) for value in entry.values())


def test_s3_entries_carry_no_credentials_even_when_the_environment_has_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    secret = "wJalrXUtnFEMI-never-in-argv"
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret)
    monkeypatch.setenv("AWS_SESSION_TOKEN", secret + "-token")
    cache_from, cache_to = entries(FULL)
    argv = BuildRequest(
        context=Path("."),
        dockerfile=Path("Dockerfile"),
        cache_from=tuple(cache_from),
        cache_to=cache_to,
    ).argv()
    assert secret not in " ".join(argv)
    assert "--cache-to" in argv and "--cache-from" in argv


def test_minimal_s3_settings_name_the_cache_after_the_image_and_read_only_writes_nothing() -> None:
    settings = CacheSettings(backend="s3", s3=S3Settings(bucket="b"))
    cache_from, cache_to = entries(settings, write=False)
    assert cache_from == [{"type": "s3", "bucket": "b", "region": "us-east-1", "name": "toolchain"}]
    assert cache_to is None


@pytest.mark.parametrize(
    ("text", "go"), [("24h", "86400s"), ("2d", "172800s"), ("1d12h", "129600s"), ("90s", "90s")]
)
def test_touch_refresh_is_passed_in_a_unit_gos_parseduration_reads(text: str, go: str) -> None:
    """BuildKit ignores a touch_refresh it cannot parse ("2d") and silently uses 24h."""
    assert backends.go_duration(text) == go
    settings = CacheSettings(backend="s3", s3=S3Settings(bucket="b", touch_refresh=text))
    _, cache_to = entries(settings)
    assert cache_to is not None and cache_to["touch_refresh"] == go


def test_native_s3_with_the_docker_driver_is_a_configuration_error_naming_both_ways_out() -> None:
    with pytest.raises(ConfigError) as caught:
        backends.check_builder(FULL, "docker")
    error = caught.value
    assert error.exit_code == EXIT_USAGE
    assert error.key == "cache.backend"
    text = str(error)
    assert "driver is 'docker'" in text
    assert "docker-container" in text and "remote" in text
    assert 'backend = "s3-sync"' in text


@pytest.mark.parametrize("driver", ["docker-container", "remote", "kubernetes"])
def test_native_s3_drivers_pass(driver: str) -> None:
    backends.check_builder(FULL, driver)


@pytest.mark.parametrize("backend", ["registry", "s3-sync", "none"])
def test_other_backends_work_with_the_docker_driver(backend: str) -> None:
    backends.check_builder(CacheSettings(backend=backend, s3=FULL.s3), "docker")
