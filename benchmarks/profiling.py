"""A cProfile of one case (c) run of each operation and of the per-call loop: where the time goes."""

from __future__ import annotations

import cProfile
import io
import os
import pstats
from typing import TYPE_CHECKING

from configs import OPS, C, KiB, Managers, MiB
from local_bench import LocalBench
from remote_store import Store
from remote_store.backends import MemoryBackend

import remote_store_transfer as rst

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["profile_case_c"]


def profile_case_c(managers: Managers, workdir: Path, size: int) -> str:
    """The top functions by own time, as text (written to ``benchmarks/results/profile.txt``)."""
    out = io.StringIO()
    bench = LocalBench(workdir / "profile", size)
    table = bench.operations(managers, {C})
    for op in OPS:
        setup, run = table[op][C]
        setup()
        run()
        setup()
        profiler = cProfile.Profile()
        profiler.runcall(run)
        out.write(f"\n=== {op}, case (c), {size // MiB} MiB: top functions by own time ===\n")
        pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(12)
    bench.remove()
    src, dst = Store(backend=MemoryBackend()), Store(backend=MemoryBackend())
    src.write("one-kib.bin", os.urandom(KiB))
    profiler = cProfile.Profile()
    profiler.runcall(lambda: [rst.transfer(src, "one-kib.bin", dst, "x.bin", overwrite=True) for _ in range(20_000)])
    out.write("\n=== 20000 x 1 KiB memory-to-memory transfer, default plugins: top functions by own time ===\n")
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(20)
    return out.getvalue()
