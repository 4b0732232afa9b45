//! To HelpScout: contact-form submissions become tickets and customer records reach Help
//! Scout, each exactly once, every step in the integration log.
//!
//! Exactly once without an idempotency key: a submission is durable in the outbox before it is
//! acknowledged; each attempt is recorded (`sending`) before its POST; the ticket carries a
//! marker tag derived from the submission's id; and any record that was attempted before is
//! looked up by its marker before it is posted again. Customers are matched by email before
//! every create, which makes their creation findable the same way.

pub mod intake;
pub mod settings;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::api::{ApiError, Client, WriteOutcome};
use crate::catalog::log::{EventType, Method, Status};
use crate::catalog::outbound::{CustomerRecord, FailureReason, Submission};
use crate::store::{DeliveryState, OutboundEvent, Outbox, Outputs, Queue, Queued, Received, StoreError, Warehouse, WindowStats};
pub use settings::{FormSettings, PushSettings};

#[derive(Debug, thiserror::Error)]
pub enum DeliverError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Api(#[from] ApiError),
    #[error("Unknown form {name:?}: the configured forms are {known}. Add it under [forms.{name}] in the configuration.")]
    UnknownForm { name: String, known: String },
}

/// What one delivery run did.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct DeliveryReport {
    pub tickets_created: u64,
    /// Tickets an earlier attempt had created although its answer was lost.
    pub tickets_found: u64,
    pub customers_created: u64,
    pub customers_updated: u64,
    pub customers_unchanged: u64,
    /// Source id and reason of each record failed in this run.
    pub failed: Vec<(String, String)>,
    /// Records still on their way (an answer to check, Help Scout unreachable).
    pub waiting: u64,
    /// Why the run stopped early (the account, not one record, is the problem).
    #[serde(serialize_with = "reason_message")]
    pub stopped: Option<FailureReason>,
    /// Log rows copied into the DuckDB file.
    pub logged: u64,
    /// Another process holds the delivery lock and sends the outbox itself.
    pub delivered_elsewhere: bool,
    /// The DuckDB file stayed busy: log rows wait in the outbox for the next copy.
    pub log_waiting: bool,
}

fn reason_message<S: serde::Serializer>(reason: &Option<FailureReason>, s: S) -> Result<S::Ok, S::Error> {
    match reason {
        Some(r) => s.serialize_some(&r.message()),
        None => s.serialize_none(),
    }
}

/// Wakes the background delivery (a new record) or stops it.
#[derive(Default)]
pub struct Waker {
    notify: tokio::sync::Notify,
    stop: std::sync::atomic::AtomicBool,
}

impl Waker {
    pub fn notify_one(&self) {
        self.notify.notify_one();
    }

    pub fn stop(&self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        self.notify.notify_one();
    }
}

/// Delivers in the background until stopped (what `serve` runs beside its pages): at once when
/// woken, else every `settings.poll`. Without credentials it only copies the log rows.
pub fn spawn_background(outputs: Outputs, client: Option<crate::api::ClientConfig>, settings: PushSettings, waker: Arc<Waker>) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime for the delivery");
        runtime.block_on(async move {
            let client = client.and_then(|c| Client::new(c).map_err(|e| tracing::error!(error = %e, "delivery cannot reach Help Scout")).ok());
            while !waker.stop.load(std::sync::atomic::Ordering::SeqCst) {
                let outcome = match &client {
                    Some(client) => match Delivery::new(&outputs, client.clone(), &settings) {
                        Ok(delivery) => delivery.run(Duration::from_secs(2)).await.map(|_| ()),
                        Err(e) => Err(e),
                    },
                    None => Outbox::open(outputs.outbox()).map_err(DeliverError::from).and_then(|o| mirror(&outputs, &o, Duration::from_secs(2)).map(|_| ()).map_err(DeliverError::from)),
                };
                if let Err(e) = outcome {
                    tracing::warn!(error = %e, "a delivery round failed; the next one tries again");
                }
                tokio::select! {
                    _ = waker.notify.notified() => {}
                    _ = tokio::time::sleep(settings.poll) => {}
                }
            }
        });
    })
}

