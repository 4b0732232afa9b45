//! The ground truth: the rows of the 11 tables of the data contract, built straight from the
//! account model (never from the API's JSON), so that an extractor can be checked against an
//! independent reference.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use super::dates::{Ts, fmt_ts, friendly};
use super::model::*;
use super::state::State;

pub type Row = Map<String, Value>;

fn ts(t: Ts) -> Value {
    Value::String(fmt_ts(t))
}

fn opt_ts(t: Option<Ts>) -> Value {
    t.map(ts).unwrap_or(Value::Null)
}

fn opt_s(s: &Option<String>) -> Value {
    s.as_ref()
        .map(|s| Value::String(s.clone()))
        .unwrap_or(Value::Null)
}

/// Which members of the person object a context of the API carries.
#[derive(Clone, Copy)]
enum Shows {
    /// id, type, first, last, email
    Typed,
    /// id, first, last, email, photoUrl (a thread's customer)
    Photo,
}

fn person(p: &Person, shows: Shows) -> Value {
    let (ty, photo) = match shows {
        Shows::Typed => (json!(p.kind.as_str()), Value::Null),
        Shows::Photo => (Value::Null, opt_s(&p.photo_url)),
    };
    json!({"id": p.id, "type": ty, "first": opt_s(&p.first), "last": opt_s(&p.last), "email": opt_s(&p.email), "photo_url": photo})
}

fn opt_person(p: &Option<PersonRef>, shows: Shows) -> Value {
    p.as_ref().map(|p| person(p, shows)).unwrap_or(Value::Null)
}

