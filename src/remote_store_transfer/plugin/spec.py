"""Hook specifications: what a plugin can implement, when it is called, what raising means.

Every hook receives the call's :class:`~remote_store_transfer.TransferContext`
as ``context``. An implementation may accept any subset of a hook's
arguments (pluggy passes only the names it asks for). Hooks return nothing;
their return values are ignored.

Order of calls for one ``upload`` / ``download`` / ``transfer``::

    local checks (FileNotFoundError / FileExistsError): no hook is called
    pre_transfer(context)                       # once
    on_chunk(context, nbytes, data)             # once per non-empty chunk, in order
    post_transfer(context, error)               # once, whatever happened

Order of calls for one ``upload_tree`` / ``download_tree`` / ``transfer_tree``::

    pre_batch(batch)                            # once, in the caller, before any file moves
    per file: pre_transfer, on_chunk..., post_transfer   # in the worker threads; context.batch is batch
    with delete=True, per deleted file: pre_delete, post_delete   # likewise, after every file moved
    post_batch(batch, result)                   # once, in the caller, whatever happened

A deletion has its own pair of hooks, with a
:class:`~remote_store_transfer.context.DeleteContext`: a plugin written for
transfers is never handed an operation it does not know. A plugin whose rules
or records must cover deletions implements ``pre_delete`` / ``post_delete``.

Implementations run in pluggy's order: last registered first, with
``tryfirst`` / ``trylast`` respected.

Who implements what: the built-in ``progress`` plugin implements
``on_chunk`` (it forwards ``nbytes`` to the caller's ``on_progress``);
anyone may implement any hook.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from remote_store_transfer.plugin import hookspec

if TYPE_CHECKING:
    from remote_store_transfer.batch import Batch, TreeResult
    from remote_store_transfer.context import DeleteContext, TransferContext

__all__ = ["on_chunk", "post_batch", "post_delete", "post_transfer", "pre_batch", "pre_delete", "pre_transfer"]


@hookspec
def pre_transfer(context: TransferContext) -> None:
    """Called once per call, after the local checks and before any data moves.

    Nothing has been read from the source or written anywhere yet; for an
    upload the local file is open (``context.size`` is known).

    Use it to check policy, start a span or a timer, or record the intent.
    It is the one place a plugin may set ``context.size`` (when it is
    ``None``) to the size the source store reports: the core then fails the
    call with :class:`~remote_store_transfer.IncompleteTransferError` if the
    source ends before that many bytes (``integrity`` and ``policy`` do this).

    Args:
        context: The call's context. ``bytes_transferred`` is 0.

    Raises:
        Any exception: the call is aborted. Nothing is read from the source
        store nor written anywhere; ``post_transfer`` is still called once
        with that exception as ``error``; the exception then propagates to
        the caller unchanged (same object, same type). Implementations after
        the raising one are not called.
    """


@hookspec
def on_chunk(context: TransferContext, nbytes: int, data: memoryview | bytes) -> None:
    """Called once per non-empty chunk of data, in order, as the bytes move.

    For ``upload`` and ``transfer`` a chunk is what the destination store got
    from one ``read`` of the source stream; for ``download`` it is one
    (at most 1 MiB) read of the remote stream, before it is written to the
    local file.

    Use it to hash, count, report progress or enforce a byte budget. Keep it
    fast: it is on the hot path.

    Args:
        context: The call's context; ``bytes_transferred`` already includes
            this chunk.
        nbytes: ``len(data)``; never 0.
        data: The chunk, a read-only bytes-like object (``bytes`` or a
            read-only ``memoryview``). It stays unchanged until the next
            ``on_chunk`` call of the same transfer has returned (for the last
            chunk, until ``post_transfer``); after that the buffer behind a
            ``memoryview`` may be reused, so copy it (``bytes(data)``) to keep it.

    Raises:
        Any exception: the transfer is aborted; every stream is closed;
        ``post_transfer`` is called once with that exception; then it
        propagates to the caller. Implementations after the raising one are
        not called for this chunk.
    """


@hookspec
def post_transfer(context: TransferContext, error: BaseException | None) -> None:
    """Called exactly once for every call whose ``pre_transfer`` began, whatever happened.

    It runs after every stream was closed. Use it to record the outcome
    (audit), verify the result (integrity), end a span, or clean up state.

    Every implementation is called, each with the error current at its turn:

    * ``error`` is ``None`` when the call has succeeded so far, else the
      exception that ends the call (``KeyboardInterrupt`` included).
    * ``context.bytes_transferred`` is final.

    Args:
        context: The call's context.
        error: ``None`` on success, else the exception the caller will get.

    Raises:
        On a successful call: the exception turns the call into a failure
        (this is how a verifier rejects a transfer). Later implementations
        receive it as ``error``, and the caller gets it.

        On a failed call: the original error still reaches the caller. The
        plugin's exception is logged (logger ``remote_store_transfer``) and
        recorded as a note on the original error; it is not lost.

    Note:
        Wrapper implementations (``wrapper=True`` / ``hookwrapper=True``)
        are not supported for this hook: each implementation is called on its
        own so that one failing plugin never keeps another from running.
    """


@hookspec
def pre_batch(batch: Batch) -> None:
    """Called once per tree call (``upload_tree``, ``download_tree``, ``transfer_tree``), before any file moves.

    It runs in the caller's thread, after the arguments were checked and
    before the source is listed, except in a dry run, where the whole plan is
    made first: then ``batch.plan`` holds it, and ``batch.planned_files`` /
    ``batch.planned_bytes`` are set.

    Use it to approve or refuse the whole tree (policy), open a parent span,
    or write a start line. Each file of the tree then gets its own
    ``pre_transfer`` / ``on_chunk`` / ``post_transfer`` calls, with
    ``context.batch`` set to this object.

    Args:
        batch: The tree call (:class:`~remote_store_transfer.batch.Batch`).

    Raises:
        Any exception: the tree is vetoed. No file is read, written or
        deleted; ``post_batch`` is still called once (with a result that holds
        nothing); then the exception propagates to the caller unchanged.
        Implementations after the raising one are not called.
    """


@hookspec
def post_batch(batch: Batch, result: TreeResult) -> None:
    """Called exactly once per tree call whose ``pre_batch`` began, whatever happened.

    It runs in the caller's thread after every file has ended (transferred,
    skipped or failed) and after the deletions: also when ``pre_batch`` vetoed
    the tree, when ``fail_fast`` stopped it, and when it was interrupted
    (``KeyboardInterrupt``). Use it to write a summary record (audit), an end
    line (logging), or to end a parent span (otel).

    Args:
        batch: The tree call; ``planned_files`` is set when the listing was read to its end.
        result: The :class:`~remote_store_transfer.batch.TreeResult` the
            caller will get: what was transferred, skipped, failed and deleted.

    Raises:
        Every implementation is called even if one raises. An exception from
        an implementation reaches the caller: the tree call raises it instead
        of returning the result (an unrecorded tree must not look like a clean
        one), with a note naming the plugin. When the tree itself is raising
        (a veto or ``KeyboardInterrupt``), that error reaches the caller and
        the plugin's exception is logged and added to it as a note.

    Note:
        Wrapper implementations (``wrapper=True`` / ``hookwrapper=True``)
        are refused at registration, as for ``post_transfer``.
    """


@hookspec
def pre_delete(context: DeleteContext) -> None:
    """Called once per file a tree deletes (``delete=True``), before it is deleted.

    It runs where the deletion runs: in the tree's worker threads, or in the
    worker process (``ProcessPoolExecutor``, Dask) that deletes the file.
    Deletions come after every file of the tree moved, and only after a clean
    run; a dry run deletes nothing and calls neither ``pre_delete`` nor
    ``post_delete``.

    Use it to refuse a deletion (policy: ``read_only``, path rules), or to
    start a span or record the intent.

    Args:
        context: The deletion (:class:`~remote_store_transfer.context.DeleteContext`):
            ``batch``, ``store``, ``path``, ``location``, ``size``.

    Raises:
        Any exception: the file is not deleted. ``post_delete`` is still
        called once with that exception as ``error``; the file's outcome is
        ``"failed"`` with that exception (in ``TreeResult.failed``); the tree
        goes on with its other deletions. Implementations after the raising
        one are not called.
    """


@hookspec
def post_delete(context: DeleteContext, error: BaseException | None) -> None:
    """Called exactly once for every deletion whose ``pre_delete`` began, whatever happened.

    It runs after the file was deleted, or was not. Use it to record the
    outcome (audit), end a span, or clean up state.

    Every implementation is called, each with the error current at its turn:
    ``error`` is ``None`` when the file was deleted (and no earlier
    ``post_delete`` raised), else the exception that fails the deletion.

    Args:
        context: The deletion.
        error: ``None`` on success, else the exception of the file's outcome.

    Raises:
        On a successful deletion: the exception fails the file's outcome
        (``"failed"`` with that exception, with a note that the file was
        deleted: a deletion that could not be recorded must not look clean).
        Later implementations receive it as ``error``.

        On a failed deletion: the outcome keeps its error. The plugin's
        exception is logged (logger ``remote_store_transfer``) and recorded
        as a note on that error; it is not lost.

    Note:
        Wrapper implementations (``wrapper=True`` / ``hookwrapper=True``)
        are refused at registration, as for ``post_transfer``.
    """
