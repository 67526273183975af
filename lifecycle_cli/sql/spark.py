"""The Spark backend: `--engine spark` runs the rules' SQL on a Spark session.

One session per process, built when first needed (`session`): `--spark-master`
(``local[*]`` by default) and `--spark-conf key=value`, or, under
``spark-submit``, on Databricks or in a notebook, the session that is already
there (its master and static settings win; ours are set where Spark allows it
at run time). Whatever the session, the backend sets:

- ``spark.sql.session.timeZone`` to the rules' time zone: timestamps are local
  to it, and a timestamp's day is its calendar day there;
- ``spark.sql.ansi.enabled=true`` (`ANSI`): the compiled SQL pins every
  meaning that differs between modes itself (``try_divide``, ``TRY_CAST``,
  ``bround``), so ANSI only decides what is left, and there an error (an
  integer overflow) is better than the silently wrong value non-ANSI Spark
  gives; it is also Spark 4's and Databricks SQL's default, so a cluster that
  has it off still runs the same SQL the same way;
- ``spark.sql.execution.arrow.pyspark.enabled=true``: frames go in and out as
  Arrow (`register_frame`, `fetch`), without pandas.

A session this module starts writes the JVM's output (its log, Spark's stage
progress, the JDK's warnings) to a log file (`log_path`) instead of the
terminal, so the summary stays readable; messages name the file.

Usage files are read by Spark itself (Parquet, and CSV with the separator
the tool found), renamed and cast to the rules' names and types
(`usage.schema`) in one projection, so Spark reads only the columns the SQL
uses. A source that Spark cannot read as the tool reads it (Excel, a CSV in
another encoding or with title lines above its header) is streamed from
Polars instead, and a catalog table (``--usage table:db.events``) is read
from the session's catalog.

Errors: pyspark or Java missing is an option error (exit 2) that says how to
install them; a Spark error caused by the user (a table that is not in the
catalog, a setting Spark refuses, a master it can't reach) is a plain message,
never a Java stack trace.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from ..columns import ID, TIMESTAMP
from ..errors import DataError, LifecycleError, OptionError, Problem
from ..inputs.formats import CSV, PARQUET, format_of, sniff_csv
from .backend import EngineChoice, register, register_catalog

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from ..inputs.usage import Usage

NAME = "spark"
INSTALL = 'pip install "lifecycle-cli[spark]"'
JAVA = ("Spark needs Java 17 or later: install a JDK or JRE (e.g. apt-get install "
        "openjdk-17-jre-headless) or set JAVA_HOME")
ANSI = True  # see the module's docstring

# The session's settings the backend always sets; --spark-conf may override the first
# group (start-up choices), not the second (the meaning of the SQL).
DEFAULTS: dict[str, str] = {
    "spark.app.name": "lifecycle",
    "spark.ui.enabled": "false",  # no web UI (and no port) for a local command
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    "spark.sql.execution.arrow.pyspark.fallback.enabled": "false",
    "spark.sql.shuffle.partitions": "16",  # adaptive execution coalesces them further
}


# a deep query (the hops, unrolled) needs more rounds of Spark's analyzer and optimizer
# than their default 100
DEEP_QUERIES = {"spark.sql.analyzer.maxIterations": "1000",
                "spark.sql.optimizer.maxIterations": "1000"}


def pinned(timezone: str) -> dict[str, str]:
    """The settings that give the compiled SQL its meaning (`--spark-conf` can't change
    them): the rules' time zone and ANSI mode."""
    return {
        **DEEP_QUERIES,
        "spark.sql.session.timeZone": timezone,
        "spark.sql.ansi.enabled": "true" if ANSI else "false",
    }


_LOCK = threading.Lock()
_SESSION: dict[str, Any] = {}  # "spark": the session; "log": its log file; "key": how built


def log_path() -> Path:
    """Where a session this process starts writes the JVM's output."""
    return Path(tempfile.gettempdir()) / f"lifecycle-spark-{os.getpid()}.log"


# -- what is missing ----------------------------------------------------------------------


def _pyspark() -> Any:
    try:
        import pyspark
    except ImportError:
        raise OptionError(Problem(
            "--engine spark needs pyspark, which is not installed",
            hint=f"{INSTALL}; {JAVA}")) from None
    major = int(str(pyspark.__version__).split(".")[0] or 0)
    if major < 4:
        raise OptionError(Problem(
            f"--engine spark needs Spark 4 or later; this is pyspark {pyspark.__version__}",
            hint=f"{INSTALL} (on Databricks: Databricks Runtime 17 or later)"))
    return pyspark


