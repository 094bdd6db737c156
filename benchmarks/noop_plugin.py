"""A third-party no-op plugin, installed the way pip would install it, for case (c) of the benchmark.

:func:`install` writes a tiny distribution into a temporary directory -- the
plugin module plus ``rst_bench_noop-1.0.dist-info/`` with ``METADATA`` and
``entry_points.txt`` declaring it in the ``remote_store_transfer`` group --
and puts that directory on ``sys.path``. From then on
``importlib.metadata`` finds it like any installed distribution, and a
manager built with ``entry_points=True`` loads it through its entry point.

The plugin implements all three hooks and does nothing in them: what it
costs is the price of the hook layer itself.
"""

from __future__ import annotations

import importlib
import shutil
import sys
import tempfile
import textwrap
from pathlib import Path

__all__ = ["DIST_NAME", "ENTRY_POINT_NAME", "MODULE", "install", "uninstall"]

DIST_NAME = "rst-bench-noop"
ENTRY_POINT_NAME = "bench-noop"
MODULE = "rst_bench_noop"

_SOURCE = '''\
"""No-op plugin for the remote-store-transfer benchmark: all three hooks, no work."""

from remote_store_transfer import hookimpl


@hookimpl
def pre_transfer(context):
    pass


@hookimpl
def on_chunk(context, nbytes, data):
    pass


@hookimpl
def post_transfer(context, error):
    pass
'''


def install() -> Path:
    """Write the distribution to a temp dir, put it on ``sys.path``; return the dir."""
    root = Path(tempfile.mkdtemp(prefix="rst-bench-site-"))
    (root / f"{MODULE}.py").write_text(_SOURCE)
    info = root / f"{DIST_NAME.replace('-', '_')}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        textwrap.dedent(
            f"""\
            Metadata-Version: 2.1
            Name: {DIST_NAME}
            Version: 1.0
            Summary: No-op remote-store-transfer plugin used by the benchmark suite.
            Requires-Dist: remote-store-transfer
            """
        )
    )
    (info / "entry_points.txt").write_text(f"[remote_store_transfer]\n{ENTRY_POINT_NAME} = {MODULE}\n")
    (info / "RECORD").write_text("")
    sys.path.insert(0, str(root))
    importlib.invalidate_caches()
    return root


def uninstall(root: Path) -> None:
    """Take the distribution off ``sys.path`` and delete it."""
    if str(root) in sys.path:
        sys.path.remove(str(root))
    sys.modules.pop(MODULE, None)
    importlib.invalidate_caches()
    shutil.rmtree(root, ignore_errors=True)
