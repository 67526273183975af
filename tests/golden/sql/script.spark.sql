-- lifecycle 0.1.0: B2B SaaS lifecycle as of 2026-11-01, dialect spark
SET TIME ZONE 'UTC';

DROP TABLE IF EXISTS lc_input;

CREATE TABLE lc_input AS
SELECT
  ROW_NUMBER() OVER (ORDER BY `customer_id` NULLS LAST) - 1 AS `__row`,
  `customer_id` AS `customer_id`,
  `name` AS `name`,
  `csm` AS `csm`,
  `arr` AS `arr`,
  `renewal_date` AS `renewal_date`,
  `health_score` AS `health_score`,
  `status` AS `status`,
  `churn_notice` AS `churn_notice`,
  `stage` AS `stage`,
  CAST(`stage_entered_at` AS DATE) AS `stage_entered_at`
FROM customers;

DROP TABLE IF EXISTS lc_metrics;

CREATE TABLE lc_metrics AS
SELECT
  c.`customer_id` AS `customer_id`,
  COALESCE(s0.`logins_30d`, 0) AS `logins_30d`,
  COALESCE(s0.`active_users_30d`, 0) AS `active_users_30d`,
  COALESCE(s0.`minutes_30d`, 0) AS `minutes_30d`,
  COALESCE(s0.`trained`, FALSE) AS `trained`,
  s0.`last_seen` AS `last_seen`
FROM `lc_input` AS c
LEFT JOIN (
  SELECT
    `__customer` AS `customer_id`,
    COUNT(*) AS `__rows`,
    COUNT(*) FILTER(WHERE
      COALESCE(u.`event` = 'login', FALSE)
      AND (
        u.`timestamp` >= CAST('2026-10-03 00:00:00' AS TIMESTAMP)
      )) AS `logins_30d`,
    COUNT(
      DISTINCT CASE
        WHEN (
          u.`timestamp` >= CAST('2026-10-03 00:00:00' AS TIMESTAMP)
        )
        THEN u.`user_id`
      END
    ) AS `active_users_30d`,
    SUM(
      CASE
        WHEN (
          u.`timestamp` >= CAST('2026-10-03 00:00:00' AS TIMESTAMP)
        )
        THEN u.`minutes`
      END
    ) AS `minutes_30d`,
    COUNT(*) FILTER(WHERE
      COALESCE(u.`event` = 'training_completed', FALSE)) > 0 AS `trained`,
    MAX(u.`timestamp`) AS `last_seen`
  FROM (
    SELECT
      u.`customer_id` AS `__customer`,
      u.*
    FROM `usage` AS u
    WHERE
      u.`timestamp` < CAST('2026-11-02 00:00:00' AS TIMESTAMP)
  ) AS u
  GROUP BY
    `__customer`
) AS s0
  ON c.`customer_id` = s0.`customer_id`;

DROP TABLE IF EXISTS lc_state;

CREATE TABLE lc_state AS
SELECT
  i.*,
  m.`logins_30d`,
  m.`active_users_30d`,
  m.`minutes_30d`,
  m.`trained`,
  m.`last_seen`
FROM lc_input AS i
LEFT JOIN lc_metrics AS m
  ON i.`customer_id` = m.`customer_id`;

DROP TABLE IF EXISTS lc_h0;

CREATE TABLE lc_h0 AS
SELECT
  `__row`,
  `customer_id`,
  `name`,
  `csm`,
  `arr`,
  `renewal_date`,
  `health_score`,
  `status`,
  `churn_notice`,
  `logins_30d`,
  `active_users_30d`,
  `minutes_30d`,
  `trained`,
  `last_seen`,
  `stage` AS `previous_stage`,
  COALESCE(`stage`, 'Onboarding') AS `stage`,
  CASE
    WHEN `stage` IS NULL
    THEN CAST('2026-11-01' AS DATE)
    ELSE `stage_entered_at`
  END AS `stage_entered_at`,
  `stage` IS NULL AS `__initial`,
  COALESCE(COALESCE(`stage`, 'Onboarding') = 'Onboarding', FALSE) AS `__v0`,
  COALESCE(COALESCE(`stage`, 'Onboarding') = 'Launched', FALSE) AS `__v1`,
  COALESCE(COALESCE(`stage`, 'Onboarding') = 'Adopting', FALSE) AS `__v2`,
  COALESCE(COALESCE(`stage`, 'Onboarding') = 'Renewal', FALSE) AS `__v3`,
  COALESCE(COALESCE(`stage`, 'Onboarding') = 'Will Churn', FALSE) AS `__v4`,
  COALESCE(COALESCE(`stage`, 'Onboarding') = 'Churned', FALSE) AS `__v5`
FROM `lc_state`;

DROP TABLE IF EXISTS lc_x1;

CREATE TABLE lc_x1 AS
WITH e1_b AS (
  SELECT
    *,
    DATEDIFF(DAY, `stage_entered_at`, CAST('2026-11-01' AS DATE)) AS `days_in_stage`,
    CASE
      WHEN `stage` = 'Onboarding'
      THEN 45
      WHEN `stage` = 'Launched'
      THEN 30
      WHEN `stage` = 'Renewal'
      THEN 90
      WHEN `stage` = 'Will Churn'
      THEN 30
    END AS `expected_days`
  FROM lc_h0
), e1_o AS (
  SELECT
    *,
    COALESCE(`days_in_stage` > `expected_days`, FALSE) AS `overdue`
  FROM e1_b
), e1_d0 AS (
  SELECT
    *,
    DATEDIFF(DAY, CAST('2026-11-01' AS DATE), `renewal_date`) AS `days_to_renewal`
  FROM e1_o
), e1_d1 AS (
  SELECT
    *,
    (
      `health_score` < 40
    ) OR `churn_notice` AS `at_risk`
  FROM e1_d0
), w1 AS (
  SELECT
    *,
    CASE
      WHEN `stage` IN ('Onboarding', 'Launched', 'Adopting', 'Renewal', 'Will Churn')
      AND COALESCE(`status` = 'churned', FALSE)
      THEN 7
      WHEN `stage` IN ('Onboarding', 'Launched', 'Adopting', 'Renewal')
      AND COALESCE(`at_risk`, FALSE)
      THEN 5
      WHEN `stage` IN ('Onboarding') AND COALESCE(`trained`, FALSE)
      THEN 0
      WHEN `stage` IN ('Onboarding') AND COALESCE(`days_in_stage` >= 60, FALSE)
      THEN 1
      WHEN `stage` IN ('Launched')
      AND COALESCE((
        `active_users_30d` >= 3
      ) AND (
        `logins_30d` >= 20
      ), FALSE)
      THEN 2
      WHEN `stage` IN ('Launched', 'Adopting') AND COALESCE(`days_to_renewal` <= 90, FALSE)
      THEN 3
      WHEN `stage` IN ('Renewal') AND COALESCE(`days_to_renewal` > 90, FALSE)
      THEN 4
      WHEN `stage` IN ('Will Churn')
      AND COALESCE(
        (
          (
            NOT `at_risk`
          ) AND (
            `health_score` >= 60
          )
        )
        AND (
          `logins_30d` >= 10
        ),
        FALSE
      )
      THEN 6
      WHEN `stage` IN ('Churned') AND COALESCE(`status` = 'active', FALSE)
      THEN 8
    END AS `__win`
  FROM e1_d1
), t1 AS (
  SELECT
    *,
    CASE
      WHEN `__win` = 7
      THEN 'Churned'
      WHEN `__win` = 5
      THEN 'Will Churn'
      WHEN `__win` = 0
      THEN 'Launched'
      WHEN `__win` = 1
      THEN 'Launched'
      WHEN `__win` = 2
      THEN 'Adopting'
      WHEN `__win` = 3
      THEN 'Renewal'
      WHEN `__win` = 4
      THEN 'Adopting'
      WHEN `__win` = 6
      THEN 'Adopting'
      WHEN `__win` = 8
      THEN 'Onboarding'
    END AS `__target`
  FROM w1
), m1 AS (
  SELECT
    *,
    COALESCE(
      CASE
        WHEN `__target` = 'Onboarding'
        THEN `__v0`
        WHEN `__target` = 'Launched'
        THEN `__v1`
        WHEN `__target` = 'Adopting'
        THEN `__v2`
        WHEN `__target` = 'Renewal'
        THEN `__v3`
        WHEN `__target` = 'Will Churn'
        THEN `__v4`
        WHEN `__target` = 'Churned'
        THEN `__v5`
      END,
      FALSE
    ) AS `__loop`
  FROM t1
)
SELECT
  *,
  (
    NOT (
      `__win` IS NULL
    )
  ) AND (
    NOT `__loop`
  ) AS `__go`