def java_command() -> str | None:
    """The ``java`` Spark would start: JAVA_HOME's, else the one on PATH."""
    home = os.environ.get("JAVA_HOME")
    if home:
        candidate = Path(home) / "bin" / "java"
        return str(candidate) if candidate.exists() else None
    return shutil.which("java")


def _check_java() -> None:
    if java_command() is None:
        where = (f"JAVA_HOME={os.environ['JAVA_HOME']} has no bin/java"
                 if os.environ.get("JAVA_HOME") else "no java on PATH")
        raise OptionError(Problem(f"--engine spark: Java was not found ({where})", hint=JAVA))


# -- the session -------------------------------------------------------------------------


def _quiet_python_loggers() -> None:
    """pyspark logs every failed query with its Java stack trace on stderr; we report
    errors ourselves."""
    with contextlib.suppress(ImportError):  # pyspark < 4 has no such loggers
        from pyspark.logger import PySparkLogger

        for name in ("SQLQueryContextLogger", "DataFrameQueryContextLogger"):
            PySparkLogger.getLogger(name).setLevel(logging.CRITICAL + 1)


def _running_session() -> SparkSession | None:
    """The session spark-submit, Databricks or a notebook started, if any."""
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    if os.environ.get("PYSPARK_GATEWAY_PORT"):  # launched by spark-submit: its JVM is there
        return SparkSession.builder.getOrCreate()
    return None


def _log_error(path: Path) -> str | None:
    """The JVM's own words for why it stopped: the last exception in its log, without the
    class name (``Master must either be yarn or start with spark, k8s, or local``)."""
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return None
    for line in reversed(lines):
        found = re.search(r"(?:[\w$.]+(?:Exception|Error))(?::\s*(.*))?$", line)
        if found and not line.startswith(("\t", " ")):
            return (found.group(1) or found.group(0)).strip()
    noise = ("WARNING: Using incubator", "Using Spark's default", "Error: ")
    for line in lines:  # the JVM's own complaint (Invalid maximum heap size: -Xmxlots)
        if line.strip() and not line.startswith(noise) and not re.search(
                r" (WARN|INFO|DEBUG) ", line):
            return line.strip()
    return None


def _start(choice: EngineChoice) -> SparkSession:
    """A new local or cluster session, its JVM's output in the log file."""
    from pyspark import SparkConf, SparkContext
    from pyspark.java_gateway import launch_gateway
    from pyspark.sql import SparkSession

    _check_java()
    conf = SparkConf(loadDefaults=True).setMaster(choice.spark_master)
    for key, value in {**DEFAULTS, **choice.spark_conf, **pinned(choice.timezone)}.items():
        conf.set(key, value)
    log = log_path()
    try:
        with open(log, "ab") as stream:
            gateway = launch_gateway(conf, popen_kwargs={"stdout": stream, "stderr": stream})
        context = SparkContext(conf=conf, gateway=gateway)
    except Exception as err:  # pyspark raises its own errors and Py4J's; all are reported
        reason = _log_error(log) or _first_line(str(err))
        hint = f"the Spark log: {log}"
        if "class file version" in reason or "UnsupportedClassVersion" in reason:
            hint = f"{JAVA}; {hint}"
        elif "master" in reason.lower():
            hint = ("--spark-master takes local, local[N], local[*], spark://HOST:PORT, yarn "
                    f"or k8s://...; {hint}")
        raise OptionError(Problem(
            f"Spark did not start (--spark-master {choice.spark_master}): {reason}",
            hint=hint)) from None
    return SparkSession(context)


def session(choice: EngineChoice) -> SparkSession:
    """The process's Spark session (started on first use), set for ``choice``: its
    ``--spark-conf``, the rules' time zone and ANSI mode."""
    _pyspark()
    with _LOCK:
        spark = _SESSION.get("spark")
        if spark is None:
            spark = _running_session()
            if spark is None:
                spark = _start(choice)
                _SESSION["ours"] = True
            _quiet_python_loggers()
            _SESSION["spark"] = spark
            _SESSION["key"] = (choice.spark_master, tuple(sorted(choice.spark_conf.items())))
            started = True
        else:
            started = False
    runtime = dict(choice.spark_conf) if not started or not _SESSION.get("ours") else {}
    _set_conf(spark, {**runtime, **pinned(choice.timezone)})
    return spark