/// A To-HelpScout log row about `source_id`.
fn event(source_id: &str, event_type: EventType, status: Status, email: Option<&str>, details: String) -> OutboundEvent {
    OutboundEvent {
        source_id: source_id.into(),
        timestamp: Utc::now(),
        event_type,
        customer_email: email.map(str::to_string),
        conversation_id: None,
        conversation_number: None,
        status,
        details,
        error_message: None,
        http_status: None,
        request: None,
        attempt: 0,
        retryable: false,
        retried_by: None,
    }
}

fn received_details(s: &Submission) -> String {
    format!("Form {:?} submission received: {:?} (submission {})", s.form, s.subject, s.id)
}

/// Records a submission durably, with its Pending log row (or a Duplicate Ignored row when it
/// was received before).
pub fn receive(outbox: &mut Outbox, settings: &PushSettings, submission: &Submission, caller_gave_id: bool) -> Result<Received, DeliverError> {
    if !settings.forms.contains_key(&submission.form) {
        return Err(DeliverError::UnknownForm { name: submission.form.clone(), known: settings.forms.keys().cloned().collect::<Vec<_>>().join(", ") });
    }
    let received = outbox.receive(submission, caller_gave_id, settings.duplicate_window, |arrival| match arrival {
        Received::Duplicate { source_id, of } => event(
            source_id,
            EventType::DuplicateIgnored,
            Status::Success,
            Some(&submission.email),
            format!("Form {:?} sent {of} again ({:?}); no second ticket", submission.form, submission.subject),
        ),
        Received::New { source_id } => event(source_id, EventType::TicketCreated, Status::Pending, Some(&submission.email), received_details(submission)),
    })?;
    Ok(received)
}

/// Records a customer record durably, with its Pending log row.
pub fn receive_customer(outbox: &mut Outbox, record: &CustomerRecord) -> Result<String, DeliverError> {
    Ok(outbox.receive_customer(record, |source_id| event(source_id, EventType::CustomerSynced, Status::Pending, Some(&record.email), "Customer record received".into()))?)
}

/// Copies the outbox's new log rows into the DuckDB file (waiting at most `wait` for it).
pub fn mirror(outputs: &Outputs, outbox: &Outbox, wait: Duration) -> Result<u64, StoreError> {
    // Nothing new since the last copy: the DuckDB file is not opened (analysts keep it).
    let newest = outbox.log_version()?;
    if newest <= outbox.copied_hint()? && outputs.duckdb.exists() {
        return Ok(0);
    }
    let id = outbox.id()?;
    let mut warehouse = Warehouse::new(&outputs.duckdb);
    warehouse.lock_timeout = wait;
    let mut copied = 0;
    loop {
        let more = warehouse.commit(&mut WindowStats::default(), |tx| -> Result<usize, StoreError> {
            tx.ensure_log()?;
            tx.ensure_views()?;
            let mark = tx.outbox_mark(&id)?;
            let rows = outbox.log_rows_after(mark, 2_000)?;
            let Some(last) = rows.last().map(|(v, _)| *v) else { return Ok(0) };
            let events: Vec<OutboundEvent> = rows.into_iter().map(|(_, e)| e).collect();
            tx.apply_outbound(&id, &events, last)?;
            Ok(events.len())
        })?;
        if more == 0 {
            outbox.set_copied_hint(newest)?;
            if copied > 0 {
                export_log(outputs, &warehouse);
            }
            return Ok(copied);
        }
        copied += more as u64;
    }
}

/// Brings the lake's copy of the log up to date with the rows just copied, when no sync is
/// writing (a running sync exports them at its end, as does the next one if this fails: the
/// stale blocks stay marked until exported).
fn export_log(outputs: &Outputs, warehouse: &Warehouse) {
    let Ok(_lock) = outputs.lock() else { return };
    let exported = crate::store::Lake::open(&outputs.lake, &crate::store::lake::process_env).and_then(|lake| loop {
        let done = warehouse.commit(&mut WindowStats::default(), |tx| tx.export_log(&lake, None, crate::store::EXPORT_BUDGET))?;
        if !done.more {
            return Ok(());
        }
    });
    if let Err(e) = exported {
        tracing::warn!(error = %e, "the lake's copy of the log was not brought up to date; the next sync does it");
    }
}

