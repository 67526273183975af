"""Where a day starts: the export's stages, the state's, and which one wins.

(Moved here from the state module; see `merge_start`.)
"""

from __future__ import annotations

import datetime as dt

import polars as pl

from ..columns import EXPORT_STAGE, OVERRIDE_SCHEMA, SEEN, STAGE_TABLE_SCHEMA


def empty_overrides() -> pl.DataFrame:
    return pl.DataFrame(schema=OVERRIDE_SCHEMA)


def merge_start(
    typed: pl.DataFrame,
    previous: pl.DataFrame | None,
    as_of: dt.date,
    *,
    id_column: str = "customer_id",
    stage_column: str = "stage",
    entered_column: str = "stage_entered_at",
    prefer: str = "export",
) -> tuple[pl.DataFrame, pl.DataFrame, int]:
    """The stages a run starts from: the export's, filled (or overruled) by the state's.

    ``typed`` holds the export's customers (``id_column``, ``stage_column``,
    ``entered_column``); ``previous`` is the state's stage table. Returns
    ``typed`` with its stage columns replaced; the overrides (customers whose
    stage in the export was changed since the last run, to a stage other than
    the state's); and how many customers' export stage lags behind the state's
    (unchanged since the last run, so the CRM was not updated from our outputs:
    the state's stage is kept for them).
    """
    if previous is None or previous.height == 0:
        return typed, empty_overrides(), 0
    key, s_stage, s_entered, s_export = (
        "__state_key", "__state_stage", "__state_entered", "__state_export")
    last_export = (pl.col(EXPORT_STAGE) if EXPORT_STAGE in previous.columns
                   else pl.lit(None, dtype=pl.String))
    joined = typed.with_columns(pl.col(id_column).cast(pl.String).alias(key)).join(
        previous.select(
            pl.col("customer_id").alias(key),
            pl.col("stage").alias(s_stage),
            pl.col("stage_entered_at").alias(s_entered),
            last_export.alias(s_export),
        ),
        on=key,
        how="left",
        maintain_order="left",
    )
    e_stage, e_entered = pl.col(stage_column), pl.col(entered_column)
    st_stage, st_entered = pl.col(s_stage), pl.col(s_entered)
    day = pl.lit(as_of, dtype=pl.Date)
    differs = e_stage.is_not_null() & st_stage.is_not_null() & (e_stage != st_stage)
    # a stage the export gave last time too is the CRM lagging, not a person's change
    changed = differs & (pl.col(s_export).is_null() | (e_stage != pl.col(s_export)))
    lagging = differs & ~changed
    if prefer == "state":
        stage = pl.coalesce(st_stage, e_stage)
        entered = pl.when(st_stage.is_not_null()).then(st_entered).otherwise(e_entered)
    else:
        stage = pl.when(lagging).then(st_stage).otherwise(pl.coalesce(e_stage, st_stage))
        entered = (
            pl.when(e_stage.is_null() | lagging).then(st_entered)
            .when(changed).then(pl.coalesce(e_entered, day))  # seen changed today
            .when(st_stage.is_null()).then(e_entered)
            .otherwise(pl.coalesce(e_entered, st_entered))  # same stage: export's date if given
        )
    overrides = joined.filter(changed).select(
        day.alias("as_of"),
        pl.col(key).alias("customer_id"),
        st_stage.alias("state_stage"),
        st_entered.alias("state_entered_at"),
        e_stage.alias("export_stage"),
        e_entered.alias("export_entered_at"),
        pl.lit(prefer).alias("kept"),
    )
    lagging_count = int(joined.select(lagging.sum()).item())
    merged = joined.with_columns(stage.alias(stage_column), entered.alias(entered_column))
    return merged.drop(key, s_stage, s_entered, s_export), overrides, lagging_count


def stage_table(
    final: pl.DataFrame,
    previous: pl.DataFrame | None,
    as_of: dt.date,
    *,
    export: pl.DataFrame | None = None,
    id_column: str = "customer_id",
    stage_column: str = "stage",
    entered_column: str = "stage_entered_at",
) -> pl.DataFrame:
    """The stage table after a run: every customer of this run, then those of the state
    that this export did not list (kept as they were, so a customer missing from one
    export keeps its stage). ``export`` (``id_column``, ``stage_column``) holds the stages
    the export gave, remembered to tell the CRM's own changes from its lag next time."""
    now_table = final.select(
        pl.col(id_column).cast(pl.String).alias("customer_id"),
        pl.col(stage_column).alias("stage"),
        pl.col(entered_column).alias("stage_entered_at"),
        pl.lit(as_of, dtype=pl.Date).alias(SEEN),
    )
    if export is None:
        now_table = now_table.with_columns(pl.lit(None, dtype=pl.String).alias(EXPORT_STAGE))
    else:
        given = export.select(pl.col(id_column).cast(pl.String).alias("customer_id"),
                              pl.col(stage_column).alias(EXPORT_STAGE))
        now_table = now_table.join(given, on="customer_id", how="left", maintain_order="left")
    if previous is None or previous.height == 0:
        return now_table
    missing = previous.join(now_table.select("customer_id"), on="customer_id", how="anti")
    if EXPORT_STAGE not in missing.columns:
        missing = missing.with_columns(pl.lit(None, dtype=pl.String).alias(EXPORT_STAGE))
    return pl.concat([now_table, missing.select(list(STAGE_TABLE_SCHEMA))])
