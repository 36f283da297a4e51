//! OAuth: consent, authorization-code exchange with PKCE, refresh, revoke, Testing mode
//! (spec §4, §6.5).

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::client;
use fake_google::{
    CLIENT_ID, CLIENT_SECRET, ConsentBehaviour, FakeConfig, FakeGoogle, RemovedScopePolicy,
    pkce_s256, scopes,
};
use serde_json::{Value, json};

const REDIRECT: &str = "http://127.0.0.1:8765/callback";
const VERIFIER: &str = "a-very-long-verifier-string-with-enough-entropy-0123456789abcdef";

/// Runs the consent step and returns the parsed redirect query.
async fn consent(
    fake: &FakeGoogle,
    scope: &str,
    challenge: Option<&str>,
) -> (u16, Vec<(String, String)>) {
    let mut url = url::Url::parse(&fake.auth_url()).unwrap();
    {
        let mut q = url.query_pairs_mut();
        q.append_pair("client_id", CLIENT_ID)
            .append_pair("redirect_uri", REDIRECT)
            .append_pair("response_type", "code")
            .append_pair("scope", scope)
            .append_pair("state", "xyz");
        if let Some(c) = challenge {
            q.append_pair("code_challenge", c)
                .append_pair("code_challenge_method", "S256");
        }
    }
    let r = client().get(url).send().await.unwrap();
    let status = r.status().as_u16();
    let loc = r
        .headers()
        .get("location")
        .map(|l| l.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let pairs = url::Url::parse(&loc)
        .map(|u| u.query_pairs().into_owned().collect())
        .unwrap_or_default();
    (status, pairs)
}

fn param<'a>(pairs: &'a [(String, String)], k: &str) -> Option<&'a str> {
    pairs.iter().find(|(a, _)| a == k).map(|(_, v)| v.as_str())
}

async fn token(fake: &FakeGoogle, form: &[(&str, &str)]) -> (u16, Value) {
    let r = client()
        .post(fake.token_url())
        .form(form)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap())
}

async fn exchange(fake: &FakeGoogle, code: &str, verifier: &str) -> (u16, Value) {
    token(
        fake,
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("client_id", CLIENT_ID),
            ("client_secret", CLIENT_SECRET),
            ("redirect_uri", REDIRECT),
            ("code_verifier", verifier),
        ],
    )
    .await
}

#[tokio::test]
async fn pkce_code_flow_right_wrong_and_reused() {
    let fake = FakeGoogle::start(FakeConfig::with_items(30)).await.unwrap();
    let scope = format!(
        "{} {}",
        scopes::LIBRARY_READONLY_APPCREATED,
        scopes::PICKER_READONLY
    );
    let (status, q) = consent(&fake, &scope, Some(&pkce_s256(VERIFIER))).await;
    assert_eq!(status, 302);
    assert_eq!(param(&q, "state"), Some("xyz"));
    assert_eq!(param(&q, "scope"), Some(scope.as_str()));
    let code = param(&q, "code").unwrap().to_owned();

    // Wrong verifier: invalid_grant, and the code is not burnt by the failed attempt.
    let (status, body) = exchange(
        &fake,
        &code,
        "wrong-verifier-wrong-verifier-wrong-verifier-000",
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );

    let (status, body) = exchange(&fake, &code, VERIFIER).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3599);
    assert_eq!(body["scope"], scope.as_str());
    let access = body["access_token"].as_str().unwrap().to_owned();
    let refresh = body["refresh_token"].as_str().unwrap().to_owned();

    // Codes are single-use (spec §6.5).
    let (status, body) = exchange(&fake, &code, VERIFIER).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );

    // The access token works on the Library API.
    let r = client()
        .get(format!("{}/v1/albums", fake.library_api_url()))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // Refresh gives a new access token and no new refresh token.
    let form = [
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh.as_str()),
        ("client_id", CLIENT_ID),
        ("client_secret", CLIENT_SECRET),
    ];
    let (status, body) = token(&fake, &form).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.get("refresh_token").is_none());
    assert_ne!(body["access_token"].as_str().unwrap(), access);
}

