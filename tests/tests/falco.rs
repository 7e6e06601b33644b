//! The Falco rules file of every reference cluster, judged without a Falco engine (none is
//! installable here): it passes Falco's own rules JSON schema (`fixtures/schemas`, from Falco
//! 0.44.1), and a parser of Falco's condition language checks what the schema cannot: every
//! condition parses, every field a condition, exception or output uses is a field Falco knows
//! (libsinsp 0.25.4 and the container plugin, `falco-fields.txt`), filter-only fields stay out of
//! outputs, every macro a condition names is defined (before it, for macros), every list an `in`
//! names is defined, and everything defined is used. The judge is first shown broken files.

use std::collections::{BTreeMap, BTreeSet};

use enclave_tests::{load, workspace};
use serde_json::Value;

/// Falco's fields: name -> (argument: none | optional | required, flags).
struct Fields {
    plain: BTreeMap<String, String>,
    bracket: BTreeSet<String>,
    dotted: BTreeSet<String>,
    params: BTreeSet<String>,
    event_types: BTreeSet<String>,
}

impl Fields {
    fn load() -> Fields {
        let text = std::fs::read_to_string(workspace().join("fixtures/schemas/falco-fields.txt")).expect("field list");
        let mut fields = Fields {
            plain: BTreeMap::new(),
            bracket: BTreeSet::new(),
            dotted: BTreeSet::new(),
            params: BTreeSet::new(),
            event_types: BTreeSet::new(),
        };
        for line in text.lines() {
            if let Some(params) = line.strip_prefix("#! evt_params:") {
                fields.params.extend(params.split_whitespace().map(str::to_owned));
                continue;
            }
            if let Some(types) = line.strip_prefix("#! evt_types:") {
                fields.event_types.extend(types.split_whitespace().map(str::to_owned));
                continue;
            }
            if line.starts_with('#') || line.trim().is_empty() {
                continue;
            }
            let columns: Vec<&str> = line.split('\t').collect();
            let (name, argument, flags) = (columns[0], columns[1], columns.get(3).copied().unwrap_or("-"));
            if let Some(stem) = name.strip_suffix('[') {
                fields.bracket.insert(stem.to_owned());
                if argument == "optional" {
                    fields.plain.insert(stem.to_owned(), flags.to_owned());
                }
            } else if let Some(stem) = name.strip_suffix('.') {
                fields.dotted.insert(stem.to_owned());
            } else {
                fields.plain.insert(name.to_owned(), flags.to_owned());
            }
        }
        assert!(
            fields.plain.len() > 200 && !fields.params.is_empty() && fields.event_types.contains("execve"),
            "the field list is read"
        );
        fields
    }

    /// Whether `field` (with its `[argument]`, if any) is known; `Some(flags)` when it is.
    fn flags(&self, field: &str) -> Option<String> {
        if let Some((stem, _)) = field.split_once('[') {
            return self.bracket.contains(stem).then(String::new);
        }
        if let Some(flags) = self.plain.get(field) {
            return Some(flags.clone());
        }
        for stem in &self.dotted {
            if let Some(rest) = field.strip_prefix(&format!("{stem}.")) {
                let known = stem != "evt.arg" && stem != "evt.rawarg" || self.params.contains(rest);
                return known.then(String::new);
            }
        }
        None
    }
}

#[derive(Clone, Debug, PartialEq)]
enum Token {
    Word(String),
    Quoted,
    Open,
    Close,
    Comma,
    Op(String),
}

