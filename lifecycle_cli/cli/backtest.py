"""`lifecycle backtest`: replay the rules over history and score their predictions against
what really happened."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ..errors import OptionError, RulesError
from ..files import write_text_atomic
from ..render.backtest import DEFINITIONS, render_backtest_html, side_by_side_frame
from ..render.tables import check_folder, check_not_inputs, write_tables
from ..report.backtest import Backtest
from ..rules.load import load_rules
from ..rules.model import Rules
from . import common
from .render import _show


def register(app: typer.Typer) -> None:
    app.command(
        "backtest",
        epilog=common.examples(
            "lifecycle backtest --customers sample_data/customers.csv --usage "
            "sample_data/usage.csv --rules rules/default.yaml --from 2026-10-01 --to "
            "2026-11-01 --outcomes sample_data/churn_events.csv --html out/backtest.html",
            "mkdir -p out && sed 's/< 40/< 50/' rules/default.yaml > out/draft.yaml",
            "lifecycle backtest --customers sample_data/customers.csv --usage "
            "sample_data/usage.csv --rules rules/default.yaml --rules out/draft.yaml --from "
            "2026-10-01 --to 2026-11-01 --outcomes sample_data/churn_events.csv --csv "
            "out/backtest",
        ),
    )(backtest)


def _option(flag: str, text: str, metavar: str, **extra: Any) -> Any:
    return typer.Option(flag, help=text, metavar=metavar, show_default=False, **extra)


@common.handle_errors
def backtest(
    customers: common.CustomersOpt,
    rules: Annotated[
        list[Path],
        typer.Option("--rules", "-r", help="The rules file (YAML), with a predictions: "
                     "section. Give it twice to compare two files side by side.",
                     show_default=False, metavar="PATH"),
    ],
    start: Annotated[dt.date, _option(
        "--from", "The first as-of date to replay.", "YYYY-MM-DD", parser=common.parse_date)],
    end: Annotated[dt.date, _option(
        "--to", "The last as-of date to replay (included).", "YYYY-MM-DD",
        parser=common.parse_date)],
    outcomes: Annotated[Path, _option(
        "--outcomes", "What really happened: one row per event with the customer id, the "
        "outcome and its date (.csv, .xlsx, .parquet; columns mapped in the rules' columns: "
        "outcomes:).", "PATH")],
    usage: common.UsageOpt = None,
    lookup: common.LookupOpt = None,
    attributes: common.AttributesOpt = None,
    sheet: common.SheetOpt = None,
    outcome: Annotated[str | None, _option(
        "--outcome", "Every row of the outcomes file is this outcome (e.g. churned for a "
        "churn_events file); its outcome column, if any, is not read. Default: the file's "
        "outcome column, else the one outcome the predictions name.", "NAME")] = None,
    outcomes_until: Annotated[dt.date | None, _option(
        "--outcomes-until", "The last day the outcomes file covers: flags whose horizon "
        "ends after it are unresolved, not false. Default: its latest date.", "YYYY-MM-DD",
        parser=common.parse_date)] = None,
    csv: Annotated[Path | None, _option(
        "--csv", "Write summary.csv, flags.csv and missed.csv into this folder.",
        "DIR")] = None,
    html: Annotated[Path | None, _option(
        "--html", "Write the backtest as one self-contained HTML file.", "FILE")] = None,
    encoding: common.EncodingOpt = None,
    quiet: common.TablesQuietOpt = False,
) -> None:
    """Replay the rules day by day over history, without any state, and score each
    prediction (a stage that predicts an outcome within a horizon) against what really
    happened: precision, recall, lead time, and the outcomes it missed.

    Give --rules twice to compare two rules files side by side. The tables go to standard
    output; the summary and warnings to standard error; --csv and --html write files.
    """
    if len(rules) > 2:
        raise OptionError(f"give --rules once, or twice to compare two files (got {len(rules)})")
    rule_sets = _load_all(rules)
    targets = [p for p in (html,) if p is not None]
    inputs = [customers, outcomes, *rules]
    inputs += [Path(p) for p in common.tables(lookup, attributes, sheet).paths]
    check_not_inputs(targets, inputs)
    from ..jobs.backtest import backtest as replay

    written: list[Path] = []
    with common.progress(not quiet) as step:
        result = replay(rule_sets, customers, usage or [], start, end, outcomes,
                        outcome=outcome, observed_until=outcomes_until, encoding=encoding,
                        progress=step, tables=common.tables(lookup, attributes, sheet))
        if csv is not None:  # before the HTML: nothing is written when the folder is wrong
            check_folder(csv, result.tables, inputs=inputs)
        if html is not None:
            step("writing the HTML")
            written.append(write_text_atomic(html, render_backtest_html(result)))
        if csv is not None:
            step("writing CSV files")
            written += write_tables(result.tables, csv, "csv", inputs=inputs)
    if not quiet:
        tables(common.out, result)
        summary(common.err, result, written)
    else:
        for warning in result.warnings:
            common.err.print(f"[yellow]warning:[/] {escape(warning)}")


def _load_all(paths: list[Path]) -> list[tuple[str, Rules]]:
    """Every rules file, or every problem in any of them at once."""
    loaded: list[tuple[str, Rules]] = []
    problems = []
    for path in paths:
        try:
            loaded.append((str(path), load_rules(path)))
        except RulesError as error:
            problems += error.problems
    if problems:
        raise RulesError(problems)
    if len(paths) == 2 and paths[0] == paths[1]:
        raise OptionError("the two --rules are the same file: give two files to compare")
    return loaded


def tables(console: Console, result: Backtest) -> None:
    """Each prediction's measures, the rules files side by side (standard output)."""
    console.print(f"[bold]Backtest[/] {result.start} to {result.end} ({result.days:,} days), "
                  f"{result.customers:,} customers; outcomes known up to "
                  f"{result.observed_until}")
    for prediction in result.predictions:
        row = result.summary.filter(result.summary["prediction"] == prediction).row(
            0, named=True)
        title = (f"{prediction}: {row['stages']} predicts {row['outcome']} within "
                 f"{row['horizon_days']} days")
        frame = side_by_side_frame(result, prediction)
        table = Table(title=escape(title), title_justify="left", show_edge=False)
        table.add_column("measure")
        for name in result.rules:
            table.add_column(escape(name), justify="right")
        for values in frame.iter_rows():
            table.add_row(*(escape(v) for v in values))
        _show(console, table)
    console.print()
    for term, meaning in DEFINITIONS:
        if term in ("flag", "precision", "recall", "unresolved"):
            console.print(f"[dim]{escape(term)}: {escape(meaning)}[/]",
                          soft_wrap=not console.is_terminal)


def summary(console: Console, result: Backtest, written: list[Path]) -> None:
    """Totals, warnings and the files written (standard error)."""
    for row in result.summary.iter_rows(named=True):
        prefix = f"{row['rules']}: " if len(result.rules) > 1 else ""
        console.print(f"{prefix}{row['prediction']}: {row['flags']:,} flags, "
                      f"{row['missed']:,} of {row['outcomes']:,} outcomes missed "
                      f"({row['never_flagged']:,} never flagged)")
    console.print(f"replayed {result.days:,} days in {result.seconds:.1f} s; no state read "
                  "or written")
    for note in result.notes:
        console.print(f"note: {escape(note)}")
    for warning in result.warnings:
        console.print(f"[yellow]warning:[/] {escape(warning)}")
    for path in written:
        console.print(f"wrote {escape(str(path))}")
