"""The contenders of the cluster benchmark (threads, a process pool, a Dask ``LocalCluster``), the cases they
run (a tree into a store from ``registry_store()``), and the CPU seconds read from ``/proc``."""

from __future__ import annotations

import contextlib
import logging
import os
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from remote_store import Store
    from tree_files import Tree

__all__ = [
    "AA",
    "BUCKET",
    "DASK",
    "KEY_ENV",
    "POOL",
    "S3_ROOT",
    "SECRET_ENV",
    "THREADS",
    "WORKERS",
    "Case",
    "Side",
    "cpu_seconds",
    "local_config",
    "s3_config",
    "start_cluster",
    "start_pool",
]

# The workers resolve the registry config's ${VAR} placeholders from their own environment (inherited from here).
KEY_ENV, SECRET_ENV = "RST_BENCH_S3_KEY", "RST_BENCH_S3_SECRET"
os.environ.setdefault(KEY_ENV, "testing")
os.environ.setdefault(SECRET_ENV, "testing")

WORKERS = 16  # max_workers of every tree call
POOL_PROCESSES = 4
DASK_WORKERS, DASK_THREADS = 2, 8
BUCKET = "cluster-bench"
S3_ROOT = "cluster"  # the S3 store's root_path in the bucket
CLK_TCK = os.sysconf("SC_CLK_TCK")

THREADS = "threads"
AA = "threads (A/A)"
POOL = f"ProcessPoolExecutor({POOL_PROCESSES})"
DASK = f"LocalCluster({DASK_WORKERS} x {DASK_THREADS} threads)"


# --------------------------------------------------------------------------- CPU, sides and cases


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds of the live processes *pids* (all their threads), from ``/proc``."""
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError, IndexError, ValueError):
            with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
    return total / CLK_TCK


@dataclass
class Side:
    """One contender: the executor given to the tree call (``None``: the default thread pool)."""

    name: str
    executor: Any = None
    worker_pids: Callable[[], list[int]] = list  # its worker processes, for the CPU column


@dataclass
class Case:
    """One tree into one store: where a run's destination goes, how it is listed and removed."""

    key: str
    title: str
    tree: Tree
    warm: Tree
    store: Store
    sides: list[Side]
    listing: Callable[[str], tuple[int, int]]
    cleanup: Callable[[str], None]
    server_pids: Callable[[], list[int]] = list
    notes: list[str] = field(default_factory=list)


def s3_config(endpoint: str, region: str) -> dict[str, Any]:
    """A remote-store registry config: store ``bench`` in the moto bucket, credentials as placeholders."""
    options = {
        "bucket": BUCKET,
        "endpoint_url": endpoint,
        "region_name": region,
        "key": "${" + KEY_ENV + "}",
        "secret": "${" + SECRET_ENV + "}",
    }
    return {
        "backends": {"moto": {"type": "s3", "options": options}},
        "stores": {"bench": {"backend": "moto", "root_path": S3_ROOT}},
    }


def local_config(root: Path) -> dict[str, Any]:
    """A remote-store registry config: store ``bench`` on a ``LocalBackend`` rooted at *root*."""
    return {
        "backends": {"shm": {"type": "local", "options": {"root": str(root)}}},
        "stores": {"bench": {"backend": "shm", "root_path": ""}},
    }


def start_pool() -> tuple[ProcessPoolExecutor, float]:
    """``ProcessPoolExecutor(4)`` with its processes up (a no-op task each), and how long that took.

    Started first, before any thread or store exists in this process (the
    default start method on Linux forks).
    """
    began = time.perf_counter()
    pool = ProcessPoolExecutor(POOL_PROCESSES)
    for future in [pool.submit(os.getpid) for _ in range(POOL_PROCESSES * 4)]:
        future.result()
    return pool, time.perf_counter() - began


def start_cluster(workdir: Path) -> tuple[Any, Any, float]:
    """The ``LocalCluster`` and its ``Client``, both workers up, and how long that took."""
    from distributed import Client, LocalCluster

    began = time.perf_counter()
    cluster = LocalCluster(
        n_workers=DASK_WORKERS,
        threads_per_worker=DASK_THREADS,
        processes=True,
        dashboard_address=None,
        local_directory=str(workdir / "dask"),
        silence_logs=logging.ERROR,
    )
    client = Client(cluster)
    client.wait_for_workers(DASK_WORKERS, timeout=120)
    return cluster, client, time.perf_counter() - began
