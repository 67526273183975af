"""CTAs across runs with a state: once per visit over repeated, skipped and replayed days,
auto-close, stable ids, the worklist, and the XLSX workbook.

Single-run triggers are data-driven cases in tests/cases/ctas.yaml.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import fastexcel
import openpyxl
import polars as pl
import pytest
from cli_util import AS_OF, DATA, lifecycle, run_args
from conftest import write_csv

from lifecycle_cli import parse_rules
from lifecycle_cli.ctas.decide import current
from lifecycle_cli.jobs.backfill import backfill
from lifecycle_cli.jobs.nightly import run
from lifecycle_cli.state.view import StateView

RULES_TEXT = """
version: 1
stages:
  - {name: Onboarding, expected_days: 10}
  - {name: Launched}
initial_stage: Onboarding
default_owner: CS Ops
metrics:
  logins: {agg: count, window_days: 7}
transitions:
  - {id: live, from: Onboarding, to: Launched, when: "trained"}
ctas:
  - {id: hello, name: Welcome, on: enter, stage: Onboarding, due_days: 2, owner: csm,
     playbook: onboarding}
  - {id: late, name: Late, type: Risk, on: overdue, stage: Onboarding, due_days: 1, owner: csm}
  - {id: quiet, name: Quiet, on: when, stage: Launched, when: "logins = 0",
     close_when: "logins >= 3", owner: csm}
playbooks:
  onboarding:
    - {task: Send the welcome pack, due_days: 1}
    - {task: Hold the kickoff, due_days: 5}
