//! Sealed Secrets, byte-compatible with kubeseal and the sealed-secrets controller.
//!
//! Each value is sealed on its own: a fresh 32-byte session key encrypts it with AES-256-GCM
//! (a nonce of 12 zero bytes is safe because a key is used once; no associated data), and the
//! session key is encrypted with RSA-OAEP (SHA-256, MGF1-SHA-256) under the controller's public
//! key, with the scope's label: `"<namespace>/<name>"` (strict, the default),
//! `"<namespace>"` (namespace-wide) or `""` (cluster-wide). The sealed value is
//! `u16 BE len(rsa) || rsa || aes-gcm(ciphertext || tag)`, base64 (standard, padded).
//!
//! The object follows kubeseal: the SealedSecret's own metadata holds the name, the namespace
//! and the scope annotation (`sealedsecrets.bitnami.com/cluster-wide` or `namespace-wide`,
//! `"true"`), which the controller reads the label from; `spec.template.metadata` carries the
//! Secret's metadata (without server-set fields, last-applied annotations and owner
//! references), `spec.template.type` its type. kubeseal's `--re-encrypt` asks the controller to
//! re-encrypt; [`re_encrypt`] does it locally with the old private key and the new certificate.
//! No error names a value.

use std::collections::BTreeMap;
use std::time::SystemTime;

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use rand_core::{OsRng, RngCore};
use rsa::pkcs1::DecodeRsaPrivateKey;
use rsa::pkcs8::{DecodePrivateKey, DecodePublicKey};
use rsa::sha2::Sha256;
use rsa::{Oaep, RsaPrivateKey, RsaPublicKey};
use serde::{Deserialize, Serialize};
use x509_cert::der::{DecodePem, Encode};

/// The SealedSecret API version.
pub const API_VERSION: &str = "bitnami.com/v1alpha1";
/// The annotation marking a cluster-wide secret.
pub const CLUSTER_WIDE: &str = "sealedsecrets.bitnami.com/cluster-wide";
/// The annotation marking a namespace-wide secret.
pub const NAMESPACE_WIDE: &str = "sealedsecrets.bitnami.com/namespace-wide";
const SESSION_KEY_BYTES: usize = 32;
const LAST_APPLIED: [&str; 2] =
    ["kubectl.kubernetes.io/last-applied-configuration", "kubecfg.ksonnet.io/last-applied-configuration"];

/// What a sealed value may be opened as.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Scope {
    /// Only as this name in this namespace.
    #[default]
    Strict,
    /// Under any name in this namespace.
    NamespaceWide,
    /// Anywhere.
    ClusterWide,
}

impl Scope {
    /// The RSA-OAEP label of the scope.
    pub fn label(self, namespace: &str, name: &str) -> Vec<u8> {
        match self {
            Scope::Strict => format!("{namespace}/{name}").into_bytes(),
            Scope::NamespaceWide => namespace.as_bytes().to_vec(),
            Scope::ClusterWide => Vec::new(),
        }
    }

    /// The scope annotations say (cluster-wide wins when both are set, as in the controller).
    pub fn of(annotations: Option<&BTreeMap<String, String>>) -> Scope {
        let set = |key: &str| annotations.and_then(|a| a.get(key)).is_some_and(|v| v == "true");
        if set(CLUSTER_WIDE) {
            Scope::ClusterWide
        } else if set(NAMESPACE_WIDE) {
            Scope::NamespaceWide
        } else {
            Scope::Strict
        }
    }

    /// Sets the scope's annotation and removes the other.
    fn annotate(self, annotations: &mut BTreeMap<String, String>) {
        annotations.remove(CLUSTER_WIDE);
        annotations.remove(NAMESPACE_WIDE);
        match self {
            Scope::Strict => {}
            Scope::NamespaceWide => {
                annotations.insert(NAMESPACE_WIDE.to_owned(), "true".to_owned());
            }
            Scope::ClusterWide => {
                annotations.insert(CLUSTER_WIDE.to_owned(), "true".to_owned());
            }
        }
    }
}

