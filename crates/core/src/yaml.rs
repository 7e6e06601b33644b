//! A YAML tree that remembers where every value was written.
//!
//! Built from `saphyr-parser` events. Plain scalars are resolved with the YAML 1.2 core schema
//! (`true`, `null`, `12`, `1.5`; `yes` and `on` stay strings, unlike YAML 1.1). Anchors and
//! aliases are expanded. Duplicate keys in one mapping are an error, as YAML requires.

use std::collections::HashMap;
use std::sync::Arc;

use saphyr_parser::{Event, Parser, ScalarStyle, Span as ParserSpan};

use crate::source::{FieldPath, Segment, Span};

/// A YAML value with the position it was written at.
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    /// The value.
    pub value: Value,
    /// Where the value starts.
    pub span: Span,
}

/// The value of a [`Node`].
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// `null`, `~` or nothing.
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// An integer that fits in 64 bits.
    Int(i64),
    /// A floating-point number.
    Float(f64),
    /// Any other scalar, or a quoted one.
    String(String),
    /// A sequence.
    Seq(Vec<Node>),
    /// A mapping, in source order.
    Map(Vec<Entry>),
}

/// One `key: value` pair of a mapping.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    /// The key, always a string in our documents.
    pub key: String,
    /// Where the key was written.
    pub key_span: Span,
    /// The value.
    pub value: Node,
}

/// A YAML syntax error, with its position.
#[derive(Clone, Debug, PartialEq)]
pub struct SyntaxError {
    /// Where the parser stopped.
    pub span: Span,
    /// The field being read when it stopped.
    pub path: FieldPath,
    /// What it found wrong.
    pub message: String,
}

impl Node {
    /// The mapping entries, if this is a mapping.
    pub fn as_map(&self) -> Option<&[Entry]> {
        match &self.value {
            Value::Map(entries) => Some(entries),
            _ => None,
        }
    }

    /// The value under `key`, if this is a mapping holding it.
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.as_map()?.iter().find(|entry| entry.key == key).map(|entry| &entry.value)
    }

    /// The user-facing name of the value's type, for error messages.
    pub fn type_name(&self) -> &'static str {
        match self.value {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Int(_) => "an integer",
            Value::Float(_) => "a number",
            Value::String(_) => "a string",
            Value::Seq(_) => "a list",
            Value::Map(_) => "a mapping",
        }
    }

    /// The position of the value at `path`, or of the deepest value on the way there.
    ///
    /// A path that ends in a key the mapping holds points at the key itself, which is where a
    /// reader looks for a misspelt or unexpected field.
    pub fn locate(&self, path: &FieldPath) -> Span {
        let mut node = self;
        let mut span = &self.span;
        for segment in path.segments() {
            match (segment, &node.value) {
                (Segment::Key(key), Value::Map(entries)) => match entries.iter().find(|entry| &entry.key == key) {
                    Some(entry) => {
                        span = if matches!(entry.value.value, Value::Map(_) | Value::Seq(_)) {
                            &entry.key_span
                        } else {
                            &entry.value.span
                        };
                        node = &entry.value;
                    }
                    None => return span.clone(),
                },
                (Segment::Index(index), Value::Seq(items)) => match items.get(*index) {
                    Some(item) => {
                        span = &item.span;
                        node = item;
                    }
                    None => return span.clone(),
                },
                _ => return span.clone(),
            }
        }
        span.clone()
    }

    /// The position of `key` inside the mapping at `path`, when there is one.
    pub fn locate_key(&self, path: &FieldPath, key: &str) -> Option<Span> {
        let mut node = self;
        for segment in path.segments() {
            node = match (segment, &node.value) {
                (Segment::Key(name), Value::Map(entries)) => &entries.iter().find(|entry| &entry.key == name)?.value,
                (Segment::Index(index), Value::Seq(items)) => items.get(*index)?,
                _ => return None,
            };
        }
        node.as_map()?.iter().find(|entry| entry.key == key).map(|entry| entry.key_span.clone())
    }

    /// Converts the tree to JSON for typed deserialisation; positions are dropped, which is
    /// why callers keep the tree to map error paths back to spans.
    pub fn to_json(&self) -> serde_json::Value {
        match &self.value {
            Value::Null => serde_json::Value::Null,
            Value::Bool(value) => serde_json::Value::Bool(*value),
            Value::Int(value) => serde_json::Value::from(*value),
            Value::Float(value) => {
                serde_json::Number::from_f64(*value).map_or(serde_json::Value::Null, serde_json::Value::Number)
            }
            Value::String(value) => serde_json::Value::String(value.clone()),
            Value::Seq(items) => serde_json::Value::Array(items.iter().map(Node::to_json).collect()),
            Value::Map(entries) => serde_json::Value::Object(
                entries.iter().map(|entry| (entry.key.clone(), entry.value.to_json())).collect(),
            ),
        }
    }
}

