"""Segments (``segments:``): the engines against a row-by-row reference on random rules and
segments, `explain` and `run` agreeing on the segment, the state keeping each day's segment
(a backfill as nightly runs), `lifecycle sql`, the example rules file, and the validation
of the section with lines and did-you-mean.

Hand-computed cases (file order, catch-all, expected days, replaced and added rules and
CTAs, check's findings) are in tests/cases/segments.yaml, on every engine.
"""

from __future__ import annotations

import datetime as dt
import json
import shlex
import tempfile
from pathlib import Path
from typing import Any

import polars as pl
import pytest
import yaml
from cli_util import ROOT, lifecycle
from conftest import examples, write_csv
from engines import choice, params
from golden_util import assert_golden
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from reference import Rule, decide, sql_and, sql_compare, sql_not, sql_or
from test_docs import sessions_and_files
from test_property import ATTRS, conditions, evaluate, scenarios, to_sql

from lifecycle_cli import RulesError, StateView, backfill, explain, parse_rules, run

AS_OF = dt.date(2026, 11, 1)
SEGMENTS_RULES = ROOT / "rules" / "examples" / "segments.yaml"
SAMPLE = ROOT / "sample_data"

# -- the engines against the reference --------------------------------------------------------

# a segment's `when` reads the export (here a, b, c), not the stage or days in it
segment_atoms = st.one_of(
    st.tuples(st.just("cmp"), st.sampled_from(("a", "c")),
              st.sampled_from(["=", "<>", "<", ">="]), st.integers(-3, 8)),
    st.just(("flag",)),
    st.tuples(st.just("null"), st.sampled_from(ATTRS), st.booleans()),
)
segment_conditions = st.recursive(
    segment_atoms,
    lambda inner: st.one_of(st.tuples(st.just("not"), inner),
                            st.tuples(st.sampled_from(["and", "or"]), inner, inner)),
    max_leaves=3)


@st.composite
def segment_scenarios(draw: st.DrawFn) -> dict[str, Any]:
    """A random scenario of test_property's, with 1-3 segments: each with its own rules,
    some new, some replacing a rule of the file's (the same id); maybe a catch-all."""
    s = draw(scenarios().filter(lambda s: not s["invalid"] and s["customers"]))
    names, base_ids = s["names"], [t["id"] for t in s["transitions"]]
    segments = []
    for k in range(draw(st.integers(1, 3))):
        own: list[dict[str, Any]] = []
        for j in range(draw(st.integers(0, 3))):
            replace = bool(base_ids) and draw(st.booleans())
            rule_id = draw(st.sampled_from(base_ids)) if replace else f"s{k}_{j}"
            if any(o["id"] == rule_id for o in own):
                continue
            to = draw(st.sampled_from(names))
            from_: str | list[str] = "*" if draw(st.integers(0, 3)) == 0 else draw(
                st.lists(st.sampled_from([n for n in names if n != to]), min_size=1,
                         max_size=3, unique=True))
            own.append({"id": rule_id, "from": from_, "to": to,
                        "priority": draw(st.one_of(st.none(), st.integers(-2, 3))),
                        "condition": draw(conditions)})
        segments.append({"name": f"S{k}", "condition": draw(segment_conditions),
                         "transitions": own})
    if draw(st.booleans()):
        segments[-1]["condition"] = None  # the catch-all
    s["segments"] = segments
    return s


def _rule(t: dict[str, Any]) -> dict[str, Any]:
    rule = {"id": t["id"], "from": t["from"], "to": t["to"], "when": to_sql(t["condition"])}
    if t["priority"] is not None:
        rule["priority"] = t["priority"]
    return rule


def segment_rules_yaml(s: dict[str, Any]) -> str:
    doc: dict[str, Any] = {
        "version": 1,
        "stages": [{"name": n, **({"terminal": True} if n in s["terminal"] else {})}
                   for n in s["names"]],
        "initial_stage": s["initial"],
        "transitions": [_rule(t) for t in s["transitions"]],
        "segments": [{"name": g["name"],
                      **({"when": to_sql(g["condition"])} if g["condition"] else {}),
                      "transitions": [_rule(t) for t in g["transitions"]]}
                     for g in s["segments"]],
    }
    if s["max_hops"] is not None:
        doc["max_hops"] = s["max_hops"]
    return yaml.safe_dump(doc, sort_keys=False)


