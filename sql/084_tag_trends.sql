-- Conversations per tag per ISO week (Monday, UTC, by the week the conversation was created,
-- with the tags it carries now), every week from the tag's first to the latest week of any
-- conversation present (zero where none), with the change from the week before (a tag's first week counts from 0).

CREATE OR REPLACE VIEW tag_trends AS
WITH tagged AS (
  SELECT tag, CAST(date_trunc('week', created_at_utc) AS DATE) AS week_start, count(*) AS conversations
  FROM (SELECT unnest(tags) AS tag, created_at_utc FROM conversation_metrics)
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
  SELECT weeks.tag, weeks.week_start, coalesce(tagged.conversations, 0) AS conversations
  FROM weeks
  LEFT JOIN tagged ON tagged.tag = weeks.tag AND tagged.week_start = weeks.week_start
)
SELECT
  tag,
  week_start,
  conversations,
  lag(conversations, 1, 0) OVER (PARTITION BY tag ORDER BY week_start) AS previous_week,
  conversations - lag(conversations, 1, 0) OVER (PARTITION BY tag ORDER BY week_start) AS change,
  round(100 * (conversations - lag(conversations, 1, 0) OVER (PARTITION BY tag ORDER BY week_start))::DOUBLE
        / nullif(lag(conversations, 1, 0) OVER (PARTITION BY tag ORDER BY week_start), 0), 1) AS change_pct
FROM filled
ORDER BY tag, week_start;