/// Why sealing or unsealing failed; never with a value.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SealError {
    /// No `CERTIFICATE` block.
    #[error("no certificate found: expected a PEM `CERTIFICATE` block")]
    NoCertificate,
    /// The certificate does not parse.
    #[error("the certificate cannot be read: {0}")]
    Certificate(String),
    /// The certificate's key is not RSA.
    #[error("the certificate's public key is not RSA: the sealed-secrets controller seals with RSA keys only")]
    NotRsa,
    /// The certificate has expired.
    #[error("the certificate expired; fetch the controller's current one")]
    Expired,
    /// No private key in the key file.
    #[error(
        "no RSA private key found: expected a PEM `RSA PRIVATE KEY` or `PRIVATE KEY` block, or a Secret with `tls.key`"
    )]
    NoKey,
    /// A private key does not parse.
    #[error("a private key cannot be read: {0}")]
    Key(String),
    /// The input is not a Secret (or SealedSecret).
    #[error("the input is not a {expected}: {reason}")]
    Input {
        /// What was expected.
        expected: &'static str,
        /// Why it was not.
        reason: String,
    },
    /// The Secret has no name.
    #[error("the Secret has no metadata.name: give one with --name")]
    NoName,
    /// A strict or namespace-wide secret without a namespace.
    #[error("the Secret declares no namespace: give one with -n (or seal it --scope cluster-wide)")]
    NoNamespace,
    /// `-n` disagrees with the Secret.
    #[error("namespace mismatch: the Secret is in namespace `{secret}` but `{given}` was given")]
    NamespaceMismatch {
        /// The Secret's.
        secret: String,
        /// The option's.
        given: String,
    },
    /// Nothing to seal.
    #[error("the Secret has no data or stringData to seal")]
    Empty,
    /// No key opens a value.
    #[error("no key could decrypt `{key}` (wrong key, or the secret was sealed for another name, namespace or scope)")]
    Decrypt {
        /// The data key that could not be opened.
        key: String,
    },
    /// `spec.template.data` (templating) is not supported.
    #[error("spec.template.data (templated keys) is not supported")]
    Templated,
    /// Encryption failed.
    #[error("encryption failed: {0}")]
    Encrypt(String),
}

/// The controller's public key, from its certificate.
#[derive(Clone, Debug)]
pub struct Certificate {
    key: RsaPublicKey,
}

impl Certificate {
    /// The first `CERTIFICATE` block of `pem` (other blocks are skipped, as kubeseal does). An
    /// expired certificate is refused, as kubeseal refuses it.
    pub fn from_pem(pem: &[u8]) -> Result<Certificate, SealError> {
        Self::from_pem_at(pem, SystemTime::now())
    }

    /// As [`Certificate::from_pem`], checking expiry against `now`.
    pub fn from_pem_at(pem: &[u8], now: SystemTime) -> Result<Certificate, SealError> {
        let text = String::from_utf8_lossy(pem);
        let block =
            pem_blocks(&text).into_iter().find(|(label, _)| *label == "CERTIFICATE").ok_or(SealError::NoCertificate)?;
        let certificate =
            x509_cert::Certificate::from_pem(block.1.as_bytes()).map_err(|e| SealError::Certificate(e.to_string()))?;
        let tbs = &certificate.tbs_certificate;
        if tbs.subject_public_key_info.algorithm.oid != rsa::pkcs1::ALGORITHM_OID {
            return Err(SealError::NotRsa);
        }
        if tbs.validity.not_after.to_system_time() < now {
            return Err(SealError::Expired);
        }
        let der = tbs.subject_public_key_info.to_der().map_err(|e| SealError::Certificate(e.to_string()))?;
        let key = RsaPublicKey::from_public_key_der(&der).map_err(|e| SealError::Certificate(e.to_string()))?;
        Ok(Certificate { key })
    }

    /// The public key itself.
    pub fn public_key(&self) -> &RsaPublicKey {
        &self.key
    }
}

/// The controller's private keys (every key it ever made, for recovery).
#[derive(Clone, Debug)]
pub struct PrivateKeys {
    keys: Vec<RsaPrivateKey>,
}

