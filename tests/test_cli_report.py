"""The real `lifecycle report` command: streams, files, escaping, determinism, exit codes."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import polars as pl
import pytest
from cli_util import AS_OF, DATA, FIXTURE, RULES, lifecycle, snapshot
from report_util import EVIL_NAME, EVIL_OWNER, FORMULA, build_state, evil_export

SHEETS = ["about", "distribution", "flows", "flow_matrix", "funnel", "funnel_outflows",
          "time_in_stage", "survival", "overdue", "overdue_customers", "visits", "ctas"]


@pytest.fixture(scope="module")
def state(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_state(tmp_path_factory.mktemp("cli-report"))


def on_state(state: Path, *extra: str | Path) -> list:
    return ["report", "--state", state, "--rules", RULES, "--customers", DATA / "customers.csv",
            *extra]


def test_tables_go_to_stdout_and_the_summary_to_stderr(state: Path, tmp_path: Path) -> None:
    proc = lifecycle(*on_state(state), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert list(tmp_path.iterdir()) == []  # no file asked for, none written
    out = proc.stdout
    for title in ("Distribution on 2026-12-15",
                  "Moves 2026-11-01 to 2026-12-15: from (rows) to (columns), every move counted",
                  "Funnel along the main path Onboarding → Launched → Adopting → Renewal: "
                  "customers", "Outflows from the main path: customers",
                  "Time in stage (Kaplan-Meier", "Overdue and stuck by stage and csm",
                  "Overdue customers, stuck first"):
        assert title in out
    # the page says what the funnel and the flows count, and what time in stage leaves out
    assert "The funnel counts customers" in out and "count moves" in out
    assert "visits that began and ended on the same day" in out
    assert "need at least 10 visits that ended" in out
    assert re.search(r"Onboarding +│ +45 │ +3 │ +1 │ +— │ +— │ +— │ +2 │ +1 │ +0 │ +too few "
                     r"exits \(1 < 10\)", out)
    assert re.search(r"Adopting +│ +5 │ +41\.7% │ +239,000 │ +70\.7%", out)
    assert re.search(r"Will Churn +│ +30 │ +4 │ +3 │ +— │ +— │ +— │ +1 │ +0 │ +0 │ +too few", out)
    assert "Acme Analytics" in out
    err = proc.stderr
    assert "12 customers on 2026-12-15; 12 moves from 2026-11-01 (3 runs); 2 overdue" in err
    assert "CTAs: the rules have none" not in err
    assert re.search(r"Risk +│ +Ben Okafor +│ +3 │ +0 │ +3 │ +1", out)  # CTAs by type and owner
    assert "Distribution" not in err and "Traceback" not in err


def test_a_run_in_memory_without_a_state(tmp_path: Path) -> None:
    proc = lifecycle("report", *FIXTURE, "--rules", RULES, "--as-of", AS_OF, "--quiet",
                     "--csv", tmp_path / "csv")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == ""
    # warnings of the run still reach standard error with --quiet
    assert "warning: 1 customer(s) have a stage but no stage_entered_at" in proc.stderr
    written = sorted(p.name for p in (tmp_path / "csv").iterdir())
    assert written == sorted(f"{s}.csv" for s in SHEETS)
    flows = (tmp_path / "csv" / "flows.csv").read_text().splitlines()
    assert flows[0] == "from_stage,to_stage,moves,by_hand,customers"
    assert "(new),Onboarding,1,0,1" in flows


def test_html_xlsx_and_csv_are_byte_identical_for_the_same_state(state: Path,
                                                                 tmp_path: Path) -> None:
    for run in ("a", "b"):
        proc = lifecycle(*on_state(state, "--html", tmp_path / run / "report.html", "--xlsx",
                                   tmp_path / run / "report.xlsx", "--csv",
                                   tmp_path / run / "csv", "--quiet"))
        assert proc.returncode == 0, proc.stderr
    a, b = snapshot(tmp_path / "a"), snapshot(tmp_path / "b")
    assert a == b
    assert {"report.html", "report.xlsx", "csv/distribution.csv"} <= set(a)


def test_the_html_is_self_contained_and_escapes_the_data(tmp_path: Path) -> None:
    customers, rules = evil_export(tmp_path)
    page = tmp_path / "report.html"
    proc = lifecycle("report", "--customers", customers, "--rules", rules, "--as-of",
                     "2026-11-01", "--html", page)
    assert proc.returncode == 0, proc.stderr
    html = page.read_text()
    assert EVIL_NAME not in html and EVIL_OWNER not in html and "<b>Markup" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&lt;img src=x onerror=&quot;alert(2)&quot;&gt;" in html
    assert "&lt;b&gt;Markup&lt;/b&gt; &amp; co" in html  # the rules' name too
    assert "<script" not in html.lower()
    # nothing from elsewhere: every link is to the page itself, no source is fetched
    assert re.findall(r'href="([^"]*)"', html) and all(
        h.startswith("#") for h in re.findall(r'href="([^"]*)"', html))
    assert not re.search(r"<[^>]*\ssrc=", html)  # no tag fetches a source
    assert "Content-Security-Policy" in html and "default-src 'none'" in html
    # the terminal shows the names as they are
    assert EVIL_NAME in proc.stdout


def test_the_xlsx_opens_in_a_real_reader_with_a_sheet_per_table(tmp_path: Path) -> None:
    import openpyxl

    customers, rules = evil_export(tmp_path)
    book = tmp_path / "out" / "report.xlsx"
    proc = lifecycle("report", "--customers", customers, "--rules", rules, "--as-of",
                     "2026-11-01", "--xlsx", book)
    assert proc.returncode == 0, proc.stderr
    workbook = openpyxl.load_workbook(book)
    assert workbook.sheetnames == SHEETS
    dist = workbook["distribution"]
    assert [c.value for c in dist[1]] == ["stage", "customers", "share", "arr", "arr_share",
                                         "overdue", "stuck"]
    assert [c.value for c in dist[2]] == ["Onboarding", 2, 0.5, 300, 0.3, 2, 2]
    assert dist.freeze_panes == "A2"
    [table] = dist.tables.values()  # header filters over the whole table
    assert table.ref == "A1:G4" and table.autoFilter.ref == table.ref
    late = workbook["overdue_customers"]
    header = [c.value for c in late[1]]
    rows = [dict(zip(header, r, strict=True)) for r in late.iter_rows(min_row=2)]
    by_id = {r["customer_id"].value: r for r in rows}
    assert sorted(by_id) == ["E1", "E2"]
    assert by_id["E1"]["name"].value == EVIL_NAME
    assert by_id["E2"]["name"].value == FORMULA and by_id["E2"]["name"].data_type == "s"
    assert by_id["E1"]["days_in_stage"].value == 61 and by_id["E1"]["stuck"].value is True
    assert by_id["E1"]["stage_entered_at"].is_date


def test_fastexcel_reads_the_workbook_too(tmp_path: Path) -> None:
    import fastexcel

    book = tmp_path / "report.xlsx"
    proc = lifecycle("report", *FIXTURE, "--rules", RULES, "--as-of", AS_OF, "--xlsx", book,
                     "--quiet")
    assert proc.returncode == 0, proc.stderr
    reader = fastexcel.read_excel(book)
    assert reader.sheet_names == SHEETS
    funnel = reader.load_sheet_by_name("funnel").to_polars()
    assert funnel.columns[:3] == ["stage", "next_stage", "customers"]
    assert funnel.height == 4  # the main path: Onboarding to Renewal


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--rules", RULES], "give --state DIR"),
        ([*FIXTURE, "--rules", RULES, "--from", "2026-11-01"], "--from and --to choose days"),
        ([*FIXTURE, "--rules", RULES, "--value", "revenue"], "--value revenue: the customers"),
        ([*FIXTURE, "--rules", RULES, "--stuck-factor", "0.5"], "at least 1"),
        ([*FIXTURE, "--rules", RULES, "--as-of", "2026-13-01"], "is not a date"),
        ([*FIXTURE, "--rules", RULES, "--top", "0"], "--top"),
    ],
)
def test_command_line_mistakes_exit_2(args: list, message: str) -> None:
    proc = lifecycle("report", *args)
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr and "Traceback" not in proc.stderr


def test_state_option_mistakes_exit_2(state: Path, tmp_path: Path) -> None:
    for extra, message in (
        (["--from", "2026-11-03", "--to", "2026-11-02"], "--from 2026-11-03 is after --to"),
        (["--usage", DATA / "usage.csv"], "--usage goes with a run in memory"),
        (["--as-of", AS_OF], "with --state use --to"),
        (["--owner-column", "owner"], "--owner-column owner: the customers export has no"),
    ):
        proc = lifecycle(*on_state(state, *extra, "--html", tmp_path / "r.html"))
        assert proc.returncode == 2, proc.stderr
        assert message in proc.stderr and "Traceback" not in proc.stderr
        assert not (tmp_path / "r.html").exists()


def test_bad_data_exits_1_and_writes_nothing(state: Path, tmp_path: Path) -> None:
    page = tmp_path / "r.html"
    cases = [
        (["report", "--state", tmp_path / "missing", "--rules", RULES],
         "the state folder does not exist"),
        (on_state(state, "--from", "2027-01-01"), "the state has no run from 2027-01-01"),
        (on_state(state, "--value", "name"), "'name' holds text, not numbers"),
        (["report", "--state", state, "--rules", tmp_path / "nope.yaml"], "rules file not found"),
    ]
    for args, message in cases:
        proc = lifecycle(*args, "--html", page)
        assert proc.returncode == 1, proc.stderr
        assert message in proc.stderr and "nothing was written" in proc.stderr
        assert "Traceback" not in proc.stderr
        assert not page.exists()


def test_an_output_never_replaces_an_input(state: Path, tmp_path: Path) -> None:
    customers, rules = evil_export(tmp_path)
    before = customers.read_bytes()
    proc = lifecycle("report", "--customers", customers, "--rules", rules, "--html", customers)
    assert proc.returncode == 1
    assert "would replace the input file" in proc.stderr
    assert customers.read_bytes() == before
    index = snapshot(state)
    proc = lifecycle(*on_state(state, "--xlsx", state / "state.json"))
    assert proc.returncode == 1 and "would replace the input file" in proc.stderr
    assert snapshot(state) == index


def test_help_has_an_example() -> None:
    proc = lifecycle("report", "--help")
    assert proc.returncode == 0
    assert "Example" in proc.stdout and "--html" in proc.stdout


def test_value_takes_a_metric_the_state_kept_or_the_run_computed(state: Path,
                                                                  tmp_path: Path) -> None:
    """`--value minutes_30d` sums a metric per stage: with --state, the metrics the state
    kept for the period's last day (no export needed); in memory, the run's."""
    from lifecycle_cli import StateView

    proc = lifecycle("report", "--state", state, "--rules", RULES, "--value", "minutes_30d",
                     "--to", "2026-11-02", "--quiet", "--csv", tmp_path / "state")
    assert proc.returncode == 0, proc.stderr
    table = pl.read_csv(tmp_path / "state" / "distribution.csv")
    view, day = StateView.open(state), dt.date(2026, 11, 2)
    kept = view.stages(day).join(view.metrics(day), on="customer_id")
    want = dict(kept.group_by("stage").agg(pl.col("minutes_30d").sum()).iter_rows())
    got = {s: v for s, v in table.select("stage", "minutes_30d").iter_rows() if s in want}
    assert got == pytest.approx(want)
    assert table["minutes_30d"].sum() > 0
    proc = lifecycle("report", *FIXTURE, "--rules", RULES, "--as-of", AS_OF, "--value",
                     "logins_30d", "--quiet", "--csv", tmp_path / "run")
    assert proc.returncode == 0, proc.stderr
    assert "logins_30d_share" in pl.read_csv(tmp_path / "run" / "distribution.csv").columns
    proc = lifecycle("report", "--state", state, "--rules", RULES, "--value", "minutes_3d")
    assert proc.returncode == 2
    assert "--value minutes_3d: the customers export has no such column, and no metric has " \
        "this name" in proc.stderr and "did you mean 'minutes_30d'?" in proc.stderr


def test_top_cuts_the_cta_table_too(state: Path) -> None:
    full = lifecycle(*on_state(state))
    rows = re.findall(r"^ (?:Lifecycle|Risk|Renewal) +│",
                      full.stdout.split("by type and owner")[1], re.M)
    assert len(rows) > 2
    proc = lifecycle(*on_state(state, "--top", "2"))
    assert proc.returncode == 0, proc.stderr
    after = proc.stdout.split("by type and owner")[1]
    assert len(re.findall(r"^ (?:Lifecycle|Risk|Renewal) +│", after, re.M)) == 2
    assert f"... and {len(rows) - 2:,} more rows (--top, --xlsx, --csv)" in after


# -- --by COLUMN: the report split by a customer column -------------------------------------

SAMPLE = Path(__file__).resolve().parents[1] / "sample_data"
ON_SAMPLE = ["report", "--customers", SAMPLE / "customers.csv", "--usage", SAMPLE / "usage.csv",
             "--rules", RULES, "--as-of", AS_OF]


def test_by_segment_puts_the_groups_side_by_side_and_first_in_the_files(tmp_path: Path
                                                                        ) -> None:
    from golden_util import assert_golden

    proc = lifecycle(*ON_SAMPLE, "--by", "segment", "--csv", tmp_path / "csv", "--xlsx",
                     tmp_path / "r.xlsx", "--html", tmp_path / "r.html")
    assert proc.returncode == 0, proc.stderr
    for title in ("Customers by stage and segment on 2026-11-01 (share of the group)",
                  "Funnel by segment", "Time in stage by segment: median / p90 days"):
        assert title in proc.stdout
    header = next(line for line in proc.stdout.splitlines()
                  if "Enterprise" in line and "Mid-Market" in line)
    assert header.split()[:1] == ["stage"]  # the groups are the columns
    for name in ("distribution", "funnel", "time_in_stage", "overdue", "flows",
                 "flow_matrix", "funnel_outflows", "survival", "overdue_customers", "ctas",
                 "visits"):
        table = pl.read_csv(tmp_path / "csv" / f"{name}.csv", infer_schema=False)
        assert table.columns[0] == "segment", name
        assert set(table["segment"]) <= {"Enterprise", "Mid-Market", "SMB"}, name
    for name in ("distribution", "time_in_stage", "funnel"):
        assert_golden(tmp_path / "csv" / f"{name}.csv", f"report/by-segment/{name}.csv")
    about = dict(pl.read_csv(tmp_path / "csv" / "about.csv").iter_rows())
    assert about["by"] == "segment" and about["groups"] == "Enterprise, Mid-Market, SMB"
    book = pl.read_excel(tmp_path / "r.xlsx", sheet_name="distribution")
    assert book.columns[:2] == ["segment", "stage"] and book.height == 3 * 6
    page = (tmp_path / "r.html").read_text()
    assert "Distribution on 2026-11-01 by segment" in page
    assert "Customers by stage and segment" in page and "<th class=\"\">Mid-Market</th>" in page


def test_without_by_nothing_changes(tmp_path: Path) -> None:
    plain = lifecycle(*ON_SAMPLE, "--csv", tmp_path / "a")
    assert plain.returncode == 0, plain.stderr
    assert "segment" not in plain.stdout.splitlines()[3]
    about = pl.read_csv(tmp_path / "a" / "about.csv")
    assert "by" not in about["item"].to_list()
    assert pl.read_csv(tmp_path / "a" / "distribution.csv").columns[0] == "stage"


def test_by_on_a_state_takes_the_export_s_column(state: Path, tmp_path: Path) -> None:
    proc = lifecycle(*on_state(state, "--by", "csm", "--csv", tmp_path / "csv"))
    assert proc.returncode == 0, proc.stderr
    dist = pl.read_csv(tmp_path / "csv" / "distribution.csv")
    assert dist.columns[:2] == ["csm", "stage"]
    assert "(none)" in dist["csm"].to_list()  # 0005 has no csm
    assert lifecycle(*on_state(state, "--csv", tmp_path / "all")).returncode == 0
    whole = pl.read_csv(tmp_path / "all" / "distribution.csv")
    summed = dist.group_by("stage", maintain_order=True).agg(pl.col("customers").sum())
    assert summed.equals(whole.select("stage", "customers"))


@pytest.mark.parametrize(("by", "message"), [
    ("segmnt", "did you mean 'segment'?"),
    ("customer_id", "500 different values; a split shows at most 50 groups"),
    ("arr", "choose a column with few values, such as csm, "),
])
def test_by_mistakes_exit_2_with_what_would_do(by: str, message: str, tmp_path: Path) -> None:
    proc = lifecycle(*ON_SAMPLE, "--by", by, "--csv", tmp_path / "csv")
    assert proc.returncode == 2 and message in proc.stderr, proc.stderr
    if by == "arr":  # the columns with few values
        assert {"segment", "plan"} <= set(proc.stderr.split("such as ")[1].strip().split(", "))
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "csv").exists()


def test_by_a_column_the_tables_have_is_refused(state: Path) -> None:
    proc = lifecycle(*on_state(state, "--by", "name"))
    assert proc.returncode == 2
    assert "--by name: the report's tables have a column 'name' of their own" in proc.stderr


def test_a_csv_folder_in_the_way_writes_no_html_or_workbook(state: Path, tmp_path: Path
                                                            ) -> None:
    taken = tmp_path / "taken"
    taken.write_text("a file where the folder should go")
    proc = lifecycle("report", "--state", state, "--rules", RULES, "--html",
                     tmp_path / "r.html", "--xlsx", tmp_path / "r.xlsx", "--csv", taken)
    assert proc.returncode == 1, proc.stderr
    assert "not a folder" in proc.stderr
    assert not (tmp_path / "r.html").exists() and not (tmp_path / "r.xlsx").exists()