/// The delivery run: sends what is due, as often as answers allow, then copies the log.
pub struct Delivery<'a> {
    outputs: &'a Outputs,
    client: Arc<Client>,
    settings: &'a PushSettings,
    outbox: Outbox,
    report: DeliveryReport,
}

/// Where one record's attempt ended.
enum Settled {
    Done,
    /// Try again later (no answer, or Help Scout unreachable).
    Later,
    /// The account cannot write now: stop the run.
    Stop(FailureReason),
}

impl<'a> Delivery<'a> {
    pub fn new(outputs: &'a Outputs, client: Arc<Client>, settings: &'a PushSettings) -> Result<Self, DeliverError> {
        Ok(Delivery { outbox: Outbox::open(outputs.outbox())?, outputs, client, settings, report: DeliveryReport::default() })
    }

    /// Sends everything due, under the delivery lock (another holder sends it instead).
    pub async fn run(mut self, mirror_wait: Duration) -> Result<DeliveryReport, DeliverError> {
        let Some(_lock) = self.outputs.delivery_lock()? else {
            self.report.delivered_elsewhere = true;
            self.mirror(mirror_wait);
            return Ok(self.report);
        };
        self.mirror(mirror_wait);
        // Passes until nothing is due now: a record whose answer was lost is due again once its
        // recheck time comes, within this run when that is immediate.
        for _ in 0..=self.settings.max_attempts {
            let sent = self.pass().await?;
            self.mirror(mirror_wait);
            if sent == 0 || self.report.stopped.is_some() {
                break;
            }
        }
        let (subs, custs) = (self.outbox.counts(Queue::Submissions)?, self.outbox.counts(Queue::CustomerRecords)?);
        self.report.waiting = subs.queued + subs.sending + custs.queued + custs.sending;
        Ok(self.report)
    }

    /// Copies the log rows; a DuckDB file held too long leaves them in the outbox for the next
    /// copy (nothing is lost, the log is only late).
    fn mirror(&mut self, wait: Duration) {
        match mirror(self.outputs, &self.outbox, wait) {
            Ok(n) => self.report.logged += n,
            Err(e) => {
                tracing::warn!(error = %e, "the log rows wait in the outbox for the DuckDB file");
                self.report.log_waiting = true;
            }
        }
    }

    /// One pass over the due records; returns how many were attempted.
    async fn pass(&mut self) -> Result<usize, DeliverError> {
        let now = Utc::now();
        let submissions: Vec<Queued<Submission>> = self.outbox.due(Queue::Submissions, now, 500)?;
        let customers: Vec<Queued<CustomerRecord>> = self.outbox.due(Queue::CustomerRecords, now, 500)?;
        let attempted = submissions.len() + customers.len();
        for item in submissions {
            if let Settled::Stop(reason) = self.submission(item).await? {
                self.report.stopped = Some(reason);
                return Ok(attempted);
            }
        }
        for item in customers {
            if let Settled::Stop(reason) = self.customer(item).await? {
                self.report.stopped = Some(reason);
                return Ok(attempted);
            }
        }
        Ok(attempted)
    }

    fn later(&self) -> DateTime<Utc> {
        Utc::now() + chrono::Duration::from_std(self.settings.recheck_after).unwrap_or_default()
    }

    /// Fails a record with the reason and its fix; an account-wide reason stops the run.
    fn fail(&mut self, item_id: &str, mut e: OutboundEvent, reason: FailureReason, http_status: Option<u16>) -> Result<Settled, DeliverError> {
        e.status = Status::Failed;
        e.error_message = Some(reason.message());
        e.details = format!("{} — {}", e.details, reason.fix());
        e.http_status = http_status;
        e.retryable = true;
        self.outbox.settle(item_id, DeliveryState::Failed, None, Some(&reason.message()), None, &e)?;
        self.report.failed.push((item_id.to_string(), reason.message()));
        Ok(match reason {
            FailureReason::AuthenticationFailed | FailureReason::RateLimitExceeded => Settled::Stop(reason),
            _ => Settled::Done,
        })
    }

