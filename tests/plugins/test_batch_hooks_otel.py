"""The otel plugin on tree calls: one parent span per tree, every file span its child (from the worker threads)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from remote_store import Store
from remote_store.backends import MemoryBackend

import remote_store_transfer as rst
from remote_store_transfer import TransferManager

FILES = {
    "a.txt": b"alpha" * 100,
    "b.bin": bytes(range(256)) * 40,
    "sub/c.txt": b"gamma\n" * 300,
    "sub/deep/d.csv": b"1,2,3\n" * 1000,
}
TOTAL = sum(len(data) for data in FILES.values())


class Refused(Exception):
    pass


class Vetoed(Exception):
    pass


class VetoTree:
    @rst.hookimpl
    def pre_batch(self, batch: Any) -> None:
        raise Vetoed("no trees today")


class RefusePath:
    def __init__(self, name: str) -> None:
        self.name = name

    @rst.hookimpl
    def pre_transfer(self, context: Any) -> None:
        if context.destination.path.endswith(self.name):
            raise Refused(f"{self.name} is refused, token=s3cr3t")


def make_tree(root: Path) -> Path:
    for name, data in FILES.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return root


@pytest.fixture
def tracing():
    """(tracer provider, span exporter, otel plugin) on the SDK's in-memory exporter."""
    # The test environment installs the [otel] extra: a missing SDK is a failure here, never a skip.
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from remote_store_transfer.plugin.otel import OtelPlugin

    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    meter_provider = MeterProvider(metric_readers=[InMemoryMetricReader()])
    plugin = OtelPlugin(tracer_provider=tracer_provider, meter_provider=meter_provider)
    return tracer_provider, exporter, plugin


def split(spans, tree_name: str) -> tuple[Any, list]:
    (tree,) = [s for s in spans if s.name == tree_name]
    return tree, [s for s in spans if s is not tree]


def test_file_spans_are_children_of_the_tree_span(tmp_path, memory_store, tracing):
    _, exporter, plugin = tracing
    source = make_tree(tmp_path / "src")
    manager = TransferManager([plugin])

    result = manager.upload_tree(memory_store, source, "in", max_workers=4)

    tree, files = split(exporter.get_finished_spans(), "remote_store_transfer.upload_tree")
    assert len(files) == 4 and {s.name for s in files} == {"remote_store_transfer.upload"}
    for span in files:
        assert span.parent is not None and span.parent.span_id == tree.context.span_id
        assert span.context.trace_id == tree.context.trace_id
        assert span.attributes["remote_store_transfer.batch_id"] == result.batch_id
        assert tree.start_time <= span.start_time and span.end_time <= tree.end_time
    assert tree.parent is None  # no span was current in the caller
    attributes = tree.attributes
    assert attributes["remote_store_transfer.operation"] == "upload_tree"
    assert attributes["remote_store_transfer.id"] == result.batch_id
    assert attributes["remote_store_transfer.source"] == f"local:{source}"
    assert attributes["remote_store_transfer.destination"] == f"{memory_store!r}:in"
    assert attributes["remote_store_transfer.dry_run"] is False
    assert attributes["remote_store_transfer.files.transferred"] == 4
    assert attributes["remote_store_transfer.files.skipped"] == 0
    assert attributes["remote_store_transfer.files.failed"] == 0
    assert attributes["remote_store_transfer.files.deleted"] == 0
    assert attributes["remote_store_transfer.bytes"] == TOTAL
    assert attributes["remote_store_transfer.planned.files"] == 4
    assert attributes["remote_store_transfer.outcome"] == "success"
    assert tree.status.is_ok


def test_a_failed_file_marks_the_tree_span_as_an_error(tmp_path, memory_store, tracing):
    _, exporter, plugin = tracing
    source = make_tree(tmp_path / "src")
    # RefusePath is registered last, so its pre_transfer runs before otel's: the refused file's
    # span is made in post_transfer, and must still be a child of the tree span.
    manager = TransferManager([plugin, RefusePath("/sub/c.txt")])

    result = manager.upload_tree(memory_store, source, "in", retries=0)

    assert list(result.failed) == ["sub/c.txt"]
    tree, files = split(exporter.get_finished_spans(), "remote_store_transfer.upload_tree")
    assert len(files) == 4
    assert all(s.parent.span_id == tree.context.span_id for s in files)
    (failed,) = [s for s in files if not s.status.is_ok]
    assert failed.attributes["error.type"] == "Refused"
    assert failed.attributes["remote_store_transfer.destination"].endswith(":in/sub/c.txt")
    assert not tree.status.is_ok
    assert tree.status.description == "1 file(s) failed; first: sub/c.txt: Refused: /sub/c.txt is refused, token=***"
    assert tree.attributes["remote_store_transfer.files.failed"] == 1
    assert tree.attributes["remote_store_transfer.files.transferred"] == 3
    assert tree.attributes["remote_store_transfer.outcome"] == "failure"


