"""Tree benchmarks: ``upload_tree`` / ``download_tree`` against upstream's per-file loop and ``rclone copy``.

Run it alone, or after the main suite::

    python benchmarks/trees.py               # the full run (a few minutes)
    python benchmarks/trees.py --quick       # a smoke run (well under a minute)
    python benchmarks/run.py --trees         # the main suite, then this one (--quick passes on)

It measures, in one run, against real servers on 127.0.0.1 (a moto S3 server
and OpenSSH ``sshd``, both started and stopped here; see
``tests/harness.py``, the servers the tests use):

1. Two trees, 400 x 64 KiB and 8 x 32 MiB (quick: 40 x 64 KiB and 2 x 4 MiB),
   for local -> S3, S3 -> local and local -> SFTP. Sides: ours
   (``upload_tree`` / ``download_tree``, ``max_workers=16``); upstream's
   natural loop (one ``remote_store.ext.transfer.upload`` / ``download`` per
   file, default ``overwrite=False``); ``rclone copy --transfers 16`` (rclone's
   defaults otherwise) against the same server; and "upstream loop (A/A)", the
   upstream loop measured a second time under another name: its ratio to the
   first is the noise floor of the run. On SFTP, ours runs twice more: with
   a store from ``registry_store`` (opened once per worker thread) on
   TCP_NODELAY sockets, and (small tree only) with the stock backend type, whose
   sockets keep Nagle on; rclone runs twice too, the second time with
   ``--sftp-disable-hashcheck``. Sides run in ABBA order (forward,
   then backward, ...); each run writes to a fresh destination, which is
   verified afterwards (file count and total bytes) and then removed, so a
   broken run cannot look fast and nothing is ever skipped.
2. Targets on the many-small-files tree, local -> S3: ours at least 2x
   faster than the upstream loop, and at most 1.5x rclone's wall time.
3. Requests per file to S3, counted in moto's access log (one line per
   request) in the window of each run, for every S3 side.
4. Memory per file: ``transfer_tree`` memory store -> memory store of
   16-byte files at 10,000 and 100,000 files (quick: 1,000 and 10,000); peak
   ``tracemalloc`` during the call above the baseline taken after the source
   was built, divided by the file count; next to the same for upstream's loop.
5. The small tree local -> S3 again over remote-store's ``S3PyArrowBackend``
   (needs ``pyarrow``, in the ``bench`` extra), ours and the upstream loop.

Times are the best of the trials (``--trials``, default 4; quick 2); ratios
are taken between sides of the same run. It prints Markdown tables and
PASS/FAIL, and writes ``benchmarks/results/trees.json`` and ``trees.md``
(a quick run writes to the temp dir instead, like ``run.py --quick``).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from machine import describe, load, tmpfs  # noqa: E402
from report import add_output_options, resolve_outputs, table, target_lines, write_results  # noqa: E402
from servers import MotoBucket, MotoServer, SshServer  # noqa: E402
from timing import ABANDONED, exit_with, in_thread, ratio, summary, trial_runs, warm_up  # noqa: E402
from tree_files import KiB, MiB, Tree, check_listing  # noqa: E402
from tree_memory import bench_memory  # noqa: E402
from tree_sides import (  # noqa: E402
    AA,
    BUCKET,
    OURS,
    OURS_PA,
    OURS_REG,
    OURS_REG_NAGLE,
    RCLONE,
    RCLONE_NOHASH,
    RCLONE_SIDE,
    UPSTREAM,
    UPSTREAM_PA,
    WORKERS,
    Route,
    rclone_config,
    s3_routes,
    sftp_route,
)

__all__ = ["main"]

WARM_TIMEOUT = 30.0  # seconds: the warm-up moves 3 files of 1 KiB
SMALL_ONLY = (OURS_PA, UPSTREAM_PA, OURS_REG_NAGLE)  # sides measured on the many-small-files tree only

BUSY_BEFORE = 1.5  # 1-minute load average before the run above which the machine counts as busy
BUSY_DURING = 3.0  # ... after a case (this run alone makes about 2 to 2.5 on two cores)
SPEEDUP_TARGET = 2.0  # upstream loop time / our time, small tree, local -> S3
RCLONE_TARGET = 1.5  # our time / rclone time, same case


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


# --------------------------------------------------------------------------- measuring


def measure(
    route: Route, tree: Tree, sides: list[str], trials: int, moto: MotoBucket, timeout: float
) -> dict[str, Any]:
    """Every side *trials* times in ABBA order, each run to a fresh destination, verified, then removed.

    A side that fails (an exception, a wrong destination, a hang cut off
    after *timeout* seconds) is reported with its error and leaves the run.
    """
    counting = route.counts_requests
    warm = Tree(f"warm-{tree.key}", 3, 1 * KiB, tree.local.parent / f"warm-{tree.key}")
    if not warm.local.exists():
        warm.make()
    if route.name.startswith("S3"):
        moto.put_tree(warm)

    def run(name: str, source: Tree, dest: str, limit: float) -> None:
        side = route.sides[name]
        in_thread(lambda: side.run(source, dest), limit, dest, stop=side.drop)

    def warm_once(name: str) -> None:  # imports, connections, first-use caches (untimed)
        dest = route.destination(warm, f"warm-{slug(name)}")
        try:
            run(name, warm, dest, min(timeout, WARM_TIMEOUT))
        finally:
            route.cleanup(dest)

    def once(name: str, trial: int) -> tuple[float, dict[str, int]]:
        dest = route.destination(tree, f"{slug(name)}-{trial}")
        try:
            start_mark = moto.mark() if counting else 0
            start = time.perf_counter()
            run(name, tree, dest, timeout)
            wall = time.perf_counter() - start
            requests = moto.requests(start_mark, moto.mark()) if counting else {}
            check_listing(route.listing(dest), tree)
            return wall, requests
        finally:
            route.cleanup(dest)

    errors: dict[str, str] = {}
    runs = trial_runs(warm_up(sides, warm_once, errors), trials, once, errors)
    out: dict[str, Any] = {}
    for name in sides:
        row: dict[str, Any] = {}
        out[name] = row
        if name in errors:
            row["error"] = errors[name]
        times = [wall for wall, _ in runs.get(name, [])]
        requests = [counts for _, counts in runs.get(name, [])] if counting else []
        if times:
            row.update(times_s=times, **summary(times, tree.total, tree.count))
        if requests:
            row["requests"] = requests
            row["requests_per_file"] = statistics.mean(sum(r.values()) for r in requests) / tree.count
            methods = sorted({m for r in requests for m in r})
            row["requests_per_file_by_method"] = {
                m: statistics.mean(r.get(m, 0) for r in requests) / tree.count for m in methods
            }
    return out


COMPARISONS = (
    # (label, numerator, denominator): time over time, so > 1 means the denominator is faster
    ("upstream loop / ours (speed-up)", UPSTREAM, OURS),
    ("ours / rclone (wall time)", OURS, RCLONE_SIDE),
    ("ours / rclone --sftp-disable-hashcheck (wall time)", OURS, RCLONE_NOHASH),
    ("upstream loop / ours, registry_store (speed-up)", UPSTREAM, OURS_REG),
    ("ours, registry_store / rclone --sftp-disable-hashcheck (wall time)", OURS_REG, RCLONE_NOHASH),
    ("A/A: upstream loop / upstream loop (noise floor)", UPSTREAM, AA),
    ("upstream loop / ours, S3PyArrowBackend (speed-up)", UPSTREAM_PA, OURS_PA),
    ("ours, S3PyArrowBackend / rclone (wall time)", OURS_PA, RCLONE_SIDE),
    ("ours, S3PyArrowBackend / ours, S3Backend (wall time)", OURS_PA, OURS),
)


# --------------------------------------------------------------------------- targets, report


LEGEND = (
    f"ours: `upload_tree` / `download_tree` with `max_workers={WORKERS}`, one store per side. A plain SFTP store "
    "is used by the tree behind a lock, one file at a time (remote-store's SFTP backend is not thread-safe); "
    '"ours, registry_store" builds the store with `registry_store()`, which the tree opens once per worker '
    "thread, on TCP_NODELAY sockets like the other SFTP sides; "
    '"Nagle on" is the same with the stock `sftp` backend type (paramiko leaves Nagle on: ~40 ms per write here).',
    "upstream loop: one `remote_store.ext.transfer.upload` / `download` per file, default `overwrite=False`; "
    "(A/A) is the same loop measured again under another name: its ratio is the noise floor.",
    f"rclone: `rclone copy --transfers {WORKERS}`, otherwise rclone's defaults (S3: HEAD after each PUT; "
    "SFTP: `md5sum` run over SSH after each file, which `--sftp-disable-hashcheck` turns off). "
    "Its time includes starting the process and its connections.",
    "Every run writes to a fresh destination, verified afterwards (file count, total bytes), then removed. "
    "A side that failed, or hung past the timeout (its store is then closed), shows its error in the note column.",
    "requests/file: lines in moto's access log during the run, divided by the file count (listing included).",
    "Memory: the destination is a MemoryBackend store, so what it keeps counts in the peak; "
    '"retained after the call" is what stays once the result is dropped (the copied files and their metadata).',
)


def check_targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    small = results["cases"].get("local -> S3", {}).get("small", {})
    rows = small.get("sides", {})
    name = small.get("tree", "small tree")
    checks = []
    speedup = ratio(rows, UPSTREAM, OURS)
    checks.append(
        {
            "target": f"{name}, local -> S3: upstream loop / ours >= {SPEEDUP_TARGET:.1f}",
            "value": "n/a" if speedup is None else f"{speedup:.2f}x",
            "pass": speedup is not None and speedup >= SPEEDUP_TARGET,
        }
    )
    vs_rclone = ratio(rows, OURS, RCLONE_SIDE)
    checks.append(
        {
            "target": f"{name}, local -> S3: ours / rclone (wall time) <= {RCLONE_TARGET:.1f}",
            "value": "n/a" if vs_rclone is None else f"{vs_rclone:.2f}x",
            "pass": vs_rclone is not None and vs_rclone <= RCLONE_TARGET,
        }
    )
    return checks


def _methods(row: dict[str, Any]) -> str:
    by = row.get("requests_per_file_by_method", {})
    return ", ".join(f"{m} {v:.2f}" for m, v in by.items())


def render_markdown(results: dict[str, Any]) -> str:
    meta = results["meta"]
    lines = [
        f"Run of {meta['date']} on {meta['machine']}, commit {meta.get('git')}, Python {meta['python']}, "
        f"remote-store {meta['remote_store']}, "
        f"rclone {meta['rclone']}; best of {meta['trials']} trials in ABBA order, {WORKERS} workers for ours and "
        f"rclone; load average {meta['load_before']:.2f} before, {meta['load_after']:.2f} after (this run's own "
        "servers and workers included)."
    ]
    loads = [
        f"{c['load_after']:.1f}" for cases in results["cases"].values() for c in cases.values() if "load_after" in c
    ]
    if loads:
        lines[0] += f" Load average after each case: {', '.join(loads)}."
    if meta.get("busy"):
        lines += [
            "",
            f"**Other work competed for the CPUs (load above {BUSY_BEFORE} before the run or above {BUSY_DURING} "
            "during it): ratios are less reliable; the A/A lines show by how much.**",
        ]

    rows = []
    for route, cases in results["cases"].items():
        for case in cases.values():
            for side, row in case["sides"].items():
                if "best_s" not in row:
                    rows.append([route, case["tree"], side, "", "", "", "", "", row.get("error", "no run")])
                    continue
                rpf = f"{row['requests_per_file']:.2f}" if "requests_per_file" in row else ""
                cells = [f"{row['best_s']:.3f}", f"{row['median_s']:.3f}", f"{row['mb_s']:.1f}"]
                cells += [f"{row['files_s']:.0f}", rpf, _methods(row)]
                rows.append([route, case["tree"], side, *cells])
    headers = ["route", "tree", "side", "best (s)", "median (s)", "MB/s", "files/s", "requests/file", "note"]
    lines += table("Wall time per tree (moto S3 and OpenSSH on 127.0.0.1)", headers, rows)

    rows = []
    for route, cases in results["cases"].items():
        for case in cases.values():
            for label, a, b in COMPARISONS:
                value = ratio(case["sides"], a, b)
                if value is not None:
                    rows.append([route, case["tree"], label, f"{value:.2f}x"])
    lines += table("Ratios (best times of the same run)", ["route", "tree", "comparison", "ratio"], rows)

    lines += target_lines("Targets", results["targets"])

    mem = results.get("memory")
    if mem:
        rows = []
        for side, by_count in mem.items():
            for count, row in by_count.items():
                if "error" in row:
                    rows.append([side, count, "", "", "", "", row["error"]])
                    continue
                keys = ("peak_per_file", "retained_per_file", "peak_above_retained_per_file", "result_per_file")
                cells = [f"{row[k]:.0f}" for k in keys]
                rows.append([side, f"{int(count):,}", *cells, ""])
        headers = ["side", "files", "peak bytes/file", "retained after the call, bytes/file", "peak above that"]
        headers += ["the result object, bytes/file"]
        title = "Memory: transfer_tree memory -> memory, 16-byte files, peak tracemalloc above the built source"
        lines += table(title, [*headers, "note"], rows)
    lines += ["", "### Notes", "", *[f"- {n}" for n in [*LEGEND, *results.get("notes", [])]]]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- main


def _rclone_version() -> str:
    with contextlib.suppress(Exception):
        done = subprocess.run([RCLONE, "version"], capture_output=True, text=True, check=True, timeout=30)
        return done.stdout.split()[1]
    return "missing"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: small trees, 2 trials, fewer files in memory")
    parser.add_argument("--trials", type=int, help="runs per side, ABBA order (default 4; quick 2)")
    parser.add_argument("--no-sftp", action="store_true", help="skip local -> SFTP")
    parser.add_argument("--no-pyarrow", action="store_true", help="skip the S3PyArrowBackend sides")
    parser.add_argument("--no-memory", action="store_true", help="skip the memory-per-file measurement")
    parser.add_argument("--workdir", help="where trees and servers live (default: a temp dir in /dev/shm)")
    add_output_options(parser, "trees")
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument("--timeout", type=float, help="seconds before a run counts as hung (120; quick 30)")
    args = parser.parse_args(argv)
    # Failed files are in the results; one warning per failed clean-up would drown the progress lines.
    logging.getLogger("remote_store_transfer").setLevel(logging.ERROR)
    resolve_outputs(args)
    trials = args.trials or (2 if args.quick else 4)
    args.timeout = args.timeout or (30.0 if args.quick else 120.0)
    if args.quick:
        shapes = {"small": (40, 64 * KiB), "large": (2, 4 * MiB)}
        mem_counts: tuple[int, ...] = (1_000, 10_000)
    else:
        shapes = {"small": (400, 64 * KiB), "large": (8, 32 * MiB)}
        mem_counts = (10_000, 100_000)
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="rst-trees-", dir=tmpfs()))
    print(f"tree benchmark in {workdir}: {trials} trials per side, ABBA order", flush=True)

    results: dict[str, Any] = {
        "meta": describe(
            rclone=_rclone_version(), trials=trials, workers=WORKERS, quick=args.quick, timeout_s=args.timeout
        ),
        "cases": {},
        "notes": [],
    }
    notes: list[str] = results["notes"]
    trees = {key: Tree(key, count, size, workdir / "trees" / key) for key, (count, size) in shapes.items()}
    try:
        for tree in trees.values():
            tree.make()
        with contextlib.ExitStack() as stack:
            moto_server = stack.enter_context(MotoServer(workdir / "moto").running())
            moto = MotoBucket(moto_server, BUCKET)
            ssh: SshServer | None = None
            if not args.no_sftp:
                try:
                    ssh = stack.enter_context(SshServer(workdir / "ssh").running())
                except Exception as exc:  # noqa: BLE001 - reported; S3 still runs
                    notes.append(f"local -> SFTP skipped: sshd did not start: {type(exc).__name__}: {exc}")
            conf = rclone_config(workdir / "rclone.conf", moto_server, ssh)
            for tree in trees.values():
                moto.put_tree(tree)
            upload, download, pa_notes = s3_routes(moto, conf, workdir, not args.no_pyarrow)
            routes = [upload, download]
            if ssh is not None:
                routes.append(sftp_route(ssh, conf))
            for route in routes:
                for tree in trees.values():
                    sides = [s for s in route.sides if tree.key == "small" or s not in SMALL_ONLY]
                    print(f"  {route.name}, {tree.name}: {', '.join(sides)} ...", flush=True)
                    began = time.perf_counter()
                    rows = measure(route, tree, sides, trials, moto, args.timeout)
                    print(f"    {time.perf_counter() - began:.1f} s", flush=True)
                    for side, note in route.notes.items():
                        if tree.key == "small":
                            rows[side] = {"error": note}
                    case = {"tree": tree.name, "sides": rows, "load_after": load()}
                    results["cases"].setdefault(route.name, {})[tree.key] = case
            if pa_notes:
                notes.append(f"S3PyArrowBackend: {next(iter(pa_notes.values()))}")
        if not args.no_memory:
            print(f"  memory per file at {', '.join(f'{c:,}' for c in mem_counts)} files ...", flush=True)
            began = time.perf_counter()
            results["memory"] = bench_memory(mem_counts)
            print(f"    {time.perf_counter() - began:.1f} s", flush=True)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    meta = results["meta"]
    meta["load_after"] = load()
    # The run itself keeps both cores busy (its servers, 16 workers, rclone: a load of 2 to 2.5 on its own).
    loads = [c["load_after"] for cases in results["cases"].values() for c in cases.values()]
    meta["busy"] = meta["load_before"] > BUSY_BEFORE or max(loads, default=0.0) > BUSY_DURING
    if ABANDONED:
        notes.append(f"{len(ABANDONED)} run(s) still hung after their store was closed: {', '.join(ABANDONED)}")
    results["targets"] = check_targets(results)
    report = render_markdown(results)
    print()
    print(report)
    write_results(results, report, args.json, args.markdown)
    print(f"wrote {args.json} and {args.markdown}")
    missed = [c["target"] for c in results["targets"] if not c["pass"]]
    print(f"{len(missed)} target(s) missed" if missed else "all targets met")
    return 1 if missed and args.check else 0


if __name__ == "__main__":
    exit_with(main())
