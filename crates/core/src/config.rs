//! Loading a spec from layered YAML: `base/` then each overlay, in the order given.
//!
//! ```text
//! configs/
//! ├── base/                  every *.yaml / *.yml, merged in file-name order
//! └── overlays/
//!     ├── client-a/          merged on top when `--overlay client-a` is given
//!     └── staging/
//! ```
//!
//! Each file holds one or more YAML documents, each a mapping (a partial spec). Layers merge
//! with the rules of [`crate::merge`]. After merging, each account's `network` is the top-level
//! `network` defaults merged with the account's own `network`, by the same rules. The result is
//! deserialised into [`Spec`] (unknown fields are errors) and validated; every problem is
//! reported with file, line, column and field path.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::{Diagnostic, Error, Result, Violation};
use crate::merge::{self, MergeError};
use crate::source::{FieldPath, Span};
use crate::spec::Spec;
use crate::validate;
use crate::yaml::{self, Entry, Node, Value};

/// Which layers to load.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadOptions {
    /// The config folder holding `base/` and `overlays/`.
    pub dir: PathBuf,
    /// Overlay names, applied in this order.
    pub overlays: Vec<String>,
}

impl LoadOptions {
    /// Only the base layer of `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        LoadOptions { dir: dir.into(), overlays: Vec::new() }
    }

    /// Adds an overlay on top of the ones already listed.
    #[must_use]
    pub fn overlay(mut self, name: impl Into<String>) -> Self {
        self.overlays.push(name.into());
        self
    }
}

/// A validated spec and the merged document it came from, which maps field paths back to
/// source positions.
#[derive(Clone, Debug)]
pub struct Loaded {
    /// The spec.
    pub spec: Spec,
    /// The merged document.
    pub document: Node,
    /// Files read, in merge order.
    pub files: Vec<PathBuf>,
}

impl Loaded {
    /// Locates violations found by other crates' validators (the CIDR planner, say) in the
    /// source, or `Ok` when there are none.
    pub fn check(&self, violations: Vec<Violation>) -> Result<()> {
        if violations.is_empty() {
            return Ok(());
        }
        Err(self.locate(violations))
    }

    /// The invalid-input error for `violations`, each located in the source.
    pub fn locate(&self, violations: Vec<Violation>) -> Error {
        Error::Invalid { diagnostics: locate_all(&self.document, violations) }
    }
}

/// Loads, merges, deserialises and validates the layers named by `options`.
pub fn load(options: &LoadOptions) -> Result<Loaded> {
    let base_dir = options.dir.join("base");
    if !base_dir.is_dir() {
        return Err(Error::invalid(Diagnostic {
            span: None,
            path: FieldPath::root(),
            message: format!(
                "no base layer: `{}` is not a folder (a config folder holds base/ and overlays/<name>/)",
                base_dir.display()
            ),
        }));
    }
    let mut files = Vec::new();
    let mut document: Option<Node> = None;
    merge_folder(&base_dir, &mut document, &mut files)?;
    for name in &options.overlays {
        let overlay_dir = options.dir.join("overlays").join(name);
        if !overlay_dir.is_dir() {
            let available = list_overlays(&options.dir.join("overlays"));
            return Err(Error::invalid(Diagnostic {
                span: None,
                path: FieldPath::root(),
                message: format!(
                    "overlay `{name}` not found: `{}` is not a folder (available: {})",
                    overlay_dir.display(),
                    if available.is_empty() { "none".to_owned() } else { available.join(", ") }
                ),
            }));
        }
        let before = files.len();
        merge_folder(&overlay_dir, &mut document, &mut files)?;
        if files.len() == before {
            return Err(Error::invalid(Diagnostic {
                span: None,
                path: FieldPath::root(),
                message: format!("overlay `{name}` holds no .yaml or .yml file"),
            }));
        }
    }
    let Some(document) = document else {
        return Err(Error::invalid(Diagnostic {
            span: None,
            path: FieldPath::root(),
            message: format!("no spec: `{}` holds no YAML document", base_dir.display()),
        }));
    };
    let mut loaded = from_document(document)?;
    loaded.files = files;
    Ok(loaded)
}

/// Parses a single YAML text as a whole spec; `name` is the file name errors carry.
pub fn load_str(name: &str, text: &str) -> Result<Loaded> {
    let file: Arc<str> = Arc::from(name);
    let mut document: Option<Node> = None;
    for node in parse(&file, text)? {
        accumulate(&mut document, node)?;
    }
    let document = document.ok_or_else(|| {
        Error::invalid(Diagnostic {
            span: None,
            path: FieldPath::root(),
            message: format!("no spec: `{name}` is empty"),
        })
    })?;
    from_document(document)
}

