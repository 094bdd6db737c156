"""What moves: ``update``, ``checksum``, modification times, ``delete`` and ``dry_run``, over every store kind."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from storekit import STORE_KINDS
from treekit import (
    BatchRecorder,
    Deny,
    Outcomes,
    StoreMaker,
    all_names,
    join,
    mtime_of,
    read_local,
    read_store,
    set_mtime,
    write_local,
    write_store,
)

from remote_store_transfer import TransferDenied, TransferManager, download_tree, transfer_tree, upload_tree

T0 = 1_700_000_000.0
"""A modification time well in the past (Nov 2023) for the source files."""

NESTED = {
    "a.txt": b"alpha-1\n",
    "b.txt": b"bravo-22\n",
    "sub/c.txt": b"charlie-333\n",
    "sub/deep/d.txt": b"delta-4444\n",
}


@pytest.fixture
def stores(make_store, request: pytest.FixtureRequest):
    maker = StoreMaker(make_store, request)
    yield maker
    maker.close()


def source(tmp_path: Path, files: dict[str, bytes], mtime: float = T0) -> Path:
    """A local source folder holding *files*, every one modified at *mtime*."""
    root = write_local(tmp_path / "src", files)
    for rel in files:
        set_mtime(root, rel, mtime)
    return root


def same_size_change(root: Path, rel: str) -> bytes:
    """Change the bytes of *rel* without changing its size or its modification time; return the new bytes."""
    path = root.joinpath(*rel.split("/"))
    old, mtime = path.read_bytes(), path.stat().st_mtime
    new = old.upper() if old.upper() != old else old[::-1]
    assert len(new) == len(old)
    assert new != old
    path.write_bytes(new)
    set_mtime(root, rel, mtime)
    return new


# region: update


@pytest.mark.parametrize("kind", STORE_KINDS)
def test_update_missing_skips_existing_files_and_resumes(kind: str, stores, tmp_path: Path) -> None:
    """Default update: files already there are skipped and never overwritten; a re-run picks up only the rest."""
    files = NESTED
    src = source(tmp_path, files)
    store = stores(kind)
    write_store(store, "dst", {"a.txt": b"OLD a, another size", "sub/c.txt": b"OLD c"})  # a half-done earlier run

    first = upload_tree(store, src, "dst")

    assert sorted(first.transferred) == ["b.txt", "sub/deep/d.txt"]
    assert sorted(first.skipped) == ["a.txt", "sub/c.txt"]
    assert first.reasons == {"a.txt": "exists", "sub/c.txt": "exists"}
    assert read_store(store, "dst") == {**files, "a.txt": b"OLD a, another size", "sub/c.txt": b"OLD c"}

    again = upload_tree(store, src, "dst")
    assert again.transferred == []
    assert sorted(again.skipped) == sorted(files)


@pytest.mark.parametrize("kind", STORE_KINDS)
def test_update_changed_replaces_a_file_whose_size_differs(kind: str, stores, tmp_path: Path) -> None:
    src = source(tmp_path, NESTED)
    store = stores(kind)
    write_store(store, "dst", {"a.txt": b"OLD, another size", "b.txt": NESTED["b.txt"]})
    outcomes = Outcomes()

    result = upload_tree(store, src, "dst", update="changed", on_file=outcomes)

    assert "a.txt" in result.transferred
    assert outcomes.by_path()["a.txt"].reason == "size differs"
    assert read_store(store, "dst") == NESTED


@pytest.mark.parametrize("kind", STORE_KINDS)
def test_update_changed_replaces_a_same_size_file_with_a_newer_source_time(kind: str, stores, tmp_path: Path) -> None:
    """Same size, the source modified after the destination was written (and after its kept time): replaced."""
    src = source(tmp_path, NESTED)
    store = stores(kind)
    assert upload_tree(store, src, "dst").ok
    new = same_size_change(src, "sub/c.txt")
    set_mtime(src, "sub/c.txt", time.time() + 3600)  # newer than the kept time and than the write time

    result = upload_tree(store, src, "dst", update="changed")

    assert result.transferred == ["sub/c.txt"]
    assert sorted(result.skipped) == ["a.txt", "b.txt", "sub/deep/d.txt"]
    assert read_store(store, "dst") == {**NESTED, "sub/c.txt": new}


@pytest.mark.parametrize("kind", STORE_KINDS)
def test_update_changed_with_and_without_checksum(kind: str, stores, tmp_path: Path) -> None:
    """Same size, same time, other bytes: skipped by times, replaced by checksum=True; identical files skipped."""
    src = source(tmp_path, NESTED)
    store = stores(kind)
    assert upload_tree(store, src, "dst").ok
    new = same_size_change(src, "b.txt")

    by_time = upload_tree(store, src, "dst", update="changed")
    assert by_time.transferred == []
    assert sorted(by_time.skipped) == sorted(NESTED)
    assert set(by_time.reasons.values()) == {"unchanged"}
    assert read_store(store, "dst")["b.txt"] == NESTED["b.txt"]

    by_content = upload_tree(store, src, "dst", update="changed", checksum=True)
    assert by_content.transferred == ["b.txt"]
    assert sorted(by_content.skipped) == ["a.txt", "sub/c.txt", "sub/deep/d.txt"]
    assert all(reason.startswith("same") for reason in by_content.reasons.values()), by_content.reasons
    assert read_store(store, "dst") == {**NESTED, "b.txt": new}


@pytest.mark.parametrize("kind", STORE_KINDS)
def test_update_all_writes_everything(kind: str, stores, tmp_path: Path) -> None:
    src = source(tmp_path, NESTED)
    store = stores(kind)
    assert upload_tree(store, src, "dst").ok
    new = same_size_change(src, "a.txt")

    result = upload_tree(store, src, "dst", update="all")

    assert sorted(result.transferred) == sorted(NESTED)
    assert result.skipped == []
    assert result.bytes_transferred == sum(map(len, NESTED.values()))
    assert read_store(store, "dst") == {**NESTED, "a.txt": new}


def test_update_changed_on_a_local_destination(stores, tmp_path: Path) -> None:
    """download_tree(update="changed"): the local file's own time is compared, in both directions."""
    store = stores("memory")
    src = source(tmp_path, NESTED)
    assert upload_tree(store, src, "p").ok
    out = tmp_path / "out"
    assert download_tree(store, "p", out).ok
    set_mtime(out, "a.txt", T0 - 1000)  # the local copy looks older than the source's kept time
    (out / "b.txt").write_bytes(b"BRAVO-22\n")  # same size, local time moved to now
    (out / "sub" / "c.txt").write_bytes(b"short")

    result = download_tree(store, "p", out, update="changed")

    assert sorted(result.transferred) == ["a.txt", "b.txt", "sub/c.txt"]
    assert result.skipped == ["sub/deep/d.txt"]
    assert read_local(out) == NESTED


