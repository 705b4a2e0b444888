"""P6 parallel builds: `prebuild build --jobs 2` vs `--jobs 1`.

Two sets of 4 independent images: *waiting* ones, whose RUN step mostly sleeps (3 s, then a
small write: downloads, remote tests and other I/O-bound steps), and *CPU-bound* ones (busybox
`sha256sum` over generated data in a loop). Every build is forced to do the real work: before
each command every image gets a fresh input (a nonce file COPY'd before the RUN step), so
the key is new and no cached step can be reused; the image is then pushed and its cache
exported, as in the nightly job.

Fair because: both job counts build the same images with the same amount of work, fresh each
time, on the same engine, alternating which goes first in each repetition; ratios are taken
per repetition. The waiting set shows what parallelism buys when the engine is not the
bottleneck; the CPU-bound set shows what is left of it when builds compete for the 2 cores.
"""

from __future__ import annotations

import uuid
from functools import partial
from pathlib import Path

from bench import images
from bench.harness import CommandFailed, Reps, ScenarioResult, paired, ratios, timed
from bench.stack import Stack, env, prebuild_argv

COUNT = 4
CPU_DATA_MB = 64
CPU_ROUNDS = 8  # ~2-3 s of one core per image on the reference machine


def _repo(stack: Stack, kind: str, dockerfile: str) -> tuple[Path, list[images.Image]]:
    repo = images.workdir(f"p6-{kind}")
    decls = [images.Image(f"{kind}{i}", f"images/{kind}{i}") for i in range(1, COUNT + 1)]
    files = {
        "prebuild.toml": images.project_toml(f"{stack.registry}/bench/p6", stack.base_image, decls)
    }
    for decl in decls:
        files[f"{decl.context}/Dockerfile"] = dockerfile
    images.write(repo, files)
    return repo, decls


def _build(repo: Path, decls: list[images.Image], jobs: int) -> float:
    nonce = uuid.uuid4().hex
    images.write(repo, {f"{d.context}/nonce.txt": f"{nonce} {d.name}\n" for d in decls})
    argv = prebuild_argv("build", "--plain", "--jobs", str(jobs))
    seconds, proc = timed(argv, cwd=repo, env=env())
    built = proc.stdout.count("\tbuilt\t")
    if built != len(decls):
        raise CommandFailed(f"expected {len(decls)} images built, got {built}:\n{proc.stdout}")
    return seconds


def run_scenario(stack: Stack, reps: Reps) -> ScenarioResult:
    result = ScenarioResult("P6", "parallel builds --jobs 2 vs --jobs 1", __doc__ or "")
    kinds = {
        "wait": images.waiting_dockerfile(seconds=3),
        "cpu": images.cpu_dockerfile(CPU_DATA_MB, CPU_ROUNDS),
    }
    for kind, dockerfile in kinds.items():
        repo, decls = _repo(stack, kind, dockerfile)
        values = paired(
            reps,
            {"jobs 1": partial(_build, repo, decls, 1), "jobs 2": partial(_build, repo, decls, 2)},
            label=f"P6 {kind}",
        )
        title = "waiting" if kind == "wait" else "CPU-bound"
        result.add(f"{title} x{COUNT}, --jobs 1", "s", values["jobs 1"])
        result.add(f"{title} x{COUNT}, --jobs 2", "s", values["jobs 2"])
        ratio = result.add(
            f"ratio {title} jobs2/jobs1", "x", ratios(values["jobs 2"], values["jobs 1"])
        )
        if kind == "wait":
            ratio.check("<=", 0.65)
    return result
