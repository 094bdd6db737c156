"""Memory per file of the tree calls: ``transfer_tree`` memory store -> memory store of 16-byte files, peak
``tracemalloc`` above the built source, next to upstream's per-file loop."""

from __future__ import annotations

import gc
import time
import tracemalloc
from pathlib import Path
from typing import Any

from remote_store import Store
from remote_store.backends import MemoryBackend
from remote_store.ext import transfer as upstream
from timing import error_text
from tree_files import Tree, check_result
from tree_sides import OURS, UPSTREAM, WORKERS

import remote_store_transfer as rst

__all__ = ["bench_memory", "memory_per_file"]


PAYLOAD = b"0123456789abcdef"  # 16 bytes


def _memory_source(count: int) -> Store:
    src = Store(backend=MemoryBackend())
    for i in range(count):
        src.write(f"src/d{i // 1000:03d}/f{i:06d}.bin", PAYLOAD)
    return src


def _upstream_transfer_loop(src: Store, dst: Store) -> None:
    for info in src.list_files("src", recursive=True):
        path = str(info.path)
        upstream.transfer(src, path, dst, "dst" + path[3:])


def memory_per_file(count: int, side: str) -> dict[str, Any]:
    """Peak tracemalloc of one memory -> memory tree copy of *count* 16-byte files, above the built source."""
    gc.collect()
    tracemalloc.start()
    try:
        src = _memory_source(count)
        dst = Store(backend=MemoryBackend())
        gc.collect()
        baseline, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        start = time.perf_counter()
        if side == OURS:
            result: Any = rst.transfer_tree(src, "src", dst, "dst", max_workers=WORKERS)
            check_result(result, Tree("memory", count, len(PAYLOAD), Path()))
        else:
            result = _upstream_transfer_loop(src, dst)
        wall = time.perf_counter() - start
        current, peak = tracemalloc.get_traced_memory()
        del result
        gc.collect()
        kept, _ = tracemalloc.get_traced_memory()  # what stays after the call: the destination's data, caches
    finally:
        tracemalloc.stop()
    copied = sum(1 for _ in dst.list_files("dst", recursive=True))
    if copied != count:
        raise RuntimeError(f"{side}: the destination holds {copied} files, expected {count}")
    return {
        "files": count,
        "peak_bytes": peak - baseline,
        "peak_per_file": (peak - baseline) / count,
        "retained_per_file": (kept - baseline) / count,
        "peak_above_retained_per_file": (peak - kept) / count,
        "result_per_file": (current - kept) / count,
        "wall_s_traced": wall,
    }


def bench_memory(counts: tuple[int, ...]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for count in counts:
        for side in (OURS, UPSTREAM):
            try:
                out.setdefault(side, {})[str(count)] = memory_per_file(count, side)
            except Exception as exc:  # noqa: BLE001 - reported
                out.setdefault(side, {})[str(count)] = {"error": error_text(exc)}
            print(f"    {side}, {count} files: done", flush=True)
    return out
