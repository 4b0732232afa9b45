//! Retries from the page, for Administrators: one failed event, a group of failures sharing a
//! message, or every failure of a view. The same code path as `helpscout-etl retry`; the
//! outcome is logged with who asked. A retry that meets a running sync is not lost: it waits
//! for the sync's lock and runs then, and the page says so.

use std::sync::Arc;
use std::time::Duration;

use axum::Form;
use axum::extract::State;
use maud::{Markup, html};
use serde::Deserialize;
use tokio::sync::oneshot;

use super::auth::Signed;
use super::filters::LogQuery;
use super::html::{self, Nav, layout};
use super::{AppState, PageError};
use crate::catalog::log::{LogEvent, Status};
use crate::extract::{self, SyncError};
use crate::store::StoreError;

#[derive(Deserialize)]
pub(crate) struct RetryForm {
    csrf: String,
    /// One event.
    event: Option<i64>,
    /// The view (a query string) a group or `all` belongs to.
    query: Option<String>,
    /// The error message of a group.
    group: Option<String>,
    all: Option<String>,
    /// Corrections for one To-HelpScout failure.
    email: Option<String>,
    name: Option<String>,
}

/// What became of a retry by the time the page answers.
enum Outcome {
    Done(Result<Vec<LogEvent>, SyncError>),
    /// A sync holds the lock; the retry runs when it is free.
    Queued,
}

/// How often a queued retry looks at the lock again.
const LOCK_POLL: Duration = Duration::from_secs(2);

pub(crate) async fn retry(State(state): State<Arc<AppState>>, Signed(viewer): Signed, Form(f): Form<RetryForm>) -> Result<Markup, PageError> {
    viewer.check(&f.csrf)?;
    viewer.require_admin("Retrying failed syncs")?;
    let mut filter = match (&f.event, &f.query) {
        (Some(_), _) => crate::store::LogFilter::default(),
        (None, q) => LogQuery::parse(q.as_deref()).map_err(PageError::BadRequest)?.filter(chrono::Utc::now()),
    };
    filter.before = None;
    filter.event_id = f.event;
    match (&f.event, &f.group, &f.all) {
        (Some(_), _, _) | (None, None, Some(_)) => {}
        (None, Some(message), _) => filter.error_message = Some(message.clone()),
        (None, None, None) => return Err(PageError::BadRequest("Say what to retry: an event, a group or all failures of a view.".into())),
    }
    // To HelpScout: back into the outbox (corrected), for the background delivery.
    let outbound_filter = filter.clone();
    let outbound = state.read(move |r| r.pending_outbound_retries(&outbound_filter)).await?;
    let requeued = if outbound.is_empty() {
        None
    } else {
        let correction = crate::deliver::Correction {
            email: f.email.clone().filter(|v| !v.trim().is_empty() && f.event.is_some()),
            name: f.name.clone().filter(|v| !v.trim().is_empty() && f.event.is_some()),
        };
        let app = state.clone();
        let who = viewer.name.clone();
        let n = tokio::task::spawn_blocking(move || {
            let mut outbox = app.outbox.lock().unwrap_or_else(|e| e.into_inner());
            crate::deliver::requeue(&mut outbox, &outbound, &correction, Some(&who))
        })
        .await
        .map_err(|e| PageError::Internal(format!("the retry stopped: {e}")))?
        .map_err(|e| PageError::Internal(e.to_string()))?;
        state.wake.notify_one();
        Some(n)
    };
    let requeued_notice = requeued.map(|n| {
        html! { (html::notice("info", &format!("{n} To-HelpScout record(s) queued again with the same marker (so no second ticket can come of it); the outcome appears in the log in a moment."))) }
    });
    let Some(sync) = state.sync.clone() else {
        if let Some(notice) = requeued_notice {
            return Ok(result_page(&viewer, notice));
        }
        return Ok(result_page(&viewer, html! { (html::notice("error", "Retrying needs the Help Scout credentials, which this server was started without: set HELPSCOUT_CLIENT_ID and HELPSCOUT_CLIENT_SECRET (or [helpscout] in the configuration file) and start `helpscout-etl serve` again.")) }));
    };
    let pending = state.read(move |r| r.pending_retries(&filter)).await?;
    if pending.is_empty() {
        return Ok(result_page(&viewer, requeued_notice.unwrap_or_else(|| html! { (html::notice("info", "Nothing to retry: these failures were retried already or carry no retry target.")) })));
    }
    let (tell, told) = oneshot::channel();
    let outputs = state.outputs.clone();
    let who = viewer.name.clone();
    // The retry's future borrows across awaits in ways `tokio::spawn` cannot prove `Send`; it
    // runs on a blocking thread of the same runtime instead.
    let runtime = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || runtime.block_on(async move {
        let mut tell = Some(tell);
        loop {
            match extract::retry(&outputs, &sync, &pending, Some(&who)).await {
                Err(SyncError::Store(StoreError::AlreadyRunning { .. })) => {
                    if let Some(t) = tell.take() {
                        let _ = t.send(Outcome::Queued);
                    }
                    tokio::time::sleep(LOCK_POLL).await;
                }
                done => {
                    if let Some(t) = tell.take() {
                        let _ = t.send(Outcome::Done(done));
                    } else if let Err(e) = done {
                        tracing::warn!(error = %e, "a queued retry failed");
                    }
                    return;
                }
            }
        }
    }));
    let body = match told.await {
        Ok(Outcome::Queued) => html! { (html::notice("warning", "A sync is running right now. Your retry is queued: it runs as soon as the sync finishes, and its outcome appears in the log.")) },
        Ok(Outcome::Done(Ok(events))) => outcomes(&events),
        Ok(Outcome::Done(Err(e))) => html! { (html::notice("error", &format!("The retry could not run: {e}"))) },
        Err(_) => html! { (html::notice("error", "The retry stopped unexpectedly; see the server's log.")) },
    };
    Ok(result_page(&viewer, html! { @if let Some(n) = requeued_notice { (n) } (body) }))
}

fn outcomes(events: &[LogEvent]) -> Markup {
    let failed = events.iter().filter(|e| e.status == Status::Failed).count();
    html! {
        (html::notice(if failed == 0 { "info" } else { "warning" }, &format!("{} retried, {failed} still failing.", events.len() - failed)))
        ul.outcomes { @for e in events {
            li { span class=(format!("badge {}", e.status.as_str().to_ascii_lowercase())) { (e.status.as_str()) } " " (e.details)
                @if let Some(m) = &e.error_message { ": " (m) } }
        } }
    }
}

fn result_page(viewer: &html::Viewer, body: Markup) -> Markup {
    layout("Retry", Some(viewer), Nav::Failures, html! { (body) p { a href="/failures" { "Back to the failures" } " · " a href="/log" { "The log" } } })
}
