"""Every ```python block of README.md and docs/**/*.md runs, as written, and every ```toml block parses.

The blocks are collected with pytest-examples (``find_examples``: the fence, the
code with its indentation removed, the line it starts on). Each block then runs
the way a reader runs it: saved to a file and started with ``python FILE`` in a
fresh, empty working directory (so "from any folder" is proven), in its own
process (so ``if __name__ == "__main__":``, a Dask ``LocalCluster`` that spawns
workers, ``logging.basicConfig`` and ``enable_plugin`` behave as in a script,
and nothing leaks into the rest of the suite), with ``remote_store_transfer``
imported from the installed code, **twice** in the same folder: an example
that fails when the reader runs it again (``FileExistsError``) is broken.
A run fails on a non-zero exit, on a traceback in its stderr (an exception in
a worker process, which the script survives) and on a tree summary that
counts failed files (``... 1 failed ...``).

The file saved is the page itself with every other line blanked out, so a
traceback names the page and the line: ``File ".../docs/index.md", line 42``.

The fixture mechanism, narrow on purpose:

* **Sessions.** A block whose fence is preceded by the line
  ``<!-- docs-test: session NAME -->`` (an HTML comment: no reader sees it)
  runs after the earlier blocks of the same page in session NAME, in one
  process: same names, same working directory. The prose says so to the
  reader ("continuing the quick start..."). A block without it runs alone.
* **Environment.** ``AUDIT_HMAC_KEY`` is set (to a random value): the pages
  tell the reader to keep the audit HMAC key in that variable.

No block is skipped. ``EXCLUDED`` lists blocks that do not run, each with its
reason; it is empty, and an entry that names no block fails the collection.

TOML blocks (not run) are parsed with ``tomllib``; those made only of the
config file's tables (``plugins``, ``backends``, ``stores``) are validated by
the project's own ``parse_config``, as ``REMOTE_STORE_TRANSFER_CONFIG`` would be.
"""

from __future__ import annotations

import inspect
import os
import re
import secrets
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from pytest_examples import CodeExample, find_examples

import remote_store_transfer
from remote_store_transfer.config import parse_config

if TYPE_CHECKING:
    from collections.abc import Callable

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
SESSION = re.compile(r"<!-- docs-test: session ([\w-]+) -->")
RUNS = 2  # each block runs twice in the same folder: a reader runs an example again
TIMEOUT = 300  # seconds: a guard against a hung block (a cluster that never starts), not a measurement

# (page relative to the repo root, a line of the block) -> why the block does not run. Keep it empty.
EXCLUDED: dict[tuple[str, str], str] = {}


@dataclass(frozen=True)
class Block:
    """A python block of a page, with the earlier blocks of its session (in page order, itself last)."""

    page: str
    chain: tuple[CodeExample, ...]

    @property
    def example(self) -> CodeExample:
        return self.chain[-1]

    @property
    def id(self) -> str:
        return f"{self.page}:{self.example.start_line}"


def _rel(path: Path) -> str:
    return path.resolve().relative_to(ROOT).as_posix()


def _session(example: CodeExample) -> str | None:
    """NAME of the ``<!-- docs-test: session NAME -->`` line just above the block's fence, if any."""
    lines = example.path.read_text(encoding="utf-8").splitlines()
    before = [line.strip() for line in lines[: example.start_line - 1] if line.strip()]
    match = SESSION.fullmatch(before[-1]) if before else None
    return match.group(1) if match else None


def _blocks() -> list[Block]:
    blocks: list[Block] = []
    for page in PAGES:
        sessions: dict[str, list[CodeExample]] = {}
        for example in find_examples(page):
            if not example.prefix.startswith("python"):
                raise AssertionError(f"{_rel(page)}:{example.start_line}: fence {example.prefix!r}: use ```python")
            name = _session(example)
            chain = [example] if name is None else [*sessions.setdefault(name, []), example]
            if name is not None:
                sessions[name].append(example)
            blocks.append(Block(_rel(page), tuple(chain)))
    return blocks


def _fences(page: Path, language: str) -> list[int]:
    """The lines (1-based) of the page's opening fences of *language*, found without pytest-examples."""
    pattern = re.compile(rf"^\s*```\s*{language}\b")
    return [n for n, line in enumerate(page.read_text(encoding="utf-8").splitlines(), 1) if pattern.match(line)]


BLOCKS = _blocks()


def _is_excluded(block: Block) -> str | None:
    for (page, line), reason in EXCLUDED.items():
        if block.page == page and line in block.example.source:
            return reason
    return None


_stale = [key for key in EXCLUDED if not any(b.page == key[0] and key[1] in b.example.source for b in BLOCKS)]
if _stale:
    raise AssertionError(f"EXCLUDED names blocks that no longer exist: {_stale}")


def _script(block: Block) -> str:
    """The page with every line blanked but those of the chain's blocks: line numbers are the page's."""
    total = block.example.path.read_text(encoding="utf-8").count("\n") + 1
    lines = [""] * total
    for example in block.chain:
        for offset, line in enumerate(example.source.splitlines()):
            lines[example.start_line + offset] = line  # start_line is the fence's line, 1-based
    return "\n".join(lines) + "\n"


