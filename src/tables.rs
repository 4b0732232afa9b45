//! The 11 documented tables, each declared once as data: where its rows come from, how they are
//! paged, keyed, replicated and partitioned, and their columns. The Arrow schema, the DuckDB DDL,
//! the extract plan and the README's table catalog are all derived from these declarations.

use crate::schema::{ColumnType, ColumnType::*, SchemaColumn, field};

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

const fn col(name: &'static str, ty: ColumnType) -> Column {
    Column { name, ty, source: Source::Api }
}

const fn from(name: &'static str, ty: ColumnType, path: &'static str) -> Column {
    Column { name, ty, source: Source::Path(path) }
}

const fn parent(name: &'static str) -> Column {
    Column { name, ty: Int, source: Source::ParentId }
}

/// How a table's list is paged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Paging {
    /// HAL+JSON: `_embedded.{list_key}`, `page{number,totalPages}`, `_links.next`.
    Hal,
    /// The reports' own JSON: `{results, page, pages}`.
    Report,
}

/// Where a table's rows are listed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// A top-level list endpoint.
    List,
    /// One list per record of the parent table (`{parent_id}` in the path).
    PerParent { parent: &'static str },
    /// Embedded in each parent record under `_embedded.{list_key}`, refetched from `path` where
    /// the embedded list may be incomplete.
    Embedded { parent: &'static str, refetch: Refetch },
}

/// When embedded child rows must be refetched from their own endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refetch {
    /// Parent field holding the full child count (refetch when fewer are embedded).
    pub count_field: &'static str,
    /// Parent field and value for which the embedded list is always truncated.
    pub always_when: (&'static str, &'static str),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replication {
    /// Documented as key-based incremental on this column.
    Incremental { cursor: &'static str },
    /// Documented as full table.
    FullTable,
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
    /// Query parameters of a required time window (start, end), for reports.
    pub window: Option<(&'static str, &'static str)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Table {
    pub name: &'static str,
    pub description: &'static str,
    pub origin: Origin,
    pub request: Request,
    /// Key of the list under `_embedded` (HAL) — or `results` for reports.
    pub list_key: &'static str,
    pub paging: Paging,
    pub primary_key: &'static [&'static str],
    pub replication: Replication,
    /// Column linking a child row to its parent's `id` (per-parent and embedded tables).
    pub parent_key: Option<&'static str>,
    /// Timestamp column whose month partitions the Parquet folder; `None`: one file.
    pub partition_month_of: Option<&'static str>,
    /// One record's endpoint (`{id}`), for retries and for confirming removals.
    pub record_path: Option<&'static str>,
    /// Integration-log events written for each row this table receives.
    pub row_events: Option<RowEvents>,
    /// How rows that vanish from the API are noticed (incremental lists only).
    pub removals: Option<Removals>,
    pub columns: &'static [Column],
}

/// The integration log's per-row events: SQL expressions over the staged row (`s`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RowEvents {
    /// Event type when the primary key is new to the table.
    pub created: &'static str,
    /// Event type when it was already there.
    pub updated: &'static str,
    pub customer_email: &'static str,
    pub conversation_id: Option<&'static str>,
    pub conversation_number: Option<&'static str>,
    /// What was transferred, in words.
    pub details: &'static str,
    /// A data problem worth a Failed event although the row is stored as received:
    /// (SQL condition, SQL error message).
    pub problem: Option<(&'static str, &'static str)>,
}

/// Removed records vanish from lists: they are noticed by the list's size (or by their children
/// moving to another parent) and confirmed one by one at the table's `record_path`
/// (301 = merged into the `Location`, 404 = deleted).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Removals {
    /// List parameters an id scan leaves out (they only add embedded data).
    pub scan_omits: &'static [&'static str],
}

impl Table {
    /// The parent table, for per-parent and embedded tables.
    pub fn parent(&self) -> Option<&'static str> {
        match self.origin {
            Origin::List => None,
            Origin::PerParent { parent } | Origin::Embedded { parent, .. } => Some(parent),
        }
    }

    pub fn column(&self, name: &str) -> Option<&'static Column> {
        self.columns.iter().find(|c| c.name == name)
    }

    /// Whether the server can list only records modified since a time.
    pub fn server_incremental(&self) -> bool {
        self.request.modified_since.is_some()
    }
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

// ---- shared column types ------------------------------------------------------------------

/// Person object P.
const PERSON: ColumnType = Struct(&[
    field("id", Int),
    field("type", Text),
    field("first", Text),
    field("last", Text),
    field("email", Text),
    field("photo_url", Text),
]);
const SOURCE: ColumnType = Struct(&[field("type", Text), field("via", Text)]);
const TEXTS: ColumnType = List(&Text);
const CONTACTS: ColumnType =
    List(&Struct(&[field("id", Int), field("value", Text), field("type", Text)]));

