-- Support metrics, per conversation, defined as Help Scout's reports define them (README,
-- "Support metrics", says where we differ). All durations are wall-clock seconds in UTC: office
-- hours are not modelled. Spam conversations, and deleted or draft ones, are left out.
--
-- thread_roles: what each thread counts as.
--   reply            a published message, chat or phone thread written by a user
--   customer_message a published thread written by a customer (not a note or line item)
--   note             a published note
--   other            line items, forwards, drafts and anything else
-- closes is true for a published thread that set the conversation's status to closed (a
-- "marked as Closed" line item, or a reply sent and closed).
--
-- A conversation is resolved when it is closed now and at least one reply was sent up to its
-- (last) closing; replies_to_resolve counts those replies.

CREATE OR REPLACE VIEW thread_roles AS
SELECT
  conversation_threads.conversation_id,
  conversation_threads.id AS thread_id,
  epoch_us(conversation_threads.created_at) AS at_us,
  make_timestamp(epoch_us(conversation_threads.created_at)) AS at_utc,
  conversation_threads.created_by.id AS author_id,
  conversation_threads.created_by."type" AS author_type,
  CASE
    WHEN coalesce(conversation_threads.state, 'published') <> 'published' THEN 'other'
    WHEN conversation_threads."type" = 'note' THEN 'note'
    WHEN conversation_threads."type" = 'lineitem' THEN 'other'
    WHEN conversation_threads.created_by."type" = 'user'
         AND conversation_threads."type" IN ('message', 'chat', 'phone') THEN 'reply'
    WHEN conversation_threads.created_by."type" = 'customer' THEN 'customer_message'
    ELSE 'other'
  END AS role,
  coalesce(conversation_threads.state, 'published') = 'published'
    AND conversation_threads.status = 'closed' AS closes
FROM conversation_threads;

CREATE OR REPLACE VIEW conversation_metrics AS
WITH counted AS (
  SELECT
    conversation_id,
    min(at_us) FILTER (WHERE role = 'customer_message') AS first_customer_us,
    count(*) FILTER (WHERE role = 'reply') AS replies_sent,
    count(*) FILTER (WHERE role = 'customer_message') AS customer_messages,
    count(*) FILTER (WHERE role = 'note') AS notes,
    min(at_us) FILTER (WHERE closes) AS first_closing_us,
    min(at_us) FILTER (WHERE role IN ('reply', 'customer_message')) AS first_message_us,
    max(at_us) FILTER (WHERE role IN ('reply', 'customer_message')) AS last_message_us
  FROM thread_roles
  GROUP BY conversation_id
),
kept AS (
  SELECT
    conversations.*,
    epoch_us(conversations.created_at) AS created_us,
    CASE WHEN conversations.status = 'closed' THEN epoch_us(conversations.closed_at) END AS closed_us
  FROM conversations
  WHERE conversations.status IS DISTINCT FROM 'spam'
    AND coalesce(conversations.state, 'published') NOT IN ('deleted', 'draft')
),
first_reply AS (
  -- The first reply at or after the first customer message: the response.
  SELECT
    thread_roles.conversation_id,
    min(thread_roles.at_us) AS first_reply_us,
    arg_min(thread_roles.author_id, struct_pack(at_us := thread_roles.at_us, id := thread_roles.thread_id)) AS first_reply_user_id
  FROM thread_roles
  JOIN counted ON thread_roles.conversation_id = counted.conversation_id
  WHERE thread_roles.role = 'reply' AND thread_roles.at_us >= counted.first_customer_us
  GROUP BY thread_roles.conversation_id
),
until_closed AS (
  SELECT thread_roles.conversation_id, count(*) AS replies_to_resolve
  FROM thread_roles
  JOIN kept ON thread_roles.conversation_id = kept.id
  WHERE thread_roles.role = 'reply' AND thread_roles.at_us <= kept.closed_us
  GROUP BY thread_roles.conversation_id
),
reopened AS (
  -- A customer message after the first closing (a closing thread, or the closed time).
  SELECT DISTINCT thread_roles.conversation_id
  FROM thread_roles
  JOIN counted ON thread_roles.conversation_id = counted.conversation_id
  JOIN kept ON thread_roles.conversation_id = kept.id
  WHERE thread_roles.role = 'customer_message'
    AND thread_roles.at_us > least(counted.first_closing_us, kept.closed_us)
)
SELECT
  kept.id AS conversation_id,
  kept.number AS conversation_number,
  kept."type" AS channel,
  kept.mailbox_id,
  mailboxes.name AS mailbox_name,
  kept.status,
  kept.primary_customer.id AS customer_id,
  lower(kept.primary_customer.email) AS customer_email,
  CASE WHEN kept.created_by."type" = 'user' THEN 'user' ELSE 'customer' END AS started_by,
  CASE WHEN kept.created_by."type" = 'user' THEN kept.created_by.id END AS started_by_user_id,
  make_timestamp(kept.created_us) AS created_at_utc,
  make_timestamp(counted.first_customer_us) AS first_customer_message_utc,
  make_timestamp(first_reply.first_reply_us) AS first_reply_utc,
  (first_reply.first_reply_us - counted.first_customer_us) // 1000000 AS first_response_seconds,
  first_reply.first_reply_user_id,
  coalesce(counted.replies_sent, 0) AS replies_sent,
  coalesce(counted.customer_messages, 0) AS customer_messages,
  coalesce(counted.notes, 0) AS notes,
  coalesce(until_closed.replies_to_resolve, 0) > 0 AS resolved,
  make_timestamp(kept.closed_us) AS closed_at_utc,
  CASE WHEN kept.closed_us IS NOT NULL THEN nullif(kept.closed_by, 0) END AS closed_by_user_id,
  CASE WHEN until_closed.replies_to_resolve > 0 THEN (kept.closed_us - kept.created_us) // 1000000 END AS resolution_seconds,
  CASE WHEN until_closed.replies_to_resolve > 0 THEN until_closed.replies_to_resolve END AS replies_to_resolve,
  coalesce(until_closed.replies_to_resolve = 1, false) AS resolved_on_first_reply,
  reopened.conversation_id IS NOT NULL AS reopened,
  (counted.last_message_us - counted.first_message_us) // 1000000 AS duration_seconds,
  coalesce([t.tag FOR t IN kept.tags], []) AS tags
FROM kept
LEFT JOIN counted ON counted.conversation_id = kept.id
LEFT JOIN first_reply ON first_reply.conversation_id = kept.id
LEFT JOIN until_closed ON until_closed.conversation_id = kept.id
LEFT JOIN reopened ON reopened.conversation_id = kept.id
LEFT JOIN mailboxes ON kept.mailbox_id = mailboxes.id;
