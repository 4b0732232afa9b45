-- Happiness ratings with their conversation, mailbox and rated user: the base of the
-- happiness_* views. rated_at_utc is a naive UTC timestamp (see log_summary_daily).
-- happiness_score(great, not_good, ratings) = % great − % not good, one decimal.

CREATE OR REPLACE MACRO happiness_score(great, not_good, ratings) AS
  round(100 * (great - not_good)::DOUBLE / nullif(ratings, 0), 1);

CREATE OR REPLACE VIEW happiness_ratings AS
SELECT
  happiness_ratings_report.conversation_id,
  happiness_ratings_report.thread_id,
  happiness_ratings_report.rating_id,
  happiness_ratings_report.rating,
  make_timestamp(epoch_us(happiness_ratings_report.rating_created_at)) AS rated_at_utc,
  happiness_ratings_report.rating_comments AS comments,
  happiness_ratings_report.rating_customer_id AS customer_id,
  happiness_ratings_report.rating_customer_name AS customer_name,
  happiness_ratings_report.rating_user_id AS user_id,
  coalesce(nullif(trim(concat_ws(' ', users.first_name, users.last_name)), ''),
           happiness_ratings_report.rating_user_name) AS user_name,
  conversations.number AS conversation_number,
  conversations.subject AS conversation_subject,
  conversations.mailbox_id AS mailbox_id,
  mailboxes.name AS mailbox_name
FROM happiness_ratings_report
LEFT JOIN conversations ON happiness_ratings_report.conversation_id = conversations.id
LEFT JOIN mailboxes ON conversations.mailbox_id = mailboxes.id
LEFT JOIN users ON happiness_ratings_report.rating_user_id = users.id;
