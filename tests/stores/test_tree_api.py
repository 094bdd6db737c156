"""Trees through the public API: round trips over every store kind, the hooks around them, refusals, scale.

``upload_tree`` / ``download_tree`` / ``transfer_tree`` (module functions and
``TransferManager`` methods) over memory, local, S3 (moto) and SFTP (OpenSSH)
stores: every file reaches the same relative path with the same bytes; the
batch hooks frame the tree; bad calls fail before anything moves.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest
from remote_store import RetryPolicy, Store
from remote_store.backends import LocalBackend, MemoryBackend
from storekit import STORE_KINDS
from treekit import TREE, BatchRecorder, StoreMaker, read_local, read_store, write_local, write_store

from remote_store_transfer import (
    TransferManager,
    TreeOverlapError,
    TreeResult,
    download_tree,
    hookimpl,
    transfer_tree,
    upload_tree,
)

TOTAL = sum(len(v) for v in TREE.values())


class Boom(Exception):
    """What a vetoing plugin raises."""


def assert_clean(result: TreeResult, transferred: set[str]) -> None:
    assert result.ok, result.failed
    assert sorted(result.transferred) == sorted(transferred)
    assert len(result.transferred) == len(set(result.transferred))
    assert result.skipped == []
    assert result.deleted == []
    assert result.dry_run is False
    assert all("\\" not in p and not p.startswith("/") for p in result.transferred)


@pytest.fixture
def stores(make_store, request: pytest.FixtureRequest):
    maker = StoreMaker(make_store, request)
    yield maker
    maker.close()


# region: round trips


@pytest.mark.parametrize("kind", STORE_KINDS)
def test_round_trip_every_file_to_the_same_relative_path(kind: str, stores, tmp_path: Path) -> None:
    """upload_tree, transfer_tree to a second store, download_tree to a folder that does not exist yet: same bytes."""
    src = write_local(tmp_path / "src", TREE)
    store, other = stores(kind, 0), stores(kind, 1)

    up = upload_tree(store, src, "up/tree")
    assert_clean(up, set(TREE))
    assert up.bytes_transferred == TOTAL
    assert read_store(store, "up/tree") == TREE
    assert "sub/deeper/still/d d.txt" in up.transferred  # "/"-separated relative paths

    across = transfer_tree(store, "up/tree", other, "copy/here", max_workers=3)
    assert_clean(across, set(TREE))
    assert read_store(other, "copy/here") == TREE

    target = tmp_path / "down" / "not" / "yet"
    down = download_tree(other, "copy/here", target)
    assert_clean(down, set(TREE))
    assert down.bytes_transferred == TOTAL
    assert read_local(target) == TREE
    assert (target / "sub" / "deeper" / "still").is_dir()  # local folders were made


@pytest.mark.parametrize("operation", ["upload_tree", "download_tree", "sftp_to_sftp", "same_backend"])
def test_sftp_stores_under_many_workers(operation: str, ssh_server, tmp_path: Path) -> None:
    """An SFTP backend is one connection, not thread-safe: a tree over it must still move every file intact.

    Regression: the workers (max_workers=8) and the lazy source listing in
    the caller's thread used one SFTP connection at once; requests stalled
    until ``io_timeout`` and every file failed (BackendUnavailable: SFTP
    channel stalled), and a connection that cannot be remade stayed dead.
    The backends here have a short ``io_timeout`` and no connect retry, so a
    regression fails in seconds, and their own connections, so it never
    takes down the session's SFTP stores.
    """
    files = {
        f"d{i}/sub{j}/f{k}.txt": f"{i}-{j}-{k}\n".encode() * 50 for i in range(4) for j in range(3) for k in range(3)
    }
    backends = [ssh_server.backend(io_timeout=5.0, retry=RetryPolicy(max_attempts=1)) for _ in range(2)]
    a, b = (Store(backend=backend).child(f"t-{uuid.uuid4().hex[:12]}") for backend in backends)
    try:
        if operation == "upload_tree":
            result = upload_tree(a, write_local(tmp_path / "src", files), "up", max_workers=8, retries=0)
            landed = read_store(a, "up")
        elif operation == "download_tree":
            write_store(a, "src", files)
            result = download_tree(a, "src", tmp_path / "out", max_workers=8, retries=0)
            landed = read_local(tmp_path / "out")
        elif operation == "sftp_to_sftp":  # two connections, each used by many threads
            write_store(a, "src", files)
            result = transfer_tree(a, "src", b, "dst", max_workers=8, retries=0)
            landed = read_store(b, "dst")
        else:  # two Store objects over one backend (one connection)
            write_store(a, "src", files)
            result = transfer_tree(a.child("src"), "", a.child("dst"), "", max_workers=8, retries=0)
            landed = read_store(a, "dst")
        assert result.ok, result.failed
        assert sorted(result.transferred) == sorted(files)
        assert landed == files
    finally:
        for backend in backends:
            Store(backend=backend).close()


def test_round_trip_through_manager_methods(tmp_path: Path) -> None:
    """The TransferManager methods do what the module functions do."""
    src = write_local(tmp_path / "src", TREE)
    manager = TransferManager()
    a, b = Store(backend=MemoryBackend()), Store(backend=MemoryBackend())
    assert_clean(manager.upload_tree(a, src, ""), set(TREE))
    assert_clean(manager.transfer_tree(a, "", b, "x"), set(TREE))
    assert_clean(manager.download_tree(b, "x", tmp_path / "out"), set(TREE))
    assert read_local(tmp_path / "out") == TREE


def test_store_prefix_with_slashes_and_missing_source_prefix(tmp_path: Path) -> None:
    """Leading/trailing slashes in a prefix mean the same prefix; an absent source prefix is an empty tree."""
    store = Store(backend=MemoryBackend())
    write_store(store, "p/q", {"f.txt": b"1", "g/h.txt": b"22"})
    out = Store(backend=MemoryBackend())
    result = transfer_tree(store, "/p/q/", out, "/r/")
    assert sorted(result.transferred) == ["f.txt", "g/h.txt"]
    assert read_store(out, "r") == {"f.txt": b"1", "g/h.txt": b"22"}

    empty = transfer_tree(store, "nothing/here", out, "r2")
    assert empty.ok
    assert empty.transferred == empty.skipped == []
    assert read_store(out, "r2") == {}


# endregion

# region: the batch hooks


def test_hooks_once_per_file_and_once_per_tree(tmp_path: Path) -> None:
    """One pre/post_transfer per transferred file, one pre/post_batch per tree; every context carries the batch."""
    src = write_local(tmp_path / "src", TREE)
    store = Store(backend=MemoryBackend())
    write_store(store, "dst", {"a.txt": b"already there"})  # skipped: no hook for it
    recorder = BatchRecorder()
    manager = TransferManager([recorder])

    result = manager.upload_tree(store, src, "dst", max_workers=4)

    assert result.skipped == ["a.txt"]
    assert len(result.transferred) == len(TREE) - 1
    assert len(recorder.batches) == 1
    assert len(recorder.ended) == 1
    batch = recorder.batches[0]
    assert recorder.ended[0][0] is batch
    assert recorder.ended[0][1] is result
    assert result.batch_id == batch.id
    assert batch.operation == "upload_tree"
    assert batch.listing_complete is True
    assert batch.planned_files == len(TREE) - 1
    assert batch.planned_bytes == TOTAL - len(TREE["a.txt"])
    assert len(recorder.pre) == len(recorder.post) == len(result.transferred)
    assert all(context.batch is batch for context in recorder.pre)
    assert all(error is None for _, error in recorder.post)
    assert sorted(p.removeprefix("dst/") for p in recorder.pre_paths()) == sorted(result.transferred)


@pytest.mark.parametrize("operation", ["upload_tree", "download_tree", "transfer_tree"])
def test_pre_batch_veto_moves_nothing(operation: str, tmp_path: Path) -> None:
    """A pre_batch that raises: nothing written, post_batch still once, the same exception reaches the caller."""
    error = Boom("not today")
    seen: list[TreeResult] = []

    class Veto:
        @hookimpl
        def pre_batch(self) -> None:
            raise error

        @hookimpl
        def post_batch(self, result: TreeResult) -> None:
            seen.append(result)

    recorder = BatchRecorder()
    manager = TransferManager([recorder, Veto()])  # Veto runs first (last registered)
    src_dir = write_local(tmp_path / "src", TREE)
    src, dst = Store(backend=MemoryBackend()), Store(backend=MemoryBackend())
    write_store(src, "", TREE)
    out = tmp_path / "out"

    calls = {
        "upload_tree": lambda: manager.upload_tree(dst, src_dir, ""),
        "download_tree": lambda: manager.download_tree(src, "", out),
        "transfer_tree": lambda: manager.transfer_tree(src, "", dst, ""),
    }
    with pytest.raises(Boom) as raised:
        calls[operation]()

    assert raised.value is error
    assert read_store(dst) == {}
    assert not out.exists() or read_local(out) == {}
    assert recorder.pre == []
    assert len(seen) == 1
    assert seen[0].transferred == seen[0].skipped == seen[0].deleted == []
    assert seen[0].failed == {}
    assert len(recorder.ended) == 1


# endregion

# region: refusals before anything moves


class Counting:
    """Counts pre_batch calls: a refused tree never reaches it."""

    def __init__(self) -> None:
        self.batches = 0

    @hookimpl
    def pre_batch(self) -> None:
        self.batches += 1


@pytest.mark.parametrize("kind", STORE_KINDS)
def test_overlap_refused_on_one_store(kind: str, make_store) -> None:
    """Into its own subtree, onto its parent, onto itself, through a child() alias: TreeOverlapError, a ValueError."""
    store = make_store(kind)
    write_store(store, "a", {"x.txt": b"x", "b/y.txt": b"y"})
    before = read_store(store)
    counting = Counting()
    manager = TransferManager([counting])

    cases = [
        (store, "a", store, "a/b"),  # into its own subtree
        (store, "a/b", store, "a"),  # onto its parent
        (store, "a", store, "a"),  # onto itself
        (store, "a", store.child("a"), "b"),  # a child() alias of the same store, inside the source
        (store.child("a"), "", store, "a/c"),  # the source through an alias, the destination inside it
        (store, "", store, "z"),  # the whole store into a prefix of itself
    ]
    for src, src_prefix, dst, dst_prefix in cases:
        with pytest.raises(TreeOverlapError) as raised:
            manager.transfer_tree(src, src_prefix, dst, dst_prefix, update="all", delete=True)
        assert isinstance(raised.value, ValueError)
    assert counting.batches == 0
    assert read_store(store) == before


@pytest.mark.parametrize("kind", ["memory", "local"])
def test_sibling_prefixes_of_one_store_are_not_refused(kind: str, make_store) -> None:
    """'a' and 'ab' share a string prefix but not a folder: allowed."""
    store = make_store(kind)
    write_store(store, "a", {"x.txt": b"x"})
    result = transfer_tree(store, "a", store, "ab")
    assert result.transferred == ["x.txt"]
    assert read_store(store, "ab") == {"x.txt": b"x"}


def test_local_folder_and_local_store_inside_it_are_refused(tmp_path: Path) -> None:
    """A local folder into a local store whose root lies inside it (and the reverse, for download_tree)."""
    src = write_local(tmp_path / "data", {"f.txt": b"f"})
    (src / "inner").mkdir()
    inner_store = Store(backend=LocalBackend(root=str(src / "inner")))
    with pytest.raises(TreeOverlapError):
        upload_tree(inner_store, src, "copy")

    outer_store = Store(backend=LocalBackend(root=str(tmp_path)))
    with pytest.raises(TreeOverlapError):  # the store's prefix "data" is the folder itself, the target is inside
        download_tree(outer_store, "data", src / "sub")
    with pytest.raises(TreeOverlapError):  # a local folder into a prefix of a store rooted above it
        upload_tree(outer_store, src, "data/backup")
    link = tmp_path / "link"
    link.symlink_to(src, target_is_directory=True)
    with pytest.raises(TreeOverlapError):  # through a symlink to the same folder
        upload_tree(Store(backend=LocalBackend(root=str(link))), src, "x")
    assert read_local(src) == {"f.txt": b"f"}


def test_different_memory_stores_with_the_same_prefixes_are_not_refused() -> None:
    a, b = Store(backend=MemoryBackend()), Store(backend=MemoryBackend())
    write_store(a, "p", {"f.txt": b"f"})
    result = transfer_tree(a, "p", b, "p/q")
    assert result.transferred == ["f.txt"]
    assert read_store(b) == {"p/q/f.txt": b"f"}
    result = transfer_tree(a, "p", b, "p")
    assert result.transferred == ["f.txt"]


def test_bad_sources_fail_before_anything_moves(tmp_path: Path) -> None:
    store = Store(backend=MemoryBackend())
    counting = Counting()
    manager = TransferManager([counting])
    with pytest.raises(FileNotFoundError):
        manager.upload_tree(store, tmp_path / "missing", "x")
    a_file = tmp_path / "file.txt"
    a_file.write_bytes(b"not a folder")
    with pytest.raises(NotADirectoryError):
        manager.upload_tree(store, a_file, "x")
    write_store(store, "p", {"f.txt": b"f"})
    with pytest.raises(NotADirectoryError):  # a download onto a file
        manager.download_tree(store, "p", a_file)
    assert counting.batches == 0
    assert read_store(store) == {"p/f.txt": b"f"}
    assert a_file.read_bytes() == b"not a folder"


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("update", "bogus"),
        ("max_workers", 0),
        ("max_workers", -3),
        ("retries", -1),
        ("max_bandwidth", 0),
        ("max_bandwidth", -5.0),
        ("modify_window", -1.0),
    ],
)
def test_bad_option_values_are_value_errors(option: str, value: object, tmp_path: Path) -> None:
    src = write_local(tmp_path / "src", {"f.txt": b"f"})
    store = Store(backend=MemoryBackend())
    counting = Counting()
    with pytest.raises(ValueError, match=option):
        TransferManager([counting]).upload_tree(store, src, "x", **{option: value})
    assert counting.batches == 0
    assert read_store(store) == {}


@pytest.mark.parametrize("update", ["missing", "all"])
def test_checksum_needs_update_changed(update: str, tmp_path: Path) -> None:
    src = write_local(tmp_path / "src", {"f.txt": b"f"})
    with pytest.raises(ValueError, match="checksum"):
        upload_tree(Store(backend=MemoryBackend()), src, "x", checksum=True, update=update)


@pytest.mark.parametrize(
    ("option", "value"),
    [("max_workers", 2.5), ("retries", "3"), ("max_workers", True), ("on_file", 42), ("executor", object())],
)
def test_bad_option_types_are_type_errors(option: str, value: object, tmp_path: Path) -> None:
    src = write_local(tmp_path / "src", {"f.txt": b"f"})
    with pytest.raises(TypeError, match=option):
        upload_tree(Store(backend=MemoryBackend()), src, "x", **{option: value})


# endregion

# region: scale


def test_ten_thousand_small_files_end_to_end(tmp_path: Path) -> None:
    """10,000 small files, memory -> memory, then to a local folder: every one arrives with its bytes."""
    files = {f"d{i % 50:02d}/sub{i % 7}/f{i:05d}.txt": f"file {i}\n".encode() for i in range(10_000)}
    src, dst = Store(backend=MemoryBackend()), Store(backend=MemoryBackend())
    write_store(src, "big", files)

    result = transfer_tree(src, "big", dst, "copy", max_workers=8)
    assert result.ok
    assert len(result.transferred) == 10_000
    assert set(result.transferred) == set(files)
    assert result.bytes_transferred == sum(map(len, files.values()))
    assert read_store(dst, "copy") == files

    again = transfer_tree(src, "big", dst, "copy")
    assert again.transferred == []
    assert len(again.skipped) == 10_000

    some = {k: v for k, v in files.items() if k.startswith("d0")}
    out = tmp_path / "out"
    down = download_tree(dst, "copy", out, include=["d0?/**"])
    assert set(down.transferred) == set(some)
    assert read_local(out) == some
    assert len(os.listdir(out)) == 10