impl PrivateKeys {
    /// Keys from PEM (`RSA PRIVATE KEY`, PKCS#1, as the controller stores them, or `PRIVATE
    /// KEY`, PKCS#8), or from Secrets in YAML or JSON holding `tls.key` (what `kubectl get
    /// secret -l sealedsecrets.bitnami.com/sealed-secrets-key -o yaml` prints).
    pub fn from_bytes(bytes: &[u8]) -> Result<PrivateKeys, SealError> {
        let text = std::str::from_utf8(bytes).map_err(|_| SealError::NoKey)?;
        let mut keys = Vec::new();
        if text.contains("-----BEGIN") {
            keys.extend(pem_keys(text)?);
        } else {
            for document in documents(text, "Secret with tls.key")? {
                let items = match document.get("items").and_then(serde_json::Value::as_array) {
                    Some(items) => items.clone(),
                    None => vec![document],
                };
                for item in items {
                    let secret: Secret = serde_json::from_value(item)
                        .map_err(|e| SealError::Input { expected: "Secret with tls.key", reason: e.to_string() })?;
                    let Some(pem) = secret.data.as_ref().and_then(|d| d.get("tls.key")) else { continue };
                    keys.extend(pem_keys(&String::from_utf8_lossy(&pem.0))?);
                }
            }
        }
        if keys.is_empty() { Err(SealError::NoKey) } else { Ok(PrivateKeys { keys }) }
    }

    /// Keys given directly.
    pub fn new(keys: Vec<RsaPrivateKey>) -> PrivateKeys {
        PrivateKeys { keys }
    }

    /// The keys of both (every key file given).
    #[must_use]
    pub fn join(mut self, other: PrivateKeys) -> PrivateKeys {
        self.keys.extend(other.keys);
        self
    }
}

fn pem_keys(text: &str) -> Result<Vec<RsaPrivateKey>, SealError> {
    pem_blocks(text)
        .into_iter()
        .filter_map(|(label, block)| match label {
            "RSA PRIVATE KEY" => Some(RsaPrivateKey::from_pkcs1_pem(&block).map_err(|e| SealError::Key(e.to_string()))),
            "PRIVATE KEY" => Some(RsaPrivateKey::from_pkcs8_pem(&block).map_err(|e| SealError::Key(e.to_string()))),
            _ => None,
        })
        .collect()
}

/// The PEM blocks of `text`: label and the whole block.
fn pem_blocks(text: &str) -> Vec<(&str, String)> {
    let mut blocks = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("-----BEGIN ") {
        let after = &rest[start + 11..];
        let Some(label_end) = after.find("-----") else { break };
        let label = &after[..label_end];
        let end_marker = format!("-----END {label}-----");
        let Some(end) = rest[start..].find(&end_marker) else { break };
        let stop = start + end + end_marker.len();
        blocks.push((label, format!("{}\n", &rest[start..stop])));
        rest = &rest[stop..];
    }
    blocks
}

/// Seals `plaintext` for `label`.
pub fn encrypt(certificate: &Certificate, label: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, SealError> {
    let mut session_key = [0u8; SESSION_KEY_BYTES];
    OsRng.fill_bytes(&mut session_key);
    let label = String::from_utf8(label.to_vec()).map_err(|e| SealError::Encrypt(e.to_string()))?;
    let padding = Oaep::new_with_label::<Sha256, _>(label);
    let rsa_ciphertext =
        certificate.key.encrypt(&mut OsRng, padding, &session_key).map_err(|e| SealError::Encrypt(e.to_string()))?;
    let length = u16::try_from(rsa_ciphertext.len()).map_err(|e| SealError::Encrypt(e.to_string()))?;
    let cipher = Aes256Gcm::new_from_slice(&session_key).map_err(|e| SealError::Encrypt(e.to_string()))?;
    let sealed =
        cipher.encrypt(Nonce::from_slice(&[0u8; 12]), plaintext).map_err(|e| SealError::Encrypt(e.to_string()))?;
    let mut out = Vec::with_capacity(2 + rsa_ciphertext.len() + sealed.len());
    out.extend_from_slice(&length.to_be_bytes());
    out.extend_from_slice(&rsa_ciphertext);
    out.extend_from_slice(&sealed);
    Ok(out)
}

/// Opens `ciphertext` sealed for `label` with any of `keys`; `None` when none can.
pub fn decrypt(keys: &PrivateKeys, label: &[u8], ciphertext: &[u8]) -> Option<Vec<u8>> {
    let label = String::from_utf8(label.to_vec()).ok()?;
    let length = usize::from(u16::from_be_bytes([*ciphertext.first()?, *ciphertext.get(1)?]));
    let rsa_ciphertext = ciphertext.get(2..2 + length)?;
    let sealed = ciphertext.get(2 + length..)?;
    keys.keys.iter().find_map(|key| {
        let session_key = key.decrypt(Oaep::new_with_label::<Sha256, _>(label.clone()), rsa_ciphertext).ok()?;
        let cipher = Aes256Gcm::new_from_slice(&session_key).ok()?;
        cipher.decrypt(Nonce::from_slice(&[0u8; 12]), sealed).ok()
    })
}

/// A `bitnami.com/v1alpha1` SealedSecret.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SealedSecret {
    /// `SealedSecret`.
    pub kind: String,
    /// `bitnami.com/v1alpha1`.
    pub api_version: String,
    /// Name, namespace, scope annotation.
    pub metadata: ObjectMeta,
    /// The template and the sealed values.
    pub spec: SealedSecretSpec,
}

