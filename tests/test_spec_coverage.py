"""Every requirement id in the spec is proven by at least one test marked with it."""

from __future__ import annotations

import ast
import os
import re
from pathlib import Path

TESTS = Path(__file__).parent
SPEC = Path(os.environ.get("TRANSFER_SPEC", TESTS.parent.parent / "shared" / "spec" / "transfer-spec.md"))


def _spec_ids() -> set[str]:
    return set(re.findall(r"^### (XFER-\d{3})\b", SPEC.read_text(encoding="utf-8"), flags=re.M))


def _marked_ids() -> dict[str, list[str]]:
    """XFER ids used in ``@pytest.mark.spec("...")`` decorators of test functions, found by parsing the tests."""
    found: dict[str, list[str]] = {}
    for path in TESTS.rglob("test_*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) or not node.name.startswith("test"):
                continue
            for deco in node.decorator_list:
                if (
                    isinstance(deco, ast.Call)
                    and isinstance(deco.func, ast.Attribute)
                    and deco.func.attr == "spec"
                    and deco.args
                    and isinstance(deco.args[0], ast.Constant)
                ):
                    found.setdefault(str(deco.args[0].value), []).append(f"{path.name}::{node.name}")
    return found


def test_spec_file_lists_the_seventeen_requirements():
    assert _spec_ids() == {f"XFER-{n:03d}" for n in range(1, 18)}


def test_every_spec_id_has_a_marked_test():
    missing = sorted(_spec_ids() - _marked_ids().keys())
    assert missing == [], f"spec ids without a test: {missing}"


def test_no_test_claims_an_id_the_spec_does_not_have():
    unknown = sorted(_marked_ids().keys() - _spec_ids())
    assert unknown == [], f"tests marked with ids not in {SPEC}: {unknown}"
