//! `dakoku-token`: device tokens, HMAC-SHA256-signed bearer tokens that the acceptor verifies
//! with no database and that `punchctl` (and the test and load tools) mint.
//!
//! Format: `dk1.<key id>.<payload>.<signature>` where `payload` is base64url (no padding) of
//! `<tenant>/<device>/<expiry unix seconds>` and `signature` is base64url of
//! HMAC-SHA256(key, `dk1.<key id>.<payload>`). Several keys may be active at once, so keys rotate
//! by adding a new one, minting with it, and removing the old one once its tokens are replaced.
//! Revocation is not in the token: it comes from the master-data snapshot.
//!
//! Admin tokens (`dka1.`, [`AdminClaims`]) are built the same way from their own keys
//! (`ADMIN_TOKEN_KEYS`); the version prefix is signed, so neither kind passes as the other.
//!
//! # Layout
//! - this module: [`TokenKeys`] parses the key configuration, mints and verifies device
//!   tokens; [`DeviceClaims`] is what a token says; [`TokenError`] and [`KeyError`] say why not.
//! - [`admin`]: admin tokens for `admin-api`: [`AdminClaims`], [`AdminTokenError`].

pub mod admin;

use std::collections::HashMap;
use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use dakoku_schemas::{DeviceId, TenantId};
use hmac::{Hmac, Mac};
use sha2::Sha256;

pub use admin::{AdminClaims, AdminTokenError, MAX_ACTOR_CHARS, valid_actor};

type HmacSha256 = Hmac<Sha256>;

const VERSION: &str = "dk1";
/// Shortest accepted secret: HMAC-SHA256 gains nothing from more than 32 bytes, and fewer weakens it.
pub const MIN_SECRET_LEN: usize = 32;

/// What a valid token says about its bearer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceClaims {
    /// The tenant that owns the device.
    pub tenant: TenantId,
    /// The device the token was issued to.
    pub device: DeviceId,
    /// Expiry, Unix seconds; the token is refused from this second on.
    pub expires_at: i64,
}

/// Why a token was refused. Every variant maps to `401` except none: the acceptor decides.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not of the form `dk1.<kid>.<payload>.<signature>`, or a part is not valid base64url.
    #[error("malformed device token: expected dk1.<key id>.<payload>.<signature>")]
    Malformed,
    /// Signed with a key id this acceptor does not have (retired, or from another installation).
    #[error("device token signed with unknown key id {0:?}")]
    UnknownKey(String),
    /// The signature does not match: forged or corrupted.
    #[error("device token signature is invalid")]
    BadSignature,
    /// The token expired; the device needs a new one (`punchctl device add` re-issues).
    #[error("device token expired at {0} (unix seconds); issue a new one")]
    Expired(i64),
}

/// Errors in the key configuration (`DAKOKU_TOKEN_KEYS`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// No key at all.
    #[error(
        "no token keys: set DAKOKU_TOKEN_KEYS to <key id>:<base64 secret>[,...] (for the local stack: eval \"$(scripts/stack env)\")"
    )]
    Empty,
    /// An entry is not `<key id>:<base64 secret>` with a valid key id.
    #[error(
        "token key entry {0:?} is not <key id>:<base64 secret> with key id [A-Za-z0-9_-]{{1,16}}"
    )]
    BadEntry(String),
    /// The secret of key `0` is shorter than [`MIN_SECRET_LEN`] bytes.
    #[error("token key {0:?} is too short: at least {MIN_SECRET_LEN} random bytes are needed")]
    TooShort(String),
    /// The same key id appears twice.
    #[error("token key id {0:?} appears twice")]
    Duplicate(String),
}

/// The active signing keys; the first one mints new tokens, all of them verify.
#[derive(Clone)]
pub struct TokenKeys {
    keys: HashMap<String, HmacSha256>,
    signing: String,
}

impl fmt::Debug for TokenKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print secrets.
        let mut ids: Vec<&String> = self.keys.keys().collect();
        ids.sort();
        f.debug_struct("TokenKeys")
            .field("key_ids", &ids)
            .field("signing", &self.signing)
            .finish()
    }
}

