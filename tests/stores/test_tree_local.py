"""Local folders as they are: symbolic links, loops, FIFOs, dangling links, empty folders, links at the destination."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from remote_store import Store
from remote_store.backends import MemoryBackend
from treekit import StoreMaker, all_names, read_local, read_store, write_local, write_store

from remote_store_transfer import download_tree, upload_tree

FILES = {"real.txt": b"the real file\n", "realdir/x.txt": b"inside the real folder\n", "top.txt": b"top\n"}


@pytest.fixture
def stores(make_store, request: pytest.FixtureRequest):
    maker = StoreMaker(make_store, request)
    yield maker
    maker.close()


def with_links(tmp_path: Path) -> Path:
    src = write_local(tmp_path / "src", FILES)
    (src / "link.txt").symlink_to("real.txt")
    (src / "linkdir").symlink_to("realdir", target_is_directory=True)
    return src


def test_symlinks_are_skipped_by_default(tmp_path: Path) -> None:
    src = with_links(tmp_path)
    store = Store(backend=MemoryBackend())

    result = upload_tree(store, src, "dst")

    assert read_store(store, "dst") == FILES
    assert sorted(result.transferred) == sorted(FILES)
    assert "link.txt" in result.skipped
    assert result.reasons["link.txt"] == "symlink"
    every_path = [*result.transferred, *result.skipped, *result.failed, *result.deleted]
    assert not any(p.startswith("linkdir/") for p in every_path)  # a link to a folder is not entered


def test_symlinks_are_followed_on_request(tmp_path: Path) -> None:
    src = with_links(tmp_path)
    store = Store(backend=MemoryBackend())

    result = upload_tree(store, src, "dst", follow_symlinks=True)

    expected = {**FILES, "link.txt": FILES["real.txt"], "linkdir/x.txt": FILES["realdir/x.txt"]}
    assert read_store(store, "dst") == expected
    assert sorted(result.transferred) == sorted(expected)
    assert result.skipped == []


def test_a_symlink_loop_ends_when_followed(tmp_path: Path) -> None:
    src = write_local(tmp_path / "src", {"a.txt": b"a", "sub/b.txt": b"b"})
    (src / "sub" / "up").symlink_to("..", target_is_directory=True)  # back to the top
    (src / "self").symlink_to(".", target_is_directory=True)  # to itself
    store = Store(backend=MemoryBackend())

    result = upload_tree(store, src, "dst", follow_symlinks=True)

    assert read_store(store, "dst") == {"a.txt": b"a", "sub/b.txt": b"b"}
    assert sorted(result.skipped) == ["self", "sub/up"]
    assert result.reasons == {"self": "symlink loop", "sub/up": "symlink loop"}
    assert result.ok


@pytest.mark.parametrize("follow", [False, True])
def test_a_fifo_is_skipped_with_a_reason(follow: bool, tmp_path: Path) -> None:
    src = write_local(tmp_path / "src", {"a.txt": b"a"})
    os.mkfifo(src / "pipe")  # opening it would block: it must never be opened
    store = Store(backend=MemoryBackend())

    result = upload_tree(store, src, "dst", follow_symlinks=follow)

    assert result.transferred == ["a.txt"]
    assert result.skipped == ["pipe"]
    assert result.reasons["pipe"] == "special file (FIFO)"
    assert read_store(store, "dst") == {"a.txt": b"a"}


def test_a_dangling_symlink_fails_when_followed(tmp_path: Path) -> None:
    src = write_local(tmp_path / "src", {"a.txt": b"a"})
    (src / "dangling.txt").symlink_to("nowhere.txt")
    store = Store(backend=MemoryBackend())

    skipped = upload_tree(store, src, "dst")
    assert skipped.reasons == {"dangling.txt": "symlink"}
    assert skipped.ok

    followed = upload_tree(store, src, "dst2", follow_symlinks=True)
    assert list(followed.failed) == ["dangling.txt"]
    assert isinstance(followed.failed["dangling.txt"], FileNotFoundError)
    assert not followed.ok
    assert followed.transferred == ["a.txt"]
    assert read_store(store, "dst2") == {"a.txt": b"a"}


@pytest.mark.parametrize("kind", ["memory", "s3", "local"])
def test_empty_folders_are_not_recreated(kind: str, stores, tmp_path: Path) -> None:
    src = write_local(tmp_path / "src", {"a.txt": b"a", "full/b.txt": b"b"})
    (src / "empty").mkdir()
    (src / "full" / "empty too" / "deeper").mkdir(parents=True)
    store = stores(kind)

    result = upload_tree(store, src, "dst")

    assert sorted(result.transferred) == ["a.txt", "full/b.txt"]
    assert read_store(store, "dst") == {"a.txt": b"a", "full/b.txt": b"b"}
    assert not store.exists("dst/empty")
    assert not store.exists("dst/full/empty too")
    assert sorted(str(f.path) for f in store.list_folders("dst")) in (["dst/full"], ["full"])


def test_download_tree_creates_only_folders_that_hold_files(tmp_path: Path) -> None:
    store = Store(backend=MemoryBackend())
    write_store(store, "p", {"a/b/c/d.txt": b"d", "e.txt": b"e"})
    out = tmp_path / "out"
    assert download_tree(store, "p", out).ok
    assert all_names(out) == ["a", "a/b", "a/b/c", "a/b/c/d.txt", "e.txt"]


@pytest.mark.parametrize("update", ["missing", "changed", "all"])
def test_a_symlink_at_the_local_destination_is_never_written_through(update: str, tmp_path: Path) -> None:
    store = Store(backend=MemoryBackend())
    write_store(store, "p", {"a.txt": b"from the store", "b.txt": b"b"})
    outside = write_local(tmp_path / "outside", {"target.txt": b"must stay as it is"})
    out = tmp_path / "out"
    out.mkdir()
    (out / "a.txt").symlink_to(outside / "target.txt")

    result = download_tree(store, "p", out, update=update)

    assert result.skipped == ["a.txt"]
    assert result.reasons["a.txt"] == "destination is a symlink"
    assert (outside / "target.txt").read_bytes() == b"must stay as it is"
    assert (out / "a.txt").is_symlink()
    assert read_local(out) == {"b.txt": b"b"}
