"""What every benchmark script records about the run (load, commit, CPU, versions) and where it puts files."""

from __future__ import annotations

import contextlib
import os
import platform
import subprocess
import tempfile
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

__all__ = ["cpu", "describe", "git_rev", "load", "tmpfs"]

ROOT = Path(__file__).resolve().parent.parent


def load() -> float:
    """The one-minute load average (0.0 where the platform has none)."""
    with contextlib.suppress(OSError, AttributeError):
        return os.getloadavg()[0]
    return 0.0


def git_rev() -> str | None:
    """The commit under test, ``+`` when ``src`` differs from it."""
    with contextlib.suppress(Exception):
        rev = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "src"], cwd=ROOT, capture_output=True, text=True, check=True
        )
        return rev.stdout.strip() + ("+" if dirty.stdout.strip() else "")
    return None


def cpu() -> str:
    """The CPU's model name."""
    with contextlib.suppress(OSError), open("/proc/cpuinfo", encoding="ascii", errors="replace") as fh:
        for line in fh:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def tmpfs() -> str:
    """``/dev/shm`` when writable (no disk, no page cache effects), else the temp dir."""
    return "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else tempfile.gettempdir()


def describe(**extra: Any) -> dict[str, Any]:
    """The run's ``meta``: date, Python, machine, commit, versions, the load average now; then *extra*."""
    import remote_store_transfer

    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "python": platform.python_version(),
        "machine": f"{os.cpu_count()} CPU ({cpu()})",
        "platform": platform.platform(),
        "git": git_rev(),
        "remote_store": version("remote-store"),
        "remote_store_transfer": remote_store_transfer.__version__,
        "load_before": load(),
        **extra,
    }
