-- Submission markers that more than one Help Scout conversation carries, from the synced
-- conversations table. The guarantee of the delivery is that this view stays empty; a row means a
-- ticket to merge in Help Scout (and a bug to report).

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
