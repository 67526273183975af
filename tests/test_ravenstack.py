"""RavenStack as it ships: `rules/examples/ravenstack.yaml` reads its five CSV files with no
pre-processing (here: files of the same shape, tests/data/ravenstack/README.md)."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

import polars as pl
import pytest
from cli_util import ROOT, lifecycle

from lifecycle_cli.state.view import StateView

DATA = Path(__file__).resolve().parent / "data" / "ravenstack"
RULES = ROOT / "rules" / "examples" / "ravenstack.yaml"
INPUTS: list[str | Path] = [
    "--rules", RULES,
    "--customers", DATA / "ravenstack_accounts.csv",
    "--lookup", f"subscriptions={DATA / 'ravenstack_subscriptions.csv'}",
    "--usage", f"feature_usage={DATA / 'ravenstack_feature_usage.csv'}",
    "--usage", f"tickets={DATA / 'ravenstack_support_tickets.csv'}",
    "--usage", f"churn_events={DATA / 'ravenstack_churn_events.csv'}",
]
START, END = dt.date(2024, 8, 1), dt.date(2024, 9, 30)


def csv(name: str) -> pl.DataFrame:
    return pl.read_csv(DATA / f"ravenstack_{name}.csv", infer_schema=False)


@pytest.fixture(scope="module")
def state(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A backfill over a stretch of 2024, as docs/sources.md runs it."""
    folder = tmp_path_factory.mktemp("ravenstack")
    proc = lifecycle("backfill", *INPUTS, "--from", START.isoformat(), "--to",
                     END.isoformat(), "--state", folder / "state", "--quiet",
                     "--summary-json", folder / "backfill.json")
    assert proc.returncode == 0, proc.stderr
    return folder / "state"


def test_the_example_rules_validate_against_the_files() -> None:
    proc = lifecycle("validate", *INPUTS, "--as-of", END.isoformat())
    assert proc.returncode == 0, proc.stderr
    assert "5 stages, 6 transition rules, 3 derived values, 11 metrics, 3 CTAs" in proc.stderr
    assert "checked against 40 customers" in proc.stderr
    # the one usage row whose subscription the lookup lacks (README.md)
    assert "have a subscription_id that the lookup 'subscriptions'" in proc.stderr


def test_a_backfill_over_2024_and_its_report(state: Path, tmp_path: Path) -> None:
    view = StateView.open(state)
    assert view.first == START and view.latest == END and len(view.days) == 61
    moves = view.history("transitions", START, END)
    # every stage is reached, by every kind of rule
    assert set(moves["rule_id"]) == {"initial", "signed_up", "adopted", "gone_quiet",
                                     "churned", "won_back"}
    proc = lifecycle("report", "--rules", RULES, "--state", state, "--customers",
                     DATA / "ravenstack_accounts.csv", "--value", "seats", "--csv",
                     tmp_path / "report", "--html", tmp_path / "report.html")
    assert proc.returncode == 0, proc.stderr
    assert "Distribution on 2024-09-30" in proc.stdout
    distribution = pl.read_csv(tmp_path / "report" / "distribution.csv")
    assert distribution["customers"].sum() == 40
    stages = view.stages(END)
    assert stages is not None
    assert dict(distribution.select("stage", "customers").iter_rows()) == {
        s: stages.filter(pl.col("stage") == s).height for s in distribution["stage"]}
    seats = csv("accounts").select(pl.col("seats").cast(pl.Int64).sum()).item()
    assert distribution["seats"].sum() == seats
    flows = pl.read_csv(tmp_path / "report" / "flows.csv")
    assert flows["customers"].sum() == moves.height
    assert (tmp_path / "report.html").stat().st_size > 10_000


def test_the_last_day_equals_a_run_and_a_join_by_hand(state: Path, tmp_path: Path) -> None:
    """The backfill's last day is what a nightly run for that day decides (run again on the
    state, it starts from the day before), and its metrics are what a hand-made join of
    the raw files gives."""
    copy = tmp_path / "state"
    shutil.copytree(state, copy)
    proc = lifecycle("run", *INPUTS, "--as-of", END.isoformat(), "--out", tmp_path / "out",
                     "--state", copy, "--summary-json", tmp_path / "run.json")
    assert proc.returncode == 0, proc.stderr
    out = pl.read_csv(tmp_path / "out" / "customers.csv", infer_schema=False)
    # the export's columns first, unchanged; stage and stage_entered_at appended
    assert out.columns[:12] == [*csv("accounts").columns, "stage", "stage_entered_at"]
    assert out.select(csv("accounts").columns).equals(csv("accounts"))
    # uses in the last 30 days, by hand: usage -> subscriptions -> account
    since = (END - dt.timedelta(days=29)).isoformat()
    by_hand = (csv("feature_usage").join(csv("subscriptions"), on="subscription_id")
               .filter(pl.col("usage_date").is_between(pl.lit(since), pl.lit(END.isoformat())))
               .group_by("account_id").len())
    got = out.select("account_id", pl.col("uses_30d").cast(pl.Int64)).join(
        by_hand, on="account_id", how="left").fill_null(0)
    assert got["uses_30d"].to_list() == got["len"].to_list()
    assert got["uses_30d"].sum() > 0
    summary = json.loads((tmp_path / "run.json").read_text())
    rows = summary["rows"]["sources"]
    in_time = csv("feature_usage").filter(pl.col("usage_date") <= END.isoformat()).height
    assert rows["feature_usage"]["rows"] == in_time
    assert rows["feature_usage"]["unmatched_key"] == 1
    assert rows["tickets"]["rows"] == csv("support_tickets").filter(
        pl.col("submitted_at") <= END.isoformat()).height
    # the state's stages for the last day are the run's
    stages = StateView.open(state).stages(END)
    assert stages is not None
    assert dict(stages.select("customer_id", "stage").iter_rows()) == dict(
        out.select("account_id", "stage").iter_rows())