const NO_PARAMS: &[(&str, &str)] = &[];

const fn list_request(path: &'static str) -> Request {
    Request { path, params: NO_PARAMS, modified_since: None, window: None }
}

// ---- the 11 tables --------------------------------------------------------------------------

pub const CONVERSATIONS: Table = Table {
    name: "conversations",
    description: "Conversations of every status (active, pending, closed, spam) in every mailbox.",
    origin: Origin::List,
    request: Request {
        path: "/conversations",
        // Newest-modified first: rows modified while the list is paged move to the pages
        // already read, so offset paging repeats rows but never skips one.
        params: &[
            ("status", "all"),
            ("sortField", "modifiedAt"),
            ("sortOrder", "desc"),
            ("embed", "threads"),
        ],
        modified_since: Some("modifiedSince"),
        window: None,
    },
    list_key: "conversations",
    paging: Paging::Hal,
    primary_key: &["id"],
    replication: Replication::Incremental { cursor: "updated_at" },
    parent_key: None,
    partition_month_of: Some("created_at"),
    record_path: Some("/conversations/{id}"),
    row_events: Some(RowEvents {
        created: "Ticket Created",
        updated: "Conversation Updated",
        customer_email: "s.primary_customer.email",
        conversation_id: Some("s.id"),
        conversation_number: Some("s.number"),
        details: "'Subject: ' || coalesce(s.subject, '') || '; status: ' || coalesce(s.status, '') || '; threads: ' || coalesce(s.threads::VARCHAR, '0')",
        problem: None,
    }),
    removals: Some(Removals { scan_omits: &["embed"] }),
    columns: &[
        col("assignee", PERSON),
        col("bcc", TEXTS),
        col("cc", TEXTS),
        col("closed_at", Timestamp),
        col("closed_by", Int),
        col("created_at", Timestamp),
        col("created_by", PERSON),
        col("custom_fields", List(&Struct(&[
            field("id", Int),
            field("name", Text),
            field("value", Text),
            field("text", Text),
        ]))),
        col("customer_waiting_since", Struct(&[
            field("time", Timestamp),
            field("friendly", Text),
            field("latest_reply_from", Text),
        ])),
        col("folder_id", Int),
        col("id", Int),
        col("mailbox_id", Int),
        col("number", Int),
        col("preview", Text),
        col("primary_customer", PERSON),
        col("source", SOURCE),
        col("state", Text),
        col("status", Text),
        col("subject", Text),
        col("tags", List(&Struct(&[field("id", Int), field("color", Text), field("tag", Text)]))),
        col("threads", Int),
        col("type", Text),
        Column {
            name: "updated_at",
            ty: Timestamp,
            source: Source::LaterOf("userUpdatedAt", "customerWaitingSince.time"),
        },
        col("user_updated_at", Timestamp),
    ],
};

pub const CONVERSATION_THREADS: Table = Table {
    name: "conversation_threads",
    description: "The threads (messages, notes, line items, chats, …) that make up conversations.",
    origin: Origin::Embedded {
        parent: "conversations",
        refetch: Refetch { count_field: "threads", always_when: ("type", "chat") },
    },
    request: list_request("/conversations/{parent_id}/threads"),
    list_key: "threads",
    paging: Paging::Hal,
    primary_key: &["id"],
    replication: Replication::Incremental { cursor: "created_at" },
    parent_key: Some("conversation_id"),
    partition_month_of: Some("created_at"),
    record_path: None,
    row_events: None,
    removals: None,
    columns: &[
        col("action", Struct(&[field("type", Text), field("text", Text)])),
        col("assigned_to", PERSON),
        from("attachments", List(&Struct(&[
            field("id", Int),
            field("filename", Text),
            field("mime_type", Text),
            field("width", Int),
            field("height", Int),
            field("size", Int),
        ])), "_embedded.attachments"),
        col("bcc", TEXTS),
        col("body", Text),
        col("cc", TEXTS),
        parent("conversation_id"),
        col("created_at", Timestamp),
        col("created_by", PERSON),
        col("customer", PERSON),
        col("id", Int),
        col("opened_at", Timestamp),
        col("saved_reply_id", Int),
        col("source", SOURCE),
        col("state", Text),
        col("status", Text),
        col("to", TEXTS),
        col("type", Text),
    ],
};

