"""In-process tests of the folder commands' small parts: rates, exit codes, output lines, the live display."""

from __future__ import annotations

import io
import threading
from pathlib import Path

import pytest
from remote_store import NotFound, PermissionDenied
from rich.console import Console

from remote_store_transfer import IntegrityError
from remote_store_transfer.batch import Batch, FileOutcome, TreeResult
from remote_store_transfer.cli.report import plan_line, summary_line, tree_exit_code
from remote_store_transfer.cli.tree import parse_rate
from remote_store_transfer.cli.tree_progress import SourceCounter, TreeProgress, relative_path
from remote_store_transfer.context import Endpoint, TransferContext


@pytest.mark.parametrize(
    ("text", "rate"),
    [
        ("10M", 10 * 1024**2),
        ("512K", 512 * 1024),
        ("1.5G", 1.5 * 1024**3),
        ("1048576", 1048576),
        ("2MiB", 2 * 1024**2),
        ("2mb", 2 * 1024**2),
        ("64k/s", 64 * 1024),
        (" 1T ", 1024**4),
        ("100B", 100),
        (".5K", 512),
    ],
)
def test_parse_rate(text, rate):
    assert parse_rate(text) == rate


@pytest.mark.parametrize("text", ["", "0", "0K", "-1M", "10Q", "1e6", "fast", "M", "1.2.3K", "10MM"])
def test_parse_rate_rejects(text):
    with pytest.raises(ValueError, match="rate"):
        parse_rate(text)


def _integrity() -> IntegrityError:
    return IntegrityError("sha256", "00" * 32, "ff" * 32, "a", "b")


@pytest.mark.parametrize(
    ("errors", "code"),
    [
        ([], 0),
        ([PermissionDenied("no", path="a")], 5),
        ([PermissionDenied("no", path="a"), PermissionError(13, "no")], 5),  # both mean "denied"
        ([_integrity(), _integrity()], 6),
        ([NotFound("gone", path="a")], 3),
        ([NotFound("gone", path="a"), _integrity()], 1),
        ([ConnectionError("x")], 1),
        ([KeyboardInterrupt()], 130),
    ],
)
def test_tree_exit_code(errors, code):
    assert tree_exit_code({f"f{i}": error for i, error in enumerate(errors)}) == code


@pytest.mark.parametrize(
    ("path", "root", "local", "rel"),
    [
        ("/data/src/a/b.txt", "/data/src", True, "a/b.txt"),
        ("/data/src/a/b.txt", "/data/src/", True, "a/b.txt"),
        ("src/a.txt", "src", True, "a.txt"),
        ("/data/srcx/a.txt", "/data/src", True, "/data/srcx/a.txt"),
        ("photos/2026/a.jpg", "photos", False, "2026/a.jpg"),
        ("photos/2026/a.jpg", "/photos/", False, "2026/a.jpg"),
        ("a.jpg", "", False, "a.jpg"),
    ],
)
def test_relative_path(path, root, local, rel):
    assert relative_path(path, root, local=local) == rel


def test_summary_and_plan_lines():
    result = TreeResult(
        transferred=["a", "b"], skipped=["c"], deleted=["d"], failed={"e": OSError("x")}, bytes_transferred=3 * 1024**2
    )
    result.seconds = 2.0
    assert summary_line("sync", "/src", "s3:dst", result) == (
        "sync /src -> s3:dst: 2 transferred, 1 skipped, 1 failed, 1 deleted, 3.0 MiB in 2.00 s (1.5 MiB/s)"
    )
    result.dry_run = True
    assert summary_line("sync", "/src", "s3:dst", result) == (
        "sync /src -> s3:dst (dry run): 2 would be transferred, 1 skipped, 1 failed, 1 would be deleted, 3.0 MiB"
    )
    assert (
        plan_line(FileOutcome("a/b.txt", "transferred", reason="new", dry_run=True)) == "would transfer a/b.txt (new)"
    )
    assert plan_line(FileOutcome("c", "skipped", reason="exists", dry_run=True)) == "would skip c (exists)"
    assert plan_line(FileOutcome("d", "deleted", reason="not in source")) == "would delete d (not in source)"
    assert plan_line(FileOutcome("e", "skipped")) == "would skip e"


def _render(renderable: object) -> str:
    console = Console(file=io.StringIO(), width=140, force_terminal=False, color_system=None)
    console.print(renderable)
    return console.file.getvalue()  # type: ignore[attr-defined]


def test_display_counts_files_and_bytes_from_many_threads():
    console = Console(file=io.StringIO(), width=140, force_terminal=True, color_system=None)
    display = TreeProgress(console, "upload src")
    batch = Batch("upload_tree", Endpoint(None, "/data/src"), Endpoint(None, "/data/dst"), {})
    display.pre_batch(batch)
    try:
        assert display.files_text() == "0 files, listing..."
        contexts = [
            TransferContext(
                "upload",
                Endpoint(None, f"/data/src/dir/f{i}.bin"),
                Endpoint(None, f"/data/dst/dir/f{i}.bin"),
                overwrite=False,
                on_progress=None,
                size=200 * 100,
                batch=batch,
            )
            for i in range(8)
        ]
        for context in contexts:
            display.pre_transfer(context)
        rows = _render(display.files)
        assert [line.split()[0] for line in rows.splitlines()] == [f"dir/f{i}.bin" for i in range(8)]

        def move(context: TransferContext) -> None:
            for _ in range(200):
                context.bytes_transferred += 100
                display.on_chunk(context, 100)

        threads = [threading.Thread(target=move, args=(context,)) for context in contexts]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert display.overall.tasks[0].completed == 8 * 200 * 100
        assert "0 files, listing..." in _render(display.overall)  # the listing has not ended: no total yet

        batch.planned_files, batch.planned_bytes, batch.listing_complete = 8, 8 * 200 * 100, True
        result = TreeResult()
        for i, context in enumerate(contexts):
            display.post_transfer(context)
            outcome = FileOutcome(f"dir/f{i}.bin", "transferred", 20_000, 20_000, "new", attempts=1)
            result.add(outcome)
            display.file_done(outcome)
        assert display.files.tasks == []
        assert display.overall.tasks[0].total == 8 * 200 * 100
        assert display.files_text() == "8/8 files"
        display.post_batch(batch, result)
        assert "100%" in _render(display.overall)
    finally:
        display.stop()
    assert "8/8 files" in console.file.getvalue()  # type: ignore[attr-defined]