"""
D = dt.date.fromisoformat


class Scenario:
    """A state folder and one customers export per day, run like cron runs them."""

    def __init__(self, tmp_path: Path, rules: str = RULES_TEXT) -> None:
        self.tmp = tmp_path
        tmp_path.mkdir(exist_ok=True)
        self.rules = parse_rules(rules)
        self.state = tmp_path / "state"
        self.usage = write_csv(tmp_path / "usage.csv", [
            {"customer_id": "002", "timestamp": "2026-10-30 10:00:00"},
        ])

    def customers(self, day: str, rows: list[dict[str, Any]]) -> Path:
        return write_csv(self.tmp / f"customers-{day}.csv", rows)

    def run(self, day: str, rows: list[dict[str, Any]], **kw: Any) -> pl.DataFrame:
        """Run ``day``; return the CTA events the run wrote."""
        out = self.tmp / f"out-{day}"
        run(self.rules, self.customers(day, rows), [self.usage], D(day), state=self.state,
            out=out, **kw)
        return pl.read_csv(out / "ctas.csv", infer_schema=False)

    def history(self) -> pl.DataFrame:
        return StateView.open(self.state).history("ctas")


NEW = [{"customer_id": "001", "csm": "ann", "trained": "false"},
       {"customer_id": "002", "csm": "", "trained": "false"}]


def test_a_repeated_date_creates_nothing_new(tmp_path: Path) -> None:
    s = Scenario(tmp_path)
    first = s.run("2026-11-01", NEW)
    assert first["cta_id"].to_list() == ["hello:001:Onboarding:2026-11-01",
                                         "hello:002:Onboarding:2026-11-01"]
    assert first["owner"].to_list() == ["ann", "CS Ops"]
    again = s.run("2026-11-01", NEW)
    assert again.equals(first)  # the day is replaced: the same CTAs, not new ones
    assert s.history().height == 2
    # the next day, the same visit: nothing
    assert s.run("2026-11-02", NEW).height == 0
    assert s.history()["cta_id"].n_unique() == 2


def test_skipped_days_create_the_overdue_cta_on_the_next_run(tmp_path: Path) -> None:
    s = Scenario(tmp_path)
    s.run("2026-11-01", NEW)  # entered Onboarding on 11-01; overdue from day 11 (11-12)
    s.run("2026-11-10", NEW)
    late = s.run("2026-11-14", NEW)  # 11-11 to 11-13 were skipped
    assert late["cta_id"].to_list() == ["late:001:Onboarding:2026-11-01",
                                        "late:002:Onboarding:2026-11-01"]
    assert set(late["created_on"]) == {"2026-11-14"} and set(late["due_on"]) == {"2026-11-15"}
    assert late["reason"][0] == "days_in_stage=13; expected_days=10"
    assert s.run("2026-11-15", NEW).height == 0


def test_leaving_the_stage_closes_the_visit_s_ctas(tmp_path: Path) -> None:
    s = Scenario(tmp_path)
    s.run("2026-11-01", NEW)
    trained = [{**NEW[0], "trained": "true"}, NEW[1]]
    events = s.run("2026-11-03", trained)
    closed = events.filter(pl.col("status") == "closed")
    assert closed.select("cta_id", "closed_on", "close_reason").rows() == [
        ("hello:001:Onboarding:2026-11-01", "2026-11-03", "stage exit: Onboarding → Launched")]
    # the closed row keeps what the CTA was: created on, due on, owner
    assert closed.select("created_on", "due_on", "owner").row(0) == (
        "2026-11-01", "2026-11-03", "ann")
    # 001 is in Launched now with no logins in 7 days: the `when` CTA fires there
    created = events.filter(pl.col("status") == "open")
    assert created["cta_id"].to_list() == ["quiet:001:Launched:2026-11-03"]
    status = current(s.history()).sort("cta_id").select("cta_id", "status").rows()
    assert status == [("hello:001:Onboarding:2026-11-01", "closed"),
                      ("hello:002:Onboarding:2026-11-01", "open"),
                      ("quiet:001:Launched:2026-11-03", "open")]


def test_close_when_closes_and_the_visit_gets_no_second_cta(tmp_path: Path) -> None:
    s = Scenario(tmp_path)
    rows = [{"customer_id": "001", "csm": "ann", "trained": "true",
             "stage": "Launched", "stage_entered_at": "2026-10-01"}]
    assert s.run("2026-11-01", rows)["cta_id"].to_list() == ["quiet:001:Launched:2026-10-01"]
    s.usage = write_csv(tmp_path / "usage.csv", [
        {"customer_id": "001", "timestamp": f"2026-11-0{d} 10:00:00"} for d in (2, 3, 4)])
    events = s.run("2026-11-04", rows)
    assert events.select("status", "close_reason").rows() == [("closed", "close_when: logins=3")]
    # quiet again, same visit: the rule already had its CTA for this visit
    s.usage = write_csv(tmp_path / "usage.csv", [
        {"customer_id": "001", "timestamp": "2026-10-01 10:00:00"}])
    assert s.run("2026-11-20", rows).height == 0


def test_ids_are_stable_they_name_the_visit_not_the_run(tmp_path: Path) -> None:
    a, b = Scenario(tmp_path / "a"), Scenario(tmp_path / "b")
    a.run("2026-11-01", NEW)
    a.run("2026-11-14", NEW)
    # another state that starts on 11-14 from an export that knows the visit: same ids
    known = [{**row, "stage": "Onboarding", "stage_entered_at": "2026-11-01"}
             for row in NEW[::-1]]
    b.run("2026-11-14", known)
    ids_a = current(a.history()).filter(pl.col("rule_id") == "late")["cta_id"].to_list()
    ids_b = current(b.history()).filter(pl.col("rule_id") == "late")["cta_id"].to_list()
    assert sorted(ids_a) == sorted(ids_b) == ["late:001:Onboarding:2026-11-01",
                                              "late:002:Onboarding:2026-11-01"]


def test_a_backfill_creates_what_the_nightly_runs_create(tmp_path: Path) -> None:
    s = Scenario(tmp_path)
    days = [D("2026-11-01") + dt.timedelta(days=i) for i in range(14)]
    export = s.customers("all", NEW)
    for day in days:
        run(s.rules, export, [s.usage], day, state=s.state)
    replayed = tmp_path / "replayed"
    backfill(s.rules, None, export, [s.usage], days[0], days[-1], replayed,
             keep_export_stages=True)
    nightly, back = StateView.open(s.state), StateView.open(replayed)
    assert nightly.history("ctas").equals(back.history("ctas"))
    assert nightly.history("tasks").equals(back.history("tasks"))
    assert sorted(set(nightly.history("ctas")["rule_id"])) == ["hello", "late"]
    # a second backfill over the same days replaces them: nothing doubles
    backfill(s.rules, None, export, [s.usage], days[0], days[-1], replayed,
             keep_export_stages=True)
    assert StateView.open(replayed).history("ctas").equals(back.history("ctas"))


def test_a_rewind_forgets_the_later_ctas(tmp_path: Path) -> None:
    s = Scenario(tmp_path)
    s.run("2026-11-01", NEW)
    s.run("2026-11-14", NEW)
    assert "late" in set(s.history()["rule_id"])
    s.run("2026-11-05", NEW, rewind=True)
    assert set(s.history()["rule_id"]) == {"hello"}


def test_the_worklist_lists_open_ctas_and_their_tasks(tmp_path: Path) -> None:
    s = Scenario(tmp_path)
    s.run("2026-11-01", NEW)
    s.run("2026-11-03", [{**NEW[0], "trained": "true"}, NEW[1]])
    state = StateView.open(s.state)
    wl = state.worklist()
    # each CTA first, its tasks under it (not scattered by due date)
    assert wl.items.select("owner", "due_on", "days_overdue", "item", "customer_id", "seq",
                           "what").rows() == [
        ("CS Ops", D("2026-11-03"), 0, "cta", "002", 0, "Welcome"),
        ("CS Ops", D("2026-11-02"), 1, "task", "002", 1, "Send the welcome pack"),
        ("CS Ops", D("2026-11-06"), 0, "task", "002", 2, "Hold the kickoff"),
        ("ann", D("2026-11-03"), 0, "cta", "001", 0, "Quiet"),
    ]
    late = state.worklist(overdue=True)
    assert late.items["what"].to_list() == ["Send the welcome pack"]
    ann = state.worklist(owner=" ANN ")
    assert ann.items["cta_id"].to_list() == ["quiet:001:Launched:2026-11-03"]
    assert ann.owners == ["CS Ops", "ann"]


def test_ctas_command(tmp_path: Path) -> None:
    state = tmp_path / "state"
    assert lifecycle(*run_args(tmp_path / "out", "--state", state)).returncode == 0
    proc = lifecycle("ctas", "--state", state, "--stdout")
    assert proc.returncode == 0, proc.stderr
    expected = pl.read_csv(tmp_path / "out" / "ctas.csv", infer_schema=False)
    listed = pl.read_csv(proc.stdout.encode(), infer_schema=False)
    assert set(listed.filter(pl.col("item") == "cta")["cta_id"]) == set(expected["cta_id"])
    assert "open as of 2026-11-01" in proc.stderr
    proc = lifecycle("ctas", "--state", state, "--owner", "Ana Ruis")
    assert proc.returncode == 0 and "did you mean 'Ana Ruiz'?" in proc.stderr
    proc = lifecycle("ctas", "--state", state, "--owner", "ana ruiz")
    assert "Ana Ruiz" in proc.stdout and "Ben Okafor" not in proc.stdout
    proc = lifecycle("ctas", "--state", state, "--format", "xlsx", "--out", tmp_path / "wl")
    assert proc.returncode == 0 and (tmp_path / "wl" / "worklist.xlsx").exists()
    missing = lifecycle("ctas", "--state", tmp_path / "nowhere")
    assert missing.returncode == 1 and "no lifecycle state here" in missing.stderr
    assert "Traceback" not in missing.stderr
    wrong_day = lifecycle("ctas", "--state", state, "--as-of", "2026-10-01")
    assert wrong_day.returncode == 2 and "2026-11-01 to 2026-11-01" in wrong_day.stderr


FORMULAS = ["=1+1", "+44 20 7946 0000", "-5+5", "@SUM(A1:A2)", "=HYPERLINK(\"http://x\")"]


def test_the_xlsx_workbook_has_typed_sheets_and_no_formulas(tmp_path: Path) -> None:
    rows = [{"customer_id": f"00{i}", "csm": owner, "name": owner, "arr": 1000 + i,
             "stage": "", "stage_entered_at": ""} for i, owner in enumerate(FORMULAS, start=1)]
    customers = write_csv(tmp_path / "customers.csv", rows)
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES_TEXT.replace("trained", "arr > 10000"))
    proc = lifecycle("run", "--customers", customers, "--rules", rules, "--as-of", AS_OF,
                     "--out", tmp_path / "out", "--format", "xlsx")
    assert proc.returncode == 0, proc.stderr
    path = tmp_path / "out" / "lifecycle.xlsx"
    book = openpyxl.load_workbook(path)
    assert book.sheetnames == ["customers", "transitions", "ctas", "tasks"]
    for sheet in book.worksheets:
        assert sheet.freeze_panes == "A2", sheet.title
        # header filters: the sheet is an Excel table whose header row has filter buttons
        (table,) = sheet.tables.values()
        assert table.autoFilter is not None and table.ref.startswith("A1:"), sheet.title
        for row in sheet.iter_rows():
            for cell in row:
                assert cell.data_type != "f", (sheet.title, cell.coordinate, cell.value)
    owners = [c.value for c in book["ctas"]["I"][1:]]
    assert owners == FORMULAS
    assert [c.value for c in book["tasks"]["E"][1:]] == [o for o in FORMULAS for _ in (1, 2)]
    # a real reader sees typed columns: dates as dates, ids as text, numbers as numbers
    reader = fastexcel.read_excel(path)
    ctas = reader.load_sheet_by_name("ctas").to_polars()
    assert ctas.schema["created_on"] in (pl.Date, pl.Datetime("ms"))
    assert ctas.schema["customer_id"] == pl.String
    assert ctas["customer_id"].to_list() == ["001", "002", "003", "004", "005"]
    tasks = reader.load_sheet_by_name("tasks").to_polars()
    assert tasks.schema["seq"] == pl.Float64 and tasks["seq"].to_list()[:2] == [1.0, 2.0]


@pytest.mark.parametrize("table", ["ctas", "tasks"])
def test_run_stdout_can_carry_the_cta_tables(tmp_path: Path, table: str) -> None:
    proc = lifecycle(*run_args(tmp_path / "out", "--stdout", table))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.encode() == (tmp_path / "out" / f"{table}.csv").read_bytes()


def test_explain_names_the_ctas_and_why(tmp_path: Path) -> None:
    args = run_args(tmp_path / "out")
    args[0] = "explain"
    args = [a for a in args[: args.index("--out")]] + ["0001", "0004"]
    proc = lifecycle(*args)
    assert proc.returncode == 0, proc.stderr
    assert ("CTA created: Adoption check (rule 'adoption_check'), owner Ana Ruiz, due "
            "2026-11-15; because stage=Launched; stage_entered_at=2026-11-01; id "
            "adoption_check:0001:Launched:2026-11-01") in proc.stdout
    assert "CTA created: Save play (rule 'save_play')" in proc.stdout


def test_the_summary_counts_ctas_by_rule(tmp_path: Path) -> None:
    summary = tmp_path / "summary.json"
    proc = lifecycle(*run_args(tmp_path / "out", "--summary-json", summary))
    assert proc.returncode == 0, proc.stderr
    facts = json.loads(summary.read_text())["ctas"]
    created = pl.read_csv(tmp_path / "out" / "ctas.csv")
    tasks = pl.read_csv(tmp_path / "out" / "tasks.csv")
    assert facts["created"] == created.height and facts["closed"] == 0
    assert facts["tasks"] == tasks.height
    assert facts["by_rule"]["save_play"] == {"created": 1, "closed": 0}
    assert "CTAs" in proc.stderr and "Save play" in proc.stderr


def test_a_new_entry_date_in_the_export_is_a_new_visit(tmp_path: Path) -> None:
    s = Scenario(tmp_path)
    rows = [{"customer_id": "001", "csm": "ann", "trained": "true",
             "stage": "Launched", "stage_entered_at": "2026-10-01"}]
    s.run("2026-11-01", rows)
    again = [{**rows[0], "stage_entered_at": "2026-11-02"}]  # the CRM restarted the stage
    events = s.run("2026-11-02", again)
    assert events.select("cta_id", "status", "close_reason").rows() == [
        ("quiet:001:Launched:2026-10-01", "closed",
         "stage exit: Launched → Launched (entered again on 2026-11-02)"),
        ("quiet:001:Launched:2026-11-02", "open", None),
    ]


def test_close_when_reads_the_customer_s_columns_not_the_cta_s(tmp_path: Path) -> None:
    """A customer column named like a CTA column (status, name, type, owner, reason)."""
    rules = """