/// The text of `path` (shown as `file`): a file that cannot be read is [`Error::Read`]; one that
/// is binary (holds a NUL byte) or not UTF-8 is invalid input at the line, column and byte
/// offset of the first offending byte (never the bytes themselves: they may be a secret).
pub fn read_text(path: &Path, file: &Arc<str>) -> Result<String> {
    let bytes = fs::read(path).map_err(|source| Error::Read { path: path.to_owned(), source })?;
    let nul = bytes.iter().position(|b| *b == 0);
    match String::from_utf8(bytes) {
        Ok(text) => match nul {
            Some(offset) => Err(not_text(file, text.as_bytes(), offset, "a binary file: a NUL byte")),
            None => Ok(text),
        },
        Err(error) => {
            let invalid = error.utf8_error().valid_up_to();
            match nul.filter(|offset| *offset < invalid) {
                Some(offset) => Err(not_text(file, error.as_bytes(), offset, "a binary file: a NUL byte")),
                None => Err(not_text(file, error.as_bytes(), invalid, "not UTF-8: an invalid byte")),
            }
        }
    }
}

fn not_text(file: &Arc<str>, bytes: &[u8], offset: usize, problem: &str) -> Error {
    let before = &bytes[..offset];
    let line = before.iter().filter(|b| **b == b'\n').count() + 1;
    let line_start = before.iter().rposition(|b| *b == b'\n').map_or(0, |newline| newline + 1);
    let column = String::from_utf8_lossy(&before[line_start..]).chars().count() + 1;
    Error::invalid(Diagnostic {
        span: Some(Span::new(
            Arc::clone(file),
            u32::try_from(line).unwrap_or(u32::MAX),
            u32::try_from(column).unwrap_or(u32::MAX),
        )),
        path: FieldPath::root(),
        message: format!("{problem} at byte offset {offset}; specs and manifests are UTF-8 text"),
    })
}

/// Reads the first YAML document of `path` as a `T` (a Kubernetes object, say), with the same
/// located errors as specs: file, line, column and field. Fields `T` does not know are errors,
/// as in specs, even where `T` itself would skip them (k8s-openapi types do): a typo such as
/// `minReplica` must not be dropped silently.
pub fn read_typed<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let file: Arc<str> = Arc::from(path.display().to_string());
    let text = read_text(path, &file)?;
    let document = parse(&file, &text)?.into_iter().next().ok_or_else(|| {
        Error::invalid(Diagnostic {
            span: None,
            path: FieldPath::root(),
            message: format!("`{}` holds no YAML document", path.display()),
        })
    })?;
    reject_ignored::<T>(&document)?;
    deserialize_as(&document)
}

/// Fails on the first field of `document` that deserialising a `T` would skip.
fn reject_ignored<T: serde::de::DeserializeOwned>(document: &Node) -> Result<()> {
    let mut ignored: Option<FieldPath> = None;
    let json = document.to_json();
    let _ = serde_ignored::deserialize(&json, |skipped| {
        if ignored.is_none() {
            ignored = Some(field_path(&skipped));
        }
    })
    .map(|_: T| ());
    let Some(path) = ignored else { return Ok(()) };
    let field = match path.segments().last() {
        Some(crate::source::Segment::Key(key)) => key.clone(),
        _ => return Ok(()),
    };
    let parent = parent_path(&path);
    let span = document.locate_key(&parent, &field).unwrap_or_else(|| document.locate(&path));
    Err(Error::invalid(Diagnostic { span: Some(span), path, message: format!("unknown field `{field}`") }))
}

fn field_path(skipped: &serde_ignored::Path<'_>) -> FieldPath {
    match skipped {
        serde_ignored::Path::Root => FieldPath::root(),
        serde_ignored::Path::Seq { parent, index } => field_path(parent).index(*index),
        serde_ignored::Path::Map { parent, key } => field_path(parent).key(key.clone()),
        serde_ignored::Path::Some { parent }
        | serde_ignored::Path::NewtypeStruct { parent }
        | serde_ignored::Path::NewtypeVariant { parent } => field_path(parent),
    }
}

