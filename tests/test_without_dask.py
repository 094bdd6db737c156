"""The [dask] extra is optional: without it the package imports, trees run on threads, the CLI says what to install."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

# Makes "import distributed" / "import dask" fail in the child, as on a machine without the extra.
_NO_DASK = """
import sys
class _Blocker:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("dask", "distributed"):
            raise ModuleNotFoundError(f"No module named {name!r}")
        return None
sys.meta_path.insert(0, _Blocker())
"""


def _run(code: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", _NO_DASK + textwrap.dedent(code)],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120,
        check=False,
    )


def test_the_package_imports_and_trees_run_on_threads_without_dask(tmp_path: Path) -> None:
    (tmp_path / "src" / "a").mkdir(parents=True)
    (tmp_path / "src" / "a" / "f.txt").write_text("hello")
    result = _run(
        """
        import remote_store_transfer as rst
        from remote_store import Store
        from remote_store.backends import MemoryBackend
        store = Store(backend=MemoryBackend())
        print(rst.upload_tree(store, "src", "p").summary())
        assert "distributed" not in sys.modules and "dask" not in sys.modules
        """,
        tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert "1 transferred" in result.stdout


def test_the_cli_dask_option_without_dask_is_a_usage_error_that_says_what_to_install(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "stores.toml").write_text(
        f'[backends.d]\ntype = "local"\noptions = {{ root = "{tmp_path}" }}\n[stores.d]\nbackend = "d"\n'
    )
    result = _run(
        """
        from remote_store_transfer.cli import main
        main(["upload", "-r", "src", "d:x", "--config", "stores.toml", "--dask", "tcp://127.0.0.1:1"])
        """,
        tmp_path,
    )
    assert result.returncode == 2, result.stderr
    assert "[dask]" in result.stderr
