//! Health (Use Case 3), API usage (Use Case 5), happiness and productivity: the bundled views
//! as charts and tables.

use std::sync::Arc;

use axum::extract::State;
use maud::{Markup, html};

use crate::catalog::log::{EventType, Status};
use crate::store::{Cell, FailureGroup, Grid, HappinessBy, HourOutcome, LogFilter, ProductivityBy, UsageBy};
use crate::web::auth::Signed;
use crate::web::chart::{Bar, bars, heat_map};
use crate::web::html::{self, Nav, layout};
use crate::web::{AppState, PageError};

/// How a request that timed out is recorded.
const TIMED_OUT: &str = "request timed out";

fn number(cell: Option<&Cell>) -> f64 {
    match cell {
        Some(Cell::Int(i)) => *i as f64,
        Some(Cell::Float(f)) => *f,
        Some(Cell::Decimal(d)) => d.parse().unwrap_or(0.0),
        _ => 0.0,
    }
}

fn text(cell: Option<&Cell>) -> String {
    cell.map(Cell::plain).unwrap_or_default()
}

pub(crate) async fn health(State(state): State<Arc<AppState>>, Signed(viewer): Signed) -> Result<Markup, PageError> {
    let since = chrono::Utc::now() - chrono::Duration::hours(48);
    let (table, hours, persistent, throttled, timeouts): (Grid, Vec<HourOutcome>, Vec<FailureGroup>, usize, usize) = state
        .read(move |r| {
            let recent = |f: LogFilter| LogFilter { from: Some(since), ..f };
            let count = |f: LogFilter| r.log_summary(&recent(f)).map(|s| s.total_events as usize);
            let throttled = count(LogFilter { event_types: vec![EventType::RateLimited.as_str().into()], ..Default::default() })?;
            let timeouts = count(LogFilter { error_message: Some(TIMED_OUT.into()), ..Default::default() })?;
            Ok((r.health_table()?, r.hourly_outcomes(48)?, r.failure_groups(&recent(LogFilter::default()))?, throttled, timeouts))
        })
        .await?;
    let rate_bars: Vec<Bar> = hours
        .iter()
        .map(|h| {
            let finished = h.successes + h.failures;
            let rate = if finished > 0 { h.successes as f64 * 100.0 / finished as f64 } else { 100.0 };
            Bar { label: h.hour[11..16].to_string(), value: (rate * 10.0).round() / 10.0, flagged: rate < 95.0 }
        })
        .collect();
    Ok(layout(
        "Integration health",
        Some(&viewer),
        Nav::Health,
        html! {
            p { "Success rate per event type over the last 24 and 48 hours; below 95 % is flagged. 'Error' and 'Rate Limited' count request attempts: listed, never rated." }
            (html::grid(&table, "Success rate per event type"))
            @if rate_bars.is_empty() {
                (html::notice("info", "No finished event in the last 48 hours."))
            } @else {
                (bars("Success rate per hour, last 48 hours (%, UTC; the dashed line is 95 %)", &rate_bars, 0.0, 100.0, Some(95.0)))
            }
            h2 { "Persistent errors, last 48 hours" }
            @if persistent.is_empty() { p.empty { "None." } } @else {
                ul.errors { @for g in persistent.iter().take(10) {
                    li { strong { (g.failures) "×" } " " (g.error_message.as_deref().unwrap_or("(no message)")) " — " (g.event_types) ", last " (g.last_at) }
                } }
            }
            h2 { "Warnings, last 48 hours" }
            ul {
                li { (throttled) " rate-limit warnings (" (EventType::RateLimited.as_str()) ")" }
                li { (timeouts) " connection timeouts" }
            }
            p { a href=(format!("/log?range=48h&status={}", Status::Failed.as_str())) { "The failed events of the last 48 hours" } }
        },
    ))
}

