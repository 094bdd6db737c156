"""The logging plugin: one structured record at start and end, chunk records only when asked, no secrets."""

from __future__ import annotations

import logging

import pytest
from remote_store import Secret, SecretRedactionFilter
from remote_store.backends import MemoryBackend

from remote_store_transfer import enable_plugin
from remote_store_transfer.plugin.logging import LoggingPlugin

LOGGER = "remote_store_transfer"


def ours(caplog, event: str | None = None) -> list[logging.LogRecord]:
    return [
        r for r in caplog.records if r.name == LOGGER and hasattr(r, "event") and (event is None or r.event == event)
    ]


@pytest.mark.parametrize("store_fixture", ["memory_store", "local_store"])
def test_start_and_end_records_with_extra_fields(request, manager, make_file, tmp_path, caplog, store_fixture):
    store = request.getfixturevalue(store_fixture)
    enable_plugin("logging", manager=manager)
    enable_plugin("integrity", manager=manager)
    source = make_file("f.bin", 3_000_000)
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    manager.upload(store, source, "f.bin")
    manager.download(store, "f.bin", tmp_path / "back.bin")
    manager.transfer(store, "f.bin", store, "g.bin")
    records = ours(caplog)
    assert [r.event for r in records] == ["transfer.start", "transfer.end"] * 3  # no per-chunk records
    start, end = records[0], records[1]
    assert start.levelno == end.levelno == logging.INFO
    assert start.transfer_id == end.transfer_id
    assert (start.operation, start.size, start.overwrite, start.atomic) == ("upload", 3_000_000, False, False)
    assert start.source == f"local:{source}" and start.destination == f"{store!r}:f.bin"
    assert (end.outcome, end.bytes, end.error_type, end.error_message) == ("success", 3_000_000, None, None)
    assert end.duration_s >= 0
    assert end.digest.startswith("sha256:")
    assert "succeeded" in end.getMessage() and "3000000 bytes" in end.getMessage()


def test_failure_is_logged_at_error_with_the_error(manager, memory_store, tmp_path, caplog):
    enable_plugin("logging", manager=manager)
    caplog.set_level(logging.INFO, logger=LOGGER)
    with pytest.raises(Exception, match="missing"):
        manager.download(memory_store, "missing", tmp_path / "x")
    end = ours(caplog, "transfer.end")[0]
    assert end.levelno == logging.ERROR
    assert (end.outcome, end.error_type) == ("failure", "NotFound")
    assert "missing" in end.error_message and "failed" in end.getMessage()


def test_chunk_records_only_when_asked_and_at_debug(manager, memory_store, make_file, caplog):
    plugin = enable_plugin("logging", manager=manager)
    assert not manager.plugin_manager.dispatch.chunk_observers  # chunks not observed: no hot-path cost
    enable_plugin("logging", manager=manager, chunks=True)
    assert manager.plugin_manager.dispatch.chunk_observers
    source = make_file("f.bin", 600_000)
    caplog.set_level(logging.INFO, logger=LOGGER)
    manager.upload(memory_store, source, "a")
    assert not ours(caplog, "transfer.chunk")  # INFO: no chunk records even with chunks=True
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    manager.upload(memory_store, source, "b")
    chunks = ours(caplog, "transfer.chunk")
    assert chunks and sum(r.nbytes for r in chunks) == 600_000
    assert chunks[-1].bytes == 600_000
    assert isinstance(plugin, LoggingPlugin)


def test_level_and_logger_options(manager, memory_store, make_file, caplog):
    enable_plugin("logging", manager=manager, logger="audit.transfers", level="WARNING")
    caplog.set_level(logging.WARNING, logger="audit.transfers")
    manager.upload(memory_store, make_file("f", 10), "f")
    records = [r for r in caplog.records if r.name == "audit.transfers"]
    assert [r.levelno for r in records] == [logging.WARNING, logging.WARNING]
    assert any(isinstance(f, SecretRedactionFilter) for f in logging.getLogger("audit.transfers").filters)


class LeakyBackend(MemoryBackend):
    """A backend whose errors carry credentials, as careless client libraries' errors sometimes do."""

    def read(self, path):
        raise ConnectionError(
            "GET https://admin:hunter2@example.invalid/bucket?X-Amz-Signature=abcdef123 failed; "
            "connection string AccountKey=c2VjcmV0a2V5;EndpointSuffix=core; api secret hunter2"
        )


def test_no_secret_reaches_the_log(manager, tmp_path, caplog):
    from remote_store import Store

    enable_plugin("logging", manager=manager, redact=[Secret("hunter2")])
    caplog.set_level(logging.INFO, logger=LOGGER)
    with pytest.raises(ConnectionError):
        manager.download(Store(backend=LeakyBackend()), "f", tmp_path / "f")
    text = "\n".join(r.getMessage() + str(r.__dict__) for r in ours(caplog))
    for secret in ("hunter2", "abcdef123", "c2VjcmV0a2V5"):
        assert secret not in text
    assert "***" in text


def test_bad_level_is_a_config_error():
    from remote_store_transfer import ConfigError

    with pytest.raises(ConfigError, match="LOUD"):
        enable_plugin("logging", level="LOUD")
