"""Issue 11, "Nothing lost": atomic by default, partial files named, errors at the right end, per-store ${VAR}.

Each test runs the CLI as a subprocess (see conftest.py).
"""

from __future__ import annotations

import json
import os
import textwrap
from pathlib import Path

import pytest

PREFIX = "remote-store-transfer: error: "
NOTE = "remote-store-transfer: note: "
MiB = 1024 * 1024

RECORDER = '''\
"""Appends "operation atomic" per transfer to the file $RST_ATOMIC_LOG (post_transfer)."""
import os

from remote_store_transfer import hookimpl


@hookimpl
def post_transfer(context, error):
    with open(os.environ["RST_ATOMIC_LOG"], "a") as fh:
        fh.write(f"{context.operation} {context.atomic}\\n")
'''

NO_ATOMIC_BACKEND = """\
# A backend type "noatomic": a local backend without Capability.ATOMIC_WRITE (registered at interpreter start).
from remote_store import Capability, register_backend
from remote_store._capabilities import CapabilitySet
from remote_store.backends import LocalBackend


class NoAtomicLocal(LocalBackend):
    CAPABILITIES = CapabilitySet(set(LocalBackend.CAPABILITIES._caps) - {Capability.ATOMIC_WRITE})

    @property
    def capabilities(self):
        return self.CAPABILITIES


register_backend("noatomic", NoAtomicLocal)
"""


# -- helpers


@pytest.fixture
def atomic_log(make_plugin_dist, tmp_path: Path) -> tuple[dict[str, str], Path]:
    """(env installing the recorder plugin, the file it writes)."""
    site = make_plugin_dist("rst_atomic_recorder", "atomicrecorder", RECORDER)
    log = tmp_path / "atomic.log"
    return {"PYTHONPATH": str(site), "RST_ATOMIC_LOG": str(log)}, log


def recorded(log: Path) -> list[str]:
    return sorted(log.read_text().splitlines()) if log.exists() else []


@pytest.fixture
def noatomic(cli_stores, registry, tmp_path: Path, plugin_env) -> tuple[dict[str, str], Path]:
    """(env, root): the registry gains store ``plain`` on a backend without ATOMIC_WRITE; the test plugin too."""
    site = tmp_path / "site-noatomic"
    site.mkdir()
    (site / "sitecustomize.py").write_text(NO_ATOMIC_BACKEND)
    root = tmp_path / "plain-root"
    root.mkdir()
    with open(registry.path, "a") as fh:
        fh.write(f'\n[backends.plain_b]\ntype = "noatomic"\noptions = {{ root = {json.dumps(str(root))} }}\n')
        fh.write('\n[stores.plain]\nbackend = "plain_b"\n')
    env = {**plugin_env, "PYTHONPATH": os.pathsep.join([str(site), plugin_env["PYTHONPATH"]])}
    return env, root


def no_bucket_registry(tmp_path: Path, endpoint: str) -> Path:
    path = tmp_path / "nobucket.toml"
    path.write_text(
        textwrap.dedent(
            f"""\
            [backends.gone]
            type = "s3"
            options = {{ bucket = "no-such-bucket", endpoint_url = "{endpoint}", key = "testing", \
secret = "testing", region_name = "us-east-1" }}

            [backends.disk]
            type = "local"
            options = {{ root = {json.dumps(str(tmp_path / "nb-root"))} }}

            [stores.nb]
            backend = "gone"

            [stores.disk]
            backend = "disk"
            """
        )
    )
    (tmp_path / "nb-root").mkdir()
    return path


# -- 1. atomic by default


