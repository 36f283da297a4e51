//! api-client against the real fake Google (`fake-google`) on 127.0.0.1.
//!
//! Time: the fake has its own clock (token, base-URL and Picker expiry); the client gets a
//! `ManualClock`, so every retry sleep is recorded instead of waited for. Tests advance both
//! clocks explicitly when they simulate time passing.

#![allow(clippy::unwrap_used)] // Setup helpers outside #[test] fns panic on failure, like the tests.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use api_client::{
    AccessToken, ClientSecret, Clock, Downloader, Endpoints, Error, HttpClient, LibraryClient,
    ManualClock, MediaItemId, OAuthClient, PickerClient, PickerRequestId, RefreshToken, Scope,
    SearchMediaItemsRequest, TokenProvider, TokenStore, Tokens,
};
use fake_google::{
    ConsentBehaviour, EndpointKind, FakeConfig, FakeGoogle, Fault, IssuedTokens, NewItem,
    PageQuirks, Schedule, scopes,
};
use futures::TryStreamExt;

struct Env {
    fake: FakeGoogle,
    clock: Arc<ManualClock>,
    http: HttpClient,
    endpoints: Endpoints,
    oauth: OAuthClient,
}

async fn env(config: FakeConfig) -> Env {
    let fake = FakeGoogle::start(config).await.unwrap();
    let clock = ManualClock::starting_now();
    let http = HttpClient::builder().clock(clock.clone()).build().unwrap();
    let endpoints = Endpoints::from_strs(
        &fake.auth_url(),
        &fake.token_url(),
        &fake.revoke_url(),
        &fake.library_api_url(),
        &fake.picker_api_url(),
    )
    .unwrap();
    let secret = ClientSecret::from_json(&fake.client_secret_json()).unwrap();
    let oauth = OAuthClient::new(http.clone(), secret, &endpoints);
    Env {
        fake,
        clock,
        http,
        endpoints,
        oauth,
    }
}

impl Env {
    fn tokens_from(&self, issued: &IssuedTokens) -> Tokens {
        Tokens {
            access_token: AccessToken::new(issued.access_token.clone()),
            refresh_token: Some(RefreshToken::new(issued.refresh_token.clone())),
            expires_at: Some(
                self.clock.now() + chrono::Duration::seconds(issued.expires_in.cast_signed()),
            ),
            scopes: issued
                .scopes
                .iter()
                .map(|s| Scope::new(s.clone()))
                .collect(),
        }
    }

    fn provider(&self, scopes: &[&str]) -> TokenProvider {
        let issued = self.fake.issue_tokens(scopes);
        TokenProvider::new(self.oauth.clone(), self.tokens_from(&issued), None)
    }

    fn library(&self, tokens: &TokenProvider) -> LibraryClient {
        LibraryClient::new(self.http.clone(), tokens.clone(), &self.endpoints)
    }

    fn picker(&self, tokens: &TokenProvider) -> PickerClient {
        PickerClient::new(self.http.clone(), tokens.clone(), &self.endpoints)
    }

    /// The first item of the library listing, as `tokens` see it.
    async fn first_item(&self, tokens: &TokenProvider) -> api_client::MediaItem {
        self.library(tokens)
            .list_media_items()
            .try_next()
            .await
            .unwrap()
            .expect("the fake library is not empty")
    }

    /// Moves both the fake's clock and the client's clock forward.
    fn advance_both(&self, by: Duration) {
        self.fake.clock().advance(by);
        self.clock.advance(by);
    }
}

/// A plain client for playing the browser: never follows redirects.
fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// The scripted consent screen answers the auth URL with a 302 to our loopback listener.
async fn consent_redirect(auth_url: &url::Url) -> String {
    let response = browser().get(auth_url.clone()).send().await.unwrap();
    assert_eq!(response.status(), 302, "consent screen should redirect");
    response.headers()[reqwest::header::LOCATION]
        .to_str()
        .unwrap()
        .to_owned()
}

// ------------------------------------------------------------------------------- OAuth

