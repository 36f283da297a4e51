//! OAuth 2.0 for installed apps: scopes, tokens, the loopback authorisation flow, the token
//! file and the refreshing token provider.

mod flow;
mod provider;
mod store;

use std::borrow::Cow;
use std::fmt;

use chrono::{DateTime, Utc};
use oauth2::basic::{BasicClient, BasicErrorResponse, BasicErrorResponseType, BasicTokenResponse};
use oauth2::{
    AuthType, AuthUrl, ClientId, EndpointNotSet, EndpointSet, HttpRequest, HttpResponse,
    RedirectUrl, RequestTokenError, TokenResponse, TokenUrl,
};
use serde::{Deserialize, Serialize};
use url::Url;

pub use flow::PendingAuthorization;
pub use provider::TokenProvider;
pub use store::TokenStore;

use crate::endpoints::Endpoints;
use crate::error::{Error, Result};
use crate::http::HttpClient;
use crate::secret::ClientSecret;

/// An OAuth scope (full URL form).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Scope(Cow<'static, str>);

impl Scope {
    /// Read the items and albums this app created. The default read scope since 2025.
    pub const LIBRARY_READONLY_APPCREATED: Scope = Scope(Cow::Borrowed(
        "https://www.googleapis.com/auth/photoslibrary.readonly.appcreateddata",
    ));
    /// The whole-library read scope Google removed on 2025-03-31. Tokens may still carry it,
    /// but calls authorised only by it get 403; request it only to diagnose old setups.
    pub const LIBRARY_READONLY_REMOVED: Scope = Scope(Cow::Borrowed(
        "https://www.googleapis.com/auth/photoslibrary.readonly",
    ));
    /// Picker API sessions and picked items' base URLs.
    pub const PICKER_READONLY: Scope = Scope(Cow::Borrowed(
        "https://www.googleapis.com/auth/photospicker.mediaitems.readonly",
    ));

    /// A scope from its text.
    pub fn new(scope: impl Into<String>) -> Self {
        Self(Cow::Owned(scope.into()))
    }

    /// The scope URL.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The scopes requested when the user names none.
    pub fn defaults() -> Vec<Scope> {
        vec![Self::LIBRARY_READONLY_APPCREATED]
    }
}

impl fmt::Debug for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Scope({})", self.0)
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

macro_rules! secret_string {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// Wraps a token value.
            pub fn new(value: impl Into<String>) -> Self {
                Self(value.into())
            }
            /// The token value. Never log it.
            pub fn secret(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(concat!(stringify!($name), "([redacted])"))
            }
        }
    };
}

secret_string!(
    /// An OAuth access token (Bearer). `Debug` redacts it.
    AccessToken
);
secret_string!(
    /// An OAuth refresh token. `Debug` redacts it.
    RefreshToken
);

/// The tokens of one authorisation, as saved in the token file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tokens {
    /// Bearer token for API calls.
    pub access_token: AccessToken,
    /// Long-lived token to obtain new access tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<RefreshToken>,
    /// When the access token stops working (`None`: unknown, assume valid until a 401).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<DateTime<Utc>>,
    /// Scopes the user actually granted (they may untick some on the consent screen).
    #[serde(default)]
    pub scopes: Vec<Scope>,
}

impl Tokens {
    /// Whether `scope` was granted.
    pub fn has_scope(&self, scope: &Scope) -> bool {
        self.scopes.contains(scope)
    }

    /// Whether the access token expires before `now + margin`.
    pub fn expires_within(&self, now: DateTime<Utc>, margin: std::time::Duration) -> bool {
        let margin = chrono::Duration::from_std(margin).unwrap_or(chrono::Duration::MAX);
        self.expires_at.is_some_and(|at| at <= now + margin)
    }
}

type Oauth2Client =
    BasicClient<EndpointSet, EndpointNotSet, EndpointNotSet, EndpointNotSet, EndpointSet>;

/// Talks to Google's OAuth endpoints for one client (`client_secret.json`).
#[derive(Debug, Clone)]
pub struct OAuthClient {
    http: HttpClient,
    secret: ClientSecret,
    revoke_url: Url,
}

/// Which grant a token request was for; decides what `invalid_grant` means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Grant {
    AuthorizationCode,
    RefreshToken,
}

impl OAuthClient {
    /// An OAuth client. The auth and token URLs come from `secret` (the file);
    /// `endpoints` supplies the revocation URL.
    pub fn new(http: HttpClient, secret: ClientSecret, endpoints: &Endpoints) -> Self {
        Self {
            http,
            secret,
            revoke_url: endpoints.revoke_url.clone(),
        }
    }

    /// The client file in use.
    pub fn client_secret(&self) -> &ClientSecret {
        &self.secret
    }

    /// The shared HTTP client.
    pub fn http(&self) -> &HttpClient {
        &self.http
    }