/// Deserialises and validates an already merged document.
pub fn from_document(mut document: Node) -> Result<Loaded> {
    resolve_account_networks(&mut document).map_err(merge_diagnostic)?;
    let spec: Spec = deserialize(&document)?;
    let violations = validate::validate(&spec);
    if !violations.is_empty() {
        return Err(Error::Invalid { diagnostics: locate_all(&document, violations) });
    }
    Ok(Loaded { spec, document, files: Vec::new() })
}

fn list_overlays(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|entry| entry.ok())
                .filter(|entry| entry.path().is_dir())
                .filter_map(|entry| entry.file_name().into_string().ok())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

fn merge_folder(dir: &Path, document: &mut Option<Node>, files: &mut Vec<PathBuf>) -> Result<()> {
    let entries = fs::read_dir(dir).map_err(|source| Error::Read { path: dir.to_owned(), source })?;
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| path.is_file() && matches!(path.extension().and_then(|e| e.to_str()), Some("yaml" | "yml")))
        .collect();
    paths.sort();
    for path in paths {
        let shown = path.strip_prefix(".").unwrap_or(&path);
        let file: Arc<str> = Arc::from(shown.display().to_string());
        let text = read_text(&path, &file)?;
        for node in parse(&file, &text)? {
            accumulate(document, node)?;
        }
        files.push(path);
    }
    Ok(())
}

fn parse(file: &Arc<str>, text: &str) -> Result<Vec<Node>> {
    let nodes = yaml::parse_documents(file, text).map_err(|error| {
        Error::invalid(Diagnostic {
            span: Some(error.span),
            path: error.path,
            message: format!("invalid YAML: {}", error.message),
        })
    })?;
    let mut documents = Vec::with_capacity(nodes.len());
    for node in nodes {
        match node.value {
            Value::Null => {}
            Value::Map(_) => documents.push(node),
            _ => {
                return Err(Error::invalid(Diagnostic {
                    span: Some(node.span.clone()),
                    path: FieldPath::root(),
                    message: format!("a spec document must be a mapping, found {}", node.type_name()),
                }));
            }
        }
    }
    Ok(documents)
}

fn accumulate(document: &mut Option<Node>, node: Node) -> Result<()> {
    let merged = match document.take() {
        None => merge::settle(node),
        Some(base) => merge::merge(base, node),
    };
    *document = Some(merged.map_err(merge_diagnostic)?);
    Ok(())
}

fn merge_diagnostic(error: MergeError) -> Error {
    Error::invalid(Diagnostic { span: Some(error.span), path: error.path, message: error.message })
}

fn resolve_account_networks(document: &mut Node) -> Result<(), MergeError> {
    let defaults = document.as_map().and_then(|entries| entries.iter().find(|entry| entry.key == "network").cloned());
    let Value::Map(entries) = &mut document.value else { return Ok(()) };
    let Some(accounts) = entries.iter_mut().find(|entry| entry.key == "accounts") else { return Ok(()) };
    let Value::Seq(items) = &mut accounts.value.value else { return Ok(()) };
    for (index, item) in items.iter_mut().enumerate() {
        let Value::Map(fields) = &mut item.value else { continue };
        let own = fields.iter().position(|entry| entry.key == "network");
        match (&defaults, own) {
            (Some(defaults), Some(at)) => {
                let own = fields.remove(at);
                let value = merge::merge(defaults.value.clone(), own.value).map_err(|mut error| {
                    error.path = crate::path!("accounts", index, "network", error.path);
                    error
                })?;
                fields.insert(at, Entry { value, ..own });
            }
            (Some(defaults), None) => fields.push(defaults.clone()),
            (None, _) => {}
        }
    }
    Ok(())
}

fn deserialize(document: &Node) -> Result<Spec> {
    deserialize_as(document)
}

fn deserialize_as<T: serde::de::DeserializeOwned>(document: &Node) -> Result<T> {
    let json = document.to_json();
    serde_path_to_error::deserialize::<_, T>(json).map_err(|error| {
        let mut path = FieldPath::root();
        for segment in error.path().iter() {
            path = match segment {
                serde_path_to_error::Segment::Seq { index } => path.index(*index),
                serde_path_to_error::Segment::Map { key } => path.key(key.clone()),
                serde_path_to_error::Segment::Enum { variant } => path.key(variant.clone()),
                serde_path_to_error::Segment::Unknown => path,
            };
        }
        let message = error.inner().to_string();
        Error::invalid(describe_serde_error(document, path, message))
    })
}