FROM m1
WHERE
  NOT (
    `__win` IS NULL
  );

DROP TABLE IF EXISTS lc_r1;

CREATE TABLE lc_r1 AS
SELECT
  `__row`,
  `stage` AS `from`,
  `__target` AS `to`,
  `__win` AS `rule`,
  DATEDIFF(DAY, `stage_entered_at`, CAST('2026-11-01' AS DATE)) AS `days`,
  `__go` AS `moved`,
  `__loop` AS `loop`,
  CASE
    WHEN `__win` = 7
    THEN CONCAT('status=', COALESCE(CAST(`status` AS STRING), 'null'))
    WHEN `__win` = 5
    THEN CONCAT(
      'at_risk=',
      COALESCE(CASE WHEN `at_risk` THEN 'true' WHEN NOT `at_risk` THEN 'false' END, 'null')
    )
    WHEN `__win` = 0
    THEN CONCAT(
      'trained=',
      COALESCE(CASE WHEN `trained` THEN 'true' WHEN NOT `trained` THEN 'false' END, 'null')
    )
    WHEN `__win` = 1
    THEN CONCAT('days_in_stage=', COALESCE(CAST(`days_in_stage` AS STRING), 'null'))
    WHEN `__win` = 2
    THEN CONCAT(
      'active_users_30d=',
      COALESCE(CAST(`active_users_30d` AS STRING), 'null'),
      '; logins_30d=',
      COALESCE(CAST(`logins_30d` AS STRING), 'null')
    )
    WHEN `__win` = 3
    THEN CONCAT('days_to_renewal=', COALESCE(CAST(`days_to_renewal` AS STRING), 'null'))
    WHEN `__win` = 4
    THEN CONCAT('days_to_renewal=', COALESCE(CAST(`days_to_renewal` AS STRING), 'null'))
    WHEN `__win` = 6
    THEN CONCAT(
      'at_risk=',
      COALESCE(CASE WHEN `at_risk` THEN 'true' WHEN NOT `at_risk` THEN 'false' END, 'null'),
      '; health_score=',
      COALESCE(CAST(`health_score` AS STRING), 'null'),
      '; logins_30d=',
      COALESCE(CAST(`logins_30d` AS STRING), 'null')
    )
    WHEN `__win` = 8
    THEN CONCAT('status=', COALESCE(CAST(`status` AS STRING), 'null'))
  END AS `reason`
FROM lc_x1;

DROP TABLE IF EXISTS lc_a1;

CREATE TABLE lc_a1 AS
SELECT
  `__row`,
  `customer_id`,
  `name`,
  `csm`,
  `arr`,
  `renewal_date`,
  `health_score`,
  `status`,
  `churn_notice`,
  `logins_30d`,
  `active_users_30d`,
  `minutes_30d`,
  `trained`,
  `last_seen`,
  `previous_stage`,
  `__initial`,
  `__target` AS `stage`,
  CAST('2026-11-01' AS DATE) AS `stage_entered_at`,
  `__v0` OR (
    `__target` = 'Onboarding'
  ) AS `__v0`,
  `__v1` OR (
    `__target` = 'Launched'
  ) AS `__v1`,
  `__v2` OR (
    `__target` = 'Adopting'
  ) AS `__v2`,
  `__v3` OR (
    `__target` = 'Renewal'
  ) AS `__v3`,
  `__v4` OR (
    `__target` = 'Will Churn'
  ) AS `__v4`,
  `__v5` OR (
    `__target` = 'Churned'
  ) AS `__v5`
FROM lc_x1
WHERE
  `__go`;

DROP TABLE IF EXISTS lc_x2;

CREATE TABLE lc_x2 AS
WITH e2_b AS (
  SELECT
    *,
    DATEDIFF(DAY, `stage_entered_at`, CAST('2026-11-01' AS DATE)) AS `days_in_stage`,
    CASE
      WHEN `stage` = 'Onboarding'
      THEN 45
      WHEN `stage` = 'Launched'
      THEN 30
      WHEN `stage` = 'Renewal'
      THEN 90
      WHEN `stage` = 'Will Churn'
      THEN 30
    END AS `expected_days`
  FROM lc_a1
), e2_o AS (
  SELECT
    *,
    COALESCE(`days_in_stage` > `expected_days`, FALSE) AS `overdue`
  FROM e2_b
), e2_d0 AS (
  SELECT
    *,
    DATEDIFF(DAY, CAST('2026-11-01' AS DATE), `renewal_date`) AS `days_to_renewal`
  FROM e2_o
), e2_d1 AS (
  SELECT
    *,
    (
      `health_score` < 40
    ) OR `churn_notice` AS `at_risk`
  FROM e2_d0
), w2 AS (
  SELECT
    *,
    CASE
      WHEN `stage` IN ('Onboarding', 'Launched', 'Adopting', 'Renewal', 'Will Churn')
      AND COALESCE(`status` = 'churned', FALSE)
      THEN 7
      WHEN `stage` IN ('Onboarding', 'Launched', 'Adopting', 'Renewal')
      AND COALESCE(`at_risk`, FALSE)
      THEN 5
      WHEN `stage` IN ('Onboarding') AND COALESCE(`trained`, FALSE)
      THEN 0
      WHEN `stage` IN ('Onboarding') AND COALESCE(`days_in_stage` >= 60, FALSE)
      THEN 1
      WHEN `stage` IN ('Launched')
      AND COALESCE((
        `active_users_30d` >= 3
      ) AND (
        `logins_30d` >= 20
      ), FALSE)
      THEN 2
      WHEN `stage` IN ('Launched', 'Adopting') AND COALESCE(`days_to_renewal` <= 90, FALSE)
      THEN 3
      WHEN `stage` IN ('Renewal') AND COALESCE(`days_to_renewal` > 90, FALSE)
      THEN 4
      WHEN `stage` IN ('Will Churn')
      AND COALESCE(
        (
          (
            NOT `at_risk`
          ) AND (
            `health_score` >= 60
          )
        )
        AND (
          `logins_30d` >= 10
        ),
        FALSE
      )
      THEN 6
      WHEN `stage` IN ('Churned') AND COALESCE(`status` = 'active', FALSE)
      THEN 8
    END AS `__win`
  FROM e2_d1
), t2 AS (
  SELECT
    *,
    CASE
      WHEN `__win` = 7
      THEN 'Churned'
      WHEN `__win` = 5
      THEN 'Will Churn'
      WHEN `__win` = 0
      THEN 'Launched'
      WHEN `__win` = 1
      THEN 'Launched'
      WHEN `__win` = 2
      THEN 'Adopting'
      WHEN `__win` = 3
      THEN 'Renewal'
      WHEN `__win` = 4
      THEN 'Adopting'
      WHEN `__win` = 6
      THEN 'Adopting'
      WHEN `__win` = 8
      THEN 'Onboarding'
    END AS `__target`
  FROM w2
), m2 AS (
  SELECT
    *,
    COALESCE(
      CASE
        WHEN `__target` = 'Onboarding'
        THEN `__v0`
        WHEN `__target` = 'Launched'
        THEN `__v1`
        WHEN `__target` = 'Adopting'
        THEN `__v2`
        WHEN `__target` = 'Renewal'
        THEN `__v3`
        WHEN `__target` = 'Will Churn'
        THEN `__v4`
        WHEN `__target` = 'Churned'
        THEN `__v5`
      END,
      FALSE
    ) AS `__loop`
  FROM t2
)
SELECT
  *,
  (
    NOT (
      `__win` IS NULL
    )
  ) AND (
    NOT `__loop`
  ) AS `__go`
FROM m2
WHERE
  NOT (
    `__win` IS NULL
  );

DROP TABLE IF EXISTS lc_r2;

