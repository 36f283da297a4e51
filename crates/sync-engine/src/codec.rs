//! How index records are encoded: postcard (compact binary, field order = schema) since
//! schema 2; JSON objects written by schema 1 are still read.
//!
//! Why binary: sled keeps several copies of every page on disk (log-structured, cleaned
//! lazily), so each byte of a record costs two to four bytes of disk. Postcard drops field
//! names, writes integers as varints and lets hashes be stored as raw bytes.
//!
//! Compatibility rule: a record struct may only grow by appending fields at the end, and enum
//! variants may only be appended (postcard writes the variant's index). Changing anything
//! else is a schema bump with a migration in `index.rs`. `codec_is_pinned` tests hold the
//! current layout.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::Error;

/// Encodes a record for the index.
pub(crate) fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, Error> {
    postcard::to_stdvec(value).map_err(|e| Error::Corrupt {
        tree: "encode",
        detail: e.to_string(),
    })
}

/// Whether `bytes` may be a record written by schema 1 (a JSON object).
///
/// Not proof: a postcard record whose first field is an integer 123 also starts with `{`.
/// [`decode`] therefore falls back to postcard when such bytes are not valid JSON.
pub(crate) fn is_legacy_json(bytes: &[u8]) -> bool {
    bytes.first() == Some(&b'{')
}

/// Decodes a record read from `tree`, whichever schema wrote it.
pub(crate) fn decode<T: DeserializeOwned>(tree: &'static str, bytes: &[u8]) -> Result<T, Error> {
    if is_legacy_json(bytes)
        && let Ok(legacy) = serde_json::from_slice(bytes)
    {
        return Ok(legacy);
    }
    postcard::from_bytes(bytes).map_err(|e| Error::Corrupt {
        tree,
        detail: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use serde::{Deserialize, Serialize};

    use super::*;
    use crate::types::ContentHash;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Rec {
        #[serde(rename = "n")]
        name: String,
        #[serde(rename = "h", default)]
        blake3: Option<ContentHash>,
    }

    #[test]
    fn a_hash_is_stored_as_32_raw_bytes() {
        let rec = Rec {
            name: "a.jpg".into(),
            blake3: Some(ContentHash::of(b"photo")),
        };
        let bytes = encode(&rec).unwrap();
        // len + "a.jpg" + Some tag + 32 bytes.
        assert_eq!(bytes.len(), 1 + 5 + 1 + 32);
        assert_eq!(decode::<Rec>("t", &bytes).unwrap(), rec);
    }

    #[test]
    fn schema_1_json_is_still_read() {
        let hex = blake3::hash(b"photo").to_hex().to_string();
        let json = format!(r#"{{"n":"a.jpg","h":"{hex}"}}"#);
        assert!(is_legacy_json(json.as_bytes()));
        let rec: Rec = decode("t", json.as_bytes()).unwrap();
        assert_eq!(rec.blake3, Some(ContentHash::of(b"photo")));
        assert_eq!(serde_json::to_string(&rec).unwrap(), json);
        assert!(!is_legacy_json(&encode(&rec).unwrap()));
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Counter {
        #[serde(rename = "a", default)]
        attempts: u32,
        #[serde(rename = "n", default)]
        next_ms: i64,
    }

    #[test]
    fn a_binary_record_that_happens_to_start_with_a_brace_is_still_read() {
        // postcard writes 123 as the single byte 0x7B, `{`.
        for next_ms in [0, 1_700_000_000_000, -1] {
            let rec = Counter {
                attempts: 123,
                next_ms,
            };
            let bytes = encode(&rec).unwrap();
            assert!(is_legacy_json(&bytes));
            assert_eq!(decode::<Counter>("t", &bytes).unwrap(), rec);
        }
        // While a real schema-1 record is still read as JSON.
        let json: Counter = decode("t", br#"{"a":123,"n":5}"#).unwrap();
        assert_eq!((json.attempts, json.next_ms), (123, 5));
    }

    #[test]
    fn a_malformed_hash_is_a_decoding_error_not_a_panic() {
        assert!(decode::<Rec>("t", &[1, b'a', 1, 0]).is_err());
        assert!(decode::<Rec>("t", br#"{"n":"a","h":"not hex"}"#).is_err());
    }
}
