"""`lifecycle check`: findings, the compliance settings, and the command's exit codes.

The fixture in tests/data/check is a state recorded on 2026-10-31 and the export of
2026-11-01, where someone changed two stages by hand (one to a typo). Which customer
shows which finding, and why, is in the comments of `test_every_kind_of_the_fixture`.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import openpyxl
import polars as pl
import pytest
from cli_util import lifecycle, snapshot
from golden_util import assert_golden

from lifecycle_cli import RulesError, parse_rules, run
from lifecycle_cli.compliance import findings
from lifecycle_cli.compliance.findings import Context, customer_frame
from lifecycle_cli.compliance.run import (
    FINDING_SCHEMA,
    check,
    collect_findings,
    parse_fail_on,
    resolve,
)
from lifecycle_cli.ctas.decide import current
from lifecycle_cli.errors import OptionError
from lifecycle_cli.rules.load import load_rules
from lifecycle_cli.state.lock import lock

DATA = Path(__file__).resolve().parent / "data" / "check"
RULES = DATA / "rules.yaml"
USAGE = DATA / "usage.csv"
DAY1, DAY2 = dt.date(2026, 10, 31), dt.date(2026, 11, 1)
EXPORT1, EXPORT2 = DATA / "customers-2026-10-31.csv", DATA / "customers-2026-11-01.csv"


@pytest.fixture(scope="module")
def state(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The nightly run of 2026-10-31, recorded in a state folder."""
    folder = tmp_path_factory.mktemp("check") / "state"
    run(load_rules(RULES), EXPORT1, [USAGE], DAY1, state=folder)
    return folder


def check_args(*extra: str | Path, state: Path | None = None) -> list[str | Path]:
    args: list[str | Path] = ["check", "--customers", EXPORT2, "--usage", USAGE, "--rules",
                              RULES, "--as-of", DAY2.isoformat()]
    if state is not None:
        args += ["--state", state]
    return [*args, *extra]


def kinds_of(findings: pl.DataFrame) -> dict[str, list[str]]:
    """finding -> customer ids, in table order."""
    out: dict[str, list[str]] = {}
    for kind, cid in findings.select("finding", "customer_id").iter_rows():
        out.setdefault(kind, []).append(cid)
    return out


# -- the library ----------------------------------------------------------------------------


def test_every_kind_of_the_fixture(state: Path) -> None:
    result = check(load_rules(RULES), EXPORT2, [USAGE], DAY2, state_dir=state, since=DAY1)
    assert result.findings.schema == pl.Schema(FINDING_SCHEMA)
    assert kinds_of(result.findings) == {
        "unknown_stage": ["C05"],  # 'Adoptng' typed by hand in the CRM
        "entered_in_future": ["C06"],  # entered 2026-11-10
        "stuck": ["C02"],  # 61 days in Onboarding: more than 1.5 x 30
        "overdue": ["C02", "C03"],  # 61 > 30; 27 > 20 in Launched
        # CTAs 'late' and 'watch' of 10-31, due that day; C12's 'watch' closes on 11-01 as
        # it leaves Onboarding, so it is not past due
        "cta_past_due": ["C02", "C02"],
        "skipped_stage": ["C01", "C12"],  # Onboarding -> Adopting on 10-31 (state), on 11-01
        "no_owner": ["C03"],  # empty csm; C07's is empty too but Churned is exempt
        "no_renewal_date": ["C04"],  # in Renewal with no renewal_date
        "no_usage": ["C02"],  # no usage at all; C07 (Churned) is exempt
        "override": ["C05", "C11"],  # stages changed by hand since the state's run
    }
    # C01's export still says Onboarding, as it did on 10-31: the CRM lags, the state wins
    assert result.findings.filter(pl.col("customer_id") == "C01")["stage"].to_list() == [
        "Adopting"]
    assert result.failed(result.settings.fail_on) == ["unknown_stage", "stuck"]
    assert result.not_checked == {}


def test_without_from_only_the_as_of_dates_moves_count(state: Path) -> None:
    result = check(load_rules(RULES), EXPORT2, [USAGE], DAY2, state_dir=state)
    assert kinds_of(result.findings)["skipped_stage"] == ["C12"]


def test_without_a_state_no_overrides_and_the_export_is_the_start() -> None:
    result = check(load_rules(RULES), EXPORT2, [USAGE], DAY2)
    found = kinds_of(result.findings)
    assert "override" not in found and "override" in result.not_checked
    # C01 starts in Onboarding (the export) and moves today: a skip of today
    assert found["skipped_stage"] == ["C01", "C12"]


