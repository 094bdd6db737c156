"""The configurations the suite compares: their names, what each is measured against, and the plugin managers.

Case (c) uses a third-party no-op plugin installed through its entry point
(:mod:`noop_plugin`); case (d) the integrity plugin hashing with sha256.
"""

from __future__ import annotations

import contextlib
import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

import noop_plugin

import remote_store_transfer as rst
from remote_store_transfer import TransferManager

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

__all__ = [
    "BASELINE",
    "OPS",
    "KiB",
    "Managers",
    "MiB",
    "Plan",
    "build_managers",
    "managers_session",
    "on_progress",
]

MiB = 1024 * 1024
KiB = 1024
OPS = ("upload", "download", "transfer")

# Configuration keys, in table order.
A, B, C, D = "ours (a) no observer", "ours (b) on_progress", "ours (c) on_progress + no-op plugin", "ours (d) integrity"
UP, UP_CB = "upstream", "upstream + on_progress"
UP_AA = "upstream (A/A)"  # upstream measured again under another name, next to it: the noise floor
FSSPEC, SHUTIL = "fsspec local", "shutil.copyfile"
# What each configuration is compared with: the same arguments upstream.
BASELINE = {A: UP, B: UP_CB, C: UP_CB, D: UP, UP_AA: UP}


def on_progress(nbytes: int) -> None:
    """The callback both sides get: does nothing, so only the plumbing is measured."""


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

    Uses the plugin's own API: an ``IntegrityPlugin(algorithm=...)`` class, or
    a ``make_plugin`` / ``plugin`` factory, or the module itself when it holds
    the hook implementations.
    """
    try:
        integrity = importlib.import_module("remote_store_transfer.plugin.integrity")
    except Exception as exc:  # noqa: BLE001 - not there, or broken: report, do not crash
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
        noop_plugin.uninstall(root)
        raise SystemExit(f"the no-op plugin was not loaded through its entry point (site dir {root})")
    integrity, note = _integrity_manager()
    return Managers(noop, integrity, note, default_plugins, noop_plugins, root)


@contextlib.contextmanager
def managers_session() -> Iterator[Managers]:
    """:func:`build_managers`, and the no-op plugin's distribution removed afterwards."""
    managers = build_managers()
    try:
        yield managers
    finally:
        noop_plugin.uninstall(managers.noop_site)


@dataclass(frozen=True)
class Plan:
    """How much each measurement does: the full run, or a quick smoke run, with overrides."""

    quick: bool
    trials: int
    size: int  # throughput file size, bytes
    calls: int  # 1 KiB transfers per per-call trial
    s3_size: int
    mem_sizes: tuple[int, int]

    @classmethod
    def make(
        cls,
        quick: bool,
        trials: int | None = None,
        size_mib: int | None = None,
        calls: int | None = None,
        s3_size_mib: int | None = None,
    ) -> Plan:
        return cls(
            quick=quick,
            trials=trials or (2 if quick else 6),  # even: ABBA puts each side first as often as second
            size=(size_mib or (8 if quick else 256)) * MiB,
            calls=calls or (500 if quick else 5000),
            s3_size=(s3_size_mib or (4 if quick else 64)) * MiB,
            mem_sizes=(8 * MiB, 32 * MiB) if quick else (16 * MiB, 128 * MiB),
        )