CREATE TABLE lc_r2 AS
SELECT
  `__row`,
  `stage` AS `from`,
  `__target` AS `to`,
  `__win` AS `rule`,
  DATEDIFF(DAY, `stage_entered_at`, CAST('2026-11-01' AS DATE)) AS `days`,
  `__go` AS `moved`,
  `__loop` AS `loop`,
  CASE
    WHEN `__win` = 7
    THEN CONCAT('status=', COALESCE(CAST(`status` AS STRING), 'null'))
    WHEN `__win` = 5
    THEN CONCAT(
      'at_risk=',
      COALESCE(CASE WHEN `at_risk` THEN 'true' WHEN NOT `at_risk` THEN 'false' END, 'null')
    )
    WHEN `__win` = 0
    THEN CONCAT(
      'trained=',
      COALESCE(CASE WHEN `trained` THEN 'true' WHEN NOT `trained` THEN 'false' END, 'null')
    )
    WHEN `__win` = 1
    THEN CONCAT('days_in_stage=', COALESCE(CAST(`days_in_stage` AS STRING), 'null'))
    WHEN `__win` = 2
    THEN CONCAT(
      'active_users_30d=',
      COALESCE(CAST(`active_users_30d` AS STRING), 'null'),
      '; logins_30d=',
      COALESCE(CAST(`logins_30d` AS STRING), 'null')
    )
    WHEN `__win` = 3
    THEN CONCAT('days_to_renewal=', COALESCE(CAST(`days_to_renewal` AS STRING), 'null'))
    WHEN `__win` = 4
    THEN CONCAT('days_to_renewal=', COALESCE(CAST(`days_to_renewal` AS STRING), 'null'))
    WHEN `__win` = 6
    THEN CONCAT(
      'at_risk=',
      COALESCE(CASE WHEN `at_risk` THEN 'true' WHEN NOT `at_risk` THEN 'false' END, 'null'),
      '; health_score=',
      COALESCE(CAST(`health_score` AS STRING), 'null'),
      '; logins_30d=',
      COALESCE(CAST(`logins_30d` AS STRING), 'null')
    )
    WHEN `__win` = 8
    THEN CONCAT('status=', COALESCE(CAST(`status` AS STRING), 'null'))
  END AS `reason`
FROM lc_x2;

DROP TABLE IF EXISTS lc_a2;

CREATE TABLE lc_a2 AS
SELECT
  `__row`,
  `customer_id`,
  `name`,
  `csm`,
  `arr`,
  `renewal_date`,
  `health_score`,
  `status`,
  `churn_notice`,
  `logins_30d`,
  `active_users_30d`,
  `minutes_30d`,
  `trained`,
  `last_seen`,
  `previous_stage`,
  `__initial`,
  `__target` AS `stage`,
  CAST('2026-11-01' AS DATE) AS `stage_entered_at`,
  `__v0` OR (
    `__target` = 'Onboarding'
  ) AS `__v0`,
  `__v1` OR (
    `__target` = 'Launched'
  ) AS `__v1`,
  `__v2` OR (
    `__target` = 'Adopting'
  ) AS `__v2`,
  `__v3` OR (
    `__target` = 'Renewal'
  ) AS `__v3`,
  `__v4` OR (
    `__target` = 'Will Churn'
  ) AS `__v4`,
  `__v5` OR (
    `__target` = 'Churned'
  ) AS `__v5`
FROM lc_x2
WHERE
  `__go`;

DROP TABLE IF EXISTS lc_x3;

CREATE TABLE lc_x3 AS
WITH e3_b AS (
  SELECT
    *,
    DATEDIFF(DAY, `stage_entered_at`, CAST('2026-11-01' AS DATE)) AS `days_in_stage`,
    CASE
      WHEN `stage` = 'Onboarding'
      THEN 45
      WHEN `stage` = 'Launched'
      THEN 30
      WHEN `stage` = 'Renewal'
      THEN 90
      WHEN `stage` = 'Will Churn'
      THEN 30
    END AS `expected_days`
  FROM lc_a2
), e3_o AS (
  SELECT
    *,
    COALESCE(`days_in_stage` > `expected_days`, FALSE) AS `overdue`
  FROM e3_b
), e3_d0 AS (
  SELECT
    *,
    DATEDIFF(DAY, CAST('2026-11-01' AS DATE), `renewal_date`) AS `days_to_renewal`
  FROM e3_o
), e3_d1 AS (
  SELECT
    *,
    (
      `health_score` < 40
    ) OR `churn_notice` AS `at_risk`
  FROM e3_d0
), w3 AS (
  SELECT
    *,
    CASE
      WHEN `stage` IN ('Onboarding', 'Launched', 'Adopting', 'Renewal', 'Will Churn')
      AND COALESCE(`status` = 'churned', FALSE)
      THEN 7
      WHEN `stage` IN ('Onboarding', 'Launched', 'Adopting', 'Renewal')
      AND COALESCE(`at_risk`, FALSE)
      THEN 5
      WHEN `stage` IN ('Onboarding') AND COALESCE(`trained`, FALSE)
      THEN 0
      WHEN `stage` IN ('Onboarding') AND COALESCE(`days_in_stage` >= 60, FALSE)
      THEN 1
      WHEN `stage` IN ('Launched')
      AND COALESCE((
        `active_users_30d` >= 3
      ) AND (
        `logins_30d` >= 20
      ), FALSE)
      THEN 2
      WHEN `stage` IN ('Launched', 'Adopting') AND COALESCE(`days_to_renewal` <= 90, FALSE)
      THEN 3
      WHEN `stage` IN ('Renewal') AND COALESCE(`days_to_renewal` > 90, FALSE)
      THEN 4
      WHEN `stage` IN ('Will Churn')
      AND COALESCE(
        (
          (
            NOT `at_risk`
          ) AND (
            `health_score` >= 60
          )
        )
        AND (
          `logins_30d` >= 10
        ),
        FALSE
      )
      THEN 6
      WHEN `stage` IN ('Churned') AND COALESCE(`status` = 'active', FALSE)
      THEN 8
    END AS `__win`
  FROM e3_d1
), t3 AS (
  SELECT
    *,
    CASE
      WHEN `__win` = 7
      THEN 'Churned'
      WHEN `__win` = 5
      THEN 'Will Churn'
      WHEN `__win` = 0
      THEN 'Launched'
      WHEN `__win` = 1
      THEN 'Launched'
      WHEN `__win` = 2
      THEN 'Adopting'
      WHEN `__win` = 3
      THEN 'Renewal'
      WHEN `__win` = 4
      THEN 'Adopting'
      WHEN `__win` = 6
      THEN 'Adopting'
      WHEN `__win` = 8
      THEN 'Onboarding'
    END AS `__target`
  FROM w3
), m3 AS (
  SELECT
    *,
    COALESCE(
      CASE
        WHEN `__target` = 'Onboarding'
        THEN `__v0`
        WHEN `__target` = 'Launched'
        THEN `__v1`
        WHEN `__target` = 'Adopting'
        THEN `__v2`
        WHEN `__target` = 'Renewal'
        THEN `__v3`
        WHEN `__target` = 'Will Churn'
        THEN `__v4`
        WHEN `__target` = 'Churned'
        THEN `__v5`
      END,
      FALSE
    ) AS `__loop`
  FROM t3
)
SELECT
  *,
  (
    NOT (
      `__win` IS NULL
    )
  ) AND (
    NOT `__loop`
  ) AS `__go`
FROM m3
WHERE
  NOT (
    `__win` IS NULL
  );

DROP TABLE IF EXISTS lc_r3;

CREATE TABLE lc_r3 AS
SELECT
  `__row`,
  `stage` AS `from`,
  `__target` AS `to`,
  `__win` AS `rule`,
  DATEDIFF(DAY, `stage_entered_at`, CAST('2026-11-01' AS DATE)) AS `days`,
  `__go` AS `moved`,
  `__loop` AS `loop`,
  CASE
    WHEN `__win` = 7
    THEN CONCAT('status=', COALESCE(CAST(`status` AS STRING), 'null'))
    WHEN `__win` = 5
    THEN CONCAT(
      'at_risk=',
      COALESCE(CASE WHEN `at_risk` THEN 'true' WHEN NOT `at_risk` THEN 'false' END, 'null')
    )
    WHEN `__win` = 0
    THEN CONCAT(
      'trained=',
      COALESCE(CASE WHEN `trained` THEN 'true' WHEN NOT `trained` THEN 'false' END, 'null')
    )
    WHEN `__win` = 1
    THEN CONCAT('days_in_stage=', COALESCE(CAST(`days_in_stage` AS STRING), 'null'))
    WHEN `__win` = 2
    THEN CONCAT(
      'active_users_30d=',
      COALESCE(CAST(`active_users_30d` AS STRING), 'null'),
      '; logins_30d=',
      COALESCE(CAST(`logins_30d` AS STRING), 'null')
    )
    WHEN `__win` = 3
    THEN CONCAT('days_to_renewal=', COALESCE(CAST(`days_to_renewal` AS STRING), 'null'))
    WHEN `__win` = 4
    THEN CONCAT('days_to_renewal=', COALESCE(CAST(`days_to_renewal` AS STRING), 'null'))
    WHEN `__win` = 6
    THEN CONCAT(
      'at_risk=',
      COALESCE(CASE WHEN `at_risk` THEN 'true' WHEN NOT `at_risk` THEN 'false' END, 'null'),
      '; health_score=',
      COALESCE(CAST(`health_score` AS STRING), 'null'),
      '; logins_30d=',
      COALESCE(CAST(`logins_30d` AS STRING), 'null')
    )
    WHEN `__win` = 8
    THEN CONCAT('status=', COALESCE(CAST(`status` AS STRING), 'null'))
  END AS `reason`
