//! The To-HelpScout direction's vocabulary: a contact-form submission, a customer record from
//! the business's own system, the marker that makes a ticket findable again, and the failure
//! reasons in the log document's words, each with its fix.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// One contact-form submission as received (the form's own fields, trimmed).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Submission {
    /// The caller's id for it (a webhook's delivery id), or one we gave it.
    pub id: String,
    pub form: String,
    pub email: String,
    pub name: String,
    pub subject: String,
    pub message: String,
    /// Any other fields, in the order received: they go into the ticket's text.
    #[serde(default)]
    pub extra: Vec<(String, String)>,
}

impl Submission {
    /// The tag that marks this submission's ticket in Help Scout: derived from the form and the
    /// id only, so every attempt (and every retry) carries the same one.
    pub fn marker(&self) -> String {
        marker(&self.form, &self.id)
    }

    /// What the ticket's customer thread says: the message, then the other fields.
    pub fn ticket_text(&self) -> String {
        let mut text = self.message.clone();
        if !self.extra.is_empty() || !self.name.is_empty() {
            text.push_str("\n\n---\n");
            if !self.name.is_empty() {
                text.push_str(&format!("Name: {}\n", self.name));
            }
            for (k, v) in &self.extra {
                text.push_str(&format!("{k}: {v}\n"));
            }
        }
        text
    }

    /// Why this submission cannot become a ticket as it is, before anything is sent.
    pub fn problem(&self) -> Option<FailureReason> {
        for (field, value) in [("email", &self.email), ("subject", &self.subject), ("message", &self.message)] {
            if value.trim().is_empty() {
                return Some(FailureReason::RequiredFieldMissing(field.into()));
            }
        }
        if !valid_email(&self.email) {
            return Some(FailureReason::InvalidEmail);
        }
        if garbled(&self.name) {
            return Some(FailureReason::NameEncoding("name".into()));
        }
        None
    }

    /// First and last name for the customer record (Help Scout allows 1–40 characters each).
    pub fn first_and_last_name(&self) -> (Option<String>, Option<String>) {
        split_name(&self.name)
    }
}

/// `hs-` and 20 hex digits of SHA-256 over the form and id: short, a valid tag, and the same
/// for the same submission whichever process or retry sends it.
pub fn marker(form: &str, id: &str) -> String {
    let digest = Sha256::digest(format!("{form}\0{id}").as_bytes());
    let hex: String = digest.iter().take(10).map(|b| format!("{b:02x}")).collect();
    format!("hs-{hex}")
}

/// A customer record from the business's system, matched to Help Scout's by email.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct CustomerRecord {
    pub email: String,
    #[serde(default)]
    pub first_name: Option<String>,
    #[serde(default)]
    pub last_name: Option<String>,
    #[serde(default)]
    pub job_title: Option<String>,
    #[serde(default)]
    pub organization: Option<String>,
    #[serde(default)]
    pub location: Option<String>,
    #[serde(default)]
    pub background: Option<String>,
}

impl CustomerRecord {
    /// The profile fields, as Help Scout names them, with their limits.
    pub fn fields(&self) -> [(&'static str, &Option<String>, usize); 6] {
        [
            ("firstName", &self.first_name, 40),
            ("lastName", &self.last_name, 40),
            ("jobTitle", &self.job_title, 60),
            ("organization", &self.organization, 60),
            ("location", &self.location, 60),
            ("background", &self.background, 200),
        ]
    }

    pub fn problem(&self) -> Option<FailureReason> {
        if self.email.trim().is_empty() {
            return Some(FailureReason::RequiredFieldMissing("email".into()));
        }
        if !valid_email(&self.email) {
            return Some(FailureReason::InvalidEmail);
        }
        for (name, value, limit) in self.fields() {
            let Some(v) = value else { continue };
            if name.ends_with("Name") && garbled(v) {
                return Some(FailureReason::NameEncoding(name.into()));
            }
            if v.chars().count() > limit {
                return Some(FailureReason::TooLong { field: name.into(), limit });
            }
        }
        None
    }
}

/// Why a To-HelpScout exchange failed, in the log document's words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FailureReason {
    InvalidEmail,
    MailboxNotFound,
    AuthenticationFailed,
    RateLimitExceeded,
    RequiredFieldMissing(String),
    NameEncoding(String),
    TooLong { field: String, limit: usize },
    /// The submission names a form the configuration no longer has.
    FormNotConfigured(String),
    /// Help Scout never answered this many attempts (each was checked for first).
    Unanswered(u32),
    /// Help Scout refused it for another reason (its own words).
    Rejected(String),
}

impl FailureReason {
    /// The log's `error_message`.
    pub fn message(&self) -> String {
        match self {
            FailureReason::InvalidEmail => "Invalid email address".into(),
            FailureReason::MailboxNotFound => "Mailbox not found".into(),
            FailureReason::AuthenticationFailed => "Authentication failed".into(),
            FailureReason::RateLimitExceeded => "Rate limit exceeded".into(),
            FailureReason::RequiredFieldMissing(field) => format!("Required field missing: {field}"),
            FailureReason::NameEncoding(field) => format!("Character encoding issue in name field: {field}"),
            FailureReason::TooLong { field, limit } => format!("Field too long: {field} (at most {limit} characters)"),
            FailureReason::FormNotConfigured(form) => format!("Form not configured: {form}"),
            FailureReason::Unanswered(n) => format!("Help Scout did not answer ({n} attempts)"),
            FailureReason::Rejected(why) => format!("Rejected by Help Scout: {why}"),
        }
    }

