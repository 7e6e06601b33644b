//! Rendered Kubernetes objects and their deterministic YAML.
//!
//! A [`Bundle`] holds objects of any kind as JSON values (typed structs from `k8s-openapi` or
//! our own CRD structs serialise into it), sorts them by a fixed kind order, namespace and name,
//! and writes them as multi-document YAML or one file per object. The same input always gives
//! byte-identical output, so snapshots and GitOps diffs stay clean.

use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};

use serde::Serialize;

/// Kinds in apply order: what others depend on first. The kinds domains add have their place
/// here too: Gatekeeper's templates with the CRDs they define; secret stores before the
/// ExternalSecrets that read them and SealedSecrets before the workloads that mount what they
/// unseal; the mesh's security and traffic policy before the workloads it governs. Kinds not
/// listed (Gatekeeper constraints, whose kinds the templates define) come last, by kind.
const KIND_ORDER: &[&str] = &[
    "Namespace",
    "CustomResourceDefinition",
    "ConstraintTemplate",
    "ServiceAccount",
    "ClusterRole",
    "ClusterRoleBinding",
    "Role",
    "RoleBinding",
    "ConfigMap",
    "Secret",
    "ClusterSecretStore",
    "SecretStore",
    "ExternalSecret",
    "SealedSecret",
    "ResourceQuota",
    "LimitRange",
    "PeerAuthentication",
    "AuthorizationPolicy",
    "Sidecar",
    "ServiceEntry",
    "DestinationRule",
    "Service",
    "VirtualService",
    "Deployment",
    "StatefulSet",
    "DaemonSet",
    "PodDisruptionBudget",
    "HorizontalPodAutoscaler",
    "VerticalPodAutoscaler",
];

/// One rendered object.
#[derive(Clone, Debug, PartialEq)]
pub struct Manifest {
    value: serde_json::Value,
}

impl Manifest {
    /// The object as JSON.
    pub fn value(&self) -> &serde_json::Value {
        &self.value
    }

    fn text(&self, pointer: &str) -> &str {
        self.value.pointer(pointer).and_then(serde_json::Value::as_str).unwrap_or_default()
    }

    /// `apiVersion`.
    pub fn api_version(&self) -> &str {
        self.text("/apiVersion")
    }

    /// `kind`.
    pub fn kind(&self) -> &str {
        self.text("/kind")
    }

    /// `metadata.namespace`, empty for cluster-scoped objects.
    pub fn namespace(&self) -> &str {
        self.text("/metadata/namespace")
    }

    /// `metadata.name`.
    pub fn name(&self) -> &str {
        self.text("/metadata/name")
    }

    fn sort_key(&self) -> (usize, &str, &str, &str) {
        let rank = KIND_ORDER.iter().position(|kind| *kind == self.kind()).unwrap_or(KIND_ORDER.len());
        // Kinds outside the fixed order share a rank; the kind keeps them apart.
        (rank, self.kind(), self.namespace(), self.name())
    }
}

impl fmt::Display for Manifest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.namespace().is_empty() {
            write!(f, "{}/{}", self.kind(), self.name())
        } else {
            write!(f, "{}/{}/{}", self.kind(), self.namespace(), self.name())
        }
    }
}

/// Why an object could not be added or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BundleError {
    /// The object did not serialise, or lacks `apiVersion`, `kind` or `metadata.name`.
    #[error("object does not serialise as a Kubernetes object: {reason}")]
    NotAnObject {
        /// What was wrong.
        reason: String,
    },
    /// Two objects share kind, namespace and name.
    #[error("{object} is rendered twice")]
    Duplicate {
        /// The object.
        object: String,
    },
    /// Writing a file failed.
    #[error("cannot write {}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// Rendered objects, kept in a stable order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Bundle {
    objects: Vec<Manifest>,
}

impl Bundle {
    /// Adds an object; rejects values without `apiVersion`, `kind` and `metadata.name`, and
    /// duplicates.
    pub fn push(&mut self, object: &impl Serialize) -> Result<(), BundleError> {
        let value = serde_json::to_value(object).map_err(|e| BundleError::NotAnObject { reason: e.to_string() })?;
        let manifest = Manifest { value };
        if manifest.api_version().is_empty() || manifest.kind().is_empty() || manifest.name().is_empty() {
            return Err(BundleError::NotAnObject { reason: "apiVersion, kind and metadata.name are required".into() });
        }
        let key = manifest.sort_key();
        match self.objects.binary_search_by(|existing| existing.sort_key().cmp(&key)) {
            Ok(_) => Err(BundleError::Duplicate { object: manifest.to_string() }),
            Err(at) => {
                self.objects.insert(at, manifest);
                Ok(())
            }
        }
    }

    /// Adds every object of `other`.
    pub fn extend(&mut self, other: Bundle) -> Result<(), BundleError> {
        for manifest in other.objects {
            self.push(&manifest.value)?;
        }
        Ok(())
    }

    /// Adds to each object the annotations `annotations` gives for it (a GitOps controller's
    /// ordering and sync options); the order of objects does not change.
    pub fn annotate(&mut self, annotations: impl Fn(&Manifest) -> std::collections::BTreeMap<String, String>) {
        for manifest in &mut self.objects {
            let extra = annotations(manifest);
            if extra.is_empty() {
                continue;
            }
            let Some(metadata) = manifest.value.get_mut("metadata").and_then(serde_json::Value::as_object_mut) else {
                continue;
            };
            let existing = metadata.entry("annotations").or_insert_with(|| serde_json::json!({}));
            if let Some(existing) = existing.as_object_mut() {
                for (key, value) in extra {
                    existing.insert(key, serde_json::Value::String(value));
                }
            }
        }
    }

