//! Fault injection and quotas (spec §6.1).

#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::{base_url_of, body, client, first_photo, get_json, read_token, status};
use fake_google::{EndpointKind, FakeConfig, FakeGoogle, Fault, Quotas, Schedule};
use serde_json::Value;

fn list_url(fake: &FakeGoogle) -> String {
    format!("{}/v1/mediaItems", fake.library_api_url())
}

#[tokio::test]
async fn next_n_and_every_nth() {
    let fake = FakeGoogle::start(FakeConfig::with_items(30)).await.unwrap();
    let token = read_token(&fake);
    let c = client();
    fake.faults().inject(
        EndpointKind::LibraryList,
        Fault::Unavailable,
        Schedule::Next(2),
    );
    let mut statuses = Vec::new();
    for _ in 0..4 {
        statuses.push(get_json(&c, &list_url(&fake), &token).await.0);
    }
    assert_eq!(statuses, [503, 503, 200, 200]);
    // Other endpoints are untouched.
    assert_eq!(
        get_json(&c, &format!("{}/v1/albums", fake.library_api_url()), &token)
            .await
            .0,
        200
    );

    fake.faults().clear();
    fake.faults().inject(
        EndpointKind::LibraryList,
        Fault::Internal,
        Schedule::EveryNth(3),
    );
    let mut statuses = Vec::new();
    for _ in 0..6 {
        let (s, body) = get_json(&c, &list_url(&fake), &token).await;
        if s == 500 {
            assert_eq!(body["error"]["status"], "INTERNAL");
        }
        statuses.push(s);
    }
    assert_eq!(statuses, [200, 200, 500, 200, 200, 500]);
    let stats = fake.stats();
    assert_eq!(stats.faults_fired, 4);
    assert_eq!(stats.responses_with(503), 2);
    assert_eq!(stats.responses_with(500), 2);
}

#[tokio::test]
async fn rate_limit_bodies_and_retry_after() {
    let fake = FakeGoogle::start(FakeConfig::with_items(30)).await.unwrap();
    let token = read_token(&fake);
    let c = client();
    let retry_after = Some(Duration::from_secs(30));
    fake.faults().inject(
        EndpointKind::LibraryList,
        Fault::RateLimited { retry_after },
        Schedule::Next(1),
    );
    fake.faults().inject(
        EndpointKind::LibrarySearch,
        Fault::DailyQuotaExceeded,
        Schedule::Next(1),
    );
    let r = c
        .get(list_url(&fake))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["retry-after"], "30");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["status"], "RESOURCE_EXHAUSTED");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("per minute")
    );
    let r = c
        .post(format!("{}/v1/mediaItems:search", fake.library_api_url()))
        .bearer_auth(&token)
        .json(&serde_json::json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    assert!(r.headers().get("retry-after").is_none());
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        body["error"]["message"],
        "Quota exceeded for quota metric 'All requests' and limit 'All requests per day' of service 'photoslibrary.googleapis.com' for consumer 'project_number:123456789012'."
    );
    assert_eq!(fake.stats().rate_limited, 2);
}

#[tokio::test]
async fn reset_mid_body_cuts_the_connection() {
    let fake = FakeGoogle::start(FakeConfig::with_items(30)).await.unwrap();
    let item = first_photo(&fake);
    let url = format!("{}=d", base_url_of(&fake, &item.id).await);
    let full = fake.library().download_bytes(&item.id, "d").unwrap();
    fake.faults().inject(
        EndpointKind::Media,
        Fault::ResetMidBody { after_bytes: 1000 },
        Schedule::Next(1),
    );
    let r = client().get(&url).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["content-length"],
        full.len().to_string().as_str()
    );
    assert!(r.bytes().await.is_err(), "the body must not complete");
    assert_eq!(fake.stats().media_bytes, 1000);
    // The next attempt succeeds.
    let body = body(&url).await;
    assert_eq!(body.to_vec(), full);
}

#[tokio::test]
async fn slow_body_arrives_intact_but_late() {
    let fake = FakeGoogle::start(FakeConfig::with_items(30)).await.unwrap();
    let token = read_token(&fake);
    // The delay is what is under test here, so wall-clock time is measured.
    let delay = Duration::from_millis(20);
    fake.faults().inject(
        EndpointKind::LibraryAlbumsList,
        Fault::SlowBody {
            chunk_bytes: 200,
            delay,
        },
        Schedule::Always,
    );
    let started = Instant::now();
    let r = client()
        .get(format!("{}/v1/albums", fake.library_api_url()))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    let body = r.bytes().await.unwrap();
    let chunks = body.len().div_ceil(200) as u32;
    assert!(chunks >= 3, "{}", body.len());
    assert!(started.elapsed() >= delay * (chunks - 1));
    let parsed: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        parsed["albums"].as_array().unwrap().len(),
        fake.library().albums().len()
    );
}

