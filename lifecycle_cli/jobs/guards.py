"""Guard rails for cron: refuse a run that would move too many customers, an export that
shrank, or one whose columns changed kind since the last run."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from ..columns import BUILTINS, COMPUTED_COLUMNS, ID
from ..day.load import schema_key
from ..day.pipeline import Day
from ..errors import DataError, OptionError, Problem
from ..expressions import ExpressionError, parse, referenced_names
from ..metrics.compute import metric_columns
from ..rules.model import USAGE, Rules
from ..rules.scorecard import scorecard_columns

DEFAULT_MAX_SHRINK = 0.10


def parse_share(text: str, option: str) -> float:
    """"10%" (or 0.1) as 0.1; an OptionError naming ``option`` for anything else."""
    text = text.strip()
    try:
        value = float(text[:-1]) / 100 if text.endswith("%") else float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value <= 1:
        raise OptionError(f"{option} takes a share such as 10%, not '{text}'")
    return value


@dataclass(frozen=True)
class MaxMoves:
    """``--max-moves``: a number of customers, or a share of them."""

    count: int | None = None
    share: float | None = None

    @classmethod
    def parse(cls, text: str) -> MaxMoves:
        text = text.strip()
        if text.endswith("%"):
            return cls(share=parse_share(text, "--max-moves"))
        if not text.isdigit():
            raise OptionError(
                f"--max-moves takes a number of customers (500) or a share (5%), not '{text}'"
            )
        return cls(count=int(text))

    def limit(self, customers: int) -> int:
        if self.count is not None:
            return self.count
        return int((self.share or 0) * customers)

    def __str__(self) -> str:
        return str(self.count) if self.count is not None else f"{(self.share or 0) * 100:g}%"


@dataclass
class Guards:
    max_moves: MaxMoves | None = None
    max_shrink: float = DEFAULT_MAX_SHRINK  # share of customers that may vanish between runs
    allow_shrink: bool = False


def check_moves(result: Day, max_moves: MaxMoves | None) -> None:
    """Refuse a run that would move more customers than allowed; name the rules behind it.

    Moves are the customers that leave a stage (hop 1 and later); first
    assignments of customers that had no stage are not moves.
    """
    if max_moves is None:
        return
    moved = result.moved_customers
    total = result.customers.height
    limit = max_moves.limit(total)
    if moved <= limit:
        return
    by_rule = (
        result.transitions.filter(pl.col("hop") > 0)
        .group_by("rule_id").agg(pl.col("customer_id").n_unique().alias("n"))
        .sort(["n", "rule_id"], descending=[True, False])
    )
    top = ", ".join(f"{rule} ({n:,})" for rule, n in by_rule.head(5).iter_rows())
    share = f" ({moved / total:.1%} of {total:,})" if total else ""
    raise DataError(
        Problem(
            f"{moved:,} customers would move{share}, more than --max-moves {max_moves} "
            f"allows ({limit:,}); most moves come from: {top}",
            hint="check the export and recent rule edits (`lifecycle diff` compares rule "
            "files); raise --max-moves if the moves are right",
        )
    )


def check_shrink(customers: int, previous: dict[str, Any] | None, guards: Guards,
                 customers_path: Path) -> None:
    """Refuse an export with many fewer customers than the last run's: it may be truncated."""
    if previous is None or guards.allow_shrink:
        return
    before = int(previous.get("rows", {}).get("customers", 0))
    if before == 0 or customers >= before * (1 - guards.max_shrink):
        return
    raise DataError(
        Problem(
            f"the customers export has {customers:,} rows, {1 - customers / before:.1%} fewer "
            f"than the {before:,} of the run for {previous.get('as_of')}; more than the "
            f"{guards.max_shrink:.0%} allowed",
            file=str(customers_path),
            hint="a truncated export would move customers wrongly; check it, or pass "
            "--allow-shrink if customers really left",
        )
    )


def rules_columns(rules: Rules) -> tuple[set[str], set[str]]:
    """The customer and usage columns (rules' names) that the rules read."""
    computed = set(rules.derived) | set(rules.metrics) | set(BUILTINS) | set(COMPUTED_COLUMNS)
    computed |= set(scorecard_columns(rules))
    customer: set[str] = {ID}
    ctas = [c for _, c, _ in rules.cta_rules()]
    texts = [t.when for _, t, _ in rules.transition_rules()] + list(rules.derived.values())
    texts += [m.value for m in rules.scorecard.measures] if rules.scorecard else []
    texts += [c.when for c in ctas if c.when] + [c.close_when for c in ctas if c.close_when]
    texts += [s.when for s in rules.segments if s.when]
    for text in texts:
        try:
            customer.update(n for n in referenced_names(parse(text)) if n not in computed)
        except ExpressionError:
            continue
    customer.update(c.owner for c in ctas if c.owner)
    if rules.default_owner:
        customer.add(rules.default_owner)
    return customer, set(metric_columns(rules.for_source(USAGE)))


def read_columns(rules: Rules) -> dict[str, set[str]]:
    """The columns the rules read, under each table's own headers, by the table's key in
    `lifecycle_cli.day.load.schema_of`: customers, each usage source, each attribute table
    (any customer column the rules read may come from one)."""
    read_customer, _ = rules_columns(rules)
    out = {"customers": {rules.customer_column(c) for c in read_customer}}
    for name, source in rules.usage_sources.items():
        out[schema_key("source", name)] = {
            source.columns.get(c, c) for c in metric_columns(rules.for_source(name))}
    for name, table in rules.attributes.items():
        out[schema_key("attributes", name)] = {table.columns.get(c, c) for c in read_customer}
    return out


def _label(table: str) -> str:
    """How a message names the table of a `schema_of` key."""
    kind, _, name = table.partition(" ")
    if not name:
        return f"the {table} export"
    return f"the source '{name}'" if kind == "source" else f"the attribute table '{name}'"


def check_schema(rules: Rules, schema: dict[str, dict[str, str]],
                 previous: dict[str, Any] | None) -> list[str]:
    """Compare the exports' columns with the last run's: raise for a change that the rules
    feel (a column they read that vanished or changed type); return warnings for the rest."""
    if previous is None or "schema" not in previous:
        return []
    problems: list[Problem] = []
    warnings: list[str] = []
    external = read_columns(rules)
    for table, now in schema.items():
        before = previous["schema"].get(table) or {}
        if not now:  # no usage given this time: nothing to compare
            continue
        for column, kind in before.items():
            used = column in external.get(table, set())
            if column not in now:
                message = (f"{_label(table)} no longer has the column '{column}' "
                           f"(it had it in the run for {previous.get('as_of')})")
                if used:
                    problems.append(Problem(message, column=column,
                                            hint="the rules read it; restore it in the export"))
                else:
                    warnings.append(message)
            elif now[column] != kind:
                message = (f"the column '{column}' of {_label(table)} held {kind} in the run "
                           f"for {previous.get('as_of')} and holds {now[column]} now")
                if used:
                    problems.append(Problem(
                        message, column=column,
                        hint="the rules read it; look for values such as 'N/A', a changed date "
                        "format or a stray text cell in that column"))
                else:
                    warnings.append(message)
    if problems:
        raise DataError(problems)
    return warnings
