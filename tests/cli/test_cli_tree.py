"""The folder commands as subprocesses: upload -r, download -r, copy -r and sync, with their options.

Stores come from the registry TOML of conftest.py: ``local`` (a LocalBackend
folder, which outlives one command) and ``s3`` (moto).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

PREFIX = "remote-store-transfer: error: "
SUMMARY = re.compile(
    r"^(?P<op>upload|download|copy|sync) (?P<src>\S+) -> (?P<dst>\S+): "
    r"(?P<transferred>\d+) transferred, (?P<skipped>\d+) skipped, (?P<failed>\d+) failed, (?P<deleted>\d+) deleted, "
    r"(?P<bytes>[\d.]+ (?:B|KiB|MiB|GiB)) in (?P<seconds>\d+\.\d\d) s(?: \((?P<rate>[\d.]+ (?:B|KiB|MiB|GiB))/s\))?$"
)
DRY_SUMMARY = re.compile(
    r"^(?P<op>upload|download|copy|sync) (?P<src>\S+) -> (?P<dst>\S+) \(dry run\): "
    r"(?P<transferred>\d+) would be transferred, (?P<skipped>\d+) skipped, (?P<failed>\d+) failed, "
    r"(?P<deleted>\d+) would be deleted, (?P<bytes>[\d.]+ (?:B|KiB|MiB|GiB))$"
)
PLAN_LINE = re.compile(r"^would (?P<verb>transfer|skip|delete) (?P<path>\S+)(?: \((?P<reason>[^)]+)\))?$")
OUTCOME_KEYS = {"path", "status", "bytes", "size", "reason", "error", "attempts", "dry_run"}
SUMMARY_KEYS = {
    "operation",
    "source",
    "destination",
    "transferred",
    "skipped",
    "failed",
    "deleted",
    "bytes",
    "seconds",
    "dry_run",
    "ok",
}

FILES = {
    "a.txt": b"alpha\n",
    "b.bin": os.urandom(70_000),
    "docs/readme.md": b"# readme\n",
    "docs/old/notes.tmp": b"scratch",
    "img/x/y/photo.jpg": os.urandom(300_000),
}

TREE_PLUGIN = '''\
"""A test plugin for the folder commands, steered by environment variables.

RST_TREE_FAIL         "NAME=KIND,...": the file called NAME fails in pre_transfer: denied (PermissionDenied),
                      integrity (IntegrityError), flaky (ConnectionError at its first try only)