fn obj(v: Value) -> Row {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

fn thread_row(st: &State, conv_id: i64, t: &Thread) -> Row {
    obj(json!({
        "action": t.action.as_ref().map(|a| json!({"type": a.kind, "text": a.text})).unwrap_or(Value::Null),
        "assigned_to": opt_person(&t.assigned_to, Shows::Typed),
        "attachments": t.attachments.iter().map(|a| json!({"id": a.id, "filename": a.filename, "mime_type": a.mime_type, "width": a.width, "height": a.height, "size": a.size})).collect::<Vec<_>>(),
        "bcc": t.bcc,
        "body": t.body_text(st.seed),
        "cc": t.cc,
        "conversation_id": conv_id,
        "created_at": ts(t.created_at),
        "created_by": person(&t.created_by, Shows::Typed),
        "customer": person(&t.customer, Shows::Photo),
        "id": t.id,
        "opened_at": opt_ts(t.opened_at),
        "saved_reply_id": t.saved_reply_id,
        "source": {"type": t.source_type, "via": t.source_via},
        "state": t.state,
        "status": t.status,
        "to": t.to,
        "type": t.kind.as_str(),
    }))
}

fn conversation_row(st: &State, c: &Conversation) -> Row {
    let mb = st.mailbox(c.mailbox_id);
    let custom_fields: Vec<Value> = c
        .custom_fields
        .iter()
        .map(|v| {
            let name = mb
                .and_then(|m| m.fields.iter().find(|f| f.id == v.field_id))
                .map(|f| f.name.clone());
            json!({"id": v.field_id, "name": name, "value": v.value, "text": v.text})
        })
        .collect();
    let tags: Vec<Value> = c
        .tags
        .iter()
        .filter_map(|id| st.tag(*id))
        .map(|t| json!({"id": t.id, "color": t.color, "tag": t.name}))
        .collect();
    let waiting = c
        .customer_waiting_since
        .map(|(t, from)| json!({"time": fmt_ts(t), "friendly": friendly(t), "latest_reply_from": from}))
        .unwrap_or(Value::Null);
    let updated = match c.customer_waiting_since {
        Some((t, _)) if t > c.user_updated_at => t,
        _ => c.user_updated_at,
    };
    obj(json!({
        "assignee": opt_person(&c.assignee, Shows::Typed),
        "bcc": c.bcc,
        "cc": c.cc,
        "closed_at": opt_ts(c.closed_at),
        "closed_by": c.closed_by.as_ref().map(|p| p.id),
        "created_at": ts(c.created_at),
        "created_by": person(&c.created_by, Shows::Typed),
        "custom_fields": custom_fields,
        "customer_waiting_since": waiting,
        "folder_id": c.folder_id,
        "id": c.id,
        "mailbox_id": c.mailbox_id,
        "number": c.number,
        "preview": c.preview(st.seed),
        "primary_customer": person(&c.primary_customer, Shows::Typed),
        "source": {"type": c.source_type, "via": c.source_via},
        "state": c.state,
        "status": c.status.as_str(),
        "subject": c.subject,
        "tags": tags,
        "threads": c.threads.len(),
        "type": c.kind.as_str(),
        "updated_at": ts(updated),
        "user_updated_at": ts(c.user_updated_at),
    }))
}

fn entries(v: &[Entry]) -> Value {
    Value::Array(
        v.iter()
            .map(|e| json!({"id": e.id, "value": e.value, "type": e.kind}))
            .collect(),
    )
}

fn customer_row(c: &Customer) -> Row {
    obj(json!({
        "address": c.address.as_ref().map(|a| json!({"city": a.city, "state": a.state, "postal_code": a.postal_code, "country": a.country, "lines": a.lines})),
        "age": c.age,
        "background": c.background,
        "chats": entries(&c.chats),
        "created_at": ts(c.created_at),
        "emails": entries(&c.emails),
        "first_name": c.first,
        "gender": c.gender,
        "id": c.id,
        "job_title": c.job_title,
        "last_name": c.last,
        "location": c.location,
        "organization": c.organization,
        "phones": entries(&c.phones),
        "photo_type": c.photo_type,
        "photo_url": c.photo_url,
        "properties": c.properties.iter().map(|p| json!({"type": p.kind, "slug": p.slug, "name": p.name, "value": p.value, "text": p.text})).collect::<Vec<_>>(),
        "social_profiles": entries(&c.social_profiles),
        "updated_at": ts(c.updated_at),
        "websites": c.websites.iter().map(|w| json!({"id": w.id, "value": w.value})).collect::<Vec<_>>(),
    }))
}

/// All 11 tables, rows ordered by primary key.
pub fn tables(st: &State) -> BTreeMap<String, Vec<Row>> {
    crate::contract::TABLES
        .iter()
        .map(|t| (t.name.to_string(), table(st, t.name).unwrap_or_default()))
        .collect()
}

fn sorted_convs(st: &State) -> Vec<&Conversation> {
    let mut v: Vec<&Conversation> = st.convs.values().collect();
    v.sort_by_key(|c| c.id);
    v
}

fn sorted_mailboxes(st: &State) -> Vec<&Mailbox> {
    let mut v: Vec<&Mailbox> = st.mailboxes.iter().collect();
    v.sort_by_key(|m| m.id);
    v
}

/// Calls `f` with each row of a table in primary-key order, building one row at a time for
/// the large tables (constant memory). False for an unknown table name.
pub fn for_each_row(st: &State, name: &str, f: &mut dyn FnMut(Row)) -> bool {
    match name {
        "conversations" => sorted_convs(st)
            .into_iter()
            .for_each(|c| f(conversation_row(st, c))),
        "conversation_threads" => {
            let mut ids: Vec<(i64, i64, usize)> = Vec::new();
            for c in st.convs.values() {
                for (i, t) in c.threads.iter().enumerate() {
                    ids.push((t.id, c.id, i));
                }
            }
            ids.sort_unstable();
            for (_, cid, i) in ids {
                f(thread_row(st, cid, &st.convs[&cid].threads[i]));
            }
        }
        "customers" => {
            let mut ids: Vec<i64> = st.customers.keys().copied().collect();
            ids.sort_unstable();
            ids.iter().for_each(|id| f(customer_row(&st.customers[id])));
        }
        other => match table(st, other) {
            Some(rows) => rows.into_iter().for_each(f),
            None => return false,
        },
    }
    true
}

/// One table's rows, ordered by primary key (`None` for an unknown table name).
pub fn table(st: &State, name: &str) -> Option<Vec<Row>> {
    let rows = match name {
        "conversations" => sorted_convs(st).into_iter().map(|c| conversation_row(st, c)).collect(),
        "conversation_threads" => {
            let mut threads: Vec<(i64, Row)> = Vec::new();
            for c in st.convs.values() {
                for t in &c.threads {
                    threads.push((t.id, thread_row(st, c.id, t)));
                }
            }
            threads.sort_by_key(|(id, _)| *id);
            threads.into_iter().map(|(_, r)| r).collect()
        }
        "happiness_ratings_report" => {
            let mut ratings = Vec::new();
            for c in sorted_convs(st) {
                for t in &c.threads {
                    if let Some(r) = &t.rating {
                        ratings.push(((c.id, r.created_at, r.customer.id), obj(json!({
                            "conversation_id": c.id,
                            "rating_comments": r.comments,
                            "rating_created_at": fmt_ts(r.created_at),
                            "rating_customer_id": r.customer.id,
                            "rating_customer_name": r.customer.full_name(),
                            "rating_id": r.value,
                            "rating_user_id": t.created_by.id,
                            "rating_user_name": t.created_by.full_name(),
                            "thread_created_at": fmt_ts(t.created_at),
                            "thread_id": t.id,
                            "type": c.kind.as_str(),
                            "rating": rating_word(r.value),
                        }))));
                    }
                }
            }
            ratings.sort_by_key(|(k, _)| *k);
            ratings.into_iter().map(|(_, r)| r).collect()
        }
        "customers" => {
            let mut ids: Vec<i64> = st.customers.keys().copied().collect();
            ids.sort_unstable();
            ids.iter().map(|id| customer_row(&st.customers[id])).collect()
        }
        "mailboxes" => sorted_mailboxes(st)
            .into_iter()
            .map(|m| obj(json!({"created_at": ts(m.created_at), "email": m.email, "id": m.id, "name": m.name, "slug": m.slug, "updated_at": ts(m.updated_at)})))
            .collect(),
        "mailbox_fields" => {
            let mut fields = Vec::new();
            for m in sorted_mailboxes(st) {
                for f in &m.fields {
                    fields.push((f.id, obj(json!({
                        "id": f.id, "mailbox_id": m.id, "name": f.name,
                        "options": f.options.iter().map(|o| json!({"id": o.id, "order": o.order, "label": o.label})).collect::<Vec<_>>(),
                        "order": f.order, "required": f.required, "type": f.kind,
                    }))));
                }
            }
            fields.sort_by_key(|(id, _)| *id);
            fields.into_iter().map(|(_, r)| r).collect()
        }
        "mailbox_folders" => {
            let mut folders = Vec::new();
            for m in sorted_mailboxes(st) {
                for f in &m.folders {
                    folders.push((f.id, obj(json!({
                        "active_count": f.active_count, "id": f.id, "mailbox_id": m.id, "name": f.name,
                        "total_count": f.total_count, "type": f.kind.as_str(), "updated_at": ts(f.updated_at), "user_id": f.user_id,
                    }))));
                }
            }
            folders.sort_by_key(|(id, _)| *id);
            folders.into_iter().map(|(_, r)| r).collect()
        }
        "users" => {
            let mut users: Vec<&User> = st.users.iter().collect();
            users.sort_by_key(|u| u.id);
            users
                .iter()
                .map(|u| obj(json!({"created_at": ts(u.created_at), "email": u.email, "first_name": u.first, "id": u.id, "last_name": u.last, "photo_url": u.photo_url, "role": u.role, "timezone": u.timezone, "type": "user", "updated_at": ts(u.updated_at)})))
                .collect()
        }
        "teams" | "team_members" => {
            let mut teams: Vec<&Team> = st.teams.iter().collect();
            teams.sort_by_key(|t| t.id);
            if name == "teams" {
                teams
                    .iter()
                    .map(|t| obj(json!({"created_at": ts(t.created_at), "id": t.id, "initials": t.initials, "mention": t.mention, "name": t.name, "photo_url": t.photo_url, "timezone": t.timezone, "updated_at": ts(t.updated_at)})))
                    .collect()
            } else {
                let mut members = Vec::new();
                for t in teams {
                    let mut ms = t.members.clone();
                    ms.sort_unstable();
                    for u in ms {
                        members.push(obj(json!({"team_id": t.id, "user_id": u})));
                    }
                }
                members
            }
        }
        "workflows" => {
            let mut wfs: Vec<&Workflow> = st.workflows.iter().collect();
            wfs.sort_by_key(|w| w.id);
            wfs.iter()
                .map(|w| obj(json!({"created_at": ts(w.created_at), "id": w.id, "mailbox_id": w.mailbox_id, "modified_at": ts(w.modified_at), "name": w.name, "order": w.order, "status": w.status, "type": w.kind})))
                .collect()
        }
        _ => return None,
    };
    Some(rows)
}

/// Reads a dotted path of a row.
pub fn path<'a>(row: &'a Row, p: &str) -> Option<&'a Value> {
    let mut parts = p.split('.');
    let mut v = row.get(parts.next()?)?;
    for part in parts {
        v = v.get(part)?;
    }
    (!v.is_null()).then_some(v)
}

