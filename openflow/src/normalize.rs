//! The canonical form of a flow: the form OVS stores and reports a flow in, so a desired flow
//! and the same flow read back from the switch compare equal.
//!
//! OVS drops value bits outside a mask (`10.1.1.2/16` is stored as `10.1.0.0/16`), turns an
//! all-ones mask into an exact match and an all-zeros mask into no match at all, and keeps
//! only the VID and present bits of `vlan_vid`. The flow-writer normalises desired flows
//! before diffing them against installed ones; without it a flow written `10.1.1.2/16` would
//! look changed on every sync.

use std::net::{Ipv4Addr, Ipv6Addr};

use crate::flow::{Flow, FlowKey, Masked, Match};

/// Bit operations the normaliser needs on masked value types.
trait Bits: Copy + Eq {
    const ONES: Self;
    const ZERO: Self;
    fn and(self, other: Self) -> Self;
}

macro_rules! bits_int {
    ($($t:ty),*) => {$(
        impl Bits for $t {
            const ONES: Self = <$t>::MAX;
            const ZERO: Self = 0;
            fn and(self, other: Self) -> Self {
                self & other
            }
        }
    )*};
}
bits_int!(u16, u32, u64);

impl Bits for Ipv4Addr {
    const ONES: Self = Ipv4Addr::BROADCAST;
    const ZERO: Self = Ipv4Addr::UNSPECIFIED;
    fn and(self, other: Self) -> Self {
        Ipv4Addr::from(u32::from(self) & u32::from(other))
    }
}

impl Bits for Ipv6Addr {
    const ONES: Self = Ipv6Addr::new(
        0xffff, 0xffff, 0xffff, 0xffff, 0xffff, 0xffff, 0xffff, 0xffff,
    );
    const ZERO: Self = Ipv6Addr::UNSPECIFIED;
    fn and(self, other: Self) -> Self {
        Ipv6Addr::from(u128::from(self) & u128::from(other))
    }
}

fn norm<T: Bits>(m: &mut Option<Masked<T>>) {
    norm_width(m, T::ONES);
}

/// Normalises a field whose meaningful bits are `ones` (narrower than its type for vlan_vid).
fn norm_width<T: Bits>(m: &mut Option<Masked<T>>, ones: T) {
    let Some(x) = m else { return };
    match x.mask.map(|mask| mask.and(ones)) {
        None => x.value = x.value.and(ones),
        Some(mask) if mask == T::ZERO => *m = None,
        Some(mask) if mask == ones => *x = Masked::exact(x.value.and(ones)),
        Some(mask) => *x = Masked::with_mask(x.value.and(mask), mask),
    }
}

/// `ct_state` has 8 defined bits; OVS keeps the mask to those and reports even a fully
/// specified state with the explicit mask 0xff.
fn norm_ct_state(m: &mut Option<Masked<u32>>) {
    let Some(x) = m else { return };
    let mask = x.mask.unwrap_or(u32::MAX) & CT_STATE_BITS;
    *m = (mask != 0).then(|| Masked::with_mask(x.value & mask, mask));
}

/// The `ct_state` bits OVS defines (new, est, rel, rpl, inv, trk, snat, dnat).
pub(crate) const CT_STATE_BITS: u32 = 0xff;

impl Match {
    /// This match in the form the switch reports it (see the module docs).
    pub fn normalized(&self) -> Match {
        let mut m = self.clone();
        norm_width(&mut m.vlan_vid, 0x1fff);
        norm(&mut m.ipv4_src);
        norm(&mut m.ipv4_dst);
        norm(&mut m.ipv6_src);
        norm(&mut m.ipv6_dst);
        norm(&mut m.tcp_src);
        norm(&mut m.tcp_dst);
        norm(&mut m.udp_src);
        norm(&mut m.udp_dst);
        norm(&mut m.arp_spa);
        norm(&mut m.arp_tpa);
        norm(&mut m.tun_id);
        norm(&mut m.metadata);
        for r in &mut m.regs {
            norm(r);
        }
        norm_ct_state(&mut m.ct_state);
        norm(&mut m.ct_mark);
        m
    }
}

impl FlowKey {
    /// This key with its match normalised.
    pub fn normalized(&self) -> FlowKey {
        FlowKey {
            table: self.table,
            priority: self.priority,
            matches: self.matches.normalized(),
        }
    }
}

impl Flow {
    /// This flow with its match normalised: what the switch reports after installing it.
    pub fn normalized(&self) -> Flow {
        Flow {
            matches: self.matches.normalized(),
            ..self.clone()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_take_the_switch_form() {
        let mut m = Match {
            ipv4_dst: Some(Masked::with_mask(
                Ipv4Addr::new(10, 1, 1, 2),
                Ipv4Addr::new(255, 255, 0, 0),
            )),
            ipv4_src: Some(Masked::with_mask(
                Ipv4Addr::new(1, 2, 3, 4),
                Ipv4Addr::BROADCAST,
            )),
            tcp_dst: Some(Masked::with_mask(80, 0)),
            vlan_vid: Some(Masked::with_mask(0xf064, 0xffff)),
            ..Match::default()
        };
        m.regs[2] = Some(Masked::with_mask(0x1234, 0xff));
        let n = m.normalized();
        assert_eq!(
            n.ipv4_dst,
            Some(Masked::with_mask(
                Ipv4Addr::new(10, 1, 0, 0),
                Ipv4Addr::new(255, 255, 0, 0)
            ))
        );
        assert_eq!(n.ipv4_src, Some(Masked::exact(Ipv4Addr::new(1, 2, 3, 4))));
        assert_eq!(n.tcp_dst, None);
        assert_eq!(n.vlan_vid, Some(Masked::exact(0x1064)));
        assert_eq!(n.regs[2], Some(Masked::with_mask(0x34, 0xff)));
        assert_eq!(n.normalized(), n);
        let m = Match {
            ct_state: Some(Masked::exact(0x22)),
            ..Match::default()
        };
        assert_eq!(m.normalized().ct_state, Some(Masked::with_mask(0x22, 0xff)));
    }
}