def _set_conf(spark: SparkSession, settings: Mapping[str, str]) -> None:
    """Settings on a running session; a static one Spark refuses is a plain error."""
    for key, value in settings.items():
        if spark.conf.get(key, None) == value:
            continue
        try:
            spark.conf.set(key, value)
        except Exception as err:
            raise OptionError(Problem(
                f"--spark-conf {key}={value}: Spark refuses it on a running session: "
                + _first_line(str(err)),
                hint="settings such as spark.driver.memory or spark.master are fixed when "
                "the session starts: give them to spark-submit --conf (or the cluster's "
                "configuration)")) from None


def stop() -> None:
    """Stop the session this process started (tests, the end of a job); a session
    spark-submit or Databricks gave is left to them."""
    with _LOCK:
        spark = _SESSION.pop("spark", None)
        ours = _SESSION.pop("ours", False)
        _SESSION.clear()
    if spark is not None and ours:
        spark.stop()


def parse_conf(values: list[str] | None) -> dict[str, str]:
    """``--spark-conf key=value`` options as a mapping; a value without '=' or a key
    the backend pins is an option error."""
    out: dict[str, str] = {}
    for value in values or []:
        key, eq, setting = value.partition("=")
        key = key.strip()
        if not eq or not key:
            raise OptionError(Problem(
                f"--spark-conf '{value}' is not key=value",
                hint="e.g. --spark-conf spark.driver.memory=8g"))
        if key in pinned("UTC"):
            raise OptionError(Problem(
                f"--spark-conf {key} is set by lifecycle",
                hint="the session time zone is the rules' timezone:, and ANSI mode is what "
                "the compiled SQL is written for (docs/engines.md)"))
        out[key] = setting.strip()
    return out


# -- errors ------------------------------------------------------------------------------


def _first_line(text: str) -> str:
    for line in text.splitlines():
        if line.strip():
            return line.strip()
    return text.strip()


_NOISE = ("Exception thrown in awaitResult", "An error occurred while calling",
          "Job aborted due to stage failure")


def _java_message(err: BaseException) -> str | None:
    """For a Java exception (Py4J's): the first telling message of its causes, and the
    root cause's where it says more (`... is not a Parquet file`)."""
    java = getattr(err, "java_exception", None)
    messages: list[str] = []
    try:
        seen = 0
        while java is not None and seen < 20:
            text = java.getMessage()
            if text:
                line = _first_line(str(text))
                if line and not line.startswith(_NOISE) and line not in messages:
                    messages.append(line)
            java, seen = java.getCause(), seen + 1
    except Exception:  # the JVM may be gone: say what we have
        pass
    if not messages:
        return None
    return messages[0] if len(messages) == 1 else f"{messages[0]}: {messages[-1]}"


def _condition(err: BaseException) -> str | None:
    getter = getattr(err, "getCondition", None) or getattr(err, "getErrorClass", None)
    try:
        return getter() if getter is not None else None
    except Exception:
        return None


@contextlib.contextmanager
def _spark_errors(what: str, *, table: str | None = None) -> Iterator[None]:
    """Spark's and Py4J's errors as our own, in a sentence; never a Java stack trace."""
    try:
        yield
    except LifecycleError:
        raise
    except Exception as err:
        from pyspark.errors import PySparkException

        if not isinstance(err, PySparkException) and type(err).__module__.split(".")[0] not in (
                "py4j", "pyspark"):
            raise
        condition = _condition(err)
        message = _java_message(err) or _first_line(str(err))
        if condition in ("TABLE_OR_VIEW_NOT_FOUND", "SCHEMA_NOT_FOUND",
                         "PATH_NOT_FOUND") and table is not None:
            raise DataError(Problem(
                f"the table '{table}' is not in Spark's catalog",
                hint="check its name (catalog.schema.table) and the catalog settings "
                "(--spark-conf spark.sql.catalog...., spark.sql.warehouse.dir)")) from None
        raise DataError(Problem(f"Spark failed while {what}: {message}",
                                hint=_log_hint())) from None


def _log_hint() -> str | None:
    if _SESSION.get("ours"):
        return f"the Spark log: {log_path()}"
    return None


# -- types -------------------------------------------------------------------------------

