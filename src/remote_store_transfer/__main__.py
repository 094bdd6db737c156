"""``python -m remote_store_transfer``: the same command line as ``remote-store-transfer``."""

from __future__ import annotations

from remote_store_transfer.cli import main

__all__: list[str] = []

if __name__ == "__main__":
    main()
