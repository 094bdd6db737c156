"""The files of a tree in worker processes: a ``ProcessPoolExecutor`` or a Dask ``distributed.Client``.

The caller sends each file as a call of :func:`run_file` (deletions as
:func:`run_delete`) with a :class:`BatchSpec`: plain, picklable data that says
how to open the stores (:mod:`~remote_store_transfer.tree.shipping`) and
which plugins to run. A worker process builds each store and its plugin
manager **once** and keeps them for the files that follow:

* its plugin manager is built as any process builds one -- the built-in
  plugins, the entry points, ``REMOTE_STORE_TRANSFER_CONFIG`` -- then the
  plugin settings the caller made with ``configure()`` / ``enable_plugin()``
  are applied (for a ``TransferManager``: its own plugins, as the caller
  registered them);
* every per-file hook runs there (``pre_batch`` / ``post_batch`` stay in the
  caller), and ``context.batch`` is a copy of the caller's batch (same id).

What comes back is a :class:`~remote_store_transfer.batch.FileOutcome`
whose error pickles: an error that does not is replaced by a
:class:`RemoteError` that names its type and message.
"""

from __future__ import annotations

import hashlib
import pickle
import threading
import traceback
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from remote_store_transfer import config
from remote_store_transfer.batch import Batch, FileOutcome
from remote_store_transfer.endpoint import Endpoint
from remote_store_transfer.errors import TransferError
from remote_store_transfer.plugin import PLUGIN_NAMES
from remote_store_transfer.plugin.manager import build_plugin_manager
from remote_store_transfer.runtime import build_from_environment
from remote_store_transfer.tree.mover import Mover
from remote_store_transfer.tree.options import TreeOptions
from remote_store_transfer.tree.shipping import CannotTravel, SharedStore, StoreSpec, dumps, loads, open_store

if TYPE_CHECKING:
    from remote_store_transfer.batch import TreeOperation
    from remote_store_transfer.plugin.manager import TransferPluginManager
    from remote_store_transfer.tree.plan import Decision
    from remote_store_transfer.tree.walk import Entry

__all__ = ["BatchSpec", "PluginSpec", "RemoteError", "plugin_spec", "run_delete", "run_file"]


class RemoteError(TransferError):
    """An error raised in a worker process that could not travel back as it was (it does not pickle).

    Attributes:
        type_name: The qualified name of the original exception's type.
        message: Its message.
        remote_traceback: Its traceback, as text.
    """

    def __init__(self, type_name: str, message: str, remote_traceback: str) -> None:
        super().__init__(f"{type_name}: {message} (in a worker process)")
        self.type_name = type_name
        self.message = message
        self.remote_traceback = remote_traceback


@dataclass(frozen=True)
class PluginSpec:
    """How a worker process builds its plugin manager.

    Attributes:
        global_manager: Build it as the process-wide manager is built (the tree
            was called through the module functions), else as a ``TransferManager``.
        entry_points: Load the entry-point plugins (always, for the process-wide manager).
        blocked: Plugin names never to register.
        payload: The pickled ``(settings, plugins)``: the ``configure()`` /
            ``enable_plugin()`` settings, and a ``TransferManager``'s own plugins.
        key: Identifies the spec (a worker builds each key once).
    """

    global_manager: bool
    entry_points: bool
    blocked: tuple[str, ...]
    payload: bytes
    key: str


def plugin_spec(pm: TransferPluginManager, *, global_manager: bool) -> PluginSpec:
    """What a worker needs to build a plugin manager like *pm*.

    Raises:
        CannotTravel: A setting or a plugin does not pickle (the message names it).
    """
    settings = tuple(pm.settings.items())
    for name, options in settings:
        for option, value in (options or {}).items():
            _check_pickles(value, f"the setting {option!r} of plugin {name!r}")
    plugins: list[tuple[str, object]] = []
    if not global_manager:
        for info in pm.list_plugins():
            if info.blocked or info.builtin or info.distribution is not None or info.name in PLUGIN_NAMES:
                continue  # built in, configured through settings, or loaded from an entry point on the worker too
            plugin = pm.get_plugin(info.name)
            _check_pickles(plugin, f"the plugin {info.name!r} ({type(plugin).__qualname__})")
            plugins.append((info.name, plugin))
    payload = dumps((settings, tuple(plugins)))  # a registry_store() among the settings goes as config + name
    blocked = tuple(sorted(pm.blocked_names))
    entry_points = global_manager or pm.entry_points_loaded
    key = hashlib.sha256(payload + repr((global_manager, entry_points, blocked)).encode()).hexdigest()[:24]
    return PluginSpec(global_manager, entry_points, blocked, payload, key)


