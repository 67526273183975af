"""Where two commands must agree: a backfill and the nightly runs it replaces, an export
that lags and one that says nothing, `explain --state` and `run --state`.

Each runs on random exports (Hypothesis) through the real library calls and commands.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path
from typing import Any

import polars as pl
from cli_util import RULES, lifecycle
from conftest import examples, write_csv
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lifecycle_cli import StateView, backfill, check, load_rules, run
from lifecycle_cli.jobs.cta_actions import act
from lifecycle_cli.state.store import SNAPSHOT_DAYS, SNAPSHOTS, DayRecord, State

DAY0 = dt.date(2026, 3, 1)
STAGES = ["Onboarding", "Launched", "Adopting", "Renewal", "Will Churn", "Churned"]
EVENTS = ["login", "login", "login", "feature_use", "training_completed"]
RULE_SET = load_rules(RULES)
SEAM = settings(max_examples=examples(12), deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])


@st.composite
def exports(draw: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Customers as the default rules read them (some with a stage and date, some without)
    and usage over the 60 days before ``DAY0`` and the days after it."""
    n = draw(st.integers(3, 14))
    customers = []
    for i in range(n):
        stage = draw(st.sampled_from([None, *STAGES]))
        entered = None  # a stage without a date now and then: days in it unknown
        if stage is not None and draw(st.integers(0, 4)):
            entered = DAY0 - dt.timedelta(days=draw(st.integers(0, 120)))
        customers.append({
            "customer_id": f"C{i:03d}",
            "csm": draw(st.sampled_from(["Ana", "Bo", None])),
            "renewal_date": DAY0 + dt.timedelta(days=draw(st.integers(-20, 200))),
            "health_score": draw(st.integers(10, 95)),
            "status": draw(st.sampled_from(["active"] * 5 + ["churned"])),
            "churn_notice": draw(st.booleans()),
            "stage": stage,
            "stage_entered_at": entered,
        })
    usage = []
    for _ in range(draw(st.integers(1, 80))):  # a header-only CSV has no column types
        usage.append({
            "customer_id": f"C{draw(st.integers(0, n - 1)):03d}",
            "timestamp": dt.datetime.combine(DAY0, dt.time(9))
            + dt.timedelta(days=draw(st.integers(-60, 12)), minutes=draw(st.integers(0, 900))),
            "event": draw(st.sampled_from(EVENTS)),
            "user_id": f"u{draw(st.integers(0, 5))}",
            "minutes": draw(st.integers(1, 60)),
        })
    return customers, usage


def write_exports(folder: Path, customers: list[dict[str, Any]], usage: list[dict[str, Any]]
                  ) -> tuple[Path, list[Path]]:
    folder.mkdir(parents=True, exist_ok=True)
    columns = ["customer_id", "csm", "renewal_date", "health_score", "status", "churn_notice",
               "stage", "stage_entered_at"]
    usage_columns = ["customer_id", "timestamp", "event", "user_id", "minutes"]
    return (write_csv(folder / "customers.csv", customers, columns),
            [write_csv(folder / "usage.csv", usage, usage_columns)])


KEPT = ("metrics", "values", "totals")  # what a day keeps when the rules need it
TABLES = ("transitions", "overrides", "ctas", "tasks", "cta_archive", "cta_actions",
          "worklist", "visits")


def records(state: Path) -> dict[str, Any]:
    """Everything the state decided, day by day (manifests aside: they hold durations): the
    tables, each CTA's latest row on each date, and the CTA snapshots the state keeps."""
    view = StateView.open(state)
    snapshots = {d: view.snapshot(d) for d in view.days[-SNAPSHOT_DAYS:]}
    return {
        "path": state,
        "days": view.days,
        "stages": {d: view.stages(d) for d in view.days},
        **{t: {d: view.table(t, d) for d in view.days} for t in KEPT},
        **{t: view.history(t) for t in TABLES if t not in ("worklist", "visits")},
        "worklist": view.worklist().items,
        "visits": view.visits(),
        "ctas_on": {d: view.ctas(d).sort("cta_id") for d in view.days},
        "snapshots": {d: (s.ctas, s.tasks) for d, s in snapshots.items()},
    }


