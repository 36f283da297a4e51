//! Streaming downloads of media base URLs.

use std::future::Future;
use std::time::Duration;

use futures::StreamExt;
use reqwest::StatusCode;
use tokio::io::{AsyncWrite, AsyncWriteExt};

use crate::auth::{AccessToken, TokenProvider};
use crate::error::{Error, Result};
use crate::http::{HttpClient, transport};

/// Base URLs are bearer-like capabilities for an hour; keep them out of error messages.
fn media_transport(e: reqwest::Error) -> Error {
    transport(e.without_url())
}

/// Downloads media bytes chunk by chunk into any `AsyncWrite`.
///
/// Memory stays bounded (one network chunk at a time). There is a connect timeout and an
/// idle timeout (no bytes for `idle_timeout`), but deliberately no total timeout: a
/// multi-gigabyte video on a slow link must be allowed to finish.
#[derive(Debug, Clone)]
pub struct Downloader {
    http: HttpClient,
    idle_timeout: Duration,
}

impl Downloader {
    /// A downloader on the shared HTTP client, with a 60 s idle timeout.
    pub fn new(http: HttpClient) -> Self {
        Self {
            http,
            idle_timeout: Duration::from_secs(60),
        }
    }

    /// Changes the idle timeout (longest wait for the headers or the next chunk).
    #[must_use]
    pub fn with_idle_timeout(mut self, idle_timeout: Duration) -> Self {
        self.idle_timeout = idle_timeout;
        self
    }

    /// Fetches `url` (a base URL with parameters, e.g. `…=d`) into `writer` and returns the
    /// number of bytes written. One attempt, no retry.
    ///
    /// Picker base URLs need `bearer`; for Library base URLs it is optional. A 403 from the
    /// media host means the base URL expired ([`Error::BaseUrlExpired`]): re-fetch it with
    /// `batch_get_media_items`. A body shorter than `Content-Length` is [`Error::ShortBody`].
    /// On error, `writer` holds a partial file; retry into a fresh writer (see
    /// [`Downloader::download_with_retries`]).
    pub async fn download<W>(
        &self,
        url: &str,
        bearer: Option<&AccessToken>,
        writer: &mut W,
    ) -> Result<u64>
    where
        W: AsyncWrite + Unpin + ?Sized,
    {
        let url = crate::endpoints::parse_url(url)?;
        let mut request = self.http.media.get(url);
        if let Some(token) = bearer {
            request = request.bearer_auth(token.secret());
        }
        let response = tokio::time::timeout(self.idle_timeout, request.send())
            .await
            .map_err(|_| Error::IdleTimeout(self.idle_timeout))?
            .map_err(media_transport)?;
        let status = response.status();
        if !status.is_success() {
            return Err(self.status_error(response).await);
        }
        let expected = response.content_length();
        let mut body = response.bytes_stream();
        let mut received: u64 = 0;
        loop {
            let next = tokio::time::timeout(self.idle_timeout, body.next())
                .await
                .map_err(|_| Error::IdleTimeout(self.idle_timeout))?;
            let Some(chunk) = next else { break };
            let chunk = chunk.map_err(media_transport)?;
            writer.write_all(&chunk).await?;
            received += chunk.len() as u64;
        }
        writer.flush().await?;
        match expected {
            Some(expected) if expected != received => Err(Error::ShortBody { expected, received }),
            _ => Ok(received),
        }
    }

    /// [`Downloader::download`] with the client's retry policy. Every attempt writes into a
    /// fresh writer from `fresh_writer` (e.g. truncating a temporary file), so a partial
    /// body never mixes with a retried one. A 401 refreshes the token once.
    ///
    /// Returns the writer of the successful attempt and the byte count. Expired base URLs
    /// and other non-retryable errors are returned at once.
    pub async fn download_with_retries<W, F, Fut>(
        &self,
        url: &str,
        tokens: Option<&TokenProvider>,
        mut fresh_writer: F,
    ) -> Result<(W, u64)>
    where
        W: AsyncWrite + Unpin,
        F: FnMut() -> Fut,
        Fut: Future<Output = std::io::Result<W>>,
    {
        self.http
            .retrying("media download", || {
                let writer = fresh_writer();
                async move {
                    let mut writer = writer.await?;
                    let Some(provider) = tokens else {
                        let n = self.download(url, None, &mut writer).await?;
                        return Ok((writer, n));
                    };
                    let token = provider.access_token().await?;
                    let n = match self.download(url, Some(&token), &mut writer).await {
                        // A 401 comes before any body byte, so the writer is still empty.
                        Err(Error::Unauthenticated { .. }) => {
                            provider.invalidate(&token);
                            let token = provider.access_token().await?;
                            self.download(url, Some(&token), &mut writer).await?
                        }
                        other => other?,
                    };
                    Ok((writer, n))
                }
            })
            .await
    }

    async fn status_error(&self, response: reqwest::Response) -> Error {
        let status = response.status();
        if status == StatusCode::FORBIDDEN {
            return Error::BaseUrlExpired;
        }
        let headers = response.headers().clone();
        // Error bodies are small; a broken one just leaves the message empty.
        let body = tokio::time::timeout(self.idle_timeout, response.bytes())
            .await
            .ok()
            .and_then(std::result::Result::ok)
            .unwrap_or_default();
        Error::from_api_response(status, &headers, &body)
    }
}
