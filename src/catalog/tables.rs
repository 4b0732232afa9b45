//! The 11 documented tables, declared once as data: where rows come from, how they are paged,
//! keyed, replicated and partitioned, their columns, and what the integration log says of them.

use super::types::{ColumnType, ColumnType::*, field};
use super::{Check, Column, Detail, EventType, Field, Origin, Paging, Refetch, Removals, Replication, Request, RowEvents, Source, Table, Window};

const fn col(name: &'static str, ty: ColumnType) -> Column {
    Column { name, ty, source: Source::Api }
}

const fn from(name: &'static str, ty: ColumnType, path: &'static str) -> Column {
    Column { name, ty, source: Source::Path(path) }
}

const fn parent(name: &'static str) -> Column {
    Column { name, ty: Int, source: Source::ParentId }
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

pub static CONVERSATIONS: Table = Table {
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
    noun: "conversation",
    row_events: Some(RowEvents {
        created: EventType::TicketCreated,
        updated: EventType::ConversationUpdated,
        customer_email: Field::Member("primary_customer", "email"),
        conversation: Some(("id", "number")),
        details: &[
            Detail { label: "Subject", columns: &["subject"] },
            Detail { label: "status", columns: &["status"] },
            Detail { label: "threads", columns: &["threads"] },
        ],
        check: None,
    }),
    removals: Some(Removals {
        scan_omits: &["embed", "sortField", "sortOrder"],
        tombstones: "_helpscout_conversation_tombstones",
        merged: EventType::ConversationMerged,
        deleted: EventType::ConversationDeleted,
        counted_by: ("created_at", "createdAt"),
    }),
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

pub static CONVERSATION_THREADS: Table = Table {
    name: "conversation_threads",
    description: "The threads (messages, notes, line items, chats, …) that make up conversations.",
    origin: Origin::Embedded {
        parent: &CONVERSATIONS,
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
    noun: "thread",
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

pub static CUSTOMERS: Table = Table {
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
    noun: "customer",
    row_events: Some(RowEvents {
        created: EventType::CustomerSynced,
        updated: EventType::CustomerUpdated,
        customer_email: Field::FirstItemMember("emails", "value"),
        conversation: None,
        details: &[Detail { label: "Customer", columns: &["first_name", "last_name"] }],
        check: Some(Check::ValidEmails { list: "emails", member: "value" }),
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

pub static HAPPINESS_RATINGS_REPORT: Table = Table {
    name: "happiness_ratings_report",
    description: "Happiness ratings customers gave to replies, from the ratings report (Plus and Pro plans).",
    origin: Origin::List,
    request: Request {
        path: "/reports/happiness/ratings",
        params: NO_PARAMS,
        modified_since: None,
        window: Some(Window { start: "start", end: "end", column: "rating_created_at" }),
    },
    list_key: "results",
    paging: Paging::Report,
    primary_key: &["conversation_id", "rating_created_at", "rating_customer_id"],
    replication: Replication::FullTable,
    parent_key: None,
    partition_month_of: Some("rating_created_at"),
    record_path: None,
    noun: "rating",
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

pub static MAILBOX_FIELDS: Table = Table {
    name: "mailbox_fields",
    description: "Custom fields defined on each mailbox, with their options.",
    origin: Origin::PerParent { parent: &MAILBOXES },
    request: list_request("/mailboxes/{parent_id}/fields"),
    list_key: "fields",
    paging: Paging::Hal,
    primary_key: &["id"],
    replication: Replication::FullTable,
    parent_key: Some("mailbox_id"),
    partition_month_of: None,
    record_path: None,
    noun: "field",
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

pub static MAILBOX_FOLDERS: Table = Table {
    name: "mailbox_folders",
    description: "Folders of each mailbox, with their conversation counts.",
    origin: Origin::PerParent { parent: &MAILBOXES },
    request: list_request("/mailboxes/{parent_id}/folders"),
    list_key: "folders",
    paging: Paging::Hal,
    primary_key: &["id"],
    replication: Replication::Incremental { cursor: "updated_at" },
    parent_key: Some("mailbox_id"),
    partition_month_of: None,
    record_path: None,
    noun: "folder",
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

pub static MAILBOXES: Table = Table {
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
    noun: "mailbox",
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

pub static TEAM_MEMBERS: Table = Table {
    name: "team_members",
    description: "Which users belong to which team.",
    origin: Origin::PerParent { parent: &TEAMS },
    request: list_request("/teams/{parent_id}/members"),
    list_key: "users",
    paging: Paging::Hal,
    primary_key: &["team_id", "user_id"],
    replication: Replication::FullTable,
    parent_key: Some("team_id"),
    partition_month_of: None,
    record_path: None,
    noun: "team membership",
    row_events: None,
    removals: None,
    columns: &[parent("team_id"), from("user_id", Int, "id")],
};

pub static TEAMS: Table = Table {
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
    noun: "team",
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

pub static USERS: Table = Table {
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
    noun: "user",
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

pub static WORKFLOWS: Table = Table {
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
    noun: "workflow",
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
pub static ALL: &[&Table] = &[
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
