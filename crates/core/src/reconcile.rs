//! The reconciliation engine: carries out a [`Plan`] through a [`Provider`], concurrently and in
//! dependency order.
//!
//! The engine knows nothing about AWS. A domain crate (the network first; access, secrets and
//! deploy later) supplies a [`Provider`] that knows how to create, update and delete each kind
//! of resource, and gets for free:
//!
//! - a DAG walk: a step starts as soon as every step it depends on has finished, at most
//!   `parallelism` at a time, across accounts and independent resources;
//! - replacements as delete-then-create, with everything built on the replaced resource deleted
//!   first and created after;
//! - creates that wait for the same account's deletes (an old subnet must give its CIDR back
//!   before a new one can take it);
//! - failure isolation: a failed step skips only what depends on it; everything independent
//!   still runs, and the [`Report`] lists failures and skips;
//! - the AWS ids of created resources, shared with later steps through [`Ids`];
//! - progress events for bars or log lines ([`Progress`]).
//!
//! The engine is runtime-agnostic: it drives the provider's futures on the caller's task.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::future::Future;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use futures_util::stream::{FuturesUnordered, StreamExt};
use serde::Serialize;

use crate::address::Address;
use crate::plan::{Action, Attributes, Change, Plan};

/// What one step does to one resource.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Operation {
    /// Create the resource (also the second half of a replacement).
    Create,
    /// Change it in place.
    Update,
    /// Delete it (also the first half of a replacement).
    Delete,
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Operation::Create => "create",
            Operation::Update => "update",
            Operation::Delete => "delete",
        })
    }
}

/// One unit of work handed to the provider.
#[derive(Clone, Debug)]
pub struct Step<'a> {
    /// The resource.
    pub address: &'a Address,
    /// What to do.
    pub operation: Operation,
    /// Observed attributes (updates and deletes).
    pub before: Option<&'a Attributes>,
    /// Desired attributes (creates and updates).
    pub after: Option<&'a Attributes>,
}

/// AWS (or other) ids by address: observed ones at the start, created ones added as the walk
/// goes, deleted ones removed.
#[derive(Debug, Default)]
pub struct Ids {
    ids: Mutex<BTreeMap<Address, String>>,
}

impl Ids {
    /// Ids known before the walk (from observation).
    pub fn new(ids: BTreeMap<Address, String>) -> Self {
        Ids { ids: Mutex::new(ids) }
    }

    /// The id of `address`, if it exists.
    pub fn get(&self, address: &Address) -> Option<String> {
        self.ids.lock().ok().and_then(|ids| ids.get(address).cloned())
    }

    /// The id of the resource whose address is the string `address` (attributes refer to other
    /// resources by address string).
    pub fn resolve(&self, address: &str) -> Option<String> {
        self.get(&address.parse().ok()?)
    }

    fn set(&self, address: &Address, id: Option<String>) {
        if let Ok(mut ids) = self.ids.lock() {
            match id {
                Some(id) => ids.insert(address.clone(), id),
                None => ids.remove(address),
            };
        }
    }
}

/// Knows how to change one kind of infrastructure.
pub trait Provider {
    /// Why a step failed.
    type Error: fmt::Display;

    /// Carries out `step`. Returns the resource's id after a create (or update, when the id
    /// changes), `None` after a delete or when there is no id to record.
    fn run(&self, step: &Step<'_>, ids: &Ids) -> impl Future<Output = Result<Option<String>, Self::Error>>;
}

/// Progress of a walk, for bars or log lines. Every method has a no-op default.
pub trait Progress {
    /// The walk is about to start; `per_account` counts steps by account.
    fn planned(&self, _per_account: &BTreeMap<String, usize>) {}
    /// A step started.
    fn started(&self, _address: &Address, _operation: Operation) {}
    /// A step finished, with the error when it failed.
    fn finished(&self, _address: &Address, _operation: Operation, _elapsed: Duration, _error: Option<&str>) {}
    /// A step was skipped because one it depends on failed.
    fn skipped(&self, _address: &Address, _operation: Operation) {}
}

/// Progress that reports nothing.
#[derive(Clone, Copy, Debug, Default)]
pub struct Quiet;

impl Progress for Quiet {}

/// How a step ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StepResult {
    /// The resource.
    pub address: Address,
    /// What was attempted.
    pub operation: Operation,
    /// `None` when it succeeded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// What a walk did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    /// Steps that succeeded, in completion order.
    pub done: Vec<StepResult>,
    /// Steps that failed, with their errors.
    pub failed: Vec<StepResult>,
    /// Steps not attempted because a dependency failed.
    pub skipped: Vec<StepResult>,
}

