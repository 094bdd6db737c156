"""Kept modification times keep their nanoseconds: a float of seconds since the epoch cannot hold them.

A time such as ``1764756012.596215398`` came back ``.596215552`` once it went
through a float (2**-22 s apart near 2026). The tree carries integer
nanoseconds end to end: ``st_mtime_ns``, the ``mtime`` metadata string, its
parse, ``os.utime(ns=...)``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from treekit import StoreMaker, join, read_local, write_local

from remote_store_transfer import download_tree, transfer_tree, upload_tree
from remote_store_transfer.tree.walk import mtime_metadata, parse_mtime

NS = {
    "a.txt": 1_764_756_012_596_215_398,  # the trial's time: a float puts it at .596215552
    "sub/b.txt": 1_600_000_000_123_456_789,
    "sub/deep/c.txt": 1_700_000_000_000_000_001,  # one nanosecond past a whole second
}
FILES = {rel: f"{rel}\n".encode() for rel in NS}


@pytest.fixture
def stores(make_store, request: pytest.FixtureRequest):
    maker = StoreMaker(make_store, request)
    yield maker
    maker.close()


def stamped(root: Path) -> Path:
    """A local folder holding FILES, each modified at its time in NS (to the nanosecond)."""
    write_local(root, FILES)
    for rel, ns in NS.items():
        os.utime(root.joinpath(*rel.split("/")), ns=(ns, ns))
    return root


def times(root: Path) -> dict[str, int]:
    return {rel: root.joinpath(*rel.split("/")).stat().st_mtime_ns for rel in NS}


def test_the_times_are_ones_a_float_loses(tmp_path: Path) -> None:
    assert round(NS["a.txt"] / 1e9 * 1e9) != NS["a.txt"]  # else this file tests nothing
    assert times(stamped(tmp_path / "fs")) == NS  # and the file system keeps nanoseconds


@pytest.mark.parametrize("kind", ["s3", "memory"])
def test_local_store_local_round_trip_keeps_nanoseconds(kind: str, stores, tmp_path: Path) -> None:
    src = stamped(tmp_path / "src")
    store = stores(kind)

    assert upload_tree(store, src, "p").ok
    assert {rel: store.get_file_info(join("p", rel)).metadata["mtime"] for rel in NS} == {
        "a.txt": "1764756012.596215398",
        "sub/b.txt": "1600000000.123456789",
        "sub/deep/c.txt": "1700000000.000000001",
    }
    other = stores("memory")
    assert transfer_tree(store, "p", other, "q").ok  # a store source hands the kept string on as it is
    out = tmp_path / "out"
    assert download_tree(other, "q", out).ok

    assert read_local(out) == FILES
    assert times(out) == NS
    again = upload_tree(store, out, "p", update="changed", modify_window=0)  # equal to the nanosecond
    assert again.ok, again.failed
    assert again.transferred == []


def test_local_folder_local_store_round_trip_keeps_nanoseconds(stores, tmp_path: Path) -> None:
    """A local store keeps no metadata: its files keep the time themselves, read and set to the nanosecond."""
    src = stamped(tmp_path / "src")
    store, other = stores("local"), stores("local", 1)

    assert upload_tree(store, src, "p").ok
    assert {rel: os.stat(store.native_path(join("p", rel))).st_mtime_ns for rel in NS} == NS
    assert transfer_tree(store, "p", other, "q").ok
    out = tmp_path / "out"
    assert download_tree(other, "q", out).ok

    assert read_local(out) == FILES
    assert times(out) == NS
    again = upload_tree(store, out, "p", update="changed", modify_window=0)
    assert again.ok, again.failed
    assert again.transferred == []


@pytest.mark.parametrize("kind", ["s3", "memory", "local"])
def test_modify_window_zero_tells_one_nanosecond_apart(kind: str, stores, tmp_path: Path) -> None:
    src = stamped(tmp_path / "src")
    store = stores(kind)
    assert upload_tree(store, src, "p").ok
    moved = NS["sub/deep/c.txt"] + 1
    os.utime(src / "sub" / "deep" / "c.txt", ns=(moved, moved))

    result = upload_tree(store, src, "p", update="changed", modify_window=0)

    assert result.ok, result.failed
    assert result.transferred == ["sub/deep/c.txt"]
    if kind == "local":
        assert os.stat(store.native_path("p/sub/deep/c.txt")).st_mtime_ns == moved
    else:
        assert store.get_file_info("p/sub/deep/c.txt").metadata["mtime"] == "1700000000.000000002"


@pytest.mark.parametrize(
    ("raw", "ns"),
    [
        ("1764756012.596215398", 1_764_756_012_596_215_398),
        ("1700000000.000000001", 1_700_000_000_000_000_001),
        ("1700000000", 1_700_000_000_000_000_000),
        ("1700000000.5", 1_700_000_000_500_000_000),
        (" 1700000000.25 ", 1_700_000_000_250_000_000),
        ("1700000000.1234567895", 1_700_000_000_123_456_790),  # beyond nanoseconds: rounded half up
        ("1700000000.1234567894", 1_700_000_000_123_456_789),
        (".5", 500_000_000),
        ("0", 0),
        ("+12.000000003", 12_000_000_003),
        ("-1.500000000", -1_500_000_000),  # 1.5 s before the epoch, as rclone writes it
        ("1.7e9", 1_700_000_000_000_000_000),  # only float reads it
        ("not a time", None),
        ("", None),
        (".", None),
        ("nan", None),
        ("inf", None),
        ("1.2.3", None),
    ],
)
def test_parse_mtime_reads_decimal_seconds_without_float(raw: str, ns: int | None) -> None:
    assert parse_mtime(raw) == ns


@pytest.mark.parametrize("ns", [*NS.values(), 0, 1, -1, -1_500_000_000, 999_999_999])
def test_mtime_metadata_and_parse_are_inverse(ns: int) -> None:
    kept = mtime_metadata(ns)["mtime"]
    assert len(kept.rpartition(".")[2]) == 9
    assert float(kept) == pytest.approx(ns / 1e9, abs=1e-6)  # what rclone or a float reader sees
    assert parse_mtime(kept) == ns