def test_a_stage_the_rules_no_longer_name_in_the_state(state: Path, tmp_path: Path) -> None:
    renamed = tmp_path / "rules.yaml"
    renamed.write_text(RULES.read_text().replace("Launched", "Live"))
    export = tmp_path / "customers.csv"
    pl.read_csv(EXPORT2, infer_schema=False).drop("stage", "stage_entered_at").write_csv(export)
    result = check(load_rules(renamed), export, [USAGE], DAY2, state_dir=state)
    unknown = result.findings.filter(pl.col("finding") == "unknown_stage")
    # C03 and C09 were Launched in the state; C06 too, but its entry date is in the future
    assert unknown["customer_id"].to_list() == ["C03", "C06", "C09"]
    assert set(unknown["detail"]) == {"closest=null; source=state"}


def test_the_check_reads_the_state_and_never_writes_it(state: Path) -> None:
    before = snapshot(state)
    check(load_rules(RULES), EXPORT2, [USAGE], DAY2, state_dir=state, since=DAY1)
    assert snapshot(state) == before


def test_a_missing_state_folder_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(Exception, match="the state folder does not exist"):
        check(load_rules(RULES), EXPORT2, [USAGE], DAY2, state_dir=tmp_path / "nope")
    assert not (tmp_path / "nope").exists()


def test_no_usage_is_not_checked_without_usage() -> None:
    result = check(load_rules(RULES), EXPORT2, [], DAY2)
    assert "no_usage" not in kinds_of(result.findings)
    assert result.not_checked["no_usage"] == "no usage export given"


def test_parse_fail_on() -> None:
    assert parse_fail_on("stuck, overdue") == ("stuck", "overdue")  # findings' order
    assert parse_fail_on("any") == findings.names()
    assert parse_fail_on("none") == ()
    with pytest.raises(OptionError) as info:
        parse_fail_on("overdue,stuk")
    [problem] = info.value.problems
    assert problem.message == "--fail-on: unknown finding 'stuk'"
    assert problem.hint == "did you mean 'stuck'?"
    assert info.value.exit_code == 2
    with pytest.raises(OptionError):
        parse_fail_on(" , ")


def test_resolve_fills_defaults_from_the_rules_and_the_export() -> None:
    text = """\
version: 1
stages: [{name: A}, {name: Renewal}, {name: Z, terminal: true}]
initial_stage: A
ctas: [{id: c, name: x, on: enter, stage: A, owner: csm}]
"""
    rules = parse_rules(text)
    s = resolve(rules, ["customer_id", "csm", "renewal_date"])
    assert (s.owner_column, s.renewal_stage, s.renewal_date_column) == (
        "csm", "Renewal", "renewal_date")
    assert (s.exempt_stages, s.strict_order, s.fail_on) == (("Z",), (), ())
    # null turns a default off; true is every stage in file order
    rules = parse_rules(text + "compliance: {owner_column: null, renewal_date_column: null, "
                        "strict_order: true, exempt_stages: [], fail_on: [any]}\n")
    s = resolve(rules, ["customer_id", "csm", "renewal_date"])
    assert (s.owner_column, s.renewal_date_column, s.exempt_stages) == (None, None, ())
    assert s.strict_order == ("A", "Renewal", "Z") and s.fail_on == findings.names()
    # a default column the export lacks is off, not an error
    assert resolve(parse_rules(text), ["customer_id"]).renewal_date_column is None