#[tokio::test]
async fn full_auth_flow_with_pkce_over_loopback() {
    let env = env(FakeConfig::with_items(30)).await;
    let pending = env
        .oauth
        .start_authorization(
            &[Scope::LIBRARY_READONLY_APPCREATED, Scope::PICKER_READONLY],
            None,
        )
        .await
        .unwrap();
    // The URL is available before waiting (the CLI prints it first).
    let auth_url = pending.authorize_url().clone();
    assert!(auth_url.as_str().starts_with(&env.fake.auth_url()));

    let browser_side = async {
        let location = consent_redirect(&auth_url).await;
        assert!(
            location.starts_with(pending.redirect_uri().as_str()),
            "{location}"
        );
        // The browser follows the redirect to our listener and shows the closing page.
        let page = browser().get(&location).send().await.unwrap();
        assert_eq!(page.status(), 200);
        page.text().await.unwrap()
    };
    let (tokens, page) = tokio::join!(pending.wait_for_redirect(), browser_side);
    let tokens = tokens.unwrap();
    assert!(page.contains("You can close this tab"), "{page}");
    // The fake checked code_verifier against the S256 challenge; a wrong one gives invalid_grant.
    assert!(tokens.refresh_token.is_some());
    assert!(tokens.has_scope(&Scope::LIBRARY_READONLY_APPCREATED));
    assert!(tokens.has_scope(&Scope::PICKER_READONLY));

    // The tokens survive the token file and authorise API calls.
    let dir = tempfile::tempdir().unwrap();
    let store = TokenStore::new(dir.path().join("tokens.json"));
    store.save(&tokens).unwrap();
    let provider = TokenProvider::from_store(env.oauth.clone(), store).unwrap();
    let first = env
        .library(&provider)
        .list_media_items()
        .try_next()
        .await
        .unwrap();
    assert!(first.is_some());
}

#[tokio::test]
async fn reduced_scope_is_reported_so_callers_can_ask_again() {
    let env = env(FakeConfig::with_items(5)).await;
    env.fake.set_consent(ConsentBehaviour::ReduceScope(vec![
        scopes::PICKER_READONLY.to_owned(),
    ]));
    let pending = env
        .oauth
        .start_authorization(
            &[Scope::LIBRARY_READONLY_APPCREATED, Scope::PICKER_READONLY],
            None,
        )
        .await
        .unwrap();
    let location = consent_redirect(pending.authorize_url()).await;
    // Headless fallback: the user pastes the address bar instead of the listener receiving it.
    let tokens = pending.complete_from_redirect_url(&location).await.unwrap();
    let provider = TokenProvider::new(env.oauth.clone(), tokens, None);
    assert!(provider.has_scope(&Scope::LIBRARY_READONLY_APPCREATED));
    assert!(!provider.has_scope(&Scope::PICKER_READONLY));

    // An authorization code is single-use.
    let replay = pending
        .complete_from_redirect_url(&location)
        .await
        .unwrap_err();
    assert!(
        matches!(replay, Error::OAuth { ref error, .. } if error == "invalid_grant"),
        "{replay:?}"
    );
}

#[tokio::test]
async fn denied_consent_is_a_clear_error() {
    let env = env(FakeConfig::with_items(5)).await;
    env.fake.set_consent(ConsentBehaviour::Deny);
    let pending = env
        .oauth
        .start_authorization(&Scope::defaults(), None)
        .await
        .unwrap();
    let auth_url = pending.authorize_url().clone();
    let browser_side = async {
        let location = consent_redirect(&auth_url).await;
        assert!(location.contains("error=access_denied"), "{location}");
        browser()
            .get(&location)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    };
    let (result, page) = tokio::join!(pending.wait_for_redirect(), browser_side);
    let err = result.unwrap_err();
    assert!(matches!(err, Error::AccessDenied { .. }), "{err:?}");
    assert!(err.to_string().contains("gphotos-backup auth"));
    assert!(page.contains("denied"), "{page}");
}

#[tokio::test]
async fn stray_requests_on_the_listener_are_ignored_until_the_redirect() {
    let env = env(FakeConfig::with_items(5)).await;
    let pending = env
        .oauth
        .start_authorization(&Scope::defaults(), None)
        .await
        .unwrap();
    let auth_url = pending.authorize_url().clone();
    let favicon = pending.redirect_uri().join("/favicon.ico").unwrap();
    let browser_side = async {
        let stray = browser().get(favicon).send().await.unwrap();
        assert_eq!(stray.status(), 404);
        let location = consent_redirect(&auth_url).await;
        browser().get(&location).send().await.unwrap().status()
    };
    let (tokens, status) = tokio::join!(pending.wait_for_redirect(), browser_side);
    assert!(tokens.is_ok(), "{tokens:?}");
    assert_eq!(status, 200);
}