    /// Starts the loopback authorisation flow: binds `127.0.0.1:port` (0 or `None` = any
    /// free port) and builds the consent URL with PKCE (S256) and a random `state`.
    ///
    /// Show [`PendingAuthorization::authorize_url`] to the user, then await
    /// [`PendingAuthorization::wait_for_redirect`] (or, on a headless machine,
    /// [`PendingAuthorization::complete_from_redirect_url`] with the URL they paste).
    pub async fn start_authorization(
        &self,
        scopes: &[Scope],
        port: Option<u16>,
    ) -> Result<PendingAuthorization> {
        flow::start(self.clone(), scopes, port.unwrap_or(0)).await
    }

    /// Uses the refresh token of `current` to get a new access token. Keeps the refresh
    /// token and scopes when Google's answer omits them.
    pub async fn refresh(&self, current: &Tokens) -> Result<Tokens> {
        let Some(refresh) = &current.refresh_token else {
            return Err(Error::ReauthorizationRequired {
                reason: "the saved authorisation has no refresh token".to_owned(),
            });
        };
        let client = self.oauth2_client(None);
        let http = self.oauth_http();
        let response = client
            .exchange_refresh_token(&oauth2::RefreshToken::new(refresh.secret().to_owned()))
            .request_async(&http)
            .await
            .map_err(|e| map_token_error(e, Grant::RefreshToken))?;
        Ok(self.tokens_from(&response, Some(current), &current.scopes))
    }

    /// Revokes the grant behind `tokens` (the refresh token if any, else the access token).
    pub async fn revoke(&self, tokens: &Tokens) -> Result<()> {
        let token = tokens
            .refresh_token
            .as_ref()
            .map_or_else(|| tokens.access_token.secret(), RefreshToken::secret);
        let (status, headers, body) = self
            .http
            .send_raw_with_retries("oauth2.revoke", |client| {
                // In the form body, not the `?token=` query Google also accepts: URLs end up
                // in error messages and logs, tokens must not.
                client
                    .post(self.revoke_url.clone())
                    .header(
                        reqwest::header::CONTENT_TYPE,
                        "application/x-www-form-urlencoded",
                    )
                    .body(form_urlencoded_token(token))
            })
            .await?;
        if status.is_success() {
            Ok(())
        } else {
            Err(oauth_error_body(status, &headers, &body))
        }
    }

    pub(crate) async fn exchange_code(
        &self,
        code: &str,
        verifier: &str,
        redirect_uri: &Url,
        requested: &[Scope],
    ) -> Result<Tokens> {
        let client = self.oauth2_client(Some(RedirectUrl::from_url(redirect_uri.clone())));
        let http = self.oauth_http();
        let response = client
            .exchange_code(oauth2::AuthorizationCode::new(code.to_owned()))
            .set_pkce_verifier(oauth2::PkceCodeVerifier::new(verifier.to_owned()))
            .request_async(&http)
            .await
            .map_err(|e| map_token_error(e, Grant::AuthorizationCode))?;
        Ok(self.tokens_from(&response, None, requested))
    }

    fn oauth2_client(&self, redirect: Option<RedirectUrl>) -> Oauth2Client {
        let client = BasicClient::new(ClientId::new(self.secret.client_id.clone()))
            .set_client_secret(oauth2::ClientSecret::new(self.secret.secret().to_owned()))
            .set_auth_uri(AuthUrl::from_url(self.secret.auth_uri.clone()))
            .set_token_uri(TokenUrl::from_url(self.secret.token_uri.clone()))
            // Google documents client_id/client_secret as form fields for installed apps.
            .set_auth_type(AuthType::RequestBody);
        match redirect {
            Some(r) => client.set_redirect_uri(r),
            None => client,
        }
    }

    /// The HTTP function handed to the oauth2 crate: our pooled client, with retries on
    /// 5xx/429/connection errors. 4xx answers are passed back for oauth2 to parse.
    fn oauth_http(
        &self,
    ) -> impl Fn(HttpRequest) -> futures::future::BoxFuture<'static, Result<HttpResponse>> + use<>
    {
        let http = self.http.clone();
        move |request: HttpRequest| {
            let http = http.clone();
            Box::pin(async move { execute_token_request(&http, request).await })
        }
    }

    fn tokens_from(
        &self,
        response: &BasicTokenResponse,
        previous: Option<&Tokens>,
        fallback_scopes: &[Scope],
    ) -> Tokens {
        let now = self.http.clock().now();
        let scopes = response.scopes().map_or_else(
            || fallback_scopes.to_vec(),
            |granted| granted.iter().map(|s| Scope::new(s.as_str())).collect(),
        );
        Tokens {
            access_token: AccessToken::new(response.access_token().secret().clone()),
            refresh_token: response
                .refresh_token()
                .map(|r| RefreshToken::new(r.secret().clone()))
                .or_else(|| previous.and_then(|p| p.refresh_token.clone())),
            expires_at: response
                .expires_in()
                .and_then(|d| chrono::Duration::from_std(d).ok())
                .map(|d| now + d),
            scopes,
        }
    }
}

