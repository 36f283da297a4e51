//! Photos Library API client (app-created items only since 2025-03-31, spec §2).

use std::collections::HashSet;

use futures::stream::BoxStream;
use reqwest::Method;
use url::Url;

use crate::auth::TokenProvider;
use crate::endpoints::{Endpoints, join_path, join_segments};
use crate::error::{Error, Result};
use crate::http::HttpClient;
use crate::models::{
    Album, AlbumId, BatchGetMediaItemsResponse, BatchItemResult, ItemStatus, ListAlbumsResponse,
    ListMediaItemsResponse, MediaItem, MediaItemId, SearchMediaItemsRequest,
    SearchMediaItemsResponse,
};
use crate::paging::paginate;

/// Largest `pageSize` for media items (spec §1.1).
pub const MEDIA_ITEMS_PAGE_SIZE: u32 = 100;
/// Largest `pageSize` for albums.
pub const ALBUMS_PAGE_SIZE: u32 = 50;
/// Largest number of ids in one `mediaItems:batchGet`.
pub const BATCH_GET_MAX: usize = 50;

/// Client for `photoslibrary.googleapis.com`. Cheap to clone.
#[derive(Debug, Clone)]
pub struct LibraryClient {
    http: HttpClient,
    tokens: TokenProvider,
    base: Url,
}

impl LibraryClient {
    /// A client for `endpoints.library_api_url`.
    pub fn new(http: HttpClient, tokens: TokenProvider, endpoints: &Endpoints) -> Self {
        Self {
            http,
            tokens,
            base: endpoints.library_api_url.clone(),
        }
    }

