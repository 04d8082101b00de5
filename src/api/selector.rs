//! PLACEHOLDER until the selector module lands.
use serde_json::Value;
use std::collections::BTreeMap;
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SelectorError(String);
pub struct LabelSelector(Vec<(String, String)>);
impl LabelSelector {
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.0.iter().all(|(k, v)| labels.get(k) == Some(v))
    }
}
pub fn parse_label_selector(s: &str) -> Result<LabelSelector, SelectorError> {
    Ok(LabelSelector(
        s.split(',')
            .filter_map(|p| p.split_once('='))
            .map(|(k, v)| (k.trim().into(), v.trim().into()))
            .collect(),
    ))
}
pub struct FieldSelector(Vec<(String, String)>);
impl FieldSelector {
    pub fn matches(&self, _g: &str, _r: &str, obj: &Value) -> bool {
        self.0.iter().all(|(k, v)| match k.as_str() {
            "metadata.name" => obj["metadata"]["name"].as_str() == Some(v),
            "metadata.namespace" => obj["metadata"]["namespace"].as_str() == Some(v),
            _ => true,
        })
    }
    pub fn single_equality(&self, field: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == field)
            .map(|(_, v)| v.as_str())
    }
}
pub fn parse_field_selector(s: &str) -> Result<FieldSelector, SelectorError> {
    Ok(FieldSelector(
        s.split(',')
            .filter_map(|p| p.split_once('='))
            .map(|(k, v)| (k.trim().into(), v.trim().into()))
            .collect(),
    ))
}
pub fn check_supported(_g: &str, _r: &str, _f: &FieldSelector) -> Result<(), SelectorError> {
    Ok(())
}
