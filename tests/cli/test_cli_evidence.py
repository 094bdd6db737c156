"""The folder commands delete only on evidence: a missing bucket (exit 3), ``--max-delete``, overlap by place.

Against the real moto S3 server of the CLI tests, through its registry plus a second backend on the
same bucket and one on a bucket that does not exist.
"""

from __future__ import annotations

import json
import re

import pytest


@pytest.fixture
def places(cli_stores, registry):
    """The CLI with store ``c`` (another backend on the bucket and prefix of ``s3``) and ``nob`` (no such bucket)."""
    text = registry.path.read_text()
    moto = re.search(r"^\[backends\.moto\]\n(?:.+\n)+", text, re.M)
    assert moto is not None
    other = moto.group(0).replace("[backends.moto]", "[backends.other]")
    missing = re.sub(r'bucket = "[^"]*"', 'bucket = "no-such-bucket-cli"', moto.group(0))
    missing = missing.replace("[backends.moto]", "[backends.missing]")
    stores = f'[stores.c]\nbackend = "other"\nroot_path = "{registry.s3_prefix}"\n\n[stores.nob]\nbackend = "missing"\n'
    registry.path.write_text(f"{text}\n{other}\n{missing}\n{stores}")
    return cli_stores


def _put(registry, files: dict[str, bytes]) -> None:
    for key, data in files.items():
        registry.s3_put(key, data)


def _keys(registry) -> list[str]:
    return sorted(key[len(registry.s3_prefix) + 1 :] for key in registry.s3_keys())


SIX = {f"f{i}.txt": f"file {i}\n".encode() for i in range(6)}


# region: a missing bucket


def test_download_from_a_missing_bucket_exits_3(places) -> None:
    cli = places

    result = cli("download", "-r", "nob:x", "out")

    assert result.returncode == 3, result.stderr
    assert "no-such-bucket-cli" in result.stderr
    assert "does not exist" in result.stderr
    assert "1 failed" in result.stdout


def test_sync_from_a_missing_bucket_exits_3_and_deletes_nothing(places, registry) -> None:
    cli = places
    _put(registry, {f"copy/{k}": v for k, v in SIX.items()})

    result = cli("sync", "nob:x", "s3:copy", "--delete", "--max-delete", "none", "--json")

    assert result.returncode == 3, result.stderr
    assert json.loads(result.stdout.splitlines()[-1])["exit_code"] == 3
    assert _keys(registry) == sorted(f"copy/{k}" for k in SIX)
    local = cli("sync", "nob:x", "out", "--delete")
    assert local.returncode == 3, local.stderr


def test_an_empty_prefix_of_an_existing_bucket_exits_0(places) -> None:
    cli = places

    result = cli("download", "-r", "s3:nothing-here", "out")

    assert result.returncode == 0, result.stderr
    assert "0 transferred" in result.stdout


# endregion

# region: --max-delete


def test_max_delete_refuses_and_names_the_limit(places, registry) -> None:
    cli = places
    (cli.cwd / "src").mkdir()
    (cli.cwd / "src" / "f0.txt").write_bytes(SIX["f0.txt"])
    _put(registry, {f"dst/{k}": v for k, v in SIX.items()})  # 5 of 6 would go

    dry = cli("sync", "src", "s3:dst", "--delete", "--dry-run")
    default = cli("sync", "src", "s3:dst", "--delete")

    for result in (dry, default):
        assert result.returncode == 1, result.stderr
        assert "DeleteLimitError" in result.stderr
        assert "refusing to delete 5 of the 6 files" in result.stderr
        assert "at most 3" in result.stderr
        assert "--max-delete" in result.stderr
        assert "error: delete under s3:dst:" in result.stderr  # the deletions failed, not the listing
        assert "error: listing" not in result.stderr
    assert "would delete" not in dry.stdout
    assert _keys(registry) == sorted(f"dst/{k}" for k in SIX)

    counted = cli("sync", "src", "s3:dst", "--delete", "--max-delete", "4")
    assert counted.returncode == 1, counted.stderr
    assert "max_delete=4 allows at most 4" in counted.stderr

    allowed = cli("sync", "src", "s3:dst", "--delete", "--max-delete", "90%")
    assert allowed.returncode == 0, allowed.stderr
    assert "5 deleted" in allowed.stdout
    assert _keys(registry) == ["dst/f0.txt"]


def test_max_delete_none_and_a_bad_value(places, registry) -> None:
    cli = places
    (cli.cwd / "src").mkdir()
    (cli.cwd / "src" / "new.txt").write_bytes(b"new")
    _put(registry, {"dst/old.txt": b"old"})  # 1 of 1: 100%

    bad = cli("sync", "src", "s3:dst", "--delete", "--max-delete", "lots")
    assert bad.returncode == 2
    assert "--max-delete" in bad.stderr

    unlimited = cli("sync", "src", "s3:dst", "--delete", "--max-delete", "none")
    assert unlimited.returncode == 0, unlimited.stderr
    assert _keys(registry) == ["dst/new.txt"]


def test_sync_help_lists_max_delete(cli) -> None:
    assert "--max-delete" in cli("sync", "--help").stdout


# endregion

# region: two registry backends on one bucket


def test_sync_into_its_own_source_through_another_backend_is_refused(places, registry) -> None:
    cli = places
    _put(registry, {"data/sub/x.txt": b"x", "data/y.txt": b"y"})

    onto_parent = cli("sync", "c:data/sub", "s3:data", "--delete", "--max-delete", "none")
    nested = cli("copy", "-r", "s3:data", "c:data/mirror")

    for result in (onto_parent, nested):
        assert result.returncode == 2, result.stderr
        assert "overlaps the source" in result.stderr
    assert _keys(registry) == ["data/sub/x.txt", "data/y.txt"]


def test_a_file_onto_itself_through_another_backend_is_refused(places, registry) -> None:
    cli = places
    _put(registry, {"f.txt": b"precious"})

    result = cli("copy", "s3:f.txt", "c:f.txt", "--overwrite")

    assert result.returncode == 2, result.stderr
    assert "is the source" in result.stderr
    assert registry.s3_get("f.txt") == b"precious"


# endregion