def assert_same(a: dict[str, Any], b: dict[str, Any]) -> None:
    assert a["days"] == b["days"]
    for day in a["days"]:
        assert a["stages"][day].equals(b["stages"][day]), day
        for table in KEPT:
            x, y = a[table][day], b[table][day]
            assert (x is None and y is None) or (x is not None and y is not None
                                                 and x.equals(y)), (table, day)
        assert a["ctas_on"][day].equals(b["ctas_on"][day]), day
    for table in TABLES:
        assert a[table].equals(b[table]), table
    assert a["snapshots"].keys() == b["snapshots"].keys()
    for day, (ctas, tasks) in a["snapshots"].items():  # the same files, row for row
        assert ctas.equals(b["snapshots"][day][0]) and tasks.equals(b["snapshots"][day][1])
    for day in a["days"][-SNAPSHOT_DAYS:]:  # and what the events give, rebuilt
        assert_snapshot_is_the_events(StateView.open(a["path"]), day)


def assert_snapshot_is_the_events(view: StateView, day: dt.date) -> None:
    """The date's snapshot, and the archive up to it, hold what a state without snapshots
    rebuilds from the CTA events and hand actions."""
    old = State.open(view.path)
    old.days = {d: DayRecord({k: v for k, v in r.files.items() if k not in SNAPSHOTS})
                for d, r in old.days.items()}
    rebuilt, kept = StateView(old).snapshot(day), view.snapshot(day)
    assert rebuilt.complete and not kept.complete
    assert rebuilt.open.sort("cta_id").equals(kept.open.sort("cta_id")), day
    assert rebuilt.tasks.sort("cta_id", "seq").equals(kept.tasks.sort("cta_id", "seq")), day
    assert rebuilt.ctas.sort("cta_id").equals(view.ctas(day).sort("cta_id")), day


def assert_decided_alike(a: dict[str, Any], b: dict[str, Any]) -> None:
    """What the tool decided is the same; what the exports said may differ."""
    decided = ["customer_id", "stage", "stage_entered_at", "last_seen"]
    assert a["days"] == b["days"]
    for day in a["days"]:
        assert a["stages"][day].select(decided).equals(b["stages"][day].select(decided)), day
    for table in TABLES:
        assert a[table].equals(b[table]), table
    for day in a["days"]:
        assert a["ctas_on"][day].equals(b["ctas_on"][day]), day


@SEAM
@given(data=exports(), days=st.integers(2, 7), split=st.data())
def test_a_backfill_equals_a_shorter_backfill_then_nightly_runs(
        tmp_path_factory: Any, data: Any, days: int, split: Any) -> None:
    """backfill D1..Dn holds what backfill D1..Dk and then `run --state` for k+1..n hold,
    on the same export: stage tables, transitions, hand edits, CTAs, tasks, the worklist."""
    k = split.draw(st.integers(1, days - 1), label="k")
    keep = split.draw(st.booleans(), label="keep_export_stages")
    folder = tmp_path_factory.mktemp("seam")
    customers, usage = write_exports(folder, *data)
    last = DAY0 + dt.timedelta(days=days - 1)
    backfill(RULE_SET, None, customers, usage, DAY0, last, folder / "whole",
             keep_export_stages=keep)
    backfill(RULE_SET, None, customers, usage, DAY0, DAY0 + dt.timedelta(days=k - 1),
             folder / "mixed", keep_export_stages=keep)
    for i in range(k, days):
        run(RULE_SET, customers, usage, DAY0 + dt.timedelta(days=i), state=folder / "mixed")
    assert_same(records(folder / "whole"), records(folder / "mixed"))
    if not keep:  # the export's stages are today's: no replayed day reads them
        blank = [{**row, "stage": None, "stage_entered_at": None} for row in data[0]]
        silent, _ = write_exports(folder / "silent", blank, data[1])
        backfill(RULE_SET, None, silent, usage, DAY0, last, folder / "silent-state")
        assert_decided_alike(records(folder / "whole"), records(folder / "silent-state"))


def hand_actions(state: Path, draw: Any, label: str) -> None:
    """Some of what people do to the open CTAs of the state's latest date, drawn."""
    view = StateView.open(state)
    for i in range(draw(st.integers(0, 3), label=f"{label} actions")):
        snap = StateView.open(state).snapshot()  # what the actions before left open
        ids = snap.open["cta_id"].to_list()
        if not ids:
            return
        cta_id = ids[draw(st.integers(0, len(ids) - 1), label=f"{label} cta {i}")]
        action = draw(st.sampled_from(["close", "snooze", "assign", "done"]),
                      label=f"{label} action {i}")
        seqs = snap.tasks.filter(pl.col("cta_id") == cta_id)["seq"].to_list()
        if action == "done" and not seqs:
            action = "assign"
        day = view.latest
        assert day is not None
        act(state, action, [cta_id], by="seam", reason="drawn",
            until=day + dt.timedelta(days=draw(st.integers(0, 4), label=f"{label} until {i}")),
            owner=draw(st.sampled_from(["Ana", "Zoe"]), label=f"{label} owner {i}"),
            seqs=seqs[:1] if action == "done" else None)


