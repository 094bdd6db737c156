"""Cluster benchmark: the tree calls on threads, a ``ProcessPoolExecutor`` and a Dask ``LocalCluster``.

::

    python benchmarks/cluster.py            # the full run (a few minutes)
    python benchmarks/cluster.py --quick    # a smoke run (well under a minute)

It measures, in one run, with ratios taken against the threads side of the
same run:

1. Many small files: 400 x 64 KiB (quick: 60 x 64 KiB), ``upload_tree`` from
   a local folder to S3 on a moto server on 127.0.0.1 (started and stopped
   here). The S3 store comes from ``registry_store()`` with a dict config
   whose credentials are ``${VAR}`` placeholders, so it travels to worker
   processes as config + name and each worker builds it once. Sides, all with
   ``max_workers=16``: threads (the default executor), "threads (A/A)" (the
   same again under another name: its ratio to threads is the noise floor of
   the run), ``ProcessPoolExecutor(4)``, and a ``distributed.Client`` on
   ``LocalCluster(n_workers=2, threads_per_worker=8, processes=True)``.
2. One big file: 1 x 256 MiB (quick: 16 MiB), ``upload_tree`` from a local
   folder to a local store (``LocalBackend``, also from ``registry_store()``)
   on /dev/shm; sides threads, threads (A/A) and the LocalCluster. A file is
   one task: it runs in one worker, so a cluster cannot make it faster.

The process pool and the cluster are started once, before any timed run
(their start-up times are reported apart), and kept for the whole run; each
side first moves a small warm-up tree, untimed, so every worker has built its
store before the trials. Sides run in ABBA order (forward, backward, ...);
each run writes to a fresh prefix, and the destination is verified after the
run (file count and total bytes, listed independently of the store under
test), then removed. Times are the best of the trials (``--trials``, default
6, an even number for ABBA; quick 2); the median is shown too. For each run
the CPU seconds of the caller, of the worker processes and of the moto
server are read from ``/proc``, to show where the time goes.

It prints Markdown tables and a conclusion per case, and writes
``benchmarks/results/cluster.json`` and ``cluster.md`` (a quick run writes to
the temp dir instead, like ``run.py --quick``).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from cluster_sides import (  # noqa: E402
    AA,
    BUCKET,
    DASK,
    POOL,
    S3_ROOT,
    THREADS,
    WORKERS,
    Case,
    Side,
    cpu_seconds,
    local_config,
    s3_config,
    start_cluster,
    start_pool,
)
from machine import describe, load, tmpfs  # noqa: E402
from report import add_output_options, resolve_outputs, table, write_results  # noqa: E402
from servers import MotoBucket, MotoServer  # noqa: E402
from timing import ABANDONED, exit_with, in_thread, noise_floor, summary, trial_runs, warm_up  # noqa: E402
from tree_files import KiB, MiB, Tree, check_listing, check_result, local_listing  # noqa: E402

import remote_store_transfer as rst  # noqa: E402

__all__ = ["main"]


# --------------------------------------------------------------------------- measuring


def run_tree(case: Case, side: Side, tree: Tree, dest: str, timeout: float) -> None:
    """``upload_tree`` of *tree* to *dest* in a daemon thread (every side alike); raise unless every file moved."""

    def call() -> Any:
        return rst.upload_tree(case.store, tree.local, dest, max_workers=WORKERS, executor=side.executor)

    check_result(in_thread(call, timeout, f"{case.key}/{dest}"), tree)


def measure(case: Case, trials: int, timeout: float) -> dict[str, Any]:
    """Every side *trials* times in ABBA order, each run to a fresh prefix, verified, then removed.

    A side that fails (an exception, a wrong destination, a hang) is reported
    with its error and leaves the case.
    """
    tree = case.tree
    sides = {side.name: side for side in case.sides}

    def warm_once(name: str) -> None:  # untimed: each worker builds its store and plugin manager
        dest = f"warm/{case.key}/{name}"
        try:
            run_tree(case, sides[name], case.warm, dest, timeout)
        finally:
            case.cleanup(dest)

    def once(name: str, trial: int) -> tuple[float, dict[str, float]]:
        side, dest = sides[name], f"runs/{case.key}/{name}/{trial}"
        try:
            pids = {"caller": [os.getpid()], "workers": side.worker_pids(), "server": case.server_pids()}
            cpu_before = {role: cpu_seconds(p) for role, p in pids.items()}
            start = time.perf_counter()
            run_tree(case, side, tree, dest, timeout)
            wall = time.perf_counter() - start
            cpu = {role: cpu_seconds(p) - cpu_before[role] for role, p in pids.items()}
            check_listing(case.listing(dest), tree)
        finally:
            case.cleanup(dest)
        print(f"    {name:<34} trial {trial}: {wall:7.3f} s", flush=True)
        return wall, cpu

    errors: dict[str, str] = {}
    runs = trial_runs(warm_up(list(sides), warm_once, errors), trials, once, errors)
    out: dict[str, Any] = {}
    for name in sides:
        times = [wall for wall, _ in runs.get(name, [])]
        cpus = [cpu for _, cpu in runs.get(name, [])]
        row: dict[str, Any] = {"times_s": times, "cpu_s": cpus}
        out[name] = row
        if name in errors:
            row["error"] = errors[name]
        if times:
            row.update(summary(times, tree.total, tree.count))
            row["cpu_median_s"] = {
                role: statistics.median(c[role] for c in cpus) for role in ("caller", "workers", "server")
            }
    anchor = out[THREADS]
    for row in out.values():
        if "best_s" in row and "best_s" in anchor:
            row["ratio_best"] = row["best_s"] / anchor["best_s"]
            row["ratio_median"] = row["median_s"] / anchor["median_s"]
    return out


# --------------------------------------------------------------------------- conclusions and report


def case_noise(rows: dict[str, Any]) -> float:
    """How far the A/A ratio strays from 1 (best and median), at least 5 %."""
    aa = rows.get(AA, {})
    return max(noise_floor(aa.get("ratio_best"), 0.05), noise_floor(aa.get("ratio_median"), 0.05))


def verdict(row: dict[str, Any], noise: float) -> str:
    ratio = row.get("ratio_best")
    if ratio is None:
        return "did not run"
    if ratio < 1 - noise:
        return f"{1 / ratio:.2f}x faster than threads"
    if ratio > 1 + noise:
        return f"{ratio:.2f}x slower than threads"
    return "same as threads (within the A/A noise)"


def conclude(key: str, rows: dict[str, Any], cpus: int, load: float) -> str:
    noise = case_noise(rows)
    others = [name for name in rows if name not in (THREADS, AA)]
    parts = [f"{name}: {verdict(rows[name], noise)}" for name in others]
    text = "; ".join(parts) + f" (noise floor +/-{noise:.0%})."
    faster = [name for name in others if rows[name].get("ratio_best", 1.0) < 1 - noise]
    server = rows.get(THREADS, {}).get("cpu_median_s", {}).get("server")
    wall = rows.get(THREADS, {}).get("median_s")
    busy = f" moto used {server / wall:.0%} of a core during the threads runs;" if server and wall else ""
    if key == "small":
        if faster:
            text += (
                f" Scales out: many small files spread over processes, each with its own GIL and store;{busy}"
                f" gains are capped by the {cpus} CPU(s) that the caller, the workers and the server share."
            )
        else:
            text += (
                f" Does not scale out here:{busy} with {cpus} CPU(s) shared by the caller, the workers and the"
                " server there are no idle cores for the extra processes, so they add pickling, scheduling and"
                " IPC per file; processes pay off with idle cores (or more machines) to spread the files over."
            )
    else:
        text += (
            " One big file does not scale out: a file is one task, read and written by one worker thread in one"
            " process whatever the cluster's size; the cluster can only add its overhead (per task, and its"
            " workers' settings: see the notes)."
        )
    if load > cpus / 2:
        text += f" (The machine was shared: load average {load:.1f} on {cpus} CPU(s) before the run.)"
    return text


def render_markdown(results: dict[str, Any]) -> str:
    meta = results["meta"]
    lines = [
        "# Tree calls on threads, processes and a Dask LocalCluster",
        "",
        f"{meta['date']}, Python {meta['python']}, {meta['machine']}, remote-store {meta['remote_store']},"
        f" dask/distributed {meta['distributed']}, git {meta['git']}; load {meta['load_before']:.2f} before,"
        f" {meta['load_after']:.2f} after{' (quick run)' if meta['quick'] else ''}.",
        f"Best of {meta['trials']} trials per side in ABBA order, `max_workers={WORKERS}` everywhere;"
        " ratio = side's time / threads' time of the same run (< 1: faster than threads).",
        "",
        "Start-up, outside the timed runs: "
        + ", ".join(f"{name} {sec:.2f} s" for name, sec in results["startup_s"].items())
        + ".",
    ]
    headers = [
        "side",
        "best s",
        "median s",
        "ratio (best)",
        "ratio (median)",
        "MB/s",
        "files/s",
        "CPU s caller / workers / server",
    ]
    for key, case in results["cases"].items():
        rows = []
        for name, row in case["sides"].items():
            if "best_s" not in row:
                rows.append([name, "-", "-", "-", "-", "-", "-", row.get("error", "no run")])
                continue
            cpu = row["cpu_median_s"]
            rows.append(
                [
                    name,
                    f"{row['best_s']:.3f}",
                    f"{row['median_s']:.3f}",
                    f"{row['ratio_best']:.2f}",
                    f"{row['ratio_median']:.2f}",
                    f"{row['mb_s']:.1f}",
                    f"{row['files_s']:.0f}",
                    f"{cpu['caller']:.2f} / {cpu['workers']:.2f} / {cpu['server']:.2f}",
                ]
            )
        lines += [
            "",
            f"## {case['title']}",
            "",
            *table(None, headers, rows),
            "",
            f"**Conclusion ({key}):** {case['conclusion']}",
        ]
        errors = [f"{name}: {row['error']}" for name, row in case["sides"].items() if "error" in row]
        lines += [f"- error: {e}" for e in errors]
    lines += ["", "### Notes", "", *[f"- {n}" for n in results["notes"]]]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: small trees, 2 trials")
    parser.add_argument("--trials", type=int, help="runs per side, ABBA order (default 6; quick 2)")
    parser.add_argument("--workdir", help="where trees, stores and servers live (default: a temp dir in /dev/shm)")
    add_output_options(parser, "cluster")
    parser.add_argument("--timeout", type=float, help="seconds before a run counts as hung (300; quick 60)")
    args = parser.parse_args(argv)
    logging.getLogger("remote_store_transfer").setLevel(logging.ERROR)
    resolve_outputs(args)
    trials = args.trials or (2 if args.quick else 6)
    timeout = args.timeout or (60.0 if args.quick else 300.0)
    small_shape = (60, 64 * KiB) if args.quick else (400, 64 * KiB)
    big_shape = (1, 16 * MiB) if args.quick else (1, 256 * MiB)
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="rst-cluster-", dir=tmpfs()))
    cpus = os.cpu_count() or 1
    print(f"cluster benchmark in {workdir}: {trials} trials per side, ABBA order", flush=True)

    from importlib.metadata import version

    results: dict[str, Any] = {
        "meta": describe(
            distributed=version("distributed"),
            moto=version("moto"),
            trials=trials,
            workers=WORKERS,
            quick=args.quick,
            timeout_s=timeout,
        ),
        "startup_s": {},
        "cases": {},
        "notes": [
            "Stores from registry_store() with a dict config: they travel to worker processes as config + name"
            " (credentials as ${VAR} placeholders, resolved from each worker's environment); each worker builds"
            " the store once, during the untimed warm-up.",
            "The threads side uses the default executor (a ThreadPoolExecutor of max_workers, made per call);"
            " the process pool and the cluster are made once and reused by every run.",
            f"{POOL}: the default start method of Python {platform.python_version()} on {sys.platform}"
            " (fork on Linux); started before any thread or store of the caller existed.",
            "Each run writes to a fresh prefix; the destination is listed after the run (boto3 on the bucket, or"
            " os.walk for the local store), must hold every file with every byte, and is then removed.",
            "CPU s: medians per run of user + system CPU from /proc: the caller (all its threads), the pool's or"
            " the cluster's worker processes, and the moto server (0 for the local store).",
            "The big-file case writes to a LocalBackend store on /dev/shm from a source on /dev/shm (no disk).",
        ],
    }
    pool = cluster = client = None
    try:
        trees = {
            "small": Tree("small", *small_shape, workdir / "trees" / "small").make(),
            "big": Tree("big", *big_shape, workdir / "trees" / "big").make(),
        }
        warm = Tree("warm", 48, 1 * KiB, workdir / "trees" / "warm").make()
        print("  starting the process pool ...", flush=True)
        pool, results["startup_s"][POOL] = start_pool()
        pool_pids = list(pool._processes)  # for the CPU column only
        with contextlib.ExitStack() as stack:
            moto = MotoBucket(stack.enter_context(MotoServer(workdir / "moto").running()), BUCKET, S3_ROOT)
            print("  starting the LocalCluster ...", flush=True)
            cluster, client, results["startup_s"][DASK] = start_cluster(workdir)
            dask_pids = sorted(client.run(os.getpid).values())
            trim = sorted({str(v) for v in client.run(os.environ.get, "MALLOC_TRIM_THRESHOLD_").values()})
            results["meta"]["dask_worker_malloc_trim_threshold"] = trim
            if trim != ["None"]:
                results["notes"].append(
                    f"The cluster's workers run with MALLOC_TRIM_THRESHOLD_={', '.join(trim)} (distributed's default"
                    " `distributed.nanny.pre-spawn-environ`): glibc then maps and unmaps every large chunk buffer"
                    " anew instead of reusing it, which costs CPU per chunk. A threads-only check outside this"
                    " script (the same 256 MiB upload_tree to /dev/shm, best of 6, in fresh processes) took"
                    " 0.16-0.17 s without the variable and 0.24-0.25 s with it set to 65536: the same gap as"
                    " threads vs the cluster in the big-file case, so that gap is the allocator setting, not Dask's"
                    " task overhead."
                )
            threads = Side(THREADS)
            aa = Side(AA)
            pool_side = Side(POOL, pool, lambda: pool_pids)
            dask_side = Side(DASK, client, lambda: dask_pids)
            shm_root = workdir / "store"
            cases = [
                Case(
                    "small",
                    f"Many small files: {trees['small'].name}, local folder -> S3 (moto on 127.0.0.1)",
                    trees["small"],
                    warm,
                    rst.registry_store(s3_config(moto.server.endpoint, moto.server.region), "bench"),
                    [threads, aa, pool_side, dask_side],
                    moto.listing,
                    moto.remove,
                    moto.pids,
                ),
                Case(
                    "big",
                    f"One big file: {trees['big'].name}, local folder -> local store on /dev/shm",
                    trees["big"],
                    warm,
                    rst.registry_store(local_config(shm_root), "bench"),
                    [threads, aa, dask_side],
                    lambda dest: local_listing(shm_root / dest),
                    lambda dest: shutil.rmtree(shm_root / dest, ignore_errors=True),
                ),
            ]
            for case in cases:
                print(f"  {case.title}: {', '.join(s.name for s in case.sides)}", flush=True)
                began = time.perf_counter()
                rows = measure(case, trials, timeout)
                print(f"    {time.perf_counter() - began:.1f} s", flush=True)
                results["cases"][case.key] = {
                    "title": case.title,
                    "tree": case.tree.name,
                    "sides": rows,
                    "conclusion": conclude(case.key, rows, cpus, results["meta"]["load_before"]),
                }
    finally:
        if client is not None:
            with contextlib.suppress(Exception):
                client.close()
        if cluster is not None:
            with contextlib.suppress(Exception):
                cluster.close()
        if pool is not None:
            pool.shutdown(cancel_futures=True)
        shutil.rmtree(workdir, ignore_errors=True)

    results["meta"]["load_after"] = load()
    if ABANDONED:
        results["notes"].append(f"{len(ABANDONED)} run(s) still hung at their timeout: {', '.join(ABANDONED)}")
    report = render_markdown(results)
    print()
    print(report)
    write_results(results, report, args.json, args.markdown)
    print(f"wrote {args.json} and {args.markdown}")
    failed = [f"{key}/{name}" for key, c in results["cases"].items() for name, r in c["sides"].items() if "error" in r]
    return 1 if failed else 0


if __name__ == "__main__":
    exit_with(main())