/// A SealedSecret's spec.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SealedSecretSpec {
    /// The Secret the controller writes, without its data.
    #[serde(default)]
    pub template: Template,
    /// Sealed values by key.
    #[serde(default)]
    pub encrypted_data: BTreeMap<String, String>,
}

/// The Secret a SealedSecret unseals into, without its data.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Template {
    /// The Secret's metadata.
    #[serde(default)]
    pub metadata: ObjectMeta,
    /// The Secret's type.
    #[serde(default, skip_serializing_if = "Option::is_none", rename = "type")]
    pub type_: Option<String>,
    /// Whether the Secret is immutable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub immutable: Option<bool>,
    /// Templated keys (not supported: refused on unseal).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<BTreeMap<String, String>>,
}

/// How to seal: the options of `enclave seal` (kubeseal's `--scope`, `-n`, `--name`).
#[derive(Clone, Debug, Default)]
pub struct SealOptions {
    /// The scope; else the Secret's scope annotation; else strict.
    pub scope: Option<Scope>,
    /// The namespace, when the Secret declares none (must agree when it does).
    pub namespace: Option<String>,
    /// The name, replacing the Secret's.
    pub name: Option<String>,
}

/// The documents of YAML or JSON `text`, as JSON values.
fn documents(text: &str, expected: &'static str) -> Result<Vec<serde_json::Value>, SealError> {
    let file: std::sync::Arc<str> = std::sync::Arc::from("input");
    let nodes = enclave_core::yaml::parse_documents(&file, text)
        .map_err(|e| SealError::Input { expected, reason: format!("line {}: {}", e.span.line, e.message) })?;
    Ok(nodes.iter().map(enclave_core::yaml::Node::to_json).filter(|v| !v.is_null()).collect())
}

/// The Secrets of YAML or JSON `text` (one per document).
pub fn parse_secrets(text: &str) -> Result<Vec<Secret>, SealError> {
    let secrets: Vec<Secret> = documents(text, "Secret")?
        .into_iter()
        .map(|value| {
            if value.get("kind").and_then(serde_json::Value::as_str).is_some_and(|k| k != "Secret") {
                return Err(SealError::Input { expected: "Secret", reason: "its kind is not Secret".to_owned() });
            }
            serde_json::from_value(value).map_err(|e| SealError::Input { expected: "Secret", reason: redacted(&e) })
        })
        .collect::<Result<_, _>>()?;
    if secrets.is_empty() {
        return Err(SealError::Input { expected: "Secret", reason: "no document".to_owned() });
    }
    Ok(secrets)
}

/// The SealedSecrets of YAML or JSON `text`.
pub fn parse_sealed(text: &str) -> Result<Vec<SealedSecret>, SealError> {
    documents(text, "SealedSecret")?
        .into_iter()
        .map(|value| {
            serde_json::from_value(value)
                .map_err(|e| SealError::Input { expected: "SealedSecret", reason: redacted(&e) })
        })
        .collect()
}

/// serde_json's message without what it quotes (it may quote a value).
fn redacted(error: &serde_json::Error) -> String {
    format!("invalid at line {} column {} ({:?})", error.line(), error.column(), error.classify())
}

/// The data to seal: `data` values, then `stringData` (which wins for a key in both).
fn plaintexts(secret: &Secret) -> BTreeMap<String, Vec<u8>> {
    let mut values: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    for (key, value) in secret.data.iter().flatten() {
        values.insert(key.clone(), value.0.clone());
    }
    for (key, value) in secret.string_data.iter().flatten() {
        values.insert(key.clone(), value.clone().into_bytes());
    }
    values
}

