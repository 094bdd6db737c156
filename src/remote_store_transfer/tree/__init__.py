"""Whole trees: ``upload_tree``, ``download_tree`` and ``transfer_tree``, built on the single-file core.

* :mod:`~remote_store_transfer.batch` -- :class:`Batch`, :class:`FileOutcome`, :class:`TreeResult` (plain data).
* :mod:`~remote_store_transfer.tree.options` -- every tree option, declared once (:class:`TreeOptions`).
* :mod:`~remote_store_transfer.tree.filters` -- include / exclude globs on relative paths.
* :mod:`~remote_store_transfer.tree.walk` -- the lazy listing of a local folder or a store prefix.
* :mod:`~remote_store_transfer.tree.plan` -- the planner: compare source and destination, decide.
* :mod:`~remote_store_transfer.tree.runner` -- the executor, retries, bandwidth, fail-fast, interrupts.
* :mod:`~remote_store_transfer.tree.mover` -- one file: check it, move it with retries, or delete it.
* :mod:`~remote_store_transfer.tree.engine` -- one tree call from start to end, with the batch hooks.
* :mod:`~remote_store_transfer.tree.shipping` -- how stores and plugin settings travel to worker processes.
* :mod:`~remote_store_transfer.tree.worker` -- the files of a tree in worker processes (processes, Dask).

The public functions are in :mod:`remote_store_transfer.transfers` (and on
``TransferManager``); docs/trees.md describes the semantics.
"""

from __future__ import annotations

from remote_store_transfer.batch import Batch, FileOutcome, TreeResult

__all__ = ["Batch", "FileOutcome", "TreeResult"]