FROM lc_x3;

DROP TABLE IF EXISTS lc_a3;

CREATE TABLE lc_a3 AS
SELECT
  `__row`,
  `customer_id`,
  `name`,
  `csm`,
  `arr`,
  `renewal_date`,
  `health_score`,
  `status`,
  `churn_notice`,
  `logins_30d`,
  `active_users_30d`,
  `minutes_30d`,
  `trained`,
  `last_seen`,
  `previous_stage`,
  `__initial`,
  `__target` AS `stage`,
  CAST('2026-11-01' AS DATE) AS `stage_entered_at`,
  `__v0` OR (
    `__target` = 'Onboarding'
  ) AS `__v0`,
  `__v1` OR (
    `__target` = 'Launched'
  ) AS `__v1`,
  `__v2` OR (
    `__target` = 'Adopting'
  ) AS `__v2`,
  `__v3` OR (
    `__target` = 'Renewal'
  ) AS `__v3`,
  `__v4` OR (
    `__target` = 'Will Churn'
  ) AS `__v4`,
  `__v5` OR (
    `__target` = 'Churned'
  ) AS `__v5`
FROM lc_x3
WHERE
  `__go`;

DROP TABLE IF EXISTS lc_x4;

CREATE TABLE lc_x4 AS
WITH e4_b AS (
  SELECT
    *,
    DATEDIFF(DAY, `stage_entered_at`, CAST('2026-11-01' AS DATE)) AS `days_in_stage`,
    CASE
      WHEN `stage` = 'Onboarding'
      THEN 45
      WHEN `stage` = 'Launched'
      THEN 30
      WHEN `stage` = 'Renewal'
      THEN 90
      WHEN `stage` = 'Will Churn'
      THEN 30
    END AS `expected_days`
  FROM lc_a3
), e4_o AS (
  SELECT
    *,
    COALESCE(`days_in_stage` > `expected_days`, FALSE) AS `overdue`
  FROM e4_b
), e4_d0 AS (
  SELECT
    *,
    DATEDIFF(DAY, CAST('2026-11-01' AS DATE), `renewal_date`) AS `days_to_renewal`
  FROM e4_o
), e4_d1 AS (
  SELECT
    *,
    (
      `health_score` < 40
    ) OR `churn_notice` AS `at_risk`
  FROM e4_d0
), w4 AS (
  SELECT
    *,
    CASE
      WHEN `stage` IN ('Onboarding', 'Launched', 'Adopting', 'Renewal', 'Will Churn')
      AND COALESCE(`status` = 'churned', FALSE)
      THEN 7
      WHEN `stage` IN ('Onboarding', 'Launched', 'Adopting', 'Renewal')
      AND COALESCE(`at_risk`, FALSE)
      THEN 5
      WHEN `stage` IN ('Onboarding') AND COALESCE(`trained`, FALSE)
      THEN 0
      WHEN `stage` IN ('Onboarding') AND COALESCE(`days_in_stage` >= 60, FALSE)
      THEN 1
      WHEN `stage` IN ('Launched')
      AND COALESCE((
        `active_users_30d` >= 3
      ) AND (
        `logins_30d` >= 20
      ), FALSE)
      THEN 2
      WHEN `stage` IN ('Launched', 'Adopting') AND COALESCE(`days_to_renewal` <= 90, FALSE)
      THEN 3
      WHEN `stage` IN ('Renewal') AND COALESCE(`days_to_renewal` > 90, FALSE)
      THEN 4
      WHEN `stage` IN ('Will Churn')
      AND COALESCE(
        (
          (
            NOT `at_risk`
          ) AND (
            `health_score` >= 60
          )
        )
        AND (
          `logins_30d` >= 10
        ),
        FALSE
      )
      THEN 6
      WHEN `stage` IN ('Churned') AND COALESCE(`status` = 'active', FALSE)
      THEN 8
    END AS `__win`
  FROM e4_d1
), t4 AS (
  SELECT
    *,
    CASE
      WHEN `__win` = 7
      THEN 'Churned'
      WHEN `__win` = 5
      THEN 'Will Churn'
      WHEN `__win` = 0
      THEN 'Launched'
      WHEN `__win` = 1
      THEN 'Launched'
      WHEN `__win` = 2
      THEN 'Adopting'
      WHEN `__win` = 3
      THEN 'Renewal'
      WHEN `__win` = 4
      THEN 'Adopting'
      WHEN `__win` = 6
      THEN 'Adopting'
      WHEN `__win` = 8
      THEN 'Onboarding'
    END AS `__target`
  FROM w4
), m4 AS (
  SELECT
    *,
    COALESCE(
      CASE
        WHEN `__target` = 'Onboarding'
        THEN `__v0`
        WHEN `__target` = 'Launched'
        THEN `__v1`
        WHEN `__target` = 'Adopting'
        THEN `__v2`
        WHEN `__target` = 'Renewal'
        THEN `__v3`
        WHEN `__target` = 'Will Churn'
        THEN `__v4`
        WHEN `__target` = 'Churned'
        THEN `__v5`
      END,
      FALSE
    ) AS `__loop`
  FROM t4
)
SELECT
  *,
  (
    NOT (
      `__win` IS NULL
    )
  ) AND (
    NOT `__loop`
  ) AS `__go`
FROM m4
WHERE
  NOT (
    `__win` IS NULL
  );

DROP TABLE IF EXISTS lc_r4;

CREATE TABLE lc_r4 AS
SELECT
  `__row`,
  `stage` AS `from`,
  `__target` AS `to`,
  `__win` AS `rule`,
  DATEDIFF(DAY, `stage_entered_at`, CAST('2026-11-01' AS DATE)) AS `days`,
  `__go` AS `moved`,
  `__loop` AS `loop`,
  CASE
    WHEN `__win` = 7
    THEN CONCAT('status=', COALESCE(CAST(`status` AS STRING), 'null'))
    WHEN `__win` = 5
    THEN CONCAT(
      'at_risk=',
      COALESCE(CASE WHEN `at_risk` THEN 'true' WHEN NOT `at_risk` THEN 'false' END, 'null')
    )
    WHEN `__win` = 0
    THEN CONCAT(
      'trained=',
      COALESCE(CASE WHEN `trained` THEN 'true' WHEN NOT `trained` THEN 'false' END, 'null')
    )
    WHEN `__win` = 1
    THEN CONCAT('days_in_stage=', COALESCE(CAST(`days_in_stage` AS STRING), 'null'))
    WHEN `__win` = 2
    THEN CONCAT(
      'active_users_30d=',
      COALESCE(CAST(`active_users_30d` AS STRING), 'null'),
      '; logins_30d=',
      COALESCE(CAST(`logins_30d` AS STRING), 'null')
    )
    WHEN `__win` = 3
    THEN CONCAT('days_to_renewal=', COALESCE(CAST(`days_to_renewal` AS STRING), 'null'))
    WHEN `__win` = 4
    THEN CONCAT('days_to_renewal=', COALESCE(CAST(`days_to_renewal` AS STRING), 'null'))
    WHEN `__win` = 6
    THEN CONCAT(
      'at_risk=',
      COALESCE(CASE WHEN `at_risk` THEN 'true' WHEN NOT `at_risk` THEN 'false' END, 'null'),
      '; health_score=',
      COALESCE(CAST(`health_score` AS STRING), 'null'),
      '; logins_30d=',
      COALESCE(CAST(`logins_30d` AS STRING), 'null')
    )
    WHEN `__win` = 8
    THEN CONCAT('status=', COALESCE(CAST(`status` AS STRING), 'null'))
  END AS `reason`
FROM lc_x4;

DROP TABLE IF EXISTS lc_a4;

CREATE TABLE lc_a4 AS
SELECT
  `__row`,
  `customer_id`,
  `name`,
  `csm`,
  `arr`,
  `renewal_date`,
  `health_score`,
  `status`,
  `churn_notice`,
  `logins_30d`,
  `active_users_30d`,
  `minutes_30d`,
  `trained`,
  `last_seen`,
  `previous_stage`,
  `__initial`,
  `__target` AS `stage`,
  CAST('2026-11-01' AS DATE) AS `stage_entered_at`,
  `__v0` OR (
    `__target` = 'Onboarding'
  ) AS `__v0`,
  `__v1` OR (
    `__target` = 'Launched'
  ) AS `__v1`,
  `__v2` OR (
    `__target` = 'Adopting'
  ) AS `__v2`,
  `__v3` OR (
    `__target` = 'Renewal'
  ) AS `__v3`,
  `__v4` OR (
    `__target` = 'Will Churn'
  ) AS `__v4`,
  `__v5` OR (
    `__target` = 'Churned'
  ) AS `__v5`