@SEAM
@given(data=exports(), days=st.integers(2, 6), split=st.data())
def test_a_backfill_over_dates_with_hand_actions_holds_what_the_nights_left(
        tmp_path_factory: Any, data: Any, days: int, split: Any) -> None:
    """People close, snooze, reassign CTAs and mark tasks done between nightly runs; a
    backfill over those dates afterwards applies their actions again, on the same dates,
    and the state holds what it held: the same CTAs, tasks, archive, snapshots, worklist."""
    k = split.draw(st.integers(1, days - 1), label="k")
    folder = tmp_path_factory.mktemp("handled")
    customers, usage = write_exports(folder, *data)
    nights = folder / "nights"
    backfill(RULE_SET, None, customers, usage, DAY0, DAY0 + dt.timedelta(days=k - 1), nights)
    hand_actions(nights, split.draw, f"day {k - 1}")
    for i in range(k, days):
        run(RULE_SET, customers, usage, DAY0 + dt.timedelta(days=i), state=nights)
        hand_actions(nights, split.draw, f"day {i}")
    replayed = folder / "replayed"
    shutil.copytree(nights, replayed)
    backfill(RULE_SET, None, customers, usage, DAY0, DAY0 + dt.timedelta(days=days - 1),
             replayed)
    assert_same(records(nights), records(replayed))


@SEAM
@given(data=exports())
def test_an_export_that_lags_for_ten_nights_changes_nothing_the_tool_decided(
        tmp_path_factory: Any, data: Any) -> None:
    """After the first night, an export that keeps giving the same stages and dates decides
    what an export that gives none decides: the state's."""
    customers_rows, usage_rows = data
    folder = tmp_path_factory.mktemp("lag")
    customers, usage = write_exports(folder / "lagging", customers_rows, usage_rows)
    blank = [{**row, "stage": None, "stage_entered_at": None} for row in customers_rows]
    silent, _ = write_exports(folder / "silent", blank, usage_rows)
    for state in ("a", "b"):
        run(RULE_SET, customers, usage, DAY0, state=folder / state)
    for night in range(1, 11):
        day = DAY0 + dt.timedelta(days=night)
        run(RULE_SET, customers, usage, day, state=folder / "a")
        run(RULE_SET, silent, usage, day, state=folder / "b")
    a, b = records(folder / "a"), records(folder / "b")
    assert_decided_alike(a, b)
    assert a["overrides"].height == 0


@SEAM
@given(data=exports(), edits=st.lists(st.tuples(st.integers(0, 13), st.sampled_from(STAGES),
                                                st.integers(0, 30)), max_size=4))
def test_explain_with_a_state_starts_where_run_with_the_state_starts(
        tmp_path_factory: Any, data: Any, edits: list[tuple[int, str, int]]) -> None:
    """For both --prefer values, `explain --state` starts each customer where `run --state`
    does, and ends it in the same stage: hand edits, lagging stages and new customers."""
    customers_rows, usage_rows = data
    folder = tmp_path_factory.mktemp("explain")
    customers, usage = write_exports(folder / "night1", customers_rows, usage_rows)
    state = folder / "state"
    run(RULE_SET, customers, usage, DAY0, state=state)
    edited = [dict(row) for row in customers_rows]
    for i, stage, days in edits:  # hand edits in the CRM, some with a new date
        if i < len(edited):
            edited[i]["stage"] = stage
            edited[i]["stage_entered_at"] = DAY0 - dt.timedelta(days=days) if days else None
    edited.append({**customers_rows[0], "customer_id": "NEW", "stage": None})
    night2, _ = write_exports(folder / "night2", edited, usage_rows)
    as_of = (DAY0 + dt.timedelta(days=1)).isoformat()
    ids = [row["customer_id"] for row in edited]
    common = ["--customers", night2, "--usage", usage[0], "--rules", RULES, "--as-of", as_of]
    for prefer in ("export", "state"):
        copy = shutil.copytree(state, folder / f"state-{prefer}")  # the run records its day
        ran = lifecycle("run", *common, "--state", copy, "--prefer", prefer, "--stdout",
                        "customers")
        explained = lifecycle("explain", *ids, *common, "--state", state, "--prefer", prefer,
                              "--format", "json")
        assert ran.returncode == 0, ran.stderr
        assert explained.returncode == 0, explained.stderr
        out = pl.read_csv(ran.stdout.encode(), infer_schema=False)
        want = [(r["customer_id"], r["previous_stage"] or None, r["stage"],
                 r["stage_entered_at"] or None) for r in out.iter_rows(named=True)]
        got = [(e["customer_id"], e["stage_at_start"], e["stage"], e["stage_entered_at"])
               for e in json.loads(explained.stdout)]
        assert got == want, prefer


