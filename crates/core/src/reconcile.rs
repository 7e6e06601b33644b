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
//! - creates that wait for the deletes they collide with ([`Provider::collides`]: an old subnet
//!   must give its CIDR back before a new one can take it), and deletes that wait for the updates
//!   moving off the deleted resource (a route switching to another NAT gateway before the old
//!   one goes, an endpoint leaving a subnet before the subnet goes);
//! - failure isolation: a failed step skips only what depends on it; everything independent
//!   still runs, and the [`Report`] lists failures and skips;
//! - the AWS ids of created resources, shared with later steps through [`Ids`];
//! - progress events for bars or log lines ([`Progress`]).
//!
//! One plan can span every domain: a [`Router`] sends each step to the provider of its
//! address's component, all sharing one [`Ids`] built from the merged [`Observed`] of every
//! domain, so a dependency on another domain's resource orders the walk and resolves its id.
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
use crate::plan::{Action, Attributes, Change, Plan, Resource};
use crate::secret::Secret;

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
    /// Desired attributes (creates and updates); sensitive ones show `(sensitive)`.
    pub after: Option<&'a Attributes>,
    /// The values of the sensitive attributes to set (creates and updates).
    pub secrets: &'a BTreeMap<String, Secret>,
}

/// No sensitive values: the secrets of a step that sets none.
static NO_SECRETS: BTreeMap<String, Secret> = BTreeMap::new();

impl<'a> Step<'a> {
    /// A create of `address` with `after` and no sensitive attribute (providers' tests).
    pub fn create(address: &'a Address, after: &'a Attributes) -> Self {
        Step { address, operation: Operation::Create, before: None, after: Some(after), secrets: &NO_SECRETS }
    }

    /// An update of `address` from `before` to `after`, no sensitive attribute (providers'
    /// tests).
    pub fn update(address: &'a Address, before: &'a Attributes, after: &'a Attributes) -> Self {
        Step { address, operation: Operation::Update, before: Some(before), after: Some(after), secrets: &NO_SECRETS }
    }

    /// A delete of `address`, observed as `before` (providers' tests).
    pub fn delete(address: &'a Address, before: &'a Attributes) -> Self {
        Step { address, operation: Operation::Delete, before: Some(before), after: None, secrets: &NO_SECRETS }
    }
}

/// AWS (or other) ids by address: observed ones at the start, created ones added as the walk
/// goes, deleted ones removed.
#[derive(Debug, Default)]
pub struct Ids {
    ids: Mutex<IdMaps>,
}

#[derive(Debug, Default)]
struct IdMaps {
    live: BTreeMap<Address, String>,
    /// Ids of resources deleted during this walk: an update that detaches something deleted
    /// before it (an endpoint leaving a deleted subnet) still has to name the old id.
    gone: BTreeMap<Address, String>,
}

impl Ids {
    /// Ids known before the walk (from observation).
    pub fn new(ids: BTreeMap<Address, String>) -> Self {
        Ids { ids: Mutex::new(IdMaps { live: ids, gone: BTreeMap::new() }) }
    }

    /// The id of `address`, if it exists.
    pub fn get(&self, address: &Address) -> Option<String> {
        self.ids.lock().ok().and_then(|ids| ids.live.get(address).cloned())
    }

    /// The id of the resource whose address is the string `address` (attributes refer to other
    /// resources by address string).
    pub fn resolve(&self, address: &str) -> Option<String> {
        self.get(&address.parse().ok()?)
    }

    /// Like [`Ids::resolve`], and also the last id of a resource deleted during this walk: for
    /// the observed side of an update, which may name what is already gone.
    pub fn resolve_former(&self, address: &str) -> Option<String> {
        let address: Address = address.parse().ok()?;
        let ids = self.ids.lock().ok()?;
        ids.live.get(&address).or_else(|| ids.gone.get(&address)).cloned()
    }

    fn set(&self, address: &Address, id: Option<String>) {
        if let Ok(mut ids) = self.ids.lock() {
            match id {
                Some(id) => {
                    ids.gone.remove(address);
                    ids.live.insert(address.clone(), id);
                }
                None => {
                    if let Some(old) = ids.live.remove(address) {
                        ids.gone.insert(address.clone(), old);
                    }
                }
            }
        }
    }
}

