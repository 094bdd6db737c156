"""Rules that hold for deletions too: ``delete=True`` runs ``pre_delete`` / ``post_delete`` on real stores.

Policy's ``read_only`` and path rules refuse a tree's deletions (``TransferDenied``, nothing deleted), the
audit records every deletion in its chain (and the batch record lists it), and ``deny_overwrite`` refuses
only the tree files that replace one. Memory, local and S3 (moto) stores.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from remote_store import Store
from treekit import read_store, write_local, write_store

from remote_store_transfer import DeleteContext, TransferDenied, TransferManager, hookimpl
from remote_store_transfer.audit import AuditPlugin, verify_logs
from remote_store_transfer.plugin.policy import PolicyPlugin, store_location

KINDS = ("memory", "local", "s3")
KEPT = {"a.txt": b"alpha", "sub/b.txt": b"bravo"}
EXTRA = {"old.txt": b"only at the destination", "sub/gone.txt": b"also", "keep/x.txt": b"guarded"}


@pytest.fixture(params=KINDS)
def dst(request: pytest.FixtureRequest, make_store) -> Store:
    """A destination store holding what the source holds plus three files the source does not."""
    store: Store = make_store(request.param)
    write_store(store, "mirror", {**KEPT, **EXTRA})
    return store


@pytest.fixture
def src(tmp_path: Path) -> Path:
    """The source: the destination's kept files, an hour older than the destination's copies.

    Never newer: a store that keeps write times to the second (moto) could otherwise see a file written
    a moment later as changed, and the test would count one more upload now and then.
    """
    root = write_local(tmp_path / "src", KEPT)
    an_hour_ago = time.time() - 3600
    for rel in KEPT:
        os.utime(root / rel, (an_hour_ago, an_hour_ago))
    return root


def _sync(manager: TransferManager, src: Path, dst: Store):
    return manager.upload_tree(dst, src, "mirror", update="changed", delete=True, max_delete=None)


@pytest.mark.parametrize(
    "rule",
    [
        pytest.param(lambda dst: {"read_only": [dst]}, id="read_only-store"),
        pytest.param(lambda dst: {"read_only": [store_location(dst, "mirror") + "/*"]}, id="read_only-pattern"),
        pytest.param(
            lambda dst: {"read_only": [store_location(dst, "mirror") + "/*"], "physical": True},
            id="read_only-physical",
        ),
    ],
)
def test_read_only_refuses_every_deletion_and_deletes_nothing(dst, src, rule):
    manager = TransferManager(plugins=[PolicyPlugin(**rule(dst))])

    result = _sync(manager, src, dst)

    assert sorted(result.failed) == sorted(EXTRA)
    assert result.deleted == []
    for path, error in result.failed.items():
        assert isinstance(error, TransferDenied), (path, error)
        assert error.rule == "read_only"
        assert f"delete {dst!r}:mirror/{path}" in str(error)
    assert read_store(dst, "mirror") == {**KEPT, **EXTRA}


@pytest.mark.parametrize("physical", [False, True])
def test_a_denied_path_is_not_deleted_and_the_others_are(dst, src, physical):
    deny = [store_location(dst, "mirror") + "/keep/*"] if physical else ["mirror/keep/*"]
    manager = TransferManager(plugins=[PolicyPlugin(upload={"deny": deny}, physical=physical)])

    result = _sync(manager, src, dst)

    assert list(result.failed) == ["keep/x.txt"]
    error = result.failed["keep/x.txt"]
    assert isinstance(error, TransferDenied)
    assert error.rule == "upload.deny"
    assert sorted(result.deleted) == ["old.txt", "sub/gone.txt"]
    assert read_store(dst, "mirror") == {**KEPT, "keep/x.txt": b"guarded"}


def test_transfer_rules_guard_a_transfer_trees_deletions(dst, make_store):
    source = make_store("memory")
    write_store(source, "from", KEPT)
    manager = TransferManager(plugins=[PolicyPlugin(transfer={"deny": ["*/old.txt"]})])

    result = manager.transfer_tree(source, "from", dst, "mirror", update="changed", delete=True, max_delete=None)

    assert list(result.failed) == ["old.txt"]
    assert result.failed["old.txt"].rule == "transfer.deny"
    assert sorted(result.deleted) == ["keep/x.txt", "sub/gone.txt"]
    assert read_store(dst, "mirror") == {**KEPT, "old.txt": EXTRA["old.txt"]}


def test_the_audit_records_every_deletion_and_the_chain_verifies(dst, src, tmp_path):
    log = tmp_path / "audit.jsonl"
    manager = TransferManager(plugins=[AuditPlugin(path=log)])
    write_local(src, {"new.txt": b"new"})

    result = _sync(manager, src, dst)

    assert result.ok, result.failed
    assert sorted(result.deleted) == sorted(EXTRA)
    records = [json.loads(line) for line in log.read_text().splitlines()]
    deletions = [r for r in records if r.get("operation") == "delete"]
    assert sorted(r["target"]["path"] for r in deletions) == sorted(f"mirror/{p}" for p in EXTRA)
    for record in deletions:
        assert record["outcome"] == "success"
        assert record["error"] is None
        assert record["size"] == len(EXTRA[record["target"]["path"].removeprefix("mirror/")])
        assert record["target"]["location"] == store_location(dst, record["target"]["path"])
    (batch,) = [r for r in records if r.get("kind") == "batch"]
    assert batch["counts"]["deleted"] == 3
    uploads = [r["id"] for r in records if r.get("operation") == "upload"]
    assert batch["files"] == [r["id"] for r in records if "kind" not in r]  # in log order
    assert sorted(batch["files"]) == sorted(uploads + [r["id"] for r in deletions])
    report = verify_logs(log)
    assert report.ok, report
    assert report.listed == 4  # one upload and three deletions, each with its record


def test_refused_deletions_are_audited_as_failures(dst, src, tmp_path):
    log = tmp_path / "audit.jsonl"
    manager = TransferManager(plugins=[AuditPlugin(path=log), PolicyPlugin(read_only=[dst])])

    result = _sync(manager, src, dst)

    assert sorted(result.failed) == sorted(EXTRA)
    deletions = [json.loads(line) for line in log.read_text().splitlines() if '"operation":"delete"' in line]
    assert len(deletions) == 3
    for record in deletions:
        assert record["outcome"] == "failure"
        assert record["error"]["type"] == "TransferDenied"
    assert verify_logs(log).ok
    assert read_store(dst, "mirror") == {**KEPT, **EXTRA}


@pytest.mark.parametrize("kind", KINDS)
def test_deny_overwrite_passes_new_files_and_refuses_replacements(make_store, tmp_path, kind):
    store = make_store(kind)
    write_store(store, "up", {"changed.txt": b"old"})
    src = write_local(tmp_path / "src", {"changed.txt": b"new content", "new.txt": b"new", "sub/new2.txt": b"n2"})
    manager = TransferManager(plugins=[PolicyPlugin(deny_overwrite=True)])

    result = manager.upload_tree(store, src, "up", update="changed")

    assert sorted(result.transferred) == ["new.txt", "sub/new2.txt"]
    assert list(result.failed) == ["changed.txt"]
    error = result.failed["changed.txt"]
    assert isinstance(error, TransferDenied)
    assert error.rule == "deny_overwrite"
    assert read_store(store, "up") == {"changed.txt": b"old", "new.txt": b"new", "sub/new2.txt": b"n2"}


@pytest.mark.parametrize("kind", KINDS)
def test_deny_overwrite_in_a_transfer_tree_between_stores(make_store, kind):
    source, destination = make_store("memory"), make_store(kind, 1)
    write_store(source, "a", {"x.txt": b"xx", "y.txt": b"new"})
    write_store(destination, "b", {"x.txt": b"x"})
    manager = TransferManager(plugins=[PolicyPlugin(deny_overwrite=True)])

    result = manager.transfer_tree(source, "a", destination, "b", update="changed")

    assert result.transferred == ["y.txt"]
    assert list(result.failed) == ["x.txt"]
    assert read_store(destination, "b") == {"x.txt": b"x", "y.txt": b"new"}


def test_a_single_overwrite_is_still_refused(make_store, tmp_path):
    """Outside a tree nothing says whether overwrite=True replaces a file: deny_overwrite refuses it, as before."""
    store = make_store("memory")
    (tmp_path / "f").write_bytes(b"f")
    manager = TransferManager(plugins=[PolicyPlugin(deny_overwrite=True)])
    with pytest.raises(TransferDenied, match="overwrite=True"):
        manager.upload(store, tmp_path / "f", "f", overwrite=True)
    assert not store.exists("f")


class _DeleteHooks:
    """Records the deletion hooks; refuses *refuse* in pre_delete and fails *reject* in post_delete."""

    def __init__(self, refuse: str = "", reject: str = "") -> None:
        self.refuse, self.reject = refuse, reject
        self.pre: list[DeleteContext] = []
        self.post: list[tuple[str, BaseException | None]] = []

    @hookimpl
    def pre_delete(self, context: DeleteContext) -> None:
        self.pre.append(context)
        if context.path.endswith(self.refuse or "\0"):
            raise PermissionError("refused by the test plugin")

    @hookimpl
    def post_delete(self, context: DeleteContext, error: BaseException | None) -> None:
        self.post.append((context.path, error))
        if context.path.endswith(self.reject or "\0"):
            raise RuntimeError("could not record the deletion")


def test_the_deletion_hooks_see_each_file_and_their_errors_decide_the_outcome(dst, src):
    hooks = _DeleteHooks(refuse="old.txt", reject="gone.txt")
    result = _sync(TransferManager(plugins=[hooks]), src, dst)

    assert sorted(c.path for c in hooks.pre) == sorted(f"mirror/{p}" for p in EXTRA)
    context = next(c for c in hooks.pre if c.path == "mirror/keep/x.txt")
    assert (context.operation, context.store, context.size) == ("delete", dst, len(EXTRA["keep/x.txt"]))
    assert context.location == store_location(dst, "mirror/keep/x.txt")
    assert context.batch is not None and context.batch.id == result.batch_id
    post = dict(hooks.post)
    assert isinstance(post["mirror/old.txt"], PermissionError)  # pre_delete's refusal reaches post_delete
    assert post["mirror/sub/gone.txt"] is None and post["mirror/keep/x.txt"] is None
    # pre_delete refused old.txt: kept, failed with that error; post_delete failed gone.txt: deleted, failed
    assert result.deleted == ["keep/x.txt"]
    assert isinstance(result.failed["old.txt"], PermissionError)
    assert isinstance(result.failed["sub/gone.txt"], RuntimeError)
    assert any("post_delete of plugin" in n for n in result.failed["sub/gone.txt"].__notes__)
    assert read_store(dst, "mirror") == {**KEPT, "old.txt": EXTRA["old.txt"]}


def test_a_dry_run_calls_no_deletion_hook(dst, src):
    hooks = _DeleteHooks()
    result = TransferManager(plugins=[hooks]).upload_tree(
        dst, src, "mirror", delete=True, max_delete=None, dry_run=True
    )
    assert sorted(result.deleted) == sorted(EXTRA)
    assert hooks.pre == [] and hooks.post == []
    assert read_store(dst, "mirror") == {**KEPT, **EXTRA}
