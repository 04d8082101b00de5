//! The one binary codec for everything vkube writes that is not JSON: Raft log entries,
//! snapshot envelopes, state-machine metadata. postcard, behind a leading format-version byte
//! so the format can change without guessing. Kubernetes objects inside are JSON bytes.

use serde::Serialize;
use serde::de::DeserializeOwned;

/// The format version written in front of every encoded value.
pub const FORMAT_VERSION: u8 = 1;

/// Errors of encoding and decoding.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    /// The value could not be encoded.
    #[error("cannot encode: {0}")]
    Encode(postcard::Error),
    /// The bytes are not a value of the expected type.
    #[error("cannot decode: {0}")]
    Decode(postcard::Error),
    /// The bytes were written by another format version.
    #[error("unsupported format version {found} (this build reads version {FORMAT_VERSION})")]
    Version {
        /// The version byte found.
        found: u8,
    },
    /// No bytes at all.
    #[error("cannot decode: empty input")]
    Empty,
}

impl From<CodecError> for std::io::Error {
    fn from(e: CodecError) -> Self {
        std::io::Error::new(std::io::ErrorKind::InvalidData, e)
    }
}

/// Encodes `value` with the version byte in front.
pub fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, CodecError> {
    let mut out = vec![FORMAT_VERSION];
    postcard::to_io(value, &mut out).map_err(CodecError::Encode)?;
    Ok(out)
}

/// Decodes bytes written by [`encode`].
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
    match bytes.split_first() {
        None => Err(CodecError::Empty),
        Some((&FORMAT_VERSION, rest)) => postcard::from_bytes(rest).map_err(CodecError::Decode),
        Some((&found, _)) => Err(CodecError::Version { found }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_other_versions() {
        let v = (
            7u64,
            "x".to_string(),
            bytes::Bytes::from_static(b"{\"a\":1}"),
        );
        let enc = encode(&v).expect("encode");
        assert_eq!(enc[0], FORMAT_VERSION);
        let dec: (u64, String, bytes::Bytes) = decode(&enc).expect("decode");
        assert_eq!(dec, v);
        let mut bad = enc.clone();
        bad[0] = 9;
        assert!(matches!(
            decode::<(u64, String, bytes::Bytes)>(&bad),
            Err(CodecError::Version { found: 9 })
        ));
        assert!(matches!(decode::<u64>(&[]), Err(CodecError::Empty)));
        assert!(decode::<(u64, String, bytes::Bytes)>(&enc[..3]).is_err());
    }
}
