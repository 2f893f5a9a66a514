//! Domain identifiers: validated newtypes that serialize as plain strings, so an
//! invalid id is refused where it enters (HTTP body, Kafka record, CLI flag), not deep inside.

use std::{fmt, str::FromStr};

use serde::{Deserialize, Deserializer, Serialize, Serializer, de};
use uuid::Uuid;

/// An identifier that does not follow its rule. The message states the rule, because it goes
/// back verbatim to recorders and operators.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {kind} {value:?}: expected {rule}")]
pub struct IdError {
    kind: &'static str,
    value: String,
    rule: &'static str,
}

impl IdError {
    /// A rejected value can be a whole request body; keep enough to recognise it.
    const MAX_ECHO: usize = 80;

    fn new(kind: &'static str, rule: &'static str, value: &str) -> Self {
        let value = match value.char_indices().nth(Self::MAX_ECHO) {
            Some((cut, _)) => format!("{}...", &value[..cut]),
            None => value.to_owned(),
        };
        Self { kind, value, rule }
    }

    /// Which kind of identifier was rejected, e.g. `"tenant id"`.
    pub fn kind(&self) -> &'static str {
        self.kind
    }

    /// What the identifier must look like, e.g. `"1 to 64 characters [A-Za-z0-9_-]"`.
    pub fn rule(&self) -> &'static str {
        self.rule
    }
}

/// Defines a string identifier: private field so every value went through `check`.
macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident, $kind:literal, $rule:literal, $max:literal, $allowed:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(String);

        impl $name {
            /// Longest accepted value, in bytes (all accepted characters are ASCII).
            pub const MAX_LEN: usize = $max;

            /// The identifier as it appears on the wire.
            pub fn as_str(&self) -> &str {
                &self.0
            }

            fn check(value: &str) -> Result<(), IdError> {
                let allowed: fn(u8) -> bool = $allowed;
                if !value.is_empty() && value.len() <= $max && value.bytes().all(allowed) {
                    Ok(())
                } else {
                    Err(IdError::new($kind, $rule, value))
                }
            }
        }

        impl FromStr for $name {
            type Err = IdError;

            fn from_str(value: &str) -> Result<Self, IdError> {
                Self::check(value)?;
                Ok(Self(value.to_owned()))
            }
        }

        impl TryFrom<String> for $name {
            type Error = IdError;

            fn try_from(value: String) -> Result<Self, IdError> {
                Self::check(&value)?;
                Ok(Self(value))
            }
        }

        impl TryFrom<&str> for $name {
            type Error = IdError;

            fn try_from(value: &str) -> Result<Self, IdError> {
                value.parse()
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let value = String::deserialize(deserializer)?;
                Self::try_from(value).map_err(de::Error::custom)
            }
        }
    };
}

fn is_group_char(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'
}

fn is_word_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'-'
}

fn is_dotted_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-')
}

string_id!(
    /// A tenant group (management group): `[a-z0-9-]{1,32}`. It becomes part of topic names,
    /// hence lowercase only.
    GroupId,
    "group id",
    "1 to 32 characters [a-z0-9-]",
    32,
    is_group_char
);

string_id!(
    /// A tenant: `[A-Za-z0-9_-]{1,64}`. No `/`, because Kafka keys are `<tenant>/<device>`.
    TenantId,
    "tenant id",
    "1 to 64 characters [A-Za-z0-9_-]",
    64,
    is_word_char
);

string_id!(
    /// A recorder: `[A-Za-z0-9_.-]{1,64}`.
    DeviceId,
    "device id",
    "1 to 64 characters [A-Za-z0-9_.-]",
    64,
    is_dotted_char
);

string_id!(
    /// An IC card IDm or employee code presented at a recorder: `[0-9A-Za-z_-]{1,64}`.
    CardId,
    "card id",
    "1 to 64 characters [0-9A-Za-z_-]",
    64,
    is_word_char
);

