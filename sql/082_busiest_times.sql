-- When conversations arrive, as Help Scout's All Channels report shows it: new conversations
-- by day of the week (1 = Monday … 7 = Sunday) and hour (0–23), UTC, every one of the 168
-- cells present (zero where none arrived); and the busiest day of the week. Read from
-- conversation_metrics (spam, deleted and draft conversations left out).

CREATE OR REPLACE VIEW busiest_times AS
WITH cells AS (
  SELECT d AS day_of_week, h AS "hour"
  FROM range(1, 8) AS days(d), range(0, 24) AS hours(h)
),
arrived AS (
  SELECT isodow(created_at_utc) AS day_of_week, hour(created_at_utc) AS "hour", count(*) AS new_conversations
  FROM conversation_metrics
  GROUP BY ALL
)
SELECT
  cells.day_of_week,
  ['Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday', 'Sunday'][cells.day_of_week] AS day_name,
  cells."hour",
  coalesce(arrived.new_conversations, 0) AS new_conversations,
  round(100 * coalesce(arrived.new_conversations, 0)::DOUBLE / nullif(sum(coalesce(arrived.new_conversations, 0)) OVER (), 0), 1) AS share_pct
FROM cells
LEFT JOIN arrived ON arrived.day_of_week = cells.day_of_week AND arrived."hour" = cells."hour"
ORDER BY cells.day_of_week, cells."hour";

-- The day of the week with the most new conversations (the earlier day on a tie), with its
-- busiest hour; no row when there is no conversation.
CREATE OR REPLACE VIEW busiest_day AS
WITH days AS (
  SELECT day_of_week, day_name, CAST(sum(new_conversations) AS BIGINT) AS new_conversations,
         arg_max("hour", struct_pack(n := new_conversations, earlier := -"hour")) AS busiest_hour
  FROM busiest_times
  GROUP BY day_of_week, day_name
)
SELECT day_of_week, day_name, new_conversations,
       round(100 * new_conversations::DOUBLE / sum(new_conversations) OVER (), 1) AS share_pct,
       busiest_hour
FROM days
WHERE new_conversations > 0
ORDER BY new_conversations DESC, day_of_week
LIMIT 1;
