"""Local files for the throughput, memory and profile measurements: a source file, two ``LocalBackend`` stores,
and per configuration a (setup, run) pair for each operation."""

from __future__ import annotations

import contextlib
import os
import shutil
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from configs import FSSPEC, OPS, SHUTIL, UP, UP_AA, UP_CB, A, B, C, D, Managers, MiB, on_progress
from remote_store import Store
from remote_store.backends import LocalBackend
from remote_store.ext import transfer as upstream

import remote_store_transfer as rst

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

__all__ = ["LocalBench", "Operations", "unlink", "write_random"]

# {operation: {configuration: (setup, run)}}: setup removes the destination (untimed), run moves the bytes.
Operations = dict[str, dict[str, tuple["Callable[[], None]", "Callable[[], object]"]]]


def unlink(*paths: str) -> Callable[[], None]:
    """A setup step: remove *paths* if they exist."""

    def remove() -> None:
        for path in paths:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)

    return remove


def write_random(path: Path, size: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    block = os.urandom(min(size, 4 * MiB))
    with open(path, "wb") as fh:
        left = size
        while left:
            fh.write(block[: min(left, len(block))])
            left -= min(left, len(block))


def _bind(fn: Callable[..., object], *args: object, **kwargs: object) -> Callable[[], object]:
    return lambda: fn(*args, **kwargs)


@dataclass
class LocalBench:
    """A source file, two LocalBackend stores and the destinations, all under *workdir* (tmpfs)."""

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
        write_random(self.src_file, self.size)
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

    def remove(self) -> None:
        shutil.rmtree(self.workdir, ignore_errors=True)

    def operations(self, managers: Managers, which: set[str]) -> Operations:
        """Each configuration in *which* (that can run), for every operation."""
        src, store, dst_store, rsrc = str(self.src_file), self.store, self.dst_store, self.remote_src
        sides: dict[str, tuple[Any, dict[str, Any]]] = {
            A: (rst, {}),
            B: (rst, {"on_progress": on_progress}),
            C: (managers.noop, {"on_progress": on_progress}),
        }
        if managers.integrity is not None:
            sides[D] = (managers.integrity, {})
        sides.update({UP: (upstream, {}), UP_AA: (upstream, {}), UP_CB: (upstream, {"on_progress": on_progress})})
        result: Operations = {op: {} for op in OPS}
        for index, (key, (impl, kw)) in enumerate(sides.items()):
            if key not in which:
                continue
            tag = f"{key.split()[0]}{index}"
            up_name, down_name, xfer_name = f"up-{tag}.bin", f"down-{tag}.bin", f"xfer-{tag}.bin"
            result["upload"][key] = (
                unlink(self.path_a(up_name)),
                _bind(impl.upload, store, src, up_name, overwrite=True, **kw),
            )
            result["download"][key] = (
                unlink(self.local(down_name)),
                _bind(impl.download, store, rsrc, self.local(down_name), overwrite=True, **kw),
            )
            result["transfer"][key] = (
                unlink(self.path_b(xfer_name)),
                _bind(impl.transfer, store, rsrc, dst_store, xfer_name, overwrite=True, **kw),
            )
        copies: dict[str, dict[str, tuple[str, str]]] = {}
        if FSSPEC in which:
            copies[FSSPEC] = {
                "upload": (src, self.path_a("up-fs.bin")),
                "download": (self.path_a(rsrc), self.local("down-fs.bin")),
                "transfer": (self.path_a(rsrc), self.path_b("xfer-fs.bin")),
            }
        if SHUTIL in which:
            copies[SHUTIL] = {
                "upload": (src, self.path_a("up-sh.bin")),
                "download": (self.path_a(rsrc), self.local("down-sh.bin")),
                "transfer": (self.path_a(rsrc), self.path_b("xfer-sh.bin")),
            }
        for name, by_op in copies.items():
            for op, (s, d) in by_op.items():
                result[op][name] = (unlink(d), _bind(_copier(name, op), s, d))
        return result


def _copier(name: str, op: str) -> Callable[[str, str], object]:
    """fsspec's local ``put_file`` / ``get_file`` / ``cp_file`` for *op*, or ``shutil.copyfile``."""
    if name == SHUTIL:
        return shutil.copyfile
    from fsspec.implementations.local import LocalFileSystem

    fs = LocalFileSystem()
    return {"upload": fs.put_file, "download": fs.get_file, "transfer": fs.cp_file}[op]
