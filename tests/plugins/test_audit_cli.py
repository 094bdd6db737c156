"""The audit command line: ``remote-store-transfer audit`` and ``python -m remote_store_transfer.audit`` are one.

Each case runs both entry points as real subprocesses (the installed
console script, and the module) on a real log written by the plugin, and
checks that they exit with the same documented code and print the same
output. The page docs/plugins/audit.md is checked against the commands'
real options and exit codes.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import click
import pytest
from remote_store import Store
from remote_store.backends import MemoryBackend

from remote_store_transfer import TransferManager, enable_plugin, exitcodes
from remote_store_transfer.audit import chain_head, verify_chain
from remote_store_transfer.audit import cli as audit_cli
from remote_store_transfer.audit.chain import KEYED
from remote_store_transfer.audit.records import chain_link
from remote_store_transfer.cli import report

KEY = "cli-test-key"
DOCS = Path(__file__).parents[2] / "docs" / "plugins" / "audit.md"

ENTRY_POINTS = {
    "remote-store-transfer audit": [str(Path(sys.executable).parent / "remote-store-transfer"), "audit"],
    "python -m remote_store_transfer.audit": [sys.executable, "-m", "remote_store_transfer.audit"],
}


@dataclass
class Logs:
    """Two real logs written with a key, each with the head the plugin published."""

    log: Path
    head: Path
    other_head: Path  # the head of another log: a head the first log does not hold


def write_log(tmp_path: Path, name: str, uploads: int) -> tuple[Path, Path]:
    log, head = tmp_path / f"{name}.jsonl", tmp_path / "anchor" / f"{name}.head"
    manager = TransferManager()
    enable_plugin("audit", manager=manager, path=log, key=KEY, anchor_path=head)
    source = tmp_path / f"{name}.src"
    source.write_bytes(b"payload")
    store = Store(backend=MemoryBackend())
    for i in range(uploads):
        manager.upload(store, source, f"f{i}")
    return log, head


@pytest.fixture
def logs(tmp_path: Path) -> Logs:
    log, head = write_log(tmp_path, "audit", 3)
    _, other_head = write_log(tmp_path, "other", 4)
    return Logs(log, head, other_head)


def run(entry: str, args: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("REMOTE_STORE_TRANSFER_")}
    environment["AUDIT_KEY"] = KEY
    environment.update(env or {})
    command = [*ENTRY_POINTS[entry], *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False, env=environment)


def same_text(text: str) -> str:
    """*text* with the name each entry point prints for itself replaced by ``PROG``."""
    text = text.replace("remote-store-transfer: error: audit ", "PROG: error: ")
    text = text.replace("python -m remote_store_transfer.audit: error: ", "PROG: error: ")
    return text.replace("remote-store-transfer audit", "PROG").replace("python -m remote_store_transfer.audit", "PROG")


def plain_log(folder: Path, *, broken: bool) -> Path:
    """A log of two records written without a key (*broken*: its first record edited)."""
    log = folder / ("plain.jsonl" if broken else "plain-intact.jsonl")
    manager = TransferManager()
    enable_plugin("audit", manager=manager, path=log)
    source = folder / "plain.src"
    source.write_bytes(b"payload")
    for i in range(2):
        manager.upload(Store(backend=MemoryBackend()), source, f"f{i}")
    if broken:
        log.write_bytes(log.read_bytes().replace(b'"bytes":7', b'"bytes":8', 1))
    return log


def test_a_keyed_log_verified_without_its_key_is_reported_keyed_not_altered(logs):
    """A real keyed log: without the key no verdict (``keyed``); an unkeyed log with an edited first record stays
    altered, and so does a keyed log with a record written after it without the key."""
    result = verify_chain(logs.log)
    assert (result.ok, result.keyed, result.first_bad, result.records) == (False, True, 1, 3)
    assert result.reason == KEYED
    assert verify_chain(logs.log, key=KEY).ok

    altered = verify_chain(plain_log(logs.log.parent, broken=True))
    assert (altered.ok, altered.keyed, altered.first_bad) == (False, False, 1)
    assert altered.reason.endswith(": altered")
    assert verify_chain(plain_log(logs.log.parent, broken=False)).ok

    lines = logs.log.read_bytes().splitlines()
    seq, digest = chain_link(lines[-1])
    unkeyed = json.dumps({"seq": seq + 1, "prev": digest, "v": 1}, separators=(",", ":")).encode()
    with logs.log.open("ab") as fh:  # a record appended by someone without the key: plain SHA-256
        fh.write(unkeyed[:-1] + f',"hash":"{hashlib.sha256(unkeyed).hexdigest()}"}}\n'.encode())
    mixed = verify_chain(logs.log)
    assert (mixed.ok, mixed.keyed) == (False, False)


def tampered(logs: Logs) -> list[str]:
    lines = logs.log.read_bytes().splitlines(keepends=True)
    lines[1] = lines[1].replace(b'"bytes":7', b'"bytes":8')
    logs.log.write_bytes(b"".join(lines))
    return ["verify", str(logs.log), "--key-env", "AUDIT_KEY"]


def damaged_end(logs: Logs) -> list[str]:
    with logs.log.open("ab") as fh:
        fh.write(b'{"seq":4,"prev":"cut short\n')
    return ["head", str(logs.log)]


# (what is given, args made from the logs, extra environment, exit code, a text the output holds)
CASES: dict[str, tuple[Callable[[Logs], list[str]], dict[str, str], int, str]] = {
    "a valid log": (
        lambda logs: ["verify", str(logs.log), "--key-env", "AUDIT_KEY", "--head", str(logs.head)],
        {},
        0,
        "audit.jsonl: intact, 3 records",
    ),
    "a tampered log": (tampered, {}, 6, "record 2 of 3: the record's hash does not match its content and the key"),
    "a missing file": (lambda logs: ["verify", str(logs.log.with_name("nope.jsonl"))], {}, 3, "No such file"),
    "a missing head file": (
        lambda logs: ["verify", str(logs.log), "--head", str(logs.head.with_name("nope.head"))],
        {},
        3,
        "No such file",
    ),
    "a FILE that cannot be read": (lambda logs: ["verify", str(logs.log / "x")], {}, 1, "NotADirectoryError: "),
    "an unknown option": (lambda logs: ["verify", str(logs.log), "--no-such-option"], {}, 2, "--no-such-option"),
    "no FILE": (lambda logs: ["verify"], {}, 2, "Missing argument 'FILE...'"),
    "--anchor with two FILEs": (
        lambda logs: ["verify", str(logs.log), str(logs.head), "--anchor", chain_head(logs.log) or ""],
        {},
        2,
        "exactly one FILE",
    ),
    "a malformed anchor": (lambda logs: ["verify", str(logs.log), "--anchor", "1:xyz"], {}, 2, "anchor must be"),
    "an unset key variable": (
        lambda logs: ["verify", str(logs.log), "--key-env", "NO_SUCH_AUDIT_KEY"],
        {},
        2,
        "NO_SUCH_AUDIT_KEY is not set",
    ),
    "a wrong key": (
        lambda logs: ["verify", str(logs.log), "--key-env", "AUDIT_KEY"],
        {"AUDIT_KEY": "not-the-key"},
        6,
        "record 1 of 3: ",
    ),
    "a head mismatch": (
        lambda logs: ["verify", str(logs.log), "--key-env", "AUDIT_KEY", "--head", str(logs.other_head)],
        {},
        6,
        "the log ends at seq 3 but the head names seq 4",
    ),
    "a keyed log without --key-env": (
        lambda logs: ["verify", str(logs.log)],
        {},
        2,
        "audit.jsonl: the log is keyed (HMAC): verify it with its key, --key-env VAR",
    ),
    "a keyed log without --key-env, and a broken one": (
        lambda logs: ["verify", str(logs.log), str(plain_log(logs.log.parent, broken=True))],
        {},
        6,
        "plain.jsonl: record 1 of 2: the record's hash does not match its content: altered",
    ),
    "head of a valid log": (lambda logs: ["head", str(logs.log)], {}, 0, ""),
    "head of a missing file": (lambda logs: ["head", str(logs.log.with_name("nope.jsonl"))], {}, 3, "No such file"),
    "head of a damaged log": (damaged_end, {}, 6, "its last record is damaged"),
}


@pytest.mark.parametrize("case", CASES)
def test_both_entry_points_give_the_same_exit_code_and_output(logs, case):
    make_args, env, code, text = CASES[case]
    args = make_args(logs)
    results = {entry: run(entry, args, env) for entry in ENTRY_POINTS}
    for entry, result in results.items():
        assert result.returncode == code, (entry, result.stdout, result.stderr)
        assert text in result.stdout + result.stderr, (entry, result.stdout, result.stderr)
    console, module = results.values()
    assert (same_text(console.stdout), same_text(console.stderr)) == (
        same_text(module.stdout),
        same_text(module.stderr),
    )
    if case == "head of a valid log":
        assert console.stdout == f"{chain_head(logs.log)}\n"


def test_error_lines_name_the_command_and_the_file(logs):
    args = tampered(logs)
    assert run("remote-store-transfer audit", args).stderr.startswith(
        f"remote-store-transfer: error: audit verify {logs.log}: record 2 of 3: "
    )
    assert run("python -m remote_store_transfer.audit", args).stderr.startswith(
        f"python -m remote_store_transfer.audit: error: verify {logs.log}: record 2 of 3: "
    )


def test_json_is_the_same_from_both(logs):
    args = ["verify", str(logs.log), "--key-env", "AUDIT_KEY", "--json"]
    outputs = [json.loads(run(entry, args).stdout) for entry in ENTRY_POINTS]
    assert outputs[0] == outputs[1]
    assert outputs[0]["ok"] is True and outputs[0]["records"] == 3


def test_the_exit_codes_are_those_of_the_main_command_line():
    """Both --help tables list codes of the one shared set (remote_store_transfer.exitcodes), and agree."""
    shared = {value for name, value in vars(exitcodes).items() if name.startswith("EXIT_")}

    def listed(help_text: str) -> dict[int, str]:
        rows = [line.split(None, 1) for line in help_text.splitlines() if line[:1] == " " and line.split()[0].isdigit()]
        return {int(code): text for code, text in rows}

    audit_codes, main_codes = listed(audit_cli.EXIT_CODES_HELP), listed(report.EXIT_CODES_HELP)
    assert set(audit_codes) <= shared and set(main_codes) <= shared
    assert set(audit_codes) <= set(main_codes)
    assert audit_cli.EXIT_INTEGRITY is exitcodes.EXIT_INTEGRITY is report.EXIT_INTEGRITY


# --------------------------------------------------------------------------------------------- the page


def docs_section() -> str:
    text = DOCS.read_text()
    start = text.index("### The command line")
    return text[start : text.index("\n## ", start) if "\n## " in text[start:] else len(text)]


def table(section: str, first_header: str) -> list[list[str]]:
    """The rows of the markdown table whose first column is *first_header*: lists of cells."""
    rows: list[list[str]] = []
    inside = False
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")] if line.startswith("|") else None
        if cells is None:
            if inside:
                break
            continue
        if cells[0] == first_header:
            inside = True
        elif inside and not set(cells[0]) <= {"-", " "}:
            rows.append(cells)
    assert rows, f"no table with a column {first_header!r} on {DOCS}"
    return rows


def real_options(command: click.Command) -> set[str]:
    """Each option of *command* as ``--name METAVAR`` (or ``--name`` for a flag), help included."""
    ctx = click.Context(command, info_name=command.name, help_option_names=["-h", "--help"])
    named = set()
    for param in command.get_params(ctx):
        if isinstance(param, click.Option):
            metavar = "" if param.is_flag else f" {param.metavar}"
            named |= {f"{opt}{metavar}" for opt in param.opts + param.secondary_opts}
    return named


def test_the_page_names_every_option_of_each_command():
    documented: dict[str, set[str]] = {}
    for command_cell, option_cell, _ in table(docs_section(), "command"):
        options = set(re.findall(r"`([^`]+)`", option_cell))
        for command in re.findall(r"`([^`]+)`", command_cell):
            documented.setdefault(command, set()).update(options)
    commands = audit_cli.audit.commands
    assert set(documented) == set(commands)
    for name, command in commands.items():
        assert documented[name] == real_options(command), name


def test_the_page_synopsis_names_the_real_options():
    synopsis = re.search(r"```text\n(remote-store-transfer audit .*?)```", docs_section(), re.S)
    assert synopsis is not None
    lines = synopsis.group(1).splitlines()
    commands = audit_cli.audit.commands
    assert [line.split()[2] for line in lines] == list(commands)
    for line in lines:
        command = commands[line.split()[2]]
        shown = {match.strip() for match in re.findall(r"\[(--[^\]]+)\]", line)}
        assert shown == real_options(command) - {"-h", "--help"}, line


def test_the_page_lists_the_exit_codes_of_the_help():
    documented = {int(row[0]) for row in table(docs_section(), "exit code")}
    in_help = {int(code) for code in re.findall(r"^\s+(\d+)\s{2,}", audit_cli.EXIT_CODES_HELP, re.M)}
    constants = {value for name in audit_cli.__all__ if isinstance(value := getattr(audit_cli, name), int)}
    assert documented == in_help == constants