#[tokio::test]
async fn access_token_is_refreshed_before_expiry_once_for_concurrent_callers() {
    let env = env(FakeConfig::with_items(5)).await;
    let dir = tempfile::tempdir().unwrap();
    let store = TokenStore::new(dir.path().join("tokens.json"));
    let issued = env
        .fake
        .issue_tokens(&[scopes::LIBRARY_READONLY_APPCREATED]);
    let provider = TokenProvider::new(
        env.oauth.clone(),
        env.tokens_from(&issued),
        Some(store.clone()),
    );
    assert_eq!(
        provider.access_token().await.unwrap().secret(),
        issued.access_token
    );

    // 3599 s tokens: 3560 s later we are inside the 60 s refresh margin.
    env.advance_both(Duration::from_secs(3560));
    let before = env.fake.stats().requests_to(EndpointKind::OAuthToken);
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let p = provider.clone();
            tokio::spawn(async move { p.access_token().await })
        })
        .collect();
    let mut seen = HashSet::new();
    for t in tasks {
        seen.insert(t.await.unwrap().unwrap().secret().to_owned());
    }
    assert_eq!(seen.len(), 1, "every caller gets the same refreshed token");
    assert!(!seen.contains(&issued.access_token));
    assert_eq!(
        env.fake.stats().requests_to(EndpointKind::OAuthToken) - before,
        1
    );

    // The refreshed token works, keeps the refresh token, and was saved.
    let saved = store.load().unwrap().unwrap();
    assert!(seen.contains(saved.access_token.secret()));
    assert_eq!(saved.refresh_token.unwrap().secret(), issued.refresh_token);
    env.library(&provider)
        .list_media_items_page(None)
        .await
        .unwrap();
}

#[tokio::test]
async fn a_401_before_the_expected_expiry_triggers_one_refresh() {
    let env = env(FakeConfig::with_items(5)).await;
    let provider = env.provider(&[scopes::LIBRARY_READONLY_APPCREATED]);
    // Only the server's time moves: the client still believes its token is valid.
    env.fake.clock().advance(Duration::from_secs(3700));
    let page = env
        .library(&provider)
        .list_media_items_page(None)
        .await
        .unwrap();
    assert!(!page.media_items.is_empty());
    assert_eq!(env.fake.stats().responses_with(401), 1);
    assert!(env.clock.sleeps().is_empty(), "a 401 is not a backoff case");
}

#[tokio::test]
async fn expired_refresh_token_in_testing_mode_requires_reauthorization() {
    let env = env(FakeConfig {
        testing_mode: true,
        ..FakeConfig::with_items(5)
    })
    .await;
    let provider = env.provider(&[scopes::LIBRARY_READONLY_APPCREATED]);
    // Spec §4.4: refresh tokens of "Testing" apps die after 7 days.
    env.advance_both(Duration::from_secs(8 * 24 * 3600));
    let err = provider.access_token().await.unwrap_err();
    assert!(
        matches!(err, Error::ReauthorizationRequired { .. }),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(text.contains("gphotos-backup auth"), "{text}");
    assert!(
        text.contains("Testing") && text.contains("7 days"),
        "{text}"
    );
    assert!(
        text.contains("Token has been expired or revoked."),
        "{text}"
    );
}

#[tokio::test]
async fn revoked_grant_cannot_refresh() {
    let env = env(FakeConfig::with_items(5)).await;
    let provider = env.provider(&[scopes::LIBRARY_READONLY_APPCREATED]);
    env.oauth.revoke(&provider.tokens()).await.unwrap();
    let err = env.oauth.refresh(&provider.tokens()).await.unwrap_err();
    assert!(
        matches!(err, Error::ReauthorizationRequired { .. }),
        "{err:?}"
    );
}

// ------------------------------------------------------------------------------- Library

#[tokio::test]
async fn removed_scope_gets_an_explanation_of_the_2025_change() {
    let env = env(FakeConfig::with_items(5)).await;
    let provider = env.provider(&[scopes::LIBRARY_READONLY_REMOVED]);
    let err = env
        .library(&provider)
        .list_media_items()
        .try_next()
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InsufficientScope { .. }), "{err:?}");
    let text = err.to_string();
    for needle in [
        "2025-03-31",
        "photoslibrary.readonly",
        "[sources.takeout]",
        "gphotos-backup pick",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in {text}");
    }
    assert!(env.clock.sleeps().is_empty(), "a 403 is not retried");
}

