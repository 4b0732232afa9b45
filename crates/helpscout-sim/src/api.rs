//! Read endpoints: lists with their filters and sorting, single objects, the report.

use std::collections::HashMap;

use serde_json::{Value, json};

use super::dates::{Ts, parse_api_date};
use super::index::{ConvSort, page_of};
use super::model::{ConvStatus, ConvType, Conversation, Customer};
use super::mutate;
use super::paging::{self, CONVERSATIONS_PAGE, DEFAULT_PAGE, ListRequest};
use super::render;
use super::reply::Reply;
use super::state::State;

/// Page size of the happiness ratings report.
pub const REPORT_PAGE: usize = 50;

/// A merged conversation redirects to its target for this long, then answers 404.
pub const MERGE_REDIRECT_SECS: i64 = 60 * 86_400;

pub struct Ctx<'a> {
    /// "http://127.0.0.1:PORT/v2"
    pub base: &'a str,
    pub list: ListRequest,
    pub now: Ts,
}

impl Ctx<'_> {
    fn param(&self, k: &str) -> Option<&str> {
        self.list
            .params
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
    }
}

fn page_param(ctx: &Ctx) -> Result<usize, Reply> {
    match ctx.param("page") {
        None | Some("") => Ok(1),
        Some(p) => match p.parse::<i64>() {
            Ok(n) => Ok(n.max(1) as usize),
            Err(_) => Err(Reply::bad_param("page", "must be a number", p)),
        },
    }
}

fn date_param(ctx: &Ctx, k: &str) -> Result<Option<Ts>, Reply> {
    match ctx.param(k) {
        None => Ok(None),
        Some(s) => parse_api_date(s)
            .map(Some)
            .ok_or_else(|| Reply::bad_param(k, "Malformed date", s)),
    }
}

fn ids_param(ctx: &Ctx, k: &str) -> Result<Option<Vec<i64>>, Reply> {
    match ctx.param(k) {
        None | Some("") => Ok(None),
        Some(s) => s
            .split(',')
            .map(|x| x.trim().parse::<i64>())
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
            .map_err(|_| Reply::bad_param(k, "must be a comma separated list of ids", s)),
    }
}

fn int_param(ctx: &Ctx, k: &str) -> Result<Option<i64>, Reply> {
    match ctx.param(k) {
        None | Some("") => Ok(None),
        Some(s) => s
            .trim()
            .parse::<i64>()
            .map(Some)
            .map_err(|_| Reply::bad_param(k, "must be a number", s)),
    }
}

fn sort_order(ctx: &Ctx) -> Result<bool, Reply> {
    match ctx.param("sortOrder") {
        None => Ok(true),
        Some(s) if s.eq_ignore_ascii_case("desc") => Ok(true),
        Some(s) if s.eq_ignore_ascii_case("asc") => Ok(false),
        Some(s) => Err(Reply::bad_param("sortOrder", "must be one of asc, desc", s)),
    }
}

// ---------------------------------------------------------------- conversations

#[derive(Clone, Copy, Debug, PartialEq)]
enum SortKey {
    Indexed(ConvSort),
    CustomerEmail,
    CustomerName,
    MailboxId,
    Score,
    Status,
    Subject,
    WaitingSince,
}

#[derive(Debug)]
pub struct ConvQuery {
    status: Option<ConvStatus>,
    mailboxes: Option<Vec<i64>>,
    folder: Option<i64>,
    tags: Option<Vec<String>>,
    assigned_to: Option<i64>,
    number: Option<i64>,
    modified_since: Option<Ts>,
    /// `query` ranges: (field, from, to), both ends inclusive.
    ranges: Vec<Range>,
    sort: SortKey,
    desc: bool,
}

