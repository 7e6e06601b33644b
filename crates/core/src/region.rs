//! The AWS regions enclave knows, with the availability zones a typical account sees.
//!
//! AZ *names* map to different physical zones in each account; what matters here is how many a
//! region offers and their letters. Where some accounts see fewer zones (us-west-1), the table
//! holds what every account can use.

/// A region and the letters of its availability zones.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RegionInfo {
    /// Region code.
    pub code: &'static str,
    /// AZ letters, in order: `eu-west-1` + `a`.
    pub zone_letters: &'static str,
}

impl RegionInfo {
    /// How many AZs the region offers.
    pub fn zone_count(&self) -> usize {
        self.zone_letters.len()
    }

    /// The name of the `index`-th AZ (`eu-west-1b` for 1).
    pub fn zone(&self, index: usize) -> Option<String> {
        let letter = self.zone_letters.as_bytes().get(index)?;
        Some(format!("{}{}", self.code, char::from(*letter)))
    }
}

/// The AWS partition of a region (`aws`, `aws-cn`, `aws-us-gov`), for ARNs.
pub fn partition(region: &str) -> &'static str {
    if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else if region.starts_with("cn-") {
        "aws-cn"
    } else {
        "aws"
    }
}

/// The DNS suffix of a region's service endpoints (`amazonaws.com`, `amazonaws.com.cn` in China).
pub fn dns_suffix(region: &str) -> &'static str {
    if region.starts_with("cn-") { "amazonaws.com.cn" } else { "amazonaws.com" }
}

const REGIONS: &[RegionInfo] = &[
    RegionInfo { code: "af-south-1", zone_letters: "abc" },
    RegionInfo { code: "ap-east-1", zone_letters: "abc" },
    RegionInfo { code: "ap-northeast-1", zone_letters: "acd" },
    RegionInfo { code: "ap-northeast-2", zone_letters: "abcd" },
    RegionInfo { code: "ap-northeast-3", zone_letters: "abc" },
    RegionInfo { code: "ap-south-1", zone_letters: "abc" },
    RegionInfo { code: "ap-south-2", zone_letters: "abc" },
    RegionInfo { code: "ap-southeast-1", zone_letters: "abc" },
    RegionInfo { code: "ap-southeast-2", zone_letters: "abc" },
    RegionInfo { code: "ap-southeast-3", zone_letters: "abc" },
    RegionInfo { code: "ap-southeast-4", zone_letters: "abc" },
    RegionInfo { code: "ap-southeast-5", zone_letters: "abc" },
    RegionInfo { code: "ap-southeast-7", zone_letters: "abc" },
    RegionInfo { code: "ca-central-1", zone_letters: "abd" },
    RegionInfo { code: "ca-west-1", zone_letters: "abc" },
    RegionInfo { code: "eu-central-1", zone_letters: "abc" },
    RegionInfo { code: "eu-central-2", zone_letters: "abc" },
    RegionInfo { code: "eu-north-1", zone_letters: "abc" },
    RegionInfo { code: "eu-south-1", zone_letters: "abc" },
    RegionInfo { code: "eu-south-2", zone_letters: "abc" },
    RegionInfo { code: "eu-west-1", zone_letters: "abc" },
    RegionInfo { code: "eu-west-2", zone_letters: "abc" },
    RegionInfo { code: "eu-west-3", zone_letters: "abc" },
    RegionInfo { code: "il-central-1", zone_letters: "abc" },
    RegionInfo { code: "me-central-1", zone_letters: "abc" },
    RegionInfo { code: "me-south-1", zone_letters: "abc" },
    RegionInfo { code: "mx-central-1", zone_letters: "abc" },
    RegionInfo { code: "sa-east-1", zone_letters: "abc" },
    RegionInfo { code: "us-east-1", zone_letters: "abcdef" },
    RegionInfo { code: "us-east-2", zone_letters: "abc" },
    RegionInfo { code: "us-gov-east-1", zone_letters: "abc" },
    RegionInfo { code: "us-gov-west-1", zone_letters: "abc" },
    RegionInfo { code: "us-west-1", zone_letters: "ab" },
    RegionInfo { code: "us-west-2", zone_letters: "abcd" },
];

/// The region with this code, if known.
pub fn lookup(code: &str) -> Option<RegionInfo> {
    REGIONS.iter().copied().find(|region| region.code == code)
}

/// Known region codes, for suggestions.
pub fn codes() -> impl Iterator<Item = &'static str> {
    REGIONS.iter().map(|region| region.code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zones_are_named_by_letter() {
        let region = lookup("ap-northeast-1").expect("known");
        assert_eq!(region.zone(1).as_deref(), Some("ap-northeast-1c"));
        assert_eq!(region.zone(3), None);
    }
}
