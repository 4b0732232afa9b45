//! Configuration: a TOML file (or a tap-helpscout `config.json`, accepted as is), environment
//! variables (where secrets belong) and command-line flags, in rising precedence. Resolved into
//! where outputs are (`Outputs`, all that read-only commands need) and how to sync
//! (`SyncSettings`, which needs credentials).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use serde::Deserialize;
use url::Url;

use crate::api::{ClientConfig, Credentials, TokenStore};
use crate::catalog::{self, Table};
use crate::deliver::{FormSettings, PushSettings};
use crate::extract::{Method, SyncSettings, TableChoice};
use crate::store::{LakeFormat, LakeLocation, Outputs};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("Cannot read the configuration file {path}: {reason}; pass an existing file with --config.")]
    Unreadable { path: String, reason: String },
    #[error("The configuration file {path} is not valid {format}: {reason}")]
    Syntax { path: String, format: &'static str, reason: String },
    #[error("No Help Scout credentials: set HELPSCOUT_CLIENT_ID and HELPSCOUT_CLIENT_SECRET (plus HELPSCOUT_REFRESH_TOKEN for the refresh-token grant), or put them under [helpscout] in the configuration file.")]
    NoCredentials,
    #[error("`{key}` is not a URL ({value:?}): expected something like {example}.")]
    BadUrl { key: &'static str, value: String, example: &'static str },
    #[error("The start date {0:?} is not a date: use YYYY-MM-DD or an RFC 3339 time such as 2024-06-03T12:00:00Z.")]
    BadStartDate(String),
    #[error("Unknown table {name:?}: the tables are {known}.")]
    UnknownTable { name: String, known: String },
    #[error("Table {table} has no column {name:?}; its columns are {known}.")]
    UnknownColumn { table: String, name: String, known: String },
    #[error("Form {form:?} has no mailbox: set `mailbox = ID` under [forms.{form}] (the ids are in the mailboxes table), or pass --mailbox.")]
    NoMailbox { form: String },
    #[error("The secret of form {form:?} is too short: use at least 16 random characters (set {var}).")]
    WeakSecret { form: String, var: String },
    #[error("`{key}` must be {expected}, not {value:?}.")]
    BadValue { key: String, expected: &'static str, value: String },
    #[error("{0}")]
    BadLakeUri(String),
}

pub const DEFAULT_BASE_URL: &str = "https://api.helpscout.net/v2";
pub const DEFAULT_TOKEN_URL: &str = "https://api.helpscout.net/v2/oauth2/token";
pub const DEFAULT_START_DATE: &str = "2015-01-01T00:00:00Z";

/// The file's shape. Every key is optional; unknown keys are errors (they are usually typos).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    #[serde(default)]
    pub helpscout: ApiSection,
    pub start_date: Option<String>,
    #[serde(default)]
    pub output: OutputSection,
    #[serde(default)]
    pub sync: SyncSection,
    #[serde(default)]
    pub tables: BTreeMap<String, TableSection>,
    /// Contact forms whose submissions become tickets.
    #[serde(default)]
    pub forms: BTreeMap<String, FormSection>,
    #[serde(default)]
    pub push: PushSection,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FormSection {
    /// The poster's shared secret (better: the environment variable HELPSCOUT_FORM_<NAME>_SECRET).
    pub secret: Option<String>,
    /// The mailbox its tickets go to.
    pub mailbox: Option<i64>,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub imported: bool,
    #[serde(default)]
    pub auto_reply: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PushSection {
    /// How close the same content without an id counts as one submission (default 600).
    pub duplicate_window_secs: Option<u64>,
    /// How long after an unanswered attempt its ticket is looked for (default 30).
    pub recheck_secs: Option<f64>,
    /// Attempts before a record fails as unanswered (default 8).
    pub max_attempts: Option<u32>,
    /// What `POST /customers` posters must show (better: HELPSCOUT_CUSTOMERS_SECRET).
    pub customers_secret: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiSection {
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    pub refresh_token: Option<String>,
    pub base_url: Option<String>,
    pub token_url: Option<String>,
    pub user_agent: Option<String>,
    /// The plan's limit per minute: Standard 200, Plus 400, Pro 800.
    pub rate_limit_per_minute: Option<u32>,
    pub rate_window_secs: Option<f64>,
    pub request_timeout_secs: Option<f64>,
    pub max_attempts: Option<u32>,
    pub concurrency: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputSection {
    pub dir: Option<PathBuf>,
    pub duckdb: Option<PathBuf>,
    /// The lake's format: "parquet" (hive folders) or "delta".
    pub lake: Option<String>,
    /// Where the lake is: a folder or s3://bucket/prefix.
    pub lake_uri: Option<String>,
    /// The older name of `lake_uri`.
    pub parquet: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyncSection {
    pub tables: Option<Vec<String>>,
    pub overlap_secs: Option<u64>,
    pub chunk_rows: Option<usize>,
    pub lock_timeout_secs: Option<u64>,
    /// Seconds between checks for removed conversations (0: every run).
    pub removal_check_secs: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableSection {
    /// "incremental" or "full".
    pub replication: Option<String>,
    pub columns: Option<Vec<String>>,
}

/// A tap-helpscout `config.json`.
#[derive(Debug, Deserialize)]
struct TapConfig {
    client_id: Option<String>,
    client_secret: Option<String>,
    refresh_token: Option<String>,
    user_agent: Option<String>,
    start_date: Option<String>,
}

/// Command-line overrides.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub output_dir: Option<PathBuf>,
    pub duckdb: Option<PathBuf>,
    pub lake: Option<String>,
    pub lake_uri: Option<String>,
    pub tables: Option<Vec<String>>,
    pub full_refresh: Option<Vec<String>>,
    pub start_date: Option<String>,
    pub base_url: Option<String>,
    pub token_url: Option<String>,
    pub concurrency: Option<usize>,
    pub rate_limit: Option<u32>,
}

/// Where outputs are and how to sync: what `sync` needs.
#[derive(Debug, Clone)]
pub struct Settings {
    pub outputs: Outputs,
    pub sync: SyncSettings,
}

/// Reads the file, if any. `.json` files are read as tap-helpscout configurations.
pub fn read_file(path: &Path) -> Result<FileConfig, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Unreadable {
        path: path.display().to_string(),
        reason: e.to_string(),
    })?;
    if path.extension().is_some_and(|e| e == "json") {
        let tap: TapConfig = serde_json::from_str(&text).map_err(|e| ConfigError::Syntax {
            path: path.display().to_string(),
            format: "JSON",
            reason: e.to_string(),
        })?;
        return Ok(FileConfig {
            helpscout: ApiSection {
                client_id: tap.client_id,
                client_secret: tap.client_secret,
                refresh_token: tap.refresh_token,
                user_agent: tap.user_agent,
                ..Default::default()
            },
            start_date: tap.start_date,
            ..Default::default()
        });
    }
    toml::from_str(&text).map_err(|e| ConfigError::Syntax {
        path: path.display().to_string(),
        format: "TOML",
        reason: e.to_string().trim().replace('\n', " "),
    })
}

/// The configuration file named on the command line, if any.
fn read_optional(path: Option<&Path>) -> Result<FileConfig, ConfigError> {
    path.map_or_else(|| Ok(FileConfig::default()), read_file)
}

/// Settings from the file named on the command line, the process environment and flags.
pub fn load(config: Option<&Path>, overrides: &Overrides) -> Result<Settings, ConfigError> {
    resolve(read_optional(config)?, &|k| std::env::var(k).ok(), overrides)
}

/// The forms and delivery timing (no credentials needed: `serve` takes posts without them).
pub fn load_push(config: Option<&Path>, mailbox_override: Option<(&str, i64)>) -> Result<PushSettings, ConfigError> {
    resolve_push(&read_optional(config)?, &|k| std::env::var(k).ok(), mailbox_override)
}

/// Forms: file < environment (secrets); a `--mailbox` flag for one form.
pub fn resolve_push(file: &FileConfig, env: &dyn Fn(&str) -> Option<String>, mailbox_override: Option<(&str, i64)>) -> Result<PushSettings, ConfigError> {
    let mut push = PushSettings::default();
    for (name, section) in &file.forms {
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
            return Err(bad(&format!("forms.{name}"), "a form name of letters, digits, '-' or '_'", name));
        }
        let var = format!("HELPSCOUT_FORM_{}_SECRET", name.to_ascii_uppercase().replace('-', "_"));
        let secret = env(&var).filter(|v| !v.is_empty()).or_else(|| section.secret.clone());
        if let Some(secret) = &secret
            && secret.len() < 16
        {
            return Err(ConfigError::WeakSecret { form: name.clone(), var });
        }
        let mailbox = mailbox_override.filter(|(form, _)| form == name).map(|(_, id)| id).or(section.mailbox);
        let Some(mailbox_id) = mailbox else {
            return Err(ConfigError::NoMailbox { form: name.clone() });
        };
        push.forms.insert(name.clone(), FormSettings { name: name.clone(), secret, mailbox_id, tags: section.tags.clone(), imported: section.imported, auto_reply: section.auto_reply });
    }
    let var = "HELPSCOUT_CUSTOMERS_SECRET";
    push.customers_secret = env(var).filter(|v| !v.is_empty()).or_else(|| file.push.customers_secret.clone());
    if push.customers_secret.as_ref().is_some_and(|s| s.len() < 16) {
        return Err(ConfigError::WeakSecret { form: "customers".into(), var: var.into() });
    }
    if let Some(secs) = file.push.duplicate_window_secs {
        push.duplicate_window = Duration::from_secs(secs);
    }
    if let Some(secs) = file.push.recheck_secs {
        if !(secs.is_finite() && secs >= 0.0) {
            return Err(bad("push.recheck_secs", "a number of seconds", secs));
        }
        push.recheck_after = Duration::from_secs_f64(secs);
    }
    if let Some(n) = file.push.max_attempts {
        push.max_attempts = n.max(1);
    }
    Ok(push)
}

/// Where the outputs are, for commands that only read or reset them (no credentials needed).
pub fn load_outputs(config: Option<&Path>, overrides: &Overrides) -> Result<Outputs, ConfigError> {
    resolve_outputs(&read_optional(config)?, overrides)
}

/// Where outputs are: file < flags. Needs no credentials.
pub fn resolve_outputs(file: &FileConfig, flags: &Overrides) -> Result<Outputs, ConfigError> {
    let mut outputs = Outputs::under(
        flags.output_dir.clone().or_else(|| file.output.dir.clone()).unwrap_or_else(|| PathBuf::from("helpscout-data")),
    );
    if let Some(p) = flags.duckdb.clone().or_else(|| file.output.duckdb.clone()) {
        outputs.duckdb = p;
    }
    let format = match flags.lake.as_ref().or(file.output.lake.as_ref()) {
        Some(name) => LakeFormat::parse(name).ok_or_else(|| ConfigError::BadValue { key: "output.lake".into(), expected: "\"parquet\" or \"delta\"", value: name.clone() })?,
        None => LakeFormat::Parquet,
    };
    outputs.lake = outputs.default_lake(format);
    if let Some(uri) = flags.lake_uri.as_ref().or(file.output.lake_uri.as_ref()).or(file.output.parquet.as_ref()) {
        outputs.lake.location = LakeLocation::parse(uri).map_err(ConfigError::BadLakeUri)?;
    }
    Ok(outputs)
}

/// Everything a sync needs: file < environment < flags.
pub fn resolve(
    file: FileConfig,
    env: &dyn Fn(&str) -> Option<String>,
    flags: &Overrides,
) -> Result<Settings, ConfigError> {
    let outputs = resolve_outputs(&file, flags)?;
    let api = &file.helpscout;
    let pick = |flag: &Option<String>, var: &str, file: &Option<String>| {
        flag.clone().or_else(|| env(var).filter(|v| !v.is_empty())).or_else(|| file.clone())
    };
    let client_id = pick(&None, "HELPSCOUT_CLIENT_ID", &api.client_id);
    let client_secret = pick(&None, "HELPSCOUT_CLIENT_SECRET", &api.client_secret);
    let refresh_token = pick(&None, "HELPSCOUT_REFRESH_TOKEN", &api.refresh_token);
    let (Some(client_id), Some(client_secret)) = (client_id, client_secret) else {
        return Err(ConfigError::NoCredentials);
    };
    let credentials = match refresh_token {
        Some(refresh_token) => Credentials::RefreshToken { client_id, client_secret, refresh_token },
        None => Credentials::ClientCredentials { client_id, client_secret },
    };
    let base_url = parse_url(
        "helpscout.base_url",
        &pick(&flags.base_url, "HELPSCOUT_BASE_URL", &api.base_url).unwrap_or_else(|| DEFAULT_BASE_URL.into()),
        DEFAULT_BASE_URL,
    )?;
    let token_url = parse_url(
        "helpscout.token_url",
        &pick(&flags.token_url, "HELPSCOUT_TOKEN_URL", &api.token_url).unwrap_or_else(|| DEFAULT_TOKEN_URL.into()),
        DEFAULT_TOKEN_URL,
    )?;

    let mut client = ClientConfig::new(base_url, token_url, credentials);
    client.token_store = Some(TokenStore { path: outputs.token_store() });
    client.shared_schedule = Some(outputs.state_dir().join("request-schedule"));
    if let Some(ua) = &api.user_agent {
        client.user_agent = ua.clone();
    }
    if let Some(limit) = flags.rate_limit.or(api.rate_limit_per_minute) {
        if limit == 0 {
            return Err(bad("helpscout.rate_limit_per_minute", "a positive number (200, 400 or 800)", limit));
        }
        client.rate_limit = limit;
    }
    if let Some(secs) = api.rate_window_secs {
        client.rate_window = positive_secs("helpscout.rate_window_secs", secs)?;
    }
    if let Some(secs) = api.request_timeout_secs {
        client.request_timeout = positive_secs("helpscout.request_timeout_secs", secs)?;
    }
    if let Some(n) = api.max_attempts {
        client.max_attempts = n.max(1);
    }
    if let Some(n) = flags.concurrency.or(api.concurrency) {
        if n == 0 {
            return Err(bad("helpscout.concurrency", "at least 1", n));
        }
        client.concurrency = n;
    }

    let start_date = parse_start_date(
        &pick(&flags.start_date, "HELPSCOUT_START_DATE", &file.start_date).unwrap_or_else(|| DEFAULT_START_DATE.into()),
    )?;

    let selected: Vec<&'static Table> = match flags.tables.clone().or_else(|| file.sync.tables.clone()) {
        Some(names) => {
            let wanted = names.iter().map(|n| table_named(n)).collect::<Result<Vec<_>, _>>()?;
            catalog::ALL.iter().copied().filter(|t| wanted.contains(t)).collect()
        }
        None => catalog::ALL.to_vec(),
    };
    for name in file.tables.keys() {
        table_named(name)?;
    }
    let full_refresh = flags.full_refresh.clone().unwrap_or_default();
    for name in &full_refresh {
        table_named(name)?;
    }
    let mut choices = Vec::new();
    for table in selected {
        let section = file.tables.get(table.name);
        let mut method = match section.and_then(|s| s.replication.as_deref()) {
            None | Some("incremental") => Method::Incremental,
            Some("full") => Method::Full,
            Some(other) => {
                return Err(bad(&format!("tables.{}.replication", table.name), "\"incremental\" or \"full\"", other));
            }
        };
        if full_refresh.iter().any(|n| n == table.name || n == "all") {
            method = Method::Full;
        }
        let columns = section.and_then(|s| s.columns.clone());
        if let Some(cols) = &columns {
            for c in cols {
                if table.column(c).is_none() {
                    return Err(ConfigError::UnknownColumn {
                        table: table.name.into(),
                        name: c.clone(),
                        known: table.columns.iter().map(|c| c.name).collect::<Vec<_>>().join(", "),
                    });
                }
            }
        }
        choices.push(TableChoice { table, method, columns });
    }

    let sync = SyncSettings {
        client,
        start_date,
        tables: choices,
        overlap: Duration::from_secs(file.sync.overlap_secs.unwrap_or(300)),
        chunk_rows: file.sync.chunk_rows.unwrap_or(1_000).max(1),
        lock_timeout: Duration::from_secs(file.sync.lock_timeout_secs.unwrap_or(120)),
        removal_check: Duration::from_secs(file.sync.removal_check_secs.unwrap_or(0)),
    };
    Ok(Settings { outputs, sync })
}

fn bad(key: &str, expected: &'static str, value: impl std::fmt::Display) -> ConfigError {
    ConfigError::BadValue { key: key.into(), expected, value: value.to_string() }
}

fn positive_secs(key: &str, secs: f64) -> Result<Duration, ConfigError> {
    if secs.is_finite() && secs > 0.0 {
        Ok(Duration::from_secs_f64(secs))
    } else {
        Err(bad(key, "a positive number of seconds", secs))
    }
}

pub fn table_named(name: &str) -> Result<&'static Table, ConfigError> {
    catalog::by_name(name).ok_or_else(|| ConfigError::UnknownTable {
        name: name.into(),
        known: catalog::ALL.iter().map(|t| t.name).collect::<Vec<_>>().join(", "),
    })
}

