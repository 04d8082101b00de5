//! Server-side Tables (`meta.k8s.io` v1 / v1beta1) and `PartialObjectMetadata`, built from the
//! printers' columns and cells.

use serde_json::{Value, json};

use super::error::ApiError;
use super::printers;
use super::request::{Query, TableVersion};
use crate::resources::ResourceDef;

/// What each row carries as its `object` (`includeObject`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IncludeObject {
    /// Nothing.
    None,
    /// `PartialObjectMetadata` (the default).
    Metadata,
    /// The whole object.
    Object,
}

/// Reads `includeObject`.
pub fn include_object(query: &Query) -> Result<IncludeObject, ApiError> {
    match query.get("includeObject") {
        None | Some("") | Some("Metadata") => Ok(IncludeObject::Metadata),
        Some("None") => Ok(IncludeObject::None),
        Some("Object") => Ok(IncludeObject::Object),
        Some(other) => Err(ApiError::BadRequest(format!(
            "includeObject: Unsupported value: \"{other}\": supported values: \"None\", \"Metadata\", \"Object\""
        ))),
    }
}

/// `PartialObjectMetadata` for an object.
pub fn partial_metadata(obj: &Value) -> Value {
    json!({
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": obj.get("metadata").cloned().unwrap_or_else(|| json!({})),
    })
}

/// Column definitions as JSON.
pub fn column_definitions(def: &ResourceDef) -> Vec<Value> {
    if let Some(custom) = &def.custom {
        let columns = &custom.version.additional_printer_columns;
        if columns.is_empty() {
            return printers::CRD_DEFAULT_COLUMNS
                .iter()
                .map(printers::ColumnDefinition::to_json)
                .collect();
        }
        let mut out = vec![printers::CRD_DEFAULT_COLUMNS[0].to_json()];
        out.extend(columns.iter().map(|c| {
            json!({"name": c.name, "type": c.column_type, "format": c.format, "description": c.description, "priority": c.priority})
        }));
        return out;
    }
    printers::columns(&def.group, &def.plural)
        .iter()
        .map(printers::ColumnDefinition::to_json)
        .collect()
}

/// The cells of one row.
fn row_cells(def: &ResourceDef, obj: &Value, now: jiff::Timestamp) -> Vec<Value> {
    match &def.custom {
        Some(custom) if !custom.version.additional_printer_columns.is_empty() => {
            let now_text = jiff::Timestamp::from_second(now.as_second())
                .map(|t| t.to_string())
                .unwrap_or_default();
            let mut cells = vec![json!(
                obj.pointer("/metadata/name")
                    .and_then(Value::as_str)
                    .unwrap_or("")
            )];
            cells.extend(crate::resources::crd::printer_cells(
                obj,
                &custom.version.additional_printer_columns,
                &now_text,
            ));
            cells
        }
        Some(_) => printers::crd_default_cells(obj, now),
        None => printers::cells(&def.group, &def.plural, obj, now),
    }
}

/// A Table of `objects`; `list_meta` becomes its metadata.
pub fn build(
    def: &ResourceDef,
    objects: &[Value],
    list_meta: Value,
    version: TableVersion,
    include: IncludeObject,
) -> Value {
    build_with_columns(def, objects, list_meta, version, include, true)
}

/// Like [`build`]; without column definitions when `with_columns` is false (watch events
/// after the first).
pub fn build_with_columns(
    def: &ResourceDef,
    objects: &[Value],
    list_meta: Value,
    version: TableVersion,
    include: IncludeObject,
    with_columns: bool,
) -> Value {
    let now = jiff::Timestamp::now();
    let rows: Vec<Value> = objects
        .iter()
        .map(|o| {
            let mut row = json!({"cells": row_cells(def, o, now)});
            if let Some(conditions) = printers::row_conditions(&def.group, &def.plural, o) {
                row["conditions"] = conditions;
            }
            match include {
                IncludeObject::None => {}
                IncludeObject::Metadata => row["object"] = partial_metadata(o),
                IncludeObject::Object => row["object"] = o.clone(),
            }
            row
        })
        .collect();
    let api_version = match version {
        TableVersion::V1 => "meta.k8s.io/v1",
        TableVersion::V1beta1 => "meta.k8s.io/v1beta1",
    };
    let columns = if with_columns {
        column_definitions(def)
    } else {
        vec![]
    };
    json!({
        "kind": "Table",
        "apiVersion": api_version,
        "metadata": list_meta,
        "columnDefinitions": columns,
        "rows": rows,
    })
}
