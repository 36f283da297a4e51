//! # api-client
//!
//! The part of gphotos-backup that speaks HTTP to Google: OAuth 2.0 for installed apps,
//! the Photos Library API, the Photos Picker API and media (base URL) downloads.
//!
//! **Boundary.** This crate knows HTTP and Google's wire formats. It knows nothing of the
//! backup layout, the database or the CLI; the only file it touches is the token file
//! ([`TokenStore`]) and the `client_secret.json` it is told to read. Downloads go to any
//! [`tokio::io::AsyncWrite`] the caller provides.
//!
//! **Post-2025 reality** (spec §0, §2): the Library API only returns items *this app*
//! uploaded; a call authorised only by the removed `photoslibrary.readonly` scope fails
//! with [`Error::InsufficientScope`], whose message points users at Takeout and the Picker.
//!
//! Pieces:
//! - [`Endpoints`]: every base URL, Google's by default; a base may carry a path prefix and
//!   paths are appended to it ([`join_path`]).
//! - [`ClientSecret`]: the "Desktop app" `client_secret.json`.
//! - [`OAuthClient`] / [`PendingAuthorization`]: loopback + PKCE consent flow, with a
//!   paste-the-URL fallback for headless machines; [`TokenStore`] (0600, atomic);
//!   [`TokenProvider`] (shared, refreshes single-flight).
//! - [`LibraryClient`], [`PickerClient`]: typed calls, listings as [`futures::Stream`]s.
//! - [`Downloader`]: streaming, bounded-memory media downloads.
//! - [`HttpClient`]: one pooled client plus the [`Clock`] and [`RetryPolicy`]
//!   (backoff from 1 s on 5xx, ≥ 30 s after a per-minute 429, `Retry-After` honoured).
//!
//! ```no_run
//! use api_client::{
//!     ClientSecret, Downloader, Endpoints, HttpClient, LibraryClient, OAuthClient, Scope,
//!     TokenProvider, TokenStore,
//! };
//! use futures::TryStreamExt;
//!
//! # async fn run() -> Result<(), api_client::Error> {
//! let endpoints = Endpoints::default();
//! let http = HttpClient::new()?;
//! let oauth = OAuthClient::new(http.clone(), ClientSecret::from_file("client_secret.json")?, &endpoints);
//! let store = TokenStore::new("tokens.json");
//!
//! // `gphotos-backup auth`: print the URL first, then wait for the browser's redirect.
//! let pending = oauth.start_authorization(&[Scope::LIBRARY_READONLY_APPCREATED], None).await?;
//! println!("Open {}", pending.authorize_url());
//! store.save(&pending.wait_for_redirect().await?)?;
//!
//! // The daemon: list and download.
//! let tokens = TokenProvider::from_store(oauth, store)?;
//! let library = LibraryClient::new(http.clone(), tokens.clone(), &endpoints);
//! let downloader = Downloader::new(http);
//! let mut items = library.list_media_items();
//! while let Some(item) = items.try_next().await? {
//!     if let Some(url) = item.download_url() {
//!         let mut sink = tokio::io::sink();
//!         downloader.download(&url, None, &mut sink).await?;
//!     }
//! }
//! # Ok(()) }
//! ```

mod auth;
mod clock;
mod download;
mod endpoints;
mod error;
mod http;
mod library;
mod models;
mod paging;
mod picker;
mod retry;
mod secret;

pub use auth::{
    AccessToken, OAuthClient, PendingAuthorization, RefreshToken, Scope, TokenProvider, TokenStore,
    Tokens,
};
pub use clock::{Clock, ManualClock, SystemClock};
pub use download::Downloader;
pub use endpoints::{
    Endpoints, GOOGLE_AUTH_URL, GOOGLE_LIBRARY_API_URL, GOOGLE_PICKER_API_URL, GOOGLE_REVOKE_URL,
    GOOGLE_TOKEN_URL, join_path, join_segments,
};
pub use error::{CREATE_DESKTOP_CLIENT_HELP, ClientSecretProblem, Error, Result};
pub use http::{HttpClient, HttpClientBuilder};
pub use library::{ALBUMS_PAGE_SIZE, BATCH_GET_MAX, LibraryClient, MEDIA_ITEMS_PAGE_SIZE};
pub use models::{
    Album, AlbumId, BaseUrl, BatchItemResult, ContentFilter, ContributorInfo, Date, DateFilter,
    DateRange, FeatureFilter, Filters, ItemStatus, ListAlbumsResponse, ListMediaItemsResponse,
    ListPickedMediaItemsResponse, MediaFile, MediaFileMetadata, MediaItem, MediaItemId,
    MediaMetadata, MediaTypeFilter, Photo, PickedMediaItem, PickedMediaType, PickedPhotoMetadata,
    PickedVideoMetadata, PickerSessionId, PickingConfig, PickingSession, PollingConfig,
    SearchMediaItemsRequest, SearchMediaItemsResponse, Video, VideoStatus,
};
pub use picker::{PICKED_ITEMS_PAGE_SIZE, PickerClient, PickerRequestId};
pub use retry::{MAX_RETRY_AFTER, RetryPolicy};
pub use secret::ClientSecret;
