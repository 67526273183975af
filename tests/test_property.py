"""The vectorised engine equals the row-by-row reference on random rules and data.

Conditions come from a small grammar over two integer attributes (`a`, `c`), a
boolean (`b`), `days_in_stage` and `stage`, combined with AND / OR / NOT; each
is rendered as SQL for the rules file and evaluated in Python with SQL's NULL
logic for the reference.
"""

from __future__ import annotations

import datetime as dt
import math
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import examples, write_csv
from engines import choice, params
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from reference import (
    UNSPECIFIED,
    Customer,
    MetricSpec,
    Rule,
    UsageRow,
    decide,
    metric,
    sql_and,
    sql_compare,
    sql_not,
    sql_or,
)

from lifecycle_cli import DataError, RulesError, parse_rules, run

AS_OF = dt.date(2026, 11, 1)
STAGE_POOL = ["Onboarding", "Launched", "Adopting", "Renewal", "Will Churn", "Churned"]
OPS = ["=", "<>", "<", "<=", ">", ">="]
INT_ATTRS = ("a", "c")
ATTRS = ("a", "b", "c")
SETTINGS = settings(max_examples=examples(150), deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


# -- conditions: generated as small trees, rendered to SQL, evaluated with NULL logic ----------

atoms = st.one_of(
    st.tuples(st.just("cmp"), st.sampled_from(INT_ATTRS), st.sampled_from(OPS),
              st.integers(-3, 8)),
    st.just(("flag",)),
    st.tuples(st.just("null"), st.sampled_from(ATTRS), st.booleans()),
    st.tuples(st.just("days"), st.sampled_from(OPS), st.integers(-5, 40)),
    st.tuples(st.just("stage"), st.sampled_from(STAGE_POOL)),
    st.tuples(st.just("lit"), st.booleans()),
)
conditions = st.recursive(
    atoms,
    lambda inner: st.one_of(st.tuples(st.just("not"), inner),
                            st.tuples(st.sampled_from(["and", "or"]), inner, inner)),
    max_leaves=4,
)


def to_sql(node: tuple) -> str:
    kind = node[0]
    if kind == "cmp":
        return f"{node[1]} {node[2]} {node[3]}"
    if kind == "flag":
        return "b"
    if kind == "null":
        return f"{node[1]} IS {'NOT ' if node[2] else ''}NULL"
    if kind == "days":
        return f"days_in_stage {node[1]} {node[2]}"
    if kind == "stage":
        return f"stage = '{node[1]}'"
    if kind == "lit":
        return "TRUE" if node[1] else "FALSE"
    if kind == "not":
        return f"NOT ({to_sql(node[1])})"
    return f"({to_sql(node[1])}) {kind.upper()} ({to_sql(node[2])})"


def evaluate(node: tuple, values: dict[str, Any]) -> bool | None:
    kind = node[0]
    if kind == "cmp":
        return sql_compare(values[node[1]], node[2], node[3])
    if kind == "flag":
        return values["b"]
    if kind == "null":
        is_null = values[node[1]] is None
        return not is_null if node[2] else is_null
    if kind == "days":
        return sql_compare(values["days_in_stage"], node[1], node[2])
    if kind == "stage":
        return sql_compare(values["stage"], "=", node[1])
    if kind == "lit":
        return node[1]
    if kind == "not":
        return sql_not(evaluate(node[1], values))
    combine = sql_and if kind == "and" else sql_or
    return combine(evaluate(node[1], values), evaluate(node[2], values))


# -- random rule sets and customers -------------------------------------------------------------

@st.composite
def scenarios(draw: st.DrawFn) -> dict[str, Any]:
    names = draw(st.lists(st.sampled_from(STAGE_POOL), min_size=3, max_size=6, unique=True))
    terminal = {s for s in names if draw(st.integers(0, 3)) == 0}
    if terminal == set(names):
        terminal.discard(names[0])
    initial = draw(st.sampled_from([s for s in names if s not in terminal]))
    transitions = []
    for i in range(draw(st.integers(0, 8))):
        to = draw(st.sampled_from(names))
        if draw(st.integers(0, 3)) == 0:
            from_: str | list[str] = "*"
        else:
            from_ = draw(st.lists(st.sampled_from([s for s in names if s != to]),
                                  min_size=1, max_size=3, unique=True))
        transitions.append({"id": f"t{i}", "from": from_, "to": to,
                            "priority": draw(st.one_of(st.none(), st.integers(-2, 3))),
                            "condition": draw(conditions)})
    # now and then a rule whose `from` names its own `to`: the rules must be refused
    invalid = bool(transitions) and draw(st.integers(0, 24)) == 0
    if invalid:
        transitions[0]["from"] = [*names[:1], transitions[0]["to"]] if names[0] != transitions[
            0]["to"] else [transitions[0]["to"]]
    n = draw(st.integers(0, 30))
    customers = [Customer(
        id=f"c{i:02d}",
        stage=draw(st.one_of(st.none(), st.sampled_from(names))),
        entered=draw(st.one_of(st.none(), st.integers(-40, 5).map(
            lambda d: AS_OF + dt.timedelta(days=d)))),
        attributes={"a": draw(st.one_of(st.none(), st.integers(-3, 8))),
                    "b": draw(st.one_of(st.none(), st.booleans())),
                    "c": draw(st.one_of(st.none(), st.integers(-3, 8)))},
    ) for i in range(n)]
    return {"names": names, "terminal": terminal, "initial": initial,
            "max_hops": draw(st.one_of(st.none(), st.integers(0, 3))),
            "transitions": transitions, "customers": customers, "invalid": invalid,
            "single_from": draw(st.booleans())}


def rules_yaml(s: dict[str, Any]) -> str:
    doc: dict[str, Any] = {
        "version": 1,
        "stages": [{"name": n, **({"terminal": True} if n in s["terminal"] else {})}
                   for n in s["names"]],
        "initial_stage": s["initial"],
        "transitions": [],
    }
    if s["max_hops"] is not None:
        doc["max_hops"] = s["max_hops"]
    for t in s["transitions"]:
        from_ = t["from"]
        if s["single_from"] and isinstance(from_, list) and len(from_) == 1:
            from_ = from_[0]
        rule = {"id": t["id"], "from": from_, "to": t["to"], "when": to_sql(t["condition"])}
        if t["priority"] is not None:
            rule["priority"] = t["priority"]
        doc["transitions"].append(rule)
    return yaml.safe_dump(doc, sort_keys=False)


def reference_rules(s: dict[str, Any]) -> list[Rule]:
    def condition(node: tuple):
        return lambda values: evaluate(node, values)

    return [Rule(t["id"], t["from"], t["to"], condition(t["condition"]), t["priority"] or 0)
            for t in s["transitions"]]


@SETTINGS
@given(scenarios())
def test_engine_matches_reference(s: dict[str, Any]) -> None:
    check_against_reference(s, "polars")


# every SQL engine against the same reference, on fewer examples (an engine run costs more)
@pytest.mark.parametrize("engine", [p for p in params() if p.values[0] not in (
    "polars", "spark")])
@settings(max_examples=examples(40), deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                 HealthCheck.function_scoped_fixture])
@given(s=scenarios())
def test_sql_engine_matches_reference(engine: str, s: dict[str, Any]) -> None:
    check_against_reference(s, engine)


