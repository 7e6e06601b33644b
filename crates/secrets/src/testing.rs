//! The reference platform, for this crate's unit tests.

use enclave_core::Spec;
use enclave_core::secret::Secret;

use crate::values::Values;

/// A value no output may ever contain.
pub(crate) const CANARY: &str = "canary-7f3a9c-never-printed";

/// The reference platform of `fixtures/reference`.
pub(crate) fn spec() -> Spec {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/reference");
    enclave_core::load(&enclave_core::LoadOptions::new(dir)).expect("the reference loads").spec
}

/// Every secret's value set to the canary.
pub(crate) fn values(spec: &Spec) -> Values {
    let model = crate::model::build(spec);
    let mut values = Values::default();
    for app in &model.apps {
        for secret in &app.secrets {
            values.insert(secret.full_name.clone(), Secret::new(CANARY));
        }
    }
    values
}
