"""The anchored audit log: the chain head published after each record, and verifying a log against it.

``test_tampering`` is the table "What is detected" of docs/plugins/audit.md,
one parametrized case per row: each kind of tampering, verified with and
without a key and with and without the published head.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import re
from pathlib import Path

import pytest
from remote_store import Store
from remote_store.backends import MemoryBackend

from remote_store_transfer import AuditError, TransferManager, enable_plugin
from remote_store_transfer.audit import (
    AuditPlugin,
    FileAnchor,
    FileSink,
    StoreAnchor,
    chain_head,
    main,
    verify_chain,
    verify_logs,
)
from remote_store_transfer.cli import main as cli_main
from remote_store_transfer.config import parse_config

KEY = "anchor-test-key"
N = 5


def make_log(tmp_path, *, key: str | None, name: str = "audit", n: int = N) -> tuple[os.PathLike, os.PathLike]:
    """A real log of *n* uploads written with the head published to an anchor file: (log, head file)."""
    log, head = tmp_path / f"{name}.jsonl", tmp_path / "anchor" / f"{name}.head"
    manager = TransferManager()
    enable_plugin("audit", manager=manager, path=log, key=key, anchor_path=head)
    store = Store(backend=MemoryBackend())
    source = tmp_path / f"{name}.src"
    source.write_bytes(b"payload")
    for i in range(n):
        manager.upload(store, source, f"f{i}")
    return log, head


def rehash(line: bytes, key: bytes | None = None, **changes) -> bytes:
    record = json.loads(line)
    record.pop("hash")
    record.update(changes)
    body = json.dumps(record, separators=(",", ":")).encode()
    digest = hashlib.sha256(body).hexdigest() if key is None else hmac.new(key, body, hashlib.sha256).hexdigest()
    return body[:-1] + b',"hash":"' + digest.encode() + b'"}'


def run_cli(capsys, *args: str) -> tuple[int, str]:
    """``remote-store-transfer audit verify ARGS``: (exit code, stdout + stderr)."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as exited:
        cli_main(["audit", "verify", *args])
    out = capsys.readouterr()
    return exited.value.code, out.out + out.err


# --------------------------------------------------------------------------------------------- publishing


def test_the_head_is_published_after_each_record(tmp_path):
    log, head = make_log(tmp_path, key=None, n=1)
    assert head.read_text() == chain_head(log) + "\n"
    manager = TransferManager()
    enable_plugin("audit", manager=manager, path=log, anchor_path=head)
    store = Store(backend=MemoryBackend())
    manager.upload(store, tmp_path / "audit.src", "again")
    assert head.read_text() == chain_head(log) + "\n"
    assert head.read_text().startswith("2:")
    assert os.listdir(head.parent) == [head.name]  # the temp file was renamed over it
    assert head.stat().st_mode & 0o777 == 0o640


def test_with_a_key_the_head_carries_a_mac(tmp_path):
    log, head = make_log(tmp_path, key=KEY, n=2)
    seq_hash, mac = head.read_text().strip().rsplit(":", 1)
    assert seq_hash == chain_head(log)
    assert re.fullmatch(r"[0-9a-f]{64}", mac)
    assert verify_chain(log, key=KEY, head=head.read_text()).ok


def test_one_anchor_per_chain_with_placeholders(tmp_path):
    sink = FileSink(tmp_path / "audit-{pid}.jsonl", anchor=FileAnchor(tmp_path / "h-{pid}"))
    sink.append({"id": "a"})
    pid = os.getpid()
    assert (tmp_path / f"h-{pid}").read_text() == chain_head(tmp_path / f"audit-{pid}.jsonl") + "\n"
    with pytest.raises(ValueError, match=r"must hold \{pid\}"):
        AuditPlugin(path=tmp_path / "audit-{pid}.jsonl", anchor_path=tmp_path / "head-{host}")
    with pytest.raises(ValueError, match=r"must hold \{host\}, \{pid\}"):
        AuditPlugin(path=tmp_path / "audit-{host}-{pid}.jsonl", anchor_path=tmp_path / "head")
    with pytest.raises(ValueError, match="unknown placeholder"):
        AuditPlugin(path=tmp_path / "audit.jsonl", anchor_path=tmp_path / "head-{user}")


def test_the_head_in_a_store(tmp_path):
    heads = Store(backend=MemoryBackend())
    manager = TransferManager()
    log = tmp_path / "audit-{pid}.jsonl"
    enable_plugin("audit", manager=manager, path=log, key=KEY, anchor_store=heads, anchor_name="heads/{pid}")
    source = tmp_path / "f"
    source.write_bytes(b"x")
    for i in range(3):
        manager.upload(Store(backend=MemoryBackend()), source, f"f{i}")
    written = tmp_path / f"audit-{os.getpid()}.jsonl"
    head = heads.read_bytes(f"heads/{os.getpid()}").decode()
    assert head.startswith(chain_head(written) + ":")
    assert verify_chain(written, key=KEY, head=head).ok
    assert repr(StoreAnchor(heads, "h")).startswith("StoreAnchor(")


