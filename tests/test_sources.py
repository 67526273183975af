"""Named usage sources, each with its own column mapping, and lookups joined on the stream."""

from __future__ import annotations

import datetime as dt
import json
import random
from pathlib import Path

import polars as pl
import pytest
from cli_util import lifecycle
from conftest import examples, write_csv
from engines import engine_args, params
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from lifecycle_cli import DataError, RulesError, load, parse_rules, run
from lifecycle_cli.day.load import Tables, named_paths
from lifecycle_cli.errors import OptionError
from lifecycle_cli.metrics.compute import compute_metrics
from lifecycle_cli.metrics.replay import SourcesReplay
from lifecycle_cli.state.view import StateView

AS_OF = dt.date(2024, 6, 30)

# the issue's own example, as the contract
ISSUE_RULES = """\
version: 1
stages: [{name: New}, {name: Active}, {name: Busy}]
initial_stage: New
columns:
  customers: {customer_id: account_id}
sources:
  feature_usage:
    columns: {timestamp: usage_date}
    customer_id: {via: subscriptions}    # rows carry subscription_id; the lookup maps it
  tickets:
    columns: {customer_id: account_id, timestamp: submitted_at}
lookups:
  subscriptions: {key: subscription_id, customer_id: account_id}
metrics:
  uses_30d:     {source: feature_usage, agg: count, window_days: 30}
  open_tickets: {source: tickets, agg: count, where: "closed_at IS NULL"}
transitions:
  - {id: active, from: New, to: Active, when: "uses_30d >= 2"}
  - {id: busy, from: Active, to: Busy, when: "open_tickets >= 2"}
"""


def exports(folder: Path) -> dict[str, Path]:
    """Accounts, subscriptions (a lookup), feature usage through it, tickets by account."""
    folder.mkdir(exist_ok=True)
    accounts = write_csv(folder / "accounts.csv", [
        {"account_id": a, "name": n} for a, n in (("A1", "Acme"), ("A2", "Globex"),
                                                  ("A3", "Initech"))])
    subscriptions = write_csv(folder / "subscriptions.csv", [
        {"subscription_id": s, "account_id": a, "plan": p}
        for s, a, p in (("S1", "A1", "Pro"), ("S2", "A1", "Basic"), ("S3", "A2", "Pro"),
                        ("S4", "A9", "Pro"))])
    usage = write_csv(folder / "feature_usage.csv", [
        {"usage_id": f"U{i}", "subscription_id": s, "usage_date": d}
        for i, (s, d) in enumerate((("S1", "2024-06-20"), ("S2", "2024-06-25"),
                                    ("S3", "2024-06-29"), ("S3", "2024-04-01"),
                                    ("S7", "2024-06-28"), ("S4", "2024-06-28"),
                                    ("S1", "2024-07-02")))])
    tickets = write_csv(folder / "tickets.csv", [
        {"ticket_id": f"T{i}", "account_id": a, "submitted_at": s, "closed_at": c}
        for i, (a, s, c) in enumerate((("A2", "2024-06-01", None), ("A2", "2024-06-10", None),
                                       ("A3", "2024-06-11", "2024-06-12 3:00"),
                                       ("A1", "2024-06-12", None)))])
    return {"accounts": accounts, "subscriptions": subscriptions, "feature_usage": usage,
            "tickets": tickets}


def cli_inputs(files: dict[str, Path]) -> list[str | Path]:
    return ["--customers", files["accounts"],
            "--usage", f"feature_usage={files['feature_usage']}",
            "--usage", f"tickets={files['tickets']}",
            "--lookup", f"subscriptions={files['subscriptions']}"]


def ok(proc):  # type: ignore[no-untyped-def]
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    return proc


# -- the rules --------------------------------------------------------------------------------


def test_the_issue_syntax_is_the_rules_model() -> None:
    rules = parse_rules(ISSUE_RULES)
    assert list(rules.usage_sources) == ["usage", "feature_usage", "tickets"]
    assert rules.usage_source("feature_usage").customer_id.via == "subscriptions"
    assert rules.source_column("tickets", "timestamp") == "submitted_at"
    assert rules.source_column("feature_usage", "customer_id") == "customer_id"
    assert rules.metric_source("uses_30d") == "feature_usage"
    assert list(rules.metrics_of("tickets")) == ["open_tickets"]
    assert rules.lookups["subscriptions"].key == "subscription_id"


