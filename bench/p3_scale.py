"""P3-scale, the no-op nightly at scale: `prebuild build` of 500 images, all present already.

50 chains of 10 images each: the first of each chain builds FROM the shared base, every other
one FROM the image before it in its chain (a sibling, whose key is part of its own). Nothing
changed since the last nightly, so the whole run is prebuild's own work: load the 500-image
config, parse 500 Dockerfiles, hash 1,000 files, compute 500 keys in dependency order, ask the
registry once per image whether its key tag exists, build nothing. Measured: wall time, CPU
and peak memory (the child's own rusage via wait4) of a run straight to the registry, the
registry's own CPU meanwhile (it shares the two cores), and every registry request of a
second run right after it through the counting proxy of P3 (PREBUILD_REGISTRY points at it;
HTTP_PROXY routes the shared base's lookup through it too). The proxy is Python on the same
cores, so the timed run does not go through it.

Fair because: it is the real command on a realistic shape (deep sibling chains are what make
key computation ordered), after a warm-up, and the counting proxy sees every request. The
shared base is resolved once per run (its digest is part of every chain's key), so the
request count is reported both in total and as key-tag requests per image; the target counts
the one shared base lookup as allowed on top of one request per image.
"""

from __future__ import annotations

import os
from pathlib import Path

from bench import images, profiles
from bench.harness import CommandFailed, Reps, ScenarioResult, log, run, timed_rss
from bench.proxy import CountingProxy
from bench.stack import Stack, env, prebuild_argv

CHAINS, DEPTH = 50, 10
COUNT = CHAINS * DEPTH


def setup(stack: Stack, registry: str) -> Path:
    repo = images.workdir("p3-scale")
    files = images.chains(registry, stack.base_image, count=CHAINS, depth=DEPTH, files_per_image=2)
    images.write(repo, files)
    log(f"P3-scale setup: building the {COUNT} images (when missing; minutes the first time)")
    run(prebuild_argv("build", "--plain", "--jobs", "4"), cwd=repo, env=env(), timeout=5400)
    return repo


def check_noop(out: str) -> None:
    skipped = out.count("\tskipped\t")
    if skipped != COUNT:
        raise CommandFailed(f"no-op build skipped {skipped}/{COUNT}:\n{out[-3000:]}")


def registry_seconds(stack: Stack) -> float:
    """CPU seconds the registry serving `stack.registry` has used so far (user + system)."""
    port = stack.registry.rsplit(":", 1)[1]
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            if b"serve" not in cmdline or not any(b"registry" in c for c in cmdline[:1]):
                continue
            config = Path(cmdline[cmdline.index(b"serve") + 1].decode()).read_text()
            if f":{port}" not in config:
                continue
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, ValueError, IndexError):
            continue
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return float("nan")


def run_scenario(stack: Stack, reps: Reps) -> ScenarioResult:
    result = ScenarioResult("P3-scale", f"no-op nightly ({COUNT} images present)", __doc__ or "")
    repo = setup(stack, f"{stack.registry}/bench/p3s")
    seconds: list[float] = []
    cpu: list[float] = []
    memory: list[float] = []
    totals: list[int] = []
    per_image: list[int] = []  # requests naming one of the 500 images' repositories
    kinds: dict[str, int] = {}
    others: dict[str, int] = {}
    direct_env = env(PREBUILD_REGISTRY=f"{stack.registry}/bench/p3s")
    registry_cpu: list[float] = []
    with CountingProxy(stack.registry) as proxy:
        counted_env = env(
            PREBUILD_REGISTRY=f"{proxy.address}/bench/p3s",
            HTTP_PROXY=f"http://{proxy.address}",
            http_proxy=f"http://{proxy.address}",
            NO_PROXY="",
            no_proxy="",
        )
        for rep in range(reps.total):
            # timed straight to the registry: the counting proxy is Python on the same two
            # cores, so it would be timed too; its run right after counts the same requests
            before = registry_seconds(stack)
            took, used, peak, out = timed_rss(
                prebuild_argv("build", "--plain"), cwd=repo, env=direct_env
            )
            served = registry_seconds(stack) - before
            check_noop(out)
            proxy.reset()
            _, _, _, counted = timed_rss(
                prebuild_argv("build", "--plain"), cwd=repo, env=counted_env
            )
            check_noop(counted)
            counts = proxy.snapshot()
            repos = proxy.repositories()
            warm = rep < reps.warmup
            total = sum(counts.values())
            log(f"P3-scale {'warm-up' if warm else 'rep'}: {took:.2f}s ({used:.2f}s CPU; "
                f"registry {served:.2f}s CPU), {peak:.0f} MB, {total} requests")  # fmt: skip
            if not warm:
                seconds.append(took)
                cpu.append(used)
                registry_cpu.append(served)
                memory.append(peak)
                totals.append(total)
                images_total = sum(n for r, n in repos.items() if r.startswith("bench/p3s/c"))
                per_image.append(images_total)
                kinds = dict(counts)
                others = {r: n for r, n in repos.items() if not r.startswith("bench/p3s/c")}
    profiles.profile("noop_build_scale", ["build", "--plain"], cwd=repo, env=direct_env)
    result.add("prebuild build, nothing to do", "s", seconds).check("<=", 1.0)
    result.add("CPU time (user + system)", "s", cpu)
    result.add("registry's CPU time meanwhile (same 2 cores)", "s", registry_cpu)
    result.add("peak memory (max RSS)", "MB", memory).check("<=", 150)
    result.add("registry requests, all", "req", totals)
    result.add(
        "requests on the images' repositories per image", "req/img", [n / COUNT for n in per_image]
    ).check("<=", 1.0)
    result.add(
        "per-run requests (base, report history)",
        "req",
        [t - n for t, n in zip(totals, per_image, strict=True)],
    )
    result.notes.append(
        "requests not on an image's repository (last repetition): "
        + ", ".join(f"{k or '/v2/'}={v}" for k, v in sorted(others.items()))
    )
    result.extra.update(requests_by_kind_last_rep=kinds, chains=CHAINS, depth=DEPTH)
    result.notes.append(
        "requests by kind (last repetition): "
        + ", ".join(f"{k}={v}" for k, v in sorted(kinds.items()))
    )
    return result
