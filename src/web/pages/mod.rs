//! The pages: the log, one event, the failures; the reports (`reports`) and the users
//! (`users`). Each reads what it shows in one read-only visit to the file.

mod reports;
mod users;

use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use maud::{Markup, html};

pub(crate) use reports::{happiness, health, productivity, usage};
pub(crate) use users::{add_user, remove_user, users};

use super::auth::Signed;
use super::filters::LogQuery;
use super::html::{self, Nav, Viewer, layout};
use super::{AppState, PageError};
use crate::store::{FailureGroup, LogRow, Summary};

/// Events per page of the log.
pub(crate) const PAGE_SIZE: usize = 50;

pub(crate) fn query(raw: Option<String>) -> Result<LogQuery, PageError> {
    LogQuery::parse(raw.as_deref()).map_err(PageError::BadRequest)
}

/// The export links of a view.
fn exports(q: &LogQuery) -> Markup {
    html! {
        p.exports {
            "Export what this view shows: "
            @for (format, label) in [("csv", "CSV"), ("json", "JSON"), ("parquet", "Parquet")] {
                a href=(format!("/export?format={format}&{}", q.to_query())) download { (label) } " "
            }
        }
    }
}

pub(crate) async fn log(State(state): State<Arc<AppState>>, Signed(viewer): Signed, RawQuery(raw): RawQuery) -> Result<Markup, PageError> {
    let q = query(raw)?;
    let filter = q.filter(chrono::Utc::now());
    let (rows, summary, duplicates): (Vec<LogRow>, Summary, html::Duplicates) = state
        .read(move |r| {
            let rows = r.log_rows(&filter, PAGE_SIZE + 1)?;
            // The period's figures, whatever page is shown.
            let summary = r.log_summary(&crate::store::LogFilter { before: None, ..filter })?;
            // The duplicate views exist once a To-HelpScout row or a sync installed them.
            let optional = |g: Result<crate::store::Grid, crate::store::StoreError>| match g {
                Ok(g) => Ok(Some(g)),
                Err(crate::store::StoreError::ViewMissing { .. }) => Ok(None),
                Err(e) => Err(e),
            };
            let duplicates = html::Duplicates { repeat_submitters: optional(r.form_repeat_submitters())?, duplicate_tickets: optional(r.form_duplicate_tickets())? };
            Ok((rows, summary, duplicates))
        })
        .await?;
    let more = rows.len() > PAGE_SIZE;
    let rows = &rows[..rows.len().min(PAGE_SIZE)];
    Ok(layout(
        "Integration log",
        Some(&viewer),
        Nav::Log,
        html! {
            (html::filters("/log", &q))
            div.side {
                (html::summary(&summary))
                (html::duplicates(&duplicates))
                (html::quick_card(&q))
            }
            section.events aria-label="Events" {
                h2 { "Events, newest first" }
                (exports(&q))
                (html::log_table(rows))
                nav.pager aria-label="Pages of the log" {
                    @if q.before.is_some() { a href=(format!("/log?{}", q.to_query())) { "Newest events" } }
                    @if more { @if let Some(last) = rows.last() { a href=(format!("/log?{}", q.page(last.cursor()))) rel="next" { "Older events" } } }
                }
            }
        },
    ))
}

fn field(name: &str, value: Option<String>) -> Markup {
    html! { div { dt { (name) } dd { (value.unwrap_or_default()) } } }
}

