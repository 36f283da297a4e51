//! Photos Picker API client (spec §3): the only API path to user-owned items.

use std::fmt;
use std::time::Duration;

use futures::stream::BoxStream;
use reqwest::Method;
use serde::Serialize;
use url::Url;

use crate::auth::TokenProvider;
use crate::endpoints::{Endpoints, join_path, join_segments};
use crate::error::{Error, Result};
use crate::http::HttpClient;
use crate::models::{
    ListPickedMediaItemsResponse, PickedMediaItem, PickerSessionId, PickingConfig, PickingSession,
};
use crate::paging::paginate;

/// Page size for picked items (the API's maximum, spec §3.1).
pub const PICKED_ITEMS_PAGE_SIZE: u32 = 100;
/// Poll interval used when a session does not say.
const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(5);

/// A client-chosen UUIDv4 for `sessions.create?requestId=` (no personal data in it).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PickerRequestId(String);

impl PickerRequestId {
    /// A fresh random UUIDv4.
    pub fn new_random() -> Self {
        let mut b: [u8; 16] = rand::random();
        b[6] = (b[6] & 0x0f) | 0x40; // version 4
        b[8] = (b[8] & 0x3f) | 0x80; // RFC 4122 variant
        let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
        Self(format!(
            "{}-{}-{}-{}-{}",
            &h[0..8],
            &h[8..12],
            &h[12..16],
            &h[16..20],
            &h[20..32]
        ))
    }

    /// Validates a UUID in 8-4-4-4-12 hex form.
    pub fn parse(s: &str) -> Result<Self> {
        let groups: Vec<&str> = s.split('-').collect();
        let lens: Vec<usize> = groups.iter().map(|g| g.len()).collect();
        let hex = groups
            .iter()
            .all(|g| g.bytes().all(|b| b.is_ascii_hexdigit()));
        if lens == [8, 4, 4, 4, 12] && hex {
            Ok(Self(s.to_ascii_lowercase()))
        } else {
            Err(Error::InvalidArgument(format!(
                "picker requestId must be a UUID (8-4-4-4-12 hex), got {s:?}"
            )))
        }
    }

    /// The UUID text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for PickerRequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct CreateSessionBody {
    #[serde(skip_serializing_if = "Option::is_none")]
    picking_config: Option<PickingConfig>,
}

/// Client for `photospicker.googleapis.com`. Cheap to clone.
#[derive(Debug, Clone)]
pub struct PickerClient {
    http: HttpClient,
    tokens: TokenProvider,
    base: Url,
}

impl PickerClient {
    /// A client for `endpoints.picker_api_url`.
    pub fn new(http: HttpClient, tokens: TokenProvider, endpoints: &Endpoints) -> Self {
        Self {
            http,
            tokens,
            base: endpoints.picker_api_url.clone(),
        }
    }

    /// Creates a session; show its `picker_uri` to the user. `max_item_count` of `None`
    /// means Google's default (2000).
    pub async fn create_session(
        &self,
        max_item_count: Option<u32>,
        request_id: Option<&PickerRequestId>,
    ) -> Result<PickingSession> {
        let url = join_path(&self.base, "/v1/sessions")?;
        let body = CreateSessionBody {
            picking_config: max_item_count.map(|n| PickingConfig {
                max_item_count: Some(i64::from(n)),
            }),
        };
        let query: Vec<_> = request_id
            .map(|r| ("requestId", r.as_str().to_owned()))
            .into_iter()
            .collect();
        self.http
            .call_json(
                &self.tokens,
                Method::POST,
                &url,
                &query,
                Some(&body),
                "sessions.create",
            )
            .await
    }

    /// The session's current state.
    pub async fn get_session(&self, id: &PickerSessionId) -> Result<PickingSession> {
        let url = join_segments(&self.base, &["v1", "sessions", id.as_str()])?;
        self.http
            .call_json(&self.tokens, Method::GET, &url, &[], None, "sessions.get")
            .await
    }

    /// Deletes the session (Google asks apps to do this after every session).
    pub async fn delete_session(&self, id: &PickerSessionId) -> Result<()> {
        let url = join_segments(&self.base, &["v1", "sessions", id.as_str()])?;
        let _: serde_json::Value = self
            .http
            .call_json(
                &self.tokens,
                Method::DELETE,
                &url,
                &[],
                None,
                "sessions.delete",
            )
            .await?;
        Ok(())
    }

    /// Polls the session at its `pollInterval` until the user has picked
    /// (`mediaItemsSet`), using the client's clock for the waits. Returns
    /// [`Error::PickingTimedOut`] when the session's `timeoutIn` runs out first.
    pub async fn wait_until_picked(&self, id: &PickerSessionId) -> Result<PickingSession> {
        loop {
            let session = self.get_session(id).await?;
            if session.media_items_set {
                return Ok(session);
            }
            let polling = session.polling_config.unwrap_or_default();
            if polling.timeout_in.is_some_and(|t| t.is_zero()) {
                return Err(Error::PickingTimedOut);
            }
            let interval = polling
                .poll_interval
                .filter(|d| !d.is_zero())
                .unwrap_or(DEFAULT_POLL_INTERVAL);
            self.http.clock().sleep(interval).await;
        }
    }

    /// Every picked item, in pick order. Fails with `FAILED_PRECONDITION` (400) until the
    /// user has finished picking.
    pub fn list_picked_items(
        &self,
        session: &PickerSessionId,
    ) -> BoxStream<'static, Result<PickedMediaItem>> {
        let this = self.clone();
        let session = session.clone();
        paginate("mediaItems.list (picker)", move |token| {
            let this = this.clone();
            let session = session.clone();
            async move {
                let page = this
                    .list_picked_items_page(&session, token.as_deref())
                    .await?;
                Ok((page.media_items, page.next_page_token))
            }
        })
    }

    /// One page of picked items.
    pub async fn list_picked_items_page(
        &self,
        session: &PickerSessionId,
        page_token: Option<&str>,
    ) -> Result<ListPickedMediaItemsResponse> {
        let url = join_path(&self.base, "/v1/mediaItems")?;
        let mut query = vec![
            ("sessionId", session.as_str().to_owned()),
            ("pageSize", PICKED_ITEMS_PAGE_SIZE.to_string()),
        ];
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
                "mediaItems.list (picker)",
            )
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_request_id_is_a_v4_uuid() {
        let id = PickerRequestId::new_random();
        let s = id.as_str();
        assert_eq!(PickerRequestId::parse(s).unwrap(), id);
        assert_eq!(&s[14..15], "4");
        assert!(matches!(&s[19..20], "8" | "9" | "a" | "b"));
        assert_ne!(PickerRequestId::new_random(), id);
    }

    #[test]
    fn bad_request_ids_are_refused() {
        assert!(PickerRequestId::parse("not-a-uuid").is_err());
        assert!(PickerRequestId::parse("123e4567-e89b-42d3-a456-42661417400g").is_err());
        assert!(PickerRequestId::parse("123e4567-e89b-42d3-a456-426614174000").is_ok());
    }

    #[test]
    fn create_body_is_empty_or_has_string_max() {
        let empty = CreateSessionBody {
            picking_config: None,
        };
        assert_eq!(serde_json::to_string(&empty).unwrap(), "{}");
        let limited = CreateSessionBody {
            picking_config: Some(PickingConfig {
                max_item_count: Some(10),
            }),
        };
        assert_eq!(
            serde_json::to_string(&limited).unwrap(),
            r#"{"pickingConfig":{"maxItemCount":"10"}}"#
        );
    }
}
