//! `helpscout-floor`: the benchmark's floor.
//!
//! The least work any client could do to fetch what a `helpscout-etl sync` fetched: it replays
//! the sync's own requests (the simulator's journal, `GET /_admin/requests`) against the same
//! simulator, N at a time, parses each body into a `serde_json::Value` and throws it away. No
//! paging decisions, no rows, no storage. `benches/peer/compare.py` runs it right after our sync
//! and reports our wall and CPU time against it: what lies between the two is our own work.
//!
//! ```text
//! helpscout-floor --base http://127.0.0.1:PORT --requests requests.json --concurrency 4 \
//!     --client-id demo-client-id --client-secret demo-client-secret
//! ```
//!
//! One client-credentials token from `BASE/v2/oauth2/token`, then a GET with `Authorization:
//! Bearer` for every path of the file, in order, N in flight at a time (each request a task of
//! its own, so parsing uses every core, as our sync's does). A 429 waits its
//! `X-RateLimit-Retry-After` (or `Retry-After`) and is retried; any other answer that is not a
//! 2xx, a body that is not JSON or a failed connection ends the run with one sentence on stderr
//! and exit status 1 (2 for a usage error). Redirects are not followed: the journal already
//! holds every request the sync made. Success prints one JSON line on stdout:
//! `{"requests":…,"bytes":…,"wall_s":…,"concurrency":…,"rate_limited_429":…}`.
//! Only loopback servers are accepted: it is a benchmark tool, not an API client.

use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use reqwest::{Client, StatusCode, Url};
use serde_json::{Value, json};

const USAGE: &str = "usage: helpscout-floor --base http://127.0.0.1:PORT --requests FILE \
[--concurrency N] --client-id ID --client-secret SECRET

  --base URL            the simulator's origin (a loopback address, no path)
  --requests FILE       a JSON array of path-and-query strings (GET /_admin/requests)
  --concurrency N       requests in flight at once (default 4, as helpscout-etl)
  --client-id ID        OAuth client id (client-credentials grant)
  --client-secret S     OAuth client secret";

/// A request that keeps answering 429 after this many waits ends the run (the benchmark lifts
/// the rate limit, so even one is a sign that something is off).
const MAX_429_WAITS: u32 = 20;
/// Per request; a simulator answers in milliseconds.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);

struct Args {
    /// `scheme://host:port`, without a trailing slash.
    origin: String,
    requests: PathBuf,
    concurrency: usize,
    client_id: String,
    client_secret: String,
}

enum Failure {
    Usage(String),
    Run(String),
}

fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(Some(a)) => a,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(m) => return fail(Failure::Usage(m)),
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            return fail(Failure::Run(format!(
                "cannot start the async runtime: {e}."
            )));
        }
    };
    match runtime.block_on(run(args)) {
        Ok(summary) => {
            println!("{summary}");
            ExitCode::SUCCESS
        }
        Err(m) => fail(Failure::Run(m)),
    }
}

fn fail(f: Failure) -> ExitCode {
    match f {
        Failure::Usage(m) => {
            eprintln!("helpscout-floor: {m} (see --help)");
            ExitCode::from(2)
        }
        Failure::Run(m) => {
            eprintln!("helpscout-floor: {m}");
            ExitCode::from(1)
        }
    }
}

/// `Ok(None)` for `--help`.
fn parse_args(argv: impl Iterator<Item = String>) -> Result<Option<Args>, String> {
    let (mut base, mut requests, mut concurrency, mut id, mut secret) =
        (None, None, None, None, None);
    let mut argv = argv.peekable();
    while let Some(arg) = argv.next() {
        if arg == "-h" || arg == "--help" {
            return Ok(None);
        }
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
            _ => (arg.clone(), None),
        };
        let slot = match flag.as_str() {
            "--base" => &mut base,
            "--requests" => &mut requests,
            "--concurrency" => &mut concurrency,
            "--client-id" => &mut id,
            "--client-secret" => &mut secret,
            _ => return Err(format!("unknown argument {arg:?}")),
        };
        let value = match inline.or_else(|| argv.next()) {
            Some(v) => v,
            None => return Err(format!("{flag} needs a value")),
        };
        *slot = Some(value);
    }
    let need = |v: Option<String>, flag: &str| v.ok_or_else(|| format!("{flag} is required"));
    let origin = loopback_origin(&need(base, "--base")?)?;
    let concurrency = match concurrency {
        None => 4,
        Some(s) => match s.parse::<usize>() {
            Ok(n) if n >= 1 => n,
            _ => {
                return Err(format!(
                    "--concurrency must be a whole number of at least 1, not {s:?}"
                ));
            }
        },
    };
    Ok(Some(Args {
        origin,
        requests: PathBuf::from(need(requests, "--requests")?),
        concurrency,
        client_id: need(id, "--client-id")?,
        client_secret: need(secret, "--client-secret")?,
    }))
}