pub(crate) async fn usage(State(state): State<Arc<AppState>>, Signed(viewer): Signed) -> Result<Markup, PageError> {
    let plan_limit = state.sync.as_ref().map(|s| s.client.rate_limit);
    let ((hourly, totals), (daily, _)) = state.read(|r| Ok((r.api_usage(UsageBy::Hour, Some(48))?, r.api_usage(UsageBy::Day, Some(30))?))).await?;
    let col = |g: &Grid, name: &str| g.columns.iter().position(|c| c == name);
    let (hour, requests, limited) = (col(&hourly, "hour"), col(&hourly, "requests"), col(&hourly, "rate_limited"));
    let request_bars: Vec<Bar> = hourly
        .rows
        .iter()
        .map(|row| Bar {
            label: text(hour.and_then(|i| row.get(i))).chars().skip(11).take(5).collect(),
            value: number(requests.and_then(|i| row.get(i))),
            flagged: number(limited.and_then(|i| row.get(i))) > 0.0,
        })
        .collect();
    let peak = request_bars.iter().map(|b| b.value).fold(0.0, f64::max);
    let lowest = totals.rows.first().and_then(|r| col(&totals, "lowest_remaining").and_then(|i| r.get(i))).map(Cell::plain).filter(|s| !s.is_empty());
    Ok(layout(
        "API usage",
        Some(&viewer),
        Nav::Usage,
        html! {
            dl.figures {
                div { dt { "Lowest remaining budget seen" } dd { (lowest.unwrap_or_else(|| "unknown".into())) } }
                div { dt { "The plan's limit per minute" } dd { (plan_limit.map(|l| l.to_string()).unwrap_or_else(|| "not configured here".into())) } }
            }
            @if request_bars.is_empty() { (html::notice("info", "No API request recorded yet.")) } @else {
                (bars("API calls per hour, last 48 hours with calls (UTC; hours with a 429 are marked)", &request_bars, 0.0, peak, None))
            }
            (html::grid(&daily, "API calls per day (UTC)"))
            (html::grid(&hourly, "API calls per hour (UTC)"))
        },
    ))
}

pub(crate) async fn happiness(State(state): State<Arc<AppState>>, Signed(viewer): Signed) -> Result<Markup, PageError> {
    let groups = state
        .read(|r| {
            let (months, overall) = r.happiness(HappinessBy::Month, Some(24))?;
            let by = |b| r.happiness(b, Some(50)).map(|(g, _)| g);
            Ok((months, overall, by(HappinessBy::Mailbox)?, by(HappinessBy::User)?, by(HappinessBy::Team)?, by(HappinessBy::Comments)?))
        })
        .await?;
    let (months, overall, mailbox, user, team, comments) = groups;
    let col = |g: &Grid, name: &str| g.columns.iter().position(|c| c == name);
    let (month, score) = (col(&months, "month"), col(&months, "happiness_score"));
    let score_bars: Vec<Bar> = months
        .rows
        .iter()
        .map(|row| {
            let v = number(score.and_then(|i| row.get(i)));
            Bar { label: text(month.and_then(|i| row.get(i))).chars().take(7).collect(), value: v, flagged: v < 0.0 }
        })
        .collect();
    Ok(layout(
        "Happiness",
        Some(&viewer),
        Nav::Happiness,
        html! {
            p { "Happiness score = % great − % not good." }
            (html::grid(&overall, "All ratings"))
            @if !score_bars.is_empty() { (bars("Happiness score by month (UTC)", &score_bars, -100.0, 100.0, None)) }
            (html::grid(&months, "By month"))
            (html::grid(&mailbox, "By mailbox"))
            (html::grid(&user, "By user"))
            (html::grid(&team, "By team (a user in several teams counts in each)"))
            (html::grid(&comments, "Ratings with comments, newest first"))
        },
    ))
}