def test_anchor_options_are_checked(tmp_path):
    store = Store(backend=MemoryBackend())
    with pytest.raises(ValueError, match="at most one of anchor_path or anchor_store"):
        AuditPlugin(path=tmp_path / "a", anchor_path=tmp_path / "h", anchor_store=store)
    with pytest.raises(ValueError, match="give anchor_store too"):
        AuditPlugin(path=tmp_path / "a", anchor_name="h")
    with pytest.raises(ValueError, match="with path only"):
        AuditPlugin(store=store, anchor_path=tmp_path / "h")
    with pytest.raises(ValueError, match="must not be empty"):
        AuditPlugin(path=tmp_path / "a", anchor_store=store, anchor_name="/")


def test_anchor_in_the_config_file(tmp_path):
    config = parse_config(
        {
            "backends": {"mem": {"type": "memory"}},
            "stores": {"heads": {"backend": "mem", "root_path": "heads"}},
            "plugins": {"audit": {"path": str(tmp_path / "a.jsonl"), "anchor_store": "heads", "anchor_name": "h"}},
        }
    )
    (settings,) = config.plugins
    assert isinstance(settings.options["anchor_store"], Store) and settings.options["anchor_name"] == "h"


@pytest.mark.parametrize("on_failure", ["raise", "log"])
def test_a_head_that_cannot_be_published(tmp_path, caplog, on_failure):
    (tmp_path / "not-a-dir").write_text("")
    log = tmp_path / "audit.jsonl"
    manager = TransferManager()
    enable_plugin("audit", manager=manager, path=log, anchor_path=tmp_path / "not-a-dir" / "h", on_failure=on_failure)
    source = tmp_path / "f"
    source.write_bytes(b"x")
    caplog.set_level(logging.ERROR, logger="remote_store_transfer")
    store = Store(backend=MemoryBackend())
    if on_failure == "raise":
        with pytest.raises(AuditError, match="chain head could not be published"):
            manager.upload(store, source, "f")
    else:
        manager.upload(store, source, "f")
    assert store.exists("f")
    assert len(log.read_bytes().splitlines()) == 1  # the record itself was written
    assert any(getattr(r, "event", None) == "audit.write_failed" for r in caplog.records)


# --------------------------------------------------------------------------------------------- tampering


def _edited(lines, key, other):
    lines[2] = lines[2].replace(b'"path":"f2"', b'"path":"fX"')
    return lines


def _removed_middle(lines, key, other):
    del lines[2]
    return lines


def _removed_last(lines, key, other):
    del lines[-2:]
    return lines