def test_cta_past_due_from_the_latest_record_of_each_cta() -> None:
    """The state's `ctas` table (from the release that creates CTAs), made by hand."""
    as_of = dt.date(2026, 11, 1)
    d = dt.date.fromisoformat

    def event(day: str, cta: str, customer: str, due: str, status: str) -> dict[str, object]:
        return {"as_of": d(day), "cta_id": cta, "rule_id": "kickoff", "customer_id": customer,
                "name": "Kickoff call", "type": "Lifecycle", "priority": "High",
                "stage": "Onboarding", "owner": "Ana", "created_on": d("2026-10-01"),
                "due_on": d(due), "reason": "", "status": status,
                "closed_on": d(day) if status == "closed" else None, "close_reason": None}

    ctas = pl.DataFrame([
        event("2026-10-01", "k1", "C1", "2026-10-08", "open"),  # past due since 10-08
        event("2026-10-01", "k2", "C2", "2026-10-08", "open"),
        event("2026-10-05", "k2", "C2", "2026-10-08", "closed"),  # closed in time
        event("2026-10-01", "k3", "C3", "2026-11-01", "open"),  # due today: not past due
        event("2026-10-01", "k4", "C9", "2026-10-31", "open"),  # a customer the export lost
        event("2026-11-02", "k1", "C1", "2026-10-08", "closed"),  # after the as-of date
    ])
    rules = parse_rules("version: 1\nstages: [{name: Onboarding, expected_days: 10}, "
                        "{name: Live}]\ninitial_stage: Onboarding\n")
    settings = resolve(rules, ["customer_id", "csm"])
    customers = customer_frame(
        pl.DataFrame({"customer_id": ["C1", "C2", "C3"], "stage": ["Live"] * 3,
                      "stage_entered_at": [d("2026-10-20")] * 3}),
        rules, settings, as_of)
    # each CTA's latest row on the as-of date, as the state view gives it
    latest = current(ctas.filter(pl.col("as_of") <= as_of))

    def context(ctas: pl.DataFrame | None) -> Context:
        return Context(as_of=as_of, rules=rules, settings=settings, start=customers,
                       after=customers, everyone=customers, ctas=ctas, state_given=True)

    past_due = findings.finding("cta_past_due")
    found = collect_findings([past_due.find(context(latest))])
    assert found.select("customer_id", "stage", "owner", "days_in_stage").rows() == [
        ("C1", "Live", "Ana", 12), ("C9", "Onboarding", "Ana", None)]
    assert found["detail"][0] == ("cta_id=k1; name=Kickoff call; rule_id=kickoff; "
                                  "due_on=2026-10-08; days_past_due=24")
    assert set(found["severity"]) == {"warning"}
    assert past_due.find(context(None)).collect().height == 0


# -- the command ----------------------------------------------------------------------------


def test_findings_match_golden(state: Path, tmp_path: Path) -> None:
    before = snapshot(state)
    proc = lifecycle(*check_args("--from", DAY1.isoformat(), "--out", tmp_path, state=state))
    assert proc.returncode == 3, proc.stderr  # the rules' fail_on: stuck, unknown_stage
    assert_golden(tmp_path / "findings.csv", "findings.csv")
    assert snapshot(state) == before
    assert "check failed: unknown_stage (1), stuck (1)" in proc.stderr


def test_exit_codes(tmp_path: Path) -> None:
    ok = lifecycle(*check_args("--fail-on", "none", "--out", tmp_path / "a"))
    assert ok.returncode == 0, ok.stderr
    assert (tmp_path / "a" / "findings.csv").exists()

    found = lifecycle(*check_args("--fail-on", "no_owner,override"))
    assert found.returncode == 3, found.stderr
    assert "check failed: no_owner (1)" in found.stderr

    quiet = lifecycle(*check_args("--fail-on", "cta_past_due", "--quiet"))
    assert quiet.returncode == 0 and quiet.stderr == ""

    typo = lifecycle(*check_args("--fail-on", "overdu", "--out", tmp_path / "b"))
    assert typo.returncode == 2
    assert "unknown finding 'overdu'" in typo.stderr and "did you mean 'overdue'?" in typo.stderr
    assert not (tmp_path / "b").exists()

    no_state = lifecycle(*check_args("--from", "2026-10-01"))
    assert no_state.returncode == 2 and "--from needs --state" in no_state.stderr

    bad_rules = tmp_path / "bad.yaml"
    bad_rules.write_text(RULES.read_text().replace("owner_column: csm", "owner_column: csn"))
    args = check_args("--out", tmp_path / "c")
    args[args.index("--rules") + 1] = bad_rules
    bad = lifecycle(*args)
    assert bad.returncode == 1 and "Traceback" not in bad.stderr
    assert "compliance.owner_column" in bad.stderr and "did you mean 'csm'?" in bad.stderr
    assert "nothing was written" in bad.stderr and not (tmp_path / "c").exists()


def test_summary_json_and_xlsx(tmp_path: Path) -> None:
    summary = tmp_path / "check.json"
    proc = lifecycle(*check_args("--format", "xlsx", "--out", tmp_path, "--summary-json",
                                 summary, "--fail-on", "overdue"))
    assert proc.returncode == 3, proc.stderr
    data = json.loads(summary.read_text())
    assert (data["status"], data["exit_code"], data["failed_on"]) == ("failed", 3, ["overdue"])
    assert data["findings"]["overdue"] == 2 and data["findings"]["cta_past_due"] == 0
    # C02 stuck, overdue and quiet, C06 entered in the future
    assert data["by_owner"][0] == {"owner": "Ben Okafor", "findings": 4, "error": 2,
                                   "warning": 2, "info": 0}
    assert data["outputs"] == [str(tmp_path / "findings.xlsx")]
    sheet = openpyxl.load_workbook(tmp_path / "findings.xlsx")["findings"]
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0] == tuple(FINDING_SCHEMA)
    assert len(rows) - 1 == sum(data["findings"].values())


