//! The image's Dockerfile keeps the promises the platform relies on (hadolint, run by
//! `cargo xtask test`, judges the rest): a build stage and a distroless final stage with no shell,
//! a numeric non-root user (so Kubernetes can enforce `runAsNonRoot`), the binary as an exec-form
//! entrypoint listening on all interfaces, and a build context without build outputs or history.

use std::path::Path;

fn read(relative: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The instructions (keyword, arguments) of a Dockerfile, continuation lines joined.
fn instructions(text: &str) -> Vec<(String, String)> {
    let mut joined = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        match line.strip_suffix('\\') {
            Some(head) => current.push_str(head),
            None => {
                current.push_str(line);
                joined.push(std::mem::take(&mut current));
            }
        }
    }
    joined
        .into_iter()
        .map(|line| {
            let (keyword, rest) = line.split_once(char::is_whitespace).unwrap_or((&line, ""));
            (keyword.to_ascii_uppercase(), rest.trim().to_owned())
        })
        .collect()
}

#[test]
fn the_final_stage_is_distroless_non_root_and_runs_only_the_binary() {
    let steps = instructions(&read("Dockerfile"));
    let stages: Vec<&String> = steps.iter().filter(|(k, _)| k == "FROM").map(|(_, a)| a).collect();
    assert_eq!(stages.len(), 2, "a build stage and a final stage: {stages:?}");
    assert!(stages[0].starts_with("rust:1.95.0-") && stages[0].ends_with(" AS build"), "{}", stages[0]);
    assert!(stages[1].starts_with("gcr.io/distroless/cc-debian12:"), "no shell in the final stage: {}", stages[1]);
    let last = steps.iter().rposition(|(k, _)| k == "FROM").expect("final stage");
    let final_stage = &steps[last..];
    assert!(!final_stage.iter().any(|(k, _)| k == "RUN"), "distroless has no shell to RUN with");
    let user = final_stage.iter().rev().find(|(k, _)| k == "USER").map(|(_, a)| a.as_str()).expect("a USER");
    let (uid, gid) = user.split_once(':').unwrap_or((user, user));
    let uid: u32 = uid.parse().expect("a numeric user");
    let gid: u32 = gid.parse().expect("a numeric group");
    assert!(uid >= 10_000 && gid >= 10_000, "a high, non-root uid and gid: {user}");
    let entrypoint = final_stage.iter().find(|(k, _)| k == "ENTRYPOINT").map(|(_, a)| a.as_str()).expect("ENTRYPOINT");
    let entrypoint: Vec<String> = serde_json::from_str(entrypoint).expect("exec form");
    assert_eq!(entrypoint, ["/usr/local/bin/example-service"]);
    let command = final_stage.iter().find(|(k, _)| k == "CMD").map(|(_, a)| a.as_str()).expect("CMD");
    let command: Vec<String> = serde_json::from_str(command).expect("exec form");
    assert_eq!(command, ["--listen", "0.0.0.0:8080", "--internal-listen", "0.0.0.0:9090"]);
    let copies: Vec<&String> = final_stage.iter().filter(|(k, _)| k == "COPY").map(|(_, a)| a).collect();
    assert_eq!(copies.len(), 1, "only the binary is copied in: {copies:?}");
    assert!(copies[0].starts_with("--from=build "), "{}", copies[0]);
}

#[test]
fn the_build_context_leaves_out_build_outputs_and_history() {
    let ignored: Vec<String> = read("../../.dockerignore")
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(str::to_owned)
        .collect();
    for entry in [".git", "**/target"] {
        assert!(ignored.iter().any(|line| line == entry), "{entry} is not in .dockerignore: {ignored:?}");
    }
    assert!(!ignored.iter().any(|line| line == "crates" || line == "Cargo.lock"), "the workspace must stay in");
}
