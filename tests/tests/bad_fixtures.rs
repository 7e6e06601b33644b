//! Every folder of `fixtures/bad/` is a malformed spec; its `expected.txt` holds the first
//! error it must produce, with file, line, column and field.

use std::fs;

use enclave_core::Error;
use enclave_tests::{load, workspace};

#[test]
fn every_bad_fixture_fails_with_its_expected_message() {
    let root = workspace().join("fixtures/bad");
    let mut cases: Vec<_> =
        fs::read_dir(&root).expect("fixtures/bad exists").map(|e| e.expect("entry").path()).collect();
    cases.sort();
    assert!(cases.len() >= 30, "the issue asks for at least 30 bad specs, found {}", cases.len());
    let mut failures = Vec::new();
    for case in &cases {
        let name = case.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_owned();
        let expected =
            fs::read_to_string(case.join("expected.txt")).unwrap_or_else(|_| panic!("{name}: expected.txt missing"));
        let args = fs::read_to_string(case.join("args")).unwrap_or_default();
        let overlays: Vec<&str> = args.split_whitespace().filter(|a| *a != "--overlay").collect();
        match load(case, &overlays) {
            Ok(_) => failures.push(format!("{name}: loaded without error")),
            Err(Error::Invalid { diagnostics }) => {
                let prefix = format!("{}/", case.display());
                let first = diagnostics[0].to_string().replace(&prefix, "");
                if first != expected.trim_end() {
                    failures.push(format!("{name}:\n  expected: {}\n  actual:   {first}", expected.trim_end()));
                }
                let span = diagnostics[0].span.as_ref();
                if span.is_none_or(|span| span.line == 0) {
                    failures.push(format!("{name}: the error has no file and line"));
                }
            }
            Err(other) => failures.push(format!("{name}: not an input error: {other}")),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} bad fixtures misbehave:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}
