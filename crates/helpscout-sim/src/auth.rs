//! OAuth 2.0 as the API does it: client credentials, authorization code and refresh grants,
//! rotating refresh tokens, access tokens that expire on the simulated clock.

use std::collections::{HashMap, HashSet};

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};

/// An OAuth error answer: HTTP status and JSON body.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("token request rejected ({status}): {body}")]
pub struct TokenError {
    pub status: u16,
    pub body: Value,
}

fn err(status: u16, error: &str, description: Option<&str>) -> TokenError {
    let mut body = json!({"error": error});
    if let Some(d) = description {
        body["error_description"] = json!(d);
    }
    TokenError { status, body }
}

#[derive(Debug)]
pub struct Auth {
    client_id: String,
    client_secret: String,
    ttl_secs: u64,
    /// access token -> expiry (ms on the simulated clock)
    access: HashMap<String, i64>,
    refresh: HashSet<String>,
    used_codes: HashSet<String>,
    rng: ChaCha8Rng,
}

impl Auth {
    pub fn new(
        client_id: &str,
        client_secret: &str,
        refresh_token: &str,
        ttl_secs: u64,
        seed: u64,
    ) -> Auth {
        Auth {
            client_id: client_id.to_string(),
            client_secret: client_secret.to_string(),
            ttl_secs,
            access: HashMap::new(),
            refresh: [refresh_token.to_string()].into_iter().collect(),
            used_codes: HashSet::new(),
            rng: ChaCha8Rng::seed_from_u64(seed ^ 0x5EED_70CE),
        }
    }

    fn token(&mut self, prefix: &str) -> String {
        let a: u64 = self.rng.random();
        let b: u64 = self.rng.random();
        format!("{prefix}{a:016x}{b:016x}")
    }

    fn issue(&mut self, now_ms: i64, with_refresh: bool) -> Value {
        let at = self.token("sim-at-");
        self.access
            .insert(at.clone(), now_ms + self.ttl_secs as i64 * 1000);
        let mut v =
            json!({"token_type": "bearer", "access_token": at, "expires_in": self.ttl_secs});
        if with_refresh {
            let rt = self.token("sim-rt-");
            self.refresh.insert(rt.clone());
            v["refresh_token"] = json!(rt);
        }
        v
    }

    /// Handles `POST /v2/oauth2/token` with its merged parameters.
    pub fn token_request(
        &mut self,
        p: &HashMap<String, String>,
        now_ms: i64,
    ) -> Result<Value, TokenError> {
        let grant = p.get("grant_type").map(String::as_str).unwrap_or("");
        if grant.is_empty() {
            return Err(err(400, "invalid_request", Some("Missing grant_type")));
        }
        if !matches!(
            grant,
            "client_credentials" | "refresh_token" | "authorization_code"
        ) {
            return Err(err(400, "unsupported_grant_type", None));
        }
        let id_ok = p.get("client_id").is_some_and(|v| *v == self.client_id);
        let secret_ok = p
            .get("client_secret")
            .is_some_and(|v| *v == self.client_secret);
        if !(id_ok && secret_ok) {
            return Err(err(401, "invalid_client", None));
        }
        match grant {
            "client_credentials" => Ok(self.issue(now_ms, false)),
            "authorization_code" => {
                let code = p.get("code").cloned().unwrap_or_default();
                if code.is_empty() || !self.used_codes.insert(code) {
                    return Err(err(
                        400,
                        "invalid_grant",
                        Some("Invalid authorization code"),
                    ));
                }
                Ok(self.issue(now_ms, true))
            }
            _ => {
                let rt = p.get("refresh_token").cloned().unwrap_or_default();
                if !self.refresh.remove(&rt) {
                    return Err(err(400, "invalid_request", Some("Invalid refresh_token")));
                }
                Ok(self.issue(now_ms, true))
            }
        }
    }

    /// True when the bearer token is known and not expired on the simulated clock.
    pub fn check(&self, token: &str, now_ms: i64) -> bool {
        self.access.get(token).is_some_and(|exp| now_ms < *exp)
    }

    pub fn revoke(&mut self, token: &str) {
        self.access.remove(token);
    }

    /// Every access token issued so far becomes invalid.
    pub fn expire_all(&mut self) {
        self.access.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(kv: &[(&str, &str)]) -> HashMap<String, String> {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn client_credentials_and_expiry() {
        let mut a = Auth::new("id", "secret", "rt0", 100, 1);
        let v = a
            .token_request(
                &params(&[
                    ("grant_type", "client_credentials"),
                    ("client_id", "id"),
                    ("client_secret", "secret"),
                ]),
                0,
            )
            .unwrap();
        assert!(v.get("refresh_token").is_none());
        assert_eq!(v["expires_in"], 100);
        let t = v["access_token"].as_str().unwrap();
        assert!(a.check(t, 99_999));
        assert!(!a.check(t, 100_000));
        let e = a
            .token_request(
                &params(&[
                    ("grant_type", "client_credentials"),
                    ("client_id", "id"),
                    ("client_secret", "bad"),
                ]),
                0,
            )
            .unwrap_err();
        assert_eq!(e.status, 401);
        assert_eq!(e.body, json!({"error": "invalid_client"}));
    }

    #[test]
    fn refresh_tokens_rotate() {
        let mut a = Auth::new("id", "secret", "rt0", 100, 1);
        let p = |rt: &str| {
            params(&[
                ("grant_type", "refresh_token"),
                ("client_id", "id"),
                ("client_secret", "secret"),
                ("refresh_token", rt),
            ])
        };
        let v = a.token_request(&p("rt0"), 0).unwrap();
        let rt1 = v["refresh_token"].as_str().unwrap().to_string();
        assert_ne!(rt1, "rt0");
        let e = a.token_request(&p("rt0"), 0).unwrap_err();
        assert_eq!(e.status, 400);
        assert_eq!(
            e.body,
            json!({"error": "invalid_request", "error_description": "Invalid refresh_token"})
        );
        assert!(a.token_request(&p(&rt1), 0).is_ok());
        assert!(a.token_request(&p(&rt1), 0).is_err());
    }

    #[test]
    fn expire_all_invalidates() {
        let mut a = Auth::new("id", "secret", "rt0", 100, 1);
        let v = a
            .token_request(
                &params(&[
                    ("grant_type", "client_credentials"),
                    ("client_id", "id"),
                    ("client_secret", "secret"),
                ]),
                0,
            )
            .unwrap();
        let t = v["access_token"].as_str().unwrap().to_string();
        a.expire_all();
        assert!(!a.check(&t, 1));
    }
}
