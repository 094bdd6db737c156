"""The benchmark suite: remote-store-transfer against upstream ``remote_store.ext.transfer`` and the kernel.

One command, one process, ABBA order, best of N::

    python benchmarks/run.py            # the full run (256 MiB, 6 trials, S3 included)
    python benchmarks/run.py --quick    # a smoke run (results go to the temp dir)
    python benchmarks/run.py --trees    # then the tree benchmarks too (benchmarks/trees.py)

It measures, in one run (one module each, each runnable alone):

1. ``throughput.py``: ``upload``, ``download`` and ``transfer``, local to local
   on tmpfs, for this package with (a) no observer, (b) ``on_progress``,
   (c) ``on_progress`` plus a third-party no-op plugin (loaded through its
   entry point), (d) the integrity plugin (sha256); against upstream (with and
   without ``on_progress``, and upstream again as "upstream (A/A)": the noise
   floor), fsspec's local copies and ``shutil.copyfile`` (the physical limit).
2. ``percall.py``: the per-call cost of a 1 KiB memory-to-memory ``transfer``.
3. ``memory.py``: peak ``tracemalloc`` memory of each operation at two sizes.
4. ``s3.py``: a 64 MiB S3 upload and download against a moto server on 127.0.0.1.

Every pair is timed in ABBA order (``timing.py``: forward on even trials,
backward on odd ones), so neither side always runs second. It prints tables of
ratios (ratios measured in the same run count, not absolute times), PASS/FAIL
per target (``targets.py``), writes ``benchmarks/results/latest.json`` and
``latest.md`` and plots ``docs/img/throughput.png`` (``report.py``, ``plot.py``).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from configs import Plan, managers_session  # noqa: E402
from machine import describe, load, tmpfs  # noqa: E402
from memory import bench_memory  # noqa: E402
from percall import bench_percall  # noqa: E402
from plot import plot  # noqa: E402
from profiling import profile_case_c  # noqa: E402
from report import (  # noqa: E402
    BUSY_LOAD,
    DOCS_PAGE,
    add_output_options,
    output_dir,
    render_markdown,
    resolve_outputs,
    update_docs,
    write_results,
)
from s3 import bench_s3  # noqa: E402
from targets import check_targets  # noqa: E402
from throughput import bench_throughput  # noqa: E402
from timing import exit_with  # noqa: E402


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=(__doc__ or "").split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="smoke run: small files, few trials, few calls")
    parser.add_argument("--trials", type=int, help="trials per configuration, ABBA order (default 6; quick 2)")
    parser.add_argument("--size-mib", type=int, help="file size for throughput (default 256; quick 8)")
    parser.add_argument("--calls", type=int, help="1 KiB transfers per per-call trial (default 5000; quick 500)")
    parser.add_argument("--s3-size-mib", type=int, help="S3 file size (default 64; quick 4)")
    parser.add_argument("--no-s3", action="store_true", help="skip the S3 (moto) run")
    parser.add_argument("--workdir", help="where the files go (default: a temp dir in /dev/shm when present)")
    add_output_options(parser, "latest")
    parser.add_argument("--plot", type=Path, help="PNG output (default docs/img/throughput.png)")
    parser.add_argument("--profile", action="store_true", help="also cProfile case (c) and the per-call loop")
    parser.add_argument("--update-docs", action="store_true", help="paste the tables into docs/performance.md")
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument("--trees", action="store_true", help="then run benchmarks/trees.py (with --quick, --check)")
    args = parser.parse_args(argv)
    # A smoke run never overwrites the recorded results or the docs' plot.
    resolve_outputs(args)
    if args.plot is None:
        args.plot = output_dir(True) / "throughput.png" if args.quick else ROOT / "docs" / "img" / "throughput.png"
    return args


def measure(args: argparse.Namespace, plan: Plan, workdir: Path) -> dict[str, Any]:
    """Every measurement, one after the other, in one process; the results with their ``meta``."""
    with managers_session() as managers:
        print(f"  default plugins (process-wide manager): {', '.join(managers.default_plugins)}")
        print(f"  case (c) plugins (entry points): {', '.join(managers.noop_plugins)}")
        print(f"  case (d): {managers.integrity_note}")
        plugins = {"default": managers.default_plugins, "case_c": managers.noop_plugins}
        meta = describe(tmpfs=str(workdir.parent), size_mib=plan.size // 2**20, trials=plan.trials, quick=plan.quick)
        results: dict[str, Any] = {"meta": {**meta, "plugins": {**plugins, "case_d": managers.integrity_note}}}
        steps = [("throughput", bench_throughput), ("percall", bench_percall), ("memory", bench_memory)]
        if args.no_s3:
            results["s3"] = {"unavailable": "skipped (--no-s3)"}
        else:
            steps.append(("s3", bench_s3))
        for number, (key, bench) in enumerate(steps, 1):
            print(f"{number}/{len(steps)} {key} ...", flush=True)
            try:
                results[key] = bench(managers, workdir, plan)
            except Exception as exc:
                if key != "s3":
                    raise
                results[key] = {"unavailable": f"failed: {type(exc).__name__}: {exc}"}  # the local results count
        if args.profile:
            print("profiling case (c) ...", flush=True)
            args.json.parent.mkdir(parents=True, exist_ok=True)
            (args.json.parent / "profile.txt").write_text(profile_case_c(managers, workdir, plan.size))
    return results


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    plan = Plan.make(args.quick, args.trials, args.size_mib, args.calls, args.s3_size_mib)
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="rst-bench-", dir=tmpfs()))
    print(f"remote-store-transfer benchmark: {plan.size // 2**20} MiB in {workdir}, best of {plan.trials}, ABBA order")
    try:
        results = measure(args, plan, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    meta = results["meta"]
    meta["load_after"] = load()
    meta["busy"] = max(meta["load_before"], meta["load_after"]) > BUSY_LOAD
    results["targets"] = check_targets(results)
    report = render_markdown(results)
    print()
    print(report)
    write_results(results, report, args.json, args.markdown)
    plot(results, args.plot)
    print(f"wrote {args.json}, {args.markdown} and {args.plot}")
    if args.update_docs:
        update_docs(report, " ".join(["python benchmarks/run.py", *(argv if argv is not None else sys.argv[1:])]))
        print(f"pasted the tables into {DOCS_PAGE}")
    missed = [c["target"] for c in results["targets"] if not c["pass"]]
    print(f"{len(missed)} target(s) missed: " + "; ".join(missed) if missed else "all targets met")
    code = 1 if missed and args.check else 0
    if args.trees:
        import trees

        print("\ntree benchmarks (benchmarks/trees.py) ...", flush=True)
        tree_args = [flag for flag, on in (("--quick", args.quick), ("--check", args.check)) if on]
        code = max(code, trees.main(tree_args))
    return code


if __name__ == "__main__":
    exit_with(main())
