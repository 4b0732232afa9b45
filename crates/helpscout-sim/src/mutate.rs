//! Time moves: changes to the account between (or during) syncs.

use std::sync::Arc;

use rand::seq::IndexedRandom;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::dates::{Ts, fmt_ts};
use super::generator::{custom_value, gen_conversation, gen_customer};
use super::model::*;
use super::state::State;
use super::text;

/// How many changes of each kind to make, all at the simulated "now".
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct MutationPlan {
    /// Mixed with a per-call counter: the same plan applied twice changes different rows.
    pub seed: u64,
    /// New conversations (with a first thread), some from new customers.
    pub new_conversations: usize,
    /// New customer or agent threads on existing conversations (a customer reply bumps
    /// `customerWaitingSince` and reopens; an agent reply or note bumps `userUpdatedAt`).
    pub replies: usize,
    /// Status, tag, custom field or assignee changes that move only the hidden modified time.
    pub workflow_changes: usize,
    /// Customer profile edits (bump `updatedAt`).
    pub customer_edits: usize,
    /// Customers whose first email becomes malformed (legacy data the write API would refuse
    /// today; bumps `updatedAt`).
    #[serde(default)]
    pub invalid_emails: usize,
    /// Merges: the source vanishes (301 for 60 days, then 404), its threads move to the target.
    pub merges: usize,
    /// Deletions: the conversation vanishes (404).
    pub deletions: usize,
    pub new_customers: usize,
    /// New happiness ratings on agent replies.
    pub new_ratings: usize,
    pub user_edits: usize,
    pub mailbox_edits: usize,
    /// Folder renames (their `updatedAt` bumped).
    pub folder_changes: usize,
    /// Workflow renames or status toggles (their `modifiedAt` bumped).
    pub workflow_edits: usize,
    pub team_edits: usize,
    /// A user added to or removed from a team.
    pub team_member_changes: usize,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Merge {
    pub source: i64,
    pub target: i64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TeamMemberChange {
    pub team_id: i64,
    pub user_id: i64,
    pub added: bool,
}

/// The ids each kind of change touched.
impl MutationPlan {
    /// A day of every kind of change (what the demo shows and the tests replay).
    pub fn busy_day(seed: u64) -> MutationPlan {
        MutationPlan {
            seed,
            new_conversations: 12,
            replies: 25,
            workflow_changes: 15,
            customer_edits: 8,
            invalid_emails: 1,
            merges: 2,
            deletions: 2,
            new_customers: 5,
            new_ratings: 6,
            user_edits: 1,
            mailbox_edits: 1,
            folder_changes: 2,
            workflow_edits: 2,
            team_edits: 1,
            team_member_changes: 2,
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct MutationReport {
    /// When the changes happened (simulated clock).
    pub at: String,
    pub new_conversations: Vec<i64>,
    /// Threads added by new conversations and replies.
    pub new_threads: Vec<i64>,
    pub replied_conversations: Vec<i64>,
    pub workflow_changed: Vec<i64>,
    pub edited_customers: Vec<i64>,
    pub new_customers: Vec<i64>,
    pub merged: Vec<Merge>,
    pub deleted: Vec<i64>,
    pub rated_threads: Vec<i64>,
    pub edited_users: Vec<i64>,
    pub edited_mailboxes: Vec<i64>,
    pub changed_folders: Vec<i64>,
    pub edited_workflows: Vec<i64>,
    pub edited_teams: Vec<i64>,
    pub team_member_changes: Vec<TeamMemberChange>,
}

/// A random live conversation, biased towards recent ones.
fn pick_conv(st: &State, rng: &mut ChaCha8Rng) -> Option<i64> {
    let idx = &st.conv_idx.bucket((None, None))?.created;
    if idx.is_empty() {
        return None;
    }
    let n = idx.len();
    let all = idx.since(None);
    let i = if rng.random_bool(0.7) {
        rng.random_range(n - n.div_ceil(5)..n)
    } else {
        rng.random_range(0..n)
    };
    Some(all[i].1)
}

fn pick_user(st: &State, rng: &mut ChaCha8Rng) -> PersonRef {
    let u = st.users.choose(rng).expect("users");
    st.user_snaps[&u.id].clone()
}

pub fn apply(st: &mut State, plan: &MutationPlan, now: Ts) -> MutationReport {
    st.mutation_round += 1;
    let mut rng = ChaCha8Rng::seed_from_u64(
        plan.seed ^ st.seed.rotate_left(17) ^ st.mutation_round.wrapping_mul(0x9E37_79B9_7F4A_7C15),
    );
    let mut rep = MutationReport {
        at: fmt_ts(now),
        ..Default::default()
    };
    let round = st.mutation_round;

    for _ in 0..plan.new_customers {
        rep.new_customers.push(new_customer(st, &mut rng, now));
    }
    for _ in 0..plan.new_conversations {
        let cust = if st.customers.is_empty() || rng.random_bool(0.3) {
            let id = new_customer(st, &mut rng, now);
            rep.new_customers.push(id);
            id
        } else {
            let ids = st.cust_idx.created.since(None);
            ids[rng.random_range(0..ids.len())].1
        };
        st.ids.conversation += rng.random_range(1..=6);
        st.ids.number += 1;
        let mut c = gen_conversation(&mut rng, st, now, now, cust, Some(ConvStatus::Active));
        c.modified = now;
        rep.new_threads.extend(c.threads.iter().map(|t| t.id));
        rep.new_conversations.push(c.id);
        st.insert_conv(c, Some(now));
    }
    for _ in 0..plan.replies {
        let Some(id) = pick_conv(st, &mut rng) else {
            break;
        };
        if let Some(tid) = reply(st, &mut rng, now, id) {
            rep.new_threads.push(tid);
            rep.replied_conversations.push(id);
        }
    }
    for _ in 0..plan.workflow_changes {
        let Some(id) = pick_conv(st, &mut rng) else {
            break;
        };
        workflow_change(st, &mut rng, now, id);
        rep.workflow_changed.push(id);
    }
    for _ in 0..plan.customer_edits {
        let ids = st.cust_idx.created.since(None);
        if ids.is_empty() {
            break;
        }
        let id = ids[rng.random_range(0..ids.len())].1;
        edit_customer(st, &mut rng, now, id);
        rep.edited_customers.push(id);
    }
    for _ in 0..plan.invalid_emails {
        let ids = st.cust_idx.created.since(None);
        if ids.is_empty() {
            break;
        }
        let id = ids[rng.random_range(0..ids.len())].1;
        st.update_customer(id, now, |c| {
            if let Some(first) = c.emails.first_mut() {
                first.value = first.value.replacen('@', " at ", 1);
            }
        });
        rep.edited_customers.push(id);
    }
    for _ in 0..plan.merges {
        let (Some(source), Some(target)) = (pick_conv(st, &mut rng), pick_conv(st, &mut rng))
        else {
            break;
        };
        if source == target {
            continue;
        }
        if merge(st, now, source, target) {
            rep.merged.push(Merge { source, target });
        }
    }
    for _ in 0..plan.deletions {
        let Some(id) = pick_conv(st, &mut rng) else {
            break;
        };
        st.take_conv(id, now);
        st.removed.insert(
            id,
            RemovedConv {
                merged_into: None,
                at: now,
            },
        );
        rep.deleted.push(id);
    }
    for _ in 0..plan.new_ratings {
        if let Some(tid) = new_rating(st, &mut rng, now) {
            rep.rated_threads.push(tid);
        }
    }
    for _ in 0..plan.user_edits {
        let i = rng.random_range(0..st.users.len());
        let u = &mut st.users[i];
        match rng.random_range(0..3) {
            0 => u.timezone = text::pick(&mut rng, text::TIMEZONES).to_string(),
            1 => u.job_title = Some(text::pick(&mut rng, text::JOB_TITLES).to_string()),
            _ => u.last = text::pick(&mut rng, text::LAST_NAMES).to_string(),
        }
        u.updated_at = u.updated_at.max(now);
        let p = u.person();
        let id = u.id;
        if *st.user_snaps[&id] != p {
            st.user_snaps.insert(id, Arc::new(p));
        }
        rep.edited_users.push(id);
    }
    for _ in 0..plan.mailbox_edits {
        let i = rng.random_range(0..st.mailboxes.len());
        let m = &mut st.mailboxes[i];
        m.name = renamed(&m.name, round);
        m.updated_at = m.updated_at.max(now);
        rep.edited_mailboxes.push(m.id);
    }
    for _ in 0..plan.folder_changes {
        let i = rng.random_range(0..st.mailboxes.len());
        let m = &mut st.mailboxes[i];
        let j = rng.random_range(0..m.folders.len());
        let f = &mut m.folders[j];
        f.name = renamed(&f.name, round);
        f.updated_at = f.updated_at.max(now);
        rep.changed_folders.push(f.id);
    }
    for _ in 0..plan.workflow_edits {
        if st.workflows.is_empty() {
            break;
        }
        let i = rng.random_range(0..st.workflows.len());
        let w = &mut st.workflows[i];
        if rng.random_bool(0.5) {
            w.status = if w.status == "active" {
                "inactive"
            } else {
                "active"
            };
        } else {
            w.name = renamed(&w.name, round);
        }
        w.modified_at = w.modified_at.max(now);
        rep.edited_workflows.push(w.id);
    }
    for _ in 0..plan.team_edits {
        if st.teams.is_empty() {
            break;
        }
        let i = rng.random_range(0..st.teams.len());
        let t = &mut st.teams[i];
        t.name = renamed(&t.name, round);
        t.updated_at = t.updated_at.max(now);
        let (id, p) = (t.id, Arc::new(t.person()));
        st.team_snaps.insert(id, p);
        rep.edited_teams.push(id);
    }
    for _ in 0..plan.team_member_changes {
        if st.teams.is_empty() {
            break;
        }
        let i = rng.random_range(0..st.teams.len());
        let user_ids: Vec<i64> = st.users.iter().map(|u| u.id).collect();
        let t = &mut st.teams[i];
        let outside: Vec<i64> = user_ids
            .iter()
            .copied()
            .filter(|u| !t.members.contains(u))
            .collect();
        let add = !outside.is_empty() && (t.members.len() <= 1 || rng.random_bool(0.5));
        if add {
            let u = *outside.choose(&mut rng).expect("outside");
            t.members.push(u);
            t.members.sort_unstable();
            rep.team_member_changes.push(TeamMemberChange {
                team_id: t.id,
                user_id: u,
                added: true,
            });
        } else if t.members.len() > 1 {
            let k = rng.random_range(0..t.members.len());
            let u = t.members.remove(k);
            rep.team_member_changes.push(TeamMemberChange {
                team_id: t.id,
                user_id: u,
                added: false,
            });
        }
    }
    rep
}

fn renamed(name: &str, round: u64) -> String {
    let base = name.split(" ·").next().unwrap_or(name);
    format!("{base} ·{round}")
}

fn new_customer(st: &mut State, rng: &mut ChaCha8Rng, now: Ts) -> i64 {
    st.ids.customer += rng.random_range(1..=4);
    let id = st.ids.customer;
    let c = gen_customer(rng, st, id, now, now);
    st.insert_customer(c);
    id
}

fn reply(st: &mut State, rng: &mut ChaCha8Rng, now: Ts, id: i64) -> Option<i64> {
    st.ids.thread += 1;
    let tid = st.ids.thread;
    let from_customer = rng.random_bool(0.5);
    let note = !from_customer && rng.random_bool(0.2);
    let other_user = pick_user(st, rng);
    st.update_conv(id, now, |c, _| {
        let customer = c.primary_customer.clone();
        let (kind, by, source) = if from_customer {
            let k = if c.kind == ConvType::Chat {
                ThreadType::Chat
            } else {
                ThreadType::Customer
            };
            (
                k,
                customer.clone(),
                (
                    if c.kind == ConvType::Chat {
                        "chat"
                    } else {
                        "email"
                    },
                    "customer",
                ),
            )
        } else {
            let by = c.assignee.clone().unwrap_or(other_user);
            let k = if note {
                ThreadType::Note
            } else if c.kind == ConvType::Chat {
                ThreadType::Chat
            } else {
                ThreadType::Message
            };
            (
                k,
                by,
                (
                    if c.kind == ConvType::Chat {
                        "chat"
                    } else {
                        "web"
                    },
                    "user",
                ),
            )
        };
        let is_message = kind == ThreadType::Message;
        let status = if note { "nochange" } else { "active" };
        c.threads.push(Thread {
            id: tid,
            kind,
            status,
            state: "published",
            action: None,
            body: Body::Generated,
            source_type: source.0,
            source_via: source.1,
            customer: customer.clone(),
            created_by: by,
            assigned_to: c.assignee.clone(),
            saved_reply_id: None,
            to: if is_message {
                customer.email.iter().cloned().collect()
            } else {
                vec![]
            },
            cc: vec![],
            bcc: vec![],
            created_at: now,
            opened_at: None,
            rating: None,
            attachments: vec![],
        });
        if from_customer {
            if matches!(c.status, ConvStatus::Closed | ConvStatus::Pending) {
                c.status = ConvStatus::Active;
                c.closed_at = None;
                c.closed_by = None;
            }
        } else {
            c.user_updated_at = c.user_updated_at.max(now);
        }
        c.recompute_waiting();
    })?;
    Some(tid)
}

/// A change a workflow (or an API integration) makes: it moves the hidden modified time but
/// neither `userUpdatedAt` nor `customerWaitingSince`.
fn workflow_change(st: &mut State, rng: &mut ChaCha8Rng, now: Ts, id: i64) {
    let tag_ids: Vec<i64> = st
        .tags
        .iter()
        .map(|t| t.id)
        .filter(|id| !st.api_tags.contains(id))
        .collect();
    let user = pick_user(st, rng);
    let choice = rng.random_range(0..4);
    let seed: u64 = rng.random();
    st.update_conv(id, now, |c, st| {
        let mut r = ChaCha8Rng::seed_from_u64(seed);
        match choice {
            0 => {
                let t = *tag_ids.choose(&mut r).expect("tags");
                if let Some(p) = c.tags.iter().position(|x| *x == t) {
                    c.tags.remove(p);
                } else {
                    c.tags.push(t);
                    c.tags.sort_unstable();
                }
            }
            1 => {
                if let Some(f) = st
                    .mailbox(c.mailbox_id)
                    .and_then(|m| m.fields.choose(&mut r))
                {
                    let v = custom_value(&mut r, f, now);
                    c.custom_fields.retain(|x| x.field_id != f.id);
                    c.custom_fields.push(v);
                    c.custom_fields.sort_by_key(|x| x.field_id);
                }
            }
            2 => match c.status {
                ConvStatus::Active => c.status = ConvStatus::Pending,
                ConvStatus::Pending => {
                    c.status = ConvStatus::Closed;
                    c.closed_at = Some(now);
                    c.closed_by = Some(c.assignee.clone().unwrap_or(user));
                }
                ConvStatus::Closed | ConvStatus::Spam => {
                    c.status = ConvStatus::Active;
                    c.closed_at = None;
                    c.closed_by = None;
                }
            },
            _ => {
                if c.status != ConvStatus::Spam {
                    c.assignee = Some(user);
                }
            }
        }
    });
}

/// Page drift: rows beyond the page just served change (a tag toggles), so their hidden
/// modified time moves to now.
pub fn drift_conversations(st: &mut State, ids: &[i64], now: Ts) {
    let Some(tag) = st.tags.first().map(|t| t.id) else {
        return;
    };
    for id in ids {
        st.update_conv(*id, now, |c, _| {
            if let Some(p) = c.tags.iter().position(|x| *x == tag) {
                c.tags.remove(p);
            } else {
                c.tags.push(tag);
                c.tags.sort_unstable();
            }
        });
    }
}

/// Page drift for customers: their background changes and `updatedAt` moves to now.
pub fn drift_customers(st: &mut State, ids: &[i64], now: Ts) {
    for id in ids {
        st.update_customer(*id, now, |c| {
            c.background = Some(format!("Updated during a listing at {}", fmt_ts(now)));
        });
    }
}

fn edit_customer(st: &mut State, rng: &mut ChaCha8Rng, now: Ts, id: i64) {
    let choice = rng.random_range(0..5);
    let seed: u64 = rng.random();
    st.ids.entry += 1;
    let entry_id = st.ids.entry;
    st.update_customer(id, now, |c| {
        let mut r = ChaCha8Rng::seed_from_u64(seed);
        match choice {
            0 => c.job_title = Some(text::pick(&mut r, text::JOB_TITLES).to_string()),
            1 => {
                let (city, _, country) = *text::pick(&mut r, text::CITIES);
                c.location = Some(format!("{city}, {country}"));
            }
            2 => c.phones.push(Entry {
                id: entry_id,
                value: format!("+44 20 7946 {:04}", r.random_range(0..10_000)),
                kind: "mobile".into(),
            }),
            3 => c.first = Some(text::pick(&mut r, text::FIRST_NAMES).to_string()),
            _ => c.organization = Some(text::pick(&mut r, text::COMPANIES).to_string()),
        }
    });
}

fn merge(st: &mut State, now: Ts, source: i64, target: i64) -> bool {
    if !st.convs.contains_key(&target) {
        return false;
    }
    let Some(src) = st.take_conv(source, now) else {
        return false;
    };
    st.removed.insert(
        source,
        RemovedConv {
            merged_into: Some(target),
            at: now,
        },
    );
    let moved = src.threads;
    st.update_conv(target, now, |c, _| {
        c.threads.extend(moved);
        c.threads.sort_by_key(|t| (t.created_at, t.id));
        c.recompute_waiting();
    });
    true
}

fn new_rating(st: &mut State, rng: &mut ChaCha8Rng, now: Ts) -> Option<i64> {
    for _ in 0..20 {
        let id = pick_conv(st, rng)?;
        let c = st.convs.get_mut(&id)?;
        if c.threads
            .iter()
            .any(|t| t.rating.as_ref().is_some_and(|r| r.created_at == now))
        {
            continue;
        }
        let customer = c.primary_customer.clone();
        let Some(t) = c.threads.iter_mut().rev().find(|t| {
            t.kind == ThreadType::Message && t.rating.is_none() && t.state == "published"
        }) else {
            continue;
        };
        let value = *[1u8, 1, 1, 2, 3].choose(rng).expect("values");
        t.rating = Some(Box::new(Rating {
            value,
            customer,
            comments: rng.random_bool(0.5).then(|| text::comment(rng)),
            created_at: now,
        }));
        let tid = t.id;
        st.ratings.insert((now, tid), id);
        return Some(tid);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::super::generator::{GenParams, generate};
    use super::*;

    fn state() -> State {
        generate(&GenParams {
            seed: 3,
            conversations: 400,
            customers: 240,
            mailboxes: 3,
            users: 12,
            teams: 3,
            start: 1_780_315_200,
        })
    }

    fn folder_totals_consistent(st: &State) {
        for m in &st.mailboxes {
            for f in &m.folders {
                if f.kind == FolderKind::Assigned {
                    continue;
                }
                let total = st.convs.values().filter(|c| c.folder_id == f.id).count() as i64;
                let active = st
                    .convs
                    .values()
                    .filter(|c| c.folder_id == f.id && c.status == ConvStatus::Active)
                    .count() as i64;
                assert_eq!(
                    (f.total_count, f.active_count),
                    (total, active),
                    "folder {}",
                    f.name
                );
            }
        }
    }

    #[test]
    fn mutations_keep_the_account_consistent() {
        let mut st = state();
        let now = 1_780_315_200 + 3600;
        let plan = MutationPlan {
            seed: 1,
            new_conversations: 5,
            replies: 10,
            workflow_changes: 10,
            customer_edits: 5,
            merges: 3,
            deletions: 3,
            new_customers: 2,
            new_ratings: 3,
            user_edits: 2,
            mailbox_edits: 1,
            folder_changes: 1,
            workflow_edits: 1,
            team_edits: 1,
            team_member_changes: 2,
            invalid_emails: 0,
        };
        let rep = apply(&mut st, &plan, now);
        assert_eq!(rep.new_conversations.len(), 5);
        assert_eq!(rep.replied_conversations.len(), 10);
        assert_eq!(rep.deleted.len(), 3);
        assert!(!rep.merged.is_empty());
        folder_totals_consistent(&st);
        for id in &rep.deleted {
            assert!(!st.convs.contains_key(id));
        }
        for m in &rep.merged {
            assert!(!st.convs.contains_key(&m.source));
            assert_eq!(st.removed[&m.source].merged_into, Some(m.target));
        }
        for id in &rep.workflow_changed {
            if let Some(c) = st.convs.get(id) {
                assert_eq!(c.modified, now);
            }
        }
        // Indexes agree with the map.
        let idx = st.conv_idx.bucket((None, None)).unwrap();
        assert_eq!(idx.modified.len(), st.convs.len());
        let ratings: usize = st
            .convs
            .values()
            .flat_map(|c| c.threads.iter())
            .filter(|t| t.rating.is_some())
            .count();
        assert_eq!(ratings, st.ratings.len());
        // The same plan again changes other rows.
        let rep2 = apply(&mut st, &plan, now + 10);
        assert_ne!(rep.new_conversations, rep2.new_conversations);
        folder_totals_consistent(&st);
    }

    #[test]
    fn workflow_change_leaves_visible_times() {
        let mut st = state();
        let now = 1_780_315_200 + 7200;
        let id = *st.convs.keys().next().unwrap();
        let (u, w) = (
            st.convs[&id].user_updated_at,
            st.convs[&id].customer_waiting_since,
        );
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        workflow_change(&mut st, &mut rng, now, id);
        assert_eq!(st.convs[&id].modified, now);
        assert_eq!(st.convs[&id].user_updated_at, u);
        assert_eq!(st.convs[&id].customer_waiting_since, w);
    }
}
