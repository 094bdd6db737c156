"""Reports of the benchmarks: Markdown tables, the JSON and Markdown files, the suite's report and its copy
in docs/performance.md, and running one of the suite's measurements alone."""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from configs import OPS, KiB, MiB, Plan, managers_session
from machine import tmpfs
from timing import fmt_ratio

if TYPE_CHECKING:
    from collections.abc import Callable

    from configs import Managers

__all__ = [
    "BUSY_LOAD",
    "DOCS_PAGE",
    "add_output_options",
    "memory_lines",
    "output_dir",
    "percall_lines",
    "render_markdown",
    "resolve_outputs",
    "run_alone",
    "s3_lines",
    "table",
    "target_lines",
    "throughput_lines",
    "update_docs",
    "write_results",
]

HERE = Path(__file__).resolve().parent
DOCS_PAGE = HERE.parent / "docs" / "performance.md"
START, END = "<!-- results:start -->", "<!-- results:end -->"
TEXT_COLUMNS = {"operation", "configuration", "target", "result", "route", "tree", "side", "comparison", "note"}
BUSY_LOAD = 1.5  # 1-minute load average above which other work competes with the benchmark for the CPUs
BUSY_WARNING = (
    "The machine was busy during this run (load average above 1.5): wall-clock ratios are unreliable; "
    "the CPU-time ratios are less affected. Run again on a quiet machine."
)


# --------------------------------------------------------------------------- shared by the scripts


def table(title: str | None, headers: list[str], rows: list[list[str]]) -> list[str]:
    """A Markdown table (under a ``###`` heading when *title*): text columns left-aligned, numbers right."""
    align = ["---" if h in TEXT_COLUMNS else "---:" for h in headers]
    lines = ["", f"### {title}", ""] if title else []
    lines += ["| " + " | ".join(headers) + " |", "| " + " | ".join(align) + " |"]
    return lines + ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]


def target_lines(title: str, checks: list[dict[str, Any]]) -> list[str]:
    """The PASS/FAIL table of *checks*."""
    rows = [[c["target"], c["value"], "PASS" if c["pass"] else "FAIL"] for c in checks]
    return table(title, ["target", "measured", "result"], rows)


def output_dir(quick: bool) -> Path:
    """``benchmarks/results``; a quick (smoke) run writes to the temp dir and never over the recorded results."""
    return Path(tempfile.gettempdir()) / "rst-bench-quick" if quick else HERE / "results"


def add_output_options(parser: argparse.ArgumentParser, stem: str) -> None:
    """``--json`` and ``--markdown``, defaulting to ``<stem>.json`` / ``<stem>.md`` in :func:`output_dir`."""
    parser.add_argument("--json", type=Path, help=f"JSON output (default benchmarks/results/{stem}.json)")
    parser.add_argument("--markdown", type=Path, help=f"Markdown output (default benchmarks/results/{stem}.md)")
    parser.set_defaults(output_stem=stem)


def resolve_outputs(args: argparse.Namespace) -> None:
    """Fill in the defaults of :func:`add_output_options` once ``--quick`` is known."""
    out_dir = output_dir(args.quick)
    args.json = args.json or out_dir / f"{args.output_stem}.json"
    args.markdown = args.markdown or out_dir / f"{args.output_stem}.md"


def write_results(results: dict[str, Any], report: str, json_path: Path, markdown_path: Path) -> None:
    for path, text in ((json_path, json.dumps(results, indent=2) + "\n"), (markdown_path, report)):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


# --------------------------------------------------------------------------- the suite's sections


def throughput_lines(thr: dict[str, Any]) -> list[str]:
    rows = []
    for op in OPS:
        for name, row in thr[op].items():
            if "unavailable" in row:
                rows.append([op, name, "", "", row["unavailable"], "", ""])
            else:
                ratios = [fmt_ratio(row[k]) for k in ("vs_upstream", "vs_upstream_cpu", "vs_shutil")]
                rows.append([op, name, f"{row['best_s']:.4f}", f"{row['gb_s']:.2f}", *ratios])
    headers = ["operation", "configuration", "best (s)", "GB/s", "vs upstream (same args)"]
    headers += ["vs upstream, CPU time", "vs shutil.copyfile"]
    return table("Throughput, local to local (upstream (A/A): the noise floor)", headers, rows)


