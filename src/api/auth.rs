//! OAuth 2.0: the grants the API offers an integration, access tokens issued once for all
//! waiting requests and renewed before they expire, and rotated refresh tokens kept in the
//! tool's own 0600 token store (never in the user's configuration).

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use chrono::Utc;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::error::{ApiError, TransientKind, host_and_port};
use super::transport::{display_path, transient_kind};
use crate::catalog::log::{Method, Purpose, RequestRecord};

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

/// Where and how tokens are requested.
pub struct TokenEndpoint {
    pub url: String,
    pub max_attempts: u32,
    pub backoff_min: Duration,
}

struct AccessToken {
    token: String,
    expires_at: Instant,
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

/// The access token of a client and how to get a new one.
pub struct Auth {
    credentials: Credentials,
    store: Option<TokenStore>,
    token: Mutex<Option<AccessToken>>,
    /// Held while a token is requested, so one request is made for all waiting callers.
    issuing: tokio::sync::Mutex<()>,
    refresh_token: Mutex<Option<String>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Auth {
    pub fn new(credentials: Credentials, store: Option<TokenStore>) -> Self {
        let refresh_token = match &credentials {
            Credentials::RefreshToken { refresh_token, .. } => {
                Some(store.as_ref().and_then(|s| s.load(refresh_token)).unwrap_or_else(|| refresh_token.clone()))
            }
            Credentials::ClientCredentials { .. } => None,
        };
        Auth {
            credentials,
            store,
            token: Mutex::new(None),
            issuing: tokio::sync::Mutex::new(()),
            refresh_token: Mutex::new(refresh_token),
        }
    }

    /// The next request gets a fresh token (the API refused this one).
    pub fn invalidate(&self) {
        *lock(&self.token) = None;
    }

    fn valid_token(&self) -> Option<String> {
        lock(&self.token).as_ref().filter(|t| t.expires_at > Instant::now()).map(|t| t.token.clone())
    }

    /// A valid access token. The common case takes no async lock: a queued async lock is handed
    /// to the next waiter on release, and a waiter that is not being polled (a page future held
    /// back by a full channel) would then hold it against every other request.
    pub async fn access_token(
        &self,
        http: &reqwest::Client,
        endpoint: &TokenEndpoint,
        record: &(dyn Fn(RequestRecord) + Sync),
    ) -> Result<String, ApiError> {
        if let Some(token) = self.valid_token() {
            return Ok(token);
        }
        let _issuing = self.issuing.lock().await;
        // Another caller may have got one while this one waited.
        if let Some(token) = self.valid_token() {
            return Ok(token);
        }
        let fresh = self.request_token(http, endpoint, record).await?;
        let token = fresh.token.clone();
        *lock(&self.token) = Some(fresh);
        Ok(token)
    }

    async fn request_token(
        &self,
        http: &reqwest::Client,
        endpoint: &TokenEndpoint,
        record: &(dyn Fn(RequestRecord) + Sync),
    ) -> Result<AccessToken, ApiError> {
        let (client_id, client_secret) = self.credentials.client();
        let refresh = lock(&self.refresh_token).clone();
        let mut form = vec![("client_id", client_id.to_string()), ("client_secret", client_secret.to_string())];
        match &refresh {
            Some(token) => {
                form.push(("grant_type", "refresh_token".into()));
                form.push(("refresh_token", token.clone()));
            }
            None => form.push(("grant_type", "client_credentials".into())),
        }
        let started = Instant::now();
        let mut attempt = RequestRecord {
            at: Utc::now(),
            method: Method::Post,
            purpose: Purpose::Token,
            request: display_path(&endpoint.url),
            status: None,
            attempt: 1,
            duration_ms: 0,
            rate_limit_remaining: None,
            error: None,
        };
        let result = self.exchange(http, endpoint, &form, &mut attempt).await;
        attempt.duration_ms = started.elapsed().as_millis() as u64;
        // Why the token was refused, without the error's own "Authentication failed: ".
        attempt.error = result.as_ref().err().map(|e| match e {
            ApiError::Auth(reason) => reason.clone(),
            other => other.to_string(),
        });
        record(attempt);
        let token = result?;
        if let (Some(new_refresh), Credentials::RefreshToken { refresh_token: configured, .. }) =
            (&token.refresh_token, &self.credentials)
        {
            // The old refresh token died with this exchange: persist the new one before using it.
            if let Some(store) = &self.store {
                store.save(configured, new_refresh).map_err(|e| ApiError::TokenStore {
                    path: store.path.display().to_string(),
                    reason: e.to_string(),
                })?;
            }
            *lock(&self.refresh_token) = Some(new_refresh.clone());
        }
        // Renew a little early so a token never expires between check and use.
        let ttl = Duration::from_secs(token.expires_in.max(1)).mul_f64(0.9);
        Ok(AccessToken { token: token.access_token, expires_at: Instant::now() + ttl })
    }

    async fn exchange(
        &self,
        http: &reqwest::Client,
        endpoint: &TokenEndpoint,
        form: &[(&str, String)],
        record: &mut RequestRecord,
    ) -> Result<TokenResponse, ApiError> {
        let url = &endpoint.url;
        let mut last = TransientKind::Connect;
        for attempt in 1..=endpoint.max_attempts.max(1) {
            record.attempt = attempt;
            let response = match http.post(url).form(form).send().await {
                Ok(r) => r,
                Err(e) => {
                    last = transient_kind(&e);
                    tokio::time::sleep(endpoint.backoff_min * attempt).await;
                    continue;
                }
            };
            let status = response.status();
            record.status = Some(status.as_u16());
            let body = response.bytes().await.unwrap_or_default();
            if status.is_success() {
                return serde_json::from_slice::<TokenResponse>(&body).map_err(|e| ApiError::Malformed {
                    path: display_path(url),
                    reason: format!("token response: {e}"),
                });
            }
            if status.is_server_error() {
                last = TransientKind::Server(status.as_u16());
                tokio::time::sleep(endpoint.backoff_min * attempt).await;
                continue;
            }
            let description = serde_json::from_slice::<Value>(&body)
                .ok()
                .and_then(|v| v.get("error_description").or_else(|| v.get("error")).and_then(Value::as_str).map(String::from))
                .unwrap_or_default();
            let fix = match self.credentials {
                Credentials::RefreshToken { .. } if description.to_lowercase().contains("refresh") => {
                    "the refresh token is no longer valid; authorise the app again and put the new refresh token in the configuration"
                }
                _ => "check client_id and client_secret (HELPSCOUT_CLIENT_ID / HELPSCOUT_CLIENT_SECRET)",
            };
            return Err(ApiError::Auth(format!(
                "the token endpoint answered HTTP {} ({}); {fix}",
                status.as_u16(),
                if description.is_empty() { "no reason given" } else { &description }
            )));
        }
        // No token, no request: the run cannot go on.
        Err(ApiError::Unreachable { endpoint: host_and_port(url), request: format!("POST {}", display_path(url)), reason: last.to_string() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_never_print_secrets() {
        let c = Credentials::RefreshToken { client_id: "id".into(), client_secret: "s3cret".into(), refresh_token: "r3fresh".into() };
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
