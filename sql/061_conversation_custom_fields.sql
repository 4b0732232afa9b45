-- Custom-field values of conversations with their definitions (mailbox_fields): one row per
-- conversation and field value, joined on the field id within the conversation's mailbox
-- (conversations.mailbox_id = mailbox_fields.mailbox_id).

CREATE OR REPLACE VIEW conversation_custom_fields AS
WITH field_values AS (
  SELECT
    conversations.id AS conversation_id,
    conversations.number AS conversation_number,
    conversations.mailbox_id AS mailbox_id,
    unnest(conversations.custom_fields) AS field
  FROM conversations
)
SELECT
  field_values.conversation_id,
  field_values.conversation_number,
  field_values.mailbox_id,
  field_values.field.id AS field_id,
  coalesce(mailbox_fields.name, field_values.field.name) AS field_name,
  mailbox_fields."type" AS field_type,
  mailbox_fields.required AS field_required,
  mailbox_fields."order" AS field_order,
  field_values.field.value AS value,
  field_values.field.text AS text,
  mailbox_fields.options AS field_options
FROM field_values
LEFT JOIN mailbox_fields ON field_values.field.id = mailbox_fields.id
  AND field_values.mailbox_id = mailbox_fields.mailbox_id;