def _truncated_mid_record(lines, key, other):
    return [*lines[:-1], lines[-1][: len(lines[-1]) // 2]], False  # no final newline


def _emptied(lines, key, other):
    return []


def _reordered(lines, key, other):
    lines[1], lines[2] = lines[2], lines[1]
    return lines


def _replaced(lines, key, other):
    return other  # a fresh, valid chain written without the key (the attacker does not have it)


TAMPERING = {
    "edited record": _edited,
    "removed middle record": _removed_middle,
    "removed last records": _removed_last,
    "truncated mid-record": _truncated_mid_record,
    "emptied (truncated to 0 bytes)": _emptied,
    "reordered records": _reordered,
    "replaced by a fresh chain": _replaced,
    "replaced by a fresh chain, head rewritten to match": _replaced,
}

# (no key, no head), (no key, head), (key, no head), (key, head): detected?
DETECTED = {
    "edited record": (True, True, True, True),
    "removed middle record": (True, True, True, True),
    "removed last records": (False, True, False, True),
    "truncated mid-record": (True, True, True, True),
    "emptied (truncated to 0 bytes)": (False, True, False, True),
    "reordered records": (True, True, True, True),
    "replaced by a fresh chain": (False, True, True, True),
    "replaced by a fresh chain, head rewritten to match": (False, False, True, True),
}

CASES = [
    pytest.param(case, with_key, with_head, DETECTED[case][2 * with_key + with_head], id=f"{case}-{kk}-{hh}")
    for case in TAMPERING
    for with_key, kk in ((False, "no key"), (True, "key"))
    for with_head, hh in ((False, "no head"), (True, "head"))
]


@pytest.fixture(scope="module")
def logs(tmp_path_factory):
    """Per key setting: the intact log's lines, its head, and a fresh chain made without the key."""
    made = {}
    for with_key in (False, True):
        tmp = tmp_path_factory.mktemp("keyed" if with_key else "plain")
        log, head = make_log(tmp, key=KEY if with_key else None)
        fresh, fresh_head = make_log(tmp, key=None, name="forged")
        made[with_key] = (log.read_bytes().splitlines(), head.read_text(), fresh.read_bytes().splitlines(), fresh_head)
    return made


def test_the_matrix_covers_every_case():
    assert set(TAMPERING) == set(DETECTED)


@pytest.mark.parametrize(("case", "with_key", "with_head", "detected"), CASES)
def test_tampering(tmp_path, logs, monkeypatch, capsys, case, with_key, with_head, detected):
    lines, head, fresh, fresh_head = logs[with_key]
    key = KEY if with_key else None
    assert verify_chain(lines, key=key, head=head).ok  # intact before
    tampered = TAMPERING[case](list(lines), key, list(fresh))
    newline = True
    if isinstance(tampered, tuple):
        tampered, newline = tampered
    path = tmp_path / "audit.jsonl"
    path.write_bytes(b"\n".join(tampered) + (b"\n" if newline and tampered else b""))
    if case.endswith("head rewritten to match"):
        head = fresh_head.read_text()  # the attacker also rewrote the head (without the key)
    result = verify_chain(path, key=key, head=head if with_head else None)
    assert result.ok is not detected, result
    if detected:
        assert result.first_bad is not None and result.reason
    # the set verifier and both command lines agree
    report = verify_logs([path], key=key, heads={path: head} if with_head else None)
    assert report.ok is not detected
    head_file = tmp_path / "head"
    head_file.write_text(head)
    args = [str(path), *(["--head", str(head_file)] if with_head else []), *(["--key-env", "AUDIT_K"] if key else [])]
    monkeypatch.setenv("AUDIT_K", KEY)
    code, output = run_cli(capsys, *args)
    assert code == (6 if detected else 0), output
    assert main(["verify", *args]) == code


def test_reasons_with_a_head(tmp_path):
    log, head = make_log(tmp_path, key=KEY)
    lines = log.read_bytes().splitlines()
    log.write_bytes(b"\n".join(lines[:-2]) + b"\n")
    result = verify_chain(log, key=KEY, head=head.read_text())
    assert not result.ok and result.first_bad == N - 1
    assert "the head names seq 5: records were removed from the end" in result.reason
    log.write_bytes(b"")
    assert "the log ends at seq 0" in verify_chain(log, key=KEY, head=head.read_text()).reason
    # a head without a MAC, or with a wrong one, is refused when a key is given
    log.write_bytes(b"\n".join(lines) + b"\n")
    plain = chain_head(log)
    assert "no MAC" in verify_chain(log, key=KEY, head=plain).reason
    forged = plain + ":" + "0" * 64
    assert "MAC does not match" in verify_chain(log, key=KEY, head=forged).reason
    # a replaced record at the head's seq
    lines[-1] = rehash(lines[-1], KEY.encode(), bytes=99)
    log.write_bytes(b"\n".join(lines) + b"\n")
    result = verify_chain(log, key=KEY, head=head.read_text())
    assert not result.ok and "does not match the head" in result.reason


def test_a_malformed_head(tmp_path, capsys):
    log, _ = make_log(tmp_path, key=None, n=1)
    assert verify_chain(log, head=chain_head(log) + ":" + "0" * 64).ok  # without a key the MAC is not checked
    with pytest.raises(ValueError, match="chain head must be"):
        verify_chain(log, head="nonsense")
    with pytest.raises(ValueError, match="a head is given for"):
        verify_logs([log], heads={tmp_path / "other.jsonl": chain_head(log)})
    bad = tmp_path / "bad-head"
    bad.write_text("nonsense")
    code, output = run_cli(capsys, str(log), "--head", str(bad))
    assert code == 2 and "--head" in output
    code, output = run_cli(capsys, str(log), str(log) + "x", "--head", str(bad))
    assert code == 2 and "exactly one FILE" in output
    code, output = run_cli(capsys, str(log), "--head", str(tmp_path / "missing"))
    assert code == 3 and "missing" in output
    assert main(["verify", str(log), "--head", str(tmp_path / "missing")]) == 3


def test_records_written_after_the_head_was_read_are_fine(tmp_path):
    log, head = make_log(tmp_path, key=KEY, n=2)
    earlier = head.read_text()
    manager = TransferManager()
    enable_plugin("audit", manager=manager, path=log, key=KEY, anchor_path=head)
    manager.upload(Store(backend=MemoryBackend()), tmp_path / "audit.src", "later")
    assert verify_chain(log, key=KEY, head=earlier).ok
    assert verify_chain(log, key=KEY, head=head.read_text()).ok


def test_the_docs_table_matches_the_tests():
    docs = (Path(__file__).parents[2] / "docs" / "plugins" / "audit.md").read_text()
    section = docs.split("### What is detected", 1)[1].split("\n\n", 3)[2]
    rows = {}
    for line in section.splitlines()[2:]:
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        rows[cells[0]] = tuple(cell == "✔" for cell in cells[1:])
    assert rows == DETECTED
