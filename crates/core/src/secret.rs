//! Sensitive values: a [`Secret`] never shows itself. Its `Debug` and `Display` print
//! `(sensitive)`, it has no `Serialize`, and plans compare its [`Secret::digest`], never the
//! value, so no plan, drift report, error, progress line, log or snapshot can carry it.

use std::fmt;

use sha2::{Digest, Sha256};

/// What every output shows in place of a sensitive value.
pub const REDACTED: &str = "(sensitive)";

/// A value that must not be shown: a password, a token, a generated key.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The value itself, for the one call that sends it where it belongs.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// `sha256:<hex>`: what plans store and compare, and what a provider reports as observed
    /// (or it reports a version id it recorded next to the digest).
    pub fn digest(&self) -> String {
        digest(&self.0)
    }
}

/// `sha256:<hex>` of `value`.
pub fn digest(value: &str) -> String {
    let hash = Sha256::digest(value.as_bytes());
    let mut out = String::with_capacity(7 + 64);
    out.push_str("sha256:");
    for byte in hash.iter() {
        out.push_str(&format!("{byte:02x}"));
    }
    out
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_never_formats_its_value_and_digests_stably() {
        let secret = Secret::new("hunter2-canary");
        assert_eq!(format!("{secret} {secret:?} {:?}", Some(&secret)), "(sensitive) (sensitive) Some((sensitive))");
        assert_eq!(secret.digest(), Secret::new("hunter2-canary").digest());
        assert_ne!(secret.digest(), Secret::new("hunter3-canary").digest());
        assert!(secret.digest().starts_with("sha256:") && !secret.digest().contains("hunter"));
        assert_eq!(secret.expose(), "hunter2-canary");
    }
}