FROM lc_x4
WHERE
  `__go`;

DROP TABLE IF EXISTS lc_x5;

CREATE TABLE lc_x5 AS
WITH e5_b AS (
  SELECT
    *,
    DATEDIFF(DAY, `stage_entered_at`, CAST('2026-11-01' AS DATE)) AS `days_in_stage`,
    CASE
      WHEN `stage` = 'Onboarding'
      THEN 45
      WHEN `stage` = 'Launched'
      THEN 30
      WHEN `stage` = 'Renewal'
      THEN 90
      WHEN `stage` = 'Will Churn'
      THEN 30
    END AS `expected_days`
  FROM lc_a4
), e5_o AS (
  SELECT
    *,
    COALESCE(`days_in_stage` > `expected_days`, FALSE) AS `overdue`
  FROM e5_b
), e5_d0 AS (
  SELECT
    *,
    DATEDIFF(DAY, CAST('2026-11-01' AS DATE), `renewal_date`) AS `days_to_renewal`
  FROM e5_o
), e5_d1 AS (
  SELECT
    *,
    (
      `health_score` < 40
    ) OR `churn_notice` AS `at_risk`
  FROM e5_d0
), w5 AS (
  SELECT
    *,
    CASE
      WHEN `stage` IN ('Onboarding', 'Launched', 'Adopting', 'Renewal', 'Will Churn')
      AND COALESCE(`status` = 'churned', FALSE)
      THEN 7
      WHEN `stage` IN ('Onboarding', 'Launched', 'Adopting', 'Renewal')
      AND COALESCE(`at_risk`, FALSE)
      THEN 5
      WHEN `stage` IN ('Onboarding') AND COALESCE(`trained`, FALSE)
      THEN 0
      WHEN `stage` IN ('Onboarding') AND COALESCE(`days_in_stage` >= 60, FALSE)
      THEN 1
      WHEN `stage` IN ('Launched')
      AND COALESCE((
        `active_users_30d` >= 3
      ) AND (
        `logins_30d` >= 20
      ), FALSE)
      THEN 2
      WHEN `stage` IN ('Launched', 'Adopting') AND COALESCE(`days_to_renewal` <= 90, FALSE)
      THEN 3
      WHEN `stage` IN ('Renewal') AND COALESCE(`days_to_renewal` > 90, FALSE)
      THEN 4
      WHEN `stage` IN ('Will Churn')
      AND COALESCE(
        (
          (
            NOT `at_risk`
          ) AND (
            `health_score` >= 60
          )
        )
        AND (
          `logins_30d` >= 10
        ),
        FALSE
      )
      THEN 6
      WHEN `stage` IN ('Churned') AND COALESCE(`status` = 'active', FALSE)
      THEN 8
    END AS `__win`
  FROM e5_d1
), t5 AS (
  SELECT
    *,
    CASE
      WHEN `__win` = 7
      THEN 'Churned'
      WHEN `__win` = 5
      THEN 'Will Churn'
      WHEN `__win` = 0
      THEN 'Launched'
      WHEN `__win` = 1
      THEN 'Launched'
      WHEN `__win` = 2
      THEN 'Adopting'
      WHEN `__win` = 3
      THEN 'Renewal'
      WHEN `__win` = 4
      THEN 'Adopting'
      WHEN `__win` = 6
      THEN 'Adopting'
      WHEN `__win` = 8
      THEN 'Onboarding'
    END AS `__target`
  FROM w5
), m5 AS (
  SELECT
    *,
    COALESCE(
      CASE
        WHEN `__target` = 'Onboarding'
        THEN `__v0`
        WHEN `__target` = 'Launched'
        THEN `__v1`
        WHEN `__target` = 'Adopting'
        THEN `__v2`
        WHEN `__target` = 'Renewal'
        THEN `__v3`
        WHEN `__target` = 'Will Churn'
        THEN `__v4`
        WHEN `__target` = 'Churned'
        THEN `__v5`
      END,
      FALSE
    ) AS `__loop`
  FROM t5
)
SELECT
  *,
  (
    NOT (
      `__win` IS NULL
    )
  ) AND (
    NOT `__loop`
  ) AS `__go`
FROM m5
WHERE
  NOT (
    `__win` IS NULL
  );

DROP TABLE IF EXISTS lc_r5;

CREATE TABLE lc_r5 AS
SELECT
  `__row`,
  `stage` AS `from`,
  `__target` AS `to`,
  `__win` AS `rule`,
  DATEDIFF(DAY, `stage_entered_at`, CAST('2026-11-01' AS DATE)) AS `days`,
  `__go` AS `moved`,
  `__loop` AS `loop`,
  CASE
    WHEN `__win` = 7
    THEN CONCAT('status=', COALESCE(CAST(`status` AS STRING), 'null'))
    WHEN `__win` = 5
    THEN CONCAT(
      'at_risk=',
      COALESCE(CASE WHEN `at_risk` THEN 'true' WHEN NOT `at_risk` THEN 'false' END, 'null')
    )
    WHEN `__win` = 0
    THEN CONCAT(
      'trained=',
      COALESCE(CASE WHEN `trained` THEN 'true' WHEN NOT `trained` THEN 'false' END, 'null')
    )
    WHEN `__win` = 1
    THEN CONCAT('days_in_stage=', COALESCE(CAST(`days_in_stage` AS STRING), 'null'))
    WHEN `__win` = 2
    THEN CONCAT(
      'active_users_30d=',
      COALESCE(CAST(`active_users_30d` AS STRING), 'null'),
      '; logins_30d=',
      COALESCE(CAST(`logins_30d` AS STRING), 'null')
    )
    WHEN `__win` = 3
    THEN CONCAT('days_to_renewal=', COALESCE(CAST(`days_to_renewal` AS STRING), 'null'))
    WHEN `__win` = 4
    THEN CONCAT('days_to_renewal=', COALESCE(CAST(`days_to_renewal` AS STRING), 'null'))
    WHEN `__win` = 6
    THEN CONCAT(
      'at_risk=',
      COALESCE(CASE WHEN `at_risk` THEN 'true' WHEN NOT `at_risk` THEN 'false' END, 'null'),
      '; health_score=',
      COALESCE(CAST(`health_score` AS STRING), 'null'),
      '; logins_30d=',
      COALESCE(CAST(`logins_30d` AS STRING), 'null')
    )
    WHEN `__win` = 8
    THEN CONCAT('status=', COALESCE(CAST(`status` AS STRING), 'null'))
  END AS `reason`
FROM lc_x5;

DROP TABLE IF EXISTS lc_a5;

CREATE TABLE lc_a5 AS
SELECT
  `__row`,
  `customer_id`,
  `name`,
  `csm`,
  `arr`,
  `renewal_date`,
  `health_score`,
  `status`,
  `churn_notice`,
  `logins_30d`,
  `active_users_30d`,
  `minutes_30d`,
  `trained`,
  `last_seen`,
  `previous_stage`,
  `__initial`,
  `__target` AS `stage`,
  CAST('2026-11-01' AS DATE) AS `stage_entered_at`,
  `__v0` OR (
    `__target` = 'Onboarding'
  ) AS `__v0`,
  `__v1` OR (
    `__target` = 'Launched'
  ) AS `__v1`,
  `__v2` OR (
    `__target` = 'Adopting'
  ) AS `__v2`,
  `__v3` OR (
    `__target` = 'Renewal'
  ) AS `__v3`,
  `__v4` OR (
    `__target` = 'Will Churn'
  ) AS `__v4`,
  `__v5` OR (
    `__target` = 'Churned'
  ) AS `__v5`
FROM lc_x5
WHERE
  `__go`;

DROP TABLE IF EXISTS lc_x6;

