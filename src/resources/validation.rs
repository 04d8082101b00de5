//! PLACEHOLDER until the validation module lands.
use serde_json::Value;
pub struct FieldError {
    pub field: String,
    pub detail: String,
}
impl FieldError {
    pub fn reason(&self) -> &'static str {
        "FieldValueInvalid"
    }
    pub fn message(&self) -> String {
        self.detail.clone()
    }
}
pub fn invalid_message(kind: &str, group: &str, name: &str, errors: &[FieldError]) -> String {
    let k = if group.is_empty() {
        kind.to_string()
    } else {
        format!("{kind}.{group}")
    };
    format!(
        "{k} \"{name}\" is invalid: {}",
        errors
            .iter()
            .map(|e| format!("{}: {}", e.field, e.detail))
            .collect::<Vec<_>>()
            .join(", ")
    )
}
pub fn validate_create(_g: &str, _r: &str, obj: &Value) -> Vec<FieldError> {
    if obj["metadata"]["name"].as_str().is_none_or(str::is_empty) {
        return vec![FieldError {
            field: "metadata.name".into(),
            detail: "Required value: name or generateName is required".into(),
        }];
    }
    vec![]
}
pub fn validate_update(_g: &str, _r: &str, _o: &Value, _n: &Value) -> Vec<FieldError> {
    vec![]
}