    /// No answer (or no connection): stays on its way, checked before the next attempt.
    fn wait(&mut self, item_id: &str, mut e: OutboundEvent, why: &ApiError) -> Result<Settled, DeliverError> {
        e.status = Status::Pending;
        e.details = format!("{} — no answer from Help Scout ({why}); it is looked for before any new attempt", e.details);
        e.http_status = why.http_status();
        self.outbox.settle(item_id, DeliveryState::Sending, None, Some(&why.to_string()), Some(self.later()), &e)?;
        Ok(Settled::Later)
    }

    async fn submission(&mut self, item: Queued<Submission>) -> Result<Settled, DeliverError> {
        let s = &item.record;
        let id = item.source_id.as_str();
        let mut e = event(id, EventType::TicketCreated, Status::Pending, Some(&s.email), format!("Form {:?}: {:?} (submission {})", s.form, s.subject, s.id));
        e.attempt = item.attempts;
        e.retried_by = item.retried_by.clone();
        let Some(form) = self.settings.forms.get(&s.form) else {
            return self.fail(id, e, FailureReason::FormNotConfigured(s.form.clone()), None);
        };
        if let Some(problem) = s.problem() {
            return self.fail(id, e, problem, None);
        }
        let marker = s.marker();
        // Tried before: the ticket may exist although its answer never came.
        if item.attempts > 0 || item.state == DeliveryState::Sending {
            match self.find_ticket(&marker).await {
                Ok(Some((conversation, number))) => {
                    e.status = Status::Success;
                    e.conversation_id = Some(conversation);
                    e.conversation_number = number;
                    e.details = format!("{} — ticket found by its marker {marker} (an earlier attempt's answer was lost)", e.details);
                    self.outbox.settle(id, DeliveryState::Delivered, Some(conversation), None, None, &e)?;
                    self.report.tickets_found += 1;
                    return Ok(Settled::Done);
                }
                Ok(None) => {}
                Err(err) => return self.after_failed_read(id, e, err),
            }
            if item.attempts >= self.settings.max_attempts {
                return self.fail(id, e, FailureReason::Unanswered(item.attempts), None);
            }
        }
        let (first, last) = s.first_and_last_name();
        let mut tags = form.tags.clone();
        tags.push(marker.clone());
        let body = json!({
            "subject": s.subject,
            "type": "email",
            "mailboxId": form.mailbox_id,
            "status": "active",
            "customer": { "email": s.email, "firstName": first, "lastName": last },
            "threads": [{ "type": "customer", "customer": { "email": s.email }, "text": s.ticket_text() }],
            "tags": tags,
            "imported": form.imported,
            "autoReply": form.auto_reply,
        });
        e.attempt = self.outbox.begin_attempt(id)?;
        e.request = Some("POST /conversations".into());
        match self.client.write(Method::Post, "/conversations", &body).await {
            Ok(response) => match response.resource_id {
                Some(conversation) => {
                    e.status = Status::Success;
                    e.conversation_id = Some(conversation);
                    e.http_status = Some(201);
                    e.details = format!("{} — ticket created in mailbox {}", e.details, form.mailbox_id);
                    self.outbox.settle(id, DeliveryState::Delivered, Some(conversation), None, None, &e)?;
                    self.report.tickets_created += 1;
                    Ok(Settled::Done)
                }
                // Created, but the id is not known: the marker finds it.
                None => self.wait(id, e, &ApiError::Malformed { path: "/conversations".into(), reason: "no Resource-ID header".into() }),
            },
            Err(err @ ApiError::NotFound { .. }) => self.fail(id, e, FailureReason::MailboxNotFound, err.http_status()),
            Err(err) => match err.write_outcome() {
                WriteOutcome::Refused(reason) => self.fail(id, e, reason, err.http_status()),
                WriteOutcome::Unknown | WriteOutcome::NotSent => self.wait(id, e, &err),
            },
        }
    }

