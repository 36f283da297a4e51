//! Google's `client_secret.json` (an OAuth client of type "Desktop app").

use std::fmt;
use std::path::Path;

use serde::Deserialize;
use url::Url;

use crate::endpoints::Endpoints;
use crate::error::{ClientSecretProblem, Error, Result};

/// An OAuth client of type "Desktop app", as downloaded from Google Cloud Console.
///
/// The auth and token URLs are taken from the file (`auth_uri`, `token_uri`); when the file
/// lacks them, Google's defaults apply. The secret is redacted in `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct ClientSecret {
    /// `client_id`, e.g. `NNN-xxx.apps.googleusercontent.com`.
    pub client_id: String,
    client_secret: String,
    /// Consent page URL.
    pub auth_uri: Url,
    /// Token endpoint URL.
    pub token_uri: Url,
}

impl fmt::Debug for ClientSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientSecret")
            .field("client_id", &self.client_id)
            .field("client_secret", &"[redacted]")
            .field("auth_uri", &self.auth_uri.as_str())
            .field("token_uri", &self.token_uri.as_str())
            .finish()
    }
}

#[derive(Deserialize)]
struct FileShape {
    installed: Option<InstalledShape>,
    web: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct InstalledShape {
    client_id: String,
    client_secret: String,
    auth_uri: Option<String>,
    token_uri: Option<String>,
}

impl ClientSecret {
    /// Builds a client from its parts (for callers that do not have a file).
    pub fn new(
        client_id: impl Into<String>,
        client_secret: impl Into<String>,
        endpoints: &Endpoints,
    ) -> Self {
        Self {
            client_id: client_id.into(),
            client_secret: client_secret.into(),
            auth_uri: endpoints.auth_url.clone(),
            token_uri: endpoints.token_url.clone(),
        }
    }

    /// Reads and parses a `client_secret.json` file.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| Error::ClientSecret {
            path: Some(path.to_owned()),
            problem: ClientSecretProblem::Unreadable(e.to_string()),
        })?;
        Self::parse(&text).map_err(|problem| Error::ClientSecret {
            path: Some(path.to_owned()),
            problem,
        })
    }

    /// Parses the JSON text of a `client_secret.json`.
    pub fn from_json(json: &str) -> Result<Self> {
        Self::parse(json).map_err(|problem| Error::ClientSecret {
            path: None,
            problem,
        })
    }

    /// The client secret. Desktop-app secrets are not confidential per Google, but we still
    /// keep them out of logs.
    pub fn secret(&self) -> &str {
        &self.client_secret
    }

    fn parse(json: &str) -> std::result::Result<Self, ClientSecretProblem> {
        let shape: FileShape = serde_json::from_str(json)
            .map_err(|e| ClientSecretProblem::Malformed(e.to_string()))?;
        let installed = match (shape.installed, shape.web) {
            (Some(installed), _) => installed,
            (None, Some(_)) => return Err(ClientSecretProblem::WebClient),
            (None, None) => {
                return Err(ClientSecretProblem::Malformed(
                    "no \"installed\" section".to_owned(),
                ));
            }
        };
        if installed.client_id.trim().is_empty() {
            return Err(ClientSecretProblem::Malformed("empty client_id".to_owned()));
        }
        let defaults = Endpoints::default();
        let url_or = |field: &str, value: Option<String>, default: &Url| match value {
            Some(s) => Url::parse(&s)
                .map_err(|e| ClientSecretProblem::Malformed(format!("{field} {s:?}: {e}"))),
            None => Ok(default.clone()),
        };
        Ok(Self {
            auth_uri: url_or("auth_uri", installed.auth_uri, &defaults.auth_url)?,
            token_uri: url_or("token_uri", installed.token_uri, &defaults.token_url)?,
            client_id: installed.client_id,
            client_secret: installed.client_secret,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INSTALLED: &str = r#"{"installed":{"client_id":"123-abc.apps.googleusercontent.com","project_id":"p",
        "auth_uri":"https://accounts.google.com/o/oauth2/auth","token_uri":"https://oauth2.googleapis.com/token",
        "auth_provider_x509_cert_url":"https://www.googleapis.com/oauth2/v1/certs",
        "client_secret":"GOCSPX-secret","redirect_uris":["http://localhost"]}}"#;

    #[test]
    fn parses_installed_client() {
        let s = ClientSecret::from_json(INSTALLED).unwrap();
        assert_eq!(s.client_id, "123-abc.apps.googleusercontent.com");
        assert_eq!(s.secret(), "GOCSPX-secret");
        assert_eq!(
            s.auth_uri.as_str(),
            "https://accounts.google.com/o/oauth2/auth"
        );
        assert_eq!(s.token_uri.as_str(), "https://oauth2.googleapis.com/token");
    }

    #[test]
    fn tolerates_missing_optional_fields_and_uses_google_defaults() {
        let s = ClientSecret::from_json(r#"{"installed":{"client_id":"c","client_secret":"s"}}"#)
            .unwrap();
        assert_eq!(s.token_uri, Endpoints::default().token_url);
        assert_eq!(s.auth_uri, Endpoints::default().auth_url);
    }

    #[test]
    fn web_client_is_refused_with_console_instructions() {
        let e = ClientSecret::from_json(
            r#"{"web":{"client_id":"c","client_secret":"s","redirect_uris":["https://x"]}}"#,
        )
        .unwrap_err();
        assert!(matches!(
            e,
            Error::ClientSecret {
                problem: ClientSecretProblem::WebClient,
                ..
            }
        ));
        let text = e.to_string();
        assert!(text.contains("Desktop app"), "{text}");
        assert!(text.contains("APIs & Services → Credentials"), "{text}");
        assert!(
            text.contains("Create credentials → OAuth client ID"),
            "{text}"
        );
        assert!(text.contains("Download JSON"), "{text}");
    }

    #[test]
    fn malformed_json_is_refused() {
        let e = ClientSecret::from_json("{not json").unwrap_err();
        assert!(matches!(
            e,
            Error::ClientSecret {
                problem: ClientSecretProblem::Malformed(_),
                ..
            }
        ));
        assert!(e.to_string().contains("Desktop app"));
        let e = ClientSecret::from_json(r#"{"other":{}}"#).unwrap_err();
        assert!(e.to_string().contains("installed"), "{e}");
    }

    #[test]
    fn missing_file_names_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("client_secret.json");
        let e = ClientSecret::from_file(&path).unwrap_err();
        let text = e.to_string();
        assert!(text.contains("client_secret.json"), "{text}");
        assert!(text.contains("cannot be read"), "{text}");
        assert!(text.contains("Desktop app"), "{text}");
    }

    #[test]
    fn reads_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("client_secret.json");
        std::fs::write(&path, INSTALLED).unwrap();
        assert_eq!(
            ClientSecret::from_file(&path).unwrap().client_id,
            "123-abc.apps.googleusercontent.com"
        );
    }

    #[test]
    fn debug_redacts_the_secret() {
        let s = ClientSecret::from_json(INSTALLED).unwrap();
        let dbg = format!("{s:?}");
        assert!(!dbg.contains("GOCSPX-secret"), "{dbg}");
        assert!(dbg.contains("redacted"));
    }
}
