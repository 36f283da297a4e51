//! OAuth 2.0 for installed apps: scripted consent, the token endpoint (authorization code with
//! PKCE, refresh), revocation, and the token store the API hosts authenticate against.

use std::collections::{HashMap, VecDeque};
use std::time::Instant;

use chrono::{DateTime, TimeDelta, Utc};
use url::Url;

use crate::config::{ConsentBehaviour, DeviceFlowConfig, RemovedScopePolicy};
use crate::rng::{b64, sha256};

/// Scope URLs the fake knows about (spec §2, /work/notes/endpoints.md).
pub mod scopes {
    /// Read items and albums the app created (the default read scope since 2025).
    pub const LIBRARY_READONLY_APPCREATED: &str =
        "https://www.googleapis.com/auth/photoslibrary.readonly.appcreateddata";
    /// Edit items and albums the app created.
    pub const LIBRARY_EDIT_APPCREATED: &str =
        "https://www.googleapis.com/auth/photoslibrary.edit.appcreateddata";
    /// Upload.
    pub const LIBRARY_APPENDONLY: &str = "https://www.googleapis.com/auth/photoslibrary.appendonly";
    /// Picker API and picker base URLs.
    pub const PICKER_READONLY: &str =
        "https://www.googleapis.com/auth/photospicker.mediaitems.readonly";
    /// Removed on 2025-03-31: full access.
    pub const LIBRARY_FULL_REMOVED: &str = "https://www.googleapis.com/auth/photoslibrary";
    /// Removed on 2025-03-31: read the whole library.
    pub const LIBRARY_READONLY_REMOVED: &str =
        "https://www.googleapis.com/auth/photoslibrary.readonly";
    /// Removed on 2025-03-31: sharing.
    pub const LIBRARY_SHARING_REMOVED: &str =
        "https://www.googleapis.com/auth/photoslibrary.sharing";
    /// The removed scopes.
    pub const REMOVED: [&str; 3] = [
        LIBRARY_FULL_REMOVED,
        LIBRARY_READONLY_REMOVED,
        LIBRARY_SHARING_REMOVED,
    ];
    /// Scopes that authorise Library reads today: only `readonly.appcreateddata` ("Accessing
    /// app-created media items requires the photoslibrary.readonly.appcreateddata scope",
    /// Google's access-media-items guide); `edit.appcreateddata` and `appendonly` do not.
    pub const LIBRARY_READ: [&str; 1] = [LIBRARY_READONLY_APPCREATED];
}

/// The fake's OAuth client id.
pub const CLIENT_ID: &str = "fake-client.apps.googleusercontent.com";
/// The fake's OAuth client secret.
pub const CLIENT_SECRET: &str = "fake-secret";

/// Access token lifetime reported as `expires_in`.
pub(crate) const ACCESS_TTL_SECS: i64 = 3599;
/// Testing-mode refresh token lifetime (spec §4.4).
const TESTING_REFRESH_TTL: TimeDelta = TimeDelta::days(7);
/// Authorization codes are short-lived.
const CODE_TTL: TimeDelta = TimeDelta::minutes(10);
/// Refresh tokens per client and account before the oldest dies (spec §4.4).
const REFRESH_CAP: usize = 100;

/// Tokens handed out by [`crate::FakeGoogle::issue_tokens`] or the token endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedTokens {
    /// Bearer token for API calls.
    pub access_token: String,
    /// Refresh token.
    pub refresh_token: String,
    /// Seconds until the access token expires (on the fake clock).
    pub expires_in: u64,
    /// Granted scopes.
    pub scopes: Vec<String>,
}

#[derive(Debug)]
struct AuthCode {
    redirect_uri: String,
    scopes: Vec<String>,
    challenge: Option<(String, String)>,
    issued: DateTime<Utc>,
    used: bool,
}

#[derive(Debug)]
struct DeviceAuth {
    user_code: String,
    scopes: Vec<String>,
    expires: DateTime<Utc>,
    /// `None` while the user has not acted; `Some(None)` denied; `Some(Some(scopes))` approved.
    decision: Option<Option<Vec<String>>>,
    last_poll: Option<Instant>,
    redeemed: bool,
}

/// Device-flow grant type.
const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

#[derive(Debug)]
struct Grant {
    scopes: Vec<String>,
    issued: DateTime<Utc>,
    revoked: bool,
}

#[derive(Debug)]
struct Access {
    grant: u64,
    expires: DateTime<Utc>,
}