CREATE TABLE lc_x6 AS
WITH e6_b AS (
  SELECT
    *,
    DATEDIFF(DAY, `stage_entered_at`, CAST('2026-11-01' AS DATE)) AS `days_in_stage`,
    CASE
      WHEN `stage` = 'Onboarding'
      THEN 45
      WHEN `stage` = 'Launched'
      THEN 30
      WHEN `stage` = 'Renewal'
      THEN 90
      WHEN `stage` = 'Will Churn'
      THEN 30
    END AS `expected_days`
  FROM lc_a5
), e6_o AS (
  SELECT
    *,
    COALESCE(`days_in_stage` > `expected_days`, FALSE) AS `overdue`
  FROM e6_b
), e6_d0 AS (
  SELECT
    *,
    DATEDIFF(DAY, CAST('2026-11-01' AS DATE), `renewal_date`) AS `days_to_renewal`
  FROM e6_o
), e6_d1 AS (
  SELECT
    *,
    (
      `health_score` < 40
    ) OR `churn_notice` AS `at_risk`
  FROM e6_d0
), w6 AS (
  SELECT
    *,
    CASE
      WHEN `stage` IN ('Onboarding', 'Launched', 'Adopting', 'Renewal', 'Will Churn')
      AND COALESCE(`status` = 'churned', FALSE)
      THEN 7
      WHEN `stage` IN ('Onboarding', 'Launched', 'Adopting', 'Renewal')
      AND COALESCE(`at_risk`, FALSE)
      THEN 5
      WHEN `stage` IN ('Onboarding') AND COALESCE(`trained`, FALSE)
      THEN 0
      WHEN `stage` IN ('Onboarding') AND COALESCE(`days_in_stage` >= 60, FALSE)
      THEN 1
      WHEN `stage` IN ('Launched')
      AND COALESCE((
        `active_users_30d` >= 3
      ) AND (
        `logins_30d` >= 20
      ), FALSE)
      THEN 2
      WHEN `stage` IN ('Launched', 'Adopting') AND COALESCE(`days_to_renewal` <= 90, FALSE)
      THEN 3
      WHEN `stage` IN ('Renewal') AND COALESCE(`days_to_renewal` > 90, FALSE)
      THEN 4
      WHEN `stage` IN ('Will Churn')
      AND COALESCE(
        (
          (
            NOT `at_risk`
          ) AND (
            `health_score` >= 60
          )
        )
        AND (
          `logins_30d` >= 10
        ),
        FALSE
      )
      THEN 6
      WHEN `stage` IN ('Churned') AND COALESCE(`status` = 'active', FALSE)
      THEN 8
    END AS `__win`
  FROM e6_d1
), t6 AS (
  SELECT
    *,
    CASE
      WHEN `__win` = 7
      THEN 'Churned'
      WHEN `__win` = 5
      THEN 'Will Churn'
      WHEN `__win` = 0
      THEN 'Launched'
      WHEN `__win` = 1
      THEN 'Launched'
      WHEN `__win` = 2
      THEN 'Adopting'
      WHEN `__win` = 3
      THEN 'Renewal'
      WHEN `__win` = 4
      THEN 'Adopting'
      WHEN `__win` = 6
      THEN 'Adopting'
      WHEN `__win` = 8
      THEN 'Onboarding'
    END AS `__target`
  FROM w6
), m6 AS (
  SELECT
    *,
    COALESCE(
      CASE
        WHEN `__target` = 'Onboarding'
        THEN `__v0`
        WHEN `__target` = 'Launched'
        THEN `__v1`
        WHEN `__target` = 'Adopting'
        THEN `__v2`
        WHEN `__target` = 'Renewal'
        THEN `__v3`
        WHEN `__target` = 'Will Churn'
        THEN `__v4`
        WHEN `__target` = 'Churned'
        THEN `__v5`
      END,
      FALSE
    ) AS `__loop`
  FROM t6
)
SELECT
  *,
  (
    NOT (
      `__win` IS NULL
    )
  ) AND (
    NOT `__loop`
  ) AS `__go`
FROM m6
WHERE
  NOT (
    `__win` IS NULL
  );

DROP TABLE IF EXISTS lc_r6;

CREATE TABLE lc_r6 AS
SELECT
  `__row`,
  `stage` AS `from`,
  `__target` AS `to`,
  `__win` AS `rule`,
  DATEDIFF(DAY, `stage_entered_at`, CAST('2026-11-01' AS DATE)) AS `days`,
  `__go` AS `moved`,
  `__loop` AS `loop`,
  CASE
    WHEN `__win` = 7
    THEN CONCAT('status=', COALESCE(CAST(`status` AS STRING), 'null'))
    WHEN `__win` = 5
    THEN CONCAT(
      'at_risk=',
      COALESCE(CASE WHEN `at_risk` THEN 'true' WHEN NOT `at_risk` THEN 'false' END, 'null')
    )
    WHEN `__win` = 0
    THEN CONCAT(
      'trained=',
      COALESCE(CASE WHEN `trained` THEN 'true' WHEN NOT `trained` THEN 'false' END, 'null')
    )
    WHEN `__win` = 1
    THEN CONCAT('days_in_stage=', COALESCE(CAST(`days_in_stage` AS STRING), 'null'))
    WHEN `__win` = 2
    THEN CONCAT(
      'active_users_30d=',
      COALESCE(CAST(`active_users_30d` AS STRING), 'null'),
      '; logins_30d=',
      COALESCE(CAST(`logins_30d` AS STRING), 'null')
    )
    WHEN `__win` = 3
    THEN CONCAT('days_to_renewal=', COALESCE(CAST(`days_to_renewal` AS STRING), 'null'))
    WHEN `__win` = 4
    THEN CONCAT('days_to_renewal=', COALESCE(CAST(`days_to_renewal` AS STRING), 'null'))
    WHEN `__win` = 6
    THEN CONCAT(
      'at_risk=',
      COALESCE(CASE WHEN `at_risk` THEN 'true' WHEN NOT `at_risk` THEN 'false' END, 'null'),
      '; health_score=',
      COALESCE(CAST(`health_score` AS STRING), 'null'),
      '; logins_30d=',
      COALESCE(CAST(`logins_30d` AS STRING), 'null')
    )
    WHEN `__win` = 8
    THEN CONCAT('status=', COALESCE(CAST(`status` AS STRING), 'null'))
  END AS `reason`
FROM lc_x6;

DROP TABLE IF EXISTS lc_a6;

CREATE TABLE lc_a6 AS
SELECT
  `__row`,
  `customer_id`,
  `name`,
  `csm`,
  `arr`,
  `renewal_date`,
  `health_score`,
  `status`,
  `churn_notice`,
  `logins_30d`,
  `active_users_30d`,
  `minutes_30d`,
  `trained`,
  `last_seen`,
  `previous_stage`,
  `__initial`,
  `__target` AS `stage`,
  CAST('2026-11-01' AS DATE) AS `stage_entered_at`,
  `__v0` OR (
    `__target` = 'Onboarding'
  ) AS `__v0`,
  `__v1` OR (
    `__target` = 'Launched'
  ) AS `__v1`,
  `__v2` OR (
    `__target` = 'Adopting'
  ) AS `__v2`,
  `__v3` OR (
    `__target` = 'Renewal'
  ) AS `__v3`,
  `__v4` OR (
    `__target` = 'Will Churn'
  ) AS `__v4`,
  `__v5` OR (
    `__target` = 'Churned'
  ) AS `__v5`
FROM lc_x6
WHERE
  `__go`;

DROP TABLE IF EXISTS lc_pending_rows;

CREATE TABLE lc_pending_rows AS
WITH e7_b AS (
  SELECT
    *,
    DATEDIFF(DAY, `stage_entered_at`, CAST('2026-11-01' AS DATE)) AS `days_in_stage`,
    CASE
      WHEN `stage` = 'Onboarding'
      THEN 45
      WHEN `stage` = 'Launched'
      THEN 30
      WHEN `stage` = 'Renewal'
      THEN 90
      WHEN `stage` = 'Will Churn'
      THEN 30
    END AS `expected_days`
  FROM lc_a6
), e7_o AS (
  SELECT
    *,
    COALESCE(`days_in_stage` > `expected_days`, FALSE) AS `overdue`
  FROM e7_b
), e7_d0 AS (
  SELECT
    *,
    DATEDIFF(DAY, CAST('2026-11-01' AS DATE), `renewal_date`) AS `days_to_renewal`
  FROM e7_o
), e7_d1 AS (
  SELECT
    *,
    (
      `health_score` < 40
    ) OR `churn_notice` AS `at_risk`
  FROM e7_d0
), w7 AS (
  SELECT
    *,
    CASE
      WHEN `stage` IN ('Onboarding', 'Launched', 'Adopting', 'Renewal', 'Will Churn')
      AND COALESCE(`status` = 'churned', FALSE)
      THEN 7
      WHEN `stage` IN ('Onboarding', 'Launched', 'Adopting', 'Renewal')
      AND COALESCE(`at_risk`, FALSE)
      THEN 5
      WHEN `stage` IN ('Onboarding') AND COALESCE(`trained`, FALSE)
      THEN 0
      WHEN `stage` IN ('Onboarding') AND COALESCE(`days_in_stage` >= 60, FALSE)
      THEN 1
      WHEN `stage` IN ('Launched')
      AND COALESCE((
        `active_users_30d` >= 3
      ) AND (
        `logins_30d` >= 20
      ), FALSE)
      THEN 2
      WHEN `stage` IN ('Launched', 'Adopting') AND COALESCE(`days_to_renewal` <= 90, FALSE)
      THEN 3
      WHEN `stage` IN ('Renewal') AND COALESCE(`days_to_renewal` > 90, FALSE)
      THEN 4
      WHEN `stage` IN ('Will Churn')
      AND COALESCE(
        (
          (
            NOT `at_risk`
          ) AND (
            `health_score` >= 60
          )
        )
        AND (
          `logins_30d` >= 10
        ),
        FALSE
      )
      THEN 6
      WHEN `stage` IN ('Churned') AND COALESCE(`status` = 'active', FALSE)
      THEN 8
    END AS `__win`
  FROM e7_d1
), t7 AS (
  SELECT
    *,
    CASE
      WHEN `__win` = 7
      THEN 'Churned'
      WHEN `__win` = 5
      THEN 'Will Churn'
      WHEN `__win` = 0
      THEN 'Launched'
      WHEN `__win` = 1
      THEN 'Launched'
      WHEN `__win` = 2
      THEN 'Adopting'
      WHEN `__win` = 3
      THEN 'Renewal'
      WHEN `__win` = 4
      THEN 'Adopting'
      WHEN `__win` = 6
      THEN 'Adopting'
      WHEN `__win` = 8
      THEN 'Onboarding'
    END AS `__target`
  FROM w7
), m7 AS (
  SELECT
    *,
    COALESCE(
      CASE
        WHEN `__target` = 'Onboarding'
        THEN `__v0`
        WHEN `__target` = 'Launched'
        THEN `__v1`
        WHEN `__target` = 'Adopting'
        THEN `__v2`
        WHEN `__target` = 'Renewal'
        THEN `__v3`
        WHEN `__target` = 'Will Churn'
        THEN `__v4`
        WHEN `__target` = 'Churned'
        THEN `__v5`
      END,
      FALSE
    ) AS `__loop`
  FROM t7
)
SELECT
  `__row`,
  `__win` AS `__pending`