/// What exists for a stack: observed resources and their cloud ids, from one domain or, merged,
/// from all of them (one plan spans every domain, so a bastion finds its subnet's id).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Observed {
    /// Resources, with the attributes the domains' desired resources compare.
    pub resources: Vec<Resource>,
    /// Cloud ids by address.
    pub ids: BTreeMap<Address, String>,
}

impl Observed {
    /// Records a resource and its id.
    pub fn record(&mut self, id: &str, resource: Resource) {
        self.ids.insert(resource.address.clone(), id.to_owned());
        self.resources.push(resource);
    }

    /// Keeps only the resources (and ids) of `component`: a domain observes by the stack's tag,
    /// and what another domain owns (the bastion's security group seen by the network's
    /// `DescribeSecurityGroups`) is that domain's to report.
    pub fn retain_component(&mut self, component: &str) {
        self.resources.retain(|resource| resource.address.component() == component);
        self.ids.retain(|address, _| address.component() == component);
    }

    /// Adds everything `other` observed.
    pub fn extend(&mut self, other: Observed) {
        self.resources.extend(other.resources);
        self.ids.extend(other.ids);
    }
}

/// Knows how to change one kind of infrastructure.
pub trait Provider {
    /// Why a step failed.
    type Error: fmt::Display;

    /// Carries out `step`. Returns the resource's id after a create (or update, when the id
    /// changes), `None` after a delete or when there is no id to record.
    fn run(&self, step: &Step<'_>, ids: &Ids) -> impl Future<Output = Result<Option<String>, Self::Error>>;

    /// Whether creating `create` must wait for deleting `delete`: they would hold the same name
    /// or address space at once. The default is the conservative answer for a domain that knows
    /// no better: any two resources of one kind in one account. A domain narrows it (subnets
    /// collide only when their CIDRs overlap), so unrelated work is not serialised.
    fn collides(&self, create: &Change, delete: &Change) -> bool {
        create.address.account() == delete.address.account() && create.address.kind() == delete.address.kind()
    }
}

/// A [`Provider`] behind a reference with its future boxed and its error as text, so that
/// providers of different types can sit in one [`Router`]. Every [`Provider`] is one.
pub trait DynProvider {
    /// [`Provider::run`], boxed.
    fn run_dyn<'a>(
        &'a self,
        step: &'a Step<'a>,
        ids: &'a Ids,
    ) -> std::pin::Pin<Box<dyn Future<Output = Result<Option<String>, String>> + 'a>>;

    /// [`Provider::collides`].
    fn collides_dyn(&self, create: &Change, delete: &Change) -> bool;
}

impl<P: Provider> DynProvider for P {
    fn run_dyn<'a>(
        &'a self,
        step: &'a Step<'a>,
        ids: &'a Ids,
    ) -> std::pin::Pin<Box<dyn Future<Output = Result<Option<String>, String>> + 'a>> {
        Box::pin(async move { self.run(step, ids).await.map_err(|error| error.to_string()) })
    }

    fn collides_dyn(&self, create: &Change, delete: &Change) -> bool {
        self.collides(create, delete)
    }
}

/// One provider per component (`net`, `access`, `secrets`, `deploy`): the walk of one plan that
/// spans every domain, each step carried out by the provider of its address's component.
///
/// ```
/// use enclave_core::reconcile::{Ids, Provider, Router, Step};
///
/// struct Network;
/// impl Provider for Network {
///     type Error = String;
///     async fn run(&self, step: &Step<'_>, _ids: &Ids) -> Result<Option<String>, String> {
///         Ok(Some(format!("id-of-{}", step.address.name())))
///     }
/// }
/// let network = Network;
/// let router = Router::default().route("net", &network);
/// assert_eq!(router.components().collect::<Vec<_>>(), ["net"]);
/// ```
#[derive(Default)]
pub struct Router<'a> {
    routes: BTreeMap<String, &'a dyn DynProvider>,
}

