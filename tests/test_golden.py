"""Golden outputs: the bundled fixture through the real command, compared byte for byte.

Set UPDATE_GOLDEN=1 to rewrite the golden files after a deliberate change, and
review the diff (see golden_util.py).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_util import lifecycle, run_args
from engines import engine_args, params
from golden_util import assert_golden


@pytest.fixture(scope="module", params=params(spark=True))
def run_out(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Path:
    """One `lifecycle run` on the fixture per engine, whose four outputs the tests compare:
    every engine must write the same bytes."""
    out = tmp_path_factory.mktemp("golden")
    result = lifecycle(*run_args(out), *engine_args(request.param))
    assert result.returncode == 0, result.stderr
    return out


@pytest.mark.parametrize("name", ["customers.csv", "transitions.csv", "ctas.csv", "tasks.csv"])
def test_run_matches_golden(run_out: Path, name: str) -> None:
    assert_golden(run_out / name, name)


def test_diff_matches_golden(tmp_path: Path) -> None:
    """rules/default.yaml against a draft with a threshold changed and a rule added."""
    draft = Path(__file__).resolve().parent / "data" / "rules-draft.yaml"
    args = run_args(tmp_path, "--rules", draft)
    args[0] = "diff"
    result = lifecycle(*args)
    assert result.returncode == 0, result.stderr
    assert_golden(tmp_path / "diff.csv", "diff.csv")
