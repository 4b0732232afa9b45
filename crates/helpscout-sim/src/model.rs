//! The simulated account: plain data, no HTTP and no JSON. The API renderer (`render`) and
//! the ground truth (`truth`) both read these types, each in its own way.

use std::sync::Arc;

use super::dates::Ts;
use super::text;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ConvStatus {
    Active,
    Pending,
    Closed,
    Spam,
}

impl ConvStatus {
    pub const ALL: [ConvStatus; 4] = [
        ConvStatus::Active,
        ConvStatus::Pending,
        ConvStatus::Closed,
        ConvStatus::Spam,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ConvStatus::Active => "active",
            ConvStatus::Pending => "pending",
            ConvStatus::Closed => "closed",
            ConvStatus::Spam => "spam",
        }
    }

    pub fn parse(s: &str) -> Option<ConvStatus> {
        ConvStatus::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ConvType {
    Email,
    Chat,
    Phone,
}

impl ConvType {
    pub fn as_str(self) -> &'static str {
        match self {
            ConvType::Email => "email",
            ConvType::Chat => "chat",
            ConvType::Phone => "phone",
        }
    }

    pub fn parse(s: &str) -> Option<ConvType> {
        match s {
            "email" => Some(ConvType::Email),
            "chat" => Some(ConvType::Chat),
            "phone" => Some(ConvType::Phone),
            _ => None,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ThreadType {
    BeaconChat,
    Chat,
    Customer,
    ForwardChild,
    ForwardParent,
    LineItem,
    Message,
    Note,
    Phone,
}

impl ThreadType {
    /// How a generated body of this type reads.
    pub fn body_style(self) -> text::BodyStyle {
        use ThreadType::*;
        let voice = match self {
            Note => text::Voice::Note,
            Message | ForwardParent | Phone => text::Voice::Agent,
            _ => text::Voice::Customer,
        };
        text::BodyStyle {
            voice,
            chat: matches!(self, Chat | BeaconChat),
            greeting: matches!(self, Message | ForwardParent),
            signature: self == Message,
            may_be_hostile: self == Customer,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ThreadType::BeaconChat => "beaconchat",
            ThreadType::Chat => "chat",
            ThreadType::Customer => "customer",
            ThreadType::ForwardChild => "forwardchild",
            ThreadType::ForwardParent => "forwardparent",
            ThreadType::LineItem => "lineitem",
            ThreadType::Message => "message",
            ThreadType::Note => "note",
            ThreadType::Phone => "phone",
        }
    }

    pub fn has_body(self) -> bool {
        self != ThreadType::LineItem
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PersonKind {
    User,
    Customer,
    Team,
}

impl PersonKind {
    pub fn as_str(self) -> &'static str {
        match self {
            PersonKind::User => "user",
            PersonKind::Customer => "customer",
            PersonKind::Team => "team",
        }
    }
}

/// A snapshot of a person (user, customer or team) as embedded in conversations and threads.
/// Snapshots are immutable: editing a customer or user makes a new one, so rows that embed
/// the old one do not change behind the back of their modified time.
#[derive(Clone, Debug, PartialEq)]
pub struct Person {
    pub id: i64,
    pub kind: PersonKind,
    pub first: Option<String>,
    pub last: Option<String>,
    pub email: Option<String>,
    pub photo_url: Option<String>,
}

pub type PersonRef = Arc<Person>;

impl Person {
    pub fn full_name(&self) -> String {
        match (&self.first, &self.last) {
            (Some(f), Some(l)) => format!("{f} {l}"),
            (Some(f), None) => f.clone(),
            (None, Some(l)) => l.clone(),
            (None, None) => String::new(),
        }
    }
}

#[derive(Clone, Debug)]
pub struct Mailbox {
    pub id: i64,
    pub name: String,
    pub slug: String,
    pub email: String,
    pub created_at: Ts,
    pub updated_at: Ts,
    pub fields: Vec<Field>,
    pub folders: Vec<Folder>,
}

#[derive(Clone, Debug)]
pub struct Field {
    pub id: i64,
    pub name: String,
    /// dropdown | single_line | multi_line | number | date
    pub kind: &'static str,
    pub order: i64,
    pub required: bool,
    pub options: Vec<FieldOption>,
}

#[derive(Clone, Debug)]
pub struct FieldOption {
    pub id: i64,
    pub order: i64,
    pub label: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FolderKind {
    Unassigned,
    Mine,
    Drafts,
    Assigned,
    Closed,
    Spam,
}

impl FolderKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FolderKind::Unassigned => "open",
            FolderKind::Mine => "mytickets",
            FolderKind::Drafts => "drafts",
            FolderKind::Assigned => "assigned",
            FolderKind::Closed => "closed",
            FolderKind::Spam => "spam",
        }
    }
}

#[derive(Clone, Debug)]
pub struct Folder {
    pub id: i64,
    pub name: String,
    pub kind: FolderKind,
    /// The owner of a "Mine" folder; 0 for shared folders (as the API reports it).
    pub user_id: i64,
    pub total_count: i64,
    pub active_count: i64,
    pub updated_at: Ts,
}

#[derive(Clone, Debug)]
pub struct User {
    pub id: i64,
    pub first: String,
    pub last: String,
    pub email: String,
    pub role: &'static str,
    pub timezone: String,
    pub photo_url: Option<String>,
    pub created_at: Ts,
    pub updated_at: Ts,
    pub job_title: Option<String>,
    pub phone: Option<String>,
    pub alternate_emails: Vec<String>,
    pub mention: String,
    pub initials: String,
}

impl User {
    pub fn person(&self) -> Person {
        Person {
            id: self.id,
            kind: PersonKind::User,
            first: Some(self.first.clone()),
            last: Some(self.last.clone()),
            email: Some(self.email.clone()),
            photo_url: self.photo_url.clone(),
        }
    }
}

#[derive(Clone, Debug)]
pub struct Team {
    pub id: i64,
    pub name: String,
    pub timezone: String,
    pub photo_url: Option<String>,
    pub mention: String,
    pub initials: String,
    pub created_at: Ts,
    pub updated_at: Ts,
    /// Member user ids, ascending.
    pub members: Vec<i64>,
}

impl Team {
    pub fn person(&self) -> Person {
        Person {
            id: self.id,
            kind: PersonKind::Team,
            first: Some(self.name.clone()),
            last: None,
            email: None,
            photo_url: self.photo_url.clone(),
        }
    }
}

#[derive(Clone, Debug)]
pub struct Workflow {
    pub id: i64,
    pub mailbox_id: i64,
    /// manual | automatic
    pub kind: &'static str,
    /// active | inactive | invalid
    pub status: &'static str,
    pub order: i64,
    pub name: String,
    pub created_at: Ts,
    pub modified_at: Ts,
}

#[derive(Clone, Debug)]
pub struct Tag {
    pub id: i64,
    pub name: String,
    pub slug: String,
    pub color: String,
    pub created_at: Ts,
    pub updated_at: Ts,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    pub id: i64,
    pub value: String,
    pub kind: String,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Website {
    pub id: i64,
    pub value: String,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Property {
    pub kind: &'static str,
    pub slug: String,
    pub name: String,
    pub value: String,
    pub text: String,
    pub source: &'static str,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Address {
    pub city: String,
    pub state: Option<String>,
    pub postal_code: Option<String>,
    pub country: String,
    pub lines: Vec<String>,
}

#[derive(Clone, Debug)]
pub struct Customer {
    pub id: i64,
    pub first: Option<String>,
    pub last: Option<String>,
    /// male | female | unknown
    pub gender: &'static str,
    pub job_title: Option<String>,
    pub location: Option<String>,
    pub organization: Option<String>,
    pub organization_id: Option<i64>,
    /// unknown | gravatar | twitter | facebook | googleprofile | googleplus | linkedin | instagram
    pub photo_type: &'static str,
    pub photo_url: Option<String>,
    pub age: Option<String>,
    pub background: Option<String>,
    pub draft: bool,
    pub created_at: Ts,
    pub updated_at: Ts,
    pub emails: Vec<Entry>,
    pub phones: Vec<Entry>,
    pub chats: Vec<Entry>,
    pub social_profiles: Vec<Entry>,
    pub websites: Vec<Website>,
    pub properties: Vec<Property>,
    pub address: Option<Address>,
    /// A top-level field newer than the data contract (present on some customers).
    pub loyalty_tier: Option<&'static str>,
    /// The snapshot embedded in conversations and threads created from now on.
    pub snap: PersonRef,
}

impl Customer {
    pub fn person(&self) -> Person {
        Person {
            id: self.id,
            kind: PersonKind::Customer,
            first: self.first.clone(),
            last: self.last.clone(),
            email: self.emails.first().map(|e| e.value.clone()),
            photo_url: self.photo_url.clone(),
        }
    }

    pub fn refresh_snap(&mut self) {
        let p = self.person();
        if *self.snap != p {
            self.snap = Arc::new(p);
        }
    }
}

#[derive(Clone, Debug)]
pub struct Action {
    pub kind: &'static str,
    pub text: String,
}

#[derive(Clone, Debug)]
pub struct Attachment {
    pub id: i64,
    pub filename: String,
    pub mime_type: &'static str,
    pub width: i64,
    pub height: i64,
    pub size: i64,
}

#[derive(Clone, Debug)]
pub struct Rating {
    /// 1 great, 2 okay, 3 not good (the report's `ratingId`).
    pub value: u8,
    pub customer: PersonRef,
    pub comments: Option<String>,
    pub created_at: Ts,
}

pub fn rating_word(v: u8) -> &'static str {
    match v {
        1 => "great",
        2 => "okay",
        _ => "not_good",
    }
}

#[derive(Clone, Debug)]
pub enum Body {
    /// No body (line items).
    None,
    /// Derived on demand from the account seed and the thread id (saves memory at scale).
    Generated,
    Given(Box<str>),
}

#[derive(Clone, Debug)]
pub struct Thread {
    pub id: i64,
    pub kind: ThreadType,
    /// active | closed | nochange | pending | spam
    pub status: &'static str,
    /// draft | hidden | published | review
    pub state: &'static str,
    pub action: Option<Box<Action>>,
    pub body: Body,
    pub source_type: &'static str,
    pub source_via: &'static str,
    pub customer: PersonRef,
    pub created_by: PersonRef,
    pub assigned_to: Option<PersonRef>,
    pub saved_reply_id: Option<i64>,
    pub to: Vec<String>,
    pub cc: Vec<String>,
    pub bcc: Vec<String>,
    pub created_at: Ts,
    pub opened_at: Option<Ts>,
    pub rating: Option<Box<Rating>>,
    pub attachments: Vec<Attachment>,
}

impl Thread {
    pub fn body_text(&self, seed: u64) -> Option<String> {
        match &self.body {
            Body::None => None,
            Body::Generated => Some(text::generated_body(seed, self.id, self.kind.body_style())),
            Body::Given(s) => Some(s.to_string()),
        }
    }

    /// A thread written by the customer (moves `customerWaitingSince`).
    pub fn is_from_customer(&self) -> bool {
        self.created_by.kind == PersonKind::Customer
    }
}

#[derive(Clone, Debug)]
pub struct CustomFieldValue {
    pub field_id: i64,
    pub value: String,
    pub text: String,
}

#[derive(Clone, Debug)]
pub struct Conversation {
    pub id: i64,
    pub number: i64,
    pub kind: ConvType,
    pub status: ConvStatus,
    pub state: &'static str,
    pub subject: String,
    pub mailbox_id: i64,
    pub folder_id: i64,
    pub assignee: Option<PersonRef>,
    pub created_by: PersonRef,
    pub primary_customer: PersonRef,
    pub created_at: Ts,
    pub closed_by: Option<PersonRef>,
    pub closed_at: Option<Ts>,
    pub user_updated_at: Ts,
    /// (time, latestReplyFrom) — absent when the customer never wrote.
    pub customer_waiting_since: Option<(Ts, &'static str)>,
    pub source_type: &'static str,
    pub source_via: &'static str,
    /// Tag ids.
    pub tags: Vec<i64>,
    pub cc: Vec<String>,
    pub bcc: Vec<String>,
    pub custom_fields: Vec<CustomFieldValue>,
    pub snooze_until: Option<(Ts, i64)>,
    /// A top-level field newer than the data contract (present on some conversations).
    pub priority: Option<&'static str>,
    /// The hidden server-side modified time: every change bumps it.
    pub modified: Ts,
    /// Threads in creation order (oldest first).
    pub threads: Vec<Thread>,
}

impl Conversation {
    /// The API's `preview`: the start of the latest written thread, without markup.
    pub fn preview(&self, seed: u64) -> String {
        let latest = self
            .threads
            .iter()
            .rev()
            .find(|t| t.kind.has_body() && t.kind != ThreadType::Note);
        match latest.and_then(|t| t.body_text(seed)) {
            Some(b) => text::preview_of(&b),
            None => String::new(),
        }
    }

    /// The contract's derived `updated_at`.
    pub fn derived_updated_at(&self) -> Ts {
        match self.customer_waiting_since {
            Some((t, _)) => t.max(self.user_updated_at),
            None => self.user_updated_at,
        }
    }

    /// Recomputes `customerWaitingSince` from the threads.
    pub fn recompute_waiting(&mut self) {
        let last_customer = self
            .threads
            .iter()
            .filter(|t| t.is_from_customer())
            .map(|t| t.created_at)
            .max();
        let last_written = self
            .threads
            .iter()
            .filter(|t| !matches!(t.kind, ThreadType::LineItem | ThreadType::Note))
            .max_by_key(|t| (t.created_at, t.id));
        self.customer_waiting_since = last_customer.map(|t| {
            let from = match last_written {
                Some(w) if !w.is_from_customer() => "user",
                _ => "customer",
            };
            (t, from)
        });
    }
}

/// Why a conversation left the account.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RemovedConv {
    pub merged_into: Option<i64>,
    pub at: Ts,
}
