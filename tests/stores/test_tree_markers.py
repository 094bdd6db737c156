"""S3 folder markers (0-byte ``pre/x/`` objects, as the AWS console makes them) are folders, not files, to a tree.

Against the real moto server: the markers are made with boto3 ``put_object``
as the console makes them, and every tree call must walk past them, on the
source side and in the destination index (never deleted, never counted).
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
from treekit import read_local, write_local, write_store

from harness import MotoServer
from remote_store_transfer import download_tree, transfer_tree, upload_tree

BUCKET = "folder-markers"
FILES = {"a.txt": b"alpha\n", "x/b.txt": b"bravo\n", "x/deep/c.txt": b"charlie\n"}
MARKERS = ("", "x/", "y/", "x/deep/")
"""Marker keys under a prefix: the prefix itself, a folder with files, an empty folder, a nested one."""


@pytest.fixture
def s3(moto_server: MotoServer) -> Any:
    store = moto_server.store(BUCKET)
    yield store
    store.close()


def prefix() -> str:
    return f"t-{uuid.uuid4().hex[:12]}"


def put_markers(moto_server: MotoServer, base: str) -> None:
    client = moto_server.client()
    for marker in MARKERS:
        client.put_object(Bucket=BUCKET, Key=f"{base}/{marker}", Body=b"")


def markers_left(moto_server: MotoServer, base: str) -> list[str]:
    listing = moto_server.client().list_objects_v2(Bucket=BUCKET, Prefix=f"{base}/")
    return sorted(obj["Key"][len(base) + 1 :] for obj in listing.get("Contents", []) if obj["Key"].endswith("/"))


def files_in(store: Any, base: str) -> dict[str, bytes]:
    """The files under *base* (relative path -> bytes), markers left out (their name is empty)."""
    infos = [info for info in store.list_files(base, recursive=True) if info.name]
    return {str(info.path)[len(base) + 1 :]: store.read_bytes(str(info.path)) for info in infos}


def test_download_tree_walks_past_folder_markers(moto_server: MotoServer, s3: Any, tmp_path: Path) -> None:
    base = prefix()
    write_store(s3, base, FILES)
    put_markers(moto_server, base)

    result = download_tree(s3, base, tmp_path / "out")

    assert result.ok, result.failed
    assert sorted(result.transferred) == sorted(FILES)
    assert result.skipped == []
    assert read_local(tmp_path / "out") == FILES  # no file named "x" or "y"
    assert markers_left(moto_server, base) == sorted(MARKERS)


def test_upload_tree_with_delete_leaves_destination_markers_alone(
    moto_server: MotoServer, s3: Any, tmp_path: Path
) -> None:
    base = prefix()
    write_store(s3, base, {"stale.txt": b"gone soon\n"})
    put_markers(moto_server, base)
    src = write_local(tmp_path / "src", FILES)

    result = upload_tree(s3, src, base, delete=True, max_delete=1)

    assert result.ok, result.failed
    assert sorted(result.transferred) == sorted(FILES)
    assert result.deleted == ["stale.txt"]  # the markers are neither deleted nor counted
    assert markers_left(moto_server, base) == sorted(MARKERS)
    again = upload_tree(s3, src, base, update="changed", delete=True)
    assert again.ok, again.failed
    assert (again.transferred, again.deleted) == ([], [])


def test_transfer_tree_sync_over_markers_on_both_sides(moto_server: MotoServer, s3: Any) -> None:
    src_base, dst_base = prefix(), prefix()
    write_store(s3, src_base, FILES)
    write_store(s3, dst_base, {"stale.txt": b"old\n", "x/b.txt": b"an older bravo\n"})
    put_markers(moto_server, src_base)
    put_markers(moto_server, dst_base)

    result = transfer_tree(s3, src_base, s3, dst_base, update="changed", delete=True)

    assert result.ok, result.failed
    assert result.deleted == ["stale.txt"]
    assert files_in(s3, dst_base) == FILES
    assert markers_left(moto_server, src_base) == sorted(MARKERS)
    assert markers_left(moto_server, dst_base) == sorted(MARKERS)
