"""The Spark backend on a real Spark (local[2], one session for the test run): frames and
usage sources in, SQL run, frames out, equal to what Polars reads; errors in our words."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import pytest
from conftest import write_csv
from polars.testing import assert_frame_equal
from spark_util import choice

from lifecycle_cli import DataError, load, parse_rules
from lifecycle_cli.columns import ID, TIMESTAMP
from lifecycle_cli.day.load import Tables
from lifecycle_cli.errors import OptionError
from lifecycle_cli.sql import backend, spark

pytestmark = pytest.mark.spark

ZONE = "America/New_York"

RULES = f"""\
version: 1
timezone: {ZONE}
stages: [{{name: New}}, {{name: Active}}]
initial_stage: New
columns:
  customers: {{customer_id: account_id}}
sources:
  events:
    columns: {{customer_id: acct, timestamp: happened_at, seats: n_seats}}
  features:
    columns: {{timestamp: used_on}}
    customer_id: {{via: subscriptions}}
lookups:
  subscriptions: {{key: subscription_id, customer_id: account_id}}
metrics:
  events_30d: {{source: events, agg: count, window_days: 30}}
  seats_max: {{source: events, agg: max, column: seats}}
  features_30d: {{source: features, agg: count, window_days: 30}}
transitions:
  - {{id: active, from: New, to: Active, when: "events_30d >= 2"}}
"""

ACCOUNTS = [{"account_id": a, "name": n} for a, n in
            (("0101", "Acme"), ("0102", "Globex"), ("0103", "Initech"))]

# text timestamps as exports write them: naive (local to the rules' zone), ISO with a T,
# a bare date, one with an offset (another zone), one blank; an id no customer has
EVENTS = [
    {"acct": "0101", "happened_at": "2026-10-31 23:30:00", "n_seats": "3", "kind": "login"},
    {"acct": "0101", "happened_at": "2026-10-20T08:00:00", "n_seats": "", "kind": "export"},
    {"acct": "0102", "happened_at": "2026-10-01", "n_seats": "12", "kind": "login"},
    {"acct": "0102", "happened_at": "2026-11-01 02:30:00+00:00", "n_seats": "7",
     "kind": "login"},
    {"acct": "0103", "happened_at": "", "n_seats": "1", "kind": "login"},
    {"acct": "0999", "happened_at": "2026-10-05 10:00:00", "n_seats": "2", "kind": "login"},
]


@pytest.fixture(scope="module")
def rules():
    return parse_rules(RULES)


@pytest.fixture
def backend_(spark_session):
    """The backend as `--engine spark` opens it, in the rules' zone."""
    opened = backend.open_backend(choice(ZONE))
    yield opened
    opened.close()


def write_events_parquet(path: Path) -> Path:
    """The events as a Parquet export: typed columns, zoned timestamps (UTC instants)."""
    frame = pl.DataFrame(EVENTS).with_columns(
        pl.col("n_seats").replace("", None).cast(pl.Int32),
        pl.col("happened_at").replace("", None).str.to_datetime(
            "%Y-%m-%d %H:%M:%S", strict=False, time_zone=ZONE),
    ).with_columns(
        pl.when(pl.col("happened_at").is_null() & (pl.col("acct") != "0103"))
        .then(pl.datetime(2026, 10, 20, 8, time_zone=ZONE))
        .otherwise(pl.col("happened_at")).alias("happened_at"))
    frame = frame.with_columns(pl.col("happened_at").dt.convert_time_zone("UTC"))
    frame.write_parquet(path)
    return path


def loaded_events(tmp_path: Path, rules, events: Path, **load_args):
    customers = write_csv(tmp_path / "accounts.csv", ACCOUNTS)
    return load(rules, customers, {"events": [events]}, **load_args)


def spark_view(be, name: str, order: list[str]) -> pl.DataFrame:
    return be.fetch(name).sort(order, nulls_last=True)


def polars_rows(usage, order: list[str]) -> pl.DataFrame:
    return usage.rows.collect().sort(order, nulls_last=True)


