//! Plans a platform offline from Rust, without the CLI: load the layered spec, build the
//! network, diff it against nothing, and print one line per account.
//!
//! `cargo run -p enclave-net --example offline_plan -- fixtures/reference client-a`

use enclave_core::{LoadOptions, plan};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let dir = args.next().unwrap_or_else(|| "configs".into());
    let options = LoadOptions { dir: dir.into(), overlays: args.collect() };
    let loaded = enclave_core::load(&options)?;
    let model = enclave_net::build(&loaded.spec).map_err(|violations| loaded.locate(violations))?;
    let plan = plan::diff(&enclave_net::resources::desired(&model), &[])?;
    for network in &model.accounts {
        let creates = plan.for_account(&network.account).count();
        println!(
            "{} ({}): {} in {} zones, {creates} resources to create",
            network.account,
            network.account_id,
            network.vpc.cidr,
            network.zones.len()
        );
    }
    println!("{}", plan.summary());
    Ok(())
}