/// Seals `secret` for the controller whose certificate is `certificate`.
pub fn seal(secret: &Secret, certificate: &Certificate, options: &SealOptions) -> Result<SealedSecret, SealError> {
    let mut meta = secret.metadata.clone();
    if let Some(name) = &options.name {
        meta.name = Some(name.clone());
    }
    let name = meta.name.clone().filter(|n| !n.is_empty()).ok_or(SealError::NoName)?;
    let scope = options.scope.unwrap_or_else(|| Scope::of(meta.annotations.as_ref()));
    match (&meta.namespace, &options.namespace) {
        (Some(declared), Some(given)) if declared != given => {
            return Err(SealError::NamespaceMismatch { secret: declared.clone(), given: given.clone() });
        }
        (None, Some(given)) => meta.namespace = Some(given.clone()),
        // Declared and agreeing, or not given: the Secret's own namespace (or none) stands.
        (Some(_), Some(_) | None) | (None, None) => {}
    }
    let namespace = meta.namespace.clone().unwrap_or_default();
    if namespace.is_empty() && scope != Scope::ClusterWide {
        return Err(SealError::NoNamespace);
    }
    let values = plaintexts(secret);
    if values.is_empty() {
        return Err(SealError::Empty);
    }
    let label = scope.label(&namespace, &name);
    let encrypted_data = values
        .iter()
        .map(|(key, value)| Ok((key.clone(), STANDARD.encode(encrypt(certificate, &label, value)?))))
        .collect::<Result<BTreeMap<_, _>, SealError>>()?;
    // The template: the Secret's metadata, with the scope annotation, without what the server
    // sets and what names an owner.
    let mut annotations = meta.annotations.clone().unwrap_or_default();
    scope.annotate(&mut annotations);
    for key in LAST_APPLIED {
        annotations.remove(key);
    }
    let template_meta = ObjectMeta {
        annotations: (!annotations.is_empty()).then_some(annotations),
        self_link: None,
        uid: None,
        resource_version: None,
        generation: None,
        creation_timestamp: None,
        deletion_timestamp: None,
        deletion_grace_period_seconds: None,
        owner_references: None,
        ..meta
    };
    let mut top_annotations = BTreeMap::new();
    scope.annotate(&mut top_annotations);
    Ok(SealedSecret {
        kind: "SealedSecret".to_owned(),
        api_version: API_VERSION.to_owned(),
        metadata: ObjectMeta {
            name: Some(name),
            namespace: (!namespace.is_empty()).then_some(namespace),
            annotations: (!top_annotations.is_empty()).then_some(top_annotations),
            ..ObjectMeta::default()
        },
        spec: SealedSecretSpec {
            template: Template {
                metadata: template_meta,
                type_: secret.type_.clone(),
                immutable: secret.immutable,
                data: None,
            },
            encrypted_data,
        },
    })
}

/// Adds (or replaces) the keys of `secret` in `existing`, sealed for `existing`'s name,
/// namespace and scope; every other key stays as it is (kubeseal's `--merge-into`).
pub fn merge_into(
    existing: &SealedSecret,
    secret: &Secret,
    certificate: &Certificate,
) -> Result<SealedSecret, SealError> {
    let options = SealOptions {
        scope: Some(Scope::of(existing.metadata.annotations.as_ref())),
        namespace: None,
        name: existing.metadata.name.clone(),
    };
    let mut input = secret.clone();
    input.metadata.namespace = existing.metadata.namespace.clone();
    let sealed = seal(&input, certificate, &options)?;
    let mut merged = existing.clone();
    merged.spec.encrypted_data.extend(sealed.spec.encrypted_data);
    if let Some(labels) = sealed.spec.template.metadata.labels {
        merged.spec.template.metadata.labels.get_or_insert_with(BTreeMap::new).extend(labels);
    }
    if let Some(annotations) = sealed.spec.template.metadata.annotations {
        merged.spec.template.metadata.annotations.get_or_insert_with(BTreeMap::new).extend(annotations);
    }
    Ok(merged)
}

