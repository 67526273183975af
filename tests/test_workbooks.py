"""Every workbook the tool writes, as LibreOffice displays it: each is converted to PDF by
headless LibreOffice (one conversion for all of them) and the text on the pages is
checked: no ``###`` (a column too narrow for its number), money with two decimals, shares
as percentages, TRUE/FALSE, and few pages.

Without LibreOffice (and poppler's pdftotext) these tests are skipped; in CI (CI=1) they
fail instead: .ci/run installs both.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pytest
from cli_util import AS_OF, DATA, RULES, lifecycle

from lifecycle_cli.report.build import build_report, history_from_state
from lifecycle_cli.rules.load import load_rules

PROGRAMS = {"soffice": ("soffice", "libreoffice"), "pdftotext": ("pdftotext",),
            "pdfinfo": ("pdfinfo",)}
MONEY = [29.85, 1889.5, 42.0, 19.99, 105.65, 74.35, 1397.48, 20.05, 56.1, 99.65, 8.7, 45.25]


def program(name: str) -> str:
    found = next((path for n in PROGRAMS[name] if (path := shutil.which(n))), None)
    if found is None:
        if os.environ.get("CI"):
            pytest.fail(f"CI must render the workbooks with LibreOffice: .ci/run installs "
                        f"libreoffice-calc-nogui and poppler-utils ({name} is missing)")
        pytest.skip(f"no {name} on this machine (apt-get install libreoffice-calc-nogui "
                    "poppler-utils): the workbooks are not rendered")
    return found


@dataclass
class Rendered:
    """A workbook as LibreOffice prints it."""

    book: Path
    sheets: int
    pages: int
    text: str  # the pages' text, laid out (pdftotext -layout)


def money_export(folder: Path) -> Path:
    """The fixture's customers with a column of monthly charges in dollars and cents."""
    customers = pl.read_csv(DATA / "customers.csv", infer_schema=False)
    path = folder / "customers.csv"
    customers.with_columns(pl.Series("monthly_charges", [str(m) for m in MONEY])).write_csv(path)
    return path


def make_workbooks(folder: Path) -> dict[str, Path]:
    """Every workbook the tool writes, from the fixture: run, report, check, ctas, diff."""
    customers = money_export(folder)
    common = ["--customers", customers, "--usage", DATA / "usage.csv"]
    state = folder / "state"
    books = {
        "run": (["run", *common, "--rules", RULES, "--as-of", AS_OF, "--state", state,
                 "--out", folder / "run", "--format", "xlsx"], folder / "run" / "lifecycle.xlsx"),
        "report": (["report", "--state", state, "--rules", RULES, "--customers", customers,
                    "--value", "monthly_charges", "--xlsx", folder / "report.xlsx", "--quiet"],
                   folder / "report.xlsx"),
        "check": (["check", *common, "--rules", RULES, "--as-of", AS_OF, "--out",
                   folder / "check", "--format", "xlsx", "--fail-on", "none"],
                  folder / "check" / "findings.xlsx"),
        "ctas": (["ctas", "--state", state, "--out", folder / "ctas", "--format", "xlsx"],
                 folder / "ctas" / "worklist.xlsx"),
        "diff": (["diff", *common, "--rules", RULES, "--rules", DATA / "rules-draft.yaml",
                  "--as-of", AS_OF, "--out", folder / "diff", "--format", "xlsx"],
                 folder / "diff" / "diff.xlsx"),
    }
    for args, book in books.values():
        proc = lifecycle(*args)
        assert proc.returncode == 0, proc.stderr
        assert book.exists()
    return {name: book for name, (_, book) in books.items()}


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Rendered]:
    soffice, pdftotext, pdfinfo = program("soffice"), program("pdftotext"), program("pdfinfo")
    folder = tmp_path_factory.mktemp("workbooks")
    books = make_workbooks(folder)
    pdfs = folder / "pdf"
    # one LibreOffice for every workbook, with a profile of its own
    proc = subprocess.run(
        [soffice, f"-env:UserInstallation={(folder / 'profile').as_uri()}", "--headless",
         "--convert-to", "pdf", "--outdir", pdfs, *books.values()],
        capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    out = {}
    for name, book in books.items():
        pdf = pdfs / f"{book.stem}.pdf"
        assert pdf.exists(), proc.stdout + proc.stderr
        info = subprocess.run([pdfinfo, pdf], capture_output=True, text=True, check=True)
        pages = int(re.search(r"^Pages:\s+(\d+)", info.stdout, re.M).group(1))  # type: ignore[union-attr]
        text = subprocess.run([pdftotext, "-layout", pdf, "-"], capture_output=True,
                              text=True, check=True).stdout
        sheets = len(pl.read_excel(book, sheet_id=0))
        out[name] = Rendered(book, sheets, pages, text)
    return out


@pytest.mark.parametrize("name", ["run", "report", "check", "ctas", "diff"])
def test_no_number_is_too_wide_for_its_column_and_every_sheet_fits_a_page(
        rendered: dict[str, Rendered], name: str) -> None:
    shown = rendered[name]
    assert "###" not in shown.text
    # landscape, one page wide: the fixture's small sheets take a page each
    assert shown.pages == shown.sheets, shown.text
    # every sheet's name and page number in the footer
    assert f"Page 1 of {shown.pages}" in shown.text


def test_money_shows_two_decimals_and_booleans_true_false(rendered: dict[str, Rendered]
                                                          ) -> None:
    text = rendered["run"].text
    for shown in ("29.85", "1,889.50", "42.00", "1,397.48", "12,000", "120,000"):
        assert re.search(rf"(?<![\d,.]){re.escape(shown)}(?![\d.])", text), shown
    assert "29.850" not in text and "1889.5" not in text
    assert re.search(r"\bTRUE\b", text) and re.search(r"\bFALSE\b", text)
    assert "2027-09-01" in text  # dates as dates


def test_the_report_shows_shares_and_values_as_the_terminal_does(
        rendered: dict[str, Rendered]) -> None:
    text = rendered["report"].text
    state = rendered["run"].book.parent.parent / "state"
    customers = rendered["run"].book.parent.parent / "customers.csv"
    proc = lifecycle("report", "--state", state, "--rules", RULES, "--customers", customers,
                     "--value", "monthly_charges")
    assert proc.returncode == 0, proc.stderr
    shares = set(re.findall(r"\d+\.\d%", proc.stdout))
    assert len(shares) > 5
    for share in shares:  # the terminal's 55.4% is 55.4% in the workbook, not 0.554
        assert share in text, share
    # the value column summed per stage, as money: 1,889.50, not 1889.5 or 1,889.500
    history = history_from_state(state, load_rules(RULES), customers=customers)
    sums = build_report(history, value="monthly_charges").distribution["monthly_charges"]
    assert sums.max() > 1000
    for value in sums:
        assert re.search(rf"(?<![\d,.]){re.escape(f'{value:,.2f}')}(?![\d.])", text), value


def test_the_worklist_check_and_diff_show_dates_and_counts(rendered: dict[str, Rendered]
                                                           ) -> None:
    assert re.search(r"\b2026-11-\d\d\b", rendered["ctas"].text)
    assert re.search(r"\b2026-11-01\b", rendered["check"].text)
    assert "customer_id" in rendered["diff"].text
