//! Device tokens for `punchctl device add`: signed with the acceptor's keys, valid for a bounded
//! number of days. Pure (no Postgres): the device is registered in `dakoku_store::master` first.

use chrono::{DateTime, Utc};
use dakoku_schemas::{DeviceId, TenantId};
use dakoku_token::{DeviceClaims, KeyError, TokenKeys};

/// Longest token validity `device add` issues, in days (ten years).
pub const MAX_VALID_DAYS: u32 = 3650;

/// Why a device token could not be issued.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// The token validity is outside 1 to [`MAX_VALID_DAYS`] days.
    #[error("token validity must be 1 to {MAX_VALID_DAYS} days, got {0}")]
    InvalidValidity(u32),
    /// The token keys (`--token-keys` / `DAKOKU_TOKEN_KEYS`) are missing or malformed. Set them
    /// to the acceptor's keys (`eval "$(scripts/stack env)"` locally).
    #[error(transparent)]
    TokenKeys(#[from] KeyError),
}

/// A freshly minted device token and what it says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedToken {
    /// The bearer token for the recorder (`Authorization: Bearer <token>`).
    pub token: String,
    /// Its claims (tenant, device, expiry).
    pub claims: DeviceClaims,
    /// The key id it is signed with.
    pub key_id: String,
}

/// Mints a token for `tenant`/`device` valid for `valid_days` days from `now`.
///
/// Pure: does not check the device in Postgres; `dakoku_store::master::add_device` does that
/// first.
pub fn issue_token(
    keys: &TokenKeys,
    tenant: &TenantId,
    device: &DeviceId,
    valid_days: u32,
    now: DateTime<Utc>,
) -> Result<IssuedToken, TokenError> {
    if !(1..=MAX_VALID_DAYS).contains(&valid_days) {
        return Err(TokenError::InvalidValidity(valid_days));
    }
    let claims = DeviceClaims {
        tenant: tenant.clone(),
        device: device.clone(),
        expires_at: now.timestamp() + i64::from(valid_days) * 86_400,
    };
    Ok(IssuedToken {
        token: keys.mint(&claims),
        claims,
        key_id: keys.signing_key_id().to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_validity_is_bounded() {
        let keys = TokenKeys::parse(&TokenKeys::generate_entry("t")).expect("keys");
        let tenant: TenantId = "acme".parse().expect("tenant");
        let device: DeviceId = "PT-1".parse().expect("device");
        let now = DateTime::<Utc>::UNIX_EPOCH;
        let issued = issue_token(&keys, &tenant, &device, 2, now).expect("issued");
        assert_eq!(issued.claims.expires_at, 2 * 86_400);
        assert_eq!(keys.verify(&issued.token, 0).ok(), Some(issued.claims));
        for bad in [0, MAX_VALID_DAYS + 1] {
            assert!(issue_token(&keys, &tenant, &device, bad, now).is_err());
        }
    }
}