def test_a_metric_without_source_reads_the_source_usage() -> None:
    rules = parse_rules("version: 1\nstages: [{name: A}]\ninitial_stage: A\n"
                        "columns: {usage: {timestamp: t}}\nmetrics: {n: {agg: count}}\n")
    assert rules.metric_source("n") == "usage"
    assert rules.source_column("usage", "timestamp") == "t"  # columns: usage is its mapping


def test_rules_problems_in_sources_lookups_and_attributes_are_reported_together() -> None:
    text = """\
version: 1
stages: [{name: A}]
initial_stage: A
columns: {usage: {timestamp: t}}
sources:
  usage: {columns: {timestamp: t}}
  feature_usage:
    columns: {timestamp: usage_date, customer_id: x}
    customer_id: {via: subscription}
  "bad name": {sheeet: x}
lookups:
  subscriptions: {key: subscription_id, customer_id: subscription_id}
attributes:
  owners: {columns: {stage: s}}
  other: {wins: {csm: attribute}}
metrics:
  uses_30d: {source: feature_usag, agg: count, window_days: 30}
"""
    with pytest.raises(RulesError) as info:
        parse_rules(text, file="r.yaml")
    found = {(p.line, p.message.split(":")[0]) for p in info.value.problems}
    rendered = str(info.value)
    assert (6, "the source `usage` is mapped twice") in found
    assert "r.yaml:8, sources.feature_usage.columns.customer_id" in rendered
    assert "r.yaml:9, sources.feature_usage.customer_id.via" in rendered
    assert "unknown lookup 'subscription' (did you mean 'subscriptions'?)" in rendered
    assert "unknown key 'sheeet' (did you mean 'sheet'?)" in rendered
    assert "'bad name' cannot name a table" in rendered
    assert "r.yaml:12, lookups.subscriptions.key" in rendered
    assert "'attribute' is not a side" in rendered and "did you mean 'attributes'?" in rendered
    assert "'stage' comes from the customers export, not from an attribute table" in rendered
    assert "unknown source 'feature_usag' (did you mean 'feature_usage'?)" in rendered
    assert "r.yaml:17, metrics.uses_30d.source" in rendered


def test_names_on_the_command_line() -> None:
    specs = named_paths(["usage.csv", "tickets=t.csv", "tickets=t2.csv", Path("a=b.csv")],
                        "usage", "--usage")
    # a Path is a path; a string NAME=PATH names its source
    assert specs == {"usage": ["usage.csv", Path("a=b.csv")], "tickets": ["t.csv", "t2.csv"]}
    with pytest.raises(OptionError, match="--lookup takes NAME=PATH"):
        named_paths(["subscriptions.csv"], None, "--lookup")


def test_an_existing_file_with_an_equals_sign_is_a_plain_path(tmp_path: Path) -> None:
    odd = tmp_path / "a=b.csv"
    odd.write_text("x")
    assert named_paths([str(odd)], "usage", "--usage") == {"usage": [str(odd)]}


# -- metrics over sources ---------------------------------------------------------------------


def test_each_source_its_own_mapping_and_the_lookup_on_the_stream(tmp_path: Path) -> None:
    files = exports(tmp_path)
    rules = parse_rules(ISSUE_RULES)
    loaded = load(rules, files["accounts"],
                  {"feature_usage": [files["feature_usage"]], "tickets": [files["tickets"]]},
                  tables=Tables(lookups={"subscriptions": files["subscriptions"]}))
    result = compute_metrics(rules, loaded.sources, loaded.typed.select("customer_id"), AS_OF)
    values = dict(result.values.select("customer_id", "uses_30d").iter_rows())
    # A1: S1 and S2 in the window (S1 on 07-02 is after the as-of date); A2: S3 once in
    # the window; A3 has no subscription
    assert values == {"A1": 2, "A2": 1, "A3": 0}
    assert dict(result.values.select("customer_id", "open_tickets").iter_rows()) == {
        "A1": 1, "A2": 2, "A3": 0}
    counts = result.by_source["feature_usage"]
    # S7 is not in the lookup; S4 maps to A9, who is not a customer
    assert counts == {"rows": 6, "unknown_customer": 1, "unmatched_key": 1,
                      "without_timestamp": 0, "after_as_of": 1}
    assert result.by_source["tickets"]["rows"] == 4
    assert result.usage_rows == 10 and result.unmatched_key_rows == 1


