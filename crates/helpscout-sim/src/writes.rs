//! Write endpoints: create conversations and customers, update customers (each recorded in
//! the write truth, `created.rs`).

use serde_json::{Value, json};

use super::dates::{Ts, parse_api_date, to_datetime};
use super::created::{CreatedConversation, CreatedCustomer, CustomerUpdate};
use super::model::*;
use super::reply::{FieldError, Reply};
use super::state::State;

/// A plausible email address: one `@`, a non-empty local part, a dotted domain, no spaces.
pub fn valid_email(s: &str) -> bool {
    let mut parts = s.split('@');
    let (Some(local), Some(domain), None) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !s
            .chars()
            .any(|c| c.is_whitespace() || c == ',' || c == '<' || c == '>')
}


fn created_reply(base: &str, kind: &str, id: i64) -> Reply {
    Reply::empty(201)
        .header("Resource-ID", id.to_string())
        .header("Location", format!("{base}/{kind}/{id}"))
}

fn parse_body(body: &[u8]) -> Result<Value, Reply> {
    serde_json::from_slice(body).map_err(|e| {
        Reply::validation(vec![FieldError::body(
            "",
            &format!("Malformed JSON: {e}"),
            Value::Null,
        )])
    })
}

fn str_field(v: &Value, k: &str) -> Option<String> {
    v.get(k).and_then(Value::as_str).map(str::to_string)
}

fn find_customer_by_email(st: &State, email: &str) -> Option<i64> {
    let lower = email.to_lowercase();
    st.customers
        .values()
        .filter(|c| c.emails.iter().any(|e| e.value.to_lowercase() == lower))
        .map(|c| c.id)
        .min()
}

fn new_customer_record(
    st: &mut State,
    now: Ts,
    first: Option<String>,
    last: Option<String>,
) -> Customer {
    st.ids.customer += 1;
    let id = st.ids.customer;
    let mut c = Customer {
        id,
        first,
        last,
        gender: "unknown",
        job_title: None,
        location: None,
        organization: None,
        organization_id: None,
        photo_type: "unknown",
        photo_url: None,
        age: None,
        background: None,
        draft: false,
        created_at: now,
        updated_at: now,
        emails: vec![],
        phones: vec![],
        chats: vec![],
        social_profiles: vec![],
        websites: vec![],
        properties: vec![],
        address: None,
        loyalty_tier: None,
        snap: std::sync::Arc::new(Person {
            id,
            kind: PersonKind::Customer,
            first: None,
            last: None,
            email: None,
            photo_url: None,
        }),
    };
    c.refresh_snap();
    c
}

