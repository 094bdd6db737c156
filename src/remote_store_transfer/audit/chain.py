"""Verifying one audit log's hash chain: the first record altered, removed, inserted, reordered or truncated.

:func:`verify_chain` recomputes every hash and follows ``seq`` and
``prev``. Removing records from the *end* of a log leaves a shorter valid
chain; pass an ``anchor`` (``"seq:hash"`` of a record noted elsewhere, see
:func:`chain_head`) or the ``head`` the plugin published (``anchor_path`` /
``anchor_store``) to detect that. Without a key, whoever can write the file
can also rewrite it with recomputed hashes; a key (kept out of the file and
of the writers' reach) rules that out.
"""

from __future__ import annotations

import hmac
import json
import os
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from remote_store_transfer.audit.records import GENESIS, HASH_SUFFIX, Key, chain_link, hash_of, key_to_bytes, parse_head

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

__all__ = [
    "KEYED",
    "Check",
    "Line",
    "VerifyResult",
    "chain_head",
    "read_lines",
    "record_checks",
    "verify_chain",
    "verify_lines",
]


@dataclass(frozen=True)
class VerifyResult:
    """What :func:`verify_chain` found.

    Attributes:
        ok: ``True`` when every record is intact and in place.
        records: How many records (lines) the log has.
        first_bad: 1-based line number of the first record found altered,
            inserted, reordered or truncated, or where removed records were;
            ``None`` when *ok*.
        reason: What is wrong there (``"intact"`` when *ok*).
        keyed: ``True`` when the log was verified without a key but its records are keyed (HMAC): not a
            verdict on the log, which needs the key it was written with.
    """

    ok: bool
    records: int
    first_bad: int | None
    reason: str
    keyed: bool = False

    def __str__(self) -> str:
        if self.ok:
            return f"OK: {self.records} records, chain intact"
        return f"FAILED at record {self.first_bad} of {self.records}: {self.reason}"


@dataclass
class Line:
    """One line of a log as read: its 1-based *number*, its bytes, and (once read) its ``seq``/``prev``/``hash``."""

    number: int
    raw: bytes
    complete: bool  # ended with a newline (always true for lines given as a list)
    seq: int | None = None
    prev: str | None = None
    hash: str | None = None


def read_lines(source: str | os.PathLike[str] | bytes | Iterable[str | bytes]) -> Iterator[Line]:
    """The lines of a log: a file path, its whole content as ``bytes``, or an iterable of lines."""
    if isinstance(source, str | os.PathLike):
        with open(source, "rb") as fh:
            for number, raw in enumerate(fh, 1):
                complete = raw.endswith(b"\n")
                yield Line(number, raw[:-1] if complete else raw, complete)
        return
    if isinstance(source, bytes):
        parts = source.split(b"\n")
        last = parts.pop()
        for number, raw in enumerate(parts, 1):
            yield Line(number, raw, True)
        if last:
            yield Line(len(parts) + 1, last, False)
        return
    for number, item in enumerate(source, 1):
        raw = item.encode() if isinstance(item, str) else bytes(item)
        yield Line(number, raw.removesuffix(b"\n"), True)


def _peek(line: Line) -> None:
    """Fill ``seq``/``prev``/``hash`` of *line* as far as they can be read, without checking anything."""
    match = HASH_SUFFIX.search(line.raw)
    line.hash = match.group(1).decode("ascii") if match else None
    try:
        data = json.loads(line.raw)
    except ValueError:
        return
    if isinstance(data, dict):
        seq, prev = data.get("seq"), data.get("prev")
        line.seq = seq if isinstance(seq, int) and not isinstance(seq, bool) else None
        line.prev = prev if isinstance(prev, str) else None


_PLAIN_MISMATCH = "the record's hash does not match its content: altered"
KEYED = "the log is keyed (its record hashes are HMAC-SHA256): it can be verified only with the key it was written with"
"""The reason of a keyed log verified without a key (:attr:`VerifyResult.keyed`)."""


