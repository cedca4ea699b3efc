//! `Bgp`: a host's BGP settings: its router address and AS, and its top-of-rack neighbours.
//!
//! Contiv allows one neighbour; we also accept a comma-separated list in `neighbor` so a host can
//! peer with both ToRs of a rack (ECMP). A single address stays exactly Contiv's format. No
//! neighbour at all (and then `neighbor-as` may be empty too) means the host peers only with the
//! masters' route reflectors: a fabric whose hosts share an L2 segment and have no BGP ToR.

use crate::collection::Collection;
use crate::error::FieldError;
use crate::fields;
use crate::object::Object;
use serde::{Deserialize, Serialize};
use std::net::Ipv4Addr;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Bgp {
    pub key: String,
    pub hostname: String,
    /// The host's address on the link to its ToR, `a.b.c.d/len`.
    pub routerip: String,
    #[serde(rename = "as")]
    pub as_number: String,
    #[serde(rename = "neighbor-as")]
    pub neighbor_as: String,
    pub neighbor: String,
}

impl Bgp {
    pub fn neighbors(&self) -> Vec<Ipv4Addr> {
        self.neighbor
            .split(',')
            .filter_map(|n| n.trim().parse().ok())
            .collect()
    }

    pub fn asn(&self) -> Option<u32> {
        parse_asn(&self.as_number)
    }

    pub fn neighbor_asn(&self) -> Option<u32> {
        parse_asn(&self.neighbor_as)
    }

    pub fn router_ip(&self) -> Option<ipnet::Ipv4Net> {
        self.routerip.parse().ok()
    }
}

/// A 4-byte AS number, plain (`65002`) or asdot (`1.10`).
pub(crate) fn parse_asn(value: &str) -> Option<u32> {
    let n = match value.split_once('.') {
        Some((hi, lo)) => (hi.parse::<u16>().ok()? as u32) << 16 | lo.parse::<u16>().ok()? as u32,
        None => value.parse::<u32>().ok()?,
    };
    (n != 0).then_some(n)
}

pub(crate) fn check_asn(field: &'static str, value: &str) -> Result<(), FieldError> {
    if value.is_empty() {
        return Err(FieldError::new(field, "is required"));
    }
    fields::max_len(field, value, 64)?;
    parse_asn(value).map(|_| ()).ok_or_else(|| {
        FieldError::new(field, format!("'{value}' is not an AS number 1-4294967295"))
    })
}

impl Object for Bgp {
    const COLLECTION: Collection = Collection::Bgps;

    fn key(&self) -> String {
        self.hostname.clone()
    }

    fn set_key(&mut self) {
        self.key = self.key();
    }

    fn check_fields(&self) -> Result<(), FieldError> {
        fields::name("hostname", &self.hostname, 256)?;
        if self.routerip.is_empty() {
            return Err(FieldError::new("routerip", "is required (a.b.c.d/len)"));
        }
        let (addr, len) = self.routerip.split_once('/').ok_or_else(|| {
            FieldError::new(
                "routerip",
                format!(
                    "'{}' has no prefix length: write a.b.c.d/len",
                    self.routerip
                ),
            )
        })?;
        fields::ipv4("routerip", addr)?;
        match len.parse::<u8>() {
            Ok(1..=31) => {}
            _ => {
                return Err(FieldError::new(
                    "routerip",
                    format!("prefix length '{len}' is outside 1-31"),
                ))
            }
        }
        check_asn("as", &self.as_number)?;
        if self.neighbor.is_empty() {
            // Reflectors only; a neighbour AS without a neighbour is still checked.
            if !self.neighbor_as.is_empty() {
                check_asn("neighbor-as", &self.neighbor_as)?;
            }
            return Ok(());
        }
        check_asn("neighbor-as", &self.neighbor_as)?;
        for n in self.neighbor.split(',') {
            fields::ipv4("neighbor", n.trim())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contiv_tutorial_bgp() {
        let b: Bgp = serde_json::from_str(
            r#"{"hostname":"host1","routerip":"50.1.1.1/24","as":"65002","neighbor-as":"500","neighbor":"50.1.1.2"}"#,
        )
        .unwrap();
        assert!(b.check_fields().is_ok());
        assert_eq!(b.asn(), Some(65002));
        assert_eq!(b.neighbors(), vec![Ipv4Addr::new(50, 1, 1, 2)]);
    }

    #[test]
    fn rejects() {
        let ok = Bgp {
            hostname: "h".into(),
            routerip: "50.1.1.1/24".into(),
            as_number: "65002".into(),
            neighbor_as: "500".into(),
            neighbor: "50.1.1.2,50.1.2.2".into(),
            ..Bgp::default()
        };
        assert!(ok.check_fields().is_ok());
        assert_eq!(ok.neighbors().len(), 2);
        type Change = fn(&mut Bgp);
        let cases: [(&str, Change); 5] = [
            ("routerip", |b| b.routerip = "50.1.1.1".into()),
            ("as", |b| b.as_number = "x".into()),
            ("as", |b| b.as_number = "0".into()),
            ("neighbor-as", |b| b.neighbor_as = "99999999999".into()),
            ("neighbor", |b| b.neighbor = "50.1.1".into()),
        ];
        for (field, change) in cases {
            let mut b = ok.clone();
            change(&mut b);
            assert_eq!(b.check_fields().unwrap_err().field, field);
        }
    }

    #[test]
    fn no_neighbour_means_reflectors_only() {
        let mut b = Bgp {
            hostname: "h".into(),
            routerip: "10.0.0.21/24".into(),
            as_number: "65000".into(),
            ..Bgp::default()
        };
        assert!(b.check_fields().is_ok());
        assert!(b.neighbors().is_empty());
        b.neighbor_as = "x".into();
        assert_eq!(b.check_fields().unwrap_err().field, "neighbor-as");
        b.neighbor_as = String::new();
        b.neighbor = "10.0.0.1".into();
        assert_eq!(
            b.check_fields().unwrap_err().field,
            "neighbor-as",
            "a neighbour needs its AS"
        );
    }
}