/// Runs a request prepared by the oauth2 crate on our pooled client, with retries on
/// 5xx/429/connection errors; other answers go back to oauth2 to parse.
async fn execute_token_request(http: &HttpClient, request: HttpRequest) -> Result<HttpResponse> {
    let (parts, body) = request.into_parts();
    let url = parts.uri.to_string();
    let (status, headers, bytes) = http
        .send_raw_with_retries("oauth2.token", |client| {
            client
                .request(parts.method.clone(), &url)
                .headers(parts.headers.clone())
                .body(body.clone())
        })
        .await?;
    let mut out = oauth2::http::Response::builder().status(status);
    if let Some(h) = out.headers_mut() {
        *h = headers;
    }
    out.body(bytes.to_vec()).map_err(|e| Error::Protocol {
        context: "token endpoint".to_owned(),
        reason: e.to_string(),
    })
}

fn form_urlencoded_token(token: &str) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .append_pair("token", token)
        .finish()
}

/// The flat OAuth error body `{"error","error_description"}` (spec §4.3).
fn oauth_error_body(
    status: reqwest::StatusCode,
    headers: &reqwest::header::HeaderMap,
    body: &[u8],
) -> Error {
    match serde_json::from_slice::<BasicErrorResponse>(body) {
        Ok(response) => Error::OAuth {
            error: response.error().as_ref().to_owned(),
            description: response.error_description().cloned(),
        },
        Err(_) => Error::from_api_response(status, headers, body),
    }
}

fn map_token_error(e: RequestTokenError<Error, BasicErrorResponse>, grant: Grant) -> Error {
    match e {
        RequestTokenError::ServerResponse(response) => {
            let description = response.error_description().cloned();
            match (response.error(), grant) {
                (BasicErrorResponseType::InvalidGrant, Grant::RefreshToken) => {
                    Error::ReauthorizationRequired {
                        reason: format!(
                            "invalid_grant: {}",
                            description
                                .as_deref()
                                .unwrap_or("refresh token expired or revoked")
                        ),
                    }
                }
                (kind, _) => Error::OAuth {
                    error: kind.as_ref().to_owned(),
                    description,
                },
            }
        }
        RequestTokenError::Request(e) => e,
        // A body that failed to parse was a 2xx answer: it may hold tokens, so never quote it.
        RequestTokenError::Parse(e, _body) => Error::Protocol {
            context: "token endpoint".to_owned(),
            reason: format!("unexpected token response ({e})"),
        },
        RequestTokenError::Other(reason) => Error::Protocol {
            context: "token endpoint".to_owned(),
            reason,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_constants_are_the_full_urls() {
        assert_eq!(
            Scope::LIBRARY_READONLY_APPCREATED.as_str(),
            "https://www.googleapis.com/auth/photoslibrary.readonly.appcreateddata"
        );
        assert_eq!(
            Scope::PICKER_READONLY.as_str(),
            "https://www.googleapis.com/auth/photospicker.mediaitems.readonly"
        );
        assert_eq!(
            Scope::new(Scope::PICKER_READONLY.as_str()),
            Scope::PICKER_READONLY
        );
    }

    #[test]
    fn token_debug_is_redacted() {
        let t = Tokens {
            access_token: AccessToken::new("ya29.secret-access"),
            refresh_token: Some(RefreshToken::new("1//secret-refresh")),
            expires_at: None,
            scopes: Scope::defaults(),
        };
        let dbg = format!("{t:?}");
        assert!(
            !dbg.contains("secret-access") && !dbg.contains("secret-refresh"),
            "{dbg}"
        );
        assert!(dbg.contains("redacted"));
    }

    #[test]
    fn expiry_margin() {
        let now = Utc::now();
        let t = Tokens {
            access_token: AccessToken::new("a"),
            refresh_token: None,
            expires_at: Some(now + chrono::Duration::seconds(30)),
            scopes: vec![],
        };
        assert!(t.expires_within(now, std::time::Duration::from_secs(60)));
        assert!(!t.expires_within(now, std::time::Duration::from_secs(10)));
    }

    #[test]
    fn invalid_grant_on_refresh_requires_reauthorization() {
        let body: BasicErrorResponse = serde_json::from_str(
            r#"{"error":"invalid_grant","error_description":"Token has been expired or revoked."}"#,
        )
        .unwrap();
        let e = map_token_error(
            RequestTokenError::ServerResponse(body.clone()),
            Grant::RefreshToken,
        );
        assert!(matches!(e, Error::ReauthorizationRequired { .. }));
        assert!(e.to_string().contains("Token has been expired or revoked."));
        let e = map_token_error(
            RequestTokenError::ServerResponse(body),
            Grant::AuthorizationCode,
        );
        assert!(matches!(e, Error::OAuth { ref error, .. } if error == "invalid_grant"));
    }
}
