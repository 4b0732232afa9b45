//! The data contract as the simulator knows it, written from `DATA-CONTRACT.md` and nothing
//! else: the 11 tables with their primary keys and columns, and every join key. The ground truth
//! is built against these declarations, never against the extractor's own, so that a key or a
//! column the extractor gets wrong shows as a difference instead of being shared by both sides.

/// One table of the contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContractTable {
    pub name: &'static str,
    pub primary_key: &'static [&'static str],
    /// The documented columns (metadata columns are the extractor's own and not listed).
    pub columns: &'static [&'static str],
}

/// The 11 tables, in the contract's order.
pub const TABLES: &[ContractTable] = &[
    ContractTable {
        name: "conversation_threads",
        primary_key: &["id"],
        columns: &["action", "assigned_to", "attachments", "bcc", "body", "cc", "conversation_id", "created_at", "created_by", "customer", "id", "opened_at", "saved_reply_id", "source", "state", "status", "to", "type"],
    },
    ContractTable {
        name: "conversations",
        primary_key: &["id"],
        columns: &["assignee", "bcc", "cc", "closed_at", "closed_by", "created_at", "created_by", "custom_fields", "customer_waiting_since", "folder_id", "id", "mailbox_id", "number", "preview", "primary_customer", "source", "state", "status", "subject", "tags", "threads", "type", "updated_at", "user_updated_at"],
    },
    ContractTable {
        name: "customers",
        primary_key: &["id"],
        columns: &["address", "age", "background", "chats", "created_at", "emails", "first_name", "gender", "id", "job_title", "last_name", "location", "organization", "phones", "photo_type", "photo_url", "properties", "social_profiles", "updated_at", "websites"],
    },
    ContractTable {
        name: "happiness_ratings_report",
        primary_key: &["conversation_id", "rating_created_at", "rating_customer_id"],
        columns: &["conversation_id", "rating", "rating_comments", "rating_created_at", "rating_customer_id", "rating_customer_name", "rating_id", "rating_user_id", "rating_user_name", "thread_created_at", "thread_id", "type"],
    },
    ContractTable {
        name: "mailbox_fields",
        primary_key: &["id"],
        columns: &["id", "mailbox_id", "name", "options", "order", "required", "type"],
    },
    ContractTable {
        name: "mailbox_folders",
        primary_key: &["id"],
        columns: &["active_count", "id", "mailbox_id", "name", "total_count", "type", "updated_at", "user_id"],
    },
    ContractTable {
        name: "mailboxes",
        primary_key: &["id"],
        columns: &["created_at", "email", "id", "name", "slug", "updated_at"],
    },
    ContractTable {
        name: "team_members",
        primary_key: &["team_id", "user_id"],
        columns: &["team_id", "user_id"],
    },
    ContractTable {
        name: "teams",
        primary_key: &["id"],
        columns: &["created_at", "id", "initials", "mention", "name", "photo_url", "timezone", "updated_at"],
    },
    ContractTable {
        name: "users",
        primary_key: &["id"],
        columns: &["created_at", "email", "first_name", "id", "last_name", "photo_url", "role", "timezone", "type", "updated_at"],
    },
    ContractTable {
        name: "workflows",
        primary_key: &["id"],
        columns: &["created_at", "id", "mailbox_id", "modified_at", "name", "order", "status", "type"],
    },
];

/// The documented join keys, verbatim (`documented`), and the six the contract names as implied.
pub const JOIN_KEYS: &[(&str, bool)] = &[
    ("conversation_threads.conversation_id = conversations.id", true),
    ("conversation_threads.customer.id = conversations.primary_customer.id", true),
    ("conversation_threads.assigned_to.id = conversations.assignee.id", true),
    ("conversation_threads.created_by.id = conversations.assignee.id", true),
    ("conversation_threads.assigned_to.id = conversations.closed_by", true),
    ("conversation_threads.created_by.id = conversations.closed_by", true),
    ("conversation_threads.assigned_to.id = conversations.created_by.id", true),
    ("conversation_threads.created_by.id = conversations.created_by.id", true),
    ("conversation_threads.customer.id = customers.id", true),
    ("conversation_threads.assigned_to.id = users.id", true),
    ("conversation_threads.created_by.id = users.id", true),
    ("conversations.primary_customer.id = customers.id", true),
    ("conversations.folder_id = mailbox_folders.id", true),
    ("conversations.mailbox_id = mailbox_folders.mailbox_id", true),
    ("conversations.mailbox_id = mailbox_fields.mailbox_id", true),
    ("conversations.mailbox_id = mailboxes.id", true),
    ("conversations.mailbox_id = workflows.mailbox_id", true),
    ("conversations.assignee.id = users.id", true),
    ("conversations.closed_by = users.id", true),
    ("conversations.created_by.id = users.id", true),
    ("mailbox_fields.mailbox_id = mailbox_folders.mailbox_id", true),
    ("mailbox_fields.mailbox_id = mailboxes.id", true),
    ("mailbox_fields.mailbox_id = workflows.mailbox_id", true),
    ("mailbox_folders.mailbox_id = mailboxes.id", true),
    ("mailbox_folders.mailbox_id = workflows.mailbox_id", true),
    ("mailboxes.id = workflows.mailbox_id", true),
    ("team_members.team_id = teams.id", false),
    ("team_members.user_id = users.id", false),
    ("happiness_ratings_report.conversation_id = conversations.id", false),
    ("happiness_ratings_report.thread_id = conversation_threads.id", false),
    ("happiness_ratings_report.rating_user_id = users.id", false),
    ("happiness_ratings_report.rating_customer_id = customers.id", false),
];

/// A table of the contract by name.
pub fn table(name: &str) -> Option<&'static ContractTable> {
    TABLES.iter().find(|t| t.name == name)
}

/// The primary key columns of a table (empty for a name the contract does not know).
pub fn primary_key(table_name: &str) -> &'static [&'static str] {
    table(table_name).map_or(&[], |t| t.primary_key)
}

/// The documented columns of a table (empty for a name the contract does not know).
pub fn contract_columns(table_name: &str) -> &'static [&'static str] {
    table(table_name).map_or(&[], |t| t.columns)
}

/// Every join key as (left table, left path, right table, right path); paths use dots for
/// nested members.
pub fn joins() -> Vec<(&'static str, &'static str, &'static str, &'static str)> {
    let split = |side: &'static str| side.split_once('.').expect("table.column");
    JOIN_KEYS
        .iter()
        .map(|(join, _)| {
            let (left, right) = join.split_once(" = ").expect("left = right");
            let ((lt, lp), (rt, rp)) = (split(left), split(right));
            (lt, lp, rt, rp)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eleven_tables_with_keys_among_their_columns_and_joins_between_them() {
        assert_eq!(TABLES.len(), 11);
        for t in TABLES {
            assert!(t.primary_key.iter().all(|k| t.columns.contains(k)), "{}", t.name);
        }
        assert_eq!(JOIN_KEYS.iter().filter(|(_, documented)| *documented).count(), 26);
        for (lt, lp, rt, rp) in joins() {
            for (t, p) in [(lt, lp), (rt, rp)] {
                let column = p.split('.').next().unwrap();
                assert!(contract_columns(t).contains(&column), "{t}.{p}");
            }
        }
    }
}