/// An OAuth endpoint error: HTTP status, `error`, `error_description` (flat body, spec §4.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OAuthError {
    pub status: u16,
    pub error: &'static str,
    pub description: String,
}

fn oerr(status: u16, error: &'static str, description: impl Into<String>) -> OAuthError {
    OAuthError {
        status,
        error,
        description: description.into(),
    }
}

fn expired_or_revoked() -> OAuthError {
    oerr(400, "invalid_grant", "Token has been expired or revoked.")
}

/// Outcome of the consent screen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Consent {
    Redirect(String),
    /// Google shows an error page instead of redirecting (bad client or redirect URI).
    ErrorPage {
        status: u16,
        message: String,
    },
}

/// Why an API request is not authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AuthFailure {
    Missing,
    Invalid,
}

/// All OAuth state of one fake.
#[derive(Debug)]
pub(crate) struct OAuthState {
    secret: [u8; 32],
    counter: u64,
    codes: HashMap<String, AuthCode>,
    grants: HashMap<u64, Grant>,
    refresh: HashMap<String, u64>,
    access: HashMap<String, Access>,
    refresh_order: VecDeque<u64>,
    devices: HashMap<String, DeviceAuth>,
    pub device_flow: DeviceFlowConfig,
    pub consent: ConsentBehaviour,
    pub removed_scope_policy: RemovedScopePolicy,
    pub testing_mode: bool,
}

impl OAuthState {
    pub(crate) fn new(
        secret: [u8; 32],
        consent: ConsentBehaviour,
        removed_scope_policy: RemovedScopePolicy,
        testing_mode: bool,
        device_flow: DeviceFlowConfig,
    ) -> Self {
        Self {
            secret,
            counter: 0,
            codes: HashMap::new(),
            grants: HashMap::new(),
            refresh: HashMap::new(),
            access: HashMap::new(),
            refresh_order: VecDeque::new(),
            devices: HashMap::new(),
            device_flow,
            consent,
            removed_scope_policy,
            testing_mode,
        }
    }

    fn fresh(&mut self, label: &str) -> String {
        self.counter += 1;
        b64(&sha256(&[
            &self.secret,
            label.as_bytes(),
            &self.counter.to_le_bytes(),
        ]))
    }

    /// The consent screen (spec §4.2, §6.5).
    pub(crate) fn authorize(&mut self, q: &HashMap<String, String>, now: DateTime<Utc>) -> Consent {
        let get = |k: &str| q.get(k).map(String::as_str).unwrap_or("");
        if get("client_id") != CLIENT_ID {
            return Consent::ErrorPage {
                status: 401,
                message: "Error 401: invalid_client. The OAuth client was not found.".into(),
            };
        }
        let redirect = get("redirect_uri");
        let Some(mut url) = Url::parse(redirect).ok().filter(is_loopback) else {
            return Consent::ErrorPage {
                status: 400,
                message: format!(
                    "Error 400: redirect_uri_mismatch. {redirect:?} is not a loopback URI."
                ),
            };
        };
        let state = q.get("state").cloned();
        let mut redirect_with = |pairs: &[(&str, &str)]| {
            {
                let mut qp = url.query_pairs_mut();
                for (k, v) in pairs {
                    qp.append_pair(k, v);
                }
                if let Some(s) = &state {
                    qp.append_pair("state", s);
                }
            }
            Consent::Redirect(url.to_string())
        };
        if get("response_type") != "code" {
            return redirect_with(&[("error", "unsupported_response_type")]);
        }
        let requested: Vec<String> = get("scope").split_whitespace().map(str::to_owned).collect();
        if requested.is_empty() {
            return redirect_with(&[
                ("error", "invalid_request"),
                ("error_description", "Missing required parameter: scope"),
            ]);
        }
        if self.removed_scope_policy == RemovedScopePolicy::RejectAtConsent
            && requested
                .iter()
                .any(|s| scopes::REMOVED.contains(&s.as_str()))
        {
            return redirect_with(&[
                ("error", "invalid_scope"),
                ("error_description", "Some requested scopes were invalid."),
            ]);
        }
        let challenge = match (
            q.get("code_challenge"),
            q.get("code_challenge_method").map(String::as_str),
        ) {
            (None, _) => None,
            (Some(c), None | Some("plain")) => Some((c.clone(), "plain".to_owned())),
            (Some(c), Some("S256")) => Some((c.clone(), "S256".to_owned())),
            (Some(_), Some(_)) => {
                return redirect_with(&[
                    ("error", "invalid_request"),
                    ("error_description", "Invalid code_challenge_method"),
                ]);
            }
        };
        let granted: Vec<String> = match &self.consent {
            ConsentBehaviour::Deny => return redirect_with(&[("error", "access_denied")]),
            ConsentBehaviour::Approve => requested,
            ConsentBehaviour::ReduceScope(drop) => requested
                .into_iter()
                .filter(|s| !drop.contains(s))
                .collect(),
        };
        let code = format!("4/0A{}", self.fresh("code"));
        self.codes.insert(
            code.clone(),
            AuthCode {
                redirect_uri: redirect.to_owned(),
                scopes: granted.clone(),
                challenge,
                issued: now,
                used: false,
            },
        );
        let scope = granted.join(" ");
        redirect_with(&[("code", &code), ("scope", &scope)])
    }

