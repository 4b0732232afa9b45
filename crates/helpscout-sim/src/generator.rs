//! The deterministic account generator: the same seed and sizes give the same account.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use rand::seq::IndexedRandom;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::dates::{Ts, fmt_day};
use super::model::*;
use super::state::State;
use super::text::{self, pick};

const DAY: i64 = 86_400;
const HOUR: i64 = 3_600;
const MIN: i64 = 60;

/// What to generate.
#[derive(Clone, Debug)]
pub struct GenParams {
    pub seed: u64,
    pub conversations: usize,
    pub customers: usize,
    pub mailboxes: usize,
    pub users: usize,
    pub teams: usize,
    /// The simulated "now": everything generated happened before it.
    pub start: Ts,
}

pub fn generate(p: &GenParams) -> State {
    let mut rng = ChaCha8Rng::seed_from_u64(p.seed);
    let mut st = State::new(p.seed);
    let start = p.start;
    let account_start = start - 730 * DAY;

    gen_users(&mut rng, &mut st, p.users.max(1), account_start, start);
    gen_teams(&mut rng, &mut st, p.teams, account_start, start);
    gen_mailboxes(&mut rng, &mut st, p.mailboxes.max(1), account_start, start);
    gen_tags(&mut rng, &mut st, account_start);
    gen_customers(&mut rng, &mut st, p.customers.max(1), account_start, start);

    // Conversations, oldest first, ids and numbers increasing with creation time.
    let mut created: Vec<Ts> = (0..p.conversations)
        .map(|_| {
            let u: f64 = rng.random();
            account_start + ((730 * DAY - 2 * HOUR) as f64 * u.sqrt()) as i64
        })
        .collect();
    created.sort_unstable();
    let mut cust_by_created: Vec<(Ts, i64)> = st
        .customers
        .values()
        .map(|c| (c.created_at, c.id))
        .collect();
    cust_by_created.sort_unstable();
    st.convs.reserve(created.len());
    st.ids.conversation = 2_100_000_000;
    st.ids.thread = 5_400_000_000;
    st.ids.attachment = 91_000_000;
    for t in created {
        st.ids.conversation += rng.random_range(1..=6);
        st.ids.number += 1;
        let upper = cust_by_created.partition_point(|c| c.0 <= t).max(1);
        let cust_id = cust_by_created[rng.random_range(0..upper)].1;
        let c = gen_conversation(&mut rng, &mut st, t, start - 1, cust_id, None);
        st.convs.insert(c.id, c);
    }
    st.rebuild_indexes();
    st.recount_folders();
    // A folder was last updated when one of its conversations last changed.
    let mut latest: HashMap<i64, Ts> = HashMap::new();
    for c in st.convs.values() {
        let e = latest.entry(c.folder_id).or_insert(0);
        *e = (*e).max(c.modified);
    }
    for mb in &mut st.mailboxes {
        for f in &mut mb.folders {
            if let Some(t) = latest.get(&f.id) {
                f.updated_at = f.updated_at.max(*t);
            }
        }
    }
    st
}

fn between(rng: &mut ChaCha8Rng, a: Ts, b: Ts) -> Ts {
    if b <= a { a } else { rng.random_range(a..=b) }
}

fn gen_users(rng: &mut ChaCha8Rng, st: &mut State, n: usize, account_start: Ts, start: Ts) {
    let mut seen = HashSet::new();
    for i in 0..n {
        let first = pick(rng, text::FIRST_NAMES).to_string();
        let last = pick(rng, text::LAST_NAMES).to_string();
        let mut local = text::email_local(&first, &last);
        if !seen.insert(local.clone()) {
            local = format!("{local}{i}");
            seen.insert(local.clone());
        }
        let id = 400_000 + (i as i64) * 53 + rng.random_range(1..50);
        let created = if i < 3 {
            account_start - between(rng, 30 * DAY, 120 * DAY)
        } else {
            between(rng, account_start - 30 * DAY, start - 30 * DAY)
        };
        let updated = between(rng, created, start - DAY);
        let initials: String = first
            .chars()
            .take(1)
            .chain(last.chars().take(1))
            .collect::<String>()
            .to_uppercase();
        let u = User {
            id,
            email: format!("{local}@acme-support.test"),
            role: if i == 0 {
                "owner"
            } else if i < 3 {
                "admin"
            } else {
                "user"
            },
            timezone: pick(rng, text::TIMEZONES).to_string(),
            photo_url: rng
                .random_bool(0.7)
                .then(|| format!("https://d33v4339jhl8k0.cloudfront.net/users/{id}.png")),
            created_at: created,
            updated_at: updated,
            job_title: rng
                .random_bool(0.5)
                .then(|| pick(rng, text::JOB_TITLES).to_string()),
            phone: rng
                .random_bool(0.4)
                .then(|| format!("+1 555 01{:02}", i % 100)),
            alternate_emails: if rng.random_bool(0.2) {
                vec![format!("{local}@acme.test")]
            } else {
                vec![]
            },
            mention: text::slug(&first),
            initials,
            first,
            last,
        };
        st.user_snaps.insert(id, Arc::new(u.person()));
        st.users.push(u);
    }
}