@SEAM
@given(data=exports(), days=st.integers(1, 12),
       later=st.one_of(st.just(0), st.integers(1, 20)), split=st.data())
def test_check_finds_past_due_the_open_ctas_of_the_snapshot_run_writes(
        tmp_path_factory: Any, data: Any, days: int, later: int, split: Any) -> None:
    """`check --state` reads each CTA's latest row without building tasks or the archive
    (`Day.cta_latest`); its past-due CTAs are the open CTAs, due before the date, of the
    snapshot that `run --state` writes for the same date (`Day.cta_snapshot`), with their
    owners and due dates: on the state's latest date after hand actions (a re-run of it)
    and on a later date (CTAs are due 3 to 30 days after they are created)."""
    folder = tmp_path_factory.mktemp("check")
    customers, usage = write_exports(folder, *data)
    state = folder / "state"
    last = DAY0 + dt.timedelta(days=days - 1)
    backfill(RULE_SET, None, customers, usage, DAY0, last, state)
    hand_actions(state, split.draw, "last day")
    as_of = last + dt.timedelta(days=later)
    found = check(RULE_SET, customers, usage, as_of, state_dir=state).findings.filter(
        pl.col("finding") == "cta_past_due")
    ran = shutil.copytree(state, folder / "ran")
    run(RULE_SET, customers, usage, as_of, state=ran)
    want = (StateView.open(ran).snapshot(as_of).open
            .filter(pl.col("due_on") < as_of)
            .select("customer_id", "cta_id", "owner", "due_on").sort("cta_id"))
    got = found.select(
        "customer_id",
        pl.col("detail").str.extract(r"^cta_id=([^;]*);").alias("cta_id"),
        "owner",
        pl.col("detail").str.extract(r"due_on=(\d{4}-\d\d-\d\d)").str.to_date()
        .alias("due_on"),
    ).sort("cta_id")
    assert got.equals(want), (got, want)


P1_RULES = """
version: 1
stages: [{name: Adopting}, {name: Will Churn}, {name: Renewal}]
initial_stage: Adopting
transitions:
  - {id: risk, from: Adopting, to: Will Churn, when: "as_of = DATE '2026-03-02'"}
  - {id: saved, from: Will Churn, to: Adopting, when: "as_of = DATE '2026-03-03'"}
  - {id: renewal, from: Adopting, to: Renewal, when: "as_of = DATE '2026-03-06'"}
ctas:
  - {id: check_in, name: Check in, on: enter, stage: Adopting, due_days: 7}
"""


def test_a_lagging_export_does_not_reset_a_visit_the_tool_began(tmp_path: Path) -> None:
    """The issue's case: the CRM says `P1, Adopting, 2026-01-01` every night. The tool moves
    P1 to Will Churn on 03-02 and back on 03-03; the visit it began on 03-03 goes on (its
    CTA stays open) until P1 leaves on 03-06 after 3 days in it."""
    from lifecycle_cli import parse_rules

    rules = parse_rules(P1_RULES)
    crm = write_csv(tmp_path / "crm.csv", [
        {"customer_id": "P1", "stage": "Adopting", "stage_entered_at": dt.date(2026, 1, 1)}])
    state = tmp_path / "state"
    for day in range(1, 7):
        run(rules, crm, [], dt.date(2026, 3, day), state=state)
    view = StateView.open(state)
    moves = view.history("transitions").select("as_of", "from_stage", "to_stage",
                                               "days_in_from_stage")
    assert moves.rows() == [
        (dt.date(2026, 3, 2), "Adopting", "Will Churn", 60),
        (dt.date(2026, 3, 3), "Will Churn", "Adopting", 1),
        (dt.date(2026, 3, 6), "Adopting", "Renewal", 3),
    ]
    assert view.stages(dt.date(2026, 3, 4))["stage_entered_at"].to_list() == [
        dt.date(2026, 3, 3)]
    ctas = view.history("ctas").select("as_of", "cta_id", "status", "close_reason")
    assert ctas.rows() == [  # the first night's stage came from the export: no entry, no CTA
        (dt.date(2026, 3, 3), "check_in:P1:Adopting:2026-03-03", "open", None),
        (dt.date(2026, 3, 6), "check_in:P1:Adopting:2026-03-03", "closed",
         "stage exit: Adopting → Renewal"),
    ]
    assert view.history("overrides").height == 0