#[tokio::test]
async fn seeded_probability_is_reproducible() {
    let mut runs = Vec::new();
    for _ in 0..2 {
        let fake = FakeGoogle::start(FakeConfig::with_items(30)).await.unwrap();
        let token = read_token(&fake);
        fake.faults().inject(
            EndpointKind::LibraryList,
            Fault::Unavailable,
            Schedule::Probability { p: 0.3, seed: 5 },
        );
        let mut s = Vec::new();
        for _ in 0..40 {
            s.push(get_json(&client(), &list_url(&fake), &token).await.0);
        }
        runs.push(s);
    }
    assert_eq!(runs[0], runs[1]);
    let failures = runs[0].iter().filter(|s| **s == 503).count();
    assert!((4..=24).contains(&failures), "{failures}");
}

#[tokio::test]
async fn token_endpoint_faults_use_the_flat_oauth_shape() {
    let fake = FakeGoogle::start(FakeConfig::with_items(30)).await.unwrap();
    fake.faults().inject(
        EndpointKind::OAuthToken,
        Fault::Unavailable,
        Schedule::Next(1),
    );
    let r = client()
        .post(fake.token_url())
        .form(&[("grant_type", "refresh_token")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    let body: Value = r.json().await.unwrap();
    assert!(body["error"].is_string());
}

#[tokio::test]
async fn daily_quota_resets_at_the_next_pacific_day() {
    let cfg = FakeConfig {
        quotas: Quotas {
            library_requests_per_day: Some(3),
            ..Quotas::UNLIMITED
        },
        ..FakeConfig::with_items(30)
    };
    let fake = FakeGoogle::start(cfg).await.unwrap();
    let token = read_token(&fake);
    let c = client();
    let url = format!("{}/v1/albums", fake.library_api_url());
    for _ in 0..3 {
        assert_eq!(get_json(&c, &url, &token).await.0, 200);
    }
    let (status, body) = get_json(&c, &url, &token).await;
    assert_eq!(status, 429);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("per day")
    );
    // Clock starts 2026-06-01T12:00Z = 04:00 at UTC-8; the quota day ends 20 h later.
    fake.clock().advance(Duration::from_secs(19 * 3600));
    let token = read_token(&fake);
    assert_eq!(get_json(&c, &url, &token).await.0, 429);
    fake.clock().advance(Duration::from_secs(3600));
    let token = read_token(&fake);
    assert_eq!(get_json(&c, &url, &token).await.0, 200);
}

#[tokio::test]
async fn media_quota_applies_to_base_url_fetches() {
    let cfg = FakeConfig {
        quotas: Quotas {
            media_requests_per_day: Some(1),
            ..Quotas::UNLIMITED
        },
        ..FakeConfig::with_items(30)
    };
    let fake = FakeGoogle::start(cfg).await.unwrap();
    let item = first_photo(&fake);
    let url = format!("{}=d", base_url_of(&fake, &item.id).await);
    assert_eq!(status(&url).await, 200);
    assert_eq!(status(&url).await, 429);
}

#[tokio::test]
async fn delay_fault_and_request_log() {
    let fake = FakeGoogle::start(FakeConfig::with_items(30)).await.unwrap();
    let token = read_token(&fake);
    // The delay is what is under test here, so wall-clock time is measured.
    let delay = Duration::from_millis(50);
    fake.faults().inject(
        EndpointKind::LibraryAlbumsList,
        Fault::Delay(delay),
        Schedule::Next(1),
    );
    let url = format!("{}/v1/albums", fake.library_api_url());
    let started = Instant::now();
    assert_eq!(get_json(&client(), &url, &token).await.0, 200);
    assert!(started.elapsed() >= delay);
    fake.faults().inject(
        EndpointKind::LibraryAlbumsList,
        Fault::Internal,
        Schedule::Next(1),
    );
    assert_eq!(get_json(&client(), &url, &token).await.0, 500);
    let log = fake.request_log();
    let statuses: Vec<(EndpointKind, u16)> = log.iter().map(|r| (r.kind, r.status)).collect();
    assert_eq!(
        statuses,
        [
            (EndpointKind::LibraryAlbumsList, 200),
            (EndpointKind::LibraryAlbumsList, 500)
        ]
    );
    assert_eq!(log[0].path, "/library/v1/albums");
    assert!(log[1].at >= log[0].at);
    fake.reset_stats();
    assert!(fake.request_log().is_empty());
    assert_eq!(fake.stats().total_requests(), 0);
}
