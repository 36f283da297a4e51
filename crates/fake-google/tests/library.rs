//! Library API: paging, search validation, get/batchGet, albums, scopes (spec §6.1, §6.2).

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashSet;

use chrono::{Datelike, TimeZone, Utc};
use common::{client, get_json, list_all, post_json, read_token};
use fake_google::{FakeConfig, FakeGoogle, MissingItemResponse, NewItem, PageQuirks, scopes};
use serde_json::{Value, json};

#[tokio::test]
async fn list_with_quirks_returns_every_visible_item_exactly_once() {
    let fake = FakeGoogle::start(FakeConfig::with_items(400))
        .await
        .unwrap();
    let token = read_token(&fake);
    let (ids, pages, short_or_empty) = list_all(&fake, &token, 10).await;
    let expected: Vec<String> = fake
        .library()
        .items()
        .into_iter()
        .filter(|i| !i.archived)
        .map(|i| i.id.to_string())
        .collect();
    // Same items, same (newest-first) order, no duplicates.
    assert_eq!(ids, expected);
    assert!(pages > expected.len() / 10, "quirks add pages: {pages}");
    assert!(
        short_or_empty >= 3,
        "short or empty pages with a nextPageToken must occur"
    );
}

#[tokio::test]
async fn empty_page_is_an_empty_object_with_a_token() {
    let cfg = FakeConfig {
        page_quirks: PageQuirks {
            short_page_every: 0,
            empty_page_every: 2,
        },
        ..FakeConfig::with_items(60)
    };
    let fake = FakeGoogle::start(cfg).await.unwrap();
    let token = read_token(&fake);
    let c = client();
    let (_, first) = get_json(
        &c,
        &format!("{}/v1/mediaItems?pageSize=5", fake.library_api_url()),
        &token,
    )
    .await;
    let next = first["nextPageToken"].as_str().unwrap();
    let (status, second) = get_json(
        &c,
        &format!(
            "{}/v1/mediaItems?pageSize=5&pageToken={next}",
            fake.library_api_url()
        ),
        &token,
    )
    .await;
    assert_eq!(status, 200);
    // Proto3 JSON: no `mediaItems: []` (spec §6.1).
    assert_eq!(
        second.as_object().unwrap().keys().collect::<Vec<_>>(),
        ["nextPageToken"]
    );
}

#[tokio::test]
async fn page_tokens_survive_additions_without_duplicates() {
    let cfg = FakeConfig {
        page_quirks: PageQuirks::NONE,
        ..FakeConfig::with_items(100)
    };
    let fake = FakeGoogle::start(cfg).await.unwrap();
    let token = read_token(&fake);
    let c = client();
    let url = format!("{}/v1/mediaItems?pageSize=20", fake.library_api_url());
    let (_, first) = get_json(&c, &url, &token).await;
    let mut seen: Vec<String> = first["mediaItems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_owned())
        .collect();
    // A new photo taken now lands at the top, an old upload lands in the middle.
    let newest = fake.clock().now();
    let added = fake
        .add_items(&[
            NewItem::photo("new.jpg", newest),
            NewItem::photo(
                "old-upload.jpg",
                Utc.with_ymd_and_hms(2000, 1, 1, 0, 0, 0).unwrap(),
            ),
        ])
        .unwrap();
    let mut next = first["nextPageToken"].as_str().map(str::to_owned);
    while let Some(t) = next {
        let (status, page) = get_json(&c, &format!("{url}&pageToken={t}"), &token).await;
        assert_eq!(status, 200);
        seen.extend(
            page["mediaItems"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| i["id"].as_str().unwrap().to_owned()),
        );
        next = page["nextPageToken"].as_str().map(str::to_owned);
    }
    let unique: HashSet<&String> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len(), "no duplicates");
    assert!(
        !seen.contains(&added[0].to_string()),
        "item above the cursor is not revisited"
    );
    assert!(
        seen.contains(&added[1].to_string()),
        "item below the cursor appears"
    );
}

