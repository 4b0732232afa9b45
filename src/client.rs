//! The Help Scout API client: OAuth tokens (refreshed on 401, rotated refresh tokens persisted),
//! self-throttling to the plan's rate limit, jittered bounded retries of what is worth retrying,
//! request timeouts, and paging (HAL `next` links, the reports' own paging).
//!
//! Every attempt is recorded (`RequestRecord`) for the integration log and the API-usage view;
//! records never hold a token or a secret.

use std::num::NonZeroU32;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use backon::BackoffBuilder;
use chrono::{DateTime, Utc};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use reqwest::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use url::Url;

/// What the caller must do about an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorAction {
    /// Skip this item (a page's record, a table the plan cannot read) and go on.
    Skip,
    /// Stop the table (or the run): going on would give wrong data.
    Fail,
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("Authentication failed: {0}")]
    Auth(String),
    #[error("Access denied to {path} (HTTP 403): the account's plan or the user's role does not allow it")]
    Forbidden { path: String },
    #[error("Not found: {path} (HTTP 404)")]
    NotFound { path: String },
    #[error("{path} moved to {location} (HTTP {status})")]
    Moved { path: String, location: String, status: u16 },
    #[error("The API rejected {path} (HTTP {status}): {message}")]
    Rejected { path: String, status: u16, message: String },
    #[error("{path} kept failing after {attempts} attempts; last error: {last}")]
    GaveUp { path: String, attempts: u32, last: String },
    #[error("Cannot reach the Help Scout API at {url}: {reason}. Check `base_url` / `token_url` and the network.")]
    Unreachable { url: String, reason: String },
    #[error("The API sent a malformed response for {path}: {reason}")]
    Malformed { path: String, reason: String },
    #[error("Could not save the rotated refresh token to {path}: {reason}")]
    TokenStore { path: String, reason: String },
}

impl ClientError {
    pub fn action(&self) -> ErrorAction {
        match self {
            ClientError::Forbidden { .. } | ClientError::NotFound { .. } | ClientError::Moved { .. } => {
                ErrorAction::Skip
            }
            _ => ErrorAction::Fail,
        }
    }

    /// HTTP status of the failure, where there was one.
    pub fn http_status(&self) -> Option<u16> {
        match self {
            ClientError::Forbidden { .. } => Some(403),
            ClientError::NotFound { .. } => Some(404),
            ClientError::Moved { status, .. } | ClientError::Rejected { status, .. } => Some(*status),
            ClientError::Auth(_) => Some(401),
            _ => None,
        }
    }
}

/// OAuth 2.0 grants the API offers to an integration.
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "grant", rename_all = "snake_case")]
pub enum Credentials {
    ClientCredentials { client_id: String, client_secret: String },
    RefreshToken { client_id: String, client_secret: String, refresh_token: String },
}

impl std::fmt::Debug for Credentials {
    // Secrets never reach a log line, even through `{:?}`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credentials::ClientCredentials { client_id, .. } => {
                write!(f, "ClientCredentials {{ client_id: {client_id:?}, client_secret: *** }}")
            }
            Credentials::RefreshToken { client_id, .. } => {
                write!(f, "RefreshToken {{ client_id: {client_id:?}, client_secret: ***, refresh_token: *** }}")
            }
        }
    }
}

impl Credentials {
    fn client(&self) -> (&str, &str) {
        match self {
            Credentials::ClientCredentials { client_id, client_secret }
            | Credentials::RefreshToken { client_id, client_secret, .. } => (client_id, client_secret),
        }
    }
}

/// Where the latest (rotated) refresh token is kept: the tool's own state, never the user's config.
#[derive(Debug, Clone)]
pub struct TokenStore {
    pub path: PathBuf,
}

#[derive(Serialize, Deserialize)]
struct StoredToken {
    refresh_token: String,
    /// Fingerprint of the configured token it descends from: a new token in the config wins.
    configured: u64,
}

fn fingerprint(token: &str) -> u64 {
    // FNV-1a: stable across runs and builds, unlike std's hasher.
    token.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ b as u64).wrapping_mul(0x100_0000_01b3))
}

impl TokenStore {
    fn load(&self, configured: &str) -> Option<String> {
        let text = std::fs::read_to_string(&self.path).ok()?;
        let stored: StoredToken = serde_json::from_str(&text).ok()?;
        (stored.configured == fingerprint(configured)).then_some(stored.refresh_token)
    }

