//! The plan model: desired and observed resources, and the ordered changes between them.
//!
//! A [`Resource`] is an address, a flat map of attributes, its dependencies and the
//! attributes whose change forces a replacement. [`diff`] compares desired resources with
//! observed ones and returns a [`Plan`]: creates, updates and replaces ordered so that every
//! change comes after the changes it depends on, and deletes ordered so that dependants go
//! first. `enclave plan --offline` is `diff(desired, &[])`.

mod text;
mod value;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;

use serde::{Deserialize, Serialize};

pub use self::text::{TextOptions, render_text};
use crate::address::Address;
use crate::secret::{REDACTED, Secret};

/// Attribute values by name, in a stable order.
pub type Attributes = BTreeMap<String, serde_json::Value>;

/// One resource as the spec wants it or as it was observed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Resource {
    /// Identity.
    pub address: Address,
    /// Attributes that are compared.
    pub attributes: Attributes,
    /// Resources that must exist before this one.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub depends_on: BTreeSet<Address>,
    /// Attributes that cannot change in place.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub replace_on: BTreeSet<String>,
    /// Attributes set when the resource is created and never compared afterwards (what
    /// something else manages once it exists: a node group's size, which the Cluster Autoscaler
    /// changes; Terraform's `ignore_changes`).
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub initial: BTreeSet<String>,
    /// Sensitive attributes: their value in `attributes` is a digest (or a version id), and
    /// every plan shows `(sensitive)` instead.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub sensitive: BTreeSet<String>,
    /// The values of sensitive attributes, for the provider that sets them (desired side only;
    /// never serialised, `Debug` shows `(sensitive)`).
    #[serde(skip)]
    pub secrets: BTreeMap<String, Secret>,
}

impl Resource {
    /// A resource with no attributes yet.
    pub fn new(address: Address) -> Self {
        Resource {
            address,
            attributes: Attributes::new(),
            depends_on: BTreeSet::new(),
            replace_on: BTreeSet::new(),
            initial: BTreeSet::new(),
            sensitive: BTreeSet::new(),
            secrets: BTreeMap::new(),
        }
    }

    /// Sets an attribute.
    #[must_use]
    pub fn attr(mut self, name: &str, value: impl Into<serde_json::Value>) -> Self {
        self.attributes.insert(name.to_owned(), value.into());
        self
    }

    /// Sets an attribute that forces replacement when it changes.
    #[must_use]
    pub fn immutable(mut self, name: &str, value: impl Into<serde_json::Value>) -> Self {
        self.replace_on.insert(name.to_owned());
        self.attr(name, value)
    }

    /// Sets an attribute used only when the resource is created: a later difference is
    /// never a change.
    #[must_use]
    pub fn initial(mut self, name: &str, value: impl Into<serde_json::Value>) -> Self {
        self.initial.insert(name.to_owned());
        self.attr(name, value)
    }

    /// Sets a sensitive attribute from its value: plans compare its digest and show
    /// `(sensitive)`; the provider gets the value through [`Change::secrets`].
    #[must_use]
    pub fn secret(mut self, name: &str, value: Secret) -> Self {
        self.attributes.insert(name.to_owned(), serde_json::Value::String(value.digest()));
        self.sensitive.insert(name.to_owned());
        self.secrets.insert(name.to_owned(), value);
        self
    }

    /// Sets a sensitive attribute as observed: its digest or version id, never the value.
    #[must_use]
    pub fn observed_secret(mut self, name: &str, digest_or_version: impl Into<String>) -> Self {
        self.attributes.insert(name.to_owned(), serde_json::Value::String(digest_or_version.into()));
        self.sensitive.insert(name.to_owned());
        self
    }

    /// Adds a dependency.
    #[must_use]
    pub fn after(mut self, dependency: &Address) -> Self {
        self.depends_on.insert(dependency.clone());
        self
    }
}

/// What a change does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// The resource does not exist yet.
    Create,
    /// The resource changes in place.
    Update,
    /// The resource is deleted and created again.
    Replace,
    /// The resource is no longer in the spec.
    Delete,
}

impl Action {
    /// The terraform-like sign of the action.
    pub fn symbol(self) -> &'static str {
        match self {
            Action::Create => "+",
            Action::Update => "~",
            Action::Replace => "-/+",
            Action::Delete => "-",
        }
    }
}

