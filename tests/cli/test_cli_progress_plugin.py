"""The CLI's progress plugin in-process, on a TransferManager, drawing to a recording rich console."""

from __future__ import annotations

import io
import re

import pytest
from remote_store import NotFound
from rich.console import Console

from remote_store_transfer import TransferManager
from remote_store_transfer.cli.progress import CallRecorder, ProgressBar

SIZE = 3 * 1024 * 1024 + 5


def console() -> Console:
    return Console(file=io.StringIO(), force_terminal=True, width=120, color_system=None)


def screen(con: Console) -> str:
    text = con.file.getvalue()  # type: ignore[attr-defined]
    return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", text)  # cursor movements of the live display


def test_known_size_ends_at_100_percent(memory_store, make_file):
    con = console()
    bar = ProgressBar(con)
    bar.expect("upload a.bin", None)
    TransferManager([bar]).upload(memory_store, make_file("a.bin", SIZE), "a.bin")
    last = screen(con).splitlines()[-1]
    assert last.startswith("upload a.bin ━")
    assert " 100% 3.0/3.0 MiB " in last


def test_total_given_by_the_cli_for_a_download(memory_store, make_file, tmp_path):
    memory_store.write("a.bin", make_file("a.bin", SIZE).read_bytes())
    con = console()
    bar = ProgressBar(con)
    bar.expect("download a.bin", memory_store.get_file_info("a.bin").size)
    TransferManager([bar]).download(memory_store, "a.bin", tmp_path / "out.bin")
    assert " 100% 3.0/3.0 MiB " in screen(con).splitlines()[-1]


def test_unknown_size_shows_a_spinner_with_bytes(memory_store, make_file, tmp_path):
    memory_store.write("a.bin", make_file("a.bin", SIZE).read_bytes())
    con = console()
    bar = ProgressBar(con)
    bar.expect("download a.bin", None)
    TransferManager([bar]).download(memory_store, "a.bin", tmp_path / "out.bin")
    last = screen(con).splitlines()[-1]
    assert "download a.bin 3.0/3.0 MiB" in last
    assert "%" not in last
    assert "━" not in last


def test_failure_leaves_the_bar_where_it_stopped(memory_store, tmp_path):
    con = console()
    bar = ProgressBar(con)
    bar.expect("download nope", None)
    recorder = CallRecorder()
    with pytest.raises(NotFound):
        TransferManager([bar, recorder]).download(memory_store, "nope", tmp_path / "out.bin")
    assert "download nope failed" in screen(con)
    assert recorder.last is not None
    assert recorder.bytes_transferred == 0