fn tokenize(text: &str) -> Result<Vec<Token>, String> {
    let chars: Vec<char> = text.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            ' ' | '\t' | '\n' => i += 1,
            '(' => {
                tokens.push(Token::Open);
                i += 1;
            }
            ')' => {
                tokens.push(Token::Close);
                i += 1;
            }
            ',' => {
                tokens.push(Token::Comma);
                i += 1;
            }
            '"' | '\'' => {
                let end = chars[i + 1..].iter().position(|&d| d == c).ok_or("an unterminated quote")?;
                tokens.push(Token::Quoted);
                i += end + 2;
            }
            '=' | '!' | '<' | '>' => {
                let mut op = c.to_string();
                if chars.get(i + 1) == Some(&'=') {
                    op.push('=');
                    i += 1;
                }
                if op == "!" {
                    return Err("a lone `!`".to_owned());
                }
                tokens.push(Token::Op(op));
                i += 1;
            }
            _ => {
                let start = i;
                let mut depth = 0;
                while i < chars.len() {
                    let d = chars[i];
                    if d == '[' {
                        depth += 1;
                    } else if d == ']' {
                        depth -= 1;
                    } else if depth == 0 && (d.is_whitespace() || "(),=!<>\"'".contains(d)) {
                        break;
                    }
                    i += 1;
                }
                tokens.push(Token::Word(chars[start..i].iter().collect()));
            }
        }
    }
    Ok(tokens)
}

const WORD_OPERATORS: &[&str] =
    &["contains", "icontains", "bcontains", "startswith", "bstartswith", "endswith", "glob", "iglob", "regex"];
const LIST_OPERATORS: &[&str] = &["in", "intersects", "pmatch"];

/// What a condition refers to.
#[derive(Debug, Default)]
struct Uses {
    fields: Vec<String>,
    macros: Vec<String>,
    lists: Vec<String>,
    /// Literal values compared with `evt.type`.
    event_types: Vec<String>,
}

/// A recursive-descent parser for Falco's condition language (the operators enclave renders and
/// the usual others).
struct Parser<'a> {
    tokens: &'a [Token],
    at: usize,
    lists: &'a BTreeSet<String>,
    uses: Uses,
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at)
    }

    fn word(&self) -> Option<&str> {
        match self.peek() {
            Some(Token::Word(word)) => Some(word),
            _ => None,
        }
    }

    fn expr(&mut self) -> Result<(), String> {
        self.term()?;
        while matches!(self.word(), Some("and" | "or")) {
            self.at += 1;
            self.term()?;
        }
        Ok(())
    }

    fn term(&mut self) -> Result<(), String> {
        match self.peek().cloned() {
            Some(Token::Word(word)) if word == "not" => {
                self.at += 1;
                self.term()
            }
            Some(Token::Open) => {
                self.at += 1;
                self.expr()?;
                (self.peek() == Some(&Token::Close)).then_some(()).ok_or("an unclosed `(`".to_owned())?;
                self.at += 1;
                Ok(())
            }
            Some(Token::Word(word)) => {
                self.at += 1;
                self.check(word)
            }
            other => Err(format!("expected a check, found {other:?}")),
        }
    }

    fn value(&mut self) -> Result<(), String> {
        match self.peek() {
            Some(Token::Word(_) | Token::Quoted) => {
                self.at += 1;
                Ok(())
            }
            other => Err(format!("expected a value, found {other:?}")),
        }
    }

    fn check(&mut self, word: String) -> Result<(), String> {
        let next = self.peek().cloned();
        let is_operator = match &next {
            Some(Token::Op(_)) => true,
            Some(Token::Word(w)) => {
                WORD_OPERATORS.contains(&w.as_str()) || LIST_OPERATORS.contains(&w.as_str()) || w == "exists"
            }
            _ => false,
        };
        if !is_operator {
            if word.contains('.') || word.contains('[') {
                return Err(format!("field `{word}` without an operator"));
            }
            self.uses.macros.push(word);
            return Ok(());
        }
        let event_type = word == "evt.type";
        self.uses.fields.push(word);
        self.at += 1;
        if event_type
            && let Some(Token::Word(value)) = self.peek().cloned()
            && !matches!(next, Some(Token::Word(ref op)) if LIST_OPERATORS.contains(&op.as_str()))
        {
            self.uses.event_types.push(value);
        }
        match next {
            Some(Token::Word(op)) if op == "exists" => Ok(()),
            Some(Token::Word(op)) if LIST_OPERATORS.contains(&op.as_str()) => {
                (self.peek() == Some(&Token::Open)).then_some(()).ok_or(format!("`{op}` needs a `(`"))?;
                self.at += 1;
                loop {
                    if let Some(Token::Word(item)) = self.peek().cloned() {
                        if event_type && !self.lists.contains(&item) {
                            self.uses.event_types.push(item.clone());
                        }
                        // Falco substitutes list names as text: a bare `enclave_` word must be a list.
                        if self.lists.contains(&item) || item.starts_with("enclave_") {
                            self.uses.lists.push(item);
                        }
                    }
                    self.value()?;
                    match self.peek() {
                        Some(Token::Comma) => self.at += 1,
                        Some(Token::Close) => {
                            self.at += 1;
                            return Ok(());
                        }
                        other => return Err(format!("expected `,` or `)`, found {other:?}")),
                    }
                }
            }
            _ => self.value(),
        }
    }
}

