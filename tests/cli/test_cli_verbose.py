"""``-v`` / ``-vv``: log records of the plugins, remote-store and the library on stderr (real subprocesses)."""

from __future__ import annotations

import os
import re

import pytest

RECORD = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (?P<level>[A-Z]+) (?P<logger>[\w.]+): (?P<message>.*)$")


def records(stderr: str) -> list[tuple[str, str, str]]:
    """``(level, logger, message)`` of each log record line of *stderr*."""
    return [(m["level"], m["logger"], m["message"]) for line in stderr.splitlines() if (m := RECORD.match(line))]


@pytest.fixture
def logging_env(tmp_path):
    config = tmp_path / "plugins.toml"
    config.write_text("[plugins.logging]\n")
    return {"REMOTE_STORE_TRANSFER_CONFIG": str(config)}


@pytest.fixture
def source(cli_stores):
    path = cli_stores.cwd / "report.csv"
    path.write_bytes(b"a,b\n1,2\n")
    return path


def test_without_v_no_info_record_is_shown(cli_stores, source, logging_env):
    result = cli_stores("upload", "report.csv", "local:report.csv", env=logging_env)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert records(result.stdout) == []


@pytest.mark.parametrize("where", ["before", "after"])
def test_v_shows_the_logging_plugins_lines_and_remote_stores_on_stderr(cli_stores, source, logging_env, where):
    args = ["upload", "report.csv", "local:report.csv"]
    args = ["-v", *args] if where == "before" else [*args, "--verbose"]
    result = cli_stores(*args, env=logging_env)
    assert result.returncode == 0, result.stderr
    logged = records(result.stderr)
    ours = [message for level, logger, message in logged if logger == "remote_store_transfer" and level == "INFO"]
    assert len(ours) == 2, result.stderr
    assert re.match(r"transfer \S+ started: upload local:\S+/report\.csv -> Store\(backend='local'", ours[0])
    assert re.match(r"transfer \S+ succeeded: upload .* 8 bytes in", ours[1])
    assert any(logger.startswith("remote_store.") and level == "INFO" for level, logger, _ in logged), result.stderr
    assert {level for level, _, _ in logged} <= {"INFO", "WARNING", "ERROR"}  # no DEBUG with one -v
    assert records(result.stdout) == []
    assert result.stdout.startswith("upload ")


def test_vv_shows_debug_records_and_counts_add_up_around_the_subcommand(cli_stores, source, logging_env):
    result = cli_stores("-v", "upload", "report.csv", "local:report.csv", "-v", env=logging_env)
    assert result.returncode == 0, result.stderr
    logged = records(result.stderr)
    debug = [(logger, message) for level, logger, message in logged if level == "DEBUG"]
    assert ("remote_store._store", "write_atomic path='report.csv' overwrite=False") in debug, result.stderr


def test_v_shows_the_plugin_managers_loaded_line_of_a_third_party_plugin(cli_stores, source, make_plugin_dist):
    site = make_plugin_dist("rst_cli_verbose", "chatty")
    env = {"PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}
    quiet = cli_stores("plugins", env=env)
    loud = cli_stores("plugins", "-v", env=env)
    assert quiet.returncode == loud.returncode == 0
    assert records(quiet.stderr) == []
    loaded = [m for level, logger, m in records(loud.stderr) if level == "INFO" and logger == "remote_store_transfer"]
    assert loaded == ["loaded plugin chatty from distribution rst_cli_verbose 0.0.0"], loud.stderr
    assert "chatty" in loud.stdout


def test_v_records_go_to_stderr_of_a_failing_command_too(cli_stores, logging_env):
    result = cli_stores("-v", "download", "local:missing.csv", "out.csv", env=logging_env)
    assert result.returncode == 3
    failed = [m for level, _, m in records(result.stderr) if level == "ERROR"]
    assert len(failed) == 1 and "NotFound" in failed[0], result.stderr
    assert (
        result.stderr.rstrip().splitlines()[-1].startswith("remote-store-transfer: error: download local:missing.csv")
    )