version: 1
stages: [{name: Trial}, {name: Paying}]
initial_stage: Trial
ctas:
  - {id: convert, name: Convert, on: when, stage: Trial, when: "status = 'trial'",
     close_when: "status = 'won' AND type = 'smb' AND name <> 'x'"}
"""
    s = Scenario(tmp_path, rules)
    row = {"customer_id": "001", "status": "trial", "type": "smb", "name": "Acme",
           "owner": "o", "reason": "r"}
    assert s.run("2026-11-01", [row])["status"].to_list() == ["open"]
    assert s.run("2026-11-02", [row]).height == 0
    events = s.run("2026-11-03", [{**row, "status": "won"}])
    assert events.select("status", "close_reason").rows() == [
        ("closed", "close_when: status=won; type=smb; name=Acme")]


def test_the_worklist_by_a_column(tmp_path: Path) -> None:
    """--by groups the list (a CTA's own column, or a column of --customers) and shows the
    column first; --by before a subcommand is the worklist's, and says where NAME goes."""
    state = tmp_path / "state"
    assert lifecycle(*run_args(tmp_path / "out", "--state", state)).returncode == 0
    whole = pl.read_csv(lifecycle("ctas", "--state", state, "--stdout").stdout.encode(),
                        infer_schema=False)
    by_type = lifecycle("ctas", "--state", state, "--by", "type", "--stdout")
    assert by_type.returncode == 0, by_type.stderr
    listed = pl.read_csv(by_type.stdout.encode(), infer_schema=False)
    assert listed.columns == whole.columns  # type is a column already
    types = listed["type"].to_list()
    assert types == sorted(types) and listed.sort("cta_id", "seq").equals(
        whole.sort("cta_id", "seq"))
    export = tmp_path / "segments.csv"
    pl.read_csv(DATA / "customers.csv", infer_schema=False).with_columns(
        pl.when(pl.col("arr").cast(pl.Int64) >= 20000).then(pl.lit("Enterprise"))
        .otherwise(pl.lit("SMB")).alias("segment")).write_csv(export)
    proc = lifecycle("ctas", "--state", state, "--by", "segment", "--customers", export,
                     "--stdout")
    assert proc.returncode == 0, proc.stderr
    split = pl.read_csv(proc.stdout.encode(), infer_schema=False)
    assert split.columns == ["segment", *whole.columns]
    assert split["segment"].to_list() == sorted(split["segment"].to_list())
    segments = dict(pl.read_csv(export, infer_schema=False).select("customer_id", "segment")
                    .iter_rows())
    assert all(segments[c] == s for c, s in split.select("customer_id", "segment").iter_rows())
    terminal = lifecycle("ctas", "--state", state, "--by", "segment", "--customers", export)
    assert terminal.returncode == 0 and "segment Enterprise: " in terminal.stdout
    assert "; by segment: 2 group(s)" in terminal.stderr
    unknown = lifecycle("ctas", "--state", state, "--by", "segment")
    assert unknown.returncode == 2 and "--customers PATH gives the columns" in unknown.stderr
    misplaced = lifecycle("ctas", "--state", state, "--by", "ana", "close", "x:1",
                          "--reason", "r")
    assert misplaced.returncode == 2
    assert "who did it is `lifecycle ctas close ... --by NAME`" in misplaced.stderr
