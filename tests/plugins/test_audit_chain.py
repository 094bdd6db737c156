"""The audit hash chain: an intact log verifies; every kind of tampering is found at the right record."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys

import pytest
from remote_store import Secret, Store
from remote_store.backends import MemoryBackend

from remote_store_transfer import TransferManager, enable_plugin
from remote_store_transfer.audit import GENESIS, VerifyResult, chain_head, main, verify_chain

N = 8


@pytest.fixture(scope="module")
def intact(tmp_path_factory) -> list[bytes]:
    """The lines of a real audit log of N transfers (uploads, downloads, a failure)."""
    tmp = tmp_path_factory.mktemp("chain")
    log = tmp / "audit.jsonl"
    manager = TransferManager()
    enable_plugin("audit", manager=manager, path=log)
    store = Store(backend=MemoryBackend())
    source = tmp / "f"
    source.write_bytes(b"payload")
    for i in range(N - 1):
        manager.upload(store, source, f"f{i}")
    with pytest.raises(Exception, match="nope"):
        manager.download(store, "nope", tmp / "x")
    return log.read_bytes().splitlines()


def write(tmp_path, lines: list[bytes], *, newline: bool = True):
    path = tmp_path / "audit.jsonl"
    path.write_bytes(b"\n".join(lines) + (b"\n" if newline else b""))
    return path


def rehash(line: bytes, **changes) -> bytes:
    """*line* with *changes* applied and its hash recomputed: what a forger without the key can do."""
    record = json.loads(line)
    record.pop("hash")
    record.update(changes)
    body = json.dumps(record, separators=(",", ":")).encode()
    return body[:-1] + b',"hash":"' + hashlib.sha256(body).hexdigest().encode() + b'"}'


def hash_of(line: bytes) -> str:
    return json.loads(line)["hash"]


def test_intact_log(tmp_path, intact):
    assert len(intact) == N
    assert json.loads(intact[0])["prev"] == GENESIS
    path = write(tmp_path, intact)
    expected = VerifyResult(True, N, None, "intact")
    assert verify_chain(path) == expected
    assert verify_chain(str(path)) == expected
    assert verify_chain(path.read_bytes()) == expected
    assert verify_chain([line.decode() for line in intact]) == expected
    assert verify_chain(intact) == expected
    assert str(expected) == f"OK: {N} records, chain intact"


def test_empty_log(tmp_path):
    assert verify_chain(write(tmp_path, [], newline=False)) == VerifyResult(True, 0, None, "empty log")


def check(lines, first_bad: int, *words: str, records: int | None = None, **kwargs) -> VerifyResult:
    result = verify_chain(lines, **kwargs)
    assert not result.ok
    assert result.first_bad == first_bad, result.reason
    for word in words:
        assert word in result.reason
    assert result.records == (len(lines) if records is None else records)
    return result


@pytest.mark.parametrize("k", [1, 4, N])
def test_altered_record(intact, k):
    lines = list(intact)
    lines[k - 1] = lines[k - 1].replace(b'"v":1', b'"v":2')
    check(lines, k, "altered")


@pytest.mark.parametrize("k", [1, 4])
def test_altered_record_with_recomputed_hash(intact, k):
    lines = list(intact)
    lines[k - 1] = rehash(lines[k - 1], bytes=8)
    check(lines, k, f"record {k} was rewritten")


def test_altered_last_record_with_recomputed_hash_needs_a_key_or_an_anchor(tmp_path, intact):
    lines = list(intact)
    lines[-1] = rehash(lines[-1], outcome="success", error=None)
    assert verify_chain(lines).ok  # a plain hash chain cannot see this on its own...
    anchor = chain_head(intact)
    check(lines, N, "anchor", anchor=anchor)  # ...an anchor noted earlier can


@pytest.mark.parametrize("k", [1, 4, N - 1])
def test_removed_record(intact, k):
    lines = intact[: k - 1] + intact[k:]
    reason = check(lines, k, "removed").reason
    assert f"seq {k}" in reason


def test_removed_several_records(intact):
    check(intact[:2] + intact[5:], 3, "seqs 3 to 5 removed")


def test_removed_from_the_end_is_found_with_an_anchor(intact):
    anchor = chain_head(intact)
    assert anchor == f"{N}:{hash_of(intact[-1])}"
    assert verify_chain(intact[:-2]).ok  # a shorter chain is a valid chain
    check(intact[:-2], N - 1, "removed from the end", anchor=anchor)
    assert verify_chain(intact, anchor=anchor).ok


@pytest.mark.parametrize("k", [1, 3, N])
def test_inserted_forged_record_following_on(intact, k):
    """A forged record with a correct seq, prev and hash for its place: the next record gives it away."""
    before = intact[k - 2] if k > 1 else None
    forged = rehash(intact[k - 1], seq=k, prev=hash_of(before) if before else GENESIS, bytes=999)
    lines = [*intact[: k - 1], forged, *intact[k - 1 :]]
    check(lines, k, f"record {k} was inserted")


@pytest.mark.parametrize("k", [2, 5])
def test_inserted_duplicate(intact, k):
    lines = [*intact[:k], intact[k - 1], *intact[k:]]  # record k replayed right after itself
    check(lines, k + 1, "duplicate", "inserted")


def test_inserted_copy_of_an_older_record(intact):
    lines = [*intact[:5], intact[1], *intact[5:]]
    check(lines, 6, "inserted")


@pytest.mark.parametrize("k", [1, 4, N - 1])
def test_swapped_records(intact, k):
    lines = list(intact)
    lines[k - 1], lines[k] = lines[k], lines[k - 1]
    check(lines, k, "reordered", f"line {k + 1}")


def test_moved_record(intact):
    lines = [*intact[:2], *intact[3:6], intact[2], *intact[6:]]
    check(lines, 3, "reordered", "line 6")


def test_truncated_last_line(tmp_path, intact):
    path = write(tmp_path, [*intact[:-1], intact[-1][:-30]], newline=False)
    check(path, N, "truncated", records=N)
    path = write(tmp_path, intact, newline=False)  # only the newline is missing
    check(path, N, "truncated", records=N)


def test_truncated_middle_line(tmp_path, intact):
    lines = list(intact)
    lines[3] = lines[3][:50]
    check(write(tmp_path, lines), 4, "truncated", records=N)


def test_garbage_and_empty_lines(intact):
    check([*intact[:2], b"", *intact[2:]], 3, "empty line")
    check([*intact[:2], b"not json at all", *intact[2:]], 3, "no hash")


def test_with_a_key_a_forger_cannot_recompute_hashes(tmp_path):
    log = tmp_path / "audit.jsonl"
    manager = TransferManager()
    enable_plugin("audit", manager=manager, path=log, key=Secret("k3y-from-a-vault"))
    store = Store(backend=MemoryBackend())
    (tmp_path / "f").write_bytes(b"x")
    for i in range(3):
        manager.upload(store, tmp_path / "f", f"f{i}")
    lines = log.read_bytes().splitlines()
    assert verify_chain(lines, key="k3y-from-a-vault").ok
    assert verify_chain(lines, key=b"k3y-from-a-vault").ok
    check(lines, 1, "key", key="another key")
    forged = list(lines)
    forged[-1] = rehash(forged[-1], bytes=2)  # a forger without the key: even the last record is caught
    check(forged, 3, "key", key="k3y-from-a-vault")
    assert "k3y-from-a-vault" not in log.read_text()


def test_module_entry_point(tmp_path, intact, capsys):
    path = write(tmp_path, intact)
    assert main(["verify", str(path)]) == 0
    assert capsys.readouterr().out == f"{path}: intact, {N} records\n"
    assert main(["head", str(path)]) == 0
    anchor = capsys.readouterr().out.strip()
    assert anchor == chain_head(path)
    bad = write(tmp_path, intact[:3] + intact[4:])
    assert main(["verify", str(bad)]) == 6
    assert f"error: verify {bad}: record 4 of 7: " in capsys.readouterr().err
    assert main(["verify", str(bad), "--anchor", anchor]) == 6
    assert main(["verify", str(tmp_path / "nope.jsonl")]) == 3
    assert "nope.jsonl" in capsys.readouterr().err


def test_python_dash_m(tmp_path, intact):
    path = write(tmp_path, intact)
    command = [sys.executable, "-m", "remote_store_transfer.audit", "verify", str(path)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert (result.returncode, result.stdout.strip()) == (0, f"{path}: intact, {N} records")
    write(tmp_path, [intact[1], intact[0], *intact[2:]])
    result = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 6 and f"error: verify {path}: record 1 of {N}: " in result.stderr