/// The origin of `base` if it is an http(s) URL of a loopback address without a path.
fn loopback_origin(base: &str) -> Result<String, String> {
    let url = Url::parse(base).map_err(|e| format!("--base {base:?} is not a URL ({e})"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("--base {base:?} must be an http or https URL"));
    }
    let host = url.host_str().unwrap_or("");
    let ip = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>();
    if !ip.is_ok_and(|ip| ip.is_loopback()) {
        return Err(format!(
            "--base {base:?} is not a loopback address: the floor client only talks to a local simulator (127.0.0.1 or [::1])"
        ));
    }
    if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
        return Err(format!(
            "--base {base:?} must be an origin without a path, since the request paths already start with /v2"
        ));
    }
    Ok(url.as_str().trim_end_matches('/').to_string())
}

fn read_requests(path: &PathBuf) -> Result<Vec<String>, String> {
    let shown = path.display();
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {shown}: {e}."))?;
    let paths: Vec<String> = serde_json::from_slice(&bytes)
        .map_err(|e| format!("{shown} is not a JSON array of strings ({e})."))?;
    if let Some((i, p)) = paths.iter().enumerate().find(|(_, p)| !p.starts_with('/')) {
        return Err(format!(
            "entry {i} of {shown} ({p:?}) is not a path starting with \"/\"."
        ));
    }
    Ok(paths)
}

async fn run(args: Args) -> Result<Value, String> {
    let paths = read_requests(&args.requests)?;
    let started = Instant::now();
    let client = Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(REQUEST_TIMEOUT)
        .user_agent(concat!("helpscout-floor/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| format!("cannot build the HTTP client: {e}."))?;
    let token: Arc<str> = fetch_token(&client, &args).await?.into();

    let mut answers = futures::stream::iter(paths.into_iter().map(|p| {
        let url = format!("{}{p}", args.origin);
        tokio::spawn(fetch(client.clone(), url, token.clone()))
    }))
    .buffer_unordered(args.concurrency);
    let (mut requests, mut bytes, mut waits) = (0u64, 0u64, 0u64);
    while let Some(joined) = answers.next().await {
        let done = joined.map_err(|e| format!("a request task failed: {e}."))??;
        requests += 1;
        bytes += done.bytes;
        waits += u64::from(done.waits);
    }
    Ok(json!({
        "requests": requests,
        "bytes": bytes,
        "wall_s": (started.elapsed().as_secs_f64() * 1000.0).round() / 1000.0,
        "concurrency": args.concurrency,
        "token_requests": 1,
        "rate_limited_429": waits,
    }))
}

async fn fetch_token(client: &Client, args: &Args) -> Result<String, String> {
    let url = format!("{}/v2/oauth2/token", args.origin);
    let resp = client
        .post(&url)
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", args.client_id.as_str()),
            ("client_secret", args.client_secret.as_str()),
        ])
        .send()
        .await
        .map_err(|e| format!("cannot reach the token endpoint {url}: {}.", why(&e)))?;
    let status = resp.status();
    let body = resp.bytes().await.unwrap_or_default();
    if !status.is_success() {
        let text = String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned();
        return Err(format!(
            "the token endpoint {url} answered {status}: {text}"
        ));
    }
    serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| v["access_token"].as_str().map(str::to_string))
        .ok_or_else(|| format!("the token endpoint {url} answered without an access_token."))
}

struct Fetched {
    bytes: u64,
    waits: u32,
}

