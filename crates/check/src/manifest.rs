//! Reading manifests: every YAML document of every file, `List` kinds expanded, and the pod
//! template inside every workload kind.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use enclave_core::yaml::{self, Node, Value};

use crate::{Error, Result};

/// One input: a file's name as the user gave it, and its text.
#[derive(Clone, Debug)]
pub struct Source {
    /// The name findings carry (`-` for stdin).
    pub name: Arc<str>,
    /// The whole text.
    pub text: String,
}

impl Source {
    /// A source from text already in memory.
    pub fn new(name: impl Into<Arc<str>>, text: impl Into<String>) -> Self {
        Source { name: name.into(), text: text.into() }
    }
}

/// Whether a file is one `enclave check` reads when walking a folder.
fn is_manifest(path: &Path) -> bool {
    path.extension().and_then(|e| e.to_str()).is_some_and(|e| matches!(e, "yaml" | "yml" | "json"))
}

/// Reads every path: a file as it is, a folder recursively (`.yaml`, `.yml`, `.json`, hidden
/// entries skipped, sorted), `-` as stdin. Files come back in a stable order.
pub fn read_sources(paths: &[PathBuf]) -> Result<Vec<Source>> {
    let mut sources = Vec::new();
    for path in paths {
        if path.as_os_str() == "-" {
            let mut text = String::new();
            std::io::stdin().read_to_string(&mut text).map_err(|source| Error::Read { path: "-".into(), source })?;
            sources.push(Source::new("-", text));
        } else if path.is_dir() {
            let mut files = Vec::new();
            walk(path, &mut files)?;
            files.sort();
            for file in files {
                sources.push(read_file(&file)?);
            }
        } else {
            sources.push(read_file(path)?);
        }
    }
    Ok(sources)
}

fn read_file(path: &Path) -> Result<Source> {
    let name: Arc<str> = Arc::from(path.display().to_string());
    let text = enclave_core::config::read_text(path, &name).map_err(|error| match error {
        enclave_core::Error::Read { path, source } => Error::Read { path, source },
        other => Error::NotText { message: other.to_string() },
    })?;
    Ok(Source::new(path.display().to_string(), text))
}

fn walk(dir: &Path, files: &mut Vec<PathBuf>) -> Result<()> {
    let entries = fs::read_dir(dir).map_err(|source| Error::Read { path: dir.to_owned(), source })?;
    for entry in entries {
        let entry = entry.map_err(|source| Error::Read { path: dir.to_owned(), source })?;
        let path = entry.path();
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        if path.is_dir() {
            walk(&path, files)?;
        } else if is_manifest(&path) {
            files.push(path);
        }
    }
    Ok(())
}

/// A file that is not valid YAML: where the parser stopped, and why.
#[derive(Clone, Debug, PartialEq)]
pub struct ParseError {
    /// The file.
    pub file: Arc<str>,
    /// 1-based line.
    pub line: u32,
    /// 1-based column.
    pub column: u32,
    /// The parser's message.
    pub message: String,
}

/// One Kubernetes object: a document, or an item of a `List` document.
#[derive(Clone, Debug)]
pub struct Object {
    /// The file it was read from.
    pub file: Arc<str>,
    /// The object as written, with positions.
    pub node: Node,
    /// `kind`, when it is a string.
    pub kind: Option<String>,
    /// `apiVersion`, when it is a string.
    pub api_version: Option<String>,
    /// `metadata.name`, when it is a string.
    pub name: Option<String>,
    /// `metadata.namespace`, when it is a string.
    pub namespace: Option<String>,
}

/// Everything read from one source.
#[derive(Clone, Debug, Default)]
pub struct Parsed {
    /// Every object, `List` items in place of their list.
    pub objects: Vec<Object>,
    /// Documents that are not Kubernetes objects (no `apiVersion` and no `kind`: a rule file,
    /// a dashboard, a list at top level), skipped, by line.
    pub not_objects: Vec<(u32, &'static str)>,
    /// The syntax error, if the file is not YAML.
    pub error: Option<ParseError>,
    /// Duplicate keys: the last one was kept, as Kubernetes' own tools and PyYAML keep it.
    pub duplicates: Vec<ParseError>,
    /// Non-empty documents in the file.
    pub documents: usize,
}

/// Parses every document of `source`. Empty documents are skipped; a syntax error stops the
/// file and is returned with its position, never raised. Duplicate keys are tolerated (the last
/// wins) and reported.
pub fn parse(source: &Source) -> Parsed {
    let mut parsed = Parsed::default();
    let documents = match yaml::parse_documents_lenient(&source.name, &source.text) {
        Ok((documents, duplicates)) => {
            parsed.duplicates = duplicates
                .into_iter()
                .map(|error| ParseError {
                    file: source.name.clone(),
                    line: error.span.line,
                    column: error.span.column,
                    message: format!("{}: {}", error.path, error.message),
                })
                .collect();
            documents
        }
        Err(error) => {
            parsed.error = Some(ParseError {
                file: source.name.clone(),
                line: error.span.line,
                column: error.span.column,
                message: error.message,
            });
            return parsed;
        }
    };
    for document in documents {
        match &document.value {
            Value::Null => continue,
            Value::Map(_) if document.get("apiVersion").is_some() || document.get("kind").is_some() => {}
            _ => {
                parsed.documents += 1;
                parsed.not_objects.push((document.span.line, document.type_name()));
                continue;
            }
        }
        parsed.documents += 1;
        if str_at(Some(&document), "kind") == Some("List") {
            if let Some(Value::Seq(items)) = document.get("items").map(|items| &items.value) {
                for item in items {
                    if matches!(item.value, Value::Map(_)) {
                        parsed.objects.push(Object::new(source.name.clone(), item.clone()));
                    }
                }
            }
            continue;
        }
        parsed.objects.push(Object::new(source.name.clone(), document));
    }
    parsed
}

impl Object {
    /// Wraps a mapping read from `file`.
    pub fn new(file: Arc<str>, node: Node) -> Self {
        let metadata = node.get("metadata");
        Object {
            kind: str_at(Some(&node), "kind").map(str::to_owned),
            api_version: str_at(Some(&node), "apiVersion").map(str::to_owned),
            name: str_at(metadata, "name").map(str::to_owned),
            namespace: str_at(metadata, "namespace").map(str::to_owned),
            file,
            node,
        }
    }

