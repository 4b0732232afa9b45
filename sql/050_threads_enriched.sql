-- Threads with their conversation, customer and (when a user wrote it) user, through the
-- documented join keys. One row per conversation_threads row.

CREATE OR REPLACE VIEW threads_enriched AS
SELECT
  conversation_threads.*,
  conversations.number AS conversation_number,
  conversations.subject AS conversation_subject,
  conversations.status AS conversation_status,
  conversations.mailbox_id AS mailbox_id,
  make_timestamp(epoch_us(conversations.created_at)) AS conversation_created_at_utc,
  make_timestamp(epoch_us(conversation_threads.created_at)) AS created_at_utc,
  customers.id AS customer_id,
  customers.first_name AS customer_first_name,
  customers.last_name AS customer_last_name,
  customers.emails[1].value AS customer_email,
  users.id AS user_id,
  users.first_name AS user_first_name,
  users.last_name AS user_last_name,
  users.email AS user_email
FROM conversation_threads
LEFT JOIN conversations ON conversation_threads.conversation_id = conversations.id
LEFT JOIN customers ON conversation_threads.customer.id = customers.id
LEFT JOIN users ON conversation_threads.created_by.id = users.id
  AND coalesce(conversation_threads.created_by."type", 'user') = 'user';
