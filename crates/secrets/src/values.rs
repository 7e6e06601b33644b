//! Secret values, read from where the spec says they come from: generated (fresh on every run,
//! used only when the secret is created), an environment variable, or a file relative to the
//! configuration directory. A problem names the field and the variable or file, never a value.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use enclave_core::FieldPath;
use enclave_core::Spec;
use enclave_core::secret::Secret;
use enclave_core::spec::{Alphabet, SecretSource};
use rand_core::{OsRng, RngCore};

/// The largest value Secrets Manager keeps (`SecretString`, 64 KiB).
pub const MAX_VALUE_BYTES: usize = 65_536;

/// Where each secret's value came from and the value, by its Secrets Manager name.
#[derive(Clone, Debug, Default)]
pub struct Values {
    values: BTreeMap<String, Secret>,
}

impl Values {
    /// The value of the secret called `full_name` in Secrets Manager.
    pub fn get(&self, full_name: &str) -> Option<&Secret> {
        self.values.get(full_name)
    }

    /// Sets a value (tests and embedders that resolve values their own way).
    pub fn insert(&mut self, full_name: impl Into<String>, value: Secret) {
        self.values.insert(full_name.into(), value);
    }

    /// How many values there are.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }
}

/// What went wrong reading one value; never the value itself.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Problem {
    /// The environment variable is not set.
    #[error("environment variable `{0}` is not set")]
    MissingEnv(String),
    /// The environment variable is set but not valid Unicode.
    #[error("environment variable `{0}` is not valid UTF-8")]
    EnvNotText(String),
    /// The file cannot be read.
    #[error("cannot read {}: {reason}", path.display())]
    Unreadable {
        /// The file, as resolved.
        path: PathBuf,
        /// The operating system's reason.
        reason: String,
    },
    /// The file is not UTF-8 text (Secrets Manager keeps text).
    #[error("{} is not UTF-8 text", .0.display())]
    NotText(PathBuf),
    /// The value is empty.
    #[error("the value is empty")]
    Empty,
    /// The value is larger than Secrets Manager keeps.
    #[error("the value has more than {MAX_VALUE_BYTES} bytes")]
    TooLarge,
    /// A key takes a property of a value that is not a JSON object with it.
    #[error("key `{key}` takes property `{property}`, but the value is not a JSON object with that property")]
    NoProperty {
        /// The key.
        key: String,
        /// The property.
        property: String,
    },
}

/// A problem with one secret's value, at the spec field that says where it comes from.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {problem}")]
pub struct ValueError {
    /// The field (`apps[0].secrets[1].source.env`).
    pub path: FieldPath,
    /// What is wrong.
    pub problem: Problem,
}

/// A value of `length` characters drawn uniformly from `alphabet` with the operating system's
/// random source (bytes outside the largest multiple of the alphabet's size are drawn again, so
/// no character is likelier than another).
pub fn generate(length: u16, alphabet: Alphabet) -> Secret {
    let characters = alphabet.characters();
    let size = characters.len();
    let limit = 256 - 256 % size;
    let mut value = String::with_capacity(usize::from(length));
    let mut buffer = [0u8; 64];
    while value.len() < usize::from(length) {
        OsRng.fill_bytes(&mut buffer);
        for byte in buffer.iter().map(|b| usize::from(*b)).filter(|b| *b < limit) {
            if value.len() == usize::from(length) {
                break;
            }
            value.push(characters[byte % size]);
        }
    }
    Secret::new(value)
}

/// Every secret value of `spec`: environment variables through `env`, files relative to
/// `config_dir`. All problems are reported, each at its field.
pub fn resolve(
    spec: &Spec,
    config_dir: &Path,
    env: &dyn Fn(&str) -> Option<std::ffi::OsString>,
) -> Result<Values, Vec<ValueError>> {
    let mut values = Values::default();
    let mut errors = Vec::new();
    for owner in spec.secret_owners() {
        let Some(account) = spec.account(owner.cluster.account.as_str()) else { continue };
        for (index, secret) in owner.secrets.iter().enumerate() {
            let full_name = format!("{}/{}/{}/{}", spec.stack(), account.environment, owner.name, secret.name);
            let source = owner.path.index(index).key("source");
            let read = match &secret.source {
                SecretSource::Generate(how) => Ok(generate(how.length, how.alphabet)),
                SecretSource::Env(variable) => match env(variable) {
                    None => Err((source.key("env"), Problem::MissingEnv(variable.clone()))),
                    Some(value) => value
                        .into_string()
                        .map(Secret::new)
                        .map_err(|_| (source.key("env"), Problem::EnvNotText(variable.clone()))),
                },
                SecretSource::File(file) => read_file(&config_dir.join(file)).map_err(|p| (source.key("file"), p)),
            };
            let checked = read.and_then(|value| {
                check(&value).map_err(|problem| (source.clone(), problem))?;
                for (key_index, key) in secret.keys_or_default().iter().enumerate() {
                    let Some(property) = &key.property else { continue };
                    let has = serde_json::from_str::<serde_json::Value>(value.expose())
                        .ok()
                        .is_some_and(|json| json.get(property).is_some());
                    if !has {
                        let at = owner.path.index(index).key("keys").index(key_index).key("property");
                        return Err((at, Problem::NoProperty { key: key.key.clone(), property: property.clone() }));
                    }
                }
                Ok(value)
            });
            match checked {
                Ok(value) => values.insert(full_name, value),
                Err((path, problem)) => errors.push(ValueError { path, problem }),
            }
        }
    }
    if errors.is_empty() { Ok(values) } else { Err(errors) }
}

fn read_file(path: &Path) -> Result<Secret, Problem> {
    let bytes = std::fs::read(path)
        .map_err(|error| Problem::Unreadable { path: path.to_owned(), reason: error.kind().to_string() })?;
    String::from_utf8(bytes).map(Secret::new).map_err(|_| Problem::NotText(path.to_owned()))
}

fn check(value: &Secret) -> Result<(), Problem> {
    if value.expose().is_empty() {
        return Err(Problem::Empty);
    }
    if value.expose().len() > MAX_VALUE_BYTES {
        return Err(Problem::TooLarge);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_values_have_the_length_and_only_the_alphabet() {
        for alphabet in [Alphabet::Alphanumeric, Alphabet::Hex, Alphabet::Base64url, Alphabet::Printable] {
            let allowed = alphabet.characters();
            let value = generate(64, alphabet);
            assert_eq!(value.expose().chars().count(), 64);
            assert!(value.expose().chars().all(|c| allowed.contains(&c)), "{alphabet:?}");
            assert_ne!(value, generate(64, alphabet), "two draws differ");
        }
    }

    #[test]
    fn every_character_of_the_alphabet_is_drawn() {
        let value = generate(4096, Alphabet::Hex);
        for c in Alphabet::Hex.characters() {
            assert!(value.expose().contains(c), "{c} never drawn in 4096");
        }
    }
}
