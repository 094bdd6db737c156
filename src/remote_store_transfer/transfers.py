"""The public ``upload`` / ``download`` / ``transfer`` functions and :class:`TransferManager`.

The module-level functions use the process-wide plugin manager
(:func:`~remote_store_transfer.plugin_manager`). A :class:`TransferManager`
carries its own plugins, for tests and multi-tenant applications.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from remote_store_transfer import streaming
from remote_store_transfer.plugin.manager import PluginInfo, TransferPluginManager, build_plugin_manager
from remote_store_transfer.runtime import plugin_manager
from remote_store_transfer.tree.engine import TreeOptions, run_tree
from remote_store_transfer.tree.plan import MAX_DELETE

if TYPE_CHECKING:
    from concurrent.futures import Executor

    from remote_store import Store

    from remote_store_transfer.batch import FileOutcome, TreeResult
    from remote_store_transfer.tree.plan import Update

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


def upload_tree(
    store: Store,
    local_dir: str | os.PathLike[str],
    remote_prefix: str,
    *,
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
    update: Update = "missing",
    checksum: bool = False,
    modify_window: float = 1.0,
    delete: bool = False,
    max_delete: int | str | None = MAX_DELETE,
    dry_run: bool = False,
    max_workers: int = 8,
    executor: Executor | None = None,
    on_progress: Progress | None = None,
    on_file: Callable[[FileOutcome], None] | None = None,
    atomic: bool = False,
    retries: int = 2,
    fail_fast: bool = False,
    max_bandwidth: float | None = None,
    follow_symlinks: bool = False,
) -> TreeResult:
    """Upload every file under the local folder *local_dir* to the same relative path under *remote_prefix*.

    Each file goes through :func:`upload`'s core: its own context, every
    plugin hook, ``atomic``. ``pre_batch`` / ``post_batch`` frame the whole
    tree. See ``docs/trees.md``.

    Keyword Args:
        include: Glob patterns on the relative path ("/"-separated): ``*`` within
            one segment, ``**`` across any number of segments (zero included),
            ``?`` one character, ``[abc]`` one of a set. A pattern without ``/``
            matches the file name in any folder. Empty: every file.
        exclude: Glob patterns likewise; a file is taken when it matches some
            ``include`` (or ``include`` is empty) and no ``exclude``.
        update: ``"missing"`` (default): only files absent at the destination
            move, so a re-run resumes. ``"changed"``: also replace files whose
            size differs or whose modification time differs (see
            ``docs/trees.md``); ``"all"``: write everything.
        checksum: With ``update="changed"``, compare content digests instead of times.
        modify_window: Seconds within which two modification times count as equal (default 1.0).
        delete: After a run in which no file failed, delete the destination
            files under the prefix that the source does not have (excluded
            files are left alone).
        max_delete: With *delete*, the most destination files a run may delete:
            a count, or a percentage of the destination files the filters take
            (default ``"50%"``); ``None``: no limit. A run that would delete
            more deletes nothing and fails with ``DeleteLimitError`` (a listing
            that ended early would otherwise wipe the files it missed).
        dry_run: Plan only: nothing is written or deleted; the result lists
            what would be transferred, skipped and deleted.
        max_workers: At most this many files in flight (default 8).
        executor: A ``concurrent.futures.Executor`` to run the files on, used
            as given and never shut down (default: a thread pool of
            *max_workers* threads, made and shut down by the call).
        on_progress: Called with the byte count of every chunk of every file
            (not cumulative), from the worker threads.
        on_file: Called once for each file that ends (and each deletion),
            with its :class:`~remote_store_transfer.batch.FileOutcome`,
            from the caller's thread.
        atomic: Write every file atomically (``write_atomic`` / temp file + rename).
        retries: Transient errors (``BackendUnavailable``, ``ConnectionError``,
            ``TimeoutError``, ``IncompleteTransferError``) are retried up to this
            many times per file, with exponential backoff and jitter.
        fail_fast: Start no new file after the first failure.
        max_bandwidth: Bytes per second over the whole tree (``None``: unlimited).
        follow_symlinks: Follow symbolic links in a local source (default: skip them).

    Returns:
        A :class:`~remote_store_transfer.batch.TreeResult`.

    Raises:
        ValueError: A bad option, or a tree copied into itself.
        FileNotFoundError / NotADirectoryError: The local source folder is missing or not a folder.
        KeyboardInterrupt: The tree was interrupted (in the caller, or by a
            plugin or callback); the files in flight ended first.
        Any exception from ``pre_batch`` (a veto) or ``post_batch``.
    """
    options = _tree_options(locals())
    return run_tree(plugin_manager(), "upload_tree", None, os.fsdecode(local_dir), store, remote_prefix, options)


def download_tree(
    store: Store,
    remote_prefix: str,
    local_dir: str | os.PathLike[str],
    *,
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
    update: Update = "missing",
    checksum: bool = False,
    modify_window: float = 1.0,
    delete: bool = False,
    max_delete: int | str | None = MAX_DELETE,
    dry_run: bool = False,
    max_workers: int = 8,
    executor: Executor | None = None,
    on_progress: Progress | None = None,
    on_file: Callable[[FileOutcome], None] | None = None,
    atomic: bool = False,
    retries: int = 2,
    fail_fast: bool = False,
    max_bandwidth: float | None = None,
    follow_symlinks: bool = False,
) -> TreeResult:
    """Download every file under *remote_prefix* of *store* to the same relative path under *local_dir*.

    Local folders are made as needed, and each file's modification time is
    set to the source's. See :func:`upload_tree` for the options.

    Keyword Args:
        include: Glob patterns on the relative path ("/"-separated): ``*`` within
            one segment, ``**`` across any number of segments (zero included),
            ``?`` one character, ``[abc]`` one of a set. A pattern without ``/``
            matches the file name in any folder. Empty: every file.
        exclude: Glob patterns likewise; a file is taken when it matches some
            ``include`` (or ``include`` is empty) and no ``exclude``.
        update: ``"missing"`` (default): only files absent at the destination
            move, so a re-run resumes. ``"changed"``: also replace files whose
            size differs or whose modification time differs (see
            ``docs/trees.md``); ``"all"``: write everything.
        checksum: With ``update="changed"``, compare content digests instead of times.
        modify_window: Seconds within which two modification times count as equal (default 1.0).
        delete: After a run in which no file failed, delete the destination
            files under the prefix that the source does not have (excluded
            files are left alone).
        max_delete: With *delete*, the most destination files a run may delete:
            a count, or a percentage of the destination files the filters take
            (default ``"50%"``); ``None``: no limit. A run that would delete
            more deletes nothing and fails with ``DeleteLimitError`` (a listing
            that ended early would otherwise wipe the files it missed).
        dry_run: Plan only: nothing is written or deleted; the result lists
            what would be transferred, skipped and deleted.
        max_workers: At most this many files in flight (default 8).
        executor: A ``concurrent.futures.Executor`` to run the files on, used
            as given and never shut down (default: a thread pool of
            *max_workers* threads, made and shut down by the call).
        on_progress: Called with the byte count of every chunk of every file
            (not cumulative), from the worker threads.
        on_file: Called once for each file that ends (and each deletion),
            with its :class:`~remote_store_transfer.batch.FileOutcome`,
            from the caller's thread.
        atomic: Write every file atomically (``write_atomic`` / temp file + rename).
        retries: Transient errors (``BackendUnavailable``, ``ConnectionError``,
            ``TimeoutError``, ``IncompleteTransferError``) are retried up to this
            many times per file, with exponential backoff and jitter.
        fail_fast: Start no new file after the first failure.
        max_bandwidth: Bytes per second over the whole tree (``None``: unlimited).
        follow_symlinks: Follow symbolic links in a local source (default: skip them).

    Returns:
        A :class:`~remote_store_transfer.batch.TreeResult`.

    Raises:
        ValueError: A bad option, or a tree copied into itself.
        FileNotFoundError / NotADirectoryError: The local source folder is missing or not a folder.
        KeyboardInterrupt: The tree was interrupted (in the caller, or by a
            plugin or callback); the files in flight ended first.
        Any exception from ``pre_batch`` (a veto) or ``post_batch``.
    """
    options = _tree_options(locals())
    return run_tree(plugin_manager(), "download_tree", store, remote_prefix, None, os.fsdecode(local_dir), options)


def transfer_tree(
    src_store: Store,
    src_prefix: str,
    dst_store: Store,
    dst_prefix: str,
    *,
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
    update: Update = "missing",
    checksum: bool = False,
    modify_window: float = 1.0,
    delete: bool = False,
    max_delete: int | str | None = MAX_DELETE,
    dry_run: bool = False,
    max_workers: int = 8,
    executor: Executor | None = None,
    on_progress: Progress | None = None,
    on_file: Callable[[FileOutcome], None] | None = None,
    atomic: bool = False,
    retries: int = 2,
    fail_fast: bool = False,
    max_bandwidth: float | None = None,
    follow_symlinks: bool = False,
) -> TreeResult:
    """Stream every file under *src_prefix* of *src_store* to the same relative path under *dst_prefix* of *dst_store*.

    See :func:`upload_tree` for the options.

    Keyword Args:
        include: Glob patterns on the relative path ("/"-separated): ``*`` within
            one segment, ``**`` across any number of segments (zero included),
            ``?`` one character, ``[abc]`` one of a set. A pattern without ``/``
            matches the file name in any folder. Empty: every file.
        exclude: Glob patterns likewise; a file is taken when it matches some
            ``include`` (or ``include`` is empty) and no ``exclude``.
        update: ``"missing"`` (default): only files absent at the destination
            move, so a re-run resumes. ``"changed"``: also replace files whose
            size differs or whose modification time differs (see
            ``docs/trees.md``); ``"all"``: write everything.
        checksum: With ``update="changed"``, compare content digests instead of times.
        modify_window: Seconds within which two modification times count as equal (default 1.0).
        delete: After a run in which no file failed, delete the destination
            files under the prefix that the source does not have (excluded
            files are left alone).
        max_delete: With *delete*, the most destination files a run may delete:
            a count, or a percentage of the destination files the filters take
            (default ``"50%"``); ``None``: no limit. A run that would delete
            more deletes nothing and fails with ``DeleteLimitError`` (a listing
            that ended early would otherwise wipe the files it missed).
        dry_run: Plan only: nothing is written or deleted; the result lists
            what would be transferred, skipped and deleted.
        max_workers: At most this many files in flight (default 8).
        executor: A ``concurrent.futures.Executor`` to run the files on, used
            as given and never shut down (default: a thread pool of
            *max_workers* threads, made and shut down by the call).
        on_progress: Called with the byte count of every chunk of every file
            (not cumulative), from the worker threads.
        on_file: Called once for each file that ends (and each deletion),
            with its :class:`~remote_store_transfer.batch.FileOutcome`,
            from the caller's thread.
        atomic: Write every file atomically (``write_atomic`` / temp file + rename).
        retries: Transient errors (``BackendUnavailable``, ``ConnectionError``,
            ``TimeoutError``, ``IncompleteTransferError``) are retried up to this
            many times per file, with exponential backoff and jitter.
        fail_fast: Start no new file after the first failure.
        max_bandwidth: Bytes per second over the whole tree (``None``: unlimited).
        follow_symlinks: Follow symbolic links in a local source (default: skip them).

    Returns:
        A :class:`~remote_store_transfer.batch.TreeResult`.

    Raises:
        ValueError: A bad option, or a tree copied into itself.
        FileNotFoundError / NotADirectoryError: The local source folder is missing or not a folder.
        KeyboardInterrupt: The tree was interrupted (in the caller, or by a
            plugin or callback); the files in flight ended first.
        Any exception from ``pre_batch`` (a veto) or ``post_batch``.
    """
    options = _tree_options(locals())
    return run_tree(plugin_manager(), "transfer_tree", src_store, src_prefix, dst_store, dst_prefix, options)


_TREE_POSITIONAL = frozenset(
    {"self", "store", "local_dir", "remote_prefix", "src_store", "src_prefix", "dst_store", "dst_prefix"}
)


def _tree_options(arguments: dict[str, Any]) -> TreeOptions:
    """The keyword options of a tree call (its ``locals()``), checked."""
    return TreeOptions(**{k: v for k, v in arguments.items() if k not in _TREE_POSITIONAL})


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

    def upload_tree(
        self,
        store: Store,
        local_dir: str | os.PathLike[str],
        remote_prefix: str,
        *,
        include: Sequence[str] = (),
        exclude: Sequence[str] = (),
        update: Update = "missing",
        checksum: bool = False,
        modify_window: float = 1.0,
        delete: bool = False,
        max_delete: int | str | None = MAX_DELETE,
        dry_run: bool = False,
        max_workers: int = 8,
        executor: Executor | None = None,
        on_progress: Progress | None = None,
        on_file: Callable[[FileOutcome], None] | None = None,
        atomic: bool = False,
        retries: int = 2,
        fail_fast: bool = False,
        max_bandwidth: float | None = None,
        follow_symlinks: bool = False,
    ) -> TreeResult:
        """:func:`remote_store_transfer.upload_tree` with this manager's plugins."""
        options = _tree_options(locals())
        return run_tree(self.plugin_manager, "upload_tree", None, os.fsdecode(local_dir), store, remote_prefix, options)

    def download_tree(
        self,
        store: Store,
        remote_prefix: str,
        local_dir: str | os.PathLike[str],
        *,
        include: Sequence[str] = (),
        exclude: Sequence[str] = (),
        update: Update = "missing",
        checksum: bool = False,
        modify_window: float = 1.0,
        delete: bool = False,
        max_delete: int | str | None = MAX_DELETE,
        dry_run: bool = False,
        max_workers: int = 8,
        executor: Executor | None = None,
        on_progress: Progress | None = None,
        on_file: Callable[[FileOutcome], None] | None = None,
        atomic: bool = False,
        retries: int = 2,
        fail_fast: bool = False,
        max_bandwidth: float | None = None,
        follow_symlinks: bool = False,
    ) -> TreeResult:
        """:func:`remote_store_transfer.download_tree` with this manager's plugins."""
        options = _tree_options(locals())
        local = os.fsdecode(local_dir)
        return run_tree(self.plugin_manager, "download_tree", store, remote_prefix, None, local, options)

    def transfer_tree(
        self,
        src_store: Store,
        src_prefix: str,
        dst_store: Store,
        dst_prefix: str,
        *,
        include: Sequence[str] = (),
        exclude: Sequence[str] = (),
        update: Update = "missing",
        checksum: bool = False,
        modify_window: float = 1.0,
        delete: bool = False,
        max_delete: int | str | None = MAX_DELETE,
        dry_run: bool = False,
        max_workers: int = 8,
        executor: Executor | None = None,
        on_progress: Progress | None = None,
        on_file: Callable[[FileOutcome], None] | None = None,
        atomic: bool = False,
        retries: int = 2,
        fail_fast: bool = False,
        max_bandwidth: float | None = None,
        follow_symlinks: bool = False,
    ) -> TreeResult:
        """:func:`remote_store_transfer.transfer_tree` with this manager's plugins."""
        options = _tree_options(locals())
        return run_tree(self.plugin_manager, "transfer_tree", src_store, src_prefix, dst_store, dst_prefix, options)
