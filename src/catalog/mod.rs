//! The catalog: the 11 documented tables, each declared once as data (`tables`), their join
//! keys, and the integration log's vocabulary (`log`). Everything else is derived from these
//! declarations: Arrow schemas, DDL, the extract plan, the README's table catalog. Children
//! hang off their parent by reference (`Origin::PerParent { parent: &MAILBOXES }`) and are found
//! with `Table::children`; nothing below looks a table up by name except to read user input.

pub mod join_keys;
pub mod log;
pub mod outbound;
pub mod tables;
pub mod types;

use std::hash::{Hash, Hasher};

pub use join_keys::{JOIN_KEYS, JoinKey};
pub use log::EventType;
pub use tables::*;
pub use types::{ColumnType, SchemaColumn, StructField};

use types::ColumnType::{Text, Timestamp};

/// Where a column's value comes from in the API record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The API key spelled as the camelCase of the column name (`primary_customer` ← `primaryCustomer`).
    Api,
    /// Another dotted path in the API record (`_embedded.emails`, `threadid`).
    Path(&'static str),
    /// The id of the parent record the row was listed under (the API omits it).
    ParentId,
    /// The later of two timestamps (dotted paths); conversations' derived `updated_at`.
    LaterOf(&'static str, &'static str),
    /// A label looked up from an integer code at a path (the happiness `rating`).
    Label(&'static str, &'static [(i64, &'static str)]),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Column {
    pub name: &'static str,
    pub ty: ColumnType,
    pub source: Source,
}

/// How a table's list is paged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Paging {
    /// HAL+JSON: `_embedded.{list_key}`, `page{number,totalPages,totalElements}`, `_links.next`.
    Hal,
    /// The reports' own JSON: `{results, page, pages, count}`.
    Report,
}

/// Where a table's rows are listed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// A top-level list endpoint.
    List,
    /// One list per record of the parent table (`{parent_id}` in the path).
    PerParent { parent: &'static Table },
    /// Embedded in each parent record under `_embedded.{list_key}`, refetched from the table's
    /// own path where the embedded list may be incomplete.
    Embedded { parent: &'static Table, refetch: Refetch },
}

/// When embedded child rows must be refetched from their own endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refetch {
    /// Parent field holding the full child count (refetch when fewer are embedded).
    pub count_field: &'static str,
    /// Parent field and value for which the embedded list is always truncated.
    pub always_when: (&'static str, &'static str),
}

/// The replication the table reference documents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replication {
    /// Key-based incremental on this column.
    Incremental { cursor: &'static str },
    FullTable,
}

/// What a sync actually does to bring a table up to date (derived from the declaration).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    /// Listed since a cursor on the server's clock (`modifiedSince`), merged by primary key.
    ModifiedSince,
    /// Read whole every run; replaces the table's rows.
    WholeList,
    /// A report read by time window since the previous window (less the overlap), merged; read
    /// whole now and then.
    ReportWindow,
    /// One list per parent record; replaces that parent's rows.
    PerParent,
    /// Comes inside each changed parent record (refetched where incomplete); replaces that
    /// parent's rows.
    Embedded,
}

impl Strategy {
    /// In words, for `status`, the run report and the README.
    pub fn describe(self) -> &'static str {
        match self {
            Strategy::ModifiedSince => "modified since the last run",
            Strategy::WholeList => "whole list, every run",
            Strategy::ReportWindow => "window since the last read",
            Strategy::PerParent => "whole list per parent",
            Strategy::Embedded => "with each changed parent",
        }
    }
}

/// The request that lists a table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Request {
    /// Path below the API base; `{parent_id}` is replaced for per-parent and embedded tables.
    pub path: &'static str,
    /// Fixed query parameters.
    pub params: &'static [(&'static str, &'static str)],
    /// Query parameter that filters on the server-side modified time, where the API has one.
    pub modified_since: Option<&'static str>,
    /// A required time window, for reports.
    pub window: Option<Window>,
}

/// A report's required time window: its two query parameters, and the column of the rows
/// whose time the window selects (an immutable time, so spans of it can be counted).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub start: &'static str,
    pub end: &'static str,
    pub column: &'static str,
}

/// A value read from a row for the integration log: a column, a member of a struct column, or
/// a member of the first item of a list column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Column(&'static str),
    Member(&'static str, &'static str),
    FirstItemMember(&'static str, &'static str),
}

impl Field {
    /// The column the value lives in.
    pub fn column(self) -> &'static str {
        match self {
            Field::Column(c) | Field::Member(c, _) | Field::FirstItemMember(c, _) => c,
        }
    }
}

/// One part of an event's details: `label: value` (several columns joined by a space).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Detail {
    pub label: &'static str,
    pub columns: &'static [&'static str],
}