pub const CUSTOMERS: Table = Table {
    name: "customers",
    description: "Customers, with their emails, phones, chats, social profiles, websites, properties and address.",
    origin: Origin::List,
    request: Request {
        path: "/customers",
        params: &[("sortField", "modifiedAt"), ("sortOrder", "desc")],
        modified_since: Some("modifiedSince"),
        window: None,
    },
    list_key: "customers",
    paging: Paging::Hal,
    primary_key: &["id"],
    replication: Replication::Incremental { cursor: "updated_at" },
    parent_key: None,
    partition_month_of: Some("created_at"),
    record_path: Some("/customers/{id}"),
    row_events: Some(RowEvents {
        created: "Customer Synced",
        updated: "Customer Updated",
        customer_email: "s.emails[1].value",
        conversation_id: None,
        conversation_number: None,
        details: "'Customer: ' || trim(coalesce(s.first_name, '') || ' ' || coalesce(s.last_name, '')) ",
        problem: Some((
            "len(list_filter(coalesce(s.emails, []), lambda e: NOT regexp_full_match(coalesce(e.value, ''), '[^@\\s]+@[^@\\s]+\\.[^@\\s]+'))) > 0",
            "'Invalid email address: ' || list_filter(s.emails, lambda e: NOT regexp_full_match(coalesce(e.value, ''), '[^@\\s]+@[^@\\s]+\\.[^@\\s]+'))[1].value || ' (the customer is stored as received; correct the address in Help Scout)'",
        )),
    }),
    removals: None,
    columns: &[
        from("address", Struct(&[
            field("city", Text),
            field("state", Text),
            field("postal_code", Text),
            field("country", Text),
            field("lines", TEXTS),
        ]), "_embedded.address"),
        col("age", Text),
        col("background", Text),
        from("chats", CONTACTS, "_embedded.chats"),
        col("created_at", Timestamp),
        from("emails", CONTACTS, "_embedded.emails"),
        col("first_name", Text),
        col("gender", Text),
        col("id", Int),
        col("job_title", Text),
        col("last_name", Text),
        col("location", Text),
        col("organization", Text),
        from("phones", CONTACTS, "_embedded.phones"),
        col("photo_type", Text),
        col("photo_url", Text),
        from("properties", List(&Struct(&[
            field("type", Text),
            field("slug", Text),
            field("name", Text),
            field("value", Text),
            field("text", Text),
        ])), "_embedded.properties"),
        from("social_profiles", CONTACTS, "_embedded.social_profiles"),
        col("updated_at", Timestamp),
        from("websites", List(&Struct(&[field("id", Int), field("value", Text)])), "_embedded.websites"),
    ],
};

/// `ratingId` encodes the rating value.
const RATINGS: &[(i64, &str)] = &[(1, "great"), (2, "okay"), (3, "not_good")];

pub const HAPPINESS_RATINGS_REPORT: Table = Table {
    name: "happiness_ratings_report",
    description: "Happiness ratings customers gave to replies, from the ratings report (Plus and Pro plans).",
    origin: Origin::List,
    request: Request {
        path: "/reports/happiness/ratings",
        params: NO_PARAMS,
        modified_since: None,
        window: Some(("start", "end")),
    },
    list_key: "results",
    paging: Paging::Report,
    primary_key: &["conversation_id", "rating_created_at", "rating_customer_id"],
    replication: Replication::FullTable,
    parent_key: None,
    partition_month_of: Some("rating_created_at"),
    record_path: None,
    row_events: None,
    removals: None,
    columns: &[
        from("conversation_id", Int, "id"),
        col("rating_comments", Text),
        col("rating_created_at", Timestamp),
        col("rating_customer_id", Int),
        col("rating_customer_name", Text),
        col("rating_id", Int),
        col("rating_user_id", Int),
        col("rating_user_name", Text),
        col("thread_created_at", Timestamp),
        from("thread_id", Int, "threadid"),
        col("type", Text),
        Column { name: "rating", ty: Text, source: Source::Label("ratingId", RATINGS) },
    ],
};

pub const MAILBOX_FIELDS: Table = Table {
    name: "mailbox_fields",
    description: "Custom fields defined on each mailbox, with their options.",
    origin: Origin::PerParent { parent: "mailboxes" },
    request: list_request("/mailboxes/{parent_id}/fields"),
    list_key: "fields",
    paging: Paging::Hal,
    primary_key: &["id"],
    replication: Replication::FullTable,
    parent_key: Some("mailbox_id"),
    partition_month_of: None,
    record_path: None,
    row_events: None,
    removals: None,
    columns: &[
        col("id", Int),
        parent("mailbox_id"),
        col("name", Text),
        col("options", List(&Struct(&[field("id", Int), field("order", Int), field("label", Text)]))),
        col("order", Int),
        col("required", Bool),
        col("type", Text),
    ],
};