/// Turns serde's message into one that names the field and suggests the nearest spelling.
fn describe_serde_error(document: &Node, path: FieldPath, message: String) -> Diagnostic {
    if let Some(rest) = message.strip_prefix("unknown field `") {
        let field = rest.split('`').next().unwrap_or_default().to_owned();
        let expected = quoted_names(rest.split_once("expected").map_or("", |(_, list)| list));
        let parent = parent_path(&path);
        let span = document.locate_key(&parent, &field).unwrap_or_else(|| document.locate(&path));
        let mut text = format!("unknown field `{field}`");
        if let Some(best) = suggestion(&field, &expected) {
            text.push_str(&format!(" (did you mean {best}?)"));
        }
        if !expected.is_empty() {
            text.push_str(&format!("; expected one of: {}", expected.join(", ")));
        }
        return Diagnostic { span: Some(span), path, message: text };
    }
    if let Some(rest) = message.strip_prefix("unknown variant `") {
        let variant = rest.split('`').next().unwrap_or_default().to_owned();
        let expected = quoted_names(rest.split_once("expected").map_or("", |(_, list)| list));
        // The value itself is never repeated: it may be a secret pasted into the wrong field.
        let mut text = "unknown value".to_owned();
        if let Some(best) = suggestion(&variant, &expected) {
            text.push_str(&format!(" (did you mean {best}?)"));
        }
        text.push_str(&format!("; expected one of: {}", expected.join(", ")));
        return Diagnostic { span: Some(document.locate(&path)), path, message: text };
    }
    if let Some(rest) = message.strip_prefix("missing field `") {
        let field = rest.split('`').next().unwrap_or_default().to_owned();
        let span = document.locate(&path);
        return Diagnostic { span: Some(span), path: path.key(field), message: "required field is missing".into() };
    }
    Diagnostic { span: Some(document.locate(&path)), path, message: plain_types(&without_value(&message)) }
}

/// Serde's `invalid type: string "...", expected ...` and `invalid value: ...` quote the value
/// they rejected; a secret pasted into the wrong field would be echoed. Keep what kind of value
/// it was and what was expected, drop the value.
fn without_value(message: &str) -> String {
    for (prefix, found) in [("invalid type: ", true), ("invalid value: ", false)] {
        let Some(rest) = message.strip_prefix(prefix) else { continue };
        // The expected part is ours (type names), the unexpected part may hold anything,
        // ", expected " included: split at the last occurrence.
        let Some((unexpected, expected)) = rest.rsplit_once(", expected ") else {
            return prefix.trim_end_matches([' ', ':']).to_owned();
        };
        let kind = match unexpected.split([' ', '`', '"']).next().unwrap_or_default() {
            "boolean" => "a boolean",
            "integer" => "an integer",
            "floating" => "a decimal number",
            "string" => "a string",
            "character" => "a character",
            "sequence" => "a list",
            "map" => "a mapping",
            "unit" | "Option" => "null",
            _ => "another kind of value",
        };
        return if found {
            format!("invalid type: expected {expected}, found {kind}")
        } else {
            format!("invalid value ({kind}): expected {expected}")
        };
    }
    message.to_owned()
}

/// Serde names Rust types in "expected" clauses; users think in YAML values.
fn plain_types(message: &str) -> String {
    [
        ("expected u8", "expected a whole number from 0 to 255"),
        ("expected u16", "expected a whole number from 0 to 65535"),
        ("expected a boolean", "expected true or false"),
        ("expected a sequence", "expected a list"),
        ("expected struct ", "expected a mapping: "),
    ]
    .iter()
    .fold(message.to_owned(), |text, (from, to)| text.replace(from, to))
}

fn parent_path(path: &FieldPath) -> FieldPath {
    let segments = path.segments();
    let mut parent = FieldPath::root();
    for segment in &segments[..segments.len().saturating_sub(1)] {
        parent = match segment {
            crate::source::Segment::Key(key) => parent.key(key.clone()),
            crate::source::Segment::Index(index) => parent.index(*index),
        };
    }
    parent
}

fn quoted_names(text: &str) -> Vec<String> {
    text.split('`').skip(1).step_by(2).map(str::to_owned).collect()
}

