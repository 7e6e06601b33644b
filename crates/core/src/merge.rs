//! Layer merging: how an overlay changes what it inherits.
//!
//! The rules, chosen to match what kustomize users expect of a strategic merge:
//!
//! | base       | overlay                    | result                                           |
//! |------------|----------------------------|--------------------------------------------------|
//! | mapping    | mapping                    | merged key by key, recursively                   |
//! | any        | `key: null`                | the key is deleted                               |
//! | mapping    | mapping with `$patch: replace` | the overlay's mapping replaces the base's     |
//! | named list | named list                 | items merged by `name`; new names appended       |
//! | named list | item `{name: x, $patch: delete}` | item `x` is deleted                        |
//! | list       | list starting with `{$patch: replace}` | the rest of the overlay's list replaces it |
//! | list       | list (not named)           | the overlay's list replaces it                   |
//! | scalar     | anything                   | the overlay's value replaces it                  |
//!
//! A *named list* is a list whose items are all mappings with a string `name`. Deleting
//! something that is not there is an error (it is almost always a typo). Positions follow the
//! value: a merged value reports the file and line of the layer that last wrote it.

use crate::source::{FieldPath, Span};
use crate::yaml::{Entry, Node, Value};

/// The directive key.
pub const PATCH_KEY: &str = "$patch";

/// Why two layers could not be merged.
#[derive(Clone, Debug, PartialEq)]
pub struct MergeError {
    /// Where the offending directive was written.
    pub span: Span,
    /// The field it applies to.
    pub path: FieldPath,
    /// What went wrong.
    pub message: String,
}

/// Merges `overlay` onto `base` following the rules in the module docs.
pub fn merge(base: Node, overlay: Node) -> Result<Node, MergeError> {
    merge_at(base, overlay, &FieldPath::root())
}

/// Checks that a freshly written layer (nothing underneath) holds no directive that needs a
/// base, and strips the harmless ones.
pub fn settle(node: Node) -> Result<Node, MergeError> {
    settle_at(node, &FieldPath::root())
}

fn directive(node: &Node) -> Option<(&str, &Span)> {
    let entry = node.as_map()?.iter().find(|entry| entry.key == PATCH_KEY)?;
    match &entry.value.value {
        Value::String(verb) => Some((verb.as_str(), &entry.key_span)),
        _ => Some(("", &entry.key_span)),
    }
}

fn without_directive(node: Node) -> Node {
    match node.value {
        Value::Map(entries) => Node {
            value: Value::Map(entries.into_iter().filter(|entry| entry.key != PATCH_KEY).collect()),
            span: node.span,
        },
        _ => node,
    }
}

fn check_verb(node: &Node, path: &FieldPath, allowed: &[&str]) -> Result<Option<String>, MergeError> {
    match directive(node) {
        None => Ok(None),
        Some((verb, _)) if allowed.contains(&verb) => Ok(Some(verb.to_owned())),
        Some((verb, span)) => Err(MergeError {
            span: span.clone(),
            path: path.key(PATCH_KEY),
            message: format!("unknown directive `{PATCH_KEY}: {verb}` here; expected one of: {}", allowed.join(", ")),
        }),
    }
}

fn settle_at(node: Node, path: &FieldPath) -> Result<Node, MergeError> {
    match node.value {
        Value::Map(_) => {
            match check_verb(&node, path, &["replace", "delete"])? {
                Some(verb) if verb == "delete" => {
                    let span = directive(&node).map(|(_, span)| span.clone()).unwrap_or(node.span.clone());
                    return Err(MergeError {
                        span,
                        path: path.clone(),
                        message: "`$patch: delete` has nothing to delete: no earlier layer defines this item".into(),
                    });
                }
                _ => {}
            }
            let node = without_directive(node);
            let Value::Map(entries) = node.value else { unreachable!("checked above") };
            let mut settled = Vec::with_capacity(entries.len());
            for entry in entries {
                let child = path.key(&entry.key);
                settled.push(Entry { value: settle_at(entry.value, &child)?, ..entry });
            }
            Ok(Node { value: Value::Map(settled), span: node.span })
        }
        Value::Seq(items) => {
            let items = strip_list_replace(items);
            let mut settled = Vec::with_capacity(items.len());
            for (index, item) in items.into_iter().enumerate() {
                settled.push(settle_at(item, &path.index(index))?);
            }
            Ok(Node { value: Value::Seq(settled), span: node.span })
        }
        _ => Ok(node),
    }
}