fn conv_query(ctx: &Ctx) -> Result<ConvQuery, Reply> {
    let status = match ctx.param("status") {
        None | Some("") => Some(ConvStatus::Active),
        Some("all") => None,
        Some(s) => Some(ConvStatus::parse(s).ok_or_else(|| {
            Reply::bad_param(
                "status",
                "must be one of active, pending, closed, spam, all",
                s,
            )
        })?),
    };
    let sort = match ctx.param("sortField") {
        None | Some("") | Some("createdAt") => SortKey::Indexed(ConvSort::CreatedAt),
        Some("modifiedAt") => SortKey::Indexed(ConvSort::ModifiedAt),
        Some("number") => SortKey::Indexed(ConvSort::Number),
        Some("customerEmail") => SortKey::CustomerEmail,
        Some("customerName") => SortKey::CustomerName,
        Some("mailboxid") => SortKey::MailboxId,
        Some("score") => SortKey::Score,
        Some("status") => SortKey::Status,
        Some("subject") => SortKey::Subject,
        Some("waitingSince") => SortKey::WaitingSince,
        Some(s) => return Err(Reply::bad_param("sortField", "unsupported sort field", s)),
    };
    Ok(ConvQuery {
        status,
        mailboxes: ids_param(ctx, "mailbox")?,
        folder: int_param(ctx, "folder")?,
        tags: ctx
            .param("tag")
            .filter(|s| !s.is_empty())
            .map(|s| s.split(',').map(|t| t.trim().to_string()).collect()),
        assigned_to: int_param(ctx, "assigned_to")?,
        number: int_param(ctx, "number")?,
        modified_since: date_param(ctx, "modifiedSince")?,
        // An `email:` term is for customer searches; conversations ignore it.
        ranges: search_param(ctx)?.ranges,
        sort,
        desc: sort_order(ctx)?,
    })
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum RangeField {
    Modified,
    Created,
    Closed,
}

/// A `query` date range: field, from, to (both ends inclusive, `None` = `*`).
type Range = (RangeField, Option<Ts>, Option<Ts>);

/// The terms of a search `query` the simulator understands.
#[derive(Debug, Default, PartialEq)]
struct Search {
    ranges: Vec<Range>,
    /// `email:"jane@example.com"` (quotes optional), lower-cased: an exact,
    /// case-insensitive match on one of a customer's emails.
    email: Option<String>,
}

fn search_param(ctx: &Ctx) -> Result<Search, Reply> {
    match ctx.param("query") {
        None | Some("") => Ok(Search::default()),
        Some(q) => parse_query(q),
    }
}

/// The terms of a search `query` such as `(modifiedAt:[2024-01-01T00:00:00Z TO *])` or
/// `(email:"jane@example.com")`, joined by AND. Other terms are accepted and ignored.
fn parse_query(q: &str) -> Result<Search, Reply> {
    let mut out = Search::default();
    let inner = q.trim().trim_start_matches('(').trim_end_matches(')');
    for term in inner.split(" AND ") {
        let term = term.trim().trim_start_matches('(').trim_end_matches(')');
        let Some((field, range)) = term.split_once(':') else {
            continue;
        };
        let field = match field.trim() {
            "modifiedAt" => RangeField::Modified,
            "createdAt" => RangeField::Created,
            "closedAt" => RangeField::Closed,
            "email" => {
                let v = range.trim();
                let v = match v.strip_prefix('"') {
                    Some(rest) => rest
                        .strip_suffix('"')
                        .ok_or_else(|| Reply::bad_param("query", "Malformed query", q))?,
                    None => v,
                };
                if v.is_empty() || v.contains(|c: char| c == '"' || c.is_whitespace()) {
                    return Err(Reply::bad_param("query", "Malformed query", q));
                }
                out.email = Some(v.to_lowercase());
                continue;
            }
            _ => continue,
        };
        let range = range.trim();
        let Some(body) = range.strip_prefix('[').and_then(|r| r.strip_suffix(']')) else {
            return Err(Reply::bad_param("query", "Malformed range", q));
        };
        let Some((a, b)) = body.split_once(" TO ") else {
            return Err(Reply::bad_param("query", "Malformed range", q));
        };
        let bound = |s: &str| -> Result<Option<Ts>, Reply> {
            match s.trim() {
                "*" => Ok(None),
                d => parse_api_date(d)
                    .map(Some)
                    .ok_or_else(|| Reply::bad_param("query", "Malformed date", q)),
            }
        };
        out.ranges.push((field, bound(a)?, bound(b)?));
    }
    Ok(out)
}

/// Whether a row's value for the range's field (`None`: the row has none) is inside it.
fn within(v: Option<Ts>, r: &Range) -> bool {
    v.is_some_and(|v| r.1.is_none_or(|a| v >= a) && r.2.is_none_or(|b| v <= b))
}

fn in_range(c: &Conversation, r: &Range) -> bool {
    within(
        match r.0 {
            RangeField::Modified => Some(c.modified),
            RangeField::Created => Some(c.created_at),
            RangeField::Closed => c.closed_at,
        },
        r,
    )
}

/// Customers have no closed time: a `closedAt` range matches none.
fn customer_in_range(c: &Customer, r: &Range) -> bool {
    within(
        match r.0 {
            RangeField::Modified => Some(c.updated_at),
            RangeField::Created => Some(c.created_at),
            RangeField::Closed => None,
        },
        r,
    )
}

#[derive(PartialEq, Eq, PartialOrd, Ord)]
enum K {
    I(i64),
    S(String),
}

/// The ids of one page of a conversation query, and the query's total.
pub fn select_conversations(
    st: &State,
    q: &ConvQuery,
    offset: usize,
    limit: usize,
) -> (usize, Vec<i64>) {
    let simple_filters = q.folder.is_none()
        && q.tags.is_none()
        && q.assigned_to.is_none()
        && q.number.is_none()
        && q.ranges.is_empty();
    let one_mailbox = match &q.mailboxes {
        None => Some(None),
        Some(v) if v.len() == 1 => Some(Some(v[0])),
        _ => None,
    };
    if let (true, Some(mb), SortKey::Indexed(sort)) = (simple_filters, one_mailbox, q.sort)
        && (q.modified_since.is_none() || sort == ConvSort::ModifiedAt)
    {
        let Some(bucket) = st.conv_idx.bucket((mb, q.status)) else {
            return (0, vec![]);
        };
        let range = bucket.get(sort).since(if sort == ConvSort::ModifiedAt {
            q.modified_since
        } else {
            None
        });
        return (range.len(), page_of(range, q.desc, offset, limit));
    }
    // Creation-time ranges alone, in creation order: a slice of the index (counts by span).
    let created_only = q.folder.is_none()
        && q.tags.is_none()
        && q.assigned_to.is_none()
        && q.number.is_none()
        && q.modified_since.is_none()
        && !q.ranges.is_empty()
        && q.ranges.iter().all(|r| r.0 == RangeField::Created);
    if let (true, Some(mb), SortKey::Indexed(ConvSort::CreatedAt)) = (created_only, one_mailbox, q.sort) {
        let Some(bucket) = st.conv_idx.bucket((mb, q.status)) else {
            return (0, vec![]);
        };
        let lo = q.ranges.iter().filter_map(|r| r.1).max();
        let hi = q.ranges.iter().filter_map(|r| r.2).min();
        let range = bucket.get(ConvSort::CreatedAt).between(lo, hi);
        return (range.len(), page_of(range, q.desc, offset, limit));
    }
    // General path: filter and sort the candidates (O(n log n); only for rarer queries).
    let mailboxes: Vec<Option<i64>> = match &q.mailboxes {
        None => vec![None],
        Some(v) => v.iter().map(|m| Some(*m)).collect(),
    };
    let tag_ids: Option<Vec<i64>> = q.tags.as_ref().map(|names| {
        st.tags
            .iter()
            .filter(|t| names.contains(&t.name))
            .map(|t| t.id)
            .collect()
    });
    let mut keyed: Vec<(K, i64)> = Vec::new();
    for mb in mailboxes {
        let Some(bucket) = st.conv_idx.bucket((mb, q.status)) else {
            continue;
        };
        for &(_, id) in bucket.created.since(None) {
            let c = &st.convs[&id];
            if q.modified_since.is_some_and(|s| c.modified < s)
                || !q.ranges.iter().all(|r| in_range(c, r))
                || q.folder.is_some_and(|f| c.folder_id != f)
                || q.assigned_to
                    .is_some_and(|u| c.assignee.as_ref().map(|a| a.id) != Some(u))
                || q.number.is_some_and(|n| c.number != n)
                || tag_ids
                    .as_ref()
                    .is_some_and(|ts| !c.tags.iter().any(|t| ts.contains(t)))
            {
                continue;
            }
            keyed.push((sort_key(c, q.sort), id));
        }
    }
    keyed.sort();
    keyed.dedup_by(|a, b| a.1 == b.1);
    (keyed.len(), page_ids(&keyed, q.desc, offset, limit))
}

/// The ids of one page of `keyed` (sorted ascending by key), read in either order.
fn page_ids<K>(keyed: &[(K, i64)], desc: bool, offset: usize, limit: usize) -> Vec<i64> {
    if desc {
        keyed.iter().rev().skip(offset).take(limit).map(|k| k.1).collect()
    } else {
        keyed.iter().skip(offset).take(limit).map(|k| k.1).collect()
    }
}

fn sort_key(c: &Conversation, s: SortKey) -> K {
    match s {
        SortKey::Indexed(ConvSort::CreatedAt) => K::I(c.created_at),
        SortKey::Indexed(ConvSort::ModifiedAt) => K::I(c.modified),
        SortKey::Indexed(ConvSort::Number) | SortKey::Score => K::I(c.number),
        SortKey::CustomerEmail => K::S(
            c.primary_customer
                .email
                .clone()
                .unwrap_or_default()
                .to_lowercase(),
        ),
        SortKey::CustomerName => K::S(c.primary_customer.full_name().to_lowercase()),
        SortKey::MailboxId => K::I(c.mailbox_id),
        SortKey::Status => K::S(c.status.as_str().to_string()),
        SortKey::Subject => K::S(c.subject.to_lowercase()),
        SortKey::WaitingSince => K::I(c.customer_waiting_since.map(|w| w.0).unwrap_or(0)),
    }
}

pub fn list_conversations(st: &mut State, ctx: &Ctx, drift: Option<usize>) -> Reply {
    let r = (|| -> Result<Reply, Reply> {
        let q = conv_query(ctx)?;
        let page = page_param(ctx)?;
        let embed = ctx
            .param("embed")
            .is_some_and(|e| e.split(',').any(|x| x == "threads"));
        let size = CONVERSATIONS_PAGE;
        let (total, ids) = select_conversations(st, &q, paging::offset(page, size), size);
        let items: Vec<Value> = ids
            .iter()
            .map(|id| render::conversation(st, &st.convs[id], ctx.base, embed))
            .collect();
        let v = paging::envelope(&ctx.list, "conversations", items, page, size, total);
        if let Some(rows) = drift {
            // Sorted by modified time ascending, a change to rows already served moves them
            // to the end and shifts the rows not reached yet back by as many places; in any
            // other order, the rows just past this page change.
            let targets = if q.sort == SortKey::Indexed(ConvSort::ModifiedAt) && !q.desc {
                ids[ids.len().saturating_sub(rows)..].to_vec()
            } else {
                select_conversations(st, &q, paging::offset(page + 1, size), rows).1
            };
            mutate::drift_conversations(st, &targets, ctx.now);
        }
        Ok(Reply::hal(&v))
    })();
    r.unwrap_or_else(|e| e)
}

/// 301 to the merge target for 60 days, then 404; 404 for deletions and unknown ids.
fn removed_answer(st: &State, ctx: &Ctx, id: i64, suffix: &str) -> Reply {
    match st.removed.get(&id) {
        Some(r) => match r.merged_into {
            Some(target) if ctx.now < r.at + MERGE_REDIRECT_SECS => Reply::empty(301).header(
                "Location",
                format!("{}/conversations/{target}{suffix}", ctx.base),
            ),
            _ => Reply::not_found("Conversation not found"),
        },
        None => Reply::not_found("Conversation not found"),
    }
}

pub fn get_conversation(st: &State, ctx: &Ctx, id: i64) -> Reply {
    match st.convs.get(&id) {
        Some(c) => {
            let embed = ctx
                .param("embed")
                .is_some_and(|e| e.split(',').any(|x| x == "threads"));
            Reply::json_with(
                200,
                super::reply::HAL_JSON,
                &render::conversation(st, c, ctx.base, embed),
            )
        }
        None => removed_answer(st, ctx, id, ""),
    }
}

pub fn list_threads(st: &State, ctx: &Ctx, id: i64) -> Reply {
    let Some(c) = st.convs.get(&id) else {
        return removed_answer(st, ctx, id, "/threads");
    };
    let page = match page_param(ctx) {
        Ok(p) => p,
        Err(e) => return e,
    };
    let all = render::threads_newest_first(c);
    let off = paging::offset(page, DEFAULT_PAGE);
    let items: Vec<Value> = all
        .iter()
        .skip(off)
        .take(DEFAULT_PAGE)
        .map(|t| render::thread(st, t, ctx.base))
        .collect();
    Reply::hal(&paging::envelope(
        &ctx.list,
        "threads",
        items,
        page,
        DEFAULT_PAGE,
        all.len(),
    ))
}

// ---------------------------------------------------------------- customers

pub fn list_customers(st: &mut State, ctx: &Ctx, drift: Option<usize>) -> Reply {
    let r = (|| -> Result<Reply, Reply> {
        let since = date_param(ctx, "modifiedSince")?;
        let page = page_param(ctx)?;
        let desc = sort_order(ctx)?;
        let sort = ctx.param("sortField").unwrap_or("createdAt");
        if !matches!(
            sort,
            "createdAt" | "modifiedAt" | "firstName" | "lastName" | "score"
        ) {
            return Err(Reply::bad_param(
                "sortField",
                "unsupported sort field",
                sort,
            ));
        }
        let first = ctx.param("firstName").map(str::to_string);
        let last = ctx.param("lastName").map(str::to_string);
        let search = search_param(ctx)?;
        let size = DEFAULT_PAGE;
        let select = |st: &State, offset: usize, limit: usize| -> (usize, Vec<i64>) {
            let fast = first.is_none()
                && last.is_none()
                && search == Search::default()
                && (sort == "modifiedAt"
                    || (matches!(sort, "createdAt" | "score") && since.is_none()));
            if fast {
                let idx = if sort == "modifiedAt" {
                    &st.cust_idx.modified
                } else {
                    &st.cust_idx.created
                };
                let range = idx.since(if sort == "modifiedAt" { since } else { None });
                return (range.len(), page_of(range, desc, offset, limit));
            }
            let mut keyed: Vec<(K, i64)> = st
                .customers
                .values()
                .filter(|c| since.is_none_or(|s| c.updated_at >= s))
                .filter(|c| {
                    first
                        .as_ref()
                        .is_none_or(|f| c.first.as_deref() == Some(f.as_str()))
                })
                .filter(|c| {
                    last.as_ref()
                        .is_none_or(|l| c.last.as_deref() == Some(l.as_str()))
                })
                .filter(|c| {
                    search
                        .email
                        .as_ref()
                        .is_none_or(|e| c.emails.iter().any(|x| x.value.to_lowercase() == *e))
                })
                .filter(|c| search.ranges.iter().all(|r| customer_in_range(c, r)))
                .map(|c| (customer_key(c, sort), c.id))
                .collect();
            keyed.sort();
            (keyed.len(), page_ids(&keyed, desc, offset, limit))
        };
        let (total, ids) = select(&*st, paging::offset(page, size), size);
        let items: Vec<Value> = ids
            .iter()
            .map(|id| render::customer(&st.customers[id], ctx.base))
            .collect();
        let v = paging::envelope(&ctx.list, "customers", items, page, size, total);
        if let Some(rows) = drift {
            let targets = if sort == "modifiedAt" && !desc {
                ids[ids.len().saturating_sub(rows)..].to_vec()
            } else {
                select(&*st, paging::offset(page + 1, size), rows).1
            };
            mutate::drift_customers(st, &targets, ctx.now);
        }
        Ok(Reply::hal(&v))
    })();
    r.unwrap_or_else(|e| e)
}

fn customer_key(c: &Customer, sort: &str) -> K {
    match sort {
        "modifiedAt" => K::I(c.updated_at),
        "firstName" => K::S(c.first.clone().unwrap_or_default().to_lowercase()),
        "lastName" => K::S(c.last.clone().unwrap_or_default().to_lowercase()),
        _ => K::I(c.created_at),
    }
}

pub fn get_customer(st: &State, ctx: &Ctx, id: i64) -> Reply {
    match st.customers.get(&id) {
        Some(c) => Reply::json_with(200, super::reply::HAL_JSON, &render::customer(c, ctx.base)),
        None => Reply::not_found("Customer not found"),
    }
}

// ---------------------------------------------------------------- small lists

fn small_list(ctx: &Ctx, key: &str, all: Vec<Value>) -> Reply {
    let page = match page_param(ctx) {
        Ok(p) => p,
        Err(e) => return e,
    };
    let total = all.len();
    let items: Vec<Value> = all
        .into_iter()
        .skip(paging::offset(page, DEFAULT_PAGE))
        .take(DEFAULT_PAGE)
        .collect();
    Reply::hal(&paging::envelope(
        &ctx.list,
        key,
        items,
        page,
        DEFAULT_PAGE,
        total,
    ))
}

pub fn list_mailboxes(st: &State, ctx: &Ctx) -> Reply {
    small_list(
        ctx,
        "mailboxes",
        st.mailboxes
            .iter()
            .map(|m| render::mailbox(m, ctx.base))
            .collect(),
    )
}

pub fn list_fields(st: &State, ctx: &Ctx, mailbox: i64) -> Reply {
    match st.mailbox(mailbox) {
        Some(m) => small_list(ctx, "fields", m.fields.iter().map(render::field).collect()),
        None => Reply::not_found("Mailbox not found"),
    }
}

pub fn list_folders(st: &State, ctx: &Ctx, mailbox: i64) -> Reply {
    match st.mailbox(mailbox) {
        Some(m) => small_list(
            ctx,
            "folders",
            m.folders.iter().map(render::folder).collect(),
        ),
        None => Reply::not_found("Mailbox not found"),
    }
}

pub fn list_users(st: &State, ctx: &Ctx) -> Reply {
    small_list(
        ctx,
        "users",
        st.users.iter().map(|u| render::user(u, ctx.base)).collect(),
    )
}

pub fn list_teams(st: &State, ctx: &Ctx) -> Reply {
    small_list(
        ctx,
        "teams",
        st.teams.iter().map(|t| render::team(t, ctx.base)).collect(),
    )
}

pub fn list_team_members(st: &State, ctx: &Ctx, team: i64) -> Reply {
    match st.team(team) {
        Some(t) => small_list(
            ctx,
            "users",
            t.members
                .iter()
                .filter_map(|id| st.user(*id))
                .map(|u| render::user(u, ctx.base))
                .collect(),
        ),
        None => Reply::not_found("Team not found"),
    }
}

pub fn list_workflows(st: &State, ctx: &Ctx) -> Reply {
    small_list(
        ctx,
        "workflows",
        st.workflows.iter().map(render::workflow).collect(),
    )
}

pub fn list_tags(st: &State, ctx: &Ctx) -> Reply {
    let mut counts: HashMap<i64, i64> = HashMap::new();
    for c in st.convs.values() {
        for t in &c.tags {
            *counts.entry(*t).or_default() += 1;
        }
    }
    small_list(
        ctx,
        "tags",
        st.tags
            .iter()
            .map(|t| render::tag(t, counts.get(&t.id).copied().unwrap_or(0)))
            .collect(),
    )
}

// ---------------------------------------------------------------- report

pub fn happiness_ratings(st: &State, ctx: &Ctx) -> Reply {
    let r = (|| -> Result<Reply, Reply> {
        let start = date_param(ctx, "start")?
            .ok_or_else(|| Reply::bad_param("start", "may not be null", ""))?;
        let end = date_param(ctx, "end")?
            .ok_or_else(|| Reply::bad_param("end", "may not be null", ""))?;
        let page = page_param(ctx)?;
        let rating = match ctx.param("rating") {
            None | Some("") | Some("all") => None,
            Some("great") => Some(1u8),
            Some("ok") | Some("okay") => Some(2),
            Some("not-good") | Some("not_good") => Some(3),
            Some(s) => {
                return Err(Reply::bad_param(
                    "rating",
                    "must be one of great, ok, not-good, all",
                    s,
                ));
            }
        };
        let asc = match ctx.param("sortOrder") {
            None => false,
            Some(s) if s.eq_ignore_ascii_case("asc") => true,
            Some(s) if s.eq_ignore_ascii_case("desc") => false,
            Some(s) => return Err(Reply::bad_param("sortOrder", "must be one of ASC, DESC", s)),
        };
        let mailboxes = ids_param(ctx, "mailboxes")?;
        let types: Option<Vec<ConvType>> = ctx.param("types").filter(|s| !s.is_empty()).map(|s| {
            s.split(',')
                .filter_map(|t| ConvType::parse(t.trim()))
                .collect()
        });
        let mut hits = Vec::new();
        if start < end {
            for (&(_, tid), &cid) in st.ratings.range((start, i64::MIN)..(end, i64::MIN)) {
                let Some(c) = st.convs.get(&cid) else {
                    continue;
                };
                if mailboxes
                    .as_ref()
                    .is_some_and(|m| !m.contains(&c.mailbox_id))
                    || types.as_ref().is_some_and(|t| !t.contains(&c.kind))
                {
                    continue;
                }
                let Some(t) = c.threads.iter().find(|t| t.id == tid) else {
                    continue;
                };
                let Some(r) = &t.rating else { continue };
                if rating.is_some_and(|v| v != r.value) {
                    continue;
                }
                hits.push((c, t, r));
            }
        }
        if !asc {
            hits.reverse();
        }
        let count = hits.len();
        let results: Vec<Value> = hits
            .iter()
            .skip(paging::offset(page, REPORT_PAGE))
            .take(REPORT_PAGE)
            .map(|(c, t, r)| render::rating_result(c, t, r))
            .collect();
        Ok(Reply::json(
            200,
            &json!({"facets": {}, "results": results, "page": page, "pages": paging::total_pages(count, REPORT_PAGE), "count": count}),
        ))
    })();
    r.unwrap_or_else(|e| e)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_query_ranges() {
        let r = parse_query("(modifiedAt:[2024-01-01T00:00:00Z TO *])").unwrap();
        assert_eq!(
            r.ranges,
            vec![(RangeField::Modified, Some(1_704_067_200), None)]
        );
        let r = parse_query("(createdAt:[* TO 2024-01-01T00:00:00Z] AND status:active)").unwrap();
        assert_eq!(
            r.ranges,
            vec![(RangeField::Created, None, Some(1_704_067_200))]
        );
        assert!(parse_query("(modifiedAt:[2024-01-01 TO *])").is_err());
        assert!(parse_query("(modifiedAt:2024)").is_err());
        assert_eq!(parse_query("(subject:hello)").unwrap(), Search::default());
    }

    #[test]
    fn search_query_email() {
        for q in [
            r#"(email:"Jane@Example.com")"#,
            "(email:jane@example.COM)",
            r#"( email:"jane@example.com" )"#,
        ] {
            let s = parse_query(q).unwrap();
            assert_eq!(s.email.as_deref(), Some("jane@example.com"), "{q}");
            assert!(s.ranges.is_empty());
        }
        let s =
            parse_query(r#"(email:"a@b.co" AND modifiedAt:[2024-01-01T00:00:00Z TO *])"#).unwrap();
        assert_eq!(s.email.as_deref(), Some("a@b.co"));
        assert_eq!(s.ranges.len(), 1);
        for bad in [
            r#"(email:"jane@example.com)"#,
            "(email:)",
            r#"(email:"")"#,
            r#"(email:"a b@c.co")"#,
            r#"(email:a"b@c.co)"#,
        ] {
            let e = parse_query(bad).unwrap_err();
            assert_eq!(e.status, 400, "{bad}");
        }
    }
}