@st.composite
def lookup_usage(draw):  # type: ignore[no-untyped-def]
    """A lookup (some keys map to no customer we know) and usage rows by key (some keys
    the lookup lacks, some blank), with many ties in time."""
    keys = [f"K{i}" for i in range(draw(st.integers(1, 8)))]
    owner = {k: draw(st.sampled_from(["c1", "c2", "c3", "c9"])) for k in keys}
    n = draw(st.integers(1, 60))
    rows = [{"key": draw(st.sampled_from([*keys, "K404", None])),
             "t": dt.datetime(2024, 6, 1) + dt.timedelta(days=draw(st.integers(0, 40))),
             "event": draw(st.sampled_from(["a", "b"])),
             "n": draw(st.integers(0, 9))} for _ in range(n)]
    return owner, rows


LOOKUP_METRICS = """\
  rows: {source: s, agg: count}
  a_7d: {source: s, agg: count, where: "event = 'a'", window_days: 7}
  total: {source: s, agg: sum, column: n}
  events: {source: s, agg: n_unique, column: event, window_days: 14}
  first_event: {source: s, agg: first, column: event}
  last_n: {source: s, agg: last, column: n, where: "event = 'b'"}
  seen: {source: s, agg: max, column: timestamp}
  keys: {source: s, agg: n_unique, column: key}
"""


@settings(max_examples=examples(40), deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=lookup_usage(), batch_rows=st.sampled_from([1, 3, 1_000]))
def test_a_source_through_a_lookup_equals_the_rows_joined_by_hand(
        tmp_path_factory: pytest.TempPathFactory, case, batch_rows: int) -> None:  # type: ignore[no-untyped-def]
    owner, rows = case
    folder = tmp_path_factory.mktemp("lookup")
    customers = write_csv(folder / "customers.csv", [{"customer_id": c} for c in
                                                     ("c1", "c2", "c3")])
    lookup = write_csv(folder / "lookup.csv", [{"key": k, "cid": c} for k, c in owner.items()])
    columns = ["key", "t", "event", "n"]
    usage = write_csv(folder / "usage.csv", rows, columns)
    # the same rows with their customer written in, as a hand-made script would
    joined = write_csv(folder / "joined.csv", [
        {**r, "customer_id": owner.get(r["key"]) if r["key"] else None} for r in rows],
        [*columns, "customer_id"])
    via = parse_rules("version: 1\nstages: [{name: A}]\ninitial_stage: A\n"
                      "sources: {s: {columns: {timestamp: t}, customer_id: {via: l}}}\n"
                      "lookups: {l: {key: key, customer_id: cid}}\nmetrics:\n"
                      + LOOKUP_METRICS)
    plain = parse_rules("version: 1\nstages: [{name: A}]\ninitial_stage: A\n"
                        "sources: {s: {columns: {timestamp: t}}}\nmetrics:\n" + LOOKUP_METRICS)
    day = dt.date(2024, 6, 30)
    a = load(via, customers, {"s": [usage]}, tables=Tables(lookups={"l": lookup}))
    b = load(plain, customers, {"s": [joined]})
    ids = a.typed.select("customer_id")
    got = compute_metrics(via, a.sources, ids, day, batch_rows=batch_rows)
    want = compute_metrics(plain, b.sources, ids, day)
    assert_frame_equal(got.values, want.values)
    unmatched = sum(1 for r in rows if r["t"] < dt.datetime(2024, 7, 1)
                    and (r["key"] is None or r["key"] not in owner))
    assert got.unmatched_key_rows == unmatched
    assert got.usage_rows == want.usage_rows
    assert got.unknown_customer_rows + unmatched == want.unknown_customer_rows


