//! The API's JSON for each object (camelCase, fields omitted where the API omits them).

use serde_json::{Map, Value, json};

use super::dates::{fmt_ts, friendly};
use super::model::*;
use super::state::State;

/// How many embedded threads a chat conversation shows with `embed=threads`; the `threads`
/// count field still reports them all.
pub const CHAT_EMBED_LIMIT: usize = 3;

fn put_opt(m: &mut Map<String, Value>, k: &str, v: &Option<String>) {
    if let Some(v) = v {
        m.insert(k.to_string(), Value::String(v.clone()));
    }
}

/// A person object. `with_type` / `with_photo` follow what each context of the API shows.
pub fn person(p: &Person, with_type: bool, with_photo: bool) -> Value {
    let mut m = Map::new();
    m.insert("id".into(), json!(p.id));
    if with_type {
        m.insert("type".into(), json!(p.kind.as_str()));
    }
    put_opt(&mut m, "first", &p.first);
    put_opt(&mut m, "last", &p.last);
    put_opt(&mut m, "email", &p.email);
    if with_photo {
        put_opt(&mut m, "photoUrl", &p.photo_url);
    }
    Value::Object(m)
}

pub fn thread(st: &State, t: &Thread, base: &str) -> Value {
    let mut m = Map::new();
    m.insert("id".into(), json!(t.id));
    m.insert("type".into(), json!(t.kind.as_str()));
    m.insert("status".into(), json!(t.status));
    m.insert("state".into(), json!(t.state));
    if let Some(a) = &t.action {
        m.insert(
            "action".into(),
            json!({"type": a.kind, "text": a.text, "associatedEntities": {}}),
        );
    }
    if let Some(b) = t.body_text(st.seed) {
        m.insert("body".into(), json!(b));
    }
    m.insert(
        "source".into(),
        json!({"type": t.source_type, "via": t.source_via}),
    );
    m.insert("customer".into(), person(&t.customer, false, true));
    m.insert("createdBy".into(), person(&t.created_by, true, false));
    if let Some(a) = &t.assigned_to {
        m.insert("assignedTo".into(), person(a, true, false));
    }
    if let Some(s) = t.saved_reply_id {
        m.insert("savedReplyId".into(), json!(s));
    }
    m.insert("to".into(), json!(t.to));
    m.insert("cc".into(), json!(t.cc));
    m.insert("bcc".into(), json!(t.bcc));
    m.insert("createdAt".into(), json!(fmt_ts(t.created_at)));
    if let Some(o) = t.opened_at {
        m.insert("openedAt".into(), json!(fmt_ts(o)));
    }
    if let Some(r) = &t.rating {
        let mut rm = Map::new();
        rm.insert("customerId".into(), json!(r.customer.id));
        rm.insert("rating".into(), json!(rating_word(r.value)));
        if let Some(c) = &r.comments {
            rm.insert("comments".into(), json!(c));
        }
        m.insert("rating".into(), Value::Object(rm));
    }
    let atts: Vec<Value> = t
        .attachments
        .iter()
        .map(|a| {
            json!({"id": a.id, "filename": a.filename, "mimeType": a.mime_type, "width": a.width,
                   "height": a.height, "size": a.size, "state": "visible",
                   "_links": {"data": {"href": format!("{base}/attachments/{}/data", a.id)}}})
        })
        .collect();
    m.insert("_embedded".into(), json!({"attachments": atts}));
    let creator_link = if t.created_by.kind == PersonKind::Customer {
        "createdByCustomer"
    } else {
        "createdByUser"
    };
    let creator_path = if t.created_by.kind == PersonKind::Customer {
        "customers"
    } else {
        "users"
    };
    m.insert(
        "_links".into(),
        json!({creator_link: {"href": format!("{base}/{creator_path}/{}", t.created_by.id)},
               "customer": {"href": format!("{base}/customers/{}", t.customer.id)}}),
    );
    Value::Object(m)
}

