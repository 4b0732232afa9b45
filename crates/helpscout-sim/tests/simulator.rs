//! The simulator over HTTP: paging, filters, auth, rate limits, errors, faults, mutations,
//! writes, accounting, and agreement with its own ground truth.

use std::collections::{BTreeSet, HashSet};
use std::time::Duration;

use helpscout_sim::{
    Created, FaultKind, FaultPlan, FaultRule, GroundTruth, MutationPlan, Plan, Removal,
    RequestStats, SimConfig, Simulator,
};
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};

fn cfg(conversations: usize) -> SimConfig {
    SimConfig {
        seed: 11,
        conversations,
        ..SimConfig::default()
    }
}

async fn start(c: SimConfig) -> Simulator {
    Simulator::start(c).await.expect("simulator starts")
}

fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

async fn token(sim: &Simulator) -> String {
    let r = client()
        .post(sim.token_url())
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", "demo-client-id"),
            ("client_secret", "demo-client-secret"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let v: Value = r.json().await.unwrap();
    v["access_token"].as_str().unwrap().to_string()
}

struct Resp {
    status: StatusCode,
    headers: HeaderMap,
    body: Value,
}

/// GET a path (relative to the base URL) or an absolute href.
async fn get(sim: &Simulator, tok: &str, path: &str) -> Resp {
    let url = if path.starts_with("http") {
        path.to_string()
    } else {
        format!("{}{path}", sim.base_url())
    };
    let r = client().get(url).bearer_auth(tok).send().await.unwrap();
    let status = r.status();
    let headers = r.headers().clone();
    let bytes = r.bytes().await.unwrap();
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    Resp {
        status,
        headers,
        body,
    }
}

/// Follows `next` links from `path`, returning every embedded object.
async fn walk(sim: &Simulator, tok: &str, path: &str, key: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut url = path.to_string();
    loop {
        let r = get(sim, tok, &url).await;
        assert_eq!(r.status, StatusCode::OK, "{url}: {}", r.body);
        if let Some(items) = r.body["_embedded"][key].as_array() {
            out.extend(items.iter().cloned());
        }
        match r.body["_links"]["next"]["href"].as_str() {
            Some(n) => url = n.to_string(),
            None => break,
        }
    }
    out
}

/// A write (POST, PUT, PATCH) with a JSON body, relative to the base URL.
async fn send(sim: &Simulator, tok: &str, method: &str, path: &str, body: &Value) -> Resp {
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let r = client()
        .request(method, format!("{}{path}", sim.base_url()))
        .bearer_auth(tok)
        .json(body)
        .send()
        .await
        .unwrap();
    let status = r.status();
    let headers = r.headers().clone();
    let bytes = r.bytes().await.unwrap();
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    Resp {
        status,
        headers,
        body,
    }
}

/// The `Resource-ID` of a 201.
fn resource_id(r: &Resp) -> i64 {
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    r.headers["resource-id"].to_str().unwrap().parse().unwrap()
}

/// An absolute URL of `path` with its parameters encoded.
fn url_with(sim: &Simulator, path: &str, params: &[(&str, &str)]) -> String {
    reqwest::Url::parse_with_params(&format!("{}{path}", sim.base_url()), params)
        .unwrap()
        .to_string()
}

/// A minimal valid `POST /v2/conversations` body.
fn new_conversation(mailbox: i64, email: &str, status: &str, tags: &[&str]) -> Value {
    json!({
        "subject": format!("About {email}"), "mailboxId": mailbox, "type": "email",
        "status": status, "customer": {"email": email},
        "threads": [{"type": "customer", "customer": {"email": email}, "text": "Hello"}],
        "tags": tags,
    })
}

fn mailbox_ids(sim: &Simulator) -> Vec<i64> {
    sim.ground_truth().tables["mailboxes"]
        .iter()
        .map(|r| r["id"].as_i64().unwrap())
        .collect()
}

fn ids(items: &[Value]) -> Vec<i64> {
    items.iter().map(|v| v["id"].as_i64().unwrap()).collect()
}

fn truth_ids(t: &GroundTruth, table: &str) -> BTreeSet<i64> {
    t.tables[table]
        .iter()
        .map(|r| r["id"].as_i64().unwrap())
        .collect()
}

#[tokio::test]
async fn conversations_page_by_25_and_links_keep_parameters() {
    let sim = start(cfg(60)).await;
    let tok = token(&sim).await;
    let r = get(
        &sim,
        &tok,
        "/conversations?status=all&sortField=createdAt&sortOrder=asc",
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(
        r.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/hal+json")
    );
    assert_eq!(
        r.body["page"],
        json!({"size": 25, "totalElements": 60, "totalPages": 3, "number": 1})
    );
    assert_eq!(
        r.body["_embedded"]["conversations"]
            .as_array()
            .unwrap()
            .len(),
        25
    );
    let next = r.body["_links"]["next"]["href"].as_str().unwrap();
    let base = sim.base_url();
    assert_eq!(
        next,
        format!("{base}/conversations?status=all&sortField=createdAt&sortOrder=asc&page=2")
    );
    assert_eq!(
        r.body["_links"]["first"]["href"],
        format!("{base}/conversations?status=all&sortField=createdAt&sortOrder=asc&page=1")
    );
    assert_eq!(
        r.body["_links"]["last"]["href"],
        format!("{base}/conversations?status=all&sortField=createdAt&sortOrder=asc&page=3")
    );
    assert_eq!(r.body["_links"]["page"]["templated"], true);
    assert!(r.body["_links"].get("previous").is_none());

    let last = get(
        &sim,
        &tok,
        "/conversations?status=all&sortField=createdAt&sortOrder=asc&page=3",
    )
    .await;
    assert_eq!(
        last.body["_embedded"]["conversations"]
            .as_array()
            .unwrap()
            .len(),
        10
    );
    assert!(last.body["_links"].get("next").is_none());
    assert!(
        last.body["_links"]["previous"]["href"]
            .as_str()
            .unwrap()
            .ends_with("page=2")
    );

    let all = walk(
        &sim,
        &tok,
        "/conversations?status=all&sortField=createdAt&sortOrder=asc",
        "conversations",
    )
    .await;
    let got: Vec<i64> = ids(&all);
    assert_eq!(
        got.iter().copied().collect::<BTreeSet<_>>(),
        truth_ids(&sim.ground_truth(), "conversations")
    );
    let created: Vec<&str> = all
        .iter()
        .map(|c| c["createdAt"].as_str().unwrap())
        .collect();
    assert!(created.windows(2).all(|w| w[0] <= w[1]), "createdAt asc");
    // Default order: createdAt desc.
    let d = walk(&sim, &tok, "/conversations?status=all", "conversations").await;
    let created: Vec<&str> = d.iter().map(|c| c["createdAt"].as_str().unwrap()).collect();
    assert!(created.windows(2).all(|w| w[0] >= w[1]), "createdAt desc");
    sim.stop().await;
}

#[tokio::test]
async fn other_lists_page_by_50_and_empty_or_past_pages() {
    let sim = start(SimConfig {
        customers: Some(120),
        ..cfg(40)
    })
    .await;
    let tok = token(&sim).await;
    let r = get(&sim, &tok, "/customers?sortField=modifiedAt&sortOrder=asc").await;
    assert_eq!(
        r.body["page"],
        json!({"size": 50, "totalElements": 120, "totalPages": 3, "number": 1})
    );
    let all = walk(
        &sim,
        &tok,
        "/customers?sortField=modifiedAt&sortOrder=asc",
        "customers",
    )
    .await;
    assert_eq!(all.len(), 120);
    let upd: Vec<&str> = all
        .iter()
        .map(|c| c["updatedAt"].as_str().unwrap())
        .collect();
    assert!(upd.windows(2).all(|w| w[0] <= w[1]));
    assert!(all.iter().all(
        |c| c["_embedded"]["emails"].is_array() && c["_embedded"]["social_profiles"].is_array()
    ));
    assert!(all.iter().any(|c| c["_embedded"].get("address").is_none()));
    assert!(
        all.iter()
            .any(|c| c["_embedded"]["address"]["postalCode"].is_string())
    );

    // An empty result omits _embedded and reports page 0.
    let e = get(
        &sim,
        &tok,
        "/conversations?status=all&modifiedSince=2030-01-01T00:00:00Z",
    )
    .await;
    assert_eq!(e.status, StatusCode::OK);
    assert!(e.body.get("_embedded").is_none());
    assert_eq!(e.body["page"]["number"], 0);
    assert_eq!(e.body["page"]["totalElements"], 0);
    assert!(e.body["_links"].get("next").is_none());
    // Past the last page: 200, no _embedded, no next.
    let p = get(&sim, &tok, "/customers?page=9").await;
    assert_eq!(p.status, StatusCode::OK);
    assert!(p.body.get("_embedded").is_none());
    assert!(p.body["_links"].get("next").is_none());

    for (path, key) in [
        ("/mailboxes", "mailboxes"),
        ("/users", "users"),
        ("/teams", "teams"),
        ("/workflows", "workflows"),
        ("/tags", "tags"),
    ] {
        let r = get(&sim, &tok, path).await;
        assert_eq!(r.status, StatusCode::OK, "{path}");
        assert_eq!(r.body["page"]["size"], 50, "{path}");
        assert!(
            !r.body["_embedded"][key].as_array().unwrap().is_empty(),
            "{path}"
        );
    }
    sim.stop().await;
}

#[tokio::test]
async fn status_defaults_to_active() {
    let sim = start(cfg(80)).await;
    let tok = token(&sim).await;
    let t = sim.ground_truth();
    let count = |s: &str| {
        t.tables["conversations"]
            .iter()
            .filter(|r| r["status"] == s)
            .count()
    };
    let active = get(&sim, &tok, "/conversations").await;
    assert_eq!(active.body["page"]["totalElements"], count("active"));
    let all = walk(&sim, &tok, "/conversations", "conversations").await;
    assert!(all.iter().all(|c| c["status"] == "active"));
    for s in ["pending", "closed", "spam"] {
        let r = get(&sim, &tok, &format!("/conversations?status={s}")).await;
        assert_eq!(r.body["page"]["totalElements"], count(s), "{s}");
    }
    let r = get(&sim, &tok, "/conversations?status=all").await;
    assert_eq!(
        r.body["page"]["totalElements"],
        t.tables["conversations"].len()
    );
    let bad = get(&sim, &tok, "/conversations?status=open-ish").await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    // A search query on the hidden modified time.
    let r = get(
        &sim,
        &tok,
        "/conversations?status=all&query=(modifiedAt:[2030-01-01T00:00:00Z%20TO%20*])",
    )
    .await;
    assert_eq!(r.body["page"]["totalElements"], 0);
    let r = get(
        &sim,
        &tok,
        "/conversations?status=all&query=(createdAt:[*%20TO%202030-01-01T00:00:00Z])",
    )
    .await;
    assert_eq!(
        r.body["page"]["totalElements"],
        t.tables["conversations"].len()
    );
    let r = get(
        &sim,
        &tok,
        "/conversations?status=all&query=(createdAt:[yesterday%20TO%20*])",
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    // Mailbox filter.
    let mb = t.tables["mailboxes"][0]["id"].as_i64().unwrap();
    let r = get(
        &sim,
        &tok,
        &format!("/conversations?status=all&mailbox={mb}"),
    )
    .await;
    assert_eq!(
        r.body["page"]["totalElements"],
        t.tables["conversations"]
            .iter()
            .filter(|c| c["mailbox_id"] == mb)
            .count()
    );
    sim.stop().await;
}

#[tokio::test]
async fn malformed_dates_are_400_vnd_error() {
    let sim = start(cfg(20)).await;
    let tok = token(&sim).await;
    for bad in [
        "2024-01-01",
        "2024-01-01T00:00:00",
        "2024-01-01T00:00:00.000Z",
        "yesterday",
    ] {
        let r = get(
            &sim,
            &tok,
            &format!("/conversations?status=all&modifiedSince={bad}"),
        )
        .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}");
        assert_eq!(r.headers["content-type"], "application/vnd.error+json");
        let e = &r.body["_embedded"]["errors"][0];
        assert_eq!(e["path"], "modifiedSince");
        assert_eq!(e["message"], "Malformed date");
        assert_eq!(e["rejectedValue"], bad);
        assert!(r.body["logRef"].is_string());
    }
    let r = get(
        &sim,
        &tok,
        "/reports/happiness/ratings?start=2024-01-01&end=2026-01-01T00:00:00Z",
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.body["_embedded"]["errors"][0]["path"], "start");
    let r = get(&sim, &tok, "/customers?modifiedSince=2024-01-01+00:00:00").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    sim.stop().await;
}

#[tokio::test]
async fn embedded_threads_are_truncated_for_chats() {
    let sim = start(cfg(150)).await;
    let tok = token(&sim).await;
    let all = walk(
        &sim,
        &tok,
        "/conversations?status=all&embed=threads",
        "conversations",
    )
    .await;
    let mut chats_truncated = 0;
    for c in &all {
        let n = c["threads"].as_u64().unwrap() as usize;
        let emb = c["_embedded"]["threads"].as_array().unwrap();
        if c["type"] == "chat" {
            assert_eq!(emb.len(), n.min(3));
            if n > 3 {
                chats_truncated += 1;
            }
        } else {
            assert_eq!(emb.len(), n);
        }
        let created: Vec<&str> = emb
            .iter()
            .map(|t| t["createdAt"].as_str().unwrap())
            .collect();
        assert!(created.windows(2).all(|w| w[0] >= w[1]), "newest first");
        assert!(c.get("modifiedAt").is_none());
        let web = c["_links"]["web"]["href"].as_str().unwrap();
        assert_eq!(
            web,
            format!(
                "https://secure.helpscout.net/conversation/{}/{}",
                c["id"], c["number"]
            )
        );
    }
    assert!(chats_truncated > 0);
    // /threads gives them all, newest first, 50 a page.
    let chat = all
        .iter()
        .find(|c| c["type"] == "chat" && c["threads"].as_u64().unwrap() > 3)
        .unwrap();
    let r = get(
        &sim,
        &tok,
        &format!("/conversations/{}/threads", chat["id"]),
    )
    .await;
    assert_eq!(r.body["page"]["size"], 50);
    assert_eq!(
        r.body["_embedded"]["threads"].as_array().unwrap().len() as u64,
        chat["threads"].as_u64().unwrap()
    );
    // Fields are omitted where the API omits them.
    assert!(all.iter().any(|c| c.get("assignee").is_none()));
    assert!(
        all.iter()
            .any(|c| c.get("closedAt").is_none() && c.get("closedBy").is_none())
    );
    assert!(
        all.iter()
            .any(|c| c["closedBy"].is_i64() && c["closedAt"].is_string())
    );
    sim.stop().await;
}

#[tokio::test]
async fn oauth_grants_rotation_and_expiry() {
    let sim = start(SimConfig {
        token_ttl_secs: 3600,
        ..cfg(10)
    })
    .await;
    let c = client();
    // No token, a bad token: 401 with a JSON body.
    let r = c
        .get(format!("{}/mailboxes", sim.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let _: Value = r.json().await.unwrap();
    assert_eq!(
        get(&sim, "nope", "/mailboxes").await.status,
        StatusCode::UNAUTHORIZED
    );

    // Client credentials by JSON body and by query string: no refresh token.
    let r = c
        .post(sim.token_url())
        .json(&json!({"grant_type": "client_credentials", "client_id": "demo-client-id", "client_secret": "demo-client-secret"}))
        .send()
        .await
        .unwrap();
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["token_type"], "bearer");
    assert_eq!(v["expires_in"], 3600);
    assert!(v.get("refresh_token").is_none());
    let r = c
        .post(format!("{}?grant_type=client_credentials&client_id=demo-client-id&client_secret=demo-client-secret", sim.token_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);

    // Wrong secret.
    let r = c
        .post(sim.token_url())
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", "demo-client-id"),
            ("client_secret", "wrong"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"error": "invalid_client"})
    );

    // Refresh tokens rotate; the old one dies.
    let refresh = |rt: String| {
        let c = c.clone();
        let url = sim.token_url();
        async move {
            c.post(url)
                .form(&[
                    ("grant_type", "refresh_token"),
                    ("client_id", "demo-client-id"),
                    ("client_secret", "demo-client-secret"),
                    ("refresh_token", rt.as_str()),
                ])
                .send()
                .await
                .unwrap()
        }
    };
    let r = refresh("demo-refresh-token".into()).await;
    assert_eq!(r.status(), StatusCode::OK);
    let v: Value = r.json().await.unwrap();
    let rt1 = v["refresh_token"].as_str().unwrap().to_string();
    let at = v["access_token"].as_str().unwrap().to_string();
    assert_ne!(rt1, "demo-refresh-token");
    let r = refresh("demo-refresh-token".into()).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"error": "invalid_request", "error_description": "Invalid refresh_token"})
    );
    assert_eq!(refresh(rt1.clone()).await.status(), StatusCode::OK);
    assert_eq!(refresh(rt1).await.status(), StatusCode::BAD_REQUEST);

    // Expiry on the simulated clock.
    assert_eq!(get(&sim, &at, "/users").await.status, StatusCode::OK);
    sim.advance_clock(chrono::Duration::seconds(3601));
    assert_eq!(
        get(&sim, &at, "/users").await.status,
        StatusCode::UNAUTHORIZED
    );
    // expire_tokens kills every token issued so far.
    let t2 = token(&sim).await;
    assert_eq!(get(&sim, &t2, "/users").await.status, StatusCode::OK);
    sim.expire_tokens();
    assert_eq!(
        get(&sim, &t2, "/users").await.status,
        StatusCode::UNAUTHORIZED
    );
    let t3 = token(&sim).await;
    assert_eq!(get(&sim, &t3, "/users").await.status, StatusCode::OK);
    sim.stop().await;
}