def test_display_ignores_other_batches_and_dry_runs():
    console = Console(file=io.StringIO(), width=100, force_terminal=True, color_system=None)
    display = TreeProgress(console, "sync x")
    dry = Batch("download_tree", Endpoint(None, "a"), Endpoint(None, "b"), {"dry_run": True})
    display.pre_batch(dry)
    assert display.files_text() == "0 files, listing..."
    other = Batch("upload_tree", Endpoint(None, "a"), Endpoint(None, "b"), {})
    context = TransferContext(
        "upload", Endpoint(None, "a/x"), Endpoint(None, "b/x"), overwrite=False, on_progress=None, batch=other
    )
    display.pre_transfer(context)  # no display was started: nothing happens
    display.on_chunk(context, 10)
    display.post_transfer(context)
    assert display.files.tasks == []
    display.stop()
    assert console.file.getvalue() == ""  # type: ignore[attr-defined]


def test_summary_counts_the_error_that_ended_the_tree_and_gives_no_rate_without_a_file_written():
    result = TreeResult(failed={"a": OSError("reset")}, bytes_transferred=4096)  # a failed try moved bytes
    result.seconds = 2.0
    line = summary_line("upload", "/src", "s3:dst", result)
    assert line == "upload /src -> s3:dst: 0 transferred, 0 skipped, 1 failed, 0 deleted, 4.0 KiB in 2.00 s"
    listing = PermissionDenied("Permission denied: dst", path="dst")  # raised out of the tree: no file failed
    assert "1 failed" in summary_line("upload", "/src", "s3:dst", TreeResult(), listing)
    assert "0 failed" in summary_line("upload", "/src", "s3:dst", TreeResult(), KeyboardInterrupt())


class _Clock:
    """A clock the test moves: rich's rate and time left from known samples."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_an_interrupted_tree_keeps_its_total_the_bar_is_not_full():
    console = Console(file=io.StringIO(), width=140, force_terminal=True, color_system=None)
    display = TreeProgress(console, "upload src")
    batch = Batch("upload_tree", Endpoint(None, "/data/src"), Endpoint(None, "/data/dst"), {})
    display.pre_batch(batch)
    try:
        batch.planned_files, batch.planned_bytes, batch.listing_complete = 10, 1000, True
        display.overall.advance(display._task, 400)
        result = TreeResult(transferred=[f"f{i}" for i in range(4)], bytes_transferred=400)
        batch.error = KeyboardInterrupt()  # Ctrl-C between two files: no file failed
        display.post_batch(batch, result)
        assert display.overall.tasks[0].total == 1000
        assert "40%" in _render(display.overall)
        assert "100%" not in _render(display.overall)
    finally:
        display.stop(interrupted=True)


def test_the_source_counter_sizes_the_bar_before_the_listing_ends_and_an_eta_shows(tmp_path: Path):
    for i in range(30):
        (tmp_path / f"f{i:02d}.bin").write_bytes(b"x" * 100)
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "skip.tmp").write_bytes(b"t" * 5000)  # excluded: the tree's own filter
    clock = _Clock()
    console = Console(file=io.StringIO(), width=140, force_terminal=True, color_system=None, get_time=clock)
    display = TreeProgress(console, "upload src")
    batch = Batch("upload_tree", Endpoint(None, str(tmp_path)), Endpoint(None, "/data/dst"), {})
    display.pre_batch(batch)
    counter = SourceCounter(display, str(tmp_path), [], ["*.tmp"], follow_symlinks=False, every=7)
    try:
        assert display.overall.tasks[0].total is None
        counter.start()
        counter.join()
        assert not batch.listing_complete  # the tree's own listing has not ended: the count sized the bar
        assert display.overall.tasks[0].total == 3000
        assert display.files_text() == "0/30 files"
        display.file_done(FileOutcome("f00.bin", "skipped", size=100, reason="unchanged"))  # it will not move
        assert display.overall.tasks[0].total == 2900
        assert display.files_text() == "0/29 files"
        display.overall.advance(display._task, 500)
        clock.now = 1.0
        display.overall.advance(display._task, 500)  # rich's rate: 500 B/s; 1900 bytes left: 4 s
        overall = _render(display.overall)
        assert "-:--:--" not in overall, overall
        assert "34% 1.0/2.8 KiB 500 B/s 0:00:04 0/29 files" in overall, overall
    finally:
        counter.stop()
        display.stop()


def test_the_source_counter_stops_when_asked(tmp_path: Path):
    for i in range(200):
        (tmp_path / f"f{i:03d}").write_bytes(b"")
    console = Console(file=io.StringIO(), width=140, force_terminal=True, color_system=None)
    display = TreeProgress(console, "upload src")
    counter = SourceCounter(display, str(tmp_path), [], [], follow_symlinks=False)
    counter.start()
    counter.stop()  # returns once the thread has ended, whether or not it had counted to the end
    assert not counter._thread.is_alive()