# endregion

# region: modification times


@pytest.mark.parametrize("kind", STORE_KINDS)
def test_download_tree_sets_the_source_modification_time(kind: str, stores, tmp_path: Path) -> None:
    """Each local file gets the source's time: its kept mtime when the store keeps one, else the store's time.

    ENGINE BUG on S3 (fails): the time comes from the listing, which on S3
    carries no user metadata; see test_kept_times_travel_on_from_a_store_source.
    """
    files = NESTED
    store = stores(kind)
    src = source(tmp_path, files)
    assert upload_tree(store, src, "p").ok
    out = tmp_path / "out"

    assert download_tree(store, "p", out).ok

    for rel in files:
        info = store.get_file_info(join("p", rel))
        kept = (info.metadata or {}).get("mtime")
        expected = float(kept) if kept is not None else info.modified_at.timestamp()
        if kind in ("memory", "s3"):  # stores with user metadata keep the source's time
            assert expected == pytest.approx(T0, abs=1e-6)
        assert mtime_of(out, rel) == pytest.approx(expected, abs=1e-6), rel


@pytest.mark.parametrize("kind", ["memory", "s3"])
def test_upload_tree_keeps_mtime_in_user_metadata(kind: str, stores, tmp_path: Path) -> None:
    src = write_local(tmp_path / "src", NESTED)
    exact_ns = 1_600_000_000_123_456_789
    os.utime(src / "sub" / "c.txt", ns=(exact_ns, exact_ns))
    set_mtime(src, "a.txt", T0)
    store = stores(kind)

    assert upload_tree(store, src, "p").ok

    for rel in NESTED:
        kept = store.get_file_info(join("p", rel)).metadata["mtime"]
        assert kept.count(".") == 1
        assert len(kept.split(".")[1]) == 9  # seconds with nine decimals, as rclone writes them
        assert float(kept) == pytest.approx(mtime_of(src, rel), abs=1e-6), rel
    assert store.get_file_info("p/a.txt").metadata["mtime"] == "1700000000.000000000"
    assert store.get_file_info("p/sub/c.txt").metadata["mtime"].startswith("1600000000.123456")


