//! The shared HTTP layer: one pooled reqwest client pair, the clock, the retry loop.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use reqwest::Method;
use serde::Serialize;
use serde::de::DeserializeOwned;
use url::Url;

use crate::auth::{AccessToken, TokenProvider};
use crate::clock::{Clock, SystemClock};
use crate::error::{Error, Result};
use crate::retry::{RetryPolicy, random_jitter};

/// Connection pool, clock and retry policy shared by every client of this crate.
///
/// Build it once and clone it: clones share the connection pools. It holds two reqwest
/// clients because API/token calls must not follow redirects (a redirect there is a
/// misconfiguration or an attack, and must not carry our form body elsewhere) while media
/// downloads may be redirected between Google's content hosts.
#[derive(Debug, Clone)]
pub struct HttpClient {
    pub(crate) api: reqwest::Client,
    pub(crate) media: reqwest::Client,
    clock: Arc<dyn Clock>,
    retry: RetryPolicy,
    request_timeout: Duration,
}

/// Builder for [`HttpClient`].
#[derive(Debug, Clone)]
pub struct HttpClientBuilder {
    connect_timeout: Duration,
    request_timeout: Duration,
    clock: Arc<dyn Clock>,
    retry: RetryPolicy,
    user_agent: String,
}

impl Default for HttpClientBuilder {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(30),
            request_timeout: Duration::from_secs(120),
            clock: Arc::new(SystemClock),
            retry: RetryPolicy::default(),
            user_agent: concat!("gphotos-backup/", env!("CARGO_PKG_VERSION")).to_owned(),
        }
    }
}

impl HttpClientBuilder {
    /// Time allowed to establish a TCP/TLS connection (default 30 s).
    pub fn connect_timeout(mut self, d: Duration) -> Self {
        self.connect_timeout = d;
        self
    }

    /// Total time allowed for one JSON API call (default 120 s). Downloads have no total
    /// timeout, only an idle one (see [`crate::Downloader`]).
    pub fn request_timeout(mut self, d: Duration) -> Self {
        self.request_timeout = d;
        self
    }

    /// The clock used for retry sleeps and token expiry (default: the system clock).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The retry policy (default: [`RetryPolicy::default`]).
    pub fn retry_policy(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// The `User-Agent` header.
    pub fn user_agent(mut self, ua: impl Into<String>) -> Self {
        self.user_agent = ua.into();
        self
    }

    /// Builds the client (and its connection pools).
    pub fn build(self) -> Result<HttpClient> {
        let base = || {
            reqwest::Client::builder()
                .connect_timeout(self.connect_timeout)
                .user_agent(self.user_agent.clone())
        };
        let api = base()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(Error::Transport)?;
        let media = base()
            .redirect(reqwest::redirect::Policy::limited(5))
            .build()
            .map_err(Error::Transport)?;
        Ok(HttpClient {
            api,
            media,
            clock: self.clock,
            retry: self.retry,
            request_timeout: self.request_timeout,
        })
    }
}

impl HttpClient {
    /// A client with default settings.
    pub fn new() -> Result<Self> {
        HttpClientBuilder::default().build()
    }

    /// Starts configuring a client.
    pub fn builder() -> HttpClientBuilder {
        HttpClientBuilder::default()
    }

    /// The clock shared by everything built on this client.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// The retry policy.
    pub fn retry_policy(&self) -> &RetryPolicy {
        &self.retry
    }

    /// Sleeps before retry number `retry` if `error` deserves one; `false` means give up.
    pub(crate) async fn backoff(&self, error: &Error, retry: u32, what: &str) -> bool {
        match self.retry.delay_for(error, retry, random_jitter()) {
            Some(delay) => {
                tracing::warn!(
                    request = what,
                    attempt = retry + 1,
                    delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                    error = %error,
                    "retrying after a transient error"
                );
                self.clock.sleep(delay).await;
                true
            }
            None => false,
        }
    }

    /// Runs `attempt` until it succeeds, fails for good, or the policy's attempts run out,
    /// sleeping on the shared clock between tries. Each call of `attempt` must start over
    /// from scratch (fresh request, fresh writer).
    pub(crate) async fn retrying<T, F, Fut>(&self, what: &str, mut attempt: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let mut retry = 0u32;
        loop {
            let error = match attempt().await {
                Ok(value) => return Ok(value),
                Err(e) => e,
            };
            if !self.backoff(&error, retry, what).await {
                return Err(error);
            }
            retry += 1;
        }
    }