#[tokio::test]
async fn garbled_or_foreign_page_tokens_are_rejected() {
    let fake = FakeGoogle::start(FakeConfig::with_items(100))
        .await
        .unwrap();
    let other = FakeGoogle::start(FakeConfig::with_items(100))
        .await
        .unwrap();
    let token = read_token(&fake);
    let c = client();
    let (_, first) = get_json(
        &c,
        &format!("{}/v1/mediaItems", other.library_api_url()),
        &read_token(&other),
    )
    .await;
    let foreign = first["nextPageToken"].as_str().unwrap();
    for bad in [foreign, "garbage", "AAAA"] {
        let (status, body) = get_json(
            &c,
            &format!("{}/v1/mediaItems?pageToken={bad}", fake.library_api_url()),
            &token,
        )
        .await;
        assert_eq!(
            (status, body["error"]["status"].as_str()),
            (400, Some("INVALID_ARGUMENT")),
            "{bad}"
        );
    }
    // A token from `list` is not valid for a search.
    let (_, first) = get_json(
        &c,
        &format!("{}/v1/mediaItems", fake.library_api_url()),
        &token,
    )
    .await;
    let list_token = first["nextPageToken"].as_str().unwrap();
    let (status, _) = post_json(
        &c,
        &format!("{}/v1/mediaItems:search", fake.library_api_url()),
        &token,
        &json!({"pageToken": list_token}),
    )
    .await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn page_size_rules() {
    let cfg = FakeConfig {
        page_quirks: PageQuirks::NONE,
        ..FakeConfig::with_items(300)
    };
    let fake = FakeGoogle::start(cfg).await.unwrap();
    let token = read_token(&fake);
    let c = client();
    let base = format!("{}/v1/mediaItems", fake.library_api_url());
    let count = |v: &Value| v["mediaItems"].as_array().map_or(0, Vec::len);
    let (_, v) = get_json(&c, &base, &token).await;
    assert_eq!(count(&v), 25);
    let (_, v) = get_json(&c, &format!("{base}?pageSize=1000"), &token).await;
    assert_eq!(count(&v), 100);
    for bad in ["-1", "abc", "1.5"] {
        let (status, _) = get_json(&c, &format!("{base}?pageSize={bad}"), &token).await;
        assert_eq!(status, 400, "{bad}");
    }
    let (status, _) = get_json(&c, &format!("{base}?bogus=1"), &token).await;
    assert_eq!(status, 400);
    // System parameters are accepted.
    let (status, _) = get_json(
        &c,
        &format!("{base}?prettyPrint=false&alt=json&fields=mediaItems"),
        &token,
    )
    .await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn media_item_json_follows_proto3_conventions() {
    let fake = FakeGoogle::start(FakeConfig::with_items(50)).await.unwrap();
    let token = read_token(&fake);
    let item = fake
        .library()
        .items()
        .into_iter()
        .find(|i| !i.is_video)
        .unwrap();
    let (status, v) = get_json(
        &client(),
        &format!("{}/v1/mediaItems/{}", fake.library_api_url(), item.id),
        &token,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(v["id"], item.id.as_str());
    assert_eq!(v["filename"], item.filename.as_str());
    assert_eq!(v["mediaMetadata"]["width"], item.width.to_string());
    assert_eq!(v["mediaMetadata"]["height"], item.height.to_string());
    let ct = v["mediaMetadata"]["creationTime"].as_str().unwrap();
    assert!(ct.ends_with('Z'), "{ct}");
    assert_eq!(
        chrono::DateTime::parse_from_rfc3339(ct).unwrap(),
        item.creation_time
    );
    assert!(v["mediaMetadata"]["photo"].is_object());
    assert!(v["baseUrl"].as_str().unwrap().starts_with(&fake.base_url()));
    assert!(!v["baseUrl"].as_str().unwrap().contains('='));
}

#[tokio::test]
async fn removed_scope_gets_the_exact_403_body() {
    let fake = FakeGoogle::start(FakeConfig::with_items(30)).await.unwrap();
    let t = fake.issue_tokens(&[
        scopes::LIBRARY_READONLY_REMOVED,
        scopes::LIBRARY_SHARING_REMOVED,
    ]);
    let r = client()
        .post(format!("{}/v1/mediaItems:search", fake.library_api_url()))
        .bearer_auth(&t.access_token)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(
        r.headers()["content-type"],
        "application/json; charset=UTF-8"
    );
    let body: Value = r.json().await.unwrap();
    // Body as observed from Google (spec §1.5, alangrainger/obsidian-google-photos#60).
    assert_eq!(
        body,
        json!({"error": {
            "code": 403,
            "message": "Request had insufficient authentication scopes.",
            "status": "PERMISSION_DENIED",
            "details": [{
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": "ACCESS_TOKEN_SCOPE_INSUFFICIENT",
                "domain": "googleapis.com",
                "metadata": {
                    "service": "photoslibrary.googleapis.com",
                    "method": "google.photos.library.v1.PhotosLibraryService.SearchMediaItems"
                }
            }]
        }})
    );
}

#[tokio::test]
async fn missing_and_invalid_tokens_get_401() {
    let fake = FakeGoogle::start(FakeConfig::with_items(30)).await.unwrap();
    let url = format!("{}/v1/mediaItems", fake.library_api_url());
    let r = client().get(&url).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.headers().contains_key("www-authenticate"));
    let r = client()
        .get(&url)
        .bearer_auth("ya29.nonsense")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], 401);
    assert_eq!(body["error"]["status"], "UNAUTHENTICATED");
}

