"""The public ``upload`` / ``download`` / ``transfer`` functions and :class:`TransferManager`.

The module-level functions use the process-wide plugin manager
(:func:`~remote_store_transfer.plugin_manager`); the tree functions are the
methods of one process-wide manager, so their options are written once
(:mod:`remote_store_transfer.tree.options`). A :class:`TransferManager`
carries its own plugins, for tests and multi-tenant applications.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING

from remote_store_transfer import streaming
from remote_store_transfer.plugin.manager import PluginInfo, TransferPluginManager, build_plugin_manager
from remote_store_transfer.runtime import plugin_manager
from remote_store_transfer.tree.engine import run_tree
from remote_store_transfer.tree.options import TreeOptions, takes_tree_options

if TYPE_CHECKING:
    from remote_store import Store

    from remote_store_transfer.batch import TreeResult

__all__ = ["TransferManager", "download", "download_tree", "transfer", "transfer_tree", "upload", "upload_tree"]

Progress = Callable[[int], None]


def upload(
    store: Store,
    local_path: str | os.PathLike[str],
    remote_path: str,
    *,
    overwrite: bool = False,
    on_progress: Progress | None = None,
    atomic: bool = False,
) -> None:
    """Upload a local file to *store*, streaming it (never the whole file in memory).

    The open local file is handed to ``store.write()``; when ``on_progress``
    is given or a plugin observes chunks, it is wrapped so that every read
    fires ``on_chunk``.

    Args:
        store: The ``Store`` to write to (``Store.child()`` scopes work).
        local_path: Path of the local file.
        remote_path: Destination path in *store*.
        overwrite: Forwarded to ``store.write()``.
        on_progress: Called once per read with the byte count of that read (not cumulative).
        atomic: Use ``store.write_atomic()``: readers never see a partial file.

    Raises:
        FileNotFoundError: *local_path* does not exist (before any Store call).
        AlreadyExists: The remote file exists and *overwrite* is false.
        CapabilityNotSupported: From the store, unchanged (for example
            ``atomic=True`` on a store without ``ATOMIC_WRITE``).
    """
    streaming.upload(plugin_manager().dispatch, store, local_path, remote_path, overwrite, on_progress, atomic)


def download(
    store: Store,
    remote_path: str,
    local_path: str | os.PathLike[str],
    *,
    overwrite: bool = False,
    on_progress: Progress | None = None,
    atomic: bool = False,
) -> None:
    """Download a file from *store* to a local path in 1 MiB chunks.

    Args:
        store: The ``Store`` to read from.
        remote_path: Path of the file in *store*.
        local_path: Destination on the local file system.
        overwrite: Replace an existing local file.
        on_progress: Called once per chunk with its byte count (not cumulative).
        atomic: Write to a temp file beside *local_path* and rename it into
            place on success; on failure the temp file is removed and an
            existing *local_path* is untouched.

    Raises:
        FileExistsError: *local_path* exists and *overwrite* is false (before ``store.read()``).
        NotFound: The remote file does not exist.
    """
    streaming.download(plugin_manager().dispatch, store, remote_path, local_path, overwrite, on_progress, atomic)


def transfer(
    src_store: Store,
    src_path: str,
    dst_store: Store,
    dst_path: str,
    *,
    overwrite: bool = False,
    on_progress: Progress | None = None,
    atomic: bool = False,
) -> None:
    """Stream a file from *src_store* to *dst_store* (which may be the same store).

    Args:
        src_store: The ``Store`` to read from.
        src_path: Path of the file in *src_store*.
        dst_store: The ``Store`` to write to.
        dst_path: Destination path in *dst_store*.
        overwrite: Forwarded to ``dst_store.write()``.
        on_progress: Called once per read of the source stream with its byte count.
        atomic: Use ``dst_store.write_atomic()``.

    Raises:
        NotFound: The source file does not exist.
        AlreadyExists: The destination exists and *overwrite* is false.
    """
    streaming.transfer(
        plugin_manager().dispatch, src_store, src_path, dst_store, dst_path, overwrite, on_progress, atomic
    )


class TransferManager:
    """An isolated set of plugins with its own ``upload`` / ``download`` / ``transfer``.

    It never touches the process-wide manager: use it in tests and in
    applications that serve several tenants with different plugins.

    Args:
        plugins: Plugins to register (modules or objects with hook implementations).
        entry_points: Also load the plugins installed under the
            ``remote_store_transfer`` entry-point group (default: no).
        blocked: Plugin names never to register.

    Example::

        manager = TransferManager([MyAuditPlugin()])
        manager.upload(store, "report.csv", "reports/report.csv")
    """

    def __init__(
        self,
        plugins: Iterable[object] = (),
        *,
        entry_points: bool = False,
        blocked: Sequence[str] = (),
    ) -> None:
        self.plugin_manager: TransferPluginManager = build_plugin_manager(
            plugins, entry_points=entry_points, blocked=blocked
        )

    def register(self, plugin: object, name: str | None = None) -> str | None:
        """Register one more plugin; returns its name (``None`` if the name is blocked)."""
        return self.plugin_manager.register(plugin, name)

    def unregister(self, plugin: object | None = None, name: str | None = None) -> object:
        """Remove a plugin, by object or by name."""
        return self.plugin_manager.unregister(plugin, name)

    def block(self, name: str) -> None:
        """Block a plugin name in this manager (unregistering it if present)."""
        self.plugin_manager.set_blocked(name)

    def list_plugins(self) -> list[PluginInfo]:
        """The plugins of this manager, with distribution and version."""
        return self.plugin_manager.list_plugins()

    def upload(
        self,
        store: Store,
        local_path: str | os.PathLike[str],
        remote_path: str,
        *,
        overwrite: bool = False,
        on_progress: Progress | None = None,
        atomic: bool = False,
    ) -> None:
        """:func:`remote_store_transfer.upload` with this manager's plugins."""
        streaming.upload(self.plugin_manager.dispatch, store, local_path, remote_path, overwrite, on_progress, atomic)

    def download(
        self,
        store: Store,
        remote_path: str,
        local_path: str | os.PathLike[str],
        *,
        overwrite: bool = False,
        on_progress: Progress | None = None,
        atomic: bool = False,
    ) -> None:
        """:func:`remote_store_transfer.download` with this manager's plugins."""
        streaming.download(self.plugin_manager.dispatch, store, remote_path, local_path, overwrite, on_progress, atomic)

    def transfer(
        self,
        src_store: Store,
        src_path: str,
        dst_store: Store,
        dst_path: str,
        *,
        overwrite: bool = False,
        on_progress: Progress | None = None,
        atomic: bool = False,
    ) -> None:
        """:func:`remote_store_transfer.transfer` with this manager's plugins."""
        streaming.transfer(
            self.plugin_manager.dispatch, src_store, src_path, dst_store, dst_path, overwrite, on_progress, atomic
        )

    @takes_tree_options(TreeOptions)
    def upload_tree(
        self, store: Store, local_dir: str | os.PathLike[str], remote_prefix: str, options: TreeOptions
    ) -> TreeResult:
        """Upload every file under the local folder *local_dir* to the same relative path under *remote_prefix*.

        Each file goes through :func:`upload`'s core: its own context, every
        plugin hook, ``atomic``. ``pre_batch`` / ``post_batch`` frame the whole
        tree. See ``docs/trees.md``.

        {options}

        Returns:
            A :class:`~remote_store_transfer.batch.TreeResult`.

        Raises:
            ValueError / TypeError: A bad option (the message names it), or a tree copied into itself.
            FileNotFoundError / NotADirectoryError: The local source folder is missing or not a folder.
            KeyboardInterrupt: The tree was interrupted (in the caller, or by a
                plugin or callback); the files in flight ended first.
            Any exception from ``pre_batch`` (a veto) or ``post_batch``.
        """
        local = os.fsdecode(local_dir)
        return run_tree(self._tree_manager(), "upload_tree", None, local, store, remote_prefix, options)

    @takes_tree_options(TreeOptions)
    def download_tree(
        self, store: Store, remote_prefix: str, local_dir: str | os.PathLike[str], options: TreeOptions
    ) -> TreeResult:
        """Download every file under *remote_prefix* of *store* to the same relative path under *local_dir*.

        Local folders are made as needed, and each file's modification time is
        set to the source's. See ``docs/trees.md``.

        {options}

        Returns:
            A :class:`~remote_store_transfer.batch.TreeResult`.

        Raises:
            ValueError / TypeError: A bad option (the message names it), or a tree copied into itself.
            NotADirectoryError: The local destination exists and is not a folder.
            KeyboardInterrupt: The tree was interrupted; the files in flight ended first.
            Any exception from ``pre_batch`` (a veto) or ``post_batch``.
        """
        local = os.fsdecode(local_dir)
        return run_tree(self._tree_manager(), "download_tree", store, remote_prefix, None, local, options)

    @takes_tree_options(TreeOptions)
    def transfer_tree(
        self, src_store: Store, src_prefix: str, dst_store: Store, dst_prefix: str, options: TreeOptions
    ) -> TreeResult:
        """Stream every file under *src_prefix* of *src_store* to the same path under *dst_prefix* of *dst_store*.

        See ``docs/trees.md``.

        {options}

        Returns:
            A :class:`~remote_store_transfer.batch.TreeResult`.

        Raises:
            ValueError / TypeError: A bad option (the message names it), or a tree copied into itself.
            KeyboardInterrupt: The tree was interrupted; the files in flight ended first.
            Any exception from ``pre_batch`` (a veto) or ``post_batch``.
        """
        return run_tree(self._tree_manager(), "transfer_tree", src_store, src_prefix, dst_store, dst_prefix, options)

    def _tree_manager(self) -> TransferPluginManager:
        """The plugin manager the tree calls use: this manager's own."""
        return self.plugin_manager


class _ProcessWide(TransferManager):
    """The manager behind the module tree functions: its plugins are the process-wide manager's, looked up per call."""

    def __init__(self) -> None:  # no plugin manager of its own: the process-wide one is built on first use
        pass

    def _tree_manager(self) -> TransferPluginManager:
        return plugin_manager()


_PROCESS_WIDE = _ProcessWide()
upload_tree = _PROCESS_WIDE.upload_tree
download_tree = _PROCESS_WIDE.download_tree
transfer_tree = _PROCESS_WIDE.transfer_tree