#[tokio::test]
async fn listing_with_page_quirks_yields_every_item_once_in_order() {
    // Defaults: every 3rd page short, every 7th page empty but with a nextPageToken (§6.2).
    let env = env(FakeConfig {
        page_quirks: PageQuirks {
            short_page_every: 2,
            empty_page_every: 3,
        },
        ..FakeConfig::with_items(450)
    })
    .await;
    let provider = env.provider(&[scopes::LIBRARY_READONLY_APPCREATED]);
    let items: Vec<_> = env
        .library(&provider)
        .list_media_items()
        .try_collect()
        .await
        .unwrap();
    let expected: Vec<_> = env
        .fake
        .library()
        .items()
        .into_iter()
        .filter(|i| !i.archived)
        .map(|i| i.id.as_str().to_owned())
        .collect();
    let got: Vec<_> = items.iter().map(|i| i.id.as_str().to_owned()).collect();
    assert_eq!(got, expected);
    assert_eq!(got.iter().collect::<HashSet<_>>().len(), got.len());
    // pageSize 100: 450 items need at least 5 pages; quirks add more.
    assert!(env.fake.stats().requests_to(EndpointKind::LibraryList) > 5);
}

#[tokio::test]
async fn albums_and_album_contents() {
    let env = env(FakeConfig::with_items(120)).await;
    let provider = env.provider(&[scopes::LIBRARY_READONLY_APPCREATED]);
    let library = env.library(&provider);
    let albums: Vec<_> = library.list_albums().try_collect().await.unwrap();
    let expected = env.fake.library().albums();
    assert_eq!(albums.len(), expected.len());
    for (got, want) in albums.iter().zip(&expected) {
        assert_eq!(got.id.as_str(), want.id.as_str());
        assert_eq!(got.title, want.title);
        let members: Vec<String> = library
            .album_media_items(&got.id)
            .map_ok(|i| i.id.as_str().to_owned())
            .try_collect()
            .await
            .unwrap();
        let want_members: Vec<String> = want.items.iter().map(|i| i.as_str().to_owned()).collect();
        assert_eq!(members, want_members, "album {}", want.title);
        assert_eq!(got.media_items_count, Some(want_members.len() as i64));
    }
    let one = library.get_album(&albums[0].id).await.unwrap();
    assert_eq!(one.id, albums[0].id);
}