/// Parses every document of `text`; `file` is the name errors and spans carry.
pub fn parse_documents(file: &Arc<str>, text: &str) -> Result<Vec<Node>, SyntaxError> {
    parse(file, text, None)
}

/// Parses every document of `text` as Kubernetes' own YAML reader and PyYAML read it, for tools
/// that judge files others wrote the way their consumers will:
/// - a duplicate key is tolerated, the last one wins (in the first one's place), and each comes
///   back as a warning with its position;
/// - YAML 1.1 booleans: `yes`, `no`, `on` and `off` (in any of their three casings) are
///   booleans;
/// - merge keys: `<<: *anchor` (or a list of anchors) copies the keys the mapping lacks.
pub fn parse_documents_lenient(file: &Arc<str>, text: &str) -> Result<(Vec<Node>, Vec<SyntaxError>), SyntaxError> {
    let mut duplicates = Vec::new();
    let documents = parse(file, text, Some(&mut duplicates))?;
    Ok((documents, duplicates))
}

/// Deepest nesting of sequences and mappings accepted: deeper trees would overflow the stack of
/// the recursive code that walks them.
const MAX_DEPTH: usize = 256;

fn parse(file: &Arc<str>, text: &str, duplicates: Option<&mut Vec<SyntaxError>>) -> Result<Vec<Node>, SyntaxError> {
    let mut builder = Builder {
        alias_nodes: 0,
        file: file.clone(),
        stack: Vec::new(),
        anchors: HashMap::new(),
        documents: Vec::new(),
        duplicates,
    };
    let mut parser = Parser::new_from_str(text);
    while let Some(next) = parser.next_event() {
        let (event, span) = next.map_err(|error| SyntaxError {
            span: builder.span_at(error.marker().line(), error.marker().col()),
            path: builder.path(),
            message: error.info().to_owned(),
        })?;
        builder.push(event, span)?;
    }
    Ok(builder.documents)
}

enum Frame {
    Seq { anchor: usize, items: Vec<Node>, span: Span },
    Map { anchor: usize, entries: Vec<Entry>, pending_key: Option<(String, Span)>, span: Span },
}

/// Most nodes alias expansion may add to one file: a guard against "billion laughs" documents.
const MAX_ALIAS_NODES: usize = 100_000;

fn node_count(node: &Node) -> usize {
    1 + match &node.value {
        Value::Seq(items) => items.iter().map(node_count).sum(),
        Value::Map(entries) => entries.iter().map(|e| node_count(&e.value)).sum(),
        _ => 0,
    }
}

struct Builder<'w> {
    /// Where duplicate keys go when they are tolerated; `None` makes them errors. Tolerating
    /// them is the Kubernetes dialect, which also has YAML 1.1 booleans and merge keys.
    duplicates: Option<&'w mut Vec<SyntaxError>>,
    alias_nodes: usize,
    file: Arc<str>,
    stack: Vec<Frame>,
    anchors: HashMap<usize, Node>,
    documents: Vec<Node>,
}

