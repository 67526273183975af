"""Realistic synthetic customers and usage exports, of any size, seeded.

`generate_sample` writes a customers export and a usage export that look like
what a B2B SaaS company pulls out of its CRM and its product analytics, and
that exercise the default rules (rules/default.yaml): on the as-of date most
customers stay where they are, and some move by each rule (initial, trained,
onboarding_timeout, adopted, renewal_window, renewed, risk, saved, churned,
won_back).

How the data is made (all vectorised with numpy and Polars; the only Python
loop is over chunks of a few million usage rows):

- Each customer gets a latent engagement `z`. Health, activity, adoption and
  churn all follow it, so low health goes with low usage.
- Signups grow over three years (more recent signups than old ones). The
  stage is what the rules would have given the customer on the day before the
  as-of date: Onboarding until trained or 60 days, Launched, Adopting once
  several users are active, Renewal in the 90 days before the yearly renewal
  date, Will Churn when at risk, Churned for churned customers. A few
  customers are exactly on the day of a move (trained today, 60 days in
  onboarding today, entering the renewal window today, ...), so a run on the
  as-of date moves them.
- Usage spans the 120 days up to the as-of date (end of day included). Each
  customer's rows fall uniformly on the days it was active, mostly in working
  hours, fewer on weekends. Parts of the Parquet output are consecutive time
  ranges, each sorted by timestamp.
- About 0.05% of the usage rows belong to deleted accounts: ids in the gaps of
  the customer numbering, absent from the customers table.

The customers table depends only on (customers, seed, as_of), never on the
number of usage rows or the format; the same arguments give byte-identical
files.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import shutil
import tempfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from .errors import OptionError
from .progress import Progress, no_progress

__all__ = ["SampleResult", "generate_sample"]

STAGES = ("Onboarding", "Launched", "Adopting", "Renewal", "Will Churn", "Churned")
ONB, LAU, ADO, REN, WCH, CHU = range(6)

EVENTS = ("login", "feature_use", "report_export", "api_call", "training_completed")
LOGIN, TRAINING = 0, 4
# Share of each ordinary event (training_completed rows are added on their own).
_EVENT_P = np.array([0.60, 0.25, 0.06, 0.09])
# Minutes per event: lognormal(log(median), sigma).
_MIN_MEDIAN = np.array([2.5, 9.0, 1.5, 0.3, 45.0])
_MIN_SIGMA = np.array([0.7, 0.8, 0.5, 0.5, 0.3])

CUSTOMER_COLUMNS = (
    "customer_id", "name", "csm", "segment", "plan", "arr", "signup_date", "renewal_date",
    "health_score", "status", "churn_notice", "stage", "stage_entered_at",
)  # fmt: skip
USAGE_COLUMNS = ("customer_id", "timestamp", "event", "user_id", "minutes")

SEGMENTS = ("SMB", "Mid-Market", "Enterprise")
_SEGMENT_P = np.array([0.68, 0.24, 0.08])
PLANS = ("Starter", "Growth", "Pro", "Enterprise")
_PLAN_P = np.array(  # plan shares per segment
    [[0.55, 0.38, 0.07, 0.00], [0.05, 0.40, 0.47, 0.08], [0.00, 0.05, 0.25, 0.70]]
)
_ARR_MEDIAN = np.array([9_000.0, 45_000.0, 220_000.0])
_ARR_SIGMA = np.array([0.6, 0.5, 0.6])
_USERS_MEDIAN = np.array([4.0, 12.0, 40.0])
_USERS_SIGMA = np.array([0.6, 0.6, 0.7])
# Relative activity per day of a customer in each stage.
_STAGE_ACTIVITY = np.array([0.8, 0.5, 1.3, 1.1, 0.35, 0.3])

_NAME_FIRST = (
    "Acme", "Northwind", "Globex", "Initech", "Blue Harbor", "Summit", "Redwood", "Silverline",
    "Brightpath", "Ironclad", "Evergreen", "Nimbus", "Quantum", "Polaris", "Cedar", "Granite",
    "Lumen", "Orbit", "Vertex", "Keystone", "Atlas", "Beacon", "Falcon", "Maple", "Pioneer",
    "Sterling", "Zenith", "Crescent", "Harborview", "Juniper", "Kestrel", "Meridian", "Oakridge",
    "Prairie", "Riverbend", "Sequoia", "Tidewater", "Umbra", "Wildflower", "Yellowstone",
    "Müller & Söhne", "O'Brien", "Café Olé", "Nordlys", "São Paulo",
)  # fmt: skip
_NAME_SECOND = (
    "Analytics", "Systems", "Labs", "Logistics", "Health", "Foods", "Media", "Software",
    "Robotics", "Energy", "Finance", "Partners", "Retail", "Networks", "Bio", "Studios", "Works",
    "Consulting", "Capital", "Dynamics", "Insurance", "Education", "Travel", "Manufacturing",
    "Security", "Cloud", "Mobility", "Ventures", "Holdings", "Group",
)  # fmt: skip
_NAME_LEGAL = ("", "", "", "", "", ", Inc.", " Ltd", " GmbH", " S.A.", " LLC")
CSM_NAMES = (
    "Alice Moreau", "Ben Okafor", "Chloé Dubois", "Daniel Kim", "Elena Petrova", "Farid Haddad",
    "Grace Liu", "Hannah Schmidt", "Ivan Novak", "Julia Santos", "Kenji Watanabe", "Laura Rossi",
    "Marcus Johnson", "Nadia Benali", "Oscar Lindqvist", "Priya Raman", "Quentin Martin",
    "Rosa García", "Samuel Adeyemi", "Zoë O'Neill",
)  # fmt: skip

USAGE_DAYS = 120  # usage covers the 120 days ending on the as-of date
HISTORY_DAYS = 3 * 365  # signups go back about three years
CHUNK_ROWS = 5_000_000  # at most about this many usage rows are held (and written) at once
_GROWTH = 0.0015  # signups per day grow by this rate (about +70% a year)
_UNKNOWN_SHARE = 0.0005  # usage rows of deleted accounts
_EMPTY_STAGE_SHARE = 0.10
_NEW_DAYS = 20  # customers signed up in the last 20 days have no stage yet
_EPOCH = dt.date(1970, 1, 1)


@dataclass(frozen=True)
class SampleResult:
    customers_path: Path
    usage_path: Path  # usage.csv, or the usage/ directory of parquet parts
    customers: int
    usage_rows: int


@dataclass(frozen=True)
class _Activity:
    """What the usage generator needs to know of each customer (arrays of length n)."""

    first_day: np.ndarray  # first active day, as an offset from the as-of date (<= 0)
    days: np.ndarray  # number of active days in the usage window (0: no usage)
    rate: np.ndarray  # relative activity per day
    users: np.ndarray  # number of users
    training_day: np.ndarray  # offset of the training_completed row, or 1 for none
    burst: np.ndarray  # extra logins in the last 30 days (customers about to move)


def generate_sample(
    out_dir: Path,
    *,
    customers: int,
    usage_rows: int,
    seed: int = 42,
    fmt: str = "csv",
    as_of: dt.date,
    progress: Progress = no_progress,
) -> SampleResult:
    """Write synthetic `customers` and `usage` exports into `out_dir`.

    fmt "csv": customers.csv and usage.csv. fmt "parquet": customers.parquet and
    a directory usage/ of part-00000.parquet, ... (at most about 5M rows each).
    Every file is written under a temporary name and renamed into place; an
    existing usage/ directory is replaced as a whole.
    """
    if isinstance(customers, bool) or not isinstance(customers, int) or customers < 1:
        raise OptionError(f"--customers must be a whole number >= 1, not {customers!r}")
    if isinstance(usage_rows, bool) or not isinstance(usage_rows, int) or usage_rows < 0:
        raise OptionError(f"--usage-rows must be a whole number >= 0, not {usage_rows!r}")
    if customers > 99_999_999:
        raise OptionError("--customers must be at most 99,999,999")
    if fmt not in ("csv", "parquet"):
        raise OptionError(f"--format must be csv or parquet for sample data, not {fmt!r}")
    if isinstance(as_of, dt.datetime) or not isinstance(as_of, dt.date):
        raise OptionError(f"as_of must be a date, not {as_of!r}")
    if not isinstance(seed, int) or seed < 0:
        raise OptionError(f"--seed must be a whole number >= 0, not {seed!r}")

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    cust_seq, usage_seq = np.random.SeedSequence(seed).spawn(2)

    table, ids, activity = _make_customers(customers, np.random.default_rng(cust_seq), as_of)
    chunks = _counted(
        _usage_chunks(usage_rows, ids, activity, np.random.default_rng(usage_seq), as_of),
        usage_rows, progress)

    if fmt == "csv":
        customers_path = out_dir / "customers.csv"
        usage_path = out_dir / "usage.csv"
        csv_table = table.with_columns(
            pl.when(pl.col("churn_notice")).then(pl.lit("TRUE")).otherwise(pl.lit("FALSE"))
            .alias("churn_notice")
        )  # fmt: skip
        _atomic_write(customers_path, lambda p: csv_table.write_csv(p))
        _atomic_write(usage_path, lambda p: _write_usage_csv(p, chunks))
    else:
        customers_path = out_dir / "customers.parquet"
        usage_path = out_dir / "usage"
        _atomic_write(customers_path, lambda p: table.write_parquet(p))
        _write_usage_parquet_dir(usage_path, chunks)
    return SampleResult(customers_path, usage_path, customers, usage_rows)


# --------------------------------------------------------------------------- customers


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _pick(rng: np.random.Generator, p: np.ndarray, n: int) -> np.ndarray:
    """n draws of a category with probabilities p (vectorised)."""
    return np.searchsorted(np.cumsum(p)[:-1], rng.random(n), side="right")


def _make_customers(
    n: int, rng: np.random.Generator, as_of: dt.date
) -> tuple[pl.DataFrame, pl.Series, _Activity]:
    # Customer numbers with gaps: the gaps are deleted accounts (seen only in usage).
    span = n + max(1, n // 20)
    gone = np.zeros(span, dtype=bool)
    gone[rng.choice(span, size=span - n, replace=False)] = True
    numbers = np.flatnonzero(~gone) + 1
    deleted = np.flatnonzero(gone) + 1

    segment = _pick(rng, _SEGMENT_P, n)
    plan_cum = np.cumsum(_PLAN_P, axis=1)[segment]
    plan = (rng.random(n)[:, None] >= plan_cum[:, :-1]).sum(axis=1)
    arr = np.exp(np.log(_ARR_MEDIAN[segment]) + _ARR_SIGMA[segment] * rng.standard_normal(n))
    arr = np.maximum(1_200, np.round(arr / 100) * 100).astype(np.int64)

    z = rng.standard_normal(n)  # latent engagement
    health = np.clip(np.round(65 + 16 * z + 9 * rng.standard_normal(n)), 0, 100).astype(np.int64)
    health_null = rng.random(n) < 0.03

    # Signup age in days, with exponential growth of signups over three years.
    u = rng.random(n)
    age = np.floor(-np.log1p(-u * (1 - math.exp(-_GROWTH * HISTORY_DAYS))) / _GROWTH)
    age = np.clip(age, 0, HISTORY_DAYS).astype(np.int64)

    as_of_day = (as_of - _EPOCH).days
    signup_epoch = as_of_day - age
    renewal_epoch, prev_epoch = _anniversaries(signup_epoch, as_of)
    dtr = renewal_epoch - as_of_day  # days to renewal, 1..366
    prev_off = prev_epoch - as_of_day  # offset of the last anniversary (<= 0)
    has_prev = prev_epoch > signup_epoch  # the customer renewed at least once

    # Onboarding ends by training (75%, after 10-59 days) or by the 60-day timeout.
    trains = rng.random(n) < 0.75
    train_after = rng.integers(10, 60, n)
    launch_after = np.where(trains, train_after, 60)
    adopter = rng.random(n) < _sigmoid(0.9 + 0.8 * z)
    adopt_after = launch_after + 7 + np.floor(rng.exponential(25.0, n)).astype(np.int64)

    # The stage the rules gave the customer up to yesterday, before overlays.
    first_year = ~has_prev
    fy_adopted = adopter & (age > adopt_after)
    stage = np.where(first_year & ~fy_adopted, LAU, ADO)
    entered = np.where(
        first_year, np.where(fy_adopted, adopt_after - age, launch_after - age), prev_off
    )
    in_window = dtr <= 89  # dtr == 90: the renewal window opens today
    stage = np.where(in_window, REN, stage)
    entered = np.where(in_window, dtr - 90, entered)
    renewed_today = has_prev & (prev_off == 0)
    stage = np.where(renewed_today, REN, stage)
    entered = np.where(renewed_today, -90, entered)
    onboarding = age <= launch_after  # == : trained or timed out today
    stage = np.where(onboarding, ONB, stage)
    entered = np.where(onboarding, -age, entered)
    pending_adopt = first_year & adopter & (age == adopt_after) & ~in_window & ~onboarding

    # Churn: mostly low-engagement customers older than 100 days.
    churned = (age > 100) & (rng.random(n) < _sigmoid(-3.0 - 1.1 * z))
    health = np.where(churned, np.maximum(0, health - 15), health)
    churn_notice = np.where(churned, rng.random(n) < 0.5, rng.random(n) < _sigmoid(-4.8 - z))
    at_risk = (~health_null & (health < 40)) | churn_notice

    # At-risk customers are in Will Churn, except those whose risk shows today.
    risk_since = np.maximum(-age, -rng.geometric(1 / 20, n))
    to_risk = ~churned & at_risk & (rng.random(n) < 0.96) & (risk_since < 0)
    stage = np.where(to_risk, WCH, stage)
    entered = np.where(to_risk, risk_since, entered)
    # A few healthy-again customers are still in Will Churn (some get saved today).
    recovering = (
        ~churned & ~at_risk & np.isin(stage, (LAU, ADO, REN)) & ~pending_adopt
        & (rng.random(n) < 0.02)
    )  # fmt: skip
    recover_since = np.maximum(-age + launch_after + 1, -rng.geometric(1 / 30, n))
    recovering &= recover_since < 0
    stage = np.where(recovering, WCH, stage)
    entered = np.where(recovering, recover_since, entered)

    # Churned customers left 90 days after signup or later; 3% leave today.
    churn_off = -age + 90 + np.floor(rng.random(n) * (age - 90)).astype(np.int64)
    churns_today = churned & (rng.random(n) < 0.03)
    churn_off = np.where(churns_today, 0, churn_off)
    in_churned = churned & ~churns_today
    stage = np.where(in_churned, CHU, stage)
    entered = np.where(in_churned, churn_off, entered)
    # A few churned customers signed again: status active, still in Churned.
    won_back = in_churned & (rng.random(n) < 0.03)
    status_churned = churned & ~won_back
    # They came back healthy enough to sign: no notice, fair health.
    health = np.where(won_back, np.clip(np.round(rng.normal(68, 10, n)), 40, 100), health)
    health = health.astype(np.int64)
    churn_notice = np.where(won_back, False, churn_notice)

    # New customers (and a few imported ones) have no stage yet.
    new = age < _NEW_DAYS
    p_old = max(0.0, (_EMPTY_STAGE_SHARE * n - new.sum()) / max(1, n - new.sum()))
    no_stage = new | (rng.random(n) < p_old)
    no_entered = no_stage | (rng.random(n) < 0.01)

    # Activity in the usage window.
    first_day = np.maximum(-(USAGE_DAYS - 1), -age)
    last_day = np.where(in_churned & ~won_back, churn_off, 0)
    days = np.maximum(0, last_day - first_day + 1)
    users = np.ceil(
        np.exp(np.log(_USERS_MEDIAN[segment]) + _USERS_SIGMA[segment] * rng.standard_normal(n))
    ).astype(np.int64)
    users = np.clip(users, 1, 400)
    users = np.where(stage == ONB, np.minimum(users, 5), users)
    users = np.where((stage == LAU) & ~pending_adopt, np.minimum(users, 2), users)
    users = np.where(pending_adopt, np.maximum(users, 3), users)
    engagement = np.exp(0.8 * z) * rng.lognormal(0.0, 0.6, n)
    rate = engagement * np.sqrt(users) * _STAGE_ACTIVITY[stage]
    rate = np.where(churned & ~won_back, rate * 0.5, rate)
    training_day = np.where(trains, train_after - age, 1)
    training_day = np.where(
        (training_day >= first_day) & (training_day <= last_day) & (days > 0), training_day, 1
    )
    burst = np.zeros(n, dtype=np.int64)
    burst = np.where(pending_adopt & (stage == LAU), 22, burst)
    saveable = recovering & ~health_null & (health >= 60) & (rng.random(n) < 0.6)
    burst = np.where(saveable, 12, burst)

    # Names and owners.
    first = rng.integers(0, len(_NAME_FIRST), n)
    second = rng.integers(0, len(_NAME_SECOND), n)
    legal = rng.integers(0, len(_NAME_LEGAL), n)
    csm = rng.integers(0, len(CSM_NAMES), n)
    csm_null = rng.random(n) < 0.02

    ids_all = _customer_ids(np.concatenate([numbers, deleted]))
    num = pl.Series("num", numbers)
    table = pl.DataFrame(
        {
            "customer_id": ids_all[:n],
            "name": _concat(
                [
                    pl.Series(_NAME_FIRST).gather(first),
                    pl.Series(_NAME_SECOND).gather(second),
                    num.cast(pl.String),
                ],
                separator=" ",
            )
            + pl.Series(_NAME_LEGAL).gather(legal),
            "csm": pl.Series(CSM_NAMES).gather(csm).scatter(np.flatnonzero(csm_null), None),
            "segment": pl.Series(SEGMENTS).gather(segment),
            "plan": pl.Series(PLANS).gather(plan),
            "arr": arr,
            "signup_date": _dates(signup_epoch),
            "renewal_date": _dates(renewal_epoch),
            "health_score": pl.Series(health).scatter(np.flatnonzero(health_null), None),
            "status": np.where(status_churned, "churned", "active"),
            "churn_notice": churn_notice,
            "stage": pl.Series(STAGES).gather(stage).scatter(np.flatnonzero(no_stage), None),
            "stage_entered_at": _dates(as_of_day + entered).scatter(
                np.flatnonzero(no_entered), None
            ),
        }
    )
    activity = _Activity(first_day, days, rate, users, training_day, burst)
    return table, ids_all, activity


def _customer_ids(numbers: np.ndarray) -> pl.Series:
    return ("C" + pl.Series("customer_id", numbers).cast(pl.String).str.zfill(7)).alias(
        "customer_id"
    )


def _concat(parts: list[pl.Series], separator: str = "") -> pl.Series:
    frame = pl.DataFrame({f"p{i}": part for i, part in enumerate(parts)})
    return frame.select(pl.concat_str(pl.all(), separator=separator)).to_series()


def _dates(epoch_days: np.ndarray) -> pl.Series:
    return pl.Series(np.asarray(epoch_days, dtype=np.int32)).cast(pl.Date)


def _anniversaries(signup_epoch: np.ndarray, as_of: dt.date) -> tuple[np.ndarray, np.ndarray]:
    """The first yearly anniversary of signup strictly after as_of, and the one before it
    (the signup itself when the customer is in its first year), as days since 1970."""
    signup = pl.col("signup")
    years = pl.lit(as_of.year) - signup.dt.year()
    after = signup.dt.offset_by(pl.format("{}y", years)) > pl.lit(as_of)
    k = pl.when(after).then(years).otherwise(years + 1)
    frame = pl.DataFrame({"signup": _dates(signup_epoch)}).with_columns(k=k)
    frame = frame.select(
        renewal=signup.dt.offset_by(pl.format("{}y", pl.col("k"))),
        previous=signup.dt.offset_by(pl.format("{}y", pl.col("k") - 1)),
    )
    return (
        frame["renewal"].cast(pl.Int32).to_numpy().astype(np.int64),
        frame["previous"].cast(pl.Int32).to_numpy().astype(np.int64),
    )


# --------------------------------------------------------------------------- usage


def _usage_chunks(
    total: int, ids: pl.Series, act: _Activity, rng: np.random.Generator, as_of: dt.date
) -> Iterator[pl.DataFrame]:
    """Yield the usage rows as consecutive time ranges, each sorted by timestamp."""
    n = len(act.days)
    n_deleted = len(ids) - n
    window = np.arange(-(USAGE_DAYS - 1), 1)

    # Fixed rows first: deleted accounts, training completions, bursts of logins.
    n_unknown = min(total, round(total * _UNKNOWN_SHARE)) if n_deleted else 0
    budget = total - n_unknown
    train_c = np.flatnonzero(act.training_day <= 0)[:budget]
    budget -= len(train_c)
    burst_counts = act.burst.copy()
    over = np.cumsum(burst_counts) - budget
    burst_counts = np.where(over > 0, np.maximum(0, burst_counts - over), burst_counts)
    budget -= int(burst_counts.sum())

    # The rest spread over customers by activity, uniform over their active days.
    expected = act.rate * act.days
    if expected.sum() <= 0:  # nobody active in the window: spread evenly
        first_day = np.full(n, window[0])
        days = np.full(n, USAGE_DAYS)
        expected = np.ones(n)
    else:
        first_day, days = act.first_day, act.days
    counts = rng.multinomial(budget, expected / expected.sum()) if budget else np.zeros(n, int)

    # Unknown rows: deleted accounts, a few very active, uniform over the window.
    unk_c = n + np.floor(max(1, n_deleted) * rng.random(n_unknown) ** 3).astype(np.int64)
    unk_day = rng.integers(window[0], 1, n_unknown)
    # Burst logins: in the last 30 days (and after signup).
    burst_c = np.repeat(np.arange(n), burst_counts)
    burst_j = np.arange(len(burst_c)) - np.repeat(np.cumsum(burst_counts) - burst_counts,
                                                  burst_counts)  # fmt: skip
    burst_lo = np.maximum(-29, first_day[burst_c])
    burst_day = burst_lo + np.floor(rng.random(len(burst_c)) * (1 - burst_lo)).astype(np.int64)
    train_day = act.training_day[train_c]

    # Time ranges of about CHUNK_ROWS rows each, by expected rows per day.
    per_day = np.zeros(USAGE_DAYS + 1)
    w = np.divide(counts, days, out=np.zeros(n), where=days > 0)
    np.add.at(per_day, first_day + USAGE_DAYS - 1, w)
    np.add.at(per_day, np.minimum(first_day + days, 1) + USAGE_DAYS - 1, -w)
    per_day = np.cumsum(per_day)[:USAGE_DAYS]
    for d in (unk_day, burst_day, train_day):
        per_day += np.bincount(d + USAGE_DAYS - 1, minlength=USAGE_DAYS)[:USAGE_DAYS]
    n_chunks = min(USAGE_DAYS, max(1, math.ceil(total / (CHUNK_ROWS * 0.9))))
    cum = np.cumsum(per_day)
    cuts = np.searchsorted(cum, cum[-1] * np.arange(1, n_chunks) / n_chunks, side="right")
    bounds = np.unique(np.concatenate([[0], cuts, [USAGE_DAYS]]))
    starts = window[bounds[:-1]]
    ends = window[bounds[1:] - 1]  # inclusive

    remaining = counts.astype(np.int64)
    last_day = first_day + days - 1
    as_of_day = (as_of - _EPOCH).days
    user_prefix = "u" + ids.str.slice(1).cast(pl.Int64).cast(pl.String) + "-"
    all_users = np.concatenate([act.users, np.full(n_deleted, 3)])
    for a, b in zip(starts, ends, strict=True):
        lo = np.maximum(first_day, a)
        span = np.maximum(0, np.minimum(last_day, b) - lo + 1)
        left = np.maximum(0, last_day - lo + 1)
        p = np.divide(span, left, out=np.zeros(n), where=left > 0)
        take = rng.binomial(remaining, np.minimum(p, 1.0))
        remaining -= take
        c = np.repeat(np.arange(n), take)
        day = _working_days(rng, lo[c], span[c], as_of_day)
        event = _pick(rng, _EVENT_P, len(c))
        sel_u = (unk_day >= a) & (unk_day <= b)
        sel_b = (burst_day >= a) & (burst_day <= b)
        sel_t = (train_day >= a) & (train_day <= b)
        c = np.concatenate([c, unk_c[sel_u], burst_c[sel_b], train_c[sel_t]])
        day = np.concatenate([day, unk_day[sel_u], burst_day[sel_b], train_day[sel_t]])
        event = np.concatenate(
            [event, _pick(rng, _EVENT_P, int(sel_u.sum())),
             np.full(int(sel_b.sum()), LOGIN), np.full(int(sel_t.sum()), TRAINING)]
        )  # fmt: skip
        user = 1 + np.floor(all_users[c] * rng.random(len(c)) ** 2.5).astype(np.int64)
        n_gen = len(c) - int(sel_b.sum()) - int(sel_t.sum())
        # Burst logins cycle over at least 3 users so they count as active users.
        bj = burst_j[sel_b]
        user[n_gen : n_gen + len(bj)] = 1 + bj % np.maximum(3, all_users[burst_c[sel_b]])
        yield _usage_frame(rng, ids, user_prefix, c, day, event, user, as_of_day)


def _working_days(
    rng: np.random.Generator, lo: np.ndarray, span: np.ndarray, as_of_day: int
) -> np.ndarray:
    """A day uniformly in [lo, lo + span), with most weekend days drawn again once."""
    day = lo + np.floor(rng.random(len(lo)) * span).astype(np.int64)
    weekend = (as_of_day + day + 3) % 7 >= 5
    again = weekend & (rng.random(len(lo)) < 0.65)
    redraw = lo + np.floor(rng.random(len(lo)) * span).astype(np.int64)
    return np.where(again, redraw, day)


def _usage_frame(
    rng: np.random.Generator,
    ids: pl.Series,
    user_prefix: pl.Series,
    c: np.ndarray,
    day: np.ndarray,
    event: np.ndarray,
    user: np.ndarray,
    as_of_day: int,
) -> pl.DataFrame:
    m = len(c)
    # Time of day: mostly working hours (UTC), some at any hour.
    tod = np.where(
        rng.random(m) < 0.85,
        np.clip(np.round(rng.normal(13.5 * 3600, 2.8 * 3600, m)), 0, 86_399),
        np.floor(rng.random(m) * 86_400),
    ).astype(np.int64)
    seconds = (as_of_day + day) * 86_400 + tod
    minutes = np.exp(np.log(_MIN_MEDIAN[event]) + _MIN_SIGMA[event] * rng.standard_normal(m))
    minutes = np.maximum(0.1, np.round(minutes, 1))
    order = pl.Series(seconds).arg_sort().to_numpy()  # stable, deterministic
    c, event, user = c[order], event[order], user[order]
    return pl.DataFrame(
        {
            "customer_id": ids.gather(c),
            "timestamp": pl.Series(seconds[order] * 1_000_000).cast(pl.Datetime("us")),
            "event": pl.Series(EVENTS).gather(event),
            "user_id": user_prefix.gather(c) + pl.Series(user).cast(pl.String),
            "minutes": minutes[order],
        }
    )


# --------------------------------------------------------------------------- writing


def _atomic_write(path: Path, write) -> None:
    """Write through `write(tmp_path)` to a temporary file beside `path`, then rename."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual mode
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _counted(chunks: Iterator[pl.DataFrame], total: int, progress: Progress
             ) -> Iterator[pl.DataFrame]:
    """The chunks, saying how many usage rows have been made so far."""
    done = 0
    progress("writing usage rows", done, total, "rows")
    for chunk in chunks:
        yield chunk
        done += chunk.height
        progress("writing usage rows", done, total, "rows")


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _pipelined(chunks: Iterator[pl.DataFrame], write) -> None:
    """Call write(i, chunk) for each chunk in order, in a thread, while the next chunk is
    being made (Polars writes release the GIL): about a third faster on two cores."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = None
        for i, chunk in enumerate(chunks):
            if pending is not None:
                pending.result()
            pending = pool.submit(write, i, chunk)
            del chunk
        if pending is not None:
            pending.result()


def _write_usage_csv(path: str, chunks: Iterator[pl.DataFrame]) -> None:
    with open(path, "wb") as fh:

        def write(i: int, chunk: pl.DataFrame) -> None:
            chunk.write_csv(
                fh, include_header=i == 0, datetime_format="%Y-%m-%d %H:%M:%S", float_precision=1
            )

        _pipelined(chunks, write)


def _write_usage_parquet_dir(path: Path, chunks: Iterator[pl.DataFrame]) -> None:
    """Write the parts into a temporary directory, then swap it with `path`."""
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    old = None
    try:
        _pipelined(chunks, lambda i, chunk: chunk.write_parquet(tmp / f"part-{i:05d}.parquet"))
        for part in tmp.iterdir():
            os.chmod(part, 0o666 & ~_umask())
        os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes 0700
        if path.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".old", dir=path.parent))
            os.replace(path, old / path.name)
        os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if old is not None and not path.exists():
            os.replace(old / path.name, path)
        raise
    finally:
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