#[tokio::test]
async fn search_with_filters_and_bad_requests() {
    let env = env(FakeConfig::with_items(60)).await;
    let provider = env.provider(&[scopes::LIBRARY_READONLY_APPCREATED]);
    let library = env.library(&provider);
    let videos: Vec<_> = library
        .search_media_items(SearchMediaItemsRequest {
            filters: Some(api_client::Filters {
                media_type_filter: Some(api_client::MediaTypeFilter {
                    media_types: vec!["VIDEO".into()],
                }),
                ..Default::default()
            }),
            ..Default::default()
        })
        .try_collect()
        .await
        .unwrap();
    let expected = env
        .fake
        .library()
        .items()
        .into_iter()
        .filter(|i| i.is_video && !i.archived)
        .count();
    assert_eq!(videos.len(), expected);
    assert!(videos.iter().all(api_client::MediaItem::is_video));

    // A 400 from Google is not retried.
    let err = library
        .get_media_item(&MediaItemId::new("no-such-item"))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Api {
                http_status: 400,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(env.fake.stats().requests_to(EndpointKind::LibraryGet), 1);
    assert!(env.clock.sleeps().is_empty());
}

#[tokio::test]
async fn batch_get_returns_per_id_results_in_request_order() {
    let env = env(FakeConfig::with_items(20)).await;
    let provider = env.provider(&[scopes::LIBRARY_READONLY_APPCREATED]);
    let library = env.library(&provider);
    let items = env.fake.library().items();
    let ids = vec![
        MediaItemId::new(items[3].id.as_str()),
        MediaItemId::new("bogus-id"),
        MediaItemId::new(items[0].id.as_str()),
    ];
    let results = library.batch_get_media_items(&ids).await.unwrap();
    assert_eq!(results.len(), 3);
    assert_eq!(results[0].result.as_ref().unwrap().id, ids[0]);
    assert_eq!(results[1].id, ids[1]);
    assert_eq!(results[1].result.as_ref().unwrap_err().code, 3);
    assert_eq!(results[2].result.as_ref().unwrap().id, ids[2]);

    assert!(matches!(
        library.batch_get_media_items(&[]).await,
        Err(Error::InvalidArgument(_))
    ));
    let dup = [ids[0].clone(), ids[0].clone()];
    assert!(matches!(
        library.batch_get_media_items(&dup).await,
        Err(Error::InvalidArgument(_))
    ));
}

// ------------------------------------------------------------------------------- retries

#[tokio::test]
async fn per_minute_429_waits_at_least_30_seconds_and_honours_retry_after() {
    let env = env(FakeConfig::with_items(10)).await;
    let provider = env.provider(&[scopes::LIBRARY_READONLY_APPCREATED]);
    env.fake.faults().inject(
        EndpointKind::LibraryList,
        Fault::RateLimited {
            retry_after: Some(Duration::from_secs(3)),
        },
        Schedule::Next(1),
    );
    env.fake.faults().inject(
        EndpointKind::LibraryAlbumsList,
        Fault::RateLimited {
            retry_after: Some(Duration::from_secs(75)),
        },
        Schedule::Next(1),
    );
    let library = env.library(&provider);
    library.list_media_items_page(None).await.unwrap();
    // Google's best practices (spec §1.5): wait at least 30 s after a 429.
    let sleeps = env.clock.sleeps();
    assert_eq!(sleeps.len(), 1);
    assert!(sleeps[0] >= Duration::from_secs(30), "{sleeps:?}");

    env.clock.clear_sleeps();
    library.list_albums_page(None).await.unwrap();
    let sleeps = env.clock.sleeps();
    assert_eq!(sleeps.len(), 1);
    assert!(
        sleeps[0] >= Duration::from_secs(75),
        "Retry-After wins when longer: {sleeps:?}"
    );
}

#[tokio::test]
async fn daily_quota_is_not_retried() {
    let env = env(FakeConfig::with_items(10)).await;
    let provider = env.provider(&[scopes::LIBRARY_READONLY_APPCREATED]);
    env.fake.faults().inject(
        EndpointKind::LibraryList,
        Fault::DailyQuotaExceeded,
        Schedule::Always,
    );
    let err = env
        .library(&provider)
        .list_media_items_page(None)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::DailyQuotaExhausted { .. }), "{err:?}");
    assert_eq!(env.fake.stats().requests_to(EndpointKind::LibraryList), 1);
    assert!(env.clock.sleeps().is_empty());
}

#[tokio::test]
async fn server_errors_back_off_exponentially_then_succeed() {
    let env = env(FakeConfig::with_items(10)).await;
    let provider = env.provider(&[scopes::LIBRARY_READONLY_APPCREATED]);
    env.fake.faults().inject(
        EndpointKind::LibraryList,
        Fault::Unavailable,
        Schedule::Next(1),
    );
    // Rules fire in injection order: the second request meets this one.
    env.fake.faults().inject(
        EndpointKind::LibraryList,
        Fault::Internal,
        Schedule::Next(1),
    );
    let page = env
        .library(&provider)
        .list_media_items_page(None)
        .await
        .unwrap();
    assert!(!page.media_items.is_empty());
    let sleeps = env.clock.sleeps();
    assert_eq!(sleeps.len(), 2, "{sleeps:?}");
    // 1 s then 2 s, each plus < 1 s of jitter (spec §1.5: backoff from 1 s).
    assert!(
        sleeps[0] >= Duration::from_secs(1) && sleeps[0] < Duration::from_secs(2),
        "{sleeps:?}"
    );
    assert!(
        sleeps[1] >= Duration::from_secs(2) && sleeps[1] < Duration::from_secs(3),
        "{sleeps:?}"
    );
    assert_eq!(env.fake.stats().requests_to(EndpointKind::LibraryList), 3);
}

#[tokio::test]
async fn persistent_server_errors_give_up_after_bounded_attempts() {
    let env = env(FakeConfig::with_items(10)).await;
    let provider = env.provider(&[scopes::LIBRARY_READONLY_APPCREATED]);
    env.fake
        .faults()
        .inject(EndpointKind::LibraryGet, Fault::Internal, Schedule::Always);
    let id = MediaItemId::new(env.fake.library().items()[0].id.as_str());
    let err = env
        .library(&provider)
        .get_media_item(&id)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Api {
                http_status: 500,
                ..
            }
        ),
        "{err:?}"
    );
    let attempts = env.http.retry_policy().max_attempts;
    assert_eq!(
        env.fake.stats().requests_to(EndpointKind::LibraryGet),
        u64::from(attempts)
    );
    assert_eq!(env.clock.sleeps().len(), attempts as usize - 1);
}