def _parse(line: Line, key: bytes | None) -> str | None:  # noqa: PLR0911 -- one return per defect
    """Check *line* on its own and fill its ``seq``/``prev``/``hash``; return what is wrong, or ``None``."""
    if not line.complete:
        return "incomplete last record (no newline at the end): truncated"
    if not line.raw.strip():
        return "empty line"
    match = HASH_SUFFIX.search(line.raw)
    if match is None:
        return "the record has no hash at its end: altered or truncated"
    if not hmac.compare_digest(hash_of(line.raw[: match.start()] + b"}", key), match.group(1).decode("ascii")):
        if key is not None:
            return "the record's hash does not match its content and the key: altered (or not made with this key)"
        return _PLAIN_MISMATCH
    _peek(line)
    if line.seq is None or line.prev is None:
        return "the record is not valid JSON with a seq and a prev: altered"
    return None


def verify_chain(
    source: str | os.PathLike[str] | bytes | Iterable[str | bytes],
    *,
    key: Key | None = None,
    anchor: str | None = None,
    head: str | None = None,
) -> VerifyResult:
    """Check an audit log's hash chain; report the first record that was tampered with.

    Args:
        source: The log: a file path, its whole content as ``bytes``, or an
            iterable of record lines (``str`` or ``bytes``, with or without
            the newline).
        key: The HMAC key the records were written with, if any.
        anchor: ``"seq:hash"`` of a record noted elsewhere earlier (see
            :func:`chain_head`): the log must still hold that record, so
            records removed from the end are detected.
        head: The chain head an anchor published (the content of the
            ``anchor_path`` file or ``anchor_store`` object: ``seq:hash``, or
            ``seq:hash:mac`` with a key). Read it *before* the log. The log
            must hold that record, unchanged: records removed from the end, a
            file truncated, or the whole log replaced by a new chain are
            detected. With *key* the head's MAC must be valid (proving that
            the key's holder published it).

    Returns:
        A :class:`VerifyResult`; ``ok`` is ``True`` for an intact log
        (an empty log is intact).

    Raises:
        OSError: The file cannot be read.
        ValueError: A malformed *anchor* or *head*.
    """
    key_bytes = key_to_bytes(key)
    return verify_lines(read_lines(source), key_bytes, record_checks(key_bytes, anchor, head))


@dataclass(frozen=True)
class Check:
    """A record the log must hold: from an ``anchor`` or a ``head`` (*problem*: what is wrong with it, if anything)."""

    name: str
    seq: int
    hash: str
    problem: str | None = None


def record_checks(key: bytes | None, anchor: str | None, head: str | None) -> list[Check]:
    """The records a log must hold: those *anchor* and *head* name (with *key*, the head's MAC is checked).

    Raises:
        ValueError: A malformed *anchor* or *head*.
    """
    checks = []
    if anchor is not None:
        checks.append(Check("anchor", *_parse_anchor(anchor)))
    if head is not None:
        checks.append(Check("head", *parse_head(head, key)))
    return checks


def verify_lines(source: Iterator[Line], key_bytes: bytes | None, checks: list[Check]) -> VerifyResult:
    """:func:`verify_chain` of the lines of *source*, which it reads to the end (whatever it finds)."""
    lines = _Counted(source)
    previous: Line | None = None
    seen: set[str] = set()
    for line in lines:
        problem = _parse(line, key_bytes)
        if problem is not None:  # the first record not plain SHA-256: maybe a keyed log, verified without its key
            first_plain = previous is None and problem == _PLAIN_MISMATCH
            return _keyed_or_altered(lines, line) if first_plain else _fail(lines, line.number, problem)
        expected_seq = 1 if previous is None else (previous.seq or 0) + 1
        expected_prev = GENESIS if previous is None else previous.hash
        if line.seq != expected_seq or line.prev != expected_prev:
            where, problem = _classify(line, previous, expected_seq, lines)
            return _fail(lines, where, problem)
        for check in checks:
            if line.seq != check.seq:
                continue
            if check.problem is not None:
                return _fail(lines, line.number, check.problem)
            if line.hash != check.hash:
                replaced = " (or the log was replaced)" if check.name == "head" else ""
                return _fail(
                    lines, line.number, f"record seq {check.seq} does not match the {check.name}: altered{replaced}"
                )
            seen.add(check.name)
        previous = line
    for check in checks:
        if check.name not in seen:
            end = previous.seq if previous else 0
            reason = check.problem or (
                f"the log ends at seq {end} but the {check.name} names seq {check.seq}: "
                "records were removed from the end"
                + (" (or the file truncated, or replaced)" if check.name == "head" else "")
            )
            return VerifyResult(False, lines.count, lines.count + 1, reason)
    return VerifyResult(True, lines.count, None, "intact" if lines.count else "empty log")


