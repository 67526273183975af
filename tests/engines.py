"""The engines the conformance suite runs: every test that takes ``engine`` from here runs
on each, and an engine that disagrees with the reference (or the golden files) fails.

``ENGINES``: polars (the reference path) and the SQL engines whose package is installed.
The Spark engine runs a reduced set: parametrise with :func:`params`, and mark the cases
Spark runs with ``spark=True`` (the others get ``pytest.mark.skip`` on Spark).
"""

from __future__ import annotations

import importlib.util
import os
from typing import Any

import pytest
import spark_util

from lifecycle_cli.sql.backend import EngineChoice

SQL_ENGINES = {"duckdb": "duckdb", "spark": "pyspark"}  # engine -> the package it needs
# in CI every engine runs: one whose package is missing fails there instead of vanishing
ENGINES = ["polars", *[name for name, package in SQL_ENGINES.items()
                       if importlib.util.find_spec(package) is not None or os.environ.get("CI")]]


def choice(engine: str) -> EngineChoice | None:
    """The ``engine=`` argument of `run`/`backfill` for an engine's name. Spark: the test
    run's one session, local[2] (tests/spark_util.py: started on first use, a failure to
    start it skips, or fails under CI)."""
    if engine == "spark":
        spark_util.start()
        return spark_util.choice()
    return None if engine == "polars" else EngineChoice(engine)


def params(*, spark: bool = False) -> list[Any]:
    """``ENGINES`` as pytest params; Spark only where ``spark`` (the reduced set), marked
    ``spark`` (``pytest -m spark``)."""
    out = []
    for name in ENGINES:
        marks: list[Any] = []
        if name == "spark":
            marks.append(pytest.mark.spark)
            if not spark:
                marks.append(pytest.mark.skip(reason="Spark runs the reduced set"))
        out.append(pytest.param(name, id=name, marks=marks))
    return out


def engine_args(engine: str) -> list[str]:
    """The command-line options for an engine (none for the default)."""
    if engine == "spark":
        spark_util.start()
        return ["--engine", "spark", "--spark-master", spark_util.MASTER]
    return [] if engine == "polars" else ["--engine", engine]


def assert_script_equals_run(transitions: Any, stages: Any) -> None:
    """A warehouse script's output tables (as Polars frames) hold what `lifecycle run` gives
    on the fixture (tests/data): every transition, reason included, and every customer's
    stage and stage_entered_at."""
    import datetime as dt

    import polars as pl
    from cli_util import AS_OF, DATA, RULES

    from lifecycle_cli import parse_rules, run

    assert isinstance(transitions, pl.DataFrame) and isinstance(stages, pl.DataFrame)
    want = run(parse_rules(RULES.read_text()), DATA / "customers.csv", [DATA / "usage.csv"],
               dt.date.fromisoformat(AS_OF))
    assert want.transitions.height > 0
    key = ["hop", "customer_id"]
    columns = ["as_of", "customer_id", "from_stage", "to_stage", "rule_id", "hop",
               "days_in_from_stage", "reason"]
    expected = want.transitions.select(columns).sort(key)
    assert transitions.select(columns).cast(dict(expected.schema)).sort(key).equals(expected)
    final = want.customers.select("customer_id", "stage", "stage_entered_at").sort(
        "customer_id")
    assert stages.select(final.columns).sort("customer_id").cast(
        dict(final.schema)).equals(final)