#[tokio::test]
async fn token_endpoint_outage_is_retried() {
    let env = env(FakeConfig::with_items(5)).await;
    let provider = env.provider(&[scopes::LIBRARY_READONLY_APPCREATED]);
    env.advance_both(Duration::from_secs(3600));
    env.fake.faults().inject(
        EndpointKind::OAuthToken,
        Fault::Unavailable,
        Schedule::Next(1),
    );
    provider.access_token().await.unwrap();
    assert_eq!(env.clock.sleeps().len(), 1);
}

// ------------------------------------------------------------------------------- downloads

#[tokio::test]
async fn download_streams_the_exact_bytes() {
    let env = env(FakeConfig::with_items(20)).await;
    // Make sure there is a finished video, whatever the generator chose.
    env.fake
        .add_items(&[NewItem::video(
            "clip.mp4",
            env.fake.clock().now(),
            fake_google::VideoStatus::Ready,
        )])
        .unwrap();
    let provider = env.provider(&[scopes::LIBRARY_READONLY_APPCREATED]);
    let downloader = Downloader::new(env.http.clone());
    let items: Vec<_> = env
        .library(&provider)
        .list_media_items()
        .try_collect()
        .await
        .unwrap();
    let video = items
        .iter()
        .find(|i| i.is_video())
        .expect("the added video");
    let photo = items.iter().find(|i| !i.is_video()).expect("a photo");
    for (item, params) in [(photo, "d"), (video, "dv")] {
        let mut out = Vec::new();
        let url = item.download_url().unwrap();
        assert!(url.ends_with(&format!("={params}")));
        let n = downloader.download(&url, None, &mut out).await.unwrap();
        let want = env
            .fake
            .library()
            .download_bytes(&fake_google::MediaItemId::new(item.id.as_str()), params)
            .unwrap();
        assert_eq!(n, want.len() as u64);
        assert!(out == want, "bytes differ for {}", item.filename);
    }
}

#[tokio::test]
async fn reset_mid_body_is_an_error_and_a_retry_into_a_fresh_writer_succeeds() {
    let env = env(FakeConfig::with_items(10)).await;
    let provider = env.provider(&[scopes::LIBRARY_READONLY_APPCREATED]);
    let item = env.first_item(&provider).await;
    let url = item.download_url().unwrap();
    let want = env
        .fake
        .library()
        .download_bytes(
            &fake_google::MediaItemId::new(item.id.as_str()),
            url.rsplit('=').next().unwrap(),
        )
        .unwrap();
    let downloader = Downloader::new(env.http.clone());

    env.fake.faults().inject(
        EndpointKind::Media,
        Fault::ResetMidBody { after_bytes: 1000 },
        Schedule::Next(1),
    );
    let mut partial = Vec::new();
    let err = downloader
        .download(&url, None, &mut partial)
        .await
        .unwrap_err();
    assert!(err.is_retryable(), "{err:?}");
    assert!(partial.len() < want.len());

    let mut full = Vec::new();
    downloader.download(&url, None, &mut full).await.unwrap();
    assert!(full == want);

    // The helper does the same: the reset attempt's writer is discarded.
    env.fake.faults().inject(
        EndpointKind::Media,
        Fault::ResetMidBody { after_bytes: 10 },
        Schedule::Next(1),
    );
    let mut writers_made = 0;
    let (out, n) = downloader
        .download_with_retries(&url, None, || {
            writers_made += 1;
            async { Ok(Vec::new()) }
        })
        .await
        .unwrap();
    assert_eq!(writers_made, 2);
    assert_eq!(n, want.len() as u64);
    assert!(out == want);
    assert_eq!(env.clock.sleeps().len(), 1);
}