pub const MAILBOX_FOLDERS: Table = Table {
    name: "mailbox_folders",
    description: "Folders of each mailbox, with their conversation counts.",
    origin: Origin::PerParent { parent: "mailboxes" },
    request: list_request("/mailboxes/{parent_id}/folders"),
    list_key: "folders",
    paging: Paging::Hal,
    primary_key: &["id"],
    replication: Replication::Incremental { cursor: "updated_at" },
    parent_key: Some("mailbox_id"),
    partition_month_of: None,
    record_path: None,
    row_events: None,
    removals: None,
    columns: &[
        col("active_count", Int),
        col("id", Int),
        parent("mailbox_id"),
        col("name", Text),
        col("total_count", Int),
        col("type", Text),
        col("updated_at", Timestamp),
        col("user_id", Int),
    ],
};

pub const MAILBOXES: Table = Table {
    name: "mailboxes",
    description: "The account's mailboxes.",
    origin: Origin::List,
    request: list_request("/mailboxes"),
    list_key: "mailboxes",
    paging: Paging::Hal,
    primary_key: &["id"],
    replication: Replication::Incremental { cursor: "updated_at" },
    parent_key: None,
    partition_month_of: None,
    record_path: None,
    row_events: None,
    removals: None,
    columns: &[
        col("created_at", Timestamp),
        col("email", Text),
        col("id", Int),
        col("name", Text),
        col("slug", Text),
        col("updated_at", Timestamp),
    ],
};

pub const TEAM_MEMBERS: Table = Table {
    name: "team_members",
    description: "Which users belong to which team.",
    origin: Origin::PerParent { parent: "teams" },
    request: list_request("/teams/{parent_id}/members"),
    list_key: "users",
    paging: Paging::Hal,
    primary_key: &["team_id", "user_id"],
    replication: Replication::FullTable,
    parent_key: Some("team_id"),
    partition_month_of: None,
    record_path: None,
    row_events: None,
    removals: None,
    columns: &[parent("team_id"), from("user_id", Int, "id")],
};

pub const TEAMS: Table = Table {
    name: "teams",
    description: "The account's teams.",
    origin: Origin::List,
    request: list_request("/teams"),
    list_key: "teams",
    paging: Paging::Hal,
    primary_key: &["id"],
    replication: Replication::Incremental { cursor: "updated_at" },
    parent_key: None,
    partition_month_of: None,
    record_path: None,
    row_events: None,
    removals: None,
    columns: &[
        col("created_at", Timestamp),
        col("id", Int),
        col("initials", Text),
        col("mention", Text),
        col("name", Text),
        col("photo_url", Text),
        col("timezone", Text),
        col("updated_at", Timestamp),
    ],
};

pub const USERS: Table = Table {
    name: "users",
    description: "The account's users (agents).",
    origin: Origin::List,
    request: list_request("/users"),
    list_key: "users",
    paging: Paging::Hal,
    primary_key: &["id"],
    replication: Replication::Incremental { cursor: "updated_at" },
    parent_key: None,
    partition_month_of: None,
    record_path: None,
    row_events: None,
    removals: None,
    columns: &[
        col("created_at", Timestamp),
        col("email", Text),
        col("first_name", Text),
        col("id", Int),
        col("last_name", Text),
        col("photo_url", Text),
        col("role", Text),
        col("timezone", Text),
        col("type", Text),
        col("updated_at", Timestamp),
    ],
};

pub const WORKFLOWS: Table = Table {
    name: "workflows",
    description: "Manual and automatic workflows of each mailbox.",
    origin: Origin::List,
    request: list_request("/workflows"),
    list_key: "workflows",
    paging: Paging::Hal,
    primary_key: &["id"],
    replication: Replication::Incremental { cursor: "modified_at" },
    parent_key: None,
    partition_month_of: None,
    record_path: None,
    row_events: None,
    removals: None,
    columns: &[
        col("created_at", Timestamp),
        col("id", Int),
        col("mailbox_id", Int),
        col("modified_at", Timestamp),
        col("name", Text),
        col("order", Int),
        col("status", Text),
        col("type", Text),
    ],
};

/// Every table, parents before their children.
pub const ALL: &[&Table] = &[
    &MAILBOXES,
    &MAILBOX_FIELDS,
    &MAILBOX_FOLDERS,
    &USERS,
    &TEAMS,
    &TEAM_MEMBERS,
    &WORKFLOWS,
    &CUSTOMERS,
    &CONVERSATIONS,
    &CONVERSATION_THREADS,
    &HAPPINESS_RATINGS_REPORT,
];