string_id!(
    /// An employee of a tenant, from master data: `[A-Za-z0-9_.-]{1,64}`. No `/`, because
    /// Kafka keys are `<tenant>/<employee>/<work_date>`.
    EmployeeId,
    "employee id",
    "1 to 64 characters [A-Za-z0-9_.-]",
    64,
    is_dotted_char
);

/// The identity of a punch: a UUID v5 derived from `(tenant, device, seq)`, so a punch a
/// recorder resends gets the same id and is stored once.
///
/// Derivation, reproducible in any language: `uuid5(PunchId::NAMESPACE, name)` where `name` is
/// the UTF-8 string `"<tenant_id>/<device_id>/<seq>"` with `seq` in decimal, e.g.
/// `"acme/PT-000123/18211"`. [`PunchId::NAMESPACE`] is itself
/// `uuid5(NAMESPACE_URL, "urn:dakoku:punch-id")` = `2a07d5f7-7137-57bc-ab96-f57b81e3e822`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PunchId(Uuid);

impl PunchId {
    /// The fixed namespace of every punch id. Changing it would change every punch's identity.
    pub const NAMESPACE: Uuid = Uuid::from_u128(0x2a07d5f7_7137_57bc_ab96_f57b81e3e822);

    /// The id of the punch `seq` of `device` of `tenant`.
    pub fn derive(tenant: &TenantId, device: &DeviceId, seq: u64) -> Self {
        let name = format!("{tenant}/{device}/{seq}");
        Self(Uuid::new_v5(&Self::NAMESPACE, name.as_bytes()))
    }

    /// A fresh random (v4) id: a correction's id, which an added punch takes as its own.
    pub fn random() -> Self {
        Self(Uuid::new_v4())
    }

    /// The UUID itself.
    pub fn as_uuid(&self) -> &Uuid {
        &self.0
    }
}

impl From<Uuid> for PunchId {
    fn from(id: Uuid) -> Self {
        Self(id)
    }
}

impl From<PunchId> for Uuid {
    fn from(id: PunchId) -> Self {
        id.0
    }
}

impl FromStr for PunchId {
    type Err = IdError;

    fn from_str(value: &str) -> Result<Self, IdError> {
        Uuid::parse_str(value).map(Self).map_err(|_| {
            IdError::new(
                "punch id",
                "a UUID such as 2a07d5f7-7137-57bc-ab96-f57b81e3e822",
                value,
            )
        })
    }
}

impl TryFrom<String> for PunchId {
    type Error = IdError;

    fn try_from(value: String) -> Result<Self, IdError> {
        value.parse()
    }
}

impl TryFrom<&str> for PunchId {
    type Error = IdError;

    fn try_from(value: &str) -> Result<Self, IdError> {
        value.parse()
    }
}

impl fmt::Display for PunchId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0.hyphenated(), f)
    }
}

impl Serialize for PunchId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        // Encode on the stack: this runs for every punch on the acceptor's hot path.
        let mut buf = Uuid::encode_buffer();
        serializer.serialize_str(self.0.hyphenated().encode_lower(&mut buf))
    }
}

