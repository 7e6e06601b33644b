//! `enclave seal` and `enclave unseal` checked against an independent implementation of the
//! sealed-secrets format (`xtask/judges/sealed_secrets.py`, Python `cryptography`): what enclave
//! seals, Python opens; what Python seals, enclave opens; in all three scopes, and a strict
//! secret moved to another name or namespace opens on neither side. Needs the project's Python
//! (`ENCLAVE_PYTHON`, set by `cargo xtask test`).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::{Value, json};

const SCOPES: [&str; 3] = ["strict", "namespace-wide", "cluster-wide"];
const CANARY: &str = "canary-sealed-7f3a9c";

fn python() -> Command {
    let python = std::env::var("ENCLAVE_PYTHON").expect("ENCLAVE_PYTHON: run through cargo xtask test");
    let mut command = Command::new(python);
    command.arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../xtask/judges/sealed_secrets.py"));
    command
}

fn enclave(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_enclave")).args(args).output().expect("enclave runs")
}

fn ok(output: Output, what: &str) -> String {
    assert!(output.status.success(), "{what}: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).expect("utf-8")
}

fn workdir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("enclave-seal-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    dir
}

fn keys(dir: &Path) {
    ok(python().arg("keys").arg(dir).output().expect("python runs"), "python keys");
}

fn path(dir: &Path, file: &str) -> String {
    dir.join(file).to_string_lossy().into_owned()
}

#[test]
#[ignore = "needs the project's Python (cryptography); cargo xtask test runs this with --ignored"]
fn what_enclave_seals_python_opens_and_what_python_seals_enclave_opens_in_every_scope() {
    let dir = workdir("cross");
    keys(&dir);
    let secret = format!(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\n  namespace: orders\n  labels: {{team: orders}}\ntype: Opaque\nstringData:\n  password: {CANARY}\n  user: orders\n"
    );
    std::fs::write(dir.join("secret.yaml"), &secret).expect("written");
    for scope in SCOPES {
        let sealed = ok(
            enclave(&["seal", "--cert", &path(&dir, "cert.pem"), "--scope", scope, "-f", &path(&dir, "secret.yaml")]),
            "enclave seal",
        );
        assert!(!sealed.contains(CANARY), "{scope}: the sealed object holds no value");
        let object: Value = serde_json::from_str(&sealed).expect("JSON");
        assert_eq!(object["kind"], "SealedSecret");
        assert_eq!(object["spec"]["template"]["metadata"]["labels"]["team"], "orders");
        let file = dir.join(format!("sealed-{scope}.json"));
        std::fs::write(&file, &sealed).expect("written");
        let opened = ok(
            python().arg("open").arg(&file).arg(dir.join("key.pem")).output().expect("python runs"),
            &format!("python opens enclave's {scope} seal"),
        );
        let opened: Value = serde_json::from_str(&opened).expect("JSON");
        assert_eq!(opened, json!([{ "password": CANARY, "user": "orders" }]), "{scope}");

        // Moved: strict opens under its own name and namespace only; namespace-wide in its
        // namespace; cluster-wide anywhere.
        for (field, moved_to, opens) in
            [("name", "other", scope != "strict"), ("namespace", "billing", scope == "cluster-wide")]
        {
            let mut moved = object.clone();
            moved["metadata"][field] = json!(moved_to);
            let moved_file = dir.join(format!("moved-{scope}-{field}.json"));
            std::fs::write(&moved_file, moved.to_string()).expect("written");
            let python_opens = python().arg("open").arg(&moved_file).arg(dir.join("key.pem")).output().expect("runs");
            assert_eq!(python_opens.status.success(), opens, "{scope}, {field} changed: python");
            let enclave_opens =
                enclave(&["unseal", "--key", &path(&dir, "key.pem"), "-f", &moved_file.to_string_lossy()]);
            assert_eq!(enclave_opens.status.success(), opens, "{scope}, {field} changed: enclave");
            if !opens {
                assert_eq!(enclave_opens.status.code(), Some(1), "a value no key opens is a runtime failure");
                let stderr = String::from_utf8_lossy(&enclave_opens.stderr);
                assert!(stderr.contains("no key could decrypt") && !stderr.contains(CANARY), "{stderr}");
            }
        }

        let by_python = ok(
            python()
                .args([
                    "seal",
                    &path(&dir, "cert.pem"),
                    "orders",
                    "db",
                    scope,
                    &format!("password={CANARY}"),
                    "user=orders",
                ])
                .output()
                .expect("python runs"),
            "python seal",
        );
        let python_file = dir.join(format!("python-{scope}.json"));
        std::fs::write(&python_file, by_python).expect("written");
        let unsealed = ok(
            enclave(&["unseal", "--key", &path(&dir, "key.pem"), "-f", &python_file.to_string_lossy()]),
            &format!("enclave opens python's {scope} seal"),
        );
        let unsealed: Value = serde_json::from_str(&unsealed).expect("JSON");
        assert_eq!(unsealed["kind"], "Secret");
        assert_eq!(unsealed["metadata"]["namespace"], "orders");
        let password = unsealed["data"]["password"].as_str().expect("password");
        use base64::Engine;
        let password = base64::engine::general_purpose::STANDARD.decode(password).expect("base64");
        assert_eq!(password, CANARY.as_bytes(), "{scope}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
#[ignore = "needs the project's Python (cryptography); cargo xtask test runs this with --ignored"]
fn merge_and_re_encrypt_stay_readable_by_the_controller_format() {
    let dir = workdir("merge");
    keys(&dir);
    let rotated = dir.join("rotated");
    keys(&rotated);
    std::fs::write(
        dir.join("a.yaml"),
        "apiVersion: v1\nkind: Secret\nmetadata: {name: api, namespace: orders}\nstringData: {token: first}\n",
    )
    .expect("written");
    std::fs::write(
        dir.join("b.yaml"),
        "apiVersion: v1\nkind: Secret\nmetadata: {name: api, namespace: orders}\nstringData: {extra: second}\n",
    )
    .expect("written");
    let sealed = ok(enclave(&["seal", "--cert", &path(&dir, "cert.pem"), "-f", &path(&dir, "a.yaml")]), "seal");
    std::fs::write(dir.join("sealed.json"), sealed).expect("written");
    ok(
        enclave(&[
            "seal",
            "--cert",
            &path(&dir, "cert.pem"),
            "-f",
            &path(&dir, "b.yaml"),
            "--merge-into",
            &path(&dir, "sealed.json"),
        ]),
        "merge",
    );
    let opened =
        ok(python().arg("open").arg(dir.join("sealed.json")).arg(dir.join("key.pem")).output().expect("runs"), "open");
    assert_eq!(serde_json::from_str::<Value>(&opened).expect("JSON"), json!([{ "extra": "second", "token": "first" }]));
    let moved = ok(
        enclave(&[
            "seal",
            "--re-encrypt",
            "--key",
            &path(&dir, "key.pem"),
            "--cert",
            &path(&rotated, "cert.pem"),
            "-f",
            &path(&dir, "sealed.json"),
        ]),
        "re-encrypt",
    );
    std::fs::write(dir.join("moved.json"), moved).expect("written");
    let opened = ok(
        python().arg("open").arg(dir.join("moved.json")).arg(rotated.join("key.pem")).output().expect("runs"),
        "open",
    );
    assert_eq!(serde_json::from_str::<Value>(&opened).expect("JSON"), json!([{ "extra": "second", "token": "first" }]));
    let old = python().arg("open").arg(dir.join("moved.json")).arg(dir.join("key.pem")).output().expect("runs");
    assert!(!old.status.success(), "the old key no longer opens it");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
#[ignore = "needs the project's Python (cryptography); cargo xtask test runs this with --ignored"]
fn bad_input_is_exit_2_and_names_no_value() {
    let dir = workdir("bad");
    keys(&dir);
    let secret = format!("apiVersion: v1\nkind: Secret\nmetadata: {{name: db}}\nstringData: {{password: {CANARY}}}\n");
    std::fs::write(dir.join("secret.yaml"), secret).expect("written");
    let input = path(&dir, "secret.yaml");
    for (args, says) in [
        (vec!["seal", "--cert", &path(&dir, "ec-cert.pem"), "-n", "orders"], "not RSA"),
        (vec!["seal", "--cert", &path(&dir, "cert.pem")], "no namespace"),
        (vec!["seal", "--cert", &path(&dir, "missing.pem"), "-n", "orders"], "cannot read"),
        (vec!["seal", "--cert", &path(&dir, "key.pem"), "-n", "orders"], "no certificate"),
    ] {
        let mut all = args.clone();
        all.extend(["-f", input.as_str()]);
        let out = enclave(&all);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
        assert!(!stderr.contains(CANARY) && out.stdout.is_empty(), "{args:?}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
