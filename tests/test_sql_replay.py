"""A backfill's metrics on an SQL engine (`lifecycle_cli.sql.replay`): per-day partials in
the engine give, day after day, what the Polars replay gives: the same values, dtypes and
counts; and a backfill with ``--engine`` writes the same state as without."""

from __future__ import annotations

import datetime as dt
import random
from pathlib import Path

import pytest
from cli_util import lifecycle
from conftest import write_csv
from engines import choice, engine_args, params
from polars.testing import assert_frame_equal

from lifecycle_cli import load, parse_rules
from lifecycle_cli.day.load import Tables
from lifecycle_cli.metrics.replay import SourcesReplay
from lifecycle_cli.sql.backend import connected
from lifecycle_cli.sql.replay import SqlReplay
from lifecycle_cli.state.store import KEPT, SNAPSHOTS, TABLES
from lifecycle_cli.state.view import StateView

START, END = dt.date(2026, 10, 1), dt.date(2026, 10, 12)

RULES = """\
version: 1
stages: [{name: New}, {name: Active}, {name: Busy}, {name: Quiet}]
initial_stage: New
sources:
  feature_usage:
    customer_id: {via: subscriptions}
lookups:
  subscriptions: {key: subscription_id, customer_id: customer_id}
metrics:
  n:      {agg: count}
  n7:     {agg: count, window_days: 7, where: "event = 'login'"}
  s:      {agg: sum, column: minutes, where: "event <> 'logout'"}
  s3:     {agg: sum, column: minutes, window_days: 3}
  avg7:   {agg: mean, column: score, window_days: 7}
  mn:     {agg: min, column: minutes}
  mx2:    {agg: max, column: minutes, window_days: 2, default: -1}
  f:      {agg: first, column: event}
  l3:     {agg: last, column: event, window_days: 3}
  fm:     {agg: first, column: minutes, where: "minutes > 10"}
  lf:     {agg: last, column: flag}
  u:      {agg: n_unique, column: event}
  u5:     {agg: n_unique, column: minutes, window_days: 5, where: flag}
  a3:     {agg: any, window_days: 3, where: flag}
  sf:     {agg: sum, column: flag}
  fu7:    {source: feature_usage, agg: count, window_days: 7}
  fu_u:   {source: feature_usage, agg: n_unique, column: feature}
  fu_l:   {source: feature_usage, agg: last, column: seconds, where: "seconds >= 0"}
  fu_m4:  {source: feature_usage, agg: mean, column: seconds, window_days: 4, default: 0}
transitions:
  - {id: go, from: New, to: Active, when: "n7 >= 2 OR fu7 >= 2"}
  - {id: busy, from: Active, to: Busy, when: "s3 > 40 AND u >= 2"}
  - {id: quiet, from: [Active, Busy], to: Quiet, when: "NOT a3 AND coalesce(mx2, 0) < 20"}
  - {id: back, from: Quiet, to: Active, when: "fu_u >= 3 OR lf"}
"""

# a `where` that reads the as-of date: that source is aggregated afresh each day
AS_OF_WHERE = RULES.replace("fu7:    {source: feature_usage, agg: count, window_days: 7}",
                            "fu7:    {source: feature_usage, agg: count, "
                            "where: \"days_since(timestamp) <= 2\"}")


def exports(folder: Path, seed: int) -> dict[str, Path]:
    """Customers, events by customer (unknown customers, blank timestamps, rows after the
    range, many ties in time), feature usage through a lookup (keys it lacks, keys of
    customers we do not know)."""
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)

    def stamp() -> str | None:
        if rng.random() < 0.03:
            return None
        day = START + dt.timedelta(days=rng.randint(-6, (END - START).days + 3))
        return f"{day} {rng.choice(['00:00', '09:30', '09:30', '23:59'])}:00"

    customers = write_csv(folder / "customers.csv", [
        {"customer_id": f"c{i}", "name": f"n{i}"} for i in range(40)])
    events = write_csv(folder / "usage.csv", [
        {"customer_id": f"c{rng.randint(0, 44)}", "timestamp": stamp(),
         "event": rng.choice(["login", "logout", "export", None]),
         "minutes": rng.choice([None, *range(0, 30, 3)]),
         "score": rng.choice([None, 0.5, 1.0, 2.5, 4.0]),
         "flag": rng.choice(["true", "false", None])}
        for _ in range(1500)])
    subscriptions = write_csv(folder / "subscriptions.csv", [
        {"subscription_id": f"s{i}", "customer_id": f"c{i % 45}"} for i in range(60)])
    usage = write_csv(folder / "feature_usage.csv", [
        {"subscription_id": f"s{rng.randint(0, 64)}", "timestamp": stamp(),
         "feature": rng.choice(["a", "b", "c", "d", None]),
         "seconds": rng.choice([None, -1, *range(0, 100, 7)])}
        for _ in range(800)])
    return {"customers": customers, "usage": events, "subscriptions": subscriptions,
            "feature_usage": usage}