/// The plaintext values of `sealed`, by key (recovery, re-encryption).
fn open(sealed: &SealedSecret, keys: &PrivateKeys) -> Result<BTreeMap<String, Vec<u8>>, SealError> {
    if sealed.spec.template.data.as_ref().is_some_and(|d| !d.is_empty()) {
        return Err(SealError::Templated);
    }
    let meta = &sealed.metadata;
    let scope = Scope::of(meta.annotations.as_ref());
    let label = scope.label(meta.namespace.as_deref().unwrap_or_default(), meta.name.as_deref().unwrap_or_default());
    sealed
        .spec
        .encrypted_data
        .iter()
        .map(|(key, value)| {
            let bytes = STANDARD.decode(value).map_err(|_| SealError::Decrypt { key: key.clone() })?;
            decrypt(keys, &label, &bytes)
                .map(|plain| (key.clone(), plain))
                .ok_or(SealError::Decrypt { key: key.clone() })
        })
        .collect()
}

/// The Secret `sealed` unseals into, opened with `keys` (kubeseal's `--recovery-unseal`): the
/// template's metadata with the SealedSecret's name and namespace, its type, the data.
pub fn unseal(sealed: &SealedSecret, keys: &PrivateKeys) -> Result<Secret, SealError> {
    let data = open(sealed, keys)?;
    let mut metadata = sealed.spec.template.metadata.clone();
    metadata.name.clone_from(&sealed.metadata.name);
    metadata.namespace.clone_from(&sealed.metadata.namespace);
    Ok(Secret {
        metadata,
        type_: sealed.spec.template.type_.clone(),
        immutable: sealed.spec.template.immutable,
        data: Some(data.into_iter().map(|(k, v)| (k, ByteString(v))).collect()),
        string_data: None,
    })
}

