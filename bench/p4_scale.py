"""P4-scale, the offline plan at scale: `prebuild plan --offline` of 500 images, 4,000 files.

The same 50 chains of 10 images as P3-scale, each image copying 8 small files of its own:
what a pull request's CI runs to list the images a change affects. No registry, no engine:
load the 500-image config, parse 500 Dockerfiles, hash 4,000 files, compute 500 keys in
dependency order. Measured: wall time, CPU time and peak memory (the child's own rusage).

Fair because: the real command on a warm page cache (the files are read by the warm-up), no
network on purpose (`--offline`); there is no floor to compare with at this size (the bytes
hashed are ~0.1 MB: the cost is all per-image and per-file overhead, which is the point).
"""

from __future__ import annotations

from bench import images, profiles
from bench.harness import Reps, ScenarioResult, log, timed_rss
from bench.stack import Stack, env, prebuild_argv

CHAINS, DEPTH, FILES_PER_IMAGE = 50, 10, 8
COUNT = CHAINS * DEPTH


def run_scenario(stack: Stack, reps: Reps) -> ScenarioResult:
    result = ScenarioResult(
        "P4-scale", f"offline plan ({COUNT} images, {COUNT * FILES_PER_IMAGE} files)", __doc__ or ""
    )
    repo = images.workdir("p4-scale")
    files = images.chains(
        f"{stack.registry}/bench/p4s", stack.base_image,
        count=CHAINS, depth=DEPTH, files_per_image=FILES_PER_IMAGE,
    )  # fmt: skip
    images.write(repo, files)
    seconds: list[float] = []
    cpu: list[float] = []
    memory: list[float] = []
    for rep in range(reps.total):
        took, used, peak, out = timed_rss(prebuild_argv("plan", "--offline"), cwd=repo, env=env())
        warm = rep < reps.warmup
        log(
            f"P4-scale {'warm-up' if warm else 'rep'}: {took:.2f}s ({used:.2f}s CPU), {peak:.0f} MB"
        )
        if not warm:
            seconds.append(took)
            cpu.append(used)
            memory.append(peak)
    result.add("prebuild plan --offline", "s", seconds)
    result.add("CPU time (user + system)", "s", cpu)
    result.add("peak memory (max RSS)", "MB", memory)
    result.extra.update(images=COUNT, files=COUNT * FILES_PER_IMAGE)
    profiles.profile("plan_offline_scale", ["plan", "--offline"], cwd=repo, env=env())
    return result
