"""``-v`` / ``--verbose``: the command line's log records on stderr.

Without ``-v`` nothing is configured: Python's last-resort handler prints
WARNING and above (as before). ``-v`` prints INFO and above of every logger
(this package's, the ``logging`` plugin's, remote-store's, third-party
plugins' and libraries'); ``-vv`` adds DEBUG of every logger except the
transport libraries, whose DEBUG records dump requests and headers
(:data:`QUIET_AT_DEBUG`: they stay at INFO); ``-vvv`` lets them through too.

Records go to stderr, never stdout (stdout may carry a download's bytes).
The handler looks ``sys.stderr`` up at every record, so that a progress
display that redirects stderr while it draws (rich's ``Live``) prints the
records above itself; remote-store's ``SecretRedactionFilter`` masks
``Secret`` arguments.
"""

from __future__ import annotations

import logging
import sys
from typing import TextIO

from remote_store import SecretRedactionFilter

__all__ = ["FORMAT", "QUIET_AT_DEBUG", "StderrHandler", "configure_logging"]

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
"""The format of a log record on stderr: time, level, logger name and message."""

QUIET_AT_DEBUG = ("botocore", "aiobotocore", "boto3", "s3transfer", "urllib3", "s3fs", "fsspec", "paramiko", "asyncio")
"""Loggers kept at INFO with ``-vv`` (their DEBUG records are request dumps); ``-vvv`` shows them."""


class StderrHandler(logging.StreamHandler[TextIO]):
    """A stream handler on whatever ``sys.stderr`` is when a record is emitted."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> TextIO:
        """The current ``sys.stderr``."""
        return sys.stderr

    @stream.setter
    def stream(self, value: TextIO) -> None:
        """Ignored: the stream is always the current ``sys.stderr``."""


_handler: StderrHandler | None = None


def configure_logging(verbosity: int) -> None:
    """Show log records on stderr for *verbosity* (the count of ``-v``); 0 leaves logging as it is.

    Called again with another count (``-v`` before and after the
    subcommand), it sets the levels for the new count.
    """
    global _handler  # noqa: PLW0603 -- one handler per process, however often -v is counted
    if verbosity <= 0:
        return
    root = logging.getLogger()
    if _handler is None:
        _handler = StderrHandler()
        _handler.setFormatter(logging.Formatter(FORMAT))
        _handler.addFilter(SecretRedactionFilter())
        root.addHandler(_handler)
    root.setLevel(logging.INFO if verbosity == 1 else logging.DEBUG)
    for name in QUIET_AT_DEBUG:
        logging.getLogger(name).setLevel(logging.INFO if verbosity == 2 else logging.NOTSET)
