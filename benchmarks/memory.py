"""Peak ``tracemalloc`` memory of each operation at two file sizes (``LocalBackend`` stores on tmpfs).

Streaming memory must not depend on the file size: the growth between the
two sizes is reported, and each configuration's peak above upstream's with
the same arguments. No timing, so no interleaving. Run alone::

    python benchmarks/memory.py [--quick]
"""

from __future__ import annotations

import gc
import tracemalloc
from typing import TYPE_CHECKING, Any

from configs import BASELINE, OPS, UP, UP_CB, A, B, C, D, Managers, Plan
from local_bench import LocalBench

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["bench_memory"]


def bench_memory(managers: Managers, workdir: Path, plan: Plan) -> dict[str, Any]:
    configs = {A, B, C, D, UP, UP_CB}
    out: dict[str, Any] = {op: {} for op in OPS}
    for size in plan.mem_sizes:
        bench = LocalBench(workdir / f"mem-{size}", size)
        for op, table in bench.operations(managers, configs).items():
            for name, (setup, run) in table.items():
                setup()
                run()  # warm: first-use caches are not streaming memory
                setup()
                gc.collect()
                tracemalloc.start()
                tracemalloc.reset_peak()
                before, _ = tracemalloc.get_traced_memory()
                run()
                _, peak = tracemalloc.get_traced_memory()
                tracemalloc.stop()
                out[op].setdefault(name, {})[str(size)] = peak - before
        bench.remove()
    small, large = (str(s) for s in plan.mem_sizes)
    for op in OPS:
        for name, row in out[op].items():
            row["growth"] = row[large] - row[small]
            base = BASELINE.get(name)
            row["over_upstream"] = row[large] - out[op][base][large] if base in out[op] else None
    if managers.integrity is None:
        for op in OPS:
            out[op][D] = {"unavailable": managers.integrity_note}
    return {"sizes": list(plan.mem_sizes), "peaks": out}


if __name__ == "__main__":
    from report import memory_lines, run_alone

    run_alone(__doc__, "memory", bench_memory, memory_lines)
