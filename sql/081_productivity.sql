-- Productivity, as Help Scout's Company, Mailbox, User and Team reports count it, per UTC day,
-- ISO week (Monday) and month, for the whole company and per mailbox, user and team.
--
-- support_activity holds one row per countable event of a conversation in conversation_metrics
-- (spam, deleted and draft left out), at the moment it happened:
--   new               the conversation was created (a user's, when a user started it)
--   message_received  a customer message
--   reply / note      a reply or note, the writing user's
--   first_response    the first reply after the first customer message (seconds = the wait)
--   closed            the conversation's (last) closing, the closing user's; resolved when it
--                     had at least one reply (seconds = resolution time)
--   rating            a happiness rating (every rating, as the happiness_* views count them),
--                     the rated user's
-- A team's figures are its members' (a user in two teams counts in both).

CREATE OR REPLACE VIEW support_activity AS
SELECT conversation_id, 'new' AS kind, created_at_utc AS at_utc, mailbox_id, started_by_user_id AS user_id, customer_email
FROM conversation_metrics
UNION ALL BY NAME
SELECT
  conversation_metrics.conversation_id,
  CASE thread_roles.role WHEN 'customer_message' THEN 'message_received' ELSE thread_roles.role END AS kind,
  thread_roles.at_utc,
  conversation_metrics.mailbox_id,
  CASE WHEN thread_roles.role IN ('reply', 'note') THEN thread_roles.author_id END AS user_id,
  conversation_metrics.customer_email
FROM thread_roles
JOIN conversation_metrics ON conversation_metrics.conversation_id = thread_roles.conversation_id
WHERE thread_roles.role IN ('reply', 'customer_message', 'note')
UNION ALL BY NAME
SELECT conversation_id, 'first_response' AS kind, first_reply_utc AS at_utc, mailbox_id, first_reply_user_id AS user_id,
       customer_email, first_response_seconds AS seconds
FROM conversation_metrics
WHERE first_reply_utc IS NOT NULL
UNION ALL BY NAME
SELECT conversation_id, 'closed' AS kind, closed_at_utc AS at_utc, mailbox_id, closed_by_user_id AS user_id, customer_email,
       resolution_seconds AS seconds, resolved, replies_to_resolve, resolved_on_first_reply
FROM conversation_metrics
WHERE closed_at_utc IS NOT NULL
UNION ALL BY NAME
SELECT conversation_id, 'rating' AS kind, rated_at_utc AS at_utc, mailbox_id, user_id, rating
FROM happiness_ratings;

-- The figures of the events in [from_utc, to_utc) (NULL: unbounded), per period of `periods`
-- ('day', 'week', 'month', or 'range': the whole range) and per dimension of `dimensions`
-- ('company', 'mailbox', 'user', 'team'). Asking for less is faster on a large account:
-- SELECT * FROM productivity_grouped(NULL, NULL, periods := ['week'], dimensions := ['company']).
CREATE OR REPLACE MACRO productivity_grouped(from_utc, to_utc, periods := ['range'], dimensions := ['company', 'mailbox', 'user', 'team']) AS TABLE
WITH events AS (
  SELECT * FROM support_activity
  WHERE (CAST(from_utc AS TIMESTAMP) IS NULL OR at_utc >= CAST(from_utc AS TIMESTAMP))
    AND (CAST(to_utc AS TIMESTAMP) IS NULL OR at_utc < CAST(to_utc AS TIMESTAMP))
),
dims AS (
  SELECT events.*, 'company' AS dimension, CAST(NULL AS BIGINT) AS dimension_id FROM events WHERE list_contains(dimensions, 'company')
  UNION ALL
  SELECT events.*, 'mailbox', mailbox_id FROM events WHERE list_contains(dimensions, 'mailbox') AND mailbox_id IS NOT NULL
  UNION ALL
  SELECT events.*, 'user', user_id FROM events WHERE list_contains(dimensions, 'user') AND user_id IS NOT NULL
  UNION ALL
  SELECT events.*, 'team', team_members.team_id FROM events JOIN team_members ON team_members.user_id = events.user_id
  WHERE list_contains(dimensions, 'team')
),
periods AS (
  SELECT dims.*, p.period,
         CASE WHEN p.period = 'range' THEN CAST(NULL AS DATE) ELSE CAST(date_trunc(p.period, dims.at_utc) AS DATE) END AS period_start
  FROM dims, (SELECT unnest(periods) AS period) AS p
),
grouped AS (
  SELECT
    period,
    period_start,
    dimension,
    dimension_id,
    count(DISTINCT conversation_id) FILTER (WHERE kind = 'new') AS new_conversations,
    count(DISTINCT conversation_id) FILTER (WHERE kind IN ('new', 'message_received', 'reply', 'note', 'closed')) AS conversations_touched,
    -- A company's or mailbox's customers are those of every conversation touched; a user's or
    -- team's, those they replied to (Help Scout's "customers helped").
    CASE WHEN dimension IN ('company', 'mailbox')
         THEN count(DISTINCT customer_email) FILTER (WHERE kind IN ('new', 'message_received', 'reply', 'note', 'closed'))
         ELSE count(DISTINCT customer_email) FILTER (WHERE kind = 'reply') END AS customers,
    CASE WHEN dimension IN ('company', 'mailbox') THEN count(*) FILTER (WHERE kind = 'message_received') END AS messages_received,
    count(*) FILTER (WHERE kind = 'reply') AS replies_sent,
    round(avg(seconds) FILTER (WHERE kind = 'first_response'), 1) AS mean_first_response_seconds,
    median(seconds) FILTER (WHERE kind = 'first_response') AS median_first_response_seconds,
    quantile_cont(seconds, 0.9) FILTER (WHERE kind = 'first_response') AS p90_first_response_seconds,
    count(*) FILTER (WHERE kind = 'closed' AND resolved) AS resolved,
    round(avg(seconds) FILTER (WHERE kind = 'closed' AND resolved), 1) AS mean_resolution_seconds,
    median(seconds) FILTER (WHERE kind = 'closed' AND resolved) AS median_resolution_seconds,
    quantile_cont(seconds, 0.9) FILTER (WHERE kind = 'closed' AND resolved) AS p90_resolution_seconds,
    round(avg(replies_to_resolve) FILTER (WHERE kind = 'closed' AND resolved), 2) AS mean_replies_to_resolve,
    round(100 * (count(*) FILTER (WHERE kind = 'closed' AND resolved_on_first_reply))::DOUBLE
          / nullif(count(*) FILTER (WHERE kind = 'closed' AND resolved), 0), 1) AS resolved_on_first_reply_pct,
    count(*) FILTER (WHERE kind = 'rating') AS ratings,
    happiness_score(count(*) FILTER (WHERE kind = 'rating' AND rating = 'great'),
                    count(*) FILTER (WHERE kind = 'rating' AND rating = 'not_good'),
                    count(*) FILTER (WHERE kind = 'rating')) AS happiness_score
  FROM periods
  GROUP BY period, period_start, dimension, dimension_id
)
SELECT
  grouped.period,
  grouped.period_start,
  grouped.dimension,
  grouped.dimension_id,
  CASE grouped.dimension
    WHEN 'company' THEN 'All mailboxes'
    WHEN 'mailbox' THEN mailboxes.name
    WHEN 'user' THEN nullif(trim(concat_ws(' ', users.first_name, users.last_name)), '')
    WHEN 'team' THEN teams.name
  END AS dimension_name,
  grouped.* EXCLUDE (period, period_start, dimension, dimension_id)
FROM grouped
LEFT JOIN mailboxes ON grouped.dimension = 'mailbox' AND mailboxes.id = grouped.dimension_id
LEFT JOIN users ON grouped.dimension = 'user' AND users.id = grouped.dimension_id
LEFT JOIN teams ON grouped.dimension = 'team' AND teams.id = grouped.dimension_id;

CREATE OR REPLACE VIEW productivity AS
SELECT * FROM productivity_grouped(NULL, NULL, periods := ['day', 'week', 'month'])
ORDER BY period, period_start, dimension, dimension_name NULLS LAST, dimension_id;

-- The same figures over a custom range [from_utc, to_utc), UTC, like log_summary(from, to):
-- SELECT * FROM productivity_between('2026-01-01', '2026-02-01') WHERE dimension = 'user'.
CREATE OR REPLACE MACRO productivity_between(from_utc, to_utc) AS TABLE
SELECT CAST(from_utc AS TIMESTAMP) AS from_utc, CAST(to_utc AS TIMESTAMP) AS to_utc,
       grouped.* EXCLUDE (period, period_start)
FROM productivity_grouped(from_utc, to_utc) AS grouped
ORDER BY dimension, dimension_name NULLS LAST, dimension_id;