    /// A lookup failed: the credentials stop the run; anything else waits.
    fn after_failed_read(&mut self, id: &str, e: OutboundEvent, err: ApiError) -> Result<Settled, DeliverError> {
        match err.write_outcome() {
            WriteOutcome::Refused(reason @ (FailureReason::AuthenticationFailed | FailureReason::RateLimitExceeded)) => self.fail(id, e, reason, err.http_status()),
            _ => self.wait(id, e, &err),
        }
    }

    /// The conversation carrying `marker`, if Help Scout has one.
    async fn find_ticket(&self, marker: &str) -> Result<Option<(i64, Option<i64>)>, ApiError> {
        let response = self.client.get(&format!("/conversations?status=all&tag={marker}")).await?;
        let first = response.body.pointer("/_embedded/conversations/0");
        Ok(first.and_then(|c| Some((c.get("id")?.as_i64()?, c.get("number").and_then(Value::as_i64)))))
    }

    async fn customer(&mut self, item: Queued<CustomerRecord>) -> Result<Settled, DeliverError> {
        let c = &item.record;
        let id = item.source_id.as_str();
        let mut e = event(id, EventType::CustomerSynced, Status::Pending, Some(&c.email), "Customer record".into());
        e.attempt = item.attempts;
        e.retried_by = item.retried_by.clone();
        if let Some(problem) = c.problem() {
            return self.fail(id, e, problem, None);
        }
        // Matched by email before every write: a create whose answer was lost is found here.
        let existing = match self.find_customer(&c.email).await {
            Ok(existing) => existing,
            Err(err) => return self.after_failed_read(id, e, err),
        };
        if item.attempts >= self.settings.max_attempts {
            return self.fail(id, e, FailureReason::Unanswered(item.attempts), None);
        }
        match existing {
            None => {
                let mut body = serde_json::Map::new();
                for (name, value, _) in c.fields() {
                    if let Some(v) = value {
                        body.insert(name.into(), json!(v));
                    }
                }
                body.insert("emails".into(), json!([{ "type": "work", "value": c.email }]));
                e.attempt = self.outbox.begin_attempt(id)?;
                e.request = Some("POST /customers".into());
                match self.client.write(Method::Post, "/customers", &Value::Object(body)).await {
                    Ok(response) => {
                        e.status = Status::Success;
                        e.http_status = Some(201);
                        e.details = "Customer created in Help Scout".into();
                        self.outbox.settle(id, DeliveryState::Delivered, response.resource_id, None, None, &e)?;
                        self.report.customers_created += 1;
                        Ok(Settled::Done)
                    }
                    Err(err) => match err.write_outcome() {
                        WriteOutcome::Refused(reason) => self.fail(id, e, reason, err.http_status()),
                        WriteOutcome::Unknown | WriteOutcome::NotSent => self.wait(id, e, &err),
                    },
                }
            }
            Some((customer_id, current)) => {
                e.event_type = EventType::CustomerUpdated;
                // Only the fields the record gives and Help Scout holds differently.
                let changes: Vec<(&str, &String)> = c
                    .fields()
                    .into_iter()
                    .filter_map(|(name, value, _)| value.as_ref().map(|v| (name, v)))
                    .filter(|(name, v)| current.get(*name).and_then(Value::as_str) != Some(v.as_str()))
                    .collect();
                if changes.is_empty() {
                    e.status = Status::Success;
                    e.details = "Customer already up to date in Help Scout: nothing written".into();
                    let ours = item.state == DeliveryState::Sending;
                    if ours {
                        // Our own create, whose answer was lost.
                        e.event_type = EventType::CustomerSynced;
                        e.details = format!("Customer {customer_id} created in Help Scout (found by email after a lost answer)");
                    }
                    self.outbox.settle(id, DeliveryState::Delivered, Some(customer_id), None, None, &e)?;
                    if ours {
                        self.report.customers_created += 1;
                    } else {
                        self.report.customers_unchanged += 1;
                    }
                    return Ok(Settled::Done);
                }
                let names: Vec<&str> = changes.iter().map(|(n, _)| *n).collect();
                let patch: Vec<Value> = changes.iter().map(|(name, v)| json!({ "op": "replace", "path": format!("/{name}"), "value": v })).collect();
                e.attempt = self.outbox.begin_attempt(id)?;
                e.request = Some(format!("PATCH /customers/{customer_id}"));
                match self.client.write(Method::Patch, &format!("/customers/{customer_id}"), &Value::Array(patch)).await {
                    Ok(_) => {
                        e.status = Status::Success;
                        e.http_status = Some(204);
                        e.details = format!("Customer {customer_id} updated: {}", names.join(", "));
                        self.outbox.settle(id, DeliveryState::Delivered, Some(customer_id), None, None, &e)?;
                        self.report.customers_updated += 1;
                        Ok(Settled::Done)
                    }
                    Err(err) => match err.write_outcome() {
                        WriteOutcome::Refused(reason) => self.fail(id, e, reason, err.http_status()),
                        // An update is the same whenever it lands: compared again next time.
                        WriteOutcome::Unknown | WriteOutcome::NotSent => self.wait(id, e, &err),
                    },
                }
            }
        }
    }

