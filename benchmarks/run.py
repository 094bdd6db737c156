"""The benchmark suite: remote-store-transfer against upstream ``remote_store.ext.transfer`` and the kernel.

One command, one process, interleaved, best of N::

    python benchmarks/run.py            # the full run (256 MiB, 5 trials, S3 included)
    python benchmarks/run.py --quick    # a smoke run in a few seconds
    python benchmarks/run.py --trees    # then the tree benchmarks too (benchmarks/trees.py)

It measures, in one run:

1. Throughput of ``upload``, ``download`` and ``transfer``, local-to-local on
   tmpfs (``/dev/shm``), for this package with (a) no observer,
   (b) ``on_progress``, (c) ``on_progress`` plus a third-party no-op plugin
   (loaded through its entry point), (d) the integrity plugin (sha256);
   against upstream ``remote_store.ext.transfer`` (with and without
   ``on_progress``), fsspec's local ``put_file`` / ``get_file`` / ``cp_file``
   and ``shutil.copyfile`` (the physical limit). Configurations run
   round-robin within each trial; the best trial counts.
2. The per-call cost of a 1 KiB memory-to-memory ``transfer``.
3. Peak ``tracemalloc`` memory of each operation at two file sizes.
4. A 64 MiB S3 upload and download against a moto server on 127.0.0.1.

It prints tables of ratios (these machines are noisy: ratios measured in the
same run are what counts, not absolute times), PASS/FAIL per target, writes
``benchmarks/results/latest.json`` and ``latest.md`` and plots
``docs/img/throughput.png``.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import importlib
import json
import os
import platform
import random
import shutil
import socket
import sys
import tempfile
import time
import tracemalloc
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

import noop_plugin  # noqa: E402
from machine import cpu, git_rev, load  # noqa: E402
from remote_store import Store  # noqa: E402
from remote_store.backends import LocalBackend, MemoryBackend  # noqa: E402
from remote_store.ext import transfer as upstream  # noqa: E402

import remote_store_transfer as rst  # noqa: E402
from remote_store_transfer import TransferManager  # noqa: E402

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

MiB = 1024 * 1024
KiB = 1024
OPS = ("upload", "download", "transfer")

# Configuration keys, in table order.
A, B, C, D = "ours (a) no observer", "ours (b) on_progress", "ours (c) on_progress + no-op plugin", "ours (d) integrity"
UP, UP_CB = "upstream", "upstream + on_progress"
FSSPEC, SHUTIL = "fsspec local", "shutil.copyfile"
# What each configuration is compared with: the same arguments upstream.
BASELINE = {A: UP, B: UP_CB, C: UP_CB, D: UP}

TARGETS = {
    "download": 1.00,  # (c) throughput / upstream + on_progress
    "upload": 0.98,
    "transfer": 0.98,
}
PERCALL_TARGET = 1.25  # ours (default plugins) / upstream, per call
MEMORY_SLACK = 64 * KiB  # ours may peak at most this much above upstream
GROWTH_NOISE = 8 * KiB  # "flat": peak(large) - peak(small) at most this


def on_progress(nbytes: int) -> None:
    """The callback both sides get: does nothing, so only the plumbing is measured."""


# --------------------------------------------------------------------------- plugins


@dataclass
class Managers:
    """The plugin configurations under test."""

    noop: TransferManager
    integrity: TransferManager | None
    integrity_note: str
    default_plugins: list[str]
    noop_plugins: list[str]
    noop_site: Path


def _integrity_manager() -> tuple[TransferManager | None, str]:
    """A manager with the integrity plugin (sha256), or ``None`` and why not.

    Uses the plugin's own API when the module exists (issue 3): an
    ``IntegrityPlugin(algorithm=...)`` class, or a ``make_plugin`` / ``plugin``
    factory, or the module itself when it holds the hook implementations.
    """
    try:
        integrity = importlib.import_module("remote_store_transfer.plugin.integrity")
    except Exception as exc:  # noqa: BLE001 - not there yet, or broken: report, do not crash
        return None, f"unavailable: {type(exc).__name__}: {exc}"
    plugin: object | None = None
    errors: list[str] = []
    for factory_name in ("IntegrityPlugin", "Integrity", "make_plugin", "plugin"):
        factory = getattr(integrity, factory_name, None)
        if not callable(factory):
            continue
        for kwargs in ({"algorithm": "sha256"}, {}):
            try:
                plugin = factory(**kwargs)
                break
            except TypeError as exc:
                errors.append(f"{factory_name}({kwargs}): {exc}")
        if plugin is not None:
            break
    if plugin is None and callable(getattr(integrity, "on_chunk", None)):
        plugin = integrity
    if plugin is None:
        return None, "unavailable: no usable plugin in remote_store_transfer.plugin.integrity " + "; ".join(errors)
    try:
        manager = TransferManager([plugin])
    except Exception as exc:  # noqa: BLE001 - reported, not fatal
        return None, f"unavailable: registering it failed: {type(exc).__name__}: {exc}"
    return manager, f"{type(plugin).__name__} from remote_store_transfer.plugin.integrity"


def build_managers() -> Managers:
    """Default plugins in the process-wide manager; the no-op plugin through its entry point."""
    rst.reset_plugin_manager()
    default_plugins = [p.name for p in rst.list_plugins()]  # built before the no-op dist exists
    root = noop_plugin.install()
    noop = TransferManager(entry_points=True)
    noop_plugins = [f"{p.name} ({p.distribution} {p.version})" for p in noop.list_plugins()]
    if not any(p.name == noop_plugin.ENTRY_POINT_NAME for p in noop.list_plugins()):
        raise SystemExit(f"the no-op plugin was not loaded through its entry point (site dir {root})")
    integrity, note = _integrity_manager()
    return Managers(noop, integrity, note, default_plugins, noop_plugins, root)


# --------------------------------------------------------------------------- timing helpers


def best_of(trials: int, configs: dict[str, Callable[[], float]], seed: int = 5) -> dict[str, list[float]]:
    """Run every configuration once per trial, interleaved; return all times per configuration.

    The order is shuffled anew each trial (seeded, so runs are repeatable),
    so that no configuration always follows the same neighbour.
    """
    names = list(configs)
    times: dict[str, list[float]] = {n: [] for n in names}
    shuffle = random.Random(seed).shuffle
    for _ in range(trials):
        order = names[:]
        shuffle(order)
        for name in order:
            times[name].append(configs[name]())
    return times


def _timed(
    setup: Callable[[], None], run: Callable[[], object], cpu_times: list[float] | None = None
) -> Callable[[], float]:
    """A measurement: *setup* (untimed), then *run*; returns wall seconds, appends CPU seconds to *cpu_times*."""

    def measure() -> float:
        setup()
        gc.collect()
        cpu = time.process_time()
        start = time.perf_counter()
        run()
        wall = time.perf_counter() - start
        if cpu_times is not None:
            cpu_times.append(time.process_time() - cpu)
        return wall

    return measure


def _unlink(*paths: str) -> Callable[[], None]:
    def remove() -> None:
        for path in paths:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)

    return remove


def _write_random(path: Path, size: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    block = os.urandom(min(size, 4 * MiB))
    with open(path, "wb") as fh:
        left = size
        while left:
            fh.write(block[: min(left, len(block))])
            left -= min(left, len(block))


@dataclass
class LocalBench:
    """A source file, two LocalBackend stores and the destinations, all on tmpfs."""

    workdir: Path
    size: int
    src_file: Path = field(init=False)
    store: Store = field(init=False)
    dst_store: Store = field(init=False)

    def __post_init__(self) -> None:
        (self.workdir / "a").mkdir(parents=True, exist_ok=True)
        (self.workdir / "b").mkdir(parents=True, exist_ok=True)
        self.store = Store(backend=LocalBackend(root=str(self.workdir / "a")))
        self.dst_store = Store(backend=LocalBackend(root=str(self.workdir / "b")))
        self.src_file = self.workdir / f"src-{self.size}.bin"
        _write_random(self.src_file, self.size)
        shutil.copyfile(self.src_file, self.workdir / "a" / self.remote_src)

    @property
    def remote_src(self) -> str:
        return f"src-{self.size}.bin"

    def path_a(self, name: str) -> str:
        return str(self.workdir / "a" / name)

    def path_b(self, name: str) -> str:
        return str(self.workdir / "b" / name)

    def local(self, name: str) -> str:
        return str(self.workdir / name)

    def operations(
        self, managers: Managers, which: set[str]
    ) -> dict[str, dict[str, tuple[Callable[[], None], Callable[[], object]]]]:
        """``{op: {config: (setup, run)}}``: setup removes the destination, run moves the bytes."""
        src, store, dst_store, rsrc = str(self.src_file), self.store, self.dst_store, self.remote_src
        ours: dict[str, tuple[Any, dict[str, Any]]] = {
            A: (rst, {}),
            B: (rst, {"on_progress": on_progress}),
            C: (managers.noop, {"on_progress": on_progress}),
        }
        if managers.integrity is not None:
            ours[D] = (managers.integrity, {})
        theirs: dict[str, dict[str, Any]] = {UP: {}, UP_CB: {"on_progress": on_progress}}
        result: dict[str, dict[str, tuple[Callable[[], None], Callable[[], object]]]] = {op: {} for op in OPS}

        def bind(fn: Callable[..., object], *args: object, **kwargs: object) -> Callable[[], object]:
            return lambda: fn(*args, **kwargs)

        for index, (key, (impl, kw)) in enumerate({**ours, **{k: (upstream, v) for k, v in theirs.items()}}.items()):
            if key not in which:
                continue
            tag = f"{key.split()[0]}{index}"
            up_name, down_name, xfer_name = f"up-{tag}.bin", f"down-{tag}.bin", f"xfer-{tag}.bin"
            result["upload"][key] = (
                _unlink(self.path_a(up_name)),
                bind(impl.upload, store, src, up_name, overwrite=True, **kw),
            )
            result["download"][key] = (
                _unlink(self.local(down_name)),
                bind(impl.download, store, rsrc, self.local(down_name), overwrite=True, **kw),
            )
            result["transfer"][key] = (
                _unlink(self.path_b(xfer_name)),
                bind(impl.transfer, store, rsrc, dst_store, xfer_name, overwrite=True, **kw),
            )
        if FSSPEC in which:
            from fsspec.implementations.local import LocalFileSystem

            fs = LocalFileSystem()
            result["upload"][FSSPEC] = (
                _unlink(self.path_a("up-fs.bin")),
                bind(fs.put_file, src, self.path_a("up-fs.bin")),
            )
            result["download"][FSSPEC] = (
                _unlink(self.local("down-fs.bin")),
                bind(fs.get_file, self.path_a(rsrc), self.local("down-fs.bin")),
            )
            result["transfer"][FSSPEC] = (
                _unlink(self.path_b("xfer-fs.bin")),
                bind(fs.cp_file, self.path_a(rsrc), self.path_b("xfer-fs.bin")),
            )
        if SHUTIL in which:
            for op, (s, d) in {
                "upload": (src, self.path_a("up-sh.bin")),
                "download": (self.path_a(rsrc), self.local("down-sh.bin")),
                "transfer": (self.path_a(rsrc), self.path_b("xfer-sh.bin")),
            }.items():
                result[op][SHUTIL] = (_unlink(d), bind(shutil.copyfile, s, d))
        return result


# --------------------------------------------------------------------------- 1. throughput


def bench_throughput(bench: LocalBench, managers: Managers, trials: int) -> dict[str, Any]:
    configs = {A, B, C, D, UP, UP_CB, FSSPEC, SHUTIL}
    ops = bench.operations(managers, configs)
    cpu: dict[tuple[str, str], list[float]] = {(op, name): [] for op, table in ops.items() for name in table}
    flat = {(op, name): _timed(*pair, cpu[op, name]) for op, table in ops.items() for name, pair in table.items()}
    for measure in flat.values():  # warm up: imports, first-use caches, tmpfs
        measure()
    for times_list in cpu.values():
        times_list.clear()
    # Interleave everything: each trial runs every (operation, configuration) once, order rotated.
    keyed = {f"{op}\x00{name}": fn for (op, name), fn in flat.items()}
    times = best_of(trials, keyed)
    out: dict[str, Any] = {op: {} for op in OPS}
    for key, values in times.items():
        op, name = key.split("\x00")
        best = min(values)
        cpu_times = cpu[op, name]
        out[op][name] = {
            "best_s": best,
            "gb_s": bench.size / best / 1e9,
            "times_s": values,
            "best_cpu_s": min(cpu_times),
            "cpu_times_s": cpu_times,
        }
    for op in OPS:
        table = out[op]
        for name, row in table.items():
            base = BASELINE.get(name)
            row["vs_upstream"] = table[base]["best_s"] / row["best_s"] if base in table else None
            row["vs_upstream_cpu"] = table[base]["best_cpu_s"] / row["best_cpu_s"] if base in table else None
            row["vs_upstream_config"] = base if base in table else None
            row["vs_shutil"] = table[SHUTIL]["best_s"] / row["best_s"]
    if managers.integrity is None:
        for op in OPS:
            out[op][D] = {"unavailable": managers.integrity_note}
    return out


# --------------------------------------------------------------------------- 2. per-call cost


def bench_percall(managers: Managers, calls: int, trials: int) -> dict[str, Any]:
    src = Store(backend=MemoryBackend())
    dst = Store(backend=MemoryBackend())
    src.write("one-kib.bin", os.urandom(KiB))
    noop = managers.noop

    def loop(fn: Callable[[], object]) -> Callable[[], float]:
        def measure() -> float:
            start = time.perf_counter()
            for _ in range(calls):
                fn()
            return (time.perf_counter() - start) / calls

        return measure

    configs = {
        "ours, default plugins": loop(lambda: rst.transfer(src, "one-kib.bin", dst, "ours.bin", overwrite=True)),
        "upstream": loop(lambda: upstream.transfer(src, "one-kib.bin", dst, "up.bin", overwrite=True)),
        "ours + on_progress": loop(
            lambda: rst.transfer(src, "one-kib.bin", dst, "ours-cb.bin", overwrite=True, on_progress=on_progress)
        ),
        "upstream + on_progress": loop(
            lambda: upstream.transfer(src, "one-kib.bin", dst, "up-cb.bin", overwrite=True, on_progress=on_progress)
        ),
        "ours (c) on_progress + no-op plugin": loop(
            lambda: noop.transfer(src, "one-kib.bin", dst, "noop.bin", overwrite=True, on_progress=on_progress)
        ),
        "store calls alone (read + write)": loop(lambda: _raw_transfer(src, dst)),
    }
    for measure in configs.values():
        measure()
    times = best_of(trials, configs)
    out: dict[str, Any] = {}
    for name, values in times.items():
        out[name] = {"best_us": min(values) * 1e6, "times_us": [v * 1e6 for v in values]}
    pairs = {
        "ours, default plugins": "upstream",
        "ours + on_progress": "upstream + on_progress",
        "ours (c) on_progress + no-op plugin": "upstream + on_progress",
    }
    for name, base in pairs.items():
        out[name]["vs_upstream"] = out[name]["best_us"] / out[base]["best_us"]
        out[name]["vs_upstream_config"] = base
    return {"calls": calls, "results": out}


def _raw_transfer(src: Store, dst: Store) -> None:
    stream = src.read("one-kib.bin")
    try:
        dst.write("raw.bin", stream, overwrite=True)
    finally:
        stream.close()


# --------------------------------------------------------------------------- 3. memory


def bench_memory(managers: Managers, workdir: Path, sizes: tuple[int, int]) -> dict[str, Any]:
    configs = {A, B, C, D, UP, UP_CB}
    out: dict[str, Any] = {op: {} for op in OPS}
    for size in sizes:
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
        shutil.rmtree(bench.workdir, ignore_errors=True)
    small, large = (str(s) for s in sizes)
    for op in OPS:
        for name, row in out[op].items():
            row["growth"] = row[large] - row[small]
            base = BASELINE.get(name)
            row["over_upstream"] = row[large] - out[op][base][large] if base in out[op] else None
    if managers.integrity is None:
        for op in OPS:
            out[op][D] = {"unavailable": managers.integrity_note}
    return {"sizes": list(sizes), "peaks": out}


# --------------------------------------------------------------------------- 4. S3 (moto)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def moto_s3() -> Iterator[str]:
    """A moto S3 server on 127.0.0.1 in this process; yields its endpoint URL."""
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no access log on the terminal

    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        os.environ.setdefault(name, "testing")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=_free_port(), verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def bench_s3(managers: Managers, workdir: Path, size: int, trials: int) -> dict[str, Any]:
    try:
        import botocore.session
        from remote_store.backends import S3Backend
    except ImportError as exc:
        return {"unavailable": f"S3 needs remote-store[s3] and moto[server]: {exc}"}
    with moto_s3() as endpoint:
        client = botocore.session.get_session().create_client(
            "s3",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        client.create_bucket(Bucket="bench")
        store = Store(
            backend=S3Backend("bench", endpoint_url=endpoint, key="testing", secret="testing", region_name="us-east-1")
        )
        src = workdir / "s3-src.bin"
        _write_random(src, size)
        store.write("src.bin", src.read_bytes(), overwrite=True)
        down = str(workdir / "s3-down.bin")
        noop = managers.noop
        configs: dict[str, Callable[[], float]] = {}
        for name, impl, kw in (
            (A, rst, {}),
            (C, noop, {"on_progress": on_progress}),
            (UP, upstream, {}),
            (UP_CB, upstream, {"on_progress": on_progress}),
        ):
            configs[f"upload\x00{name}"] = _timed(
                lambda: None, lambda impl=impl, kw=kw: impl.upload(store, str(src), "up.bin", overwrite=True, **kw)
            )
            configs[f"download\x00{name}"] = _timed(
                _unlink(down), lambda impl=impl, kw=kw: impl.download(store, "src.bin", down, overwrite=True, **kw)
            )
        for measure in configs.values():
            measure()
        times = best_of(trials, configs)
    out: dict[str, Any] = {"upload": {}, "download": {}, "size": size, "endpoint": "moto on 127.0.0.1"}
    for key, values in times.items():
        op, name = key.split("\x00")
        best = min(values)
        out[op][name] = {"best_s": best, "mb_s": size / best / 1e6, "times_s": values}
    for op in ("upload", "download"):
        for name, row in out[op].items():
            base = BASELINE.get(name)
            row["vs_upstream"] = out[op][base]["best_s"] / row["best_s"] if base in out[op] else None
            row["vs_upstream_config"] = base
    return out


# --------------------------------------------------------------------------- targets, report


def check_targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    checks: list[dict[str, Any]] = []
    thr = results["throughput"]
    for op, target in TARGETS.items():
        ratio, cpu_ratio = thr[op][C]["vs_upstream"], thr[op][C]["vs_upstream_cpu"]
        checks.append(
            {
                "target": f"{op} (c) >= {target:.2f}x upstream + on_progress",
                "value": f"{ratio:.3f}x (CPU time: {cpu_ratio:.3f}x)",
                "pass": ratio >= target,
            }
        )
    percall = results["percall"]["results"]["ours, default plugins"]["vs_upstream"]
    checks.append(
        {
            "target": f"per-call cost, default plugins <= {PERCALL_TARGET:.2f}x upstream",
            "value": f"{percall:.3f}x",
            "pass": percall <= PERCALL_TARGET,
        }
    )
    peaks = results["memory"]["peaks"]
    for op in OPS:
        row = peaks[op][C]
        checks.append(
            {
                "target": f"{op} (c) peak memory <= upstream + on_progress + {MEMORY_SLACK // KiB} KiB",
                "value": f"{row['over_upstream'] / KiB:+.1f} KiB",
                "pass": row["over_upstream"] <= MEMORY_SLACK,
            }
        )
        flat = all(r["growth"] <= GROWTH_NOISE for n, r in peaks[op].items() if n.startswith("ours") and "growth" in r)
        worst = max(r["growth"] for n, r in peaks[op].items() if n.startswith("ours") and "growth" in r)
        checks.append(
            {
                "target": f"{op} peak memory flat across sizes (ours, all configs, <= {GROWTH_NOISE // KiB} KiB)",
                "value": f"{worst / KiB:+.1f} KiB",
                "pass": flat,
            }
        )
    return checks


def _fmt_ratio(value: float | None) -> str:
    return "" if value is None else f"{value:.3f}x"


def _table(title: str, headers: list[str], rows: list[list[str]]) -> list[str]:
    """A Markdown table under a heading: text columns left-aligned, numbers right-aligned."""
    align = ["---" if h in {"operation", "configuration", "target", "result"} else "---:" for h in headers]
    lines = ["", f"### {title}", "", "| " + " | ".join(headers) + " |", "| " + " | ".join(align) + " |"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def render_markdown(results: dict[str, Any]) -> str:
    """The report as Markdown tables (printed, saved and pasted into docs/performance.md)."""
    meta = results["meta"]
    lines = [
        f"Run of {meta['date']} on {meta['machine']}, Python {meta['python']}, remote-store {meta['remote_store']}, "
        f"{meta['size_mib']} MiB on {meta['tmpfs']}, best of {meta['trials']} interleaved trials; "
        f"load average {meta['load_before']:.2f} before, {meta['load_after']:.2f} after."
    ]
    if meta["busy"]:
        lines += ["", f"**{BUSY_WARNING}**"]
    rows = []
    for op in OPS:
        for name, row in results["throughput"][op].items():
            if "unavailable" in row:
                rows.append([op, name, "", "", row["unavailable"], "", ""])
            else:
                ratios = [_fmt_ratio(row[k]) for k in ("vs_upstream", "vs_upstream_cpu", "vs_shutil")]
                rows.append([op, name, f"{row['best_s']:.4f}", f"{row['gb_s']:.2f}", *ratios])
    headers = ["operation", "configuration", "best (s)", "GB/s", "vs upstream (same args)"]
    headers += ["vs upstream, CPU time", "vs shutil.copyfile"]
    lines += _table("Throughput, local to local", headers, rows)

    pc = results["percall"]
    rows = [[n, f"{r['best_us']:.2f}", _fmt_ratio(r.get("vs_upstream"))] for n, r in pc["results"].items()]
    title = f"Per-call cost, 1 KiB memory-to-memory transfer ({pc['calls']} calls per trial)"
    lines += _table(title, ["configuration", "best (us per call)", "vs upstream (same args)"], rows)

    mem = results["memory"]
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
    lines += _table(f"Peak tracemalloc memory ({s_mib} MiB and {l_mib} MiB files)", headers, rows)

    s3 = results.get("s3")
    if s3 is not None and "unavailable" in s3:
        lines += ["", "### S3 (moto server on 127.0.0.1)", "", f"S3 run {s3['unavailable']}"]
    elif s3 is not None:
        rows = [
            [op, name, f"{row['best_s']:.3f}", f"{row['mb_s']:.0f}", _fmt_ratio(row["vs_upstream"])]
            for op in ("upload", "download")
            for name, row in s3[op].items()
        ]
        headers = ["operation", "configuration", "best (s)", "MB/s", "vs upstream (same args)"]
        lines += _table(f"S3, {s3['size'] // MiB} MiB (moto server on 127.0.0.1)", headers, rows)

    rows = [[c["target"], c["value"], "PASS" if c["pass"] else "FAIL"] for c in results["targets"]]
    lines += _table(
        "Targets (case (c): on_progress plus a no-op plugin, hooks live)", ["target", "measured", "result"], rows
    )
    return "\n".join(lines) + "\n"


COLORS = {
    SHUTIL: "#7f7f7f",
    FSSPEC: "#bcbd22",
    UP: "#1f77b4",
    UP_CB: "#aec7e8",
    A: "#2ca02c",
    B: "#98df8a",
    C: "#d62728",
    D: "#9467bd",
}


def _bars(ax: Any, names: list[str], value: Callable[[str, str], float | None], fmt: str) -> None:
    """Grouped bars: one group per operation, one bar per configuration, each labelled with its value."""
    width = 0.8 / len(names)
    for i, name in enumerate(names):
        xs, ys = [], []
        for j, op in enumerate(OPS):
            y = value(op, name)
            if y is not None:
                xs.append(j + (i - (len(names) - 1) / 2) * width)
                ys.append(y)
        if xs:
            bars = ax.bar(xs, ys, width=width * 0.95, label=name, color=COLORS[name])
            for bar, y in zip(bars, ys, strict=True):
                x = bar.get_x() + bar.get_width() / 2
                ax.annotate(format(y, fmt), (x, y), ha="center", va="bottom", fontsize=6.5)
    ax.set_xticks(range(len(OPS)), list(OPS))
    ax.grid(axis="y", alpha=0.3)


def plot(results: dict[str, Any], path: Path) -> None:
    """Two panels: throughput by configuration (GB/s), and ours relative to upstream with the same arguments."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    thr = results["throughput"]
    meta = results["meta"]
    fig, (top, bottom) = plt.subplots(
        2, 1, figsize=(10, 9), dpi=110, gridspec_kw={"height_ratios": [3, 2]}, layout="constrained"
    )

    def gb_s(op: str, name: str) -> float | None:
        return thr[op].get(name, {}).get("gb_s")

    _bars(top, [SHUTIL, FSSPEC, UP, UP_CB, A, B, C, D], gb_s, ".2f")
    top.set_ylabel("GB/s (best of trials; higher is better)")
    top.set_title(f"Throughput, local to local on tmpfs, {meta['size_mib']} MiB, best of {meta['trials']} trials")
    top.legend(fontsize=8, ncol=4, loc="upper center", bbox_to_anchor=(0.5, -0.08), frameon=False)

    def ratio(op: str, name: str) -> float | None:
        return thr[op].get(name, {}).get("vs_upstream")

    _bars(bottom, [A, B, C], ratio, ".3f")
    low = min([r for op in OPS for n in (A, B, C) if (r := ratio(op, n)) is not None] + [0.97])
    high = max([r for op in OPS for n in (A, B, C) if (r := ratio(op, n)) is not None] + [1.02])
    bottom.set_ylim(low - 0.03, high + 0.02)
    bottom.axhline(1.0, color="black", linewidth=0.8)
    for j, op in enumerate(OPS):
        target = TARGETS[op]
        bottom.hlines(target, j - 0.45, j + 0.45, colors="black", linestyles="dashed", linewidth=1, zorder=3)
        bottom.annotate(
            f"target for (c): {target:.2f}",
            (j - 0.45, target),
            xytext=(0, -3),
            textcoords="offset points",
            ha="left",
            va="top",
            fontsize=7,
            zorder=4,
            bbox={"boxstyle": "square,pad=0.1", "facecolor": "white", "edgecolor": "none", "alpha": 0.8},
        )
    bottom.set_ylabel("ours / upstream, same arguments")
    bottom.set_title("Relative to upstream remote_store.ext.transfer (same run; higher is better)")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


