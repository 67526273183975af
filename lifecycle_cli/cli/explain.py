"""`lifecycle explain ID...`: why is this customer here?"""

from __future__ import annotations

import datetime as dt
import json
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from ..day.explain import explain as explain_customers
from ..rules.load import load_rules
from ..state.view import StateView
from . import common, render


class Format(str, Enum):
    text = "text"
    json = "json"


def register(app: typer.Typer) -> None:
    app.command(
        "explain",
        epilog=common.examples(
            "lifecycle explain C0000042 --customers sample_data/customers.csv --usage "
            "sample_data/usage.csv --rules rules/default.yaml --as-of 2026-11-01",
        ),
    )(explain)


@common.handle_errors
def explain(
    ids: Annotated[list[str], typer.Argument(help="Customer ids to explain.", show_default=False)],
    customers: common.CustomersOpt,
    rules: common.RulesOpt,
    usage: common.UsageOpt = None,
    lookup: common.LookupOpt = None,
    attributes: common.AttributesOpt = None,
    sheet: common.SheetOpt = None,
    as_of: common.AsOfOpt = None,
    fmt: Annotated[
        Format, typer.Option("--format", "-f", help="text for people, json for tools.")
    ] = Format.text,
    encoding: common.EncodingOpt = None,
    state: Annotated[
        Path | None,
        typer.Option("--state", help="Start from this state folder's stages, CTAs and "
                     "previous values, as `run --state` does (read only).", show_default=False),
    ] = None,
    prefer: common.PreferOpt = common.Prefer.export,
) -> None:
    """For each customer: stage, days in stage, every metric and derived value, each
    candidate rule with its values and verdict, and the winner, hop by hop."""
    rule_set = load_rules(rules)
    day = as_of or dt.date.today()
    start = None
    if state is not None:
        start = StateView.open(state, empty_ok=True).start(day, prefer=prefer.value,
                                                           rules=rule_set)
    with common.progress() as step:
        step("explaining")
        explanations = explain_customers(rule_set, customers, usage or [], ids, day,
                                         encoding=encoding, start=start,
                                         tables=common.tables(lookup, attributes, sheet))
    if fmt == Format.json:
        common.out.print_json(json.dumps([e.to_dict() for e in explanations], default=str))
        return
    for e in explanations:
        render.explanation(common.out, e)