/// Why a change is in the plan.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Reason {
    /// Desired but not observed.
    Missing,
    /// Observed (with our tags) but not desired.
    NotInSpec,
    /// A resource it depends on is replaced, which takes this one with it.
    DependencyReplaced {
        /// The replaced dependency.
        dependency: Address,
    },
    /// An attribute has another value.
    Differs {
        /// The attribute.
        attribute: String,
        /// Observed value (null when absent).
        before: serde_json::Value,
        /// Desired value.
        after: serde_json::Value,
        /// Whether this attribute forces replacement.
        forces_replacement: bool,
    },
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Missing => f.write_str("missing"),
            Reason::NotInSpec => f.write_str("not in spec"),
            Reason::DependencyReplaced { dependency } => write!(f, "replaced with {dependency}"),
            Reason::Differs { attribute, before, after, forces_replacement } => {
                write!(f, "{attribute} differs: {before} -> {after}")?;
                if *forces_replacement {
                    f.write_str(" (forces replacement)")?;
                }
                Ok(())
            }
        }
    }
}

/// One step of a plan.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Change {
    /// The resource.
    pub address: Address,
    /// What happens to it.
    pub action: Action,
    /// Why.
    pub reasons: Vec<Reason>,
    /// Observed attributes (none for a create).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub before: Option<Attributes>,
    /// Desired attributes (none for a delete).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub after: Option<Attributes>,
    /// Changes in this plan that must finish first.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub depends_on: Vec<Address>,
    /// For an update: resources the observed one depends on and the desired one no longer does
    /// (a route moving from one NAT gateway to another). A delete of one of them waits for this
    /// update, so nothing points at a resource while it is deleted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub releases: Vec<Address>,
    /// Sensitive attributes: `before`, `after` and the reasons show `(sensitive)` for them.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub sensitive: BTreeSet<String>,
    /// The values of the sensitive attributes to set (never serialised): all of them for a
    /// create or a replacement, those whose digest differs for an update.
    #[serde(skip)]
    pub secrets: BTreeMap<String, Secret>,
}

/// `attributes` with every sensitive one shown as `(sensitive)`.
fn masked(attributes: &Attributes, sensitive: &BTreeSet<String>) -> Attributes {
    attributes
        .iter()
        .map(|(name, value)| {
            let shown = if sensitive.contains(name) { serde_json::Value::from(REDACTED) } else { value.clone() };
            (name.clone(), shown)
        })
        .collect()
}

/// An ordered set of changes.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// The changes, each after everything it depends on.
    pub changes: Vec<Change>,
    /// How many desired resources already match.
    pub unchanged: usize,
}

/// Counts of changes by action.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    /// Creates.
    pub create: usize,
    /// In-place updates.
    pub update: usize,
    /// Replacements.
    pub replace: usize,
    /// Deletes.
    pub delete: usize,
    /// Resources already as desired.
    pub unchanged: usize,
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} to create, {} to update, {} to replace, {} to delete",
            self.create, self.update, self.replace, self.delete
        )
    }
}

impl Plan {
    /// Whether applying the plan would change nothing.
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }

    /// Counts by action.
    pub fn summary(&self) -> Summary {
        let mut summary = Summary { unchanged: self.unchanged, ..Summary::default() };
        for change in &self.changes {
            match change.action {
                Action::Create => summary.create += 1,
                Action::Update => summary.update += 1,
                Action::Replace => summary.replace += 1,
                Action::Delete => summary.delete += 1,
            }
        }
        summary
    }

    /// The changes touching one account.
    pub fn for_account<'a>(&'a self, account: &'a str) -> impl Iterator<Item = &'a Change> + 'a {
        self.changes.iter().filter(move |change| change.address.account() == account)
    }
}

/// The dependencies among resources form a cycle; the addresses on it are listed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("dependency cycle among {}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join(", "))]
pub struct CycleError(pub Vec<Address>);

