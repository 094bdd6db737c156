"""Fixtures for the command-line tests: the session's moto S3 server, a registry TOML, real test plugins, a CLI runner.

The CLI runs in this process by default (as pytest's ``runpytest_inprocess``):
the real ``main()`` with its exit-code mapping, in *cwd*, with a clean
environment (no plugin variables unless a test sets them), its own stdin,
stdout and stderr, and a fresh process-wide plugin manager. What needs a real
process runs as one (``python -m remote_store_transfer``): :meth:`Cli.subprocess`,
:meth:`Cli.piped` (pipes), the terminal and signal tests, and every call whose
environment sets ``PYTHONPATH`` (a plugin installed as a distribution is found
by a new interpreter's import system, not by this one's).
"""

from __future__ import annotations

import json
import logging
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest
from click.testing import CliRunner

from harness import MotoServer

BUCKET = "cli-tests"
S3_KEY = "testing"
S3_SECRET = "testing"
REGION = "us-east-1"

_PLUGIN_VARS = ("REMOTE_STORE_TRANSFER_",)


@pytest.fixture(scope="session")
def s3_endpoint(moto_server: MotoServer) -> str:
    """The endpoint URL of the session's moto server (``tests/conftest.py``), with the bucket ``cli-tests``."""
    moto_server.make_bucket(BUCKET)
    return moto_server.endpoint


def s3_client(endpoint: str) -> Any:
    """A boto3 S3 client on the moto server (to check what the CLI wrote)."""
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=S3_KEY,
        aws_secret_access_key=S3_SECRET,
        region_name=REGION,
    )


@dataclass
class Registry:
    """A registry TOML with stores ``local`` (a temp dir), ``mem`` (memory) and ``s3`` (moto, a per-test prefix)."""

    path: Path
    local_root: Path
    s3_endpoint: str
    s3_prefix: str

    def s3_get(self, key: str) -> bytes:
        """The bytes of *key* in the ``s3`` store, read with boto3."""
        body = s3_client(self.s3_endpoint).get_object(Bucket=BUCKET, Key=f"{self.s3_prefix}/{key}")["Body"]
        data: bytes = body.read()
        return data

    def s3_keys(self) -> list[str]:
        """Every key under the ``s3`` store's prefix, read with boto3."""
        listing = s3_client(self.s3_endpoint).list_objects_v2(Bucket=BUCKET, Prefix=f"{self.s3_prefix}/")
        return [item["Key"] for item in listing.get("Contents", [])]

    def s3_put(self, key: str, data: bytes) -> None:
        """Put *data* at *key* of the ``s3`` store with boto3."""
        s3_client(self.s3_endpoint).put_object(Bucket=BUCKET, Key=f"{self.s3_prefix}/{key}", Body=data)


@pytest.fixture
def registry(tmp_path: Path, s3_endpoint: str) -> Registry:
    local_root = tmp_path / "local-root"
    local_root.mkdir()
    prefix = f"t-{uuid.uuid4().hex[:12]}"
    path = tmp_path / "stores.toml"
    path.write_text(
        textwrap.dedent(
            f"""\
            [backends.disk]
            type = "local"
            options = {{ root = {json.dumps(str(local_root))} }}

            [backends.ram]
            type = "memory"

            [backends.moto]
            type = "s3"
            options = {{ bucket = "{BUCKET}", endpoint_url = "{s3_endpoint}", key = "{S3_KEY}", \
secret = "{S3_SECRET}", region_name = "{REGION}" }}

            [stores.local]
            backend = "disk"

            [stores.mem]
            backend = "ram"

            [stores.s3]
            backend = "moto"
            root_path = "{prefix}"
            """
        )
    )
    return Registry(path, local_root, s3_endpoint, prefix)


