//! Blue-green rollouts (issue 15, first slice): the pure decision making, with Argo Rollouts'
//! semantics. [`analysis`] judges measurements and metrics as an AnalysisRun does;
//! [`bluegreen`] is the rollout's state machine. Driving a cluster (kube-rs) and the `enclave
//! rollout` commands come next.

pub mod analysis;
pub mod bluegreen;