FROM m7
WHERE
  (
    NOT (
      `__win` IS NULL
    )
  ) AND (
    NOT `__loop`
  );

DROP TABLE IF EXISTS lc_decided;

CREATE TABLE lc_decided AS
SELECT
  h.`__row` AS `__row`,
  h.`customer_id` AS `customer_id`,
  h.`name` AS `name`,
  h.`csm` AS `csm`,
  h.`arr` AS `arr`,
  h.`renewal_date` AS `renewal_date`,
  h.`health_score` AS `health_score`,
  h.`status` AS `status`,
  h.`churn_notice` AS `churn_notice`,
  h.`logins_30d` AS `logins_30d`,
  h.`active_users_30d` AS `active_users_30d`,
  h.`minutes_30d` AS `minutes_30d`,
  h.`trained` AS `trained`,
  h.`last_seen` AS `last_seen`,
  h.`previous_stage` AS `previous_stage`,
  h.`__initial` AS `__initial`,
  CASE
    WHEN COALESCE(r6.`moved`, FALSE)
    THEN r6.`to`
    WHEN COALESCE(r5.`moved`, FALSE)
    THEN r5.`to`
    WHEN COALESCE(r4.`moved`, FALSE)
    THEN r4.`to`
    WHEN COALESCE(r3.`moved`, FALSE)
    THEN r3.`to`
    WHEN COALESCE(r2.`moved`, FALSE)
    THEN r2.`to`
    WHEN COALESCE(r1.`moved`, FALSE)
    THEN r1.`to`
    ELSE h.`stage`
  END AS `stage`,
  CASE
    WHEN COALESCE(r1.`moved`, FALSE)
    THEN CAST('2026-11-01' AS DATE)
    ELSE h.`stage_entered_at`
  END AS `stage_entered_at`,
  r1.`from` AS `__from_1`,
  r1.`to` AS `__to_1`,
  r1.`rule` AS `__rule_1`,
  r1.`days` AS `__days_1`,
  COALESCE(r1.`moved`, FALSE) AS `__moved_1`,
  COALESCE(r1.`loop`, FALSE) AS `__loop_1`,
  r1.`reason` AS `__reason_1`,
  r2.`from` AS `__from_2`,
  r2.`to` AS `__to_2`,
  r2.`rule` AS `__rule_2`,
  r2.`days` AS `__days_2`,
  COALESCE(r2.`moved`, FALSE) AS `__moved_2`,
  COALESCE(r2.`loop`, FALSE) AS `__loop_2`,
  r2.`reason` AS `__reason_2`,
  r3.`from` AS `__from_3`,
  r3.`to` AS `__to_3`,
  r3.`rule` AS `__rule_3`,
  r3.`days` AS `__days_3`,
  COALESCE(r3.`moved`, FALSE) AS `__moved_3`,
  COALESCE(r3.`loop`, FALSE) AS `__loop_3`,
  r3.`reason` AS `__reason_3`,
  r4.`from` AS `__from_4`,
  r4.`to` AS `__to_4`,
  r4.`rule` AS `__rule_4`,
  r4.`days` AS `__days_4`,
  COALESCE(r4.`moved`, FALSE) AS `__moved_4`,
  COALESCE(r4.`loop`, FALSE) AS `__loop_4`,
  r4.`reason` AS `__reason_4`,
  r5.`from` AS `__from_5`,
  r5.`to` AS `__to_5`,
  r5.`rule` AS `__rule_5`,
  r5.`days` AS `__days_5`,
  COALESCE(r5.`moved`, FALSE) AS `__moved_5`,
  COALESCE(r5.`loop`, FALSE) AS `__loop_5`,
  r5.`reason` AS `__reason_5`,
  r6.`from` AS `__from_6`,
  r6.`to` AS `__to_6`,
  r6.`rule` AS `__rule_6`,
  r6.`days` AS `__days_6`,
  COALESCE(r6.`moved`, FALSE) AS `__moved_6`,
  COALESCE(r6.`loop`, FALSE) AS `__loop_6`,
  r6.`reason` AS `__reason_6`,
  p.`__pending` AS `__pending`
FROM lc_h0 AS h
LEFT JOIN lc_r1 AS r1
  ON h.`__row` = r1.`__row`
LEFT JOIN lc_r2 AS r2
  ON h.`__row` = r2.`__row`
LEFT JOIN lc_r3 AS r3
  ON h.`__row` = r3.`__row`
LEFT JOIN lc_r4 AS r4
  ON h.`__row` = r4.`__row`
LEFT JOIN lc_r5 AS r5
  ON h.`__row` = r5.`__row`
LEFT JOIN lc_r6 AS r6
  ON h.`__row` = r6.`__row`
LEFT JOIN lc_pending_rows AS p
  ON h.`__row` = p.`__row`;

CREATE TABLE lifecycle_customers AS
WITH final AS (
  SELECT
    *
  FROM `lc_decided`
), f_b AS (
  SELECT
    *,
    DATEDIFF(DAY, `stage_entered_at`, CAST('2026-11-01' AS DATE)) AS `days_in_stage`,
    CASE
      WHEN `stage` = 'Onboarding'
      THEN 45
      WHEN `stage` = 'Launched'
      THEN 30
      WHEN `stage` = 'Renewal'
      THEN 90
      WHEN `stage` = 'Will Churn'
      THEN 30
    END AS `expected_days`
  FROM final
), f_o AS (
  SELECT
    *,
    COALESCE(`days_in_stage` > `expected_days`, FALSE) AS `overdue`
  FROM f_b
), f_d0 AS (
  SELECT
    *,
    DATEDIFF(DAY, CAST('2026-11-01' AS DATE), `renewal_date`) AS `days_to_renewal`
  FROM f_o
), f_d1 AS (
  SELECT
    *,
    (
      `health_score` < 40
    ) OR `churn_notice` AS `at_risk`
  FROM f_d0
)
SELECT
  `customer_id` AS `customer_id`,
  `name` AS `name`,
  `csm` AS `csm`,
  `arr` AS `arr`,
  `renewal_date` AS `renewal_date`,
  `health_score` AS `health_score`,
  `status` AS `status`,
  `churn_notice` AS `churn_notice`,
  `stage` AS `stage`,
  `stage_entered_at` AS `stage_entered_at`,
  `previous_stage` AS `previous_stage`,
  `days_in_stage` AS `days_in_stage`,
  `expected_days` AS `expected_days`,
  `overdue` AS `overdue`,
  `days_to_renewal` AS `days_to_renewal`,
  `at_risk` AS `at_risk`,
  `logins_30d` AS `logins_30d`,
  `active_users_30d` AS `active_users_30d`,
  `minutes_30d` AS `minutes_30d`,
  `trained` AS `trained`,
  `last_seen` AS `last_seen`
FROM f_d1
ORDER BY
  `__row`;