@pytest.mark.parametrize("veto_first", [True, False])
def test_a_vetoed_tree_gets_one_error_span(tmp_path, memory_store, tracing, veto_first):
    from opentelemetry import trace

    _, exporter, plugin = tracing
    source = make_tree(tmp_path / "src")
    # Registered last, a plugin's pre_batch runs first: with veto_first, otel's pre_batch is never reached.
    manager = TransferManager([plugin, VetoTree()] if veto_first else [VetoTree(), plugin])

    with pytest.raises(Vetoed):
        manager.upload_tree(memory_store, source, "in")

    (tree,) = exporter.get_finished_spans()
    assert tree.name == "remote_store_transfer.upload_tree"
    assert tree.attributes["remote_store_transfer.outcome"] == "incomplete"
    assert tree.attributes["remote_store_transfer.files.transferred"] == 0
    assert not tree.status.is_ok
    assert not trace.get_current_span().get_span_context().is_valid  # detached again


def test_the_tree_span_is_a_child_of_the_callers_span(tmp_path, memory_store, tracing):
    tracer_provider, exporter, plugin = tracing
    source = make_tree(tmp_path / "src")
    other = Store(backend=MemoryBackend())
    manager = TransferManager([plugin])
    manager.upload_tree(memory_store, source, "in")
    exporter.clear()

    with tracer_provider.get_tracer("app").start_as_current_span("nightly-copy") as app:
        manager.transfer_tree(memory_store, "in", other, "copy")

    spans = exporter.get_finished_spans()
    (app_span,) = [s for s in spans if s.name == "nightly-copy"]
    tree, files = split([s for s in spans if s is not app_span], "remote_store_transfer.transfer_tree")
    assert tree.parent.span_id == app.get_span_context().span_id
    assert len(files) == 4 and {s.name for s in files} == {"remote_store_transfer.transfer"}
    assert all(s.parent.span_id == tree.context.span_id for s in files)
    assert tree.attributes["remote_store_transfer.files.transferred"] == 4


def test_each_tree_gets_its_own_span_and_the_caller_context_is_restored(tmp_path, memory_store, tracing):
    from opentelemetry import trace

    _, exporter, plugin = tracing
    source = make_tree(tmp_path / "src")
    manager = TransferManager([plugin])

    first = manager.upload_tree(memory_store, source, "one")
    second = manager.upload_tree(memory_store, source, "two", dry_run=True)
    manager.upload(memory_store, source / "a.txt", "single.txt")

    assert not trace.get_current_span().get_span_context().is_valid  # nothing left attached
    spans = exporter.get_finished_spans()
    trees = [s for s in spans if s.name == "remote_store_transfer.upload_tree"]
    assert [s.attributes["remote_store_transfer.id"] for s in trees] == [first.batch_id, second.batch_id]
    assert trees[1].attributes["remote_store_transfer.dry_run"] is True
    assert trees[1].attributes["remote_store_transfer.planned.files"] == 4
    files = [s for s in spans if s.name == "remote_store_transfer.upload"]
    assert len(files) == 5  # 4 in the first tree, none in the dry run, 1 single upload
    assert all(s.parent.span_id == trees[0].context.span_id for s in files[:4])
    (single,) = [s for s in files if "remote_store_transfer.batch_id" not in s.attributes]
    assert single.parent is None


def test_each_deletion_gets_a_span_under_the_tree_span(tmp_path, memory_store, tracing):
    from remote_store_transfer.plugin.policy import PolicyPlugin

    _, exporter, plugin = tracing
    source = make_tree(tmp_path / "src")
    memory_store.write("in/stale.txt", b"stale")
    memory_store.write("in/guarded.txt", b"denied")
    manager = TransferManager([plugin, PolicyPlugin(upload={"deny": ["in/guarded*"]})])

    result = manager.upload_tree(memory_store, source, "in", delete=True, max_delete=None)

    assert result.deleted == ["stale.txt"] and list(result.failed) == ["guarded.txt"]
    tree, files = split(exporter.get_finished_spans(), "remote_store_transfer.upload_tree")
    deletions = {s.attributes["remote_store_transfer.target"]: s for s in files if s.name.endswith(".delete")}
    assert sorted(deletions) == [f"{memory_store!r}:in/guarded.txt", f"{memory_store!r}:in/stale.txt"]
    for span in deletions.values():
        assert span.parent is not None and span.parent.span_id == tree.context.span_id
        assert span.attributes["remote_store_transfer.batch_id"] == result.batch_id
    done, denied = deletions[f"{memory_store!r}:in/stale.txt"], deletions[f"{memory_store!r}:in/guarded.txt"]
    assert done.attributes["remote_store_transfer.outcome"] == "success" and done.status.is_ok
    assert denied.attributes["remote_store_transfer.outcome"] == "failure" and not denied.status.is_ok
    assert "TransferDenied" in denied.status.description
