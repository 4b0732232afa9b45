//! The support metrics views (conversation_metrics, productivity, busiest_times, busiest_day,
//! channel_metrics, tag_trends, productivity_between) and `report productivity`: every metric
//! of every conversation of a synced simulator account equals what this test computes itself
//! from the simulator's ground truth (in Rust, never with the views' SQL), and the aggregates
//! equal the same computation grouped; hand-checked numbers on a small fixed account.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use chrono::{DateTime, Datelike, NaiveDate, Timelike, Utc};
use common::*;
use helpscout_sim::MutationPlan;
use serde_json::{Map, Value};

/// Rows equal cell by cell, numbers within a relative 1e-9 (interpolated quantiles may differ
/// from ours in the last digit).
fn assert_close(got: &[Vec<String>], want: &[Vec<String>], what: &str) {
    let same = |a: &str, b: &str| {
        a == b || matches!((a.parse::<f64>(), b.parse::<f64>()), (Ok(x), Ok(y)) if (x - y).abs() <= 1e-9 * x.abs().max(y.abs()))
    };
    assert_eq!(got.len(), want.len(), "{what}: {got:?}\n{want:?}");
    for (g, w) in got.iter().zip(want) {
        assert!(g.len() == w.len() && g.iter().zip(w).all(|(a, b)| same(a, b)), "{what}:\n got {g:?}\nwant {w:?}");
    }
}


// ---- The ground truth, computed here ----

fn at(v: &Value) -> Option<DateTime<Utc>> {
    v.as_str().map(|s| DateTime::parse_from_rfc3339(s).expect("an RFC 3339 time").with_timezone(&Utc))
}

fn text(v: Option<&Value>) -> String {
    v.and_then(Value::as_str).unwrap_or_default().to_string()
}

fn naive(t: Option<DateTime<Utc>>) -> String {
    t.map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string()).unwrap_or_default()
}

