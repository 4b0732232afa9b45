-- Email, chat and phone side by side, over all synced conversations (spam, deleted and draft
-- left out), from conversation_metrics. Medians and 90th percentiles are interpolated
-- (quantile_cont). messages_per_conversation counts customer messages and replies;
-- median_duration_seconds runs from the first message to the last (a chat's length).

CREATE OR REPLACE VIEW channel_metrics AS
SELECT
  channel,
  count(*) AS conversations,
  count(DISTINCT customer_email) AS customers,
  sum(customer_messages) AS messages_received,
  sum(replies_sent) AS replies_sent,
  round(avg(customer_messages + replies_sent), 2) AS messages_per_conversation,
  median(first_response_seconds) AS median_first_response_seconds,
  quantile_cont(first_response_seconds, 0.9) AS p90_first_response_seconds,
  count(*) FILTER (WHERE resolved) AS resolved,
  round(100 * (count(*) FILTER (WHERE resolved))::DOUBLE / count(*), 1) AS resolved_pct,
  median(resolution_seconds) AS median_resolution_seconds,
  round(avg(replies_to_resolve), 2) AS mean_replies_to_resolve,
  round(100 * (count(*) FILTER (WHERE resolved_on_first_reply))::DOUBLE / nullif(count(*) FILTER (WHERE resolved), 0), 1) AS resolved_on_first_reply_pct,
  median(duration_seconds) AS median_duration_seconds
FROM conversation_metrics
GROUP BY channel
ORDER BY CASE channel WHEN 'email' THEN 1 WHEN 'chat' THEN 2 WHEN 'phone' THEN 3 ELSE 4 END, channel;
