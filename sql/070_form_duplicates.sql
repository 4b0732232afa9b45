-- Duplicates in the To-HelpScout direction (the log page's "Duplicate Tickets Being Created").
-- form_repeat_submitters: emails that submitted more than one form within an hour (a customer
-- submitting several times, or a double click that came without a submission id), with the
-- repeats that were recognised and ignored. form_duplicate_tickets: submission markers that more
-- than one Help Scout conversation carries, from the synced conversations table; the tool's
-- guarantee is that this view stays empty.

CREATE OR REPLACE VIEW form_repeat_submitters AS
WITH received AS (
  SELECT lower(customer_email) AS customer_email, "timestamp", event_type,
         count(*) FILTER (WHERE event_type = 'Ticket Created') OVER (
           PARTITION BY lower(customer_email) ORDER BY "timestamp"
           RANGE BETWEEN INTERVAL 1 HOUR PRECEDING AND CURRENT ROW) AS within_an_hour
  FROM helpscout_log
  WHERE direction = 'To HelpScout' AND customer_email IS NOT NULL
    AND event_type IN ('Ticket Created', 'Duplicate Ignored')
)
SELECT customer_email,
       count(*) FILTER (WHERE event_type = 'Ticket Created') AS submissions,
       count(*) FILTER (WHERE event_type = 'Duplicate Ignored') AS repeats_ignored,
       max(within_an_hour) AS most_within_an_hour,
       min("timestamp") AS first_at,
       max("timestamp") AS last_at
FROM received
GROUP BY customer_email
HAVING max(within_an_hour) > 1 OR count(*) FILTER (WHERE event_type = 'Duplicate Ignored') > 0
ORDER BY last_at DESC;

CREATE OR REPLACE VIEW form_duplicate_tickets AS
WITH marked AS (
  SELECT id, number, created_at, t.tag AS tag
  FROM (SELECT id, number, created_at, unnest(tags) AS t FROM conversations)
)
SELECT tag AS marker,
       count(*) AS tickets,
       list(id ORDER BY id) AS conversation_ids,
       list(number ORDER BY id) AS conversation_numbers,
       min(created_at) AS first_created_at
FROM marked
WHERE regexp_full_match(tag, 'hs-[0-9a-f]{20}')
GROUP BY tag
HAVING count(*) > 1
ORDER BY first_created_at DESC;
