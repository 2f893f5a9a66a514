//! Admin tokens: what `admin-api` accepts from administrators' tools. Same construction as
//! device tokens (HMAC-SHA256 under a key id, several keys verifying at once for rotation, an
//! expiry), with their own version prefix and their own keys (`ADMIN_TOKEN_KEYS`).
//!
//! Format: `dka1.<key id>.<payload>.<signature>`, `payload` the base64url of
//! `<tenant>/<expiry unix seconds>/<actor>`. A device token (`dk1.`) is refused here, and an
//! admin token is refused by [`TokenKeys::verify`], even when both kinds share a key: the
//! prefix is part of the signed text.

use dakoku_schemas::TenantId;

use crate::{Fault, TokenKeys};

const ADMIN_VERSION: &str = "dka1";

/// Longest actor name an admin token may carry.
pub const MAX_ACTOR_CHARS: usize = 64;

/// What a valid admin token says about its bearer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminClaims {
    /// The only tenant the bearer may administer.
    pub tenant: TenantId,
    /// Who the bearer is; recorded with every correction, close and reopen they make.
    pub actor: String,
    /// Expiry, Unix seconds; the token is refused from this second on.
    pub expires_at: i64,
}

/// Why an admin token was refused (`admin-api` answers `401` to all of them).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AdminTokenError {
    /// Not of the form `dka1.<kid>.<payload>.<signature>` (a device token is not).
    #[error("malformed admin token: expected dka1.<key id>.<payload>.<signature>")]
    Malformed,
    /// Signed with a key id not in `ADMIN_TOKEN_KEYS` (retired, or another installation's).
    #[error("admin token signed with unknown key id {0:?}; issue a new one")]
    UnknownKey(String),
    /// The signature does not match: forged or corrupted.
    #[error("admin token signature is invalid")]
    BadSignature,
    /// The token expired.
    #[error("admin token expired at {0} (unix seconds); issue a new one")]
    Expired(i64),
}

/// Whether `actor` may name an administrator: 1 to [`MAX_ACTOR_CHARS`] of
/// `[A-Za-z0-9._@+-]` (a login or an e-mail address; nothing that needs quoting in logs).
pub fn valid_actor(actor: &str) -> bool {
    (1..=MAX_ACTOR_CHARS).contains(&actor.len())
        && actor
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._@+-".contains(&b))
}

impl TokenKeys {
    /// Issues an admin token for `claims`, signed with the signing key. The caller checks the
    /// actor with [`valid_actor`] first; a token with another actor would not verify.
    pub fn mint_admin(&self, claims: &AdminClaims) -> String {
        self.seal(
            ADMIN_VERSION,
            &format!("{}/{}/{}", claims.tenant, claims.expires_at, claims.actor),
        )
    }

    /// Checks an admin token's signature and expiry against `now` (Unix seconds).
    pub fn verify_admin(&self, token: &str, now: i64) -> Result<AdminClaims, AdminTokenError> {
        let payload = self
            .open(ADMIN_VERSION, token)
            .map_err(|fault| match fault {
                Fault::Malformed => AdminTokenError::Malformed,
                Fault::UnknownKey(kid) => AdminTokenError::UnknownKey(kid),
                Fault::BadSignature => AdminTokenError::BadSignature,
            })?;
        let payload = std::str::from_utf8(&payload).map_err(|_| AdminTokenError::Malformed)?;
        let mut fields = payload.splitn(3, '/');
        let (Some(tenant), Some(expiry), Some(actor)) =
            (fields.next(), fields.next(), fields.next())
        else {
            return Err(AdminTokenError::Malformed);
        };
        if !valid_actor(actor) {
            return Err(AdminTokenError::Malformed);
        }
        let claims = AdminClaims {
            tenant: tenant.parse().map_err(|_| AdminTokenError::Malformed)?,
            actor: actor.to_owned(),
            expires_at: expiry.parse().map_err(|_| AdminTokenError::Malformed)?,
        };
        if now >= claims.expires_at {
            return Err(AdminTokenError::Expired(claims.expires_at));
        }
        Ok(claims)
    }
}

#[cfg(test)]
mod tests {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;

    use super::*;
    use crate::{DeviceClaims, TokenError};

