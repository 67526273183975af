"""The engines the conformance suite runs: every test that takes ``engine`` from here runs
on each, and an engine that disagrees with the reference (or the golden files) fails.

``ENGINES``: polars (the reference path) and the SQL engines whose package is installed.
The Spark engine runs a reduced set: parametrise with :func:`params`, and mark the cases
Spark runs with ``spark=True`` (the others get ``pytest.mark.skip`` on Spark).
"""

from __future__ import annotations

import importlib.util
from typing import Any

import pytest

from lifecycle_cli.sql.backend import EngineChoice

SQL_ENGINES = {"duckdb": "duckdb", "spark": "pyspark"}  # engine -> the package it needs
ENGINES = ["polars", *[name for name, package in SQL_ENGINES.items()
                       if importlib.util.find_spec(package) is not None]]


def choice(engine: str) -> EngineChoice | None:
    """The ``engine=`` argument of `run`/`backfill` for an engine's name."""
    return None if engine == "polars" else EngineChoice(engine)


def params(*, spark: bool = False) -> list[Any]:
    """``ENGINES`` as pytest params; Spark only where ``spark`` (the reduced set)."""
    out = []
    for name in ENGINES:
        marks = []
        if name == "spark" and not spark:
            marks.append(pytest.mark.skip(reason="Spark runs the reduced set"))
        out.append(pytest.param(name, id=name, marks=marks))
    return out


def engine_args(engine: str) -> list[str]:
    """The command-line option for an engine (none for the default)."""
    return [] if engine == "polars" else ["--engine", engine]