impl TokenKeys {
    /// Parses `<key id>:<base64 secret>[,<key id>:<base64 secret>...]`; the first key signs.
    pub fn parse(spec: &str) -> Result<Self, KeyError> {
        let mut keys = HashMap::new();
        let mut signing = None;
        for entry in spec.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let (kid, secret) = entry
                .split_once(':')
                .ok_or_else(|| KeyError::BadEntry(redact_entry(entry)))?;
            let valid_kid = (1..=16).contains(&kid.len())
                && kid
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
            if !valid_kid {
                return Err(KeyError::BadEntry(redact_entry(entry)));
            }
            let secret = STANDARD
                .decode(secret)
                .or_else(|_| URL_SAFE_NO_PAD.decode(secret))
                .map_err(|_| KeyError::BadEntry(redact_entry(entry)))?;
            if secret.len() < MIN_SECRET_LEN {
                return Err(KeyError::TooShort(kid.to_owned()));
            }
            let mac = HmacSha256::new_from_slice(&secret)
                .map_err(|_| KeyError::BadEntry(redact_entry(entry)))?;
            if keys.insert(kid.to_owned(), mac).is_some() {
                return Err(KeyError::Duplicate(kid.to_owned()));
            }
            signing.get_or_insert_with(|| kid.to_owned());
        }
        let signing = signing.ok_or(KeyError::Empty)?;
        Ok(Self { keys, signing })
    }

    /// A fresh random key entry (`<key id>:<base64 secret>`) for configuration files.
    pub fn generate_entry(kid: &str) -> String {
        let secret: [u8; 32] = rand::random();
        format!("{kid}:{}", STANDARD.encode(secret))
    }

    /// The key id that [`TokenKeys::mint`] signs with.
    pub fn signing_key_id(&self) -> &str {
        &self.signing
    }

    /// Issues a token for `claims`, signed with the signing key.
    pub fn mint(&self, claims: &DeviceClaims) -> String {
        self.seal(
            VERSION,
            &format!("{}/{}/{}", claims.tenant, claims.device, claims.expires_at),
        )
    }

    /// Checks a token's signature and expiry against `now` (Unix seconds).
    pub fn verify(&self, token: &str, now: i64) -> Result<DeviceClaims, TokenError> {
        let payload = self.open(VERSION, token).map_err(|fault| match fault {
            Fault::Malformed => TokenError::Malformed,
            Fault::UnknownKey(kid) => TokenError::UnknownKey(kid),
            Fault::BadSignature => TokenError::BadSignature,
        })?;
        // Only a correctly signed payload is parsed, so the parsing below sees our own output.
        let payload = std::str::from_utf8(&payload).map_err(|_| TokenError::Malformed)?;
        let mut fields = payload.split('/');
        let (Some(tenant), Some(device), Some(expiry), None) =
            (fields.next(), fields.next(), fields.next(), fields.next())
        else {
            return Err(TokenError::Malformed);
        };
        let claims = DeviceClaims {
            tenant: tenant.parse().map_err(|_| TokenError::Malformed)?,
            device: device.parse().map_err(|_| TokenError::Malformed)?,
            expires_at: expiry.parse().map_err(|_| TokenError::Malformed)?,
        };
        if now >= claims.expires_at {
            return Err(TokenError::Expired(claims.expires_at));
        }
        Ok(claims)
    }

    /// `<version>.<signing key id>.<base64url payload>.<signature>`.
    fn seal(&self, version: &str, payload: &str) -> String {
        let payload = URL_SAFE_NO_PAD.encode(payload);
        let signed = format!("{version}.{}.{payload}", self.signing);
        let mut mac = self.keys[&self.signing].clone();
        mac.update(signed.as_bytes());
        let signature = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        format!("{signed}.{signature}")
    }

    /// The decoded payload of a `version` token whose signature checks out. The version is
    /// part of the signed text, so a token of one kind never passes as the other.
    fn open(&self, version: &str, token: &str) -> Result<Vec<u8>, Fault> {
        let (signed, signature) = token.rsplit_once('.').ok_or(Fault::Malformed)?;
        let mut parts = signed.splitn(3, '.');
        let (Some(v), Some(kid), Some(payload)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(Fault::Malformed);
        };
        if v != version {
            return Err(Fault::Malformed);
        }
        let mut mac = self
            .keys
            .get(kid)
            .ok_or_else(|| Fault::UnknownKey(kid.chars().take(16).collect()))?
            .clone();
        let signature = URL_SAFE_NO_PAD
            .decode(signature)
            .map_err(|_| Fault::Malformed)?;
        mac.update(signed.as_bytes());
        // Constant-time comparison: no timing oracle for forging signatures byte by byte.
        mac.verify_slice(&signature)
            .map_err(|_| Fault::BadSignature)?;
        URL_SAFE_NO_PAD
            .decode(payload)
            .map_err(|_| Fault::Malformed)
    }
}

/// Why [`TokenKeys::open`] refused a token, before the kind-specific error says it.
enum Fault {
    Malformed,
    UnknownKey(String),
    BadSignature,
}