/// The closest candidates to `given` when they are close enough to be a likely typo, phrased
/// for a message: `` `per-az` `` or `` one of `eu-west-1`, `eu-west-2` ``.
pub fn suggestion(given: &str, candidates: &[impl AsRef<str>]) -> Option<String> {
    let scored: Vec<(f64, &str)> = candidates
        .iter()
        .map(|candidate| (strsim::jaro_winkler(given, candidate.as_ref()), candidate.as_ref()))
        .filter(|(score, _)| *score > 0.8)
        .collect();
    let best = scored.iter().map(|(score, _)| *score).fold(f64::NAN, f64::max);
    let closest: Vec<String> =
        scored.iter().filter(|(score, _)| (best - score).abs() < 1e-9).map(|(_, name)| format!("`{name}`")).collect();
    match closest.len() {
        0 => None,
        1 => closest.into_iter().next(),
        _ => Some(format!("one of {}", closest.join(", "))),
    }
}

fn locate_all(document: &Node, violations: Vec<Violation>) -> Vec<Diagnostic> {
    let mut diagnostics: Vec<Diagnostic> = violations
        .into_iter()
        .map(|violation| Diagnostic {
            span: Some(document.locate(&violation.path)),
            path: violation.path,
            message: violation.message,
        })
        .collect();
    diagnostics.sort_by(|a, b| (&a.span, &a.path).cmp(&(&b.span, &b.path)));
    // A default shared by every account breaks the same way in each: report it once.
    diagnostics.dedup_by(|later, earlier| later.span == earlier.span && later.message == earlier.message);
    diagnostics
}

#[cfg(test)]
mod tests {
    use super::*;

    const CANARY: &str = "sk-canary-7f3a9c";

    fn error_text(spec: &str) -> String {
        match load_str("spec.yaml", spec) {
            Err(error) => error.to_string(),
            Ok(_) => panic!("the spec should be rejected"),
        }
    }

    #[test]
    fn a_cluster_version_eks_no_longer_runs_is_rejected_and_the_oldest_it_runs_is_accepted() {
        let spec = |version: String| {
            format!(
                "organization: {{ name: acme, region: eu-west-1, stack: s }}\n\
                 network: {{ azs: 2, tiers: [{{ name: app, size: 24, slot: 0 }}] }}\n\
                 accounts: [{{ name: dev, id: \"111111111111\", environment: dev, vpc_cidr: 10.1.0.0/16 }}]\n\
                 clusters: [{{ name: c, account: dev, version: \"{version}\" }}]\n"
            )
        };
        let oldest = crate::validate::EKS_OLDEST_MINOR;
        assert!(load_str("spec.yaml", &spec(format!("1.{oldest}"))).is_ok());
        let text = error_text(&spec(format!("1.{}", oldest - 1)));
        assert!(text.contains("clusters[0].version: below the oldest version EKS still runs"), "{text}");
    }

    fn spec_with(network: &str) -> String {
        format!(
            "organization: {{ name: acme, region: eu-west-1, stack: s }}\n\
             network: {{ azs: 2, tiers: [{{ name: app, size: 24, slot: 0 }}], {network} }}\n\
             accounts: [{{ name: dev, id: \"111111111111\", environment: dev, vpc_cidr: 10.1.0.0/16 }}]\n"
        )
    }

    #[test]
    fn a_value_of_the_wrong_type_is_named_by_field_and_type_never_quoted() {
        let text = error_text(&spec_with(&format!("az_reserve: \"{CANARY}\"")));
        assert!(!text.contains(CANARY), "{text}");
        assert!(text.contains("network.az_reserve"), "{text}");
        assert!(text.contains("found a string"), "{text}");
        let text = error_text(&spec_with(&format!("nat: {{ mode: \"{CANARY}\" }}")));
        assert!(!text.contains(CANARY), "{text}");
        assert!(text.contains("network.nat"), "{text}");
    }