def percall_lines(pc: dict[str, Any]) -> list[str]:
    rows = [[n, f"{r['best_us']:.2f}", fmt_ratio(r.get("vs_upstream"))] for n, r in pc["results"].items()]
    title = f"Per-call cost, 1 KiB memory-to-memory transfer ({pc['calls']} calls per trial; A/A: the noise floor)"
    return table(title, ["configuration", "best (us per call)", "vs upstream (same args)"], rows)


def memory_lines(mem: dict[str, Any]) -> list[str]:
    small, large = (str(s) for s in mem["sizes"])
    rows = []
    for op in OPS:
        for name, row in mem["peaks"][op].items():
            if "unavailable" in row:
                rows.append([op, name, "", "", "", row["unavailable"]])
                continue
            over = "" if row["over_upstream"] is None else f"{row['over_upstream'] / KiB:+.1f}"
            sizes = [f"{row[small] / KiB:.1f}", f"{row[large] / KiB:.1f}", f"{row['growth'] / KiB:+.1f}"]
            rows.append([op, name, *sizes, over])
    s_mib, l_mib = int(small) // MiB, int(large) // MiB
    headers = ["operation", "configuration", f"peak, {s_mib} MiB (KiB)", f"peak, {l_mib} MiB (KiB)"]
    headers += ["growth (KiB)", "vs upstream (KiB)"]
    return table(f"Peak tracemalloc memory ({s_mib} MiB and {l_mib} MiB files)", headers, rows)


def s3_lines(s3: dict[str, Any]) -> list[str]:
    if "unavailable" in s3:
        return ["", "### S3 (moto server on 127.0.0.1)", "", f"S3 run {s3['unavailable']}"]
    rows = [
        [op, name, f"{row['best_s']:.3f}", f"{row['mb_s']:.0f}", fmt_ratio(row["vs_upstream"])]
        for op in ("upload", "download")
        for name, row in s3[op].items()
    ]
    headers = ["operation", "configuration", "best (s)", "MB/s", "vs upstream (same args)"]
    return table(f"S3, {s3['size'] // MiB} MiB (moto server on 127.0.0.1)", headers, rows)


def render_markdown(results: dict[str, Any]) -> str:
    """The suite's report as Markdown tables (printed, saved and pasted into docs/performance.md)."""
    meta = results["meta"]
    lines = [
        f"Run of {meta['date']} on {meta['machine']}, Python {meta['python']}, remote-store {meta['remote_store']}, "
        f"{meta['size_mib']} MiB on {meta['tmpfs']}, best of {meta['trials']} trials in ABBA order; "
        f"load average {meta['load_before']:.2f} before, {meta['load_after']:.2f} after."
    ]
    if meta["busy"]:
        lines += ["", f"**{BUSY_WARNING}**"]
    lines += throughput_lines(results["throughput"])
    lines += percall_lines(results["percall"])
    lines += memory_lines(results["memory"])
    if "s3" in results:
        lines += s3_lines(results["s3"])
    lines += target_lines("Targets (case (c): on_progress plus a no-op plugin, hooks live)", results["targets"])
    return "\n".join(lines) + "\n"


def update_docs(report: str, command: str) -> None:
    """Replace the results block of docs/performance.md (between the markers) with *report*."""
    page = DOCS_PAGE.read_text()
    head, _, rest = page.partition(START)
    _, _, tail = rest.partition(END)
    block = f"{START}\n\nMade by `{command}`.\n\n{report.replace('### ', '#### ')}\n{END}"
    DOCS_PAGE.write_text(head + block + tail)


def run_alone(
    doc: str | None,
    key: str,
    measure: Callable[[Managers, Path, Plan], dict[str, Any]],
    render: Callable[[dict[str, Any]], list[str]],
) -> None:
    """One measurement of the suite on its own: ``--quick`` or the full size; prints its table, writes nothing."""
    parser = argparse.ArgumentParser(description=(doc or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: small files, 2 trials, few calls")
    parser.add_argument("--trials", type=int, help="trials per configuration, ABBA order (default 6; quick 2)")
    args = parser.parse_args()
    plan = Plan.make(args.quick, args.trials)
    workdir = Path(tempfile.mkdtemp(prefix=f"rst-bench-{key}-", dir=tmpfs()))
    try:
        with managers_session() as managers:
            result = measure(managers, workdir, plan)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print("\n".join(render(result)).lstrip("\n"))
