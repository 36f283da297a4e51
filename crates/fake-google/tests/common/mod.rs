//! Shared helpers for the integration tests: a plain reqwest client against the running fake.
#![allow(dead_code, clippy::unwrap_used)]

use fake_google::{FakeGoogle, ItemInfo, MediaItemId, scopes};
use serde_json::Value;

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

pub fn read_token(fake: &FakeGoogle) -> String {
    fake.issue_tokens(&[scopes::LIBRARY_READONLY_APPCREATED])
        .access_token
}

pub async fn get_json(c: &reqwest::Client, url: &str, token: &str) -> (u16, Value) {
    let r = c.get(url).bearer_auth(token).send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap())
}

pub async fn post_json(c: &reqwest::Client, url: &str, token: &str, body: &Value) -> (u16, Value) {
    let r = c
        .post(url)
        .bearer_auth(token)
        .json(body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap())
}

/// Pages through `mediaItems.list`, returning ids and the number of pages seen.
pub async fn list_all(
    fake: &FakeGoogle,
    token: &str,
    page_size: u32,
) -> (Vec<String>, usize, usize) {
    let c = client();
    let mut ids = Vec::new();
    let mut page_token: Option<String> = None;
    let mut pages = 0;
    let mut short_or_empty = 0;
    loop {
        let mut url = format!(
            "{}/v1/mediaItems?pageSize={page_size}",
            fake.library_api_url()
        );
        if let Some(t) = &page_token {
            url.push_str(&format!("&pageToken={t}"));
        }
        let (status, body) = get_json(&c, &url, token).await;
        assert_eq!(status, 200, "{body}");
        pages += 1;
        let items = body["mediaItems"].as_array().cloned().unwrap_or_default();
        if items.len() < page_size as usize {
            short_or_empty += 1;
        }
        ids.extend(items.iter().map(|i| i["id"].as_str().unwrap().to_owned()));
        match body.get("nextPageToken").and_then(Value::as_str) {
            Some(t) => page_token = Some(t.to_owned()),
            None => break,
        }
    }
    (ids, pages, short_or_empty)
}

/// The newest photo of the library.
pub fn first_photo(fake: &FakeGoogle) -> ItemInfo {
    fake.library()
        .items()
        .into_iter()
        .find(|i| !i.is_video)
        .unwrap()
}

/// A fresh base URL for `id`, from `mediaItems.get`.
pub async fn base_url_of(fake: &FakeGoogle, id: &MediaItemId) -> String {
    let token = read_token(fake);
    let url = format!("{}/v1/mediaItems/{id}", fake.library_api_url());
    let (status, v) = get_json(&client(), &url, &token).await;
    assert_eq!(status, 200, "{v}");
    v["baseUrl"].as_str().unwrap().to_owned()
}

/// Body of an unauthenticated GET (base URL fetches).
pub async fn body(url: &str) -> Vec<u8> {
    client()
        .get(url)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap()
        .to_vec()
}

/// Status of an unauthenticated GET (base URL fetches).
pub async fn status(url: &str) -> u16 {
    client().get(url).send().await.unwrap().status().as_u16()
}