def _check_pickles(value: object, what: str) -> None:
    try:
        dumps(value)
    except CannotTravel as exc:  # a store in it that would carry credentials: say which setting holds it
        raise CannotTravel(f"{what} cannot travel to worker processes: {exc}") from exc
    except Exception as exc:
        raise CannotTravel(
            f"{what} cannot travel to worker processes: it does not pickle ({type(exc).__name__}: {exc}); "
            "give it as data a worker can rebuild (a path, a registry_store()), install the plugin through an "
            "entry point, or use threads"
        ) from exc


@dataclass(frozen=True)
class BatchSpec:
    """One tree call, as each of its files travels to a worker process.

    Attributes:
        batch_id: The caller's ``Batch.id`` (the worker's copy has the same id).
        operation: ``"upload_tree"``, ``"download_tree"`` or ``"transfer_tree"``.
        src: How to open the source store (``None``: a local folder, on the worker's file system).
        src_root: The source root.
        dst: How to open the destination store (``None``: a local folder).
        dst_root: The destination root.
        options: The tree's options as plain data (``Batch.options``).
        keeps_mtime: The destination keeps user metadata (send the source's mtime).
        plugins: How to build the plugin manager.
    """

    batch_id: str
    operation: TreeOperation
    src: StoreSpec | None
    src_root: str
    dst: StoreSpec | None
    dst_root: str
    options: dict[str, Any]
    keeps_mtime: bool
    plugins: PluginSpec


_lock = threading.Lock()
_managers: dict[str, TransferPluginManager] = {}
_movers: dict[str, Mover] = {}
_MOVERS_KEPT = 8


def _manager(spec: PluginSpec) -> TransferPluginManager:
    """This process's plugin manager for *spec*, built once."""
    pm = _managers.get(spec.key)
    if pm is None:
        settings, plugins = loads(spec.payload)
        if spec.global_manager:
            pm = build_from_environment(spec.blocked)
        else:
            pm = build_plugin_manager(entry_points=spec.entry_points, blocked=spec.blocked)
        for name, plugin in plugins:
            pm.register(plugin, name=name)
        for name, options in settings:
            if options is None:
                config.disable(pm, name)
            else:
                config.enable(pm, name, options)
        _managers[spec.key] = pm
    return pm


def _mover(spec: BatchSpec) -> Mover:
    """This process's :class:`Mover` for the tree of *spec*, built at its first file."""
    with _lock:
        mover = _movers.get(spec.batch_id)
        if mover is None:
            src = open_store(spec.src) if spec.src is not None else None
            dst = open_store(spec.dst) if spec.dst is not None else None
            batch = Batch(spec.operation, Endpoint(src, spec.src_root), Endpoint(dst, spec.dst_root), spec.options)
            batch.id = spec.batch_id
            mover = Mover(
                _manager(spec.plugins).dispatch,
                batch,
                SharedStore(src),
                spec.src_root,
                SharedStore(dst),
                spec.dst_root,
                TreeOptions.from_plain(spec.options),
                keeps_mtime=spec.keeps_mtime,
                progress=None,
            )
            while len(_movers) >= _MOVERS_KEPT:  # forget the oldest trees
                _movers.pop(next(iter(_movers)))
            _movers[spec.batch_id] = mover
        return mover


def _portable(outcome: FileOutcome | None) -> FileOutcome | None:
    """*outcome* with an error that pickles (else a :class:`RemoteError` naming it)."""
    if outcome is None or outcome.error is None:
        return outcome
    error = outcome.error
    try:
        pickle.loads(pickle.dumps(error))
    except Exception:  # noqa: BLE001 -- whatever fails, the description travels instead
        text = "".join(traceback.format_exception(error))
        outcome.error = RemoteError(f"{type(error).__module__}.{type(error).__qualname__}", str(error), text)
    return outcome


def run_file(spec: BatchSpec, entry: Entry, decision: Decision, dst: Entry | None = None) -> FileOutcome | None:
    """Move one file of a tree in this (worker) process; its outcome, ready to travel back."""
    return _portable(_mover(spec).task(entry, decision, dst))


def run_delete(spec: BatchSpec, rel: str, size: int) -> FileOutcome | None:
    """Delete one destination file of a tree (``delete=True``) in this (worker) process."""
    return _portable(_mover(spec).delete(rel, size))