#[tokio::test]
async fn batch_get_validation_and_partial_failure() {
    let fake = FakeGoogle::start(FakeConfig::with_items(120))
        .await
        .unwrap();
    let token = read_token(&fake);
    let c = client();
    let ids: Vec<String> = fake
        .library()
        .items()
        .iter()
        .map(|i| i.id.to_string())
        .collect();
    let url = |ids: &[&str]| {
        let q: Vec<String> = ids.iter().map(|i| format!("mediaItemIds={i}")).collect();
        format!(
            "{}/v1/mediaItems:batchGet?{}",
            fake.library_api_url(),
            q.join("&")
        )
    };
    // Empty, 51 and duplicates are 400s.
    assert_eq!(
        get_json(
            &c,
            &format!("{}/v1/mediaItems:batchGet", fake.library_api_url()),
            &token
        )
        .await
        .0,
        400
    );
    let many: Vec<&str> = ids.iter().take(51).map(String::as_str).collect();
    assert_eq!(get_json(&c, &url(&many), &token).await.0, 400);
    assert_eq!(get_json(&c, &url(&many[..50]), &token).await.0, 200);
    assert_eq!(
        get_json(&c, &url(&[&ids[0], &ids[1], &ids[0]]), &token)
            .await
            .0,
        400
    );

    let (status, body) = get_json(&c, &url(&[&ids[3], "bogus-id", &ids[1]]), &token).await;
    assert_eq!(status, 200);
    let results = body["mediaItemResults"].as_array().unwrap();
    assert_eq!(results.len(), 3);
    assert_eq!(results[0]["mediaItem"]["id"], ids[3].as_str());
    assert_eq!(results[1]["status"]["code"], 3);
    assert!(results[1].get("mediaItem").is_none());
    assert_eq!(results[2]["mediaItem"]["id"], ids[1].as_str());
}

