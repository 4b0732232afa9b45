//! Signing in and staying signed in: sessions in memory behind an HttpOnly, SameSite=Strict
//! cookie (Secure behind HTTPS), a CSRF token per session carried by every form, and sign-in
//! attempts throttled per user name and per client address.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::HeaderMap;

pub const SESSION_COOKIE: &str = "hs_session";
/// The sign-in form's own token (double-submitted: cookie and form field).
pub const LOGIN_COOKIE: &str = "hs_login";
/// A session ends after this long without a request.
const IDLE: Duration = Duration::from_secs(12 * 3600);

/// Failures allowed before attempts are refused for a while.
const FREE_FAILURES: u32 = 5;
/// The longest wait a run of failures earns.
const LONGEST_WAIT: Duration = Duration::from_secs(15 * 60);

/// A random token, hex.
pub fn token() -> String {
    rand::random::<[u8; 32]>().iter().map(|b| format!("{b:02x}")).collect()
}

/// Equal, in time that does not depend on where they differ.
pub fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The value of a cookie of the request.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

/// A `Set-Cookie` value: HttpOnly, SameSite=Strict, whole site; Secure when served over HTTPS.
pub fn set_cookie(name: &str, value: &str, secure: bool, max_age: Option<Duration>) -> String {
    let mut c = format!("{name}={value}; HttpOnly; SameSite=Strict; Path=/");
    if secure {
        c.push_str("; Secure");
    }
    if let Some(age) = max_age {
        c.push_str(&format!("; Max-Age={}", age.as_secs()));
    }
    c
}

/// Whether the request reached us over HTTPS (directly behind a proxy that says so).
pub fn over_https(headers: &HeaderMap) -> bool {
    headers.get("x-forwarded-proto").and_then(|v| v.to_str().ok()).is_some_and(|p| p.eq_ignore_ascii_case("https"))
}

#[derive(Debug, Clone)]
pub struct Session {
    pub user: String,
    pub csrf: String,
    last_seen: Instant,
}

#[derive(Default)]
pub struct Sessions(Mutex<HashMap<String, Session>>);

impl Sessions {
    /// A new session for `user`; returns its cookie token.
    pub fn start(&self, user: &str) -> String {
        let id = token();
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        map.retain(|_, s| s.last_seen.elapsed() < IDLE);
        map.insert(id.clone(), Session { user: user.to_string(), csrf: token(), last_seen: Instant::now() });
        id
    }

    /// The live session of a token, its idle time restarted.
    pub fn get(&self, id: &str) -> Option<Session> {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let session = map.get_mut(id)?;
        if session.last_seen.elapsed() >= IDLE {
            map.remove(id);
            return None;
        }
        session.last_seen = Instant::now();
        Some(session.clone())
    }

    pub fn end(&self, id: &str) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).remove(id);
    }
}

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    last: Instant,
}

/// Failed sign-ins per user name and per client address.
#[derive(Default)]
pub struct Throttle(Mutex<HashMap<String, Failures>>);

impl Throttle {
    fn keys(name: &str, ip: IpAddr) -> [String; 2] {
        [format!("user:{}", name.to_ascii_lowercase()), format!("ip:{ip}")]
    }

    /// How long to wait before the next attempt is heard, if at all.
    pub fn wait(&self, name: &str, ip: IpAddr) -> Option<Duration> {
        let map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        Self::keys(name, ip)
            .iter()
            .filter_map(|k| map.get(k))
            .filter(|f| f.count >= FREE_FAILURES)
            .filter_map(|f| {
                let wait = (Duration::from_secs(1) * 2u32.saturating_pow(f.count - FREE_FAILURES)).min(LONGEST_WAIT);
                wait.checked_sub(f.last.elapsed())
            })
            .max()
    }

    pub fn failed(&self, name: &str, ip: IpAddr) {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        for k in Self::keys(name, ip) {
            let f = map.entry(k).or_insert(Failures { count: 0, last: Instant::now() });
            // A quiet quarter of an hour forgives.
            if f.last.elapsed() > LONGEST_WAIT {
                f.count = 0;
            }
            f.count += 1;
            f.last = Instant::now();
        }
    }

    pub fn succeeded(&self, name: &str, ip: IpAddr) {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        map.remove(&Self::keys(name, ip)[0]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_and_tokens() {
        let sessions = Sessions::default();
        let id = sessions.start("ann");
        assert_eq!(id.len(), 64);
        let s = sessions.get(&id).unwrap();
        assert_eq!(s.user, "ann");
        assert_ne!(s.csrf, id);
        sessions.end(&id);
        assert!(sessions.get(&id).is_none());
        assert!(same("abc", "abc") && !same("abc", "abd") && !same("abc", "ab"));
        let cookie_value = set_cookie(SESSION_COOKIE, "x", true, None);
        assert_eq!(cookie_value, "hs_session=x; HttpOnly; SameSite=Strict; Path=/; Secure");
        let mut headers = HeaderMap::new();
        headers.insert(axum::http::header::COOKIE, "a=1; hs_session=tok; b=2".parse().unwrap());
        assert_eq!(cookie(&headers, SESSION_COOKIE).as_deref(), Some("tok"));
    }

    #[test]
    fn failed_sign_ins_are_throttled_after_five_per_name_and_per_address() {
        let t = Throttle::default();
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        for _ in 0..FREE_FAILURES {
            assert!(t.wait("ann", ip).is_none());
            t.failed("ann", ip);
        }
        assert!(t.wait("ann", ip).is_some(), "the sixth attempt waits");
        assert!(t.wait("ANN", "10.0.0.1".parse().unwrap()).is_some(), "by name, whatever the address");
        assert!(t.wait("bob", ip).is_some(), "by address, whatever the name");
        t.succeeded("ann", ip);
        assert!(t.wait("ann", "10.0.0.2".parse().unwrap()).is_none());
    }
}
