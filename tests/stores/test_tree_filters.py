"""include / exclude: the glob rules on a table (``compile_glob``), then through the tree calls."""

from __future__ import annotations

from pathlib import Path

import pytest
from remote_store import Store
from remote_store.backends import MemoryBackend
from treekit import read_local, read_store, write_local, write_store

from remote_store_transfer import download_tree, transfer_tree, upload_tree
from remote_store_transfer.tree.filters import PathFilter, compile_glob

FILES = {
    "a.txt": b"a",
    "b.csv": b"b",
    "x.tmp": b"tmp at the top",
    "docs/readme.md": b"docs",
    "docs/a.txt": b"nested a",
    "docs/old/notes.tmp": b"nested tmp",
    "logs/a.gz": b"log zero deep",
    "logs/2024/01/b.gz": b"log two deep",
    "logs/2024/c.txt": b"not a gz",
    "cache/blob.bin": b"cache",
    "src/cache/blob.bin": b"nested cache",
    "f1.dat": b"1",
    "f22.dat": b"22",
}


@pytest.mark.parametrize(
    ("pattern", "path", "matches"),
    [
        # "*": any characters within one segment, never "/"
        ("*.txt", "a.txt", True),
        ("*.txt", "docs/a.txt", True),  # no "/" in the pattern: the name in any folder
        ("*.txt", "a.txt.bak", False),
        ("docs/*.txt", "docs/a.txt", True),
        ("docs/*.txt", "docs/sub/a.txt", False),
        ("docs/*", "docs/sub/a.txt", False),
        ("docs/*", "docs/a.txt", True),
        ("*", "a", True),
        ("*", "deep/down/a", True),  # a name pattern: any file name
        # "**": any number of segments, zero included
        ("logs/**/*.gz", "logs/a.gz", True),
        ("logs/**/*.gz", "logs/2024/a.gz", True),
        ("logs/**/*.gz", "logs/2024/01/a.gz", True),
        ("logs/**/*.gz", "logs/2024/01/a.txt", False),
        ("logs/**/*.gz", "other/logs/a.gz", False),  # with "/": the whole path, from the top
        ("**/a.txt", "a.txt", True),
        ("**/a.txt", "x/y/a.txt", True),
        ("logs/**", "logs/a", True),
        ("logs/**", "logs/x/y/z", True),
        ("logs/**", "logsx/a", False),
        ("a**b", "aXXb", True),  # "**" inside a segment acts as "*"
        ("a**b", "a/b", False),
        # "?": exactly one character, never "/"
        ("f?.dat", "f1.dat", True),
        ("f?.dat", "f22.dat", False),
        ("f?.dat", "f.dat", False),
        ("a?b", "a/b", False),
        # sets
        ("f[12].dat", "f1.dat", True),
        ("f[12].dat", "f3.dat", False),
        ("f[!12].dat", "f3.dat", True),
        ("f[!12].dat", "f1.dat", False),
        ("f[!x]y", "f/y", False),  # a negated set never matches "/"
        # anchors and folders
        ("/a.txt", "a.txt", True),
        ("/a.txt", "docs/a.txt", False),
        ("cache/", "cache/blob.bin", True),
        ("cache/", "src/cache/blob.bin", True),  # any folder named cache
        ("cache/", "cachex/blob.bin", False),
        ("src/cache/", "src/cache/deep/blob.bin", True),
        ("src/cache/", "cache/blob.bin", False),
        # special characters are literal
        ("50%off.txt", "50%off.txt", True),
        ("hash#tag.*", "hash#tag.txt", True),
        ("a.txt", "aXtxt", False),  # "." is not a regex wildcard
        ("(x)+.txt", "(x)+.txt", True),
        ("caf\u00e9*", "caf\u00e9 \u00fcber.txt", True),
        ("with space.txt", "d/with space.txt", True),
    ],
)
def test_compile_glob_table(pattern: str, path: str, matches: bool) -> None:
    assert bool(compile_glob(pattern).fullmatch(path)) is matches


@pytest.mark.parametrize("pattern", ["", "/", "[abc", "a/[!x"])
def test_compile_glob_rejects_bad_patterns(pattern: str) -> None:
    with pytest.raises(ValueError, match="pattern"):
        compile_glob(pattern)


