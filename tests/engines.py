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