fn gen_teams(rng: &mut ChaCha8Rng, st: &mut State, n: usize, account_start: Ts, start: Ts) {
    const NAMES: &[&str] = &[
        "Tier 1 Support",
        "Billing",
        "Escalations 🚨",
        "Nachtschicht",
        "APAC",
        "Équipe VIP",
    ];
    let user_ids: Vec<i64> = st.users.iter().map(|u| u.id).collect();
    for i in 0..n {
        let name = NAMES
            .get(i)
            .map(|s| s.to_string())
            .unwrap_or_else(|| format!("Team {}", i + 1));
        let id = 900_000 + (i as i64) * 11 + 1;
        let k = rng.random_range(2..=6usize).min(user_ids.len());
        let mut members: Vec<i64> = user_ids.sample(rng, k).copied().collect();
        members.sort_unstable();
        let created = between(rng, account_start - 60 * DAY, start - 60 * DAY);
        let t = Team {
            id,
            initials: name.chars().take(2).collect::<String>().to_uppercase(),
            mention: text::slug(&name),
            timezone: pick(rng, text::TIMEZONES).to_string(),
            photo_url: rng
                .random_bool(0.5)
                .then(|| format!("https://d33v4339jhl8k0.cloudfront.net/teams/{id}.png")),
            created_at: created,
            updated_at: between(rng, created, start - DAY),
            members,
            name,
        };
        st.team_snaps.insert(id, Arc::new(t.person()));
        st.teams.push(t);
    }
}

fn gen_mailboxes(rng: &mut ChaCha8Rng, st: &mut State, n: usize, account_start: Ts, start: Ts) {
    const NAMES: &[&str] = &[
        "Support",
        "Billing",
        "Ventes & Partenaires",
        "VIP 🌟",
        "Sales",
        "Help <Desk>",
    ];
    let mut folder_id = 1_200_000;
    let mut field_id = 8_000;
    let mut option_id = 20_000;
    let mut workflow_id = 61_000;
    for i in 0..n {
        let name = NAMES
            .get(i)
            .map(|s| s.to_string())
            .unwrap_or_else(|| format!("Mailbox {}", i + 1));
        let id = 31_000 + (i as i64) * 17 + 1;
        let slug = format!("{}{:x}", text::slug(&name), id);
        let created = account_start - between(rng, 10 * DAY, 200 * DAY);
        let mut folders = Vec::new();
        let mut add = |name: &str, kind: FolderKind, user_id: i64| {
            folder_id += 1;
            folders.push(Folder {
                id: folder_id,
                name: name.to_string(),
                kind,
                user_id,
                total_count: 0,
                active_count: 0,
                updated_at: created,
            });
        };
        add("Unassigned", FolderKind::Unassigned, 0);
        for u in &st.users {
            add("Mine", FolderKind::Mine, u.id);
        }
        add("Drafts", FolderKind::Drafts, 0);
        add("Assigned", FolderKind::Assigned, 0);
        add("Closed", FolderKind::Closed, 0);
        add("Spam", FolderKind::Spam, 0);

        let mut fields = Vec::new();
        let kinds = ["dropdown", "single_line", "number", "date", "multi_line"];
        let nf = rng.random_range(2..=4usize);
        for (k, kind) in kinds.iter().take(nf).enumerate() {
            field_id += 1;
            let options = if *kind == "dropdown" {
                let m = rng.random_range(3..=5usize);
                (0..m)
                    .map(|o| {
                        option_id += 1;
                        FieldOption {
                            id: option_id,
                            order: o as i64 + 1,
                            label: text::FIELD_LABELS[o % text::FIELD_LABELS.len()].to_string(),
                        }
                    })
                    .collect()
            } else {
                vec![]
            };
            let fname = match *kind {
                "dropdown" => "Category",
                "single_line" => "Order number",
                "number" => "Seats",
                "date" => "Renewal date",
                _ => "Notes (internes)",
            };
            fields.push(Field {
                id: field_id,
                name: fname.to_string(),
                kind,
                order: k as i64 + 1,
                required: k == 0 && rng.random_bool(0.5),
                options,
            });
        }

        let nw = rng.random_range(2..=4usize);
        for o in 0..nw {
            workflow_id += 3;
            let wc = between(rng, created, start - 30 * DAY);
            st.workflows.push(Workflow {
                id: workflow_id,
                mailbox_id: id,
                kind: if rng.random_bool(0.5) {
                    "manual"
                } else {
                    "automatic"
                },
                status: text::pick_str(rng, &["active", "active", "active", "inactive", "invalid"]),
                order: o as i64 + 1,
                name: pick(rng, text::WORKFLOW_NAMES).to_string(),
                created_at: wc,
                modified_at: between(rng, wc, start - DAY),
            });
        }

        st.mailboxes.push(Mailbox {
            id,
            email: format!("{}@acme.test", text::slug(&name)),
            slug,
            created_at: created,
            updated_at: between(rng, created, start - DAY),
            fields,
            folders,
            name,
        });
    }
}

