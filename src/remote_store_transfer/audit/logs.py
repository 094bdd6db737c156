"""Verifying a set of audit logs together: every chain, then the completeness of their batch records.

A tree whose files run in worker processes has its file records written by
each worker and its batch record by the caller; with ``{host}`` / ``{pid}``
in the ``path`` (or the store ``prefix``) each process writes its own chain.
:func:`verify_logs` checks every chain of a set of logs, then that every id
a batch record lists in ``files`` has its file record in one of them: a
record removed from the end of a worker's log, or a whole worker's log lost,
is found there. :func:`verify_store` does the same for the chains a
``StoreSink`` wrote.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from remote_store_transfer.audit.chain import Check, Line, VerifyResult, read_lines, record_checks, verify_lines
from remote_store_transfer.audit.records import Key, key_to_bytes

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Mapping

    from remote_store import Store

__all__ = ["MissingRecord", "VerifyReport", "verify_logs", "verify_store"]


@dataclass(frozen=True)
class MissingRecord:
    """A file record that a batch record lists (in ``files`` or ``unrecorded``) and no verified log holds.

    Attributes:
        batch: The batch record's ``id`` (the tree call's ``Batch.id``).
        log: The log that holds the batch record: its path (for :func:`verify_store`, its chain's folder).
        record: The batch record's 1-based line in that log (its number in the chain).
        id: The ``id`` of the file record.
    """

    batch: str
    log: str
    record: int
    id: str


def _few(ids: list[str], limit: int = 10) -> str:
    """*ids*, comma-separated, at most *limit* of them."""
    shown = ", ".join(ids[:limit])
    return shown if len(ids) <= limit else f"{shown} and {len(ids) - limit} more"


@dataclass(frozen=True)
class VerifyReport:
    """What :func:`verify_logs` found in a set of logs.

    Attributes:
        chains: Each log's :class:`VerifyResult` (as :func:`verify_chain`
            gives it), by path, in the order the logs were given.
        batches: How many batch records the logs hold.
        listed: How many file record ids those batch records list in ``files``.
        missing: The listed ids that no log holds a file record for (by log,
            then batch record, then their order in ``files``): a record lost
            or removed, or the log of a worker that was not given.
        unrecorded: The ids batch records list in ``unrecorded``: records their
            writer could not write and said so (``on_failure="log"``); not a
            failure of the logs, but transfers without a record.
    """

    chains: dict[str, VerifyResult]
    batches: int = 0
    listed: int = 0
    missing: tuple[MissingRecord, ...] = ()
    unrecorded: tuple[MissingRecord, ...] = ()

    @property
    def intact(self) -> bool:
        """``True`` when every chain is intact."""
        return all(result.ok for result in self.chains.values())

    @property
    def complete(self) -> bool:
        """``True`` when every id the batch records list has its file record in one of the logs."""
        return not self.missing

    @property
    def ok(self) -> bool:
        """``True`` when every chain is intact and the batch records are complete."""
        return self.intact and self.complete

    @property
    def records(self) -> int:
        """How many records (lines) the logs hold in all."""
        return sum(result.records for result in self.chains.values())

    def missing_by_batch(self) -> dict[tuple[str, int, str], list[str]]:
        """The missing ids grouped by batch record: ``{(log, record, batch): [id, ...]}``, in log order."""
        groups: dict[tuple[str, int, str], list[str]] = {}
        for item in self.missing:
            groups.setdefault((item.log, item.record, item.batch), []).append(item.id)
        return groups

    def incomplete(self) -> list[tuple[str, int, str]]:
        """One ``(log, record, message)`` per batch record with missing file records, in log order.

        The message names the batch and (the first ten of) the missing ids.
        """
        return [
            (log, record, f"batch {batch} lists {len(ids)} file record(s) that none of the logs holds: {_few(ids)}")
            for (log, record, batch), ids in self.missing_by_batch().items()
        ]

    def as_dict(self) -> dict[str, Any]:
        """The report as JSON data: ``ok``, ``records``, ``intact``, ``complete``, ``batches``,
        ``listed``, ``missing`` and ``unrecorded`` (each ``{"batch", "file", "record", "id"}``),
        and ``logs``: per log ``{"file", "ok", "records", "first_bad", "reason"}``."""

        def items(records: tuple[MissingRecord, ...]) -> list[dict[str, Any]]:
            return [{"batch": m.batch, "file": m.log, "record": m.record, "id": m.id} for m in records]

        return {
            "ok": self.ok,
            "records": self.records,
            "intact": self.intact,
            "complete": self.complete,
            "batches": self.batches,
            "listed": self.listed,
            "missing": items(self.missing),
            "unrecorded": items(self.unrecorded),
            "logs": [
                {"file": log, "ok": r.ok, "records": r.records, "first_bad": r.first_bad, "reason": r.reason}
                for log, r in self.chains.items()
            ],
        }

    def __str__(self) -> str:
        broken = sum(not result.ok for result in self.chains.values())
        logs = f"{len(self.chains)} log{'s' if len(self.chains) != 1 else ''}, {self.records} records"
        chains = "every chain intact" if not broken else f"{broken} chain{'s' if broken != 1 else ''} broken"
        if not self.batches:
            batches = "no batch records"
        elif self.complete:
            batches = f"{self.batches} batch record(s) list {self.listed} file records: all present"
        else:
            batches = (
                f"{self.batches} batch record(s) list {self.listed} file records: "
                f"{len(self.missing)} missing from the logs"
            )
        return f"{'OK' if self.ok else 'FAILED'}: {logs}, {chains}; {batches}"


@dataclass
class _BatchSeen:
    id: str
    log: str
    record: int
    files: list[str]
    unrecorded: list[str]


def _strings(value: object) -> list[str]:
    return [item for item in value if isinstance(item, str)] if isinstance(value, list) else []


class _Records:
    """The file record ids and the batch records of a set of logs, noted as their lines are verified."""

    def __init__(self) -> None:
        self.ids: set[str] = set()
        self.batches: list[_BatchSeen] = []

    def reading(self, log: str, lines: Iterator[Line]) -> Iterator[Line]:
        """*lines* (of *log*), each noted on its way through."""
        for line in lines:
            self._note(log, line)
            yield line

    def _note(self, log: str, line: Line) -> None:
        if not line.complete or b'"id"' not in line.raw:
            return
        try:
            data = json.loads(line.raw)
        except ValueError:
            return  # not a record: the chain's verification reports it
        if not isinstance(data, dict) or not isinstance(data.get("id"), str):
            return
        kind = data.get("kind")
        if kind is None:  # a file record
            self.ids.add(data["id"])
        elif kind == "batch":
            files, unrecorded = _strings(data.get("files")), _strings(data.get("unrecorded"))
            self.batches.append(_BatchSeen(data["id"], log, line.number, files, unrecorded))

    def report(self, chains: dict[str, VerifyResult]) -> VerifyReport:
        missing: list[MissingRecord] = []
        unrecorded: list[MissingRecord] = []
        for batch in self.batches:
            missing += (MissingRecord(batch.id, batch.log, batch.record, i) for i in batch.files if i not in self.ids)
            unrecorded += (MissingRecord(batch.id, batch.log, batch.record, i) for i in batch.unrecorded)
        listed = sum(len(batch.files) for batch in self.batches)
        return VerifyReport(chains, len(self.batches), listed, tuple(missing), tuple(unrecorded))


def verify_logs(
    paths: Iterable[str | os.PathLike[str]] | str | os.PathLike[str],
    *,
    key: Key | None = None,
    anchors: Mapping[str | os.PathLike[str], str] | None = None,
    heads: Mapping[str | os.PathLike[str], str] | None = None,
) -> VerifyReport:
    """Verify a set of audit logs: each one's chain, and the completeness of their batch records.

    Give every log the records of the trees may be in: with ``{host}`` /
    ``{pid}`` in the audit ``path``, the caller's log (it holds the batch
    records) and each worker's. Each log's chain is checked as
    :func:`verify_chain` does; then every id a batch record lists in
    ``files`` must have its file record in one of the logs. A file record
    removed from a worker's log -- even from its end, where its chain alone
    cannot tell -- or a worker's log that is missing from *paths* shows up
    in :attr:`VerifyReport.missing`, naming the batch and the id.

    Args:
        paths: The log files (a path is read once however often it is given).
        key: The HMAC key the records were written with, if any (the same for all).
        anchors: ``{path: "seq:hash"}``: anchors (see :func:`verify_chain`) of some of the logs.
        heads: ``{path: head}``: the published chain heads (see :func:`verify_chain`) of some of the logs.

    Returns:
        A :class:`VerifyReport`; ``ok`` when every chain is intact and no listed file record is missing.

    Raises:
        OSError: A file cannot be read (``filename`` names it).
        ValueError: No path given, an anchor or head for a log that is not in *paths*, or a malformed one.
    """
    if isinstance(paths, str | os.PathLike):
        paths = [paths]
    key_bytes = key_to_bytes(key)
    logs: dict[str, str] = {}  # real path -> path as given, in order
    for path in paths:
        logs.setdefault(os.path.realpath(path), os.fspath(path))
    if not logs:
        raise ValueError("no audit log given")
    anchored: dict[str, list[Check]] = {}
    for name, given in (("anchor", anchors), ("head", heads)):
        for path, text in (given or {}).items():
            real = os.path.realpath(path)
            if real not in logs:
                article = "an" if name == "anchor" else "a"
                raise ValueError(
                    f"{article} {name} is given for {os.fspath(path)!r}, which is not among the logs to verify"
                )
            anchored.setdefault(real, []).extend(
                record_checks(key_bytes, text, None) if name == "anchor" else record_checks(key_bytes, None, text)
            )
    records = _Records()
    chains = {
        log: verify_lines(records.reading(log, read_lines(log)), key_bytes, anchored.get(real, []))
        for real, log in logs.items()
    }
    return records.report(chains)


def verify_store(store: Store, prefix: str = "audit", *, key: Key | None = None) -> VerifyResult:
    """Verify every chain a :class:`StoreSink` wrote under *prefix* of *store*, and their batch records.

    A sink whose prefix has placeholders (``"audit/{host}"``) writes under
    the expanded prefixes: verify their common folder (``"audit"``). Besides
    each chain, every id a batch record lists in ``files`` must have its file
    record in one of the chains (the workers of a tree write their own).

    Returns:
        ``ok`` when every chain is intact and complete; ``records`` counts
        the records of all chains; on failure ``first_bad`` is the record's
        number in its chain and ``reason`` names the chain and the object
        (for a missing file record: the batch record, and the missing ids).
    """
    prefix = prefix.strip("/")
    key_bytes = key_to_bytes(key)
    chains: dict[str, list[str]] = {}
    if not prefix or store.exists(prefix):
        for info in store.list_files(prefix, recursive=True):
            path = str(info.path)
            relative = path[len(prefix) + 1 :] if prefix else path
            chain, _, name = relative.rpartition("/")
            chains.setdefault(chain, []).append(name)
    records = _Records()
    folders: dict[str, tuple[str, list[str]]] = {}
    total = 0
    for chain in sorted(chains):
        names = sorted(chains[chain])
        folder = f"{prefix}/{chain}" if prefix else chain
        folders[folder] = (chain, names)
        objects = [store.read_bytes(f"{folder}/{name}") for name in names]
        result = verify_lines(records.reading(folder, read_lines(objects)), key_bytes, [])
        total += result.records
        if not result.ok:
            assert result.first_bad is not None
            bad = names[min(result.first_bad, len(names)) - 1]
            return VerifyResult(
                False, total, result.first_bad, f"chain {chain}, object {folder}/{bad}: {result.reason}"
            )
    incomplete = next(iter(records.report({}).missing_by_batch().items()), None)
    if incomplete is None:
        return VerifyResult(True, total, None, "intact" if total else "empty log")
    (folder, number, batch), ids = incomplete
    chain, names = folders[folder]
    where = f"under {prefix!r}" if prefix else "in the store"
    return VerifyResult(
        False,
        total,
        number,
        f"chain {chain}, object {folder}/{names[number - 1]}: batch {batch} lists {len(ids)} file record(s) "
        f"that no chain {where} holds: {_few(ids)}",
    )
