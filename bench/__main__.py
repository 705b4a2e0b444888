"""`python -m bench [P1 ...] [--reps N]`: run the scenarios, print the table, write results.

Normally started by `bench/run`, which prepares the venv and the local stack first.
"""

from __future__ import annotations

import argparse
import os
import time
import traceback
from collections.abc import Callable

from bench import (
    p1_pull,
    p2_statusquo,
    p3_noop,
    p3_scale,
    p4_keys,
    p4_scale,
    p5_storage,
    p6_parallel,
    profiles,
)
from bench.harness import OUT, Reps, ScenarioResult, loadavg, log, table, write_json
from bench.stack import Stack, machine

ORDER = ("P4", "P4-scale", "P1", "P2", "P3", "P3-scale", "P5", "P6")


def main() -> int:
    parser = argparse.ArgumentParser(prog="bench/run", description=__doc__)
    parser.add_argument(
        "scenarios", nargs="*", metavar="P1..P6|P3-scale|P4-scale", help="default: all"
    )
    parser.add_argument("--reps", type=int, default=5, help="measured repetitions (default 5)")
    parser.add_argument("--warmup", type=int, default=1, help="warm-up repetitions (default 1)")
    parser.add_argument("--no-profiles", action="store_true", help="skip the profiles")
    args = parser.parse_args()
    by_upper = {s.upper(): s for s in ORDER}
    wanted = [by_upper.get(s.upper(), s) for s in args.scenarios] or list(ORDER)
    unknown = [s for s in wanted if s not in ORDER]
    if unknown:
        parser.error(f"unknown scenario(s) {', '.join(unknown)}; choose from {', '.join(ORDER)}")
    reps = Reps(count=args.reps, warmup=args.warmup)
    profiles.ENABLED = not args.no_profiles
    stack = Stack.from_env()
    started = time.time()
    info = machine()
    log(f"machine: {info}")
    results: list[ScenarioResult] = []
    state: dict[str, object] = {}

    def big() -> p1_pull.BigImage:
        if "big" not in state:
            state["big"] = p1_pull.setup_big_image(stack)
        return state["big"]  # type: ignore[return-value]

    runners: dict[str, Callable[[], ScenarioResult]] = {
        "P1": lambda: p1_pull.run_scenario(stack, reps, big()),
        "P2": lambda: p2_statusquo.run_scenario(stack, reps, big()),
        "P3": lambda: p3_noop.run_scenario(stack, reps),
        "P4": lambda: p4_keys.run_scenario(stack, reps),
        "P3-scale": lambda: p3_scale.run_scenario(stack, reps),
        "P4-scale": lambda: p4_scale.run_scenario(stack, reps),
        "P5": lambda: p5_storage.run_scenario(stack, reps),
        "P6": lambda: p6_parallel.run_scenario(stack, reps),
    }
    for scenario in (s for s in ORDER if s in wanted):
        log(f"=== {scenario} ===")
        begin, load = time.monotonic(), loadavg()
        try:
            result = runners[scenario]()
        except Exception as error:  # one broken scenario must not hide the others' numbers
            traceback.print_exc()
            result = ScenarioResult(
                scenario, "failed", "", error=f"{type(error).__name__}: {error}"
            )
        result.seconds = time.monotonic() - begin
        result.load = (load, loadavg())
        results.append(result)
        log(f"{scenario} done in {result.seconds:.0f}s")
        write_json(OUT / "results.json", info, results, reps, started)  # partial results too
    info["loadavg_at_end"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    write_json(OUT / "results.json", info, results, reps, started)
    print()
    print("\n".join(table(results)))
    for result in results:
        for note in result.notes:
            print(f"{result.id}: {note}")
    print(f"\nwall time {time.time() - started:.0f}s; results: {OUT / 'results.json'}")
    return 1 if any(r.error for r in results) else 0


if __name__ == "__main__":
    raise SystemExit(main())