    /// Every media item the app created, newest first, page by page (100 per page).
    pub fn list_media_items(&self) -> BoxStream<'static, Result<MediaItem>> {
        let this = self.clone();
        paginate("mediaItems.list", move |token| {
            let this = this.clone();
            async move {
                let page = this.list_media_items_page(token.as_deref()).await?;
                Ok((page.media_items, page.next_page_token))
            }
        })
    }

    /// One page of `mediaItems.list` (for callers that checkpoint page tokens).
    pub async fn list_media_items_page(
        &self,
        page_token: Option<&str>,
    ) -> Result<ListMediaItemsResponse> {
        let url = join_path(&self.base, "/v1/mediaItems")?;
        let mut query = vec![("pageSize", MEDIA_ITEMS_PAGE_SIZE.to_string())];
        if let Some(t) = page_token {
            query.push(("pageToken", t.to_owned()));
        }
        self.http
            .call_json(
                &self.tokens,
                Method::GET,
                &url,
                &query,
                None,
                "mediaItems.list",
            )
            .await
    }

    /// Every item matching `request` (its `page_token` is managed by the stream; an unset
    /// `page_size` becomes 100).
    pub fn search_media_items(
        &self,
        request: SearchMediaItemsRequest,
    ) -> BoxStream<'static, Result<MediaItem>> {
        let this = self.clone();
        paginate("mediaItems.search", move |token| {
            let this = this.clone();
            let mut request = request.clone();
            async move {
                request.page_token = token;
                let page = this.search_media_items_page(&request).await?;
                Ok((page.media_items, page.next_page_token))
            }
        })
    }

    /// The items of one album, in album order.
    pub fn album_media_items(&self, album: &AlbumId) -> BoxStream<'static, Result<MediaItem>> {
        self.search_media_items(SearchMediaItemsRequest::album(album.clone()))
    }

    /// One page of `mediaItems:search`.
    pub async fn search_media_items_page(
        &self,
        request: &SearchMediaItemsRequest,
    ) -> Result<SearchMediaItemsResponse> {
        if request.album_id.is_some() && request.filters.is_some() {
            return Err(Error::InvalidArgument(
                "mediaItems.search accepts an album id or filters, not both".to_owned(),
            ));
        }
        let mut request = request.clone();
        request
            .page_size
            .get_or_insert(MEDIA_ITEMS_PAGE_SIZE.cast_signed());
        let url = join_path(&self.base, "/v1/mediaItems:search")?;
        self.http
            .call_json(
                &self.tokens,
                Method::POST,
                &url,
                &[],
                Some(&request),
                "mediaItems.search",
            )
            .await
    }

    /// Every album the app created (50 per page).
    pub fn list_albums(&self) -> BoxStream<'static, Result<Album>> {
        let this = self.clone();
        paginate("albums.list", move |token| {
            let this = this.clone();
            async move {
                let page = this.list_albums_page(token.as_deref()).await?;
                Ok((page.albums, page.next_page_token))
            }
        })
    }

    /// One page of `albums.list`.
    pub async fn list_albums_page(&self, page_token: Option<&str>) -> Result<ListAlbumsResponse> {
        let url = join_path(&self.base, "/v1/albums")?;
        let mut query = vec![("pageSize", ALBUMS_PAGE_SIZE.to_string())];
        if let Some(t) = page_token {
            query.push(("pageToken", t.to_owned()));
        }
        self.http
            .call_json(&self.tokens, Method::GET, &url, &query, None, "albums.list")
            .await
    }

    /// One album.
    pub async fn get_album(&self, id: &AlbumId) -> Result<Album> {
        let url = join_segments(&self.base, &["v1", "albums", id.as_str()])?;
        self.http
            .call_json(&self.tokens, Method::GET, &url, &[], None, "albums.get")
            .await
    }

    /// One media item (with a fresh base URL).
    pub async fn get_media_item(&self, id: &MediaItemId) -> Result<MediaItem> {
        let url = join_segments(&self.base, &["v1", "mediaItems", id.as_str()])?;
        self.http
            .call_json(&self.tokens, Method::GET, &url, &[], None, "mediaItems.get")
            .await
    }

    /// Up to 50 items in one call (e.g. to renew expired base URLs). The results come back
    /// in request order, each either the item or Google's per-item status; the call as a
    /// whole fails only for request-level errors. Ids must be distinct.
    pub async fn batch_get_media_items(&self, ids: &[MediaItemId]) -> Result<Vec<BatchItemResult>> {
        if ids.is_empty() || ids.len() > BATCH_GET_MAX {
            return Err(Error::InvalidArgument(format!(
                "mediaItems.batchGet takes 1 to {BATCH_GET_MAX} ids, got {}",
                ids.len()
            )));
        }
        let mut distinct = HashSet::with_capacity(ids.len());
        if let Some(dup) = ids.iter().find(|id| !distinct.insert(*id)) {
            return Err(Error::InvalidArgument(format!(
                "mediaItems.batchGet ids must be distinct; {dup} is repeated"
            )));
        }
        let url = join_path(&self.base, "/v1/mediaItems:batchGet")?;
        let query: Vec<_> = ids
            .iter()
            .map(|id| ("mediaItemIds", id.as_str().to_owned()))
            .collect();
        let response: BatchGetMediaItemsResponse = self
            .http
            .call_json(
                &self.tokens,
                Method::GET,
                &url,
                &query,
                None,
                "mediaItems.batchGet",
            )
            .await?;
        if response.media_item_results.len() != ids.len() {
            return Err(Error::Protocol {
                context: "mediaItems.batchGet".to_owned(),
                reason: format!(
                    "asked for {} items, got {} results",
                    ids.len(),
                    response.media_item_results.len()
                ),
            });
        }
        let mut results = Vec::with_capacity(ids.len());
        for (id, raw) in ids.iter().zip(response.media_item_results) {
            let result = match (raw.media_item, raw.status) {
                (Some(item), _) if &item.id != id => {
                    return Err(Error::Protocol {
                        context: "mediaItems.batchGet".to_owned(),
                        reason: format!("result for {id} carries item {}", item.id),
                    });
                }
                (Some(item), _) => Ok(item),
                (None, Some(status)) => Err(status),
                (None, None) => Err(ItemStatus {
                    code: 2,
                    message: "neither an item nor a status was returned".to_owned(),
                }),
            };
            results.push(BatchItemResult {
                id: id.clone(),
                result,
            });
        }
        Ok(results)
    }
}
