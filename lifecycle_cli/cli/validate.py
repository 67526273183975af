"""`lifecycle validate`: check a rules file, and with data given, against the data."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from ..day.pipeline import check_against_data
from ..rules.load import load_rules
from . import common


def register(app: typer.Typer) -> None:
    app.command(
        "validate",
        epilog=common.examples(
            "lifecycle validate --rules rules/default.yaml",
            "lifecycle validate --rules rules/default.yaml --customers "
            "sample_data/customers.csv --usage sample_data/usage.csv",
        ),
    )(validate)


@common.handle_errors
def validate(
    rules: common.RulesOpt,
    customers: Annotated[
        Path | None,
        typer.Option(
            "--customers",
            "-c",
            help="Also check the rules against this customers export.",
            show_default=False,
        ),
    ] = None,
    usage: common.UsageOpt = None,
    lookup: common.LookupOpt = None,
    attributes: common.AttributesOpt = None,
    sheet: common.SheetOpt = None,
    as_of: common.AsOfOpt = None,
    encoding: common.EncodingOpt = None,
) -> None:
    """Check a rules file and report every problem at once, with file, line and rule id.

    With --customers (and --usage), also check that every name the rules use exists in the
    data with the right type, and that the exports are usable.
    """
    rule_set = load_rules(rules)
    summary = (
        f"{len(rule_set.stages)} stages, {len(rule_set.transitions)} transition rules, "
        f"{len(rule_set.derived)} derived values, {len(rule_set.metrics)} metrics, "
        f"{len(rule_set.ctas)} CTAs"
    )
    if rule_set.segments:
        own = sum(len(s.transitions) + len(s.ctas) for s in rule_set.segments)
        summary += (f", {len(rule_set.segment_names)} segments "
                    f"({', '.join(rule_set.segment_names)}; {own} rules of their own)")
    if customers is None:
        for given, option in ((usage, "--usage"), (lookup, "--lookup"),
                              (attributes, "--attributes"), (sheet, "--sheet")):
            if given:
                raise typer.BadParameter(f"{option} needs --customers", param_hint=option)
        common.err.print(f"[green]ok:[/] {escape(str(rules))}: {summary}")
        for problem in rule_set.warnings:
            common.err.print(f"[yellow]warning:[/] {escape(problem.render())}")
        return
    with common.progress() as step:
        prepared = check_against_data(rule_set, customers, usage or [], as_of,
                                      encoding=encoding, progress=step,
                                      tables=common.tables(lookup, attributes, sheet))
    common.err.print(
        f"[green]ok:[/] {escape(str(rules))}: {summary}; checked against "
        f"{prepared.loaded.customers.typed.height:,} customers"
    )
    for warning in prepared.warnings:
        common.err.print(f"[yellow]warning:[/] {escape(warning)}")
