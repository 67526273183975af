"""Shared test helpers: Hypothesis profiles, and small exports written as CSV files."""

from __future__ import annotations

import csv
import datetime as dt
import os
from collections.abc import Iterable, Mapping
from pathlib import Path

import pytest
from hypothesis import settings

# Hypothesis profiles. `ci` (CI=1, set by .ci/run) tries as many examples as the tests ask
# for; `dev`, the default elsewhere, a quarter of that, for quick local runs.
# HYPOTHESIS_PROFILE=ci (or dev) chooses one explicitly; `pytest -vv` names the one loaded.
CI_EXAMPLES = 100  # Hypothesis's own default
settings.register_profile("ci", max_examples=CI_EXAMPLES)
settings.register_profile("dev", max_examples=CI_EXAMPLES // 4)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE") or
                      ("ci" if os.environ.get("CI") else "dev"))


def examples(ci: int) -> int:
    """``max_examples`` for a test that tries ``ci`` examples in the `ci` profile: scaled
    to the loaded profile, so a test keeps its weight relative to the others."""
    return max(1, round(ci * settings.default.max_examples / CI_EXAMPLES))


def csv_cell(value: object) -> str:
    """How a Python value looks in a CSV export: blank for NULL, ISO dates, true/false."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def write_csv(path: Path, rows: Iterable[Mapping[str, object]],
              columns: list[str] | None = None) -> Path:
    """Write ``rows`` as a CSV export; the header is the union of keys in first-seen order."""
    rows = list(rows)
    if columns is None:
        columns = []
        for row in rows:
            columns += [k for k in row if k not in columns]
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(columns)
        for row in rows:
            writer.writerow([csv_cell(row.get(c)) for c in columns])
    return path


@pytest.fixture(scope="session")
def spark_session():
    """The one Spark session of the test run (local[2]; see tests/spark_util.py)."""
    from spark_util import start

    from lifecycle_cli.sql import spark

    yield start()
    spark.stop()


@pytest.fixture
def export(tmp_path: Path):
    """``export(name, rows)`` writes ``rows`` to ``tmp_path/name`` and returns its path."""

    def write(name: str, rows: Iterable[Mapping[str, object]],
              columns: list[str] | None = None) -> Path:
        return write_csv(tmp_path / name, rows, columns)

    return write


def runtime_imports(path: Path) -> list[str]:
    """The modules a package module imports when it runs (not under ``TYPE_CHECKING``),
    relative imports made absolute (``lifecycle_cli.rules.model``)."""
    import ast

    root = Path(__file__).resolve().parents[1]
    package = list(path.resolve().relative_to(root).with_suffix("").parts[:-1])
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skipped = {id(node) for stmt in ast.walk(tree) if isinstance(stmt, ast.If)
               and "TYPE_CHECKING" in ast.unparse(stmt.test) for node in ast.walk(stmt)}
    found = []
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else []
            module = ".".join([*base, *([node.module] if node.module else [])])
            found += [module] if node.module else [f"{module}.{a.name}" for a in node.names]
    return found