    /// Atomically: write aside, flush to disk, rename over; readable by the owner only.
    fn save(&self, configured: &str, token: &str) -> std::io::Result<()> {
        let stored = StoredToken { refresh_token: token.to_string(), configured: fingerprint(configured) };
        crate::fsutil::write_atomic(&self.path, serde_json::to_string(&stored)?.as_bytes(), true)
    }
}

#[derive(Debug, Clone)]
pub struct ClientConfig {
    pub base_url: Url,
    pub token_url: Url,
    pub credentials: Credentials,
    pub token_store: Option<TokenStore>,
    pub user_agent: String,
    /// The plan's limit per window (Standard 200, Plus 400, Pro 800).
    pub rate_limit: u32,
    /// The rate-limit window (60 s on the real API).
    pub rate_window: Duration,
    pub request_timeout: Duration,
    /// Attempts per request for retryable failures (5xx, timeouts, dropped connections, bad bodies).
    pub max_attempts: u32,
    pub backoff_min: Duration,
    pub backoff_max: Duration,
    /// Requests in flight at once.
    pub concurrency: usize,
}

impl ClientConfig {
    pub fn new(base_url: Url, token_url: Url, credentials: Credentials) -> Self {
        ClientConfig {
            base_url,
            token_url,
            credentials,
            token_store: None,
            user_agent: format!("helpscout-etl/{}", env!("CARGO_PKG_VERSION")),
            rate_limit: 400,
            rate_window: Duration::from_secs(60),
            request_timeout: Duration::from_secs(30),
            max_attempts: 6,
            backoff_min: Duration::from_millis(500),
            backoff_max: Duration::from_secs(30),
            concurrency: 4,
        }
    }
}

/// One HTTP attempt, as the integration log and the API-usage view see it.
#[derive(Debug, Clone, Serialize)]
pub struct RequestRecord {
    pub at: DateTime<Utc>,
    pub method: &'static str,
    /// Path and query below the host; never a token (tokens travel in headers and bodies).
    pub request: String,
    pub status: Option<u16>,
    pub attempt: u32,
    pub duration_ms: u64,
    pub rate_limit_remaining: Option<i64>,
    pub error: Option<String>,
}

/// A successful response.
#[derive(Debug)]
pub struct ApiResponse {
    pub body: Value,
    /// The server's clock (`Date` header).
    pub server_date: Option<DateTime<Utc>>,
}

/// One page of a list.
#[derive(Debug, Default)]
pub struct Page {
    pub items: Vec<Value>,
    pub number: u64,
    pub total_pages: u64,
    /// Records in the whole list (HAL `page.totalElements`, the report's `count`).
    pub total_elements: Option<u64>,
    pub next: Option<String>,
    pub server_date: Option<DateTime<Utc>>,
}

struct AccessToken {
    token: String,
    expires_at: Instant,
}

pub struct Client {
    http: reqwest::Client,
    config: ClientConfig,
    /// The current access token, read without waiting (see `access_token`).
    token: Mutex<Option<AccessToken>>,
    /// Held while a token is requested, so one request is made for all waiting callers.
    issuing: tokio::sync::Mutex<()>,
    refresh_token: Mutex<Option<String>>,
    /// Spaces requests to the plan's limit: the configured one, or the lower one the API's
    /// `X-RateLimit-Limit-Minute` header reports.
    limiter: Mutex<Arc<DefaultDirectRateLimiter>>,
    limit: std::sync::atomic::AtomicU32,
    records: Mutex<Vec<RequestRecord>>,
    /// The latest `Date` the server sent: its clock, which bookmarks and report windows follow.
    server_now: Mutex<Option<DateTime<Utc>>>,
    /// Live figures for progress display: API requests sent, latest remaining budget.
    sent: std::sync::atomic::AtomicU64,
    remaining: std::sync::atomic::AtomicI64,
}

enum Attempt {
    Done(ApiResponse),
    Retry { wait: Option<Duration>, reason: String },
    Unauthorized,
    Fatal(ClientError),
}

