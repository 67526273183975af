-- The default rules (rules/default.yaml) as one DuckDB query, hand-written.
--
-- Used by bench/bench_run.py as the yardstick for `lifecycle run`. It follows
-- SPEC.md "How a run decides" for rules/default.yaml only:
--
-- * metrics: usage after the as-of date is ignored (and rows with no
--   timestamp); window_days 30 keeps the days (as_of - 30, as_of]; the day of
--   a timestamp is its calendar day (timezone UTC, timestamps without a zone);
--   count/n_unique/sum give 0 and any gives false for a customer with no rows;
--   n_unique ignores NULL.
-- * derived: days_to_renewal = renewal_date - as_of in days;
--   at_risk = health_score < 40 OR churn_notice (SQL NULL logic).
-- * customers with no stage get Onboarding, entered on the as-of date (hop 0).
-- * each hop: among the rules whose `from` names the current stage ("*": every
--   non-terminal stage except the rule's `to`) and whose condition is true
--   (NULL counts as false), the highest priority wins, ties by file order.
--   The CASE below lists the rules in that order: churned (100), risk (10),
--   then trained, onboarding_timeout, adopted, renewal_window, renewed, saved,
--   won_back (0, file order). A move enters the stage on the as-of date, so
--   days_in_stage is 0 afterwards.
-- * a customer whose winning rule would take it to a stage it already held in
--   this run (its starting stage included) does not move and moves no more.
-- * max_hops = 6 (the number of stages): hops 1..6 are unrolled below.
--
-- Parameters, substituted as SQL literals by bench_run.py before running:
--   __CUSTOMERS__  path of customers.parquet, e.g. '/data/customers.parquet'
--   __USAGE__      glob of the usage parts,   e.g. '/data/usage/*.parquet'
--   __AS_OF__      the as-of date,            e.g. DATE '2026-11-01'
--
-- Output: one row per customer: customer_id, the final stage and
-- stage_entered_at, previous_stage, days_in_stage, derived values, metrics,
-- `moves` (the rule ids of this run's moves, in order) and `looped` (stopped
-- by the loop guard).
WITH
usage AS (
    SELECT
        customer_id,
        event,
        user_id,
        minutes,
        "timestamp",
        CAST("timestamp" AS DATE) > __AS_OF__ - 30 AS in_30d
    FROM read_parquet(__USAGE__)
    WHERE "timestamp" IS NOT NULL AND CAST("timestamp" AS DATE) <= __AS_OF__
),
metrics AS (
    SELECT
        customer_id,
        count(*) FILTER (WHERE event = 'login' AND in_30d) AS logins_30d,
        count(DISTINCT user_id) FILTER (WHERE in_30d) AS active_users_30d,
        sum(minutes) FILTER (WHERE in_30d) AS minutes_30d,
        count(*) FILTER (WHERE event = 'training_completed') > 0 AS trained,
        max("timestamp") AS last_seen
    FROM usage
    GROUP BY customer_id
),
hop0 AS (
    SELECT
        c.customer_id,
        c.stage AS previous_stage,
        c.health_score,
        c.status,
        date_diff('day', __AS_OF__, CAST(c.renewal_date AS DATE)) AS days_to_renewal,
        (c.health_score < 40 OR c.churn_notice) AS at_risk,
        coalesce(m.logins_30d, 0) AS logins_30d,
        coalesce(m.active_users_30d, 0) AS active_users_30d,
        coalesce(m.minutes_30d, 0) AS minutes_30d,
        coalesce(m.trained, false) AS trained,
        m.last_seen,
        coalesce(c.stage, 'Onboarding') AS stage,
        CASE WHEN c.stage IS NULL THEN __AS_OF__ ELSE CAST(c.stage_entered_at AS DATE) END
            AS entered,
        [coalesce(c.stage, 'Onboarding')] AS held,
        CASE WHEN c.stage IS NULL THEN ['initial'] ELSE []::VARCHAR[] END AS moves,
        false AS looped
    FROM read_parquet(__CUSTOMERS__) AS c
    LEFT JOIN metrics AS m USING (customer_id)
),
pick1 AS (
    SELECT
        *,
        CASE
            WHEN looped THEN NULL
            WHEN stage IN ('Onboarding', 'Launched', 'Adopting', 'Renewal', 'Will Churn')
                AND status = 'churned' THEN 'churned'
            WHEN stage IN ('Onboarding', 'Launched', 'Adopting', 'Renewal')
                AND at_risk THEN 'risk'
            WHEN stage = 'Onboarding' AND trained THEN 'trained'
            WHEN stage = 'Onboarding'
                AND date_diff('day', entered, __AS_OF__) >= 60 THEN 'onboarding_timeout'
            WHEN stage = 'Launched'
                AND active_users_30d >= 3 AND logins_30d >= 20 THEN 'adopted'
            WHEN stage IN ('Launched', 'Adopting') AND days_to_renewal <= 90 THEN 'renewal_window'
            WHEN stage = 'Renewal' AND days_to_renewal > 90 THEN 'renewed'
            WHEN stage = 'Will Churn'
                AND NOT at_risk AND health_score >= 60 AND logins_30d >= 10 THEN 'saved'
            WHEN stage = 'Churned' AND status = 'active' THEN 'won_back'
        END AS rule
    FROM hop0
),
target1 AS (
    SELECT
        * EXCLUDE (rule),
        rule,
        CASE rule
            WHEN 'churned' THEN 'Churned'
            WHEN 'risk' THEN 'Will Churn'
            WHEN 'trained' THEN 'Launched'
            WHEN 'onboarding_timeout' THEN 'Launched'
            WHEN 'adopted' THEN 'Adopting'
            WHEN 'renewal_window' THEN 'Renewal'
            WHEN 'renewed' THEN 'Adopting'
            WHEN 'saved' THEN 'Adopting'
            WHEN 'won_back' THEN 'Onboarding'
        END AS target
    FROM pick1
),
hop1 AS (
    SELECT
        * EXCLUDE (stage, entered, held, moves, looped, rule, target, move),
        CASE WHEN move THEN target ELSE stage END AS stage,
        CASE WHEN move THEN __AS_OF__ ELSE entered END AS entered,
        CASE WHEN move THEN list_append(held, target) ELSE held END AS held,
        CASE WHEN move THEN list_append(moves, rule) ELSE moves END AS moves,
        looped OR (target IS NOT NULL AND NOT move) AS looped
    FROM (
        SELECT *, target IS NOT NULL AND NOT list_contains(held, target) AS move
        FROM target1
    )
),
pick2 AS (
    SELECT
        *,
        CASE
            WHEN looped THEN NULL
            WHEN stage IN ('Onboarding', 'Launched', 'Adopting', 'Renewal', 'Will Churn')
                AND status = 'churned' THEN 'churned'
            WHEN stage IN ('Onboarding', 'Launched', 'Adopting', 'Renewal')
                AND at_risk THEN 'risk'
            WHEN stage = 'Onboarding' AND trained THEN 'trained'
            WHEN stage = 'Onboarding'
                AND date_diff('day', entered, __AS_OF__) >= 60 THEN 'onboarding_timeout'
            WHEN stage = 'Launched'
                AND active_users_30d >= 3 AND logins_30d >= 20 THEN 'adopted'
            WHEN stage IN ('Launched', 'Adopting') AND days_to_renewal <= 90 THEN 'renewal_window'
            WHEN stage = 'Renewal' AND days_to_renewal > 90 THEN 'renewed'
            WHEN stage = 'Will Churn'
                AND NOT at_risk AND health_score >= 60 AND logins_30d >= 10 THEN 'saved'
            WHEN stage = 'Churned' AND status = 'active' THEN 'won_back'
        END AS rule
    FROM hop1
),
target2 AS (
    SELECT
        * EXCLUDE (rule),
        rule,
        CASE rule
            WHEN 'churned' THEN 'Churned'
            WHEN 'risk' THEN 'Will Churn'
            WHEN 'trained' THEN 'Launched'
            WHEN 'onboarding_timeout' THEN 'Launched'
            WHEN 'adopted' THEN 'Adopting'
            WHEN 'renewal_window' THEN 'Renewal'
            WHEN 'renewed' THEN 'Adopting'
            WHEN 'saved' THEN 'Adopting'
            WHEN 'won_back' THEN 'Onboarding'
        END AS target
    FROM pick2
),
hop2 AS (
    SELECT
        * EXCLUDE (stage, entered, held, moves, looped, rule, target, move),
        CASE WHEN move THEN target ELSE stage END AS stage,
        CASE WHEN move THEN __AS_OF__ ELSE entered END AS entered,
        CASE WHEN move THEN list_append(held, target) ELSE held END AS held,
        CASE WHEN move THEN list_append(moves, rule) ELSE moves END AS moves,
        looped OR (target IS NOT NULL AND NOT move) AS looped
    FROM (
        SELECT *, target IS NOT NULL AND NOT list_contains(held, target) AS move
        FROM target2
    )
),
pick3 AS (
    SELECT
        *,
        CASE
            WHEN looped THEN NULL
            WHEN stage IN ('Onboarding', 'Launched', 'Adopting', 'Renewal', 'Will Churn')
                AND status = 'churned' THEN 'churned'
            WHEN stage IN ('Onboarding', 'Launched', 'Adopting', 'Renewal')
                AND at_risk THEN 'risk'
            WHEN stage = 'Onboarding' AND trained THEN 'trained'
            WHEN stage = 'Onboarding'
                AND date_diff('day', entered, __AS_OF__) >= 60 THEN 'onboarding_timeout'
            WHEN stage = 'Launched'
                AND active_users_30d >= 3 AND logins_30d >= 20 THEN 'adopted'
            WHEN stage IN ('Launched', 'Adopting') AND days_to_renewal <= 90 THEN 'renewal_window'
            WHEN stage = 'Renewal' AND days_to_renewal > 90 THEN 'renewed'
            WHEN stage = 'Will Churn'
                AND NOT at_risk AND health_score >= 60 AND logins_30d >= 10 THEN 'saved'
            WHEN stage = 'Churned' AND status = 'active' THEN 'won_back'
        END AS rule
    FROM hop2
),
target3 AS (
    SELECT
        * EXCLUDE (rule),
        rule,
        CASE rule
            WHEN 'churned' THEN 'Churned'
            WHEN 'risk' THEN 'Will Churn'
            WHEN 'trained' THEN 'Launched'
            WHEN 'onboarding_timeout' THEN 'Launched'
            WHEN 'adopted' THEN 'Adopting'
            WHEN 'renewal_window' THEN 'Renewal'
            WHEN 'renewed' THEN 'Adopting'
            WHEN 'saved' THEN 'Adopting'
            WHEN 'won_back' THEN 'Onboarding'
        END AS target
    FROM pick3
),
hop3 AS (
    SELECT
        * EXCLUDE (stage, entered, held, moves, looped, rule, target, move),
        CASE WHEN move THEN target ELSE stage END AS stage,
        CASE WHEN move THEN __AS_OF__ ELSE entered END AS entered,
        CASE WHEN move THEN list_append(held, target) ELSE held END AS held,
        CASE WHEN move THEN list_append(moves, rule) ELSE moves END AS moves,
        looped OR (target IS NOT NULL AND NOT move) AS looped
    FROM (
        SELECT *, target IS NOT NULL AND NOT list_contains(held, target) AS move
        FROM target3
    )
),
pick4 AS (
    SELECT
        *,
        CASE
            WHEN looped THEN NULL
            WHEN stage IN ('Onboarding', 'Launched', 'Adopting', 'Renewal', 'Will Churn')
                AND status = 'churned' THEN 'churned'
            WHEN stage IN ('Onboarding', 'Launched', 'Adopting', 'Renewal')
                AND at_risk THEN 'risk'
            WHEN stage = 'Onboarding' AND trained THEN 'trained'
            WHEN stage = 'Onboarding'
                AND date_diff('day', entered, __AS_OF__) >= 60 THEN 'onboarding_timeout'
            WHEN stage = 'Launched'
                AND active_users_30d >= 3 AND logins_30d >= 20 THEN 'adopted'
            WHEN stage IN ('Launched', 'Adopting') AND days_to_renewal <= 90 THEN 'renewal_window'
            WHEN stage = 'Renewal' AND days_to_renewal > 90 THEN 'renewed'
            WHEN stage = 'Will Churn'
                AND NOT at_risk AND health_score >= 60 AND logins_30d >= 10 THEN 'saved'
            WHEN stage = 'Churned' AND status = 'active' THEN 'won_back'
        END AS rule
    FROM hop3
),
target4 AS (
    SELECT
        * EXCLUDE (rule),
        rule,
        CASE rule
            WHEN 'churned' THEN 'Churned'
            WHEN 'risk' THEN 'Will Churn'
            WHEN 'trained' THEN 'Launched'
            WHEN 'onboarding_timeout' THEN 'Launched'
            WHEN 'adopted' THEN 'Adopting'
            WHEN 'renewal_window' THEN 'Renewal'
            WHEN 'renewed' THEN 'Adopting'
            WHEN 'saved' THEN 'Adopting'
            WHEN 'won_back' THEN 'Onboarding'
        END AS target
    FROM pick4
),
hop4 AS (
    SELECT
        * EXCLUDE (stage, entered, held, moves, looped, rule, target, move),
        CASE WHEN move THEN target ELSE stage END AS stage,
        CASE WHEN move THEN __AS_OF__ ELSE entered END AS entered,
        CASE WHEN move THEN list_append(held, target) ELSE held END AS held,
        CASE WHEN move THEN list_append(moves, rule) ELSE moves END AS moves,
        looped OR (target IS NOT NULL AND NOT move) AS looped
    FROM (
        SELECT *, target IS NOT NULL AND NOT list_contains(held, target) AS move
        FROM target4
    )
),
pick5 AS (
    SELECT
        *,
        CASE
            WHEN looped THEN NULL
            WHEN stage IN ('Onboarding', 'Launched', 'Adopting', 'Renewal', 'Will Churn')
                AND status = 'churned' THEN 'churned'
            WHEN stage IN ('Onboarding', 'Launched', 'Adopting', 'Renewal')
                AND at_risk THEN 'risk'
            WHEN stage = 'Onboarding' AND trained THEN 'trained'
            WHEN stage = 'Onboarding'
                AND date_diff('day', entered, __AS_OF__) >= 60 THEN 'onboarding_timeout'
            WHEN stage = 'Launched'
                AND active_users_30d >= 3 AND logins_30d >= 20 THEN 'adopted'
            WHEN stage IN ('Launched', 'Adopting') AND days_to_renewal <= 90 THEN 'renewal_window'
            WHEN stage = 'Renewal' AND days_to_renewal > 90 THEN 'renewed'
            WHEN stage = 'Will Churn'
                AND NOT at_risk AND health_score >= 60 AND logins_30d >= 10 THEN 'saved'
            WHEN stage = 'Churned' AND status = 'active' THEN 'won_back'
        END AS rule
    FROM hop4
),
target5 AS (
    SELECT
        * EXCLUDE (rule),
        rule,
        CASE rule
            WHEN 'churned' THEN 'Churned'
            WHEN 'risk' THEN 'Will Churn'
            WHEN 'trained' THEN 'Launched'
            WHEN 'onboarding_timeout' THEN 'Launched'
            WHEN 'adopted' THEN 'Adopting'
            WHEN 'renewal_window' THEN 'Renewal'
            WHEN 'renewed' THEN 'Adopting'
            WHEN 'saved' THEN 'Adopting'
            WHEN 'won_back' THEN 'Onboarding'
        END AS target
    FROM pick5
),
hop5 AS (
    SELECT
        * EXCLUDE (stage, entered, held, moves, looped, rule, target, move),
        CASE WHEN move THEN target ELSE stage END AS stage,
        CASE WHEN move THEN __AS_OF__ ELSE entered END AS entered,
        CASE WHEN move THEN list_append(held, target) ELSE held END AS held,
        CASE WHEN move THEN list_append(moves, rule) ELSE moves END AS moves,
        looped OR (target IS NOT NULL AND NOT move) AS looped
    FROM (
        SELECT *, target IS NOT NULL AND NOT list_contains(held, target) AS move
        FROM target5
    )
),
pick6 AS (
    SELECT
        *,
        CASE
            WHEN looped THEN NULL
            WHEN stage IN ('Onboarding', 'Launched', 'Adopting', 'Renewal', 'Will Churn')
                AND status = 'churned' THEN 'churned'
            WHEN stage IN ('Onboarding', 'Launched', 'Adopting', 'Renewal')
                AND at_risk THEN 'risk'
            WHEN stage = 'Onboarding' AND trained THEN 'trained'
            WHEN stage = 'Onboarding'
                AND date_diff('day', entered, __AS_OF__) >= 60 THEN 'onboarding_timeout'
            WHEN stage = 'Launched'
                AND active_users_30d >= 3 AND logins_30d >= 20 THEN 'adopted'
            WHEN stage IN ('Launched', 'Adopting') AND days_to_renewal <= 90 THEN 'renewal_window'
            WHEN stage = 'Renewal' AND days_to_renewal > 90 THEN 'renewed'
            WHEN stage = 'Will Churn'
                AND NOT at_risk AND health_score >= 60 AND logins_30d >= 10 THEN 'saved'
            WHEN stage = 'Churned' AND status = 'active' THEN 'won_back'
        END AS rule
    FROM hop5
),
target6 AS (
    SELECT
        * EXCLUDE (rule),
        rule,
        CASE rule
            WHEN 'churned' THEN 'Churned'
            WHEN 'risk' THEN 'Will Churn'
            WHEN 'trained' THEN 'Launched'
            WHEN 'onboarding_timeout' THEN 'Launched'
            WHEN 'adopted' THEN 'Adopting'
            WHEN 'renewal_window' THEN 'Renewal'
            WHEN 'renewed' THEN 'Adopting'
            WHEN 'saved' THEN 'Adopting'
            WHEN 'won_back' THEN 'Onboarding'
        END AS target
    FROM pick6
),
hop6 AS (
    SELECT
        * EXCLUDE (stage, entered, held, moves, looped, rule, target, move),
        CASE WHEN move THEN target ELSE stage END AS stage,
        CASE WHEN move THEN __AS_OF__ ELSE entered END AS entered,
        CASE WHEN move THEN list_append(held, target) ELSE held END AS held,
        CASE WHEN move THEN list_append(moves, rule) ELSE moves END AS moves,
        looped OR (target IS NOT NULL AND NOT move) AS looped
    FROM (
        SELECT *, target IS NOT NULL AND NOT list_contains(held, target) AS move
        FROM target6
    )
)
SELECT
    customer_id,
    stage,
    entered AS stage_entered_at,
    previous_stage,
    date_diff('day', entered, __AS_OF__) AS days_in_stage,
    days_to_renewal,
    at_risk,
    logins_30d,
    active_users_30d,
    minutes_30d,
    trained,
    last_seen,
    moves,
    looped
FROM hop6
