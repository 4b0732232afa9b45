-- Integration health (the log page's "Monitor Integration Health"): success rate per event type
-- over the last 24 and the last 48 hours, flagged below 95 %. One row per window and event type,
-- plus an 'All outcomes' row per window.
--
-- success_rate_pct = successes / (successes + failures); Pending events are counted apart.
-- 'Error' and 'Rate Limited' events record single request attempts (a failed or throttled
-- request, usually retried); the outcome of the work they belong to is its own event (a failed
-- table is 'Table Synced' / Failed). They are listed with their counts and last error, but
-- attempt_level = true: no success rate, never flagged, and left out of 'All outcomes'.
-- below_threshold compares the exact ratio (not the rounded one) with 95 %; it is false when
-- the window holds no settled event of that type.
-- The windows are measured in epoch microseconds against now(), so they mean the same with or
-- without the ICU extension and whatever the TimeZone setting.

CREATE OR REPLACE VIEW integration_health AS
WITH windows(window_hours) AS (VALUES (24), (48)),
events AS (
  SELECT
    event_type,
    status,
    error_message,
    epoch_us("timestamp") AS at_us,
    event_type IN ('Error', 'Rate Limited') AS attempt_level
  FROM helpscout_log
),
per_type AS (
  SELECT
    windows.window_hours,
    events.event_type,
    false AS is_total,
    bool_and(events.attempt_level) AS attempt_level,
    count(*) AS events,
    count(*) FILTER (WHERE events.status = 'Success') AS successes,
    count(*) FILTER (WHERE events.status = 'Failed') AS failures,
    count(*) FILTER (WHERE events.status = 'Pending') AS pending,
    max(events.at_us) FILTER (WHERE events.status = 'Failed') AS last_failure_us,
    arg_max(events.error_message, events.at_us) FILTER (WHERE events.status = 'Failed') AS last_error
  FROM windows
  JOIN events ON events.at_us > epoch_us(now()) - windows.window_hours * CAST(3600000000 AS BIGINT)
  GROUP BY windows.window_hours, events.event_type
),
totals AS (
  SELECT
    windows.window_hours,
    'All outcomes' AS event_type,
    true AS is_total,
    false AS attempt_level,
    count(events.at_us) AS events,
    count(*) FILTER (WHERE events.status = 'Success') AS successes,
    count(*) FILTER (WHERE events.status = 'Failed') AS failures,
    count(*) FILTER (WHERE events.status = 'Pending') AS pending,
    max(events.at_us) FILTER (WHERE events.status = 'Failed') AS last_failure_us,
    arg_max(events.error_message, events.at_us) FILTER (WHERE events.status = 'Failed') AS last_error
  FROM windows
  LEFT JOIN events ON events.at_us > epoch_us(now()) - windows.window_hours * CAST(3600000000 AS BIGINT)
    AND NOT events.attempt_level
  GROUP BY windows.window_hours
),
counted AS (
  SELECT * FROM per_type
  UNION ALL
  SELECT * FROM totals
)
SELECT
  window_hours,
  event_type,
  attempt_level,
  events,
  successes,
  failures,
  pending,
  CASE WHEN NOT attempt_level
    THEN round(100 * successes::DOUBLE / nullif(successes + failures, 0), 1) END AS success_rate_pct,
  CAST(95 AS DOUBLE) AS threshold_pct,
  NOT attempt_level AND coalesce(100 * successes < 95 * (successes + failures), false) AS below_threshold,
  make_timestamp(last_failure_us) AS last_failure_utc,
  last_error
FROM counted
ORDER BY window_hours, is_total, event_type;