    /// What to do about it: the log event's details end with this.
    pub fn fix(&self) -> &'static str {
        match self {
            FailureReason::InvalidEmail => "Correct the customer's email address, then retry (`helpscout-etl retry EVENT --email ADDRESS`).",
            FailureReason::MailboxNotFound => "Set the form's `mailbox` to the id of an existing mailbox (see the mailboxes table), then retry.",
            FailureReason::AuthenticationFailed => "Check the app's client id and secret (HELPSCOUT_CLIENT_ID, HELPSCOUT_CLIENT_SECRET), then retry.",
            FailureReason::RateLimitExceeded => "Another app is using the account's rate limit; retry later or lower its usage.",
            FailureReason::RequiredFieldMissing(_) => "Make the form send the missing field, or fill it in and retry.",
            FailureReason::NameEncoding(_) => "Send the form as UTF-8 (check the site's charset), or correct the name and retry (`--name`).",
            FailureReason::TooLong { .. } => "Shorten the field in the source record and push it again.",
            FailureReason::FormNotConfigured(_) => "Add the form under [forms] in the configuration, then retry.",
            FailureReason::Unanswered(_) => "Check Help Scout's status page and the network, then retry (the ticket is looked for first, so a retry cannot duplicate it).",
            FailureReason::Rejected(_) => "Correct what Help Scout names, then retry.",
        }
    }

}

/// A plausible email address: one `@`, a non-empty local part, a dotted domain, no spaces or
/// list punctuation (what Help Scout calls "not well-formed").
pub fn valid_email(s: &str) -> bool {
    let s = s.trim();
    let Some((local, domain)) = s.split_once('@') else { return false };
    !local.is_empty()
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains("..")
        && !s.chars().any(|c| c.is_whitespace() || c.is_control() || matches!(c, ',' | '<' | '>' | ';' | '"'))
}

/// Text that was decoded with the wrong character set: a replacement character, control
/// characters, or UTF-8 read as Latin-1 ("JosÃ©").
pub fn garbled(s: &str) -> bool {
    s.contains('\u{FFFD}')
        || s.chars().any(|c| c.is_control() && c != '\t')
        || s.chars().zip(s.chars().skip(1)).any(|(a, b)| matches!(a, 'Ã' | 'Â') && ('\u{80}'..='\u{BF}').contains(&b))
}

/// "Jane van Dyke" → ("Jane", "van Dyke"); each cut to Help Scout's 40 characters.
pub fn split_name(name: &str) -> (Option<String>, Option<String>) {
    let name = name.split_whitespace().collect::<Vec<_>>().join(" ");
    let cut = |s: &str| (!s.is_empty()).then(|| s.chars().take(40).collect::<String>());
    match name.split_once(' ') {
        Some((first, last)) => (cut(first), cut(last)),
        None => (cut(&name), None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn submission() -> Submission {
        Submission {
            id: "a1".into(),
            form: "contact".into(),
            email: "jane@example.com".into(),
            name: "Jane van Dyke".into(),
            subject: "Help".into(),
            message: "It broke".into(),
            extra: vec![("Order".into(), "42".into())],
        }
    }

    #[test]
    fn the_marker_depends_on_form_and_id_only_and_is_a_tag() {
        let s = submission();
        let mut other = s.clone();
        other.message = "changed".into();
        assert_eq!(s.marker(), other.marker());
        other.id = "a2".into();
        assert_ne!(s.marker(), other.marker());
        assert_eq!(s.marker().len(), 23);
        assert!(s.marker().chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'));
        assert_ne!(marker("contact", "a1"), marker("contact2", "a1"));
    }

    #[test]
    fn problems_are_found_before_anything_is_sent() {
        assert_eq!(submission().problem(), None);
        let with = |f: fn(&mut Submission)| {
            let mut s = submission();
            f(&mut s);
            s.problem()
        };
        assert_eq!(with(|s| s.email = "jane at example.com".into()), Some(FailureReason::InvalidEmail));
        assert_eq!(with(|s| s.email = "jane@example".into()), Some(FailureReason::InvalidEmail));
        assert_eq!(with(|s| s.subject = " ".into()), Some(FailureReason::RequiredFieldMissing("subject".into())));
        assert_eq!(with(|s| s.email = String::new()), Some(FailureReason::RequiredFieldMissing("email".into())));
        assert_eq!(with(|s| s.name = "Jos\u{FFFD}".into()), Some(FailureReason::NameEncoding("name".into())));
        assert_eq!(with(|s| s.name = "JosÃ© Martín".into()), Some(FailureReason::NameEncoding("name".into())));
        assert_eq!(with(|s| s.name = "José Martín Ökür".into()), None);
    }

    #[test]
    fn names_split_at_the_first_space_and_fit_help_scouts_limits() {
        assert_eq!(split_name(" Jane  van Dyke "), (Some("Jane".into()), Some("van Dyke".into())));
        assert_eq!(split_name("Cher"), (Some("Cher".into()), None));
        assert_eq!(split_name(""), (None, None));
        assert_eq!(split_name(&"x".repeat(50)).0.unwrap().len(), 40);
    }

    #[test]
    fn the_ticket_text_keeps_every_field() {
        let text = submission().ticket_text();
        assert!(text.starts_with("It broke"));
        assert!(text.contains("Name: Jane van Dyke") && text.contains("Order: 42"));
    }

    #[test]
    fn customer_records_are_checked_against_help_scouts_limits() {
        let mut c = CustomerRecord { email: "a@b.co".into(), first_name: Some("Ann".into()), ..Default::default() };
        assert_eq!(c.problem(), None);
        c.job_title = Some("x".repeat(61));
        assert_eq!(c.problem(), Some(FailureReason::TooLong { field: "jobTitle".into(), limit: 60 }));
        c.job_title = None;
        c.last_name = Some("M\u{1}ller".into());
        assert_eq!(c.problem(), Some(FailureReason::NameEncoding("lastName".into())));
    }
}
