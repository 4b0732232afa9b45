-- Ratings that came with a comment, newest first, with the customer, the rated user and the
-- conversation (and its web link).

CREATE OR REPLACE VIEW happiness_comments AS
SELECT
  happiness_ratings.rated_at_utc,
  happiness_ratings.rating,
  happiness_ratings.comments,
  happiness_ratings.customer_id,
  coalesce(nullif(trim(concat_ws(' ', customers.first_name, customers.last_name)), ''),
           happiness_ratings.customer_name) AS customer_name,
  customers.emails[1].value AS customer_email,
  happiness_ratings.user_id,
  happiness_ratings.user_name,
  happiness_ratings.conversation_id,
  happiness_ratings.conversation_number,
  happiness_ratings.conversation_subject,
  happiness_ratings.mailbox_name,
  'https://secure.helpscout.net/conversation/' || happiness_ratings.conversation_id
    || '/' || coalesce(CAST(happiness_ratings.conversation_number AS VARCHAR), '') AS conversation_url
FROM happiness_ratings
LEFT JOIN customers ON happiness_ratings.customer_id = customers.id
WHERE nullif(trim(happiness_ratings.comments), '') IS NOT NULL
ORDER BY happiness_ratings.rated_at_utc DESC, happiness_ratings.conversation_id;
