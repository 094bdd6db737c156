"""The per-call cost of a 1 KiB memory-to-memory ``transfer``: ours against upstream, with the same arguments.

Each trial times *calls* transfers per configuration, the configurations in
ABBA order; the best trial counts. ``upstream (A/A)`` is upstream timed again
under another name: its ratio to ``upstream`` is the noise floor. Run alone::

    python benchmarks/percall.py [--quick]
"""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING, Any

from configs import C, KiB, Managers, Plan, on_progress
from remote_store import Store
from remote_store.backends import MemoryBackend
from remote_store.ext import transfer as upstream
from timing import best_of

import remote_store_transfer as rst

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

__all__ = ["DEFAULT", "DEFAULT_CB", "PAIRS", "bench_percall"]

DEFAULT, DEFAULT_CB = "ours, default plugins", "ours + on_progress"
UP, UP_AA, UP_CB = "upstream", "upstream (A/A)", "upstream + on_progress"
RAW = "store calls alone (read + write)"
# Each configuration and its baseline: time over the baseline's time (> 1: costs more).
PAIRS = {DEFAULT: UP, UP_AA: UP, DEFAULT_CB: UP_CB, C: UP_CB}


def _raw_transfer(src: Store, dst: Store) -> None:
    stream = src.read("one-kib.bin")
    try:
        dst.write("raw.bin", stream, overwrite=True)
    finally:
        stream.close()


def bench_percall(managers: Managers, workdir: Path, plan: Plan) -> dict[str, Any]:
    """*workdir* is unused: everything is in memory."""
    src = Store(backend=MemoryBackend())
    dst = Store(backend=MemoryBackend())
    src.write("one-kib.bin", os.urandom(KiB))
    calls, noop = plan.calls, managers.noop

    def loop(fn: Callable[[], object]) -> Callable[[], float]:
        def measure() -> float:
            start = time.perf_counter()
            for _ in range(calls):
                fn()
            return (time.perf_counter() - start) / calls

        return measure

    def transfers(impl: Any, name: str, **kw: Any) -> Callable[[], float]:
        return loop(lambda: impl.transfer(src, "one-kib.bin", dst, name, overwrite=True, **kw))

    configs = {
        DEFAULT: transfers(rst, "ours.bin"),
        UP: transfers(upstream, "up.bin"),
        UP_AA: transfers(upstream, "up-aa.bin"),
        DEFAULT_CB: transfers(rst, "ours-cb.bin", on_progress=on_progress),
        UP_CB: transfers(upstream, "up-cb.bin", on_progress=on_progress),
        C: transfers(noop, "noop.bin", on_progress=on_progress),
        RAW: loop(lambda: _raw_transfer(src, dst)),
    }
    for measure in configs.values():
        measure()
    times = best_of(plan.trials, configs)
    out: dict[str, Any] = {}
    for name, values in times.items():
        out[name] = {"best_us": min(values) * 1e6, "times_us": [v * 1e6 for v in values]}
    for name, base in PAIRS.items():
        out[name]["vs_upstream"] = out[name]["best_us"] / out[base]["best_us"]
        out[name]["vs_upstream_config"] = base
    return {"calls": calls, "results": out}


if __name__ == "__main__":
    from report import percall_lines, run_alone

    run_alone(__doc__, "percall", bench_percall, percall_lines)
