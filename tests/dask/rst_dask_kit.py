"""Helpers for the Dask / process-executor tests: a pip-style plugin install, plugins, trees on disk.

Importable by the test modules *and* by the worker processes (it sits in
``tests/dask``, which the session puts on the workers' ``sys.path``), so the
plugin objects defined here unpickle there: ``TransferManager`` plugins are
pickled and shipped to the workers with each tree.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import textwrap
import time
import uuid
from pathlib import Path
from typing import Any

from remote_store_transfer import hookimpl

HERE = Path(__file__).resolve().parent

S3_KEY_ENV = "RST_TEST_S3_KEY"
S3_SECRET_ENV = "RST_TEST_S3_SECRET"
"""The variables that hold the S3 credentials: set in the caller's and the workers' environment only."""

PROBE_ENV = "RST_DASK_PROBE_DIR"
"""Names the folder where the installed probe plugin writes its lines (one file per batch id)."""
PROBE_DIST = "rst-dask-probe"
PROBE_ENTRY_POINT = "rstdask"
PROBE_MODULE = "rst_dask_probe_plugin"

PROBE_SOURCE = f"""
import json, os
from remote_store_transfer import hookimpl

def _log(event, context):
    folder = os.environ.get({PROBE_ENV!r})
    if not folder or context.batch is None:  # installed for the whole session: silent outside the dask tests
        return
    line = json.dumps([event, os.getpid(), context.batch.id, context.source.path, context.destination.path])
    with open(os.path.join(folder, context.batch.id + ".jsonl"), "a") as fh:
        fh.write(line + "\\n")

@hookimpl
def pre_transfer(context):
    _log("pre", context)

@hookimpl
def post_transfer(context, error):
    _log("post" if error is None else "post-error", context)
"""


def install_distribution(site: Path, dist: str, version: str, ep_name: str, module: str, source: str) -> None:
    """Lay out a distribution in *site* the way pip installs it (module + ``*.dist-info`` with entry points)."""
    (site / f"{module}.py").write_text(textwrap.dedent(source))
    info = site / f"{dist.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    (info / "entry_points.txt").write_text(f"[remote_store_transfer]\n{ep_name} = {module}\n")
    (info / "RECORD").write_text("")


def probe_events(folder: Path, batch_id: str) -> list[dict[str, Any]]:
    """The probe plugin's lines for one tree: ``event``, ``pid``, ``batch``, ``source``, ``destination``."""
    path = folder / f"{batch_id}.jsonl"
    if not path.exists():
        return []
    keys = ("event", "pid", "batch", "source", "destination")
    return [dict(zip(keys, json.loads(line), strict=True)) for line in path.read_text().splitlines()]


# region: plugins


class CallerSpy:
    """Registered by hand in the caller's process-wide manager: records every hook with the pid it ran in."""

    def __init__(self) -> None:
        self.batches: list[tuple[str, int, str, bool]] = []  # (hook, pid, batch id, batch.remote)
        self.files: list[tuple[str, int, str]] = []  # (hook, pid, destination path)

    @hookimpl
    def pre_batch(self, batch: Any) -> None:
        self.batches.append(("pre_batch", os.getpid(), batch.id, batch.remote))

    @hookimpl
    def post_batch(self, batch: Any, result: Any) -> None:
        self.batches.append(("post_batch", os.getpid(), batch.id, batch.remote))

    @hookimpl
    def pre_transfer(self, context: Any) -> None:
        self.files.append(("pre_transfer", os.getpid(), context.destination.path))

    @hookimpl
    def post_transfer(self, context: Any, error: Any) -> None:
        self.files.append(("post_transfer", os.getpid(), context.destination.path))


class Gate:
    """A plugin that holds files in flight until the test says go (shipped pickled with a ``TransferManager``).

    Each try of each file touches a marker ``<pid>-<n>.<where>`` in *folder*,
    then waits until the file ``release`` exists there. *where* is
    ``"pre_transfer"`` (before the destination is opened) or ``"on_chunk"``
    (at the first chunk: the destination's temp file is open, partly written).
    Once released, the tries that follow pass straight through.
    """

    def __init__(self, folder: str | os.PathLike[str], where: str = "pre_transfer", limit: float = 120.0) -> None:
        if where not in ("pre_transfer", "on_chunk"):
            raise ValueError(where)
        self.folder = os.fspath(folder)
        self.where = where
        self.limit = limit

    @property
    def release(self) -> str:
        return os.path.join(self.folder, "release")

    def _hold(self, context: Any) -> None:
        if os.path.exists(self.release):
            return
        marker = os.path.join(self.folder, f"{os.getpid()}-{uuid.uuid4().hex[:8]}.{self.where}")
        with open(marker, "w") as fh:
            fh.write(context.destination.path)
        deadline = time.monotonic() + self.limit  # a safety net only: the test releases long before
        while not os.path.exists(self.release) and time.monotonic() < deadline:
            time.sleep(0.01)

    @hookimpl
    def pre_transfer(self, context: Any) -> None:
        if self.where == "pre_transfer":
            self._hold(context)

    @hookimpl
    def on_chunk(self, context: Any, nbytes: int) -> None:
        if self.where == "on_chunk" and context.bytes_transferred == nbytes:  # the first chunk of this try
            self._hold(context)


def markers(folder: Path) -> list[tuple[int, str]]:
    """``(pid, where)`` of every marker the :class:`Gate` wrote in *folder*."""
    found = []
    for path in folder.iterdir():
        if path.name != "release":
            pid, _, where = path.name.partition("-")
            found.append((int(pid), where.rpartition(".")[2]))
    return found


# endregion

# region: trees on disk


def make_tree(root: Path, count: int, *, big: int = 0) -> dict[str, bytes]:
    """*count* files of distinct random content under *root*, in nested folders; relative path -> bytes.

    Sizes vary (one empty file); *big* more files of 1.5 MiB (several chunks) are added.
    """
    files: dict[str, bytes] = {}
    for i in range(count):
        rel = f"d{i % 3}/sub{i % 2}/f{i:03d}.bin" if i % 4 else f"top{i:03d}.bin"
        files[rel] = os.urandom(0 if i == 1 else 100 + 997 * i)
    for i in range(big):
        files[f"big/b{i}.bin"] = os.urandom(1_572_864 + i)
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return files


def local_tree(root: Path) -> dict[str, bytes]:
    """Every entry under *root*, hidden ones included: relative path -> bytes (folders are not listed)."""
    found: dict[str, bytes] = {}
    for folder, _, names in os.walk(root):
        for name in names:
            path = Path(folder, name)
            found[path.relative_to(root).as_posix()] = path.read_bytes()
    return found


def store_tree(store: Any, prefix: str) -> dict[str, bytes]:
    """Every file under *prefix* in *store*: relative path -> bytes."""
    found: dict[str, bytes] = {}
    for info in store.list_files(prefix, recursive=True):
        rel = str(info.path)[len(prefix) :].lstrip("/")
        with contextlib.closing(store.read(str(info.path))) as stream:
            found[rel] = stream.read()
    return found


def digests(files: dict[str, bytes]) -> dict[str, str]:
    """Relative path -> sha256, for readable assertion failures."""
    return {rel: hashlib.sha256(data).hexdigest() for rel, data in files.items()}


def wait_until(condition: Any, what: str, limit: float = 60.0) -> None:
    """Poll *condition* until true; fail naming *what* after *limit* seconds (a hang guard, not a timing check)."""
    deadline = time.monotonic() + limit
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


# endregion