#[cfg(test)]
mod tests {
    use super::super::contract::{contract_columns, joins, primary_key};
    use super::super::generator::{GenParams, generate};
    use super::*;
    use std::collections::HashSet;

    fn truth(n: usize) -> BTreeMap<String, Vec<Row>> {
        truth_seeded(7, n)
    }

    fn truth_seeded(seed: u64, n: usize) -> BTreeMap<String, Vec<Row>> {
        let st = generate(&GenParams {
            seed,
            conversations: n,
            customers: (n * 6 / 10).max(20),
            mailboxes: 3,
            users: 12,
            teams: 3,
            start: 1_780_315_200,
        });
        tables(&st)
    }

    #[test]
    fn every_row_has_exactly_the_contract_columns() {
        let t = truth(300);
        assert_eq!(t.len(), 11);
        for (name, rows) in &t {
            assert!(!rows.is_empty(), "{name} is empty");
            let want: HashSet<&str> = contract_columns(name).iter().copied().collect();
            for r in rows {
                let got: HashSet<&str> = r.keys().map(String::as_str).collect();
                assert_eq!(got, want, "{name}");
            }
        }
        // Person objects carry all six members, snake_case.
        let r = &t["conversation_threads"][0];
        let keys: HashSet<&str> = r["customer"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            keys,
            ["id", "type", "first", "last", "email", "photo_url"]
                .into_iter()
                .collect()
        );
        assert!(t["conversations"].iter().any(|r| {
            r["customer_waiting_since"]
                .get("latest_reply_from")
                .is_some()
        }));
        assert!(
            t["customers"]
                .iter()
                .any(|r| r["address"].get("postal_code").is_some())
        );
    }

