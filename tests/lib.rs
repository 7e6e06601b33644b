//! Workspace integration tests for enclave: the reference fixtures' plans as snapshots, every
//! bad fixture's message, and the spec's JSON Schema. The tests are in `tests/`; this library
//! holds the helpers they share.

use std::path::{Path, PathBuf};

use enclave_core::{Error, LoadOptions, Loaded};
use enclave_net::NetworkModel;

/// The workspace root.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().map(Path::to_path_buf).unwrap_or_default()
}

/// Loads a config folder with overlays and builds its network, as the CLI does.
pub fn load(dir: &Path, overlays: &[&str]) -> Result<(Loaded, NetworkModel), Error> {
    let options = LoadOptions { dir: dir.to_owned(), overlays: overlays.iter().map(|o| (*o).to_owned()).collect() };
    enclave::load(&options)
}
