"""Throughput of ``upload``, ``download`` and ``transfer``, local to local on tmpfs, every configuration.

All (operation, configuration) runs of a trial are interleaved in ABBA order
(forward, then backward, ...); the best trial counts. Ratios are taken against
upstream with the same arguments (``upstream (A/A)`` against ``upstream`` is
the noise floor), and against ``shutil.copyfile``. Run alone::

    python benchmarks/throughput.py [--quick]
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from configs import BASELINE, FSSPEC, OPS, SHUTIL, UP, UP_AA, UP_CB, A, B, C, D, Managers, Plan
from local_bench import LocalBench
from timing import best_of, ratio, summary, timed

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["CONFIGS", "bench_throughput"]

CONFIGS = {A, B, C, D, UP, UP_AA, UP_CB, FSSPEC, SHUTIL}


def bench_throughput(managers: Managers, workdir: Path, plan: Plan) -> dict[str, Any]:
    bench = LocalBench(workdir / "throughput", plan.size)
    try:
        ops = bench.operations(managers, CONFIGS)
        cpu: dict[str, list[float]] = {}
        configs = {}
        for op, table in ops.items():
            for name, (setup, run) in table.items():
                key = f"{op}\x00{name}"
                cpu[key] = []
                configs[key] = timed(setup, run, cpu[key])
        for measure in configs.values():  # warm up: imports, first-use caches, tmpfs
            measure()
        for cpu_times in cpu.values():
            cpu_times.clear()
        times = best_of(plan.trials, configs)
    finally:
        bench.remove()
    out: dict[str, Any] = {op: {} for op in OPS}
    for key, values in times.items():
        op, name = key.split("\x00")
        out[op][name] = {
            **summary(values, plan.size),
            "gb_s": plan.size / min(values) / 1e9,
            "times_s": values,
            "best_cpu_s": min(cpu[key]),
            "cpu_times_s": cpu[key],
        }
    for op in OPS:
        table = out[op]
        for name, row in table.items():
            base = BASELINE.get(name)
            # Speed ratios: the baseline's time over this one's (> 1: faster than the baseline).
            row["vs_upstream"] = ratio(table, base, name) if base else None
            row["vs_upstream_cpu"] = ratio(table, base, name, "best_cpu_s") if base else None
            row["vs_upstream_config"] = base
            row["vs_shutil"] = ratio(table, SHUTIL, name)
        if D in table:
            table[D]["vs_no_integrity"] = ratio(table, A, D)
        else:
            table[D] = {"unavailable": managers.integrity_note}
    return out


if __name__ == "__main__":
    from report import run_alone, throughput_lines

    run_alone(__doc__, "throughput", bench_throughput, throughput_lines)
