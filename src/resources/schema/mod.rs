//! PLACEHOLDER until the schema module lands.
use crate::api::strategic_merge::{FieldPatchMeta, PatchSchema};
use serde_json::Value;
#[derive(Clone, Copy, Debug)]
pub struct Message;
impl PatchSchema for Message {
    fn field(self, _name: &str) -> Option<(FieldPatchMeta, Option<Self>)> {
        None
    }
}
pub fn message_for_kind(_g: &str, _v: &str, _k: &str) -> Option<Message> {
    Some(Message)
}
pub fn unknown_fields(_m: Message, _o: &Value) -> Vec<String> {
    vec![]
}
