//! Streaming pod subresources: `exec`, `attach` and `portforward`.

use axum::response::Response;

use super::error::ApiError;
use super::objects::Ctx;
use axum::extract::Request;

/// `exec`, `attach` or `portforward` of pod `name`.
pub async fn pod_stream(
    ctx: &Ctx<'_>,
    name: &str,
    subresource: &str,
    req: Request,
) -> Result<Response, ApiError> {
    let _ = (ctx, req);
    Err(ApiError::BadRequest(format!(
        "pods/{subresource} of {name} is not supported yet"
    )))
}
