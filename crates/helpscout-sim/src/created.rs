//! The truth of the API's writes: every record created or updated through it, in order.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::dates::to_datetime;
use super::model::Customer;

/// Every successful write through the API, in order. A client that must not duplicate is
/// judged on this, not on its answers: a fault can lose the answer of a write that happened.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Created {
    pub conversations: Vec<CreatedConversation>,
    /// Customers created by `POST /v2/customers` and those `POST /v2/conversations` created
    /// for an unknown email.
    pub customers: Vec<CreatedCustomer>,
    /// `PUT` and `PATCH /v2/customers/{id}` that answered 204.
    pub customer_updates: Vec<CustomerUpdate>,
}

/// A conversation created by `POST /v2/conversations`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CreatedConversation {
    pub id: i64,
    pub number: i64,
    pub mailbox_id: i64,
    pub subject: String,
    /// The customer's email as the body gave it, else (a customer given by id) the
    /// customer's first email.
    pub customer_email: Option<String>,
    pub customer_id: i64,
    /// Tag names, deduplicated, in the body's order.
    pub tags: Vec<String>,
    /// The body's `imported` (default false).
    pub imported: bool,
    /// The body's `autoReply` (default false).
    pub auto_reply: bool,
    /// The first thread's text.
    pub text: String,
    /// `createdAt` as the API serves it: the body's, or the time of the POST.
    pub created_at: DateTime<Utc>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CreatedCustomer {
    pub id: i64,
    pub emails: Vec<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub created_at: DateTime<Utc>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CustomerUpdate {
    pub id: i64,
    /// "PUT" or "PATCH".
    pub method: String,
    /// The request body as sent (a JSON Patch list stays a list).
    pub body: Value,
}

impl CreatedCustomer {
    pub(crate) fn of(c: &Customer) -> CreatedCustomer {
        CreatedCustomer {
            id: c.id,
            emails: c.emails.iter().map(|e| e.value.clone()).collect(),
            first_name: c.first.clone(),
            last_name: c.last.clone(),
            created_at: to_datetime(c.created_at),
        }
    }
}