/// Threads newest first, as `/threads` and `embed=threads` list them.
pub fn threads_newest_first(c: &Conversation) -> Vec<&Thread> {
    let mut v: Vec<&Thread> = c.threads.iter().collect();
    v.sort_by_key(|t| std::cmp::Reverse((t.created_at, t.id)));
    v
}

pub fn conversation(st: &State, c: &Conversation, base: &str, embed_threads: bool) -> Value {
    let mut m = Map::new();
    m.insert("id".into(), json!(c.id));
    m.insert("number".into(), json!(c.number));
    m.insert("threads".into(), json!(c.threads.len()));
    m.insert("type".into(), json!(c.kind.as_str()));
    m.insert("folderId".into(), json!(c.folder_id));
    m.insert("status".into(), json!(c.status.as_str()));
    m.insert("state".into(), json!(c.state));
    m.insert("subject".into(), json!(c.subject));
    m.insert("preview".into(), json!(c.preview(st.seed)));
    m.insert("mailboxId".into(), json!(c.mailbox_id));
    if let Some(a) = &c.assignee {
        m.insert("assignee".into(), person(a, true, false));
    }
    m.insert("createdBy".into(), person(&c.created_by, true, false));
    m.insert("createdAt".into(), json!(fmt_ts(c.created_at)));
    if let Some(cb) = &c.closed_by {
        m.insert("closedBy".into(), json!(cb.id));
        m.insert("closedByUser".into(), person(cb, true, false));
    }
    if let Some(ca) = c.closed_at {
        m.insert("closedAt".into(), json!(fmt_ts(ca)));
    }
    m.insert("userUpdatedAt".into(), json!(fmt_ts(c.user_updated_at)));
    if let Some((t, from)) = c.customer_waiting_since {
        m.insert(
            "customerWaitingSince".into(),
            json!({"time": fmt_ts(t), "friendly": friendly(t), "latestReplyFrom": from}),
        );
    }
    m.insert(
        "source".into(),
        json!({"type": c.source_type, "via": c.source_via}),
    );
    let tags: Vec<Value> = c
        .tags
        .iter()
        .filter_map(|id| st.tag(*id))
        .map(|t| json!({"id": t.id, "color": t.color, "tag": t.name}))
        .collect();
    m.insert("tags".into(), Value::Array(tags));
    m.insert("cc".into(), json!(c.cc));
    m.insert("bcc".into(), json!(c.bcc));
    m.insert(
        "primaryCustomer".into(),
        person(&c.primary_customer, true, false),
    );
    if let Some((until, by)) = c.snooze_until {
        m.insert("snooze".into(), json!({"snoozedBy": by, "snoozedUntil": fmt_ts(until), "unsnoozeOnCustomerReply": true}));
    }
    let mb = st.mailbox(c.mailbox_id);
    let fields: Vec<Value> = c
        .custom_fields
        .iter()
        .map(|v| {
            let name = mb
                .and_then(|m| m.fields.iter().find(|f| f.id == v.field_id))
                .map(|f| f.name.clone())
                .unwrap_or_default();
            json!({"id": v.field_id, "name": name, "value": v.value, "text": v.text})
        })
        .collect();
    m.insert("customFields".into(), Value::Array(fields));
    if let Some(p) = c.priority {
        m.insert("priority".into(), json!(p));
    }
    if embed_threads {
        let mut ts = threads_newest_first(c);
        if c.kind == ConvType::Chat {
            ts.truncate(CHAT_EMBED_LIMIT);
        }
        let ts: Vec<Value> = ts.into_iter().map(|t| thread(st, t, base)).collect();
        m.insert("_embedded".into(), json!({"threads": ts}));
    }
    m.insert(
        "_links".into(),
        json!({
            "self": {"href": format!("{base}/conversations/{}", c.id)},
            "mailbox": {"href": format!("{base}/mailboxes/{}", c.mailbox_id)},
            "primaryCustomer": {"href": format!("{base}/customers/{}", c.primary_customer.id)},
            "threads": {"href": format!("{base}/conversations/{}/threads", c.id)},
            "web": {"href": format!("https://secure.helpscout.net/conversation/{}/{}", c.id, c.number)},
        }),
    );
    Value::Object(m)
}

