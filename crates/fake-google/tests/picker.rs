//! Picker API session state machine and picker base URLs (spec §3, §6.3, §6.4).

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::client;
use fake_google::{FakeConfig, FakeGoogle, MediaItemId, PickerConfig, SessionState, scopes};
use serde_json::{Value, json};

struct Api {
    fake: FakeGoogle,
    token: String,
}

impl Api {
    async fn new(cfg: FakeConfig) -> Api {
        let fake = FakeGoogle::start(cfg).await.unwrap();
        let token = fake.issue_tokens(&[scopes::PICKER_READONLY]).access_token;
        Api { fake, token }
    }
    async fn send(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut rb = client()
            .request(method, format!("{}{path}", self.fake.picker_api_url()))
            .bearer_auth(&self.token);
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        let r = rb.send().await.unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap())
    }
    async fn create(&self, body: Value) -> (u16, Value) {
        self.send(reqwest::Method::POST, "/v1/sessions", Some(body))
            .await
    }
    async fn get(&self, id: &str) -> (u16, Value) {
        self.send(reqwest::Method::GET, &format!("/v1/sessions/{id}"), None)
            .await
    }
    async fn list(&self, query: &str) -> (u16, Value) {
        self.send(
            reqwest::Method::GET,
            &format!("/v1/mediaItems?{query}"),
            None,
        )
        .await
    }
}

#[tokio::test]
async fn session_lifecycle_pick_list_delete() {
    let api = Api::new(FakeConfig::with_items(60)).await;
    let (status, s) = api.create(json!({})).await;
    assert_eq!(status, 200, "{s}");
    let id = s["id"].as_str().unwrap().to_owned();
    assert_eq!(s["mediaItemsSet"], false);
    assert_eq!(
        s["pollingConfig"],
        json!({"pollInterval": "5s", "timeoutIn": "600s"})
    );
    assert_eq!(s["pickingConfig"]["maxItemCount"], "2000");
    assert!(
        s["pickerUri"]
            .as_str()
            .unwrap()
            .starts_with(&api.fake.base_url())
    );

    // timeoutIn counts down on the fake clock.
    api.fake.clock().advance(Duration::from_secs(100));
    assert_eq!(api.get(&id).await.1["pollingConfig"]["timeoutIn"], "500s");

    // Not picked yet: FAILED_PRECONDITION.
    let (status, body) = api.list(&format!("sessionId={id}")).await;
    assert_eq!(
        (status, body["error"]["status"].as_str()),
        (400, Some("FAILED_PRECONDITION"))
    );

    let chosen: Vec<MediaItemId> = api
        .fake
        .library()
        .items()
        .iter()
        .skip(3)
        .take(5)
        .map(|i| i.id.clone())
        .collect();
    api.fake.picker().pick(&id, &chosen).unwrap();
    let (_, s) = api.get(&id).await;
    assert_eq!(s["mediaItemsSet"], true);
    assert!(
        s.get("pollingConfig").is_none(),
        "pollingConfig only while not set (spec §3.2)"
    );

    let mut got = Vec::new();
    let mut q = format!("sessionId={id}&pageSize=2");
    loop {
        let (status, page) = api.list(&q).await;
        assert_eq!(status, 200, "{page}");
        for it in page["mediaItems"].as_array().unwrap() {
            assert!(
                it["mediaFile"]["mediaFileMetadata"]["width"].is_u64(),
                "integers in the Picker API"
            );
            got.push(it["id"].as_str().unwrap().to_owned());
        }
        match page["nextPageToken"].as_str() {
            Some(t) => q = format!("sessionId={id}&pageSize=2&pageToken={t}"),
            None => break,
        }
    }
    assert_eq!(
        got,
        chosen.iter().map(ToString::to_string).collect::<Vec<_>>()
    );

    let (status, body) = api
        .send(reqwest::Method::DELETE, &format!("/v1/sessions/{id}"), None)
        .await;
    assert_eq!((status, body), (200, json!({})));
    assert_eq!(api.get(&id).await.0, 404);
    assert_eq!(
        api.send(reqwest::Method::DELETE, &format!("/v1/sessions/{id}"), None)
            .await
            .0,
        404
    );
    assert_eq!(api.fake.picker().sessions()[0].state, SessionState::Deleted);
}

