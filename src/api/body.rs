//! Request bodies: the 3 MiB limit, and decoding JSON, YAML and Kubernetes protobuf into a
//! JSON value.

use axum::body::Body;
use serde_json::Value;

use super::error::ApiError;

/// kube-apiserver's limit on a request body.
pub const MAX_BODY: usize = 3 * 1024 * 1024;

/// Reads the whole body, refusing more than [`MAX_BODY`] bytes.
pub async fn read(body: Body) -> Result<bytes::Bytes, ApiError> {
    read_limited(body, MAX_BODY).await
}

/// Reads the whole body, refusing more than `limit` bytes (413 with kube-apiserver's message).
pub async fn read_limited(body: Body, limit: usize) -> Result<bytes::Bytes, ApiError> {
    match axum::body::to_bytes(body, limit).await {
        Ok(b) => Ok(b),
        Err(e) => {
            let too_large = std::error::Error::source(&e)
                .is_some_and(|s| s.is::<http_body_util::LengthLimitError>());
            if too_large {
                Err(ApiError::TooLarge(limit))
            } else {
                Err(ApiError::BadRequest(format!(
                    "unable to read the request body: {e}"
                )))
            }
        }
    }
}

/// The media type of a Content-Type header, lower-cased, without parameters.
pub fn media_type(content_type: Option<&str>) -> String {
    content_type
        .unwrap_or("application/json")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// Decodes an object body (create, update, delete options) by its content type.
pub fn decode_object(content_type: Option<&str>, bytes: &[u8]) -> Result<Value, ApiError> {
    let media = media_type(content_type);
    let value = match media.as_str() {
        "application/json" | "" => decode_json(bytes)?,
        "application/yaml" => decode_yaml(bytes)?,
        "application/vnd.kubernetes.protobuf" => super::protobuf::decode(bytes).map_err(|e| {
            if e.is_unsupported_media_type() {
                ApiError::UnsupportedMediaType(e.to_string())
            } else {
                ApiError::BadRequest(format!("unable to decode protobuf body: {e}"))
            }
        })?,
        _ => {
            return Err(ApiError::UnsupportedMediaType("the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, application/vnd.kubernetes.protobuf".to_string()));
        }
    };
    Ok(value)
}

/// Decodes JSON with kube-apiserver's wording for malformed input.
pub fn decode_json(bytes: &[u8]) -> Result<Value, ApiError> {
    serde_json::from_slice(bytes).map_err(|e| {
        ApiError::BadRequest(format!(
            "the object provided is unrecognized (must be of type JSON): {e}"
        ))
    })
}

/// Decodes YAML into a JSON value.
pub fn decode_yaml(bytes: &[u8]) -> Result<Value, ApiError> {
    let text = std::str::from_utf8(bytes)
        .map_err(|e| ApiError::BadRequest(format!("the YAML body is not UTF-8: {e}")))?;
    serde_saphyr::from_str::<Value>(text)
        .map_err(|e| ApiError::BadRequest(format!("error converting YAML to JSON: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_decode_by_content_type() {
        let v =
            decode_object(Some("application/json; charset=utf-8"), br#"{"a":1}"#).expect("json");
        assert_eq!(v["a"], 1);
        let v = decode_object(Some("application/yaml"), b"a: 1\nb: [x]\n").expect("yaml");
        assert_eq!(v["b"][0], "x");
        let e = decode_object(Some("text/plain"), b"x").expect_err("unknown type");
        assert_eq!(e.code().as_u16(), 415);
        let e = decode_object(None, b"{not json").expect_err("bad json");
        assert_eq!(e.code().as_u16(), 400);
    }
}
