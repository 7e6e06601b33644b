//! Deterministic, stable subnet allocation.
//!
//! Each tier owns one aligned *block* of the VPC: `az_reserve` subnets of the tier's `size`,
//! at the tier's explicit `slot` (counted in blocks of that size). The subnet for the `i`-th
//! availability zone is the `i`-th subnet of the block. The NAT egress tier owns the last block
//! of its size at the top of the VPC.
//!
//! So a subnet's CIDR is a function of its own tier's `size` and `slot`, the AZ index and
//! `az_reserve` only. Adding a tier, adding an AZ (up to `az_reserve`), removing a tier or
//! reordering the spec never moves an existing subnet, which is the complaint terraform-aws-vpc
//! users raise most (`cidrsubnet` over a list index renumbers on reorder).

use enclave_core::spec::{NetworkSpec, Tier};
use enclave_core::{FieldPath, Violation, path};
use ipnet::Ipv4Net;

/// Smallest subnet AWS allows.
pub const MIN_SUBNET_PREFIX: u8 = 28;

/// The blocks and subnets of one VPC.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layout {
    /// Workload tiers, in spec order.
    pub tiers: Vec<TierLayout>,
    /// The egress tier's block and one subnet per AZ slot.
    pub egress: TierLayout,
}

/// One tier's block and its subnets, one per AZ in use.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TierLayout {
    /// Tier name.
    pub name: String,
    /// The whole block reserved for the tier.
    pub block: Ipv4Net,
    /// Subnets by AZ index, for the AZs in use.
    pub subnets: Vec<Ipv4Net>,
}

fn reserve_bits(az_reserve: u8) -> u8 {
    // Validation guarantees a power of two up to 8.
    u8::try_from(az_reserve.max(1).trailing_zeros()).unwrap_or(0)
}

/// The `index`-th aligned block of `prefix` inside `parent`, if it exists.
fn nth_block(parent: Ipv4Net, prefix: u8, index: u32) -> Option<Ipv4Net> {
    if prefix < parent.prefix_len() || prefix > 32 {
        return None;
    }
    let count_bits = u32::from(prefix - parent.prefix_len());
    if count_bits < 32 && index >= (1u32 << count_bits) {
        return None;
    }
    let size_bits = 32 - u32::from(prefix);
    let offset = if size_bits == 32 { 0 } else { index << size_bits };
    let start = u32::from(parent.network()).checked_add(offset)?;
    Ipv4Net::new(start.into(), prefix).ok()
}

fn blocks_in(parent: Ipv4Net, prefix: u8) -> u32 {
    1u32 << u32::from(prefix.saturating_sub(parent.prefix_len()).min(31))
}

fn tier_layout(vpc: Ipv4Net, tier: &Tier, network: &NetworkSpec, at: &FieldPath) -> Result<TierLayout, Violation> {
    let bits = reserve_bits(network.az_reserve);
    if tier.size > MIN_SUBNET_PREFIX {
        return Err(Violation::new(
            at.key("size"),
            format!("AWS subnets are at most /{MIN_SUBNET_PREFIX}, got /{}", tier.size),
        ));
    }
    if tier.size < vpc.prefix_len() + bits {
        return Err(Violation::new(
            at.key("size"),
            format!(
                "tier does not fit in the VPC: {} subnets of /{} need a /{} block, larger than the VPC {vpc}",
                network.az_reserve,
                tier.size,
                i32::from(tier.size) - i32::from(bits)
            ),
        ));
    }
    let block_prefix = tier.size - bits;
    let count = blocks_in(vpc, block_prefix);
    let block = nth_block(vpc, block_prefix, u32::from(tier.slot)).ok_or_else(|| {
        Violation::new(
            at.key("slot"),
            format!(
                "tier does not fit in the VPC: {vpc} holds {count} blocks of /{block_prefix} (slots 0 to {}), slot {} is outside",
                count - 1,
                tier.slot
            ),
        )
    })?;
    let subnets = (0..u32::from(network.azs)).filter_map(|az| nth_block(block, tier.size, az)).collect();
    Ok(TierLayout { name: tier.name.to_string(), block, subnets })
}