    fn keys(spec: &str) -> TokenKeys {
        TokenKeys::parse(spec).expect("valid keys")
    }

    fn k1() -> String {
        format!("k1:{}", STANDARD.encode([7u8; 32]))
    }

    fn k2() -> String {
        format!("k2:{}", STANDARD.encode([9u8; 32]))
    }

    fn claims(expires_at: i64) -> AdminClaims {
        AdminClaims {
            tenant: "acme".parse().expect("tenant"),
            actor: "hanako.sato@example.jp".into(),
            expires_at,
        }
    }

    #[test]
    fn minted_admin_token_verifies_until_it_expires() {
        let keys = keys(&k1());
        let token = keys.mint_admin(&claims(1_000));
        assert!(token.starts_with("dka1.k1."), "{token}");
        assert_eq!(keys.verify_admin(&token, 999), Ok(claims(1_000)));
        assert_eq!(
            keys.verify_admin(&token, 1_000),
            Err(AdminTokenError::Expired(1_000))
        );
    }

    #[test]
    fn tampered_admin_tokens_are_refused() {
        let keys = keys(&k1());
        let token = keys.mint_admin(&claims(1_000));
        // Another tenant's payload under the original signature.
        let other = keys.mint_admin(&AdminClaims {
            tenant: "other".parse().expect("tenant"),
            ..claims(1_000)
        });
        let (head, _) = token.rsplit_once('.').expect("dot");
        let (_, other_sig) = other.rsplit_once('.').expect("dot");
        assert_eq!(
            keys.verify_admin(&format!("{head}.{other_sig}"), 0),
            Err(AdminTokenError::BadSignature)
        );
        // One character of the payload changed.
        let mut bytes = token.clone().into_bytes();
        let at = "dka1.k1.".len() + 2;
        bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
        let flipped = String::from_utf8(bytes).expect("ascii");
        assert!(keys.verify_admin(&flipped, 0).is_err(), "{flipped}");
        for junk in ["", "dka1", "dka1.k1.a", "dka1.k1.a.!!!", "Bearer x"] {
            assert!(keys.verify_admin(junk, 0).is_err(), "{junk:?} accepted");
        }
    }

    #[test]
    fn a_key_not_configured_is_refused_and_rotation_keeps_old_tokens() {
        let old = keys(&k1()).mint_admin(&claims(1_000));
        // Same key id, other secret: a forger who knows the format but not the key.
        let forger = keys(&format!("k1:{}", STANDARD.encode([8u8; 32])));
        assert_eq!(
            forger.verify_admin(&old, 0),
            Err(AdminTokenError::BadSignature)
        );
        assert_eq!(
            keys(&k2()).verify_admin(&old, 0),
            Err(AdminTokenError::UnknownKey("k1".into()))
        );
        let rotated = keys(&format!("{},{}", k2(), k1()));
        assert_eq!(rotated.verify_admin(&old, 0), Ok(claims(1_000)));
        assert!(rotated.mint_admin(&claims(1_000)).starts_with("dka1.k2."));
    }

    #[test]
    fn device_and_admin_tokens_never_pass_as_each_other_even_under_one_key() {
        let keys = keys(&k1());
        let device = keys.mint(&DeviceClaims {
            tenant: "acme".parse().expect("tenant"),
            device: "PT-1".parse().expect("device"),
            expires_at: 1_000,
        });
        assert_eq!(
            keys.verify_admin(&device, 0),
            Err(AdminTokenError::Malformed)
        );
        // Even with the prefix rewritten, the signature covers the prefix.
        let relabelled = device.replacen("dk1.", "dka1.", 1);
        assert!(keys.verify_admin(&relabelled, 0).is_err());
        let admin = keys.mint_admin(&claims(1_000));
        assert_eq!(keys.verify(&admin, 0), Err(TokenError::Malformed));
        assert!(keys.verify(&admin.replacen("dka1.", "dk1.", 1), 0).is_err());
    }

    #[test]
    fn actors_are_plain_names() {
        assert!(valid_actor("hanako"));
        assert!(valid_actor("ops-1+payroll@example.jp"));
        for bad in ["", "a b", "a/b", "名前", &"x".repeat(MAX_ACTOR_CHARS + 1)] {
            assert!(!valid_actor(bad), "{bad:?}");
        }
    }
}