impl Client {
    pub fn new(config: ClientConfig) -> Result<Arc<Client>, ClientError> {
        let http = reqwest::Client::builder()
            .user_agent(config.user_agent.clone())
            .timeout(config.request_timeout)
            .connect_timeout(config.request_timeout.min(Duration::from_secs(10)))
            // A moved (merged) conversation must be seen, not followed.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| ClientError::Unreachable { url: config.base_url.to_string(), reason: e.to_string() })?;
        let refresh_token = match &config.credentials {
            Credentials::RefreshToken { refresh_token, .. } => Some(
                config
                    .token_store
                    .as_ref()
                    .and_then(|s| s.load(refresh_token))
                    .unwrap_or_else(|| refresh_token.clone()),
            ),
            Credentials::ClientCredentials { .. } => None,
        };
        Ok(Arc::new(Client {
            http,
            limiter: Mutex::new(Arc::new(RateLimiter::direct(quota(config.rate_limit, config.rate_window)))),
            limit: std::sync::atomic::AtomicU32::new(config.rate_limit),
            config,
            token: Mutex::new(None),
            issuing: tokio::sync::Mutex::new(()),
            refresh_token: Mutex::new(refresh_token),
            records: Mutex::new(Vec::new()),
            server_now: Mutex::new(None),
            sent: Default::default(),
            remaining: std::sync::atomic::AtomicI64::new(-1),
        }))
    }

    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    /// The records of every attempt since the last call.
    pub fn take_records(&self) -> Vec<RequestRecord> {
        std::mem::take(&mut *self.records.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// The server's clock as of the latest response.
    pub fn server_now(&self) -> Option<DateTime<Utc>> {
        *self.server_now.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// (API requests sent so far, latest remaining rate budget if known).
    pub fn live(&self) -> (u64, Option<i64>) {
        use std::sync::atomic::Ordering::Relaxed;
        let remaining = self.remaining.load(Relaxed);
        (self.sent.load(Relaxed), (remaining >= 0).then_some(remaining))
    }

    fn record(&self, record: RequestRecord) {
        use std::sync::atomic::Ordering::Relaxed;
        if record.method == "GET" {
            self.sent.fetch_add(1, Relaxed);
            if let Some(r) = record.rate_limit_remaining {
                self.remaining.store(r, Relaxed);
            }
        }
        self.records.lock().unwrap_or_else(|e| e.into_inner()).push(record);
    }

    /// An absolute URL for a path below the API base (`/conversations`), or a link as given.
    pub fn url(&self, path_or_url: &str) -> String {
        if path_or_url.starts_with("http://") || path_or_url.starts_with("https://") {
            path_or_url.to_string()
        } else {
            format!("{}{}", self.config.base_url.as_str().trim_end_matches('/'), path_or_url)
        }
    }

    /// GET a JSON document, with auth, throttling and retries.
    pub async fn get(&self, path_or_url: &str) -> Result<ApiResponse, ClientError> {
        let url = self.url(path_or_url);
        let shown = display_path(&url);
        let mut backoff = backon::ExponentialBuilder::default()
            .with_min_delay(self.config.backoff_min)
            .with_max_delay(self.config.backoff_max)
            .with_max_times(self.config.max_attempts.saturating_sub(1) as usize)
            .with_jitter()
            .build();
        let mut refreshed = false;
        let mut attempt = 0u32;
        // A 429 is not a failure: wait as told, within a bound of its own.
        let mut throttled = 0u32;
        loop {
            attempt += 1;
            match self.attempt(&url, &shown, attempt).await {
                Attempt::Done(response) => return Ok(response),
                Attempt::Fatal(e) => return Err(e),
                Attempt::Unauthorized if !refreshed => {
                    refreshed = true;
                    self.invalidate_token().await;
                }
                Attempt::Unauthorized => {
                    return Err(ClientError::Auth(format!(
                        "the API refused a freshly issued access token for {shown} (HTTP 401). Check that the app is authorised for this account."
                    )));
                }
                Attempt::Retry { wait: Some(wait), reason } => {
                    throttled += 1;
                    if throttled > 20 {
                        return Err(ClientError::GaveUp { path: shown, attempts: attempt, last: reason });
                    }
                    tokio::time::sleep(wait).await;
                }
                Attempt::Retry { wait: None, reason } => match backoff.next() {
                    Some(delay) => tokio::time::sleep(delay).await,
                    None => {
                        return Err(if reason.starts_with("connection") {
                            ClientError::Unreachable { url: self.config.base_url.to_string(), reason }
                        } else {
                            ClientError::GaveUp { path: shown, attempts: attempt, last: reason }
                        });
                    }
                },
            }
        }
    }

    async fn attempt(&self, url: &str, shown: &str, attempt: u32) -> Attempt {
        let token = match self.access_token().await {
            Ok(t) => t,
            Err(e) => return Attempt::Fatal(e),
        };
        let limiter = Arc::clone(&self.limiter.lock().unwrap_or_else(|e| e.into_inner()));
        limiter.until_ready().await;
        let started = Instant::now();
        let at = Utc::now();
        let mut record = RequestRecord {
            at,
            method: "GET",
            request: shown.to_string(),
            status: None,
            attempt,
            duration_ms: 0,
            rate_limit_remaining: None,
            error: None,
        };
        let outcome = self.send(url, shown, &token, &mut record).await;
        record.duration_ms = started.elapsed().as_millis() as u64;
        if let Attempt::Retry { reason, .. } | Attempt::Fatal(ClientError::Malformed { reason, .. }) = &outcome {
            record.error = Some(reason.clone());
        }
        if let Attempt::Fatal(e) = &outcome {
            record.error.get_or_insert_with(|| e.to_string());
        }
        if let Attempt::Unauthorized = &outcome {
            record.error = Some("Authentication failed".into());
        }
        self.record(record);
        outcome
    }

    async fn send(&self, url: &str, shown: &str, token: &str, record: &mut RequestRecord) -> Attempt {
        let response = match self.http.get(url).bearer_auth(token).send().await {
            Ok(r) => r,
            Err(e) => return Attempt::Retry { wait: None, reason: transport_reason(&e) },
        };
        let status = response.status();
        record.status = Some(status.as_u16());
        let headers = response.headers().clone();
        let header_i64 = |name: &str| headers.get(name)?.to_str().ok()?.trim().parse::<i64>().ok();
        record.rate_limit_remaining = header_i64("x-ratelimit-remaining-minute");
        if let Some(limit) = header_i64("x-ratelimit-limit-minute") {
            self.adopt_limit(limit);
        }
        let server_date = headers
            .get(reqwest::header::DATE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| DateTime::parse_from_rfc2822(v).ok())
            .map(|d| d.with_timezone(&Utc));
        if let Some(date) = server_date {
            let mut now = self.server_now.lock().unwrap_or_else(|e| e.into_inner());
            *now = Some(now.map_or(date, |n| n.max(date)));
        }
        let body = match response.bytes().await {
            Ok(b) => b,
            Err(e) => return Attempt::Retry { wait: None, reason: transport_reason(&e) },
        };
        match status {
            s if s.is_success() => match serde_json::from_slice::<Value>(&body) {
                Ok(body) => Attempt::Done(ApiResponse { body, server_date }),
                // A cut-off page is a transport fault in disguise: worth another try.
                Err(e) => Attempt::Retry { wait: None, reason: format!("malformed JSON body ({e})") },
            },
            StatusCode::TOO_MANY_REQUESTS => {
                let wait = header_i64("x-ratelimit-retry-after").unwrap_or(1).max(1) as u64;
                Attempt::Retry { wait: Some(Duration::from_secs(wait)), reason: "Rate limit exceeded".into() }
            }
            StatusCode::UNAUTHORIZED => Attempt::Unauthorized,
            StatusCode::FORBIDDEN => Attempt::Fatal(ClientError::Forbidden { path: shown.to_string() }),
            StatusCode::NOT_FOUND => Attempt::Fatal(ClientError::NotFound { path: shown.to_string() }),
            StatusCode::MOVED_PERMANENTLY | StatusCode::FOUND | StatusCode::TEMPORARY_REDIRECT | StatusCode::PERMANENT_REDIRECT => {
                let location = headers
                    .get(reqwest::header::LOCATION)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_string();
                Attempt::Fatal(ClientError::Moved { path: shown.to_string(), location, status: status.as_u16() })
            }
            s if matches!(s.as_u16(), 500 | 502 | 503 | 504) => {
                Attempt::Retry { wait: None, reason: format!("HTTP {}", s.as_u16()) }
            }
            s => Attempt::Fatal(ClientError::Rejected {
                path: shown.to_string(),
                status: s.as_u16(),
                message: error_message(&body),
            }),
        }
    }

    /// The account's real limit is lower than configured: space requests by it from now on.
    fn adopt_limit(&self, limit: i64) {
        use std::sync::atomic::Ordering::Relaxed;
        let Ok(limit) = u32::try_from(limit) else { return };
        if limit == 0 || limit >= self.limit.load(Relaxed) {
            return;
        }
        self.limit.store(limit, Relaxed);
        tracing::info!(limit, "the API reports a lower rate limit than configured; following it");
        *self.limiter.lock().unwrap_or_else(|e| e.into_inner()) =
            Arc::new(RateLimiter::direct(quota(limit, self.config.rate_window)));
    }

    async fn invalidate_token(&self) {
        *self.token.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }

    fn valid_token(&self) -> Option<String> {
        let slot = self.token.lock().unwrap_or_else(|e| e.into_inner());
        slot.as_ref().filter(|t| t.expires_at > Instant::now()).map(|t| t.token.clone())
    }

    /// A valid access token. The common case takes no async lock: a queued async lock is handed
    /// to the next waiter on release, and a waiter that is not being polled (a page future held
    /// back by a full channel) would then hold it against every other request.
    async fn access_token(&self) -> Result<String, ClientError> {
        if let Some(token) = self.valid_token() {
            return Ok(token);
        }
        let _issuing = self.issuing.lock().await;
        // Another caller may have got one while this one waited.
        if let Some(token) = self.valid_token() {
            return Ok(token);
        }
        let fresh = self.request_token().await?;
        let token = fresh.token.clone();
        *self.token.lock().unwrap_or_else(|e| e.into_inner()) = Some(fresh);
        Ok(token)
    }

    async fn request_token(&self) -> Result<AccessToken, ClientError> {
        let (client_id, client_secret) = self.config.credentials.client();
        let refresh = self.refresh_token.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let mut form = vec![("client_id", client_id.to_string()), ("client_secret", client_secret.to_string())];
        match &refresh {
            Some(token) => {
                form.push(("grant_type", "refresh_token".into()));
                form.push(("refresh_token", token.clone()));
            }
            None => form.push(("grant_type", "client_credentials".into())),
        }
        let url = self.config.token_url.to_string();
        let shown = display_path(&url);
        let started = Instant::now();
        let mut record = RequestRecord {
            at: Utc::now(),
            method: "POST",
            request: shown.clone(),
            status: None,
            attempt: 1,
            duration_ms: 0,
            rate_limit_remaining: None,
            error: None,
        };
        let result = self.exchange(&url, &form, &mut record).await;
        record.duration_ms = started.elapsed().as_millis() as u64;
        if let Err(e) = &result {
            record.error = Some(e.to_string());
        }
        self.record(record);
        let token = result?;
        if let (Some(new_refresh), Credentials::RefreshToken { refresh_token: configured, .. }) =
            (&token.refresh_token, &self.config.credentials)
        {
            // The old refresh token died with this exchange: persist the new one before using it.
            if let Some(store) = &self.config.token_store {
                store.save(configured, new_refresh).map_err(|e| ClientError::TokenStore {
                    path: store.path.display().to_string(),
                    reason: e.to_string(),
                })?;
            }
            *self.refresh_token.lock().unwrap_or_else(|e| e.into_inner()) = Some(new_refresh.clone());
        }
        // Renew a little early so a token never expires between check and use.
        let ttl = Duration::from_secs(token.expires_in.max(1)).mul_f64(0.9);
        Ok(AccessToken { token: token.access_token, expires_at: Instant::now() + ttl })
    }

    async fn exchange(
        &self,
        url: &str,
        form: &[(&str, String)],
        record: &mut RequestRecord,
    ) -> Result<TokenResponse, ClientError> {
        let mut last = String::new();
        for attempt in 1..=self.config.max_attempts.max(1) {
            record.attempt = attempt;
            let response = match self.http.post(url).form(form).send().await {
                Ok(r) => r,
                Err(e) => {
                    last = transport_reason(&e);
                    tokio::time::sleep(self.config.backoff_min * attempt).await;
                    continue;
                }
            };
            let status = response.status();
            record.status = Some(status.as_u16());
            let body = response.bytes().await.unwrap_or_default();
            if status.is_success() {
                return serde_json::from_slice::<TokenResponse>(&body).map_err(|e| ClientError::Malformed {
                    path: display_path(url),
                    reason: format!("token response: {e}"),
                });
            }
            if status.is_server_error() {
                last = format!("HTTP {}", status.as_u16());
                tokio::time::sleep(self.config.backoff_min * attempt).await;
                continue;
            }
            let description = serde_json::from_slice::<Value>(&body)
                .ok()
                .and_then(|v| {
                    v.get("error_description").or_else(|| v.get("error")).and_then(Value::as_str).map(String::from)
                })
                .unwrap_or_default();
            let fix = match self.config.credentials {
                Credentials::RefreshToken { .. } if description.to_lowercase().contains("refresh") => {
                    "the refresh token is no longer valid; authorise the app again and put the new refresh token in the configuration"
                }
                _ => "check client_id and client_secret (HELPSCOUT_CLIENT_ID / HELPSCOUT_CLIENT_SECRET)",
            };
            return Err(ClientError::Auth(format!(
                "the token endpoint answered HTTP {} ({}); {fix}",
                status.as_u16(),
                if description.is_empty() { "no reason given" } else { &description }
            )));
        }
        Err(ClientError::Unreachable { url: display_path(url), reason: last })
    }

    /// One page of a list, parsed per its paging style.
    pub async fn page(&self, url: &str, list_key: &str, paging: crate::tables::Paging) -> Result<Page, ClientError> {
        let response = self.get(url).await?;
        let shown = display_path(&self.url(url));
        let mut page = match paging {
            crate::tables::Paging::Hal => parse_hal(response.body, list_key, &shown)?,
            crate::tables::Paging::Report => parse_report(response.body, list_key, url, &shown)?,
        };
        page.server_date = response.server_date;
        Ok(page)
    }

    /// Every page of a list, in order, `concurrency` requests at a time once the page count is
    /// known; `on_page` sees each page as it arrives. Returns the server date of the first page.
    pub async fn list_pages<S: PageSink + Send>(
        self: &Arc<Self>,
        first_url: &str,
        list_key: &'static str,
        paging: crate::tables::Paging,
        sink: &mut S,
    ) -> Result<Option<DateTime<Utc>>, ClientError> {
        let first = self.page(first_url, list_key, paging).await?;
        let server_date = first.server_date;
        let total_pages = first.total_pages;
        let first_number = first.number.max(1);
        let mut next = first.next.clone();
        let empty = first.items.is_empty();
        sink.accept(first).await?;
        if empty {
            return Ok(server_date);
        }
        // Pages 2..=total are known up front: fetch them concurrently, in order.
        if let Some(template) = next.clone()
            && total_pages > first_number + 1
            && self.config.concurrency > 1
        {
            // Each page is its own task: a sink that holds the listing back must not stop the
            // requests already under way from being driven (they may hold a shared resource).
            let mut numbers = first_number + 1..=total_pages;
            let spawn = |n: u64| {
                let client = Arc::clone(self);
                let url = with_page(&template, n);
                InFlight(tokio::spawn(async move { client.page(&url, list_key, paging).await }))
            };
            let mut in_flight: std::collections::VecDeque<InFlight> =
                numbers.by_ref().take(self.config.concurrency).map(spawn).collect();
            next = None;
            while let Some(mut task) = in_flight.pop_front() {
                let page = (&mut task.0).await.map_err(|e| ClientError::Malformed {
                    path: display_path(&self.url(first_url)),
                    reason: format!("a page request stopped: {e}"),
                })??;
                in_flight.extend(numbers.next().map(spawn));
                let done = page.items.is_empty();
                next = page.next.clone();
                sink.accept(page).await?;
                if done {
                    return Ok(server_date);
                }
            }
        }
        // Then follow `next` links as given (the list may have grown while it was paged).
        while let Some(url) = next.take() {
            let page = self.page(&url, list_key, paging).await?;
            let done = page.items.is_empty() || (page.total_pages > 0 && page.number >= page.total_pages);
            next = if done { None } else { page.next.clone() };
            sink.accept(page).await?;
        }
        Ok(server_date)
    }
}

/// A page request running as its own task; stopped when the listing no longer wants it.
struct InFlight(tokio::task::JoinHandle<Result<Page, ClientError>>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Where listed pages go.
pub trait PageSink {
    fn accept(&mut self, page: Page) -> impl std::future::Future<Output = Result<(), ClientError>> + Send;
}

/// Collects every record.
impl PageSink for Vec<Value> {
    fn accept(&mut self, page: Page) -> impl std::future::Future<Output = Result<(), ClientError>> + Send {
        self.extend(page.items);
        std::future::ready(Ok(()))
    }
}

/// Hands pages to a consumer; a full channel holds the listing back, so pages are never
/// buffered beyond it.
impl PageSink for tokio::sync::mpsc::Sender<Result<Page, ClientError>> {
    fn accept(&mut self, page: Page) -> impl std::future::Future<Output = Result<(), ClientError>> + Send {
        async move {
            // The receiver only goes away when the table already failed.
            let _ = self.send(Ok(page)).await;
            Ok(())
        }
    }
}

/// Keeps only the records' ids (a scan for removals over a large list).
#[derive(Debug, Default)]
pub struct IdCollector(pub std::collections::HashSet<i64>);

impl PageSink for IdCollector {
    fn accept(&mut self, page: Page) -> impl std::future::Future<Output = Result<(), ClientError>> + Send {
        self.0.extend(page.items.iter().filter_map(|r| r.get("id").and_then(Value::as_i64)));
        std::future::ready(Ok(()))
    }
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    #[serde(default = "default_expiry")]
    expires_in: u64,
    refresh_token: Option<String>,
}

fn default_expiry() -> u64 {
    7200
}

/// Spacing requests by window/(limit−1) never puts more than `limit` in any window.
fn spacing(limit: u32, window: Duration) -> Duration {
    (window / limit.saturating_sub(1).max(1)).max(Duration::from_micros(1))
}

fn quota(limit: u32, window: Duration) -> Quota {
    Quota::with_period(spacing(limit, window)).expect("a non-zero period").allow_burst(NonZeroU32::MIN)
}

fn transport_reason(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "request timed out".into()
    } else if e.is_connect() {
        "connection refused or failed".into()
    } else if e.is_body() || e.is_decode() {
        "connection dropped while reading the response".into()
    } else {
        format!("connection error ({e})")
    }
}

fn error_message(body: &[u8]) -> String {
    let Ok(v) = serde_json::from_slice::<Value>(body) else {
        return String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned();
    };
    let mut message = v.get("message").and_then(Value::as_str).unwrap_or("").to_string();
    if let Some(errors) = v.pointer("/_embedded/errors").and_then(Value::as_array) {
        for e in errors {
            let path = e.get("path").and_then(Value::as_str).unwrap_or("");
            let msg = e.get("message").and_then(Value::as_str).unwrap_or("");
            message.push_str(&format!("; {path}: {msg}"));
        }
    }
    message
}

/// Path and query of a URL (what the log shows of a request).
pub fn display_path(url: &str) -> String {
    match Url::parse(url) {
        Ok(u) => match u.query() {
            Some(q) => format!("{}?{}", u.path(), q),
            None => u.path().to_string(),
        },
        Err(_) => url.to_string(),
    }
}

/// The same URL with its `page` parameter set to `n` (links keep their other parameters).
pub fn with_page(url: &str, n: u64) -> String {
    let Ok(mut u) = Url::parse(url) else { return url.to_string() };
    let pairs: Vec<(String, String)> = u.query_pairs().filter(|(k, _)| k != "page").map(|(k, v)| (k.into(), v.into())).collect();
    {
        let mut q = u.query_pairs_mut();
        q.clear();
        for (k, v) in &pairs {
            q.append_pair(k, v);
        }
        q.append_pair("page", &n.to_string());
    }
    u.to_string()
}

fn malformed(path: &str, reason: impl Into<String>) -> ClientError {
    ClientError::Malformed { path: path.to_string(), reason: reason.into() }
}

/// HAL+JSON page. An empty result omits `_embedded`.
pub fn parse_hal(body: Value, list_key: &str, shown: &str) -> Result<Page, ClientError> {
    let Value::Object(mut obj) = body else { return Err(malformed(shown, "not a JSON object")) };
    let items = match obj.get_mut("_embedded").and_then(|e| e.get_mut(list_key)).map(Value::take) {
        Some(Value::Array(items)) => items,
        Some(_) => return Err(malformed(shown, format!("`_embedded.{list_key}` is not a list"))),
        None if obj.contains_key("_embedded") && obj["_embedded"].as_object().is_some_and(|e| !e.is_empty()) => {
            return Err(malformed(shown, format!("no `_embedded.{list_key}` list")));
        }
        None => Vec::new(),
    };
    let page = obj.get("page");
    let number = page.and_then(|p| p.get("number")).and_then(Value::as_u64).unwrap_or(0);
    let total_pages = page.and_then(|p| p.get("totalPages")).and_then(Value::as_u64).unwrap_or(0);
    let total_elements = page.and_then(|p| p.get("totalElements")).and_then(Value::as_u64);
    let next = obj
        .get("_links")
        .and_then(|l| l.get("next"))
        .and_then(|n| n.get("href"))
        .and_then(Value::as_str)
        .map(String::from);
    Ok(Page { items, number, total_pages, total_elements, next, server_date: None })
}

/// The reports' paging: `{results, page, pages}`; the next page is `page + 1` while `page < pages`.
pub fn parse_report(body: Value, list_key: &str, url: &str, shown: &str) -> Result<Page, ClientError> {
    let Value::Object(mut obj) = body else { return Err(malformed(shown, "not a JSON object")) };
    let items = match obj.get_mut(list_key).map(Value::take) {
        Some(Value::Array(items)) => items,
        None | Some(Value::Null) => Vec::new(),
        Some(_) => return Err(malformed(shown, format!("`{list_key}` is not a list"))),
    };
    let number = obj.get("page").and_then(Value::as_u64).unwrap_or(1);
    let total_pages = obj.get("pages").and_then(Value::as_u64).unwrap_or(number);
    let total_elements = obj.get("count").and_then(Value::as_u64);
    let next = (number < total_pages && !items.is_empty()).then(|| with_page(url, number + 1));
    Ok(Page { items, number, total_pages, total_elements, next, server_date: None })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn hal_pages_parse_with_and_without_embedded() {
        let body = json!({"_embedded": {"users": [{"id": 1}]}, "page": {"number": 1, "totalPages": 2},
            "_links": {"next": {"href": "http://h/v2/users?page=2"}}});
        let page = parse_hal(body, "users", "/v2/users").unwrap();
        assert_eq!(page.items.len(), 1);
        assert_eq!(page.next.as_deref(), Some("http://h/v2/users?page=2"));
        let empty = parse_hal(json!({"page": {"number": 0, "totalPages": 0}}), "users", "/v2/users").unwrap();
        assert!(empty.items.is_empty() && empty.next.is_none());
        assert!(parse_hal(json!({"_embedded": {"users": 3}}), "users", "x").is_err());
        assert!(parse_hal(json!({"_embedded": {"teams": []}}), "users", "x").is_err());
    }

    #[test]
    fn report_pages_follow_page_and_pages() {
        let url = "http://h/v2/reports/happiness/ratings?start=2024-01-01T00:00:00Z&end=2024-02-01T00:00:00Z";
        let page = parse_report(json!({"results": [{"id": 1}], "page": 1, "pages": 2}), "results", url, "r").unwrap();
        let next = page.next.unwrap();
        assert!(next.contains("start=2024-01-01T00%3A00%3A00Z") && next.ends_with("page=2"), "{next}");
        let last = parse_report(json!({"results": [{"id": 1}], "page": 2, "pages": 2}), "results", url, "r").unwrap();
        assert!(last.next.is_none());
    }

    #[test]
    fn page_links_keep_their_parameters() {
        let u = with_page("http://h/v2/conversations?status=all&page=2&embed=threads", 5);
        assert_eq!(u, "http://h/v2/conversations?status=all&embed=threads&page=5");
        assert_eq!(display_path(&u), "/v2/conversations?status=all&embed=threads&page=5");
    }

    #[test]
    fn spacing_never_lets_more_than_the_limit_start_in_a_window() {
        for (limit, window) in [(400, Duration::from_secs(60)), (200, Duration::from_secs(60)), (12, Duration::from_secs(1)), (2, Duration::from_millis(10))] {
            let gap = spacing(limit, window);
            // Starts at 0, gap, 2·gap, …: the (limit+1)-th start falls outside any window of length `window`.
            // Strictly: a window/limit spacing would fit limit+1 starts in a closed window.
            assert!(gap * limit > window, "{limit}/{window:?}: {} starts fit in a window", limit + 1);
            // …and the limit itself is reachable (no needless slowness: within one gap of the window).
            assert!(gap * (limit - 1) <= window, "{limit}/{window:?}: slower than the plan allows");
        }
        assert_eq!(spacing(1, Duration::from_secs(1)), Duration::from_secs(1));
        assert_eq!(spacing(0, Duration::ZERO), Duration::from_micros(1));
    }

    #[test]
    fn credentials_never_print_secrets() {
        let c = Credentials::RefreshToken {
            client_id: "id".into(),
            client_secret: "s3cret".into(),
            refresh_token: "r3fresh".into(),
        };
        let shown = format!("{c:?}");
        assert!(!shown.contains("s3cret") && !shown.contains("r3fresh"), "{shown}");
    }

    #[test]
    fn token_store_prefers_the_newest_token_of_the_configured_lineage() {
        let dir = tempfile::tempdir().unwrap();
        let store = TokenStore { path: dir.path().join("token.json") };
        assert_eq!(store.load("configured"), None);
        store.save("configured", "rotated-1").unwrap();
        assert_eq!(store.load("configured").as_deref(), Some("rotated-1"));
        // A new token put in the configuration supersedes the stored lineage.
        assert_eq!(store.load("new-from-user"), None);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&store.path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