impl Report {
    /// Whether every step succeeded.
    pub fn is_success(&self) -> bool {
        self.failed.is_empty() && self.skipped.is_empty()
    }
}

struct Node<'a> {
    change: &'a Change,
    operation: Operation,
    waits_for: Vec<usize>,
}

/// Breaks a plan into steps and their order constraints.
fn nodes(plan: &Plan) -> Vec<Node<'_>> {
    let mut nodes: Vec<Node<'_>> = Vec::new();
    let mut delete_of: HashMap<&Address, usize> = HashMap::new();
    let mut forward_of: HashMap<&Address, usize> = HashMap::new();
    for change in &plan.changes {
        if matches!(change.action, Action::Delete | Action::Replace) {
            delete_of.insert(&change.address, nodes.len());
            nodes.push(Node { change, operation: Operation::Delete, waits_for: Vec::new() });
        }
    }
    for change in &plan.changes {
        let operation = match change.action {
            Action::Create | Action::Replace => Operation::Create,
            Action::Update => Operation::Update,
            Action::Delete => continue,
        };
        forward_of.insert(&change.address, nodes.len());
        nodes.push(Node { change, operation, waits_for: Vec::new() });
    }
    // A delete waits for the deletes of everything that depends on it.
    let mut dependants_deleted: Vec<(usize, usize)> = Vec::new();
    for (index, node) in nodes.iter().enumerate() {
        if node.operation != Operation::Delete {
            continue;
        }
        for dependency in &node.change.depends_on {
            if let Some(&first) = delete_of.get(dependency) {
                dependants_deleted.push((first, index));
            }
        }
    }
    for (node, waits_for) in dependants_deleted {
        nodes[node].waits_for.push(waits_for);
    }
    // A create or update waits for its dependencies' creates and updates, for its own delete
    // (replacements), and for every delete in its account.
    let deletes_by_account: BTreeMap<&str, Vec<usize>> =
        delete_of.iter().fold(BTreeMap::new(), |mut by_account, (address, &index)| {
            by_account.entry(address.account()).or_insert_with(Vec::new).push(index);
            by_account
        });
    for node in nodes.iter_mut().filter(|node| node.operation != Operation::Delete) {
        let change = node.change;
        let mut waits: BTreeSet<usize> =
            change.depends_on.iter().filter_map(|dependency| forward_of.get(dependency).copied()).collect();
        if change.action != Action::Update {
            waits.extend(deletes_by_account.get(change.address.account()).into_iter().flatten().copied());
        }
        node.waits_for = waits.into_iter().collect();
    }
    nodes
}