fn entries(v: &[Entry]) -> Value {
    Value::Array(
        v.iter()
            .map(|e| json!({"id": e.id, "value": e.value, "type": e.kind}))
            .collect(),
    )
}

pub fn customer(c: &Customer, base: &str) -> Value {
    let mut m = Map::new();
    m.insert("id".into(), json!(c.id));
    put_opt(&mut m, "firstName", &c.first);
    put_opt(&mut m, "lastName", &c.last);
    m.insert("gender".into(), json!(c.gender));
    put_opt(&mut m, "jobTitle", &c.job_title);
    put_opt(&mut m, "location", &c.location);
    put_opt(&mut m, "organization", &c.organization);
    if let Some(o) = c.organization_id {
        m.insert("organizationId".into(), json!(o));
    }
    m.insert("photoType".into(), json!(c.photo_type));
    put_opt(&mut m, "photoUrl", &c.photo_url);
    put_opt(&mut m, "age", &c.age);
    put_opt(&mut m, "background", &c.background);
    m.insert("draft".into(), json!(c.draft));
    m.insert("createdAt".into(), json!(fmt_ts(c.created_at)));
    m.insert("updatedAt".into(), json!(fmt_ts(c.updated_at)));
    if let Some(t) = c.loyalty_tier {
        m.insert("loyaltyTier".into(), json!(t));
    }
    let mut e = Map::new();
    e.insert("emails".into(), entries(&c.emails));
    e.insert("phones".into(), entries(&c.phones));
    e.insert("chats".into(), entries(&c.chats));
    e.insert("social_profiles".into(), entries(&c.social_profiles));
    e.insert(
        "websites".into(),
        Value::Array(
            c.websites
                .iter()
                .map(|w| json!({"id": w.id, "value": w.value}))
                .collect(),
        ),
    );
    e.insert(
        "properties".into(),
        Value::Array(
            c.properties
                .iter()
                .map(|p| json!({"type": p.kind, "slug": p.slug, "name": p.name, "value": p.value, "text": p.text, "source": {"type": p.source}}))
                .collect(),
        ),
    );
    if let Some(a) = &c.address {
        let mut am = Map::new();
        am.insert("city".into(), json!(a.city));
        put_opt(&mut am, "state", &a.state);
        put_opt(&mut am, "postalCode", &a.postal_code);
        am.insert("country".into(), json!(a.country));
        am.insert("lines".into(), json!(a.lines));
        e.insert("address".into(), Value::Object(am));
    }
    m.insert("_embedded".into(), Value::Object(e));
    let me = format!("{base}/customers/{}", c.id);
    m.insert(
        "_links".into(),
        json!({
            "self": {"href": me},
            "emails": {"href": format!("{me}/emails")},
            "phones": {"href": format!("{me}/phones")},
            "chats": {"href": format!("{me}/chats")},
            "social-profiles": {"href": format!("{me}/social-profiles")},
            "websites": {"href": format!("{me}/websites")},
            "address": {"href": format!("{me}/address")},
        }),
    );
    Value::Object(m)
}

pub fn mailbox(m: &Mailbox, base: &str) -> Value {
    json!({
        "id": m.id, "name": m.name, "slug": m.slug, "email": m.email,
        "createdAt": fmt_ts(m.created_at), "updatedAt": fmt_ts(m.updated_at),
        "_links": {
            "self": {"href": format!("{base}/mailboxes/{}", m.id)},
            "fields": {"href": format!("{base}/mailboxes/{}/fields", m.id)},
            "folders": {"href": format!("{base}/mailboxes/{}/folders", m.id)},
        }
    })
}

