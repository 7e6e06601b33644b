//! `enclave seal` and `enclave unseal`: kubeseal-compatible Sealed Secrets, offline (no cluster
//! needed). Bad input (a certificate that is not RSA, a Secret without a namespace, a file that
//! cannot be read) exits 2; a value no key opens exits 1. Nothing printed quotes a value, except
//! the Secret `unseal` prints on purpose.

use std::io::Read;
use std::path::Path;

use enclave_secrets::seal::{self, Certificate, PrivateKeys, Scope, SealError, SealOptions};
use serde::Serialize;

use crate::Failure;
use crate::cli::{ObjectFormat, SealArgs, SealScope, UnsealArgs};

fn read(path: Option<&Path>) -> Result<String, Failure> {
    let mut text = String::new();
    match path {
        None => std::io::stdin().read_to_string(&mut text).map(drop),
        Some(path) if path.as_os_str() == "-" => std::io::stdin().read_to_string(&mut text).map(drop),
        Some(path) => std::fs::read(path).and_then(|bytes| {
            String::from_utf8(bytes)
                .map(|t| text = t)
                .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidData, "not UTF-8 text"))
        }),
    }
    .map_err(|e| Failure::Usage(anyhow::anyhow!("cannot read {}: {e}", shown(path))))?;
    Ok(text)
}

fn shown(path: Option<&Path>) -> String {
    path.filter(|p| p.as_os_str() != "-").map_or_else(|| "stdin".to_owned(), |p| p.display().to_string())
}

fn read_bytes(path: &Path) -> Result<Vec<u8>, Failure> {
    std::fs::read(path).map_err(|e| Failure::Usage(anyhow::anyhow!("cannot read {}: {e}", path.display())))
}

/// A sealing error: the input's fault (exit 2) unless no key could open a value (exit 1).
fn failed(error: SealError, what: &str) -> Failure {
    match error {
        SealError::Decrypt { .. } | SealError::Encrypt(_) => Failure::Runtime(anyhow::anyhow!("{what}: {error}")),
        other => Failure::Usage(anyhow::anyhow!("{what}: {other}")),
    }
}

fn render<T: Serialize>(objects: &[T], format: ObjectFormat) -> Result<String, Failure> {
    let mut out = String::new();
    for object in objects {
        match format {
            // As kubeseal prints it: two-space indented JSON, one object after another.
            ObjectFormat::Json => {
                out.push_str(&serde_json::to_string_pretty(object).map_err(|e| Failure::Runtime(e.into()))?);
                out.push('\n');
            }
            ObjectFormat::Yaml => {
                out.push_str("---\n");
                out.push_str(&enclave_core::bundle::to_yaml(object));
            }
        }
    }
    Ok(out)
}

pub(crate) fn seal(args: &SealArgs) -> Result<(), Failure> {
    let certificate =
        Certificate::from_pem(&read_bytes(&args.cert)?).map_err(|e| failed(e, &args.cert.display().to_string()))?;
    let input = read(args.file.as_deref())?;
    let source = shown(args.file.as_deref());
    if args.re_encrypt {
        let key = args.key.as_ref().ok_or_else(|| Failure::Usage(anyhow::anyhow!("--re-encrypt needs --key")))?;
        let keys = PrivateKeys::from_bytes(&read_bytes(key)?).map_err(|e| failed(e, &key.display().to_string()))?;
        let sealed = seal::parse_sealed(&input).map_err(|e| failed(e, &source))?;
        let moved = sealed
            .iter()
            .map(|s| seal::re_encrypt(s, &keys, &certificate))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| failed(e, &source))?;
        print!("{}", render(&moved, args.output)?);
        return Ok(());
    }
    let secrets = seal::parse_secrets(&input).map_err(|e| failed(e, &source))?;
    if let Some(target) = &args.merge_into {
        let [secret] = secrets.as_slice() else {
            return Err(Failure::Usage(anyhow::anyhow!(
                "--merge-into takes one Secret; {source} holds {}",
                secrets.len()
            )));
        };
        let text = read(Some(target))?;
        let existing = seal::parse_sealed(&text).map_err(|e| failed(e, &target.display().to_string()))?;
        let [existing] = existing.as_slice() else {
            return Err(Failure::Usage(anyhow::anyhow!("{} must hold one SealedSecret", target.display())));
        };
        let merged = seal::merge_into(existing, secret, &certificate).map_err(|e| failed(e, &source))?;
        // The file the user named, and only it, is rewritten.
        std::fs::write(target, render(&[merged], args.output)?)
            .map_err(|e| Failure::Runtime(anyhow::anyhow!("cannot write {}: {e}", target.display())))?;
        eprintln!("merged {} key(s) into {}", secret_keys(secret), target.display());
        return Ok(());
    }
    let options = SealOptions {
        scope: args.scope.map(|scope| match scope {
            SealScope::Strict => Scope::Strict,
            SealScope::NamespaceWide => Scope::NamespaceWide,
            SealScope::ClusterWide => Scope::ClusterWide,
        }),
        namespace: args.namespace.clone(),
        name: args.name.clone(),
    };
    let sealed = secrets
        .iter()
        .map(|secret| seal::seal(secret, &certificate, &options))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| failed(e, &source))?;
    print!("{}", render(&sealed, args.output)?);
    Ok(())
}

fn secret_keys(secret: &k8s_openapi::api::core::v1::Secret) -> usize {
    secret.data.as_ref().map_or(0, |d| d.len()) + secret.string_data.as_ref().map_or(0, |d| d.len())
}

pub(crate) fn unseal(args: &UnsealArgs) -> Result<(), Failure> {
    let mut keys = Vec::new();
    for path in &args.key {
        keys.push(PrivateKeys::from_bytes(&read_bytes(path)?).map_err(|e| failed(e, &path.display().to_string()))?);
    }
    let keys = keys.into_iter().reduce(PrivateKeys::join).expect("clap requires one key");
    let input = read(args.file.as_deref())?;
    let source = shown(args.file.as_deref());
    let sealed = seal::parse_sealed(&input).map_err(|e| failed(e, &source))?;
    let secrets =
        sealed.iter().map(|s| seal::unseal(s, &keys)).collect::<Result<Vec<_>, _>>().map_err(|e| failed(e, &source))?;
    print!("{}", render(&secrets, args.output)?);
    Ok(())
}