    #[test]
    fn primary_keys_are_unique() {
        let t = truth(1500);
        for (name, rows) in &t {
            let pk = primary_key(name);
            let mut seen = HashSet::new();
            for r in rows {
                let key: Vec<String> = pk.iter().map(|c| r[*c].to_string()).collect();
                assert!(pk.iter().all(|c| !r[*c].is_null()), "{name}: null key");
                assert!(seen.insert(key.clone()), "{name}: duplicate key {key:?}");
            }
        }
    }

    #[test]
    fn every_documented_join_matches_rows() {
        // The default demo account (seed 1, 200 conversations) and a larger one.
        for (seed, n) in [(1, 200), (7, 600), (3, 60)] {
            joins_match(&truth_seeded(seed, n));
        }
    }

    fn joins_match(t: &BTreeMap<String, Vec<Row>>) {
        for (lt, lp, rt, rp) in joins() {
            let left: HashSet<String> = t[lt]
                .iter()
                .filter_map(|r| path(r, lp))
                .map(|v| v.to_string())
                .collect();
            let right: HashSet<String> = t[rt]
                .iter()
                .filter_map(|r| path(r, rp))
                .map(|v| v.to_string())
                .collect();
            assert!(
                left.intersection(&right).next().is_some(),
                "{lt}.{lp} = {rt}.{rp} matches nothing"
            );
        }
        // The stronger, per-conversation versions of the thread joins hold too.
        let convs: BTreeMap<i64, &Row> = t["conversations"]
            .iter()
            .map(|r| (r["id"].as_i64().unwrap(), r))
            .collect();
        let same_conv = |lp: &str, rp: &str| {
            t["conversation_threads"].iter().any(|th| {
                let c = convs[&th["conversation_id"].as_i64().unwrap()];
                matches!((path(th, lp), path(c, rp)), (Some(a), Some(b)) if a == b)
            })
        };
        for (lt, lp, rt, rp) in joins() {
            if lt == "conversation_threads" && rt == "conversations" && lp != "conversation_id" {
                assert!(
                    same_conv(lp, rp),
                    "no thread with {lp} = its conversation's {rp}"
                );
            }
        }
        // Folder ids are real folders of the same mailbox.
        let folders: HashSet<(i64, i64)> = t["mailbox_folders"]
            .iter()
            .map(|r| (r["id"].as_i64().unwrap(), r["mailbox_id"].as_i64().unwrap()))
            .collect();
        for c in &t["conversations"] {
            assert!(folders.contains(&(
                c["folder_id"].as_i64().unwrap(),
                c["mailbox_id"].as_i64().unwrap()
            )));
        }
    }

    #[test]
    fn derived_updated_at_is_the_later_time() {
        let t = truth(300);
        for c in &t["conversations"] {
            let u = c["user_updated_at"].as_str().unwrap();
            let w = c["customer_waiting_since"]
                .get("time")
                .and_then(Value::as_str)
                .unwrap_or("");
            assert_eq!(c["updated_at"].as_str().unwrap(), u.max(w));
        }
    }
}
