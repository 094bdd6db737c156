"""A finished transfer of 0 bytes shows 100%: the single-file bar and the tree display, rendered by rich."""

from __future__ import annotations

import io
import re

import pytest
from rich.console import Console

from remote_store_transfer.batch import Batch, FileOutcome, TreeResult
from remote_store_transfer.cli.progress import ProgressBar
from remote_store_transfer.cli.tree_progress import TreeProgress
from remote_store_transfer.context import Endpoint, TransferContext


def console() -> Console:
    return Console(file=io.StringIO(), width=120, force_terminal=True, color_system=None)


def screen(con: Console) -> str:
    text: str = con.file.getvalue()  # type: ignore[attr-defined]
    return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", text)  # cursor moves of the live display


def context(size: int | None, batch: Batch | None = None) -> TransferContext:
    return TransferContext(
        "upload",
        Endpoint(None, "/data/src/empty.bin"),
        Endpoint(None, "/data/dst/empty.bin"),
        overwrite=False,
        on_progress=None,
        size=size,
        batch=batch,
    )


@pytest.mark.parametrize("size", [0, None])
def test_a_finished_empty_transfer_ends_at_100_percent(size):
    con = console()
    bar = ProgressBar(con)
    bar.expect("upload empty.bin", None)
    call = context(size)
    bar.pre_transfer(call)
    bar.post_transfer(call, None)
    last = screen(con).strip().splitlines()[-1]
    if size is None:  # an unknown size (stdin) never shows a percentage: a spinner, the bytes and the rate
        assert "%" not in last
        assert "0/0 bytes" in last
    else:
        assert re.search(r"upload empty\.bin\s+━+\s+100%\s+0/0 bytes", last), last


def test_a_failed_empty_transfer_is_not_shown_as_done():
    con = console()
    bar = ProgressBar(con)
    bar.expect("upload empty.bin", None)
    call = context(0)
    bar.pre_transfer(call)
    bar.post_transfer(call, OSError("boom"))
    last = screen(con).strip().splitlines()[-1]
    assert "failed" in last
    assert "100%" not in last


def test_a_tree_of_empty_files_keeps_its_bar_at_100_percent():
    con = console()
    display = TreeProgress(con, "upload empties")
    batch = Batch("upload_tree", Endpoint(None, "/data/src"), Endpoint(None, "/data/dst"), {})
    display.pre_batch(batch)
    result = TreeResult()
    for i in range(3):
        call = context(0, batch)
        display.pre_transfer(call)
        display.post_transfer(call)
        outcome = FileOutcome(f"e{i}.bin", "transferred", 0, 0, "new", attempts=1)
        result.add(outcome)
        display.file_done(outcome)
    batch.planned_files, batch.planned_bytes, batch.listing_complete = 3, 0, True
    display.post_batch(batch, result)
    display.stop()
    last = screen(con).strip().splitlines()[-1]
    assert re.search(r"upload empties\s+━+\s+100%\s+0/0 bytes .* 3/3 files", last), last