fn gen_tags(rng: &mut ChaCha8Rng, st: &mut State, account_start: Ts) {
    for (i, name) in text::TAG_NAMES.iter().enumerate() {
        let created = account_start - between(rng, 0, 100 * DAY);
        st.tags.push(Tag {
            id: 7_000_000 + (i as i64) * 13 + 1,
            name: name.to_string(),
            slug: text::slug(name),
            color: pick(rng, text::COLORS).to_string(),
            created_at: created,
            updated_at: created,
        });
    }
}

const EMAIL_DOMAINS: &[&str] = &[
    "gmail.com",
    "example.org",
    "acme-customer.test",
    "yahoo.co.jp",
    "mail.ru",
    "outlook.com",
    "web.de",
    "münchen.example",
];

pub fn gen_customer(
    rng: &mut ChaCha8Rng,
    st: &mut State,
    id: i64,
    created: Ts,
    updated: Ts,
) -> Customer {
    let first = rng
        .random_bool(0.97)
        .then(|| pick(rng, text::FIRST_NAMES).to_string());
    let last = rng
        .random_bool(0.93)
        .then(|| pick(rng, text::LAST_NAMES).to_string());
    let mut next_entry = || {
        st.ids.entry += 1;
        st.ids.entry
    };
    let local = text::email_local(
        first.as_deref().unwrap_or("customer"),
        last.as_deref().unwrap_or(""),
    );
    let mut emails = Vec::new();
    if rng.random_bool(0.95) {
        let n = if rng.random_bool(0.15) { 2 } else { 1 };
        for k in 0..n {
            let domain = pick(rng, EMAIL_DOMAINS);
            let value = if k == 0 {
                format!("{local}{}@{domain}", id % 10_000_000)
            } else {
                format!("{local}+alt{}@{domain}", id % 10_000_000)
            };
            emails.push(Entry {
                id: next_entry(),
                value,
                kind: pick(rng, &["work", "home", "other"]).to_string(),
            });
        }
    }
    let mut phones = Vec::new();
    if rng.random_bool(0.4) {
        for _ in 0..rng.random_range(1..=2) {
            let value = format!("+1 617-555-{:04}", rng.random_range(0..10_000));
            phones.push(Entry {
                id: next_entry(),
                value,
                kind: pick(rng, &["work", "home", "mobile", "fax", "pager", "other"]).to_string(),
            });
        }
    }
    let mut chats = Vec::new();
    if rng.random_bool(0.1) {
        chats.push(Entry {
            id: next_entry(),
            value: format!("{local}_{}", id % 1000),
            kind: pick(
                rng,
                &[
                    "skype", "aim", "gtalk", "icq", "xmpp", "msn", "yahoo", "qq", "other",
                ],
            )
            .to_string(),
        });
    }
    let mut social_profiles = Vec::new();
    if rng.random_bool(0.2) {
        for _ in 0..rng.random_range(1..=2) {
            let kind = *pick(
                rng,
                &[
                    "twitter",
                    "facebook",
                    "linkedin",
                    "instagram",
                    "youtube",
                    "other",
                ],
            );
            social_profiles.push(Entry {
                id: next_entry(),
                value: format!("https://{kind}.example.com/{local}"),
                kind: kind.to_string(),
            });
        }
    }
    let mut websites = Vec::new();
    if rng.random_bool(0.15) {
        websites.push(Website {
            id: next_entry(),
            value: format!("https://www.{}.example.com/?ref=a&b=c", text::slug(&local)),
        });
    }
    let mut properties = Vec::new();
    if rng.random_bool(0.5) {
        let defs: [(&'static str, &str, &str); 4] = [
            ("text", "plan", "Plan"),
            ("number", "seats", "Seats"),
            ("dropdown", "region", "Region"),
            ("date", "signup-date", "Signup date"),
        ];
        for (kind, slug, name) in defs {
            if !rng.random_bool(0.6) {
                continue;
            }
            let (value, text) = match kind {
                "text" => {
                    let v = pick(rng, &["Free", "Pro", "Enterprise ✨", "Legacy <v1>"]).to_string();
                    (v.clone(), v)
                }
                "number" => {
                    let v = rng.random_range(1..500).to_string();
                    (v.clone(), v)
                }
                "dropdown" => {
                    let (oid, label) =
                        *pick(rng, &[("101", "EMEA"), ("102", "AMER"), ("103", "APAC")]);
                    (oid.to_string(), label.to_string())
                }
                _ => {
                    let v = fmt_day(created - rng.random_range(0..400) * DAY);
                    (v.clone(), v)
                }
            };
            properties.push(Property {
                kind,
                slug: slug.to_string(),
                name: name.to_string(),
                value,
                text,
                source: text::pick_str(rng, &["manual", "api"]),
            });
        }
    }
    let address = rng.random_bool(0.6).then(|| {
        let (city, state, country) = *pick(rng, text::CITIES);
        let mut lines = vec![format!(
            "{} {}",
            rng.random_range(1..300),
            pick(
                rng,
                &[
                    "Main St",
                    "Rue de la Paix",
                    "Hauptstraße",
                    "Avenida Paulista",
                    "銀座通り"
                ]
            )
        )];
        if rng.random_bool(0.3) {
            lines.push(format!("Apt {}", rng.random_range(1..99)));
        }
        Address {
            city: city.to_string(),
            state: state.map(str::to_string),
            postal_code: rng
                .random_bool(0.9)
                .then(|| format!("{:05}", rng.random_range(1000..99999))),
            country: country.to_string(),
            lines,
        }
    });
    let gravatar = rng.random_bool(0.3);
    let mut c = Customer {
        id,
        gender: text::pick_str(rng, &["male", "female", "unknown", "unknown"]),
        job_title: rng
            .random_bool(0.3)
            .then(|| pick(rng, text::JOB_TITLES).to_string()),
        location: rng.random_bool(0.3).then(|| {
            let (city, _, country) = *pick(rng, text::CITIES);
            format!("{city}, {country}")
        }),
        organization: None,
        organization_id: None,
        photo_type: if gravatar { "gravatar" } else { "unknown" },
        photo_url: gravatar
            .then(|| format!("https://www.gravatar.com/avatar/{:032x}", id as u128 * 7919)),
        age: rng
            .random_bool(0.15)
            .then(|| pick(rng, &["18-24", "25-34", "35-44", "45-54", "55+"]).to_string()),
        background: rng.random_bool(0.15).then(|| text::comment(rng)),
        draft: rng.random_bool(0.01),
        created_at: created,
        updated_at: updated,
        emails,
        phones,
        chats,
        social_profiles,
        websites,
        properties,
        address,
        loyalty_tier: rng
            .random_bool(0.04)
            .then(|| *pick(rng, &["gold", "silver", "bronze"])),
        snap: Arc::new(Person {
            id,
            kind: PersonKind::Customer,
            first: None,
            last: None,
            email: None,
            photo_url: None,
        }),
        first,
        last,
    };
    if rng.random_bool(0.4) {
        let i = rng.random_range(0..text::COMPANIES.len());
        c.organization = Some(text::COMPANIES[i].to_string());
        c.organization_id = rng.random_bool(0.5).then_some(5_000 + i as i64);
    }
    c.snap = Arc::new(c.person());
    c
}

fn gen_customers(rng: &mut ChaCha8Rng, st: &mut State, n: usize, account_start: Ts, start: Ts) {
    let from = account_start - 365 * DAY;
    let span = start - 2 * DAY - from;
    let mut created: Vec<Ts> = (0..n)
        .map(|_| {
            let u: f64 = rng.random();
            from + (span as f64 * u.sqrt()) as i64
        })
        .collect();
    created.sort_unstable();
    st.customers.reserve(created.len());
    st.ids.customer = 250_000_000;
    st.ids.entry = 120_000_000;
    for t in created {
        st.ids.customer += rng.random_range(1..=4);
        let id = st.ids.customer;
        let updated = if rng.random_bool(0.35) {
            between(rng, t, start - 1)
        } else {
            t
        };
        let c = gen_customer(rng, st, id, t, updated);
        st.customers.insert(id, c);
    }
}

/// One generated thread before its id, body and bookkeeping are filled in.
struct Draft {
    kind: ThreadType,
    by: PersonRef,
    at: Ts,
    status: &'static str,
}

/// Generates one conversation created at `created`, with threads no later than `horizon`.
/// `status` forces the final status (mutations create active conversations).
pub fn gen_conversation(
    rng: &mut ChaCha8Rng,
    st: &mut State,
    created: Ts,
    horizon: Ts,
    customer_id: i64,
    status: Option<ConvStatus>,
) -> Conversation {
    let id = st.ids.conversation;
    let number = st.ids.number;
    let kind = {
        let r: f64 = rng.random();
        if r < 0.7 {
            ConvType::Email
        } else if r < 0.85 {
            ConvType::Chat
        } else {
            ConvType::Phone
        }
    };
    let mb_idx = if rng.random_bool(0.5) {
        0
    } else {
        rng.random_range(0..st.mailboxes.len())
    };
    let mailbox = st.mailboxes[mb_idx].clone();
    let customer = st.customers[&customer_id].snap.clone();
    let age = horizon - created;
    let status = status.unwrap_or_else(|| {
        let r: f64 = rng.random();
        if kind == ConvType::Email && r < 0.04 {
            ConvStatus::Spam
        } else if age > 60 * DAY {
            if r < 0.92 {
                ConvStatus::Closed
            } else if r < 0.96 {
                ConvStatus::Active
            } else {
                ConvStatus::Pending
            }
        } else if r < 0.45 {
            ConvStatus::Closed
        } else if r < 0.8 {
            ConvStatus::Active
        } else {
            ConvStatus::Pending
        }
    });
    let users: Vec<PersonRef> = st
        .users
        .iter()
        .map(|u| st.user_snaps[&u.id].clone())
        .collect();
    let any_user = |rng: &mut ChaCha8Rng| users.choose(rng).expect("users").clone();
    let assignee = (status != ConvStatus::Spam && rng.random_bool(0.88)).then(|| any_user(rng));
    let by_user = match kind {
        ConvType::Phone => true,
        ConvType::Chat => false,
        ConvType::Email => rng.random_bool(0.15),
    };
    let initiator = if by_user {
        match &assignee {
            Some(a) if rng.random_bool(0.7) => a.clone(),
            _ => any_user(rng),
        }
    } else {
        customer.clone()
    };

    let mut drafts: Vec<Draft> = Vec::new();
    let first_kind = match (kind, by_user) {
        (ConvType::Email, false) => ThreadType::Customer,
        (ConvType::Email, true) => {
            if rng.random_bool(0.1) {
                ThreadType::ForwardChild
            } else {
                ThreadType::Message
            }
        }
        (ConvType::Chat, _) => {
            if rng.random_bool(0.4) {
                ThreadType::BeaconChat
            } else {
                ThreadType::Chat
            }
        }
        (ConvType::Phone, _) => ThreadType::Phone,
    };
    drafts.push(Draft {
        kind: first_kind,
        by: initiator.clone(),
        at: created,
        status: if status == ConvStatus::Spam {
            "spam"
        } else {
            "active"
        },
    });
    let mut t = created;
    let mut assigned_from: Option<usize> = None;
    let mut team_item: Option<usize> = None;
    let gap = |rng: &mut ChaCha8Rng, chat: bool| {
        if chat {
            rng.random_range(10..180)
        } else {
            rng.random_range(5 * MIN..2 * DAY)
        }
    };
    if status == ConvStatus::Spam {
        t += gap(rng, false);
        if t <= horizon && rng.random_bool(0.5) {
            drafts.push(Draft {
                kind: ThreadType::LineItem,
                by: any_user(rng),
                at: t,
                status: "spam",
            });
        }
    } else {
        let n_more = match kind {
            ConvType::Email => rng.random_range(0..=5),
            ConvType::Chat => rng.random_range(3..=16),
            ConvType::Phone => rng.random_range(0..=3),
        };
        let mut customer_next = by_user;
        for k in 0..n_more {
            t += gap(rng, kind == ConvType::Chat);
            if t > horizon {
                break;
            }
            if k == 0 && assignee.is_some() {
                // Assignment line item(s) right after the first thread.
                if rng.random_bool(0.06) && !st.teams.is_empty() {
                    team_item = Some(drafts.len());
                    drafts.push(Draft {
                        kind: ThreadType::LineItem,
                        by: any_user(rng),
                        at: t,
                        status: "nochange",
                    });
                }
                assigned_from = Some(drafts.len());
                let by = if rng.random_bool(0.5) {
                    assignee.clone().expect("assignee")
                } else {
                    any_user(rng)
                };
                drafts.push(Draft {
                    kind: ThreadType::LineItem,
                    by,
                    at: t,
                    status: "nochange",
                });
                continue;
            }
            let agent = || match &assignee {
                Some(a) => a.clone(),
                None => users[0].clone(),
            };
            if kind != ConvType::Chat && rng.random_bool(0.12) {
                let by = if rng.random_bool(0.8) {
                    agent()
                } else {
                    any_user(rng)
                };
                drafts.push(Draft {
                    kind: ThreadType::Note,
                    by,
                    at: t,
                    status: "nochange",
                });
            } else if customer_next {
                let tk = if kind == ConvType::Chat {
                    ThreadType::Chat
                } else {
                    ThreadType::Customer
                };
                drafts.push(Draft {
                    kind: tk,
                    by: customer.clone(),
                    at: t,
                    status: "active",
                });
                customer_next = false;
            } else {
                let tk = match kind {
                    ConvType::Chat => ThreadType::Chat,
                    _ if rng.random_bool(0.02) => ThreadType::ForwardParent,
                    _ => ThreadType::Message,
                };
                let by = if rng.random_bool(0.85) {
                    agent()
                } else {
                    any_user(rng)
                };
                drafts.push(Draft {
                    kind: tk,
                    by,
                    at: t,
                    status: "active",
                });
                customer_next = true;
            }
        }
    }
    let last_at = drafts.last().map(|d| d.at).unwrap_or(created);
    let mut closed = None;
    if status == ConvStatus::Closed {
        let closer = match &assignee {
            Some(a) if rng.random_bool(0.9) => a.clone(),
            _ => any_user(rng),
        };
        // Drawn within what is left before the horizon: closings do not pile up on its last second.
        let at = between(rng, (last_at + MIN).min(horizon), (last_at + DAY).min(horizon)).max(last_at);
        let last = drafts.last_mut().expect("first thread");
        if last.by.kind == PersonKind::User
            && last.kind == ThreadType::Message
            && last.by.id == closer.id
            && rng.random_bool(0.5)
        {
            last.status = "closed";
            closed = Some((closer, last.at));
        } else {
            drafts.push(Draft {
                kind: ThreadType::LineItem,
                by: closer.clone(),
                at,
                status: "closed",
            });
            closed = Some((closer, at));
        }
    } else if status == ConvStatus::Pending
        && let Some(d) = drafts
            .iter_mut()
            .rev()
            .find(|d| d.by.kind == PersonKind::User && d.kind != ThreadType::LineItem)
    {
        d.status = "pending";
    }

    // Materialise the threads.
    let cust_email = customer.email.clone();
    let mut threads = Vec::with_capacity(drafts.len());
    let mut assigned: Option<PersonRef> = None;
    let conv_cc: Vec<String> = if rng.random_bool(0.08) {
        vec![format!("cc{}@example.org", rng.random_range(1..999))]
    } else {
        vec![]
    };
    let conv_bcc: Vec<String> = if rng.random_bool(0.03) {
        vec!["audit@acme.test".to_string()]
    } else {
        vec![]
    };
    for (i, d) in drafts.into_iter().enumerate() {
        st.ids.thread += rng.random_range(1..=3);
        let tid = st.ids.thread;
        let mut action = None;
        if team_item == Some(i) {
            let team = st.teams.choose(rng).expect("teams");
            assigned = Some(st.team_snaps[&team.id].clone());
            action = Some(Box::new(Action {
                kind: "assigned",
                text: format!("{} assigned to {}", d.by.full_name(), team.name),
            }));
        }
        if assigned_from == Some(i) {
            assigned = assignee.clone();
            let who = assignee.as_ref().map(|a| a.full_name()).unwrap_or_default();
            action = Some(Box::new(Action {
                kind: "assigned",
                text: format!("{} assigned to {}", d.by.full_name(), who),
            }));
        }
        if d.kind == ThreadType::LineItem && action.is_none() {
            action = Some(Box::new(match d.status {
                "closed" => Action {
                    kind: "changed-ticket-status",
                    text: format!("{} marked as Closed", d.by.full_name()),
                },
                "spam" => Action {
                    kind: "changed-ticket-status",
                    text: format!("{} marked as Spam", d.by.full_name()),
                },
                _ => Action {
                    kind: "changed-ticket-status",
                    text: format!("{} changed the status", d.by.full_name()),
                },
            }));
        }
        let from_user = d.by.kind == PersonKind::User;
        let (source_type, source_via) = match d.kind {
            ThreadType::Customer => (
                if rng.random_bool(0.85) {
                    "email"
                } else {
                    "web"
                },
                "customer",
            ),
            ThreadType::Chat | ThreadType::BeaconChat => {
                ("chat", if from_user { "user" } else { "customer" })
            }
            ThreadType::Phone => ("phone", "user"),
            ThreadType::Message if rng.random_bool(0.05) => ("api", "user"),
            _ => ("web", "user"),
        };
        let is_message = matches!(
            d.kind,
            ThreadType::Message | ThreadType::ForwardParent | ThreadType::ForwardChild
        );
        let to = if d.kind == ThreadType::ForwardParent {
            vec!["partner@vendor.example".to_string()]
        } else if is_message {
            cust_email.iter().cloned().collect()
        } else {
            vec![]
        };
        let cc = if is_message || d.kind == ThreadType::Customer {
            conv_cc.clone()
        } else {
            vec![]
        };
        let bcc = if is_message { conv_bcc.clone() } else { vec![] };
        let opened_at = (d.kind == ThreadType::Message && rng.random_bool(0.6))
            .then(|| d.at + rng.random_range(MIN..DAY))
            .filter(|o| *o <= horizon);
        let mut attachments = Vec::new();
        if matches!(
            d.kind,
            ThreadType::Customer | ThreadType::Message | ThreadType::Chat
        ) && rng.random_bool(0.08)
        {
            for _ in 0..rng.random_range(1..=3) {
                st.ids.attachment += rng.random_range(1..=5);
                let image = rng.random_bool(0.5);
                let (filename, mime, w, h) = if image {
                    (
                        format!("screenshot-{}.png", rng.random_range(1..999)),
                        "image/png",
                        rng.random_range(200..2000),
                        rng.random_range(200..1500),
                    )
                } else {
                    let (f, m) = *pick(
                        rng,
                        &[
                            ("facture n°12.pdf", "application/pdf"),
                            ("log.txt", "text/plain"),
                            ("データ.csv", "text/csv"),
                        ],
                    );
                    (f.to_string(), m, 0, 0)
                };
                attachments.push(Attachment {
                    id: st.ids.attachment,
                    filename,
                    mime_type: mime,
                    width: w,
                    height: h,
                    size: rng.random_range(100..5_000_000),
                });
            }
        }
        let state = if d.kind == ThreadType::Message
            && status == ConvStatus::Active
            && rng.random_bool(0.01)
        {
            "draft"
        } else {
            "published"
        };
        threads.push(Thread {
            id: tid,
            kind: d.kind,
            status: d.status,
            state,
            action,
            body: if d.kind.has_body() {
                Body::Generated
            } else {
                Body::None
            },
            source_type,
            source_via,
            customer: customer.clone(),
            created_by: d.by,
            assigned_to: assigned.clone(),
            saved_reply_id: (d.kind == ThreadType::Message && rng.random_bool(0.1))
                .then(|| 70_000 + rng.random_range(1..20)),
            to,
            cc,
            bcc,
            created_at: d.at,
            opened_at,
            rating: None,
            attachments,
        });
    }
    // A happiness rating on one agent reply of some conversations.
    if status != ConvStatus::Spam && rng.random_bool(0.15) {
        let candidates: Vec<usize> = threads
            .iter()
            .enumerate()
            .filter(|(_, t)| t.kind == ThreadType::Message && t.state == "published")
            .map(|(i, _)| i)
            .collect();
        if let Some(&i) = candidates.choose(rng) {
            let at = threads[i].created_at + rng.random_range(10 * MIN..2 * DAY);
            if at <= horizon {
                let r: f64 = rng.random();
                let value = if r < 0.7 {
                    1
                } else if r < 0.88 {
                    2
                } else {
                    3
                };
                threads[i].rating = Some(Box::new(Rating {
                    value,
                    customer: customer.clone(),
                    comments: rng.random_bool(0.45).then(|| text::comment(rng)),
                    created_at: at,
                }));
            }
        }
    }

    let user_updated_at = threads
        .iter()
        .filter(|t| t.created_by.kind == PersonKind::User)
        .map(|t| t.created_at)
        .chain(closed.as_ref().map(|c| c.1))
        .max()
        .unwrap_or(created);
    let mut tags: Vec<i64> = if rng.random_bool(0.5) {
        let k = rng.random_range(1..=3usize);
        st.tags.sample(rng, k).map(|t| t.id).collect()
    } else {
        vec![]
    };
    tags.sort_unstable();
    let mut custom_fields = Vec::new();
    for f in &mailbox.fields {
        if rng.random_bool(0.45) {
            custom_fields.push(custom_value(rng, f, created));
        }
    }
    let (source_type, source_via) = (threads[0].source_type, threads[0].source_via);
    let mut c = Conversation {
        id,
        number,
        kind,
        status,
        state: "published",
        subject: text::subject(rng),
        mailbox_id: mailbox.id,
        folder_id: 0,
        assignee: assignee.clone(),
        created_by: initiator,
        primary_customer: customer,
        created_at: created,
        closed_by: closed.as_ref().map(|c| c.0.clone()),
        closed_at: closed.as_ref().map(|c| c.1),
        user_updated_at,
        customer_waiting_since: None,
        source_type,
        source_via,
        tags,
        cc: conv_cc,
        bcc: conv_bcc,
        custom_fields,
        snooze_until: (status == ConvStatus::Pending && rng.random_bool(0.2))
            .then(|| (horizon + rng.random_range(HOUR..7 * DAY), users[0].id)),
        priority: rng.random_bool(0.03).then(|| *pick(rng, &["high", "low"])),
        modified: 0,
        threads,
    };
    c.recompute_waiting();
    let mut modified = c
        .threads
        .iter()
        .map(|t| t.created_at)
        .max()
        .unwrap_or(created)
        .max(c.derived_updated_at());
    if let Some(ca) = c.closed_at {
        modified = modified.max(ca);
    }
    if rng.random_bool(0.12) && modified + HOUR < horizon {
        // Touched later by a workflow: modified moves, the visible times do not. Drawn within
        // what is left before the horizon, so touches do not pile up on its last second.
        modified = between(rng, modified + HOUR, (modified + 10 * DAY).min(horizon));
    }
    c.modified = modified;
    c.folder_id = st.folder_for(c.mailbox_id, c.status, c.assignee.as_ref());
    c
}

/// A value for a custom field: dropdowns store the option id with its label as `text`.
pub fn custom_value(rng: &mut ChaCha8Rng, f: &Field, around: Ts) -> CustomFieldValue {
    let (value, text) = match f.kind {
        "dropdown" => {
            let o = f.options.choose(rng).expect("options");
            (o.id.to_string(), o.label.clone())
        }
        "number" => {
            let v = rng.random_range(1..1000).to_string();
            (v.clone(), v)
        }
        "date" => {
            let v = fmt_day(around + rng.random_range(0..365) * DAY);
            (v.clone(), v)
        }
        _ => {
            let v = format!(
                "#{}-{}",
                rng.random_range(100..999),
                pick(rng, &["A", "β", "連", "🚚"])
            );
            (v.clone(), v)
        }
    };
    CustomFieldValue {
        field_id: f.id,
        value,
        text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub fn params(n: usize) -> GenParams {
        GenParams {
            seed: 42,
            conversations: n,
            customers: (n * 6 / 10).max(20),
            mailboxes: 3,
            users: 12,
            teams: 3,
            start: 1_780_315_200,
        }
    }

    #[test]
    fn deterministic_for_a_seed() {
        let a = generate(&params(300));
        let b = generate(&params(300));
        let mut ia: Vec<_> = a
            .convs
            .values()
            .map(|c| (c.id, c.subject.clone(), c.threads.len(), c.modified))
            .collect();
        let mut ib: Vec<_> = b
            .convs
            .values()
            .map(|c| (c.id, c.subject.clone(), c.threads.len(), c.modified))
            .collect();
        ia.sort();
        ib.sort();
        assert_eq!(ia, ib);
        let mut other = params(300);
        other.seed = 43;
        let c = generate(&other);
        let mut ic: Vec<_> = c
            .convs
            .values()
            .map(|c| (c.id, c.subject.clone(), c.threads.len(), c.modified))
            .collect();
        ic.sort();
        assert_ne!(ia, ic);
    }

    #[test]
    fn realistic_shape() {
        let st = generate(&params(2000));
        assert_eq!(st.convs.len(), 2000);
        let threads: usize = st.convs.values().map(|c| c.threads.len()).sum();
        assert!(threads > 6000 && threads < 16000, "{threads}");
        for c in st.convs.values() {
            assert!(c.modified >= c.derived_updated_at());
            assert!(c.modified >= c.created_at);
            assert!(
                c.threads
                    .windows(2)
                    .all(|w| w[0].created_at <= w[1].created_at && w[0].id < w[1].id)
            );
            assert!(c.threads.iter().all(|t| t.created_at <= 1_780_315_200));
            assert_eq!(c.closed_at.is_some(), c.status == ConvStatus::Closed);
        }
        // Every status, type and thread type occurs.
        for s in ConvStatus::ALL {
            assert!(st.convs.values().any(|c| c.status == s), "{s:?}");
        }
        let kinds: HashSet<&str> = st
            .convs
            .values()
            .flat_map(|c| c.threads.iter().map(|t| t.kind.as_str()))
            .collect();
        for k in [
            "beaconchat",
            "chat",
            "customer",
            "forwardchild",
            "forwardparent",
            "lineitem",
            "message",
            "note",
            "phone",
        ] {
            assert!(kinds.contains(k), "{k}");
        }
        // Created over about two years: many months.
        let months: HashSet<String> = st
            .convs
            .values()
            .map(|c| super::super::dates::fmt_ts(c.created_at)[..7].to_string())
            .collect();
        assert!(months.len() >= 20, "{}", months.len());
        assert!(!st.ratings.is_empty());
        // Folder counts add up.
        let total: i64 = st
            .mailboxes
            .iter()
            .flat_map(|m| m.folders.iter())
            .filter(|f| f.kind != FolderKind::Assigned)
            .map(|f| f.total_count)
            .sum();
        assert_eq!(total, 2000);
    }
}