@dataclass
class Cli:
    """Runs ``python -m remote_store_transfer ARGS`` in *cwd* with a clean environment plus *env*."""

    cwd: Path
    env: dict[str, str] = field(default_factory=dict)

    def environment(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        base = {k: v for k, v in os.environ.items() if not k.startswith(_PLUGIN_VARS)}
        base.update(self.env)
        base.update(extra or {})
        return base

    def command(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "remote_store_transfer", *args]

    def __call__(self, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        """The CLI with *args*: in this process, unless the environment installs plugins (``PYTHONPATH``)."""
        if "PYTHONPATH" in self.env or "PYTHONPATH" in (env or {}):
            return self.subprocess(*args, env=env)
        return run_in_process(list(args), self.cwd, self.environment(env))

    def subprocess(self, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        """The CLI with *args* as a real ``python -m remote_store_transfer`` process."""
        return subprocess.run(
            self.command(*args),
            cwd=self.cwd,
            env=self.environment(env),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    def interrupted(
        self, *args: str, marker: Path, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """The CLI as a process, sent SIGINT once *marker* exists (a plugin made it at the first chunk).

        *env* installs the plugin (``PYTHONPATH``) and steers it; the child gets the default SIGINT
        handler whatever this process has. Gives up (a failed assertion) after 60 s without a chunk.
        """
        proc = subprocess.Popen(
            self.command(*args),
            cwd=self.cwd,
            env=self.environment(
                {"RST_TEST_RATE": str(8 * 1024 * 1024), "RST_TEST_MARKER": str(marker), **(env or {})}
            ),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            preexec_fn=_default_sigint,  # noqa: PLW1509 -- it only resets SIGINT, before exec
        )
        try:
            deadline = time.monotonic() + 60
            while not marker.exists():
                assert proc.poll() is None, proc.communicate()
                assert time.monotonic() < deadline, "no chunk moved within 60 s"
                time.sleep(0.02)
            proc.send_signal(signal.SIGINT)
            stdout, stderr = proc.communicate(timeout=60)
        finally:
            proc.kill()
        return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)

    def piped(
        self, *args: str, data: bytes = b"", env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[bytes]:
        """The CLI with *data* piped to its stdin; stdout and stderr as bytes."""
        return subprocess.run(
            self.command(*args), cwd=self.cwd, env=self.environment(env), input=data, capture_output=True, timeout=120
        )


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def run_in_process(args: list[str], cwd: Path, environment: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """``main(args)`` in this process as a subprocess would run it: *cwd*, exactly *environment*, empty stdin.

    An exception that escapes ``main()`` is printed as the interpreter would
    print it, with exit code 1. Afterwards nothing of the call is left: the
    environment, the working folder, the process-wide plugin manager and the
    ``-v`` log handler are as before.
    """
    from remote_store_transfer.cli import main, verbosity
    from remote_store_transfer.runtime import reset_plugin_manager

    saved_env, saved_cwd = dict(os.environ), os.getcwd()
    root = logging.getLogger()
    saved_levels = {name: logging.getLogger(name).level for name in ("", *verbosity.QUIET_AT_DEBUG)}
    os.environ.clear()
    os.environ.update(environment)
    os.chdir(cwd)
    reset_plugin_manager()
    try:
        with CliRunner().isolation() as (stdout, stderr, _):
            try:
                main(args)
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
            except BaseException:  # what the interpreter prints for an uncaught error
                traceback.print_exc()
                code = 1
            else:
                code = 0
            sys.stdout.flush()
            sys.stderr.flush()
            out, err = stdout.getvalue(), stderr.getvalue()
    finally:
        if verbosity._handler is not None:
            root.removeHandler(verbosity._handler)
            verbosity._handler = None
        for name, level in saved_levels.items():
            logging.getLogger(name).setLevel(level)
        reset_plugin_manager()
        os.chdir(saved_cwd)
        os.environ.clear()
        os.environ.update(saved_env)
    text = {"encoding": "utf-8", "errors": "replace"}
    return subprocess.CompletedProcess(args, code, out.decode(**text), err.decode(**text))


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    """A CLI runner in *tmp_path*/work, with no store registry configured."""
    work = tmp_path / "work"
    work.mkdir()
    return Cli(work)


@pytest.fixture
def cli_stores(cli: Cli, registry: Registry) -> Cli:
    """The CLI runner with ``REMOTE_STORE_TRANSFER_STORES`` naming :func:`registry`."""
    cli.env["REMOTE_STORE_TRANSFER_STORES"] = str(registry.path)
    return cli


TEST_PLUGIN = '''\
"""A real third-party plugin for the CLI tests, steered by environment variables.

RST_TEST_RATE      bytes per second: on_chunk sleeps so the transfer runs no faster
RST_TEST_MARKER    a file created at the first chunk (the test then knows data moves)
RST_TEST_DENY      when set: pre_transfer raises remote_store.PermissionDenied
RST_TEST_REJECT    when set: post_transfer rejects the transfer with IntegrityError (a verifier's way)
RST_TEST_TRUNCATE  "PATH:N": at the first chunk, cut the file PATH down to N bytes (a source that ends early)
"""
import os
import time

from remote_store import PermissionDenied

from remote_store_transfer import hookimpl

_RATE = float(os.environ.get("RST_TEST_RATE", "0"))
_MARKER = os.environ.get("RST_TEST_MARKER")
_TRUNCATE = os.environ.get("RST_TEST_TRUNCATE")
_truncated = []


@hookimpl
def pre_transfer(context):
    if os.environ.get("RST_TEST_DENY"):
        raise PermissionDenied("denied by the test plugin", path=context.source.path)


@hookimpl
def post_transfer(context, error):
    if error is None and os.environ.get("RST_TEST_REJECT"):
        from remote_store_transfer.errors import IntegrityError

        raise IntegrityError(
            "sha256", "00" * 32, "ff" * 32, context.source.describe(), context.destination.describe()
        )


@hookimpl
def on_chunk(context, nbytes):
    if _MARKER and not os.path.exists(_MARKER):
        open(_MARKER, "w").close()
    if _TRUNCATE and not _truncated:
        path, size = _TRUNCATE.rsplit(":", 1)
        os.truncate(path, int(size))
        _truncated.append(path)
    if _RATE:
        time.sleep(nbytes / _RATE)
'''


@pytest.fixture
def make_plugin_dist(tmp_path: Path) -> Callable[..., Path]:
    """make_plugin_dist(dist, entry_name, module_source) -> a directory to put on PYTHONPATH.

    It holds the module ``<dist>_mod.py`` and ``<dist>-0.0.0.dist-info`` with
    METADATA and an ``entry_points.txt`` declaring *entry_name* in the group
    ``remote_store_transfer``: a real installed distribution as far as
    importlib.metadata is concerned.
    """

    def make(dist: str, entry_name: str, source: str = TEST_PLUGIN) -> Path:
        root = tmp_path / f"site-{dist}"
        info = root / f"{dist}-0.0.0.dist-info"
        info.mkdir(parents=True)
        module = f"{dist}_mod"
        (root / f"{module}.py").write_text(source)
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.0.0\n")
        (info / "entry_points.txt").write_text(f"[remote_store_transfer]\n{entry_name} = {module}\n")
        return root

    return make


@pytest.fixture
def plugin_env(make_plugin_dist: Callable[..., Path]) -> dict[str, str]:
    """Environment that installs the test plugin ``throttle`` (distribution ``rst_cli_testplugin``)."""
    site = make_plugin_dist("rst_cli_testplugin", "throttle")
    return {"PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}


def tmux(socket: Path, *args: str) -> str:
    """Run ``tmux -S SOCKET ARGS``; its stdout."""
    tmux_bin = shutil.which("tmux")
    assert tmux_bin, "tmux is needed for the terminal tests (.ci/run installs it)"
    result = subprocess.run([tmux_bin, "-u", "-S", str(socket), *args], capture_output=True, text=True, check=True)
    return result.stdout


def run_in_terminal(
    cli: Cli, *args: str, env: dict[str, str] | None = None, watch: Callable[[str], None] | None = None
) -> tuple[str, str]:
    """Run the CLI with *args* in a 120x30 tmux pane; ``(exit code, last screen)``.

    *watch* is called with every screen read while the command runs (every 50 ms).
    Gives up (a failed assertion showing the screen) after 120 s.
    """
    environment = cli.environment({**(env or {}), "TERM": "xterm-256color"})
    done = cli.cwd / "exit-code"
    done.unlink(missing_ok=True)
    script = cli.cwd / "run.sh"
    exports = "".join(f"export {k}={shlex.quote(v)}\n" for k, v in environment.items() if k.isidentifier())
    command = shlex.join(cli.command(*args))
    script.write_text(f"{exports}cd {shlex.quote(str(cli.cwd))}\n{command}\necho $? > {done}\nsleep 600\n")
    # A short socket path (sockets are limited to about 100 characters).
    with tempfile.TemporaryDirectory(prefix="rst-tmux-", dir="/tmp") as sockdir:
        socket = Path(sockdir) / "s"
        tmux(
            socket, "-f", "/dev/null", "new-session", "-d", "-x", "120", "-y", "30", f"bash {shlex.quote(str(script))}"
        )
        try:
            deadline = time.monotonic() + 120
            while not done.exists():
                screen = tmux(socket, "capture-pane", "-p", "-J")
                assert time.monotonic() < deadline, screen
                if watch is not None:
                    watch(screen)
                time.sleep(0.05)
            screen = tmux(socket, "capture-pane", "-p", "-J")
        finally:
            tmux(socket, "kill-server")
    return done.read_text().strip(), screen


@pytest.fixture
def terminal() -> Callable[..., tuple[str, str]]:
    """:func:`run_in_terminal`: run the CLI in a tmux pane."""
    return run_in_terminal