/// Every problem the judge finds in a rules file, as text.
fn judge(file: &Value, fields: &Fields, schema: &jsonschema::Validator) -> Vec<String> {
    let mut problems: Vec<String> =
        schema.iter_errors(file).map(|e| format!("schema: {e} at {}", e.instance_path())).collect();
    let Some(items) = file.as_array() else { return problems };
    let lists: BTreeSet<String> = items.iter().filter_map(|i| i["list"].as_str()).map(str::to_owned).collect();
    let mut macros_so_far = BTreeSet::new();
    let all_macros: BTreeSet<String> = items.iter().filter_map(|i| i["macro"].as_str()).map(str::to_owned).collect();
    let mut used = BTreeSet::new();
    let known = |field: &str, problems: &mut Vec<String>, at: &str| {
        if fields.flags(field).is_none() {
            problems.push(format!("{at}: unknown field `{field}`"));
        }
    };
    for item in items {
        let (name, condition, is_macro) = if let Some(name) = item["macro"].as_str() {
            (name, item["condition"].as_str(), true)
        } else if let Some(name) = item["rule"].as_str() {
            for key in ["desc", "condition", "output", "priority"] {
                if item[key].as_str().is_none_or(str::is_empty) {
                    problems.push(format!("rule `{name}`: no `{key}`"));
                }
            }
            (name, item["condition"].as_str(), false)
        } else {
            if let Some(name) = item["list"].as_str()
                && !item["items"].is_array()
            {
                problems.push(format!("list `{name}`: no `items`"));
            }
            continue;
        };
        let Some(condition) = condition else {
            problems.push(format!("`{name}`: no condition"));
            continue;
        };
        let tokens = match tokenize(condition) {
            Ok(tokens) => tokens,
            Err(error) => {
                problems.push(format!("`{name}`: {error}"));
                continue;
            }
        };
        let mut parser = Parser { tokens: &tokens, at: 0, lists: &lists, uses: Uses::default() };
        if let Err(error) = parser.expr().and_then(|()| {
            (parser.at == tokens.len()).then_some(()).ok_or(format!("trailing {:?}", &tokens[parser.at..]))
        }) {
            problems.push(format!("`{name}`: {error}"));
        }
        for field in &parser.uses.fields {
            known(field, &mut problems, name);
        }
        for event in &parser.uses.event_types {
            if !fields.event_types.contains(event) {
                problems.push(format!("`{name}`: unknown event type `{event}`"));
            }
        }
        for called in &parser.uses.macros {
            let defined = if is_macro { macros_so_far.contains(called) } else { all_macros.contains(called) };
            if !defined {
                problems.push(format!(
                    "`{name}`: macro `{called}` is not defined{}",
                    if is_macro { " before it" } else { "" }
                ));
            }
            used.insert(called.clone());
        }
        for list in &parser.uses.lists {
            if !lists.contains(list) {
                problems.push(format!("`{name}`: list `{list}` is not defined"));
            }
            used.insert(list.clone());
        }
        if is_macro {
            macros_so_far.insert(name.to_owned());
        }
        if let Some(output) = item["output"].as_str() {
            for piece in output.split('%').skip(1) {
                let field: String =
                    piece.chars().take_while(|c| c.is_ascii_alphanumeric() || "._[]/-".contains(*c)).collect();
                match fields.flags(&field) {
                    None => problems.push(format!("`{name}`: output field `{field}` unknown")),
                    Some(flags) if flags.contains("EPF_FILTER_ONLY") => {
                        problems.push(format!("`{name}`: output field `{field}` is filter-only"));
                    }
                    Some(_) => {}
                }
            }
        }
        for exception in item["exceptions"].as_array().into_iter().flatten() {
            let at = format!("`{name}` exception {}", exception["name"]);
            let exception_fields: Vec<&str> =
                exception["fields"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
            for field in &exception_fields {
                known(field, &mut problems, &at);
            }
            let comps: Vec<&str> =
                exception["comps"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
            if comps.len() != exception_fields.len()
                || !comps.iter().all(|c| {
                    ["=", "!=", "<", "<=", ">", ">="].contains(c)
                        || WORD_OPERATORS.contains(c)
                        || LIST_OPERATORS.contains(c)
                })
            {
                problems.push(format!("{at}: one known operator per field"));
            }
            for tuple in exception["values"].as_array().into_iter().flatten() {
                if tuple.as_array().map(Vec::len) != Some(exception_fields.len()) {
                    problems.push(format!("{at}: a value tuple does not match its fields"));
                }
            }
        }
    }
    for defined in lists.iter().chain(&all_macros) {
        if !used.contains(defined) {
            problems.push(format!("`{defined}` is defined but never used"));
        }
    }
    problems
}

fn schema() -> jsonschema::Validator {
    let text = std::fs::read_to_string(workspace().join("fixtures/schemas/falco-rules.schema.json")).expect("schema");
    let schema: Value = serde_json::from_str(&text).expect("schema JSON");
    assert_eq!(schema["$schema"], "http://json-schema.org/draft-06/schema#");
    jsonschema::draft6::new(&schema).expect("a valid draft-06 schema")
}

fn rules_files() -> Vec<(String, String)> {
    let mut files = Vec::new();
    for overlays in [&[][..], &["client-a"], &["client-b"], &["staging"]] {
        let (loaded, _) = load(&workspace().join("fixtures/reference"), overlays).expect("valid reference spec");
        for cluster in enclave::render(&loaded.spec).expect("renders") {
            let file = cluster
                .artifacts
                .iter()
                .find(|artifact| artifact.path == "falco/enclave-rules.yaml")
                .unwrap_or_else(|| panic!("{overlays:?} {}: no Falco rules", cluster.cluster));
            files.push((format!("{overlays:?} {}", cluster.cluster), file.content.clone()));
        }
    }
    files
}

/// A change that breaks a rules file.
type Change = Box<dyn Fn(&mut Vec<Value>)>;

#[test]
fn the_judge_rejects_broken_rules_files() {
    let fields = Fields::load();
    let schema = schema();
    let (_, good) = rules_files().into_iter().next().expect("a file");
    let good: Value = serde_saphyr::from_str(&good).expect("YAML");
    assert_eq!(judge(&good, &fields, &schema), Vec::<String>::new());
    let broken = |change: &dyn Fn(&mut Vec<Value>)| {
        let mut items = good.as_array().cloned().expect("items");
        change(&mut items);
        judge(&Value::Array(items), &fields, &schema)
    };
    let rule_at = |items: &mut Vec<Value>| items.iter().position(|i| i.get("rule").is_some()).expect("a rule");
    let cases: Vec<(&str, Change)> = vec![
        (
            "schema: ",
            Box::new(move |items| {
                let at = rule_at(items);
                items[at]["priority"] = "BOGUS".into();
            }),
        ),
        (
            "unknown field `proc.nmae`",
            Box::new(move |items| {
                let at = rule_at(items);
                let condition = items[at]["condition"].as_str().unwrap_or_default().to_owned();
                items[at]["condition"] = format!("{condition} and proc.nmae = x").into();
            }),
        ),
        (
            "macro `enclave_undefined` is not defined",
            Box::new(move |items| {
                let at = rule_at(items);
                let condition = items[at]["condition"].as_str().unwrap_or_default().to_owned();
                items[at]["condition"] = format!("{condition} and enclave_undefined").into();
            }),
        ),
        (
            "list `enclave_missing_list` is not defined",
            Box::new(move |items| {
                let at = rule_at(items);
                let condition = items[at]["condition"].as_str().unwrap_or_default().to_owned();
                items[at]["condition"] = format!("{condition} and proc.name in (enclave_missing_list)").into();
            }),
        ),
        (
            "is filter-only",
            Box::new(move |items| {
                let at = rule_at(items);
                items[at]["output"] = "x %fd.snet".into();
            }),
        ),
        (
            "no `output`",
            Box::new(move |items| {
                let at = rule_at(items);
                if let Some(map) = items[at].as_object_mut() {
                    map.remove("output");
                }
            }),
        ),
        (
            "an unclosed `(`",
            Box::new(move |items| {
                let at = rule_at(items);
                items[at]["condition"] = "(enclave_app_container".into();
            }),
        ),
        (
            "unknown event type `exceve`",
            Box::new(|items| {
                let at = items.iter().position(|i| i["macro"] == "enclave_spawned_process").expect("macro");
                items[at]["condition"] = "evt.type in (exceve, execveat)".into();
            }),
        ),
        ("never used", Box::new(|items| items.push(serde_json::json!({"list": "enclave_spare", "items": []})))),
    ];
    for (expected, change) in cases {
        let problems = broken(&*change);
        assert!(problems.iter().any(|p| p.contains(expected)), "expected `{expected}` in {problems:?}");
    }
}

#[test]
fn every_reference_rules_file_passes_the_schema_and_names_only_what_falco_knows() {
    let fields = Fields::load();
    let schema = schema();
    for (at, text) in rules_files() {
        let file: Value = serde_saphyr::from_str(&text).expect("YAML");
        assert_eq!(judge(&file, &fields, &schema), Vec::<String>::new(), "{at}");
        let rules: Vec<&str> = file.as_array().into_iter().flatten().filter_map(|i| i["rule"].as_str()).collect();
        assert_eq!(rules.len(), 7, "{at}: {rules:?}");
    }
}

#[test]
fn rules_are_built_from_the_spec() {
    let (loaded, _) = load(&workspace().join("fixtures/reference"), &[]).expect("valid reference spec");
    let spec = &loaded.spec;
    let prod = spec.clusters.iter().find(|c| c.name.as_str() == "platform-prod").expect("prod");
    let inputs = enclave_access::runtime::inputs(spec, prod);
    assert_eq!(inputs.namespaces, BTreeSet::from(["billing".to_owned(), "orders".to_owned()]));
    assert!(
        inputs.images.iter().all(|image| !image.contains('@') && !image.ends_with(":1.4.2")),
        "{:?}",
        inputs.images
    );
    assert_eq!(inputs.egress, vec![("orders".to_owned(), vec!["203.0.113.0/24".to_owned()])]);
    assert!(inputs.mesh);
    let items = serde_json::to_value(enclave_access::runtime::rules(&inputs)).expect("json");
    let egress = items
        .as_array()
        .into_iter()
        .flatten()
        .find(|i| i["rule"].as_str().is_some_and(|r| r.starts_with("Outbound")))
        .expect("egress rule");
    assert_eq!(egress["exceptions"][0]["values"], serde_json::json!([["orders", "(203.0.113.0/24)"]]));
}
