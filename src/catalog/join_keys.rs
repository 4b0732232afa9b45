//! The join keys between the tables: the 26 the table reference documents, verbatim, and the
//! 6 it implies (team members, happiness ratings). Sides link tables by reference; the store
//! catalogues them in the database so that tools can discover them.

use super::Table;
use super::tables::*;

/// `left.table.left.path = right.table.right.path`; a path may name a struct member (`customer.id`).
#[derive(Debug, Clone, Copy)]
pub struct JoinKey {
    pub left: (&'static Table, &'static str),
    pub right: (&'static Table, &'static str),
    /// Listed in the table reference (the others are implied by it).
    pub documented: bool,
}

impl JoinKey {
    /// The join as SQL analysts write it: `conversations.primary_customer.id = customers.id`.
    pub fn text(&self) -> String {
        format!("{}.{} = {}.{}", self.left.0.name, self.left.1, self.right.0.name, self.right.1)
    }
}

const fn documented(lt: &'static Table, lp: &'static str, rt: &'static Table, rp: &'static str) -> JoinKey {
    JoinKey { left: (lt, lp), right: (rt, rp), documented: true }
}

const fn implied(lt: &'static Table, lp: &'static str, rt: &'static Table, rp: &'static str) -> JoinKey {
    JoinKey { left: (lt, lp), right: (rt, rp), documented: false }
}

pub static JOIN_KEYS: &[JoinKey] = &[
    documented(&CONVERSATION_THREADS, "conversation_id", &CONVERSATIONS, "id"),
    documented(&CONVERSATION_THREADS, "customer.id", &CONVERSATIONS, "primary_customer.id"),
    documented(&CONVERSATION_THREADS, "assigned_to.id", &CONVERSATIONS, "assignee.id"),
    documented(&CONVERSATION_THREADS, "created_by.id", &CONVERSATIONS, "assignee.id"),
    documented(&CONVERSATION_THREADS, "assigned_to.id", &CONVERSATIONS, "closed_by"),
    documented(&CONVERSATION_THREADS, "created_by.id", &CONVERSATIONS, "closed_by"),
    documented(&CONVERSATION_THREADS, "assigned_to.id", &CONVERSATIONS, "created_by.id"),
    documented(&CONVERSATION_THREADS, "created_by.id", &CONVERSATIONS, "created_by.id"),
    documented(&CONVERSATION_THREADS, "customer.id", &CUSTOMERS, "id"),
    documented(&CONVERSATION_THREADS, "assigned_to.id", &USERS, "id"),
    documented(&CONVERSATION_THREADS, "created_by.id", &USERS, "id"),
    documented(&CONVERSATIONS, "primary_customer.id", &CUSTOMERS, "id"),
    documented(&CONVERSATIONS, "folder_id", &MAILBOX_FOLDERS, "id"),
    documented(&CONVERSATIONS, "mailbox_id", &MAILBOX_FOLDERS, "mailbox_id"),
    documented(&CONVERSATIONS, "mailbox_id", &MAILBOX_FIELDS, "mailbox_id"),
    documented(&CONVERSATIONS, "mailbox_id", &MAILBOXES, "id"),
    documented(&CONVERSATIONS, "mailbox_id", &WORKFLOWS, "mailbox_id"),
    documented(&CONVERSATIONS, "assignee.id", &USERS, "id"),
    documented(&CONVERSATIONS, "closed_by", &USERS, "id"),
    documented(&CONVERSATIONS, "created_by.id", &USERS, "id"),
    documented(&MAILBOX_FIELDS, "mailbox_id", &MAILBOX_FOLDERS, "mailbox_id"),
    documented(&MAILBOX_FIELDS, "mailbox_id", &MAILBOXES, "id"),
    documented(&MAILBOX_FIELDS, "mailbox_id", &WORKFLOWS, "mailbox_id"),
    documented(&MAILBOX_FOLDERS, "mailbox_id", &MAILBOXES, "id"),
    documented(&MAILBOX_FOLDERS, "mailbox_id", &WORKFLOWS, "mailbox_id"),
    documented(&MAILBOXES, "id", &WORKFLOWS, "mailbox_id"),
    implied(&TEAM_MEMBERS, "team_id", &TEAMS, "id"),
    implied(&TEAM_MEMBERS, "user_id", &USERS, "id"),
    implied(&HAPPINESS_RATINGS_REPORT, "conversation_id", &CONVERSATIONS, "id"),
    implied(&HAPPINESS_RATINGS_REPORT, "thread_id", &CONVERSATION_THREADS, "id"),
    implied(&HAPPINESS_RATINGS_REPORT, "rating_user_id", &USERS, "id"),
    implied(&HAPPINESS_RATINGS_REPORT, "rating_customer_id", &CUSTOMERS, "id"),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_join_side_names_a_declared_column_or_member() {
        assert_eq!(JOIN_KEYS.iter().filter(|j| j.documented).count(), 26);
        assert_eq!(JOIN_KEYS.len(), 32);
        for join in JOIN_KEYS {
            for (table, path) in [join.left, join.right] {
                let mut parts = path.split('.');
                let column = table.column(parts.next().unwrap()).unwrap_or_else(|| panic!("{}", join.text()));
                if let Some(member) = parts.next() {
                    assert!(column.ty.member(member).is_some(), "{}", join.text());
                }
            }
        }
    }
}