@pytest.mark.parametrize("kind", ["memory", "s3"])
def test_kept_times_travel_on_from_a_store_source(kind: str, stores, tmp_path: Path) -> None:
    """A store that keeps the source's time hands it on: to the next store, to a local copy.

    ENGINE BUG on S3: a store source's time is taken from its listing
    (``walk.store_entry``), and S3 listings carry no user metadata, so
    transfer_tree writes the object's *write time* as the next store's
    ``mtime`` and download_tree stamps the local copy with it. The copy then
    differs in time from the original: uploading it back with
    update="changed" moves every file again.
    """
    src = source(tmp_path, NESTED)
    store = stores(kind)
    assert upload_tree(store, src, "p").ok
    assert float(store.get_file_info("p/a.txt").metadata["mtime"]) == T0

    out = tmp_path / "copy"
    assert download_tree(store, "p", out).ok
    assert {rel: mtime_of(out, rel) for rel in NESTED} == dict.fromkeys(NESTED, T0)

    other = stores("memory")
    assert transfer_tree(store, "p", other, "q").ok
    assert {rel: float(other.get_file_info(join("q", rel)).metadata["mtime"]) for rel in NESTED} == dict.fromkeys(
        NESTED, T0
    )

    back = upload_tree(store, out, "p", update="changed")  # the copy is the same tree: nothing to move
    assert back.transferred == []


@pytest.mark.parametrize("kind", STORE_KINDS)
def test_a_sync_of_a_sync_moves_nothing(kind: str, stores, tmp_path: Path) -> None:
    files = NESTED
    src = source(tmp_path, files)
    store = stores(kind)

    assert sorted(upload_tree(store, src, "p").transferred) == sorted(files)
    again = upload_tree(store, src, "p", update="changed")
    assert again.transferred == []
    assert sorted(again.skipped) == sorted(files)

    out = tmp_path / "back"
    assert sorted(download_tree(store, "p", out).transferred) == sorted(files)
    back = download_tree(store, "p", out, update="changed")
    assert back.transferred == []
    assert sorted(back.skipped) == sorted(files)
    assert read_local(out) == files

    copy = stores("memory")
    assert transfer_tree(store, "p", copy, "c").ok
    across = transfer_tree(store, "p", copy, "c", update="changed")
    assert across.transferred == []
    assert sorted(across.skipped) == sorted(files)


