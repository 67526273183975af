"""The DuckDB engine (``--engine duckdb``): an in-process DuckDB connection per run.

Customers and lookups go in through Arrow from Polars. A usage source of Parquet files
is read by DuckDB itself (`register_parquet`: only the columns the metrics read, renamed
and cast in SQL as the Polars scan would); any other source is streamed from Polars
(``usage.rows`` as Arrow batches, only those columns) into a DuckDB table, so the exports'
quirks (CSV typing, text timestamps, time zones) mean exactly what they mean without an
engine. The session's time zone is the rules' (calendar days are taken in it).

DuckDB is an optional extra: ``pip install "lifecycle-cli[duckdb]"``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import polars as pl

from ..errors import OptionError, Problem
from .backend import EngineChoice, register

if TYPE_CHECKING:
    from ..inputs.usage import Usage

INSTALL = 'pip install "lifecycle-cli[duckdb]"'


class DuckDBBackend:
    """One DuckDB connection (in memory)."""

    dialect = "duckdb"

    def __init__(self, choice: EngineChoice):
        try:
            import duckdb
            import pyarrow  # noqa: F401  (DuckDB reads and gives Polars frames through it)
        except ImportError as err:
            raise OptionError(Problem(
                f"--engine duckdb needs the DuckDB extra, which is not installed ({err.name})",
                hint=f"install it: {INSTALL}")) from None
        self.connection: Any = duckdb.connect()
        self.connection.execute(f"SET TimeZone = '{choice.timezone}'")
        self._views: dict[str, Any] = {}

    def register_frame(self, name: str, frame: pl.DataFrame) -> None:
        arrow = frame.to_arrow()
        self._views[name] = arrow  # kept alive while the view is used
        self.connection.register(name, arrow)

    def register_usage(self, name: str, usage: Usage) -> None:
        self.register_rows(name, usage.rows)

    def register_parquet(self, name: str, paths: list[str], columns: dict[str, str]) -> None:
        """A usage source of Parquet files read by DuckDB itself: a view of ``columns``
        (name -> SQL over the files' columns: the renames and casts of the Polars scan),
        so only those columns are read, in parallel, with the window filters pushed down."""
        files = ", ".join("'" + p.replace("'", "''") + "'" for p in paths)
        select = ", ".join(f'{sql} AS "{column}"' for column, sql in columns.items())
        self.connection.execute(f'CREATE OR REPLACE TEMP VIEW "{name}" AS SELECT {select} '
                                f"FROM read_parquet([{files}], union_by_name = true)")

    def register_rows(self, name: str, rows: pl.LazyFrame) -> None:
        """Stream ``rows`` into a DuckDB table called ``name``."""
        reader = _batches(rows)
        self.connection.execute(f'DROP TABLE IF EXISTS "{name}"')
        self.connection.register("__lc_stream", reader)
        self.connection.execute(f'CREATE TEMP TABLE "{name}" AS SELECT * FROM __lc_stream')
        self.connection.unregister("__lc_stream")

    def execute(self, statements: list[str]) -> None:
        for statement in statements:
            self.connection.execute(statement)

    def fetch(self, table: str) -> pl.DataFrame:
        return pl.from_arrow(self.connection.sql(f'SELECT * FROM "{table}"').to_arrow_table())  # type: ignore[return-value]

    def close(self) -> None:
        self.connection.close()


def _batches(rows: pl.LazyFrame) -> Any:
    """A pyarrow RecordBatchReader over ``rows``, collected by Polars' streaming engine."""
    import pyarrow as pa

    schema = rows.collect_schema()
    empty = pl.DataFrame(schema=schema).to_arrow().schema

    def generate() -> Any:
        for frame in rows.collect_batches():
            yield from frame.to_arrow().cast(empty).to_batches()

    return pa.RecordBatchReader.from_batches(empty, generate())


register("duckdb", DuckDBBackend)