def test_a_backfills_replay_equals_a_run_for_every_day_per_source(tmp_path: Path) -> None:
    rng = random.Random(7)
    customers = write_csv(tmp_path / "c.csv", [{"id": f"c{i}"} for i in range(6)])
    lookup = write_csv(tmp_path / "l.csv", [{"sub": f"s{i}", "cid": f"c{i % 7}"}
                                            for i in range(10)])
    start = dt.date(2024, 6, 1)
    subs = write_csv(tmp_path / "subs.csv", [
        {"sub": f"s{rng.randint(0, 11)}", "day": start + dt.timedelta(days=rng.randint(-5, 20)),
         "f": f"f{rng.randint(0, 3)}"} for _ in range(300)])
    tickets = write_csv(tmp_path / "t.csv", [
        {"cid": f"c{rng.randint(0, 7)}",
         "at": dt.datetime(2024, 6, 1, 12) + dt.timedelta(hours=rng.randint(-100, 400))}
        for _ in range(200)])
    rules = parse_rules("""\
version: 1
stages: [{name: A}]
initial_stage: A
columns: {customers: {customer_id: id}}
sources:
  subs: {columns: {timestamp: day}, customer_id: {via: l}}
  tickets: {columns: {customer_id: cid, timestamp: at}}
  calls: {columns: {timestamp: when}}
lookups:
  l: {key: sub, customer_id: cid}
metrics:
  uses_7d: {source: subs, agg: count, window_days: 7}
  features: {source: subs, agg: n_unique, column: f}
  last_use: {source: subs, agg: last, column: f}
  tickets_all: {source: tickets, agg: count}
  recent: {source: tickets, agg: count, where: "days_since(timestamp) <= 3"}
  calls: {source: calls, agg: count}
""")
    loaded = load(rules, customers, {"subs": [subs], "tickets": [tickets]},
                  tables=Tables(lookups={"l": lookup}))
    ids = loaded.typed.select("customer_id")
    end = start + dt.timedelta(days=14)
    replay = SourcesReplay(rules, loaded.sources, ids, start, end)
    assert set(replay.replays) == {"subs"} and set(replay.in_memory) == {"tickets"}
    for i in range(15):
        day = start + dt.timedelta(days=i)
        got, want = replay.metrics(day), compute_metrics(rules, loaded.sources, ids, day)
        assert_frame_equal(got.values, want.values)
        assert got.by_source == want.by_source, day
        assert got.values["calls"].to_list() == [0] * 6  # not given: the default


def test_a_lookup_whose_keys_repeat_names_the_lines(tmp_path: Path) -> None:
    files = exports(tmp_path)
    files["subscriptions"].write_text("subscription_id,account_id\nS1,A1\nS2,A2\nS1,A1\n"
                                      "S3,A1\nS3,A2\n\nS4,\n,A3\n")
    rules = parse_rules(ISSUE_RULES)
    with pytest.raises(DataError) as info:
        load(rules, files["accounts"], {"feature_usage": [files["feature_usage"]]},
             tables=Tables(lookups={"subscriptions": files["subscriptions"]}))
    first, second = info.value.problems
    assert first.line == 2 and first.column == "subscription_id"
    assert "has 1 subscription_id(s) more than once: 'S1' on line 2, line 4" in first.message
    assert second.line == 5
    assert ("maps 1 subscription_id(s) to more than one customer: 'S3' on line 5, line 6 -> "
            "'A1', 'A2'") in second.message


def test_a_lookup_without_its_columns_says_which_key_to_set(tmp_path: Path) -> None:
    files = exports(tmp_path)
    files["subscriptions"].write_text("sub_id,account_id\nS1,A1\n")
    (tmp_path / "r.yaml").write_text(ISSUE_RULES)
    proc = lifecycle("run", "--rules", tmp_path / "r.yaml", *cli_inputs(files), "--dry-run")
    assert proc.returncode == 1
    assert "the lookup 'subscriptions' has no column 'subscription_id' (its key)" in proc.stderr
    assert "lookups: {subscriptions: {key: ...}}" in proc.stderr


