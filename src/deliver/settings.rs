//! How to deliver: the configured forms and the timing of checks and retries.

use std::collections::BTreeMap;
use std::time::Duration;

/// One contact form: where its tickets go and how they look.
#[derive(Debug, Clone, PartialEq)]
pub struct FormSettings {
    pub name: String,
    /// What a poster must show (the `X-Form-Secret` header, or an HMAC-SHA256 of the body in
    /// `X-Signature: sha256=HEX`). None: the form takes no posts over HTTP, only `push forms`.
    pub secret: Option<String>,
    pub mailbox_id: i64,
    pub tags: Vec<String>,
    /// Help Scout sends no emails or notifications for the ticket.
    pub imported: bool,
    /// Help Scout sends the mailbox's auto reply to the customer.
    pub auto_reply: bool,
}

#[derive(Debug, Clone)]
pub struct PushSettings {
    pub forms: BTreeMap<String, FormSettings>,
    /// How close the same content, without an id of its own, counts as the same submission.
    pub duplicate_window: Duration,
    /// How long after an attempt with no answer its ticket is looked for (Help Scout's search
    /// needs a moment to see a new conversation).
    pub recheck_after: Duration,
    /// Attempts before a record is failed as unanswered.
    pub max_attempts: u32,
    /// How often `serve` looks for due records when nothing wakes it.
    pub poll: Duration,
    /// What `POST /customers` posters must show (None: the endpoint is off).
    pub customers_secret: Option<String>,
}

impl Default for PushSettings {
    fn default() -> Self {
        PushSettings {
            forms: BTreeMap::new(),
            duplicate_window: Duration::from_secs(600),
            recheck_after: Duration::from_secs(30),
            max_attempts: 8,
            poll: Duration::from_secs(5),
            customers_secret: None,
        }
    }
}