#[tokio::test]
async fn expired_base_url_is_reported_and_batch_get_renews_it() {
    let env = env(FakeConfig::with_items(10)).await;
    let provider = env.provider(&[scopes::LIBRARY_READONLY_APPCREATED]);
    let library = env.library(&provider);
    let item = env.first_item(&provider).await;
    let downloader = Downloader::new(env.http.clone());
    // Base URLs live about 60 minutes (spec §1.4).
    env.fake.clock().advance(Duration::from_secs(61 * 60));
    let mut sink = Vec::new();
    let err = downloader
        .download(&item.download_url().unwrap(), None, &mut sink)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::BaseUrlExpired), "{err:?}");
    assert!(!err.is_retryable());
    let err = downloader
        .download_with_retries(&item.download_url().unwrap(), None, || async {
            Ok(Vec::new())
        })
        .await
        .unwrap_err();
    assert!(matches!(err, Error::BaseUrlExpired));
    assert!(env.clock.sleeps().is_empty());

    // The access token expired on the server too: the batchGet refreshes after its 401.
    let renewed = library
        .batch_get_media_items(std::slice::from_ref(&item.id))
        .await
        .unwrap();
    let fresh = renewed[0].result.as_ref().unwrap();
    let n = downloader
        .download(&fresh.download_url().unwrap(), None, &mut sink)
        .await
        .unwrap();
    assert!(n > 0);
}

#[tokio::test]
async fn stalled_download_hits_the_idle_timeout() {
    let env = env(FakeConfig::with_items(5)).await;
    let provider = env.provider(&[scopes::LIBRARY_READONLY_APPCREATED]);
    let item = env.first_item(&provider).await;
    env.fake.faults().inject(
        EndpointKind::Media,
        Fault::SlowBody {
            chunk_bytes: 512,
            delay: Duration::from_secs(5),
        },
        Schedule::Next(1),
    );
    let downloader =
        Downloader::new(env.http.clone()).with_idle_timeout(Duration::from_millis(200));
    let mut sink = Vec::new();
    let err = downloader
        .download(&item.download_url().unwrap(), None, &mut sink)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::IdleTimeout(_)), "{err:?}");
    assert!(err.is_retryable());
}

// ------------------------------------------------------------------------------- Picker

#[tokio::test]
async fn picker_happy_path_with_bearer_download() {
    let env = env(FakeConfig {
        foreign_items: 3,
        ..FakeConfig::with_items(10)
    })
    .await;
    let provider = env.provider(&[scopes::PICKER_READONLY]);
    let picker = env.picker(&provider);
    let request_id = PickerRequestId::new_random();
    let session = picker
        .create_session(Some(10), Some(&request_id))
        .await
        .unwrap();
    assert!(!session.media_items_set);
    assert_eq!(
        session.polling_config.unwrap().poll_interval,
        Some(Duration::from_secs(5))
    );
    assert_eq!(session.picking_config.unwrap().max_item_count, Some(10));
    let info = &env.fake.picker().sessions()[0];
    assert_eq!(info.request_id.as_deref(), Some(request_id.as_str()));

    // Not picked yet: listing is a FAILED_PRECONDITION.
    let err = picker
        .list_picked_items(&session.id)
        .try_next()
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Api { http_status: 400, ref status, .. } if status.as_deref() == Some("FAILED_PRECONDITION")),
        "{err:?}"
    );

    // The user picks two foreign items (not visible to the Library API) and one own item.
    let foreign = env.fake.library().foreign_items();
    let own = env.fake.library().items();
    let picked = vec![
        foreign[1].id.clone(),
        own[2].id.clone(),
        foreign[0].id.clone(),
    ];
    env.fake
        .picker()
        .pick(session.id.as_str(), &picked)
        .unwrap();

    let done = picker.wait_until_picked(&session.id).await.unwrap();
    assert!(done.media_items_set);
    assert!(done.polling_config.is_none());

    let items: Vec<_> = picker
        .list_picked_items(&session.id)
        .try_collect()
        .await
        .unwrap();
    let got: Vec<_> = items.iter().map(|i| i.id.as_str().to_owned()).collect();
    let want: Vec<_> = picked.iter().map(|i| i.as_str().to_owned()).collect();
    assert_eq!(got, want, "pick order");

    let downloader = Downloader::new(env.http.clone());
    let token = provider.access_token().await.unwrap();
    for item in &items {
        let url = item.download_url();
        let mut out = Vec::new();
        downloader
            .download(&url, Some(&token), &mut out)
            .await
            .unwrap();
        let params = if item.is_video() { "dv" } else { "d" };
        let want = env
            .fake
            .library()
            .download_bytes(&fake_google::MediaItemId::new(item.id.as_str()), params)
            .unwrap();
        assert!(out == want, "bytes of {}", item.media_file.filename);
    }
    // Picker base URLs need the Bearer token.
    let mut out = Vec::new();
    let err = downloader
        .download(&items[0].download_url(), None, &mut out)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Unauthenticated { .. }), "{err:?}");
    // The retry helper fetches the token itself.
    let (bytes, _) = downloader
        .download_with_retries(&items[0].download_url(), Some(&provider), || async {
            Ok(Vec::new())
        })
        .await
        .unwrap();
    assert!(!bytes.is_empty());

    picker.delete_session(&session.id).await.unwrap();
    let err = picker.get_session(&session.id).await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::Api {
                http_status: 404,
                ..
            }
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn picker_timeout_without_a_pick() {
    let env = env(FakeConfig::with_items(5)).await;
    let provider = env.provider(&[scopes::PICKER_READONLY]);
    let picker = env.picker(&provider);
    let session = picker.create_session(None, None).await.unwrap();
    env.fake.picker().let_timeout(session.id.as_str()).unwrap();
    let err = picker.wait_until_picked(&session.id).await.unwrap_err();
    assert!(matches!(err, Error::PickingTimedOut), "{err:?}");
}