fn redact_entry(entry: &str) -> String {
    match entry.split_once(':') {
        Some((kid, _)) => format!("{kid}:***"),
        None => "***".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn keys(spec: &str) -> TokenKeys {
        TokenKeys::parse(spec).expect("valid keys")
    }

    fn k1() -> String {
        format!("k1:{}", STANDARD.encode([7u8; 32]))
    }

    fn k2() -> String {
        format!("k2:{}", STANDARD.encode([9u8; 32]))
    }

    fn claims(expires_at: i64) -> DeviceClaims {
        DeviceClaims {
            tenant: "acme".parse().expect("tenant"),
            device: "PT-000123".parse().expect("device"),
            expires_at,
        }
    }

    #[test]
    fn minted_token_verifies_until_it_expires() {
        let keys = keys(&k1());
        let token = keys.mint(&claims(1_000));
        assert!(token.starts_with("dk1.k1."));
        assert_eq!(keys.verify(&token, 999), Ok(claims(1_000)));
        assert_eq!(keys.verify(&token, 1_000), Err(TokenError::Expired(1_000)));
    }

    #[test]
    fn rotation_old_tokens_verify_while_their_key_is_listed() {
        let old = keys(&k1()).mint(&claims(1_000));
        let rotated = keys(&format!("{},{}", k2(), k1()));
        assert_eq!(rotated.signing_key_id(), "k2");
        assert_eq!(rotated.verify(&old, 0), Ok(claims(1_000)));
        let retired = keys(&k2());
        assert_eq!(
            retired.verify(&old, 0),
            Err(TokenError::UnknownKey("k1".into()))
        );
    }

    #[test]
    fn forged_and_tampered_tokens_are_refused() {
        let keys = keys(&k1());
        let token = keys.mint(&claims(1_000));
        // Same key id, other secret: a forger who knows the format but not the key.
        let forger = TokenKeys::parse(&format!("k1:{}", STANDARD.encode([8u8; 32]))).expect("k");
        assert_eq!(
            keys.verify(&forger.mint(&claims(1_000)), 0),
            Err(TokenError::BadSignature)
        );
        // Payload swapped for another device's, signature kept.
        let other = keys.mint(&DeviceClaims {
            device: "PT-999".parse().expect("device"),
            ..claims(1_000)
        });
        let (head, _) = token.rsplit_once('.').expect("dot");
        let (_, other_sig) = other.rsplit_once('.').expect("dot");
        assert_eq!(
            keys.verify(&format!("{head}.{other_sig}"), 0),
            Err(TokenError::BadSignature)
        );
        for junk in [
            "",
            "dk1",
            "dk1.k1",
            "dk2.k1.a.b",
            "dk1.k1.a.!!!",
            "Bearer x",
        ] {
            assert!(keys.verify(junk, 0).is_err(), "{junk:?} accepted");
        }
    }

    #[test]
    fn key_configuration_errors_say_what_is_wrong() {
        assert_eq!(TokenKeys::parse("").err(), Some(KeyError::Empty));
        assert!(matches!(
            TokenKeys::parse("k1:c2hvcnQ="),
            Err(KeyError::TooShort(kid)) if kid == "k1"
        ));
        assert!(matches!(
            TokenKeys::parse("nocolon"),
            Err(KeyError::BadEntry(_))
        ));
        assert!(matches!(
            TokenKeys::parse(&format!("{},{}", k1(), k1())),
            Err(KeyError::Duplicate(_))
        ));
        let generated = TokenKeys::generate_entry("local");
        assert_eq!(
            TokenKeys::parse(&generated)
                .expect("generated")
                .signing_key_id(),
            "local"
        );
        // Secrets never reach error messages or Debug output.
        let err = TokenKeys::parse("bad kid!:c2VjcmV0").expect_err("bad");
        assert!(!err.to_string().contains("c2VjcmV0"));
        assert!(!format!("{:?}", keys(&k1())).contains(&STANDARD.encode([7u8; 32])));
    }

    proptest! {
        #[test]
        fn verify_never_panics(token in ".{0,200}") {
            let _ = keys(&k1()).verify(&token, 0);
        }

        #[test]
        fn any_mutation_of_a_token_is_refused(pos in 0usize..200, byte in any::<u8>()) {
            let keys = keys(&k1());
            let token = keys.mint(&claims(i64::MAX));
            let mut bytes = token.clone().into_bytes();
            let pos = pos % bytes.len();
            prop_assume!(bytes[pos] != byte);
            bytes[pos] = byte;
            if let Ok(mutated) = String::from_utf8(bytes) {
                // base64url without padding may decode two strings to the same bytes only when the
                // last character's unused bits change; the signature must still be refused then
                // unless the decoded bytes are identical.
                if let Ok(claims) = keys.verify(&mutated, 0) {
                    prop_assert_eq!(claims, keys.verify(&token, 0).expect("original"));
                }
            }
        }
    }
}
