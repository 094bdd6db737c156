"""capture(): the caller gets the TransferContext of its own calls."""

from __future__ import annotations

import threading

import pytest
from remote_store import NotFound

import remote_store_transfer as rst
from remote_store_transfer import capture


def test_captures_each_call_in_order_with_final_fields(memory_store, make_file, tmp_path):
    source = make_file("f", 1234)
    with capture() as transfers:
        rst.upload(memory_store, source, "a")
        with pytest.raises(NotFound):
            rst.download(memory_store, "missing", tmp_path / "m")
        rst.transfer(memory_store, "a", memory_store, "b")
    assert [(t.operation, t.bytes_transferred) for t in transfers] == [
        ("upload", 1234),
        ("download", 0),
        ("transfer", 1234),
    ]
    assert transfers[0].write_result is not None


def test_nothing_outside_and_no_call_rejected_by_local_checks(memory_store, make_file, tmp_path):
    rst.upload(memory_store, make_file("f", 1), "before")
    with capture() as transfers, pytest.raises(FileNotFoundError):
        rst.upload(memory_store, tmp_path / "nope", "x")
    rst.upload(memory_store, make_file("g", 1), "after")
    assert transfers == []


def test_nested_captures_and_other_threads(memory_store, make_file):
    source = make_file("f", 1)
    with capture() as outer:
        rst.upload(memory_store, source, "1")
        with capture() as inner:
            rst.upload(memory_store, source, "2")
        thread = threading.Thread(target=rst.upload, args=(memory_store, source, "3"))
        thread.start()
        thread.join()
    assert [t.destination.path for t in outer] == ["1", "2"]
    assert [t.destination.path for t in inner] == ["2"]


def test_transfer_manager_calls_are_captured(manager, memory_store, make_file):
    with capture() as transfers:
        manager.upload(memory_store, make_file("f", 1), "x")
    assert len(transfers) == 1