    /// `POST /token`.
    pub(crate) fn token(
        &mut self,
        form: &HashMap<String, String>,
        now: DateTime<Utc>,
    ) -> Result<serde_json::Value, OAuthError> {
        let get = |k: &str| form.get(k).map(String::as_str);
        match get("client_id") {
            None => {
                return Err(oerr(
                    400,
                    "invalid_request",
                    "Missing required parameter: client_id",
                ));
            }
            Some(CLIENT_ID) => {}
            Some(_) => {
                return Err(oerr(
                    401,
                    "invalid_client",
                    "The OAuth client was not found.",
                ));
            }
        }
        match get("client_secret") {
            None => return Err(oerr(400, "invalid_request", "client_secret is missing.")),
            Some(CLIENT_SECRET) => {}
            Some(_) => return Err(oerr(401, "invalid_client", "Unauthorized")),
        }
        match get("grant_type") {
            Some("authorization_code") => self.exchange_code(form, now),
            Some("refresh_token") => {
                let rt = get("refresh_token").ok_or_else(|| {
                    oerr(
                        400,
                        "invalid_request",
                        "Missing required parameter: refresh_token",
                    )
                })?;
                let grant = self
                    .live_grant_by_refresh(rt, now)
                    .ok_or_else(expired_or_revoked)?;
                let scopes = self
                    .grants
                    .get(&grant)
                    .map(|g| g.scopes.clone())
                    .unwrap_or_default();
                let access = self.new_access(grant, now);
                Ok(serde_json::json!({
                    "access_token": access,
                    "expires_in": ACCESS_TTL_SECS,
                    "scope": scopes.join(" "),
                    "token_type": "Bearer",
                }))
            }
            Some(DEVICE_GRANT) => self.poll_device(form, now),
            Some(other) => Err(oerr(
                400,
                "unsupported_grant_type",
                format!("Invalid grant_type: {other}"),
            )),
            None => Err(oerr(400, "unsupported_grant_type", "Invalid grant_type: ")),
        }
    }

    fn exchange_code(
        &mut self,
        form: &HashMap<String, String>,
        now: DateTime<Utc>,
    ) -> Result<serde_json::Value, OAuthError> {
        let get = |k: &str| form.get(k).map(String::as_str);
        let code = get("code")
            .ok_or_else(|| oerr(400, "invalid_request", "Missing required parameter: code"))?;
        let entry = self
            .codes
            .get_mut(code)
            .ok_or_else(|| oerr(400, "invalid_grant", "Malformed auth code."))?;
        if entry.used || now - entry.issued > CODE_TTL {
            return Err(oerr(400, "invalid_grant", "Bad Request"));
        }
        if get("redirect_uri") != Some(entry.redirect_uri.as_str()) {
            return Err(oerr(400, "redirect_uri_mismatch", "Bad Request"));
        }
        if let Some((challenge, method)) = &entry.challenge {
            let verifier = get("code_verifier")
                .ok_or_else(|| oerr(400, "invalid_grant", "Missing code verifier."))?;
            let computed = if method == "S256" {
                pkce_s256(verifier)
            } else {
                verifier.to_owned()
            };
            if &computed != challenge {
                return Err(oerr(400, "invalid_grant", "Invalid code verifier."));
            }
        }
        entry.used = true;
        let scopes = entry.scopes.clone();
        Ok(code_grant_response(&self.issue(scopes, now)))
    }

