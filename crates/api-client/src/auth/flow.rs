//! The loopback authorisation-code flow with PKCE (spec §4.2, RFC 8252).

use std::fmt;
use std::time::Duration;

use oauth2::{CsrfToken, PkceCodeChallenge};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use url::Url;

use super::{OAuthClient, Scope, Tokens};
use crate::error::{Error, Result};

/// A started authorisation: the loopback listener is bound and the consent URL is ready.
///
/// Both completion methods take `&self`, so a CLI can race the loopback redirect against a
/// URL pasted on stdin with `tokio::select!`.
pub struct PendingAuthorization {
    oauth: OAuthClient,
    listener: TcpListener,
    authorize_url: Url,
    redirect_uri: Url,
    state: String,
    verifier: String,
    scopes: Vec<Scope>,
}

impl fmt::Debug for PendingAuthorization {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The URL carries only the public PKCE challenge and state; the verifier stays hidden.
        f.debug_struct("PendingAuthorization")
            .field("redirect_uri", &self.redirect_uri.as_str())
            .field("scopes", &self.scopes)
            .finish_non_exhaustive()
    }
}

/// How long one browser connection may take to send its request line and headers.
const REQUEST_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Upper bound on a request head; the redirect is a single short GET.
const MAX_REQUEST_HEAD: usize = 16 * 1024;

pub(super) async fn start(
    oauth: OAuthClient,
    scopes: &[Scope],
    port: u16,
) -> Result<PendingAuthorization> {
    if scopes.is_empty() {
        return Err(Error::InvalidArgument(
            "at least one scope must be requested".to_owned(),
        ));
    }
    // RFC 8252 §7.3 recommends the IP literal over "localhost" (no resolver surprises).
    let listener = TcpListener::bind(("127.0.0.1", port)).await?;
    let bound = listener.local_addr()?.port();
    let redirect_uri = crate::endpoints::parse_url(&format!("http://127.0.0.1:{bound}/"))?;
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let client = oauth.oauth2_client(Some(oauth2::RedirectUrl::from_url(redirect_uri.clone())));
    let (authorize_url, state) = client
        .authorize_url(CsrfToken::new_random)
        .add_scopes(
            scopes
                .iter()
                .map(|s| oauth2::Scope::new(s.as_str().to_owned())),
        )
        .set_pkce_challenge(challenge)
        .url();
    Ok(PendingAuthorization {
        oauth,
        listener,
        authorize_url,
        redirect_uri,
        state: state.secret().clone(),
        verifier: verifier.secret().clone(),
        scopes: scopes.to_vec(),
    })
}

/// The parameters Google appends to the redirect URI.
#[derive(Debug, Default)]
struct RedirectParams {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

impl RedirectParams {
    fn from_url(url: &Url) -> Self {
        let mut params = Self::default();
        for (k, v) in url.query_pairs() {
            match k.as_ref() {
                "code" => params.code = Some(v.into_owned()),
                "state" => params.state = Some(v.into_owned()),
                "error" => params.error = Some(v.into_owned()),
                _ => {}
            }
        }
        params
    }

    fn is_redirect(&self) -> bool {
        self.code.is_some() || self.error.is_some() || self.state.is_some()
    }
}

impl PendingAuthorization {
    /// The consent URL to open in a browser (print it before waiting).
    pub fn authorize_url(&self) -> &Url {
        &self.authorize_url
    }

    /// The loopback redirect URI (`http://127.0.0.1:PORT/`).
    pub fn redirect_uri(&self) -> &Url {
        &self.redirect_uri
    }

    /// The scopes being requested.
    pub fn requested_scopes(&self) -> &[Scope] {
        &self.scopes
    }

    /// Waits for the browser's redirect on the loopback listener, answers it with a small
    /// page, and exchanges the code for tokens.
    ///
    /// Requests that are not the redirect (e.g. `/favicon.ico`) get a 404 and are ignored.
    /// Waits indefinitely; wrap it in a timeout if needed.
    pub async fn wait_for_redirect(&self) -> Result<Tokens> {
        loop {
            let (mut stream, _) = self.listener.accept().await?;
            let Ok(Ok(target)) =
                tokio::time::timeout(REQUEST_READ_TIMEOUT, read_request_target(&mut stream)).await
            else {
                continue;
            };
            let Some(target) = target else {
                respond(
                    &mut stream,
                    "405 Method Not Allowed",
                    "Only GET is supported here.",
                )
                .await;
                continue;
            };
            let url = match self.redirect_uri.join(&target) {
                Ok(url) => url,
                Err(_) => {
                    respond(&mut stream, "400 Bad Request", "Malformed request.").await;
                    continue;
                }
            };
            let params = RedirectParams::from_url(&url);
            if !params.is_redirect() {
                respond(&mut stream, "404 Not Found", "Nothing here.").await;
                continue;
            }
            let outcome = self.complete(params).await;
            let (status, text) = match &outcome {
                Ok(_) => (
                    "200 OK",
                    "Authorisation complete. You can close this tab and return to the terminal.",
                ),
                Err(Error::AccessDenied { .. }) => (
                    "200 OK",
                    "Access was denied. Close this tab; run `gphotos-backup auth` again to retry.",
                ),
                Err(_) => (
                    "400 Bad Request",
                    "Authorisation failed. Close this tab and see the terminal for details.",
                ),
            };
            respond(&mut stream, status, text).await;
            return outcome;
        }
    }

