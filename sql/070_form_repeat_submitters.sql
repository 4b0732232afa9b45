-- Duplicates in the To-HelpScout direction (the "Duplicate Tickets Being Created" section of the log page):
-- emails that submitted more than one form within an hour (a customer submitting several
-- times, or a double click that came without a submission id), with the repeats that were
-- recognised and ignored.

CREATE OR REPLACE VIEW form_repeat_submitters AS
WITH received AS (
  -- As plain UTC timestamps: interval arithmetic on TIMESTAMPTZ needs the ICU extension.
  SELECT lower(customer_email) AS customer_email, make_timestamp(epoch_us("timestamp")) AS received_at, event_type,
         sum(CASE WHEN event_type = 'Ticket Created' THEN 1 ELSE 0 END) OVER (
           PARTITION BY lower(customer_email) ORDER BY make_timestamp(epoch_us("timestamp"))
           RANGE BETWEEN INTERVAL 1 HOUR PRECEDING AND CURRENT ROW) AS within_an_hour
  FROM helpscout_log
  WHERE direction = 'To HelpScout' AND customer_email IS NOT NULL
    AND event_type IN ('Ticket Created', 'Duplicate Ignored')
)
SELECT customer_email,
       count(*) FILTER (WHERE event_type = 'Ticket Created') AS submissions,
       count(*) FILTER (WHERE event_type = 'Duplicate Ignored') AS repeats_ignored,
       max(within_an_hour) AS most_within_an_hour,
       min(received_at) AS first_at,
       max(received_at) AS last_at
FROM received
GROUP BY customer_email
HAVING max(within_an_hour) > 1 OR count(*) FILTER (WHERE event_type = 'Duplicate Ignored') > 0
ORDER BY last_at DESC;