impl Builder<'_> {
    fn span_at(&self, line: usize, column_from_zero: usize) -> Span {
        Span::new(
            self.file.clone(),
            u32::try_from(line).unwrap_or(u32::MAX),
            u32::try_from(column_from_zero + 1).unwrap_or(u32::MAX),
        )
    }

    /// The path of the value being built, from the open frames.
    fn path(&self) -> FieldPath {
        let mut path = FieldPath::root();
        for frame in &self.stack {
            path = match frame {
                Frame::Seq { items, .. } => path.index(items.len()),
                Frame::Map { pending_key: Some((key, _)), .. } => path.key(key.clone()),
                Frame::Map { .. } => path,
            };
        }
        path
    }

    fn span(&self, span: ParserSpan) -> Span {
        self.span_at(span.start.line(), span.start.col())
    }

    fn push(&mut self, event: Event<'_>, parser_span: ParserSpan) -> Result<(), SyntaxError> {
        let span = self.span(parser_span);
        match event {
            Event::Scalar(text, style, anchor, tag) => {
                let forced_string = tag.as_ref().is_some_and(|tag| tag.suffix == "str");
                let value = if style == ScalarStyle::Plain && !forced_string {
                    match (self.duplicates.is_some(), text.as_ref()) {
                        (true, "yes" | "Yes" | "YES" | "on" | "On" | "ON") => Value::Bool(true),
                        (true, "no" | "No" | "NO" | "off" | "Off" | "OFF") => Value::Bool(false),
                        _ => resolve_plain(&text),
                    }
                } else {
                    Value::String(text.into_owned())
                };
                self.complete(Node { value, span }, anchor)
            }
            Event::SequenceStart(..) | Event::MappingStart(..) if self.stack.len() >= MAX_DEPTH => {
                Err(SyntaxError { span, path: self.path(), message: format!("nested deeper than {MAX_DEPTH} levels") })
            }
            Event::SequenceStart(anchor, _) => {
                self.stack.push(Frame::Seq { anchor, items: Vec::new(), span });
                Ok(())
            }
            Event::MappingStart(anchor, _) => {
                self.stack.push(Frame::Map { anchor, entries: Vec::new(), pending_key: None, span });
                Ok(())
            }
            Event::SequenceEnd => match self.stack.pop() {
                Some(Frame::Seq { anchor, items, span }) => {
                    self.complete(Node { value: Value::Seq(items), span }, anchor)
                }
                _ => Err(SyntaxError { span, path: self.path(), message: "unbalanced sequence end".into() }),
            },
            Event::MappingEnd => match self.stack.pop() {
                Some(Frame::Map { anchor, entries, span, .. }) => {
                    let entries = if self.duplicates.is_some() { merge_keys(entries) } else { entries };
                    self.complete(Node { value: Value::Map(entries), span }, anchor)
                }
                _ => Err(SyntaxError { span, path: self.path(), message: "unbalanced mapping end".into() }),
            },
            Event::Alias(anchor) => {
                let node = self.anchors.get(&anchor).cloned().ok_or_else(|| SyntaxError {
                    span: span.clone(),
                    path: self.path(),
                    message: "alias refers to an unknown anchor".into(),
                })?;
                self.alias_nodes += node_count(&node);
                if self.alias_nodes > MAX_ALIAS_NODES {
                    return Err(SyntaxError {
                        span,
                        path: self.path(),
                        message: format!("aliases expand to more than {MAX_ALIAS_NODES} values"),
                    });
                }
                self.complete(node, 0)
            }
            Event::Nothing | Event::StreamStart | Event::StreamEnd | Event::DocumentStart(_) | Event::DocumentEnd => {
                Ok(())
            }
        }
    }

    fn complete(&mut self, node: Node, anchor: usize) -> Result<(), SyntaxError> {
        if anchor != 0 {
            self.anchors.insert(anchor, node.clone());
        }
        // A key is checked while the frame is only read, so the field path (which allocates)
        // is built for errors alone.
        if let Some(Frame::Map { entries, pending_key: None, .. }) = self.stack.last() {
            let key = match &node.value {
                Value::String(key) => key.clone(),
                Value::Int(key) => key.to_string(),
                Value::Bool(key) => key.to_string(),
                _ => {
                    let message = format!("mapping keys must be strings, found {}", node.type_name());
                    return Err(SyntaxError { span: node.span, path: self.path(), message });
                }
            };
            let duplicate = entries.iter().find(|entry| entry.key == key).map(|first| SyntaxError {
                span: node.span.clone(),
                path: self.path().key(key.clone()),
                message: format!("duplicate key `{key}` (first written at line {})", first.key_span.line),
            });
            if let Some(error) = duplicate {
                match self.duplicates.as_deref_mut() {
                    Some(duplicates) => duplicates.push(error),
                    None => return Err(error),
                }
            }
            if let Some(Frame::Map { pending_key, .. }) = self.stack.last_mut() {
                *pending_key = Some((key, node.span));
            }
            return Ok(());
        }
        // Only the lenient dialect can have let a duplicate key through.
        let lenient = self.duplicates.is_some();
        match self.stack.last_mut() {
            None => self.documents.push(node),
            Some(Frame::Seq { items, .. }) => items.push(node),
            Some(Frame::Map { entries, pending_key, .. }) => {
                if let Some((key, key_span)) = pending_key.take() {
                    match entries.iter_mut().find(|entry| lenient && entry.key == key) {
                        Some(entry) => entry.value = node,
                        None => entries.push(Entry { key, key_span, value: node }),
                    }
                }
            }
        }
        Ok(())
    }
}