@pytest.mark.parametrize("command", ["upload", "download", "copy"])
def test_single_file_commands_are_atomic_by_default(cli_stores, registry, atomic_log, command):
    env, log = atomic_log
    (cli_stores.cwd / "a.bin").write_bytes(b"a" * 100)
    (registry.local_root / "a.bin").write_bytes(b"a" * 100)
    args = {
        "upload": ["upload", "a.bin", "s3:a.bin"],
        "download": ["download", "local:a.bin", "b.bin"],
        "copy": ["copy", "local:a.bin", "s3:a.bin"],
    }[command]
    result = cli_stores(*args, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert recorded(log) == [f"{'transfer' if command == 'copy' else command} True"]


@pytest.mark.parametrize("command", ["upload", "download"])
def test_no_atomic_opts_out(cli_stores, registry, atomic_log, command):
    env, log = atomic_log
    (cli_stores.cwd / "a.bin").write_bytes(b"a")
    (registry.local_root / "a.bin").write_bytes(b"a")
    args = ["upload", "a.bin", "local:c.bin"] if command == "upload" else ["download", "local:a.bin", "c.bin"]
    result = cli_stores(*args, "--no-atomic", env=env)
    assert result.returncode == 0, result.stderr
    assert recorded(log) == [f"{command} False"]


def test_folder_commands_are_atomic_by_default(cli_stores, registry, atomic_log):
    env, log = atomic_log
    (cli_stores.cwd / "src").mkdir()
    for name in ("x", "y"):
        (cli_stores.cwd / "src" / name).write_bytes(name.encode())
    up = cli_stores("upload", "-r", "src", "local:tree", env=env)
    assert up.returncode == 0, up.stderr
    assert recorded(log) == ["upload True", "upload True"]
    log.unlink()
    down = cli_stores("sync", "local:tree", "back", env=env)
    assert down.returncode == 0, down.stderr
    assert recorded(log) == ["download True", "download True"]
    log.unlink()
    (cli_stores.cwd / "src" / "z").write_bytes(b"z")
    plain = cli_stores("sync", "src", "local:tree", "--no-atomic", env=env)
    assert plain.returncode == 0, plain.stderr
    assert recorded(log) == ["upload False"]


def test_a_default_download_that_fails_leaves_nothing(cli_stores, registry, plugin_env):
    """Downloads always go through a temp file: a source cut short leaves no file at all."""
    source = registry.local_root / "big.bin"
    source.write_bytes(b"b" * (3 * MiB))
    env = {**plugin_env, "RST_TEST_TRUNCATE": f"{source}:{MiB + 5}"}
    result = cli_stores("download", "local:big.bin", "copy.bin", env=env)
    assert result.returncode == 6, result.stderr
    assert sorted(p.name for p in cli_stores.cwd.iterdir()) == []
    assert "partial" not in result.stderr


def test_a_store_that_cannot_be_atomic_says_so_once(cli_stores, noatomic, atomic_log):
    env, root = noatomic
    rec_env, log = atomic_log
    env = {**env, "RST_ATOMIC_LOG": rec_env["RST_ATOMIC_LOG"]}
    env["PYTHONPATH"] = os.pathsep.join([env["PYTHONPATH"], rec_env["PYTHONPATH"]])
    (cli_stores.cwd / "src").mkdir()
    for name in ("x", "y", "z"):
        (cli_stores.cwd / "src" / name).write_bytes(name.encode())
    note = f"{NOTE}plain cannot write atomically: a failure can leave a partial file"

    tree = cli_stores("upload", "-r", "src", "plain:tree", env=env)
    assert tree.returncode == 0, tree.stderr
    assert tree.stderr.splitlines() == [note]
    assert sorted(p.name for p in (root / "tree").iterdir()) == ["x", "y", "z"]
    assert recorded(log) == ["upload False"] * 3

    single = cli_stores("upload", "src/x", "plain:one", env=env)
    assert single.returncode == 0, single.stderr
    assert single.stderr.splitlines() == [note]
    assert (root / "one").read_bytes() == b"x"

    quiet = cli_stores("upload", "src/y", "plain:two", "--no-atomic", env=env)
    assert quiet.returncode == 0, quiet.stderr
    assert quiet.stderr == ""


# -- 2. a failed non-atomic write names its partial file


def test_a_failed_non_atomic_download_names_the_partial_file(cli_stores, registry, plugin_env):
    source = registry.local_root / "big.bin"
    source.write_bytes(b"b" * (3 * MiB))
    env = {**plugin_env, "RST_TEST_TRUNCATE": f"{source}:{MiB + 5}"}
    result = cli_stores("download", "local:big.bin", "copy.bin", "--no-atomic", "--json", env=env)
    assert result.returncode == 6, result.stderr
    partial = str(cli_stores.cwd / "copy.bin")
    lines = result.stderr.splitlines()
    assert lines[-1].startswith(f"{PREFIX}download: the partial file {partial} may be left behind")
    assert json.loads(result.stdout)["partial"] == partial


def test_a_failed_write_into_a_non_atomic_store_names_the_partial_file(cli_stores, registry, noatomic):
    env, _root = noatomic
    source = registry.local_root / "big.bin"
    source.write_bytes(b"b" * (3 * MiB))
    env = {**env, "RST_TEST_TRUNCATE": f"{source}:{MiB + 5}"}
    result = cli_stores("copy", "local:big.bin", "plain:big.bin", env=env)
    assert result.returncode == 6, result.stderr
    lines = result.stderr.splitlines()
    assert lines[0].startswith(f"{NOTE}plain cannot write atomically")
    assert lines[-1].startswith(f"{PREFIX}copy: the partial file plain:big.bin may be left behind")


def test_an_error_before_any_byte_names_no_partial_file(cli_stores, registry):
    (registry.local_root / "a.txt").write_bytes(b"remote")
    (cli_stores.cwd / "a.txt").write_bytes(b"mine")
    result = cli_stores("download", "local:a.txt", "a.txt", "--no-atomic")
    assert result.returncode == 4
    assert "partial" not in result.stderr


# -- 3. errors name the right end; parent folders are made


def test_download_makes_missing_parent_folders(cli_stores, registry):
    (registry.local_root / "a.bin").write_bytes(b"abc")
    (registry.local_root / "d").mkdir()
    (registry.local_root / "d" / "b.bin").write_bytes(b"b")
    one = cli_stores("download", "local:a.bin", "new/deeper/a.bin")
    assert one.returncode == 0, one.stderr
    assert (cli_stores.cwd / "new" / "deeper" / "a.bin").read_bytes() == b"abc"
    tree = cli_stores("download", "-r", "local:d", "other/deep/d")
    assert tree.returncode == 0, tree.stderr
    assert (cli_stores.cwd / "other" / "deep" / "d" / "b.bin").read_bytes() == b"b"


@pytest.mark.parametrize("flag", [None, "--no-atomic"])
def test_a_download_under_a_file_is_a_destination_error(cli_stores, registry, flag):
    (registry.local_root / "a.bin").write_bytes(b"abc")
    (cli_stores.cwd / "plain").write_bytes(b"a file, not a folder")
    result = cli_stores("download", "local:a.bin", "plain/a.bin", "--json", *([flag] if flag else []))
    assert result.returncode == 7, result.stderr
    target = cli_stores.cwd / "plain" / "a.bin"
    assert len(result.stderr.splitlines()) == 1, result.stderr  # no partial file to name: no byte moved
    line = result.stderr.splitlines()[0]
    assert line.startswith(f"{PREFIX}download {target}: cannot write the destination {target}: ")
    assert json.loads(result.stdout)["exit_code"] == 7


def test_a_download_onto_a_folder_with_overwrite_is_a_destination_error(cli_stores, registry):
    (registry.local_root / "a.bin").write_bytes(b"abc")
    (cli_stores.cwd / "into" / "a.bin").mkdir(parents=True)  # the target name is taken by a folder
    result = cli_stores("download", "local:a.bin", "into", "--overwrite")
    assert result.returncode == 7, result.stderr
    assert result.stderr.startswith(f"{PREFIX}download {cli_stores.cwd / 'into' / 'a.bin'}: cannot write")


@pytest.mark.parametrize("command", ["upload", "copy"])
def test_a_missing_bucket_is_a_destination_error(cli, tmp_path, s3_endpoint, command):
    config = no_bucket_registry(tmp_path, s3_endpoint)
    (cli.cwd / "a.bin").write_bytes(b"abc")
    (tmp_path / "nb-root" / "a.bin").write_bytes(b"abc")
    source = "a.bin" if command == "upload" else "disk:a.bin"
    result = cli(command, source, "nb:a.bin", "--config", str(config))
    assert result.returncode == 7, result.stderr
    assert result.stderr.startswith(f"{PREFIX}{command} nb:a.bin: cannot write the destination nb:a.bin: ")
    assert "not found" not in result.stderr.split("cannot write the destination", 1)[0].lower()


def test_a_missing_source_is_still_not_found(cli, tmp_path, s3_endpoint):
    config = no_bucket_registry(tmp_path, s3_endpoint)
    result = cli("copy", "disk:missing.bin", "nb:a.bin", "--config", str(config))
    assert result.returncode == 3, result.stderr
    assert result.stderr.startswith(f"{PREFIX}copy disk:missing.bin: ")


# -- 4. one unset ${VAR} fails only its stores


def _var_registry(tmp_path: Path) -> Path:
    good = tmp_path / "good-root"
    good.mkdir()
    (good / "a.txt").write_bytes(b"good")
    path = tmp_path / "vars.toml"
    path.write_text(
        textwrap.dedent(
            f"""\
            [backends.ok]
            type = "local"
            options = {{ root = {json.dumps(str(good))} }}

            [backends.secretive]
            type = "local"
            options = {{ root = "${{RST_NEVER_SET_ROOT}}" }}

            [stores.good]
            backend = "ok"

            [stores.bad]
            backend = "secretive"
            """
        )
    )
    return path


def test_an_unset_variable_fails_only_the_store_that_uses_it(cli, tmp_path):
    config = _var_registry(tmp_path)
    ok = cli("download", "good:a.txt", "a.txt", "--config", str(config))
    assert ok.returncode == 0, ok.stderr
    assert (cli.cwd / "a.txt").read_bytes() == b"good"

    bad = cli("download", "bad:a.txt", "b.txt", "--config", str(config))
    assert bad.returncode == 2
    line = bad.stderr.strip()
    assert line.startswith(f"{PREFIX}download bad:a.txt: store 'bad' in {config} cannot be opened: ")
    assert "RST_NEVER_SET_ROOT" in line


# -- 5. memory stores are refused


@pytest.mark.parametrize(
    "args", [["upload", "a.bin", "mem:a.bin"], ["copy", "local:a.bin", "mem:a.bin"], ["sync", "src", "mem:x"]]
)
def test_a_memory_store_is_refused(cli_stores, registry, args):
    (cli_stores.cwd / "a.bin").write_bytes(b"a")
    (cli_stores.cwd / "src").mkdir()
    (registry.local_root / "a.bin").write_bytes(b"a")
    result = cli_stores(*args)
    assert result.returncode == 2
    assert "store 'mem'" in result.stderr
    assert "is a memory store: it would be gone when this command ends" in result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize("command", ["upload", "sync"])
def test_a_folder_into_a_missing_bucket_is_a_destination_error(cli, tmp_path, s3_endpoint, command):
    config = no_bucket_registry(tmp_path, s3_endpoint)
    (cli.cwd / "src").mkdir()
    (cli.cwd / "src" / "a").write_bytes(b"a")
    args = ["upload", "-r", "src", "nb:t"] if command == "upload" else ["sync", "src", "nb:t"]
    result = cli(*args, "--config", str(config))
    assert result.returncode == 7, result.stderr
    assert result.stderr.splitlines() == [
        f"{PREFIX}a: cannot write the destination nb:t/a: " + result.stderr.split("nb:t/a: ", 1)[1].rstrip("\n")
    ]


def test_a_folder_download_under_a_file_is_a_destination_error(cli_stores, registry):
    (registry.local_root / "d").mkdir()
    (registry.local_root / "d" / "b.bin").write_bytes(b"b")
    (cli_stores.cwd / "out").mkdir()
    (cli_stores.cwd / "out" / "sub").write_bytes(b"a file where a folder should be")
    (registry.local_root / "d" / "sub").mkdir()
    (registry.local_root / "d" / "sub" / "c.bin").write_bytes(b"c")
    result = cli_stores("download", "-r", "local:d", "out")
    assert result.returncode == 7, result.stderr
    assert f"{PREFIX}sub/c.bin: cannot write the destination {cli_stores.cwd / 'out' / 'sub' / 'c.bin'}: " in (
        result.stderr
    )
    assert (cli_stores.cwd / "out" / "b.bin").read_bytes() == b"b"


DENY_WRITE_BACKEND = """
# A backend type "denywrite": a local backend whose writes are refused by the store (PermissionDenied).
from remote_store import PermissionDenied, register_backend
from remote_store.backends import LocalBackend


class DenyWriteLocal(LocalBackend):
    def write(self, path, content, **kwargs):
        content.read(1)  # the data has started to move when the store refuses
        raise PermissionDenied("write refused by the store", path=path, backend=self.name)

    write_atomic = write


register_backend("denywrite", DenyWriteLocal)
"""


def test_a_store_that_refuses_the_write_is_a_destination_error(cli_stores, registry, tmp_path):
    """An upload's store raising PermissionDenied while the data moves exits 7 and names the destination."""
    site = tmp_path / "site-denywrite"
    site.mkdir()
    (site / "sitecustomize.py").write_text(DENY_WRITE_BACKEND)
    root = tmp_path / "denied-root"
    root.mkdir()
    with open(registry.path, "a") as fh:
        fh.write(f'\n[backends.deny_b]\ntype = "denywrite"\noptions = {{ root = {json.dumps(str(root))} }}\n')
        fh.write('\n[stores.denied]\nbackend = "deny_b"\n')
    source = registry.local_root / "f.bin"
    source.write_bytes(b"x" * 1000)
    result = cli_stores("upload", str(source), "denied:f.bin", "--json", env={"PYTHONPATH": str(site)})
    assert result.returncode == 7, result.stderr
    assert "cannot write the destination denied:f.bin" in result.stderr
    assert json.loads(result.stdout)["exit_code"] == 7
