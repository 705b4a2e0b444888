"""P4 key computation vs the hashing floor: `prebuild plan --offline` vs `sha256sum`.

An image whose `COPY src/ /src/` reads ~220 MB in 5,000 files (nested directories, mostly
small files plus a few big ones; a `.dockerignore` drops some scratch files). The content key
needs every one of those files hashed; nothing can compute it faster than reading and hashing
exactly those bytes, so the floor is GNU `sha256sum` over exactly the files the key lists
(taken from `prebuild plan --json`), run through `xargs` with as many parallel processes as
the machine has cores, since prebuild hashes on that many threads too. The serial
`xargs sha256sum` is reported beside it for reference.

Fair because: both read the same files from a warm page cache (all files are read once before
the warm-up, and every repetition runs both sides, alternating which goes first), neither
asks the network (`--offline`), and prebuild's number includes everything it does on top of
hashing (interpreter start, config, Dockerfile analysis, `.dockerignore` matching, walking
the tree, the key itself), which is exactly the overhead this scenario exists to show.
"""

from __future__ import annotations

import json
import os

from bench import images, profiles
from bench.harness import CommandFailed, Reps, ScenarioResult, log, paired, ratios, run, timed
from bench.stack import Stack, env, prebuild_argv

FILES = 5000
TOTAL_MB = 220


def run_scenario(stack: Stack, reps: Reps) -> ScenarioResult:
    result = ScenarioResult("P4", "key computation vs hashing floor", __doc__ or "")
    repo = images.workdir("p4-keys")
    images.write(
        repo,
        {
            "prebuild.toml": images.project_toml(
                f"{stack.registry}/bench/p4", stack.base_image, [images.Image("tree", "tree")]
            ),
            "tree/Dockerfile": images.FROM_BASE + "COPY src/ /src/\n",
            "tree/.dockerignore": "**/*.tmp\n",
            **{f"tree/src/scratch/s{i}.tmp": f"scratch {i}\n" for i in range(20)},
        },
    )
    log(f"P4 setup: {FILES} files, ~{TOTAL_MB} MB")
    images.tree_of_files(repo / "tree" / "src", FILES, TOTAL_MB)
    plan = json.loads(run(prebuild_argv("plan", "--offline", "--json"), cwd=repo).stdout)
    inputs = [p for p in plan["images"][0]["inputs"] if (repo / p).is_file()]
    size = sum((repo / p).stat().st_size for p in inputs)
    if len(inputs) < FILES or size < 200e6:
        raise CommandFailed(f"P4 inputs too small: {len(inputs)} files, {size / 1e6:.0f} MB")
    listing = repo / "inputs.list0"
    listing.write_bytes(b"".join(p.encode() + b"\0" for p in inputs))
    result.extra.update(files=len(inputs), megabytes=round(size / 1e6, 1))
    for path in inputs:  # warm the page cache before the warm-up
        with open(repo / path, "rb") as handle:
            while handle.read(1 << 20):
                pass
    cores = str(os.cpu_count() or 1)
    parallel = ["xargs", "-0", "-a", str(listing), "-P", cores, "-n", "500", "sha256sum"]
    serial = ["xargs", "-0", "-a", str(listing), "sha256sum"]
    values = paired(
        reps,
        {
            "plan": lambda: timed(prebuild_argv("plan", "--offline"), cwd=repo, env=env())[0],
            "floor": lambda: timed(parallel, cwd=repo)[0],
            "serial": lambda: timed(serial, cwd=repo)[0],
        },
        label="P4",
    )
    result.add("prebuild plan --offline", "s", values["plan"])
    result.add(f"sha256sum, xargs -P {cores} (floor)", "s", values["floor"])
    result.add("sha256sum, xargs serial", "s", values["serial"])
    result.add("ratio plan/floor", "x", ratios(values["plan"], values["floor"])).check("<=", 1.5)
    result.add("ratio plan/serial sha256sum", "x", ratios(values["plan"], values["serial"]))
    profiles.profile("plan_offline", ["plan", "--offline"], cwd=repo, env=env())
    return result