@pytest.mark.parametrize("kind", ["csv", "semicolon_csv", "parquet"])
def test_a_usage_source_in_spark_is_the_rows_polars_reads(tmp_path, rules, backend_, kind):
    """Spark reads the files itself; the view has the rules' names (acct -> customer_id,
    happened_at -> timestamp, n_seats -> seats) and the types and values Polars gives,
    timestamps local to the rules' zone, the offset one converted, the blank one NULL."""
    if kind == "parquet":
        path = write_events_parquet(tmp_path / "events.parquet")
    else:
        path = write_csv(tmp_path / "events.csv", EVENTS)
        if kind == "semicolon_csv":
            path.write_text(path.read_text().replace(",", ";"))
    usage = loaded_events(tmp_path, rules, path).sources["events"]
    backend_.register_usage("events", usage)
    order = [ID, TIMESTAMP, "kind"]
    got, want = spark_view(backend_, "events", order), polars_rows(usage, order)
    assert got.columns == want.columns == [ID, TIMESTAMP, "seats", "kind"]
    assert_frame_equal(got, want)
    assert got.schema[TIMESTAMP] == pl.Datetime("us")
    if kind != "parquet":  # 02:30 UTC is 21:30 the day before in New York
        assert dt.datetime(2026, 10, 31, 22, 30) in got[TIMESTAMP].to_list()


def test_an_aggregation_in_spark_sql_equals_polars(tmp_path, rules, backend_):
    """Hand-written Spark SQL over a registered frame and a usage source: the counts, the
    max and the last timestamp per customer, as Polars computes them."""
    usage = loaded_events(tmp_path, rules, write_csv(tmp_path / "e.csv", EVENTS))
    customers = usage.typed.select(ID, "name")
    backend_.register_frame("customers", customers)
    backend_.register_usage("events", usage.sources["events"])
    backend_.execute([
        "CREATE OR REPLACE TEMPORARY VIEW metrics AS "
        "SELECT c.customer_id, count(e.timestamp) AS n, max(e.seats) AS seats_max, "
        "max(e.timestamp) AS last_seen, "
        "count_if(e.timestamp >= TIMESTAMP_NTZ'2026-10-15 00:00:00') AS n_recent "
        "FROM customers c LEFT JOIN events e ON e.customer_id = c.customer_id "
        "GROUP BY c.customer_id",
    ])
    got = backend_.fetch("metrics").sort(ID)
    frame = usage.sources["events"].frame
    want = (customers.lazy().join(frame, on=ID, how="left")
            .group_by(ID).agg(pl.col(TIMESTAMP).count().alias("n"),
                              pl.col("seats").max().alias("seats_max"),
                              pl.col(TIMESTAMP).max().alias("last_seen"),
                              (pl.col(TIMESTAMP) >= dt.datetime(2026, 10, 15)).sum()
                              .alias("n_recent"))
            .sort(ID).collect())
    assert_frame_equal(got, want, check_dtypes=False)
    assert got["n"].to_list() == [2, 2, 0]


def test_a_source_through_a_lookup(tmp_path, rules, backend_):
    """Rows that carry a subscription id keep it (the SQL joins the lookup), the key as
    Polars reads it."""
    customers = write_csv(tmp_path / "accounts.csv", ACCOUNTS)
    subs = write_csv(tmp_path / "subs.csv", [
        {"subscription_id": s, "account_id": a} for s, a in
        (("S1", "0101"), ("S2", "0101"), ("S3", "0102"))])
    features = write_csv(tmp_path / "features.csv", [
        {"subscription_id": s, "used_on": d, "feature": f} for s, d, f in
        ((" S1", "2026-10-30", "a"), ("S3", "2026-10-02", "b"), ("S9", "2026-10-03", "c"))])
    loaded = load(rules, customers, {"features": [features]},
                  tables=Tables(lookups={"subscriptions": subs}))
    usage = loaded.sources["features"]
    backend_.register_usage("features", usage)
    order = ["feature"]
    got = spark_view(backend_, "features", order)
    assert got.columns == ["subscription_id", TIMESTAMP, "feature"]
    assert_frame_equal(got, usage.rows.collect().sort(order))


def test_a_csv_spark_cannot_read_as_the_tool_does_comes_from_polars(tmp_path, rules,
                                                                     backend_):
    """A cp1252 export (--encoding) is streamed from Polars: the same rows all the same."""
    path = tmp_path / "events.csv"
    write_csv(path, [{**r, "kind": r["kind"] + "\u00e9"} for r in EVENTS])
    path.write_bytes(path.read_text(encoding="utf-8").encode("cp1252"))
    usage = loaded_events(tmp_path, rules, path, encoding="cp1252").sources["events"]
    backend_.register_usage("events", usage)
    order = [ID, TIMESTAMP, "kind"]
    assert_frame_equal(spark_view(backend_, "events", order), polars_rows(usage, order))


