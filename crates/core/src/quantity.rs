//! Kubernetes resource quantities (`250m`, `1.5`, `512Mi`, `2Gi`), exact to the milli-unit.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::spec::InvalidValue;

/// A resource quantity as Kubernetes writes it, kept as written and as milli-units.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Quantity {
    text: String,
    milli: i128,
}

const SUFFIXES: &[(&str, i128)] = &[
    ("Ki", 1 << 10),
    ("Mi", 1 << 20),
    ("Gi", 1 << 30),
    ("Ti", 1 << 40),
    ("Pi", 1 << 50),
    ("Ei", 1 << 60),
    ("k", 1_000),
    ("M", 1_000_000),
    ("G", 1_000_000_000),
    ("T", 1_000_000_000_000),
    ("P", 1_000_000_000_000_000),
    ("E", 1_000_000_000_000_000_000),
];

impl Quantity {
    /// The quantity in thousandths of its unit (millicores for CPU, millibytes for memory).
    pub fn milli(&self) -> i128 {
        self.milli
    }

    /// A CPU quantity from millicores, written canonically (`500m`, `2`).
    pub fn from_millicores(millicores: i128) -> Self {
        let text = if millicores % 1000 == 0 { (millicores / 1000).to_string() } else { format!("{millicores}m") };
        Quantity { text, milli: millicores }
    }

    /// A memory quantity from bytes, written in the largest binary unit that divides it.
    pub fn from_bytes(bytes: i128) -> Self {
        let text = [("Gi", 1i128 << 30), ("Mi", 1 << 20), ("Ki", 1 << 10)]
            .iter()
            .find(|(_, unit)| bytes != 0 && bytes % unit == 0)
            .map_or_else(|| bytes.to_string(), |(suffix, unit)| format!("{}{suffix}", bytes / unit));
        Quantity { text, milli: bytes * 1000 }
    }

    /// The quantity as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl FromStr for Quantity {
    type Err = InvalidValue;
    fn from_str(value: &str) -> Result<Self, InvalidValue> {
        let invalid = || InvalidValue("not a Kubernetes quantity like `250m`, `1.5` or `512Mi`".to_owned());
        let (number, multiplier_milli) = if let Some(number) = value.strip_suffix('m') {
            (number, 1)
        } else if let Some((number, factor)) =
            SUFFIXES.iter().find_map(|(suffix, factor)| value.strip_suffix(suffix).map(|n| (n, *factor)))
        {
            (number, factor * 1000)
        } else {
            (value, 1000)
        };
        let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
        if whole.is_empty() && fraction.is_empty()
            || !whole.bytes().all(|b| b.is_ascii_digit())
            || !fraction.bytes().all(|b| b.is_ascii_digit())
            || whole.len() > 18
            || fraction.len() > 9
        {
            return Err(invalid());
        }
        let whole: i128 = if whole.is_empty() { 0 } else { whole.parse().map_err(|_| invalid())? };
        let scale = 10i128.pow(u32::try_from(fraction.len()).map_err(|_| invalid())?);
        let fraction_value: i128 = if fraction.is_empty() { 0 } else { fraction.parse().map_err(|_| invalid())? };
        let too_large = || InvalidValue("too large a quantity".to_owned());
        let scaled = whole
            .checked_mul(scale)
            .and_then(|v| v.checked_add(fraction_value))
            .and_then(|v| v.checked_mul(multiplier_milli))
            .ok_or_else(too_large)?;
        if scaled % scale != 0 {
            return Err(InvalidValue("finer than a thousandth of its unit".to_owned()));
        }
        Ok(Quantity { text: value.to_owned(), milli: scaled / scale })
    }
}

impl PartialOrd for Quantity {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Quantity {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.milli.cmp(&other.milli).then_with(|| self.text.cmp(&other.text))
    }
}

impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl Serialize for Quantity {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for Quantity {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Text(String),
            Integer(u64),
            Float(f64),
        }
        let text = match Raw::deserialize(deserializer)
            .map_err(|_| serde::de::Error::custom("expected a quantity like `250m`, `1.5` or `512Mi`"))?
        {
            Raw::Text(text) => text,
            Raw::Integer(number) => number.to_string(),
            Raw::Float(number) => number.to_string(),
        };
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl JsonSchema for Quantity {
    fn schema_name() -> Cow<'static, str> {
        Cow::Borrowed("Quantity")
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({ "type": ["string", "number"], "pattern": "^[0-9]*(\\.[0-9]+)?(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$" })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn milli(text: &str) -> i128 {
        text.parse::<Quantity>().expect("valid").milli()
    }

    #[test]
    fn quantities_parse_to_exact_milli_units() {
        assert_eq!(milli("250m"), 250);
        assert_eq!(milli("1.5"), 1500);
        assert_eq!(milli("2"), 2000);
        assert_eq!(milli("512Mi"), 512 * (1 << 20) * 1000);
        assert_eq!(milli("1k"), 1_000_000);
        assert_eq!(milli(".5"), 500);
        for bad in ["", "m", "1.2.3", "-1", "12x", "0.0001", "999999999999999999Ei"] {
            assert!(bad.parse::<Quantity>().is_err(), "{bad}");
        }
    }

    #[test]
    fn canonical_forms_pick_the_largest_unit() {
        assert_eq!(Quantity::from_millicores(1500).as_str(), "1500m");
        assert_eq!(Quantity::from_millicores(3000).as_str(), "3");
        assert_eq!(Quantity::from_bytes(3 << 30).as_str(), "3Gi");
        assert_eq!(Quantity::from_bytes(1536 << 20).as_str(), "1536Mi");
    }
}