/// Applies YAML 1.1 merge keys: each `<<` entry (a mapping, or a list of them) is removed and
/// the keys it holds that the mapping lacks are appended; earlier sources win over later ones.
fn merge_keys(entries: Vec<Entry>) -> Vec<Entry> {
    if !entries.iter().any(|entry| entry.key == "<<") {
        return entries;
    }
    let (merges, mut own): (Vec<Entry>, Vec<Entry>) = entries.into_iter().partition(|entry| entry.key == "<<");
    for merge in merges {
        let sources: Vec<Node> = match merge.value.value {
            Value::Map(_) => vec![merge.value],
            Value::Seq(items) => items,
            _ => continue,
        };
        for source in sources {
            if let Value::Map(inherited) = source.value {
                for entry in inherited {
                    if !own.iter().any(|existing| existing.key == entry.key) {
                        own.push(entry);
                    }
                }
            }
        }
    }
    own
}

/// YAML 1.2 core schema resolution of a plain scalar.
fn resolve_plain(text: &str) -> Value {
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
        "true" | "True" | "TRUE" => return Value::Bool(true),
        "false" | "False" | "FALSE" => return Value::Bool(false),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => return Value::Float(f64::INFINITY),
        "-.inf" | "-.Inf" | "-.INF" => return Value::Float(f64::NEG_INFINITY),
        ".nan" | ".NaN" | ".NAN" => return Value::Float(f64::NAN),
        _ => {}
    }
    if let Some(hex) = text.strip_prefix("0x")
        && let Ok(value) = i64::from_str_radix(hex, 16)
    {
        return Value::Int(value);
    }
    if let Some(octal) = text.strip_prefix("0o")
        && let Ok(value) = i64::from_str_radix(octal, 8)
    {
        return Value::Int(value);
    }
    let digits = text.strip_prefix(['-', '+']).unwrap_or(text);
    if !digits.is_empty()
        && digits.bytes().all(|byte| byte.is_ascii_digit())
        && let Ok(value) = text.parse::<i64>()
    {
        return Value::Int(value);
    }
    if looks_like_float(digits)
        && let Ok(value) = text.parse::<f64>()
    {
        return Value::Float(value);
    }
    Value::String(text.to_owned())
}

