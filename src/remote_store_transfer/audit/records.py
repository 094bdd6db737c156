"""The audit log's two formats: a record line and a chain head.

Record line
    One JSON object per line (ASCII, no spaces), keys in this order:
    ``seq`` (1, 2, 3... in the chain), ``prev`` (the ``hash`` of the record
    before, or 64 zeros for the first), ``v`` (format version, 1), the
    transfer's fields, and last ``hash``: the hex SHA-256 (HMAC-SHA256 when a
    key is configured) of the line's exact bytes without the
    ``,"hash":"..."`` member, i.e. of ``line[:line.rindex(',"hash":')] + "}"``.

Chain head
    ``seq:hash`` of a chain's last record, and ``:mac`` (HMAC-SHA256 of it
    with the key) when a key is configured: what an anchor publishes.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from typing import Any

from remote_store import Secret

__all__ = [
    "FORMAT_VERSION",
    "GENESIS",
    "HASH_SUFFIX",
    "Key",
    "chain_link",
    "checked_link",
    "hash_of",
    "head_text",
    "key_to_bytes",
    "parse_head",
    "seal",
]


GENESIS = "0" * 64
"""The ``prev`` of the first record of a chain."""
FORMAT_VERSION = 1

HASH_SUFFIX = re.compile(rb',"hash":"([0-9a-f]{64})"\}$')
"""The ``,"hash":"..."}`` end of a record line; group 1 is the hash."""
Key = bytes | str | Secret
"""An HMAC key as the API takes it."""


def key_to_bytes(key: Key | None) -> bytes | None:
    """*key* as bytes (``None``: no key).

    Raises:
        ValueError: An empty key, or one of another type.
    """
    if key is None:
        return None
    if isinstance(key, Secret):
        key = key.reveal()
    if isinstance(key, str):
        key = key.encode()
    if not isinstance(key, bytes) or not key:
        raise ValueError("the audit key must be a non-empty str, bytes or remote_store.Secret")
    return key


def hash_of(body: bytes, key: bytes | None) -> str:
    """The hex SHA-256 of *body*, or its HMAC-SHA256 with *key*."""
    if key is None:
        return hashlib.sha256(body).hexdigest()
    return hmac.new(key, body, hashlib.sha256).hexdigest()


def seal(record: dict[str, Any], seq: int, prev: str, key: bytes | None) -> tuple[bytes, str]:
    """The record's line (without newline) and its hash."""
    body = json.dumps(
        {"seq": seq, "prev": prev, "v": FORMAT_VERSION, **record}, ensure_ascii=True, separators=(",", ":")
    ).encode("ascii")
    digest = hash_of(body, key)
    return body[:-1] + b',"hash":"' + digest.encode("ascii") + b'"}', digest


def chain_link(line: bytes) -> tuple[int, str]:
    """``(seq, hash)`` of a record line, for appending after it.

    Raises:
        ValueError: The line is not a well-formed record.
    """
    match = HASH_SUFFIX.search(line)
    if match is None:
        raise ValueError("the line has no hash")
    seq = json.loads(line).get("seq")
    if not isinstance(seq, int) or isinstance(seq, bool):
        raise ValueError("the line has no seq")
    return seq, match.group(1).decode("ascii")


def checked_link(line: bytes, key: bytes | None) -> tuple[int, str]:
    """``(seq, hash)`` of a record line whose hash is checked against its content (and *key*).

    Raises:
        ValueError: The line is not a well-formed record, or its hash does not match.
    """
    match = HASH_SUFFIX.search(line)
    if match is None:
        raise ValueError("the line has no hash")
    if not hmac.compare_digest(hash_of(line[: match.start()] + b"}", key), match.group(1).decode("ascii")):
        with_key = " and the key (or it was not made with this key)" if key is not None else ""
        raise ValueError(f"its hash does not match its content{with_key}: altered")
    return chain_link(line)


_HEAD_TAG = b"remote-store-transfer audit head v1\n"


def head_text(seq: int, digest: str, key: bytes | None) -> str:
    """The chain head an anchor publishes: ``seq:hash``, and ``:mac`` (HMAC-SHA256 of it) with a key."""
    text = f"{seq}:{digest}"
    if key is None:
        return text
    return f"{text}:{hmac.new(key, _HEAD_TAG + text.encode('ascii'), hashlib.sha256).hexdigest()}"


def parse_head(head: str, key: bytes | None) -> tuple[int, str, str | None]:
    """``(seq, hash, problem)`` of a published head; *problem* is ``None`` when it is acceptable.

    With *key* the head must carry a valid MAC (only the key's holder can make one).

    Raises:
        ValueError: *head* is not ``seq:hash`` or ``seq:hash:mac``.
    """
    text = head.strip()
    seq_text, _, rest = text.partition(":")
    digest, _, mac = rest.partition(":")
    if not seq_text.isdigit() or not re.fullmatch(r"[0-9a-f]{64}", digest) or (mac and ":" in mac):
        raise ValueError(f"a chain head must be 'seq:hash' or 'seq:hash:mac', got {head!r}")
    seq = int(seq_text)
    if key is None:
        return seq, digest, None
    if not mac:
        return seq, digest, "the chain head has no MAC although a key is given: forged (or written without the key)"
    if not hmac.compare_digest(head_text(seq, digest, key), text):
        return seq, digest, "the chain head's MAC does not match the key: forged (or written with another key)"
    return seq, digest, None