impl<'a> Router<'a> {
    /// Sends the steps of `component`'s addresses to `provider`.
    #[must_use]
    pub fn route(mut self, component: &str, provider: &'a dyn DynProvider) -> Self {
        self.routes.insert(component.to_owned(), provider);
        self
    }

    /// The components routed.
    pub fn components(&self) -> impl Iterator<Item = &str> {
        self.routes.keys().map(String::as_str)
    }
}

/// Why a routed step failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RouteError {
    /// No provider is routed for the address's component (the domain is not enabled).
    #[error("no provider for component `{component}` ({address})")]
    NoProvider {
        /// The component.
        component: String,
        /// The step's resource.
        address: Address,
    },
    /// The component's provider failed; its message.
    #[error("{0}")]
    Failed(String),
}

impl Provider for Router<'_> {
    type Error = RouteError;

    async fn run(&self, step: &Step<'_>, ids: &Ids) -> Result<Option<String>, RouteError> {
        let component = step.address.component();
        let provider = self
            .routes
            .get(component)
            .ok_or_else(|| RouteError::NoProvider { component: component.to_owned(), address: step.address.clone() })?;
        provider.run_dyn(step, ids).await.map_err(RouteError::Failed)
    }

    /// Resources of different components never collide; within one, its provider decides.
    fn collides(&self, create: &Change, delete: &Change) -> bool {
        let component = create.address.component();
        component == delete.address.component()
            && self.routes.get(component).is_some_and(|provider| provider.collides_dyn(create, delete))
    }
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
    /// How long the step ran, in milliseconds (0 when skipped).
    pub elapsed_ms: u64,
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
    /// How long the whole walk took, in milliseconds.
    pub elapsed_ms: u64,
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

/// Breaks a plan into steps and their order constraints; `collides` says which deletes a
/// create must wait for (see [`Provider::collides`]).
fn nodes<'a>(plan: &'a Plan, collides: &dyn Fn(&Change, &Change) -> bool) -> Vec<Node<'a>> {
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
    // A create or update waits for its dependencies' creates and updates. A create also waits for
    // its own delete (a replacement) and for the deletes it collides with: an old subnet must give
    // its CIDR back, an old group its name, before a new one can take them. Unrelated deletes are
    // not waited for.
    let deletes: Vec<usize> = delete_of.values().copied().collect();
    let mut forward_waits: Vec<(usize, Vec<usize>)> = Vec::new();
    for (index, node) in nodes.iter().enumerate().filter(|(_, node)| node.operation != Operation::Delete) {
        let change = node.change;
        let mut waits: BTreeSet<usize> =
            change.depends_on.iter().filter_map(|dependency| forward_of.get(dependency).copied()).collect();
        if change.action != Action::Update {
            waits.extend(deletes.iter().copied().filter(|&delete| {
                let deleted = nodes[delete].change;
                deleted.address == change.address || collides(change, deleted)
            }));
        }
        forward_waits.push((index, waits.into_iter().collect()));
    }
    for (index, waits) in forward_waits {
        nodes[index].waits_for = waits;
    }
    // A delete waits for the updates that move off it (a route switching NAT gateways, an
    // endpoint leaving a subnet), so nothing points at a resource while it goes; unless the
    // update itself waits, however indirectly, for that delete, where the edge would close a
    // cycle. Each edge is checked against the graph with the edges added before it, so the
    // graph stays acyclic.
    for index in 0..nodes.len() {
        if nodes[index].operation != Operation::Update {
            continue;
        }
        for address in &nodes[index].change.releases {
            let Some(&delete) = delete_of.get(address) else { continue };
            if !waits_on(&nodes, index, delete) {
                nodes[delete].waits_for.push(index);
            }
        }
    }
    nodes
}