/// A data problem worth a Failed event although the row is stored as received.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// Every item of a list column carries a well-formed email address in `member`.
    ValidEmails { list: &'static str, member: &'static str },
}

/// The integration log's event for each row a table receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RowEvents {
    /// When the primary key is new to the table.
    pub created: EventType,
    /// When it was already there and something changed.
    pub updated: EventType,
    pub customer_email: Field,
    /// The conversation's id and number columns, for tables whose rows are conversations.
    pub conversation: Option<(&'static str, &'static str)>,
    /// What was transferred, in words.
    pub details: &'static [Detail],
    pub check: Option<Check>,
}

/// Removed records vanish from lists: they are noticed by the list's size (or by their children
/// moving to another parent) and confirmed one by one at the table's `record_path`
/// (301 = merged into the `Location`, 404 = deleted), then removed with their children.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Removals {
    /// List parameters the removal check leaves out (embedded data, and the sort: counts and
    /// id lists need no order, and the API's default one is by creation).
    pub scan_omits: &'static [&'static str],
    /// Where each removed record is remembered: id, reason, merged into, when, run.
    pub tombstones: &'static str,
    pub merged: EventType,
    pub deleted: EventType,
    /// How the list is counted by spans of an immutable time: the held column and the
    /// search field of `query=(field:[a TO b])`.
    pub counted_by: (&'static str, &'static str),
}

/// What became of a record that vanished from its list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Removal {
    /// Merged into another record (its id, where the API said).
    Merged { into: Option<i64> },
    Deleted,
}

#[derive(Debug)]
pub struct Table {
    pub name: &'static str,
    pub description: &'static str,
    pub origin: Origin,
    pub request: Request,
    /// Key of the list under `_embedded` (HAL), or `results` for reports.
    pub list_key: &'static str,
    pub paging: Paging,
    pub primary_key: &'static [&'static str],
    pub replication: Replication,
    /// Column linking a child row to its parent's `id` (per-parent and embedded tables).
    pub parent_key: Option<&'static str>,
    /// Timestamp column whose month partitions the lake; `None`: one file.
    pub partition_month_of: Option<&'static str>,
    /// One record's endpoint (`{id}`), for retries and for confirming removals.
    pub record_path: Option<&'static str>,
    /// One record in words, for messages ("mailbox").
    pub noun: &'static str,
    pub row_events: Option<RowEvents>,
    pub removals: Option<Removals>,
    pub columns: &'static [Column],
}

/// Tables are declared once, as statics: a table is the same table wherever it is referred to.
impl PartialEq for Table {
    fn eq(&self, other: &Self) -> bool {
        std::ptr::eq(self, other)
    }
}

impl Eq for Table {}

impl Hash for Table {
    fn hash<H: Hasher>(&self, state: &mut H) {
        std::ptr::hash(self, state)
    }
}

impl Table {
    /// The parent table, for per-parent and embedded tables.
    pub fn parent(&self) -> Option<&'static Table> {
        match self.origin {
            Origin::List => None,
            Origin::PerParent { parent } | Origin::Embedded { parent, .. } => Some(parent),
        }
    }

    /// Tables whose rows hang off this table's records.
    pub fn children(&self) -> impl Iterator<Item = &'static Table> + '_ {
        ALL.iter().copied().filter(move |c| c.parent() == Some(self))
    }

    /// Children that arrive inside this table's records.
    pub fn embedded_children(&self) -> impl Iterator<Item = &'static Table> + '_ {
        self.children().filter(|c| matches!(c.origin, Origin::Embedded { .. }))
    }

    /// Columns of other tables that hold this table's id, other than its children's parent key
    /// (`happiness_ratings_report.conversation_id`), from the join keys: when a record is
    /// merged they are repointed, when it is deleted their rows go.
    pub fn referrers(&'static self) -> impl Iterator<Item = (&'static Table, &'static str)> {
        JOIN_KEYS
            .iter()
            .filter(move |j| j.right == (self, "id") && !j.left.1.contains('.') && !(j.left.0.parent() == Some(self) && j.left.0.parent_key == Some(j.left.1)))
            .map(|j| j.left)
    }

    /// Whether the table's rows are conversations (their events carry the conversation's id).
    pub fn rows_are_conversations(&self) -> bool {
        self.row_events.is_some_and(|ev| ev.conversation.is_some())
    }

    pub fn column(&self, name: &str) -> Option<&'static Column> {
        self.columns.iter().find(|c| c.name == name)
    }

    pub fn strategy(&self) -> Strategy {
        match self.origin {
            Origin::Embedded { .. } => Strategy::Embedded,
            Origin::PerParent { .. } => Strategy::PerParent,
            Origin::List if self.request.modified_since.is_some() => Strategy::ModifiedSince,
            Origin::List if self.request.window.is_some() => Strategy::ReportWindow,
            Origin::List => Strategy::WholeList,
        }
    }

    /// The column the table's documented incremental replication follows.
    pub fn cursor(&self) -> Option<&'static str> {
        match self.replication {
            Replication::Incremental { cursor } => Some(cursor),
            Replication::FullTable => None,
        }
    }
}

