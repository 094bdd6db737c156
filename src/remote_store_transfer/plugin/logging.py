"""The built-in ``logging`` plugin: one structured stdlib log record at the start and at the end of each transfer.

Records go to the ``remote_store_transfer`` logger (configurable) with the
fields in ``extra``, so a JSON formatter or a log shipper gets them as
attributes of the ``LogRecord``:

* start (``pre_transfer``, level INFO): ``transfer_id``, ``operation``,
  ``source``, ``destination``, ``size``, ``overwrite``, ``atomic``,
  ``event="transfer.start"``.
* end (``post_transfer``, INFO on success, ERROR on failure): the same plus
  ``outcome`` (``"success"`` / ``"failure"``), ``bytes``, ``duration_s``,
  ``error_type``, ``error_message``, ``digest`` (when the ``integrity``
  plugin ran), ``event="transfer.end"``.

A tree call (``upload_tree``, ``download_tree``, ``transfer_tree``) also
gets one record at its start and one at its end, around its files' records:

* start (``pre_batch``, level INFO): ``batch_id``, ``operation``
  (``"upload_tree"``...), ``source``, ``destination`` (the roots),
  ``dry_run``, ``planned_files``, ``planned_bytes`` (known at the start only
  in a dry run, else ``None``), ``event="batch.start"``.
* end (``post_batch``, INFO on success, else ERROR): the same plus
  ``outcome`` (``"success"``, ``"failure"`` when a file failed,
  ``"incomplete"`` when the tree stopped before its listing was read
  through), ``ok``, ``transferred``, ``skipped``, ``failed``, ``deleted``
  (counts), ``bytes``, ``duration_s``, ``event="batch.end"``.

Each file a tree's ``delete=True`` deletes gets one record when it ends
(``post_delete``, INFO when deleted, ERROR when refused or failed):
``transfer_id``, ``operation="delete"``, ``target``, ``size``, ``batch_id``,
``outcome``, ``duration_s``, ``error_type``, ``error_message``,
``event="delete.end"``.

Per-chunk records (DEBUG) only with ``chunks=True``: observing chunks puts a
wrapper on the hot path of every transfer, so it is off unless asked for.
Text is passed through the credential redactor, and remote-store's
``SecretRedactionFilter`` is attached to the logger.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from remote_store import Secret, SecretRedactionFilter

from remote_store_transfer.plugin import hookimpl
from remote_store_transfer.plugin._redact import Redactor
from remote_store_transfer.plugin.integrity import digest_of

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from remote_store_transfer.batch import Batch, TreeResult
    from remote_store_transfer.context import DeleteContext, TransferContext

__all__ = ["NAME", "LoggingPlugin"]

NAME = "logging"
_ENDED = {"success": "succeeded", "failure": "failed", "incomplete": "stopped"}
DEFAULT_LOGGER = "remote_store_transfer"


def _level(value: int | str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise TypeError(f"level must be a level name or number, got {value!r}")
    if isinstance(value, int):
        return value
    number = logging.getLevelName(value.upper())
    if not isinstance(number, int):
        raise ValueError(f"unknown log level {value!r}; use DEBUG, INFO, WARNING, ERROR or CRITICAL")
    return number


class LoggingPlugin:
    """Log the start and the end of every transfer, and of every tree call, through stdlib ``logging``.

    Args:
        logger: Logger name (or a ``logging.Logger``); default ``"remote_store_transfer"``.
        level: Level of the start records and of the end record of a
            successful transfer or tree (default INFO). Failures (a tree
            with a failed file) are logged at ERROR.
        chunks: Also log every chunk at DEBUG (costly: see the module docs).
        redact: Extra secret values to mask in the records.
    """

    def __init__(
        self,
        *,
        logger: str | logging.Logger = DEFAULT_LOGGER,
        level: int | str = logging.INFO,
        chunks: bool = False,
        redact: Iterable[Secret | str] = (),
    ) -> None:
        if not isinstance(logger, str | logging.Logger):
            raise TypeError(f"logger must be a logger name, got {logger!r}")
        self.logger = logging.getLogger(logger) if isinstance(logger, str) else logger
        self.level = _level(level)
        self.chunks = bool(chunks)
        self._redact = Redactor(redact)
        if not any(isinstance(f, SecretRedactionFilter) for f in self.logger.filters):
            self.logger.addFilter(SecretRedactionFilter())
        if self.chunks:
            # An instance attribute, not a method: without chunks=True the plugin implements no
            # on_chunk, so it does not make the core wrap every stream to observe chunks.
            self.on_chunk: Callable[[TransferContext, int], None] = hookimpl(self._chunk_hook())

    def _chunk_hook(self) -> Callable[[TransferContext, int], None]:
        def on_chunk(context: TransferContext, nbytes: int) -> None:
            self._log_chunk(context, nbytes)

        return on_chunk

    def __repr__(self) -> str:
        return f"LoggingPlugin(logger={self.logger.name!r}, level={logging.getLevelName(self.level)!r})"

    def _fields(self, context: TransferContext) -> dict[str, Any]:
        redact = self._redact
        return {
            "transfer_id": context.id,
            "operation": context.operation,
            "source": redact(context.source.describe()),
            "destination": redact(context.destination.describe()),
            "size": context.size,
            "overwrite": context.overwrite,
            "atomic": context.atomic,
        }

    @hookimpl
    def pre_transfer(self, context: TransferContext) -> None:
        if self.logger.isEnabledFor(self.level):
            fields = self._fields(context)
            self.logger.log(
                self.level,
                "transfer %s started: %s %s -> %s",
                fields["transfer_id"],
                fields["operation"],
                fields["source"],
                fields["destination"],
                extra={"event": "transfer.start", **fields},
            )

    def _log_chunk(self, context: TransferContext, nbytes: int) -> None:
        if self.logger.isEnabledFor(logging.DEBUG):
            self.logger.debug(
                "transfer %s chunk: %d bytes (%d so far)",
                context.id,
                nbytes,
                context.bytes_transferred,
                extra={
                    "event": "transfer.chunk",
                    "transfer_id": context.id,
                    "nbytes": nbytes,
                    "bytes": context.bytes_transferred,
                },
            )

    @hookimpl(trylast=True)
    def post_transfer(self, context: TransferContext, error: BaseException | None) -> None:
        level = self.level if error is None else logging.ERROR
        if not self.logger.isEnabledFor(level):
            return
        fields = self._fields(context)
        digest = digest_of(context)
        fields.update(
            event="transfer.end",
            outcome="success" if error is None else "failure",
            bytes=context.bytes_transferred,
            duration_s=round(context.elapsed(), 6),
            error_type=None if error is None else type(error).__name__,
            error_message=None if error is None else self._redact(str(error)),
            digest=None if digest is None else f"{digest.algorithm}:{digest.hexdigest}",
        )
        args: tuple[object, ...] = ()
        if error is None:
            message = "transfer %s succeeded: %s %s -> %s, %d bytes in %.3fs"
        else:
            message = "transfer %s failed: %s %s -> %s, %d bytes in %.3fs: %s: %s"
            args = (fields["error_type"], fields["error_message"])
        self.logger.log(
            level,
            message,
            fields["transfer_id"],
            fields["operation"],
            fields["source"],
            fields["destination"],
            fields["bytes"],
            fields["duration_s"],
            *args,
            extra=fields,
        )

    @hookimpl(trylast=True)
    def post_delete(self, context: DeleteContext, error: BaseException | None) -> None:
        level = self.level if error is None else logging.ERROR
        if not self.logger.isEnabledFor(level):
            return
        fields: dict[str, Any] = {
            "event": "delete.end",
            "transfer_id": context.id,
            "operation": "delete",
            "target": self._redact(context.target.describe()),
            "size": context.size,
            "batch_id": None if context.batch is None else context.batch.id,
            "outcome": "success" if error is None else "failure",
            "duration_s": round(context.elapsed(), 6),
            "error_type": None if error is None else type(error).__name__,
            "error_message": None if error is None else self._redact(str(error)),
        }
        if error is None:
            self.logger.log(level, "deletion %s succeeded: %s", context.id, fields["target"], extra=fields)
        else:
            self.logger.log(
                level,
                "deletion %s failed: %s: %s: %s",
                context.id,
                fields["target"],
                fields["error_type"],
                fields["error_message"],
                extra=fields,
            )

    def _batch_fields(self, batch: Batch) -> dict[str, Any]:
        redact = self._redact
        return {
            "batch_id": batch.id,
            "operation": batch.operation,
            "source": redact(batch.source.describe()),
            "destination": redact(batch.destination.describe()),
            "dry_run": batch.dry_run,
            "planned_files": batch.planned_files,
            "planned_bytes": batch.planned_bytes,
        }

    @hookimpl
    def pre_batch(self, batch: Batch) -> None:
        if not self.logger.isEnabledFor(self.level):
            return
        fields = self._batch_fields(batch)
        message = "tree %s started: %s %s -> %s"
        args: tuple[object, ...] = ()
        if fields["planned_files"] is not None:
            message += ", %d files (%d bytes) planned"
            args = (fields["planned_files"], fields["planned_bytes"] or 0)
        if batch.dry_run:
            message += " (dry run)"
        self.logger.log(
            self.level,
            message,
            fields["batch_id"],
            fields["operation"],
            fields["source"],
            fields["destination"],
            *args,
            extra={"event": "batch.start", **fields},
        )

    @hookimpl(trylast=True)
    def post_batch(self, batch: Batch, result: TreeResult) -> None:
        outcome = batch.outcome(result)
        level = self.level if outcome == "success" else logging.ERROR
        if not self.logger.isEnabledFor(level):
            return
        fields = self._batch_fields(batch)
        fields.update(
            event="batch.end",
            outcome=outcome,
            ok=outcome == "success",
            transferred=len(result.transferred),
            skipped=len(result.skipped),
            failed=len(result.failed),
            deleted=len(result.deleted),
            bytes=result.bytes_transferred,
            duration_s=round(batch.elapsed(), 6),
        )
        self.logger.log(
            level,
            "tree %s %s: %s %s -> %s: %s in %.3fs",
            fields["batch_id"],
            _ENDED[outcome],
            fields["operation"],
            fields["source"],
            fields["destination"],
            result.summary(),
            fields["duration_s"],
            extra=fields,
        )