@pytest.mark.parametrize("engine", params(spark=True))
def test_rows_whose_key_the_lookup_lacks_are_counted_and_warned(tmp_path: Path,
                                                                engine: str) -> None:
    """On every engine: two sources, one through a lookup, their counts and warnings."""
    files = exports(tmp_path)
    (tmp_path / "r.yaml").write_text(ISSUE_RULES)
    summary = tmp_path / "summary.json"
    proc = ok(lifecycle("run", "--rules", tmp_path / "r.yaml", *cli_inputs(files),
                        "--as-of", "2024-06-30", "--out", tmp_path / "out",
                        "--summary-json", summary, *engine_args(engine)))
    assert ("1 of the 6 rows of the source 'feature_usage' have a subscription_id that the "
            "lookup 'subscriptions'") in proc.stderr
    assert "usage from feature_usage: 6 rows up to the as-of date" in proc.stderr
    assert "1 whose key the lookup lacks" in proc.stderr
    data = json.loads(summary.read_text())
    assert data["rows"]["usage"] == 10 and data["rows"]["usage_unmatched_key"] == 1
    assert data["rows"]["sources"]["tickets"] == {
        "rows": 4, "unknown_customer": 0, "unmatched_key": 0, "without_timestamp": 0,
        "after_as_of": 0}
    assert any("lookup 'subscriptions'" in w for w in data["warnings"])
    assert str(files["subscriptions"]) in {i["path"] for i in data["inputs"]}
    # the customers output: the export's columns, then the metrics
    out = pl.read_csv(tmp_path / "out" / "customers.csv")
    assert out.columns[:2] == ["account_id", "name"]
    assert out.select("account_id", "uses_30d", "open_tickets").rows() == [
        ("A1", 2, 1), ("A2", 1, 2), ("A3", 0, 0)]
    moves = pl.read_csv(tmp_path / "out" / "transitions.csv")
    assert moves.filter(pl.col("hop") > 0).select("customer_id", "rule_id").rows() == [
        ("A1", "active")]


def test_names_that_the_rules_do_not_declare(tmp_path: Path) -> None:
    files = exports(tmp_path)
    (tmp_path / "r.yaml").write_text(ISSUE_RULES)
    proc = lifecycle("run", "--rules", tmp_path / "r.yaml", *cli_inputs(files),
                     "--usage", f"ticket={files['tickets']}", "--lookup",
                     f"subscription={files['subscriptions']}", "--attributes",
                     f"owners={files['accounts']}", "--dry-run")
    assert proc.returncode == 2, proc.stderr
    assert "--usage ticket=...: the rules declare no source 'ticket'" in proc.stderr
    assert "did you mean 'tickets'?" in proc.stderr
    assert "--lookup subscription=...: the rules declare no lookup" in proc.stderr
    assert "--attributes owners=...: the rules declare no attribute table 'owners'" in (
        proc.stderr)
    proc = lifecycle("run", "--rules", tmp_path / "r.yaml", "--customers", files["accounts"],
                     "--lookup", files["subscriptions"], "--dry-run")
    assert proc.returncode == 2 and "--lookup takes NAME=PATH" in proc.stderr


def test_a_source_through_a_lookup_needs_the_lookup(tmp_path: Path) -> None:
    files = exports(tmp_path)
    (tmp_path / "r.yaml").write_text(ISSUE_RULES)
    proc = lifecycle("run", "--rules", tmp_path / "r.yaml", "--customers", files["accounts"],
                     "--usage", f"feature_usage={files['feature_usage']}", "--dry-run")
    assert proc.returncode == 2, proc.stderr
    assert "give it with --lookup subscriptions=PATH" in proc.stderr
    assert "sources.feature_usage.customer_id.via" in proc.stderr


def test_metrics_of_a_source_not_given_take_their_defaults(tmp_path: Path) -> None:
    files = exports(tmp_path)
    rules = parse_rules(ISSUE_RULES)
    result = run(rules, files["accounts"], [f"tickets={files['tickets']}"], AS_OF)
    assert result.customers["uses_30d"].to_list() == [0, 0, 0]
    assert result.customers["open_tickets"].to_list() == [1, 2, 0]
    assert any("no usage given for the source 'feature_usage' (--usage feature_usage=PATH)"
               in w for w in result.warnings)