    /// Completes the flow from the URL the browser ended on (for headless machines: the user
    /// copies the address bar of the failed `http://127.0.0.1:PORT/?code=…` page).
    pub async fn complete_from_redirect_url(&self, pasted_url: &str) -> Result<Tokens> {
        let trimmed = pasted_url.trim();
        let url = Url::parse(trimmed).map_err(|e| {
            Error::InvalidRedirect(format!(
                "{e}; paste the whole address starting with {}",
                self.redirect_uri
            ))
        })?;
        let params = RedirectParams::from_url(&url);
        if !params.is_redirect() {
            return Err(Error::InvalidRedirect(
                "the URL has no `code` parameter; paste the address of the page the browser \
                 showed after you allowed access"
                    .to_owned(),
            ));
        }
        self.complete(params).await
    }

    async fn complete(&self, params: RedirectParams) -> Result<Tokens> {
        if params.state.as_deref() != Some(self.state.as_str()) {
            return Err(Error::StateMismatch);
        }
        if let Some(error) = params.error {
            return Err(Error::AccessDenied { error });
        }
        let code = params
            .code
            .ok_or_else(|| Error::InvalidRedirect("no `code` parameter".to_owned()))?;
        self.oauth
            .exchange_code(&code, &self.verifier, &self.redirect_uri, &self.scopes)
            .await
    }
}

/// Reads the request head and returns the target of a GET (`None` for other methods).
async fn read_request_target(stream: &mut TcpStream) -> std::io::Result<Option<String>> {
    let mut head = Vec::with_capacity(1024);
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
        if head.len() > MAX_REQUEST_HEAD {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "request head too large",
            ));
        }
    }
    let text = String::from_utf8_lossy(&head);
    let mut parts = text.lines().next().unwrap_or_default().split_whitespace();
    match (parts.next(), parts.next()) {
        (Some("GET"), Some(target)) => Ok(Some(target.to_owned())),
        (Some(_), Some(_)) => Ok(None),
        _ => Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "no request line",
        )),
    }
}

async fn respond(stream: &mut TcpStream, status: &str, text: &str) {
    let body = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>gphotos-backup</title></head>\
         <body style=\"font-family:sans-serif\"><h1>gphotos-backup</h1><p>{text}</p></body></html>"
    );
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\n\
         Connection: close\r\nCache-Control: no-store\r\n\r\n{body}",
        body.len()
    );
    // The browser may already have gone; the outcome is reported in the terminal anyway.
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.shutdown().await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::endpoints::Endpoints;
    use crate::http::HttpClient;
    use crate::secret::ClientSecret;

    async fn pending() -> PendingAuthorization {
        let endpoints = Endpoints::default();
        let oauth = OAuthClient::new(
            HttpClient::new().unwrap(),
            ClientSecret::new("cid", "csecret", &endpoints),
            &endpoints,
        );
        oauth
            .start_authorization(&[Scope::LIBRARY_READONLY_APPCREATED], None)
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn authorize_url_carries_pkce_s256_state_and_loopback_redirect() {
        let p = pending().await;
        let q: std::collections::HashMap<String, String> =
            p.authorize_url().query_pairs().into_owned().collect();
        assert_eq!(q["response_type"], "code");
        assert_eq!(q["client_id"], "cid");
        assert_eq!(q["code_challenge_method"], "S256");
        assert_eq!(q["scope"], Scope::LIBRARY_READONLY_APPCREATED.as_str());
        assert_eq!(q["redirect_uri"], p.redirect_uri().as_str());
        assert!(q["state"].len() >= 16);
        assert!(!q.contains_key("client_secret"));
        // The challenge is BASE64URL(SHA256(verifier)) without padding: 43 chars.
        assert_eq!(q["code_challenge"].len(), 43);
        // Checked against an independent S256 implementation (the fake's).
        assert_eq!(q["code_challenge"], fake_google::pkce_s256(&p.verifier));
        assert!(p.redirect_uri().as_str().starts_with("http://127.0.0.1:"));
        assert_ne!(p.redirect_uri().port(), Some(0));
    }

    #[tokio::test]
    async fn state_mismatch_and_denial_are_reported_before_any_exchange() {
        let p = pending().await;
        let mut bad = p.redirect_uri().clone();
        bad.set_query(Some("code=abc&state=forged"));
        assert!(matches!(
            p.complete_from_redirect_url(bad.as_str()).await,
            Err(Error::StateMismatch)
        ));
        let mut denied = p.redirect_uri().clone();
        denied
            .query_pairs_mut()
            .append_pair("error", "access_denied")
            .append_pair("state", &p.state);
        let e = p
            .complete_from_redirect_url(denied.as_str())
            .await
            .unwrap_err();
        assert!(matches!(e, Error::AccessDenied { .. }), "{e:?}");
        assert!(e.to_string().contains("denied"));
        assert!(matches!(
            p.complete_from_redirect_url("not a url").await,
            Err(Error::InvalidRedirect(_))
        ));
        assert!(matches!(
            p.complete_from_redirect_url("http://127.0.0.1:1/").await,
            Err(Error::InvalidRedirect(_))
        ));
    }

    #[tokio::test]
    async fn two_flows_get_different_state_and_challenge() {
        let a = pending().await;
        let b = pending().await;
        assert_ne!(a.state, b.state);
        assert_ne!(a.verifier, b.verifier);
        assert_ne!(a.redirect_uri(), b.redirect_uri());
    }

    #[tokio::test]
    async fn fixed_port_is_used() {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = probe.local_addr().unwrap().port();
        drop(probe);
        let endpoints = Endpoints::default();
        let oauth = OAuthClient::new(
            HttpClient::new().unwrap(),
            ClientSecret::new("cid", "csecret", &endpoints),
            &endpoints,
        );
        let p = oauth
            .start_authorization(&Scope::defaults(), Some(port))
            .await
            .unwrap();
        assert_eq!(p.redirect_uri().port(), Some(port));
    }
}
