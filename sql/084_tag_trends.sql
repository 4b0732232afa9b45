-- Conversations per tag per ISO week (Monday, UTC, by the week the conversation was created,
-- with the tags it carries now), every week from the tag's first to the latest week of any
-- conversation present (zero where none), with the change from the week before (a tag's first
-- week counts from 0). share_pct is the tag's share of the week's new conversations and
-- share_change_pts its change in points: the figure Help Scout's Tags report compares.

CREATE OR REPLACE VIEW tag_trends AS
WITH tagged AS (
  SELECT tag, CAST(date_trunc('week', created_at_utc) AS DATE) AS week_start, count(*) AS conversations
  FROM (SELECT unnest(tags) AS tag, created_at_utc FROM conversation_metrics)
  GROUP BY ALL
),
week_totals AS (
  SELECT CAST(date_trunc('week', created_at_utc) AS DATE) AS week_start, count(*) AS total
  FROM conversation_metrics
  GROUP BY ALL
),
bounds AS (
  SELECT CAST(date_trunc('week', max(created_at_utc)) AS DATE) AS last_week FROM conversation_metrics
),
weeks AS (
  SELECT tag, CAST(w AS DATE) AS week_start
  FROM (SELECT tag, min(week_start) AS first_week FROM tagged GROUP BY tag), bounds,
       LATERAL (SELECT unnest(generate_series(first_week::TIMESTAMP, last_week::TIMESTAMP, INTERVAL 7 DAY)) AS w)
),
filled AS (
  SELECT weeks.tag, weeks.week_start, coalesce(tagged.conversations, 0) AS conversations,
         coalesce(100 * coalesce(tagged.conversations, 0)::DOUBLE / week_totals.total, 0) AS share
  FROM weeks
  LEFT JOIN tagged ON tagged.tag = weeks.tag AND tagged.week_start = weeks.week_start
  LEFT JOIN week_totals ON week_totals.week_start = weeks.week_start
)
SELECT
  tag,
  week_start,
  conversations,
  lag(conversations, 1, 0) OVER (PARTITION BY tag ORDER BY week_start) AS previous_week,
  conversations - lag(conversations, 1, 0) OVER (PARTITION BY tag ORDER BY week_start) AS change,
  round(100 * (conversations - lag(conversations, 1, 0) OVER (PARTITION BY tag ORDER BY week_start))::DOUBLE
        / nullif(lag(conversations, 1, 0) OVER (PARTITION BY tag ORDER BY week_start), 0), 1) AS change_pct,
  round(share, 1) AS share_pct,
  round(share - lag(share, 1, 0) OVER (PARTITION BY tag ORDER BY week_start), 1) AS share_change_pts
FROM filled
ORDER BY tag, week_start;