/// Carries out `plan` through `provider`, at most `parallelism` steps at a time.
///
/// Steps whose dependencies failed are skipped; the walk never stops early, so independent
/// work is done and the next run has less left.
pub async fn apply<P: Provider>(
    plan: &Plan,
    provider: &P,
    ids: &Ids,
    parallelism: usize,
    progress: &dyn Progress,
) -> Report {
    let nodes = nodes(plan);
    let mut per_account: BTreeMap<String, usize> = BTreeMap::new();
    for node in &nodes {
        *per_account.entry(node.change.address.account().to_owned()).or_insert(0) += 1;
    }
    progress.planned(&per_account);

    let mut waiting: Vec<usize> = nodes.iter().map(|node| node.waits_for.len()).collect();
    let mut unblocks: Vec<Vec<usize>> = vec![Vec::new(); nodes.len()];
    for (index, node) in nodes.iter().enumerate() {
        for &first in &node.waits_for {
            unblocks[first].push(index);
        }
    }
    let mut ready: std::collections::VecDeque<usize> = (0..nodes.len()).filter(|&i| waiting[i] == 0).collect();
    let mut cancelled = vec![false; nodes.len()];
    let mut report = Report::default();
    let mut running = FuturesUnordered::new();
    let parallelism = parallelism.max(1);

    loop {
        while running.len() < parallelism {
            let Some(index) = ready.pop_front() else { break };
            let node = &nodes[index];
            let step = Step {
                address: &node.change.address,
                operation: node.operation,
                before: node.change.before.as_ref(),
                after: if node.operation == Operation::Delete { None } else { node.change.after.as_ref() },
            };
            progress.started(step.address, step.operation);
            running.push(async move {
                let began = Instant::now();
                let result = provider.run(&step, ids).await;
                (index, began.elapsed(), result)
            });
        }
        let Some((index, elapsed, result)) = running.next().await else { break };
        let node = &nodes[index];
        let address = &node.change.address;
        match result {
            Ok(id) => {
                match node.operation {
                    Operation::Delete => ids.set(address, None),
                    Operation::Create | Operation::Update => {
                        if let Some(id) = id {
                            ids.set(address, Some(id));
                        }
                    }
                }
                progress.finished(address, node.operation, elapsed, None);
                report.done.push(StepResult { address: address.clone(), operation: node.operation, error: None });
                for &next in &unblocks[index] {
                    waiting[next] -= 1;
                    if waiting[next] == 0 && !cancelled[next] {
                        ready.push_back(next);
                    }
                }
            }
            Err(error) => {
                let message = error.to_string();
                progress.finished(address, node.operation, elapsed, Some(&message));
                report.failed.push(StepResult {
                    address: address.clone(),
                    operation: node.operation,
                    error: Some(message),
                });
                let mut stack = unblocks[index].clone();
                while let Some(next) = stack.pop() {
                    if !cancelled[next] {
                        cancelled[next] = true;
                        let skipped = &nodes[next];
                        progress.skipped(&skipped.change.address, skipped.operation);
                        report.skipped.push(StepResult {
                            address: skipped.change.address.clone(),
                            operation: skipped.operation,
                            error: Some(format!("skipped: {address} failed")),
                        });
                        stack.extend(unblocks[next].iter().copied());
                    }
                }
            }
        }
    }
    report
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;

    use super::*;
    use crate::plan::{Resource, diff};

    fn address(text: &str) -> Address {
        text.parse().expect("valid address")
    }

    /// Records the order of steps and the peak concurrency; fails the addresses it is told to.
    #[derive(Default)]
    struct Recorder {
        log: RefCell<Vec<String>>,
        in_flight: RefCell<usize>,
        peak: RefCell<usize>,
        fail: BTreeSet<String>,
    }

    impl Provider for Recorder {
        type Error = String;

        async fn run(&self, step: &Step<'_>, ids: &Ids) -> Result<Option<String>, String> {
            *self.in_flight.borrow_mut() += 1;
            let peak = (*self.peak.borrow()).max(*self.in_flight.borrow());
            *self.peak.borrow_mut() = peak;
            // Yield so that other ready steps can start before this one ends.
            for _ in 0..3 {
                YieldNow(false).await;
            }
            *self.in_flight.borrow_mut() -= 1;
            let dependency_ids: Vec<String> = step
                .after
                .and_then(|after| after.get("parent"))
                .and_then(|parent| parent.as_str())
                .map(|parent| ids.resolve(parent).unwrap_or_else(|| "?".into()))
                .into_iter()
                .collect();
            self.log.borrow_mut().push(format!("{} {}{dependency_ids:?}", step.operation, step.address));
            if self.fail.contains(&step.address.to_string()) {
                return Err("boom".into());
            }
            Ok((step.operation != Operation::Delete).then(|| format!("id-{}", step.address.name())))
        }
    }

    struct YieldNow(bool);

    impl Future for YieldNow {
        type Output = ();
        fn poll(mut self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<()> {
            if self.0 {
                std::task::Poll::Ready(())
            } else {
                self.0 = true;
                cx.waker().wake_by_ref();
                std::task::Poll::Pending
            }
        }
    }

    fn block_on<F: Future>(future: F) -> F::Output {
        let waker = std::task::Waker::noop();
        let mut context = std::task::Context::from_waker(waker);
        let mut future = std::pin::pin!(future);
        loop {
            if let std::task::Poll::Ready(output) = future.as_mut().poll(&mut context) {
                return output;
            }
        }
    }

    fn tree() -> Vec<Resource> {
        let vpc = Resource::new(address("dev/net/vpc/main")).immutable("cidr_block", "10.1.0.0/16");
        let mut out = vec![vpc.clone()];
        for name in ["a", "b", "c", "d"] {
            out.push(
                Resource::new(address(&format!("dev/net/subnet/{name}")))
                    .attr("parent", "dev/net/vpc/main")
                    .after(&vpc.address),
            );
        }
        out
    }

    #[test]
    fn creates_run_after_their_dependencies_and_see_their_ids() {
        let plan = diff(&tree(), &[]).expect("no cycle");
        let recorder = Recorder::default();
        let ids = Ids::default();
        let report = block_on(apply(&plan, &recorder, &ids, 10, &Quiet));
        assert!(report.is_success());
        let log = recorder.log.borrow();
        assert_eq!(log[0], "create dev/net/vpc/main[]");
        assert!(log[1..].iter().all(|line| line.ends_with("[\"id-main\"]")), "{log:?}");
        assert_eq!(*recorder.peak.borrow(), 4, "the four subnets run together");
        assert_eq!(ids.get(&address("dev/net/subnet/c")).as_deref(), Some("id-c"));
    }

    #[test]
    fn parallelism_bounds_the_steps_in_flight() {
        let plan = diff(&tree(), &[]).expect("no cycle");
        let recorder = Recorder::default();
        let report = block_on(apply(&plan, &recorder, &Ids::default(), 2, &Quiet));
        assert_eq!(report.done.len(), 5);
        assert_eq!(*recorder.peak.borrow(), 2);
    }

    #[test]
    fn a_failure_skips_only_its_dependants() {
        let mut resources = tree();
        resources.push(Resource::new(address("prod/net/vpc/main")));
        let plan = diff(&resources, &[]).expect("no cycle");
        let recorder = Recorder { fail: ["dev/net/vpc/main".to_owned()].into(), ..Recorder::default() };
        let report = block_on(apply(&plan, &recorder, &Ids::default(), 10, &Quiet));
        assert_eq!(report.failed.len(), 1);
        assert_eq!(report.skipped.len(), 4);
        assert_eq!(report.done.len(), 1, "the other account's VPC is still created");
        assert_eq!(report.done[0].address, address("prod/net/vpc/main"));
    }

    #[test]
    fn replacement_deletes_dependants_first_and_creates_after() {
        let desired = tree();
        let mut observed = tree();
        observed[0] = Resource::new(address("dev/net/vpc/main")).attr("cidr_block", "10.9.0.0/16");
        let plan = diff(&desired, &observed).expect("no cycle");
        let recorder = Recorder::default();
        let report = block_on(apply(&plan, &recorder, &Ids::default(), 10, &Quiet));
        assert!(report.is_success());
        let log = recorder.log.borrow();
        let position = |line: &str| log.iter().position(|l| l.starts_with(line)).expect(line);
        assert!(position("delete dev/net/subnet/a") < position("delete dev/net/vpc/main"));
        assert!(position("delete dev/net/vpc/main") < position("create dev/net/vpc/main"));
        assert!(position("create dev/net/vpc/main") < position("create dev/net/subnet/a"));
    }

    #[test]
    fn creates_wait_for_deletes_in_their_account() {
        let desired = [Resource::new(address("dev/net/subnet/new")).attr("cidr_block", "10.1.0.0/20")];
        let observed = [Resource::new(address("dev/net/subnet/old")).attr("cidr_block", "10.1.0.0/20")];
        let plan = diff(&desired, &observed).expect("no cycle");
        let recorder = Recorder::default();
        block_on(apply(&plan, &recorder, &Ids::default(), 10, &Quiet));
        assert_eq!(*recorder.log.borrow(), ["delete dev/net/subnet/old[]", "create dev/net/subnet/new[]"]);
    }
}