# Polars types as Spark SQL names: what a usage column is cast to
_SQL_TYPES: dict[type[pl.DataType], str] = {
    pl.Int8: "TINYINT", pl.Int16: "SMALLINT", pl.Int32: "INT", pl.Int64: "BIGINT",
    pl.UInt8: "SMALLINT", pl.UInt16: "INT", pl.UInt32: "BIGINT", pl.UInt64: "DECIMAL(20,0)",
    pl.Float32: "FLOAT", pl.Float64: "DOUBLE", pl.Boolean: "BOOLEAN", pl.String: "STRING",
    pl.Categorical: "STRING", pl.Enum: "STRING", pl.Date: "DATE",
    pl.Datetime: "TIMESTAMP_NTZ", pl.Null: "STRING",
}


def sql_type(dtype: pl.DataType) -> str:
    """The Spark SQL type a column of this Polars type is given."""
    if isinstance(dtype, pl.Decimal):
        return f"DECIMAL({dtype.precision or 38},{dtype.scale or 0})"
    found = _SQL_TYPES.get(type(dtype)) or _SQL_TYPES.get(dtype.base_type())  # type: ignore[call-overload]
    if found is None:
        raise DataError(Problem(f"a column of type {dtype} cannot go to Spark"))
    return found


def quote(name: str) -> str:
    """A column or view name for Spark SQL."""
    return "`" + name.replace("`", "``") + "`"


def _arrow_ready(frame: pl.DataFrame) -> pl.DataFrame:
    """Types Spark takes from Arrow: categoricals as text, unsigned integers widened,
    all-NULL columns as text."""
    changes = []
    for name, dtype in frame.schema.items():
        if isinstance(dtype, pl.Categorical | pl.Enum | pl.Null):
            changes.append(pl.col(name).cast(pl.String))
        elif dtype in (pl.UInt8, pl.UInt16, pl.UInt32):
            changes.append(pl.col(name).cast(pl.Int64))
        elif dtype == pl.UInt64:
            changes.append(pl.col(name).cast(pl.Decimal(20, 0)))
        elif isinstance(dtype, pl.Datetime) and dtype.time_unit == "ns":
            changes.append(pl.col(name).dt.cast_time_unit("us"))
    return frame.with_columns(changes) if changes else frame


def _spark_schema(frame: pl.DataFrame) -> Any:
    """The Spark schema for a frame: naive datetimes as TIMESTAMP_NTZ (Arrow alone would
    make them session-local TIMESTAMPs)."""
    from pyspark.sql.types import StructField, StructType, _parse_datatype_string

    return StructType([
        StructField(name, _parse_datatype_string(
            "timestamp" if isinstance(dtype, pl.Datetime) and dtype.time_zone
            else sql_type(dtype).lower()), True)
        for name, dtype in frame.schema.items()
    ])


# -- the backend -------------------------------------------------------------------------


