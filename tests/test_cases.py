"""Data-driven cases: rules + customer and usage rows + what SPEC says must come out.

Each ``tests/cases/*.yaml`` file holds a list of cases::

    - name: what the case shows
      as_of: 2026-11-01
      rules: |              # a whole rules file
        version: 1
        ...
      customers: [{customer_id: "001", stage: Onboarding, stage_entered_at: 2026-10-01}]
      customer_columns: [...]  # optional: the CSV header, when it is not the keys in order
      usage: [...]             # optional usage rows
      xfail: "why"             # optional: a known library bug (strict xfail)
      expect:
        stages: {"001": Launched}
        transitions: [{customer_id: "001", rule_id: r1, hop: 1}]   # keys given are compared
        values: {"001": {logins_30d: 1}}
        columns: [customer_id, stage, ...]   # the customers output's header, exactly
        ctas: [{cta_id: "kickoff:001:Onboarding:2026-11-01", owner: ann}]  # keys given
        tasks: [{customer_id: "001", seq: 1, due_on: 2026-11-02}]           # are compared
        loops: ["001"]
        pending: ["001"]
        warnings_contain: ["loop"]
        no_warnings: true
        error: ["unknown stage"]  # the run (or parse) raises a LifecycleError containing these
        findings:                 # `lifecycle check`'s findings, all of them, in table order
          - {customer_id: "001", finding: overdue, detail: "..."}   # keys given are compared

Every expectation is derived by hand from SPEC.md, not from the program's output.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import write_csv
from engines import choice, params

from lifecycle_cli import LifecycleError, parse_rules, run
from lifecycle_cli.compliance.run import check

CASES_DIR = Path(__file__).parent / "cases"
CASE_KEYS = {"name", "as_of", "rules", "customers", "customer_columns", "usage", "xfail",
             "expect"}
EXPECT_KEYS = {"stages", "transitions", "values", "columns", "loops", "pending",
               "warnings_contain", "no_warnings", "error", "ctas", "tasks",
               "findings"}


def load_cases() -> list[Any]:
    params = []
    for path in sorted(CASES_DIR.glob("*.yaml")):
        cases = yaml.safe_load(path.read_text(encoding="utf-8"))
        assert isinstance(cases, list), f"{path.name}: a case file is a list of cases"
        seen: set[str] = set()
        for case in cases:
            unknown = set(case) - CASE_KEYS
            assert not unknown, f"{path.name}: {case.get('name')}: unknown keys {unknown}"
            unknown = set(case.get("expect") or {}) - EXPECT_KEYS
            assert not unknown, f"{path.name}: {case['name']}: unknown expect keys {unknown}"
            assert case["name"] not in seen, f"{path.name}: duplicate case {case['name']!r}"
            seen.add(case["name"])
            marks = []
            if case.get("xfail"):
                marks.append(pytest.mark.xfail(reason=case["xfail"], strict=True))
            params.append(pytest.param(case, id=f"{path.stem}: {case['name']}", marks=marks))
    return params


def same(expected: Any, actual: Any) -> bool:
    """Equality for expectations: floats approximately, everything else exactly (types too)."""
    if isinstance(expected, float) or isinstance(actual, float):
        if expected is None or actual is None or isinstance(expected, bool | str):
            return False
        return math.isclose(float(expected), float(actual), rel_tol=1e-9, abs_tol=1e-9)
    if isinstance(expected, bool) or isinstance(actual, bool):
        return type(expected) is type(actual) and expected == actual
    if isinstance(expected, dt.datetime) or isinstance(actual, dt.datetime):
        return type(expected) is type(actual) and expected == actual
    return type(expected) is type(actual) and expected == actual


# Spark runs a reduced set that still touches every kind of case: the first case of each
# file, each case that expects something no case before it in the set expects, and the
# cases of the meanings engines are known to disagree on (ties of first/last, distinct
# counts, windows to the last second, blank and zoned timestamps)
SPARK_ALSO = re.compile(r"first and last|n_unique|any is true|empty timestamp|zoned|last second")


def spark_subset(cases: list[Any]) -> set[str]:
    chosen: set[str] = set()
    expected: set[str] = set()
    files: set[str] = set()
    for param in cases:
        (case,) = param.values
        if case.get("xfail"):
            continue
        keys = set(case["expect"])
        if param.id.split(":")[0] not in files or keys - expected or SPARK_ALSO.search(
                case["name"]):
            chosen.add(param.id)
            expected |= keys
            files.add(param.id.split(":")[0])
    return chosen


def case_params() -> list[Any]:
    """Every case on every engine of tests/engines.py, Spark on `spark_subset`."""
    cases = load_cases()
    subset = spark_subset(cases)
    return [pytest.param(*case.values, engine.values[0], id=f"{case.id} [{engine.id}]",
                         marks=[*case.marks, *engine.marks])
            for engine in params(spark=True) for case in cases
            if engine.values[0] != "spark" or case.id in subset]


@pytest.mark.parametrize(("case", "engine"), case_params())
def test_case(case: dict[str, Any], tmp_path: Path, engine: str) -> None:
    """The case on every engine (tests/engines.py): each must give what SPEC says."""
    expect = case["expect"]
    as_of = case["as_of"]
    assert isinstance(as_of, dt.date)
    customers = write_csv(tmp_path / "customers.csv", case["customers"],
                          case.get("customer_columns"))
    usage = []
    if case.get("usage") is not None:
        usage = [write_csv(tmp_path / "usage.csv", case["usage"])]

    if "findings" in expect and engine == "polars":  # `check` runs on Polars
        findings = check(parse_rules(case["rules"]), customers, usage, as_of).findings
        same_rows("findings", findings.to_dicts(), expect["findings"])

    if "error" in expect:
        with pytest.raises(LifecycleError) as info:
            run(parse_rules(case["rules"]), customers, usage, as_of, engine=choice(engine))
        for text in expect["error"]:
            assert text in str(info.value)
        return

    rules = parse_rules(case["rules"])
    result = run(rules, customers, usage, as_of, engine=choice(engine))
    id_col = rules.customer_column("customer_id")
    stage_col = rules.customer_column("stage")
    by_id = {str(row[id_col]): row for row in result.customers.iter_rows(named=True)}

    if "stages" in expect:
        got = {cid: row[stage_col] for cid, row in by_id.items() if cid in expect["stages"]}
        assert got == {str(k): v for k, v in expect["stages"].items()}

    if "values" in expect:
        for cid, values in expect["values"].items():
            row = by_id[str(cid)]
            for column, value in values.items():
                assert column in row, f"no output column {column!r}"
                assert same(value, row[column]), (
                    f"customer {cid}, {column}: expected {value!r}, got {row[column]!r}")

    if "columns" in expect:
        assert result.customers.columns == expect["columns"]

    if "transitions" in expect:
        assert all(r["as_of"] == as_of for r in result.transitions.to_dicts())
    assert result.ctas is not None
    tables = {"transitions": result.transitions, "ctas": result.ctas.ctas,
              "tasks": result.ctas.tasks}
    for table, frame in tables.items():
        if table in expect:
            same_rows(table, frame.to_dicts(), expect[table])

    if "loops" in expect:
        assert [str(c) for c in result.day.engine.loops["customer_id"]] == [
            str(c) for c in expect["loops"]]
    if "pending" in expect:
        assert [str(c) for c in result.day.engine.pending["customer_id"]] == [
            str(c) for c in expect["pending"]]

    warnings = "\n".join(result.warnings)
    for text in expect.get("warnings_contain", []):
        assert text in warnings, f"{text!r} not in warnings: {result.warnings}"
    if expect.get("no_warnings"):
        assert result.warnings == []


def same_rows(table: str, got_rows: list[dict[str, Any]], expected: list[dict[str, Any]]) -> None:
    """The rows in order, comparing the keys each expected row gives."""
    want = [{k: (str(v) if k == "customer_id" else v) for k, v in w.items()} for w in expected]
    assert len(got_rows) == len(want), f"{table}: {got_rows}"
    for g, w in zip(got_rows, want, strict=True):
        assert all(k in g for k in w), f"{table}: unknown keys in {w}"
        assert all(same(w[k], g[k]) for k in w), f"{table}: expected {w}, got {g}"