/// A table by its name, for names users and stored data give (never for links between tables).
pub fn by_name(name: &str) -> Option<&'static Table> {
    ALL.iter().copied().find(|t| t.name == name)
}

/// Metadata columns appended to every table (underscore-prefixed, per the contract).
pub const META_EXTRACTED_AT: &str = "_extracted_at";
pub const META_RUN_ID: &str = "_run_id";
/// API fields the contract does not know yet, as a JSON object (never dropped).
pub const META_EXTRA: &str = "_extra";

pub fn meta_columns() -> [SchemaColumn; 3] {
    [
        SchemaColumn { name: META_EXTRACTED_AT.into(), ty: Timestamp, nullable: true },
        SchemaColumn { name: META_RUN_ID.into(), ty: Text, nullable: true },
        SchemaColumn { name: META_EXTRA.into(), ty: Text, nullable: true },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn a_conversations_referrers_are_the_ratings_not_its_threads() {
        let referrers: Vec<(&str, &str)> = CONVERSATIONS.referrers().map(|(t, c)| (t.name, c)).collect();
        assert_eq!(referrers, [("happiness_ratings_report", "conversation_id")]);
        assert_eq!(USERS.referrers().count(), 3, "only plain columns: closed_by, user_id, rating_user_id");
    }

    #[test]
    fn eleven_uniquely_named_tables() {
        let names: HashSet<_> = ALL.iter().map(|t| t.name).collect();
        assert_eq!(names.len(), 11);
        assert!(ALL.iter().all(|t| by_name(t.name) == Some(*t)));
    }

    #[test]
    fn keys_cursors_partitions_and_log_fields_name_real_columns() {
        for t in ALL {
            for k in t.primary_key {
                assert!(t.column(k).is_some(), "{}: primary key {k}", t.name);
            }
            if let Some(cursor) = t.cursor() {
                assert!(t.column(cursor).is_some(), "{}: cursor {cursor}", t.name);
            }
            if let Some(p) = t.partition_month_of {
                assert_eq!(t.column(p).map(|c| c.ty), Some(Timestamp), "{}", t.name);
            }
            if let Some(pk) = t.parent_key {
                assert_eq!(t.column(pk).map(|c| c.source), Some(Source::ParentId), "{}", t.name);
            }
            assert_eq!(t.parent().is_some(), t.parent_key.is_some(), "{}", t.name);
            if let Some(ev) = t.row_events {
                let mut read: Vec<&str> = vec![ev.customer_email.column()];
                read.extend(ev.conversation.iter().flat_map(|(id, number)| [*id, *number]));
                read.extend(ev.details.iter().flat_map(|d| d.columns.iter().copied()));
                for c in read {
                    assert!(t.column(c).is_some(), "{}: log field {c}", t.name);
                }
            }
            if t.removals.is_some() {
                assert!(t.record_path.is_some(), "{}: removals are confirmed one by one", t.name);
            }
        }
    }

    #[test]
    fn parents_come_before_their_children_and_children_are_found_by_reference() {
        for (i, t) in ALL.iter().enumerate() {
            if let Some(p) = t.parent() {
                let pi = ALL.iter().position(|x| *x == p).expect("parent declared");
                assert!(pi < i, "{} before {}", p.name, t.name);
                assert!(p.children().any(|c| c == *t));
            }
        }
        let embedded: Vec<&str> = CONVERSATIONS.embedded_children().map(|c| c.name).collect();
        assert_eq!(embedded, ["conversation_threads"]);
        assert_eq!(MAILBOXES.children().count(), 2);
        assert_eq!(MAILBOXES.embedded_children().count(), 0);
    }

    #[test]
    fn strategies_follow_what_the_api_can_filter() {
        assert_eq!(CONVERSATIONS.strategy(), Strategy::ModifiedSince);
        assert_eq!(CUSTOMERS.strategy(), Strategy::ModifiedSince);
        assert_eq!(CONVERSATION_THREADS.strategy(), Strategy::Embedded);
        assert_eq!(HAPPINESS_RATINGS_REPORT.strategy(), Strategy::ReportWindow);
        for t in [&MAILBOXES, &USERS, &TEAMS, &WORKFLOWS] {
            assert_eq!(t.strategy(), Strategy::WholeList, "{}: the API cannot filter it by time", t.name);
        }
        for t in [&MAILBOX_FIELDS, &MAILBOX_FOLDERS, &TEAM_MEMBERS] {
            assert_eq!(t.strategy(), Strategy::PerParent, "{}", t.name);
        }
    }
}