    /// The customer with this email (lowest id if several) and its profile.
    async fn find_customer(&self, email: &str) -> Result<Option<(i64, Value)>, ApiError> {
        let query: String = url::form_urlencoded::byte_serialize(format!("(email:\"{email}\")").as_bytes()).collect();
        let response = self.client.get(&format!("/customers?query={query}")).await?;
        let id = response
            .body
            .pointer("/_embedded/customers")
            .and_then(Value::as_array)
            .and_then(|list| list.iter().filter_map(|c| c.get("id").and_then(Value::as_i64)).min());
        let Some(id) = id else { return Ok(None) };
        let profile = self.client.get(&format!("/customers/{id}")).await?.body;
        Ok(Some((id, profile)))
    }
}

/// A correction an Administrator makes before a retry.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Correction {
    pub email: Option<String>,
    pub name: Option<String>,
}

/// Puts failed records back in the queue (corrected), keeping their marker, so a retry cannot
/// make a second ticket either. Returns how many were failed and are queued again.
pub fn requeue(outbox: &mut Outbox, source_ids: &[String], correction: &Correction, asked_by: Option<&str>) -> Result<usize, DeliverError> {
    let who = asked_by.unwrap_or("the command line");
    let mut queued = 0;
    for source_id in source_ids {
        let again = match Queue::of(source_id) {
            Queue::Submissions => {
                let Some(item) = outbox.get::<Submission>(source_id)? else { continue };
                let mut s = item.record;
                if let Some(email) = &correction.email {
                    s.email = email.trim().into();
                }
                if let Some(name) = &correction.name {
                    s.name = name.trim().into();
                }
                let mut e = event(source_id, EventType::TicketCreated, Status::Pending, Some(&s.email), format!("{} — retry asked by {who}", received_details(&s)));
                e.retried_by = asked_by.map(str::to_string);
                outbox.requeue(source_id, Some(&s), asked_by, &e)?
            }
            Queue::CustomerRecords => {
                let Some(item) = outbox.get::<CustomerRecord>(source_id)? else { continue };
                let mut c = item.record;
                if let Some(email) = &correction.email {
                    c.email = email.trim().into();
                }
                if let Some(name) = &correction.name {
                    let (first, last) = crate::catalog::outbound::split_name(name);
                    c.first_name = first;
                    c.last_name = last;
                }
                let mut e = event(source_id, EventType::CustomerSynced, Status::Pending, Some(&c.email), format!("Customer record — retry asked by {who}"));
                e.retried_by = asked_by.map(str::to_string);
                outbox.requeue(source_id, Some(&c), asked_by, &e)?
            }
        };
        queued += usize::from(again);
    }
    Ok(queued)
}

/// Requeues failed records, then delivers.
pub async fn retry(outputs: &Outputs, client: Arc<Client>, settings: &PushSettings, source_ids: &[String], correction: &Correction, asked_by: Option<&str>) -> Result<DeliveryReport, DeliverError> {
    requeue(&mut Outbox::open(outputs.outbox())?, source_ids, correction, asked_by)?;
    Delivery::new(outputs, client, settings)?.run(Duration::from_secs(30)).await
}