#[tokio::test]
async fn get_unknown_removed_or_foreign_item() {
    let cfg = FakeConfig {
        foreign_items: 3,
        ..FakeConfig::with_items(30)
    };
    let fake = FakeGoogle::start(cfg).await.unwrap();
    let token = read_token(&fake);
    let c = client();
    let get = |id: String| format!("{}/v1/mediaItems/{id}", fake.library_api_url());
    let (status, body) = get_json(&c, &get("nope".into()), &token).await;
    assert_eq!(
        (status, body["error"]["message"].as_str()),
        (400, Some("Invalid media item id."))
    );
    let foreign = fake.library().foreign_items()[0].id.to_string();
    assert_eq!(get_json(&c, &get(foreign), &token).await.0, 400);
    let victim = fake.library().items()[5].id.clone();
    assert_eq!(get_json(&c, &get(victim.to_string()), &token).await.0, 200);
    assert!(fake.remove_item(&victim));
    assert_eq!(get_json(&c, &get(victim.to_string()), &token).await.0, 400);

    let cfg = FakeConfig {
        missing_item: MissingItemResponse::NotFound,
        ..FakeConfig::with_items(30)
    };
    let fake = FakeGoogle::start(cfg).await.unwrap();
    let token = read_token(&fake);
    let (status, body) = get_json(
        &c,
        &format!("{}/v1/mediaItems/nope", fake.library_api_url()),
        &token,
    )
    .await;
    assert_eq!(
        (status, body["error"]["status"].as_str()),
        (404, Some("NOT_FOUND"))
    );
}

#[tokio::test]
async fn search_validation_rules() {
    let fake = FakeGoogle::start(FakeConfig::with_items(60)).await.unwrap();
    let token = read_token(&fake);
    let c = client();
    let url = format!("{}/v1/mediaItems:search", fake.library_api_url());
    let album = fake.library().albums()[0].id.to_string();
    let date = json!({"year": 2024, "month": 5, "day": 0});
    let bad = [
        json!({"albumId": album, "filters": {"includeArchivedMedia": true}}),
        json!({"filters": {"mediaTypeFilter": {"mediaTypes": ["PHOTO"]}}, "orderBy": "MediaMetadata.creation_time"}),
        json!({"filters": {"dateFilter": {"dates": [date]}, "featureFilter": {"includedFeatures": ["FAVORITES"]}}, "orderBy": "MediaMetadata.creation_time"}),
        json!({"filters": {"dateFilter": {"dates": [date]}}, "orderBy": "filename"}),
        json!({"filters": {"mediaTypeFilter": {"mediaTypes": ["PHOTO", "VIDEO"]}}}),
        json!({"filters": {"dateFilter": {"dates": [date, date, date, date, date, date]}}}),
        json!({"filters": {"contentFilter": {"includedContentCategories": ["PETS"], "excludedContentCategories": ["PETS"]}}}),
        json!({"filters": {"contentFilter": {"includedContentCategories": ["NONE","LANDSCAPES","RECEIPTS","CITYSCAPES","LANDMARKS","SELFIES","PEOPLE","PETS","WEDDINGS","BIRTHDAYS","DOCUMENTS"]}}}),
        json!({"filters": {"dateFilter": {"dates": [{"year": 0, "month": 0, "day": 0}]}}}),
        json!({"filters": {"dateFilter": {"dates": [{"year": 2020, "month": 0, "day": 5}]}}}),
        json!({"filters": {"dateFilter": {"dates": [{"year": 0, "month": 5, "day": 0}]}}}),
        json!({"filters": {"bogus": 1}}),
        json!({"albumId": "not-an-album"}),
        json!({"pageSize": -3}),
    ];
    for body in bad {
        let (status, resp) = post_json(&c, &url, &token, &body).await;
        assert_eq!(status, 400, "{body} -> {resp}");
        assert_eq!(resp["error"]["status"], "INVALID_ARGUMENT");
    }
    let ok = [
        json!({}),
        json!({"pageSize": "7"}),
        json!({"filters": {"dateFilter": {"dates": [date]}}, "orderBy": "MediaMetadata.creation_time desc"}),
        json!({"filters": {"dateFilter": {"dates": [{"year": 0, "month": 12, "day": 25}]}, "includeArchivedMedia": true}, "orderBy": "MediaMetadata.creation_time"}),
        json!({"filters": {"dateFilter": {"ranges": [{"startDate": {"year": 2022, "month": 1, "day": 1}, "endDate": {"year": 2022, "month": 12, "day": 0}}]}}}),
    ];
    for body in ok {
        let (status, resp) = post_json(&c, &url, &token, &body).await;
        assert_eq!(status, 200, "{body} -> {resp}");
    }
}

