//! `global`: the fabric-wide settings (one object, key `global`), with Contiv's defaults.

use crate::collection::Collection;
use crate::error::FieldError;
use crate::fields;
use crate::object::Object;
use serde::{Deserialize, Serialize};

pub const GLOBAL_NAME: &str = "global";
/// The forwarding mode of native L3 over BGP.
pub const FWD_MODE_ROUTING: &str = "routing";
/// The fabric's AS until one is set: the masters' route reflectors and every agent's sessions
/// to them use it (iBGP), whatever AS a host uses towards its ToR.
pub const DEFAULT_FABRIC_AS: &str = "65000";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Global {
    pub key: String,
    pub name: String,
    /// `default`, `aci` or `aci-opflex`.
    pub network_infra_type: String,
    pub vlans: String,
    pub vxlans: String,
    /// `routing` (native L3: every endpoint's /32 in the top-of-rack routers' one table; our
    /// default, since it is the data plane the agents run) or `bridge` (Contiv's default, the L2
    /// overlays).
    pub fwd_mode: String,
    /// `proxy` or `flood`.
    pub arp_mode: String,
    pub pvt_subnet: String,
    /// Ours, not Contiv's: the AS of the masters' route reflectors and of every agent's
    /// sessions to them (plain `65000` or asdot `1.10`). Contiv's clients do not know the
    /// field, so a write without it keeps the stored value (see the master's `Global` intent).
    pub fabric_as: String,
}

impl Default for Global {
    fn default() -> Self {
        Global {
            key: GLOBAL_NAME.into(),
            name: GLOBAL_NAME.into(),
            network_infra_type: "default".into(),
            vlans: "1-4094".into(),
            vxlans: "1-10000".into(),
            fwd_mode: FWD_MODE_ROUTING.into(),
            arp_mode: "proxy".into(),
            pvt_subnet: "172.19.0.0/16".into(),
            fabric_as: DEFAULT_FABRIC_AS.into(),
        }
    }
}

impl Global {
    pub fn vlan_range(&self) -> Result<(u32, u32), FieldError> {
        fields::tag_range("vlans", &self.vlans, 1, 4094)
    }

    /// Native L3: one routing table at the ToRs carries every tenant's addresses, so tenants
    /// cannot share a subnet (the overlay modes can).
    pub fn is_native_l3(&self) -> bool {
        self.fwd_mode == FWD_MODE_ROUTING
    }

    /// The fabric AS (the default one while the field is empty).
    pub fn fabric_asn(&self) -> Option<u32> {
        match self.fabric_as.as_str() {
            "" => super::bgp::parse_asn(DEFAULT_FABRIC_AS),
            value => super::bgp::parse_asn(value),
        }
    }

    pub fn vxlan_range(&self) -> Result<(u32, u32), FieldError> {
        fields::tag_range("vxlans", &self.vxlans, 1, 16_777_215)
    }
}

impl Object for Global {
    const COLLECTION: Collection = Collection::Globals;

    fn key(&self) -> String {
        self.name.clone()
    }

    fn set_key(&mut self) {
        self.key = self.key();
    }

    fn apply_defaults(&mut self) {
        let d = Global::default();
        for (mine, default) in [
            (&mut self.network_infra_type, d.network_infra_type),
            (&mut self.vlans, d.vlans),
            (&mut self.vxlans, d.vxlans),
            (&mut self.fwd_mode, d.fwd_mode),
            (&mut self.arp_mode, d.arp_mode),
            (&mut self.pvt_subnet, d.pvt_subnet),
        ] {
            if mine.is_empty() {
                *mine = default;
            }
        }
    }

    fn check_fields(&self) -> Result<(), FieldError> {
        if self.name != GLOBAL_NAME {
            return Err(FieldError::new(
                "name",
                format!("must be '{GLOBAL_NAME}', not '{}'", self.name),
            ));
        }
        fields::one_of(
            "networkInfraType",
            &self.network_infra_type,
            &["default", "aci", "aci-opflex"],
        )?;
        self.vlan_range()?;
        self.vxlan_range()?;
        fields::one_of("fwdMode", &self.fwd_mode, &["bridge", "routing"])?;
        fields::one_of("arpMode", &self.arp_mode, &["proxy", "flood"])?;
        if !self.fabric_as.is_empty() {
            super::bgp::check_asn("fabricAs", &self.fabric_as)?;
        }
        let (addr, len) = self.pvt_subnet.split_once('/').ok_or_else(|| {
            FieldError::new(
                "pvtSubnet",
                format!("'{}' is not a.b.c.d/16", self.pvt_subnet),
            )
        })?;
        fields::ipv4("pvtSubnet", addr)?;
        if len != "16" {
            return Err(FieldError::new(
                "pvtSubnet",
                format!("prefix length must be 16, not {len}"),
            ));
        }
        Ok(())
    }
}