/// Compares what the spec wants with what exists.
///
/// Only attributes the desired resource declares are compared: observed resources may carry
/// more (ids, ARNs) without causing a diff.
pub fn diff(desired: &[Resource], observed: &[Resource]) -> Result<Plan, CycleError> {
    let observed_by_address: HashMap<&Address, &Resource> = observed.iter().map(|r| (&r.address, r)).collect();
    let desired_addresses: BTreeSet<&Address> = desired.iter().map(|r| &r.address).collect();
    let mut forward = Vec::new();
    let mut unchanged = 0;
    for wanted in desired {
        match observed_by_address.get(&wanted.address) {
            None => forward.push(Change {
                address: wanted.address.clone(),
                action: Action::Create,
                reasons: vec![Reason::Missing],
                before: None,
                after: Some(masked(&wanted.attributes, &wanted.sensitive)),
                depends_on: wanted.depends_on.iter().cloned().collect(),
                releases: Vec::new(),
                sensitive: wanted.sensitive.clone(),
                secrets: wanted.secrets.clone(),
            }),
            Some(found) => {
                let sensitive: BTreeSet<String> = wanted.sensitive.union(&found.sensitive).cloned().collect();
                // Sensitive attributes compare their digests (or version ids) like any value,
                // and show neither.
                let shown = |name: &String, value: serde_json::Value| {
                    if sensitive.contains(name) { serde_json::Value::from(REDACTED) } else { value }
                };
                let reasons: Vec<Reason> = wanted
                    .attributes
                    .iter()
                    .filter(|(name, _)| !wanted.initial.contains(*name))
                    .filter(|(name, value)| found.attributes.get(*name) != Some(*value))
                    .map(|(name, value)| Reason::Differs {
                        attribute: name.clone(),
                        before: shown(name, found.attributes.get(name).cloned().unwrap_or(serde_json::Value::Null)),
                        after: shown(name, value.clone()),
                        forces_replacement: wanted.replace_on.contains(name),
                    })
                    .collect();
                if reasons.is_empty() {
                    unchanged += 1;
                    continue;
                }
                let replace = reasons.iter().any(|r| matches!(r, Reason::Differs { forces_replacement: true, .. }));
                // An update sets only the sensitive values that differ; a replacement sets all.
                let differing: BTreeSet<&str> = reasons
                    .iter()
                    .filter_map(|r| match r {
                        Reason::Differs { attribute, .. } => Some(attribute.as_str()),
                        _ => None,
                    })
                    .collect();
                let secrets: BTreeMap<String, Secret> = wanted
                    .secrets
                    .iter()
                    .filter(|(name, _)| replace || differing.contains(name.as_str()))
                    .map(|(name, value)| (name.clone(), value.clone()))
                    .collect();
                forward.push(Change {
                    address: wanted.address.clone(),
                    action: if replace { Action::Replace } else { Action::Update },
                    reasons,
                    before: Some(masked(&found.attributes, &sensitive)),
                    after: Some(masked(&wanted.attributes, &sensitive)),
                    depends_on: wanted.depends_on.iter().cloned().collect(),
                    releases: if replace {
                        Vec::new()
                    } else {
                        found.depends_on.difference(&wanted.depends_on).cloned().collect()
                    },
                    sensitive,
                    secrets,
                });
            }
        }
    }
    cascade_replacements(desired, &observed_by_address, &mut forward, &mut unchanged);
    let deletes: Vec<Change> = observed
        .iter()
        .filter(|found| !desired_addresses.contains(&found.address))
        .map(|found| Change {
            address: found.address.clone(),
            action: Action::Delete,
            reasons: vec![Reason::NotInSpec],
            before: Some(masked(&found.attributes, &found.sensitive)),
            after: None,
            depends_on: found.depends_on.iter().cloned().collect(),
            releases: Vec::new(),
            sensitive: found.sensitive.clone(),
            secrets: BTreeMap::new(),
        })
        .collect();

    let mut changes = reverse(topological(deletes)?);
    changes.extend(topological(forward)?);
    // Dependencies on resources that do not change are already satisfied.
    let changing: BTreeSet<Address> = changes.iter().map(|c| c.address.clone()).collect();
    for change in &mut changes {
        change.depends_on.retain(|dependency| changing.contains(dependency));
        change.releases.retain(|released| changing.contains(released));
    }
    Ok(Plan { changes, unchanged })
}