async fn search_all(fake: &FakeGoogle, token: &str, mut body: Value) -> Vec<Value> {
    let c = client();
    let url = format!("{}/v1/mediaItems:search", fake.library_api_url());
    let mut out = Vec::new();
    loop {
        let (status, page) = post_json(&c, &url, token, &body).await;
        assert_eq!(status, 200, "{page}");
        out.extend(page["mediaItems"].as_array().cloned().unwrap_or_default());
        match page["nextPageToken"].as_str() {
            Some(t) => body["pageToken"] = json!(t),
            None => return out,
        }
    }
}

#[tokio::test]
async fn search_filters_select_the_right_items() {
    let fake = FakeGoogle::start(FakeConfig::with_items(300))
        .await
        .unwrap();
    let token = read_token(&fake);
    let lib = fake.library().items();
    let ids = |v: &[Value]| {
        v.iter()
            .map(|i| i["id"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    let expect = |f: &dyn Fn(&fake_google::ItemInfo) -> bool| {
        lib.iter()
            .filter(|i| f(i))
            .map(|i| i.id.to_string())
            .collect::<Vec<_>>()
    };

    // No filters: everything not archived, newest first.
    assert_eq!(
        ids(&search_all(&fake, &token, json!({"pageSize": 50})).await),
        expect(&|i| !i.archived)
    );
    // Archived included on request.
    let with_archived = json!({"filters": {"includeArchivedMedia": true}});
    assert_eq!(
        ids(&search_all(&fake, &token, with_archived).await),
        expect(&|_| true)
    );
    // Favourites.
    let fav = json!({"filters": {"featureFilter": {"includedFeatures": ["FAVORITES"]}}});
    let favs = expect(&|i| i.favorite && !i.archived);
    assert!(!favs.is_empty());
    assert_eq!(ids(&search_all(&fake, &token, fav).await), favs);
    // Videos only.
    let vids = json!({"filters": {"mediaTypeFilter": {"mediaTypes": ["VIDEO"]}}});
    assert_eq!(
        ids(&search_all(&fake, &token, vids).await),
        expect(&|i| i.is_video && !i.archived)
    );
    // One year, oldest first.
    let year = lib[lib.len() / 2].creation_time.year();
    let body = json!({"filters": {"dateFilter": {"dates": [{"year": year}]}}, "orderBy": "MediaMetadata.creation_time"});
    let got = search_all(&fake, &token, body).await;
    let mut want = expect(&|i| i.creation_time.year() == year && !i.archived);
    want.reverse();
    assert!(!want.is_empty());
    // Ties in creation time may order differently; compare as sets plus monotonic time.
    let got_ids = ids(&got);
    assert_eq!(
        got_ids.iter().collect::<HashSet<_>>(),
        want.iter().collect::<HashSet<_>>()
    );
    let times: Vec<&str> = got
        .iter()
        .map(|i| i["mediaMetadata"]["creationTime"].as_str().unwrap())
        .collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]));
}

