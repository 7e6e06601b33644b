//! Attribute values as plan text: scalars on one line, JSON documents (policies, which AWS
//! takes as strings), maps and lists expanded one entry a line, and changes between two
//! values as a structural diff with only the changed parts marked, like `terraform plan`.
//!
//! A string that holds a JSON object or array is shown decoded, inside `jsonencode(...)`, so a
//! policy that changes one account id shows that one line, not two blobs of JSON. Unchanged
//! entries of a changed map are folded into `# (N unchanged attributes hidden)`; unchanged list
//! items are folded too, except the scalar neighbours of a change, which say where it is. List
//! items are matched by a longest common subsequence, so an item removed from the middle of a
//! list of subnets is one `-` line, not a change of every item after it.

use serde_json::{Map, Value};

/// How a line of a value is marked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Sign {
    /// Unchanged context.
    Same,
    /// Only in the desired value.
    Add,
    /// Only in the observed value.
    Remove,
    /// In both, with changes inside (or a scalar `before -> after`).
    Change,
}

/// One line of a rendered value, indented `depth` levels below the attribute.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Line {
    /// The mark.
    pub sign: Sign,
    /// Nesting level below the attribute's line.
    pub depth: usize,
    /// The text, without indentation or mark.
    pub text: String,
}

fn line(sign: Sign, depth: usize, text: impl Into<String>) -> Line {
    Line { sign, depth, text: text.into() }
}

/// A string holding a JSON object or array, decoded; anything else as it is.
fn decoded(value: &Value) -> (Value, bool) {
    if let Value::String(text) = value {
        let trimmed = text.trim_start();
        if (trimmed.starts_with('{') || trimmed.starts_with('['))
            && let Ok(document @ (Value::Object(_) | Value::Array(_))) = serde_json::from_str::<Value>(text)
        {
            return (document, true);
        }
    }
    (value.clone(), false)
}

fn scalar(value: &Value) -> String {
    value.to_string()
}

fn is_container(value: &Value) -> bool {
    matches!(value, Value::Object(_) | Value::Array(_))
}

/// A map key as HCL shows it: bare when it is an identifier, quoted otherwise.
fn key(name: &str) -> String {
    let bare = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if bare { name.to_owned() } else { Value::String(name.to_owned()).to_string() }
}

/// `value` expanded, its lines marked `sign` (closing brackets unmarked): the first line starts with `head` (`name = ` or
/// nothing) and the last ends with `tail` (`,` in a list).
fn expand(out: &mut Vec<Line>, sign: Sign, depth: usize, head: &str, value: &Value, tail: &str) {
    match value {
        Value::Object(map) if !map.is_empty() => {
            out.push(line(sign, depth, format!("{head}{{")));
            for (name, item) in map {
                expand(out, sign, depth + 1, &format!("{} = ", key(name)), item, "");
            }
            out.push(line(Sign::Same, depth, format!("}}{tail}")));
        }
        Value::Array(items) if !items.is_empty() => {
            out.push(line(sign, depth, format!("{head}[")));
            for item in items {
                expand(out, sign, depth + 1, "", item, ",");
            }
            out.push(line(Sign::Same, depth, format!("]{tail}")));
        }
        Value::Object(_) => out.push(line(sign, depth, format!("{head}{{}}{tail}"))),
        Value::Array(_) => out.push(line(sign, depth, format!("{head}[]{tail}"))),
        other => out.push(line(sign, depth, format!("{head}{}{tail}", scalar(other)))),
    }
}

/// The lines of an attribute as created (or shown whole): `name = value`, expanded.
pub(crate) fn whole(name: &str, value: &Value, sign: Sign) -> Vec<Line> {
    let (value, document) = decoded(value);
    let mut out = Vec::new();
    if document {
        out.push(line(sign, 0, format!("{name} = jsonencode(")));
        expand(&mut out, sign, 1, "", &value, "");
        out.push(line(Sign::Same, 0, ")"));
    } else {
        expand(&mut out, sign, 0, &format!("{name} = "), &value, "");
    }
    out
}

