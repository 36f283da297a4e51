//! A cloneable source of valid access tokens, refreshing single-flight.

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use super::{AccessToken, OAuthClient, Scope, TokenStore, Tokens};
use crate::clock::Clock;
use crate::error::{Error, Result};

/// Hands out valid access tokens to any number of concurrent tasks.
///
/// Cheap to clone (shared state). A token is refreshed `refresh_margin` (60 s) before it
/// expires; concurrent callers wait for the one refresh in flight instead of each starting
/// their own. Refreshed tokens are saved to the [`TokenStore`] if one was given.
#[derive(Clone)]
pub struct TokenProvider {
    inner: Arc<Inner>,
}

struct Inner {
    oauth: Option<OAuthClient>,
    store: Option<TokenStore>,
    clock: Arc<dyn Clock>,
    margin: Duration,
    state: Mutex<State>,
    refresh_gate: tokio::sync::Mutex<()>,
}

struct State {
    tokens: Tokens,
    /// Set when a server rejected the current access token before its expiry.
    stale: bool,
}

impl fmt::Debug for TokenProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenProvider")
            .field("store", &self.inner.store)
            .field("scopes", &self.granted_scopes())
            .finish_non_exhaustive()
    }
}

impl TokenProvider {
    /// A provider that refreshes through `oauth` and saves refreshed tokens to `store`.
    pub fn new(oauth: OAuthClient, tokens: Tokens, store: Option<TokenStore>) -> Self {
        let clock = oauth.http().clock().clone();
        Self::build(Some(oauth), tokens, store, clock)
    }

    /// Loads tokens from `store`; a missing file means the user has not run `auth` yet.
    pub fn from_store(oauth: OAuthClient, store: TokenStore) -> Result<Self> {
        let tokens = store
            .load()?
            .ok_or_else(|| Error::ReauthorizationRequired {
                reason: format!("no saved authorisation at {}", store.path().display()),
            })?;
        Ok(Self::new(oauth, tokens, Some(store)))
    }

    /// A provider that always returns the same tokens and never refreshes (tests, demos).
    pub fn fixed(tokens: Tokens, clock: Arc<dyn Clock>) -> Self {
        Self::build(None, tokens, None, clock)
    }

    fn build(
        oauth: Option<OAuthClient>,
        tokens: Tokens,
        store: Option<TokenStore>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                oauth,
                store,
                clock,
                margin: Duration::from_secs(60),
                state: Mutex::new(State {
                    tokens,
                    stale: false,
                }),
                refresh_gate: tokio::sync::Mutex::new(()),
            }),
        }
    }

    /// A valid access token, refreshing first if it expires within the margin.
    pub async fn access_token(&self) -> Result<AccessToken> {
        if let Some(token) = self.current_if_fresh() {
            return Ok(token);
        }
        let Some(oauth) = &self.inner.oauth else {
            // Fixed tokens cannot be renewed; let the server say whether they still work.
            return Ok(self.lock().tokens.access_token.clone());
        };
        let _gate = self.inner.refresh_gate.lock().await;
        // Another task may have refreshed while we waited for the gate.
        if let Some(token) = self.current_if_fresh() {
            return Ok(token);
        }
        let current = self.lock().tokens.clone();
        tracing::debug!("refreshing the access token");
        let fresh = oauth.refresh(&current).await?;
        if let Some(store) = &self.inner.store
            && let Err(e) = store.save(&fresh)
        {
            // The old refresh token still works next time; losing the cached access token
            // only costs one refresh after a restart.
            tracing::warn!(error = %e, "could not save refreshed tokens");
        }
        let token = fresh.access_token.clone();
        *self.lock() = State {
            tokens: fresh,
            stale: false,
        };
        Ok(token)
    }

    /// Marks `rejected` as unusable (the server answered 401), so the next call refreshes.
    /// Ignored if the token has already been replaced.
    pub fn invalidate(&self, rejected: &AccessToken) {
        let mut state = self.lock();
        if &state.tokens.access_token == rejected {
            state.stale = true;
        }
    }

    /// Whether the user granted `scope` (for incremental authorisation: if not, run the
    /// authorisation flow again requesting it).
    pub fn has_scope(&self, scope: &Scope) -> bool {
        self.lock().tokens.has_scope(scope)
    }

    /// Every granted scope.
    pub fn granted_scopes(&self) -> Vec<Scope> {
        self.lock().tokens.scopes.clone()
    }

    /// A copy of the current tokens (e.g. to revoke them).
    pub fn tokens(&self) -> Tokens {
        self.lock().tokens.clone()
    }

    fn current_if_fresh(&self) -> Option<AccessToken> {
        let now = self.inner.clock.now();
        let state = self.lock();
        (!state.stale && !state.tokens.expires_within(now, self.inner.margin))
            .then(|| state.tokens.access_token.clone())
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.inner
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}
