"""Golden outputs: the bundled fixture through the real command, compared byte for byte.

Set UPDATE_GOLDEN=1 to rewrite the golden files after a deliberate change, and
review the diff.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from cli_util import lifecycle, run_args

GOLDEN = Path(__file__).resolve().parent / "golden"


@pytest.mark.parametrize("name", ["customers.csv", "transitions.csv", "ctas.csv", "tasks.csv"])
def test_run_matches_golden(tmp_path: Path, name: str) -> None:
    result = lifecycle(*run_args(tmp_path))
    assert result.returncode == 0, result.stderr
    produced = (tmp_path / name).read_bytes()
    golden = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN"):
        golden.write_bytes(produced)
    assert produced == golden.read_bytes()


def test_diff_matches_golden(tmp_path: Path) -> None:
    """rules/default.yaml against a draft with a threshold changed and a rule added."""
    draft = Path(__file__).resolve().parent / "data" / "rules-draft.yaml"
    args = run_args(tmp_path, "--rules", draft)
    args[0] = "diff"
    result = lifecycle(*args)
    assert result.returncode == 0, result.stderr
    produced = (tmp_path / "diff.csv").read_bytes()
    golden = GOLDEN / "diff.csv"
    if os.environ.get("UPDATE_GOLDEN"):
        golden.write_bytes(produced)
    assert produced == golden.read_bytes()