/// The lines of an attribute that changed from `before` (observed) to `after` (desired).
pub(crate) fn changed(name: &str, before: &Value, after: &Value) -> Vec<Line> {
    if before.is_null() && !after.is_null() {
        return whole(name, after, Sign::Add);
    }
    if after.is_null() && !before.is_null() {
        let mut lines = whole(name, before, Sign::Remove);
        if let Some(last) = lines.last_mut() {
            last.text.push_str(" -> null");
        }
        return lines;
    }
    let (old, old_document) = decoded(before);
    let (new, new_document) = decoded(after);
    let mut out = Vec::new();
    if old == new || old_document != new_document {
        // The same document written differently (spacing, key order), or a document that became
        // a string or the other way round: the values as they are.
        out.push(line(Sign::Change, 0, format!("{name} = {} -> {}", scalar(before), scalar(after))));
    } else if old_document {
        out.push(line(Sign::Change, 0, format!("{name} = jsonencode(")));
        nested(&mut out, 1, "", &old, &new, "");
        out.push(line(Sign::Same, 0, ")"));
    } else {
        nested(&mut out, 0, &format!("{name} = "), &old, &new, "");
    }
    out
}

/// A change of one value at `depth`: containers of the same shape diffed inside, anything
/// else as `before -> after` (expanded when a side is a container).
fn nested(out: &mut Vec<Line>, depth: usize, head: &str, before: &Value, after: &Value, tail: &str) {
    match (before, after) {
        (Value::Object(old), Value::Object(new)) if !old.is_empty() && !new.is_empty() => {
            out.push(line(Sign::Change, depth, format!("{head}{{")));
            object(out, depth + 1, old, new);
            out.push(line(Sign::Same, depth, format!("}}{tail}")));
        }
        (Value::Array(old), Value::Array(new)) if !old.is_empty() && !new.is_empty() => {
            out.push(line(Sign::Change, depth, format!("{head}[")));
            array(out, depth + 1, old, new);
            out.push(line(Sign::Same, depth, format!("]{tail}")));
        }
        _ if !is_container(before) && !is_container(after) => {
            out.push(line(Sign::Change, depth, format!("{head}{} -> {}{tail}", scalar(before), scalar(after))));
        }
        _ => {
            expand(out, Sign::Remove, depth, head, before, tail);
            expand(out, Sign::Add, depth, head, after, tail);
        }
    }
}

fn hidden(out: &mut Vec<Line>, depth: usize, count: usize, what: &str) {
    if count > 0 {
        let plural = if count == 1 { "" } else { "s" };
        out.push(line(Sign::Same, depth, format!("# ({count} unchanged {what}{plural} hidden)")));
    }
}

fn object(out: &mut Vec<Line>, depth: usize, old: &Map<String, Value>, new: &Map<String, Value>) {
    let mut unchanged = 0;
    for (name, after) in new {
        let head = format!("{} = ", key(name));
        match old.get(name) {
            Some(before) if before == after => unchanged += 1,
            Some(before) => nested(out, depth, &head, before, after, ""),
            None => expand(out, Sign::Add, depth, &head, after, ""),
        }
    }
    for (name, before) in old.iter().filter(|(name, _)| !new.contains_key(*name)) {
        expand(out, Sign::Remove, depth, &format!("{} = ", key(name)), before, "");
        if let Some(last) = out.last_mut() {
            last.text.push_str(" -> null");
        }
    }
    hidden(out, depth, unchanged, "attribute");
}

/// What happens to one list position.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Edit {
    Keep(usize),
    Remove(usize),
    Add(usize),
}

/// Lists longer than this (items of both sides multiplied, after their common ends) are shown
/// as all removed and all added: the subsequence table would be too large.
const LARGEST_TABLE: usize = 1 << 20;

/// The edit script from `old` to `new` by a longest common subsequence of equal items (the
/// common start and end first, so a long list with one change costs little).
fn edits(old: &[Value], new: &[Value]) -> Vec<Edit> {
    let start = old.iter().zip(new).take_while(|(a, b)| a == b).count();
    let end = old[start..].iter().rev().zip(new[start..].iter().rev()).take_while(|(a, b)| a == b).count();
    let mut script: Vec<Edit> = (0..start).map(Edit::Keep).collect();
    let (middle_old, middle_new) = (&old[start..old.len() - end], &new[start..new.len() - end]);
    let middle = if middle_old.len().saturating_mul(middle_new.len()) > LARGEST_TABLE {
        (0..middle_old.len()).map(Edit::Remove).chain((0..middle_new.len()).map(Edit::Add)).collect()
    } else {
        subsequence(middle_old, middle_new)
    };
    script.extend(middle.into_iter().map(|edit| match edit {
        Edit::Keep(i) => Edit::Keep(start + i),
        Edit::Remove(i) => Edit::Remove(start + i),
        Edit::Add(j) => Edit::Add(start + j),
    }));
    script.extend((old.len() - end..old.len()).map(Edit::Keep));
    script
}