def profile_case_c(managers: Managers, workdir: Path, size: int) -> str:
    """cProfile of one case (c) run of each operation and of the per-call loop: where the time goes."""
    import cProfile
    import io
    import pstats

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
    shutil.rmtree(bench.workdir, ignore_errors=True)
    src, dst = Store(backend=MemoryBackend()), Store(backend=MemoryBackend())
    src.write("one-kib.bin", os.urandom(KiB))
    profiler = cProfile.Profile()
    profiler.runcall(lambda: [rst.transfer(src, "one-kib.bin", dst, "x.bin", overwrite=True) for _ in range(20_000)])
    out.write("\n=== 20000 x 1 KiB memory-to-memory transfer, default plugins: top functions by own time ===\n")
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(20)
    return out.getvalue()


DOCS_PAGE = ROOT / "docs" / "performance.md"
START, END = "<!-- results:start -->", "<!-- results:end -->"


def update_docs(report: str, command: str) -> None:
    """Replace the results block of docs/performance.md (between the markers) with *report*."""
    page = DOCS_PAGE.read_text()
    head, _, rest = page.partition(START)
    _, _, tail = rest.partition(END)
    block = f"{START}\n\nMade by `{command}`.\n\n{report.replace('### ', '#### ')}\n{END}"
    DOCS_PAGE.write_text(head + block + tail)