@dataclass
class SparkBackend:
    """The rules' SQL on a Spark session (see the module's docstring)."""

    spark: SparkSession
    timezone: str
    dialect: str = NAME

    def register_frame(self, name: str, frame: pl.DataFrame) -> None:
        """A Polars frame as the temporary view ``name``, through Arrow."""
        frame = _arrow_ready(frame)
        table = frame.to_arrow(compat_level=pl.CompatLevel.oldest())
        with _spark_errors(f"taking the table '{name}'"):
            df = self.spark.createDataFrame(table, schema=_spark_schema(frame))
            df.createOrReplaceTempView(name)

    def register_usage(self, name: str, usage: Usage) -> None:
        """A usage source's rows as the temporary view ``name``: the columns of
        ``usage.rows`` (the customer id, or a lookup's key; the timestamp; the columns the
        metrics read) under the rules' names, with the types and values Polars gives them.
        A lookup is not joined here: the SQL joins it (`lifecycle_cli.sql.day`)."""
        wanted = dict(usage.rows.collect_schema())
        with _spark_errors(f"reading {usage.label()}", table=usage.table):
            if usage.table is not None:
                files: DataFrame | None = self.spark.table(usage.table)
            elif _spark_reads(usage):
                files = self._read_files(usage)
            else:
                files = None
            if files is None:  # Spark can't read these files as the tool does: from Polars
                self.register_frame(f"{name}__polars", usage.rows.collect(engine="streaming"))
                rows = self.spark.table(quote(f"{name}__polars"))
            else:
                rows = files.selectExpr(*_typed_columns(wanted, usage, files))
            if usage.only is not None and ID in wanted:  # explain: its customers' rows
                self.register_frame(f"{name}__only", usage.only.to_frame(ID))
                rows = rows.join(self.spark.table(quote(f"{name}__only")), on=ID,
                                 how="left_semi")
            rows.createOrReplaceTempView(name)

    def _read_files(self, usage: Usage) -> DataFrame:
        """The files as Spark reads them, under the files' own headers (one frame)."""
        reader = self.spark.read
        parquet = [str(p) for p in usage.paths if format_of(p) is PARQUET]
        csv_by_sep: dict[str, list[str]] = {}
        for path in usage.paths:
            if format_of(path) is CSV:
                separator = sniff_csv(path, shown=path).separator
                csv_by_sep.setdefault(separator, []).append(str(path))
        frames = []
        if parquet:
            frames.append(reader.option("mergeSchema", "true").parquet(*parquet))
        for separator, paths in csv_by_sep.items():
            # every cell as text: the projection casts them as the rules' types say
            frames.append(reader.csv(paths, header=True, sep=separator, inferSchema=False,
                                     enforceSchema=False, mode="FAILFAST"))
        out = frames[0]
        for frame in frames[1:]:
            out = out.unionByName(frame, allowMissingColumns=True)
        return out

    def execute(self, statements: list[str]) -> None:
        """Each statement with ``spark.sql``, in order. A step of the day, ``CREATE [OR
        REPLACE] TEMP TABLE|VIEW name AS query`` or ``CACHE TABLE name AS query``, is
        computed now and replaces any view of that name (`_materialise`): Spark has no
        temporary tables, a chain of lazy views would be computed again, whole, wherever
        it is read, and one of cached views still leaves Spark's analyzer and optimizer
        the whole chain (they ran out of memory on the default rules)."""
        for statement in statements:
            with _spark_errors("running the rules' SQL"):
                table = _TEMP_TABLE.match(statement)
                if table is None:
                    self.spark.sql(statement)
                else:
                    self._materialise(table.group("name").strip("`"), table.group("query"))

    def _materialise(self, name: str, query: str) -> None:
        """``query`` computed now and kept as the temporary view ``name``.

        Spark analyses a chain of views again wherever it is read, and its optimizer
        inlines projections into each other through the chain: the decision (the hops
        unrolled into one query of some fifty CTEs) then takes minutes and the driver's
        memory. So each CTE becomes a view of its own (``name__cte``), and the chain is cut
        (``localCheckpoint``: computed, kept, its plan a leaf) every `CUT_EVERY` CTEs and
        at each CTE read more than once; the result is cut too, so later statements that
        read it start from its rows.
        """
        import sqlglot
        from sqlglot import exp

        try:
            tree = sqlglot.parse_one(query, read=NAME)
        except sqlglot.errors.ParseError:  # Spark says what is wrong with it, in its words
            self.spark.sql(query).localCheckpoint(eager=True).createOrReplaceTempView(name)
            return
        with_ = tree.args.get("with_")
        ctes = {cte.alias_or_name: cte for cte in (with_.expressions if with_ else [])}
        views = {cte: f"{name}__{cte}" for cte in ctes}
        reads: dict[str, int] = dict.fromkeys(ctes, 0)
        for table in tree.find_all(exp.Table):
            if not table.db and table.name in views:
                reads[table.name] += 1
                table.set("this", exp.to_identifier(views[table.name], quoted=True))
        tree.set("with_", None)
        chain = 0
        for cte_name, cte in ctes.items():
            frame = self.spark.sql(cte.this.sql(dialect=NAME))
            chain += 1
            if chain >= CUT_EVERY or reads[cte_name] > 1:
                frame, chain = frame.localCheckpoint(eager=True), 0
            frame.createOrReplaceTempView(views[cte_name])
        self.spark.sql(tree.sql(dialect=NAME)).localCheckpoint(eager=True) \
            .createOrReplaceTempView(name)

    def fetch(self, table: str) -> pl.DataFrame:
        """A view or table as a Polars frame, through Arrow; timestamps as naive local
        times in the rules' zone, as the tool keeps them."""
        with _spark_errors(f"reading the result '{table}'"):
            arrow = self.spark.table(table).toArrow()
        frame = pl.from_arrow(arrow)
        assert isinstance(frame, pl.DataFrame)
        local = [
            pl.col(n).dt.convert_time_zone(self.timezone).dt.replace_time_zone(None)
            for n, t in frame.schema.items() if isinstance(t, pl.Datetime) and t.time_zone
        ]
        return frame.with_columns(local) if local else frame

    def close(self) -> None:
        """Drop nothing: temporary views go with the session, which the process keeps
        (starting one takes half a minute)."""


