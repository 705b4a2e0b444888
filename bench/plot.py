"""bench/out/p5_storage.png: stored/live and stored MB per nightly cycle, one line per series."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from bench.harness import OUT, log


class StorageSeries(Protocol):
    stored: list[int]
    live: list[int]

    @property
    def label(self) -> str: ...

    @property
    def ratios(self) -> list[float]: ...


def plot_storage(
    series: Sequence[StorageSeries], path: Path = OUT / "p5_storage.png"
) -> Path | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.ticker import MaxNLocator
    except ImportError:
        log("matplotlib missing (pip install -e '.[bench]'): no plot")
        return None
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    for s in series:
        cycles = range(1, len(s.stored) + 1)
        style = "-" if "no gc" not in s.label else "--"
        left.plot(cycles, s.ratios, style, marker="o", markersize=3, label=s.label)
        right.plot(cycles, [b / 1e6 for b in s.stored], style, marker="o", markersize=3,
                   label=f"{s.label} (stored)")  # fmt: skip
    left.axhline(1.25, color="grey", linewidth=0.8, linestyle=":", label="target 1.25 (gc)")
    left.set(xlabel="nightly cycle", ylabel="stored bytes / live bytes", title="P5 overhead")
    right.set(xlabel="nightly cycle", ylabel="MB stored", title="P5 stored bytes")
    for axis in (left, right):
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
