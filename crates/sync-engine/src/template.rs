//! Export path templates such as `{year}/{month} {album|Unsorted}/{filename}`.
//!
//! A template is a relative path made of literal text and tokens. `{token}` is replaced by a
//! value of the item; `{token|fallback}` uses `fallback` where the item has no such value
//! (no album, no camera make, no capture time). Without a fallback a missing value renders as
//! [`MISSING`]. Each `/`-separated segment is made safe as one file name after rendering, so a
//! value can never add a directory level (an album titled `a/b` becomes `a_b`).

use std::fmt;

use chrono::{DateTime, Datelike, Timelike};

use crate::naming::{self, FilesystemRules};

/// What a token without a `|fallback` renders as when the item has no such value.
pub const MISSING: &str = "unknown";

/// The tokens a template may use, with their names as written.
const TOKENS: [(&str, Token); 14] = [
    ("year", Token::Year),
    ("month", Token::Month),
    ("day", Token::Day),
    ("hour", Token::Hour),
    ("minute", Token::Minute),
    ("second", Token::Second),
    ("filename", Token::Filename),
    ("stem", Token::Stem),
    ("ext", Token::Ext),
    ("album", Token::Album),
    ("camera_make", Token::CameraMake),
    ("camera_model", Token::CameraModel),
    ("source", Token::Source),
    ("id", Token::Id),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Token {
    Year,
    Month,
    Day,
    Hour,
    Minute,
    Second,
    Filename,
    Stem,
    Ext,
    Album,
    CameraMake,
    CameraModel,
    Source,
    Id,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(String),
    Token {
        token: Token,
        fallback: Option<String>,
    },
}

/// A parsed, validated export path template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    source: String,
    /// One entry per `/`-separated segment.
    segments: Vec<Vec<Piece>>,
}

/// Why a template was rejected: what, and where (1-based character column in the template).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} (column {column})")]
pub struct TemplateError {
    /// 1-based character column of the offending `{`, `}`, `/` or character.
    pub column: usize,
    /// The unknown token's name, when that is the problem.
    pub token: Option<String>,
    /// What is wrong, in words.
    pub message: String,
}

impl TemplateError {
    fn at(column: usize, message: impl Into<String>) -> Self {
        TemplateError {
            column,
            token: None,
            message: message.into(),
        }
    }
}

/// The values of one placement of one item, as the template sees them.
#[derive(Debug, Clone, Default)]
pub(crate) struct Fields<'a> {
    /// Capture time in the zone folders are named in.
    pub taken: Option<DateTime<chrono_tz::Tz>>,
    pub filename: &'a str,
    pub album: Option<&'a str>,
    pub camera_make: Option<&'a str>,
    pub camera_model: Option<&'a str>,
    pub source: &'a str,
    pub id: &'a str,
}

