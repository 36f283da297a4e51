//! Where the client talks to: Google's hosts by default, anything else (the fake) by configuration.

use url::Url;

use crate::error::{Error, Result};

/// Base URLs of every Google service the client talks to.
///
/// Each base may carry a path prefix (the fake serves all hosts on one listener under
/// `/library`, `/picker`, ...). Paths are *appended* to it with [`join_path`], never resolved
/// with `Url::join`, which would drop the prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoints {
    /// OAuth consent page (`https://accounts.google.com/o/oauth2/v2/auth`).
    pub auth_url: Url,
    /// OAuth token endpoint (`https://oauth2.googleapis.com/token`).
    pub token_url: Url,
    /// OAuth revocation endpoint (`https://oauth2.googleapis.com/revoke`).
    pub revoke_url: Url,
    /// Photos Library API root (`https://photoslibrary.googleapis.com`).
    pub library_api_url: Url,
    /// Photos Picker API root (`https://photospicker.googleapis.com`).
    pub picker_api_url: Url,
}

/// Google's consent page for installed apps.
pub const GOOGLE_AUTH_URL: &str = "https://accounts.google.com/o/oauth2/v2/auth";
/// Google's token endpoint.
pub const GOOGLE_TOKEN_URL: &str = "https://oauth2.googleapis.com/token";
/// Google's token revocation endpoint.
pub const GOOGLE_REVOKE_URL: &str = "https://oauth2.googleapis.com/revoke";
/// Root of the Photos Library API.
pub const GOOGLE_LIBRARY_API_URL: &str = "https://photoslibrary.googleapis.com";
/// Root of the Photos Picker API.
pub const GOOGLE_PICKER_API_URL: &str = "https://photospicker.googleapis.com";

impl Default for Endpoints {
    fn default() -> Self {
        Self {
            auth_url: constant_url(GOOGLE_AUTH_URL),
            token_url: constant_url(GOOGLE_TOKEN_URL),
            revoke_url: constant_url(GOOGLE_REVOKE_URL),
            library_api_url: constant_url(GOOGLE_LIBRARY_API_URL),
            picker_api_url: constant_url(GOOGLE_PICKER_API_URL),
        }
    }
}

impl Endpoints {
    /// Builds endpoints from strings (e.g. a config file), validating each URL.
    pub fn from_strs(
        auth_url: &str,
        token_url: &str,
        revoke_url: &str,
        library_api_url: &str,
        picker_api_url: &str,
    ) -> Result<Self> {
        Ok(Self {
            auth_url: parse_url(auth_url)?,
            token_url: parse_url(token_url)?,
            revoke_url: parse_url(revoke_url)?,
            library_api_url: parse_url(library_api_url)?,
            picker_api_url: parse_url(picker_api_url)?,
        })
    }
}

/// Parses a URL, mapping failures to [`Error::InvalidUrl`].
pub fn parse_url(s: &str) -> Result<Url> {
    Url::parse(s).map_err(|e| Error::InvalidUrl {
        url: s.to_owned(),
        reason: e.to_string(),
    })
}

fn constant_url(s: &'static str) -> Url {
    // The constants above are literals checked by the unit tests; parsing cannot fail.
    #[allow(clippy::expect_used)]
    Url::parse(s).expect("built-in Google URL is valid")
}

/// Appends `path` (e.g. `/v1/mediaItems:search`) to `base`, keeping any path prefix of `base`.
///
/// `http://127.0.0.1:8080/picker` + `/v1/sessions` → `http://127.0.0.1:8080/picker/v1/sessions`.
/// Each `/`-separated piece is percent-encoded as one path segment, so ids taken from the
/// network cannot smuggle `/`, `?` or `#` into the request. The base's query, if any, is kept.
pub fn join_path(base: &Url, path: &str) -> Result<Url> {
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    join_segments(base, &segments)
}

/// Appends already-split path segments to `base` (each one percent-encoded on its own).
pub fn join_segments(base: &Url, segments: &[&str]) -> Result<Url> {
    let mut url = base.clone();
    url.set_fragment(None);
    {
        let mut parts = url.path_segments_mut().map_err(|()| Error::InvalidUrl {
            url: base.to_string(),
            reason: "cannot be used as a base URL".to_owned(),
        })?;
        // A trailing slash on the base ("…/picker/") leaves an empty last segment; drop it so
        // the result has no "//".
        parts.pop_if_empty();
        parts.extend(segments);
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    #[test]
    fn appends_to_a_base_with_a_path_prefix() {
        let joined = join_path(&u("http://127.0.0.1:8080/picker"), "/v1/sessions").unwrap();
        assert_eq!(joined.as_str(), "http://127.0.0.1:8080/picker/v1/sessions");
    }

    #[test]
    fn trailing_slash_on_base_gives_no_double_slash() {
        let joined = join_path(&u("http://127.0.0.1:8080/library/"), "/v1/mediaItems").unwrap();
        assert_eq!(
            joined.as_str(),
            "http://127.0.0.1:8080/library/v1/mediaItems"
        );
    }

    #[test]
    fn appends_to_a_bare_host() {
        let joined = join_path(&u(GOOGLE_LIBRARY_API_URL), "/v1/mediaItems:search").unwrap();
        assert_eq!(
            joined.as_str(),
            "https://photoslibrary.googleapis.com/v1/mediaItems:search"
        );
    }

    #[test]
    fn path_without_leading_slash_is_appended_too() {
        let joined = join_path(&u("http://h/a/b"), "c/d").unwrap();
        assert_eq!(joined.as_str(), "http://h/a/b/c/d");
    }

    #[test]
    fn hostile_segment_is_percent_encoded() {
        let joined =
            join_segments(&u("http://h/library"), &["v1", "mediaItems", "a/../b?x#y"]).unwrap();
        assert_eq!(
            joined.as_str(),
            "http://h/library/v1/mediaItems/a%2F..%2Fb%3Fx%23y"
        );
    }

    #[test]
    fn keeps_query_of_base() {
        let joined = join_path(&u("http://h/p?key=1"), "/v1/x").unwrap();
        assert_eq!(joined.as_str(), "http://h/p/v1/x?key=1");
    }

    #[test]
    fn cannot_be_a_base_is_an_error() {
        assert!(matches!(
            join_path(&u("mailto:me@example.com"), "/v1"),
            Err(Error::InvalidUrl { .. })
        ));
    }

    #[test]
    fn defaults_are_googles_hosts() {
        let e = Endpoints::default();
        assert_eq!(e.auth_url.as_str(), GOOGLE_AUTH_URL);
        assert_eq!(e.token_url.as_str(), GOOGLE_TOKEN_URL);
        assert_eq!(e.revoke_url.as_str(), GOOGLE_REVOKE_URL);
        assert_eq!(
            e.library_api_url.host_str(),
            Some("photoslibrary.googleapis.com")
        );
        assert_eq!(
            e.picker_api_url.host_str(),
            Some("photospicker.googleapis.com")
        );
    }
}
