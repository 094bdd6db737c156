"""docs/trees.md: "A bad value is a ValueError or TypeError naming the option, raised before anything is listed".

Every option of the tree calls, with bad values of the kinds a caller slips
into (a string for a number or a flag, ``None``, one pattern for a list, a
pattern of another type): the error type, the option's name in its message,
and two stores that record every backend call, neither of them touched.
"""

from __future__ import annotations

import math
from typing import Any

import pytest
from remote_store import Store

from remote_store_transfer import transfer_tree

from support import RecordingBackend

BAD: list[tuple[str, Any, type[Exception]]] = [
    *[
        (option, value, error)
        for option in ("include", "exclude")
        for value, error in (
            (None, TypeError),
            (5, TypeError),
            ("*.txt", TypeError),
            (b"*.txt", TypeError),
            ({"*.txt"}, TypeError),
            ([5], TypeError),
            ([None], TypeError),
            ([b"*.txt"], TypeError),
            (["*.txt", 5], TypeError),
            ([""], ValueError),
            (["[unclosed"], ValueError),
        )
    ],
    ("update", "bogus", ValueError),
    ("update", None, ValueError),
    ("update", ["missing"], ValueError),
    *[
        (option, value, TypeError)
        for option in ("checksum", "delete", "dry_run", "atomic", "fail_fast", "follow_symlinks")
        for value in ("no", "yes", 0, 1, None)
    ],
    ("modify_window", "1", TypeError),
    ("modify_window", None, TypeError),
    ("modify_window", True, TypeError),
    ("modify_window", -1.0, ValueError),
    ("modify_window", math.nan, ValueError),
    ("max_workers", "8", TypeError),
    ("max_workers", 2.5, TypeError),
    ("max_workers", True, TypeError),
    ("max_workers", None, TypeError),
    ("max_workers", 0, ValueError),
    ("retries", "3", TypeError),
    ("retries", 1.0, TypeError),
    ("retries", None, TypeError),
    ("retries", -1, ValueError),
    ("max_bandwidth", "10M", TypeError),
    ("max_bandwidth", True, TypeError),
    ("max_bandwidth", [1000], TypeError),
    ("max_bandwidth", 0, ValueError),
    ("max_bandwidth", -5.0, ValueError),
    ("max_bandwidth", math.nan, ValueError),
    ("executor", object(), TypeError),
    ("executor", "threads", TypeError),
    ("on_progress", 42, TypeError),
    ("on_file", "print", TypeError),
]


@pytest.mark.parametrize(("option", "value", "error"), BAD, ids=[f"{o}={v!r}" for o, v, _ in BAD])
def test_a_bad_option_value_names_the_option_before_anything_is_listed(option: str, value: Any, error: type) -> None:
    src_backend, dst_backend = RecordingBackend(), RecordingBackend()
    src, dst = Store(backend=src_backend), Store(backend=dst_backend)
    src.write("tree/a.txt", b"a")
    src_backend.calls.clear()

    with pytest.raises(error) as caught:
        transfer_tree(src, "tree", dst, "copy", **{option: value})

    assert type(caught.value) is error  # not a subclass standing for something else (TreeOverlapError...)
    assert option in str(caught.value)
    assert (src_backend.calls, dst_backend.calls) == ([], [])  # neither end listed, read or written


def test_good_values_of_every_checked_kind_still_run() -> None:
    """The checks refuse only bad values: ints for numbers, tuples for lists, None where None means 'unset'."""
    src, dst = Store(backend=RecordingBackend()), Store(backend=RecordingBackend())
    src.write("tree/a.txt", b"a")
    src.write("tree/b.log", b"b")
    result = transfer_tree(
        src,
        "tree",
        dst,
        "copy",
        include=("*.txt",),
        exclude=[],
        modify_window=2,
        max_bandwidth=None,
        retries=0,
        atomic=True,
        update="changed",
        checksum=True,
    )
    assert result.ok, result.failed
    assert result.transferred == ["a.txt"]
    assert transfer_tree(src, "tree", dst, "copy2", max_bandwidth=10_000_000).ok
