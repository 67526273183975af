"""Tests of the synthetic exports generator (lifecycle_cli.sample)."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import polars as pl
import pytest

from lifecycle_cli import sample
from lifecycle_cli.errors import OptionError
from lifecycle_cli.sample import SampleResult, generate_sample

AS_OF = dt.date(2026, 11, 1)
STAGES = {"Onboarding", "Launched", "Adopting", "Renewal", "Will Churn", "Churned"}
CUSTOMER_SCHEMA = {
    "customer_id": pl.String,
    "name": pl.String,
    "csm": pl.String,
    "segment": pl.String,
    "plan": pl.String,
    "arr": pl.Int64,
    "signup_date": pl.Date,
    "renewal_date": pl.Date,
    "health_score": pl.Int64,
    "status": pl.String,
    "churn_notice": pl.Boolean,
    "stage": pl.String,
    "stage_entered_at": pl.Date,
}
USAGE_SCHEMA = {
    "customer_id": pl.String,
    "timestamp": pl.Datetime("us"),
    "event": pl.String,
    "user_id": pl.String,
    "minutes": pl.Float64,
}


def _gen(out: Path, customers: int = 2_000, usage_rows: int = 40_000, **kw) -> SampleResult:
    kw.setdefault("as_of", AS_OF)
    return generate_sample(out, customers=customers, usage_rows=usage_rows, **kw)


@pytest.fixture(scope="module")
def parquet_sample(tmp_path_factory) -> tuple[SampleResult, pl.DataFrame, pl.DataFrame]:
    res = _gen(tmp_path_factory.mktemp("pq"), 5_000, 100_000, seed=7, fmt="parquet")
    return res, pl.read_parquet(res.customers_path), pl.read_parquet(res.usage_path)


def _files(d: Path) -> dict[str, bytes]:
    return {str(p.relative_to(d)): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_same_arguments_give_byte_identical_files(tmp_path, fmt):
    _gen(tmp_path / "a", seed=3, fmt=fmt)
    _gen(tmp_path / "b", seed=3, fmt=fmt)
    a, b = _files(tmp_path / "a"), _files(tmp_path / "b")
    assert a.keys() == b.keys() and len(a) >= 2
    assert a == b


def test_seed_changes_the_data(tmp_path):
    _gen(tmp_path / "a", seed=1)
    _gen(tmp_path / "b", seed=2)
    assert (tmp_path / "a/usage.csv").read_bytes() != (tmp_path / "b/usage.csv").read_bytes()


def test_customers_do_not_depend_on_usage_rows_or_format(tmp_path):
    r1 = _gen(tmp_path / "a", usage_rows=1_000, seed=5, fmt="parquet")
    r2 = _gen(tmp_path / "b", usage_rows=30_000, seed=5, fmt="csv")
    a = pl.read_parquet(r1.customers_path)
    b = pl.read_csv(r2.customers_path, schema=CUSTOMER_SCHEMA)
    assert a.equals(b)


def test_csv_layout(tmp_path):
    res = _gen(tmp_path, 1_000, 20_000, seed=11)
    assert res.customers_path == tmp_path / "customers.csv"
    assert res.usage_path == tmp_path / "usage.csv"
    head, *rows = res.customers_path.read_text(encoding="utf-8").splitlines()
    assert head == ",".join(CUSTOMER_SCHEMA)
    assert len(rows) == 1_000
    customers = pl.read_csv(res.customers_path, infer_schema=False)
    assert set(customers["churn_notice"].unique()) <= {"TRUE", "FALSE"}
    assert customers["customer_id"].str.contains(r"^C\d{7}$").all()
    assert customers["signup_date"].str.contains(r"^\d{4}-\d\d-\d\d$").all()
    usage_head, first = res.usage_path.read_text(encoding="utf-8").splitlines()[:2]
    assert usage_head == ",".join(USAGE_SCHEMA)
    usage = pl.read_csv(res.usage_path, infer_schema=False)
    assert usage.height == 20_000
    assert usage["timestamp"].str.contains(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$").all()
    assert usage["minutes"].str.contains(r"^\d+\.\d$").all()
    assert re.match(r"^C\d{7},", first)
    # Typed reading gives the same values as the Parquet variant would.
    typed = pl.read_csv(res.customers_path, schema=CUSTOMER_SCHEMA)
    assert typed.schema == pl.Schema(CUSTOMER_SCHEMA)


def test_parquet_layout_and_types(parquet_sample):
    res, customers, usage = parquet_sample
    assert res.customers_path.name == "customers.parquet"
    assert res.usage_path.is_dir() and res.usage_path.name == "usage"
    assert [p.name for p in sorted(res.usage_path.iterdir())] == ["part-00000.parquet"]
    assert customers.schema == pl.Schema(CUSTOMER_SCHEMA)
    assert usage.schema == pl.Schema(USAGE_SCHEMA)
    assert (res.customers, res.usage_rows) == (5_000, 100_000)
    assert customers.height == 5_000 and usage.height == 100_000
    leftovers = [p.name for p in res.customers_path.parent.iterdir() if p.name.startswith(".")]
    assert leftovers == []


@pytest.mark.parametrize(("customers", "usage_rows"), [(1, 0), (1, 7), (37, 5), (300, 1234)])
def test_row_counts_are_exact(tmp_path, customers, usage_rows):
    for fmt in ("csv", "parquet"):
        res = _gen(tmp_path / fmt, customers, usage_rows, fmt=fmt)
        read = pl.read_csv if fmt == "csv" else pl.read_parquet
        assert read(res.customers_path).height == customers
        usage = read(res.usage_path) if fmt == "csv" else pl.read_parquet(res.usage_path)
        assert usage.height == usage_rows
        assert usage.columns == list(USAGE_SCHEMA)


def test_ids_unique_with_leading_zeros(parquet_sample):
    _, customers, usage = parquet_sample
    ids = customers["customer_id"]
    assert ids.n_unique() == ids.len() and ids.null_count() == 0
    assert ids.str.contains(r"^C\d{7}$").all()
    assert ids.str.starts_with("C000").all()
    assert customers["name"].is_unique().all()
    # About 0.05% of usage rows belong to deleted accounts, absent from customers.
    unknown = usage.filter(~pl.col("customer_id").is_in(ids.implode()))
    assert unknown.height == round(100_000 * 0.0005)
    assert unknown["customer_id"].str.contains(r"^C\d{7}$").all()


def test_customer_values(parquet_sample):
    _, c, _ = parquet_sample
    n = c.height
    assert set(c["segment"].unique()) == {"SMB", "Mid-Market", "Enterprise"}
    assert c["segment"].value_counts(sort=True)["segment"][0] == "SMB"
    assert set(c["status"].unique()) == {"active", "churned"}
    assert 0.005 < c["csm"].null_count() / n < 0.04
    assert 0.01 < c["health_score"].null_count() / n < 0.05
    assert c["health_score"].drop_nulls().is_between(0, 100).all()
    seg_arr = c.group_by("segment").agg(pl.col("arr").median()).sort("arr")
    assert seg_arr["segment"].to_list() == ["SMB", "Mid-Market", "Enterprise"]
    assert (c["signup_date"] <= AS_OF).all()
    assert (c["signup_date"] >= AS_OF - dt.timedelta(days=3 * 366)).all()
    days_to_renewal = (c["renewal_date"] - AS_OF).dt.total_days()
    assert days_to_renewal.is_between(1, 366).all()
    assert (c["renewal_date"].dt.month() == c["signup_date"].dt.month()).mean() > 0.99
    assert 0.1 < (days_to_renewal <= 90).mean() < 0.4


def test_stage_and_stage_entered_at_are_consistent(parquet_sample):
    _, c, _ = parquet_sample
    n = c.height
    assert set(c["stage"].drop_nulls().unique()) == STAGES
    assert 0.08 < c["stage"].null_count() / n < 0.12
    no_stage = c.filter(pl.col("stage").is_null())
    assert no_stage["stage_entered_at"].null_count() == no_stage.height
    staged = c.filter(pl.col("stage").is_not_null())
    assert 0.003 < staged["stage_entered_at"].null_count() / staged.height < 0.025
    dated = staged.drop_nulls("stage_entered_at")
    assert (dated["stage_entered_at"] <= AS_OF).all()
    assert (dated["stage_entered_at"] >= dated["signup_date"]).all()
    # Recent signups are onboarding (or have no stage yet); churned ones are mostly Churned.
    recent = c.filter(pl.col("signup_date") > AS_OF - dt.timedelta(days=30))
    assert recent["stage"].drop_nulls().is_in(["Onboarding", "Launched", "Will Churn"]).all()
    assert (recent["stage"].drop_nulls() == "Onboarding").mean() > 0.5
    churned = c.filter(pl.col("status") == "churned")
    assert (churned["stage"] == "Churned").mean() > 0.8
    assert c.filter(pl.col("stage") == "Churned")["status"].is_in(["churned", "active"]).all()
    wc = c.filter(pl.col("stage") == "Will Churn")
    assert ((wc["health_score"] < 40) | wc["churn_notice"]).mean() > 0.6


def test_data_exercises_the_default_rules(parquet_sample):
    """Some customers are due to move by each rule on the as-of date; most are not."""
    _, c, u = parquet_sample
    c = c.with_columns(
        dtr=(pl.col("renewal_date") - pl.lit(AS_OF)).dt.total_days(),
        dis=(pl.lit(AS_OF) - pl.col("stage_entered_at")).dt.total_days(),
        at_risk=(pl.col("health_score") < 40) | pl.col("churn_notice"),
    )
    trained = u.filter(pl.col("event") == "training_completed")["customer_id"].implode()
    day = pl.col("timestamp").dt.date()
    m30 = (
        u.filter(day > AS_OF - dt.timedelta(days=30))
        .group_by("customer_id")
        .agg(
            logins=(pl.col("event") == "login").sum(),
            users=pl.col("user_id").n_unique(),
        )
    )
    c = c.join(m30, on="customer_id", how="left").with_columns(
        pl.col("logins", "users").fill_null(0)
    )
    stage = pl.col("stage")
    due = {
        "trained": (stage == "Onboarding") & pl.col("customer_id").is_in(trained),
        "onboarding_timeout": (stage == "Onboarding") & (pl.col("dis") >= 60),
        "adopted": (stage == "Launched") & (pl.col("users") >= 3) & (pl.col("logins") >= 20),
        "renewal_window": stage.is_in(["Launched", "Adopting"]) & (pl.col("dtr") <= 90),
        "renewed": (stage == "Renewal") & (pl.col("dtr") > 90),
        "risk": stage.is_in(["Onboarding", "Launched", "Adopting", "Renewal"]) & pl.col("at_risk"),
        "saved": (stage == "Will Churn")
        & ~pl.col("at_risk")
        & (pl.col("health_score") >= 60)
        & (pl.col("logins") >= 10),
        "churned": stage.is_in(["Onboarding", "Launched", "Adopting", "Renewal", "Will Churn"])
        & (pl.col("status") == "churned"),
        "won_back": (stage == "Churned") & (pl.col("status") == "active"),
    }
    counts = c.select(**{k: v.fill_null(False).sum() for k, v in due.items()}).row(0, named=True)
    assert all(v > 0 for v in counts.values()), counts
    moving = c.select(pl.any_horizontal(*due.values()).fill_null(False).sum()).item()
    assert moving < 0.1 * c.height
    # Training completions: one row per customer at most.
    per_customer = u.filter(pl.col("event") == "training_completed")["customer_id"]
    assert per_customer.is_unique().all()


def test_usage_values(parquet_sample):
    _, c, u = parquet_sample
    start = dt.datetime.combine(AS_OF - dt.timedelta(days=119), dt.time())
    end = dt.datetime.combine(AS_OF, dt.time(23, 59, 59))
    assert u["timestamp"].is_between(start, end).all()
    assert (u["timestamp"].dt.microsecond() == 0).all()
    assert u["timestamp"].is_sorted()
    shares = u["event"].value_counts(normalize=True).to_dict(as_series=False)
    share = dict(zip(shares["event"], shares["proportion"], strict=True))
    assert set(share) == {"login", "feature_use", "report_export", "api_call", "training_completed"}
    assert 0.55 < share["login"] < 0.65
    assert share["training_completed"] < 0.02
    assert u["user_id"].str.contains(r"^u\d+-\d+$").all()
    same = u["user_id"].str.extract(r"^u(\d+)-") == u["customer_id"].str.slice(
        1
    ).str.strip_chars_start("0")
    assert same.all()
    assert (u["minutes"] >= 0.1).all()
    assert ((u["minutes"] * 10).round(6) == (u["minutes"] * 10).round(0)).all()
    # Activity is skewed, and churned customers are quiet.
    per = c.join(u.group_by("customer_id").len(), on="customer_id", how="left").with_columns(
        pl.col("len").fill_null(0)
    )
    top = per["len"].sort(descending=True)
    assert top[: per.height // 10].sum() > 0.3 * top.sum()
    churned = per.filter(pl.col("stage") == "Churned")["len"].mean()
    adopting = per.filter(pl.col("stage") == "Adopting")["len"].mean()
    assert churned < 0.1 * adopting
    low = per.filter(pl.col("health_score") < 30)["len"].mean()
    high = per.filter(pl.col("health_score") > 70)["len"].mean()
    assert low < high / 3


def test_parquet_parts_are_time_ranges(tmp_path, monkeypatch):
    monkeypatch.setattr(sample, "CHUNK_ROWS", 20_000)
    res = _gen(tmp_path, 1_000, 100_000, fmt="parquet")
    parts = sorted(res.usage_path.iterdir())
    assert [p.name for p in parts] == [f"part-{i:05d}.parquet" for i in range(len(parts))]
    assert len(parts) >= 5
    frames = [pl.read_parquet(p) for p in parts]
    assert sum(f.height for f in frames) == 100_000
    assert max(f.height for f in frames) < 30_000
    assert pl.concat([f["timestamp"] for f in frames]).is_sorted()


def test_rewrite_replaces_the_usage_directory(tmp_path, monkeypatch):
    monkeypatch.setattr(sample, "CHUNK_ROWS", 10_000)
    _gen(tmp_path, 500, 60_000, fmt="parquet")
    assert len(list((tmp_path / "usage").iterdir())) > 1
    monkeypatch.setattr(sample, "CHUNK_ROWS", 5_000_000)
    res = _gen(tmp_path, 500, 1_000, fmt="parquet")
    assert [p.name for p in res.usage_path.iterdir()] == ["part-00000.parquet"]
    assert pl.read_parquet(res.usage_path).height == 1_000
    assert sorted(p.name for p in tmp_path.iterdir()) == ["customers.parquet", "usage"]


def test_failed_write_leaves_previous_files(tmp_path, monkeypatch):
    _gen(tmp_path, 200, 1_000)
    before = _files(tmp_path)

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(pl.DataFrame, "write_csv", boom)
    with pytest.raises(OSError):
        _gen(tmp_path, 300, 2_000, seed=9)
    assert _files(tmp_path) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["customers.csv", "usage.csv"]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"customers": 0},
        {"customers": -5},
        {"usage_rows": -1},
        {"fmt": "xlsx"},
        {"as_of": "2026-11-01"},
        {"seed": -1},
    ],
)
def test_bad_arguments_raise_option_error(tmp_path, kwargs):
    args = {"customers": 10, "usage_rows": 10, "fmt": "csv", "as_of": AS_OF, **kwargs}
    with pytest.raises(OptionError):
        generate_sample(tmp_path, **args)
    assert list(tmp_path.iterdir()) == []
