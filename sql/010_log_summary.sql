-- The integration log's "Summary Dashboard": events, successes, failures, success rate,
-- new tickets and customers synced, per UTC day and for any UTC range.
--
-- success_rate_pct = successes / (successes + failures): Pending events (a throttled request
-- that was waited out and retried) are counted apart, neither success nor failure.
-- Days are UTC days: timestamps become naive UTC timestamps through their epoch
-- (make_timestamp(epoch_us(...))), so no TimeZone setting moves an event to another day.

CREATE OR REPLACE VIEW log_summary_daily AS
SELECT
  CAST(date_trunc('day', make_timestamp(epoch_us("timestamp"))) AS DATE) AS day,
  count(*) AS total_events,
  count(*) FILTER (WHERE status = 'Success') AS successes,
  count(*) FILTER (WHERE status = 'Failed') AS failures,
  count(*) FILTER (WHERE status = 'Pending') AS pending,
  round(100 * (count(*) FILTER (WHERE status = 'Success'))::DOUBLE
        / nullif(count(*) FILTER (WHERE status IN ('Success', 'Failed')), 0), 1) AS success_rate_pct,
  count(*) FILTER (WHERE event_type = 'Ticket Created' AND status = 'Success') AS new_tickets,
  count(*) FILTER (WHERE event_type = 'Customer Synced' AND status = 'Success') AS customers_synced,
  count(*) FILTER (WHERE event_type = 'Rate Limited') AS rate_limit_warnings
FROM helpscout_log
GROUP BY 1
ORDER BY 1;

-- log_summary(from_utc, to_utc): one row for the UTC range [from_utc, to_utc).
-- Pass UTC dates or naive UTC timestamps: log_summary('2026-11-01', '2026-12-01').
CREATE OR REPLACE MACRO log_summary(from_utc, to_utc) AS TABLE
SELECT CAST(from_utc AS TIMESTAMP) AS from_utc, CAST(to_utc AS TIMESTAMP) AS to_utc, totals.*
FROM (
SELECT
  count(*) AS total_events,
  count(*) FILTER (WHERE status = 'Success') AS successes,
  count(*) FILTER (WHERE status = 'Failed') AS failures,
  count(*) FILTER (WHERE status = 'Pending') AS pending,
  round(100 * (count(*) FILTER (WHERE status = 'Success'))::DOUBLE
        / nullif(count(*) FILTER (WHERE status IN ('Success', 'Failed')), 0), 1) AS success_rate_pct,
  count(*) FILTER (WHERE event_type = 'Ticket Created' AND status = 'Success') AS new_tickets,
  count(*) FILTER (WHERE event_type = 'Customer Synced' AND status = 'Success') AS customers_synced,
  count(*) FILTER (WHERE event_type = 'Rate Limited') AS rate_limit_warnings
FROM helpscout_log
WHERE make_timestamp(epoch_us("timestamp")) >= CAST(from_utc AS TIMESTAMP)
  AND make_timestamp(epoch_us("timestamp")) < CAST(to_utc AS TIMESTAMP)
) AS totals;