/// `POST /v2/conversations`.
pub fn create_conversation(st: &mut State, base: &str, body: &[u8], now: Ts) -> Reply {
    let v = match parse_body(body) {
        Ok(v) => v,
        Err(e) => return e,
    };
    let mut errors = Vec::new();
    let subject = str_field(&v, "subject").unwrap_or_default();
    if subject.trim().is_empty() {
        errors.push(FieldError::body(
            "subject",
            "may not be empty",
            v.get("subject").cloned().unwrap_or(Value::Null),
        ));
    }
    let kind = match v.get("type").and_then(Value::as_str) {
        None => ConvType::Email,
        Some(t) => ConvType::parse(t).unwrap_or_else(|| {
            errors.push(FieldError::body(
                "type",
                "must be one of email, chat, phone",
                json!(t),
            ));
            ConvType::Email
        }),
    };
    let status = match v.get("status").and_then(Value::as_str) {
        None => ConvStatus::Active,
        Some(s) => match ConvStatus::parse(s) {
            Some(ConvStatus::Spam) | None => {
                errors.push(FieldError::body(
                    "status",
                    "must be one of active, pending, closed",
                    json!(s),
                ));
                ConvStatus::Active
            }
            Some(s) => s,
        },
    };
    let customer = v.get("customer").cloned().unwrap_or(Value::Null);
    let cust_email = str_field(&customer, "email");
    let cust_id = customer.get("id").and_then(Value::as_i64);
    match (&cust_email, cust_id) {
        (None, None) => errors.push(FieldError::body(
            "customer",
            "may not be null",
            customer.clone(),
        )),
        (Some(e), _) if !valid_email(e) => errors.push(FieldError::body(
            "customer.email",
            "must be a well-formed email address",
            json!(e),
        )),
        _ => {}
    }
    let threads = v
        .get("threads")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if threads.is_empty() {
        errors.push(FieldError::body(
            "threads",
            "may not be empty",
            v.get("threads").cloned().unwrap_or(Value::Null),
        ));
    }
    for (i, t) in threads.iter().enumerate() {
        let ty = t.get("type").and_then(Value::as_str).unwrap_or("");
        if !matches!(ty, "customer" | "reply" | "note" | "chat" | "phone") {
            errors.push(FieldError::body(
                &format!("threads[{i}].type"),
                "must be one of customer, reply, note, chat, phone",
                json!(ty),
            ));
        }
        if t.get("text")
            .and_then(Value::as_str)
            .is_none_or(|s| s.is_empty())
        {
            errors.push(FieldError::body(
                &format!("threads[{i}].text"),
                "may not be empty",
                t.get("text").cloned().unwrap_or(Value::Null),
            ));
        }
        if let Some(e) = t
            .get("customer")
            .and_then(|c| c.get("email"))
            .and_then(Value::as_str)
            && !valid_email(e)
        {
            errors.push(FieldError::body(
                &format!("threads[{i}].customer.email"),
                "must be a well-formed email address",
                json!(e),
            ));
        }
    }
    let created_at = match v.get("createdAt").and_then(Value::as_str) {
        None => now,
        Some(s) => parse_api_date(s).map(|t| t.min(now)).unwrap_or_else(|| {
            errors.push(FieldError::body("createdAt", "Malformed date", json!(s)));
            now
        }),
    };
    let assign_to = v.get("assignTo").and_then(Value::as_i64);
    if let Some(u) = assign_to
        && st.user(u).is_none()
    {
        errors.push(FieldError::body("assignTo", "unknown user", json!(u)));
    }
    let mailbox_id = v.get("mailboxId").and_then(Value::as_i64);
    if mailbox_id.is_none() {
        errors.push(FieldError::body(
            "mailboxId",
            "may not be null",
            v.get("mailboxId").cloned().unwrap_or(Value::Null),
        ));
    }
    // Custom fields: the id must be one of the mailbox's fields; dropdowns take an option id.
    let mut custom = Vec::new();
    if let (Some(fields), Some(mb)) = (
        v.get("fields").and_then(Value::as_array),
        mailbox_id.and_then(|m| st.mailbox(m)),
    ) {
        for (i, f) in fields.iter().enumerate() {
            let fid = f.get("id").and_then(Value::as_i64).unwrap_or(0);
            let value = match f.get("value") {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Number(n)) => n.to_string(),
                _ => String::new(),
            };
            match mb.fields.iter().find(|x| x.id == fid) {
                None => errors.push(FieldError::body(
                    &format!("fields[{i}].id"),
                    "unknown field",
                    json!(fid),
                )),
                Some(def) if def.kind == "dropdown" => {
                    match def.options.iter().find(|o| o.id.to_string() == value) {
                        Some(o) => custom.push(CustomFieldValue {
                            field_id: fid,
                            value,
                            text: o.label.clone(),
                        }),
                        None => errors.push(FieldError::body(
                            &format!("fields[{i}].value"),
                            "not an option of the field",
                            json!(value),
                        )),
                    }
                }
                Some(_) => custom.push(CustomFieldValue {
                    field_id: fid,
                    text: value.clone(),
                    value,
                }),
            }
        }
    }
    if !errors.is_empty() {
        return Reply::validation(errors);
    }
    let mailbox_id = mailbox_id.expect("validated");
    if st.mailbox(mailbox_id).is_none() {
        return Reply::not_found("Mailbox not found");
    }
    let customer_id = match (cust_id, &cust_email) {
        (Some(id), _) if st.customers.contains_key(&id) => id,
        (Some(_), None) => return Reply::not_found("Customer not found"),
        (_, Some(email)) => match find_customer_by_email(st, email) {
            Some(id) => id,
            None => {
                let mut c = new_customer_record(
                    st,
                    now,
                    str_field(&customer, "firstName"),
                    str_field(&customer, "lastName"),
                );
                st.ids.entry += 1;
                c.emails.push(Entry {
                    id: st.ids.entry,
                    value: email.clone(),
                    kind: "work".into(),
                });
                c.refresh_snap();
                let id = c.id;
                st.created.customers.push(CreatedCustomer::of(&c));
                st.insert_customer(c);
                id
            }
        },
        _ => return Reply::not_found("Customer not found"),
    };
    let cust = st.customers[&customer_id].snap.clone();
    let assignee = assign_to.map(|u| st.user_snaps[&u].clone());
    let actor = assignee
        .clone()
        .unwrap_or_else(|| st.user_snaps[&st.users[0].id].clone());
    let mut tag_ids = Vec::new();
    let mut tag_names: Vec<String> = Vec::new();
    for name in v
        .get("tags")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
    {
        let id = match st.tags.iter().find(|t| t.name == name) {
            Some(t) => t.id,
            None => {
                let id = st.tags.iter().map(|t| t.id).max().unwrap_or(7_000_000) + 13;
                st.tags.push(Tag {
                    id,
                    name: name.to_string(),
                    slug: super::text::slug(name),
                    color: "#9DA6B3".into(),
                    created_at: now,
                    updated_at: now,
                });
                st.api_tags.insert(id);
                id
            }
        };
        if !tag_ids.contains(&id) {
            tag_ids.push(id);
            tag_names.push(name.to_string());
        }
    }
    tag_ids.sort_unstable();

    let mut ts = Vec::new();
    for t in &threads {
        st.ids.thread += 1;
        let ty = t.get("type").and_then(Value::as_str).unwrap_or("customer");
        let (kind, by, via) = match ty {
            "customer" => (ThreadType::Customer, cust.clone(), "customer"),
            "chat" => (ThreadType::Chat, cust.clone(), "customer"),
            "note" => (ThreadType::Note, actor.clone(), "user"),
            "phone" => (ThreadType::Phone, actor.clone(), "user"),
            _ => (ThreadType::Message, actor.clone(), "user"),
        };
        ts.push(Thread {
            id: st.ids.thread,
            kind,
            status: "active",
            state: "published",
            action: None,
            body: Body::Given(t.get("text").and_then(Value::as_str).unwrap_or("").into()),
            source_type: "api",
            source_via: via,
            customer: cust.clone(),
            created_by: by,
            assigned_to: assignee.clone(),
            saved_reply_id: None,
            to: if kind == ThreadType::Message {
                cust.email.iter().cloned().collect()
            } else {
                vec![]
            },
            cc: vec![],
            bcc: vec![],
            created_at,
            opened_at: None,
            rating: None,
            attachments: vec![],
        });
    }
    st.ids.conversation += 1;
    st.ids.number += 1;
    let closed = status == ConvStatus::Closed;
    let by_user = ts.first().is_some_and(|t| !t.is_from_customer());
    let mut c = Conversation {
        id: st.ids.conversation,
        number: st.ids.number,
        kind,
        status,
        state: "published",
        subject,
        mailbox_id,
        folder_id: 0,
        assignee,
        created_by: if by_user { actor.clone() } else { cust.clone() },
        primary_customer: cust,
        created_at,
        closed_by: closed.then(|| actor.clone()),
        closed_at: closed.then_some(now),
        user_updated_at: if closed || ts.iter().any(|t| !t.is_from_customer()) {
            now
        } else {
            created_at
        },
        customer_waiting_since: None,
        source_type: "api",
        source_via: if by_user { "user" } else { "customer" },
        tags: tag_ids,
        cc: vec![],
        bcc: vec![],
        custom_fields: custom,
        snooze_until: None,
        priority: None,
        modified: now,
        threads: ts,
    };
    c.recompute_waiting();
    let flag = |k: &str| v.get(k).and_then(Value::as_bool).unwrap_or(false);
    st.created.conversations.push(CreatedConversation {
        id: c.id,
        number: c.number,
        mailbox_id,
        subject: c.subject.clone(),
        customer_email: cust_email.or_else(|| c.primary_customer.email.clone()),
        customer_id,
        tags: tag_names,
        imported: flag("imported"),
        auto_reply: flag("autoReply"),
        text: str_field(&threads[0], "text").unwrap_or_default(),
        created_at: to_datetime(created_at),
    });
    let id = c.id;
    st.insert_conv(c, Some(now));
    created_reply(base, "conversations", id)
}