#[tokio::test]
async fn redirect_uri_must_match_exactly_and_client_must_be_known() {
    let fake = FakeGoogle::start(FakeConfig::with_items(30)).await.unwrap();
    let (_, q) = consent(&fake, scopes::PICKER_READONLY, Some(&pkce_s256(VERIFIER))).await;
    let code = param(&q, "code").unwrap().to_owned();
    let mut form = vec![
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("client_id", CLIENT_ID),
        ("client_secret", CLIENT_SECRET),
        ("redirect_uri", "http://127.0.0.1:8765/callback/"),
        ("code_verifier", VERIFIER),
    ];
    let (status, body) = token(&fake, &form).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("redirect_uri_mismatch"))
    );
    form[4].1 = REDIRECT;
    form[3].1 = "not-the-secret";
    let (status, body) = token(&fake, &form).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_client"))
    );
    form[3].1 = CLIENT_SECRET;
    form[2].1 = "someone-else.apps.googleusercontent.com";
    let (status, body) = token(&fake, &form).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_client"))
    );
}

#[tokio::test]
async fn consent_deny_and_reduced_scope() {
    let fake = FakeGoogle::start(FakeConfig::with_items(30)).await.unwrap();
    fake.set_consent(ConsentBehaviour::Deny);
    let (status, q) = consent(&fake, scopes::PICKER_READONLY, None).await;
    assert_eq!(status, 302);
    assert_eq!(param(&q, "error"), Some("access_denied"));
    assert_eq!(param(&q, "state"), Some("xyz"));
    assert_eq!(param(&q, "code"), None);

    fake.set_consent(ConsentBehaviour::ReduceScope(vec![
        scopes::PICKER_READONLY.to_owned(),
    ]));
    let scope = format!(
        "{} {}",
        scopes::LIBRARY_READONLY_APPCREATED,
        scopes::PICKER_READONLY
    );
    let (_, q) = consent(&fake, &scope, None).await;
    assert_eq!(
        param(&q, "scope"),
        Some(scopes::LIBRARY_READONLY_APPCREATED)
    );
}

#[tokio::test]
async fn removed_scopes_rejected_at_consent_when_configured() {
    let cfg = FakeConfig {
        removed_scope_policy: RemovedScopePolicy::RejectAtConsent,
        ..FakeConfig::with_items(30)
    };
    let fake = FakeGoogle::start(cfg).await.unwrap();
    let (_, q) = consent(&fake, scopes::LIBRARY_READONLY_REMOVED, None).await;
    assert_eq!(param(&q, "error"), Some("invalid_scope"));
}

#[tokio::test]
async fn testing_mode_refresh_tokens_die_after_seven_days() {
    let cfg = FakeConfig {
        testing_mode: true,
        ..FakeConfig::with_items(30)
    };
    let fake = FakeGoogle::start(cfg).await.unwrap();
    let t = fake.issue_tokens(&[scopes::PICKER_READONLY]);
    let form = [
        ("grant_type", "refresh_token"),
        ("refresh_token", t.refresh_token.as_str()),
        ("client_id", CLIENT_ID),
        ("client_secret", CLIENT_SECRET),
    ];
    fake.clock().advance(Duration::from_secs(6 * 86_400));
    assert_eq!(token(&fake, &form).await.0, 200);
    fake.clock().advance(Duration::from_secs(86_400));
    let (status, body) = token(&fake, &form).await;
    assert_eq!(status, 400);
    assert_eq!(
        body,
        json!({"error": "invalid_grant", "error_description": "Token has been expired or revoked."})
    );
}