pub(crate) async fn event(State(state): State<Arc<AppState>>, Signed(viewer): Signed, Path(id): Path<i64>) -> Result<Markup, PageError> {
    let (event, related) = state
        .read(move |r| {
            let event = r.event(id)?;
            let related = match &event {
                Some(e) => r.related_events(e, 50)?,
                None => vec![],
            };
            Ok((event, related))
        })
        .await?;
    let e = event.ok_or_else(|| PageError::NotFound(format!("There is no event {id} in the log.")))?;
    let s = |v: &Option<String>| v.clone();
    let n = |v: Option<i64>| v.map(|v| v.to_string());
    Ok(layout(
        &format!("Event {id}: {}", e.event_type),
        Some(&viewer),
        Nav::Log,
        html! {
            dl.event {
                (field("Timestamp", Some(e.timestamp.clone())))
                (field("Event Type", Some(e.event_type.clone())))
                (field("Status", Some(e.status.clone())))
                (field("Direction", Some(e.direction.clone())))
                (field("Customer Email", s(&e.customer_email)))
                div { dt { "HelpScout Conversation ID" } dd { (html::conversation_link(&e)) } }
                (field("Conversation number", n(e.conversation_number)))
                (field("Details", s(&e.details)))
                (field("Error Message", s(&e.error_message)))
                (field("Table", s(&e.table_name)))
                (field("Request", s(&e.request)))
                (field("HTTP status", n(e.http_status)))
                (field("Attempt", n(e.attempt)))
                (field("Duration (ms)", n(e.duration_ms)))
                (field("Run", s(&e.run_id)))
                (field("Submission or record", s(&e.source_id)))
                (field("Retry target", s(&e.retry_target)))
                (field("Retried at", s(&e.retried_at)))
                (field("Retried by", s(&e.retried_by)))
            }
            @if e.retryable() && e.source_id.is_some() && viewer.role.is_admin() {
                // A To-HelpScout failure: the data can be corrected before it is sent again.
                form.retry.correct method="post" action="/retry" {
                    (html::csrf(&viewer))
                    input type="hidden" name="event" value=(e.event_id);
                    label { "Corrected email " input type="email" name="email" placeholder=(e.customer_email.clone().unwrap_or_default()); }
                    label { "Corrected name " input type="text" name="name" maxlength="80"; }
                    button type="submit" { "Retry" }
                }
            } @else if e.retryable() { (retry_button(&viewer, &[("event", e.event_id.to_string())], "Retry")) }
            h2 { "Other events of this conversation or customer" }
            (html::log_table(&related))
        },
    ))
}

/// A Retry button for Administrators (Managers see why there is none; the server refuses them anyway).
pub(crate) fn retry_button(viewer: &Viewer, fields: &[(&str, String)], label: &str) -> Markup {
    html! {
        @if viewer.role.is_admin() {
            form.retry method="post" action="/retry" {
                (html::csrf(viewer))
                @for (k, v) in fields { input type="hidden" name=(k) value=(v); }
                button type="submit" { (label) }
            }
        } @else {
            span.hint { "An Administrator can retry this." }
        }
    }
}

pub(crate) async fn failures(State(state): State<Arc<AppState>>, Signed(viewer): Signed, RawQuery(raw): RawQuery) -> Result<Markup, PageError> {
    let q = query(raw)?;
    let mut filter = q.filter(chrono::Utc::now());
    filter.status = Some(crate::catalog::log::Status::Failed.as_str().into());
    let (groups, rows): (Vec<FailureGroup>, Vec<LogRow>) = state.read(move |r| Ok((r.failure_groups(&filter)?, r.log_rows(&filter, PAGE_SIZE)?))).await?;
    let view = q.with(|_| {});
    let retryable: i64 = groups.iter().map(|g| g.retryable).sum();
    Ok(layout(
        "Failures",
        Some(&viewer),
        Nav::Failures,
        html! {
            (html::filters("/failures", &q))
            @if groups.is_empty() {
                (html::notice("info", "No failures in this view."))
            } @else {
                div.scroll { table.groups {
                    caption { "Failures grouped by error message" }
                    thead { tr { th scope="col" { "Error Message" } th scope="col" { "Event types" } th scope="col" { "Failures" } th scope="col" { "Retryable" } th scope="col" { "Last occurrence" } th scope="col" { "Action" } } }
                    tbody { @for g in &groups { tr {
                        td.error { (g.error_message.as_deref().unwrap_or("(no message)")) }
                        td { (g.event_types) }
                        td.num { (g.failures) }
                        td.num { (g.retryable) }
                        td { (g.last_at) }
                        td { @if g.retryable > 0 {
                            (retry_button(&viewer, &[("query", view.clone()), ("group", g.error_message.clone().unwrap_or_default())], "Retry"))
                        } }
                    } } }
                } }
                @if retryable > 0 { (retry_button(&viewer, &[("query", view.clone()), ("all", "1".into())], &format!("Retry all {retryable} retryable failures of this view"))) }
                h2 { "Latest failures" }
                (html::log_table(&rows))
            }
        },
    ))
}
