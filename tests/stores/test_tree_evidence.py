"""Deletes only on evidence: a listing cut short, a missing bucket, ``max_delete``, overlap by place, linked folders.

Against the real moto S3 server where the report used one; ``max_delete`` and
the local-destination rules are the engine's own and run on memory stores.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from remote_store import NotFound, Store
from remote_store.backends import MemoryBackend, S3Backend
from storekit import FaultyS3Backend
from treekit import read_local, read_store, write_local, write_store

from harness import MotoServer
from remote_store_transfer import (
    ContainerNotFound,
    DeleteLimitError,
    SameFileError,
    TreeOverlapError,
    TreeResult,
    download_tree,
    registry_store,
    transfer,
    transfer_tree,
    upload_tree,
)
from remote_store_transfer.locations import physical

SIX = {f"f{i}.txt": f"file {i}\n".encode() for i in range(6)}


def _s3(moto: MotoServer, bucket: str, *, create: bool = True) -> Store:
    """A Store over a new ``S3Backend`` object on *bucket* (made unless *create* is false)."""
    if create:
        moto.make_bucket(bucket)
    return Store(
        S3Backend(bucket, endpoint_url=moto.endpoint, key="testing", secret="testing", region_name=moto.region)
    )


# region: a listing that raises NotFound part-way


def test_a_listing_that_vanishes_part_way_fails_the_tree_and_deletes_nothing(faulty_store, tmp_path: Path) -> None:
    faulty = faulty_store("s3")
    write_store(faulty.store, "src", SIX)
    out = write_local(tmp_path / "out", SIX)
    assert isinstance(faulty.backend, FaultyS3Backend)
    faulty.backend.list_fails_after = 2  # two files listed, then the next page is gone

    result = download_tree(faulty.store, "src", out, delete=True, max_delete=None)

    assert read_local(out) == SIX  # nothing deleted
    assert result.deleted == []
    assert not result.ok
    assert isinstance(result.failed[""], NotFound)
    assert any("while listing" in note for note in result.failed[""].__notes__)


def test_a_listing_that_vanishes_before_its_first_entry_is_an_empty_source(faulty_store, tmp_path: Path) -> None:
    faulty = faulty_store("s3")
    write_store(faulty.store, "src", SIX)
    assert isinstance(faulty.backend, FaultyS3Backend)
    faulty.backend.list_fails_after = 0

    result = download_tree(faulty.store, "src", tmp_path / "out")

    assert result.ok
    assert result.transferred == []


# endregion

# region: a missing bucket


def test_a_missing_bucket_is_container_not_found(moto_server: MotoServer, tmp_path: Path) -> None:
    missing = _s3(moto_server, "no-such-bucket-lib", create=False)
    out = write_local(tmp_path / "out", SIX)

    result = download_tree(missing, "x", out, delete=True)

    error = result.failed[""]
    assert isinstance(error, ContainerNotFound)
    assert isinstance(error, NotFound)
    assert error.container == "no-such-bucket-lib"
    assert "'no-such-bucket-lib'" in str(error)
    assert read_local(out) == SIX
    assert result.deleted == []


def test_a_missing_bucket_as_the_source_of_a_sync_deletes_nothing(moto_server: MotoServer) -> None:
    missing = _s3(moto_server, "no-such-bucket-sync", create=False)
    dst = _s3(moto_server, "evidence-sync-dst")
    write_store(dst, "copy", SIX)

    result = transfer_tree(missing, "x", dst, "copy", update="changed", delete=True, dry_run=True)
    assert isinstance(result.failed[""], ContainerNotFound)
    result = transfer_tree(missing, "x", dst, "copy", update="changed", delete=True)

    assert isinstance(result.failed[""], ContainerNotFound)
    assert read_store(dst, "copy") == SIX


def test_an_empty_prefix_of_an_existing_bucket_is_an_empty_source(moto_server: MotoServer, tmp_path: Path) -> None:
    store = _s3(moto_server, "evidence-empty")

    result = download_tree(store, "nothing-here", tmp_path / "out")

    assert result.ok
    assert result.failed == {}


# endregion

# region: max_delete


def _mirror(tmp_path: Path, keep: int, **options: Any) -> tuple[Store, Path, TreeResult]:
    """A destination of six files, a source holding *keep* of them: ``delete=True`` would delete 6 - *keep*."""
    store = Store(backend=MemoryBackend())
    write_store(store, "src", dict(list(SIX.items())[:keep]))
    out = write_local(tmp_path / "out", SIX)
    return store, out, download_tree(store, "src", out, delete=True, **options)


def test_max_delete_defaults_to_half_of_the_destination(tmp_path: Path) -> None:
    _, out, result = _mirror(tmp_path, 2)  # 4 of 6 would go

    assert isinstance(result.failed[""], DeleteLimitError)
    error = result.failed[""]
    assert (error.would_delete, error.limit, error.destination_files) == (4, 3, 6)
    message = str(error)
    assert "4 of the 6 files" in message
    assert "max_delete='50%'" in message
    assert "at most 3" in message
    assert "max_delete=None" in message
    assert "--max-delete" in message
    assert read_local(out) == SIX
    assert result.deleted == []


def test_max_delete_at_the_boundary_deletes(tmp_path: Path) -> None:
    _, out, result = _mirror(tmp_path, 3)  # 3 of 6 = 50%: allowed

    assert result.ok
    assert sorted(result.deleted) == ["f3.txt", "f4.txt", "f5.txt"]
    assert sorted(read_local(out)) == ["f0.txt", "f1.txt", "f2.txt"]


@pytest.mark.parametrize(
    ("max_delete", "refused"),
    [(2, True), (3, False), ("49%", True), ("50%", False), ("34%", True), ("100%", False), (None, False)],
)
def test_max_delete_count_and_percentage(max_delete: int | str | None, refused: bool, tmp_path: Path) -> None:
    _, out, result = _mirror(tmp_path, 3, max_delete=max_delete)  # 3 of 6 would go

    if refused:
        assert isinstance(result.failed[""], DeleteLimitError)
        assert read_local(out) == SIX
    else:
        assert result.ok
        assert len(result.deleted) == 3


def test_max_delete_zero_refuses_any_deletion(tmp_path: Path) -> None:
    _, out, result = _mirror(tmp_path, 5, max_delete=0)

    assert isinstance(result.failed[""], DeleteLimitError)
    assert read_local(out) == SIX


def test_a_dry_run_reports_the_refusal(tmp_path: Path) -> None:
    _, out, result = _mirror(tmp_path, 1, dry_run=True)

    assert isinstance(result.failed[""], DeleteLimitError)
    assert result.deleted == []
    assert read_local(out) == SIX


def test_max_delete_counts_only_the_files_the_filters_take(tmp_path: Path) -> None:
    store = Store(backend=MemoryBackend())
    write_store(store, "src", {"a.txt": b"a"})
    logs = {f"{i}.log": b"kept" for i in range(10)}
    out = write_local(tmp_path / "out", {"a.txt": b"a", "b.txt": b"b", "c.txt": b"c", **logs})

    # 2 of the 3 files the filters take would go (67%), though only 2 of all 13
    result = download_tree(store, "src", out, delete=True, exclude=["*.log"])

    error = result.failed[""]
    assert isinstance(error, DeleteLimitError)
    assert (error.would_delete, error.destination_files, error.limit) == (2, 3, 1)
    assert len(read_local(out)) == 13


@pytest.mark.parametrize("bad", [-1, "50", "fifty%", "101%", "-1%", 1.5, True])
def test_a_bad_max_delete_names_the_option(bad: object, tmp_path: Path) -> None:
    store = Store(backend=MemoryBackend())
    with pytest.raises((TypeError, ValueError), match="^max_delete must"):
        upload_tree(store, tmp_path, "dst", delete=True, max_delete=bad)  # type: ignore[arg-type]


def test_max_delete_is_in_the_batch_options(tmp_path: Path) -> None:
    from remote_store_transfer.tree.options import TreeOptions

    assert TreeOptions(max_delete=7).plain()["max_delete"] == 7
    assert TreeOptions().plain()["max_delete"] == "50%"


# endregion

# region: overlap and the same file, by physical place


def test_two_backends_on_one_bucket_overlap(moto_server: MotoServer) -> None:
    a, b = _s3(moto_server, "evidence-overlap"), _s3(moto_server, "evidence-overlap")
    write_store(a, "data", {"x.txt": b"x"})

    with pytest.raises(TreeOverlapError):
        transfer_tree(a, "data", b, "data/mirror")
    with pytest.raises(TreeOverlapError):
        transfer_tree(a.child("data"), "sub", b, "data", delete=True)
    assert read_store(a, "data") == {"x.txt": b"x"}  # nothing nested, nothing deleted


def test_two_registry_stores_on_one_bucket_overlap(moto_server: MotoServer) -> None:
    moto_server.make_bucket("evidence-registry")
    options = {
        "bucket": "evidence-registry",
        "endpoint_url": moto_server.endpoint,
        "key": "testing",
        "secret": "testing",
        "region_name": moto_server.region,
    }
    config = {
        "backends": {"one": {"type": "s3", "options": options}, "two": {"type": "s3", "options": options}},
        "stores": {"a": {"backend": "one"}, "c": {"backend": "two", "root_path": "data/sub"}},
    }
    a, c = registry_store(config, "a"), registry_store(config, "c")
    write_store(a, "data/sub", {"x.txt": b"x"})

    with pytest.raises(TreeOverlapError):
        transfer_tree(c, "", a, "data", update="changed", delete=True, max_delete=None)
    with pytest.raises(SameFileError):
        transfer(c, "x.txt", a, "data/sub/x.txt", overwrite=True)
    assert read_store(a, "data") == {"sub/x.txt": b"x"}


def test_two_buckets_do_not_overlap(moto_server: MotoServer) -> None:
    a, b = _s3(moto_server, "evidence-overlap-a"), _s3(moto_server, "evidence-overlap-b")
    write_store(a, "data", {"x.txt": b"x"})

    result = transfer_tree(a, "data", b, "data/mirror")

    assert result.transferred == ["x.txt"]


def test_two_endpoints_are_two_places(moto_server: MotoServer) -> None:
    here = _s3(moto_server, "evidence-endpoints")
    there = Store(S3Backend("evidence-endpoints", endpoint_url="http://127.0.0.1:9", key="k", secret="s"))
    a, b = physical(here, "data"), physical(there, "data/mirror")

    assert a is not None
    assert b is not None
    assert a.kind == b.kind == "s3"
    assert a.same_place(b) is False
    assert a.same_place(physical(_s3(moto_server, "evidence-endpoints"), "")) is True  # type: ignore[arg-type]


def test_the_same_file_through_two_backends_is_refused(moto_server: MotoServer) -> None:
    a, b = _s3(moto_server, "evidence-same"), _s3(moto_server, "evidence-same")
    a.write("d/f.txt", b"precious", overwrite=True)

    with pytest.raises(SameFileError):
        transfer(a, "d/f.txt", b, "d/f.txt", overwrite=True)
    with pytest.raises(SameFileError):
        transfer(a.child("d"), "f.txt", b, "d/f.txt", overwrite=True)
    assert a.read_bytes("d/f.txt") == b"precious"


def test_the_same_key_in_another_bucket_is_not_the_same_file(moto_server: MotoServer) -> None:
    a, b = _s3(moto_server, "evidence-same-a"), _s3(moto_server, "evidence-same-b")
    a.write("d/f.txt", b"data", overwrite=True)

    transfer(a, "d/f.txt", b, "d/f.txt", overwrite=True)

    assert b.read_bytes("d/f.txt") == b"data"


# endregion

# region: a linked folder inside a local destination


@pytest.mark.parametrize("atomic", [False, True])
def test_download_never_writes_through_a_linked_folder(atomic: bool, tmp_path: Path) -> None:
    store = Store(backend=MemoryBackend())
    write_store(store, "p", {"a.txt": b"a", "link/b.txt": b"b", "link/deep/c.txt": b"c", "real/d.txt": b"d"})
    outside = tmp_path / "outside"
    outside.mkdir()
    out = tmp_path / "out"
    out.mkdir()
    os.symlink(outside, out / "link")

    result = download_tree(store, "p", out, atomic=atomic)

    assert os.listdir(outside) == []  # nothing written outside the destination
    assert sorted(result.failed) == ["link/b.txt", "link/deep/c.txt"]
    for error in result.failed.values():
        assert isinstance(error, NotADirectoryError)
        assert error.filename == str(out / "link")
        assert "symbolic link" in str(error)
    assert sorted(result.transferred) == ["a.txt", "real/d.txt"]
    assert os.path.islink(out / "link")


def test_a_linked_destination_root_is_followed(tmp_path: Path) -> None:
    store = Store(backend=MemoryBackend())
    write_store(store, "p", {"sub/a.txt": b"a"})
    real = tmp_path / "real"
    real.mkdir()
    os.symlink(real, tmp_path / "root-link")

    result = download_tree(store, "p", tmp_path / "root-link")

    assert result.transferred == ["sub/a.txt"]
    assert (real / "sub" / "a.txt").read_bytes() == b"a"


# endregion