fn is_list_replace(item: &Node) -> bool {
    item.as_map().is_some_and(|entries| {
        entries.len() == 1 && entries[0].key == PATCH_KEY && entries[0].value.value == Value::String("replace".into())
    })
}

fn strip_list_replace(items: Vec<Node>) -> Vec<Node> {
    items.into_iter().filter(|item| !is_list_replace(item)).collect()
}

fn item_name(node: &Node) -> Option<&str> {
    match &node.get("name")?.value {
        Value::String(name) => Some(name),
        _ => None,
    }
}

fn is_named_list(items: &[Node]) -> bool {
    !items.is_empty() && items.iter().all(|item| item_name(item).is_some())
}

fn merge_at(base: Node, overlay: Node, path: &FieldPath) -> Result<Node, MergeError> {
    match (base.value, overlay.value) {
        (Value::Map(base_entries), Value::Map(overlay_entries)) => {
            let overlay = Node { value: Value::Map(overlay_entries), span: overlay.span };
            if check_verb(&overlay, path, &["replace"])?.is_some() {
                return settle_at(without_directive(overlay), path);
            }
            let Value::Map(overlay_entries) = overlay.value else { unreachable!("built above") };
            let mut merged = base_entries;
            for entry in overlay_entries {
                let child = path.key(&entry.key);
                let existing = merged.iter().position(|candidate| candidate.key == entry.key);
                match (existing, &entry.value.value) {
                    (Some(at), Value::Null) => {
                        merged.remove(at);
                    }
                    (None, Value::Null) => {
                        return Err(MergeError {
                            span: entry.key_span,
                            path: child,
                            message: "`null` deletes an inherited key, but no earlier layer sets this one".into(),
                        });
                    }
                    (Some(at), _) => {
                        let previous = merged.remove(at);
                        let value = merge_at(previous.value, entry.value, &child)?;
                        merged.insert(at, Entry { key: entry.key, key_span: entry.key_span, value });
                    }
                    (None, _) => {
                        let value = settle_at(entry.value, &child)?;
                        merged.push(Entry { key: entry.key, key_span: entry.key_span, value });
                    }
                }
            }
            Ok(Node { value: Value::Map(merged), span: base.span })
        }
        (Value::Seq(base_items), Value::Seq(overlay_items)) => {
            if overlay_items.first().is_some_and(is_list_replace) {
                return settle_at(Node { value: Value::Seq(overlay_items), span: overlay.span }, path);
            }
            if is_named_list(&base_items) && is_named_list(&overlay_items) {
                merge_named(base_items, overlay_items, base.span, path)
            } else {
                settle_at(Node { value: Value::Seq(overlay_items), span: overlay.span }, path)
            }
        }
        (_, overlay_value) => settle_at(Node { value: overlay_value, span: overlay.span }, path),
    }
}

