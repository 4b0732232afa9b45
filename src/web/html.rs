//! The pages' shared parts: the layout with its navigation, the filters form, the Summary
//! Dashboard, the Quick Reference Card and the log table. maud escapes every value, so text
//! from Help Scout (subjects, names, emails) is always text, never markup.

use maud::{DOCTYPE, Markup, html};

use super::filters::{LogQuery, Range};
use super::users::Role;
use crate::catalog::log::{CONVERSATION_LINK_PREFIX, Direction, EventType, Status};
use crate::store::{Grid, LogRow, Summary};

/// Who is looking, and the token their forms carry.
#[derive(Debug, Clone)]
pub struct Viewer {
    pub name: String,
    pub role: Role,
    pub csrf: String,
}

/// Where a page sits in the navigation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nav {
    Log,
    Failures,
    Health,
    Usage,
    Happiness,
    Productivity,
    Users,
    None,
}

pub fn layout(title: &str, viewer: Option<&Viewer>, active: Nav, body: Markup) -> Markup {
    let link = |nav: Nav, href: &str, text: &str| {
        html! { a href=(href) aria-current=[(nav == active).then_some("page")] { (text) } }
    };
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · HelpScout Log" }
                link rel="stylesheet" href="/assets/style.css";
            }
            body {
                header.top {
                    a.brand href="/log" { "HelpScout Log" }
                    @if let Some(v) = viewer {
                        nav aria-label="Pages" {
                            (link(Nav::Log, "/log", "Log"))
                            (link(Nav::Failures, "/failures", "Failures"))
                            (link(Nav::Health, "/health", "Health"))
                            (link(Nav::Usage, "/usage", "API usage"))
                            (link(Nav::Happiness, "/happiness", "Happiness"))
                            (link(Nav::Productivity, "/productivity", "Productivity"))
                            @if v.role.is_admin() { (link(Nav::Users, "/users", "Users")) }
                        }
                        form.signout method="post" action="/logout" {
                            (csrf(v))
                            span.who { (v.name) " · " (v.role.as_str()) }
                            button type="submit" { "Sign out" }
                        }
                    }
                }
                main { h1 { (title) } (body) }
            }
        }
    }
}

pub fn csrf(viewer: &Viewer) -> Markup {
    html! { input type="hidden" name="csrf" value=(viewer.csrf); }
}

/// A message box: `kind` is info, warning or error.
pub fn notice(kind: &str, text: &str) -> Markup {
    html! { p class=(format!("notice {kind}")) role=(if kind == "error" { "alert" } else { "status" }) { (text) } }
}

/// The conversation id as a link into Help Scout, in a new tab (only links we made ourselves).
pub fn conversation_link(row: &LogRow) -> Markup {
    html! {
        @match (row.conversation_id, &row.conversation_url) {
            (Some(id), Some(url)) if url.starts_with(CONVERSATION_LINK_PREFIX) => {
                a href=(url) target="_blank" rel="noopener" { (id) }
            }
            (Some(id), _) => { (id) }
            _ => {}
        }
    }
}

fn status_badge(status: &str) -> Markup {
    html! { span class=(format!("badge {}", status.to_ascii_lowercase())) { (status) } }
}