async fn fetch(client: Client, url: String, token: Arc<str>) -> Result<Fetched, String> {
    let mut waits = 0;
    loop {
        let resp = client
            .get(&url)
            .bearer_auth(&*token)
            .send()
            .await
            .map_err(|e| format!("GET {url} failed: {}.", why(&e)))?;
        let status = resp.status();
        if status == StatusCode::TOO_MANY_REQUESTS {
            if waits == MAX_429_WAITS {
                return Err(format!(
                    "GET {url} was still rate-limited (429) after {MAX_429_WAITS} waits."
                ));
            }
            waits += 1;
            tokio::time::sleep(Duration::from_secs(retry_after(resp.headers()))).await;
            continue;
        }
        if !status.is_success() {
            return Err(format!("GET {url} answered {status}."));
        }
        let body = resp
            .bytes()
            .await
            .map_err(|e| format!("reading the body of GET {url} failed: {}.", why(&e)))?;
        let value: Value = serde_json::from_slice(&body)
            .map_err(|e| format!("the body of GET {url} is not JSON ({e})."))?;
        // Parsed, then thrown away; black_box keeps the parse from being optimised out.
        drop(std::hint::black_box(value));
        return Ok(Fetched {
            bytes: body.len() as u64,
            waits,
        });
    }
}

/// The innermost cause of a transport error ("Connection refused", "operation timed out"):
/// reqwest's own message only names the URL.
fn why(e: &reqwest::Error) -> String {
    let mut cause: &dyn std::error::Error = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

/// Seconds to wait after a 429: Help Scout's `X-RateLimit-Retry-After`, else `Retry-After`,
/// else 1.
fn retry_after(headers: &reqwest::header::HeaderMap) -> u64 {
    ["x-ratelimit-retry-after", "retry-after"]
        .iter()
        .find_map(|h| headers.get(*h)?.to_str().ok()?.trim().parse::<u64>().ok())
        .unwrap_or(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Option<Args>, String> {
        parse_args(args.iter().map(|s| s.to_string()))
    }

    #[test]
    fn only_loopback_origins() {
        assert_eq!(
            loopback_origin("http://127.0.0.1:8080/").unwrap(),
            "http://127.0.0.1:8080"
        );
        assert_eq!(loopback_origin("http://[::1]:9").unwrap(), "http://[::1]:9");
        assert!(loopback_origin("http://127.0.0.2:1").is_ok());
        assert!(
            loopback_origin("https://api.helpscout.net")
                .unwrap_err()
                .contains("not a loopback")
        );
        assert!(loopback_origin("http://localhost:1").is_err());
        assert!(loopback_origin("http://10.0.0.1:1").is_err());
        assert!(
            loopback_origin("http://127.0.0.1:1/v2")
                .unwrap_err()
                .contains("without a path")
        );
        assert!(loopback_origin("ftp://127.0.0.1/").is_err());
    }

    #[test]
    fn arguments() {
        let a = parse(&[
            "--base=http://127.0.0.1:5",
            "--requests",
            "r.json",
            "--client-id",
            "i",
            "--client-secret",
            "s",
        ])
        .unwrap()
        .unwrap();
        assert_eq!(
            (a.origin.as_str(), a.concurrency),
            ("http://127.0.0.1:5", 4)
        );
        assert!(parse(&["--help"]).unwrap().is_none());
        let e = |args: &[&str]| parse(args).err().unwrap();
        assert!(
            e(&[
                "--base",
                "http://127.0.0.1:5",
                "--requests",
                "r",
                "--client-id",
                "i"
            ])
            .contains("--client-secret")
        );
        assert!(e(&["--bogus"]).contains("unknown"));
        assert!(e(&["--base"]).contains("needs a value"));
        assert!(e(&["--base", "http://127.0.0.1:5", "--concurrency", "0"]).contains("at least 1"));
    }

    #[test]
    fn retry_after_headers() {
        let mut h = reqwest::header::HeaderMap::new();
        assert_eq!(retry_after(&h), 1);
        h.insert("retry-after", "3".parse().unwrap());
        assert_eq!(retry_after(&h), 3);
        h.insert("x-ratelimit-retry-after", "7".parse().unwrap());
        assert_eq!(retry_after(&h), 7);
    }
}
