"""The audit plugin: what a record holds, its sinks, and what happens when it cannot be written."""

from __future__ import annotations

import json
import logging
import re
from datetime import datetime

import pytest
from remote_store import NotFound, Secret, Store
from remote_store.backends import MemoryBackend

import remote_store_transfer as rst
from remote_store_transfer import AuditError, IntegrityError, configure, enable_plugin
from remote_store_transfer.audit import GENESIS, AuditPlugin, StoreSink, verify_chain, verify_store


def records(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.parametrize("store_fixture", ["memory_store", "local_store"])
def test_one_record_per_transfer_success_and_failure(request, manager, make_file, tmp_path, store_fixture):
    store = request.getfixturevalue(store_fixture)
    log = tmp_path / "logs" / "audit.jsonl"
    enable_plugin("audit", manager=manager, path=log, actor="alice", host="build-7")
    source = make_file("f.bin", 2_000_000)
    manager.upload(store, source, "in/f.bin")
    manager.download(store, "in/f.bin", tmp_path / "back.bin")
    manager.transfer(store, "in/f.bin", store, "out/f.bin", overwrite=True)
    with pytest.raises(NotFound):
        manager.download(store, "missing.bin", tmp_path / "missing.bin")

    upload, download, transfer, failed = records(log)
    assert [r["seq"] for r in (upload, download, transfer, failed)] == [1, 2, 3, 4]
    assert upload["prev"] == GENESIS
    assert upload["operation"] == "upload"
    assert upload["actor"]["user"] == "alice" and upload["actor"]["host"] == "build-7"
    assert upload["source"] == {"local": str(source)}
    assert upload["destination"]["store"] == repr(store)
    assert upload["destination"]["path"] == "in/f.bin"
    assert upload["destination"]["location"].endswith("in/f.bin")
    assert (upload["bytes"], upload["size"], upload["outcome"], upload["error"]) == (
        2_000_000,
        2_000_000,
        "success",
        None,
    )
    assert upload["digest"] is None  # integrity not enabled
    start, end = (datetime.fromisoformat(upload[k]) for k in ("start", "end"))
    assert upload["start"].endswith("Z") and start.utcoffset().total_seconds() == 0
    assert start <= end and upload["duration_s"] >= 0
    assert download["destination"] == {"local": str(tmp_path / "back.bin")}
    assert transfer["overwrite"] is True
    assert len({r["id"] for r in (upload, download, transfer, failed)}) == 4
    assert failed["outcome"] == "failure"
    assert failed["error"]["type"] == "NotFound" and "missing.bin" in failed["error"]["message"]
    assert verify_chain(log).ok


def test_default_actor_is_the_process_user(manager, memory_store, make_file, tmp_path):
    import getpass
    import socket

    log = tmp_path / "audit.jsonl"
    enable_plugin("audit", manager=manager, path=log)
    manager.upload(memory_store, make_file("f", 1), "f")
    (record,) = records(log)
    assert record["actor"]["user"] == getpass.getuser()
    assert record["actor"]["host"] == socket.gethostname()


def test_actor_callable(manager, memory_store, make_file, tmp_path):
    log = tmp_path / "audit.jsonl"
    enable_plugin("audit", manager=manager, path=log, actor=lambda context: f"svc-for-{context.operation}")
    manager.upload(memory_store, make_file("f", 1), "f")
    assert records(log)[0]["actor"]["user"] == "svc-for-upload"


def test_digest_and_integrity_failure_are_recorded(manager, corrupting_store, memory_store, make_file, tmp_path):
    log = tmp_path / "audit.jsonl"
    enable_plugin("audit", manager=manager, path=log)
    enable_plugin("integrity", manager=manager, verify=True)
    source = make_file("f", 50_000)
    manager.upload(memory_store, source, "f")
    with pytest.raises(IntegrityError):
        manager.upload(corrupting_store, source, "f")
    good, bad = records(log)
    assert good["digest"]["algorithm"] == "sha256" and good["digest"]["verified"] is True
    assert good["outcome"] == "success"
    assert bad["outcome"] == "failure" and bad["error"]["type"] == "IntegrityError"
    assert bad["digest"]["verified"] is False
    assert bad["digest"]["value"] in bad["error"]["message"]


def test_denied_transfer_is_recorded(manager, memory_store, make_file, tmp_path):
    log = tmp_path / "audit.jsonl"
    enable_plugin("audit", manager=manager, path=log)
    enable_plugin("policy", manager=manager, deny_overwrite=True)
    with pytest.raises(rst.TransferDenied):
        manager.upload(memory_store, make_file("f", 1), "f", overwrite=True)
    (record,) = records(log)
    assert record["error"]["type"] == "TransferDenied" and "deny_overwrite" in record["error"]["message"]
    assert record["bytes"] == 0


class LeakyBackend(MemoryBackend):
    def read(self, path):
        raise ConnectionError(
            f"GET https://svc:hunter2@host.invalid/{path}?sig=SASSIGNATURE failed (password=pa55word, key hunter2)"
        )


def test_no_secret_reaches_the_audit_log(manager, tmp_path):
    log = tmp_path / "audit.jsonl"
    enable_plugin("audit", manager=manager, path=log, redact=[Secret("hunter2")])
    with pytest.raises(ConnectionError):
        manager.download(Store(backend=LeakyBackend()), "f", tmp_path / "f")
    text = log.read_text()
    for secret in ("hunter2", "SASSIGNATURE", "pa55word"):
        assert secret not in text
    assert "***" in records(log)[0]["error"]["message"]
    assert verify_chain(log).ok


class PasswordBackend(MemoryBackend):
    """A backend type with a credential whose client library puts it in its error messages."""

    def __init__(self, password: Secret) -> None:
        super().__init__()
        self.password = password

    def read(self, path):
        raise ConnectionError(f"login refused with {self.password.reveal()}")


def test_credentials_of_stores_in_the_config_file_are_redacted(tmp_path, monkeypatch):
    """The [backends] credentials of the config file are Secrets, masked wherever they appear."""
    import tomllib

    from remote_store import Registry, RegistryConfig, register_backend, resolve_env

    register_backend("password-test", PasswordBackend)
    monkeypatch.setenv("STORE_PASSWORD", "correct-horse-battery")
    config = tmp_path / "transfer.toml"
    log = tmp_path / "audit.jsonl"
    config.write_text(
        f"""
[backends.vault]
type = "password-test"
[backends.vault.options]
password = "${{STORE_PASSWORD}}"

[stores.data]
backend = "vault"

[plugins.audit]
path = "{log}"

[plugins.logging]
"""
    )
    assert configure(config) == ["audit", "logging"]
    tables = resolve_env(tomllib.loads(config.read_text()))
    registry = Registry(RegistryConfig.from_dict({"backends": tables["backends"], "stores": tables["stores"]}))
    store = registry.get_store("data")
    with pytest.raises(ConnectionError, match="correct-horse-battery"):
        rst.download(store, "f", tmp_path / "f")
    assert "correct-horse-battery" not in log.read_text()
    assert records(log)[0]["error"]["message"] == "login refused with ***"


def test_on_failure_raise_after_a_successful_transfer(manager, memory_store, make_file, tmp_path, caplog):
    (tmp_path / "not-a-dir").write_text("a file where the log's directory should be")
    enable_plugin("audit", manager=manager, path=tmp_path / "not-a-dir" / "audit.jsonl")
    caplog.set_level(logging.ERROR, logger="remote_store_transfer")
    with pytest.raises(AuditError) as caught:
        manager.upload(memory_store, make_file("f", 10), "f")
    assert memory_store.exists("f")  # the bytes did move
    error = caught.value
    assert error.outcome == "success" and error.record["outcome"] == "success"
    assert "could not be recorded" in str(error) and "not-a-dir" in str(error)
    assert isinstance(error.__cause__, OSError)
    (logged,) = [r for r in caplog.records if getattr(r, "event", None) == "audit.write_failed"]
    assert error.record["id"] in logged.getMessage() and '"outcome":"success"' in logged.getMessage()


def test_on_failure_raise_after_a_failed_transfer_keeps_the_original_error(manager, memory_store, tmp_path, caplog):
    (tmp_path / "not-a-dir").write_text("")
    enable_plugin("audit", manager=manager, path=tmp_path / "not-a-dir" / "audit.jsonl")
    caplog.set_level(logging.ERROR, logger="remote_store_transfer")
    with pytest.raises(NotFound) as caught:
        manager.download(memory_store, "missing", tmp_path / "x")
    assert any("AuditError" in note and "could not be recorded" in note for note in caught.value.__notes__)
    assert any(getattr(r, "event", None) == "audit.write_failed" for r in caplog.records)


def test_on_failure_log_only_logs(manager, memory_store, make_file, tmp_path, caplog):
    (tmp_path / "not-a-dir").write_text("")
    enable_plugin("audit", manager=manager, path=tmp_path / "not-a-dir" / "audit.jsonl", on_failure="log")
    caplog.set_level(logging.ERROR, logger="remote_store_transfer")
    manager.upload(memory_store, make_file("f", 10), "f")  # no exception
    assert any(getattr(r, "event", None) == "audit.write_failed" for r in caplog.records)


def test_a_damaged_last_record_stops_appending(manager, memory_store, make_file, tmp_path):
    log = tmp_path / "audit.jsonl"
    enable_plugin("audit", manager=manager, path=log)
    source = make_file("f", 10)
    manager.upload(memory_store, source, "a")
    log.write_bytes(log.read_bytes()[:-20])  # a crash cut the last record short
    with pytest.raises(AuditError, match="last record is damaged"):
        manager.upload(memory_store, source, "b")


@pytest.mark.parametrize("store_fixture", ["memory_store", "local_store"])
def test_store_sink_one_object_per_record(request, manager, make_file, tmp_path, store_fixture):
    audit_store = request.getfixturevalue(store_fixture)
    data = Store(backend=MemoryBackend())
    plugin = enable_plugin("audit", manager=manager, store=audit_store, prefix="audit/transfers")
    source = make_file("f", 100)
    for i in range(5):
        manager.upload(data, source, f"f{i}")
    with pytest.raises(NotFound):
        manager.download(data, "missing", tmp_path / "m")
    files = sorted(str(f.path) for f in audit_store.list_files("audit/transfers", recursive=True))
    assert len(files) == 6
    chain = plugin.sink.chain  # type: ignore[attr-defined]
    assert files[0] == f"audit/transfers/{chain}/000000000001.json"
    assert re.fullmatch(r"\d{8}T\d{12}Z-.+-\d+-[0-9a-f]{8}", chain)
    lines = [audit_store.read_bytes(f) for f in files]
    assert verify_chain(lines).ok
    assert json.loads(lines[-1])["outcome"] == "failure"
    assert verify_store(audit_store, "audit/transfers") == rst.audit.VerifyResult(True, 6, None, "intact")


def test_verify_store_finds_tampering_in_one_chain(memory_store, make_file):
    manager_a, manager_b = rst.TransferManager(), rst.TransferManager()
    enable_plugin("audit", manager=manager_a, store=memory_store)
    enable_plugin("audit", manager=manager_b, store=memory_store)  # a second writer: its own chain
    data = Store(backend=MemoryBackend())
    source = make_file("f", 10)
    for i in range(3):
        manager_a.upload(data, source, f"a{i}")
        manager_b.upload(data, source, f"b{i}")
    assert verify_store(memory_store).records == 6 and verify_store(memory_store).ok
    victim = sorted(str(f.path) for f in memory_store.list_files("audit", recursive=True))[1]
    memory_store.delete(victim)  # a record removed
    result = verify_store(memory_store)
    assert not result.ok and "removed" in result.reason and victim.rsplit("/", 2)[1] in result.reason


def test_store_sink_write_failure_is_an_audit_error(manager, make_file):
    class ReadOnlyBackend(MemoryBackend):
        def write(self, path, content, *, overwrite=False, metadata=None):
            raise PermissionError(f"write denied: {path}")

    enable_plugin("audit", manager=manager, store=Store(backend=ReadOnlyBackend()))
    with pytest.raises(AuditError, match="write denied"):
        manager.upload(Store(backend=MemoryBackend()), make_file("f", 1), "f")


def test_exactly_one_sink():
    with pytest.raises(ValueError, match="exactly one"):
        AuditPlugin()
    with pytest.raises(ValueError, match="exactly one"):
        AuditPlugin(path="a", store=Store(backend=MemoryBackend()))
    assert isinstance(AuditPlugin(store=Store(backend=MemoryBackend())).sink, StoreSink)


def test_audit_records_the_verdict_of_any_post_transfer_verifier(manager, memory_store, make_file, tmp_path):
    class Verifier:  # a third-party plugin, registered after audit, rejecting the transfer
        @rst.hookimpl
        def post_transfer(self, context, error):
            raise ValueError("checksum registry says no")

    log = tmp_path / "audit.jsonl"
    enable_plugin("audit", manager=manager, path=log)
    manager.register(Verifier(), name="verifier")
    with pytest.raises(ValueError, match="says no"):
        manager.upload(memory_store, make_file("f", 1), "f")
    assert records(log)[0]["error"] == {"type": "ValueError", "message": "checksum registry says no"}


def test_records_longer_than_the_read_back_block_chain_correctly(manager, tmp_path):
    class VerboseBackend(MemoryBackend):
        def read(self, path):
            raise OSError("x" * 20_000)  # a record of ~20 KB: the last line is read back in several blocks

    log = tmp_path / "audit.jsonl"
    enable_plugin("audit", manager=manager, path=log)
    for i in range(3):
        with pytest.raises(OSError, match="xxx"):
            manager.download(Store(backend=VerboseBackend()), f"f{i}", tmp_path / f"f{i}")
    assert [r["seq"] for r in records(log)] == [1, 2, 3]
    assert verify_chain(log).ok