impl Template {
    /// Parses and validates `text`.
    ///
    /// ```
    /// use sync_engine::Template;
    /// assert!(Template::parse("{year}/{month}/{album|Unsorted}/{filename}").is_ok());
    /// let err = Template::parse("{year}/{mnth}/{filename}").unwrap_err();
    /// assert_eq!((err.column, err.token.as_deref()), (8, Some("mnth")));
    /// ```
    pub fn parse(text: &str) -> Result<Template, TemplateError> {
        if text.trim().is_empty() {
            return Err(TemplateError::at(1, "the template is empty"));
        }
        let mut segments = vec![Vec::new()];
        let mut literal = String::new();
        let mut chars = text.chars().enumerate().peekable();
        let flush = |literal: &mut String, segments: &mut Vec<Vec<Piece>>| {
            if !literal.is_empty()
                && let Some(seg) = segments.last_mut()
            {
                seg.push(Piece::Text(std::mem::take(literal)));
            }
        };
        while let Some((i, c)) = chars.next() {
            let column = i + 1;
            match c {
                '{' => {
                    flush(&mut literal, &mut segments);
                    let mut inner = String::new();
                    let mut closed = false;
                    for (_, c) in chars.by_ref() {
                        match c {
                            '}' => {
                                closed = true;
                                break;
                            }
                            '{' | '/' => break,
                            c => inner.push(c),
                        }
                    }
                    if !closed {
                        return Err(TemplateError::at(
                            column,
                            "`{` is not closed by `}` (a token cannot contain `{` or `/`)",
                        ));
                    }
                    let (name, fallback) = match inner.split_once('|') {
                        Some((n, f)) => (n.trim(), Some(f.to_string())),
                        None => (inner.trim(), None),
                    };
                    let Some(token) = TOKENS.iter().find(|(n, _)| *n == name).map(|(_, t)| *t)
                    else {
                        let known: Vec<String> =
                            TOKENS.iter().map(|(n, _)| format!("{{{n}}}")).collect();
                        return Err(TemplateError {
                            column,
                            token: Some(name.to_string()),
                            message: format!(
                                "unknown token `{{{name}}}`; known tokens: {}",
                                known.join(" ")
                            ),
                        });
                    };
                    if let Some(seg) = segments.last_mut() {
                        seg.push(Piece::Token { token, fallback });
                    }
                }
                '}' => {
                    return Err(TemplateError::at(column, "`}` without a matching `{`"));
                }
                '/' => {
                    flush(&mut literal, &mut segments);
                    if segments.last().is_some_and(Vec::is_empty) {
                        let what = if column == 1 {
                            "the template must be a relative path (it starts with `/`)"
                        } else {
                            "empty path segment (`//`)"
                        };
                        return Err(TemplateError::at(column, what));
                    }
                    segments.push(Vec::new());
                }
                c if c == '\0' || c.is_control() => {
                    return Err(TemplateError::at(
                        column,
                        "control character in the template",
                    ));
                }
                c => literal.push(c),
            }
        }
        flush(&mut literal, &mut segments);
        if segments.last().is_some_and(Vec::is_empty) {
            return Err(TemplateError::at(
                text.chars().count(),
                "the template ends with `/`; it must end with a file name such as `{filename}`",
            ));
        }
        // `.` and `..` segments would escape or alias the target directory.
        let mut column = 1;
        for seg in &segments {
            if let [Piece::Text(t)] = seg.as_slice()
                && (t == "." || t == "..")
            {
                return Err(TemplateError::at(
                    column,
                    "`.` and `..` segments are not allowed",
                ));
            }
            column += seg_len(seg) + 1;
        }
        Ok(Template {
            source: text.to_string(),
            segments,
        })
    }

    /// The template as written.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// Whether the template places an item once per album (it uses `{album}`).
    pub fn uses_album(&self) -> bool {
        self.segments.iter().flatten().any(|p| {
            matches!(
                p,
                Piece::Token {
                    token: Token::Album,
                    ..
                }
            )
        })
    }

    /// The relative path (with `/`) for one placement; every segment is a safe file name.
    ///
    /// Runs once per item and album on every export, so values are written in place and a
    /// segment that is already a safe name (the usual case) skips the full sanitiser.
    pub(crate) fn render(&self, f: &Fields<'_>, rules: FilesystemRules) -> String {
        let mut out = String::new();
        let mut name = String::new();
        for (i, seg) in self.segments.iter().enumerate() {
            if i > 0 {
                out.push('/');
            }
            name.clear();
            for piece in seg {
                match piece {
                    Piece::Text(t) => name.push_str(t),
                    Piece::Token { token, fallback } => {
                        let before = name.len();
                        write_value(&mut name, *token, f);
                        if name.len() == before {
                            name.push_str(fallback.as_deref().unwrap_or(MISSING));
                        }
                    }
                }
            }
            if naming::is_sanitized(&name, rules) {
                out.push_str(&name);
            } else {
                out.push_str(&naming::sanitize_component(&name, rules));
            }
        }
        out
    }
}

/// Characters a segment occupies in the source text (for error columns of later checks).
fn seg_len(seg: &[Piece]) -> usize {
    seg.iter()
        .map(|p| match p {
            Piece::Text(t) => t.chars().count(),
            Piece::Token { token, fallback } => {
                let name = TOKENS
                    .iter()
                    .find(|(_, t)| t == token)
                    .map_or(0, |(n, _)| n.len());
                2 + name + fallback.as_ref().map_or(0, |f| 1 + f.chars().count())
            }
        })
        .sum()
}

