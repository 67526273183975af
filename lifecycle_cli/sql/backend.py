"""The seam between a day's pipeline and an SQL engine that computes its heavy part.

`lifecycle run --engine duckdb|spark` hands the engine the customers (as the
pipeline typed and merged them with the state) and the usage sources, runs the
rules compiled to SQL (`lifecycle_cli.sql`) on it, and takes back Polars frames.
Everything else (CTAs, outputs, the state) stays in Polars, so the output files
are the same whichever engine ran.

A :class:`Backend` is one engine's connection. Backends register themselves by
name with :func:`register`; `polars` is not a backend (it is the pipeline's own
code path).
"""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import polars as pl

    from ..inputs.usage import Usage

POLARS = "polars"


@dataclass(frozen=True)
class EngineChoice:
    """Which engine computes a day's heavy part, and its settings (from the command line)."""

    name: str = POLARS
    timezone: str = "UTC"  # the rules' time zone: the session's, for calendar days
    spark_master: str = "local[*]"
    spark_conf: Mapping[str, str] = field(default_factory=dict)

    @property
    def is_polars(self) -> bool:
        return self.name == POLARS


class Backend(Protocol):
    """One SQL engine's connection, for one day or a whole backfill."""

    dialect: str  # sqlglot's name for the SQL it runs: "duckdb", "spark"

    def register_frame(self, name: str, frame: pl.DataFrame) -> None:
        """Make a Polars frame (customers, a lookup) a table or view called ``name``."""

    def register_usage(self, name: str, usage: Usage) -> None:
        """Make a usage source a table or view called ``name``, with the columns of
        ``usage.schema`` (the rules' names and types). The backend may read the files
        itself (Parquet, with renames and casts in SQL) or stream ``usage.rows``."""

    # Optional: ``register_parquet(name, paths, columns)``. A backend that has it reads a
    # usage source of Parquet files itself: ``columns`` maps each column the rules read to
    # SQL (in the backend's dialect) over the files' own columns, with the renames and casts
    # of the Polars scan (`lifecycle_cli.sql.day.parquet_columns`). Sources it cannot take
    # so (CSV, text timestamps) still come through ``register_usage``.

    def execute(self, statements: list[str]) -> None:
        """Run SQL statements in order (CREATE TEMP VIEW/TABLE ... AS SELECT ...)."""

    def fetch(self, table: str) -> pl.DataFrame:
        """A table or view as a Polars frame."""

    def close(self) -> None:
        """Release the connection (a Spark session is kept for the process)."""


BackendFactory = Callable[[EngineChoice], Backend]
_BACKENDS: dict[str, BackendFactory] = {}
# the modules of the bundled backends, imported (so they register) when a name is asked for;
# each imports its engine's package only when a connection opens
BUNDLED = ["lifecycle_cli.sql.duckdb", "lifecycle_cli.sql.spark"]


def _bundled() -> None:
    for module in BUNDLED:
        importlib.import_module(module)


def register(name: str, factory: BackendFactory) -> None:
    """Make ``--engine NAME`` available: ``factory(choice)`` opens a connection."""
    _BACKENDS[name] = factory


def names() -> list[str]:
    """Every engine ``--engine`` takes: polars, the bundled backends in `BUNDLED`'s order
    (whichever module was imported first), then the others as they registered."""
    _bundled()
    bundled = [m.rsplit(".", 1)[-1] for m in BUNDLED]
    return [POLARS, *sorted(_BACKENDS, key=lambda n: bundled.index(n) if n in bundled
                            else len(bundled))]


def open_backend(choice: EngineChoice) -> Backend:
    """A connection to the chosen engine; KeyError for a name nobody registered."""
    _bundled()
    return _BACKENDS[choice.name](choice)


@contextlib.contextmanager
def connected(choice: EngineChoice | None, timezone: str | None = None
              ) -> Iterator[Backend | None]:
    """The chosen engine's connection for a run (None for polars), closed afterwards;
    ``timezone``: the rules' time zone, the session's."""
    if choice is None or choice.is_polars:
        yield None
        return
    if timezone is not None:
        choice = replace(choice, timezone=timezone)
    backend = open_backend(choice)
    try:
        yield backend
    finally:
        backend.close()


# -- catalogs: ``--usage table:NAME`` (an engine that has one registers it) ------------------

CatalogFactory = Callable[[EngineChoice], "Callable[[str], dict[str, pl.DataType]]"]
_CATALOGS: dict[str, CatalogFactory] = {}


def register_catalog(name: str, factory: CatalogFactory) -> None:
    """The engine ``name`` reads usage from tables of its catalog: ``factory(choice)`` gives
    the function that returns a table's columns and types (`day.load.Catalog`)."""
    _CATALOGS[name] = factory


def catalog_of(choice: EngineChoice | None) -> Callable[[str], dict[str, pl.DataType]] | None:
    """The chosen engine's catalog, for ``load(catalog=...)``; None if it has none."""
    if choice is None or choice.is_polars:
        return None
    factory = _CATALOGS.get(choice.name)
    return factory(choice) if factory is not None else None