@pytest.mark.parametrize("engine", [p for p in params(spark=True) if p.values[0] != "polars"])
@pytest.mark.parametrize(("seed", "text"), [(1, RULES), (2, RULES), (3, AS_OF_WHERE)])
def test_the_engine_replay_equals_the_polars_replay_every_day(
        tmp_path: Path, engine: str, seed: int, text: str) -> None:
    files = exports(tmp_path, seed)
    rules = parse_rules(text)
    loaded = load(rules, files["customers"], {"usage": [files["usage"]],
                                              "feature_usage": [files["feature_usage"]]},
                  tables=Tables(lookups={"subscriptions": files["subscriptions"]}))
    ids = loaded.typed.select("customer_id")
    polars = SourcesReplay(rules, loaded.sources, ids, START, END)
    assert bool(polars.in_memory) == (text == AS_OF_WHERE)
    with connected(choice(engine), rules.timezone) as backend:
        assert backend is not None
        sql = SqlReplay(backend, rules, loaded.sources, ids, START, END)
        assert bool(sql.partials) and (len(sql.partials) == 1) == (text == AS_OF_WHERE)
        for offset in range((END - START).days + 1):
            day = START + dt.timedelta(days=offset)
            want, got = polars.metrics(day), sql.metrics(day)
            assert_frame_equal(got.values, want.values)  # values and dtypes, exactly
            assert got.kinds == want.kinds
            assert got.by_source == want.by_source, day
            assert got.counts() == want.counts(), day
            assert want.usage_rows and want.unknown_customer_rows and want.unmatched_key_rows


@pytest.mark.parametrize("engine", [p for p in params(spark=True) if p.values[0] != "polars"])
def test_a_backfill_on_the_engine_writes_the_state_polars_writes(
        tmp_path: Path, engine: str) -> None:
    """Every table of every day of the state (stages, transitions, metrics, CTAs...) and
    the counts of each day's summary are the same with the engine as without."""
    files = exports(tmp_path / "data", 7)
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    states = {}
    for name in ("polars", engine):
        states[name] = tmp_path / name
        result = lifecycle("backfill", "--customers", files["customers"], "--usage",
                           files["usage"], "--usage", f"feature_usage={files['feature_usage']}",
                           "--lookup", f"subscriptions={files['subscriptions']}",
                           "--rules", rules, "--from", START, "--to", END,
                           "--state", states[name], *engine_args(name))
        assert result.returncode == 0, result.stderr
    a, b = StateView.open(states["polars"]), StateView.open(states[engine])
    assert list(a.days) == list(b.days) and len(a.days) == (END - START).days + 1
    seen = set()
    for day in a.days:
        for table in (*TABLES, *KEPT, *SNAPSHOTS):
            want, got = a.table(table, day), b.table(table, day)
            assert (want is None) == (got is None), (day, table)
            if want is not None and got is not None:
                assert_frame_equal(got, want, check_exact=True)
                seen.add(table)
        usage = [(a.manifest(day) or {}).get("summary", {}).get("usage"),
                 (b.manifest(day) or {}).get("summary", {}).get("usage")]
        assert usage[0] == usage[1], day
    assert {"stages", "transitions", "metrics"} <= seen
    assert a.history("transitions").height > 40  # the rules move customers


@pytest.mark.parametrize("dialect", ["duckdb", "spark"])
def test_the_replay_statements_are_sql_of_each_engine(dialect: str) -> None:
    """The statements an engine runs, rendered for its dialect, parse back in it (the
    Spark engine runs the same ones; CACHE TABLE there)."""
    import sqlglot

    from lifecycle_cli.expressions import Kind
    from lifecycle_cli.sql import replay, script
    from lifecycle_cli.sql.day import create_sql

    rules = parse_rules(RULES).for_source("usage")
    kinds = {"customer_id": Kind.STRING, "timestamp": Kind.DATETIME, "event": Kind.STRING,
             "minutes": Kind.NUMBER, "score": Kind.NUMBER, "flag": Kind.BOOL}
    table = script.SourceTable("lc_usage_usage", kinds)
    n_unique = [i for i, m in enumerate(rules.metrics.values()) if m.agg == "n_unique"]
    queries = {
        "p": replay.partials_query(rules, table, END, START, dialect),
        **{f"d{i}": replay.distinct_query(rules, table, END, START, dialect, i)
           for i in n_unique},
        "k": replay.carry_query(rules, list(range(len(rules.metrics))), "k0", "p", START,
                                END),
        "g": replay.day_query(rules, "k", "p", {i: f"d{i}" for i in n_unique}, END),
        "c": replay.counts_query("g", "p", "lc_replay_customers", False, END),
        "o": replay.outside_query(table, END),
    }
    for name, query in queries.items():
        text = create_sql(name, query, dialect)
        assert text.startswith("CACHE TABLE" if dialect == "spark" else "CREATE")
        assert sqlglot.parse_one(text, read=dialect) is not None