def test_a_check_runs_while_a_run_holds_the_state(state: Path) -> None:
    with lock(state, "lifecycle run (a test)"):
        proc = lifecycle(*check_args("--fail-on", "none", state=state))
    assert proc.returncode == 0, proc.stderr


def test_validate_checks_the_compliance_columns_against_the_export(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES.read_text().replace(
        "owner_column: csm", "owner_column: csm\n  renewal_date_column: renewal_dat"))
    proc = lifecycle("validate", "--rules", rules, "--customers", EXPORT1)
    assert proc.returncode == 1
    assert ("compliance.renewal_date_column: the column 'renewal_dat' is not in the customers "
            "export") in proc.stderr
    assert "did you mean 'renewal_date'?" in proc.stderr


def test_run_does_not_need_the_columns_only_check_reads(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES.read_text().replace("owner_column: csm", "owner_column: owner"))
    assert run(load_rules(rules), EXPORT1, [USAGE], DAY1).customers.height == 12
    with pytest.raises(RulesError, match="the column 'owner' is not in the customers export"):
        check(load_rules(rules), EXPORT1, [USAGE], DAY1)




def test_without_usage_a_check_reads_the_metrics_the_state_kept_for_its_date(
        state: Path, tmp_path: Path) -> None:
    """`check --state` right after `run --state` for the same date, without --usage, decides
    with the metrics that run kept; with no record of the date, metrics take their defaults."""
    import shutil

    rules = load_rules(RULES)
    rules = rules.model_copy(update={"compliance": rules.compliance.model_copy(
        update={"no_usage_days": None})})  # a finding that needs the usage rows themselves
    export = tmp_path / "customers.csv"  # the export of 11-01 without its typo
    export.write_text(EXPORT2.read_text(encoding="utf-8").replace("Adoptng", "Adopting"),
                      encoding="utf-8")
    ran = shutil.copytree(state, tmp_path / "ran")
    run(rules, export, [USAGE], DAY2, state=ran)
    with_usage = check(rules, export, [USAGE], DAY2, state_dir=ran)
    kept = check(rules, export, [], DAY2, state_dir=ran)
    assert kept.findings.equals(with_usage.findings)
    assert not any("no usage export given" in w for w in kept.warnings)
    defaults = check(rules, export, [], DAY2, state_dir=state)  # the state has no 11-01
    assert not defaults.findings.equals(with_usage.findings)
    assert any("no usage export given" in w for w in defaults.warnings)


def test_by_counts_the_findings_per_group(state: Path, tmp_path: Path) -> None:
    """--by csm: a column per owner in the summary (golden), the column first in the table,
    and the counts per group add up to the kinds' counts."""
    plain = lifecycle(*check_args("--from", DAY1.isoformat(), "--out", tmp_path / "a",
                                  state=state))
    proc = lifecycle(*check_args("--from", DAY1.isoformat(), "--by", "csm", "--out",
                                 tmp_path / "b", "--summary-json", tmp_path / "b.json",
                                 state=state))
    assert proc.returncode == plain.returncode == 3, proc.stderr
    summary = proc.stderr[proc.stderr.index("Findings by csm"):proc.stderr.index("By owner")]
    assert_golden(summary, "check-by-csm.txt")
    whole = pl.read_csv(tmp_path / "a" / "findings.csv", infer_schema=False)
    split = pl.read_csv(tmp_path / "b" / "findings.csv", infer_schema=False)
    assert split.columns == ["csm", *whole.columns]
    assert split.drop("csm").equals(whole)
    assert "(none)" in split["csm"].to_list()  # the export has a customer with no csm
    doc = json.loads((tmp_path / "b.json").read_text())
    per_group = doc["by"]["groups"]
    assert doc["by"]["column"] == "csm"
    for kind, n in doc["findings"].items():
        assert sum(g.get(kind, 0) for g in per_group.values()) == n, kind
    # without --by, the summary JSON has no "by"
    assert "by" not in json.loads(lifecycle(*check_args("--summary-json", "-")).stdout)


def test_by_a_metric_and_by_mistakes(tmp_path: Path) -> None:
    proc = lifecycle(*check_args("--by", "stauts"))
    assert proc.returncode == 2 and "did you mean 'status'?" in proc.stderr
    taken = lifecycle(*check_args("--by", "stage"))
    assert taken.returncode == 2 and "the findings have a column 'stage'" in taken.stderr
    out = lifecycle(*check_args("--by", "status", "--stdout", "--fail-on", "none"))
    assert out.returncode == 0, out.stderr
    table = pl.read_csv(out.stdout.encode(), infer_schema=False)
    assert table.columns[0] == "status" and set(table["status"]) <= {"active", "churned",
                                                                     "(none)"}