/// Appends the value of `token` to `out`; appends nothing when the item has none.
fn write_value(out: &mut String, token: Token, f: &Fields<'_>) {
    use std::fmt::Write;
    let mut two = |n: u32| {
        let _ = write!(out, "{n:02}");
    };
    match token {
        Token::Year => {
            if let Some(t) = f.taken {
                let _ = write!(out, "{:04}", t.year());
            }
        }
        Token::Month => f.taken.into_iter().for_each(|t| two(t.month())),
        Token::Day => f.taken.into_iter().for_each(|t| two(t.day())),
        Token::Hour => f.taken.into_iter().for_each(|t| two(t.hour())),
        Token::Minute => f.taken.into_iter().for_each(|t| two(t.minute())),
        Token::Second => f.taken.into_iter().for_each(|t| two(t.second())),
        Token::Filename => out.push_str(f.filename),
        Token::Stem => out.push_str(naming::split_ext(f.filename).0),
        Token::Ext => {
            let ext = naming::split_ext(f.filename).1;
            out.push_str(ext.strip_prefix('.').unwrap_or(ext));
        }
        Token::Album => out.push_str(f.album.unwrap_or_default()),
        Token::CameraMake => out.push_str(f.camera_make.map(str::trim).unwrap_or_default()),
        Token::CameraModel => out.push_str(f.camera_model.map(str::trim).unwrap_or_default()),
        Token::Source => out.push_str(f.source),
        Token::Id => out.push_str(f.id),
    }
}

impl fmt::Display for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

impl std::str::FromStr for Template {
    type Err = TemplateError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Template::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn fields<'a>() -> Fields<'a> {
        Fields {
            taken: chrono_tz::Europe::Berlin
                .with_ymd_and_hms(2023, 8, 5, 7, 9, 3)
                .single(),
            filename: "PXL_1.MP.jpg",
            album: Some("Trip: Rome/Naples"),
            camera_make: Some("Google"),
            camera_model: Some("Pixel 7"),
            source: "library_api",
            id: "AB-12",
        }
    }

    #[test]
    fn every_token_renders() {
        let t = Template::parse(
            "{year}-{month}-{day} {hour}.{minute}.{second}/{album}/{camera_make} {camera_model}/{source}-{id}-{stem}.{ext}|{filename}",
        )
        .unwrap();
        assert_eq!(
            t.render(&fields(), FilesystemRules::Posix),
            "2023-08-05 07.09.03/Trip: Rome_Naples/Google Pixel 7/library_api-AB-12-PXL_1.MP.jpg|PXL_1.MP.jpg"
        );
        assert!(t.uses_album());
    }

    #[test]
    fn fallbacks_apply_only_to_missing_values() {
        let t =
            Template::parse("{album|Unsorted}/{camera_make}/{year|undated}/{filename}").unwrap();
        let mut f = fields();
        f.album = None;
        f.camera_make = None;
        f.taken = None;
        assert_eq!(
            t.render(&f, FilesystemRules::Posix),
            "Unsorted/unknown/undated/PXL_1.MP.jpg"
        );
        assert!(!Template::parse("{year}/{filename}").unwrap().uses_album());
    }

    #[test]
    fn errors_name_the_token_and_column() {
        let e = Template::parse("{year}/{mnth}/{filename}").unwrap_err();
        assert_eq!((e.column, e.token.as_deref()), (8, Some("mnth")));
        assert!(e.to_string().contains("{mnth}"), "{e}");
        let e = Template::parse("ab{year/{filename}").unwrap_err();
        assert_eq!(e.column, 3);
        assert_eq!(Template::parse("a}b").unwrap_err().column, 2);
        assert_eq!(Template::parse("/x/{filename}").unwrap_err().column, 1);
        assert_eq!(Template::parse("x//{filename}").unwrap_err().column, 3);
        assert_eq!(
            Template::parse("{year}/../{filename}").unwrap_err().column,
            8
        );
        assert!(Template::parse("{year}/").is_err());
        assert!(Template::parse("  ").is_err());
    }
}
