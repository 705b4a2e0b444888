"""P5 storage growth: 20 nightly cycles with changing inputs, with and without gc.

Each cycle changes the app's source (every cycle) and its toolchain pin (every 5th cycle),
runs `prebuild build` (new key, image + `latest` pushed, cache exported) and then measures
stored bytes / live bytes (definitions in bench/storage.py). Four series: the `registry`
cache backend and the `s3-sync` backend (cache in the stack's moto S3, images still in the
registry), each without gc and with `prebuild gc --apply` plus the registry's own garbage
collection (`ci/stack registry-gc`) after every build. gc keeps the newest 3 key
tags; the S3 grace period is 1s because the bench compresses 20 nights into minutes.

Fair because: all four series run the same cycles (same Dockerfile, same input changes, the
same generated layer sizes), and stored/live uses one definition for all of them; the series
without gc run first, because the registry's garbage collection is global and would also
collect their garbage. This is byte accounting, not timing: it runs once, and the table's
median/min/max are over the 20 cycles (the target is judged on the last one).
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from typing import Any

from bench import images
from bench.harness import Reps, ScenarioResult, log, run
from bench.stack import Stack, env, prebuild_argv, registry_gc
from bench.storage import registry_live_bytes, registry_stored_bytes, s3_bytes

CYCLES = 20
KEEP = 3
BUCKET = "prebuild-bench"
NAME = "app"


@dataclass
class SeriesRun:
    backend: str  # "registry" | "s3-sync"
    gc: bool
    stored: list[int] = field(default_factory=list)
    live: list[int] = field(default_factory=list)

    @property
    def label(self) -> str:
        return f"{self.backend}, {'gc' if self.gc else 'no gc'}"

    @property
    def ratios(self) -> list[float]:
        return [s / max(1, lv) for s, lv in zip(self.stored, self.live, strict=True)]


def _s3_client(stack: Stack) -> Any:
    import boto3

    return boto3.session.Session().client(
        "s3", endpoint_url=stack.s3_endpoint, region_name="us-east-1"
    )


def _cache_block(series: SeriesRun, stack: Stack, prefix: str) -> str:
    if series.backend == "registry":
        return 'backend = "registry"'
    return (
        'backend = "s3-sync"\n\n[cache.s3]\n'
        f'bucket = "{BUCKET}"\nregion = "us-east-1"\nendpoint_url = "{stack.s3_endpoint}"\n'
        f'use_path_style = true\nprefix = "{prefix}"'
    )


def run_series(stack: Stack, series: SeriesRun, run_id: str, s3: Any) -> None:
    slug = f"{series.backend.replace('-', '')}-{'gc' if series.gc else 'nogc'}"
    repo = images.workdir(f"p5-{slug}", fresh=True)
    namespace = f"bench/p5-{run_id}-{slug}"
    registry = f"{stack.registry}/{namespace}"
    prefix = f"{namespace}/"
    images.write(
        repo,
        {
            "prebuild.toml": images.project_toml(
                registry,
                stack.base_image,
                [images.Image(NAME, "app")],
                cache=_cache_block(series, stack, prefix),
                gc=f'keep = {KEEP}\ngrace = "1s"',
            ),
            "app/Dockerfile": images.storage_dockerfile(stable_mb=3, changing_mb=0.5),
        },
    )
    from prebuild.registry.client import RegistryClient

    client = RegistryClient(deadline=30)
    for cycle in range(1, CYCLES + 1):
        # Inputs unique to the series: the engine's local build cache would otherwise hand
        # every series the same layers, and a blob another series still uses is never freed.
        images.write(
            repo,
            {
                "app/toolchain.txt": f"{namespace} toolchain {(cycle - 1) // 5}\n",
                "app/src/main.txt": f"{namespace} cycle {cycle}\n",
            },
        )
        run(prebuild_argv("build", "--plain"), cwd=repo, env=env())
        if series.gc:
            run(prebuild_argv("gc", "--apply"), cwd=repo, env=env())
            registry_gc()
        stored = registry_stored_bytes(stack.registry_root, [f"{namespace}/{NAME}"])
        live = registry_live_bytes(
            client, f"{registry}/{NAME}", keep=KEEP, protected={"latest", "buildcache"}
        )
        if series.backend == "s3-sync":
            s3_stored, s3_live = s3_bytes(s3, BUCKET, prefix)
            stored, live = stored + s3_stored, live + s3_live
        series.stored.append(stored)
        series.live.append(live)
        log(
            f"P5 {series.label} cycle {cycle}/{CYCLES}: stored {stored / 1e6:.1f} MB, "
            f"live {live / 1e6:.1f} MB, ratio {stored / max(1, live):.2f}"
        )


def run_scenario(stack: Stack, reps: Reps) -> ScenarioResult:
    del reps  # byte accounting: one pass of 20 cycles (see the docstring)
    result = ScenarioResult("P5", "storage growth over 20 nightly cycles", __doc__ or "")
    s3 = _s3_client(stack)
    with contextlib.suppress(s3.exceptions.BucketAlreadyOwnedByYou):
        s3.create_bucket(Bucket=BUCKET)
    run_id = time.strftime("%Y%m%d%H%M%S")
    all_series = [
        SeriesRun("registry", gc=False),
        SeriesRun("s3-sync", gc=False),
        SeriesRun("registry", gc=True),
        SeriesRun("s3-sync", gc=True),
    ]
    for series in all_series:
        run_series(stack, series, run_id, s3)
    for series in all_series:
        final = series.ratios[-1]
        added = result.add(f"stored/live, {series.label} (final {final:.2f})", "x", series.ratios)
        if series.gc:
            added.target, added.met = "final <= 1.25", final <= 1.25
        result.extra[series.label] = {"stored_bytes": series.stored, "live_bytes": series.live}
        result.notes.append(
            f"{series.label}: after {CYCLES} cycles stored {series.stored[-1] / 1e6:.1f} MB, "
            f"live {series.live[-1] / 1e6:.1f} MB, stored/live {final:.2f}"
        )
    from bench.plot import plot_storage

    path = plot_storage(all_series)
    if path is not None:
        result.notes.append(f"plot: {path}")
    return result
