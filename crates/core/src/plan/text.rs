//! Human-readable plan text, modelled on `terraform plan`.

use std::fmt::Write as _;

use anstyle::{AnsiColor, Style};

use super::value::{self, Line, Sign};
use super::{Action, Change, Plan, Reason};

/// How to render a plan as text.
#[derive(Clone, Debug, Default)]
pub struct TextOptions {
    /// Emit ANSI colours.
    pub color: bool,
    /// Account headings, in display order: name and a label such as the account id.
    pub accounts: Vec<(String, String)>,
    /// Show each change's attributes, not only its address and reasons.
    pub attributes: bool,
}

fn paint(style: Style, text: &str, color: bool) -> String {
    if color { format!("{}{text}{}", style.render(), style.render_reset()) } else { text.to_owned() }
}

fn action_style(action: Action) -> Style {
    let color = match action {
        Action::Create => AnsiColor::Green,
        Action::Update => AnsiColor::Yellow,
        Action::Replace => AnsiColor::Magenta,
        Action::Delete => AnsiColor::Red,
    };
    Style::new().fg_color(Some(color.into()))
}

/// Renders `plan` grouped by account with a summary line.
pub fn render_text(plan: &Plan, options: &TextOptions) -> String {
    let mut out = String::new();
    let bold = Style::new().bold();
    let mut accounts: Vec<(String, String)> = options.accounts.clone();
    for change in &plan.changes {
        if !accounts.iter().any(|(name, _)| name == change.address.account()) {
            accounts.push((change.address.account().to_owned(), String::new()));
        }
    }
    for (name, label) in &accounts {
        let changes: Vec<&Change> = plan.for_account(name).collect();
        let heading = if label.is_empty() { format!("account {name}") } else { format!("account {name} ({label})") };
        let _ = writeln!(out, "{}", paint(bold, &heading, options.color));
        if changes.is_empty() {
            let _ = writeln!(out, "  no changes\n");
            continue;
        }
        for change in changes {
            render_change(&mut out, change, options);
        }
        out.push('\n');
    }
    let summary = plan.summary();
    let line = if plan.is_empty() {
        format!("No changes. {} resources match the spec.", summary.unchanged)
    } else {
        format!("Plan: {summary}.")
    };
    let _ = writeln!(out, "{}", paint(bold, &line, options.color));
    out
}

fn render_change(out: &mut String, change: &Change, options: &TextOptions) {
    let style = action_style(change.action);
    let sign = paint(style, change.action.symbol(), options.color);
    let why: Vec<String> = change
        .reasons
        .iter()
        .filter(|reason| !matches!(reason, Reason::Differs { .. }))
        .map(ToString::to_string)
        .collect();
    let suffix = if why.is_empty() || change.action == Action::Create {
        String::new()
    } else {
        format!("  ({})", why.join(", "))
    };
    let _ = writeln!(out, "  {sign} {}{suffix}", change.address);
    for reason in &change.reasons {
        if let Reason::Differs { attribute, before, after, forces_replacement } = reason {
            let mut lines = value::changed(attribute, before, after);
            if *forces_replacement && let Some(first) = lines.first_mut() {
                first.text.push_str(&paint(action_style(Action::Replace), "  # forces replacement", options.color));
            }
            write_lines(out, &lines, options.color);
        }
    }
    if options.attributes
        && change.action == Action::Create
        && let Some(after) = &change.after
    {
        let width = after.keys().map(String::len).max().unwrap_or(0);
        for (name, value) in after {
            write_lines(out, &value::whole(&format!("{name:<width$}"), value, Sign::Add), options.color);
        }
    }
}

/// Writes attribute lines below a change: six spaces, four more per level, then the mark.
pub(super) fn write_lines(out: &mut String, lines: &[Line], color: bool) {
    for line in lines {
        let indent = "    ".repeat(line.depth);
        let mark = match line.sign {
            Sign::Same => " ".to_owned(),
            Sign::Add => paint(action_style(Action::Create), "+", color),
            Sign::Remove => paint(action_style(Action::Delete), "-", color),
            Sign::Change => paint(action_style(Action::Update), "~", color),
        };
        let _ = writeln!(out, "      {indent}{mark} {}", line.text);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{Resource, diff};

    #[test]
    fn text_groups_by_account_and_ends_with_a_summary() {
        let vpc = Resource::new("dev/net/vpc/main".parse().expect("valid")).attr("cidr_block", "10.1.0.0/16");
        let plan = diff(&[vpc], &[]).expect("no cycle");
        let text = render_text(
            &plan,
            &TextOptions { color: false, accounts: vec![("dev".into(), "111111111111".into())], attributes: true },
        );
        assert_eq!(
            text,
            "account dev (111111111111)\n  + dev/net/vpc/main\n      + cidr_block = \"10.1.0.0/16\"\n\nPlan: 1 to create, 0 to update, 0 to replace, 0 to delete.\n"
        );
    }
}