    /// `POST /device/code` (spec §4.5): `photoslibrary*` scopes are not allowed in this flow.
    pub(crate) fn device_code(
        &mut self,
        form: &HashMap<String, String>,
        now: DateTime<Utc>,
        verification_url: &str,
    ) -> Result<serde_json::Value, OAuthError> {
        match form.get("client_id").map(String::as_str) {
            Some(CLIENT_ID) => {}
            None => {
                return Err(oerr(
                    400,
                    "invalid_request",
                    "Missing required parameter: client_id",
                ));
            }
            Some(_) => {
                return Err(oerr(
                    401,
                    "invalid_client",
                    "The OAuth client was not found.",
                ));
            }
        }
        let requested: Vec<String> = form
            .get("scope")
            .map(|s| s.split_whitespace().map(str::to_owned).collect())
            .unwrap_or_default();
        if requested.is_empty() {
            return Err(oerr(
                400,
                "invalid_request",
                "Missing required parameter: scope",
            ));
        }
        for s in &requested {
            let photos = s.starts_with("https://www.googleapis.com/auth/photoslibrary");
            let picker = s == scopes::PICKER_READONLY;
            if photos || (picker && !self.device_flow.picker_scope_allowed) {
                return Err(oerr(
                    400,
                    "invalid_scope",
                    format!("Invalid device flow scope: {s}"),
                ));
            }
        }
        let device_code = format!("AH-1{}", self.fresh("device"));
        let letters = self
            .fresh("user")
            .to_ascii_uppercase()
            .replace(['-', '_'], "X");
        let user_code = format!("{}-{}", &letters[..4], &letters[4..8]);
        let expires = now
            + TimeDelta::from_std(self.device_flow.expires_in).unwrap_or(TimeDelta::minutes(30));
        self.devices.insert(
            device_code.clone(),
            DeviceAuth {
                user_code: user_code.clone(),
                scopes: requested,
                expires,
                decision: None,
                last_poll: None,
                redeemed: false,
            },
        );
        Ok(serde_json::json!({
            "device_code": device_code,
            "user_code": user_code,
            "verification_url": verification_url,
            "expires_in": self.device_flow.expires_in.as_secs(),
            "interval": self.device_flow.interval.as_secs(),
        }))
    }

    fn poll_device(
        &mut self,
        form: &HashMap<String, String>,
        now: DateTime<Utc>,
    ) -> Result<serde_json::Value, OAuthError> {
        let code = form.get("device_code").ok_or_else(|| {
            oerr(
                400,
                "invalid_request",
                "Missing required parameter: device_code",
            )
        })?;
        let interval = self.device_flow.interval;
        let d = self
            .devices
            .get_mut(code)
            .ok_or_else(|| oerr(400, "invalid_grant", "Malformed auth code."))?;
        if d.redeemed {
            return Err(oerr(400, "invalid_grant", "Bad Request"));
        }
        if now >= d.expires {
            return Err(oerr(400, "expired_token", "Bad Request"));
        }
        let too_fast = d.last_poll.is_some_and(|t| t.elapsed() < interval);
        d.last_poll = Some(Instant::now());
        if too_fast {
            return Err(oerr(403, "slow_down", "Forbidden"));
        }
        let scopes = match &d.decision {
            None => return Err(oerr(428, "authorization_pending", "Precondition Required")),
            Some(None) => return Err(oerr(403, "access_denied", "Forbidden")),
            Some(Some(s)) => s.clone(),
        };
        d.redeemed = true;
        Ok(code_grant_response(&self.issue(scopes, now)))
    }

    /// The user enters `user_code` on the verification page and answers per [`ConsentBehaviour`].
    pub(crate) fn decide_device(&mut self, user_code: &str) -> bool {
        let consent = self.consent.clone();
        let Some(d) = self
            .devices
            .values_mut()
            .find(|d| d.user_code == user_code && d.decision.is_none())
        else {
            return false;
        };
        d.decision = Some(match consent {
            ConsentBehaviour::Deny => None,
            ConsentBehaviour::Approve => Some(d.scopes.clone()),
            ConsentBehaviour::ReduceScope(drop) => Some(
                d.scopes
                    .iter()
                    .filter(|s| !drop.contains(s))
                    .cloned()
                    .collect(),
            ),
        });
        true
    }

    /// User codes still waiting for the user.
    pub(crate) fn pending_user_codes(&self, now: DateTime<Utc>) -> Vec<String> {
        self.devices
            .values()
            .filter(|d| d.decision.is_none() && now < d.expires)
            .map(|d| d.user_code.clone())
            .collect()
    }

