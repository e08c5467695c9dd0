//! `RequestUuid`: the idempotency `uuid` Feishu dedupes writes by, derived from a caller's stable key.

use std::fmt;

use super::error::{FeishuError, FeishuResult};

/// im accepts at most 50 chars (CardKit 64); one limit for both keeps one type.
pub const MAX_UUID_LEN: usize = 50;

/// The `uuid` of one logical write. The same key always gives the same uuid, so a retry of the
/// same send (by us, the updater or a new Lambda) is deduplicated by Feishu, never a second message.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RequestUuid(String);

impl RequestUuid {
    /// Derives the uuid from a stable key naming the logical write, e.g. `reply:om_…:approval`.
    /// A name-based UUID (v5) is 36 chars, whatever the key's length or alphabet.
    pub fn derive(idempotency_key: &str) -> Self {
        let namespace = uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_URL, b"urn:cardbot:feishu:uuid");
        Self(uuid::Uuid::new_v5(&namespace, idempotency_key.as_bytes()).to_string())
    }

    /// Uses `value` as is; 1 to 50 chars.
    pub fn new(value: impl Into<String>) -> FeishuResult<Self> {
        let value = value.into();
        if value.is_empty() || value.chars().count() > MAX_UUID_LEN {
            return Err(FeishuError::InvalidRequest(format!(
                "uuid must be 1..={MAX_UUID_LEN} chars, got {}",
                value.chars().count()
            )));
        }
        Ok(Self(value))
    }

    /// The uuid as sent.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RequestUuid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derive_is_deterministic_and_distinct_per_key() {
        let a = RequestUuid::derive("reply:om_5ce6d572455d361153b7cb51da133945:card");
        let b = RequestUuid::derive("reply:om_5ce6d572455d361153b7cb51da133945:card");
        let c = RequestUuid::derive("reply:om_5ce6d572455d361153b7cb51da133945:text");
        assert_eq!(a, b);
        assert_ne!(a, c);
        // Pinned (computed independently with Python's uuid.uuid5): a change here would turn
        // every in-flight retry into a second message.
        assert_eq!(a.as_str(), "2462384a-83e1-51bc-a695-10e23330520c");
    }

    #[test]
    fn derived_uuid_fits_feishu_limits_for_any_key() {
        for key in ["", "x", &"長".repeat(500), &"k".repeat(10_000)] {
            let uuid = RequestUuid::derive(key);
            assert_eq!(uuid.as_str().len(), 36);
            assert!(uuid.as_str().len() <= MAX_UUID_LEN);
            assert!(uuid
                .as_str()
                .chars()
                .all(|c| c.is_ascii_hexdigit() || c == '-'));
        }
    }

    #[test]
    fn explicit_uuid_is_length_checked() {
        assert!(RequestUuid::new("a".repeat(50)).is_ok());
        assert!(matches!(
            RequestUuid::new("a".repeat(51)),
            Err(FeishuError::InvalidRequest(_))
        ));
        assert!(RequestUuid::new("").is_err());
    }
}