fn opt<T: ToString>(v: Option<T>) -> String {
    v.map(|v| v.to_string()).unwrap_or_default()
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Role {
    Reply,
    CustomerMessage,
    Note,
    Other,
}

struct Thread {
    id: i64,
    at: DateTime<Utc>,
    author: Option<i64>,
    role: Role,
    closes: bool,
}

/// Help Scout's definitions, as README "Support metrics" states them.
fn thread(row: &Map<String, Value>) -> Thread {
    let published = row.get("state").and_then(Value::as_str).unwrap_or("published") == "published";
    let kind = text(row.get("type"));
    let by = row.get("created_by");
    let author_type = text(by.and_then(|b| b.get("type")));
    let role = if !published {
        Role::Other
    } else if kind == "note" {
        Role::Note
    } else if kind == "lineitem" {
        Role::Other
    } else if author_type == "user" && matches!(kind.as_str(), "message" | "chat" | "phone") {
        Role::Reply
    } else if author_type == "customer" {
        Role::CustomerMessage
    } else {
        Role::Other
    };
    Thread {
        id: row["id"].as_i64().unwrap(),
        at: at(&row["created_at"]).unwrap(),
        author: by.and_then(|b| b.get("id")).and_then(Value::as_i64),
        role,
        closes: published && text(row.get("status")) == "closed",
    }
}

/// One conversation's metrics, in the view's column order.
#[derive(Debug, Clone)]
struct Metrics {
    id: i64,
    channel: String,
    mailbox_id: i64,
    customer_email: Option<String>,
    started_by_user: Option<i64>,
    created: DateTime<Utc>,
    first_customer: Option<DateTime<Utc>>,
    first_reply: Option<(DateTime<Utc>, Option<i64>)>,
    replies: Vec<(DateTime<Utc>, Option<i64>)>,
    customer_messages: Vec<DateTime<Utc>>,
    notes: Vec<(DateTime<Utc>, Option<i64>)>,
    closed: Option<DateTime<Utc>>,
    closed_by: Option<i64>,
    resolved: bool,
    replies_to_resolve: Option<i64>,
    reopened: bool,
    duration: Option<i64>,
    tags: Vec<String>,
    status: String,
}

impl Metrics {
    fn first_response_seconds(&self) -> Option<i64> {
        Some((self.first_reply?.0 - self.first_customer?).num_seconds())
    }

    fn resolution_seconds(&self) -> Option<i64> {
        self.resolved.then(|| (self.closed.unwrap() - self.created).num_seconds())
    }

    fn resolved_on_first_reply(&self) -> bool {
        self.resolved && self.replies_to_resolve == Some(1)
    }

    /// The row as the view's cells print (see `VIEW_COLUMNS`).
    fn cells(&self) -> Vec<String> {
        vec![
            self.id.to_string(),
            self.channel.clone(),
            self.mailbox_id.to_string(),
            self.status.clone(),
            self.customer_email.clone().unwrap_or_default(),
            if self.started_by_user.is_some() { "user" } else { "customer" }.into(),
            opt(self.started_by_user),
            naive(Some(self.created)),
            naive(self.first_customer),
            naive(self.first_reply.map(|r| r.0)),
            opt(self.first_response_seconds()),
            opt(self.first_reply.and_then(|r| r.1)),
            self.replies.len().to_string(),
            self.customer_messages.len().to_string(),
            self.notes.len().to_string(),
            self.resolved.to_string(),
            naive(self.closed),
            opt(self.closed.and(self.closed_by)),
            opt(self.resolution_seconds()),
            opt(self.replies_to_resolve),
            self.resolved_on_first_reply().to_string(),
            self.reopened.to_string(),
            opt(self.duration),
            self.tags.join(" | "),
        ]
    }
}

const VIEW_COLUMNS: &str = "conversation_id, channel, mailbox_id, status, customer_email, started_by, started_by_user_id, \
    created_at_utc, first_customer_message_utc, first_reply_utc, first_response_seconds, first_reply_user_id, replies_sent, \
    customer_messages, notes, resolved, closed_at_utc, closed_by_user_id, resolution_seconds, replies_to_resolve, \
    resolved_on_first_reply, reopened, duration_seconds, array_to_string(tags, ' | ') AS tags";

fn truth_metrics(sim: &helpscout_sim::Simulator) -> BTreeMap<i64, Metrics> {
    let mut threads: BTreeMap<i64, Vec<Thread>> = BTreeMap::new();
    for row in sim.ground_truth_table("conversation_threads").unwrap() {
        threads.entry(row["conversation_id"].as_i64().unwrap()).or_default().push(thread(&row));
    }
    let mut out = BTreeMap::new();
    for c in sim.ground_truth_table("conversations").unwrap() {
        let status = text(c.get("status"));
        let state = c.get("state").and_then(Value::as_str).unwrap_or("published");
        if status == "spam" || state == "deleted" || state == "draft" {
            continue;
        }
        let id = c["id"].as_i64().unwrap();
        let mut ts: Vec<&Thread> = threads.get(&id).map(|v| v.iter().collect()).unwrap_or_default();
        ts.sort_by_key(|t| (t.at, t.id));
        let of = |role: Role| ts.iter().filter(move |t| t.role == role);
        let first_customer = of(Role::CustomerMessage).map(|t| t.at).min();
        let first_reply = first_customer.and_then(|fc| of(Role::Reply).find(|t| t.at >= fc).map(|t| (t.at, t.author)));
        let replies: Vec<_> = of(Role::Reply).map(|t| (t.at, t.author)).collect();
        let closed = if status == "closed" { at(&c["closed_at"]) } else { None };
        let until_closed = closed.map(|c| replies.iter().filter(|r| r.0 <= c).count() as i64).filter(|n| *n > 0);
        let (resolved, replies_to_resolve) = (until_closed.is_some(), until_closed);
        let first_closing = ts.iter().filter(|t| t.closes).map(|t| t.at).min();
        let first_close = match (first_closing, closed) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let reopened = first_close.is_some_and(|fc| of(Role::CustomerMessage).any(|t| t.at > fc));
        let messages: Vec<DateTime<Utc>> = ts.iter().filter(|t| matches!(t.role, Role::Reply | Role::CustomerMessage)).map(|t| t.at).collect();
        let duration = messages.first().zip(messages.iter().max()).map(|(a, b)| (*b - *a).num_seconds());
        let created_by = c.get("created_by");
        let started_by_user = (text(created_by.and_then(|b| b.get("type"))) == "user")
            .then(|| created_by.and_then(|b| b.get("id")).and_then(Value::as_i64))
            .flatten();
        out.insert(
            id,
            Metrics {
                id,
                channel: text(c.get("type")),
                mailbox_id: c["mailbox_id"].as_i64().unwrap(),
                customer_email: c.get("primary_customer").and_then(|p| p.get("email")).and_then(Value::as_str).map(str::to_lowercase),
                started_by_user,
                created: at(&c["created_at"]).unwrap(),
                first_customer,
                first_reply,
                customer_messages: of(Role::CustomerMessage).map(|t| t.at).collect(),
                notes: of(Role::Note).map(|t| (t.at, t.author)).collect(),
                replies,
                closed,
                closed_by: c.get("closed_by").and_then(Value::as_i64).filter(|id| *id != 0),
                resolved,
                replies_to_resolve,
                reopened,
                duration,
                tags: c.get("tags").and_then(Value::as_array).map(|a| a.iter().map(|t| text(t.get("tag"))).collect()).unwrap_or_default(),
                status,
            },
        );
    }
    out
}

/// quantile_cont: linear interpolation between the closest ranks.
fn quantile(values: &[i64], q: f64) -> Option<f64> {
    let mut v: Vec<i64> = values.to_vec();
    v.sort_unstable();
    if v.is_empty() {
        return None;
    }
    let h = (v.len() - 1) as f64 * q;
    let (lo, hi) = (h.floor() as usize, h.ceil() as usize);
    Some(v[lo] as f64 + (h - lo as f64) * (v[hi] - v[lo]) as f64)
}

fn month(t: DateTime<Utc>) -> NaiveDate {
    NaiveDate::from_ymd_opt(t.year(), t.month(), 1).unwrap()
}

/// DuckDB prints a DOUBLE with the shortest spelling that reads back the same.
fn double(v: Option<f64>) -> String {
    v.map(|f| if f.fract() == 0.0 { format!("{f:.1}") } else { f.to_string() }).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_metric_of_every_conversation_equals_the_ground_truth() {
    let sim = simulator(500, 21).await;
    let dir = tempfile::tempdir().unwrap();
    let settings = settings(&sim, dir.path());
    sync_ok(&settings).await;
    // Replies reopen closed conversations; workflows close some without a closing thread.
    sim.advance_clock(chrono::Duration::hours(3));
    sim.mutate(&MutationPlan { seed: 9, replies: 80, workflow_changes: 60, new_conversations: 20, merges: 2, deletions: 2, ..Default::default() });
    sync_ok(&settings).await;
    let path = duckdb_path(dir.path());
    let truth = truth_metrics(&sim);

    // Every kind of case occurs, or the comparison proves little.
    let all: Vec<&Metrics> = truth.values().collect();
    for (what, n) in [
        ("resolved", all.iter().filter(|m| m.resolved).count()),
        ("closed without a reply", all.iter().filter(|m| m.closed.is_some() && !m.resolved).count()),
        ("reopened", all.iter().filter(|m| m.reopened).count()),
        ("resolved on first reply", all.iter().filter(|m| m.resolved_on_first_reply()).count()),
        ("never answered", all.iter().filter(|m| m.first_customer.is_some() && m.first_reply.is_none()).count()),
        ("started by a user", all.iter().filter(|m| m.started_by_user.is_some()).count()),
        ("with notes", all.iter().filter(|m| !m.notes.is_empty()).count()),
    ] {
        assert!(n > 0, "the account has a conversation {what}");
    }

    let got = rows(&path, &format!("SELECT {VIEW_COLUMNS} FROM conversation_metrics ORDER BY conversation_id"));
    let want: Vec<Vec<String>> = truth.values().map(Metrics::cells).collect();
    assert_eq!(got.len(), want.len(), "one row per conversation, spam left out");
    for (g, w) in got.iter().zip(&want) {
        assert_eq!(g, w, "conversation {}", w[0]);
    }

    // Company per month: the same events, grouped here.
    let mut by_month: BTreeMap<NaiveDate, (BTreeSet<i64>, usize, usize, Vec<i64>, Vec<i64>, Vec<i64>, usize)> = BTreeMap::new();
    for m in &all {
        by_month.entry(month(m.created)).or_default().0.insert(m.id);
        for r in &m.replies {
            by_month.entry(month(r.0)).or_default().1 += 1;
        }
        for t in &m.customer_messages {
            by_month.entry(month(*t)).or_default().2 += 1;
        }
        if let (Some(fr), Some(s)) = (m.first_reply, m.first_response_seconds()) {
            by_month.entry(month(fr.0)).or_default().3.push(s);
        }
        if let Some(s) = m.resolution_seconds() {
            let e = by_month.entry(month(m.closed.unwrap())).or_default();
            e.4.push(s);
            e.5.push(m.replies_to_resolve.unwrap());
            e.6 += m.resolved_on_first_reply() as usize;
        }
        if let Some(c) = m.closed {
            by_month.entry(month(c)).or_default();
        }
    }
    let got = rows(
        &path,
        "SELECT period_start, new_conversations, replies_sent, messages_received, mean_first_response_seconds, median_first_response_seconds, \
         p90_first_response_seconds, resolved, mean_resolution_seconds, median_resolution_seconds, p90_resolution_seconds, mean_replies_to_resolve, \
         resolved_on_first_reply_pct FROM productivity WHERE period = 'month' AND dimension = 'company' AND \
         (new_conversations + replies_sent + messages_received + resolved + coalesce(median_first_response_seconds, 0)) > 0 \
         ORDER BY period_start",
    );
    let want: Vec<Vec<String>> = by_month
        .iter()
        .map(|(month, (new, replies, received, first, resolution, to_resolve, first_reply))| {
            let mean = (!to_resolve.is_empty()).then(|| (to_resolve.iter().sum::<i64>() as f64 / to_resolve.len() as f64 * 100.0).round() / 100.0);
            let pct = (!resolution.is_empty()).then(|| (100.0 * *first_reply as f64 / resolution.len() as f64 * 10.0).round() / 10.0);
            let avg = |v: &[i64]| (!v.is_empty()).then(|| (v.iter().sum::<i64>() as f64 / v.len() as f64 * 10.0).round() / 10.0);
            vec![
                month.to_string(),
                new.len().to_string(),
                replies.to_string(),
                received.to_string(),
                double(avg(first)),
                double(quantile(first, 0.5)),
                double(quantile(first, 0.9)),
                resolution.len().to_string(),
                double(avg(resolution)),
                double(quantile(resolution, 0.5)),
                double(quantile(resolution, 0.9)),
                double(mean),
                double(pct),
            ]
        })
        .filter(|r| r[1..4] != ["0", "0", "0"] || !r[5].is_empty() || r[7] != "0")
        .collect();
    assert_close(&got, &want, "company per month");

    // Per user over everything: replies sent, conversations resolved (closed by them), the
    // conversations they started, replied to, noted or closed, the customers they replied to.
    let mut users: BTreeMap<i64, (usize, usize, BTreeSet<i64>, BTreeSet<String>, Vec<i64>)> = BTreeMap::new();
    for m in &all {
        let touch = |user: Option<i64>, users: &mut BTreeMap<i64, (usize, usize, BTreeSet<i64>, BTreeSet<String>, Vec<i64>)>| {
            if let Some(u) = user {
                let e = users.entry(u).or_default();
                e.2.insert(m.id);
            }
        };
        touch(m.started_by_user, &mut users);
        for r in &m.replies {
            touch(r.1, &mut users);
            let e = users.get_mut(&r.1.unwrap()).unwrap();
            e.0 += 1;
            if let Some(email) = &m.customer_email {
                e.3.insert(email.clone());
            }
        }
        for n in &m.notes {
            touch(n.1, &mut users);
        }
        if m.closed.is_some() {
            touch(m.closed_by, &mut users);
            if m.resolved {
                users.get_mut(&m.closed_by.unwrap()).unwrap().1 += 1;
            }
        }
        if let (Some((_, Some(u))), Some(s)) = (m.first_reply, m.first_response_seconds()) {
            users.entry(u).or_default().4.push(s);
        }
    }
    let got = rows(
        &path,
        "SELECT dimension_id, replies_sent, resolved, conversations_touched, customers, median_first_response_seconds \
         FROM productivity_between(NULL, NULL) WHERE dimension = 'user' AND conversations_touched > 0 ORDER BY dimension_id",
    );
    let want: Vec<Vec<String>> = users
        .iter()
        .map(|(u, (replies, resolved, touched, customers, first))| {
            vec![u.to_string(), replies.to_string(), resolved.to_string(), touched.len().to_string(), customers.len().to_string(), double(quantile(first, 0.5))]
        })
        .collect();
    assert_close(&got, &want, "per user");

    // Arrivals by day of the week and hour; the busiest day.
    let mut cells = [[0i64; 24]; 7];
    for m in &all {
        cells[m.created.weekday().num_days_from_monday() as usize][m.created.hour() as usize] += 1;
    }
    let got = rows(&path, "SELECT day_of_week, \"hour\", new_conversations FROM busiest_times");
    assert_eq!(got.len(), 168, "every cell, zeros included");
    for row in &got {
        let (d, h): (usize, usize) = (row[0].parse().unwrap(), row[1].parse().unwrap());
        assert_eq!(row[2], cells[d - 1][h].to_string(), "day {d} hour {h}");
    }
    let per_day: Vec<i64> = cells.iter().map(|d| d.iter().sum()).collect();
    let busiest = (0..7).max_by_key(|d| (per_day[*d], std::cmp::Reverse(*d))).unwrap();
    assert_eq!(rows(&path, "SELECT day_of_week, new_conversations FROM busiest_day"), vec![vec![(busiest + 1).to_string(), per_day[busiest].to_string()]]);

    // Channels side by side; tags per week add up to the tagged conversations.
    for row in rows(&path, "SELECT channel, conversations, replies_sent, resolved FROM channel_metrics") {
        let of: Vec<&&Metrics> = all.iter().filter(|m| m.channel == row[0]).collect();
        let want = strs(&[&row[0], &of.len().to_string(), &of.iter().map(|m| m.replies.len()).sum::<usize>().to_string(), &of.iter().filter(|m| m.resolved).count().to_string()]);
        assert_eq!(row, want, "channel {}", row[0]);
    }
    let tagged: usize = all.iter().map(|m| m.tags.len()).sum();
    assert_eq!(rows(&path, "SELECT sum(conversations) FROM tag_trends"), vec![vec![tagged.to_string()]]);
    sim.stop().await;
}

// ---- Hand-checked numbers ----

/// A small account: two mailboxes, three users in two teams, five conversations whose every
/// number below was worked out by hand.
fn fixed_account(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("fixed.duckdb");
    assert!(prepare(&path, &all_tables()).iter().all(|s| s.installed));
    let conn = duckdb::Connection::open(&path).unwrap();
    let p = |kind: &str, id: i64| format!("{{'id': {id}, 'type': '{kind}', 'first': NULL, 'last': NULL, 'email': NULL, 'photo_url': NULL}}");
    let cust = |id: i64, email: &str| format!("{{'id': {id}, 'type': 'customer', 'first': NULL, 'last': NULL, 'email': '{email}', 'photo_url': NULL}}");
    let mut sql = String::from(
        "INSERT INTO mailboxes (id, name) VALUES (1, 'Support'), (2, 'Billing');
         INSERT INTO users (id, first_name, last_name) VALUES (10, 'Ann', 'Lee'), (11, 'Bob', 'Ray'), (12, 'Cy', NULL);
         INSERT INTO teams (id, name) VALUES (100, 'Tier 1'), (101, 'Tier 2');
         INSERT INTO team_members (team_id, user_id) VALUES (100, 10), (100, 11), (101, 11);\n",
    );
    // (id, type, mailbox, status, created, closed_at, closed_by, started by, customer, tags)
    let conversations: &[(i64, &str, i64, &str, &str, Option<&str>, Option<i64>, (&str, i64), (i64, &str), &str)] = &[
        // Monday 2026-03-02 09:00: answered after 30 min, closed by the reply: one reply to resolve.
        (1, "email", 1, "closed", "2026-03-02 09:00:00", Some("2026-03-02 09:30:00"), Some(10), ("customer", 500), (500, "Pat@Example.com"), "['vip']"),
        // Monday 09:40: answered after 2 h by Bob, customer again, Bob again, closed at 13:00, then
        // the customer writes again (reopened) and it is closed once more at 15:00 by Ann.
        (2, "email", 1, "closed", "2026-03-02 09:40:00", Some("2026-03-02 15:00:00"), Some(10), ("customer", 501), (501, "sam@example.com"), "['vip', 'bug']"),
        // Tuesday: a chat, 3 minutes long, never closed.
        (3, "chat", 2, "active", "2026-03-03 14:00:00", None, None, ("customer", 500), (500, "pat@example.com"), "[]"),
        // Tuesday: a phone call Cy logged and closed: resolved, no first response (no customer message).
        (4, "phone", 2, "closed", "2026-03-03 16:00:00", Some("2026-03-03 16:10:00"), Some(12), ("user", 12), (502, "lee@example.com"), "['bug']"),
        // Spam: left out of everything.
        (5, "email", 1, "spam", "2026-03-02 10:00:00", None, None, ("customer", 503), (503, "spam@example.com"), "['vip']"),
        // The next week: closed by a workflow without any reply: closed, not resolved.
        (6, "email", 1, "closed", "2026-03-09 08:00:00", Some("2026-03-09 09:00:00"), Some(11), ("customer", 501), (501, "sam@example.com"), "['vip']"),
    ];
    for (id, kind, mailbox, status, created, closed, closed_by, (by_kind, by_id), (cid, email), tags) in conversations {
        let tags = if *tags == "[]" {
            "[]::STRUCT(id BIGINT, color VARCHAR, tag VARCHAR)[]".to_string()
        } else {
            format!("[{}]", tags.trim_matches(['[', ']']).split(", ").map(|t| format!("{{'id': 1, 'color': NULL, 'tag': {t}}}")).collect::<Vec<_>>().join(", "))
        };
        sql += &format!(
            "INSERT INTO conversations (id, number, \"type\", mailbox_id, status, state, created_at, closed_at, closed_by, created_by, primary_customer, tags) \
             VALUES ({id}, {id}, '{kind}', {mailbox}, '{status}', 'published', '{created}'::TIMESTAMP::TIMESTAMPTZ, {}, {}, {}, {}, {tags});\n",
            closed.map(|c| format!("'{c}'::TIMESTAMP::TIMESTAMPTZ")).unwrap_or("NULL".into()),
            closed_by.map(|c| c.to_string()).unwrap_or("NULL".into()),
            p(by_kind, *by_id),
            cust(*cid, email),
        );
    }
    // (thread id, conversation, type, by (kind, id), at, status, state)
    let threads: &[(i64, i64, &str, (&str, i64), &str, &str, &str)] = &[
        (11, 1, "customer", ("customer", 500), "2026-03-02 09:00:00", "active", "published"),
        (12, 1, "message", ("user", 10), "2026-03-02 09:30:00", "closed", "published"),
        (21, 2, "customer", ("customer", 501), "2026-03-02 09:40:00", "active", "published"),
        (22, 2, "note", ("user", 10), "2026-03-02 10:00:00", "nochange", "published"),
        (23, 2, "message", ("user", 11), "2026-03-02 11:40:00", "active", "published"),
        (24, 2, "customer", ("customer", 501), "2026-03-02 12:00:00", "active", "published"),
        (25, 2, "message", ("user", 11), "2026-03-02 12:30:00", "active", "published"),
        (26, 2, "lineitem", ("user", 11), "2026-03-02 13:00:00", "closed", "published"),
        (27, 2, "customer", ("customer", 501), "2026-03-02 14:00:00", "active", "published"),
        (28, 2, "message", ("user", 10), "2026-03-02 14:30:00", "active", "draft"),
        (29, 2, "lineitem", ("user", 10), "2026-03-02 15:00:00", "closed", "published"),
        (31, 3, "beaconchat", ("customer", 500), "2026-03-03 14:00:00", "active", "published"),
        (32, 3, "chat", ("user", 12), "2026-03-03 14:01:00", "active", "published"),
        (33, 3, "chat", ("customer", 500), "2026-03-03 14:02:00", "active", "published"),
        (34, 3, "chat", ("user", 12), "2026-03-03 14:03:00", "active", "published"),
        (41, 4, "phone", ("user", 12), "2026-03-03 16:00:00", "active", "published"),
        (42, 4, "lineitem", ("user", 12), "2026-03-03 16:10:00", "closed", "published"),
        (51, 5, "customer", ("customer", 503), "2026-03-02 10:00:00", "spam", "published"),
        (52, 5, "message", ("user", 10), "2026-03-02 10:05:00", "active", "published"),
        (61, 6, "customer", ("customer", 501), "2026-03-09 08:00:00", "active", "published"),
    ];
    for (id, conv, kind, (by_kind, by_id), at, status, state) in threads {
        sql += &format!(
            "INSERT INTO conversation_threads (id, conversation_id, \"type\", created_by, created_at, status, state) \
             VALUES ({id}, {conv}, '{kind}', {}, '{at}'::TIMESTAMP::TIMESTAMPTZ, '{status}', '{state}');\n",
            p(by_kind, *by_id)
        );
    }
    sql += "INSERT INTO happiness_ratings_report (conversation_id, rating_created_at, rating_customer_id, rating_user_id, rating) VALUES
      (1, '2026-03-02 10:00:00'::TIMESTAMP::TIMESTAMPTZ, 500, 10, 'great'),
      (2, '2026-03-02 16:00:00'::TIMESTAMP::TIMESTAMPTZ, 501, 11, 'not_good');";
    conn.execute_batch(&sql).unwrap_or_else(|e| panic!("{e}"));
    path
}

#[test]
fn hand_checked_support_metrics_on_a_small_fixed_account() {
    let dir = tempfile::tempdir().unwrap();
    let path = fixed_account(dir.path());
    assert_eq!(rows(&path, "SELECT count(*) FROM _helpscout_views WHERE NOT installed"), vec![strs(&["0"])]);

    assert_eq!(
        rows(
            &path,
            "SELECT conversation_id, started_by, first_response_seconds, first_reply_user_id, replies_sent, customer_messages, notes, \
             resolved, resolution_seconds, replies_to_resolve, resolved_on_first_reply, reopened, closed_by_user_id, duration_seconds, \
             customer_email, array_to_string(tags, ',') FROM conversation_metrics ORDER BY conversation_id"
        ),
        vec![
            strs(&["1", "customer", "1800", "10", "1", "1", "0", "true", "1800", "1", "true", "false", "10", "1800", "pat@example.com", "vip"]),
            // The draft reply at 14:30 counts for nothing; 5 h 20 min from creation to the last closing.
            strs(&["2", "customer", "7200", "11", "2", "3", "1", "true", "19200", "2", "false", "true", "10", "15600", "sam@example.com", "vip,bug"]),
            strs(&["3", "customer", "60", "12", "2", "2", "0", "false", "", "", "false", "false", "", "180", "pat@example.com", ""]),
            strs(&["4", "user", "", "", "1", "0", "0", "true", "600", "1", "true", "false", "12", "0", "lee@example.com", "bug"]),
            strs(&["6", "customer", "", "", "0", "1", "0", "false", "", "", "false", "false", "11", "0", "sam@example.com", "vip"]),
        ]
    );

    // The company on Monday 2 March: conversations 1 and 2 (spam left out); 3 replies; 4
    // messages received; first responses 1800 and 7200 s; both resolved that day.
    let day = |d: &str, dimension: &str| {
        rows(
            &path,
            &format!(
                "SELECT coalesce(dimension_name, ''), new_conversations, conversations_touched, customers, messages_received, replies_sent, \
                 median_first_response_seconds, p90_first_response_seconds, resolved, median_resolution_seconds, \
                 mean_replies_to_resolve, resolved_on_first_reply_pct, ratings, happiness_score \
                 FROM productivity WHERE period = 'day' AND period_start = '{d}' AND dimension = '{dimension}' ORDER BY dimension_id"
            ),
        )
    };
    assert_eq!(day("2026-03-02", "company"), vec![strs(&["All mailboxes", "2", "2", "2", "4", "3", "4500.0", "6660.0", "2", "10500.0", "1.5", "50.0", "2", "0.0"])]);
    // Tuesday: the chat and the call; Cy answered the chat in a minute and resolved the call.
    assert_eq!(day("2026-03-03", "company"), vec![strs(&["All mailboxes", "2", "2", "2", "2", "3", "60.0", "60.0", "1", "600.0", "1.0", "100.0", "0", ""])]);
    // Per user on Monday: Ann replied once (to Pat: one customer helped), wrote a note on 2 and
    // closed both (resolving 1 and 2); Bob replied twice, made the first response of 2 and has its
    // not-good rating; messages received are a mailbox's, not a user's.
    assert_eq!(
        day("2026-03-02", "user"),
        vec![
            strs(&["Ann Lee", "0", "2", "1", "", "1", "1800.0", "1800.0", "2", "10500.0", "1.5", "50.0", "1", "100.0"]),
            strs(&["Bob Ray", "0", "1", "1", "", "2", "7200.0", "7200.0", "0", "", "", "", "1", "-100.0"]),
        ]
    );
    // Teams are their members: Tier 1 is Ann and Bob, Tier 2 is Bob.
    assert_eq!(
        rows(&path, "SELECT dimension_name, replies_sent, ratings, happiness_score FROM productivity WHERE period = 'week' AND period_start = '2026-03-02' AND dimension = 'team' ORDER BY dimension_id"),
        vec![strs(&["Tier 1", "3", "2", "0.0"]), strs(&["Tier 2", "2", "1", "-100.0"])]
    );
    assert_eq!(
        rows(&path, "SELECT dimension_name, new_conversations, messages_received, replies_sent, resolved FROM productivity WHERE period = 'month' AND dimension = 'mailbox' ORDER BY dimension_id"),
        vec![strs(&["Support", "3", "5", "3", "2"]), strs(&["Billing", "2", "2", "3", "1"])]
    );
    // A custom range, Tuesday 12:00 up to Monday 9 March 08:30: the arrivals of 3, 4 and 6, their
    // three customer messages and three replies, the call resolved; both ratings fall before it.
    assert_eq!(
        rows(&path, "SELECT from_utc, to_utc, new_conversations, messages_received, replies_sent, resolved, ratings FROM productivity_between('2026-03-03 12:00', '2026-03-09 08:30') WHERE dimension = 'company'"),
        vec![strs(&["2026-03-03 12:00:00", "2026-03-09 08:30:00", "3", "3", "3", "1", "0"])]
    );

    // Arrivals: Monday 09:00 holds two (1 at 09:00, 2 at 09:40), Tuesday 14:00 and 16:00 one each,
    // the next Monday 08:00 one. Monday is the busiest day, its busiest hour 9.
    assert_eq!(
        rows(&path, "SELECT day_name, \"hour\", new_conversations, share_pct FROM busiest_times WHERE new_conversations > 0"),
        vec![
            strs(&["Monday", "8", "1", "20.0"]),
            strs(&["Monday", "9", "2", "40.0"]),
            strs(&["Tuesday", "14", "1", "20.0"]),
            strs(&["Tuesday", "16", "1", "20.0"]),
        ]
    );
    assert_eq!(rows(&path, "SELECT count(*), sum(new_conversations) FROM busiest_times"), vec![strs(&["168", "5"])]);
    assert_eq!(rows(&path, "SELECT * FROM busiest_day"), vec![strs(&["1", "Monday", "3", "60.0", "9"])]);

    assert_eq!(
        rows(&path, "SELECT channel, conversations, customers, messages_received, replies_sent, messages_per_conversation, median_first_response_seconds, resolved, resolved_pct, median_duration_seconds FROM channel_metrics"),
        vec![
            strs(&["email", "3", "2", "5", "3", "2.67", "4500.0", "2", "66.7", "1800.0"]),
            strs(&["chat", "1", "1", "2", "2", "4.0", "60.0", "0", "0.0", "180.0"]),
            strs(&["phone", "1", "1", "0", "1", "1.0", "", "1", "100.0", "0.0"]),
        ]
    );

    // Tags by the week of creation: vip 2 → 1, bug 2 → 0; of 4 and then 1 new conversations.
    assert_eq!(
        rows(&path, "SELECT tag, week_start, conversations, previous_week, change, change_pct, share_pct, share_change_pts FROM tag_trends"),
        vec![
            strs(&["bug", "2026-03-02", "2", "0", "2", "", "50.0", "50.0"]),
            strs(&["bug", "2026-03-09", "0", "2", "-2", "-100.0", "0.0", "-50.0"]),
            strs(&["vip", "2026-03-02", "2", "0", "2", "", "50.0", "50.0"]),
            strs(&["vip", "2026-03-09", "1", "2", "-1", "-50.0", "100.0", "50.0"]),
        ]
    );
}


#[test]
fn report_productivity_prints_text_json_and_csv_and_refuses_other_groupings() {
    let dir = tempfile::tempdir().unwrap();
    let path = fixed_account(dir.path());

    let (code, out, err) = report(&path, &["productivity", "--by", "day"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("2026-03-02") && out.contains("2026-03-09"), "{out}");
    assert!(out.contains("1h 15m"), "durations read as durations: {out}");
    assert!(out.contains("Busiest day: Monday (60.0 % of new conversations; busiest hour 09:00 UTC)."), "{out}");
    assert!(out.contains("Overall: 5 conversations, 6 replies sent"), "{out}");

    let (code, out, _) = report(&path, &["productivity", "--by", "user", "--json"]);
    assert_eq!(code, 0);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["by"], "user");
    let names: Vec<&str> = v["rows"].as_array().unwrap().iter().map(|r| r["user"].as_str().unwrap()).collect();
    assert_eq!(names, ["Ann Lee", "Bob Ray", "Cy"]);
    assert_eq!(v["rows"][0]["replies_sent"], 1);
    assert_eq!(v["rows"][0]["median_first_response_seconds"], 1800.0);
    assert_eq!(v["busiest_day"]["day_name"], "Monday");

    let (code, out, _) = report(&path, &["productivity", "--by", "week", "--csv", "--limit", "1"]);
    assert_eq!(code, 0);
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with("week,new_conversations,conversations_touched,customers,messages_received,replies_sent,mean_first_response_seconds"), "{out}");
    assert_eq!(lines.len(), 2, "the latest week only: {out}");
    assert!(lines[1].starts_with("2026-03-09,1,"), "{out}");

    let (code, _, err) = report(&path, &["productivity", "--by", "hour"]);
    assert_eq!(code, 2);
    assert_eq!(err.trim(), "error: `report productivity --by` takes day, week, month, mailbox, user or team (got hour)");
}