BUSY_LOAD = 1.5  # 1-minute load average above which other work competes with the benchmark for the CPUs
BUSY_WARNING = (
    "The machine was busy during this run (load average above 1.5): wall-clock ratios are unreliable; "
    "the CPU-time ratios are less affected. Run again on a quiet machine."
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="smoke run: small files, few trials, few calls")
    parser.add_argument("--trials", type=int, help="trials per configuration, best counts (default 5; quick 2)")
    parser.add_argument("--size-mib", type=int, help="file size for throughput (default 256; quick 8)")
    parser.add_argument("--calls", type=int, help="1 KiB transfers per per-call trial (default 5000; quick 500)")
    parser.add_argument("--s3-size-mib", type=int, help="S3 file size (default 64; quick 4)")
    parser.add_argument("--no-s3", action="store_true", help="skip the S3 (moto) run")
    parser.add_argument("--workdir", help="where the files go (default: a temp dir in /dev/shm when present)")
    parser.add_argument("--json", type=Path, help="JSON output (default benchmarks/results/latest.json)")
    parser.add_argument("--markdown", type=Path, help="Markdown tables (default benchmarks/results/latest.md)")
    parser.add_argument("--plot", type=Path, help="PNG output (default docs/img/throughput.png)")
    parser.add_argument("--profile", action="store_true", help="also cProfile case (c) and the per-call loop")
    parser.add_argument("--update-docs", action="store_true", help="paste the tables into docs/performance.md")
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument("--trees", action="store_true", help="then run benchmarks/trees.py (with --quick, --check)")
    args = parser.parse_args(argv)
    # A smoke run never overwrites the recorded results.
    out_dir = Path(tempfile.gettempdir()) / "rst-bench-quick" if args.quick else HERE / "results"
    args.json = args.json or out_dir / "latest.json"
    args.markdown = args.markdown or out_dir / "latest.md"
    args.plot = args.plot or (out_dir / "throughput.png" if args.quick else ROOT / "docs" / "img" / "throughput.png")

    trials = args.trials or (2 if args.quick else 5)
    size = (args.size_mib or (8 if args.quick else 256)) * MiB
    calls = args.calls or (500 if args.quick else 5000)
    s3_size = (args.s3_size_mib or (4 if args.quick else 64)) * MiB
    mem_sizes = (1 * MiB, 8 * MiB) if args.quick else (16 * MiB, 128 * MiB)
    tmpfs = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else tempfile.gettempdir()
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="rst-bench-", dir=tmpfs))
    print(f"remote-store-transfer benchmark: {size // MiB} MiB in {workdir}, best of {trials} interleaved trials")

    managers = build_managers()
    print(f"  default plugins (process-wide manager): {', '.join(managers.default_plugins)}")
    print(f"  case (c) plugins (entry points): {', '.join(managers.noop_plugins)}")
    print(f"  case (d): {managers.integrity_note}")

    from importlib.metadata import version

    results: dict[str, Any] = {
        "meta": {
            "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "python": platform.python_version(),
            "machine": f"{os.cpu_count()} CPU ({cpu()})",
            "platform": platform.platform(),
            "git": git_rev(),
            "remote_store": version("remote-store"),
            "remote_store_transfer": rst.__version__,
            "tmpfs": tmpfs,
            "size_mib": size // MiB,
            "trials": trials,
            "quick": args.quick,
            "load_before": load(),
            "plugins": {
                "default": managers.default_plugins,
                "case_c": managers.noop_plugins,
                "case_d": managers.integrity_note,
            },
        }
    }
    try:
        print("1/4 throughput ...", flush=True)
        bench = LocalBench(workdir / "throughput", size)
        results["throughput"] = bench_throughput(bench, managers, trials)
        shutil.rmtree(bench.workdir, ignore_errors=True)
        print("2/4 per-call cost ...", flush=True)
        results["percall"] = bench_percall(managers, calls, trials)
        print("3/4 peak memory ...", flush=True)
        results["memory"] = bench_memory(managers, workdir, mem_sizes)
        if args.no_s3:
            results["s3"] = {"unavailable": "skipped (--no-s3)"}
        else:
            print("4/4 S3 (moto on 127.0.0.1) ...", flush=True)
            try:
                results["s3"] = bench_s3(managers, workdir, s3_size, trials)
            except Exception as exc:  # noqa: BLE001 - the local results still count
                results["s3"] = {"unavailable": f"failed: {type(exc).__name__}: {exc}"}
        if args.profile:
            print("profiling case (c) ...", flush=True)
            profile = profile_case_c(managers, workdir, size)
            args.json.parent.mkdir(parents=True, exist_ok=True)
            (args.json.parent / "profile.txt").write_text(profile)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        noop_plugin.uninstall(managers.noop_site)

    meta = results["meta"]
    meta["load_after"] = load()
    meta["busy"] = max(meta["load_before"], meta["load_after"]) > BUSY_LOAD
    results["targets"] = check_targets(results)
    report = render_markdown(results)
    print()
    print(report)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2) + "\n")
    args.markdown.parent.mkdir(parents=True, exist_ok=True)
    args.markdown.write_text(report)
    plot(results, args.plot)
    print(f"wrote {args.json}, {args.markdown} and {args.plot}")
    if args.update_docs:
        update_docs(report, " ".join(["python benchmarks/run.py", *(argv if argv is not None else sys.argv[1:])]))
        print(f"pasted the tables into {DOCS_PAGE}")
    missed = [c["target"] for c in results["targets"] if not c["pass"]]
    if missed:
        print(f"{len(missed)} target(s) missed: " + "; ".join(missed))
    else:
        print("all targets met")
    code = 1 if missed and args.check else 0
    if args.trees:
        import trees

        print("\ntree benchmarks (benchmarks/trees.py) ...", flush=True)
        tree_args = [flag for flag, on in (("--quick", args.quick), ("--check", args.check)) if on]
        code = max(code, trees.main(tree_args))
        if trees.ABANDONED:  # a hung tree run's threads would block the interpreter's exit
            sys.stdout.flush()
            os._exit(code)
    return code


if __name__ == "__main__":
    sys.exit(main())