@pytest.mark.parametrize(
    ("kind", "shift"),
    [
        ("memory", -1000.0),  # a kept time: a change in either direction is found
        ("memory", 3600.0),
        ("s3", -1000.0),  # the listing has no metadata: one HEAD per same-size file reads the kept time
        ("s3", 3600.0),
        ("local", 3600.0),  # no kept time: found when newer than the time the destination was written
        ("sftp", 3600.0),
    ],
)
def test_a_same_size_change_with_a_moved_time_is_found(kind: str, shift: float, stores, tmp_path: Path) -> None:
    src = source(tmp_path, NESTED)
    store = stores(kind)
    assert upload_tree(store, src, "p").ok
    new = same_size_change(src, "sub/deep/d.txt")
    moved = (time.time() if shift > 0 else T0) + shift
    set_mtime(src, "sub/deep/d.txt", moved)
    outcomes = Outcomes()

    result = upload_tree(store, src, "p", update="changed", on_file=outcomes)

    assert result.transferred == ["sub/deep/d.txt"]
    assert outcomes.by_path()["sub/deep/d.txt"].reason in ("modified", "newer")
    assert read_store(store, "p") == {**NESTED, "sub/deep/d.txt": new}
    if kind in ("memory", "s3"):
        assert float(store.get_file_info("p/sub/deep/d.txt").metadata["mtime"]) == pytest.approx(moved, abs=1e-6)


# endregion

# region: delete


@pytest.mark.parametrize("kind", STORE_KINDS)
def test_delete_removes_extra_files_but_not_excluded_ones(kind: str, stores, tmp_path: Path) -> None:
    files = {**NESTED, "skip.log": b"excluded at the source"}
    src = source(tmp_path, files)
    store = stores(kind)
    write_store(store, "", {"outside.txt": b"outside the prefix", "dstx/other.txt": b"a sibling prefix"})
    write_store(store, "dst", {"old.txt": b"extra", "sub/old.txt": b"extra", "keep.log": b"excluded extra"})
    outcomes = Outcomes()

    result = upload_tree(store, src, "dst", delete=True, max_delete=None, exclude=["*.log"], on_file=outcomes)

    assert sorted(result.transferred) == sorted(NESTED)
    assert sorted(result.deleted) == ["old.txt", "sub/old.txt"]
    assert read_store(store, "dst") == {**NESTED, "keep.log": b"excluded extra"}
    assert store.read_bytes("outside.txt") == b"outside the prefix"
    assert store.read_bytes("dstx/other.txt") == b"a sibling prefix"
    assert {o.path for o in outcomes.all if o.status == "deleted"} == {"old.txt", "sub/old.txt"}


def test_delete_on_a_local_destination(stores, tmp_path: Path) -> None:
    store = stores("memory")
    write_store(store, "p", NESTED)
    out = write_local(tmp_path / "out", {"extra.txt": b"x", "sub/extra.txt": b"y", "a.txt": NESTED["a.txt"]})

    result = download_tree(store, "p", out, delete=True, max_delete=None)

    assert sorted(result.deleted) == ["extra.txt", "sub/extra.txt"]
    assert result.skipped == ["a.txt"]
    assert read_local(out) == NESTED


@pytest.mark.parametrize("direction", ["upload", "download"])
def test_nothing_is_deleted_when_a_file_failed(direction: str, stores, tmp_path: Path) -> None:
    store = stores("memory")
    deny = Deny(["b.txt"], lambda: TransferDenied("test", "b.txt is not allowed"))
    manager = TransferManager([deny])
    extras = {"old.txt": b"extra", "sub/old.txt": b"extra"}

    if direction == "upload":
        src = source(tmp_path, NESTED)
        write_store(store, "dst", extras)
        result = manager.upload_tree(store, src, "dst", delete=True)
        left = read_store(store, "dst")
    else:
        write_store(store, "p", NESTED)
        out = write_local(tmp_path / "out", extras)
        result = manager.download_tree(store, "p", out, delete=True)
        left = read_local(out)

    assert list(result.failed) == ["b.txt"]
    assert isinstance(result.failed["b.txt"], TransferDenied)
    assert not result.ok
    assert result.deleted == []
    assert sorted(result.transferred) == ["a.txt", "sub/c.txt", "sub/deep/d.txt"]
    assert left == {**extras, **{k: v for k, v in NESTED.items() if k != "b.txt"}}