/// Whether node `start` waits, directly or through other steps, for node `target`.
fn waits_on(nodes: &[Node<'_>], start: usize, target: usize) -> bool {
    let mut stack = nodes[start].waits_for.clone();
    let mut seen = BTreeSet::new();
    while let Some(next) = stack.pop() {
        if next == target {
            return true;
        }
        if seen.insert(next) {
            stack.extend(nodes[next].waits_for.iter().copied());
        }
    }
    false
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
    let nodes = nodes(plan, &|create, delete| provider.collides(create, delete));
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
    let walk_began = Instant::now();
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
                secrets: &node.change.secrets,
            };
            progress.started(step.address, step.operation);
            tracing::trace!(address = %step.address, operation = %step.operation, ?step, "step started");
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
                report.done.push(StepResult {
                    address: address.clone(),
                    operation: node.operation,
                    error: None,
                    elapsed_ms: millis(elapsed),
                });
                for &next in &unblocks[index] {
                    waiting[next] -= 1;
                    if waiting[next] == 0 && !cancelled[next] {
                        ready.push_back(next);
                    }
                }
            }
            Err(error) => {
                let message = error.to_string();
                tracing::debug!(%address, operation = %node.operation, error = %message, "step failed");
                progress.finished(address, node.operation, elapsed, Some(&message));
                report.failed.push(StepResult {
                    address: address.clone(),
                    operation: node.operation,
                    error: Some(message),
                    elapsed_ms: millis(elapsed),
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
                            elapsed_ms: 0,
                        });
                        stack.extend(unblocks[next].iter().copied());
                    }
                }
            }
        }
    }
    report.elapsed_ms = millis(walk_began.elapsed());
    report
}