#[tokio::test]
async fn picker_needs_the_picker_scope() {
    let env = env(FakeConfig::with_items(5)).await;
    let provider = env.provider(&[scopes::LIBRARY_READONLY_APPCREATED]);
    let err = env
        .picker(&provider)
        .create_session(None, None)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InsufficientScope { .. }), "{err:?}");
}

/// A clock that plays the user: the first poll wait is when they finish picking.
struct PickOnFirstSleep {
    clock: Arc<ManualClock>,
    pick: std::sync::Mutex<Option<Box<dyn FnOnce() + Send>>>,
}

impl Clock for PickOnFirstSleep {
    fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.clock.now()
    }

    fn sleep(&self, duration: Duration) -> futures::future::BoxFuture<'static, ()> {
        if let Some(pick) = self.pick.lock().unwrap().take() {
            pick();
        }
        self.clock.sleep(duration)
    }
}

impl std::fmt::Debug for PickOnFirstSleep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PickOnFirstSleep").finish_non_exhaustive()
    }
}

#[tokio::test]
async fn waiting_for_a_pick_polls_at_the_sessions_interval() {
    let env = env(FakeConfig::with_items(5)).await;
    let provider = env.provider(&[scopes::PICKER_READONLY]);
    let session = env
        .picker(&provider)
        .create_session(None, None)
        .await
        .unwrap();

    let control = env.fake.picker();
    let id = session.id.as_str().to_owned();
    let item = env.fake.library().items()[0].id.clone();
    let clock = Arc::new(PickOnFirstSleep {
        clock: ManualClock::starting_now(),
        pick: std::sync::Mutex::new(Some(Box::new(move || {
            control.pick(&id, &[item]).unwrap();
        }))),
    });
    let http = HttpClient::builder().clock(clock.clone()).build().unwrap();
    let picker = PickerClient::new(http, provider, &env.endpoints);
    let done = picker.wait_until_picked(&session.id).await.unwrap();
    assert!(done.media_items_set);
    // One poll before the pick, one wait of the session's pollInterval ("5s"), one poll after.
    assert_eq!(clock.clock.sleeps(), vec![Duration::from_secs(5)]);
    assert_eq!(
        env.fake.stats().requests_to(EndpointKind::PickerGetSession),
        2
    );
}

#[tokio::test]
async fn body_shorter_than_content_length_is_a_retryable_error() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    // A bare server that promises 100 bytes and hangs up after 40.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        let mut buf = [0u8; 4096];
        let _ = stream.read(&mut buf).await.unwrap();
        stream
            .write_all(
                b"HTTP/1.1 200 OK\r\nContent-Type: image/jpeg\r\nContent-Length: 100\r\n\r\n",
            )
            .await
            .unwrap();
        stream.write_all(&[7u8; 40]).await.unwrap();
        stream.shutdown().await.unwrap();
    });
    let http = HttpClient::builder()
        .clock(ManualClock::starting_now())
        .build()
        .unwrap();
    let mut out = Vec::new();
    let err = Downloader::new(http)
        .download(&format!("http://{addr}/media/x=d"), None, &mut out)
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Transport(_) | Error::ShortBody { .. }),
        "{err:?}"
    );
    assert!(err.is_retryable());
    assert!(out.len() <= 40);
    server.await.unwrap();
}