def test_spark_reads_only_the_columns_the_sql_uses(tmp_path, rules, backend_, spark_session):
    """The projection to the rules' names prunes: a query on the count reads the id and
    the timestamp from the Parquet file, not `kind` or the seats."""
    path = write_events_parquet(tmp_path / "events.parquet")
    backend_.register_usage("events", loaded_events(tmp_path, rules, path).sources["events"])
    plan = spark_session.sql(
        "SELECT customer_id, count(timestamp) FROM events GROUP BY customer_id"
    )._jdf.queryExecution().executedPlan().toString()
    schema = plan[plan.index("ReadSchema"):].splitlines()[0]
    assert "acct" in schema and "happened_at" in schema
    assert "kind" not in schema and "n_seats" not in schema


def plan_of(spark_session, view: str) -> str:
    return spark_session.table(view)._jdf.queryExecution().analyzed().toString()


def test_a_temp_table_is_computed_once_and_its_plan_cut(backend_, spark_session):
    """`CREATE OR REPLACE TEMP TABLE` (the words the day's SQL uses; Spark has no temporary
    tables) is a view of rows computed at once: a later query starts from them, not from
    the query that made them. Replacing it gives the new rows."""
    for n, create in ((3, "CREATE OR REPLACE TEMP TABLE"), (5, "CREATE TEMPORARY VIEW")):
        backend_.execute([f"{create} lc_t AS SELECT id FROM range({n})"])
        assert "Range" not in plan_of(spark_session, "lc_t")
        assert backend_.fetch("lc_t")["id"].to_list() == list(range(n))


def test_a_long_chain_of_ctes_is_cut(backend_, spark_session):
    """Fifty CTEs, each read by the next (the hops unrolled): each a view of its own, the
    chain cut every few, and the result right."""
    ctes = ["c0 AS (SELECT id AS v FROM range(4))"] + [
        f"c{i} AS (SELECT v + 1 AS v, CASE WHEN v % 2 = 0 THEN 'even' ELSE 'odd' END AS k "
        f"FROM c{i - 1})" for i in range(1, 50)]
    backend_.execute([f"CREATE OR REPLACE TEMP TABLE lc_chain AS WITH {', '.join(ctes)} "
                      "SELECT a.v, a.k FROM c49 AS a JOIN c49 AS b ON a.v = b.v ORDER BY v"])
    got = backend_.fetch("lc_chain")
    assert got["v"].to_list() == [49, 50, 51, 52]
    assert got["k"].to_list() == ["even", "odd", "even", "odd"]  # of c48's v
    # the views of the chain: none reads more than a few of the others
    assert "lc_chain__c48" in plan_of(spark_session, "lc_chain__c49") or \
        "LogicalRDD" in plan_of(spark_session, "lc_chain__c49")
    assert "lc_chain__c40" not in plan_of(spark_session, "lc_chain__c49")


def test_frames_round_trip_with_their_types(backend_):
    """Every type the pipeline hands over comes back as it went: naive datetimes stay
    naive local times, dates, booleans, text with leading zeros, NULLs, categoricals as
    text."""
    frame = pl.DataFrame({
        ID: ["007", "010", None],
        "arr": [1.5, None, 3.0],
        "seats": pl.Series([1, None, 3], dtype=pl.Int32),
        "big": [2**40, 0, None],
        "ok": [True, None, False],
        "renewal": [dt.date(2026, 12, 1), None, dt.date(2027, 1, 31)],
        "entered": [dt.datetime(2026, 3, 8, 2, 30), None, dt.datetime(2026, 11, 1, 1, 30)],
        "plan": pl.Series(["Pro", "Basic", None], dtype=pl.Categorical),
        "nothing": [None, None, None],
    })
    backend_.register_frame("round_trip", frame)
    got = backend_.fetch("round_trip")
    want = frame.with_columns(pl.col("plan").cast(pl.String),
                              pl.col("nothing").cast(pl.String))
    assert_frame_equal(got, want)