# Spark: the reduced property test, a few examples (each is a few seconds of Spark jobs)
@pytest.mark.parametrize("engine", [p for p in params(spark=True) if p.values[0] == "spark"])
@settings(max_examples=examples(6), deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                 HealthCheck.function_scoped_fixture])
@given(s=scenarios())
def test_spark_matches_reference(engine: str, s: dict[str, Any]) -> None:
    check_against_reference(s, engine)


def check_against_reference(s: dict[str, Any], engine: str) -> None:
    """The run on ``engine`` gives the reference's stages, moves, loops and pending."""
    with tempfile.TemporaryDirectory() as tmp:
        path = write_csv(Path(tmp) / "customers.csv", [
            {"customer_id": c.id, "stage": c.stage, "stage_entered_at": c.entered,
             **c.attributes} for c in s["customers"]],
            columns=["customer_id", "stage", "stage_entered_at", *ATTRS])
        if s["invalid"]:
            with pytest.raises(RulesError, match="itself"):
                parse_rules(rules_yaml(s))
            return
        rules = parse_rules(rules_yaml(s))
        if not s["customers"]:
            with pytest.raises(DataError):
                run(rules, path, [], AS_OF, engine=choice(engine))
            return
        result = run(rules, path, [], AS_OF, engine=choice(engine))

    want = decide(stage_names=s["names"], terminal=s["terminal"], initial_stage=s["initial"],
                  max_hops=s["max_hops"], rules=reference_rules(s), as_of=AS_OF,
                  customers=s["customers"])
    event(f"hops used: {max((m.hop for m in want.transitions), default=0)}")
    event(f"loops: {bool(want.loops)}, pending: {bool(want.pending)}")
    got_rows = {r["customer_id"]: r for r in result.customers.iter_rows(named=True)}
    assert {cid: r["stage"] for cid, r in got_rows.items()} == want.stages
    assert {cid: r["stage_entered_at"] for cid, r in got_rows.items()} == want.entered
    assert {cid: r["days_in_stage"] for cid, r in got_rows.items()} == want.days_in_stage
    got_moves = [(r["customer_id"], r["from_stage"], r["to_stage"], r["rule_id"], r["hop"],
                  r["days_in_from_stage"]) for r in result.transitions.iter_rows(named=True)]
    assert got_moves == [(m.customer_id, m.from_stage, m.to_stage, m.rule_id, m.hop,
                          m.days_in_from_stage) for m in want.transitions]
    assert sorted(result.day.engine.loops["customer_id"]) == sorted(want.loops)
    assert sorted(result.day.engine.pending["customer_id"]) == sorted(want.pending)