    /// The object's `metadata`.
    pub fn metadata(&self) -> Option<&Node> {
        self.node.get("metadata")
    }

    /// Whether the object looks like a Kubernetes resource: `apiVersion`, a string `kind` and a
    /// `metadata` mapping with a name or labels. Rules only look at those (as Checkov does);
    /// schema validation looks at everything.
    pub fn is_resource(&self) -> bool {
        let metadata = self.metadata();
        self.node.get("apiVersion").is_some()
            && self.kind.is_some()
            && matches!(metadata.map(|m| &m.value), Some(Value::Map(_)))
            && (self.name.is_some() || metadata.and_then(|m| m.get("labels")).is_some())
    }

    /// The kind, or an empty string.
    pub fn kind(&self) -> &str {
        self.kind.as_deref().unwrap_or_default()
    }

    /// The line the object starts at.
    pub fn line(&self) -> u32 {
        self.node.span.line
    }

    /// The pod template of a workload: its `(spec, metadata)` as Kubernetes nests them per kind.
    /// `None` for kinds that hold no pod.
    pub fn pod_template(&self) -> Option<(Option<&Node>, Option<&Node>)> {
        let spec = self.node.get("spec");
        let template = match self.kind() {
            "Pod" => return Some((spec, self.metadata())),
            "PodTemplate" => self.node.get("template"),
            "CronJob" => at(spec, &["jobTemplate", "spec", "template"]),
            kind if TEMPLATE_KINDS.contains(&kind) => at(spec, &["template"]),
            _ => return None,
        };
        Some((at(template, &["spec"]), at(template, &["metadata"])))
    }
}

/// Kinds whose pod template is `spec.template`.
pub(crate) const TEMPLATE_KINDS: &[&str] =
    &["Deployment", "DeploymentConfig", "DaemonSet", "Job", "ReplicaSet", "ReplicationController", "StatefulSet"];

/// The value at `keys` under `node`, following mappings only.
pub(crate) fn at<'a>(node: Option<&'a Node>, keys: &[&str]) -> Option<&'a Node> {
    keys.iter().try_fold(node?, |node, key| node.get(key))
}

/// The string under `key` of a mapping.
pub(crate) fn str_at<'a>(node: Option<&'a Node>, key: &str) -> Option<&'a str> {
    match &node?.get(key)?.value {
        Value::String(value) => Some(value),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_expand_and_empty_documents_are_skipped() {
        let source = Source::new(
            "a.yaml",
            "---\n---\napiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: ConfigMap, metadata: {name: a}}\n- {apiVersion: v1, kind: Secret, metadata: {name: b, namespace: x}}\n---\njust a string\n",
        );
        let parsed = parse(&source);
        let kinds: Vec<_> = parsed.objects.iter().map(|o| (o.kind(), o.name.as_deref(), o.line())).collect();
        assert_eq!(kinds, [("ConfigMap", Some("a"), 6), ("Secret", Some("b"), 7)]);
        assert_eq!(parsed.not_objects, [(9, "a string")]);
        assert_eq!(parsed.documents, 2);
        let rules = parse(&Source::new("rules.yml", "groups:\n- name: a\n"));
        assert_eq!((rules.objects.len(), rules.not_objects.as_slice()), (0, &[(1, "a mapping")][..]));
    }

    #[test]
    fn syntax_errors_come_back_with_their_line() {
        let parsed = parse(&Source::new("bad.yaml", "kind: Pod\nmetadata:\n  name: [a\n"));
        let error = parsed.error.expect("a syntax error");
        assert_eq!((error.file.as_ref(), error.line), ("bad.yaml", 4));
        assert!(parsed.objects.is_empty());
    }

    #[test]
    fn pod_templates_are_found_in_every_workload_kind() {
        for (kind, nesting) in [
            ("Pod", "spec: {containers: [{name: c}]}"),
            ("Deployment", "spec: {template: {spec: {containers: [{name: c}]}}}"),
            ("StatefulSet", "spec: {template: {spec: {containers: [{name: c}]}}}"),
            ("DaemonSet", "spec: {template: {spec: {containers: [{name: c}]}}}"),
            ("ReplicaSet", "spec: {template: {spec: {containers: [{name: c}]}}}"),
            ("ReplicationController", "spec: {template: {spec: {containers: [{name: c}]}}}"),
            ("Job", "spec: {template: {spec: {containers: [{name: c}]}}}"),
            ("CronJob", "spec: {jobTemplate: {spec: {template: {spec: {containers: [{name: c}]}}}}}"),
            ("PodTemplate", "template: {spec: {containers: [{name: c}]}}"),
        ] {
            let text = format!("apiVersion: v1\nkind: {kind}\nmetadata: {{name: x}}\n{nesting}\n");
            let parsed = parse(&Source::new("w.yaml", text));
            let (spec, _) = parsed.objects[0].pod_template().expect(kind);
            assert!(at(spec, &["containers"]).is_some(), "{kind}");
        }
        let parsed = parse(&Source::new("s.yaml", "apiVersion: v1\nkind: Service\nmetadata: {name: x}\n"));
        assert!(parsed.objects[0].pod_template().is_none());
    }
}