#[tokio::test]
async fn create_validation_and_coercion() {
    let api = Api::new(FakeConfig::with_items(30)).await;
    let (status, s) = api
        .create(json!({"pickingConfig": {"maxItemCount": "5000"}}))
        .await;
    assert_eq!(
        (status, s["pickingConfig"]["maxItemCount"].as_str()),
        (200, Some("2000"))
    );
    let (_, s) = api
        .create(json!({"pickingConfig": {"maxItemCount": 10}}))
        .await;
    assert_eq!(s["pickingConfig"]["maxItemCount"], "10");
    let id = s["id"].as_str().unwrap();
    let eleven: Vec<MediaItemId> = api
        .fake
        .library()
        .items()
        .iter()
        .take(11)
        .map(|i| i.id.clone())
        .collect();
    assert!(api.fake.picker().pick(id, &eleven).is_err());

    let bad = api
        .send(
            reqwest::Method::POST,
            "/v1/sessions?requestId=not-a-uuid",
            Some(json!({})),
        )
        .await;
    assert_eq!(bad.0, 400);
    let ok = api
        .send(
            reqwest::Method::POST,
            "/v1/sessions?requestId=3f2504e0-4f89-41d3-9a0c-0305e82c3301",
            Some(json!({})),
        )
        .await;
    assert_eq!(ok.0, 200);
}

#[tokio::test]
async fn list_parameter_rules() {
    let api = Api::new(FakeConfig::with_items(200)).await;
    let (_, s) = api.create(json!({})).await;
    let id = s["id"].as_str().unwrap().to_owned();
    let all: Vec<MediaItemId> = api
        .fake
        .library()
        .items()
        .iter()
        .take(120)
        .map(|i| i.id.clone())
        .collect();
    api.fake.picker().pick(&id, &all).unwrap();
    assert_eq!(api.list("").await.0, 400, "sessionId is required");
    assert_eq!(api.list("sessionId=nope").await.0, 404);
    assert_eq!(
        api.list(&format!("sessionId={id}&pageSize=-1")).await.0,
        400
    );
    let count = |v: &Value| v["mediaItems"].as_array().map_or(0, Vec::len);
    assert_eq!(count(&api.list(&format!("sessionId={id}")).await.1), 50);
    assert_eq!(
        count(&api.list(&format!("sessionId={id}&pageSize=0")).await.1),
        50
    );
    assert_eq!(
        count(&api.list(&format!("sessionId={id}&pageSize=500")).await.1),
        100
    );
}

#[tokio::test]
async fn timeout_and_expiry() {
    // Session TTL shorter than the access-token lifetime so one token covers the test.
    let cfg = FakeConfig {
        picker: PickerConfig {
            session_ttl: Duration::from_secs(1800),
            ..PickerConfig::default()
        },
        ..FakeConfig::with_items(30)
    };
    let api = Api::new(cfg).await;
    let (_, s) = api.create(json!({})).await;
    let id = s["id"].as_str().unwrap().to_owned();
    api.fake.picker().let_timeout(&id).unwrap();
    let (_, s) = api.get(&id).await;
    assert_eq!(s["mediaItemsSet"], false);
    assert_eq!(s["pollingConfig"]["timeoutIn"], "0s");
    assert!(api.fake.picker().pick(&id, &[]).is_err());

    let (_, s) = api.create(json!({})).await;
    let id2 = s["id"].as_str().unwrap().to_owned();
    api.fake.clock().advance(Duration::from_secs(1799));
    assert_eq!(api.get(&id2).await.0, 200);
    api.fake.clock().advance(Duration::from_secs(1));
    let (status, body) = api.get(&id2).await;
    assert_eq!(
        (status, body["error"]["status"].as_str()),
        (403, Some("PERMISSION_DENIED"))
    );
    assert_eq!(api.list(&format!("sessionId={id2}")).await.0, 403);
}

