"""P2 runner time-to-ready vs the status quo: `prebuild pull NAME` vs a cached rebuild.

The status quo prebuild replaces is every CI job running `docker buildx build --cache-from
type=registry,ref=<cache ref> --load` of its Dockerfile: the registry cache turns each step
into a cache hit, but the runner still resolves the base, fetches the cache manifest, checks
every step and downloads and unpacks every layer before it has an image. The hook pulls the
finished image instead.

Fair because: both sides build/pull the same image (P1's ~550 MB one) from the same registry
with an engine wiped the same way before each command; the status quo gets the best case the
status quo can have, the full `mode=max` cache the nightly build exported (the run checks that
every step was a cache hit, so it is never measured doing real work), and the order of the two
alternates within each repetition; ratios are taken per repetition.
"""

from __future__ import annotations

from bench.harness import CommandFailed, Reps, ScenarioResult, paired, ratios, timed
from bench.p1_pull import MIN_REPS, BigImage, hook
from bench.stack import Stack, wipe_engine


def status_quo_argv(stack: Stack, big: BigImage) -> list[str]:
    return [
        "docker", "buildx", "build", "--progress=plain",
        "--file", str(big.dockerfile),
        "--build-arg", f"BASE_IMAGE={stack.base_image}",
        "--cache-from", f"type=registry,ref={big.cache_ref}",
        "--tag", "big-status-quo", "--load",
        str(big.dockerfile.parent),
    ]  # fmt: skip


def run_scenario(stack: Stack, reps: Reps, big: BigImage) -> ScenarioResult:
    result = ScenarioResult("P2", "runner time-to-ready vs status quo", __doc__ or "")
    reps = reps.at_least(MIN_REPS)
    argv = status_quo_argv(stack, big)
    result.extra["status_quo_command"] = " ".join(argv)
    steps = 6  # COPY + 5 RUN steps, each must be a cache hit

    def status_quo() -> float:
        wipe_engine()
        seconds, proc = timed(argv)
        cached = (proc.stderr + proc.stdout).count(" CACHED")
        if cached < steps:
            raise CommandFailed(
                f"status quo build had {cached}/{steps} steps CACHED: measuring it would "
                f"compare the hook with real build work\n{proc.stderr[-2000:]}"
            )
        return seconds

    values = paired(reps, {"hook": lambda: hook(big), "status quo": status_quo}, label="P2")
    result.add("prebuild pull (wiped engine)", "s", values["hook"])
    result.add("buildx build --cache-from --load", "s", values["status quo"])
    result.add("ratio hook/status quo", "x", ratios(values["hook"], values["status quo"])).check(
        "<=", 0.8
    )
    return result