def test_a_source_with_the_wrong_columns_says_where_to_map_them(tmp_path: Path) -> None:
    files = exports(tmp_path)
    (tmp_path / "r.yaml").write_text(ISSUE_RULES.replace("submitted_at", "submited_at"))
    proc = lifecycle("run", "--rules", tmp_path / "r.yaml", *cli_inputs(files), "--dry-run")
    assert proc.returncode == 1
    assert "the source 'tickets' needs the column 'submited_at'; it is missing" in proc.stderr
    assert "did you mean 'submitted_at'?" in proc.stderr
    assert 'sources: {tickets: {columns: {timestamp: "..."}}}' in proc.stderr


def test_validate_reports_every_problem_of_the_sources_at_once(tmp_path: Path) -> None:
    files = exports(tmp_path)
    files["subscriptions"].write_text("subscription_id,account_id\nS1,A1\nS1,A2\n")
    (tmp_path / "r.yaml").write_text(ISSUE_RULES.replace(
        "closed_at IS NULL", "closed IS NULL").replace(
        "transitions:", "  x: {source: tickets, agg: sum, column: priorty}\ntransitions:"))
    proc = lifecycle("validate", "--rules", tmp_path / "r.yaml", *cli_inputs(files),
                     "--usage", f"ticket={files['tickets']}")
    assert proc.returncode == 1
    err = proc.stderr
    assert "4 problems" in err
    assert "--usage ticket=...: the rules declare no source 'ticket'" in err
    assert "maps 1 subscription_id(s) to more than one customer" in err
    assert "metrics.open_tickets.where, rule 'open_tickets': unknown name 'closed'" in err
    assert "did you mean 'closed_at'?" in err
    assert "metrics.x.column, rule 'x': the source 'tickets' has no column 'priorty'" in err


def test_the_drift_guard_knows_each_sources_columns(tmp_path: Path) -> None:
    files = exports(tmp_path)
    rules = ISSUE_RULES.replace("closed_at IS NULL", "closed_at IS NULL AND weight > 0")
    (tmp_path / "r.yaml").write_text(rules)
    tickets = pl.read_csv(files["tickets"]).with_columns(pl.lit(1).alias("weight"))
    tickets.write_csv(files["tickets"])
    state = tmp_path / "state"
    args = ["run", "--rules", tmp_path / "r.yaml", *cli_inputs(files), "--state", state,
            "--dry-run"]
    ok(lifecycle(*args[:-1], "--as-of", "2024-06-29", "--out", tmp_path / "o1"))
    manifest = json.loads(next((state / "runs").rglob("*.json")).read_text())
    assert manifest["schema"]["source tickets"]["weight"] == "number"
    assert manifest["schema"]["source feature_usage"]["usage_id"] == "text"
    tickets.with_columns(pl.lit("heavy").alias("weight")).write_csv(files["tickets"])
    proc = lifecycle(*args, "--as-of", "2024-06-30")
    assert proc.returncode == 1
    assert ("the column 'weight' of the source 'tickets' held number in the run for "
            "2024-06-29 and holds text now") in proc.stderr
    # a column the rules don't read only warns
    tickets.drop("weight").write_csv(files["tickets"])
    (tmp_path / "r.yaml").write_text(ISSUE_RULES)
    proc = ok(lifecycle(*args, "--as-of", "2024-06-30"))
    assert "the source 'tickets' no longer has the column 'weight'" in proc.stderr


def test_explain_reads_a_source_through_its_lookup(tmp_path: Path) -> None:
    files = exports(tmp_path)
    (tmp_path / "r.yaml").write_text(ISSUE_RULES)
    proc = ok(lifecycle("explain", "A1", "--rules", tmp_path / "r.yaml", *cli_inputs(files),
                        "--as-of", "2024-06-30", "--format", "json"))
    [found] = json.loads(proc.stdout)
    assert found["metrics"]["uses_30d"] == 2 and found["metrics"]["open_tickets"] == 1
    assert found["stage"] == "Active"


