"""Redaction of credentials in what the built-in plugins write (audit records, log records).

Store descriptions come from ``repr(store)``, which never holds credentials.
What can hold them is free text: an exception message from a backend (a
connection string, a pre-signed URL, ``password=...``), or a path. Two layers:

* the exact values of known secrets (``remote_store.Secret`` objects or plain
  strings: the credentials of the stores named in the config file, and any
  the caller registers) are replaced by ``***``;
* well-known credential shapes are masked whatever their value: the password
  of a URL (``scheme://user:***@host``), ``name=value`` / ``name: value``
  pairs whose name is a credential name (``password``, ``secret``, ``token``,
  ``AccountKey``, ``sig``, ``X-Amz-Signature``...), and ``Bearer`` tokens.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from remote_store import Secret

if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = ["MASK", "Redactor"]

MASK = "***"

_CREDENTIAL_NAMES = (
    r"password|passwd|pwd|secret|secret_key|secret_access_key|aws_secret_access_key|access_token|refresh_token"
    r"|token|sas_token|session_token|security_token|api_key|apikey|client_secret|client_certificate|account_key"
    r"|accountkey|sharedaccesssignature|sharedaccesskey|connection_string|sig|signature|credential|authorization"
    r"|x-amz-signature|x-amz-credential|x-amz-security-token|private_key"
)
_PAIR = re.compile(
    rf"(?i)(?<![\w-])({_CREDENTIAL_NAMES})(\s*[=:]\s*)(\"[^\"]*\"|'[^']*'|[^\s&;,'\"]+)",
)
_URL_PASSWORD = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^\s/:@]*:)([^\s/@]+)(@)")
_BEARER = re.compile(r"(?i)\b(bearer|basic)(\s+)([A-Za-z0-9._~+/=-]{8,})")


class Redactor:
    """Masks credentials in strings.

    Args:
        secrets: Known secret values (``Secret`` objects or plain strings);
            every occurrence is replaced by ``***``. Empty ones are ignored.
    """

    __slots__ = ("_values",)

    def __init__(self, secrets: Iterable[Secret | str] = ()) -> None:
        values = {s.reveal() if isinstance(s, Secret) else s for s in secrets}
        # Longest first, so that a secret containing another is masked whole.
        self._values = tuple(sorted((v for v in values if v), key=len, reverse=True))

    def __call__(self, text: str) -> str:
        """*text* with every known secret and credential-shaped value masked."""
        for value in self._values:
            if value in text:
                text = text.replace(value, MASK)
        text = _URL_PASSWORD.sub(rf"\1{MASK}\3", text)
        text = _BEARER.sub(rf"\1\2{MASK}", text)
        return _PAIR.sub(rf"\1\2{MASK}", text)

    def value(self, value: object) -> object:
        """Redact every string in a JSON-like value (dicts, lists, strings); ``Secret`` becomes ``***``."""
        if isinstance(value, str):
            return self(value)
        if isinstance(value, Secret):
            return MASK
        if isinstance(value, dict):
            return {k: self.value(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.value(v) for v in value]
        return value