def test_every_python_fence_is_collected():
    """find_examples misses no ```python block (a closing fence indented unlike its opening one would be)."""
    for page in PAGES:
        found = sorted(b.example.start_line for b in BLOCKS if b.page == _rel(page))
        assert found == _fences(page, "python"), _rel(page)
    assert len(BLOCKS) >= 10  # README.md and the pages hold well over ten: a collector finding none fails here


def test_blocks_import_the_installed_package(tmp_path: Path):
    """The python a block runs under, from an empty folder, imports the code this suite tests."""
    out = subprocess.run(
        [sys.executable, "-c", "import remote_store_transfer; print(remote_store_transfer.__file__)"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    )
    assert Path(out.stdout.strip()) == Path(remote_store_transfer.__file__)


@pytest.mark.parametrize("block", BLOCKS, ids=[b.id for b in BLOCKS])
def test_python_block_runs(block: Block, tmp_path: Path):
    reason = _is_excluded(block)
    if reason is not None:
        pytest.xfail(f"excluded: {reason}")  # never silent: the reason shows in the report
    script = tmp_path / "pages" / block.page  # the traceback shows ".../pages/docs/index.md", line N
    script.parent.mkdir(parents=True)
    script.write_text(_script(block), encoding="utf-8")
    work = tmp_path / "work"
    work.mkdir()
    env = {**os.environ, "AUDIT_HMAC_KEY": secrets.token_hex(16)}
    for run in range(1, RUNS + 1):
        done = subprocess.run(
            [sys.executable, str(script)],
            cwd=work,
            env=env,
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            check=False,
        )
        # A traceback on stderr is an exception in a worker process (or one logged), though the script went
        # on; a tree's summary line with failures ("... 1 failed ...") is a tree that did not do its job.
        failed = done.returncode != 0 or "Traceback (most recent call last)" in done.stderr
        if failed or re.search(r"\b[1-9]\d* failed\b", done.stdout):
            lines = ", ".join(f"{e.start_line}-{e.end_line}" for e in block.chain)
            pytest.fail(
                f"{block.page}:{block.example.start_line}: the block (lines {lines} of the page) "
                f"failed on run {run} of {RUNS} (exit code {done.returncode})\n"
                f"--- stdout\n{done.stdout}--- stderr\n{done.stderr}",
                pytrace=False,
            )


def _toml_blocks() -> list[tuple[str, int, str]]:
    found = []
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        for match in re.finditer(r"^( *)```toml *\n(.*?)^\1```", text, flags=re.M | re.S):
            line = text[: match.start()].count("\n") + 1
            source = "".join(s[len(match.group(1)) :] for s in match.group(2).splitlines(keepends=True))
            found.append((_rel(page), line, source))
    return found


TOML_BLOCKS = _toml_blocks()


def test_every_toml_fence_is_collected():
    for page in PAGES:
        found = sorted(line for p, line, _ in TOML_BLOCKS if p == _rel(page))
        assert found == _fences(page, "toml"), _rel(page)


@pytest.mark.parametrize(("page", "line", "source"), TOML_BLOCKS, ids=[f"{p}:{n}" for p, n, _ in TOML_BLOCKS])
def test_toml_block_parses(page: str, line: int, source: str, monkeypatch: pytest.MonkeyPatch):
    try:
        data = tomllib.loads(source)
    except tomllib.TOMLDecodeError as exc:
        pytest.fail(f"{page}:{line}: invalid TOML: {exc}", pytrace=False)
    if set(data) <= {"plugins", "backends", "stores"}:
        # The variables the pages' config files read, as the reader has them set.
        for variable in ("AUDIT_HMAC_KEY", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
            monkeypatch.setenv(variable, secrets.token_hex(8))
        parsed = parse_config(data, file=f"{page}:{line}")
        assert {s.name for s in parsed.plugins} == set(data.get("plugins", {}))


def _signatures_block() -> list[str]:
    text = (ROOT / "docs" / "functions.md").read_text(encoding="utf-8")
    match = re.search(r"^```text\n(upload\(.*?)^```", text, flags=re.M | re.S)
    assert match, "docs/functions.md: the ```text block of the three signatures is gone"
    return match.group(1).splitlines()


def _plain(function: Callable[..., object], *, method: bool = False) -> str:
    """``name(params) -> returns`` as the page writes it: no parameter annotations (and no ``self`` for a method)."""
    signature = inspect.signature(function)
    parameters = [p.replace(annotation=inspect.Parameter.empty) for p in signature.parameters.values()]
    plain = signature.replace(parameters=parameters[1:] if method else parameters)
    plain = plain.replace(return_annotation=inspect.Signature.empty)
    returns = signature.return_annotation  # a string: the package uses ``from __future__ import annotations``
    return f"{function.__name__}{plain} -> {returns if isinstance(returns, str) else inspect.formatannotation(returns)}"


def test_functions_page_gives_the_signatures_of_the_code():
    """docs/functions.md lists the three signatures (a ```text block: not code to run); they are the code's."""
    lines = _signatures_block()
    functions = (remote_store_transfer.upload, remote_store_transfer.download, remote_store_transfer.transfer)
    assert lines == [_plain(f) for f in functions]
    manager = remote_store_transfer.TransferManager
    methods = (manager.upload, manager.download, manager.transfer)
    assert lines == [_plain(m, method=True) for m in methods]  # "with the same signatures"