/// Allocates every tier of one account's network; `at` is the path of that `network` field.
pub fn allocate(vpc: Ipv4Net, network: &NetworkSpec, at: &FieldPath) -> Result<Layout, Vec<Violation>> {
    let mut violations = Vec::new();
    let bits = reserve_bits(network.az_reserve);
    let egress = if !(vpc.prefix_len() + bits..=MIN_SUBNET_PREFIX).contains(&network.egress_size) {
        violations.push(Violation::new(
            at.key("egress_size"),
            format!(
                "egress subnets must be between /{} and /{MIN_SUBNET_PREFIX} in this VPC, got /{}",
                vpc.prefix_len() + bits,
                network.egress_size
            ),
        ));
        None
    } else {
        let prefix = network.egress_size - bits;
        let last = blocks_in(vpc, prefix) - 1;
        nth_block(vpc, prefix, last).map(|block| TierLayout {
            name: "egress".into(),
            block,
            subnets: (0..u32::from(network.azs)).filter_map(|az| nth_block(block, network.egress_size, az)).collect(),
        })
    };

    let mut tiers: Vec<TierLayout> = Vec::new();
    for (index, tier) in network.tiers.iter().enumerate() {
        let tier_at = at.key("tiers").index(index);
        match tier_layout(vpc, tier, network, &tier_at) {
            Err(violation) => violations.push(violation),
            Ok(layout) => {
                if let Some(other) = tiers.iter().find(|other| overlaps(&other.block, &layout.block)) {
                    violations.push(Violation::new(
                        tier_at.key("slot"),
                        format!(
                            "tier `{}` block {} overlaps tier `{}` block {}",
                            layout.name, layout.block, other.name, other.block
                        ),
                    ));
                } else if let Some(egress) = egress.as_ref().filter(|egress| overlaps(&egress.block, &layout.block)) {
                    violations.push(Violation::new(
                        tier_at.key("slot"),
                        format!(
                            "tier `{}` block {} overlaps the NAT egress reserve {} at the top of the VPC",
                            layout.name, layout.block, egress.block
                        ),
                    ));
                }
                tiers.push(layout);
            }
        }
    }
    match egress {
        Some(egress) if violations.is_empty() => Ok(Layout { tiers, egress }),
        _ => Err(violations),
    }
}

fn overlaps(a: &Ipv4Net, b: &Ipv4Net) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

/// Validation of every account's layout, as violations with spec paths.
pub fn validate(spec: &enclave_core::Spec) -> Vec<Violation> {
    spec.accounts
        .iter()
        .enumerate()
        .filter_map(|(index, account)| {
            allocate(account.vpc_cidr.net(), &account.network, &path!("accounts", index, "network")).err()
        })
        .flatten()
        .collect()
}

#[cfg(test)]
mod tests {
    use enclave_core::spec::NetworkSpec;
    use proptest::prelude::*;

    use super::*;

    fn tier(name: &str, size: u8, slot: u16) -> Tier {
        Tier { name: name.parse().expect("valid name"), size, slot }
    }

    fn network(azs: u8, tiers: Vec<Tier>) -> NetworkSpec {
        NetworkSpec { azs, tiers, ..NetworkSpec::default() }
    }

    fn vpc() -> Ipv4Net {
        "10.1.0.0/16".parse().expect("valid")
    }

    #[test]
    fn reference_layout_is_what_the_docs_promise() {
        let layout = allocate(vpc(), &network(3, vec![tier("app", 20, 0), tier("data", 22, 4)]), &FieldPath::root())
            .expect("fits");
        let app: Vec<String> = layout.tiers[0].subnets.iter().map(ToString::to_string).collect();
        assert_eq!(app, ["10.1.0.0/20", "10.1.16.0/20", "10.1.32.0/20"]);
        let data: Vec<String> = layout.tiers[1].subnets.iter().map(ToString::to_string).collect();
        assert_eq!(data, ["10.1.64.0/22", "10.1.68.0/22", "10.1.72.0/22"]);
        let egress: Vec<String> = layout.egress.subnets.iter().map(ToString::to_string).collect();
        assert_eq!(egress, ["10.1.255.192/28", "10.1.255.208/28", "10.1.255.224/28"]);
    }

    #[test]
    fn overlapping_slots_name_both_tiers() {
        let violations =
            allocate(vpc(), &network(3, vec![tier("app", 20, 0), tier("data", 22, 0)]), &FieldPath::root())
                .unwrap_err();
        assert_eq!(violations.len(), 1);
        assert!(violations[0].message.contains("overlaps tier `app`"), "{}", violations[0].message);
        assert_eq!(violations[0].path.to_string(), "tiers[1].slot");
    }

