"""The suite's plot, ``docs/img/throughput.png``: throughput by configuration, and ours relative to upstream."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from configs import FSSPEC, OPS, SHUTIL, UP, UP_AA, UP_CB, A, B, C, D
from targets import TARGETS

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

__all__ = ["plot"]

COLORS = {
    SHUTIL: "#7f7f7f",
    FSSPEC: "#bcbd22",
    UP: "#1f77b4",
    UP_AA: "#17becf",
    UP_CB: "#aec7e8",
    A: "#2ca02c",
    B: "#98df8a",
    C: "#d62728",
    D: "#9467bd",
}


def _bars(ax: Any, names: list[str], value: Callable[[str, str], float | None], fmt: str) -> None:
    """Grouped bars: one group per operation, one bar per configuration, each labelled with its value."""
    width = 0.8 / len(names)
    for i, name in enumerate(names):
        xs, ys = [], []
        for j, op in enumerate(OPS):
            y = value(op, name)
            if y is not None:
                xs.append(j + (i - (len(names) - 1) / 2) * width)
                ys.append(y)
        if xs:
            bars = ax.bar(xs, ys, width=width * 0.95, label=name, color=COLORS[name])
            for bar, y in zip(bars, ys, strict=True):
                x = bar.get_x() + bar.get_width() / 2
                ax.annotate(format(y, fmt), (x, y), ha="center", va="bottom", fontsize=6.5)
    ax.set_xticks(range(len(OPS)), list(OPS))
    ax.grid(axis="y", alpha=0.3)


def plot(results: dict[str, Any], path: Path) -> None:
    """Two panels: throughput by configuration (GB/s); ours (and A/A) relative to upstream with the same arguments."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    thr = results["throughput"]
    meta = results["meta"]
    fig, (top, bottom) = plt.subplots(
        2, 1, figsize=(10, 9), dpi=110, gridspec_kw={"height_ratios": [3, 2]}, layout="constrained"
    )

    def gb_s(op: str, name: str) -> float | None:
        return thr[op].get(name, {}).get("gb_s")

    _bars(top, [SHUTIL, FSSPEC, UP, UP_AA, UP_CB, A, B, C, D], gb_s, ".2f")
    top.set_ylabel("GB/s (best of trials; higher is better)")
    top.set_title(f"Throughput, local to local on tmpfs, {meta['size_mib']} MiB, best of {meta['trials']} trials")
    top.legend(fontsize=8, ncol=5, loc="upper center", bbox_to_anchor=(0.5, -0.08), frameon=False)

    def ratio(op: str, name: str) -> float | None:
        return thr[op].get(name, {}).get("vs_upstream")

    compared = [UP_AA, A, B, C]
    _bars(bottom, compared, ratio, ".3f")
    low = min([r for op in OPS for n in compared if (r := ratio(op, n)) is not None] + [0.97])
    high = max([r for op in OPS for n in compared if (r := ratio(op, n)) is not None] + [1.02])
    bottom.set_ylim(low - 0.03, high + 0.02)
    bottom.axhline(1.0, color="black", linewidth=0.8)
    for j, op in enumerate(OPS):
        target = TARGETS[op]
        bottom.hlines(target, j - 0.45, j + 0.45, colors="black", linestyles="dashed", linewidth=1, zorder=3)
        bottom.annotate(
            f"target for (c): {target:.2f}",
            (j - 0.45, target),
            xytext=(0, -3),
            textcoords="offset points",
            ha="left",
            va="top",
            fontsize=7,
            zorder=4,
            bbox={"boxstyle": "square,pad=0.1", "facecolor": "white", "edgecolor": "none", "alpha": 0.8},
        )
    bottom.set_ylabel("ours / upstream, same arguments")
    bottom.set_title(
        "Relative to upstream remote_store.ext.transfer (same run; A/A: the noise floor; higher is better)"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
