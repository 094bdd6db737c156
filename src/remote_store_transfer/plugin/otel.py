"""The built-in ``otel`` plugin: an OpenTelemetry span per transfer, a byte counter and a duration histogram.

Needs the optional extra: ``pip install ".[otel]"`` in a clone of the repository (the package is not on PyPI yet).
This module imports ``opentelemetry`` at the top; nothing else in the
package imports it, so the package works without the extra (enabling
``otel`` without it raises :class:`~remote_store_transfer.ConfigError`).

* Span ``remote_store_transfer.<operation>`` (kind INTERNAL), started in
  ``pre_transfer`` and made current for the duration of the call, so spans
  of instrumented clients (botocore, requests...) nest under it; ended in
  ``post_transfer`` with the outcome. A call denied before ``pre_transfer``
  reached this plugin still gets a span (from the call's start time).
* A tree call (``upload_tree``, ``download_tree``, ``transfer_tree``) gets a
  parent span ``remote_store_transfer.<operation>`` (``...upload_tree``),
  started in ``pre_batch`` (current in the caller's thread until
  ``post_batch``, so the listing's client spans nest under it) and ended in
  ``post_batch`` with the counts; every file span of the tree is its child,
  though the files run in worker threads.
* Each file a tree's ``delete=True`` deletes gets a span
  ``remote_store_transfer.delete``, a child of the tree's span, made in
  ``post_delete`` (from the deletion's start time) with its outcome.
* Counter ``remote_store_transfer.bytes`` (unit ``By``) and histogram
  ``remote_store_transfer.duration`` (unit ``s``), both with the attributes
  ``remote_store_transfer.operation`` and ``remote_store_transfer.outcome``.

By default the global tracer and meter providers are used (whatever the
application or the OpenTelemetry auto-instrumentation set up).
"""

from __future__ import annotations

import traceback
from typing import TYPE_CHECKING, Any

from opentelemetry import context as otel_context
from opentelemetry import metrics, trace

from remote_store_transfer.plugin import hookimpl
from remote_store_transfer.plugin._redact import Redactor
from remote_store_transfer.plugin.integrity import digest_of
from remote_store_transfer.version import __version__

if TYPE_CHECKING:
    from collections.abc import Iterable

    from remote_store import Secret

    from remote_store_transfer.batch import Batch, TreeResult
    from remote_store_transfer.context import DeleteContext, TransferContext

__all__ = ["BYTES_METRIC", "DURATION_METRIC", "NAME", "OtelPlugin"]

NAME = "otel"
SCOPE = "remote_store_transfer"
BYTES_METRIC = "remote_store_transfer.bytes"
DURATION_METRIC = "remote_store_transfer.duration"
_SPAN_KEY = "otel.span"
_TOKEN_KEY = "otel.token"


