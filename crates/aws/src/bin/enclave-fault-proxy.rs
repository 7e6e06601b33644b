//! `enclave-fault-proxy UPSTREAM [--delay-ms N] [--throttle F] [--server-error F] [--drop F] [--seed N] [--eks-gaps]`:
//! runs [`enclave_aws::proxy::FaultProxy`] until killed and prints its endpoint on the first
//! line of stdout (for `cargo xtask bench apply`, and in front of moto for the demo, where
//! `--eks-gaps` serves the EKS add-ons and access entries moto lacks).

use std::io::Write;
use std::time::Duration;

use enclave_aws::proxy::{FaultProxy, Faults};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let upstream = args.next().ok_or(
        "usage: enclave-fault-proxy UPSTREAM [--delay-ms N] [--throttle F] [--server-error F] [--drop F] [--seed N] [--eks-gaps]",
    )?;
    let mut faults = Faults::default();
    while let Some(flag) = args.next() {
        if flag == "--eks-gaps" {
            faults.eks_gaps = true;
            continue;
        }
        let value = args.next().ok_or(format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--delay-ms" => faults.delay = Duration::from_millis(value.parse()?),
            "--throttle" => faults.throttle = value.parse()?,
            "--server-error" => faults.server_error = value.parse()?,
            "--drop" => faults.drop = value.parse()?,
            "--seed" => faults.seed = value.parse()?,
            other => return Err(format!("unknown flag {other}").into()),
        }
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async {
        let proxy = FaultProxy::start(&upstream, faults).await?;
        println!("{}", proxy.endpoint());
        std::io::stdout().flush()?;
        tokio::signal::ctrl_c().await?;
        Ok::<_, Box<dyn std::error::Error>>(())
    })
}
