"""Write the small RavenStack-shaped exports in this folder (see README.md).

    python tests/data/ravenstack/make.py

Seeded: the same files every time. Only the standard library, so the files do not
depend on the Polars version.
"""

from __future__ import annotations

import csv
import datetime as dt
import random
from pathlib import Path

HERE = Path(__file__).resolve().parent
FIRST, LAST = dt.date(2023, 1, 1), dt.date(2024, 12, 31)
ACCOUNTS = 40


def hex_id(rng: random.Random, prefix: str, seen: set[str]) -> str:
    while True:
        value = f"{prefix}-{rng.getrandbits(24):06x}"
        if value not in seen:
            seen.add(value)
            return value


def day(rng: random.Random, start: dt.date, end: dt.date) -> dt.date:
    return start + dt.timedelta(days=rng.randint(0, max((end - start).days, 0)))


def flag(value: bool, style: str = "upper") -> str:
    return ("TRUE" if value else "FALSE") if style == "upper" else str(value)


def write(name: str, header: list[str], rows: list[list[object]]) -> None:
    with (HERE / name).open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)


def main() -> None:
    rng = random.Random(20240101)
    seen: set[str] = set()
    accounts, subscriptions, usage, tickets, churns = [], [], [], [], []
    for i in range(ACCOUNTS):
        account = hex_id(rng, "A", seen)
        signup = day(rng, FIRST, dt.date(2024, 9, 30))
        tier = rng.choice(["Basic", "Pro", "Enterprise"])
        # some of the accounts churn, some of them come back (several churn events)
        churns_at = day(rng, signup + dt.timedelta(days=60), LAST) if rng.random() < 0.4 \
            else None
        quiet_from = day(rng, signup + dt.timedelta(days=90), LAST) if rng.random() < 0.2 \
            else None
        accounts.append([account, f"Company_{i}", rng.choice(["EdTech", "FinTech", "DevTools",
                                                                  "HealthTech", "Cybersecurity"]),
                         rng.choice(["US", "UK", "IN", "DE", "FR"]), signup.isoformat(),
                         rng.choice(["partner", "organic", "ads", "event", "other"]), tier,
                         rng.randint(1, 40), flag(rng.random() < 0.2),
                         flag(churns_at is not None)])
        # one to three subscriptions, one after the other
        start = signup
        for _ in range(rng.randint(1, 3)):
            if start > LAST:
                break
            end = day(rng, start + dt.timedelta(days=30), start + dt.timedelta(days=400))
            open_ended = end > LAST or rng.random() < 0.5
            sub = hex_id(rng, "S", seen)
            mrr = rng.choice([0, 199, 833, 2786, 5373])
            subscriptions.append([
                sub, account, start.isoformat(), "" if open_ended else end.isoformat(), tier,
                rng.randint(1, 60), mrr, mrr * 12, flag(mrr == 0), flag(rng.random() < 0.2),
                flag(rng.random() < 0.1), flag(not open_ended), rng.choice(["monthly",
                                                                            "annual"]),
                flag(rng.random() < 0.7)])
            stop = LAST if open_ended else end
            if quiet_from is not None:
                stop = min(stop, quiet_from)
            # a use every few days while the subscription runs
            when = start
            while when <= stop:
                when += dt.timedelta(days=rng.randint(1, 12))
                if when > stop or (churns_at and churns_at < when < churns_at
                                   + dt.timedelta(days=40)):
                    continue
                usage.append([hex_id(rng, "U", seen), sub, when.isoformat(),
                              f"feature_{rng.randint(1, 40)}", rng.randint(1, 20),
                              rng.randint(10, 6000), rng.choice([0, 0, 0, 0, 1, 2]),
                              flag(rng.random() < 0.1, "title")])
            start = stop + dt.timedelta(days=1)
        for _ in range(rng.randint(0, 6)):
            submitted = day(rng, signup, LAST)
            closed = dt.datetime.combine(submitted, dt.time()) + dt.timedelta(
                hours=rng.randint(1, 72))
            # RavenStack writes hours without padding: 2024-07-09 3:00
            tickets.append([hex_id(rng, "T", seen), account, submitted.isoformat(),
                            f"{closed:%Y-%m-%d} {closed.hour}:00", rng.randint(1, 72),
                            rng.choice(["low", "medium", "high", "urgent"]),
                            rng.randint(1, 180),
                            rng.choice(["", "", "3", "4", "5", "1"]),
                            flag(rng.random() < 0.1)])
        if churns_at is not None:
            for k in range(rng.choice([1, 1, 2])):
                when = churns_at - dt.timedelta(days=200 * k)
                if when <= signup:
                    continue
                churns.append([hex_id(rng, "C", seen), account, when.isoformat(),
                               rng.choice(["pricing", "support", "budget", "features",
                                           "unknown"]),
                               round(rng.random() * 100, 2), flag(rng.random() < 0.2),
                               flag(rng.random() < 0.2), flag(k > 0),
                               rng.choice(["", "too expensive", "missing features"])])
    # RavenStack's known mess: a few usage ids twice, and here one subscription that the
    # subscriptions file lacks (its rows reach no account)
    usage += [list(row) for row in usage[5:8]]
    usage.append([hex_id(rng, "U", seen), "S-000000", "2024-05-02", "feature_1", 3, 60, 0,
                  "False"])
    rng.shuffle(usage)
    write("ravenstack_accounts.csv",
          ["account_id", "account_name", "industry", "country", "signup_date",
           "referral_source", "plan_tier", "seats", "is_trial", "churn_flag"], accounts)
    write("ravenstack_subscriptions.csv",
          ["subscription_id", "account_id", "start_date", "end_date", "plan_tier", "seats",
           "mrr_amount", "arr_amount", "is_trial", "upgrade_flag", "downgrade_flag",
           "churn_flag", "billing_frequency", "auto_renew_flag"], subscriptions)
    write("ravenstack_feature_usage.csv",
          ["usage_id", "subscription_id", "usage_date", "feature_name", "usage_count",
           "usage_duration_secs", "error_count", "is_beta_feature"], usage)
    write("ravenstack_support_tickets.csv",
          ["ticket_id", "account_id", "submitted_at", "closed_at", "resolution_time_hours",
           "priority", "first_response_time_minutes", "satisfaction_score",
           "escalation_flag"], tickets)
    write("ravenstack_churn_events.csv",
          ["churn_event_id", "account_id", "churn_date", "reason_code", "refund_amount_usd",
           "preceding_upgrade_flag", "preceding_downgrade_flag", "is_reactivation",
           "feedback_text"], churns)


if __name__ == "__main__":
    main()