pub fn by_name(name: &str) -> Option<&'static Table> {
    ALL.iter().copied().find(|t| t.name == name)
}

/// The documented join keys, verbatim, plus the implied ones. Catalogued in the database.
pub const JOIN_KEYS: &[&str] = &[
    "conversation_threads.conversation_id = conversations.id",
    "conversation_threads.customer.id = conversations.primary_customer.id",
    "conversation_threads.assigned_to.id = conversations.assignee.id",
    "conversation_threads.created_by.id = conversations.assignee.id",
    "conversation_threads.assigned_to.id = conversations.closed_by",
    "conversation_threads.created_by.id = conversations.closed_by",
    "conversation_threads.assigned_to.id = conversations.created_by.id",
    "conversation_threads.created_by.id = conversations.created_by.id",
    "conversation_threads.customer.id = customers.id",
    "conversation_threads.assigned_to.id = users.id",
    "conversation_threads.created_by.id = users.id",
    "conversations.primary_customer.id = customers.id",
    "conversations.folder_id = mailbox_folders.id",
    "conversations.mailbox_id = mailbox_folders.mailbox_id",
    "conversations.mailbox_id = mailbox_fields.mailbox_id",
    "conversations.mailbox_id = mailboxes.id",
    "conversations.mailbox_id = workflows.mailbox_id",
    "conversations.assignee.id = users.id",
    "conversations.closed_by = users.id",
    "conversations.created_by.id = users.id",
    "mailbox_fields.mailbox_id = mailbox_folders.mailbox_id",
    "mailbox_fields.mailbox_id = mailboxes.id",
    "mailbox_fields.mailbox_id = workflows.mailbox_id",
    "mailbox_folders.mailbox_id = mailboxes.id",
    "mailbox_folders.mailbox_id = workflows.mailbox_id",
    "mailboxes.id = workflows.mailbox_id",
    "team_members.team_id = teams.id",
    "team_members.user_id = users.id",
    "happiness_ratings_report.conversation_id = conversations.id",
    "happiness_ratings_report.thread_id = conversation_threads.id",
    "happiness_ratings_report.rating_user_id = users.id",
    "happiness_ratings_report.rating_customer_id = customers.id",
];

/// Number of documented (not implied) join keys at the head of `JOIN_KEYS`.
pub const DOCUMENTED_JOIN_KEYS: usize = 26;

/// The tables on the two sides of a join key.
pub fn join_tables(join: &str) -> (&str, &str) {
    fn table(side: &str) -> &str {
        side.split('.').next().unwrap_or(side)
    }
    let (left, right) = join.split_once(" = ").unwrap_or((join, ""));
    (table(left), table(right))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn eleven_uniquely_named_tables() {
        let names: HashSet<_> = ALL.iter().map(|t| t.name).collect();
        assert_eq!(names.len(), 11);
    }

    #[test]
    fn keys_cursors_and_partitions_name_real_columns() {
        for t in ALL {
            for k in t.primary_key {
                assert!(t.column(k).is_some(), "{}: primary key {k}", t.name);
            }
            if let Replication::Incremental { cursor } = t.replication {
                assert!(t.column(cursor).is_some(), "{}: cursor {cursor}", t.name);
            }
            if let Some(p) = t.partition_month_of {
                assert_eq!(t.column(p).map(|c| c.ty), Some(Timestamp), "{}", t.name);
            }
            if let Some(pk) = t.parent_key {
                assert_eq!(t.column(pk).map(|c| c.source), Some(Source::ParentId), "{}", t.name);
            }
            assert_eq!(t.parent().is_some(), t.parent_key.is_some(), "{}", t.name);
        }
    }

    #[test]
    fn parents_are_declared_before_children() {
        for (i, t) in ALL.iter().enumerate() {
            if let Some(p) = t.parent() {
                let pi = ALL.iter().position(|x| x.name == p).expect("parent declared");
                assert!(pi < i, "{} before {}", p, t.name);
            }
        }
    }

    #[test]
    fn join_keys_name_declared_columns() {
        assert_eq!(JOIN_KEYS.len(), DOCUMENTED_JOIN_KEYS + 6);
        for join in JOIN_KEYS {
            for side in join.split(" = ") {
                let mut parts = side.split('.');
                let table = by_name(parts.next().unwrap()).expect(join);
                let column = table.column(parts.next().unwrap()).expect(join);
                if let Some(nested) = parts.next() {
                    let Struct(fields) = column.ty else { panic!("{join}: not a struct") };
                    assert!(fields.iter().any(|f| f.name == nested), "{join}");
                }
            }
        }
    }
}