@pytest.mark.parametrize("source_kind", ["empty folder", "mistyped prefix"])
def test_an_empty_source_deletes_nothing(source_kind: str, stores, tmp_path: Path) -> None:
    """delete=True with a source that holds no file: a failure under "", and the destination is kept whole."""
    store = stores("memory")
    write_store(store, "dst", NESTED)
    if source_kind == "empty folder":
        empty = tmp_path / "empty"
        empty.mkdir()
        result = upload_tree(store, empty, "dst", delete=True)
    else:
        source_store = stores("memory")
        write_store(source_store, "data", NESTED)
        result = transfer_tree(source_store, "dat", store, "dst", delete=True)  # "dat": a typo

    assert read_store(store, "dst") == NESTED
    assert result.deleted == []
    assert list(result.failed) == [""]
    assert not result.ok


# endregion

# region: dry run


@pytest.mark.parametrize("kind", STORE_KINDS)
def test_dry_run_changes_nothing_and_reports_the_plan(kind: str, stores, tmp_path: Path) -> None:
    files = NESTED
    src = source(tmp_path, files)
    store = stores(kind)
    names = sorted(files)
    same, bigger = names[0], names[1]
    write_store(store, "dst", {same: b"OLD!", "extra.txt": b"to delete"})
    assert upload_tree(store, src, "dst", include=[same], update="all").ok
    write_store(store, "dst", {bigger: b"OLD, and not the same size at all"})
    before = read_store(store)
    recorder = BatchRecorder()
    outcomes = Outcomes()
    manager = TransferManager([recorder])

    result = manager.upload_tree(store, src, "dst", update="changed", delete=True, dry_run=True, on_file=outcomes)

    assert read_store(store) == before  # byte for byte
    assert result.dry_run is True
    assert sorted(result.transferred) == names[1:]
    assert result.skipped == [same]
    assert result.deleted == ["extra.txt"]
    assert result.bytes_transferred == sum(len(files[n]) for n in names[1:])
    assert recorder.pre == []  # no file was started
    assert len(recorder.batches) == len(recorder.ended) == 1
    batch = recorder.batches[0]
    assert batch.dry_run is True
    assert recorder.plans[0] is result  # pre_batch saw the whole plan
    # ENGINE BUG on S3 (fails): a same-size file whose kept time needs a HEAD is counted in planned_files
    # (engine.py _Tree.items) before the check in the worker skips it, so pre_batch is told 4 files, the plan holds 3.
    assert batch.planned_files == len(names) - 1
    assert batch.planned_bytes == result.bytes_transferred
    assert sorted(o.path for o in outcomes.all) == sorted([*names, "extra.txt"])
    assert all(o.dry_run for o in outcomes.all)
    assert {o.path: o.status for o in outcomes.all}["extra.txt"] == "deleted"


def test_dry_run_download_creates_nothing(stores, tmp_path: Path) -> None:
    store = stores("memory")
    write_store(store, "p", NESTED)
    out = write_local(tmp_path / "out", {"a.txt": b"OLD", "extra/x.txt": b"x"})
    set_mtime(out, "a.txt", T0)
    names, data = all_names(out), read_local(out)
    mtimes = {rel: mtime_of(out, rel) for rel in data}

    result = download_tree(store, "p", out, dry_run=True, delete=True, update="all")

    assert all_names(out) == names  # not even a folder was made
    assert read_local(out) == data
    assert {rel: mtime_of(out, rel) for rel in data} == mtimes
    assert sorted(result.transferred) == sorted(NESTED)
    assert result.deleted == ["extra/x.txt"]
    assert result.dry_run is True

    missing = tmp_path / "never-made"
    planned = download_tree(store, "p", missing, dry_run=True)
    assert sorted(planned.transferred) == sorted(NESTED)
    assert not missing.exists()


# endregion
