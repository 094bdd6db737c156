"""The servers of the benchmarks, the tests' own harness, and a bookkeeping client that lists, removes and
counts requests without the store under test.

Importing this module puts ``tests`` on ``sys.path`` (for ``harness``: ``MotoServer`` /
``SshServer``, the servers the tests start, each its own process: a server in the
benchmark's process would compete with the client for the GIL and skew what is measured)
and forbids every client to ask for instance metadata.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING

ROOT = Path(__file__).resolve().parent.parent
# After the benchmarks' own folder (sys.path[0] when run as a script): no test module shadows a benchmark module.
sys.path.insert(1, str(ROOT / "tests"))

# No client here may ever ask for instance metadata (169.254.169.254): every client gets its keys.
os.environ["AWS_EC2_METADATA_DISABLED"] = "true"

from harness import MotoServer, SshServer, descendants  # noqa: E402

if TYPE_CHECKING:
    from collections.abc import Iterator

    from tree_files import Tree

__all__ = ["MotoBucket", "MotoServer", "SshServer"]

# One line per request in moto's (werkzeug's) access log; the method may follow a colour escape.
REQUEST_LINE = re.compile(rb'\] "(?:\x1b\[[0-9;]*m)*(GET|PUT|POST|HEAD|DELETE) ')


class MotoBucket:
    """A bucket on a moto server (its own process), seen through boto3, never through the store under test.

    Prefixes are relative to *root* (a store's ``root_path`` in the bucket).
    """

    def __init__(self, server: MotoServer, bucket: str, root: str = "") -> None:
        self.server = server
        self.bucket = bucket
        self.root = root
        self.client = server.client()
        server.make_bucket(bucket)

    def pids(self) -> list[int]:
        """The server's process and its children, for CPU accounting."""
        proc = self.server.proc
        return [proc.pid, *descendants(proc.pid)] if proc is not None else []

    def mark(self) -> int:
        """The access log's current length: requests after this point belong to what runs next."""
        return self.server.log_path.stat().st_size

    def requests(self, start: int, end: int) -> dict[str, int]:
        """Requests logged between two marks, by method."""
        with open(self.server.log_path, "rb") as fh:
            fh.seek(start)
            chunk = fh.read(end - start)
        counts: dict[str, int] = {}
        for match in REQUEST_LINE.finditer(chunk):
            method = match.group(1).decode()
            counts[method] = counts.get(method, 0) + 1
        return counts

    def keys(self, prefix: str) -> Iterator[tuple[str, int]]:
        full = f"{self.root}/{prefix}/" if self.root else f"{prefix}/"
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=full):
            for obj in page.get("Contents", []):
                yield obj["Key"], obj["Size"]

    def listing(self, prefix: str) -> tuple[int, int]:
        """(object count, total bytes) under *prefix*."""
        sizes = [size for _, size in self.keys(prefix)]
        return len(sizes), sum(sizes)

    def remove(self, prefix: str) -> None:
        keys = [key for key, _ in self.keys(prefix)]
        for start in range(0, len(keys), 1000):
            objects = [{"Key": key} for key in keys[start : start + 1000]]
            self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": objects, "Quiet": True})

    def put_tree(self, tree: Tree) -> None:
        """Upload *tree* under its prefix (with boto3)."""
        for rel in tree.relpaths():
            with open(tree.local / rel, "rb") as fh:
                self.client.put_object(Bucket=self.bucket, Key=f"{tree.prefix}/{rel}", Body=fh)