RST_TREE_CONCURRENCY  a file: the most files ever in flight at once is written to it (each try holds 0.2 s)
"""
import os
import threading
import time

from remote_store import PermissionDenied

from remote_store_transfer import hookimpl
from remote_store_transfer.errors import IntegrityError

_RULES = dict(item.split("=", 1) for item in os.environ.get("RST_TREE_FAIL", "").split(",") if item)
_CONCURRENCY = os.environ.get("RST_TREE_CONCURRENCY")
_lock = threading.Lock()
_tries = {}
_flight = [0, 0]


@hookimpl
def pre_transfer(context):
    name = os.path.basename(context.source.path)
    with _lock:
        _tries[name] = tries = _tries.get(name, 0) + 1
    kind = _RULES.get(name)
    if kind == "denied":
        raise PermissionDenied("denied by the test plugin", path=context.source.path)
    if kind == "integrity":
        raise IntegrityError("sha256", "00" * 32, "ff" * 32, context.source.describe(), context.destination.describe())
    if kind == "flaky" and tries == 1:
        raise ConnectionError("flaky by the test plugin")
    if _CONCURRENCY:
        with _lock:
            _flight[0] += 1
            _flight[1] = max(_flight)
            with open(_CONCURRENCY, "w") as fh:
                fh.write(str(_flight[1]))
        context.state["rst-tree-test"] = True
        time.sleep(0.2)


@hookimpl
def post_transfer(context, error):
    if context.state.pop("rst-tree-test", False):
        with _lock:
            _flight[0] -= 1
'''


# -- helpers


def make_tree(root: Path, files: dict[str, bytes]) -> None:
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def tree_of(root: Path) -> dict[str, bytes]:
    """Every file under *root*: relative "/" path -> content."""
    if not root.exists():
        return {}
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def s3_tree(registry, prefix: str) -> dict[str, bytes]:
    base = f"{registry.s3_prefix}/{prefix}/"
    return {key[len(base) :]: registry.s3_get(key[len(registry.s3_prefix) + 1 :]) for key in registry.s3_keys()}


def summary(result) -> dict[str, str]:
    """The summary line: the last line of stdout, parsed."""
    lines = result.stdout.splitlines()
    assert lines, result.stderr
    match = SUMMARY.match(lines[-1]) or DRY_SUMMARY.match(lines[-1])
    assert match is not None, lines[-1]
    return match.groupdict()


def counts(result) -> tuple[int, int, int, int]:
    """(transferred, skipped, failed, deleted) of the summary line."""
    found = summary(result)
    return tuple(int(found[key]) for key in ("transferred", "skipped", "failed", "deleted"))  # type: ignore[return-value]


def json_lines(stdout: str) -> tuple[list[dict], dict]:
    """The per-file objects and the summary object (the last line) of --json."""
    objects = [json.loads(line) for line in stdout.splitlines()]
    assert objects, stdout
    *files, last = objects
    for obj in files:
        assert set(obj) == OUTCOME_KEYS, obj
    assert set(last) >= SUMMARY_KEYS, last
    return files, last


def error_lines(result) -> list[str]:
    lines = result.stderr.splitlines()
    assert all(line.startswith(PREFIX) for line in lines), result.stderr
    return [line[len(PREFIX) :] for line in lines]


@pytest.fixture
def src(cli_stores) -> Path:
    """A local folder ``src`` (in the CLI's working directory) holding FILES."""
    root = cli_stores.cwd / "src"
    make_tree(root, FILES)
    return root


@pytest.fixture
def tree_plugin_env(make_plugin_dist) -> dict[str, str]:
    site = make_plugin_dist("rst_cli_treeplugin", "treetest", TREE_PLUGIN)
    return {"PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}


# -- upload -r, download -r, copy -r


def test_upload_r_uploads_every_file_then_a_rerun_skips_them(cli_stores, registry, src):
    first = cli_stores("upload", "-r", "src", "local:backup/src")
    assert first.returncode == 0, first.stderr
    assert first.stderr == ""
    assert len(first.stdout.splitlines()) == 1
    found = summary(first)
    assert (found["op"], found["src"], found["dst"]) == ("upload", str(src), "local:backup/src")
    assert counts(first) == (5, 0, 0, 0)
    assert found["bytes"] == "361.3 KiB"  # 6 + 70_000 + 9 + 7 + 300_000 = 370_022 bytes
    assert tree_of(registry.local_root / "backup" / "src") == FILES

    again = cli_stores("upload", "-r", "src", "local:backup/src")
    assert again.returncode == 0, again.stderr
    assert counts(again) == (0, 5, 0, 0)  # --update missing: what is there is skipped, a re-run resumes
    assert summary(again)["bytes"] == "0 B"


@pytest.mark.parametrize("store", ["local", "s3"])
def test_upload_r_then_download_r_round_trips(cli_stores, registry, src, store):
    up = cli_stores("upload", "--recursive", "src", f"{store}:trees/one")
    assert up.returncode == 0, up.stderr
    if store == "s3":
        assert s3_tree(registry, "trees/one") == FILES

    down = cli_stores("download", "-r", f"{store}:trees/one", "restored/deep")
    assert down.returncode == 0, down.stderr
    found = summary(down)
    assert (found["op"], found["src"], found["dst"]) == (
        "download",
        f"{store}:trees/one",
        str(cli_stores.cwd / "restored/deep"),
    )
    assert counts(down) == (5, 0, 0, 0)
    assert tree_of(cli_stores.cwd / "restored" / "deep") == FILES


@pytest.mark.parametrize(("src_store", "dst_store"), [("local", "local"), ("local", "s3"), ("s3", "local")])
def test_copy_r_between_stores(cli_stores, registry, src_store, dst_store):
    if src_store == "local":
        make_tree(registry.local_root / "in", FILES)
    else:
        for rel, data in FILES.items():
            registry.s3_put(f"in/{rel}", data)

    result = cli_stores("copy", "-r", f"{src_store}:in", f"{dst_store}:out", "--json")

    assert result.returncode == 0, result.stderr
    files, last = json_lines(result.stdout)
    assert sorted(obj["path"] for obj in files) == sorted(FILES)
    assert {obj["status"] for obj in files} == {"transferred"}
    assert last["operation"] == "copy"
    assert (last["source"], last["destination"]) == (f"{src_store}:in", f"{dst_store}:out")
    assert (last["transferred"], last["skipped"], last["failed"], last["deleted"]) == (5, 0, 0, 0)
    assert last["bytes"] == sum(map(len, FILES.values()))
    assert last["ok"] is True
    assert "exit_code" not in last
    if dst_store == "local":
        assert tree_of(registry.local_root / "out") == FILES
    else:
        assert s3_tree(registry, "out") == FILES


def test_atomic_and_quiet_with_r(cli_stores, registry, src):
    result = cli_stores("upload", "-r", "src", "local:atomic", "--atomic", "-q")
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    assert result.stderr == ""
    assert tree_of(registry.local_root / "atomic") == FILES


# -- sync


@pytest.mark.parametrize(
    ("source", "destination"),
    [("src", "local:mirror"), ("local:mirror", "copy-back"), ("local:mirror", "s3:mirror")],
    ids=["local-to-store", "store-to-local", "store-to-store"],
)
def test_sync_directions_copy_only_what_changed(cli_stores, registry, src, source, destination):
    if source != "src":
        make_tree(registry.local_root / "mirror", FILES)
    first = cli_stores("sync", source, destination)
    assert first.returncode == 0, first.stderr
    assert summary(first)["op"] == "sync"
    assert counts(first) == (5, 0, 0, 0)

    # One file grows: only it goes again (--update changed is sync's default).
    changed = {**FILES, "a.txt": b"alpha, longer now\n"}
    if source == "src":
        make_tree(src, {"a.txt": changed["a.txt"]})
    else:
        make_tree(registry.local_root / "mirror", {"a.txt": changed["a.txt"]})
    second = cli_stores("sync", source, destination, "--json")
    assert second.returncode == 0, second.stderr
    files, last = json_lines(second.stdout)
    statuses = {obj["path"]: (obj["status"], obj["reason"]) for obj in files}
    assert statuses["a.txt"] == ("transferred", "size differs")
    assert {status for path, (status, _) in statuses.items() if path != "a.txt"} == {"skipped"}
    assert (last["transferred"], last["skipped"]) == (1, 4)

    if destination == "local:mirror":
        assert tree_of(registry.local_root / "mirror") == changed
    elif destination == "copy-back":
        assert tree_of(cli_stores.cwd / "copy-back") == changed
    else:
        assert s3_tree(registry, "mirror") == changed


def test_sync_delete_mirrors_but_keeps_excluded_files(cli_stores, registry, src):
    make_tree(
        registry.local_root / "mirror",
        {"stale.txt": b"gone soon", "docs/stale.md": b"x", "keep.tmp": b"excluded, so kept", "a.txt": FILES["a.txt"]},
    )
    without = cli_stores("sync", "src", "local:mirror", "--exclude", "*.tmp")
    assert without.returncode == 0, without.stderr
    assert counts(without) == (3, 1, 0, 0)  # a.txt is there already, same size: unchanged
    assert "stale.txt" in tree_of(registry.local_root / "mirror")  # no --delete: nothing deleted

    result = cli_stores("sync", "src", "local:mirror", "--exclude", "*.tmp", "--delete", "--json")

    assert result.returncode == 0, result.stderr
    files, last = json_lines(result.stdout)
    deleted = sorted(obj["path"] for obj in files if obj["status"] == "deleted")
    assert deleted == ["docs/stale.md", "stale.txt"]
    assert last["deleted"] == 2
    expected = {rel: data for rel, data in FILES.items() if not rel.endswith(".tmp")} | {
        "keep.tmp": b"excluded, so kept"
    }
    assert tree_of(registry.local_root / "mirror") == expected


def test_sync_delete_deletes_nothing_after_a_failure(cli_stores, registry, src, tree_plugin_env):
    make_tree(registry.local_root / "mirror", {"stale.txt": b"stays"})
    result = cli_stores(
        "sync", "src", "local:mirror", "--delete", env={**tree_plugin_env, "RST_TREE_FAIL": "b.bin=denied"}
    )
    assert result.returncode == 5, result.stderr
    assert counts(result) == (4, 0, 1, 0)
    assert (registry.local_root / "mirror" / "stale.txt").read_bytes() == b"stays"
    assert error_lines(result) == ["b.bin: PermissionDenied: denied by the test plugin"]


def test_sync_needs_a_store_at_one_end(cli_stores, src):
    result = cli_stores("sync", "src", "elsewhere")
    assert result.returncode == 2
    assert "sync: one end must be NAME:PREFIX, got two local paths" in result.stderr
    assert not (cli_stores.cwd / "elsewhere").exists()


# -- filters, dry run, update, checksum


def test_include_and_exclude(cli_stores, registry, src):
    result = cli_stores(
        "upload", "-r", "src", "local:f", "--include", "docs/**", "--include", "*.txt", "--exclude", "*.tmp"
    )
    assert result.returncode == 0, result.stderr
    assert tree_of(registry.local_root / "f") == {"a.txt": FILES["a.txt"], "docs/readme.md": FILES["docs/readme.md"]}
    assert counts(result) == (2, 0, 0, 0)  # files left out by the filters are not counted at all


def test_a_bad_glob_is_a_usage_error(cli_stores, src):
    result = cli_stores("upload", "-r", "src", "local:f", "--include", "[abc")
    assert result.returncode == 2
    assert "Invalid value for '--include'" in result.stderr


def test_dry_run_prints_the_plan_and_changes_nothing(cli_stores, registry, src):
    make_tree(registry.local_root / "mirror", {"a.txt": FILES["a.txt"], "extra.bin": b"not in the source"})

    result = cli_stores("sync", "src", "local:mirror", "--delete", "--dry-run")

    assert result.returncode == 0, result.stderr
    *plan, last = result.stdout.splitlines()
    parsed = [PLAN_LINE.match(line) for line in plan]
    assert all(parsed), plan
    rows = [(m["verb"], m["path"], m["reason"]) for m in parsed if m]
    assert rows == [  # the changes only: the unchanged a.txt is in the summary's count, not a line of its own
        ("transfer", "b.bin", "new"),
        ("transfer", "docs/old/notes.tmp", "new"),
        ("transfer", "docs/readme.md", "new"),
        ("transfer", "img/x/y/photo.jpg", "new"),
        ("delete", "extra.bin", "not in source"),
    ]
    found = DRY_SUMMARY.match(last)
    assert found is not None, last
    assert (found["transferred"], found["skipped"], found["failed"], found["deleted"]) == ("4", "1", "0", "1")
    assert tree_of(registry.local_root / "mirror") == {"a.txt": FILES["a.txt"], "extra.bin": b"not in the source"}

    verbose = cli_stores("sync", "src", "local:mirror", "--delete", "--dry-run", "-v")  # -v: the skips too
    assert verbose.returncode == 0, verbose.stderr
    assert verbose.stdout.splitlines()[0] == "would skip a.txt (unchanged)"
    assert verbose.stdout.splitlines()[1:] == result.stdout.splitlines()


def test_dry_run_json_is_one_object_per_file_then_the_summary(cli_stores, registry, src):
    result = cli_stores("upload", "-r", "src", "local:plan", "--dry-run", "--json", "--exclude", "img/")

    assert result.returncode == 0, result.stderr
    files, last = json_lines(result.stdout)
    assert [obj["path"] for obj in files] == ["a.txt", "b.bin", "docs/old/notes.tmp", "docs/readme.md"]
    for obj in files:
        assert obj == {
            "path": obj["path"],
            "status": "transferred",
            "bytes": len(FILES[obj["path"]]),
            "size": len(FILES[obj["path"]]),
            "reason": "new",
            "error": None,
            "attempts": 0,
            "dry_run": True,
        }
    assert last["dry_run"] is True
    assert (last["transferred"], last["skipped"], last["failed"], last["deleted"]) == (4, 0, 0, 0)
    assert last["ok"] is True
    assert not (registry.local_root / "plan").exists()


@pytest.mark.parametrize(
    ("update", "expected"),
    [
        ("missing", {"a.txt": ("skipped", "exists"), "b.bin": ("skipped", "exists")}),
        ("changed", {"a.txt": ("transferred", "size differs"), "b.bin": ("skipped", "unchanged")}),
        ("all", {"a.txt": ("transferred", "replace"), "b.bin": ("transferred", "replace")}),
    ],
)
def test_update_modes(cli_stores, registry, update, expected):
    make_tree(cli_stores.cwd / "u", {"a.txt": b"new and longer", "b.bin": b"same"})
    make_tree(registry.local_root / "u", {"a.txt": b"old", "b.bin": b"same"})
    os.utime(cli_stores.cwd / "u" / "b.bin", (1_600_000_000, 1_600_000_000))  # older than the copy: unchanged

    result = cli_stores("upload", "-r", "u", "local:u", "--update", update, "--json")

    assert result.returncode == 0, result.stderr
    files, _ = json_lines(result.stdout)
    assert {obj["path"]: (obj["status"], obj["reason"]) for obj in files} == expected


def test_checksum_finds_a_same_size_change_that_times_miss(cli_stores, registry):
    root = cli_stores.cwd / "c"
    make_tree(root, {"x.txt": b"aaaa"})
    assert cli_stores("sync", "c", "local:c", "-q").returncode == 0
    (root / "x.txt").write_bytes(b"bbbb")  # same size, and an old time: by size and time it is unchanged
    os.utime(root / "x.txt", (1_600_000_000, 1_600_000_000))

    by_time = cli_stores("sync", "c", "local:c")
    assert counts(by_time) == (0, 1, 0, 0)
    by_digest = cli_stores("upload", "-r", "c", "local:c", "--checksum", "--json")  # --checksum implies changed
    assert by_digest.returncode == 0, by_digest.stderr
    files, _ = json_lines(by_digest.stdout)
    assert [(obj["path"], obj["status"], obj["reason"]) for obj in files] == [
        ("x.txt", "transferred", "content differs")
    ]
    assert (registry.local_root / "c" / "x.txt").read_bytes() == b"bbbb"

    conflict = cli_stores("upload", "-r", "c", "local:c", "--checksum", "--update", "all")
    assert conflict.returncode == 2
    assert "--checksum compares files only with --update changed, not all" in conflict.stderr


def test_follow_symlinks(cli_stores, registry, src):
    (cli_stores.cwd / "outside.txt").write_bytes(b"linked")
    (src / "link.txt").symlink_to(cli_stores.cwd / "outside.txt")

    skipped = cli_stores("upload", "-r", "src", "local:l1", "--json")
    files, _ = json_lines(skipped.stdout)
    assert {obj["path"]: obj["status"] for obj in files}["link.txt"] == "skipped"
    assert "link.txt" not in tree_of(registry.local_root / "l1")

    followed = cli_stores("upload", "-r", "src", "local:l2", "--follow-symlinks")
    assert followed.returncode == 0, followed.stderr
    assert tree_of(registry.local_root / "l2")["link.txt"] == b"linked"


# -- transfers, retries, bandwidth


@pytest.mark.parametrize("transfers", [1, 3])
def test_transfers_bounds_the_files_in_flight(cli_stores, src, tree_plugin_env, tmp_path, transfers):
    seen = tmp_path / "concurrency"
    env = {**tree_plugin_env, "RST_TREE_CONCURRENCY": str(seen)}
    result = cli_stores("upload", "-r", "src", "local:t", "--transfers", str(transfers), env=env)
    assert result.returncode == 0, result.stderr
    assert int(seen.read_text()) == transfers  # 5 files of 0.2 s each: the pool fills up, never beyond


def test_transfers_must_be_at_least_one(cli_stores, src):
    result = cli_stores("upload", "-r", "src", "local:t", "--transfers", "0")
    assert result.returncode == 2
    assert "Invalid value for '--transfers'" in result.stderr


def test_retries(cli_stores, registry, src, tree_plugin_env):
    env = {**tree_plugin_env, "RST_TREE_FAIL": "a.txt=flaky"}
    retried = cli_stores("upload", "-r", "src", "local:r1", "--json", env=env)
    assert retried.returncode == 0, retried.stderr
    files, _ = json_lines(retried.stdout)
    assert {obj["path"]: obj["attempts"] for obj in files}["a.txt"] == 2  # the default --retries 2 got it through

    no_retry = cli_stores("upload", "-r", "src", "local:r2", "--retries", "0", env=env)
    assert no_retry.returncode == 1  # ConnectionError has no code of its own
    assert counts(no_retry) == (4, 0, 1, 0)
    assert error_lines(no_retry) == ["a.txt: ConnectionError: flaky by the test plugin"]
    assert "a.txt" not in tree_of(registry.local_root / "r2")


@pytest.mark.parametrize("rate", ["10M", "512K", "1.5G", "1048576", "2MiB", "64kb/s"])
def test_bwlimit_accepts_rates(cli_stores, src, rate):
    result = cli_stores("upload", "-r", "src", "local:bw", "--bwlimit", rate, "-q")
    assert result.returncode == 0, result.stderr


def test_bwlimit_slows_the_tree_down(cli_stores, tmp_path):
    make_tree(cli_stores.cwd / "slow", {f"f{i}.bin": b"\0" * 256 * 1024 for i in range(4)})  # 1 MiB
    result = cli_stores("upload", "-r", "slow", "local:slow", "--bwlimit", "512K", "--json")
    assert result.returncode == 0, result.stderr
    _, last = json_lines(result.stdout)
    assert last["bytes"] == 1024 * 1024
    assert last["seconds"] >= 1.0  # 1 MiB at 512 KiB/s: about 2 s (the first chunk goes at once)


@pytest.mark.parametrize("rate", ["10Q", "0", "-1M", "fast", "1e6"])
def test_bwlimit_rejects_bad_rates(cli_stores, registry, src, rate):
    result = cli_stores("upload", "-r", "src", "local:bw", "--bwlimit", rate)
    assert result.returncode == 2
    assert "Invalid value for '--bwlimit'" in result.stderr
    assert not (registry.local_root / "bw").exists()


# -- failures and exit codes


@pytest.mark.parametrize(
    ("rules", "code", "lines"),
    [
        ("b.bin=denied", 5, ["b.bin: PermissionDenied: denied by the test plugin"]),
        ("a.txt=integrity", 6, ["a.txt: IntegrityError: "]),
        ("a.txt=integrity,b.bin=denied", 1, ["a.txt: IntegrityError: ", "b.bin: PermissionDenied: "]),
    ],
    ids=["all-denied", "all-integrity", "mixed"],
)
def test_exit_code_of_failed_files(cli_stores, registry, src, tree_plugin_env, rules, code, lines):
    result = cli_stores(
        "upload", "-r", "src", "local:e", "--transfers", "1", env={**tree_plugin_env, "RST_TREE_FAIL": rules}
    )

    assert result.returncode == code, result.stderr
    failed = len(lines)
    assert counts(result) == (5 - failed, 0, failed, 0)  # the other files still went
    got = sorted(error_lines(result))
    assert len(got) == failed
    for line, start in zip(got, lines, strict=True):
        assert line.startswith(start), got
    assert len(tree_of(registry.local_root / "e")) == 5 - failed


def test_exit_code_and_json_summary_when_a_file_fails(cli_stores, src, tree_plugin_env):
    result = cli_stores(
        "upload", "-r", "src", "local:j", "--json", env={**tree_plugin_env, "RST_TREE_FAIL": "b.bin=denied"}
    )
    assert result.returncode == 5
    files, last = json_lines(result.stdout)
    bad = [obj for obj in files if obj["status"] == "failed"]
    assert [(obj["path"], obj["attempts"]) for obj in bad] == [("b.bin", 1)]
    assert bad[0]["error"].startswith("PermissionDenied: denied by the test plugin")
    assert last["ok"] is False
    assert last["exit_code"] == 5
    assert last["error"] == "1 failed"
    assert last["failed"] == 1
    assert error_lines(result) == ["b.bin: PermissionDenied: denied by the test plugin"]


def test_fail_fast_starts_no_file_after_a_failure(cli_stores, registry, src, tree_plugin_env):
    env = {**tree_plugin_env, "RST_TREE_FAIL": "a.txt=denied"}  # a.txt is the first file of the sorted walk
    slow = cli_stores("upload", "-r", "src", "local:ff1", "--transfers", "1", env=env)
    assert counts(slow) == (4, 0, 1, 0)

    fast = cli_stores("upload", "-r", "src", "local:ff2", "--transfers", "1", "--fail-fast", env=env)
    assert fast.returncode == 5
    assert counts(fast) == (0, 0, 1, 0)
    assert tree_of(registry.local_root / "ff2") == {}


def test_missing_source_folder_is_not_found(cli_stores):
    result = cli_stores("upload", "-r", "nope", "local:x")
    assert result.returncode == 3
    assert error_lines(result) == [f"upload {cli_stores.cwd / 'nope'}: No such file or directory: nope"]


def test_a_file_where_a_folder_is_needed_is_a_usage_error(cli_stores):
    (cli_stores.cwd / "plain.txt").write_bytes(b"x")
    result = cli_stores("upload", "-r", "plain.txt", "local:x")
    assert result.returncode == 2
    assert "upload: the source 'plain.txt' is not a folder" in result.stderr


def test_copying_a_tree_into_itself_is_a_usage_error(cli_stores, registry):
    make_tree(registry.local_root / "in", FILES)
    result = cli_stores("copy", "-r", "local:in", "local:in/nested")
    assert result.returncode == 2
    assert "refusing to copy a tree into itself" in result.stderr
    assert tree_of(registry.local_root / "in") == FILES


@pytest.mark.parametrize(
    "args",
    [
        ("upload", "a.txt", "local:a.txt", "--include", "*.txt"),
        ("download", "local:a.txt", "a2.txt", "--dry-run"),
        ("copy", "local:a.txt", "local:b.txt", "--bwlimit", "1M", "--transfers", "2"),
    ],
)
def test_folder_options_need_r(cli_stores, args):
    (cli_stores.cwd / "a.txt").write_bytes(b"a")
    result = cli_stores(*args)
    assert result.returncode == 2
    assert "for folders only (add -r)" in result.stderr


def test_overwrite_is_for_single_files(cli_stores, src):
    result = cli_stores("upload", "-r", "src", "local:o", "--overwrite")
    assert result.returncode == 2
    assert "use --update changed or --update all" in result.stderr


def test_help_documents_sync_and_the_folder_exit_rule(cli):
    top = cli("--help")
    assert "  sync " in top.stdout
    rule = "When files fail, the exit code is theirs if they all share one (3, 4, 5, 6 or 7), else 1; 130 after Ctrl-C."
    assert rule in " ".join(top.stdout.split())
    sync = cli("sync", "--help")
    for option in (
        "--delete", "--include", "--exclude", "--dry-run", "--transfers", "--update", "--checksum",
        "--retries", "--fail-fast", "--bwlimit", "--atomic", "--follow-symlinks", "--json", "--quiet",
    ):  # fmt: skip
        assert option in sync.stdout, option
    assert "--overwrite " not in sync.stdout.split("Exit codes:")[0]
    upload = cli("upload", "--help")
    assert "-r, --recursive" in upload.stdout


# -- Ctrl-C


def test_ctrl_c_exits_130_with_the_summary(cli_stores, registry, plugin_env, tmp_path):
    make_tree(cli_stores.cwd / "big", {f"f{i}.bin": b"\0" * (8 * 1024 * 1024) for i in range(4)})
    marker = tmp_path / "marker"
    proc = cli_stores.interrupted(
        "upload", "-r", "big", "local:big", "--json", "--transfers", "2", marker=marker, env=plugin_env
    )
    stdout, stderr = proc.stdout, proc.stderr

    assert proc.returncode == 130, stderr
    assert (
        stderr.splitlines()[-1] == f"remote-store-transfer: interrupted: upload {cli_stores.cwd / 'big'} -> local:big"
    )
    files, last = json_lines(stdout)
    assert last["ok"] is False
    assert last["error"] == "interrupted"
    assert last["exit_code"] == 130
    assert last["transferred"] < 4
    assert 0 < last["bytes"] < 32 * 1024 * 1024
    cut = [obj["path"] for obj in files if obj["status"] == "failed"]
    assert cut  # the files in flight ended, as failed, and are named on stderr
    for path in cut:
        assert f"remote-store-transfer: interrupted: {path}" in stderr.splitlines()