fn merge_named(base: Vec<Node>, overlay: Vec<Node>, span: Span, path: &FieldPath) -> Result<Node, MergeError> {
    let mut merged = base;
    for item in overlay {
        let name = item_name(&item).unwrap_or_default().to_owned();
        let existing = merged.iter().position(|candidate| item_name(candidate) == Some(name.as_str()));
        let item_path = path.index(existing.unwrap_or(merged.len()));
        let verb = check_verb(&item, &item_path, &["delete", "replace"])?;
        match (existing, verb.as_deref()) {
            (Some(at), Some("delete")) => {
                merged.remove(at);
            }
            (None, Some("delete")) => {
                let span = directive(&item).map(|(_, span)| span.clone()).unwrap_or(item.span.clone());
                return Err(MergeError {
                    span,
                    path: item_path,
                    message: format!("`$patch: delete` names `{name}`, which no earlier layer defines"),
                });
            }
            (Some(at), Some(_)) => {
                merged[at] = settle_at(without_directive(item), &item_path)?;
            }
            (Some(at), None) => {
                let previous = merged.remove(at);
                merged.insert(at, merge_at(previous, item, &item_path)?);
            }
            (None, _) => merged.push(settle_at(without_directive(item), &item_path)?),
        }
    }
    Ok(Node { value: Value::Seq(merged), span })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::yaml::parse_documents;

    fn doc(name: &str, text: &str) -> Node {
        let file: Arc<str> = Arc::from(name);
        parse_documents(&file, text).expect("valid yaml").remove(0)
    }

    fn merged(base: &str, overlay: &str) -> serde_json::Value {
        merge(doc("base.yaml", base), doc("overlay.yaml", overlay)).expect("merges").to_json()
    }

    #[test]
    fn mappings_merge_deeply_and_scalars_replace() {
        let json = merged("a: {b: 1, c: 2}\nd: x\n", "a: {c: 3}\nd: y\n");
        assert_eq!(json, serde_json::json!({"a": {"b": 1, "c": 3}, "d": "y"}));
    }

    #[test]
    fn null_deletes_an_inherited_key() {
        assert_eq!(merged("a: 1\nb: 2\n", "a: null\n"), serde_json::json!({"b": 2}));
    }

    #[test]
    fn named_lists_merge_by_name_and_append_new_items() {
        let json = merged("xs: [{name: a, v: 1}, {name: b, v: 2}]\n", "xs: [{name: b, v: 3}, {name: c, v: 4}]\n");
        assert_eq!(
            json["xs"],
            serde_json::json!([{"name": "a", "v": 1}, {"name": "b", "v": 3}, {"name": "c", "v": 4}])
        );
    }

    #[test]
    fn patch_delete_removes_a_named_item() {
        let json = merged("xs: [{name: a}, {name: b}]\n", "xs: [{name: a, $patch: delete}]\n");
        assert_eq!(json["xs"], serde_json::json!([{"name": "b"}]));
    }

    #[test]
    fn patch_replace_replaces_lists_and_maps() {
        let json = merged(
            "xs: [{name: a}, {name: b}]\nm: {a: 1}\n",
            "xs: [{$patch: replace}, {name: z}]\nm: {$patch: replace, b: 2}\n",
        );
        assert_eq!(json["xs"], serde_json::json!([{"name": "z"}]));
        assert_eq!(json["m"], serde_json::json!({"b": 2}));
    }

    #[test]
    fn plain_lists_replace() {
        assert_eq!(merged("xs: [1, 2]\n", "xs: [3]\n")["xs"], serde_json::json!([3]));
    }

    #[test]
    fn deleting_what_is_not_there_is_an_error_at_the_directive() {
        let error =
            merge(doc("base.yaml", "xs: [{name: a}]\n"), doc("overlay.yaml", "xs:\n  - name: q\n    $patch: delete\n"))
                .unwrap_err();
        assert_eq!(&*error.span.file, "overlay.yaml");
        assert_eq!(error.span.line, 3);
        assert!(error.message.contains("`q`"), "{}", error.message);
    }

    #[test]
    fn merged_values_keep_the_position_of_the_layer_that_wrote_them() {
        let node =
            merge(doc("base.yaml", "a:\n  b: 1\n  c: 2\n"), doc("overlay.yaml", "a:\n  c: 3\n")).expect("merges");
        assert_eq!(&*node.locate(&crate::path!("a", "c")).file, "overlay.yaml");
        assert_eq!(&*node.locate(&crate::path!("a", "b")).file, "base.yaml");
    }
}