/// The edit script by the classic table of common subsequence lengths.
fn subsequence(old: &[Value], new: &[Value]) -> Vec<Edit> {
    let (n, m) = (old.len(), new.len());
    // lengths[i][j]: the LCS of old[i..] and new[j..].
    let mut lengths = vec![vec![0_usize; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            lengths[i][j] =
                if old[i] == new[j] { lengths[i + 1][j + 1] + 1 } else { lengths[i + 1][j].max(lengths[i][j + 1]) };
        }
    }
    let (mut i, mut j) = (0, 0);
    let mut script = Vec::with_capacity(n.max(m));
    while i < n || j < m {
        if i < n && j < m && old[i] == new[j] {
            script.push(Edit::Keep(i));
            i += 1;
            j += 1;
        } else if j < m && (i == n || lengths[i][j + 1] >= lengths[i + 1][j]) {
            script.push(Edit::Add(j));
            j += 1;
        } else {
            script.push(Edit::Remove(i));
            i += 1;
        }
    }
    script
}

fn array(out: &mut Vec<Line>, depth: usize, old: &[Value], new: &[Value]) {
    let script = edits(old, new);
    let changed_at = |index: usize| script.get(index).is_some_and(|edit| !matches!(edit, Edit::Keep(_)));
    let mut index = 0;
    while index < script.len() {
        match script[index] {
            Edit::Keep(_) => {
                // A run of unchanged items: scalar neighbours of a change are shown, the rest
                // folded.
                let start = index;
                while index < script.len() && matches!(script[index], Edit::Keep(_)) {
                    index += 1;
                }
                let run = &script[start..index];
                let show = |position: usize, item: &Value| {
                    !is_container(item)
                        && ((position == start && start > 0 && changed_at(start - 1))
                            || (position + 1 == index && changed_at(index)))
                };
                let mut folded = 0;
                for (offset, edit) in run.iter().enumerate() {
                    let Edit::Keep(i) = *edit else { continue };
                    if show(start + offset, &old[i]) {
                        hidden(out, depth, folded, "element");
                        folded = 0;
                        out.push(line(Sign::Same, depth, format!("{},", scalar(&old[i]))));
                    } else {
                        folded += 1;
                    }
                }
                hidden(out, depth, folded, "element");
            }
            Edit::Remove(_) | Edit::Add(_) => {
                let start = index;
                while index < script.len() && !matches!(script[index], Edit::Keep(_)) {
                    index += 1;
                }
                let removed: Vec<usize> = script[start..index]
                    .iter()
                    .filter_map(|e| if let Edit::Remove(i) = e { Some(*i) } else { None })
                    .collect();
                let added: Vec<usize> = script[start..index]
                    .iter()
                    .filter_map(|e| if let Edit::Add(j) = e { Some(*j) } else { None })
                    .collect();
                // Containers replaced by containers of the same shape, in order, are changes in
                // place (a policy statement that gained an action); the rest are removes and adds.
                let paired = removed.iter().zip(&added).take_while(|(i, j)| same_shape(&old[**i], &new[**j])).count();
                for (i, j) in removed.iter().zip(&added).take(paired) {
                    nested(out, depth, "", &old[*i], &new[*j], ",");
                }
                for i in &removed[paired..] {
                    expand(out, Sign::Remove, depth, "", &old[*i], ",");
                }
                for j in &added[paired..] {
                    expand(out, Sign::Add, depth, "", &new[*j], ",");
                }
            }
        }
    }
}