# -- CTAs on the final state ---------------------------------------------------------------------

@st.composite
def cta_scenarios(draw: st.DrawFn) -> dict[str, Any]:
    s = draw(scenarios().filter(lambda s: not s["invalid"] and s["customers"]))
    s["expected"] = {n: draw(st.one_of(st.none(), st.integers(0, 30))) for n in s["names"]}
    ctas = []
    for i in range(draw(st.integers(1, 5))):
        on = draw(st.sampled_from(["enter", "overdue", "when"]))
        stages = [n for n in s["names"] if on != "overdue" or s["expected"][n] is not None]
        if not stages:
            on, stages = "enter", s["names"]
        stage = draw(st.sampled_from(stages)) if on != "when" or draw(st.booleans()) else None
        ctas.append({"id": f"k{i}", "on": on, "stage": stage,
                     "when": draw(conditions) if on == "when" else None,
                     "close_when": draw(st.one_of(st.none(), conditions))})
    s["ctas"] = ctas
    return s


@SETTINGS
@given(cta_scenarios())
def test_ctas_match_reference(s: dict[str, Any]) -> None:
    """Which CTA each customer gets in one run: step 5 of SPEC, row by row."""
    doc = yaml.safe_load(rules_yaml(s))
    for stage in doc["stages"]:
        if s["expected"][stage["name"]] is not None:
            stage["expected_days"] = s["expected"][stage["name"]]
    doc["ctas"] = []
    for c in s["ctas"]:
        rule = {"id": c["id"], "name": c["id"], "on": c["on"]}
        rule |= {"stage": c["stage"]} if c["stage"] else {}
        rule |= {"when": to_sql(c["when"])} if c["when"] else {}
        rule |= {"close_when": to_sql(c["close_when"])} if c["close_when"] else {}
        doc["ctas"].append(rule)
    with tempfile.TemporaryDirectory() as tmp:
        path = write_csv(Path(tmp) / "customers.csv", [
            {"customer_id": c.id, "stage": c.stage, "stage_entered_at": c.entered,
             **c.attributes} for c in s["customers"]],
            columns=["customer_id", "stage", "stage_entered_at", *ATTRS])
        result = run(parse_rules(yaml.safe_dump(doc, sort_keys=False)), path, [], AS_OF)

    want = decide(stage_names=s["names"], terminal=s["terminal"], initial_stage=s["initial"],
                  max_hops=s["max_hops"], rules=reference_rules(s), as_of=AS_OF,
                  customers=s["customers"])
    moved = {m.customer_id for m in want.transitions}
    expected = []
    for c in s["customers"]:
        stage, days = want.stages[c.id], want.days_in_stage[c.id]
        values = {**c.attributes, "stage": stage, "days_in_stage": days}
        limit = s["expected"][stage]
        for rule in s["ctas"]:
            in_stage = rule["stage"] is None or rule["stage"] == stage
            if rule["on"] == "enter":
                fires = in_stage and c.id in moved
            elif rule["on"] == "overdue":
                fires = in_stage and days is not None and limit is not None and days > limit
            else:
                fires = in_stage and evaluate(rule["when"], values) is True
            if rule["close_when"] and evaluate(rule["close_when"], values) is True:
                fires = False
            if fires:
                entered = want.entered[c.id]
                expected.append(f"{rule['id']}:{c.id}:{stage}:"
                                f"{entered.isoformat() if entered else ''}")
    event(f"CTAs: {min(len(expected), 5)}")
    assert result.ctas is not None
    assert result.ctas.ctas["cta_id"].to_list() == expected


