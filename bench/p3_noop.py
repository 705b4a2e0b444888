"""P3 no-op nightly: `prebuild build` of 25 images that are all present already.

The nightly job runs whether or not anything changed; on most nights nothing did, and then
its whole cost is prebuild's own: load the config, hash every image's inputs, resolve the
base once, ask the registry whether each key tag exists, build nothing. This measures that
wall time and counts the registry requests it takes, with a counting proxy in front of the
stack's registry: PREBUILD_REGISTRY points at the proxy, and HTTP_PROXY routes the base image
lookup (its reference names the registry itself and is part of every key) through it too, so
every request of the run is counted and none can hide.

Fair because: it is the real command with the real config shape (25 images, one shared
base), measured after a warm-up, and the proxy only adds a loopback hop to requests it
counts; the request count is exact, not sampled. The "per image" figure divides all requests,
the shared base lookup included, by the number of images (each builds for one platform).
"""

from __future__ import annotations

from bench import images, profiles
from bench.harness import CommandFailed, Reps, ScenarioResult, log, run, timed
from bench.proxy import CountingProxy
from bench.stack import Stack, env, prebuild_argv

COUNT = 25


def run_scenario(stack: Stack, reps: Reps) -> ScenarioResult:
    result = ScenarioResult("P3", "no-op nightly (25 images present)", __doc__ or "")
    repo = images.workdir("p3-noop")
    decls = [images.Image(f"img{i:02d}", f"images/img{i:02d}") for i in range(1, COUNT + 1)]
    files = {
        "prebuild.toml": images.project_toml(f"{stack.registry}/bench/p3", stack.base_image, decls)
    }
    for i in range(1, COUNT + 1):
        files[f"images/img{i:02d}/Dockerfile"] = images.small_dockerfile()
        files[f"images/img{i:02d}/files/app.txt"] = f"image {i}\n"
        files[f"images/img{i:02d}/files/version.txt"] = "1.0\n"
    images.write(repo, files)
    log(f"P3 setup: building the {COUNT} small images (when missing)")
    run(prebuild_argv("build", "--plain", "--jobs", "2"), cwd=repo, env=env())
    with CountingProxy(stack.registry) as proxy:
        build_env = env(
            PREBUILD_REGISTRY=f"{proxy.address}/bench/p3",
            HTTP_PROXY=f"http://{proxy.address}",
            http_proxy=f"http://{proxy.address}",
            NO_PROXY="",
            no_proxy="",
        )
        seconds: list[float] = []
        totals: list[int] = []
        heads: list[int] = []
        kinds: dict[str, int] = {}
        for rep in range(reps.total):
            proxy.reset()
            took, proc = timed(prebuild_argv("build", "--plain"), cwd=repo, env=build_env)
            counts = proxy.snapshot()
            skipped = proc.stdout.count("\tskipped\t")
            if skipped != COUNT:
                raise CommandFailed(f"no-op build skipped {skipped}/{COUNT}:\n{proc.stdout}")
            warm = rep < reps.warmup
            log(f"P3 {'warm-up' if warm else 'rep'}: {took:.2f}s, {sum(counts.values())} requests")
            if not warm:
                seconds.append(took)
                totals.append(sum(counts.values()))
                heads.append(counts.get("HEAD manifests", 0))
                kinds = dict(counts)
        profiles.profile("noop_build", ["build", "--plain"], cwd=repo, env=build_env)
    result.add("prebuild build, nothing to do", "s", seconds).check("<=", 2.0)
    result.add("registry requests", "req", totals)
    result.add("registry requests per image", "req/img", [t / COUNT for t in totals]).check(
        "<=", 1.0
    )
    result.add("key-tag HEADs per image", "req/img", [h / COUNT for h in heads])
    result.extra["requests_by_kind_last_rep"] = kinds
    result.notes.append(
        "requests by kind (last repetition): "
        + ", ".join(f"{k}={v}" for k, v in sorted(kinds.items()))
    )
    return result