#[tokio::test]
async fn scope_live_session_cap_and_no_account() {
    let cfg = FakeConfig {
        picker: PickerConfig {
            max_live_sessions: 2,
            ..PickerConfig::default()
        },
        ..FakeConfig::with_items(30)
    };
    let api = Api::new(cfg).await;
    assert_eq!(api.create(json!({})).await.0, 200);
    let (_, s) = api.create(json!({})).await;
    let (status, body) = api.create(json!({})).await;
    assert_eq!(
        (status, body["error"]["status"].as_str()),
        (429, Some("RESOURCE_EXHAUSTED"))
    );
    // Deleted sessions do not count.
    api.send(
        reqwest::Method::DELETE,
        &format!("/v1/sessions/{}", s["id"].as_str().unwrap()),
        None,
    )
    .await;
    assert_eq!(api.create(json!({})).await.0, 200);

    let lib_only = api
        .fake
        .issue_tokens(&[scopes::LIBRARY_READONLY_APPCREATED])
        .access_token;
    let r = client()
        .post(format!("{}/v1/sessions", api.fake.picker_api_url()))
        .bearer_auth(lib_only)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);

    let cfg = FakeConfig {
        picker: PickerConfig {
            no_photos_account: true,
            ..PickerConfig::default()
        },
        ..FakeConfig::with_items(30)
    };
    let api = Api::new(cfg).await;
    let (status, body) = api.create(json!({})).await;
    assert_eq!(
        (status, body["error"]["status"].as_str()),
        (400, Some("FAILED_PRECONDITION"))
    );
}

#[tokio::test]
async fn picker_base_urls_need_bearer_with_picker_scope() {
    let cfg = FakeConfig {
        foreign_items: 2,
        ..FakeConfig::with_items(30)
    };
    let api = Api::new(cfg).await;
    let (_, s) = api.create(json!({})).await;
    let id = s["id"].as_str().unwrap().to_owned();
    // The Picker reaches items the Library API cannot see (another client's uploads).
    let foreign = api.fake.library().foreign_items()[0].clone();
    let photo = if foreign.is_video {
        api.fake.library().foreign_items()[1].clone()
    } else {
        foreign
    };
    api.fake
        .picker()
        .pick(&id, std::slice::from_ref(&photo.id))
        .unwrap();
    let (_, page) = api.list(&format!("sessionId={id}")).await;
    let item = &page["mediaItems"][0];
    assert_eq!(item["type"], if photo.is_video { "VIDEO" } else { "PHOTO" });
    let base = item["mediaFile"]["baseUrl"].as_str().unwrap();
    let params = if photo.is_video { "dv" } else { "d" };
    let url = format!("{base}={params}");
    assert_eq!(client().get(&url).send().await.unwrap().status(), 401);
    let lib_only = api
        .fake
        .issue_tokens(&[scopes::LIBRARY_READONLY_APPCREATED])
        .access_token;
    assert_eq!(
        client()
            .get(&url)
            .bearer_auth(lib_only)
            .send()
            .await
            .unwrap()
            .status(),
        403
    );
    let r = client()
        .get(&url)
        .bearer_auth(&api.token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.bytes().await.unwrap().to_vec(),
        api.fake
            .library()
            .download_bytes(&photo.id, params)
            .unwrap()
    );
}

#[tokio::test]
async fn picker_page_lets_a_person_pick_by_hand() {
    let api = Api::new(FakeConfig::with_items(30)).await;
    let (_, s) = api.create(json!({})).await;
    let uri = s["pickerUri"].as_str().unwrap().to_owned();
    let id = s["id"].as_str().unwrap().to_owned();
    assert_eq!(client().get(&uri).send().await.unwrap().status(), 200);
    let r = client()
        .get(format!("{uri}/pick?count=3"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let newest: Vec<MediaItemId> = api
        .fake
        .library()
        .items()
        .iter()
        .take(3)
        .map(|i| i.id.clone())
        .collect();
    assert_eq!(api.fake.picker().sessions()[0].picked, newest);
    assert_eq!(api.get(&id).await.1["mediaItemsSet"], true);
    // A second pick on a finished session is refused.
    assert_eq!(
        client()
            .get(format!("{uri}/pick?count=3"))
            .send()
            .await
            .unwrap()
            .status(),
        400
    );
}