def reference_segments(s: dict[str, Any]) -> tuple[list[Rule], list[Any], str]:
    """The reference's rules in file order (the file's, then each segment's), each with the
    segments it applies to; the segments' conditions; the segment of the rest."""
    def condition(node: tuple):
        return lambda values: evaluate(node, values)

    names = [g["name"] for g in s["segments"]]
    default = names[-1] if s["segments"][-1]["condition"] is None else "default"
    every = names if default != "default" else [*names, "default"]
    rules = []
    for t in s["transitions"]:
        replacers = [g["name"] for g in s["segments"]
                     if any(o["id"] == t["id"] for o in g["transitions"])]
        only = [n for n in every if n not in replacers] if replacers else None
        rules.append(Rule(t["id"], t["from"], t["to"], condition(t["condition"]),
                          t["priority"] or 0, only))
    for g in s["segments"]:
        rules += [Rule(t["id"], t["from"], t["to"], condition(t["condition"]),
                       t["priority"] or 0, [g["name"]]) for t in g["transitions"]]
    chosen = [(g["name"], None if g["condition"] is None else condition(g["condition"]))
              for g in s["segments"]]
    return rules, chosen, default


def check_segments_against_reference(s: dict[str, Any], engine: str) -> None:
    rules = parse_rules(segment_rules_yaml(s))
    with tempfile.TemporaryDirectory() as tmp:
        path = write_csv(Path(tmp) / "customers.csv", [
            {"customer_id": c.id, "stage": c.stage, "stage_entered_at": c.entered,
             **c.attributes} for c in s["customers"]],
            columns=["customer_id", "stage", "stage_entered_at", *ATTRS])
        result = run(rules, path, [], AS_OF, engine=choice(engine))
    reference_rules, segments, default = reference_segments(s)
    want = decide(stage_names=s["names"], terminal=s["terminal"], initial_stage=s["initial"],
                  max_hops=s["max_hops"], rules=reference_rules, as_of=AS_OF,
                  customers=s["customers"], segments=segments, default_segment=default)
    got = {r["customer_id"]: r for r in result.customers.iter_rows(named=True)}
    assert {cid: r["segment"] for cid, r in got.items()} == want.segments
    assert {cid: r["stage"] for cid, r in got.items()} == want.stages
    got_moves = [(r["customer_id"], r["from_stage"], r["to_stage"], r["rule_id"], r["hop"])
                 for r in result.transitions.iter_rows(named=True)]
    assert got_moves == [(m.customer_id, m.from_stage, m.to_stage, m.rule_id, m.hop)
                         for m in want.transitions]
    assert sorted(result.day.engine.loops["customer_id"]) == sorted(want.loops)
    assert sorted(result.day.engine.pending["customer_id"]) == sorted(want.pending)


@settings(max_examples=examples(120), deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(segment_scenarios())
def test_segments_match_the_reference(s: dict[str, Any]) -> None:
    check_segments_against_reference(s, "polars")


@pytest.mark.parametrize("engine", [p for p in params() if p.values[0] not in (
    "polars", "spark")])
@settings(max_examples=examples(30), deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                 HealthCheck.function_scoped_fixture])
@given(s=segment_scenarios())
def test_segments_on_sql_engines_match_the_reference(engine: str, s: dict[str, Any]) -> None:
    check_segments_against_reference(s, engine)


def test_the_reference_logic_helpers_are_sql_logic() -> None:
    # the reference's segment choice relies on these: NULL is never a match
    assert sql_and(True, None) is None and sql_or(False, None) is None
    assert sql_not(None) is None and sql_compare(None, "=", 1) is None


# -- explain and run agree ---------------------------------------------------------------------