    /// Performs an authenticated JSON API call with retries.
    pub(crate) async fn call_json<T: DeserializeOwned>(
        &self,
        tokens: &TokenProvider,
        method: Method,
        url: &Url,
        query: &[(&str, String)],
        body: Option<&(dyn ErasedJson + Sync)>,
        what: &str,
    ) -> Result<T> {
        let body = match body {
            Some(b) => Some(b.to_json()?),
            None => None,
        };
        let send = |token: AccessToken| {
            let mut request = self
                .api
                .request(method.clone(), url.clone())
                .bearer_auth(token.secret())
                .timeout(self.request_timeout)
                .query(query);
            if let Some(bytes) = &body {
                request = request
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .body(bytes.clone());
            }
            async move {
                let (status, bytes) = send_and_read(request).await?;
                serde_json::from_slice(&bytes).map_err(|e| Error::Protocol {
                    context: what.to_owned(),
                    reason: format!("HTTP {status}: {e}"),
                })
            }
        };
        self.retrying(what, || with_token_refresh(tokens, send))
            .await
    }

    /// A plain (unauthenticated) request with retries, e.g. to the OAuth endpoints; the
    /// request is rebuilt by `build` for every attempt. Returns the raw response, whatever
    /// its status, unless it is retryable (5xx, 429) and the retries ran out.
    pub(crate) async fn send_raw_with_retries(
        &self,
        what: &str,
        build: impl Fn(&reqwest::Client) -> reqwest::RequestBuilder,
    ) -> Result<(
        reqwest::StatusCode,
        reqwest::header::HeaderMap,
        bytes::Bytes,
    )> {
        self.retrying(what, || {
            let request = build(&self.api).timeout(self.request_timeout);
            async move {
                let response = request.send().await.map_err(transport)?;
                let status = response.status();
                let headers = response.headers().clone();
                let bytes = response.bytes().await.map_err(transport)?;
                if status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS {
                    return Err(Error::from_api_response(status, &headers, &bytes));
                }
                Ok((status, headers, bytes))
            }
        })
        .await
    }
}

/// Sends with the current access token; after a 401 the token is refreshed (the server may
/// have revoked or expired it earlier than `expires_in` said) and the request sent once more.
pub(crate) async fn with_token_refresh<T, F, Fut>(tokens: &TokenProvider, send: F) -> Result<T>
where
    F: Fn(AccessToken) -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let token = tokens.access_token().await?;
    match send(token.clone()).await {
        Err(Error::Unauthenticated { .. }) => {
            tokens.invalidate(&token);
            send(tokens.access_token().await?).await
        }
        other => other,
    }
}

/// Sends a request and reads the whole body; non-2xx answers become [`Error`]s.
pub(crate) async fn send_and_read(
    request: reqwest::RequestBuilder,
) -> Result<(reqwest::StatusCode, bytes::Bytes)> {
    let response = request.send().await.map_err(transport)?;
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.bytes().await.map_err(transport)?;
    if status.is_success() {
        Ok((status, bytes))
    } else {
        Err(Error::from_api_response(status, &headers, &bytes))
    }
}

/// Maps a reqwest failure: request-building errors are our bug or bad input, not the network.
pub(crate) fn transport(e: reqwest::Error) -> Error {
    if e.is_builder() {
        Error::InvalidUrl {
            url: e.url().map(Url::to_string).unwrap_or_default(),
            reason: e.to_string(),
        }
    } else {
        Error::Transport(e)
    }
}

/// Object-safe "serialise me to JSON" so request bodies of any type can be passed by reference.
pub(crate) trait ErasedJson {
    fn to_json(&self) -> Result<Vec<u8>>;
}

impl<T: Serialize> ErasedJson for T {
    fn to_json(&self) -> Result<Vec<u8>> {
        serde_json::to_vec(self)
            .map_err(|e| Error::InvalidArgument(format!("cannot encode request: {e}")))
    }
}