#[tokio::test]
async fn albums_list_get_and_album_search() {
    let cfg = FakeConfig {
        albums: 25,
        ..FakeConfig::with_items(300)
    };
    let fake = FakeGoogle::start(cfg).await.unwrap();
    let token = read_token(&fake);
    let c = client();
    let mut got = Vec::new();
    let mut next: Option<String> = None;
    loop {
        let mut url = format!("{}/v1/albums?pageSize=50", fake.library_api_url());
        if let Some(t) = &next {
            url.push_str(&format!("&pageToken={t}"));
        }
        let (status, page) = get_json(&c, &url, &token).await;
        assert_eq!(status, 200);
        got.extend(page["albums"].as_array().cloned().unwrap_or_default());
        next = page["nextPageToken"].as_str().map(str::to_owned);
        if next.is_none() {
            break;
        }
    }
    let albums = fake.library().albums();
    assert_eq!(got.len(), albums.len());
    for (j, a) in got.iter().zip(&albums) {
        assert_eq!(j["id"], a.id.as_str());
        assert_eq!(j["title"], a.title.as_str());
        assert_eq!(j["mediaItemsCount"], a.items.len().to_string());
        assert!(j.get("shareInfo").is_none());
        assert_eq!(j.get("coverPhotoBaseUrl").is_some(), !a.items.is_empty());
    }
    let (status, body) = get_json(
        &c,
        &format!("{}/v1/albums/nope", fake.library_api_url()),
        &token,
    )
    .await;
    assert_eq!(
        (status, body["error"]["message"].as_str()),
        (400, Some("Invalid album ID."))
    );

    let album = albums.iter().max_by_key(|a| a.items.len()).unwrap();
    let items = search_all(
        &fake,
        &token,
        json!({"albumId": album.id.as_str(), "pageSize": 7}),
    )
    .await;
    let ids: Vec<String> = items
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_owned())
        .collect();
    let want: Vec<String> = album.items.iter().map(ToString::to_string).collect();
    assert_eq!(ids, want);
    assert!(
        items[0]["productUrl"]
            .as_str()
            .unwrap()
            .contains(album.id.as_str())
    );

    let r = c
        .get(format!("{}/v1/sharedAlbums", fake.library_api_url()))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
}

#[tokio::test]
async fn timestamps_carry_fractional_seconds_only_when_present() {
    let fake = FakeGoogle::start(FakeConfig::with_items(100))
        .await
        .unwrap();
    let token = read_token(&fake);
    let (ids, _, _) = list_all(&fake, &token, 100).await;
    assert!(!ids.is_empty());
    let c = client();
    let mut with_fraction = 0;
    for item in fake.library().items().iter().take(40) {
        let (_, v) = get_json(
            &c,
            &format!("{}/v1/mediaItems/{}", fake.library_api_url(), item.id),
            &token,
        )
        .await;
        let ct = v["mediaMetadata"]["creationTime"]
            .as_str()
            .unwrap()
            .to_owned();
        // RFC 3339 with Z and 0 or 3 fractional digits (spec §6.1).
        let frac = ct
            .split_once('.')
            .map(|(_, f)| f.trim_end_matches('Z').len());
        assert!(matches!(frac, None | Some(3)), "{ct}");
        with_fraction += usize::from(frac.is_some());
        assert_eq!(
            chrono::DateTime::parse_from_rfc3339(&ct).unwrap(),
            item.creation_time
        );
    }
    assert!(with_fraction > 0);
}

#[tokio::test]
async fn write_scopes_do_not_authorise_reads() {
    let fake = FakeGoogle::start(FakeConfig::with_items(30)).await.unwrap();
    let t = fake.issue_tokens(&[scopes::LIBRARY_EDIT_APPCREATED, scopes::LIBRARY_APPENDONLY]);
    let (status, body) = get_json(
        &client(),
        &format!("{}/v1/albums", fake.library_api_url()),
        &t.access_token,
    )
    .await;
    assert_eq!(
        (status, body["error"]["status"].as_str()),
        (403, Some("PERMISSION_DENIED"))
    );
}

#[tokio::test]
async fn empty_library_lists_as_empty_objects() {
    let fake = FakeGoogle::start(FakeConfig {
        albums: 0,
        ..FakeConfig::with_items(0)
    })
    .await
    .unwrap();
    let token = read_token(&fake);
    let c = client();
    for path in ["/v1/mediaItems", "/v1/albums"] {
        let (status, body) =
            get_json(&c, &format!("{}{path}", fake.library_api_url()), &token).await;
        assert_eq!((status, body), (200, json!({})), "{path}");
    }
}