/// The filters form of the log (and failures) page: every event type the log can hold.
pub fn filters(action: &str, q: &LogQuery) -> Markup {
    let all_types: Vec<&str> = EventType::ALL.iter().map(|e| e.as_str()).collect();
    html! {
        form.filters method="get" action=(action) {
            div.field {
                label for="range" { "Date range" }
                select #range name="range" {
                    @for r in Range::ALL {
                        option value=(r.key()) selected[q.range == r] { (r.label()) }
                    }
                }
            }
            div.field {
                label for="from" { "From" }
                input #from type="datetime-local" name="from" value=[q.from.as_deref()];
            }
            div.field {
                label for="to" { "To" }
                input #to type="datetime-local" name="to" value=[q.to.as_deref()];
            }
            fieldset.types {
                legend { "Event type" }
                @for t in all_types {
                    @let id = format!("type-{}", t.to_ascii_lowercase().replace(' ', "-"));
                    span.check {
                        input type="checkbox" id=(id) name="type" value=(t) checked[q.types.iter().any(|x| x.eq_ignore_ascii_case(t))];
                        label for=(id) { (t) }
                    }
                }
            }
            div.field {
                label for="status" { "Status" }
                select #status name="status" {
                    option value="" { "All" }
                    @for s in Status::ALL {
                        option value=(s.as_str()) selected[q.status.as_deref() == Some(s.as_str())] { (s.as_str()) }
                    }
                }
            }
            div.field {
                label for="direction" { "Direction" }
                select #direction name="direction" {
                    option value="" { "Both" }
                    @for d in Direction::ALL {
                        option value=(d.as_str()) selected[q.direction.as_deref() == Some(d.as_str())] { (d.as_str()) }
                    }
                }
            }
            div.field.search {
                label for="q" { "Search" }
                input #q type="search" name="q" value=[q.q.as_deref()] placeholder="customer email, ticket or conversation ID";
            }
            @if let Some(t) = &q.table { input type="hidden" name="table" value=(t); }
            button type="submit" { "Apply" }
            a.reset href=(action) { "Reset" }
        }
    }
}

/// The seed's Quick Reference Card, one click per task.
pub fn quick_card(q: &LogQuery) -> Markup {
    let types = |names: &[&str]| names.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let tasks: Vec<(&str, String)> = vec![
        ("Check if ticket created", format!("/log?{}", q.with(|v| v.types = types(&[EventType::TicketCreated.as_str()])))),
        ("View sync errors", format!("/log?{}", q.with(|v| {
            *v = LogQuery { range: Range::Last24Hours, status: Some(Status::Failed.as_str().into()), ..Default::default() };
        }))),
        ("Monitor integration health", format!("/log?{}", q.with(|v| *v = LogQuery { range: Range::Last48Hours, ..Default::default() }))),
        ("Find conversation in HelpScout", format!("/log?{}#q", q.with(|v| *v = LogQuery { range: Range::All, q: v.q.clone(), ..Default::default() }))),
        ("Daily failed tickets check", format!("/log?{}", q.with(|v| {
            *v = LogQuery { range: Range::Today, status: Some(Status::Failed.as_str().into()), types: types(&[EventType::TicketCreated.as_str()]), ..Default::default() };
        }))),
        ("Customer sync status", format!("/log?{}", q.with(|v| v.types = types(&[EventType::CustomerSynced.as_str(), EventType::CustomerUpdated.as_str()])))),
        ("Retry failed syncs", "/failures".to_string()),
    ];
    html! {
        nav.quick aria-label="Quick Reference Card" {
            h2 { "Quick Reference Card" }
            ul { @for (task, href) in &tasks { li { a href=(href) { (task) } } } }
        }
    }
}

pub fn summary(s: &Summary) -> Markup {
    let pct = |v: Option<f64>| v.map(|v| format!("{v:.1} %")).unwrap_or_else(|| "n/a".into());
    html! {
        section.summary aria-label="Summary Dashboard" {
            h2 { "Summary Dashboard" }
            dl {
                div { dt { "Total sync events" } dd { (s.total_events) } }
                div { dt { "Success vs error rate" } dd { (pct(s.success_rate)) " / " (pct(s.error_rate)) } }
                div { dt { "New tickets created" } dd { (s.new_tickets) } }
                div { dt { "Customers synced" } dd { (s.customers_synced) } }
            }
        }
    }
}

/// What the duplicate views say (None: not installed in this file yet).
pub struct Duplicates {
    pub repeat_submitters: Option<crate::store::Grid>,
    pub duplicate_tickets: Option<crate::store::Grid>,
}