def test_path_filter_combines_include_and_exclude() -> None:
    taken = PathFilter(include=["*.txt", "logs/**"], exclude=["docs/**", "*.gz"])
    assert taken("a.txt")
    assert not taken("docs/a.txt")  # included, then excluded
    assert taken("logs/2024/c.txt")
    assert not taken("logs/a.gz")
    assert not taken("b.csv")  # not included
    assert PathFilter()("anything/at/all")
    assert not PathFilter()
    assert PathFilter(exclude=["x"])


def tree_with(tmp_path: Path, **options: object) -> list[str]:
    """upload_tree FILES with *options*; the relative paths at the destination, checked against the result."""
    src = write_local(tmp_path / "src", FILES)
    store = Store(backend=MemoryBackend())
    result = upload_tree(store, src, "dst", **options)
    written = read_store(store, "dst")
    assert sorted(result.transferred) == sorted(written)
    assert result.skipped == []  # left-out files are not "skipped": they are not part of the tree
    assert all(written[rel] == FILES[rel] for rel in written)
    return sorted(written)


def test_star_stays_within_one_segment(tmp_path: Path) -> None:
    assert tree_with(tmp_path, include=["docs/*"]) == ["docs/a.txt", "docs/readme.md"]


def test_double_star_spans_segments_zero_included(tmp_path: Path) -> None:
    assert tree_with(tmp_path, include=["logs/**/*.gz"]) == ["logs/2024/01/b.gz", "logs/a.gz"]


def test_question_mark_is_one_character(tmp_path: Path) -> None:
    assert tree_with(tmp_path, include=["f?.dat"]) == ["f1.dat"]


def test_name_pattern_matches_in_any_folder(tmp_path: Path) -> None:
    expected = sorted(set(FILES) - {"x.tmp", "docs/old/notes.tmp"})
    assert tree_with(tmp_path, exclude=["*.tmp"]) == expected


def test_include_and_exclude_together(tmp_path: Path) -> None:
    got = tree_with(tmp_path, include=["*.txt", "logs/**"], exclude=["docs/**", "*.gz"])
    assert got == ["a.txt", "logs/2024/c.txt"]


def test_folder_pattern_excludes_a_whole_folder(tmp_path: Path) -> None:
    got = tree_with(tmp_path, exclude=["cache/", "/x.tmp"])
    assert "cache/blob.bin" not in got
    assert "src/cache/blob.bin" not in got
    assert "docs/old/notes.tmp" in got
    assert "x.tmp" not in got


def test_filters_apply_to_store_sources_and_downloads(tmp_path: Path) -> None:
    src, dst = Store(backend=MemoryBackend()), Store(backend=MemoryBackend())
    write_store(src, "p", FILES)
    result = transfer_tree(src, "p", dst, "q", include=["**/*.txt"], exclude=["logs/**"])
    assert sorted(result.transferred) == ["a.txt", "docs/a.txt"]
    assert read_store(dst, "q") == {"a.txt": b"a", "docs/a.txt": b"nested a"}

    down = download_tree(src, "p", tmp_path / "out", exclude=["*.gz", "*.tmp", "cache/"])
    expected = {k: v for k, v in FILES.items() if not k.endswith((".gz", ".tmp")) and "cache/" not in k}
    assert read_local(tmp_path / "out") == expected
    assert sorted(down.transferred) == sorted(expected)


@pytest.mark.parametrize("option", ["include", "exclude"])
@pytest.mark.parametrize("bad", [["[unclosed"], [""], ["ok", "/"]])
def test_bad_pattern_is_a_value_error_before_anything_moves(option: str, bad: list[str], tmp_path: Path) -> None:
    src = write_local(tmp_path / "src", FILES)
    store = Store(backend=MemoryBackend())
    with pytest.raises(ValueError, match="pattern"):
        upload_tree(store, src, "dst", **{option: bad})
    assert read_store(store) == {}


@pytest.mark.parametrize("option", ["include", "exclude"])
def test_single_string_instead_of_a_list_is_refused(option: str, tmp_path: Path) -> None:
    """``include="*.txt"`` would otherwise be read as the patterns "*", ".", "t", "x", "t"."""
    src = write_local(tmp_path / "src", FILES)
    store = Store(backend=MemoryBackend())
    with pytest.raises(TypeError, match=option):
        upload_tree(store, src, "dst", **{option: "*.txt"})
    assert read_store(store) == {}
