"""``python -m remote_store_transfer.audit``: the audit command line."""

from __future__ import annotations

import sys

from remote_store_transfer.audit.cli import main

__all__: list[str] = []

if __name__ == "__main__":
    sys.exit(main())