/// `sealed` opened with `keys` and sealed again for `certificate` (a rotated controller key),
/// same name, namespace and scope.
pub fn re_encrypt(
    sealed: &SealedSecret,
    keys: &PrivateKeys,
    certificate: &Certificate,
) -> Result<SealedSecret, SealError> {
    let data = open(sealed, keys)?;
    let meta = &sealed.metadata;
    let label = Scope::of(meta.annotations.as_ref())
        .label(meta.namespace.as_deref().unwrap_or_default(), meta.name.as_deref().unwrap_or_default());
    let mut out = sealed.clone();
    out.spec.encrypted_data = data
        .iter()
        .map(|(key, value)| Ok((key.clone(), STANDARD.encode(encrypt(certificate, &label, value)?))))
        .collect::<Result<_, SealError>>()?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rsa::pkcs1::EncodeRsaPrivateKey;

    fn key() -> RsaPrivateKey {
        // 2048 bits keeps the tests quick; the controller's default is 4096.
        RsaPrivateKey::new(&mut OsRng, 2048).expect("a key")
    }

    fn certificate(key: &RsaPrivateKey) -> Certificate {
        Certificate { key: key.to_public_key() }
    }

    fn secret(namespace: Option<&str>) -> Secret {
        Secret {
            metadata: ObjectMeta {
                name: Some("db".into()),
                namespace: namespace.map(str::to_owned),
                labels: Some(BTreeMap::from([("team".into(), "orders".into())])),
                uid: Some("server-set".into()),
                ..ObjectMeta::default()
            },
            type_: Some("Opaque".into()),
            data: Some(BTreeMap::from([("password".into(), ByteString(b"hunter2-canary".to_vec()))])),
            string_data: Some(BTreeMap::from([("user".into(), "orders".into())])),
            ..Secret::default()
        }
    }

    #[test]
    fn the_wire_format_is_length_rsa_then_gcm() {
        let key = key();
        let sealed = encrypt(&certificate(&key), b"ns/name", b"value").expect("sealed");
        assert_eq!(u16::from_be_bytes([sealed[0], sealed[1]]), 256, "a 2048-bit key's OAEP block");
        assert_eq!(sealed.len(), 2 + 256 + 5 + 16, "GCM adds its 16-byte tag");
        let keys = PrivateKeys::new(vec![key]);
        assert_eq!(decrypt(&keys, b"ns/name", &sealed).as_deref(), Some(&b"value"[..]));
        assert_eq!(decrypt(&keys, b"ns/other", &sealed), None, "the label binds the scope");
    }

    #[test]
    fn seal_and_unseal_round_trip_in_every_scope() {
        let key = key();
        let keys = PrivateKeys::new(vec![key.clone()]);
        for scope in [Scope::Strict, Scope::NamespaceWide, Scope::ClusterWide] {
            let options = SealOptions { scope: Some(scope), ..SealOptions::default() };
            let sealed = seal(&secret(Some("orders")), &certificate(&key), &options).expect("sealed");
            assert_eq!(Scope::of(sealed.metadata.annotations.as_ref()), scope);
            assert_eq!(Scope::of(sealed.spec.template.metadata.annotations.as_ref()), scope);
            assert_eq!(sealed.spec.template.metadata.uid, None);
            let text = serde_json::to_string(&sealed).expect("json");
            assert!(!text.contains("hunter2"), "{text}");
            let opened = unseal(&sealed, &keys).expect("opened");
            assert_eq!(
                opened.data.as_ref().and_then(|d| d.get("password")).map(|v| v.0.clone()),
                Some(b"hunter2-canary".to_vec())
            );
            assert_eq!(opened.data.as_ref().and_then(|d| d.get("user")).map(|v| v.0.clone()), Some(b"orders".to_vec()));
            // Renamed: strict fails, the wider scopes still open.
            let mut moved = sealed.clone();
            moved.metadata.name = Some("other".into());
            assert_eq!(unseal(&moved, &keys).is_ok(), scope != Scope::Strict, "{scope:?}");
            let mut elsewhere = sealed.clone();
            elsewhere.metadata.namespace = Some("billing".into());
            assert_eq!(unseal(&elsewhere, &keys).is_ok(), scope == Scope::ClusterWide, "{scope:?}");
        }
    }

    #[test]
    fn a_namespace_is_required_unless_cluster_wide_and_must_agree() {
        let key = key();
        let cert = certificate(&key);
        assert!(matches!(seal(&secret(None), &cert, &SealOptions::default()), Err(SealError::NoNamespace)));
        let options = SealOptions { namespace: Some("billing".into()), ..SealOptions::default() };
        assert!(matches!(seal(&secret(Some("orders")), &cert, &options), Err(SealError::NamespaceMismatch { .. })));
        let wide = SealOptions { scope: Some(Scope::ClusterWide), ..SealOptions::default() };
        assert!(seal(&secret(None), &cert, &wide).expect("cluster-wide").metadata.namespace.is_none());
    }

    #[test]
    fn merge_keeps_other_keys_and_re_encrypt_moves_to_the_new_key() {
        let old = key();
        let new = key();
        let sealed = seal(&secret(Some("orders")), &certificate(&old), &SealOptions::default()).expect("sealed");
        let more =
            Secret { string_data: Some(BTreeMap::from([("token".into(), "t0ken".into())])), ..Secret::default() };
        let merged = merge_into(&sealed, &more, &certificate(&old)).expect("merged");
        assert_eq!(merged.spec.encrypted_data.keys().collect::<Vec<_>>(), ["password", "token", "user"]);
        assert_eq!(merged.spec.encrypted_data["password"], sealed.spec.encrypted_data["password"]);
        let moved = re_encrypt(&merged, &PrivateKeys::new(vec![old.clone()]), &certificate(&new)).expect("moved");
        assert!(unseal(&moved, &PrivateKeys::new(vec![old])).is_err());
        let opened = unseal(&moved, &PrivateKeys::new(vec![new])).expect("new key opens");
        assert_eq!(opened.data.map(|d| d.len()), Some(3));
    }

    #[test]
    fn keys_read_from_pem_and_from_the_controllers_secret() {
        let key = key();
        let pem = key.to_pkcs1_pem(rsa::pkcs1::LineEnding::LF).expect("pem");
        assert_eq!(PrivateKeys::from_bytes(pem.as_bytes()).expect("pem key").keys.len(), 1);
        let secret = format!(
            "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Secret\n  metadata: {{name: sealed-secrets-key}}\n  data:\n    tls.key: {}\n",
            STANDARD.encode(pem.as_bytes())
        );
        assert_eq!(PrivateKeys::from_bytes(secret.as_bytes()).expect("secret key").keys.len(), 1);
        assert!(matches!(PrivateKeys::from_bytes(b"nothing"), Err(SealError::Input { .. } | SealError::NoKey)));
    }
}