impl<'de> Deserialize<'de> for PunchId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;

        impl de::Visitor<'_> for Visitor {
            type Value = PunchId;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a punch id (UUID string)")
            }

            fn visit_str<E: de::Error>(self, value: &str) -> Result<PunchId, E> {
                value.parse().map_err(E::custom)
            }
        }

        deserializer.deserialize_str(Visitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn accepts_the_documented_characters() {
        assert!("tokyo-1".parse::<GroupId>().is_ok());
        assert!("acme_Corp-7".parse::<TenantId>().is_ok());
        assert!("PT-000123.a_b".parse::<DeviceId>().is_ok());
        assert!("01010312A40B5C2D".parse::<CardId>().is_ok());
        assert!("E-00.1_x".parse::<EmployeeId>().is_ok());
        assert!("a".repeat(32).parse::<GroupId>().is_ok());
        assert!("a".repeat(64).parse::<TenantId>().is_ok());
    }

    #[test]
    fn rejects_everything_else_with_the_rule_in_the_message() {
        for bad in ["", "Tokyo", "a_b", "a.b", "a/b", &"a".repeat(33)] {
            let err = bad.parse::<GroupId>().unwrap_err();
            assert_eq!(err.kind(), "group id");
            assert!(
                err.to_string().contains("1 to 32 characters [a-z0-9-]"),
                "{err}"
            );
        }
        for bad in ["", "acme/tokyo", "a.b", "a b", "ä", &"a".repeat(65)] {
            assert!(bad.parse::<TenantId>().is_err(), "{bad:?}");
        }
        assert!("PT/1".parse::<DeviceId>().is_err());
        assert!("card.1".parse::<CardId>().is_err());
        assert!("e/1".parse::<EmployeeId>().is_err());
        let err = "clock".parse::<PunchId>().unwrap_err();
        assert!(err.to_string().contains("expected a UUID"), "{err}");
    }

    #[test]
    fn long_rejected_values_are_not_echoed_whole() {
        let err = "x/".repeat(10_000).parse::<TenantId>().unwrap_err();
        assert!(err.to_string().len() < 200, "{err}");
    }

    #[test]
    fn punch_id_derivation_is_pinned() -> Result<(), IdError> {
        // Pinned: the same value is recomputed by Python's uuid.uuid5 in tests/fastavro_check.py.
        assert_eq!(
            PunchId::NAMESPACE,
            Uuid::new_v5(&Uuid::NAMESPACE_URL, b"urn:dakoku:punch-id")
        );
        let id = PunchId::derive(&"acme".parse()?, &"PT-000123".parse()?, 18211);
        let expected = Uuid::new_v5(&PunchId::NAMESPACE, b"acme/PT-000123/18211");
        assert_eq!(id.as_uuid(), &expected);
        assert_eq!(id.to_string(), expected.hyphenated().to_string());
        assert_eq!(id.to_string().parse::<PunchId>()?, id);
        Ok(())
    }

    #[test]
    fn serde_is_a_plain_string_and_validates() -> Result<(), serde_json::Error> {
        let tenant: TenantId = serde_json::from_str("\"acme\"")?;
        assert_eq!(serde_json::to_string(&tenant)?, "\"acme\"");
        let err = serde_json::from_str::<TenantId>("\"acme/x\"").unwrap_err();
        assert!(err.to_string().contains("[A-Za-z0-9_-]"), "{err}");
        let id: PunchId = serde_json::from_str("\"2a07d5f7-7137-57bc-ab96-f57b81e3e822\"")?;
        assert_eq!(id.as_uuid(), &PunchId::NAMESPACE);
        assert_eq!(
            serde_json::to_string(&id)?,
            "\"2a07d5f7-7137-57bc-ab96-f57b81e3e822\""
        );
        assert!(serde_json::from_str::<PunchId>("\"nope\"").is_err());
        Ok(())
    }

    proptest! {
        #[test]
        fn every_value_matching_the_rule_parses(
            group in "[a-z0-9-]{1,32}",
            tenant in "[A-Za-z0-9_-]{1,64}",
            device in "[A-Za-z0-9_.-]{1,64}",
            seq in any::<u64>(),
        ) {
            prop_assert_eq!(group.parse::<GroupId>().map(|g| g.to_string()), Ok(group.clone()));
            let tenant: TenantId = tenant.parse().map_err(|e: IdError| TestCaseError::fail(e.to_string()))?;
            let device: DeviceId = device.parse().map_err(|e: IdError| TestCaseError::fail(e.to_string()))?;
            let id = PunchId::derive(&tenant, &device, seq);
            prop_assert_eq!(id, PunchId::derive(&tenant, &device, seq));
            prop_assert_eq!(id.to_string().parse::<PunchId>(), Ok(id));
        }
    }
}
