-- Happiness report: counts per rating (great / okay / not_good), their percentages and the
-- happiness score (% great − % not good), overall, by UTC day / ISO week (Monday) / month,
-- by mailbox and by rated user. Every rating is counted exactly once in each view.

CREATE OR REPLACE VIEW happiness_summary AS
SELECT
  count(*) AS ratings,
  count(*) FILTER (WHERE rating = 'great') AS great,
  count(*) FILTER (WHERE rating = 'okay') AS okay,
  count(*) FILTER (WHERE rating = 'not_good') AS not_good,
  round(100 * (count(*) FILTER (WHERE rating = 'great'))::DOUBLE / nullif(count(*), 0), 1) AS great_pct,
  round(100 * (count(*) FILTER (WHERE rating = 'okay'))::DOUBLE / nullif(count(*), 0), 1) AS okay_pct,
  round(100 * (count(*) FILTER (WHERE rating = 'not_good'))::DOUBLE / nullif(count(*), 0), 1) AS not_good_pct,
  happiness_score(count(*) FILTER (WHERE rating = 'great'), count(*) FILTER (WHERE rating = 'not_good'), count(*)) AS happiness_score,
  min(rated_at_utc) AS first_rated_utc,
  max(rated_at_utc) AS last_rated_utc
FROM happiness_ratings;

CREATE OR REPLACE VIEW happiness_by_period AS
WITH periods AS (
  SELECT 'day' AS period, CAST(date_trunc('day', rated_at_utc) AS DATE) AS period_start, rating FROM happiness_ratings
  UNION ALL
  SELECT 'week', CAST(date_trunc('week', rated_at_utc) AS DATE), rating FROM happiness_ratings
  UNION ALL
  SELECT 'month', CAST(date_trunc('month', rated_at_utc) AS DATE), rating FROM happiness_ratings
)
SELECT
  period,
  period_start,
  count(*) AS ratings,
  count(*) FILTER (WHERE rating = 'great') AS great,
  count(*) FILTER (WHERE rating = 'okay') AS okay,
  count(*) FILTER (WHERE rating = 'not_good') AS not_good,
  round(100 * (count(*) FILTER (WHERE rating = 'great'))::DOUBLE / count(*), 1) AS great_pct,
  round(100 * (count(*) FILTER (WHERE rating = 'okay'))::DOUBLE / count(*), 1) AS okay_pct,
  round(100 * (count(*) FILTER (WHERE rating = 'not_good'))::DOUBLE / count(*), 1) AS not_good_pct,
  happiness_score(count(*) FILTER (WHERE rating = 'great'), count(*) FILTER (WHERE rating = 'not_good'), count(*)) AS happiness_score
FROM periods
GROUP BY period, period_start
ORDER BY period, period_start;

CREATE OR REPLACE VIEW happiness_by_mailbox AS
SELECT
  mailbox_id,
  mailbox_name,
  count(*) AS ratings,
  count(*) FILTER (WHERE rating = 'great') AS great,
  count(*) FILTER (WHERE rating = 'okay') AS okay,
  count(*) FILTER (WHERE rating = 'not_good') AS not_good,
  round(100 * (count(*) FILTER (WHERE rating = 'great'))::DOUBLE / count(*), 1) AS great_pct,
  round(100 * (count(*) FILTER (WHERE rating = 'okay'))::DOUBLE / count(*), 1) AS okay_pct,
  round(100 * (count(*) FILTER (WHERE rating = 'not_good'))::DOUBLE / count(*), 1) AS not_good_pct,
  happiness_score(count(*) FILTER (WHERE rating = 'great'), count(*) FILTER (WHERE rating = 'not_good'), count(*)) AS happiness_score
FROM happiness_ratings
GROUP BY mailbox_id, mailbox_name
ORDER BY mailbox_name NULLS LAST, mailbox_id;

CREATE OR REPLACE VIEW happiness_by_user AS
SELECT
  user_id,
  user_name,
  count(*) AS ratings,
  count(*) FILTER (WHERE rating = 'great') AS great,
  count(*) FILTER (WHERE rating = 'okay') AS okay,
  count(*) FILTER (WHERE rating = 'not_good') AS not_good,
  round(100 * (count(*) FILTER (WHERE rating = 'great'))::DOUBLE / count(*), 1) AS great_pct,
  round(100 * (count(*) FILTER (WHERE rating = 'okay'))::DOUBLE / count(*), 1) AS okay_pct,
  round(100 * (count(*) FILTER (WHERE rating = 'not_good'))::DOUBLE / count(*), 1) AS not_good_pct,
  happiness_score(count(*) FILTER (WHERE rating = 'great'), count(*) FILTER (WHERE rating = 'not_good'), count(*)) AS happiness_score
FROM happiness_ratings
GROUP BY user_id, user_name
ORDER BY user_name NULLS LAST, user_id;