@settings(max_examples=examples(15), deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(segment_scenarios())
def test_explain_names_the_segment_run_gives_and_the_condition_that_took_it(
        s: dict[str, Any]) -> None:
    rules = parse_rules(segment_rules_yaml(s))
    with tempfile.TemporaryDirectory() as tmp:
        path = write_csv(Path(tmp) / "customers.csv", [
            {"customer_id": c.id, "stage": c.stage, "stage_entered_at": c.entered,
             **c.attributes} for c in s["customers"]],
            columns=["customer_id", "stage", "stage_entered_at", *ATTRS])
        result = run(rules, path, [], AS_OF)
        ids = [c.id for c in s["customers"]][:5]
        explained = explain(rules, path, [], ids, AS_OF)
    got = {r["customer_id"]: r for r in result.customers.iter_rows(named=True)}
    by_name = {g["name"]: g for g in s["segments"]}
    for e in explained:
        row = got[e.customer_id]
        assert e.segment is not None and e.segment.name == row["segment"]
        assert e.stage == row["stage"]
        last = e.segment.tried[-1]
        assert last.segment == row["segment"] and last.held is True
        # the segments tried before it did not hold, in file order
        assert all(t.held is not True for t in e.segment.tried[:-1])
        assert [t.segment for t in e.segment.tried[:-1]] == [
            g["name"] for g in s["segments"]][:len(e.segment.tried) - 1]
        if last.when is not None:
            assert last.when == to_sql(by_name[last.segment]["condition"])


# -- the example rules file, run, explain, summary ---------------------------------------------

def test_the_example_rules_file_is_the_default_rules_plus_segments() -> None:
    default = parse_rules((ROOT / "rules" / "default.yaml").read_text())
    segmented = parse_rules(SEGMENTS_RULES.read_text())
    assert [s.name for s in segmented.segments] == ["Enterprise", "SMB", "Mid-Market"]
    plain = segmented.model_copy(update={"segments": [], "name": default.name})
    assert plain.model_dump() == default.model_dump()


def test_run_on_the_sample_writes_the_segment_and_a_table_per_segment(tmp_path: Path) -> None:
    result = lifecycle("run", "--customers", SAMPLE / "customers.csv", "--usage",
                       SAMPLE / "usage.csv", "--rules", SEGMENTS_RULES, "--as-of", "2026-11-01",
                       "--out", tmp_path / "out", "--summary-json", tmp_path / "summary.json")
    assert result.returncode == 0, result.stderr
    assert "Customers by segment" in result.stderr
    customers = pl.read_csv(tmp_path / "out" / "customers.csv", infer_schema=False)
    columns = customers.columns
    # after the computed columns, before the derived values; the export's own replaced
    assert columns[columns.index("overdue") + 1] == "segment"
    assert columns.count("segment") == 1
    exported = pl.read_csv(SAMPLE / "customers.csv", infer_schema=False)
    joined = customers.join(exported.select("customer_id", pl.col("segment").alias("crm")),
                            on="customer_id")
    assert joined.filter(pl.col("segment") != pl.col("crm")).height == 0  # named as the CRM
    summary = json.loads((tmp_path / "summary.json").read_text())
    counts = {name: sum(stages.values()) for name, stages in summary["segments"].items()}
    assert counts == dict(customers.group_by("segment").len().iter_rows())
    assert list(summary["segments"]) == ["Enterprise", "SMB", "Mid-Market"]
    # Enterprise's own onboarding expected days, and its own CTA
    enterprise = customers.filter((pl.col("segment") == "Enterprise")
                                  & (pl.col("stage") == "Onboarding"))
    assert enterprise.height and set(enterprise["expected_days"]) == {"90"}
    ctas = pl.read_csv(tmp_path / "out" / "ctas.csv", infer_schema=False)
    sponsor = ctas.filter(pl.col("rule_id") == "exec_sponsor")["customer_id"]
    assert sponsor.len() and set(sponsor) <= set(enterprise["customer_id"])


def test_explain_says_which_segment_and_why(tmp_path: Path) -> None:
    result = lifecycle("explain", "--customers", SAMPLE / "customers.csv", "--usage",
                       SAMPLE / "usage.csv", "--rules", SEGMENTS_RULES, "--as-of",
                       "2026-11-01", "C0000004", "C0000030")
    assert result.returncode == 0, result.stderr
    assert_golden(result.stdout, "explain_segments.txt")


# -- the state keeps the segment ----------------------------------------------------------------

RULES_TEXT = """\
version: 1
stages: [{name: Active}, {name: Moved}]
initial_stage: Active
metrics:
  logins: {agg: count, window_days: 7}
transitions:
  - {id: changed, from: Active, to: Moved, when: "segment <> previous(segment)"}
segments:
  - {name: Busy, when: "logins >= 2"}
  - {name: Quiet}
"""


def _exports(folder: Path) -> tuple[Path, Path]:
    """001 logs in on 10-02 and 10-03, 002 on 10-02, 10-03 and 10-09: with 7-day windows
    both are Busy on 10-08; on 10-09 001 is Quiet (one login left in its window)."""
    folder.mkdir(parents=True, exist_ok=True)
    customers = write_csv(folder / "customers.csv", [
        {"customer_id": "001", "stage": None}, {"customer_id": "002", "stage": None}])
    days = {"001": ["02", "03"], "002": ["02", "03", "09"]}
    rows = [{"customer_id": c, "timestamp": f"2026-10-{d} 10:00:00"}
            for c, ds in days.items() for d in ds]
    usage = write_csv(folder / "usage.csv", rows, ["customer_id", "timestamp"])
    return customers, usage


def test_the_state_keeps_each_days_segment_and_previous_reads_it(tmp_path: Path) -> None:
    rules = parse_rules(RULES_TEXT)
    customers, usage = _exports(tmp_path)
    results = [run(rules, customers, [usage], dt.date.fromisoformat(day),
                   state=tmp_path / "state") for day in ("2026-10-08", "2026-10-09")]
    view = StateView.open(tmp_path / "state")
    for day, want in (("2026-10-08", {"001": "Busy", "002": "Busy"}),
                      ("2026-10-09", {"001": "Quiet", "002": "Busy"})):
        values = view.table("values", dt.date.fromisoformat(day))
        assert values is not None
        assert dict(values.select("customer_id", "segment").iter_rows()) == want
    # previous(segment) is NULL on the first night: nobody moves; then 001 changed
    assert results[0].transitions.filter(pl.col("rule_id") == "changed").height == 0
    moved = results[1].transitions.filter(pl.col("rule_id") == "changed")
    assert moved["customer_id"].to_list() == ["001"]
    assert moved["reason"].to_list() == ["segment=Quiet; previous(segment)=Busy"]


def test_a_backfill_keeps_the_segments_as_nightly_runs_do(tmp_path: Path) -> None:
    rules = parse_rules(RULES_TEXT)
    customers, usage = _exports(tmp_path)
    days = [dt.date(2026, 10, 7) + dt.timedelta(days=i) for i in range(4)]
    for day in days:
        run(rules, customers, [usage], day, state=tmp_path / "nightly")
    backfill(rules, None, customers, [usage], days[0], days[-1], tmp_path / "backfill")
    nightly, filled = StateView.open(tmp_path / "nightly"), StateView.open(tmp_path / "backfill")
    for day in days:
        for table in ("values", "stages"):
            a, b = nightly.table(table, day), filled.table(table, day)
            assert a is not None and b is not None
            assert a.equals(b), (table, day)
    assert nightly.moves().equals(filled.moves())
    # 001 turns Quiet on 10-09, 002 on 10-10 (its last login leaves the window)
    changed = nightly.moves().filter(pl.col("rule_id") == "changed")
    assert sorted(changed.select("customer_id", "as_of").iter_rows()) == [
        ("001", dt.date(2026, 10, 9)), ("002", dt.date(2026, 10, 10))]


# -- lifecycle sql ------------------------------------------------------------------------------

def test_lifecycle_sql_chooses_the_segments_as_run_does(tmp_path: Path) -> None:
    duckdb = pytest.importorskip("duckdb")
    rules = parse_rules(SEGMENTS_RULES.read_text())
    from lifecycle_cli.day.load import load

    loaded = load(rules, SAMPLE / "customers.csv", [SAMPLE / "usage.csv"])
    typed = loaded.customers.typed.drop("__row")
    con = duckdb.connect()
    con.register("c", typed.to_arrow())
    con.register("u", loaded.sources["usage"].rows.collect().to_arrow())
    con.execute("CREATE TABLE customers AS SELECT * FROM c")
    con.execute("CREATE TABLE usage AS SELECT * FROM u")
    result = lifecycle("sql", "--customers", SAMPLE / "customers.csv", "--usage",
                       SAMPLE / "usage.csv", "--customers-table", "customers", "--usage-table",
                       "usage", "--as-of", "2026-11-01", "--rules", SEGMENTS_RULES,
                       "--dialect", "duckdb")
    assert result.returncode == 0, result.stderr
    con.execute(result.stdout)
    got = pl.from_arrow(con.sql("SELECT customer_id, stage, segment, expected_days "
                                "FROM lifecycle_customers").to_arrow_table())
    want = run(rules, SAMPLE / "customers.csv", [SAMPLE / "usage.csv"], dt.date(2026, 11, 1))
    expected = want.customers.select("customer_id", "stage", "segment", "expected_days")
    assert isinstance(got, pl.DataFrame)
    assert got.sort("customer_id").cast(dict(expected.schema)).equals(
        expected.sort("customer_id"))


# -- validation ---------------------------------------------------------------------------------

BASE = """\
version: 1
stages: [{name: Onboarding, expected_days: 30}, {name: Live}]
initial_stage: Onboarding
playbooks:
  kickoff: [{task: Call}]
segments:
"""


@pytest.mark.parametrize(("segment", "expected"), [
    ('  - {name: Big, when: "seats > 10", expected_day: {Onboarding: 60}}',
     ["rules.yaml:7", "unknown key 'expected_day'", "did you mean 'expected_days'"]),
    ('  - {name: Big, when: "seats > 10", expected_days: {Onboarding: -1}}',
     ["rules.yaml:7", "expected_days of 'Onboarding' is -1"]),
    ('  - {name: Big, transitions: [{id: x, from: Onboarding, too: Live, when: "true"}]}',
     ["rules.yaml:7", "unknown key 'too'", "did you mean 'to'"]),
    ('  - {name: Big, ctas: [{id: k, name: K, on: entr, stage: Onboarding}]}',
     ["rules.yaml:7", "'entr' is not allowed here", "did you mean 'enter'"]),
    ('  - {name: Big, ctas: [{id: k, name: K, on: enter, stage: Onboarding, '
     'when: "true"}]}',
     ["rules.yaml:7", "`when` only applies to `on: when` CTAs (this one is `on: enter`)"]),
    ('  - {name: Big, ctas: [{id: k, name: K, on: enter, stage: Onbording, '
     'playbook: kickof}]}',
     ["unknown stage 'Onbording'", "did you mean 'Onboarding'", "unknown playbook 'kickof'",
      "did you mean 'kickoff'"]),
    ('  - {name: Big, when: "previous(seats) > 10"}',
     ["previous(seats) is not allowed in a segment's `when`"]),
    ('  - {name: Big, when: "stage = \'Live\'"}',
     ["'stage' is computed after a customer's segment is chosen"]),
    ('  - {name: default, when: "seats > 10"}',
     ["'default' names the customers no segment takes"]),
    ('  - {name: Big, when: "seats > 10", transitions: [{id: x, from: Onboarding, to: Live, '
     'when: "true"}, {id: x, from: Live, to: Onboarding, when: "true"}]}',
     ["rules.yaml:7", "duplicate transition id 'x' in the segment 'Big' (also transitions[0])"]),
])
def test_every_mistake_names_its_line_and_the_likely_fix(segment: str, expected: list[str]
                                                         ) -> None:
    with pytest.raises(RulesError) as caught:
        parse_rules(BASE + segment + "\n", file="rules.yaml")
    text = str(caught.value)
    for part in expected:
        assert part in text, text


def test_a_transition_reading_a_misspelt_segment_is_warned_with_the_closest() -> None:
    rules = parse_rules(BASE + """\
  - {name: Enterprise, when: "seats > 10"}
transitions:
  - {id: go, from: Onboarding, to: Live, when: "segment = 'Enterprize'"}
""", file="rules.yaml")
    text = "\n".join(w.render() for w in rules.warnings)
    assert "'Enterprize' is compared with `segment`" in text
    assert "did you mean 'Enterprise'" in text


def test_an_unknown_column_in_a_segments_when_is_named_with_the_closest(tmp_path: Path
                                                                       ) -> None:
    rules_path = tmp_path / "rules.yaml"
    rules_path.write_text(BASE + '  - {name: Big, when: "seat > 10"}\n')
    customers = write_csv(tmp_path / "customers.csv", [{"customer_id": "1", "seats": 3}])
    result = lifecycle("validate", "--rules", rules_path, "--customers", customers)
    assert result.returncode == 1  # bad rules (SPEC, exit codes)
    assert "rules.yaml:7, segments[0].when, rule 'Big'" in result.stderr
    assert "'seat'" in result.stderr and "seats" in result.stderr


# -- docs/segments.md: the worked example prints what the tool prints ----------------------------

def test_the_segments_pages_sessions_print_what_the_tool_prints(tmp_path: Path) -> None:
    sessions, files = sessions_and_files((ROOT / "docs" / "segments.md").read_text())
    assert len(sessions) == 2 and "broken_segments.yaml" in files
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    for folder in ("sample_data", "rules"):
        (tmp_path / folder).symlink_to(ROOT / folder)
    for session in sessions:
        for command, expected in session:
            result = lifecycle(*shlex.split(command)[1:], cwd=tmp_path)
            assert result.returncode == (1 if "broken" in command else 0), result.stderr
            assert (result.stdout + result.stderr).splitlines() == expected, command


def test_the_pages_example_is_the_example_rules_files_section() -> None:
    page = (ROOT / "docs" / "segments.md").read_text()
    text = SEGMENTS_RULES.read_text()
    assert text[text.index("segments:\n"):].rstrip("\n") in page


# -- reports, check and the worklist by segment --------------------------------------------------

def _state_on_the_sample(tmp_path: Path) -> tuple[Path, Path]:
    out, state = tmp_path / "out", tmp_path / "state"
    result = lifecycle("run", "--customers", SAMPLE / "customers.csv", "--usage",
                       SAMPLE / "usage.csv", "--rules", SEGMENTS_RULES, "--as-of", "2026-11-01",
                       "--out", out, "--state", state)
    assert result.returncode == 0, result.stderr
    return out, state


def test_a_report_by_segment_uses_each_segments_expected_days_and_the_rules_order(
        tmp_path: Path) -> None:
    out, state = _state_on_the_sample(tmp_path)
    result = lifecycle("report", "--state", state, "--rules", SEGMENTS_RULES, "--customers",
                       SAMPLE / "customers.csv", "--by", "segment", "--csv", tmp_path / "rep",
                       "--quiet")
    assert result.returncode == 0, result.stderr
    times = pl.read_csv(tmp_path / "rep" / "time_in_stage.csv")
    expected = {(g, s): d for g, s, d in times.select("segment", "stage", "expected_days")
                .iter_rows()}
    rules = parse_rules(SEGMENTS_RULES.read_text())
    for segment in rules.segment_names:
        for stage, days in rules.expected_days_in(segment).items():
            assert expected[(segment, stage)] == days, (segment, stage)
    assert expected[("Enterprise", "Onboarding")] == 90 and expected[("SMB", "Onboarding")] == 30
    assert list(dict.fromkeys(times["segment"])) == ["Enterprise", "SMB", "Mid-Market"]
    # the report's overdue customers are those the run marked overdue, segment by segment
    run_out = pl.read_csv(out / "customers.csv", infer_schema=False)
    want = dict(run_out.filter(pl.col("overdue") == "true").group_by("segment").len()
                .iter_rows())
    dist = pl.read_csv(tmp_path / "rep" / "distribution.csv")
    got = {g: n for g, n in dist.group_by("segment").agg(pl.col("overdue").sum()).iter_rows()
           if n}
    assert got == want


def test_a_report_without_by_counts_overdue_with_the_segments_expected_days(tmp_path: Path
                                                                            ) -> None:
    out, state = _state_on_the_sample(tmp_path)
    result = lifecycle("report", "--state", state, "--rules", SEGMENTS_RULES, "--csv",
                       tmp_path / "rep", "--quiet")
    assert result.returncode == 0, result.stderr
    run_out = pl.read_csv(out / "customers.csv", infer_schema=False)
    dist = pl.read_csv(tmp_path / "rep" / "distribution.csv")
    assert dist["overdue"].sum() == run_out.filter(pl.col("overdue") == "true").height


def test_check_splits_in_the_rules_order_and_the_worklist_groups_by_segment(tmp_path: Path) -> None:
    _, state = _state_on_the_sample(tmp_path)
    result = lifecycle("check", "--state", state, "--customers", SAMPLE / "customers.csv",
                       "--rules", SEGMENTS_RULES, "--as-of", "2026-11-01", "--fail-on", "none",
                       "--by", "segment", "--stdout")
    assert result.returncode == 0, result.stderr
    findings = pl.read_csv(result.stdout.encode())
    assert findings.columns[0] == "segment"
    assert set(findings["segment"]) == {"Enterprise", "SMB", "Mid-Market"}
    table = lifecycle("check", "--state", state, "--customers", SAMPLE / "customers.csv",
                      "--rules", SEGMENTS_RULES, "--as-of", "2026-11-01", "--fail-on", "none",
                      "--by", "segment")
    header = next(line for line in (table.stdout + table.stderr).splitlines()
                  if line.lstrip().startswith("finding") and "Enterprise" in line)
    assert [c.strip() for c in header.split("┃")][1:4] == ["Enterprise", "SMB", "Mid-Market"]
    worklist = lifecycle("ctas", "--state", state, "--by", "segment", "--stdout")
    assert worklist.returncode == 0, worklist.stderr
    rows = pl.read_csv(worklist.stdout.encode())
    sponsor = rows.filter(pl.col("cta_id").str.starts_with("exec_sponsor:"))
    assert sponsor.height and set(sponsor["segment"]) == {"Enterprise"}