#[tokio::test]
async fn revoke_kills_refresh_and_access() {
    let fake = FakeGoogle::start(FakeConfig::with_items(30)).await.unwrap();
    let t = fake.issue_tokens(&[scopes::LIBRARY_READONLY_APPCREATED]);
    let r = client()
        .post(format!("{}?token={}", fake.revoke_url(), t.refresh_token))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let form = [
        ("grant_type", "refresh_token"),
        ("refresh_token", t.refresh_token.as_str()),
        ("client_id", CLIENT_ID),
        ("client_secret", CLIENT_SECRET),
    ];
    let (status, body) = token(&fake, &form).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    let r = client()
        .get(format!("{}/v1/mediaItems", fake.library_api_url()))
        .bearer_auth(&t.access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}

#[tokio::test]
async fn access_tokens_expire_on_the_fake_clock() {
    let fake = FakeGoogle::start(FakeConfig::with_items(30)).await.unwrap();
    let t = fake.issue_tokens(&[scopes::LIBRARY_READONLY_APPCREATED]);
    let url = format!("{}/v1/albums", fake.library_api_url());
    assert_eq!(
        client()
            .get(&url)
            .bearer_auth(&t.access_token)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    fake.clock().advance(Duration::from_secs(3600));
    let r = client()
        .get(&url)
        .bearer_auth(&t.access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(
        r.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Bearer")
    );
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["status"], "UNAUTHENTICATED");
}

#[tokio::test]
async fn client_secret_basic_is_accepted() {
    use base64::Engine as _;
    let fake = FakeGoogle::start(FakeConfig::with_items(30)).await.unwrap();
    let (_, q) = consent(&fake, scopes::PICKER_READONLY, None).await;
    let code = param(&q, "code").unwrap().to_owned();
    let basic =
        base64::engine::general_purpose::STANDARD.encode(format!("{CLIENT_ID}:{CLIENT_SECRET}"));
    let r = client()
        .post(fake.token_url())
        .header("authorization", format!("Basic {basic}"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", REDIRECT),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

async fn device_poll(fake: &FakeGoogle, device_code: &str) -> (u16, Value) {
    token(
        fake,
        &[
            ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
            ("device_code", device_code),
            ("client_id", CLIENT_ID),
            ("client_secret", CLIENT_SECRET),
        ],
    )
    .await
}

#[tokio::test]
async fn device_flow_pending_slow_down_approve() {
    let cfg = FakeConfig {
        device_flow: fake_google::DeviceFlowConfig {
            interval: Duration::ZERO,
            ..Default::default()
        },
        ..FakeConfig::with_items(30)
    };
    let fake = FakeGoogle::start(cfg).await.unwrap();
    let r = client()
        .post(fake.device_code_url())
        .form(&[
            ("client_id", CLIENT_ID),
            ("scope", scopes::LIBRARY_READONLY_APPCREATED),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        body["error"], "invalid_scope",
        "photoslibrary scopes are not allowed (spec §4.5)"
    );

    let r = client()
        .post(fake.device_code_url())
        .form(&[("client_id", CLIENT_ID), ("scope", scopes::PICKER_READONLY)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    let device_code = body["device_code"].as_str().unwrap().to_owned();
    let user_code = body["user_code"].as_str().unwrap().to_owned();
    assert!(
        body["verification_url"]
            .as_str()
            .unwrap()
            .starts_with(&fake.base_url())
    );

    let (status, body) = device_poll(&fake, &device_code).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (428, Some("authorization_pending"))
    );
    assert_eq!(fake.pending_device_codes(), vec![user_code.clone()]);
    assert!(fake.approve_device(&user_code));
    let (status, body) = device_poll(&fake, &device_code).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["scope"], scopes::PICKER_READONLY);
    // A device code is redeemed once.
    assert_eq!(device_poll(&fake, &device_code).await.0, 400);
}

#[tokio::test]
async fn device_flow_slow_down_deny_and_expiry() {
    let fake = FakeGoogle::start(FakeConfig::with_items(30)).await.unwrap();
    let start = || async {
        let r = client()
            .post(fake.device_code_url())
            .form(&[("client_id", CLIENT_ID), ("scope", scopes::PICKER_READONLY)])
            .send()
            .await
            .unwrap();
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["interval"], 5);
        (
            v["device_code"].as_str().unwrap().to_owned(),
            v["user_code"].as_str().unwrap().to_owned(),
        )
    };
    let (first, _) = start().await;
    assert_eq!(
        device_poll(&fake, &first).await.1["error"],
        "authorization_pending"
    );
    // Polling again at once, well inside the 5 s interval.
    assert_eq!(device_poll(&fake, &first).await.1["error"], "slow_down");

    fake.set_consent(ConsentBehaviour::Deny);
    let (device_code, user_code2) = start().await;
    assert!(fake.approve_device(&user_code2));
    assert_eq!(
        device_poll(&fake, &device_code).await.1["error"],
        "access_denied"
    );

    fake.clock().advance(Duration::from_secs(1800));
    assert!(fake.pending_device_codes().is_empty());
    assert_eq!(device_poll(&fake, &first).await.1["error"], "expired_token");
}

#[tokio::test]
async fn device_page_enters_a_code_by_hand() {
    let fake = FakeGoogle::start(FakeConfig::with_items(30)).await.unwrap();
    let r = client()
        .post(fake.device_code_url())
        .form(&[("client_id", CLIENT_ID), ("scope", scopes::PICKER_READONLY)])
        .send()
        .await
        .unwrap();
    let v: Value = r.json().await.unwrap();
    let page = v["verification_url"].as_str().unwrap();
    let user_code = v["user_code"].as_str().unwrap();
    let r = client()
        .get(format!("{page}?user_code={user_code}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(fake.pending_device_codes().is_empty());
    let r = client()
        .get(format!("{page}?user_code={user_code}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400, "codes are entered once");
}