def test_check_counts_every_source_as_usage(tmp_path: Path) -> None:
    files = exports(tmp_path)
    (tmp_path / "r.yaml").write_text(ISSUE_RULES + "compliance: {no_usage_days: 15}\n")
    proc = ok(lifecycle("check", "--rules", tmp_path / "r.yaml", *cli_inputs(files),
                        "--as-of", "2024-06-30", "--stdout", "--fail-on", "none"))
    quiet = pl.read_csv(proc.stdout.encode()).filter(pl.col("finding") == "no_usage")
    # A1 and A2 used the product lately; A3 only filed a ticket 19 days ago
    assert quiet["customer_id"].to_list() == ["A3"]


def test_diff_backfill_and_report_take_the_sources(tmp_path: Path) -> None:
    files = exports(tmp_path)
    (tmp_path / "r.yaml").write_text(ISSUE_RULES)
    draft = tmp_path / "draft.yaml"
    draft.write_text(ISSUE_RULES.replace("uses_30d >= 2", "uses_30d >= 1"))
    proc = ok(lifecycle("diff", "--rules", tmp_path / "r.yaml", "--rules", draft,
                        *cli_inputs(files), "--as-of", "2024-06-30", "--stdout"))
    assert pl.read_csv(proc.stdout.encode())["account_id"].to_list() == ["A2"]
    state = tmp_path / "state"
    ok(lifecycle("backfill", "--rules", tmp_path / "r.yaml", *cli_inputs(files),
                 "--from", "2024-06-20", "--to", "2024-06-30", "--state", state, "--quiet"))
    nightly = tmp_path / "nightly"
    for day in range(20, 31):
        ok(lifecycle("run", "--rules", tmp_path / "r.yaml", *cli_inputs(files), "--as-of",
                     f"2024-06-{day}", "--state", nightly, "--out", tmp_path / "o", "--quiet"))
    period = dt.date(2024, 6, 20), dt.date(2024, 6, 30)
    backfilled = StateView.open(state).history("transitions", *period)
    ran = StateView.open(nightly).history("transitions", *period)
    assert backfilled.height > 0
    assert_frame_equal(backfilled.sort("as_of", "customer_id", "hop"),
                       ran.sort("as_of", "customer_id", "hop"))
    proc = ok(lifecycle("report", "--rules", tmp_path / "r.yaml", *cli_inputs(files),
                        "--as-of", "2024-06-30", "--quiet", "--csv", tmp_path / "report"))
    distribution = pl.read_csv(tmp_path / "report" / "distribution.csv")
    assert distribution.select("stage", "customers").rows() == [
        ("New", 2), ("Active", 1), ("Busy", 0)]


def test_a_metric_that_reads_the_customer_id_of_a_lookup_source(tmp_path: Path) -> None:
    """Such a metric needs every row joined with the lookup (the other metrics join only
    each key's partial aggregates): both ways give the same values."""
    files = exports(tmp_path)
    rules = parse_rules(ISSUE_RULES.replace(
        "transitions:", "  last_sub: {source: feature_usage, agg: last, column: "
        "subscription_id}\ntransitions:"))
    with_id = parse_rules(ISSUE_RULES.replace(
        "transitions:", "  last_sub: {source: feature_usage, agg: last, column: "
        "subscription_id}\n  by_id: {source: feature_usage, agg: count, where: "
        "\"customer_id = 'A1'\"}\ntransitions:"))
    given = {"feature_usage": [files["feature_usage"]]}
    lookups = Tables(lookups={"subscriptions": files["subscriptions"]})
    a, b = load(rules, files["accounts"], given, tables=lookups), load(
        with_id, files["accounts"], given, tables=lookups)
    ids = a.typed.select("customer_id")
    fast = compute_metrics(rules, a.sources, ids, AS_OF)
    joined = compute_metrics(with_id, b.sources, ids, AS_OF)
    assert_frame_equal(fast.values, joined.values.drop("by_id"))
    assert fast.values["last_sub"].to_list() == ["S2", "S3", None]
    assert joined.values["by_id"].to_list() == [2, 0, 0]
    assert fast.by_source == joined.by_source
