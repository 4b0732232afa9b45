//! The Help Scout API client: authenticated GETs, spaced to the plan's rate limit, with jittered
//! bounded retries of what is worth retrying and request timeouts. Every attempt is recorded
//! (`RequestRecord`) for the integration log and the API-usage view; records never hold a token.
//! Paging lives beside it (`paging`): this client only sends requests.

use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use backon::BackoffBuilder;
use chrono::{DateTime, Utc};
use reqwest::StatusCode;
use serde_json::Value;
use url::Url;

use super::auth::{Auth, Credentials, TokenEndpoint, TokenStore};
use super::error::{Action, ApiError, TransientKind, host_and_port};
use super::throttle::Throttle;
use super::transport::{display_path, error_message, field_errors, transient_kind};
use crate::catalog::log::{Method, Purpose, RequestRecord};

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
    /// A file through which processes on the same outputs share the account's rate limit.
    pub shared_schedule: Option<std::path::PathBuf>,
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
            shared_schedule: None,
        }
    }
}

/// A successful response.
#[derive(Debug)]
pub struct ApiResponse {
    /// The JSON body (`Null` for an empty one, as a write's 201 or 204 has).
    pub body: Value,
    /// The server's clock (`Date` header).
    pub server_date: Option<DateTime<Utc>>,
    /// The id of the record a create made (`Resource-ID` header).
    pub resource_id: Option<i64>,
}

/// Live figures for a progress display.
#[derive(Debug, Clone, Copy)]
pub struct Usage {
    /// API requests sent so far.
    pub requests: u64,
    /// The latest remaining budget the API reported.
    pub remaining: Option<i64>,
    /// The time between two requests at the limit followed now.
    pub spacing: Duration,
}

pub struct Client {
    http: reqwest::Client,
    config: ClientConfig,
    auth: Auth,
    throttle: Throttle,
    records: Mutex<Vec<RequestRecord>>,
    /// The latest `Date` the server sent: its clock, which bookmarks and report windows follow.
    server_now: Mutex<Option<DateTime<Utc>>>,
    sent: AtomicU64,
    remaining: AtomicI64,
}