fn looks_like_float(text: &str) -> bool {
    let (mantissa, exponent) = match text.find(['e', 'E']) {
        Some(at) => (&text[..at], Some(&text[at + 1..])),
        None => (text, None),
    };
    let mantissa_ok = match mantissa.split_once('.') {
        Some((whole, fraction)) => {
            (!whole.is_empty() || !fraction.is_empty())
                && whole.bytes().all(|b| b.is_ascii_digit())
                && fraction.bytes().all(|b| b.is_ascii_digit())
        }
        None => !mantissa.is_empty() && mantissa.bytes().all(|b| b.is_ascii_digit()),
    };
    let exponent_ok = exponent.is_none_or(|exponent| {
        let digits = exponent.strip_prefix(['-', '+']).unwrap_or(exponent);
        !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
    });
    mantissa_ok && exponent_ok && (mantissa.contains('.') || exponent.is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Node {
        let file: Arc<str> = Arc::from("test.yaml");
        parse_documents(&file, text).expect("valid yaml").remove(0)
    }

    #[test]
    fn plain_scalars_follow_the_yaml_1_2_core_schema() {
        let node = parse("a: yes\nb: true\nc: 012\nd: 1.5\ne: ~\nf: '3'\ng: 0x1f\nh: 1e3\n");
        let json = node.to_json();
        assert_eq!(json["a"], "yes");
        assert_eq!(json["b"], true);
        assert_eq!(json["c"], 12);
        assert_eq!(json["d"], 1.5);
        assert!(json["e"].is_null());
        assert_eq!(json["f"], "3");
        assert_eq!(json["g"], 31);
        assert_eq!(json["h"], 1000.0);
    }

    #[test]
    fn spans_are_one_based_and_point_at_values() {
        let node = parse("organization:\n  name: acme\n");
        let span = node.locate(&crate::path!("organization", "name"));
        assert_eq!((span.line, span.column), (2, 9));
    }

    #[test]
    fn duplicate_keys_are_rejected_with_both_lines() {
        let file: Arc<str> = Arc::from("dup.yaml");
        let error = parse_documents(&file, "a: 1\nb: 2\na: 3\n").unwrap_err();
        assert_eq!(error.span.line, 3);
        assert!(error.message.contains("first written at line 1"), "{}", error.message);
    }

    #[test]
    fn lenient_parsing_keeps_the_last_duplicate_and_reports_it() {
        let file: Arc<str> = Arc::from("dup.yaml");
        let (documents, duplicates) = parse_documents_lenient(&file, "a: 1\nb: 2\na: 3\n").expect("parses");
        assert_eq!(documents[0].get("a").map(|n| &n.value), Some(&Value::Int(3)));
        assert_eq!(documents[0].as_map().map(<[Entry]>::len), Some(2));
        assert_eq!((duplicates.len(), duplicates[0].span.line), (1, 3));
    }

    #[test]
    fn lenient_parsing_reads_yaml_1_1_booleans_and_merge_keys_as_kubernetes_does() {
        let file: Arc<str> = Arc::from("k.yaml");
        let text = "base: &base {a: yes, b: 1}\nc:\n  <<: *base\n  b: 2\n  d: off\n";
        let (documents, _) = parse_documents_lenient(&file, text).expect("parses");
        let c = documents[0].get("c").expect("c");
        let keys: Vec<(&str, &Value)> =
            c.as_map().expect("map").iter().map(|e| (e.key.as_str(), &e.value.value)).collect();
        assert_eq!(keys, [("b", &Value::Int(2)), ("d", &Value::Bool(false)), ("a", &Value::Bool(true))]);
        // The spec's own loader stays YAML 1.2: `yes` is a string there.
        let strict = parse_documents(&file, "a: yes\n").expect("parses");
        assert_eq!(strict[0].get("a").map(|n| &n.value), Some(&Value::String("yes".into())));
    }

    #[test]
    fn nesting_is_bounded() {
        let file: Arc<str> = Arc::from("deep.yaml");
        let error = parse_documents(&file, &"- ".repeat(10_000)).unwrap_err();
        assert!(error.message.contains("nested deeper than"), "{}", error.message);
    }

    #[test]
    fn alias_bombs_are_refused() {
        let file: Arc<str> = Arc::from("bomb.yaml");
        let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for level in 1..8 {
            let previous = format!("*a{}", level - 1);
            text.push_str(&format!("a{level}: &a{level} [{}]\n", vec![previous; 10].join(", ")));
        }
        let error = parse_documents(&file, &text).unwrap_err();
        assert!(error.message.contains("aliases expand to more than"), "{}", error.message);
    }

    #[test]
    fn aliases_expand_to_their_anchor() {
        let node = parse("base: &b {x: 1}\ncopy: *b\n");
        assert_eq!(node.to_json()["copy"]["x"], 1);
    }
}
