"""In-process tests of the CLI's small pure parts: locations, sizes, exit codes, error lines."""

from __future__ import annotations

import pytest
from remote_store import AlreadyExists, CapabilityNotSupported, NotFound, PermissionDenied

from remote_store_transfer import IncompleteTransferError
from remote_store_transfer.cli.report import error_line, exit_code_for, format_bytes
from remote_store_transfer.cli.stores import Location, parse_location


@pytest.mark.parametrize(
    ("text", "store", "path"),
    [
        ("s3:reports/a.csv", "s3", "reports/a.csv"),
        ("my-store.v2:x", "my-store.v2", "x"),
        ("s3:", "s3", ""),
        ("report.csv", None, "report.csv"),
        ("/abs/a:b", None, "/abs/a:b"),
        ("./a:b", None, "./a:b"),
        ("dir/a:b", None, "dir/a:b"),
        ("C:\\data\\x", None, "C:\\data\\x"),
        ("C:/data/x", None, "C:/data/x"),
        ("cc:/data/x", "cc", "/data/x"),
    ],
)
def test_parse_location(text, store, path):
    assert parse_location(text) == Location(text, store, path)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("s3:", "s3:a.bin"), ("s3:dir/", "s3:dir/a.bin"), ("s3:dir/b.bin", "s3:dir/b.bin"), ("local.bin", "local.bin")],
)
def test_folder_locations_get_the_source_name(text, expected):
    assert parse_location(text).with_name("a.bin").text == expected


@pytest.mark.parametrize(
    ("n", "text"),
    [(0, "0 B"), (1023, "1023 B"), (1024, "1.0 KiB"), (3 * 1024**2 + 17, "3.0 MiB"), (5 * 1024**4, "5.0 TiB")],
)
def test_format_bytes(n, text):
    assert format_bytes(n) == text


@pytest.mark.parametrize(
    ("exc", "code"),
    [
        (NotFound("x"), 3),
        (FileNotFoundError(2, "No such file or directory", "a"), 3),
        (AlreadyExists("x"), 4),
        (FileExistsError("x"), 4),
        (PermissionDenied("x"), 5),
        (PermissionError(13, "Permission denied"), 5),
        (CapabilityNotSupported("x"), 1),
        (RuntimeError("x"), 1),
        (KeyboardInterrupt(), 130),
        (IncompleteTransferError("download of a", 10, 4), 6),
    ],
)
def test_exit_codes(exc, code):
    assert exit_code_for(exc) == code


def test_error_line_is_one_line_without_store_details():
    exc = NotFound("File not found:\n a.bin", path="a.bin", backend="local")
    assert error_line("download s3:a.bin", exc) == (
        "remote-store-transfer: error: download s3:a.bin: File not found: a.bin"
    )


def test_error_line_names_the_type_of_other_errors():
    prefix = "remote-store-transfer: error: copy a -> b: "
    assert error_line("copy a -> b", RuntimeError("boom")) == prefix + "RuntimeError: boom"
    assert error_line("copy a -> b", RuntimeError()) == prefix + "RuntimeError"