/// The productivity figures: the latest 12 weeks and 30 days company-wide, by mailbox, user and
/// team, the channels side by side, when conversations arrive, and the latest week's tags.
pub(crate) async fn productivity(State(state): State<Arc<AppState>>, Signed(viewer): Signed) -> Result<Markup, PageError> {
    struct Figures {
        weeks: Grid,
        days: Grid,
        overall: Grid,
        mailbox: Grid,
        user: Grid,
        team: Grid,
        channels: Grid,
        busiest_times: Grid,
        busiest_day: Grid,
        tags: Grid,
    }
    let f = state
        .read(|r| {
            let by = |b, limit| r.productivity(b, Some(limit));
            Ok(Figures {
                weeks: by(ProductivityBy::Week, 12)?,
                days: by(ProductivityBy::Day, 50)?,
                overall: r.productivity_overall()?,
                mailbox: by(ProductivityBy::Mailbox, 50)?,
                user: by(ProductivityBy::User, 50)?,
                team: by(ProductivityBy::Team, 50)?,
                channels: r.channel_metrics()?,
                busiest_times: r.busiest_times()?,
                busiest_day: r.busiest_day()?,
                tags: r.tag_trends_latest(Some(20))?,
            })
        })
        .await?;
    // One bar per period, labelled by its month and day, the value divided by `unit`.
    let series = |g: &Grid, key: &str, value: &str, unit: f64| -> Vec<Bar> {
        (0..g.rows.len())
            .map(|i| Bar {
                label: text(g.cell(i, key)).chars().skip(5).collect(),
                value: (number(g.cell(i, value)) / unit * 10.0).round() / 10.0,
                flagged: false,
            })
            .collect()
    };
    let replies = series(&f.days, "day", "replies_sent", 1.0);
    let response = series(&f.weeks, "week", "median_first_response_seconds", 3600.0);
    let peak = |bars: &[Bar]| bars.iter().map(|b| b.value).fold(0.0, f64::max);
    let mut heat: Vec<(String, Vec<f64>)> = Vec::new();
    for i in 0..f.busiest_times.rows.len() {
        let day = text(f.busiest_times.cell(i, "day_name"));
        let v = number(f.busiest_times.cell(i, "new_conversations"));
        match heat.last_mut() {
            Some((d, values)) if *d == day => values.push(v),
            _ => heat.push((day, vec![v])),
        }
    }
    let hour_labels: Vec<String> = (0..24).map(|h| format!("{h:02}")).collect();
    let busiest = f.busiest_day.rows.first().map(|_| {
        format!(
            "{}: {} % of new conversations; busiest hour {:02}:00 UTC",
            text(f.busiest_day.cell(0, "day_name")),
            text(f.busiest_day.cell(0, "share_pct")),
            number(f.busiest_day.cell(0, "busiest_hour")) as u32
        )
    });
    Ok(layout(
        "Productivity",
        Some(&viewer),
        Nav::Productivity,
        html! {
            p { "First response: from the first customer message to the first reply after it. Resolution: from creation to the closing, for conversations closed with at least one reply. Wall-clock time, UTC (no office hours); spam is left out." }
            (html::grid(&f.overall.with_durations(), "Everything synced, all mailboxes"))
            @if let Some(b) = &busiest { p.figure { strong { "Busiest day " } (b) } }
            @if !replies.is_empty() { (bars("Replies sent per day, latest 50 days with activity (UTC)", &replies, 0.0, peak(&replies), None)) }
            @if !response.is_empty() { (bars("Median first response per week, hours (UTC weeks from Monday)", &response, 0.0, peak(&response), None)) }
            @if !heat.is_empty() { (heat_map("New conversations by day of the week and hour (UTC)", &heat, &hour_labels)) }
            (html::grid(&f.weeks.with_durations(), "By week, latest 12"))
            (html::grid(&f.channels.with_durations(), "Email, chat and phone"))
            (html::grid(&f.mailbox.with_durations(), "By mailbox"))
            (html::grid(&f.user.with_durations(), "By user"))
            (html::grid(&f.team.with_durations(), "By team (a user in several teams counts in each)"))
            (html::grid(&f.tags, "Tags, latest week, with the change from the week before"))
        },
    ))
}