fn parse_url(key: &'static str, value: &str, example: &'static str) -> Result<Url, ConfigError> {
    match Url::parse(value) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => Ok(u),
        _ => Err(ConfigError::BadUrl { key, value: value.into(), example }),
    }
}

/// `YYYY-MM-DD` (midnight UTC) or RFC 3339: the one spelling of a time users give.
pub fn parse_time(value: &str) -> Option<DateTime<Utc>> {
    let v = value.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(v) {
        return Some(t.with_timezone(&Utc));
    }
    NaiveDate::parse_from_str(v, "%Y-%m-%d").ok().map(|d| d.and_hms_opt(0, 0, 0).expect("midnight exists").and_utc())
}

fn parse_start_date(value: &str) -> Result<DateTime<Utc>, ConfigError> {
    parse_time(value).ok_or_else(|| ConfigError::BadStartDate(value.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_with(vars: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |k| vars.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string())
    }

    const CREDS: &[(&str, &str)] = &[("HELPSCOUT_CLIENT_ID", "id"), ("HELPSCOUT_CLIENT_SECRET", "secret")];

    #[test]
    fn defaults_select_every_table_incrementally() {
        let s = resolve(FileConfig::default(), &env_with(CREDS), &Overrides::default()).unwrap();
        assert_eq!(s.sync.tables.len(), 11);
        assert!(s.sync.tables.iter().all(|t| t.method == Method::Incremental));
        assert_eq!(s.sync.client.base_url.as_str(), "https://api.helpscout.net/v2");
        assert!(matches!(s.sync.client.credentials, Credentials::ClientCredentials { .. }));
        assert_eq!(s.outputs.duckdb, PathBuf::from("helpscout-data/helpscout.duckdb"));
        // Outputs alone need no credentials.
        let outputs = resolve_outputs(&FileConfig::default(), &Overrides { output_dir: Some("x".into()), ..Default::default() }).unwrap();
        assert_eq!(outputs.duckdb, PathBuf::from("x/helpscout.duckdb"));
        assert_eq!((outputs.lake.format, outputs.lake.location), (LakeFormat::Parquet, LakeLocation::Local("x/parquet".into())));
    }

    #[test]
    fn the_lake_takes_its_format_and_place_from_file_and_flags_and_parquet_stays_an_alias() {
        let file: FileConfig = toml::from_str("[output]\ndir = \"o\"\nlake = \"delta\"\n").unwrap();
        let outputs = resolve_outputs(&file, &Overrides::default()).unwrap();
        assert_eq!((outputs.lake.format, outputs.lake.location.to_string()), (LakeFormat::Delta, "o/delta".into()));
        let file: FileConfig = toml::from_str("[output]\nparquet = \"elsewhere\"\n").unwrap();
        assert_eq!(resolve_outputs(&file, &Overrides::default()).unwrap().lake.location.to_string(), "elsewhere");
        let flags = Overrides { lake: Some("delta".into()), lake_uri: Some("s3://bucket/lake".into()), ..Default::default() };
        let outputs = resolve_outputs(&file, &flags).unwrap();
        assert_eq!((outputs.lake.format, outputs.lake.location.to_string()), (LakeFormat::Delta, "s3://bucket/lake".into()));
        let bad = Overrides { lake: Some("iceberg".into()), ..Default::default() };
        assert!(resolve_outputs(&FileConfig::default(), &bad).unwrap_err().to_string().contains("\"parquet\" or \"delta\""));
        let bad = Overrides { lake_uri: Some("gs://b/p".into()), ..Default::default() };
        assert!(resolve_outputs(&FileConfig::default(), &bad).unwrap_err().to_string().contains("s3://bucket/prefix"));
    }

    #[test]
    fn missing_credentials_say_how_to_fix() {
        let err = resolve(FileConfig::default(), &env_with(&[]), &Overrides::default()).unwrap_err();
        assert!(err.to_string().contains("HELPSCOUT_CLIENT_SECRET"));
    }

    #[test]
    fn toml_file_with_tables_columns_and_replication() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(
            &path,
            r#"
start_date = "2024-01-01"
[helpscout]
client_id = "id"
client_secret = "secret"
base_url = "http://127.0.0.1:9/v2"
rate_limit_per_minute = 200
[sync]
tables = ["conversations", "users"]
[tables.conversations]
replication = "full"
columns = ["subject", "status"]
"#,
        )
        .unwrap();
        let s = resolve(read_file(&path).unwrap(), &env_with(&[]), &Overrides::default()).unwrap();
        assert_eq!(s.sync.tables.iter().map(|t| t.table.name).collect::<Vec<_>>(), ["users", "conversations"]);
        assert_eq!(s.sync.tables[1].method, Method::Full);
        assert_eq!(s.sync.client.rate_limit, 200);
        assert_eq!(s.sync.start_date.to_rfc3339(), "2024-01-01T00:00:00+00:00");
    }

    #[test]
    fn tap_config_json_is_accepted_as_is() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        std::fs::write(
            &path,
            r#"{"client_id":"id","client_secret":"s","refresh_token":"r","user_agent":"me","start_date":"2023-05-01T00:00:00Z"}"#,
        )
        .unwrap();
        let s = resolve(read_file(&path).unwrap(), &env_with(&[]), &Overrides::default()).unwrap();
        assert!(matches!(s.sync.client.credentials, Credentials::RefreshToken { .. }));
        assert_eq!(s.sync.client.user_agent, "me");
        assert_eq!(s.sync.start_date.to_rfc3339(), "2023-05-01T00:00:00+00:00");
    }

    #[test]
    fn bad_input_gets_one_clear_sentence() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "[helpscout\nclient_id = 1").unwrap();
        assert!(matches!(read_file(&path), Err(ConfigError::Syntax { .. })));
        std::fs::write(&path, "[helpscot]\nclient_id = \"x\"").unwrap();
        assert!(read_file(&path).unwrap_err().to_string().contains("helpscot"));
        assert!(matches!(read_file(&dir.path().join("missing.toml")), Err(ConfigError::Unreadable { .. })));

        let env = env_with(CREDS);
        let flags = |f: Overrides| resolve(FileConfig::default(), &env, &f).unwrap_err().to_string();
        assert!(flags(Overrides { tables: Some(vec!["tickets".into()]), ..Default::default() }).contains("Unknown table \"tickets\""));
        assert!(flags(Overrides { start_date: Some("2024-13-01".into()), ..Default::default() }).contains("not a date"));
        assert!(flags(Overrides { base_url: Some("not a url".into()), ..Default::default() }).contains("is not a URL"));
        let mut file = FileConfig::default();
        file.tables.insert("users".into(), TableSection { replication: None, columns: Some(vec!["nope".into()]) });
        let err = resolve(file, &env, &Overrides::default()).unwrap_err().to_string();
        assert!(err.contains("no column \"nope\""), "{err}");
    }
}