    /// Every field whose type is a checked newtype (names, regions, role names, CIDRs, account
    /// ids, endpoint services, durations, quantities, percentages, versions, images): a value
    /// pasted into the wrong field is named by its field and never echoed.
    #[test]
    fn a_rejected_value_of_any_checked_field_is_never_quoted() {
        // Not valid as any of these types, whatever the field.
        const BAD: &str = "Sk_canary-7f3a9c!";
        let organization = |org: &str| {
            format!(
                "organization: {{ {org} }}\n\
                 network: {{ azs: 2, tiers: [{{ name: app, size: 24, slot: 0 }}] }}\n\
                 accounts: [{{ name: dev, id: \"111111111111\", environment: dev, vpc_cidr: 10.1.0.0/16 }}]\n"
            )
        };
        let base = "name: acme, region: eu-west-1, stack: s";
        let app = |field: &str| {
            format!(
                "organization: {{ {base} }}\n\
                 network: {{ azs: 2, tiers: [{{ name: app, size: 24, slot: 0 }}] }}\n\
                 accounts: [{{ name: dev, id: \"111111111111\", environment: dev, vpc_cidr: 10.1.0.0/16 }}]\n\
                 clusters: [{{ name: c, account: dev, version: \"1.33\", node_groups: [{{ name: g, instance_types: [t3.large], min: 1, max: 2, desired: 1 }}] }}]\n\
                 apps: [{{ name: a, cluster: c, image: \"r/a:1\", port: 8080, {field} }}]\n"
            )
        };
        let cases = [
            ("organization.name", organization(&format!("name: \"{BAD}\", region: eu-west-1, stack: s"))),
            ("organization.region", organization(&format!("name: acme, region: \"{BAD}\", stack: s"))),
            ("organization.assume_role", organization(&format!("{base}, assume_role: \"{BAD} !\""))),
            ("accounts[0].vpc_cidr", spec_with("").replace("10.1.0.0/16", BAD)),
            ("accounts[0].id", spec_with("").replace("\"111111111111\"", &format!("\"{BAD}\""))),
            ("network.endpoints", spec_with(&format!("endpoints: {{ subnet_tier: app, interface: [\"{BAD}!\"] }}"))),
            ("resources.requests.cpu", app(&format!("resources: {{ requests: {{ cpu: \"{BAD}\" }} }}"))),
            ("disruption", app(&format!("disruption: {{ max_unavailable: \"{BAD}\" }}"))),
            ("database_failure_for", app(&format!("monitoring: {{ alerts: {{ database_failure_for: \"{BAD}\" }} }}"))),
            ("clusters[0].version", app("").replace("\"1.33\"", &format!("\"{BAD}\""))),
            ("apps[0].image", app("").replace("r/a:1", BAD)),
        ];
        for (field, spec) in cases {
            let text = match load_str("spec.yaml", &spec) {
                Err(error) => error.to_string(),
                Ok(_) => panic!("{field}: the spec should be rejected"),
            };
            assert!(!text.contains("canary"), "{field}: the value is echoed:\n{text}");
            assert!(text.contains(field), "{field}: the field is not named:\n{text}");
        }
    }

    #[test]
    fn an_unknown_enum_value_is_not_repeated_but_the_nearest_one_is_suggested() {
        let text = error_text(&spec_with(&format!("nat: \"{CANARY}\"")));
        assert!(!text.contains(CANARY), "{text}");
        assert!(text.contains("network.nat: unknown value; expected one of: per-az, single, none"), "{text}");
        let text = error_text(&spec_with("nat: peraz"));
        assert!(text.contains("unknown value (did you mean `per-az`?)"), "{text}");
    }

    #[test]
    fn serde_messages_lose_the_value_whatever_it_holds() {
        assert_eq!(
            without_value("invalid type: string \"a, expected b\", expected u16"),
            "invalid type: expected u16, found a string"
        );
        assert_eq!(
            without_value("invalid value: integer `70000`, expected u16"),
            "invalid value (an integer): expected u16"
        );
        assert_eq!(without_value("missing thing"), "missing thing");
    }

    #[test]
    fn a_file_that_is_not_utf8_text_is_invalid_input_at_its_first_bad_byte() {
        let dir = std::env::temp_dir().join(format!("enclave-read-text-{}", std::process::id()));
        fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("spec.yaml");
        let file: Arc<str> = Arc::from("spec.yaml");
        fs::write(&path, b"organization:\n  name: caf\xc3\xa9\xff\n").expect("write");
        let Err(Error::Invalid { diagnostics }) = read_text(&path, &file) else { panic!("not UTF-8 is invalid") };
        assert_eq!(
            diagnostics[0].to_string(),
            "spec.yaml:2:13: (root): not UTF-8: an invalid byte at byte offset 27; specs and manifests are UTF-8 text"
        );
        fs::write(&path, b"a: 1\n\x00\x01").expect("write");
        let Err(Error::Invalid { diagnostics }) = read_text(&path, &file) else { panic!("binary is invalid") };
        assert!(
            diagnostics[0].to_string().starts_with("spec.yaml:2:1: (root): a binary file: a NUL byte at byte offset 5")
        );
        fs::remove_dir_all(&dir).expect("cleanup");
    }
}
