//! `push`: the To-HelpScout direction for cron. Queues a file's submissions or customer records
//! (all or none: a file with an unreadable line queues nothing), then delivers the whole queue.

use std::io::Write;

use crate::api::Client;
use crate::cli::args::{PushArgs, PushKind};
use crate::cli::config;
use crate::cli::exit::Exit;
use crate::cli::render;
use crate::deliver::{self, DeliverError, Delivery, DeliveryReport, intake};
use crate::store::{Outbox, Received};

/// What a file added to the queue.
#[derive(Debug, Default, serde::Serialize)]
struct Queued {
    received: u64,
    repeats_ignored: u64,
}

pub async fn run(args: &PushArgs, out: &mut dyn Write) -> anyhow::Result<Exit> {
    let settings = config::load(args.sync.output.config.as_deref(), &args.sync.overrides())?;
    let form_for_mailbox = args.mailbox.map(|id| (args.form.clone().unwrap_or_default(), id));
    let mut push = config::load_push(args.sync.output.config.as_deref(), form_for_mailbox.as_ref().map(|(f, id)| (f.as_str(), *id)))?;
    let outputs = &settings.outputs;
    let mut queued = Queued::default();
    if let Some(kind) = args.kind {
        let Some(file) = &args.file else {
            return Err(bad_input(format!("`push {}` needs a file: helpscout-etl push {0} FILE (JSON Lines or CSV).", kind_name(kind))));
        };
        let bytes = std::fs::read(file).map_err(|e| bad_input(format!("Cannot read {}: {e}; pass an existing file.", file.display())))?;
        let records = intake::file_records(&file.display().to_string(), &bytes).map_err(|e| bad_input(format!("{}: {e}; nothing was queued.", file.display())))?;
        let mut outbox = Outbox::open(outputs.outbox())?;
        match kind {
            PushKind::Forms => {
                let form = match &args.form {
                    Some(name) => name.clone(),
                    None if push.forms.len() == 1 => push.forms.keys().next().cloned().unwrap_or_default(),
                    None => return Err(bad_input(format!("Name the form with --form (configured: {}).", names(&push)))),
                };
                if let Some(id) = args.mailbox
                    && let Some(f) = push.forms.get_mut(&form)
                {
                    f.mailbox_id = id;
                }
                let mut submissions = Vec::new();
                for (i, fields) in records.into_iter().enumerate() {
                    let parsed = intake::submission(&form, fields).map_err(|e| bad_input(format!("{} record {}: {e}; nothing was queued.", file.display(), i + 1)))?;
                    submissions.push(parsed);
                }
                for (submission, given) in &submissions {
                    match deliver::receive(&mut outbox, &push, submission, *given) {
                        Ok(Received::New { .. }) => queued.received += 1,
                        Ok(Received::Duplicate { .. }) => queued.repeats_ignored += 1,
                        Err(e @ DeliverError::UnknownForm { .. }) => return Err(bad_input(e.to_string())),
                        Err(e) => return Err(e.into()),
                    }
                }
            }
            PushKind::Customers => {
                let mut customers = Vec::new();
                for (i, fields) in records.into_iter().enumerate() {
                    customers.push(intake::customer(fields).map_err(|e| bad_input(format!("{} record {}: {e}; nothing was queued.", file.display(), i + 1)))?);
                }
                for c in &customers {
                    deliver::receive_customer(&mut outbox, c)?;
                    queued.received += 1;
                }
            }
        }
    } else if args.file.is_some() {
        return Err(bad_input("Say what the file holds: helpscout-etl push forms FILE, or push customers FILE.".into()));
    }
    let client = Client::new(settings.sync.client.clone())?;
    let report = Delivery::new(outputs, client, &push)?.run(settings.sync.lock_timeout).await?;
    if args.sync.output.json {
        write!(out, "{}", render::json(&serde_json::json!({ "queued": queued, "delivery": report })))?;
    } else {
        if args.kind.is_some() {
            writeln!(out, "Queued {} (repeats ignored: {}).", queued.received, queued.repeats_ignored)?;
        }
        describe(&report, out)?;
    }
    Ok(exit_of(&report))
}

pub fn describe(r: &DeliveryReport, out: &mut dyn Write) -> std::io::Result<()> {
    if r.delivered_elsewhere {
        writeln!(out, "`serve` is delivering this outbox right now; it sends what was queued.")?;
        return Ok(());
    }
    writeln!(
        out,
        "Tickets created {}, found after a lost answer {}; customers created {}, updated {}, unchanged {}.",
        r.tickets_created, r.tickets_found, r.customers_created, r.customers_updated, r.customers_unchanged
    )?;
    for (source_id, reason) in &r.failed {
        writeln!(out, "Failed {source_id}: {reason}")?;
    }
    if let Some(why) = &r.stopped {
        writeln!(out, "Stopped: {}. The rest stays queued.", why.message())?;
    }
    if r.waiting > 0 {
        writeln!(out, "{} still on the way (answers to check, or Help Scout unreachable): the next `push` or `serve` delivers them.", r.waiting)?;
    }
    Ok(())
}

/// 0: all delivered; 2: the credentials were refused; 3: some failed or are still on the way.
pub fn exit_of(r: &DeliveryReport) -> Exit {
    match (&r.stopped, r.failed.is_empty() && r.waiting == 0) {
        (Some(crate::catalog::outbound::FailureReason::AuthenticationFailed), _) => Exit::BadInput,
        (None, true) => Exit::Success,
        _ => Exit::Partial,
    }
}

fn kind_name(kind: PushKind) -> &'static str {
    match kind {
        PushKind::Forms => "forms",
        PushKind::Customers => "customers",
    }
}

fn names(push: &deliver::PushSettings) -> String {
    if push.forms.is_empty() { "none: add [forms.NAME] to the configuration".into() } else { push.forms.keys().cloned().collect::<Vec<_>>().join(", ") }
}

fn bad_input(message: String) -> anyhow::Error {
    anyhow::anyhow!(clap::Error::raw(clap::error::ErrorKind::InvalidValue, format!("{message}\n")))
}
