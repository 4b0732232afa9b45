//! `serve`: the log's web page on the outputs, until Ctrl-C or SIGTERM.

use std::io::Write;

use crate::cli::args::ServeArgs;
use crate::cli::config::{self, ConfigError};
use crate::cli::exit::Exit;
use crate::web::{self, ServeConfig};

pub async fn run(args: &ServeArgs, out: &mut dyn Write) -> anyhow::Result<Exit> {
    let outputs = config::load_outputs(args.output.config.as_deref(), &args.output.overrides())?;
    // Retries need the API's credentials; the page works without them and says so.
    let sync = match config::load(args.output.config.as_deref(), &args.output.overrides()) {
        Ok(settings) => Some(settings.sync),
        Err(ConfigError::NoCredentials) => None,
        Err(e) => return Err(e.into()),
    };
    let push = config::load_push(args.output.config.as_deref(), None)?;
    serve(ServeConfig { outputs, sync, push, listen: args.listen }, out).await
}

/// Binds, says where, serves.
pub async fn serve(config: ServeConfig, out: &mut dyn Write) -> anyhow::Result<Exit> {
    let duckdb = config.outputs.duckdb.display().to_string();
    let forms: Vec<String> = config.push.forms.values().filter(|f| f.secret.is_some()).map(|f| f.name.clone()).collect();
    let server = web::bind(config).await?;
    writeln!(out, "Serving the HelpScout Log of {duckdb} on http://{}/ (Ctrl-C stops).", server.addr())?;
    for form in forms.iter() {
        writeln!(out, "Form {form:?} takes submissions at http://{}/forms/{form}.", server.addr())?;
    }
    out.flush()?;
    server.run().await?;
    Ok(Exit::Success)
}
