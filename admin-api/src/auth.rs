//! Bearer admin tokens: who is calling, and whether the path's tenant is theirs.

use axum::http::{HeaderMap, header};
use dakoku_token::AdminClaims;

use crate::error::ApiError;
use crate::state::AppState;

/// The claims of the request's admin token, if they cover `tenant` (the path's, as written).
///
/// No, malformed, forged, expired or device token: 401. A valid token of another tenant: 403.
pub fn authorize(
    state: &AppState,
    headers: &HeaderMap,
    tenant: &str,
) -> Result<AdminClaims, ApiError> {
    let value = headers.get(header::AUTHORIZATION).ok_or_else(|| {
        ApiError::unauthorized(
            "an admin token is required: Authorization: Bearer <token> (issue one with \
             `admin-api token issue --tenant T --actor NAME`)",
        )
    })?;
    let token = value
        .to_str()
        .ok()
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            ApiError::unauthorized("the Authorization header must be `Bearer <admin token>`")
        })?;
    let now = chrono::Utc::now().timestamp();
    let claims = state.keys.verify_admin(token, now).map_err(|error| {
        tracing::info!(%error, "admin token refused");
        ApiError::unauthorized(format!("{error}"))
    })?;
    if claims.tenant.as_str() != tenant {
        tracing::warn!(token_tenant = %claims.tenant, path_tenant = tenant, actor = claims.actor,
            "admin token used on another tenant");
        return Err(ApiError::forbidden(format!(
            "this admin token is for tenant {}, not {tenant}",
            claims.tenant
        )));
    }
    Ok(claims)
}