fn entries_of(
    st: &mut State,
    v: &Value,
    key: &str,
    errors: &mut Vec<FieldError>,
    check_email: bool,
) -> Option<Vec<Entry>> {
    let arr = v.get(key)?.as_array()?;
    let mut out = Vec::new();
    for (i, e) in arr.iter().enumerate() {
        let value = e
            .get("value")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        if check_email && !valid_email(&value) {
            errors.push(FieldError::body(
                &format!("{key}[{i}].value"),
                "must be a well-formed email address",
                json!(value),
            ));
        }
        st.ids.entry += 1;
        out.push(Entry {
            id: st.ids.entry,
            value,
            kind: e
                .get("type")
                .and_then(Value::as_str)
                .unwrap_or("other")
                .to_string(),
        });
    }
    Some(out)
}

/// The documented sizes of the top-level profile fields, in characters.
const PROFILE_SIZES: &[(&str, usize, usize)] = &[
    ("firstName", 1, 40),
    ("lastName", 1, 40),
    ("jobTitle", 0, 60),
    ("location", 0, 60),
    ("organization", 0, 60),
    ("background", 0, 200),
    ("photoUrl", 0, 200),
];

/// Size errors of the profile fields present in `v` (null clears a field: no error).
fn check_profile(v: &Value, errors: &mut Vec<FieldError>) {
    for &(k, min, max) in PROFILE_SIZES {
        if let Some(s) = v.get(k).and_then(Value::as_str)
            && !(min..=max).contains(&s.chars().count())
        {
            errors.push(FieldError::body(
                k,
                &format!("size must be between {min} and {max}"),
                json!(s),
            ));
        }
    }
}