class OtelPlugin:
    """Trace and measure every transfer with OpenTelemetry.

    Args:
        tracer_provider: The ``TracerProvider`` to use (default: the global one).
        meter_provider: The ``MeterProvider`` to use (default: the global one).
        redact: Secret values to mask in exception messages (credential-shaped
            values are masked anyway).
    """

    def __init__(
        self, *, tracer_provider: Any = None, meter_provider: Any = None, redact: Iterable[Secret | str] = ()
    ) -> None:
        self._redact = Redactor(redact)
        self.tracer = trace.get_tracer(SCOPE, __version__, tracer_provider=tracer_provider)
        meter = metrics.get_meter(SCOPE, __version__, meter_provider=meter_provider)
        self.bytes_counter = meter.create_counter(
            BYTES_METRIC, unit="By", description="Bytes moved by remote-store-transfer"
        )
        self.duration = meter.create_histogram(
            DURATION_METRIC, unit="s", description="Duration of remote-store-transfer calls"
        )
        # Keys in Batch.state, per instance (two plugins must not share a span).
        self._batch_key = f"otel.batch_span.{id(self):x}"
        self._batch_token_key = f"otel.batch_token.{id(self):x}"

    def __repr__(self) -> str:
        return "OtelPlugin()"

    def _attributes(self, context: TransferContext) -> dict[str, Any]:
        attributes: dict[str, Any] = {
            "remote_store_transfer.operation": context.operation,
            "remote_store_transfer.id": context.id,
            "remote_store_transfer.source": self._redact(context.source.describe()),
            "remote_store_transfer.destination": self._redact(context.destination.describe()),
        }
        if context.size is not None:
            attributes["remote_store_transfer.size"] = context.size
        if context.batch is not None:
            attributes["remote_store_transfer.batch_id"] = context.batch.id
        return attributes

    def _file_span(self, context: TransferContext) -> Any:
        """Start the span of one file; a child of its tree's span when it belongs to a tree."""
        parent = None
        if context.batch is not None:
            batch_span = context.batch.state.get(self._batch_key)
            if batch_span is not None:
                # Explicitly: this runs in a worker thread, whose current context need not be the caller's.
                parent = trace.set_span_in_context(batch_span)
        return self.tracer.start_span(
            f"remote_store_transfer.{context.operation}",
            context=parent,
            attributes=self._attributes(context),
            start_time=int(context.started * 1e9),
        )

    @hookimpl
    def pre_transfer(self, context: TransferContext) -> None:
        span = self._file_span(context)
        context.state[_SPAN_KEY] = span
        context.state[_TOKEN_KEY] = otel_context.attach(trace.set_span_in_context(span))

    @hookimpl(trylast=True)
    def post_transfer(self, context: TransferContext, error: BaseException | None) -> None:
        token = context.state.pop(_TOKEN_KEY, None)
        if token is not None:
            otel_context.detach(token)
        span = context.state.pop(_SPAN_KEY, None)
        if span is None:  # pre_transfer did not reach this plugin (denied by policy, for example)
            span = self._file_span(context)
        outcome = "success" if error is None else "failure"
        span.set_attribute("remote_store_transfer.bytes", context.bytes_transferred)
        span.set_attribute("remote_store_transfer.outcome", outcome)
        digest = digest_of(context)
        if digest is not None:
            span.set_attribute("remote_store_transfer.digest", f"{digest.algorithm}:{digest.hexdigest}")
        if error is None:
            span.set_status(trace.Status(trace.StatusCode.OK))
        else:
            redact = self._redact
            message = redact(str(error))
            span.set_attribute("error.type", type(error).__qualname__)
            span.record_exception(
                error,
                attributes={
                    "exception.message": message,
                    "exception.stacktrace": redact("".join(traceback.format_exception(error))),
                },
            )
            span.set_status(trace.Status(trace.StatusCode.ERROR, f"{type(error).__name__}: {message}"))
        span.end()
        labels = {"remote_store_transfer.operation": context.operation, "remote_store_transfer.outcome": outcome}
        self.bytes_counter.add(context.bytes_transferred, labels)
        self.duration.record(context.elapsed(), labels)

    @hookimpl(trylast=True)
    def post_delete(self, context: DeleteContext, error: BaseException | None) -> None:
        batch_span = context.batch.state.get(self._batch_key) if context.batch is not None else None
        attributes: dict[str, Any] = {
            "remote_store_transfer.operation": "delete",
            "remote_store_transfer.id": context.id,
            "remote_store_transfer.target": self._redact(context.target.describe()),
            "remote_store_transfer.outcome": "success" if error is None else "failure",
        }
        if context.size is not None:
            attributes["remote_store_transfer.size"] = context.size
        if context.batch is not None:
            attributes["remote_store_transfer.batch_id"] = context.batch.id
        span = self.tracer.start_span(
            "remote_store_transfer.delete",
            context=None if batch_span is None else trace.set_span_in_context(batch_span),
            attributes=attributes,
            start_time=int(context.started * 1e9),
        )
        if error is None:
            span.set_status(trace.Status(trace.StatusCode.OK))
        else:
            message = self._redact(str(error))
            span.set_attribute("error.type", type(error).__qualname__)
            span.set_status(trace.Status(trace.StatusCode.ERROR, f"{type(error).__name__}: {message}"))
        span.end()

    def _batch_attributes(self, batch: Batch) -> dict[str, Any]:
        attributes: dict[str, Any] = {
            "remote_store_transfer.operation": batch.operation,
            "remote_store_transfer.id": batch.id,
            "remote_store_transfer.source": self._redact(batch.source.describe()),
            "remote_store_transfer.destination": self._redact(batch.destination.describe()),
            "remote_store_transfer.dry_run": batch.dry_run,
        }
        if batch.planned_files is not None:
            attributes["remote_store_transfer.planned.files"] = batch.planned_files
        if batch.planned_bytes is not None:
            attributes["remote_store_transfer.planned.bytes"] = batch.planned_bytes
        return attributes

    def _batch_span(self, batch: Batch) -> Any:
        return self.tracer.start_span(
            f"remote_store_transfer.{batch.operation}",
            attributes=self._batch_attributes(batch),
            start_time=int(batch.started * 1e9),
        )

    @hookimpl
    def pre_batch(self, batch: Batch) -> None:
        span = self._batch_span(batch)  # a child of the caller's current span, if any
        batch.state[self._batch_key] = span
        batch.state[self._batch_token_key] = otel_context.attach(trace.set_span_in_context(span))

    @hookimpl(trylast=True)
    def post_batch(self, batch: Batch, result: TreeResult) -> None:
        token = batch.state.pop(self._batch_token_key, None)
        if token is not None:
            otel_context.detach(token)
        span = batch.state.pop(self._batch_key, None)
        if span is None:  # pre_batch did not reach this plugin (another plugin vetoed the tree first)
            span = self._batch_span(batch)
        if batch.planned_files is not None:
            span.set_attribute("remote_store_transfer.planned.files", batch.planned_files)
        if batch.planned_bytes is not None:
            span.set_attribute("remote_store_transfer.planned.bytes", batch.planned_bytes)
        span.set_attribute("remote_store_transfer.files.transferred", len(result.transferred))
        span.set_attribute("remote_store_transfer.files.skipped", len(result.skipped))
        span.set_attribute("remote_store_transfer.files.failed", len(result.failed))
        span.set_attribute("remote_store_transfer.files.deleted", len(result.deleted))
        span.set_attribute("remote_store_transfer.bytes", result.bytes_transferred)
        outcome = batch.outcome(result)
        span.set_attribute("remote_store_transfer.outcome", outcome)
        if outcome == "success":
            span.set_status(trace.Status(trace.StatusCode.OK))
        elif outcome == "incomplete":
            message = "the tree stopped before its source listing was read to the end"
            span.set_status(trace.Status(trace.StatusCode.ERROR, message))
        else:
            path, error = next(iter(result.failed.items()))
            message = self._redact(
                f"{len(result.failed)} file(s) failed; first: {path}: {type(error).__name__}: {error}"
            )
            span.set_status(trace.Status(trace.StatusCode.ERROR, message))
        span.end()