fn millis(elapsed: Duration) -> u64 {
    u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX)
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

    #[test]
    fn creates_do_not_wait_for_deletes_of_other_kinds() {
        let desired = [Resource::new(address("dev/net/vpc-endpoint/sts")).attr("service", "sts")];
        let observed = [Resource::new(address("dev/net/nat-gateway/b")).attr("subnet", "x")];
        let plan = diff(&desired, &observed).expect("no cycle");
        let nodes = nodes(&plan, &|create, delete| Recorder::default().collides(create, delete));
        assert!(nodes.iter().all(|node| node.waits_for.is_empty()), "the endpoint and the NAT gateway are independent");
    }

    #[test]
    fn a_delete_waits_for_the_update_that_moves_off_it() {
        let nat = |name: &str| Resource::new(address(&format!("dev/net/nat-gateway/{name}")));
        let route = |target: &str| {
            Resource::new(address("dev/net/route/private-b-default"))
                .attr("target", format!("dev/net/nat-gateway/{target}"))
                .after(&address(&format!("dev/net/nat-gateway/{target}")))
        };
        // per-az -> single: the route moves from NAT b to NAT a, and NAT b goes.
        let plan = diff(&[nat("a"), route("a")], &[nat("a"), nat("b"), route("b")]).expect("no cycle");
        assert_eq!(plan.changes.len(), 2);
        let recorder = Recorder::default();
        let report = block_on(apply(&plan, &recorder, &Ids::default(), 10, &Quiet));
        assert!(report.is_success());
        assert_eq!(
            *recorder.log.borrow(),
            ["update dev/net/route/private-b-default[]", "delete dev/net/nat-gateway/b[]"],
            "the route leaves NAT b before NAT b is deleted"
        );
    }

    #[test]
    fn a_release_that_would_close_a_cycle_is_not_waited_for() {
        // The route moves to a NAT gateway being created while the old one is deleted: the create
        // waits for the delete (same kind), so the delete cannot also wait for the route.
        let route = |target: &str| {
            Resource::new(address("dev/net/route/private-b-default"))
                .attr("target", format!("dev/net/nat-gateway/{target}"))
                .after(&address(&format!("dev/net/nat-gateway/{target}")))
        };
        let nat = |name: &str| Resource::new(address(&format!("dev/net/nat-gateway/{name}")));
        let plan = diff(&[nat("new"), route("new")], &[nat("old"), route("old")]).expect("no cycle");
        let recorder = Recorder::default();
        let report = block_on(apply(&plan, &recorder, &Ids::default(), 10, &Quiet));
        assert!(report.is_success(), "{report:?}");
        assert_eq!(report.done.len(), 3, "every step ran: no deadlock");
    }

    #[test]
    fn a_delete_waits_for_the_update_leaving_it_even_behind_unrelated_creates() {
        // An endpoint moves from subnet app-a (deleted) to data-a (created); the two subnets do
        // not collide, so the endpoint's update runs before app-a is deleted.
        let endpoint = |subnet: &str| {
            Resource::new(address("dev/net/vpc-endpoint/ssm"))
                .attr("subnets", format!("dev/net/subnet/{subnet}"))
                .after(&address(&format!("dev/net/subnet/{subnet}")))
        };
        let subnet = |name: &str| Resource::new(address(&format!("dev/net/subnet/{name}")));
        let plan = diff(&[subnet("data-a"), endpoint("data-a")], &[subnet("app-a"), endpoint("app-a")]).expect("plan");
        let nodes = nodes(&plan, &|_, _| false);
        let position = |operation: Operation, name: &str| {
            nodes.iter().position(|n| n.operation == operation && n.change.address.to_string() == name).expect(name)
        };
        let delete = position(Operation::Delete, "dev/net/subnet/app-a");
        let update = position(Operation::Update, "dev/net/vpc-endpoint/ssm");
        let create = position(Operation::Create, "dev/net/subnet/data-a");
        assert_eq!(nodes[delete].waits_for, [update]);
        assert_eq!(nodes[update].waits_for, [create]);
        assert!(nodes[create].waits_for.is_empty());
    }

    mockall::mock! {
        /// One domain's provider in the router tests.
        Domain {}
        impl Provider for Domain {
            type Error = String;
            fn run<'s>(&self, step: &Step<'s>, ids: &Ids) -> impl Future<Output = Result<Option<String>, String>>;
            fn collides(&self, create: &Change, delete: &Change) -> bool;
        }
    }

    type Answer = std::pin::Pin<Box<dyn Future<Output = Result<Option<String>, String>>>>;

    fn answer(result: Result<Option<String>, String>) -> Answer {
        Box::pin(std::future::ready(result))
    }

    /// Expects exactly one `operation` on `target` from `domain`, answered with `result`, in
    /// `sequence` when one is given.
    fn expect(
        domain: &mut MockDomain,
        operation: Operation,
        target: &str,
        result: Result<Option<String>, String>,
        sequence: Option<&mut mockall::Sequence>,
    ) {
        let target = address(target);
        let expectation =
            domain.expect_run().withf(move |step, _| step.operation == operation && *step.address == target).times(1);
        if let Some(sequence) = sequence {
            expectation.in_sequence(sequence);
        }
        expectation.return_once(move |_, _| answer(result));
    }

    fn platform() -> Vec<Resource> {
        let subnet = Resource::new(address("dev/net/subnet/app-a")).immutable("cidr_block", "10.1.0.0/20");
        let bastion = Resource::new(address("dev/access/instance/bastion"))
            .attr("parent", "dev/net/subnet/app-a")
            .after(&subnet.address);
        let trail = Resource::new(address("dev/access/trail/main")).attr("bucket", "logs");
        vec![subnet, bastion, trail]
    }

    #[test]
    fn a_router_walks_one_plan_across_domains_in_dependency_order_with_shared_ids() {
        let mut sequence = mockall::Sequence::new();
        let (mut net, mut access) = (MockDomain::new(), MockDomain::new());
        expect(&mut net, Operation::Create, "dev/net/subnet/app-a", Ok(Some("subnet-1".into())), Some(&mut sequence));
        // The bastion runs after its subnet, in another domain, and sees the subnet's id.
        access
            .expect_run()
            .withf(|step, ids| {
                step.address.name() == "bastion" && ids.resolve("dev/net/subnet/app-a").as_deref() == Some("subnet-1")
            })
            .times(1)
            .in_sequence(&mut sequence)
            .return_once(|_, _| answer(Ok(Some("i-1".into()))));
        expect(&mut access, Operation::Create, "dev/access/trail/main", Ok(Some("trail".into())), None);
        let router = Router::default().route("net", &net).route("access", &access);
        let plan = diff(&platform(), &[]).expect("plan");
        let ids = Ids::default();
        let report = block_on(apply(&plan, &router, &ids, 10, &Quiet));
        assert!(report.is_success(), "{report:?}");
        assert_eq!(ids.resolve("dev/access/instance/bastion").as_deref(), Some("i-1"));
    }

    #[test]
    fn a_failure_in_one_domain_skips_its_dependants_in_another_and_nothing_else() {
        let (mut net, mut access) = (MockDomain::new(), MockDomain::new());
        expect(&mut net, Operation::Create, "dev/net/subnet/app-a", Err("dev/net/subnet/app-a refused".into()), None);
        expect(&mut access, Operation::Create, "dev/access/trail/main", Ok(Some("trail".into())), None);
        // No expectation for the bastion: a call to create it fails the test.
        let router = Router::default().route("net", &net).route("access", &access);
        let plan = diff(&platform(), &[]).expect("plan");
        let report = block_on(apply(&plan, &router, &Ids::default(), 10, &Quiet));
        assert_eq!(report.failed.len(), 1);
        assert_eq!(report.failed[0].error.as_deref(), Some("dev/net/subnet/app-a refused"));
        assert_eq!(
            report.skipped.iter().map(|s| s.address.to_string()).collect::<Vec<_>>(),
            ["dev/access/instance/bastion"]
        );
        assert_eq!(report.done.iter().map(|s| s.address.to_string()).collect::<Vec<_>>(), ["dev/access/trail/main"]);
    }

    #[test]
    fn replacing_a_resource_replaces_its_dependants_in_other_domains_around_it() {
        let mut sequence = mockall::Sequence::new();
        let (mut net, mut access) = (MockDomain::new(), MockDomain::new());
        expect(&mut access, Operation::Delete, "dev/access/instance/bastion", Ok(None), Some(&mut sequence));
        expect(&mut net, Operation::Delete, "dev/net/subnet/app-a", Ok(None), Some(&mut sequence));
        expect(&mut net, Operation::Create, "dev/net/subnet/app-a", Ok(Some("subnet-new".into())), Some(&mut sequence));
        access
            .expect_run()
            .withf(|step, ids| {
                step.operation == Operation::Create
                    && step.address.name() == "bastion"
                    && ids.resolve("dev/net/subnet/app-a").as_deref() == Some("subnet-new")
            })
            .times(1)
            .in_sequence(&mut sequence)
            .return_once(|_, _| answer(Ok(Some("i-2".into()))));
        // The trail is unchanged: no expectation, so any step on it fails the test.
        let router = Router::default().route("net", &net).route("access", &access);
        let mut observed = platform();
        observed[0] = Resource::new(address("dev/net/subnet/app-a")).attr("cidr_block", "10.1.16.0/20");
        let plan = diff(&platform(), &observed).expect("plan");
        let ids = Ids::new([(address("dev/net/subnet/app-a"), "subnet-old".to_owned())].into());
        let report = block_on(apply(&plan, &router, &ids, 10, &Quiet));
        assert!(report.is_success(), "{report:?}");
    }

    #[test]
    fn a_step_of_a_component_without_provider_fails_with_its_name() {
        let mut net = MockDomain::new();
        expect(&mut net, Operation::Create, "dev/net/subnet/app-a", Ok(Some("subnet-1".into())), None);
        let router = Router::default().route("net", &net);
        let plan = diff(&platform(), &[]).expect("plan");
        let report = block_on(apply(&plan, &router, &Ids::default(), 10, &Quiet));
        let failed: Vec<String> = report.failed.iter().filter_map(|f| f.error.clone()).collect();
        assert!(
            failed.contains(&"no provider for component `access` (dev/access/trail/main)".to_owned()),
            "{failed:?}"
        );
    }

    #[test]
    fn resources_of_different_components_never_collide() {
        let (mut net, access) = (MockDomain::new(), MockDomain::new());
        // Only net is asked, and only about net's own resources; access is never asked.
        net.expect_collides()
            .withf(|create, delete| create.address.component() == "net" && delete.address.component() == "net")
            .times(1)
            .return_const(true);
        let router = Router::default().route("net", &net).route("access", &access);
        let change = |text: &str| Change {
            address: address(text),
            action: Action::Create,
            reasons: Vec::new(),
            before: None,
            after: None,
            depends_on: Vec::new(),
            releases: Vec::new(),
            sensitive: BTreeSet::new(),
            secrets: BTreeMap::new(),
        };
        assert!(!router.collides(&change("dev/access/subnet/a"), &change("dev/net/subnet/b")));
        assert!(router.collides(&change("dev/net/subnet/a"), &change("dev/net/subnet/b")));
    }

    #[test]
    fn the_walk_asks_the_routed_provider_which_deletes_a_create_must_wait_for() {
        // A subnet moves to a new name in the same CIDR: net says the two collide, so the delete
        // of the old one runs first.
        let mut sequence = mockall::Sequence::new();
        let mut net = MockDomain::new();
        net.expect_collides().returning(|create, delete| create.address.kind() == delete.address.kind());
        expect(&mut net, Operation::Delete, "dev/net/subnet/old", Ok(None), Some(&mut sequence));
        expect(&mut net, Operation::Create, "dev/net/subnet/new", Ok(Some("subnet-2".into())), Some(&mut sequence));
        let router = Router::default().route("net", &net);
        let desired = [Resource::new(address("dev/net/subnet/new")).immutable("cidr_block", "10.1.0.0/20")];
        let observed = [Resource::new(address("dev/net/subnet/old")).immutable("cidr_block", "10.1.0.0/20")];
        let plan = diff(&desired, &observed).expect("plan");
        let ids = Ids::new([(address("dev/net/subnet/old"), "subnet-1".to_owned())].into());
        let report = block_on(apply(&plan, &router, &ids, 10, &Quiet));
        assert!(report.is_success(), "{report:?}");
    }

    /// Fails every step with an error that quotes the whole step, as a careless provider might.
    struct Quoting;

    impl Provider for Quoting {
        type Error = String;

        async fn run(&self, step: &Step<'_>, _ids: &Ids) -> Result<Option<String>, String> {
            assert_eq!(step.secrets.get("password").map(Secret::expose), Some(CANARY), "the provider gets the value");
            Err(format!("cannot apply {step:?}"))
        }
    }

    const CANARY: &str = "canary-7f3a9c-hunter2";

    #[test]
    fn a_sensitive_value_appears_in_no_plan_drift_or_error() {
        let database = || Resource::new(address("prod/secrets/secret/db")).attr("name", "db");
        let desired = [database().secret("password", Secret::new(CANARY))];
        let mut outputs: Vec<(&str, String)> = Vec::new();

        let plan = diff(&desired, &[]).expect("plan");
        outputs.push((
            "text plan",
            crate::plan::render_text(&plan, &crate::plan::TextOptions { attributes: true, ..Default::default() }),
        ));
        outputs.push(("json plan", serde_json::to_string(&plan).expect("json")));
        outputs.push(("debug plan", format!("{plan:?}")));

        // Drift: what exists holds another value; only digests are compared, neither is shown.
        let observed = [database().observed_secret("password", crate::secret::digest("older-value"))];
        let drift = diff(&desired, &observed).expect("plan");
        assert_eq!(drift.changes.len(), 1, "a changed value is drift");
        outputs.push((
            "drift text",
            crate::plan::render_text(&drift, &crate::plan::TextOptions { attributes: true, ..Default::default() }),
        ));
        outputs.push(("drift json", serde_json::to_string(&drift).expect("json")));
        let same = [database().observed_secret("password", Secret::new(CANARY).digest())];
        assert!(diff(&desired, &same).expect("plan").is_empty(), "the same value is no drift");

        // The engine's trace-level logs are checked in `tests/sensitive_logs.rs`, alone in their
        // test binary: a scoped subscriber races with other tests over tracing's callsite cache.
        let report = block_on(apply(&plan, &Quoting, &Ids::default(), 1, &Quiet));
        let error = report.failed[0].error.clone().expect("an error");
        assert!(error.contains("(sensitive)"), "the step was quoted: {error}");
        outputs.push(("apply error", error));

        let digests = [Secret::new(CANARY).digest(), crate::secret::digest("older-value")];
        for (what, text) in outputs {
            assert!(!text.contains(CANARY), "{what} shows the value:\n{text}");
            assert!(!text.contains("canary"), "{what} shows part of the value:\n{text}");
            assert!(digests.iter().all(|digest| !text.contains(digest.as_str())), "{what} shows a digest:\n{text}");
            assert!(text.contains("(sensitive)"), "{what} does not say what it hides:\n{text}");
        }
    }
}
