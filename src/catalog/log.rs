//! The vocabulary of the integration log ("HelpScout Log"): event types, statuses, directions,
//! the events the extractor builds, and one API request as the log records it. The only copy
//! of every event name; the store writes these, the views and pages read them.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// What happened, in the log page's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EventType {
    TicketCreated,
    /// A submission received again (a webhook firing twice, a double click): no second ticket.
    DuplicateIgnored,
    ConversationUpdated,
    ConversationMerged,
    ConversationDeleted,
    CustomerSynced,
    CustomerUpdated,
    TableSynced,
    RateLimited,
    Authentication,
    Error,
}

impl EventType {
    pub const ALL: [EventType; 11] = [
        EventType::TicketCreated,
        EventType::DuplicateIgnored,
        EventType::ConversationUpdated,
        EventType::ConversationMerged,
        EventType::ConversationDeleted,
        EventType::CustomerSynced,
        EventType::CustomerUpdated,
        EventType::TableSynced,
        EventType::RateLimited,
        EventType::Authentication,
        EventType::Error,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventType::TicketCreated => "Ticket Created",
            EventType::DuplicateIgnored => "Duplicate Ignored",
            EventType::ConversationUpdated => "Conversation Updated",
            EventType::ConversationMerged => "Conversation Merged",
            EventType::ConversationDeleted => "Conversation Deleted",
            EventType::CustomerSynced => "Customer Synced",
            EventType::CustomerUpdated => "Customer Updated",
            EventType::TableSynced => "Table Synced",
            EventType::RateLimited => "Rate Limited",
            EventType::Authentication => "Authentication",
            EventType::Error => "Error",
        }
    }

    /// The event type a stored name stands for (case-insensitive).
    pub fn parse(name: &str) -> Option<EventType> {
        Self::ALL.into_iter().find(|e| e.as_str().eq_ignore_ascii_case(name.trim()))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Status {
    Success,
    Failed,
    Pending,
}

impl Status {
    pub const ALL: [Status; 3] = [Status::Success, Status::Failed, Status::Pending];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Success => "Success",
            Status::Failed => "Failed",
            Status::Pending => "Pending",
        }
    }
}

/// Which way an event's data moved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Direction {
    FromHelpScout,
    ToHelpScout,
}

impl Direction {
    pub const ALL: [Direction; 2] = [Direction::FromHelpScout, Direction::ToHelpScout];

    pub fn as_str(self) -> &'static str {
        match self {
            Direction::FromHelpScout => "From HelpScout",
            Direction::ToHelpScout => "To HelpScout",
        }
    }
}

/// Where a conversation opens in Help Scout: the prefix, then `{id}` and, when known, `/{number}`.
pub const CONVERSATION_LINK_PREFIX: &str = "https://secure.helpscout.net/conversation/";

/// One event built by the extractor (row events are built by the store from the staged rows).
#[derive(Debug, Clone, Serialize)]
pub struct LogEvent {
    pub timestamp: DateTime<Utc>,
    pub event_type: EventType,
    pub customer_email: Option<String>,
    pub conversation_id: Option<i64>,
    pub conversation_number: Option<i64>,
    pub status: Status,
    pub direction: Direction,
    pub details: String,
    pub error_message: Option<String>,
    pub table_name: Option<&'static str>,
    pub http_status: Option<u16>,
    pub request: Option<String>,
    pub attempt: Option<u32>,
    pub duration_ms: Option<u64>,
    /// What a retry needs.
    pub retry_target: Option<RetryTarget>,
}

impl LogEvent {
    pub fn new(event_type: EventType, status: Status, details: impl Into<String>) -> Self {
        LogEvent {
            timestamp: Utc::now(),
            event_type,
            customer_email: None,
            conversation_id: None,
            conversation_number: None,
            status,
            direction: Direction::FromHelpScout,
            details: details.into(),
            error_message: None,
            table_name: None,
            http_status: None,
            request: None,
            attempt: None,
            duration_ms: None,
            retry_target: None,
        }
    }

    pub fn table(mut self, table: &'static crate::catalog::Table) -> Self {
        self.table_name = Some(table.name);
        self
    }

    pub fn error(mut self, message: impl Into<String>) -> Self {
        self.error_message = Some(message.into());
        self
    }
}

/// What a failed event's retry re-attempts: one record of a table, or the whole table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct RetryTarget {
    #[serde(serialize_with = "table_name")]
    pub table: &'static crate::catalog::Table,
    pub id: Option<i64>,
}

fn table_name<S: serde::Serializer>(t: &&'static crate::catalog::Table, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(t.name)
}

/// A record that could not be synced (its table's bookmark stays put until it is).
#[derive(Debug, Clone)]
pub struct RecordFailure {
    pub id: Option<i64>,
    pub error: String,
    pub http_status: Option<u16>,
}

/// The HTTP method of a recorded request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Method {
    Get,
    Post,
    Put,
    Patch,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Patch => "PATCH",
        }
    }

    pub fn is_write(self) -> bool {
        !matches!(self, Method::Get)
    }
}

/// What one recorded request was for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Purpose {
    /// A call of the API itself (counts against the rate limit).
    Api,
    /// An OAuth token exchange.
    Token,
}

/// One HTTP attempt, as the integration log and the API-usage view see it.
#[derive(Debug, Clone, Serialize)]
pub struct RequestRecord {
    pub at: DateTime<Utc>,
    pub method: Method,
    pub purpose: Purpose,
    /// Path and query below the host; never a token (tokens travel in headers and bodies).
    pub request: String,
    pub status: Option<u16>,
    pub attempt: u32,
    pub duration_ms: u64,
    pub rate_limit_remaining: Option<i64>,
    /// Why the attempt failed, in words; never a secret.
    pub error: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_names_parse_back_whatever_their_case() {
        for e in EventType::ALL {
            assert_eq!(EventType::parse(e.as_str()), Some(e));
            assert_eq!(EventType::parse(&e.as_str().to_uppercase()), Some(e));
        }
        assert_eq!(EventType::parse("Ticket Deleted"), None);
    }
}