fn header_u64(h: &HeaderMap, k: &str) -> u64 {
    h[k].to_str().unwrap().parse().unwrap()
}

#[tokio::test]
async fn rate_limit_window_headers_and_writes_weigh_two() {
    let sim = start(SimConfig {
        rate_limit_per_minute: 6,
        rate_window: Duration::from_secs(30),
        ..cfg(10)
    })
    .await;
    let tok = token(&sim).await;
    let mut remaining = Vec::new();
    for _ in 0..4 {
        let r = get(&sim, &tok, "/mailboxes").await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(header_u64(&r.headers, "x-ratelimit-limit-minute"), 6);
        remaining.push(header_u64(&r.headers, "x-ratelimit-remaining-minute"));
    }
    assert_eq!(remaining, vec![5, 4, 3, 2]);
    // A write weighs 2.
    let r = client()
        .post(format!("{}/customers", sim.base_url()))
        .bearer_auth(&tok)
        .json(
            &json!({"firstName": "Ada", "emails": [{"type": "work", "value": "ada@example.org"}]}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(header_u64(r.headers(), "x-ratelimit-remaining-minute"), 0);
    let r = get(&sim, &tok, "/mailboxes").await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.body, json!({"message": "API rate limit exceeded"}));
    let retry = header_u64(&r.headers, "x-ratelimit-retry-after");
    assert!((1..=30).contains(&retry), "{retry}");
    assert_eq!(header_u64(&r.headers, "x-ratelimit-remaining-minute"), 0);
    // The token endpoint does not count and is not throttled.
    let _ = token(&sim).await;
    // The window refreshes after the advertised time (on the simulated clock).
    sim.advance_clock(chrono::Duration::seconds(retry as i64));
    let r = get(&sim, &tok, "/mailboxes").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(header_u64(&r.headers, "x-ratelimit-remaining-minute"), 5);
    // Updates weigh 2 as well.
    let cid = sim.created().customers[0].id;
    for (method, left) in [("PATCH", 3), ("PUT", 1)] {
        let r = send(
            &sim,
            &tok,
            method,
            &format!("/customers/{cid}"),
            &json!({"firstName": "Ada"}),
        )
        .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{method}");
        assert_eq!(
            header_u64(&r.headers, "x-ratelimit-remaining-minute"),
            left,
            "{method}"
        );
    }
    // A write needs 2: with 1 left it is refused, and a read still fits.
    let r = send(
        &sim,
        &tok,
        "PATCH",
        &format!("/customers/{cid}"),
        &json!({"lastName": "L"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(get(&sim, &tok, "/mailboxes").await.status, StatusCode::OK);
    assert_eq!(sim.created().customer_updates.len(), 2);
    let s = sim.request_stats();
    assert_eq!(s.rate_limited, 2);
    assert_eq!(s.count_status("GET", "/v2/mailboxes", 429), 1);
    sim.stop().await;
}

#[tokio::test]
async fn happiness_report_pages_and_plans() {
    let sim = start(cfg(900)).await;
    let tok = token(&sim).await;
    let t = sim.ground_truth();
    let want: BTreeSet<(i64, i64)> = t.tables["happiness_ratings_report"]
        .iter()
        .map(|r| {
            (
                r["conversation_id"].as_i64().unwrap(),
                r["thread_id"].as_i64().unwrap(),
            )
        })
        .collect();
    assert!(want.len() > 50, "{}", want.len());
    let mut got = BTreeSet::new();
    let mut page = 1;
    loop {
        let r = get(&sim, &tok, &format!("/reports/happiness/ratings?start=2020-01-01T00:00:00Z&end=2030-01-01T00:00:00Z&page={page}")).await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.body["count"].as_u64().unwrap() as usize, want.len());
        assert_eq!(
            r.body["pages"].as_u64().unwrap() as usize,
            want.len().div_ceil(50)
        );
        assert_eq!(r.body["facets"], json!({}));
        for x in r.body["results"].as_array().unwrap() {
            let keys: BTreeSet<&str> = x.as_object().unwrap().keys().map(String::as_str).collect();
            let expect: BTreeSet<&str> = [
                "number",
                "id",
                "type",
                "threadid",
                "threadCreatedAt",
                "ratingId",
                "ratingCustomerId",
                "ratingCustomerName",
                "ratingComments",
                "ratingCreatedAt",
                "ratingUserId",
                "ratingUserName",
            ]
            .into_iter()
            .collect();
            assert_eq!(keys, expect);
            assert!((1..=3).contains(&x["ratingId"].as_i64().unwrap()));
            got.insert((x["id"].as_i64().unwrap(), x["threadid"].as_i64().unwrap()));
        }
        if page >= r.body["pages"].as_u64().unwrap() {
            break;
        }
        page += 1;
    }
    assert_eq!(got, want);
    // The interval is [start, end).
    let first = t.tables["happiness_ratings_report"]
        .iter()
        .map(|r| r["rating_created_at"].as_str().unwrap().to_string())
        .min()
        .unwrap();
    let r = get(
        &sim,
        &tok,
        &format!("/reports/happiness/ratings?start=2020-01-01T00:00:00Z&end={first}"),
    )
    .await;
    assert_eq!(r.body["count"], 0);
    let r = get(
        &sim,
        &tok,
        &format!("/reports/happiness/ratings?start={first}&end=2030-01-01T00:00:00Z&rating=great"),
    )
    .await;
    let greats = t.tables["happiness_ratings_report"]
        .iter()
        .filter(|r| r["rating"] == "great")
        .count();
    assert_eq!(r.body["count"].as_u64().unwrap() as usize, greats);
    sim.stop().await;

    let std_plan = start(SimConfig {
        plan: Plan::Standard,
        ..cfg(10)
    })
    .await;
    let tok = token(&std_plan).await;
    let r = get(
        &std_plan,
        &tok,
        "/reports/happiness/ratings?start=2020-01-01T00:00:00Z&end=2030-01-01T00:00:00Z",
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    std_plan.stop().await;
}

#[tokio::test]
async fn merged_redirects_then_404_and_deleted_404() {
    let sim = start(cfg(60)).await;
    let tok = token(&sim).await;
    let rep = sim.mutate(&MutationPlan {
        merges: 2,
        deletions: 2,
        seed: 5,
        ..Default::default()
    });
    assert!(!rep.merged.is_empty());
    let t = sim.ground_truth();
    let c = client();
    let m = &rep.merged[0];
    assert_eq!(
        t.removed_conversations[&m.source],
        Removal::MergedInto(m.target)
    );
    let no_redirect = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = no_redirect
        .get(format!("{}/conversations/{}", sim.base_url(), m.source))
        .bearer_auth(&tok)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::MOVED_PERMANENTLY);
    assert_eq!(
        r.headers()["location"],
        format!("{}/conversations/{}", sim.base_url(), m.target)
    );
    // Followed, the redirect lands on the target, which now holds the source's threads.
    let r = c
        .get(format!(
            "{}/conversations/{}?embed=threads",
            sim.base_url(),
            m.source
        ))
        .bearer_auth(&tok)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let target: Value = r.json().await.unwrap();
    assert_eq!(target["id"], m.target);
    let truth_threads = t.tables["conversation_threads"]
        .iter()
        .filter(|r| r["conversation_id"] == m.target)
        .count();
    assert_eq!(target["threads"].as_u64().unwrap() as usize, truth_threads);
    for d in &rep.deleted {
        assert_eq!(t.removed_conversations[d], Removal::Deleted);
        assert_eq!(
            get(&sim, &tok, &format!("/conversations/{d}")).await.status,
            StatusCode::NOT_FOUND
        );
    }
    // Removed conversations vanish from lists and from the truth.
    let listed: HashSet<i64> =
        ids(&walk(&sim, &tok, "/conversations?status=all", "conversations").await)
            .into_iter()
            .collect();
    for id in rep
        .deleted
        .iter()
        .chain(rep.merged.iter().map(|m| &m.source))
    {
        assert!(!listed.contains(id));
        assert!(!truth_ids(&t, "conversations").contains(id));
    }
    assert_eq!(listed.len(), t.tables["conversations"].len());
    // 60 simulated days later the merged one is a 404.
    sim.advance_clock(chrono::Duration::days(61));
    let tok = token(&sim).await;
    let r = no_redirect
        .get(format!("{}/conversations/{}", sim.base_url(), m.source))
        .bearer_auth(&tok)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    sim.stop().await;
}

#[tokio::test]
async fn mutations_show_through_modified_since() {
    let sim = start(cfg(80)).await;
    let tok = token(&sim).await;
    let before: Vec<Value> = walk(&sim, &tok, "/conversations?status=all", "conversations").await;
    sim.advance_clock(chrono::Duration::hours(1));
    let mark = sim.now().format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let rep = sim.mutate(&MutationPlan {
        seed: 3,
        workflow_changes: 6,
        replies: 4,
        new_conversations: 3,
        customer_edits: 4,
        ..Default::default()
    });
    let changed: BTreeSet<i64> = rep
        .workflow_changed
        .iter()
        .chain(&rep.replied_conversations)
        .chain(&rep.new_conversations)
        .copied()
        .collect();
    let got: BTreeSet<i64> = ids(&walk(
        &sim,
        &tok,
        &format!(
            "/conversations?status=all&sortField=modifiedAt&sortOrder=asc&modifiedSince={mark}"
        ),
        "conversations",
    )
    .await)
    .into_iter()
    .collect();
    assert_eq!(got, changed);
    // A workflow change moves neither userUpdatedAt nor customerWaitingSince.
    let only_wf: Vec<i64> = rep
        .workflow_changed
        .iter()
        .filter(|id| !rep.replied_conversations.contains(id))
        .copied()
        .collect();
    assert!(!only_wf.is_empty());
    for id in only_wf {
        let old = before.iter().find(|c| c["id"] == id).unwrap();
        let new = get(&sim, &tok, &format!("/conversations/{id}")).await.body;
        assert_eq!(old["userUpdatedAt"], new["userUpdatedAt"]);
        assert_eq!(old["customerWaitingSince"], new["customerWaitingSince"]);
    }
    // Customer edits show through the customers' modifiedSince.
    let cust: BTreeSet<i64> = ids(&walk(
        &sim,
        &tok,
        &format!("/customers?sortField=modifiedAt&sortOrder=asc&modifiedSince={mark}"),
        "customers",
    )
    .await)
    .into_iter()
    .collect();
    for id in &rep.edited_customers {
        assert!(cust.contains(id));
    }
    // Small lists change too.
    let rep = sim.mutate(&MutationPlan {
        seed: 4,
        user_edits: 1,
        folder_changes: 1,
        workflow_edits: 1,
        mailbox_edits: 1,
        team_member_changes: 1,
        ..Default::default()
    });
    let t = sim.ground_truth();
    let u = t.tables["users"]
        .iter()
        .find(|r| r["id"] == rep.edited_users[0])
        .unwrap();
    assert!(u["updated_at"].as_str().unwrap() >= mark.as_str());
    let f = t.tables["mailbox_folders"]
        .iter()
        .find(|r| r["id"] == rep.changed_folders[0])
        .unwrap();
    assert!(f["updated_at"].as_str().unwrap() >= mark.as_str());
    assert_eq!(rep.team_member_changes.len(), 1);
    sim.stop().await;
}

#[tokio::test]
async fn ground_truth_matches_what_the_api_serves() {
    let sim = start(cfg(60)).await;
    let tok = token(&sim).await;
    let t = sim.ground_truth();
    let convs = walk(
        &sim,
        &tok,
        "/conversations?status=all&embed=threads",
        "conversations",
    )
    .await;
    assert_eq!(convs.len(), t.tables["conversations"].len());
    for c in &convs {
        let row = t.tables["conversations"]
            .iter()
            .find(|r| r["id"] == c["id"])
            .unwrap();
        assert_eq!(row["number"], c["number"]);
        assert_eq!(row["subject"], c["subject"]);
        assert_eq!(row["status"], c["status"]);
        assert_eq!(row["threads"], c["threads"]);
        assert_eq!(row["folder_id"], c["folderId"]);
        assert_eq!(row["user_updated_at"], c["userUpdatedAt"]);
        assert_eq!(row["preview"], c["preview"]);
        assert_eq!(row["primary_customer"]["id"], c["primaryCustomer"]["id"]);
        assert_eq!(
            row["customer_waiting_since"]["time"],
            c["customerWaitingSince"]["time"]
        );
        assert_eq!(
            row["closed_by"],
            c.get("closedBy").cloned().unwrap_or(Value::Null)
        );
        let wait = c["customerWaitingSince"]["time"].as_str().unwrap_or("");
        let user = c["userUpdatedAt"].as_str().unwrap();
        assert_eq!(row["updated_at"], json!(user.max(wait)));
    }
    let threads: usize = convs
        .iter()
        .map(|c| c["threads"].as_u64().unwrap() as usize)
        .sum();
    assert_eq!(threads, t.tables["conversation_threads"].len());
    let one = t.tables["conversation_threads"]
        .iter()
        .find(|r| r["type"] == "message")
        .unwrap();
    let cid = one["conversation_id"].as_i64().unwrap();
    let served = walk(
        &sim,
        &tok,
        &format!("/conversations/{cid}/threads"),
        "threads",
    )
    .await;
    let th = served.iter().find(|x| x["id"] == one["id"]).unwrap();
    assert_eq!(th["body"], one["body"]);
    assert_eq!(th["createdBy"]["id"], one["created_by"]["id"]);
    assert_eq!(th["createdAt"], one["created_at"]);
    let customers = walk(&sim, &tok, "/customers", "customers").await;
    assert_eq!(
        ids(&customers).into_iter().collect::<BTreeSet<_>>(),
        truth_ids(&t, "customers")
    );
    let mbs = walk(&sim, &tok, "/mailboxes", "mailboxes").await;
    assert_eq!(
        ids(&mbs).into_iter().collect::<BTreeSet<_>>(),
        truth_ids(&t, "mailboxes")
    );
    let mut folders = BTreeSet::new();
    let mut fields = BTreeSet::new();
    for m in &mbs {
        folders.extend(ids(&walk(
            &sim,
            &tok,
            &format!("/mailboxes/{}/folders", m["id"]),
            "folders",
        )
        .await));
        fields.extend(ids(&walk(
            &sim,
            &tok,
            &format!("/mailboxes/{}/fields", m["id"]),
            "fields",
        )
        .await));
    }
    assert_eq!(folders, truth_ids(&t, "mailbox_folders"));
    assert_eq!(fields, truth_ids(&t, "mailbox_fields"));
    let mut members = BTreeSet::new();
    for team in walk(&sim, &tok, "/teams", "teams").await {
        for u in walk(
            &sim,
            &tok,
            &format!("/teams/{}/members", team["id"]),
            "users",
        )
        .await
        {
            members.insert((team["id"].as_i64().unwrap(), u["id"].as_i64().unwrap()));
        }
    }
    let want: BTreeSet<(i64, i64)> = t.tables["team_members"]
        .iter()
        .map(|r| {
            (
                r["team_id"].as_i64().unwrap(),
                r["user_id"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(members, want);
    assert_eq!(
        ids(&walk(&sim, &tok, "/workflows", "workflows").await)
            .into_iter()
            .collect::<BTreeSet<_>>(),
        truth_ids(&t, "workflows")
    );
    assert_eq!(
        ids(&walk(&sim, &tok, "/users", "users").await)
            .into_iter()
            .collect::<BTreeSet<_>>(),
        truth_ids(&t, "users")
    );
    // One table at a time gives the same rows.
    for name in helpscout_sim::contract::TABLES.iter().map(|t| t.name) {
        assert_eq!(
            sim.ground_truth_table(name).as_ref(),
            Some(&t.tables[name]),
            "{name}"
        );
    }
    assert!(sim.ground_truth_table("nope").is_none());
    for name in helpscout_sim::contract::TABLES.iter().map(|t| t.name) {
        let mut rows = Vec::new();
        assert!(sim.for_each_truth_row(name, |r| rows.push(r)));
        assert_eq!(rows, t.tables[name], "{name}");
    }
    assert!(!sim.for_each_truth_row("nope", |_| ()));
    // The admin endpoint serves the same truth.
    let admin: GroundTruth = client()
        .get(format!("http://{}/_admin/truth", sim.addr()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(admin, t);
    sim.stop().await;
}

#[tokio::test]
async fn status_faults_and_bursts() {
    let sim = start(cfg(20)).await;
    let tok = token(&sim).await;
    sim.set_faults(FaultPlan {
        rules: vec![
            FaultRule::new(Some("/v2/users"), 1, 2, FaultKind::Status(503)),
            FaultRule::new(Some("/v2/teams"), 0, 1, FaultKind::Status(500)),
            FaultRule::new(Some("/v2/workflows"), 0, 1, FaultKind::RateLimitBurst),
            FaultRule::new(Some("/v2/tags"), 0, 1, FaultKind::Status(504)),
        ],
    });
    let statuses = [
        get(&sim, &tok, "/users").await.status,
        get(&sim, &tok, "/users").await.status,
        get(&sim, &tok, "/users").await.status,
        get(&sim, &tok, "/users").await.status,
    ];
    assert_eq!(
        statuses,
        [
            StatusCode::OK,
            StatusCode::SERVICE_UNAVAILABLE,
            StatusCode::SERVICE_UNAVAILABLE,
            StatusCode::OK
        ]
    );
    sim.set_faults(FaultPlan {
        rules: vec![FaultRule::new(
            Some("/v2/users"),
            0,
            1,
            FaultKind::Status(503),
        )],
    });
    let r = client()
        .get(format!("{}/users", sim.base_url()))
        .bearer_auth(&tok)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let text = r.text().await.unwrap();
    assert!(serde_json::from_str::<Value>(&text).is_err() && text.contains("503"));
    sim.set_faults(FaultPlan {
        rules: vec![
            FaultRule::new(Some("/v2/teams"), 0, 1, FaultKind::Status(500)),
            FaultRule::new(Some("/v2/workflows"), 0, 1, FaultKind::RateLimitBurst),
            FaultRule::new(Some("/v2/tags"), 0, 1, FaultKind::Status(504)),
        ],
    });
    let r = get(&sim, &tok, "/teams").await;
    assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(r.body["message"], "Internal error");
    assert!(r.body["logRef"].is_string());
    let r = get(&sim, &tok, "/workflows").await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(header_u64(&r.headers, "x-ratelimit-retry-after"), 1);
    assert_eq!(
        get(&sim, &tok, "/tags").await.status,
        StatusCode::GATEWAY_TIMEOUT
    );
    assert_eq!(get(&sim, &tok, "/workflows").await.status, StatusCode::OK);
    let s = sim.request_stats();
    assert_eq!(s.faults_injected, 6);
    sim.stop().await;
}

#[tokio::test]
async fn delay_drop_truncate_and_token_faults() {
    let sim = start(cfg(20)).await;
    let tok = token(&sim).await;
    sim.set_faults(FaultPlan {
        rules: vec![
            FaultRule::new(Some("/v2/users"), 0, 1, FaultKind::Delay(3_000)),
            FaultRule::new(Some("/v2/conversations"), 0, 1, FaultKind::DropConnection),
            FaultRule::new(Some("/v2/customers"), 0, 1, FaultKind::TruncatedBody),
            FaultRule::new(Some("/v2/mailboxes"), 0, 1, FaultKind::ExpireToken),
        ],
    });
    // Slower than a sane client timeout.
    let quick = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let e = quick
        .get(format!("{}/users", sim.base_url()))
        .bearer_auth(&tok)
        .send()
        .await
        .unwrap_err();
    assert!(e.is_timeout());
    // The connection is cut mid-body.
    let r = client()
        .get(format!("{}/conversations?status=all", sim.base_url()))
        .bearer_auth(&tok)
        .send()
        .await;
    let failed = match r {
        Err(_) => true,
        Ok(r) => r.bytes().await.is_err(),
    };
    assert!(failed, "the dropped connection must fail the read");
    // A 200 whose JSON is cut in half.
    let r = client()
        .get(format!("{}/customers", sim.base_url()))
        .bearer_auth(&tok)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let b = r.bytes().await.unwrap();
    assert!(serde_json::from_slice::<Value>(&b).is_err());
    // The token dies.
    assert_eq!(
        get(&sim, &tok, "/mailboxes").await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        get(&sim, &tok, "/users").await.status,
        StatusCode::UNAUTHORIZED
    );
    let tok2 = token(&sim).await;
    assert_eq!(get(&sim, &tok2, "/users").await.status, StatusCode::OK);
    // Everything works again afterwards.
    assert_eq!(
        get(&sim, &tok2, "/conversations").await.status,
        StatusCode::OK
    );
    assert_eq!(get(&sim, &tok2, "/customers").await.status, StatusCode::OK);
    sim.stop().await;
}

#[tokio::test]
async fn page_drift_shifts_offset_paging() {
    let sim = start(cfg(60)).await;
    let tok = token(&sim).await;
    sim.advance_clock(chrono::Duration::minutes(5));
    sim.set_faults(FaultPlan {
        rules: vec![FaultRule::new(
            Some("/v2/conversations"),
            0,
            1,
            FaultKind::PageDrift { rows: 3 },
        )],
    });
    let seen = walk(
        &sim,
        &tok,
        "/conversations?status=all&sortField=modifiedAt&sortOrder=asc",
        "conversations",
    )
    .await;
    let unique: HashSet<i64> = ids(&seen).into_iter().collect();
    assert_eq!(seen.len(), 60);
    assert_eq!(unique.len(), 57, "three rows are skipped, three seen twice");
    let t = sim.ground_truth();
    assert_eq!(t.tables["conversations"].len(), 60);
    // The drifted rows are the only ones modified since the clock moved.
    let r = get(
        &sim,
        &tok,
        "/conversations?status=all&modifiedSince=2026-06-01T12:01:00Z",
    )
    .await;
    assert_eq!(r.body["page"]["totalElements"], 3);
    // Customers drift too.
    let sim2 = start(SimConfig {
        customers: Some(120),
        ..cfg(20)
    })
    .await;
    let tok2 = token(&sim2).await;
    sim2.set_faults(FaultPlan {
        rules: vec![FaultRule::new(
            Some("/v2/customers"),
            0,
            1,
            FaultKind::PageDrift { rows: 2 },
        )],
    });
    let seen = walk(
        &sim2,
        &tok2,
        "/customers?sortField=modifiedAt&sortOrder=asc",
        "customers",
    )
    .await;
    let unique: HashSet<i64> = ids(&seen).into_iter().collect();
    assert_eq!(unique.len(), 118);
    sim2.stop().await;
    sim.stop().await;
}

#[tokio::test]
async fn writes_create_and_validate() {
    let sim = start(cfg(20)).await;
    let tok = token(&sim).await;
    let c = client();
    let mb = sim.ground_truth().tables["mailboxes"][0]["id"]
        .as_i64()
        .unwrap();
    let body = json!({
        "subject": "Printer on fire 🔥", "mailboxId": mb, "type": "email", "status": "active",
        "customer": {"email": "new.person@example.org", "firstName": "New"},
        "threads": [{"type": "customer", "customer": {"email": "new.person@example.org"}, "text": "<p>Help!</p>"}],
        "tags": ["vip"]
    });
    let r = c
        .post(format!("{}/conversations", sim.base_url()))
        .bearer_auth(&tok)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let id: i64 = r.headers()["resource-id"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let loc = r.headers()["location"].to_str().unwrap().to_string();
    assert_eq!(loc, format!("{}/conversations/{id}", sim.base_url()));
    let got = get(&sim, &tok, &loc).await;
    assert_eq!(got.body["subject"], "Printer on fire 🔥");
    assert_eq!(got.body["threads"], 1);
    assert_eq!(
        got.body["primaryCustomer"]["email"],
        "new.person@example.org"
    );
    assert!(
        sim.ground_truth().tables["conversations"]
            .iter()
            .any(|r| r["id"] == id)
    );

    let mut bad = body.clone();
    bad["customer"]["email"] = json!("not-an-email");
    let r = c
        .post(format!("{}/conversations", sim.base_url()))
        .bearer_auth(&tok)
        .json(&bad)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(r.headers()["content-type"], "application/vnd.error+json");
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["_embedded"]["errors"][0]["path"], "customer.email");
    let mut bad = body.clone();
    bad["mailboxId"] = json!(1);
    let r = c
        .post(format!("{}/conversations", sim.base_url()))
        .bearer_auth(&tok)
        .json(&bad)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        r.json::<Value>().await.unwrap()["message"],
        "Mailbox not found"
    );

    let r = c
        .post(format!("{}/customers", sim.base_url()))
        .bearer_auth(&tok)
        .json(&json!({"firstName": "Zoë", "lastName": "Ørsted", "emails": [{"type": "work", "value": "zoe@example.org"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let cid: i64 = r.headers()["resource-id"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let r = c
        .put(format!("{}/customers/{cid}", sim.base_url()))
        .bearer_auth(&tok)
        .json(&json!({"firstName": "Zoë", "emails": [{"type": "work", "value": "broken@"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["_embedded"]["errors"][0]["path"], "emails[0].value");
    sim.advance_clock(chrono::Duration::minutes(10));
    let before_patch = sim.now().format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let r = c
        .patch(format!("{}/customers/{cid}", sim.base_url()))
        .bearer_auth(&tok)
        .json(&json!([{"op": "replace", "path": "/jobTitle", "value": "CTO"}]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let cust = get(&sim, &tok, &format!("/customers/{cid}")).await.body;
    assert_eq!(cust["jobTitle"], "CTO");
    assert_eq!(cust["lastName"], "Ørsted");
    assert!(cust["updatedAt"].as_str().unwrap() >= before_patch.as_str());
    let s = sim.request_stats();
    assert_eq!(s.count_status("POST", "/v2/conversations", 201), 1);
    assert_eq!(s.count_status("POST", "/v2/conversations", 400), 1);
    assert_eq!(s.count("PATCH", "/v2/customers/{id}"), 1);
    sim.stop().await;
}

#[tokio::test]
async fn date_header_stats_and_admin_endpoints() {
    let sim = start(cfg(20)).await;
    let tok = token(&sim).await;
    let r = get(&sim, &tok, "/mailboxes").await;
    let date = chrono::DateTime::parse_from_rfc2822(r.headers["date"].to_str().unwrap()).unwrap();
    let start = chrono::DateTime::parse_from_rfc3339("2026-06-01T12:00:00Z").unwrap();
    assert!(
        date >= start && date < start + chrono::Duration::hours(1),
        "{date}"
    );
    let c = client();
    let admin = format!("http://{}/_admin", sim.addr());
    let v: Value = c
        .post(format!("{admin}/advance?seconds=86400"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(v["now"].as_str().unwrap().starts_with("2026-06-02"));
    let r = get(&sim, &tok, "/mailboxes").await;
    let date = chrono::DateTime::parse_from_rfc2822(r.headers["date"].to_str().unwrap()).unwrap();
    assert!(date >= start + chrono::Duration::days(1));

    let rep: Value = c
        .post(format!("{admin}/mutate"))
        .json(&json!({"new_conversations": 2, "seed": 1}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(rep["new_conversations"].as_array().unwrap().len(), 2);
    let r = get(&sim, &tok, "/conversations?status=all").await;
    assert_eq!(r.body["page"]["totalElements"], 22);

    let s: RequestStats = c
        .get(format!("{admin}/stats"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(s, sim.request_stats());
    assert_eq!(s.count_status("GET", "/v2/mailboxes", 200), 2);
    assert_eq!(s.count("POST", "/v2/oauth2/token"), 1);
    assert_eq!(s.total, 4);
    c.post(format!("{admin}/stats/reset")).send().await.unwrap();
    assert_eq!(sim.request_stats().total, 0);

    let r = c
        .post(format!("{admin}/faults"))
        .json(&json!({"rules": [{"path_prefix": "/v2/users", "kind": {"Status": 502}}]}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    assert_eq!(
        get(&sim, &tok, "/users").await.status,
        StatusCode::BAD_GATEWAY
    );
    assert_eq!(get(&sim, &tok, "/users").await.status, StatusCode::OK);
    c.post(format!("{admin}/expire-tokens"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        get(&sim, &tok, "/users").await.status,
        StatusCode::UNAUTHORIZED
    );
    // Unknown paths are 404 JSON.
    let tok = token(&sim).await;
    assert_eq!(
        get(&sim, &tok, "/nothing-here").await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(sim.request_stats().count("GET", "other"), 1);

    // Stopping frees the port.
    let addr = sim.addr();
    sim.stop().await;
    let l = tokio::net::TcpListener::bind(addr).await;
    assert!(l.is_ok(), "port still taken after stop");
}

#[tokio::test]
async fn the_request_journal_lists_gets_in_order_and_resets_with_the_stats() {
    let sim = start(cfg(60)).await;
    let tok = token(&sim).await;
    let paths = [
        "/conversations?page=2&embed=threads&status=all",
        "/users",
        "/mailboxes?page=1",
        "/conversations/1/threads",
    ];
    for p in paths {
        get(&sim, &tok, p).await;
    }
    // Writes and the token endpoint are counted but not journaled.
    let r = send(
        &sim,
        &tok,
        "POST",
        "/customers",
        &json!({"firstName": "Ada", "emails": [{"type": "work", "value": "ada@example.com"}]}),
    )
    .await;
    assert!(r.status.is_success(), "{}", r.body);
    let c = client();
    let admin = format!("http://{}/_admin", sim.addr());
    let journal: Vec<String> = c
        .get(format!("{admin}/requests"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let want: Vec<String> = paths.iter().map(|p| format!("/v2{p}")).collect();
    assert_eq!(journal, want);
    assert_eq!(sim.request_journal(), want);
    let s = sim.request_stats();
    assert_eq!(
        journal.len() as u64,
        s.total - s.count("POST", "/v2/oauth2/token") - s.count("POST", "/v2/customers")
    );
    c.post(format!("{admin}/stats/reset")).send().await.unwrap();
    assert!(sim.request_journal().is_empty());
    get(&sim, &tok, "/tags").await;
    assert_eq!(sim.request_journal(), ["/v2/tags"]);
    sim.reset_request_stats();
    assert!(sim.request_journal().is_empty());
    sim.stop().await;
}

#[tokio::test]
async fn same_seed_same_account() {
    let a = start(cfg(50)).await;
    let b = start(cfg(50)).await;
    assert_eq!(a.ground_truth(), b.ground_truth());
    let c = start(SimConfig {
        seed: 12,
        ..cfg(50)
    })
    .await;
    assert_ne!(a.ground_truth(), c.ground_truth());
    a.stop().await;
    b.stop().await;
    c.stop().await;
}

#[tokio::test]
async fn scale_20k_conversations() {
    let sim = start(SimConfig {
        seed: 99,
        conversations: 20_000,
        ..SimConfig::default()
    })
    .await;
    let tok = token(&sim).await;
    let r = get(
        &sim,
        &tok,
        "/conversations?status=all&sortField=modifiedAt&sortOrder=asc&embed=threads",
    )
    .await;
    assert_eq!(r.body["page"]["totalElements"], 20_000);
    assert_eq!(r.body["page"]["totalPages"], 800);
    let mut url = r.body["_links"]["next"]["href"]
        .as_str()
        .unwrap()
        .to_string();
    for _ in 0..3 {
        let r = get(&sim, &tok, &url).await;
        assert_eq!(
            r.body["_embedded"]["conversations"]
                .as_array()
                .unwrap()
                .len(),
            25
        );
        url = r.body["_links"]["next"]["href"]
            .as_str()
            .unwrap()
            .to_string();
    }
    let last = get(
        &sim,
        &tok,
        "/conversations?status=all&sortField=modifiedAt&sortOrder=asc&page=800",
    )
    .await;
    assert!(last.body["_links"].get("next").is_none());
    let c = get(&sim, &tok, "/customers").await;
    assert_eq!(c.body["page"]["totalElements"], 12_000);
    sim.stop().await;
}

#[tokio::test]
async fn threads_page_by_50_newest_first() {
    let sim = start(cfg(10)).await;
    let tok = token(&sim).await;
    let mb = sim.ground_truth().tables["mailboxes"][0]["id"]
        .as_i64()
        .unwrap();
    let threads: Vec<Value> = (0..60)
        .map(|i| json!({"type": if i % 2 == 0 { "customer" } else { "reply" }, "text": format!("<p>message {i}</p>")}))
        .collect();
    let r = client()
        .post(format!("{}/conversations", sim.base_url()))
        .bearer_auth(&tok)
        .json(&json!({"subject": "Long one", "mailboxId": mb, "type": "email", "customer": {"email": "long@example.org"}, "threads": threads}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let id = r.headers()["resource-id"].to_str().unwrap().to_string();
    let p1 = get(&sim, &tok, &format!("/conversations/{id}/threads")).await;
    assert_eq!(
        p1.body["page"],
        json!({"size": 50, "totalElements": 60, "totalPages": 2, "number": 1})
    );
    assert_eq!(
        p1.body["_embedded"]["threads"].as_array().unwrap().len(),
        50
    );
    let all = walk(
        &sim,
        &tok,
        &format!("/conversations/{id}/threads"),
        "threads",
    )
    .await;
    assert_eq!(all.len(), 60);
    let ids = ids(&all);
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "newest first");
    assert_eq!(all[0]["body"], "<p>message 59</p>");
    assert!(all.iter().all(|t| t.get("conversationId").is_none()));
    sim.stop().await;
}

#[tokio::test]
async fn concurrent_pages_agree_with_sequential_ones() {
    let sim = start(cfg(200)).await;
    let tok = token(&sim).await;
    let path = |p: usize| {
        format!("/conversations?status=all&sortField=number&sortOrder=asc&embed=threads&page={p}")
    };
    let mut sequential = Vec::new();
    for p in 1..=8 {
        sequential.push(ids(
            get(&sim, &tok, &path(p)).await.body["_embedded"]["conversations"]
                .as_array()
                .unwrap(),
        ));
    }
    let mut handles = Vec::new();
    for p in 1..=8 {
        let (sim, tok, url) = (sim.clone(), tok.clone(), path(p));
        handles.push(tokio::spawn(async move { get(&sim, &tok, &url).await }));
    }
    for (i, h) in handles.into_iter().enumerate() {
        let r = h.await.unwrap();
        assert_eq!(
            ids(r.body["_embedded"]["conversations"].as_array().unwrap()),
            sequential[i]
        );
    }
    let all: Vec<i64> = sequential.concat();
    assert_eq!(all.len(), 200);
    assert_eq!(all.iter().collect::<HashSet<_>>().len(), 200);
    sim.stop().await;
}

fn snake(k: &str) -> String {
    let mut s = String::new();
    for c in k.chars() {
        if c.is_ascii_uppercase() {
            s.push('_');
            s.push(c.to_ascii_lowercase());
        } else {
            s.push(c);
        }
    }
    s
}

/// Shapes an API value like a contract column: objects keep exactly `keys` (snake_case,
/// null where absent); lists of objects likewise; anything else as is.
fn shape(v: Option<&Value>, keys: Option<&[&str]>) -> Value {
    let obj = |o: &serde_json::Map<String, Value>, keys: &[&str]| {
        let m: serde_json::Map<String, Value> = keys
            .iter()
            .map(|k| {
                (
                    k.to_string(),
                    o.iter()
                        .find(|(ak, _)| snake(ak) == *k)
                        .map(|(_, v)| v.clone())
                        .unwrap_or(Value::Null),
                )
            })
            .collect();
        Value::Object(m)
    };
    match (v, keys) {
        (None, _) => Value::Null,
        (Some(Value::Object(o)), Some(keys)) => obj(o, keys),
        (Some(Value::Array(a)), Some(keys)) => Value::Array(
            a.iter()
                .map(|x| x.as_object().map(|o| obj(o, keys)).unwrap_or(Value::Null))
                .collect(),
        ),
        (Some(v), _) => v.clone(),
    }
}

/// What an extractor would make of an API object: the contract's columns, snake_case.
fn as_row(api: &Value, table: &str) -> serde_json::Map<String, Value> {
    const P: &[&str] = &["id", "type", "first", "last", "email", "photo_url"];
    let nested = |col: &str| -> Option<&'static [&'static str]> {
        Some(match (table, col) {
            (_, "assignee" | "created_by" | "primary_customer" | "assigned_to" | "customer") => P,
            (_, "source") => &["type", "via"],
            (_, "action") => &["type", "text"],
            (_, "custom_fields") => &["id", "name", "value", "text"],
            (_, "customer_waiting_since") => &["time", "friendly", "latest_reply_from"],
            (_, "tags") => &["id", "color", "tag"],
            (_, "attachments") => &["id", "filename", "mime_type", "width", "height", "size"],
            (_, "address") => &["city", "state", "postal_code", "country", "lines"],
            (_, "emails" | "phones" | "chats" | "social_profiles") => &["id", "value", "type"],
            (_, "websites") => &["id", "value"],
            (_, "properties") => &["type", "slug", "name", "value", "text"],
            ("mailbox_fields", "options") => &["id", "order", "label"],
            _ => return None,
        })
    };
    let embedded = [
        "attachments",
        "address",
        "emails",
        "phones",
        "chats",
        "social_profiles",
        "websites",
        "properties",
    ];
    let mut row = serde_json::Map::new();
    for col in helpscout_sim::contract_columns(table) {
        let src = if embedded.contains(col) {
            &api["_embedded"]
        } else {
            api
        };
        let found = src
            .as_object()
            .and_then(|o| o.iter().find(|(k, _)| snake(k) == *col).map(|(_, v)| v));
        row.insert(col.to_string(), shape(found, nested(col)));
    }
    if table == "conversations" {
        let user = api["userUpdatedAt"].as_str().unwrap_or("");
        let wait = api["customerWaitingSince"]["time"].as_str().unwrap_or("");
        row.insert("updated_at".into(), json!(user.max(wait)));
    }
    row
}

#[tokio::test]
async fn served_objects_convert_to_exactly_the_truth_rows() {
    let sim = start(cfg(60)).await;
    let tok = token(&sim).await;
    let t = sim.ground_truth();
    let by_id = |table: &str| -> std::collections::BTreeMap<i64, serde_json::Map<String, Value>> {
        t.tables[table]
            .iter()
            .map(|r| (r["id"].as_i64().unwrap(), r.clone()))
            .collect()
    };
    let convs = by_id("conversations");
    let threads = by_id("conversation_threads");
    let customers = by_id("customers");
    let served = walk(&sim, &tok, "/conversations?status=all", "conversations").await;
    assert_eq!(served.len(), convs.len());
    let mut thread_count = 0;
    for c in &served {
        let id = c["id"].as_i64().unwrap();
        assert_eq!(as_row(c, "conversations"), convs[&id], "conversation {id}");
        for th in walk(
            &sim,
            &tok,
            &format!("/conversations/{id}/threads"),
            "threads",
        )
        .await
        {
            let mut row = as_row(&th, "conversation_threads");
            row.insert("conversation_id".into(), json!(id));
            assert_eq!(
                row,
                threads[&th["id"].as_i64().unwrap()],
                "thread {} of {id}",
                th["id"]
            );
            thread_count += 1;
        }
    }
    assert_eq!(thread_count, threads.len());
    let served = walk(&sim, &tok, "/customers", "customers").await;
    assert_eq!(served.len(), customers.len());
    for c in &served {
        let id = c["id"].as_i64().unwrap();
        assert_eq!(as_row(c, "customers"), customers[&id], "customer {id}");
    }
    // The small lists.
    for (path, key, table) in [
        ("/mailboxes", "mailboxes", "mailboxes"),
        ("/users", "users", "users"),
        ("/teams", "teams", "teams"),
        ("/workflows", "workflows", "workflows"),
    ] {
        let rows: Vec<_> = walk(&sim, &tok, path, key)
            .await
            .iter()
            .map(|x| as_row(x, table))
            .collect();
        let mut want = t.tables[table].clone();
        let mut got = rows;
        got.sort_by_key(|r| r["id"].as_i64());
        want.sort_by_key(|r| r["id"].as_i64());
        assert_eq!(got, want, "{table}");
    }
    for (sub, key, table) in [
        ("fields", "fields", "mailbox_fields"),
        ("folders", "folders", "mailbox_folders"),
    ] {
        let mut got = Vec::new();
        for m in &t.tables["mailboxes"] {
            for x in walk(&sim, &tok, &format!("/mailboxes/{}/{sub}", m["id"]), key).await {
                let mut row = as_row(&x, table);
                row.insert("mailbox_id".into(), m["id"].clone());
                got.push(row);
            }
        }
        got.sort_by_key(|r| r["id"].as_i64());
        assert_eq!(got, t.tables[table], "{table}");
    }
    // The report: `id` is the conversation, `threadid` the thread, `ratingId` the rating.
    let r = get(&sim, &tok, "/reports/happiness/ratings?start=2000-01-01T00:00:00Z&end=2030-01-01T00:00:00Z&sortOrder=ASC").await;
    let mut got: Vec<serde_json::Map<String, Value>> = r.body["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| {
            let mut m = serde_json::Map::new();
            for (k, v) in x.as_object().unwrap() {
                let col = match k.as_str() {
                    "id" => "conversation_id".to_string(),
                    "threadid" => "thread_id".to_string(),
                    "number" => continue,
                    other => snake(other),
                };
                m.insert(col, v.clone());
            }
            let word = ["great", "okay", "not_good"][m["rating_id"].as_u64().unwrap() as usize - 1];
            m.insert("rating".into(), json!(word));
            m
        })
        .collect();
    got.sort_by_key(|r| {
        (
            r["conversation_id"].as_i64(),
            r["rating_created_at"].as_str().map(str::to_string),
            r["rating_customer_id"].as_i64(),
        )
    });
    assert!(!got.is_empty());
    assert_eq!(got, t.tables["happiness_ratings_report"]);
    sim.stop().await;
}

#[tokio::test]
async fn customer_search_by_email_is_exact_case_insensitive_and_immediate() {
    let sim = start(cfg(40)).await;
    let tok = token(&sim).await;
    let search = |q: &str| url_with(&sim, "/customers", &[("query", q)]);
    let post_customer =
        |email: &str| json!({"firstName": "Jane", "emails": [{"type": "work", "value": email}]});
    let jane = resource_id(
        &send(
            &sim,
            &tok,
            "POST",
            "/customers",
            &post_customer("Jane@Example.com"),
        )
        .await,
    );
    // Near misses: the address as a prefix, as a suffix, and in another field.
    for email in [
        "jane@example.community",
        "xjane@example.com",
        "jane@example.com.au",
    ] {
        resource_id(&send(&sim, &tok, "POST", "/customers", &post_customer(email)).await);
    }
    for q in [r#"(email:"jane@example.com")"#, "(email:JANE@example.COM)"] {
        let r = get(&sim, &tok, &search(q)).await;
        assert_eq!(r.status, StatusCode::OK, "{q}: {}", r.body);
        assert!(
            r.headers["content-type"]
                .to_str()
                .unwrap()
                .starts_with("application/hal+json")
        );
        assert_eq!(
            r.body["page"],
            json!({"size": 50, "totalElements": 1, "totalPages": 1, "number": 1}),
            "{q}"
        );
        let found = r.body["_embedded"]["customers"].as_array().unwrap();
        assert_eq!(ids(found), vec![jane], "{q}");
        assert_eq!(
            found[0]["_embedded"]["emails"][0]["value"],
            "Jane@Example.com"
        );
        assert!(r.body["_links"]["self"]["href"].is_string());
    }
    // A customer created implicitly by a new conversation is found at once.
    let mb = mailbox_ids(&sim)[0];
    resource_id(
        &send(
            &sim,
            &tok,
            "POST",
            "/conversations",
            &new_conversation(mb, "Fresh.Person@example.org", "active", &[]),
        )
        .await,
    );
    let implicit = sim.created().conversations[0].customer_id;
    let r = get(&sim, &tok, &search(r#"(email:"fresh.person@example.org")"#)).await;
    assert_eq!(
        ids(r.body["_embedded"]["customers"].as_array().unwrap()),
        vec![implicit]
    );
    // A generated customer: exactly the customers holding that address, whatever its case.
    let truth = sim.ground_truth();
    let email = truth.tables["customers"]
        .iter()
        .find_map(|c| c["emails"][0]["value"].as_str())
        .unwrap()
        .to_lowercase();
    let expected: BTreeSet<i64> = truth.tables["customers"]
        .iter()
        .filter(|c| {
            c["emails"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["value"].as_str().unwrap().to_lowercase() == email)
        })
        .map(|c| c["id"].as_i64().unwrap())
        .collect();
    let r = get(
        &sim,
        &tok,
        &search(&format!("(email:\"{}\")", email.to_uppercase())),
    )
    .await;
    let got: BTreeSet<i64> = ids(r.body["_embedded"]["customers"].as_array().unwrap())
        .into_iter()
        .collect();
    assert_eq!(got, expected);
    // Unknown: an empty page, not an error.
    let r = get(&sim, &tok, &search(r#"(email:"nobody@example.net")"#)).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["page"]["totalElements"], 0);
    // Malformed queries are 400 vnd.error on the `query` parameter.
    for q in [
        r#"(email:"jane@example.com)"#,
        "(email:)",
        "(modifiedAt:[2024-01-01 TO *])",
    ] {
        let r = get(&sim, &tok, &search(q)).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{q}");
        assert_eq!(r.headers["content-type"], "application/vnd.error+json");
        assert_eq!(r.body["_embedded"]["errors"][0]["path"], "query");
        assert_eq!(r.body["_embedded"]["errors"][0]["rejectedValue"], q);
    }
    // Without a query the list is unchanged: every customer.
    let r = get(&sim, &tok, "/customers").await;
    assert_eq!(
        r.body["page"]["totalElements"],
        truth.tables["customers"].len()
    );
    sim.stop().await;
}

#[tokio::test]
async fn conversations_by_tag_are_found_at_once_in_any_status_and_mailbox() {
    let sim = start(cfg(30)).await;
    let tok = token(&sim).await;
    let mbs = mailbox_ids(&sim);
    assert_eq!(mbs.len(), 3);
    let marker = "push-7f3a9c";
    let mut marked = Vec::new();
    for (i, status) in ["active", "pending", "closed"].into_iter().enumerate() {
        let tags: &[&str] = if i == 0 { &[marker, "vip"] } else { &[marker] };
        let body = new_conversation(mbs[i], &format!("tag{i}@example.org"), status, tags);
        marked.push(resource_id(
            &send(&sim, &tok, "POST", "/conversations", &body).await,
        ));
    }
    let other = new_conversation(mbs[0], "tag9@example.org", "active", &["push-other"]);
    resource_id(&send(&sim, &tok, "POST", "/conversations", &other).await);
    let by_tag = |extra: &str| format!("/conversations?tag={marker}{extra}");
    let found = walk(&sim, &tok, &by_tag("&status=all"), "conversations").await;
    let found_ids: BTreeSet<i64> = ids(&found).into_iter().collect();
    assert_eq!(found_ids, marked.iter().copied().collect());
    for c in &found {
        assert!(
            c["tags"]
                .as_array()
                .unwrap()
                .iter()
                .any(|t| t["tag"] == marker),
            "{c}"
        );
    }
    // Other filters still apply: the default status is active; a mailbox narrows it.
    let r = get(&sim, &tok, &by_tag("")).await;
    assert_eq!(
        ids(r.body["_embedded"]["conversations"].as_array().unwrap()),
        vec![marked[0]]
    );
    let r = get(
        &sim,
        &tok,
        &by_tag(&format!("&status=all&mailbox={}", mbs[2])),
    )
    .await;
    assert_eq!(
        ids(r.body["_embedded"]["conversations"].as_array().unwrap()),
        vec![marked[2]]
    );
    let r = get(&sim, &tok, "/conversations?status=all&tag=push-unknown").await;
    assert_eq!(r.body["page"]["totalElements"], 0);
    // Simulated workflows toggle tags, but never a tag a client created: its marker keeps
    // meaning exactly the conversations it wrote.
    sim.mutate(&MutationPlan {
        seed: 5,
        workflow_changes: 600,
        ..MutationPlan::default()
    });
    let found = walk(&sim, &tok, &by_tag("&status=all"), "conversations").await;
    let found_ids: BTreeSet<i64> = ids(&found).into_iter().collect();
    assert_eq!(found_ids, marked.iter().copied().collect());
    assert_eq!(sim.created().conversations[0].tags, vec![marker, "vip"]);
    sim.stop().await;
}

#[tokio::test]
async fn status_and_delay_after_write_lose_the_answer_not_the_write() {
    let sim = start(cfg(20)).await;
    let tok = token(&sim).await;
    let mb = mailbox_ids(&sim)[0];
    let post_rule = |prefix: &str, kind: FaultKind| FaultRule {
        method: Some("POST".into()),
        ..FaultRule::new(Some(prefix), 0, 1, kind)
    };
    sim.set_faults(FaultPlan {
        rules: vec![
            post_rule("/v2/conversations", FaultKind::StatusAfterWrite(500)),
            post_rule("/v2/customers", FaultKind::StatusAfterWrite(503)),
        ],
    });
    let r = send(
        &sim,
        &tok,
        "POST",
        "/conversations",
        &new_conversation(mb, "lost@example.org", "active", &["lost-1"]),
    )
    .await;
    assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(r.body["message"], "Internal error");
    assert!(r.body["logRef"].is_string());
    assert!(!r.headers.contains_key("resource-id"));
    // The conversation exists: in the write log and through the API.
    let created = sim.created();
    assert_eq!(created.conversations.len(), 1);
    let r = get(&sim, &tok, "/conversations?status=all&tag=lost-1").await;
    assert_eq!(
        ids(r.body["_embedded"]["conversations"].as_array().unwrap()),
        vec![created.conversations[0].id]
    );
    let r = client()
        .post(format!("{}/customers", sim.base_url()))
        .bearer_auth(&tok)
        .json(&json!({"firstName": "Lost", "emails": [{"type": "work", "value": "lost.customer@example.org"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert!(r.text().await.unwrap().contains("503"));
    assert_eq!(
        sim.created().customers.len(),
        2,
        "the implicit customer and this one"
    );
    // Reads and other methods are untouched by a POST rule; the rule fired once.
    assert_eq!(
        get(&sim, &tok, "/conversations").await.status,
        StatusCode::OK
    );
    let again = send(
        &sim,
        &tok,
        "POST",
        "/customers",
        &json!({"firstName": "Again"}),
    )
    .await;
    resource_id(&again);

    // The same kinds in JSON, through the admin endpoint (gateway pages for 502-504).
    let admin = format!("http://{}/_admin", sim.addr());
    let r = client()
        .post(format!("{admin}/faults"))
        .json(&json!({"rules": [{"path_prefix": "/v2/customers", "method": "post", "kind": {"StatusAfterWrite": 504}}]}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    let r = send(
        &sim,
        &tok,
        "POST",
        "/customers",
        &json!({"firstName": "Gate"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::GATEWAY_TIMEOUT);
    assert_eq!(r.body, Value::Null, "an HTML page, not JSON");
    assert_eq!(
        sim.created()
            .customers
            .last()
            .unwrap()
            .first_name
            .as_deref(),
        Some("Gate")
    );

    // DelayAfter: the record exists while the answer is still held.
    sim.set_faults(FaultPlan {
        rules: vec![post_rule("/v2/customers", FaultKind::DelayAfter(2_000))],
    });
    let quick = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let before = sim.created().customers.len();
    let e = quick
        .post(format!("{}/customers", sim.base_url()))
        .bearer_auth(&tok)
        .json(&json!({"firstName": "Held", "emails": [{"type": "work", "value": "held@example.org"}]}))
        .send()
        .await
        .unwrap_err();
    assert!(e.is_timeout());
    let after = sim.created();
    assert_eq!(after.customers.len(), before + 1);
    assert_eq!(after.customers[before].emails, vec!["held@example.org"]);
    let r = get(
        &sim,
        &tok,
        &url_with(&sim, "/customers", &[("query", "(email:held@example.org)")]),
    )
    .await;
    assert_eq!(r.body["page"]["totalElements"], 1);
    // A patient client gets the real answer, late.
    sim.set_faults(FaultPlan {
        rules: vec![post_rule("/v2/customers", FaultKind::DelayAfter(400))],
    });
    let t0 = std::time::Instant::now();
    let r = send(
        &sim,
        &tok,
        "POST",
        "/customers",
        &json!({"firstName": "Late"}),
    )
    .await;
    assert!(t0.elapsed() >= Duration::from_millis(400));
    let id = resource_id(&r);
    assert_eq!(sim.created().customers.last().unwrap().id, id);

    let s = sim.request_stats();
    assert_eq!(s.count_status("POST", "/v2/conversations", 500), 1);
    assert_eq!(s.count_status("POST", "/v2/customers", 503), 1);
    assert_eq!(s.count_status("POST", "/v2/customers", 504), 1);
    assert_eq!(
        s.count_status("POST", "/v2/customers", 201),
        3,
        "again, the held one, late"
    );
    assert_eq!(s.faults_injected, 5);
    sim.stop().await;
}

#[tokio::test]
async fn created_records_every_write_and_admin_serves_it() {
    let sim = start(cfg(20)).await;
    let tok = token(&sim).await;
    let mb = mailbox_ids(&sim)[1];
    let t0 = sim.now();
    let first = send(
        &sim,
        &tok,
        "POST",
        "/conversations",
        &json!({
            "subject": "Imported", "mailboxId": mb, "type": "email", "status": "closed",
            "customer": {"email": "Imp.Orter@example.org", "firstName": "Imp", "lastName": "Orter"},
            "threads": [{"type": "customer", "customer": {"email": "Imp.Orter@example.org"}, "text": "<p>First</p>"},
                        {"type": "reply", "text": "Second"}],
            "tags": ["b-tag", "a-tag", "b-tag"], "imported": true, "autoReply": true,
            "createdAt": "2025-03-04T05:06:07Z"
        }),
    )
    .await;
    let conv = resource_id(&first);
    // A known customer by id: no new customer, its email recorded.
    let known = sim.ground_truth().tables["customers"]
        .iter()
        .find(|c| !c["emails"].as_array().unwrap().is_empty())
        .cloned()
        .unwrap();
    let known_id = known["id"].as_i64().unwrap();
    let second = send(
        &sim,
        &tok,
        "POST",
        "/conversations",
        &json!({
            "subject": "Known", "mailboxId": mb, "type": "email", "status": "active",
            "customer": {"id": known_id},
            "threads": [{"type": "customer", "text": "Hi again"}]
        }),
    )
    .await;
    let conv2 = resource_id(&second);
    let cust = resource_id(
        &send(&sim, &tok, "POST", "/customers", &json!({"firstName": "Cee", "emails": [{"type": "home", "value": "cee@example.org"}, {"type": "work", "value": "cee@work.example"}]})).await,
    );
    let put = json!({"firstName": "Cee", "lastName": "Put"});
    let patch = json!([{"op": "replace", "path": "/jobTitle", "value": "CTO"}]);
    assert_eq!(
        send(&sim, &tok, "PUT", &format!("/customers/{cust}"), &put)
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        send(&sim, &tok, "PATCH", &format!("/customers/{cust}"), &patch)
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    // Refused writes are not records.
    assert_eq!(
        send(
            &sim,
            &tok,
            "PUT",
            &format!("/customers/{cust}"),
            &json!({"firstName": ""})
        )
        .await
        .status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        send(&sim, &tok, "PATCH", "/customers/1", &patch)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        send(
            &sim,
            &tok,
            "POST",
            "/customers",
            &json!({"lastName": "x".repeat(41)})
        )
        .await
        .status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        send(
            &sim,
            &tok,
            "POST",
            "/conversations",
            &new_conversation(1, "a@b.co", "active", &[])
        )
        .await
        .status,
        StatusCode::NOT_FOUND
    );

    let c: Created = sim.created();
    assert_eq!(c.conversations.len(), 2);
    let a = &c.conversations[0];
    let served = get(&sim, &tok, &format!("/conversations/{conv}"))
        .await
        .body;
    assert_eq!((a.id, a.number), (conv, served["number"].as_i64().unwrap()));
    assert_eq!((a.mailbox_id, a.subject.as_str()), (mb, "Imported"));
    assert_eq!(a.customer_email.as_deref(), Some("Imp.Orter@example.org"));
    assert_eq!(
        a.customer_id,
        served["primaryCustomer"]["id"].as_i64().unwrap()
    );
    assert_eq!(a.tags, vec!["b-tag", "a-tag"]);
    assert!(a.imported && a.auto_reply);
    assert_eq!(a.text, "<p>First</p>");
    assert_eq!(a.created_at.to_rfc3339(), "2025-03-04T05:06:07+00:00");
    let b = &c.conversations[1];
    assert_eq!((b.id, b.customer_id), (conv2, known_id));
    assert_eq!(
        b.customer_email.as_deref(),
        known["emails"][0]["value"].as_str()
    );
    assert!(!b.imported && !b.auto_reply && b.tags.is_empty());
    assert!(b.created_at >= t0);
    assert_eq!(c.customers.len(), 2);
    assert_eq!(c.customers[0].id, a.customer_id);
    assert_eq!(c.customers[0].emails, vec!["Imp.Orter@example.org"]);
    assert_eq!(
        (
            c.customers[0].first_name.as_deref(),
            c.customers[0].last_name.as_deref()
        ),
        (Some("Imp"), Some("Orter"))
    );
    assert_eq!(c.customers[1].id, cust);
    assert_eq!(
        c.customers[1].emails,
        vec!["cee@example.org", "cee@work.example"]
    );
    assert_eq!(c.customers[1].last_name, None);
    assert_eq!(c.customer_updates.len(), 2);
    assert_eq!(
        (
            c.customer_updates[0].id,
            c.customer_updates[0].method.as_str()
        ),
        (cust, "PUT")
    );
    assert_eq!(c.customer_updates[0].body, put);
    assert_eq!(c.customer_updates[1].method, "PATCH");
    assert_eq!(
        c.customer_updates[1].body, patch,
        "a JSON Patch list stays a list"
    );

    // The admin endpoint serves the same, in the documented JSON shape.
    let admin: Value = client()
        .get(format!("http://{}/_admin/created", sim.addr()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(serde_json::from_value::<Created>(admin.clone()).unwrap(), c);
    let keys = |v: &Value| -> BTreeSet<String> { v.as_object().unwrap().keys().cloned().collect() };
    let set = |ks: &[&str]| -> BTreeSet<String> { ks.iter().map(|k| k.to_string()).collect() };
    assert_eq!(
        keys(&admin),
        set(&["conversations", "customers", "customer_updates"])
    );
    assert_eq!(
        keys(&admin["conversations"][0]),
        set(&[
            "id",
            "number",
            "mailbox_id",
            "subject",
            "customer_email",
            "customer_id",
            "tags",
            "imported",
            "auto_reply",
            "text",
            "created_at"
        ])
    );
    assert_eq!(
        admin["conversations"][0]["created_at"],
        "2025-03-04T05:06:07Z"
    );
    assert_eq!(admin["conversations"][0]["tags"], json!(["b-tag", "a-tag"]));
    assert_eq!(
        keys(&admin["customers"][0]),
        set(&["id", "emails", "first_name", "last_name", "created_at"])
    );
    assert_eq!(
        keys(&admin["customer_updates"][0]),
        set(&["id", "method", "body"])
    );
    // Mutations are not writes through the API.
    sim.mutate(&MutationPlan::busy_day(3));
    assert_eq!(sim.created(), c);
    sim.stop().await;
}

#[tokio::test]
async fn customer_writes_validate_name_sizes_and_emails() {
    let sim = start(cfg(20)).await;
    let tok = token(&sim).await;
    let bad = |body: Value, path: &'static str, rejected: Value| (body, path, rejected);
    let long = "n".repeat(41);
    for (body, path, rejected) in [
        bad(json!({"firstName": ""}), "firstName", json!("")),
        bad(json!({"firstName": long}), "firstName", json!(long)),
        bad(
            json!({"firstName": "Ok", "lastName": long}),
            "lastName",
            json!(long),
        ),
        bad(
            json!({"lastName": "", "emails": [{"type": "work", "value": "ok@example.org"}]}),
            "lastName",
            json!(""),
        ),
        bad(
            json!({"firstName": "Ok", "emails": [{"type": "work", "value": "not-an-email"}]}),
            "emails[0].value",
            json!("not-an-email"),
        ),
        bad(
            json!({"emails": [{"type": "work", "value": "ok@example.org"}, {"type": "home", "value": "a@b"}]}),
            "emails[1].value",
            json!("a@b"),
        ),
        bad(
            json!({"firstName": "Ok", "jobTitle": "j".repeat(61)}),
            "jobTitle",
            json!("j".repeat(61)),
        ),
    ] {
        let r = send(&sim, &tok, "POST", "/customers", &body).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(r.headers["content-type"], "application/vnd.error+json");
        assert_eq!(r.body["message"], "Bad request");
        let errors = r.body["_embedded"]["errors"].as_array().unwrap();
        assert_eq!(errors.len(), 1, "{body}: {errors:?}");
        let e = &errors[0];
        let keys: Vec<&str> = e.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(keys, ["message", "path", "rejectedValue", "source"]);
        assert_eq!(
            (
                e["path"].as_str().unwrap(),
                &e["rejectedValue"],
                e["source"].as_str().unwrap()
            ),
            (path, &rejected, "JSON")
        );
    }
    // Both names too long: both reported.
    let r = send(
        &sim,
        &tok,
        "POST",
        "/customers",
        &json!({"firstName": long, "lastName": long}),
    )
    .await;
    assert_eq!(r.body["_embedded"]["errors"].as_array().unwrap().len(), 2);
    assert!(
        sim.created().customers.is_empty(),
        "nothing refused was created"
    );
    // The bounds are characters, not bytes: 1 and 40 are fine.
    let forty = "é".repeat(40);
    let id = resource_id(
        &send(
            &sim,
            &tok,
            "POST",
            "/customers",
            &json!({"firstName": forty, "lastName": "Ø"}),
        )
        .await,
    );
    assert_eq!(
        get(&sim, &tok, &format!("/customers/{id}")).await.body["firstName"],
        forty
    );
    // Updates are held to the same sizes; null clears a name.
    let r = send(
        &sim,
        &tok,
        "PATCH",
        &format!("/customers/{id}"),
        &json!([{"op": "replace", "path": "/lastName", "value": long}]),
    )
    .await;
    assert_eq!(r.body["_embedded"]["errors"][0]["path"], "lastName");
    let r = send(
        &sim,
        &tok,
        "PATCH",
        &format!("/customers/{id}"),
        &json!([{"op": "remove", "path": "/lastName"}]),
    )
    .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    // Conversations: an unknown mailbox is 404, a malformed customer email 400.
    let mb = mailbox_ids(&sim)[0];
    let r = send(
        &sim,
        &tok,
        "POST",
        "/conversations",
        &new_conversation(mb + 999_999, "ok@example.org", "active", &[]),
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.body["message"], "Mailbox not found");
    let mut body = new_conversation(mb, "ok@example.org", "active", &[]);
    body["customer"]["email"] = json!("ok@@example.org");
    let r = send(&sim, &tok, "POST", "/conversations", &body).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.headers["content-type"], "application/vnd.error+json");
    let e = &r.body["_embedded"]["errors"][0];
    assert_eq!(
        (
            e["path"].as_str(),
            e["rejectedValue"].as_str(),
            e["source"].as_str()
        ),
        (
            Some("customer.email"),
            Some("ok@@example.org"),
            Some("JSON")
        )
    );
    assert!(sim.created().conversations.is_empty());
    sim.stop().await;
}
