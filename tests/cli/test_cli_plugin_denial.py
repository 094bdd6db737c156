"""A third-party plugin's ``TransferDenied`` exits like a policy denial (5) and is named in the error lines."""

from __future__ import annotations

import json
import os

import pytest

VETO_PLUGIN = '''\
"""A real third-party plugin that refuses every transfer (or, with RST_VETO_BATCH, every tree) of its paths."""
import os

from remote_store_transfer import TransferDenied, hookimpl


@hookimpl
def pre_transfer(context):
    if "secret" in context.source.path:
        raise TransferDenied("no-secrets", "secret files stay where they are", transfer=context.describe())


@hookimpl
def pre_batch(batch):
    if os.environ.get("RST_VETO_BATCH"):
        raise TransferDenied("closed", "no trees today")
'''

PREFIX = "remote-store-transfer: error: "
NAMED = "denied by plugin 'vetoer' (rule 'no-secrets'): secret files stay where they are"


@pytest.fixture
def veto_env(make_plugin_dist):
    site = make_plugin_dist("rst_cli_vetoer", "vetoer", VETO_PLUGIN)
    return {"PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}


@pytest.fixture
def tree(cli_stores, registry):
    """A local folder and the same files in the store ``local`` under ``tree/``: two of the four are secret."""
    folder = cli_stores.cwd / "tree"
    for name in ("a.txt", "secret-1.txt", "sub/b.txt", "sub/secret-2.txt"):
        for root in (folder, registry.local_root / "tree"):
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            (root / name).write_text(name)
    return folder


def test_plugins_lists_the_vetoer_as_third_party(cli_stores, veto_env):
    rows = {row["name"]: row for row in json.loads(cli_stores("plugins", "--json", env=veto_env).stdout)}
    assert rows["vetoer"]["kind"] == "third-party"


@pytest.mark.parametrize(
    ("args", "where"),
    [
        (("upload", "tree/secret-1.txt", "local:up/"), "upload {cwd}/tree/secret-1.txt -> local:up/secret-1.txt"),
        (("download", "local:tree/secret-1.txt", "out.txt"), "download local:tree/secret-1.txt -> {cwd}/out.txt"),
        (
            ("copy", "local:tree/secret-1.txt", "local:copied/"),
            "copy local:tree/secret-1.txt -> local:copied/secret-1.txt",
        ),
    ],
)
def test_a_single_file_denied_by_a_third_party_plugin_exits_5(cli_stores, registry, tree, veto_env, args, where):
    result = cli_stores(*args, env=veto_env)
    assert result.returncode == 5, result.stderr
    assert result.stderr.splitlines() == [f"{PREFIX}{where.format(cwd=cli_stores.cwd)}: {NAMED}"]
    assert not (cli_stores.cwd / "out.txt").exists()
    assert not (registry.local_root / "up").exists() and not (registry.local_root / "copied").exists()


def test_json_of_a_denied_file_carries_exit_code_5_and_names_the_plugin(cli_stores, tree, veto_env):
    result = cli_stores("upload", "tree/secret-1.txt", "local:up/", "--json", env=veto_env)
    assert result.returncode == 5
    data = json.loads(result.stdout)
    assert data["exit_code"] == 5
    assert data["error"] == NAMED


@pytest.mark.parametrize(
    "args",
    [
        ("upload", "-r", "tree", "local:up"),
        ("download", "-r", "local:tree", "down"),
        ("copy", "-r", "local:tree", "local:copied"),
        ("sync", "tree", "local:synced"),
    ],
)
def test_denied_files_of_a_tree_fail_with_5_and_the_others_go(cli_stores, tree, veto_env, args):
    result = cli_stores(*args, "--json", env=veto_env)
    assert result.returncode == 5, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    files = {line["path"]: line for line in lines[:-1]}
    assert {path: line["status"] for path, line in files.items()} == {
        "a.txt": "transferred",
        "sub/b.txt": "transferred",
        "secret-1.txt": "failed",
        "sub/secret-2.txt": "failed",
    }
    assert files["secret-1.txt"]["error"] == f"TransferDenied: {NAMED}"
    assert lines[-1]["exit_code"] == 5
    assert lines[-1]["failed"] == 2
    errors = sorted(line for line in result.stderr.splitlines() if line.startswith(PREFIX))
    assert errors == [
        f"{PREFIX}secret-1.txt: TransferDenied: {NAMED}",
        f"{PREFIX}sub/secret-2.txt: TransferDenied: {NAMED}",
    ]


def test_a_tree_vetoed_in_pre_batch_exits_5_naming_the_plugin(cli_stores, tree, veto_env):
    result = cli_stores("upload", "-r", "tree", "local:up", env={**veto_env, "RST_VETO_BATCH": "1"})
    assert result.returncode == 5, result.stderr
    assert (
        f"{PREFIX}upload {cli_stores.cwd}/tree -> local:up: denied by plugin 'vetoer' (rule 'closed'): no trees today"
        in (result.stderr.splitlines())
    )
