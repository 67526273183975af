"""`--engine`: the engines' seams, the errors users see, and runs with a state and a
backfill on every engine giving what Polars gives."""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_util import AS_OF, DATA, RULES, lifecycle, run_args
from engines import ENGINES, engine_args, params

from lifecycle_cli.metrics.aggregations import names as aggregation_names
from lifecycle_cli.sql import backend
from lifecycle_cli.sql.script import AGGREGATION_SQL, registered_without_sql
from lifecycle_cli.state.view import StateView


def test_every_registered_aggregation_has_an_sql_form() -> None:
    assert registered_without_sql() == []
    assert set(aggregation_names()) <= set(AGGREGATION_SQL)


def test_the_bundled_engines_are_registered() -> None:
    assert backend.names()[:2] == ["polars", "duckdb"]


def test_an_unknown_engine_is_an_option_error() -> None:
    result = lifecycle(*run_args(Path("unused")), "--engine", "duckbd")
    assert result.returncode == 2
    assert "--engine duckbd: no such engine" in result.stderr
    assert "duckdb" in result.stderr


def test_a_missing_engine_package_says_how_to_install_it(tmp_path: Path) -> None:
    """Without the DuckDB package, exit 2 with the pip command, nothing written."""
    # a sitecustomize that hides duckdb from this process's imports
    hide = tmp_path / "hide"
    hide.mkdir()
    (hide / "duckdb.py").write_text("raise ImportError('hidden', name='duckdb')\n")
    import subprocess
    import sys

    code = ("import sys; sys.path.insert(0, sys.argv[1]); sys.modules.pop('duckdb', None);"
            "from lifecycle_cli.cli import main; sys.argv = ['lifecycle', *sys.argv[2:]];"
            "main()")
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-c", code, str(hide), *map(str, run_args(out)),
                           "--engine", "duckdb"], capture_output=True, text=True,
                          env={"COLUMNS": "200", "NO_COLOR": "1", "PATH": ""}, check=False)
    assert proc.returncode == 2, proc.stderr
    assert 'pip install "lifecycle-cli[duckdb]"' in proc.stderr
    assert not out.exists()


@pytest.mark.parametrize("engine", [p for p in params() if p.values[0] != "polars"])
def test_runs_with_a_state_equal_polars(tmp_path: Path, engine: str) -> None:
    """Two nightly runs with a state (previous(), the state's stages) write the same
    outputs and records on the engine as on Polars."""
    outputs = {}
    for name in ("polars", engine):
        state = tmp_path / f"state-{name}"
        for day in ("2026-10-31", AS_OF):
            args = run_args(tmp_path / f"out-{name}-{day}", "--state", state,
                            *engine_args(name))
            args[args.index("--as-of") + 1] = day
            result = lifecycle(*args)
            assert result.returncode == 0, result.stderr
        outputs[name] = {p.name: p.read_bytes()
                         for p in (tmp_path / f"out-{name}-{AS_OF}").iterdir()}
    assert outputs["polars"] == outputs[engine]


@pytest.mark.parametrize("engine", [p for p in params(spark=True) if p.values[0] != "polars"])
def test_a_backfill_equals_polars(tmp_path: Path, engine: str) -> None:
    states = {}
    for name in ("polars", engine):
        states[name] = tmp_path / name
        result = lifecycle("backfill", "--customers", DATA / "customers.csv", "--usage",
                           DATA / "usage.csv", "--rules", RULES, "--from", "2026-10-29",
                           "--to", AS_OF, "--state", states[name], *engine_args(name))
        assert result.returncode == 0, result.stderr
    a, b = StateView.open(states["polars"]), StateView.open(states[engine])
    assert list(a.days) == list(b.days)
    for day in a.days:
        assert a.stages(day).equals(b.stages(day)), day
    assert a.history("transitions").equals(b.history("transitions"))
    assert a.history("ctas").equals(b.history("ctas"))


def test_engines_list_is_what_is_installed() -> None:
    assert "polars" in ENGINES and "duckdb" in ENGINES


@pytest.mark.parametrize("engine", [p for p in params() if p.values[0] != "polars"])
def test_parquet_usage_read_by_the_engine_equals_polars(tmp_path: Path, engine: str) -> None:
    """Parquet parts (DuckDB reads them itself), with zoned timestamps in another zone
    than the rules': every output the same as with Polars."""
    import polars as pl

    from lifecycle_cli import parse_rules
    from lifecycle_cli.day.load import load
    from lifecycle_cli.sql.day import parquet_columns

    data = tmp_path / "data"
    made = lifecycle("sample", "--customers", "300", "--usage-rows", "20000", "--seed", "3",
                     "--format", "parquet", "--as-of", AS_OF, "--out", data)
    assert made.returncode == 0, made.stderr
    usage = data / "usage"
    for part in usage.glob("*.parquet"):  # zoned, in New York: the rules' day is UTC's
        frame = pl.read_parquet(part)
        frame.with_columns(pl.col("timestamp").dt.replace_time_zone("UTC")
                           .dt.convert_time_zone("America/New_York")).write_parquet(part)
    customers = next(data.glob("customers.*"))
    rules = parse_rules(RULES.read_text())
    loaded = load(rules, customers, [usage])
    assert parquet_columns(rules, loaded.sources["usage"], ["customer_id", "timestamp"],
                           "duckdb") is not None
    outputs = {}
    for name in ("polars", engine):
        out = tmp_path / name
        result = lifecycle("run", "--customers", customers, "--usage", usage, "--rules", RULES,
                           "--as-of", AS_OF, "--out", out, *engine_args(name))
        assert result.returncode == 0, result.stderr
        outputs[name] = {p.name: p.read_bytes() for p in out.iterdir()}
    assert outputs["polars"] == outputs[engine]