CREATE TABLE lifecycle_transitions AS
SELECT
  `as_of`,
  `customer_id`,
  `from_stage`,
  `to_stage`,
  `rule_id`,
  `hop`,
  `days_in_from_stage`,
  `reason`
FROM (
  SELECT
    CAST('2026-11-01' AS DATE) AS `as_of`,
    `customer_id` AS `customer_id`,
    CAST(NULL AS STRING) AS `from_stage`,
    'Onboarding' AS `to_stage`,
    'initial' AS `rule_id`,
    0 AS `hop`,
    CAST(NULL AS BIGINT) AS `days_in_from_stage`,
    '' AS `reason`,
    `__row` AS `__order`
  FROM `lc_decided`
  WHERE
    `__initial`
  UNION ALL
  SELECT
    CAST('2026-11-01' AS DATE) AS `as_of`,
    `customer_id` AS `customer_id`,
    `__from_1` AS `from_stage`,
    `__to_1` AS `to_stage`,
    CASE
      WHEN `__rule_1` = 7
      THEN 'churned'
      WHEN `__rule_1` = 5
      THEN 'risk'
      WHEN `__rule_1` = 0
      THEN 'trained'
      WHEN `__rule_1` = 1
      THEN 'onboarding_timeout'
      WHEN `__rule_1` = 2
      THEN 'adopted'
      WHEN `__rule_1` = 3
      THEN 'renewal_window'
      WHEN `__rule_1` = 4
      THEN 'renewed'
      WHEN `__rule_1` = 6
      THEN 'saved'
      WHEN `__rule_1` = 8
      THEN 'won_back'
    END AS `rule_id`,
    1 AS `hop`,
    CAST(`__days_1` AS BIGINT) AS `days_in_from_stage`,
    `__reason_1` AS `reason`,
    `__row` AS `__order`
  FROM `lc_decided`
  WHERE
    `__moved_1`
  UNION ALL
  SELECT
    CAST('2026-11-01' AS DATE) AS `as_of`,
    `customer_id` AS `customer_id`,
    `__from_2` AS `from_stage`,
    `__to_2` AS `to_stage`,
    CASE
      WHEN `__rule_2` = 7
      THEN 'churned'
      WHEN `__rule_2` = 5
      THEN 'risk'
      WHEN `__rule_2` = 0
      THEN 'trained'
      WHEN `__rule_2` = 1
      THEN 'onboarding_timeout'
      WHEN `__rule_2` = 2
      THEN 'adopted'
      WHEN `__rule_2` = 3
      THEN 'renewal_window'
      WHEN `__rule_2` = 4
      THEN 'renewed'
      WHEN `__rule_2` = 6
      THEN 'saved'
      WHEN `__rule_2` = 8
      THEN 'won_back'
    END AS `rule_id`,
    2 AS `hop`,
    CAST(0 AS BIGINT) AS `days_in_from_stage`,
    `__reason_2` AS `reason`,
    `__row` AS `__order`
  FROM `lc_decided`
  WHERE
    `__moved_2`
  UNION ALL
  SELECT
    CAST('2026-11-01' AS DATE) AS `as_of`,
    `customer_id` AS `customer_id`,
    `__from_3` AS `from_stage`,
    `__to_3` AS `to_stage`,
    CASE
      WHEN `__rule_3` = 7
      THEN 'churned'
      WHEN `__rule_3` = 5
      THEN 'risk'
      WHEN `__rule_3` = 0
      THEN 'trained'
      WHEN `__rule_3` = 1
      THEN 'onboarding_timeout'
      WHEN `__rule_3` = 2
      THEN 'adopted'
      WHEN `__rule_3` = 3
      THEN 'renewal_window'
      WHEN `__rule_3` = 4
      THEN 'renewed'
      WHEN `__rule_3` = 6
      THEN 'saved'
      WHEN `__rule_3` = 8
      THEN 'won_back'
    END AS `rule_id`,
    3 AS `hop`,
    CAST(0 AS BIGINT) AS `days_in_from_stage`,
    `__reason_3` AS `reason`,
    `__row` AS `__order`
  FROM `lc_decided`
  WHERE
    `__moved_3`
  UNION ALL
  SELECT
    CAST('2026-11-01' AS DATE) AS `as_of`,
    `customer_id` AS `customer_id`,
    `__from_4` AS `from_stage`,
    `__to_4` AS `to_stage`,
    CASE
      WHEN `__rule_4` = 7
      THEN 'churned'
      WHEN `__rule_4` = 5
      THEN 'risk'
      WHEN `__rule_4` = 0
      THEN 'trained'
      WHEN `__rule_4` = 1
      THEN 'onboarding_timeout'
      WHEN `__rule_4` = 2
      THEN 'adopted'
      WHEN `__rule_4` = 3
      THEN 'renewal_window'
      WHEN `__rule_4` = 4
      THEN 'renewed'
      WHEN `__rule_4` = 6
      THEN 'saved'
      WHEN `__rule_4` = 8
      THEN 'won_back'
    END AS `rule_id`,
    4 AS `hop`,
    CAST(0 AS BIGINT) AS `days_in_from_stage`,
    `__reason_4` AS `reason`,
    `__row` AS `__order`
  FROM `lc_decided`
  WHERE
    `__moved_4`
  UNION ALL
  SELECT
    CAST('2026-11-01' AS DATE) AS `as_of`,
    `customer_id` AS `customer_id`,
    `__from_5` AS `from_stage`,
    `__to_5` AS `to_stage`,
    CASE
      WHEN `__rule_5` = 7
      THEN 'churned'
      WHEN `__rule_5` = 5
      THEN 'risk'
      WHEN `__rule_5` = 0
      THEN 'trained'
      WHEN `__rule_5` = 1
      THEN 'onboarding_timeout'
      WHEN `__rule_5` = 2
      THEN 'adopted'
      WHEN `__rule_5` = 3
      THEN 'renewal_window'
      WHEN `__rule_5` = 4
      THEN 'renewed'
      WHEN `__rule_5` = 6
      THEN 'saved'
      WHEN `__rule_5` = 8
      THEN 'won_back'
    END AS `rule_id`,
    5 AS `hop`,
    CAST(0 AS BIGINT) AS `days_in_from_stage`,
    `__reason_5` AS `reason`,
    `__row` AS `__order`
  FROM `lc_decided`
  WHERE
    `__moved_5`
  UNION ALL
  SELECT
    CAST('2026-11-01' AS DATE) AS `as_of`,
    `customer_id` AS `customer_id`,
    `__from_6` AS `from_stage`,
    `__to_6` AS `to_stage`,
    CASE
      WHEN `__rule_6` = 7
      THEN 'churned'
      WHEN `__rule_6` = 5
      THEN 'risk'
      WHEN `__rule_6` = 0
      THEN 'trained'
      WHEN `__rule_6` = 1
      THEN 'onboarding_timeout'
      WHEN `__rule_6` = 2
      THEN 'adopted'
      WHEN `__rule_6` = 3
      THEN 'renewal_window'
      WHEN `__rule_6` = 4
      THEN 'renewed'
      WHEN `__rule_6` = 6
      THEN 'saved'
      WHEN `__rule_6` = 8
      THEN 'won_back'
    END AS `rule_id`,
    6 AS `hop`,
    CAST(0 AS BIGINT) AS `days_in_from_stage`,
    `__reason_6` AS `reason`,
    `__row` AS `__order`
  FROM `lc_decided`
  WHERE
    `__moved_6`
) AS t
ORDER BY
  `hop`,
  `__order`;

DROP TABLE IF EXISTS lc_input;

DROP TABLE IF EXISTS lc_metrics;

DROP TABLE IF EXISTS lc_state;

DROP TABLE IF EXISTS lc_h0;

DROP TABLE IF EXISTS lc_x1;

DROP TABLE IF EXISTS lc_r1;

DROP TABLE IF EXISTS lc_a1;

DROP TABLE IF EXISTS lc_x2;

DROP TABLE IF EXISTS lc_r2;

DROP TABLE IF EXISTS lc_a2;

DROP TABLE IF EXISTS lc_x3;

DROP TABLE IF EXISTS lc_r3;

DROP TABLE IF EXISTS lc_a3;

DROP TABLE IF EXISTS lc_x4;

DROP TABLE IF EXISTS lc_r4;

DROP TABLE IF EXISTS lc_a4;

DROP TABLE IF EXISTS lc_x5;

DROP TABLE IF EXISTS lc_r5;

DROP TABLE IF EXISTS lc_a5;

DROP TABLE IF EXISTS lc_x6;

DROP TABLE IF EXISTS lc_r6;

DROP TABLE IF EXISTS lc_a6;

DROP TABLE IF EXISTS lc_pending_rows;

DROP TABLE IF EXISTS lc_decided;