/// The seed's "Duplicate Tickets Being Created": repeat submitters, and any submission with more
/// than one ticket (which the delivery guarantees never happens, so it is shown as an alarm).
pub fn duplicates(d: &Duplicates) -> Markup {
    let text = |g: &crate::store::Grid, row: usize, c: &str| g.cell(row, c).map(crate::store::Cell::plain).unwrap_or_default();
    html! {
        @if d.repeat_submitters.is_some() || d.duplicate_tickets.is_some() {
            section.duplicates aria-label="Duplicates" {
                h2 { "Form duplicates" }
                @match &d.duplicate_tickets {
                    Some(t) if !t.rows.is_empty() => {
                        (notice("error", &format!("{} submission(s) have more than one ticket in Help Scout: merge them there.", t.rows.len())))
                        ul { @for i in 0..t.rows.len() { li { (text(t, i, "marker")) ": conversations " (text(t, i, "conversation_ids")) } } }
                    }
                    Some(_) => p { "Submissions with more than one ticket: none." }
                    None => p.hint { "Tickets per submission are checked once a sync has read the conversations." }
                }
                @if let Some(r) = &d.repeat_submitters {
                    @if r.rows.is_empty() {
                        p { "No customer submitted several forms within an hour." }
                    } @else {
                        p { "Submitted several forms within an hour (each became its own ticket; repeats of one submission were ignored):" }
                        ul.repeaters { @for i in 0..r.rows.len().min(10) {
                            li { a href=(format!("/log?q={}", url::form_urlencoded::byte_serialize(text(r, i, "customer_email").as_bytes()).collect::<String>())) { (text(r, i, "customer_email")) }
                                " — " (text(r, i, "submissions")) " submissions, " (text(r, i, "repeats_ignored")) " repeats ignored" }
                        } }
                    }
                }
            }
        }
    }
}

/// The log as a table with the seed's columns, newest first.
pub fn log_table(rows: &[LogRow]) -> Markup {
    html! {
        @if rows.is_empty() {
            p.empty { "No events match." }
        } @else {
            div.scroll {
                table.log {
                    thead { tr {
                        @for h in ["Timestamp", "Event Type", "Customer Email", "HelpScout Conversation ID", "Status", "Direction", "Details", "Error Message"] {
                            th scope="col" { (h) }
                        }
                    } }
                    tbody {
                        @for r in rows {
                            tr {
                                td.when { a href=(format!("/events/{}", r.event_id)) { time datetime=(r.timestamp) { (r.timestamp.replace('T', " ").trim_end_matches('Z')) } } }
                                td { (r.event_type) }
                                td { (r.customer_email.as_deref().unwrap_or("")) }
                                td { (conversation_link(r)) }
                                td { (status_badge(&r.status)) }
                                td { (r.direction) }
                                td.details { (r.details.as_deref().unwrap_or("")) }
                                td.error { (r.error_message.as_deref().unwrap_or("")) }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// A query result as a table (reports).
pub fn grid(g: &Grid, caption: &str) -> Markup {
    html! {
        @if g.rows.is_empty() {
            p.empty { "No rows." }
        } @else {
            div.scroll {
                table {
                    caption { (caption) }
                    thead { tr { @for c in &g.columns { th scope="col" { (c) } } } }
                    tbody {
                        @for row in &g.rows {
                            tr { @for cell in row { td class=[cell.is_number().then_some("num")] { (cell.plain()) } } }
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_text_is_escaped_and_foreign_links_are_not_links() {
        let row = LogRow {
            event_id: 1,
            timestamp: "2026-06-01T12:00:00Z".into(),
            event_type: "Ticket Created".into(),
            customer_email: Some("<img src=x onerror=alert(1)>@x.io".into()),
            conversation_id: Some(7),
            conversation_url: Some("javascript:alert(1)".into()),
            status: "Success".into(),
            direction: "From HelpScout".into(),
            details: Some("Subject: <script>alert(1)</script>".into()),
            ..Default::default()
        };
        let page = log_table(&[row.clone()]).into_string();
        assert!(!page.contains("<script>") && !page.contains("<img"), "{page}");
        assert!(!page.contains("javascript:"), "a link we did not make is shown as text");
        let ours = LogRow { conversation_url: Some(format!("{CONVERSATION_LINK_PREFIX}7/3")), ..row };
        let page = log_table(&[ours]).into_string();
        assert!(page.contains(r#"target="_blank" rel="noopener""#), "{page}");
        for h in ["Timestamp", "Event Type", "Customer Email", "HelpScout Conversation ID", "Status", "Direction", "Details", "Error Message"] {
            assert!(page.contains(&format!(r#"<th scope="col">{h}</th>"#)), "{h}");
        }
    }
}