pub fn field(f: &Field) -> Value {
    let opts: Vec<Value> = f
        .options
        .iter()
        .map(|o| json!({"id": o.id, "order": o.order, "label": o.label}))
        .collect();
    json!({"id": f.id, "name": f.name, "type": f.kind, "order": f.order, "required": f.required, "options": opts})
}

pub fn folder(f: &Folder) -> Value {
    json!({"id": f.id, "name": f.name, "type": f.kind.as_str(), "userId": f.user_id,
           "totalCount": f.total_count, "activeCount": f.active_count, "updatedAt": fmt_ts(f.updated_at)})
}

pub fn user(u: &User, base: &str) -> Value {
    let mut m = Map::new();
    m.insert("id".into(), json!(u.id));
    m.insert("firstName".into(), json!(u.first));
    m.insert("lastName".into(), json!(u.last));
    m.insert("email".into(), json!(u.email));
    m.insert("role".into(), json!(u.role));
    m.insert("timezone".into(), json!(u.timezone));
    put_opt(&mut m, "photoUrl", &u.photo_url);
    m.insert("createdAt".into(), json!(fmt_ts(u.created_at)));
    m.insert("updatedAt".into(), json!(fmt_ts(u.updated_at)));
    m.insert("type".into(), json!("user"));
    m.insert("mention".into(), json!(u.mention));
    m.insert("initials".into(), json!(u.initials));
    put_opt(&mut m, "jobTitle", &u.job_title);
    put_opt(&mut m, "phone", &u.phone);
    m.insert("alternateEmails".into(), json!(u.alternate_emails));
    m.insert(
        "_links".into(),
        json!({"self": {"href": format!("{base}/users/{}", u.id)}}),
    );
    Value::Object(m)
}

pub fn team(t: &Team, base: &str) -> Value {
    let mut m = Map::new();
    m.insert("id".into(), json!(t.id));
    m.insert("name".into(), json!(t.name));
    m.insert("timezone".into(), json!(t.timezone));
    put_opt(&mut m, "photoUrl", &t.photo_url);
    m.insert("mention".into(), json!(t.mention));
    m.insert("initials".into(), json!(t.initials));
    m.insert("createdAt".into(), json!(fmt_ts(t.created_at)));
    m.insert("updatedAt".into(), json!(fmt_ts(t.updated_at)));
    m.insert(
        "_links".into(),
        json!({"self": {"href": format!("{base}/teams/{}", t.id)}, "members": {"href": format!("{base}/teams/{}/members", t.id)}}),
    );
    Value::Object(m)
}

pub fn workflow(w: &Workflow) -> Value {
    json!({"id": w.id, "mailboxId": w.mailbox_id, "type": w.kind, "status": w.status, "order": w.order,
           "name": w.name, "createdAt": fmt_ts(w.created_at), "modifiedAt": fmt_ts(w.modified_at)})
}

pub fn tag(t: &Tag, ticket_count: i64) -> Value {
    json!({"id": t.id, "slug": t.slug, "name": t.name, "color": t.color, "createdAt": fmt_ts(t.created_at),
           "updatedAt": fmt_ts(t.updated_at), "ticketCount": ticket_count})
}

/// One result of the happiness ratings report.
pub fn rating_result(c: &Conversation, t: &Thread, r: &Rating) -> Value {
    json!({
        "number": c.number,
        "id": c.id,
        "type": c.kind.as_str(),
        "threadid": t.id,
        "threadCreatedAt": fmt_ts(t.created_at),
        "ratingId": r.value,
        "ratingCustomerId": r.customer.id,
        "ratingCustomerName": r.customer.full_name(),
        "ratingComments": r.comments,
        "ratingCreatedAt": fmt_ts(r.created_at),
        "ratingUserId": t.created_by.id,
        "ratingUserName": t.created_by.full_name(),
    })
}