    /// Creates a grant with a refresh token and a first access token.
    pub(crate) fn issue(&mut self, scopes: Vec<String>, now: DateTime<Utc>) -> IssuedTokens {
        self.counter += 1;
        let grant = self.counter;
        let refresh_token = format!("1//0{}", self.fresh("refresh"));
        self.grants.insert(
            grant,
            Grant {
                scopes: scopes.clone(),
                issued: now,
                revoked: false,
            },
        );
        self.refresh.insert(refresh_token.clone(), grant);
        self.refresh_order.push_back(grant);
        // The 101st refresh token silently invalidates the oldest live one (spec §4.4).
        while self.refresh_order.len() > REFRESH_CAP {
            if let Some(old) = self.refresh_order.pop_front()
                && let Some(g) = self.grants.get_mut(&old)
            {
                g.revoked = true;
            }
        }
        let access_token = self.new_access(grant, now);
        IssuedTokens {
            access_token,
            refresh_token,
            expires_in: ACCESS_TTL_SECS as u64,
            scopes,
        }
    }

    fn new_access(&mut self, grant: u64, now: DateTime<Utc>) -> String {
        let token = format!("ya29.a0{}", self.fresh("access"));
        self.access.insert(
            token.clone(),
            Access {
                grant,
                expires: now + TimeDelta::seconds(ACCESS_TTL_SECS),
            },
        );
        token
    }

    fn live_grant_by_refresh(&self, rt: &str, now: DateTime<Utc>) -> Option<u64> {
        let id = *self.refresh.get(rt)?;
        let g = self.grants.get(&id)?;
        let expired = self.testing_mode && now - g.issued >= TESTING_REFRESH_TTL;
        (!g.revoked && !expired).then_some(id)
    }

    /// `POST /revoke`: either token kind revokes the whole grant.
    pub(crate) fn revoke(&mut self, token: &str) -> Result<(), OAuthError> {
        let grant = self
            .refresh
            .get(token)
            .copied()
            .or_else(|| self.access.get(token).map(|a| a.grant))
            .ok_or_else(|| oerr(400, "invalid_token", "Token expired or revoked"))?;
        match self.grants.get_mut(&grant) {
            Some(g) if !g.revoked => {
                g.revoked = true;
                self.refresh_order.retain(|x| *x != grant);
                Ok(())
            }
            _ => Err(oerr(400, "invalid_token", "Token expired or revoked")),
        }
    }

    /// Scopes of a live access token.
    pub(crate) fn check_access(
        &self,
        token: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<&[String], AuthFailure> {
        let token = token.ok_or(AuthFailure::Missing)?;
        let a = self.access.get(token).ok_or(AuthFailure::Invalid)?;
        let g = self.grants.get(&a.grant).ok_or(AuthFailure::Invalid)?;
        if g.revoked || now >= a.expires {
            return Err(AuthFailure::Invalid);
        }
        Ok(&g.scopes)
    }
}

/// Success body of a grant that creates a refresh token (spec §4.3).
fn code_grant_response(t: &IssuedTokens) -> serde_json::Value {
    serde_json::json!({
        "access_token": t.access_token,
        "expires_in": ACCESS_TTL_SECS,
        "refresh_token": t.refresh_token,
        "scope": t.scopes.join(" "),
        "token_type": "Bearer",
    })
}

/// BASE64URL(SHA256(verifier)) without padding (RFC 7636 §4.2).
pub fn pkce_s256(verifier: &str) -> String {
    use sha2::{Digest, Sha256};
    b64(&Sha256::digest(verifier.as_bytes()))
}

fn is_loopback(u: &Url) -> bool {
    u.scheme() == "http" && matches!(u.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_s256_matches_independent_computation() {
        // Expected value computed with Python: urlsafe_b64encode(sha256(verifier)) minus padding.
        assert_eq!(
            pkce_s256("dBjftJeZ4CVP-mJ0kNOv4BIAmuMKwvaC2ED2l5l3ETQ"),
            "Wh7u6_A3om1H2p5YGtcYaWQbRlViu8CNGg8kbB7qB0M"
        );
    }

    #[test]
    fn refresh_cap_invalidates_oldest() {
        let now = Utc::now();
        let mut s = OAuthState::new(
            [1; 32],
            ConsentBehaviour::Approve,
            RemovedScopePolicy::GrantThenForbid,
            false,
            DeviceFlowConfig::default(),
        );
        let first = s.issue(vec![scopes::PICKER_READONLY.into()], now);
        for _ in 0..REFRESH_CAP {
            s.issue(vec![scopes::PICKER_READONLY.into()], now);
        }
        assert_eq!(s.live_grant_by_refresh(&first.refresh_token, now), None);
    }
}
