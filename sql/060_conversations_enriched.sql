-- Conversations with their mailbox, folder and assigned user, through the documented join keys.
-- One row per conversations row.

CREATE OR REPLACE VIEW conversations_enriched AS
SELECT
  conversations.*,
  make_timestamp(epoch_us(conversations.created_at)) AS created_at_utc,
  mailboxes.name AS mailbox_name,
  mailboxes.email AS mailbox_email,
  mailbox_folders.name AS folder_name,
  mailbox_folders."type" AS folder_type,
  users.id AS assignee_user_id,
  users.first_name AS assignee_first_name,
  users.last_name AS assignee_last_name,
  users.email AS assignee_email
FROM conversations
LEFT JOIN mailboxes ON conversations.mailbox_id = mailboxes.id
LEFT JOIN mailbox_folders ON conversations.folder_id = mailbox_folders.id
LEFT JOIN users ON conversations.assignee.id = users.id;