CUT_EVERY = 6  # CTEs in a chain before it is cut (see SparkBackend._materialise)
# the day's steps: a temporary table (DuckDB's words), a temporary view or CACHE TABLE AS
_TEMP_TABLE = re.compile(
    r"\s*(?:CREATE\s+(?:OR\s+REPLACE\s+)?TEMP(?:ORARY)?\s+(?:TABLE|VIEW)|CACHE\s+(?:LAZY\s+)?"
    r"TABLE)\s+(?P<name>`[^`]+`|\S+)\s+AS\s+(?P<query>.*)", re.IGNORECASE | re.DOTALL)


def _spark_reads(usage: Usage) -> bool:
    """Whether Spark reads the files as the tool does: Parquet, and UTF-8 CSV whose
    header is the first line."""
    options = usage.options
    if options is not None and (options.header_row not in (None, 1) or (
            options.encoding or "utf-8").lower().replace("_", "-") not in ("utf-8", "utf8")):
        return False
    return bool(usage.paths) and all(format_of(p) in (CSV, PARQUET) for p in usage.paths)


def _typed_columns(wanted: dict[str, pl.DataType], usage: Usage,
                   files: DataFrame) -> list[str]:
    """The projection from the files' columns to the rules' names and types: as
    `lifecycle_cli.inputs.usage.scan_usage` renames, casts and parses them."""
    types = dict(files.dtypes)
    lookup_key = usage.lookup.key if usage.lookup is not None else None
    out = []
    for name, dtype in wanted.items():
        header = usage.columns.get(name, name)
        if header not in types:  # in none of the files (another part has it): NULL
            out.append(f"CAST(NULL AS {sql_type(dtype)}) AS {quote(name)}")
            continue
        source, spark_type = quote(header), types[header]
        if name == TIMESTAMP:
            # text and zoned timestamps through the session's zone (the rules'), then
            # without zone, as the tool keeps them
            value = (f"CAST(TRY_CAST({source} AS TIMESTAMP) AS TIMESTAMP_NTZ)"
                     if spark_type != "timestamp_ntz" else source)
        elif name == lookup_key and spark_type != "string":
            value = f"TRIM(CAST({source} AS STRING))"  # as scan_usage: a number key as text
        elif spark_type == "string" and dtype == pl.String:
            value = source
        else:
            value = f"TRY_CAST({source} AS {sql_type(dtype)})"
        out.append(f"{value} AS {quote(name)}")
    return out


def _polars_type(spark_type: Any) -> pl.DataType:
    """A catalog column's Spark type as the Polars type the rules see."""
    from pyspark.sql import types as T

    simple: dict[type, pl.DataType] = {
        T.StringType: pl.String(), T.CharType: pl.String(), T.VarcharType: pl.String(),
        T.LongType: pl.Int64(), T.IntegerType: pl.Int32(), T.ShortType: pl.Int16(),
        T.ByteType: pl.Int8(), T.DoubleType: pl.Float64(), T.FloatType: pl.Float32(),
        T.BooleanType: pl.Boolean(), T.DateType: pl.Date(),
        T.TimestampType: pl.Datetime("us"), T.TimestampNTZType: pl.Datetime("us"),
    }
    if isinstance(spark_type, T.DecimalType):
        return pl.Decimal(spark_type.precision, spark_type.scale)
    return simple.get(type(spark_type), pl.String())


def catalog(choice: EngineChoice) -> Callable[[str], dict[str, pl.DataType]]:
    """The session's catalog for ``--usage table:NAME``: a table's columns and types
    (reading the schema starts the session if it isn't running)."""

    def columns(table: str) -> dict[str, pl.DataType]:
        spark = session(choice)
        with _spark_errors(f"reading the table '{table}'", table=table):
            schema = spark.table(table).schema
        return {field.name: _polars_type(field.dataType) for field in schema.fields}

    return columns


def open_spark(choice: EngineChoice) -> SparkBackend:
    """The backend for ``--engine spark``: the process's session, set for ``choice``."""
    return SparkBackend(session(choice), choice.timezone)


register(NAME, open_spark)
register_catalog(NAME, catalog)