/// A replaced resource takes everything built on it along (a subnet's route table association,
/// a VPC's subnets): those are replaced too, transitively, with the reason.
fn cascade_replacements(
    desired: &[Resource],
    observed: &HashMap<&Address, &Resource>,
    forward: &mut Vec<Change>,
    unchanged: &mut usize,
) {
    let mut replaced: BTreeSet<Address> =
        forward.iter().filter(|c| c.action == Action::Replace).map(|c| c.address.clone()).collect();
    loop {
        let mut grew = false;
        for wanted in desired {
            if replaced.contains(&wanted.address) {
                continue;
            }
            let Some(found) = observed.get(&wanted.address) else { continue };
            let Some(dependency) = wanted.depends_on.iter().find(|d| replaced.contains(*d)).cloned() else { continue };
            let reason = Reason::DependencyReplaced { dependency };
            match forward.iter_mut().find(|c| c.address == wanted.address) {
                Some(change) => {
                    change.action = Action::Replace;
                    change.secrets = wanted.secrets.clone();
                    change.releases.clear();
                    change.reasons.push(reason);
                }
                None => {
                    *unchanged = unchanged.saturating_sub(1);
                    let sensitive: BTreeSet<String> = wanted.sensitive.union(&found.sensitive).cloned().collect();
                    forward.push(Change {
                        address: wanted.address.clone(),
                        action: Action::Replace,
                        reasons: vec![reason],
                        before: Some(masked(&found.attributes, &sensitive)),
                        after: Some(masked(&wanted.attributes, &sensitive)),
                        depends_on: wanted.depends_on.iter().cloned().collect(),
                        releases: Vec::new(),
                        sensitive,
                        secrets: wanted.secrets.clone(),
                    });
                }
            }
            replaced.insert(wanted.address.clone());
            grew = true;
        }
        if !grew {
            break;
        }
    }
}

fn reverse(mut changes: Vec<Change>) -> Vec<Change> {
    changes.reverse();
    changes
}

