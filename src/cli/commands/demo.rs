//! `demo`: the built-in simulator on an ephemeral loopback port, a full sync, a day of changes
//! (new tickets, replies, workflow changes, merges, deletions, …), an incremental refresh —
//! into one folder — and how to query what was loaded.

use std::io::Write;
use std::path::Path;

use anyhow::Context;
use helpscout_sim::{MutationPlan, SimConfig, Simulator};

use super::serve::serve;
use super::sync::write_report;
use crate::cli::args::DemoArgs;
use crate::cli::config::{self, FileConfig, Overrides};
use crate::cli::exit::Exit;
use crate::cli::progress::Progress;
use crate::deliver::{self, Delivery, FormSettings, PushSettings};
use crate::extract::{self, RunStatus};
use crate::store::Outbox;
use crate::web::{self, Role, ServeConfig};

/// Files the demo owns in its folder; anything else there means the folder is not the demo's.
const DEMO_ENTRIES: &[&str] = &["helpscout.duckdb", "helpscout.duckdb.wal", "parquet", "delta", ".helpscout-etl"];

pub async fn run(args: &DemoArgs, out: &mut dyn Write) -> anyhow::Result<Exit> {
    clear_previous_demo(&args.dir)?;
    let sim = Simulator::start(SimConfig { seed: args.seed, conversations: args.conversations, ..Default::default() })
        .await
        .context("starting the built-in simulator")?;
    writeln!(out, "Simulated Help Scout account (seed {}, {} conversations) serving on {}", args.seed, args.conversations, sim.base_url())?;

    let mut file = FileConfig::default();
    file.helpscout.client_id = Some(sim.config().client_id.clone());
    file.helpscout.client_secret = Some(sim.config().client_secret.clone());
    file.helpscout.base_url = Some(sim.base_url());
    file.helpscout.token_url = Some(sim.token_url());
    file.helpscout.rate_limit_per_minute = Some(sim.config().rate_limit_per_minute);
    file.start_date = Some("2015-01-01".into());
    file.output.dir = Some(args.dir.clone());
    file.output.lake = Some(args.lake.clone());
    // The simulator's own demo credentials, never the user's environment.
    let settings = config::resolve(file, &|_| None, &Overrides::default())?;

    writeln!(out, "\n1. Full sync")?;
    let first = extract::sync(&settings.outputs, &settings.sync, &Progress::auto()).await?;
    write_report(out, &first, false)?;
    if first.status != RunStatus::Success {
        sim.stop().await;
        return Ok(Exit::of_run(&first));
    }

    sim.advance_clock(chrono::Duration::hours(24));
    let changes = sim.mutate(&MutationPlan::busy_day(args.seed));
    writeln!(
        out,
        "\n2. A simulated day later: {} new conversations, {} replies, {} workflow changes, {} customer edits, {} merges, {} deletions",
        changes.new_conversations.len(),
        changes.replied_conversations.len(),
        changes.workflow_changed.len(),
        changes.edited_customers.len(),
        changes.merged.len(),
        changes.deleted.len()
    )?;

    writeln!(out, "\n3. Incremental refresh")?;
    let second = extract::sync(&settings.outputs, &settings.sync, &Progress::auto()).await?;
    write_report(out, &second, false)?;

    // To HelpScout: a contact form's submissions, one sent twice and one with a broken email.
    let mailbox = sim.ground_truth_table("mailboxes").and_then(|rows| rows.first().and_then(|m| m.get("id")?.as_i64())).context("the simulated account has a mailbox")?;
    let secret: String = rand::random::<[u8; 16]>().iter().map(|b| format!("{b:02x}")).collect();
    let form = FormSettings { name: "contact".into(), secret: Some(secret.clone()), mailbox_id: mailbox, tags: vec!["website".into()], imported: true, auto_reply: false };
    let push = PushSettings { forms: [("contact".to_string(), form)].into(), ..Default::default() };
    let mut outbox = Outbox::open(settings.outputs.outbox())?;
    let samples = [
        ("demo-1", "jane@example.com", "Where is my order?"),
        ("demo-1", "jane@example.com", "Where is my order?"),
        ("demo-2", "joe at example.com", "Please call me back"),
    ];
    for (id, email, subject) in samples {
        let fields = [("submission_id", id), ("email", email), ("name", "Demo Customer"), ("subject", subject), ("message", "Sent from the demo's contact form.")];
        let (submission, given) = deliver::intake::submission("contact", fields.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect())?;
        deliver::receive(&mut outbox, &push, &submission, given)?;
    }
    drop(outbox);
    let delivered = Delivery::new(&settings.outputs, crate::api::Client::new(settings.sync.client.clone())?, &push)?.run(settings.sync.lock_timeout).await?;
    writeln!(
        out,
        "\n4. To HelpScout: 3 contact-form posts -> {} ticket created, 1 repeat ignored, {} failed ({})",
        delivered.tickets_created,
        delivered.failed.len(),
        delivered.failed.iter().map(|(_, reason)| reason.as_str()).collect::<Vec<_>>().join(", ")
    )?;

    let db = settings.outputs.duckdb.display().to_string();
    let parquet = settings.outputs.lake.location.to_string();
    writeln!(
        out,
        r#"
Loaded into {db} and {parquet}/. Try:

  duckdb -readonly {db} "SELECT status, count(*) FROM conversations GROUP BY ALL ORDER BY 2 DESC"
  duckdb -readonly {db} "SELECT event_type, status, count(*) FROM helpscout_log GROUP BY ALL ORDER BY 3 DESC"
  duckdb -readonly {db} "SELECT event_type, status, customer_email, conversation_id, error_message FROM helpscout_log WHERE direction = 'To HelpScout'"
  python3 -c "import duckdb; con = duckdb.connect('{db}', read_only=True); print(con.sql('SELECT c.subject, cu.first_name FROM conversations c JOIN customers cu ON c.primary_customer.id = cu.id LIMIT 5'))"
  {lake_hint}
  helpscout-etl status --output {dir} --lake {format}
  helpscout-etl demo --serve      # the same, then the log's web page on it
"#,
        dir = args.dir.display(),
        format = settings.outputs.lake.format.name(),
        lake_hint = match settings.outputs.lake.format {
            crate::store::LakeFormat::Parquet => format!("python3 -c \"import pyarrow.dataset as ds; print(ds.dataset('{parquet}/conversations', partitioning='hive').to_table().num_rows)\""),
            crate::store::LakeFormat::Delta => format!("python3 -c \"import deltalake; t = deltalake.DeltaTable('{parquet}/conversations'); print(t.version(), t.to_pyarrow_dataset().count_rows())\""),
        }
    )?;
    if args.serve {
        // A demo Administrator with a password made for this run; the simulator stays up so
        // that retries from the page reach it.
        let password: String = rand::random::<[u8; 9]>().iter().map(|b| format!("{b:02x}")).collect();
        web::user_store(&settings.outputs).add(DEMO_USER, Role::Administrator, &password)?;
        writeln!(out, "5. The HelpScout Log page: sign in as {DEMO_USER} with the one-time password {password}")?;
        writeln!(
            out,
            "   Post to the demo's contact form:\n   curl -s http://{}/forms/contact -H 'X-Form-Secret: {secret}' -H 'content-type: application/json' -d '{{\"email\":\"you@example.com\",\"subject\":\"Hello\",\"message\":\"Hi\"}}'",
            args.listen
        )?;
        let config = ServeConfig { outputs: settings.outputs.clone(), sync: Some(settings.sync.clone()), push, listen: args.listen };
        let served = serve(config, out).await;
        sim.stop().await;
        served?;
    } else {
        sim.stop().await;
    }
    Ok(Exit::of_run(&second))
}

/// The demo's own Administrator (`demo --serve`).
const DEMO_USER: &str = "demo";

/// The demo starts from scratch each time (the simulator does too); it only ever removes its
/// own files.
fn clear_previous_demo(dir: &Path) -> anyhow::Result<()> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Ok(()) };
    let names: Vec<String> = entries.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect();
    if let Some(foreign) = names.iter().find(|n| !DEMO_ENTRIES.contains(&n.as_str())) {
        anyhow::bail!(
            "{} holds {foreign:?}, which the demo did not write; pass an empty or new folder with --dir.",
            dir.display()
        );
    }
    for name in names {
        let path = dir.join(name);
        if path.is_dir() {
            std::fs::remove_dir_all(&path)
        } else {
            std::fs::remove_file(&path)
        }
        .with_context(|| format!("removing the previous demo's {}", path.display()))?;
    }
    Ok(())
}