    /// The objects, in order.
    pub fn objects(&self) -> &[Manifest] {
        &self.objects
    }

    /// Number of objects.
    pub fn len(&self) -> usize {
        self.objects.len()
    }

    /// Whether the bundle is empty.
    pub fn is_empty(&self) -> bool {
        self.objects.is_empty()
    }

    /// Every object as one multi-document YAML stream.
    pub fn to_yaml(&self) -> String {
        let mut out = String::new();
        for manifest in &self.objects {
            out.push_str("---\n");
            out.push_str(&to_yaml(&manifest.value));
        }
        out
    }

    /// Writes one file per object, `DIR/<namespace or _cluster>/<kind>-<name>.yaml`, and returns
    /// the paths written.
    pub fn write_to(&self, dir: &Path) -> Result<Vec<PathBuf>, BundleError> {
        let mut written = Vec::with_capacity(self.objects.len());
        for manifest in &self.objects {
            let folder = if manifest.namespace().is_empty() { "_cluster" } else { manifest.namespace() };
            let path = dir.join(folder).join(format!("{}-{}.yaml", manifest.kind().to_lowercase(), manifest.name()));
            let write = |path: &Path| -> std::io::Result<()> {
                if let Some(parent) = path.parent() {
                    fs::create_dir_all(parent)?;
                }
                fs::write(path, to_yaml(&manifest.value))
            };
            write(&path).map_err(|source| BundleError::Write { path: path.clone(), source })?;
            written.push(path);
        }
        Ok(written)
    }
}

/// A rendered file that is not a Kubernetes object (a Prometheus rule file, a dashboard, a
/// Filebeat input), with its path relative to the output folder.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Artifact {
    /// Relative path, `/`-separated.
    pub path: String,
    /// File content.
    pub content: String,
}

impl Artifact {
    /// An artifact at `path`.
    pub fn new(path: impl Into<String>, content: impl Into<String>) -> Self {
        Artifact { path: path.into(), content: content.into() }
    }

    /// Writes the file under `dir`, creating folders.
    pub fn write_to(&self, dir: &Path) -> Result<PathBuf, BundleError> {
        let path = dir.join(&self.path);
        let write = |path: &Path| -> std::io::Result<()> {
            if let Some(parent) = path.parent() {
                fs::create_dir_all(parent)?;
            }
            fs::write(path, &self.content)
        };
        write(&path).map_err(|source| BundleError::Write { path: path.clone(), source })?;
        Ok(path)
    }
}

/// YAML text of any serialisable value, in the crate's one YAML style.
pub fn to_yaml(value: &impl Serialize) -> String {
    // Serialising a JSON value to YAML cannot fail: every JSON value has a YAML form.
    serde_saphyr::to_string(value).unwrap_or_else(|error| panic!("YAML serialisation failed: {error}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_sort_by_kind_then_namespace_then_name_and_duplicates_are_refused() {
        let mut bundle = Bundle::default();
        let object = |kind: &str, namespace: &str, name: &str| serde_json::json!({"apiVersion": "v1", "kind": kind, "metadata": {"name": name, "namespace": namespace}});
        bundle.push(&object("HorizontalPodAutoscaler", "b", "x")).expect("new");
        bundle.push(&object("ServiceAccount", "b", "y")).expect("new");
        bundle.push(&object("HorizontalPodAutoscaler", "a", "z")).expect("new");
        let order: Vec<String> = bundle.objects().iter().map(ToString::to_string).collect();
        assert_eq!(order, ["ServiceAccount/b/y", "HorizontalPodAutoscaler/a/z", "HorizontalPodAutoscaler/b/x"]);
        assert!(matches!(bundle.push(&object("ServiceAccount", "b", "y")), Err(BundleError::Duplicate { .. })));
        assert!(bundle.to_yaml().starts_with("---\napiVersion: v1\nkind: ServiceAccount\n"), "{}", bundle.to_yaml());
    }

    #[test]
    fn kinds_domains_add_sort_before_what_needs_them() {
        let mut bundle = Bundle::default();
        let object = |kind: &str, name: &str| serde_json::json!({"apiVersion": "x/v1", "kind": kind, "metadata": {"name": name, "namespace": "shop"}});
        for (kind, name) in [
            ("Deployment", "orders"),
            ("ExternalSecret", "db"),
            ("SecretStore", "aws"),
            ("SealedSecret", "tls"),
            ("AuthorizationPolicy", "orders"),
            ("K8sRequiredLabels", "owner"),
            ("ConstraintTemplate", "k8srequiredlabels"),
        ] {
            bundle.push(&object(kind, name)).expect("new");
        }
        let kinds: Vec<String> =
            bundle.objects().iter().map(|o| o.to_string().split('/').next().unwrap_or_default().to_owned()).collect();
        assert_eq!(
            kinds,
            [
                "ConstraintTemplate",
                "SecretStore",
                "ExternalSecret",
                "SealedSecret",
                "AuthorizationPolicy",
                "Deployment",
                "K8sRequiredLabels"
            ]
        );
    }
}
