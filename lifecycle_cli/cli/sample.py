"""`lifecycle sample`: realistic synthetic exports of any size, seeded."""

from __future__ import annotations

import datetime as dt
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from . import common


class Format(str, Enum):
    csv = "csv"
    parquet = "parquet"


def register(app: typer.Typer) -> None:
    app.command(
        "sample",
        epilog=common.examples(
            "lifecycle sample --customers 10000 --usage-rows 500000 --seed 1 --format "
            "parquet --out out/sample",
        ),
    )(sample)


@common.handle_errors
def sample(
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Folder to write into.", show_default=False)
    ],
    customers: Annotated[int, typer.Option("--customers", min=1, help="How many customers.")] = 500,
    usage_rows: Annotated[
        int, typer.Option("--usage-rows", min=0, help="How many usage rows.")
    ] = 40_000,
    seed: Annotated[int, typer.Option("--seed", help="Same seed, same files.")] = 42,
    fmt: Annotated[
        Format, typer.Option("--format", "-f", help="csv, or parquet (usage as a folder of parts).")
    ] = Format.csv,
    as_of: common.AsOfOpt = None,
) -> None:
    """Write synthetic customers and usage exports that exercise the default rules."""
    from ..sample import generate_sample

    with common.progress() as step:
        step(f"generating {customers:,} customers")
        result = generate_sample(
            out,
            customers=customers,
            usage_rows=usage_rows,
            seed=seed,
            fmt=fmt.value,
            as_of=as_of or dt.date.today(),
            progress=step,
        )
    common.err.print(
        f"wrote {escape(str(result.customers_path))} ({result.customers:,} customers) "
        f"and {escape(str(result.usage_path))} ({result.usage_rows:,} usage rows)"
    )