def _keyed_or_altered(lines: _Counted, first: Line) -> VerifyResult:
    """Without a key, the *first* record's hash is not its plain SHA-256: a keyed log when no record's is and
    the ``seq``/``prev`` links hold all along (an unkeyed log altered keeps the others' hashes), else altered."""
    _peek(first)
    keyed, previous = first.seq == 1 and first.prev == GENESIS, first
    for line in lines:  # read to the end, so that records counts all of it
        if not keyed or not line.complete:  # a cut last line says nothing on the key
            continue
        _peek(line)
        match = HASH_SUFFIX.search(line.raw)
        plain = match is not None and hash_of(line.raw[: match.start()] + b"}", None) == line.hash
        keyed = match is not None and not plain and line.seq == (previous.seq or 0) + 1 and line.prev == previous.hash
        previous = line
    if keyed:
        return VerifyResult(False, lines.count, first.number, KEYED, keyed=True)
    return VerifyResult(False, lines.count, first.number, _PLAIN_MISMATCH)


def _parse_anchor(anchor: str) -> tuple[int, str]:
    seq, _, digest = anchor.partition(":")
    if not seq.isdigit() or not re.fullmatch(r"[0-9a-f]{64}", digest):
        raise ValueError(f"anchor must be 'seq:hash' (as chain_head() returns), got {anchor!r}")
    return int(seq), digest


class _Counted:
    """An iterator of lines that counts how many it gave."""

    def __init__(self, lines: Iterator[Line]) -> None:
        self._lines = lines
        self.count = 0

    def __iter__(self) -> _Counted:
        return self

    def __next__(self) -> Line:
        line = next(self._lines)
        self.count += 1
        return line


def _fail(lines: _Counted, first_bad: int, reason: str) -> VerifyResult:
    """A failed result; reads the rest of the log so that ``records`` counts all of it."""
    for _ in lines:
        pass
    return VerifyResult(False, lines.count, first_bad, reason)


def _classify(  # noqa: PLR0911 -- one return per kind of tampering
    line: Line, previous: Line | None, expected_seq: int, rest: Iterator[Line]
) -> tuple[int, str]:
    """Where the chain breaks at *line* (well-formed on its own), and why. May consume *rest*."""
    seq = line.seq or 0
    found = f"expected record seq {expected_seq}, found seq {seq}"
    if seq > expected_seq:
        for later in rest:
            _peek(later)
            if later.seq == expected_seq:
                return line.number, f"{found}: records reordered (seq {expected_seq} is at line {later.number})"
        missing = f"seq {expected_seq}" if seq == expected_seq + 1 else f"seqs {expected_seq} to {seq - 1}"
        return line.number, f"{found}: record {missing} removed"
    if previous is None:
        if seq == expected_seq:
            return line.number, "the first record does not start a chain (prev is not the genesis hash): altered"
        return line.number, f"{found}: altered"
    if seq < expected_seq and line.hash == previous.hash:
        return line.number, f"record {line.number} is a duplicate of record {previous.number}: inserted"
    following = next(rest, None)
    if following is not None:
        _peek(following)
        if following.prev == previous.hash:  # the chain goes on from previous: line does not belong
            return line.number, (
                f"record {line.number} (seq {seq}) was inserted: "
                f"record {following.number} follows on from record {previous.number}"
            )
    if seq < expected_seq and line.prev == previous.prev:  # two records follow on from the same one
        return previous.number, (
            f"record {previous.number} was inserted: record {line.number} follows on from the same record"
        )
    if seq == expected_seq:
        return previous.number, (
            f"record {previous.number} does not hash to the prev that record {line.number} holds for it: "
            f"record {previous.number} was rewritten (or record {line.number}'s prev was)"
        )
    return line.number, f"{found}: record inserted or reordered"


def chain_head(source: str | os.PathLike[str] | bytes | Iterable[str | bytes]) -> str | None:
    """``"seq:hash"`` of the last record of a log (``None`` if empty): note it elsewhere as an anchor.

    It does not verify the log; :func:`verify_chain` with ``anchor=`` later
    proves that the log still holds that record, unchanged.
    """
    head = None
    for line in read_lines(source):
        if line.raw.strip():
            head = line
    if head is None:
        return None
    seq, digest = chain_link(head.raw)
    return f"{seq}:{digest}"