/// Orders changes so each follows its dependencies; ties keep their input order.
fn topological(changes: Vec<Change>) -> Result<Vec<Change>, CycleError> {
    let index: HashMap<Address, usize> = changes.iter().enumerate().map(|(i, c)| (c.address.clone(), i)).collect();
    let mut waiting_on = vec![0usize; changes.len()];
    let mut dependants: Vec<Vec<usize>> = vec![Vec::new(); changes.len()];
    for (position, change) in changes.iter().enumerate() {
        for dependency in &change.depends_on {
            if let Some(&before) = index.get(dependency) {
                waiting_on[position] += 1;
                dependants[before].push(position);
            }
        }
    }
    let mut ready: BTreeSet<usize> = (0..changes.len()).filter(|&i| waiting_on[i] == 0).collect();
    let mut order = Vec::with_capacity(changes.len());
    while let Some(next) = ready.pop_first() {
        order.push(next);
        for &dependant in &dependants[next] {
            waiting_on[dependant] -= 1;
            if waiting_on[dependant] == 0 {
                ready.insert(dependant);
            }
        }
    }
    if order.len() != changes.len() {
        let stuck = (0..changes.len()).filter(|i| waiting_on[*i] > 0).map(|i| changes[i].address.clone()).collect();
        return Err(CycleError(stuck));
    }
    let mut slots: Vec<Option<Change>> = changes.into_iter().map(Some).collect();
    Ok(order.into_iter().filter_map(|i| slots[i].take()).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn address(text: &str) -> Address {
        text.parse().expect("valid address")
    }

    #[test]
    fn offline_plan_creates_everything_dependencies_first() {
        let vpc = Resource::new(address("dev/net/vpc/main")).attr("cidr_block", "10.1.0.0/16");
        let subnet =
            Resource::new(address("dev/net/subnet/app-a")).attr("cidr_block", "10.1.0.0/20").after(&vpc.address);
        let plan = diff(&[subnet, vpc], &[]).expect("no cycle");
        let order: Vec<String> = plan.changes.iter().map(|c| c.address.to_string()).collect();
        assert_eq!(order, ["dev/net/vpc/main", "dev/net/subnet/app-a"]);
        assert_eq!(plan.summary().create, 2);
    }

    #[test]
    fn an_initial_attribute_is_used_at_create_and_never_compared_after() {
        let wanted =
            Resource::new(address("dev/deploy/node-group/main-general")).initial("desired_size", 3).attr("max", 9);
        let created = diff(std::slice::from_ref(&wanted), &[]).expect("plan");
        assert_eq!(created.changes[0].after.as_ref().and_then(|a| a.get("desired_size")), Some(&serde_json::json!(3)));
        let scaled =
            Resource::new(address("dev/deploy/node-group/main-general")).attr("desired_size", 7).attr("max", 9);
        let plan = diff(std::slice::from_ref(&wanted), &[scaled]).expect("plan");
        assert!(plan.changes.is_empty(), "the autoscaler's size is not drift: {:?}", plan.changes);
    }

    #[test]
    fn changed_immutable_attribute_replaces_and_mutable_one_updates() {
        let desired = [
            Resource::new(address("dev/net/subnet/a")).immutable("cidr_block", "10.1.0.0/20"),
            Resource::new(address("dev/net/vpc/main")).attr("enable_dns_hostnames", true),
        ];
        let observed = [
            Resource::new(address("dev/net/subnet/a")).attr("cidr_block", "10.1.16.0/20"),
            Resource::new(address("dev/net/vpc/main")).attr("enable_dns_hostnames", false).attr("id", "vpc-1"),
        ];
        let plan = diff(&desired, &observed).expect("no cycle");
        let actions: Vec<(String, Action)> = plan.changes.iter().map(|c| (c.address.to_string(), c.action)).collect();
        assert_eq!(
            actions,
            [("dev/net/subnet/a".to_owned(), Action::Replace), ("dev/net/vpc/main".to_owned(), Action::Update)]
        );
        assert_eq!(
            plan.changes[0].reasons[0].to_string(),
            "cidr_block differs: \"10.1.16.0/20\" -> \"10.1.0.0/20\" (forces replacement)"
        );
    }

    #[test]
    fn observed_extras_are_deleted_dependants_first_and_matches_are_unchanged() {
        let vpc = Resource::new(address("dev/net/vpc/main"));
        let subnet = Resource::new(address("dev/net/subnet/old")).after(&vpc.address);
        let plan = diff(&[], &[vpc.clone(), subnet]).expect("no cycle");
        let order: Vec<String> = plan.changes.iter().map(|c| c.address.to_string()).collect();
        assert_eq!(order, ["dev/net/subnet/old", "dev/net/vpc/main"]);
        let converged = diff(std::slice::from_ref(&vpc), std::slice::from_ref(&vpc)).expect("no cycle");
        assert!(converged.is_empty());
        assert_eq!(converged.unchanged, 1);
    }

    #[test]
    fn replacing_a_resource_replaces_what_is_built_on_it() {
        let subnet = Resource::new(address("dev/net/subnet/a")).immutable("cidr_block", "10.1.0.0/20");
        let association =
            Resource::new(address("dev/net/route-table-association/a")).attr("route_table", "x").after(&subnet.address);
        let nat = Resource::new(address("dev/net/nat-gateway/a")).after(&association.address);
        let observed = [
            Resource::new(address("dev/net/subnet/a")).attr("cidr_block", "10.1.16.0/20"),
            association.clone(),
            nat.clone(),
        ];
        let plan = diff(&[subnet, association, nat], &observed).expect("no cycle");
        let actions: Vec<(String, Action)> = plan.changes.iter().map(|c| (c.address.to_string(), c.action)).collect();
        assert_eq!(
            actions,
            [
                ("dev/net/subnet/a".to_owned(), Action::Replace),
                ("dev/net/route-table-association/a".to_owned(), Action::Replace),
                ("dev/net/nat-gateway/a".to_owned(), Action::Replace),
            ]
        );
        assert_eq!(plan.changes[2].reasons[0].to_string(), "replaced with dev/net/route-table-association/a");
        assert_eq!(plan.unchanged, 0);
    }

    #[test]
    fn cycles_are_reported_with_their_members() {
        let a = Resource::new(address("dev/net/x/a")).after(&address("dev/net/x/b"));
        let b = Resource::new(address("dev/net/x/b")).after(&address("dev/net/x/a"));
        let error = diff(&[a, b], &[]).unwrap_err();
        assert_eq!(error.0.len(), 2);
    }
}
