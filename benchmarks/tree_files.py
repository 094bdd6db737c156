"""Source trees on local disk for the tree benchmarks, and the checks that a tree arrived whole."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["KiB", "MiB", "Tree", "check_listing", "check_result", "local_listing"]

KiB = 1024
MiB = 1024 * KiB


@dataclass
class Tree:
    """*count* files of *size* random bytes under *local*; in a bucket under ``src/<key>``."""

    key: str
    count: int
    size: int
    local: Path

    @property
    def name(self) -> str:
        size = f"{self.size // MiB} MiB" if self.size >= MiB else f"{self.size // KiB} KiB"
        return f"{self.count} x {size}"

    @property
    def prefix(self) -> str:
        return f"src/{self.key}"

    @property
    def total(self) -> int:
        return self.count * self.size

    def relpaths(self) -> list[str]:
        """Nested folders for many files (20 per folder), a flat folder for few."""
        if self.count <= 20:
            return [f"f{i:05d}.bin" for i in range(self.count)]
        return [f"d{i // 20:03d}/f{i:05d}.bin" for i in range(self.count)]

    def make(self) -> Tree:
        chunk = 4 * MiB
        for rel in self.relpaths():
            path = self.local / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(path, "wb") as fh:
                for start in range(0, self.size, chunk):
                    fh.write(os.urandom(min(chunk, self.size - start)))
        return self


def local_listing(root: Path) -> tuple[int, int]:
    """(file count, total bytes) under *root*."""
    count = total = 0
    for dirpath, _, names in os.walk(root):
        for name in names:
            count += 1
            total += os.path.getsize(os.path.join(dirpath, name))
    return count, total


def check_result(result: Any, tree: Tree) -> None:
    """Raise unless a tree call's result says it moved every file of *tree*."""
    if not result.ok or len(result.transferred) != tree.count:
        failed = dict(list(result.failed.items())[:3])
        raise RuntimeError(
            f"tree call: ok={result.ok}, {len(result.transferred)} of {tree.count} transferred, "
            f"{len(result.skipped)} skipped, failed (first 3): {failed}"
        )


def check_listing(found: tuple[int, int], tree: Tree) -> None:
    """Raise unless a destination's (file count, total bytes) are *tree*'s."""
    count, total = found
    if (count, total) != (tree.count, tree.total):
        raise RuntimeError(f"destination holds {count} files, {total} bytes; expected {tree.count}, {tree.total}")