def history_rules() -> Any:
    """The default rules, plus what a day carries to the next: previous() of a metric, of a
    customer column and of a derived value in conditions and a CTA, and history_columns."""
    from lifecycle_cli import parse_rules

    text = RULES.read_text(encoding="utf-8")
    additions = {
        "\nderived:\n": """
  login_drop: "COALESCE(previous(logins_30d), 0) - logins_30d"
  health_was: "previous(health_score)"
  risk_was: "previous(at_risk)"
""",
        "\ntransitions:\n": """
  - {id: slump, from: [Launched, Adopting], to: Will Churn, priority: 5,
     when: "login_drop >= 2 OR (risk_was AND previous(minutes_30d) > minutes_30d)"}
""",
        "\nctas:\n": """
  - {id: usage_dropped, name: Usage dropped, on: when, due_days: 2,
     when: "previous(minutes_30d) - minutes_30d >= 30"}
""",
    }
    for key, lines in additions.items():
        assert key in text
        at = text.index(key) + len(key)
        if key == "\nderived:\n":  # after the derived values it reads
            at = text.index("\n\n", at) + 1
        text = text[:at] + lines.lstrip("\n") + text[at:]
    return parse_rules(text + "\nhistory_columns: true\n")


HISTORY_RULES = history_rules()


@SEAM
@given(data=exports(), days=st.integers(3, 8), split=st.data())
def test_previous_values_and_history_totals_carry_alike_in_a_backfill_and_nightly_runs(
        tmp_path_factory: Any, data: Any, days: int, split: Any) -> None:
    """With rules that read previous() and keep history columns, a backfill holds what a
    shorter backfill and nightly runs hold (metrics, previous values, totals, visits too);
    the totals a run keeps equal those rebuilt from the history; and the customers output's
    history columns are the visits' days summed."""
    from lifecycle_cli.columns import days_total_column, last_entered_column
    from lifecycle_cli.day.visits import add_totals

    k = split.draw(st.integers(1, days - 1), label="k")
    folder = tmp_path_factory.mktemp("carry")
    customers, usage = write_exports(folder, *data)
    last = DAY0 + dt.timedelta(days=days - 1)
    backfill(HISTORY_RULES, None, customers, usage, DAY0, last, folder / "whole")
    backfill(HISTORY_RULES, None, customers, usage, DAY0, DAY0 + dt.timedelta(days=k - 1),
             folder / "mixed")
    for i in range(k, days - 1):
        run(HISTORY_RULES, customers, usage, DAY0 + dt.timedelta(days=i), state=folder / "mixed")
    ran = run(HISTORY_RULES, customers, usage, last, state=folder / "mixed")
    whole = records(folder / "whole")
    assert_same(whole, records(folder / "mixed"))
    view = StateView.open(folder / "whole")
    for day in view.days:
        assert whole["metrics"][day] is not None and whole["values"][day] is not None
        rebuilt = add_totals(None, view.moves(None, day))
        key = ["customer_id", "stage"]
        assert whole["totals"][day].sort(key).equals(rebuilt.sort(key)), day
    # the last night's history columns: the visits of each customer and stage, summed
    visits = whole["visits"].filter(pl.col("days") >= 0).group_by("customer_id", "stage").agg(
        pl.col("days").sum(), pl.col("entered").max())
    out = ran.customers.with_columns(pl.col("customer_id").cast(pl.String))
    for stage in STAGES:
        want = out.select("customer_id").join(
            visits.filter(pl.col("stage") == stage), on="customer_id", how="left",
            maintain_order="left")
        assert out[days_total_column(stage)].to_list() == \
            want["days"].fill_null(0).to_list(), stage
        entered = whole["visits"].filter(pl.col("stage") == stage).group_by("customer_id").agg(
            pl.col("entered").max())
        want_last = out.select("customer_id").join(entered, on="customer_id", how="left",
                                                   maintain_order="left")
        assert out[last_entered_column(stage)].to_list() == want_last["entered"].to_list(), stage