def test_a_catalog_table_is_a_usage_source(tmp_path, rules, backend_, spark_session):
    """--usage events=table:NAME: the columns come from Spark's catalog, mapped to the
    rules' names like a file's header, and the view has the rows Polars reads from the
    table's files."""
    (tmp_path / "table").mkdir()
    path = write_events_parquet(tmp_path / "table" / "events.parquet")
    spark_session.sql(f"CREATE TABLE events_ext USING parquet LOCATION '{tmp_path / 'table'}'")
    try:
        customers = write_csv(tmp_path / "accounts.csv", ACCOUNTS)
        loaded = load(rules, customers, {"events": ["table:events_ext"]},
                      catalog=spark.catalog(choice(ZONE)))
        usage = loaded.sources["events"]
        assert usage.table == "events_ext" and usage.paths == []
        backend_.register_usage("events", usage)
        files = loaded_events(tmp_path, rules, path).sources["events"]
        assert list(usage.schema) == list(files.schema)
        order = [ID, TIMESTAMP, "kind"]
        assert_frame_equal(spark_view(backend_, "events", order), polars_rows(files, order))
    finally:
        spark_session.sql("DROP TABLE IF EXISTS events_ext")


def test_catalog_table_errors(tmp_path, rules, spark_session):
    customers = write_csv(tmp_path / "accounts.csv", ACCOUNTS)
    with pytest.raises(OptionError, match="add --engine spark to `lifecycle run`"):
        load(rules, customers, {"events": ["table:db.events"]})
    with pytest.raises(DataError) as caught:
        load(rules, customers, {"events": ["table:nowhere.events"]},
             catalog=spark.catalog(choice(ZONE)))
    text = str(caught.value)
    assert "'nowhere.events' is not in Spark's catalog" in text
    assert "\tat " not in text and "Traceback" not in text
    spark_session.sql("CREATE OR REPLACE TEMPORARY VIEW no_time AS SELECT 'x' AS acct, "
                      "1 AS n_seats")
    with pytest.raises(DataError, match="has no column 'happened_at'"):
        load(rules, customers, {"events": ["table:no_time"]},
             catalog=spark.catalog(choice(ZONE)))


def test_a_file_spark_cannot_read_is_a_plain_error(tmp_path, backend_, spark_session):
    """A Java error from deep in a Spark job: its telling message and its root cause,
    one line, no stack trace."""
    (tmp_path / "bad.parquet").write_text("not parquet")
    spark_session.sql(f"CREATE TABLE bad_ext (x INT) USING parquet LOCATION '{tmp_path}'")
    try:
        with pytest.raises(DataError) as caught:
            backend_.fetch("bad_ext")
    finally:
        spark_session.sql("DROP TABLE IF EXISTS bad_ext")
    text = str(caught.value)
    assert "is not a Parquet file" in text and "\tat " not in text
    assert "An error occurred while calling" not in text


def test_sql_that_fails_is_a_plain_error_without_a_java_stack_trace(backend_, capfd):
    with pytest.raises(DataError) as caught:  # ANSI: an error (the compiler avoids it)
        backend_.execute(["CREATE OR REPLACE TEMPORARY VIEW bad AS SELECT 1 / 0 AS x"])
    text = str(caught.value)
    assert "DIVIDE_BY_ZERO" in text and len(text.splitlines()) == 1
    with pytest.raises(DataError, match="PARSE_SYNTAX_ERROR"):
        backend_.execute(["CREATE TEMPORARY VIEW x AS SELEC 1"])
    captured = capfd.readouterr()
    assert "Py4JJavaError" not in captured.err and "\tat org.apache" not in captured.err


def test_the_session_has_the_rules_zone_and_ansi(spark_session):
    backend.open_backend(choice("Asia/Tokyo"))
    assert spark_session.conf.get("spark.sql.session.timeZone") == "Asia/Tokyo"
    assert spark_session.conf.get("spark.sql.ansi.enabled") == "true"
    assert spark_session.sql(
        "SELECT CAST(CAST(TIMESTAMP_NTZ'2026-01-01 23:30:00' AS TIMESTAMP) AS DATE)"
    ).collect()[0][0] == dt.date(2026, 1, 1)


def test_spark_conf_options():
    assert spark.parse_conf(["spark.driver.memory=8g", " spark.sql.shuffle.partitions = 4"]) \
        == {"spark.driver.memory": "8g", "spark.sql.shuffle.partitions": "4"}
    with pytest.raises(OptionError, match="not key=value"):
        spark.parse_conf(["spark.driver.memory"])
    with pytest.raises(OptionError, match="set by lifecycle"):
        spark.parse_conf(["spark.sql.session.timeZone=UTC"])


def test_a_static_setting_on_the_running_session_is_a_plain_error(spark_session):
    with pytest.raises(OptionError) as caught:
        spark.session(choice(**{"spark.sql.warehouse.dir": "/elsewhere"}))
    assert "fixed when the session starts" in str(caught.value)
