//! PLACEHOLDER until the protobuf module lands.
use serde_json::Value;
#[derive(Debug, thiserror::Error)]
#[error("protobuf is not supported yet")]
pub struct ProtobufError;
pub fn decode(_b: &[u8]) -> Result<Value, ProtobufError> {
    Err(ProtobufError)
}
