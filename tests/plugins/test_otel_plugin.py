"""The otel plugin with the OpenTelemetry SDK's in-memory exporter and reader; and the package without otel."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

import remote_store_transfer as rst
from remote_store_transfer import TransferDenied, enable_plugin


@pytest.fixture
def otel(manager):
    """(spans exporter, metric reader) wired to an otel plugin enabled in *manager*."""
    # The test environment installs the [otel] extra: a missing SDK is a failure here, never a skip.
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    enable_plugin("otel", manager=manager, tracer_provider=tracer_provider, meter_provider=meter_provider)
    return exporter, reader


def metric_points(reader) -> dict[str, list]:
    points: dict[str, list] = {}
    for resource in reader.get_metrics_data().resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                points.setdefault(metric.name, []).extend(metric.data.data_points)
    return points


@pytest.mark.parametrize("store_fixture", ["memory_store", "local_store"])
def test_a_span_per_transfer_with_attributes_and_metrics(request, manager, otel, make_file, tmp_path, store_fixture):
    store = request.getfixturevalue(store_fixture)
    exporter, reader = otel
    source = make_file("f.bin", 2_500_000)
    manager.upload(store, source, "f.bin")
    manager.download(store, "f.bin", tmp_path / "back.bin")
    manager.transfer(store, "f.bin", store, "g.bin")
    spans = exporter.get_finished_spans()
    assert [s.name for s in spans] == [
        "remote_store_transfer.upload",
        "remote_store_transfer.download",
        "remote_store_transfer.transfer",
    ]
    for span, operation in zip(spans, ["upload", "download", "transfer"], strict=True):
        assert span.attributes["remote_store_transfer.operation"] == operation
        assert span.attributes["remote_store_transfer.bytes"] == 2_500_000
        assert span.attributes["remote_store_transfer.outcome"] == "success"
        assert span.status.is_ok
        assert span.end_time >= span.start_time
    points = metric_points(reader)
    (bytes_point,) = [
        p for p in points["remote_store_transfer.bytes"] if p.attributes["remote_store_transfer.operation"] == "upload"
    ]
    assert bytes_point.value == 2_500_000
    durations = points["remote_store_transfer.duration"]
    assert sum(p.count for p in durations) == 3
    assert {p.attributes["remote_store_transfer.outcome"] for p in durations} == {"success"}


def test_failure_and_denial_spans(manager, otel, memory_store, make_file, tmp_path):
    exporter, reader = otel
    enable_plugin("policy", manager=manager, max_size=1)
    with pytest.raises(TransferDenied):
        manager.upload(memory_store, make_file("f", 10), "f")  # denied before otel's pre_transfer
    enable_plugin("policy", manager=manager)  # no rules
    with pytest.raises(Exception, match="missing"):
        manager.download(memory_store, "missing", tmp_path / "x")
    denied, failed = exporter.get_finished_spans()
    for span, error_type in ((denied, "TransferDenied"), (failed, "NotFound")):
        assert span.attributes["remote_store_transfer.outcome"] == "failure"
        assert span.attributes["error.type"] == error_type
        assert not span.status.is_ok
        assert span.events[0].name == "exception"
    points = metric_points(reader)
    assert {p.attributes["remote_store_transfer.outcome"] for p in points["remote_store_transfer.duration"]} == {
        "failure"
    }


def test_span_is_current_during_the_transfer(manager, otel, memory_store, make_file):
    from opentelemetry import trace

    exporter, _ = otel
    seen = []

    class Child:
        @rst.hookimpl
        def on_chunk(self, context):
            seen.append(trace.get_current_span().get_span_context().span_id)

    manager.register(Child(), name="child")
    manager.upload(memory_store, make_file("f", 1000), "f")
    (span,) = exporter.get_finished_spans()
    assert seen and set(seen) == {span.context.span_id}
    assert not trace.get_current_span().get_span_context().is_valid  # detached afterwards


def test_the_package_works_without_opentelemetry(tmp_path):
    """With opentelemetry not importable: the package and the other plugins work; enabling otel says why not."""
    script = textwrap.dedent(
        f"""
        import sys
        sys.modules["opentelemetry"] = None  # as if the [otel] extra were not installed
        from remote_store import Store
        from remote_store.backends import MemoryBackend
        import remote_store_transfer as rst
        for name in ("audit", "integrity", "policy", "logging"):
            options = {{"path": {str(tmp_path / "audit.jsonl")!r}}} if name == "audit" else {{}}
            rst.enable_plugin(name, **options)
        open({str(tmp_path / "f")!r}, "wb").write(b"data")
        rst.upload(Store(backend=MemoryBackend()), {str(tmp_path / "f")!r}, "f")
        try:
            rst.enable_plugin("otel")
        except rst.ConfigError as exc:
            print("ConfigError:", exc)
        assert "opentelemetry" not in [m for m in sys.modules if sys.modules[m] is not None]
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    assert "ConfigError: plugin configuration: plugins.otel: cannot import the plugin" in result.stdout
    assert 'pip install ".[otel]"' in result.stdout