/// Applies the top-level profile fields present in `v` to a customer.
fn apply_profile(c: &mut Customer, v: &Value, replace: bool) {
    let set = |slot: &mut Option<String>, k: &str| match v.get(k) {
        Some(Value::String(s)) => *slot = Some(s.clone()),
        Some(Value::Null) => *slot = None,
        None if replace => *slot = None,
        _ => {}
    };
    set(&mut c.first, "firstName");
    set(&mut c.last, "lastName");
    set(&mut c.job_title, "jobTitle");
    set(&mut c.location, "location");
    set(&mut c.organization, "organization");
    set(&mut c.background, "background");
    set(&mut c.age, "age");
    set(&mut c.photo_url, "photoUrl");
    if let Some(g) = v.get("gender").and_then(Value::as_str) {
        c.gender = match g {
            "male" => "male",
            "female" => "female",
            _ => "unknown",
        };
    }
}

/// `POST /v2/customers`.
pub fn create_customer(st: &mut State, base: &str, body: &[u8], now: Ts) -> Reply {
    let v = match parse_body(body) {
        Ok(v) => v,
        Err(e) => return e,
    };
    let mut errors = Vec::new();
    check_profile(&v, &mut errors);
    let emails = entries_of(st, &v, "emails", &mut errors, true).unwrap_or_default();
    let phones = entries_of(st, &v, "phones", &mut errors, false).unwrap_or_default();
    let chats = entries_of(st, &v, "chats", &mut errors, false).unwrap_or_default();
    let social = entries_of(st, &v, "socialProfiles", &mut errors, false).unwrap_or_default();
    if str_field(&v, "firstName").is_none()
        && str_field(&v, "lastName").is_none()
        && emails.is_empty()
    {
        errors.push(FieldError::body(
            "firstName",
            "may not be empty",
            Value::Null,
        ));
    }
    if !errors.is_empty() {
        return Reply::validation(errors);
    }
    let mut c = new_customer_record(st, now, None, None);
    apply_profile(&mut c, &v, false);
    c.emails = emails;
    c.phones = phones;
    c.chats = chats;
    c.social_profiles = social;
    if let Some(ws) = v.get("websites").and_then(Value::as_array) {
        for w in ws {
            st.ids.entry += 1;
            c.websites.push(Website {
                id: st.ids.entry,
                value: w
                    .get("value")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string(),
            });
        }
    }
    if let Some(a) = v.get("address").filter(|a| a.is_object()) {
        c.address = Some(Address {
            city: str_field(a, "city").unwrap_or_default(),
            state: str_field(a, "state"),
            postal_code: str_field(a, "postalCode"),
            country: str_field(a, "country").unwrap_or_default(),
            lines: a
                .get("lines")
                .and_then(Value::as_array)
                .map(|l| {
                    l.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default(),
        });
    }
    c.refresh_snap();
    let id = c.id;
    st.created.customers.push(CreatedCustomer::of(&c));
    st.insert_customer(c);
    created_reply(base, "customers", id)
}

/// `PUT /v2/customers/{id}` (replace the profile) and `PATCH` (a JSON Patch list of
/// `{op, path, value}` or a partial object).
pub fn update_customer(st: &mut State, id: i64, body: &[u8], now: Ts, put: bool) -> Reply {
    if !st.customers.contains_key(&id) {
        return Reply::not_found("Customer not found");
    }
    let sent = match parse_body(body) {
        Ok(v) => v,
        Err(e) => return e,
    };
    // A JSON Patch list becomes a partial object.
    let v = match sent.clone() {
        Value::Array(ops) => {
            let mut m = serde_json::Map::new();
            for (i, op) in ops.iter().enumerate() {
                let path = op.get("path").and_then(Value::as_str).unwrap_or("");
                let name = path.trim_start_matches('/');
                if name.is_empty() || name.contains('/') {
                    return Reply::validation(vec![FieldError::body(
                        &format!("[{i}].path"),
                        "unsupported path",
                        json!(path),
                    )]);
                }
                let value = match op.get("op").and_then(Value::as_str) {
                    Some("remove") => Value::Null,
                    _ => op.get("value").cloned().unwrap_or(Value::Null),
                };
                m.insert(name.to_string(), value);
            }
            Value::Object(m)
        }
        other => other,
    };
    let mut errors = Vec::new();
    check_profile(&v, &mut errors);
    let emails = entries_of(st, &v, "emails", &mut errors, true);
    if !errors.is_empty() {
        return Reply::validation(errors);
    }
    st.created.customer_updates.push(CustomerUpdate {
        id,
        method: if put { "PUT" } else { "PATCH" }.into(),
        body: sent,
    });
    st.update_customer(id, now, |c| {
        apply_profile(c, &v, put);
        if let Some(e) = emails {
            c.emails = e;
        }
    });
    Reply::empty(204)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_validation() {
        for ok in ["a@b.co", "jose.garcia+x@example.org", "ü@münchen.example"] {
            assert!(valid_email(ok), "{ok}");
        }
        for bad in [
            "", "a", "a@b", "@b.co", "a@@b.co", "a b@c.co", "a@b.co.", "a@.b",
        ] {
            assert!(!valid_email(bad), "{bad}");
        }
    }
}