fn same_shape(a: &Value, b: &Value) -> bool {
    matches!((a, b), (Value::Object(x), Value::Object(y)) if !x.is_empty() && !y.is_empty())
        || matches!((a, b), (Value::Array(x), Value::Array(y)) if !x.is_empty() && !y.is_empty())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// The lines as the plan shows them, without the six spaces of a change's attributes.
    fn text(lines: &[Line]) -> String {
        let mut out = String::new();
        crate::plan::text::write_lines(&mut out, lines, false);
        out.lines().map(|l| format!("{}\n", &l[6..])).collect()
    }

    #[test]
    fn a_policy_that_loses_an_account_shows_that_one_line() {
        let before = json!({"Version": "2012-10-17", "Statement": [{"Sid": "A", "Effect": "Allow", "Action": "*",
            "Condition": {"StringEquals": {"aws:PrincipalAccount": ["111111111111", "222222222222", "333333333333"]}}},
            {"Sid": "B", "Effect": "Deny"}]})
        .to_string();
        let after = before.replace(",\"333333333333\"", "");
        let lines = changed("policy", &Value::String(before), &Value::String(after));
        assert_eq!(
            text(&lines),
            r#"~ policy = jsonencode(
    ~ {
        ~ Statement = [
            ~ {
                ~ Condition = {
                    ~ StringEquals = {
                        ~ "aws:PrincipalAccount" = [
                              # (1 unchanged element hidden)
                              "222222222222",
                            - "333333333333",
                          ]
                      }
                  }
                  # (3 unchanged attributes hidden)
              },
              # (1 unchanged element hidden)
          ]
          # (1 unchanged attribute hidden)
      }
  )
"#
        );
    }

    #[test]
    fn tags_show_added_removed_and_changed_keys_only() {
        let before = json!({"Name": "a", "team": "x", "old": "y"});
        let after = json!({"Name": "a", "team": "z", "new": "w"});
        assert_eq!(
            text(&changed("tags", &before, &after)),
            r#"~ tags = {
    ~ team = "x" -> "z"
    + new = "w"
    - old = "y" -> null
      # (1 unchanged attribute hidden)
  }
"#
        );
    }

    #[test]
    fn a_list_item_removed_from_the_middle_is_one_line() {
        let before = json!(["a", "b", "c", "d", "e"]);
        let after = json!(["a", "b", "d", "e"]);
        assert_eq!(
            text(&changed("subnets", &before, &after)),
            r#"~ subnets = [
      # (1 unchanged element hidden)
      "b",
    - "c",
      "d",
      # (1 unchanged element hidden)
  ]
"#
        );
    }

    #[test]
    fn scalars_and_absent_values() {
        assert_eq!(text(&changed("size", &json!(2), &json!(3))), "~ size = 2 -> 3\n");
        assert_eq!(text(&changed("ids", &Value::Null, &json!(["a"]))), "+ ids = [\n    + \"a\",\n  ]\n");
        assert_eq!(text(&changed("ids", &json!([]), &Value::Null)), "- ids = [] -> null\n");
        assert_eq!(
            text(&whole("doc", &json!("{\"a\":1}"), Sign::Same)),
            "  doc = jsonencode(\n      {\n          a = 1\n      }\n  )\n"
        );
        // A string that only looks like JSON stays a string.
        assert_eq!(text(&changed("name", &json!("{x"), &json!("[y"))), "~ name = \"{x\" -> \"[y\"\n");
    }

    #[test]
    fn a_document_written_differently_is_shown_as_it_is() {
        assert_eq!(
            text(&changed("policy", &json!("{\"a\": 1}"), &json!("{\"a\":1}"))),
            "~ policy = \"{\\\"a\\\": 1}\" -> \"{\\\"a\\\":1}\"\n"
        );
        assert_eq!(text(&changed("policy", &json!("{\"a\":1}"), &json!({"a": 1}))).lines().count(), 1);
    }

    #[test]
    fn long_lists_cost_their_change_not_their_length() {
        let old: Vec<Value> = (0..100_000).map(|i| json!(i)).collect();
        let mut new = old.clone();
        new[50_000] = json!("changed");
        let script = edits(&old, &new);
        assert_eq!(script.iter().filter(|e| !matches!(e, Edit::Keep(_))).count(), 2);
        // Past the table's limit: everything in the middle removed and added.
        let other: Vec<Value> = (0..2_000).map(|i| json!(-i - 1)).collect();
        let script = edits(&old[..2_000], &other);
        assert_eq!(script.len(), 4_000);
    }

    #[test]
    fn the_edit_script_keeps_the_longest_common_subsequence() {
        let old = [json!(1), json!(2), json!(3)];
        let new = [json!(2), json!(3), json!(4)];
        assert_eq!(edits(&old, &new), vec![Edit::Remove(0), Edit::Keep(1), Edit::Keep(2), Edit::Add(2)]);
    }
}