# -- metrics --------------------------------------------------------------------------------

CUSTOMER_IDS = ["c0", "c1", "c2"]
WHERE = {
    "event = 'login'": lambda v: sql_compare(v["event"], "=", "login"),
    "minutes > 5": lambda v: sql_compare(v["minutes"], ">", 5),
    "event IS NULL": lambda v: v["event"] is None,
    "NOT (user_id <> 'u1')": lambda v: sql_not(sql_compare(v["user_id"], "<>", "u1")),
    "event = 'login' OR minutes > 5": lambda v: sql_or(sql_compare(v["event"], "=", "login"),
                                                       sql_compare(v["minutes"], ">", 5)),
}
COLUMNS = {
    "count": [None], "any": [None], "sum": ["minutes"], "mean": ["minutes"],
    "min": ["minutes", "timestamp"], "max": ["minutes", "timestamp"],
    "n_unique": ["user_id", "event", "minutes"],
    "first": ["user_id", "event", "minutes", "timestamp"],
    "last": ["user_id", "event", "minutes", "timestamp"],
}


@st.composite
def usage_rows(draw: st.DrawFn) -> tuple[UsageRow, bool]:
    # days near the window edges and few times of day, so that edges and ties are common
    day = st.one_of(st.sampled_from([-30, -29, -7, -6, -1, 0, 1]), st.integers(-40, 2))
    time = st.sampled_from([dt.time(0, 0), dt.time(9, 0), dt.time(23, 59, 59)])
    timestamp = draw(st.one_of(
        st.none(),
        st.builds(lambda d, t: dt.datetime.combine(AS_OF + dt.timedelta(days=d), t), day, time)))
    values = {"event": draw(st.sampled_from(["login", "export", None])),
              "user_id": draw(st.sampled_from(["u1", "u2", "u3", None])),
              "minutes": draw(st.one_of(st.none(), st.integers(0, 20)))}
    customer = draw(st.sampled_from([*CUSTOMER_IDS, "zz"]))
    return UsageRow(customer, timestamp, values), draw(st.booleans())


def with_ties(rows: list[tuple[UsageRow, bool]], ties: list[bool]) -> list[UsageRow]:
    """The rows, some taking the customer and timestamp of the row before (timestamp ties)."""
    out: list[UsageRow] = []
    for (row, _), tie in zip(rows, ties, strict=False):
        if tie and out:
            row = UsageRow(out[-1].customer_id, out[-1].timestamp, row.values)
        out.append(row)
    if all(r.values["minutes"] is None for r in out):  # keep `minutes` a numeric column
        out[0] = UsageRow(out[0].customer_id, out[0].timestamp, {**out[0].values, "minutes": 1})
    return out


@st.composite
def metric_specs(draw: st.DrawFn) -> tuple[MetricSpec, str | None]:
    agg = draw(st.sampled_from(list(COLUMNS)))
    where = draw(st.sampled_from([None, *WHERE]))
    spec = MetricSpec(agg=agg, column=draw(st.sampled_from(COLUMNS[agg])),
                      where=WHERE[where] if where else None,
                      window_days=draw(st.one_of(st.none(), st.sampled_from([1, 7, 30]),
                                                 st.integers(1, 40))))
    return spec, where


def _cell_timestamp(row: UsageRow, date_only: bool) -> str | None:
    if row.timestamp is None:
        return None
    if date_only and row.timestamp.time() == dt.time(0, 0):
        return row.timestamp.date().isoformat()
    return row.timestamp.isoformat(sep=" ")