/// Why one attempt did not return a response.
enum AttemptError {
    /// A 401: the token is refreshed once before the credentials are blamed.
    Unauthorized,
    Api(ApiError),
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Client {
    pub fn new(config: ClientConfig) -> Result<std::sync::Arc<Client>, ApiError> {
        let http = reqwest::Client::builder()
            .user_agent(config.user_agent.clone())
            .timeout(config.request_timeout)
            .connect_timeout(config.request_timeout.min(Duration::from_secs(10)))
            // A moved (merged) conversation must be seen, not followed.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| ApiError::Unreachable {
                endpoint: host_and_port(config.base_url.as_str()),
                request: "setting up HTTPS".into(),
                reason: e.to_string(),
            })?;
        Ok(std::sync::Arc::new(Client {
            http,
            auth: Auth::new(config.credentials.clone(), config.token_store.clone()),
            throttle: match &config.shared_schedule {
                Some(path) => Throttle::new(config.rate_limit, config.rate_window).shared(path.clone()),
                None => Throttle::new(config.rate_limit, config.rate_window),
            },
            config,
            records: Mutex::new(Vec::new()),
            server_now: Mutex::new(None),
            sent: AtomicU64::new(0),
            remaining: AtomicI64::new(-1),
        }))
    }

    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    /// The records of every attempt since the last call.
    pub fn take_records(&self) -> Vec<RequestRecord> {
        std::mem::take(&mut *lock(&self.records))
    }

    /// The server's clock as of the latest response.
    pub fn server_now(&self) -> Option<DateTime<Utc>> {
        *lock(&self.server_now)
    }

    pub fn usage(&self) -> Usage {
        let remaining = self.remaining.load(Relaxed);
        Usage { requests: self.sent.load(Relaxed), remaining: (remaining >= 0).then_some(remaining), spacing: self.throttle.spacing() }
    }

    fn record(&self, record: RequestRecord) {
        if record.purpose == Purpose::Api {
            self.sent.fetch_add(1, Relaxed);
            if let Some(r) = record.rate_limit_remaining {
                self.remaining.store(r, Relaxed);
            }
        }
        lock(&self.records).push(record);
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
    pub async fn get(&self, path_or_url: &str) -> Result<ApiResponse, ApiError> {
        self.call(Method::Get, path_or_url, None).await
    }

    /// A write (POST, PUT, PATCH). It weighs 2 against the rate limit and is sent again only
    /// when it certainly did not arrive (a 429, a refused connection, a refused token): any
    /// other failure may have been applied, and the caller finds out before writing again
    /// (`ApiError::write_outcome`).
    pub async fn write(&self, method: Method, path: &str, body: &Value) -> Result<ApiResponse, ApiError> {
        self.call(method, path, Some(body)).await
    }

    async fn call(&self, method: Method, path_or_url: &str, body: Option<&Value>) -> Result<ApiResponse, ApiError> {
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
            let error = match self.attempt(method, &url, &shown, body, attempt).await {
                Ok(response) => return Ok(response),
                Err(AttemptError::Unauthorized) if !refreshed => {
                    refreshed = true;
                    self.auth.invalidate();
                    continue;
                }
                Err(AttemptError::Unauthorized) => {
                    return Err(ApiError::Auth(format!(
                        "the API refused a freshly issued access token for {shown} (HTTP 401). Check that the app is authorised for this account."
                    )));
                }
                Err(AttemptError::Api(e)) => e,
            };
            if error.action() != Action::Retry {
                return Err(error);
            }
            match error {
                ApiError::Throttled { wait, .. } if throttled < self.config.max_attempts.max(1) * 3 => {
                    throttled += 1;
                    tokio::time::sleep(wait).await;
                }
                ApiError::Throttled { .. } => {
                    return Err(ApiError::GaveUp { path: shown, attempts: attempt, last: TransientKind::Server(429) });
                }
                ApiError::Transient { kind, path } if method.is_write() && kind != TransientKind::Connect => {
                    return Err(ApiError::Transient { path, kind });
                }
                ApiError::Transient { kind, .. } => match backoff.next() {
                    Some(delay) => tokio::time::sleep(delay).await,
                    None if kind == TransientKind::Connect => {
                        return Err(ApiError::Unreachable {
                            endpoint: host_and_port(&url),
                            request: format!("{} {shown}", method.as_str()),
                            reason: kind.to_string(),
                        });
                    }
                    None => return Err(ApiError::GaveUp { path: shown, attempts: attempt, last: kind }),
                },
                other => return Err(other),
            }
        }
    }

    async fn attempt(&self, method: Method, url: &str, shown: &str, body: Option<&Value>, attempt: u32) -> Result<ApiResponse, AttemptError> {
        let endpoint = TokenEndpoint {
            url: self.config.token_url.to_string(),
            max_attempts: self.config.max_attempts,
            backoff_min: self.config.backoff_min,
        };
        let token = self.auth.access_token(&self.http, &endpoint, &|r| self.record(r)).await.map_err(AttemptError::Api)?;
        // A write weighs two requests against the account's limit.
        for _ in 0..if method.is_write() { 2 } else { 1 } {
            self.throttle.ready().await;
        }
        let started = Instant::now();
        let mut record = RequestRecord {
            at: Utc::now(),
            method,
            purpose: Purpose::Api,
            request: shown.to_string(),
            status: None,
            attempt,
            duration_ms: 0,
            rate_limit_remaining: None,
            error: None,
        };
        let outcome = self.send(method, url, shown, body, &token, &mut record).await;
        record.duration_ms = started.elapsed().as_millis() as u64;
        record.error = match &outcome {
            Ok(_) => None,
            Err(AttemptError::Unauthorized) => Some("Authentication failed".into()),
            Err(AttemptError::Api(ApiError::Transient { kind, .. })) => Some(kind.to_string()),
            Err(AttemptError::Api(ApiError::Throttled { .. })) => Some("Rate limit exceeded".into()),
            Err(AttemptError::Api(ApiError::Malformed { reason, .. })) => Some(reason.clone()),
            Err(AttemptError::Api(e)) => Some(e.to_string()),
        };
        self.record(record);
        outcome
    }

    /// One request and what its answer means.
    async fn send(&self, method: Method, url: &str, shown: &str, body: Option<&Value>, token: &str, record: &mut RequestRecord) -> Result<ApiResponse, AttemptError> {
        let transient = |kind| AttemptError::Api(ApiError::Transient { path: shown.to_string(), kind });
        let verb = match method {
            Method::Get => reqwest::Method::GET,
            Method::Post => reqwest::Method::POST,
            Method::Put => reqwest::Method::PUT,
            Method::Patch => reqwest::Method::PATCH,
        };
        let mut request = self.http.request(verb, url).bearer_auth(token);
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.map_err(|e| transient(transient_kind(&e)))?;
        let status = response.status();
        record.status = Some(status.as_u16());
        let headers = response.headers().clone();
        let header_i64 = |name: &str| headers.get(name)?.to_str().ok()?.trim().parse::<i64>().ok();
        record.rate_limit_remaining = header_i64("x-ratelimit-remaining-minute");
        if let Some(limit) = header_i64("x-ratelimit-limit-minute") {
            self.throttle.adopt(limit);
        }
        let server_date = headers
            .get(reqwest::header::DATE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| DateTime::parse_from_rfc2822(v).ok())
            .map(|d| d.with_timezone(&Utc));
        if let Some(date) = server_date {
            let mut now = lock(&self.server_now);
            *now = Some(now.map_or(date, |n| n.max(date)));
        }
        let resource_id = header_i64("resource-id");
        let body = response.bytes().await.map_err(|e| transient(transient_kind(&e)))?;
        let path = || shown.to_string();
        let fail = |e| Err(AttemptError::Api(e));
        match status {
            s if s.is_success() && body.is_empty() && method.is_write() => Ok(ApiResponse { body: Value::Null, server_date, resource_id }),
            s if s.is_success() => match serde_json::from_slice::<Value>(&body) {
                Ok(body) => Ok(ApiResponse { body, server_date, resource_id }),
                // A cut-off page is a transport fault in disguise: worth another try.
                Err(e) => Err(transient(TransientKind::BadBody(e.to_string()))),
            },
            StatusCode::TOO_MANY_REQUESTS => {
                let wait = header_i64("x-ratelimit-retry-after").unwrap_or(1).max(1) as u64;
                fail(ApiError::Throttled { path: path(), wait: Duration::from_secs(wait) })
            }
            StatusCode::UNAUTHORIZED => Err(AttemptError::Unauthorized),
            StatusCode::FORBIDDEN => fail(ApiError::Forbidden { path: path() }),
            StatusCode::NOT_FOUND => fail(ApiError::NotFound { path: path() }),
            StatusCode::MOVED_PERMANENTLY | StatusCode::FOUND | StatusCode::TEMPORARY_REDIRECT | StatusCode::PERMANENT_REDIRECT => {
                let location = headers.get(reqwest::header::LOCATION).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
                fail(ApiError::Moved { path: path(), location, status: status.as_u16() })
            }
            s if matches!(s.as_u16(), 500 | 502 | 503 | 504) => Err(transient(TransientKind::Server(s.as_u16()))),
            s => fail(ApiError::Rejected { path: path(), status: s.as_u16(), message: error_message(&body), fields: field_errors(&body) }),
        }
    }
}