    #[test]
    fn slots_past_the_end_and_oversized_tiers_do_not_fit() {
        let violations =
            allocate(vpc(), &network(3, vec![tier("app", 20, 4), tier("huge", 17, 0)]), &FieldPath::root())
                .unwrap_err();
        assert_eq!(violations.len(), 2);
        assert!(violations.iter().all(|v| v.message.contains("does not fit")));
    }

    #[test]
    fn tiers_must_leave_the_egress_reserve_free() {
        let violations = allocate(vpc(), &network(3, vec![tier("app", 20, 3)]), &FieldPath::root()).unwrap_err();
        assert!(violations[0].message.contains("egress reserve"), "{}", violations[0].message);
    }

    /// Random tier sets: distinct names, sizes /20 to /27, and slots that tile without overlap.
    fn tier_sets() -> impl Strategy<Value = (u8, Vec<Tier>)> {
        (1u8..=4, prop::collection::vec((20u8..=27, any::<u16>()), 1..8)).prop_map(|(azs, raw)| {
            let mut taken: Vec<Ipv4Net> = Vec::new();
            let mut tiers = Vec::new();
            for (index, (size, seed)) in raw.into_iter().enumerate() {
                let block_prefix = size - 2;
                let count = blocks_in(vpc(), block_prefix);
                // Probe from a random slot for a free block below the egress reserve.
                for step in 0..count {
                    let slot = (u32::from(seed) + step) % (count - 1);
                    let block = nth_block(vpc(), block_prefix, slot).expect("in range");
                    if !taken.iter().any(|t| overlaps(t, &block)) {
                        taken.push(block);
                        tiers.push(tier(&format!("t{index}"), size, u16::try_from(slot).expect("small")));
                        break;
                    }
                }
            }
            (azs, tiers)
        })
    }

    fn subnets_by_name(layout: &Layout) -> Vec<(String, usize, Ipv4Net)> {
        layout
            .tiers
            .iter()
            .chain(std::iter::once(&layout.egress))
            .flat_map(|t| t.subnets.iter().enumerate().map(|(az, net)| (t.name.clone(), az, *net)))
            .collect()
    }

    proptest! {
        #[test]
        fn subnets_are_inside_the_vpc_and_never_overlap((azs, tiers) in tier_sets()) {
            let layout = allocate(vpc(), &network(azs, tiers), &FieldPath::root()).expect("generated to fit");
            let all = subnets_by_name(&layout);
            for (i, (_, _, a)) in all.iter().enumerate() {
                prop_assert!(vpc().contains(a));
                for (_, _, b) in &all[i + 1..] {
                    prop_assert!(!overlaps(a, b), "{a} overlaps {b}");
                }
            }
        }

        #[test]
        fn reordering_tiers_moves_no_subnet((azs, tiers) in tier_sets(), seed in any::<u64>()) {
            let before = subnets_by_name(&allocate(vpc(), &network(azs, tiers.clone()), &FieldPath::root()).expect("fits"));
            let mut shuffled = tiers;
            let len = shuffled.len();
            shuffled.rotate_left(usize::try_from(seed % len as u64).expect("small"));
            shuffled.reverse();
            let mut after = subnets_by_name(&allocate(vpc(), &network(azs, shuffled), &FieldPath::root()).expect("fits"));
            let mut before = before;
            before.sort();
            after.sort();
            prop_assert_eq!(before, after);
        }

        #[test]
        fn adding_a_tier_or_an_az_moves_no_existing_subnet((azs, tiers) in tier_sets()) {
            let (first, rest) = tiers.split_first().expect("at least one tier");
            let smaller = subnets_by_name(&allocate(vpc(), &network(azs, rest.to_vec()), &FieldPath::root()).expect("fits"));
            let mut with_tier = rest.to_vec();
            with_tier.push(first.clone());
            let bigger = subnets_by_name(&allocate(vpc(), &network(azs, with_tier.clone()), &FieldPath::root()).expect("fits"));
            for subnet in &smaller {
                prop_assert!(bigger.contains(subnet), "{subnet:?} moved when a tier was added");
            }
            if azs < 4 {
                let more_azs = subnets_by_name(&allocate(vpc(), &network(azs + 1, with_tier), &FieldPath::root()).expect("fits"));
                for subnet in &bigger {
                    prop_assert!(more_azs.contains(subnet), "{subnet:?} moved when an AZ was added");
                }
            }
        }
    }
}