@SETTINGS
@given(st.lists(usage_rows(), min_size=3, max_size=40),
       st.lists(st.integers(0, 2).map(lambda n: n == 0), min_size=40, max_size=40),
       st.lists(metric_specs(), min_size=1, max_size=6))
def test_metrics_match_reference(rows: list[tuple[UsageRow, bool]], ties: list[bool],
                                 specs: list[tuple[MetricSpec, str | None]]) -> None:
    check_metrics(rows, ties, specs, "polars")


@pytest.mark.parametrize("engine", [p for p in params() if p.values[0] not in (
    "polars", "spark")])
@settings(max_examples=examples(40), deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                 HealthCheck.function_scoped_fixture])
@given(rows=st.lists(usage_rows(), min_size=3, max_size=40),
       ties=st.lists(st.integers(0, 2).map(lambda n: n == 0), min_size=40, max_size=40),
       specs=st.lists(metric_specs(), min_size=1, max_size=6))
def test_sql_engine_metrics_match_reference(
        engine: str, rows: list[tuple[UsageRow, bool]], ties: list[bool],
        specs: list[tuple[MetricSpec, str | None]]) -> None:
    check_metrics(rows, ties, specs, engine)


# Spark: the same, on a few examples (the reduced set: each is a few Spark jobs)
@pytest.mark.parametrize("engine", [p for p in params(spark=True) if p.values[0] == "spark"])
@settings(max_examples=examples(8), deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                 HealthCheck.function_scoped_fixture])
@given(rows=st.lists(usage_rows(), min_size=3, max_size=40),
       ties=st.lists(st.integers(0, 2).map(lambda n: n == 0), min_size=40, max_size=40),
       specs=st.lists(metric_specs(), min_size=1, max_size=6))
def test_spark_metrics_match_reference(
        engine: str, rows: list[tuple[UsageRow, bool]], ties: list[bool],
        specs: list[tuple[MetricSpec, str | None]]) -> None:
    check_metrics(rows, ties, specs, engine)


def check_metrics(rows: list[tuple[UsageRow, bool]], ties: list[bool],
                  specs: list[tuple[MetricSpec, str | None]], engine: str) -> None:
    """Every metric on ``engine`` equals the row-by-row reference."""
    usage = with_ties(rows, ties)
    metrics: dict[str, dict[str, Any]] = {}
    for i, (spec, where) in enumerate(specs):
        m: dict[str, Any] = {"agg": spec.agg}
        if spec.column:
            m["column"] = spec.column
        if where:
            m["where"] = where
        if spec.window_days:
            m["window_days"] = spec.window_days
        metrics[f"m{i}"] = m
    rules = parse_rules(yaml.safe_dump({
        "version": 1, "stages": [{"name": "Onboarding"}], "initial_stage": "Onboarding",
        "metrics": metrics}))
    with tempfile.TemporaryDirectory() as tmp:
        customers = write_csv(Path(tmp) / "customers.csv", [
            {"customer_id": c, "stage": "Onboarding", "stage_entered_at": AS_OF}
            for c in CUSTOMER_IDS])
        usage_path = write_csv(Path(tmp) / "usage.csv", [
            {"customer_id": r.customer_id, "timestamp": _cell_timestamp(r, date_only),
             **r.values} for r, (_, date_only) in zip(usage, rows, strict=True)],
            columns=["customer_id", "timestamp", "event", "user_id", "minutes"])
        result = run(rules, customers, [usage_path], AS_OF, engine=choice(engine))

    got = {r["customer_id"]: r for r in result.customers.iter_rows(named=True)}
    for i, (spec, where) in enumerate(specs):
        for cid in CUSTOMER_IDS:
            want = metric(spec, usage, cid, AS_OF)
            value = got[cid][f"m{i}"]
            label = f"m{i}={spec.agg}({spec.column}) where {where} window {spec.window_days}"
            if want is UNSPECIFIED:
                continue
            event(f"{spec.agg}: {'no rows' if want in (None, 0, False) else 'rows'}")
            if isinstance(want, float) or isinstance(value, float):
                assert want is not None and value is not None, (label, cid, want, value)
                assert math.isclose(want, value, rel_tol=1e-9), (label, cid, want, value)
            else:
                assert (type(value), value) == (type(want), want), (label, cid)
