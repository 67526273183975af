"""Golden files: an output compared byte for byte with its copy in tests/golden/.

After a deliberate change in an output, rewrite the golden files with
``UPDATE_GOLDEN=1 pytest`` (or only the tests concerned) and review the diff in git.
"""

from __future__ import annotations

import difflib
import os
from pathlib import Path

import pytest

GOLDEN = Path(__file__).resolve().parent / "golden"


def assert_golden(produced: bytes | str | Path, name: str) -> None:
    """``produced`` (bytes, text, or the path of a file) equals ``tests/golden/<name>``.

    With ``UPDATE_GOLDEN=1`` in the environment, the golden file is written first.
    """
    if isinstance(produced, Path):
        data = produced.read_bytes()
    elif isinstance(produced, str):
        data = produced.encode()
    else:
        data = produced
    golden = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN"):
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_bytes(data)
    if not golden.exists():
        pytest.fail(f"no golden file {golden}: run with UPDATE_GOLDEN=1 and review it")
    expected = golden.read_bytes()
    if data != expected:
        diff = difflib.unified_diff(
            expected.decode(errors="replace").splitlines(keepends=True),
            data.decode(errors="replace").splitlines(keepends=True),
            f"golden/{name}", "produced")
        shown = "".join(list(diff)[:80]) or "(the same text; the bytes differ)"
        pytest.fail(f"the output differs from golden/{name} (UPDATE_GOLDEN=1 rewrites it "
                    f"after a deliberate change):\n{shown}", pytrace=False)
